"""Nodes checked against their ONNX schemas before shape inference sees them.

A node that breaks its schema (a required attribute missing, an attribute of the wrong type, too few
or too many inputs or outputs, an op the model's opset does not define yet) is an
:class:`~ort_core.errors.InvalidGraph` naming the node, its op, domain and opset, what is wrong and
how to fix it, as onnxruntime rejects the same models with ``InvalidGraph``. Checking first keeps
malformed nodes away from onnx's inference functions and from the kernels, which would otherwise
fail later with a bare ``KeyError`` (a Loop without its ``body``, for instance).

Ops onnx has no schema for (``com.microsoft`` contrib ops, custom domains) are not checked: their
provider decides. The checks run on the IR just converted from the protobuf (Python lists and
dicts, cheaper to read than protobuf fields), before shape inference, with the schema facts cached
per (domain, op, opset): a couple of microseconds per node.
"""

from __future__ import annotations

import math
from functools import lru_cache

from .. import _onnx
from ..errors import Fail, InvalidGraph
from . import _schema_table
from ._core import Graph, Node
from ._schema_table import SchemaFacts

onnx = _onnx.onnx

__all__ = ["SchemaFacts", "schema_facts", "validate_graph"]

_A = onnx.AttributeProto
_GRAPH, _TENSOR, _TENSORS = _A.GRAPH, _A.TENSOR, _A.TENSORS
_VARIADIC = _schema_table.VARIADIC
_SINGLE = _schema_table.SINGLE

#: AttributeProto type numbers -> their names, for messages
_ATTR_TYPE_NAMES = {v: k for k, v in _A.AttributeType.items()}

#: which field of an AttributeProto holds the value of each type (for attributes without a type)
_ATTR_FIELDS = (
    ("f", _A.FLOAT),
    ("i", _A.INT),
    ("s", _A.STRING),
    ("t", _A.TENSOR),
    ("g", _A.GRAPH),
    ("sparse_tensor", _A.SPARSE_TENSOR),
    ("tp", _A.TYPE_PROTO),
    ("floats", _A.FLOATS),
    ("ints", _A.INTS),
    ("strings", _A.STRINGS),
    ("tensors", _A.TENSORS),
    ("graphs", _A.GRAPHS),
    ("sparse_tensors", _A.SPARSE_TENSORS),
    ("type_protos", _A.TYPE_PROTOS),
)


@lru_cache(maxsize=4096)
def _live_facts(op_type: str, domain: str, version: int) -> SchemaFacts | None:
    defs = onnx.defs
    try:
        s = defs.get_schema(op_type, max_inclusive_version=version, domain=domain)
    except defs.SchemaError:
        return None
    return _schema_table.facts_of(s)


def schema_facts(op_type: str, domain: str, version: int) -> SchemaFacts | None:
    """The schema facts of ``domain::op_type`` in force at opset ``version``, or None when onnx
    defines no such op at that version: from the table on disk in a process without onnx, from
    onnx where it is imported (see :mod:`._schema_table`)."""
    if _schema_table.use_table():
        return _schema_table.lookup(op_type, domain, version)
    return _live_facts(op_type, domain, version)


def _first_version(op_type: str, domain: str, after: int) -> int | None:
    """The first opset above ``after`` that defines the op (error path only)."""
    if _schema_table.use_table():
        later = [v for v in _schema_table.versions(op_type, domain) if v > after]
        return later[0] if later else None
    try:
        newest = onnx.defs.get_schema(op_type, domain=domain).since_version
    except onnx.defs.SchemaError:
        return None
    for v in range(after + 1, newest + 1):
        if schema_facts(op_type, domain, v) is not None:
            return v
    return newest


def normalize_domain(domain: str) -> str:
    """``ai.onnx`` and ``""`` are the same domain; ort-core spells it ``""``."""
    return "" if domain == "ai.onnx" else domain


