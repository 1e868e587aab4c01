"""The tolerance table accepts dtype names, numpy dtypes, numpy scalar types and torch dtypes."""

import numpy as np

from tests.tolerances import tol


def test_string_and_dtype_keys_work():
    assert tol("tp_forward", "float32") == tol("tp_forward", np.dtype(np.float32)) == 1e-5


def test_numpy_scalar_type_keys_work():
    assert tol("tp_forward", np.float64) == tol("tp_forward", "float64") == 1e-10


def test_torch_dtype_keys_work():
    torch = __import__("torch")
    assert tol("tp_backward", torch.float32) == 3e-4
