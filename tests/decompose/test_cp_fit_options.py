"""Stopping rule (absolute fit change, as pyttb) and the estimated fit (``fit_samples``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import multilinear as ml
from multilinear.tensor import random_sparse


@pytest.fixture(scope="module")
def tensor():
    return random_sparse((60, 50, 40), 6000, rank=4, noise=0.1, rng=3)


def test_tol_zero_runs_every_iteration_even_when_the_fit_drops(tensor):
    # sampled solves make the fit fluctuate: with tol=0 the loop must still run max_iter iterations
    res = ml.cp_als(tensor, 6, method="sts", samples=64, max_iter=12, tol=0.0, rng=1)
    fits = [f for _, f in res.fit_history]
    assert res.iterations == 12 and res.stopped == "max_iter"
    assert any(b < a for a, b in itertools.pairwise(fits)), "the test needs a run whose fit drops somewhere"


def test_stops_on_absolute_change(tensor):
    res = ml.cp_als(tensor, 4, max_iter=200, tol=1e-3, rng=0)
    fits = [f for _, f in res.fit_history]
    assert res.stopped == "converged"
    assert abs(fits[-1] - fits[-2]) < 1e-3
    assert all(abs(b - a) >= 1e-3 for a, b in itertools.pairwise(fits[:-1]))


def test_estimated_fit_tracks_the_exact_fit_and_final_fit_is_exact(tensor):
    exact = ml.cp_als(tensor, 4, max_iter=8, tol=0.0, rng=0)
    estimated = ml.cp_als(tensor, 4, max_iter=8, tol=0.0, rng=0, fit_samples=4000)
    # same seed, same factors: the estimate changes only what is reported along the way
    for (i, f_exact), (j, f_est) in zip(exact.fit_history, estimated.fit_history):
        assert i == j
        assert abs(f_est - f_exact) < 0.05, (i, f_est, f_exact)
    assert estimated.fit == pytest.approx(exact.fit, abs=1e-12)
    again = ml.cp_als(tensor, 4, max_iter=8, tol=0.0, rng=0, fit_samples=4000)
    assert again.fit_history == estimated.fit_history  # reproducible for a seed


def test_fit_samples_is_validated(tensor):
    with pytest.raises(ValueError, match="fit_samples must be >= 1"):
        ml.cp_als(tensor, 2, fit_samples=0)
    with pytest.raises(ValueError, match="SparseTensor input only"):
        ml.cp_als(np.ones((3, 4, 5)), 2, fit_samples=10)
