"""EXTENDED: layer normalization spelled out with ReduceMean/Sub/Pow/Sqrt/Div becomes
LayerNormalization (ONNX, opset 17+); the root-mean-square form (no mean subtracted) becomes
SimplifiedLayerNormalization (onnxruntime's RMSNorm, ONNX domain), or RMSNormalization from
opset 23."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import GraphMaps, all_graphs, constant
from ._fusion import (
    C,
    V,
    accepted,
    can_fuse,
    internal_ok,
    is_last_axis,
    match,
    new_node,
    reduce_axes,
    replace,
    scalar,
    shape_of,
)  # fmt: skip

X = V("x")
D = V("d", ("Sub", X, ("ReduceMean", X)))


def _var(t) -> list:
    return [("ReduceMean", ("Pow", t, 2.0)), ("ReduceMean", ("Mul", t, t))]


def _normalized(t) -> list:
    """t / sqrt(mean(t^2) + eps), in the spellings exporters use."""
    out = []
    for var in _var(t):
        std = ("Sqrt", ("Add", var, C("eps")))
        out += [("Div", t, std), ("Mul", t, ("Reciprocal", std))]
    return out


LAYER_NORM_BIAS = [("Add", ("Mul", n, C("scale")), C("bias")) for n in _normalized(D)]
LAYER_NORM = [("Mul", n, C("scale")) for n in _normalized(D)]
RMS_NORM = [("Mul", n, C("scale")) for n in _normalized(X)]
#: tried in this order, each over the whole graph (the form with a bias before the one without)
GROUPS = ((False, LAYER_NORM_BIAS), (False, LAYER_NORM), (True, RMS_NORM))


class LayerNormFusion(GraphPass):
    name = "LayerNormFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            maps = GraphMaps(g)
            for simplified, patterns in GROUPS:
                for root in list(g.nodes):
                    if root in g.nodes and root.op_type in ("Add", "Mul") and not root.domain:
                        if self._try(model, g, ctx, root, simplified, patterns, maps.producers):
                            changed = True
                            maps.changed()
        return changed

    @staticmethod
    def _try(model, g, ctx, root, simplified, patterns, producers) -> bool:
        opset = model.opset("")
        for pat in patterns:
            m = match(g, root.outputs[0], pat, producers)
            if m is None or not internal_ok(g, m.nodes, root):
                continue
            x = m.values["x"]
            if not all(
                is_last_axis(g, x, reduce_axes(g, n, model)) and n.attr("keepdims", 1)
                for n in m.nodes
                if n.op_type == "ReduceMean"
            ):
                continue
            eps, dims = scalar(g, m.values["eps"]), shape_of(g, x)
            params = [m.values["scale"]] + ([m.values["bias"]] if "bias" in m.values else [])
            if eps is None or not all(_vector_for(g, p, dims) for p in params):
                continue
            if not simplified:
                op, domain = "LayerNormalization", ""
            elif opset >= 23 and can_fuse(ctx, model, m.nodes, "", "RMSNormalization"):
                op, domain = "RMSNormalization", ""
            else:
                op, domain = "SimplifiedLayerNormalization", ""
            if (op == "LayerNormalization" and opset < 17) or not can_fuse(
                ctx, model, m.nodes, domain, op
            ):
                continue
            fused = new_node(
                model, g, op, [x, *params], list(root.outputs), domain=domain,
                provider=root.provider, axis=-1, epsilon=eps,
            )  # fmt: skip
            if not accepted(ctx, model, g, [fused]):
                continue
            replace(g, root, [fused], m.nodes)
            return True
        return False


def _vector_for(g, name, dims) -> bool:
    """A 1-D float constant as long as the normalized (last) axis."""
    c = constant(g, name)
    if c is None or c.ndim != 1 or c.dtype.kind != "f":
        return False
    return dims is None or not isinstance(dims[-1], int) or dims[-1] == c.shape[0] or c.size == 1


PASS = LayerNormFusion()
