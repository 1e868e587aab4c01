"""numba kernels: arrays and scalars in, outputs written into arrays passed in.

This is the only layer that imports numba. Front ends import a kernel module inside the function that
needs it, so ``import multilinear`` stays light. Kernels know nothing of ``Irreps`` or ``SparseTensor``.
"""
