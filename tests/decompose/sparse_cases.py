"""Small random sparse tensors for the CP tests: power-law heavy slices and empty slices in every mode."""

from __future__ import annotations

import numpy as np

from multilinear import SparseTensor


def powerlaw_dense(shape: tuple[int, ...], density: float, rng: np.random.Generator) -> np.ndarray:
    """A dense array with ~``density`` of its cells nonzero, concentrated on low indices (power law).

    In every mode, index 0 is a heavy slice and index 1 an empty one (when the mode has 3 or more
    indices). Coordinates are distinct by construction (one value per cell).
    """
    prob = np.ones(shape)
    for mode, size in enumerate(shape):
        weights = (np.arange(size) + 1.0) ** -1.5
        weights /= weights.mean()
        prob *= weights.reshape([size if m == mode else 1 for m in range(len(shape))])
    prob = np.clip(density * prob, 0.0, 0.95)
    mask = rng.random(shape) < prob
    for mode, size in enumerate(shape):
        if size >= 3:
            index = [slice(None)] * len(shape)
            index[mode] = 1
            mask[tuple(index)] = False
    return np.where(mask, rng.standard_normal(shape), 0.0)


def powerlaw_sparse(shape: tuple[int, ...], density: float, seed: int) -> tuple[SparseTensor, np.ndarray]:
    """``powerlaw_dense`` as a SparseTensor (same shape), with the dense array."""
    dense = powerlaw_dense(shape, density, np.random.default_rng(seed))
    return SparseTensor.from_dense(dense), dense
