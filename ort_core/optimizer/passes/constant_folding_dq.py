"""EXTENDED, after the QDQ fusions: fold the DequantizeLinear nodes of constants that no fusion
took (a quantized weight read by an op without a quantized form), so kernel providers do not
dequantize the same weight on every run.

Basic constant folding leaves every DequantizeLinear in place when the QDQ fusions will run (see
:mod:`.constant_folding`). Those assigned to a provider that compiles its partitions (OpenVINO)
stay: such a provider computes QDQ groups in integers itself. Those of a kernel provider (CPU,
CUDA, OpenCL) are folded here, through the CPU provider's kernel, as basic folding would have.
"""

from __future__ import annotations

from ...ir import Model
from ...provider import KernelProvider
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
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
                if n.op_type != "DequantizeLinear" or n.domain or len(n.outputs) != 1:
                    continue
                out = n.outputs[0]
                if out in g.outputs or out in g.initializers:
                    continue
                if not all(constant(g, i) is not None for i in n.inputs if i):
                    continue
                if not isinstance(ctx.provider_of(n), KernelProvider):
                    continue
                values = ConstantFolding._evaluate(g, n, model, cpu, ctx.fold_size_limit)
                if values is None:
                    continue
                g.nodes.remove(n)
                g.initializers[out] = values[0]
                changed = True
        return changed


PASS = ConstantFoldingDQ()
