"""Results of CP decompositions (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CPTimes:
    """Where the seconds of a CP-ALS run went.

    Attributes
    ----------
    update : tuple of float, one per completed iteration
        Seconds spent computing the new factors (the solver calls, normalisation, Gram updates).
    fit : tuple of float, one per completed iteration
        Seconds spent evaluating the exact fit (0.0 in iterations where it was not evaluated).
    setup : float
        Validation, initial factors and solver construction (sparse layouts, kernel loading or compiling).
    total : float
        Wall time of the whole call.
    init : float
        The part of ``setup`` spent computing the initial factors (one MTTKRP per mode but the first
        for ``init="rrf"``; next to nothing for Gaussian or given factors).
    """

    update: tuple[float, ...]
    fit: tuple[float, ...]
    setup: float
    total: float
    init: float = 0.0

    @property
    def seconds_per_iteration(self) -> float:
        """Median update seconds per iteration (nan before the first iteration)."""
        return float(np.median(self.update)) if self.update else float("nan")


@dataclass(frozen=True)
class CPResult:
    """A rank-R CP model ``sum_r weights[r] * outer(factors[0][:, r], ..., factors[N-1][:, r])``.

    Attributes
    ----------
    weights : ndarray, shape (R,)
        Column weights (2-norms of the last mode solved, that mode's columns normalised).
    factors : list of ndarray, factor ``n`` of shape (I_n, R)
        Factor matrices, C-contiguous float64.
    fit : float
        Exact fit ``1 - ||X - M|| / ||X||`` of the returned model.
    fit_history : tuple of (int, float)
        ``(iteration, fit)`` at each fit evaluation (every ``fit_every`` iterations and the last).
    iterations : int
        Completed ALS iterations (sweeps over all modes).
    times : CPTimes
    method : str
        ``"exact"``, ``"arls-lev"``, ``"arls-lev-hybrid"`` or ``"sts"``.
    rank : int
    stopped : str
        Why the loop ended: ``"converged"`` (fit improved by less than ``tol``), ``"max_iter"``,
        ``"callback"`` (the callback returned False) or ``"interrupted"`` (KeyboardInterrupt).
    """

    weights: np.ndarray
    factors: list[np.ndarray]
    fit: float
    fit_history: tuple[tuple[int, float], ...]
    iterations: int
    times: CPTimes
    method: str
    rank: int
    stopped: str
