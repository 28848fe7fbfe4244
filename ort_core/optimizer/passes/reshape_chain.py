"""BASIC: collapse chains of Reshape (and Flatten/Squeeze/Unsqueeze feeding a Reshape): a Reshape
whose input comes from another shape-only op reads that op's input instead, when its target shape
does not depend on the intermediate shape (no 0 entries, or allowzero). The intermediate node is
removed when nothing else reads it."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import add_initializer, all_graphs, constant, use_counts
from ._fusion import static_shape

SHAPE_ONLY = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _independent_target(g, n) -> bool:
    """Whether the Reshape's target does not copy dims from its input (0 entries)."""
    target = constant(g, n.inputs[1]) if len(n.inputs) > 1 else None
    if target is None:
        return False
    return bool(n.attr("allowzero", 0)) or not (target == 0).any()


class ReshapeChain(GraphPass):
    name = "ReshapeChainFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            producers = g.producers()
            for n in list(g.nodes):
                if n.op_type != "Reshape" or n.domain or len(n.inputs) < 2:
                    continue
                p = producers.get(n.inputs[0])
                if p is None or p.op_type not in SHAPE_ONLY or p.domain or not p.inputs[0]:
                    continue
                if not _independent_target(g, n):
                    target = static_shape(g, n.outputs[0])
                    if target is None:
                        continue
                    # the output dims are known: spell the target out
                    n.inputs[1] = add_initializer(g, "reshape_shape", np.array(target, np.int64))
                n.inputs[0] = p.inputs[0]
                if not use_counts(g).get(p.outputs[0]) and p.outputs[0] not in g.outputs:
                    g.nodes.remove(p)
                changed = True
                producers = g.producers()
        return changed


PASS = ReshapeChain()
