"""The stable parallel radix argsort and gathers against numpy."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from multilinear.kernels.radix_sort import argsort_nonnegative, gather, gather_column


@pytest.mark.parametrize(
    ("n", "high"),
    [(0, 5), (1, 5), (2, 1), (17, 3), (5000, 2**40), (200_003, 7), (300_001, 2**62), (140_000, 2**22)],
)
def test_matches_numpy_stable_argsort(n, high) -> None:
    rng = np.random.default_rng(n)
    keys = rng.integers(0, high, n, dtype=np.int64)
    expected = np.argsort(keys, kind="stable")
    sorted_keys, order = argsort_nonnegative(keys)
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(sorted_keys, keys[expected])
    assert order.dtype == np.int64
    scratch = keys.copy()
    sorted32, order32 = argsort_nonnegative(scratch, np.int32, overwrite=True)
    assert order32.dtype == np.int32
    np.testing.assert_array_equal(order32, expected)
    np.testing.assert_array_equal(sorted32, sorted_keys)


def test_keys_are_left_alone_and_thread_count_does_not_matter() -> None:
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1000, 400_000, dtype=np.int64)  # many ties: stability is visible
    before = keys.copy()
    results = []
    threads = numba.get_num_threads()
    try:
        for count in (1, threads):
            numba.set_num_threads(count)
            results.append(argsort_nonnegative(keys))
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(keys, before)
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a, b)


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        argsort_nonnegative(np.array([3, -1, 2], dtype=np.int64))
    with pytest.raises(TypeError, match="int64"):
        argsort_nonnegative(np.array([3, 1, 2], dtype=np.int32))


def test_gathers() -> None:
    rng = np.random.default_rng(2)
    source = rng.integers(0, 50, (1000, 3))
    values = rng.standard_normal(1000)
    permutation = rng.permutation(1000).astype(np.int32)
    rows = np.empty(1000, dtype=np.int32)
    gather_column(source, 1, permutation, rows)
    np.testing.assert_array_equal(rows, source[permutation, 1])
    out = np.empty(1000)
    gather(values, permutation, out)
    np.testing.assert_array_equal(out, values[permutation])
