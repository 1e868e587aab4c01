"""Plain-numpy oracle for the fused tensor-product convolution: gather, per-edge TP, scatter-sum.

``out[r] = sum over edges e with receivers[e] == r of TP(x[senders[e]], y[e], w[e])``. Built from the
per-edge oracle in :mod:`tests.reference.tensor_product` with explicit gathers (``x[senders]``) and
scatters (``numpy.add.at``), in float64: this is the slow, obviously correct path (it materialises the
``(E, dim_out)`` per-edge outputs that the fused kernels avoid).
"""

from __future__ import annotations

import numpy as np

from multilinear.kernels.tp_spec import TPKernelSpec
from tests.reference.tensor_product import (
    reference_backward,
    reference_double_backward,
    reference_forward,
)


def _scatter(values: np.ndarray, index: np.ndarray, num_nodes: int) -> np.ndarray:
    out = np.zeros((num_nodes, values.shape[1]))
    np.add.at(out, index, values)
    return out


def reference_conv_forward(spec: TPKernelSpec, x, y, w, receivers, senders) -> np.ndarray:
    """``(V, dim_out)`` float64."""
    x = np.asarray(x, dtype=np.float64)
    per_edge = reference_forward(spec, x[senders], y, w)
    return _scatter(per_edge, receivers, x.shape[0])


def reference_conv_backward(spec: TPKernelSpec, x, y, w, grad_out, receivers, senders):
    """Gradients of ``<grad_out, conv(x, y, w)>``: ``(grad_x (V, d1), grad_y (E, d2), grad_w)``."""
    x = np.asarray(x, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    gx_edge, grad_y, grad_w = reference_backward(spec, x[senders], y, w, grad_out[receivers])
    return _scatter(gx_edge, senders, x.shape[0]), grad_y, grad_w


def reference_conv_double_backward(
    spec: TPKernelSpec, x, y, w, grad_out, gg_x, gg_y, gg_w, receivers, senders
):
    """Gradients of ``<gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>``: ``(out_x, out_y, out_w, out_grad_out)``.

    With ``X = x[senders]`` and ``g_e = grad_out[receivers]`` the loss equals the per-edge loss with
    ``gg_X = gg_x[senders]`` (``<gg_x, scatter(v)> = <gather(gg_x), v>``), so the per-edge oracle applies
    and its x and grad_out results scatter back to nodes.
    """
    x = np.asarray(x, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    gg_edge = None if gg_x is None else np.asarray(gg_x, dtype=np.float64)[senders]
    out_x_edge, out_y, out_w, out_g_edge = reference_double_backward(
        spec, x[senders], y, w, grad_out[receivers], gg_edge, gg_y, gg_w
    )
    num_nodes = x.shape[0]
    return _scatter(out_x_edge, senders, num_nodes), out_y, out_w, _scatter(out_g_edge, receivers, num_nodes)
