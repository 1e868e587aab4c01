"""Exact sparse CP-ALS: seconds per iteration, ours against pyttb ``cp_als`` measured in the same run.

Cases (rank 25):
  (a) 2000 x 2000 x 2000 with 10^6 uniform nonzeros             ours and pyttb
  (b) the NYC flights tensor data/flights_tail_dest_day_hour.tns.gz   ours and pyttb (when the file exists)
  (c) 10^6 x 5x10^5 x 2x10^5 x ... power law, 10^7 nonzeros      ours alone

Per-iteration time is the median over iterations of one run (update + fit: pyttb computes its fit every
iteration too), JIT compile time is measured separately in a fresh process with an empty numba cache, and
the setup (per-mode sorted layouts) is reported apart. pyttb runs a few iterations only (it is slow); its
per-iteration times come from timestamps of its mode-0 MTTKRP calls. Both start from the same factors and
their fits after the same iterations are compared. Thread settings (numba 1 vs 2, BLAS 1 vs default) are
compared on case (a).

Usage: python bench/bench_cp.py [--quick] [--cases a,b,c] [--iters 10] [--pyttb-iters 3]
Writes bench/results/cp.json and docs/benchmarks/cp.md.
"""

from __future__ import annotations

import argparse
import gc
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

import multilinear as ml

ROOT = Path(__file__).resolve().parents[1]
RANK = 25
FLIGHTS = ROOT / "data" / "flights_tail_dest_day_hour.tns.gz"


