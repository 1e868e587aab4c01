"""Checks and small linear-algebra helpers shared by the Khatri-Rao samplers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multilinear._core import linalg
from multilinear._core.validation import check_matrix, check_positive_int


def check_factors(factors: Any) -> list[np.ndarray]:
    """Return ``factors`` as a list of C-contiguous float64 matrices with the same column count.

    Raises
    ------
    TypeError
        If ``factors`` is not a sequence of matrices.
    ValueError
        If there are fewer than two, a factor is not 2-D or not finite, or the column counts differ.
    """
    if isinstance(factors, np.ndarray) or not isinstance(factors, Sequence):
        raise TypeError(f"factors must be a list of 2-D arrays, got {type(factors).__name__}")
    if len(factors) < 2:
        raise ValueError(f"factors must hold at least 2 matrices (one per mode), got {len(factors)}")
    out = [check_matrix(f, f"factors[{k}]") for k, f in enumerate(factors)]
    rank = out[0].shape[1]
    if rank < 1:
        raise ValueError("factors must have at least one column")
    for k, f in enumerate(out):
        if f.shape[1] != rank:
            raise ValueError(
                f"factors[{k}] has {f.shape[1]} columns but factors[0] has {rank}: all factors share the rank"
            )
        if f.shape[0] < 1:
            raise ValueError(f"factors[{k}] has no rows")
    return out


def check_mode(mode: Any, nmodes: int, name: str = "mode") -> int:
    """Return ``mode`` as an int in ``[0, nmodes)``; raise otherwise."""
    if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)):
        raise TypeError(f"{name} must be an integer mode number, got {type(mode).__name__} {mode!r}")
    if not 0 <= mode < nmodes:
        raise ValueError(f"{name} must be in 0..{nmodes - 1}, got {mode}")
    return int(mode)


def check_update(factors: list[np.ndarray], mode: Any, factor: Any) -> tuple[int, np.ndarray]:
    """Validate an ``update(mode, factor)`` call against the current ``factors``."""
    mode = check_mode(mode, len(factors))
    rows, rank = factors[mode].shape
    return mode, check_matrix(factor, "factor", rows=rows, cols=rank)


def take_factors(factors: Any, copy: bool) -> list[np.ndarray]:
    """The factors a sampler keeps: validated copies, or with ``copy=False`` the given arrays themselves,
    which must then be C-contiguous float64 already (a converted copy would not see the caller's changes).
    """
    if not isinstance(copy, (bool, np.bool_)):
        raise TypeError(f"copy must be True or False, got {type(copy).__name__}")
    if copy:
        return [f.copy() for f in check_factors(factors)]
    if isinstance(factors, np.ndarray) or not isinstance(factors, (list, tuple)):
        raise TypeError(f"factors must be a list of 2-D arrays, got {type(factors).__name__}")
    for k, f in enumerate(factors):
        if not isinstance(f, np.ndarray) or f.dtype != np.float64 or not f.flags.c_contiguous:
            raise TypeError(f"with copy=False, factors[{k}] must be a C-contiguous float64 numpy array")
    return list(check_factors(factors))  # the same arrays (already in form), checked


def check_shared_update(factors: list[np.ndarray], mode: Any, factor: Any) -> tuple[int, np.ndarray]:
    """Validate an ``update(mode, factor)`` of a sampler that keeps ``factor`` itself (``copy=False``).

    The array must already be C-contiguous float64 of the right shape (it is not converted: a converted
    copy would not see the caller's later changes). Finiteness is checked by the caller on the factor's
    Gram matrix (O(R^2): a non-finite entry makes it non-finite) instead of a pass over the factor.
    """
    mode = check_mode(mode, len(factors))
    expected = factors[mode].shape
    if not isinstance(factor, np.ndarray) or factor.dtype != np.float64 or not factor.flags.c_contiguous:
        raise TypeError("with copy=False, factor must be a C-contiguous float64 numpy array")
    if factor.shape != expected:
        raise ValueError(f"factor must have shape {expected}, got {factor.shape}")
    return mode, factor


def check_finite_gram(gram: np.ndarray, mode: int) -> None:
    """Raise if the Gram matrix of factor ``mode`` is not finite (then neither is the factor)."""
    if not np.all(np.isfinite(gram)):
        raise ValueError(f"factor {mode} has non-finite entries (nan or inf): its Gram matrix is not finite")


def check_sample_count(n: Any) -> int:
    """Return the number of draws ``n`` as an int >= 1."""
    return check_positive_int(n, "n")


class ZeroKhatriRaoError(ValueError):
    """The Khatri-Rao product to sample from is zero (some factor, or the product of their Grams, is 0)."""


def symmetric_pinv(gram: np.ndarray) -> tuple[np.ndarray, int]:
    """Pseudo-inverse of a symmetric positive semidefinite matrix and its numerical rank.

    Eigenvalues below ``max(eigenvalue) * R * eps`` count as zero (the threshold numpy's ``pinv`` uses).

    Parameters
    ----------
    gram : ndarray, shape (R, R)

    Returns
    -------
    pinv : ndarray, shape (R, R)
    rank : int
    """
    eigval, eigvec = np.linalg.eigh(gram)
    top = float(eigval[-1]) if eigval.size else 0.0
    keep = eigval > max(top, 0.0) * gram.shape[0] * np.finfo(np.float64).eps
    if top <= 0.0 or not keep.any():
        return np.zeros_like(gram), 0
    vecs = eigvec[:, keep]
    pinv = (vecs / eigval[keep]) @ vecs.T
    return 0.5 * (pinv + pinv.T), int(keep.sum())


def factor_leverage_scores(factor: np.ndarray, gram: np.ndarray | None = None) -> np.ndarray:
    """Leverage scores of the rows of one factor, ``diag(U (U^T U)^+ U^T)``, shape (I,).

    ``gram``, ``U^T U`` when the caller has it already.
    """
    pinv, _ = symmetric_pinv(linalg.gram(factor) if gram is None else gram)
    return np.maximum(linalg.row_quadratic_forms(factor, pinv), 0.0)


def krp_rows(factors: list[np.ndarray], modes: Sequence[int], rows: np.ndarray) -> np.ndarray:
    """Rows of the Khatri-Rao product of ``factors[modes]``: the elementwise product of the chosen rows.

    Parameters
    ----------
    factors : list of ndarray, each (I_k, R)
    modes : sequence of int, length M
    rows : ndarray of int, shape (n, M)

    Returns
    -------
    ndarray, shape (n, R)
    """
    out = factors[modes[0]][rows[:, 0]].copy()
    for t, k in enumerate(modes[1:], start=1):
        out *= factors[k][rows[:, t]]
    return out


def other_modes(nmodes: int, exclude: int) -> list[int]:
    """All modes but ``exclude``, ascending."""
    return [k for k in range(nmodes) if k != exclude]


def row_keys(rows: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """One comparable key per row of ``rows`` (n, M): the row-major linear index when it fits in int64,
    else a byte-string view of the row (same equality, usable with ``np.isin`` / ``np.unique``)."""
    if float(np.prod([float(d) for d in dims])) < 2.0**63:
        keys = np.zeros(rows.shape[0], dtype=np.int64)
        for t, d in enumerate(dims):
            keys *= d
            keys += rows[:, t]
        return keys
    contiguous = np.ascontiguousarray(rows, dtype=np.int64)
    return contiguous.view(np.dtype((np.void, 8 * rows.shape[1]))).ravel()
