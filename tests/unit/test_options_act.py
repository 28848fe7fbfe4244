"""Every option ort-core accepts acts, and the ones it cannot honour are refused: session options,
run options, config entries and module-level settings (logging, seed, threads, allocators, provider
libraries), plus ``ort_core.compat`` (onnxruntime imports resolving to ort-core)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core import errors
from tests.conftest import make_model, tensor


def _branches(n=64):
    """Two independent MatMul chains joined by an Add: what ORT_PARALLEL can overlap."""
    rng = np.random.default_rng(3)
    w = [
        numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), f"W{i}")
        for i in range(4)
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["a1"], name="a1"),
        helper.make_node("MatMul", ["a1", "W1"], ["a2"], name="a2"),
        helper.make_node("MatMul", ["x", "W2"], ["b1"], name="b1"),
        helper.make_node("MatMul", ["b1", "W3"], ["b2"], name="b2"),
        helper.make_node("Add", ["a2", "b2"], ["y"], name="join"),
    ]
    return make_model(nodes, [tensor("x", shape=[n, n])], [tensor("y", shape=[n, n])], w)


def test_parallel_execution_mode_runs_branches_concurrently_and_correctly():
    model = _branches().SerializeToString()
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    ref = ort.InferenceSession(model, providers=["cpu"]).run(None, {"x": x})[0]
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["cpu"])
    assert sess._inter_pool is not None
    threads = set()
    for step in sess._plan.steps:  # record which thread ran each kernel
        fn = step.fn

        def spy(*args, _fn=fn):
            import threading

            threads.add(threading.current_thread().name)
            return _fn(*args)

        step.fn = spy
    for _ in range(3):
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref, rtol=1e-5, atol=1e-5)
    assert threads and all(t.startswith("ort-core-inter-op") for t in threads)


def test_parallel_execution_overlaps_independent_branches():
    """Issue 14, point 7: ORT_PARALLEL really runs the two branches at the same time: the first
    node of each waits at a barrier for the other, which a sequential run never reaches (it
    would raise BrokenBarrierError after the timeout)."""
    import threading

    model = _branches().SerializeToString()
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["cpu"])
    barrier = threading.Barrier(2, timeout=20)
    for step in sess._plan.steps:
        if step.node.name in ("a1", "b1"):

            def meet(*args, _fn=step.fn):
                barrier.wait()
                return _fn(*args)

            step.fn = meet
    x = np.ones((64, 64), np.float32)
    sess.run(None, {"x": x})
    assert barrier.n_waiting == 0 and not barrier.broken
    # the same barrier in a sequential session cannot be passed: the check above can fail
    seq = ort.InferenceSession(model, providers=["cpu"])
    lone = threading.Barrier(2, timeout=0.2)
    first = next(s for s in seq._plan.steps if s.node.name == "a1")
    first.fn = lambda *a, _fn=first.fn: (lone.wait(), _fn(*a))[1]
    seq._plan.__post_init__()  # the sequential runner is generated from the steps
    with pytest.raises(errors.RuntimeException, match="BrokenBarrierError|a1"):
        seq.run(None, {"x": x})


def test_parallel_mode_with_one_thread_says_it_runs_sequentially():
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 1
    with pytest.warns(RuntimeWarning, match="ORT_PARALLEL.*one at a time"):
        ort.InferenceSession(_branches().SerializeToString(), so, providers=["cpu"])


def test_parallel_execution_reports_the_failing_node():
    model = _branches().SerializeToString()
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["cpu"])
    step = next(s for s in sess._plan.steps if s.node.name == "b2")

    def boom(*args):
        raise ValueError("kernel exploded")

    step.fn = boom
    with pytest.raises(errors.RuntimeException, match="b2.*kernel exploded"):
        sess.run(None, {"x": np.ones((64, 64), np.float32)})


def test_enable_mem_reuse_false_keeps_intermediates():
    model = _branches().SerializeToString()
    so = ort.SessionOptions()
    assert any(s.frees for s in ort.InferenceSession(model, so, providers=["cpu"])._plan.steps)
    so.enable_mem_reuse = False
    sess = ort.InferenceSession(model, so, providers=["cpu"])
    assert not any(s.frees for s in sess._plan.steps)
    assert sess.run(None, {"x": np.ones((64, 64), np.float32)})[0].shape == (64, 64)


def test_only_execute_path_to_fetches_skips_other_outputs():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Neg", ["x"], ["b"], name="neg"),
    ]
    model = make_model(
        nodes, [tensor("x", shape=[3])], [tensor("a", shape=[3]), tensor("b", shape=[3])]
    )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["cpu"])
    ro = ort.RunOptions()
    ro.only_execute_path_to_fetches = True
    calls = []
    plan = sess._pruned((0,))
    for s in plan.steps:
        calls.append(s.node.name)
    assert calls == ["relu"]
    np.testing.assert_array_equal(
        sess.run(["a"], {"x": np.array([-1, 0, 2], np.float32)}, ro)[0], [0, 0, 2]
    )


def test_set_seed_makes_unseeded_random_ops_reproducible():
    model = make_model(
        [helper.make_node("RandomNormal", [], ["y"], shape=[8])], [], [tensor("y", shape=[8])]
    ).SerializeToString()
    ort.set_seed(42)
    a = ort.InferenceSession(model, providers=["cpu"]).run(None, {})[0]
    ort.set_seed(42)
    b = ort.InferenceSession(model, providers=["cpu"]).run(None, {})[0]
    np.testing.assert_array_equal(a, b)
    ort.set_seed(43)
    c = ort.InferenceSession(model, providers=["cpu"]).run(None, {})[0]
    assert not np.array_equal(a, c)


def test_logger_severity_silences_warnings_and_verbose_reaches_the_logger(mlp_model, caplog):
    model = mlp_model.SerializeToString()
    with pytest.warns(RuntimeWarning, match="not installed"):
        ort.InferenceSession(model, providers=["TensorrtExecutionProvider"])
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ort.InferenceSession(model, so, providers=["TensorrtExecutionProvider"])
    so = ort.SessionOptions()
    so.log_severity_level = 0
    with caplog.at_level("DEBUG", logger="ort_core"):
        ort.InferenceSession(model, so, providers=["cpu"])
    assert any("placed on CPUExecutionProvider" in r.message for r in caplog.records)


def test_unknown_config_key_warns_and_refused_values_raise(mlp_model):
    model = mlp_model.SerializeToString()
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallbak", "1")  # misspelled
    with pytest.warns(RuntimeWarning, match="disable_cpu_ep_fallbak.*not a key"):
        ort.InferenceSession(model, so, providers=["cpu"])
    for key, value, needle in (
        ("session.load_model_format", "ORT", "ONNX models only"),
        ("session.set_denormal_as_zero", "1", "denormals"),
        ("optimization.enable_gelu_approximation", "1", "exactly"),
    ):
        so = ort.SessionOptions()
        so.add_session_config_entry(key, value)
        with pytest.raises(errors.NotImplemented, match=needle):
            ort.InferenceSession(model, so, providers=["cpu"])
    so = ort.SessionOptions()
    so.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    with pytest.raises(errors.NotImplemented, match="execution_order"):
        ort.InferenceSession(model, so, providers=["cpu"])


def test_enable_quant_qdq_zero_disables_the_qdq_fusion(mlp_model):
    so = ort.SessionOptions()
    so.add_session_config_entry("session.enable_quant_qdq", "0")
    sess = ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"])
    assert "QDQFusion" not in sess.optimization_report.applied
    from ort_core.optimizer import all_passes

    assert any(p.name == "QDQFusion" for p in all_passes())


def test_load_cancellation_flag(mlp_model):
    so = ort.SessionOptions()
    so.set_load_cancellation_flag(True)
    with pytest.raises(errors.ModelLoadCanceled):
        ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"])


def test_arena_limits_are_refused_and_the_default_arena_is_accepted():
    cpu = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    ort.create_and_register_allocator(cpu, None)
    ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, -1, -1, -1))
    with pytest.raises(errors.NotImplemented, match="max_mem"):
        ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(1 << 20, 0, -1, -1))


def test_provider_library_registration(tmp_path, mlp_model):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from ort_core.hookspecs import hookimpl
            from ort_cpu.provider import CPUExecutionProvider

            class EchoExecutionProvider(CPUExecutionProvider):
                name = "EchoExecutionProvider"
                aliases = ("echo",)

            @hookimpl
            def ort_register_providers(register):
                register(EchoExecutionProvider)
            """
        )
    )
    ort.register_execution_provider_library("echo", str(plugin))
    try:
        assert "EchoExecutionProvider" in ort.get_available_providers()
        sess = ort.InferenceSession(mlp_model.SerializeToString(), providers=["echo"])
        assert sess.get_providers()[0] == "EchoExecutionProvider"
        with pytest.raises(errors.InvalidArgument, match="already registered"):
            ort.register_execution_provider_library("echo", str(plugin))
    finally:
        ort.unregister_execution_provider_library("echo")
    assert "EchoExecutionProvider" not in ort.get_available_providers()
    lib = tmp_path / "libfoo.so"
    lib.write_bytes(b"\x7fELF")
    with pytest.raises(errors.NotImplemented, match="native"):
        ort.register_execution_provider_library("foo", str(lib))


