"""CP decomposition by alternating least squares (exact; randomized by Khatri-Rao leverage sampling)."""

from multilinear.decompose._mttkrp import mttkrp
from multilinear.decompose._result import CPResult, CPTimes
from multilinear.decompose._sketched import estimate_fit
from multilinear.decompose._solvers import ExactSolver, ModeSolver
from multilinear.decompose.cp import cp_als

__all__ = ["CPResult", "CPTimes", "ExactSolver", "ModeSolver", "cp_als", "estimate_fit", "mttkrp"]