def validate_graph(graph: Graph, opsets: dict[str, int]) -> frozenset[tuple[str, str]]:
    """Check every node of a graph and its subgraphs against its schema.

    Args:
        graph: the main graph of a model, just converted from protobuf.
        opsets: the model's opset imports (domain ``""`` for ai.onnx). Nodes of domains the model
            does not import, and ops onnx has no schema for, are skipped.

    Returns:
        The (domain, op_type) pairs the graphs use, which tells :func:`._infer.infer_types`
        whether it needs to look closer.

    Raises:
        InvalidGraph: a node breaks its schema; the message names the node, op, domain and opset,
            what is wrong and how to fix it. Also a node of a control-flow body that defines a
            name already defined (onnxruntime's class for that case).
        Fail: a node of the main graph defines a name that a graph input, an initializer or
            another node already defines (the graph is not in SSA form; onnxruntime's class).
    """
    cache: dict[tuple[str, str], SchemaFacts | None] = {}
    _check_ssa(graph, frozenset(), True)
    _validate(graph, opsets, cache)
    return frozenset((domain, op) for op, domain in cache)


def _check_ssa(graph: Graph, outer: frozenset[str], top: bool) -> None:
    """Every node output is a new name: not a graph input or initializer, not another node's
    output, not a name of an enclosing graph (a body's own inputs may reuse outer names, as
    onnxruntime allows). A second definition would silently replace the first value."""
    defined = set(graph.inputs)
    defined.update(graph.initializers)
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if not name:
                continue
            if name in defined or name in outer:
                where = "this graph" if name in defined else "an enclosing graph"
                cls = Fail if top else InvalidGraph
                raise cls(
                    f"This is an invalid model. Error: Duplicate definition of name ({name}): "
                    f"{_label(node, index)} of graph '{graph.name}' defines '{name}', which "
                    f"{where} already defines. ONNX graphs give every value one definition "
                    "(SSA form); rename one of the two."
                )
            defined.add(name)
    inner = None
    for node in graph.nodes:
        if node.subgraphs:
            inner = inner if inner is not None else outer | defined
            for sub in node.subgraphs.values():
                _check_ssa(sub, inner, False)


def _resolve(node: Node, index: int, graph: Graph, opsets: dict[str, int]) -> SchemaFacts | None:
    """The facts a node is checked against, or None to leave it alone."""
    version = opsets.get(node.domain)
    if version is None:
        return None
    facts = schema_facts(node.op_type, node.domain, version)
    if facts is None:
        if _schema_table.use_table():  # the table holds every registered schema
            _check_unknown_version(node, index, graph, version)
            return None
        try:  # a plugin may have registered the schema since the lookup was cached
            onnx.defs.get_schema(node.op_type, max_inclusive_version=version, domain=node.domain)
        except onnx.defs.SchemaError:
            _check_unknown_version(node, index, graph, version)
            return None
        _live_facts.cache_clear()
        facts = schema_facts(node.op_type, node.domain, version)
    return facts


def _validate(graph: Graph, opsets: dict[str, int], cache: dict) -> None:
    """The hot loop: cheap tests on every node; a node that fails one is examined by
    :func:`_check_node`, which raises with the details (or finds it fine: an empty optional
    input, an internal ``__`` attribute)."""
    for index, node in enumerate(graph.nodes):
        key = (node.op_type, node.domain)
        try:
            facts = cache[key]
        except KeyError:
            facts = cache[key] = _resolve(node, index, graph, opsets)
        if facts is not None:
            ins, outs = node.inputs, node.outputs
            n_in, n_out = len(ins), len(outs)
            odd = (
                n_in < facts.min_input
                or n_in > facts.max_input
                or n_out < facts.min_output
                or n_out > facts.max_output
                or (facts.single_inputs and "" in ins)
                or (facts.single_outputs and "" in outs)
            )
            types, required = facts.attribute_types, facts.required_set
            n_required = 0
            for name, a in node.attributes.items():
                t = a.type
                if types.get(name) != t or a.ref_attr_name:
                    odd = True
                elif (t == _TENSOR or t == _TENSORS) and _attribute_tensor_problem(a):
                    odd = True
                if name in required:
                    n_required += 1
            for name in node.subgraphs:
                if types.get(name) != _GRAPH:
                    odd = True
                if name in required:
                    n_required += 1
            if odd or n_required != len(required):
                _check_node(node, index, graph, opsets[node.domain], facts)
        for sub in node.subgraphs.values():
            _validate(sub, opsets, cache)


def _label(node: Node, index: int) -> str:
    return f"node '{node.name}'" if node.name else f"node #{index} (unnamed)"


def _where(node: Node, index: int, graph: Graph, version: int) -> str:
    return (
        f"{_label(node, index)} ({node.op_type}, domain '{node.domain or 'ai.onnx'}', opset "
        f"{version}) in graph '{graph.name}'"
    )


