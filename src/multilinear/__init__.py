"""multilinear: fast multilinear maps.

- Clebsch-Gordan tensor products of O(3)-equivariant networks (``multilinear.equivariant``,
  torch binding in ``multilinear.torch``), e3nn-compatible.
- CP decomposition of large sparse tensors, exact and randomized by Khatri-Rao leverage-score sampling
  (``multilinear.decompose``, ``multilinear.sampling``).

``import multilinear`` imports neither torch nor numba: kernels are compiled (or loaded from the on-disk
cache) on first use.
"""

from multilinear.decompose import CPResult, cp_als
from multilinear.tensor import KruskalTensor, SparseTensor, read_tns, write_tns

__version__ = "0.1.0"

__all__ = ["CPResult", "KruskalTensor", "SparseTensor", "__version__", "cp_als", "read_tns", "write_tns"]
