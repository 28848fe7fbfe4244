import json
import threading
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort_core as ort
from ort_core import errors
from tests.conftest import make_model, reference_outputs, tensor
from tests.unit.providers_for_tests import UnavailableProvider


@pytest.fixture
def sess(mlp_model):
    return ort.InferenceSession(mlp_model.SerializeToString(), providers=["CPUExecutionProvider"])


def x_feed(n=2):
    return {"x": np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)}


def test_run_matches_reference(sess, mlp_model):
    feed = x_feed(5)
    (y,) = sess.run(None, feed)
    np.testing.assert_allclose(y, reference_outputs(mlp_model, feed)[0], rtol=1e-5, atol=1e-6)
    assert sess.run(["y"], feed)[0].shape == (5, 3)


def test_sources_path_bytes_proto(tmp_path, mlp_model):
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model, path)
    feed = x_feed()
    ys = [
        ort.InferenceSession(src, providers=["cpu"]).run(None, feed)[0]
        for src in (str(path), path, path.read_bytes(), mlp_model)
    ]
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0])


def test_inputs_outputs_and_metadata(sess):
    (i,) = sess.get_inputs()
    assert (i.name, i.type, i.shape) == ("x", "tensor(float)", ["N", 4])
    (o,) = sess.get_outputs()
    assert (o.name, o.type, o.shape) == ("y", "tensor(float)", ["N", 3])
    meta = sess.get_modelmeta()
    assert meta.graph_name == "g"
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}


@pytest.mark.parametrize(
    "feed, match",
    [
        ({}, r"Required inputs \(\['x'\]\) are missing"),
        ({"x": np.zeros((2, 4), np.float32), "nope": np.zeros(1)}, "Invalid input name: nope"),
        (
            {"x": np.zeros((2, 4), np.float64)},
            r"Actual: \(tensor\(double\)\) , expected: \(tensor\(float\)\)",
        ),
        ({"x": np.zeros((2, 4, 1), np.float32)}, "Invalid rank for input: x Got: 3 Expected: 2"),
        (
            {"x": np.zeros((2, 5), np.float32)},
            "(?s)invalid dimensions for input: x .*index: 1 Got: 5 Expected: 4",
        ),
    ],
)
def test_input_validation(sess, feed, match):
    with pytest.raises(errors.InvalidArgument, match=match):
        sess.run(None, feed)


def test_unknown_output_name(sess):
    with pytest.raises(errors.InvalidArgument, match="Invalid output name: z"):
        sess.run(["z"], x_feed())


def test_feed_must_be_a_dict(sess):
    with pytest.raises(errors.InvalidArgument, match="must be a dict"):
        sess.run(None, [np.zeros((2, 4), np.float32)])


def test_missing_file_garbage_and_ir_version(tmp_path, mlp_model):
    with pytest.raises(errors.NoSuchFile, match="does not exist"):
        ort.InferenceSession(str(tmp_path / "absent.onnx"))
    with pytest.raises(errors.InvalidProtobuf, match="protobuf parsing failed|not an ONNX model"):
        ort.InferenceSession(b"\x08\x07garbage\xff\xff\xff")
    mlp_model.ir_version = 99
    with pytest.raises(errors.InvalidGraph, match="Unsupported model IR version: 99"):
        ort.InferenceSession(mlp_model.SerializeToString())


def test_opset_newer_than_onnx(mlp_model):
    mlp_model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(errors.Fail, match="knows opsets up to"):  # onnxruntime: Fail too
        ort.InferenceSession(mlp_model.SerializeToString())


def test_dangling_input_is_invalid_graph():
    m = make_model(
        [helper.make_node("Relu", ["ghost"], ["y"], name="r")],
        [tensor("x", shape=[1])],
        [tensor("y", shape=[1])],
    )
    with pytest.raises(errors.InvalidGraph, match="'r' .*reads 'ghost'"):
        ort.InferenceSession(m.SerializeToString(), providers=["cpu"])


