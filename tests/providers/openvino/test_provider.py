"""OpenVINOExecutionProvider: registration, options, capability decisions, dynamic shapes, the
compiled-model cache and thread safety."""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core.errors import InvalidArgument, ProviderNotAvailable

from .models import CPU, OV, mlp, placement, skip_unless_openvino, transformer_block

pytestmark = skip_unless_openvino()


@pytest.fixture
def compilations(monkeypatch):
    """Every OpenVINO compilation made while the test runs (the compiled model objects)."""
    from ort_openvino import kernel

    made = []
    original = kernel.CompiledSubgraph._compile

    def counting(self, model):
        compiled = original(self, model)
        made.append(compiled)
        return compiled

    monkeypatch.setattr(kernel.CompiledSubgraph, "_compile", counting)
    return made


def _one_node(op, inputs, outputs, inits=(), opset=17, **attrs):
    graph = helper.make_graph(
        [helper.make_node(op, [i.name for i in inputs] + [t.name for t in inits], ["y"], **attrs)],
        "g",
        list(inputs),
        list(outputs),
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def test_registered_with_alias_and_distribution():
    from ort_core.plugins import get_plugin_manager

    entry = get_plugin_manager().resolve("openvino")
    assert entry is not None and entry.name == OV
    assert entry.distribution == "ort-openvino"
    assert OV in ort.get_available_providers()


def test_runs_a_model_fully_on_openvino():
    sess = ort.InferenceSession(mlp().SerializeToString(), providers=["openvino"])
    assert set(placement(sess)) == {OV}
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    cpu = ort.InferenceSession(mlp().SerializeToString(), providers=[CPU])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-5)


def test_unknown_option_is_invalid_argument_listing_valid_ones():
    with pytest.raises(InvalidArgument, match="device_typ.*Valid options: device_type"):
        ort.InferenceSession(mlp().SerializeToString(), providers=[(OV, {"device_typ": "CPU"})])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"precision": "INT4"}, "precision"),
        ({"num_of_threads": "zero"}, "num_of_threads"),
        ({"num_streams": "-1"}, "num_streams"),
        ({"disable_dynamic_shapes": "maybe"}, "disable_dynamic_shapes"),
        ({"min_cpu_work": "-1"}, "min_cpu_work"),
        ({"min_cpu_work": "many"}, "min_cpu_work"),
    ],
)
def test_bad_option_values_are_invalid_arguments(options, match):
    with pytest.raises(InvalidArgument, match=match):
        ort.InferenceSession(mlp().SerializeToString(), providers=[(OV, options)])


def test_absent_device_makes_the_provider_unavailable_naming_present_devices():
    import openvino as ov

    present = ov.Core().available_devices
    absent = next(d for d in ("NPU", "GPU", "FPGA") if not any(p.startswith(d) for p in present))
    so = ort.SessionOptions()
    so.add_session_config_entry("session.strict_providers", "1")
    with pytest.raises(ProviderNotAvailable, match=f"no {absent} device.*{present[0]}"):
        ort.InferenceSession(
            mlp().SerializeToString(), so, providers=[(OV, {"device_type": absent})]
        )
    with pytest.warns(RuntimeWarning, match=f"no {absent} device"):
        sess = ort.InferenceSession(
            mlp().SerializeToString(), providers=[(OV, {"device_type": absent})]
        )
    assert sess.get_providers() == [CPU]


def test_unavailable_when_openvino_cannot_be_imported(monkeypatch):
    from ort_openvino.provider import OpenVINOExecutionProvider

    monkeypatch.setitem(sys.modules, "openvino", None)
    avail = OpenVINOExecutionProvider.availability()
    assert not avail and "pip install openvino" in avail.reason


def test_options_in_force_and_threads_from_session_options():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(
        mlp().SerializeToString(),
        so,
        providers=[(OV, {"precision": "accuracy", "num_streams": "1"})],
    )
    opts = sess.get_provider_options()[OV]
    assert opts["device_type"] == "CPU" and opts["precision"] == "ACCURACY"
    assert opts["num_of_threads"] == "1" and opts["disable_dynamic_shapes"] == "false"


