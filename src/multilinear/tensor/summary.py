"""Descriptive statistics of a sparse tensor (what ``multilinear info`` prints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multilinear.tensor.sparse import SparseTensor

_DISTINCT_LIMIT = 1 << 22  # count distinct values (a sort) only up to this many nonzeros
_BINCOUNT_LIMIT = 1 << 27  # per-mode slice counts by bincount up to this mode size, by unique above


def tensor_summary(tensor: SparseTensor) -> dict[str, Any]:
    """Shape, size and value statistics of a sparse tensor, as plain Python numbers.

    Parameters
    ----------
    tensor : SparseTensor

    Returns
    -------
    dict
        ``shape`` (list of int), ``ndim``, ``nnz``, ``density``, ``norm`` (Frobenius), ``value_min``,
        ``value_max``, ``value_mean``, ``value_std`` (population; None for an empty tensor),
        ``distinct_values`` (None above 2**22 nonzeros, where counting them would need a large sort),
        ``empty_slices`` (per mode, how many indices have no nonzero) and ``nonempty_slices``.
    """
    if not isinstance(tensor, SparseTensor):
        raise TypeError(f"tensor_summary expects a SparseTensor, got {type(tensor).__name__}")
    values = tensor.values
    nnz = tensor.nnz
    nonempty = []
    for mode, size in enumerate(tensor.shape):
        column = tensor.indices[:, mode]
        if nnz == 0:
            nonempty.append(0)
        elif size <= _BINCOUNT_LIMIT:
            nonempty.append(int(np.count_nonzero(np.bincount(column, minlength=size))))
        else:
            nonempty.append(int(np.unique(column).shape[0]))
    stats: dict[str, Any] = {
        "shape": list(tensor.shape),
        "ndim": tensor.ndim,
        "nnz": nnz,
        "density": tensor.density,
        "norm": tensor.norm(),
        "value_min": float(values.min()) if nnz else None,
        "value_max": float(values.max()) if nnz else None,
        "value_mean": float(values.mean()) if nnz else None,
        "value_std": float(values.std()) if nnz else None,
        "distinct_values": int(np.unique(values).shape[0]) if nnz <= _DISTINCT_LIMIT else None,
        "empty_slices": [size - count for size, count in zip(tensor.shape, nonempty)],
        "nonempty_slices": nonempty,
    }
    return stats