def test_providers_string_is_type_error(mlp_model):
    with pytest.raises(TypeError, match="not a string"):
        ort.InferenceSession(mlp_model.SerializeToString(), providers="CPUExecutionProvider")


def test_unknown_provider_warns_at_creation_and_is_an_error_in_set_providers(mlp_model):
    """As onnxruntime: a misspelled provider at creation warns and the session falls back to the CPU
    provider; set_providers with one raises "Unknown Provider Type" (a RuntimeError); strict mode
    makes creation an error too."""
    with pytest.warns(RuntimeWarning, match="Unknown Provider Type: CPUExecutionProvder"):
        s = ort.InferenceSession(mlp_model.SerializeToString(), providers=["CPUExecutionProvder"])
    assert s.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="Unknown Provider Type: InvalidProvider"):
        s.set_providers(["InvalidProvider"])
    assert s.get_providers() == ["CPUExecutionProvider"]  # still usable
    so = ort.SessionOptions()
    so.add_session_config_entry("session.strict_providers", "1")
    with pytest.raises(errors.InvalidArgument, match="Unknown Provider Type"):
        ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["CPUExecutionProvder"])


def test_not_installed_provider_warns_with_install_hint(mlp_model, capsys, monkeypatch):
    from ort_core import session as session_module

    # every provider ort-core ships is installed in the test environment: a known name whose
    # distribution is absent stands for one that is not
    monkeypatch.setitem(
        session_module.KNOWN_PROVIDERS, "AbsentTestExecutionProvider", "ort-core[absent]"
    )
    with pytest.warns(
        RuntimeWarning, match=r"not installed: install it with `pip install ort-core\[absent\]`"
    ):
        sess = ort.InferenceSession(
            mlp_model.SerializeToString(), providers=["AbsentTestExecutionProvider"]
        )
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert capsys.readouterr().out == ""


def test_unavailable_provider_warns_or_raises_in_strict_mode(mlp_model, register_provider, capsys):
    register_provider(UnavailableProvider)
    assert "NeverExecutionProvider" in ort.get_all_providers()
    assert "NeverExecutionProvider" not in ort.get_available_providers()
    assert ort.get_provider_availability()["NeverExecutionProvider"] == (
        False,
        "the Never device is not present on this machine.",
    )
    with pytest.warns(RuntimeWarning, match="not available here: the Never device is not present"):
        ort.InferenceSession(mlp_model.SerializeToString(), providers=["never", "cpu"])
    so = ort.SessionOptions()
    so.add_session_config_entry("session.strict_providers", "1")
    with pytest.raises(errors.ProviderNotAvailable, match="Never device"):
        ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["never", "cpu"])
    assert capsys.readouterr().out == ""


def test_provider_options_and_tuples(mlp_model):
    s = ort.InferenceSession(
        mlp_model.SerializeToString(), providers=[("CPUExecutionProvider", {"a": 1})]
    )
    assert s.get_provider_options()["CPUExecutionProvider"] == {"a": "1"}
    with pytest.raises(ValueError, match="should be the same length"):
        ort.InferenceSession(
            mlp_model.SerializeToString(), providers=["cpu"], provider_options=[{}, {}]
        )


def test_run_with_ort_values(sess):
    feed = x_feed()
    outs = sess.run_with_ort_values(None, {"x": ort.OrtValue.ortvalue_from_numpy(feed["x"])})
    assert outs[0].data_type() == "tensor(float)" and outs[0].shape() == [2, 3]
    np.testing.assert_array_equal(outs[0].numpy(), sess.run(None, feed)[0])


def test_profiling_writes_chrome_trace(tmp_path, mlp_model):
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    s = ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"])
    s.run(None, x_feed())
    path = s.end_profiling()
    events = json.load(open(path))
    node_events = [e for e in events if e["cat"] == "Node"]
    ran = {n.op_type for sub in s.placements for n in sub.get_nodes()}
    assert {e["args"]["op_name"] for e in node_events} == ran  # FusedGemm at the default level
    for e in events:
        assert {"cat", "pid", "tid", "dur", "ts", "ph", "name", "args"} <= set(e)
    assert node_events[0]["name"].endswith("_kernel_time")
    assert node_events[0]["args"]["provider"] == "CPUExecutionProvider"
    assert any(e["name"] == "model_run" for e in events)


