"""Optimizer passes of the CPU provider (EXTENDED level, on nodes the CPU provider runs).

- ``CPUMatMulIntegerToFloat``: ``MatMulInteger -> Cast(float) -> Mul(a_scale * b_scale)`` as
  ``quantize_dynamic`` writes it becomes com.microsoft ``MatMulIntegerToFloat``, as onnxruntime's
  fusion of the same name does, with a following ``Add`` of a constant bias of B's columns as
  its bias input; the kernel computes the same int32 product, cast, multiplier and bias.
- ``CPUFloat16ToFloat32``: a graph computed in float16 between float32 inputs and outputs (what
  ``convert_float_to_float16(keep_io_types=True)`` writes) is computed in float32, as
  onnxruntime's CPU provider does (it has no float16 kernels for these ops; its cast insertion
  and removal leave the whole graph in float32 with the float16 weights widened). Only where every
  node that reads or writes float16 is on the CPU provider, of an op below, and accepted by it.
"""

from __future__ import annotations

import numpy as np

from ort_core import _onnx
from ort_core.ir import tensor_dtype
from ort_core.optimizer import GraphOptimizationLevel
from ort_core.optimizer._util import all_graphs, bypass
from ort_core.optimizer.passes._fusion import accepted, can_fuse, drop_dead, new_node, replace

TensorProto = _onnx.onnx.TensorProto

CPU = "CPUExecutionProvider"
F16 = np.dtype(np.float16)

#: ops whose float16 and float32 kernels compute the same expression (output type follows inputs)
FLOAT_GENERIC = frozenset(
    "Conv FusedConv ConvTranspose Gemm FusedGemm MatMul FusedMatMul Add Sub Mul Div Relu Clip "
    "Sigmoid Tanh LeakyRelu HardSigmoid HardSwish Max Min Sum Neg Abs Sqrt Exp Erf Pow "
    "GlobalAveragePool AveragePool MaxPool GlobalMaxPool BatchNormalization Softmax "
    "LayerNormalization Gelu BiasGelu Flatten Reshape Transpose Concat Split Squeeze Unsqueeze "
    "Slice Gather Identity Resize Pad ReduceMean Shape".split()
)


