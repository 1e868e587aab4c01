"""Stable parallel argsort of non-negative int64 keys (least-significant-digit radix sort).

Building a sampled solver's fiber layout sorts one int64 key per nonzero. ``np.argsort`` runs on one
thread and, on keys in random order, took 4.1-7.5 s for the 6·10^7 nonzeros of the count tensor of
``docs/benchmarks/randomized_cp.md`` (1.5 s on nearly sorted keys); this sort 0.9-2.4 s on 2 threads,
its output included (the count tensor's three fiber layouts: 24.4 -> 8.2 s). It takes a few
passes over the keys (``ceil(bits / 11)`` for keys below ``2**bits``), each pass a histogram per thread
chunk, a prefix sum, and a scatter that keeps the order within a chunk: the result is the stable order,
whatever the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

DIGIT_BITS = 11  # 2,048 buckets per pass (8 to 13 bits measured within noise of each other; 13 slowest)


@njit(cache=True, parallel=True)
def _iota(out):
    for i in prange(out.shape[0]):
        out[i] = i


@njit(cache=True, parallel=True)
def _radix_pass(src_keys, src_perm, dst_keys, dst_perm, shift, counts):
    """Scatter (key, position) pairs by the digit ``(key >> shift) & (buckets - 1)``, stably.

    ``counts`` (chunks, buckets) is scratch; chunk ``c`` is the c-th contiguous piece of the input.
    """
    n = src_keys.shape[0]
    chunks, buckets = counts.shape
    mask = buckets - 1
    size = (n + chunks - 1) // chunks
    for c in prange(chunks):
        row = counts[c]
        row[:] = 0
        for i in range(c * size, min(n, (c + 1) * size)):
            row[(src_keys[i] >> shift) & mask] += 1
    total = 0
    for b in range(buckets):  # exclusive prefix sum in (bucket, chunk) order: the stable positions
        for c in range(chunks):
            count = counts[c, b]
            counts[c, b] = total
            total += count
    for c in prange(chunks):
        cursor = counts[c]
        for i in range(c * size, min(n, (c + 1) * size)):
            digit = (src_keys[i] >> shift) & mask
            position = cursor[digit]
            dst_keys[position] = src_keys[i]
            dst_perm[position] = src_perm[i]
            cursor[digit] = position + 1


def argsort_nonnegative(
    keys: np.ndarray, index_dtype=np.int64, *, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The keys sorted ascending and the stable sorting permutation (``np.argsort(kind="stable")``).

    Parameters
    ----------
    keys : int64 (n,), every key >= 0
    index_dtype : int32 or int64, the permutation's dtype (int32 needs n < 2**31)
    overwrite : bool
        Let the sort use ``keys`` as scratch (saves a key array's memory; ``keys`` is then garbage).

    Returns
    -------
    sorted_keys : int64 (n,)
    permutation : index_dtype (n,), ``keys[permutation] == sorted_keys``, equal keys in input order
    """
    if keys.dtype != np.int64 or keys.ndim != 1 or not keys.flags.c_contiguous:
        raise TypeError(
            f"keys must be a 1-D C-contiguous int64 array, got {keys.dtype} with shape {keys.shape}"
        )
    n = keys.shape[0]
    if np.dtype(index_dtype) == np.int32 and n >= 2**31:
        raise ValueError(f"{n} keys need an int64 permutation")
    permutation = np.empty(n, dtype=index_dtype)
    _iota(permutation)
    if n < 2:
        return keys.copy(), permutation
    low, high = int(keys.min()), int(keys.max())
    if low < 0:
        raise ValueError(f"argsort_nonnegative needs keys >= 0, got {low}")
    passes = -(-max(1, high.bit_length()) // DIGIT_BITS)
    chunks = max(1, min(numba.get_num_threads(), n // 65536))
    counts = np.empty((chunks, 1 << DIGIT_BITS), dtype=np.int64)
    key_src, key_dst = keys, np.empty_like(keys)
    perm_src, perm_dst = permutation, np.empty_like(permutation)
    for p in range(passes):
        _radix_pass(key_src, perm_src, key_dst, perm_dst, p * DIGIT_BITS, counts)
        if p + 1 < passes:
            # the next pass writes into the buffer this one read, unless that is the caller's keys
            spare = key_src if (p > 0 or overwrite) else np.empty_like(keys)
        else:
            spare = None
        key_src, key_dst = key_dst, spare
        perm_src, perm_dst = perm_dst, perm_src
    return key_src, perm_src


@njit(cache=True, parallel=True)
def gather(source, permutation, out):
    """``out[i] = source[permutation[i]]`` (1-D), in parallel."""
    for i in prange(out.shape[0]):
        out[i] = source[permutation[i]]


@njit(cache=True, parallel=True)
def gather_column(source, column, permutation, out):
    """``out[i] = source[permutation[i], column]`` (``source`` 2-D), in parallel."""
    for i in prange(out.shape[0]):
        out[i] = source[permutation[i], column]
