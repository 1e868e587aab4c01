"""The examples in the equivariant package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "multilinear.equivariant",
    "multilinear.equivariant.irreps",
    "multilinear.equivariant.zoo",
    "multilinear.equivariant.ops",
    "multilinear.equivariant.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
