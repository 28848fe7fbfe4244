"""Helpers shared by passes: constants, consumers, renaming, bypassing a node."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..ir import Graph, Model, Node, node_reads

_names = itertools.count()


def all_graphs(model: Model) -> Iterator[Graph]:
    """The main graph, then every subgraph (outer graphs first). Each subgraph's
    ``outer_constants`` is set, on the way, to the enclosing graphs' constants it can read."""
    yield model.graph
    seen = {id(model.graph)}
    for parent, n in model.graph.walk():
        for g in n.subgraphs.values():
            if id(g) not in seen:
                seen.add(id(g))
                g.outer_constants = _visible_constants(parent, g)
                yield g


def _visible_constants(parent: Graph, sub: Graph) -> dict[str, np.ndarray]:
    visible = dict(parent.outer_constants)
    for name in parent.defined_names():
        visible.pop(name, None)
    visible.update((n, a) for n, a in parent.initializers.items() if n not in parent.inputs)
    for name in sub.defined_names():  # shadowed inside the subgraph
        visible.pop(name, None)
    return visible


def constant(graph: Graph, name: str) -> np.ndarray | None:
    """The value of ``name`` when it is a constant initializer (not an overridable graph input)
    of ``graph`` or, for a subgraph, of an enclosing graph (as onnxruntime's fusions look up
    outer-scope constants)."""
    if not name:
        return None
    if name in graph.initializers:
        return None if name in graph.inputs else graph.initializers[name]
    return graph.outer_constants.get(name)


def use_counts(graph: Graph) -> dict[str, int]:
    """How many times each name is read (node inputs, subgraph outer reads, graph outputs)."""
    counts: dict[str, int] = {}
    for n in graph.nodes:
        for name in node_reads(n):
            counts[name] = counts.get(name, 0) + 1
    for o in graph.outputs:
        counts[o] = counts.get(o, 0) + 1
    return counts


def rename_value(graph: Graph, old: str, new: str) -> None:
    """Make every reader of ``old`` (subgraphs included) read ``new``."""
    for _, n in graph.walk():
        if old in n.inputs:
            n.inputs = [new if x == old else x for x in n.inputs]
    for g in _subgraphs(graph):
        g.outputs = [new if x == old and old not in g.defined_names() else x for x in g.outputs]
    graph.outputs = [new if x == old else x for x in graph.outputs]


def _subgraphs(graph: Graph) -> Iterator[Graph]:
    for _, n in graph.walk():
        yield from n.subgraphs.values()


def bypass(graph: Graph, node: Node, src: str, dst: str) -> bool:
    """Remove ``node`` whose output ``dst`` equals its input ``src``; False when it cannot be done
    (both names are graph boundaries)."""
    outputs = set(graph.outputs)
    if dst not in outputs:
        graph.nodes.remove(node)
        rename_value(graph, dst, src)
        return True
    producers = graph.producers()
    if src in producers and src not in outputs and src not in graph.inputs:
        # dst is a graph output: let the producer of src write dst directly
        graph.nodes.remove(node)
        p = producers[src]
        p.outputs = [dst if o == src else o for o in p.outputs]
        rename_value(graph, src, dst)
        if src in graph.value_types and dst not in graph.value_types:
            graph.value_types[dst] = graph.value_types[src]
        return True
    return False


def _fresh(base: str, taken) -> str:
    while True:
        name = f"{base}__{next(_names)}"
        if name not in taken:
            return name


class _Defined:
    """``name in _Defined(graph)``: whether ``graph``'s scope defines ``name``, by a scan that
    stops at the first hit. :func:`_fresh`'s candidates are nearly always new, so this replaces
    building the set of every defined name for each new name (Conv + BatchNormalization
    folding in DenseNet-121 spent 0.2 s of session creation building those sets)."""

    __slots__ = ("graph",)

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def __contains__(self, name: str) -> bool:
        g = self.graph
        return name in g.initializers or name in g.inputs or any(name in n.outputs for n in g.nodes)


def fresh_name(graph: Graph, base: str) -> str:
    """A value name nothing in ``graph``'s scope defines."""
    return _fresh(base, _Defined(graph))


def fresh_node_name(graph: Graph, base: str) -> str:
    """A node name no node of ``graph`` has. Node names are their own namespace: checking them
    alone costs a fraction of :func:`fresh_name`'s scan of every value name, which every fusion
    paid (a fifth of a QDQ YOLO's session creation)."""
    return _fresh(base, {n.name for n in graph.nodes})


class GraphMaps:
    """``graph``'s producer and consumer maps (:meth:`Graph.producers`, :meth:`Graph.consumers`),
    made on first use and again after :meth:`changed`, which a pass calls after each rewrite: one
    scan of the graph per change instead of one per candidate node (BERT-base's and GPT-2's
    sessions spent most of their optimizer time rebuilding them)."""

    __slots__ = ("graph", "_producers", "_consumers")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._producers: dict[str, Node] | None = None
        self._consumers: dict[str, list[Node]] | None = None

    @property
    def producers(self) -> dict[str, Node]:
        if self._producers is None:
            self._producers = self.graph.producers()
        return self._producers

    @property
    def consumers(self) -> dict[str, list[Node]]:
        if self._consumers is None:
            self._consumers = self.graph.consumers()
        return self._consumers

    def changed(self) -> None:
        self._producers = self._consumers = None

    def remove_node(self, node: Node) -> None:
        """Take ``node`` out of the maps (before it is edited or leaves the graph): the maps stay
        right without a rescan, for passes that edit a node or two per rewrite."""
        if self._consumers is not None:
            for name in node_reads(node):
                users = self._consumers.get(name)
                if users:
                    users[:] = [u for u in users if u is not node]
        if self._producers is not None:
            for o in node.outputs:
                if o and self._producers.get(o) is node:
                    del self._producers[o]

    def add_node(self, node: Node) -> None:
        """Put ``node`` (new, or edited after :meth:`remove_node`) into the maps."""
        if self._consumers is not None:
            for name in node_reads(node):
                self._consumers.setdefault(name, []).append(node)
        if self._producers is not None:
            for o in node.outputs:
                if o:
                    self._producers[o] = node


def add_initializer(graph: Graph, base: str, value: Any) -> str:
    name = fresh_name(graph, base)
    graph.initializers[name] = np.asarray(value)
    return name


def remove_unused_initializers(graph: Graph) -> None:
    used = set(use_counts(graph)) | set(graph.inputs)
    for name in [n for n in graph.initializers if n not in used]:
        del graph.initializers[name]
