"""The OpenVINO provider's run path and placement heuristics: a model OpenVINO takes whole is one
compiled call per run whose inputs are shared, never copied, and whose outputs belong to the
caller; tiny clusters in models other providers run parts of stay on the next provider; a Loop
whose body OpenVINO takes is claimed whole."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort

from .models import CPU, OV, cnn, mlp, placement, skip_unless_openvino, transformer_block

pytestmark = skip_unless_openvino()


def _compiled_steps(sess) -> list:
    from ort_openvino.kernel import CompiledSubgraph

    return [s.fn for s in sess._plan.steps if isinstance(s.fn, CompiledSubgraph)]


def _x(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_whole_model_is_one_partition_on_the_fast_path():
    data = transformer_block().SerializeToString()
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    assert list(placement(sess)) == [OV]
    (fn,) = _compiled_steps(sess)
    assert len(sess._plan.steps) == 1 and fn._fast is not None
    for shape in [(1, 5, 16), (2, 9, 16)]:
        x = _x(shape)
        np.testing.assert_allclose(
            sess.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5
        )


def test_fast_path_results_match_onnxruntime():
    onnxruntime = pytest.importorskip("onnxruntime")
    data = mlp().SerializeToString()
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    ref = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = _x((4, 16))
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6
    )


def test_outputs_are_not_overwritten_by_the_next_run_nor_alias_inputs():
    sess = ort.InferenceSession(mlp().SerializeToString(), providers=[OV, CPU])
    a, b = _x((3, 16), 1), _x((3, 16), 2)
    first = sess.run(None, {"x": a})[0]
    kept = first.copy()
    second = sess.run(None, {"x": b})[0]
    np.testing.assert_array_equal(first, kept)
    assert not np.shares_memory(first, second)
    assert not np.shares_memory(first, a)
    first[...] = 0  # the caller owns it: writing it changes nothing for the next run
    np.testing.assert_array_equal(sess.run(None, {"x": b})[0], second)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: np.asfortranarray(x),  # not C-contiguous
        lambda x: np.repeat(x, 2, axis=1)[:, ::2],  # a strided view
        lambda x: _read_only(x),
    ],
    ids=["fortran", "view", "read-only"],
)
def test_unusual_arrays_take_the_general_path_with_the_same_results(make):
    sess = ort.InferenceSession(mlp().SerializeToString(), providers=[OV, CPU])
    x = _x((5, 16), 3)
    expected = sess.run(None, {"x": x})[0]
    np.testing.assert_array_equal(sess.run(None, {"x": make(x.copy())})[0], expected)


def _read_only(x: np.ndarray) -> np.ndarray:
    x.flags.writeable = False
    return x


def test_concurrent_runs_on_one_session_each_get_their_own_results():
    data = mlp().SerializeToString()
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    feeds = [_x((1 + k % 4, 16), k) for k in range(8)]
    expected = [cpu.run(None, {"x": x})[0] for x in feeds]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(feeds))

    def work(k: int) -> None:
        try:
            barrier.wait()
            for _ in range(50):
                got = sess.run(None, {"x": feeds[k]})[0]
                np.testing.assert_allclose(got, expected[k], rtol=1e-5, atol=1e-6)
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_threads_option_reaches_openvino():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(mlp().SerializeToString(), so, providers=[OV, CPU])
    (fn,) = _compiled_steps(sess)
    assert int(fn.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    assert str(fn.compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    sess = ort.InferenceSession(
        mlp().SerializeToString(), providers=[(OV, {"num_of_threads": "2"}), CPU]
    )
    assert int(_compiled_steps(sess)[0].compiled.get_property("INFERENCE_NUM_THREADS")) == 2


def _partial(width: int) -> bytes:
    """x[1,width] -> MatMul(W[width,width]) -> Relu -> Cast(float64) -> Sqrt -> y: OpenVINO
    declines the float64 Sqrt, so a cluster of MatMul and Relu would be a partial one."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("Cast", ["r"], ["d"], to=TensorProto.DOUBLE),
        helper.make_node("Sqrt", ["d"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, width])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [64, width])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_tiny_partial_cluster_stays_on_the_next_provider(monkeypatch):
    sess = ort.InferenceSession(_partial(4), providers=[OV, CPU])
    assert OV not in placement(sess)
    reasons = " ".join(r for rs in sess.placement_reasons.values() for r in rs)
    assert "too little work" in reasons
    x = np.abs(_x((64, 4)))
    y = sess.run(None, {"x": x})[0]
    from ort_openvino.provider import OpenVINOExecutionProvider

    monkeypatch.setattr(OpenVINOExecutionProvider, "min_partial_work", 0)
    claimed = ort.InferenceSession(_partial(4), providers=[OV, CPU])
    assert placement(claimed).get(OV) == 2
    np.testing.assert_allclose(claimed.run(None, {"x": x})[0], y, rtol=1e-5)


