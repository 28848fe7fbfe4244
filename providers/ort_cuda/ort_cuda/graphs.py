"""CUDA graphs (``enable_cuda_graph=1``): capture the whole model's kernel launches once, then
replay them with one launch per run, as onnxruntime's CUDA provider does.

The provider claims the whole main graph as one compiled node (:func:`whole_graph_claim`), and
refuses, with the reason, graphs a CUDA graph cannot hold: nodes it does not run (they would run
on the CPU between launches), control flow, values read on the host during the run (dynamic
shapes: Shape, or shape inputs that are not constants). :class:`CudaGraphRunner` runs the nodes
itself:

- matrix products go through :mod:`ort_cuda.cublas` (cuBLAS called directly: cupy refuses its
  cuBLAS wrappers during a capture), in the warm-up run too, so both compute alike;
- per ``gpu_graph_id`` (run option; default 0; -1 runs without a graph), the first run is a
  regular (warm-up) run, so memory pools and cuBLAS workspaces are set up outside the capture;
- the second run copies its inputs into buffers owned by the graph, captures every kernel
  launch on the run's stream into a CUDA graph, and launches it; the capture allocates from a
  memory pool of the graph's own (temporaries included, since replays write them too) and the
  shared kernels read nothing on the host (index checks are skipped: out-of-range indices are
  clamped, as onnxruntime's CUDA kernels leave them unchecked; the warm-up run checks them);
- later runs copy inputs into those buffers, launch the graph and return copies of its output
  buffers. Every buffer the capture used is kept alive with the graph, so the pool never hands
  its memory to other work.

A graph is captured for one set of input shapes and types; a run with other shapes under the
same ``gpu_graph_id`` is an error that says to use another id per shape.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ort_array import matmul_by, no_host_waits

from ort_core.errors import EPFail, InvalidArgument
from ort_core.provider import Claim, GraphView, current_run
from ort_core.provider.schema import is_multi_output

from .cublas import capture_blas
from .kernels._common import NAME

__all__ = ["CudaGraphRunner", "whole_graph_claim", "WARMUP_RUNS"]

#: Regular runs per graph id before the capture (onnxruntime makes one).
WARMUP_RUNS = 1
_FIX = "Set enable_cuda_graph=0 to run this model on the CUDA provider without CUDA graphs."


def whole_graph_claim(ep: Any, view: Any, claims: list[Claim]) -> list[Claim]:
    """One fused claim of the whole graph, or an error naming what a CUDA graph cannot hold."""
    graph = view.graph
    claimed = {id(c.nodes[0]) for c in claims if len(c.nodes) == 1}
    missing = [n for n in graph.nodes if id(n) not in claimed]
    if missing:
        shown = "; ".join(
            f"{n.label()}: {'; '.join(view.reasons.get(id(n), ['not claimed']))}"
            for n in missing[:3]
        )
        raise EPFail(
            f"enable_cuda_graph=1 needs every node on {NAME}, but {len(missing)} node(s) are not "
            f"([{shown}]); they would run on the CPU between the graph's launches. {_FIX}"
        )
    for n in graph.nodes:
        if n.subgraphs:
            raise EPFail(
                f"enable_cuda_graph=1: {n.label()} is control flow, whose branch or trip count "
                f"is decided on the host during the run; a CUDA graph cannot hold it. {_FIX}"
            )
        info = view.kernel_info(n, ep)
        if ep.host_outputs(info):
            raise EPFail(
                f"enable_cuda_graph=1: {n.label()} produces its output on the host (shapes "
                f"read during the run); a CUDA graph cannot hold it. {_FIX}"
            )
        for k in sorted(ep.host_inputs(info)):
            if k < len(n.inputs) and n.inputs[k] and view.constant(n.inputs[k]) is None:
                raise EPFail(
                    f"enable_cuda_graph=1: {n.label()} reads input {k} ('{n.inputs[k]}') on the "
                    f"host, and it is computed during the run (a dynamic shape); a CUDA graph "
                    f"replays fixed launches. Make it a constant. {_FIX}"
                )
    return [Claim.fused_group(list(graph.nodes), f"cuda_graph_{graph.name}")]


class _Captured:
    """One graph id's state: regular runs so far, then the captured graph and its buffers."""

    __slots__ = ("runs", "graph", "inputs", "outputs", "keep", "signature", "pool")

    def __init__(self) -> None:
        self.runs = 0
        self.graph: Any = None
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.keep: list[Any] = []
        self.signature: tuple = ()
        self.pool: Any = None


