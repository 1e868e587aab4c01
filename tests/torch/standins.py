"""Stand-ins independent of the equivariant front end and the generated kernels.

- ``spec_from_e3nn(module, dtype)`` builds a ``TPKernelSpec`` straight from an ``e3nn.o3.TensorProduct``
  (its normalised instructions and ``o3.wigner_3j``), so the op layer can be checked against e3nn without
  going through ``TPProblem``.
- ``ReferenceKernels(spec)`` has the ``TPKernels`` interface but computes with the einsum oracle in
  ``tests/reference/tensor_product.py``, so the ops' plumbing (shapes, autograd chaining, opcheck) is tested
  on its own, separately from the numba kernels.
"""

from __future__ import annotations

import math

import numpy as np

from multilinear.kernels.tp_spec import TPKernelSpec, TPPathSpec
from tests.reference.tensor_product import (
    reference_backward,
    reference_double_backward,
    reference_forward,
)


def spec_from_e3nn(module, dtype: str) -> TPKernelSpec:
    """The kernel spec of an ``e3nn.o3.TensorProduct`` (instructions already normalised by e3nn)."""
    from e3nn import o3

    def offsets(irreps):
        starts, total = [], 0
        for mul, ir in irreps:
            starts.append(total)
            total += mul * ir.dim
        return starts

    off1, off2, off_out = offsets(module.irreps_in1), offsets(module.irreps_in2), offsets(module.irreps_out)
    paths, weight_offset = [], 0
    for ins in module.instructions:
        mul1, ir1 = module.irreps_in1[ins.i_in1]
        mul2, ir2 = module.irreps_in2[ins.i_in2]
        mul_out, ir_out = module.irreps_out[ins.i_out]
        if 0 in ins.path_shape:
            continue
        w3j = o3.wigner_3j(ir1.l, ir2.l, ir_out.l, dtype=__import__("torch").float64).numpy()
        cg = tuple(
            (int(i), int(j), int(k), float(w3j[i, j, k])) for i, j, k in zip(*np.nonzero(np.abs(w3j) > 1e-13))
        )
        paths.append(
            TPPathSpec(
                mode=ins.connection_mode,
                mul_in1=mul1,
                mul_in2=mul2,
                mul_out=mul_out,
                dim_in1=ir1.dim,
                dim_in2=ir2.dim,
                dim_out=ir_out.dim,
                offset_in1=off1[ins.i_in1],
                offset_in2=off2[ins.i_in2],
                offset_out=off_out[ins.i_out],
                weight_offset=weight_offset if ins.has_weight else -1,
                coefficient=float(ins.path_weight),
                cg=cg,
            )
        )
        if ins.has_weight:
            weight_offset += math.prod(ins.path_shape)
    return TPKernelSpec(
        dim_in1=module.irreps_in1.dim,
        dim_in2=module.irreps_in2.dim,
        dim_out=module.irreps_out.dim,
        weight_numel=module.weight_numel,
        shared_weights=module.shared_weights,
        dtype=dtype,
        paths=tuple(paths),
    )


class ReferenceKernels:
    """The ``TPKernels`` interface over the einsum oracle (float64 inside, cast into the outputs)."""

    def __init__(self, spec: TPKernelSpec) -> None:
        self.spec = spec

    def forward(self, x, y, w, out) -> None:
        out[...] = reference_forward(self.spec, x, y, w)

    def backward(self, x, y, w, grad_out, grad_x, grad_y, grad_w) -> None:
        gx, gy, gw = reference_backward(self.spec, x, y, w, grad_out)
        grad_x[...], grad_y[...], grad_w[...] = gx, gy, gw

    def double_backward(self, x, y, w, grad_out, gg_x, gg_y, gg_w, out_x, out_y, out_w, out_grad_out) -> None:
        ox, oy, ow, og = reference_double_backward(self.spec, x, y, w, grad_out, gg_x, gg_y, gg_w)
        out_x[...], out_y[...], out_w[...], out_grad_out[...] = ox, oy, ow, og
