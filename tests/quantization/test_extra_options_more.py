"""The extra_options ort-core first accepted at their default value only, now implemented: each
quantized by onnxruntime's and by ort-core's quantizer with the same calibration data and
options, and the two graphs compared tensor by tensor (which Q/DQ nodes read what, their
scales, zero points, types, axes and domains); the model passes onnx.checker and runs in
onnxruntime; and the option changes the model (an option accepted and ignored is a bug)."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core import quantization as oq
from ort_core.quantization.quant_utils import restricted_asymmetric_scale_zp

from . import models
from .conftest import Reader, ort_run

rq = pytest.importorskip("onnxruntime.quantization")
rq_utils = pytest.importorskip("onnxruntime.quantization.quant_utils")

QDQ = ("QuantizeLinear", "DequantizeLinear")
MS = "com.microsoft"


# -- quantizing with both, and comparing ----------------------------------------------------


def _quantize(mod, src, dst, feeds, reader=None, **kw):
    """``mod.quantize_static`` (ort-core's or onnxruntime's) with the QuantTypes and the
    QuantFormat given by name; the model written."""
    kw = copy.deepcopy(kw)
    for key in ("activation_type", "weight_type"):
        if key in kw:
            kw[key] = getattr(mod.QuantType, kw[key])
    kw["quant_format"] = getattr(mod.QuantFormat, kw.pop("quant_format", "QDQ"))
    mod.quantize_static(str(src), str(dst), reader or Reader(feeds), **kw)
    return onnx.load(dst)


def _both(tmp_path, model, feeds, tag="m", **kw):
    """(ort-core's model, onnxruntime's model, the float model's path, ort-core's path)."""
    src = tmp_path / f"{tag}.onnx"
    onnx.save(model, src)
    ours = _quantize(oq, src, tmp_path / f"{tag}_ours.onnx", feeds, **kw)
    theirs = _quantize(rq, src, tmp_path / f"{tag}_ort.onnx", feeds, **kw)
    return ours, theirs, src, tmp_path / f"{tag}_ours.onnx"


def _attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None


def canon(model: onnx.ModelProto) -> dict:
    """The quantized graph with names abstracted away: every original node (by its name, less
    onnxruntime's ``_quant`` suffix on QOperator nodes) with what each input is (a DQ of a Q of
    what, with their domain, axis, scale and typed zero point; an initializer's values; which
    node's output), the graph outputs likewise, which readers share each DQ, the Q and DQ
    counts, and the opsets."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}

    def node_name(n):
        return n.name[: -len("_quant")] if n.name.endswith("_quant") else n.name

    def desc(t):
        if t in inits:
            return ("init", str(inits[t].dtype), inits[t])
        p = prod.get(t)
        if p is None:
            return ("input", t)
        if p.op_type in QDQ:
            zp = inits[p.input[2]]
            return (p.op_type, p.domain, _attr(p, "axis"), inits[p.input[1]], str(zp.dtype), zp,
                    desc(p.input[0]))  # fmt: skip
        return ("out", node_name(p), list(p.output).index(t))

    nodes, readers = {}, {}
    for n in g.node:
        if n.op_type in QDQ:
            continue
        nodes[node_name(n)] = (n.op_type, n.domain, [desc(i) if i else None for i in n.input])
        for k, i in enumerate(n.input):
            if i in prod and prod[i].op_type == "DequantizeLinear":
                readers.setdefault(id(prod[i]), []).append((node_name(n), k))
    return {
        "nodes": nodes,
        "outputs": [desc(o.name) for o in g.output],
        "sharing": sorted(tuple(sorted(r)) for r in readers.values()),
        "counts": [sum(n.op_type == op for n in g.node) for op in QDQ],
        "opsets": sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import),
    }


