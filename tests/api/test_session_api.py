"""Differential tests of the session API and the module functions: every test runs the same user
snippet on onnxruntime and on ort_core (the ``rt`` parameter) and asserts what a user observes
(values, types, shapes, error classes and the message parts users match on). A test that holds for
onnxruntime documents the behaviour; the same test on ort_core proves the drop-in."""

from __future__ import annotations

import importlib
import os
import threading
import time

import numpy as np
import onnx
import pytest

from tests.api import models

onnxruntime = pytest.importorskip("onnxruntime")
X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)


@pytest.fixture(params=["onnxruntime", "ort_core"])
def rt(request):
    return importlib.import_module(request.param)


@pytest.fixture
def mul_path(tmp_path):
    return models.save(models.mul_1(), str(tmp_path), "mul_1.onnx")


# -- module functions ---------------------------------------------------------------------------
def test_module_functions_exist_and_answer(rt):
    assert isinstance(rt.get_version_string(), str) and rt.get_version_string()
    assert "Build Info" in rt.get_build_info()
    assert "CPUExecutionProvider" in rt.get_available_providers()
    assert rt.get_all_providers()[-1] == "CPUExecutionProvider"
    assert rt.get_device() in ("CPU", "GPU")
    assert rt.has_collective_ops() is False
    rt.disable_telemetry_events()
    rt.enable_telemetry_events()
    for level in range(5):
        rt.set_default_logger_severity(level)
    rt.set_default_logger_severity(2)
    rt.set_default_logger_verbosity(0)
    rt.set_seed(1234)
    with pytest.raises(TypeError):
        rt.set_seed("seed")


@pytest.mark.parametrize("bad", [5, -1])
def test_logger_severity_out_of_range_is_a_runtime_error(rt, bad):
    with pytest.raises(RuntimeError):
        rt.set_default_logger_severity(bad)


def test_logger_callback_gets_session_messages(rt, mul_path):
    records = []

    def callback(severity, category, logid, code_location, message):
        records.append((severity, category, logid, code_location, message))

    rt.set_default_logger_callback(callback, severity=0)
    try:
        rt.InferenceSession(mul_path, providers=["CPUExecutionProvider"])
        with pytest.raises(RuntimeError):
            rt.set_default_logger_callback(callback, severity=5)
        with pytest.raises(RuntimeError):
            rt.set_default_logger_callback("not a callable")

        def raising(*args):
            raise ValueError("from the callback")

        rt.set_default_logger_callback(raising, severity=0)
        rt.InferenceSession(mul_path, providers=["CPUExecutionProvider"])  # does not raise
    finally:
        rt.set_default_logger_callback(None)
        rt.set_default_logger_severity(2)
    assert records
    for severity, category, logid, code_location, message in records:
        assert isinstance(severity, int) and isinstance(message, str)
        assert isinstance(category, str) and isinstance(logid, str)
        assert isinstance(code_location, str)


def test_ep_devices(rt):
    devices = rt.get_ep_devices()
    assert any(d.ep_name == "CPUExecutionProvider" for d in devices)
    for d in devices:
        assert d.device.type in (
            rt.OrtHardwareDeviceType.CPU,
            rt.OrtHardwareDeviceType.GPU,
            rt.OrtHardwareDeviceType.NPU,
        )
        assert isinstance(d.ep_metadata, dict) and isinstance(d.ep_options, dict)
        assert isinstance(d.device.vendor_id, int) and isinstance(d.device.metadata, dict)
    assert list(rt.OrtExecutionProviderDevicePolicy.__members__) == [
        "DEFAULT",
        "PREFER_CPU",
        "PREFER_NPU",
        "PREFER_GPU",
        "MAX_PERFORMANCE",
        "MAX_EFFICIENCY",
        "MIN_OVERALL_POWER",
    ]


def test_error_classes_import_from_capi(rt):
    state = importlib.import_module(rt.__name__ + ".capi.onnxruntime_pybind11_state")
    pybind = importlib.import_module(rt.__name__ + ".capi._pybind_state")
    for name in (
        "Fail",
        "InvalidArgument",
        "NoSuchFile",
        "NoModel",
        "EngineError",
        "RuntimeException",
        "InvalidProtobuf",
        "ModelLoaded",
        "NotImplemented",
        "InvalidGraph",
        "EPFail",
        "NotFound",
        "ModelLoadCanceled",
    ):
        cls = getattr(state, name)
        assert issubclass(cls, Exception) and getattr(pybind, name) is cls
    assert hasattr(state, "OrtValueVector") and hasattr(state, "RunOptions")
    assert isinstance(pybind.get_default_session_options(), rt.SessionOptions)


