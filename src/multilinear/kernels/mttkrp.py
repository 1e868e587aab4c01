"""Sparse MTTKRP kernels (matricized tensor times Khatri-Rao product) and the model inner product.

Layout. The factor matrices of all modes are stacked into one C-contiguous ``(sum(I_n), R)`` array
``stacked``; mode ``m`` occupies rows ``offsets[m] : offsets[m] + I_m``. For each mode ``n`` a *mode layout*
holds the nonzeros sorted by their mode-``n`` index and, within a slice, by their index in a *fiber mode*
``f`` (two counting sorts, built once per tensor and mode):

- ``row_ptr`` ``(I_n + 1,)`` int64: the nonzeros of slice ``i`` are positions ``row_ptr[i]:row_ptr[i + 1]``;
- ``sorted_rows`` ``(nnz, N - 1)`` int32 (or int64 when ``sum(I_n) >= 2**31``): for each nonzero, the rows
  of ``stacked`` of the *other* modes, already offset: mode ``f`` first, then the rest in mode order;
- ``sorted_values`` ``(nnz,)`` float64.

The mode-``n`` MTTKRP is then ``out[i, :] = sum_p sorted_values[p] * prod_k stacked[sorted_rows[p, k], :]``
over the positions ``p`` of slice ``i``: a stream over three arrays with gathers from factor rows. Within a
slice, the nonzeros sharing their mode-``f`` index (a fiber, as in CSF) are consecutive, so the kernel sums
the products of the remaining modes over the fiber and multiplies by the mode-``f`` row once per fiber:
one gather and one multiply per nonzero fewer wherever fibers are long.

Parallelism. The positions are cut into ``n_chunks`` ranges of equal nonzero count (so power-law modes
balance), each handled by one ``prange`` iteration. A chunk writes the slices it covers completely straight
into ``out``; a slice cut by a chunk boundary (a heavy slice split across threads) is summed into a
per-chunk partial buffer and added serially afterwards. No two threads ever write the same row. Tensors
too small to gain from threads use the ``*_serial`` twins (a parallel region costs a thread wake-up, which
on a loaded machine can take milliseconds).
Loops over the rank ``R`` are innermost and contiguous.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from multilinear.kernels._prefetch import prefetch_row

# Rows of the nonzero this many positions ahead are prefetched (measured: 8 and 16 alike, 32 worse).
PREFETCH_DISTANCE = 8


@njit(cache=True)
def _counting_sort(keys, dim, order_in, row_ptr, order_out):  # pragma: no cover
    """Stable counting sort of the positions ``order_in`` by ``keys[position]`` (keys in ``0..dim-1``);
    ``row_ptr`` (dim + 1,) receives the bucket starts."""
    row_ptr[:] = 0
    for p in range(keys.shape[0]):
        row_ptr[keys[p] + 1] += 1
    for i in range(dim):
        row_ptr[i + 1] += row_ptr[i]
    fill = row_ptr[:-1].copy()
    for t in range(order_in.shape[0]):
        p = order_in[t]
        i = keys[p]
        order_out[fill[i]] = p
        fill[i] += 1


@njit(cache=True)
def build_mode_layout(
    indices, values, mode, fiber_mode, fiber_dim, offsets, row_ptr, sorted_rows, sorted_values
):  # pragma: no cover
    """Sort the nonzeros by their index in ``mode``, ties by their index in ``fiber_mode`` (two stable
    counting sorts), and gather the other modes' stacked rows and the values in that order.

    Parameters
    ----------
    indices : int64 (nnz, N)
    values : float64 (nnz,)
    mode : int
    fiber_mode : int, another mode: the nonzeros of a slice that share their index in it (a fiber) are
        consecutive
    fiber_dim : int, size of ``fiber_mode``, or 0 to skip the sort by it (ties then keep their order;
        consecutive nonzeros sharing their fiber-mode index still count as one fiber)
    offsets : int64 (N,), first row of each mode in the stacked factors
    row_ptr : int64 (I_mode + 1,), output
    sorted_rows : int32 or int64 (nnz, N - 1), output: stacked rows of the other modes, ``fiber_mode``
        first and the rest in mode order
    sorted_values : float64 (nnz,), output

    Returns
    -------
    int, the number of fibers: runs of consecutive nonzeros with the same (mode, fiber_mode) indices
    (when sorted by the fiber mode, the number of distinct such pairs)
    """
    nnz, nmodes = indices.shape
    by_fiber = np.arange(nnz)
    if fiber_dim > 0:
        first_pass = np.empty(nnz, dtype=np.int64)
        _counting_sort(
            indices[:, fiber_mode], fiber_dim, by_fiber, np.empty(fiber_dim + 1, dtype=np.int64), first_pass
        )
        by_fiber = first_pass
    order = np.empty(nnz, dtype=np.int64)
    _counting_sort(indices[:, mode], row_ptr.shape[0] - 1, by_fiber, row_ptr, order)
    fibers = 0
    for q in range(nnz):
        p = order[q]
        sorted_values[q] = values[p]
        sorted_rows[q, 0] = offsets[fiber_mode] + indices[p, fiber_mode]
        k = 1
        for m in range(nmodes):
            if m != mode and m != fiber_mode:
                sorted_rows[q, k] = offsets[m] + indices[p, m]
                k += 1
        if (
            q == 0
            or indices[p, mode] != indices[order[q - 1], mode]
            or sorted_rows[q, 0] != sorted_rows[q - 1, 0]
        ):
            fibers += 1
    return fibers


@njit(cache=True)
def _flush_fiber(row, fiber, stacked, acc):  # pragma: no cover
    """acc += stacked[row, :] * fiber (a fiber's sum times the row of its shared index)."""
    for r in range(acc.shape[0]):
        acc[r] += stacked[row, r] * fiber[r]
        fiber[r] = 0.0


@njit(cache=True)
def _accumulate_flat(start, stop, sorted_rows, sorted_values, stacked, acc, tmp):  # pragma: no cover
    """acc[:] = sum over positions start..stop-1 of value * Hadamard product of the stacked rows."""
    rank = acc.shape[0]
    others = sorted_rows.shape[1]
    nnz = sorted_values.shape[0]
    for r in range(rank):
        acc[r] = 0.0
    if others == 1:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 0])
            v = sorted_values[q]
            a = sorted_rows[q, 0]
            for r in range(rank):
                acc[r] += v * stacked[a, r]
    elif others == 2:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 0])
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 1])
            v = sorted_values[q]
            a = sorted_rows[q, 0]
            b = sorted_rows[q, 1]
            for r in range(rank):
                acc[r] += v * stacked[a, r] * stacked[b, r]
    elif others == 3:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 0])
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 1])
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 2])
            v = sorted_values[q]
            a = sorted_rows[q, 0]
            b = sorted_rows[q, 1]
            c = sorted_rows[q, 2]
            for r in range(rank):
                acc[r] += v * stacked[a, r] * stacked[b, r] * stacked[c, r]
    else:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                for k in range(others):
                    prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, k])
            v = sorted_values[q]
            a = sorted_rows[q, 0]
            for r in range(rank):
                tmp[r] = v * stacked[a, r]
            for k in range(1, others):
                b = sorted_rows[q, k]
                for r in range(rank):
                    tmp[r] *= stacked[b, r]
            for r in range(rank):
                acc[r] += tmp[r]