def test_run_options_terminate(sess):
    ro = ort.RunOptions()
    ro.terminate = True
    with pytest.raises(errors.RuntimeException, match="terminate"):
        sess.run(None, x_feed(), ro)


def test_kernel_failure_names_the_node():
    m = make_model(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")],
        [tensor("x", shape=None), tensor("s", TensorProto.INT64, shape=[1])],
        [tensor("y", shape=None)],
    )
    s = ort.InferenceSession(m.SerializeToString(), providers=["cpu"])
    with pytest.raises(errors.RuntimeException, match="'bad_reshape' \\(Reshape\\)"):
        s.run(None, {"x": np.zeros(6, np.float32), "s": np.array([4], np.int64)})


def test_run_is_thread_safe(sess):
    feeds = [x_feed(n) for n in range(1, 9)]
    expected = [sess.run(None, f)[0] for f in feeds]
    results = [None] * len(feeds)

    def work(i):
        for _ in range(20):
            results[i] = sess.run(None, feeds[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r, e in zip(results, expected):
        np.testing.assert_array_equal(r, e)


def test_outputs_are_writable_copies_of_initializers():
    w = helper.make_tensor("W", TensorProto.FLOAT, [2], [1.0, 2.0])
    m = make_model([helper.make_node("Identity", ["W"], ["y"])], [], [tensor("y", shape=[2])], [w])
    s = ort.InferenceSession(m.SerializeToString(), providers=["cpu"])
    y = s.run(None, {})[0]
    y[0] = 100
    np.testing.assert_array_equal(s.run(None, {})[0], [1.0, 2.0])


def test_overridable_initializer():
    w = helper.make_tensor("W", TensorProto.FLOAT, [2], [1.0, 2.0])
    m = make_model(
        [helper.make_node("Add", ["x", "W"], ["y"])],
        [tensor("x", shape=[2]), tensor("W", shape=[2])],
        [tensor("y", shape=[2])],
        [w],
    )
    s = ort.InferenceSession(m.SerializeToString(), providers=["cpu"])
    assert [i.name for i in s.get_inputs()] == ["x"]
    assert [i.name for i in s.get_overridable_initializers()] == ["W"]
    x = np.zeros(2, np.float32)
    np.testing.assert_array_equal(s.run(None, {"x": x})[0], [1, 2])
    np.testing.assert_array_equal(s.run(None, {"x": x, "W": np.ones(2, np.float32)})[0], [1, 1])


def _ir3_conv_bn_model() -> onnx.ModelProto:
    """An IR 3 model (every initializer listed as an input, as IR 3 requires): Conv ->
    BatchNormalization, whose weights onnxruntime treats as constants."""
    rng = np.random.default_rng(0)
    inits = [
        onnx.numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        onnx.numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "scale"),
        onnx.numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias"),
        onnx.numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "mean"),
        onnx.numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "var"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"]),
    ]
    inputs = [tensor("x", shape=[1, 3, 8, 8])] + [
        helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits
    ]
    m = make_model(nodes, inputs, [tensor("y", shape=[1, 4, 8, 8])], inits, opset=9)
    m.ir_version = 3
    return m


