"""EXTENDED: MatMul whose inputs or output are scaled by a constant scalar, or whose inputs are
transposed in their last two axes, becomes com.microsoft FusedMatMul (alpha, transA, transB)."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import GraphMaps, all_graphs, constant
from ._fusion import MS, accepted, can_fuse, is_float, new_node, replace, scalar


def _scaled(g, n) -> tuple[str, float] | None:
    """(x, c) when ``n`` is Mul(x, c), Mul(c, x) or Div(x, c) with c a constant float scalar."""
    if n.domain or len(n.inputs) != 2 or n.op_type not in ("Mul", "Div"):
        return None
    for k in (1, 0) if n.op_type == "Mul" else (1,):
        c, v = constant(g, n.inputs[k]), scalar(g, n.inputs[k])
        if v is not None and c.ndim <= 1 and c.dtype.kind == "f" and v != 0:
            return n.inputs[1 - k], (v if n.op_type == "Mul" else 1.0 / v)
    return None


def _swaps_last_two(n) -> bool:
    perm = n.attr("perm")
    if n.op_type != "Transpose" or n.domain or perm is None or len(perm) < 2:
        return False
    k = len(perm)
    return list(perm) == [*range(k - 2), k - 1, k - 2]


class MatMulScaleFusion(GraphPass):
    name = "MatMulScaleFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            maps = GraphMaps(g)
            for mm in list(g.nodes):
                if mm not in g.nodes or mm.op_type != "MatMul" or mm.domain:
                    continue
                if not is_float(g, mm.inputs[0]):
                    continue
                if self._fuse(model, g, mm, ctx, maps.producers, maps.consumers):
                    changed = True
                    maps.changed()
        return changed

    @staticmethod
    def _fuse(model, g, mm, ctx, producers, consumers) -> bool:
        alpha, trans, inputs, absorbed = 1.0, [0, 0], list(mm.inputs), []
        for i, x in enumerate(mm.inputs):
            p = producers.get(x)
            if p is None or x in g.outputs or len(consumers.get(x, [])) != 1:
                continue
            sc = _scaled(g, p)
            if sc is not None and constant(g, sc[0]) is None:
                alpha *= sc[1]
                inputs[i] = sc[0]
                absorbed.append(p)
            elif _swaps_last_two(p):
                trans[i] = 1
                inputs[i] = p.inputs[0]
                absorbed.append(p)
        out = mm.outputs[0]
        users = consumers.get(out, [])
        anchor = mm
        if out not in g.outputs and len(users) == 1:
            sc = _scaled(g, users[0])
            if sc is not None and sc[0] == out:
                alpha *= sc[1]
                absorbed.append(users[0])
                anchor = users[0]
        if not absorbed or not can_fuse(ctx, model, [mm, *absorbed], MS, "FusedMatMul"):
            return False
        fused = new_node(
            model, g, "FusedMatMul", inputs, list(anchor.outputs), provider=mm.provider,
            base=mm.name or "FusedMatMul", alpha=float(alpha), transA=trans[0], transB=trans[1],
        )  # fmt: skip
        if not accepted(ctx, model, g, [fused]):
            return False
        replace(g, anchor, [fused], [mm, *absorbed])
        return True


PASS = MatMulScaleFusion()