def assert_same(a, b, path="model"):
    """Equal structures; arrays of the same type and size, integers within one step (a
    rounding tie), floats within 2e-6 relative."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.size == b.size, (path, a.dtype, b.dtype, a.shape, b.shape)
        if a.dtype.kind in "iu":
            diff = np.abs(a.astype(np.int64) - b.astype(np.int64).reshape(a.shape))
            assert diff.max(initial=0) <= 1, path
        else:
            np.testing.assert_allclose(a.ravel(), b.ravel(), rtol=2e-6, atol=0, err_msg=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (path, sorted(set(a) ^ set(b)))
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), (path, a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{k}]")
    else:
        assert a == b, (path, a, b)


def _differs(a, b) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return True
    return False


def check_model(ours, theirs, path, feeds, default=None):
    """ort-core's model equals onnxruntime's, passes onnx.checker, runs in onnxruntime, and
    differs from ``default`` (the model written without the option)."""
    assert_same(canon(ours), canon(theirs))
    onnx.checker.check_model(ours)
    out = ort_run(path, feeds)
    assert np.all(np.isfinite(out))
    if default is not None:
        assert _differs(canon(ours), canon(default)), "the option did not change the model"
    return out


def _init(model, name):
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


def _cnn_feeds(n=2):
    return models.batches((2, 3, 16, 16), n, seed=1)


def _tr_feeds(n=2):
    return models.batches((2, 8, 32), n, seed=1)


# -- DedicatedQDQPair -----------------------------------------------------------------------


def _fanout() -> onnx.ModelProto:
    """a -> MatMul -> h, read by a MatMul, a Sigmoid (both quantized) and a Tanh (float); h is
    also a graph output."""
    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"w{i}")
         for i in (1, 2)]  # fmt: skip
    mk = helper.make_node
    g = helper.make_graph(
        [mk("MatMul", ["a", "w1"], ["h"], "mm1"), mk("MatMul", ["h", "w2"], ["y"], "mm2"),
         mk("Sigmoid", ["h"], ["s"], "sig"), mk("Tanh", ["h"], ["t"], "tanh")],
        "fanout",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["B", 8])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", 8]) for n in "hyst"],
        w,
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("kind", ["cnn", "transformer", "fanout"])
def test_dedicated_qdq_pair(tmp_path, kind):
    model, feeds = {
        "cnn": (models.cnn(), _cnn_feeds()),
        "transformer": (models.transformer(), _tr_feeds()),
        "fanout": (_fanout(), models.batches((4, 8), 2, seed=1, name="a")),
    }[kind]
    opt = {"extra_options": {"DedicatedQDQPair": True}}
    ours, theirs, _, path = _both(tmp_path, model, feeds, **opt)
    default = _quantize(oq, tmp_path / "m.onnx", tmp_path / "d.onnx", feeds)
    check_model(ours, theirs, path, feeds, default)
    # every DequantizeLinear has one reader
    reads = [i for n in ours.graph.node for i in n.input]
    dq_outs = [n.output[0] for n in ours.graph.node if n.op_type == "DequantizeLinear"]
    assert all(reads.count(o) <= 1 for o in dq_outs)
    assert canon(ours)["counts"][0] > canon(default)["counts"][0]
    shared, readers = {"cnn": ("p1", 2), "transformer": ("ln1", 3), "fanout": ("h", 2)}[kind]
    quantized = [n.input[0] for n in ours.graph.node if n.op_type == "QuantizeLinear"]
    assert quantized.count(shared) == readers
    if kind == "fanout":  # the float reader and the graph output keep the float tensor
        assert next(n for n in ours.graph.node if n.name == "tanh").input[0] == "h"
        assert next(n for n in ours.graph.node if n.name == "mm1").output[0] == "h"


def test_dedicated_qdq_pair_node_reading_a_tensor_twice(tmp_path):
    """Concat(sg, sg): onnxruntime counts the Concat twice and writes a second pair nothing
    reads; ort-core gives each reading node one pair. Less that unread pair, the same model."""
    feeds = models.batches((2, 3, 8, 8), 2, seed=1)
    opt = {"extra_options": {"DedicatedQDQPair": True}}
    ours, theirs, _, path = _both(tmp_path, models.op_zoo(), feeds, **opt)
    reads = {i for n in theirs.graph.node for i in n.input} | {o.name for o in theirs.graph.output}
    unread = [
        n for n in theirs.graph.node if n.op_type == "DequantizeLinear" and n.output[0] not in reads
    ]
    assert [n.input[0] for n in unread] == ["sg_QuantizeLinear_Output_2"]
    q_unread = [n for n in theirs.graph.node if n.output[0] == unread[0].input[0]]
    for n in unread + q_unread:
        theirs.graph.node.remove(n)
    check_model(ours, theirs, path, feeds)
    concat = next(n for n in ours.graph.node if n.name == "concat")
    assert concat.input[0] == concat.input[1] == "sg_DequantizeLinear_Output"


def test_dedicated_qdq_pair_errors(tmp_path):
    src = tmp_path / "tr.onnx"
    onnx.save(models.transformer(), src)
    for mod in (oq, rq):  # onnxruntime refuses the combination too
        convert = {"ln1": [{"quant_type": mod.QuantType.QUInt8,
                            "convert": {"quant_type": mod.QuantType.QUInt16}}]}  # fmt: skip
        with pytest.raises(ValueError, match="DedicatedQDQPair|dedicated_qdq_pair"):
            mod.quantize_static(
                src, tmp_path / "q.onnx", Reader(_tr_feeds()), activation_type=mod.QuantType.QUInt8,
                extra_options={"DedicatedQDQPair": True, "TensorQuantOverrides": convert},
            )  # fmt: skip


# -- QDQOpTypePerChannelSupportToAxis -------------------------------------------------------


def _matmul3d() -> onnx.ModelProto:
    """x[2,5,4] @ w[2,4,6]: a rank-3 weight (onnxruntime's default axis 1 applies to it)."""
    w = np.random.default_rng(0).standard_normal((2, 4, 6)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], "mm")],
        "mm3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, 6])],
        [numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _axis_of(model, weight):
    dq = next(n for n in model.graph.node if n.input[0] == f"{weight}_quantized")
    return _attr(dq, "axis"), _init(model, dq.input[1]).size


@pytest.mark.parametrize(
    "kind, axes, weight, expect",
    [
        ("mlp", {"MatMul": 0}, "w1", (0, 80)),
        ("mlp", {"MatMul": -2}, "w2", (0, 24)),
        ("transformer", {"LayerNormalization": 0, "MatMul": 0}, "ln2.g", (0, 32)),
        ("matmul3d", {"MatMul": 2}, "w", (2, 6)),
    ],
)
def test_per_channel_axis_by_op_type(tmp_path, kind, axes, weight, expect):
    model, feeds = {
        "mlp": (models.mlp(), models.batches((4, 80), 2, seed=1, name="a")),
        "transformer": (models.transformer(), _tr_feeds()),
        "matmul3d": (_matmul3d(), models.batches((2, 5, 4), 2, seed=1)),
    }[kind]
    opt = {"per_channel": True, "extra_options": {"QDQOpTypePerChannelSupportToAxis": axes}}
    ours, theirs, _, path = _both(tmp_path, model, feeds, **opt)
    default, theirs_default, _, _ = _both(tmp_path, model, feeds, tag="d", per_channel=True)
    assert_same(canon(default), canon(theirs_default))  # the default axes agree too
    check_model(ours, theirs, path, feeds, default)
    assert _axis_of(ours, weight) == expect
    assert _axis_of(default, weight) != expect


def test_per_channel_axis_errors(tmp_path):
    src = tmp_path / "mlp.onnx"
    onnx.save(models.mlp(), src)
    feeds = models.batches((4, 80), 1, seed=1, name="a")
    for kw, match in [
        ({"per_channel": True, "axes": {"Conv": 1}}, r"\['Conv'\].*applies to .*MatMul"),
        ({"per_channel": False, "axes": {"MatMul": 0}}, "per_channel=True only"),
        ({"per_channel": True, "axes": {"MatMul": "0"}}, "dict of op type -> integer axis"),
        ({"per_channel": True, "axes": [("MatMul", 0)]}, "dict of op type -> integer axis"),
    ]:
        extra = {"QDQOpTypePerChannelSupportToAxis": kw["axes"]}
        with pytest.raises(ValueError, match=match):
            _quantize(oq, src, tmp_path / "q.onnx", feeds, per_channel=kw["per_channel"],
                      extra_options=extra)  # fmt: skip


# -- UseQDQContribOps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "opset, kw",
    [
        (17, {}),
        (11, {"per_channel": True}),  # the contrib ops take an axis at any opset
        (17, {"activation_type": "QUInt8", "weight_type": "QInt4"}),  # no move to opset 21
        (17, {"activation_type": "QUInt16", "weight_type": "QInt8"}),  # opset 21, as onnxruntime
    ],
    ids=["int8", "per-channel-opset11", "int4-weights", "uint16-activations"],
)
def test_use_qdq_contrib_ops(tmp_path, opset, kw):
    model, feeds = models.cnn(opset=opset), _cnn_feeds()
    ours, theirs, _, path = _both(tmp_path, model, feeds, extra_options={"UseQDQContribOps": True},
                                  **kw)  # fmt: skip
    default = _quantize(oq, tmp_path / "m.onnx", tmp_path / "d.onnx", feeds, **kw)
    check_model(ours, theirs, path, feeds, default)
    qdq = [n for n in ours.graph.node if n.op_type in QDQ]
    assert qdq and all(n.domain == MS for n in qdq)
    assert any(n.domain == "" for n in default.graph.node if n.op_type in QDQ)
    opsets = dict(canon(ours)["opsets"])
    assert opsets[MS] == 1
    assert opsets["ai.onnx"] == (21 if kw.get("activation_type") == "QUInt16" else opset)


