"""TPProblem: coefficients, weight layout and CG against e3nn's ``o3.TensorProduct``; builders; bad input.

The oracle is ``reference_forward(problem.kernel_spec("float64"), x, y, w)`` (a plain einsum over the
spec, ``tests/reference/tensor_product.py``): it agreeing with e3nn's forward to 1e-10 proves the
coefficients, the layouts and the CG blocks that ``kernel_spec`` hands to the kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multilinear.equivariant import (
    Irrep,
    Irreps,
    TPProblem,
    channelwise_problem,
    fully_connected_problem,
    zoo,
)
from multilinear.kernels.tp_spec import TPKernelSpec
from tests.equivariant.e3nn_peer import e3nn_forward, e3nn_o3, random_inputs
from tests.reference.tensor_product import reference_forward
from tests.tolerances import assert_close_rel


def check_against_e3nn(problem: TPProblem, batch: int = 3, seed: int = 0) -> None:
    """Forward of the spec (einsum oracle) equals e3nn's forward; weight counts and coefficients agree."""
    rng = np.random.default_rng(seed)
    x, y, w = random_inputs(problem, batch, rng)
    expected, e3nn_weight_numel = e3nn_forward(problem.e3nn_kwargs(), x, y, w)
    assert problem.weight_numel == e3nn_weight_numel
    actual = reference_forward(problem.kernel_spec("float64"), x, y, w)
    assert np.abs(expected).max() > 0
    assert_close_rel(actual, expected, "tp_forward", "float64")


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_problem_matches_e3nn(name):
    e3nn_o3()
    check_against_e3nn(zoo.get(name, irrep_dtype=np.float64), batch=2)


@pytest.mark.parametrize("irrep_normalization", ["component", "norm", "none"])
@pytest.mark.parametrize("path_normalization", ["element", "path", "none"])
@pytest.mark.parametrize("name", ["small-mixed", "small-shared"])
def test_normalisations_match_e3nn(name, irrep_normalization, path_normalization):
    e3nn_o3()
    problem = zoo.get(name, irrep_normalization=irrep_normalization, path_normalization=path_normalization)
    check_against_e3nn(problem)


def test_variances_match_e3nn():
    e3nn_o3()
    base = zoo.get("small-mixed")
    problem = TPProblem(
        base.irreps_in1,
        base.irreps_in2,
        base.irreps_out,
        base.input_instructions,
        in1_var=[0.5, 2.0, 1.5],
        in2_var=[3.0, 0.25],
        out_var=[1.0, 2.0, 0.5, 4.0, 1.0, 3.0],
    )
    check_against_e3nn(problem)


def test_coefficients_equal_e3nn_instructions():
    o3 = e3nn_o3()
    for name in ("small-mixed", "mace-medium", "diffdock-l1"):
        problem = zoo.get(name)
        theirs = o3.TensorProduct(**problem.e3nn_kwargs())
        assert len(theirs.instructions) == len(problem.instructions)
        for ours, their in zip(problem.instructions, theirs.instructions):
            assert tuple(ours[:5]) == tuple(their[:5])
            assert ours.path_shape == tuple(their.path_shape)
            assert ours.path_weight == pytest.approx(their.path_weight, rel=1e-15)


@pytest.mark.parametrize("name", ["small-mixed", "small-shared", "mace-medium"])
def test_problem_from_an_e3nn_module(name):
    o3 = e3nn_o3()
    from multilinear.equivariant import problem_from_e3nn

    original = zoo.get(name, irrep_normalization="norm", path_normalization="path")
    module = o3.TensorProduct(**original.e3nn_kwargs())
    problem = problem_from_e3nn(module, irrep_dtype=np.float64)
    assert problem.weight_numel == module.weight_numel and problem.shared_weights == original.shared_weights
    for ours, theirs in zip(problem.instructions, module.instructions):
        assert ours.path_weight == pytest.approx(theirs.path_weight, rel=1e-15, abs=0)
    x, y, w = random_inputs(problem, 3, np.random.default_rng(1))
    expected, _ = e3nn_forward(original.e3nn_kwargs(), x, y, w)  # the original module's options
    assert_close_rel(
        reference_forward(problem.kernel_spec("float64"), x, y, w), expected, "tp_forward", "float64"
    )
    with pytest.raises(TypeError, match="TensorProduct-like"):
        problem_from_e3nn(object())


# --- random problems (hypothesis) ----------------------------------------------------------------------

