"""Plain-numpy oracle for the tensor-product kernels, written straight from the table in ``tp_spec.py``.

Every path is one ``numpy.einsum`` over a dense Clebsch-Gordan block, in float64, whatever the spec's
dtype. The gradients use the same subscripts with the roles of the operands swapped: the contribution of a
path is multilinear in (W, x, y), so the gradient of ``<grad_out, z>`` with respect to one operand is the
einsum of the other operands and ``grad_out`` into that operand's subscripts.

Subscripts: ``b`` batch, ``u v w`` channels (multiplicities), ``i j k`` irrep components.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from multilinear.kernels.tp_spec import TPKernelSpec, TPPathSpec

# (W, x, y, z) subscripts per mode, without the batch index; from the table in tp_spec.py.
_SUBSCRIPTS: dict[str, tuple[str, str, str, str]] = {
    "uvw": ("uvw", "ui", "vj", "wk"),
    "uvu": ("uv", "ui", "vj", "uk"),
    "uvv": ("uv", "ui", "vj", "vk"),
    "uuu": ("u", "ui", "uj", "uk"),
}


def dense_cg(path: TPPathSpec) -> np.ndarray:
    """The CG block of ``path`` as a dense ``(dim_in1, dim_in2, dim_out)`` float64 array."""
    block = np.zeros((path.dim_in1, path.dim_in2, path.dim_out))
    for i, j, k, value in path.cg:
        block[i, j, k] += value
    return block


def _segments(spec: TPKernelSpec, path: TPPathSpec, x, y, w):
    """Views of one path's operands: x (B, mul1, d1), y (B, mul2, d2), W (B, *weight_shape).

    A weightless path gets W = 1 (the table's formula with the weight left out).
    """
    batch = x.shape[0]
    xs = x[:, path.offset_in1 : path.offset_in1 + path.mul_in1 * path.dim_in1]
    ys = y[:, path.offset_in2 : path.offset_in2 + path.mul_in2 * path.dim_in2]
    xs = xs.reshape(batch, path.mul_in1, path.dim_in1)
    ys = ys.reshape(batch, path.mul_in2, path.dim_in2)
    if not path.has_weight:
        return xs, ys, np.ones((batch, *path.weight_shape))
    lo, hi = path.weight_offset, path.weight_offset + path.weights_per_path
    if spec.shared_weights:
        ws = np.broadcast_to(w[lo:hi].reshape(path.weight_shape), (batch, *path.weight_shape))
    else:
        ws = w[:, lo:hi].reshape(batch, *path.weight_shape)
    return xs, ys, ws


def _as64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def reference_forward(spec: TPKernelSpec, x, y, w) -> np.ndarray:
    """``z`` of shape ``(B, dim_out)``, float64. ``w`` is ``(B, weight_numel)`` or shared ``(weight_numel,)``."""
    x, y, w = _as64(x), _as64(y), _as64(w)
    batch = x.shape[0]
    z = np.zeros((batch, spec.dim_out))
    for path in spec.paths:
        xs, ys, ws = _segments(spec, path, x, y, w)
        sw, sx, sy, sz = _SUBSCRIPTS[path.mode]
        contribution = np.einsum(f"ijk,b{sx},b{sy},b{sw}->b{sz}", dense_cg(path), xs, ys, ws)
        cols = slice(path.offset_out, path.offset_out + path.mul_out * path.dim_out)
        z[:, cols] += path.coefficient * contribution.reshape(batch, path.mul_out * path.dim_out)
    return z


def reference_backward(spec: TPKernelSpec, x, y, w, grad_out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``<grad_out, forward(x, y, w)>``: ``(grad_x, grad_y, grad_w)``, float64.

    ``grad_w`` has the shape of ``w``: per-sample ``(B, weight_numel)``, or ``(weight_numel,)`` summed over
    the batch for shared weights. Entries of weightless paths do not exist, so nothing is written for them.
    """
    x, y, w, grad_out = _as64(x), _as64(y), _as64(w), _as64(grad_out)
    batch = x.shape[0]
    grad_x = np.zeros_like(x)
    grad_y = np.zeros_like(y)
    grad_w = np.zeros((spec.weight_numel,) if spec.shared_weights else (batch, spec.weight_numel))
    for path in spec.paths:
        xs, ys, ws = _segments(spec, path, x, y, w)
        sw, sx, sy, sz = _SUBSCRIPTS[path.mode]
        cols = slice(path.offset_out, path.offset_out + path.mul_out * path.dim_out)
        gs = grad_out[:, cols].reshape(batch, path.mul_out, path.dim_out)
        cg = dense_cg(path)
        c = path.coefficient
        gx = np.einsum(f"ijk,b{sy},b{sz},b{sw}->b{sx}", cg, ys, gs, ws)
        gy = np.einsum(f"ijk,b{sx},b{sz},b{sw}->b{sy}", cg, xs, gs, ws)
        grad_x[:, path.offset_in1 : path.offset_in1 + xs.shape[1] * xs.shape[2]] += c * gx.reshape(
            batch, path.mul_in1 * path.dim_in1
        )
        grad_y[:, path.offset_in2 : path.offset_in2 + ys.shape[1] * ys.shape[2]] += c * gy.reshape(
            batch, path.mul_in2 * path.dim_in2
        )
        if path.has_weight:
            out = sw if spec.shared_weights else "b" + sw
            gw = np.einsum(f"ijk,b{sx},b{sy},b{sz}->{out}", cg, xs, ys, gs)
            lo, hi = path.weight_offset, path.weight_offset + path.weights_per_path
            if spec.shared_weights:
                grad_w[lo:hi] += c * gw.reshape(-1)
            else:
                grad_w[:, lo:hi] += c * gw.reshape(batch, hi - lo)
    return grad_x, grad_y, grad_w


def reference_double_backward(
    spec: TPKernelSpec, x, y, w, grad_out, gg_x, gg_y, gg_w
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``L = <gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` w.r.t. x, y, w and grad_out.

    Here ``(grad_x, grad_y, grad_w) = reference_backward(spec, x, y, w, grad_out)``. With
    ``T(x, y, w, g) = <g, forward(x, y, w)>`` (linear in each argument), ``L = T(gg_x, y, w, g) +
    T(x, gg_y, w, g) + T(x, y, gg_w, g)``, so

    - ``out_grad_out = F(gg_x, y, w) + F(x, gg_y, w) + F'(x, y, gg_w)``
    - ``out_x = Bx(x, gg_y, w, g) + Bx'(x, y, gg_w, g)``, and likewise for y and w,

    where the primed maps run over the weighted paths only: a path without weights does not depend on w,
    so ``gg_w`` reaches only the weighted paths (plain trilinearity would wrongly add W = 1 terms).

    ``gg_*`` may be None (zero). Returns ``(out_x, out_y, out_w, out_grad_out)``, float64.
    """
    x, y, w, grad_out = _as64(x), _as64(y), _as64(w), _as64(grad_out)
    gg_x, gg_y, gg_w = _as64(gg_x), _as64(gg_y), _as64(gg_w)
    out_x = np.zeros_like(x)
    out_y = np.zeros_like(y)
    out_w = np.zeros_like(w)
    out_grad_out = np.zeros((x.shape[0], spec.dim_out))
    if gg_x is not None:
        out_grad_out += reference_forward(spec, gg_x, y, w)
        _, by, bw = reference_backward(spec, gg_x, y, w, grad_out)
        out_y += by
        out_w += bw
    if gg_y is not None:
        out_grad_out += reference_forward(spec, x, gg_y, w)
        bx, _, bw = reference_backward(spec, x, gg_y, w, grad_out)
        out_x += bx
        out_w += bw
    if gg_w is not None:
        weighted = replace(spec, paths=tuple(p for p in spec.paths if p.has_weight))
        out_grad_out += reference_forward(weighted, x, y, gg_w)
        bx, by, _ = reference_backward(weighted, x, y, gg_w, grad_out)
        out_x += bx
        out_y += by
    return out_x, out_y, out_w, out_grad_out


def spec_from_e3nn(tp, dtype: str = "float64") -> TPKernelSpec:
    """A ``TPKernelSpec`` read off an ``e3nn.o3.TensorProduct`` (a stand-in independent of ``TPProblem``).

    Coefficients are e3nn's final ``path_weight`` (all normalisation folded in); CG blocks are
    ``o3.wigner_3j`` in float64 with entries below 1e-14 dropped. Imports torch and e3nn.
    """
    import torch
    from e3nn import o3

    def offsets(irreps):
        starts, at = [], 0
        for mul, ir in irreps:
            starts.append(at)
            at += mul * ir.dim
        return starts

    off1, off2, off3 = offsets(tp.irreps_in1), offsets(tp.irreps_in2), offsets(tp.irreps_out)
    paths, weight_at = [], 0
    for ins in tp.instructions:
        mul1, ir1 = tp.irreps_in1[ins.i_in1]
        mul2, ir2 = tp.irreps_in2[ins.i_in2]
        mul3, ir3 = tp.irreps_out[ins.i_out]
        block = o3.wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64).numpy()
        cg = tuple(
            (int(i), int(j), int(k), float(block[i, j, k]))
            for i, j, k in zip(*np.nonzero(np.abs(block) > 1e-14))
        )
        path = TPPathSpec(
            mode=ins.connection_mode,
            mul_in1=mul1,
            mul_in2=mul2,
            mul_out=mul3,
            dim_in1=ir1.dim,
            dim_in2=ir2.dim,
            dim_out=ir3.dim,
            offset_in1=off1[ins.i_in1],
            offset_in2=off2[ins.i_in2],
            offset_out=off3[ins.i_out],
            weight_offset=weight_at if ins.has_weight else -1,
            coefficient=float(ins.path_weight),
            cg=cg,
        )
        weight_at += path.weights_per_path
        paths.append(path)
    if weight_at != tp.weight_numel:
        raise ValueError(f"weight count {weight_at} disagrees with e3nn's weight_numel {tp.weight_numel}")
    return TPKernelSpec(
        dim_in1=tp.irreps_in1.dim,
        dim_in2=tp.irreps_in2.dim,
        dim_out=tp.irreps_out.dim,
        weight_numel=tp.weight_numel,
        shared_weights=bool(tp.shared_weights),
        dtype=dtype,
        paths=tuple(paths),
    )
