"""numpy front ends of the tensor product: validate, convert, then call the generated kernels.

>>> import numpy as np
>>> from multilinear.equivariant import zoo, tensor_product
>>> problem = zoo.get("small-uvu")
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((10, problem.irreps_in1.dim), dtype=np.float32)
>>> y = rng.standard_normal((10, problem.irreps_in2.dim), dtype=np.float32)
>>> w = rng.standard_normal((10, problem.weight_numel), dtype=np.float32)
>>> tensor_product(problem, x, y, w).shape
(10, 224)

Cast rule: inputs are converted to the problem's ``irrep_dtype`` (float32 or float64) when they hold real
floating-point numbers of another precision, and made C-contiguous, at the cost of a copy; integer, bool or
complex arrays raise ``TypeError``. Leading dimensions ``(...)`` are allowed and must be equal for x, y and
per-sample weights (no broadcasting); results have the same leading shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from multilinear._core.threads import thread_limits
from multilinear._core.validation import check_finite
from multilinear.equivariant.problem import TPProblem


@dataclass(frozen=True)
class TPGradients:
    """Gradients of ``<grad_out, tensor_product(problem, x, y, w)>``.

    Attributes
    ----------
    grad_x : numpy.ndarray
        ``(..., irreps_in1.dim)``.
    grad_y : numpy.ndarray
        ``(..., irreps_in2.dim)``.
    grad_w : numpy.ndarray
        ``(..., weight_numel)`` per sample, or ``(weight_numel,)`` summed over the batch for shared weights.
    """

    grad_x: np.ndarray
    grad_y: np.ndarray
    grad_w: np.ndarray


def _as_features(array: Any, name: str, dtype: np.dtype, width: int, what: str) -> np.ndarray:
    a = np.asarray(array)
    if not (np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{name} must hold real floating-point numbers, got dtype {a.dtype}")
    if a.ndim < 1 or a.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}) ({what}), got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def _check_problem(problem: Any) -> TPProblem:
    if not isinstance(problem, TPProblem):
        raise TypeError(f"problem must be a multilinear.equivariant.TPProblem, got {type(problem).__name__}")
    return problem


def _prepare(
    problem: TPProblem, x: Any, y: Any, w: Any, check_inputs_finite: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validated ``(x (B, d1), y (B, d2), w (B, n) or (n,), leading shape)`` in the problem's dtype."""
    dtype = np.dtype(problem.irrep_dtype)
    x = _as_features(x, "x", dtype, problem.irreps_in1.dim, f"irreps_in1 = {problem.irreps_in1}")
    y = _as_features(y, "y", dtype, problem.irreps_in2.dim, f"irreps_in2 = {problem.irreps_in2}")
    lead = x.shape[:-1]
    if y.shape[:-1] != lead:
        raise ValueError(f"x and y must have the same leading shape, got {x.shape} and {y.shape}")
    batch = int(np.prod(lead, dtype=np.int64))
    n = problem.weight_numel
    if w is None:
        if n > 0:
            raise ValueError(f"this problem has {n} weights: pass w")
        w = np.zeros((0,) if problem.shared_weights else (*lead, 0), dtype=dtype)
    if problem.shared_weights:
        w = _as_features(w, "w", dtype, n, "shared weights, (weight_numel,)")
        if w.ndim != 1:
            raise ValueError(f"shared weights w must have shape ({n},), got {w.shape}")
    else:
        w = _as_features(w, "w", dtype, n, "per-sample weights, (..., weight_numel)")
        if w.shape[:-1] != lead:
            raise ValueError(
                f"per-sample weights w must have shape {(*lead, n)} (the leading shape of x), got {w.shape}"
            )
        w = w.reshape(batch, n)
    if check_inputs_finite:
        for name, array in (("x", x), ("y", y), ("w", w)):
            check_finite(array, name)
    return x.reshape(batch, problem.irreps_in1.dim), y.reshape(batch, problem.irreps_in2.dim), w, lead


def _kernels(problem: TPProblem):
    from multilinear.kernels.tensor_product import get_tp_kernels

    return get_tp_kernels(problem.kernel_spec())


