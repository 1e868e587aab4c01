"""Generated tensor-product kernels against the einsum oracle in ``tests/reference/tensor_product.py``.

Compile time is what these tests cost, so each (spec, dtype, weight sharing) case compiles once and the
tests of one case share it: a mixed stand-in spec read off e3nn (every mode, weightless paths, a "uvu"
with several y channels), per-sample in float64 and shared in float32; two zoo problems from
``TPProblem.kernel_spec`` (small-mixed in float64, MACE-large per-sample in float32).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from multilinear.kernels.tensor_product import TPKernels, get_tp_kernels, tp_cache_dir
from multilinear.kernels.tp_spec import TPKernelSpec
from tests.reference.tensor_product import (
    reference_backward,
    reference_double_backward,
    reference_forward,
    spec_from_e3nn,
)
from tests.tolerances import assert_close_rel

torch = pytest.importorskip("torch")
pytest.importorskip("e3nn")

from tests.kernels.test_tp_reference import _e3nn_mixed  # noqa: E402  (needs e3nn)

BATCHES = (0, 1, 7, 33)


def _mixed_spec(shared: bool, dtype: str) -> TPKernelSpec:
    return replace(spec_from_e3nn(_e3nn_mixed(shared)), dtype=dtype)


def _zoo_spec(name: str, dtype: str) -> TPKernelSpec:
    from multilinear.equivariant import zoo

    return zoo.get(name).kernel_spec(dtype)


CASES = {
    "mixed-per_sample-float64": lambda: _mixed_spec(False, "float64"),
    "mixed-shared-float32": lambda: _mixed_spec(True, "float32"),
    "zoo-small-mixed-float64": lambda: _zoo_spec("small-mixed", "float64"),
    "zoo-mace-large-float32": lambda: _zoo_spec("mace-large", "float32"),
}


def _inputs(spec: TPKernelSpec, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    weight_shape = (spec.weight_numel,) if spec.shared_weights else (batch, spec.weight_numel)
    shapes = [(batch, spec.dim_in1), (batch, spec.dim_in2), weight_shape, (batch, spec.dim_out)]
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _garbage_like(array: np.ndarray) -> np.ndarray:
    """Outputs start as NaN so a kernel that forgets to overwrite an entry fails."""
    return np.full_like(array, np.nan)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request) -> tuple[TPKernelSpec, TPKernels]:
    spec = CASES[request.param]()
    return spec, get_tp_kernels(spec)


def test_forward_matches_reference(case):
    spec, kernels = case
    for batch in BATCHES:
        x, y, w, _ = _inputs(spec, batch, seed=batch)
        z = np.full((batch, spec.dim_out), np.nan, dtype=spec.dtype)
        kernels.forward(x, y, w, z)
        assert_close_rel(z, reference_forward(spec, x, y, w), "tp_forward", spec.dtype)


def test_backward_matches_reference(case):
    spec, kernels = case
    for batch in BATCHES:
        x, y, w, g = _inputs(spec, batch, seed=100 + batch)
        grads = [_garbage_like(a) for a in (x, y, w)]
        kernels.backward(x, y, w, g, *grads)
        for ours, expected in zip(grads, reference_backward(spec, x, y, w, g)):
            assert_close_rel(ours, expected, "tp_backward", spec.dtype)


@pytest.mark.parametrize("method", ["double_backward", "double_backward_composed"])
@pytest.mark.parametrize("present", ["xyw", "x", "y", "w", "", "yw"])
def test_double_backward_matches_reference(case, present, method):
    spec, kernels = case
    batch = 7
    x, y, w, g = _inputs(spec, batch, seed=200)
    gg_all = _inputs(spec, batch, seed=201)
    gg = [gg_all[n] if name in present else None for n, name in enumerate("xyw")]
    outs = [_garbage_like(a) for a in (x, y, w, g)]
    getattr(kernels, method)(x, y, w, g, *gg, *outs)
    for ours, expected in zip(outs, reference_double_backward(spec, x, y, w, g, *gg)):
        assert_close_rel(ours, expected, "tp_double_backward", spec.dtype)


def _assert_every_op_matches_reference(spec: TPKernelSpec, kernels: TPKernels, batch: int, seed: int) -> None:
    """Forward, backward and double backward (all three ``gg``) of one batch against the oracle."""
    x, y, w, g = _inputs(spec, batch, seed=seed)
    gg = _inputs(spec, batch, seed=seed + 1)[:3]
    z = _garbage_like(g)
    kernels.forward(x, y, w, z)
    assert_close_rel(z, reference_forward(spec, x, y, w), "tp_forward", spec.dtype)
    grads = [_garbage_like(a) for a in (x, y, w)]
    kernels.backward(x, y, w, g, *grads)
    for ours, expected in zip(grads, reference_backward(spec, x, y, w, g)):
        assert_close_rel(ours, expected, "tp_backward", spec.dtype)
    outs = [_garbage_like(a) for a in (x, y, w, g)]
    kernels.double_backward(x, y, w, g, *gg, *outs)
    for ours, expected in zip(outs, reference_double_backward(spec, x, y, w, g, *gg)):
        assert_close_rel(ours, expected, "tp_double_backward", spec.dtype)


def test_streamed_outputs_match_reference(case, monkeypatch):
    """Outputs written with non-temporal stores (forced for a small batch) are the same values."""
    import multilinear.kernels.tensor_product as tensor_product

    monkeypatch.setattr(tensor_product, "STREAM_MIN_BYTES", 0)
    spec, kernels = case
    assert tensor_product.streams(np.empty((33, spec.dim_out), dtype=spec.dtype))
    _assert_every_op_matches_reference(spec, kernels, 33, seed=300)


def test_kernels_are_memoised_per_spec_key(case):
    spec, kernels = case
    assert get_tp_kernels(replace(spec)) is kernels
    assert kernels.spec == spec


def test_kernel_checks_dtype_shape_and_contiguity():
    spec, kernels = CASES["mixed-per_sample-float64"](), None
    kernels = get_tp_kernels(spec)
    x, y, w, g = _inputs(spec, 4, seed=0)
    z = np.empty_like(g)
    with pytest.raises(TypeError, match="dtype float64"):
        kernels.forward(x.astype(np.float32), y, w, z)
    with pytest.raises(ValueError, match=r"y must have shape \(4, "):
        kernels.forward(x, y[:3], w, z)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.forward(x, np.asfortranarray(y), w, z)
    with pytest.raises(ValueError, match="out must have shape"):
        kernels.forward(x, y, w, z[:, :-1])
    with pytest.raises(TypeError, match="spec must be a TPKernelSpec"):
        get_tp_kernels("mace-large")


def test_generated_source_is_written_to_the_cache_dir():
    spec = CASES["mixed-per_sample-float64"]()
    kernels = get_tp_kernels(spec)
    path = tp_cache_dir() / f"tp_{spec.key()}.py"
    assert path.is_file()
    assert kernels.module.__file__ == str(path)
    assert "def forward(" in path.read_text() and "def backward(" in path.read_text()


def test_second_process_loads_from_disk_without_compiling():
    """After this process compiled a spec, a fresh process with the same cache dirs hits numba's cache."""
    spec = CASES["mixed-per_sample-float64"]()
    kernels = get_tp_kernels(spec)
    x, y, w, g = _inputs(spec, 3, seed=0)
    kernels.forward(x, y, w, np.empty_like(g))
    kernels.backward(x, y, w, g, np.empty_like(x), np.empty_like(y), np.empty_like(w))
    script = textwrap.dedent(
        """
        import sys, time
        from dataclasses import replace
        import numpy as np
        from tests.reference.tensor_product import spec_from_e3nn
        from tests.kernels.test_tp_reference import _e3nn_mixed
        from multilinear.kernels.tensor_product import get_tp_kernels
        spec = replace(spec_from_e3nn(_e3nn_mixed(False)), dtype="float64")
        start = time.perf_counter()
        k = get_tp_kernels(spec)
        x = np.ones((3, spec.dim_in1)); y = np.ones((3, spec.dim_in2)); w = np.ones((3, spec.weight_numel))
        g = np.ones((3, spec.dim_out))
        k.forward(x, y, w, np.empty_like(g))
        k.backward(x, y, w, g, np.empty_like(x), np.empty_like(y), np.empty_like(w))
        elapsed = time.perf_counter() - start
        hits = sum(sum(f.stats.cache_hits.values()) for f in k.module.KERNELS)
        misses = sum(sum(f.stats.cache_misses.values()) for f in k.module.KERNELS)
        print(hits, misses, elapsed)
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    hits, misses, elapsed = result.stdout.split()
    assert int(hits) >= 2 and int(misses) == 0, result.stdout
    assert float(elapsed) < 30.0  # loading is ~0.1 s; compiling this spec takes far longer than that


def test_row_chunks_cover_the_batch_in_order():
    from multilinear.kernels.tensor_product import row_chunks

    assert row_chunks(0, 4) == []
    assert row_chunks(10, 1) == [(0, 10)]
    for batch in (1, 31, 64, 1000, 12345):
        chunks = row_chunks(batch, 3)
        assert chunks[0][0] == 0 and chunks[-1][1] == batch
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
        assert all(stop > start for start, stop in chunks)


@pytest.mark.parametrize("name", ["mixed-per_sample-float64", "mixed-shared-float32"])
def test_split_over_threads_matches_reference(name, monkeypatch):
    """Many small row chunks on a pool of 3 threads: every op, shared-weight partial sums reduced."""
    import multilinear.kernels.tensor_product as tensor_product

    spec = CASES[name]()
    kernels = get_tp_kernels(spec)
    monkeypatch.setattr(tensor_product, "_MIN_ROWS_PER_CHUNK", 2)
    monkeypatch.setattr(tensor_product.numba, "get_num_threads", lambda: 3)
    assert len(tensor_product.row_chunks(33)) == 12
    _assert_every_op_matches_reference(spec, kernels, 33, seed=7)
