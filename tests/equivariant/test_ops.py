"""numpy front ends ``tensor_product`` / ``tensor_product_backward``: against the einsum oracle, equivariance
under our own Wigner D matrices, and input validation.

Problems are the small zoo ones the torch tests also use, so their compiled kernels are shared through the
disk cache.
"""

from __future__ import annotations

import numpy as np
import pytest

from multilinear.equivariant import (
    Irreps,
    random_angles,
    tensor_product,
    tensor_product_backward,
    tensor_product_double_backward,
    zoo,
)
from tests.equivariant.e3nn_peer import random_inputs
from tests.reference.tensor_product import reference_backward, reference_double_backward, reference_forward
from tests.tolerances import assert_close_rel

CASES = [("small-mixed", "float64"), ("small-mixed", "float32"), ("small-shared", "float32")]


@pytest.mark.parametrize("name, dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_forward_and_backward_match_the_oracle(name, dtype):
    problem = zoo.get(name, irrep_dtype=dtype)
    rng = np.random.default_rng(3)
    x, y, w = (a.astype(dtype) for a in random_inputs(problem, 7, rng))
    grad_out = rng.standard_normal((7, problem.irreps_out.dim)).astype(dtype)
    spec = problem.kernel_spec("float64")

    z = tensor_product(problem, x, y, w)
    assert z.dtype == np.dtype(dtype) and z.shape == (7, problem.irreps_out.dim)
    assert_close_rel(z, reference_forward(spec, x, y, w), "tp_forward", dtype)

    grads = tensor_product_backward(problem, x, y, w, grad_out)
    expected = reference_backward(spec, x, y, w, grad_out)
    for got, want, like in zip((grads.grad_x, grads.grad_y, grads.grad_w), expected, (x, y, w)):
        assert got.shape == like.shape and got.dtype == np.dtype(dtype)
        assert_close_rel(got, want, "tp_backward", dtype)


def test_equivariant_under_rotations_and_inversion():
    """z(D1 x, D2 y, w) == D_out z(x, y, w) for random rotations, with and without inversion (O(3))."""
    problem = zoo.get("small-uvu", irrep_dtype="float64")
    rng = np.random.default_rng(5)
    x, y, w = random_inputs(problem, 4, rng)
    z = tensor_product(problem, x, y, w)
    alpha, beta, gamma = random_angles(3, rng=rng)
    for n in range(3):
        for parity in (0, 1):
            angles = (alpha[n], beta[n], gamma[n])
            d_in1, d_in2, d_out = (
                irreps.D_from_angles(*angles, k=parity)
                for irreps in (problem.irreps_in1, problem.irreps_in2, problem.irreps_out)
            )
            rotated = tensor_product(problem, x @ d_in1.T, y @ d_in2.T, w)
            assert_close_rel(rotated, z @ d_out.T, "tp_forward", "float64")


def test_leading_dimensions_cast_and_layout():
    problem = zoo.get("small-mixed", irrep_dtype="float32")
    rng = np.random.default_rng(8)
    x, y, w = random_inputs(problem, 6, rng)  # float64: converted to the problem's float32
    flat = tensor_product(problem, x, y, w)
    assert flat.dtype == np.float32
    shaped = tensor_product(problem, x.reshape(2, 3, -1), y.reshape(2, 3, -1), w.reshape(2, 3, -1))
    assert shaped.shape == (2, 3, problem.irreps_out.dim)
    np.testing.assert_array_equal(shaped.reshape(6, -1), flat)
    # non-contiguous inputs are copied
    x_strided = np.asfortranarray(x)
    np.testing.assert_array_equal(tensor_product(problem, x_strided, y, w), flat)
    grads = tensor_product_backward(
        problem, x.reshape(2, 3, -1), y.reshape(2, 3, -1), w.reshape(2, 3, -1), shaped
    )
    assert grads.grad_x.shape == (2, 3, problem.irreps_in1.dim) and grads.grad_w.shape == (
        2,
        3,
        problem.weight_numel,
    )
    buffer = np.full((2, 3, problem.irreps_out.dim), np.nan, dtype=np.float32)
    assert (
        tensor_product(problem, x.reshape(2, 3, -1), y.reshape(2, 3, -1), w.reshape(2, 3, -1), out=buffer)
        is buffer
    )
    np.testing.assert_array_equal(buffer, shaped)
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous float32 array"):
        tensor_product(problem, x, y, w, out=np.empty((6, problem.irreps_out.dim), np.float64))
    with pytest.raises(ValueError, match="not C-contiguous"):
        tensor_product(problem, x, y, w, out=np.empty((problem.irreps_out.dim, 6), np.float32).T)
    single = tensor_product(problem, x, y, w, threads=1)
    np.testing.assert_allclose(single, flat, rtol=1e-6, atol=1e-6)


def test_empty_batch():
    problem = zoo.get("small-shared", irrep_dtype="float32")
    x = np.zeros((0, problem.irreps_in1.dim), np.float32)
    y = np.zeros((0, problem.irreps_in2.dim), np.float32)
    w = np.ones(problem.weight_numel, np.float32)
    assert tensor_product(problem, x, y, w).shape == (0, problem.irreps_out.dim)
    grads = tensor_product_backward(problem, x, y, w, np.zeros((0, problem.irreps_out.dim), np.float32))
    assert grads.grad_w.shape == (problem.weight_numel,) and not grads.grad_w.any()


def test_bad_inputs_raise_clear_errors():
    problem = zoo.get("small-mixed", irrep_dtype="float32")
    x, y, w = (a.astype(np.float32) for a in random_inputs(problem, 2, np.random.default_rng(0)))
    with pytest.raises(TypeError, match="TPProblem"):
        tensor_product("small-mixed", x, y, w)
    with pytest.raises(TypeError, match="x must hold real floating-point"):
        tensor_product(problem, x.astype(np.int64), y, w)
    with pytest.raises(TypeError, match="y must hold real floating-point"):
        tensor_product(problem, x, y.astype(np.complex64), w)
    with pytest.raises(
        ValueError, match=r"x must have shape \(\.\.\., 22\) \(irreps_in1 = 3x0e\+3x1o\+2x2e\)"
    ):
        tensor_product(problem, x[:, :-1], y, w)
    with pytest.raises(ValueError, match="same leading shape"):
        tensor_product(problem, x, y[:1], w)
    with pytest.raises(ValueError, match="pass w"):
        tensor_product(problem, x, y)
    with pytest.raises(ValueError, match="per-sample weights w must have shape"):
        tensor_product(problem, x, y, w[0])
    with pytest.raises(ValueError, match="x has a non-finite value"):
        bad = x.copy()
        bad[1, 2] = np.nan
        tensor_product(problem, bad, y, w, check_inputs_finite=True)
    with pytest.raises(ValueError, match="grad_out must have shape"):
        tensor_product_backward(problem, x, y, w, np.zeros((2, 3), np.float32))
    shared = zoo.get("small-shared", irrep_dtype="float32")
    xs, ys, ws = random_inputs(shared, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shared weights w must have shape"):
        tensor_product(shared, xs, ys, np.stack([ws, ws]))


def test_problem_without_weights_needs_no_w():
    from multilinear.equivariant import TPProblem

    problem = TPProblem("2x1o", "2x1o", "2x0e+2x1e", [(0, 0, 0, "uuu", False), (0, 0, 1, "uvu", False)])
    assert problem.weight_numel == 0
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    y = rng.standard_normal((3, 6)).astype(np.float32)
    z = tensor_product(problem, x, y)
    expected = reference_forward(problem.kernel_spec("float64"), x, y, np.zeros((3, 0)))
    assert_close_rel(z, expected, "tp_forward", "float32")
    assert Irreps(problem.irreps_out).dim == z.shape[1]


@pytest.mark.parametrize("name, dtype", [("small-mixed", "float64"), ("small-shared", "float32")])
def test_double_backward_matches_the_oracle(name, dtype):
    problem = zoo.get(name, irrep_dtype=dtype)
    rng = np.random.default_rng(11)
    x, y, w = (a.astype(dtype) for a in random_inputs(problem, 5, rng))
    gg_x, gg_y, gg_w = (a.astype(dtype) for a in random_inputs(problem, 5, rng))
    grad_out = rng.standard_normal((5, problem.irreps_out.dim)).astype(dtype)
    spec = problem.kernel_spec("float64")
    for keep in ((True, True, True), (True, False, False), (False, True, False), (False, False, True)):
        ggs = [g if k else None for g, k in zip((gg_x, gg_y, gg_w), keep)]
        got = tensor_product_double_backward(problem, x, y, w, grad_out, *ggs)
        want = reference_double_backward(spec, x, y, w, grad_out, *ggs)
        for actual, expected in zip((got.grad_x, got.grad_y, got.grad_w, got.grad_grad_out), want):
            assert actual.dtype == np.dtype(dtype)
            assert_close_rel(actual, expected, "tp_double_backward", dtype)
    with pytest.raises(ValueError, match="gg_w must have shape"):
        tensor_product_double_backward(problem, x, y, w, grad_out, gg_w=gg_x)


def test_assert_equivariant_helper_accepts_the_product_and_rejects_a_broken_one():
    from multilinear.equivariant.testing import assert_equivariant, equivariance_error

    problem = zoo.get("small-uvu", irrep_dtype="float64")
    w = np.random.default_rng(2).standard_normal((4, problem.weight_numel))
    irreps = [problem.irreps_in1, problem.irreps_in2]

    def product(x, y):
        return tensor_product(problem, x, y, w)

    assert_equivariant(product, irreps, problem.irreps_out, batch=4, rng=0)

    def broken(x, y):  # squaring every component breaks equivariance of the l >= 1 parts
        return product(x, y) ** 2

    assert equivariance_error(broken, irreps, problem.irreps_out, batch=4, rng=0) > 1e-3
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(broken, irreps, problem.irreps_out, batch=4, rng=0)


def test_rotate_equals_the_dense_matrix():
    irreps = Irreps("3x0e+2x1o+1x2e+2x3o")
    features = np.random.default_rng(4).standard_normal((5, irreps.dim))
    angles = (0.4, 1.3, -2.0)
    for k in (0, 1):
        dense = features @ irreps.D_from_angles(*angles, k=k).T
        np.testing.assert_allclose(irreps.rotate(features, *angles, k=k), dense, atol=1e-13)
    with pytest.raises(ValueError, match="features must have shape"):
        irreps.rotate(features[:, :-1], *angles)
