"""The fused tensor-product convolution as three ``torch.library`` custom ops, chained to second order.

- ``multilinear::tp_conv_forward(x, y, w, *graph, handle) -> out``
- ``multilinear::tp_conv_backward(x, y, w, grad_out, *graph, handle) -> (grad_x, grad_y, grad_w)``
- ``multilinear::tp_conv_double_backward(x, y, w, grad_out, gg_x?, gg_y?, gg_w?, *graph, handle)
  -> (d_x, d_y, d_w, d_grad_out)``

``*graph`` is six int64 tensors of a validated plan (:class:`multilinear.kernels.tp_conv.ConvGraph`):
``receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer``. Only the module
(:class:`multilinear.torch.TensorProductConv`) builds them; the ops check their shapes, not their values.

Shapes: x ``(V, dim_in1)``, y ``(E, dim_in2)``, w ``(E, weight_numel)`` or shared ``(weight_numel,)``,
out ``(V, dim_out)``. ``handle`` names the kernels in :mod:`multilinear.torch._registry` (the same
registry as the plain tensor product's ops); the fake implementations read output widths from its spec.
As in :mod:`multilinear.torch._ops`, the autograd formula of the forward is the backward op and that of
the backward is the double-backward op; third derivatives are not provided.
"""

from __future__ import annotations

import torch
from torch import Tensor

from multilinear.torch._buffers import empty_output
from multilinear.torch._registry import kernels_for

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_GRAPH_NAMES = (
    "receivers",
    "senders",
    "receiver_order",
    "receiver_pointer",
    "sender_order",
    "sender_pointer",
)


def _as_array(tensor: Tensor, name: str, expected: torch.dtype):
    if tensor.dtype != expected:
        raise TypeError(f"{name} must have dtype {expected}, got {tensor.dtype}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got device {tensor.device}")
    return tensor.detach().contiguous().numpy()


def _setup(handle: int, graph: tuple[Tensor, ...]):
    from multilinear.kernels.tp_conv import ConvGraph

    kernels = kernels_for(handle)
    arrays = [_as_array(t, name, torch.int64) for t, name in zip(graph, _GRAPH_NAMES)]
    return kernels, _TORCH_DTYPES[kernels.spec.dtype], ConvGraph.from_parts(*arrays)


# ---------------------------------------------------------------------------------------------- forward


@torch.library.custom_op("multilinear::tp_conv_forward", mutates_args=(), device_types="cpu")
def tp_conv_forward(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    receivers: Tensor,
    senders: Tensor,
    receiver_order: Tensor,
    receiver_pointer: Tensor,
    sender_order: Tensor,
    sender_pointer: Tensor,
    handle: int,
) -> Tensor:
    """``out[r] = sum over edges e into r of TP(x[senders[e]], y[e], w[e])``, shape ``(V, dim_out)``."""
    graph_tensors = (receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer)
    kernels, dtype, graph = _setup(handle, graph_tensors)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    out = empty_output((x.shape[0], kernels.spec.dim_out), dtype)
    kernels.forward(xa, ya, wa, out.numpy(), graph)
    return out


@tp_conv_forward.register_fake
def _tp_conv_forward_fake(
    x, y, w, receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer, handle
):
    return x.new_empty((x.shape[0], kernels_for(handle).spec.dim_out))


# --------------------------------------------------------------------------------------------- backward


