"""Python source generation for tensor-product kernels (plain text; no numba here).

A :class:`TPKernelSpec` becomes a module of ``@njit`` functions whose per-sample code is straight-line:
every nonzero Clebsch-Gordan entry is a multiply-add with its coefficient (path coefficient folded in) as
a literal, inside loops over channels that LLVM vectorises.

The per-sample code is emitted by :func:`emit_forward_body` / :func:`emit_backward_body` against a
:class:`RowAccess`, which names the array element expressions: the plain batch loop reads ``x[b, col]``;
a graph-convolution shell can read ``x[sender, col]`` and accumulate into ``z[receiver, col]``. An
:class:`OutputTracker` per output array decides each write: in overwrite mode the first write to a
segment that covers it is an assignment and the shell zeroes only what no such write covers (returned by
``zero_ranges``); in accumulate mode every write is ``+=`` and nothing is zeroed.

Loops, with ``c·C`` folded into literals and ``a[i, k] = Σ_j c C[i, j, k] y[j]``:

- "uvu" paths with one y channel and "uuu" paths are fused by output segment: one loop over ``u`` runs
  every such path into that segment and writes each output element once (z; grad x and grad w in the
  backward). For "uvu" the y side is contracted first, outside the loop, and grad y is a reduction over
  ``u`` in registers (it vectorises only with reassociation, hence ``fastmath``). Fusing every path with
  the same multiplicity into one loop was measured 1.5x slower on MACE-large (register spills).
  Optional per-thread scratches (``RowAccess.x_scratch`` / ``grad_x_scratch``) hold x segments read
  by several groups, and grad x segments summed by several groups, in transposed layout, so e3nn's
  interleaved layout is de-interleaved (forward) and re-interleaved (backward) once per sample.
- other "uvu", "uvv" and "uvw" paths get a loop nest each.

A weightless path multiplies by ``unit`` (1, or 0 when the caller excludes weightless paths: the double
backward's ``gg_w`` terms reach only weighted paths).
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from multilinear.kernels.tp_spec import TPKernelSpec, TPPathSpec

INDENT = "    "
# Reassociation lets LLVM vectorise the channel reductions; NaN/inf semantics are kept.
FASTMATH = '{"reassoc", "contract", "nsz", "arcp"}'


@dataclass(frozen=True)
class RowAccess:
    """Element expressions for one sample's rows: each is a format string with one ``{}`` for the column."""

    x: str = "x[b, {}]"
    y: str = "y[b, {}]"
    w: str = "w[b, {}]"
    z: str = "z[b, {}]"
    grad_out: str = "g[b, {}]"
    grad_x: str = "gx[b, {}]"
    grad_y: str = "gy[b, {}]"
    grad_w: str = "gw[b, {}]"
    # Optional per-thread scratch of grad x in transposed (component-major) layout, e.g. "gxt[{}]": the
    # backward then sums the fused groups that share an x segment there (contiguous, no shuffles) and
    # interleaves the segment into grad_x once. None: every group adds to grad_x directly.
    grad_x_scratch: str | None = None
    # Optional per-thread scratch holding x segments read by several fused groups in transposed layout,
    # e.g. "xt[{}]": each such segment is de-interleaved once per sample instead of once per group.
    x_scratch: str | None = None


class Constants:
    """Literal coefficients hoisted to the top of a kernel as ``dt(value)`` locals (one per value)."""

    def __init__(self) -> None:
        self._names: dict[float, str] = {}

    def __call__(self, value: float) -> str:
        value = float(value)
        if value not in self._names:
            self._names[value] = f"K{len(self._names)}"
        return self._names[value]

    def declarations(self) -> list[str]:
        return [f"{name} = dt({value!r})" for value, name in self._names.items()]


class Lines:
    """An indented list of source lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, depth: int, text: str) -> None:
        self.lines.append(INDENT * depth + text)


class OutputTracker:
    """Chooses ``=`` or ``+=`` for each write to one output row, in program order (see module docstring)."""

    def __init__(self, width: int, accumulate: bool) -> None:
        self.width = width
        self.accumulate = accumulate
        self._written: dict[int, int] = {}  # segment offset -> width
        self._pre_zero: list[tuple[int, int]] = []

    def op(self, offset: int, width: int, covers: bool) -> str:
        """Operator of a write to segment ``[offset, offset + width)``; ``covers``: it writes all of it."""
        if self.accumulate:
            return "+="
        if offset in self._written:
            return "+="
        self._written[offset] = width
        if covers:
            return "="
        self._pre_zero.append((offset, width))
        return "+="

    def zero_ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` column ranges the shell must zero before the body (overwrite mode)."""
        if self.accumulate:
            return []
        covered = [False] * self.width
        for offset, width in self._written.items():
            covered[offset : offset + width] = [True] * width
        for offset, width in self._pre_zero:
            covered[offset : offset + width] = [False] * width
        ranges, start = [], None
        for col in range(self.width + 1):
            uncovered = col < self.width and not covered[col]
            if uncovered and start is None:
                start = col
            elif not uncovered and start is not None:
                ranges.append((start, col))
                start = None
        return ranges


