"""Helpers shared by the fusion passes: a small expression matcher, constant tests, creating the
fused node on the provider of the nodes it replaces, and removing what the fusion left dead.

A pattern is a tuple ``(op_type, *inputs)`` whose inputs are patterns again, :class:`V` (a value,
bound by name: the same name must match the same value), :class:`C` (a constant initializer, bound
by name), a float (a constant scalar within 1e-3 of it), or :data:`ANY`. ``Add`` and ``Mul``
match their inputs in either order. :func:`match` returns the bindings and the matched nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._onnx import helper
from ...ir import Graph, Model, Node, node_reads, tensor_dtype, tensor_shape
from .._util import constant, fresh_node_name

MS = "com.microsoft"
COMMUTATIVE = {"Add", "Mul"}


@dataclass(frozen=True)
class V:
    """A value bound to ``name``; with ``pattern`` the value must also match it."""

    name: str
    pattern: Any = None


@dataclass(frozen=True)
class C:
    """A constant initializer bound to ``name``."""

    name: str


ANY = V("")


class Match:
    __slots__ = ("values", "nodes")

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.nodes: list[Node] = []

    def copy(self) -> Match:
        m = Match()
        m.values, m.nodes = dict(self.values), list(self.nodes)
        return m


def scalar(graph: Graph, name: str) -> float | None:
    """The value of a one-element constant, or None."""
    v = constant(graph, name)
    if v is None or v.size != 1 or v.dtype.kind not in "fiu":
        return None
    return float(v.reshape(()))


def _match(g: Graph, producers: dict[str, Node], name: str, pat: Any, m: Match) -> Match | None:
    if isinstance(pat, V):
        if pat.name:
            bound = m.values.get(pat.name)
            if bound is not None:
                return m if bound == name else None
            m = m.copy()
            m.values[pat.name] = name
        return m if pat.pattern is None else _match(g, producers, name, pat.pattern, m)
    if isinstance(pat, C):
        if constant(g, name) is None:
            return None
        bound = m.values.get(pat.name)
        if bound is not None:
            return m if bound == name else None
        m = m.copy()
        m.values[pat.name] = name
        return m
    if isinstance(pat, float):
        v = scalar(g, name)
        return m if v is not None and abs(v - pat) <= 1e-3 * max(1.0, abs(pat)) else None
    op, *args = pat
    node = producers.get(name)
    if node is None or node.op_type != op or node.domain or len(node.outputs) != 1:
        return None
    if any(node is n for n in m.nodes):
        return m
    inputs = [i for i in node.inputs]
    if op in ("ReduceMean", "Unsqueeze", "Squeeze", "Reshape", "Split") and len(args) == 1:
        inputs = inputs[:1]  # axes/shape inputs are checked by the caller
    if len(inputs) != len(args):
        return None
    orders = [inputs]
    if op in COMMUTATIVE:
        orders.append(inputs[::-1])
    for order in orders:
        cur = m.copy()
        cur.nodes.append(node)
        for x, a in zip(order, args):
            cur = _match(g, producers, x, a, cur) if cur is not None else None
        if cur is not None:
            return cur
    return None


def match(g: Graph, name: str, pattern: Any, producers: dict[str, Node] | None = None):
    """Match ``pattern`` against the value ``name``: a :class:`Match` or None."""
    return _match(g, producers if producers is not None else g.producers(), name, pattern, Match())


def internal_ok(g: Graph, nodes: list[Node], root: Node, consumers=None) -> bool:
    """Whether every output of ``nodes`` except ``root``'s is read only inside ``nodes``."""
    consumers = consumers if consumers is not None else g.consumers()
    ids = {id(n) for n in nodes}
    outs = set(g.outputs)
    for n in nodes:
        if n is root:
            continue
        for o in n.outputs:
            if o in outs or any(id(c) not in ids for c in consumers.get(o, ())):
                return False
    return True


def same_provider(nodes: list[Node]) -> str | None:
    """The provider shared by all ``nodes`` (None when they differ or are unassigned)."""
    p = {n.provider for n in nodes}
    return p.pop() if len(p) == 1 else None


