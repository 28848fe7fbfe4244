"""The graph rewriting behind quantize_static and quantize_dynamic.

Three forms, as onnxruntime writes them:

- QDQ (static): each quantized activation gets one QuantizeLinear -> DequantizeLinear pair that
  every consumer reads (one per quantized reader with ``DedicatedQDQPair``); weights are stored
  quantized behind a DequantizeLinear; biases as int32 with scale input_scale * weight_scale
  (the weight's scale widened first where the bias would leave the int32 range, unless
  ``QDQDisableWeightAdjustForInt32Bias``). Relu/Clip after a quantized op are removed (the
  quantized range already clamps) unless ``QDQKeepRemovableActivations``. Data-movement ops
  (Reshape, Transpose, MaxPool...) reuse their input's scale and zero point for their output.
- QOperator (static): QLinearConv, QLinearMatMul, com.microsoft QGemm/QLinearAdd/QLinearMul/
  QLinearLeakyRelu/QLinearSigmoid/QLinearGlobalAveragePool/QLinearAveragePool/QLinearConcat, and
  the data-movement ops applied to the int8 tensors directly, with QuantizeLinear/
  DequantizeLinear where float and integer parts meet.
- IntegerOps (dynamic): DynamicQuantizeLinear on activations, MatMulInteger/ConvInteger with
  Cast and Mul by the scales; Gather on a quantized table followed by DequantizeLinear; LSTM as
  com.microsoft DynamicQuantizeLSTM, com.microsoft Attention and EmbedLayerNormalization as
  QAttention and QEmbedLayerNormalization.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import smooth_quant
from ._graph import (
    MS_DOMAIN,
    attr,
    consumers,
    elem_types,
    ensure_domain,
    infer_types,
    is_float,
    opset_of,
    producers,
    require_opset,
    topo_sort,
)
from .quant_utils import (
    QuantFormat,
    QuantType,
    compute_scale_zp,
    get_qmin_qmax_for_qType,
    make_int_tensor,
    quantize_array,
    restricted_asymmetric_scale_zp,
)
from .tensor_quant_overrides import TensorQuantOverridesHelper, explicit_params

logger = logging.getLogger(__name__)

# op types each form quantizes (the defaults when op_types_to_quantize is empty)
DIRECT_OPS = {
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "MaxPool",
    "Slice",
    "Resize",
    "Pad",
    "Split",
    "TopK",
}
# ops both static forms quantize (QOperator: as QLinear* / com.microsoft ops)
COMPUTE_OPS = {
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "GlobalAveragePool",
    "AveragePool",
    "Concat",
    "Softmax",
}
QDQ_OPS = (
    COMPUTE_OPS | DIRECT_OPS | {"ConvTranspose", "Where", "Gather", "GatherElements", "ArgMax"}
)
QDQ_OPS |= {"LayerNormalization", "InstanceNormalization", "BatchNormalization"}
# data-movement ops the QOperator form applies to int8 tensors directly
QOPERATOR_DIRECT_OPS = {
    "MaxPool",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Resize",
}
QOPERATOR_OPS = COMPUTE_OPS | QOPERATOR_DIRECT_OPS
INTEGER_OPS = {"Conv", "MatMul", "Gather", "LSTM", "Attention", "EmbedLayerNormalization"}
#: types whose weights are symmetric unless WeightSymmetric says otherwise (onnxruntime's rule)
SIGNED_TYPES = {TensorProto.INT8, TensorProto.INT16, TensorProto.INT4}
#: types QuantizeLinear/DequantizeLinear take from opset 21
OPSET21_TYPES = {TensorProto.INT16, TensorProto.UINT16, TensorProto.INT4, TensorProto.UINT4}
FOUR_BIT_TYPES = {TensorProto.INT4, TensorProto.UINT4}
#: com.microsoft ops the dynamic form quantizes (onnxruntime's registry matches op types alone)
MS_INTEGER_OPS = {"Attention", "EmbedLayerNormalization"}
#: contrib op -> the input whose element type its first output has
CONTRIB_OUTPUT_TYPE = {"Attention": 0, "EmbedLayerNormalization": 2}

# extra_options this quantizer implements, and the ones onnxruntime knows that are accepted
# only at their default value (anything else is an error that says so)
SUPPORTED_EXTRA = {
    "ActivationSymmetric",
    "ActivationRestrictedAsymmetric",
    "WeightSymmetric",
    "EnableSubgraph",
    "ForceQuantizeNoInputCheck",
    "MatMulConstBOnly",
    "AddQDQPairToWeight",
    "DedicatedQDQPair",
    "QDQOpTypePerChannelSupportToAxis",
    "UseQDQContribOps",
    "QDQKeepRemovableActivations",
    "QDQDisableWeightAdjustForInt32Bias",
    "OpTypesToExcludeOutputQuantization",
    "QuantizeBias",
    "MinimumRealRange",
    "CalibTensorRangeSymmetric",
    "CalibMovingAverage",
    "CalibMovingAverageConstant",
    "CalibMaxIntermediateOutputs",
    "CalibPercentile",
    "CalibStridedMinMax",
    "TensorQuantOverrides",
    "SmoothQuant",
    "SmoothQuantAlpha",
    "SmoothQuantFolding",
    "SmoothQuantCalibIter",
    "extra.Sigmoid.nnapi",
}
DEFAULT_ONLY_EXTRA = {
    # onnxruntime's quantizer never reads this key: it is the name of a command-line flag of its
    # static_quantize_runner, which passes QuantizeBias=False instead. Accepting True here would
    # change a model onnxruntime leaves alone, so only the default is accepted.
    "DisableQuantizeBias": False,
}
#: hints for a non-default DEFAULT_ONLY_EXTRA value
DEFAULT_ONLY_HINT = {"DisableQuantizeBias": "pass QuantizeBias=False to keep biases in float"}
#: flags onnxruntime reads in the QDQ format only
QDQ_ONLY_EXTRA = (
    "DedicatedQDQPair",
    "QDQOpTypePerChannelSupportToAxis",
    "QDQDisableWeightAdjustForInt32Bias",
    "UseQDQContribOps",
)
BOOL_EXTRA = (
    "ActivationRestrictedAsymmetric",
    "DedicatedQDQPair",
    "QDQDisableWeightAdjustForInt32Bias",
    "UseQDQContribOps",
    "extra.Sigmoid.nnapi",
)
#: the ops whose per-channel weight axis onnxruntime's QDQ quantizer looks up in
#: QDQOpTypePerChannelSupportToAxis (default 1); Conv, ConvTranspose and Gemm keep fixed axes
AXIS_OPTION_OPS = ("BatchNormalization", "InstanceNormalization", "LayerNormalization", "MatMul")


def check_extra_options(extra: dict | None) -> dict:
    extra = dict(extra or {})
    for key, value in extra.items():
        if key in SUPPORTED_EXTRA:
            continue
        if key in DEFAULT_ONLY_EXTRA:
            if value in (DEFAULT_ONLY_EXTRA[key], None):
                continue
            hint = DEFAULT_ONLY_HINT.get(key, "quantize with onnxruntime")
            raise ValueError(
                f"extra_options[{key!r}]={value!r} is not supported by ort_core.quantization; "
                f"leave it at {DEFAULT_ONLY_EXTRA[key]!r} ({hint})"
            )
        raise ValueError(
            f"unknown extra_options key {key!r}; supported keys: {', '.join(sorted(SUPPORTED_EXTRA))}"
        )
    for key in BOOL_EXTRA:
        if key in extra and not isinstance(extra[key], bool | np.bool_):
            raise ValueError(f"extra_options[{key!r}] must be True or False, got {extra[key]!r}")
    axes = extra.get("QDQOpTypePerChannelSupportToAxis")
    if axes is not None and (
        not isinstance(axes, dict)
        or not all(isinstance(k, str) for k in axes)
        or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in axes.values()
        )
    ):
        raise ValueError(
            f"extra_options['QDQOpTypePerChannelSupportToAxis'] must be a dict of op type -> "
            f"integer axis, such as {{'MatMul': 1}}; got {axes!r}"
        )
    stride = extra.get("CalibStridedMinMax")
    if stride is not None and (
        not isinstance(stride, int | np.integer) or isinstance(stride, bool) or stride < 1
    ):
        raise ValueError(
            f"extra_options['CalibStridedMinMax'] must be a positive integer (the number of "
            f"calibration batches per stride) or None, got {stride!r}"
        )
    smooth_quant.check_options(extra)
    return extra


@dataclass
class QParams:
    scale: str  # initializer names
    zero_point: str
    qtype: int


@dataclass
class QWeight:
    """An initializer quantized behind a DequantizeLinear (QDQ format)."""

    name: str  # the float initializer
    quantized: str  # the quantized initializer
    params: QParams
    scales: np.ndarray
    zero_points: np.ndarray
    axis: int | None
    dq: str  # what its readers read


def _qdq_node(op: str, src: str, p: QParams, out: str, name: str, **kw) -> onnx.NodeProto:
    """A QuantizeLinear or DequantizeLinear node (``op``) reading ``src`` with ``p``'s scale and
    zero point."""
    return helper.make_node(op, [src, p.scale, p.zero_point], [out], name, **kw)


class Quantizer:
    """One quantization of one model. ``mode`` is "qdq", "qoperator" or "dynamic"."""

    def __init__(
        self,
        model: onnx.ModelProto,
        mode: str,
        *,
        per_channel: bool = False,
        reduce_range: bool = False,
        weight_type: QuantType = QuantType.QInt8,
        activation_type: QuantType = QuantType.QUInt8,
        op_types_to_quantize=None,
        nodes_to_quantize=None,
        nodes_to_exclude=None,
        extra_options: dict | None = None,
        ranges: dict | None = None,
    ):
        for what, t in (("weight_type", weight_type), ("activation_type", activation_type)):
            if not isinstance(t, QuantType):
                raise TypeError(f"{what} must be a QuantType, got {t!r}")
            if t is QuantType.QFLOAT8E4M3FN:
                raise ValueError(f"{what}=QFLOAT8E4M3FN is not supported; use an integer QuantType")
        self.mode = mode
        self.extra = check_extra_options(extra_options)
        self.per_channel, self.reduce_range = bool(per_channel), bool(reduce_range)
        self.wtype, self.atype = weight_type.tensor_type, activation_type.tensor_type
        wide = {TensorProto.INT16, TensorProto.UINT16, TensorProto.INT4, TensorProto.UINT4}
        if mode != "qdq" and (self.wtype in wide or self.atype in wide):
            raise ValueError(
                "16-bit and 4-bit types are only written in the QDQ format; use "
                "quant_format=QuantFormat.QDQ (or QInt8/QUInt8)"
            )
        if self.atype in (TensorProto.INT4, TensorProto.UINT4):
            raise ValueError("4-bit activations are not supported; use QInt4/QUInt4 for weights")
        if mode == "dynamic" and self.wtype not in (TensorProto.INT8, TensorProto.UINT8):
            raise ValueError("quantize_dynamic supports weight_type QInt8 or QUInt8")
        default_ops = {"qdq": QDQ_OPS, "qoperator": QOPERATOR_OPS, "dynamic": INTEGER_OPS}[mode]
        self.op_types = set(op_types_to_quantize or default_ops)
        self.nodes_to_quantize = set(nodes_to_quantize or [])
        self.nodes_to_exclude = set(nodes_to_exclude or [])
        self.ranges = ranges or {}
        e = self.extra
        self.act_sym = bool(e.get("ActivationSymmetric", False))
        self.w_sym = bool(e.get("WeightSymmetric", self.wtype in SIGNED_TYPES))
        self.force = bool(e.get("ForceQuantizeNoInputCheck", False))
        self.const_b_only = bool(e.get("MatMulConstBOnly", False))
        self.qdq_weight_pair = bool(e.get("AddQDQPairToWeight", False))
        self.keep_removable = bool(e.get("QDQKeepRemovableActivations", False))
        self.no_output_q = set(e.get("OpTypesToExcludeOutputQuantization", []) or [])
        self.quantize_bias = bool(e.get("QuantizeBias", True))
        self.min_real_range = e.get("MinimumRealRange")
        self.subgraphs = bool(e.get("EnableSubgraph", False))
        if self.subgraphs and mode != "dynamic":
            raise ValueError(
                "EnableSubgraph is supported with quantize_dynamic only (calibration does not "
                "see tensors inside If/Loop/Scan bodies)"
            )
        self.dedicated_pairs = bool(e.get("DedicatedQDQPair", False))
        self.channel_axes = dict(e.get("QDQOpTypePerChannelSupportToAxis") or {})
        self.qdq_domain = MS_DOMAIN if e.get("UseQDQContribOps", False) else None
        self.restricted_asym = bool(e.get("ActivationRestrictedAsymmetric", False))
        self.adjust_weight_for_bias = not e.get("QDQDisableWeightAdjustForInt32Bias", False)
        self.sigmoid_nnapi = bool(e.get("extra.Sigmoid.nnapi", False))
        self.model = model
        self.overrides = self._check_overrides(e.get("TensorQuantOverrides"), activation_type)
        self._check_format_options()
        self._uid = 0

    def _check_format_options(self) -> None:
        """Options onnxruntime reads in one format only, or that could not change this model,
        set where they would do nothing: an error that says where they apply."""
        e = self.extra
        where = {"qdq": "the QDQ format", "qoperator": "the QOperator format"}.get(
            self.mode, "quantize_dynamic"
        )
        for key in QDQ_ONLY_EXTRA:
            if self.mode != "qdq" and e.get(key):
                raise ValueError(
                    f"extra_options[{key!r}]={e[key]!r} applies to the QDQ format only "
                    f"(onnxruntime ignores it in {where}); use quantize_static with "
                    "quant_format=QuantFormat.QDQ, or leave the option out"
                )
        if self.sigmoid_nnapi and self.mode != "qoperator":
            raise ValueError(
                "extra_options['extra.Sigmoid.nnapi']=True applies to the QOperator format only "
                f"(onnxruntime ignores it in {where}); use quantize_static with "
                "quant_format=QuantFormat.QOperator, or leave the option out"
            )
        if e.get("CalibStridedMinMax") and self.mode == "dynamic":
            raise ValueError(
                "extra_options['CalibStridedMinMax'] applies to calibration, which "
                "quantize_dynamic does not do; use quantize_static or leave the option out"
            )
        if self.restricted_asym:
            if self.mode == "dynamic":
                raise ValueError(
                    "extra_options['ActivationRestrictedAsymmetric']=True applies to calibrated "
                    "activations, which quantize_dynamic does not have; use quantize_static"
                )
            if self.atype != TensorProto.UINT8 and TensorProto.UINT8 not in (
                self.overrides.quant_types()
            ):
                raise ValueError(
                    "extra_options['ActivationRestrictedAsymmetric']=True applies to QUInt8 "
                    "activations only (onnxruntime ignores it otherwise); pass "
                    "activation_type=QuantType.QUInt8"
                )
        if self.channel_axes:
            if not self.per_channel:
                raise ValueError(
                    "extra_options['QDQOpTypePerChannelSupportToAxis'] applies with "
                    "per_channel=True only (onnxruntime ignores it otherwise); pass "
                    "per_channel=True or leave the option out"
                )
            others = sorted(set(self.channel_axes) - set(AXIS_OPTION_OPS))
            if others:
                raise ValueError(
                    f"extra_options['QDQOpTypePerChannelSupportToAxis'] names {others}, whose "
                    "per-channel axis onnxruntime does not take from this option (Conv and Gemm "
                    "use the output-channel axis of their weight); it applies to "
                    f"{', '.join(AXIS_OPTION_OPS)}"
                )

    def _check_overrides(self, raw, activation_type: QuantType) -> TensorQuantOverridesHelper:
        if raw and self.mode != "qdq":
            raise ValueError(
                "extra_options['TensorQuantOverrides'] is supported in the QDQ format only; "
                "use quantize_static with quant_format=QuantFormat.QDQ"
            )
        g = self.model.graph
        inits = {i.name: tuple(i.dims) for i in g.initializer}
        names = {t for n in g.node for t in [*n.input, *n.output] if t}
        names |= {vi.name for vi in [*g.input, *g.output]}
        readers: dict[str, set[str]] = {}
        for n in g.node:
            for t in n.input:
                readers.setdefault(t, set()).add(n.name)
        return TensorQuantOverridesHelper(raw, inits, names - set(inits), activation_type, readers)

    # -- entry -----------------------------------------------------------------------------

    def run(self) -> onnx.ModelProto:
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        need = 10
        # com.microsoft QuantizeLinear/DequantizeLinear take an axis and 4-bit types at any
        # opset; onnxruntime moves a model to opset 21 for 16-bit types whatever the domain
        if self.per_channel and self.qdq_domain is None:
            need = 13
        wide = OPSET21_TYPES if self.qdq_domain is None else OPSET21_TYPES - FOUR_BIT_TYPES
        if self.mode == "qdq" and ({self.wtype, self.atype} | self.overrides.quant_types()) & wide:
            need = 21
        if self.mode == "dynamic":
            need = 11
        model = require_opset(model, need, "this quantization")
        model = infer_types(model)
        self.opset = opset_of(model)
        self.model_out = model
        self._graph(model.graph, top=True)
        if any(n.domain == MS_DOMAIN for n in _walk_nodes(model.graph)):
            ensure_domain(model, MS_DOMAIN)
        del model.graph.value_info[:]  # stale for renamed/retyped tensors; consumers re-infer
        return model

    def _graph(self, g: onnx.GraphProto, top: bool) -> None:
        outer_types = {} if top else dict(self.types)
        outer_inits = {} if top else dict(self.inits)
        self.g = g
        self.types = {**outer_types, **elem_types(g)}  # bodies read outer-scope tensors
        self.inits = {**outer_inits, **{i.name: i for i in g.initializer}}
        self.new_inits: list[TensorProto] = []
        # names new initializers must avoid: every tensor name this graph (or its scope) uses
        self._taken = set(self.inits) | {t for n in g.node for t in [*n.input, *n.output]}
        self._taken |= {vi.name for vi in [*g.input, *g.output]}
        if self.subgraphs:
            for n in g.node:
                for a in n.attribute:
                    subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
                    for sub in subs:
                        saved = (self.g, self.types, self.inits, self.new_inits, self._taken)
                        self._graph(sub, top=False)
                        self.g, self.types, self.inits, self.new_inits, self._taken = saved
        nodes = list(g.node)
        if self.mode == "qdq":
            nodes = self._qdq(nodes)
        elif self.mode == "qoperator":
            nodes = self._qoperator(nodes)
        else:
            nodes = self._dynamic(nodes)
        used = {i for n in nodes for i in _reads(n)} | {o.name for o in g.output}
        kept = [i for i in g.initializer if i.name in used]
        kept += [i for i in self.new_inits if i.name in used]
        del g.initializer[:]
        g.initializer.extend(_dedupe(kept))
        del g.node[:]
        g.node.extend(topo_sort(g, nodes))

    # -- selection -------------------------------------------------------------------------

    def _selected(self, n: onnx.NodeProto) -> bool:
        if n.op_type not in self.op_types:
            return False
        if n.domain not in ("", "ai.onnx") and not (
            self.mode == "dynamic" and n.domain == MS_DOMAIN and n.op_type in MS_INTEGER_OPS
        ):
            return False
        if self.nodes_to_quantize and n.name not in self.nodes_to_quantize:
            return False
        return n.name not in self.nodes_to_exclude

    def _name(self, base: str) -> str:
        if base not in self._taken:
            return base
        while True:
            self._uid += 1
            cand = f"{base}_{self._uid}"
            if cand not in self._taken:
                return cand

    def _add_init(self, tensor: TensorProto) -> str:
        self.new_inits.append(tensor)
        self.inits[tensor.name] = tensor
        self._taken.add(tensor.name)
        return tensor.name

    def _const(self, name: str) -> np.ndarray | None:
        t = self.inits.get(name)
        return None if t is None else numpy_helper.to_array(t)

    # -- parameters ------------------------------------------------------------------------

    def _act_params(self, tensor: str, cache: dict) -> QParams | None:
        """Scale and zero point of an activation from its calibrated range (None: no range)."""
        if tensor in cache:
            return cache[tensor]
        made = self._range_params(tensor, self.overrides.per_tensor(tensor), "")
        if made is not None:
            cache[tensor] = made
        return made

    def _range_params(self, tensor: str, over: dict, suffix: str) -> QParams | None:
        """Scale and zero point initializers of activation ``tensor`` from its calibrated range
        and the overrides ``over`` (explicit scale/zero point, quant_type, rmin/rmax,
        symmetric); None when the tensor has no calibrated range."""
        td = self.ranges.get(tensor)
        if td is None:
            return None
        lo, hi = (td.range_value if hasattr(td, "range_value") else td)[:2]
        qtype = over["quant_type"].tensor_type if "quant_type" in over else self.atype
        if "scale" in over:
            where = f"TensorQuantOverrides[{tensor!r}]" + ("['convert']" if suffix else "")
            zp, scale = explicit_params(where, over, qtype)
        else:
            lo, hi = over.get("rmin", lo), over.get("rmax", hi)
            sym = bool(over.get("symmetric", self.act_sym))
            qmin, qmax = get_qmin_qmax_for_qType(qtype, symmetric=sym)
            zp, scale = compute_scale_zp(
                np.float32(lo), np.float32(hi), qmin, qmax, sym, self.min_real_range
            )
            if self.restricted_asym and qtype == TensorProto.UINT8 and not sym:
                zp, scale = restricted_asymmetric_scale_zp(
                    np.float32(lo), np.float32(hi), qmin, qmax, self.min_real_range
                )
        s = self._add_init(
            numpy_helper.from_array(scale.reshape(()), self._name(f"{tensor}_scale{suffix}"))
        )
        z = self._add_init(
            make_int_tensor(self._name(f"{tensor}_zero_point{suffix}"), zp.reshape(()), qtype)
        )
        return QParams(s, z, qtype)

    def _weight(
        self,
        name: str,
        qtype: int,
        axis: int | None,
        symmetric: bool,
        reduce: bool,
        is_weight: bool = True,
    ) -> tuple[str, QParams, np.ndarray, np.ndarray]:
        """Quantize initializer ``name``; returns (quantized name, params, scales, zero points).
        Its TensorQuantOverrides, if any, take precedence (see ``_overridden_values``)."""
        w = self._const(name).astype(np.float32)
        if name in self.overrides:
            q, scale, zp, qtype = self._overridden_values(
                name, w, qtype, axis, symmetric, reduce, is_weight
            )
        else:
            q, scale, zp = self._quantize_values(w, qtype, axis, symmetric, reduce)
        qname = self._add_init(make_int_tensor(self._name(f"{name}_quantized"), q, qtype))
        s = self._add_init(numpy_helper.from_array(scale, self._name(f"{name}_scale")))
        z = self._add_init(make_int_tensor(self._name(f"{name}_zero_point"), zp, qtype))
        return qname, QParams(s, z, qtype), scale, zp

    def _quantize_values(
        self, w: np.ndarray, qtype: int, axis: int | None, symmetric: bool, reduce: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(quantized values, scales, zero points) of float32 ``w``, per tensor or along ``axis``."""
        qmin, qmax = get_qmin_qmax_for_qType(qtype, reduce_range=reduce, symmetric=symmetric)
        if axis is not None:
            moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
            lo, hi = moved.min(axis=1), moved.max(axis=1)
        else:
            lo, hi = (w.min(), w.max()) if w.size else (np.float32(0), np.float32(0))
        zp, scale = compute_scale_zp(lo, hi, qmin, qmax, symmetric, self.min_real_range)
        return quantize_array(w, scale, zp, qmin, qmax, axis), scale, zp

    def _overridden_values(
        self,
        name: str,
        w: np.ndarray,
        qtype: int,
        axis: int | None,
        symmetric: bool,
        reduce: bool,
        is_weight: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(quantized values, scales, zero points, type) of initializer ``name`` under its
        overrides, as onnxruntime's QDQ quantizer computes them: the override's quant_type
        (whose own symmetry default then applies), explicit scale/zero point quantized over the
        type's whole range, or the min/max (rmin/rmax when given) with the override's symmetric
        and reduce_range; per channel along ``axis`` (the caller resolved it, see
        ``_weight_axis``), symmetric by default."""
        per_channel = self.overrides.channels(name)
        entries = per_channel or [self.overrides.per_tensor(name)]
        first = entries[0]
        if "quant_type" in first:
            qtype = first["quant_type"].tensor_type
            if axis is None and is_weight:
                symmetric = self._weight_symmetric(qtype)
        symmetric = bool(first.get("symmetric", symmetric))
        reduce = bool(first.get("reduce_range", reduce))
        where = f"TensorQuantOverrides[{name!r}]"
        # values outside an overridden range saturate at the type's limits (not the symmetric or
        # reduced range the parameters were computed for), as onnxruntime quantizes them
        tmin, tmax = get_qmin_qmax_for_qType(qtype)
        if axis is None:
            if "scale" in first:
                zp, scale = explicit_params(where, first, qtype)
            else:
                qmin, qmax = get_qmin_qmax_for_qType(qtype, reduce, symmetric)
                lo = first.get("rmin", w.min() if w.size else 0.0)
                hi = first.get("rmax", w.max() if w.size else 0.0)
                zp, scale = compute_scale_zp(lo, hi, qmin, qmax, symmetric, self.min_real_range)
            return quantize_array(w, scale, zp, tmin, tmax), scale, zp, qtype
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        if "scale" in first:
            pairs = [explicit_params(f"{where}[{i}]", d, qtype) for i, d in enumerate(entries)]
            zp = np.array([p[0] for p in pairs], np.int64)
            scale = np.array([p[1] for p in pairs], np.float32)
        else:
            qmin, qmax = get_qmin_qmax_for_qType(qtype, reduce, symmetric)
            lo, hi = moved.min(axis=1), moved.max(axis=1)
            if "rmin" in first:  # then every channel has them (checked)
                lo = np.array([d["rmin"] for d in entries], np.float32)
                hi = np.array([d["rmax"] for d in entries], np.float32)
            zp, scale = compute_scale_zp(lo, hi, qmin, qmax, symmetric, self.min_real_range)
        return quantize_array(w, scale, zp, tmin, tmax, axis), scale, zp, qtype

    def _weight_symmetric(self, qtype: int) -> bool:
        """Whether a weight of ``qtype`` is symmetric: WeightSymmetric when given, else signed."""
        return bool(self.extra.get("WeightSymmetric", qtype in SIGNED_TYPES))

    def _bias(self, name: str, in_scale: str, w_scale: np.ndarray) -> tuple[str, str, str]:
        """int32 bias with scale input_scale * weight_scale and zero point 0."""
        b = self._const(name).astype(np.float32)
        x_scale = numpy_helper.to_array(self.inits[in_scale]).astype(np.float32)
        scale = (x_scale * w_scale).astype(np.float32)
        if scale.ndim == 0 and b.ndim == 1:
            scale_arr = scale.reshape(())
        else:
            scale_arr = np.broadcast_to(scale, b.shape).astype(np.float32).copy()
        safe = np.where(scale_arr == 0, 1.0, scale_arr).astype(np.float32)
        # in float64, as onnxruntime: float32 has steps of 128 near the int32 limits (and its
        # 2**31 - 1 rounds to 2**31, which does not fit)
        q = np.rint(b.astype(np.float64) / safe.astype(np.float64))
        if np.any(np.abs(q) > 2**31 - 1):
            logger.warning("bias %s leaves the int32 range at input x weight scale: clipped", name)
        q = np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)
        qn = self._add_init(numpy_helper.from_array(q, self._name(f"{name}_quantized")))
        sn = self._add_init(numpy_helper.from_array(safe, self._name(f"{name}_quantized_scale")))
        zn = self._add_init(
            numpy_helper.from_array(
                np.zeros(safe.shape, np.int32), self._name(f"{name}_quantized_zero_point")
            )
        )
        return qn, sn, zn

    def _weight_axis(self, n: onnx.NodeProto, idx: int) -> int | None:
        name = n.input[idx]
        w = self._const(name)
        channels = self.overrides.channels(name)
        if channels is not None:  # the override's axis wins, per_channel or not
            return int(channels[0]["axis"]) % w.ndim
        if not self.per_channel or self.overrides.is_per_tensor(name):
            return None
        if self.mode == "qdq" and n.op_type in AXIS_OPTION_OPS and w is not None:
            # onnxruntime's QDQ rule: axis 1 unless QDQOpTypePerChannelSupportToAxis says
            # otherwise, per tensor when the axis is outside the weight's rank
            axis = int(self.channel_axes.get(n.op_type, 1))
            if not -w.ndim <= axis < w.ndim:
                log = logger.warning if n.op_type in self.channel_axes else logger.info
                log(
                    "per-channel axis %d is outside the rank of %s (%d): quantized per tensor",
                    axis,
                    name,
                    w.ndim,
                )
                return None
            return axis % w.ndim
        if n.op_type == "Conv":
            return 0
        if n.op_type == "ConvTranspose":
            return 1
        if n.op_type == "Gemm":
            return 0 if attr(n, "transB", 0) else 1
        if n.op_type == "MatMul" and w is not None and w.ndim == 2:
            return 1
        return None

    # -- removable activations (shared by QDQ and QOperator) -------------------------------

    def _fold_activations(self, nodes: list, sel: set[int]) -> list:
        """Remove Relu/Clip(0, x) whose input comes from a quantized node and feeds only it: the
        producer writes the activation's output, quantized with its (non-negative) range."""
        if self.keep_removable or self.act_sym:
            return nodes
        cons = consumers(nodes)
        prod = producers(nodes)
        outputs = {o.name for o in self.g.output}
        drop = set()
        for n in nodes:
            if id(n) not in sel or n.op_type not in ("Relu", "Clip"):
                continue
            if n.op_type == "Clip":
                lo = attr(n, "min") if self.opset < 11 else None
                if self.opset >= 11:
                    lo = self._const(n.input[1]) if len(n.input) > 1 and n.input[1] else None
                if lo is None or float(np.asarray(lo)) != 0.0:
                    continue
            x, y = n.input[0], n.output[0]
            p = prod.get(x)
            if p is None or id(p) not in sel or p.op_type not in ("Conv", "Gemm", "MatMul", "Add"):
                continue
            if len(cons.get(x, [])) != 1 or x in outputs or y not in self.ranges:
                continue
            if self.overrides.convert(x) or self.overrides.convert(y):
                continue  # a converted tensor keeps its activation (as onnxruntime)
            p.output[list(p.output).index(x)] = y
            drop.add(id(n))
        return [n for n in nodes if id(n) not in drop]

    # -- QDQ -------------------------------------------------------------------------------

    def _qdq(self, nodes: list) -> list:
        sel = {id(n) for n in nodes if self._selected(n)}
        nodes = self._fold_activations(nodes, sel)
        for n in nodes:
            if id(n) in sel and n.op_type == "Softmax" and n.output[0] in self.ranges:
                self.ranges[n.output[0]] = (np.float32(0.0), np.float32(1.0))
        cache: dict[str, QParams] = {}
        self._convert_cache: dict[str, QParams | None] = {}
        act: dict[str, QParams] = {}  # activation tensor -> params for its Q/DQ pair
        weights: dict[tuple, QWeight] = {}  # (name, type, axis) -> the quantized initializer
        biases: list[tuple] = []  # (node, bias input idx, input params, weight key)
        new_nodes: list = []
        rewires: list[tuple[onnx.NodeProto, int, str]] = []

        def want_act(name: str) -> QParams | None:
            if not name or not is_float(self.types, name) and name not in self.ranges:
                return None
            if name in self.inits:
                return None
            p = self._act_params(name, cache)
            if p is not None:
                act[name] = p
            return p

        for n in nodes:
            if id(n) not in sel:
                continue
            op = n.op_type
            # onnxruntime's QDQ form also treats AveragePool as data movement (shared params)
            if op in DIRECT_OPS or op in ("AveragePool", "Gather", "GatherElements"):
                x = n.input[0]
                if x in self.inits or (x not in act and not self.force):
                    continue
                p = want_act(x)
                if p is None:
                    continue
                p = self._for_consumer(x, n, p)
                if op not in self.no_output_q:
                    for o in n.output[: 1 if op == "TopK" else len(n.output)]:
                        if is_float(self.types, o) or o in self.ranges:
                            cache[o] = p
                            act[o] = p
                continue
            if op == "MatMul" and self.const_b_only and n.input[1] not in self.inits:
                continue
            weight_idx = {
                "Conv": [1],
                "ConvTranspose": [1],
                "Gemm": [1],
                "MatMul": [1],
                "LayerNormalization": [1],
                "InstanceNormalization": [1],
                "BatchNormalization": [1],
            }.get(op, [])
            bias_idx = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}.get(op)
            if op in ("LayerNormalization", "InstanceNormalization", "BatchNormalization"):
                bias_idx = 2
            if op == "Gemm" and float(attr(n, "beta", 1.0)) != 1.0:
                bias_idx = None
            quantized_inputs = [
                (i, name)
                for i, name in enumerate(n.input)
                if name
                and i != bias_idx
                and not (op == "Where" and i == 0)
                and not (op == "Clip" and i > 0)
            ]
            # every float activation input needs a calibrated range, or the node stays float
            if any(
                name not in self.inits
                and (is_float(self.types, name) or name in self.ranges)
                and self._act_params(name, cache) is None
                for _, name in quantized_inputs
            ):
                continue
            in_params: dict[int, QParams] = {}
            w_keys: dict[int, tuple] = {}
            for i, name in quantized_inputs:
                if name in self.inits:
                    arr = self._const(name)
                    if arr.dtype != np.float32:
                        continue
                    if op == "BatchNormalization" and i > 2:
                        continue  # the statistics stay float, as in onnxruntime
                    is_weight = i in weight_idx
                    qtype = self.wtype if is_weight else self.atype
                    if is_weight:
                        axis = self._weight_axis(n, i)
                    else:
                        channels = self.overrides.channels(name)
                        axis = None if channels is None else int(channels[0]["axis"]) % arr.ndim
                    # per-channel initializers are symmetric unless overridden (onnxruntime's
                    # QDQ rule: QLinear ops need one zero point in every channel)
                    sym = axis is not None or (self.w_sym if is_weight else self.act_sym)
                    key = (name, qtype, axis)
                    if key not in weights:
                        weights[key] = self._qdq_weight(
                            name, qtype, axis, sym, is_weight, new_nodes
                        )
                    w_keys[i] = key
                    rewires.append((n, i, weights[key].dq))
                    continue
                p = want_act(name)
                if p is not None:
                    in_params[i] = self._for_consumer(name, n, p)
            if (
                bias_idx is not None
                and len(n.input) > bias_idx
                and n.input[bias_idx] in self.overrides
                and self._const(n.input[bias_idx]).dtype == np.float32
            ):
                # a bias with overrides is quantized as a weight, with them (as onnxruntime)
                b = n.input[bias_idx]
                channels = self.overrides.channels(b)
                axis = None if channels is None else int(channels[0]["axis"]) % self._const(b).ndim
                key = (b, self.wtype, axis)
                if key not in weights:
                    sym = axis is not None or self.w_sym
                    weights[key] = self._qdq_weight(b, self.wtype, axis, sym, True, new_nodes)
                rewires.append((n, bias_idx, weights[key].dq))
            elif (
                bias_idx is not None
                and self.quantize_bias
                and len(n.input) > bias_idx
                and n.input[bias_idx] in self.inits
                and 0 in in_params
                and 1 in w_keys
            ):
                biases.append((n, bias_idx, in_params[0], w_keys[1]))
            if op in self.no_output_q or op in ("ArgMax",):
                continue
            for o in n.output[:1]:
                if o and (is_float(self.types, o) or o in self.ranges):
                    want_act(o)

        # int32 biases last: their scale is input scale x weight scale, and onnxruntime first
        # widens the weight scales that would make a bias overflow int32 (for every node
        # reading that weight)
        if self.adjust_weight_for_bias:
            for n, i, xp, key in biases:
                self._widen_weight_for_bias(weights[key], n.input[i], xp)
        for n, i, xp, key in biases:
            scales = weights[key].scales
            qn, sn, zn = self._bias(n.input[i], xp.scale, scales)
            out = self._name(f"{n.input[i]}_DequantizeLinear_Output")
            kw = {"axis": 0} if np.asarray(scales).ndim == 1 else {}
            new_nodes.append(
                _qdq_node(
                    "DequantizeLinear",
                    qn,
                    QParams(sn, zn, TensorProto.INT32),
                    out,
                    f"{out}_node",
                    domain=self.qdq_domain,
                    **kw,
                )
            )
            rewires.append((n, i, out))
        for n, i, name in rewires:
            n.input[i] = name
        outputs = {o.name for o in self.g.output}
        rename: dict[str, str] = {}  # tensor -> what its consumers read
        rename_for: dict[tuple[str, int], str] = {}  # (tensor, consumer id) -> what it reads

        dom = self.qdq_domain

        def q_dq(src: str, p: QParams, q_out: str, dq_out: str, base: str, suffix="") -> None:
            for op, a, b in (("QuantizeLinear", src, q_out), ("DequantizeLinear", q_out, dq_out)):
                new_nodes.append(_qdq_node(op, a, p, b, f"{base}_{op}{suffix}", domain=dom))

        quantized_readers: dict[str, dict[int, onnx.NodeProto]] = {}
        for m in nodes:
            if id(m) in sel:
                for name in m.input:
                    quantized_readers.setdefault(name, {})[id(m)] = m
        for tensor, p in act.items():
            readers = list(quantized_readers.get(tensor, {}).values())
            if self.dedicated_pairs and len(readers) > 1:
                # one pair per quantized reader; the tensor itself stays what it was for the
                # others (float readers, a graph output)
                if self._converted(tensor) is not None:
                    raise ValueError(
                        f"TensorQuantOverrides converts {tensor!r}, which several quantized nodes "
                        "read: onnxruntime does not combine a 'convert' override with "
                        "extra_options['DedicatedQDQPair']=True; drop one of them"
                    )
                for k, m in enumerate(readers, 1):
                    q_out = f"{tensor}_QuantizeLinear_Output_{k}"
                    dq_out = f"{tensor}_DequantizeLinear_Output_{k}"
                    q_dq(tensor, p, q_out, dq_out, tensor, f"_{k}")
                    rename_for[(tensor, id(m))] = dq_out
                continue
            src = tensor
            if tensor in outputs:
                src = f"{tensor}_QuantizeInput"
                for m in nodes:
                    for k, o in enumerate(m.output):
                        if o == tensor:
                            m.output[k] = src
            conv = self._converted(tensor)
            if conv is None:
                dq_out = tensor if tensor in outputs else f"{tensor}_DequantizeLinear_Output"
                rename[tensor] = dq_out
                q_dq(src, p, f"{tensor}_QuantizeLinear_Output", dq_out, tensor)
                continue
            # mixed precision: Q1 -> DQ1 for the original type's readers, then -> Q2 -> DQ2
            # for the converted type's (from a clone of DQ1 when both kinds of reader exist)
            cp, recv = conv
            converted = [m for m in readers if recv is None or m.name in recv]
            all_converted = len(converted) == len(readers)
            q1 = f"{tensor}_QuantizeLinear_Output"
            dq1 = (
                tensor
                if tensor in outputs and not all_converted
                else f"{tensor}_DequantizeLinear_Output"
            )
            rename[tensor] = dq1
            q_dq(src, p, q1, dq1, tensor)
            q2_in = dq1
            if not all_converted:
                q2_in = f"{tensor}_convert_QuantizeInput"
                new_nodes.append(
                    _qdq_node(
                        "DequantizeLinear",
                        q1,
                        p,
                        q2_in,
                        f"{tensor}_convert_clone_DequantizeLinear",
                        domain=dom,
                    )
                )
            dq2 = (
                tensor
                if tensor in outputs and all_converted
                else f"{tensor}_convert_DequantizeLinear_Output"
            )
            q_dq(q2_in, cp, f"{tensor}_convert_QuantizeLinear_Output", dq2, f"{tensor}_convert")
            for m in converted:
                rename_for[(tensor, id(m))] = dq2
        for m in nodes:
            for k, name in enumerate(m.input):
                if (name, id(m)) in rename_for:
                    m.input[k] = rename_for[(name, id(m))]
                elif name in rename and rename[name] != name:
                    m.input[k] = rename[name]
        return nodes + new_nodes

    def _converted(self, tensor: str) -> tuple[QParams, set[str] | None] | None:
        """The params of ``tensor``'s ``convert`` override and its receiving node names (None:
        every quantized reader), or None when it is not converted (or has no range)."""
        conv = self.overrides.convert(tensor)
        if conv is None:
            return None
        if tensor not in self._convert_cache:
            self._convert_cache[tensor] = self._range_params(tensor, conv[0], "_convert")
        params = self._convert_cache[tensor]
        return None if params is None else (params, conv[1])

    def _for_consumer(self, tensor: str, node: onnx.NodeProto, p: QParams) -> QParams:
        """The params ``node`` reads ``tensor`` with: the converted ones when it receives them."""
        conv = self._converted(tensor)
        if conv is None or (conv[1] is not None and node.name not in conv[1]):
            return p
        return conv[0]

    def _qdq_weight(self, name, qtype, axis, sym, is_weight, new_nodes) -> QWeight:
        # onnxruntime applies reduce_range to every quantized initializer (Add/Mul constants too)
        qname, p, scales, zps = self._weight(name, qtype, axis, sym, self.reduce_range, is_weight)
        out = self._name(f"{name}_DequantizeLinear_Output")
        kw = {"axis": axis} if axis is not None else {}
        kw["domain"] = self.qdq_domain
        src = qname
        if self.qdq_weight_pair:
            src = f"{name}_QuantizeLinear_Output"
            new_nodes.append(
                _qdq_node("QuantizeLinear", name, p, src, f"{name}_QuantizeLinear", **kw)
            )
        new_nodes.append(
            _qdq_node("DequantizeLinear", src, p, out, f"{name}_DequantizeLinear", **kw)
        )
        return QWeight(name, qname, p, scales, zps, axis, out)

    def _widen_weight_for_bias(self, w: QWeight, bias: str, x: QParams) -> None:
        """Widen the scales of symmetric int8/int16 weight ``w`` where ``bias`` quantized with
        scale input_scale * weight_scale would leave the int32 range (onnxruntime's rule: the
        bias scale must reach 1.0001 * 2 * |bias| / (2**32 - 2), per channel or for the largest
        value), and requantize ``w`` with them. The weight's readers all see the new scales."""
        if w.params.qtype not in (TensorProto.INT8, TensorProto.INT16) or np.any(w.zero_points):
            return
        b = self._const(bias).astype(np.float64)
        old = np.asarray(w.scales, np.float32)
        if w.axis is None:
            need = max(-b.min(initial=0.0), b.max(initial=0.0))  # the range holds 0
        elif old.ndim == 1 and b.size == old.size:
            need = np.abs(b.ravel())
        else:
            return
        need = 1.0001 * 2.0 * need / (float(2**31 - 1) - float(-(2**31) + 1))
        x_scale = float(numpy_helper.to_array(self.inits[x.scale]))
        got = x_scale * old.astype(np.float64)
        low = (got > 0) & (got < need)
        if not np.any(low):
            return
        ratio = np.divide(need, got, out=np.ones_like(got), where=low)
        new = np.where(low, (old.astype(np.float64) * ratio).astype(np.float32), old)
        logger.info("widening the scale of %s so that bias %s fits in int32", w.name, bias)
        qmin, qmax = get_qmin_qmax_for_qType(w.params.qtype)
        values = self._const(w.name).astype(np.float32)
        q = quantize_array(values, new, w.zero_points, qmin, qmax, w.axis)
        self._replace_init(make_int_tensor(w.quantized, q, w.params.qtype))
        self._replace_init(numpy_helper.from_array(new.astype(np.float32), w.params.scale))
        w.scales = new.astype(np.float32)

    def _replace_init(self, tensor: TensorProto) -> None:
        """Put ``tensor`` in place of the new initializer of the same name."""
        k = next(k for k, t in enumerate(self.new_inits) if t.name == tensor.name)
        self.new_inits[k] = tensor
        self.inits[tensor.name] = tensor

    # -- QOperator -------------------------------------------------------------------------

    def _qoperator(self, nodes: list) -> list:
        sel = {id(n) for n in nodes if self._selected(n)}
        nodes = self._fold_activations(nodes, sel)
        cache: dict[str, QParams] = {}
        self._qop_cache = cache
        qmap: dict[str, tuple[str, QParams]] = {}  # float name -> (quantized name, params)
        produced_q: set[str] = set()  # float names now only produced in integer form
        out_nodes: list = []
        extra: list = []

        def q_input(name: str) -> tuple[str, QParams] | None:
            if name in qmap:
                return qmap[name]
            if name in self.inits:
                arr = self._const(name)
                if arr.dtype != np.float32:
                    return None
                # a constant operand is quantized like a weight, in the activation type
                sym = self.extra.get(
                    "WeightSymmetric", self.atype in (TensorProto.INT8, TensorProto.INT16)
                )
                # (without reduce_range: onnxruntime's QOperator form keeps 8 bits for them)
                qn, p, _, _ = self._weight(name, self.atype, None, bool(sym), False)
                qmap[name] = (qn, p)
                return qmap[name]
            p = self._act_params(name, cache)
            if p is None:
                return None
            qn = f"{name}_quantized"
            extra.append(_qdq_node("QuantizeLinear", name, p, qn, f"{name}_QuantizeLinear"))
            qmap[name] = (qn, p)
            return qmap[name]

        def q_output(name: str) -> tuple[str, QParams] | None:
            p = self._act_params(name, cache)
            return None if p is None else (f"{name}_quantized", p)

        for n in nodes:
            if id(n) not in sel:
                out_nodes.append(n)
                continue
            made = self._qop_node(n, q_input, q_output, qmap)
            if made is None:
                out_nodes.append(n)
                continue
            new, outs = made
            out_nodes.extend(new)
            for fname, (qn, p) in outs.items():
                qmap[fname] = (qn, p)
                produced_q.add(fname)
        # float consumers and graph outputs of integer-only tensors read a DequantizeLinear
        reads = {i for n in out_nodes for i in _reads(n)} | {o.name for o in self.g.output}
        for fname in produced_q:
            if fname in reads:
                qn, p = qmap[fname]
                extra.append(
                    _qdq_node("DequantizeLinear", qn, p, fname, f"{fname}_DequantizeLinear")
                )
        return out_nodes + extra

    def _qop_node(self, n, q_input, q_output, qmap):
        op = n.op_type
        y = n.output[0]
        if op in ("Relu", "Clip"):
            return None  # only removed when it follows a quantized op (see _fold_activations)
        if op in QOPERATOR_DIRECT_OPS:
            if n.input[0] not in qmap and not self.force:
                return None
            if op == "MaxPool" and len(n.output) > 1 and n.output[1]:
                return None
            xi = q_input(n.input[0])
            if xi is None:
                return None
            qn, p = xi
            node = onnx.NodeProto()
            node.CopyFrom(n)
            node.input[0] = qn
            node.output[0] = f"{y}_quantized"
            return [node], {y: (node.output[0], p)}
        if op == "Concat":
            yo = q_output(y)
            ins = [q_input(i) for i in n.input]
            if yo is None or any(i is None for i in ins):
                return None
            args = [yo[1].scale, yo[1].zero_point]
            for qn, p in ins:
                args += [qn, p.scale, p.zero_point]
            node = helper.make_node(
                "QLinearConcat", args, [yo[0]], n.name, domain=MS_DOMAIN, axis=attr(n, "axis")
            )
            return [node], {y: yo}
        if op == "Sigmoid" and self.sigmoid_nnapi and y in self.ranges:
            # NNAPI's quantized logistic: output scale 1/256, zero point 0 of the activation type
            s = self._add_init(
                numpy_helper.from_array(np.array(1 / 256, np.float32), self._name(f"{y}_scale"))
            )
            z = self._add_init(
                make_int_tensor(self._name(f"{y}_zero_point"), np.array(0), self.atype)
            )
            self._qop_cache[y] = QParams(s, z, self.atype)
        if op == "Softmax" and y in self.ranges:
            # QLinearSoftmax writes probabilities on a fixed grid: scale 1/256, zero point qmin
            qmin = get_qmin_qmax_for_qType(self.atype)[0]
            s = self._add_init(
                numpy_helper.from_array(np.array(1 / 256, np.float32), self._name(f"{y}_scale"))
            )
            z = self._add_init(
                make_int_tensor(self._name(f"{y}_zero_point"), np.array(qmin), self.atype)
            )
            self._qop_cache[y] = QParams(s, z, self.atype)
        if op in (
            "Add",
            "Mul",
            "LeakyRelu",
            "Sigmoid",
            "GlobalAveragePool",
            "AveragePool",
            "Softmax",
        ):
            yo = q_output(y)
            ins = [q_input(i) for i in n.input]
            if yo is None or any(i is None for i in ins):
                return None
            args = []
            for qn, p in ins:
                args += [qn, p.scale, p.zero_point]
            args += [yo[1].scale, yo[1].zero_point]
            kw = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if op in ("GlobalAveragePool", "AveragePool"):
                kw["channels_last"] = 0
            if op == "Softmax":
                kw = {"axis": attr(n, "axis", -1 if self.opset >= 13 else 1), "opset": self.opset}
            node = helper.make_node(f"QLinear{op}", args, [yo[0]], n.name, domain=MS_DOMAIN, **kw)
            return [node], {y: yo}
        if op in ("Conv", "MatMul", "Gemm"):
            if n.input[1] not in self.inits:
                if op != "MatMul" or self.const_b_only:
                    return None
            if op == "Gemm" and (
                attr(n, "transA", 0)
                or float(attr(n, "beta", 1.0)) != 1.0
                or float(attr(n, "alpha", 1.0)) != 1.0
            ):
                return None
            yo = q_output(y)
            xi = q_input(n.input[0])
            if yo is None or xi is None:
                return None
            if n.input[1] in self.inits:
                axis = self._weight_axis(n, 1)
                wq, wp, wscale, _ = self._weight(
                    n.input[1], self.wtype, axis, self.w_sym, self.reduce_range
                )
            else:
                bi = q_input(n.input[1])
                if bi is None:
                    return None
                wq, wp = bi
                wscale = numpy_helper.to_array(self.inits[wp.scale])
            args = [xi[0], xi[1].scale, xi[1].zero_point, wq, wp.scale, wp.zero_point]
            kw = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if op == "MatMul":
                node = helper.make_node(
                    "QLinearMatMul", [*args, yo[1].scale, yo[1].zero_point], [yo[0]], n.name
                )
                return [node], {y: yo}
            bias = []
            if len(n.input) > 2 and n.input[2]:
                if n.input[2] not in self.inits:
                    return None
                b = self._const(n.input[2])
                if op == "Gemm" and b.ndim != 1:
                    return None
                bias = [self._bias(n.input[2], xi[1].scale, wscale)[0]]
            if op == "Conv":
                node = helper.make_node(
                    "QLinearConv",
                    [*args, yo[1].scale, yo[1].zero_point, *bias],
                    [yo[0]],
                    n.name,
                    **kw,
                )
            else:
                kw.pop("beta", None)
                c = bias or [""]
                node = helper.make_node(
                    "QGemm",
                    [*args, *c, yo[1].scale, yo[1].zero_point],
                    [yo[0]],
                    n.name,
                    domain=MS_DOMAIN,
                    **kw,
                )
            return [node], {y: yo}
        return None

    # -- dynamic (IntegerOps) --------------------------------------------------------------

    def _dynamic(self, nodes: list) -> list:
        out: list = []
        dyn: dict[str, tuple[str, str, str]] = {}  # activation -> (q, scale, zp)

        def dq_linear(name: str) -> tuple[str, str, str]:
            if name not in dyn:
                q, s, z = f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"
                out.append(
                    helper.make_node(
                        "DynamicQuantizeLinear", [name], [q, s, z], f"{name}_QuantizeLinear"
                    )
                )
                dyn[name] = (q, s, z)
            return dyn[name]

        for n in nodes:
            typed_by = CONTRIB_OUTPUT_TYPE.get(n.op_type) if n.domain == MS_DOMAIN else None
            if typed_by is not None and n.output and n.output[0] not in self.types:
                # onnx's type inference does not know contrib ops: the first output takes its
                # input's type, so the products after it can be quantized (as onnxruntime does)
                src = n.input[typed_by] if len(n.input) > typed_by else ""
                if src in self.types:
                    self.types[n.output[0]] = self.types[src]
            if n.op_type == "Gemm" and "MatMul" in self.op_types:
                n = self._gemm_as_matmul(n, out)
            if not self._selected(n):
                out.append(n)
                continue
            made = self._dynamic_node(n, dq_linear)
            out.extend(made if made is not None else [n])
        return out

    def _gemm_as_matmul(self, n: onnx.NodeProto, out: list) -> onnx.NodeProto:
        """Gemm(A, B const, C) with alpha=beta=1 and no transA becomes MatMul (+ Add), so its
        weight is quantized as MatMul's (as onnxruntime's dynamic quantizer does)."""
        if (
            self.nodes_to_quantize
            and n.name not in self.nodes_to_quantize
            or n.name in self.nodes_to_exclude
            or n.input[1] not in self.inits
            or attr(n, "transA", 0)
            or float(attr(n, "alpha", 1.0)) != 1.0
            or float(attr(n, "beta", 1.0)) != 1.0
        ):
            return n
        w = self._const(n.input[1])
        if attr(n, "transB", 0):
            w = w.T
        wname = self._add_init(
            numpy_helper.from_array(np.ascontiguousarray(w), self._name(f"{n.input[1]}_Transposed"))
        )
        base = n.name or n.output[0]
        has_c = len(n.input) > 2 and n.input[2]
        mm_out = f"{n.output[0]}_MatMul" if has_c else n.output[0]
        mm = helper.make_node("MatMul", [n.input[0], wname], [mm_out], n.name)
        self.types[mm_out] = TensorProto.FLOAT
        if has_c:
            out.append(helper.make_node("Add", [mm_out, n.input[2]], [n.output[0]], f"{base}_Add"))
        return mm

    def _contrib_node(self, op: str, n: onnx.NodeProto, inputs: list[str]) -> list:
        """The com.microsoft ``op`` replacing ``n`` as onnxruntime's quantizer names it, with
        ``n``'s outputs and attributes (``layout`` dropped: no quantized contrib op has it)."""
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name != "layout"}
        name = f"{n.name}_quant" if n.name else ""
        return [helper.make_node(op, inputs, list(n.output), name, domain=MS_DOMAIN, **attrs)]

    def _dynamic_lstm(self, n: onnx.NodeProto) -> list | None:
        """LSTM with constant float32 W and R becomes com.microsoft DynamicQuantizeLSTM, as
        onnxruntime's quantizer writes it: int8 weights (whatever ``weight_type``), quantized
        per direction, or per gate row with ``per_channel``, and stored transposed ([dirs, K,
        4 * hidden]). A batch-first LSTM (layout=1) stays float: the contrib op has no layout
        (onnxruntime's quantizer drops the attribute, which changes what the node computes)."""
        if len(n.input) < 3 or attr(n, "layout", 0):
            return None
        if n.input[1] not in self.inits or n.input[2] not in self.inits:
            return None
        weights = [self._const(n.input[i]) for i in (1, 2)]
        if any(w.dtype != np.float32 or w.ndim != 3 for w in weights):
            return None
        symmetric = bool(self.extra.get("WeightSymmetric", True))  # int8's default
        quantized = []
        for name, w in zip(n.input[1:3], weights):
            dirs, rows, k = w.shape
            flat = w.reshape(dirs * rows, k) if self.per_channel else w
            q, scale, zp = self._quantize_values(
                flat, TensorProto.INT8, 0, symmetric, self.reduce_range
            )
            q = np.ascontiguousarray(q.reshape(dirs, rows, k).transpose(0, 2, 1))
            shape = (dirs, rows) if self.per_channel else (dirs,)
            qname = self._add_init(
                make_int_tensor(self._name(f"{name}_quantized"), q, TensorProto.INT8)
            )
            s = self._add_init(
                numpy_helper.from_array(
                    np.asarray(scale, np.float32).reshape(shape), self._name(f"{name}_scale")
                )
            )
            z = self._add_init(
                make_int_tensor(
                    self._name(f"{name}_zero_point"), np.reshape(zp, shape), TensorProto.INT8
                )
            )
            quantized.append((qname, s, z))
        (wq, ws, wz), (rq, rs, rz) = quantized
        optional = [n.input[i] if len(n.input) > i else "" for i in range(3, 8)]
        return self._contrib_node(
            "DynamicQuantizeLSTM", n, [n.input[0], wq, rq, *optional, ws, wz, rs, rz]
        )

    def _dynamic_attention(self, n: onnx.NodeProto, dq_linear) -> list | None:
        """com.microsoft Attention with a constant float32 weight becomes QAttention, as
        onnxruntime's quantizer writes it: the input through DynamicQuantizeLinear, the weight
        quantized per tensor (per column with ``per_channel``). Left in float: separate Q/K/V
        sizes (``qkv_hidden_sizes``, as onnxruntime), no bias (QAttention requires one), and
        inputs past ``past`` (attention_bias, past_sequence_length), which QAttention has no
        place for (onnxruntime's quantizer drops them, which changes the node's result)."""
        if n.domain != MS_DOMAIN or any(a.name == "qkv_hidden_sizes" for a in n.attribute):
            return None
        if len(n.input) < 3 or not n.input[2] or any(n.input[5:]):
            return None
        w = n.input[1]
        if w not in self.inits or self._const(w).dtype != np.float32 or self._const(w).ndim != 2:
            return None
        if not is_float(self.types, n.input[0]) or n.input[0] in self.inits:
            return None
        axis = 1 if self.per_channel else None
        wq, wp, _, _ = self._weight(w, self.wtype, axis, self.w_sym, self.reduce_range)
        xq, xs, xz = dq_linear(n.input[0])
        mask, past = (n.input[i] if len(n.input) > i else "" for i in (3, 4))
        return self._contrib_node(
            "QAttention", n, [xq, wq, n.input[2], xs, wp.scale, mask, xz, wp.zero_point, past]
        )

    def _dynamic_embed(self, n: onnx.NodeProto) -> list | None:
        """com.microsoft EmbedLayerNormalization becomes QEmbedLayerNormalization, as
        onnxruntime's quantizer writes it: the embedding tables, gamma and beta quantized per
        tensor to the activation type, the ids and mask kept. Left in float: a third output
        (embedding_sum, as onnxruntime) or position_ids, which the quantized op has no place
        for (onnxruntime's quantizer drops it, which changes the result)."""
        if n.domain != MS_DOMAIN or len(n.output) > 2 or any(n.input[8:]):
            return None
        tables = [n.input[i] if len(n.input) > i else "" for i in (2, 3, 4, 5, 6)]
        for i, name in enumerate(tables):
            if (name or i != 2) and (
                name not in self.inits or self._const(name).dtype != np.float32
            ):
                return None
        quantized = [
            self._weight(name, self.atype, None, self.act_sym, False)[:2] if name else ("", None)
            for name in tables
        ]
        names = [q for q, _ in quantized]
        scales = [p.scale if p else "" for _, p in quantized]
        zero_points = [p.zero_point if p else "" for _, p in quantized]
        mask = n.input[7] if len(n.input) > 7 else ""
        return self._contrib_node(
            "QEmbedLayerNormalization", n,
            [n.input[0], n.input[1], *names, mask, *scales, *zero_points],
        )  # fmt: skip

    def _dynamic_node(self, n, dq_linear):
        op, y = n.op_type, n.output[0]
        if op == "LSTM":
            return self._dynamic_lstm(n)
        if op == "EmbedLayerNormalization":
            return self._dynamic_embed(n)
        if op == "Attention":
            return self._dynamic_attention(n, dq_linear)
        if op == "Gather":
            if n.input[0] not in self.inits or self._const(n.input[0]).dtype != np.float32:
                return None
            wq, p, _, _ = self._weight(n.input[0], self.wtype, None, self.w_sym, self.reduce_range)
            node = onnx.NodeProto()
            node.CopyFrom(n)
            node.input[0] = wq
            node.output[0] = f"{y}_quantized"
            dq = _qdq_node("DequantizeLinear", node.output[0], p, y, f"{y}_DequantizeLinear")
            return [node, dq]
        if op not in ("MatMul", "Conv"):
            return None
        if not is_float(self.types, n.input[0]) or n.input[0] in self.inits:
            return None
        w = n.input[1]
        if w in self.inits:
            if self._const(w).dtype != np.float32:
                return None
            # ConvInteger takes one weight zero point (onnxruntime's kernel rejects a vector)
            axis = self._weight_axis(n, 1) if op == "MatMul" else None
            wq, wp, wscale, _ = self._weight(w, self.wtype, axis, self.w_sym, self.reduce_range)
            w_scale_name = wp.scale
            if op == "Conv" and axis is not None:
                shaped = wscale.reshape([1, -1] + [1] * (self._const(w).ndim - 2))
                w_scale_name = self._add_init(
                    numpy_helper.from_array(shaped, self._name(f"{w}_scale_reshaped"))
                )
            w_zp = wp.zero_point
        else:  # onnxruntime leaves MatMul of two activations in float
            return None
        xq, xs, xz = dq_linear(n.input[0])
        base = n.name or y
        integer = helper.make_node(
            "MatMulInteger" if op == "MatMul" else "ConvInteger",
            [xq, wq, xz, w_zp],
            [f"{y}_output_quantized"],
            f"{base}_quant",
            **(
                {a.name: helper.get_attribute_value(a) for a in n.attribute} if op == "Conv" else {}
            ),
        )
        cast = helper.make_node(
            "Cast",
            [integer.output[0]],
            [f"{y}_output_quantized_cast_output"],
            f"{base}_cast",
            to=TensorProto.FLOAT,
        )
        scale = helper.make_node(
            "Mul", [xs, w_scale_name], [f"{y}_scales_mul_output"], f"{base}_scales_mul"
        )
        has_bias = op == "Conv" and len(n.input) > 2 and n.input[2]
        mul_out = f"{y}_output_quantized_mul_output" if has_bias else y
        mul = helper.make_node(
            "Mul", [cast.output[0], scale.output[0]], [mul_out], f"{base}_output_scale_mul"
        )
        made = [integer, cast, scale, mul]
        if has_bias:
            b = n.input[2]
            if b in self.inits:
                rank = self._const(w).ndim if w in self.inits else 4
                shaped = self._const(b).reshape([1, -1] + [1] * (rank - 2))
                b = self._add_init(
                    numpy_helper.from_array(shaped.astype(np.float32), self._name(f"{b}_reshaped"))
                )
            else:
                return None
            made.append(helper.make_node("Add", [mul_out, b], [y], f"{base}_bias_add"))
        return made


def _reads(n: onnx.NodeProto) -> list[str]:
    from ._graph import _all_inputs

    return [i for i in _all_inputs(n) if i]


def _walk_nodes(g: onnx.GraphProto):
    for n in g.node:
        yield n
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                yield from _walk_nodes(sub)


def _dedupe(inits: list[TensorProto]) -> list[TensorProto]:
    seen, out = set(), []
    for t in inits:
        if t.name not in seen:
            seen.add(t.name)
            out.append(t)
    return out


def tensors_to_calibrate(model: onnx.ModelProto, mode: str, **kw: Any) -> list[str]:
    """The float activations a static quantization of ``model`` may need ranges for: the
    inputs and outputs of the nodes it would quantize."""
    q = Quantizer(model, mode, **kw)
    m = infer_types(model)
    types = elem_types(m.graph)
    inits = {i.name for i in m.graph.initializer}
    names: list[str] = []
    for n in m.graph.node:
        if not q._selected(n):
            continue
        for t in [*n.input, *n.output]:
            if t and t not in inits and types.get(t) == TensorProto.FLOAT:
                names.append(t)
    return list(dict.fromkeys(names))


__all__ = ["Quantizer", "QuantFormat", "tensors_to_calibrate"]