def _col(offset: int, channel: str | None, stride: int) -> str:
    """Column expression ``offset + channel * stride`` (``channel`` None means column ``offset``)."""
    if channel is None:
        return str(offset)
    return f"{offset} + {channel} * {stride}" if offset else f"{channel} * {stride}"


def _sum(terms: list[str]) -> str:
    return " + ".join(terms) if terms else "zero"


def _is_fused(path: TPPathSpec) -> bool:
    return (path.mode == "uvu" and path.mul_in2 == 1) or path.mode == "uuu"


def _used(path: TPPathSpec, slot: int) -> list[int]:
    """Sorted component indices of x (slot 0), y (1) or z (2) that appear in the path's CG entries."""
    return sorted({entry[slot] for entry in path.cg})


class _Emitter:
    """Shared state of one body: spec, element expressions, constants, lines and output trackers."""

    def __init__(self, spec: TPKernelSpec, acc: RowAccess, consts: Constants, out: Lines, trackers) -> None:
        self.spec, self.acc, self.consts, self.out, self.trackers = spec, acc, consts, out, trackers

    def weight(self, path: TPPathSpec, index: str) -> str:
        if not path.has_weight:
            return "unit"
        return self.acc.w.format(f"{path.weight_offset} + {index}" if path.weight_offset else index)

    def grad_weight(self, path: TPPathSpec, index: str) -> str:
        return self.acc.grad_w.format(f"{path.weight_offset} + {index}" if path.weight_offset else index)

    def k(self, path: TPPathSpec, value: float) -> str:
        return self.consts(path.coefficient * value)

    def fused_groups(self) -> dict[tuple, list[int]]:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, path in enumerate(self.spec.paths):
            if _is_fused(path):
                groups[(path.mul_out, path.offset_out)].append(index)
        return groups

    def y_contraction(self, index: int, path: TPPathSpec, depth: int) -> list[tuple[int, int]]:
        """Emit ``y{p}_j`` loads and ``a{p}_{i}_{k}`` for a one-y-channel "uvu" path; return the (i, k)."""
        for j in _used(path, 1):
            self.out(depth, f"y{index}_{j} = {self.acc.y.format(path.offset_in2 + j)}")
        pairs: dict[tuple[int, int], list[str]] = defaultdict(list)
        for i, j, k, value in path.cg:
            pairs[(i, k)].append(f"{self.k(path, value)} * y{index}_{j}")
        for (i, k), terms in sorted(pairs.items()):
            self.out(depth, f"a{index}_{i}_{k} = {_sum(terms)}")
        return sorted(pairs)

    def x_loads(self, members: list[int], depth: int) -> None:
        """Load ``x[u, i]`` once per x segment used by a fused group: ``x{offset}_{i}``."""
        needed: dict[tuple[int, int], set[int]] = defaultdict(set)
        for index in members:
            path = self.spec.paths[index]
            needed[(path.offset_in1, path.dim_in1)].update(_used(path, 0))
        transposed = getattr(self, "_transposed_x", {})
        for (offset, dim), components in needed.items():
            for i in sorted(components):
                if offset in transposed:
                    mul = transposed[offset][0]
                    source = self.acc.x_scratch.format(f"{offset + i * mul} + u")
                else:
                    source = self.acc.x.format(_col(offset + i, "u", dim))
                self.out(depth, f"x{offset}_{i} = {source}")

    def groups_per_x(self, groups: dict[tuple, list[int]]) -> dict[int, set]:
        """For each x segment (by offset) read by fused groups, the keys of those groups."""
        per_x: dict[int, set] = defaultdict(set)
        for key, members in groups.items():
            for index in members:
                per_x[self.spec.paths[index].offset_in1].add(key)
        return per_x

    def transpose_shared_x(self, groups: dict[tuple, list[int]], depth: int) -> None:
        """With ``acc.x_scratch``: copy x segments read by several fused groups into it, transposed."""
        self._transposed_x: dict[int, tuple[int, int]] = {}
        if self.acc.x_scratch is None:
            return
        for offset, keys in self.groups_per_x(groups).items():
            path = next(p for p in self.spec.paths if p.offset_in1 == offset)
            if len(keys) > 1 and path.dim_in1 > 1:
                self._transposed_x[offset] = (path.mul_in1, path.dim_in1)
                self.out(depth, f"for u in range({path.mul_in1}):")
                for i in range(path.dim_in1):
                    target = self.acc.x_scratch.format(f"{offset + i * path.mul_in1} + u")
                    self.out(
                        depth + 1, f"{target} = {self.acc.x.format(_col(offset + i, 'u', path.dim_in1))}"
                    )

    def write_segment(self, tracker: str, template: str, offset: int, dim: int, channel, mul, values) -> None:
        """Write a register segment ``values[n]`` (name or None) to columns ``offset + channel*dim + n``."""
        op = self.trackers[tracker].op(offset, mul * dim, covers=True)
        depth = self._depth
        for n in range(dim):
            if values.get(n) is None and op == "+=":
                continue
            value = values.get(n) or "zero"
            self.out(depth, f"{template.format(_col(offset + n, channel, dim))} {op} {value}")

    # ------------------------------------------------------------------------------------- forward
    def forward(self, depth: int) -> None:
        groups = self.fused_groups()
        self.transpose_shared_x(groups, depth)
        for key, members in groups.items():
            self.forward_fused(key[0], members, depth)
        for path in self.spec.paths:
            if not _is_fused(path):
                self.forward_nest(path, depth)

    def forward_fused(self, mul: int, members: list[int], depth: int) -> None:
        pairs = {}
        for index in members:
            if self.spec.paths[index].mode == "uvu":
                pairs[index] = self.y_contraction(index, self.spec.paths[index], depth)
        self.out(depth, f"for u in range({mul}):")
        d = depth + 1
        self.x_loads(members, d)
        accumulators: dict[int, dict[int, str]] = {}  # output offset -> k -> register
        dims: dict[int, int] = {}
        for index in members:
            path = self.spec.paths[index]
            xs = f"x{path.offset_in1}"
            by_k: dict[int, list[str]] = defaultdict(list)
            if path.mode == "uvu":
                for i, k in pairs[index]:
                    by_k[k].append(f"a{index}_{i}_{k} * {xs}_{i}")
            else:  # uuu: y indexed by u
                for j in _used(path, 1):
                    col = _col(path.offset_in2 + j, "u", path.dim_in2)
                    self.out(d, f"yu_{j} = {self.acc.y.format(col)}")
                for i, j, k, value in path.cg:
                    by_k[k].append(f"{self.k(path, value)} * {xs}_{i} * yu_{j}")
            self.out(d, f"wt = {self.weight(path, 'u')}")
            registers = accumulators.setdefault(path.offset_out, {})
            dims[path.offset_out] = path.dim_out
            for k, terms in sorted(by_k.items()):
                name = f"z{path.offset_out}_{k}"
                op = "+=" if k in registers else "="
                registers[k] = name
                self.out(d, f"{name} {op} wt * ({_sum(terms)})")
        self._depth = d
        for offset, registers in accumulators.items():
            self.write_segment("z", self.acc.z, offset, dims[offset], "u", mul, registers)

    def forward_nest(self, path: TPPathSpec, depth: int) -> None:
        d3, o3 = path.dim_out, path.offset_out
        by_k: dict[int, list[str]] = defaultdict(list)
        for i, j, k, value in path.cg:
            by_k[k].append(f"{self.k(path, value)} * xv_{i} * yv_{j}")
        ks = sorted(by_k)
        op = self.trackers["z"].op(o3, path.mul_out * d3, covers=False)
        out, acc = self.out, self.acc
        if path.mode in ("uvu", "uvv"):
            outer, inner = ("u", "v") if path.mode == "uvu" else ("v", "u")
            muls = {"u": path.mul_in1, "v": path.mul_in2}
            out(depth, f"for {outer} in range({muls[outer]}):")
            self._load_operand(outer, path, depth + 1)
            for k in ks:
                out(depth + 1, f"t_{k} = zero")
            out(depth + 1, f"for {inner} in range({muls[inner]}):")
            self._load_operand(inner, path, depth + 2)
            out(depth + 2, f"wt = {self.weight(path, f'u * {path.mul_in2} + v')}")
            for k in ks:
                out(depth + 2, f"t_{k} += wt * ({_sum(by_k[k])})")
            for k in ks:
                out(depth + 1, f"{acc.z.format(_col(o3 + k, outer, d3))} {op} t_{k}")
        elif path.mode == "uvw":
            out(depth, f"for u in range({path.mul_in1}):")
            self._load_operand("u", path, depth + 1)
            out(depth + 1, f"for v in range({path.mul_in2}):")
            self._load_operand("v", path, depth + 2)
            for k in ks:
                out(depth + 2, f"t_{k} = {_sum(by_k[k])}")
            out(depth + 2, f"for wc in range({path.mul_out}):")
            out(depth + 3, f"wt = {self.weight(path, f'(u * {path.mul_in2} + v) * {path.mul_out} + wc')}")
            for k in ks:
                out(depth + 3, f"{acc.z.format(_col(o3 + k, 'wc', d3))} {op} wt * t_{k}")
        else:  # pragma: no cover - "uuu" is always fused
            raise ValueError(f"unexpected mode {path.mode!r}")

    def _load_operand(self, channel: str, path: TPPathSpec, depth: int) -> None:
        """``xv_i`` (channel "u") or ``yv_j`` (channel "v") of a loop nest."""
        if channel == "u":
            for i in _used(path, 0):
                self.out(depth, f"xv_{i} = {self.acc.x.format(_col(path.offset_in1 + i, 'u', path.dim_in1))}")
        else:
            for j in _used(path, 1):
                self.out(depth, f"yv_{j} = {self.acc.y.format(_col(path.offset_in2 + j, 'v', path.dim_in2))}")

    # ------------------------------------------------------------------------------------ backward
    def plan_grad_x_scratch(self, groups: dict[tuple, list[int]]) -> None:
        """Choose the x segments whose gradient is summed in ``acc.grad_x_scratch`` (several groups)."""
        self._scratch_x: dict[int, tuple[int, int]] = {}  # x offset -> (mul, dim)
        if self.acc.grad_x_scratch is None:
            return
        for offset, keys in self.groups_per_x(groups).items():
            if len(keys) > 1:
                path = next(p for p in self.spec.paths if p.offset_in1 == offset)
                self._scratch_x[offset] = (path.mul_in1, path.dim_in1)

    def write_grad_x(self, target: str, offset: int, dim: int, mul: int, registers: dict, depth: int) -> None:
        """Inside a fused loop: add a group's grad-x registers to ``target`` or to the scratch."""
        if offset not in self._scratch_x:
            self._depth = depth
            self.write_segment("x", target, offset, dim, "u", mul, registers)
            return
        op = self.trackers["x_scratch"].op(offset, mul * dim, covers=True)
        for n in range(dim):
            if registers.get(n) is None and op == "+=":
                continue
            self.out(
                depth,
                f"{self.acc.grad_x_scratch.format(f'{offset + n * mul} + u')} {op} {registers.get(n) or 'zero'}",
            )

    def flush_grad_x_scratch(self, target: str, depth: int) -> None:
        """After the fused groups: interleave every scratch segment into ``target`` once."""
        for offset, (mul, dim) in self._scratch_x.items():
            op = self.trackers["x"].op(offset, mul * dim, covers=True)
            self.out(depth, f"for u in range({mul}):")
            for n in range(dim):
                source = self.acc.grad_x_scratch.format(f"{offset + n * mul} + u")
                self.out(depth + 1, f"{target.format(_col(offset + n, 'u', dim))} {op} {source}")

    def backward(self, depth: int) -> None:
        groups = self.fused_groups()
        self.transpose_shared_x(groups, depth)
        self.plan_grad_x_scratch(groups)
        for key, members in groups.items():
            self.backward_fused(key[0], members, depth)
        self.flush_grad_x_scratch(self.acc.grad_x, depth)
        for path in self.spec.paths:
            if not _is_fused(path):
                self.backward_nest(path, depth)

    def backward_fused(self, mul: int, members: list[int], depth: int) -> None:
        out, acc = self.out, self.acc
        pairs = {}
        y_reductions: dict[int, dict[int, str]] = {}  # y offset -> j -> register (one-y-channel "uvu")
        y_dims: dict[int, int] = {}
        for index in members:
            path = self.spec.paths[index]
            if path.mode == "uvu":
                pairs[index] = self.y_contraction(index, path, depth)
                registers = y_reductions.setdefault(path.offset_in2, {})
                y_dims[path.offset_in2] = path.dim_in2
                for j in _used(path, 1):
                    if j not in registers:
                        registers[j] = f"gys{path.offset_in2}_{j}"
                        out(depth, f"{registers[j]} = zero")
        out(depth, f"for u in range({mul}):")
        d = depth + 1
        loaded_g: set[tuple[int, int]] = set()
        for index in members:
            path = self.spec.paths[index]
            for k in _used(path, 2):
                if (path.offset_out, k) not in loaded_g:
                    loaded_g.add((path.offset_out, k))
                    col = _col(path.offset_out + k, "u", path.dim_out)
                    out(d, f"g{path.offset_out}_{k} = {acc.grad_out.format(col)}")
        self.x_loads(members, d)
        gx_registers: dict[int, dict[int, str]] = {}
        gx_dims: dict[int, int] = {}
        gy_registers: dict[int, dict[int, str]] = {}  # "uuu": y indexed by u
        gy_dims: dict[int, int] = {}
        self._depth = d
        for index in members:
            path = self.spec.paths[index]
            xs, gs = f"x{path.offset_in1}", f"g{path.offset_out}"
            out(d, f"wt = {self.weight(path, 'u')}")
            gx_terms: dict[int, list[str]] = defaultdict(list)
            gy_terms: dict[int, list[str]] = defaultdict(list)
            if path.mode == "uvu":
                if path.has_weight:
                    terms = [f"{gs}_{k} * a{index}_{i}_{k} * {xs}_{i}" for i, k in pairs[index]]
                    op = self.trackers["w"].op(path.weight_offset, mul, covers=True)
                    out(d, f"{self.grad_weight(path, 'u')} {op} {_sum(terms)}")
                for k in _used(path, 2):
                    out(d, f"s_{k} = wt * {gs}_{k}")
                for i, k in pairs[index]:
                    gx_terms[i].append(f"a{index}_{i}_{k} * s_{k}")
                for i, j, k, value in path.cg:
                    gy_terms[j].append(f"{self.k(path, value)} * {xs}_{i} * s_{k}")
                for j, terms in sorted(gy_terms.items()):
                    out(d, f"{y_reductions[path.offset_in2][j]} += {_sum(terms)}")
            else:  # uuu
                for j in _used(path, 1):
                    out(d, f"yu_{j} = {acc.y.format(_col(path.offset_in2 + j, 'u', path.dim_in2))}")
                if path.has_weight:
                    terms = [f"{self.k(path, v)} * {gs}_{k} * {xs}_{i} * yu_{j}" for i, j, k, v in path.cg]
                    op = self.trackers["w"].op(path.weight_offset, mul, covers=True)
                    out(d, f"{self.grad_weight(path, 'u')} {op} {_sum(terms)}")
                for k in _used(path, 2):
                    out(d, f"s_{k} = wt * {gs}_{k}")
                for i, j, k, value in path.cg:
                    gx_terms[i].append(f"{self.k(path, value)} * yu_{j} * s_{k}")
                    gy_terms[j].append(f"{self.k(path, value)} * {xs}_{i} * s_{k}")
                registers = gy_registers.setdefault(path.offset_in2, {})
                gy_dims[path.offset_in2] = path.dim_in2
                for j, terms in sorted(gy_terms.items()):
                    name = f"gyu{path.offset_in2}_{j}"
                    out(d, f"{name} {'+=' if j in registers else '='} {_sum(terms)}")
                    registers[j] = name
            registers = gx_registers.setdefault(path.offset_in1, {})
            gx_dims[path.offset_in1] = path.dim_in1
            for i, terms in sorted(gx_terms.items()):
                name = f"gx{path.offset_in1}_{i}"
                out(d, f"{name} {'+=' if i in registers else '='} {_sum(terms)}")
                registers[i] = name
        for offset, registers in gx_registers.items():
            self.write_grad_x(acc.grad_x, offset, gx_dims[offset], mul, registers, d)
        for offset, registers in gy_registers.items():
            self.write_segment("y", acc.grad_y, offset, gy_dims[offset], "u", mul, registers)
        self._depth = depth
        for offset, registers in y_reductions.items():
            self.write_segment("y", acc.grad_y, offset, y_dims[offset], None, 1, registers)

    def backward_nest(self, path: TPPathSpec, depth: int) -> None:
        out, acc = self.out, self.acc
        d1, d2, d3 = path.dim_in1, path.dim_in2, path.dim_out
        o1, o2, o3 = path.offset_in1, path.offset_in2, path.offset_out
        ks = _used(path, 2)
        gx_terms: dict[int, list[str]] = defaultdict(list)
        gy_terms: dict[int, list[str]] = defaultdict(list)
        t_terms: dict[int, list[str]] = defaultdict(list)
        for i, j, k, value in path.cg:
            constant = self.k(path, value)
            gx_terms[i].append(f"{constant} * yv_{j} * s_{k}")
            gy_terms[j].append(f"{constant} * xv_{i} * s_{k}")
            t_terms[k].append(f"{constant} * xv_{i} * yv_{j}")
        op_x = self.trackers["x"].op(o1, path.mul_in1 * d1, covers=False)
        op_y = self.trackers["y"].op(o2, path.mul_in2 * d2, covers=False)
        op_w = (
            self.trackers["w"].op(path.weight_offset, path.weights_per_path, False) if path.has_weight else ""
        )

        def loads_g(channel: str, depth_: int) -> None:
            for k in ks:
                out(depth_, f"g_{k} = {acc.grad_out.format(_col(o3 + k, channel, d3))}")

        if path.mode in ("uvu", "uvv"):
            outer, inner = ("u", "v") if path.mode == "uvu" else ("v", "u")
            muls = {"u": path.mul_in1, "v": path.mul_in2}
            out(depth, f"for {outer} in range({muls[outer]}):")
            self._load_operand(outer, path, depth + 1)
            loads_g(outer, depth + 1)
            reduced = gx_terms if outer == "u" else gy_terms
            for n in reduced:
                out(depth + 1, f"r_{n} = zero")
            out(depth + 1, f"for {inner} in range({muls[inner]}):")
            d = depth + 2
            self._load_operand(inner, path, d)
            index = f"u * {path.mul_in2} + v"
            out(d, f"wt = {self.weight(path, index)}")
            if path.has_weight:
                terms = [f"g_{k} * ({_sum(t_terms[k])})" for k in ks]
                out(d, f"{self.grad_weight(path, index)} {op_w} {_sum(terms)}")
            for k in ks:
                out(d, f"s_{k} = wt * g_{k}")
            if outer == "u":
                for i, terms in sorted(gx_terms.items()):
                    out(d, f"r_{i} += {_sum(terms)}")
                for j, terms in sorted(gy_terms.items()):
                    out(d, f"{acc.grad_y.format(_col(o2 + j, 'v', d2))} {op_y} {_sum(terms)}")
                for i in sorted(gx_terms):
                    out(depth + 1, f"{acc.grad_x.format(_col(o1 + i, 'u', d1))} {op_x} r_{i}")
            else:
                for i, terms in sorted(gx_terms.items()):
                    out(d, f"{acc.grad_x.format(_col(o1 + i, 'u', d1))} {op_x} {_sum(terms)}")
                for j, terms in sorted(gy_terms.items()):
                    out(d, f"r_{j} += {_sum(terms)}")
                for j in sorted(gy_terms):
                    out(depth + 1, f"{acc.grad_y.format(_col(o2 + j, 'v', d2))} {op_y} r_{j}")
        elif path.mode == "uvw":
            out(depth, f"for u in range({path.mul_in1}):")
            self._load_operand("u", path, depth + 1)
            for i in gx_terms:
                out(depth + 1, f"r_{i} = zero")
            out(depth + 1, f"for v in range({path.mul_in2}):")
            d = depth + 2
            self._load_operand("v", path, d)
            if path.has_weight:
                for k in ks:
                    out(d, f"t_{k} = {_sum(t_terms[k])}")
            for k in ks:
                out(d, f"s_{k} = zero")
            out(d, f"for wc in range({path.mul_out}):")
            loads_g("wc", d + 1)
            index = f"(u * {path.mul_in2} + v) * {path.mul_out} + wc"
            out(d + 1, f"wt = {self.weight(path, index)}")
            if path.has_weight:
                terms = [f"g_{k} * t_{k}" for k in ks]
                out(d + 1, f"{self.grad_weight(path, index)} {op_w} {_sum(terms)}")
            for k in ks:
                out(d + 1, f"s_{k} += wt * g_{k}")
            for i, terms in sorted(gx_terms.items()):
                out(d, f"r_{i} += {_sum(terms)}")
            for j, terms in sorted(gy_terms.items()):
                out(d, f"{acc.grad_y.format(_col(o2 + j, 'v', d2))} {op_y} {_sum(terms)}")
            for i in sorted(gx_terms):
                out(depth + 1, f"{acc.grad_x.format(_col(o1 + i, 'u', d1))} {op_x} r_{i}")
        else:  # pragma: no cover - "uuu" is always fused
            raise ValueError(f"unexpected mode {path.mode!r}")


