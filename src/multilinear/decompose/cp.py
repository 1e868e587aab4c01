"""CP decomposition by alternating least squares: exact, or with the randomized solvers of ``_sketched``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.threads import run_pieces, thread_limits
from multilinear._core.typing import RNGLike
from multilinear._core.validation import check_choice, check_nonnegative_float, check_positive_int
from multilinear.decompose._init import (
    gaussian_factors,
    given_factors,
    range_finder_factors,
    slice_norm_factors,
)
from multilinear.decompose._mttkrp import model_inner_product
from multilinear.decompose._progress import NoProgress, RichProgress
from multilinear.decompose._result import CPResult, CPTimes
from multilinear.decompose._solvers import ExactSolver, GramCache, ModeSolver
from multilinear.tensor.sparse import SparseTensor

METHODS = ("exact", "arls-lev", "arls-lev-hybrid", "sts")
RANDOMIZED_METHODS = METHODS[1:]
DEFAULT_SAMPLES = 2**16
# BLAS threads inside the ALS loop (None: leave BLAS as it is). bench/bench_cp.py compares both.
_LOOP_BLAS_THREADS: int | None = 1
_NORMALISE_PIECE_ROWS = 2**16  # rows per piece when normalising a long factor

Callback = Callable[[int, "float | None", list[np.ndarray]], Any]


INITS = ("auto", "gaussian", "norms", "rrf", "sampled-rrf")


def cp_als(
    X: SparseTensor | np.ndarray,
    rank: int,
    *,
    method: str = "exact",
    samples: int | None = None,
    max_iter: int = 50,
    tol: float = 1e-4,
    init: str | Sequence[np.ndarray] = "auto",
    rng: RNGLike = None,
    fit_every: int = 1,
    fit_samples: int | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> CPResult:
    """Rank-``rank`` CP decomposition of ``X`` by alternating least squares.

    Each iteration updates the factor of every mode in order (0, 1, ..., N-1): the new factor solves the
    least-squares problem with all other factors fixed (exactly for ``method="exact"``: MTTKRP, then the
    R x R normal equations whose matrix is the Hadamard product of the other factors' Gram matrices, by
    Cholesky, or a pseudo-inverse when ill-conditioned), then its columns are normalised to unit 2-norm
    into ``weights``. Every ``fit_every`` iterations (and at the last) the exact fit
    ``1 - ||X - M|| / ||X||`` is computed from ``||X - M||^2 = ||X||^2 + ||M||^2 - 2 <X, M>`` (``||M||^2`` from
    the Gram matrices, ``<X, M>`` from the last MTTKRP of the exact method or a pass over the nonzeros;
    clamped at 0 before the square root). The loop stops when the fit changes by less than ``tol`` (in
    absolute value, as pyttb) between two evaluations.

    Parameters
    ----------
    X : SparseTensor or ndarray, shape (I_0, ..., I_{N-1}), N >= 2
        The tensor. Must have a nonzero entry.
    rank : int >= 1
        Number of components R.
    method : {"exact", "arls-lev", "arls-lev-hybrid", "sts"}
        How each least-squares problem is solved; the randomized methods sample rows of the Khatri-Rao
        product (``multilinear.decompose._sketched``) and need a SparseTensor (a dense X is converted).
    samples : int, optional
        Rows sampled per least-squares problem by the randomized methods (default ``2**16``). Not
        accepted with ``method="exact"``.
    max_iter : int >= 1
        Most iterations.
    tol : float >= 0
        Stop when the fit changes by less than this (in absolute value) between two evaluations; 0 runs
        ``max_iter`` iterations.
    init : {"auto", "gaussian", "norms", "rrf", "sampled-rrf"} or sequence of N arrays of shape (I_n, R)
        ``"gaussian"``: standard normal factors; ``"norms"``: the same with row ``i`` of factor ``n``
        scaled by the norm of slice ``i`` of mode ``n`` (one pass over the nonzeros); ``"rrf"``:
        randomized range finder (each factor but the first spans the range of the unfolding times a
        random Khatri-Rao sketch: one MTTKRP per mode); ``"sampled-rrf"`` (SparseTensor only): the range
        finder on ``samples`` columns of each unfolding drawn by their squared norms (about one sampled
        solve per mode); or the initial factors (copied; the factor of mode 0 is overwritten first, as in
        pyttb, so only modes 1.. matter). ``"auto"`` (default): ``"gaussian"`` for ``method="exact"``,
        ``"sampled-rrf"`` for the randomized methods. Gaussian factors give every row of their
        Khatri-Rao product about the same leverage score, so a first sampled solve draws rows almost
        uniformly, and in a sparse tensor nearly all of them are empty fibers: the first iteration is
        wasted (fit 0.003 against 0.19 from ``"rrf"`` on a 1.1e7-nonzero count tensor at R = 25). The
        range finders put the leverage where the data is. The time spent is ``times.init``.
    rng : None, int, SeedSequence or Generator
        Randomness of the initialisation and the randomized solvers; a seed gives reproducible results.
    fit_every : int >= 1
        Evaluate the fit every this many iterations (the tolerance test happens at evaluations).
    fit_samples : int, optional
        For tensors too large to scan at every evaluation: estimate the fit from this many nonzeros drawn
        uniformly (unbiased for the squared residual; see ``multilinear.decompose.estimate_fit``) instead of
        a pass over all of them. ``fit_history`` then holds estimates (noisy: pair it with a ``tol`` above
        the noise, or 0); the returned ``fit`` is always exact (one pass at the end). Sparse tensors only.
    progress : bool
        Show a progress bar on stderr (iteration, fit, seconds per iteration).
    callback : callable, optional
        ``callback(iteration, fit, factors)`` after every iteration; ``fit`` is None in iterations where
        it was not evaluated. Returning ``False`` (exactly) stops the loop. Do not modify ``factors``;
        the solvers overwrite these arrays in later iterations, so copy what you keep.

    Returns
    -------
    CPResult
        Weights ``(R,)``, factors ``(I_n, R)``, final fit, fit history, iterations, timings, and why it
        stopped. A ``KeyboardInterrupt`` during the iterations stops them cleanly: the model reached so
        far is returned with ``stopped="interrupted"`` (its fit computed afresh, ``iterations`` counting
        the completed ones) instead of the exception; one during the setup propagates.

    Raises
    ------
    TypeError
        X of an unsupported type, non-integer rank/max_iter/fit_every/samples, callback not callable.
    ValueError
        Bad values: rank < 1, unknown method or init, negative tol, factor shapes, empty or all-zero X.
    NotImplementedError
        A randomized method when ``multilinear.decompose._sketched`` is not available.

    Notes
    -----
    Conventions follow pyttb's ``cp_als``: modes are updated in order, the first fit is evaluated after
    the first iteration and the loop never stops before the second evaluation; from the same initial
    factors the fits agree to rounding (pyttb normalises with max-norms after the first iteration, which
    changes the scaling of the factors but not the model).

    Sparse X: per-mode sorted copies of the nonzeros are built at the first call and kept in ``X._cache``
    (``nnz * (4 (N - 1) + 8)`` bytes per mode with int32 indices), so later calls on the same tensor
    skip that setup. The factors are stored once, in one stacked array that the kernels read; the
    returned factors are views of it.

    Threads: the MTTKRP kernels use numba's threads (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``);
    BLAS is limited to one thread inside the loop (its calls there are small, and OpenBLAS's threads and
    numba's fight on few cores). On oversubscribed cores, one numba thread can be faster than several.

    Examples
    --------
    >>> import numpy as np, multilinear as ml
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = (rng.random((n, 2)) for n in (6, 5, 4))
    >>> X = ml.SparseTensor.from_dense(np.einsum("ir,jr,kr->ijk", A, B, C))
    >>> res = ml.cp_als(X, 2, rng=0, tol=1e-10, max_iter=200)
    >>> res.fit > 0.999
    True
    """
    start = time.perf_counter()
    tensor = _check_tensor(X)
    rank = check_positive_int(rank, "rank")
    check_choice(method, "method", METHODS)
    max_iter = check_positive_int(max_iter, "max_iter")
    fit_every = check_positive_int(fit_every, "fit_every")
    tol = check_nonnegative_float(tol, "tol")
    if fit_samples is not None:
        fit_samples = check_positive_int(fit_samples, "fit_samples")
        if not isinstance(tensor, SparseTensor):
            raise ValueError("fit_samples (an estimated fit) applies to SparseTensor input only")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if method == "exact":
        if samples is not None:
            raise ValueError("samples applies to the randomized methods (arls-lev, arls-lev-hybrid, sts)")
    else:
        samples = DEFAULT_SAMPLES if samples is None else check_positive_int(samples, "samples")
        if not isinstance(tensor, SparseTensor):
            tensor = SparseTensor.from_dense(tensor)
    generator = as_generator(rng)
    if isinstance(init, str) and init == "auto":
        init = "gaussian" if method == "exact" else "sampled-rrf"
    init_start = time.perf_counter()
    factors = _initial_factors(
        tensor, rank, init, generator, samples=samples or DEFAULT_SAMPLES, method=method
    )
    init_seconds = time.perf_counter() - init_start
    fit_generator = generator.spawn(1)[0] if fit_samples is not None else None

    grams = GramCache(factors)
    if method == "exact":
        solver: ModeSolver = ExactSolver(tensor, factors, grams=grams)
    else:
        solver = _sketched_solver(method, tensor, factors, samples, generator)
    norm_x = _frobenius_norm(tensor)
    setup = time.perf_counter() - start

    state = _LoopState(factors=factors, weights=np.ones(rank))
    reporter = RichProgress(method, rank, max_iter) if progress else NoProgress()
    # BLAS runs single-threaded inside the loop: its calls here are small (R x R solves, Grams) and
    # OpenBLAS's threads fight numba's pool on a small machine (measured: bench/bench_cp.py).
    with reporter, thread_limits(blas_threads=_LOOP_BLAS_THREADS):
        try:
            _als_loop(
                tensor, solver, grams, norm_x, state, max_iter, tol, fit_every, callback, reporter, fit_samples,
                fit_generator,
            )  # fmt: skip
        except KeyboardInterrupt:
            state.stopped = "interrupted"

    fit = state.latest_fit
    stale = fit is None or state.stopped == "interrupted" or state.history[-1][0] != state.iterations
    if stale or fit_samples is not None:
        # the returned model was not evaluated as is: compute its fit afresh from scratch
        fit = _fit(tensor, norm_x, state.weights, state.factors, GramCache(state.factors), None)
    return CPResult(
        weights=state.weights,
        factors=state.factors,
        fit=float(fit),
        fit_history=tuple(state.history),
        iterations=state.iterations,
        times=CPTimes(
            update=tuple(state.update_seconds),
            fit=tuple(state.fit_seconds),
            setup=setup,
            total=time.perf_counter() - start,
            init=init_seconds,
        ),
        method=method,
        rank=rank,
        stopped=state.stopped,
    )


class _LoopState:
    """What the ALS loop has reached; read back after a KeyboardInterrupt too."""

    def __init__(self, factors: list[np.ndarray], weights: np.ndarray) -> None:
        self.factors = factors
        self.weights = weights
        self.iterations = 0
        self.history: list[tuple[int, float]] = []
        self.update_seconds: list[float] = []
        self.fit_seconds: list[float] = []
        self.latest_fit: float | None = None
        self.stopped = "max_iter"


def _als_loop(
    X: SparseTensor | np.ndarray,
    solver: ModeSolver,
    grams: GramCache,
    norm_x: float,
    state: _LoopState,
    max_iter: int,
    tol: float,
    fit_every: int,
    callback: Callback | None,
    reporter: NoProgress | RichProgress,
    fit_samples: int | None = None,
    fit_generator: np.random.Generator | None = None,
) -> None:
    nmodes = len(state.factors)
    # a solver that computes each new factor's Gram matrix anyway (the sketched ones) hands it over
    factor_gram = getattr(solver, "factor_gram", None)
    for iteration in range(1, max_iter + 1):
        t0 = time.perf_counter()
        for mode in range(nmodes):
            unnormalised = solver.solve(mode, state.factors, state.weights)
            factor, weights = _normalise_columns(unnormalised)
            state.factors[mode] = factor
            state.weights = weights
            if factor_gram is None:
                grams.update(mode, factor)
                solver.factor_changed(mode, factor)
            else:
                solver.factor_changed(mode, factor)
                grams.update(mode, factor, factor_gram(mode))
        t1 = time.perf_counter()
        state.update_seconds.append(t1 - t0)
        state.iterations = iteration

        fit: float | None = None
        if iteration % fit_every == 0 or iteration == max_iter:
            if fit_samples is not None:
                from multilinear.decompose._sketched import estimate_fit

                fit = estimate_fit(
                    X, state.weights, state.factors, samples=fit_samples, rng=fit_generator, norm_x=norm_x
                )
            else:
                inner = solver.latest_inner_product(nmodes - 1) if isinstance(solver, ExactSolver) else None
                fit = _fit(X, norm_x, state.weights, state.factors, grams, inner)
            previous = state.latest_fit
            state.latest_fit = fit
            state.history.append((iteration, fit))
        state.fit_seconds.append(time.perf_counter() - t1)
        reporter.update(iteration, fit, t1 - t0)
        if fit is not None and previous is not None and abs(fit - previous) < tol:
            state.stopped = "converged"
            return
        if callback is not None and callback(iteration, fit, state.factors) is False:
            state.stopped = "callback"
            return


def _fit(
    X: SparseTensor | np.ndarray,
    norm_x: float,
    weights: np.ndarray,
    factors: list[np.ndarray],
    grams: GramCache,
    inner: float | None,
) -> float:
    """Exact fit ``1 - ||X - M|| / ||X||``; ``inner`` is ``<X, M>`` when known (else one pass computes it)."""
    model_norm_sq = float(weights @ grams.hadamard_all() @ weights)
    if inner is None:
        inner = model_inner_product(X, weights, factors)
    residual_sq = max(norm_x**2 + model_norm_sq - 2.0 * inner, 0.0)
    return float(1.0 - np.sqrt(residual_sq) / norm_x)


def _normalise_columns(factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide the columns by their 2-norms (zero columns stay zero); return (factor, norms).

    Long factors go in fixed pieces of rows on the small thread pool of ``run_pieces`` (sums of squares
    per piece, added in piece order, so the norms do not depend on the thread count).
    """
    rows = factor.shape[0]
    if rows <= _NORMALISE_PIECE_ROWS:
        norms = np.sqrt(np.einsum("ir,ir->r", factor, factor))
        safe = np.where(norms > 0, norms, 1.0)
        factor /= safe
        return np.ascontiguousarray(factor), norms
    starts = range(0, rows, _NORMALISE_PIECE_ROWS)
    partial = np.empty((len(starts), factor.shape[1]))

    def squares(start: int) -> None:
        block = factor[start : start + _NORMALISE_PIECE_ROWS]
        partial[start // _NORMALISE_PIECE_ROWS] = np.einsum("ir,ir->r", block, block)

    run_pieces(squares, starts)
    norms = np.sqrt(partial.sum(axis=0))
    scale = 1.0 / np.where(norms > 0, norms, 1.0)

    def divide(start: int) -> None:
        factor[start : start + _NORMALISE_PIECE_ROWS] *= scale

    run_pieces(divide, starts)
    return np.ascontiguousarray(factor), norms


def _check_tensor(X: Any) -> SparseTensor | np.ndarray:
    if isinstance(X, SparseTensor):
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 modes, got shape {X.shape}")
        if X.nnz == 0 or not np.any(X.values):
            raise ValueError(f"X (shape {X.shape}) has no nonzero entries: nothing to decompose")
        return X
    if isinstance(X, np.ndarray):
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 modes, got shape {X.shape}")
        if X.size == 0:
            raise ValueError(f"X has shape {X.shape}: it is empty")
        dense = np.ascontiguousarray(X, dtype=np.float64)
        if not np.all(np.isfinite(dense)):
            raise ValueError("X has non-finite entries (nan or inf)")
        if not np.any(dense):
            raise ValueError(f"X (shape {X.shape}) is all zeros: nothing to decompose")
        return dense
    raise TypeError(f"X must be a multilinear.SparseTensor or a numpy array, got {type(X).__name__}")


def _frobenius_norm(X: SparseTensor | np.ndarray) -> float:
    if isinstance(X, SparseTensor):
        return X.norm()
    return float(np.linalg.norm(X.ravel()))


def _initial_factors(
    X: SparseTensor | np.ndarray,
    rank: int,
    init: Any,
    generator: np.random.Generator,
    *,
    samples: int = DEFAULT_SAMPLES,
    method: str = "exact",
) -> list[np.ndarray]:
    """The initial factors. Layouts an initialisation builds that ``method`` does not use are dropped
    from ``X._cache`` (the exact solver uses the MTTKRP layouts, the sampled ones the fiber layouts; each
    holds about a copy of the tensor per mode)."""
    if isinstance(init, str):
        check_choice(init, "init", INITS)
        if init == "gaussian":
            return gaussian_factors(tuple(X.shape), rank, generator)
        if init == "norms":
            return slice_norm_factors(X, rank, generator)
        if init == "sampled-rrf" and not isinstance(X, SparseTensor):
            raise ValueError("init='sampled-rrf' applies to a SparseTensor X (use 'rrf' for a dense array)")
        cached = set(X._cache) if isinstance(X, SparseTensor) else set()
        if init == "rrf":
            factors = range_finder_factors(X, rank, generator)
        else:
            from multilinear.decompose._sketched import sampled_range_finder_factors

            factors = sampled_range_finder_factors(X, rank, generator, samples)
        if isinstance(X, SparseTensor):
            used = "mttkrp_layout" if method == "exact" else "fiber_layout"
            for key in set(X._cache) - cached:
                if key[0] != used:
                    del X._cache[key]
        return factors
    if isinstance(init, (list, tuple)):
        return given_factors(init, tuple(X.shape), rank)
    names = ", ".join(f"'{name}'" for name in INITS)
    raise TypeError(f"init must be {names} or a list of factor matrices, got {type(init).__name__}")


def _sketched_solver(
    method: str, X: SparseTensor, factors: list[np.ndarray], samples: int, generator: np.random.Generator
) -> ModeSolver:
    try:
        from multilinear.decompose._sketched import make_sketched_solver
    except ImportError as exc:
        if exc.name not in ("multilinear.decompose._sketched", None):
            raise
        raise NotImplementedError(
            f"method {method!r} needs multilinear.decompose._sketched, which is not available yet"
        ) from None
    # the factor arrays are cp_als's own (fresh from the initialisation): the solver writes into them
    return make_sketched_solver(method, X, factors, samples=samples, rng=generator, in_place=True)
