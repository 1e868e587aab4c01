"""Shared pieces of the sampler tests: skewed tiny factors and a pooled chi-square test."""

from __future__ import annotations

import numpy as np
from scipy.stats import chisquare


def skewed_factors(shapes: tuple[int, ...], rank: int, seed: int) -> list[np.ndarray]:
    """Gaussian factors whose rows are scaled by log-normal weights, so leverage scores are uneven."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((rows, rank)) * np.exp(rng.standard_normal((rows, 1))) for rows in shapes]


def linear_rows(rows: np.ndarray, dims: list[int]) -> np.ndarray:
    """Row-major linear index of each sampled KRP row (the order of ``khatri_rao_rows``)."""
    return np.ravel_multi_index(tuple(rows.T), dims)


def pooled_chisquare_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square goodness-of-fit p-value, cells with expected count below ``min_expected`` pooled.

    Cells of zero probability must have no counts (checked by the caller); they are dropped here.
    """
    total = counts.sum()
    expected = probs * total
    big = expected >= min_expected
    small = (~big) & (probs > 0)
    observed = list(counts[big])
    wanted = list(expected[big])
    if small.any():
        observed.append(counts[small].sum())
        wanted.append(expected[small].sum())
    observed_arr = np.asarray(observed, dtype=np.float64)
    wanted_arr = np.asarray(wanted)
    wanted_arr *= observed_arr.sum() / wanted_arr.sum()  # remove rounding drift in the totals
    return float(chisquare(observed_arr, wanted_arr).pvalue)
