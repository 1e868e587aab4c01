"""``multilinear.torch.TensorProductConv`` against e3nn's ``o3.TensorProduct`` followed by ``index_add``."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from multilinear.equivariant import radius_graph, spherical_harmonics, zoo
from multilinear.torch import TensorProductConv, prepare_graph
from tests.tolerances import assert_close_rel
from tests.torch.peers import OP_OF, e3nn_twin

pytest.importorskip("e3nn")


class E3nnConv(torch.nn.Module):
    """The unfused peer: e3nn's tensor product per edge, then a scatter-sum over receivers."""

    def __init__(self, problem) -> None:
        super().__init__()
        self.tp = e3nn_twin(problem)
        self.dim_out = problem.irreps_out.dim

    def forward(self, x, y, weight, receivers, senders):
        messages = self.tp(x[senders], y, weight)
        return torch.zeros(x.shape[0], self.dim_out, dtype=x.dtype).index_add(0, receivers, messages)


def random_edges(num_nodes: int, num_edges: int, gen: torch.Generator):
    """Unsorted edges with repeats and self loops; the last node has no edges at all."""
    receivers = torch.randint(0, num_nodes - 1, (num_edges,), generator=gen)
    senders = torch.randint(0, num_nodes - 1, (num_edges,), generator=gen)
    return receivers, senders


def conv_inputs(problem, num_nodes: int, receivers, senders, gen: torch.Generator, y=None):
    dtype = torch.float64 if problem.irrep_dtype == np.float64 else torch.float32
    num_edges = receivers.shape[0]

    def draw(*shape):
        return torch.randn(shape, generator=gen, dtype=dtype)

    shape_w = (problem.weight_numel,) if problem.shared_weights else (num_edges, problem.weight_numel)
    return {
        "x": draw(num_nodes, problem.irreps_in1.dim),
        "y": draw(num_edges, problem.irreps_in2.dim) if y is None else y.to(dtype),
        "weight": draw(*shape_w),
        "grad_out": draw(num_nodes, problem.irreps_out.dim),
        "receivers": receivers,
        "senders": senders,
    }


def first_and_second_order(module, x, y, weight, grad_out, receivers, senders):
    """Output, first-order grads of x, y, w, and the grads of a loss of those (the double backward)."""
    x, y, weight = (t.detach().clone().requires_grad_() for t in (x, y, weight))
    out = module(x, y, weight, receivers, senders)
    grads = torch.autograd.grad(out, (x, y, weight), grad_out, create_graph=True)
    loss = sum((g * torch.cos(g.detach())).sum() for g in grads)
    second = torch.autograd.grad(loss, (x, y, weight))
    names = ("z", "grad_x", "grad_y", "grad_w", "dd_x", "dd_y", "dd_w")
    return {n: t.detach().to(torch.float64).numpy() for n, t in zip(names, (out, *grads, *second))}


def assert_matches_e3nn(problem, inputs):
    dtype = np.dtype(problem.irrep_dtype).name
    got = first_and_second_order(TensorProductConv(problem), **inputs)
    expected = first_and_second_order(E3nnConv(problem), **inputs)
    for key, op in OP_OF.items():
        assert_close_rel(got[key], expected[key], op, dtype)


CASES = [
    ("small-uvu", np.float64),
    ("small-uvw", np.float64),
    ("small-mixed", np.float64),
    ("small-shared", np.float64),
    ("small-uvu", np.float32),
    ("small-mixed", np.float32),
]


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=[f"{n}-{np.dtype(d).name}" for n, d in CASES])
def test_random_graphs_match_e3nn_to_second_order(name, dtype):
    problem = zoo.get(name, irrep_dtype=dtype)
    gen = torch.Generator().manual_seed(len(name))
    receivers, senders = random_edges(11, 40, gen)
    assert_matches_e3nn(problem, conv_inputs(problem, 11, receivers, senders, gen))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("shared", [False, True], ids=["per-edge", "shared"])
