"""Irreducible representations of O(3) and direct sums of them, with e3nn's names, strings and order.

An :class:`Irrep` is a pair ``(l, p)``: degree ``l >= 0`` and parity ``p = +1`` ("e", even) or ``-1`` ("o",
odd); its dimension is ``2 l + 1``. An :class:`Irreps` is a tuple of :class:`MulIrrep` ``(mul, ir)``, a
direct sum of ``mul`` copies of each ``ir``, stored in e3nn's layout: ``mul`` copies of one irrep occupy
``mul * ir.dim`` consecutive columns, row-major ``(mul, ir.dim)``.

Both are tuples, so they compare, hash and sort like e3nn's (``Irrep`` orders by ``(l, p)``, hence
``0o < 0e < 1o < 1e``), and their strings are e3nn's: ``"1o"``, ``"128x0e+128x1o"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike

_PARITY_LETTER = {1: "e", -1: "o"}


class Irrep(tuple):
    """An irreducible representation of O(3): degree ``l`` and parity ``p``.

    Parameters
    ----------
    l : int, str, Irrep or (int, int)
        The degree, or a whole irrep: a string ``"1o"``, ``"2e"``, ``"3y"`` (``y``: the parity of the
        spherical harmonics, ``(-1)**l``), another ``Irrep`` or a pair ``(l, p)``.
    p : {1, -1}, optional
        The parity, required when ``l`` is an int.

    Examples
    --------
    >>> Irrep("1o"), Irrep(2, 1), Irrep("3y")
    (1o, 2e, 3o)
    >>> Irrep("2e").dim
    5
    """

    def __new__(cls, l: Any, p: Any = None) -> Irrep:
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                return _parse_irrep(l)
            if isinstance(l, tuple) and tuple.__len__(l) == 2:
                l, p = tuple.__getitem__(l, 0), tuple.__getitem__(l, 1)
            else:
                raise TypeError(
                    f"Irrep needs a string like '1o', an (l, p) pair or l and p, got {type(l).__name__} {l!r}"
                )
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
            raise TypeError(f"irrep degree l must be an integer, got {type(l).__name__} {l!r}")
        if l < 0:
            raise ValueError(f"irrep degree l must be >= 0, got {l}")
        if isinstance(p, bool) or p not in (1, -1):
            raise ValueError(f"irrep parity p must be 1 (even) or -1 (odd), got {p!r}")
        return super().__new__(cls, (int(l), int(p)))

    @property
    def l(self) -> int:  # noqa: E743
        """The degree ``l``."""
        return self[0]

    @property
    def p(self) -> int:
        """The parity, ``1`` (even) or ``-1`` (odd)."""
        return self[1]

    @property
    def dim(self) -> int:
        """The dimension ``2 l + 1``."""
        return 2 * self[0] + 1

    def is_scalar(self) -> bool:
        """True for ``0e``."""
        return self == (0, 1)

    def __repr__(self) -> str:
        return f"{self[0]}{_PARITY_LETTER[self[1]]}"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Irrep(other)
            except (TypeError, ValueError):
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __mul__(self, other: Any) -> Iterator[Irrep]:
        """The irreps in the product ``self x other``: ``l`` from ``|l1 - l2|`` to ``l1 + l2``, parity ``p1 p2``."""
        other = Irrep(other)
        parity = self.p * other.p
        for degree in range(abs(self.l - other.l), self.l + other.l + 1):
            yield Irrep(degree, parity)

    def __rmul__(self, mul: int) -> Irreps:
        """``3 * Irrep("1e")`` is ``Irreps("3x1e")``."""
        return Irreps([(mul, self)])

    def __add__(self, other: Any) -> Irreps:
        return Irreps(self) + Irreps(other)

    def D_from_angles(self, alpha: Any, beta: Any, gamma: Any, k: Any = None) -> np.ndarray:
        """The matrix ``p**k D^l(alpha, beta, gamma)`` of this irrep, shape ``(..., dim, dim)``.

        See :func:`multilinear.equivariant.wigner.wigner_D` for the angle convention (e3nn's).
        """
        from multilinear.equivariant.wigner import wigner_D

        matrix = wigner_D(self.l, alpha, beta, gamma)
        if k is None:
            return matrix
        k = np.asarray(k)
        return matrix * (float(self.p) ** k)[..., None, None]


class MulIrrep(NamedTuple):
    """``mul`` copies of the irrep ``ir``: a block of ``mul * ir.dim`` columns."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        """``mul * ir.dim``."""
        return self.mul * self.ir.dim

    def __repr__(self) -> str:
        return f"{self.mul}x{self.ir}"

    __str__ = __repr__


class SortedIrreps(NamedTuple):
    """The result of :meth:`Irreps.sort`: ``irreps[p[i]] == original[i]`` and ``irreps[j] == original[inv[j]]``."""

    irreps: Irreps
    p: tuple[int, ...]
    inv: tuple[int, ...]


class Irreps(tuple):
    """A direct sum of irreps, in e3nn's layout and string form.

    Parameters
    ----------
    irreps : str, Irreps, Irrep, iterable or None
        An e3nn string such as ``"128x0e+128x1o+1x2e"`` or ``"0e + 1o"`` (spaces allowed, a missing
        multiplicity means 1, ``""`` is empty), an ``Irrep``, or an iterable whose items are strings
        (``"1o"``), ``Irrep`` s, ``MulIrrep`` s, ``(mul, ir)`` pairs with ``ir`` anything ``Irrep``
        accepts.

    Examples
    --------
    >>> irreps = Irreps("128x0e+128x1o+1x2e")
    >>> irreps.dim, irreps.num_irreps, irreps.lmax
    (517, 257, 2)
    >>> [(mul, str(ir)) for mul, ir in irreps]
    [(128, '0e'), (128, '1o'), (1, '2e')]
    """

    def __new__(cls, irreps: Any = None) -> Irreps:
        if isinstance(irreps, Irreps):
            return irreps
        if irreps is None:
            items: list[MulIrrep] = []
        elif isinstance(irreps, Irrep):
            items = [MulIrrep(1, irreps)]
        elif isinstance(irreps, str):
            items = _parse_irreps(irreps)
        elif isinstance(irreps, Iterable):
            items = [_as_mul_irrep(item) for item in irreps]
        else:
            raise TypeError(
                f"Irreps needs a string like '2x0e+1x1o', an Irrep or an iterable of (mul, irrep), "
                f"got {type(irreps).__name__} {irreps!r}"
            )
        return super().__new__(cls, items)

    # --- shape ---------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Total dimension ``sum(mul * (2 l + 1))``."""
        return sum(mul_ir.dim for mul_ir in self)

    @property
    def num_irreps(self) -> int:
        """Total multiplicity ``sum(mul)``."""
        return sum(mul_ir.mul for mul_ir in self)

    @property
    def ls(self) -> list[int]:
        """The degree of every copy, ``l`` repeated ``mul`` times per entry."""
        return [mul_ir.ir.l for mul_ir in self for _ in range(mul_ir.mul)]

    @property
    def lmax(self) -> int:
        """The largest degree present (among entries of nonzero multiplicity)."""
        degrees = self.ls
        if not degrees:
            raise ValueError("lmax of an empty Irreps is undefined")
        return max(degrees)

    def slices(self) -> list[slice]:
        """The column range of each entry: ``Irreps("2x0e+1e").slices() == [slice(0, 2), slice(2, 5)]``."""
        out, start = [], 0
        for mul_ir in self:
            out.append(slice(start, start + mul_ir.dim))
            start += mul_ir.dim
        return out

    def offsets(self) -> list[int]:
        """The first column of each entry."""
        return [s.start for s in self.slices()]

    # --- transformations -----------------------------------------------------------------------------

    def simplify(self) -> Irreps:
        """Merge neighbouring entries of the same irrep and drop zero multiplicities (no sorting)."""
        out: list[tuple[int, Irrep]] = []
        for mul, ir in self:
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            elif mul > 0:
                out.append((mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self) -> Irreps:
        """The entries with ``mul > 0``."""
        return Irreps([mul_ir for mul_ir in self if mul_ir.mul > 0])

    def sort(self) -> SortedIrreps:
        """Sort the entries by irrep (stable): ``(irreps, p, inv)`` with ``p`` old -> new index, ``inv`` new -> old."""
        order = sorted(range(len(self)), key=lambda i: (self[i].ir, i))
        inv = tuple(order)
        p = [0] * len(inv)
        for new, old in enumerate(inv):
            p[old] = new
        return SortedIrreps(Irreps([self[i] for i in inv]), tuple(p), inv)

    def regroup(self) -> Irreps:
        """``sort()`` then ``simplify()``."""
        return self.sort().irreps.simplify()

    def count(self, ir: Any) -> int:  # type: ignore[override]
        """The total multiplicity of ``ir``."""
        ir = Irrep(ir)
        return sum(mul for mul, other in self if other == ir)

    def __contains__(self, ir: object) -> bool:
        try:
            ir = Irrep(ir)
        except (TypeError, ValueError):
            return False
        return any(other == ir for _, other in self)

    def randn(
        self, *size: int, normalization: str = "component", rng: RNGLike = None, dtype: Any = np.float64
    ) -> np.ndarray:
        """Random features, like e3nn's ``Irreps.randn``: ``size`` holds one ``-1``, replaced by ``dim``.

        "component": standard normal entries; "norm": each irrep copy scaled to unit norm. Reproducible
        for a seed ``rng``.
        """
        if size.count(-1) != 1:
            raise ValueError(f"size must contain exactly one -1 (the irreps axis), got {size}")
        gen = as_generator(rng)
        axis = size.index(-1)
        shape = (*size[:axis], self.dim, *size[axis + 1 :])
        if normalization == "component":
            return gen.standard_normal(shape).astype(dtype, copy=False)
        if normalization != "norm":
            raise ValueError(f"normalization must be 'component' or 'norm', got {normalization!r}")
        out = np.empty(shape)
        moved = np.moveaxis(out, axis, -1)
        for segment, (mul, ir) in zip(self.slices(), self):
            block = gen.standard_normal((*moved.shape[:-1], mul, ir.dim))
            norms = np.linalg.norm(block, axis=-1, keepdims=True)
            moved[..., segment] = (block / np.maximum(norms, 1e-300)).reshape(*moved.shape[:-1], mul * ir.dim)
        return out.astype(dtype, copy=False)

    @staticmethod
    def spherical_harmonics(lmax: int, p: int = -1) -> Irreps:
        """The irreps of spherical harmonics up to ``lmax``: ``1x0e+1x1o+...`` (parity ``p**l``)."""
        if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)) or lmax < 0:
            raise ValueError(f"lmax must be an integer >= 0, got {lmax!r}")
        if p not in (1, -1):
            raise ValueError(f"p must be 1 or -1, got {p!r}")
        return Irreps([(1, Irrep(degree, p**degree)) for degree in range(int(lmax) + 1)])

    # --- tuple protocol --------------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        item = tuple.__getitem__(self, index)
        return Irreps(item) if isinstance(index, slice) else item

    def __add__(self, other: Any) -> Irreps:
        return Irreps(tuple.__add__(self, Irreps(other)))

    def __radd__(self, other: Any) -> Irreps:
        return Irreps(other) + self

    def __mul__(self, times: Any) -> Irreps:
        if isinstance(times, Irreps):
            raise TypeError("Irreps * Irreps is a tensor product: use multilinear.equivariant.TPProblem")
        return Irreps(tuple.__mul__(self, times))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Irreps(other)
            except (TypeError, ValueError):
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return "+".join(repr(mul_ir) for mul_ir in self)

    __str__ = __repr__

    # --- rotations -----------------------------------------------------------------------------------

    def D_from_angles(self, alpha: Any, beta: Any, gamma: Any, k: Any = None) -> np.ndarray:
        """The block-diagonal matrix rotating features of these irreps, shape ``(..., dim, dim)``.

        Parameters
        ----------
        alpha, beta, gamma : array_like
            Euler angles in e3nn's convention (rotation ``gamma`` about Y, then ``beta`` about X, then
            ``alpha`` about Y), broadcast together to shape ``(...)``.
        k : array_like, optional
            How many times the parity (inversion) is applied, broadcast with the angles.

        Returns
        -------
        numpy.ndarray
            ``(..., dim, dim)`` float64; ``x @ D.T`` rotates features ``x`` of shape ``(..., dim)``.
        """
        alpha, beta, gamma = np.broadcast_arrays(
            np.asarray(alpha, float), np.asarray(beta, float), np.asarray(gamma, float)
        )
        shape = alpha.shape
        if k is not None:
            k = np.broadcast_to(np.asarray(k), shape)
        out = np.zeros((*shape, self.dim, self.dim))
        start = 0
        for mul, ir in self:
            block = ir.D_from_angles(alpha, beta, gamma, k)
            for _ in range(mul):
                out[..., start : start + ir.dim, start : start + ir.dim] = block
                start += ir.dim
        return out

    def rotate(self, features: Any, alpha: float, beta: float, gamma: float, k: int = 0) -> np.ndarray:
        """Apply one rotation (and ``k`` inversions) to features, block by block, without the dense matrix.

        Equal to ``features @ self.D_from_angles(alpha, beta, gamma, k).T`` but costs
        ``O(sum(mul * d**2))`` per row, so it suits large irreps (MACE's ``irreps_out`` has dim 7,808).

        Parameters
        ----------
        features : array_like
            ``(..., dim)``.
        alpha, beta, gamma : float
            Euler angles of one rotation (e3nn's convention).
        k : int
            Number of inversions (odd: multiply odd-parity irreps by -1).

        Returns
        -------
        numpy.ndarray
            ``(..., dim)`` float64.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"features must have shape (..., {self.dim}) for irreps {self}, got {x.shape}")
        out = np.empty_like(x)
        blocks: dict[Irrep, np.ndarray] = {}
        for segment, (mul, ir) in zip(self.slices(), self):
            if ir not in blocks:
                blocks[ir] = ir.D_from_angles(alpha, beta, gamma, k)
            part = x[..., segment].reshape(*x.shape[:-1], mul, ir.dim)
            out[..., segment] = (part @ blocks[ir].T).reshape(*x.shape[:-1], mul * ir.dim)
        return out


def _parse_irrep(text: str) -> Irrep:
    name = text.strip()
    degree_text, letter = name[:-1], name[-1:]
    if not degree_text.isdigit() or letter not in ("e", "o", "y"):
        raise ValueError(
            f"cannot parse irrep {text!r}: expected a degree and a parity letter e/o/y, like '1o' or '2e'"
        )
    degree = int(degree_text)
    parity = {"e": 1, "o": -1, "y": (-1) ** degree}[letter]
    return Irrep(degree, parity)


def _parse_irreps(text: str) -> list[MulIrrep]:
    if text.strip() == "":
        return []
    items = []
    for token in text.split("+"):
        stripped = token.strip()
        if "x" in stripped:
            mul_text, _, ir_text = stripped.partition("x")
            mul_text = mul_text.strip()
            if not mul_text.isdigit():
                raise ValueError(
                    f"cannot parse {stripped!r} in irreps {text!r}: multiplicity {mul_text!r} is not an "
                    "integer >= 0"
                )
            mul = int(mul_text)
        else:
            mul, ir_text = 1, stripped
        try:
            ir = _parse_irrep(ir_text)
        except ValueError:
            raise ValueError(
                f"cannot parse {stripped!r} in irreps {text!r}: expected '<mul>x<l><e|o|y>' like '128x1o', "
                "or an irrep like '1o'"
            ) from None
        items.append(MulIrrep(mul, ir))
    return items


def _as_mul_irrep(item: Any) -> MulIrrep:
    if isinstance(item, MulIrrep):
        return MulIrrep(int(item.mul), Irrep(item.ir))
    if isinstance(item, (str, Irrep)):
        return MulIrrep(1, Irrep(item))
    if isinstance(item, tuple) and len(item) == 2:
        mul, ir = item
        if isinstance(mul, bool) or not isinstance(mul, (int, np.integer)) or mul < 0:
            raise ValueError(f"multiplicity must be an integer >= 0, got {mul!r} in {item!r}")
        return MulIrrep(int(mul), Irrep(ir))
    raise ValueError(f"cannot interpret {item!r} as (mul, irrep)")
