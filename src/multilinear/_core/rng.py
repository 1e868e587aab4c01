"""One way to turn ``rng=`` arguments into a :class:`numpy.random.Generator`."""

from __future__ import annotations

import numpy as np

from multilinear._core.typing import RNGLike


def as_generator(rng: RNGLike) -> np.random.Generator:
    """Return a Generator for ``rng``: ``None`` (fresh entropy), an int seed, a SeedSequence or a Generator.

    A Generator passed in is returned as is (not copied), so a caller threading one generator through
    several randomized calls gets one reproducible stream.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        if isinstance(rng, (int, np.integer)) and rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be None, an int seed, a numpy SeedSequence or a numpy Generator, got {type(rng).__name__}"
    )


def kernel_seed(gen: np.random.Generator) -> int:
    """Draw a 63-bit seed for a numba kernel's own generator from ``gen`` (reproducible for a seed)."""
    return int(gen.integers(0, 2**63 - 1))
