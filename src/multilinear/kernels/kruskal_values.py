"""Values of a Kruskal (CP) tensor at sparse coordinates, and its inner product with a sparse tensor.

The factor matrices are passed stacked: ``stacked`` is ``(sum_n I_n, R)`` and mode ``n`` occupies rows
``offsets[n]:offsets[n + 1]``, so one compiled signature serves every number of modes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _model_value(indices, row, offsets, stacked, weights):
    rank = weights.shape[0]
    total = 0.0
    for r in range(rank):
        product = weights[r]
        for m in range(indices.shape[1]):
            product *= stacked[offsets[m] + indices[row, m], r]
        total += product
    return total


@njit(cache=True, parallel=True)
def kruskal_values_at(indices, offsets, stacked, weights, out):
    """out[k] = sum_r weights[r] * prod_n A_n[indices[k, n], r] for every row k of ``indices``."""
    for k in prange(indices.shape[0]):
        out[k] = _model_value(indices, k, offsets, stacked, weights)


@njit(cache=True, parallel=True)
def kruskal_innerprod(indices, values, offsets, stacked, weights, nparts):
    """sum_k values[k] * model(indices[k]); partial sums over ``nparts`` fixed parts, added in order.

    The fixed partition makes the result independent of the thread count.
    """
    rows = indices.shape[0]
    partial = np.zeros(nparts)
    for part in prange(nparts):
        first = rows * part // nparts
        last = rows * (part + 1) // nparts
        total = 0.0
        for k in range(first, last):
            total += values[k] * _model_value(indices, k, offsets, stacked, weights)
        partial[part] = total
    result = 0.0
    for part in range(nparts):
        result += partial[part]
    return result
