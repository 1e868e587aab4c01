"""Radius graphs of atomic structures (ASE ``Atoms``), with periodic images, for message passing.

An edge ``e`` carries a message from atom ``senders[e]`` (in the periodic image ``shifts[e]`` of the cell)
to atom ``receivers[e]``; its vector points from the receiver to that image of the sender:

    vectors[e] = positions[senders[e]] + shifts[e] @ cell - positions[receivers[e]]

which is ASE's ``neighbor_list("ijS")`` convention with ``i`` the receiver and ``j`` the sender. Edges
are sorted by (receiver, sender, shift), so the graph of a structure is always the same, edge for edge.
ASE is imported only by :func:`radius_graph`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def _csr(keys: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable").astype(np.int64)
    pointer = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=num_nodes), out=pointer[1:])
    return order, pointer


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Graph:
    """A directed radius graph over ``num_nodes`` atoms (see the module docstring for the conventions).

    Attributes
    ----------
    num_nodes : int
        ``V``, the number of atoms.
    receivers, senders : numpy.ndarray of int64, shape ``(E,)``
        Edge endpoints, sorted by (receiver, sender, shift).
    shifts : numpy.ndarray of int64, shape ``(E, 3)``
        The periodic image of the sender, in cell vectors (zero without periodicity).
    shift_vectors : numpy.ndarray of float64, shape ``(E, 3)``
        ``shifts @ cell`` in Cartesian units: add it to ``positions[senders] - positions[receivers]``.
    vectors : numpy.ndarray of float64, shape ``(E, 3)``
        The edge vectors at the positions the graph was built from.
    cutoff : float
        Radius used to build the graph.

    The arrays are read-only. ``receiver_csr`` and ``sender_csr`` (computed once, cached) give the edges in
    CSR order by receiver and by sender: ``(order (E,), pointer (V + 1,))`` with the edges of node ``n`` at
    ``order[pointer[n]:pointer[n + 1]]``.
    """

    num_nodes: int
    receivers: np.ndarray
    senders: np.ndarray
    shifts: np.ndarray
    shift_vectors: np.ndarray
    vectors: np.ndarray
    cutoff: float

    @property
    def num_edges(self) -> int:
        """``E``, the number of directed edges."""
        return int(self.receivers.shape[0])

    @functools.cached_property
    def receiver_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(order, pointer)``: edge ids by receiver (stable) and the CSR pointer ``(V + 1,)``."""
        return tuple(_frozen(a) for a in _csr(self.receivers, self.num_nodes))

    @functools.cached_property
    def sender_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(order, pointer)``: edge ids by sender (stable), the transposed edge order."""
        return tuple(_frozen(a) for a in _csr(self.senders, self.num_nodes))

    def degrees(self) -> np.ndarray:
        """Number of incoming edges of each node, ``(V,)`` int64."""
        return np.diff(self.receiver_csr[1])

    def edge_vectors(self, positions: Any) -> np.ndarray:
        """Edge vectors ``(E, 3)`` for new positions ``(V, 3)`` (same cell, same edges)."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.num_nodes, 3):
            raise ValueError(f"positions must have shape ({self.num_nodes}, 3), got {positions.shape}")
        return positions[self.senders] - positions[self.receivers] + self.shift_vectors

    def __repr__(self) -> str:
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, cutoff={self.cutoff})"


def radius_graph(atoms: Any, cutoff: float, *, self_interaction: bool = False) -> Graph:
    """All pairs of atoms closer than ``cutoff``, across periodic boundaries where ``atoms.pbc`` says.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure: positions, cell and periodic boundary conditions.
    cutoff : float
        Radius in the units of the positions (Å for ASE). Pairs at distance ``< cutoff`` are joined in
        both directions; a cutoff larger than the cell gives edges to several images of one atom.
    self_interaction : bool
        Whether an atom is its own neighbour at zero distance (never useful for messages; default False).
        Images of an atom itself in other cells are always included.

    Returns
    -------
    Graph
        Edges sorted by (receiver, sender, shift).
    """
    try:
        from ase import Atoms
        from ase.neighborlist import neighbor_list
    except ImportError as error:  # pragma: no cover - ase is a test dependency
        raise ImportError("radius_graph needs ASE: pip install ase") from error
    if not isinstance(atoms, Atoms):
        raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.integer, np.floating)):
        raise TypeError(f"cutoff must be a number, got {type(cutoff).__name__}")
    cutoff = float(cutoff)
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive finite number, got {cutoff}")
    num_nodes = len(atoms)
    if num_nodes == 0:
        empty = np.zeros(0, dtype=np.int64)
        zeros = np.zeros((0, 3))
        return Graph(0, empty, empty.copy(), zeros.astype(np.int64), zeros, zeros.copy(), cutoff)

    receivers, senders, shifts = neighbor_list("ijS", atoms, cutoff, self_interaction=self_interaction)
    receivers = receivers.astype(np.int64)
    senders = senders.astype(np.int64)
    shifts = shifts.astype(np.int64).reshape(-1, 3)
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, receivers))
    receivers, senders, shifts = receivers[order], senders[order], shifts[order]
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    shift_vectors = shifts.astype(np.float64) @ cell
    positions = np.asarray(atoms.positions, dtype=np.float64)
    vectors = positions[senders] - positions[receivers] + shift_vectors
    return Graph(
        num_nodes=num_nodes,
        receivers=_frozen(np.ascontiguousarray(receivers)),
        senders=_frozen(np.ascontiguousarray(senders)),
        shifts=_frozen(np.ascontiguousarray(shifts)),
        shift_vectors=_frozen(np.ascontiguousarray(shift_vectors)),
        vectors=_frozen(np.ascontiguousarray(vectors)),
        cutoff=cutoff,
    )
