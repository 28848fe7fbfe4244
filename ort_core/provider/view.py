"""What a provider sees of a graph while it negotiates (:class:`GraphView`) and of one node while
it decides and builds (:class:`KernelInfo`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Graph, Node, tensor_dtype, tensor_shape


class GraphView:
    """What a provider sees during partitioning: the graph, the opsets, value types, constants, and
    which nodes are still unassigned. Providers call :meth:`reject` to say why they leave a node."""

    def __init__(
        self, graph: Graph, opsets: dict[str, int], outer_types: dict[str, Any] | None = None
    ):
        self.graph = graph
        self.opsets = opsets
        self.outer_types = outer_types or {}
        self.reasons: dict[int, list[str]] = {}
        self.invalid: set[int] = set()

    @property
    def nodes(self) -> list[Node]:
        """Unassigned nodes, in topological order."""
        return [n for n in self.graph.nodes if n.provider is None]

    def opset(self, domain: str) -> int:
        domain = "" if domain == "ai.onnx" else domain
        return self.opsets.get(domain, 1 if domain else 0)

    def type_of(self, name: str):
        tp = self.graph.type_of(name)
        return tp if tp is not None else self.outer_types.get(name)

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer that is not a graph input (so cannot be overridden)."""
        if name in self.graph.initializers and name not in self.graph.inputs:
            return self.graph.initializers[name]
        return None

    def kernel_info(self, node: Node, provider: Any = None) -> KernelInfo:
        return KernelInfo(
            node,
            self.opset(node.domain),
            [self.type_of(i) if i else None for i in node.inputs],
            [self.type_of(o) if o else None for o in node.outputs],
            {
                i: c
                for i, name in enumerate(node.inputs)
                if name and (c := self.constant(name)) is not None
            },
            provider=provider,
        )

    def reject(self, node: Node, provider: str, reason: str, expandable: bool = True) -> None:
        """Record why ``provider`` does not take ``node`` (shown in errors and assignment info).

        ``expandable=False`` says the node itself is at fault (an attribute value the op does not
        allow, say): the core then reports it rather than expanding the op's function body."""
        self.reasons.setdefault(id(node), []).append(f"{provider}: {reason}")
        if not expandable:
            self.invalid.add(id(node))


class KernelInfo:
    """Everything a kernel builder may read about its node at session creation."""

    __slots__ = (
        "node",
        "opset",
        "input_types",
        "output_types",
        "constants",
        "provider",
        "implicit_inputs",
        "subgraph_runners",
        "session_options",
    )

    def __init__(
        self,
        node: Node,
        opset: int,
        input_types: list,
        output_types: list,
        constants: dict[int, np.ndarray],
        *,
        provider: Any = None,  # the ExecutionProvider asking
        implicit_inputs: Sequence[str] = (),
        subgraph_runners: dict[str, Any] | None = None,
        session_options: Any = None,
    ) -> None:
        self.node = node
        self.opset = opset
        self.input_types = input_types
        self.output_types = output_types
        self.constants = constants
        self.provider = provider
        self.implicit_inputs = list(implicit_inputs)
        self.subgraph_runners = subgraph_runners or {}
        self.session_options = session_options

    @property
    def attrs(self) -> dict[str, Any]:
        """Non-graph attributes as Python values."""
        return self.node.attr_values()

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attr(name, default)

    def attr_array(self, name: str, dtype: Any, default: Any = None) -> Any:
        """A numeric list attribute as a numpy array of ``dtype`` (or ``default`` when absent),
        without a Python number per entry: see :meth:`ort_core.ir.Node.attr_array`."""
        return self.node.attr_array(name, dtype, default)

    @property
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.node.outputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def input_dtype(self, i: int) -> np.dtype | None:
        return tensor_dtype(self.input_types[i]) if i < len(self.input_types) else None

    def input_shape(self, i: int):
        return tensor_shape(self.input_types[i]) if i < len(self.input_types) else None

    def output_dtype(self, i: int) -> np.dtype | None:
        return tensor_dtype(self.output_types[i]) if i < len(self.output_types) else None

    def constant(self, i: int) -> np.ndarray | None:
        """The value of input ``i`` when it is known at session creation (a constant initializer)."""
        return self.constants.get(i)

    def subgraph(self, name: str):
        """The runner of a GRAPH attribute; call ``runner.bind(outer)(*inputs)`` per run."""
        return self.subgraph_runners[name]

    def split_implicit(self, args: Sequence[Any]) -> tuple[Sequence[Any], dict[str, Any]]:
        """Split a kernel's call arguments into explicit inputs and bound subgraphs."""
        n = len(self.node.inputs)
        outer = dict(zip(self.implicit_inputs, args[n:]))
        bound = {name: r.bind(outer) for name, r in self.subgraph_runners.items()}
        return args[:n], bound
