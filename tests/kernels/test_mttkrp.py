"""The numba MTTKRP and inner-product kernels against the numpy reference (unfolding x Khatri-Rao)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multilinear import SparseTensor
from multilinear.decompose import mttkrp
from multilinear.decompose._layout import mode_layout, stack_factors, stacked_offsets
from tests.decompose.sparse_cases import powerlaw_sparse
from tests.reference.mttkrp import kruskal_to_dense, reference_mttkrp
from tests.tolerances import assert_close_rel

F64 = np.dtype(np.float64)
SHAPES = {"3-mode": (9, 7, 6), "4-mode": (6, 5, 4, 7), "5-mode": (4, 3, 5, 3, 4)}


@pytest.mark.parametrize("rank", [1, 3, 17])
@pytest.mark.parametrize("name", list(SHAPES))
def test_mttkrp_matches_reference_every_mode(name: str, rank: int) -> None:
    X, dense = powerlaw_sparse(SHAPES[name], density=0.3, seed=rank)
    rng = np.random.default_rng(100 + rank)
    factors = [rng.standard_normal((size, rank)) for size in X.shape]
    for mode in range(X.ndim):
        expected = reference_mttkrp(dense, factors, mode)
        assert_close_rel(mttkrp(X, factors, mode), expected, "mttkrp", F64)
        assert_close_rel(mttkrp(dense, factors, mode), expected, "mttkrp", F64)


def test_cases_have_heavy_and_empty_slices() -> None:
    X, _ = powerlaw_sparse(SHAPES["3-mode"], density=0.3, seed=1)
    for mode in range(X.ndim):
        counts = np.bincount(X.indices[:, mode], minlength=X.shape[mode])
        assert counts[1] == 0, "index 1 must be an empty slice"
        assert counts[0] >= 3 * np.median(counts), "index 0 must be a heavy slice"


@pytest.mark.parametrize("n_chunks", [1, 2, 3, 7, 64, 1000])
@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "serial"])
def test_chunking_splits_heavy_rows_without_races(n_chunks: int, parallel: bool) -> None:
    """Chunk boundaries inside a heavy slice: partial sums are added once, whatever the chunk count."""
    from multilinear.kernels import mttkrp as kernels

    kernel = kernels.mttkrp_sorted if parallel else kernels.mttkrp_sorted_serial

    X, dense = powerlaw_sparse((12, 5, 4), density=0.4, seed=7)
    rng = np.random.default_rng(3)
    factors = [rng.standard_normal((size, 5)) for size in X.shape]
    stacked = stack_factors(factors)
    for mode in range(X.ndim):
        layout = mode_layout(X, mode)
        out = np.full((X.shape[mode], 5), np.nan)  # every row must be written, empty ones with zeros
        for use_fibers in (False, True):
            out[:] = np.nan
            kernel(
                layout.row_ptr, layout.sorted_rows, layout.sorted_values, stacked, out, n_chunks, use_fibers
            )
            assert_close_rel(out, reference_mttkrp(dense, factors, mode), "mttkrp", F64)


@pytest.mark.parametrize("fiber_sorted", [True, False], ids=["fiber-sorted", "mode-sorted-only"])
def test_layout_is_sorted_cached_and_complete(fiber_sorted: bool) -> None:
    if fiber_sorted:  # small dense-ish: I_mode * I_fiber < nnz in every mode
        X, _ = powerlaw_sparse((6, 5, 4, 7), density=0.3, seed=2)
    else:  # sparse: I_mode * I_fiber >= nnz in every mode
        rng = np.random.default_rng(2)
        cells = rng.choice(50 * 40 * 30, size=600, replace=False)
        X = SparseTensor(
            np.stack(np.unravel_index(cells, (50, 40, 30)), axis=1), rng.random(600), (50, 40, 30)
        )
    offsets = stacked_offsets(X.shape)
    assert all(mode_layout(X, m).fiber_sorted == fiber_sorted for m in range(X.ndim))
    for mode in range(X.ndim):
        layout = mode_layout(X, mode)
        assert mode_layout(X, mode) is layout
        assert layout.sorted_rows.dtype == np.int32
        counts = np.bincount(X.indices[:, mode], minlength=X.shape[mode])
        np.testing.assert_array_equal(np.diff(layout.row_ptr), counts)
        # rebuild the coordinates from the layout: the same set of (coordinates, value)
        rows = np.repeat(np.arange(X.shape[mode]), counts)
        assert sorted(layout.column_modes) == [m for m in range(X.ndim) if m != mode]
        assert X.shape[layout.column_modes[0]] == min(X.shape[m] for m in layout.column_modes)
        coords = np.empty_like(X.indices)
        coords[:, mode] = rows
        for k, m in enumerate(layout.column_modes):
            coords[:, m] = layout.sorted_rows[:, k] - offsets[m]
        assert layout.fiber_sorted == (X.shape[mode] * X.shape[layout.column_modes[0]] < X.nnz)
        if not layout.fiber_sorted:
            continue
        pairs = X.indices[:, mode] * X.shape[layout.column_modes[0]] + X.indices[:, layout.column_modes[0]]
        assert layout.fibers == np.unique(pairs).size
        # within each slice, sorted by the fiber mode (fibers are consecutive)
        fiber_rows = layout.sorted_rows[:, 0].astype(np.int64)
        same_slice = rows[1:] == rows[:-1]
        assert np.all(np.diff(fiber_rows)[same_slice] >= 0)
        rebuilt = SparseTensor(coords, layout.sorted_values, X.shape)
        np.testing.assert_array_equal(rebuilt.to_dense(), X.to_dense())


@pytest.mark.parametrize("name", list(SHAPES))
def test_model_inner_product_matches_dense(name: str) -> None:
    from multilinear.decompose._mttkrp import model_inner_product

    X, dense = powerlaw_sparse(SHAPES[name], density=0.3, seed=4)
    rng = np.random.default_rng(5)
    factors = [rng.standard_normal((size, 4)) for size in X.shape]
    weights = rng.random(4) + 0.5
    expected = float(np.sum(dense * kruskal_to_dense(weights, factors)))
    assert_close_rel(np.array(model_inner_product(X, weights, factors)), np.array(expected), "mttkrp", F64)
    assert_close_rel(
        np.array(model_inner_product(dense, weights, factors)), np.array(expected), "mttkrp", F64
    )


def test_front_end_uses_parallel_kernels_on_larger_tensors() -> None:
    from multilinear.decompose._layout import parallel_chunks
    from multilinear.decompose._mttkrp import model_inner_product

    rng = np.random.default_rng(10)
    shape = (50, 40, 30)
    dense = np.where(rng.random(shape) < 0.8, rng.standard_normal(shape), 0.0)
    dense[0, :, :] = 1.0  # a heavy slice
    X = SparseTensor.from_dense(dense)
    assert parallel_chunks(X.nnz) > 1, "this case must exercise the parallel kernels"
    factors = [rng.standard_normal((size, 6)) for size in X.shape]
    for mode in range(X.ndim):
        assert_close_rel(mttkrp(X, factors, mode), reference_mttkrp(dense, factors, mode), "mttkrp", F64)
    weights = rng.random(6)
    expected = float(np.sum(dense * kruskal_to_dense(weights, factors)))
    assert_close_rel(np.array(model_inner_product(X, weights, factors)), np.array(expected), "mttkrp", F64)


def test_mttkrp_matches_pyttb() -> None:
    ttb = pytest.importorskip("pyttb")
    X, _ = powerlaw_sparse(SHAPES["4-mode"], density=0.3, seed=6)
    rng = np.random.default_rng(8)
    factors = [rng.standard_normal((size, 3)) for size in X.shape]
    peer = ttb.sptensor(X.indices, X.values[:, None], X.shape)
    for mode in range(X.ndim):
        assert_close_rel(mttkrp(X, factors, mode), peer.mttkrp(factors, mode), "mttkrp", F64)


def test_mttkrp_argument_errors() -> None:
    X, _ = powerlaw_sparse(SHAPES["3-mode"], density=0.3, seed=1)
    factors = [np.ones((size, 2)) for size in X.shape]
    with pytest.raises(ValueError, match="mode must be an integer"):
        mttkrp(X, factors, 3)
    with pytest.raises(ValueError, match="expected 3 factor matrices"):
        mttkrp(X, factors[:2], 0)
    with pytest.raises(ValueError, match="factor 1 must have shape"):
        mttkrp(X, [factors[0], np.ones((2, 2)), factors[2]], 0)
    with pytest.raises(ValueError, match="ranks must agree"):
        mttkrp(X, [factors[0], factors[1], np.ones((X.shape[2], 3))], 0)


@settings(max_examples=15)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    rank=st.integers(1, 5),
    density=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_mttkrp_property_any_shape(shape: list[int], rank: int, density: float, seed: int) -> None:
    """Any order 2-5, sizes down to 1, any density (including a single nonzero)."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random(shape) < density, rng.standard_normal(shape), 0.0)
    dense.flat[rng.integers(dense.size)] = 1.0  # at least one nonzero
    X = SparseTensor.from_dense(dense)
    factors = [rng.standard_normal((size, rank)) for size in shape]
    for mode in range(len(shape)):
        assert_close_rel(mttkrp(X, factors, mode), reference_mttkrp(dense, factors, mode), "mttkrp", F64)


