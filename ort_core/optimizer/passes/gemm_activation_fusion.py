"""EXTENDED: Gemm followed by an activation becomes com.microsoft FusedGemm, the activation's
attributes renamed activation_alpha/beta/gamma, on providers that run FusedGemm."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs
from ._fusion import MS, accepted, can_fuse, new_node, replace, replace_reads
from .conv_activation_fusion import single_activation

#: activation -> its attributes in the order alpha, beta, gamma (None: absent)
ACTIVATIONS = {
    "Relu": (), "Sigmoid": (), "Tanh": (), "Softsign": (), "Softplus": (),
    "LeakyRelu": ("alpha",), "Elu": ("alpha",), "ThresholdedRelu": ("alpha",),
    "HardSigmoid": ("alpha", "beta"), "Selu": ("alpha", None, "gamma"),
}  # fmt: skip


class GemmActivationFusion(GraphPass):
    name = "GemmActivationFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            consumers = g.consumers()  # kept up to date through each fusion
            for gemm in list(g.nodes):
                if gemm.op_type != "Gemm" or gemm.domain or len(gemm.outputs) != 1:
                    continue
                act = single_activation(g, gemm, consumers)
                if act is None or act.op_type not in ACTIVATIONS:
                    continue
                if not can_fuse(ctx, model, [gemm, act], MS, "FusedGemm"):
                    continue
                extra = {}
                for slot, attr in zip(("alpha", "beta", "gamma"), ACTIVATIONS[act.op_type]):
                    if attr and attr in act.attributes:
                        extra[f"activation_{slot}"] = float(act.attr(attr))
                fused = new_node(
                    model, g, "FusedGemm", list(gemm.inputs), list(act.outputs),
                    provider=gemm.provider, base=gemm.name or "FusedGemm",
                    activation=act.op_type, **extra,
                )  # fmt: skip
                for k, a in gemm.attributes.items():
                    if k in ("alpha", "beta", "transA", "transB"):
                        fused.attributes[k] = a
                if not accepted(ctx, model, g, [fused]):
                    continue
                replace(g, act, [fused], [gemm, act])
                replace_reads(consumers, [fused], [gemm, act])
                changed = True
        return changed


PASS = GemmActivationFusion()
