"""One tolerance table for the whole suite, keyed by (op, dtype).

Tensor-product tolerances are relative to the magnitude of the output (max-abs of the reference).
"""

from __future__ import annotations

import numpy as np

_TABLE: dict[tuple[str, type], float] = {
    # sparse CP
    ("mttkrp", np.float64): 1e-12,
    ("cp_fit_vs_pyttb", np.float64): 1e-6,
    ("cp_fit_vs_dense", np.float64): 1e-10,
    ("cp_factors_vs_reference", np.float64): 1e-8,
    ("leverage_probs", np.float64): 1e-10,
    # Kruskal tensors (relative to the largest reference magnitude)
    ("kruskal_values", np.float64): 1e-12,
    ("kruskal_norm", np.float64): 1e-12,
    ("kruskal_innerprod", np.float64): 1e-12,
    # equivariant tensor products
    ("cg", np.float64): 1e-12,
    ("tp_forward", np.float32): 1e-5,
    ("tp_forward", np.float64): 1e-10,
    ("tp_backward", np.float32): 3e-4,
    ("tp_backward", np.float64): 1e-10,
    ("tp_double_backward", np.float32): 3e-4,
    ("tp_double_backward", np.float64): 1e-10,
}


def tol(op: str, dtype: type | np.dtype) -> float:
    """Tolerance for ``op`` at ``dtype`` (numpy or torch dtype, or its name)."""
    if isinstance(dtype, str) or not isinstance(dtype, (type, np.dtype)):
        dtype = str(dtype).replace("torch.", "")  # a name, or a torch dtype such as torch.float32
    key = np.dtype(dtype).type
    try:
        return _TABLE[(op, key)]
    except KeyError:
        raise KeyError(
            f"no tolerance for op {op!r} at dtype {key.__name__}: add it to tests/tolerances.py"
        ) from None


def assert_close_rel(actual: np.ndarray, expected: np.ndarray, op: str, dtype: type | np.dtype) -> None:
    """Assert max|actual - expected| <= tol * max(1, max|expected|)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    bound = tol(op, dtype) * scale
    assert err <= bound, (
        f"{op} at {np.dtype(str(dtype).replace('torch.', ''))}: max error {err:.3e} > {bound:.3e}"
    )
