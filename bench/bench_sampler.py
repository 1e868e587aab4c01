"""Sampler throughput: STS tree construction and sampling, next to the product (CP-ARLS-LEV) sampler.

Case of the NeurIPS 2023 paper: N = 3 factors of 2^22 rows, R = 32, J = 65,536 draws excluding one mode.
The research code's figures on this machine kind are in /work/shared/MEASURED.md (it is C++/OpenMP and not
installed here, so it cannot be timed in the same run: the comparison is with the recorded figures).
Compile time is measured separately (first call) and excluded from the warm figures.

    python bench/bench_sampler.py [--rows-log2 22] [--rank 32] [--samples 65536] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np


def _median_time(fn, repeats: int) -> dict:
    """Median wall and CPU (all threads of this process) seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu)), "all_wall_s": wall}


def _bench_sampler(sampler, repeats: int, samples: int) -> dict:
    first = sampler.factors[0]
    return {
        "build_one_factor": _median_time(lambda: sampler.update(0, first), repeats),
        "sample": _median_time(lambda: sampler.sample(2, samples, rng=1), repeats),
    }


def run(rows_log2: int, rank: int, samples: int, repeats: int) -> dict:
    import numba

    from multilinear.sampling import ProductLeverageSampler, STSSampler

    rng = np.random.default_rng(0)
    rows = 2**rows_log2
    load_before = os.getloadavg()

    # compile (or load from the disk cache) on a tiny problem, timed separately
    t0 = time.perf_counter()
    tiny = STSSampler([rng.standard_normal((64, rank)) for _ in range(3)])
    tiny.sample(0, 4096, rng=0)
    tiny.sample(0, 8, rng=0)
    compile_s = time.perf_counter() - t0

    # the samplers copy their factors: build one, then hand its copies on, so one set is alive at a time
    sts_sampler = STSSampler([rng.standard_normal((rows, rank)) for _ in range(3)])
    sts = _bench_sampler(sts_sampler, repeats, samples)
    sts["leaf_size"] = sts_sampler._trees[0].leaf_size
    sts["tree_bytes"] = sts_sampler.tree_bytes
    sts["compile_or_cache_load_s"] = compile_s
    held = sts_sampler.factors
    del sts_sampler
    product = _bench_sampler(ProductLeverageSampler(held), repeats, samples)
    return {
        "case": {"N": 3, "rows": rows, "rank": rank, "samples": samples, "repeats": repeats},
        "sts": sts,
        "product": product,
        "research_code_2_threads": {"build_s": [2.0, 2.3], "sample_s": 1.9, "source": "MEASURED.md"},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-log2", type=int, default=22)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--samples", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    result = run(args.rows_log2, args.rank, args.samples, args.repeats)
    sts, prod = result["sts"], result["product"]
    print(
        f"case: N=3, I=2^{args.rows_log2}, R={args.rank}, J={args.samples}, threads={result['machine']['numba_threads']}"
    )
    print(
        f"load average before/after: {result['machine']['loadavg_before']} / {result['machine']['loadavg_after']}"
    )
    print("step                 | wall s (median) | CPU s (median) | research code, 2 threads (MEASURED.md)")
    rows = [
        ("STS build, 1 factor", sts["build_one_factor"], "2.0-2.3 (its construction)"),
        ("STS sample", sts["sample"], "1.9"),
        ("product build", prod["build_one_factor"], ""),
        ("product sample", prod["sample"], ""),
    ]
    for name, t, peer in rows:
        print(f"{name:20s} | {t['wall_s']:15.3f} | {t['cpu_s']:14.3f} | {peer}")
    print(
        f"compile / cache load: {sts['compile_or_cache_load_s']:.2f} s; trees {sts['tree_bytes'] / 2**20:.0f} MiB"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
