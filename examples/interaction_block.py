"""A MACE/NequIP-style interaction model on real structures, with the fused tensor-product convolution.

Two interaction blocks, each ``linear -> fused convolution -> linear``: the convolution takes the node
features of the senders, the spherical harmonics of the edge vectors (l <= 2) and per-edge weights from
a small MLP of the edge lengths (Bessel basis times a smooth cutoff), and sums the messages into the
receivers without storing them. Energies are summed over atoms, forces are ``-dE/dpositions``, and a few
training steps fit the forces of a teacher model (force training differentiates the forces, so it runs
the double backward of the convolution).

The same model written with e3nn alone (``o3.Linear``, ``o3.spherical_harmonics``, ``o3.TensorProduct``
followed by ``index_add``) gives the same energies, forces and weight gradients; the comparison runs when
e3nn is installed. Run::

    python examples/interaction_block.py            # SrTiO3 2x2x2 supercell and an ethanol molecule
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from multilinear.equivariant import Irreps, channelwise_problem, radius_graph
from multilinear.torch import TensorProductConv, prepare_graph
from multilinear.torch.spherical_harmonics import SphericalHarmonics

SH_IRREPS = "0e+1o+2e"
CUTOFF = 4.5
CHANNELS = 8


# ---------------------------------------------------------------------------------------- structures
def perovskite_supercell(repeat: tuple[int, int, int] = (2, 2, 2), rattle: float = 0.15, seed: int = 0):
    """Cubic SrTiO3 (Pm-3m, a = 3.905 Å) repeated ``repeat`` times, atoms displaced by ``rattle`` Å."""
    from ase import Atoms

    a = 3.905
    fractional = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    atoms = Atoms("SrTiO3", scaled_positions=fractional, cell=[a, a, a], pbc=True) * repeat
    atoms.rattle(rattle, seed=seed)
    return atoms


def molecule(name: str = "CH3CH2OH", rattle: float = 0.05, seed: int = 0):
    """A molecule from ASE's built-in collection (G2), slightly displaced from its reference geometry."""
    from ase.build import molecule as ase_molecule

    atoms = ase_molecule(name)
    atoms.rattle(rattle, seed=seed)
    return atoms


@dataclass(frozen=True)
class Structure:
    """Tensors of one structure for the model: species, positions and its fixed radius graph."""

    species: Tensor  # (V,) int64 index into the model's species list
    positions: Tensor  # (V, 3)
    receivers: Tensor  # (E,) int64
    senders: Tensor  # (E,) int64
    shift_vectors: (
        Tensor  # (E, 3): periodic image offsets, added to positions[senders] - positions[receivers]
    )


SPECIES = ("H", "C", "O", "Ti", "Sr")


def structure_tensors(atoms, dtype: torch.dtype, cutoff: float = CUTOFF) -> Structure:
    graph = radius_graph(atoms, cutoff)
    species = torch.tensor([SPECIES.index(symbol) for symbol in atoms.get_chemical_symbols()])
    return Structure(
        species=species,
        positions=torch.tensor(atoms.positions, dtype=dtype),
        receivers=torch.from_numpy(graph.receivers.copy()),
        senders=torch.from_numpy(graph.senders.copy()),
        shift_vectors=torch.tensor(graph.shift_vectors, dtype=dtype),
    )


# ---------------------------------------------------------------------------------------- building blocks
class EquivariantLinear(torch.nn.Module):
    """e3nn's ``o3.Linear`` (no biases, "element" path normalisation), with its flat weight layout.

    Each output segment ``(mul_out, ir)`` is ``sum over input segments (mul_in, ir)`` of
    ``W_path (mul_in, mul_out)`` applied channelwise, scaled by ``1 / sqrt(sum of mul_in into it)``.
    """

    def __init__(self, irreps_in, irreps_out, dtype: torch.dtype) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        self.paths = [
            (i_in, i_out)
            for i_in, (_, ir_in) in enumerate(self.irreps_in)
            for i_out, (_, ir_out) in enumerate(self.irreps_out)
            if ir_in == ir_out
        ]
        fan_in = {i_out: 0 for i_out in range(len(self.irreps_out))}
        for i_in, i_out in self.paths:
            fan_in[i_out] += self.irreps_in[i_in].mul
        self.scale = [1.0 / math.sqrt(fan_in[i_out]) for _, i_out in self.paths]
        numel = sum(self.irreps_in[i].mul * self.irreps_out[o].mul for i, o in self.paths)
        self.weight = torch.nn.Parameter(torch.randn(numel, dtype=dtype))

    def forward(self, features: Tensor) -> Tensor:
        in_slices, out_slices = self.irreps_in.slices(), self.irreps_out.slices()
        outputs: list[Tensor | None] = [None] * len(self.irreps_out)
        offset = 0
        for (i_in, i_out), scale in zip(self.paths, self.scale):
            mul_in, ir = self.irreps_in[i_in]
            mul_out = self.irreps_out[i_out].mul
            block = self.weight[offset : offset + mul_in * mul_out].reshape(mul_in, mul_out)
            offset += mul_in * mul_out
            segment = features[:, in_slices[i_in]].reshape(-1, mul_in, ir.dim)
            term = scale * torch.einsum("uw,nui->nwi", block, segment).reshape(-1, mul_out * ir.dim)
            outputs[i_out] = term if outputs[i_out] is None else outputs[i_out] + term
        pieces = [
            out if out is not None else features.new_zeros((features.shape[0], s.stop - s.start))
            for out, s in zip(outputs, out_slices)
        ]
        return torch.cat(pieces, dim=1)


