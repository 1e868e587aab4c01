"""Named tensor-product problems from production models, shared by tests and benchmarks.

>>> from multilinear.equivariant import zoo
>>> problem = zoo.get("mace-large")
>>> len(problem.instructions), problem.weight_numel
(17, 2176)
>>> kwargs = zoo.e3nn_args("mace-large")   # e3nn.o3.TensorProduct(**kwargs) builds the same product

The production configurations follow OpenEquivariance's benchmark list (MACE, NequIP, DiffDock, SevenNet,
NequIP-OAM), built here with :func:`channelwise_problem` (MACE's construction) and
:func:`fully_connected_problem`. Small problems ("small-*") exercise every mode, unweighted paths and shared
weights at sizes fit for fast tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from multilinear.equivariant.builders import channelwise_problem, fully_connected_problem
from multilinear.equivariant.problem import TPProblem


@dataclass(frozen=True)
class ZooEntry:
    """A named problem: ``build(**options)`` returns it; ``production`` marks configurations of real models."""

    name: str
    description: str
    build: Callable[..., TPProblem]
    production: bool
    source: str = ""


def _channelwise(in1: str, in2: str, out: str) -> Callable[..., TPProblem]:
    def build(**options: Any) -> TPProblem:
        return channelwise_problem(in1, in2, out, **options)

    return build


def _fully_connected(in1: str, in2: str, out: str) -> Callable[..., TPProblem]:
    def build(**options: Any) -> TPProblem:
        return fully_connected_problem(in1, in2, out, **options)

    return build


def _explicit(
    in1: str, in2: str, out: str, instructions: list[tuple], **fixed: Any
) -> Callable[..., TPProblem]:
    def build(**options: Any) -> TPProblem:
        return TPProblem(in1, in2, out, instructions, **{**fixed, **options})

    return build


_SH3 = "1x0e+1x1o+1x2e+1x3o"
_OEQ = "https://github.com/PASSIONLab/OpenEquivariance (openequivariance/benchmark/problems.py)"

_ENTRIES = [
    ZooEntry(
        "mace-large",
        "MACE large interaction: 128 channels up to l=2, edge spherical harmonics to l=3, 17 uvu paths",
        _channelwise("128x0e+128x1o+128x2e", _SH3, "128x0e+128x1o+128x2e+128x3o"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "mace-medium",
        "MACE medium interaction: 128 channels up to l=1, edge spherical harmonics to l=3",
        _channelwise("128x0e+128x1o", _SH3, "128x0e+128x1o+128x2e"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-lips",
        "NequIP LiPS: 32 channels of both parities up to l=2",
        _channelwise(
            "32x0o+32x0e+32x1o+32x1e+32x2o+32x2e", "0e+1o+2e", "32x0o+32x0e+32x1o+32x1e+32x2o+32x2e"
        ),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-revmd17-aspirin",
        "NequIP rMD17 aspirin: 64 channels of both parities up to l=1",
        _channelwise("64x0o+64x0e+64x1o+64x1e", "0e+1o", "64x0o+64x0e+64x1o+64x1e"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-revmd17-toluene",
        "NequIP rMD17 toluene: 64 channels of both parities up to l=2",
        _channelwise(
            "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e", "0e+1o+2e", "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e"
        ),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-revmd17-benzene",
        "NequIP rMD17 benzene: 64 channels of both parities up to l=3",
        _channelwise(
            "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e",
            "0e+1o+2e+3o",
            "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e",
        ),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-water",
        "NequIP water: 32 channels of both parities up to l=1",
        _channelwise("32x0o+32x0e+32x1o+32x1e", "0e+1o", "32x0o+32x0e+32x1o+32x1e"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "nequip-oam-main",
        "NequIP OAM-L main layers: 128x0e+64x1o+32x2e+32x3o features, spherical harmonics to l=3",
        _channelwise("128x0e+64x1o+32x2e+32x3o", _SH3, "128x0e+64x1o+32x2e+32x3o"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "sevennet-l3i5-first",
        "SevenNet l3i5 first layer: 128 scalars times even spherical harmonics to l=3",
        _channelwise("128x0e", "1x0e+1x1e+1x2e+1x3e", "128x0e+128x1e+128x2e+128x3e"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "diffdock-l1",
        "DiffDock L=1: fully connected uvw, per-edge weights",
        _fully_connected("10x1o+10x1e+48x0e+48x0o", "1x0e+1x1o", "10x1o+10x1e+48x0e+48x0o"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "diffdock-l2",
        "DiffDock L=2: fully connected uvw, per-edge weights",
        _fully_connected("10x1o+10x1e+48x0e+48x0o", "1x0e+1x1o+1x2e", "10x1o+10x1e+48x0e+48x0o"),
        True,
        _OEQ,
    ),
    ZooEntry(
        "small-uvu",
        "small channelwise problem (8 channels, l <= 2)",
        _channelwise("8x0e+8x1o+4x2e", "0e+1o+2e", "0e+1o+2e"),
        False,
    ),
    ZooEntry(
        "small-uvw",
        "small fully connected problem with both parities",
        _fully_connected("4x0e+3x1o+2x1e", "1x0e+1x1o", "5x0e+2x0o+3x1o+2x1e"),
        False,
    ),
    ZooEntry(
        "small-mixed",
        "every mode in one problem, unweighted paths, a path weight, two paths into one output",
        _explicit(
            "3x0e+3x1o+2x2e",
            "3x0e+3x1o",
            "3x0e+3x1o+3x1o+3x2e+2x3o+3x1e",
            [
                (0, 0, 0, "uuu", True),
                (1, 0, 1, "uvu", True, 0.5),
                (1, 1, 0, "uvu", False),
                (2, 1, 2, "uvv", True),
                (1, 1, 3, "uvw", True),
                (2, 1, 4, "uvw", True, 2.0),
                (1, 1, 5, "uuu", False),
                (0, 1, 2, "uvv", False),
            ],
        ),
        False,
    ),
    ZooEntry(
        "small-shared",
        "fully connected with shared weights",
        _fully_connected("3x0e+2x1o", "0e+1o+2e", "2x0e+2x1o+2x2e"),
        False,
    ),
]

_BY_NAME = {entry.name: entry for entry in _ENTRIES}
_FIXED_OPTIONS = {"small-shared": {"shared_weights": True}}


def names(*, production: bool | None = None) -> list[str]:
    """Names of the problems; ``production=True`` (``False``) keeps only real-model (small) ones."""
    return [e.name for e in _ENTRIES if production is None or e.production == production]


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no problem named {name!r} in the zoo; known: {', '.join(_BY_NAME)}") from None


def get(name: str, *, irrep_dtype: Any = np.float32, **options: Any) -> TPProblem:
    """Build the problem called ``name`` (``options`` such as ``shared_weights`` go to :class:`TPProblem`)."""
    found = entry(name)
    merged = {**_FIXED_OPTIONS.get(name, {}), **options, "irrep_dtype": irrep_dtype}
    return found.build(**merged)


def e3nn_args(name: str, **options: Any) -> dict[str, Any]:
    """Keyword arguments for ``e3nn.o3.TensorProduct`` that build the same product as ``get(name, **options)``."""
    return get(name, **options).e3nn_kwargs()
