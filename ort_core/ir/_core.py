"""The graph IR: Model, Graph, Node and the helpers that read value types.

Mutation rules. Edges are value names (strings): a node's ``inputs`` and ``outputs`` are lists of names,
``""`` marks an omitted optional input or output. A name is produced by at most one node of a graph or
is a graph input or initializer; a name used but not defined in a subgraph refers to the enclosing
scope. Passes may edit ``Graph.nodes``, ``Node.inputs``/``outputs`` and the dictionaries freely but must
keep those rules and keep ``Graph.nodes`` topologically sorted (``Graph.sort()`` restores the order).
``Node.provider`` is set by the partitioner and read by everything after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _onnx
from .._onnx import helper, numpy_helper

onnx = _onnx.onnx

__all__ = ["Model", "Graph", "Node", "tensor_dtype", "tensor_shape", "type_str"]


def tensor_dtype(type_proto: onnx.TypeProto | None) -> np.dtype | None:
    """The numpy dtype of a tensor type, or None when unknown or not a tensor."""
    if type_proto is None or type_proto.WhichOneof("value") != "tensor_type":
        return None
    elem = type_proto.tensor_type.elem_type
    if elem == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError, ValueError):
        return None


def tensor_shape(type_proto: onnx.TypeProto | None) -> tuple[int | str | None, ...] | None:
    """Dims of a tensor type: ints, strings for symbolic dims, None for unknown; None if no shape."""
    if type_proto is None or type_proto.WhichOneof("value") != "tensor_type":
        return None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        dims.append(d.dim_value if which == "dim_value" else d.dim_param if which else None)
    return tuple(dims)


def type_str(type_proto: onnx.TypeProto | None) -> str:
    """onnxruntime's spelling of a type: ``tensor(float)``, ``seq(tensor(int64))``, ``map(...)``."""
    if type_proto is None:
        return "unknown"
    which = type_proto.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        elem = getattr(type_proto, which).elem_type
        name = _ELEM_NAMES.get(elem, "undefined")
        return f"tensor({name})" if which == "tensor_type" else f"sparse_tensor({name})"
    if which == "sequence_type":
        return f"seq({type_str(type_proto.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({type_str(type_proto.optional_type.elem_type)})"
    if which == "map_type":
        key = _ELEM_NAMES.get(type_proto.map_type.key_type, "undefined")
        return f"map({key},{type_str(type_proto.map_type.value_type)})"
    return "unknown"


_ELEM_NAMES = {
    onnx.TensorProto.FLOAT: "float",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.STRING: "string",
    onnx.TensorProto.BOOL: "bool",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "double",
    onnx.TensorProto.UINT32: "uint32",
    onnx.TensorProto.UINT64: "uint64",
    onnx.TensorProto.COMPLEX64: "complex64",
    onnx.TensorProto.COMPLEX128: "complex128",
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.FLOAT8E4M3FN: "float8e4m3fn",
    onnx.TensorProto.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    onnx.TensorProto.FLOAT8E5M2: "float8e5m2",
    onnx.TensorProto.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    onnx.TensorProto.UINT4: "uint4",
    onnx.TensorProto.INT4: "int4",
}
for _name in ("FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2"):
    if hasattr(onnx.TensorProto, _name):
        _ELEM_NAMES[getattr(onnx.TensorProto, _name)] = _name.lower()


