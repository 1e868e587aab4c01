"""Helpers that build e3nn's objects (the peer) for comparisons; each test skips when e3nn is absent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest


def e3nn_o3():
    """e3nn's ``o3`` module, or skip the calling test."""
    pytest.importorskip("torch")
    return pytest.importorskip("e3nn.o3")


@contextlib.contextmanager
def torch_float64() -> Iterator[None]:
    """Run with torch's default dtype float64 (e3nn builds its generators in the default dtype)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def e3nn_forward(kwargs: dict, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, int]:
    """``(z, weight_numel)`` of ``e3nn.o3.TensorProduct(**kwargs)(x, y, w)`` in float64."""
    import torch

    o3 = e3nn_o3()
    with torch_float64():
        tp = o3.TensorProduct(**kwargs)
        z = tp(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)).detach().numpy()
    return z, int(tp.weight_numel)


def random_inputs(problem, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 ``x (batch, dim1)``, ``y (batch, dim2)`` and weights (per-sample or shared) for ``problem``."""
    x = rng.standard_normal((batch, problem.irreps_in1.dim))
    y = rng.standard_normal((batch, problem.irreps_in2.dim))
    w_shape = (problem.weight_numel,) if problem.shared_weights else (batch, problem.weight_numel)
    w = rng.standard_normal(w_shape)
    return x, y, w
