"""QDQ models run as onnxruntime runs them: the DequantizeLinear of weights is kept for the QDQ
fusions (QLinearConv...), and the integer convolution is exact, so outputs equal onnxruntime's
bit for bit wherever onnxruntime's own kernels are exact (see docs/compatibility.md: its u8s8
kernels on x86 CPUs without VNNI saturate 16-bit pair sums; these tests keep weights in 7 bits,
as ``reduce_range`` does, where no pair can saturate)."""

from __future__ import annotations

import collections
import types

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort

onnxruntime = pytest.importorskip("onnxruntime")
rng = np.random.default_rng(7)


def _qlinear_conv(c, m, group, k, per_channel, x_zp=7, bias=True, w_dtype=np.int8, y_scale=0.3):
    w = rng.integers(-63, 64, (m, c // group, k, k)).astype(w_dtype)
    if w_dtype == np.uint8:
        w = rng.integers(0, 256, (m, c // group, k, k)).astype(np.uint8)
    ws = (rng.random(m) * 0.02 + 0.001).astype(np.float32) if per_channel else np.float32(0.01)
    wz = (
        np.zeros(np.shape(ws), w_dtype)
        if w_dtype == np.int8
        else np.full(np.shape(ws), 128, w_dtype)
    )
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(x_zp, np.uint8), "xz"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.asarray(ws, np.float32), "ws"),
        numpy_helper.from_array(np.asarray(wz), "wz"),
        numpy_helper.from_array(np.array(y_scale, np.float32), "ys"),
        numpy_helper.from_array(np.array(128, np.uint8), "yz"),
    ]
    inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias:
        inits.append(numpy_helper.from_array(rng.integers(-3000, 3000, m).astype(np.int32), "b"))
        inputs.append("b")
    node = helper.make_node("QLinearConv", inputs, ["y"], pads=[k // 2] * 4, group=group)
    graph = helper.make_graph(
        [node], "qconv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, 20, 20])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize(
    "c, m, group, k, per_channel",
    [
        (16, 32, 1, 3, True),  # dense 3x3 (per-tap GEMMs)
        (32, 32, 32, 3, True),  # depthwise (compiled direct kernel)
        (64, 128, 1, 1, False),  # pointwise GEMM
        (24, 24, 24, 5, True),  # depthwise 5x5
        (3, 16, 1, 3, False),  # a stem
        (16, 16, 4, 3, True),  # grouped
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_qlinear_conv_equals_onnxruntime_exactly(c, m, group, k, per_channel, threads):
    model = _qlinear_conv(c, m, group, k, per_channel).SerializeToString()
    x = rng.integers(0, 256, (1, c, 20, 20)).astype(np.uint8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    ours = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(ours[0], theirs[0])


def test_qlinear_conv_with_uint8_weights_and_no_bias_equals_onnxruntime():
    model = _qlinear_conv(8, 8, 1, 3, False, bias=False, w_dtype=np.uint8).SerializeToString()
    x = rng.integers(0, 256, (1, 8, 20, 20)).astype(np.uint8)
    ours = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(ours[0], theirs[0])


def test_wide_qlinear_conv_in_exact_channel_blocks_equals_onnxruntime():
    """256 input channels x 3x3 of uint8 weights: the sums can pass 2**24, so the convolution
    runs as blocks of input channels, each exact in float32, summed in float64."""
    from ort_cpu.kernels import conv

    model = _qlinear_conv(256, 32, 1, 3, False, w_dtype=np.uint8, y_scale=1.0)
    info_w = numpy_helper.to_array(model.graph.initializer[2]).astype(np.float64) - 128
    assert np.abs(info_w).reshape(32, -1).sum(axis=1).max() * 255 >= conv._EXACT_F32
    x = rng.integers(0, 256, (1, 256, 20, 20)).astype(np.uint8)
    data = model.SerializeToString()
    ours = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    theirs = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert np.ptp(theirs[0]) > 50  # not saturated: the test compares real values


def _qdq_cnn():
    """input -> Q -> DQ -> Conv(DQ(w), DQ(b)) -> Q -> DQ -> Conv depthwise -> Q -> DQ -> Add with
    the first conv's output -> Q -> DQ -> Resize (no quantized form) -> output."""
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def q(x, name, scale, zp=128):
        s, z = const(f"{name}_s", np.float32(scale)), const(f"{name}_z", np.uint8(zp))
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", s, z], [f"{name}_dq"]))
        return f"{name}_dq"

    def conv(x, name, c, m, group, x_scale):
        w = rng.integers(-63, 64, (m, c // group, 3, 3)).astype(np.int8)
        ws = (rng.random(m) * 0.01 + 0.002).astype(np.float32)
        const(f"{name}_w", w)
        const(f"{name}_ws", ws)
        const(f"{name}_wz", np.zeros(m, np.int8))
        nodes.append(
            helper.make_node(
                "DequantizeLinear", [f"{name}_w", f"{name}_ws", f"{name}_wz"], [f"{name}_wf"],
                axis=0,
            )
        )  # fmt: skip
        const(f"{name}_b", rng.integers(-500, 500, m).astype(np.int32))
        const(f"{name}_bs", (ws * np.float32(x_scale)).astype(np.float32))
        const(f"{name}_bz", np.zeros(m, np.int32))
        nodes.append(
            helper.make_node(
                "DequantizeLinear", [f"{name}_b", f"{name}_bs", f"{name}_bz"], [f"{name}_bf"],
                axis=0,
            )
        )  # fmt: skip
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}_wf", f"{name}_bf"], [f"{name}_y"], pads=[1] * 4, group=group
            )
        )
        return f"{name}_y"

    a = q("input", "in", 0.02)
    c1 = q(conv(a, "c1", 8, 16, 1, 0.02), "c1o", 0.05)
    c2 = q(conv(c1, "c2", 16, 16, 16, 0.05), "c2o", 0.05)
    nodes.append(helper.make_node("Add", [c1, c2], ["sum"]))
    s = q("sum", "sumo", 0.08)
    const("scales", np.array([1, 1, 2, 2], np.float32))
    nodes.append(helper.make_node("Resize", [s, "", "scales"], ["output"], mode="nearest"))
    graph = helper.make_graph(
        nodes, "qdq_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_qdq_cnn_is_fused_to_integer_ops_and_equals_onnxruntime():
    model = _qdq_cnn().SerializeToString()
    x = rng.random((1, 8, 16, 16), dtype=np.float32) * 4 - 1
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in sess._model.graph.nodes)
    assert ops["QLinearConv"] == 2 and ops["QLinearAdd"] == 1
    # weights and biases of the fused convolutions are read in 8 bits; nothing else dequantizes
    # a constant at run time (a DequantizeLinear no fusion took would have been folded)
    assert ops["DequantizeLinear"] == 1  # the one before Resize, of an activation
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )
    np.testing.assert_array_equal(sess.run(None, {"input": x})[0], theirs[0])


def test_without_qdq_fusion_weights_are_folded_and_results_stay_within_a_step():
    model = _qdq_cnn().SerializeToString()
    x = rng.random((1, 8, 16, 16), dtype=np.float32) * 4 - 1
    so = ort.SessionOptions()
    so.add_session_config_entry("session.enable_quant_qdq", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in sess._model.graph.nodes)
    assert ops["QLinearConv"] == 0 and ops["Conv"] + ops["FusedConv"] == 2
    # no DequantizeLinear of a weight is left (basic constant folding took them)
    assert all(n.inputs[0] not in sess._model.graph.initializers
               for n in sess._model.graph.nodes if n.op_type == "DequantizeLinear")  # fmt: skip
    fused = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"input": x})[
        0
    ]
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], fused, atol=0.08 + 1e-6)


def test_basic_level_keeps_no_dequantize_of_weights_unfolded():
    model = _qdq_cnn().SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    g = sess._model.graph
    assert all(
        n.inputs[0] not in g.initializers for n in g.nodes if n.op_type == "DequantizeLinear"
    )


def _qdq_single(op, x_shape, attrs=None, weights=False, unsigned=False):
    """Q -> DQ -> op -> Q -> DQ around one op (Gemm: with quantized int8 weights and bias);
    activations int8, or uint8 where ``unsigned`` (onnxruntime's u8s8 QGemm)."""
    act = np.uint8 if unsigned else np.int8
    shift = 128 if unsigned else 0
    inits = [
        numpy_helper.from_array(np.array(0.03, np.float32), "xs"),
        numpy_helper.from_array(np.array(-25 + shift, act), "xz"),
        numpy_helper.from_array(np.array(1 / 255 if op == "Softmax" else 0.05, np.float32), "ys"),
        numpy_helper.from_array(np.array((-128 if op == "Softmax" else 3) + shift, act), "yz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
    ]
    inputs = ["xf"]
    if weights:
        n_out = 6
        w = rng.integers(-63, 64, (n_out, x_shape[-1])).astype(np.int8)  # used transposed
        ws = (rng.random(n_out) * 0.01 + 0.002).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(ws, "ws"),
            numpy_helper.from_array(np.zeros(n_out, np.int8), "wz"),
            numpy_helper.from_array(rng.integers(-300, 300, n_out).astype(np.int32), "b"),
            numpy_helper.from_array((ws * np.float32(0.03)).astype(np.float32), "bs"),
            numpy_helper.from_array(np.zeros(n_out, np.int32), "bz"),
        ]
        nodes += [
            helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0),
            helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bf"], axis=0),
        ]
        inputs += ["wf", "bf"]
    nodes += [
        helper.make_node(op, inputs, ["y"], **(attrs or {})),
        helper.make_node("QuantizeLinear", ["y", "ys", "yz"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "qdq1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize(
    "op, x_shape, attrs, weights, fused, unsigned",
    [
        ("Softmax", [4, 8, 8], {"axis": -1}, False, "QLinearSoftmax", False),
        ("AveragePool", [1, 4, 9, 9], {"kernel_shape": [3, 3], "strides": [2, 2]}, False,
         "QLinearAveragePool", False),
        ("Gemm", [5, 16], {"transB": 1}, True, "QGemm", False),
        # uint8 activations with int8 weights (MobileNetV2-QDQ's classifier) fuse too
        ("Gemm", [5, 16], {"transB": 1}, True, "QGemm", True),
    ],
)  # fmt: skip
def test_more_qdq_groups_fuse_and_equal_onnxruntime(op, x_shape, attrs, weights, fused, unsigned):
    model = _qdq_single(op, x_shape, attrs, weights, unsigned).SerializeToString()
    x = (rng.standard_normal(x_shape) * 2).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert fused in {n.op_type for n in sess._model.graph.nodes}
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], theirs[0])


