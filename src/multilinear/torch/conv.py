"""``TensorProductConv``: the tensor product fused with the scatter-sum of a graph convolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from multilinear.torch import _conv_ops  # noqa: F401  (registers the multilinear::tp_conv_* ops)
from multilinear.torch._module import ProblemModule


@dataclass(frozen=True, eq=False)
class PreparedGraph:
    """A validated graph in the form the fused ops take: edges in CSR order by receiver and by sender.

    Build it with :meth:`TensorProductConv.prepare_graph` (or :func:`prepare_graph`) once for a fixed
    graph and pass it as ``graph=``; every array is a CPU int64 tensor the module never writes to.

    Attributes
    ----------
    num_nodes, num_edges : int
    receivers, senders : torch.Tensor, shape ``(E,)``
        Copies of the edges as given (any order).
    receiver_order, receiver_pointer : torch.Tensor, shapes ``(E,)`` and ``(V + 1,)``
        Edge ids sorted stably by receiver, and the CSR pointer.
    sender_order, sender_pointer : torch.Tensor
        The same by sender (the transposed order used by the x gradient).
    """

    num_nodes: int
    num_edges: int
    receivers: Tensor
    senders: Tensor
    receiver_order: Tensor
    receiver_pointer: Tensor
    sender_order: Tensor
    sender_pointer: Tensor

    def op_arguments(self) -> tuple[Tensor, ...]:
        """The six tensors in the order the ``multilinear::tp_conv_*`` ops take them."""
        return (
            self.receivers,
            self.senders,
            self.receiver_order,
            self.receiver_pointer,
            self.sender_order,
            self.sender_pointer,
        )

    def matches(self, receivers: Tensor, senders: Tensor, num_nodes: int) -> bool:
        """Whether ``receivers``/``senders`` hold exactly this graph's edges (compared by value)."""
        return (
            num_nodes == self.num_nodes
            and receivers.shape == self.receivers.shape
            and senders.shape == self.senders.shape
            and receivers.dtype == torch.int64
            and senders.dtype == torch.int64
            and bool(torch.equal(receivers, self.receivers))
            and bool(torch.equal(senders, self.senders))
        )


def _index_array(tensor: Any, name: str) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of int64, got {type(tensor).__name__}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU, got device {tensor.device}")
    if tensor.dtype != torch.int64:
        raise TypeError(f"{name} must have dtype torch.int64, got {tensor.dtype}")
    return tensor.detach().contiguous().numpy()


def prepare_graph(receivers: Tensor, senders: Tensor, num_nodes: int) -> PreparedGraph:
    """Validate a graph and sort its edges by receiver and by sender (``O(E + V)``, once per graph).

    Parameters
    ----------
    receivers, senders : torch.Tensor of int64, shape ``(E,)``
        Edge ``e`` sends ``x[senders[e]]`` to node ``receivers[e]``. Any order; repeats allowed.
    num_nodes : int
        ``V``: indices must lie in ``[0, V)``.

    Raises
    ------
    TypeError
        Not int64 tensors.
    ValueError
        Indices out of range, different lengths, not 1-d, not on the CPU.
    """
    from multilinear.kernels.tp_conv import ConvGraph

    plan = ConvGraph(_index_array(receivers, "receivers"), _index_array(senders, "senders"), num_nodes)

    def tensor(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.array(array, dtype=np.int64, copy=True))

    return PreparedGraph(
        num_nodes=plan.num_nodes,
        num_edges=plan.num_edges,
        receivers=tensor(plan.receivers),
        senders=tensor(plan.senders),
        receiver_order=tensor(plan.receiver_order),
        receiver_pointer=tensor(plan.receiver_pointer),
        sender_order=tensor(plan.sender_order),
        sender_pointer=tensor(plan.sender_pointer),
    )


