"""EXTENDED: a residual connection, Conv whose output is added to another tensor of the same shape
(Add, or Sum of two inputs) and optionally an activation after the sum, becomes one
com.microsoft FusedConv with that tensor as its ``Z`` input: the convolution writes its output,
adds ``Z`` and applies the activation in place instead of three passes over three tensors (ResNet:
every block ends so). On providers that run FusedConv."""

from __future__ import annotations

from ...ir import Model, tensor_dtype
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import MS, accepted, can_fuse, new_node, replace, shape_of
from .conv_activation_fusion import activation_params, single_activation


def _same_shape(g, a: str, b: str) -> bool:
    """Both shapes known and equal dim by dim (symbolic dims by name), and the same dtype: Z must
    not broadcast the output to another shape."""
    sa, sb = shape_of(g, a), shape_of(g, b)
    if sa is None or sb is None or len(sa) != len(sb):
        return False
    if not all(x == y and x is not None for x, y in zip(sa, sb, strict=True)):
        return False
    da, db = tensor_dtype(g.type_of(a)), tensor_dtype(g.type_of(b))
    return da is not None and da == db


class ConvAddActivationFusion(GraphPass):
    name = "ConvAddActivationFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            producers, consumers = g.producers(), g.consumers()
            for add in list(g.nodes):
                if add.domain or add.op_type not in ("Add", "Sum") or len(add.inputs) != 2:
                    continue
                if add not in g.nodes:  # consumed by an earlier fusion in this sweep
                    continue
                for conv_out, z in (add.inputs, add.inputs[::-1]):
                    conv = producers.get(conv_out)
                    if (
                        conv is None
                        or conv.op_type != "Conv"
                        or conv.domain
                        or conv not in g.nodes
                        or z == conv_out
                        or constant(g, z) is not None  # a bias: ConvAddMulFusion's job
                        or conv_out in g.outputs
                        or len(consumers.get(conv_out, ())) != 1
                        or not _same_shape(g, conv_out, z)
                    ):
                        continue
                    act = single_activation(g, add, consumers)
                    params = activation_params(g, act, model) if act is not None else None
                    nodes = [conv, add] + ([act] if params is not None else [])
                    if not can_fuse(ctx, model, nodes, MS, "FusedConv"):
                        continue
                    inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs)) + [z]
                    fused = new_node(
                        model, g, "FusedConv", inputs, list(nodes[-1].outputs),
                        provider=conv.provider, base=conv.name or "FusedConv",
                        activation=act.op_type if params is not None else None,
                        activation_params=params or None,
                    )  # fmt: skip
                    for k, a in conv.attributes.items():
                        fused.attributes[k] = a
                    if not accepted(ctx, model, g, [fused]):
                        continue
                    # at the last node's place: both the convolution's inputs and Z exist there
                    replace(g, nodes[-1], [fused], nodes)
                    producers, consumers = g.producers(), g.consumers()
                    changed = True
                    break
        return changed


PASS = ConvAddActivationFusion()