def emit_forward_body(
    spec: TPKernelSpec, acc: RowAccess, consts: Constants, out: Lines, depth: int, *, accumulate: bool
) -> list[tuple[int, int]]:
    """Per-sample forward into ``acc.z``; returns the z column ranges the shell must zero first."""
    trackers = {"z": OutputTracker(spec.dim_out, accumulate)}
    _Emitter(spec, acc, consts, out, trackers).forward(depth)
    return trackers["z"].zero_ranges()


def emit_backward_body(
    spec: TPKernelSpec,
    acc: RowAccess,
    consts: Constants,
    out: Lines,
    depth: int,
    *,
    accumulate: bool,
    accumulate_grad_w: bool,
) -> dict[str, list[tuple[int, int]]]:
    """Per-sample grads of ``<grad_out, z>``; returns per output ("x", "y", "w") the ranges to zero first."""
    trackers = {
        "x": OutputTracker(spec.dim_in1, accumulate),
        "y": OutputTracker(spec.dim_in2, accumulate),
        "w": OutputTracker(spec.weight_numel, accumulate or accumulate_grad_w),
        "x_scratch": OutputTracker(spec.dim_in1, False),
    }
    _Emitter(spec, acc, consts, out, trackers).backward(depth)
    return {name: trackers[name].zero_ranges() for name in ("x", "y", "w")}


