"""Irrep / Irreps: parsing, strings, shapes and order, against e3nn's ``o3.Irreps`` where installed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from multilinear.equivariant import Irrep, Irreps, MulIrrep
from tests.equivariant.e3nn_peer import e3nn_o3

IRREPS_STRINGS = [
    "128x0e+128x1o+1x2e",
    "0e + 1o",
    "2x1e",
    "",
    "1o+0e+1e+0x2e",
    "1e + 1e + 0e + 1e",
    "3x0o + 2x0e + 5x3e + 1x2o",
    "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e",
    " 10x1o + 10x1e + 48x0e + 48x0o ",
    "1y + 2y + 3y",
    "0x0e",
    "7x11o+1x0e",
]


@pytest.mark.parametrize("text", IRREPS_STRINGS, ids=lambda s: repr(s))
def test_irreps_agree_with_e3nn(text):
    o3 = e3nn_o3()
    ours, theirs = Irreps(text), o3.Irreps(text)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert ours == theirs
    assert ours.dim == theirs.dim and ours.num_irreps == theirs.num_irreps
    assert ours.ls == theirs.ls
    assert ours.slices() == theirs.slices()
    assert ours.simplify() == theirs.simplify() and repr(ours.simplify()) == repr(theirs.simplify())
    assert ours.remove_zero_multiplicities() == theirs.remove_zero_multiplicities()
    assert ours.regroup() == theirs.regroup()
    sorted_ours, sorted_theirs = ours.sort(), theirs.sort()
    assert sorted_ours.irreps == sorted_theirs.irreps
    assert sorted_ours.p == tuple(sorted_theirs.p) and sorted_ours.inv == tuple(sorted_theirs.inv)
    if ours.ls:
        assert ours.lmax == theirs.lmax
    for ir in ("0e", "0o", "1o", "1e", "2e", "3e"):
        assert (ir in ours) == (o3.Irrep(ir) in theirs)
        assert ours.count(ir) == theirs.count(ir)
    # e3nn's objects are accepted as input and compare equal both ways
    assert Irreps(theirs) == ours and theirs == ours


@pytest.mark.parametrize("text", ["0e", "0o", "1o", "1e", "2y", "3y", "7e", " 4o "])
def test_irrep_agrees_with_e3nn(text):
    o3 = e3nn_o3()
    ours, theirs = Irrep(text), o3.Irrep(text)
    assert ours == theirs and repr(ours) == repr(theirs)
    assert (ours.l, ours.p, ours.dim) == (theirs.l, theirs.p, theirs.dim)
    other = Irrep("2e")
    assert [repr(ir) for ir in ours * other] == [repr(ir) for ir in theirs * o3.Irrep("2e")]


def test_irrep_constructors_and_order():
    assert Irrep(1, -1) == Irrep("1o") == Irrep((1, -1)) == Irrep(Irrep("1o")) == "1o"
    assert Irrep("3y") == Irrep(3, -1) and Irrep("2y") == Irrep(2, 1)
    assert sorted([Irrep("1e"), Irrep("0e"), Irrep("1o"), Irrep("0o")]) == ["0o", "0e", "1o", "1e"]
    assert Irrep("0e").is_scalar() and not Irrep("0o").is_scalar()
    assert 3 * Irrep("1e") == Irreps("3x1e")
    assert Irrep("1o") + "2x0e" == Irreps("1x1o+2x0e")
    assert len({Irrep("1o"), Irrep(1, -1)}) == 1


def test_irreps_from_sequences():
    expected = Irreps("2x0e+1x1o+3x2e")
    assert Irreps([(2, "0e"), (1, (1, -1)), (3, Irrep("2e"))]) == expected
    assert Irreps([MulIrrep(2, Irrep("0e")), "1o", (3, "2e")]) == expected
    assert Irreps(Irrep("1o")) == "1x1o"
    assert Irreps() == Irreps("") == Irreps([]) and len(Irreps()) == 0
    assert Irreps(expected) is expected


def test_irreps_tuple_protocol():
    irreps = Irreps("128x0e+128x1o+1x2e")
    assert len(irreps) == 3
    mul, ir = irreps[1]
    assert (mul, ir) == (128, Irrep("1o")) and irreps[1].mul == 128 and irreps[1].ir == "1o"
    assert irreps[1].dim == 384 and repr(irreps[1]) == "128x1o"
    assert isinstance(irreps[1:], Irreps) and irreps[1:] == "128x1o+1x2e"
    assert [(m, str(i)) for m, i in irreps] == [(128, "0e"), (128, "1o"), (1, "2e")]
    assert irreps + "0o" == "128x0e+128x1o+1x2e+1x0o"
    assert "0o" + Irreps("1e") == "1x0o+1x1e"
    assert 2 * Irreps("0e+1e") == "1x0e+1x1e+1x0e+1x1e" == Irreps("0e+1e") * 2
    assert irreps.dim == 128 + 384 + 5 and irreps.num_irreps == 257 and irreps.lmax == 2
    assert irreps.offsets() == [0, 128, 512]
    assert irreps != "128x0e" and irreps != "not irreps"
    assert pickle.loads(pickle.dumps(irreps)) == irreps


def test_spherical_harmonics_irreps():
    assert Irreps.spherical_harmonics(3) == "1x0e+1x1o+1x2e+1x3o"
    assert Irreps.spherical_harmonics(2, p=1) == "1x0e+1x1e+1x2e"
    o3 = e3nn_o3()
    for lmax in range(5):
        for p in (1, -1):
            assert Irreps.spherical_harmonics(lmax, p) == o3.Irreps.spherical_harmonics(lmax, p)


def test_sort_permutations_are_inverse():
    irreps = Irreps("2o + 1e + 0e + 1e")
    result = irreps.sort()
    assert result.irreps == "1x0e+1x1e+1x1e+1x2o"
    assert result.p == (3, 1, 0, 2) and result.inv == (2, 1, 3, 0)
    for old, new in enumerate(result.p):
        assert result.irreps[new] == irreps[old] and result.inv[new] == old


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("128x0e+3y1e", "'3y1e'"),
        ("1x", "'1x'"),
        ("2x1q", "'2x1q'"),
        ("ax0e", "'ax0e'"),
        ("-1x0e", "'-1x0e'"),
        ("0e++1o", "''"),
        ("1.5x0e", "'1.5x0e'"),
    ],
)
def test_irreps_parse_errors_name_the_token(bad, fragment):
    with pytest.raises(ValueError, match=fragment.replace("+", r"\+")):
        Irreps(bad)


def test_irrep_errors():
    with pytest.raises(ValueError, match="'1q'"):
        Irrep("1q")
    with pytest.raises(ValueError, match="parity"):
        Irrep(1, 0)
    with pytest.raises(ValueError, match=">= 0"):
        Irrep(-1, 1)
    with pytest.raises(TypeError, match="integer"):
        Irrep(1.5, 1)
    with pytest.raises(TypeError):
        Irrep(None)
    with pytest.raises(ValueError, match="multiplicity"):
        Irreps([(-2, "0e")])
    with pytest.raises(ValueError, match="cannot interpret"):
        Irreps([(1, 2, 3)])
    with pytest.raises(TypeError):
        Irreps(3.0)
    with pytest.raises(ValueError, match="empty"):
        _ = Irreps("").lmax
    with pytest.raises(TypeError, match="TPProblem"):
        _ = Irreps("0e") * Irreps("1o")
    with pytest.raises(ValueError, match="lmax"):
        Irreps.spherical_harmonics(-1)


def test_d_from_angles_is_block_diagonal_and_orthogonal():
    irreps = Irreps("2x0e+1x1o+1x2e")
    angles = (np.array([0.3, 1.0]), np.array([1.1, 2.0]), np.array([-0.4, 0.5]))
    d = irreps.D_from_angles(*angles)
    assert d.shape == (2, irreps.dim, irreps.dim)
    np.testing.assert_allclose(
        d @ np.swapaxes(d, -1, -2), np.broadcast_to(np.eye(irreps.dim), d.shape), atol=1e-12
    )
    np.testing.assert_allclose(d[:, :2, :2], np.broadcast_to(np.eye(2), (2, 2, 2)), atol=1e-15)
    assert np.all(d[:, :2, 2:] == 0) and np.all(d[:, 2:5, 5:] == 0)
    # parity: an odd irrep flips sign under inversion (k = 1), an even one does not
    inverted = irreps.D_from_angles(*angles, k=1)
    np.testing.assert_allclose(inverted[:, 2:5, 2:5], -d[:, 2:5, 2:5], atol=1e-15)
    np.testing.assert_allclose(inverted[:, 5:, 5:], d[:, 5:, 5:], atol=1e-15)


def test_d_from_angles_matches_e3nn():
    o3 = e3nn_o3()
    import torch

    from tests.equivariant.e3nn_peer import torch_float64

    irreps = "2x0e+1x1o+1x2e+2x3o+1x1e"
    alpha, beta, gamma, k = (
        np.array([0.3, 4.0]),
        np.array([1.1, 2.0]),
        np.array([-0.4, 0.5]),
        np.array([0, 1]),
    )
    with torch_float64():
        theirs = (
            o3.Irreps(irreps).D_from_angles(*(torch.from_numpy(a) for a in (alpha, beta, gamma, k))).numpy()
        )
    ours = Irreps(irreps).D_from_angles(alpha, beta, gamma, k)
    np.testing.assert_allclose(ours, theirs, atol=1e-10, rtol=0)


def test_randn():
    irreps = Irreps("2x0e+3x1o+1x2e")
    a = irreps.randn(4, -1, rng=0)
    assert a.shape == (4, irreps.dim) and a.dtype == np.float64
    np.testing.assert_array_equal(a, irreps.randn(4, -1, rng=0))
    b = irreps.randn(-1, 5, normalization="norm", rng=1, dtype=np.float32)
    assert b.shape == (irreps.dim, 5) and b.dtype == np.float32
    for segment, (mul, ir) in zip(irreps.slices(), irreps):
        blocks = b[segment].reshape(mul, ir.dim, 5)
        np.testing.assert_allclose(np.linalg.norm(blocks, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="exactly one -1"):
        irreps.randn(4, 5)
    with pytest.raises(ValueError, match="normalization"):
        irreps.randn(-1, normalization="integral")
