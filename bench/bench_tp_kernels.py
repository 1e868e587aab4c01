"""Raw generated tensor-product kernels (numpy arrays, outputs preallocated) against e3nn, same run.

Default case: MACE-large (``128x0e+128x1o+128x2e`` x ``1x0e+1x1o+1x2e+1x3o``), batch 10,000, float32,
per-sample weights, 2 threads. Reported:

- forward, backward, double backward (fused kernel, and the composition of forward/backward calls) in ms:
  median of ``--repeats`` runs after two warm-up calls;
- achieved GFLOP/s with the count stated in the output: forward = Σ over paths of
  ``pairs(u, v) * (2 * nnz(CG) + dim_out)`` for one-weight-per-(u, v) modes and
  ``mul1 * mul2 * (2 * nnz + 2 * mul_out * dim_out)`` for "uvw"; backward counted as 2x and double
  backward as 4x the forward;
- compile time (first process, empty numba and source caches) and load time (second process, same
  caches), each for getting the kernels and the first call of all three ops, in fresh subprocesses;
- e3nn's ``o3.TensorProduct`` with the same arguments: forward (no grad), forward + backward and forward +
  backward + double backward (``create_graph=True``), after warm-up (allocator warm), same threads.

Usage: python bench/bench_tp_kernels.py [--problem mace-large] [--batch 10000] [--threads 2]
       [--repeats 7] [--e3nn-repeats 3] [--no-e3nn] [--dtype float32]
Writes bench/results/tp_kernels.json and docs/benchmarks/tp_kernels.md (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]

_COMPILE_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from multilinear.equivariant import zoo
from multilinear.kernels.tensor_product import get_tp_kernels
spec = zoo.get(sys.argv[1]).kernel_spec(sys.argv[2])
t1 = time.perf_counter()
kernels = get_tp_kernels(spec)
dt = np.dtype(spec.dtype)
B = 2
x = np.ones((B, spec.dim_in1), dt); y = np.ones((B, spec.dim_in2), dt)
w = np.ones((spec.weight_numel,) if spec.shared_weights else (B, spec.weight_numel), dt)
g = np.ones((B, spec.dim_out), dt)
times = {"import_s": t1 - t0}
t = time.perf_counter(); kernels.forward(x, y, w, np.empty_like(g)); times["forward_s"] = time.perf_counter() - t
t = time.perf_counter()
kernels.backward(x, y, w, g, np.empty_like(x), np.empty_like(y), np.empty_like(w))
times["backward_s"] = time.perf_counter() - t
t = time.perf_counter()
kernels.double_backward(x, y, w, g, x, y, w, np.empty_like(x), np.empty_like(y), np.empty_like(w), np.empty_like(g))
times["double_backward_s"] = time.perf_counter() - t
times["total_s"] = times["forward_s"] + times["backward_s"] + times["double_backward_s"]
print(json.dumps(times))
"""


