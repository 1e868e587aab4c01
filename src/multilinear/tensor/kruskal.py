"""Kruskal (CP) tensors: ``M = sum_r w_r a_r^(1) o a_r^(2) o ... o a_r^(N)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multilinear.tensor.sparse import SparseTensor

_MAX_DENSE = 2**28  # cells; full() refuses more (2 GiB of float64)
_INNERPROD_PARTS = 64  # fixed partition of the nonzeros: results do not depend on the thread count


class KruskalTensor:
    """A tensor in Kruskal (CP) form, validated and read-only.

    Parameters
    ----------
    weights : array_like of float, shape (R,)
        The weight of each rank-one component.
    factors : sequence of array_like of float, each of shape (I_n, R)
        One factor matrix per mode; column ``r`` of factor ``n`` is ``a_r^(n)``.
    copy : bool
        Copy the inputs (the stored arrays are made read-only either way).

    Attributes
    ----------
    weights : ndarray of float64, shape (R,)
    factors : tuple of ndarray of float64, each of shape (I_n, R)

    Examples
    --------
    >>> import numpy as np
    >>> import multilinear as ml
    >>> M = ml.KruskalTensor([2.0], [np.ones((3, 1)), np.ones((4, 1))])
    >>> M.shape, M.rank, M.norm()
    ((3, 4), 1, 6.928203230275509)
    """

    __slots__ = ("factors", "weights")

    weights: np.ndarray
    factors: tuple[np.ndarray, ...]

    def __init__(self, weights: Any, factors: Sequence[Any], *, copy: bool = True) -> None:
        w = np.asarray(weights)
        if w.ndim != 1:
            raise ValueError(f"weights must be a 1-D array of shape (R,), got shape {w.shape}")
        if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
            raise TypeError(f"weights must hold real numbers, got dtype {w.dtype}")
        if isinstance(factors, np.ndarray) or not isinstance(factors, Sequence):
            raise TypeError("factors must be a list or tuple of 2-D arrays, one per mode")
        if len(factors) < 1:
            raise ValueError("factors must hold at least one matrix (one mode)")
        rank = w.shape[0]
        stored = []
        for mode, factor in enumerate(factors):
            a = np.asarray(factor)
            if a.ndim != 2:
                raise ValueError(f"factor {mode} must be a 2-D array (I_{mode}, R), got shape {a.shape}")
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise TypeError(f"factor {mode} must hold real numbers, got dtype {a.dtype}")
            if a.shape[1] != rank:
                raise ValueError(
                    f"factor {mode} has {a.shape[1]} columns but there are {rank} weights: "
                    "every factor needs R columns"
                )
            if a.shape[0] < 1:
                raise ValueError(f"factor {mode} has no rows")
            a = np.array(a, dtype=np.float64, order="C", copy=copy or None)
            if not np.isfinite(a).all():
                raise ValueError(f"factor {mode} has non-finite entries")
            a.flags.writeable = False
            stored.append(a)
        w = np.array(w, dtype=np.float64, copy=copy or None)
        if not np.isfinite(w).all():
            raise ValueError("weights has non-finite entries")
        w.flags.writeable = False
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "factors", tuple(stored))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"KruskalTensor is read-only: cannot set {name!r} (build a new one)")

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, ...]:
        """``(I_1, ..., I_N)``."""
        return tuple(int(a.shape[0]) for a in self.factors)

    @property
    def rank(self) -> int:
        """Number of components R."""
        return int(self.weights.shape[0])

    @property
    def ndim(self) -> int:
        """Number of modes N."""
        return len(self.factors)

    def __repr__(self) -> str:
        return f"KruskalTensor(shape={self.shape}, rank={self.rank})"

    # ------------------------------------------------------------------ algebra
    def gram(self) -> np.ndarray:
        """``w w^T * (A_1^T A_1) * ... * (A_N^T A_N)`` (Hadamard products), shape (R, R)."""
        product = np.outer(self.weights, self.weights)
        for a in self.factors:
            product *= a.T @ a
        return product

    def norm(self) -> float:
        """Frobenius norm, from the Gram matrices (never densified); rounding below zero is clamped."""
        return float(np.sqrt(max(float(self.gram().sum()), 0.0)))

    def full(self) -> np.ndarray:
        """The dense array of shape ``self.shape`` (refused above 2**28 cells)."""
        cells = float(np.prod([float(s) for s in self.shape]))
        if cells > _MAX_DENSE:
            raise ValueError(
                f"full: shape {self.shape} has {cells:.3g} cells, more than the limit {_MAX_DENSE}"
            )
        out = np.zeros(self.shape, dtype=np.float64)
        for r in range(self.rank):
            component = np.asarray(self.weights[r])
            for a in self.factors:
                component = np.multiply.outer(component, a[:, r])
            out += component
        return out

    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.zeros(self.ndim + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(self.shape)
        return offsets, np.ascontiguousarray(np.concatenate(self.factors, axis=0))

    def values_at(self, indices: Any) -> np.ndarray:
        """Model values at coordinates.

        Parameters
        ----------
        indices : array_like of int, shape (k, N)
            0-based coordinates, in range.

        Returns
        -------
        ndarray of float64, shape (k,)
        """
        from multilinear.kernels.kruskal_values import kruskal_values_at

        idx = self._check_indices(indices)
        out = np.empty(idx.shape[0], dtype=np.float64)
        if idx.shape[0]:
            offsets, stacked = self._stacked()
            kruskal_values_at(idx, offsets, stacked, self.weights, out)
        return out

    def innerprod(self, other: SparseTensor) -> float:
        """``<X, M> = sum over the nonzeros of X of x_k * M[i_k]``.

        Parameters
        ----------
        other : SparseTensor
            Same shape as this tensor.
        """
        from multilinear.kernels.kruskal_values import kruskal_innerprod

        if not isinstance(other, SparseTensor):
            raise TypeError(f"innerprod expects a SparseTensor, got {type(other).__name__}")
        if other.shape != self.shape:
            raise ValueError(f"shapes differ: SparseTensor {other.shape} vs KruskalTensor {self.shape}")
        if other.nnz == 0:
            return 0.0
        offsets, stacked = self._stacked()
        return float(
            kruskal_innerprod(other.indices, other.values, offsets, stacked, self.weights, _INNERPROD_PARTS)
        )

    def residual_norm(self, other: SparseTensor) -> float:
        """``||X - M||`` from ``||X||**2 - 2 <X, M> + ||M||**2`` (no densification), clamped at zero.

        Accurate to about ``sqrt(eps) * max(||X||, ||M||)`` in absolute terms: when the residual is much
        smaller than that the cancellation leaves only rounding.
        """
        squared = other.norm() ** 2 - 2.0 * self.innerprod(other) + float(self.gram().sum())
        return float(np.sqrt(max(squared, 0.0)))

    def fit(self, other: SparseTensor) -> float:
        """``1 - ||X - M|| / ||X||``, the fit CP-ALS reports (1 is exact); X must not be zero."""
        norm = other.norm()
        if norm == 0.0:
            raise ValueError("fit is undefined for a zero tensor X (||X|| = 0)")
        return 1.0 - self.residual_norm(other) / norm

    def _check_indices(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.shape[1] != self.ndim:
            raise ValueError(f"indices must have shape (k, {self.ndim}), got {idx.shape}")
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if idx.size:
            low = idx.min(axis=0)
            high = idx.max(axis=0)
            for mode, size in enumerate(self.shape):
                if low[mode] < 0 or high[mode] >= size:
                    bad = low[mode] if low[mode] < 0 else high[mode]
                    raise ValueError(
                        f"index {bad} in mode {mode} is out of range for shape {self.shape} "
                        f"(valid: 0..{size - 1})"
                    )
        return idx
