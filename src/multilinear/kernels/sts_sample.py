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

A walk is an inverse-CDF search: at a node of weight ``w`` (``w = v^T node v`` for the sample's vector
``v``) it goes left with probability ``left / w``. Samples whose walks use the same vector (same rows drawn
so far, and for the row tree the same component) share every branch weight. The caller hands the samples
over in ``order``, sorted by a ``key`` that identifies the vector and then by the uniform, and the walks
advance one level at a time for all samples (*level-wise*):

- within a key the samples stay sorted by uniform, so at every level the samples of one key at one node
  are a run of ``order``, and a node weight is computed once per (key, node) pair;
- the pairs of a level are processed grouped by node (a counting sort), so a node's (R, R) matrix, or a
  leaf's rows, is read from memory once for all the keys that reach it, and eight keys' quadratic forms
  are computed in one pass over it (:func:`_quadratic_forms8`). On trees far larger than the caches the
  walks one sample after another were bound by reloading nodes. On a 6·10^7-nonzero count tensor's
  R = 50 factors the row draws of one ALS iteration (three solves) went from 0.83 s to 0.47 s inside
  ``STSSampler.sample`` (0.18-0.28 s timed apart with BLAS idle), with the same draws.

Every weight is the same arithmetic on the same operands however the samples are grouped, so the draws do
not depend on which samples share keys or on the order within a key (only the work does); the work of a
level is split into fixed blocks of pairs, so a result does not depend on the number of threads either.
Random numbers come in (one uniform per sample and tree, drawn by the caller from its Generator).
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import njit, prange

_PAIR_BLOCK = 64  # (key, node) pairs per parallel work item of a level


@njit(cache=True, fastmath=True)
def _quadratic_forms8(matrix, vectors, out):
    """``out[k] = vectors[k]^T matrix vectors[k]`` for the 8 rows of ``vectors`` (8, R) at once.

    Each element of ``matrix`` is loaded once for eight forms: 2.6-2.7x the throughput of eight
    forms computed one at a time at R = 50 and 100 (matrix in cache). Every lane runs the same arithmetic,
    so a form's value does not depend on the lane it is computed in or on the other lanes.
    """
    r = matrix.shape[0]
    t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0.0
    for i in range(r):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for j in range(r):
            g = matrix[i, j]
            s0 += g * vectors[0, j]
            s1 += g * vectors[1, j]
            s2 += g * vectors[2, j]
            s3 += g * vectors[3, j]
            s4 += g * vectors[4, j]
            s5 += g * vectors[5, j]
            s6 += g * vectors[6, j]
            s7 += g * vectors[7, j]
        t0 += vectors[0, i] * s0
        t1 += vectors[1, i] * s1
        t2 += vectors[2, i] * s2
        t3 += vectors[3, i] * s3
        t4 += vectors[4, i] * s4
        t5 += vectors[5, i] * s5
        t6 += vectors[6, i] * s6
        t7 += vectors[7, i] * s7
    out[0] = t0
    out[1] = t1
    out[2] = t2
    out[3] = t3
    out[4] = t4
    out[5] = t5
    out[6] = t6
    out[7] = t7


@njit(cache=True, fastmath=True)  # reductions vectorise only with reassociation (measured 2.6x)
def _row_score(factor, row, vector):
    """``(factor[row] . vector)^2``."""
    dot = 0.0
    for j in range(vector.shape[0]):
        dot += factor[row, j] * vector[j]
    return dot * dot


@njit(cache=True)
def _scan_leaves(factor, first_row, stop_row, vector, running, scanned, target):
    """Row where the running score of rows ``first_row, first_row + 1, ...`` first exceeds ``target``.

    ``running[j]`` holds the sum of the positive scores of rows ``first_row .. first_row + j`` (-1 where
    row ``first_row + j`` scores zero: such a row is never drawn) for ``j < scanned``, the rows scored so
    far; the scan scores further rows (up to ``stop_row``) only as far as ``target`` needs. Returns (row,
    rows scored); the row is the last one with a positive score when rounding leaves ``target`` past the
    end, and -1 when no row has a positive score.
    """
    last_positive = -1
    total = 0.0
    for j in range(scanned):  # rows already scored for this vector
        if running[j] >= 0.0:
            last_positive = first_row + j
            total = running[j]
            if target < total:
                return first_row + j, scanned
    for row in range(first_row + scanned, stop_row):
        score = _row_score(factor, row, vector)
        j = row - first_row
        if score > 0.0:
            total += score
            running[j] = total
            last_positive = row
            if target < total:
                return row, j + 1
        else:
            running[j] = -1.0
    return last_positive, stop_row - first_row


@njit(cache=True)
def _level_pairs(key_of, node_of, pair_start):
    """Runs of equal (key, node) over the positions; returns their count (``pair_start`` gets the starts
    and, at the count, the end)."""
    n = key_of.shape[0]
    count = 0
    for p in range(n):
        if p == 0 or key_of[p] != key_of[p - 1] or node_of[p] != node_of[p - 1]:
            pair_start[count] = p
            count += 1
    pair_start[count] = n
    return count


