"""Test helpers users can import: check that a function of irreps features is O(3)-equivariant.

>>> import numpy as np
>>> from multilinear.equivariant import zoo, tensor_product
>>> from multilinear.equivariant.testing import assert_equivariant
>>> problem = zoo.get("small-uvu", irrep_dtype=np.float64)
>>> w = np.random.default_rng(0).standard_normal((4, problem.weight_numel))
>>> assert_equivariant(
...     lambda x, y: tensor_product(problem, x, y, w),
...     [problem.irreps_in1, problem.irreps_in2],
...     problem.irreps_out,
...     batch=4,
...     rng=0,
... )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike
from multilinear.equivariant.irreps import Irreps
from multilinear.equivariant.wigner import random_angles


def equivariance_error(
    func: Callable[..., Any],
    irreps_in: Sequence[Any],
    irreps_out: Any,
    *,
    batch: int = 4,
    rotations: int = 3,
    parity: bool = True,
    rng: RNGLike = None,
) -> float:
    """The largest ``|f(D_in x) - D_out f(x)|`` over random inputs and rotations, relative to ``max|f(x)|``.

    Parameters
    ----------
    func : callable
        ``func(*inputs) -> (batch, irreps_out.dim)``, one input ``(batch, irreps.dim)`` per entry of
        ``irreps_in``.
    irreps_in : sequence of Irreps or str
        Irreps of each input.
    irreps_out : Irreps or str
        Irreps of the output.
    batch : int
        Rows of random standard-normal inputs.
    rotations : int
        Random rotations (Haar) to try; with ``parity`` each is also tried composed with the inversion.
    parity : bool
        Also check the inversion (O(3) rather than SO(3) equivariance).
    rng : int, Generator or None
        Seed or generator for inputs and rotations.

    Returns
    -------
    float
        ``max |f(D x) - D f(x)| / max(1, max |f(x)|)``.
    """
    gen = as_generator(rng)
    irreps_in = [Irreps(irreps) for irreps in irreps_in]
    irreps_out = Irreps(irreps_out)
    inputs = [gen.standard_normal((batch, irreps.dim)) for irreps in irreps_in]
    reference = np.asarray(func(*inputs), dtype=np.float64)
    if reference.shape != (batch, irreps_out.dim):
        raise ValueError(f"func must return shape {(batch, irreps_out.dim)}, got {reference.shape}")
    scale = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
    worst = 0.0
    alpha, beta, gamma = random_angles(rotations, rng=gen)
    for n in range(rotations):
        for k in (0, 1) if parity else (0,):
            angles = (float(alpha[n]), float(beta[n]), float(gamma[n]))
            moved = [irreps.rotate(x, *angles, k=k) for irreps, x in zip(irreps_in, inputs)]
            out_of_moved = np.asarray(func(*moved), dtype=np.float64)
            moved_out = irreps_out.rotate(reference, *angles, k=k)
            worst = max(worst, float(np.max(np.abs(out_of_moved - moved_out))) if reference.size else 0.0)
    return worst / scale


def assert_equivariant(
    func: Callable[..., Any],
    irreps_in: Sequence[Any],
    irreps_out: Any,
    *,
    tolerance: float = 1e-10,
    **options: Any,
) -> None:
    """Raise ``AssertionError`` if :func:`equivariance_error` exceeds ``tolerance`` (use ~1e-4 for float32)."""
    error = equivariance_error(func, irreps_in, irreps_out, **options)
    if not error <= tolerance:
        raise AssertionError(f"not equivariant: relative error {error:.3e} > tolerance {tolerance:.1e}")
