"""Real spherical harmonics of edge vectors in torch (differentiable to any order), equal to e3nn's.

The same construction as :func:`multilinear.equivariant.spherical_harmonics` (numpy): ``Y^0 = 1`` and
``Y^{l+1} = (scaled CG block) · (Y^l ⊗ r)``, a polynomial of degree ``l`` in the unit vector ``r``, with
e3nn's "component" normalisation ``|Y^l|^2 = 2l + 1``. Written with torch ops only, so forces (the
gradient of an energy with respect to positions, through the edge vectors) and force training (second
derivatives) work through it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multilinear.equivariant.spherical_harmonics import _degrees, _raising_block


class SphericalHarmonics(torch.nn.Module):
    """``Y(vectors)`` for the degrees ``ls``, concatenated: ``(..., 3) -> (..., sum(2l + 1))``.

    Parameters
    ----------
    ls : int, list of int, str or Irreps
        Degrees, e.g. ``[0, 1, 2, 3]`` or ``"0e+1o+2e+3o"``.
    normalize : bool
        Divide the vectors by their length first (as e3nn's ``normalize=True``; zero vectors give zero).
    normalization : {"component", "norm", "integral"}
        As e3nn: ``|Y^l|^2 = 2l + 1``, ``|Y^l| = 1``, or component values divided by ``sqrt(4 pi)``.
    dtype : torch.dtype
        Precision of the stored coupling blocks (float32 or float64); inputs must match it.
    """

    def __init__(
        self,
        ls: Any,
        normalize: bool = True,
        normalization: str = "component",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if normalization not in ("component", "norm", "integral"):
            raise ValueError(
                f"normalization must be 'component', 'norm' or 'integral', got {normalization!r}"
            )
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.degrees = _degrees(ls)
        self.normalize = bool(normalize)
        self.normalization = normalization
        self.dtype = dtype
        self.dim = sum(2 * degree + 1 for degree in self.degrees)
        for degree in range(max(self.degrees)):
            block = torch.from_numpy(_raising_block(degree).copy()).to(dtype)
            self.register_buffer(f"raising_{degree}", block, persistent=False)

    def extra_repr(self) -> str:
        return f"ls={self.degrees}, normalize={self.normalize}, normalization={self.normalization!r}"

    def forward(self, vectors: Tensor) -> Tensor:
        """Spherical harmonics of ``vectors`` ``(..., 3)``: ``(..., dim)``."""
        if not isinstance(vectors, Tensor):
            raise TypeError(f"vectors must be a torch.Tensor, got {type(vectors).__name__}")
        if vectors.dtype != self.dtype:
            raise TypeError(f"vectors must have dtype {self.dtype}, got {vectors.dtype}")
        if vectors.ndim < 1 or vectors.shape[-1] != 3:
            raise ValueError(f"vectors must have shape (..., 3), got {tuple(vectors.shape)}")
        r = vectors
        if self.normalize:
            r = r / r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        by_degree = [torch.ones((*r.shape[:-1], 1), dtype=r.dtype, device=r.device)]
        for degree in range(max(self.degrees)):
            block = getattr(self, f"raising_{degree}")
            by_degree.append(torch.einsum("ijk,...j,...k->...i", block, by_degree[-1], r))
        pieces = []
        for degree in self.degrees:
            values = by_degree[degree]
            if self.normalization == "norm":
                values = values / (2 * degree + 1) ** 0.5
            elif self.normalization == "integral":
                values = values / (4 * torch.pi) ** 0.5
            pieces.append(values)
        return torch.cat(pieces, dim=-1)


def spherical_harmonics(
    ls: Any, vectors: Tensor, normalize: bool = True, normalization: str = "component"
) -> Tensor:
    """Functional form of :class:`SphericalHarmonics` (builds the module each call; cache it in models).

    Note the default ``normalization="component"`` (MACE's and NequIP's choice), where e3nn's default is
    "integral".
    """
    module = SphericalHarmonics(ls, normalize=normalize, normalization=normalization, dtype=vectors.dtype)
    return module(vectors)