def tensor_product(
    problem: TPProblem,
    x: Any,
    y: Any,
    w: Any = None,
    *,
    out: np.ndarray | None = None,
    threads: int | None = None,
    check_inputs_finite: bool = False,
) -> np.ndarray:
    """The tensor product ``z`` of ``problem``: the same values as e3nn's ``o3.TensorProduct(...)(x, y, w)``.

    Parameters
    ----------
    problem : TPProblem
    x : array_like
        ``(..., irreps_in1.dim)``.
    y : array_like
        ``(..., irreps_in2.dim)``, same leading shape as ``x``.
    w : array_like, optional
        ``(..., weight_numel)`` per sample, or ``(weight_numel,)`` when ``problem.shared_weights``; may be
        omitted only when the problem has no weights.
    out : numpy.ndarray, optional
        A C-contiguous ``(..., irreps_out.dim)`` array of ``problem.irrep_dtype`` to write into (it is
        overwritten and returned). Reusing one buffer avoids the page faults of a fresh large output,
        which can cost as much as the product itself.
    threads : int, optional
        numba threads for this call (restored after); default: numba's current setting.
    check_inputs_finite : bool
        Raise ``ValueError`` on NaN or infinity in the inputs (one extra pass over them).

    Returns
    -------
    numpy.ndarray
        ``(..., irreps_out.dim)`` in ``problem.irrep_dtype`` (``out`` when given).
    """
    problem = _check_problem(problem)
    x2, y2, w2, lead = _prepare(problem, x, y, w, check_inputs_finite)
    shape = (*lead, problem.irreps_out.dim)
    if out is None:
        result = np.empty(shape, dtype=x2.dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if (
            out.dtype != x2.dtype
            or out.shape != shape
            or not out.flags.c_contiguous
            or not out.flags.writeable
        ):
            raise ValueError(
                f"out must be a writeable C-contiguous {x2.dtype} array of shape {shape}, got "
                f"{out.dtype} {out.shape}{'' if out.flags.c_contiguous else ' (not C-contiguous)'}"
            )
        result = out
    if x2.shape[0] == 0:
        return result
    kernels = _kernels(problem)
    with thread_limits(threads):
        kernels.forward(x2, y2, w2, result.reshape(x2.shape[0], problem.irreps_out.dim))
    return result


def tensor_product_backward(
    problem: TPProblem,
    x: Any,
    y: Any,
    w: Any,
    grad_out: Any,
    *,
    threads: int | None = None,
    check_inputs_finite: bool = False,
) -> TPGradients:
    """Gradients of ``<grad_out, tensor_product(problem, x, y, w)>`` with respect to x, y and w.

    Parameters
    ----------
    problem, x, y, w, threads, check_inputs_finite
        As in :func:`tensor_product` (``w`` may be None for a problem without weights).
    grad_out : array_like
        ``(..., irreps_out.dim)``, same leading shape as ``x``.

    Returns
    -------
    TPGradients
        ``grad_x (..., irreps_in1.dim)``, ``grad_y (..., irreps_in2.dim)`` and ``grad_w`` with the shape of
        ``w`` (``(weight_numel,)``, summed over the batch, for shared weights), in ``problem.irrep_dtype``.
    """
    problem = _check_problem(problem)
    x2, y2, w2, lead = _prepare(problem, x, y, w, check_inputs_finite)
    dtype = x2.dtype
    g = _as_features(
        grad_out, "grad_out", dtype, problem.irreps_out.dim, f"irreps_out = {problem.irreps_out}"
    )
    if g.shape[:-1] != lead:
        raise ValueError(f"grad_out must have the leading shape of x {lead}, got {g.shape}")
    g = g.reshape(x2.shape[0], problem.irreps_out.dim)
    if check_inputs_finite:
        check_finite(g, "grad_out")
    grad_x, grad_y, grad_w = np.empty_like(x2), np.empty_like(y2), np.empty_like(w2)
    if x2.shape[0] == 0:
        grad_w[...] = 0  # shared weights: an empty sum
    else:
        kernels = _kernels(problem)
        with thread_limits(threads):
            kernels.backward(x2, y2, w2, g, grad_x, grad_y, grad_w)
    if not problem.shared_weights:
        grad_w = grad_w.reshape(*lead, problem.weight_numel)
    return TPGradients(
        grad_x=grad_x.reshape(*lead, problem.irreps_in1.dim),
        grad_y=grad_y.reshape(*lead, problem.irreps_in2.dim),
        grad_w=grad_w,
    )


@dataclass(frozen=True)
class TPDoubleGradients:
    """Gradients of ``L = <gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` (the backward's outputs).

    Attributes
    ----------
    grad_x, grad_y, grad_w : numpy.ndarray
        ``dL/dx``, ``dL/dy``, ``dL/dw``, shaped like x, y and w.
    grad_grad_out : numpy.ndarray
        ``dL/dgrad_out``, ``(..., irreps_out.dim)``.
    """

    grad_x: np.ndarray
    grad_y: np.ndarray
    grad_w: np.ndarray
    grad_grad_out: np.ndarray


def tensor_product_double_backward(
    problem: TPProblem,
    x: Any,
    y: Any,
    w: Any,
    grad_out: Any,
    gg_x: Any = None,
    gg_y: Any = None,
    gg_w: Any = None,
    *,
    threads: int | None = None,
) -> TPDoubleGradients:
    """Second-order term of autograd: differentiate the backward's outputs against ``gg_x, gg_y, gg_w``.

    With ``(grad_x, grad_y, grad_w) = tensor_product_backward(problem, x, y, w, grad_out)``, returns the
    gradients of ``<gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` with respect to x, y, w and grad_out
    (what ``torch.autograd.grad(..., create_graph=True)`` needs for force training).

    Parameters
    ----------
    problem, x, y, w, grad_out, threads
        As in :func:`tensor_product_backward`.
    gg_x, gg_y, gg_w : array_like, optional
        Shaped like x, y and w; ``None`` means zero.

    Returns
    -------
    TPDoubleGradients
    """
    problem = _check_problem(problem)
    x2, y2, w2, lead = _prepare(problem, x, y, w, False)
    dtype, batch = x2.dtype, x2.shape[0]
    g = _as_features(
        grad_out, "grad_out", dtype, problem.irreps_out.dim, f"irreps_out = {problem.irreps_out}"
    )
    if g.shape[:-1] != lead:
        raise ValueError(f"grad_out must have the leading shape of x {lead}, got {g.shape}")
    g = g.reshape(batch, problem.irreps_out.dim)

    def second_order_input(array: Any, name: str, shape: tuple[int, ...], flat_shape: tuple[int, ...]):
        if array is None:
            return None
        a = np.asarray(array)
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"{name} must hold real floating-point numbers, got dtype {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        return np.ascontiguousarray(a, dtype=dtype).reshape(flat_shape)

    n = problem.weight_numel
    w_shape = (n,) if problem.shared_weights else (*lead, n)
    ggx = second_order_input(gg_x, "gg_x", (*lead, problem.irreps_in1.dim), x2.shape)
    ggy = second_order_input(gg_y, "gg_y", (*lead, problem.irreps_in2.dim), y2.shape)
    ggw = second_order_input(gg_w, "gg_w", w_shape, w2.shape)
    out_x, out_y, out_w = np.empty_like(x2), np.empty_like(y2), np.empty_like(w2)
    out_g = np.empty_like(g)
    if batch == 0:
        out_w[...] = 0
    else:
        kernels = _kernels(problem)
        with thread_limits(threads):
            kernels.double_backward(x2, y2, w2, g, ggx, ggy, ggw, out_x, out_y, out_w, out_g)
    if not problem.shared_weights:
        out_w = out_w.reshape(*lead, problem.weight_numel)
    return TPDoubleGradients(
        grad_x=out_x.reshape(*lead, problem.irreps_in1.dim),
        grad_y=out_y.reshape(*lead, problem.irreps_in2.dim),
        grad_w=out_w,
        grad_grad_out=out_g.reshape(*lead, problem.irreps_out.dim),
    )