@njit(cache=True)
def _pairs_by_node(node_of, pair_start, pairs, level):
    """The pairs ``0 .. pairs - 1`` of one level (nodes ``level .. 2 level - 1``) ordered by node, by a
    counting sort (stable: within a node, in key order)."""
    bucket = np.zeros(level + 1, dtype=np.int64)
    for q in range(pairs):
        bucket[node_of[pair_start[q]] - level + 1] += 1
    for b in range(level):
        bucket[b + 1] += bucket[b]
    by_node = np.empty(pairs, dtype=np.int64)
    for q in range(pairs):
        b = node_of[pair_start[q]] - level
        by_node[bucket[b]] = q
        bucket[b] += 1
    return by_node


@njit(cache=True)
def _key_runs(order, keys):
    """Dense ids of the runs of equal keys along ``order``: ``(key_of, first)``, ``key_of[p]`` the run of
    position ``p``, ``first[k]`` the first position of run ``k``."""
    n = order.shape[0]
    key_of = np.empty(n, dtype=np.int64)
    runs = 0
    for p in range(n):
        if p > 0 and keys[order[p]] != keys[order[p - 1]]:
            runs += 1
        key_of[p] = runs
    first = np.empty(runs + 1, dtype=np.int64)
    for p in range(n - 1, -1, -1):
        first[key_of[p]] = p
    return key_of, first


@njit(cache=True)
def _forms_by_node(
    tree, child, vectors, node_of, key_of, pair_start, by_node, start, stop, lanes, values, out
):
    """``out[q] = v^T tree[child * node] v`` for the pairs ``q = by_node[start:stop]`` (grouped by node),
    ``v`` the pair's key vector; eight pairs of one node at a time (``lanes`` (8, R) and ``values`` (8,)
    are scratch; unused lanes are zero)."""
    rank = vectors.shape[1]
    i = start
    while i < stop:
        node = node_of[pair_start[by_node[i]]]
        count = 0
        while i + count < stop and count < 8 and node_of[pair_start[by_node[i + count]]] == node:
            key = key_of[pair_start[by_node[i + count]]]
            for j in range(rank):
                lanes[count, j] = vectors[key, j]
            count += 1
        for k in range(count, 8):
            for j in range(rank):
                lanes[k, j] = 0.0
        _quadratic_forms8(tree[child * node], lanes, values)
        for k in range(count):
            out[by_node[i + k]] = values[k]
        i += count


