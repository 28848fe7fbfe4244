"""Translation oracle: each numpy implementation of the MIL reference runtime (the MIL ops whose
coremltools value inference is missing) against onnx's ReferenceEvaluator on the ONNX op it
stands for, on its own, with the attributes the builders pass. Also: the runtime evaluates ops
with value inference through coremltools, and fails loudly on an op it cannot evaluate."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from ort_coreml import milref

from ort_core.errors import EPFail

RNG = np.random.default_rng(0)


def onnx_ref(op, inputs, opset=18, **attrs):
    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "x, w, attrs",
    [
        (rand(1, 3, 7, 7), rand(4, 3, 3, 3), dict(pads=[1, 1, 1, 1])),
        (rand(2, 4, 9, 8), rand(6, 2, 3, 2), dict(group=2, strides=[2, 1], pads=[1, 0, 0, 1])),
        (rand(1, 2, 9, 9), rand(2, 1, 3, 3), dict(group=2, dilations=[2, 2])),
        (rand(1, 3, 10), rand(5, 3, 4), dict(strides=[3], pads=[2, 1])),
        (rand(1, 2, 5, 5, 5), rand(3, 2, 2, 2, 2), dict()),
    ],
)
def test_conv(x, w, attrs):
    b = rand(w.shape[0])
    n = x.ndim - 2
    pads = attrs.get("pads", [0] * (2 * n))
    mil_pad = [p for i in range(n) for p in (pads[i], pads[i + n])]
    got = milref.conv(x, w, b, strides=attrs.get("strides"), pad=mil_pad,
                      dilations=attrs.get("dilations"), groups=attrs.get("group", 1))  # fmt: skip
    np.testing.assert_allclose(got, onnx_ref("Conv", [x, w, b], **attrs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "x, w, attrs",
    [
        (rand(1, 3, 4, 4), rand(3, 2, 3, 3), dict(strides=[2, 2])),
        (rand(1, 4, 3, 5), rand(4, 1, 2, 3), dict(group=2, pads=[1, 0, 0, 1], strides=[2, 1])),
        (rand(1, 2, 5), rand(2, 3, 3), dict(dilations=[2])),
    ],
)
def test_conv_transpose(x, w, attrs):
    n = x.ndim - 2
    pads = attrs.get("pads", [0] * (2 * n))
    mil_pad = [p for i in range(n) for p in (pads[i], pads[i + n])]
    got = milref.conv_transpose(x, w, None, strides=attrs.get("strides"), pad=mil_pad,
                                dilations=attrs.get("dilations"), groups=attrs.get("group", 1))  # fmt: skip
    attrs = dict(attrs)
    g = attrs.pop("group", 1)  # the ReferenceEvaluator's ConvTranspose has no groups: per group
    cin = x.shape[1] // g
    want = np.concatenate(
        [
            onnx_ref("ConvTranspose", [x[:, i * cin : (i + 1) * cin], w[i * cin : (i + 1) * cin]],
                     **attrs)
            for i in range(g)
        ],
        axis=1,
    )  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "op, include_pad", [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)]
)
@pytest.mark.parametrize(
    "shape, attrs",
    [
        ((1, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        ((2, 3, 8), dict(kernel_shape=[2], strides=[2])),
        ((1, 1, 5, 6), dict(kernel_shape=[2, 3], pads=[0, 1, 1, 0])),
    ],
)
def test_pools(op, shape, attrs, include_pad):
    x = rand(*shape)
    n = len(shape) - 2
    pads = attrs.get("pads", [0] * (2 * n))
    mil_pad = [p for i in range(n) for p in (pads[i], pads[i + n])]
    strides = attrs.get("strides", [1] * n)
    if op == "MaxPool":
        got = milref.max_pool(x, attrs["kernel_shape"], strides, pad=mil_pad)
    else:
        attrs = dict(attrs, count_include_pad=include_pad)
        got = milref.avg_pool(x, attrs["kernel_shape"], strides, pad=mil_pad,
                              exclude_padding_from_average=not include_pad)  # fmt: skip
    np.testing.assert_allclose(got, onnx_ref(op, [x], **attrs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 4, 3, 5), (2, 2, 2, 3, 2)])
def test_batch_norm(shape):
    x = rand(*shape)
    c = shape[1]
    mean, gamma, beta = rand(c), rand(c), rand(c)
    var = np.abs(rand(c)) + 0.1
    got = milref.batch_norm(x, mean, var, gamma, beta, epsilon=1e-3)
    want = onnx_ref("BatchNormalization", [x, gamma, beta, mean, var], opset=15, epsilon=1e-3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 4, 3, 5), (2, 2, 2, 3, 2)])
def test_instance_norm(shape):
    x = rand(*shape)
    gamma, beta = rand(shape[1]), rand(shape[1])
    got = milref.instance_norm(x, gamma, beta, epsilon=1e-4)
    want = onnx_ref("InstanceNormalization", [x, gamma, beta], epsilon=1e-4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_silu():
    x = rand(3, 7) * 4
    want = onnx_ref("Mul", [x, onnx_ref("Sigmoid", [x])])
    np.testing.assert_allclose(milref.silu(x), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_local_response_norm(size):
    # the ReferenceEvaluator's LRN loops its channel window over range(N) instead of range(C)
    # (onnx 1.23): with N == C it computes the spec's formula for every channel
    x = rand(6, 6, 3, 3)
    got = milref.local_response_norm(x, size, alpha=2e-3, beta=0.7, k=1.5)
    want = onnx_ref("LRN", [x], size=size, alpha=2e-3, beta=0.7, bias=1.5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode):
    x = rand(2, 8, 3, 2)
    fn = milref.depth_to_space if mode == "DCR" else milref.pixel_shuffle
    got = fn(x, 2)
    np.testing.assert_array_equal(got, onnx_ref("DepthToSpace", [x], blocksize=2, mode=mode))


def test_space_to_depth():
    x = rand(2, 3, 4, 6)
    np.testing.assert_array_equal(
        milref.space_to_depth(x, 2), onnx_ref("SpaceToDepth", [x], blocksize=2)
    )


def _program(build):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program, types
    from ort_coreml.convert import target

    with Function({"x": mb.placeholder(shape=(2, 3), dtype=types.fp32)},
                  opset_version=target()) as f:  # fmt: skip
        f.set_outputs([build(mb, f.inputs["x"])])
    prog = Program()
    prog.add_function("main", f)
    return prog


def test_value_inference_path_and_names_itself():
    prog = _program(lambda mb, x: mb.softmax(x=mb.add(x=x, y=np.float32(1)), axis=-1))
    rt = milref.MilReferenceRuntime(prog)
    assert rt.name == "MIL reference runtime (numpy)"
    x = rand(2, 3)
    (y,) = rt.run({"x": x}).values()
    e = np.exp(x + 1 - (x + 1).max(-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-6)


def test_op_without_evaluation_is_an_error(monkeypatch):
    prog = _program(lambda mb, x: mb.conv(x=mb.reshape(x=x, shape=[1, 1, 2, 3]),
                                           weight=np.ones((1, 1, 1, 1), np.float32)))  # fmt: skip
    monkeypatch.delitem(milref.NUMPY_OPS, "conv")
    with pytest.raises(EPFail, match="conv .* has no value inference"):
        milref.MilReferenceRuntime(prog).run({"x": rand(2, 3)})


def _onnx_model(op, names, outputs, opset=20, **attrs):
    node = helper.make_node(op, names, outputs, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize(
    "padding, mil_padding", [("zeros", "constant"), ("border", "border"), ("reflection", None)]
)
@pytest.mark.parametrize("mode, mil_mode", [("linear", "bilinear"), ("nearest", "nearest")])  # fmt: skip
def test_resample(mode, mil_mode, padding, mil_padding, align):
    """resample against GridSample; ONNX's reflection is MIL's reflection with align_corners and
    symmetric without (about the corner pixels' centers or edges)."""
    x = rand(2, 3, 4, 5)
    grid = RNG.uniform(-2.5, 2.5, (2, 3, 6, 2)).astype(np.float32)
    mil_padding = mil_padding or ("reflection" if align else "symmetric")
    got = milref.resample(x, grid, sampling_mode=mil_mode, padding_mode=mil_padding,
                          padding_value=np.float32(0), align_corners=bool(align))  # fmt: skip
    model = _onnx_model("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding,
                        align_corners=align)  # fmt: skip
    want = ReferenceEvaluator(model).run(None, {"x": x, "g": grid})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


#: ONNX's gate order -> the ONNX gate index of each MIL gate, written out here on its own (the
#: builder has its own table): LSTM (i, o, f, c) -> (i, f, o, z); GRU (z, r, h) -> (r, o, z)
MIL_GATES = {"LSTM": [0, 2, 1, 3], "GRU": [1, 2, 0], "RNN": [0]}


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("output_sequence", [True, False])
def test_recurrent(op, output_sequence):
    """lstm, gru and rnn (forward) against the ONNX op, weights in MIL's gate order, one bias
    Wb + Rb (GRU: linear_before_reset=1 with a zero new-gate recurrent bias)."""
    steps, batch, size, hidden = 4, 2, 3, 5
    g = len(MIL_GATES[op])
    x, w, r = rand(steps, batch, size), rand(1, g * hidden, size), rand(1, g * hidden, hidden)
    b, h0 = rand(1, 2 * g * hidden), rand(1, batch, hidden)
    attrs = {"hidden_size": hidden}
    if op == "GRU":
        b[:, 5 * hidden :] = 0
        attrs["linear_before_reset"] = 1
    feeds = {"x": x, "w": w, "r": r, "b": b, "h0": h0}
    names = ["x", "w", "r", "b", "", "h0"]
    if op == "LSTM":
        feeds["c0"] = rand(1, batch, hidden)
        names.append("c0")
    outs = ["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"]
    want = ReferenceEvaluator(_onnx_model(op, names, outs, opset=14, **attrs)).run(None, feeds)

    def mil(m):
        return np.concatenate([m[k * hidden : (k + 1) * hidden] for k in MIL_GATES[op]])

    args = dict(weight_ih=mil(w[0]), weight_hh=mil(r[0]),
                bias=mil(b[0, : g * hidden] + b[0, g * hidden :]),
                output_sequence=output_sequence)  # fmt: skip
    if op == "LSTM":
        got = milref.lstm(x, h0[0], feeds["c0"][0], **args)
    else:
        got = getattr(milref, op.lower())(x, h0[0], **args)
    y = want[0][:, 0] if output_sequence else want[0][-1:, 0]  # (steps, 1, batch, H) in ONNX
    np.testing.assert_allclose(got[0], y, rtol=1e-5, atol=1e-6)
    for g_state, w_state in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g_state, w_state[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["Sigmoid", "Relu"])
def test_recurrent_activations(activation):
    """The activations other than the defaults, against the CPU provider (onnx's evaluator
    knows Tanh alone)."""
    import ort_core as ort

    x, w, r, b = rand(3, 2, 4), rand(1, 3, 4), rand(1, 3, 3), rand(1, 6)
    model = _onnx_model("RNN", ["x", "w", "r", "b"], ["y", "yh"], opset=14, hidden_size=3,
                        activations=[activation])  # fmt: skip
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x, "w": w, "r": r, "b": b})
    got = milref.rnn(x, np.zeros((2, 3), np.float32), w[0], r[0], b[0, :3] + b[0, 3:],
                     output_sequence=True, activation=activation.lower())  # fmt: skip
    np.testing.assert_allclose(got[0], want[0][:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "data, indices, batch_dims",
    [((2, 3, 4), (5, 1), 0), ((2, 3, 4), (2, 5, 3), 0), ((3, 4), (2,), 0), ((2, 3, 4), (2, 1), 1),
     ((2, 3, 4, 5), (2, 3, 6, 1), 2), ((2, 3, 4, 5), (2, 7, 2), 1)],
)  # fmt: skip
def test_gather_nd(data, indices, batch_dims):
    """iOS 17's gather_nd against GatherND on indices in [0, dim); negative ones are out of
    bounds there (the builder wraps them), an error here."""
    x = rand(*data)
    k = indices[-1]
    idx = RNG.integers(0, data[batch_dims : batch_dims + k], size=indices).astype(np.int64)
    model = _onnx_model("GatherND", ["x", "i"], ["y"], opset=13, batch_dims=batch_dims)
    model.graph.input[1].type.tensor_type.elem_type = TensorProto.INT64
    want = ReferenceEvaluator(model).run(None, {"x": x, "i": idx})[0]
    got = milref.gather_nd(x, idx.astype(np.int32), batch_dims=np.int32(batch_dims))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    with pytest.raises(IndexError, match="outside"):
        milref.gather_nd(x, -1 - idx.astype(np.int32), batch_dims=np.int32(batch_dims))