@njit(cache=True)
def _accumulate_fibers(start, stop, sorted_rows, sorted_values, stacked, acc, fiber, tmp):  # pragma: no cover
    """``_accumulate_flat`` with fibers factored out (for layouts whose fibers are long).

    Fibers (consecutive positions with the same row in column 0) are factored: the Hadamard products of
    the remaining columns are summed first, then multiplied once by the shared row.
    """
    rank = acc.shape[0]
    others = sorted_rows.shape[1]
    nnz = sorted_values.shape[0]
    for r in range(rank):
        acc[r] = 0.0
        fiber[r] = 0.0
    current = sorted_rows[start, 0]
    if others == 1:
        total = 0.0
        for q in range(start, stop):
            a = sorted_rows[q, 0]
            if a != current:
                for r in range(rank):
                    acc[r] += stacked[current, r] * total
                total = 0.0
                current = a
            total += sorted_values[q]
        for r in range(rank):
            acc[r] += stacked[current, r] * total
        return
    if others == 2:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 1])
            a = sorted_rows[q, 0]
            if a != current:
                _flush_fiber(current, fiber, stacked, acc)
                current = a
            v = sorted_values[q]
            b = sorted_rows[q, 1]
            for r in range(rank):
                fiber[r] += v * stacked[b, r]
    elif others == 3:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 1])
                prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, 2])
            a = sorted_rows[q, 0]
            if a != current:
                _flush_fiber(current, fiber, stacked, acc)
                current = a
            v = sorted_values[q]
            b = sorted_rows[q, 1]
            c = sorted_rows[q, 2]
            for r in range(rank):
                fiber[r] += v * stacked[b, r] * stacked[c, r]
    else:
        for q in range(start, stop):
            if q + PREFETCH_DISTANCE < nnz:
                for k in range(1, others):
                    prefetch_row(stacked, sorted_rows[q + PREFETCH_DISTANCE, k])
            a = sorted_rows[q, 0]
            if a != current:
                _flush_fiber(current, fiber, stacked, acc)
                current = a
            v = sorted_values[q]
            b = sorted_rows[q, 1]
            for r in range(rank):
                tmp[r] = v * stacked[b, r]
            for k in range(2, others):
                b = sorted_rows[q, k]
                for r in range(rank):
                    tmp[r] *= stacked[b, r]
            for r in range(rank):
                fiber[r] += tmp[r]
    _flush_fiber(current, fiber, stacked, acc)


