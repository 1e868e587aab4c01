"""random_sparse, random_kruskal and planted_sparse: reproducibility, exact counts, distributions, planting."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.tensor import planted_sparse, random_kruskal, random_sparse


@pytest.mark.parametrize("distribution", ["uniform", "powerlaw"])
def test_reproducible_exact_count_sorted_distinct(distribution):
    shape = (200, 50, 30)
    X = random_sparse(shape, 20_000, distribution=distribution, rng=3)
    Y = random_sparse(shape, 20_000, distribution=distribution, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(X.indices, Y.indices)
    np.testing.assert_array_equal(X.values, Y.values)
    assert X.nnz == 20_000 and X.shape == shape
    keys = np.ravel_multi_index(tuple(X.indices.T), shape)
    assert (np.diff(keys) > 0).all()  # sorted row-major, no duplicates
    assert (X.values > 0).all() and (X.values <= 1).all()
    assert not np.array_equal(
        random_sparse(shape, 20_000, distribution=distribution, rng=4).indices, X.indices
    )


def test_dense_fill_tops_up_to_the_exact_count():
    X = random_sparse((10, 10, 10), 990, rng=0)  # 99% of the cells: many rounds of redraws
    assert X.nnz == 990
    assert np.unique(np.ravel_multi_index(tuple(X.indices.T), X.shape)).size == 990


def test_uniform_modes_are_flat_and_powerlaw_modes_are_skewed():
    shape = (1000, 1000, 1000)
    nnz = 200_000
    uniform = random_sparse(shape, nnz, rng=1)
    skewed = random_sparse(shape, nnz, distribution="powerlaw", exponent=1.5, rng=1)
    for mode in range(3):
        u = np.sort(np.bincount(uniform.indices[:, mode], minlength=1000))[::-1]
        s = np.sort(np.bincount(skewed.indices[:, mode], minlength=1000))[::-1]
        # uniform: 200 expected per index, sd ~14; the busiest index holds < 0.2% of the nonzeros
        assert u[0] < 0.002 * nnz and u[-1] > 100
        # power law with exponent 1.5: index 1 alone carries ~38% of the mass (~10% after merging repeats)
        assert s[0] > 0.05 * nnz
        assert s[:10].sum() > 0.25 * nnz
        assert np.median(s) < 100 and s[-1] < 20  # a thin tail (uniform: ~200 each)


def test_planted_rank_values_and_noise():
    shape = (30, 20, 10)
    X = random_sparse(shape, 3000, rank=2, rng=5)
    assert (X.values >= 0.1**3 * 2).all()  # positive factors on [0.1, 1.1)
    noisy = random_sparse(shape, 3000, rank=2, noise=0.1, rng=5)
    np.testing.assert_array_equal(noisy.indices, X.indices)
    relative = np.linalg.norm(noisy.values - X.values) / np.linalg.norm(X.values)
    assert 0.07 < relative < 0.13


def test_planted_values_have_rank_r_structure():
    # A rank-1 plant: every 2x2 minor of a matricization vanishes where all four cells are present.
    X = random_sparse((6, 5, 4), 120, rank=1, rng=2)  # all cells
    dense = X.to_dense().reshape(6, 20)
    assert np.linalg.matrix_rank(dense, tol=1e-10 * np.abs(dense).max()) == 1


def test_random_kruskal():
    M = random_kruskal((4, 5, 6), 3, rng=0)
    assert M.shape == (4, 5, 6) and M.rank == 3
    np.testing.assert_array_equal(M.weights, np.ones(3))
    assert all((a >= 0).all() and (a < 1).all() for a in M.factors)
    N = random_kruskal((4, 5, 6), 3, distribution="normal", rng=0)
    assert any((a < 0).any() for a in N.factors)
    np.testing.assert_array_equal(random_kruskal((4, 5, 6), 3, rng=0).factors[2], M.factors[2])


@pytest.mark.parametrize("shared", [False, True], ids=["blocks", "shared"])
@pytest.mark.parametrize(("shape", "rank", "nnz"), [((12, 10, 8), 3, 300), ((8, 7, 6, 5), 2, 400)])
def test_planted_sparse_is_exactly_its_model(shape, rank, nnz, shared):
    planted = planted_sparse(shape, rank, nnz, shared_support=shared, rng=11)
    X, M = planted.tensor, planted.model
    dense = M.full()
    np.testing.assert_allclose(X.to_dense(), dense, rtol=1e-14, atol=0)
    assert X.nnz == np.count_nonzero(dense)  # the support is exactly where the model is nonzero
    assert 0.3 * nnz <= X.nnz <= nnz * 1.5
    assert (X.values > 0).all() or shared
    if shared:  # one dense block: the support is a product of index sets
        sides = [np.unique(X.indices[:, n]).size for n in range(len(shape))]
        assert X.nnz == np.prod(sides)
    again = planted_sparse(shape, rank, nnz, shared_support=shared, rng=11)
    np.testing.assert_array_equal(again.tensor.indices, X.indices)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (3, 3), "nnz": 10}, ValueError, r"nnz=10 is more than the 9 cells"),
        ({"shape": (3, 0), "nnz": 1}, ValueError, r"shape\[1\] must be >= 1"),
        ({"shape": 5, "nnz": 1}, TypeError, r"shape must be a sequence"),
        ({"shape": (3, 3), "nnz": 2, "distribution": "zipf"}, ValueError, r"distribution must be one of"),
        ({"shape": (3, 3), "nnz": 2, "noise": -1}, ValueError, r"noise must be a finite number >= 0"),
        ({"shape": (3, 3), "nnz": 2, "rank": 0}, ValueError, r"rank must be >= 1"),
        ({"shape": (2**40, 2**40), "nnz": 2}, ValueError, r"fewer than 2\*\*63"),
        ({"shape": (3, 3), "nnz": 2, "rng": "seed"}, TypeError, r"rng must be None, an int seed"),
    ],
    ids=["too-many", "zero-mode", "scalar-shape", "distribution", "noise", "rank", "huge", "rng"],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        random_sparse(**kwargs)
