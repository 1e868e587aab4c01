"""O(3)-equivariant tensor products: irreps, Clebsch-Gordan coefficients, problems, numpy front ends.

numpy only at import time; the kernels (numba) load on the first call of :func:`tensor_product`.

>>> from multilinear.equivariant import Irreps, TPProblem, channelwise_problem, zoo
>>> problem = channelwise_problem("128x0e+128x1o+128x2e", "0e+1o+2e+3o", "0e+1o+2e+3o")
>>> problem == zoo.get("mace-large")
True
"""

from __future__ import annotations

from multilinear.equivariant import zoo
from multilinear.equivariant.builders import channelwise_problem, fully_connected_problem, problem_from_e3nn
from multilinear.equivariant.clebsch_gordan import wigner_3j
from multilinear.equivariant.graph import Graph, radius_graph
from multilinear.equivariant.irreps import Irrep, Irreps, MulIrrep
from multilinear.equivariant.ops import (
    TPDoubleGradients,
    TPGradients,
    tensor_product,
    tensor_product_backward,
    tensor_product_double_backward,
)
from multilinear.equivariant.problem import Instruction, TPProblem
from multilinear.equivariant.spherical_harmonics import spherical_harmonics
from multilinear.equivariant.wigner import random_angles, rotation_matrix, wigner_D

__all__ = [
    "Graph",
    "Instruction",
    "Irrep",
    "Irreps",
    "MulIrrep",
    "TPDoubleGradients",
    "TPGradients",
    "TPProblem",
    "channelwise_problem",
    "fully_connected_problem",
    "problem_from_e3nn",
    "radius_graph",
    "random_angles",
    "rotation_matrix",
    "spherical_harmonics",
    "tensor_product",
    "tensor_product_backward",
    "tensor_product_double_backward",
    "wigner_3j",
    "wigner_D",
    "zoo",
]