@njit(cache=True, parallel=True)
def _descend_levelwise(tree, stop_at, vectors, key_of, first, uniforms, order, node_of, target, weight):
    """Walk every sample from the root down to the first level whose nodes are >= ``stop_at``.

    In: ``vectors`` (runs, R), the vector of each key run; ``key_of``/``first`` from :func:`_key_runs`;
    ``uniforms`` (n,). Out, per position of ``order``: ``node_of`` the node reached, ``target`` the uniform
    scaled into it, ``weight`` its weight.
    """
    n = order.shape[0]
    runs = first.shape[0]
    rank = vectors.shape[1]
    root = np.empty(runs)
    all_runs = np.arange(runs)
    node_of[:] = 1
    for block in prange((runs + _PAIR_BLOCK - 1) // _PAIR_BLOCK):  # each run is a pair at the root
        lanes = np.empty((8, rank))
        values = np.empty(8)
        start = block * _PAIR_BLOCK
        stop = min(runs, start + _PAIR_BLOCK)
        _forms_by_node(tree, 1, vectors, node_of, key_of, first, all_runs, start, stop, lanes, values, root)
    for p in range(n):
        weight[p] = root[key_of[p]]
        target[p] = uniforms[order[p]] * weight[p]
    pair_start = np.empty(n + 1, dtype=np.int64)
    level = 1  # the first node of the current level
    while level < stop_at:
        pairs = _level_pairs(key_of, node_of, pair_start)
        by_node = _pairs_by_node(node_of, pair_start, pairs, level)
        left = np.empty(pairs)
        for block in prange((pairs + _PAIR_BLOCK - 1) // _PAIR_BLOCK):
            lanes = np.empty((8, rank))
            values = np.empty(8)
            start = block * _PAIR_BLOCK
            stop = min(pairs, start + _PAIR_BLOCK)
            _forms_by_node(
                tree, 2, vectors, node_of, key_of, pair_start, by_node, start, stop, lanes, values, left
            )
        for block in prange((pairs + _PAIR_BLOCK - 1) // _PAIR_BLOCK):
            for q in range(block * _PAIR_BLOCK, min(pairs, (block + 1) * _PAIR_BLOCK)):
                left_weight = left[q]
                for p in range(pair_start[q], pair_start[q + 1]):
                    right_weight = weight[p] - left_weight
                    if (target[p] < left_weight and left_weight > 0.0) or right_weight <= 0.0:
                        node_of[p] = 2 * node_of[p]
                        weight[p] = left_weight
                    else:
                        node_of[p] = 2 * node_of[p] + 1
                        target[p] -= left_weight
                        weight[p] = right_weight
        level *= 2


@njit(cache=True, parallel=True)
def _row_vectors(scaled_eigenvectors, components, h, order, first, vectors):
    """``vectors[k] = y_v * h[s]`` for the first sample ``s`` of key run ``k`` and its component ``v``."""
    rank = h.shape[1]
    for k in prange(first.shape[0]):
        s = order[first[k]]
        v = components[s]
        for j in range(rank):
            vectors[k, j] = scaled_eigenvectors[v, j] * h[s, j]


@njit(cache=True, parallel=True)
def _leaves_levelwise(factor, n_leaves, leaf_size, vectors, key_of, order, node_of, target, h, rows_out):
    """Finish the row walks at the bottom internal nodes: pick a row in one of the two leaves below.

    The rows of the two leaves (contiguous factor rows) are scored in order once per (key, node) pair,
    and only as far as the pair's largest target needs (about one leaf of the two on average, where
    scoring the left leaf whole to weigh it against the right one cost 1.5; measured on the count
    tensor's R = 100 factors, leaves of 400 / 200 rows: 0.37 -> 0.33 s per iteration, this stage being
    bound by reading the leaves' rows from memory). The pairs are grouped by
    node so that a leaf's rows are read from memory once for all keys. The drawn row is written to
    ``rows_out`` and folded into ``h``.
    """
    n = order.shape[0]
    rank = h.shape[1]
    pair_start = np.empty(n + 1, dtype=np.int64)
    pairs = _level_pairs(key_of, node_of, pair_start)
    by_node = _pairs_by_node(node_of, pair_start, pairs, n_leaves // 2)
    for block in prange((pairs + _PAIR_BLOCK - 1) // _PAIR_BLOCK):
        running = np.empty(2 * leaf_size)
        for i in range(block * _PAIR_BLOCK, min(pairs, (block + 1) * _PAIR_BLOCK)):
            q = by_node[i]
            p0 = pair_start[q]
            vector = vectors[key_of[p0]]
            first_row = (2 * node_of[p0] - n_leaves) * leaf_size
            stop_row = min(first_row + 2 * leaf_size, factor.shape[0])
            scanned = 0
            for p in range(p0, pair_start[q + 1]):
                row, scanned = _scan_leaves(factor, first_row, stop_row, vector, running, scanned, target[p])
                s = order[p]
                rows_out[s] = row
                for j in range(rank):
                    h[s, j] *= factor[row, j]


@contextlib.contextmanager
def _single_threaded(parallel):
    """Context: numba's pool limited to one thread unless ``parallel``."""
    if parallel:
        yield
        return
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def sts_draw_components(eigen_tree, n_components_padded, h, uniforms, order, keys, out, *, parallel):
    """Draw each sample's eigen-component: ``v`` with probability ``h^T node_v h / h^T root h``.

    Parameters
    ----------
    eigen_tree : float64 (2Q, R, R)
    n_components_padded : int, Q
    h : float64 (n, R), product of the rows drawn so far for each sample
    uniforms : float64 (n,), in [0, 1)
    order : int64 (n,), the samples in processing order: sorted by ``keys``, then by ``uniforms`` (any
        order gives the same draws; this one does the least work)
    keys : int64 (n,), equal for samples whose ``h`` rows are equal (and only for those)
    out : int64 (n,), out: the component of each sample
    parallel : bool
        Use numba's threads; otherwise one thread (same draws).
    """
    n = order.shape[0]
    if n == 0:
        return
    with _single_threaded(parallel):
        key_of, first = _key_runs(order, keys)
        vectors = np.ascontiguousarray(h[order[first]])
        node_of = np.empty(n, dtype=np.int64)
        target = np.empty(n)
        weight = np.empty(n)
        _descend_levelwise(
            eigen_tree, n_components_padded, vectors, key_of, first, uniforms, order, node_of, target, weight
        )
    out[order] = node_of - n_components_padded


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
    order : int64 (n,), the samples in processing order: sorted by ``keys``, then by ``uniforms`` (any
        order gives the same draws; this one does the least work)
    keys : int64 (n,), equal for samples with equal ``h`` rows and equal components (and only for those)
    rows_out : int64 (n,), out: the drawn row of each sample
    parallel : bool
        As in :func:`sts_draw_components`.
    """
    n = order.shape[0]
    if n == 0:
        return
    with _single_threaded(parallel):
        key_of, first = _key_runs(order, keys)
        vectors = np.empty((first.shape[0], h.shape[1]))
        _row_vectors(scaled_eigenvectors, components, h, order, first, vectors)
        node_of = np.empty(n, dtype=np.int64)
        target = np.empty(n)
        weight = np.empty(n)
        _descend_levelwise(
            row_tree, n_leaves // 2, vectors, key_of, first, uniforms, order, node_of, target, weight
        )
        _leaves_levelwise(factor, n_leaves, leaf_size, vectors, key_of, order, node_of, target, h, rows_out)
