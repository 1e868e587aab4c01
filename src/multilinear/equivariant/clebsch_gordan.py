"""Real Clebsch-Gordan coefficients in e3nn's real basis (identical to e3nn 0.6's ``o3.wigner_3j``).

Recipe: the complex (Condon-Shortley) coefficients ``<l1 m1, l2 m2 | l3 m3>`` by Racah's formula in exact
rational arithmetic, then a change of basis of each index to e3nn's real basis (:func:`real_to_complex_basis`,
which includes e3nn's factor ``(-i)**l`` that makes the result real), then division by the Frobenius norm,
so ``sum C**2 == 1``. Results are cached per ``(l1, l2, l3)`` and returned as read-only float64 arrays.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from math import factorial, sqrt

import numpy as np


def _check_degrees(l1: int, l2: int, l3: int) -> None:
    for name, value in (("l1", l1), ("l2", l2), ("l3", l3)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(
            f"degrees ({l1}, {l2}, {l3}) violate the triangle rule |l1 - l2| <= l3 <= l1 + l2: "
            "their Clebsch-Gordan coefficients are all zero"
        )


def complex_clebsch_gordan(l1: int, l2: int, l3: int, m1: int, m2: int, m3: int) -> float:
    """The Condon-Shortley coefficient ``<l1 m1, l2 m2 | l3 m3>`` for integer degrees (Racah's formula)."""
    if m3 != m1 + m2 or abs(m1) > l1 or abs(m2) > l2 or abs(m3) > l3:
        return 0.0
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        return 0.0
    # sqrt of the rational prefactor, times an exact alternating sum over k.
    prefactor = Fraction(
        (2 * l3 + 1) * factorial(l3 + l1 - l2) * factorial(l3 - l1 + l2) * factorial(l1 + l2 - l3),
        factorial(l1 + l2 + l3 + 1),
    ) * (
        factorial(l3 + m3)
        * factorial(l3 - m3)
        * factorial(l1 - m1)
        * factorial(l1 + m1)
        * factorial(l2 - m2)
        * factorial(l2 + m2)
    )
    k_min = max(0, l2 - l3 - m1, l1 - l3 + m2)
    k_max = min(l1 + l2 - l3, l1 - m1, l2 + m2)
    total = Fraction(0)
    for k in range(k_min, k_max + 1):
        denominator = (
            factorial(k)
            * factorial(l1 + l2 - l3 - k)
            * factorial(l1 - m1 - k)
            * factorial(l2 + m2 - k)
            * factorial(l3 - l2 + m1 + k)
            * factorial(l3 - l1 - m2 + k)
        )
        total += Fraction((-1) ** k, denominator)
    # sqrt(prefactor) * total, with the square root taken of numerator and denominator separately.
    return float(total) * sqrt(prefactor.numerator) / sqrt(prefactor.denominator)


@functools.cache
def real_to_complex_basis(l: int) -> np.ndarray:
    """The unitary ``Q`` (complex128, ``(2l+1, 2l+1)``) with ``complex = Q @ real`` in e3nn's convention.

    Rows index the complex basis ``m = -l..l``, columns the real basis (the real spherical harmonics: sine
    combinations in columns ``l - |m|``, cosine ones in ``l + |m|``, with the Condon-Shortley phase
    ``(-1)**m`` on the ``m > 0`` rows). The whole matrix carries e3nn's extra factor ``(-i)**l``, which makes
    the Clebsch-Gordan coefficients in the real basis real.
    """
    size = 2 * l + 1
    q = np.zeros((size, size), dtype=np.complex128)
    half = 1.0 / sqrt(2.0)
    q[l, l] = 1.0
    for m in range(1, l + 1):
        sign = (-1) ** m
        # row l - m: the complex m' = -m component
        q[l - m, l + m] = half
        q[l - m, l - m] = -1j * half
        # row l + m: the complex m' = +m component
        q[l + m, l + m] = sign * half
        q[l + m, l - m] = 1j * sign * half
    q *= (-1j) ** l
    q.setflags(write=False)
    return q


@functools.cache
def _complex_block(l1: int, l2: int, l3: int) -> np.ndarray:
    block = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                block[l1 + m1, l2 + m2, l3 + m3] = complex_clebsch_gordan(l1, l2, l3, m1, m2, m3)
    return block


@functools.cache
def _wigner_3j_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    q1, q2, q3 = real_to_complex_basis(l1), real_to_complex_basis(l2), real_to_complex_basis(l3)
    complex_block = _complex_block(l1, l2, l3)
    # C_real[a, b, c] = sum_{i,j,k} Q1[i, a] Q2[j, b] conj(Q3[k, c]) C[i, j, k]
    real_block = np.einsum("ia,jb,kc,ijk->abc", q1, q2, q3.conj(), complex_block, optimize=True)
    imaginary = float(np.max(np.abs(real_block.imag))) if real_block.size else 0.0
    if imaginary > 1e-10:  # an internal invariant, not an input check
        raise RuntimeError(f"Clebsch-Gordan block ({l1}, {l2}, {l3}) is not real (|imag| = {imaginary:.2e})")
    block = np.ascontiguousarray(real_block.real)
    block /= np.linalg.norm(block)
    block.setflags(write=False)
    return block


def wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Clebsch-Gordan coefficients ``C[i, j, k]``, identical to e3nn's ``o3.wigner_3j(l1, l2, l3)``.

    They are invariant, ``C[i, j, k] = D1[i, a] D2[j, b] D3[k, c] C[a, b, c]`` for every rotation (``D``
    from :func:`multilinear.equivariant.wigner_D`), and normalised so that ``sum(C**2) == 1``.

    Parameters
    ----------
    l1, l2, l3 : int
        Degrees satisfying the triangle rule ``|l1 - l2| <= l3 <= l1 + l2``.

    Returns
    -------
    numpy.ndarray
        ``(2 l1 + 1, 2 l2 + 1, 2 l3 + 1)`` float64, read-only (cached; copy it to modify).
    """
    _check_degrees(l1, l2, l3)
    return _wigner_3j_cached(int(l1), int(l2), int(l3))


def nonzero_entries(
    l1: int, l2: int, l3: int, *, threshold: float = 1e-12
) -> tuple[tuple[int, int, int, float], ...]:
    """The entries ``(i, j, k, value)`` of :func:`wigner_3j` with ``|value| > threshold``, in C order."""
    block = wigner_3j(l1, l2, l3)
    where = np.nonzero(np.abs(block) > threshold)
    return tuple((int(i), int(j), int(k), float(block[i, j, k])) for i, j, k in zip(*where))
