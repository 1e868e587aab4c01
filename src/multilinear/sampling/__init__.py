"""Samplers of Khatri-Rao product rows by leverage scores.

Every sampler has one interface: ``sample(exclude, n, rng) -> (rows, probs)`` draws ``n`` rows of the
Khatri-Rao product of all factors but ``exclude`` (``rows`` int64 (n, N-1), indices into the other factors
in ascending mode order; ``probs`` float64 (n,), each drawn row's probability), and
``update(mode, factor)`` after a factor changes.

- :class:`STSSampler`: exact leverage scores of the product (segment trees of partial Gram matrices).
- :class:`ProductLeverageSampler`: each factor's row from that factor's own leverage scores (CP-ARLS-LEV),
  optionally with the deterministic inclusion of high-probability rows (``hybrid=True``).
"""

from multilinear.sampling.product import ProductLeverageSampler
from multilinear.sampling.sts import STSSampler

__all__ = ["ProductLeverageSampler", "STSSampler"]