class Node:
    """One operator call. ``attributes`` holds the non-graph attributes as AttributeProto;
    ``subgraphs`` holds GRAPH attributes converted to :class:`Graph`."""

    __slots__ = (
        "op_type",
        "domain",
        "name",
        "inputs",
        "outputs",
        "attributes",
        "subgraphs",
        "doc_string",
        "overload",
        "provider",
        "_attr_cache",
    )

    def __init__(
        self,
        op_type: str,
        inputs: list[str],
        outputs: list[str],
        *,
        domain: str = "",
        name: str = "",
        attributes: dict[str, onnx.AttributeProto] | None = None,
        subgraphs: dict[str, Graph] | None = None,
        doc_string: str = "",
        overload: str = "",
    ) -> None:
        self.op_type = op_type
        self.domain = "" if domain == "ai.onnx" else domain
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.attributes = dict(attributes or {})
        self.subgraphs = dict(subgraphs or {})
        self.doc_string = doc_string
        self.overload = overload
        self.provider: str | None = None
        self._attr_cache: dict[str, Any] | None = None

    def attr(self, name: str, default: Any = None) -> Any:
        """Python value of an attribute (numpy array for tensors), or ``default`` when absent.
        Converted on first use, one attribute at a time (a forest's small attributes no longer
        convert its 40,000-entry lists)."""
        cache = self._attr_cache
        if cache is None:
            cache = self._attr_cache = {}
        elif name in cache:
            return cache[name]
        a = self.attributes.get(name)
        if a is None:
            return default
        value = cache[name] = attribute_value(a)
        return value

    def attr_values(self) -> dict[str, Any]:
        """All non-graph attributes as Python values (tensors as numpy arrays)."""
        cache = self._attr_cache
        if cache is None or list(cache) != list(self.attributes):  # missing some, or in use order
            cache = cache or {}
            self._attr_cache = cache = {
                k: cache[k] if k in cache else attribute_value(a)
                for k, a in self.attributes.items()
            }
        return cache

    def attr_array(self, name: str, dtype: Any, default: Any = None) -> Any:
        """A numeric list attribute (ints or floats) as a numpy array of ``dtype``, made from
        the proto's repeated field in one call, or ``default`` when absent. The same values as
        ``np.asarray(attr(name), dtype)``, without a Python number per entry (a forest's
        40,000-entry lists: 0.03 against 1.5 ms each). Other kinds go through :meth:`attr`."""
        a = self.attributes.get(name)
        if a is None:
            return default
        if a.type == onnx.AttributeProto.INTS:
            return np.array(a.ints, dtype)
        if a.type == onnx.AttributeProto.FLOATS:
            return np.array(a.floats, dtype)
        return np.asarray(self.attr(name), dtype)

    def set_attr(self, name: str, value: Any) -> None:
        """Set an attribute from a Python value."""
        self.attributes[name] = helper.make_attribute(name, value)
        self._attr_cache = None

    def label(self) -> str:
        """How errors name this node: ``'name' (Op)``."""
        dom = f"{self.domain}." if self.domain else ""
        return f"node '{self.name or '<unnamed>'}' ({dom}{self.op_type})"

    def __repr__(self) -> str:
        return f"Node({self.op_type!r}, {self.inputs} -> {self.outputs}, name={self.name!r})"


def attribute_value(attr: onnx.AttributeProto) -> Any:
    """An AttributeProto as a Python value; tensors become numpy arrays."""
    t = attr.type
    A = onnx.AttributeProto
    if t == A.TENSOR:
        return numpy_helper.to_array(attr.t)
    if t == A.TENSORS:
        return [numpy_helper.to_array(x) for x in attr.tensors]
    if t == A.SPARSE_TENSOR:
        return sparse_to_dense(attr.sparse_tensor)
    if t == A.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if t == A.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if t == A.TYPE_PROTO:
        return attr.tp
    if t == A.TYPE_PROTOS:
        return list(attr.type_protos)
    return helper.get_attribute_value(attr)


_CONSTANT_DTYPES = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
    "value_string": object,
    "value_strings": object,
}


def constant_value(node: Node) -> np.ndarray | None:
    """The tensor an ``ai.onnx::Constant`` node produces, or None for any other node (or a
    Constant whose single value attribute is missing)."""
    if (
        node.op_type != "Constant"
        or node.domain not in ("", "ai.onnx")
        or len(node.attributes) != 1
    ):
        return None
    ((name, attr),) = node.attributes.items()
    if name in ("value", "sparse_value"):
        return np.asarray(attribute_value(attr))
    if name in _CONSTANT_DTYPES:
        return np.array(attribute_value(attr), dtype=_CONSTANT_DTYPES[name])
    return None


def sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    """A SparseTensorProto as a dense numpy array."""
    values = numpy_helper.to_array(sp.values)
    indices = numpy_helper.to_array(sp.indices).astype(np.int64)
    dims = tuple(sp.dims)
    dense = np.zeros(int(np.prod(dims)) if dims else 1, dtype=values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(tuple(indices.T), dims) if indices.size else indices[:, 0]
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


class Graph:
    """A graph: nodes in topological order, named inputs/outputs, initializers (numpy arrays) and
    known value types (``TypeProto`` by name, from the model and from shape inference)."""

    __slots__ = (
        "name",
        "nodes",
        "inputs",
        "outputs",
        "initializers",
        "value_types",
        "doc_string",
        "value_docs",
        "outer_constants",
    )

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.value_types: dict[str, onnx.TypeProto] = {}
        self.doc_string = ""
        self.value_docs: dict[str, str] = {}
        #: constants of the enclosing graphs this (sub)graph can read, by name; filled in by the
        #: optimizer while it walks the model (empty for a main graph)
        self.outer_constants: dict[str, np.ndarray] = {}

    # -- queries ------------------------------------------------------------------------------
    def producers(self) -> dict[str, Node]:
        """Map each value name produced by a node of this graph to that node."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        """Map each value name to the nodes of this graph that read it (subgraph reads included)."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for name in node_reads(n):
                out.setdefault(name, []).append(n)
        return out

    def walk(self) -> Iterator[tuple[Graph, Node]]:
        """Every (graph, node) pair, subgraphs included, outer graphs first."""
        for n in self.nodes:
            yield self, n
            for g in n.subgraphs.values():
                yield from g.walk()

    def defined_names(self) -> set[str]:
        """Names defined in this graph's own scope: inputs, initializers, node outputs."""
        names = set(self.inputs) | set(self.initializers)
        for n in self.nodes:
            names.update(o for o in n.outputs if o)
        return names

    def outer_names(self) -> list[str]:
        """Names this graph (and its subgraphs) reads from enclosing scopes, in first-use order."""
        defined = self.defined_names()
        seen: dict[str, None] = {}
        for n in self.nodes:
            for name in node_reads(n):
                if name not in defined:
                    seen.setdefault(name, None)
        for o in self.outputs:
            if o not in defined:
                seen.setdefault(o, None)
        return list(seen)

    def sort(self) -> None:
        """Restore topological order of ``nodes`` (stable: keeps the current order when valid).

        Raises:
            InvalidGraph: the graph has a cycle.
        """
        from ..errors import InvalidGraph

        produced = self.producers()
        pending = {id(n): 0 for n in self.nodes}
        users: dict[int, list[Node]] = {}
        for n in self.nodes:
            deps = {id(produced[x]) for x in node_reads(n) if x in produced}
            deps.discard(id(n))
            pending[id(n)] = len(deps)
            for d in deps:
                users.setdefault(d, []).append(n)
        order_index = {id(n): i for i, n in enumerate(self.nodes)}
        import heapq

        ready = [(order_index[id(n)], id(n), n) for n in self.nodes if pending[id(n)] == 0]
        heapq.heapify(ready)
        result: list[Node] = []
        while ready:
            _, _, n = heapq.heappop(ready)
            result.append(n)
            for u in users.get(id(n), ()):
                pending[id(u)] -= 1
                if pending[id(u)] == 0:
                    heapq.heappush(ready, (order_index[id(u)], id(u), u))
        if len(result) != len(self.nodes):
            stuck = [n.label() for n in self.nodes if pending[id(n)] > 0][:5]
            raise InvalidGraph(
                f"graph '{self.name}' has a cycle or reads values nobody produces; nodes involved: "
                f"{', '.join(stuck)}. Fix the model so that every value is produced before it is used."
            )
        self.nodes = result

    def type_of(self, name: str) -> onnx.TypeProto | None:
        """The known type of a value, or None."""
        tp = self.value_types.get(name)
        if tp is None and name in self.initializers:
            arr = self.initializers[name]
            tp = helper.make_tensor_type_proto(_elem_type(arr), arr.shape)
        return tp


def _elem_type(arr: np.ndarray) -> int:
    try:
        return helper.np_dtype_to_tensor_dtype(arr.dtype)
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.STRING if arr.dtype == object else onnx.TensorProto.UNDEFINED


def node_reads(node: Node) -> list[str]:
    """Names a node reads: its inputs and the outer-scope names its subgraphs use."""
    names = [i for i in node.inputs if i]
    for g in node.subgraphs.values():
        names.extend(g.outer_names())
    return names


class Model:
    """A model: its main graph, opset imports, model-local functions and metadata."""

    __slots__ = (
        "graph",
        "opset_imports",
        "ir_version",
        "producer_name",
        "producer_version",
        "domain",
        "model_version",
        "doc_string",
        "metadata_props",
        "functions",
        "base_dir",
        "training_info",
    )

    def __init__(self, graph: Graph, opset_imports: dict[str, int]) -> None:
        self.graph = graph
        self.opset_imports = dict(opset_imports)
        self.ir_version = onnx.IR_VERSION
        self.producer_name = ""
        self.producer_version = ""
        self.domain = ""
        self.model_version = 0
        self.doc_string = ""
        self.metadata_props: dict[str, str] = {}
        self.functions: dict[tuple[str, str, str], onnx.FunctionProto] = {}
        self.base_dir: str | None = None
        self.training_info: list[onnx.TrainingInfoProto] = []

    def with_graph(self, graph: Graph) -> Model:
        """A model with the same metadata, opsets and functions around another graph."""
        m = Model(graph, self.opset_imports)
        for name in self.__slots__:
            if name not in ("graph", "opset_imports"):
                setattr(m, name, getattr(self, name))
        return m

    def opset(self, domain: str) -> int:
        """The imported opset version of a domain (``""`` and ``ai.onnx`` are the same)."""
        if domain == "ai.onnx":
            domain = ""
        return self.opset_imports.get(domain, 1 if domain else 0)
