"""tensor_summary: statistics checked against direct numpy computations on a small tensor."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear as ml
from multilinear.tensor import tensor_summary


def test_summary_matches_numpy():
    indices = np.array([[0, 0, 0], [0, 2, 1], [3, 2, 1], [3, 0, 0]])
    values = np.array([1.0, 2.0, 2.0, -4.0])
    X = ml.SparseTensor(indices, values, (5, 3, 2))
    s = tensor_summary(X)
    assert s["shape"] == [5, 3, 2] and s["ndim"] == 3 and s["nnz"] == 4
    assert s["density"] == pytest.approx(4 / 30)
    assert s["norm"] == pytest.approx(5.0)
    assert (s["value_min"], s["value_max"]) == (-4.0, 2.0)
    assert s["value_mean"] == pytest.approx(values.mean())
    assert s["value_std"] == pytest.approx(values.std())
    assert s["distinct_values"] == 3
    assert s["empty_slices"] == [3, 1, 0]
    assert s["nonempty_slices"] == [2, 2, 2]


def test_summary_of_empty_tensor_and_bad_input():
    X = ml.SparseTensor(np.zeros((0, 2), dtype=np.int64), np.zeros(0), (2, 3))
    s = tensor_summary(X)
    assert s["nnz"] == 0 and s["value_min"] is None and s["empty_slices"] == [2, 3]
    with pytest.raises(TypeError, match="expects a SparseTensor"):
        tensor_summary(np.ones(3))
