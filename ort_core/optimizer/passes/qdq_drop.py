"""EXTENDED: DequantizeLinear -> an op that only moves or picks values -> QuantizeLinear, with the
same scale and zero point on both sides, becomes that op on the 8-bit values (onnxruntime's
"drop QDQ" rule): Reshape, Transpose, Squeeze, Unsqueeze, Flatten, Slice, Gather, Expand, Tile,
DepthToSpace, SpaceToDepth, GatherElements, Split (every output quantized so), MaxPool (picks the
largest) and Resize.

Those ops put the dequantized values somewhere else unchanged, and quantizing a dequantized 8-bit
value with the same parameters gives it back, so the result is bit for bit the float path's,
without its two passes over a float copy (a QDQ YOLO's Split, Resize and Reshape nodes moved
about 10 MB of float32 per run). MaxPool only with a positive scale (a negative one reverses the
order). Resize only in ``nearest`` mode: onnxruntime drops the pair in every mode, and its 8-bit
kernel rounds interpolated values its own way, which ours matches for half-pixel bilinear but
not for every coordinate mode or cubic; where it interpolates, the float path stays, within a
quantization step of onnxruntime. Only where the op's provider runs it on 8-bit values; the
DequantizeLinear stays while something else reads it."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import accepted, drop_dead, new_node, replace
from .qdq_fusion import INT8, _is, _qparams

#: the ops that move or pick their first input's values (their other inputs: shapes, indices)
OPS = frozenset(
    "Reshape Transpose Squeeze Unsqueeze Flatten Slice Gather GatherElements Expand Tile "
    "DepthToSpace SpaceToDepth Split MaxPool Resize".split()
)


def _params(g, n):
    """(scale, zero point) values of a per-tensor Q/DQ node with a constant 8-bit zero point,
    else None."""
    p = _qparams(g, n)
    if p is None or not p[2]:
        return None
    scale, zp = constant(g, p[1]), constant(g, p[2])
    if zp.dtype not in INT8 or scale.size != 1 or zp.size != 1:
        return None
    return scale.reshape(()), zp.reshape(())


def _same(a, b) -> bool:
    return (
        a[0].dtype == b[0].dtype
        and a[1].dtype == b[1].dtype
        and bool(np.array_equal(a[0], b[0]))
        and bool(np.array_equal(a[1], b[1]))
    )


class QDQDrop(GraphPass):
    name = "QDQDrop"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            if not any(_is(n, "DequantizeLinear") for n in g.nodes):
                continue
            dropped = False
            maps = g.producers(), g.consumers()  # remade only after a drop changes the graph
            for op in list(g.nodes):
                if op.op_type in OPS and not op.domain and self._try(model, g, ctx, op, *maps):
                    dropped = True
                    maps = g.producers(), g.consumers()
            if dropped:
                changed = True
                drop_dead(g, [n for n in g.nodes if _is(n, "DequantizeLinear")])
        return changed

    @staticmethod
    def _try(model, g, ctx, op, producers, consumers) -> bool:
        if op.op_type == "Resize" and op.attr("mode", "nearest") not in ("nearest", b"nearest"):
            return False  # interpolates (see the module's docstring)
        if op.op_type == "MaxPool" and len(op.outputs) > 1 and op.outputs[1]:
            return False  # its indices output
        if not op.inputs or not op.inputs[0]:
            return False
        dq = producers.get(op.inputs[0])
        if dq is None or not _is(dq, "DequantizeLinear"):
            return False
        params = _params(g, dq)
        if params is None or (op.op_type == "MaxPool" and not params[0] > 0):
            return False
        outs = set(g.outputs)
        qs = []
        for out in op.outputs:
            users = consumers.get(out, []) if out else []
            if not out or out in outs or len(users) != 1 or not _is(users[0], "QuantizeLinear"):
                return False
            q = users[0]
            if q.inputs[0] != out:
                return False
            qp = _params(g, q)
            if qp is None or not _same(params, qp):
                return False
            qs.append(q)
        moved = new_node(
            model, g, op.op_type, [dq.inputs[0], *op.inputs[1:]], [q.outputs[0] for q in qs],
            domain=op.domain, provider=op.provider, base=op.name or op.op_type,
        )  # fmt: skip
        moved.attributes.update(op.attributes)
        if not accepted(ctx, model, g, [moved]):
            return False
        replace(g, op, [moved], [op, *qs])
        return True


PASS = QDQDrop()