def test_errors_raised_are_the_capi_classes(rt, tmp_path):
    state = importlib.import_module(rt.__name__ + ".capi.onnxruntime_pybind11_state")
    with pytest.raises(state.NoSuchFile):
        rt.InferenceSession(str(tmp_path / "missing.onnx"))
    with pytest.raises(state.InvalidProtobuf):
        rt.InferenceSession(b"garbage, not a model")


def test_check_and_normalize_provider_args(rt):
    mod = importlib.import_module(rt.__name__ + ".capi.onnxruntime_inference_collection")
    check = mod.check_and_normalize_provider_args
    valid = ["a", "b", "c"]
    assert check(None, None, valid) == ([], [])
    assert check(["a"], None, valid) == (["a"], [{}])
    assert check([("a", {1: 2}), "b"], None, valid) == (["a", "b"], [{"1": "2"}, {}])
    assert check(["a", "b"], [{1: 2}, {}], valid) == (["a", "b"], [{"1": "2"}, {}])
    with pytest.warns(UserWarning):
        assert check(["a", "b", "a"], [{"x": 1}, {}, {"y": 2}], valid) == (
            ["a", "b"],
            [{"x": "1"}, {}],
        )
    for providers, options in (
        (3, None),
        ([3], None),
        (["a"], 3),
        (["a"], ["not dict"]),
        (["a", "b"], [{1: 2}]),
        ([("a", {1: 2})], [{3: 4}]),
    ):
        with pytest.raises(ValueError):
            check(providers, options, valid)


def test_datasets_examples(rt):
    datasets = importlib.import_module(rt.__name__ + ".datasets")
    for name in ("mul_1.onnx", "sigmoid.onnx", "logreg_iris.onnx"):
        assert os.path.isfile(datasets.get_example(name))
    path = datasets.get_example("mul_1.onnx")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X * X)
    with pytest.raises(FileNotFoundError):
        datasets.get_example("no_such_model.onnx")


def test_iris_example_is_a_fitted_classifier():
    """ort-core's logreg_iris takes the 4 iris features (onnxruntime's declares [3, 2])."""
    import ort_core as rt
    from ort_core import datasets

    iris = rt.InferenceSession(
        datasets.get_example("logreg_iris.onnx"), providers=["CPUExecutionProvider"]
    )
    label, probabilities = iris.run(None, {iris.get_inputs()[0].name: np.array(
        [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], np.float32)})  # fmt: skip
    assert list(label) == [0, 2]
    assert isinstance(probabilities, list) and isinstance(probabilities[0], dict)