class TensorProductConv(ProblemModule):
    """Fused tensor product + graph convolution, with autograd to second order.

    ``out[r] = sum over edges e with receivers[e] == r of TP(x[senders[e]], y[e], W[e])``, where TP is the
    tensor product of ``problem`` (the same values as ``e3nn.o3.TensorProduct`` built from the same
    arguments followed by ``index_add`` over receivers). No ``(E, irreps_out.dim)`` array is created in
    the forward, backward or double backward: the forward loops over receivers and accumulates each
    node's sum in place, the x gradient loops over senders (the transposed edge order).

    Results are deterministic: every sum runs in a fixed order (edges in their given order within a node,
    node chunks fixed by the graph), so the same inputs give bitwise identical outputs, for any number of
    threads.

    Parameters
    ----------
    problem : multilinear.equivariant.TPProblem
        The per-edge tensor product (weights per edge, or shared).
    deterministic : bool
        Kept for API parity with GPU libraries that offer a faster atomic mode; every CPU kernel here is
        deterministic, so both values give the same (deterministic) kernels.

    Notes
    -----
    Unsorted edges are sorted internally. The module remembers the last graph it sorted and reuses the
    plan when the next call's ``receivers``/``senders`` are equal in value (an ``O(E)`` comparison, safe
    under in-place edits); pass ``graph=conv.prepare_graph(...)`` to skip even that.
    """

    def __init__(self, problem: Any, deterministic: bool = True) -> None:
        from multilinear.kernels.tp_conv import get_tp_conv_kernels

        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be a bool, got {type(deterministic).__name__}")
        super().__init__(problem, get_tp_conv_kernels)
        self.deterministic = deterministic
        self._last_graph: PreparedGraph | None = None

    def extra_repr(self) -> str:
        return self._describe("per-edge", paths=False)

    @staticmethod
    def prepare_graph(receivers: Tensor, senders: Tensor, num_nodes: int) -> PreparedGraph:
        """See :func:`prepare_graph`."""
        return prepare_graph(receivers, senders, num_nodes)

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        weight: Tensor | None = None,
        receivers: Tensor | None = None,
        senders: Tensor | None = None,
        *,
        graph: PreparedGraph | None = None,
    ) -> Tensor:
        """Convolve.

        Parameters
        ----------
        x : torch.Tensor, shape ``(V, irreps_in1.dim)``
            Node features, gathered at the senders.
        y : torch.Tensor, shape ``(E, irreps_in2.dim)``
            Edge attributes (e.g. spherical harmonics of the edge vectors).
        weight : torch.Tensor, optional
            ``(E, weight_numel)`` per edge, or ``(weight_numel,)`` for shared weights; omitted with
            internal weights.
        receivers, senders : torch.Tensor of int64, shape ``(E,)``
            The edges (any order). Give these or ``graph``.
        graph : PreparedGraph, optional
            A graph prepared once with :meth:`prepare_graph`.

        Returns
        -------
        torch.Tensor, shape ``(V, irreps_out.dim)``
        """
        self._check_features(x, "x", self.spec.dim_in1)
        self._check_features(y, "y", self.spec.dim_in2)
        num_nodes, num_edges = x.shape[0], y.shape[0]
        prepared = self._resolve_graph(receivers, senders, graph, num_nodes)
        if prepared.num_edges != num_edges:
            raise ValueError(
                f"y has {num_edges} rows but the graph has {prepared.num_edges} edges: one row of y per edge"
            )
        weight = self._resolve_weight(weight, num_edges)
        return torch.ops.multilinear.tp_conv_forward(
            x.contiguous(), y.contiguous(), weight.contiguous(), *prepared.op_arguments(), self._handle
        )

    # ----------------------------------------------------------------------------------- validation

    def _resolve_graph(self, receivers, senders, graph, num_nodes: int) -> PreparedGraph:
        if graph is not None:
            if receivers is not None or senders is not None:
                raise ValueError("give either receivers and senders, or graph=, not both")
            if not isinstance(graph, PreparedGraph):
                raise TypeError(
                    f"graph must be a PreparedGraph (from prepare_graph), got {type(graph).__name__}"
                )
            if graph.num_nodes != num_nodes:
                raise ValueError(f"graph has {graph.num_nodes} nodes but x has {num_nodes} rows")
            return graph
        if receivers is None or senders is None:
            raise ValueError(
                "receivers and senders (int64 tensors of shape (E,)) are required without graph="
            )
        last = self._last_graph
        if (
            last is not None
            and isinstance(receivers, Tensor)
            and isinstance(senders, Tensor)
            and receivers.device.type == "cpu"
            and senders.device.type == "cpu"
            and last.matches(receivers, senders, num_nodes)
        ):
            return last
        prepared = prepare_graph(receivers, senders, num_nodes)
        self._last_graph = prepared
        return prepared

    def _check_features(self, tensor: Any, name: str, width: int) -> None:
        self._check_cpu_tensor(tensor, name)
        if tensor.ndim != 2 or tensor.shape[1] != width:
            raise ValueError(f"{name} must have shape (rows, {width}), got {tuple(tensor.shape)}")

    def _resolve_weight(self, weight: Tensor | None, num_edges: int) -> Tensor:
        n = self.weight_numel
        if weight is None:
            if self.internal_weights or n == 0:
                return (
                    self.weight
                    if n > 0
                    else torch.empty((0,) if self.shared_weights else (num_edges, 0), dtype=self.dtype)
                )
            kind = f"({n},)" if self.shared_weights else f"(E, {n})"
            raise ValueError(f"weights of shape {kind} must be given: this problem has no internal weights")
        self._check_cpu_tensor(weight, "weight")
        expected = (n,) if self.shared_weights else (num_edges, n)
        if tuple(weight.shape) != expected:
            kind = "shared" if self.shared_weights else "per-edge"
            raise ValueError(f"{kind} weights must have shape {expected}, got {tuple(weight.shape)}")
        return weight
