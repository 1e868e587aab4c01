"""The memory-traffic floor of a tensor-product operation on this machine (imported by bench_tp.py).

A kernel that does no arithmetic worth the name: it reads every row of the operation's inputs once
(a vectorised sum) and writes every row of its outputs once with the non-temporal stores our kernels
use, split over the same row chunks and threads. Its time is a floor under any implementation that
reads its inputs from and writes its outputs to memory once, so ``e3nn time / floor time`` bounds the
ratio any CPU kernel could reach against e3nn here, whatever its arithmetic.

Per operation (the kernels ``multilinear.torch`` runs; the loss and its torch ops are not counted, which
makes the bound generous): forward reads x, y, w and writes z; the backward reads x, y, w, grad z and
writes grad x, grad y, grad w; the double backward reads those four plus the three incoming gradients
and writes four outputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from multilinear.kernels._stream import store_fence, stream_row
from multilinear.kernels.tensor_product import run_row_chunks


@njit(cache=True, nogil=True, fastmath=True)
def _touch_rows(inputs, outputs, width, start, stop):
    scratch = np.empty(width, dtype=outputs[0].dtype)
    for b in range(start, stop):
        total = outputs[0].dtype.type(0.0)
        for array in inputs:
            for col in range(array.shape[1]):
                total += array[b, col]
        for col in range(width):
            scratch[col] = total
        for array in outputs:
            stream_row(array, b, scratch)
    store_fence()


def touch(inputs: tuple[np.ndarray, ...], outputs: tuple[np.ndarray, ...]) -> None:
    """Read every input row once and stream every output row once (2-D C-contiguous, one dtype)."""
    width = max(array.shape[1] for array in outputs)
    run_row_chunks(
        inputs[0].shape[0], lambda start, stop, _: _touch_rows(inputs, outputs, width, start, stop)
    )


class TrafficFloor:
    """Arrays shaped like one problem's operands, and the floor time of each operation on them."""

    def __init__(self, spec, batch: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        dtype = np.dtype(spec.dtype)
        widths = {"x": spec.dim_in1, "y": spec.dim_in2, "w": spec.weight_numel, "z": spec.dim_out}
        self.inputs = {name: rng.standard_normal((batch, n)).astype(dtype) for name, n in widths.items()}
        self.grads = {name: rng.standard_normal((batch, n)).astype(dtype) for name, n in widths.items()}
        self.outputs = {name: np.empty((batch, n), dtype) for name, n in widths.items()}

    def _forward(self) -> None:
        i = self.inputs
        touch((i["x"], i["y"], i["w"]), (self.outputs["z"],))

    def _backward(self) -> None:
        i, o = self.inputs, self.outputs
        touch((i["x"], i["y"], i["w"], i["z"]), (o["x"], o["y"], o["w"]))

    def _double_backward(self) -> None:
        i, g, o = self.inputs, self.grads, self.outputs
        touch((i["x"], i["y"], i["w"], i["z"], g["x"], g["y"], g["w"]), (o["x"], o["y"], o["w"], o["z"]))

    def run(self, operation: str) -> None:
        """The floor of ``operation`` ("forward", "fwd+bwd" or "fwd+dbl"): the kernels it calls, in turn."""
        self._forward()
        if operation in ("fwd+bwd", "fwd+dbl"):
            self._backward()
        if operation == "fwd+dbl":
            self._double_backward()
