"""Execution providers used by the unit tests (registered in-process with the register_provider
fixture)."""

from __future__ import annotations

import numpy as np
import onnx

from ort_core.ir import Graph, graph_to_proto
from ort_core.provider import (
    Availability,
    Claim,
    ExecutionProvider,
    KernelProvider,
    KernelRegistry,
    convex_clusters,
)

registry = KernelRegistry("AddOnlyExecutionProvider")


@registry.kernel("Add", since=7)
def add(a, b):
    return np.add(a, b)


@registry.kernel("Mul", since=7)
def mul(a, b):
    return np.multiply(a, b)


class AddOnlyProvider(KernelProvider):
    """Claims Add and Mul only."""

    name = "AddOnlyExecutionProvider"
    aliases = ("addonly",)
    registry = registry


class UnavailableProvider(ExecutionProvider):
    name = "NeverExecutionProvider"
    aliases = ("never",)

    @classmethod
    def availability(cls):
        return Availability(False, "the Never device is not present on this machine.")


class FusingProvider(ExecutionProvider):
    """Fuses every maximal convex cluster of Relu/Add/Mul/Sigmoid and runs it with a nested
    ort-core session on the CPU provider (as a compiling provider would with its own runtime)."""

    name = "FusingExecutionProvider"
    aliases = ("fusing",)
    supported_ops = {"Relu", "Add", "Mul", "Sigmoid"}
    compiled = 0

    def get_capability(self, view):
        ok = [n for n in view.nodes if n.op_type in self.supported_ops]
        for n in view.nodes:
            if n.op_type not in self.supported_ops:
                view.reject(n, self.name, f"{n.op_type} is not supported by the fusing provider")
        return [Claim.fused_group(c) for c in convex_clusters(view.graph, ok)]

    def compile(self, subgraph: Graph, opsets):
        import ort_core

        proto = onnx.helper.make_model(
            graph_to_proto(subgraph),
            opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()],
        )
        sess = ort_core.InferenceSession(proto, providers=["CPUExecutionProvider"])
        names = list(subgraph.inputs)
        type(self).compiled += 1

        def run(*args):
            return sess.run(None, dict(zip(names, args)))

        return run
