"""BASIC: evaluate nodes whose inputs are all constant with the CPU provider's kernels, and fold
Shape/Size of values whose shape is fully static. Results larger than the context's size limit stay
as nodes (folding them would bloat the model).

DequantizeLinear stays when the QDQ fusions will run (``PassContext.keep_dequantize``), as in
onnxruntime: folded, a quantized weight would become a float one, and neither the QDQ fusions
(QLinearConv...) nor a provider computing QDQ groups in integers (OpenVINO) would see the group.
:mod:`.constant_folding_dq` folds the ones left after the fusions."""

from __future__ import annotations

import numpy as np

from ...ir import Model, tensor_shape
from ...provider import KernelInfo, is_multi_output
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant

NONDETERMINISTIC = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "Dropout",
}


class ConstantFolding(GraphPass):
    name = "ConstantFolding"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        cpu = ctx.cpu_provider()
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                if n.domain or n.subgraphs or n.op_type in NONDETERMINISTIC or not n.outputs:
                    continue
                if ctx.keep_dequantize and n.op_type == "DequantizeLinear":
                    continue  # QDQ groups keep their weights' DequantizeLinear (onnxruntime too)
                changed |= self.fold(g, n, model, cpu, ctx.fold_size_limit)
        return changed

    @classmethod
    def fold(cls, g, n, model, cpu, limit: int) -> bool:
        """Replace node ``n`` of ``g`` by initializers of its outputs' values when its inputs
        are constant (or it is Shape/Size of a static shape); whether it did."""
        if any(o in g.outputs or o in g.initializers for o in n.outputs if o):
            return False
        values = cls._static_shape(g, n)
        if values is None and cpu is not None:
            values = cls._evaluate(g, n, model, cpu, limit)
        if values is None:
            return False
        g.nodes.remove(n)
        for name, v in zip(n.outputs, values):
            if name:
                g.initializers[name] = v
        return True

    @staticmethod
    def _static_shape(g, n):
        if n.op_type not in ("Shape", "Size") or not n.inputs[0]:
            return None
        dims = tensor_shape(g.type_of(n.inputs[0]))
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        if n.op_type == "Size":
            return [np.array(int(np.prod(dims)), dtype=np.int64)]
        start, end = n.attr("start", 0), n.attr("end")
        return [np.array(dims[start:end] if end is not None else dims[start:], dtype=np.int64)]

    @staticmethod
    def _evaluate(g, n, model, cpu, limit):
        consts = {}
        for i, name in enumerate(n.inputs):
            if not name:
                continue
            v = constant(g, name)
            if v is None:
                return None
            consts[i] = v
        if not consts and n.op_type not in ("ConstantOfShape", "Range", "EyeLike"):
            return None
        opset = model.opset(n.domain)
        info = KernelInfo(
            n,
            opset,
            [g.type_of(i) if i else None for i in n.inputs],
            [None] * len(n.outputs),
            consts,
            provider=cpu,
        )
        if cpu.registry.unsupported_reason(info) is not None:
            return None
        try:
            fn = cpu.create_kernel(info)
            args = [consts.get(i) for i in range(len(n.inputs))]
            res = fn(*args)
        except Exception:  # a node that fails on its constants is left for run time to report
            return None
        outs = list(res) if is_multi_output(n, opset) else [res]
        outs = outs[: len(n.outputs)]
        if len(outs) < len([o for o in n.outputs if o]):
            return None
        if not all(isinstance(o, np.ndarray) or np.isscalar(o) for o in outs):
            return None  # sequences, maps and optionals stay as nodes
        if any(np.size(o) > limit for o in outs):
            return None
        # own arrays, never views of other constants (a fresh result that owns its memory is
        # kept as it is: copying a 400 MB folded weight doubled the peak memory of the session)
        return [
            o if isinstance(o, np.ndarray) and o.flags.owndata and not any(
                o is c for c in consts.values()
            ) else np.array(o)
            for o in outs
        ]  # fmt: skip


PASS = ConstantFolding()
