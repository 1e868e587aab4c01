"""``TPProblem``: a Clebsch-Gordan tensor product described exactly as e3nn's ``o3.TensorProduct``.

A problem is plain data (numpy only): three ``Irreps``, a list of instructions ``(i_in1, i_in2, i_out,
mode, has_weight[, path_weight])`` and e3nn's normalisation options. It computes every path's coefficient
the way e3nn's ``TensorProduct.__init__`` does and lays the weights out in e3nn's order, so e3nn weights
work unchanged, and it turns itself into the kernel contract with :meth:`TPProblem.kernel_spec`.

Coefficient of a path (e3nn 0.6)::

    alpha = {"component": dim(ir_out), "norm": dim(ir_in1) * dim(ir_in2), "none": 1}[irrep_normalization]
    x = {"element": sum over paths q into the same output of in1_var[q] * in2_var[q] * num_elements(q),
         "path":    in1_var * in2_var * num_elements(path) * (number of paths into the same output),
         "none":    1}[path_normalization]
    coefficient = sqrt(alpha / x * out_var[i_out] * path_weight)        (no division when x == 0)

with ``num_elements`` = ``mul1 * mul2`` for "uvw", ``mul2`` for "uvu", ``mul1`` for "uvv" and 1 for "uuu".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from multilinear._core.validation import check_choice
from multilinear.equivariant.irreps import Irreps

SUPPORTED_MODES = ("uvw", "uvu", "uvv", "uuu")
# e3nn modes that this package does not implement (yet): a clear NotImplementedError names them.
UNSUPPORTED_E3NN_MODES = ("uuw", "uvuv", "uvu<v", "u<vw")
IRREP_NORMALIZATIONS = ("component", "norm", "none")
PATH_NORMALIZATIONS = ("element", "path", "none")


class Instruction(NamedTuple):
    """One path, like e3nn's ``Instruction``: ``path_weight`` is the FINAL coefficient (all normalisation in).

    ``path_shape`` is the shape of the path's weights (``(mul1, mul2, mul_out)`` for "uvw", ``(mul1, mul2)``
    for "uvu"/"uvv", ``(mul1,)`` for "uuu"); a path with ``has_weight=False`` has no weights in the flat
    weight vector.
    """

    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: tuple[int, ...]


def _num_elements(mode: str, mul1: int, mul2: int) -> int:
    return {"uvw": mul1 * mul2, "uvu": mul2, "uvv": mul1, "uuu": 1}[mode]


def _path_shape(mode: str, mul1: int, mul2: int, mul_out: int) -> tuple[int, ...]:
    return {"uvw": (mul1, mul2, mul_out), "uvu": (mul1, mul2), "uvv": (mul1, mul2), "uuu": (mul1,)}[mode]


def _check_variances(values: Any, name: str, irreps: Irreps) -> tuple[float, ...]:
    if values is None:
        return tuple(1.0 for _ in irreps)
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a sequence of numbers, one per entry of {irreps!r}, got {values!r}"
        ) from None
    if len(out) != len(irreps):
        raise ValueError(
            f"{name} must have one value per entry of irreps {irreps!r} ({len(irreps)}), got {len(out)}"
        )
    if not all(math.isfinite(v) and v >= 0 for v in out):
        raise ValueError(f"{name} must hold finite numbers >= 0, got {out}")
    return out


def _check_index(value: Any, name: str, position: int, irreps: Irreps, which: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"instruction {position}: {name} must be an integer, got {type(value).__name__} {value!r}"
        )
    if not 0 <= value < len(irreps):
        raise ValueError(
            f"instruction {position}: {name}={value} is out of range for {which} {irreps!r} "
            f"({len(irreps)} entries)"
        )
    return int(value)


def _canonical_instruction(raw: Any, position: int, irreps: tuple[Irreps, Irreps, Irreps]) -> tuple:
    """Validate one user instruction; return ``(i_in1, i_in2, i_out, mode, has_weight, path_weight)``."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) not in (5, 6):
        raise ValueError(
            f"instruction {position} must be a tuple (i_in1, i_in2, i_out, mode, has_weight[, path_weight]), "
            f"got {raw!r}"
        )
    in1, in2, out = irreps
    i_in1 = _check_index(raw[0], "i_in1", position, in1, "irreps_in1")
    i_in2 = _check_index(raw[1], "i_in2", position, in2, "irreps_in2")
    i_out = _check_index(raw[2], "i_out", position, out, "irreps_out")
    mode = raw[3]
    if mode in UNSUPPORTED_E3NN_MODES:
        raise NotImplementedError(
            f"instruction {position}: connection mode {mode!r} is not implemented; supported modes are "
            f"{', '.join(SUPPORTED_MODES)}"
        )
    if mode not in SUPPORTED_MODES:
        raise ValueError(
            f"instruction {position}: unknown connection mode {mode!r}; supported modes are "
            f"{', '.join(SUPPORTED_MODES)}"
        )
    has_weight = raw[4]
    if not isinstance(has_weight, (bool, np.bool_)):
        raise TypeError(f"instruction {position}: has_weight must be a bool, got {type(has_weight).__name__}")
    if mode == "uvw" and not has_weight:
        raise ValueError(f"instruction {position}: mode 'uvw' needs has_weight=True (as in e3nn)")
    path_weight = 1.0 if len(raw) == 5 else raw[5]
    try:
        path_weight = float(path_weight)
    except (TypeError, ValueError):
        raise TypeError(
            f"instruction {position}: path_weight must be a number, got {path_weight!r}"
        ) from None
    if not math.isfinite(path_weight) or path_weight < 0:
        raise ValueError(f"instruction {position}: path_weight must be finite and >= 0, got {path_weight}")

    (mul1, ir1), (mul2, ir2), (mul_out, ir_out) = in1[i_in1], in2[i_in2], out[i_out]
    if ir1.p * ir2.p != ir_out.p:
        raise ValueError(
            f"instruction {position}: parity rule violated: {ir1} x {ir2} cannot give {ir_out} "
            f"(parity {ir1.p} * {ir2.p} != {ir_out.p})"
        )
    if not abs(ir1.l - ir2.l) <= ir_out.l <= ir1.l + ir2.l:
        raise ValueError(
            f"instruction {position}: triangle rule violated: {ir1} x {ir2} cannot give {ir_out} "
            f"(need |{ir1.l} - {ir2.l}| <= {ir_out.l} <= {ir1.l} + {ir2.l})"
        )
    if mode == "uvu" and mul_out != mul1:
        raise ValueError(
            f"instruction {position}: mode 'uvu' needs mul of irreps_out[{i_out}] ({mul_out}) == mul of "
            f"irreps_in1[{i_in1}] ({mul1})"
        )
    if mode == "uvv" and mul_out != mul2:
        raise ValueError(
            f"instruction {position}: mode 'uvv' needs mul of irreps_out[{i_out}] ({mul_out}) == mul of "
            f"irreps_in2[{i_in2}] ({mul2})"
        )
    if mode == "uuu" and not mul1 == mul2 == mul_out:
        raise ValueError(
            f"instruction {position}: mode 'uuu' needs equal multiplicities, got irreps_in1[{i_in1}] {mul1}, "
            f"irreps_in2[{i_in2}] {mul2}, irreps_out[{i_out}] {mul_out}"
        )
    return (i_in1, i_in2, i_out, mode, bool(has_weight), path_weight)


