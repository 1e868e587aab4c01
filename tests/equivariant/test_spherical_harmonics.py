"""Spherical harmonics: against e3nn, and equivariance / normalisation with our own Wigner D (no peer)."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.equivariant import Irreps, random_angles, rotation_matrix, wigner_D
from multilinear.equivariant.spherical_harmonics import spherical_harmonics
from tests.equivariant.e3nn_peer import e3nn_o3, torch_float64


@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn(normalize, normalization):
    o3 = e3nn_o3()
    import torch

    vectors = np.random.default_rng(0).standard_normal((2, 20, 3))
    cases = [3, [0, 2, 1], "1x0e+1x1o+1x2e+1x3o+1x4e+1x5o+1x6e", "2x1o+1x0e"]
    with torch_float64():
        for ls in cases:
            theirs = o3.spherical_harmonics(
                ls, torch.from_numpy(vectors), normalize, normalization=normalization
            )
            ours = spherical_harmonics(ls, vectors, normalize, normalization)
            assert ours.shape == tuple(theirs.shape)
            np.testing.assert_allclose(
                ours, theirs.numpy(), rtol=0, atol=1e-10 * max(1.0, np.abs(ours).max())
            )


def test_equivariant_and_component_normalised():
    vectors = np.random.default_rng(1).standard_normal((30, 3))
    irreps = Irreps.spherical_harmonics(5)
    values = spherical_harmonics(irreps, vectors, True, "component")
    for slice_, (_, ir) in zip(irreps.slices(), irreps):
        np.testing.assert_allclose(np.sum(values[:, slice_] ** 2, axis=1), ir.dim, rtol=1e-12)
    for alpha, beta, gamma in zip(*random_angles(3, rng=2)):
        rotated = spherical_harmonics(
            irreps, vectors @ rotation_matrix(alpha, beta, gamma).T, True, "component"
        )
        np.testing.assert_allclose(rotated, values @ irreps.D_from_angles(alpha, beta, gamma).T, atol=1e-12)
    # parity: Y^l(-r) = (-1)^l Y^l(r)
    flipped = spherical_harmonics(irreps, -vectors, True, "component")
    np.testing.assert_allclose(flipped, values @ irreps.D_from_angles(0.0, 0.0, 0.0, k=1).T, atol=1e-12)
    assert wigner_D(0, 0.0, 0.0, 0.0).shape == (1, 1)


def test_zero_vector_and_homogeneity():
    values = spherical_harmonics([0, 1, 2], np.zeros((1, 3)), True, "component")
    np.testing.assert_array_equal(values, [[1.0] + [0.0] * 8])
    r = np.array([[0.3, -1.2, 0.7]])
    np.testing.assert_allclose(
        spherical_harmonics(3, 2.0 * r, False, "component"),
        8.0 * spherical_harmonics(3, r, False, "component"),
    )


def test_bad_input():
    with pytest.raises(ValueError, match="parity"):
        spherical_harmonics("1x1e", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        spherical_harmonics(2, np.ones((2, 4)))
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(2, np.ones((2, 3)), True, "unit")
    with pytest.raises(TypeError, match="real numbers"):
        spherical_harmonics(2, np.ones((2, 3), dtype=complex))
    with pytest.raises(ValueError, match="degrees"):
        spherical_harmonics([], np.ones((2, 3)))
