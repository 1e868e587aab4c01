"""COO sparse tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from multilinear._core.validation import check_choice

_MAX_DENSE = 2**28  # entries; to_dense refuses more (2 GiB of float64)


def _linear_keys(indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Row-major linear index of each nonzero, or None when the tensor has 2**63 cells or more."""
    if float(np.prod([float(s) for s in shape])) >= 2.0**63:
        return None
    keys = np.zeros(indices.shape[0], dtype=np.int64)
    for mode, size in enumerate(shape):
        keys *= size
        keys += indices[:, mode]
    return keys


class SparseTensor:
    """A sparse tensor in coordinate (COO) format.

    Parameters
    ----------
    indices : array_like of int, shape (nnz, N)
        0-based coordinates of the nonzeros, one row each.
    values : array_like of float, shape (nnz,)
        Their values; stored as float64. Must be finite.
    shape : sequence of int, optional
        Size of each mode. Inferred as ``indices.max(axis=0) + 1`` when not given.
    duplicates : {"sum", "error"}
        What to do with coordinates that appear more than once: add their values (the default), or raise.
    copy : bool
        Copy the inputs even when they already have the stored dtype and layout.

    Attributes
    ----------
    indices : ndarray of int64, shape (nnz, N)
    values : ndarray of float64, shape (nnz,)
    shape : tuple of int

    Examples
    --------
    >>> import multilinear as ml
    >>> X = ml.SparseTensor([[0, 1, 2], [1, 0, 0]], [3.0, 4.0])
    >>> X.shape, X.nnz
    ((2, 2, 3), 2)
    """

    __slots__ = ("_cache", "indices", "shape", "values")

    def __init__(
        self,
        indices: Any,
        values: Any,
        shape: Any = None,
        *,
        duplicates: str = "sum",
        copy: bool = True,
    ) -> None:
        check_choice(duplicates, "duplicates", ("sum", "error"))
        idx = np.asarray(indices)
        vals = np.asarray(values)
        if idx.ndim != 2:
            raise ValueError(f"indices must be a 2-D array of shape (nnz, N), got shape {idx.shape}")
        if idx.shape[1] < 1:
            raise ValueError("indices must have at least one column (one mode)")
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            if (
                np.issubdtype(idx.dtype, np.floating)
                and np.all(np.isfinite(idx))
                and np.all(idx == np.round(idx))
            ):
                raise TypeError(
                    f"indices must be an integer array, got dtype {idx.dtype} (convert with .astype(np.int64))"
                )
            raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
        if vals.ndim != 1:
            raise ValueError(f"values must be a 1-D array of shape (nnz,), got shape {vals.shape}")
        if vals.shape[0] != idx.shape[0]:
            raise ValueError(
                f"indices has {idx.shape[0]} rows but values has {vals.shape[0]} entries: one value per nonzero"
            )
        if vals.size and not (
            np.issubdtype(vals.dtype, np.floating) or np.issubdtype(vals.dtype, np.integer)
        ):
            raise TypeError(f"values must be real numbers, got dtype {vals.dtype}")
        idx = np.array(idx, dtype=np.int64, order="C", copy=copy or None)
        vals = np.array(vals, dtype=np.float64, copy=copy or None)
        nmodes = idx.shape[1]

        if idx.size:
            lowest = idx.min(axis=0)
            if (lowest < 0).any():
                mode = int(np.argmax(lowest < 0))
                row = int(np.argmax(idx[:, mode] < 0))
                raise ValueError(f"index {idx[row, mode]} in mode {mode} of nonzero {row} is negative")
        finite = np.isfinite(vals)
        if not finite.all():
            row = int(np.argmin(finite))
            raise ValueError(
                f"value {float(vals[row])} of nonzero {row} (at {tuple(idx[row])}) is not finite"
            )

        if shape is None:
            if idx.shape[0] == 0:
                raise ValueError("shape must be given for a tensor with no nonzeros")
            dims = tuple(int(s) + 1 for s in idx.max(axis=0))
        else:
            dims = tuple(int(s) for s in np.atleast_1d(np.asarray(shape)))
            if len(dims) != nmodes:
                raise ValueError(f"shape {dims} has {len(dims)} modes but indices has {nmodes} columns")
            if any(s < 1 for s in dims):
                raise ValueError(f"shape must be positive in every mode, got {dims}")
            if idx.size:
                highest = idx.max(axis=0)
                over = highest >= np.asarray(dims)
                if over.any():
                    mode = int(np.argmax(over))
                    row = int(np.argmax(idx[:, mode] >= dims[mode]))
                    raise ValueError(
                        f"index {idx[row, mode]} in mode {mode} of nonzero {row} is out of range for shape "
                        f"{dims} (valid: 0..{dims[mode] - 1})"
                    )

        idx, vals = _merge_duplicates(idx, vals, dims, duplicates)
        self.indices: np.ndarray = idx
        self.values: np.ndarray = vals
        self.shape: tuple[int, ...] = dims
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dense(cls, array: Any) -> SparseTensor:
        """The nonzeros of a dense array as a SparseTensor of the same shape."""
        a = np.asarray(array, dtype=np.float64)
        idx = np.argwhere(a != 0)
        return cls(idx, a[tuple(idx.T)], a.shape, copy=False)

    @classmethod
    def _trusted(cls, indices: np.ndarray, values: np.ndarray, shape: tuple[int, ...]) -> SparseTensor:
        """Wrap arrays already validated (int64 C-contiguous, float64, in range, no duplicates) without checks."""
        out = cls.__new__(cls)
        out.indices = indices
        out.values = values
        out.shape = tuple(int(s) for s in shape)
        out._cache = {}
        return out

    # ------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        """Number of modes N."""
        return len(self.shape)

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros."""
        return int(self.values.shape[0])

    @property
    def density(self) -> float:
        """nnz divided by the number of cells (computed in floating point: shapes can exceed 2**63)."""
        return self.nnz / float(np.prod([float(s) for s in self.shape]))

    def norm(self) -> float:
        """Frobenius norm."""
        return float(np.sqrt(np.dot(self.values, self.values)))

    def to_dense(self) -> np.ndarray:
        """The dense array (refused above 2**28 cells)."""
        cells = float(np.prod([float(s) for s in self.shape]))
        if cells > _MAX_DENSE:
            raise ValueError(
                f"to_dense: shape {self.shape} has {cells:.3g} cells, more than the limit {_MAX_DENSE}"
            )
        out = np.zeros(self.shape, dtype=np.float64)
        np.add.at(out, tuple(self.indices.T), self.values)
        return out

    def __repr__(self) -> str:
        return f"SparseTensor(shape={self.shape}, nnz={self.nnz}, density={self.density:.3g})"

    def to_tns(self, path: Any, **kwargs: Any) -> None:
        """Write the tensor as a FROSTT ``.tns`` file (gzip when the name ends in ``.gz``). See ``write_tns``."""
        from multilinear.tensor.tns import write_tns

        write_tns(self, path, **kwargs)


_RADIX_MIN_NONZEROS = 1 << 20  # smaller inputs keep numpy's sort (no compiled kernel to load for them)


def _merge_duplicates(
    idx: np.ndarray, vals: np.ndarray, shape: tuple[int, ...], duplicates: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sum (or reject) repeated coordinates. Order is kept when there are none."""
    n = idx.shape[0]
    if n < 2:
        return idx, vals
    keys = _linear_keys(idx, shape)
    if keys is not None:
        diffs = np.diff(keys)
        if (diffs > 0).all():
            return idx, vals  # strictly increasing: already sorted, no duplicates
        if n >= _RADIX_MIN_NONZEROS:  # numba's threads (np.argsort stable: 9 s on 6e7 random keys)
            from multilinear.kernels.radix_sort import argsort_nonnegative

            sorted_keys, order = argsort_nonnegative(keys, overwrite=True)  # keys: not needed after
        else:
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
        same = sorted_keys[1:] == sorted_keys[:-1]
    else:
        order = np.lexsort(idx.T[::-1])
        sorted_idx = idx[order]
        same = (sorted_idx[1:] == sorted_idx[:-1]).all(axis=1)
    if not same.any():
        return idx, vals
    if duplicates == "error":
        pos = int(np.argmax(same))
        first, second = sorted((int(order[pos]), int(order[pos + 1])))
        raise ValueError(
            f"coordinate {tuple(int(i) for i in idx[first])} appears more than once "
            f"(nonzeros {first} and {second}); pass duplicates='sum' to add them"
        )
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    summed = np.add.reduceat(vals[order], starts)
    return np.ascontiguousarray(idx[order[starts]]), summed
