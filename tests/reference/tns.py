"""Plain-Python oracles for the tensor layer: a line-by-line ``.tns`` reader and dense Kruskal algebra."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def read_tns_python(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Indices (0-based, int64, one row per data line, in file order) and values parsed with ``float()``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    values = []
    with opener(path, "rt") as handle:
        for line in handle:
            fields = line.split("#", 1)[0].split()  # a comment: whole line or after the value
            if not fields:
                continue
            rows.append([int(f) - 1 for f in fields[:-1]])
            values.append(float(fields[-1]))
    return np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64)


def kruskal_dense(weights: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    """sum_r w_r a_r^(1) o ... o a_r^(N) by einsum over all modes at once."""
    letters = "abcdefghij"[: len(factors)]
    spec = ",".join(f"{c}r" for c in letters) + ",r->" + letters
    return np.einsum(spec, *factors, weights)