# -- ActivationRestrictedAsymmetric ---------------------------------------------------------


def _activation_zero_points(model, float_model):
    """The zero points of the calibrated tensors (named after a tensor that is not one of the
    float model's initializers: constant operands are quantized like weights)."""
    consts = {t.name for t in float_model.graph.initializer}
    return [
        int(numpy_helper.to_array(t))
        for t in model.graph.initializer
        if t.name.endswith("_zero_point") and t.name[: -len("_zero_point")] not in consts
    ]


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("kind", ["cnn", "transformer"])
def test_activation_restricted_asymmetric(tmp_path, fmt, kind):
    model, feeds = {
        "cnn": (models.cnn(), _cnn_feeds()),
        "transformer": (models.transformer(), _tr_feeds()),
    }[kind]
    kw = {"quant_format": fmt, "activation_type": "QUInt8"}
    opt = {"extra_options": {"ActivationRestrictedAsymmetric": True}}
    ours, theirs, _, path = _both(tmp_path, model, feeds, **kw, **opt)
    default = _quantize(oq, tmp_path / "m.onnx", tmp_path / "d.onnx", feeds, **kw)
    check_model(ours, theirs, path, feeds, default)
    zps = _activation_zero_points(ours, model)
    assert len(zps) > 5 and set(zps) <= {0, 128}, set(zps)
    assert not set(_activation_zero_points(default, model)) <= {0, 128}


