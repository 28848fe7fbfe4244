"""BASIC: fold a Mul or Add by a per-channel (or scalar) constant that follows an inference-mode
BatchNormalization into the normalization's scale and bias: BatchNormalization is a per-channel
affine map, so ``BN(x) * c + d`` is ``BN'(x)`` with scale ``scale * c`` and bias ``bias * c + d``
(Caffe2 exports, DenseNet-121 among them, follow every BatchNormalization with such a Mul and
Add). One pass over the tensor instead of three."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import GraphMaps, add_initializer, all_graphs, constant
from ._fusion import shape_of
from .conv_add_mul_fusion import per_channel


def inference_bn(node, opset: int) -> bool:
    """Whether a BatchNormalization node normalizes with its given statistics (no training)."""
    if node.op_type != "BatchNormalization" or node.domain:
        return False
    if len([o for o in node.outputs if o]) != 1 or len(node.inputs) != 5:
        return False
    if opset < 7:
        return bool(node.attr("is_test", 0))
    return opset < 14 or not node.attr("training_mode", 0)


class BatchNormMulAddFusion(GraphPass):
    name = "BatchNormMulAddFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        opset = model.opset("")
        for g in all_graphs(model):
            maps = GraphMaps(g)
            removed: set[int] = set()
            for bn in list(g.nodes):
                if id(bn) in removed or not inference_bn(bn, opset):
                    continue
                scale, bias = constant(g, bn.inputs[1]), constant(g, bn.inputs[2])
                shape = shape_of(g, bn.inputs[0])
                if scale is None or bias is None or shape is None or scale.ndim != 1:
                    continue
                while True:
                    out = bn.outputs[0]
                    users = maps.consumers.get(out, [])
                    if out in g.outputs or len(users) != 1:
                        break
                    op = users[0]
                    if op.op_type not in ("Mul", "Add") or op.domain or len(op.inputs) != 2:
                        break
                    other = op.inputs[1] if op.inputs[0] == out else op.inputs[0]
                    c = constant(g, other) if other != out else None
                    if c is None or c.dtype != scale.dtype:
                        break
                    c = per_channel(c, scale.shape[0], len(shape))
                    if c is None:
                        break
                    if op.op_type == "Mul":
                        scale, bias = scale * c, bias * c
                    else:
                        bias = bias + c
                    maps.remove_node(bn)  # the maps follow the rewrite: no rescan per fusion
                    maps.remove_node(op)
                    bn.inputs[1] = add_initializer(g, bn.inputs[1], scale.astype(c.dtype))
                    bn.inputs[2] = add_initializer(g, bn.inputs[2], bias.astype(c.dtype))
                    bn.outputs = [op.outputs[0]]
                    g.nodes.remove(op)
                    removed.add(id(op))
                    maps.add_node(bn)
                    changed = True
        return changed


PASS = BatchNormMulAddFusion()
