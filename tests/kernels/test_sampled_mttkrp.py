"""The parallel sampled MTTKRP: every part count gives the serial result (to rounding) and the dense one."""

from __future__ import annotations

import numpy as np
import pytest

import multilinear as ml
from multilinear.decompose._sketched import fiber_layout
from multilinear.kernels.sampled_mttkrp import sampled_mttkrp
from tests.tolerances import assert_close_rel


@pytest.mark.parametrize("n_parts", [1, 3, 8])
def test_parts_agree_with_the_dense_sampled_mttkrp(n_parts):
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
    out = np.zeros((5, 4))
    sampled_mttkrp(
        layout.fiber_ptr, layout.fiber_rows, layout.fiber_values, sample_fiber, weights, design, out, n_parts
    )
    unfolded = np.moveaxis(dense, 1, 0).reshape(5, -1)  # columns in row-major order of modes (0, 2)
    assert_close_rel(out, (unfolded * weights) @ design, "mttkrp", "float64")
