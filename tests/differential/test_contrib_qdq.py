"""com.microsoft QuantizeLinear / DequantizeLinear (onnxruntime's contrib Q/DQ, written by its
quantizer with ``UseQDQContribOps``) on ort-core's CPU provider against onnxruntime: every type
onnxruntime's CPU registers, per tensor and per axis, float16, without a zero point; bad
parameters fail in both, naming the node and the input; and a model quantized with
``UseQDQContribOps`` runs and fuses as one with ONNX Q/DQ does.

onnxruntime's Python API neither feeds nor returns 4-bit tensors: 4-bit inputs are initializers
and a 4-bit output is cast to 8 bits in the model (on both sides).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core.errors import OrtError

from .harness import make_node_model, run_cpu

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for contrib ops")
OrtFail = ort.capi.onnxruntime_pybind11_state.Fail
OrtInvalidGraph = ort.capi.onnxruntime_pybind11_state.InvalidGraph

MS = "com.microsoft"
INT4, UINT4 = np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)
Q_TYPES = [np.int8, np.uint8, np.int16, np.uint16, INT4, UINT4]
DQ_TYPES = [*Q_TYPES, np.int32]
SHAPE = (2, 3, 4)
#: (axis attribute or None, whether the scale is per axis); None: the attribute is left out
GRANULARITY = [
    ("tensor", None),
    ("tensor-1elem", None),
    ("axis0", 0),
    ("axis1", 1),
    ("axis2", 2),
    ("axis-1", -1),
    ("axis-3", -3),
    ("default-axis", None),
]


def _bounds(dtype) -> tuple[int, int]:
    info = ml_dtypes.iinfo(dtype) if np.dtype(dtype) in (INT4, UINT4) else np.iinfo(dtype)
    return int(info.min), int(info.max)


def _is4(dtype) -> bool:
    return np.dtype(dtype) in (INT4, UINT4)


def _model(op, inputs, attrs=None, *, opset=21, name="qdq_node", consts=()):
    """A one-node com.microsoft model named ``name`` (the harness's, inputs x0, x1...): 4-bit
    inputs and those in ``consts`` initializers, a 4-bit output cast to int8/uint8."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, domain=MS)
    graph = model.graph
    graph.node[0].name = name
    for i, v in enumerate(inputs):
        if v is not None and (_is4(v.dtype) or i in consts):
            graph.initializer.append(numpy_helper.from_array(feeds.pop(f"x{i}"), f"x{i}"))
    kept = [vi for vi in graph.input if vi.name in feeds]
    del graph.input[:]
    graph.input.extend(kept)
    out_type = _out_type(op, inputs)
    if _is4(out_type):
        graph.node[0].output[0] = "q"
        to = TensorProto.INT8 if out_type == INT4 else TensorProto.UINT8
        graph.node.append(helper.make_node("Cast", ["q"], ["y0"], "cast", to=to))
    return model, feeds


def _out_type(op, inputs) -> np.dtype:
    if op == "QuantizeLinear":
        zp = inputs[2] if len(inputs) > 2 else None
        return np.dtype(np.uint8) if zp is None else zp.dtype
    return inputs[1].dtype


def _ort_session(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def check(op, inputs, attrs=None, *, opset=21, consts=()) -> np.ndarray:
    """ort-core's output, asserted equal to onnxruntime's: exactly for integers, to float32
    rounding for floats."""
    model, feeds = _model(op, inputs, attrs, opset=opset, consts=consts)
    (expected,) = _ort_session(model).run(None, feeds)
    (got,) = run_cpu(model, feeds)
    got = np.asarray(got)
    assert got.dtype == expected.dtype and got.shape == expected.shape, (got.dtype, got.shape)
    if expected.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected, err_msg=op)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0, err_msg=op)
    return got


