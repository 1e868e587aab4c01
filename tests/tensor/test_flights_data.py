"""The shipped NYC-flights tensors: shapes, nonzero counts and labels as data/README.md states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import multilinear as ml

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize(
    ("name", "shape", "nnz", "flights"),
    [
        ("flights_tail_dest_day_hour", (4043, 104, 365, 19), 334_253, 334_264),
        ("flights_dest_carrier_day_hour", (105, 16, 365, 20), 294_734, 336_776),
    ],
)
def test_shipped_flights_tensor(name, shape, nnz, flights):
    X = ml.read_tns(DATA / f"{name}.tns.gz", cache=False)
    assert X.shape == shape and X.nnz == nnz
    assert int(X.values.sum()) == flights
    assert (X.values >= 1).all() and (X.values == np.round(X.values)).all()
    labels = json.loads((DATA / f"{name}.labels.json").read_text())
    assert labels["shape"] == list(shape) and labels["nnz"] == nnz
    assert [len(lab) for lab in labels["labels"]] == list(shape)
    assert all(lab == sorted(lab) for lab in labels["labels"])
    assert (np.bincount(X.indices[:, 0], minlength=shape[0]) > 0).all()  # every label occurs