def machine_info(threads: int) -> dict:
    cpu = cpu_model()
    import numba

    return {
        "cpu": cpu,
        "cores_visible": len(os.sched_getaffinity(0)),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def count_flops(spec) -> int:
    """Forward flops per sample (see the module docstring for the convention)."""
    total = 0
    for path in spec.paths:
        nnz = len(path.cg)
        if path.mode == "uvw":
            total += path.mul_in1 * path.mul_in2 * (2 * nnz + 2 * path.mul_out * path.dim_out)
        else:
            pairs = path.mul_in1 if path.mode == "uuu" else path.mul_in1 * path.mul_in2
            total += pairs * (2 * nnz + path.dim_out)
    return total


def compile_and_load_times(problem: str, dtype: str) -> dict:
    """Time the first process (empty caches: compiles) and a second one (same caches: loads)."""
    with tempfile.TemporaryDirectory(prefix="tp-bench-cache-") as cache:
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": os.path.join(cache, "numba"),
            "MULTILINEAR_CACHE_DIR": os.path.join(cache, "multilinear"),
            "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        results = {}
        for label in ("compile", "load"):
            out = subprocess.run(
                [sys.executable, "-c", _COMPILE_SCRIPT, problem, dtype],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            results[label] = json.loads(out.stdout.strip().splitlines()[-1])
        return results


CPU_MS: dict[str, float] = {}  # process CPU time (all threads) per timed call, by label: load-insensitive


def median_ms(call, repeats: int, warmup: int = 2, label: str | None = None) -> float:
    """Median wall-clock ms of ``call`` after ``warmup`` calls; the median CPU ms goes to ``CPU_MS[label]``."""
    for _ in range(warmup):
        call()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if label:
        CPU_MS[label] = 1e3 * float(np.median(cpu))
    return 1e3 * float(np.median(times))


def bench_ours(spec, batch: int, repeats: int, seed: int = 0) -> tuple[dict, dict]:
    from multilinear.kernels.tensor_product import get_tp_kernels

    kernels = get_tp_kernels(spec)
    rng = np.random.default_rng(seed)
    dt = np.dtype(spec.dtype)
    w_shape = (spec.weight_numel,) if spec.shared_weights else (batch, spec.weight_numel)
    x, y, w, g = (
        rng.standard_normal(shape).astype(dt)
        for shape in ((batch, spec.dim_in1), (batch, spec.dim_in2), w_shape, (batch, spec.dim_out))
    )
    gg = [rng.standard_normal(a.shape).astype(dt) for a in (x, y, w)]
    z = np.empty_like(g)
    grads = [np.empty_like(a) for a in (x, y, w)]
    outs = [np.empty_like(a) for a in (x, y, w, g)]
    times = {
        "forward": median_ms(lambda: kernels.forward(x, y, w, z), repeats, label="forward"),
        "backward": median_ms(lambda: kernels.backward(x, y, w, g, *grads), repeats, label="backward"),
        "double_backward": median_ms(
            lambda: kernels.double_backward(x, y, w, g, *gg, *outs), repeats, label="double_backward"
        ),
        "double_backward_composed": median_ms(
            lambda: kernels.double_backward_composed(x, y, w, g, *gg, *outs),
            max(3, repeats // 2),
            label="double_backward_composed",
        ),
    }
    kernels.forward(x, y, w, z)
    return times, {"x": x, "y": y, "w": w, "z": z}


def bench_e3nn(problem: str, arrays: dict, repeats: int, threads: int) -> dict:
    import torch
    from e3nn import o3

    from multilinear.equivariant import zoo

    torch.set_num_threads(threads)
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[arrays["x"].dtype]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        tp = o3.TensorProduct(**zoo.e3nn_args(problem))
    finally:
        torch.set_default_dtype(previous)
    x, y, w = (torch.from_numpy(arrays[n]) for n in ("x", "y", "w"))
    g = torch.randn(arrays["z"].shape, dtype=dtype)
    gg = [torch.randn_like(t) for t in (x, y, w)]

    def forward():
        with torch.no_grad():
            return tp(x, y, w)

    def forward_backward():
        xs, ys, ws = (t.detach().requires_grad_(True) for t in (x, y, w))
        torch.autograd.grad(tp(xs, ys, ws), (xs, ys, ws), g)

    def forward_double_backward():
        xs, ys, ws, gs = (t.detach().requires_grad_(True) for t in (x, y, w, g))
        grads = torch.autograd.grad(tp(xs, ys, ws), (xs, ys, ws), gs, create_graph=True)
        pairing = sum((a * b).sum() for a, b in zip(grads, gg))
        torch.autograd.grad(pairing, (xs, ys, ws, gs))

    z = forward().numpy()
    scale = max(1.0, float(np.max(np.abs(z))))
    return {
        "forward": median_ms(forward, repeats, warmup=1, label="e3nn_forward"),
        "forward_backward": median_ms(forward_backward, repeats, warmup=1, label="e3nn_forward_backward"),
        "forward_backward_double": median_ms(
            forward_double_backward, repeats, warmup=1, label="e3nn_forward_backward_double"
        ),
        "max_rel_diff_forward": float(np.max(np.abs(z - arrays["z"]))) / scale,
    }


NOTES = """## What limits these kernels (measured while building them, one thread, process CPU time)

- MACE-large per 10,000 samples, float32: with the data in cache (batch 100) forward 14 ms, backward
  29 ms, fused double backward 87 ms; with the data in memory (batch 10,000) 40, 58 and 109 ms. A
  kernel that only streams the same bytes (reads x and w, writes z: 497 MB plus the write-allocate reads of
  z) took 23 ms. The forward is bound by memory traffic, the backward and double backward by arithmetic and
  the shuffles that e3nn's interleaved ``(mul, 2l+1)`` layout costs when vectorising across channels.
- x segments read by several output segments are de-interleaved once per sample into a transposed
  scratch (forward: -20% compute), and grad x segments summed by several paths are accumulated in one
  (backward: -19% compute; double backward: -13%); the layout's shuffles are otherwise paid per path.
- Paths are fused per output segment. Fusing every path with the same multiplicity into one channel loop
  (x loaded once, one pass) was 1.5x slower on MACE-large: the CG coefficients and accumulators spill.
- The fused double backward reads each input once and writes each output once; composing it from three
  forward and three backward calls moved about 5x more bytes and took 3-6x longer.
- Software prefetch of the next sample's rows changed the times by at most ~10% (within the noise of
  this shared machine); not adopted.
- On this shared machine two threads often get about one core between them: wall time close to the
  process CPU time (all threads) means that; a bare numba ``nogil`` spin loop on two Python threads took
  twice as long as on one during the same period. With two free cores expect about half the wall times.
- Kernels are serial ``@njit(nogil=True)`` functions over a row range, run on a thread pool of
  ``numba.get_num_threads()`` workers: a ``parallel=True`` kernel took ~2.5x longer to compile.
  Compile cost is in numba's front end (``NUMBA_OPT=0`` saves ~10%): MACE-large takes ~3, 6 and 12 CPU
  seconds for forward, backward and double backward; a second process loads them from the disk cache."""


def to_markdown(report: dict) -> str:
    ours, peer, info = report["ours_ms"], report.get("e3nn_ms"), report["machine"]
    gf = report["forward_flops_per_sample"] * report["batch"] / 1e9
    lines = [
        "# Tensor-product kernels: raw generated kernels vs e3nn",
        "",
        f"Problem **{report['problem']}**, batch {report['batch']}, {report['dtype']}, "
        f"{'shared' if report['shared_weights'] else 'per-sample'} weights, {info['threads']} threads, "
        f"CPU {info['cpu']} ({info['cores_visible']} cores visible). Load average before/after: "
        f"{report['loadavg_before']} / {report['loadavg_after']} (a shared machine: quote ratios).",
        "",
        "Ours: numpy arrays in, outputs preallocated, median of "
        f"{report['repeats']} after warm-up. e3nn 0.6.0 `o3.TensorProduct` with the same arguments, "
        "same threads, allocator warm, median of "
        f"{report['e3nn_repeats']}. Forward work counted: {gf:.3f} GFLOP (2 × nonzero CG multiply-adds "
        "per channel pair + the weight multiply per output; backward 2×, double backward 4×).",
        "",
        "| op | ours (ms) | GFLOP/s | e3nn (ms) | e3nn / ours |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [
        ("forward", ours["forward"], 1, peer and peer["forward"]),
        ("backward", ours["backward"], 2, None),
        ("forward + backward", ours["forward"] + ours["backward"], 3, peer and peer["forward_backward"]),
        ("double backward (fused)", ours["double_backward"], 4, None),
        ("double backward (composed of fwd/bwd calls)", ours["double_backward_composed"], 4, None),
        (
            "forward + backward + double backward",
            ours["forward"] + ours["backward"] + ours["double_backward"],
            7,
            peer and peer["forward_backward_double"],
        ),
    ]
    for name, ms, factor, peer_ms in rows:
        peer_cells = f"{peer_ms:.1f} | {peer_ms / ms:.1f}×" if peer_ms else "– | –"
        lines.append(f"| {name} | {ms:.1f} | {factor * gf / (ms / 1e3):.1f} | {peer_cells} |")
    comp = report["compile"]
    lines += [
        "",
        "Compile and load (fresh processes; getting the kernels plus the first call of each op, batch 2):",
        "",
        "| | forward (s) | backward (s) | double backward (s) | total (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in ("compile", "load"):
        c = comp[label]
        lines.append(
            f"| {label} ({'empty caches' if label == 'compile' else 'warm caches'}) | {c['forward_s']:.2f} | "
            f"{c['backward_s']:.2f} | {c['double_backward_s']:.2f} | {c['total_s']:.2f} |"
        )
    lines += [
        "",
        "Process CPU time per call (all threads; less sensitive to other load than wall time), ms: "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["cpu_ms"].items())
        + ".",
    ]
    if peer:
        lines += ["", f"Max relative difference of the forward vs e3nn: {peer['max_rel_diff_forward']:.1e}."]
    lines += [
        "",
        NOTES,
        "",
        "Reproduce: `python bench/bench_tp_kernels.py` (writes bench/results/tp_kernels.json).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="mace-large")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--e3nn-repeats", type=int, default=3)
    parser.add_argument("--no-e3nn", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile/load subprocesses")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import numba

    from multilinear.equivariant import zoo

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    spec = zoo.get(args.problem).kernel_spec(args.dtype)
    report: dict = {
        "problem": args.problem,
        "batch": args.batch,
        "dtype": args.dtype,
        "shared_weights": spec.shared_weights,
        "repeats": args.repeats,
        "e3nn_repeats": args.e3nn_repeats,
        "forward_flops_per_sample": count_flops(spec),
        "machine": machine_info(args.threads),
        "loadavg_before": [round(v, 2) for v in os.getloadavg()],
    }
    if not args.no_compile:
        report["compile"] = compile_and_load_times(args.problem, args.dtype)
    ours, arrays = bench_ours(spec, args.batch, args.repeats)
    report["ours_ms"] = ours
    if not args.no_e3nn:
        report["e3nn_ms"] = bench_e3nn(args.problem, arrays, args.e3nn_repeats, args.threads)
    report["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    report["cpu_ms"] = dict(CPU_MS)

    gf = report["forward_flops_per_sample"] * args.batch / 1e9
    print(
        f"{args.problem} batch {args.batch} {args.dtype} threads {args.threads} load {report['loadavg_before']}"
    )
    print(f"{'op':<28} {'ours ms':>9} {'GFLOP/s':>8} {'e3nn ms':>9} {'e3nn/ours':>9}")
    peer = report.get("e3nn_ms", {})
    for name, ms, factor, peer_ms in (
        ("forward", ours["forward"], 1, peer.get("forward")),
        ("backward", ours["backward"], 2, None),
        ("forward+backward", ours["forward"] + ours["backward"], 3, peer.get("forward_backward")),
        ("double backward", ours["double_backward"], 4, None),
        ("double backward (composed)", ours["double_backward_composed"], 4, None),
        ("fwd+bwd+double", ours["forward"] + ours["backward"] + ours["double_backward"], 7,
         peer.get("forward_backward_double")),
    ):  # fmt: skip
        peer_txt = f"{peer_ms:9.1f} {peer_ms / ms:8.1f}x" if peer_ms else f"{'-':>9} {'-':>9}"
        print(f"{name:<28} {ms:9.1f} {factor * gf / (ms / 1e3):8.1f} {peer_txt}")
    print("cpu ms:", ", ".join(f"{k} {v:.1f}" for k, v in report["cpu_ms"].items()))
    if "compile" in report:
        for label, c in report["compile"].items():
            print(f"{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()))
    if not args.no_write:
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "tp_kernels.json").write_text(json.dumps(report, indent=2) + "\n")
        if "compile" in report:
            (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
            (ROOT / "docs" / "benchmarks" / "tp_kernels.md").write_text(to_markdown(report))
    return report


if __name__ == "__main__":
    main()
