"""Translation: the GridSample, Einsum, Range, LSTM/GRU/RNN, QuantizeLinear/DequantizeLinear,
GatherND and GroupNormalization builders. Each admitted case is one small model converted to an ML Program and evaluated by the MIL
reference runtime on Core ML alone, against onnx's ReferenceEvaluator (float32, and float16
compute precision where the op takes it); each refused case is given with the reason ``ort-core
inspect`` shows."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import ort_core as ort
from ort_core.ir import model_from_proto
from ort_core.provider import GraphView
from tests.conftest import make_model, tensor

from .harness import COREML, CPU, TOLERANCE, placement, session

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
F, I64, U8, I8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.UINT8, TensorProto.INT8
RNG = np.random.default_rng(23)


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def on_coreml(model, feed, precision="FLOAT32", atol=None, oracle=None):
    """Run ``model`` on Core ML alone (every node placed there) against the ReferenceEvaluator
    (on ``oracle``, an equal model, where the evaluator lacks the op's version)."""
    sess = session(model, {"ComputePrecision": precision}, fallback=False)
    assert placement(sess) == {COREML: len(model.graph.node)}
    got = sess.run(None, feed)
    if oracle == CPU:
        want = ort.InferenceSession(model.SerializeToString(), providers=[CPU]).run(None, feed)
    else:
        want = ReferenceEvaluator(oracle or model).run(None, feed)
    rtol, tol = TOLERANCE[precision]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        if atol == 0:  # bit for bit
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=tol if atol is None else atol)


def refusals(model) -> dict[str, str]:
    """Core ML's reason per refused node (node name or op type -> reason), as inspect shows."""
    from ort_coreml.provider import CoreMLExecutionProvider

    m = model_from_proto(model)
    view = GraphView(m.graph, m.opset_imports)
    CoreMLExecutionProvider({}).get_capability(view)
    by_id = {id(n): n for n in m.graph.nodes}
    return {
        by_id[k].name or by_id[k].op_type: r[0].split(": ", 1)[1] for k, r in view.reasons.items()
    }


def one_node(op, inputs, outputs, inits=(), opset=17, **attrs):
    node = helper.make_node(op, [i[0] for i in inputs], [o[0] for o in outputs], **attrs)
    return make_model(
        [node],
        [tensor(n, t, s) for n, t, s in inputs if n not in {i.name for i in inits}],
        [tensor(n, t, s) for n, t, s in outputs],
        inits,
        opset=opset,
    )


# -- GridSample -------------------------------------------------------------------------------


def grid_model(mode, padding, align, opset=16, x_shape=(2, 3, 5, 6), grid_shape=(2, 4, 7, 2)):
    return one_node("GridSample", [("x", F, list(x_shape)), ("g", F, list(grid_shape))],
                    [("y", F, None)], opset=opset, mode=mode, padding_mode=padding,
                    align_corners=align)  # fmt: skip


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode, opset", [("bilinear", 16), ("nearest", 16), ("linear", 20)])
def test_grid_sample(mode, opset, padding, align):
    # grid values reach past [-1, 1] (padding) and avoid nearest's rounding ties
    grid = RNG.uniform(-1.6, 1.6, (2, 4, 7, 2)).astype(np.float32)
    feed = {"x": rand(2, 3, 5, 6), "g": grid}
    # onnx's evaluator knows opset 20's names only ("bilinear" is "linear" there)
    oracle = grid_model("linear" if mode == "bilinear" else mode, padding, align, 20)
    on_coreml(grid_model(mode, padding, align, opset), feed, oracle=oracle)


@pytest.mark.usefixtures("reference")
def test_grid_sample_float16():
    feed = {"x": rand(1, 2, 4, 4), "g": RNG.uniform(-1.2, 1.2, (1, 3, 3, 2)).astype(np.float32)}
    model = grid_model("linear", "border", 0, 20, x_shape=(1, 2, 4, 4), grid_shape=(1, 3, 3, 2))
    on_coreml(model, feed, "FLOAT16")


