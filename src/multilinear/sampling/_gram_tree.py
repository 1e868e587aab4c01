"""Segment trees of partial Gram matrices (the data structure of the STS sampler).

A factor ``U`` (I, R) is cut into leaves of ``leaf_size`` consecutive rows; a complete binary tree over
P leaves (P a power of two >= 2; missing rows count as zero) stores at each internal node the Gram matrix
``U_rows^T U_rows`` of the rows below it, in heap order (node ``k`` has children ``2k``, ``2k + 1``; the
root is node 1, slot 0 is unused). Leaves are not stored: the kernels compute their weights from the rows.
The bottom level is built with batched matrix products (BLAS-3), the levels above by adding children;
both split into slices run on a small pool of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multilinear._core.threads import default_threads, run_pieces

_DEFAULT_TREE_BYTES = 512 * 2**20  # a factor's tree grows its leaves until it fits in this
_BUILD_CHUNK = 4096  # bottom-level nodes per batched matmul (bounds the temporary copy)
_PARALLEL_ADD_NODES = 1024  # levels with at least this many nodes are summed by several threads


@dataclass(frozen=True)
class GramTree:
    """The partial-Gram tree of one factor.

    Attributes
    ----------
    nodes : ndarray of float64, shape (n_leaves, R, R)
        Internal nodes in heap order; ``nodes[1]`` is the factor's full Gram matrix.
    n_leaves : int
        P, a power of two >= 2.
    leaf_size : int
        Factor rows per leaf.
    """

    nodes: np.ndarray
    n_leaves: int
    leaf_size: int

    @property
    def gram(self) -> np.ndarray:
        """The full Gram matrix ``U^T U``, shape (R, R)."""
        return self.nodes[1]

    @property
    def height(self) -> int:
        """Levels from the root to the leaves, ``log2(n_leaves)``."""
        return int(self.n_leaves).bit_length() - 1


def next_power_of_two(value: int) -> int:
    """Smallest power of two >= ``value`` (and >= 1)."""
    return 1 << max(0, int(value) - 1).bit_length()


def choose_leaf_size(rows: int, rank: int, max_bytes: int = _DEFAULT_TREE_BYTES) -> int:
    """Leaf size for a factor of ``rows`` x ``rank``: ``rank`` rows, doubled until the tree fits ``max_bytes``."""
    leaf = max(1, rank)
    while True:
        n_leaves = max(2, next_power_of_two(-(-rows // leaf)))
        if n_leaves == 2 or n_leaves * rank * rank * 8 <= max_bytes:
            return leaf
        leaf *= 2


def build_gram_tree(factor: np.ndarray, leaf_size: int, out: GramTree | None = None) -> GramTree:
    """Build the partial-Gram tree of ``factor`` (I, R) with leaves of ``leaf_size`` rows.

    ``out``, a tree of the same factor shape and leaf size, is overwritten and returned (a rebuild after
    a factor update reuses its memory instead of faulting in fresh pages).
    """
    rows, rank = factor.shape
    n_leaves = max(2, next_power_of_two(-(-rows // leaf_size)))
    if out is not None and out.nodes.shape == (n_leaves, rank, rank) and out.leaf_size == leaf_size:
        nodes = out.nodes
        nodes[0] = 0.0
    else:
        nodes = np.zeros((n_leaves, rank, rank))
    bottom = n_leaves // 2
    span = 2 * leaf_size  # rows under one bottom-level internal node
    full = rows // span
    chunk = max(1, min(_BUILD_CHUNK, -(-full // default_threads())))

    def bottom_chunk(start: int) -> None:
        stop = min(full, start + chunk)
        block = factor[start * span : stop * span].reshape(stop - start, span, rank)
        np.matmul(block.transpose(0, 2, 1), block, out=nodes[bottom + start : bottom + stop])

    run_pieces(bottom_chunk, range(0, full, chunk))
    if full * span < rows:
        rest = factor[full * span :]
        nodes[bottom + full] = rest.T @ rest
        nodes[bottom + full + 1 :] = 0.0
    else:
        nodes[bottom + full :] = 0.0
    level = bottom // 2
    while level >= 1:
        step = max(1, -(-level // default_threads())) if level >= _PARALLEL_ADD_NODES else level

        def add_children(start: int, level: int = level, step: int = step) -> None:
            stop = min(level, start + step)
            np.add(
                nodes[2 * (level + start) : 2 * (level + stop) : 2],
                nodes[2 * (level + start) + 1 : 2 * (level + stop) : 2],
                out=nodes[level + start : level + stop],
            )

        run_pieces(add_children, range(0, level, step))
        level //= 2
    if out is not None and nodes is out.nodes:
        return out
    return GramTree(nodes=nodes, n_leaves=n_leaves, leaf_size=leaf_size)


def build_eigen_tree(scaled_eigenvectors: np.ndarray, gram: np.ndarray) -> tuple[np.ndarray, int]:
    """The tree over eigen-components used to pick a component before a row.

    Parameters
    ----------
    scaled_eigenvectors : ndarray, shape (R, R)
        Row ``v`` is ``y_v`` (an eigenvector scaled by the square root of its eigenvalue).
    gram : ndarray, shape (R, R)
        The Gram matrix of the factor the row is drawn from.

    Returns
    -------
    nodes : ndarray, shape (2Q, R, R)
        Node ``Q + v`` holds ``(y_v y_v^T) * gram``; internal nodes hold the sums of their children.
    n_components_padded : int
        Q, the number of components rounded up to a power of two.
    """
    rank = gram.shape[0]
    padded = next_power_of_two(rank)
    nodes = np.zeros((2 * padded, rank, rank))
    y = scaled_eigenvectors
    nodes[padded : padded + rank] = y[:, :, None] * y[:, None, :] * gram[None, :, :]
    level = padded // 2
    while level >= 1:
        np.add(
            nodes[2 * level : 4 * level : 2],
            nodes[2 * level + 1 : 4 * level : 2],
            out=nodes[level : 2 * level],
        )
        level //= 2
    return nodes, padded
