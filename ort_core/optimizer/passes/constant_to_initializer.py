"""BASIC: turn Constant nodes into initializers (so folding and fusions see their values)."""

from __future__ import annotations

from ...ir import Model, constant_value
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs


class ConstantToInitializer(GraphPass):
    name = "ConstantToInitializer"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                value = constant_value(n)
                if value is None:
                    continue
                out = n.outputs[0]
                if out in g.outputs or out in g.initializers:
                    continue
                g.nodes.remove(n)
                g.initializers[out] = value
                changed = True
        return changed


PASS = ConstantToInitializer()
