"""Real spherical harmonics of 3-d vectors, equal to e3nn's ``o3.spherical_harmonics`` (numpy, vectorised).

Construction (no tables): ``Y^0 = 1`` and ``Y^{l+1}_i = c_l * sum_{j,k} C_{ijk} Y^l_j r_k`` with ``C`` the
real Clebsch-Gordan block ``wigner_3j(l + 1, l, 1)``. The coupled product is the only part of ``Y^l (x) r``
that transforms like degree ``l + 1``, so every ``Y^l`` is the equivariant homogeneous polynomial of degree
``l`` in ``r``: e3nn's, up to one scale per degree. ``c_l`` fixes that scale the way e3nn does, with
"component" normalisation ``|Y^l(r)|^2 = 2l + 1`` on the unit sphere and ``Y^l_m(y-axis) = sqrt(2l + 1)``
for the axial component ``m = 0`` (Y is e3nn's polar axis).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from multilinear._core.validation import check_choice
from multilinear.equivariant.clebsch_gordan import wigner_3j
from multilinear.equivariant.irreps import Irreps

NORMALIZATIONS = ("integral", "component", "norm")


@functools.cache
def _raising_block(l: int) -> np.ndarray:
    """``c_l * wigner_3j(l + 1, l, 1)``, scaled so that the recursion has "component" normalisation."""
    block = wigner_3j(l + 1, l, 1)
    # Y^l at the pole r = (0, 1, 0): only the axial component l is nonzero, equal to sqrt(2l + 1).
    pole_value = np.zeros(2 * l + 1)
    pole_value[l] = math.sqrt(2 * l + 1)
    pole = np.array([0.0, 1.0, 0.0])
    axial = float(np.einsum("ijk,j,k->i", block, pole_value, pole)[l + 1])
    scaled = block * (math.sqrt(2 * l + 3) / axial)
    scaled.setflags(write=False)
    return scaled


def _degrees(ls: Any) -> list[int]:
    if isinstance(ls, (int, np.integer)) and not isinstance(ls, bool):
        degrees = [int(ls)]
    elif isinstance(ls, (str, Irreps)):
        irreps = Irreps(ls)
        degrees = []
        for mul, ir in irreps:
            if ir.p != (-1) ** ir.l:
                raise ValueError(
                    f"spherical harmonics of a vector have parity (-1)**l: {ir} in {irreps} should be "
                    f"{ir.l}{'e' if ir.l % 2 == 0 else 'o'}"
                )
            degrees.extend([ir.l] * mul)
    else:
        try:
            degrees = [int(value) for value in ls]
        except (TypeError, ValueError):
            raise TypeError(f"ls must be an int, a list of ints or irreps, got {ls!r}") from None
    if not degrees or min(degrees) < 0:
        raise ValueError(f"degrees must be a non-empty list of integers >= 0, got {degrees}")
    return degrees


def spherical_harmonics(
    ls: Any, vectors: Any, normalize: bool = True, normalization: str = "integral"
) -> np.ndarray:
    """The real spherical harmonics ``Y^l(vectors)`` for each requested degree, concatenated.

    Parameters
    ----------
    ls : int, list of int, str or Irreps
        One degree, several degrees, or irreps such as ``"1x0e+1x1o+1x2e"`` (parity must be ``(-1)**l``).
    vectors : array_like
        ``(..., 3)`` Cartesian vectors ``(x, y, z)``.
    normalize : bool
        Project the vectors onto the unit sphere first (a zero vector stays zero). Without it, ``Y^l`` is
        the homogeneous polynomial of degree ``l`` (e3nn's ``normalize=False``).
    normalization : {"integral", "component", "norm"}
        As in e3nn: "component" gives ``|Y^l|^2 = 2l + 1`` on the sphere, "norm" ``|Y^l| = 1``, "integral"
        the component value divided by ``sqrt(4 pi)`` (e3nn's default).

    Returns
    -------
    numpy.ndarray
        ``(..., sum(2l + 1))`` float64.
    """
    degrees = _degrees(ls)
    check_choice(normalization, "normalization", NORMALIZATIONS)
    r = np.asarray(vectors)
    if not (np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.integer)):
        raise TypeError(f"vectors must hold real numbers, got dtype {r.dtype}")
    if r.ndim < 1 or r.shape[-1] != 3:
        raise ValueError(f"vectors must have shape (..., 3), got {r.shape}")
    r = r.astype(np.float64, copy=False)
    if normalize:
        norms = np.linalg.norm(r, axis=-1, keepdims=True)
        r = r / np.maximum(norms, 1e-12)
    lead = r.shape[:-1]
    flat = r.reshape(-1, 3)
    by_degree = [np.ones((flat.shape[0], 1))]
    for degree in range(max(degrees)):
        by_degree.append(
            np.einsum("ijk,nj,nk->ni", _raising_block(degree), by_degree[-1], flat, optimize=True)
        )
    pieces = []
    for degree in degrees:
        values = by_degree[degree]
        if normalization == "norm":
            values = values / math.sqrt(2 * degree + 1)
        elif normalization == "integral":
            values = values / math.sqrt(4 * math.pi)
        pieces.append(values)
    return np.concatenate(pieces, axis=-1).reshape(*lead, -1)
