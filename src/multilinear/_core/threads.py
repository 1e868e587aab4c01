"""Thread control. numba, torch and OpenBLAS each keep a pool; on a small machine they fight.

The rule in this package: numba's pool does the parallel work; BLAS calls made between numba kernels run
on their own threads, but never inside a numba parallel region. ``thread_limits`` sets and restores both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

_POOL: ThreadPoolExecutor | None = None


def default_threads() -> int:
    """Threads to use: ``NUMBA_NUM_THREADS`` if set, else the CPUs this process may run on."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def thread_limits(numba_threads: int | None = None, blas_threads: int | None = None) -> Iterator[None]:
    """Set numba's and BLAS's thread counts inside the block and restore them after.

    ``None`` leaves that pool as it is. Importing numba happens only when ``numba_threads`` is given.
    """
    restore_numba = None
    if numba_threads is not None:
        import numba

        restore_numba = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    blas_ctx: contextlib.AbstractContextManager = contextlib.nullcontext()
    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        blas_ctx = threadpool_limits(limits=int(blas_threads), user_api="blas")
    try:
        with blas_ctx:
            yield
    finally:
        if restore_numba is not None:
            import numba

            numba.set_num_threads(restore_numba)


def run_pieces(task: Callable[[int], None], starts: range) -> None:
    """``task(start)`` for every start, on a small pool of Python threads (``default_threads()`` of them).

    For numpy calls that release the GIL (matrix products, elementwise passes) on disjoint slices of an
    array. Inside ``cp_als`` BLAS is limited to one thread, so each piece's product runs on its pool
    thread alone (two cores busy without OpenBLAS's own threads). Each task writes its own slice, and the
    pieces are fixed by the caller, so a result does not depend on the thread count.
    """
    global _POOL
    if len(starts) <= 1 or default_threads() == 1:
        for start in starts:
            task(start)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=default_threads(), thread_name_prefix="multilinear")
    for future in [_POOL.submit(task, start) for start in starts]:
        future.result()
