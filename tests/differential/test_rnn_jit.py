"""The CPU provider's compiled recurrent loop (``ort_cpu.kernels._rnn_jit``) and the numpy path
it replaces, both against onnxruntime: RNN, GRU and LSTM forward, reverse and bidirectional,
batch 1 and 3, sequence_lens, initial states, clip, linear_before_reset, peepholes,
input_forget, other activations, float64, layout 1 (compiled against numpy), a process with
compiled kernels turned off (``ORT_CPU_JIT=0``); and the Loop that runs a plain body as direct
numpy calls and the body's plan, against onnxruntime."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.differential.harness import assert_same, make_node_model, run_cpu, run_reference

from .test_rnn import N_OUT, _inputs

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

TOL = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Which path the recurrent kernels take: the compiled loop, or numpy (the fallback)."""
    from ort_cpu.kernels import _rnn_jit, rnn

    if request.param == "compiled":
        if _rnn_jit.compiled(np.float32) is None:
            pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    else:
        monkeypatch.setattr(rnn, "_compiled", lambda dtype: None)
    calls = []
    run_jit = rnn._Recurrent.run_jit

    def spy(self, *args):
        calls.append(self.op)
        return run_jit(self, *args)

    monkeypatch.setattr(rnn._Recurrent, "run_jit", spy)
    yield request.param
    assert bool(calls) == (request.param == "compiled"), calls


def _ort_run(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(op, inputs, attrs, opset=14, tol=TOL):
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, n_outputs=N_OUT[op])
    want = _ort_run(model, feeds)
    got = run_cpu(model, feeds)
    for i, (e, g) in enumerate(zip(want, got, strict=True)):
        assert g.dtype == e.dtype, f"{op} output {i}: {g.dtype} != {e.dtype}"
        assert_same(e, g, tol["rtol"], tol["atol"], f"{op} output {i}")


@pytest.mark.parametrize(
    "op,hidden,attrs",
    [
        ("LSTM", 70, {}),  # 280 gate columns: a whole tile and a partial one
        ("LSTM", 64, {"input_forget": 1}),  # 256: one whole tile
        ("GRU", 90, {}),  # its two products: 180 and 90 columns
        ("GRU", 90, {"linear_before_reset": 1}),
        ("RNN", 300, {}),
    ],
)
@pytest.mark.parametrize("lens", [False, True])
def test_wide_recurrences_on_the_register_tiles(op, hidden, attrs, lens, path):
    """Float32 widths whose gate columns span more than one of the compiled loop's register
    tiles (_rnn_jit.TILE_CELLS columns) and end in a partial vector, with peepholes, initial
    states and sequence_lens (entries that stop early), bidirectional; against onnxruntime
    (host logic on the compiled kernels, and the numpy path)."""
    from ort_cpu.kernels import _rnn_jit

    assert hidden * {"RNN": 1, "GRU": 3, "LSTM": 4}[op] >= _rnn_jit.TILE_CELLS
    inputs = _inputs(op, 4, 2, 5, hidden, "bidirectional", seed=hidden,
                     seq_lens=[4, 2] if lens else None)  # fmt: skip
    inputs[1], inputs[2] = inputs[1] * 0.2, inputs[2] * 0.1  # sums of many products: O(1)
    _check(op, inputs, dict(hidden_size=hidden, direction="bidirectional", **attrs))


