"""Kernels of the sketched least-squares step: fiber layouts and the sampled MTTKRP.

A *fiber layout* of mode ``n`` sorts the nonzeros by the row-major linear key of their indices in the
other modes, so all nonzeros of one mode-``n`` fiber are consecutive: ``fiber_keys`` (F,) ascending and
unique, ``fiber_ptr`` (F + 1,) their ranges, ``permutation`` (nnz,) int32/int64 the nonzeros in that order,
and the mode-``n`` index and value of each nonzero copied in that order (``fiber_rows``, ``fiber_values``), so
the sampled MTTKRP reads each fiber contiguously instead of gathering from the tensor's arrays.
A sampled Khatri-Rao row is a tuple of indices of the other modes, i.e. one fiber key: binary search finds
its nonzeros.
"""

from __future__ import annotations

import numpy as np
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
def _accumulate_samples(
    start, stop, fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out
):
    """``out += sum_{s in [start, stop)} weight_s * X[:, fiber_s] design_s^T`` (one thread)."""
    rank = design.shape[1]
    for s in range(start, stop):
        fiber = sample_fiber[s]
        if fiber < 0:
            continue
        weight = sample_weights[s]
        for p in range(fiber_ptr[fiber], fiber_ptr[fiber + 1]):
            row = fiber_rows[p]
            scale = weight * fiber_values[p]
            for r in range(rank):
                out[row, r] += scale * design[s, r]


@njit(cache=True, parallel=True)
def sampled_mttkrp(fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out, n_parts):
    """``out += sum_s weight_s * X[:, fiber_s] design_s^T``: the MTTKRP of the sampled, reweighted rows.

    The samples are cut into ``n_parts`` equal consecutive parts, each accumulated into its own
    zeroed (I_mode, R) buffer in parallel, then the buffers are added to ``out`` in part order: the result
    depends on ``n_parts`` (rounding) but not on the number of threads.

    Parameters
    ----------
    fiber_ptr : int64 (F + 1,)
    fiber_rows : int32 or int64 (nnz,), the mode index of each nonzero in fiber order
    fiber_values : float64 (nnz,), its value
    sample_fiber : int64 (S,), fiber of each distinct sample or -1
    sample_weights : float64 (S,), the summed weights 1 / (J * probability) of its draws
    design : float64 (S, R), the sampled Khatri-Rao rows
    out : float64 (I_mode, R), accumulated into
    n_parts : int >= 1; 1 accumulates straight into ``out`` on one thread (output rows of different
        samples may collide, so parts need buffers of their own: ``n_parts * I_mode * R`` floats)
    """
    n = sample_fiber.shape[0]
    if n_parts <= 1:
        _accumulate_samples(
            0, n, fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out
        )
        return
    partial = np.zeros((n_parts, out.shape[0], out.shape[1]))
    for part in prange(n_parts):
        _accumulate_samples(
            part * n // n_parts,
            (part + 1) * n // n_parts,
            fiber_ptr,
            fiber_rows,
            fiber_values,
            sample_fiber,
            sample_weights,
            design,
            partial[part],
        )
    for part in range(n_parts):
        out += partial[part]
