"""Reductions: axes from the attribute or (newer opsets) a constant input."""

from __future__ import annotations

import numpy as np

from . import FLOATS, NUMERIC, Ctx, attr_axis, builder

#: ONNX reduction -> (MIL op, element types, opset from which axes is an input)
REDUCE = {
    "ReduceSum": ("reduce_sum", NUMERIC, 13),
    "ReduceMean": ("reduce_mean", FLOATS, 18),
    "ReduceMax": ("reduce_max", NUMERIC, 18),
    "ReduceMin": ("reduce_min", NUMERIC, 18),
    "ReduceProd": ("reduce_prod", NUMERIC, 18),
    "ReduceL1": ("reduce_l1_norm", FLOATS, 18),
    "ReduceL2": ("reduce_l2_norm", FLOATS, 18),
    "ReduceLogSum": ("reduce_log_sum", FLOATS, 18),
    "ReduceLogSumExp": ("reduce_log_sum_exp", FLOATS, 18),
    "ReduceSumSquare": ("reduce_sum_square", FLOATS, 18),
}


def _check(info) -> str | None:
    x = info.input_shape(0)
    if x is not None and len(x) == 0:
        return "reductions of a scalar are not converted"
    if info.has_input(1) and info.constant(1) is None:
        return "the axes input must be constant for Core ML"
    return None


def _reduce(ctx: Ctx, node) -> None:
    mil, _, axes_input = REDUCE[node.op_type]
    rank = ctx.rank(0)
    if ctx.node_opset >= axes_input:
        c = ctx.const(1)
        axes = None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]
    else:
        axes = node.attr("axes")
    if not axes:
        if axes is not None or node.attr("noop_with_empty_axes", 0):
            if node.attr("noop_with_empty_axes", 0):
                ctx.out(0, ctx.mb.identity(x=ctx.x(0)))
                return
        axes = list(range(rank))
    axes = sorted({attr_axis(int(a), rank) for a in axes})
    keep = bool(node.attr("keepdims", 1))
    ctx.out(0, getattr(ctx.mb, mil)(x=ctx.x(0), axes=axes, keep_dims=keep))


for _op, (_mil, _dtypes, _) in REDUCE.items():
    builder(_op, dtypes=_dtypes, check=_check)(_reduce)
