"""MTTKRP and the model inner product for sparse (numba kernels) and dense (einsum/BLAS) tensors."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from multilinear.decompose._layout import mode_layout, parallel_chunks, stack_factors, stacked_offsets
from multilinear.tensor.sparse import SparseTensor


def _check_factors(shape: tuple[int, ...], factors: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(factors) != len(shape):
        raise ValueError(f"expected {len(shape)} factor matrices (one per mode), got {len(factors)}")
    rank = None
    out = []
    for n, f in enumerate(factors):
        a = np.ascontiguousarray(f, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != shape[n]:
            raise ValueError(f"factor {n} must have shape ({shape[n]}, R), got {a.shape}")
        if rank is None:
            rank = a.shape[1]
        elif a.shape[1] != rank:
            raise ValueError(f"factor {n} has {a.shape[1]} columns, factor 0 has {rank}: ranks must agree")
        out.append(a)
    return out


def dense_mttkrp(X: np.ndarray, factors: Sequence[np.ndarray], mode: int) -> np.ndarray:
    """Mode-``mode`` MTTKRP of a dense array by einsum (BLAS contractions), shape (I_mode, R)."""
    letters = string.ascii_letters
    nmodes = X.ndim
    tensor_sub = letters[:nmodes]
    rank_letter = letters[nmodes]
    operands: list[np.ndarray] = [X]
    subs = [tensor_sub]
    for m in range(nmodes):
        if m != mode:
            operands.append(factors[m])
            subs.append(tensor_sub[m] + rank_letter)
    spec = ",".join(subs) + "->" + tensor_sub[mode] + rank_letter
    return np.ascontiguousarray(np.einsum(spec, *operands, optimize=True))


def sparse_mttkrp_stacked(
    X: SparseTensor, stacked: np.ndarray, mode: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Mode-``mode`` MTTKRP of a SparseTensor from already stacked factors ``(sum(I_n), R)``."""
    from multilinear.kernels.mttkrp import mttkrp_sorted, mttkrp_sorted_serial

    layout = mode_layout(X, mode)
    if out is None:
        out = np.empty((X.shape[mode], stacked.shape[1]), dtype=np.float64)
    chunks = parallel_chunks(X.nnz)
    kernel = mttkrp_sorted if chunks > 1 else mttkrp_sorted_serial
    kernel(
        layout.row_ptr, layout.sorted_rows, layout.sorted_values, stacked, out, chunks, layout.factor_fibers
    )
    return out


def mttkrp(X: SparseTensor | np.ndarray, factors: Sequence[np.ndarray], mode: int) -> np.ndarray:
    """Matricized tensor times Khatri-Rao product of every factor but ``mode``'s.

    ``M[i, r] = sum over entries x at (i_0, ..., i_{N-1}) with i_mode = i of x * prod_{m != mode} U_m[i_m, r]``,
    which equals the mode-``mode`` unfolding of ``X`` times the Khatri-Rao product of the other factors.

    Parameters
    ----------
    X : SparseTensor or ndarray, shape (I_0, ..., I_{N-1})
    factors : sequence of N arrays, factor ``m`` of shape (I_m, R)
        ``factors[mode]`` is not read but its shape is checked.
    mode : int, 0 <= mode < N

    Returns
    -------
    ndarray of float64, shape (I_mode, R)
    """
    shape = tuple(X.shape)
    if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)) or not 0 <= mode < len(shape):
        raise ValueError(f"mode must be an integer in 0..{len(shape) - 1}, got {mode!r}")
    checked = _check_factors(shape, factors)
    if isinstance(X, SparseTensor):
        return sparse_mttkrp_stacked(X, stack_factors(checked), int(mode))
    return dense_mttkrp(np.asarray(X, dtype=np.float64), checked, int(mode))


def model_inner_product(
    X: SparseTensor | np.ndarray, weights: np.ndarray, factors: Sequence[np.ndarray]
) -> float:
    """``<X, M>`` for the Kruskal model ``M = [[weights; factors]]``, in one pass over the nonzeros of X."""
    if isinstance(X, SparseTensor):
        from multilinear.kernels import mttkrp as kernels

        stacked = stack_factors(list(factors))
        offsets = stacked_offsets(X.shape)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        chunks = parallel_chunks(X.nnz)
        kernel = kernels.model_inner_product if chunks > 1 else kernels.model_inner_product_serial
        return float(kernel(X.indices, X.values, offsets, stacked, weights, chunks))
    last = X.ndim - 1
    partial = dense_mttkrp(X, factors, last)
    return float(np.sum((partial * factors[last]) @ weights))
