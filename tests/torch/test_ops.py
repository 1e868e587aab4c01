"""The custom ops' plumbing, over the einsum oracle (``ReferenceKernels``), checked against e3nn.

These tests do not depend on the generated kernels: they check that the ops, their fake implementations
and the autograd chaining (forward -> backward -> double backward) are right. The same checks with the real
kernels are in ``test_tensor_product.py``.
"""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from multilinear.torch import _ops  # noqa: F401  (registers the ops)
from multilinear.torch._registry import kernels_for, register_kernels
from tests.reference.tensor_product import spec_from_e3nn
from tests.tolerances import assert_close_rel
from tests.torch.standins import ReferenceKernels

IRREPS_IN1 = "3x0e+3x1o+2x2e"
IRREPS_IN2 = "1x0e+1x1o+1x2e+1x3o"
IRREPS_OUT = "3x0e+3x1o+2x2e+2x3o"
# uvu and uvw paths, one without weights, one with l = 3
INSTRUCTIONS = [
    (0, 0, 0, "uvu", True),
    (1, 1, 0, "uvu", True),
    (2, 3, 3, "uvw", True),
    (1, 2, 1, "uvu", True),
    (2, 0, 2, "uvu", False),
]


def e3nn_module(shared_weights: bool) -> o3.TensorProduct:
    """e3nn's module in float64; built under float64 default dtype so its CG constants are exact."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return o3.TensorProduct(
            IRREPS_IN1,
            IRREPS_IN2,
            IRREPS_OUT,
            INSTRUCTIONS,
            shared_weights=shared_weights,
            internal_weights=False,
        )
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module", params=[False, True], ids=["per_sample_w", "shared_w"])
def case(request):
    module = e3nn_module(shared_weights=request.param)
    handle = register_kernels(ReferenceKernels(spec_from_e3nn(module, "float64")))
    gen = torch.Generator().manual_seed(7)
    batch = 4
    x = torch.randn(batch, module.irreps_in1.dim, generator=gen, dtype=torch.float64)
    y = torch.randn(batch, module.irreps_in2.dim, generator=gen, dtype=torch.float64)
    w_shape = (module.weight_numel,) if request.param else (batch, module.weight_numel)
    w = torch.randn(w_shape, generator=gen, dtype=torch.float64)
    g = torch.randn(batch, module.irreps_out.dim, generator=gen, dtype=torch.float64)
    return module, handle, x, y, w, g


def op_forward(handle):
    return lambda x, y, w: torch.ops.multilinear.tp_forward(x, y, w, handle)


def test_forward_backward_double_backward_match_e3nn(case):
    module, handle, x, y, w, g = case
    inputs = [t.clone().requires_grad_() for t in (x, y, w)]
    inputs_e3nn = [t.clone().requires_grad_() for t in (x, y, w)]
    results = []
    for fn, (xi, yi, wi) in ((op_forward(handle), inputs), (module, inputs_e3nn)):
        z = fn(xi, yi, wi)
        grads = torch.autograd.grad(z, (xi, yi, wi), g, create_graph=True)
        # a loss of the first-order grads, as force training builds it
        loss = sum((gr * gr.detach().sin()).sum() for gr in grads)
        second = torch.autograd.grad(loss, (xi, yi, wi))
        results.append((z, *grads, *second))
    for ours, theirs, op in zip(
        results[0], results[1], ["tp_forward"] + ["tp_backward"] * 3 + ["tp_double_backward"] * 3
    ):
        assert_close_rel(ours.detach().numpy(), theirs.detach().numpy(), op, "float64")


def test_gradcheck_and_gradgradcheck(case):
    _, handle, x, y, w, _ = case
    inputs = tuple(t.clone().requires_grad_() for t in (x, y, w))
    assert torch.autograd.gradcheck(op_forward(handle), inputs)
    assert torch.autograd.gradgradcheck(op_forward(handle), inputs)


def test_opcheck_each_op(case):
    _, handle, x, y, w, g = case
    ops = torch.ops.multilinear
    args = {
        "tp_forward": (x, y, w, handle),
        "tp_backward": (x, y, w, g, handle),
        "tp_double_backward": (x, y, w, g, x.clone(), None, w.clone(), handle),
    }
    for name, op_args in args.items():
        torch.library.opcheck(getattr(ops, name).default, op_args)
    # with inputs that require grad, the autograd registration is exercised as well
    grad_args = tuple(t.clone().requires_grad_() for t in (x, y, w, g))
    torch.library.opcheck(ops.tp_backward.default, (*grad_args, handle))


def test_double_backward_with_missing_terms_treats_them_as_zero(case):
    _, handle, x, y, w, g = case
    ops = torch.ops.multilinear
    zeros = [torch.zeros_like(t) for t in (x, y, w)]
    with_none = ops.tp_double_backward(x, y, w, g, None, y, None, handle)
    with_zeros = ops.tp_double_backward(x, y, w, g, zeros[0], y, zeros[2], handle)
    for a, b in zip(with_none, with_zeros):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_non_contiguous_inputs_are_handled(case):
    _, handle, x, y, w, _ = case
    x_strided = torch.cat([x, x], dim=1)[:, : x.shape[1]]
    assert not x_strided.is_contiguous()
    torch.testing.assert_close(
        torch.ops.multilinear.tp_forward(x_strided, y, w, handle),
        torch.ops.multilinear.tp_forward(x, y, w, handle),
        rtol=0,
        atol=0,
    )


def test_third_derivative_is_refused_clearly(case):
    _, handle, x, y, w, g = case
    xi = x.clone().requires_grad_()
    z = op_forward(handle)(xi, y, w)
    (gx,) = torch.autograd.grad(z, xi, g, create_graph=True)
    (ggx,) = torch.autograd.grad((gx * gx).sum(), xi, create_graph=True)
    with pytest.raises(RuntimeError, match="tp_double_backward"):
        torch.autograd.grad(ggx.sum(), xi)


def test_ops_reject_wrong_dtype_and_unknown_handle(case):
    _, handle, x, y, w, _ = case
    with pytest.raises(TypeError, match=r"x must have dtype torch\.float64"):
        torch.ops.multilinear.tp_forward(x.float(), y, w, handle)
    with pytest.raises(ValueError, match="no tensor-product kernels registered under handle"):
        kernels_for(10**6)


def test_registry_gives_one_handle_per_kernels_object(case):
    _, handle, *_ = case
    kernels = kernels_for(handle)
    assert register_kernels(kernels) == handle
    with pytest.raises(TypeError, match="must provide spec"):
        register_kernels(object())
