"""Kernels of the STS sampler (exact leverage-score sampling of a Khatri-Rao product).

One call draws one mode's row for a batch of samples, walking two segment trees per sample:

- the *eigen tree* over the R scaled eigenvectors ``y_v`` of ``M = G^+ * G_after`` (Hadamard product),
  whose node ``S`` holds ``(sum_{v in S} y_v y_v^T) * G_mode``;
- the *row tree* of the factor, whose internal node holds the Gram matrix of the rows below it.

Layouts (heap numbering, node ``k`` has children ``2k`` and ``2k + 1``, index 0 unused):

- ``row_tree`` (P, R, R): internal nodes 1..P-1 of a tree with P (a power of two >= 2) leaves; leaf
  ``b`` covers factor rows ``b * leaf_size .. (b + 1) * leaf_size - 1`` (rows >= I are zero). Leaves are
  not stored: their weights are computed from the factor's rows.
- ``eigen_tree`` (2Q, R, R): all nodes 1..2Q-1 of a tree with Q (a power of two) leaves; leaf ``v`` is
  node ``Q + v`` (components v >= R are zero).

Random numbers come in (two uniforms per sample and mode, drawn by the caller from its Generator), so a
result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 256  # samples per parallel work item (scratch vectors are allocated once per block)


@njit(cache=True, fastmath=True)  # reductions vectorise only with reassociation (measured 2.6x)
def _quadratic_form(matrix, vector):
    """``vector^T matrix vector`` for a symmetric (R, R) matrix."""
    r = vector.shape[0]
    total = 0.0
    for i in range(r):
        row_sum = 0.0
        for j in range(r):
            row_sum += matrix[i, j] * vector[j]
        total += vector[i] * row_sum
    return total


@njit(cache=True, fastmath=True)  # reductions vectorise only with reassociation (measured 2.6x)
def _row_score(factor, row, vector):
    """``(factor[row] . vector)^2``."""
    dot = 0.0
    for j in range(vector.shape[0]):
        dot += factor[row, j] * vector[j]
    return dot * dot


@njit(cache=True)
def _leaf_weight(factor, leaf, leaf_size, vector):
    """Sum of the row scores of one leaf (rows past the end of the factor count zero)."""
    start = leaf * leaf_size
    stop = min(start + leaf_size, factor.shape[0])
    total = 0.0
    for row in range(start, stop):
        total += _row_score(factor, row, vector)
    return total


@njit(cache=True)
def _scan_leaf(factor, leaf, leaf_size, vector, target):
    """Row of ``leaf`` where the running score sum first exceeds ``target``.

    Returns the last row with a positive score when rounding leaves ``target`` past the end, and -1 when
    no row of the leaf has a positive score.
    """
    start = leaf * leaf_size
    stop = min(start + leaf_size, factor.shape[0])
    running = 0.0
    last_positive = -1
    for row in range(start, stop):
        score = _row_score(factor, row, vector)
        if score > 0.0:
            last_positive = row
            running += score
            if target < running:
                return row
    return last_positive


@njit(cache=True)
def _draw_component(eigen_tree, n_components_padded, h, uniform):
    """Walk the eigen tree: component ``v`` with probability ``h^T node_v h / h^T root h``."""
    node = 1
    weight = _quadratic_form(eigen_tree[1], h)
    target = uniform * weight
    while node < n_components_padded:
        left = 2 * node
        left_weight = _quadratic_form(eigen_tree[left], h)
        right_weight = weight - left_weight
        if (target < left_weight and left_weight > 0.0) or right_weight <= 0.0:
            node = left
            weight = left_weight
        else:
            node = left + 1
            target -= left_weight
            weight = right_weight
    return node - n_components_padded


@njit(cache=True)
def _draw_row(factor, row_tree, n_leaves, leaf_size, vector, uniform):
    """Walk the row tree: row ``i`` with probability ``(factor[i] . vector)^2 / vector^T G vector``."""
    node = 1
    weight = _quadratic_form(row_tree[1], vector)
    target = uniform * weight
    while 2 * node < n_leaves:
        left = 2 * node
        left_weight = _quadratic_form(row_tree[left], vector)
        right_weight = weight - left_weight
        if (target < left_weight and left_weight > 0.0) or right_weight <= 0.0:
            node = left
            weight = left_weight
        else:
            node = left + 1
            target -= left_weight
            weight = right_weight
    left_leaf = 2 * node - n_leaves
    left_weight = _leaf_weight(factor, left_leaf, leaf_size, vector)
    if target < left_weight:
        row = _scan_leaf(factor, left_leaf, leaf_size, vector, target)
    else:
        row = _scan_leaf(factor, left_leaf + 1, leaf_size, vector, target - left_weight)
        if row < 0:  # the right leaf has no weight after rounding: take the left one's last row
            row = _scan_leaf(factor, left_leaf, leaf_size, vector, np.inf)
    return row


@njit(cache=True)
def _draw_range(
    start,
    stop,
    factor,
    row_tree,
    n_leaves,
    leaf_size,
    eigen_tree,
    n_components_padded,
    scaled_eigenvectors,
    uniforms,
    h,
    rows_out,
):
    """Draw samples ``start .. stop - 1`` (see :func:`sts_draw_mode`)."""
    rank = h.shape[1]
    scaled = np.empty(rank)
    for s in range(start, stop):
        hs = h[s]
        v = _draw_component(eigen_tree, n_components_padded, hs, uniforms[s, 0])
        for j in range(rank):
            scaled[j] = scaled_eigenvectors[v, j] * hs[j]
        row = _draw_row(factor, row_tree, n_leaves, leaf_size, scaled, uniforms[s, 1])
        rows_out[s] = row
        for j in range(rank):
            hs[j] *= factor[row, j]


@njit(cache=True, parallel=True)
def sts_draw_mode(
    factor,
    row_tree,
    n_leaves,
    leaf_size,
    eigen_tree,
    n_components_padded,
    scaled_eigenvectors,
    uniforms,
    h,
    rows_out,
):
    """Draw one mode's rows for every sample and fold them into the running products ``h``.

    Parameters
    ----------
    factor : float64 (I, R)
    row_tree : float64 (P, R, R), internal nodes of the factor's Gram tree (see the module doc)
    n_leaves : int, P
    leaf_size : int, factor rows per leaf
    eigen_tree : float64 (2Q, R, R)
    n_components_padded : int, Q
    scaled_eigenvectors : float64 (R, R), row ``v`` is ``y_v``
    uniforms : float64 (n, 2), uniforms in [0, 1): column 0 picks the component, column 1 the row
    h : float64 (n, R), in: product of the rows drawn so far; out: times ``factor[row]``
    rows_out : int64 (n,), out: the drawn row of each sample
    """
    n = h.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for block in prange(n_blocks):
        _draw_range(
            block * _BLOCK,
            min(n, (block + 1) * _BLOCK),
            factor,
            row_tree,
            n_leaves,
            leaf_size,
            eigen_tree,
            n_components_padded,
            scaled_eigenvectors,
            uniforms,
            h,
            rows_out,
        )


@njit(cache=True)
def sts_draw_mode_serial(
    factor,
    row_tree,
    n_leaves,
    leaf_size,
    eigen_tree,
    n_components_padded,
    scaled_eigenvectors,
    uniforms,
    h,
    rows_out,
):
    """:func:`sts_draw_mode` on one thread (small batches: no parallel start-up, same results)."""
    _draw_range(
        0,
        h.shape[0],
        factor,
        row_tree,
        n_leaves,
        leaf_size,
        eigen_tree,
        n_components_padded,
        scaled_eigenvectors,
        uniforms,
        h,
        rows_out,
    )
