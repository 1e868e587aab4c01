"""STSSampler against the exact leverage scores of the materialised Khatri-Rao product."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear._core.threads import thread_limits
from multilinear.sampling import STSSampler
from tests.reference.leverage import krp_leverage_distribution
from tests.sampling._helpers import linear_rows, pooled_chisquare_pvalue, skewed_factors
from tests.tolerances import tol

CASES = [
    pytest.param((7, 9, 5), 3, None, id="N3-R3"),
    pytest.param((13, 6, 11), 5, None, id="N3-R5"),
    pytest.param((7, 9, 5, 11), 4, None, id="N4-R4"),
    pytest.param((12, 10, 8, 5), 8, 2, id="N4-R8-leaf2"),
    pytest.param((13, 11, 9), 6, 1, id="N3-R6-leaf1"),
]


@pytest.mark.parametrize(("shapes", "rank", "leaf_size"), CASES)
def test_probs_equal_exact_leverage_scores(shapes, rank, leaf_size):
    factors = skewed_factors(shapes, rank, seed=11)
    sampler = STSSampler(factors, leaf_size=leaf_size)
    for exclude in range(len(shapes)):
        others = [factors[k] for k in range(len(shapes)) if k != exclude]
        exact = krp_leverage_distribution(others)
        rows, probs = sampler.sample(exclude, 2000, rng=5)
        assert rows.dtype == np.int64 and rows.shape == (2000, len(shapes) - 1)
        assert probs.dtype == np.float64 and probs.shape == (2000,)
        wanted = exact[linear_rows(rows, [f.shape[0] for f in others])]
        rel = np.max(np.abs(probs - wanted) / wanted)
        assert rel <= tol("leverage_probs", "float64"), f"exclude={exclude}: relative error {rel:.2e}"


@pytest.mark.parametrize(("shapes", "rank", "leaf_size"), CASES)
def test_draws_follow_exact_leverage_scores(shapes, rank, leaf_size):
    # 60,000 draws per excluded mode; the seed is fixed, the threshold p > 1e-6 leaves a wide margin
    factors = skewed_factors(shapes, rank, seed=23)
    sampler = STSSampler(factors, leaf_size=leaf_size)
    for exclude in range(len(shapes)):
        others = [factors[k] for k in range(len(shapes)) if k != exclude]
        exact = krp_leverage_distribution(others)
        rows, _ = sampler.sample(exclude, 60_000, rng=101 + exclude)
        counts = np.bincount(linear_rows(rows, [f.shape[0] for f in others]), minlength=exact.size)
        assert counts[exact == 0].sum() == 0
        pvalue = pooled_chisquare_pvalue(counts, exact)
        assert pvalue > 1e-6, f"exclude={exclude}: chi-square p-value {pvalue:.3g}"


def test_same_seed_same_draws_at_any_thread_count():
    factors = skewed_factors((40, 30, 50), 6, seed=3)
    sampler = STSSampler(factors)
    with thread_limits(numba_threads=1):
        rows_one, probs_one = sampler.sample(1, 3000, rng=42)
    with thread_limits(numba_threads=2):
        rows_two, probs_two = sampler.sample(1, 3000, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(rows_one, rows_two)
    np.testing.assert_array_equal(probs_one, probs_two)
    rows_other, _ = sampler.sample(1, 3000, rng=43)
    assert not np.array_equal(rows_one, rows_other)


def test_update_rebuilds_only_that_factor():
    factors = skewed_factors((9, 8, 7), 4, seed=5)
    sampler = STSSampler(factors)
    replacement = skewed_factors((8,), 4, seed=99)[0]
    sampler.update(1, replacement)
    factors[1] = replacement
    exact = krp_leverage_distribution([factors[0], factors[1]])
    rows, probs = sampler.sample(2, 500, rng=0)
    wanted = exact[linear_rows(rows, [9, 8])]
    assert np.max(np.abs(probs - wanted) / wanted) <= tol("leverage_probs", "float64")
    np.testing.assert_array_equal(sampler.factors[1], replacement)


def test_input_copied_and_views_read_only():
    factors = skewed_factors((6, 5, 4), 3, seed=1)
    sampler = STSSampler(factors)
    factors[0][:] = 0.0
    assert np.any(sampler.factors[0] != 0.0)
    with pytest.raises(ValueError):
        sampler.factors[0][0, 0] = 1.0


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda f: STSSampler(f[:1]), ValueError, "at least 2"),
        (lambda f: STSSampler(np.ones((3, 3))), TypeError, "list of 2-D arrays"),
        (lambda f: STSSampler([f[0], f[1][:, :2]]), ValueError, "columns"),
        (lambda f: STSSampler([f[0], np.ones(4)]), ValueError, "2-D"),
        (lambda f: STSSampler([f[0], np.full((4, 3), np.nan)]), ValueError, "non-finite"),
        (lambda f: STSSampler(f, leaf_size=0), ValueError, "leaf_size"),
        (lambda f: STSSampler(f).sample(3, 10, rng=0), ValueError, "exclude"),
        (lambda f: STSSampler(f).sample(1.0, 10, rng=0), TypeError, "exclude"),
        (lambda f: STSSampler(f).sample(0, 0, rng=0), ValueError, "n must be"),
        (lambda f: STSSampler(f).sample(0, 10, rng="seed"), TypeError, "rng"),
        (lambda f: STSSampler(f).update(0, np.ones((5, 3))), ValueError, "rows"),
        (lambda f: STSSampler([f[0], np.zeros((4, 3))]).sample(0, 5, rng=0), ValueError, "zero"),
    ],
)
def test_bad_arguments(make, error, match):
    factors = skewed_factors((6, 5, 4), 3, seed=1)
    with pytest.raises(error, match=match):
        make(factors)


def test_direct_first_mode_draws_equal_tree_walk(monkeypatch):
    # both are inverse-CDF draws over the same order of components and rows, from the same uniforms
    import multilinear.sampling.sts as sts_module

    factors = skewed_factors((50, 37, 41), 5, seed=6)
    sampler = STSSampler(factors, leaf_size=4)
    direct_rows, direct_probs = sampler.sample(0, 5000, rng=8)
    monkeypatch.setattr(sts_module, "_DIRECT_FIRST_MODE_DRAWS", 0)
    tree_rows, tree_probs = sampler.sample(0, 5000, rng=8)
    agree = np.mean(np.all(direct_rows == tree_rows, axis=1))
    assert agree >= 0.999, f"only {agree:.4f} of the draws agree"  # rounding may move a boundary draw
    same = np.all(direct_rows == tree_rows, axis=1)
    np.testing.assert_allclose(direct_probs[same], tree_probs[same], rtol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_shared_walks_draw_what_independent_walks_draw(parallel):
    # samples with equal vectors, sorted by uniform, reuse the previous walk's node weights; with all
    # keys distinct nothing is shared: the draws must be bitwise the same either way
    from multilinear.kernels.sts_sample import sts_draw_components, sts_draw_rows
    from multilinear.sampling._gram_tree import build_eigen_tree, build_gram_tree

    rng = np.random.default_rng(4)
    rank, n = 6, 20_000
    first, factor = skewed_factors((9, 300), rank, seed=12)
    tree = build_gram_tree(factor, 4)
    gram = first.T @ first
    eigval, eigvec = np.linalg.eigh(np.linalg.pinv(gram * tree.gram))
    scaled = np.ascontiguousarray((eigvec * np.sqrt(np.maximum(eigval, 0.0))).T)
    eigen_nodes, padded = build_eigen_tree(scaled, tree.gram)
    prefix = rng.integers(0, first.shape[0], n)  # the first mode's rows: few distinct, many repeats
    uniforms = rng.random((2, n))
    results = []
    for shared in (True, False):
        h = first[prefix].copy()
        components = np.empty(n, dtype=np.int64)
        rows = np.empty(n, dtype=np.int64)
        keys = prefix if shared else np.arange(n)
        order = np.lexsort((uniforms[0], keys))
        sts_draw_components(eigen_nodes, padded, h, uniforms[0], order, keys, components, parallel=parallel)
        keys = prefix * padded + components if shared else np.arange(n)
        order = np.lexsort((uniforms[1], keys))
        sts_draw_rows(
            factor, tree.nodes, tree.n_leaves, tree.leaf_size, scaled, components, h, uniforms[1], order, keys,
            rows, parallel=parallel,
        )  # fmt: skip
        results.append((components, rows, h))
    for got, wanted in zip(results[0], results[1]):
        np.testing.assert_array_equal(got, wanted)
    assert np.unique(results[0][1]).size > 100  # the draws spread over many rows and leaves


@pytest.mark.parametrize("sampler_class", ["sts", "product"])
def test_copy_false_keeps_the_given_arrays_and_gram_follows_updates(sampler_class):
    from multilinear.sampling import ProductLeverageSampler

    make = STSSampler if sampler_class == "sts" else ProductLeverageSampler
    factors = skewed_factors((9, 8, 7), 4, seed=5)
    shared = make(factors, copy=False)
    copied = make([f.copy() for f in factors])
    for k, f in enumerate(factors):
        np.testing.assert_allclose(shared.gram(k), f.T @ f, rtol=1e-13, atol=1e-13 * np.abs(f.T @ f).max())
    # the caller changes factor 1 in place, then hands the same array to update (what cp_als does)
    replacement = skewed_factors((8,), 4, seed=99)[0]
    factors[1][...] = replacement
    shared.update(1, factors[1])
    copied.update(1, replacement)
    assert np.shares_memory(shared.factors[1], factors[1])
    np.testing.assert_allclose(shared.gram(1), replacement.T @ replacement, rtol=1e-13, atol=1e-12)
    rows_shared, probs_shared = shared.sample(2, 800, rng=3)
    rows_copied, probs_copied = copied.sample(2, 800, rng=3)
    np.testing.assert_array_equal(rows_shared, rows_copied)
    np.testing.assert_allclose(probs_shared, probs_copied, rtol=1e-12)
    with pytest.raises(TypeError, match="C-contiguous float64"):
        shared.update(0, np.asfortranarray(factors[0]))
    with pytest.raises(TypeError, match="C-contiguous float64"):
        make([factors[0], factors[1].astype(np.float32), factors[2]], copy=False)
    with pytest.raises(ValueError, match="shape"):
        shared.update(0, np.ones((4, 4)))
    bad = factors[2].copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        shared.update(2, bad)


def test_distinct_ids_without_a_combined_key():
    # ids of (prefix, row) pairs: the combined-key path and the lexsort path (for keys that would overflow)
    from multilinear.sampling.sts import _distinct_ids

    rng = np.random.default_rng(2)
    prefix = rng.integers(0, 40, 5000)
    drawn = rng.integers(0, 30, 5000)
    fast = _distinct_ids(prefix, drawn, 30)
    slow = _distinct_ids(prefix, drawn, 2**62)
    np.testing.assert_array_equal(fast, slow)
    pairs = prefix * 30 + drawn
    assert fast.max() + 1 == np.unique(pairs).size
    for value in np.unique(fast)[:50]:
        assert np.unique(pairs[fast == value]).size == 1
