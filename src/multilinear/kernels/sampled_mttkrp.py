"""Kernels of the sketched least-squares step: fiber layouts and the sampled MTTKRP.

A *fiber layout* of mode ``n`` sorts the nonzeros by the row-major linear key of their indices in the
other modes, so all nonzeros of one mode-``n`` fiber are consecutive: ``fiber_keys`` (F,) ascending and
unique, ``fiber_ptr`` (F + 1,) their ranges, and the mode-``n`` index and value of each nonzero copied in
that order (``fiber_rows``, ``fiber_values``), so the sampled MTTKRP reads each fiber contiguously instead
of gathering from the tensor's arrays.
A sampled Khatri-Rao row is a tuple of indices of the other modes, i.e. one fiber key: binary search finds
its nonzeros.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange


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
    """Unique keys of an ascending key array and where each run starts; returns the number of fibers.

    ``fiber_keys_out`` may be ``sorted_keys`` itself (compacted in place: saves a key array's memory).
    """
    n = sorted_keys.shape[0]
    count = 0
    previous = 0
    for z in range(n):
        key = sorted_keys[z]
        if z == 0 or key != previous:
            fiber_keys_out[count] = key
            fiber_ptr_out[count] = z
            count += 1
        previous = key
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


@njit(cache=True, parallel=True)
def fiber_square_norms(fiber_ptr, fiber_values, out):
    """``out[f]`` = sum of the squared values of fiber ``f`` (F,)."""
    for f in prange(fiber_ptr.shape[0] - 1):
        total = 0.0
        for p in range(fiber_ptr[f], fiber_ptr[f + 1]):
            total += fiber_values[p] * fiber_values[p]
        out[f] = total


@njit(cache=True, parallel=True)
def _sampled_entries(
    fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, shift, n_buckets, n_parts
):
    """The sampled nonzeros grouped by bucket of output rows ``row >> shift``, in sample order within each.

    The samples are cut into ``n_parts`` consecutive parts that count, then scatter, their entries
    in parallel; a bucket holds part 0's entries, then part 1's, ..., so it lists its entries in sample
    order whatever the number of parts. A pass with ``n_buckets`` output streams per part stays in cache
    where a sort by row would scatter at random. Returns the bucket starts (B + 1,) and each entry's row,
    sample and scale ``weight_s * value``.
    """
    n_samples = sample_fiber.shape[0]
    n_parts = max(1, min(n_parts, n_samples))
    counts = np.zeros((n_parts, n_buckets), dtype=np.int64)
    for part in prange(n_parts):
        for s in range(part * n_samples // n_parts, (part + 1) * n_samples // n_parts):
            fiber = sample_fiber[s]
            if fiber >= 0:
                for p in range(fiber_ptr[fiber], fiber_ptr[fiber + 1]):
                    counts[part, fiber_rows[p] >> shift] += 1
    bucket_ptr = np.zeros(n_buckets + 1, dtype=np.int64)
    cursor = np.empty((n_parts, n_buckets), dtype=np.int64)
    total = 0
    for bucket in range(n_buckets):
        bucket_ptr[bucket] = total
        for part in range(n_parts):
            cursor[part, bucket] = total
            total += counts[part, bucket]
    bucket_ptr[n_buckets] = total
    entry_row = np.empty(total, dtype=np.int64)
    entry_sample = np.empty(total, dtype=np.int32)
    entry_scale = np.empty(total)
    for part in prange(n_parts):
        for s in range(part * n_samples // n_parts, (part + 1) * n_samples // n_parts):
            fiber = sample_fiber[s]
            if fiber >= 0:
                weight = sample_weights[s]
                for p in range(fiber_ptr[fiber], fiber_ptr[fiber + 1]):
                    row = fiber_rows[p]
                    position = cursor[part, row >> shift]
                    cursor[part, row >> shift] = position + 1
                    entry_row[position] = row
                    entry_sample[position] = s
                    entry_scale[position] = weight * fiber_values[p]
    return bucket_ptr, entry_row, entry_sample, entry_scale


@njit(cache=True, parallel=True)
def _accumulate_buckets(bucket_ptr, shift, entry_row, entry_sample, entry_scale, design, out):
    """``out[row] = sum of entry_scale * design[entry_sample]`` over each row's entries, buckets in parallel.

    A bucket's rows are its own (it zeroes them first, so ``out`` needs no zeroing pass and is first
    touched in parallel), and its entries are in sample order: each row sums its terms in sample order
    whichever thread runs the bucket.
    """
    rank = design.shape[1]
    for bucket in prange(bucket_ptr.shape[0] - 1):
        for row in range(bucket << shift, min((bucket + 1) << shift, out.shape[0])):
            for r in range(rank):
                out[row, r] = 0.0
        for position in range(bucket_ptr[bucket], bucket_ptr[bucket + 1]):
            row = entry_row[position]
            scale = entry_scale[position]
            s = entry_sample[position]
            for r in range(rank):
                out[row, r] += scale * design[s, r]


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
def _sampled_mttkrp_parts(
    fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out, n_parts
):
    """``out = ...`` (see :func:`sampled_mttkrp`) from ``n_parts`` consecutive parts of the samples, each
    accumulated into a zeroed buffer of its own in parallel, then added in part order (a fixed part
    count: the result does not depend on the number of threads)."""
    n = sample_fiber.shape[0]
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
    out[:] = partial[0]
    for part in range(1, n_parts):
        out += partial[part]


_BUCKET_BYTES = 2**19  # output rows per bucket: about this many bytes of ``out`` (stays in L2)
_PARTS = 8  # private buffers of the small-output path
_SMALL_OUT_BYTES = 4 * 2**20  # outputs up to this size use private buffers (measured: 2-2.5x faster than
# buckets on 4000 x 50 outputs, where scattering into a cache-resident buffer costs less than bucketing)


def sampled_mttkrp(fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out):
    """``out = sum_s weight_s * X[:, fiber_s] design_s^T``: the MTTKRP of the sampled, reweighted rows.

    Small outputs (up to ``_SMALL_OUT_BYTES``, which stay in cache) are accumulated by ``_PARTS``
    consecutive parts of the samples into private buffers, added in part order. Larger ones: the
    nonzeros of the sampled fibers are first grouped into buckets of consecutive output rows (a
    counting pass and a scattering pass, both in parallel over parts of the samples), then each bucket
    is computed by one thread into its slice of ``out``, which stays in cache, instead of scattering
    into a large ``out`` at random; each row sums its terms in sample order. Either way the result does
    not depend on the number of threads.

    Parameters
    ----------
    fiber_ptr : int64 (F + 1,)
    fiber_rows : int32 or int64 (nnz,), the mode index of each nonzero in fiber order
    fiber_values : float64 (nnz,), its value
    sample_fiber : int64 (S,), fiber of each distinct sample or -1 (S < 2**31)
    sample_weights : float64 (S,), the summed weights 1 / (J * probability) of its draws
    design : float64 (S, R), the sampled Khatri-Rao rows
    out : float64 (I_mode, R), overwritten (its previous contents do not matter)
    """
    if out.nbytes <= _SMALL_OUT_BYTES:
        _sampled_mttkrp_parts(
            fiber_ptr, fiber_rows, fiber_values, sample_fiber, sample_weights, design, out, _PARTS
        )
        return
    rows, rank = out.shape
    shift = max(0, (_BUCKET_BYTES // (8 * max(1, rank))).bit_length() - 1)
    bucket_ptr, entry_row, entry_sample, entry_scale = _sampled_entries(
        fiber_ptr,
        fiber_rows,
        fiber_values,
        sample_fiber,
        sample_weights,
        shift,
        ((rows - 1) >> shift) + 1,
        get_num_threads(),  # one part per thread; the entries' order does not depend on it
    )
    _accumulate_buckets(bucket_ptr, shift, entry_row, entry_sample, entry_scale, design, out)
