"""The command-line interface end to end on a small file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import multilinear as ml
from multilinear.cli import main


@pytest.fixture(scope="module")
def small_tns(tmp_path_factory):
    rng = np.random.default_rng(7)
    A, B, C = (rng.standard_normal((n, 3)) for n in (9, 8, 7))  # well conditioned: no swamp
    dense = np.einsum("ir,jr,kr->ijk", A, B, C)
    X = ml.SparseTensor.from_dense(dense)
    path = tmp_path_factory.mktemp("cli") / "small.tns"
    X.to_tns(path)
    return path, X


def test_info_json(small_tns, capsys):
    path, X = small_tns
    assert main(["info", str(path), "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == list(X.shape)
    assert out["nnz"] == X.nnz


def test_cp_json_and_output(small_tns, tmp_path, capsys):
    path, X = small_tns
    npz = tmp_path / "factors.npz"
    code = main(
        ["cp", str(path), "--rank", "3", "--max-iter", "30", "--tol", "0", "--seed", "1", "--json",
         "--no-progress", "--output", str(npz), "--no-cache", "--fit-every", "1"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rank"] == 3 and out["nnz"] == X.nnz
    assert out["fit"] > 0.99, out["fit"]  # an exactly rank-3 tensor
    assert 1 <= out["iterations"] <= 30
    assert len(out["fit_history"]) == out["iterations"]  # fit evaluated every iteration
    assert out["fit_history"][-1][1] == pytest.approx(out["fit"])
    saved = np.load(npz)
    assert [saved[f"factor_{n}"].shape for n in range(3)] == [(9, 3), (8, 3), (7, 3)]
    np.testing.assert_allclose(saved["weights"], out["weights"])


def test_cp_human_output_and_module_entry(small_tns):
    path, _ = small_tns
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "multilinear",
            "cp",
            str(path),
            "--rank",
            "2",
            "--max-iter",
            "3",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "final fit" in proc.stdout and "fit trace" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cp", "missing.tns", "--rank", "2"], "no such file"),
        (["cp", "{path}", "--rank", "2", "--samples", "100"], "--samples applies to the randomized"),
    ],
    ids=["missing-file", "samples-with-exact"],
)
def test_cp_errors_are_reported(small_tns, capsys, argv, message):
    path, _ = small_tns
    argv = [a.format(path=path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_rank_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cp", "x.tns", "--rank", "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_malformed_file_names_line(tmp_path, capsys):
    path = tmp_path / "bad.tns"
    path.write_text("1 2 3 1.0\n1 2 x 2.0\n")
    assert main(["info", str(path), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "bad.tns" in err and "line 2" in err
