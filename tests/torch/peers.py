"""Helpers shared by the torch tests: e3nn's module for a ``TPProblem`` and seeded inputs for it."""

from __future__ import annotations

import numpy as np
import torch

from multilinear.torch.tensor_product import torch_dtype_of


def e3nn_twin(problem) -> torch.nn.Module:
    """``e3nn.o3.TensorProduct`` with the problem's arguments, in the problem's dtype.

    Built with the problem's dtype as torch's default, so e3nn computes its CG constants in that precision
    (a float32-built module converted with ``.double()`` carries float32-rounded constants).
    """
    from e3nn import o3

    dtype = torch_dtype_of(problem.irrep_dtype)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return o3.TensorProduct(**problem.e3nn_kwargs())
    finally:
        torch.set_default_dtype(previous)


def random_inputs(problem, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Seeded x, y, weight (per-sample or shared) and an output cotangent ``grad_out`` for ``problem``."""
    gen = torch.Generator().manual_seed(seed)
    dtype = torch_dtype_of(problem.irrep_dtype)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen, dtype=dtype)

    weight_shape = (problem.weight_numel,) if problem.shared_weights else (batch, problem.weight_numel)
    return {
        "x": draw(batch, problem.irreps_in1.dim),
        "y": draw(batch, problem.irreps_in2.dim),
        "weight": draw(*weight_shape),
        "grad_out": draw(batch, problem.irreps_out.dim),
    }


def first_and_second_order(module, x, y, weight, grad_out):
    """Forward, the three first-order grads, and the grads of a loss built from them (double backward).

    Returns a dict of numpy float64 arrays keyed ``z, grad_x, grad_y, grad_w, dd_x, dd_y, dd_w``.
    """
    x, y, weight = (t.detach().clone().requires_grad_() for t in (x, y, weight))
    z = module(x, y, weight)
    grads = torch.autograd.grad(z, (x, y, weight), grad_out, create_graph=True)
    # a loss of the first-order grads, as force training builds it (weighted, so no term cancels)
    loss = sum((g * torch.cos(g.detach())).sum() for g in grads)
    second = torch.autograd.grad(loss, (x, y, weight))
    names = ("z", "grad_x", "grad_y", "grad_w", "dd_x", "dd_y", "dd_w")
    return {n: t.detach().to(torch.float64).numpy() for n, t in zip(names, (z, *grads, *second))}


OP_OF = {
    "z": "tp_forward",
    "grad_x": "tp_backward",
    "grad_y": "tp_backward",
    "grad_w": "tp_backward",
    "dd_x": "tp_double_backward",
    "dd_y": "tp_double_backward",
    "dd_w": "tp_double_backward",
}


def as_numpy64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()
