"""Kernels of the STS sampler (exact leverage-score sampling of a Khatri-Rao product).

One mode's draw for a batch of samples walks two segment trees per sample, in two passes:

- :func:`sts_draw_components`: the *eigen tree* over the R scaled eigenvectors ``y_v`` of
  ``M = G^+ * G_after`` (Hadamard product), whose node ``S`` holds ``(sum_{v in S} y_v y_v^T) * G_mode``,
  picks each sample's component ``v``;
- :func:`sts_draw_rows`: the *row tree* of the factor, whose internal node holds the Gram matrix of the
  rows below it, picks the row.

Layouts (heap numbering, node ``k`` has children ``2k`` and ``2k + 1``, index 0 unused):

- ``row_tree`` (P, R, R): internal nodes 1..P-1 of a tree with P (a power of two >= 2) leaves; leaf
  ``b`` covers factor rows ``b * leaf_size .. (b + 1) * leaf_size - 1`` (rows >= I are zero). Leaves are
  not stored: their weights are computed from the factor's rows.
- ``eigen_tree`` (2Q, R, R): all nodes 1..2Q-1 of a tree with Q (a power of two) leaves; leaf ``v`` is
  node ``Q + v`` (components v >= R are zero).

Shared walks. Samples whose walks use the same vector (same rows drawn so far, and for the row tree the
same component) have the same branch weights at every node; a walk is an inverse-CDF search, monotone in
its uniform. The caller hands the samples over in ``order``, sorted by a ``key`` that identifies the
vector and then by the uniform, so consecutive samples with one key share a prefix of their paths: a walk
reuses the previous sample's node weights along the shared prefix instead of recomputing (and reloading)
them. The draws are bitwise those of independent walks; only repeated work is skipped. Leverage sampling
of skewed data draws the same few rows over and over, so most samples share long prefixes.

Random numbers come in (one uniform per sample and tree, drawn by the caller from its Generator), and the
work is split into fixed blocks of ``order``, so a result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 1024  # consecutive positions of ``order`` per parallel work item (its first walk shares nothing)
_MAX_DEPTH = 64  # levels a path can have (trees have at most 2**63 nodes)


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
def _fill_leaf(factor, leaf, leaf_size, vector, running):
    """Score the rows of one leaf; returns its weight (rows past the end of the factor count zero).

    ``running[j]`` is the sum of the positive scores of the leaf's rows up to its row ``j``, or -1 where
    row ``j``'s score is zero (such a row is never drawn).
    """
    start = leaf * leaf_size
    total = 0.0
    for row in range(start, min(start + leaf_size, factor.shape[0])):
        score = _row_score(factor, row, vector)
        total += score
        running[row - start] = total if score > 0.0 else -1.0
    return total


@njit(cache=True)
def _search_leaf(factor, leaf, leaf_size, running, target):
    """Row of ``leaf`` (scored into ``running``) where the running sum first exceeds ``target``.

    Returns the last row with a positive score when rounding leaves ``target`` past the end, and -1 when
    no row of the leaf has a positive score.
    """
    start = leaf * leaf_size
    last_positive = -1
    for row in range(start, min(start + leaf_size, factor.shape[0])):
        if running[row - start] >= 0.0:
            last_positive = row
            if target < running[row - start]:
                return row
    return last_positive


@njit(cache=True)
def _descend(tree, stop_at, vector, uniform, shared, path_node, path_left):
    """Inverse-CDF walk from the root of ``tree`` down to the first node >= ``stop_at``.

    A node's weight is ``vector^T tree[node] vector``; the walk goes left with probability
    ``left / weight``. ``path_node[d]`` / ``path_left[d]`` record the node met at depth ``d`` and its
    left child's weight (``path_left[0]``: the root's weight). With ``shared`` true they hold the path of
    the previous walk with the same vector, and are reused while this walk stays on it.

    Returns
    -------
    node, target, weight, shared, depth
        The node reached, the uniform scaled into its weight, its weight, whether the walk is still on
        the previous path there, and its depth.
    """
    if shared:
        weight = path_left[0]
    else:
        weight = _quadratic_form(tree[1], vector)
        path_left[0] = weight
    target = uniform * weight
    node = 1
    depth = 1
    while node < stop_at:
        left = 2 * node
        if shared and path_node[depth] == node:
            left_weight = path_left[depth]
        else:
            shared = False
            left_weight = _quadratic_form(tree[left], vector)
            path_node[depth] = node
            path_left[depth] = left_weight
        right_weight = weight - left_weight
        if (target < left_weight and left_weight > 0.0) or right_weight <= 0.0:
            node = left
            weight = left_weight
        else:
            node = left + 1
            target -= left_weight
            weight = right_weight
        depth += 1
    return node, target, weight, shared, depth


@njit(cache=True)
def _components_range(start, stop, eigen_tree, n_components_padded, h, uniforms, order, keys, out):
    """Components of the samples at positions ``start .. stop - 1`` of ``order``."""
    path_node = np.zeros(_MAX_DEPTH, dtype=np.int64)
    path_left = np.zeros(_MAX_DEPTH)
    for position in range(start, stop):
        s = order[position]
        shared = position > start and keys[s] == keys[order[position - 1]]
        node, _, _, _, _ = _descend(
            eigen_tree, n_components_padded, h[s], uniforms[s], shared, path_node, path_left
        )
        out[s] = node - n_components_padded


@njit(cache=True)
def _rows_range(
    start,
    stop,
    factor,
    row_tree,
    n_leaves,
    leaf_size,
    scaled_eigenvectors,
    components,
    h,
    uniforms,
    order,
    keys,
    rows_out,
):
    """Rows of the samples at positions ``start .. stop - 1`` of ``order`` (see :func:`sts_draw_rows`)."""
    rank = h.shape[1]
    vector = np.empty(rank)
    path_node = np.zeros(_MAX_DEPTH, dtype=np.int64)
    path_left = np.zeros(_MAX_DEPTH)
    left_running = np.empty(leaf_size)  # the scores of the left leaf under path_node[depth]
    right_running = np.empty(leaf_size)  # and of the right leaf under right_of (this key only)
    right_of = -1
    for position in range(start, stop):
        s = order[position]
        shared = position > start and keys[s] == keys[order[position - 1]]
        hs = h[s]
        if not shared:
            v = components[s]
            for j in range(rank):
                vector[j] = scaled_eigenvectors[v, j] * hs[j]
            right_of = -1
        node, target, _, shared, depth = _descend(
            row_tree, n_leaves // 2, vector, uniforms[s], shared, path_node, path_left
        )
        left_leaf = 2 * node - n_leaves
        if not (shared and path_node[depth] == node):
            path_node[depth] = node
            path_left[depth] = _fill_leaf(factor, left_leaf, leaf_size, vector, left_running)
        left_weight = path_left[depth]
        if target < left_weight:
            row = _search_leaf(factor, left_leaf, leaf_size, left_running, target)
        else:
            if right_of != node:
                _fill_leaf(factor, left_leaf + 1, leaf_size, vector, right_running)
                right_of = node
            row = _search_leaf(factor, left_leaf + 1, leaf_size, right_running, target - left_weight)
            if row < 0:  # the right leaf has no weight after rounding: take the left one's last row
                row = _search_leaf(factor, left_leaf, leaf_size, left_running, np.inf)
        rows_out[s] = row
        for j in range(rank):
            hs[j] *= factor[row, j]


@njit(cache=True, parallel=True)
def _components_parallel(eigen_tree, n_components_padded, h, uniforms, order, keys, out):
    n = order.shape[0]
    for block in prange((n + _BLOCK - 1) // _BLOCK):
        _components_range(
            block * _BLOCK,
            min(n, (block + 1) * _BLOCK),
            eigen_tree,
            n_components_padded,
            h,
            uniforms,
            order,
            keys,
            out,
        )


@njit(cache=True, parallel=True)
def _rows_parallel(
    factor, row_tree, n_leaves, leaf_size, scaled_eigenvectors, components, h, uniforms, order, keys, out
):
    n = order.shape[0]
    for block in prange((n + _BLOCK - 1) // _BLOCK):
        _rows_range(
            block * _BLOCK,
            min(n, (block + 1) * _BLOCK),
            factor,
            row_tree,
            n_leaves,
            leaf_size,
            scaled_eigenvectors,
            components,
            h,
            uniforms,
            order,
            keys,
            out,
        )


def sts_draw_components(eigen_tree, n_components_padded, h, uniforms, order, keys, out, *, parallel):
    """Draw each sample's eigen-component: ``v`` with probability ``h^T node_v h / h^T root h``.

    Parameters
    ----------
    eigen_tree : float64 (2Q, R, R)
    n_components_padded : int, Q
    h : float64 (n, R), product of the rows drawn so far for each sample
    uniforms : float64 (n,), in [0, 1)
    order : int64 (n,), the samples in processing order: sorted by ``keys``, then by ``uniforms``
    keys : int64 (n,), equal for samples whose ``h`` rows are equal (and only for those)
    out : int64 (n,), out: the component of each sample
    parallel : bool
        Run fixed blocks of ``order`` in parallel; otherwise one thread walks all of it (same draws:
        sharing only skips work whose result it already has).
    """
    if parallel:
        _components_parallel(eigen_tree, n_components_padded, h, uniforms, order, keys, out)
    else:
        _components_range(0, order.shape[0], eigen_tree, n_components_padded, h, uniforms, order, keys, out)


def sts_draw_rows(
    factor,
    row_tree,
    n_leaves,
    leaf_size,
    scaled_eigenvectors,
    components,
    h,
    uniforms,
    order,
    keys,
    rows_out,
    *,
    parallel,
):
    """Draw one mode's row for every sample and fold it into the running products ``h``.

    Sample ``s`` draws row ``i`` with probability ``(factor[i] . (y_v * h[s]))^2 / (y_v * h[s])^T G (y_v
    * h[s])``, ``v = components[s]``.

    Parameters
    ----------
    factor : float64 (I, R)
    row_tree : float64 (P, R, R), internal nodes of the factor's Gram tree (see the module doc)
    n_leaves : int, P
    leaf_size : int, factor rows per leaf
    scaled_eigenvectors : float64 (R, R), row ``v`` is ``y_v``
    components : int64 (n,), each sample's component
    h : float64 (n, R), in: product of the rows drawn so far; out: times ``factor[row]``
    uniforms : float64 (n,), in [0, 1)
    order : int64 (n,), the samples in processing order: sorted by ``keys``, then by ``uniforms``
    keys : int64 (n,), equal for samples with equal ``h`` rows and equal components (and only for those)
    rows_out : int64 (n,), out: the drawn row of each sample
    parallel : bool
        As in :func:`sts_draw_components`.
    """
    args = (factor, row_tree, n_leaves, leaf_size, scaled_eigenvectors, components, h, uniforms, order, keys)
    if parallel:
        _rows_parallel(*args, rows_out)
    else:
        _rows_range(0, order.shape[0], *args, rows_out)
