"""Reference CP-ALS on dense arrays, numpy only: the textbook algorithm (Kolda & Bader 2009, Fig. 3.3).

Each iteration, for n = 0..N-1: ``A_n = X_(n) (⊙_{m != n} A_m) pinv(⊛_{m != n} A_m^T A_m)``, columns
normalised to unit 2-norm into ``weights``; the fit ``1 - ||X - M|| / ||X||`` is computed from the dense
model. Slow and simple: the oracle for ``multilinear.cp_als`` fit by fit.
"""

from __future__ import annotations

import numpy as np

from tests.reference.mttkrp import kruskal_to_dense, reference_mttkrp


def reference_cp_als(
    X: np.ndarray, factors: list[np.ndarray], iterations: int
) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
    """Run ``iterations`` ALS sweeps from ``factors`` (copied); return (weights, factors, fit per iteration)."""
    factors = [np.array(f, dtype=np.float64) for f in factors]
    rank = factors[0].shape[1]
    weights = np.ones(rank)
    fits = []
    for _ in range(iterations):
        for n in range(X.ndim):
            gram = np.ones((rank, rank))
            for m in range(X.ndim):
                if m != n:
                    gram *= factors[m].T @ factors[m]
            new = reference_mttkrp(X, factors, n) @ np.linalg.pinv(gram)
            weights = np.linalg.norm(new, axis=0)
            factors[n] = new / np.where(weights > 0, weights, 1.0)
        model = kruskal_to_dense(weights, factors)
        fits.append(1.0 - np.linalg.norm(X - model) / np.linalg.norm(X))
    return weights, factors, fits
