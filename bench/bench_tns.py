"""FROSTT ``.tns`` reading speed (ours cold and cached vs pandas' C parser), writing, and generator cost.

Steps, all in one run so the peers see the same machine load:
  1. ``random_sparse`` of a 10^7-nonzero power-law tensor (10^6 x 5x10^5 x 2x10^5, the Zipf tensor of
     shared/MEASURED.md) in a fresh process: seconds and peak RSS (``resource.getrusage``); 10^8 with
     ``--big``.
  2. ``write_tns`` of it to a temporary ``.tns`` (values uniform on (0, 1]: 16-17 significant digits).
  3. Reads, each repeated (median reported): ours without cache, ours with a fresh cache (alone, and
     followed by one pass over all indices and values, since the cache is memory-mapped), pandas
     ``read_csv(sep=r"\\s+", header=None, engine="c")``, and ``numpy.loadtxt`` on a 10^6-line prefix.
  4. Compile time of the reader's numba kernels, in a fresh process with an empty numba cache.

Usage: python bench/bench_tns.py [--nnz 10000000] [--repeats 3] [--big]
Writes bench/results/tns.json and docs/benchmarks/tns.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model  # bench/ is on sys.path when a script runs

import multilinear as ml

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (10**6, 5 * 10**5, 2 * 10**5)


def machine() -> dict:
    import numba

    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


CPU_SECONDS: dict[int, list[float]] = {}  # id(function) -> process CPU seconds (all threads) per run


def timed(function, repeats: int) -> list[float]:
    """Wall seconds per run; CPU seconds (less sensitive to a loaded machine) go to CPU_SECONDS."""
    times = []
    cpu = CPU_SECONDS.setdefault(id(function), [])
    for _ in range(repeats):
        start_cpu = time.process_time()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times


def generator_cost(nnz: int) -> dict:
    """random_sparse in a fresh process: wall seconds and peak RSS in GiB (numba not involved)."""
    code = (
        "import resource, time, sys\n"
        "from multilinear.tensor import random_sparse\n"
        "t = time.perf_counter()\n"
        f"X = random_sparse({SHAPE}, {nnz}, distribution='powerlaw', exponent=1.0, rng=0)\n"
        "seconds = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20\n"
        "print(seconds, peak, X.nnz)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, peak, count = out.stdout.split()
    return {"nnz": int(count), "seconds": float(seconds), "peak_rss_gib": float(peak)}


def compile_seconds(path: Path) -> float:
    """First read of a small file in a fresh process with an empty numba cache, minus a warm second read."""
    code = (
        "import time, sys\n"
        "import multilinear as ml\n"
        "t = time.perf_counter(); ml.read_tns(sys.argv[1], cache=False); first = time.perf_counter() - t\n"
        "t = time.perf_counter(); ml.read_tns(sys.argv[1], cache=False); second = time.perf_counter() - t\n"
        "print(first - second)\n"
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env
        )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nnz", type=int, default=10**7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also time random_sparse with 10^8 nonzeros")
    args = parser.parse_args()
    import pandas as pd

    load_before = os.getloadavg()
    results: dict = {"machine": machine(), "load_before": load_before, "nnz": args.nnz, "shape": SHAPE}
    results["generator"] = [generator_cost(args.nnz)]
    if args.big:
        results["generator"].append(generator_cost(10**8))

    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "results") as work:
        path = Path(work) / "powerlaw.tns"
        X = ml.tensor.random_sparse(SHAPE, args.nnz, distribution="powerlaw", exponent=1.0, rng=0)
        small = Path(work) / "small.tns"
        ml.tensor.random_sparse((50, 40, 30), 1000, rng=0).to_tns(small)
        for _ in range(2):  # load the kernels (compiled or from numba's cache) outside the timings
            ml.read_tns(small, cache=False)
            ml.read_tns(small)
        start = time.perf_counter()
        ml.write_tns(X, path)
        write_seconds = time.perf_counter() - start
        megabytes = path.stat().st_size / 1e6
        del X

        def read_cold() -> None:
            ml.read_tns(path, cache=False)

        def read_pandas() -> None:
            pd.read_csv(path, sep=r"\s+", header=None, engine="c")

        cold = timed(read_cold, args.repeats)
        ml.read_tns(path)  # writes the cache
        cached = timed(lambda: ml.read_tns(path), max(5, args.repeats))

        def cached_and_touched() -> None:  # the mapped pages are read in as the data is first used
            Y = ml.read_tns(path)
            float(Y.indices.sum()) + float(Y.values.sum())

        touched = timed(cached_and_touched, max(5, args.repeats))
        panda = timed(read_pandas, args.repeats)
        cold_cpu = statistics.median(CPU_SECONDS[id(read_cold)])
        panda_cpu = statistics.median(CPU_SECONDS[id(read_pandas)])
        prefix = Path(work) / "prefix.tns"
        with open(path, "rb") as source, open(prefix, "wb") as target:
            for _, line in zip(range(10**6), source):
                target.write(line)
        prefix_mb = prefix.stat().st_size / 1e6
        loadtxt = timed(lambda: np.loadtxt(prefix), 1)
        ours_prefix = timed(lambda: ml.read_tns(prefix, cache=False), args.repeats)
        jit = compile_seconds(small)

    med = statistics.median
    rows = [  # case, megabytes, our seconds, peer seconds, peer name
        ("read, cold (no cache)", megabytes, med(cold), med(panda), "pandas read_csv (C)"),
        ("read, cached", megabytes, med(cached), med(panda), "pandas read_csv (C)"),
        ("read, cached + one pass over the data", megabytes, med(touched), med(panda), "pandas read_csv (C)"),
        ("read 10^6-line prefix, cold", prefix_mb, med(ours_prefix), med(loadtxt), "numpy loadtxt"),
    ]
    results.update(
        {
            "file_megabytes": megabytes,
            "write_seconds": write_seconds,
            "cold_seconds": cold,
            "cached_seconds": cached,
            "cached_touched_seconds": touched,
            "pandas_seconds": panda,
            "prefix_megabytes": prefix_mb,
            "prefix_ours_seconds": ours_prefix,
            "prefix_loadtxt_seconds": loadtxt,
            "compile_seconds": jit,
            "cached_speedup_over_cold": med(cold) / med(cached),
            "cold_cpu_seconds": cold_cpu,
            "pandas_cpu_seconds": panda_cpu,
            "load_after": os.getloadavg(),
        }
    )
    lines = [
        "| case | ours | peer | peer/ours (speed) | peer |",
        "|---|---|---|---|---|",
    ]
    for case, size, ours, peer, name in rows:
        lines.append(
            f"| {case} | {size / ours:,.0f} MB/s ({ours:.3g} s) | {size / peer:,.0f} MB/s ({peer:.3g} s) "
            f"| {ours / peer:.3g} | {name} |"
        )
    table = "\n".join(lines)
    gen_lines = "\n".join(
        f"| {g['nnz']:.0e} | {g['seconds']:.1f} | {g['peak_rss_gib']:.2f} |" for g in results["generator"]
    )
    m = results["machine"]
    text = f"""# `.tns` reading and writing (`bench/bench_tns.py`)

