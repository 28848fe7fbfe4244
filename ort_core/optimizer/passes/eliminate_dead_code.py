"""BASIC: remove nodes none of whose outputs is read, and initializers nobody reads."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, remove_unused_initializers, use_counts


class EliminateDeadCode(GraphPass):
    name = "EliminateDeadCode"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            while True:
                uses = use_counts(g)
                dead = [n for n in g.nodes if not any(o and uses.get(o) for o in n.outputs)]
                if not dead:
                    break
                for n in dead:
                    g.nodes.remove(n)
                changed = True
            before = len(g.initializers)
            remove_unused_initializers(g)
            changed |= len(g.initializers) != before
        return changed


PASS = EliminateDeadCode()