@njit(cache=True)
def _mttkrp_chunk(
    c, n_chunks, row_ptr, sorted_rows, sorted_values, stacked, out, partial, partial_row, use_fibers
):  # pragma: no cover
    """Positions ``[c * nnz // n_chunks, (c + 1) * nnz // n_chunks)``: whole slices into ``out``, cut ones
    into ``partial[c]``; also zeroes the empty rows after its last slice (and before its first, for c = 0)."""
    dim, rank = out.shape
    nnz = sorted_values.shape[0]
    start = (c * nnz) // n_chunks
    stop = ((c + 1) * nnz) // n_chunks
    if start >= stop:
        return
    acc = np.empty(rank)
    fiber = np.empty(rank)
    tmp = np.empty(rank)
    row = np.searchsorted(row_ptr, start, side="right") - 1
    if c == 0:
        for i in range(row):
            for r in range(rank):
                out[i, r] = 0.0
    p = start
    while True:
        row_stop = min(row_ptr[row + 1], stop)
        if use_fibers:
            _accumulate_fibers(p, row_stop, sorted_rows, sorted_values, stacked, acc, fiber, tmp)
        else:
            _accumulate_flat(p, row_stop, sorted_rows, sorted_values, stacked, acc, tmp)
        if p == row_ptr[row] and row_stop == row_ptr[row + 1]:
            for r in range(rank):
                out[row, r] = acc[r]
        else:
            slot = 0 if p == start else 1
            partial_row[c, slot] = row
            for r in range(rank):
                partial[c, slot, r] = acc[r]
        p = row_stop
        # empty rows up to the next nonempty one (or the end) belong to this chunk
        row += 1
        while row < dim and row_ptr[row + 1] == row_ptr[row]:
            for r in range(rank):
                out[row, r] = 0.0
            row += 1
        if p >= stop:
            return


@njit(cache=True)
def _add_partial_rows(partial, partial_row, out):  # pragma: no cover
    """Sum the cut slices' partial rows into ``out``; partial rows come in nondecreasing row order."""
    n_chunks, _, rank = partial.shape
    last = -1
    for c in range(n_chunks):
        for slot in range(2):
            row = partial_row[c, slot]
            if row < 0:
                continue
            if row != last:
                for r in range(rank):
                    out[row, r] = partial[c, slot, r]
                last = row
            else:
                for r in range(rank):
                    out[row, r] += partial[c, slot, r]


