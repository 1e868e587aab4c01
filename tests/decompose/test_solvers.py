"""The ModeSolver interface, the exact solver and the normal-equation solve with its fallback."""

from __future__ import annotations

import numpy as np

from multilinear.decompose import ExactSolver, ModeSolver
from multilinear.decompose._solvers import GramCache, solve_normal_equations
from tests.decompose.sparse_cases import powerlaw_sparse
from tests.reference.mttkrp import reference_mttkrp


def test_solve_matches_lstsq_well_conditioned() -> None:
    rng = np.random.default_rng(0)
    U = rng.standard_normal((30, 5))
    rhs = rng.standard_normal((12, 5))
    gram = U.T @ U
    np.testing.assert_allclose(solve_normal_equations(rhs, gram) @ gram, rhs, atol=1e-10)


def test_singular_gram_falls_back_to_pseudo_inverse() -> None:
    rng = np.random.default_rng(1)
    U = rng.standard_normal((30, 3))
    U = np.hstack([U, U[:, :1]])  # two identical columns: singular Gram matrix
    gram = U.T @ U
    rhs = rng.standard_normal((7, 4)) @ gram  # consistent right-hand side
    solution = solve_normal_equations(rhs, gram)
    assert np.all(np.isfinite(solution))
    np.testing.assert_allclose(solution, rhs @ np.linalg.pinv(gram), atol=1e-8)
    np.testing.assert_allclose(solution @ gram, rhs, atol=1e-8)
    assert not np.any(solve_normal_equations(rhs, np.zeros((4, 4))))


def test_exact_solver_is_a_mode_solver_and_solves_the_normal_equations() -> None:
    X, dense = powerlaw_sparse((7, 6, 5), density=0.4, seed=2)
    rng = np.random.default_rng(3)
    factors = [rng.standard_normal((size, 3)) for size in X.shape]
    for tensor in (X, dense):
        solver = ExactSolver(tensor, list(factors))  # keeps its own Gram matrices
        assert isinstance(solver, ModeSolver)
        new = solver.solve(0, factors, np.ones(3))
        gram = GramCache(factors).hadamard_except(0)
        np.testing.assert_allclose(new @ gram, reference_mttkrp(dense, factors, 0), atol=1e-10)
        assert solver.latest_inner_product(0) is None  # kept for the last mode only
        # after factor_changed (the solver updates its own Gram matrices) the next solve uses the new factor
        solver.factor_changed(0, new)
        updated = [new, factors[1], factors[2]]
        second = solver.solve(1, updated, np.ones(3))
        np.testing.assert_allclose(
            second @ GramCache(updated).hadamard_except(1), reference_mttkrp(dense, updated, 1), atol=1e-9
        )


def test_inner_product_of_the_last_solve_equals_a_pass_over_the_nonzeros() -> None:
    from multilinear.decompose._mttkrp import model_inner_product

    X, _ = powerlaw_sparse((7, 6, 5), density=0.4, seed=4)
    rng = np.random.default_rng(5)
    factors = [rng.standard_normal((size, 3)) for size in X.shape]
    solver = ExactSolver(X, list(factors))
    new = solver.solve(2, factors, np.ones(3))
    expected = model_inner_product(X, np.ones(3), [factors[0], factors[1], new])
    np.testing.assert_allclose(solver.latest_inner_product(2), expected, rtol=1e-10)
    assert solver.latest_inner_product(1) is None


def test_sparse_solver_writes_into_its_stacked_storage() -> None:
    X, dense = powerlaw_sparse((7, 6, 5), density=0.4, seed=6)
    rng = np.random.default_rng(7)
    factors = [rng.standard_normal((size, 2)) for size in X.shape]
    kept = [f.copy() for f in factors]
    solver = ExactSolver(X, list(factors))
    first = solver.solve(0, factors, np.ones(2))
    assert first.flags.c_contiguous and first.shape == (7, 2)
    for f, k in zip(factors, kept):  # the caller's arrays are never written
        np.testing.assert_array_equal(f, k)
    first /= np.linalg.norm(first, axis=0)  # normalised in place, as the ALS loop does
    solver.factor_changed(0, first)
    # the next mode's MTTKRP sees the new factor 0
    second = solver.solve(1, [first, factors[1], factors[2]], np.ones(2))
    gram = GramCache([first, factors[1], factors[2]]).hadamard_except(1)
    np.testing.assert_allclose(
        second @ gram, reference_mttkrp(dense, [first, factors[1], factors[2]], 1), atol=1e-9
    )
    # a factor that is not the solver's block (e.g. from another solver) is copied in
    solver.factor_changed(1, second)
    replacement = rng.standard_normal((7, 2))
    solver.factor_changed(0, replacement)
    third = solver.solve(2, [replacement, second, factors[2]], np.ones(2))
    gram = GramCache([replacement, second, factors[2]]).hadamard_except(2)
    np.testing.assert_allclose(
        third @ gram, reference_mttkrp(dense, [replacement, second, factors[2]], 2), atol=1e-9
    )


def test_long_solves_and_normalisation_in_pieces_match_whole_array_operations(monkeypatch) -> None:
    # pieces of rows on the thread pool: each row's product is the same BLAS call on that row; the column
    # norms add per-piece sums, so they agree with the one-pass norms to rounding, at any thread count
    import multilinear._core.threads as threads_module
    from multilinear._core.threads import thread_limits
    from multilinear.decompose import _solvers
    from multilinear.decompose._solvers import NormalEquations
    from multilinear.decompose.cp import _NORMALISE_PIECE_ROWS, _normalise_columns

    rng = np.random.default_rng(3)
    rows = 2 * _NORMALISE_PIECE_ROWS + 123
    rhs = rng.standard_normal((rows, 5))
    spd = rng.standard_normal((5, 5))
    system = NormalEquations(spd @ spd.T + 5 * np.eye(5))
    assert rows > 2 * _solvers._SOLVE_PIECE_ROWS
    results = []
    for threads in (1, 2):  # the pool's size (serial for 1)
        monkeypatch.setattr(threads_module, "default_threads", lambda threads=threads: threads)
        with thread_limits(blas_threads=1):
            solved = system.solve(rhs)
            factor, norms = _normalise_columns(solved.copy())
        results.append((solved, factor, norms))
    np.testing.assert_allclose(results[0][0], rhs @ system.inverse, rtol=1e-13, atol=1e-13)
    whole = np.sqrt(np.einsum("ir,ir->r", results[0][0], results[0][0]))
    np.testing.assert_allclose(results[0][2], whole, rtol=1e-13)
    np.testing.assert_allclose(results[0][1], results[0][0] / whole, rtol=1e-13, atol=1e-16)
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a, b)
