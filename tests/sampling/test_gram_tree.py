"""The STS sampler's partial-Gram tree against Gram matrices computed with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.sampling._gram_tree import build_gram_tree
from tests.tolerances import assert_close_rel


@pytest.mark.parametrize(("rows", "rank", "leaf_size"), [(100, 5, 5), (37, 3, 4), (1000, 8, 16), (3, 2, 2)])
def test_every_node_holds_the_gram_of_its_rows(rows, rank, leaf_size):
    factor = np.random.default_rng(rows).standard_normal((rows, rank))
    tree = build_gram_tree(factor, leaf_size)
    padded = np.zeros((tree.n_leaves * leaf_size, rank))
    padded[:rows] = factor
    for node in range(1, tree.n_leaves):
        depth = node.bit_length() - 1
        width = tree.n_leaves // 2**depth * leaf_size  # rows under a node at this depth
        block = padded[(node - 2**depth) * width : (node - 2**depth + 1) * width]
        assert_close_rel(tree.nodes[node], block.T @ block, "mttkrp", "float64")
    np.testing.assert_array_equal(tree.gram, tree.gram.T)


def test_rebuild_in_place():
    rng = np.random.default_rng(0)
    one = build_gram_tree(rng.standard_normal((5000, 12)), 12)
    other = rng.standard_normal((5000, 12))
    rebuilt = build_gram_tree(other, 12, out=one)
    assert rebuilt is one
    assert_close_rel(rebuilt.gram, other.T @ other, "mttkrp", "float64")
