"""Helpers shared by passes: constants, consumers, renaming, bypassing a node."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..ir import Graph, Model, Node, node_reads

_names = itertools.count()


def all_graphs(model: Model) -> Iterator[Graph]:
    """The main graph, then every subgraph (outer graphs first)."""
    yield model.graph
    seen = {id(model.graph)}
    for _, n in model.graph.walk():
        for g in n.subgraphs.values():
            if id(g) not in seen:
                seen.add(id(g))
                yield g


def constant(graph: Graph, name: str) -> np.ndarray | None:
    """The value of ``name`` when it is a constant initializer (not an overridable graph input)."""
    if name and name in graph.initializers and name not in graph.inputs:
        return graph.initializers[name]
    return None


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


def fresh_name(graph: Graph, base: str) -> str:
    taken = graph.defined_names()
    while True:
        name = f"{base}__{next(_names)}"
        if name not in taken:
            return name


def add_initializer(graph: Graph, base: str, value: Any) -> str:
    name = fresh_name(graph, base)
    graph.initializers[name] = np.asarray(value)
    return name


def remove_unused_initializers(graph: Graph) -> None:
    used = set(use_counts(graph)) | set(graph.inputs)
    for name in [n for n in graph.initializers if n not in used]:
        del graph.initializers[name]
