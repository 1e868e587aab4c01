"""Loading the binary ``.tns`` cache: widen compactly stored indices to int64."""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True)
def widen_rows(source, out, first, last):
    """out[k, m] = source[k, m] for rows ``first:last`` (unsigned indices of any width into int64)."""
    for k in range(first, last):
        for m in range(source.shape[1]):
            out[k, m] = source[k, m]


@njit(cache=True, parallel=True)
def widen_indices(source, out, nparts):
    """:func:`widen_rows` over all rows, in ``nparts`` parallel parts."""
    rows = source.shape[0]
    for part in prange(nparts):
        widen_rows(source, out, rows * part // nparts, rows * (part + 1) // nparts)
