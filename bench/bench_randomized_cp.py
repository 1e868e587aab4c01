"""Randomized CP-ALS (CP-ARLS-LEV, its hybrid, STS-CP) against exact CP-ALS, measured in the same run.

Sections (each runs in its own process so its peak memory is its own; results go to
bench/results/randomized_cp/<section>.json, then ``report`` merges them into bench/results/randomized_cp.json,
prints the tables for docs/benchmarks/randomized_cp.md and draws the fit-time plots, one per tensor and init):

- ``accuracy-flights``: final fit after a fixed number of iterations on the NYC flights tensor
  (destination x carrier x day x hour) for each method, rank and seed. Same iterations for every method.
- ``accuracy-synthetic``: the same on a planted power-law tensor (``planted_sparse`` with a rank-25 model
  on Zipf-popular supports, exactly low rank, plus 10% relative noise on its nonzeros).
- ``fit-time``: fit against update time (fit evaluations excluded) on a larger planted power-law tensor at
  one rank (``--fit-time-rank``; run once per rank with ``--tag``); time to reach 95% of exact ALS's final
  fit; peak memory of each method's process. ``--fit-time-tensor`` picks the tensor: ``blocks`` (the
  exactly low-rank ``planted_sparse`` tensor on Zipf-popular blocks: short modes, long fibers) or
  ``counts`` (``planted_counts``: events drawn from a planted rank-25 power-law model, long modes, short
  fibers, mostly ones, like FROSTT's count tensors). ``--init`` picks every method's initial factors
  (the same for all: ``gaussian``, the earlier runs; ``sampled-rrf``, the sampled methods' default in
  ``cp_als``; ``rrf``; ``norms``); its time is reported apart and added in a column of its own. One PNG per
  tensor and init, one panel per rank.
- ``breakdown``: per-iteration cost of each method on the fit-time tensor, split into sampling, sampled
  system (fiber lookup + sampled MTTKRP + sampled Gram), solve and tree/leverage update, from warm factors.
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


def run_cp(
    X, rank: int, method: str, samples: int, iters: int, seed: int, fit_every: int = 1, init: str = "gaussian"
) -> dict:
    import multilinear as ml

    kwargs = {} if method == "exact" else {"samples": samples}
    load = os.getloadavg()[0]
    # wall and CPU clocks at the end of every iteration (update + fit evaluation): a process stopped by
    # someone else's benchmark harness shows as wall time without CPU time
    marks = [(time.perf_counter(), time.process_time())]

    def mark(iteration, fit, factors):
        marks.append((time.perf_counter(), time.process_time()))

    result = ml.cp_als(
        X,
        rank,
        method=method,
        max_iter=iters,
        tol=0.0,
        rng=seed,
        fit_every=fit_every,
        callback=mark,
        init=init,
        **kwargs,
    )
    wall = np.diff([m[0] for m in marks])
    cpu = np.diff([m[1] for m in marks])
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
        "init": init,
        "init_s": result.times.init,  # part of setup_s: the initial factors (one MTTKRP per mode for rrf)
        "iteration_wall_s": wall.tolist(),  # update + fit of each iteration (the first includes the setup)
        "iteration_cpu_s": cpu.tolist(),  # CPU seconds of all threads over the same spans
        "loadavg_start": load,
        "loadavg_end": os.getloadavg()[0],
    }


PLANTED_RANK = 25
PLANTED_NOISE = 0.1


def planted_powerlaw(shape, nnz: int, seed: int):
    """The synthetic tensor: rank-25 model on Zipf-popular supports (exactly low rank) plus 10% noise."""
    from multilinear.tensor import planted_sparse

    planted = planted_sparse(
        shape, PLANTED_RANK, nnz, distribution="powerlaw", exponent=1.0, noise=PLANTED_NOISE, rng=seed
    )
    return planted.tensor


COUNTS_RANK = 25


def planted_count_tensor(shape, events: int, exponent: float, seed: int):
    """Counts of ``events`` draws from a planted rank-25 model with power-law factors (``planted_counts``)."""
    from multilinear.tensor import planted_counts

    return planted_counts(shape, COUNTS_RANK, events, exponent=exponent, rng=seed).tensor


def fit_time_tensor(args):
    """The fit-time / breakdown tensor chosen by ``--fit-time-tensor`` (regenerated from its seed)."""
    if args.fit_time_tensor == "counts":
        shape = tuple(args.fit_time_shape or (1_000_000, 500_000, 200_000))
        return planted_count_tensor(shape, args.fit_time_events, args.fit_time_exponent, seed=11)
    return planted_powerlaw(tuple(args.fit_time_shape or (4000, 3000, 2000)), args.fit_time_nnz, seed=11)


def tensor_description(X) -> dict:
    """Shape, nnz, and how many indices of each mode hold a nonzero (the rest are empty slices)."""
    active = [
        int(np.count_nonzero(np.bincount(X.indices[:, m], minlength=X.shape[m]))) for m in range(X.ndim)
    ]
    return {"shape": X.shape, "nnz": X.nnz, "active_indices": active}


def section_accuracy(args, name: str) -> dict:
    import multilinear as ml

    t0 = time.perf_counter()
    if name == "accuracy-flights":
        X = ml.read_tns(FLIGHTS)
        tensor = {"name": FLIGHTS.name, "shape": X.shape, "nnz": X.nnz}
    else:
        shape = tuple(args.synthetic_shape)
        X = planted_powerlaw(shape, args.synthetic_nnz, seed=7)
        tensor = {"name": "planted power law (rank 25, 10% noise)", **tensor_description(X)}
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
                # the fit after every iteration (timed apart from the updates) shows how settled it is
                run = run_cp(X, rank, method, args.samples, args.iters, seed, fit_every=1)
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
        cmd += ["--fit-time-tensor", args.fit_time_tensor, "--fit-time-nnz", str(args.fit_time_nnz)]
        cmd += ["--fit-time-events", str(args.fit_time_events)]
        cmd += ["--fit-time-exponent", str(args.fit_time_exponent)]
        if args.fit_time_shape:
            cmd += ["--fit-time-shape", *map(str, args.fit_time_shape)]
        cmd += ["--fit-time-rank", str(args.fit_time_rank), "--fit-time-iters", str(args.fit_time_iters)]
        cmd += ["--samples", str(args.samples), "--init", args.init]
        cmd += ["--fit-time-seed", str(args.fit_time_seed)]
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
            reach = run["time_to_95pct_exact_fit_s"]
            run["time_to_95pct_incl_init_s"] = None if reach is None else reach + run.get("init_s", 0.0)
    return {"runs": runs, "target_fraction": 0.95, "tensor_kind": args.fit_time_tensor, "init": args.init}


def time_to_target(run: dict, target: float) -> float | None:
    elapsed = np.cumsum(run["update_s"])
    for iteration, fit in run["fit_history"]:
        if fit >= target:
            return float(elapsed[int(iteration) - 1])
    return None


def fit_time_one(args) -> None:
    import multilinear as ml
    from multilinear.decompose._sketched import fiber_layout

    t0 = time.perf_counter()
    X = fit_time_tensor(args)
    generate_s = time.perf_counter() - t0
    tensor_rss = peak_rss_mib()
    # compile (or load cached kernels) on a small problem first, so that the first timed iteration does
    # not pay it (before this, a kernel missing from the cache was compiled inside the first iteration)
    small = ml.SparseTensor(X.indices[:5000], X.values[:5000], X.shape)
    run_cp(small, 3, args.method, 64, 1, 0, init=args.init)
    del small
    run = run_cp(
        X,
        args.fit_time_rank,
        args.method,
        args.samples,
        args.fit_time_iters,
        args.fit_time_seed,
        init=args.init,
    )
    layouts = {}
    for key, value in X._cache.items():
        layouts[str(key)] = int(getattr(value, "nbytes", 0))
    if args.method != "exact":
        layouts["fiber_layouts_total"] = sum(fiber_layout(X, m).nbytes for m in range(X.ndim))
    run.update(
        {
            "tensor": {**tensor_description(X), "bytes": int(X.indices.nbytes + X.values.nbytes)},
            "generate_s": generate_s,
            "rss_after_generate_mib": tensor_rss,
            "peak_rss_mib": peak_rss_mib(),
            "layout_bytes": layouts,
        }
    )
    print(json.dumps(run))


def section_breakdown(args) -> dict:
    """Seconds per iteration of each method, split by step, from warm factors (3 exact ALS iterations).

    Replays what ``cp_als`` does per mode with the library's own pieces, each timed: the randomized methods
    draw rows (``sample``), merge and weight them (``system``: merge repeated rows, KRP rows, sampled Gram,
    fiber lookup), solve (``solve``: inverse Gram, design rows times it, sampled MTTKRP into the factor)
    and hand the new factor to the sampler (``update``: STS tree rebuild or leverage scores); exact ALS
    does MTTKRP + solve per mode.
    """
    import multilinear as ml
    from multilinear._core.threads import thread_limits
    from multilinear.decompose._sketched import fiber_layout, sampled_rows
    from multilinear.decompose._solvers import ExactSolver, GramCache, NormalEquations
    from multilinear.sampling import ProductLeverageSampler, STSSampler

    X = fit_time_tensor(args)
    for mode in range(X.ndim):
        fiber_layout(X, mode)
    rows = []
    for rank in args.breakdown_ranks:
        warm = ml.cp_als(X, rank, max_iter=3, tol=0.0, rng=0)
        factors = [f * warm.weights ** (1.0 / X.ndim) for f in warm.factors]
        with thread_limits(blas_threads=1):  # as inside cp_als
            exact = ExactSolver(X, [f.copy() for f in factors], grams=GramCache(factors))
            exact.solve(0, factors, np.ones(rank))  # first call pays any setup
            times = []
            for _ in range(args.breakdown_repeats):
                t0 = time.perf_counter()
                for mode in range(X.ndim):
                    exact.solve(mode, factors, np.ones(rank))
                times.append(time.perf_counter() - t0)
            rows.append({"rank": rank, "method": "exact", "total_s": float(np.median(times))})
            for method, make in (
                ("arls-lev", lambda f: ProductLeverageSampler(f)),
                ("sts", lambda f: STSSampler(f)),
            ):
                sampler = make(factors)
                generator = np.random.default_rng(0)
                solution = np.zeros((max(X.shape), rank))  # written, not kept (as the solver's buffers)
                steps: dict[str, list[float]] = {"sample": [], "system": [], "solve": [], "update": []}
                for _ in range(args.breakdown_repeats):
                    spent = dict.fromkeys(steps, 0.0)
                    for mode in range(X.ndim):
                        t0 = time.perf_counter()
                        drawn, probs = sampler.sample(mode, args.samples, generator)
                        t1 = time.perf_counter()
                        system = sampled_rows(X, factors, mode, drawn, probs)
                        t2 = time.perf_counter()
                        solved = NormalEquations(system.gram).solve(system.design)
                        system.mttkrp(solved, solution[: X.shape[mode]])
                        t3 = time.perf_counter()
                        sampler.update(mode, factors[mode])
                        t4 = time.perf_counter()
                        spent["sample"] += t1 - t0
                        spent["system"] += t2 - t1
                        spent["solve"] += t3 - t2
                        spent["update"] += t4 - t3
                    for step, value in spent.items():
                        steps[step].append(value)
                row = {"rank": rank, "method": method}
                row.update({f"{step}_s": float(np.median(values)) for step, values in steps.items()})
                row["total_s"] = sum(row[f"{step}_s"] for step in steps)
                row["distinct_rows_last_mode"] = system.distinct_rows
                rows.append(row)
        for row in rows[-3:]:
            print(
                "breakdown",
                {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()},
                flush=True,
            )
    return {
        "tensor": tensor_description(X),
        "tensor_kind": args.fit_time_tensor,
        "samples": args.samples,
        "repeats": args.breakdown_repeats,
        "rows": rows,
    }


def section_sampler(args) -> dict:
    out = RESULTS / "sampler_raw.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_sampler.py"), "--json", str(out)]
    cmd += ["--rows-log2", str(args.sampler_rows_log2), "--repeats", str(args.sampler_repeats)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def accuracy_table(parts: dict) -> str:
    """Runs pooled over the accuracy parts by (tensor, rank, method); gaps relative to exact's mean fit.

    "last change" is the largest ``|fit(last) - fit(last - 1)|`` over the seeds (runs that evaluated the fit
    after every iteration), to show how settled the final fits are.
    """
    pooled: dict[tuple[str, int, str], list[dict]] = {}
    iterations: dict[tuple[str, int, str], set[int]] = {}
    for _, data in sorted(parts.items()):
        for run in data["runs"]:
            key = (data["tensor"]["name"], run["rank"], run["method"])
            pooled.setdefault(key, []).append(run)
            iterations.setdefault(key, set()).add(len(run["update_s"]))
    lines = [
        "| tensor | R | method | seeds | iterations | final fit, mean | spread (min-max) | gap to exact "
        "| last change (max) | update s/iter (median) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tensor, rank in sorted({(t, r) for t, r, _ in pooled}):
        exact = [run["fit"] for run in pooled.get((tensor, rank, "exact"), [])]
        exact_mean = float(np.mean(exact)) if exact else float("nan")
        for method in METHODS:
            chosen = pooled.get((tensor, rank, method))
            if not chosen:
                continue
            fits = np.array([run["fit"] for run in chosen])
            per_iter = float(np.median(np.concatenate([run["update_s"] for run in chosen])))
            gap = (exact_mean - fits.mean()) / exact_mean * 100
            changes = [
                abs(r["fit_history"][-1][1] - r["fit_history"][-2][1])
                for r in chosen
                if len(r["fit_history"]) > 1
            ]
            change = f"{max(changes):.1e}" if changes else "n/a"
            counts = "/".join(str(c) for c in sorted(iterations[(tensor, rank, method)]))
            lines.append(
                f"| {tensor} | {rank} | {method} | {len(chosen)} | {counts} | {fits.mean():.4f} | "
                f"{fits.min():.4f}-{fits.max():.4f} | {gap:+.2f}% | {change} | {per_iter:.2f} |"
            )
    return "\n".join(lines)


def fit_time_table(data: dict) -> str:
    """Per method: fit, per-iteration cost, and when it first reached 95% of exact ALS's final fit.

    "time to 95%" sums the measured update times up to that iteration; "x median" is the iteration count
    times the median update time, which a pause of the process (another benchmark stopping it) cannot
    inflate.
    """
    lines = [
        "| R | method | init (s) | iterations | final fit | update s/iter (median) "
        "| CPU s/iter incl. fit (median) | iterations to 95% | time to 95% (s) | iterations x median (s) "
        "| time to 95% incl. init (s) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    exact = next((r for r in data["runs"] if r["method"] == "exact"), None)
    for run in data["runs"]:
        reach = run.get("time_to_95pct_exact_fit_s")
        median = float(np.median(run["update_s"]))
        hit = None
        if exact is not None:
            hit = next((int(i) for i, f in run["fit_history"] if f >= 0.95 * exact["fit"]), None)
        cpu = run.get("iteration_cpu_s")
        cpu_text = f"{np.median(cpu[1:]):.2f}" if cpu and len(cpu) > 1 else "n/a"
        init = run.get("init", "gaussian")
        init_s = run.get("init_s", 0.0)
        with_init = "-" if reach is None else f"{reach + init_s:.1f}"
        lines.append(
            f"| {run['rank']} | {run['method']} | {init} ({init_s:.1f}) | {len(run['update_s'])} | "
            f"{run['fit']:.4f} | {median:.2f} | {cpu_text} | {hit if hit is not None else 'not reached'} | "
            f"{'-' if reach is None else f'{reach:.1f}'} | {'-' if hit is None else f'{hit * median:.1f}'} | "
            f"{with_init} | {run['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def breakdown_table(data: dict) -> str:
    lines = [
        "| R | method | sample | system (lookup + sampled MTTKRP + Gram) | solve | update (tree / leverage) "
        "| total s/iter |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        parts = [row.get(f"{step}_s") for step in ("sample", "system", "solve", "update")]
        text = ["-" if p is None else f"{p:.3f}" for p in parts]
        if row["method"] == "exact":
            text = ["-", "MTTKRP + solve", "", "-"]
        lines.append(f"| {row['rank']} | {row['method']} | {' | '.join(text)} | {row['total_s']:.3f} |")
    return "\n".join(lines)


def plot_fit_time(panels: list[dict], path: Path) -> None:
    """One panel per rank: fit against cumulative update time, with 95% of exact's final fit marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, data in zip(axes[0], panels):
        for run in data["runs"]:
            elapsed = np.cumsum(run["update_s"])
            fits = [f for _, f in run["fit_history"]]
            iterations = [int(i) for i, _ in run["fit_history"]]
            ax.plot([elapsed[i - 1] for i in iterations], fits, marker=".", label=run["method"])
        exact = next((r for r in data["runs"] if r["method"] == "exact"), None)
        if exact is not None:
            ax.axhline(0.95 * exact["fit"], color="gray", linestyle="--", linewidth=0.8, label="95% of exact")
        tensor = data["runs"][0]["tensor"]
        ax.set_xlabel("update time (s, fit evaluations excluded)")
        ax.set_ylabel("fit")
        ax.set_title(f"R = {data['runs'][0]['rank']}, nnz = {tensor['nnz']:.3g}, 2 threads")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def section_report() -> None:
    """Merge the section results into one JSON, print the tables, draw the fit-time plot."""
    parts = {
        p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem != "sampler_raw"
    }
    MERGED.write_text(json.dumps(parts, indent=1))
    print(accuracy_table({name: data for name, data in parts.items() if name.startswith("accuracy")}))
    fit_time_parts = sorted(
        (name for name in parts if name.startswith("fit-time")), key=lambda n: parts[n]["runs"][0]["rank"]
    )
    for name in fit_time_parts:
        print(f"\n{name}")
        print(fit_time_table(parts[name]))

    def plot_kind(name: str) -> tuple[str, str]:
        return parts[name].get("tensor_kind", "blocks"), parts[name].get("init", "gaussian")

    for kind, init in sorted({plot_kind(name) for name in fit_time_parts}):
        chosen = [name for name in sorted(fit_time_parts) if plot_kind(name) == (kind, init)]
        latest = {parts[name]["runs"][0]["rank"]: name for name in chosen}  # a rerun wins
        stem = (
            PLOT.stem + ("" if kind == "blocks" else f"_{kind}") + ("" if init == "gaussian" else f"_{init}")
        )
        path = PLOT.with_name(f"{stem}.png")
        plot_fit_time([parts[latest[rank]] for rank in sorted(latest)], path)
    for name in sorted(n for n in parts if n.startswith("breakdown")):
        print(f"\n{name}")
        print(breakdown_table(parts[name]))
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
            "breakdown",
            "sampler",
            "report",
            "all",
        ],
    )
    parser.add_argument("--ranks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--exact-seeds", type=int, default=4, help="how many of --seeds exact ALS runs")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="accuracy sections only")
    parser.add_argument("--samples", type=int, default=2**16)
    parser.add_argument("--synthetic-shape", type=int, nargs="+", default=[2000, 1500, 1000])
    parser.add_argument(
        "--synthetic-nnz", type=int, default=11_500_000, help="target; overlaps of the blocks leave ~10.2e6"
    )
    parser.add_argument("--fit-time-tensor", choices=["blocks", "counts"], default="blocks")
    parser.add_argument(
        "--fit-time-shape",
        type=int,
        nargs="+",
        default=None,
        help="default 4000 3000 2000 (blocks), 1000000 500000 200000 (counts)",
    )
    parser.add_argument(
        "--fit-time-nnz", type=int, default=58_000_000, help="blocks: target; overlaps leave ~5.19e7"
    )
    parser.add_argument(
        "--fit-time-events", type=int, default=65_000_000, help="counts: events (~5.99e7 distinct cells)"
    )
    parser.add_argument("--fit-time-exponent", type=float, default=1.1, help="counts: power-law exponent")
    parser.add_argument("--fit-time-rank", type=int, default=25)
    parser.add_argument("--fit-time-iters", type=int, default=30)
    parser.add_argument(
        "--fit-time-seed",
        type=int,
        default=0,
        help="fit-time: seed of the initial factors and the draws (the tensor's own seed stays fixed)",
    )
    parser.add_argument("--fit-time-methods", nargs="+", default=["exact", "arls-lev", "sts"])
    parser.add_argument(
        "--init",
        choices=["gaussian", "norms", "rrf", "sampled-rrf"],
        default="gaussian",
        help="fit-time: initial factors of every method (the same for all; their time is reported apart)",
    )
    parser.add_argument("--method", default="exact", help="fit-time-one only")
    parser.add_argument("--tag", default="", help="suffix of the result file name (split runs of a section)")
    parser.add_argument("--breakdown-ranks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--breakdown-repeats", type=int, default=3)
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
        elif name == "breakdown":
            data = section_breakdown(args)
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
