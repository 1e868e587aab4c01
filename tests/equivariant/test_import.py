"""``import multilinear.equivariant`` is numpy-only: the kernels (numba) load on the first product."""

import subprocess
import sys


def test_equivariant_import_pulls_in_neither_numba_nor_torch():
    code = (
        "import sys; import multilinear.equivariant as eq; eq.zoo.get('mace-large').kernel_spec(); "
        "eq.wigner_3j(2, 2, 2); eq.spherical_harmonics(2, [[0.0, 0.0, 1.0]]); "
        "print([m for m in ('torch', 'numba', 'e3nn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"multilinear.equivariant pulled in {out.strip()}"
