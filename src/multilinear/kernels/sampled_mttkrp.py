"""Kernels of the sketched least-squares step: fiber layouts and the sampled MTTKRP.

A *fiber layout* of mode ``n`` sorts the nonzeros by the row-major linear key of their indices in the
other modes, so all nonzeros of one mode-``n`` fiber are consecutive: ``fiber_keys`` (F,) ascending and
unique, ``fiber_ptr`` (F + 1,) their ranges, ``permutation`` (nnz,) int32/int64 the nonzeros in that order.
A sampled Khatri-Rao row is a tuple of indices of the other modes, i.e. one fiber key: binary search finds
its nonzeros.
"""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True, parallel=True)
def fiber_keys_of(indices, mode, strides, keys_out):
    """Row-major key of each nonzero's indices in the modes other than ``mode``.

    Parameters
    ----------
    indices : int64 (nnz, N)
    mode : int
    strides : int64 (N,), ``strides[mode]`` is 0, the others the row-major strides of the other modes
    keys_out : int64 (nnz,), out
    """
    nmodes = indices.shape[1]
    for z in prange(indices.shape[0]):
        key = 0
        for k in range(nmodes):
            key += indices[z, k] * strides[k]
        keys_out[z] = key


@njit(cache=True)
def fiber_ranges(sorted_keys, fiber_keys_out, fiber_ptr_out):
    """Unique keys of an ascending key array and where each run starts; returns the number of fibers."""
    n = sorted_keys.shape[0]
    count = 0
    for z in range(n):
        if z == 0 or sorted_keys[z] != sorted_keys[z - 1]:
            fiber_keys_out[count] = sorted_keys[z]
            fiber_ptr_out[count] = z
            count += 1
    fiber_ptr_out[count] = n
    return count


@njit(cache=True)
def find_fibers(fiber_keys, sample_keys, fiber_out):
    """Index of each sample's fiber in ``fiber_keys`` (binary search), or -1 when it holds no nonzero."""
    n_fibers = fiber_keys.shape[0]
    for s in range(sample_keys.shape[0]):
        key = sample_keys[s]
        low = 0
        high = n_fibers
        while low < high:
            middle = (low + high) // 2
            if fiber_keys[middle] < key:
                low = middle + 1
            else:
                high = middle
        fiber_out[s] = low if low < n_fibers and fiber_keys[low] == key else -1


@njit(cache=True)
def sampled_mttkrp(fiber_ptr, permutation, indices, values, mode, sample_fiber, sample_weights, design, out):
    """``out += sum_s weight_s * X[:, fiber_s] design_s^T``: the MTTKRP of the sampled, reweighted rows.

    Parameters
    ----------
    fiber_ptr : int64 (F + 1,)
    permutation : int32 or int64 (nnz,)
    indices : int64 (nnz, N), values : float64 (nnz,)
    mode : int, the mode whose factor is solved for
    sample_fiber : int64 (S,), fiber of each distinct sample or -1
    sample_weights : float64 (S,), the summed weights 1 / (J * probability) of its draws
    design : float64 (S, R), the sampled Khatri-Rao rows
    out : float64 (I_mode, R), accumulated into (serial: output rows of different samples may collide)
    """
    rank = design.shape[1]
    for s in range(sample_fiber.shape[0]):
        fiber = sample_fiber[s]
        if fiber < 0:
            continue
        weight = sample_weights[s]
        for p in range(fiber_ptr[fiber], fiber_ptr[fiber + 1]):
            z = permutation[p]
            row = indices[z, mode]
            scale = weight * values[z]
            for r in range(rank):
                out[row, r] += scale * design[s, r]