class RadialEmbedding(torch.nn.Module):
    """Bessel basis ``sqrt(2/c) sin(n pi r / c) / r`` (n = 1..8) times MACE's polynomial cutoff (p = 6)."""

    def __init__(self, cutoff: float, num_basis: int = 8, p: int = 6) -> None:
        super().__init__()
        self.cutoff, self.p = cutoff, p
        self.register_buffer(
            "frequencies", torch.arange(1, num_basis + 1) * math.pi / cutoff, persistent=False
        )

    def forward(self, lengths: Tensor) -> Tensor:
        r = lengths.unsqueeze(-1)
        bessel = math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies.to(r.dtype) * r) / r
        x, p = r / self.cutoff, self.p
        envelope = (
            1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        )
        return bessel * envelope * (x < 1.0)


class Interaction(torch.nn.Module):
    """``linear -> fused conv(h[senders], Y(edge), MLP(|edge|)) / avg_neighbors -> linear``."""

    def __init__(
        self, irreps_in, irreps_filter, irreps_out, dtype: torch.dtype, avg_neighbors: float
    ) -> None:
        super().__init__()
        self.linear_up = EquivariantLinear(irreps_in, irreps_in, dtype)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        self.problem = channelwise_problem(irreps_in, SH_IRREPS, irreps_filter, irrep_dtype=np_dtype)
        self.conv = TensorProductConv(self.problem)
        self.radial_mlp = torch.nn.Sequential(
            torch.nn.Linear(8, 16, dtype=dtype),
            torch.nn.SiLU(),
            torch.nn.Linear(16, self.problem.weight_numel, dtype=dtype),
        )
        self.linear_down = EquivariantLinear(self.problem.irreps_out, irreps_out, dtype)
        self.avg_neighbors = avg_neighbors

    def convolve(self, h, edge_sh, edge_weights, structure: Structure, graph) -> Tensor:
        return self.conv(h, edge_sh, edge_weights, graph=graph)

    def forward(self, h, edge_sh, radial, structure: Structure, graph) -> Tensor:
        h = self.linear_up(h)
        messages = self.convolve(h, edge_sh, self.radial_mlp(radial), structure, graph)
        return self.linear_down(messages / self.avg_neighbors)