@torch.library.custom_op("multilinear::tp_conv_backward", mutates_args=(), device_types="cpu")
def tp_conv_backward(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    grad_out: Tensor,
    receivers: Tensor,
    senders: Tensor,
    receiver_order: Tensor,
    receiver_pointer: Tensor,
    sender_order: Tensor,
    sender_pointer: Tensor,
    handle: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``<grad_out, conv(x, y, w)>`` w.r.t. x, y and w (w's gradient has w's shape)."""
    graph_tensors = (receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer)
    kernels, dtype, graph = _setup(handle, graph_tensors)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    ga = _as_array(grad_out, "grad_out", dtype)
    grad_x, grad_y, grad_w = (empty_output(t.shape, dtype) for t in (x, y, w))
    kernels.backward(xa, ya, wa, ga, grad_x.numpy(), grad_y.numpy(), grad_w.numpy(), graph)
    return grad_x, grad_y, grad_w


@tp_conv_backward.register_fake
def _tp_conv_backward_fake(
    x,
    y,
    w,
    grad_out,
    receivers,
    senders,
    receiver_order,
    receiver_pointer,
    sender_order,
    sender_pointer,
    handle,
):
    return torch.empty_like(x), torch.empty_like(y), torch.empty_like(w)


# -------------------------------------------------------------------------------------- double backward


@torch.library.custom_op("multilinear::tp_conv_double_backward", mutates_args=(), device_types="cpu")
def tp_conv_double_backward(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    grad_out: Tensor,
    gg_x: Tensor | None,
    gg_y: Tensor | None,
    gg_w: Tensor | None,
    receivers: Tensor,
    senders: Tensor,
    receiver_order: Tensor,
    receiver_pointer: Tensor,
    sender_order: Tensor,
    sender_pointer: Tensor,
    handle: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``<gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` w.r.t. x, y, w and grad_out."""
    graph_tensors = (receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer)
    kernels, dtype, graph = _setup(handle, graph_tensors)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    ga = _as_array(grad_out, "grad_out", dtype)
    gxa = None if gg_x is None else _as_array(gg_x, "gg_x", dtype)
    gya = None if gg_y is None else _as_array(gg_y, "gg_y", dtype)
    gwa = None if gg_w is None else _as_array(gg_w, "gg_w", dtype)
    outs = [empty_output(t.shape, dtype) for t in (x, y, w, grad_out)]
    kernels.double_backward(xa, ya, wa, ga, gxa, gya, gwa, *(t.numpy() for t in outs), graph)
    return tuple(outs)


@tp_conv_double_backward.register_fake
def _tp_conv_double_backward_fake(
    x,
    y,
    w,
    grad_out,
    gg_x,
    gg_y,
    gg_w,
    receivers,
    senders,
    receiver_order,
    receiver_pointer,
    sender_order,
    sender_pointer,
    handle,
):
    return torch.empty_like(x), torch.empty_like(y), torch.empty_like(w), torch.empty_like(grad_out)


# ------------------------------------------------------------------------------------------ autograd
_NUM_GRAPH = len(_GRAPH_NAMES)


def _save_forward(ctx, inputs, output) -> None:
    x, y, w, *graph, handle = inputs
    ctx.save_for_backward(x, y, w, *graph)
    ctx.handle = handle
    ctx.set_materialize_grads(False)


def _forward_grad(ctx, grad_out):
    nones = (None,) * (_NUM_GRAPH + 1)
    if grad_out is None:
        return (None, None, None, *nones)
    x, y, w, *graph = ctx.saved_tensors
    grad_x, grad_y, grad_w = tp_conv_backward(x, y, w, grad_out, *graph, ctx.handle)
    needs = ctx.needs_input_grad
    return (grad_x if needs[0] else None, grad_y if needs[1] else None, grad_w if needs[2] else None, *nones)


def _save_backward(ctx, inputs, output) -> None:
    x, y, w, grad_out, *graph, handle = inputs
    ctx.save_for_backward(x, y, w, grad_out, *graph)
    ctx.handle = handle
    ctx.set_materialize_grads(False)


def _backward_grad(ctx, gg_x, gg_y, gg_w):
    nones = (None,) * (_NUM_GRAPH + 1)
    if gg_x is None and gg_y is None and gg_w is None:
        return (None, None, None, None, *nones)
    x, y, w, grad_out, *graph = ctx.saved_tensors
    grads = tp_conv_double_backward(x, y, w, grad_out, gg_x, gg_y, gg_w, *graph, ctx.handle)
    needs = ctx.needs_input_grad
    return (*(g if need else None for g, need in zip(grads, needs[:4])), *nones)


tp_conv_forward.register_autograd(_forward_grad, setup_context=_save_forward)
tp_conv_backward.register_autograd(_backward_grad, setup_context=_save_backward)
