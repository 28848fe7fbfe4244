"""Float16 and bfloat16 conversion with mixed precision.

``convert_float_to_float16`` takes the options of onnxruntime's converter
(``onnxruntime.transformers.float16``). Every float32 tensor becomes float16 except around the
nodes kept in float32 (ops in ``op_block_list``, names in ``node_block_list``); Cast nodes are
inserted where a tensor crosses between the two. Control-flow bodies (If/Loop/Scan) are
converted with their node; the model's value_info is updated.

Mixed precision: pass ``op_block_list=DEFAULT_OP_BLOCK_LIST + SENSITIVE_OP_BLOCK_LIST`` to keep
the ops whose float16 results drift most (exponentials, reductions, normalizations, Resize) in
float32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

__all__ = [
    "DEFAULT_OP_BLOCK_LIST",
    "SENSITIVE_OP_BLOCK_LIST",
    "convert_float_to_bfloat16",
    "convert_float_to_float16",
    "convert_np_to_float16",
]

logger = logging.getLogger(__name__)

# ops without float16 kernels in onnxruntime (the same list as onnxruntime's converter)
DEFAULT_OP_BLOCK_LIST = [
    "ArrayFeatureExtractor",
    "Binarizer",
    "CastMap",
    "CategoryMapper",
    "DictVectorizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "RandomUniformLike",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsemble",
    "ZipMap",
    "NonMaxSuppression",
    "TopK",
    "RoiAlign",
    "Range",
    "CumSum",
    "Min",
    "Max",
    "Upsample",
]

# ops worth keeping in float32 for accuracy (opt in through op_block_list)
SENSITIVE_OP_BLOCK_LIST = [
    "Resize",
    "Exp",
    "Log",
    "Pow",
    "Softmax",
    "LogSoftmax",
    "ReduceSum",
    "ReduceMean",
    "ReduceProd",
    "ReduceL2",
    "ReduceLogSumExp",
    "LayerNormalization",
    "InstanceNormalization",
    "Erf",
]

# inputs that stay float32 whatever the node's precision: op -> input indices
_ALWAYS_FLOAT_INPUTS = {"Resize": [2], "Upsample": [1]}
_ML_DOMAIN = "ai.onnx.ml"


def convert_np_to_float16(
    np_array: np.ndarray, min_positive_val=5.96e-08, max_finite_val=65504.0
) -> np.ndarray:
    """float32 -> float16 with magnitudes clamped into [min_positive_val, max_finite_val]
    (zeros, infinities and NaNs are kept)."""
    a = np.asarray(np_array, dtype=np.float32)
    mag = np.abs(a)
    sign = np.sign(a)
    small = (mag > 0) & (mag < min_positive_val)
    big = np.isfinite(a) & (mag > max_finite_val)
    a = np.where(small, sign * np.float32(min_positive_val), a)
    a = np.where(big, sign * np.float32(max_finite_val), a)
    return a.astype(np.float16)


def convert_float_to_float16(
    model: onnx.ModelProto,
    min_positive_val: float = 5.96e-08,  # onnxruntime.transformers.float16's defaults: the
    max_finite_val: float = 65504.0,  # smallest subnormal and the largest finite float16
    keep_io_types: bool = False,
    disable_shape_infer: bool = False,
    op_block_list: Iterable[str] | None = None,
    node_block_list: Iterable[str] | None = None,
    force_fp16_initializers: bool = False,
) -> onnx.ModelProto:
    """A copy of ``model`` computing in float16 outside the blocked nodes.

    Args:
        model: the float32 model (a ModelProto; paths are loaded).
        min_positive_val, max_finite_val: initializer and constant magnitudes are clamped into
            this range before the cast, so tiny values do not flush to zero and large ones do
            not overflow.
        keep_io_types: keep the graph's inputs and outputs float32 (with Cast nodes inside).
        disable_shape_infer: skip onnx shape inference (the model's value_info must then give
            the type of every float tensor).
        op_block_list: op types kept in float32; None means ``DEFAULT_OP_BLOCK_LIST``.
        node_block_list: node names kept in float32.
        force_fp16_initializers: convert initializers even when only float32 nodes read them
            (a Cast back to float32 is inserted).
    """
    if not 0 < min_positive_val < max_finite_val:
        raise ValueError(
            f"need 0 < min_positive_val < max_finite_val, got {min_positive_val}, {max_finite_val}"
        )
    if max_finite_val > 65504.0:
        raise ValueError(f"max_finite_val {max_finite_val} exceeds float16's largest value 65504")
    return _Converter(
        TensorProto.FLOAT16,
        lambda a: convert_np_to_float16(a, min_positive_val, max_finite_val),
        keep_io_types,
        disable_shape_infer,
        op_block_list,
        node_block_list,
        force_fp16_initializers,
    ).convert(_load(model))


def convert_float_to_bfloat16(
    model: onnx.ModelProto,
    keep_io_types: bool = False,
    disable_shape_infer: bool = False,
    op_block_list: Iterable[str] | None = None,
    node_block_list: Iterable[str] | None = None,
    force_bf16_initializers: bool = False,
) -> onnx.ModelProto:
    """As :func:`convert_float_to_float16`, to bfloat16 (same range as float32: no clamping)."""
    import ml_dtypes

    return _Converter(
        TensorProto.BFLOAT16,
        lambda a: np.asarray(a, np.float32).astype(ml_dtypes.bfloat16),
        keep_io_types,
        disable_shape_infer,
        op_block_list,
        node_block_list,
        force_bf16_initializers,
    ).convert(_load(model))


def _load(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, str):
        return onnx.load(model)
    raise TypeError(f"model must be an onnx.ModelProto or a path, got {type(model).__name__}")


class _Converter:
    def __init__(self, target, cast_array, keep_io, no_infer, op_block, node_block, force_inits):
        self.target, self.cast_array = target, cast_array
        self.keep_io, self.no_infer, self.force_inits = keep_io, no_infer, force_inits
        for what, v in (("op_block_list", op_block), ("node_block_list", node_block)):
            if isinstance(v, str):
                raise TypeError(f"{what} must be a list of names, not the string {v!r}")
        self.op_block = set(DEFAULT_OP_BLOCK_LIST if op_block is None else op_block)
        self.node_block = set(node_block or [])
        self.dtype: dict[str, int] = {}  # tensor name -> its element type after conversion
        self.types: dict[str, int] = {}  # tensor name -> element type before conversion
        self._uid = 0
        self._allowed: dict[tuple[str, str], bool] = {}
        self.opsets: dict[str, int] = {}

    def convert(self, model: onnx.ModelProto) -> onnx.ModelProto:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        if not self.no_infer:
            try:
                out = onnx.shape_inference.infer_shapes(out, strict_mode=False)
            except Exception as exc:
                logger.warning("shape inference failed (%s); using the model's value_info", exc)
        self.opsets = {
            ("" if o.domain == "ai.onnx" else o.domain): o.version for o in out.opset_import
        }
        self._collect_types(out.graph)
        self._graph(out.graph, top=True)
        return out

    def _collect_types(self, g: onnx.GraphProto) -> None:
        for vi in [*g.input, *g.output, *g.value_info]:
            if vi.type.HasField("tensor_type"):
                self.types[vi.name] = vi.type.tensor_type.elem_type
        for t in g.initializer:
            self.types[t.name] = t.data_type
        for n in g.node:
            for a in n.attribute:
                for sub in _subgraphs(a):
                    self._collect_types(sub)

    def _blocked(self, n: onnx.NodeProto) -> bool:
        if n.op_type in self.op_block or n.name in self.node_block or n.domain == _ML_DOMAIN:
            return True
        return not self._schema_allows(n)

    def _schema_allows(self, n: onnx.NodeProto) -> bool:
        """Whether the op's schema at the model's opset accepts the target type for its float
        inputs (bfloat16 arrived later than float16 in many ops)."""
        key = (n.op_type, n.domain)
        if key not in self._allowed:
            want = "tensor(bfloat16)" if self.target == TensorProto.BFLOAT16 else "tensor(float16)"
            ok = True
            try:
                schema = onnx.defs.get_schema(
                    n.op_type, self.opsets.get(n.domain or "", 1), n.domain
                )
            except Exception:
                schema = None  # custom domains: trust the user's block lists
            if schema is not None:
                allowed = {
                    c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints
                }
                for formal in schema.inputs:
                    types = allowed.get(formal.type_str)
                    if types and "tensor(float)" in types and want not in types:
                        ok = False
            self._allowed[key] = ok
        return self._allowed[key]

    def _is_float(self, name: str) -> bool:
        return bool(name) and self.types.get(name) == TensorProto.FLOAT

    def _cast(self, name: str, to: int, new_nodes: list, cache: dict) -> str:
        key = (name, to)
        if key not in cache:
            suffix = {
                TensorProto.FLOAT: "fp32",
                TensorProto.FLOAT16: "fp16",
                TensorProto.BFLOAT16: "bf16",
            }[to]
            self._uid += 1
            out = f"{name}_cast_{suffix}_{self._uid}"
            new_nodes.append(helper.make_node("Cast", [name], [out], f"{out}_node", to=to))
            cache[key] = out
            self.dtype[out] = to
            self.types[out] = to
        return cache[key]

    def _graph(self, g: onnx.GraphProto, top: bool) -> None:
        low = self.target
        io_type = TensorProto.FLOAT if (top and self.keep_io) else low
        for vi in g.input:
            if self._is_float(vi.name):
                self.dtype[vi.name] = io_type
                vi.type.tensor_type.elem_type = io_type
        # initializers: low precision when a low-precision node reads them (or when forced)
        readers: dict[str, list[bool]] = {}
        for n in g.node:
            for i, name in enumerate(n.input):
                fixed = i in _ALWAYS_FLOAT_INPUTS.get(n.op_type, [])
                readers.setdefault(name, []).append(not self._blocked(n) and not fixed)
            for name in _outer_reads(n):
                readers.setdefault(name, []).append(True)
        inits = []
        for t in g.initializer:
            if t.data_type == TensorProto.FLOAT and (
                any(readers.get(t.name, [])) or self.force_inits
            ):
                arr = self.cast_array(numpy_helper.to_array(t))
                new = _from_array(arr, t.name, low)
                inits.append(new)
                self.dtype[t.name] = low
            else:
                inits.append(t)
                if t.data_type == TensorProto.FLOAT:
                    self.dtype[t.name] = TensorProto.FLOAT
        del g.initializer[:]
        g.initializer.extend(inits)

        new_nodes: list = []
        cache: dict = {}
        for n in list(g.node):
            blocked = self._blocked(n)
            want = TensorProto.FLOAT if blocked else low
            for i, name in enumerate(n.input):
                if not self._is_float(name):
                    continue
                need = TensorProto.FLOAT if i in _ALWAYS_FLOAT_INPUTS.get(n.op_type, []) else want
                have = self.dtype.get(name, TensorProto.FLOAT)
                if have != need:
                    n.input[i] = self._cast(name, need, new_nodes, cache)
            if not blocked:
                self._retype_attributes(n)
                for a in n.attribute:
                    for sub in _subgraphs(a):
                        self._graph(sub, top=False)
            for name in n.output:
                if self._is_float(name):
                    self.dtype[name] = want
            new_nodes.append(n)
        # graph outputs
        rename: dict[str, str] = {}
        tail: list = []
        for vi in g.output:
            if not self._is_float(vi.name):
                continue
            need = io_type
            have = self.dtype.get(vi.name, TensorProto.FLOAT)
            if have != need:
                self._uid += 1
                inner = f"{vi.name}_{self._uid}_before_cast"
                rename[vi.name] = inner
                self.dtype[inner] = have
                tail.append(
                    helper.make_node("Cast", [inner], [vi.name], f"{vi.name}_output_cast", to=need)
                )
                self.dtype[vi.name] = need
            vi.type.tensor_type.elem_type = need
        for n in new_nodes:
            for k, o in enumerate(n.output):
                if o in rename:
                    n.output[k] = rename[o]
            _rename_reads(n, rename)
        del g.node[:]
        g.node.extend(new_nodes + tail)
        for vi in g.value_info:
            if vi.type.HasField("tensor_type") and vi.name in self.dtype:
                vi.type.tensor_type.elem_type = self.dtype[vi.name]
        for inner in rename.values():
            vi = g.value_info.add()
            vi.name = inner
            vi.type.tensor_type.elem_type = self.dtype[inner]

    def _retype_attributes(self, n: onnx.NodeProto) -> None:
        low = self.target
        for a in n.attribute:
            if a.type == AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                name = a.t.name
                a.t.CopyFrom(_from_array(self.cast_array(numpy_helper.to_array(a.t)), name, low))
            elif (
                a.name in ("to", "dtype")
                and a.type == AttributeProto.INT
                and a.i == TensorProto.FLOAT
            ):
                if n.op_type in (
                    "Cast",
                    "CastLike",
                    "EyeLike",
                    "RandomNormal",
                    "RandomUniform",
                    "RandomNormalLike",
                    "Multinomial",
                    "Bernoulli",
                ):
                    a.i = low
            elif (
                a.type == AttributeProto.FLOAT
                and n.op_type == "Constant"
                and a.name == "value_float"
            ):
                value = a.f
                a.CopyFrom(
                    helper.make_attribute(
                        "value", _from_array(self.cast_array(np.array(value, np.float32)), "", low)
                    )
                )
        if n.op_type == "Constant":
            for o in n.output:
                if self.types.get(o) == TensorProto.FLOAT:
                    self.dtype[o] = low


def _from_array(arr: np.ndarray, name: str, elem: int) -> TensorProto:
    if elem == TensorProto.BFLOAT16:
        import ml_dtypes

        return numpy_helper.from_array(np.asarray(arr).astype(ml_dtypes.bfloat16), name)
    return numpy_helper.from_array(np.asarray(arr).astype(np.float16), name)


def _subgraphs(a: AttributeProto) -> list[onnx.GraphProto]:
    if a.type == AttributeProto.GRAPH:
        return [a.g]
    if a.type == AttributeProto.GRAPHS:
        return list(a.graphs)
    return []


def _outer_reads(n: onnx.NodeProto) -> set[str]:
    names: set[str] = set()
    for a in n.attribute:
        for g in _subgraphs(a):
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            local |= {o for m in g.node for o in m.output}
            for m in g.node:
                names |= {i for i in m.input if i and i not in local}
                names |= {i for i in _outer_reads(m) if i not in local}
    return names


def _rename_reads(n: onnx.NodeProto, rename: dict[str, str]) -> None:
    if not rename:
        return
    for k, i in enumerate(n.input):
        if i in rename:
            n.input[k] = rename[i]
    for a in n.attribute:
        for g in _subgraphs(a):
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            inner = {k: v for k, v in rename.items() if k not in local}
            for m in g.node:
                _rename_reads(m, inner)
            for vi in g.output:
                if vi.name in inner:
                    # a body output that is an outer tensor passed through
                    vi.name = inner[vi.name]