# ------------------------------------------------------------------------------------------- batch shell
def _zero_lines(array: str, ranges: list[tuple[int, int]], depth: int) -> list[str]:
    return [f"{INDENT * depth}{array}[b, {start}:{stop}] = zero" for start, stop in ranges]


def _zero_scratch_lines(scratch: str, ranges: list[tuple[int, int]], depth: int) -> list[str]:
    return [f"{INDENT * depth}{scratch}[{start}:{stop}] = zero" for start, stop in ranges]


def _flush_lines(pairs: list[tuple[str, str, int]], depth: int) -> list[str]:
    """Copy each staged row ``scratch`` to ``array[b, :]``: streamed, or with ordinary stores."""
    pad = INDENT * depth
    lines = [f"{pad}if stream:"]
    lines += [f"{pad}{INDENT}stream_row({array}, b, {scratch})" for array, scratch, _ in pairs]
    lines.append(f"{pad}else:")
    for array, scratch, width in pairs:
        lines += [
            f"{pad}{INDENT}for col in range({width}):",
            f"{pad}{INDENT * 2}{array}[b, col] = {scratch}[col]",
        ]
    return lines


FENCE = ["    if stream:", "        store_fence()"]


@functools.cache
def _helper_digest(name: str) -> str:
    """Short hash of a kernels/ helper module's source (the generated code compiles it in)."""
    return hashlib.sha1((Path(__file__).parent / name).read_bytes()).hexdigest()[:12]


