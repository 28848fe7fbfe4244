"""Capability negotiation: providers propose claims in the user's priority order, the core decides.

The partitioner assigns every node of a graph to one provider (``Node.provider``). Fused claims are
replaced by one node whose op is ``ort_core.fused::<Provider>_subgraph_<n>`` and whose subgraph is kept
in :attr:`Partition.fused`. Nodes nobody claims are expanded when the ONNX standard (or the model)
defines their op as a function, and offered again; what still has no provider raises
:class:`~ort_core.errors.NotImplemented`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _onnx, errors
from .errors import EPFail
from .ir import (
    Graph,
    Node,
    add_inferred_types,
    constant_value,
    graph_from_proto,
    infer_types,
    node_reads,
    node_to_proto,
)
from .ir._schema_table import SINGLE
from .ir._validate import schema_facts
from .provider import ExecutionProvider, GraphView, schema_for

onnx = _onnx.onnx

__all__ = [
    "Partition",
    "ModelPartition",
    "partition",
    "partition_model",
    "scope_types",
    "expand_function",
    "type_body",
    "is_convex",
    "EpAssignedNode",
    "EpAssignedSubgraph",
]

FUSED_DOMAIN = "ort_core.fused"
_MAX_EXPANSION_ROUNDS = 8


@dataclass
class EpAssignedNode:
    """A node in :meth:`InferenceSession.get_provider_graph_assignment_info` (onnxruntime's shape)."""

    name: str
    domain: str
    op_type: str


@dataclass
class EpAssignedSubgraph:
    """The nodes one provider runs as one unit: a fused subgraph, or a single kernel node."""

    ep_name: str
    nodes: list[EpAssignedNode]

    def get_nodes(self) -> list[EpAssignedNode]:
        return list(self.nodes)


@dataclass
class Partition:
    """The result of partitioning one graph."""

    fused: dict[int, tuple[ExecutionProvider, Graph]] = field(default_factory=dict)
    assignment: list[EpAssignedSubgraph] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(
        default_factory=dict
    )  # node name -> why providers refused
    expanded: list[str] = field(default_factory=list)  # labels of nodes expanded into functions
    #: claims the core refused (already taken, not convex), each with the provider and the reason
    refused: list[str] = field(default_factory=list)

    def nodes_per_provider(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sub in self.assignment:
            counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.nodes)
        return counts


def is_convex(
    graph: Graph,
    nodes: list[Node],
    consumers: dict[str, list[Node]] | None = None,
    order: dict[int, int] | None = None,
) -> bool:
    """True when no path leaves ``nodes`` and comes back (fusing them creates no cycle).

    Callers that test many groups of one graph pass ``graph.consumers()`` once, and ``order``
    (``id(node)`` -> position in the topologically sorted ``graph.nodes``): then only nodes
    before the group's last one are followed, since no later node can lead back into it."""
    inside = {id(n) for n in nodes}
    if consumers is None:
        consumers = graph.consumers()
    last = max(order[id(n)] for n in nodes) if order is not None and nodes else None

    def early(c: Node) -> bool:
        return last is None or order[id(c)] < last  # type: ignore[index]

    frontier: list[Node] = []
    for n in nodes:
        for o in n.outputs:
            if o:
                frontier.extend(c for c in consumers.get(o, ()) if id(c) not in inside and early(c))
    seen: set[int] = set()
    while frontier:
        n = frontier.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        for o in n.outputs:
            for c in consumers.get(o, ()) if o else ():
                if id(c) in inside:
                    return False
                if early(c):
                    frontier.append(c)
    return True


class Names:
    """Names the partitioner gives within one session: fused subgraphs ``<Provider>_subgraph_<k>``
    (k counts per provider) and the prefixes of expanded function bodies. One per session, so
    the same model gets the same names in every session (no process-wide counter)."""

    def __init__(self) -> None:
        self._fused: dict[str, int] = {}
        self._prefixes: set[str] = set()

    def fused(self, ep_name: str) -> str:
        short = ep_name.replace("ExecutionProvider", "")
        k = self._fused.get(short, 0)
        self._fused[short] = k + 1
        return f"{short}_subgraph_{k}"

    def prefix(self, graph: Graph, node: Node) -> str:
        """A prefix for the values and nodes of ``node``'s expanded body that no name of
        ``graph`` (or an earlier expansion) starts with."""
        base = f"{node.name or node.op_type}__"
        taken = self._prefixes
        names = None
        k = 0
        while True:
            cand = base if k == 0 else f"{node.name or node.op_type}__{k}__"
            if cand not in taken:
                if names is None:
                    names = _names_in(graph)
                if not any(n.startswith(cand) for n in names):
                    taken.add(cand)
                    return cand
            k += 1


def _names_in(graph: Graph) -> set[str]:
    out = set(graph.inputs) | set(graph.outputs) | set(graph.initializers)
    for _, n in graph.walk():
        out.update(n.inputs)
        out.update(n.outputs)
        out.add(n.name)
    out.discard("")
    return out


def _capability_failed(ep: ExecutionProvider, view: GraphView, e: Exception) -> list:
    """A provider whose get_capability raised takes nothing: every node it was asked about
    records why, and a warning names the provider and the error (the session goes on with the
    next providers); with ``session.strict_providers`` it is an EPFail."""
    reason = f"its get_capability failed ({type(e).__name__}: {e})"
    so = getattr(ep, "session_options", None)
    if so is not None and hasattr(so, "_flag") and so._flag("session.strict_providers"):
        raise errors.EPFail(
            f"{ep.name}: {reason}. This is a bug of the provider; report it to its authors."
        ) from e
    for node in view.nodes:
        view.reject(node, ep.name, reason)
    from . import logs

    logs.log(
        logs.Severity.WARNING,
        f"{ep.name}: {reason}; its nodes go to the next providers. This is a bug of the "
        "provider: report it to its authors.",
        level=getattr(so, "log_severity_level", None),
        category="partitioner",
        stacklevel=5,
    )
    return []


def partition(
    graph: Graph,
    opsets: dict[str, int],
    providers: list[ExecutionProvider],
    *,
    functions: dict[tuple[str, str, str], onnx.FunctionProto] | None = None,
    outer_types: dict | None = None,
    names: Names | None = None,
) -> Partition:
    """Assign every node of ``graph`` (not its subgraphs: see :func:`partition_model`) to one of
    ``providers``, in order. Expanding a model-local function adds the opsets it imports that the
    model lacks to ``opsets`` (the model's own imports).

    Raises:
        NotImplemented: a node that no provider can run, with the reasons each provider gave.
        EPFail: a provider made an invalid claim.
    """
    functions = functions or {}
    names = names or Names()
    result = Partition()
    view = GraphView(graph, opsets, outer_types)
    for node in graph.nodes:
        check_arity(node, view.opset(node.domain))
    for _ in range(_MAX_EXPANSION_ROUNDS):
        for ep in providers:
            if not view.nodes:
                break
            try:
                claims = ep.get_capability(view)
            except errors.OrtError:
                raise
            except Exception as e:  # a provider's bug must not take the session down
                claims = _capability_failed(ep, view, e)
            in_graph = {id(n) for n in graph.nodes}  # kept up to date by _apply_claim
            for claim in claims:
                _apply_claim(view, ep, claim, result, names, in_graph)
        pending = view.nodes
        if not pending:
            break
        expanded_any = False
        for node in pending:
            if id(node) in view.invalid:  # a provider found the node itself at fault: report it
                continue
            body = function_body(node, opsets, functions, view, prefix=names.prefix(graph, node))
            if body is None:
                continue
            _import_function_opsets(node, opsets, functions)
            type_body(view, body, functions)
            _replace_with(graph, node, body)
            result.expanded.append(node.label())
            expanded_any = True
        if not expanded_any:
            break
    pending = view.nodes
    if pending:
        node = pending[0]
        opset = view.opset(node.domain)
        asked = ", ".join(ep.name for ep in providers) or "none"
        why = "; ".join(view.reasons.get(id(node), [])) or "no provider has a kernel for it"
        more = f" ({len(pending) - 1} more node(s) are unassigned)" if len(pending) > 1 else ""
        raise errors.NotImplemented(
            f"Could not find an implementation for {node.label()} at opset {opset} of domain "
            f"'{node.domain or 'ai.onnx'}'; providers asked: {asked}. Reasons: {why}.{more} "
            "Install a provider that supports this op, or change the model to avoid it."
        )
    for n in graph.nodes:
        reasons = view.reasons.get(id(n))
        if reasons:
            result.reasons[n.name or n.op_type] = reasons
    graph.sort()
    result.assignment = assignment_of(graph, result)
    return result


@dataclass
class ModelPartition:
    """The partitions of every graph of a model, control-flow bodies included (keyed by the
    graph's identity), and the types each graph sees from its enclosing graphs."""

    graphs: dict[int, Partition] = field(default_factory=dict)
    outer: dict[int, dict] = field(default_factory=dict)

    def of(self, graph: Graph) -> Partition:
        part = self.graphs.get(id(graph))
        if part is None:
            raise EPFail(
                f"graph '{graph.name}' was not partitioned: a pass created it after partitioning, "
                "which passes may not do (a bug of that pass)."
            )
        return part

    def outer_types(self, graph: Graph) -> dict:
        return self.outer.get(id(graph), {})

    def refresh(self, graphs: list[Graph]) -> None:
        """After provider-scoped passes changed ``graphs``: sort each and list its assignment."""
        for g in graphs:
            part = self.graphs.get(id(g))
            if part is not None:
                g.sort()
                part.assignment = assignment_of(g, part)


def scope_types(graph: Graph, outer_types: dict | None) -> dict:
    """The value types visible inside ``graph``'s subgraphs: the enclosing graphs', then its own."""
    types = dict(outer_types or {})
    types.update(graph.value_types)
    for name in graph.initializers:
        tp = graph.type_of(name)
        if tp is not None:
            types[name] = tp
    return types


def partition_model(
    model,
    providers: list[ExecutionProvider],
    graph: Graph | None = None,
    *,
    outer_types: dict | None = None,
) -> ModelPartition:
    """Partition ``graph`` (the model's main graph by default), then the bodies of its
    control-flow nodes, recursively, each with the types of its enclosing graphs. Subgraphs of
    a fused node are the compiling provider's business and are not partitioned.

    Raises:
        NotImplemented, EPFail, InvalidGraph: as :func:`partition`, for any graph.
    """
    result = ModelPartition()
    names = Names()

    def visit(g: Graph, outer: dict | None) -> None:
        result.outer[id(g)] = dict(outer or {})
        part = partition(
            g,
            model.opset_imports,
            providers,
            functions=model.functions,
            outer_types=outer,
            names=names,
        )
        result.graphs[id(g)] = part
        inner = None
        for node in g.nodes:
            if node.subgraphs and id(node) not in part.fused:
                if inner is None:
                    inner = scope_types(g, outer)
                for sub in node.subgraphs.values():
                    visit(sub, inner)

    visit(graph if graph is not None else model.graph, outer_types)
    return result


def assignment_of(graph: Graph, part: Partition) -> list[EpAssignedSubgraph]:
    """One entry per kernel node or fused subgraph of ``graph``, in execution order."""
    out = []
    for n in graph.nodes:
        if id(n) in part.fused:
            ep, sub = part.fused[id(n)]
            out.append(
                EpAssignedSubgraph(
                    ep.name, [EpAssignedNode(m.name, m.domain, m.op_type) for m in sub.nodes]
                )
            )
        else:
            out.append(
                EpAssignedSubgraph(n.provider or "", [EpAssignedNode(n.name, n.domain, n.op_type)])
            )
    return out


def unfused_copy(graph: Graph, part: Partition) -> Graph:
    """A copy of ``graph`` where each fused node is replaced by the nodes it fused (for saving)."""
    g = Graph(graph.name)
    g.inputs, g.outputs = list(graph.inputs), list(graph.outputs)
    g.initializers = dict(graph.initializers)
    g.value_types = dict(graph.value_types)
    g.doc_string, g.value_docs = graph.doc_string, dict(graph.value_docs)
    for n in graph.nodes:
        fused = part.fused.get(id(n))
        if fused is None:
            g.nodes.append(n)
        else:
            sub = fused[1]
            g.nodes.extend(sub.nodes)
            for name, arr in sub.initializers.items():
                g.initializers.setdefault(name, arr)
    return g


def check_arity(node: Node, opset: int) -> None:
    """Raise InvalidGraph when a node has too few or too many inputs or outputs for its schema, or
    omits a required input."""
    facts = schema_facts(node.op_type, node.domain, opset)
    if facts is None:
        return
    n_in, n_out = len(node.inputs), len(node.outputs)
    where = f"{node.label()} at opset {opset}"
    if not facts.min_input <= n_in <= facts.max_input:
        raise errors.InvalidGraph(
            f"{where} has {n_in} inputs; {node.op_type} takes {facts.min_input} to "
            f"{facts.max_input}. Fix the node's inputs."
        )
    if not facts.min_output <= n_out <= facts.max_output:
        raise errors.InvalidGraph(
            f"{where} has {n_out} outputs; {node.op_type} gives {facts.min_output} to "
            f"{facts.max_output}. Fix the node's outputs."
        )
    for i, (name, option, _) in enumerate(facts.inputs):
        if option == SINGLE and (i >= n_in or not node.inputs[i]):
            raise errors.InvalidGraph(
                f"{where} omits its required input {i} ('{name}'). Give the node a value for it."
            )


def _apply_claim(
    view: GraphView,
    ep: ExecutionProvider,
    claim,
    result: Partition,
    names: Names,
    in_graph: set[int],
) -> None:
    """Assign (or fuse) a claim's nodes; ``in_graph`` is the ids of the graph's nodes, updated
    here when a fusion replaces nodes (made once per provider, not once per claim: a QDQ
    MobileNetV2's 300 single-node claims each rebuilt it)."""
    graph = view.graph
    nodes = claim.nodes
    for n in nodes:
        if id(n) not in in_graph:
            raise EPFail(f"{ep.name} claimed {n.label()}, which is not in graph '{graph.name}'.")
    if not claim.fused and len(nodes) != 1:
        raise EPFail(f"{ep.name} made a non-fused claim of {len(nodes)} nodes; claim one node.")
    taken = [n for n in nodes if n.provider is not None]
    if taken:
        # claimed earlier (by a higher-priority provider): refused, as onnxruntime does
        owners = sorted({n.provider or "" for n in taken})
        _refuse(result, ep, claim, f"{taken[0].label()} is already taken by {', '.join(owners)}")
        return
    if not claim.fused:
        nodes[0].provider = ep.name
        return
    if not nodes:
        return
    if not is_convex(graph, nodes):
        # fusing would create a cycle: the nodes stay unassigned for the next provider
        _refuse(
            result, ep, claim, "the nodes are not convex (a path leaves the set and comes back)"
        )
        return
    sub = _extract(view, nodes)
    sub.name = claim.name or names.fused(ep.name)
    fused = Node(sub.name, list(sub.inputs), list(sub.outputs), domain=FUSED_DOMAIN, name=sub.name)
    fused.provider = ep.name
    for n in nodes:
        n.provider = ep.name
    members = {id(n) for n in nodes}
    pos = min(i for i, n in enumerate(graph.nodes) if id(n) in members)
    rest = [n for n in graph.nodes if id(n) not in members]
    rest.insert(pos, fused)
    graph.nodes = rest
    in_graph.difference_update(members)
    in_graph.add(id(fused))
    result.fused[id(fused)] = (ep, sub)


def _refuse(result: Partition, ep: ExecutionProvider, claim, reason: str) -> None:
    labels = [n.name or n.op_type for n in claim.nodes]
    shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
    kind = "fused claim" if claim.fused else "claim"
    result.refused.append(f"{ep.name}: {kind} of {len(labels)} node(s) [{shown}] refused: {reason}")


def _extract(view: GraphView, nodes: list[Node]) -> Graph:
    """A standalone graph of ``nodes``: inputs are the values they read from outside, outputs the
    values read outside them or graph outputs. Constant initializers are copied in."""
    graph = view.graph
    sub = Graph("fused")
    inside = {id(n) for n in nodes}
    produced = {o for n in nodes for o in n.outputs if o}
    reads: dict[str, None] = {}
    for n in nodes:
        for name in node_reads(n):
            if name not in produced:
                reads.setdefault(name, None)
    for name in reads:
        if name in graph.initializers and name not in graph.inputs:
            sub.initializers[name] = graph.initializers[name]
        else:
            sub.inputs.append(name)
        tp = view.type_of(name)  # values of enclosing graphs are typed too
        if tp is not None:
            sub.value_types[name] = tp
    used_outside = set(graph.outputs)
    for n in graph.nodes:
        if id(n) not in inside:
            used_outside.update(node_reads(n))
    for n in nodes:
        for o in n.outputs:
            if o and o in used_outside:
                sub.outputs.append(o)
            if o in graph.value_types:
                sub.value_types[o] = graph.value_types[o]
    sub.nodes = list(nodes)
    return sub


# -- function expansion ------------------------------------------------------------------------
def function_body(
    node: Node,
    opsets: dict[str, int],
    functions: dict[tuple[str, str, str], onnx.FunctionProto],
    view: GraphView | None = None,
    *,
    prefix: str | None = None,
) -> list[Node] | None:
    """The nodes that replace ``node`` when its op is a function (model-local or standard), else
    None. Reads ``opsets`` and ``functions`` only: the caller puts the body into the graph (and
    the opsets a model-local function imports into the model, :func:`_import_function_opsets`)."""
    local = functions.get((node.domain, node.op_type, node.overload))
    if local is not None:
        return expand_function(node, local, prefix=prefix)
    opset = opsets.get(node.domain, 1 if node.domain else 0)
    schema = schema_for(node.op_type, node.domain, opset)
    if schema is None:
        return None
    fproto = None
    try:
        if schema.has_function:
            versions = [v for v in schema.function_opset_versions if v <= opset] or [opset]
            data = schema.get_function_with_opset_version(max(versions))
            fproto = onnx.FunctionProto.FromString(data) if data else None
        elif schema.has_context_dependent_function:
            versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
            proto = node_to_proto(node)
            types = []
            for name in node.inputs:
                tp = view.type_of(name) if (view is not None and name) else None
                types.append((tp or onnx.TypeProto()).SerializeToString())
            data = schema.get_context_dependent_function_with_opset_version(
                max(versions or [opset]), proto.SerializeToString(), types
            )
            fproto = onnx.FunctionProto.FromString(data) if data else None
    except Exception:  # onnx could not build a body for this node: it stays unassigned
        return None
    if fproto is None or not fproto.node:
        return None
    defaults = {}
    for name, attr in schema.attributes.items():
        default = attr.default_value
        if default is not None and default.type != onnx.AttributeProto.UNDEFINED:
            defaults[name] = default
    return expand_function(node, fproto, defaults, prefix=prefix)


def _import_function_opsets(
    node: Node, opsets: dict[str, int], functions: dict[tuple[str, str, str], onnx.FunctionProto]
) -> None:
    """Add the opsets a model-local function imports and the model does not to the model's."""
    local = functions.get((node.domain, node.op_type, node.overload))
    for imp in local.opset_import if local is not None else ():
        opsets.setdefault("" if imp.domain == "ai.onnx" else imp.domain, imp.version)


def expand_function(
    node: Node,
    fproto: onnx.FunctionProto,
    defaults: dict[str, onnx.AttributeProto] | None = None,
    *,
    prefix: str | None = None,
) -> list[Node]:
    """Instantiate a FunctionProto for one call site: rename its values (``prefix`` + name; by
    default the node's name and ``__``), bind its attributes (the call's, else the function's
    defaults, else ``defaults`` from the op's schema)."""
    if prefix is None:
        prefix = f"{node.name or node.op_type}__"
    rename: dict[str, str] = {}
    for formal, actual in zip(fproto.input, node.inputs):
        rename[formal] = actual
    for formal in fproto.input[len(node.inputs) :]:
        rename[formal] = ""
    for formal, actual in zip(fproto.output, node.outputs):
        rename[formal] = actual
    attrs = dict(node.attributes)
    for default in fproto.attribute_proto:
        attrs.setdefault(default.name, default)
    for name, default in (defaults or {}).items():
        attrs.setdefault(name, default)
    body = onnx.GraphProto()
    for fn in fproto.node:
        new = body.node.add()
        new.CopyFrom(fn)
        _bind_attributes(new, attrs)
    nodes = []
    for fn in body.node:
        n = graph_from_proto(_wrap(fn)).nodes[0]
        n.inputs = [_rename(x, rename, prefix) for x in n.inputs]
        n.outputs = [_rename(x, rename, prefix) for x in n.outputs]
        for sub in n.subgraphs.values():
            _rename_outer(sub, rename, prefix)
        n.name = prefix + (n.name or n.op_type)
        nodes.append(n)
    return nodes


#: constants of the call site larger than this reach the body's inference as typed inputs only
_BODY_CONSTANT_LIMIT = 1024
#: "tensor(float)" -> TensorProto.FLOAT, for type constraints that allow one type only
_TENSOR_TYPES = {f"tensor({k.lower()})": v for k, v in onnx.TensorProto.DataType.items() if v}


def type_body(
    view: GraphView,
    body: list[Node],
    functions: dict[tuple[str, str, str], onnx.FunctionProto] | None = None,
) -> None:
    """Type the values of ``body``, the expanded function body about to replace a node of
    ``view.graph``, so that providers deciding by type see them: onnx's inference over the body
    alone with the call site's input types and small constants (the values of its subgraphs
    too), then, for what onnx left untyped, the op schemas' type constraints. Types the graph
    already has are kept; ``view.graph.value_types`` is updated in place. Runs only when a node
    is expanded (well under a millisecond for a standard op's body)."""
    graph = view.graph
    produced = {o for n in body for o in n.outputs if o}
    opsets = view.opsets
    g = onnx.GraphProto(name="body")
    g.node.extend(node_to_proto(n) for n in body)
    seen: set[str] = set()
    for n in body:
        for name in node_reads(n):
            if name in produced or name in seen:
                continue
            seen.add(name)
            value = view.constant(name)
            if value is None and name in graph.outer_constants:
                value = graph.outer_constants[name]
            if value is not None and value.size <= _BODY_CONSTANT_LIMIT:
                try:
                    g.initializer.append(onnx.numpy_helper.from_array(value, name))
                    continue
                except Exception:  # a dtype numpy_helper cannot write: pass its type only
                    pass
            vi = g.input.add()
            vi.name = name
            tp = view.type_of(name)
            if tp is not None:
                vi.type.CopyFrom(tp)
    model = onnx.helper.make_model(
        g,
        opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()],
        functions=_called_functions(body, functions or {}),
    )
    inferred = infer_types(model)
    types = graph.value_types
    for n in body:
        for o in n.outputs:
            if o and o not in types and o in inferred:
                types[o] = inferred[o]
        for sub in n.subgraphs.values():
            add_inferred_types(sub, inferred)
    for n in body:
        _type_by_schema(n, view)