def _params(rng, granularity, dtype, scale_dtype=np.float32, with_zp=True, spread=1.0):
    """(scale, zero point or None, attributes) for an input of SHAPE; scales put about half
    the quantized range under ``spread`` standard deviations, so that some values saturate."""
    label, axis = granularity
    lo, hi = _bounds(dtype)
    n = 1 if label.startswith("tensor") else SHAPE[1 if axis is None else axis]
    step = 3.0 * spread / ((hi - lo) / 4)
    scale = (rng.uniform(0.5, 1.5, n) * step).astype(scale_dtype)
    zp = rng.integers(lo // 4, hi // 4 + 1, n).astype(dtype) if with_zp else None
    if label == "tensor":
        scale = scale.reshape(())
        zp = None if zp is None else zp.reshape(())
    attrs = {"axis": axis} if axis is not None else {}
    return scale, zp, attrs


# -- QuantizeLinear --------------------------------------------------------------------------------
@pytest.mark.parametrize("granularity", GRANULARITY, ids=[g[0] for g in GRANULARITY])
@pytest.mark.parametrize("dtype", Q_TYPES, ids=lambda d: np.dtype(d).name)
def test_quantize(dtype, granularity):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    x.flat[:2] = 1e4, -1e4  # far outside every range
    scale, zp, attrs = _params(rng, granularity, dtype)
    y = check("QuantizeLinear", [x, scale, zp], attrs)
    lo, hi = _bounds(dtype)
    assert (y == lo).any() and (y == hi).any(), "no value saturated: the test misses clipping"


@pytest.mark.parametrize("granularity", GRANULARITY[:4], ids=[g[0] for g in GRANULARITY[:4]])
def test_quantize_without_zero_point_is_uint8(granularity):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    scale, _, attrs = _params(rng, granularity, np.uint8, with_zp=False)
    y = check("QuantizeLinear", [x, scale], attrs)
    assert y.dtype == np.uint8 and (y == 0).any()


@pytest.mark.parametrize("dtype", Q_TYPES, ids=lambda d: np.dtype(d).name)
def test_quantize_rounds_half_to_even(dtype):
    """x / scale exactly halfway between integers (a power-of-two scale): to the even one."""
    lo, hi = _bounds(dtype)
    k = np.arange(max(lo, -40), min(hi, 40), dtype=np.float32)
    x = ((k + 0.5) * 0.25).astype(np.float32)
    y = check("QuantizeLinear", [x, np.array(0.25, np.float32), np.array(0, dtype)])
    np.testing.assert_array_equal(y.astype(np.int64), np.clip(np.rint(k + 0.5), lo, hi))


@pytest.mark.parametrize("dtype", Q_TYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("granularity", [GRANULARITY[0], GRANULARITY[5]], ids=["tensor", "axis-1"])
def test_quantize_float16(dtype, granularity):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float16)
    scale, zp, attrs = _params(rng, granularity, dtype, scale_dtype=np.float16)
    check("QuantizeLinear", [x, scale, zp], attrs)


def test_quantize_at_an_old_opset():
    """The contrib op takes an axis whatever the model's ONNX opset (ONNX's has none before 13)."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    scale, zp, attrs = _params(rng, ("axis1", 1), np.int8)
    check("QuantizeLinear", [x, scale, zp], attrs, opset=11)


def test_quantize_constant_parameters():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    scale, zp, attrs = _params(rng, ("axis-1", -1), np.uint8)
    check("QuantizeLinear", [x, scale, zp], attrs, consts=(1, 2))


# -- DequantizeLinear ------------------------------------------------------------------------------
def _quantized(rng, dtype, shape=SHAPE):
    lo, hi = _bounds(dtype)
    return np.asarray(rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64)).astype(dtype)


@pytest.mark.parametrize("with_zp", [True, False], ids=["zp", "no-zp"])
@pytest.mark.parametrize("granularity", GRANULARITY, ids=[g[0] for g in GRANULARITY])
@pytest.mark.parametrize("dtype", DQ_TYPES, ids=lambda d: np.dtype(d).name)
def test_dequantize(dtype, granularity, with_zp):
    rng = np.random.default_rng(6)
    x = _quantized(rng, dtype)
    scale, zp, attrs = _params(rng, granularity, dtype, with_zp=with_zp)
    if with_zp and np.dtype(dtype) == np.int32:
        zp = _quantized(rng, dtype, zp.shape)  # any int32: x - zp wraps around, as onnxruntime's
    check("DequantizeLinear", [x, scale, zp], attrs)


@pytest.mark.parametrize("dtype", DQ_TYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("granularity", [GRANULARITY[0], GRANULARITY[6]], ids=["tensor", "axis-3"])
def test_dequantize_float16(dtype, granularity):
    rng = np.random.default_rng(7)
    x = _quantized(rng, dtype)
    scale, zp, attrs = _params(rng, granularity, dtype, scale_dtype=np.float16)
    y = check("DequantizeLinear", [x, scale, zp], attrs)
    assert y.dtype == np.float16


def test_quantize_dequantize_round_trip():
    """A contrib Q feeding a contrib DQ (the untyped value between them, as a quantizer writes)."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    scale = rng.uniform(0.02, 0.05, SHAPE[1]).astype(np.float32)
    zp = rng.integers(-20, 20, SHAPE[1]).astype(np.int16)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], "q", domain=MS, axis=1),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], "dq", domain=MS, axis=1),
    ]
    inits = [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")]
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)]
    graph = helper.make_graph(nodes, "g", vi, [helper.make_value_info("y", onnx.TypeProto())])
    graph.initializer.extend(inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    (expected,) = _ort_session(model).run(None, {"x": x})
    (got,) = run_cpu(model, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    assert np.abs(got - x).max() <= scale.max() / 2 * 1.0001


# -- errors ----------------------------------------------------------------------------------------
def _f32(*shape):
    return np.full(shape, 0.5, np.float32)


def _i8(*shape):
    return np.zeros(shape, np.int8)


#: (id, op, inputs, attributes, the input the message names)
BAD = [
    ("axis-out-of-range", "QuantizeLinear", [_f32(*SHAPE), _f32(3), _i8(3)], {"axis": 3}, "axis 3"),
    ("negative-axis-out-of-range", "DequantizeLinear", [_i8(*SHAPE), _f32(2), _i8(2)],
     {"axis": -4}, "axis -4"),
    ("scale-size", "QuantizeLinear", [_f32(*SHAPE), _f32(4), _i8(4)], {"axis": 1}, "y_scale"),
    ("scale-rank", "DequantizeLinear", [_i8(*SHAPE), _f32(2, 3), _i8(2, 3)], {"axis": 0},
     "x_scale"),
    ("scale-1x1", "QuantizeLinear", [_f32(*SHAPE), _f32(1, 1)], {}, "y_scale"),
    ("zero-point-size", "DequantizeLinear", [_i8(*SHAPE), _f32(4), _i8(3)], {"axis": 2},
     "x_zero_point"),
    ("zero-point-per-tensor", "QuantizeLinear", [_f32(*SHAPE), _f32(), _i8(3)], {},
     "y_zero_point"),
    ("zero-point-scalar-per-axis", "QuantizeLinear", [_f32(*SHAPE), _f32(3), _i8()], {"axis": 1},
     "y_zero_point"),
    ("scalar-input-per-axis", "DequantizeLinear", [_i8(), _f32(3), _i8(3)], {}, "x_scale"),
]  # fmt: skip


@pytest.mark.parametrize("domain", [MS, ""], ids=["com.microsoft", "onnx"])
@pytest.mark.parametrize("op,inputs,attrs,names", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_parameters_fail_as_in_onnxruntime(domain, op, inputs, attrs, names):
    """onnxruntime fails these when it runs the node (FAIL); so does ort-core, with a
    RuntimeError naming the node, the op and the input (the ONNX kernels share the check)."""
    model, feeds = _model(op, inputs, attrs)
    model.graph.node[0].domain = domain
    with pytest.raises(OrtFail):
        _ort_session(model).run(None, feeds)
    with pytest.raises(OrtError) as ours:
        run_cpu(model, feeds)
    err = ours.value
    assert isinstance(err, RuntimeError) and not isinstance(err, ValueError)
    label = f"{domain}.{op}" if domain else f"({op})"
    for part in ("qdq_node", label, names):
        assert part in str(err), f"{part!r} not in {err}"


@pytest.mark.parametrize(
    "op,inputs,attrs,reason",
    [
        ("QuantizeLinear", [_f32(*SHAPE), np.ones((), np.float16)], {}, "same type"),
        ("DequantizeLinear", [_i8(*SHAPE), _f32(), np.zeros((), np.uint8)], {}, "same type"),
        ("QuantizeLinear", [np.zeros(SHAPE), np.ones(())], {}, "float64"),
        ("QuantizeLinear", [_f32(*SHAPE), _f32()], {"block_size": 2}, "block_size"),
        ("DequantizeLinear", [_i8(*SHAPE), _f32()], {"output_dtype": 10}, "output_dtype"),
    ],
    ids=["q-types", "dq-types", "float64", "block_size", "output_dtype"],
)
def test_invalid_nodes_fail_at_load(op, inputs, attrs, reason):
    """Types outside the contrib schema and attributes it does not have: onnxruntime rejects
    the model when the session is created; so does ort-core, saying why."""
    model, _ = _model(op, inputs, attrs)
    with pytest.raises((OrtFail, OrtInvalidGraph)):
        _ort_session(model)
    with pytest.raises(OrtError, match=reason):
        run_cpu(model, {})


# -- a model quantized with UseQDQContribOps ------------------------------------------------------
def _conv_matmul(rng, opset=17) -> onnx.ModelProto:
    """x[N,3,8,8] -> Conv 3x3 (6 channels, bias) -> MatMul [8, 5] -> y[N,6,8,5]."""
    inits = [
        numpy_helper.from_array((rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32), "w"),
        numpy_helper.from_array((rng.standard_normal(6) * 0.1).astype(np.float32), "b"),
        numpy_helper.from_array((rng.standard_normal((8, 5)) * 0.3).astype(np.float32), "m"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
        helper.make_node("MatMul", ["c", "m"], ["y"], "matmul"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 8, 5])
    graph = helper.make_graph(nodes, "conv_matmul", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


class _Reader:
    def __init__(self, batches):
        self.it = iter(batches)

    def get_next(self):
        return next(self.it, None)


def _quantize(tmp_path, contrib, **kw):
    """The Conv+MatMul model quantized by ort-core's quantize_static (QDQ), the path and a test
    batch. reduce_range: 7-bit weights, which onnxruntime's u8s8/s8s8 kernels multiply without
    saturating their 16-bit pair sums on CPUs without VNNI (its fused path would be off by tens
    of steps there, and ort-core's exact)."""
    from ort_core.quantization import QuantType, quantize_static

    rng = np.random.default_rng(11)
    src, dst = tmp_path / "float.onnx", tmp_path / f"q_{int(contrib)}.onnx"
    onnx.save(_conv_matmul(rng), src)
    batches = [{"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    for key in ("activation_type", "weight_type"):
        if key in kw:
            kw[key] = getattr(QuantType, kw[key])
    extra = {"UseQDQContribOps": True} if contrib else {}
    quantize_static(src, dst, _Reader(batches), reduce_range=True, extra_options=extra, **kw)
    test = {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    return onnx.load(dst), dst, test


def _output_step(model) -> float:
    """The scale of the DequantizeLinear that makes the graph output (one quantization step)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    (dq,) = [n for n in model.graph.node if n.output[0] == model.graph.output[0].name]
    assert dq.op_type == "DequantizeLinear"
    return float(inits[dq.input[1]])


def _ort_core(path, level, optimized=None):
    import ort_core

    so = ort_core.SessionOptions()
    so.graph_optimization_level = getattr(ort_core.GraphOptimizationLevel, level)
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort_core.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


LEVELS = ["ORT_DISABLE_ALL", "ORT_ENABLE_ALL"]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"per_channel": True},
        {"activation_type": "QUInt8", "weight_type": "QInt8"},
        {"activation_type": "QUInt16", "weight_type": "QInt16"},
        {"activation_type": "QUInt8", "weight_type": "QInt4", "per_channel": True},
    ],
    ids=["s8s8", "s8s8-per-channel", "u8s8", "u16s16", "u8s4-per-channel"],
)
def test_use_qdq_contrib_ops_model(tmp_path, kw, level):
    """ort-core runs the model as onnxruntime does, within one step of the output's quantization,
    at each optimization level (onnxruntime fuses its QDQ groups at ORT_ENABLE_ALL)."""
    model, path, feeds = _quantize(tmp_path, contrib=True, **kw)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(n.domain == MS for n in qdq)
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    (expected,) = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(
        None, feeds
    )
    (got,) = _ort_core(path, level).run(None, feeds)
    step = _output_step(model)
    diff = np.abs(np.asarray(got, np.float64) - expected)
    assert diff.max() <= step * 1.001, f"off by {diff.max() / step:.2f} steps"


def _op_types(path) -> list[tuple[str, str]]:
    return sorted((n.domain, n.op_type) for n in onnx.load(path).graph.node)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
def test_contrib_qdq_groups_fuse_like_onnx_ones(tmp_path, per_channel):
    """The QDQ fusions take com.microsoft Q/DQ as ONNX ones (onnxruntime's selectors accept
    both): the same fused ops, bit for bit the same outputs; DequantizeLinear of constants
    nothing fused is folded in both."""
    outs, kinds = [], []
    for contrib in (False, True):
        model, path, feeds = _quantize(tmp_path, contrib, per_channel=per_channel)
        optimized = tmp_path / f"opt_{int(contrib)}.onnx"
        (y,) = _ort_core(path, "ORT_ENABLE_EXTENDED", optimized).run(None, feeds)
        outs.append(np.asarray(y))
        ops = _op_types(optimized)
        kinds.append(sorted(op for _, op in ops))
        opt = onnx.load(optimized)
        consts = {t.name for t in opt.graph.initializer}
        assert not [n.name for n in opt.graph.node
                    if n.op_type == "DequantizeLinear" and n.input[0] in consts]  # fmt: skip
    assert "QLinearConv" in kinds[1] and "Conv" not in kinds[1]
    if not per_channel:  # the MatMul fusion is per tensor only
        assert "QLinearMatMul" in kinds[1] and "MatMul" not in kinds[1]
    assert kinds[0] == kinds[1]
    np.testing.assert_array_equal(outs[1], outs[0])
