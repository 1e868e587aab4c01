"""SparseTensor construction and validation."""

import numpy as np
import pytest

import multilinear as ml


def test_shape_inferred_and_duplicates_summed():
    X = ml.SparseTensor([[0, 1, 2], [1, 0, 0], [0, 1, 2]], [3.0, 4.0, 5.0])
    assert X.shape == (2, 2, 3)
    assert X.nnz == 2
    dense = X.to_dense()
    assert dense[0, 1, 2] == 8.0 and dense[1, 0, 0] == 4.0 and dense.sum() == 12.0


def test_duplicates_error_names_coordinate():
    with pytest.raises(ValueError, match=r"\(0, 1, 2\) appears more than once"):
        ml.SparseTensor([[0, 1, 2], [1, 0, 0], [0, 1, 2]], [3.0, 4.0, 5.0], duplicates="error")


def test_no_duplicates_keeps_order():
    idx = np.array([[2, 0], [0, 1], [1, 1]])
    X = ml.SparseTensor(idx, [1.0, 2.0, 3.0], (3, 2))
    np.testing.assert_array_equal(X.indices, idx)
    np.testing.assert_array_equal(X.values, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("indices", "values", "shape", "error", "match"),
    [
        ([[0, -1]], [1.0], (2, 2), ValueError, r"index -1 in mode 1 of nonzero 0 is negative"),
        ([[0, 2]], [1.0], (2, 2), ValueError, r"index 2 in mode 1 of nonzero 0 is out of range"),
        ([[0, 1]], [np.nan], (2, 2), ValueError, r"value nan of nonzero 0 .* is not finite"),
        ([[0, 1]], [np.inf], (2, 2), ValueError, r"value inf of nonzero 0"),
        ([[0.0, 1.0]], [1.0], (2, 2), TypeError, r"indices must be an integer array"),
        ([0, 1], [1.0], (2, 2), ValueError, r"indices must be a 2-D array"),
        ([[0, 1]], [1.0, 2.0], (2, 2), ValueError, r"indices has 1 rows but values has 2"),
        ([[0, 1]], [1.0], (2, 2, 2), ValueError, r"shape \(2, 2, 2\) has 3 modes"),
        ([[0, 1]], ["a"], (2, 2), TypeError, r"values must be real numbers"),
    ],
    ids=[
        "negative",
        "out-of-range",
        "nan",
        "inf",
        "float-indices",
        "1d-indices",
        "length",
        "modes",
        "strings",
    ],
)
def test_bad_input_names_the_problem(indices, values, shape, error, match):
    with pytest.raises(error, match=match):
        ml.SparseTensor(indices, values, shape)


def test_from_dense_round_trip():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4, 5)) * (rng.random((3, 4, 5)) < 0.3)
    X = ml.SparseTensor.from_dense(a)
    np.testing.assert_array_equal(X.to_dense(), a)
    assert X.norm() == pytest.approx(np.linalg.norm(a))