def generate_module_source(spec: TPKernelSpec) -> str:
    """The generated module for ``spec``: serial ``forward``, ``backward``, ``double_backward`` over rows.

    ``forward(x, y, w, z, start, stop, include_weightless, stream)`` overwrites rows ``start:stop`` of z;
    ``backward(x, y, w, g, gx, gy, gw, start, stop, include_weightless, stream)`` overwrites those rows of
    gx, gy and (per-sample weights) gw; with shared weights ``gw`` is a ``(weight_numel,)`` partial sum
    that the call adds to. ``double_backward(x, y, w, g, hx, hy, hw, ox, oy, ow, og, start, stop, stream)``
    likewise (``ow`` a partial sum for shared weights; see :mod:`multilinear.kernels.tp_codegen_double`).
    The functions release the GIL, so a caller runs row ranges on several threads.

    Every large output row (z; grad x and per-sample grad w; the double backward's x, w and grad_out
    outputs) is built in a per-call scratch row and copied out at the end of the sample: with ``stream``
    true by non-temporal stores (:mod:`multilinear.kernels._stream`, for outputs larger than the
    caches), else by ordinary stores.
    """
    from multilinear.kernels.tp_codegen_double import DoubleRowAccess, emit_double_backward_body

    shared = spec.shared_weights
    acc = RowAccess(w="w[{}]" if shared else "w[b, {}]", grad_w="gw[{}]" if shared else "gw[b, {}]")
    decorator = f"@njit(cache=True, nogil=True, fastmath={FASTMATH}, error_model='numpy')"
    prologue = ["    zero = dt(0.0)", "    unit = dt(1.0) if include_weightless else dt(0.0)"]

    def scratch(name: str, width: int) -> str:
        return f"    {name} = np.empty({max(1, width)}, dtype=dt)"

    def staging(name: str, width: int) -> str:
        # NaN-filled: a column the body neither writes nor zeroes would come out as NaN, which the tests
        # (outputs compared with the oracle) cannot miss
        return f"    {name} = np.full({max(1, width)}, np.nan, dtype=dt)"

    consts_f, body_f = Constants(), Lines()
    # x_scratch: -20% forward compute on MACE-large (x de-interleaved once, not once per output segment)
    acc_f = RowAccess(w=acc.w, grad_w=acc.grad_w, z="zs[{}]", x_scratch="xt[{}]")
    zero_z = emit_forward_body(spec, acc_f, consts_f, body_f, 2, accumulate=False)
    forward = [
        decorator,
        "def forward(x, y, w, z, start, stop, include_weightless, stream):",
        *prologue,
        *(INDENT + line for line in consts_f.declarations()),
        scratch("xt", spec.dim_in1),
        staging("zs", spec.dim_out),
        "    for b in range(start, stop):",
        *_zero_scratch_lines("zs", zero_z, 2),
        *body_f.lines,
        *_flush_lines([("z", "zs", spec.dim_out)], 2),
        *FENCE,
    ]

    consts_b, body_b = Constants(), Lines()
    # (x_scratch measured +8% on the backward's compute, so the backward reads x in place)
    acc_b = RowAccess(
        w=acc.w, grad_x="gxs[{}]", grad_w="gw[{}]" if shared else "gws[{}]", grad_x_scratch="gxt[{}]"
    )
    zero = emit_backward_body(spec, acc_b, consts_b, body_b, 2, accumulate=False, accumulate_grad_w=shared)
    staged_b = [("gx", "gxs", spec.dim_in1)] + ([] if shared else [("gw", "gws", spec.weight_numel)])
    backward = [
        decorator,
        "def backward(x, y, w, g, gx, gy, gw, start, stop, include_weightless, stream):",
        *prologue,
        *(INDENT + line for line in consts_b.declarations()),
        scratch("gxt", spec.dim_in1),
        staging("gxs", spec.dim_in1),
        staging("gws", 0 if shared else spec.weight_numel),
        "    for b in range(start, stop):",
        *_zero_scratch_lines("gxs", zero["x"], 2),
        *_zero_lines("gy", zero["y"], 2),
        *(_zero_lines("gw", zero["w"], 2) if shared else _zero_scratch_lines("gws", zero["w"], 2)),
        *body_b.lines,
        *_flush_lines(staged_b, 2),
        *FENCE,
    ]
    acc_double = DoubleRowAccess(
        w=acc.w,
        grad_x_scratch="oxt[{}]",
        gg_w="hw[{}]" if shared else "hw[b, {}]",
        out_x="oxs[{}]",
        out_w="ow[{}]" if shared else "ows[{}]",
        out_grad_out="ogs[{}]",
    )
    consts_d, body_d = Constants(), Lines()
    zero = emit_double_backward_body(
        spec, acc_double, consts_d, body_d, 2, accumulate=False, accumulate_out_w=shared
    )
    staged_d = [("ox", "oxs", spec.dim_in1), ("og", "ogs", spec.dim_out)]
    staged_d += [] if shared else [("ow", "ows", spec.weight_numel)]
    double_backward = [
        decorator,
        "def double_backward(x, y, w, g, hx, hy, hw, ox, oy, ow, og, start, stop, stream):",
        "    zero = dt(0.0)",
        "    unit = dt(1.0)",
        *(INDENT + line for line in consts_d.declarations()),
        scratch("oxt", spec.dim_in1),
        staging("oxs", spec.dim_in1),
        staging("ogs", spec.dim_out),
        staging("ows", 0 if shared else spec.weight_numel),
        "    for b in range(start, stop):",
        *_zero_scratch_lines("ogs", zero["z"], 2),
        *_zero_scratch_lines("oxs", zero["x"], 2),
        *_zero_lines("oy", zero["y"], 2),
        *(_zero_lines("ow", zero["w"], 2) if shared else _zero_scratch_lines("ows", zero["w"], 2)),
        *body_d.lines,
        *_flush_lines(staged_d, 2),
        *FENCE,
    ]
    header = [
        f'"""Generated by multilinear.kernels.tp_codegen for spec {spec.key()}; do not edit."""',
        "",
        "import numpy as np",
        "from numba import njit",
        "",
        "from multilinear.kernels._stream import store_fence, stream_row",
        "",
        # numba's disk cache does not see changes to helpers a module imports: naming the helper's
        # version here changes this file, and with it the cache key, whenever the helper changes
        f"# kernels/_stream.py {_helper_digest('_stream.py')}",
        "",
        f"dt = np.{spec.dtype}",
        f"SHARED_WEIGHTS = {shared}",
    ]
    footer = ["KERNELS = (forward, backward, double_backward)", ""]
    functions = [*forward, "", "", *backward, "", "", *double_backward]
    return "\n".join([*header, "", "", *functions, "", "", *footer])
