"""EXTENDED: Add(input, skip) feeding a LayerNormalization over the last axis becomes
com.microsoft SkipLayerNormalization (SimplifiedLayerNormalization: SkipSimplifiedLayer-
Normalization). A constant 1-D bias added to one operand just before becomes the bias input; when
the sum is read elsewhere too, it comes out as input_skip_bias_sum."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import MS, accepted, can_fuse, new_node, replace, static_shape

TARGETS = {
    "LayerNormalization": "SkipLayerNormalization",
    "SimplifiedLayerNormalization": "SkipSimplifiedLayerNormalization",
}


def _bias_split(g, producers, consumers, name):
    """(x, bias, add) when ``name`` is Add(x, 1-D constant) read only once, else None."""
    p = producers.get(name)
    if p is None or p.op_type != "Add" or p.domain or len(consumers.get(name, [])) != 1:
        return None
    for k in (1, 0):
        c = constant(g, p.inputs[k])
        if c is not None and c.ndim == 1 and constant(g, p.inputs[1 - k]) is None:
            return p.inputs[1 - k], p.inputs[k], p
    return None


class SkipLayerNormFusion(GraphPass):
    name = "SkipLayerNormFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for ln in list(g.nodes):
                if ln.op_type in TARGETS and not ln.domain and ln in g.nodes:
                    changed |= self._try(model, g, ctx, ln)
        return changed

    @staticmethod
    def _try(model, g, ctx, ln) -> bool:
        if ln.attr("axis", -1) not in (-1, 2) or any(o for o in ln.outputs[1:]):
            return False
        producers, consumers = g.producers(), g.consumers()
        add = producers.get(ln.inputs[0])
        if add is None or add.op_type != "Add" or add.domain or len(add.inputs) != 2:
            return False
        a, b = add.inputs
        sa, sb = static_shape(g, a), static_shape(g, b)
        if sa is None or sa != sb or len(sa) != 3 or a == b:
            return False
        if constant(g, a) is not None or constant(g, b) is not None:
            return False
        gamma = ln.inputs[1]
        beta = ln.inputs[2] if len(ln.inputs) > 2 else ""
        for p in (gamma, beta):
            c = constant(g, p) if p else None
            if p and (c is None or c.shape != (sa[-1],)):
                return False
        nodes, bias = [add, ln], ""
        for i, x in enumerate((a, b)):
            split = _bias_split(g, producers, consumers, x)
            if split is not None and constant(g, split[1]).shape == (sa[-1],):
                (a, b), bias = ((split[0], b) if i == 0 else (a, split[0])), split[1]
                nodes.append(split[2])
                break
        op = TARGETS[ln.op_type]
        if not can_fuse(ctx, model, nodes, MS, op):
            return False
        s = add.outputs[0]
        shared = s in g.outputs or len(consumers.get(s, [])) > 1
        outputs = [ln.outputs[0]] + (["", "", s] if shared else [])
        if op == "SkipLayerNormalization":
            inputs = [a, b, gamma, beta, bias]
        else:
            inputs = [a, b, gamma, bias]
        eps = float(ln.attr("epsilon", 1e-5))
        while inputs and not inputs[-1]:
            inputs.pop()
        fused = new_node(
            model, g, op, inputs, outputs, provider=ln.provider, base=ln.name or op, epsilon=eps
        )
        if not accepted(ctx, model, g, [fused]):
            return False
        replace(g, add, [fused], nodes)  # where the sum was: its other readers come later
        return True


PASS = SkipLayerNormFusion()