def _one_qlinear_conv(
    c, m, hw, batch, out_dtype, per_channel, bias, x_zp, k=1, x_dtype=np.uint8, **window
):
    w = rng.integers(-63, 64, (m, c // window.get("group", 1), k, k)).astype(np.int8)
    ws = (rng.random(m) * 0.02 + 0.001).astype(np.float32) if per_channel else np.float32(0.01)
    yz = np.array(128 if out_dtype == np.uint8 else -5, out_dtype)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(x_zp, x_dtype), "xz"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.asarray(ws, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(np.shape(ws), np.int8), "wz"),
        numpy_helper.from_array(np.array(0.3, np.float32), "ys"),
        numpy_helper.from_array(yz, "yz"),
    ]
    inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias:
        inits.append(numpy_helper.from_array(rng.integers(-3000, 3000, m).astype(np.int32), "b"))
        inputs.append("b")
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    x_elem = helper.np_dtype_to_tensor_dtype(np.dtype(x_dtype))
    graph = helper.make_graph(
        [helper.make_node("QLinearConv", inputs, ["y"], **window)], "qlinear_conv",
        [helper.make_tensor_value_info("x", x_elem, [batch, c, hw, hw])],
        [helper.make_tensor_value_info("y", elem, None)], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _spied(name, real, spy):
    """``real`` (a function of :mod:`._vnni`, or one of its compiled kernels, which callers
    reach through ``.get()``) with calls going through ``spy(name, ...)``."""
    from ort_cpu import _jit

    if isinstance(real, _jit.LazyKernel):
        called = spy(name, real.get())
        return types.SimpleNamespace(get=lambda: called)
    return spy(name, real)


@pytest.mark.parametrize(
    "c, m, hw, batch, out_dtype, per_channel, bias, x_zp, window",
    [
        (30, 20, 7, 2, np.uint8, True, True, 7, {}),  # K, M, pixels off the tiles; a batch
        (64, 128, 20, 1, np.uint8, False, False, 0, {}),
        (256, 96, 14, 1, np.int8, True, True, 128, {}),  # int8 output; shared at two threads
        # 25 pixels, less than a tile: shared by tiles of output channels at two threads
        (512, 256, 5, 1, np.uint8, True, True, 31, {}),
        (16, 24, 21, 2, np.uint8, True, True, 9, {"k": 3, "pads": [1, 1, 1, 1]}),  # padded 3x3
        (
            3,
            16,
            33,
            1,
            np.uint8,
            False,
            True,
            120,
            {"k": 3, "pads": [1, 0, 1, 2], "strides": [2, 2]},
        ),
        (8, 12, 19, 1, np.uint8, True, False, 3, {"k": 3, "dilations": [2, 2], "pads": [2] * 4}),
        # a dilated window (no quads): shared by output rows at two threads, each packing its own
        (32, 40, 24, 1, np.uint8, True, True, 60, {"k": 3, "dilations": [2, 2], "pads": [2] * 4}),
        # stride 2 over rows of even length: the image packed four channels to a word
        # (quads), both column phases of a row at once; shared at two threads (tiles of cells)
        (16, 32, 40, 1, np.uint8, True, True, 5, {"k": 3, "pads": [1] * 4, "strides": [2, 2]}),
        # quads: channels off the words (18), odd widths, uneven pads, 5 x 5, a batch
        (
            18,
            12,
            23,
            2,
            np.uint8,
            True,
            True,
            77,
            {"k": 3, "pads": [0, 2, 1, 1], "strides": [2, 2]},
        ),
        (20, 9, 15, 1, np.int8, False, True, 3, {"k": 5, "pads": [2, 1, 2, 3]}),
        (
            8,
            12,
            22,
            2,
            np.uint8,
            False,
            True,
            250,
            {"k": 3, "pads": [2] * 4, "strides": [2, 2], "dilations": [2, 2]},
        ),  # fmt: skip
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_qlinear_conv_on_vnni_equals_the_float_path_and_onnxruntime(
    monkeypatch, c, m, hw, batch, out_dtype, per_channel, bias, x_zp, window, threads
):
    """Where the CPU has AVX-512 VNNI or AVX2, a QLinearConv of one group sums uint8 x int8
    products in int32 with vpdpbusd or vpmaddwd (ort_cpu.kernels._vnni; a window's column
    matrix packed from the input padded with its zero point), its output channels shared among
    the run's threads when large: the same bytes as the float path and as onnxruntime."""
    from ort_cpu import _threads
    from ort_cpu.kernels import _vnni, conv

    if not _vnni.available():
        pytest.skip(
            "this CPU has neither AVX-512 VNNI nor AVX2: the float path runs (the tests above)"
        )
    model = _one_qlinear_conv(c, m, hw, batch, out_dtype, per_channel, bias, x_zp, **window)
    x = rng.integers(0, 256, (batch, c, hw, hw)).astype(np.uint8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    # the product on the calling thread (qgemm, or conv_rows / conv_quads for a window), or
    # handed to the pool (split, split_rows, split_quads)
    calls = collections.Counter()

    def spy(name, real):
        def call(*a):
            done = real(*a)
            serial = name in ("qgemm", "conv_rows", "conv_quads")
            calls.update(["serial" if serial else "shared"] if serial or done else [])
            return done

        return call

    for name in ("qgemm", "split", "split_pixels", "conv_rows", "split_rows", "conv_quads",
                 "split_quads"):  # fmt: skip
        monkeypatch.setattr(_vnni, name, _spied(name, getattr(_vnni, name), spy))
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    calls.clear()  # (creation compiles the kernels with a call each)
    vnni = sess.run(None, {"x": x})
    k, cells = window.get("k", 1), int(np.prod(vnni[0].shape[2:]))
    shared = threads == 2 and _threads.spin_supported()
    shared = shared and m * c * k * k * cells >= conv.VNNI_SPLIT_WORK
    assert calls == collections.Counter({"shared" if shared else "serial": batch})
    monkeypatch.setattr(conv, "_vnni_conv", lambda *a: None)
    floats = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert vnni[0].dtype == out_dtype
    np.testing.assert_array_equal(vnni[0], floats[0])
    if out_dtype == np.uint8:  # onnxruntime implements uint8 input with uint8 output only
        theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )
        np.testing.assert_array_equal(vnni[0], theirs[0])


@pytest.mark.parametrize(
    "c, hw, batch, x_dtype, out_dtype, per_channel, bias, x_zp, window",
    [
        (96, 28, 1, np.uint8, np.uint8, True, True, 128, {"k": 3, "pads": [1] * 4}),
        (96, 27, 2, np.uint8, np.uint8, True, True, 7, {"k": 3, "pads": [1] * 4, "strides": [2, 2]}),
        (64, 14, 1, np.uint8, np.uint8, False, False, 0, {"k": 3, "pads": [1] * 4}),  # 14 cells
        (960, 7, 1, np.uint8, np.int8, True, True, 120, {"k": 3, "pads": [1] * 4}),  # shared
        (24, 33, 1, np.uint8, np.uint8, True, True, 9, {"k": 5, "pads": [2, 1, 2, 3]}),
        (16, 40, 1, np.uint8, np.uint8, True, False, 3, {"k": 3, "strides": [3, 3]}),  # no pads
        (16, 35, 1, np.uint8, np.uint8, True, True, 77, {"k": 3, "dilations": [2, 2], "pads": [2] * 4}),
        (32, 20, 1, np.int8, np.int8, True, True, -3, {"k": 3, "pads": [1] * 4, "strides": [2, 1]}),
        # planar (rows of more than CL_MAX_OW cells)
        (16, 48, 1, np.uint8, np.uint8, True, True, 100, {"k": 3, "pads": [1] * 4}),
        (24, 90, 1, np.uint8, np.uint8, True, True, 6, {"k": 3, "pads": [1] * 4, "strides": [2, 2]}),
        # channels last (rows of at most CL_MAX_OW cells): partial vectors and blocks of channels,
        # 5 x 5 (taps not held in registers), dilation with uneven pads, signed in and out
        (40, 7, 1, np.uint8, np.uint8, True, True, 128, {"k": 3, "pads": [1] * 4}),
        (72, 9, 2, np.uint8, np.int8, True, False, 5, {"k": 5, "pads": [2] * 4}),
        (48, 15, 1, np.uint8, np.uint8, False, True, 200, {"k": 3, "dilations": [2, 2], "pads": [2, 1, 2, 1]}),
        (33, 16, 1, np.int8, np.int8, True, True, -7, {"k": 3, "strides": [2, 2], "pads": [0, 1, 1, 0]}),
        (576, 14, 1, np.uint8, np.uint8, True, True, 131, {"k": 3, "pads": [1] * 4, "strides": [2, 2]}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_qlinear_conv_in_one_pass_equals_the_float_path_and_onnxruntime(
    monkeypatch, c, hw, batch, x_dtype, out_dtype, per_channel, bias, x_zp, window, threads
):
    """A depthwise QLinearConv runs as one compiled pass per channel (centring, the taps, the
    requantization; ort_cpu.kernels._conv_jit._depthwise_quant), its channels shared among the
    run's threads when large: the same bytes as the three-pass float path and onnxruntime, at
    any stride, dilation, padding, odd widths, 7- and 14-cell rows, signed input."""
    from ort_cpu import _threads
    from ort_cpu.kernels import _conv_jit, _conv_pieces, conv

    if _conv_jit.warm_quant(x_dtype, out_dtype) is None:
        pytest.skip("compiled kernels are off: the float path runs (the tests above)")
    model = _one_qlinear_conv(
        c, c, hw, batch, out_dtype, per_channel, bias, x_zp, x_dtype=x_dtype, group=c, **window
    )
    x = rng.integers(-128 if x_dtype == np.int8 else 0, 128 if x_dtype == np.int8 else 256,
                     (batch, c, hw, hw)).astype(x_dtype)  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    calls = collections.Counter()
    real = _conv_pieces.split_quant

    def spy(*a):
        done = real(*a)
        calls.update(["shared"] if done else [])
        return done

    monkeypatch.setattr(_conv_pieces, "split_quant", spy)
    made = []
    real_make = conv._depthwise_quant_conv
    monkeypatch.setattr(
        conv, "_depthwise_quant_conv", lambda *a: made.append(real_make(*a)) or made[-1]
    )
    fused = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert made and made[0] is not None
    k = window["k"]
    shared = threads == 2 and _threads.spin_supported()
    shared = shared and conv._direct_split_pays(fused[0].size, fused[0].shape, k * k)
    assert calls == collections.Counter({"shared": 1} if shared else {})
    monkeypatch.setattr(conv, "_depthwise_quant_conv", lambda *a: None)
    floats = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert fused[0].dtype == out_dtype
    np.testing.assert_array_equal(fused[0], floats[0])
    if x_dtype == out_dtype == np.uint8:
        theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )
        np.testing.assert_array_equal(fused[0], theirs[0])


@pytest.mark.parametrize("x_dtype, y_dtype", [(np.uint8, np.uint8), (np.int8, np.int8),
                                              (np.uint8, np.int8)])  # fmt: skip
def test_depthwise_qlinear_conv_channels_last_equals_the_planar_kernel(x_dtype, y_dtype):
    """Host logic, compiled kernels: the channels-last depthwise kernel (16 x 16 transposes in
    registers, ort_cpu.kernels._cl_taps) writes the planar kernel's bytes on random geometries:
    channel counts off the vectors and blocks, 1 x 1 to 7 x 7 maps and wider, windows 1 x 1 to
    5 x 5 and 3 x 1, strides, dilations, uneven pads, batches; channel ranges as the pieces
    cut them."""
    from ort_cpu.kernels import _conv_jit
    from ort_cpu.kernels.conv import _cached_geometry, _DirectPlan

    planar, cl = _conv_jit.warm_quant(x_dtype, y_dtype), _conv_jit.warm_quant_cl(x_dtype, y_dtype)
    if planar is None or cl is None:
        pytest.skip("compiled kernels are off")
    g = np.random.default_rng(11)
    lo_x, hi_x = (-128, 128) if x_dtype == np.int8 else (0, 256)
    info = np.iinfo(y_dtype)
    for case in range(40):
        c = int(g.choice([1, 5, 16, 17, 40, 64, 65, 100, 130]))
        h, w = int(g.integers(1, 18)), int(g.integers(1, 18))
        kh, kw = [(1, 1), (3, 3), (5, 5), (3, 1), (2, 2)][case % 5]
        sh, sw, dh, dw = (int(v) for v in g.integers(1, 3, 4))
        pads = tuple(int(v) for v in g.integers(0, 3, 4))
        out, begin, _, _ = _cached_geometry((h, w), (kh, kw), (sh, sw), (dh, dw), pads, "NOTSET")
        if min(out) < 1:
            continue
        n = int(g.integers(1, 3))
        x = g.integers(lo_x, hi_x, (n, c, h, w)).astype(x_dtype)
        wc = g.integers(-64, 64, (c, kh * kw)).astype(np.float32)
        bias = g.integers(-2000, 2000, c).astype(np.float32)
        mult = (g.random(c) * 0.02).astype(np.float32)
        zx = np.float32(int(g.integers(lo_x, hi_x)))
        zy, lo, hi = np.float32(int(g.integers(info.min, info.max))), np.float32(info.min), \
            np.float32(info.max)  # fmt: skip
        plan = _DirectPlan(None, x.shape, c, c, [kh, kw], [sh, sw], [dh, dw], out, begin)
        ints = plan.args[:-2]
        want = np.empty((n, c, *out), y_dtype)
        planar(x, zx, wc, bias, mult, zy, lo, hi, want, 0, c, *ints)
        got = np.full_like(want, 3)
        wt, bt, mt = _conv_jit.cl_weights(wc, bias, mult)
        cut = int(g.integers(0, c + 1)) // 16 * 16  # two pieces, as a split cuts them
        for a, b in ((0, cut), (cut, c)):
            cl(x, zx, wt, bt, mt, zy, lo, hi, got, a, b, *ints[:8])
        np.testing.assert_array_equal(got, want, err_msg=f"case {case}: {x.shape} {kh}x{kw} "
                                      f"s{sh}{sw} d{dh}{dw} pads {pads}")  # fmt: skip


@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8])
def test_vnni_window_from_quads_equals_the_column_matrix(out_dtype):
    """Host logic, compiled kernels: a QLinearConv window read from the image packed once, four
    channels to a word (pack_quads, conv_quads, unflat) gives the bytes of the column-matrix
    path (pack_windows, qgemm) on random geometries: channels off the words, odd and even
    widths, strides 1 and 2, uneven pads, windows 1 x 3 to 5 x 5, output channels off the
    tiles, tiles cut in two ranges as the pieces cut them."""
    from ort_cpu.kernels import _vnni
    from ort_cpu.kernels.conv import _cached_geometry

    if not _vnni.available():
        pytest.skip("this CPU has neither AVX-512 VNNI nor AVX2")
    pack_windows = _vnni.conv_rows.py_func.__globals__["pack_windows"]
    g = np.random.default_rng(5)
    for case in range(30):
        c, m = int(g.choice([4, 8, 13, 16, 21, 32])), int(g.choice([1, 7, 8, 20]))
        h, w = int(g.integers(1, 30)), int(g.integers(1, 30))
        kh, kw = [(3, 3), (1, 3), (5, 5), (2, 2), (3, 1)][case % 5]
        s = int(g.integers(1, 3))
        pads = tuple(int(v) for v in g.integers(0, 3, 4))
        out, begin, _, end = _cached_geometry((h, w), (kh, kw), (s, s), (1, 1), pads, "NOTSET")
        if min(out) < 1:
            continue
        zx = int(g.integers(0, 256))
        x = g.integers(0, 256, (c, h, w)).astype(np.uint8)
        w4 = g.integers(-64, 64, (m, c, kh, kw)).astype(np.int8)
        bias = g.integers(-3000, 3000, m).astype(np.float32)
        mult = (g.random(m) * 0.01).astype(np.float32)
        zero, lo, hi = (np.float32(v) for v in ((128, 0, 255) if out_dtype == np.uint8
                                                 else (-3, -128, 127)))  # fmt: skip
        xp = np.full((c, h + begin[0] + end[0], w + begin[1] + end[1]), zx, np.uint8)
        xp[:, begin[0] : begin[0] + h, begin[1] : begin[1] + w] = x
        k = c * kh * kw
        k4, cells = -(-k // 4), out[0] * out[1]
        p_pad = -(-cells // 32) * 32
        xq = np.empty((k4, p_pad), np.uint32)
        pack_windows.get()(xp, kh, kw, s, s, 1, 1, 0, out[0], out[1], k4, p_pad, xq)
        wq, wsum = _vnni.pack_weights(w4.reshape(m, k))
        want = np.empty((m, cells), out_dtype)
        _vnni.qgemm.get()(xq, wq, wsum, np.int32(zx), bias, mult, zero, lo, hi, want, 0, m, 0,
                          cells)  # fmt: skip
        hq, wq_, table = _vnni.quads_geometry((1, c, h, w), (kh, kw), s, begin, out)
        xw = np.full(s * s * -(-c // 4) * hq * wq_ + 64, 7, np.uint32)
        _vnni.pack_quads.get()(x, np.uint8(zx), begin[0], begin[1], s, hq, wq_, xw)
        w4q, w4sum = _vnni.pack_weights_quads(w4)
        yf = np.zeros((m, out[0] * wq_), out_dtype)
        tiles = -(-yf.shape[1] // 32)
        cut = int(g.integers(0, tiles + 1))
        for a, b in ((0, cut), (cut, tiles)):
            _vnni.conv_quads.get()(xw, table, w4q, w4sum, np.int32(zx), bias, mult, zero, lo, hi,
                                   yf, a, b)  # fmt: skip
        got = np.empty((m, *out), out_dtype)
        _vnni.unflat.get()(yf, wq_, got)
        np.testing.assert_array_equal(got.reshape(m, -1), want, err_msg=f"case {case}: c {c} "
                                      f"{h}x{w} {kh}x{kw} s{s} pads {pads}")  # fmt: skip


def _matmul_integer_to_float(rows, k, n, per_column, bias, a_zp, low=-128):
    b = rng.integers(low, -low, (k, n)).astype(np.int8)
    bs = (rng.random(n) * 0.02 + 0.001).astype(np.float32) if per_column else np.float32(0.0123)
    inits = [
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.float32(0.05), "as"),
        numpy_helper.from_array(np.asarray(bs, np.float32), "bs"),
    ]
    inputs = ["a", "b", "as", "bs", "az" if a_zp is not None else "", ""]
    if a_zp is not None:
        inits.append(numpy_helper.from_array(np.uint8(a_zp), "az"))
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"))
        inputs.append("bias")
    node = helper.make_node("MatMulIntegerToFloat", inputs, ["y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node], "mmitf", [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, rows, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


@pytest.mark.parametrize(
    "rows, k, n, per_column, bias, a_zp, low",
    [
        (37, 70, 45, True, True, 131, -64),  # K, N and rows off the tile sizes
        (37, 70, 45, True, True, 131, -128),  # whole int8 range
        (5, 16, 8, False, False, None, -64),
        (64, 384, 384, True, True, 128, -64),  # shared at two threads
        # fewer than 8 rows (2 x 1, 2 x 3): on AVX2 the columns as words of four bytes
        (1, 1280, 1000, True, True, 131, -128),  # a classifier's, shared at two threads
        (3, 70, 45, False, True, 7, -64),
        # one row over 3 and 10 steps of four bytes (K 9 and 40)
        (1, 9, 40, False, True, 5, -128),
        (1, 40, 33, True, False, None, -128),
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_integer_to_float_on_vnni_equals_the_float_path(
    monkeypatch, rows, k, n, per_column, bias, a_zp, low, threads
):
    """Where the CPU has AVX-512 VNNI or AVX2, MatMulIntegerToFloat with a constant int8 right
    operand sums its products in int32 (ort_cpu.kernels._vnni: vpdpbusd, or vpmaddwd on the
    bytes widened; 8 rows of the left operand as they are by 32 packed columns), its tiles of
    columns shared among the run's threads when large (on AVX2, products of fewer than 8 rows
    read the columns as words of four bytes, more rows as 16-bit pairs widened at packing):
    the float path's values exactly, and onnxruntime's to float32 rounding. onnxruntime's AVX2 kernel (vpmaddubsw) saturates a pair
    of products past 32767, so it is compared on weights of -64 to 63, which never do; the
    whole int8 range is compared with the float path only where the CPU lacks VNNI."""
    from ort_cpu import _threads
    from ort_cpu._aot import has_feature
    from ort_cpu.kernels import _vnni, quantization

    if not _vnni.available():
        pytest.skip("this CPU has neither AVX-512 VNNI nor AVX2: the float path runs")
    model = _matmul_integer_to_float(rows, k, n, per_column, bias, a_zp, low)
    a = rng.integers(0, 256, (2, rows, k)).astype(np.uint8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    calls = collections.Counter()

    def spy(name, real):
        def call(*args):
            done = real(*args)
            calls.update([name] if name == "qgemm_rows" or done else [])
            return done

        return call

    for name in ("qgemm_rows", "split_columns"):
        monkeypatch.setattr(_vnni, name, _spied(name, getattr(_vnni, name), spy))
    (vnni,) = sess.run(None, {"a": a})
    shared = threads == 2 and 2 * rows * k * n >= quantization.VNNI_SPLIT_WORK
    shared = shared and _threads.spin_supported()
    assert calls == collections.Counter({"split_columns": 1} if shared else {"qgemm_rows": 1})
    monkeypatch.setattr(quantization, "_vnni_matmul", lambda *args: None)
    (floats,) = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(
        None, {"a": a}
    )
    (theirs,) = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"a": a}
    )
    assert vnni.shape == (2, rows, n) and vnni.dtype == np.float32
    np.testing.assert_array_equal(vnni, floats)
    if low == -64 or has_feature("avx512vnni"):
        np.testing.assert_allclose(vnni, theirs, rtol=1e-6, atol=1e-5)


def test_shared_product_keeps_its_argument_block(monkeypatch):
    """A MatMulIntegerToFloat shared between two threads (ort_cpu.kernels._vnni.split_columns)
    builds its argument block once, with the constant weights', sums' and bias's addresses, and
    fills in each run's left operand, output, scales and zero point: three runs with new
    inputs, scales and zero points (the left operand's, fed) match the float path exactly, and
    only the first builds a block. Where a run did not refill the scales or the zero point
    (kept from the first on purpose), the later runs' values are wrong."""
    from ort_cpu import _threads
    from ort_cpu.kernels import _vnni, quantization

    if not _vnni.available() or not _threads.spin_supported():
        pytest.skip("needs AVX-512 VNNI or AVX2 and the spinning pool")
    k, n, rows = 384, 256, 64
    b = rng.integers(-64, 64, (k, n)).astype(np.int8)
    inits = [
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array((rng.random(n) * 0.02).astype(np.float32), "bs"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"),
    ]
    node = helper.make_node(
        "MatMulIntegerToFloat", ["a", "b", "as", "bs", "az", "", "bias"], ["y"],
        domain="com.microsoft",
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "shared",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [rows, k]),
         helper.make_tensor_value_info("as", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("az", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    built = []
    real_block = _vnni._block
    monkeypatch.setattr(_vnni, "_block", lambda *a: built.append(1) or real_block(*a))
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feeds = [
        {"a": rng.integers(0, 256, (rows, k)).astype(np.uint8), "as": np.float32(s),
         "az": np.uint8(z)}
        for s, z in ((0.05, 131), (0.02, 7), (0.11, 250))
    ]  # fmt: skip
    got = [sess.run(None, f)[0] for f in feeds]
    assert built == [1]
    monkeypatch.setattr(quantization, "_vnni_matmul", lambda *args: None)
    floats = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for f, g in zip(feeds, got, strict=True):
        np.testing.assert_array_equal(g, floats.run(None, f)[0])


@pytest.mark.parametrize("compiled", [True, False])
def test_qlinear_add_equals_onnxruntime_bit_for_bit(compiled, monkeypatch):
    """QLinearAdd rounds as onnxruntime's x86 kernel does (the zero points folded into one
    float32, two fused multiply-adds), compiled and numpy: uint8 and int8, same shapes, a row
    broadcast and a single-element operand, random scales and zero points."""
    from .harness import use_compiled

    use_compiled(monkeypatch, compiled)
    gen = np.random.default_rng(41)
    wrong = total = 0
    for trial in range(60):
        dt = np.uint8 if trial % 2 else np.int8
        lim = np.iinfo(dt)
        shapes = ([(16384,), (16384,)], [(64, 256), (1, 256)], [(1,), (16384,)])[trial % 3]
        a, b = (gen.integers(lim.min, lim.max + 1, s).astype(dt) for s in shapes)
        params = {
            "sa": np.float32(gen.uniform(0.001, 0.1)), "sb": np.float32(gen.uniform(0.001, 0.1)),
            "sc": np.float32(gen.uniform(0.001, 0.1)),
            **{z: dt(gen.integers(lim.min, lim.max + 1)) for z in ("za", "zb", "zc")},
        }  # fmt: skip
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
        node = helper.make_node(
            "QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
            domain="com.microsoft",
        )  # fmt: skip
        graph = helper.make_graph(
            [node], "qadd",
            [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip("ab", shapes)],
            [helper.make_tensor_value_info("c", elem, None)],
            [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()],
        )  # fmt: skip
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        ).SerializeToString()
        feed = {"a": a, "b": b}
        want = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
            None, feed
        )[0]
        got = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        wrong += int((got != want).sum())
        total += want.size
    assert wrong == 0, f"{wrong} of {total} outputs differ"


def _qdq_move(op, x_shape, attrs=None, extra=(), out_params=("xs", "xz"), n_out=1):
    """Q -> DQ -> ``op`` -> Q (per output) -> DQ, the same scale and zero point on both sides
    unless ``out_params`` names others; ``extra``: the op's other inputs (initializers)."""
    inits = [
        numpy_helper.from_array(np.array(0.03, np.float32), "xs"),
        numpy_helper.from_array(np.array(7, np.uint8), "xz"),
        numpy_helper.from_array(np.array(0.04, np.float32), "os"),
        numpy_helper.from_array(np.array(9, np.uint8), "oz"),
    ]
    names = []
    for i, value in enumerate(extra):
        inits.append(numpy_helper.from_array(value, f"e{i}"))
        names.append(f"e{i}")
    outs = [f"y{i}" for i in range(n_out)]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
        helper.make_node(op, ["xf", *names], outs, **(attrs or {})),
    ]
    for o in outs:
        nodes += [
            helper.make_node("QuantizeLinear", [o, *out_params], [o + "q"]),
            helper.make_node("DequantizeLinear", [o + "q", *out_params], [o + "f"]),
        ]
    graph = helper.make_graph(
        nodes, "qdq_move",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o + "f", TensorProto.FLOAT, None) for o in outs],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


_I64 = np.int64
_NO_ROI = np.zeros(0, np.float32)


@pytest.mark.parametrize(
    "op, x_shape, attrs, extra, n_out, dropped",
    [
        ("Reshape", [2, 3, 4], {}, [np.array([6, 4], _I64)], 1, True),
        ("Transpose", [2, 3, 4], {"perm": [2, 0, 1]}, [], 1, True),
        ("Split", [2, 6, 4], {"axis": 1}, [np.array([2, 4], _I64)], 2, True),
        ("MaxPool", [1, 3, 9, 9], {"kernel_shape": [3, 3], "strides": [2, 2]}, [], 1, True),
        ("Resize", [1, 2, 5, 5], {"mode": "nearest"},
         [_NO_ROI, np.array([1, 1, 2, 2], np.float32)], 1, True),
        ("Slice", [4, 10], {}, [np.array([1], _I64), np.array([8], _I64)], 1, True),
        ("Gather", [5, 4], {"axis": 0}, [np.array([3, 0, 3], _I64)], 1, True),
        ("Mul", [2, 3], {}, [np.array(2.0, np.float32)], 1, False),  # computes: not dropped
    ],
)  # fmt: skip
def test_qdq_around_data_movement_is_dropped_and_equals_onnxruntime(
    op, x_shape, attrs, extra, n_out, dropped
):
    """The op then moves the 8-bit values themselves (no DequantizeLinear/QuantizeLinear pair
    left around it), bit for bit onnxruntime's results."""
    model = _qdq_move(op, x_shape, attrs, extra, n_out=n_out).SerializeToString()
    x = (rng.standard_normal(x_shape) * 2).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    node = next(n for n in sess._model.graph.nodes if n.op_type == op)
    producer = {o: n for n in sess._model.graph.nodes for o in n.outputs}.get(node.inputs[0])
    assert (producer is None or producer.op_type != "DequantizeLinear") is dropped
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    for got, want in zip(sess.run(None, {"x": x}), theirs, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "attrs, scales",
    [
        ({"mode": "linear"}, [1, 1, 2, 2]),
        ({"mode": "cubic"}, [1, 1, 1.5, 1.5]),
    ],
)
def test_qdq_around_an_interpolating_resize_is_kept(attrs, scales):
    """An interpolating Resize stays a float op between its DequantizeLinear and QuantizeLinear
    (onnxruntime drops them and rounds in its 8-bit kernel, a step away at most)."""
    model = _qdq_move(
        "Resize", [1, 3, 11, 9], attrs, [_NO_ROI, np.array(scales, np.float32)]
    ).SerializeToString()
    x = (rng.standard_normal((1, 3, 11, 9)) * 2).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    node = next(n for n in sess._model.graph.nodes if n.op_type == "Resize")
    producer = {o: n for n in sess._model.graph.nodes for o in n.outputs}[node.inputs[0]]
    assert producer.op_type == "DequantizeLinear"
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], theirs[0], atol=0.03 + 1e-6)


def test_qdq_with_other_parameters_on_the_far_side_is_kept():
    model = _qdq_move("Transpose", [2, 3], {"perm": [1, 0]}, out_params=("os", "oz"))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in sess._model.graph.nodes)
    assert ops["Transpose"] == 1 and ops["QuantizeLinear"] == 2  # the input's and the output's
    x = (rng.standard_normal((2, 3)) * 2).astype(np.float32)
    theirs = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, {"x": x})
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], theirs[0])