@pytest.mark.parametrize(
    "op,seq,batch,size,hidden,direction",
    [
        ("LSTM", 1, 1, 129, 128, "forward"),  # a streaming VAD's step: 512 gate columns
        ("LSTM", 2, 2, 37, 70, "bidirectional"),  # 280 columns: a whole tile and a partial one
        ("GRU", 4, 1, 5, 90, "reverse"),
        ("RNN", 1, 3, 300, 9, "forward"),  # fewer columns than a vector
        ("LSTM", 5, 1, 16, 32, "forward"),  # past PROJECT_ROWS: numpy's product
    ],
)
def test_few_rows_project_in_the_compiled_loop(op, seq, batch, size, hidden, direction,
                                                monkeypatch):  # fmt: skip
    """Float32 nodes of at most PROJECT_ROWS rows (steps x entries) take their input
    projection from the compiled register tiles (:func:`._rnn_jit.project`, the bias its
    residual), larger ones from numpy's product: both against onnxruntime, with initial states
    and peepholes (host logic on the compiled kernels)."""
    from ort_cpu.kernels import _rnn_jit, rnn

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    calls = []
    real = _rnn_jit.warm_project

    def spy():
        fn = real()
        return lambda *args: (calls.append(args[0].shape), fn(*args))[1]

    monkeypatch.setattr(_rnn_jit, "warm_project", spy)
    inputs = _inputs(op, seq, batch, size, hidden, direction, seed=seq * 7 + hidden)
    inputs[1], inputs[2] = inputs[1] * (2 / size) ** 0.5, inputs[2] * (1 / hidden) ** 0.5
    _check(op, inputs, dict(hidden_size=hidden, direction=direction))
    directions = 2 if direction == "bidirectional" else 1
    want = [(seq * batch, size)] * directions if seq * batch <= rnn.PROJECT_ROWS else []
    assert calls == want


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("lens", [False, True])
def test_recurrent(op, direction, batch, lens, path):
    seq_lens = [5, 2, 4][:batch] if lens else None
    inputs = _inputs(op, 5, batch, 4, 6, direction, seed=batch, seq_lens=seq_lens)
    _check(op, inputs, dict(hidden_size=6, direction=direction))


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("missing", [(), ("h0", "c0"), ("bias",), ("peep",)])
def test_optional_inputs(op, missing, path):
    flags = {k: k not in missing for k in ("bias", "h0", "c0", "peep")}
    inputs = _inputs(op, 4, 2, 3, 5, "bidirectional", seed=3, **flags)
    _check(op, inputs, dict(hidden_size=5, direction="bidirectional"))


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(op, path):
    inputs = _inputs(op, 6, 2, 4, 5, "bidirectional", seed=5, seq_lens=[6, 3])
    _check(op, inputs, dict(hidden_size=5, direction="bidirectional", clip=0.4))


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_gru_linear_before_reset(linear_before_reset, direction, path):
    inputs = _inputs("GRU", 7, 3, 5, 8, direction, seed=7, seq_lens=[7, 1, 5])
    attrs = dict(hidden_size=8, direction=direction, linear_before_reset=linear_before_reset)
    _check("GRU", inputs, attrs)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_lstm_input_forget(direction, path):
    inputs = _inputs("LSTM", 5, 2, 3, 4, direction, seed=9)
    _check("LSTM", inputs, dict(hidden_size=4, direction=direction, input_forget=1))


ACTIVATIONS = {
    "RNN": [(["Relu"], [], []), (["LeakyRelu"], [0.1], []), (["ScaledTanh"], [1.5], [0.7])],
    "GRU": [
        (["HardSigmoid", "Softsign"], [0.3], [0.4]),
        (["Sigmoid", "Elu"], [0.9], []),
        (["Affine", "ThresholdedRelu"], [0.5, 0.2], [0.1]),
    ],
    "LSTM": [
        (["Sigmoid", "Softplus", "Relu"], [], []),
        (["HardSigmoid", "Tanh", "Affine"], [0.25, 0.8], [0.5, 0.1]),
    ],
}


