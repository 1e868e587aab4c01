"""Fused tensor product + graph convolution: generated numba kernels that never store per-edge outputs.

For a graph with ``E`` edges (``receivers[e]``, ``senders[e]``) over ``V`` nodes, the convolution is

    out[r] = sum over edges e with receivers[e] == r of TP(x[senders[e]], y[e], w[e])

with x ``(V, dim_in1)`` node features, y ``(E, dim_in2)`` and w ``(E, weight_numel)`` (or shared
``(weight_numel,)``) per edge, and out ``(V, dim_out)``. The per-sample code is KER's
(:func:`multilinear.kernels.tp_codegen.emit_forward_body` / ``emit_backward_body``, in accumulate mode:
every write is ``+=``, the shell zeroes rows), placed in two loop shells:

- **forward**: a loop over receivers (CSR by receiver); each receiver's row is zeroed once and every
  incoming edge accumulates into it, in edge order. No atomics, no ``(E, dim_out)`` buffer.
- **backward** (gradients of ``<grad_out, out>``): a loop over senders (CSR by sender, the transposed
  edge order). With ``g_e = grad_out[receivers[e]]``, ``grad_x[s]`` sums the x-gradients of the sender's
  edges; ``grad_y[e]`` and ``grad_w[e]`` are per edge and are written by the one visit of edge ``e``.
  Shared weights sum their gradient in per-chunk partial buffers, reduced in chunk order.

Chunks are node ranges balanced by edge count, and their number depends only on the graph (not on the
thread count): every output element is summed in a fixed order, so results are bitwise identical run to
run and for any number of threads.

**Double backward.** The convolution is the tensor product applied to gathered inputs followed by a
scatter: ``out = Sᵀ TP(G x, y, w)`` with ``G`` the gather by senders and ``S`` the gather by receivers.
So ``grad_x = Gᵀ Bx(G x, y, w, S g)``, ``grad_y = By(...)``, ``grad_w = Bw(...)`` (B the per-edge
backward), and for ``L = <gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` we have
``<gg_x, grad_x> = <G gg_x, Bx(...)>``: the per-edge double-backward identities of
:meth:`multilinear.kernels.tensor_product.TPKernels.double_backward` hold with ``X = G x``,
``gg_X = G gg_x`` and ``g_e = S g``, and the results map back by ``Gᵀ`` (for x) and ``Sᵀ`` (for
grad_out). By trilinearity (primes: weighted paths only; a weightless path does not depend on w):

- ``out_grad_out = Conv(gg_x, y, w) + Conv(x, gg_y, w) + Conv'(x, y, gg_w)``      (conv forwards)
- ``out_x = ConvBx(x, gg_y, w, g) + ConvBx'(x, y, gg_w, g)``                       (conv backwards)
- ``out_y = ConvBy(gg_x, y, w, g) + ConvBy'(x, y, gg_w, g)``
- ``out_w = ConvBw(gg_x, y, w, g) + ConvBw(x, gg_y, w, g)``

Each conv backward call yields all three gradients; the kernel takes ``want_*`` flags and sends an
unwanted gradient to a per-chunk scratch row instead of an ``(E, ...)`` buffer.
"""

from __future__ import annotations

import numba
import numpy as np

from multilinear.kernels.tensor_product import import_generated_source, memoised_kernels, run_row_chunks
from multilinear.kernels.tp_codegen import (
    FASTMATH,
    INDENT,
    Constants,
    Lines,
    RowAccess,
    emit_backward_body,
    emit_forward_body,
)
from multilinear.kernels.tp_spec import TPKernelSpec

# Chunks of nodes per kernel call: fixed (not per thread) so reductions are the same for any thread count.
_MAX_CHUNKS = 64
_MIN_EDGES_PER_CHUNK = 64
_CODEGEN_VERSION = 4


# ------------------------------------------------------------------------------------------ graph plan
@numba.njit(cache=True)
def _counting_sort(keys, num_nodes, order, pointer):  # pragma: no cover - compiled
    """Stable counting sort of edge ids by ``keys``: ``order`` (E,) and CSR ``pointer`` (V + 1,)."""
    pointer[:] = 0
    for e in range(keys.shape[0]):
        pointer[keys[e] + 1] += 1
    for v in range(num_nodes):
        pointer[v + 1] += pointer[v]
    fill = pointer[:-1].copy()
    for e in range(keys.shape[0]):
        order[fill[keys[e]]] = e
        fill[keys[e]] += 1