def test_virtual_device_runs_on_present_devices():
    sess = ort.InferenceSession(
        mlp().SerializeToString(), providers=[(OV, {"device_type": "AUTO:CPU"})]
    )
    assert set(placement(sess)) == {OV}
    x = np.ones((2, 16), np.float32)
    assert sess.run(None, {"x": x})[0].shape == (2, 4)


def test_dynamic_batch_and_sequence_compile_once(compilations):
    sess = ort.InferenceSession(transformer_block().SerializeToString(), providers=[OV])
    assert set(placement(sess)) == {OV}
    compiled_at_creation = len(compilations)
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 16), (2, 7, 16), (4, 1, 16), (3, 11, 16)]:
        out = sess.run(None, {"x": rng.standard_normal(shape).astype(np.float32)})[0]
        assert out.shape == shape
    assert len(compilations) == compiled_at_creation == 1


def test_disable_dynamic_shapes_compiles_per_shape_with_a_bounded_cache(compilations):
    from ort_openvino.kernel import SHAPE_CACHE_SIZE

    sess = ort.InferenceSession(
        mlp().SerializeToString(), providers=[(OV, {"disable_dynamic_shapes": "true"})]
    )
    assert len(compilations) == 0  # nothing is known about the batch yet
    cpu = ort.InferenceSession(mlp().SerializeToString(), providers=[CPU])
    batches = list(range(1, SHAPE_CACHE_SIZE + 3))
    for n in batches + [1, 1]:
        x = np.full((n, 16), 0.1 * n, np.float32)
        np.testing.assert_allclose(
            sess.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-5
        )
    # every batch compiled once; batch 1 again after it was evicted, then served from the cache
    assert len(compilations) == len(batches) + 1
    assert all(not c.inputs[0].get_partial_shape().is_dynamic for c in compilations)


def test_cache_dir_is_reused_by_a_later_session(tmp_path, compilations):
    cache = tmp_path / "ov_cache"
    options = {"cache_dir": str(cache)}
    first = ort.InferenceSession(mlp().SerializeToString(), providers=[(OV, options)])
    blobs = sorted(os.listdir(cache))
    assert blobs, "the first session wrote no compiled model into cache_dir"
    assert [c.get_property("LOADED_FROM_CACHE") for c in compilations] == [False]
    second = ort.InferenceSession(mlp().SerializeToString(), providers=[(OV, options)])
    assert [c.get_property("LOADED_FROM_CACHE") for c in compilations] == [False, True]
    assert sorted(os.listdir(cache)) == blobs
    x = np.ones((3, 16), np.float32)
    np.testing.assert_array_equal(first.run(None, {"x": x})[0], second.run(None, {"x": x})[0])


def test_runs_from_many_threads_at_once():
    sess = ort.InferenceSession(transformer_block().SerializeToString(), providers=[OV])
    cpu = ort.InferenceSession(transformer_block().SerializeToString(), providers=[CPU])
    rng = np.random.default_rng(5)
    feeds = [rng.standard_normal((1 + i % 3, 2 + i, 16)).astype(np.float32) for i in range(8)]
    expected = [cpu.run(None, {"x": x})[0] for x in feeds]
    errors = []

    def work(k):
        try:
            for _ in range(5):
                got = sess.run(None, {"x": feeds[k]})[0]
                np.testing.assert_allclose(got, expected[k], rtol=1e-4, atol=1e-5)
        except Exception as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _reasons(sess) -> str:
    return " ".join(r for rs in sess.placement_reasons.values() for r in rs)


def test_int64_data_from_inputs_stays_exact_on_the_next_provider():
    big = numpy_helper.from_array(np.array([2**40], np.int64), "c")
    data = _one_node(
        "Add",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [3])],
        [big],
    )
    sess = ort.InferenceSession(data, providers=[OV])
    assert set(placement(sess)) == {CPU}
    assert "int32 range" in _reasons(sess)
    x = np.array([1, 2**41, -5], np.int64)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], x + 2**40)


def test_int64_shape_arithmetic_stays_on_openvino():
    from .models import dynamic_reshape

    sess = ort.InferenceSession(dynamic_reshape().SerializeToString(), providers=[OV])
    assert set(placement(sess)) == {OV}


