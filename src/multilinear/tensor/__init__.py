"""Sparse tensors, Kruskal (CP) tensors, FROSTT ``.tns`` input/output and reproducible generators."""

from multilinear.tensor.kruskal import KruskalTensor
from multilinear.tensor.random import (
    PlantedSparse,
    planted_counts,
    planted_sparse,
    random_kruskal,
    random_sparse,
)
from multilinear.tensor.sparse import SparseTensor
from multilinear.tensor.summary import tensor_summary
from multilinear.tensor.tns import read_tns, write_tns

__all__ = [
    "KruskalTensor",
    "PlantedSparse",
    "SparseTensor",
    "planted_counts",
    "planted_sparse",
    "random_kruskal",
    "random_sparse",
    "read_tns",
    "tensor_summary",
    "write_tns",
]
