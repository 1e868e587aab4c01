"""``multilinear.torch.TensorProduct`` (real generated kernels) against e3nn's ``o3.TensorProduct``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from multilinear.equivariant import TPProblem, zoo
from multilinear.torch import TensorProduct
from tests.tolerances import assert_close_rel
from tests.torch.peers import OP_OF, e3nn_twin, first_and_second_order, random_inputs

# Every production problem compiles its own kernels (tens of seconds each on a loaded 2-core machine):
# three always run (MACE-large is compiled by the kernel tests anyway), the rest are marked slow.
CORE_PRODUCTION = ("mace-large", "nequip-water", "diffdock-l1")
PRODUCTION = [
    name if name in CORE_PRODUCTION else pytest.param(name, marks=pytest.mark.slow)
    for name in zoo.names(production=True)
]


@pytest.mark.parametrize("name", PRODUCTION)
def test_production_problem_matches_e3nn_to_second_order(name):
    problem = zoo.get(name, irrep_dtype=np.float32)
    ours, theirs = TensorProduct(problem), e3nn_twin(problem)
    inputs = random_inputs(problem, batch=8, seed=len(name))
    got = first_and_second_order(ours, **inputs)
    expected = first_and_second_order(theirs, **inputs)
    for key, op in OP_OF.items():
        assert_close_rel(got[key], expected[key], op, "float32")


# the small problems in the dtypes the other tests below compile anyway (no extra compile time)
SMALL_CASES = [
    ("small-mixed", np.float64),
    ("small-uvw", np.float32),
    ("small-uvw", np.float64),
    ("small-uvu", np.float64),
    ("small-shared", np.float32),
]


@pytest.mark.parametrize(
    ("name", "dtype"), SMALL_CASES, ids=[f"{n}-{np.dtype(d).name}" for n, d in SMALL_CASES]
)
def test_small_problems_match_e3nn_both_dtypes(name, dtype):
    problem = zoo.get(name, irrep_dtype=dtype)
    inputs = random_inputs(problem, batch=5, seed=3)
    got = first_and_second_order(TensorProduct(problem), **inputs)
    expected = first_and_second_order(e3nn_twin(problem), **inputs)
    for key, op in OP_OF.items():
        assert_close_rel(got[key], expected[key], op, np.dtype(dtype).name)


# --------------------------------------------------------------------------------- random problems

_PARITY = {1: "e", -1: "o"}


@st.composite
def random_problems(draw):
    """A random uvu or uvw problem: l <= 4, multiplicities 1-32, both dtypes, some shared weights."""
    mode = draw(st.sampled_from(["uvu", "uvw"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    irreps1 = draw(
        st.lists(
            st.tuples(st.integers(1, 32), st.integers(0, 4), st.sampled_from([1, -1])), min_size=1, max_size=3
        )
    )
    irreps2 = draw(
        st.lists(
            st.tuples(st.integers(1, 2), st.integers(0, 4), st.sampled_from([1, -1])), min_size=1, max_size=2
        )
    )
    # every output irrep reachable from some pair; uvu keeps the multiplicity of in1
    candidates = []
    for i1, (mul1, l1, p1) in enumerate(irreps1):
        for i2, (_, l2, p2) in enumerate(irreps2):
            for l_out in range(abs(l1 - l2), min(l1 + l2, 4) + 1):
                candidates.append((i1, i2, l_out, p1 * p2, mul1))
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4, unique=True))
    out, instructions = [], []
    for i1, i2, l_out, p_out, mul1 in chosen:
        mul_out = mul1 if mode == "uvu" else draw(st.integers(1, 32))
        instructions.append((i1, i2, len(out), mode, True))
        out.append((mul_out, l_out, p_out))

    def text(irreps):
        return "+".join(f"{mul}x{l}{_PARITY[p]}" for mul, l, p in irreps)

    shared = draw(st.booleans())
    return TPProblem(
        text(irreps1), text(irreps2), text(out), instructions, shared_weights=shared, irrep_dtype=dtype
    )


@settings(max_examples=4)
@given(problem=random_problems(), seed=st.integers(0, 2**16))
def test_random_problems_match_e3nn(problem, seed):
    inputs = random_inputs(problem, batch=3, seed=seed)
    got = first_and_second_order(TensorProduct(problem), **inputs)
    expected = first_and_second_order(e3nn_twin(problem), **inputs)
    dtype = np.dtype(problem.irrep_dtype).name
    for key, op in OP_OF.items():
        assert_close_rel(got[key], expected[key], op, dtype)


# ------------------------------------------------------------------------------ autograd machinery


@pytest.fixture(scope="module")
def small64():
    """A fp64 problem with every mode, unweighted paths and an l = 3 output, and its module."""
    problem = zoo.get("small-mixed", irrep_dtype=np.float64)
    return problem, TensorProduct(problem)


def test_gradcheck_and_gradgradcheck_fp64(small64):
    problem, module = small64
    inputs = random_inputs(problem, batch=3, seed=11)
    args = tuple(inputs[k].requires_grad_() for k in ("x", "y", "weight"))
    assert torch.autograd.gradcheck(module, args)
    assert torch.autograd.gradgradcheck(module, args)


def test_opcheck_on_real_kernels(small64):
    problem, module = small64
    inputs = random_inputs(problem, batch=3, seed=12)
    x, y, w, g = (inputs[k] for k in ("x", "y", "weight", "grad_out"))
    ops, handle = torch.ops.multilinear, module._handle
    torch.library.opcheck(ops.tp_forward.default, (x, y, w, handle))
    torch.library.opcheck(ops.tp_backward.default, (x, y, w, g, handle))
    torch.library.opcheck(ops.tp_double_backward.default, (x, y, w, g, x * 0.5, y * 2.0, None, handle))


def test_equivariance_under_random_rotations(small64):
    """TP(D1 x, D2 y) == D_out TP(x, y), with this package's own Wigner D matrices (not e3nn's)."""
    from multilinear.equivariant.wigner import random_angles

    problem, module = small64
    inputs = random_inputs(problem, batch=4, seed=13)
    for alpha, beta, gamma in zip(*random_angles(3, rng=5)):
        d1, d2, d_out = (
            torch.from_numpy(irreps.D_from_angles(alpha, beta, gamma))
            for irreps in (problem.irreps_in1, problem.irreps_in2, problem.irreps_out)
        )
        rotated_first = module(inputs["x"] @ d1.T, inputs["y"] @ d2.T, inputs["weight"])
        rotated_after = module(inputs["x"], inputs["y"], inputs["weight"]) @ d_out.T
        assert_close_rel(rotated_first.numpy(), rotated_after.numpy(), "tp_forward", "float64")


def edge_features(irreps, r: torch.Tensor) -> torch.Tensor:
    """Features of edge vectors r ``(B, 3)`` for irreps of scalars and vectors only (``0e``, ``1o``).

    Copy n of a scalar is ``exp(-(n + 1) |r|)``; copy n of a vector is ``r / (1 + n |r|)``: smooth, and
    equivariant, so the energy below is a function of geometry like a real model's.
    """
    norm = r.norm(dim=-1, keepdim=True)
    parts = []
    for mul, ir in irreps:
        assert str(ir) in ("0e", "1o"), f"edge_features handles 0e and 1o, not {ir}"
        for n in range(mul):
            parts.append(torch.exp(-(n + 1) * norm) if ir.l == 0 else r / (1.0 + n * norm))
    return torch.cat(parts, dim=-1)


def test_energy_hessian_is_symmetric_with_l3_paths(small64):
    """Forces of E(r) = sum f(TP(x, y(r), W)) have a symmetric Jacobian: v . H u == u . H v.

    The problem has an l = 3 output path (2e x 1o -> 3o, a GPU library's double backward once broke exactly
    this symmetry for l = 3); the Hessian-vector product also equals e3nn's.
    """
    problem, module = small64
    assert problem.irreps_out.lmax == 3
    twin = e3nn_twin(problem)
    gen = torch.Generator().manual_seed(21)
    batch = 6
    x = torch.randn(batch, problem.irreps_in1.dim, generator=gen, dtype=torch.float64)
    w = torch.randn(batch, problem.weight_numel, generator=gen, dtype=torch.float64)
    r0 = torch.randn(batch, 3, generator=gen, dtype=torch.float64)
    u, v = (torch.randn(batch, 3, generator=gen, dtype=torch.float64) for _ in range(2))

    def hessian_times(tp, vectors):
        r = r0.clone().requires_grad_()
        z = tp(x, edge_features(problem.irreps_in2, r), w)
        (grad_e,) = torch.autograd.grad((torch.tanh(z) * z).sum(), r, create_graph=True)
        return [torch.autograd.grad((grad_e * vec).sum(), r, retain_graph=True)[0] for vec in vectors]

    h_u, h_v = hessian_times(module, (u, v))
    v_h_u, u_h_v = float((v * h_u).sum()), float((u * h_v).sum())
    assert abs(v_h_u) > 1e-3  # not trivially zero
    assert abs(v_h_u - u_h_v) <= 1e-10 * max(1.0, abs(v_h_u))
    (h_u_e3nn,) = hessian_times(twin, (u,))
    assert_close_rel(h_u.numpy(), h_u_e3nn.numpy(), "tp_double_backward", "float64")


# ------------------------------------------------------------------------------------ module API


def test_broadcasting_of_leading_dimensions_like_e3nn():
    problem = zoo.get("small-uvw", irrep_dtype=np.float64)
    module, twin = TensorProduct(problem), e3nn_twin(problem)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1, problem.irreps_in1.dim, generator=gen, dtype=torch.float64)
    y = torch.randn(3, problem.irreps_in2.dim, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, problem.weight_numel, generator=gen, dtype=torch.float64)
    got = module(x, y, w)
    assert got.shape == (2, 3, problem.irreps_out.dim)
    assert_close_rel(got.numpy(), twin(x, y, w).numpy(), "tp_forward", "float64")


def test_internal_weights_are_a_standard_normal_parameter_used_like_e3nn():
    problem = zoo.get("small-shared", irrep_dtype=np.float32, internal_weights=True)
    torch.manual_seed(0)
    module = TensorProduct(problem)
    assert isinstance(module.weight, torch.nn.Parameter)
    assert module.weight.shape == (problem.weight_numel,) and module.weight.dtype == torch.float32
    twin = e3nn_twin(problem)
    with torch.no_grad():
        twin.weight.copy_(module.weight)
    inputs = random_inputs(problem, batch=4, seed=1)
    out = module(inputs["x"], inputs["y"])
    assert_close_rel(
        out.detach().numpy(), twin(inputs["x"], inputs["y"]).detach().numpy(), "tp_forward", "float32"
    )
    out.sum().backward()
    assert module.weight.grad is not None and module.weight.grad.shape == (problem.weight_numel,)


@pytest.mark.parametrize("name", ["small-shared", "small-mixed", "mace-large"])
def test_state_dict_moves_between_e3nn_and_ours_strictly(name):
    """e3nn's state loads into ours strictly (its CG-constant buffers skipped); ours into e3nn's non-strictly."""
    for internal in (True, False):
        problem = zoo.get(name, irrep_dtype=np.float32, internal_weights=internal, shared_weights=internal)
        module, twin = TensorProduct(problem), e3nn_twin(problem)
        ours, theirs = module.state_dict(), twin.state_dict()
        assert set(ours) == {"weight", "output_mask"}
        assert set(theirs) - set(ours) and all(
            k.startswith("_compiled_main") for k in set(theirs) - set(ours)
        )
        torch.testing.assert_close(ours["output_mask"], theirs["output_mask"], rtol=0, atol=0)
        assert ours["weight"].shape == theirs["weight"].shape
        module.load_state_dict(theirs, strict=True)
        torch.testing.assert_close(module.weight, twin.weight, rtol=0, atol=0)
        result = twin.load_state_dict(module.state_dict(), strict=False)
        assert not result.unexpected_keys
    # a key that is neither ours nor e3nn's constants is still reported
    with pytest.raises(RuntimeError, match=r"Unexpected key.*bogus"):
        module.load_state_dict({**ours, "bogus": torch.zeros(1)}, strict=True)


@pytest.mark.parametrize("internal", [True, False])
def test_from_e3nn_builds_the_same_module_with_its_weights(internal):
    from e3nn import o3

    torch.manual_seed(3)
    twin = o3.TensorProduct(
        "3x0e+2x1o", "1x0e+1x1o", "3x0e+2x1o+2x1e",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvw", True), (1, 0, 1, "uvu", True), (1, 1, 2, "uvu", False)],
        shared_weights=internal, internal_weights=internal,
    )  # fmt: skip
    module = TensorProduct.from_e3nn(twin)
    assert module.dtype == torch.float32 and module.weight_numel == twin.weight_numel
    inputs = random_inputs(module.problem, batch=5, seed=4)
    args = (inputs["x"], inputs["y"]) if internal else (inputs["x"], inputs["y"], inputs["weight"])
    assert_close_rel(module(*args).detach().numpy(), twin(*args).detach().numpy(), "tp_forward", "float32")
    if internal:
        torch.testing.assert_close(module.weight, twin.weight, rtol=0, atol=0)


def test_output_mask_marks_only_outputs_some_path_writes():
    problem = TPProblem(
        "2x0e+1x1o", "1x0e", "2x0e+1x1o+3x2e", [(0, 0, 0, "uvu", True), (1, 0, 1, "uvu", True, 0.0)]
    )
    mask = TensorProduct(problem).output_mask
    assert mask.tolist() == [1.0, 1.0] + [0.0] * 3 + [0.0] * 15


def test_attributes_and_repr_read_like_e3nn():
    problem = zoo.get("mace-large")
    module = TensorProduct(problem)
    assert module.weight_numel == problem.weight_numel == e3nn_twin(problem).weight_numel
    assert str(module.irreps_in1) == "128x0e+128x1o+128x2e"
    text = repr(module)
    assert "128x0e+128x1o+128x2e x 1x0e+1x1o+1x2e+1x3o -> " in text
    assert "17 paths" in text and "per-sample" in text and "float32" in text


def test_same_problem_shares_one_kernel_handle():
    problem = zoo.get("small-uvu")
    assert TensorProduct(problem)._handle == TensorProduct(problem)._handle


def test_empty_batch_gives_empty_output():
    problem = zoo.get("small-uvu", irrep_dtype=np.float64)
    module = TensorProduct(problem)
    inputs = random_inputs(problem, batch=0, seed=0)
    out = module(inputs["x"], inputs["y"], inputs["weight"])
    assert out.shape == (0, problem.irreps_out.dim)


def test_torch_compile_keeps_one_graph(small64):
    """``fullgraph=True`` fails on any graph break; aot_eager runs the ops' fake impls and autograd.

    (The inductor backend works too, but costs ~25 s of C++ compilation on this machine, too much for the
    suite.)
    """
    problem, module = small64
    inputs = random_inputs(problem, batch=3, seed=2)
    x = inputs["x"].requires_grad_()

    def energy(x, y, w):
        return (module(x, y, w) ** 2).sum()

    compiled = torch.compile(energy, fullgraph=True, backend="aot_eager")
    e_compiled = compiled(x, inputs["y"], inputs["weight"])
    (g_compiled,) = torch.autograd.grad(e_compiled, x)
    e_eager = energy(x, inputs["y"], inputs["weight"])
    (g_eager,) = torch.autograd.grad(e_eager, x)
    assert_close_rel(e_compiled.detach().numpy(), e_eager.detach().numpy(), "tp_forward", "float64")
    assert_close_rel(g_compiled.numpy(), g_eager.numpy(), "tp_backward", "float64")


# ---------------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def small32():
    problem = zoo.get("small-uvw", irrep_dtype=np.float32)
    return problem, TensorProduct(problem), random_inputs(problem, batch=2, seed=0)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda d: {**d, "x": d["x"].double()}, TypeError, r"x must have dtype torch\.float32"),
        (lambda d: {**d, "y": d["y"].numpy()}, TypeError, r"y must be a torch\.Tensor"),
        (lambda d: {**d, "x": d["x"][:, :-1]}, ValueError, r"x must have shape \(\.\.\., 19\)"),
        (lambda d: {**d, "x": d["x"].to("meta")}, ValueError, r"x must be on the CPU"),
        (lambda d: {**d, "weight": d["weight"][:, :-1]}, ValueError, r"weight must have shape"),
        (lambda d: {**d, "weight": d["weight"][0]}, ValueError, r"per-sample weights must have shape"),
        (lambda d: {**d, "weight": None}, ValueError, r"weights must be given"),
        (lambda d: {**d, "y": d["y"][:1].expand(3, -1)}, ValueError, r"do not broadcast"),
    ],
    ids=["dtype", "numpy", "width", "device", "weight-width", "weight-batch", "no-weight", "broadcast"],
)
def test_bad_input_raises_clear_errors(small32, change, error, message):
    _, module, inputs = small32
    args = change({k: inputs[k] for k in ("x", "y", "weight")})
    with pytest.raises(error, match=message):
        module(args["x"], args["y"], args["weight"])


def test_shared_weights_must_be_one_vector():
    problem = zoo.get("small-shared")
    module = TensorProduct(problem)
    inputs = random_inputs(problem, batch=2, seed=0)
    with pytest.raises(ValueError, match=r"shared weights must have shape"):
        module(inputs["x"], inputs["y"], inputs["weight"].expand(2, -1))