class MatMulIntegerToFloatFusion:
    name = "CPUMatMulIntegerToFloat"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    in_place = True
    providers = (CPU,)

    def __call__(self, model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            candidates = [n for n in g.nodes if n.op_type == "MatMulInteger" and not n.domain]
            if not candidates:
                continue
            # the graph's maps once: a fusion replaces its own MatMulInteger, Cast and Mul, which
            # no other candidate's match reads, and the scale products it leaves go at the end
            # (made per candidate, with a dead-node sweep per fusion, they cost a quantized
            # MiniLM's session 0.2 s)
            maps = (g.consumers(), g.producers(), set(g.outputs))
            scale_products = [
                smul for mm in candidates if (smul := self._try(model, g, ctx, mm, *maps))
            ]
            if scale_products:
                drop_dead(g, scale_products)
                changed = True
        return changed

    @staticmethod
    def _try(model, g, ctx, mm, consumers, producers, outs):
        """Fuse ``mm`` with its Cast and scale Mul; the maps are ``g``'s before this pass.
        Returns the Mul of the two scales (dead once fused) when it fused, else None."""

        def only_user(name, op):
            users = consumers.get(name, [])
            if name in outs or len(users) != 1 or users[0].op_type != op or users[0].domain:
                return None
            return users[0]

        cast = only_user(mm.outputs[0], "Cast")
        if cast is None or cast.attr("to") != TensorProto.FLOAT:
            return None
        mul = only_user(cast.outputs[0], "Mul")
        if mul is None:
            return None
        scales = mul.inputs[1] if mul.inputs[0] == cast.outputs[0] else mul.inputs[0]
        smul = producers.get(scales)
        dql = producers.get(mm.inputs[0])
        if smul is None or smul.op_type != "Mul" or smul.domain or dql is None:
            return None
        if dql.op_type != "DynamicQuantizeLinear" or len(dql.outputs) < 2:
            return None
        if dql.outputs[1] not in smul.inputs:
            return None
        a_scale = dql.outputs[1]
        b_scale = smul.inputs[1] if smul.inputs[0] == a_scale else smul.inputs[0]
        bs = g.initializers.get(b_scale)
        b = g.initializers.get(mm.inputs[1])
        if bs is None or b is None or b.ndim != 2 or bs.size not in (1, b.shape[1]):
            return None
        if bs.dtype != np.float32 or b_scale in g.inputs:
            return None
        # a bias Add after the Mul (a constant of B's columns) becomes the op's bias input, as
        # onnxruntime's fusion takes it: the product's epilogue adds it, no pass of its own
        add = only_user(mul.outputs[0], "Add")
        bias = None
        if add is not None:
            other = add.inputs[1] if add.inputs[0] == mul.outputs[0] else add.inputs[0]
            c = g.initializers.get(other)
            if (
                c is not None and other not in g.inputs and c.dtype == np.float32
                and c.shape == (b.shape[1],)
            ):  # fmt: skip
                bias = other
        fusing = [mm, cast, mul] + ([add] if bias else [])
        if not can_fuse(ctx, model, fusing, "com.microsoft", "MatMulIntegerToFloat"):
            return None
        zps = [mm.inputs[i] if len(mm.inputs) > i else "" for i in (2, 3)]
        fused = new_node(
            model, g, "MatMulIntegerToFloat",
            [*mm.inputs[:2], a_scale, b_scale, *zps] + ([bias] if bias else []),
            list((add if bias else mul).outputs), domain="com.microsoft", provider=mm.provider,
            base=mm.name,
        )  # fmt: skip
        while fused.inputs and not fused.inputs[-1]:
            fused.inputs.pop()
        if not accepted(ctx, model, g, [fused]):
            return None
        replace(g, fusing[-1], [fused], fusing)
        return smul


class Float16ToFloat32:
    name = "CPUFloat16ToFloat32"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    in_place = True
    providers = (CPU,)

    def __call__(self, model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            changed |= self._graph(model, g, ctx)
        return changed

    @staticmethod
    def _graph(model, g, ctx) -> bool:
        def is16(name):
            if name in g.initializers:
                return g.initializers[name].dtype == F16
            return tensor_dtype(g.type_of(name)) == F16

        if any(is16(x) for x in (*g.inputs, *g.outputs)):
            return False
        touched = [n for n in g.nodes if any(is16(x) for x in (*n.inputs, *n.outputs) if x)]
        if not touched:
            return False
        for n in touched:
            if n.provider != CPU or n.subgraphs or n.domain not in ("", "com.microsoft"):
                return False
            if n.op_type not in FLOAT_GENERIC and n.op_type != "Cast":
                return False
        names = {x for n in touched for x in (*n.inputs, *n.outputs) if x and is16(x)}
        saved_types = {k: g.value_types[k] for k in names if k in g.value_types}
        saved_inits = {k: g.initializers[k] for k in names if k in g.initializers}
        casts = [n for n in touched if n.op_type == "Cast" and n.attr("to") == TensorProto.FLOAT16]
        for k, tp in saved_types.items():
            new = type(tp)()
            new.CopyFrom(tp)
            new.tensor_type.elem_type = TensorProto.FLOAT
            g.value_types[k] = new
        for k, arr in saved_inits.items():
            g.initializers[k] = arr.astype(np.float32)
        for n in casts:
            n.set_attr("to", TensorProto.FLOAT)
        if not accepted(ctx, model, g, touched):
            g.value_types.update(saved_types)
            g.initializers.update(saved_inits)
            for n in casts:
                n.set_attr("to", TensorProto.FLOAT16)
            return False
        for n in [n for n in touched if n.op_type == "Cast" and n.attr("to") == TensorProto.FLOAT]:
            src = n.inputs[0]
            if tensor_dtype(g.type_of(src)) == np.float32:
                bypass(g, n, src, n.outputs[0])
        return True


PASSES = (MatMulIntegerToFloatFusion(), Float16ToFloat32())
