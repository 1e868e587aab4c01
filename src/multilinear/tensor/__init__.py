"""Sparse tensors, Kruskal (CP) tensors, FROSTT ``.tns`` input/output and reproducible generators."""

from multilinear.tensor.sparse import SparseTensor

__all__ = ["SparseTensor"]