@pytest.mark.parametrize("reduce", [False, True])
@pytest.mark.parametrize("mrr", [None, 0.0, 0.5, 4.0])
def test_restricted_asymmetric_params_equal_onnxruntime(reduce, mrr):
    qmin, qmax = oq.quant_utils.get_qmin_qmax_for_qType(oq.QuantType.QUInt8, reduce)
    rng = np.random.default_rng(0)
    for lo, hi in [(0.0, 0.0), (0.0, 3.0), (-1.0, 0.0), (-2.0, 0.5), (1.0, 2.0), (-3.0, -1.0),
                   *rng.normal(size=(20, 2)) * 3]:  # fmt: skip
        lo, hi = np.float32(min(lo, hi)), np.float32(max(lo, hi))
        zp, scale = restricted_asymmetric_scale_zp(lo, hi, qmin, qmax, mrr)
        rzp, rscale = rq_utils.snap_zero_point_to_uint8(lo, hi, qmin, qmax, min_real_range=mrr)
        assert int(zp) == int(rzp) and np.float32(scale) == np.float32(rscale), (lo, hi)
        assert int(zp) in (qmin, (qmin + qmax + 1) // 2)
        # both ends of the range are representable around the zero point
        assert min(lo, 0) >= (qmin - int(zp)) * scale * (1 + 1e-6)
        assert max(hi, 0) <= (qmax - int(zp)) * scale * (1 + 1e-6)


def test_activation_restricted_asymmetric_errors(tmp_path):
    src = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), src)
    extra = {"ActivationRestrictedAsymmetric": True}
    with pytest.raises(ValueError, match="QUInt8 activations only"):
        _quantize(oq, src, tmp_path / "q.onnx", _cnn_feeds(1), extra_options=extra)
    with pytest.raises(ValueError, match="quantize_dynamic"):
        oq.quantize_dynamic(src, tmp_path / "q.onnx", extra_options=extra)