@pytest.mark.parametrize(
    "model, reason",
    [
        (grid_model("bicubic", "zeros", 0), "bilinear or nearest only"),
        (grid_model("cubic", "zeros", 0, opset=20), "bilinear or nearest only"),
        (grid_model("linear", "zeros", 0, opset=20, x_shape=(1, 1, 3, 4, 5),
                    grid_shape=(1, 2, 2, 2, 3)), "4-D (N, C, H, W) only"),
    ],
    ids=["bicubic", "cubic", "volumetric"],
)  # fmt: skip
def test_grid_sample_refused(model, reason):
    assert reason in refusals(model)["GridSample"]


# -- Einsum -----------------------------------------------------------------------------------

EINSUM = [
    ("bij,bjk->bik", [(3, 2, 4), (3, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->i", [(3, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),  # implicit output, broadcast batch
    ("nchw,nwhu->nchu", [(2, 3, 4, 5), (2, 5, 4, 6)]),  # MIL einsum's own family
    ("chw,whr->chr", [(3, 4, 5), (5, 4, 2)]),
    ("abc,cd->", [(2, 3, 4), (4, 5)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ab,cb->ca", [(3, 1), (4, 6)]),  # a contracted letter of size 1 on one side
]


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("precision", ["FLOAT32", "FLOAT16"])
@pytest.mark.parametrize("equation, shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(equation, shapes, precision):
    names = [f"x{i}" for i in range(len(shapes))]
    model = one_node("Einsum", [(n, F, list(s)) for n, s in zip(names, shapes)], [("y", F, None)],
                     opset=12, equation=equation)  # fmt: skip
    on_coreml(model, {n: rand(*s) for n, s in zip(names, shapes)}, precision)


def test_einsum_uses_mil_einsum_for_its_family():
    from ort_coreml.builders.einsum import _mil_einsum

    assert _mil_einsum("abcd", "adce", "abce", (2, 3, 4, 5), (2, 5, 4, 6)) == "nchw,nwhu->nchu"
    assert _mil_einsum("abcd", "adce", "abce", (1, 3, 4, 5), (2, 5, 4, 6)) is None  # broadcast
    assert _mil_einsum("abc", "bcd", "acd", (3, 4, 5), (4, 5, 2)) is None


@pytest.mark.parametrize(
    "equation, shapes, reason",
    [
        ("ii->i", [(3, 3)], "repeats a letter (a diagonal)"),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "3 operands"),
    ],
)
def test_einsum_refused(equation, shapes, reason):
    names = [f"x{i}" for i in range(len(shapes))]
    model = one_node("Einsum", [(n, F, list(s)) for n, s in zip(names, shapes)], [("y", F, None)],
                     opset=12, equation=equation)  # fmt: skip
    assert reason in refusals(model)["Einsum"]


# -- Range ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("start, limit, delta, elem",
                         [(1.0, 4.5, 0.75, F), (10, -3, -4, I64), (2, 9, 3, TensorProto.INT32)])  # fmt: skip
def test_range_with_constant_bounds(start, limit, delta, elem):
    dt = helper.tensor_dtype_to_np_dtype(elem)
    inits = [_init(n, np.array(v, dt)) for n, v in (("s", start), ("l", limit), ("d", delta))]
    nodes = [helper.make_node("Range", ["s", "l", "d"], ["r"]),
             helper.make_node("Add", ["r", "x"], ["y"])]  # fmt: skip
    model = make_model(nodes, [tensor("x", elem, [1])], [tensor("y", elem, None)], inits, opset=11)
    so_level = {"x": np.ones(1, dt)}
    # constant folding would compute Range before partitioning: run without it
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=[COREML])
    assert placement(sess) == {COREML: 2}
    (got,) = sess.run(None, so_level)
    (want,) = ReferenceEvaluator(model).run(None, so_level)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_range_with_bounds_fed_at_run_time_is_refused():
    model = one_node("Range", [("s", F, []), ("l", F, []), ("d", F, [])], [("r", F, None)],
                     opset=11)  # fmt: skip
    assert "must be a constant for Core ML" in refusals(model)["Range"]


# -- LSTM, GRU, RNN ---------------------------------------------------------------------------


def rnn_model(op, direction="forward", layout=0, hidden=4, steps=3, batch=2, size=5,
              initial=True, outputs=None, bias=True, rbh=None, **attrs):  # fmt: skip
    """One recurrent node with random constant W, R, B. GRU's new-gate recurrent bias Rbh is
    zero with ``linear_before_reset=1`` (so MIL's gru can run it) unless ``rbh`` is True."""
    d = 2 if direction == "bidirectional" else 1
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    inits = [_init("W", rand(d, gates * hidden, size, scale=0.5)),
             _init("R", rand(d, gates * hidden, hidden, scale=0.5))]  # fmt: skip
    names = ["x", "W", "R"]
    b = rand(d, 2 * gates * hidden, scale=0.5)
    if op == "GRU" and not (rbh if rbh is not None else not attrs.get("linear_before_reset")):
        b[:, 5 * hidden :] = 0  # Core ML's gru has no recurrent bias of the new gate
    names.append("B" if bias else "")
    if bias:
        inits.append(_init("B", b))
    state = [d, batch, hidden] if not layout else [batch, d, hidden]
    x = [steps, batch, size] if not layout else [batch, steps, size]
    inputs = [tensor("x", shape=x)]
    feed = {"x": rand(*x)}
    if initial:
        names += ["", "h0"] + (["c0"] if op == "LSTM" else [])
        inputs.append(tensor("h0", shape=state))
        feed["h0"] = rand(*state)
        if op == "LSTM":
            inits.append(_init("c0", rand(*state)))
    outs = outputs or (["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"])
    node = helper.make_node(op, names, outs, hidden_size=hidden, direction=direction,
                            **({"layout": layout} if layout else {}), **attrs)  # fmt: skip
    model = make_model([node], inputs, [tensor(o, shape=None) for o in outs if o], inits,
                       opset=14)  # fmt: skip
    return model, feed


RECURRENT = [
    ("LSTM", "forward", 0, {}),
    ("LSTM", "reverse", 0, {}),
    ("LSTM", "bidirectional", 0, {}),
    ("LSTM", "forward", 1, {}),
    ("LSTM", "bidirectional", 1, {"activations": ["Sigmoid", "Relu", "Tanh"] * 2}),
    ("GRU", "forward", 0, {"linear_before_reset": 1}),
    ("GRU", "bidirectional", 1, {"linear_before_reset": 1}),
    ("GRU", "reverse", 0, {"linear_before_reset": 1, "activations": ["Sigmoid", "Relu"]}),
    ("RNN", "forward", 0, {}),
    ("RNN", "bidirectional", 0, {"activations": ["Relu", "Tanh"]}),
    ("RNN", "reverse", 1, {}),
]


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("op, direction, layout, attrs", RECURRENT,
                         ids=[f"{o}-{d}-layout{lay}-{i}" for i, (o, d, lay, _) in
                              enumerate(RECURRENT)])  # fmt: skip
def test_recurrent(op, direction, layout, attrs):
    model, feed = rnn_model(op, direction, layout, **attrs)
    # onnx's evaluator ignores (LSTM, GRU) or lacks (Relu) the activations attribute: the CPU
    # provider is the oracle there
    on_coreml(model, feed, oracle=CPU if "activations" in attrs else None)


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_defaults_and_single_outputs(op):
    """No bias, no initial state, only Y_h asked for; float16 compute."""
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    model, feed = rnn_model(op, initial=False, bias=False, outputs=["", "yh"], **extra)
    on_coreml(model, feed)
    on_coreml(model, feed, "FLOAT16")


def _lstm_with(names_extra, inits_extra, **attrs):
    model, _ = rnn_model("LSTM", initial=False, **attrs)
    node = model.graph.node[0]
    del node.input[:]
    node.input.extend(["x", "W", "R", "B"] + names_extra)
    model.graph.initializer.extend(inits_extra)
    return model


@pytest.mark.parametrize(
    "model, reason",
    [
        (rnn_model("LSTM", clip=3.0)[0], "clip: ONNX clips the gates' inputs"),
        (rnn_model("RNN", activations=["Softsign"])[0], "activation Softsign"),
        (rnn_model("LSTM", input_forget=1)[0], "input_forget=1"),
        (_lstm_with(["L"], [_init("L", np.array([3, 2], np.int32))]), "sequence_lens shorter"),
        (_lstm_with(["", "", "", "P"], [_init("P", rand(1, 12))]), "peepholes"),
    ],
    ids=["lstm-clip", "rnn-softsign", "lstm-input-forget",
         "sequence-lens", "peepholes"],
)  # fmt: skip
def test_recurrent_refused(model, reason):
    (got,) = refusals(model).values()
    assert reason in got, got


@pytest.mark.usefixtures("reference")
def test_lstm_full_sequence_lens_and_zero_peepholes_are_taken():
    model = _lstm_with(["L", "", "", "P"], [_init("L", np.array([3, 3], np.int32)),
                                            _init("P", np.zeros((1, 12), np.float32))])  # fmt: skip
    on_coreml(model, {"x": rand(3, 2, 5)})


# GRUs beyond MIL's gru (linear_before_reset=0, ONNX's default, or a non-zero new-gate recurrent
# bias Rbh), unrolled over their steps: each direction and layout, with and without initial state
GRU_UNROLLED = [
    ("forward", 0, {}),
    ("reverse", 0, {}),
    ("bidirectional", 0, {}),
    ("forward", 1, {}),
    ("reverse", 1, {}),
    ("bidirectional", 1, {}),
    ("forward", 0, {"initial": False, "bias": False}),
    ("bidirectional", 1, {"initial": False, "steps": 1}),
    ("forward", 0, {"linear_before_reset": 1, "rbh": True}),
    ("bidirectional", 1, {"linear_before_reset": 1, "rbh": True}),
    ("reverse", 0, {"outputs": ["y"]}),
    ("reverse", 1, {"outputs": ["", "yh"], "steps": 6}),
]


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("direction, layout, kw", GRU_UNROLLED,
                         ids=[f"{d}-layout{lay}-{i}" for i, (d, lay, _) in
                              enumerate(GRU_UNROLLED)])  # fmt: skip
def test_gru_unrolled(direction, layout, kw):
    model, feed = rnn_model("GRU", direction, layout, **kw)
    on_coreml(model, feed)
    on_coreml(model, feed, oracle=CPU)


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize(
    "acts", [["Relu", "Tanh"], ["Sigmoid", "Relu", "Tanh", "Sigmoid"]], ids=["relu-f", "per-dir"]
)
def test_gru_unrolled_activations(acts):
    # the evaluator ignores GRU's activations: the CPU provider is the oracle
    direction = "forward" if len(acts) == 2 else "bidirectional"
    model, feed = rnn_model("GRU", direction, activations=acts)
    on_coreml(model, feed, oracle=CPU)


@pytest.mark.usefixtures("reference")
def test_gru_unrolled_float16():
    model, feed = rnn_model("GRU", "bidirectional")
    on_coreml(model, feed, "FLOAT16")


def _program_ops(model, tmp_path) -> set[str]:
    from ort_coreml.convert import load_program

    session(model, {"ModelCacheDirectory": str(tmp_path)}, fallback=False)
    (pkg,) = [p for p in tmp_path.iterdir() if p.suffix == ".mlpackage"]
    return {op.op_type for op in load_program(str(pkg)).functions["main"].operations}


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize(
    "kw, mil_gru",
    [({"linear_before_reset": 1}, True), ({"linear_before_reset": 1, "rbh": True}, False),
     ({}, False)],
    ids=["mil-gru", "rbh-unrolled", "lbr0-unrolled"],
)  # fmt: skip
def test_gru_unrolled_only_beyond_mil_gru(kw, mil_gru, tmp_path):
    ops = _program_ops(rnn_model("GRU", **kw)[0], tmp_path)
    assert ("gru" in ops) == mil_gru
    assert ("matmul" in ops) != mil_gru


def _dynamic_steps(model, layout=0):
    dim = model.graph.input[0].type.tensor_type.shape.dim[1 if layout else 0]
    dim.ClearField("dim_value")
    dim.dim_param = "steps"
    return model


@pytest.mark.parametrize(
    "model, reason",
    [
        (_dynamic_steps(rnn_model("GRU")[0]), "needs a static sequence length"),
        (_dynamic_steps(rnn_model("GRU", layout=1, linear_before_reset=1, rbh=True)[0], 1),
         "needs a static sequence length"),
        (rnn_model("GRU", steps=513)[0], "513 steps are more than the 512"),
    ],
    ids=["dynamic-steps", "dynamic-steps-rbh-layout1", "too-many-steps"],
)  # fmt: skip
def test_gru_unrolled_refused(model, reason):
    (got,) = refusals(model).values()
    assert reason in got, got


def test_gru_limits_apply_only_when_unrolled():
    assert refusals(rnn_model("GRU", steps=512)[0]) == {}
    assert refusals(rnn_model("GRU", steps=513, linear_before_reset=1)[0]) == {}
    assert refusals(_dynamic_steps(rnn_model("GRU", linear_before_reset=1)[0])) == {}


# -- QuantizeLinear -> DequantizeLinear -------------------------------------------------------


def qdq_model(zp_type=U8, axis=None, scale=(0.05,), zp=(128,), opset=19):
    """x -> Neg -> QuantizeLinear -> DequantizeLinear -> Abs -> y (the 8-bit value inside)."""
    dt = helper.tensor_dtype_to_np_dtype(zp_type)
    inits = [_init("s", np.array(scale, np.float32).reshape(-1 if len(scale) > 1 else ())),
             _init("z", np.array(zp, dt).reshape(-1 if len(zp) > 1 else ()))]  # fmt: skip
    kw = {} if axis is None else {"axis": axis}
    nodes = [
        helper.make_node("Neg", ["x"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["q"], **kw),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], **kw),
        helper.make_node("Abs", ["dq"], ["y"]),
    ]
    return make_model(nodes, [tensor("x", shape=[2, 3, 4])], [tensor("y", shape=None)], inits,
                      opset=opset)  # fmt: skip


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize(
    "zp_type, axis, scale, zp",
    [(U8, None, (0.05,), (128,)), (I8, None, (0.02,), (-3,)), (U8, 1, (0.01, 0.1, 0.5), (0, 7, 250)),
     (I8, -1, (0.03, 0.5, 0.01, 1.0), (0, 1, -1, 127))],
    ids=["uint8", "int8", "uint8-per-axis", "int8-per-last-axis"],
)  # fmt: skip
def test_quantize_dequantize_pair_is_bit_exact(zp_type, axis, scale, zp):
    model = qdq_model(zp_type, axis, scale, zp)
    x = rand(2, 3, 4, scale=4.0)
    # exact ties (k + 0.5) * scale and values past the 8-bit range: round half to even, saturate
    x.flat[:6] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0], np.float32) * np.float32(scale[0])
    on_coreml(model, {"x": -x}, atol=0)