def test_ase_perovskite_with_spherical_harmonics_matches_e3nn(dtype, shared):
    from ase import Atoms

    a = 3.905
    cell = Atoms(
        "SrTiO3",
        scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        cell=[a, a, a],
        pbc=True,
    )
    atoms = cell * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    graph = radius_graph(atoms, 4.0)
    # both problems take 0e+1o+2e as second input: the edge spherical harmonics up to l = 2
    y = torch.from_numpy(spherical_harmonics([0, 1, 2], graph.vectors, normalization="component"))
    problem = zoo.get("small-shared" if shared else "small-uvu", irrep_dtype=dtype)
    assert str(problem.irreps_in2) == "1x0e+1x1o+1x2e" and problem.shared_weights == shared
    gen = torch.Generator().manual_seed(7)
    receivers, senders = torch.from_numpy(graph.receivers.copy()), torch.from_numpy(graph.senders.copy())
    assert_matches_e3nn(problem, conv_inputs(problem, graph.num_nodes, receivers, senders, gen, y=y))


def test_outputs_are_bitwise_identical_run_to_run_and_across_thread_counts():
    problem = zoo.get("small-uvu", irrep_dtype=np.float32)
    gen = torch.Generator().manual_seed(3)
    receivers, senders = random_edges(30, 300, gen)
    inputs = conv_inputs(problem, 30, receivers, senders, gen)
    conv = TensorProductConv(problem, deterministic=True)
    previous = numba.get_num_threads()
    results = []
    try:
        for threads in (previous, previous, 1):
            numba.set_num_threads(threads)
            results.append(first_and_second_order(conv, **inputs))
    finally:
        numba.set_num_threads(previous)
    for other in results[1:]:
        for key in results[0]:
            assert results[0][key].tobytes() == other[key].tobytes(), key


def test_sorted_and_shuffled_edges_agree():
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    gen = torch.Generator().manual_seed(4)
    receivers, senders = random_edges(12, 50, gen)
    inputs = conv_inputs(problem, 12, receivers, senders, gen)
    conv = TensorProductConv(problem)
    out = conv(inputs["x"], inputs["y"], inputs["weight"], receivers, senders)
    perm = torch.randperm(50, generator=gen)
    shuffled = conv(inputs["x"], inputs["y"][perm], inputs["weight"][perm], receivers[perm], senders[perm])
    assert_close_rel(shuffled.numpy(), out.numpy(), "tp_forward", "float64")


def test_graph_plan_is_reused_only_for_equal_edges():
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    gen = torch.Generator().manual_seed(5)
    receivers, senders = random_edges(10, 30, gen)
    inputs = conv_inputs(problem, 10, receivers, senders, gen)
    conv = TensorProductConv(problem)
    args = (inputs["x"], inputs["y"], inputs["weight"])
    first = conv(*args, receivers, senders)
    plan = conv._last_graph
    again = conv(*args, receivers.clone(), senders.clone())
    assert conv._last_graph is plan
    assert torch.equal(first, again)
    receivers[0] = (receivers[0] + 1) % 9  # in-place edit of the same tensor: a new plan is built
    changed = conv(*args, receivers, senders)
    assert conv._last_graph is not plan
    expected = E3nnConv(problem)(*args, receivers, senders)
    assert_close_rel(changed.numpy(), expected.detach().numpy(), "tp_forward", "float64")
    prepared = prepare_graph(receivers, senders, 10)
    assert torch.equal(conv(*args, graph=prepared), changed)


@pytest.mark.parametrize("name", ["small-mixed", "small-shared"])
def test_gradcheck_and_gradgradcheck_fp64(name):
    problem = zoo.get(name, irrep_dtype=np.float64)
    gen = torch.Generator().manual_seed(6)
    receivers, senders = random_edges(4, 4, gen)
    inputs = conv_inputs(problem, 4, receivers, senders, gen)
    conv = TensorProductConv(problem)
    graph = prepare_graph(receivers, senders, 4)

    def f(x, y, w):
        return conv(x, y, w, graph=graph)

    args = tuple(inputs[k].clone().requires_grad_() for k in ("x", "y", "weight"))
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_opcheck_on_the_custom_ops():
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    gen = torch.Generator().manual_seed(8)
    receivers, senders = random_edges(6, 14, gen)
    inputs = conv_inputs(problem, 6, receivers, senders, gen)
    conv = TensorProductConv(problem)
    graph = prepare_graph(receivers, senders, 6).op_arguments()
    x, y, w, g = (inputs[k].clone().requires_grad_() for k in ("x", "y", "weight", "grad_out"))
    ops = torch.ops.multilinear
    torch.library.opcheck(ops.tp_conv_forward, (x, y, w, *graph, conv._handle))
    torch.library.opcheck(ops.tp_conv_backward, (x, y, w, g, *graph, conv._handle))
    gg = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in (x, y, w)]
    torch.library.opcheck(
        ops.tp_conv_double_backward,
        (x.detach(), y.detach(), w.detach(), g.detach(), *gg, *graph, conv._handle),
        test_utils=("test_schema", "test_faketensor"),
    )