irreps_strategy = st.lists(
    st.tuples(st.integers(1, 32), st.integers(0, 4), st.sampled_from([1, -1])), min_size=1, max_size=3
).map(lambda items: Irreps([(mul, (degree, parity)) for mul, degree, parity in items]))
edge_strategy = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 3), st.sampled_from([1, -1])), min_size=1, max_size=3
).map(lambda items: Irreps([(mul, (degree, parity)) for mul, degree, parity in items]))
normalisation_strategy = st.sampled_from(["component", "norm"])
path_strategy = st.sampled_from(["element", "path"])


@settings(max_examples=12)
@given(
    in1=irreps_strategy,
    in2=edge_strategy,
    target=edge_strategy,
    irrep_normalization=normalisation_strategy,
    path_normalization=path_strategy,
    shared=st.booleans(),
)
def test_random_channelwise_problems_match_e3nn(
    in1, in2, target, irrep_normalization, path_normalization, shared
):
    e3nn_o3()
    problem = channelwise_problem(
        in1,
        in2,
        target,
        irrep_normalization=irrep_normalization,
        path_normalization=path_normalization,
        shared_weights=shared,
    )
    if not problem.instructions:  # no allowed triple: an empty product
        assert problem.weight_numel == 0 and problem.kernel_spec().paths == () and problem.irreps_out.dim == 0
        return
    check_against_e3nn(problem, batch=2)


@settings(max_examples=12)
@given(
    in1=irreps_strategy,
    in2=edge_strategy,
    out=irreps_strategy,
    irrep_normalization=normalisation_strategy,
    path_normalization=path_strategy,
)
def test_random_fully_connected_problems_match_e3nn(in1, in2, out, irrep_normalization, path_normalization):
    e3nn_o3()
    problem = fully_connected_problem(
        in1, in2, out, irrep_normalization=irrep_normalization, path_normalization=path_normalization
    )
    if not problem.instructions:  # no output irrep reachable from in1 x in2
        assert problem.weight_numel == 0 and problem.kernel_spec().paths == ()
        assert not any(ir_out in tuple(ir1 * ir2) for _, ir1 in in1 for _, ir2 in in2 for _, ir_out in out)
        return
    check_against_e3nn(problem, batch=2)


# --- builders ------------------------------------------------------------------------------------------


def test_mace_large_shape():
    problem = zoo.get("mace-large")
    assert len(problem.instructions) == 17
    assert all(ins.connection_mode == "uvu" and ins.has_weight for ins in problem.instructions)
    assert problem.irreps_out.regroup() == "384x0e+640x1o+640x2e+512x3o"
    assert problem.irreps_out.simplify() == "384x0e+640x1o+640x2e+512x3o"
    spec = problem.kernel_spec()
    assert sum(len(path.cg) for path in spec.paths) == 215
    assert problem.weight_numel == 17 * 128
    # the figures quoted for this problem in the project's MEASURED.md: 0.64 GFLOP and ~497 MB forward
    # per sample: 2 x 215 CG nonzeros x 128 channels, plus one weight product per output entry (128 per (u, k))
    assert problem.forward_flops(10_000) == 10_000 * (2 * 215 * 128 + problem.irreps_out.dim)
    assert round(problem.forward_flops(10_000) / 1e9, 2) == 0.64
    assert round(problem.forward_bytes(10_000) / 1e6) == 497
    assert problem.forward_bytes(10_000, "float64") == 2 * problem.forward_bytes(10_000)


def test_channelwise_construction_by_hand():
    # 2x0e+2x1o times 0e+1o, outputs filtered to 0e+1o; paths enumerated in1-major:
    # (0e,0e)->0e [k0], (0e,1o)->1o [k1], (1o,0e)->1o [k2], (1o,1o)->0e [k3] (1e, 2e filtered out)
    problem = channelwise_problem("2x0e+2x1o", "0e+1o", "0e+1o")
    assert problem.irreps_out == "2x0e+2x0e+2x1o+2x1o"  # sorted stably: k0, k3, k1, k2
    got = [tuple(ins[:4]) for ins in problem.instructions]
    assert got == [(0, 0, 0, "uvu"), (0, 1, 2, "uvu"), (1, 0, 3, "uvu"), (1, 1, 1, "uvu")]
    for ins in problem.instructions:
        ir1, ir2 = problem.irreps_in1[ins.i_in1].ir, problem.irreps_in2[ins.i_in2].ir
        assert problem.irreps_out[ins.i_out].ir in tuple(ir1 * ir2)


def test_fully_connected_construction():
    problem = fully_connected_problem("2x0e+1x1o", "1x1o", "3x1o+2x0e+1x2e+1x1e")
    got = [tuple(ins[:4]) for ins in problem.instructions]
    assert got == [(0, 0, 0, "uvw"), (1, 0, 1, "uvw"), (1, 0, 2, "uvw"), (1, 0, 3, "uvw")]
    assert problem.weight_numel == 2 * 1 * 3 + 1 * 1 * 2 + 1 * 1 * 1 + 1 * 1 * 1
    assert not problem.shared_weights and not problem.internal_weights