@njit(parallel=True, cache=True)
def mttkrp_sorted(
    row_ptr, sorted_rows, sorted_values, stacked, out, n_chunks, use_fibers
):  # pragma: no cover
    """MTTKRP of one mode from its layout (see the module docstring); writes every row of ``out``.

    Parameters
    ----------
    row_ptr : int64 (I + 1,)
    sorted_rows : int32 or int64 (nnz, N - 1)
    sorted_values : float64 (nnz,)
    stacked : float64 (sum(I_n), R), C-contiguous
    out : float64 (I, R), C-contiguous, output
    n_chunks : int >= 1, number of equal-nonzero ranges processed in parallel
    use_fibers : bool, factor fibers out (worth it when fibers average 2 nonzeros or more)
    """
    rank = out.shape[1]
    if sorted_values.shape[0] == 0:
        out[:] = 0.0
        return
    partial = np.zeros((n_chunks, 2, rank))
    partial_row = np.full((n_chunks, 2), -1, dtype=np.int64)
    for c in prange(n_chunks):
        _mttkrp_chunk(
            c, n_chunks, row_ptr, sorted_rows, sorted_values, stacked, out, partial, partial_row, use_fibers
        )
    _add_partial_rows(partial, partial_row, out)


@njit(cache=True)
def mttkrp_sorted_serial(
    row_ptr, sorted_rows, sorted_values, stacked, out, n_chunks, use_fibers
):  # pragma: no cover
    """``mttkrp_sorted`` on the calling thread only (small tensors: no parallel-region overhead)."""
    rank = out.shape[1]
    if sorted_values.shape[0] == 0:
        out[:] = 0.0
        return
    partial = np.zeros((n_chunks, 2, rank))
    partial_row = np.full((n_chunks, 2), -1, dtype=np.int64)
    for c in range(n_chunks):
        _mttkrp_chunk(
            c, n_chunks, row_ptr, sorted_rows, sorted_values, stacked, out, partial, partial_row, use_fibers
        )
    _add_partial_rows(partial, partial_row, out)


@njit(cache=True)
def _inner_product_chunk(c, n_chunks, indices, values, offsets, stacked, weights):  # pragma: no cover
    nnz, nmodes = indices.shape
    rank = stacked.shape[1]
    start = (c * nnz) // n_chunks
    stop = ((c + 1) * nnz) // n_chunks
    tmp = np.empty(rank)
    total = 0.0
    for p in range(start, stop):
        if p + PREFETCH_DISTANCE < nnz:
            for m in range(nmodes):
                prefetch_row(stacked, offsets[m] + indices[p + PREFETCH_DISTANCE, m])
        a = offsets[0] + indices[p, 0]
        for r in range(rank):
            tmp[r] = weights[r] * stacked[a, r]
        for m in range(1, nmodes):
            b = offsets[m] + indices[p, m]
            for r in range(rank):
                tmp[r] *= stacked[b, r]
        s = 0.0
        for r in range(rank):
            s += tmp[r]
        total += values[p] * s
    return total


@njit(parallel=True, cache=True)
def model_inner_product(indices, values, offsets, stacked, weights, n_chunks):  # pragma: no cover
    """<X, M> for a Kruskal model M = [[weights; factors]]: sum_p x_p * sum_r w_r prod_m U_m[i_pm, r].

    Parameters
    ----------
    indices : int64 (nnz, N), COO coordinates of X
    values : float64 (nnz,)
    offsets : int64 (N,), first row of each mode in ``stacked``
    stacked : float64 (sum(I_n), R), the stacked factor matrices
    weights : float64 (R,)
    n_chunks : int >= 1

    Returns
    -------
    float
    """
    sums = np.zeros(n_chunks)
    for c in prange(n_chunks):
        sums[c] = _inner_product_chunk(c, n_chunks, indices, values, offsets, stacked, weights)
    return sums.sum()


@njit(cache=True)
def model_inner_product_serial(indices, values, offsets, stacked, weights, n_chunks):  # pragma: no cover
    """``model_inner_product`` on the calling thread only."""
    return _inner_product_chunk(0, 1, indices, values, offsets, stacked, weights)
