"""BASIC: remove nodes that return their input unchanged: Cast to the same type, Reshape/Expand to
the same static shape, Transpose with the identity permutation, Slice that keeps everything,
Squeeze/Unsqueeze/Concat/Split with nothing to do, Pad with zero pads."""

from __future__ import annotations

import numpy as np

from ...ir import Model, tensor_dtype, tensor_shape
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, bypass, constant


def _static(g, name):
    dims = tensor_shape(g.type_of(name))
    return dims if dims is not None and all(isinstance(d, int) for d in dims) else None


def _is_noop(g, n) -> bool:
    op, x = n.op_type, n.inputs[0] if n.inputs else ""
    if not x:
        return False
    if op == "Cast":
        dt = tensor_dtype(g.type_of(x))
        if dt is None:
            return False
        from ..._onnx import helper

        to = n.attr("to")
        try:
            return isinstance(to, int) and np.dtype(helper.tensor_dtype_to_np_dtype(to)) == dt
        except (KeyError, TypeError, ValueError):  # an invalid 'to' is the kernel's to report
            return False
    if op == "Transpose":
        perm = n.attr("perm")
        return perm is not None and list(perm) == list(range(len(perm)))
    if op in ("Reshape", "Expand"):
        dims = _static(g, x)
        target = constant(g, n.inputs[1]) if len(n.inputs) > 1 else None
        if dims is None or target is None:
            return False
        if op == "Reshape":
            t = [
                d if d != 0 or n.attr("allowzero", 0) else dims[i]
                for i, d in enumerate(target.tolist())
            ]
            return len(t) == len(dims) and all(a == b for a, b in zip(t, dims))
        return len(target) <= len(dims) and all(
            int(t) in (1, d) for t, d in zip(target[::-1], dims[::-1])
        )
    if op == "Slice" and len(n.inputs) >= 3:
        dims = _static(g, x)
        starts, ends = constant(g, n.inputs[1]), constant(g, n.inputs[2])
        axes = constant(g, n.inputs[3]) if len(n.inputs) > 3 and n.inputs[3] else None
        steps = constant(g, n.inputs[4]) if len(n.inputs) > 4 and n.inputs[4] else None
        if dims is None or starts is None or ends is None:
            return False
        if (len(n.inputs) > 3 and n.inputs[3] and axes is None) or (
            len(n.inputs) > 4 and n.inputs[4] and steps is None
        ):
            return False
        axes = list(range(len(starts))) if axes is None else axes.tolist()
        steps = [1] * len(starts) if steps is None else steps.tolist()
        for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes, steps):
            d = dims[a]
            s = min(max(s + d if s < 0 else s, 0), d)
            e = min(max(e + d if e < 0 else e, 0), d)
            if st != 1 or s != 0 or e != d:
                return False
        return True
    if op == "Pad" and len(n.inputs) > 1:
        pads = constant(g, n.inputs[1])
        return pads is not None and not np.any(pads)
    if op == "Concat" and len([i for i in n.inputs if i]) == 1:
        return True
    return False


class EliminateNoop(GraphPass):
    name = "EliminateNoopNodes"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                if not n.domain and len(n.outputs) == 1 and _is_noop(g, n):
                    changed |= bypass(g, n, n.inputs[0], n.outputs[0])
        return changed


PASS = EliminateNoop()
