"""EXTENDED: QDQ groups -- DequantizeLinear on every input, one float op, QuantizeLinear on its
output -- become the quantized op: Conv -> QLinearConv, MatMul -> QLinearMatMul (ONNX);
Add/Mul -> QLinearAdd/QLinearMul, Sigmoid -> QLinearSigmoid, LeakyRelu -> QLinearLeakyRelu,
GlobalAveragePool -> QLinearGlobalAveragePool, AveragePool -> QLinearAveragePool, Softmax ->
QLinearSoftmax, Gemm -> QGemm, Concat -> QLinearConcat (com.microsoft), as onnxruntime's QDQ
selectors do. Each fuses only
where the node's provider has the quantized op's kernel.

QuantizeLinear and DequantizeLinear may be ONNX's or com.microsoft's (onnxruntime's quantizer
writes those with ``UseQDQContribOps``), as onnxruntime's selectors accept both.

Scales and zero points must be constants; per-tensor everywhere except the weights of Conv (per
output channel, axis 0) and Gemm (per output column). A Conv or Gemm bias must be
DequantizeLinear of int32 with the scale input scale x weight scale, or absent; Gemm's beta 1.
The DequantizeLinear nodes stay while something else reads them."""

from __future__ import annotations

import numpy as np

from ...ir import Model, node_reads
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import MS, accepted, can_fuse, drop_dead, new_node, replace

#: float op -> (quantized op, domain, number of quantized data inputs)
TARGETS = {
    "Conv": ("QLinearConv", "", 2),
    "MatMul": ("QLinearMatMul", "", 2),
    "Add": ("QLinearAdd", MS, 2),
    "Mul": ("QLinearMul", MS, 2),
    "Sigmoid": ("QLinearSigmoid", MS, 1),
    "LeakyRelu": ("QLinearLeakyRelu", MS, 1),
    "GlobalAveragePool": ("QLinearGlobalAveragePool", MS, 1),
    "AveragePool": ("QLinearAveragePool", MS, 1),
    "Softmax": ("QLinearSoftmax", MS, 1),
    "Gemm": ("QGemm", MS, 2),
    "Concat": ("QLinearConcat", MS, -1),  # every input
}
#: attributes the quantized op keeps from the float op
KEEP_ATTRS = {
    "Conv": None,  # all of them
    "LeakyRelu": None,
    "AveragePool": None,
    "Softmax": ("axis",),
    "Gemm": ("alpha", "transA", "transB"),
    "Concat": ("axis",),
}
INT8 = (np.dtype(np.int8), np.dtype(np.uint8))
#: the domains of the QuantizeLinear/DequantizeLinear nodes a group may have
QDQ_DOMAINS = ("", MS)


def _is(n, op_type: str) -> bool:
    """Whether ``n`` is ``op_type`` (QuantizeLinear or DequantizeLinear) of either domain."""
    return n.op_type == op_type and n.domain in QDQ_DOMAINS


def _gemm_channel_axis(op) -> int:
    """The axis of Gemm's B that holds its output columns (per-channel weights are along it)."""
    return 0 if op.attr("transB", 0) else 1


