"""Wigner D matrices in e3nn's convention: against e3nn, and group properties without a peer."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.equivariant import random_angles, rotation_matrix, wigner_D
from multilinear.equivariant.wigner import so3_generators
from tests.equivariant.e3nn_peer import e3nn_o3, torch_float64


def test_matches_e3nn_wigner_d():
    o3 = e3nn_o3()
    import torch

    alpha, beta, gamma = random_angles(5, rng=0)
    with torch_float64():
        for degree in range(7):
            theirs = o3.wigner_D(degree, *(torch.from_numpy(a) for a in (alpha, beta, gamma))).numpy()
            np.testing.assert_allclose(wigner_D(degree, alpha, beta, gamma), theirs, atol=1e-10, rtol=0)


def test_rotation_matrix_matches_e3nn():
    o3 = e3nn_o3()
    import torch

    angles = random_angles(4, rng=1)
    theirs = o3.angles_to_matrix(*(torch.from_numpy(a) for a in angles)).numpy()
    np.testing.assert_allclose(rotation_matrix(*angles), theirs, atol=1e-14)


def test_degree_one_is_the_rotation_matrix():
    """In e3nn's real basis (Y the polar axis) the l = 1 components are (x, y, z): D^1(R) = R."""
    angles = random_angles(3, rng=2)
    np.testing.assert_allclose(wigner_D(1, *angles), rotation_matrix(*angles), atol=1e-13)


@pytest.mark.parametrize("degree", [0, 1, 2, 4])
def test_homomorphism_and_orthogonality(degree):
    a1, a2 = random_angles(rng=3), random_angles(rng=4)
    d1, d2 = wigner_D(degree, *a1), wigner_D(degree, *a2)
    # D(R1 R2) = D(R1) D(R2): find the angles of R1 R2 from the product of 3x3 matrices via degree 1
    product = rotation_matrix(*a1) @ rotation_matrix(*a2)
    beta = np.arccos(np.clip(product[1, 1], -1, 1))
    # R = Ry(alpha) Rx(beta) Ry(gamma): column 1 is (sin a sin b, cos b, cos a sin b), row 1 is
    # (sin b sin g, cos b, -sin b cos g)
    alpha = np.arctan2(product[0, 1], product[2, 1])
    gamma = np.arctan2(product[1, 0], -product[1, 2])
    np.testing.assert_allclose(rotation_matrix(alpha, beta, gamma), product, atol=1e-12)
    np.testing.assert_allclose(wigner_D(degree, alpha, beta, gamma), d1 @ d2, atol=1e-12)
    np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * degree + 1), atol=1e-12)
    assert np.linalg.det(d1) == pytest.approx(1.0, abs=1e-12)


def test_identity_and_broadcasting():
    np.testing.assert_allclose(wigner_D(3, 0.0, 0.0, 0.0), np.eye(7), atol=1e-15)
    d = wigner_D(2, np.zeros((2, 3)), 0.5, np.zeros(3))
    assert d.shape == (2, 3, 5, 5)


def test_generators_are_real_antisymmetric():
    for degree in range(5):
        generators = so3_generators(degree)
        np.testing.assert_allclose(generators, -np.swapaxes(generators, -1, -2), atol=1e-15)


def test_random_angles_reproducible_and_uniform():
    first, second = random_angles(4000, rng=11), random_angles(4000, rng=11)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    alpha, beta, gamma = first
    assert alpha.min() >= 0 and alpha.max() < 2 * np.pi and gamma.min() >= 0 and gamma.max() < 2 * np.pi
    # Haar measure: cos(beta) uniform on [-1, 1]: mean 0 (std of the mean ~ 0.009), second moment 1/3
    assert abs(np.cos(beta).mean()) < 0.06
    assert abs((np.cos(beta) ** 2).mean() - 1 / 3) < 0.04
    assert random_angles(rng=0)[0].shape == ()


def test_bad_degree():
    with pytest.raises(ValueError, match="degree"):
        wigner_D(-1, 0.0, 0.0, 0.0)
