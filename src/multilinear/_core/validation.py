"""Input checks shared by the front ends. They raise ``ValueError``/``TypeError`` naming the problem."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is finite and >= 0; raise otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}") from None
    if not np.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; raise a ValueError listing them otherwise."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first non-finite entry of ``array``."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        where = tuple(int(i) for i in bad)
        pos = where[0] if len(where) == 1 else where
        raise ValueError(f"{name} has a non-finite value {float(array[tuple(bad)])} at index {pos}")


def check_matrix(array: Any, name: str, *, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """Return ``array`` as a C-contiguous float64 matrix, checking its shape and finiteness."""
    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, name)
    return a