def _called_functions(
    body: list[Node], functions: dict[tuple[str, str, str], onnx.FunctionProto]
) -> list[onnx.FunctionProto]:
    """The model-local functions ``body`` calls, directly or through other functions."""
    if not functions:
        return []
    keys = []
    for n in body:
        keys.append((n.domain, n.op_type, n.overload))
        for sub in n.subgraphs.values():
            keys.extend((m.domain, m.op_type, m.overload) for _, m in sub.walk())

    def proto_keys(nodes):
        for fn in nodes:
            yield (fn.domain, fn.op_type, fn.overload)
            for a in fn.attribute:
                for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                    yield from proto_keys(g.node)

    found: dict[tuple[str, str, str], onnx.FunctionProto] = {}
    while keys:
        key = keys.pop()
        f = functions.get(key)
        if f is None or key in found:
            continue
        found[key] = f
        keys.extend(proto_keys(f.node))
    return list(found.values())


def _type_by_schema(node: Node, view: GraphView) -> None:
    """Type the untyped tensor outputs of ``node`` from its schema: a type constraint that allows
    one type, one that an input or output of the node already binds, Cast's ``to``."""
    types = view.graph.value_types
    if all(not o or o in types for o in node.outputs):
        return
    schema = schema_for(node.op_type, node.domain, view.opset(node.domain))
    if schema is None:
        return
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic
    bound: dict[str, int] = {}
    for c in schema.type_constraints:
        if len(c.allowed_type_strs) == 1 and c.allowed_type_strs[0] in _TENSOR_TYPES:
            bound[c.type_param_str] = _TENSOR_TYPES[c.allowed_type_strs[0]]

    def params(formals, names):
        """(type parameter, value name) pairs; a homogeneous variadic last formal covers the
        remaining names, a heterogeneous one (Loop's V) binds nothing."""
        for i, name in enumerate(names):
            formal = formals[min(i, len(formals) - 1)] if formals else None
            if formal is None or (i >= len(formals) and formal.option != variadic):
                return
            if formal.option == variadic and not formal.is_homogeneous:
                return
            yield formal.type_str, name

    for param, name in [*params(schema.inputs, node.inputs), *params(schema.outputs, node.outputs)]:
        tp = view.type_of(name) if name else None
        if tp is not None and tp.WhichOneof("value") == "tensor_type" and tp.tensor_type.elem_type:
            bound.setdefault(param, tp.tensor_type.elem_type)
    to = node.attributes.get("to")
    if node.op_type == "Cast" and not node.domain and to is not None and schema.outputs:
        bound[schema.outputs[0].type_str] = to.i
    for param, name in params(schema.outputs, node.outputs):
        elem = bound.get(param) or _TENSOR_TYPES.get(param)  # a formal may name its type
        if name and name not in types and elem:
            types[name] = onnx.helper.make_tensor_type_proto(elem, None)


