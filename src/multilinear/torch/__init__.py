"""The torch binding: the only part of ``multilinear`` that imports torch.

``TensorProduct(problem)`` is a drop-in for ``e3nn.o3.TensorProduct`` on CPU tensors, with forward,
backward and double backward as ``torch.library`` custom ops (``multilinear::tp_forward``,
``multilinear::tp_backward``, ``multilinear::tp_double_backward``).
"""

from multilinear.torch.conv import PreparedGraph, TensorProductConv, prepare_graph
from multilinear.torch.tensor_product import TensorProduct

__all__ = ["PreparedGraph", "TensorProduct", "TensorProductConv", "prepare_graph"]
