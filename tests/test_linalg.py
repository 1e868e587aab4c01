"""Row-piece products of long factors (``multilinear._core.linalg``) against whole-array numpy."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear._core.threads as threads_module
from multilinear._core import linalg
from multilinear._core.threads import thread_limits
from multilinear.sampling._common import factor_leverage_scores


@pytest.mark.parametrize("rows", [7, linalg.GRAM_PIECE_ROWS, 2 * linalg.GRAM_PIECE_ROWS + 321])
def test_gram_and_row_forms_match_whole_array_products_at_any_pool_size(monkeypatch, rows) -> None:
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((rows, 6)) * rng.lognormal(size=(rows, 1))
    middle = rng.standard_normal((6, 6))
    middle = middle @ middle.T
    results = []
    for threads in (1, 2):  # the pool's size (serial for 1)
        monkeypatch.setattr(threads_module, "default_threads", lambda threads=threads: threads)
        with thread_limits(blas_threads=1):
            results.append((linalg.gram(matrix), linalg.row_quadratic_forms(matrix, middle)))
    gram, forms = results[0]
    whole = matrix.T @ matrix
    np.testing.assert_allclose(gram, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())
    np.testing.assert_array_equal(gram, gram.T)
    np.testing.assert_allclose(
        forms, np.einsum("ir,rs,is->i", matrix, middle, matrix), rtol=1e-12, atol=1e-12
    )
    for a, b in zip(results[0], results[1]):  # same pieces, same sums: bitwise equal
        np.testing.assert_array_equal(a, b)


def test_leverage_scores_of_a_long_factor_match_the_projection_diagonal() -> None:
    rng = np.random.default_rng(5)
    factor = rng.standard_normal((3 * linalg.ROW_FORM_PIECE_ROWS + 17, 4))
    factor[:, 3] = factor[:, 0] - 2 * factor[:, 1]  # rank 3: the pseudo-inverse path
    q, _ = np.linalg.qr(factor[:, :3])
    scores = factor_leverage_scores(factor)
    np.testing.assert_allclose(scores, np.einsum("ir,ir->i", q, q), rtol=1e-9, atol=1e-12)
    assert abs(scores.sum() - 3.0) < 1e-9
