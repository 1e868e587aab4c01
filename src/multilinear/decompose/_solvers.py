"""Mode solvers: the one step of CP-ALS that differs between the exact and the randomized methods.

The ALS loop in :mod:`multilinear.decompose.cp` is method-agnostic. For each mode ``n`` in order it calls
``A = solver.solve(n, factors, weights)``, normalises the columns of ``A`` into ``weights``, stores
``factors[n] = A`` and calls ``solver.factor_changed(n, A)``. A solver may keep state derived from the
factors (Gram matrices, stacked copies, sampling trees) and update it in ``factor_changed``. A solver that
computes the Gram matrix of each new factor anyway may offer ``factor_gram(n)``; the loop then takes the
Gram from it after ``factor_changed`` instead of computing it again.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from multilinear._core import linalg
from multilinear._core.threads import run_pieces
from multilinear.decompose._layout import mode_layout, stack_factors
from multilinear.decompose._mttkrp import dense_mttkrp, sparse_mttkrp_stacked
from multilinear.tensor.sparse import SparseTensor

# Rows per piece of a long solve (run on the pool of multilinear._core.threads.run_pieces).
_SOLVE_PIECE_ROWS = 2**15
# Above this estimated condition number of the R x R system the Cholesky solve is replaced by a
# least-squares solve with the pseudo-inverse.
_MAX_CONDITION = 1e12


@runtime_checkable
class ModeSolver(Protocol):
    """Computes the new (unnormalised) factor of one mode, all other factors fixed."""

    def solve(self, mode: int, factors: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        """The new factor of ``mode``, shape (I_mode, R), C-contiguous float64, before normalisation.

        ``factors`` are the current factor matrices (those of the other modes have unit-norm columns)
        and ``weights`` (R,) the current column weights; the returned factor absorbs the weights.
        """
        ...

    def factor_changed(self, mode: int, factor: np.ndarray) -> None:
        """Called after ``factors[mode]`` was replaced by ``factor`` (normalised columns)."""
        ...


class GramCache:
    """The R x R Gram matrices ``U_n^T U_n`` of the factors, kept up to date one mode at a time.

    Parameters
    ----------
    factors : list of N arrays, factor ``n`` of shape (I_n, R)
    """

    def __init__(self, factors: list[np.ndarray]) -> None:
        self.grams = [linalg.gram(f) for f in factors]

    def update(self, mode: int, factor: np.ndarray, gram: np.ndarray | None = None) -> None:
        """Recompute the Gram matrix of ``mode`` from its new ``factor`` (or take ``gram``, already known)."""
        self.grams[mode] = linalg.gram(factor) if gram is None else gram

    def hadamard_except(self, mode: int) -> np.ndarray:
        """Elementwise product of every Gram matrix but ``mode``'s, shape (R, R)."""
        rank = self.grams[0].shape[0]
        out = np.ones((rank, rank))
        for m, g in enumerate(self.grams):
            if m != mode:
                out *= g
        return out

    def hadamard_all(self) -> np.ndarray:
        """Elementwise product of all Gram matrices, shape (R, R)."""
        return self.hadamard_except(-1)


