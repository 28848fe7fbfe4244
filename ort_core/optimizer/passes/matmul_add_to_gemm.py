"""BASIC: MatMul of two rank-2 tensors followed by an Add of a bias that broadcasts to the result
becomes one Gemm (when nothing else reads the MatMul's output)."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs
from ._fusion import is_float, shape_of


class MatMulAddToGemm(GraphPass):
    name = "MatMulAddFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            consumers = g.consumers()
            for mm in list(g.nodes):
                if mm.op_type != "MatMul" or mm.domain:
                    continue
                a, b, out = mm.inputs[0], mm.inputs[1], mm.outputs[0]
                sa, sb = shape_of(g, a), shape_of(g, b)
                if sa is None or sb is None or len(sa) != 2 or len(sb) != 2 or not is_float(g, a):
                    continue
                users = consumers.get(out, [])
                if out in g.outputs or len(users) != 1 or users[0].op_type != "Add":
                    continue
                add = users[0]
                if add.domain or len(add.inputs) != 2:
                    continue
                c = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
                sc = shape_of(g, c)
                if c == out or sc is None or len(sc) > 2 or not _bias_ok(sc, sa[0], sb[1]):
                    continue
                # the Gemm takes the Add's place: the bias may be computed after the MatMul
                g.nodes[g.nodes.index(add)] = mm
                g.nodes.remove(mm)
                mm.op_type = "Gemm"
                mm.inputs = [a, b, c]
                mm.outputs = [add.outputs[0]]
                consumers = g.consumers()
                changed = True
        return changed


def _bias_ok(sc, m, n) -> bool:
    """The bias is unidirectionally broadcastable to (M, N) (Gemm's C) and adds no dims."""
    dims = (1,) * (2 - len(sc)) + tuple(sc)
    return all(isinstance(d, int) and (d == 1 or d == t) for d, t in zip(dims, (m, n)))


PASS = MatMulAddToGemm()
