"""CoreMLExecutionProvider: claims what Core ML takes, converts each partition to an ML Program.

Options are onnxruntime's (see :mod:`ort_coreml.options` and docs/providers/coreml.md). Core ML
runs on macOS only; elsewhere the provider is unavailable, unless ``ORT_COREML_REFERENCE=1`` asks
for the MIL reference runtime (numpy), which then runs the converted programs and says so: in
its availability, in ``get_provider_options()`` (``runtime``) and in a warning per session.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from ort_core import logs
from ort_core.device import OrtDevice
from ort_core.ir import Graph, Node, node_reads
from ort_core.provider import (
    Availability,
    Claim,
    Decline,
    ExecutionProvider,
    GraphView,
    KernelInfo,
    convex_clusters,
)

from .options import REFERENCE_ENV, CoreMLOptions, reference_requested

REFERENCE_RUNTIME = "MIL reference runtime (numpy)"


def _coremltools_reason() -> str | None:
    try:
        from .convert import coremltools

        coremltools()
    except ImportError as e:
        return f"the coremltools package cannot be imported ({e}): `pip install coremltools`."
    return None


def merge_clusters(graph: Graph, clusters: list[list[Node]]) -> list[list[Node]]:
    """Fewer partitions: merge convex clusters (``convex_clusters`` groups connected nodes only)
    while the union stays convex, i.e. no node outside it both depends on it and feeds it. Each
    partition is one Core ML model, and each boundary a round trip through the host."""
    if len(clusters) < 2:
        return clusters
    producers = graph.producers()
    consumers = graph.consumers()
    order = {id(n): i for i, n in enumerate(graph.nodes)}

    def reach(start: list[Node], step) -> set[int]:
        seen: set[int] = set()
        todo = list(start)
        while todo:
            n = todo.pop()
            for m in step(n):
                if id(m) not in seen:
                    seen.add(id(m))
                    todo.append(m)
        return seen

    def down(n: Node):
        return [c for o in n.outputs if o for c in consumers.get(o, ())]

    def up(n: Node):
        return [producers[i] for i in node_reads(n) if i in producers]

    merged = [list(c) for c in clusters]
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                union = merged[i] + merged[j]
                inside = {id(n) for n in union}
                between = (reach(union, down) & reach(union, up)) - inside
                if not between:
                    merged[i] = sorted(union, key=lambda n: order[id(n)])
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def quantized_edges(view: GraphView, clusters: list[list[Node]]) -> list[tuple[Node, str]]:
    """The QuantizeLinear and DequantizeLinear nodes whose 8-bit value would cross their
    partition's edge (a Core ML program cannot take or return 8-bit tensors), with the reason:
    a QuantizeLinear must feed only DequantizeLinear nodes of its partition, and a
    DequantizeLinear read a constant or a QuantizeLinear of its partition."""
    graph = view.graph
    consumers, producers = graph.consumers(), graph.producers()
    outputs = set(graph.outputs)
    edges = []
    for cluster in clusters:
        inside = {id(n) for n in cluster}
        for n in cluster:
            if n.op_type == "QuantizeLinear":
                out = n.outputs[0]
                readers = consumers.get(out, [])
                if out in outputs or any(
                    id(c) not in inside or c.op_type != "DequantizeLinear" for c in readers
                ):
                    edges.append((n, "QuantizeLinear's 8-bit output is read outside a "
                                  "DequantizeLinear of its partition: Core ML programs cannot "
                                  "return 8-bit tensors"))  # fmt: skip
            elif n.op_type == "DequantizeLinear" and view.constant(n.inputs[0]) is None:
                src = producers.get(n.inputs[0])
                if src is None or id(src) not in inside or src.op_type != "QuantizeLinear":
                    edges.append((n, "DequantizeLinear's 8-bit input comes from outside its "
                                  "partition and not from a QuantizeLinear in it: Core ML "
                                  "programs cannot take 8-bit tensors"))  # fmt: skip
    return edges


class CoreMLExecutionProvider(ExecutionProvider):
    """Runs the partitions Core ML supports as ML Programs (see module doc)."""

    name = "CoreMLExecutionProvider"
    aliases = ("coreml",)
    device = OrtDevice(kind="cpu")  # Core ML picks CPU, GPU or Neural Engine itself

    def __init__(self, options: dict[str, str] | None = None, session_options: Any = None) -> None:
        super().__init__(options, session_options)
        self.coreml_options = CoreMLOptions.parse(self.options)
        self.reference = reference_requested() or platform.system() != "Darwin"
        self.runtime = REFERENCE_RUNTIME if self.reference else "Core ML"
        if self.reference:
            logs.log(
                logs.Severity.WARNING,
                f"{self.name} runs its partitions on the {REFERENCE_RUNTIME}, not on Core ML "
                f"({REFERENCE_ENV}=1): results check the translation to Core ML, not a device.",
                level=getattr(session_options, "log_severity_level", None),
                category="providers",
            )

    @classmethod
    def availability(cls) -> Availability:
        reason = _coremltools_reason()
        if reason:
            return Availability(False, reason)
        if reference_requested():
            return Availability(True, f"{REFERENCE_RUNTIME}, not Core ML ({REFERENCE_ENV}=1)")
        if platform.system() != "Darwin":
            return Availability(False, "Core ML runs on macOS only.")
        return Availability(True)

    def get_options(self) -> dict[str, str]:
        opts = self.coreml_options.as_dict()
        opts["runtime"] = self.runtime
        return opts

    # -- partitioning ---------------------------------------------------------------------------
    def decline(self, info: KernelInfo) -> Decline | None:
        from .capability import node_reason

        reason = node_reason(info, require_static=self.coreml_options.require_static_input_shapes)
        return None if reason is None else Decline(reason)

    def get_capability(self, view: GraphView) -> list[Claim]:
        nodes = view.nodes
        if view.outer_types and not self.coreml_options.enable_on_subgraphs:
            for n in nodes:
                view.reject(n, self.name, "a control-flow body and EnableOnSubgraphs=0")
            return []
        ok = []
        for node in nodes:
            d = self.decline(view.kernel_info(node, self))
            if d is None:
                ok.append(node)
            else:
                view.reject(node, self.name, d.reason)
        while True:
            clusters = merge_clusters(view.graph, convex_clusters(view.graph, ok))
            edges = quantized_edges(view, clusters)
            if not edges:
                return [Claim.fused_group(c) for c in clusters]
            for node, reason in edges:
                view.reject(node, self.name, reason)
            dropped = {id(n) for n, _ in edges}
            ok = [n for n in ok if id(n) not in dropped]

    def supports_op(self, domain: str, op_type: str, since: int) -> bool:
        from .builders import load_all

        return domain in ("", "ai.onnx") and op_type in load_all()

    # -- compiling --------------------------------------------------------------------------------
    def compile(self, subgraph: Graph, opsets: dict[str, int]) -> Callable[..., Any]:
        from .kernel import CompiledPartition

        return CompiledPartition(subgraph, opsets, self.coreml_options, self.reference)