def test_mttkrp_of_a_tensor_without_nonzeros_is_zero() -> None:
    X = SparseTensor(np.zeros((0, 3), dtype=np.int64), np.zeros(0), (4, 3, 2))
    factors = [np.ones((size, 2)) for size in X.shape]
    for mode in range(3):
        np.testing.assert_array_equal(mttkrp(X, factors, mode), np.zeros((X.shape[mode], 2)))


@pytest.mark.parametrize("shape", [(9, 8), *SHAPES.values()], ids=["2-mode", *SHAPES])
@pytest.mark.parametrize("use_fibers", [False, True], ids=["flat", "fibers"])
def test_both_kernel_paths_every_order(shape: tuple[int, ...], use_fibers: bool) -> None:
    """The flat and the fiber-factored accumulation agree with the reference for 1 to 4 other modes."""
    from multilinear.kernels.mttkrp import mttkrp_sorted_serial

    X, dense = powerlaw_sparse(shape, density=0.5, seed=len(shape))
    rng = np.random.default_rng(11)
    factors = [rng.standard_normal((size, 4)) for size in X.shape]
    stacked = stack_factors(factors)
    for mode in range(X.ndim):
        layout = mode_layout(X, mode)
        out = np.full((X.shape[mode], 4), np.nan)
        mttkrp_sorted_serial(
            layout.row_ptr, layout.sorted_rows, layout.sorted_values, stacked, out, 3, use_fibers
        )
        assert_close_rel(out, reference_mttkrp(dense, factors, mode), "mttkrp", F64)
