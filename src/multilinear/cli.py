"""Command-line front end: ``multilinear cp FILE ...`` and ``multilinear info FILE``.

No algorithm lives here: this module parses arguments, calls the library and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METHODS = ("exact", "arls-lev", "arls-lev-hybrid", "sts")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multilinear",
        description="Sparse tensor tools: CP decomposition (exact or randomized ALS) and summaries of "
        "FROSTT .tns files (.tns.gz read transparently).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cp = sub.add_parser(
        "cp",
        help="CP decomposition of a .tns file",
        description="CP decomposition by alternating least squares. 'exact' solves each least-squares "
        "problem exactly (MTTKRP); 'arls-lev', 'arls-lev-hybrid' and 'sts' sample rows of the Khatri-Rao "
        "product by leverage scores (product approximation, hybrid, or exact STS sampling). The fit "
        "1 - ||X - M|| / ||X|| is computed exactly every --fit-every iterations.",
    )
    cp.add_argument("file", type=Path, help="FROSTT .tns or .tns.gz file (1-based indices, then the value)")
    cp.add_argument("--rank", "-r", type=_positive_int, required=True, help="CP rank R")
    cp.add_argument("--method", choices=METHODS, default="exact", help="ALS variant (default: exact)")
    cp.add_argument(
        "--samples",
        type=_positive_int,
        default=None,
        help="rows sampled per least-squares problem (randomized methods; default 65536)",
    )
    cp.add_argument("--max-iter", type=_positive_int, default=50, help="at most this many ALS sweeps (50)")
    cp.add_argument(
        "--tol", type=_nonnegative_float, default=1e-4, help="stop when the fit improves by less (1e-4)"
    )
    cp.add_argument("--fit-every", type=_positive_int, default=1, help="compute the fit every K sweeps (1)")
    cp.add_argument(
        "--fit-samples",
        type=_positive_int,
        default=None,
        help="estimate the fit at each evaluation from this many sampled nonzeros instead of a pass over all "
        "of them (for huge tensors; the final fit is exact)",
    )
    cp.add_argument(
        "--init",
        choices=("auto", "gaussian", "norms", "rrf", "sampled-rrf"),
        default="auto",
        help="initial factors (auto: gaussian for exact, sampled-rrf, a randomized range finder on sampled "
        "fibers, for the sampled methods; see cp_als)",
    )
    cp.add_argument("--seed", type=int, default=0, help="random seed (0); same seed, same result")
    cp.add_argument("--output", "-o", type=Path, help="write weights and factors to this .npz file")
    cp.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    cp.add_argument("--no-progress", action="store_true", help="no progress bar")
    cp.add_argument("--no-cache", action="store_true", help="do not read or write the binary .tns cache")

    info = sub.add_parser("info", help="shape, nonzeros, density and value statistics of a .tns file")
    info.add_argument("file", type=Path, help="FROSTT .tns or .tns.gz file")
    info.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    info.add_argument("--no-cache", action="store_true", help="do not read or write the binary .tns cache")
    return parser


def _load(path: Path, no_cache: bool) -> Any:
    import multilinear as ml

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return ml.read_tns(path, cache=not no_cache)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _run_info(args: argparse.Namespace) -> int:
    from multilinear.tensor import tensor_summary

    t0 = time.perf_counter()
    X = _load(args.file, args.no_cache)
    seconds = time.perf_counter() - t0
    summary = tensor_summary(X)
    if args.json:
        print(json.dumps(_jsonable({"file": str(args.file), **summary}), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.file} (read in {seconds:.2f} s)", show_header=False)
    for key, value in summary.items():
        if isinstance(value, float):
            text = f"{value:.6g}"
        elif isinstance(value, (list, tuple)):
            text = " × ".join(str(v) for v in value) if key == "shape" else ", ".join(str(v) for v in value)
        else:
            text = str(value)
        table.add_row(key.replace("_", " "), text)
    Console().print(table)
    return 0


def _run_cp(args: argparse.Namespace) -> int:
    import numpy as np

    import multilinear as ml

    t0 = time.perf_counter()
    X = _load(args.file, args.no_cache)
    read_seconds = time.perf_counter() - t0
    if not args.json:
        print(
            f"{args.file}: shape {' × '.join(map(str, X.shape))}, {X.nnz:,} nonzeros ({read_seconds:.2f} s)"
        )
    kwargs: dict[str, Any] = {}
    if args.samples is not None:
        if args.method == "exact":
            raise ValueError("--samples applies to the randomized methods (arls-lev, arls-lev-hybrid, sts)")
        kwargs["samples"] = args.samples
    result = ml.cp_als(
        X,
        args.rank,
        method=args.method,
        max_iter=args.max_iter,
        tol=args.tol,
        init=args.init,
        rng=args.seed,
        fit_every=args.fit_every,
        fit_samples=args.fit_samples,
        progress=not args.no_progress,
        **kwargs,
    )
    if args.output is not None:
        arrays = {"weights": result.weights, "fit_history": np.asarray(result.fit_history, dtype=np.float64)}
        arrays.update({f"factor_{n}": f for n, f in enumerate(result.factors)})
        np.savez(args.output, **arrays)
    seconds_per_iteration = float(np.sum(result.times.update)) / max(result.iterations, 1)  # updates only
    if args.json:
        out = {
            "file": str(args.file),
            "shape": list(X.shape),
            "nnz": X.nnz,
            "rank": args.rank,
            "method": args.method,
            "iterations": result.iterations,
            "fit": result.fit,
            "fit_history": [list(p) for p in result.fit_history],
            "weights": result.weights,
            "seconds_per_iteration": seconds_per_iteration,
            "output": None if args.output is None else str(args.output),
        }
        print(json.dumps(_jsonable(out), indent=2))
        return 0
    _print_cp_summary(args, result, seconds_per_iteration)
    return 0


def _print_cp_summary(args: argparse.Namespace, result: Any, seconds_per_iteration: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"CP-ALS ({args.method}), rank {args.rank}: fit trace")
    table.add_column("iteration", justify="right")
    table.add_column("fit", justify="right")
    history = list(result.fit_history)
    shown = history if len(history) <= 12 else [*history[:6], None, *history[-5:]]
    for entry in shown:
        if entry is None:
            table.add_row("…", "…")
        else:
            table.add_row(str(entry[0]), f"{entry[1]:.6f}")
    console.print(table)
    if args.fit_samples is not None:
        console.print(f"(fits in the trace estimated from {args.fit_samples:,} sampled nonzeros)")
    console.print(
        f"final fit {result.fit:.6f} after {result.iterations} iterations, {seconds_per_iteration:.4f} s/iteration"
    )
    if args.output is not None:
        console.print(f"weights and factors written to {args.output}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            return _run_info(args)
        return _run_cp(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, NotImplementedError) as err:
        print(f"multilinear {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