def _check_unknown_version(node: Node, index: int, graph: Graph, version: int) -> None:
    first = _first_version(node.op_type, node.domain, version)
    if first is None:
        return  # onnx does not know the op at all: a contrib or custom op, its provider decides
    raise InvalidGraph(
        f"{_where(node, index, graph, version)}: no op {node.op_type} is registered for opset "
        f"{version} of domain '{node.domain or 'ai.onnx'}'; it exists from opset {first}. Import "
        f"opset {first} or later for that domain (onnx.version_converter converts the other "
        "nodes), or replace the node with ops of the model's opset."
    )


def _arity(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low} to {high}" if high < 2**31 - 1 else f"{low} or more"


def _check_node(node: Node, index: int, graph: Graph, version: int, facts: SchemaFacts) -> None:
    """Raise InvalidGraph if the node breaks its schema, saying what and how to fix it."""
    what = None
    n_in, n_out = len(node.inputs), len(node.outputs)
    if not facts.min_input <= n_in <= facts.max_input:
        what = (
            f"has {n_in} inputs but {node.op_type}-{facts.since_version} takes "
            f"{_arity(facts.min_input, facts.max_input)}. Give the node exactly the inputs "
            "its schema lists (an omitted optional input in the middle is an empty name '')."
        )
    elif not facts.min_output <= n_out <= facts.max_output:
        what = (
            f"has {n_out} outputs but {node.op_type}-{facts.since_version} gives "
            f"{_arity(facts.min_output, facts.max_output)}. Give the node exactly the "
            "outputs its schema lists (an unused optional output is an empty name '' or left out "
            "at the end)."
        )
    else:
        what = _check_slots(node.inputs, facts.inputs, "input", node.op_type) or _check_slots(
            node.outputs, facts.outputs, "output", node.op_type
        )
    if what is None:
        what = _check_attributes(node, facts)
    if what is not None:
        raise InvalidGraph(f"{_where(node, index, graph, version)} {what}")


def _check_slots(names: list[str], formals, kind: str, op_type: str) -> str | None:
    for i, (name, option, min_arity) in enumerate(formals):
        if option == _VARIADIC:
            given = sum(1 for n in names[i:] if n)
            if given < min_arity:
                return (
                    f"gives {given} values to its variadic {kind} '{name}', which takes at least "
                    f"{min_arity}. Add the missing {kind}s."
                )
            return None
        if option == _SINGLE and (i >= len(names) or not names[i]):
            return (
                f"has an empty name for its required {kind} {i} ('{name}'). Every required "
                f"{kind} of {op_type} needs a value name; only optional ones may be ''."
            )
    return None


def _type_name(t: int) -> str:
    return _ATTR_TYPE_NAMES.get(t, str(t))


def _check_attributes(node: Node, facts: SchemaFacts) -> str | None:
    given = [(name, a.type, a) for name, a in node.attributes.items()]
    given += [(name, _GRAPH, None) for name in node.subgraphs]
    for name, t, a in given:
        if name.startswith("__"):
            continue  # onnx's internal attributes, allowed on every op
        expected = facts.attribute_types.get(name)
        if expected is None:
            known = ", ".join(sorted(facts.attribute_types)) or "none"
            return (
                f"has attribute '{name}', which {node.op_type}-{facts.since_version} does not "
                f"define (its attributes: {known}). Remove it or fix its name."
            )
        if a is not None and a.ref_attr_name:
            return (
                f"has attribute '{name}' that refers to '{a.ref_attr_name}' (ref_attr_name): "
                "only nodes inside a function body may refer to the function's attributes. Give "
                "the attribute its value instead."
            )
        if t == _A.UNDEFINED:
            held = [f for f, _ in _ATTR_FIELDS if _has_value(a, f)]
            return (
                f"has attribute '{name}' without a type (the field 'type' of AttributeProto is "
                f"required{'; it holds ' + held[0] if held else ''}). Rebuild the attribute with "
                f"onnx.helper.make_attribute, which sets the type ({_type_name(expected)} here)."
            )
        if t != expected and not (
            # onnxruntime accepts a sparse tensor in Constant's 'value' (its own test models use
            # it); it is the same constant as 'sparse_value' holds
            node.op_type == "Constant" and name == "value" and t == _A.SPARSE_TENSOR
        ):
            return (
                f"has attribute '{name}' of type {_type_name(t)}, but "
                f"{node.op_type}-{facts.since_version} defines it as {_type_name(expected)}. "
                "Re-create it with a value of that type (onnx.helper.make_attribute picks the type "
                "from the Python value: an int for INT, a list of ints for INTS, a GraphProto for "
                "GRAPH...)."
            )
        problem = _attribute_tensor_problem(a) if t in (_TENSOR, _TENSORS) else None
        if problem:
            return (
                f"has a tensor in attribute '{name}' that cannot be read: {problem}. Give the "
                "tensor a data type and as many values as its dims ask for "
                "(onnx.helper.make_tensor or onnx.numpy_helper.from_array build one)."
            )
    present = {name for name, _, _ in given}
    for name in facts.required:
        if name not in present:
            kind = _type_name(facts.attribute_types[name])
            hint = (
                f" ({node.op_type} runs that graph; build it with onnx.helper.make_graph)"
                if kind == "GRAPH"
                else ""
            )
            return (
                f"lacks its required attribute '{name}' ({kind}){hint}. Add the attribute to the "
                f"node, e.g. onnx.helper.make_node('{node.op_type}', ..., {name}=...), or "
                "re-export the model."
            )
    return None