def _dtype_name(dtype: Any, what: str) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in ("float32", "float64"):
        raise TypeError(f"{what} must be float32 or float64, got {dtype!r}")
    return name


@dataclass(frozen=True, init=False)
class TPProblem:
    """A tensor product ``z = sum over paths`` of weighted Clebsch-Gordan products, e3nn-compatible.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps or str
        Irreps of ``x`` ``(batch, irreps_in1.dim)``, ``y`` ``(batch, irreps_in2.dim)`` and ``z``.
    instructions : sequence of tuple
        e3nn instructions ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])``, ``mode`` one of
        "uvw", "uvu", "uvv", "uuu" (see ``multilinear.kernels.tp_spec`` for what each computes).
    in1_var, in2_var, out_var : sequence of float, optional
        e3nn's variances, one per entry of the matching irreps (default all 1).
    irrep_normalization : {"component", "norm", "none"}
        ``None`` means "component" (e3nn's default).
    path_normalization : {"element", "path", "none"}
        ``None`` means "element" (e3nn's default).
    shared_weights : bool
        One weight vector ``(weight_numel,)`` for the whole batch, rather than ``(batch, weight_numel)``.
    internal_weights : bool
        Whether a framework binding should own the weights as a parameter (needs ``shared_weights``).
    irrep_dtype : numpy float32 or float64
        Precision of the features and weights the front ends accept.

    Attributes
    ----------
    instructions : tuple of Instruction
        Like e3nn's ``TensorProduct.instructions``: ``path_weight`` holds the final coefficient.
    input_instructions : tuple of tuple
        The instructions as given, each completed to six entries (what e3nn's constructor takes).
    weight_numel : int
        Length of the flat weight vector (e3nn's order: instruction by instruction, row-major
        ``path_shape``).
    """

    irreps_in1: Irreps
    irreps_in2: Irreps
    irreps_out: Irreps
    input_instructions: tuple[tuple, ...]
    instructions: tuple[Instruction, ...]
    in1_var: tuple[float, ...]
    in2_var: tuple[float, ...]
    out_var: tuple[float, ...]
    irrep_normalization: str
    path_normalization: str
    shared_weights: bool
    internal_weights: bool
    irrep_dtype: type
    weight_numel: int

    def __init__(
        self,
        irreps_in1: Any,
        irreps_in2: Any,
        irreps_out: Any,
        instructions: Sequence[tuple],
        *,
        in1_var: Sequence[float] | None = None,
        in2_var: Sequence[float] | None = None,
        out_var: Sequence[float] | None = None,
        irrep_normalization: str | None = "component",
        path_normalization: str | None = "element",
        shared_weights: bool = False,
        internal_weights: bool = False,
        irrep_dtype: Any = np.float32,
    ) -> None:
        in1, in2, out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        # e3nn's None means its default
        irrep_normalization = "component" if irrep_normalization is None else irrep_normalization
        path_normalization = "element" if path_normalization is None else path_normalization
        check_choice(irrep_normalization, "irrep_normalization", IRREP_NORMALIZATIONS)
        check_choice(path_normalization, "path_normalization", PATH_NORMALIZATIONS)
        for name, flag in (("shared_weights", shared_weights), ("internal_weights", internal_weights)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}")
        if internal_weights and not shared_weights:
            raise ValueError(
                "internal_weights=True needs shared_weights=True (one weight vector owned by the layer)"
            )
        dtype = np.dtype(_dtype_name(irrep_dtype, "irrep_dtype")).type
        if isinstance(instructions, (str, bytes)) or not isinstance(instructions, Sequence):
            raise TypeError(f"instructions must be a sequence of tuples, got {type(instructions).__name__}")
        given = tuple(_canonical_instruction(raw, n, (in1, in2, out)) for n, raw in enumerate(instructions))
        var1 = _check_variances(in1_var, "in1_var", in1)
        var2 = _check_variances(in2_var, "in2_var", in2)
        var_out = _check_variances(out_var, "out_var", out)

        final = []
        for i_in1, i_in2, i_out, mode, has_weight, path_weight in given:
            mul1, ir1 = in1[i_in1]
            mul2, ir2 = in2[i_in2]
            mul_out, ir_out = out[i_out]
            alpha = {"component": ir_out.dim, "norm": ir1.dim * ir2.dim, "none": 1}[irrep_normalization]
            if path_normalization == "element":
                x = sum(
                    var1[q[0]] * var2[q[1]] * _num_elements(q[3], in1[q[0]].mul, in2[q[1]].mul)
                    for q in given
                    if q[2] == i_out
                )
            elif path_normalization == "path":
                x = var1[i_in1] * var2[i_in2] * _num_elements(mode, mul1, mul2)
                x *= sum(1 for q in given if q[2] == i_out)
            else:
                x = 1
            alpha = float(alpha)
            if x > 0.0:
                alpha /= x
            alpha *= var_out[i_out]
            alpha *= path_weight
            final.append(
                Instruction(
                    i_in1,
                    i_in2,
                    i_out,
                    mode,
                    has_weight,
                    math.sqrt(alpha),
                    _path_shape(mode, mul1, mul2, mul_out),
                )
            )
        weight_numel = sum(math.prod(ins.path_shape) for ins in final if ins.has_weight)

        set_field = object.__setattr__
        set_field(self, "irreps_in1", in1)
        set_field(self, "irreps_in2", in2)
        set_field(self, "irreps_out", out)
        set_field(self, "input_instructions", given)
        set_field(self, "instructions", tuple(final))
        set_field(self, "in1_var", var1)
        set_field(self, "in2_var", var2)
        set_field(self, "out_var", var_out)
        set_field(self, "irrep_normalization", irrep_normalization)
        set_field(self, "path_normalization", path_normalization)
        set_field(self, "shared_weights", bool(shared_weights))
        set_field(self, "internal_weights", bool(internal_weights))
        set_field(self, "irrep_dtype", dtype)
        set_field(self, "weight_numel", weight_numel)

    def kernel_spec(self, dtype: Any = None):
        """The kernel contract for this problem: a ``multilinear.kernels.tp_spec.TPKernelSpec``.

        Parameters
        ----------
        dtype : {"float32", "float64"} or numpy dtype, optional
            Precision of the kernels; default ``irrep_dtype``.

        Paths with a zero multiplicity are left out (they contribute nothing and own no weights); CG
        entries with ``|value| <= 1e-12`` are dropped. The result is cached per problem and dtype.
        """
        name = _dtype_name(self.irrep_dtype if dtype is None else dtype, "dtype")
        return _kernel_spec(self, name)

    def weight_slices(self) -> list[slice | None]:
        """For each instruction, its range in the flat weight vector (``None`` for a path without weights)."""
        out: list[slice | None] = []
        start = 0
        for ins in self.instructions:
            if ins.has_weight:
                size = math.prod(ins.path_shape)
                out.append(slice(start, start + size))
                start += size
            else:
                out.append(None)
        return out

    def forward_flops(self, batch: int) -> int:
        """Floating-point operations of one forward pass, the convention of the project's benchmarks.

        Per sample and path: ``2 * nnz(CG) * pairs`` (a multiply-add per nonzero CG entry and channel pair;
        ``pairs`` = ``mul1 * mul2``, or ``mul1`` for "uuu") plus, for a weighted path,
        ``weights_per_path * dim_out`` for the weight contraction. For MACE-large at batch 10,000 this is
        0.64 GFLOP.
        """
        spec = self.kernel_spec("float64")
        per_sample = 0
        for path in spec.paths:
            pairs = path.mul_in1 if path.mode == "uuu" else path.mul_in1 * path.mul_in2
            per_sample += 2 * len(path.cg) * pairs + path.weights_per_path * path.dim_out
        return int(batch) * per_sample

    def forward_bytes(self, batch: int, dtype: Any = None) -> int:
        """Bytes a forward pass must move at least: read x, y, W (per-sample or shared) and write z once."""
        itemsize = np.dtype(_dtype_name(self.irrep_dtype if dtype is None else dtype, "dtype")).itemsize
        weights = self.weight_numel if self.shared_weights else int(batch) * self.weight_numel
        features = int(batch) * (self.irreps_in1.dim + self.irreps_in2.dim + self.irreps_out.dim)
        return itemsize * (features + weights)

    def e3nn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that build the identical ``e3nn.o3.TensorProduct`` (irreps as strings)."""
        return {
            "irreps_in1": str(self.irreps_in1),
            "irreps_in2": str(self.irreps_in2),
            "irreps_out": str(self.irreps_out),
            "instructions": [tuple(ins) for ins in self.input_instructions],
            "in1_var": list(self.in1_var),
            "in2_var": list(self.in2_var),
            "out_var": list(self.out_var),
            "irrep_normalization": self.irrep_normalization,
            "path_normalization": self.path_normalization,
            "shared_weights": self.shared_weights,
            "internal_weights": self.internal_weights,
        }

    def __repr__(self) -> str:
        return (
            f"TPProblem({self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out} | "
            f"{len(self.instructions)} paths | {self.weight_numel} weights | "
            f"{'shared' if self.shared_weights else 'per-sample'} weights | {np.dtype(self.irrep_dtype).name})"
        )


@functools.lru_cache(maxsize=256)
def _kernel_spec(problem: TPProblem, dtype: str):
    from multilinear.equivariant.clebsch_gordan import nonzero_entries
    from multilinear.kernels.tp_spec import TPKernelSpec, TPPathSpec

    off1, off2, off_out = (
        problem.irreps_in1.offsets(),
        problem.irreps_in2.offsets(),
        problem.irreps_out.offsets(),
    )
    paths = []
    for ins, weights in zip(problem.instructions, problem.weight_slices()):
        mul1, ir1 = problem.irreps_in1[ins.i_in1]
        mul2, ir2 = problem.irreps_in2[ins.i_in2]
        mul_out, ir_out = problem.irreps_out[ins.i_out]
        if 0 in (mul1, mul2, mul_out):
            continue
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
                weight_offset=-1 if weights is None else weights.start,
                coefficient=float(ins.path_weight),
                cg=nonzero_entries(ir1.l, ir2.l, ir_out.l),
            )
        )
    return TPKernelSpec(
        dim_in1=problem.irreps_in1.dim,
        dim_in2=problem.irreps_in2.dim,
        dim_out=problem.irreps_out.dim,
        weight_numel=problem.weight_numel,
        shared_weights=problem.shared_weights,
        dtype=dtype,
        paths=tuple(paths),
    )
