"""planted_sparse with power-law supports and noise: exact low rank, heavy-tailed degrees, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear as ml
from multilinear.tensor import planted_sparse


def _degrees(X: ml.SparseTensor, mode: int) -> np.ndarray:
    """Nonzeros per index of ``mode`` (the slice sizes), over the indices that have any."""
    counts = np.bincount(X.indices[:, mode], minlength=X.shape[mode])
    return counts[counts > 0]


def test_reproducible_and_seed_dependent():
    kwargs = {"distribution": "powerlaw", "noise": 0.1}
    first = planted_sparse((300, 200, 100), 5, 20_000, rng=4, **kwargs)
    again = planted_sparse((300, 200, 100), 5, 20_000, rng=np.random.default_rng(4), **kwargs)
    np.testing.assert_array_equal(first.tensor.indices, again.tensor.indices)
    np.testing.assert_array_equal(first.tensor.values, again.tensor.values)
    for a, b in zip(first.model.factors, again.model.factors):
        np.testing.assert_array_equal(a, b)
    other = planted_sparse((300, 200, 100), 5, 20_000, rng=5, **kwargs)
    assert not np.array_equal(other.tensor.indices[:100], first.tensor.indices[:100])


@pytest.mark.parametrize(("shape", "rank", "nnz"), [((60, 50, 40), 3, 3000), ((30, 25, 20, 15), 2, 2000)])
def test_noiseless_powerlaw_tensor_is_exactly_its_model(shape, rank, nnz):
    planted = planted_sparse(shape, rank, nnz, distribution="powerlaw", exponent=1.2, rng=1)
    X, M = planted.tensor, planted.model
    dense = M.full()
    np.testing.assert_allclose(X.to_dense(), dense, rtol=1e-14, atol=0)
    assert X.nnz == np.count_nonzero(dense)  # support = where the model is nonzero
    keys = np.ravel_multi_index(tuple(X.indices.T), shape)
    assert (np.diff(keys) > 0).all()  # sorted row-major, no duplicates
    assert (X.values > 0).all()
    assert 0.3 * nnz <= X.nnz <= 1.5 * nnz


def test_cp_als_at_the_planted_rank_fits_the_noiseless_tensor_exactly():
    # measured: fit 1.0 (to 1e-6) for tensor seeds 0-2 x ALS seeds 0-2 on this case; one is kept
    planted = planted_sparse((200, 150, 100), 4, 20_000, distribution="powerlaw", rng=0)
    result = ml.cp_als(planted.tensor, 4, rng=0, max_iter=200, tol=1e-10)
    assert result.fit > 0.9999


def test_noise_is_relative_to_the_values_and_keeps_the_support():
    clean = planted_sparse((300, 200, 100), 5, 20_000, distribution="powerlaw", rng=2)
    noisy = planted_sparse((300, 200, 100), 5, 20_000, distribution="powerlaw", noise=0.1, rng=2)
    np.testing.assert_array_equal(noisy.tensor.indices, clean.tensor.indices)
    relative = np.linalg.norm(noisy.tensor.values - clean.tensor.values) / np.linalg.norm(clean.tensor.values)
    assert 0.09 < relative < 0.11  # ~20,000 Gaussian draws: the ratio is 0.1 to within ~1%
    np.testing.assert_array_equal(noisy.model.weights, clean.model.weights)


def test_powerlaw_degrees_are_heavy_tailed_and_uniform_ones_are_not():
    shape, rank, nnz = (3000, 3000, 3000), 20, 200_000
    skewed = planted_sparse(shape, rank, nnz, distribution="powerlaw", rng=0).tensor
    flat = planted_sparse(shape, rank, nnz, distribution="uniform", rng=0).tensor
    for mode in range(3):
        s = np.sort(_degrees(skewed, mode))[::-1]
        u = np.sort(_degrees(flat, mode))[::-1]
        # uniform supports barely overlap: every index is in one or two blocks (measured max/median 2.0)
        assert u[0] <= 3 * np.median(u)
        # power law: popular indices sit in most of the 20 blocks (measured max/median 15-18, top 10
        # indices 21-24% of the nonzeros against 4.5-4.8% for uniform supports)
        assert s[0] >= 8 * np.median(s)
        assert s[:10].sum() >= 0.12 * skewed.nnz
        assert u[:10].sum() <= 0.08 * flat.nnz


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"distribution": "zipf"}, ValueError, r"distribution must be one of"),
        ({"distribution": "powerlaw", "exponent": 0.0}, ValueError, r"exponent must be > 0"),
        ({"exponent": -1.0}, ValueError, r"exponent must be a finite number >= 0"),
        ({"noise": -0.1}, ValueError, r"noise must be a finite number >= 0"),
        ({"noise": float("nan")}, ValueError, r"noise must be a finite number >= 0"),
        ({"shape": (2**40, 2**40)}, ValueError, r"fewer than 2\*\*63"),
        ({"rank": 0}, ValueError, r"rank must be >= 1"),
        ({"rng": "seed"}, TypeError, r"rng must be None, an int seed"),
    ],
    ids=["distribution", "zero-exponent", "negative-exponent", "noise", "nan-noise", "huge", "rank", "rng"],
)
def test_bad_arguments(kwargs, error, match):
    arguments = {"shape": (5, 4, 3), "rank": 2, "nnz": 20, **kwargs}
    with pytest.raises(error, match=match):
        planted_sparse(**arguments)
