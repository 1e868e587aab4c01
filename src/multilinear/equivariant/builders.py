"""Builders for the two common kinds of tensor product: fully connected ("uvw") and channelwise ("uvu")."""

from __future__ import annotations

from typing import Any

import numpy as np

from multilinear.equivariant.irreps import Irrep, Irreps
from multilinear.equivariant.problem import TPProblem


def fully_connected_problem(irreps_in1: Any, irreps_in2: Any, irreps_out: Any, **options: Any) -> TPProblem:
    """Every allowed "uvw" path, like e3nn's ``o3.FullyConnectedTensorProduct``.

    One weighted path ``(i1, i2, i_out, "uvw", True, 1.0)`` for every entry pair of the inputs and every
    output entry whose irrep appears in ``ir1 x ir2``, enumerated in1-major, then in2, then out.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps or str
    **options
        Passed to :class:`TPProblem` (normalisations, ``shared_weights``, ``irrep_dtype``, ...). Note the
        default ``shared_weights=False``, where e3nn's default is ``True``.
    """
    in1, in2, out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
    instructions = [
        (i1, i2, i_out, "uvw", True, 1.0)
        for i1, (_, ir1) in enumerate(in1)
        for i2, (_, ir2) in enumerate(in2)
        for i_out, (_, ir_out) in enumerate(out)
        if ir_out in tuple(ir1 * ir2)
    ]
    return TPProblem(in1, in2, out, instructions, **options)


def channelwise_problem(
    irreps_in1: Any,
    irreps_in2: Any,
    irreps_out_filter: Any,
    *,
    has_weight: bool = True,
    **options: Any,
) -> TPProblem:
    """The MACE/NequIP interaction tensor product: one "uvu" path per allowed triple, outputs sorted.

    For every entry ``(mul, ir1)`` of ``irreps_in1`` (outer loop), every entry ``ir2`` of ``irreps_in2`` and
    every ``ir_out`` in ``ir1 x ir2`` (increasing ``l``) that appears in ``irreps_out_filter``, a path
    ``(i1, i2, k, "uvu", has_weight)`` writes to its own new output entry ``(mul, ir_out)``. The output
    irreps are then sorted (stably, by irrep) and each path's ``i_out`` is re-indexed to the sorted
    position; the instruction order (hence the weight layout) stays the enumeration order. This is
    MACE's ``tp_out_irreps_with_instructions`` (and NequIP's interaction block); the output irreps are not
    simplified, so a model's following linear layer sees the same segments.

    Parameters
    ----------
    irreps_in1 : Irreps or str
        Node features, e.g. ``"128x0e+128x1o+128x2e"``.
    irreps_in2 : Irreps or str
        Edge attributes (spherical harmonics), e.g. ``"0e+1o+2e+3o"``; their multiplicities are ignored
        by the selection (e3nn's "uvu" sums over them).
    irreps_out_filter : Irreps or str
        The irreps allowed in the output (multiplicities ignored).
    has_weight : bool
        Whether every path is weighted (MACE: per-edge weights from a radial MLP).
    **options
        Passed to :class:`TPProblem`.
    """
    in1, in2 = Irreps(irreps_in1), Irreps(irreps_in2)
    allowed = {Irrep(ir) for _, ir in Irreps(irreps_out_filter)}
    out_entries: list[tuple[int, Irrep]] = []
    instructions: list[tuple[int, int, int, str, bool]] = []
    for i1, (mul, ir1) in enumerate(in1):
        for i2, (_, ir2) in enumerate(in2):
            for ir_out in ir1 * ir2:
                if ir_out in allowed:
                    instructions.append((i1, i2, len(out_entries), "uvu", has_weight))
                    out_entries.append((mul, ir_out))
    sorted_out = Irreps(out_entries).sort()
    instructions = [(i1, i2, sorted_out.p[k], mode, weighted) for i1, i2, k, mode, weighted in instructions]
    return TPProblem(in1, in2, sorted_out.irreps, instructions, **options)


def problem_from_e3nn(tensor_product: Any, *, irrep_dtype: Any = np.float32) -> TPProblem:
    """The :class:`TPProblem` of an existing ``e3nn.o3.TensorProduct`` (or any object with its attributes).

    e3nn keeps only each path's final coefficient (in ``instructions[i].path_weight``), not the options
    that produced it, so the problem is built with ``irrep_normalization="none"``,
    ``path_normalization="none"`` and ``path_weight = coefficient**2``: the same products, weight layout
    and ``weight_numel`` (coefficients equal to within one rounding). Reads attributes only; imports
    nothing from torch or e3nn.

    Parameters
    ----------
    tensor_product : e3nn.o3.TensorProduct
        Its ``irreps_in1``, ``irreps_in2``, ``irreps_out``, ``instructions``, ``shared_weights`` and
        ``internal_weights`` are read.
    irrep_dtype : numpy float32 or float64
    """
    try:
        irreps = [str(getattr(tensor_product, name)) for name in ("irreps_in1", "irreps_in2", "irreps_out")]
        raw = list(tensor_product.instructions)
        shared, internal = bool(tensor_product.shared_weights), bool(tensor_product.internal_weights)
    except AttributeError as missing:
        raise TypeError(f"expected an e3nn.o3.TensorProduct-like object: {missing}") from None
    instructions = [
        (
            ins.i_in1,
            ins.i_in2,
            ins.i_out,
            ins.connection_mode,
            bool(ins.has_weight),
            float(ins.path_weight) ** 2,
        )
        for ins in raw
    ]
    return TPProblem(
        *irreps,
        instructions,
        irrep_normalization="none",
        path_normalization="none",
        shared_weights=shared,
        internal_weights=internal,
        irrep_dtype=irrep_dtype,
    )