class CudaGraphRunner:
    """The compiled whole-graph node of ``enable_cuda_graph=1`` (see the module docstring)."""

    def __init__(self, ep: Any, subgraph: Any, opsets: dict[str, int]) -> None:
        self.ep = ep
        self.dev = ep.cuda
        self.graph = subgraph
        view = GraphView(subgraph, opsets)
        self.steps: list[tuple[Any, list[str], list[str], bool]] = []
        host_consts: dict[str, np.ndarray] = {}
        for node in subgraph.nodes:
            info = view.kernel_info(node, ep)
            fn = ep.wrap_kernel(ep.registry.create(info), info)
            reads_on_host = ep.host_inputs(info)
            ins = []
            for k, name in enumerate(node.inputs):
                if name and k in reads_on_host:
                    host_consts[f"{name}@host"] = subgraph.initializers[name]
                    name = f"{name}@host"
                ins.append(name)
            self.steps.append((fn, ins, list(node.outputs), is_multi_output(node, info.opset)))
        self.constants: dict[str, Any] = dict(host_consts)
        for name, arr in subgraph.initializers.items():
            if name not in subgraph.inputs:
                self.constants[name] = ep.to_device(arr)
        self.by_id: dict[int, _Captured] = {}
        self._lock = threading.Lock()
        self._blas: Any = None

    def _matmul(self, xp: Any, a: Any, b: Any) -> Any:
        return self._blas.matmul(xp, a, b, tf32=self.ep.cuda_options.use_tf32)

    # -- running ---------------------------------------------------------------------------
    def _eager(self, inputs: list[Any], keep: list[Any] | None = None) -> list[Any]:
        """One run of the nodes, their matrix products through cuBLAS directly (cupy's own
        wrappers refuse a capture), so the warm-up computes what the replays will."""
        if not self.dev.native:  # a stand-in device (host tests) has no cuBLAS
            return self._run_steps(inputs, keep)
        if self._blas is None:  # outside any capture: it allocates cuBLAS's workspace
            self._blas = capture_blas(self.dev)
        with matmul_by(self._matmul):
            return self._run_steps(inputs, keep)

    def _run_steps(self, inputs: list[Any], keep: list[Any] | None) -> list[Any]:
        values: dict[str, Any] = dict(self.constants)
        values.update(zip(self.graph.inputs, inputs))
        values[""] = None
        for fn, ins, outs, multi in self.steps:
            res = fn(*[values[n] for n in ins])
            if multi:
                for o, r in zip(outs, res):
                    if o:
                        values[o] = r
            else:
                values[outs[0]] = res
            if keep is not None:
                keep.append(res)
        return [values[o] for o in self.graph.outputs]

    def __call__(self, *inputs: Any) -> list[Any]:
        ctx = current_run()
        rs = ctx.streams.get(NAME) if ctx is not None else None
        if rs is None:
            raise EPFail(f"{NAME}: the CUDA graph was called outside a run.")
        graph_id = _graph_id(ctx.run_options)
        with self.dev.scope(rs.compute):
            if graph_id == -1:
                return self._eager(list(inputs))
            with self._lock:
                entry = self.by_id.setdefault(graph_id, _Captured())
                signature = tuple((tuple(x.shape), str(x.dtype)) for x in inputs)
                if entry.graph is None and entry.runs < WARMUP_RUNS:
                    entry.runs += 1
                    entry.signature = signature
                    return self._eager(list(inputs))
                if signature != entry.signature:
                    raise InvalidArgument(
                        f"CUDA graph {graph_id} is for inputs "
                        f"{_shapes(self.graph.inputs, entry.signature)} but this run gives "
                        f"{_shapes(self.graph.inputs, signature)}. A CUDA graph replays fixed "
                        "shapes: give each input shape its own run option gpu_graph_id."
                    )
                if entry.graph is None:
                    self._capture(entry, list(inputs), rs.compute)
                else:
                    for buf, x in zip(entry.inputs, inputs):
                        _copy_into(self.dev, buf, x)
                entry.graph.launch(rs.compute)
                return [self.dev.copy_on_device(o, rs.compute) for o in entry.outputs]

    def _capture(self, entry: _Captured, inputs: list[Any], stream: Any) -> None:
        entry.inputs = [self.dev.copy_on_device(x, stream) for x in inputs]
        keep: list[Any] = []
        # every allocation of the capture comes from a pool of the graph's own, never given
        # back: a replay writes the kernels' temporaries too, so memory they used must not be
        # handed to anything else (the run's outputs, another session)
        entry.pool = self.dev.cp.cuda.MemoryPool()
        stream.begin_capture()
        try:
            with self.dev.cp.cuda.using_allocator(entry.pool.malloc), no_host_waits():
                outs = self._eager(entry.inputs, keep)
        except Exception as e:
            try:
                stream.end_capture()
            except Exception:
                pass
            raise EPFail(
                f"{NAME} could not capture a CUDA graph of '{self.graph.name}': {e}. A kernel "
                f"synchronized with the host or launched outside the stream. {_FIX}"
            ) from e
        entry.graph = stream.end_capture()
        entry.outputs = outs
        entry.keep = keep

    def captured(self, graph_id: int = 0) -> bool:
        """Whether a graph was captured for ``graph_id`` (tests and the GPU check ask)."""
        e = self.by_id.get(graph_id)
        return e is not None and e.graph is not None


def _graph_id(run_options: Any) -> int:
    raw = None
    if run_options is not None:
        raw = run_options._config.get("gpu_graph_id")
    if raw is None:
        return 0
    try:
        gid = int(raw)
    except ValueError:
        gid = -2
    if gid < -1:
        raise InvalidArgument(
            f"run option gpu_graph_id={raw!r} is not valid: give an integer >= 0 to choose a "
            "CUDA graph, or -1 to run without one."
        )
    return gid


def _copy_into(dev: Any, buf: Any, x: Any) -> None:
    """Copy ``x`` into the graph's input buffer ``buf`` on the current stream."""
    dev.cp.copyto(buf, x)


def _shapes(names: list[str], signature: tuple) -> str:
    return ", ".join(f"{n}: {list(s)} {d}" for n, (s, d) in zip(names, signature))
