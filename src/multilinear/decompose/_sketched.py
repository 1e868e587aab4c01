"""Randomized least-squares solvers for CP-ALS: CP-ARLS-LEV (product sampler) and STS-CP (exact sampler).

Each solve of mode ``n`` draws ``J`` rows of the Khatri-Rao product (KRP) of the other factors, merges
repeated rows (their weights ``1 / (J p)`` added), and solves the reweighted problem
``min_A || S X_(n)^T - S K A^T ||`` through its normal equations ``A G = X_(n) S^T W K_S`` with the sampled
Gram ``G = K_S^T W K_S`` (R x R). The solution is computed as the sampled MTTKRP against the design rows
times ``G^-1``, ``A = X_(n) S^T W (K_S G^-1)``, whose nonzeros are found by looking up each sampled row's
fiber in a per-mode sorted layout of the tensor (built once, cached on the tensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike
from multilinear._core.validation import check_choice, check_positive_int
from multilinear.decompose._solvers import NormalEquations
from multilinear.sampling import ProductLeverageSampler, STSSampler
from multilinear.sampling._common import (
    ZeroKhatriRaoError,
    check_factors,
    check_mode,
    krp_rows,
    other_modes,
    row_keys,
)
from multilinear.tensor.sparse import SparseTensor

SKETCHED_METHODS = ("arls-lev", "arls-lev-hybrid", "sts")


@dataclass(frozen=True)
class FiberLayout:
    """The nonzeros of a tensor grouped by mode-``mode`` fiber (see :mod:`multilinear.kernels.sampled_mttkrp`).

    Attributes
    ----------
    mode : int
    fiber_keys : ndarray of int64, shape (F,)
        Row-major key of each fiber's indices in the other modes (ascending mode order), ascending.
    fiber_ptr : ndarray of int64, shape (F + 1,)
    fiber_rows : ndarray of int32 (int64 for modes of 2**31 indices or more), shape (nnz,)
        The mode index of each nonzero, in fiber order (``X.indices[permutation, mode]`` for the
        permutation that sorts the nonzeros by fiber key, which is not kept).
    fiber_values : ndarray of float64, shape (nnz,)
        Its value, in the same order (copies read contiguously by the sampled MTTKRP).
    """

    mode: int
    fiber_keys: np.ndarray
    fiber_ptr: np.ndarray
    fiber_rows: np.ndarray
    fiber_values: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the layout."""
        arrays = (self.fiber_keys, self.fiber_ptr, self.fiber_rows, self.fiber_values)
        return int(sum(a.nbytes for a in arrays))


def fiber_layout(X: SparseTensor, mode: int) -> FiberLayout:
    """The fiber layout of ``mode``, built on first use and kept in ``X._cache``.

    Raises
    ------
    ValueError
        If the other modes have ``2**63`` index combinations or more (keys would overflow int64).
    """
    mode = check_mode(mode, X.ndim)
    key = ("fiber_layout", mode)
    cached = X._cache.get(key)
    if cached is not None:
        return cached
    from multilinear.kernels.radix_sort import argsort_nonnegative, gather, gather_column
    from multilinear.kernels.sampled_mttkrp import fiber_keys_of, fiber_ranges

    others = other_modes(X.ndim, mode)
    if float(np.prod([float(X.shape[k]) for k in others])) >= 2.0**63:
        raise ValueError(
            f"the modes other than {mode} of a tensor of shape {X.shape} have 2**63 index combinations or "
            "more: sampled solves need them to fit an int64 key"
        )
    strides = np.zeros(X.ndim, dtype=np.int64)
    stride = 1
    for k in reversed(others):
        strides[k] = stride
        stride *= X.shape[k]
    keys = np.empty(X.nnz, dtype=np.int64)
    fiber_keys_of(X.indices, mode, strides, keys)
    index_dtype = np.int32 if X.nnz < 2**31 else np.int64
    # stable radix sort on numba's threads (np.argsort: one thread, 4-7.5 s on 6e7 random keys)
    sorted_keys, permutation = argsort_nonnegative(keys, index_dtype, overwrite=True)
    del keys
    pointers = np.empty(X.nnz + 1, dtype=np.int64)
    count = fiber_ranges(sorted_keys, sorted_keys, pointers)  # unique keys compacted in place
    fiber_keys = sorted_keys[:count].copy()
    del sorted_keys
    fiber_ptr = pointers[: count + 1].copy()
    del pointers
    row_dtype = np.int32 if X.shape[mode] < 2**31 else np.int64
    fiber_rows = np.empty(X.nnz, dtype=row_dtype)
    gather_column(X.indices, mode, permutation, fiber_rows)
    fiber_values = np.empty(X.nnz, dtype=np.float64)
    gather(X.values, permutation, fiber_values)
    del permutation
    layout = FiberLayout(
        mode=mode,
        fiber_keys=fiber_keys,
        fiber_ptr=fiber_ptr,
        fiber_rows=fiber_rows,
        fiber_values=fiber_values,
    )
    X._cache[key] = layout
    return layout


