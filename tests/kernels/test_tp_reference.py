"""The einsum oracle itself against e3nn's ``o3.TensorProduct`` (forward, backward, double backward)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference.tensor_product import (
    reference_backward,
    reference_double_backward,
    reference_forward,
    spec_from_e3nn,
)

torch = pytest.importorskip("torch")
o3 = pytest.importorskip("e3nn.o3")

IRREPS_IN1 = "2x0e+2x1o+2x2e"
IRREPS_IN2 = "1x0e+1x1o+2x2e"
IRREPS_OUT = "2x0e+2x1o+2x2e+2x3o"
# Every mode, weighted and weightless paths, several paths into one output segment.
MIXED_INSTRUCTIONS = [
    (0, 0, 0, "uvw", True),
    (1, 1, 0, "uvu", True),
    (2, 2, 2, "uvu", False),
    (1, 0, 1, "uvw", True),
    (2, 1, 3, "uvu", True),
    (1, 2, 1, "uvv", True),
    (2, 2, 2, "uuu", True),
    (1, 2, 3, "uvv", False),
    (2, 2, 2, "uuu", False),
]


def _e3nn_mixed(shared_weights: bool):
    """e3nn builds its CG constants in torch's default dtype: build under float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return o3.TensorProduct(
            IRREPS_IN1,
            IRREPS_IN2,
            IRREPS_OUT,
            MIXED_INSTRUCTIONS,
            shared_weights=shared_weights,
            internal_weights=False,
        )
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("shared_weights", [False, True], ids=["per_sample", "shared"])
def test_reference_matches_e3nn_to_second_order(shared_weights):
    tp = _e3nn_mixed(shared_weights)
    spec = spec_from_e3nn(tp)
    rng = np.random.default_rng(3)
    batch = 5
    x = rng.standard_normal((batch, spec.dim_in1))
    y = rng.standard_normal((batch, spec.dim_in2))
    w = rng.standard_normal((spec.weight_numel,) if shared_weights else (batch, spec.weight_numel))
    g = rng.standard_normal((batch, spec.dim_out))
    gg = [rng.standard_normal(a.shape) for a in (x, y, w)]

    tx, ty, tw, tg = (torch.tensor(a, requires_grad=True) for a in (x, y, w, g))
    z = tp(tx, ty, tw)
    grads = torch.autograd.grad(z, (tx, ty, tw), tg, create_graph=True)
    energy = sum((gr * torch.tensor(h)).sum() for gr, h in zip(grads, gg))
    second = torch.autograd.grad(energy, (tx, ty, tw, tg))

    np.testing.assert_allclose(reference_forward(spec, x, y, w), z.detach().numpy(), rtol=0, atol=1e-12)
    for ours, theirs in zip(reference_backward(spec, x, y, w, g), grads):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-12)
    for ours, theirs in zip(reference_double_backward(spec, x, y, w, g, *gg), second):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12)


def test_double_backward_is_the_derivative_of_the_backward_pairing():
    """Independent of e3nn: L is linear in each of x, y, w, g, so a central difference is exact."""
    tp = _e3nn_mixed(False)
    spec = spec_from_e3nn(tp)
    rng = np.random.default_rng(4)
    batch = 3
    x, y, w, g = (
        rng.standard_normal((batch, n)) for n in (spec.dim_in1, spec.dim_in2, spec.weight_numel, spec.dim_out)
    )
    gg = [rng.standard_normal(a.shape) for a in (x, y, w)]

    def pairing(x, y, w, g):
        return sum(np.sum(a * b) for a, b in zip(reference_backward(spec, x, y, w, g), gg))

    derivatives = reference_double_backward(spec, x, y, w, g, *gg)
    point = [x, y, w, g]
    for slot, derivative in enumerate(derivatives):
        direction = rng.standard_normal(point[slot].shape)
        plus, minus = list(point), list(point)
        plus[slot] = point[slot] + direction
        minus[slot] = point[slot] - direction
        finite_difference = (pairing(*plus) - pairing(*minus)) / 2
        assert finite_difference == pytest.approx(np.sum(derivative * direction), rel=1e-10, abs=1e-10)
