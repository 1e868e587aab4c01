"""Oracles for the Khatri-Rao samplers: the materialised product and its leverage scores by QR."""

from __future__ import annotations

import numpy as np


def khatri_rao_rows(factors: list[np.ndarray]) -> np.ndarray:
    """The Khatri-Rao product of ``factors`` (each (I_k, R)), shape (prod I_k, R).

    Row order is row-major in ``(i_1, ..., i_M)``: the first factor's index varies slowest, so row
    ``np.ravel_multi_index((i_1, ..., i_M), dims)`` is ``U_1[i_1] * ... * U_M[i_M]``.
    """
    out = factors[0]
    for f in factors[1:]:
        out = (out[:, None, :] * f[None, :, :]).reshape(-1, f.shape[1])
    return out


def leverage_scores_qr(matrix: np.ndarray) -> np.ndarray:
    """Leverage scores of a full-column-rank matrix: squared row norms of Q in its thin QR."""
    q, r = np.linalg.qr(matrix)
    diag = np.abs(np.diag(r))
    if diag.min() <= diag.max() * matrix.shape[1] * 1e-12:
        raise ValueError("leverage_scores_qr needs a matrix of full column rank")
    return np.einsum("ir,ir->i", q, q)


def krp_leverage_distribution(factors: list[np.ndarray]) -> np.ndarray:
    """Exact leverage-score distribution over the rows of the materialised Khatri-Rao product."""
    scores = leverage_scores_qr(khatri_rao_rows(factors))
    return scores / scores.sum()


def product_leverage_distribution(factors: list[np.ndarray]) -> np.ndarray:
    """Product of the factors' own leverage-score distributions, in the same row order."""
    out = np.ones(1)
    for f in factors:
        scores = leverage_scores_qr(f)
        out = np.outer(out, scores / scores.sum()).ravel()
    return out
