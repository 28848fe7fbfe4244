"""EXTENDED, after the QDQ fusions: fold the DequantizeLinear nodes of constants that no fusion
took (a quantized weight read by an op without a quantized form), so kernel providers do not
dequantize the same weight on every run.

Basic constant folding leaves every DequantizeLinear in place when the QDQ fusions will run (see
:mod:`.constant_folding`). Those assigned to a provider that compiles its partitions (OpenVINO)
stay: such a provider computes QDQ groups in integers itself. Those of a kernel provider (CPU,
CUDA, OpenCL) are folded here, through the CPU provider's kernel, as basic folding would have;
com.microsoft DequantizeLinear nodes too (basic folding leaves every contrib op alone).
"""

from __future__ import annotations

from ...ir import Model
from ...provider import KernelProvider
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs
from ._fusion import MS
from .constant_folding import ConstantFolding


class ConstantFoldingDQ(GraphPass):
    name = "ConstantFoldingDQ"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        if not ctx.keep_dequantize:
            return False
        cpu = ctx.cpu_provider()
        if cpu is None:
            return False
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                if (
                    n.op_type == "DequantizeLinear"
                    and n.domain in ("", MS)
                    and isinstance(ctx.provider_of(n), KernelProvider)
                ):
                    changed |= ConstantFolding.fold(g, n, model, cpu, ctx.fold_size_limit)
        return changed


PASS = ConstantFoldingDQ()
