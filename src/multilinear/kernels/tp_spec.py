"""The contract between the equivariant front end and the tensor-product kernels.

A ``TPKernelSpec`` says everything a kernel generator needs and nothing about ``Irreps``: array widths,
and for each path its multiplicities, the segment offsets in x, y, z and W, one scalar coefficient and the
nonzero Clebsch-Gordan entries. It is plain data (no numba), hashable, and has a stable ``key()`` that names
generated code on disk.

Layout (e3nn's): a segment of ``mul`` copies of an irrep of dimension ``d`` occupies ``mul * d`` consecutive
columns, row-major ``(mul, d)``: column ``offset + u * d + i``. A path's weights occupy
``weights_per_path`` consecutive entries from ``weight_offset``, row-major over the mode's weight indices:

=====  ======================  =========================================================================
mode   weight shape            contribution (c = coefficient, C = CG block, sums over every free index)
=====  ======================  =========================================================================
uvw    (mul1, mul2, mul_out)   z[w, k] += c * W[u, v, w] * C[i, j, k] * x[u, i] * y[v, j]
uvu    (mul1, mul2)            z[u, k] += c * W[u, v]    * C[i, j, k] * x[u, i] * y[v, j]   (mul_out == mul1)
uvv    (mul1, mul2)            z[v, k] += c * W[u, v]    * C[i, j, k] * x[u, i] * y[v, j]   (mul_out == mul2)
uuu    (mul1,)                 z[u, k] += c * W[u]       * C[i, j, k] * x[u, i] * y[u, j]   (all muls equal)
=====  ======================  =========================================================================

A path without weights (``weight_offset == -1``) uses W = 1 in the same formula (e3nn sums over v for
"uvu" without weights as well). Per-sample weights are ``(batch, weight_numel)``; shared weights are
``(weight_numel,)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MODES = ("uvw", "uvu", "uvv", "uuu")


@dataclass(frozen=True)
class TPPathSpec:
    """One path (instruction) of a tensor product, in array terms."""

    mode: str
    mul_in1: int
    mul_in2: int
    mul_out: int
    dim_in1: int  # 2 l1 + 1
    dim_in2: int
    dim_out: int
    offset_in1: int  # first column of this path's x segment
    offset_in2: int
    offset_out: int
    weight_offset: int  # first weight of this path, -1 when the path has none
    coefficient: float  # normalisation x path weight; multiplies every term of the path
    cg: tuple[tuple[int, int, int, float], ...]  # nonzero (i, j, k, value) of the CG block

    @property
    def has_weight(self) -> bool:
        return self.weight_offset >= 0

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.mode == "uvw":
            return (self.mul_in1, self.mul_in2, self.mul_out)
        if self.mode in ("uvu", "uvv"):
            return (self.mul_in1, self.mul_in2)
        return (self.mul_in1,)

    @property
    def weights_per_path(self) -> int:
        n = 1
        for s in self.weight_shape:
            n *= s
        return n if self.has_weight else 0


@dataclass(frozen=True)
class TPKernelSpec:
    """A whole tensor product: ``z = sum over paths`` of the contributions in the module docstring."""

    dim_in1: int
    dim_in2: int
    dim_out: int
    weight_numel: int
    shared_weights: bool
    dtype: str  # "float32" | "float64"
    paths: tuple[TPPathSpec, ...]

    def key(self) -> str:
        """A stable hex digest of the whole spec (CG values at full precision): names generated code."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:24]