def test_ir3_initializers_listed_as_inputs_are_constant_weights(tmp_path):
    m = _ir3_conv_bn_model()
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["cpu"])
    assert [i.name for i in s.get_inputs()] == ["x"]
    assert s.get_overridable_initializers() == []
    assert s.optimization_report.applied.get("ConvBNFusion") == 1  # weights fold: constants
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (y,) = s.run(None, {"x": x})
    unfused = ort.SessionOptions()
    unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    expected = ort.InferenceSession(m.SerializeToString(), unfused, providers=["cpu"])
    np.testing.assert_allclose(y, expected.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(errors.InvalidArgument, match="before IR 4 initializers listed as inputs"):
        s.run(None, {"x": x, "w": np.zeros((4, 3, 3, 3), np.float32)})
    saved = onnx.load(tmp_path / "opt.onnx")  # still IR 3: its initializers must be inputs
    onnx.checker.check_model(saved)
    np.testing.assert_allclose(
        ort.InferenceSession(saved.SerializeToString(), providers=["cpu"]).run(None, {"x": x})[0],
        y,
        rtol=1e-6,
    )
    onnxruntime = pytest.importorskip("onnxruntime")
    theirs = onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in theirs.get_inputs()] == ["x"]
    assert theirs.get_overridable_initializers() == []
    np.testing.assert_allclose(theirs.run(None, {"x": x})[0], y, rtol=1e-4, atol=1e-5)


def test_no_stdout_on_warnings_path(mlp_model, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ort.InferenceSession(
            mlp_model.SerializeToString(), providers=["CUDAExecutionProvider"]
        ).run(None, x_feed())
    assert capsys.readouterr().out == ""


def test_optimized_model_filepath_is_valid_and_loads_in_onnxruntime(tmp_path, mlp_model):
    path = tmp_path / "opt.onnx"
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(path)
    feed = x_feed(3)
    expected = ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"]).run(
        None, feed
    )
    saved = onnx.load(path)
    onnx.checker.check_model(saved)
    ours = ort.InferenceSession(str(path), providers=["cpu"]).run(None, feed)
    np.testing.assert_allclose(ours[0], expected[0], rtol=1e-6)
    onnxruntime = pytest.importorskip("onnxruntime")
    theirs = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, feed
    )
    np.testing.assert_allclose(theirs[0], expected[0], rtol=1e-5, atol=1e-6)


def test_intra_op_num_threads_leaves_numpy_blas_threads_alone_outside_runs(mlp_model):
    """The CPU provider keeps numpy's OpenBLAS on one thread during its runs only (its own pool
    shares the work); before and after, numpy code keeps the thread count it had."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        pytest.skip("numpy reports no BLAS library")
    before = blas[0]["num_threads"]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"])
    feed = {i.name: np.ones([d if isinstance(d, int) else 2 for d in i.shape], np.float32)
            for i in sess.get_inputs()}  # fmt: skip
    sess.run(None, feed)
    after = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    assert after[0]["num_threads"] == before


_FAULTS_PER_RUN = """
import resource, sys
import numpy as np
import onnx
import ort_core as ort
path = onnx.__path__[0] + "/backend/test/data/light/light_squeezenet.onnx"
so = ort.SessionOptions()
so.enable_cpu_mem_arena = sys.argv[1] == "1"
s = ort.InferenceSession(path, so, providers=["cpu"])
feed = {"data_0": np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
for _ in range(3):
    s.run(None, feed)
per_run = []
for _ in range(7):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    s.run(None, feed)
    per_run.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
# the median run: a one-time cost (an intra-op worker's first BLAS call maps its buffer) shows in
# one run only, tensors re-faulted on every run in all of them
print(sorted(per_run)[len(per_run) // 2])
"""


def test_cpu_mem_arena_keeps_freed_memory_between_runs():
    """With enable_cpu_mem_arena (the default) a run reuses the memory the previous run freed
    instead of page-faulting its intermediate tensors in again (squeezenet: about 1,800 faults a
    run with glibc's default trimming, none with the arena). Counted in a fresh process, since
    the allocator setting is process-wide; not timed."""
    import subprocess
    import sys

    pytest.importorskip("resource")
    from ort_cpu.provider import retain_freed_memory

    if not retain_freed_memory():
        pytest.skip("the C library has no glibc mallopt to tune")
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_RUN, "1"], capture_output=True, text=True, check=True
    )
    faults = float(out.stdout.split()[-1])
    assert faults < 100, f"{faults:.0f} page faults per run: freed tensors are not being reused"
