"""Source generation for the fused double backward of a tensor product (plain text; no numba here).

With ``g`` the gradient of the output and ``hx, hy, hw`` the incoming gradients of grad x, grad y and
grad w (``gg_*``), one pass per sample computes, per path (primes: weighted paths only)

- ``out_grad_out = F(hx, y, w) + F(x, hy, w) + F'(x, y, hw)``
- ``out_x = Bx(x, hy, w, g) + Bx'(x, y, hw, g)``, ``out_y = By(hx, y, w, g) + By'(x, y, hw, g)``
- ``out_w = Bw(hx, y, w, g) + Bw(x, hy, w, g)``

from ``t1[k] = c Σ C[i,j,k] (hx_i y_j + x_i hy_j)``, ``t2[k] = c Σ C x_i y_j``, ``s = w g`` and
``r = hw g``: ``out_grad_out = w t1 + hw t2``, ``out_w = Σ_k g_k t1_k``, ``out_x_i = c Σ C (hy_j s_k +
y_j r_k)`` and ``out_y_j = c Σ C (hx_i s_k + x_i r_k)``. This reads every input once and writes every
output once, where composing three forward and three backward calls moves each array several times.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from multilinear.kernels.tp_codegen import (
    Constants,
    Lines,
    OutputTracker,
    RowAccess,
    _col,
    _Emitter,
    _is_fused,
    _sum,
    _used,
)
from multilinear.kernels.tp_spec import TPKernelSpec, TPPathSpec


@dataclass(frozen=True)
class DoubleRowAccess(RowAccess):
    """Element expressions of the double backward's extra rows (``gg_*`` in, four outputs)."""

    gg_x: str = "hx[b, {}]"
    gg_y: str = "hy[b, {}]"
    gg_w: str = "hw[b, {}]"
    out_x: str = "ox[b, {}]"
    out_y: str = "oy[b, {}]"
    out_w: str = "ow[b, {}]"
    out_grad_out: str = "og[b, {}]"