@pytest.mark.usefixtures("reference")
def test_dequantize_of_a_constant_weight():
    w = RNG.integers(-128, 128, (4, 3)).astype(np.int8)
    inits = [_init("w", w), _init("s", np.array(0.1, np.float32)), _init("z", np.array(2, np.int8))]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wf"]),
             helper.make_node("MatMul", ["x", "wf"], ["y"])]  # fmt: skip
    model = make_model(nodes, [tensor("x", shape=[2, 4])], [tensor("y", shape=None)], inits,
                       opset=19)  # fmt: skip
    opts = ort.SessionOptions()  # keep the DequantizeLinear (constant folding would fold it)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=[COREML, CPU])
    assert placement(sess) == {COREML: 2}
    feed = {"x": rand(2, 4)}
    np.testing.assert_allclose(sess.run(None, feed)[0], ReferenceEvaluator(model).run(None, feed)[0],
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_lone_quantize_and_dequantize_at_the_partition_edge_are_refused():
    q = one_node("QuantizeLinear", [("x", F, [3]), ("s", F, []), ("z", U8, [])], [("q", U8, [3])],
                 [_init("s", np.array(0.1, np.float32)), _init("z", np.array(0, np.uint8))],
                 opset=13)  # fmt: skip
    assert "cannot return 8-bit tensors" in refusals(q)["QuantizeLinear"]
    dq = one_node("DequantizeLinear", [("q", U8, [3]), ("s", F, []), ("z", U8, [])],
                  [("y", F, [3])], [_init("s", np.array(0.1, np.float32)),
                                    _init("z", np.array(0, np.uint8))], opset=13)  # fmt: skip
    assert "cannot take 8-bit tensors" in refusals(dq)["DequantizeLinear"]


def test_quantize_read_by_other_than_dequantize_is_refused_and_its_pair_too():
    model = qdq_model()
    model.graph.node.append(helper.make_node("Cast", ["q"], ["qi"], to=TensorProto.INT32))
    model.graph.output.append(tensor("qi", TensorProto.INT32, None))
    got = refusals(model)
    assert "read outside a DequantizeLinear" in got["QuantizeLinear"]
    assert "cannot take 8-bit tensors" in got["DequantizeLinear"]


def test_block_quantization_is_refused():
    model = one_node("QuantizeLinear", [("x", F, [2, 4]), ("s", F, [2, 2])], [("q", I8, [2, 4])],
                     [_init("s", np.full((2, 2), 0.1, np.float32))], opset=21, block_size=2,
                     axis=1, output_dtype=I8)  # fmt: skip
    assert "block quantization" in refusals(model)["QuantizeLinear"]


# -- GatherND ---------------------------------------------------------------------------------

GATHER_ND = [
    # data shape, indices shape, batch_dims, opset
    ((2, 3, 4), (5, 1), 0, 11),  # slices of rank 2
    ((2, 3, 4), (5, 2), 0, 12),  # rows
    ((2, 3, 4), (2, 5, 3), 0, 13),  # scalars
    ((3, 4), (2,), 0, 13),  # one scalar: a rank-0 output
    ((2, 3, 4), (2, 1), 1, 12),  # batch_dims 1, a row per batch
    ((2, 3, 4, 5), (2, 3, 6, 1), 2, 13),  # batch_dims 2
    ((2, 3, 4, 5), (2, 7, 2), 1, 13),
]


def gather_nd_model(data, indices, batch_dims=0, opset=13, elem=F, idx_elem=I64, inits=()):
    kw = {"batch_dims": batch_dims} if batch_dims else {}
    return one_node("GatherND", [("x", elem, list(data)), ("i", idx_elem, list(indices))],
                    [("y", elem, None)], inits, opset=opset, **kw)  # fmt: skip


def nd_indices(data, indices, batch_dims, negative=True):
    """Random indices into the axes ``indices`` address, every other one negative (ONNX's
    ``-dim <= i < 0``) where ``negative``."""
    k = indices[-1]
    dims = np.array(data[batch_dims : batch_dims + k])
    idx = RNG.integers(0, dims, size=indices)
    if negative:
        flip = (np.arange(idx.size) % 2 == 0).reshape(indices)
        idx = np.where(flip, idx - dims, idx)
    return idx.astype(np.int64)


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("data, indices, batch_dims, opset", GATHER_ND,
                         ids=[f"{d}-{i}-b{b}-v{o}" for d, i, b, o in GATHER_ND])  # fmt: skip
def test_gather_nd(data, indices, batch_dims, opset):
    idx = nd_indices(data, indices, batch_dims)
    assert (idx < 0).any()
    model = gather_nd_model(data, indices, batch_dims, opset)
    on_coreml(model, {"x": rand(*data), "i": idx}, atol=0)


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("idx_elem", [I64, TensorProto.INT32])
def test_gather_nd_constant_indices_and_integer_data(idx_elem):
    """Constant (int64 and int32) indices, wrapped on the host; int64 and float16 data."""
    data, indices = (2, 3, 4), (2, 3, 2)
    dt = helper.tensor_dtype_to_np_dtype(idx_elem)
    idx = nd_indices(data, indices, 1).astype(dt)
    for elem in (I64, TensorProto.FLOAT16):
        x = RNG.integers(-50, 50, data).astype(helper.tensor_dtype_to_np_dtype(elem))
        model = gather_nd_model(data, indices, 1, elem=elem, idx_elem=idx_elem,
                                inits=[_init("i", idx)])  # fmt: skip
        on_coreml(model, {"x": x}, atol=0)


@pytest.mark.usefixtures("reference")
def test_gather_nd_float16_compute():
    data, indices = (3, 4, 5), (3, 6, 1)
    model = gather_nd_model(data, indices, 1)
    on_coreml(model, {"x": rand(*data), "i": nd_indices(data, indices, 1)}, "FLOAT16")


@pytest.mark.parametrize(
    "model, reason",
    [
        (gather_nd_model((2, 3), (2, 2), elem=TensorProto.BOOL), "GatherND on bool"),
        (gather_nd_model((2, 3), (2, 1), batch_dims=2), "batch_dims 2 must be below"),
        (gather_nd_model((2, 3), (2, 3), batch_dims=0), "exceeds the data's rank 2"),
        (gather_nd_model((2, 3, 4), (3, 1), batch_dims=1), "(batch) dimensions of data and"),
    ],
    ids=["bool-data", "batch-dims-rank", "indices-too-deep", "batch-dims-differ"],
)
def test_gather_nd_refused(model, reason):
    assert reason in refusals(model)["GatherND"]


# -- GroupNormalization -----------------------------------------------------------------------


def group_norm_model(shape, groups, opset=21, elem=F, const=True, stash_type=None, **attrs):
    """GroupNormalization with scale and bias per channel (opset 21) or per group (opset 18),
    constant or fed; returns the model and its feed."""
    dt = helper.tensor_dtype_to_np_dtype(elem)
    n = shape[1] if opset >= 21 else groups
    # data of its own generator, the same whatever ran before (the module's generator gave a
    # group of two nearly equal values, whose normalization rounding decides, in some orders)
    gen = np.random.default_rng([*shape, groups, opset, int(const)])

    def rand(*dims, scale=1.0):
        return (gen.standard_normal(dims) * scale).astype(np.float32)

    scale, bias = (rand(n) + 1.5).astype(dt), rand(n).astype(dt)
    if stash_type is not None:
        attrs["stash_type"] = stash_type
    inits = [_init("s", scale), _init("b", bias)] if const else []
    model = one_node("GroupNormalization", [("x", elem, list(shape)), ("s", elem, [n]),
                                            ("b", elem, [n])],
                     [("y", elem, None)], inits, opset=opset, num_groups=groups, **attrs)  # fmt: skip
    feed = {"x": (rand(*shape, scale=3.0) + 2.0).astype(dt)}
    if not const:
        feed.update(s=scale, b=bias)
    return model, feed


GROUP_NORM = [
    # shape, num_groups, attributes
    ((2, 6, 4, 5), 3, {}),
    ((2, 6, 4, 5), 6, {"epsilon": 1e-2}),  # one channel per group: instance normalization
    ((1, 8, 7), 2, {}),
    ((3, 4), 2, {}),  # no spatial axes
    ((1, 6, 2, 3, 4), 2, {"epsilon": 0.5}),  # 5-D: spatial axes merged
    ((2, 4, 3, 3), 1, {}),  # one group: layer normalization over (C, H, W)
]


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("const", [True, False], ids=["constant", "fed"])
@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("shape, groups, attrs", GROUP_NORM,
                         ids=[f"{s}-g{g}" for s, g, _ in GROUP_NORM])  # fmt: skip
def test_group_norm(shape, groups, attrs, opset, const):
    model, feed = group_norm_model(shape, groups, opset, const=const, **attrs)
    on_coreml(model, feed)


@pytest.mark.usefixtures("reference")
def test_group_norm_opset_18_scales_per_group():
    """Opset 18's scale and bias hold one value per group: each group's channels share them
    (the same model read as opset 21 would need six)."""
    model, feed = group_norm_model((1, 6, 2, 2), 3, 18)
    on_coreml(model, feed)
    scale = numpy_helper.to_array(model.graph.initializer[0])
    per_channel = one_node(
        "GroupNormalization", [("x", F, [1, 6, 2, 2]), ("s", F, [6]), ("b", F, [6])],
        [("y", F, None)], [_init("s", np.repeat(scale, 2)),
                           _init("b", np.repeat(numpy_helper.to_array(model.graph.initializer[1]), 2))],
        opset=21, num_groups=3)  # fmt: skip
    on_coreml(model, feed, oracle=per_channel)


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("opset", [18, 21])
def test_group_norm_float16(opset):
    """float16 compute precision (the statistics too), and a float16 input (statistics in
    float32, stash_type=1), against the evaluator and the CPU provider."""
    model, feed = group_norm_model((2, 6, 4, 5), 3, opset)
    on_coreml(model, feed, "FLOAT16")
    model, feed = group_norm_model((2, 6, 4, 5), 2, opset, elem=TensorProto.FLOAT16)
    on_coreml(model, feed, "FLOAT16")
    on_coreml(model, feed, "FLOAT16", oracle=CPU)


@pytest.mark.usefixtures("reference")
def test_group_norm_float16_input_statistics_in_float32(tmp_path):
    """A float16 input is normalized in float32 (stash_type=1): the program casts to float32
    before the reduction and back after it."""
    from ort_coreml.convert import load_program

    model, feed = group_norm_model((1, 4, 3, 3), 2, elem=TensorProto.FLOAT16)
    # ONNX rounds to float16 after normalizing, scaling and shifting, the program once at the
    # end: they differ by float16's spacing
    on_coreml(model, feed, atol=5e-3)
    session(model, {"ModelCacheDirectory": str(tmp_path)}, fallback=False)
    (pkg,) = [p for p in tmp_path.iterdir() if p.suffix == ".mlpackage"]
    from coremltools.converters.mil.mil import types

    ops = load_program(str(pkg)).functions["main"].operations
    assert {types.builtin_to_string(op.x.dtype) for op in ops if op.op_type == "reduce_mean"} == {
        "fp32"
    }


@pytest.mark.parametrize(
    "model, reason",
    [
        (group_norm_model((1, 6, 2, 2), 4)[0], "6 channels do not split into 4 groups"),
        (group_norm_model((1, 4, 2, 2), 2, stash_type=10)[0], "stash_type 10: the statistics"),
        (group_norm_model((1, 4, 200, 10, 10), 2)[0], "merged hold 20000 > 16384"),
    ],
    ids=["channels-groups", "stash-type", "5d-spatial"],
)
def test_group_norm_refused(model, reason):
    assert reason in refusals(model)["GroupNormalization"]


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3, 7)])
def test_batch_norm_float16_input(shape):
    """A float16 BatchNormalization converts (applied in float32, cast back: coremltools' own
    pass rejects the float16 per-channel mul and add it would otherwise fuse) and agrees with
    the evaluator and the CPU provider within float16's spacing."""
    rng = np.random.default_rng(len(shape))
    h = TensorProto.FLOAT16
    stats = {n: (rng.random(3) + 0.5).astype(np.float16) for n in ("s", "b", "m", "v")}
    model = one_node(
        "BatchNormalization", [("x", h, list(shape))] + [(n, h, [3]) for n in stats],
        [("y", h, None)], [_init(n, v) for n, v in stats.items()], opset=15,
    )  # fmt: skip
    feed = {"x": rng.standard_normal(shape).astype(np.float16)}
    on_coreml(model, feed, atol=5e-3)
    on_coreml(model, feed, "FLOAT16", oracle=CPU, atol=5e-3)
