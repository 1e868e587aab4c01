"""What ``TensorProduct`` and ``TensorProductConv`` share: a module built from a ``TPProblem``.

The problem's irreps and flags as e3nn-style attributes, the kernel spec and registered kernel handle,
the weight (a standard-normal ``nn.Parameter`` with internal weights, else an empty buffer, as in e3nn),
the checks every input tensor goes through, and the text of ``extra_repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from multilinear.torch._registry import register_kernels

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def torch_dtype_of(irrep_dtype: Any) -> torch.dtype:
    """The torch dtype for a problem's ``irrep_dtype`` (numpy float32 or float64)."""
    try:
        return _TORCH_DTYPES[np.dtype(irrep_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"irrep_dtype must be float32 or float64, got {irrep_dtype!r}") from None


class ProblemModule(torch.nn.Module):
    """Base of the modules over one problem's generated kernels (see the module docstring).

    Parameters
    ----------
    problem : multilinear.equivariant.TPProblem
    kernels_for_spec : callable
        Builds (or fetches) the kernels object of the problem's ``TPKernelSpec``; it is registered in
        :mod:`multilinear.torch._registry` and the custom ops find it by ``self._handle``.
    """

    def __init__(self, problem: Any, kernels_for_spec: Callable[[Any], Any]) -> None:
        super().__init__()
        self.problem = problem
        self.irreps_in1 = problem.irreps_in1
        self.irreps_in2 = problem.irreps_in2
        self.irreps_out = problem.irreps_out
        self.instructions = problem.instructions
        self.weight_numel = int(problem.weight_numel)
        self.shared_weights = bool(problem.shared_weights)
        self.internal_weights = bool(problem.internal_weights)
        self.dtype = torch_dtype_of(problem.irrep_dtype)
        self.spec = problem.kernel_spec(problem.irrep_dtype)
        self._handle = register_kernels(kernels_for_spec(self.spec))
        if self.internal_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel, dtype=self.dtype))
        else:
            self.register_buffer("weight", torch.empty(0, dtype=self.dtype))

    def _describe(self, per_sample: str, paths: bool) -> str:
        """``extra_repr`` text; ``per_sample`` names unshared weights ("per-sample", "per-edge")."""
        weights = "internal" if self.internal_weights else "shared" if self.shared_weights else per_sample
        path_count = f"{len(self.spec.paths)} paths, " if paths else ""
        return (
            f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, {path_count}"
            f"weight_numel={self.weight_numel} ({weights}), dtype={str(self.dtype).replace('torch.', '')}"
        )

    def _check_cpu_tensor(self, tensor: Any, name: str) -> None:
        """A CPU ``torch.Tensor`` of the problem's dtype, or a clear error naming ``name``."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.device.type != "cpu":
            raise ValueError(
                f"{name} must be on the CPU (multilinear.torch has CPU kernels only), got {tensor.device}"
            )
        if tensor.dtype != self.dtype:
            raise TypeError(
                f"{name} must have dtype {self.dtype} (the problem's irrep_dtype), got {tensor.dtype}"
            )