# ------------------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    import numba
    from threadpoolctl import threadpool_info

    cpu = cpu_model()
    blas = [
        {"api": p.get("internal_api"), "threads": p.get("num_threads"), "version": p.get("version")}
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "blas": blas,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


# ------------------------------------------------------------------------------------------- tensors
def uniform_tensor(shape: tuple[int, ...], nnz: int, seed: int) -> ml.SparseTensor:
    try:
        from multilinear.tensor import random_sparse
    except ImportError:
        rng = np.random.default_rng(seed)
        indices = np.stack([rng.integers(0, s, nnz) for s in shape], axis=1)
        return ml.SparseTensor(indices, rng.random(nnz), shape)
    return random_sparse(shape, nnz, distribution="uniform", rng=seed)


def powerlaw_tensor(shape: tuple[int, ...], nnz: int, seed: int) -> ml.SparseTensor:
    try:
        from multilinear.tensor import random_sparse
    except ImportError:
        # log-uniform indices (p(i) ~ 1/i): heavy slices at low indices in every mode; duplicates summed
        rng = np.random.default_rng(seed)
        indices = np.stack(
            [np.minimum((s ** rng.random(nnz)).astype(np.int64) - 1, s - 1) for s in shape], axis=1
        )
        return ml.SparseTensor(indices, rng.random(nnz), shape)
    return random_sparse(shape, nnz, distribution="powerlaw", rng=seed)


# ------------------------------------------------------------------------------------------- runners
def start_factors(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((s, RANK)) for s in shape]


def run_ours(X: ml.SparseTensor, iters: int, start: list[np.ndarray]) -> dict:
    cpu_stamps: list[float] = []

    def stamp(iteration, fit, factors):
        cpu_stamps.append(time.process_time())

    result = ml.cp_als(X, RANK, init=start, max_iter=iters, tol=0.0, callback=stamp)
    per_iter = np.asarray(result.times.update) + np.asarray(result.times.fit)
    return {
        "cpu_seconds_per_iter": float(np.median(np.diff(cpu_stamps))) if len(cpu_stamps) > 1 else None,
        "seconds_per_iter": float(np.median(per_iter)),
        "update_seconds_per_iter": float(np.median(result.times.update)),
        "fit_seconds_per_iter": float(np.median(result.times.fit)),
        "setup_seconds": result.times.setup,
        "iterations": result.iterations,
        "fit": result.fit,
    }


def run_pyttb(X: ml.SparseTensor, iters: int, start: list[np.ndarray]) -> dict:
    import pyttb as ttb

    stamps: list[float] = []
    cpu_stamps: list[float] = []

    class TimedSptensor(ttb.sptensor):
        """pyttb's sptensor, stamping the time of each mode-0 MTTKRP (the start of an iteration)."""

        def mttkrp(self, U, n):
            if n == 0:
                stamps.append(time.perf_counter())
                cpu_stamps.append(time.process_time())
            return super().mttkrp(U, n)

    peer = TimedSptensor(X.indices, X.values[:, None], X.shape)
    t0 = time.perf_counter()
    _, _, out = ttb.cp_als(peer, RANK, init=ttb.ktensor(start), maxiters=iters, stoptol=0.0, printitn=0)
    stamps.append(time.perf_counter())
    cpu_stamps.append(time.process_time())
    total = stamps[-1] - t0
    per_iter = np.diff(stamps)
    return {
        "cpu_seconds_per_iter": float(np.median(np.diff(cpu_stamps))),
        "seconds_per_iter": float(np.median(per_iter)),
        "total_seconds": total,
        "iterations": int(out["iters"]) + 1,
        "fit": float(out["fit"]),
    }


def compile_seconds() -> dict:
    """JIT compile + first call in a fresh process with an empty numba cache, then with the cache filled."""
    code = (
        "import time, numpy as np; t = time.perf_counter(); import multilinear as ml; "
        "rng = np.random.default_rng(0); X = ml.SparseTensor(rng.integers(0, 5, (50, 3)), rng.random(50), (5, 5, 5)); "
        "ml.cp_als(X, 2, max_iter=2, rng=0); print(time.perf_counter() - t)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold_cache", "warm_cache"):
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            out[label] = float(run.stdout.strip()) if run.returncode == 0 else None
    return out


def thread_variants(X: ml.SparseTensor, iters: int, start: list[np.ndarray]) -> list[dict]:
    """Our s/iter on X for numba threads 1 and 2, BLAS limited to 1 thread in the loop (our default) or not."""
    import numba

    from multilinear.decompose import cp

    rows = []
    default_blas = cp._LOOP_BLAS_THREADS
    try:
        for numba_threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            for blas in (1, None):
                numba.set_num_threads(numba_threads)
                cp._LOOP_BLAS_THREADS = blas
                res = run_ours(X, iters, start)
                rows.append(
                    {
                        "numba_threads": numba_threads,
                        "blas_threads": "1" if blas == 1 else "default",
                        "seconds_per_iter": res["seconds_per_iter"],
                        "loadavg": os.getloadavg()[0],
                    }
                )
    finally:
        cp._LOOP_BLAS_THREADS = default_blas
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return rows


_LAYER_SCRIPT = """
import json, sys, time, numpy as np, numba, multilinear as ml
sys.path.insert(0, {bench_dir!r})
from bench_cp import uniform_tensor, start_factors
X = uniform_tensor((2000, 2000, 2000), {nnz}, seed=1)
start = start_factors(X.shape, 2)
out = {{}}
for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
    numba.set_num_threads(threads)
    ml.cp_als(X, 25, init=start, max_iter=2, tol=0.0)
    res = ml.cp_als(X, 25, init=start, max_iter={iters}, tol=0.0)
    out[threads] = float(np.median(np.asarray(res.times.update) + np.asarray(res.times.fit)))
print(json.dumps({{"layer": numba.threading_layer(), "seconds_per_iter": out}}))
"""


def threading_layer_variants(nnz: int, iters: int) -> list[dict]:
    """Case (a) in fresh processes under numba's OpenMP layer (default spinning, OMP_WAIT_POLICY=passive)
    and its workqueue layer, with 1 and 2 numba threads: how each copes with oversubscribed cores."""
    script = _LAYER_SCRIPT.format(bench_dir=str(Path(__file__).resolve().parent), nnz=nnz, iters=iters)
    rows = []
    for label, extra in (
        ("omp (default)", {}),
        ("omp, OMP_WAIT_POLICY=passive", {"OMP_WAIT_POLICY": "passive"}),
        ("workqueue", {"NUMBA_THREADING_LAYER": "workqueue"}),
    ):
        env = {**os.environ, **extra}
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            rows.append({"setting": label, "error": run.stderr.strip().splitlines()[-1:]})
            continue
        result = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append({"setting": label, **result, "loadavg": os.getloadavg()[0]})
        print(f"  {label}: {result}", flush=True)
    return rows


def single_thread_cpu(X: ml.SparseTensor, iters: int, pyttb_iters: int, start: list[np.ndarray]) -> dict:
    """CPU seconds per iteration of both with one thread each (numba 1, BLAS 1): a figure the load of a
    shared machine disturbs far less than wall time (only through caches and memory bandwidth)."""
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            ours = run_ours(X, iters, start)["cpu_seconds_per_iter"]
            peer = run_pyttb(X, pyttb_iters, start)["cpu_seconds_per_iter"]
    finally:
        numba.set_num_threads(previous)
    return {"ours_cpu_seconds_per_iter": ours, "pyttb_cpu_seconds_per_iter": peer, "ratio": peer / ours}


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory since the last reset (or since the start), MiB."""
    return _status_mib("VmHWM")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def layout_mib(X: ml.SparseTensor) -> float:
    return sum(v.nbytes for k, v in X._cache.items() if k[0] == "mttkrp_layout") / 2**20


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--pyttb-iters", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="smaller tensors (a smoke test, not for the table)"
    )
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    scale = 10 if args.quick else 1

    report: dict = {"machine": machine_info(), "loadavg_start": os.getloadavg(), "rank": RANK, "cases": []}
    print(
        f"machine: {report['machine']['cpu']}, {report['machine']['cpus']} CPUs, numba threads "
        f"{report['machine']['numba_threads']}, load average {report['loadavg_start']}"
    )
    report["compile"] = compile_seconds()
    print(f"compile + first call, fresh process: {report['compile']}")

    if "a" in cases:
        X = uniform_tensor((2000, 2000, 2000), 10**6 // scale, seed=1)
        start = start_factors(X.shape, 2)
        ours = run_ours(X, args.iters, start)
        peer = run_pyttb(X, args.pyttb_iters, start)
        same = run_ours(X, args.pyttb_iters, start)
        row = case_row("(a) 2000^3 uniform", X, ours, peer, same)
        row["single_thread_cpu"] = single_thread_cpu(X, args.iters, args.pyttb_iters, start)
        report["cases"].append(row)
        report["threads"] = thread_variants(X, args.iters, start)
        report["threading_layers"] = threading_layer_variants(X.nnz, args.iters)

    if "b" in cases:
        if FLIGHTS.exists():
            X = ml.read_tns(FLIGHTS)
            start = start_factors(X.shape, 3)
            ours = run_ours(X, args.iters, start)
            peer = run_pyttb(X, max(args.pyttb_iters, 5), start)
            same = run_ours(X, max(args.pyttb_iters, 5), start)
            row = case_row("(b) NYC flights", X, ours, peer, same)
            row["single_thread_cpu"] = single_thread_cpu(X, args.iters, max(args.pyttb_iters, 5), start)
            report["cases"].append(row)
        else:
            print(f"(b) skipped: {FLIGHTS} does not exist yet")

    if "c" in cases:
        t0 = time.perf_counter()
        X = powerlaw_tensor((10**6, 5 * 10**5, 2 * 10**5), 10**7 // scale, seed=4)
        build = time.perf_counter() - t0
        start = start_factors(X.shape, 5)
        gc.collect()
        rss_with_tensor = rss_mib()
        peak_reset = reset_peak_rss()
        ours = run_ours(X, max(3, args.iters // 2), start)
        row = case_row("(c) power law 10^7", X, ours, None, None)
        row.update(
            tensor_seconds=build,
            layout_mib=layout_mib(X),
            tensor_mib=(X.indices.nbytes + X.values.nbytes) / 2**20,
            rss_with_tensor_mib=rss_with_tensor,
            peak_rss_during_cp_mib=peak_rss_mib() if peak_reset else None,
        )
        report["cases"].append(row)

    import numba

    report["loadavg_end"] = os.getloadavg()
    report["machine"]["numba_threading_layer"] = numba.threading_layer()
    print_table(report)
    out = ROOT / "bench" / "results" / "cp.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        out.write_text(json.dumps(report, indent=2))
        write_markdown(report, ROOT / "docs" / "benchmarks" / "cp.md")
        print(f"wrote {out} and docs/benchmarks/cp.md")


def case_row(name: str, X: ml.SparseTensor, ours: dict, peer: dict | None, same: dict | None) -> dict:
    row = {"case": name, "shape": list(X.shape), "nnz": X.nnz, "ours": ours, "loadavg": os.getloadavg()}
    if peer is not None:
        row["pyttb"] = peer
        row["speedup"] = peer["seconds_per_iter"] / ours["seconds_per_iter"]
        row["ours_fit_same_iterations"] = same["fit"]
        row["fit_difference_same_iterations"] = abs(same["fit"] - peer["fit"])
    print(
        f"{name}: ours {ours['seconds_per_iter']:.4f} s/iter (setup {ours['setup_seconds']:.2f} s)"
        + ("" if peer is None else f", pyttb {peer['seconds_per_iter']:.3f} s/iter, {row['speedup']:.1f}x")
        + f", load {row['loadavg'][0]:.2f}",
        flush=True,
    )
    return row


def print_table(report: dict) -> None:
    print()
    print("case | ours s/iter | pyttb s/iter | pyttb/ours")
    for row in report["cases"]:
        peer = row.get("pyttb")
        print(
            f"{row['case']} | {row['ours']['seconds_per_iter']:.4f} | "
            + ("-" if peer is None else f"{peer['seconds_per_iter']:.3f}")
            + " | "
            + ("-" if peer is None else f"{row['speedup']:.1f}")
        )
    for row in report["cases"]:
        if "single_thread_cpu" in row:
            cpu = row["single_thread_cpu"]
            print(
                f"  {row['case']}, CPU s/iter at one thread: ours {cpu['ours_cpu_seconds_per_iter']:.4f}, "
                f"pyttb {cpu['pyttb_cpu_seconds_per_iter']:.3f}, pyttb/ours {cpu['ratio']:.1f}"
            )
    for row in report.get("threads", []):
        print(
            f"  threads: numba {row['numba_threads']}, BLAS {row['blas_threads']}: {row['seconds_per_iter']:.4f} s/iter"
        )
    print(f"load average: start {report['loadavg_start']}, end {report['loadavg_end']}")


def write_markdown(report: dict, path: Path) -> None:
    m = report["machine"]
    lines = [
        "# Exact sparse CP-ALS: multilinear vs pyttb",
        "",
        "Generated by `bench/bench_cp.py` (raw figures in `bench/results/cp.json`). Rank 25. Seconds per",
        "iteration are medians over the iterations of one run, each iteration counting the factor updates and",
        "the exact fit (pyttb computes its fit every iteration too); compile time and setup (per-mode sorted",
        "layouts) are excluded and listed separately. Both start from the same factors; the fit difference",
        "after the same number of iterations is shown as a check.",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, numba {m['numba']} ({m['numba_threads']} threads, "
        f"layer {m['numba_threading_layer']}), BLAS {m['blas']}. Load average at start "
        f"{tuple(round(x, 2) for x in report['loadavg_start'])}, at end "
        f"{tuple(round(x, 2) for x in report['loadavg_end'])} (a shared machine: ratios, not absolute "
        "times, are the figures to trust).",
        "",
        "| case | nnz | ours s/iter | pyttb s/iter | pyttb/ours | ours setup s | fit diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["cases"]:
        peer = row.get("pyttb")
        lines.append(
            f"| {row['case']} | {row['nnz']:,} | {row['ours']['seconds_per_iter']:.4f} | "
            + ("-" if peer is None else f"{peer['seconds_per_iter']:.3f}")
            + " | "
            + ("-" if peer is None else f"{row['speedup']:.1f}x")
            + f" | {row['ours']['setup_seconds']:.2f} | "
            + ("-" if peer is None else f"{row['fit_difference_same_iterations']:.1e}")
            + " |"
        )
    cpu_rows = [row for row in report["cases"] if "single_thread_cpu" in row]
    if cpu_rows:
        lines += [
            "",
            "CPU seconds per iteration with one thread each (numba 1 thread, BLAS 1 thread, `process_time`):",
            "less disturbed by the machine's load than wall time.",
            "",
            "| case | ours CPU s/iter | pyttb CPU s/iter | pyttb/ours |",
            "|---|---|---|---|",
        ]
        for row in cpu_rows:
            cpu = row["single_thread_cpu"]
            lines.append(
                f"| {row['case']} | {cpu['ours_cpu_seconds_per_iter']:.4f} | "
                f"{cpu['pyttb_cpu_seconds_per_iter']:.3f} | {cpu['ratio']:.1f}x |"
            )
    for row in report["cases"]:
        if "layout_mib" in row:
            lines += [
                "",
                f"{row['case']}: tensor (COO) {row['tensor_mib']:.0f} MiB, per-mode layouts "
                f"{row['layout_mib']:.0f} MiB. Resident memory of the benchmark process: "
                f"{row['rss_with_tensor_mib']:.0f} MiB with the tensor and its start factors built, peak "
                f"{row['peak_rss_during_cp_mib']:.0f} MiB during cp_als (its layouts, stacked factors, "
                f"scratch and temporaries add {row['peak_rss_during_cp_mib'] - row['rss_with_tensor_mib']:.0f} "
                f"MiB). Building the tensor (random_sparse) took {row['tensor_seconds']:.1f} s.",
            ]
    c = report["compile"]
    lines += [
        "",
        f"Compile: a fresh process with an empty numba cache needs {c['cold_cache']:.1f} s for import + first "
        f"cp_als on a tiny tensor; with the cache filled {c['warm_cache']:.2f} s.",
    ]
    if report.get("threads"):
        lines += [
            "",
            "Threads on case (a) (s/iter):",
            "",
            "| numba threads | BLAS threads in the loop | s/iter | load |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['numba_threads']} | {r['blas_threads']} | {r['seconds_per_iter']:.4f} | {r['loadavg']:.2f} |"
            for r in report["threads"]
        ]
    lines += [
        "",
        "## Notes",
        "",
        "- Reference figures quoted from `shared/MEASURED.md` (same kind of machine, quiet, not this run):",
        "  SPLATT 2.0 (C/OpenMP, CSF) 0.015-0.030 s/iter on (a), 0.012-0.015 on (b), 0.60 on (c) (936 MiB);",
        "  pyttb 1.8.6 0.76, 0.26 and 27.9 s/iter (2.75 GiB on (c)).",
        "- Kernel: nonzeros counting-sorted per mode (int32 stacked-row indices + float64 values,",
        "  `nnz * (4 (N-1) + 8)` bytes per mode), equal-nonzero chunks over threads with heavy slices split",
        "  and their partial rows summed afterwards, rank loop innermost, software prefetch of the factor rows",
        "  8 nonzeros ahead (1.7x single-thread on (c), neutral on (a)); where fibers are long (slices also",
        "  sorted by their smallest other mode) the fiber's shared row is multiplied once per fiber (1.35x",
        "  single-thread on (b)). Single-thread CPU time of one MTTKRP: ~10 ns per nonzero on (a), about",
        "  what SPLATT's 2-thread figure implies per nonzero; ~40 ns on (c), whose factors far exceed the",
        "  caches.",
        "- Threads: BLAS is limited to one thread inside the ALS loop (its calls there are R x R solves,",
        "  Grams and one GEMM per mode; OpenBLAS threads and numba's OpenMP threads fight on two cores, see",
        "  the tables above). numba uses all its threads (`NUMBA_NUM_THREADS`). On this shared machine (load",
        "  average 6-10 on 2 cores) two numba threads were slower than one under the default OpenMP layer,",
        "  whose idle threads spin: `OMP_WAIT_POLICY=passive` or the workqueue layer remove most of that",
        "  penalty; a quiet machine should show the usual gain from the second thread.",
    ]
    if report.get("threading_layers"):
        lines += [
            "",
            "Threading layers on case (a), each in a fresh process (s/iter):",
            "",
            "| setting | layer | 1 numba thread | 2 numba threads | load |",
            "|---|---|---|---|---|",
        ]
        for r in report["threading_layers"]:
            if "error" in r:
                lines.append(f"| {r['setting']} | failed: {r['error']} | | | |")
                continue
            t = r["seconds_per_iter"]
            two = t.get("2", t.get(2))
            lines.append(
                f"| {r['setting']} | {r['layer']} | {t.get('1', t.get(1)):.4f} | "
                + ("-" if two is None else f"{two:.4f}")
                + f" | {r['loadavg']:.2f} |"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