def _has_value(a: onnx.AttributeProto, field: str) -> bool:
    try:
        return a.HasField(field)
    except ValueError:  # a repeated field
        return len(getattr(a, field)) > 0


_T = onnx.TensorProto
#: element type -> (the typed field holding its values, values per element, bytes per element)
_TENSOR_STORAGE = {
    _T.FLOAT: ("float_data", 1, 4),
    _T.COMPLEX64: ("float_data", 2, 8),
    _T.DOUBLE: ("double_data", 1, 8),
    _T.COMPLEX128: ("double_data", 2, 16),
    _T.INT64: ("int64_data", 1, 8),
    _T.UINT32: ("uint64_data", 1, 4),
    _T.UINT64: ("uint64_data", 1, 8),
    _T.STRING: ("string_data", 1, 0),
    _T.INT32: ("int32_data", 1, 4),
    _T.INT16: ("int32_data", 1, 2),
    _T.INT8: ("int32_data", 1, 1),
    _T.UINT16: ("int32_data", 1, 2),
    _T.UINT8: ("int32_data", 1, 1),
    _T.BOOL: ("int32_data", 1, 1),
    _T.FLOAT16: ("int32_data", 1, 2),
    _T.BFLOAT16: ("int32_data", 1, 2),
}


def _attribute_tensor_problem(a: onnx.AttributeProto) -> str | None:
    for t in [a.t] if a.type == _A.TENSOR else a.tensors:
        problem = _tensor_problem(t)
        if problem:
            return problem
    return None


def _tensor_problem(t: onnx.TensorProto) -> str | None:
    """Why an attribute's tensor cannot be read (no data type, not as many values as its dims
    ask for), or None. External tensors are checked when their data is read; the rarer element
    types (float8, 4-bit...) go through onnx's checker. Written for speed: models hold hundreds of
    Constant and ConstantOfShape nodes."""
    storage = _TENSOR_STORAGE.get(t.data_type)
    if storage is None:
        return _rare_tensor_problem(t)
    if t.data_location == _T.EXTERNAL:
        return None
    dims = t.dims
    rank = len(dims)
    count = 1 if rank == 0 else dims[0] if rank == 1 else math.prod(dims)
    field, per_element, size = storage
    if size and t.HasField("raw_data"):
        got = len(t.raw_data)
        if got != count * size:
            return f"its raw_data holds {got} bytes, its dims {list(dims)} need {count * size}"
        return None
    got = len(getattr(t, field))
    if got != count * per_element:
        return f"it holds {got} values in {field}, its dims {list(dims)} need {count * per_element}"
    return None


def _rare_tensor_problem(t: onnx.TensorProto) -> str | None:
    if not t.data_type:
        return "it has no data type (TensorProto.data_type is required)"
    if t.data_location == _T.EXTERNAL:
        return None
    try:
        onnx.checker.check_tensor(t)
    except onnx.checker.ValidationError as e:
        return str(e).strip().rstrip(".")
    return None
