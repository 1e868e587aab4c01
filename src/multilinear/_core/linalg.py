"""Products over the rows of long factor matrices, in fixed pieces of rows on the small thread pool.

Inside ``cp_als`` BLAS runs on one thread, so a product over a long factor (10^6 rows) would use one core;
and one call over the whole factor allocates its full-size temporaries, whose fresh pages were measured to
cost more than the arithmetic (leverage scores of a 10^6 x 100 factor inside the sketched loop: 2.3-3.1 s
whole, 0.33 s in pieces of 4,096 rows). Pieces are fixed by the row count alone and partial sums are added
in piece order, so a result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from multilinear._core.threads import run_pieces

GRAM_PIECE_ROWS = 2**16  # rows per partial Gram matrix
ROW_FORM_PIECE_ROWS = 2**12  # rows per piece of a row-wise quadratic form (its temporary stays in cache)


def gram(matrix: np.ndarray) -> np.ndarray:
    """``matrix.T @ matrix`` for a 2-D float64 matrix, summed over fixed pieces of rows."""
    rows = matrix.shape[0]
    if rows <= GRAM_PIECE_ROWS:
        return matrix.T @ matrix
    starts = range(0, rows, GRAM_PIECE_ROWS)
    parts: list[np.ndarray | None] = [None] * len(starts)

    def piece(start: int) -> None:
        block = matrix[start : start + GRAM_PIECE_ROWS]
        parts[start // GRAM_PIECE_ROWS] = block.T @ block

    run_pieces(piece, starts)
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def row_quadratic_forms(matrix: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """``diag(matrix @ middle @ matrix.T)``, shape (rows,), in pieces of rows (no (rows, R) temporary)."""
    rows = matrix.shape[0]
    out = np.empty(rows, dtype=np.float64)

    def piece(start: int) -> None:
        block = matrix[start : start + ROW_FORM_PIECE_ROWS]
        np.einsum("ir,ir->i", block @ middle, block, out=out[start : start + ROW_FORM_PIECE_ROWS])

    run_pieces(piece, range(0, rows, ROW_FORM_PIECE_ROWS))
    return out
