"""The output pool: a buffer is reused only after every tensor, view and numpy array of it is gone."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from multilinear.equivariant import zoo
from multilinear.torch import TensorProduct, _buffers
from multilinear.torch._buffers import empty_output, pooled_bytes, release_pooled
from tests.tolerances import assert_close_rel
from tests.torch.peers import first_and_second_order, random_inputs

SHAPE = (1024, 1025)  # 4.0 MiB of float32: pooled


def test_small_outputs_bypass_the_pool(monkeypatch):
    def no_pool(nbytes):
        raise AssertionError("a small output must not come from the pool")

    monkeypatch.setattr(_buffers, "_take", no_pool)
    out = empty_output((3, 4), torch.float64)
    assert out.shape == (3, 4) and out.dtype == torch.float64


def test_buffer_is_reused_only_after_it_is_dropped():
    first = empty_output(SHAPE, torch.float32)
    assert first.shape == SHAPE and first.dtype == torch.float32 and first.is_contiguous()
    address = first.data_ptr()
    second = empty_output(SHAPE, torch.float32)
    assert second.data_ptr() != address  # first is alive: not handed out again
    del first
    gc.collect()
    third = empty_output(SHAPE, torch.float32)
    assert third.data_ptr() == address  # dropped, so recycled
    del second, third


@pytest.mark.parametrize(
    "keep", [lambda t: t[10:20], lambda t: t.numpy(), lambda t: t.view(-1)], ids=["slice", "numpy", "view"]
)
def test_a_surviving_view_keeps_the_buffer_out_of_the_pool(keep):
    out = empty_output(SHAPE, torch.float32)
    address = out.data_ptr()
    survivor = keep(out)
    del out
    gc.collect()
    other = empty_output(SHAPE, torch.float32)
    assert other.data_ptr() != address
    del survivor
    gc.collect()
    again = empty_output(SHAPE, torch.float32)
    assert again.data_ptr() == address
    del other, again


def test_pool_keeps_at_most_its_cap(monkeypatch):
    monkeypatch.setattr(_buffers, "MAX_POOLED_BYTES", 5 << 20)
    outs = [empty_output((1 << 20,), torch.float32) for _ in range(3)]  # 4 MiB each
    del outs
    gc.collect()
    assert pooled_bytes() <= 5 << 20


def test_a_buffer_larger_than_the_cap_is_kept_and_reused(monkeypatch):
    """One output above the cap stays pooled (alone), so the next call of that size reuses it."""
    monkeypatch.setattr(_buffers, "MAX_POOLED_BYTES", 5 << 20)
    release_pooled()
    small = empty_output((1 << 20,), torch.float32)  # 4 MiB, returned first: the oldest
    del small
    gc.collect()
    big = empty_output((3 << 20,), torch.float32)  # 12 MiB > cap
    address = big.data_ptr()
    del big
    gc.collect()
    assert pooled_bytes() == 12 << 20  # the older 4 MiB buffer went; the big one stayed
    again = empty_output((3 << 20,), torch.float32)
    assert again.data_ptr() == address
    del again


def test_ops_through_the_pool_give_the_same_numbers(monkeypatch):
    """With every output pooled, results are right and an output still held is never overwritten."""
    problem = zoo.get("small-mixed", irrep_dtype=np.float64)
    module = TensorProduct(problem)
    unpooled = first_and_second_order(module, **random_inputs(problem, batch=6, seed=9))
    monkeypatch.setattr(_buffers, "MIN_POOLED_BYTES", 0)
    held = module(*(random_inputs(problem, batch=6, seed=9)[k] for k in ("x", "y", "weight")))
    held_copy = held.clone()
    for _ in range(2):  # reuse of freed buffers happens here
        pooled = first_and_second_order(module, **random_inputs(problem, batch=6, seed=9))
        for key, value in unpooled.items():
            assert_close_rel(pooled[key], value, "tp_forward", "float64")
    torch.testing.assert_close(held, held_copy, rtol=0, atol=0)


def test_release_pooled_empties_the_pool():
    out = empty_output(SHAPE, torch.float32)
    del out
    gc.collect()
    assert pooled_bytes() >= SHAPE[0] * SHAPE[1] * 4
    release_pooled()
    assert pooled_bytes() == 0
