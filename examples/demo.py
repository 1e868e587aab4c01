"""The second half of `make demo` (the first half runs the `multilinear` CLI on the flights tensor).

1. What the rank-25 CP model of NYC flights (destination x carrier x day x hour) says: its strongest
   components, named with the tensor's labels.
2. Randomized CP (STS-CP: exact Khatri-Rao leverage sampling) next to exact ALS: fit and time.
3. The MACE-large Clebsch-Gordan tensor product: our kernels against e3nn on a small batch, then the speed
   ratio at batch 10,000.

Run it with the project's environment: `make demo` (or `.venv/bin/python examples/demo.py`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import multilinear as ml

DATA = Path(__file__).resolve().parent.parent / "data"
TENSOR = DATA / "flights_dest_carrier_day_hour.tns.gz"
LABELS = DATA / "flights_dest_carrier_day_hour.labels.json"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _top_labels(column: np.ndarray, labels: list[str], k: int) -> str:
    rows = np.argsort(np.abs(column))[::-1][:k]
    return ", ".join(str(labels[i]) for i in rows)


def describe_components(
    result: ml.CPResult | ml.KruskalTensor, labels: list[list[str]], top: int = 3
) -> None:
    """Print the strongest components: the labels with the largest loadings in each mode."""
    dest, carrier, day, hour = result.factors
    day_of_year = np.asarray(labels[2], dtype=int)  # 1..365 in 2013, which began on a Tuesday
    weekday = (day_of_year - 1 + 1) % 7  # 0 = Monday
    month = np.searchsorted(
        np.cumsum([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]), day_of_year - 1, "right"
    )
    print(f"Strongest {top} of {result.rank} components (labels with the largest loadings per mode):")
    for r in np.argsort(result.weights)[::-1][:top]:
        days = np.abs(day[:, r])
        weekend = days[weekday >= 5].mean() / days[weekday < 5].mean()
        by_month = np.bincount(month, weights=days, minlength=12) / np.bincount(month, minlength=12)
        print(
            f"  weight {result.weights[r]:6.1f} | to {_top_labels(dest[:, r], labels[0], 4):<20}"
            f" | carrier {_top_labels(carrier[:, r], labels[1], 2):<6}"
            f" | hours {_top_labels(hour[:, r], labels[3], 3):<9}"
            f" | weekend/weekday {weekend:4.2f} | peak month {MONTHS[int(np.argmax(by_month))]}"
        )


def cp_part(factors_file: Path | None) -> None:
    X = ml.read_tns(TENSOR)
    labels = json.loads(LABELS.read_text())["labels"]
    print(f"\n== CP of {TENSOR.name}: {' x '.join(map(str, X.shape))}, {X.nnz:,} nonzeros ==")
    rows = {}
    for method in ("exact", "sts"):
        samples = None if method == "exact" else 2**14
        t0 = time.perf_counter()
        res = ml.cp_als(X, 25, method=method, max_iter=25, tol=1e-5, rng=0, samples=samples)
        rows[method] = (res, time.perf_counter() - t0)
    print(f"{'method':<8} {'fit':>8} {'iterations':>11} {'s/iteration':>12} {'total s':>8}")
    for method, (res, seconds) in rows.items():
        print(
            f"{method:<8} {res.fit:8.4f} {res.iterations:11d} {res.times.seconds_per_iteration:12.4f} {seconds:8.2f}"
        )
    print(
        "sts samples 2^14 rows of the Khatri-Rao product per least-squares solve (exact leverage scores);\n"
        "on a tensor this small exact ALS is cheaper: sampling pays off when MTTKRP over all nonzeros is\n"
        "the cost (docs/benchmarks.md)."
    )
    if factors_file is not None:
        saved = np.load(factors_file)
        model = ml.KruskalTensor(saved["weights"], [saved[f"factor_{n}"] for n in range(X.ndim)])
        print(f"\nThe CLI's rank-25 model ({factors_file}):")
    else:
        model = rows["exact"][0]
    describe_components(model, labels)


def tp_part() -> None:
    import torch
    from e3nn import o3

    from multilinear.equivariant import zoo
    from multilinear.torch import TensorProduct

    torch.set_num_threads(2)
    name = "mace-large"
    problem = zoo.get(name, irrep_dtype=np.float32)
    ours = TensorProduct(problem)
    theirs = o3.TensorProduct(**zoo.e3nn_args(name, irrep_dtype=np.float32))
    print(
        f"\n== Tensor product {name}: {problem.irreps_in1} x {problem.irreps_in2} -> {problem.irreps_out.simplify()} =="
    )
    gen = torch.Generator().manual_seed(0)

    def inputs(batch: int) -> tuple[torch.Tensor, ...]:
        x = torch.randn(batch, problem.irreps_in1.dim, generator=gen)
        y = torch.randn(batch, problem.irreps_in2.dim, generator=gen)
        w = torch.randn(batch, problem.weight_numel, generator=gen)
        return x, y, w

    x, y, w = inputs(64)
    z_ours, z_e3nn = ours(x, y, w), theirs(x, y, w)
    err = float((z_ours - z_e3nn).abs().max() / z_e3nn.abs().max())
    print(f"batch 64, fp32: max |ours - e3nn| / max |e3nn| = {err:.1e}")

    x, y, w = inputs(10_000)

    def median_ms(fn, repeats: int) -> float:
        fn()  # warm-up (compile or load from cache, allocator)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(times))

    with torch.no_grad():
        ms_ours = median_ms(lambda: ours(x, y, w), 7)
        ms_e3nn = median_ms(lambda: theirs(x, y, w), 3)
    print(
        f"batch 10,000, fp32 forward: ours {ms_ours:.1f} ms, e3nn {ms_e3nn:.1f} ms -> {ms_e3nn / ms_ours:.0f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--factors", type=Path, help="a .npz written by `multilinear cp --output` to describe"
    )
    parser.add_argument("--skip-tp", action="store_true", help="skip the tensor-product part")
    args = parser.parse_args()
    cp_part(args.factors)
    if not args.skip_tp:
        tp_part()
