"""``stream_row``: non-temporal row copies, at every alignment and width, in both float dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from multilinear.kernels._stream import VECTOR_BYTES, store_fence, stream_row


@njit(cache=True)
def _stream_rows(dst, src):
    for row in range(dst.shape[0]):
        stream_row(dst, row, src[row])
    store_fence()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_row_copies_every_width_and_alignment(dtype):
    rng = np.random.default_rng(0)
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    for width in [0, 1, lanes - 1, lanes, lanes + 1, 3 * lanes + 5, 100]:
        # a view that starts 0..lanes-1 elements past an aligned address, rows of odd width
        for shift in range(lanes):
            base = np.full(9 * (width + 1) + lanes + 8, np.nan, dtype=dtype)
            offset = (-base.ctypes.data // np.dtype(dtype).itemsize) % lanes + shift
            dst = base[offset : offset + 9 * width].reshape(9, width)
            src = rng.standard_normal((9, width + 3)).astype(dtype)  # longer rows: only width columns move
            _stream_rows(dst, src)
            np.testing.assert_array_equal(dst, src[:, :width])
            # nothing outside the destination was touched
            assert np.isnan(base[:offset]).all() and np.isnan(base[offset + 9 * width :]).all()


def test_stream_row_rejects_mismatched_dtypes_and_strided_sources():
    with pytest.raises(Exception, match="stream_row"):
        _stream_rows(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float64))
    with pytest.raises(Exception, match="stream_row"):  # src[row] of a Fortran array is strided
        _stream_rows(np.zeros((2, 3)), np.asfortranarray(np.zeros((2, 3))))
