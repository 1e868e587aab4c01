"""Fused convolution kernels (``multilinear.kernels.tp_conv``) against the gather/TP/scatter oracle."""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.equivariant import zoo
from multilinear.kernels.tp_conv import ConvGraph, get_tp_conv_kernels
from tests.reference.tensor_product_conv import (
    reference_conv_backward,
    reference_conv_double_backward,
    reference_conv_forward,
)
from tests.tolerances import assert_close_rel

CASES = [
    ("small-uvu", np.float64),
    ("small-uvw", np.float64),
    ("small-mixed", np.float64),
    ("small-shared", np.float64),
    ("small-uvu", np.float32),
    ("small-mixed", np.float32),
]
IDS = [f"{name}-{np.dtype(dtype).name}" for name, dtype in CASES]


def random_graph(num_nodes: int, num_edges: int, rng: np.random.Generator):
    """Unsorted edges with repeats and self loops; node ``num_nodes - 1`` has no edges at all."""
    receivers = rng.integers(0, num_nodes - 1, size=num_edges).astype(np.int64)
    senders = rng.integers(0, num_nodes - 1, size=num_edges).astype(np.int64)
    return receivers, senders


def conv_inputs(spec, num_nodes, num_edges, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    receivers, senders = random_graph(num_nodes, num_edges, rng)
    w_shape = (spec.weight_numel,) if spec.shared_weights else (num_edges, spec.weight_numel)

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return {
        "x": draw(num_nodes, spec.dim_in1),
        "y": draw(num_edges, spec.dim_in2),
        "w": draw(*w_shape),
        "grad_out": draw(num_nodes, spec.dim_out),
        "gg_x": draw(num_nodes, spec.dim_in1),
        "gg_y": draw(num_edges, spec.dim_in2),
        "gg_w": draw(*w_shape),
        "receivers": receivers,
        "senders": senders,
    }


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=IDS)
def test_conv_kernels_match_gather_tp_scatter_oracle(name, dtype):
    spec = zoo.get(name, irrep_dtype=dtype).kernel_spec()
    kernels = get_tp_conv_kernels(spec)
    a = conv_inputs(spec, num_nodes=13, num_edges=57, seed=len(name))
    graph = ConvGraph(a["receivers"], a["senders"], 13)
    x, y, w, g = a["x"], a["y"], a["w"], a["grad_out"]
    edges = (a["receivers"], a["senders"])

    out = np.full((13, spec.dim_out), np.nan, dtype=dtype)
    kernels.forward(x, y, w, out, graph)
    assert_close_rel(out, reference_conv_forward(spec, x, y, w, *edges), "tp_forward", np.dtype(dtype).name)
    assert np.all(out[12] == 0), "a node without edges gets a zero row"

    grads = [np.full_like(t, np.nan) for t in (x, y, w)]
    kernels.backward(x, y, w, g, *grads, graph)
    for got, expected in zip(grads, reference_conv_backward(spec, x, y, w, g, *edges)):
        assert_close_rel(got, expected, "tp_backward", np.dtype(dtype).name)

    outs = [np.full_like(t, np.nan) for t in (x, y, w, g)]
    kernels.double_backward(x, y, w, g, a["gg_x"], a["gg_y"], a["gg_w"], *outs, graph)
    expected = reference_conv_double_backward(spec, x, y, w, g, a["gg_x"], a["gg_y"], a["gg_w"], *edges)
    for got, want in zip(outs, expected):
        assert_close_rel(got, want, "tp_double_backward", np.dtype(dtype).name)


@pytest.mark.parametrize("missing", ["gg_x", "gg_y", "gg_w"])
def test_double_backward_with_a_missing_cotangent(missing):
    spec = zoo.get("small-mixed", irrep_dtype=np.float64).kernel_spec()
    kernels = get_tp_conv_kernels(spec)
    a = conv_inputs(spec, num_nodes=9, num_edges=30, seed=5)
    a[missing] = None
    graph = ConvGraph(a["receivers"], a["senders"], 9)
    args = [a[k] for k in ("x", "y", "w", "grad_out", "gg_x", "gg_y", "gg_w")]
    outs = [np.full_like(t, np.nan) for t in (a["x"], a["y"], a["w"], a["grad_out"])]
    kernels.double_backward(*args, *outs, graph)
    expected = reference_conv_double_backward(spec, *args, a["receivers"], a["senders"])
    for got, want in zip(outs, expected):
        assert_close_rel(got, want, "tp_double_backward", "float64")


def test_results_do_not_depend_on_edge_order_beyond_rounding_and_are_bitwise_repeatable():
    spec = zoo.get("small-uvu", irrep_dtype=np.float32).kernel_spec()
    kernels = get_tp_conv_kernels(spec)
    a = conv_inputs(spec, num_nodes=13, num_edges=57, seed=1)
    graph = ConvGraph(a["receivers"], a["senders"], 13)
    first, second = (np.empty((13, spec.dim_out), np.float32) for _ in range(2))
    kernels.forward(a["x"], a["y"], a["w"], first, graph)
    kernels.forward(a["x"], a["y"], a["w"], second, ConvGraph(a["receivers"], a["senders"], 13))
    assert first.tobytes() == second.tobytes()
    grads_1 = [np.empty_like(t) for t in (a["x"], a["y"], a["w"])]
    grads_2 = [np.empty_like(t) for t in (a["x"], a["y"], a["w"])]
    kernels.backward(a["x"], a["y"], a["w"], a["grad_out"], *grads_1, graph)
    kernels.backward(a["x"], a["y"], a["w"], a["grad_out"], *grads_2, graph)
    assert all(p.tobytes() == q.tobytes() for p, q in zip(grads_1, grads_2))


