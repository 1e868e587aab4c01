"""planted_counts: event counts drawn from a known nonnegative model (the expectation of the tensor)."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.tensor import planted_counts
from tests.sampling._helpers import pooled_chisquare_pvalue


def test_reproducible_sorted_counts_that_sum_to_the_events():
    shape, events = (300, 200, 100), 50_000
    X = planted_counts(shape, 4, events, rng=3).tensor
    Y = planted_counts(shape, 4, events, rng=np.random.default_rng(3)).tensor
    np.testing.assert_array_equal(X.indices, Y.indices)
    np.testing.assert_array_equal(X.values, Y.values)
    assert X.shape == shape and X.values.sum() == events
    keys = np.ravel_multi_index(tuple(X.indices.T), shape)
    assert (np.diff(keys) > 0).all()  # sorted row-major, one entry per cell
    assert (X.values >= 1).all() and np.array_equal(X.values, np.round(X.values))
    assert not np.array_equal(planted_counts(shape, 4, events, rng=4).tensor.indices, X.indices)


def test_model_is_the_expectation_of_the_counts():
    # every cell's count against the model's mean, by a chi-square test with a fixed seed
    shape, events = (12, 9, 7), 400_000
    planted = planted_counts(shape, 3, events, exponent=1.1, shared=0.4, rng=5)
    X, M = planted.tensor, planted.model
    for factor in M.factors:
        np.testing.assert_allclose(factor.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(M.weights.sum(), events, rtol=1e-12)
    counts = np.zeros(shape)
    counts[tuple(X.indices.T)] = X.values
    expected = M.full()
    assert pooled_chisquare_pvalue(counts.ravel(), expected.ravel() / events) > 1e-6
    # and it is not any rank-3 nonnegative tensor: a uniform one is rejected outright
    flat = np.full(counts.size, 1.0 / counts.size)
    assert pooled_chisquare_pvalue(counts.ravel(), flat) < 1e-100


def test_exponent_concentrates_the_events():
    shape, events = (2000, 1500, 1000), 200_000
    loose = planted_counts(shape, 5, events, exponent=0.8, rng=1).tensor
    tight = planted_counts(shape, 5, events, exponent=1.6, rng=1).tensor
    assert tight.nnz < 0.5 * loose.nnz  # popular cells are hit over and over
    assert tight.values.max() > 20 * loose.values.max()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"exponent": 0.0}, ValueError, "exponent"),
        ({"shared": 1.5}, ValueError, "shared"),
        ({"shared": -0.1}, ValueError, "shared"),
        ({"events": 0}, ValueError, "events"),
        ({"rank": 2.5}, TypeError, "rank"),
        ({"shape": (2**32, 2**32)}, ValueError, "cells"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"shape": (10, 10), "rank": 2, "events": 100} | kwargs
    with pytest.raises(error, match=match):
        planted_counts(args.pop("shape"), args.pop("rank"), args.pop("events"), **args)