def test_float64_is_left_to_the_next_provider():
    data = _one_node(
        "Exp",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2])],
    )
    sess = ort.InferenceSession(data, providers=[OV])
    assert set(placement(sess)) == {CPU} and "float64" in _reasons(sess)
    x = np.array([0.1, 1e-12], np.float64)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.exp(x))


def test_unsupported_op_reason_comes_from_openvino():
    data = _one_node(
        "Det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    sess = ort.InferenceSession(data, providers=[OV])
    if set(placement(sess)) == {OV}:
        pytest.skip("this OpenVINO converts Det")
    assert "OpenVINO" in _reasons(sess) and "Det" in _reasons(sess)


def test_known_difference_is_declined_with_its_reason():
    data = _one_node(
        "Resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
            numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], np.float32), "scales"),
        ],
        opset=18,
        mode="linear",
        antialias=1,
    )
    sess = ort.InferenceSession(data, providers=[OV])
    assert set(placement(sess)) == {CPU} and "Resize" in _reasons(sess)


def test_lone_shape_node_is_left_to_the_cpu_provider():
    data = _one_node(
        "Shape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    sess = ort.InferenceSession(data, providers=[OV])
    assert set(placement(sess)) == {CPU} and "call overhead" in _reasons(sess)


def test_capability_decisions_are_cached_across_sessions():
    from ort_openvino.provider import _probes

    ort.InferenceSession(transformer_block().SerializeToString(), providers=[OV])
    probe = _probes["CPU"]
    before = probe.probes
    ort.InferenceSession(transformer_block().SerializeToString(), providers=[OV])
    assert probe.probes == before


def test_outputs_keep_their_onnx_element_types():
    data = _one_node(
        "ArgMax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", 1])],
        axis=1,
    )
    model = onnx.load_from_string(data)
    relu = helper.make_node("Relu", ["x"], ["xr"])
    model.graph.node[0].input[0] = "xr"
    model.graph.node.insert(0, relu)
    sess = ort.InferenceSession(model.SerializeToString(), providers=[OV])
    assert set(placement(sess)) == {OV}
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    got = sess.run(None, {"x": x})[0]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.argmax(np.maximum(x, 0), axis=1)[:, None])


