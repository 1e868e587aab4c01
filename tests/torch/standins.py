"""A stand-in for the generated kernels (specs come from ``tests.reference.tensor_product.spec_from_e3nn``).

- ``ReferenceKernels(spec)`` has the ``TPKernels`` interface but computes with the einsum oracle in
  ``tests/reference/tensor_product.py``, so the ops' plumbing (shapes, autograd chaining, opcheck) is tested
  on its own, separately from the numba kernels.
"""

from __future__ import annotations

from multilinear.kernels.tp_spec import TPKernelSpec
from tests.reference.tensor_product import (
    reference_backward,
    reference_double_backward,
    reference_forward,
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