def _wrap(n: onnx.NodeProto) -> onnx.GraphProto:
    g = onnx.GraphProto()
    g.node.append(n)
    return g


def _rename(name: str, rename: dict[str, str], prefix: str) -> str:
    if not name:
        return ""
    return rename.get(name, prefix + name)


def _rename_outer(g: Graph, rename: dict[str, str], prefix: str) -> None:
    """Rename the function-scope names a subgraph reads from outside."""
    outer = set(g.outer_names())
    for _, n in g.walk():
        n.inputs = [(_rename(x, rename, prefix) if x in outer else x) for x in n.inputs]
    g.outputs = [(_rename(x, rename, prefix) if x in outer else x) for x in g.outputs]


def _bind_attributes(n: onnx.NodeProto, attrs: dict[str, onnx.AttributeProto]) -> None:
    """Replace attribute references (``ref_attr_name``) with the call site's values."""
    keep = []
    for a in n.attribute:
        if a.ref_attr_name:
            actual = attrs.get(a.ref_attr_name)
            if actual is None:
                continue  # not given and no default: the attribute is omitted
            bound = onnx.AttributeProto()
            bound.CopyFrom(actual)
            bound.name = a.name
            keep.append(bound)
        else:
            if a.type == onnx.AttributeProto.GRAPH:
                for sub in a.g.node:
                    _bind_attributes(sub, attrs)
            keep.append(a)
    del n.attribute[:]
    n.attribute.extend(keep)


def _replace_with(graph: Graph, node: Node, body: list[Node]) -> None:
    """Put ``body`` where ``node`` was; its Constant nodes become initializers (as the BASIC
    passes did for the rest of the graph), so no provider needs a Constant kernel for them."""
    kept = []
    for n in body:
        value = constant_value(n)
        if value is not None and n.outputs[0] not in graph.outputs:
            graph.initializers[n.outputs[0]] = value
        else:
            kept.append(n)
    i = next(i for i, n in enumerate(graph.nodes) if n is node)
    graph.nodes[i : i + 1] = kept