def test_conv_graph_csr_orders():
    receivers = np.array([2, 0, 2, 1, 0], dtype=np.int64)
    senders = np.array([0, 1, 1, 2, 0], dtype=np.int64)
    graph = ConvGraph(receivers, senders, 4)
    np.testing.assert_array_equal(graph.receiver_pointer, [0, 2, 3, 5, 5])
    np.testing.assert_array_equal(graph.receiver_order, [1, 4, 3, 0, 2])  # stable within a receiver
    np.testing.assert_array_equal(graph.sender_pointer, [0, 2, 4, 5, 5])
    np.testing.assert_array_equal(graph.sender_order, [0, 4, 1, 2, 3])
    assert graph.receiver_chunks[0] == 0 and graph.receiver_chunks[-1] == 4
    assert np.all(np.diff(graph.receiver_chunks) >= 0)
    assert graph.same_edges(receivers.copy(), senders.copy(), 4)
    assert not graph.same_edges(receivers[::-1].copy(), senders, 4)


@pytest.mark.parametrize(
    ("receivers", "senders", "num_nodes", "error", "match"),
    [
        (np.array([0, 3]), np.array([0, 1]), 3, ValueError, "receivers holds node index 3"),
        (np.array([0, 1]), np.array([-1, 1]), 3, ValueError, "senders holds node index -1"),
        (np.array([0, 1], dtype=np.int32), np.array([0, 1]), 3, TypeError, "int64"),
        (np.array([0, 1]), np.array([0, 1, 2]), 3, ValueError, "same length"),
        ([0, 1], np.array([0, 1]), 3, TypeError, "numpy array"),
        (np.array([[0, 1]]), np.array([[0, 1]]), 3, ValueError, "1-d"),
        (np.array([0]), np.array([0]), -1, ValueError, "num_nodes"),
    ],
    ids=["receiver-too-big", "negative-sender", "int32", "lengths", "list", "2d", "negative-nodes"],
)
def test_bad_graphs_raise_clear_errors(receivers, senders, num_nodes, error, match):
    if isinstance(receivers, np.ndarray) and receivers.dtype == np.int_ and receivers.dtype != np.int64:
        receivers = receivers.astype(np.int64)
    with pytest.raises(error, match=match):
        ConvGraph(receivers, senders, num_nodes)


def test_kernel_shape_checks():
    spec = zoo.get("small-uvu", irrep_dtype=np.float64).kernel_spec()
    kernels = get_tp_conv_kernels(spec)
    a = conv_inputs(spec, num_nodes=5, num_edges=7, seed=2)
    graph = ConvGraph(a["receivers"], a["senders"], 5)
    out = np.empty((5, spec.dim_out))
    with pytest.raises(ValueError, match="y must have shape"):
        kernels.forward(a["x"], a["y"][:3], a["w"], out, graph)
    with pytest.raises(TypeError, match="dtype float64"):
        kernels.forward(a["x"].astype(np.float32), a["y"], a["w"], out, graph)
    with pytest.raises(TypeError, match="ConvGraph"):
        kernels.forward(a["x"], a["y"], a["w"], out, (a["receivers"], a["senders"]))


def test_from_parts_rebuilds_the_plan_and_rejects_out_of_range_indices():
    receivers = np.array([2, 0, 2, 1, 0], dtype=np.int64)
    senders = np.array([0, 1, 1, 2, 0], dtype=np.int64)
    graph = ConvGraph(receivers, senders, 4)
    parts = [
        graph.receivers,
        graph.senders,
        graph.receiver_order,
        graph.receiver_pointer,
        graph.sender_order,
        graph.sender_pointer,
    ]
    rebuilt = ConvGraph.from_parts(*parts)
    np.testing.assert_array_equal(rebuilt.receiver_chunks, graph.receiver_chunks)
    assert (rebuilt.num_nodes, rebuilt.num_edges) == (4, 5)
    bad_order = graph.sender_order.copy()
    bad_order[0] = 5
    with pytest.raises(ValueError, match="sender_order holds an index outside"):
        ConvGraph.from_parts(*parts[:4], bad_order, parts[5])
    bad_senders = graph.senders.copy()
    bad_senders[1] = 4
    with pytest.raises(ValueError, match="senders holds an index outside"):
        ConvGraph.from_parts(parts[0], bad_senders, *parts[2:])
    bad_pointer = graph.receiver_pointer.copy()
    bad_pointer[1:3] = [3, 2]
    with pytest.raises(ValueError, match="never decrease"):
        ConvGraph.from_parts(*parts[:3], bad_pointer, *parts[4:])
    with pytest.raises(ValueError, match="num_edges"):
        ConvGraph.from_parts(*parts[:2], graph.receiver_order[:4], *parts[3:])
    with pytest.raises(TypeError, match="int64"):
        ConvGraph.from_parts(parts[0].astype(np.int32), *parts[1:])