def test_global_thread_pool_requires_opting_out_of_per_session_threads(mlp_model):
    """In a subprocess: set_global_thread_pool_sizes is process-wide and cannot be undone."""
    code = textwrap.dedent(
        f"""
        import onnx, ort_core as ort
        model = onnx.load_from_string({mlp_model.SerializeToString()!r})
        ort.set_global_thread_pool_sizes(1, 2)
        try:
            ort.InferenceSession(model, providers=["cpu"])
        except RuntimeError as e:
            assert "use_per_session_threads" in str(e), e
        else:
            raise SystemExit("no error")
        so = ort.SessionOptions()
        so.use_per_session_threads = False
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        sess = ort.InferenceSession(model, so, providers=["cpu"])
        assert sess._inter_pool._max_workers == 2
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_compat_makes_onnxruntime_imports_resolve_to_ort_core(tmp_path):
    script = tmp_path / "uses_onnxruntime.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import onnxruntime as ort
            from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument
            import onnxruntime.backend
            import ort_core.errors
            assert ort.__name__ == "ort_core" and Fail is ort_core.errors.Fail
            assert onnxruntime.backend.__name__ == "ort_core.backend"
            try:
                import onnxruntime.transformers
            except ImportError as e:
                assert "ort_core.transformers" in str(e)
            else:
                raise SystemExit("onnxruntime.transformers imported")
            print("ok", sys.argv[1:])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "ort_core.compat", str(script), "a1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok ['a1']"
    code = "import onnxruntime, ort_core.compat as c\nc.install()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "already imported" in done.stderr


def test_memory_arena_shrinkage_run_option_is_checked(mlp_model):
    sess = ort.InferenceSession(mlp_model.SerializeToString(), providers=["cpu"])
    ro = ort.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    x = np.ones((2, 4), np.float32)
    assert sess.run(None, {"x": x}, ro)[0].shape == (2, 3)
    ro = ort.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu")
    with pytest.raises(errors.InvalidArgument, match="cpu:<id>"):
        sess.run(None, {"x": x}, ro)


def test_unknown_session_keyword_warns_with_the_likely_name(mlp_model):
    with pytest.warns(UserWarning, match="'provider' \\(did you mean 'providers'\\?\\)"):
        ort.InferenceSession(mlp_model.SerializeToString(), provider=["cpu"])


def test_string_providers_argument_is_a_type_error(mlp_model):
    with pytest.raises(TypeError, match="not a string"):
        ort.InferenceSession(mlp_model.SerializeToString(), providers="CPUExecutionProvider")


def test_selection_policy_and_explicit_devices(mlp_model):
    model = mlp_model.SerializeToString()
    assert ort.InferenceSession(model).get_providers() == ["CPUExecutionProvider"]
    so = ort.SessionOptions()
    so.set_provider_selection_policy(ort.OrtExecutionProviderDevicePolicy.PREFER_CPU)
    assert ort.InferenceSession(model, so).get_providers() == ["CPUExecutionProvider"]
    devices = ort.get_ep_devices()
    so = ort.SessionOptions()
    so.set_provider_selection_policy_delegate(lambda devs, model_meta, runtime_meta, n: [devs[-1]])
    assert ort.InferenceSession(model, so).get_providers() == [devices[-1].ep_name]
    so = ort.SessionOptions()
    so.set_provider_selection_policy_delegate(lambda *a: [])
    with pytest.raises(errors.Fail, match="did not select anything"):
        ort.InferenceSession(model, so)
    if TensorProto.FLOAT:  # add_provider_for_devices with the CPU provider's device
        so = ort.SessionOptions()
        cpu = [d for d in devices if d.ep_name == "CPUExecutionProvider"]
        so.add_provider_for_devices(cpu, {})
        assert so.has_providers()
        assert ort.InferenceSession(model, so).get_providers() == ["CPUExecutionProvider"]