class InteractionModel(torch.nn.Module):
    """Species embedding, two interactions (scalars -> l <= 2 features -> scalars), per-atom energy."""

    def __init__(
        self, dtype: torch.dtype = torch.float32, seed: int = 0, avg_neighbors: float = 20.0
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        c = CHANNELS
        self.dtype = dtype
        self.embedding = torch.nn.Parameter(torch.randn(len(SPECIES), c, dtype=dtype))
        self.sh = SphericalHarmonics(SH_IRREPS, normalization="component", dtype=dtype)
        self.radial = RadialEmbedding(CUTOFF)
        self.first = Interaction(f"{c}x0e", SH_IRREPS, f"{c}x0e+{c}x1o+{c}x2e", dtype, avg_neighbors)
        self.second = Interaction(f"{c}x0e+{c}x1o+{c}x2e", "0e", f"{c}x0e", dtype, avg_neighbors)
        self.readout = torch.nn.Linear(c, 1, bias=False, dtype=dtype)
        self._graphs: dict[int, object] = {}

    def edge_attributes(self, structure: Structure, positions: Tensor) -> tuple[Tensor, Tensor]:
        vectors = positions[structure.senders] - positions[structure.receivers] + structure.shift_vectors
        return self.sh(vectors), self.radial(vectors.norm(dim=1))

    def graph_for(self, structure: Structure):
        key = id(structure)
        if key not in self._graphs:  # the plan of a fixed graph is built once
            self._graphs[key] = prepare_graph(structure.receivers, structure.senders, len(structure.species))
        return self._graphs[key]

    def forward(self, structure: Structure, positions: Tensor) -> Tensor:
        """Per-atom energies ``(V,)``."""
        edge_sh, radial = self.edge_attributes(structure, positions)
        graph = self.graph_for(structure)
        h = self.embedding[structure.species]
        h = self.first(h, edge_sh, radial, structure, graph)
        h = torch.cat(
            [torch.nn.functional.silu(h[:, :CHANNELS]), h[:, CHANNELS:]], dim=1
        )  # gate scalars only
        h = self.second(h, edge_sh, radial, structure, graph)
        return self.readout(torch.nn.functional.silu(h)).squeeze(-1)


def energy_and_forces(model: torch.nn.Module, structure: Structure, create_graph: bool = False):
    """Total energy and forces ``-dE/dpositions`` ``(V, 3)`` (``create_graph`` for force training)."""
    positions = structure.positions.clone().requires_grad_()
    energy = model(structure, positions).sum()
    (gradient,) = torch.autograd.grad(energy, positions, create_graph=create_graph)
    return energy, -gradient


def train_on_forces(model, structure: Structure, target_forces: Tensor, steps: int = 5, lr: float = 1e-2):
    """A few Adam steps on the mean squared force error; returns the losses (needs double backward)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        _, forces = energy_and_forces(model, structure, create_graph=True)
        loss = ((forces - target_forces) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


# ---------------------------------------------------------------------------------------- e3nn twin
class _E3nnSphericalHarmonics(torch.nn.Module):
    def forward(self, vectors: Tensor) -> Tensor:
        from e3nn import o3

        return o3.spherical_harmonics(SH_IRREPS, vectors, True, normalization="component")


def e3nn_twin(model: InteractionModel) -> torch.nn.Module:
    """The same model with e3nn's linear layers, spherical harmonics and tensor product + ``index_add``.

    Shares the embedding, radial MLPs and readout with ``model`` (the same parameter objects) and copies
    the linear layers' weights into e3nn's ``o3.Linear`` (same flat layout).
    """
    import copy

    from e3nn import o3

    twin = copy.deepcopy(model)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(model.dtype)  # e3nn builds its constants in the default dtype
    try:
        for ours, theirs in ((model.first, twin.first), (model.second, twin.second)):
            for name in ("linear_up", "linear_down"):
                mine = getattr(ours, name)
                linear = o3.Linear(str(mine.irreps_in), str(mine.irreps_out))
                with torch.no_grad():
                    linear.weight.copy_(mine.weight)
                setattr(theirs, name, linear)
            tensor_product = o3.TensorProduct(**ours.problem.e3nn_kwargs())
            dim_out = ours.problem.irreps_out.dim

            def convolve(h, edge_sh, weights, structure, graph, tp=tensor_product, dim_out=dim_out):
                messages = tp(h[structure.senders], edge_sh, weights)
                return h.new_zeros(h.shape[0], dim_out).index_add(0, structure.receivers, messages)

            theirs.convolve = convolve
        twin.sh = _E3nnSphericalHarmonics()
    finally:
        torch.set_default_dtype(previous)
    return twin


# ---------------------------------------------------------------------------------------- demo
def main() -> None:
    torch.set_num_threads(2)
    for label, atoms in (("SrTiO3 2x2x2", perovskite_supercell()), ("ethanol", molecule())):
        structure = structure_tensors(atoms, torch.float64)
        print(f"{label}: {len(atoms)} atoms, {structure.receivers.shape[0]} edges within {CUTOFF} Å")
        model = InteractionModel(torch.float64, seed=0)
        start = time.perf_counter()
        energy, forces = energy_and_forces(model, structure)
        print(f"  energy {float(energy.detach()):+.6e}, max |force| {float(forces.abs().max()):.4e}")
        print(
            f"  energy + forces: {1e3 * (time.perf_counter() - start):.1f} ms (the first structure pays compiling or loading the kernels)"
        )
        try:
            twin = e3nn_twin(model)
        except ImportError:
            print("  (e3nn not installed: comparison skipped)")
        else:
            energy_e3nn, forces_e3nn = energy_and_forces(twin, structure)
            print(
                f"  e3nn twin: |dE| = {abs(float((energy - energy_e3nn).detach())):.2e}, "
                f"max |dF| = {float((forces - forces_e3nn).abs().max()):.2e}"
            )
        teacher = InteractionModel(torch.float64, seed=1)
        _, target = energy_and_forces(teacher, structure)
        losses = train_on_forces(model, structure, target.detach(), steps=5)
        print("  force training (5 Adam steps): loss " + " -> ".join(f"{loss:.3e}" for loss in losses))


if __name__ == "__main__":
    main()
