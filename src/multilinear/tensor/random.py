"""Reproducible random sparse and Kruskal tensors for tests and benchmarks.

Every function takes ``rng=`` (None, a seed or a ``numpy.random.Generator``) and gives the same tensor for
the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multilinear._core.rng import as_generator
from multilinear._core.typing import RNGLike
from multilinear._core.validation import check_choice, check_nonnegative_float, check_positive_int
from multilinear.tensor.kruskal import KruskalTensor
from multilinear.tensor.sparse import SparseTensor

_CHUNK = 1 << 22  # coordinates drawn per chunk
_MAX_ROUNDS = 30


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"shape must be a sequence of positive integers, got {shape!r}")
    dims = tuple(check_positive_int(s, f"shape[{n}]") for n, s in enumerate(shape))
    if not dims:
        raise ValueError("shape must have at least one mode")
    return dims


def random_kruskal(
    shape: Sequence[int], rank: int, *, distribution: str = "uniform", rng: RNGLike = None
) -> KruskalTensor:
    """A random Kruskal tensor with unit weights.

    Parameters
    ----------
    shape : sequence of int
        ``(I_1, ..., I_N)``.
    rank : int
        Number of components R.
    distribution : {"uniform", "normal"}
        Factor entries uniform on [0, 1) (a nonnegative, "count-like" tensor) or standard normal.
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    KruskalTensor
        ``weights`` (R,) of ones, ``factors[n]`` of shape (I_n, R).
    """
    dims = _check_shape(shape)
    rank = check_positive_int(rank, "rank")
    check_choice(distribution, "distribution", ("uniform", "normal"))
    gen = as_generator(rng)
    draw = gen.random if distribution == "uniform" else gen.standard_normal
    factors = [draw((size, rank)) for size in dims]
    return KruskalTensor(np.ones(rank), factors, copy=False)


def _powerlaw_indices(gen: np.random.Generator, size: int, count: int, exponent: float) -> np.ndarray:
    """Draw ``count`` indices in [0, size) with P(i) roughly proportional to (i + 1)**-exponent.

    Inverse-CDF sampling of the continuous power law on [1, size + 1), floored.
    """
    u = gen.random(count)
    if abs(exponent - 1.0) < 1e-12:
        x = np.exp(u * math.log(size + 1.0))
    else:
        a = 1.0 - exponent
        x = (1.0 + u * ((size + 1.0) ** a - 1.0)) ** (1.0 / a)
    out = np.floor(x).astype(np.int64) - 1
    np.clip(out, 0, size - 1, out=out)
    return out


def _scramble(gen: np.random.Generator, size: int) -> tuple[int, int]:
    """A random affine bijection i -> (a i + b) mod size, so popular power-law indices are scattered."""
    if size < 3 or size > 2**31:
        return 1, 0
    while True:
        a = int(gen.integers(1, size))
        if math.gcd(a, size) == 1:
            return a, int(gen.integers(0, size))


def _draw_keys(
    gen: np.random.Generator,
    dims: tuple[int, ...],
    count: int,
    distribution: str,
    exponent: float,
    maps: list[tuple[int, int]],
) -> np.ndarray:
    """Row-major linear keys of ``count`` random coordinates, drawn in chunks."""
    keys = np.empty(count, dtype=np.int64)
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        chunk = keys[start:stop]
        chunk[:] = 0
        for mode, size in enumerate(dims):
            if distribution == "uniform":
                coordinate = gen.integers(0, size, stop - start)
            else:
                coordinate = _powerlaw_indices(gen, size, stop - start, exponent)
                a, b = maps[mode]
                if a != 1 or b != 0:
                    coordinate *= a
                    coordinate += b
                    coordinate %= size
            chunk *= size
            chunk += coordinate
    return keys


def _unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Sort in place and drop repeats (less memory than np.unique)."""
    keys.sort()
    if keys.shape[0] < 2:
        return keys
    keep = np.empty(keys.shape[0], dtype=np.bool_)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _keys_to_indices(keys: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    indices = np.empty((keys.shape[0], len(dims)), dtype=np.int64)
    for start in range(0, keys.shape[0], _CHUNK):
        rest = keys[start : start + _CHUNK].copy()
        for mode in range(len(dims) - 1, -1, -1):
            indices[start : start + rest.shape[0], mode] = rest % dims[mode]
            rest //= dims[mode]
    return indices


def random_sparse(
    shape: Sequence[int],
    nnz: int,
    *,
    rank: int | None = None,
    distribution: str = "uniform",
    exponent: float = 1.0,
    noise: float = 0.0,
    rng: RNGLike = None,
) -> SparseTensor:
    """A random sparse tensor with exactly ``nnz`` distinct nonzeros, sorted in row-major order.

    Coordinates are drawn independently per mode, either uniformly or from a Zipf-like power law
    (``P(i)`` roughly proportional to ``(i + 1)**-exponent`` before a random affine relabelling of each
    mode that scatters the popular indices). Repeated coordinates are merged and more are drawn until
    there are ``nnz`` distinct ones (surplus ones are dropped at random), so ``nnz`` is exact.

    Parameters
    ----------
    shape : sequence of int
        ``(I_1, ..., I_N)``; the number of cells must be below ``2**63``.
    nnz : int
        Number of nonzeros, at most the number of cells.
    rank : int, optional
        When given, the values are those of a planted rank-``rank`` Kruskal tensor with factor entries
        uniform on [0.1, 1.1) (positive, so the tensor is "count-like"), at the drawn coordinates. Otherwise
        values are uniform on (0, 1].
    distribution : {"uniform", "powerlaw"}
    exponent : float
        Power-law exponent (> 0); larger is more skewed. Ignored for "uniform".
    noise : float
        Relative Gaussian noise added to the values: ``v + noise * rms(v) * g`` with ``g ~ N(0, 1)``.
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    SparseTensor

    Notes
    -----
    Memory: coordinates are drawn in chunks of 2**22 as 8-byte linear keys and deduplicated by sorting
    them; the peak is about the output (``8 * (N + 1)`` bytes per nonzero), or the output's indices plus
    the keys (``8 * (N + 1)`` too) while they are decoded: 3.3 GB for 10**8 nonzeros of a 3-way tensor.
    A skewed power law over small modes may not have ``nnz`` reachable cells: after 30 rounds of draws
    without reaching ``nnz`` a ValueError says so.
    """
    dims = _check_shape(shape)
    nnz = check_positive_int(nnz, "nnz")
    check_choice(distribution, "distribution", ("uniform", "powerlaw"))
    exponent = check_nonnegative_float(exponent, "exponent")
    if distribution == "powerlaw" and exponent <= 0:
        raise ValueError(f"exponent must be > 0 for a power law, got {exponent}")
    noise = check_nonnegative_float(noise, "noise")
    if rank is not None:
        rank = check_positive_int(rank, "rank")
    cells = math.prod(dims)
    if cells >= 2**63:
        raise ValueError(f"shape {dims} has {cells:.3g} cells: random_sparse needs fewer than 2**63")
    if nnz > cells:
        raise ValueError(f"nnz={nnz} is more than the {cells} cells of shape {dims}")
    gen = as_generator(rng)
    maps = [_scramble(gen, size) for size in dims] if distribution == "powerlaw" else []

    keys = _unique_sorted(_draw_keys(gen, dims, nnz, distribution, exponent, maps))
    drawn = nnz
    rounds = 0
    while keys.shape[0] < nnz:
        rounds += 1
        if rounds > _MAX_ROUNDS:
            raise ValueError(
                f"could not place {nnz} distinct nonzeros in shape {dims} with a power law of exponent "
                f"{exponent} (reached {keys.shape[0]}): lower the exponent or nnz"
            )
        missing = nnz - keys.shape[0]
        yield_rate = max(keys.shape[0] / drawn, 1e-3)
        extra = _unique_sorted(
            _draw_keys(gen, dims, int(missing / yield_rate * 1.5) + 64, distribution, exponent, maps)
        )
        drawn += extra.shape[0]
        positions = np.searchsorted(keys, extra)
        fresh = positions >= keys.shape[0]
        fresh[~fresh] = keys[positions[~fresh]] != extra[~fresh]
        keys = np.insert(keys, positions[fresh], extra[fresh])
    if keys.shape[0] > nnz:
        drop = gen.choice(keys.shape[0], keys.shape[0] - nnz, replace=False)
        keep = np.ones(keys.shape[0], dtype=np.bool_)
        keep[drop] = False
        keys = keys[keep]

    indices = _keys_to_indices(keys, dims)
    del keys
    if rank is None:
        values = gen.random(nnz)
        np.subtract(1.0, values, out=values)  # (0, 1], in place: no second nnz-sized array
    else:
        factors = [0.1 + gen.random((size, rank)) for size in dims]
        values = KruskalTensor(np.ones(rank), factors, copy=False).values_at(indices)
    if noise > 0:
        scale = noise * float(np.sqrt(np.dot(values, values) / nnz))
        for start in range(0, nnz, _CHUNK):
            stop = min(nnz, start + _CHUNK)
            values[start:stop] += scale * gen.standard_normal(stop - start)
    return SparseTensor._trusted(indices, values, dims)


@dataclass(frozen=True)
class PlantedSparse:
    """A sparse tensor that equals a known Kruskal tensor exactly.

    Attributes
    ----------
    tensor : SparseTensor
        The nonzeros: every cell where ``model`` is nonzero, with the model's value.
    model : KruskalTensor
        The planted rank-R model; it is zero off ``tensor``'s support.
    """

    tensor: SparseTensor
    model: KruskalTensor


def planted_sparse(
    shape: Sequence[int],
    rank: int,
    nnz: int,
    *,
    shared_support: bool = False,
    distribution: str = "uniform",
    exponent: float = 1.0,
    noise: float = 0.0,
    rng: RNGLike = None,
) -> PlantedSparse:
    """A sparse tensor that is exactly a rank-``rank`` Kruskal tensor with sparse factors (plus optional noise).

    Component ``r`` has factor columns supported on index sets ``S_r^(n)`` of equal size ``s_n`` (chosen so
    that ``rank * prod_n s_n`` is about ``nnz``), with entries uniform on [0.5, 1.5) there and zero
    elsewhere; weights are uniform on [1, 2). The returned tensor holds every cell of the union of the
    blocks ``S_r^(1) x ... x S_r^(N)`` with the model's value there. Since all entries are positive, no
    cell of the union cancels, so the tensor equals the model on every cell (up to rounding of the sums):
    its CP rank is at most ``rank`` and a rank-``rank`` CP decomposition can fit it exactly.

    The index sets are drawn uniformly (``distribution="uniform"``) or with power-law popularity
    (``"powerlaw"``): each ``S_r^(n)`` is a weighted sample without replacement in which index ``i`` has
    weight ``(i + 1)**-exponent`` before a random relabelling of the mode (one per mode, shared by all
    components). Popular indices then belong to many components and rare ones to one or none, so the
    slice sizes (index degrees) are heavy-tailed, as in real count data, while the tensor keeps its exact
    low rank.

    With ``shared_support=True`` all components use the same index sets (sized so that ``prod_n s_n`` is
    about ``nnz``) and standard normal entries there (positive entries on one support would make the
    components nearly collinear, which slows ALS to a crawl): the tensor is then one dense
    rank-``rank`` block inside the sparse shape, with values of both signs, none zero almost surely.

    Whether CP-ALS from a random start finds the exact fit is up to ALS. With separate supports the
    blocks are nearly disjoint, and a start that puts two components on one block can stall (measured
    with ``cp_als``, 200 iterations, seeds 0-2: fit 1.0 for every seed on (60, 50, 40) R=3 and
    (30, 25, 20, 15) R=4; on (200, 150, 100) R=5 one seed of three reached 1.0 and two stalled at 0.64).
    With a shared support (300 iterations, seeds 0-2): fit 1.0 for every seed on (200, 150, 100) R=5
    and (60, 50, 40, 30) R=4; on (1000, 800, 600) R=8 (a 37**3 block) all stalled near 0.839, as did
    pyttb's ``cp_als`` on the same block. Tests should fix the seed and keep the rank small.

    Parameters
    ----------
    shape : sequence of int
        ``(I_1, ..., I_N)``; the number of cells must be below ``2**63``.
    rank : int
    nnz : int
        Target number of nonzeros; the result has at most ``rank * prod_n s_n`` (blocks may overlap), or
        exactly ``prod_n s_n`` with a shared support.
    shared_support : bool
        One support for all components instead of one per component.
    distribution : {"uniform", "powerlaw"}
        How the index sets are drawn (see above).
    exponent : float
        Power-law exponent (> 0); larger is more skewed. Ignored for "uniform".
    noise : float
        Relative Gaussian noise added to the nonzeros (the support does not change):
        ``v + noise * rms(v) * g`` with ``g ~ N(0, 1)``. The model stays the noiseless one, so
        ``||tensor - model|| / ||tensor||`` is about ``noise / sqrt(1 + noise**2)``: a rank-``rank`` fit
        can reach about ``1 - noise / sqrt(1 + noise**2)`` (0.90 for ``noise=0.1``).
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    PlantedSparse
        ``tensor`` (SparseTensor, coordinates sorted row-major) and ``model`` (KruskalTensor).

    Notes
    -----
    Memory: the blocks' cells are enumerated as 8-byte row-major keys (``8 * rank * prod_n s_n`` bytes),
    sorted and deduplicated in place, then decoded in chunks; the peak is about the output
    (``8 * (N + 1)`` bytes per nonzero) plus the keys: 2 GB for 5 * 10**7 nonzeros of a 3-way tensor.
    A power-law draw costs ``O(I_n)`` per component and mode (Gumbel top-k).
    """
    dims = _check_shape(shape)
    rank = check_positive_int(rank, "rank")
    nnz = check_positive_int(nnz, "nnz")
    check_choice(distribution, "distribution", ("uniform", "powerlaw"))
    exponent = check_nonnegative_float(exponent, "exponent")
    if distribution == "powerlaw" and exponent <= 0:
        raise ValueError(f"exponent must be > 0 for a power law, got {exponent}")
    noise = check_nonnegative_float(noise, "noise")
    if math.prod(dims) >= 2**63:
        raise ValueError(
            f"shape {dims} has {math.prod(dims):.3g} cells: planted_sparse needs fewer than 2**63"
        )
    gen = as_generator(rng)
    per_block = float(nnz) if shared_support else max(1.0, nnz / rank)
    sizes = []
    remaining = per_block
    for mode, size in enumerate(dims):  # equal side lengths, capped by the mode sizes
        left = len(dims) - mode
        side = max(1, min(size, round(remaining ** (1.0 / left))))
        sizes.append(side)
        remaining /= side
    if distribution == "powerlaw":
        popularity = [_powerlaw_log_weights(gen, size, exponent) for size in dims]

        def draw_support(mode: int) -> np.ndarray:
            return _weighted_sample_without_replacement(gen, popularity[mode], sizes[mode])
    else:

        def draw_support(mode: int) -> np.ndarray:
            return np.sort(gen.choice(dims[mode], sizes[mode], replace=False))

    factors = [np.zeros((size, rank)) for size in dims]
    supports: list[list[np.ndarray]] = []
    shared = [draw_support(mode) for mode in range(len(dims))]
    for r in range(rank):
        component = []
        for mode in range(len(dims)):
            support = shared[mode] if shared_support else draw_support(mode)
            if shared_support:  # well-separated components; no cell is zero (almost surely)
                factors[mode][support, r] = gen.standard_normal(sizes[mode])
            else:
                factors[mode][support, r] = 0.5 + gen.random(sizes[mode])
            component.append(support)
        if r == 0 or not shared_support:
            supports.append(component)
    weights = 1.0 + gen.random(rank)
    model = KruskalTensor(weights, factors, copy=False)
    keys = _unique_sorted(_block_keys(supports, dims))
    indices = _keys_to_indices(keys, dims)
    del keys
    values = model.values_at(indices)
    if noise > 0:
        count = values.shape[0]
        scale = noise * float(np.sqrt(np.dot(values, values) / count))
        for start in range(0, count, _CHUNK):
            stop = min(count, start + _CHUNK)
            values[start:stop] += scale * gen.standard_normal(stop - start)
    tensor = SparseTensor._trusted(indices, values, dims)
    return PlantedSparse(tensor=tensor, model=model)


def _powerlaw_log_weights(gen: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Log-popularity of each index of a mode: ``-exponent * log(rank + 1)`` under a random relabelling."""
    log_weights = np.empty(size)
    log_weights[gen.permutation(size)] = -exponent * np.log1p(np.arange(size, dtype=np.float64))
    return log_weights


def _weighted_sample_without_replacement(
    gen: np.random.Generator, log_weights: np.ndarray, count: int
) -> np.ndarray:
    """``count`` distinct indices, drawn one after another with probability proportional to the weights.

    Gumbel top-k: the ``count`` largest ``log_weights + Gumbel noise`` are such a sample. Returned sorted.
    """
    if count >= log_weights.shape[0]:
        return np.arange(log_weights.shape[0], dtype=np.int64)
    perturbed = gen.gumbel(size=log_weights.shape[0])
    perturbed += log_weights
    chosen = np.argpartition(perturbed, perturbed.shape[0] - count)[perturbed.shape[0] - count :]
    return np.sort(chosen).astype(np.int64)


def _block_keys(supports: list[list[np.ndarray]], dims: tuple[int, ...]) -> np.ndarray:
    """Row-major linear keys of every cell of every block ``S^(1) x ... x S^(N)`` (repeats kept)."""
    total = sum(math.prod(s.shape[0] for s in block) for block in supports)
    keys = np.empty(total, dtype=np.int64)
    position = 0
    for block in supports:
        cells = np.zeros(1, dtype=np.int64)
        for mode, support in enumerate(
            block
        ):  # outer sum, mode by mode: keys of the block in row-major order
            cells = (cells[:, None] * dims[mode] + support[None, :]).ravel()
        keys[position : position + cells.shape[0]] = cells
        position += cells.shape[0]
    return keys


def planted_counts(
    shape: Sequence[int],
    rank: int,
    events: int,
    *,
    exponent: float = 1.2,
    shared: float = 0.3,
    rng: RNGLike = None,
) -> PlantedSparse:
    """A count tensor drawn from a planted nonnegative rank-``rank`` model with power-law factors.

    Each of ``events`` independent events picks a component ``r`` with probability ``lambda_r`` and then,
    independently in every mode, an index from that component's column distribution; the tensor counts
    the events that fell in each cell. Its expectation is the model ``events * sum_r lambda_r
    p_r^(1) o ... o p_r^(N)``, and the counts scatter around it (Poisson-like), as in the count data of
    FROSTT (Reddit, NELL-2, Enron): long modes, mostly ones, fibers of a few nonzeros, and heavy heads
    where the low-rank structure is.

    Column ``r`` of mode ``n`` is the mixture ``shared * g_n + (1 - shared) * c_r^(n)``: ``g_n`` is a
    power law common to all components (popular indices shared by all, as in real data) and
    ``c_r^(n)`` one of the component's own. Each power law gives index ``k`` of a random relabelling
    ``i = (a k + b) mod I_n`` probability ``F(k + 2) - F(k + 1)``, ``F`` the CDF of the continuous law
    ``x**-exponent`` on ``[1, I_n + 1)``: about ``(k + 1)**-exponent``. The weights ``lambda`` are
    Dirichlet(1).

    Parameters
    ----------
    shape : sequence of int
        ``(I_1, ..., I_N)``; the number of cells must be below ``2**63``.
    rank : int
        Number of planted components.
    events : int
        Number of events (the sum of the counts); the number of nonzeros is smaller, since popular cells
        are hit repeatedly.
    exponent : float
        Power-law exponent (> 0). Larger concentrates the events: at 1.0 nearly every count is 1 and a
        rank-25 CP model explains little (fit ~0.02 on 6e6 events in 2e5 x 1e5 x 5e4); at 1.2 about 95%
        of the counts are 1 and the fit is ~0.56; at 1.5, ~0.86 (measured with ``cp_als``, R = 25).
    shared : float
        Weight of the common power law in every column, in [0, 1].
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    PlantedSparse
        ``tensor``: the counts (float64 values, coordinates sorted row-major); ``model``: the expectation
        (weights ``events * lambda``, factors the column distributions, each column summing to 1).

    Notes
    -----
    Memory: 8 bytes per event for the cells' linear keys (sorted in place), then the output; the model's
    factors are dense, ``8 * R * sum(I_n)`` bytes.
    """
    dims = _check_shape(shape)
    rank = check_positive_int(rank, "rank")
    events = check_positive_int(events, "events")
    exponent = check_nonnegative_float(exponent, "exponent")
    if exponent <= 0:
        raise ValueError(f"exponent must be > 0, got {exponent}")
    shared = check_nonnegative_float(shared, "shared")
    if shared > 1:
        raise ValueError(f"shared must be in [0, 1], got {shared}")
    if math.prod(dims) >= 2**63:
        raise ValueError(
            f"shape {dims} has {math.prod(dims):.3g} cells: planted_counts needs fewer than 2**63"
        )
    gen = as_generator(rng)
    weights = gen.dirichlet(np.ones(rank))
    common = [_scramble(gen, size) for size in dims]
    own = [np.array([_scramble(gen, size) for _ in range(rank)], dtype=np.int64) for size in dims]

    keys = np.empty(events, dtype=np.int64)
    cumulative = np.cumsum(weights)
    for start in range(0, events, _CHUNK):
        stop = min(events, start + _CHUNK)
        count = stop - start
        component = np.searchsorted(cumulative, gen.random(count) * cumulative[-1], side="right")
        np.minimum(component, rank - 1, out=component)
        chunk = keys[start:stop]
        chunk[:] = 0
        for mode, size in enumerate(dims):
            k = _powerlaw_indices(gen, size, count, exponent)
            scale = own[mode][component, 0]
            shift = own[mode][component, 1]
            use_common = gen.random(count) < shared
            scale[use_common] = common[mode][0]
            shift[use_common] = common[mode][1]
            k *= scale
            k += shift
            k %= size
            chunk *= size
            chunk += k
    keys.sort()
    first = np.empty(events, dtype=np.bool_)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    values = np.diff(np.append(starts, events)).astype(np.float64)
    indices = _keys_to_indices(keys[starts], dims)
    del keys, first, starts

    factors = []
    for mode, size in enumerate(dims):
        pmf = _powerlaw_pmf(size, exponent)
        column_common = np.empty(size)
        a, b = common[mode]
        column_common[(a * np.arange(size, dtype=np.int64) + b) % size] = pmf
        factor = np.empty((size, rank))
        for r in range(rank):
            a, b = own[mode][r]
            factor[(a * np.arange(size, dtype=np.int64) + b) % size, r] = pmf
        factor *= 1.0 - shared
        factor += shared * column_common[:, None]
        factors.append(factor)
    model = KruskalTensor(events * weights, factors, copy=False)
    return PlantedSparse(tensor=SparseTensor._trusted(indices, values, dims), model=model)


def _powerlaw_pmf(size: int, exponent: float) -> np.ndarray:
    """The distribution of :func:`_powerlaw_indices`: ``P(k) = F(k + 2) - F(k + 1)``, ``k < size``."""
    edges = np.arange(1, size + 2, dtype=np.float64)
    if abs(exponent - 1.0) < 1e-12:
        cdf = np.log(edges) / math.log(size + 1.0)
    else:
        a = 1.0 - exponent
        cdf = (edges**a - 1.0) / ((size + 1.0) ** a - 1.0)
    return np.diff(cdf)