class _DoubleEmitter(_Emitter):
    acc: DoubleRowAccess

    def gg_weight(self, path: TPPathSpec, index: str) -> str:
        return self.acc.gg_w.format(f"{path.weight_offset} + {index}" if path.weight_offset else index)

    def out_weight(self, path: TPPathSpec, index: str) -> str:
        return self.acc.out_w.format(f"{path.weight_offset} + {index}" if path.weight_offset else index)

    def emit(self, depth: int) -> None:
        groups = self.fused_groups()
        self.plan_grad_x_scratch(groups)
        for key, members in groups.items():
            self.fused(key[0], members, depth)
        self.flush_grad_x_scratch(self.acc.out_x, depth)
        for path in self.spec.paths:
            if not _is_fused(path):
                self.nest(path, depth)

    def fused(self, mul: int, members: list[int], depth: int) -> None:
        out, acc = self.out, self.acc
        pairs: dict[int, list[tuple[int, int]]] = {}
        y_reductions: dict[int, dict[int, str]] = {}
        y_dims: dict[int, int] = {}
        for index in members:
            path = self.spec.paths[index]
            if path.mode != "uvu":
                continue
            pairs[index] = self.y_contraction(index, path, depth)
            for j in _used(path, 1):
                out(depth, f"e{index}_{j} = {acc.gg_y.format(path.offset_in2 + j)}")
            terms_b: dict[tuple[int, int], list[str]] = defaultdict(list)
            for i, j, k, value in path.cg:
                terms_b[(i, k)].append(f"{self.k(path, value)} * e{index}_{j}")
            for (i, k), terms in sorted(terms_b.items()):
                out(depth, f"bb{index}_{i}_{k} = {_sum(terms)}")
            registers = y_reductions.setdefault(path.offset_in2, {})
            y_dims[path.offset_in2] = path.dim_in2
            for j in _used(path, 1):
                if j not in registers:
                    registers[j] = f"oys{path.offset_in2}_{j}"
                    out(depth, f"{registers[j]} = zero")
        out(depth, f"for u in range({mul}):")
        d = depth + 1
        self._depth = d
        loaded: set[tuple[int, int]] = set()
        for index in members:
            path = self.spec.paths[index]
            for k in _used(path, 2):
                if (path.offset_out, k) not in loaded:
                    loaded.add((path.offset_out, k))
                    col = _col(path.offset_out + k, "u", path.dim_out)
                    out(d, f"g{path.offset_out}_{k} = {acc.grad_out.format(col)}")
        self.x_loads(members, d)
        seen_x: set[tuple[int, int]] = set()
        for index in members:
            path = self.spec.paths[index]
            for i in _used(path, 0):
                if (path.offset_in1, i) not in seen_x:
                    seen_x.add((path.offset_in1, i))
                    col = _col(path.offset_in1 + i, "u", path.dim_in1)
                    out(d, f"h{path.offset_in1}_{i} = {acc.gg_x.format(col)}")
        og: dict[int, dict[int, str]] = {}
        og_dims: dict[int, int] = {}
        ox: dict[int, dict[int, str]] = {}
        ox_dims: dict[int, int] = {}
        oy: dict[int, dict[int, str]] = {}
        oy_dims: dict[int, int] = {}
        for index in members:
            path = self.spec.paths[index]
            weighted = path.has_weight
            xs, hs, gs = f"x{path.offset_in1}", f"h{path.offset_in1}", f"g{path.offset_out}"
            out(d, f"wt = {self.weight(path, 'u')}")
            if weighted:
                out(d, f"vt = {self.gg_weight(path, 'u')}")
            t1: dict[int, list[str]] = defaultdict(list)
            t2: dict[int, list[str]] = defaultdict(list)
            ox_terms: dict[int, list[str]] = defaultdict(list)
            oy_terms: dict[int, list[str]] = defaultdict(list)
            if path.mode == "uvu":
                for i, k in pairs[index]:
                    t1[k].append(f"a{index}_{i}_{k} * {hs}_{i} + bb{index}_{i}_{k} * {xs}_{i}")
                    t2[k].append(f"a{index}_{i}_{k} * {xs}_{i}")
                    ox_terms[i].append(f"bb{index}_{i}_{k} * s_{k}")
                    if weighted:
                        ox_terms[i].append(f"a{index}_{i}_{k} * r_{k}")
            else:  # uuu: y and gg_y indexed by u
                for j in _used(path, 1):
                    col = _col(path.offset_in2 + j, "u", path.dim_in2)
                    out(d, f"yu_{j} = {acc.y.format(col)}")
                    out(d, f"eu_{j} = {acc.gg_y.format(col)}")
                for i, j, k, value in path.cg:
                    c = self.k(path, value)
                    t1[k].append(f"{c} * ({hs}_{i} * yu_{j} + {xs}_{i} * eu_{j})")
                    t2[k].append(f"{c} * {xs}_{i} * yu_{j}")
                    ox_terms[i].append(f"{c} * eu_{j} * s_{k}")
                    if weighted:
                        ox_terms[i].append(f"{c} * yu_{j} * r_{k}")
            for i, j, k, value in path.cg:
                c = self.k(path, value)
                oy_terms[j].append(f"{c} * {hs}_{i} * s_{k}")
                if weighted:
                    oy_terms[j].append(f"{c} * {xs}_{i} * r_{k}")
            for k in _used(path, 2):
                out(d, f"t1_{k} = {_sum(t1[k])}")
                if weighted:
                    out(d, f"t2_{k} = {_sum(t2[k])}")
            registers = og.setdefault(path.offset_out, {})
            og_dims[path.offset_out] = path.dim_out
            for k in _used(path, 2):
                name = f"og{path.offset_out}_{k}"
                value = f"wt * t1_{k} + vt * t2_{k}" if weighted else f"wt * t1_{k}"
                out(d, f"{name} {'+=' if k in registers else '='} {value}")
                registers[k] = name
            if weighted:
                op = self.trackers["w"].op(path.weight_offset, mul, covers=True)
                terms = [f"{gs}_{k} * t1_{k}" for k in _used(path, 2)]
                out(d, f"{self.out_weight(path, 'u')} {op} {_sum(terms)}")
            for k in _used(path, 2):
                out(d, f"s_{k} = wt * {gs}_{k}")
                if weighted:
                    out(d, f"r_{k} = vt * {gs}_{k}")
            registers = ox.setdefault(path.offset_in1, {})
            ox_dims[path.offset_in1] = path.dim_in1
            for i, terms in sorted(ox_terms.items()):
                name = f"ox{path.offset_in1}_{i}"
                out(d, f"{name} {'+=' if i in registers else '='} {_sum(terms)}")
                registers[i] = name
            if path.mode == "uvu":
                for j, terms in sorted(oy_terms.items()):
                    out(d, f"{y_reductions[path.offset_in2][j]} += {_sum(terms)}")
            else:
                registers = oy.setdefault(path.offset_in2, {})
                oy_dims[path.offset_in2] = path.dim_in2
                for j, terms in sorted(oy_terms.items()):
                    name = f"oyu{path.offset_in2}_{j}"
                    out(d, f"{name} {'+=' if j in registers else '='} {_sum(terms)}")
                    registers[j] = name
        for offset, registers in og.items():
            self.write_segment("z", acc.out_grad_out, offset, og_dims[offset], "u", mul, registers)
        for offset, registers in ox.items():
            self.write_grad_x(acc.out_x, offset, ox_dims[offset], mul, registers, d)
        for offset, registers in oy.items():
            self.write_segment("y", acc.out_y, offset, oy_dims[offset], "u", mul, registers)
        self._depth = depth
        for offset, registers in y_reductions.items():
            self.write_segment("y", acc.out_y, offset, y_dims[offset], None, 1, registers)

    def nest(self, path: TPPathSpec, depth: int) -> None:
        """One loop nest over (u, v[, w]) for "uvu" with several y channels, "uvv" and "uvw" paths."""
        out, acc = self.out, self.acc
        d1, d2, d3 = path.dim_in1, path.dim_in2, path.dim_out
        o1, o2, o3 = path.offset_in1, path.offset_in2, path.offset_out
        weighted = path.has_weight
        ks = _used(path, 2)
        t1: dict[int, list[str]] = defaultdict(list)
        t2: dict[int, list[str]] = defaultdict(list)
        ox_terms: dict[int, list[str]] = defaultdict(list)
        oy_terms: dict[int, list[str]] = defaultdict(list)
        for i, j, k, value in path.cg:
            c = self.k(path, value)
            t1[k].append(f"{c} * (hv_{i} * yv_{j} + xv_{i} * ev_{j})")
            t2[k].append(f"{c} * xv_{i} * yv_{j}")
            ox_terms[i].append(f"{c} * ev_{j} * s_{k}" + (f" + {c} * yv_{j} * r_{k}" if weighted else ""))
            oy_terms[j].append(f"{c} * hv_{i} * s_{k}" + (f" + {c} * xv_{i} * r_{k}" if weighted else ""))
        op_z = self.trackers["z"].op(o3, path.mul_out * d3, covers=False)
        op_x = self.trackers["x"].op(o1, path.mul_in1 * d1, covers=False)
        op_y = self.trackers["y"].op(o2, path.mul_in2 * d2, covers=False)
        op_w = self.trackers["w"].op(path.weight_offset, path.weights_per_path, False) if weighted else ""

        out(depth, f"for u in range({path.mul_in1}):")
        for i in _used(path, 0):
            col = _col(o1 + i, "u", d1)
            out(depth + 1, f"xv_{i} = {acc.x.format(col)}")
            out(depth + 1, f"hv_{i} = {acc.gg_x.format(col)}")
        out(depth + 1, f"for v in range({path.mul_in2}):")
        d = depth + 2
        for j in _used(path, 1):
            col = _col(o2 + j, "v", d2)
            out(d, f"yv_{j} = {acc.y.format(col)}")
            out(d, f"ev_{j} = {acc.gg_y.format(col)}")
        for k in ks:
            out(d, f"t1_{k} = {_sum(t1[k])}")
            if weighted:
                out(d, f"t2_{k} = {_sum(t2[k])}")
        if path.mode == "uvw":
            for k in ks:
                out(d, f"s_{k} = zero")
                if weighted:
                    out(d, f"r_{k} = zero")
            out(d, f"for wc in range({path.mul_out}):")
            inner, channel, index = d + 1, "wc", f"(u * {path.mul_in2} + v) * {path.mul_out} + wc"
            update = "+="
        else:
            inner, channel, index = d, ("u" if path.mode == "uvu" else "v"), f"u * {path.mul_in2} + v"
            update = "="
        for k in ks:
            out(inner, f"g_{k} = {acc.grad_out.format(_col(o3 + k, channel, d3))}")
        out(inner, f"wt = {self.weight(path, index)}")
        if weighted:
            out(inner, f"vt = {self.gg_weight(path, index)}")
        for k in ks:
            value = f"wt * t1_{k} + vt * t2_{k}" if weighted else f"wt * t1_{k}"
            out(inner, f"{acc.out_grad_out.format(_col(o3 + k, channel, d3))} {op_z} {value}")
        if weighted:
            terms = [f"g_{k} * t1_{k}" for k in ks]
            out(inner, f"{self.out_weight(path, index)} {op_w} {_sum(terms)}")
        for k in ks:
            out(inner, f"s_{k} {update} wt * g_{k}")
            if weighted:
                out(inner, f"r_{k} {update} vt * g_{k}")
        for i, terms in sorted(ox_terms.items()):
            out(d, f"{acc.out_x.format(_col(o1 + i, 'u', d1))} {op_x} {_sum(terms)}")
        for j, terms in sorted(oy_terms.items()):
            out(d, f"{acc.out_y.format(_col(o2 + j, 'v', d2))} {op_y} {_sum(terms)}")


def emit_double_backward_body(
    spec: TPKernelSpec,
    acc: DoubleRowAccess,
    consts: Constants,
    out: Lines,
    depth: int,
    *,
    accumulate: bool,
    accumulate_out_w: bool,
) -> dict[str, list[tuple[int, int]]]:
    """Per-sample fused double backward; returns per output ("z", "x", "y", "w") the ranges to zero."""
    trackers = {
        "z": OutputTracker(spec.dim_out, accumulate),
        "x": OutputTracker(spec.dim_in1, accumulate),
        "y": OutputTracker(spec.dim_in2, accumulate),
        "w": OutputTracker(spec.weight_numel, accumulate or accumulate_out_w),
        "x_scratch": OutputTracker(spec.dim_in1, False),
    }
    _DoubleEmitter(spec, acc, consts, out, trackers).emit(depth)
    return {name: trackers[name].zero_ranges() for name in ("z", "x", "y", "w")}
