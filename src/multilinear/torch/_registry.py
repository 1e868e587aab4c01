"""A process-level registry of tensor-product kernels, addressed by a small integer handle.

A ``TPProblem`` cannot be an argument of a ``torch.library`` custom op (op schemas take tensors and
scalars only), so the ops take an ``int`` handle and look their kernels up here. The same kernels object
always gets the same handle, so modules built from the same problem share one entry (and
``torch.compile`` sees one constant). Entries live as long as the process: they are small (the generated
kernels are memoised by the kernel layer anyway).

A kernels object is anything with the interface of ``multilinear.kernels.tensor_product.TPKernels``:
a ``spec`` attribute (a ``TPKernelSpec``) and ``forward``, ``backward`` and ``double_backward`` methods
that write into preallocated outputs.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_kernels_by_handle: list[Any] = []
_handle_by_identity: dict[int, int] = {}


def register_kernels(kernels: Any) -> int:
    """Return the handle of ``kernels``, registering it on first sight."""
    for attribute in ("spec", "forward", "backward", "double_backward"):
        if not hasattr(kernels, attribute):
            raise TypeError(
                f"kernels must provide spec, forward, backward and double_backward; "
                f"{type(kernels).__name__} has no {attribute!r}"
            )
    with _lock:
        handle = _handle_by_identity.get(id(kernels))
        if handle is None:
            handle = len(_kernels_by_handle)
            _kernels_by_handle.append(kernels)  # keeps the object alive, so its id stays unique
            _handle_by_identity[id(kernels)] = handle
        return handle


def kernels_for(handle: int) -> Any:
    """The kernels registered under ``handle``; ValueError for a handle never issued."""
    if not 0 <= handle < len(_kernels_by_handle):
        raise ValueError(
            f"no tensor-product kernels registered under handle {handle} "
            f"({len(_kernels_by_handle)} registered in this process)"
        )
    return _kernels_by_handle[handle]