@pytest.mark.parametrize("name", ["diffdock-l2", "small-uvw"])
def test_fully_connected_equals_e3nns_fully_connected_tensor_product(name):
    o3 = e3nn_o3()
    ours = zoo.get(name)
    theirs = o3.FullyConnectedTensorProduct(
        str(ours.irreps_in1), str(ours.irreps_in2), str(ours.irreps_out), shared_weights=False
    )
    assert [tuple(ins[:5]) for ins in ours.instructions] == [tuple(ins[:5]) for ins in theirs.instructions]
    assert [ins.path_weight for ins in ours.instructions] == pytest.approx(
        [ins.path_weight for ins in theirs.instructions], rel=1e-15
    )
    assert ours.weight_numel == theirs.weight_numel


# --- kernel spec -------------------------------------------------------------------------------------


def test_kernel_spec_layout():
    problem = zoo.get("small-mixed")
    spec = problem.kernel_spec()
    assert isinstance(spec, TPKernelSpec)
    assert spec.dtype == "float32" and problem.kernel_spec("float64").dtype == "float64"
    assert problem.kernel_spec(np.float64) == problem.kernel_spec("float64")
    assert problem.kernel_spec() is problem.kernel_spec()  # cached
    assert (spec.dim_in1, spec.dim_in2, spec.dim_out) == (
        problem.irreps_in1.dim,
        problem.irreps_in2.dim,
        problem.irreps_out.dim,
    )
    assert spec.weight_numel == problem.weight_numel and not spec.shared_weights
    weights = problem.weight_slices()
    for path, ins, weight_range in zip(spec.paths, problem.instructions, weights):
        assert path.mode == ins.connection_mode and path.coefficient == ins.path_weight
        assert path.offset_in1 == problem.irreps_in1.slices()[ins.i_in1].start
        assert path.offset_in2 == problem.irreps_in2.slices()[ins.i_in2].start
        assert path.offset_out == problem.irreps_out.slices()[ins.i_out].start
        assert path.weight_offset == (-1 if weight_range is None else weight_range.start)
        assert path.weights_per_path == (
            0 if weight_range is None else weight_range.stop - weight_range.start
        )
        assert all(abs(value) > 1e-12 for *_, value in path.cg)
    assert sum(path.weights_per_path for path in spec.paths) == spec.weight_numel
    assert spec.key() == problem.kernel_spec("float32").key() != problem.kernel_spec("float64").key()


def test_zero_multiplicity_paths_are_left_out():
    problem = TPProblem("0x0e+2x1o", "1x1o", "2x0e+0x1o", [(0, 0, 1, "uvw", True), (1, 0, 0, "uvw", True)])
    assert problem.weight_numel == 2 * 1 * 2
    spec = problem.kernel_spec()
    assert len(spec.paths) == 1 and spec.paths[0].weight_offset == 0


def test_problem_is_hashable_and_equal_by_value():
    a, b = zoo.get("small-uvu"), zoo.get("small-uvu")
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != zoo.get("small-uvu", irrep_dtype=np.float64)
    with pytest.raises(AttributeError):
        a.weight_numel = 3  # frozen
    assert "paths" in repr(a)


def test_none_normalisations_mean_e3nn_defaults():
    problem = TPProblem(
        "2x1o", "1x1o", "2x0e", [(0, 0, 0, "uvu", True)], irrep_normalization=None, path_normalization=None
    )
    assert (problem.irrep_normalization, problem.path_normalization) == ("component", "element")


def test_e3nn_kwargs_round_trip():
    problem = zoo.get("small-mixed", irrep_normalization="norm", path_normalization="path")
    kwargs = problem.e3nn_kwargs()
    again = TPProblem(**kwargs, irrep_dtype=problem.irrep_dtype)
    assert again == problem
    assert zoo.e3nn_args("small-mixed") == zoo.get("small-mixed").e3nn_kwargs()


def test_instruction_path_weight_and_default():
    # "component", "element": coefficient sqrt(dim_out / sum over paths into the output of num_elements)
    problem = TPProblem("4x1o", "3x1o", "4x0e+4x2e", [(0, 0, 0, "uvu", True), (0, 0, 1, "uvu", True, 0.25)])
    first, second = problem.instructions
    assert first.path_weight == pytest.approx(math.sqrt(1 / 3))
    assert second.path_weight == pytest.approx(math.sqrt(5 / 3 * 0.25))
    assert problem.input_instructions[0] == (0, 0, 0, "uvu", True, 1.0)