File: {args.nnz:.0e} nonzeros of `random_sparse({SHAPE}, distribution="powerlaw", exponent=1.0, rng=0)`
written by `write_tns` ({megabytes:.0f} MB of text; values uniform on (0, 1], 16-17 significant digits).
Medians of {args.repeats} runs (cached: {max(5, args.repeats)}); MB/s of text.

{table}

- CPU time (all threads; less sensitive to the load than wall time): ours {cold_cpu:.2f} s
  ({megabytes / cold_cpu:.0f} MB per CPU second), pandas {panda_cpu:.2f} s ({megabytes / panda_cpu:.0f}).
- Cold read {med(cold):.2f} s, cached read {med(cached) * 1e3:.2f} ms: **{med(cold) / med(cached):.0f}x** faster
  with the cache ({med(cold) / med(touched):.0f}x counting one pass over all indices and values, which
  reads the copy-on-write mapped cache in from the page cache: {med(touched):.3f} s); pandas
  {med(panda):.2f} s.
- `write_tns` of the same tensor: {write_seconds:.2f} s ({megabytes / write_seconds:.0f} MB/s).
- Compile time of the reader's kernels (fresh process, empty numba cache): {jit:.1f} s (paid once; later
  processes load them from the on-disk cache).

`random_sparse` (power law, exponent 1.0, same shape), in a fresh process:

| nnz | seconds | peak RSS (GiB) |
|---|---|---|
{gen_lines}

Machine: {m["cpu"]}, {m["cores"]} cores, numba threads {m["numba_threads"]}, numpy {m["numpy"]}, numba
{m["numba"]}. Load average before {load_before[0]:.2f} / after {results["load_after"][0]:.2f} (1 min;
shared machine: timings are noisy, compare ratios within the run).
"""
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "tns.json").write_text(json.dumps(results, indent=2) + "\n")
    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "tns.md").write_text(text)
    print(table)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
