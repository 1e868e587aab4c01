"""``TensorProduct``: e3nn's ``o3.TensorProduct`` as a torch module over the generated numba kernels."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multilinear.torch import _ops  # noqa: F401  (registers the multilinear:: custom ops)
from multilinear.torch._module import ProblemModule, torch_dtype_of

__all__ = ["TensorProduct", "output_mask", "torch_dtype_of"]

# Submodules of e3nn's TensorProduct whose buffers are its Clebsch-Gordan constants.
_E3NN_CONSTANT_MODULES = ("_compiled_main_left_right.", "_compiled_main_right.")


def output_mask(problem: Any) -> Tensor:
    """e3nn's ``output_mask`` buffer: 1 on the output irreps some nonzero path writes, 0 elsewhere.

    Same values, shape ``(irreps_out.dim,)`` and dtype (torch's default) as e3nn's, so e3nn's
    ``state_dict`` loads into :class:`TensorProduct` with ``strict=True``.
    """
    parts = []
    for i_out, (mul, irrep) in enumerate(problem.irreps_out):
        written = any(
            ins.i_out == i_out and ins.path_weight != 0 and 0 not in ins.path_shape
            for ins in problem.instructions
        )
        parts.append((torch.ones if written else torch.zeros)(mul * irrep.dim))
    return torch.cat(parts) if parts else torch.ones(0)


class TensorProduct(ProblemModule):
    """The Clebsch-Gordan tensor product of a ``TPProblem``, with autograd to second order.

    Same values, weight layout and broadcasting as ``e3nn.o3.TensorProduct`` built from the same irreps,
    instructions and options, so e3nn weights work unchanged. CPU tensors of the problem's
    ``irrep_dtype`` only. Forward, backward and double backward run as the custom ops
    ``multilinear::tp_forward``, ``tp_backward`` and ``tp_double_backward`` (see
    :mod:`multilinear.torch._ops`), so ``torch.compile`` keeps them in one graph.

    Parameters
    ----------
    problem : multilinear.equivariant.TPProblem
        The tensor product: irreps, instructions, normalisation, weight sharing and dtype.

    Attributes
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps
        As in the problem.
    weight_numel : int
        Number of weights per sample (or in total, when they are shared).
    shared_weights, internal_weights : bool
        As in the problem. With internal weights, ``weight`` is an ``nn.Parameter`` of shape
        ``(weight_numel,)`` drawn from the standard normal (e3nn's initialisation); otherwise ``weight``
        is an empty buffer, as in e3nn.
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``, from ``problem.irrep_dtype``.
    output_mask : torch.Tensor
        Buffer of shape ``(irreps_out.dim,)``: 1 where some path writes, as in e3nn.

    Notes
    -----
    ``load_state_dict(e3nn_module.state_dict())`` works with ``strict=True`` (the weights and
    ``output_mask`` are loaded; e3nn's CG-constant buffers are recognised and skipped). The other way,
    e3nn's ``load_state_dict`` needs ``strict=False``: our state has no CG constants to give it, and e3nn
    keeps its own.
    """

    def __init__(self, problem: Any) -> None:
        from multilinear.kernels.tensor_product import get_tp_kernels

        super().__init__(problem, get_tp_kernels)
        self._dim_in1 = self.spec.dim_in1
        self._dim_in2 = self.spec.dim_in2
        self._dim_out = self.spec.dim_out
        self.register_buffer("output_mask", output_mask(problem))

    @classmethod
    def from_e3nn(cls, e3nn_module: Any, *, irrep_dtype: Any = None) -> TensorProduct:
        """The module equivalent to an existing ``e3nn.o3.TensorProduct``, its state (weights) copied.

        Parameters
        ----------
        e3nn_module : e3nn.o3.TensorProduct
        irrep_dtype : numpy float32 or float64, optional
            Default: the dtype of the e3nn module's ``output_mask`` (torch's default dtype when e3nn
            built it).

        Returns
        -------
        TensorProduct
            Same irreps, instructions, coefficients (via
            :func:`multilinear.equivariant.problem_from_e3nn`), weight layout and internal weights.
        """
        from multilinear.equivariant import problem_from_e3nn

        if irrep_dtype is None:
            mask = getattr(e3nn_module, "output_mask", None)
            irrep_dtype = str(mask.dtype).replace("torch.", "") if isinstance(mask, Tensor) else "float32"
        module = cls(problem_from_e3nn(e3nn_module, irrep_dtype=irrep_dtype))
        module.load_state_dict(e3nn_module.state_dict(), strict=True)
        return module

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """Load like any module, and accept e3nn's ``state_dict`` too: its extra entries are the CG
        constants of its compiled code (``_compiled_main_*._w3j_*``), which this module computes itself."""
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        e3nn_constants = tuple(prefix + name for name in _E3NN_CONSTANT_MODULES)
        unexpected_keys[:] = [key for key in unexpected_keys if not key.startswith(e3nn_constants)]

    def extra_repr(self) -> str:
        return self._describe("per-sample", paths=True)

    def forward(self, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """Evaluate ``z = W · CG · (x ⊗ y)``.

        Parameters
        ----------
        x : torch.Tensor, shape ``(..., irreps_in1.dim)``
        y : torch.Tensor, shape ``(..., irreps_in2.dim)``
        weight : torch.Tensor, optional
            ``(weight_numel,)`` if the weights are shared, else ``(..., weight_numel)``. Required unless
            the module has internal weights (or no weights at all).

        Returns
        -------
        torch.Tensor, shape ``(..., irreps_out.dim)``
            The leading dimensions of x, y (and per-sample weights) broadcast together, as in e3nn.
        """
        self._check_tensor(x, "x", self._dim_in1)
        self._check_tensor(y, "y", self._dim_in2)
        weight = self._resolve_weight(weight)
        leading = [x.shape[:-1], y.shape[:-1]]
        if not self.shared_weights and self.weight_numel > 0:
            leading.append(weight.shape[:-1])
        try:
            batch_shape = torch.broadcast_shapes(*leading)
        except RuntimeError:
            shapes = ", ".join(str(tuple(s)) for s in leading)
            raise ValueError(
                f"the leading (batch) dimensions of the inputs do not broadcast: {shapes}"
            ) from None
        x_flat = x.expand(*batch_shape, self._dim_in1).reshape(-1, self._dim_in1)
        y_flat = y.expand(*batch_shape, self._dim_in2).reshape(-1, self._dim_in2)
        if self.shared_weights:
            w_flat = weight
        elif self.weight_numel > 0:
            w_flat = weight.expand(*batch_shape, self.weight_numel).reshape(-1, self.weight_numel)
        else:
            w_flat = x.new_empty((x_flat.shape[0], 0))
        out = torch.ops.multilinear.tp_forward(x_flat, y_flat, w_flat, self._handle)
        return out.reshape(*batch_shape, self._dim_out)

    # ----------------------------------------------------------------------------------- validation

    def _check_tensor(self, tensor: Any, name: str, width: int) -> None:
        self._check_cpu_tensor(tensor, name)
        if tensor.ndim < 1 or tensor.shape[-1] != width:
            raise ValueError(f"{name} must have shape (..., {width}), got {tuple(tensor.shape)}")

    def _resolve_weight(self, weight: Tensor | None) -> Tensor:
        if weight is None:
            if self.internal_weights or self.weight_numel == 0:
                return self.weight if self.weight_numel > 0 else torch.empty(0, dtype=self.dtype)
            kind = "(weight_numel,)" if self.shared_weights else "(..., weight_numel)"
            raise ValueError(
                f"weights must be given (shape {kind} with weight_numel={self.weight_numel}): "
                "this tensor product has no internal weights"
            )
        if self.shared_weights:
            self._check_tensor(weight, "weight", self.weight_numel)
            if weight.ndim != 1:
                raise ValueError(
                    f"shared weights must have shape ({self.weight_numel},), got {tuple(weight.shape)}"
                )
        else:
            self._check_tensor(weight, "weight", self.weight_numel)
            if weight.ndim < 2:
                raise ValueError(
                    f"per-sample weights must have shape (..., {self.weight_numel}) with a batch dimension, "
                    f"got {tuple(weight.shape)}"
                )
        return weight