def _chunk_bounds(pointer: np.ndarray) -> np.ndarray:
    """Node ranges ``[bounds[c], bounds[c+1])`` holding about equal numbers of edges (graph-determined)."""
    num_nodes = pointer.shape[0] - 1
    num_edges = int(pointer[-1])
    nchunks = max(1, min(_MAX_CHUNKS, num_nodes, num_edges // _MIN_EDGES_PER_CHUNK))
    targets = (np.arange(1, nchunks, dtype=np.int64) * num_edges) // nchunks
    inner = np.searchsorted(pointer, targets, side="left").astype(np.int64)
    bounds = np.concatenate(([0], np.clip(inner, 0, num_nodes), [num_nodes])).astype(np.int64)
    return np.maximum.accumulate(bounds)


def _run_chunks(bounds: np.ndarray, call) -> None:
    """Run ``call(chunk_start, chunk_stop, n)`` over contiguous groups of the chunks, one per thread.

    The groups only decide which thread runs a chunk; what a chunk computes, and the order of every sum,
    depend on the graph alone.
    """
    nchunks = bounds.shape[0] - 1
    threads = min(numba.get_num_threads(), nchunks)
    groups = [(nchunks * n // threads, nchunks * (n + 1) // threads) for n in range(threads)]
    run_row_chunks(nchunks, call, groups)


class ConvGraph:
    """A validated graph with its edges in CSR order by receiver and by sender (built once, reusable).

    Parameters
    ----------
    receivers, senders : numpy.ndarray of int64, shape ``(E,)``
        Edge ``e`` carries a message from node ``senders[e]`` to node ``receivers[e]``. Any order.
    num_nodes : int
        ``V``; every index must lie in ``[0, V)``.

    Attributes
    ----------
    receivers, senders : numpy.ndarray, shape ``(E,)``
        Private copies of the inputs (left writable so that numba compiles one signature for plans built
        here and plans rebuilt by :meth:`from_parts`; never modify them).
    receiver_order, receiver_pointer : numpy.ndarray, shapes ``(E,)`` and ``(V + 1,)``
        Edge ids sorted (stably) by receiver, and the CSR row pointer: the edges of receiver ``r`` are
        ``receiver_order[receiver_pointer[r]:receiver_pointer[r + 1]]``.
    sender_order, sender_pointer : numpy.ndarray
        The same by sender (the transposed edge order).
    receiver_chunks, sender_chunks : numpy.ndarray of int64
        Node ranges of about equal edge counts for the parallel loops.
    """

    def __init__(self, receivers, senders, num_nodes: int) -> None:
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
            raise TypeError(f"num_nodes must be an int, got {type(num_nodes).__name__}")
        num_nodes = int(num_nodes)
        if num_nodes < 0:
            raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
        receivers = _check_index_array(receivers, "receivers", num_nodes)
        senders = _check_index_array(senders, "senders", num_nodes)
        if receivers.shape != senders.shape:
            raise ValueError(
                f"receivers and senders must have the same length, got {receivers.shape[0]} and {senders.shape[0]}"
            )
        self.num_nodes = num_nodes
        self.num_edges = int(receivers.shape[0])
        self.receivers = receivers
        self.senders = senders
        self.receiver_order, self.receiver_pointer = _csr(receivers, num_nodes)
        self.sender_order, self.sender_pointer = _csr(senders, num_nodes)
        self.receiver_chunks = _chunk_bounds(self.receiver_pointer)
        self.sender_chunks = _chunk_bounds(self.sender_pointer)

    @classmethod
    def from_parts(
        cls, receivers, senders, receiver_order, receiver_pointer, sender_order, sender_pointer
    ) -> ConvGraph:
        """Rebuild a plan from the arrays of one built earlier (int64, C-contiguous), checking shapes only.

        For callers that carry a validated plan as separate arrays (the torch ops do). Shapes, pointer
        monotonicity and index ranges are checked (``O(E + V)``, so no index can leave its array); that
        the orders are the CSR permutations of the edges is trusted: pass arrays taken from a
        :class:`ConvGraph`.
        """
        parts = {
            "receivers": receivers,
            "senders": senders,
            "receiver_order": receiver_order,
            "receiver_pointer": receiver_pointer,
            "sender_order": sender_order,
            "sender_pointer": sender_pointer,
        }
        for name, array in parts.items():
            if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != 1:
                raise TypeError(f"{name} must be a 1-d int64 numpy array")
            if not array.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous")
        num_edges = receivers.shape[0]
        num_nodes = receiver_pointer.shape[0] - 1
        if num_nodes < 0 or sender_pointer.shape[0] != num_nodes + 1:
            raise ValueError("receiver_pointer and sender_pointer must both have num_nodes + 1 entries")
        for name in ("senders", "receiver_order", "sender_order"):
            if parts[name].shape[0] != num_edges:
                raise ValueError(
                    f"{name} must have num_edges = {num_edges} entries, got {parts[name].shape[0]}"
                )
        if int(receiver_pointer[-1]) != num_edges or int(sender_pointer[-1]) != num_edges:
            raise ValueError("the CSR pointers must end at num_edges")
        # Cheap O(E + V) range checks so that no index can reach outside an array (memory safety).
        for name, pointer in (("receiver_pointer", receiver_pointer), ("sender_pointer", sender_pointer)):
            if int(pointer[0]) != 0 or np.any(pointer[1:] < pointer[:-1]):
                raise ValueError(f"{name} must start at 0 and never decrease")
        for name, bound in (
            ("receivers", num_nodes),
            ("senders", num_nodes),
            ("receiver_order", num_edges),
            ("sender_order", num_edges),
        ):
            array = parts[name]
            if array.size and (int(array.min()) < 0 or int(array.max()) >= bound):
                raise ValueError(f"{name} holds an index outside [0, {bound})")
        graph = cls.__new__(cls)
        graph.num_nodes = int(num_nodes)
        graph.num_edges = int(num_edges)
        for name, array in parts.items():
            setattr(graph, name, array)
        graph.receiver_chunks = _chunk_bounds(receiver_pointer)
        graph.sender_chunks = _chunk_bounds(sender_pointer)
        return graph

    def same_edges(self, receivers: np.ndarray, senders: np.ndarray, num_nodes: int) -> bool:
        """Whether this plan was built from exactly these edges (compared by content, not identity)."""
        return (
            num_nodes == self.num_nodes
            and isinstance(receivers, np.ndarray)
            and isinstance(senders, np.ndarray)
            and receivers.shape == self.receivers.shape
            and senders.shape == self.senders.shape
            and receivers.dtype == np.int64
            and senders.dtype == np.int64
            and np.array_equal(receivers, self.receivers)
            and np.array_equal(senders, self.senders)
        )

    def __repr__(self) -> str:
        return f"ConvGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"


def _check_index_array(array, name: str, num_nodes: int) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of int64, got {type(array).__name__}")
    if array.dtype != np.int64:
        raise TypeError(f"{name} must have dtype int64, got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d (num_edges,), got shape {array.shape}")
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= num_nodes:
            bad = low if low < 0 else high
            raise ValueError(f"{name} holds node index {bad}, outside [0, {num_nodes}) for {num_nodes} nodes")
    return np.array(array, dtype=np.int64, order="C", copy=True)


def _csr(keys: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.empty(keys.shape[0], dtype=np.int64)
    pointer = np.empty(num_nodes + 1, dtype=np.int64)
    _counting_sort(keys, num_nodes, order, pointer)
    return order, pointer


# -------------------------------------------------------------------------------------- code generation
def generate_conv_source(spec: TPKernelSpec) -> str:
    """The generated module for ``spec``: ``conv_forward`` and ``conv_backward``.

    Both are serial and release the GIL; they run the node chunks ``chunk_start:chunk_stop`` (node ranges
    ``bounds[c]:bounds[c + 1]``), so a caller runs disjoint chunk ranges on several threads.

    ``conv_forward(x, y, w, z, senders, order, pointer, bounds, chunk_start, chunk_stop,
    include_weightless, accumulate)``: ``z[r] (+)= sum of TP(x[senders[e]], y[e], w[e])`` over the edges
    of each receiver ``r``.

    ``conv_backward(x, y, w, g, gx, gy, gw, receivers, order, pointer, bounds, chunk_start, chunk_stop,
    include_weightless, acc_x, acc_y, acc_w, want_x, want_y, want_w)``: gradients of ``<g, z>``, looping
    over senders. An output with ``want_* False`` is a per-chunk scratch array ``(nchunks, width)``; with
    ``acc_*`` a wanted output is added to rather than overwritten. For shared weights ``gw`` is always a
    ``(nchunks, weight_numel)`` array of per-chunk partial sums (overwritten), which the caller reduces.
    """
    shared = spec.shared_weights
    forward_access = RowAccess(
        x="x[s, {}]",
        y="y[e, {}]",
        w="w[{}]" if shared else "w[e, {}]",
        z="z[r, {}]",
    )
    backward_access = RowAccess(
        x="x[s, {}]",
        y="y[e, {}]",
        w="w[{}]" if shared else "w[e, {}]",
        grad_out="g[r, {}]",
        grad_x="gx[sx, {}]",
        grad_y="gy[ey, {}]",
        grad_w="gwc[{}]" if shared else "gw[ew, {}]",
        grad_x_scratch="gxt[{}]",  # KER's transposed per-sample grad x sum (one interleave per edge)
    )
    header = [
        f'"""Generated by multilinear.kernels.tp_conv (v{_CODEGEN_VERSION}) for spec {spec.key()}; do not edit."""',
        "",
        "import numpy as np",
        "from numba import njit",
        "",
        f"dt = np.{spec.dtype}",
        f"WEIGHT_NUMEL = {spec.weight_numel}",
        "",
    ]

    decorator = f"@njit(cache=True, nogil=True, fastmath={FASTMATH}, error_model='numpy')"
    consts_f = Constants()
    body_f = Lines()
    emit_forward_body(spec, forward_access, consts_f, body_f, 4, accumulate=True)
    forward = [
        decorator,
        "def conv_forward(x, y, w, z, senders, order, pointer, bounds, chunk_start, chunk_stop,",
        "                 include_weightless, accumulate):",
        "    zero = dt(0.0)",
        "    unit = dt(1.0) if include_weightless else dt(0.0)",
        *(INDENT + line for line in consts_f.declarations()),
        "    for c in range(chunk_start, chunk_stop):",
        "        for r in range(bounds[c], bounds[c + 1]):",
        "            if not accumulate:",
        "                z[r, :] = zero",
        "            for t in range(pointer[r], pointer[r + 1]):",
        "                e = order[t]",
        "                s = senders[e]",
        *body_f.lines,
        "",
    ]

    consts_b = Constants()
    body_b = Lines()
    emit_backward_body(spec, backward_access, consts_b, body_b, 4, accumulate=True, accumulate_grad_w=True)
    backward = [
        decorator,
        "def conv_backward(x, y, w, g, gx, gy, gw, receivers, order, pointer, bounds, chunk_start, chunk_stop,",
        "                  include_weightless, acc_x, acc_y, acc_w, want_x, want_y, want_w):",
        "    zero = dt(0.0)",
        "    unit = dt(1.0) if include_weightless else dt(0.0)",
        *(INDENT + line for line in consts_b.declarations()),
        f"    gxt = np.empty({spec.dim_in1}, dtype=dt)",
        "    for c in range(chunk_start, chunk_stop):",
    ]
    if shared:
        backward += ["        gwc = gw[c]", "        gwc[:] = zero"]
    backward += [
        "        for s in range(bounds[c], bounds[c + 1]):",
        "            sx = s if want_x else c",
        "            if not (acc_x and want_x):",
        "                gx[sx, :] = zero",
        "            for t in range(pointer[s], pointer[s + 1]):",
        "                e = order[t]",
        "                r = receivers[e]",
        "                ey = e if want_y else c",
        "                if not (acc_y and want_y):",
        "                    gy[ey, :] = zero",
    ]
    if not shared:
        backward += [
            "                ew = e if want_w else c",
            "                if not (acc_w and want_w):",
            "                    gw[ew, :] = zero",
        ]
    backward += body_b.lines
    backward.append("")
    return "\n".join([*header, "", *forward, "", *backward])


def _import_generated(spec: TPKernelSpec):
    return import_generated_source(generate_conv_source(spec), f"tp_conv_{spec.key()}")


def get_tp_conv_kernels(spec: TPKernelSpec) -> TPConvKernels:
    """The fused convolution kernels of ``spec`` (memoised per ``spec.key()``; compiled on first call)."""
    return memoised_kernels("tp_conv", spec, lambda: TPConvKernels(spec, _import_generated(spec)))


# ------------------------------------------------------------------------------------------ kernels
class TPConvKernels:
    """Forward, backward and double backward of the fused convolution of one :class:`TPKernelSpec`.

    Shapes (``V`` nodes, ``E`` edges): x ``(V, dim_in1)``, y ``(E, dim_in2)``, w ``(E, weight_numel)``
    per edge or ``(weight_numel,)`` shared, out and grad_out ``(V, dim_out)``; the graph is a
    :class:`ConvGraph` with ``num_nodes == V`` and ``num_edges == E``. Every array C-contiguous in
    ``spec.dtype``; every output is overwritten.
    """

    def __init__(self, spec: TPKernelSpec, module) -> None:
        self.spec = spec
        self.module = module
        self.dtype = np.dtype(spec.dtype)

    # -------------------------------------------------------------------------------------- checks
    def _check(self, name: str, array, shape: tuple[int, ...]) -> None:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
        if array.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype}, got {array.dtype}")
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")

    def _weight_shape(self, num_edges: int) -> tuple[int, ...]:
        n = self.spec.weight_numel
        return (n,) if self.spec.shared_weights else (num_edges, n)

    def _check_inputs(self, x, y, w, graph: ConvGraph) -> None:
        if not isinstance(graph, ConvGraph):
            raise TypeError(f"graph must be a ConvGraph, got {type(graph).__name__}")
        self._check("x", x, (graph.num_nodes, self.spec.dim_in1))
        self._check("y", y, (graph.num_edges, self.spec.dim_in2))
        self._check("w", w, self._weight_shape(graph.num_edges))

    def _scratch(self, graph: ConvGraph, width: int) -> np.ndarray:
        return np.empty((graph.sender_chunks.shape[0] - 1, width), dtype=self.dtype)

    def _forward(self, x, y, w, out, graph, include_weightless: bool, accumulate: bool) -> None:
        kernel = self.module.conv_forward

        def call(chunk_start: int, chunk_stop: int, _: int) -> None:
            kernel(
                x,
                y,
                w,
                out,
                graph.senders,
                graph.receiver_order,
                graph.receiver_pointer,
                graph.receiver_chunks,
                chunk_start,
                chunk_stop,
                include_weightless,
                accumulate,
            )

        _run_chunks(graph.receiver_chunks, call)

    def _backward(self, x, y, w, grad_out, outs, graph, include_weightless, accumulate, wanted) -> None:
        """One conv backward into ``outs`` (x/y/w); an unwanted output goes to per-chunk scratch rows."""
        widths = {"x": self.spec.dim_in1, "y": self.spec.dim_in2, "w": self.spec.weight_numel}
        shared = self.spec.shared_weights
        arrays = {}
        for name in ("x", "y", "w"):
            if name == "w" and shared:
                arrays[name] = self._scratch(graph, widths[name])  # per-chunk partial sums
            elif wanted[name]:
                arrays[name] = outs[name]
            else:
                arrays[name] = self._scratch(graph, widths[name])
        kernel = self.module.conv_backward

        def call(chunk_start: int, chunk_stop: int, _: int) -> None:
            kernel(
                x,
                y,
                w,
                grad_out,
                arrays["x"],
                arrays["y"],
                arrays["w"],
                graph.receivers,
                graph.sender_order,
                graph.sender_pointer,
                graph.sender_chunks,
                chunk_start,
                chunk_stop,
                include_weightless,
                accumulate["x"],
                accumulate["y"],
                accumulate["w"],
                wanted["x"],
                wanted["y"],
                wanted["w"] and not shared,
            )

        _run_chunks(graph.sender_chunks, call)
        if shared and wanted["w"]:
            total = arrays["w"].sum(axis=0)  # fixed shape, fixed order: deterministic
            if accumulate["w"]:
                outs["w"] += total
            else:
                outs["w"][...] = total

    # ------------------------------------------------------------------------------------------ ops
    def forward(self, x, y, w, out, graph: ConvGraph) -> None:
        """``out[r] <- sum over edges e into r of TP(x[senders[e]], y[e], w[e])``, shape ``(V, dim_out)``."""
        self._check_inputs(x, y, w, graph)
        self._check("out", out, (graph.num_nodes, self.spec.dim_out))
        self._forward(x, y, w, out, graph, True, False)

    def backward(self, x, y, w, grad_out, grad_x, grad_y, grad_w, graph: ConvGraph) -> None:
        """Gradients of ``<grad_out, out>`` into grad_x ``(V, dim_in1)``, grad_y ``(E, dim_in2)``, grad_w.

        ``grad_w`` has the shape of ``w``; for shared weights it is summed over the edges.
        """
        self._check_inputs(x, y, w, graph)
        self._check("grad_out", grad_out, (graph.num_nodes, self.spec.dim_out))
        self._check("grad_x", grad_x, x.shape)
        self._check("grad_y", grad_y, y.shape)
        self._check("grad_w", grad_w, w.shape)
        everything = {"x": True, "y": True, "w": True}
        nothing = {"x": False, "y": False, "w": False}
        outs = {"x": grad_x, "y": grad_y, "w": grad_w}
        self._backward(x, y, w, grad_out, outs, graph, True, nothing, everything)

    def double_backward(
        self, x, y, w, grad_out, gg_x, gg_y, gg_w, out_x, out_y, out_w, out_grad_out, graph: ConvGraph
    ) -> None:
        """Gradients of ``<gg_x, grad_x> + <gg_y, grad_y> + <gg_w, grad_w>`` w.r.t. x, y, w and grad_out.

        ``(grad_x, grad_y, grad_w) = backward(x, y, w, grad_out)``; ``gg_*`` may be None (zero). The
        identities are in the module docstring: up to three conv forwards and three conv backwards,
        each accumulating into the outputs.
        """
        self._check_inputs(x, y, w, graph)
        self._check("grad_out", grad_out, (graph.num_nodes, self.spec.dim_out))
        for name, gg, like in (("gg_x", gg_x, x), ("gg_y", gg_y, y), ("gg_w", gg_w, w)):
            if gg is not None:
                self._check(name, gg, like.shape)
        self._check("out_x", out_x, x.shape)
        self._check("out_y", out_y, y.shape)
        self._check("out_w", out_w, w.shape)
        self._check("out_grad_out", out_grad_out, grad_out.shape)

        written = False
        for xa, ya, wa, weightless in ((gg_x, y, w, True), (x, gg_y, w, True), (x, y, gg_w, False)):
            if xa is None or ya is None or wa is None:
                continue
            self._forward(xa, ya, wa, out_grad_out, graph, weightless, written)
            written = True
        if not written:
            out_grad_out[...] = 0

        started = {"x": False, "y": False, "w": False}
        outs = {"x": out_x, "y": out_y, "w": out_w}

        def run(xa, ya, wa, weightless, wanted):
            accumulate = {n: started[n] and wanted[n] for n in started}
            self._backward(xa, ya, wa, grad_out, outs, graph, weightless, accumulate, wanted)
            for n in started:
                started[n] = started[n] or wanted[n]

        if gg_y is not None:  # ConvBx(x, gg_y, w, g) and ConvBw(x, gg_y, w, g)
            run(x, gg_y, w, True, {"x": True, "y": False, "w": True})
        if gg_x is not None:  # ConvBy(gg_x, y, w, g) and ConvBw(gg_x, y, w, g)
            run(gg_x, y, w, True, {"x": False, "y": True, "w": True})
        if gg_w is not None:  # ConvBx'(x, y, gg_w, g) and ConvBy'(x, y, gg_w, g)
            run(x, y, gg_w, False, {"x": True, "y": True, "w": False})
        for name, array in outs.items():
            if not started[name]:
                array[...] = 0