@pytest.mark.parametrize(
    "op,case", [(op, k) for op, cases in ACTIVATIONS.items() for k in range(len(cases))]
)
def test_activations(op, case, path):
    names, alpha, beta = ACTIVATIONS[op][case]
    inputs = _inputs(op, 5, 2, 3, 4, "bidirectional", seed=11, seq_lens=[5, 3])
    attrs = dict(hidden_size=4, direction="bidirectional", activations=names * 2)
    if alpha:
        attrs["activation_alpha"] = alpha * 2
    if beta:
        attrs["activation_beta"] = beta * 2
    _check(op, inputs, attrs)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_float64(op, direction, path):
    """float64 (onnxruntime's CPU kernels take float only) against onnx's reference evaluator."""
    inputs = _inputs(op, 6, 2, 4, 5, direction, dtype=np.float64, seed=13)
    attrs = dict(hidden_size=5, direction=direction)
    model, feeds = make_node_model(op, inputs, attrs, opset=14, n_outputs=N_OUT[op])
    for i, (e, g) in enumerate(zip(run_reference(model, feeds), run_cpu(model, feeds))):
        assert_same(e, g, 1e-9, 1e-10, f"{op} output {i}")


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_layout_1_and_other_dtypes_match_numpy(op, dtype, monkeypatch):
    """layout 1 and float16 (onnxruntime runs neither): the compiled loop agrees with numpy."""
    from ort_cpu.kernels import _rnn_jit, rnn

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    inputs = _inputs(op, 5, 3, 4, 6, "bidirectional", layout=1, dtype=dtype, seed=17,
                     seq_lens=[5, 2, 4])  # fmt: skip
    attrs = dict(hidden_size=6, direction="bidirectional", layout=1, clip=2.0)
    model, feeds = make_node_model(op, inputs, attrs, opset=14, n_outputs=N_OUT[op])
    got = run_cpu(model, feeds)
    monkeypatch.setattr(rnn, "_compiled", lambda dt: None)
    want = run_cpu(model, feeds)
    tol = 1e-9 if dtype == np.float64 else (2e-3 if dtype == np.float16 else 1e-5)
    for i, (e, g) in enumerate(zip(want, got, strict=True)):
        assert g.dtype == e.dtype == dtype
        assert_same(e, g, tol, tol, f"{op} output {i}")


def test_weights_as_inputs_are_read_every_run(path):
    """Weights fed as graph inputs change between runs; constant ones are prepared once."""
    inputs = _inputs("LSTM", 4, 2, 3, 4, "forward", seed=19)
    model, feeds = make_node_model("LSTM", inputs, dict(hidden_size=4), opset=14, n_outputs=3)
    import ort_core

    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for scale in (1.0, 0.5):
        feeds = dict(feeds, x2=feeds["x2"] * np.float32(scale))
        for e, g in zip(ref.run(None, feeds), sess.run(None, feeds), strict=True):
            assert_same(e, g, TOL["rtol"], TOL["atol"])


def test_jit_off_in_a_fresh_process():
    """With ORT_CPU_JIT=0 the kernels keep their numpy path and give the same results."""
    code = (
        "import numpy as np\n"
        "from ort_cpu.kernels import _rnn_jit, rnn\n"
        "assert _rnn_jit.compiled(np.float32) is None\n"
        "from tests.differential.test_rnn import _inputs\n"
        "from tests.differential.harness import make_node_model, run_cpu\n"
        "inputs = _inputs('LSTM', 5, 2, 3, 4, 'bidirectional', seed=23, seq_lens=[5, 3])\n"
        "model, feeds = make_node_model('LSTM', inputs, dict(hidden_size=4,\n"
        "    direction='bidirectional'), opset=14, n_outputs=3)\n"
        "for k, y in enumerate(run_cpu(model, feeds)):\n"
        "    np.save(f'{OUT}/y{k}.npy', y)\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, ORT_CPU_JIT="0")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run(
            [sys.executable, "-c", f"OUT = {out!r}\n" + code], env=env, cwd=root, check=True
        )
        got = [np.load(os.path.join(out, f"y{k}.npy")) for k in range(3)]
    inputs = _inputs("LSTM", 5, 2, 3, 4, "bidirectional", seed=23, seq_lens=[5, 3])
    model, feeds = make_node_model(
        "LSTM", inputs, dict(hidden_size=4, direction="bidirectional"), opset=14, n_outputs=3
    )
    for e, g in zip(_ort_run(model, feeds), got, strict=True):
        assert_same(e, g, TOL["rtol"], TOL["atol"])


# --- Loop bodies run as direct numpy calls ---

F = TensorProto.FLOAT


