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


def test_many_duplicates_summed_by_the_parallel_sort_as_by_a_reference():
    # above 2**20 nonzeros the sort runs on numba's threads (kernels/radix_sort.py); the merged tensor is
    # the sorted distinct coordinates with their values summed in input order
    from multilinear.tensor.sparse import _RADIX_MIN_NONZEROS

    rng = np.random.default_rng(0)
    n = _RADIX_MIN_NONZEROS + 4321
    idx = rng.integers(0, (60, 50, 40), size=(n, 3))
    vals = rng.standard_normal(n)
    X = ml.SparseTensor(idx, vals, (60, 50, 40))
    keys = (idx[:, 0] * 50 + idx[:, 1]) * 40 + idx[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    assert X.nnz == unique.shape[0] < n
    np.testing.assert_array_equal((X.indices[:, 0] * 50 + X.indices[:, 1]) * 40 + X.indices[:, 2], unique)
    sums = np.zeros(unique.shape[0])
    np.add.at(sums, inverse.reshape(-1), vals)
    np.testing.assert_allclose(X.values, sums, rtol=1e-12, atol=1e-12)


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