# -- sessions -----------------------------------------------------------------------------------
def test_run_and_metadata(rt, mul_path):
    sess = rt.InferenceSession(mul_path, providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("X", [3, 2], "tensor(float)")
    assert (out.name, out.shape, out.type) == ("Y", [3, 2], "tensor(float)")
    assert len(sess.get_input_memory_infos()) == 1 and sess.get_input_memory_infos()[0]
    assert len(sess.get_output_memory_infos()) == 1 and sess.get_output_memory_infos()[0]
    info = sess.get_input_memory_infos()[0]
    assert (info.name, info.device_id) == ("Cpu", 0)
    assert len(sess.get_input_epdevices()) == 1
    np.testing.assert_allclose(sess.run([], {"X": X})[0], X * X)
    np.testing.assert_allclose(sess.run(None, {"X": X.tolist()})[0], X * X)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_profiling_start_time_ns() == 0


def test_missing_input_is_a_value_error_with_onnxruntimes_message(rt, tmp_path):
    path = models.save(models.logicaland(), str(tmp_path), "logicaland.onnx")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    a = np.array([[True, True], [False, False]])
    with pytest.raises(ValueError) as info:
        sess.run([], {"input:0": a})
    assert "Required inputs (['input1:0']) are missing from input feed (['input:0'])" in str(
        info.value
    )


def test_run_async_delivers_results_and_errors(rt, mul_path):
    sess = rt.InferenceSession(mul_path, providers=["CPUExecutionProvider"])
    got = []
    event = threading.Event()

    def callback(results, user_data, err):
        got.append((results, user_data, err))
        event.set()

    sess.run_async(["Y"], {"X": X}, callback, "data")
    assert event.wait(10)
    results, data, err = got[0]
    assert data == "data" and err == ""
    np.testing.assert_allclose(results[0], X * X)
    event.clear()
    sess.run_async(["Y"], {"X": np.ones((3, 3), np.float32)}, callback, "data")
    assert event.wait(10)
    results, data, err = got[1]
    assert results == [] and "Got invalid dimensions for input: X" in err
    with pytest.raises(ValueError, match="Required inputs"):
        sess.run_async(["Y"], {"Z": X}, callback, None)


def test_set_providers(rt, mul_path):
    sess = rt.InferenceSession(mul_path, providers=["CPUExecutionProvider"])
    sess.set_providers(["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError) as info:
        sess.set_providers(["InvalidProvider"])
    assert "Unknown Provider Type: InvalidProvider" in str(info.value)


def test_profiling_start_times_are_ordered(rt, mul_path):
    starts = []
    for _ in range(3):
        so = rt.SessionOptions()
        so.enable_profiling = True
        sess = rt.InferenceSession(mul_path, so, providers=["CPUExecutionProvider"])
        sess.run(None, {"X": X})
        starts.append(sess.get_profiling_start_time_ns())
        profile = sess.end_profiling()
        with open(profile) as f:
            text = f.read()
        os.remove(profile)
        assert text.lstrip().startswith("[") and '"dur"' in text and '"ph"' in text
    assert 0 < starts[0] <= starts[1] <= starts[2]
    assert abs(starts[0] / 1e9 - time.time()) < 3600  # wall clock, in nanoseconds


def test_graph_assignment_info_needs_the_config_entry(rt, tmp_path):
    state = importlib.import_module(rt.__name__ + ".capi.onnxruntime_pybind11_state")
    path = models.save(models.add_mul_add(), str(tmp_path), "add_mul_add.onnx")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    with pytest.raises(state.Fail) as info:
        sess.get_provider_graph_assignment_info()
    assert "session.record_ep_graph_assignment_info" in str(info.value)
    so = rt.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    subgraphs = sess.get_provider_graph_assignment_info()
    ids = sorted(f"{n.domain}:{n.op_type}/{n.name}" for s in subgraphs for n in s.get_nodes())
    assert ids == [":Add/add_0", ":Add/add_1", ":Mul/mul_0"]
    assert {s.ep_name for s in subgraphs} == {"CPUExecutionProvider"}


def test_session_options_from_the_model(rt, tmp_path, monkeypatch):
    path = models.save(models.with_ort_config(), str(tmp_path), "model_with_ort_config.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    so = sess.get_session_options()
    assert (so.inter_op_num_threads, so.intra_op_num_threads) == (5, 2)
    assert so.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL
    assert so.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.enable_profiling is True
    os.remove(sess.end_profiling())
    monkeypatch.setenv("ORT_LOAD_CONFIG_FROM_MODEL", "0")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert sess.get_session_options().intra_op_num_threads == 0


def test_free_dimension_overrides(rt, tmp_path):
    path = models.save(models.abs_free_dimensions(), str(tmp_path), "abs_free_dimensions.onnx")
    so = rt.SessionOptions()
    so.add_free_dimension_override_by_denotation("DATA_BATCH", 3)
    so.add_free_dimension_override_by_denotation("DATA_CHANNEL", 5)
    sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [3, 5, 5]
    so = rt.SessionOptions()
    so.add_free_dimension_override_by_name("Dim1", 4)
    so.add_free_dimension_override_by_name("Dim2", 6)
    sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [4, 6, 5]
    x = -np.ones((4, 6, 5), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], -x)
    with pytest.raises(Exception, match="dimensions"):
        sess.run(None, {"x": np.ones((2, 6, 5), np.float32)})


def test_session_config_entries(rt):
    so = rt.SessionOptions()
    so.add_session_config_entry("CONFIG_KEY", "CONFIG_VAL")
    assert so.get_session_config_entry("CONFIG_KEY") == "CONFIG_VAL"
    with pytest.raises(RuntimeError) as info:
        so.get_session_config_entry("INVALID_KEY")
    assert "SessionOptions does not have configuration with key: INVALID_KEY" in str(info.value)
    ro = rt.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"


def test_session_options_defaults_and_types(rt):
    so = rt.SessionOptions()
    assert so.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (0, 0)
    assert so.log_severity_level == -1 and so.log_verbosity_level == 0 and so.logid == ""
    assert so.enable_cpu_mem_arena and so.enable_mem_pattern and so.enable_mem_reuse
    assert so.profile_file_prefix == "onnxruntime_profile_" and not so.enable_profiling
    assert so.use_per_session_threads is True and so.use_deterministic_compute is False
    assert so.has_providers() is False
    for attr, bad in (("intra_op_num_threads", "2"), ("logid", 3)):
        with pytest.raises(TypeError):
            setattr(so, attr, bad)
    ro = rt.RunOptions()
    assert (ro.log_severity_level, ro.logid, ro.terminate) == (-1, "", False)
    assert ro.only_execute_path_to_fetches is False


def test_add_initializer_replaces_the_models(rt, mul_path):
    so = rt.SessionOptions()
    w = rt.OrtValue.ortvalue_from_numpy(np.array([[2, 1], [4, 3], [6, 5]], dtype=np.float32))
    so.add_initializer("W", w)
    sess = rt.InferenceSession(mul_path, so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(
        sess.run(["Y"], {"X": X})[0], np.array([[2, 2], [12, 12], [30, 30]], np.float32)
    )


def test_external_initializers_given_by_the_user(rt, tmp_path):
    path = models.pads_external(str(tmp_path), write_file=False)
    x = np.arange(4, dtype=np.int64)
    expected = x + np.array([0, 1, 0, 1])
    so = rt.SessionOptions()
    pads = rt.OrtValue.ortvalue_from_numpy(np.array([0, 1, 0, 1], dtype=np.int64))
    so.add_external_initializers(["Pads_not_on_disk"], [pads])
    sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], expected)
    data = np.array([0, 1, 0, 1], dtype=np.int64).tobytes()
    so = rt.SessionOptions()
    so.add_external_initializers_from_files_in_memory(["Pads_not_on_disk.bin"], [data], [len(data)])
    sess = rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], expected)