def _elman_loop(extra_node: str | None = None, cond_from_body: bool = False):
    """A Loop over the rows of the outer ``frames``: h = tanh(x U + h W + b), scan output h."""
    rng = np.random.default_rng(29)
    consts = {
        "U": rng.standard_normal((4, 6)).astype(np.float32) * 0.5,
        "W": rng.standard_normal((6, 6)).astype(np.float32) * 0.5,
        "b": rng.standard_normal(6).astype(np.float32),
    }
    inits = [helper.make_tensor(k, F, v.shape, v.ravel()) for k, v in consts.items()]
    inits.append(helper.make_tensor("one", F, [], [1.0]))
    nodes = [
        helper.make_node("Gather", ["frames", "i"], ["x"], axis=0),
        helper.make_node("MatMul", ["x", "U"], ["xu"]),
        helper.make_node("Gemm", ["h", "W", "xu"], ["pre"]),
        helper.make_node("Add", ["pre", "b"], ["pb"]),
        helper.make_node("Tanh", ["pb"], ["t"]),
        helper.make_node("Identity", ["t"], ["y"]),
        helper.make_node("Add", ["acc", "one"], ["acc_out"]),  # 0-d arithmetic
    ]
    if extra_node:
        nodes.append(helper.make_node(extra_node, ["t"], ["h_out"]))
    else:
        nodes.append(helper.make_node("Identity", ["t"], ["h_out"]))
    if cond_from_body:
        nodes.append(helper.make_node("Less", ["acc_out", "limit"], ["cond_out"]))
        inits.append(helper.make_tensor("limit", F, [], [2.0]))
    else:
        nodes.append(helper.make_node("Identity", ["cond"], ["cond_out"]))
    body = helper.make_graph(
        nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h", F, [1, 6]),
            helper.make_tensor_value_info("acc", F, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", F, [1, 6]),
            helper.make_tensor_value_info("acc_out", F, []),
            helper.make_tensor_value_info("y", F, [1, 6]),
        ],
        inits,
    )
    loop = helper.make_node(
        "Loop", ["trips", "cond0", "h0", "acc0"], ["h_final", "acc_final", "ys"], body=body
    )
    graph = helper.make_graph(
        [loop],
        "g",
        [
            helper.make_tensor_value_info("trips", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond0", TensorProto.BOOL, []),
            helper.make_tensor_value_info("frames", F, [7, 1, 4]),
            helper.make_tensor_value_info("h0", F, [1, 6]),
            helper.make_tensor_value_info("acc0", F, []),
        ],
        [
            helper.make_tensor_value_info("h_final", F, None),
            helper.make_tensor_value_info("acc_final", F, None),
            helper.make_tensor_value_info("ys", F, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _loop_kernel_name(model) -> str:
    import ort_core

    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (step,) = [st for st in sess._plan.steps if st.node.op_type == "Loop"]
    return step.fn.__name__


@pytest.mark.parametrize(
    "extra_node,cond_from_body,direct",
    [(None, False, True), (None, True, False), ("Relu", False, True), ("Sigmoid", False, False)],
)
@pytest.mark.parametrize("trips", [0, 1, 7])
def test_loop_body(extra_node, cond_from_body, direct, trips):
    model = _elman_loop(extra_node, cond_from_body)
    rng = np.random.default_rng(31)
    feeds = {
        "trips": np.array(trips, np.int64),
        "cond0": np.array(True),
        "frames": rng.standard_normal((7, 1, 4)).astype(np.float32),
        "h0": rng.standard_normal((1, 6)).astype(np.float32),
        "acc0": np.array(0.5, np.float32),
    }
    assert _loop_kernel_name(model) == ("run_direct" if direct else "run")
    want = _ort_run(model, feeds)
    got = run_cpu(model, feeds)
    for i, (e, g) in enumerate(zip(want, got, strict=True)):
        if trips == 0 and i == 2:
            continue  # no iterations: the scan output is empty, its shape unknown
        assert_same(e, g, 1e-5, 1e-6, f"output {i}")
        assert isinstance(g, np.ndarray)


def test_clip_zero_rnn_clips_everything_and_gru_lstm_refuse_it():
    """onnxruntime's RNN accepts clip=0 (every pre-activation becomes 0); its GRU and LSTM
    refuse clip <= 0 at session creation. The compiled loop is not used for clip <= 0."""
    import onnxruntime as ort
    from onnx import helper

    import ort_core
    from ort_core.errors import InvalidArgument

    for op, gates in (("RNN", 1), ("GRU", 3), ("LSTM", 4)):
        node = helper.make_node(op, ["x", "w", "r"], ["y"], hidden_size=2, clip=0.0)
        vi = helper.make_tensor_value_info
        graph = helper.make_graph(
            [node], "g",
            [vi("x", 1, [1, 1, 2]), vi("w", 1, [1, 2 * gates, 2]), vi("r", 1, [1, 2 * gates, 2])],
            [vi("y", 1, None)],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        model.ir_version = 8
        data = model.SerializeToString()
        feeds = {k: np.full(s, 0.5, np.float32) for k, s in
                 (("x", (1, 1, 2)), ("w", (1, 2 * gates, 2)), ("r", (1, 2 * gates, 2)))}  # fmt: skip
        if op == "RNN":
            got = ort_core.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
                None, feeds
            )
            ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
            np.testing.assert_array_equal(got[0], ref[0])
        else:
            with pytest.raises(InvalidArgument, match="clip must be a positive threshold"):
                ort_core.InferenceSession(data, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("lens", [False, True])
def test_bidirectional_directions_run_at_once_on_two_threads(op, lens, monkeypatch):
    """Device: at two threads a bidirectional node's two directions are compiled pieces on the
    run's pool at once (kernels._rnn_pieces: peepholes, initial states, sequence_lens), with
    the one-thread bits; against onnxruntime."""
    from ort_cpu.kernels import _rnn_jit, rnn

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    monkeypatch.setattr(rnn, "DIRECTION_SPLIT_WORK", 0)
    inputs = _inputs(op, 9, 3, 5, 7, "bidirectional", seq_lens=[9, 4, 6] if lens else None)
    attrs = dict(hidden_size=7, direction="bidirectional")
    _check_shared_on_two_threads(op, inputs, attrs, monkeypatch)


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("RNN", {}),
        ("GRU", {"linear_before_reset": 1}),
        ("LSTM", {}),
        ("LSTM", {"input_forget": 1}),
    ],
)
@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("lens", [False, True])
def test_one_direction_shares_its_steps_on_two_threads(op, attrs, direction, lens, monkeypatch):
    """At two threads a single direction's steps are shared, half of the hidden units each
    (kernels._rnn_pieces.run_shared: an odd width, peepholes, initial states, sequence_lens),
    with the one-thread bits; against onnxruntime. GRU without linear_before_reset (whose
    h gate needs every unit's r first) stays on one thread."""
    from ort_cpu.kernels import _rnn_jit, rnn

    from .harness import run_one_and_two_threads

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    monkeypatch.setattr(rnn, "STEP_SPLIT_WORK", 0)
    # (three float32 entries would take one thread's tiles of several entries: their bits too)
    monkeypatch.setattr(rnn, "STEP_SPLIT_ENTRIES", 4)
    inputs = _inputs(op, 9, 3, 5, 7, direction, seed=4, seq_lens=[9, 4, 6] if lens else None)
    attrs = dict(hidden_size=7, direction=direction, **attrs)
    _check_shared_on_two_threads(op, inputs, attrs, monkeypatch)
    if op == "GRU":  # without linear_before_reset: not shared
        attrs["linear_before_reset"] = 0
        model, feeds = make_node_model(op, inputs, attrs, opset=14, n_outputs=N_OUT[op])
        assert (2, 2, True) not in run_one_and_two_threads(model, feeds, monkeypatch)[2]


def _check_shared_on_two_threads(op, inputs, attrs, monkeypatch):
    """The node's outputs at two threads, its work handed to the pool as two compiled pieces:
    the one-thread bits, and onnxruntime's within TOL."""
    from .harness import run_one_and_two_threads

    model, feeds = make_node_model(op, inputs, attrs, opset=14, n_outputs=N_OUT[op])
    one, two, handed = run_one_and_two_threads(model, feeds, monkeypatch)
    assert (2, 2, True) in handed
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(b, a)
    for e, g in zip(_ort_run(model, feeds), two, strict=True):
        assert_same(e, g, TOL["rtol"], TOL["atol"], op)


def test_shared_steps_take_over_a_half_whose_thread_never_starts():
    """Host logic: one thread running half 0 of a shared LSTM direction alone (the worker that
    should run half 1 never starts) takes half 1 over after its polls and finishes every step,
    with run_direction's bits; a thread starting half 1 afterwards finds it taken and returns."""
    from ort_cpu.kernels import _rnn_jit

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    from ort_cpu.kernels import _rnn_pieces as pieces

    rng = np.random.default_rng(8)
    n, seq, batch = 7, 6, 2
    xw = rng.standard_normal((seq, batch, 4 * n)).astype(np.float32)
    rt = (rng.standard_normal((n, 4 * n)) * 0.3).astype(np.float32)
    rb = rng.standard_normal(4 * n).astype(np.float32)
    p = rng.standard_normal(3 * n).astype(np.float32)
    h0 = rng.standard_normal((batch, n)).astype(np.float32)
    c0 = rng.standard_normal((batch, n)).astype(np.float32)
    lens = np.array([6, 3], np.int64)
    codes = np.array([2, 1, 1], np.int64)
    ab = np.zeros(3, np.float32)
    h1, c1, y1 = h0.copy(), c0.copy(), np.zeros((seq, batch, n), np.float32)
    run = _rnn_jit.run_direction.get()
    run(2, xw, rt, rb, p, h1, c1, lens, False, codes, ab, ab, np.float32(0), 1, y1)
    bounds = np.array([0, 3, n], np.int64)
    rtp = pieces.pack_halves(rt, 4, bounds)
    hb = np.stack([h0, h0])
    c2, y2 = c0.copy(), np.zeros((seq, batch, n), np.float32)
    sync = np.zeros(32, np.int64)
    args = (2, xw, rtp, rb, p, hb, c2, lens, False, codes, ab, ab, np.float32(0), 1, y2, sync)
    pieces.shared_steps(*args, bounds, seq, 0)
    assert sync[pieces.OWNER[1]] == 2  # taken over
    pieces.shared_steps(*args, bounds, seq, 1)  # returns at once
    np.testing.assert_array_equal(y2, y1)
    np.testing.assert_array_equal(hb[seq & 1], h1)
    np.testing.assert_array_equal(c2, c1)


@pytest.mark.parametrize(
    "op,seq,batch,attrs,peep",
    [
        ("LSTM", 1, 1, {}, False),  # a streaming VAD's step: the projection's tiles
        ("LSTM", 6, 2, {"direction": "reverse"}, False),  # numpy's product, reversed
        ("LSTM", 3, 1, {}, True),  # peepholes: the run_jit path every run
        ("GRU", 16, 1, {"linear_before_reset": 1}, False),
        ("GRU", 5, 2, {}, False),  # R^T split for r * h (flag 16)
        ("RNN", 4, 3, {}, False),
    ],
)
@pytest.mark.parametrize("states", [True, False])
def test_bound_call_of_one_direction(op, seq, batch, attrs, peep, states, monkeypatch):
    """From its second run, a one-direction node of constant weights without sequence lengths
    or peepholes runs through the call bound at the first (_Recurrent._bind): every run,
    with new inputs and initial states each time (or none), against onnxruntime; weights fed
    at run time, or peepholes, keep run_jit."""
    from ort_cpu.kernels import _rnn_jit, rnn

    import ort_core

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    calls = []
    real = rnn._Recurrent._bind

    def spy(self, *args):
        bound = real(self, *args)
        if not bound:
            return bound
        return (*bound[:4], lambda *a: (calls.append(1), bound[4](*a))[1])

    monkeypatch.setattr(rnn._Recurrent, "_bind", spy)
    hidden, size = 12, 7
    direction = attrs.get("direction", "forward")
    full = {"hidden_size": hidden, **attrs, "direction": direction}
    for weights_fed in (False, True):
        calls.clear()
        inputs = _inputs(op, seq, batch, size, hidden, direction, seed=seq + batch,
                         h0=states, c0=states, peep=peep)  # fmt: skip
        model, feeds = make_node_model(op, inputs, full, opset=14, n_outputs=N_OUT[op])
        if not weights_fed:  # W, R, B as initializers: constants to the kernel
            for name in ("x1", "x2", "x3"):
                model.graph.initializer.append(numpy_helper.from_array(feeds.pop(name), name))
            kept = [v for v in model.graph.input if v.name not in ("x1", "x2", "x3")]
            del model.graph.input[:]
            model.graph.input.extend(kept)
        blob = model.SerializeToString()
        ours = ort_core.InferenceSession(blob, providers=["CPUExecutionProvider"])
        ref = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(seq)
        for _ in range(3):
            fed = {k: (rng.standard_normal(v.shape) * 0.7).astype(v.dtype)
                   if k in ("x0", "x5", "x6") else v for k, v in feeds.items()}  # fmt: skip
            for i, (e, g) in enumerate(zip(ref.run(None, fed), ours.run(None, fed), strict=True)):
                assert_same(e, g, TOL["rtol"], TOL["atol"], f"{op} output {i}")
        assert len(calls) == (0 if weights_fed or peep else 2), (weights_fed, calls)


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("LSTM", {}),
        ("GRU", {"linear_before_reset": 1}),
        ("GRU", {}),  # its two products: 2n and n columns
        ("RNN", {}),
    ],
)
@pytest.mark.parametrize("hidden", [1, 37, 70])  # gate columns: under, past and across tiles
@pytest.mark.parametrize("batch", [2, 5, 9])  # a tile of entries and a partial one
def test_several_entries_take_tiles_of_entries(op, attrs, hidden, batch, monkeypatch):
    """Float32 nodes of _rnn_jit.BATCH_TILES entries or more sum h @ R^T in tiles of several
    entries (_rnn_jit._rows_tiles, R^T read once per tile of entries): each entry's outputs
    are, bit for bit, those of a run of that entry alone (the one-entry register tiles), with
    sequence_lens, initial states and both directions; against onnxruntime within TOL. (Both
    project their inputs row by row in the compiled loop, whose bits do not depend on the
    rows around them.)"""
    from ort_cpu.kernels import _rnn_jit, rnn

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    monkeypatch.setattr(rnn, "PROJECT_ROWS", 1 << 30)
    lens = [7, 3, 6, 1, 7, 5, 2, 7, 4][:batch]
    inputs = _inputs(op, 7, batch, 6, hidden, "bidirectional", seed=hidden + batch,
                     seq_lens=lens)  # fmt: skip
    inputs[1], inputs[2] = inputs[1] * 0.2, inputs[2] * 0.1  # sums of many products: O(1)
    attrs = dict(hidden_size=hidden, direction="bidirectional", **attrs)
    model, feeds = make_node_model(op, inputs, attrs, opset=14, n_outputs=N_OUT[op])
    got = run_cpu(model, feeds)
    for e, g in zip(_ort_run(model, feeds), got, strict=True):
        assert_same(e, g, TOL["rtol"], TOL["atol"], op)
    for b in range(batch):
        # X, W, R, B, sequence_lens, initial_h (, initial_c, P): entry b's
        one = list(inputs)
        one[0], one[4] = inputs[0][:, b : b + 1].copy(), inputs[4][b : b + 1].copy()
        for k in (5, 6) if op == "LSTM" else (5,):
            one[k] = inputs[k][:, b : b + 1].copy()
        alone = run_cpu(*make_node_model(op, one, attrs, opset=14, n_outputs=N_OUT[op]))
        np.testing.assert_array_equal(got[0][:, :, b : b + 1], alone[0])
        for g, a in zip(got[1:], alone[1:], strict=True):
            np.testing.assert_array_equal(g[:, b : b + 1], a)


@pytest.mark.parametrize("op,attrs", [("LSTM", {}), ("GRU", {}), ("RNN", {})])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("batch,lens", [(2, None), (5, [5, 2, 4, 1, 5]), (9, None)])
def test_one_direction_shares_its_entries_on_two_threads(op, attrs, direction, batch, lens,
                                                         monkeypatch):  # fmt: skip
    """At two threads a single float32 direction of several entries runs them in two halves
    at once (rnn._Recurrent._halves_at_once: each half's inputs and outputs copied apart,
    sequence_lens, initial states), with the one-thread bits; against onnxruntime."""
    from ort_cpu.kernels import _rnn_jit, rnn

    if _rnn_jit.compiled(np.float32) is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    monkeypatch.setattr(rnn, "DIRECTION_SPLIT_WORK", 0)
    ran = []
    halves = rnn._Recurrent._halves_at_once

    def spy(self, a):
        ran.append(halves(self, a))
        return ran[-1]

    monkeypatch.setattr(rnn._Recurrent, "_halves_at_once", spy)
    inputs = _inputs(op, 6, batch, 5, 7, direction, seed=batch, seq_lens=lens)
    attrs = dict(hidden_size=7, direction=direction, **attrs)
    _check_shared_on_two_threads(op, inputs, attrs, monkeypatch)
    assert ran and all(ran)
