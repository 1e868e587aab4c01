"""Output buffers for the custom ops, recycled once the caller has dropped every reference to them.

Every call of an op returns fresh output tensors. Large fresh buffers come from new ``mmap`` regions whose
pages fault on first touch, and on a busy (virtualised) machine that costs as much as the tensor product
itself: MACE-large, batch 10,000, fp32: the forward kernel writing into a preallocated output ~86-150 ms,
the same call allocating its 82 MB output ~316-600 ms (load 7-8 on 2 cores).

So large outputs are numpy arrays viewed by ``torch.from_numpy``: a pool hands out raw buffers, and a
``weakref.finalize`` on the view returns the buffer to the pool when the view dies, which happens only when
torch frees the last storage that uses it (every tensor, view and ``.numpy()`` array made from the output).
A buffer is therefore never reused while anything can still read it. The pool keeps at most
``MAX_POOLED_BYTES`` of freed buffers (1 GiB or an eighth of physical memory, whichever is more; the
oldest are dropped beyond that), or the most recently freed buffer alone if that is larger; small outputs
bypass it. Kept buffers are memory the process holds between calls (``release_pooled()`` hands them
back); a call that reuses one allocates nothing.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict

import numpy as np
import torch

MIN_POOLED_BYTES = 1 << 22  # 4 MiB: smaller outputs come from torch.empty


def _default_cap() -> int:
    """1 GiB, or an eighth of physical memory if that is more (large batches reuse GB-sized outputs)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        physical = 0
    return max(1 << 30, physical // 8)


MAX_POOLED_BYTES = _default_cap()  # freed buffers kept for reuse, in total

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_lock = threading.RLock()  # RLock: a finalizer may run while this thread holds the lock
_free: OrderedDict[int, list[np.ndarray]] = OrderedDict()  # nbytes -> freed raw byte buffers
_free_bytes = 0


def _give_back(raw: np.ndarray) -> None:
    global _free_bytes
    with _lock:
        _free.setdefault(raw.nbytes, []).append(raw)
        _free.move_to_end(raw.nbytes)
        _free_bytes += raw.nbytes
        # Beyond the cap the oldest go first, but the buffer just returned always stays: a single output
        # larger than the cap (MACE-large at batch 50,000: 1.8 GB) is then reused by the next call instead
        # of faulting in fresh pages every time (that forward, quiet machine: 639 ms before, 106 ms after).
        while _free_bytes > MAX_POOLED_BYTES and _free_bytes > raw.nbytes:
            nbytes, buffers = next(iter(_free.items()))
            buffers.pop(0)
            _free_bytes -= nbytes
            if not buffers:
                del _free[nbytes]


def _take(nbytes: int) -> np.ndarray:
    global _free_bytes
    with _lock:
        buffers = _free.get(nbytes)
        if buffers:
            raw = buffers.pop()
            _free_bytes -= nbytes
            if not buffers:
                del _free[nbytes]
            return raw
    # from torch's allocator: numpy's would advise huge pages, whose compaction stalls were measured
    return torch.empty(nbytes, dtype=torch.uint8).numpy()


def empty_output(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor of ``shape`` and ``dtype``, reusing a freed pooled buffer if one fits."""
    shape = tuple(int(s) for s in shape)
    np_dtype = _NUMPY_DTYPES[dtype]
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(np_dtype).itemsize
    if nbytes < MIN_POOLED_BYTES:
        return torch.empty(shape, dtype=dtype)
    raw = _take(nbytes)
    view = raw.view(np_dtype).reshape(shape)
    weakref.finalize(view, _give_back, raw)
    return torch.from_numpy(view)


def pooled_bytes() -> int:
    """Bytes of freed buffers currently kept for reuse."""
    with _lock:
        return _free_bytes


def release_pooled() -> None:
    """Drop every freed buffer the pool keeps (their memory goes back to the allocator)."""
    global _free_bytes
    with _lock:
        _free.clear()
        _free_bytes = 0