def test_optimized_model_with_external_initializers(rt, tmp_path):
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "w")
    b = onnx.numpy_helper.from_array(np.ones(2, np.float32), "b")
    m = models._model(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        [onnx.helper.make_tensor_value_info("x", models.F, [1, 64])],
        [onnx.helper.make_tensor_value_info("y", models.F, [1, 64])],
        [w, b],
    )
    path = models.save(m, str(tmp_path), "m.onnx")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    so = rt.SessionOptions()
    so.optimized_model_filepath = str(out_dir / "opt.onnx")
    so.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", "opt_data.bin"
    )
    so.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "100"
    )
    rt.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    assert (out_dir / "opt.onnx").is_file() and (out_dir / "opt_data.bin").is_file()
    x = rng.standard_normal((1, 64)).astype(np.float32)
    again = rt.InferenceSession(str(out_dir / "opt.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        again.run(None, {"x": x})[0], x @ onnx.numpy_helper.to_array(w), rtol=1e-5
    )
    assert os.path.getsize(out_dir / "opt_data.bin") >= 64 * 64 * 4


def test_run_options_only_path_to_fetches_and_terminate(rt, tmp_path):
    path = models.save(models.add_mul_add(), str(tmp_path), "add_mul_add.onnx")
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {n: np.full(2, v, np.float32) for n, v in (("a", 1), ("b", 2), ("c", 3))}
    ro = rt.RunOptions()
    ro.only_execute_path_to_fetches = True
    np.testing.assert_array_equal(sess.run(["y"], feed, ro)[0], np.full(2, 10, np.float32))
    ro = rt.RunOptions()
    ro.terminate = True
    with pytest.raises(Exception, match="(?i)terminate"):
        sess.run(None, feed, ro)
    ro = rt.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    np.testing.assert_array_equal(sess.run(["y"], feed, ro)[0], np.full(2, 10, np.float32))


def test_lora_adapter_files_interoperate(rt, tmp_path):
    """An adapter written by either runtime runs on the other: the file format is shared."""
    path = models.save(models.lora(), str(tmp_path), "lora.onnx")
    x = np.ones((4, 4), np.float32)
    base = np.tile(np.array([28, 32, 36, 40], np.float32), (4, 1))
    with_adapter = np.tile(np.array([154, 176, 198, 220], np.float32), (4, 1))
    sess = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input_x": x})[0], base)
    params = {
        "lora_param_a": rt.OrtValue.ortvalue_from_numpy(np.array([[3], [4], [5], [6]], np.float32)),
        "lora_param_b": rt.OrtValue.ortvalue_from_numpy(np.array([[7, 8, 9, 10]], np.float32)),
    }
    for writer in (onnxruntime, rt):
        fmt = writer.AdapterFormat()
        fmt.set_adapter_version(2)
        fmt.set_model_version(3)
        fmt.set_parameters(
            {k: writer.OrtValue.ortvalue_from_numpy(v.numpy()) for k, v in params.items()}
        )
        file = str(tmp_path / f"{writer.__name__}.onnx_adapter")
        fmt.export_adapter(file)
        read = rt.AdapterFormat.read_adapter(file)
        assert (read.get_adapter_version(), read.get_model_version()) == (2, 3)
        assert sorted(read.get_parameters()) == ["lora_param_a", "lora_param_b"]
        adapter = rt.LoraAdapter()
        adapter.Load(file)
        ro = rt.RunOptions()
        ro.add_active_adapter(adapter)
        np.testing.assert_allclose(sess.run(None, {"input_x": x}, ro)[0], with_adapter)
    np.testing.assert_allclose(sess.run(None, {"input_x": x})[0], base)


def test_custom_op_library_that_does_not_exist_fails(rt, tmp_path):
    state = importlib.import_module(rt.__name__ + ".capi.onnxruntime_pybind11_state")
    so = rt.SessionOptions()
    with pytest.raises(state.Fail, match="Failed to load library"):
        so.register_custom_ops_library(str(tmp_path / "libnothing.so"))


def test_backend_run_and_prepare(rt, tmp_path):
    backend = importlib.import_module(rt.__name__ + ".backend")
    model = models.mul_1()
    out = backend.run(model, [X])
    np.testing.assert_allclose(out[0], X * X)
    rep = backend.prepare(model.SerializeToString(), "CPU", intra_op_num_threads=1)
    np.testing.assert_allclose(rep.run(X)[0], X * X)
    np.testing.assert_allclose(rep.run([X])[0], X * X)
    assert backend.supports_device("CPU")
    with pytest.raises(RuntimeError, match="not permitted"):
        backend.prepare(model.SerializeToString(), "CPU", optimized_model_filepath="x.onnx")


def test_node_args_and_model_metadata(rt):
    """NodeArg shapes of every kind of input (symbolic, unknown, no shape, sequences, optionals)
    and the ModelMetadata fields, as onnxruntime reports them."""
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    inputs = [
        helper.make_value_info("t", helper.make_tensor_type_proto(f, None)),
        helper.make_tensor_value_info("u", f, [None, "N", 3]),
        helper.make_value_info(
            "s", helper.make_sequence_type_proto(helper.make_tensor_type_proto(f, None))
        ),
        helper.make_value_info(
            "o", helper.make_optional_type_proto(helper.make_tensor_type_proto(f, [2]))
        ),
    ]
    nodes = [
        helper.make_node("Identity", ["t"], ["t2"]),
        helper.make_node("Identity", ["u"], ["u2"]),
        helper.make_node("SequenceLength", ["s"], ["sl"]),
        helper.make_node("OptionalHasElement", ["o"], ["oh"]),
    ]
    outputs = [
        helper.make_tensor_value_info("t2", f, None),
        helper.make_tensor_value_info("u2", f, [None, "N", 3]),
        helper.make_tensor_value_info("sl", TensorProto.INT64, []),
        helper.make_tensor_value_info("oh", TensorProto.BOOL, []),
    ]
    graph = helper.make_graph(nodes, "graphname", inputs, outputs)
    graph.doc_string = "graph doc"
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18)],
        producer_name="prod",
        domain="my.domain",
        model_version=7,
        doc_string="model doc",
    )
    helper.set_model_props(model, {"k": "v", "a": "b"})
    sess = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = [(a.name, a.type, a.shape) for a in sess.get_inputs() + sess.get_outputs()]
    assert got == [
        ("t", "tensor(float)", []),
        ("u", "tensor(float)", [None, "N", 3]),
        ("s", "seq(tensor(float))", []),
        ("o", "optional(tensor(float))", [2]),
        ("t2", "tensor(float)", []),
        ("u2", "tensor(float)", [None, "N", 3]),
        ("sl", "tensor(int64)", []),
        ("oh", "tensor(bool)", []),
    ]
    assert (
        str(sess.get_inputs()[1]) == "NodeArg(name='u', type='tensor(float)', shape=[None, 'N', 3])"
    )
    meta = sess.get_modelmeta()
    assert (meta.producer_name, meta.graph_name, meta.domain) == ("prod", "graphname", "my.domain")
    assert (meta.description, meta.graph_description, meta.version) == ("model doc", "graph doc", 7)
    assert meta.custom_metadata_map == {"k": "v", "a": "b"}
