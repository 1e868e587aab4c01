"""Radius graphs from ASE structures against a brute-force search over periodic images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

ase_build = pytest.importorskip("ase.build")
from ase import Atoms  # noqa: E402

from multilinear.equivariant.graph import Graph, radius_graph  # noqa: E402


def brute_force_edges(atoms, cutoff: float, reach: int) -> set[tuple[int, int, int, int, int]]:
    """Every (receiver, sender, shift) within ``cutoff``, images up to ``reach`` cells away per axis."""
    positions, cell = atoms.positions, atoms.cell.array
    ranges = [range(-reach, reach + 1) if periodic else range(1) for periodic in atoms.pbc]
    edges = set()
    for shift in itertools.product(*ranges):
        offset = np.asarray(shift) @ cell
        diff = positions[None, :, :] + offset - positions[:, None, :]  # [receiver, sender]
        close = np.linalg.norm(diff, axis=-1) < cutoff
        for receiver, sender in zip(*np.nonzero(close)):
            if receiver == sender and not any(shift):
                continue
            edges.add((int(receiver), int(sender), *shift))
    return edges


def as_set(graph: Graph) -> set[tuple[int, int, int, int, int]]:
    return {(int(r), int(s), *map(int, t)) for r, s, t in zip(graph.receivers, graph.senders, graph.shifts)}


STRUCTURES = {
    "water": lambda: ase_build.molecule("H2O"),
    "ethanol": lambda: ase_build.molecule("CH3CH2OH"),
    "copper-fcc-primitive": lambda: ase_build.bulk("Cu", "fcc", a=3.6),
}


def perovskite() -> Atoms:
    """Cubic SrTiO3 (Pm-3m, a = 3.905 Å): Sr at the corner, Ti at the centre, O at the face centres."""
    a = 3.905
    fractional = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Atoms("SrTiO3", scaled_positions=fractional, cell=[a, a, a], pbc=True)


@pytest.mark.parametrize("name", ["srtio3-2x2x2", "water", "ethanol", "copper-fcc-primitive"])
def test_edges_equal_brute_force(name):
    atoms = perovskite() * (2, 2, 2) if name == "srtio3-2x2x2" else STRUCTURES[name]()
    cutoff = 5.0
    graph = radius_graph(atoms, cutoff)
    assert as_set(graph) == brute_force_edges(atoms, cutoff, reach=3)
    assert len(as_set(graph)) == graph.num_edges  # no duplicates
    lengths = np.linalg.norm(graph.vectors, axis=1)
    assert np.all(lengths < cutoff) and np.all(lengths > 0)
    np.testing.assert_allclose(graph.vectors, graph.edge_vectors(atoms.positions), rtol=0, atol=1e-12)


def test_edges_are_sorted_symmetric_and_csr_consistent():
    atoms = perovskite() * (2, 2, 1)
    graph = radius_graph(atoms, 4.5)
    keys = list(zip(graph.receivers, graph.senders, *graph.shifts.T))
    assert keys == sorted(keys)
    forward = as_set(graph)
    assert {(s, r, -a, -b, -c) for r, s, a, b, c in forward} == forward  # every edge has its reverse
    np.testing.assert_allclose(graph.vectors.sum(axis=0), 0, atol=1e-9)  # reverses cancel
    for order, pointer, keys in (
        (*graph.receiver_csr, graph.receivers),
        (*graph.sender_csr, graph.senders),
    ):
        assert pointer[0] == 0 and pointer[-1] == graph.num_edges
        for node in range(graph.num_nodes):
            edges = order[pointer[node] : pointer[node + 1]]
            assert np.all(keys[edges] == node)
            assert np.all(np.diff(edges) > 0)  # stable: edge order kept within a node
    np.testing.assert_array_equal(graph.degrees(), np.bincount(graph.receivers, minlength=graph.num_nodes))
    # every atom of a perovskite cell sees the same environment count per species: Ti has 6 O at a/2
    titanium = [n for n, symbol in enumerate(atoms.get_chemical_symbols()) if symbol == "Ti"]
    lengths = np.linalg.norm(graph.vectors, axis=1)
    for ti in titanium:
        mine = lengths[graph.receivers == ti]
        assert np.sum(np.isclose(mine, 3.905 / 2)) == 6


def test_arrays_are_read_only():
    graph = radius_graph(ase_build.molecule("H2O"), 2.0)
    with pytest.raises(ValueError):
        graph.receivers[0] = 1
    with pytest.raises(ValueError):
        graph.receiver_csr[0][0] = 1


@pytest.mark.parametrize(
    ("atoms", "cutoff", "error", "match"),
    [
        ("not atoms", 3.0, TypeError, "ase.Atoms"),
        (None, -1.0, ValueError, "positive"),
        (None, float("nan"), ValueError, "positive"),
        (None, "3", TypeError, "number"),
    ],
    ids=["not-atoms", "negative", "nan", "string"],
)
def test_bad_input(atoms, cutoff, error, match):
    atoms = ase_build.molecule("H2O") if atoms is None else atoms
    with pytest.raises(error, match=match):
        radius_graph(atoms, cutoff)


def test_edge_vectors_checks_shape():
    graph = radius_graph(ase_build.molecule("H2O"), 2.0)
    with pytest.raises(ValueError, match=r"positions must have shape \(3, 3\)"):
        graph.edge_vectors(np.zeros((4, 3)))
