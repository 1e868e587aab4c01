"""ProductLeverageSampler: the product of the factors' own leverage-score distributions (CP-ARLS-LEV)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multilinear.sampling import ProductLeverageSampler
from tests.reference.leverage import khatri_rao_rows, product_leverage_distribution
from tests.sampling._helpers import linear_rows, pooled_chisquare_pvalue, skewed_factors
from tests.tolerances import tol


@pytest.mark.parametrize(("shapes", "rank"), [((7, 9, 5), 3), ((6, 8, 5, 7), 4)], ids=["N3", "N4"])
def test_distribution_is_product_of_factor_leverage_scores(shapes, rank):
    factors = skewed_factors(shapes, rank, seed=7)
    sampler = ProductLeverageSampler(factors)
    for exclude in range(len(shapes)):
        others = [factors[k] for k in range(len(shapes)) if k != exclude]
        dims = [f.shape[0] for f in others]
        exact = product_leverage_distribution(others)
        rows, probs = sampler.sample(exclude, 40_000, rng=200 + exclude)
        wanted = exact[linear_rows(rows, dims)]
        assert np.max(np.abs(probs - wanted) / wanted) <= tol("leverage_probs", "float64")
        counts = np.bincount(linear_rows(rows, dims), minlength=exact.size)
        pvalue = pooled_chisquare_pvalue(counts, exact)
        assert pvalue > 1e-6, f"exclude={exclude}: chi-square p-value {pvalue:.3g}"


def test_deterministic_rows_are_all_rows_above_threshold():
    factors = skewed_factors((9, 7, 8), 3, seed=4)
    sampler = ProductLeverageSampler(factors, hybrid=True)
    exact = product_leverage_distribution([factors[0], factors[2]])
    for threshold in (1e-3, 1e-2, 0.05):
        rows, probs = sampler.deterministic_rows(1, threshold)
        wanted = set(np.flatnonzero(exact >= threshold).tolist())
        got = linear_rows(rows, [9, 8])
        assert set(got.tolist()) == wanted and len(got) == len(wanted)
        np.testing.assert_allclose(probs, exact[got], rtol=1e-12)


def test_hybrid_rows_and_weights():
    factors = skewed_factors((20, 15, 18), 3, seed=8)
    n = 400
    sampler = ProductLeverageSampler(factors, hybrid=True)
    rows, probs = sampler.sample(0, n, rng=1)
    exact = product_leverage_distribution([factors[1], factors[2]])
    keys = linear_rows(rows, [15, 18])
    deterministic = np.flatnonzero(exact >= 1.0 / n)
    assert 0 < deterministic.size < n
    n_det = deterministic.size
    assert set(keys[:n_det].tolist()) == set(deterministic.tolist())
    np.testing.assert_array_equal(probs[:n_det], 1.0 / n)
    inside = np.isin(keys[n_det:], deterministic)
    assert np.all(np.isinf(probs[n_det:][inside]))
    expected = (n - n_det) * exact[keys[n_det:][~inside]] / n
    np.testing.assert_allclose(probs[n_det:][~inside], expected, rtol=1e-12)


def test_hybrid_when_remaining_mass_is_tiny():
    # rows 0 and 1 of each factor hold almost all the leverage; the rest of the KRP has mass ~4e-6, which
    # a rejection loop would need millions of draws to hit: the draws inside the deterministic set get weight 0
    tall = np.array([[1.0, 0.0], [0.0, 1.0], [1e-3, 1e-3]])
    sampler = ProductLeverageSampler([tall, np.ones((2, 2)), tall], hybrid=True)
    rows, probs = sampler.sample(1, 50, rng=0)
    assert rows.shape == (50, 2)
    assert {tuple(r) for r in rows[:4].tolist()} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    np.testing.assert_array_equal(probs[:4], 1.0 / 50)
    random_inside = np.all(rows[4:] < 2, axis=1)
    assert np.all(np.isinf(probs[4:][random_inside])) and np.all(np.isfinite(probs[4:][~random_inside]))


@pytest.mark.parametrize("hybrid", [False, True], ids=["plain", "hybrid"])
def test_weighted_gram_is_unbiased(hybrid):
    # the sketch sum_s (1 / (n p_s)) a_s a_s^T estimates K^T K; averaged over 200 fixed seeds the error is
    # far below the 5% bound (measured: 0.4% plain, 0.2% hybrid)
    factors = skewed_factors((12, 10, 9), 3, seed=2)
    krp = khatri_rao_rows([factors[0], factors[2]])
    exact = krp.T @ krp
    sampler = ProductLeverageSampler(factors, hybrid=hybrid)
    n = 100
    estimate = np.zeros_like(exact)
    for seed in range(200):
        rows, probs = sampler.sample(1, n, rng=seed)
        design = factors[0][rows[:, 0]] * factors[2][rows[:, 1]]
        estimate += (design / (n * probs[:, None])).T @ design
    estimate /= 200
    assert np.linalg.norm(estimate - exact) <= 0.05 * np.linalg.norm(exact)


def test_hybrid_when_deterministic_rows_hold_all_mass():
    factors = [np.eye(2), np.ones((3, 2)), np.eye(2)]
    sampler = ProductLeverageSampler(factors, hybrid=True)
    rows, probs = sampler.sample(1, 10, rng=0)
    assert rows.shape == (10, 2)
    assert np.isclose(np.sum(1.0 / (10 * probs[np.isfinite(probs)])), 4.0)  # 4 rows, weight 1 each
    assert np.all(np.isinf(probs[4:]))


def test_same_seed_same_draws():
    factors = skewed_factors((30, 20, 25), 4, seed=9)
    for hybrid in (False, True):
        sampler = ProductLeverageSampler(factors, hybrid=hybrid)
        first = sampler.sample(2, 500, rng=3)
        second = sampler.sample(2, 500, rng=3)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


def test_update_changes_distribution():
    factors = skewed_factors((6, 5, 4), 2, seed=3)
    sampler = ProductLeverageSampler(factors)
    new = skewed_factors((5,), 2, seed=77)[0]
    sampler.update(1, new)
    exact = product_leverage_distribution([factors[0], new])
    np.testing.assert_allclose(
        np.outer(sampler.factor_probabilities(0), sampler.factor_probabilities(1)).ravel(), exact, rtol=1e-10
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: ProductLeverageSampler(s.factors, hybrid=1), TypeError, "hybrid"),
        (lambda s: s.sample(-1, 5, rng=0), ValueError, "exclude"),
        (lambda s: s.sample(0, -5, rng=0), ValueError, "n must be"),
        (lambda s: s.update(2, np.ones((3, 2))), ValueError, "rows"),
        (lambda s: s.deterministic_rows(0, 0.0), ValueError, "threshold"),
    ],
)
def test_bad_arguments(call, error, match):
    sampler = ProductLeverageSampler(skewed_factors((6, 5, 4), 2, seed=3))
    with pytest.raises(error, match=match):
        call(sampler)


def test_all_rows_reachable_on_uniform_factors():
    factors = [np.eye(3), np.eye(3), np.eye(3)]
    rows, probs = ProductLeverageSampler(factors).sample(0, 5000, rng=0)
    assert set(map(tuple, rows.tolist())) == set(itertools.product(range(3), range(3)))
    np.testing.assert_allclose(probs, 1.0 / 9.0)