def test_probe_failure_message_is_short_and_names_openvino():
    from ort_openvino.capability import short_message

    err = RuntimeError(
        "Exception from src/inference/src/cpp/core.cpp:105:\nCheck 'false' failed at x.cpp:1:\n"
        "FrontEnd API failed with OpConversionFailure:\n-- No conversion rule found for: Foo-1\n"
    )
    assert short_message(err).startswith("FrontEnd API failed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(short_message(RuntimeError("x" * 1000))) <= 303


def _overridable_model() -> bytes:
    """A convolution whose weights, bias and an added shape-computed tensor are overridable
    initializers (graph inputs with defaults), as in old models."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    shape = numpy_helper.from_array(np.array([1, 4, 6, 6], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"]),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["k"],
            value=numpy_helper.from_array(np.array([0.5], np.float32)),
        ),
        helper.make_node("Add", ["c", "k"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, b, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_overridable_initializers_compile_as_constants_until_overridden(compilations):
    data = _overridable_model()
    sess = ort.InferenceSession(data, providers=[OV])
    cpu = ort.InferenceSession(data, providers=[CPU])
    assert set(placement(sess)) == {OV}
    # the defaults are constants of the one compilation: it takes x alone, with static shapes
    assert len(compilations) == 1
    assert len(compilations[0].inputs) == 1
    assert not compilations[0].inputs[0].get_partial_shape().is_dynamic
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    w2 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    feeds = [
        {"x": x},
        {"x": x, "w": w2},  # overridden: the general path, compiled on first need
        {"x": x, "shape": np.array([1, 4, 6, 6], np.int64)},  # equal values, another array
        {"x": x},  # the defaults again: the constant compilation
    ]
    for feed in feeds:
        np.testing.assert_allclose(
            sess.run(None, feed)[0], cpu.run(None, feed)[0], rtol=1e-5, atol=1e-5
        )
    assert len(compilations) > 1
    made = len(compilations)
    for feed in feeds:
        sess.run(None, feed)
    assert len(compilations) == made  # every case is served by a compilation already made


@pytest.mark.parametrize("builder", [mlp, transformer_block])
def test_large_clusters_reach_openvino_through_a_mapped_weights_file(
    builder, monkeypatch, tmp_path
):
    """A cluster whose weights exceed EXTERNAL_WEIGHTS_BYTES is handed over as a model file with
    its weights in an external-data file (written from the arrays, mapped by OpenVINO): same
    outputs as the in-memory route, and the temporary folder is gone once the session exists."""
    import tempfile

    from ort_openvino import kernel

    model = builder()
    feed_shape = [2, 16] if builder is mlp else [2, 3, 16]
    feed = {"x": np.random.default_rng(0).standard_normal(feed_shape).astype(np.float32)}
    in_memory = ort.InferenceSession(model.SerializeToString(), providers=[OV]).run(None, feed)
    monkeypatch.setattr(kernel, "EXTERNAL_WEIGHTS_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reads = []
    original = kernel._external_weights_model

    def spy(*args):
        reads.append(args[3])
        return original(*args)

    monkeypatch.setattr(kernel, "_external_weights_model", spy)
    sess = ort.InferenceSession(model.SerializeToString(), providers=[OV])
    assert reads and all(not os.path.exists(folder) for folder in reads)
    assert set(placement(sess)) == {OV}
    for a, b in zip(sess.run(None, feed), in_memory):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _gru(steps, hidden, width, batch=1, direction="forward", layout=0, dims=None):
    """A GRU model (random weights) and its feed; ``dims`` overrides X's declared shape."""
    rng = np.random.default_rng(7)
    d = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((d, 3 * hidden, width)) * 0.1).astype(np.float32)
    r = (rng.standard_normal((d, 3 * hidden, hidden)) * 0.1).astype(np.float32)
    shape = (batch, steps, width) if layout else (steps, batch, width)
    node = helper.make_node(
        "GRU", ["x", "w", "r"], ["y", "h"], hidden_size=hidden, direction=direction,
        layout=layout, linear_before_reset=1,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "gru", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(r, "r")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model.SerializeToString(), {"x": rng.standard_normal(shape).astype(np.float32)}


def _left_to_cpu_unless_zero(data: bytes, feed: dict, why: str) -> None:
    """The model runs on the CPU provider in an [OpenVINO, CPU] session, OpenVINO's reason
    saying ``why``, with the CPU provider's own results; with min_cpu_work=0 on OpenVINO, its
    results within tolerance."""
    cpu = ort.InferenceSession(data, providers=[CPU]).run(None, feed)
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    assert placement(sess) == {CPU: 1}
    (reason,) = [r for rs in sess.placement_reasons.values() for r in rs if r.startswith(OV)]
    assert why in reason
    for got, want in zip(sess.run(None, feed), cpu, strict=True):
        np.testing.assert_array_equal(got, want)
    claimed = ort.InferenceSession(data, providers=[(OV, {"min_cpu_work": "0"}), CPU])
    assert placement(claimed) == {OV: 1}
    for got, want in zip(claimed.run(None, feed), cpu, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.fixture
def default_min_cpu_work(monkeypatch):
    """The provider's own threshold (this folder's conftest sets it to 0 for the other tests)."""
    from ort_openvino import provider

    monkeypatch.setattr(provider.OpenVINOExecutionProvider, "min_cpu_work", provider.MIN_CPU_WORK)


def test_small_static_graphs_are_left_to_the_cpu_provider(default_min_cpu_work, monkeypatch):
    """Placement (host logic and OpenVINO's results): on the CPU device, a model OpenVINO
    supports whole but whose work is known small from its static shapes (a 16-step GRU of 64
    units: 16 x 3 x 64 x (32 + 64) multiply-adds) runs on the CPU provider, with the reason in
    the placement reasons; ``min_cpu_work=0`` (or a lower bound) makes OpenVINO claim it, and a
    larger one (64 steps of 128 units on 64 inputs, 4.7M) or the same GRU with a symbolic number
    of steps (any size) stays on OpenVINO. Every session's outputs match the CPU provider's.
    (The rule for recurrent nodes' steps, off here, has its own test.)"""
    from ort_openvino import provider

    monkeypatch.setattr(provider.OpenVINOExecutionProvider, "min_cpu_step_work", 0)
    small, feed = _gru(16, 64, 32)
    _left_to_cpu_unless_zero(small, feed, "294,912 multiply-adds, under 4,000,000 (min_cpu_work)")
    lowered = ort.InferenceSession(small, providers=[(OV, {"min_cpu_work": "200_000"}), CPU])
    assert placement(lowered) == {OV: 1}
    assert lowered.get_provider_options()[OV]["min_cpu_work"] == "200000"
    big, big_feed = _gru(64, 128, 64)
    assert placement(ort.InferenceSession(big, providers=[OV, CPU])) == {OV: 1}
    symbolic, _ = _gru(16, 64, 32, dims=["steps", 1, 32])
    assert placement(ort.InferenceSession(symbolic, providers=[OV, CPU])) == {OV: 1}


def test_recurrent_nodes_with_small_steps_are_left_to_the_cpu_provider(default_min_cpu_work):
    """Placement (host logic and OpenVINO's results): on the CPU device, a recurrent node whose
    steps are each under ``min_cpu_step_work`` (64 steps of a 128-unit GRU on 64 inputs: 4.7M
    in all, 3 x 128 x (64 + 128) = 73,728 a step) runs on the CPU provider, with the reason,
    whatever its number of steps (a symbolic one too); ``min_cpu_work=0`` claims it; a batch of
    16 (1.2M a step) or a symbolic batch (any size) stays on OpenVINO."""
    data, feed = _gru(64, 128, 64)
    _left_to_cpu_unless_zero(
        data, feed, "each of its steps is 73,728 multiply-adds, under 1,000,000"
    )
    steps, _ = _gru(64, 128, 64, dims=["steps", 1, 64])
    assert placement(ort.InferenceSession(steps, providers=[OV, CPU])) == {CPU: 1}
    batched, _ = _gru(64, 128, 64, batch=16)
    assert placement(ort.InferenceSession(batched, providers=[OV, CPU])) == {OV: 1}
    entries, _ = _gru(64, 128, 64, dims=[64, "batch", 64])
    assert placement(ort.InferenceSession(entries, providers=[OV, CPU])) == {OV: 1}


@pytest.mark.parametrize(
    "direction, layout, batch, expected",
    [
        ("forward", 0, 1, 16 * 1 * 1 * 3 * 64 * (32 + 64)),
        ("bidirectional", 0, 2, 16 * 2 * 2 * 3 * 64 * (32 + 64)),
        ("forward", 1, 3, 16 * 3 * 1 * 3 * 64 * (32 + 64)),  # batch first
    ],
)
def test_static_work_counts_a_recurrent_nodes_steps(direction, layout, batch, expected):
    """Host logic: :func:`static_work` counts a recurrent node's multiply-adds from its static
    input shape (steps, entries and directions by its layout and direction), and gives None
    where a dim is symbolic."""
    from ort_openvino.provider import static_work

    from ort_core.ir import model_from_proto
    from ort_core.provider import GraphView

    def work(data):
        model = model_from_proto(onnx.load_from_string(data))
        view = GraphView(model.graph, {"": 14})
        return static_work(list(model.graph.nodes), view)

    data, _ = _gru(16, 64, 32, batch=batch, direction=direction, layout=layout)
    assert work(data) == expected
    dims = ["batch", 16, 32] if layout else [16, "batch", 32]
    assert (
        work(_gru(16, 64, 32, batch=batch, direction=direction, layout=layout, dims=dims)[0])
        is None
    )


def test_small_runs_of_dynamic_graphs_go_to_the_cpu_provider(default_min_cpu_work, monkeypatch):
    """Placement per run (host logic and OpenVINO's results): a graph with a symbolic batch is
    claimed whole by OpenVINO (its work is not known before a run), but a run whose shapes make
    it smaller than ``min_cpu_work`` (the MLP's 680 multiply-adds a row, 2 rows) runs on the CPU
    provider, in a session of the cluster made on first need; a run of 8,192 rows (5.6M) runs on
    OpenVINO. Each shape is decided once, by OpenVINO's model for it or, far from the threshold,
    by scaling the last one's work. ``min_cpu_work=0``, a graph that cannot be that small (its
    lower bound) or one whose weights exceed ``HOST_WEIGHT_BYTES`` never decide."""
    from ort_openvino import kernel

    from .test_fast_path import _compiled_steps as _compiled

    data = mlp().SerializeToString()
    cpu = ort.InferenceSession(data, providers=[CPU])
    sess = ort.InferenceSession(data, providers=[OV, CPU])
    assert placement(sess) == {OV: 4}  # (MatMul and Add fused)
    (fn,) = _compiled(sess)
    rng = np.random.default_rng(3)
    small = {"x": rng.standard_normal((2, 16)).astype(np.float32)}
    big = {"x": rng.standard_normal((8192, 16)).astype(np.float32)}
    np.testing.assert_allclose(sess.run(None, big)[0], cpu.run(None, big)[0], rtol=1e-5, atol=1e-6)
    assert fn._host_session is None and fn._small == {((8192, 16),): False}
    for _ in range(2):
        np.testing.assert_array_equal(sess.run(None, small)[0], cpu.run(None, small)[0])
    assert fn._host_session is not None and fn._small[((2, 16),)] is True
    assert len(fn._small) == 2
    compilations = fn.compilations
    sess.run(None, big)
    assert fn.compilations == compilations  # (the one dynamic compilation)
    # 2 rows: the 8,192 rows' work scaled (far under), no model read; 5,000 rows (3.4M, near
    # the threshold) read exactly; once WORK_READS are spent, undecided shapes stay on OpenVINO
    assert fn._reads == 1
    near = {"x": rng.standard_normal((5000, 16)).astype(np.float32)}
    sess.run(None, near)
    assert fn._reads == 2 and fn._small[((5000, 16),)] is True
    monkeypatch.setattr(kernel, "WORK_READS", 2)
    sess.run(None, {"x": near["x"][:4900]})
    assert fn._reads == 2 and fn._small[((4900, 16),)] is False

    def decides(options=None, model=data):
        (f,) = _compiled(ort.InferenceSession(model, providers=[(OV, options or {}), CPU]))
        return f._small is not None

    assert not decides({"min_cpu_work": "0"})
    assert decides({"min_cpu_work": "1000"})
    assert not decides({"min_cpu_work": "600"})  # one row is 680: never that small
    monkeypatch.setattr(kernel, "HOST_WEIGHT_BYTES", 1000)  # the MLP's weights: 2.7 KB
    assert not decides()


def test_without_the_cpu_fallback_openvino_claims_small_work(default_min_cpu_work):
    """Placement (host logic and OpenVINO's results): with session.disable_cpu_ep_fallback and
    OpenVINO alone, nothing is left to a next provider that is not there: a small static GRU
    (rejected by the step and work rules otherwise) runs on OpenVINO, and a small run of a
    dynamic MLP too (no CPU provider session), min_cpu_work reported as 0; an explicit
    min_cpu_work keeps its rule."""
    from .test_fast_path import _compiled_steps

    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    data, feed = _gru(16, 64, 32)
    want = ort.InferenceSession(data, providers=[CPU]).run(None, feed)
    sess = ort.InferenceSession(data, so, providers=[OV])
    assert placement(sess) == {OV: 1}
    assert sess.get_provider_options()[OV]["min_cpu_work"] == "0"
    for got, w in zip(sess.run(None, feed), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5)
    dynamic = ort.InferenceSession(mlp().SerializeToString(), so, providers=[OV])
    dynamic.run(None, {"x": np.ones((2, 16), np.float32)})
    (fn,) = _compiled_steps(dynamic)
    assert fn._small is None and fn._host_session is None
    with pytest.raises(RuntimeError, match="min_cpu_step_work"):
        ort.InferenceSession(data, so, providers=[(OV, {"min_cpu_work": "4000000"})])
