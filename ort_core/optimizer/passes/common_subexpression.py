"""BASIC: merge nodes that compute the same thing (same op, attributes and inputs)."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, rename_value
from .constant_folding import NONDETERMINISTIC


def _key(n):
    attrs = tuple(sorted((k, a.SerializeToString()) for k, a in n.attributes.items()))
    return (n.domain, n.op_type, n.overload, tuple(n.inputs), len(n.outputs), attrs)


class CommonSubexpression(GraphPass):
    name = "CommonSubexpressionElimination"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            seen = {}
            for n in list(g.nodes):
                if n.subgraphs or n.op_type in NONDETERMINISTIC or not n.outputs:
                    continue
                k = _key(n)
                first = seen.get(k)
                if first is None:
                    seen[k] = n
                    continue
                if any(o in g.outputs for o in n.outputs if o):
                    continue
                g.nodes.remove(n)
                for i, (mine, theirs) in enumerate(zip(n.outputs, first.outputs)):
                    if mine and theirs:
                        rename_value(g, mine, theirs)
                    elif mine:  # the survivor did not produce this optional output: now it does
                        first.outputs[i] = mine
                changed = True
        return changed


PASS = CommonSubexpression()