@dataclass(frozen=True)
class SampledRows:
    """The distinct sampled rows of one sketched least-squares problem, merged and weighted.

    Attributes
    ----------
    gram : ndarray, shape (R, R)
        ``K_S^T W K_S``: the sampled, reweighted Gram matrix of the Khatri-Rao product.
    design : ndarray, shape (S, R)
        The distinct sampled KRP rows ``K_S`` (rows of zero weight dropped).
    weights : ndarray, shape (S,)
        The summed weights ``1 / (J p)`` of each distinct row's draws (``W``).
    sample_fiber : ndarray of int64, shape (S,)
        The fiber of the tensor each row meets (index into ``layout``), or -1 if none.
    layout : FiberLayout
        The fiber layout of the mode solved for.
    """

    gram: np.ndarray
    design: np.ndarray
    weights: np.ndarray
    sample_fiber: np.ndarray
    layout: FiberLayout

    @property
    def distinct_rows(self) -> int:
        """Distinct KRP rows among the draws."""
        return int(self.design.shape[0])

    def mttkrp(self, design: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = X_(mode) S^T W design``: the sampled MTTKRP against ``design`` (S, R), into ``out``."""
        from multilinear.kernels.sampled_mttkrp import sampled_mttkrp

        sampled_mttkrp(
            self.layout.fiber_ptr,
            self.layout.fiber_rows,
            self.layout.fiber_values,
            self.sample_fiber,
            self.weights,
            design,
            out,
        )
        return out


def sampled_rows(
    X: SparseTensor, factors: list[np.ndarray], mode: int, rows: np.ndarray, probs: np.ndarray
) -> SampledRows:
    """Merge drawn KRP rows, weight them, form their Gram matrix and find their fibers.

    Parameters
    ----------
    X : SparseTensor, shape (I_0, ..., I_{N-1})
    factors : list of N ndarrays, factor ``k`` of shape (I_k, R)
    mode : int
        The mode solved for.
    rows : ndarray of int64, shape (J, N - 1)
        Drawn rows (indices into the other factors, ascending mode order).
    probs : ndarray of float64, shape (J,)
        Their probabilities; row ``s`` gets weight ``1 / (J * probs[s])`` (``inf`` gives weight 0).

    Returns
    -------
    SampledRows
    """
    from multilinear.kernels.sampled_mttkrp import find_fibers

    others = other_modes(X.ndim, mode)
    draws = rows.shape[0]
    keys = row_keys(rows, [X.shape[k] for k in others])
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    with np.errstate(divide="ignore"):
        draw_weights = 1.0 / (draws * probs)  # inf probability (a hybrid filler) gives weight 0
    weights = np.bincount(inverse.ravel(), weights=draw_weights, minlength=unique_keys.shape[0])
    useful = weights > 0
    unique_keys, first, weights = unique_keys[useful], first[useful], weights[useful]
    design = krp_rows(factors, others, rows[first])
    gram = (design * weights[:, None]).T @ design
    layout = fiber_layout(X, mode)
    sample_fiber = np.empty(unique_keys.shape[0], dtype=np.int64)
    find_fibers(layout.fiber_keys, unique_keys, sample_fiber)
    return SampledRows(gram=gram, design=design, weights=weights, sample_fiber=sample_fiber, layout=layout)


class SketchedSolver:
    """A :class:`~multilinear.decompose.ModeSolver` that solves each mode's problem on sampled KRP rows.

    Parameters
    ----------
    sampler : STSSampler or ProductLeverageSampler
        Holds the current factors; kept in sync through ``factor_changed``.
    X : SparseTensor
    samples : int
        Rows drawn per solve (J).
    rng : numpy Generator
        Drawn from in every solve.
    out : list of N ndarrays, optional
        Where ``solve(n)`` writes the new factor of mode ``n`` (C-contiguous float64 ``(I_n, R)``); by
        default buffers of the solver's own. ``cp_als`` passes its own factor arrays, so the factors are
        stored once.

    Notes
    -----
    As :class:`~multilinear.decompose.ExactSolver`, ``solve(n)`` writes the new factor of mode ``n`` into a
    buffer of its own (or ``out[n]``) and returns it, so the factor returned by an earlier ``solve(n)`` is
    overwritten by the next one: copy it to keep it. The buffers are allocated and touched at construction
    (setup), not in the first solve.
    """

    def __init__(
        self,
        sampler: STSSampler | ProductLeverageSampler,
        X: SparseTensor,
        samples: int,
        rng: np.random.Generator,
        *,
        out: list[np.ndarray] | None = None,
    ) -> None:
        self.sampler = sampler
        self._X = X
        self.samples = samples
        self._rng = rng
        self.last_distinct_rows = 0
        rank = sampler.rank
        # the solution of mode n goes to out[n] (C-contiguous float64, (I_n, R), the caller's to overwrite)
        # or to a buffer of the solver's own, written (and so faulted in) here, at setup: a fresh
        # (I_mode, R) array per solve is faulted in page by page, which costs more than the sampled MTTKRP
        # on long modes
        if out is None:
            out = [np.zeros((size, rank)) for size in X.shape]
            for buffer in out:
                buffer.fill(0.0)
        for n, buffer in enumerate(out):
            expected = (X.shape[n], rank)
            if buffer.shape != expected or buffer.dtype != np.float64 or not buffer.flags.c_contiguous:
                raise ValueError(f"out[{n}] must be a C-contiguous float64 array of shape {expected}")
            if not buffer.flags.writeable:
                raise ValueError(f"out[{n}] must be writeable")
        self._out = list(out)

    def solve(self, mode: int, factors: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        """The new unnormalised factor of ``mode`` (I_mode, R) from ``samples`` sampled rows.

        ``weights`` are not needed: the design matrix is the KRP of the other factors as given, so the
        returned factor absorbs them. The result is written into the solver's output array of ``mode``
        (which may be ``factors[mode]`` itself: it is not read).
        """
        out = self._out[mode]
        try:
            rows, probs = self.sampler.sample(mode, self.samples, self._rng)
        except ZeroKhatriRaoError:
            # a zero factor makes the Khatri-Rao product zero: nothing to sample, and the exact solution is 0
            out[...] = 0.0
            return out
        sampled = sampled_rows(self._X, factors, mode, rows, probs)
        self.last_distinct_rows = sampled.distinct_rows
        # A = X_(n) S^T W K_S G^-1: the S distinct design rows times G^-1 (S x R x R), then the sampled
        # MTTKRP writes the solution itself; forming the right-hand side first and multiplying it by
        # G^-1 would cost I_n x R x R (R = 100 on 1.7e6 rows: 0.45 s per iteration) and an (I_n, R) buffer
        solved = NormalEquations(sampled.gram).solve(sampled.design)
        return sampled.mttkrp(solved, out)

    def factor_changed(self, mode: int, factor: np.ndarray) -> None:
        """Hand the new factor to the sampler (the STS sampler rebuilds that factor's tree)."""
        self.sampler.update(mode, factor)

    def factor_gram(self, mode: int) -> np.ndarray:
        """``U^T U`` of the factor of ``mode`` as of the latest ``factor_changed``, from the sampler (the
        root of the STS sampler's tree, or the Gram the product sampler's leverage scores used), so that
        the ALS loop does not compute it again."""
        return self.sampler.gram(mode)


def make_sketched_solver(
    method: str,
    X: SparseTensor,
    factors: list[np.ndarray],
    *,
    samples: int,
    rng: RNGLike,
    in_place: bool = False,
) -> SketchedSolver:
    """The randomized mode solver of ``method`` for CP-ALS on ``X``.

    Parameters
    ----------
    method : {"arls-lev", "arls-lev-hybrid", "sts"}
        ``"arls-lev"``: product of the factors' leverage scores (Larsen & Kolda); ``"arls-lev-hybrid"``:
        the same with rows of probability >= 1/J taken deterministically; ``"sts"``: exact leverage
        scores of the Khatri-Rao product (Bharadwaj et al.).
    X : SparseTensor, shape (I_0, ..., I_{N-1})
    factors : list of N ndarrays, factor ``k`` of shape (I_k, R)
        The initial factors.
    samples : int
        Rows drawn per least-squares solve (J).
    rng : None, int, SeedSequence or Generator
        Source of all draws (a Generator is used as is, so a caller's stream continues reproducibly).
    in_place : bool
        Write each new factor into ``factors[n]`` (which must then be C-contiguous float64 and writeable)
        instead of buffers of the solver's own.

    Returns
    -------
    SketchedSolver
    """
    check_choice(method, "method", SKETCHED_METHODS)
    if not isinstance(X, SparseTensor):
        raise TypeError(f"X must be a multilinear.SparseTensor, got {type(X).__name__}")
    samples = check_positive_int(samples, "samples")
    checked = check_factors(factors)
    if len(checked) != X.ndim:
        raise ValueError(f"expected {X.ndim} factor matrices (one per mode of X), got {len(checked)}")
    for k, f in enumerate(checked):
        if f.shape[0] != X.shape[k]:
            raise ValueError(f"factors[{k}] must have {X.shape[k]} rows (mode {k} of X), got {f.shape[0]}")
    generator = as_generator(rng)
    # in place, the samplers keep cp_als's factor arrays instead of copies (the solver writes each new
    # factor into them, and the loop hands it to factor_changed right after normalising it in place)
    if in_place:
        for n, f in enumerate(factors):
            if not isinstance(f, np.ndarray) or f.dtype != np.float64 or not f.flags.c_contiguous:
                raise ValueError(f"in_place needs C-contiguous float64 factors; factors[{n}] is not")
        checked = list(factors)
    if method == "sts":
        sampler: STSSampler | ProductLeverageSampler = STSSampler(checked, copy=not in_place)
    else:
        sampler = ProductLeverageSampler(checked, hybrid=method == "arls-lev-hybrid", copy=not in_place)
    for mode in range(X.ndim):
        fiber_layout(X, mode)  # build the layouts now (setup), not in the first timed solve
    return SketchedSolver(sampler, X, samples, generator, out=list(factors) if in_place else None)


def sampled_range_finder_factors(
    X: SparseTensor, rank: int, generator: np.random.Generator, samples: int
) -> list[np.ndarray]:
    """The randomized range finder of ``init="rrf"`` on sampled columns of each unfolding.

    Factor 0 is Gaussian (ALS overwrites it first). For mode n > 0: draw ``samples`` mode-n fibers (columns
    of the unfolding ``X_(n)``) with probability proportional to their squared norms (length-squared
    sampling, so ``C C^T`` estimates ``X_(n) X_(n)^T`` without bias for ``C`` the drawn columns scaled by
    ``1 / sqrt(samples * p)``), multiply ``C`` by a Gaussian matrix (one sampled MTTKRP with Gaussian
    design rows) and orthonormalise as :func:`~multilinear.decompose._init.range_finder_factors` does.
    It costs about one sampled solve per mode and uses the fiber layouts the sampled solvers build anyway,
    where the full range finder needs the exact MTTKRP's per-mode layouts (on 6e7 nonzeros: 23-31 s).
    Rows of ``X_(n)`` that no drawn fiber reaches are zero.
    """
    from multilinear.decompose._init import orthonormal_range
    from multilinear.kernels.sampled_mttkrp import fiber_square_norms, sampled_mttkrp

    factors = [generator.standard_normal((X.shape[0], rank))]
    for n in range(1, X.ndim):
        layout = fiber_layout(X, n)
        cumulative = np.empty(layout.fiber_keys.shape[0])
        fiber_square_norms(layout.fiber_ptr, layout.fiber_values, cumulative)
        np.cumsum(cumulative, out=cumulative)
        total = cumulative[-1]
        drawn = np.searchsorted(cumulative, generator.random(samples) * total, side="right")
        drawn = np.minimum(drawn, cumulative.shape[0] - 1)
        fibers, counts = np.unique(drawn, return_counts=True)
        below = np.where(fibers > 0, cumulative[np.maximum(fibers - 1, 0)], 0.0)
        mass = (cumulative[fibers] - below) / total  # probability of each drawn fiber
        del cumulative
        weights = np.sqrt(counts / (samples * mass))
        design = generator.standard_normal((fibers.shape[0], rank))
        sketch = np.empty((X.shape[n], rank))
        sampled_mttkrp(
            layout.fiber_ptr, layout.fiber_rows, layout.fiber_values, fibers, weights, design, sketch
        )
        factors.append(orthonormal_range(sketch, generator))
    return factors


def estimate_fit(
    X: SparseTensor,
    weights: Any,
    factors: list[np.ndarray],
    *,
    samples: int = 2**16,
    rng: RNGLike = None,
    norm_x: float | None = None,
) -> float:
    """Estimate the fit ``1 - ||X - M|| / ||X||`` without a pass over all nonzeros.

    ``||X - M||^2 = ||M||^2 - ||X||^2 + 2 sum_nz x (x - m)``: the first two terms are exact (``||M||^2`` from
    the Gram matrices), the sum over the nonzeros is estimated from ``samples`` of them drawn uniformly with
    replacement (unbiased). Its terms shrink as the model fits, so the estimate is sharpest where it
    matters; the error of the squared residual falls like ``1/sqrt(samples)``.

    Parameters
    ----------
    X : SparseTensor
    weights : array_like, shape (R,)
    factors : list of N ndarrays, factor ``k`` of shape (I_k, R)
    samples : int
        Nonzeros drawn.
    rng : None, int, SeedSequence or Generator
    norm_x : float, optional
        ``||X||`` if known (else computed, one pass over the values).

    Returns
    -------
    float
    """
    if not isinstance(X, SparseTensor):
        raise TypeError(f"X must be a multilinear.SparseTensor, got {type(X).__name__}")
    samples = check_positive_int(samples, "samples")
    checked = check_factors(factors)
    if len(checked) != X.ndim:
        raise ValueError(f"expected {X.ndim} factor matrices, got {len(checked)}")
    lam = np.asarray(weights, dtype=np.float64)
    if lam.shape != (checked[0].shape[1],):
        raise ValueError(f"weights must have shape ({checked[0].shape[1]},), got {lam.shape}")
    generator = as_generator(rng)
    norm = X.norm() if norm_x is None else float(norm_x)
    if norm <= 0.0:
        raise ValueError("X has norm 0: the fit is undefined")
    gram = np.ones((lam.shape[0], lam.shape[0]))
    for f in checked:
        gram *= f.T @ f
    model_norm_sq = float(lam @ gram @ lam)
    picked = generator.integers(0, X.nnz, size=samples)
    idx = X.indices[picked]
    model_values = krp_rows(checked, list(range(X.ndim)), idx) @ lam
    data = X.values[picked]
    misfit = X.nnz * float(np.mean(data * (data - model_values)))  # estimates ||X||^2 - <X, M>
    residual_sq = max(model_norm_sq - norm**2 + 2.0 * misfit, 0.0)
    return float(1.0 - np.sqrt(residual_sq) / norm)
