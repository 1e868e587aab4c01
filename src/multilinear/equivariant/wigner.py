"""Wigner D matrices in e3nn's real basis and Euler-angle convention, and random rotations.

e3nn's convention: a rotation is ``R = R_y(alpha) R_x(beta) R_y(gamma)`` (``gamma`` about Y applied first),
and ``D^l(alpha, beta, gamma) = exp(alpha J_y) exp(beta J_x) exp(gamma J_y)`` with ``J_x, J_y`` the real
antisymmetric generators of degree ``l`` in the real basis of :func:`real_to_complex_basis` (Y is the polar
axis). For ``l = 1`` the real basis is ``(x, y, z)`` itself: ``D^1(alpha, beta, gamma) = R``.

Each exponential is evaluated by diagonalising its generator once per degree (cached), so ``D`` for many
angles costs a few batched complex matrix products.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike
from multilinear.equivariant.clebsch_gordan import real_to_complex_basis


@functools.cache
def _complex_generators(l: int) -> tuple[np.ndarray, np.ndarray]:
    """e3nn's ``(J_x, J_y)`` of degree ``l`` in the complex basis ``m = -l..l`` (complex128)."""
    size = 2 * l + 1
    m = np.arange(-l, l + 1)
    raising = np.zeros((size, size))  # e3nn's sign: the sub-diagonal carries -sqrt(l(l+1) - m(m+1))
    lowering = np.zeros((size, size))
    for row in range(1, size):
        m_from = m[row - 1]
        raising[row, row - 1] = -np.sqrt(l * (l + 1) - m_from * (m_from + 1))
    for row in range(size - 1):
        m_from = m[row + 1]
        lowering[row, row + 1] = np.sqrt(l * (l + 1) - m_from * (m_from - 1))
    j_x = 0.5 * (raising + lowering) + 0j
    j_y = np.diag(1j * m)
    return j_x, j_y


@functools.cache
def so3_generators(l: int) -> np.ndarray:
    """The real generators ``(J_x, J_y)`` of degree ``l``: ``(2, 2l+1, 2l+1)`` float64, antisymmetric."""
    q = real_to_complex_basis(l)
    j_x, j_y = _complex_generators(l)
    real = np.stack([q.conj().T @ j_x @ q, q.conj().T @ j_y @ q])
    out = np.ascontiguousarray(real.real)
    out.setflags(write=False)
    return out


@functools.cache
def _x_eigensystem(l: int) -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues, eigenvectors)`` of the Hermitian ``i J_x`` in the real basis."""
    j_x = so3_generators(l)[0]
    values, vectors = np.linalg.eigh(1j * j_x)
    return values, vectors


def _exp_y(l: int, angle: np.ndarray) -> np.ndarray:
    """``exp(angle J_y)`` for every angle: J_y is ``diag(i m)`` in the complex basis."""
    q = real_to_complex_basis(l)
    phases = np.exp(1j * angle[..., None] * np.arange(-l, l + 1))  # (..., 2l+1)
    return np.einsum("ma,...m,mb->...ab", q.conj(), phases, q).real


def _exp_x(l: int, angle: np.ndarray) -> np.ndarray:
    """``exp(angle J_x) = V diag(exp(-i angle lambda)) V^H`` with ``i J_x = V diag(lambda) V^H``."""
    values, vectors = _x_eigensystem(l)
    phases = np.exp(-1j * angle[..., None] * values)
    return np.einsum("am,...m,bm->...ab", vectors, phases, vectors.conj()).real


def wigner_D(l: int, alpha: Any, beta: Any, gamma: Any) -> np.ndarray:
    """The Wigner D matrix of degree ``l`` in e3nn's real basis, equal to e3nn's ``o3.wigner_D``.

    Parameters
    ----------
    l : int
        Degree, ``>= 0``.
    alpha, beta, gamma : array_like
        Euler angles (radians), broadcast together to shape ``(...)``: ``gamma`` about Y first, then
        ``beta`` about X, then ``alpha`` about Y.

    Returns
    -------
    numpy.ndarray
        ``(..., 2l+1, 2l+1)`` float64, orthogonal; ``D(R1 R2) = D(R1) D(R2)``.
    """
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or l < 0:
        raise ValueError(f"degree l must be an integer >= 0, got {l!r}")
    alpha, beta, gamma = np.broadcast_arrays(
        np.asarray(alpha, dtype=np.float64),
        np.asarray(beta, dtype=np.float64),
        np.asarray(gamma, dtype=np.float64),
    )
    l = int(l)
    return _exp_y(l, alpha) @ _exp_x(l, beta) @ _exp_y(l, gamma)


def rotation_matrix(alpha: Any, beta: Any, gamma: Any) -> np.ndarray:
    """The 3x3 rotation ``R_y(alpha) R_x(beta) R_y(gamma)`` acting on ``(x, y, z)`` vectors, ``(..., 3, 3)``."""
    alpha, beta, gamma = np.broadcast_arrays(
        np.asarray(alpha, dtype=np.float64),
        np.asarray(beta, dtype=np.float64),
        np.asarray(gamma, dtype=np.float64),
    )

    def about_y(t: np.ndarray) -> np.ndarray:
        c, s, o, z = np.cos(t), np.sin(t), np.ones_like(t), np.zeros_like(t)
        return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)

    def about_x(t: np.ndarray) -> np.ndarray:
        c, s, o, z = np.cos(t), np.sin(t), np.ones_like(t), np.zeros_like(t)
        return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)

    return about_y(alpha) @ about_x(beta) @ about_y(gamma)


def random_angles(
    size: int | tuple[int, ...] | None = None, *, rng: RNGLike = None
) -> tuple[np.ndarray, ...]:
    """Euler angles ``(alpha, beta, gamma)`` of rotations drawn uniformly (Haar measure) from SO(3).

    ``alpha, gamma`` are uniform on ``[0, 2 pi)`` and ``cos(beta)`` uniform on ``[-1, 1]``. Each array has
    shape ``size`` (a scalar array for ``None``). Reproducible for a seed ``rng``.
    """
    gen = as_generator(rng)
    alpha = gen.uniform(0.0, 2.0 * np.pi, size=size)
    beta = np.arccos(gen.uniform(-1.0, 1.0, size=size))
    gamma = gen.uniform(0.0, 2.0 * np.pi, size=size)
    return np.asarray(alpha), np.asarray(beta), np.asarray(gamma)