def test_empty_graph_gives_zeros():
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    conv = TensorProductConv(problem)
    x = torch.randn(4, problem.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(0, problem.irreps_in2.dim, dtype=torch.float64)
    w = torch.zeros(0, problem.weight_numel, dtype=torch.float64)
    empty = torch.zeros(0, dtype=torch.int64)
    out = conv(x, y, w, empty, empty)
    assert out.shape == (4, problem.irreps_out.dim) and torch.all(out == 0)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.all(grad == 0)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"receivers": torch.tensor([0, 1, 7])}, ValueError, "receivers holds node index 7"),
        ({"senders": torch.tensor([0, -1, 2])}, ValueError, "senders holds node index -1"),
        ({"senders": torch.tensor([0, 1, 2], dtype=torch.int32)}, TypeError, "int64"),
        ({"senders": torch.tensor([0, 1])}, ValueError, "same length"),
        ({"y": torch.zeros(4, 9, dtype=torch.float64)}, ValueError, "one row of y per edge"),
        ({"weight": torch.zeros(3, 5, dtype=torch.float64)}, ValueError, "per-edge weights must have shape"),
        ({"x": torch.zeros(5, 3, dtype=torch.float64)}, ValueError, "x must have shape"),
        ({"x": torch.zeros(5, 32, dtype=torch.float32)}, TypeError, "dtype torch.float64"),
        ({"receivers": [0, 1, 2]}, TypeError, "torch.Tensor"),
        ({"receivers": None}, ValueError, "receivers and senders"),
    ],
    ids=[
        "receiver-range",
        "negative-sender",
        "int32",
        "lengths",
        "y-rows",
        "weight",
        "x-width",
        "x-dtype",
        "list",
        "none",
    ],
)
def test_bad_input_raises_clear_errors(change, error, match):
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    conv = TensorProductConv(problem)
    args = {
        "x": torch.zeros(5, problem.irreps_in1.dim, dtype=torch.float64),
        "y": torch.zeros(3, problem.irreps_in2.dim, dtype=torch.float64),
        "weight": torch.zeros(3, problem.weight_numel, dtype=torch.float64),
        "receivers": torch.tensor([0, 1, 2]),
        "senders": torch.tensor([2, 1, 0]),
    }
    args.update(change)
    with pytest.raises(error, match=match):
        conv(args["x"], args["y"], args["weight"], args["receivers"], args["senders"])


def test_torch_compile_keeps_the_ops_in_one_graph():
    problem = zoo.get("small-uvu", irrep_dtype=np.float32)
    gen = torch.Generator().manual_seed(9)
    receivers, senders = random_edges(10, 40, gen)
    inputs = conv_inputs(problem, 10, receivers, senders, gen)
    conv = TensorProductConv(problem)
    graph = prepare_graph(receivers, senders, 10)

    def apply(x, y, w):
        return conv(x, y, w, graph=graph)

    compiled = torch.compile(apply, fullgraph=True)
    x = inputs["x"].clone().requires_grad_()
    out = compiled(x, inputs["y"], inputs["weight"])
    (grad,) = torch.autograd.grad(out, x, inputs["grad_out"])
    x_eager = inputs["x"].clone().requires_grad_()
    out_eager = apply(x_eager, inputs["y"], inputs["weight"])
    (grad_eager,) = torch.autograd.grad(out_eager, x_eager, inputs["grad_out"])
    assert torch.equal(out, out_eager)
    assert torch.equal(grad, grad_eager)