# -- QDQDisableWeightAdjustForInt32Bias -----------------------------------------------------


def _tiny_conv() -> onnx.ModelProto:
    """x (values ~1e-3) -> Conv with weights ~1e-4 and a bias of 1: input scale x weight scale
    is too small for the bias to fit in int32 (except the third channel's, 1e-3)."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((3, 2, 1, 1)) * 1e-4).astype(np.float32)
    b = np.array([1.0, -0.5, 1e-3], np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], "conv")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_scale_widened_for_int32_bias(tmp_path, per_channel):
    model = _tiny_conv()
    feeds = [{"x": f["x"] * np.float32(1e-3)} for f in models.batches((1, 2, 4, 4), 2, seed=1)]
    off = {"extra_options": {"QDQDisableWeightAdjustForInt32Bias": True}}
    widened, theirs, _, path_w = _both(tmp_path, model, feeds, per_channel=per_channel)
    kept, theirs_kept, _, path_k = _both(tmp_path, model, feeds, "k", per_channel=per_channel,
                                         **off)  # fmt: skip
    check_model(widened, theirs, path_w, feeds)  # the default now matches onnxruntime's
    check_model(kept, theirs_kept, path_k, feeds, default=widened)
    w_scale = _init(widened, "w_scale")
    assert np.all(w_scale >= _init(kept, "w_scale")) and np.any(w_scale > _init(kept, "w_scale"))
    if per_channel:  # the third channel's bias fits: its scale is left alone
        assert w_scale[2] == _init(kept, "w_scale")[2]

    def bias(m):
        dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and "b_" in n.input[0])
        return _init(m, dq.input[0]).astype(np.float64) * _init(m, dq.input[1])

    # widened: the bias survives quantization; kept: it saturates at the int32 limit
    np.testing.assert_allclose(bias(widened), [1.0, -0.5, 1e-3], rtol=1e-6, atol=1e-9)
    assert abs(bias(kept)[0]) < 0.9
    ref = ort_run(tmp_path / "m.onnx", feeds)
    assert (
        np.abs(ort_run(path_w, feeds) - ref).max()
        < 0.2 * np.abs(ort_run(path_k, feeds) - ref).max()
    )


# -- CalibStridedMinMax ---------------------------------------------------------------------


class RangeReader:
    """A reader that holds only the batches of its current range (``set_range``), as a reader
    for strided calibration would, and records how it is driven."""

    def __init__(self, n: int, shape=(4, 80), name="a"):
        self.n, self.shape, self.name = n, shape, name
        self.ranges, self.held = [], []
        self.set_range(0, n)
        self.ranges.clear()
        self.held.clear()

    def __len__(self):
        return self.n

    def set_range(self, start_index: int, end_index: int):
        self.ranges.append((start_index, end_index))
        batches = models.batches(self.shape, self.n, seed=1, name=self.name)
        self.batches = iter(batches[start_index:end_index])
        self.held.append(end_index - start_index)

    def get_next(self):
        return next(self.batches, None)


@pytest.mark.parametrize("moving_average", [False, True])
def test_calib_strided_min_max(tmp_path, moving_average):
    src = tmp_path / "mlp.onnx"
    onnx.save(models.mlp(), src)
    extra = {"CalibMovingAverage": moving_average, "CalibMovingAverageConstant": 0.3}
    strided = {**extra, "CalibStridedMinMax": 2}
    readers = {who: RangeReader(6) for who in ("ours", "ort")}
    ours = _quantize(oq, src, tmp_path / "s.onnx", None, readers["ours"], extra_options=strided)
    theirs = _quantize(rq, src, tmp_path / "t.onnx", None, readers["ort"], extra_options=strided)
    feeds = models.batches((4, 80), 6, seed=1, name="a")
    whole = _quantize(oq, src, tmp_path / "w.onnx", feeds, extra_options=extra)
    assert readers["ours"].ranges == readers["ort"].ranges == [(0, 2), (2, 4), (4, 6)]
    assert max(readers["ours"].held) == 2
    if moving_average:  # a mean per stride, merged across strides: other ranges
        check_model(ours, theirs, tmp_path / "s.onnx", feeds, default=whole)
    else:  # the same ranges as one pass
        check_model(ours, theirs, tmp_path / "s.onnx", feeds)
        assert_same(canon(ours), canon(whole))
    assert_same(canon(whole), canon(_quantize(rq, src, tmp_path / "u.onnx", feeds,
                                              extra_options=extra)))  # fmt: skip


def test_calib_strided_min_max_errors(tmp_path):
    src = tmp_path / "mlp.onnx"
    onnx.save(models.mlp(), src)
    dst = tmp_path / "q.onnx"
    with pytest.raises(ValueError, match="6 batches are not a whole number of strides"):
        oq.quantize_static(src, dst, RangeReader(6), extra_options={"CalibStridedMinMax": 4})
    with pytest.raises(ValueError, match="needs __len__.*lacks __len__ and set_range"):
        oq.quantize_static(src, dst, Reader([]), extra_options={"CalibStridedMinMax": 2})
    for bad in (0, True, 1.5):
        with pytest.raises(
            ValueError, match=r"\['CalibStridedMinMax'\] must be a positive integer"
        ):
            oq.quantize_static(src, dst, RangeReader(2), extra_options={"CalibStridedMinMax": bad})
    with pytest.raises(ValueError, match="quantize_dynamic does not do"):
        oq.quantize_dynamic(src, dst, extra_options={"CalibStridedMinMax": 2})


# -- extra.Sigmoid.nnapi --------------------------------------------------------------------


def _conv_sigmoid() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
             for n, s in (("w1", (4, 3, 3, 3)), ("w2", (2, 4, 1, 1)))]  # fmt: skip
    mk = helper.make_node
    g = helper.make_graph(
        [mk("Conv", ["x", "w1"], ["c"], "conv1", pads=[1, 1, 1, 1]),
         mk("Sigmoid", ["c"], ["s"], "sig"), mk("Conv", ["s", "w2"], ["y"], "conv2")],
        "conv_sigmoid",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])],
        inits,
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("activation_type", ["QUInt8", "QInt8"])
def test_sigmoid_nnapi(tmp_path, activation_type):
    feeds = models.batches((1, 3, 6, 6), 2, seed=1)
    kw = {"quant_format": "QOperator", "activation_type": activation_type}
    opt = {"extra_options": {"extra.Sigmoid.nnapi": True}}
    ours, theirs, _, path = _both(tmp_path, _conv_sigmoid(), feeds, **kw, **opt)
    default = _quantize(oq, tmp_path / "m.onnx", tmp_path / "d.onnx", feeds, **kw)
    check_model(ours, theirs, path, feeds, default)
    sig = next(n for n in ours.graph.node if n.op_type == "QLinearSigmoid")
    assert _init(ours, sig.input[3]) == np.float32(1 / 256)
    zp = _init(ours, sig.input[4])
    assert zp == 0 and zp.dtype == (np.uint8 if activation_type == "QUInt8" else np.int8)
    with pytest.raises(ValueError, match="'extra.Sigmoid.nnapi'.*QOperator format only"):
        _quantize(oq, tmp_path / "m.onnx", tmp_path / "q.onnx", feeds, **opt)


# -- where the options apply --------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("DedicatedQDQPair", True),
        ("QDQOpTypePerChannelSupportToAxis", {"MatMul": 0}),
        ("UseQDQContribOps", True),
        ("QDQDisableWeightAdjustForInt32Bias", True),
    ],
)
def test_qdq_only_options_refused_where_onnxruntime_ignores_them(tmp_path, key, value):
    src = tmp_path / "mlp.onnx"
    onnx.save(models.mlp(), src)
    feeds = models.batches((4, 80), 1, seed=1, name="a")
    extra = {key: value}
    with pytest.raises(ValueError, match=rf"\['{key}'\].*QDQ format only.*QOperator format"):
        _quantize(oq, src, tmp_path / "q.onnx", feeds, quant_format="QOperator",
                  per_channel=True, extra_options=extra)  # fmt: skip
    with pytest.raises(ValueError, match=rf"\['{key}'\].*QDQ format only.*quantize_dynamic"):
        oq.quantize_dynamic(src, tmp_path / "q.onnx", per_channel=True, extra_options=extra)


@pytest.mark.parametrize(
    "key",
    [
        "ActivationRestrictedAsymmetric",
        "DedicatedQDQPair",
        "QDQDisableWeightAdjustForInt32Bias",
        "UseQDQContribOps",
        "extra.Sigmoid.nnapi",
    ],
)
def test_flags_must_be_bool(tmp_path, key):
    src = tmp_path / "mlp.onnx"
    onnx.save(models.mlp(), src)
    with pytest.raises(ValueError, match=rf"\['{key}'\] must be True or False, got 'yes'"):
        oq.quantize_dynamic(src, tmp_path / "q.onnx", extra_options={key: "yes"})


# -- DisableQuantizeBias: not an onnxruntime option -----------------------------------------


def test_disable_quantize_bias_is_not_read_by_onnxruntime(tmp_path):
    """onnxruntime's quantizer ignores the key (its runner script's flag sets QuantizeBias), so
    ort-core keeps it default-only and points to QuantizeBias."""
    src = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), src)
    feeds = _cnn_feeds(1)
    plain = _quantize(rq, src, tmp_path / "a.onnx", feeds)
    flagged = _quantize(rq, src, tmp_path / "b.onnx", feeds,
                        extra_options={"DisableQuantizeBias": True})  # fmt: skip
    assert_same(canon(flagged), canon(plain))
    no_bias = _quantize(rq, src, tmp_path / "c.onnx", feeds, extra_options={"QuantizeBias": False})
    assert _differs(canon(no_bias), canon(plain))
    with pytest.raises(ValueError, match="DisableQuantizeBias.*QuantizeBias=False"):
        _quantize(oq, src, tmp_path / "d.onnx", feeds, extra_options={"DisableQuantizeBias": True})
