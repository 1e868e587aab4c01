"""Per-mode sorted layouts of a SparseTensor for the MTTKRP kernels, built once and cached on the tensor.

See :mod:`multilinear.kernels.mttkrp` for what a layout holds. Each layout costs
``nnz * ((N - 1) * 4 + 8)`` bytes with int32 rows (int64 rows when the stacked factors have ``2**31`` rows
or more, ``(N - 1) * 8 + 8`` bytes per nonzero), plus ``8 * (I_n + 1)`` for the row pointers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multilinear.tensor.sparse import SparseTensor


@dataclass(frozen=True)
class ModeLayout:
    """Nonzeros of one mode sorted by their index in that mode.

    Attributes
    ----------
    mode : int
    column_modes : tuple of int, length N - 1
        The mode of each column of ``sorted_rows``: the fiber mode first (ties within a slice are sorted
        by it), then the remaining modes in order.
    row_ptr : ndarray of int64, shape (I_mode + 1,)
    sorted_rows : ndarray of int32 or int64, shape (nnz, N - 1)
        Rows of the stacked factor matrices of the other modes, columns as in ``column_modes``.
    sorted_values : ndarray of float64, shape (nnz,)
    fibers : int
        Number of fibers: runs of consecutive nonzeros sharing their (mode, fiber mode) indices.
    fiber_sorted : bool
        Whether each slice is sorted by the fiber mode (then ``fibers`` counts the distinct index pairs).
        The sort costs a second counting sort (about 3x the build time of a layout), so it is done only
        when ``I_mode * I_fiber < nnz``, i.e. when fibers must average more than one nonzero.
    """

    mode: int
    column_modes: tuple[int, ...]
    row_ptr: np.ndarray
    sorted_rows: np.ndarray
    sorted_values: np.ndarray
    fibers: int
    fiber_sorted: bool

    @property
    def factor_fibers(self) -> bool:
        """Whether the kernel should factor fibers out: when they average two nonzeros or more (measured:
        fibers of ~1.4 nonzeros made the MTTKRP slower, of 7-290 faster)."""
        return self.sorted_values.shape[0] >= MIN_FIBER_LENGTH * self.fibers

    @property
    def nbytes(self) -> int:
        """Memory held by the layout."""
        return int(self.row_ptr.nbytes + self.sorted_rows.nbytes + self.sorted_values.nbytes)


def stacked_offsets(shape: tuple[int, ...]) -> np.ndarray:
    """First row of each mode's factor in the stacked factor matrix, shape (N,) int64."""
    return np.concatenate(([0], np.cumsum(shape[:-1], dtype=np.int64))).astype(np.int64)


def stack_factors(factors: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """Copy factor matrices ``(I_n, R)`` into one C-contiguous ``(sum(I_n), R)`` float64 array."""
    total = sum(f.shape[0] for f in factors)
    rank = factors[0].shape[1]
    if out is None:
        out = np.empty((total, rank), dtype=np.float64)
    start = 0
    for f in factors:
        out[start : start + f.shape[0]] = f
        start += f.shape[0]
    return out


def mode_layout(X: SparseTensor, mode: int) -> ModeLayout:
    """The layout of ``mode`` for ``X``, built on first use and kept in ``X._cache``."""
    key = ("mttkrp_layout", mode)
    cached = X._cache.get(key)
    if cached is not None:
        return cached
    from multilinear.kernels.mttkrp import build_mode_layout

    row_dtype = np.int32 if sum(X.shape) < 2**31 else np.int64
    row_ptr = np.empty(X.shape[mode] + 1, dtype=np.int64)
    sorted_rows = np.empty((X.nnz, X.ndim - 1), dtype=row_dtype)
    sorted_values = np.empty(X.nnz, dtype=np.float64)
    offsets = stacked_offsets(X.shape)
    others = [m for m in range(X.ndim) if m != mode]
    # the smallest other mode: its indices repeat most within a slice, so its fibers are longest
    fiber_mode = min(others, key=lambda m: X.shape[m])
    fiber_sorted = X.shape[mode] * X.shape[fiber_mode] < X.nnz
    fibers = build_mode_layout(
        X.indices,
        X.values,
        mode,
        fiber_mode,
        X.shape[fiber_mode] if fiber_sorted else 0,
        offsets,
        row_ptr,
        sorted_rows,
        sorted_values,
    )
    column_modes = (fiber_mode, *(m for m in others if m != fiber_mode))
    layout = ModeLayout(mode, column_modes, row_ptr, sorted_rows, sorted_values, int(fibers), fiber_sorted)
    X._cache[key] = layout
    return layout


# Average fiber length from which the MTTKRP kernel factors fibers out.
MIN_FIBER_LENGTH = 2.0

# Fewer nonzeros than this per chunk is not worth a thread (nor a parallel region).
MIN_NONZEROS_PER_CHUNK = 16384


def parallel_chunks(nnz: int) -> int:
    """Equal-nonzero ranges for the parallel kernels: four per numba thread, none below
    ``MIN_NONZEROS_PER_CHUNK`` nonzeros; 1 means "run the serial kernel"."""
    import numba

    return max(1, min(4 * numba.get_num_threads(), nnz // MIN_NONZEROS_PER_CHUNK))
