"""CP-ARLS-LEV's sampler (Larsen & Kolda 2022): each factor's row drawn from its own leverage scores.

The product of the factors' leverage-score distributions upper-bounds the Khatri-Rao product's leverage
scores up to a factor ``R^(N-2)``, so it needs more samples than the exact sampler as the rank grows.
With ``hybrid=True`` every KRP row whose probability is at least ``1/n`` is included once, deterministically,
and the remaining draws are random; those that hit a deterministic row get weight 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multilinear._core import linalg
from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike
from multilinear.sampling._common import (
    check_finite_gram,
    check_mode,
    check_sample_count,
    check_shared_update,
    check_update,
    factor_leverage_scores,
    other_modes,
    row_keys,
    take_factors,
)


class ProductLeverageSampler:
    """Draw Khatri-Rao rows as products of rows drawn from each factor's leverage scores.

    Parameters
    ----------
    factors : sequence of array_like, each of shape (I_k, R)
        The factor matrices (N >= 2). They are copied unless ``copy=False``.
    hybrid : bool
        Include the rows of probability >= 1/n deterministically (Larsen & Kolda's hybrid scheme).
    copy : bool
        Keep copies of the factors (default), or, with ``copy=False``, the arrays given (C-contiguous
        float64) and in ``update`` the new one, as :class:`~multilinear.sampling.STSSampler` does.

    Notes
    -----
    ``sample`` returns ``probs`` such that ``1 / (n * probs)`` is each returned row's importance weight in
    a sketch of ``n`` rows. Without ``hybrid`` that is the row's probability under the product
    distribution. With ``hybrid`` (Larsen & Kolda's scheme) the first ``n_det`` rows are the deterministic
    ones with ``probs = 1 / n`` (weight 1); the other ``n_random = n - n_det`` rows are drawn from the full
    product distribution: one outside the deterministic set gets ``probs = n_random * p / n`` (weight
    ``1 / (n_random p)``), one inside it ``probs = inf`` (weight 0, its mass is already counted).
    """

    def __init__(self, factors: Any, hybrid: bool = False, *, copy: bool = True) -> None:
        if not isinstance(hybrid, (bool, np.bool_)):
            raise TypeError(f"hybrid must be True or False, got {type(hybrid).__name__} {hybrid!r}")
        self.hybrid = bool(hybrid)
        self._copy = bool(copy)
        self._factors = take_factors(factors, copy)
        self._grams = [linalg.gram(f) for f in self._factors]
        self._probs = [self._distribution(f, g) for f, g in zip(self._factors, self._grams)]
        self._cdfs = [np.cumsum(p) for p in self._probs]

    @staticmethod
    def _distribution(factor: np.ndarray, gram: np.ndarray) -> np.ndarray:
        """Leverage scores ``diag(U G^+ U^T)`` of the rows (``G = U^T U``), normalised to sum 1."""
        scores = factor_leverage_scores(factor, gram)
        total = scores.sum()
        if total <= 0.0:
            return np.full(factor.shape[0], 1.0 / factor.shape[0])  # zero factor: nothing to prefer
        return scores / total

    def gram(self, mode: int) -> np.ndarray:
        """The Gram matrix ``U^T U`` of factor ``mode`` (a copy), shape (R, R)."""
        return self._grams[check_mode(mode, len(self._factors))].copy()

    @property
    def factors(self) -> list[np.ndarray]:
        """The factors the sampler currently holds (read-only views)."""
        views = [f.view() for f in self._factors]
        for v in views:
            v.flags.writeable = False
        return views

    @property
    def rank(self) -> int:
        """R, the number of columns of every factor."""
        return int(self._factors[0].shape[1])

    def factor_probabilities(self, mode: int) -> np.ndarray:
        """Leverage-score distribution of factor ``mode``'s rows, shape (I_mode,)."""
        return self._probs[check_mode(mode, len(self._factors))].copy()

    def update(self, mode: int, factor: Any) -> None:
        """Replace factor ``mode`` (same shape) and recompute its leverage scores (with ``copy=False`` the
        sampler keeps ``factor`` itself)."""
        if self._copy:
            mode, factor = check_update(self._factors, mode, factor)
            self._factors[mode] = factor.copy()
        else:
            mode, factor = check_shared_update(self._factors, mode, factor)
            self._factors[mode] = factor
        self._grams[mode] = linalg.gram(self._factors[mode])
        if not self._copy:
            check_finite_gram(self._grams[mode], mode)
        self._probs[mode] = self._distribution(self._factors[mode], self._grams[mode])
        self._cdfs[mode] = np.cumsum(self._probs[mode])

    def _draw(self, modes: list[int], n: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rows = np.empty((n, len(modes)), dtype=np.int64)
        probs = np.ones(n)
        for t, k in enumerate(modes):
            cdf = self._cdfs[k]
            picked = np.searchsorted(cdf, gen.random(n) * cdf[-1], side="right")
            np.minimum(picked, cdf.shape[0] - 1, out=picked)
            rows[:, t] = picked
            probs *= self._probs[k][picked]
        return rows, probs

    def sample(self, exclude: int, n: int, rng: RNGLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows of the KRP of all factors but ``exclude``.

        Parameters
        ----------
        exclude : int
            The mode left out of the Khatri-Rao product.
        n : int
            Number of rows returned.
        rng : None, int, SeedSequence or Generator
            Source of randomness.

        Returns
        -------
        rows : ndarray of int64, shape (n, N - 1)
            Row indices into the factors other than ``exclude``, in ascending mode order.
        probs : ndarray of float64, shape (n,)
            Probability of each row (see the class notes for the hybrid convention).
        """
        exclude = check_mode(exclude, len(self._factors), "exclude")
        n = check_sample_count(n)
        gen = as_generator(rng)
        modes = other_modes(len(self._factors), exclude)
        if not self.hybrid:
            return self._draw(modes, n, gen)
        return self._sample_hybrid(modes, n, gen)

    # ------------------------------------------------------------------ hybrid
    def deterministic_rows(self, exclude: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """All KRP rows (factors other than ``exclude``) whose product probability is >= ``threshold``.

        Returns
        -------
        rows : ndarray of int64, shape (D, N - 1)
        probs : ndarray of float64, shape (D,)
        """
        exclude = check_mode(exclude, len(self._factors), "exclude")
        if not threshold > 0.0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        modes = other_modes(len(self._factors), exclude)
        orders = [np.argsort(-self._probs[k], kind="stable") for k in modes]
        sorted_probs = [self._probs[k][o] for k, o in zip(modes, orders)]
        best_rest = np.ones(len(modes) + 1)
        for t in range(len(modes) - 1, -1, -1):
            best_rest[t] = best_rest[t + 1] * sorted_probs[t][0]
        positions = np.zeros((1, 0), dtype=np.int64)
        partial = np.ones(1)
        for t in range(len(modes)):
            # extend each partial row by every next-factor row that can still reach the threshold
            need = threshold / np.maximum(partial * best_rest[t + 1], np.finfo(np.float64).tiny)
            counts = np.searchsorted(-sorted_probs[t], -need, side="right")
            keep = counts > 0
            positions, partial, counts = positions[keep], partial[keep], counts[keep]
            parent = np.repeat(np.arange(partial.shape[0]), counts)
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            within = np.arange(parent.shape[0]) - starts
            positions = np.column_stack([positions[parent], within])
            partial = partial[parent] * sorted_probs[t][within]
        keep = partial >= threshold
        positions, partial = positions[keep], partial[keep]
        rows = np.empty_like(positions)
        for t in range(len(modes)):
            rows[:, t] = orders[t][positions[:, t]]
        return rows, partial

    def _sample_hybrid(
        self, modes: list[int], n: int, gen: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        exclude = next(k for k in range(len(self._factors)) if k not in modes)
        det_rows, _ = self.deterministic_rows(exclude, 1.0 / n)
        n_det = det_rows.shape[0]
        n_random = n - n_det
        out_rows = np.empty((n, len(modes)), dtype=np.int64)
        out_probs = np.empty(n)
        out_rows[:n_det] = det_rows
        out_probs[:n_det] = 1.0 / n
        if n_random == 0:
            return out_rows, out_probs
        # n_random draws from the full product distribution; those that land in the deterministic set are
        # kept as rows of weight 0 (their mass is already counted exactly), the others get weight
        # 1 / (n_random p): an unbiased estimate of the rest, with no rejection loop however small it is
        rows, probs = self._draw(modes, n_random, gen)
        dims = [self._factors[k].shape[0] for k in modes]
        inside = np.isin(row_keys(rows, dims), row_keys(det_rows, dims))
        out_rows[n_det:] = rows
        out_probs[n_det:] = np.where(inside, np.inf, n_random * probs / n)
        return out_rows, out_probs