def can_fuse(ctx, model: Model, nodes: list[Node], domain: str, op_type: str) -> bool:
    """All ``nodes`` run on one provider and that provider runs ``domain::op_type``."""
    if same_provider(nodes) is None:
        return False
    version = model.opset_imports.get(domain, 1 if domain else 0)
    return ctx.provider_supports(nodes[0], domain, op_type, version)


def accepted(ctx, model: Model, g: Graph, nodes: list[Node]) -> bool:
    """Whether the provider of each of ``nodes`` (fused nodes a pass is about to insert) runs it,
    asked through the provider's own check (:meth:`ExecutionProvider.decline`, with the node's
    element types and attributes): a fusion its provider cannot run does not happen."""
    return all(ctx.declines(model, g, n) is None for n in nodes)


def new_node(
    model: Model,
    g: Graph,
    op_type: str,
    inputs: list[str],
    outputs: list[str],
    *,
    domain: str = MS,
    provider: str | None,
    base: str = "",
    **attrs: Any,
) -> Node:
    """A node with ``attrs`` (None values left out) on ``provider``; imports the domain."""
    node = Node(op_type, inputs, outputs, domain=domain, name=fresh_node_name(g, base or op_type))
    for k, v in attrs.items():
        if v is not None:
            node.attributes[k] = helper.make_attribute(k, v)
    node.provider = provider
    if domain and domain not in model.opset_imports:
        model.opset_imports[domain] = 1
    return node


def replace(g: Graph, anchor: Node, new: list[Node], remove: list[Node]) -> None:
    """Insert ``new`` where ``anchor`` is and drop ``remove`` (all nodes of the match)."""
    idx = g.nodes.index(anchor)
    g.nodes[idx:idx] = new
    gone = {id(n) for n in remove}
    g.nodes = [n for n in g.nodes if id(n) not in gone]


def replace_reads(consumers: dict[str, list[Node]], new: list[Node], remove: list[Node]) -> None:
    """Bring ``consumers`` (a :meth:`Graph.consumers` map) up to date after :func:`replace`
    swapped ``remove`` for ``new``, instead of remaking it from the whole graph (MobileNetV2's
    35 fused activations made it 35 times)."""
    gone = {id(n) for n in remove}
    for n in remove:
        for name in node_reads(n):
            users = consumers.get(name)
            if users is not None:
                users[:] = [u for u in users if id(u) not in gone]
    for n in new:
        for name in node_reads(n):
            consumers.setdefault(name, []).append(n)


def drop_dead(g: Graph, candidates: list[Node]) -> None:
    """Remove nodes among ``candidates`` none of whose outputs is read any more."""
    if not candidates:
        return
    changed = True
    pending = list(candidates)
    while changed:
        changed = False
        consumers = g.consumers()
        outs = set(g.outputs)
        for n in list(pending):
            if n in g.nodes and not any(o in outs or consumers.get(o) for o in n.outputs if o):
                g.nodes.remove(n)
                pending.remove(n)
                changed = True


def shape_of(g: Graph, name: str) -> tuple | None:
    return tensor_shape(g.type_of(name))


def static_shape(g: Graph, name: str) -> tuple[int, ...] | None:
    s = shape_of(g, name)
    return s if s is not None and all(isinstance(d, int) for d in s) else None


def is_float(g: Graph, name: str) -> bool:
    dt = tensor_dtype(g.type_of(name))
    return dt is not None and dt.kind == "f"


def reduce_axes(g: Graph, node: Node, model: Model) -> list[int] | None:
    """The constant axes of a Reduce* node (attribute or input), or None."""
    if len(node.inputs) > 1 and node.inputs[1]:
        v = constant(g, node.inputs[1])
        return None if v is None else [int(a) for a in np.asarray(v).reshape(-1)]
    axes = node.attr("axes")
    return None if axes is None else list(axes)


def is_last_axis(g: Graph, x: str, axes: list[int] | None) -> bool:
    if axes is None or len(axes) != 1:
        return False
    if axes[0] == -1:
        return True
    s = shape_of(g, x)
    return s is not None and axes[0] == len(s) - 1
