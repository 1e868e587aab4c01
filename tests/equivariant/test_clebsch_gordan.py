"""Real Clebsch-Gordan coefficients: every triple l <= 5 against e3nn, plus properties that need no peer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multilinear.equivariant import wigner_3j, wigner_D
from multilinear.equivariant.clebsch_gordan import (
    complex_clebsch_gordan,
    nonzero_entries,
    real_to_complex_basis,
)
from tests.equivariant.e3nn_peer import e3nn_o3
from tests.tolerances import tol

LMAX = 5
TRIPLES = [
    (l1, l2, l3)
    for l1, l2, l3 in itertools.product(range(LMAX + 1), repeat=3)
    if abs(l1 - l2) <= l3 <= l1 + l2
]


def test_every_triple_up_to_l5_matches_e3nn():
    o3 = e3nn_o3()
    import torch

    assert len(TRIPLES) == 111  # all triangle-rule triples with every l <= 5
    worst = 0.0
    for l1, l2, l3 in TRIPLES:
        theirs = o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
        ours = wigner_3j(l1, l2, l3)
        assert ours.shape == theirs.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    assert worst <= tol("cg", "float64"), f"max |ours - e3nn| = {worst:.2e}"


@pytest.mark.parametrize("l1, l2, l3", [(1, 1, 2), (2, 3, 4), (3, 3, 0), (5, 4, 3)])
def test_invariant_under_rotations(l1, l2, l3):
    """C[a,b,c] = D1[a,i] D2[b,j] D3[c,k] C[i,j,k] for random rotations (our own D, no peer)."""
    cg = wigner_3j(l1, l2, l3)
    rng = np.random.default_rng(7)
    for alpha, beta, gamma in rng.uniform(0, 2 * np.pi, size=(3, 3)):
        d1, d2, d3 = (wigner_D(degree, alpha, beta, gamma) for degree in (l1, l2, l3))
        rotated = np.einsum("ai,bj,ck,ijk->abc", d1, d2, d3, cg)
        np.testing.assert_allclose(rotated, cg, atol=1e-12, rtol=0)


def test_normalised_cached_and_read_only():
    for triple in TRIPLES[:30]:
        assert np.linalg.norm(wigner_3j(*triple)) == pytest.approx(1.0, abs=1e-14)
    assert wigner_3j(2, 2, 2) is wigner_3j(2, 2, 2)
    with pytest.raises(ValueError):
        wigner_3j(2, 2, 2)[0, 0, 0] = 1.0


def test_known_values():
    # C(0, l, l) = identity / sqrt(2l + 1); C(1, 1, 0) = identity / sqrt(3)
    np.testing.assert_allclose(wigner_3j(0, 2, 2)[0], np.eye(5) / np.sqrt(5), atol=1e-15)
    np.testing.assert_allclose(wigner_3j(1, 1, 0)[:, :, 0], np.eye(3) / np.sqrt(3), atol=1e-15)
    # C(1, 1, 1) is the Levi-Civita symbol / sqrt(6) up to the basis order (y, z, x) and sign
    c111 = wigner_3j(1, 1, 1)
    assert np.allclose(np.abs(c111[np.abs(c111) > 1e-12]), 1 / np.sqrt(6))
    np.testing.assert_allclose(c111, -np.swapaxes(c111, 0, 1), atol=1e-15)


def test_complex_cg_textbook_values():
    # <1 1, 1 -1 | 0 0> = 1/sqrt(3); <1 0, 1 0 | 2 0> = sqrt(2/3); <1 1, 1 0 | 1 1> = 1/sqrt(2)
    assert complex_clebsch_gordan(1, 1, 0, 1, -1, 0) == pytest.approx(1 / np.sqrt(3), abs=1e-15)
    assert complex_clebsch_gordan(1, 1, 2, 0, 0, 0) == pytest.approx(np.sqrt(2 / 3), abs=1e-15)
    assert complex_clebsch_gordan(1, 1, 1, 1, 0, 1) == pytest.approx(1 / np.sqrt(2), abs=1e-15)
    assert complex_clebsch_gordan(1, 1, 1, 0, 0, 0) == 0.0
    assert complex_clebsch_gordan(1, 1, 2, 1, 1, 1) == 0.0  # m3 != m1 + m2


def test_basis_change_is_unitary():
    for degree in range(6):
        q = real_to_complex_basis(degree)
        np.testing.assert_allclose(q.conj().T @ q, np.eye(2 * degree + 1), atol=1e-15)


def test_nonzero_entries():
    entries = nonzero_entries(1, 1, 2)
    dense = np.zeros((3, 3, 5))
    for i, j, k, value in entries:
        dense[i, j, k] = value
    np.testing.assert_array_equal(dense, wigner_3j(1, 1, 2))
    assert all(abs(value) > 1e-12 for *_, value in entries)


@pytest.mark.parametrize(
    "args, error", [((1, 1, 3), ValueError), ((-1, 1, 1), ValueError), ((1.0, 1, 1), TypeError)]
)
def test_bad_degrees(args, error):
    with pytest.raises(error, match=r"l1|triangle"):
        wigner_3j(*args)
