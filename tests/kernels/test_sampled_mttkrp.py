"""The sampled MTTKRP against the dense one, and the same bits at any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear as ml
from multilinear._core.threads import thread_limits
from multilinear.decompose._sketched import fiber_layout
from multilinear.kernels.sampled_mttkrp import sampled_mttkrp
from tests.tolerances import assert_close_rel

# every output of these tests is small: 0 bytes sends them down the bucketed path of long modes
PATHS = [pytest.param(None, id="private-buffers"), pytest.param(0, id="buckets")]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    import multilinear.kernels.sampled_mttkrp as kernel

    if request.param is not None:
        monkeypatch.setattr(kernel, "_SMALL_OUT_BYTES", request.param)


@pytest.mark.parametrize("threads", [1, 2])
def test_agrees_with_the_dense_sampled_mttkrp(threads, path):
    rng = np.random.default_rng(0)
    dense = rng.random((6, 5, 7)) * (rng.random((6, 5, 7)) < 0.5)
    X = ml.SparseTensor.from_dense(dense)
    mode = 1
    layout = fiber_layout(X, mode)
    # every fiber of the other modes (0, 2) once, some empty (-1), with weights and design rows
    keys = np.arange(6 * 7)
    where = np.searchsorted(layout.fiber_keys, keys)
    found = (where < layout.fiber_keys.size) & (
        layout.fiber_keys[np.minimum(where, layout.fiber_keys.size - 1)] == keys
    )
    sample_fiber = np.where(found, where, -1).astype(np.int64)
    weights = rng.uniform(0.5, 2.0, keys.size)
    design = rng.standard_normal((keys.size, 4))
    out = np.full((5, 4), np.nan)  # overwritten, whatever it held
    with thread_limits(numba_threads=threads):
        sampled_mttkrp(
            layout.fiber_ptr, layout.fiber_rows, layout.fiber_values, sample_fiber, weights, design, out
        )
    unfolded = np.moveaxis(dense, 1, 0).reshape(5, -1)  # columns in row-major order of modes (0, 2)
    assert_close_rel(out, (unfolded * weights) @ design, "mttkrp", "float64")


def test_same_bits_at_any_thread_count(path):
    # repeated fibers and many samples per output row: each row sums its terms in sample order
    X = ml.tensor.random_sparse((300, 40, 30), 20_000, distribution="powerlaw", exponent=1.3, rng=2)
    layout = fiber_layout(X, 0)
    rng = np.random.default_rng(1)
    sample_fiber = rng.integers(-1, layout.fiber_keys.size, 5000)
    weights = rng.uniform(0.1, 3.0, 5000)
    design = rng.standard_normal((5000, 7))
    outs = []
    for threads in (1, 2):
        out = np.full((300, 7), np.nan)
        with thread_limits(numba_threads=threads):
            sampled_mttkrp(
                layout.fiber_ptr, layout.fiber_rows, layout.fiber_values, sample_fiber, weights, design, out
            )
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.count_nonzero(outs[0]) > 0
