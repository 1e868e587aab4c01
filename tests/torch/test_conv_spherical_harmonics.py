"""Torch spherical harmonics (``multilinear.torch.spherical_harmonics``) against e3nn's, with derivatives."""

from __future__ import annotations

import pytest
import torch

from multilinear.torch.spherical_harmonics import SphericalHarmonics, spherical_harmonics
from tests.tolerances import assert_close_rel

o3 = pytest.importorskip("e3nn.o3")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
def test_values_first_and_second_derivatives_match_e3nn(dtype, normalization):
    gen = torch.Generator().manual_seed(0)
    vectors = torch.randn(40, 3, generator=gen, dtype=dtype) * 2.0
    ls = [0, 1, 2, 3, 4]
    ours = SphericalHarmonics(ls, normalization=normalization, dtype=dtype)
    weights = torch.randn(ours.dim, generator=gen, dtype=dtype)

    def energy_and_forces(sh):
        r = vectors.clone().requires_grad_()
        energy = (torch.sin(sh(r)) * weights).sum()
        (forces,) = torch.autograd.grad(energy, r, create_graph=True)
        (curvature,) = torch.autograd.grad((forces**2).sum(), r)
        return sh(vectors), forces.detach(), curvature

    got = energy_and_forces(ours)
    expected = energy_and_forces(lambda v: o3.spherical_harmonics(ls, v, True, normalization=normalization))
    name = str(dtype).replace("torch.", "")
    for a, b, op in zip(got, expected, ("tp_forward", "tp_backward", "tp_double_backward")):
        assert_close_rel(a.detach().numpy(), b.detach().numpy(), op, name)


def test_functional_form_and_irreps_argument():
    vectors = torch.randn(5, 2, 3, dtype=torch.float64)
    got = spherical_harmonics("0e+1o+2e", vectors)
    expected = o3.spherical_harmonics("0e+1o+2e", vectors, True, normalization="component")
    assert got.shape == (5, 2, 9)
    assert_close_rel(got.numpy(), expected.numpy(), "tp_forward", "float64")


@pytest.mark.parametrize(
    ("vectors", "error", "match"),
    [
        (torch.zeros(4, 2, dtype=torch.float32), ValueError, r"\(\.\.\., 3\)"),
        (torch.zeros(4, 3, dtype=torch.float64), TypeError, "float32"),
        ([[0.0, 0.0, 1.0]], TypeError, "torch.Tensor"),
    ],
    ids=["shape", "dtype", "list"],
)
def test_bad_input(vectors, error, match):
    with pytest.raises(error, match=match):
        SphericalHarmonics([0, 1])(vectors)


def test_bad_arguments():
    with pytest.raises(ValueError, match="normalization"):
        SphericalHarmonics([1], normalization="unit")
    with pytest.raises(ValueError, match="parity"):
        SphericalHarmonics("1e")