def test_partial_cluster_with_enough_work_goes_to_openvino():
    sess = ort.InferenceSession(_partial(256), providers=[OV, CPU])  # 64*256*256 multiply-adds
    assert placement(sess).get(OV) == 2


def test_estimated_work_counts_products_and_treats_recurrences_as_unbounded():
    from ort_openvino.provider import estimated_work

    from ort_core.ir import model_from_proto, node_from_proto
    from ort_core.provider import GraphView

    model = model_from_proto(onnx.load_from_string(_partial(8)))
    view = GraphView(model.graph, dict(model.opset_imports))
    matmul, relu = model.graph.nodes[:2]
    assert estimated_work([matmul], view) == 64 * 8 * 8
    assert estimated_work([matmul, relu], view) == 64 * 8 * 8 + 64 * 8
    lstm = helper.make_node("LSTM", ["a", "b", "c"], ["o"], hidden_size=2)
    assert estimated_work([node_from_proto(lstm)], view) == float("inf")


def _loop_rnn(body_op: str = "Tanh") -> bytes:
    """h <- body_op(x[i] @ U + h @ W) over the first axis of x (a Loop reading x, U, W from the
    enclosing graph), the final h and every step's h as outputs."""
    rng = np.random.default_rng(7)
    hidden = 8
    u = numpy_helper.from_array(rng.standard_normal((4, hidden)).astype(np.float32), "U")
    w = numpy_helper.from_array(rng.standard_normal((hidden, hidden)).astype(np.float32) * 0.3, "W")
    body_nodes = [
        helper.make_node("Gather", ["x", "i"], ["xi"], axis=0),
        helper.make_node("MatMul", ["xi", "U"], ["a"]),
        helper.make_node("MatMul", ["h", "W"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["s"]),
    ]
    if body_op == "float64":  # a body node OpenVINO cannot compute exactly
        body_nodes += [
            helper.make_node("Cast", ["s"], ["s64"], to=TensorProto.DOUBLE),
            helper.make_node("Tanh", ["s64"], ["t64"]),
            helper.make_node("Cast", ["t64"], ["t"], to=TensorProto.FLOAT),
        ]
    else:
        body_nodes.append(helper.make_node(body_op, ["s"], ["t"]))
    body_nodes += [
        helper.make_node("Identity", ["cond"], ["cond_out"]),
        helper.make_node("Identity", ["t"], ["h_out"]),
        helper.make_node("Identity", ["t"], ["y_out"]),
    ]
    body = helper.make_graph(
        body_nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, hidden]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, hidden]),
            helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [1, hidden]),
        ],
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Loop", ["n", "true", "h0"], ["h_final", "ys"], body=body),
    ]
    inits = [
        u,
        w,
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.zeros((1, hidden), np.float32), "h0"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 4])],
        [
            helper.make_tensor_value_info("h_final", TensorProto.FLOAT, [1, hidden]),
            helper.make_tensor_value_info("ys", TensorProto.FLOAT, None),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_loop_with_a_supported_body_is_claimed_whole():
    data = _loop_rnn()
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    assert "Loop" in [n.op_type for sub in sess.placements if sub.ep_name == OV for n in sub.nodes]
    assert len(_compiled_steps(sess)) == 1
    for steps in (3, 11):
        x = _x((steps, 1, 4), steps)
        for got, want in zip(sess.run(None, {"x": x}), cpu.run(None, {"x": x})):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_loop_with_a_body_openvino_cannot_compute_stays_on_the_next_provider():
    sess = ort.InferenceSession(_loop_rnn("float64"), providers=[OV, CPU])
    loop_on = [sub.ep_name for sub in sess.placements for n in sub.nodes if n.op_type == "Loop"]
    assert loop_on == [CPU]
    reasons = " ".join(r for rs in sess.placement_reasons.values() for r in rs)
    assert "its body's" in reasons and "float64" in reasons
    x = _x((5, 1, 4))
    cpu = ort.InferenceSession(_loop_rnn("float64"), providers=[CPU])
    for got, want in zip(sess.run(None, {"x": x}), cpu.run(None, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# -- one thread for small compilations ---------------------------------------------------------
def _read(data: bytes, shapes: dict | None = None):
    import openvino as ov

    model = ov.Core().read_model(onnx.load_from_string(data).SerializeToString(), b"")
    if shapes:
        model.reshape({k: ov.PartialShape(list(v)) for k, v in shapes.items()})
    return model


def _threads_of(fn) -> int:
    compiled = fn.compiled if fn.compiled is not None else next(iter(fn._cache.values()))[0]
    return int(compiled.get_property("INFERENCE_NUM_THREADS"))


def _recurrent(op: str, steps: int, hidden: int, features: int = 5) -> bytes:
    """One ``op`` (LSTM or GRU) over ``steps`` steps of a batch of one, static shapes."""
    rng = np.random.default_rng(3)
    gates = {"LSTM": 4, "GRU": 3}[op]
    inits = [
        numpy_helper.from_array(
            rng.standard_normal((1, gates * hidden, features), np.float32), "W"
        ),
        numpy_helper.from_array(rng.standard_normal((1, gates * hidden, hidden), np.float32), "R"),
    ]
    node = helper.make_node(op, ["x", "W", "R"], ["y"], hidden_size=hidden)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, 1, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_model_work_counts_products_convolutions_cells_and_loop_trips():
    """Host logic: the multiply-adds OpenVINO's model of a graph will do, from its static shapes."""
    from ort_openvino.kernel import model_work

    mm = model_work(_read(_partial(8)))  # 64 x 8 by 8 x 8, then Relu, Cast, Sqrt
    assert 64 * 8 * 8 <= mm <= 64 * 8 * 8 + 4 * 64 * 8  # the product, one per element else
    # a convolution: output elements x weights per output (8 x 3 x 3 x 3 per cell)
    conv = model_work(_read(cnn().SerializeToString(), {"x": (1, 3, 16, 16)}))
    assert conv is not None and conv > 8 * 16 * 16 * 27
    # an LSTM: steps x (W + R)
    lstm = model_work(_read(_recurrent("LSTM", 20, 16)))
    assert 20 * (64 * 5 + 64 * 16) <= lstm < 20 * (64 * 5 + 64 * 16) + 20 * 64 * 10
    # a Loop: the body times the trip count it reads from its input's (static) shape
    body = model_work(_read(_loop_rnn(), {"x": (1, 1, 4)}))
    ten = model_work(_read(_loop_rnn(), {"x": (10, 1, 4)}))
    assert ten is not None and ten >= 10 * (4 * 8 + 8 * 8) and ten > 5 * body
    # a dynamic shape: not known before a run
    assert model_work(_read(_loop_rnn())) is None


def test_small_static_graphs_compile_on_one_thread_unless_threads_are_given():
    """Host logic against OpenVINO's compiled model: a graph under SMALL_WORK multiply-adds runs
    on one OpenVINO thread when the thread count comes from the session (its hand-offs cost more
    than they share), on the given count when num_of_threads is set, and a large graph keeps the
    session's threads; the results do not change."""
    from ort_openvino.kernel import SMALL_WORK, model_work

    small = _recurrent("GRU", 16, 32)
    assert model_work(_read(small)) < SMALL_WORK
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    x = {"x": _x((16, 1, 5))}
    one = ort.InferenceSession(small, so, providers=[OV, CPU])
    (fn,) = _compiled_steps(one)
    assert _threads_of(fn) == 1
    given = ort.InferenceSession(small, so, providers=[(OV, {"num_of_threads": "2"}), CPU])
    (fn,) = _compiled_steps(given)
    assert _threads_of(fn) == 2
    np.testing.assert_allclose(one.run(None, x)[0], given.run(None, x)[0], rtol=1e-5, atol=1e-6)
    large = _recurrent("LSTM", 400, 128)
    assert model_work(_read(large)) > SMALL_WORK
    big = ort.InferenceSession(large, so, providers=[OV, CPU])
    (fn,) = _compiled_steps(big)
    assert _threads_of(fn) == 2
