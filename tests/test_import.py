"""``import multilinear`` stays light: no torch, no numba, no CLI."""

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import multilinear; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'numba', 'multilinear.cli', 'mpi4py') if m in sys.modules]; "
        "print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, heavy = out.split(" ", 1)
    assert heavy.strip() == "[]", f"import multilinear pulled in {heavy.strip()}"
    assert float(seconds) < 1.0, f"import multilinear took {float(seconds):.2f} s"
