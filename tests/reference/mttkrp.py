"""Reference MTTKRP and CP helpers written with numpy only: mode-n unfolding times the Khatri-Rao product.

Conventions (Kolda & Bader): the mode-n unfolding ``X_(n)`` is ``(I_n, prod_{m != n} I_m)`` with the
earliest remaining mode varying fastest (Fortran order over the other modes), and the Khatri-Rao product of
the other factors is taken in reverse mode order, so that ``X_(n) @ KRP`` is the MTTKRP.
"""

from __future__ import annotations

import numpy as np


def unfold(X: np.ndarray, mode: int) -> np.ndarray:
    """Mode-``mode`` unfolding, shape (I_mode, prod of the other sizes), other modes in Fortran order."""
    return np.reshape(np.moveaxis(X, mode, 0), (X.shape[mode], -1), order="F")


def khatri_rao(matrices: list[np.ndarray]) -> np.ndarray:
    """Column-wise Kronecker product; the row index of the last matrix varies slowest."""
    rank = matrices[0].shape[1]
    out = np.ones((1, rank))
    for m in matrices:
        # the new matrix's row index varies slowest: rows (i_new, i_old) -> i_new * len(out) + i_old
        out = (m[:, None, :] * out[None, :, :]).reshape(-1, rank)
    return out


def reference_mttkrp(X: np.ndarray, factors: list[np.ndarray], mode: int) -> np.ndarray:
    """``unfold(X, mode) @ khatri_rao(other factors)``, shape (I_mode, R)."""
    others = [factors[m] for m in range(X.ndim) if m != mode]
    return unfold(X, mode) @ khatri_rao(others)


def kruskal_to_dense(weights: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    """The dense tensor ``sum_r weights[r] * outer(factors[0][:, r], ..., factors[N-1][:, r])``."""
    shape = tuple(f.shape[0] for f in factors)
    krp = khatri_rao(factors[1:])  # (prod I_1.., R)
    unfolded = (factors[0] * weights) @ krp.T  # mode-0 unfolding
    return np.reshape(unfolded, shape, order="F")