class NormalEquations:
    """The inverse of the R x R matrix ``gram`` (symmetric positive semi-definite) for ``A @ gram = B``.

    By Cholesky when ``gram`` is well conditioned; otherwise (or when Cholesky fails) the pseudo-inverse,
    which gives the minimum-norm least-squares solution. The solve is then one matrix product
    ``B @ inverse`` (a GEMM: several times faster than two triangular solves with ``I`` right-hand sides).
    """

    def __init__(self, gram: np.ndarray) -> None:
        import scipy.linalg

        rank = gram.shape[0]
        self.inverse = np.zeros((rank, rank))
        self.method = "zero"
        if not np.any(gram):
            return
        try:
            factor = scipy.linalg.cho_factor(gram, lower=True, check_finite=False)
            diag = np.abs(np.diag(factor[0]))
            if diag.min() > 0 and (diag.max() / diag.min()) ** 2 < _MAX_CONDITION:
                self.inverse = scipy.linalg.cho_solve(factor, np.eye(rank), check_finite=False)
                self.inverse = 0.5 * (self.inverse + self.inverse.T)
                self.method = "cholesky"
                return
        except np.linalg.LinAlgError:
            pass
        self.inverse = np.linalg.pinv(gram, hermitian=True)
        self.method = "pinv"

    def solve(self, rhs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The solution A (I, R) of ``A @ gram = rhs``, written into ``out`` when given (C-contiguous).

        Long right-hand sides are multiplied in fixed pieces of rows on a small pool of threads (BLAS is
        single-threaded inside ``cp_als``); a row's result does not depend on the pieces.
        """
        if out is None:
            out = np.empty(rhs.shape, dtype=np.float64)
        rows = rhs.shape[0]

        def piece(start: int) -> None:
            stop = min(rows, start + _SOLVE_PIECE_ROWS)
            np.matmul(rhs[start:stop], self.inverse, out=out[start:stop])

        run_pieces(piece, range(0, rows, _SOLVE_PIECE_ROWS))
        return out

    def trace_of_solution(self, rhs_gram: np.ndarray) -> float:
        """``trace(gram^-1 @ rhs_gram)``: equals ``sum(A * B)`` for ``A`` the solution and ``rhs_gram = B^T B``."""
        return float(np.sum(self.inverse * rhs_gram))


def solve_normal_equations(rhs: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Solve ``A @ gram = rhs`` for A (gram symmetric positive semi-definite); see ``NormalEquations``.

    Parameters
    ----------
    rhs : ndarray, shape (I, R)
    gram : ndarray, shape (R, R)

    Returns
    -------
    ndarray of float64, shape (I, R), C-contiguous (a new array)
    """
    return NormalEquations(gram).solve(np.asarray(rhs, dtype=np.float64))


class ExactSolver:
    """Exact least squares: MTTKRP, then the R x R system with the Hadamard product of the other Grams.

    Parameters
    ----------
    X : SparseTensor or ndarray
        The tensor; sparse MTTKRPs run in the numba kernels, dense ones through einsum/BLAS.
    factors : list of N arrays, factor ``n`` of shape (I_n, R), C-contiguous float64
        The initial factors. For a sparse X they are copied into the solver's storage and the list's
        entries are replaced by views of it (the arrays themselves are not written).
    grams : GramCache, optional
        Gram matrices shared with the caller, who then keeps them up to date *before* calling
        ``factor_changed``. When not given the solver keeps its own.

    Notes
    -----
    Memory (sparse X): the factors live in one stacked ``(sum(I_n), R)`` array that the MTTKRP kernels read;
    ``solve(n)`` writes the new factor of mode n straight into its block and returns that block (a view),
    so the factors are stored once, plus one ``(max(I_n), R)`` scratch array for the MTTKRP. The factor
    of mode n returned by an earlier ``solve(n)`` is therefore overwritten by the next one: copy it to keep
    it. The per-mode sorted layouts are built (or found in ``X._cache``) at construction.
    """

    def __init__(self, X: SparseTensor | np.ndarray, factors: list[np.ndarray], *, grams=None) -> None:
        self._X = X
        self._sparse = isinstance(X, SparseTensor)
        self._owns_grams = grams is None
        self._grams = GramCache(factors) if grams is None else grams
        self._factors = list(factors)
        self._latest: tuple[int, float] | None = None
        self._stacked = None
        self._scratch = None
        if self._sparse:
            self._stacked = stack_factors(self._factors)
            starts = np.concatenate(([0], np.cumsum([f.shape[0] for f in factors])))
            self._blocks = [self._stacked[starts[n] : starts[n + 1]] for n in range(len(factors))]
            # the caller's list now holds the stored factors: its own copies can be freed before the
            # layouts below are built (a lower peak of memory)
            factors[:] = self._blocks
            self._factors = list(self._blocks)
            self._scratch = np.empty((max(f.shape[0] for f in factors), factors[0].shape[1]))
            for mode in range(X.ndim):  # build (or find cached) every per-mode layout now: setup time
                mode_layout(X, mode)

    def solve(self, mode: int, factors: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        """MTTKRP of ``mode`` then the normal equations; ``weights`` are absorbed (not needed).

        For a sparse X the result is the solver's storage block of ``mode`` (see Notes of the class).
        """
        if self._sparse:
            rhs = sparse_mttkrp_stacked(self._X, self._stacked, mode, self._scratch[: self._X.shape[mode]])
        else:
            rhs = dense_mttkrp(self._X, self._factors, mode)
        system = NormalEquations(self._grams.hadamard_except(mode))
        if mode == len(self._factors) - 1:
            # <X, M> of the updated model (sum(A * rhs), weights absorbed in A), kept for the fit
            self._latest = (mode, system.trace_of_solution(linalg.gram(rhs)))
        if self._sparse:
            return system.solve(rhs, out=self._blocks[mode])
        return system.solve(rhs)

    def factor_changed(self, mode: int, factor: np.ndarray) -> None:
        """Record the new factor of ``mode`` (into the stacked storage unless it is that block already)."""
        self._factors[mode] = factor
        if self._sparse and factor is not self._blocks[mode]:
            self._blocks[mode][:] = factor
        if self._owns_grams:
            self._grams.update(mode, factor)

    def latest_inner_product(self, mode: int) -> float | None:
        """``<X, M>`` for the model right after the latest ``solve``, if that solve was for ``mode``.

        Computed from that solve's MTTKRP (``trace(H^+ K)`` with ``K = MTTKRP^T MTTKRP`` and ``H`` the
        Hadamard product of the other Gram matrices), so it costs no pass over the nonzeros. It holds
        while the other factors have not changed since.
        """
        if self._latest is not None and self._latest[0] == mode:
            return self._latest[1]
        return None
