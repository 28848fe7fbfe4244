"""EXTENDED: the GELU formulas exporters spell out become com.microsoft ops: the erf form
0.5 x (1 + erf(x / sqrt 2)) -> Gelu, the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
-> FastGelu, x sigmoid(alpha x) -> QuickGelu; then a constant bias added just before Gelu becomes
BiasGelu and before FastGelu its bias input."""

from __future__ import annotations

import math

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import MS, C, V, accepted, can_fuse, internal_ok, match, new_node, replace, scalar

X = V("x")


def _half_x_times(t) -> list:
    """0.5 * x * t in its three association orders."""
    return [("Mul", ("Mul", X, 0.5), t), ("Mul", ("Mul", X, t), 0.5), ("Mul", X, ("Mul", t, 0.5))]


_ERF_ARGS = [("Div", X, math.sqrt(2)), ("Mul", X, 1 / math.sqrt(2))]
_CUBES = [("Pow", X, 3.0), ("Mul", X, ("Mul", X, X)), ("Mul", ("Mul", X, X), X)]
_TANH_ARGS = [
    ("Mul", ("Add", X, ("Mul", cube, 0.044715)), math.sqrt(2 / math.pi)) for cube in _CUBES
] + [("Mul", X, ("Mul", ("Add", ("Mul", ("Mul", X, X), 0.044715), 1.0), math.sqrt(2 / math.pi)))]

PATTERNS = (
    [("Gelu", p) for arg in _ERF_ARGS for p in _half_x_times(("Add", ("Erf", arg), 1.0))]
    + [("FastGelu", p) for arg in _TANH_ARGS for p in _half_x_times(("Add", ("Tanh", arg), 1.0))]
    + [("QuickGelu", ("Mul", X, ("Sigmoid", ("Mul", X, C("alpha"))))),
       ("QuickGelu", ("Mul", X, ("Sigmoid", X)))]
)  # fmt: skip


class GeluFusion(GraphPass):
    name = "GeluFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            changed |= self._fuse_formulas(model, g, ctx)
            changed |= self._fuse_bias(model, g, ctx)
        return changed

    @staticmethod
    def _fuse_formulas(model, g, ctx) -> bool:
        changed = False
        for root in list(g.nodes):
            if root not in g.nodes or root.op_type != "Mul" or root.domain:
                continue
            producers = g.producers()
            for op, pat in PATTERNS:
                m = match(g, root.outputs[0], pat, producers)
                if m is None or not internal_ok(g, m.nodes, root):
                    continue
                attrs = {}
                if "alpha" in m.values:
                    alpha = scalar(g, m.values["alpha"])
                    if alpha is None:
                        continue
                    attrs["alpha"] = alpha
                elif op == "QuickGelu":
                    attrs["alpha"] = 1.0
                if not can_fuse(ctx, model, m.nodes, MS, op):
                    continue
                fused = new_node(
                    model, g, op, [m.values["x"]], list(root.outputs), provider=root.provider,
                    **attrs,
                )  # fmt: skip
                if not accepted(ctx, model, g, [fused]):
                    continue
                replace(g, root, [fused], m.nodes)
                changed = True
                break
        return changed

    @staticmethod
    def _fuse_bias(model, g, ctx) -> bool:
        changed = False
        for n in list(g.nodes):
            if n.domain != MS or n.op_type not in ("Gelu", "FastGelu") or len(n.inputs) != 1:
                continue
            add = g.producers().get(n.inputs[0])
            if add is None or add.op_type != "Add" or add.domain or len(add.inputs) != 2:
                continue
            if add.outputs[0] in g.outputs or len(g.consumers().get(add.outputs[0], [])) != 1:
                continue
            k = next((i for i in (1, 0) if _is_bias(g, add.inputs[i])), None)
            if k is None or constant(g, add.inputs[1 - k]) is not None:
                continue
            op = "BiasGelu" if n.op_type == "Gelu" else "FastGelu"
            if not can_fuse(ctx, model, [add, n], MS, op):
                continue
            fused = new_node(
                model, g, op, [add.inputs[1 - k], add.inputs[k]], list(n.outputs),
                provider=n.provider,
            )  # fmt: skip
            if not accepted(ctx, model, g, [fused]):
                continue
            replace(g, n, [fused], [add, n])
            changed = True
        return changed


def _is_bias(g, name) -> bool:
    c = constant(g, name)
    return c is not None and c.ndim == 1 and c.dtype.kind == "f"


PASS = GeluFusion()