# --- bad input ---------------------------------------------------------------------------------------

GOOD = ("2x0e+2x1o", "1x1o", "2x1o+2x0e")


@pytest.mark.parametrize(
    "instruction, error, fragment",
    [
        ((0, 0, 1, "uvw", True), ValueError, "parity"),
        ((3, 0, 0, "uvw", True), ValueError, "i_in1=3 is out of range"),
        ((0, 1, 0, "uvw", True), ValueError, "i_in2=1 is out of range"),
        ((0, 0, 5, "uvw", True), ValueError, "i_out=5 is out of range"),
        ((0, 0, 0, "uvx", True), ValueError, "unknown connection mode 'uvx'"),
        ((0, 0, 0, "uvuv", True), NotImplementedError, "'uvuv'"),
        ((0, 0, 0, "uuw", True), NotImplementedError, "'uuw'"),
        ((0, 0, 0, "uvw", "yes"), TypeError, "has_weight"),
        ((0, 0, 0, "uvw", False), ValueError, "needs has_weight=True"),
        ((0, 0, 0, "uvw", True, -1.0), ValueError, "path_weight"),
        ((0, 0, 0, "uvw", True, "big"), TypeError, "path_weight"),
        ((0, 0), ValueError, "instruction 0 must be a tuple"),
        ((0.0, 0, 0, "uvw", True), TypeError, "i_in1 must be an integer"),
    ],
)
def test_bad_instructions(instruction, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        TPProblem(*GOOD, [instruction])


def test_selection_and_multiplicity_rules():
    with pytest.raises(ValueError, match="triangle rule"):
        TPProblem("1x0e", "1x1o", "1x2o", [(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="parity rule"):
        TPProblem("1x1o", "1x1o", "1x1o", [(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="mode 'uvu' needs mul"):
        TPProblem("2x0e", "3x0e", "3x0e", [(0, 0, 0, "uvu", True)])
    with pytest.raises(ValueError, match="mode 'uvv' needs mul"):
        TPProblem("2x0e", "3x0e", "2x0e", [(0, 0, 0, "uvv", True)])
    with pytest.raises(ValueError, match="mode 'uuu' needs equal"):
        TPProblem("2x0e", "2x0e", "3x0e", [(0, 0, 0, "uuu", True)])


def test_bad_options():
    instructions = [(1, 0, 1, "uvw", True)]
    with pytest.raises(ValueError, match="irrep_normalization"):
        TPProblem(*GOOD, instructions, irrep_normalization="unit")
    with pytest.raises(ValueError, match="path_normalization"):
        TPProblem(*GOOD, instructions, path_normalization="paths")
    with pytest.raises(ValueError, match="internal_weights=True needs shared_weights=True"):
        TPProblem(*GOOD, instructions, internal_weights=True)
    with pytest.raises(TypeError, match="shared_weights must be a bool"):
        TPProblem(*GOOD, instructions, shared_weights=1)
    with pytest.raises(TypeError, match="irrep_dtype"):
        TPProblem(*GOOD, instructions, irrep_dtype=np.int32)
    with pytest.raises(ValueError, match="in1_var must have one value per entry"):
        TPProblem(*GOOD, instructions, in1_var=[1.0])
    with pytest.raises(ValueError, match="out_var must hold finite"):
        TPProblem(*GOOD, instructions, out_var=[1.0, float("nan")])
    with pytest.raises(TypeError, match="instructions must be a sequence"):
        TPProblem(*GOOD, "0, 0, 0, uvw")
    with pytest.raises(ValueError, match="cannot parse"):
        TPProblem("2x0e+2x1q", "1x1o", "1x1o", [])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        TPProblem(*GOOD, instructions).kernel_spec("float16")


def test_zoo_lookup():
    assert "mace-large" in zoo.names() and "small-uvu" in zoo.names(production=False)
    assert set(zoo.names(production=True)) | set(zoo.names(production=False)) == set(zoo.names())
    assert zoo.get("small-shared").shared_weights
    assert zoo.get("mace-large", irrep_dtype=np.float64).irrep_dtype is np.float64
    assert zoo.entry("diffdock-l2").source
    with pytest.raises(ValueError, match="no problem named 'mace-xl'"):
        zoo.get("mace-xl")


def test_irrep_objects_accepted_everywhere():
    problem = TPProblem(Irreps("1x1o"), [(1, Irrep("1o"))], "1x0e", [(0, 0, 0, "uvw", True)])
    assert problem.irreps_in2 == "1x1o" and problem.weight_numel == 1
