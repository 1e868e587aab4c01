"""The tensor product as three ``torch.library`` custom ops, chained for autograd to second order.

- ``multilinear::tp_forward(x, y, w, handle) -> z``
- ``multilinear::tp_backward(x, y, w, grad_z, handle) -> (grad_x, grad_y, grad_w)``
- ``multilinear::tp_double_backward(x, y, w, grad_z, gg_x?, gg_y?, gg_w?, handle)
  -> (d_x, d_y, d_w, d_grad_z)``

The autograd formula of ``tp_forward`` is ``tp_backward``; the autograd formula of ``tp_backward`` is
``tp_double_backward``, so ``torch.autograd.grad(..., create_graph=True)`` works to second order. Third
derivatives are not provided (differentiating ``tp_double_backward`` raises).

Shapes (``B`` batch, flat 2-D, the front end reshapes): x ``(B, dim_in1)``, y ``(B, dim_in2)``, w
``(B, weight_numel)`` per sample or ``(weight_numel,)`` shared, z ``(B, dim_out)``. ``handle`` names the
kernels in :mod:`multilinear.torch._registry`; the fake (meta) implementations read output widths from the
registered spec, so ``torch.compile`` traces the ops without running them.

The CPU implementations hand ``Tensor.numpy()`` views (no copies for contiguous inputs) to the numba
kernels, which write into output tensors from :mod:`multilinear.torch._buffers` (large outputs reuse buffers the
caller has dropped, which saves the page faults of fresh allocations; see that module).
"""

from __future__ import annotations

import torch
from torch import Tensor

from multilinear.torch._buffers import empty_output
from multilinear.torch._registry import kernels_for

_NUMPY_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _as_array(tensor: Tensor, name: str, expected: torch.dtype):
    """A C-contiguous numpy view of ``tensor`` (copied only if it is not contiguous)."""
    if tensor.dtype != expected:
        raise TypeError(f"{name} must have dtype {expected}, got {tensor.dtype}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got device {tensor.device}")
    return tensor.detach().contiguous().numpy()


def _kernels_and_dtype(handle: int):
    kernels = kernels_for(handle)
    return kernels, _NUMPY_DTYPES[kernels.spec.dtype]


# ---------------------------------------------------------------------------------------------- forward


@torch.library.custom_op("multilinear::tp_forward", mutates_args=(), device_types="cpu")
def tp_forward(x: Tensor, y: Tensor, w: Tensor, handle: int) -> Tensor:
    """``z = TP(x, y, w)`` of shape ``(B, dim_out)``."""
    kernels, dtype = _kernels_and_dtype(handle)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    out = empty_output((x.shape[0], kernels.spec.dim_out), dtype)
    if x.shape[0] == 0:
        return out
    kernels.forward(xa, ya, wa, out.numpy())
    return out


@tp_forward.register_fake
def _tp_forward_fake(x: Tensor, y: Tensor, w: Tensor, handle: int) -> Tensor:
    return x.new_empty((x.shape[0], kernels_for(handle).spec.dim_out))


# --------------------------------------------------------------------------------------------- backward


@torch.library.custom_op("multilinear::tp_backward", mutates_args=(), device_types="cpu")
def tp_backward(
    x: Tensor, y: Tensor, w: Tensor, grad_out: Tensor, handle: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``<grad_out, TP(x, y, w)>`` w.r.t. x, y and w (w's gradient has w's shape)."""
    kernels, dtype = _kernels_and_dtype(handle)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    ga = _as_array(grad_out, "grad_out", dtype)
    if x.shape[0] == 0:  # nothing to sum: shared weights get a zero gradient
        return torch.zeros_like(x), torch.zeros_like(y), torch.zeros_like(w)
    grad_x, grad_y, grad_w = (empty_output(t.shape, dtype) for t in (x, y, w))
    kernels.backward(xa, ya, wa, ga, grad_x.numpy(), grad_y.numpy(), grad_w.numpy())
    return grad_x, grad_y, grad_w


@tp_backward.register_fake
def _tp_backward_fake(x: Tensor, y: Tensor, w: Tensor, grad_out: Tensor, handle: int):
    return torch.empty_like(x), torch.empty_like(y), torch.empty_like(w)


# -------------------------------------------------------------------------------------- double backward


@torch.library.custom_op("multilinear::tp_double_backward", mutates_args=(), device_types="cpu")
def tp_double_backward(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    grad_out: Tensor,
    gg_x: Tensor | None,
    gg_y: Tensor | None,
    gg_w: Tensor | None,
    handle: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``<gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` w.r.t. x, y, w and grad_out.

    ``(grad_x, grad_y, grad_w) = tp_backward(x, y, w, grad_out)``; a ``gg_*`` that is None counts as zero.
    """
    kernels, dtype = _kernels_and_dtype(handle)
    xa, ya, wa = _as_array(x, "x", dtype), _as_array(y, "y", dtype), _as_array(w, "w", dtype)
    ga = _as_array(grad_out, "grad_out", dtype)
    gxa = None if gg_x is None else _as_array(gg_x, "gg_x", dtype)
    gya = None if gg_y is None else _as_array(gg_y, "gg_y", dtype)
    gwa = None if gg_w is None else _as_array(gg_w, "gg_w", dtype)
    if x.shape[0] == 0:
        return tuple(torch.zeros_like(t) for t in (x, y, w, grad_out))
    out_x, out_y, out_w, out_grad_out = (empty_output(t.shape, dtype) for t in (x, y, w, grad_out))
    kernels.double_backward(
        xa, ya, wa, ga, gxa, gya, gwa, out_x.numpy(), out_y.numpy(), out_w.numpy(), out_grad_out.numpy()
    )
    return out_x, out_y, out_w, out_grad_out


@tp_double_backward.register_fake
def _tp_double_backward_fake(x, y, w, grad_out, gg_x, gg_y, gg_w, handle):
    return torch.empty_like(x), torch.empty_like(y), torch.empty_like(w), torch.empty_like(grad_out)


# ------------------------------------------------------------------------------------------ autograd


def _save_inputs(ctx, inputs, output) -> None:
    *tensors, handle = inputs
    ctx.save_for_backward(*tensors)
    ctx.handle = handle
    ctx.set_materialize_grads(False)


def _tp_forward_grad(ctx, grad_out):
    if grad_out is None:
        return None, None, None, None
    x, y, w = ctx.saved_tensors
    grad_x, grad_y, grad_w = tp_backward(x, y, w, grad_out, ctx.handle)
    needs = ctx.needs_input_grad
    return (grad_x if needs[0] else None, grad_y if needs[1] else None, grad_w if needs[2] else None, None)


def _tp_backward_grad(ctx, gg_x, gg_y, gg_w):
    if gg_x is None and gg_y is None and gg_w is None:
        return None, None, None, None, None
    x, y, w, grad_out = ctx.saved_tensors
    d_x, d_y, d_w, d_grad_out = tp_double_backward(x, y, w, grad_out, gg_x, gg_y, gg_w, ctx.handle)
    needs = ctx.needs_input_grad
    grads = (d_x, d_y, d_w, d_grad_out)
    return (*(g if need else None for g, need in zip(grads, needs[:4])), None)


tp_forward.register_autograd(_tp_forward_grad, setup_context=_save_inputs)
tp_backward.register_autograd(_tp_backward_grad, setup_context=_save_inputs)
