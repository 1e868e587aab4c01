"""Initial factor matrices for CP-ALS: Gaussian, slice-norm scaled, randomized range finder, or given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multilinear._core.validation import check_matrix
from multilinear.decompose._mttkrp import dense_mttkrp, mttkrp
from multilinear.tensor.sparse import SparseTensor


def gaussian_factors(shape: tuple[int, ...], rank: int, generator: np.random.Generator) -> list[np.ndarray]:
    """Standard normal factors ``(I_n, rank)`` for every mode, drawn in mode order."""
    return [generator.standard_normal((size, rank)) for size in shape]


def slice_norm_factors(
    X: SparseTensor | np.ndarray, rank: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Gaussian factors (drawn as :func:`gaussian_factors`) with row ``i`` of factor ``n`` scaled by the
    Frobenius norm of the slice ``X[..., i, ...]`` (index ``i`` in mode ``n``).

    One pass over the nonzeros per mode. Rows of empty slices are zero, and the leverage scores of the
    factors (so the rows a sampled solve draws) follow where the tensor's mass is.
    """
    shape = tuple(X.shape)
    factors = gaussian_factors(shape, rank, generator)
    for n, factor in enumerate(factors):
        if isinstance(X, SparseTensor):
            mass = np.bincount(X.indices[:, n], weights=X.values * X.values, minlength=shape[n])
        else:
            slices = np.moveaxis(np.asarray(X, dtype=np.float64), n, 0).reshape(shape[n], -1)
            mass = np.einsum("ij,ij->i", slices, slices)
        factor *= np.sqrt(mass)[:, None]
    return factors


def range_finder_factors(
    X: SparseTensor | np.ndarray, rank: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Randomized range finder: factor n > 0 spans the range of the mode-n unfolding.

    The mode-n unfolding is multiplied by the Khatri-Rao product of Gaussian matrices (one MTTKRP with
    Gaussian factors: a structured random sketch, never materialised), and the result orthonormalised by
    QR when ``I_n >= rank`` (columns normalised otherwise). Mode 0 is Gaussian: ALS overwrites it first.
    """
    shape = tuple(X.shape)
    sketch_factors = gaussian_factors(shape, rank, generator)
    factors = [sketch_factors[0]]
    for n in range(1, len(shape)):
        if isinstance(X, SparseTensor):
            sketch = mttkrp(X, sketch_factors, n)
        else:
            sketch = dense_mttkrp(X, sketch_factors, n)
        factors.append(orthonormal_range(sketch, generator))
    return factors


def orthonormal_range(sketch: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Orthonormal basis of ``sketch``'s columns (QR when it has at least as many rows as columns; zero
    columns are first filled with noise, so the factor has full rank)."""
    rows, rank = sketch.shape
    norms = np.linalg.norm(sketch, axis=0)
    empty = norms == 0
    if empty.any():
        sketch[:, empty] = generator.standard_normal((rows, int(empty.sum())))
        norms = np.linalg.norm(sketch, axis=0)
    if rows >= rank:
        return np.ascontiguousarray(np.linalg.qr(sketch)[0])
    return sketch / norms


def given_factors(init: Sequence[Any], shape: tuple[int, ...], rank: int) -> list[np.ndarray]:
    """Validate user factors: N finite real matrices of shape ``(I_n, rank)``; returned as float64 copies."""
    if len(init) != len(shape):
        raise ValueError(
            f"init has {len(init)} factor matrices but the tensor has {len(shape)} modes: give one per mode"
        )
    return [
        np.array(check_matrix(f, f"init[{n}]", rows=shape[n], cols=rank), order="C", copy=True)
        for n, f in enumerate(init)
    ]
