"""EXTENDED: an inference-mode BatchNormalization with constant statistics followed by an
activation becomes a com.microsoft FusedConv: a 1x1 convolution with one group per channel
(weight ``scale / sqrt(var + epsilon)``, bias ``bias - mean * weight``) that applies the
activation in place, one fused node instead of two full passes and an intermediate tensor (what
onnxruntime's NCHWc transformer does to the pre-activation BatchNormalizations of DenseNet). On
providers that run FusedConv; the saved model runs in onnxruntime."""

from __future__ import annotations

import numpy as np

from ...ir import Model, tensor_dtype
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import add_initializer, all_graphs, constant
from ._fusion import MS, accepted, can_fuse, new_node, replace, shape_of
from .bn_mul_add_fusion import inference_bn
from .conv_activation_fusion import activation_params, single_activation


class BatchNormActivationFusion(GraphPass):
    name = "BatchNormActivationFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        opset = model.opset("")
        for g in all_graphs(model):
            for bn in list(g.nodes):
                if not inference_bn(bn, opset):
                    continue
                params = [constant(g, i) for i in bn.inputs[1:5]]
                shape = shape_of(g, bn.inputs[0])
                dt = tensor_dtype(g.type_of(bn.inputs[0]))
                if any(p is None or p.ndim != 1 for p in params) or shape is None:
                    continue
                if len(shape) < 3 or dt is None or dt.kind != "f" or dt.itemsize < 4:
                    continue
                act = single_activation(g, bn)
                act_params = activation_params(g, act, model) if act is not None else None
                if act_params is None or not can_fuse(ctx, model, [bn, act], MS, "FusedConv"):
                    continue
                scale, bias, mean, var = (p.astype(np.float64) for p in params)
                a = scale / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
                b = bias - mean * a
                spatial = len(shape) - 2
                w = add_initializer(g, bn.inputs[1], a.reshape(-1, 1, *[1] * spatial).astype(dt))
                bname = add_initializer(g, bn.inputs[2], b.astype(dt))
                fused = new_node(
                    model, g, "FusedConv", [bn.inputs[0], w, bname], list(act.outputs),
                    provider=bn.provider, base=bn.name or "FusedConv", group=int(a.shape[0]),
                    kernel_shape=[1] * spatial, activation=act.op_type,
                    activation_params=act_params or None,
                )  # fmt: skip
                if not accepted(ctx, model, g, [fused]):
                    continue  # the two initializers made above are dropped as unused
                replace(g, act, [fused], [bn, act])
                changed = True
        return changed


PASS = BatchNormActivationFusion()
