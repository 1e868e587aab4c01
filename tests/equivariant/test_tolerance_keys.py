"""The tolerance table is documented to accept numpy dtypes; a numpy scalar type (``np.float64``, what
``TPProblem.irrep_dtype`` holds) is not accepted yet. Reported to the lead; xfail until tests/tolerances.py
handles it (``np.dtype(dtype)`` for non-strings)."""

import numpy as np
import pytest

from tests.tolerances import tol


def test_string_and_dtype_keys_work():
    assert tol("tp_forward", "float32") == tol("tp_forward", np.dtype(np.float32)) == 1e-5


@pytest.mark.xfail(
    reason="tests/tolerances.tol parses str(np.float64) == \"<class 'numpy.float64'>\"", strict=False
)
def test_numpy_scalar_type_keys_work():
    assert tol("tp_forward", np.float64) == 1e-10
