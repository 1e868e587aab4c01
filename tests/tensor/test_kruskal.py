"""KruskalTensor: full, norm, values_at and innerprod against dense einsum references; validation."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear as ml
from multilinear.tensor import random_kruskal, random_sparse
from tests.reference.tns import kruskal_dense
from tests.tolerances import assert_close_rel


def _random_model(shape, rank, seed):
    gen = np.random.default_rng(seed)
    return ml.KruskalTensor(gen.standard_normal(rank), [gen.standard_normal((s, rank)) for s in shape])


SHAPES = [((7,), 2), ((6, 5), 3), ((5, 4, 6), 4), ((3, 4, 2, 5), 3), ((2, 3, 2, 3, 2), 2)]
IDS = ["1-way", "2-way", "3-way", "4-way", "5-way"]


@pytest.mark.parametrize(("shape", "rank"), SHAPES, ids=IDS)
def test_full_and_norm_match_einsum(shape, rank):
    M = _random_model(shape, rank, seed=len(shape))
    dense = kruskal_dense(M.weights, list(M.factors))
    assert_close_rel(M.full(), dense, "kruskal_values", "float64")
    assert_close_rel(np.array(M.norm()), np.array(np.linalg.norm(dense)), "kruskal_norm", "float64")
    assert M.shape == shape and M.rank == rank and M.ndim == len(shape)


@pytest.mark.parametrize(("shape", "rank"), SHAPES, ids=IDS)
def test_values_at_and_innerprod_match_einsum(shape, rank):
    M = _random_model(shape, rank, seed=10 + len(shape))
    dense = kruskal_dense(M.weights, list(M.factors))
    cells = int(np.prod(shape))
    X = random_sparse(shape, max(1, cells // 3), rng=len(shape))
    X.values[::2] *= -3.0
    assert_close_rel(M.values_at(X.indices), dense[tuple(X.indices.T)], "kruskal_values", "float64")
    expected = float(np.sum(X.to_dense() * dense))
    assert_close_rel(np.array(M.innerprod(X)), np.array(expected), "kruskal_innerprod", "float64")


def test_residual_norm_and_fit_match_dense():
    M = _random_model((5, 4, 6), 3, seed=2)
    X = random_sparse((5, 4, 6), 60, rng=2)
    residual = np.linalg.norm(X.to_dense() - M.full())
    assert M.residual_norm(X) == pytest.approx(residual, rel=1e-10)
    assert M.fit(X) == pytest.approx(1 - residual / X.norm(), rel=1e-10)
    planted = ml.tensor.planted_sparse((8, 7, 6), 2, 100, rng=0)
    assert planted.model.fit(planted.tensor) > 1 - 1e-6  # exact up to the cancellation's rounding
    with pytest.raises(ValueError, match="zero tensor"):
        M.fit(ml.SparseTensor(np.zeros((0, 3), dtype=np.int64), np.zeros(0), (5, 4, 6)))


def test_innerprod_does_not_depend_on_thread_count():
    import numba

    M = random_kruskal((40, 30, 20), 5, rng=0)
    X = random_sparse((40, 30, 20), 5000, rng=1)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(M.innerprod(X))
    finally:
        numba.set_num_threads(before)
    assert results[0] == results[1]


def test_read_only_and_copied():
    weights = np.ones(2)
    factors = [np.ones((3, 2)), np.ones((4, 2))]
    M = ml.KruskalTensor(weights, factors)
    weights[0] = 5.0
    assert M.weights[0] == 1.0
    with pytest.raises(ValueError):
        M.factors[0][0, 0] = 2.0
    with pytest.raises(AttributeError, match="read-only"):
        M.weights = np.zeros(2)


@pytest.mark.parametrize(
    ("weights", "factors", "error", "match"),
    [
        (np.ones((2, 2)), [np.ones((3, 2))], ValueError, r"weights must be a 1-D array"),
        (np.ones(2), np.ones((3, 2)), TypeError, r"factors must be a list or tuple"),
        (np.ones(2), [], ValueError, r"at least one matrix"),
        (np.ones(2), [np.ones(3)], ValueError, r"factor 0 must be a 2-D array"),
        (
            np.ones(2),
            [np.ones((3, 2)), np.ones((4, 3))],
            ValueError,
            r"factor 1 has 3 columns but there are 2",
        ),
        (np.ones(2), [np.full((3, 2), np.nan)], ValueError, r"factor 0 has non-finite entries"),
        (np.array([1.0, np.inf]), [np.ones((3, 2))], ValueError, r"weights has non-finite"),
        (np.array(["a"]), [np.ones((3, 1))], TypeError, r"weights must hold real numbers"),
    ],
    ids=["weights-2d", "factors-array", "no-factors", "factor-1d", "columns", "nan", "inf-weight", "strings"],
)
def test_bad_input_names_the_problem(weights, factors, error, match):
    with pytest.raises(error, match=match):
        ml.KruskalTensor(weights, factors)


def test_values_at_and_innerprod_check_their_arguments():
    M = random_kruskal((3, 4), 2, rng=0)
    with pytest.raises(ValueError, match=r"index 3 in mode 0 is out of range"):
        M.values_at([[3, 0]])
    with pytest.raises(ValueError, match=r"index -1 in mode 1"):
        M.values_at([[0, -1]])
    with pytest.raises(ValueError, match=r"indices must have shape \(k, 2\)"):
        M.values_at([[0, 0, 0]])
    with pytest.raises(TypeError, match="integer array"):
        M.values_at([[0.0, 1.0]])
    with pytest.raises(ValueError, match="shapes differ"):
        M.innerprod(ml.SparseTensor([[0, 0]], [1.0], (3, 5)))
    with pytest.raises(TypeError, match="expects a SparseTensor"):
        M.innerprod(np.ones((3, 4)))
    with pytest.raises(ValueError, match="more than the limit"):
        random_kruskal((2**10, 2**10, 2**10), 1, rng=0).full()
