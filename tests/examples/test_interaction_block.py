"""The interaction-block example: fused-conv model == the same model built from e3nn; force training runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from tests.tolerances import assert_close_rel

pytest.importorskip("ase")
pytest.importorskip("e3nn")

_PATH = Path(__file__).resolve().parents[2] / "examples" / "interaction_block.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("interaction_block_example", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def structures(example):
    return {
        "srtio3-1x1x2": example.perovskite_supercell((1, 1, 2), seed=3),
        "ethanol": example.molecule(seed=4),
    }


def energy_forces_and_weight_grads(example, model, structure):
    """Energy, forces, and the weight gradients of a force loss (through the double backward)."""
    energy, forces = example.energy_and_forces(model, structure, create_graph=True)
    loss = (forces**2).sum() + energy
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    named = {name: grad.detach() for name, grad in zip(params, grads)}
    return energy.detach(), forces.detach(), named


@pytest.mark.parametrize("name", ["srtio3-1x1x2", "ethanol"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_fused_model_matches_e3nn_model(example, name, dtype):
    structure = example.structure_tensors(structures(example)[name], dtype)
    model = example.InteractionModel(dtype, seed=2)
    twin = example.e3nn_twin(model)
    energy, forces, grads = energy_forces_and_weight_grads(example, model, structure)
    energy_e3nn, forces_e3nn, grads_e3nn = energy_forces_and_weight_grads(example, twin, structure)
    label = str(dtype).replace("torch.", "")
    assert float(forces.abs().max()) > 1e-4, "forces must be nonzero for the comparison to mean something"
    assert_close_rel(energy.numpy(), energy_e3nn.numpy(), "tp_forward", label)
    assert_close_rel(forces.numpy(), forces_e3nn.numpy(), "tp_backward", label)
    assert set(grads) <= set(grads_e3nn)
    for key, grad in grads.items():
        assert_close_rel(grad.numpy(), grads_e3nn[key].numpy(), "tp_double_backward", label)


def test_forces_are_minus_the_energy_gradient_by_finite_differences(example):
    structure = example.structure_tensors(example.molecule(seed=5), torch.float64)
    model = example.InteractionModel(torch.float64, seed=3)
    _, forces = example.energy_and_forces(model, structure)
    step = 1e-6
    for atom, axis in ((0, 0), (2, 1), (5, 2)):
        shifted = []
        for sign in (1.0, -1.0):
            positions = structure.positions.clone()
            positions[atom, axis] += sign * step
            with torch.no_grad():
                shifted.append(float(model(structure, positions).sum()))
        numeric = -(shifted[0] - shifted[1]) / (2 * step)
        assert abs(numeric - float(forces[atom, axis])) <= 1e-6 * max(1.0, abs(numeric))


def test_force_training_reduces_the_loss(example):
    structure = example.structure_tensors(example.perovskite_supercell((1, 1, 2), seed=6), torch.float64)
    teacher = example.InteractionModel(torch.float64, seed=10)
    _, target = example.energy_and_forces(teacher, structure)
    student = example.InteractionModel(torch.float64, seed=11)
    losses = example.train_on_forces(student, structure, target.detach(), steps=4, lr=2e-2)
    assert losses[-1] < 0.9 * losses[0], losses


def test_energy_is_invariant_under_rotation(example):
    atoms = example.molecule(seed=7)
    model = example.InteractionModel(torch.float64, seed=4)
    original = example.structure_tensors(atoms, torch.float64)
    energy = model(original, original.positions).sum().detach()
    atoms.rotate(73.0, (0.3, -1.0, 0.5), center="COM")
    rotated = example.structure_tensors(atoms, torch.float64)
    energy_rotated = model(rotated, rotated.positions).sum().detach()
    assert abs(float(energy - energy_rotated)) <= 1e-10 * max(1.0, abs(float(energy)))