def _qparams(g, n, per_channel_ok=False, axis=None):
    """(x, scale, zero_point) names of a Q/DQ node with constant parameters, else None."""
    if len(n.inputs) < 2:
        return None
    scale = constant(g, n.inputs[1])
    zp = constant(g, n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
    if scale is None or (len(n.inputs) > 2 and n.inputs[2] and zp is None):
        return None
    if n.attr("block_size", 0):
        return None
    want_axis = 0 if axis is None else axis
    if scale.size != 1 and not (
        per_channel_ok and scale.ndim == 1 and n.attr("axis", 1) == want_axis
    ):
        return None
    if zp is not None and zp.dtype not in INT8:
        return None
    return n.inputs[0], n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else ""


class QDQFusion(GraphPass):
    name = "QDQFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            # every fusion ends in a QuantizeLinear: a float graph costs one scan; the graph's
            # maps are made once and kept up to date (they were made for every candidate:
            # BERT-base's session spent 0.3 s here with nothing to fuse)
            if any(_is(n, "QuantizeLinear") for n in g.nodes):
                prods, consumers = g.producers(), g.consumers()
                gone: set[int] = set()
                for op in list(g.nodes):
                    if op.op_type not in TARGETS or op.domain or id(op) in gone:
                        continue
                    fused = self._try(model, g, ctx, op, prods, consumers)
                    if fused is not None:
                        changed = True
                        _update_maps(prods, consumers, fused, gone)
            if changed:
                drop_dead(g, [n for n in g.nodes if _is(n, "DequantizeLinear")])
        return changed

    @staticmethod
    def _try(model, g, ctx, op, prods, consumers):
        """Fuse ``op`` with its DequantizeLinear inputs and QuantizeLinear reader; ``prods`` and
        ``consumers`` are ``g``'s maps as they are now. Returns (fused node, the op, the
        QuantizeLinear) when it fused, else None."""
        qop, domain, n_data = TARGETS[op.op_type]
        if n_data < 0:  # Concat: every input, at least one
            n_data = len(op.inputs)
            if not n_data or not all(op.inputs):
                return None
        out = op.outputs[0]
        users = consumers.get(out, [])
        if len(op.outputs) != 1 or out in g.outputs or len(users) != 1:
            return None
        q = users[0]
        if not _is(q, "QuantizeLinear"):
            return None
        yq = _qparams(g, q)
        if yq is None or not yq[2]:
            return None
        dqs, data = [], []
        for i in range(n_data):
            dq = prods.get(op.inputs[i]) if i < len(op.inputs) else None
            if dq is None or not _is(dq, "DequantizeLinear"):
                return None
            per_channel = i == 1 and op.op_type in ("Conv", "Gemm")
            axis = _gemm_channel_axis(op) if op.op_type == "Gemm" else 0
            p = _qparams(g, dq, per_channel_ok=per_channel, axis=axis)
            if p is None or not p[2]:
                return None
            dqs.append(dq)
            data.append(p)
        if op.op_type == "Gemm" and float(op.attr("beta", 1.0)) != 1.0:
            return None  # QGemm adds its int32 bias as it is
        extra = []
        if op.op_type in ("Conv", "Gemm") and len(op.inputs) > 2 and op.inputs[2]:
            bdq = prods.get(op.inputs[2])
            if bdq is None or not _is(bdq, "DequantizeLinear"):
                return None
            bias = constant(g, bdq.inputs[0])
            if bias is None or bias.dtype != np.int32:
                return None
            bscale = constant(g, bdq.inputs[1]) if len(bdq.inputs) > 1 else None
            implied = constant(g, data[0][1]) * constant(g, data[1][1])
            if bscale is None or not np.allclose(bscale, implied, rtol=1e-5, atol=0):
                return None
            extra = [bdq.inputs[0]]
        if op.op_type == "MatMul" and any(constant(g, d[1]).size != 1 for d in data):
            return None  # per-tensor only
        y_type = constant(g, yq[2]).dtype
        # inputs whose zero points must have the output's type: all of a com.microsoft op's
        # but QGemm's B (uint8 A with int8 B, onnxruntime's u8s8), only A of ONNX's ops
        same = data if (n_data == 1 or domain == MS) and op.op_type != "Gemm" else data[:1]
        if any(constant(g, d[2]).dtype != y_type for d in same):
            return None
        if not can_fuse(ctx, model, [op, q], domain, qop):
            return None
        inputs = [name for d in data for name in d] + list(yq[1:]) + extra
        if n_data == 1:
            inputs = [*data[0], *yq[1:]]
        if op.op_type == "Concat":  # Y_scale, Y_zero_point, then (X, X_scale, X_zero_point)...
            inputs = [*yq[1:], *(name for d in data for name in d)]
        if op.op_type == "Gemm":  # A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp
            inputs = [name for d in data for name in d] + (extra or [""]) + list(yq[1:])
        attrs = {}
        if op.op_type in KEEP_ATTRS:
            keep = KEEP_ATTRS[op.op_type]
            attrs = {k: a for k, a in op.attributes.items() if keep is None or k in keep}
        fused = new_node(
            model, g, qop, inputs, list(q.outputs), domain=domain, provider=op.provider,
            base=op.name or qop,
        )  # fmt: skip
        fused.attributes.update(attrs)
        if op.op_type == "Softmax":  # its axis default and 2-D coercion depend on the opset
            opset = model.opset("")
            fused.set_attr("opset", opset)
            if "axis" not in attrs:
                fused.set_attr("axis", 1 if opset < 13 else -1)
        if not accepted(ctx, model, g, [fused]):
            return None
        replace(g, q, [fused], [op, q])
        return fused, op, q


def _update_maps(prods, consumers, result, gone: set[int]) -> None:
    """``prods`` and ``consumers`` after ``result`` = (fused, op, q) replaced op and q: the
    fused node produces q's outputs and reads what it reads; op and q read and produce nothing.
    Kept up to date instead of remade (a scan of the whole graph per fusion made YOLO-n's QDQ
    session take a second)."""
    fused, op, q = result
    for old in (op, q):
        gone.add(id(old))
        for name in node_reads(old):
            readers = consumers.get(name)
            if readers is not None:
                consumers[name] = [n for n in readers if n is not old]
        for o in old.outputs:
            if prods.get(o) is old:
                del prods[o]
    for name in node_reads(fused):
        consumers.setdefault(name, []).append(fused)
    for o in fused.outputs:
        if o:
            prods[o] = fused


PASS = QDQFusion()
