"""Randomized CP-ALS (CP-ARLS-LEV, its hybrid, STS-CP) against exact CP-ALS, measured in the same run.

Sections (each runs in its own process so its peak memory is its own; results go to
bench/results/randomized_cp/<section>.json, then ``report`` merges them into bench/results/randomized_cp.json
and writes docs/benchmarks/randomized_cp.md and docs/benchmarks/randomized_cp_fit_time.png):

- ``accuracy-flights``: final fit after a fixed number of iterations on the NYC flights tensor
  (destination x carrier x day x hour) for each method, rank and seed. Same iterations for every method.
- ``accuracy-synthetic``: the same on a planted power-law tensor (random_sparse with a planted rank-25
  model and 10% noise at power-law coordinates).
- ``fit-time``: fit against update time (fit evaluations excluded) on a larger planted power-law tensor;
  time to reach 95% of exact ALS's final fit; the PNG plot; peak memory of each method's process.
- ``sampler``: bench/bench_sampler.py's case (N = 3, I = 2^22, R = 32, J = 65,536).

Usage: python bench/bench_randomized_cp.py SECTION [options]   (see --help); SECTION=all runs them in turn,
then ``python bench/bench_randomized_cp.py report``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "randomized_cp"
FLIGHTS = ROOT / "data" / "flights_dest_carrier_day_hour.tns.gz"
MERGED = ROOT / "bench" / "results" / "randomized_cp.json"
PLOT = ROOT / "docs" / "benchmarks" / "randomized_cp_fit_time.png"
METHODS = ("exact", "arls-lev", "arls-lev-hybrid", "sts")


def machine_info() -> dict:
    import numba

    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_cp(X, rank: int, method: str, samples: int, iters: int, seed: int, fit_every: int = 1) -> dict:
    import multilinear as ml

    kwargs = {} if method == "exact" else {"samples": samples}
    load = os.getloadavg()[0]
    result = ml.cp_als(
        X, rank, method=method, max_iter=iters, tol=0.0, rng=seed, fit_every=fit_every, **kwargs
    )
    return {
        "method": method,
        "rank": rank,
        "seed": seed,
        "samples": None if method == "exact" else samples,
        "fit": result.fit,
        "fit_history": [list(h) for h in result.fit_history],
        "update_s": list(result.times.update),
        "fit_s": list(result.times.fit),
        "setup_s": result.times.setup,
        "loadavg_start": load,
    }


def planted_powerlaw(shape, nnz: int, seed: int):
    from multilinear.tensor import random_sparse

    return random_sparse(shape, nnz, rank=25, distribution="powerlaw", exponent=1.0, noise=0.1, rng=seed)


def section_accuracy(args, name: str) -> dict:
    import multilinear as ml

    t0 = time.perf_counter()
    if name == "accuracy-flights":
        X = ml.read_tns(FLIGHTS)
        tensor = {"name": FLIGHTS.name, "shape": X.shape, "nnz": X.nnz}
    else:
        shape = tuple(args.synthetic_shape)
        X = planted_powerlaw(shape, args.synthetic_nnz, seed=7)
        tensor = {"name": "planted power law (rank 25, 10% noise)", "shape": X.shape, "nnz": X.nnz}
    load_s = time.perf_counter() - t0
    runs = []
    # compile (or load cached kernels) on a small problem first, so no run pays it
    small = ml.SparseTensor(X.indices[:5000], X.values[:5000], X.shape)
    for method in args.methods:
        run_cp(small, 3, method, 64, 1, 0)
    for rank in args.ranks:
        for method in args.methods:
            seeds = args.seeds if method != "exact" else args.seeds[: args.exact_seeds]
            for seed in seeds:
                run = run_cp(X, rank, method, args.samples, args.iters, seed, fit_every=args.iters)
                runs.append(run)
                print(
                    f"{name} R={rank} {method:16s} seed={seed} fit={run['fit']:.4f} "
                    f"update/iter={np.median(run['update_s']):.2f}s load={run['loadavg_start']:.1f}",
                    flush=True,
                )
    return {"tensor": tensor, "load_s": load_s, "iters": args.iters, "samples": args.samples, "runs": runs}


def section_fit_time(args) -> dict:
    """One method per child process (peak memory per method); the tensor is regenerated from its seed."""
    runs = []
    for method in args.fit_time_methods:
        cmd = [sys.executable, __file__, "fit-time-one", "--method", method]
        cmd += ["--fit-time-shape", *map(str, args.fit_time_shape), "--fit-time-nnz", str(args.fit_time_nnz)]
        cmd += ["--fit-time-rank", str(args.fit_time_rank), "--fit-time-iters", str(args.fit_time_iters)]
        cmd += ["--samples", str(args.samples)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"fit-time {method:16s} fit={run['fit']:.4f} update/iter={np.median(run['update_s']):.2f}s "
            f"peak={run['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    exact = next((r for r in runs if r["method"] == "exact"), None)
    if exact is not None:
        target = 0.95 * exact["fit"]
        for run in runs:
            run["time_to_95pct_exact_fit_s"] = time_to_target(run, target)
    return {"runs": runs, "target_fraction": 0.95}


def time_to_target(run: dict, target: float) -> float | None:
    elapsed = np.cumsum(run["update_s"])
    for iteration, fit in run["fit_history"]:
        if fit >= target:
            return float(elapsed[int(iteration) - 1])
    return None


def fit_time_one(args) -> None:
    from multilinear.decompose._sketched import fiber_layout

    t0 = time.perf_counter()
    X = planted_powerlaw(tuple(args.fit_time_shape), args.fit_time_nnz, seed=11)
    generate_s = time.perf_counter() - t0
    tensor_rss = peak_rss_mib()
    run = run_cp(X, args.fit_time_rank, args.method, args.samples, args.fit_time_iters, 0)
    layouts = {}
    for key, value in X._cache.items():
        layouts[str(key)] = int(getattr(value, "nbytes", 0))
    if args.method != "exact":
        layouts["fiber_layouts_total"] = sum(fiber_layout(X, m).nbytes for m in range(X.ndim))
    run.update(
        {
            "tensor": {"shape": X.shape, "nnz": X.nnz, "bytes": int(X.indices.nbytes + X.values.nbytes)},
            "generate_s": generate_s,
            "rss_after_generate_mib": tensor_rss,
            "peak_rss_mib": peak_rss_mib(),
            "layout_bytes": layouts,
        }
    )
    print(json.dumps(run))


def section_sampler(args) -> dict:
    out = RESULTS / "sampler_raw.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_sampler.py"), "--json", str(out)]
    cmd += ["--rows-log2", str(args.sampler_rows_log2), "--repeats", str(args.sampler_repeats)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


# the hybrid sampler of these runs drew its random rows by rejection from outside the deterministic set;
# it was replaced (commit "hybrid sampler: Larsen-Kolda scheme without rejection") before the later runs
REJECTION_HYBRID_PARTS = {"accuracy-flights_r25_r50", "accuracy-synthetic"}
REJECTION_LABEL = "arls-lev-hybrid (rejection)"


def accuracy_table(parts: dict) -> str:
    """Runs pooled over the accuracy parts by (tensor, rank, method); gaps relative to exact's mean fit."""
    pooled: dict[tuple[str, int, str], list[dict]] = {}
    for name, data in sorted(parts.items()):
        if not name.startswith("accuracy"):
            continue
        for run in data["runs"]:
            method = run["method"]
            if method == "arls-lev-hybrid" and name in REJECTION_HYBRID_PARTS:
                method = REJECTION_LABEL
            pooled.setdefault((data["tensor"]["name"], run["rank"], method), []).append(run)
    lines = [
        "| tensor | R | method | seeds | final fit, mean | spread (min-max) | gap to exact | update s/iter (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tensor, rank in sorted({(t, r) for t, r, _ in pooled}):
        exact = [run["fit"] for run in pooled.get((tensor, rank, "exact"), [])]
        exact_mean = float(np.mean(exact)) if exact else float("nan")
        for method in (*METHODS, REJECTION_LABEL):
            chosen = pooled.get((tensor, rank, method))
            if not chosen:
                continue
            fits = np.array([run["fit"] for run in chosen])
            per_iter = float(np.median(np.concatenate([run["update_s"] for run in chosen])))
            gap = (exact_mean - fits.mean()) / exact_mean * 100
            lines.append(
                f"| {tensor} | {rank} | {method} | {len(chosen)} | {fits.mean():.4f} | "
                f"{fits.min():.4f}-{fits.max():.4f} | {gap:+.1f}% | {per_iter:.2f} |"
            )
    return "\n".join(lines)


def fit_time_table(data: dict) -> str:
    lines = [
        "| method | final fit | update s/iter (median) | time to 95% of exact's final fit (s) | peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for run in data["runs"]:
        reach = run.get("time_to_95pct_exact_fit_s")
        reach_text = "not reached" if reach is None else f"{reach:.1f}"
        lines.append(
            f"| {run['method']} | {run['fit']:.4f} | {np.median(run['update_s']):.2f} | {reach_text} | "
            f"{run['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def plot_fit_time(data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run in data["runs"]:
        elapsed = np.cumsum(run["update_s"])
        fits = [f for _, f in run["fit_history"]]
        iterations = [int(i) for i, _ in run["fit_history"]]
        ax.plot([elapsed[i - 1] for i in iterations], fits, marker="o", label=run["method"])
    exact = next((r for r in data["runs"] if r["method"] == "exact"), None)
    if exact is not None:
        ax.axhline(0.95 * exact["fit"], color="gray", linestyle="--", linewidth=0.8, label="95% of exact")
    tensor = data["runs"][0]["tensor"]
    ax.set_xlabel("update time (s, fit evaluations excluded)")
    ax.set_ylabel("fit")
    ax.set_title(f"CP-ALS, R = {data['runs'][0]['rank']}, nnz = {tensor['nnz']:.2e}, 2 threads")
    ax.legend()
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def section_report() -> None:
    """Merge the section results into one JSON, print the tables, draw the fit-time plot."""
    parts = {
        p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem != "sampler_raw"
    }
    MERGED.write_text(json.dumps(parts, indent=1))
    print(accuracy_table(parts))
    fit_time_parts = sorted(name for name in parts if name.startswith("fit-time"))
    for name in fit_time_parts:
        print(f"\n{name}")
        print(fit_time_table(parts[name]))
    if fit_time_parts:
        longest = max(fit_time_parts, key=lambda name: len(parts[name]["runs"][0]["update_s"]))
        plot_fit_time(parts[longest])
    for name, data in parts.items():
        print(
            name,
            "load",
            data.get("loadavg_before"),
            "->",
            data.get("loadavg_after"),
            "wall",
            data.get("wall_s"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="randomized CP benchmark")
    parser.add_argument(
        "section",
        choices=[
            "accuracy-flights",
            "accuracy-synthetic",
            "fit-time",
            "fit-time-one",
            "sampler",
            "report",
            "all",
        ],
    )
    parser.add_argument("--ranks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--exact-seeds", type=int, default=4, help="how many of --seeds exact ALS runs")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="accuracy sections only")
    parser.add_argument("--samples", type=int, default=2**16)
    parser.add_argument("--synthetic-shape", type=int, nargs="+", default=[10**6, 5 * 10**5, 2 * 10**5])
    parser.add_argument("--synthetic-nnz", type=int, default=10**7)
    parser.add_argument("--fit-time-shape", type=int, nargs="+", default=[2 * 10**6, 10**6, 5 * 10**5])
    parser.add_argument("--fit-time-nnz", type=int, default=5 * 10**7)
    parser.add_argument("--fit-time-rank", type=int, default=25)
    parser.add_argument("--fit-time-iters", type=int, default=10)
    parser.add_argument("--fit-time-methods", nargs="+", default=["exact", "arls-lev", "sts"])
    parser.add_argument("--method", default="exact", help="fit-time-one only")
    parser.add_argument("--tag", default="", help="suffix of the result file name (split runs of a section)")
    parser.add_argument("--sampler-rows-log2", type=int, default=22)
    parser.add_argument("--sampler-repeats", type=int, default=3)
    args = parser.parse_args()

    if args.section == "fit-time-one":
        fit_time_one(args)
        return
    if args.section == "report":
        section_report()
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections = (
        ["accuracy-flights", "accuracy-synthetic", "fit-time", "sampler"]
        if args.section == "all"
        else [args.section]
    )
    for name in sections:
        start = time.perf_counter()
        load_before = os.getloadavg()
        if name.startswith("accuracy"):
            data = section_accuracy(args, name)
        elif name == "fit-time":
            data = section_fit_time(args)
        else:
            data = section_sampler(args)
        data["machine"] = machine_info()
        data["loadavg_before"] = load_before
        data["loadavg_after"] = os.getloadavg()
        data["wall_s"] = time.perf_counter() - start
        data["argv"] = sys.argv[1:]
        target = RESULTS / f"{name}{args.tag}.json"
        target.write_text(json.dumps(data, indent=1))
        print(f"{name}: {data['wall_s']:.0f} s, written to {target}", flush=True)


if __name__ == "__main__":
    main()
