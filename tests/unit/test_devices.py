"""Issue 14, point 5: typed devices, values kept on their device, host inputs, and the run
context. The device provider here is FakeDeviceProvider (tests/unit/providers_for_tests.py): its
DeviceArray refuses every implicit conversion to numpy, so a copy the core forgets fails."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core.device import OrtDevice, OrtDeviceVendorId
from ort_core.errors import PluginError
from ort_core.plugins import get_plugin_manager
from ort_core.provider import ExecutionProvider, KernelProvider, KernelRegistry, current_run
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import DeviceArray, FakeDeviceProvider


def test_device_array_refuses_numpy():
    """The example device provider's arrays cannot reach numpy by accident (the checks below
    rely on it)."""
    d = DeviceArray(np.ones(3, np.float32))
    with pytest.raises(TypeError):
        np.asarray(d)
    with pytest.raises(TypeError):
        np.add(d, 1)
    with pytest.raises(TypeError):
        np.concatenate([d, d])


def test_a_provider_declares_a_typed_device():
    ep = FakeDeviceProvider({})
    assert ep.device == OrtDevice(kind="gpu", vendor=0x1234, id=0)
    assert ep.memory_device.kind == "gpu" and not ep.host_memory
    cpu = get_plugin_manager().resolve("cpu").cls({})
    assert cpu.device.kind == "cpu" and cpu.memory_device == OrtDevice(kind="cpu")


def test_the_old_free_string_is_refused_with_the_fix():
    with pytest.raises(PluginError, match="device_type.*OrtDevice"):

        class Old(ExecutionProvider):  # noqa: F841 - defining it is the test
            name = "OldExecutionProvider"
            device_type = "gpu"

    with pytest.raises(PluginError, match="must be an ort_core.OrtDevice"):

        class Stringly(ExecutionProvider):  # noqa: F841
            name = "StringlyExecutionProvider"
            device = "gpu"


def test_get_device_follows_the_devices_providers_can_use(register_provider, monkeypatch):
    from ort_core.provider import Availability

    # this machine: CPU, PoCL's CPU OpenCL device, OpenVINO's CPU
    assert ort.get_device() == "CPU"

    class SomeGpu(KernelProvider):
        name = "SomeGpuExecutionProvider"
        device = OrtDevice(kind="gpu", vendor=OrtDeviceVendorId.AMD)
        registry = KernelRegistry("SomeGpuExecutionProvider")

        @classmethod
        def availability(cls):
            return Availability(True)

    register_provider(SomeGpu)
    assert ort.get_device() == "GPU"
    monkeypatch.setattr(SomeGpu, "availability", classmethod(lambda cls: Availability(False, "x")))
    assert ort.get_device() == "CPU"


def test_opencl_and_openvino_name_the_device_they_opened():
    pm = get_plugin_manager()
    ocl = pm.resolve("OpenCLExecutionProvider")
    if ocl is not None and ocl.availability():
        ep = ocl.cls({})
        import pyopencl as cl

        d = ep.cl.device
        kind = "gpu" if d.type & cl.device_type.GPU else "cpu"
        assert ep.device.kind == kind and ep.device.device_vendor_id() == int(d.vendor_id)
        assert ep.memory_device == ep.device and ep.device_name == "opencl"
        assert ep.device in ocl.cls.devices()
    from ort_openvino.provider import _ort_device

    assert _ort_device("GPU.1", ["CPU", "GPU.0", "GPU.1"]) == OrtDevice(
        kind="gpu", vendor=OrtDeviceVendorId.INTEL, id=1
    )
    assert _ort_device("HETERO:NPU,CPU", ["CPU", "NPU"]).kind == "npu"
    assert _ort_device("AUTO", ["CPU", "GPU"]).kind == "gpu"
    assert _ort_device("AUTO", ["CPU"]).kind == "cpu"
    ov = pm.resolve("OpenVINOExecutionProvider")
    if ov is not None and ov.availability():
        ep = ov.cls({"device_type": "CPU"})
        assert (
            ep.device.kind == "cpu" and ep.host_memory and ep.get_options()["device_type"] == "CPU"
        )


# -- values stay on their device ----------------------------------------------------------------
def _device_model() -> onnx.ModelProto:
    """x + x on the device, Relu on the CPU, + on the device again, Reshape (host shape input)."""
    shape = numpy_helper.from_array(np.array([2, 2], np.int64), "shape")
    return make_model(
        [
            helper.make_node("Add", ["x", "x"], ["a"], name="dev_add"),
            helper.make_node("Relu", ["a"], ["r"], name="cpu_relu"),
            helper.make_node("Add", ["r", "r"], ["b"], name="dev_add2"),
            helper.make_node("Reshape", ["b", "shape"], ["y"], name="dev_reshape"),
        ],
        [tensor("x", shape=[4])],
        [tensor("y", shape=[2, 2])],
        [shape],
    )


def test_run_with_ort_values_keeps_device_values_on_the_device(register_provider):
    register_provider(FakeDeviceProvider)
    sess = ort.InferenceSession(_device_model().SerializeToString(), providers=["fakedev", "cpu"])
    x = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
    want = (2 * np.maximum(2 * x, 0)).reshape(2, 2)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)  # host in, host out

    FakeDeviceProvider.uploads = FakeDeviceProvider.downloads = 0
    xd = ort.OrtValue.ortvalue_from_numpy(x, "gpu", 0)
    assert isinstance(xd.value(), DeviceArray) and FakeDeviceProvider.uploads == 1
    FakeDeviceProvider.uploads = 0
    (y,) = sess.run_with_ort_values(None, {"x": xd})
    # the input was read on the device and the output stayed there: only the CPU node's
    # boundary was crossed (one download for Relu, one upload after it)
    assert y.device_name() == "gpu" and isinstance(y.value(), DeviceArray)
    assert (FakeDeviceProvider.uploads, FakeDeviceProvider.downloads) == (1, 1)
    np.testing.assert_array_equal(y.numpy(), want)
    # a host OrtValue still works and its result is still on the device
    (y2,) = sess.run_with_ort_values(["y"], {"x": ort.OrtValue.ortvalue_from_numpy(x)})
    assert y2.device_name() == "gpu"
    np.testing.assert_array_equal(y2.numpy(), want)


def test_a_declared_host_input_is_copied_to_the_host_by_the_planner(register_provider):
    """Reshape's shape is a host input of the device kernel: fed at run time from a device
    value, the planner copies it down (the kernel asserts it got numpy)."""
    register_provider(FakeDeviceProvider)
    m = make_model(
        [
            helper.make_node("Add", ["s", "s"], ["s2"], name="dev_shape_add"),
            helper.make_node("Reshape", ["x", "s2"], ["y"], name="dev_reshape"),
        ],
        [tensor("x", shape=[4]), tensor("s", TensorProto.INT64, shape=[2])],
        [tensor("y")],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["fakedev", "cpu"])
    got = sess.run(None, {"x": np.arange(4, dtype=np.float32), "s": np.array([1, 1], np.int64)})
    np.testing.assert_array_equal(got[0], np.arange(4, dtype=np.float32).reshape(2, 2))


# -- the run context ------------------------------------------------------------------------------
class _StreamRegistry(KernelRegistry):
    pass


_stream_reg = _StreamRegistry("StreamExecutionProvider")
SEEN: list[tuple[str, int, object]] = []


@_stream_reg.kernel("Add", since=7)
def _stream_add(a, b):
    ctx = current_run()
    SEEN.append(("kernel", threading.get_ident(), ctx.stream("StreamExecutionProvider")))
    return DeviceArray(a.data + b.data)


class StreamProvider(FakeDeviceProvider):
    """A device provider that takes a stream per run and checks every copy happens on it."""

    name = "StreamExecutionProvider"
    aliases = ("streamdev",)
    registry = _stream_reg
    ends: list[object] = []

    def on_run_start(self, ctx):
        ctx.streams[self.name] = object()  # a fresh "stream" for this run

    def on_run_end(self, ctx):
        type(self).ends.append(ctx.streams.pop(self.name))

    def to_device(self, array, ctx=None):
        SEEN.append(("up", threading.get_ident(), ctx.stream(self) if ctx else None))
        return super().to_device(array, ctx)

    def to_host(self, value, ctx=None):
        SEEN.append(("down", threading.get_ident(), ctx.stream(self) if ctx else None))
        return super().to_host(value, ctx)


def test_each_run_has_its_own_context_seen_by_hooks_kernels_and_copies(register_provider):
    register_provider(StreamProvider)
    m = make_model(
        [helper.make_node("Add", ["x", "x"], ["y"], name="add")],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3])],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["streamdev"])
    StreamProvider.ends.clear()
    barrier = threading.Barrier(2, timeout=20)
    results: dict[int, list] = {}

    def worker(k):
        barrier.wait()
        x = np.full(3, k, np.float32)
        for _ in range(20):
            results.setdefault(k, []).append(sess.run(None, {"x": x})[0])

    SEEN.clear()
    threads = [threading.Thread(target=worker, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in (1, 2):
        for r in results[k]:
            np.testing.assert_array_equal(r, np.full(3, 2 * k, np.float32))
    # every run: upload, kernel and download on one thread with the stream of that run, and
    # the stream released at its end; 40 runs, 40 distinct streams
    by_stream: dict[int, list] = {}
    for what, thread, stream in SEEN:
        assert stream is not None, (what, "ran outside a run context")
        by_stream.setdefault(id(stream), []).append((what, thread))
    assert len(StreamProvider.ends) == 40 and len({id(s) for s in StreamProvider.ends}) == 40
    for events in by_stream.values():
        assert sorted(w for w, _ in events) == ["down", "kernel", "up"]
        assert len({t for _, t in events}) == 1
    assert current_run() is None


def test_parallel_steps_see_their_runs_context(register_provider):
    register_provider(StreamProvider)
    m = make_model(
        [
            helper.make_node("Add", ["x", "x"], ["a"], name="a"),
            helper.make_node("Add", ["x", "x"], ["b"], name="b"),
            helper.make_node("Add", ["a", "b"], ["y"], name="y"),
        ],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3])],
    )
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 2
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep a and b
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["streamdev"])
    SEEN.clear()
    np.testing.assert_array_equal(
        sess.run(None, {"x": np.ones(3, np.float32)})[0], np.full(3, 4, np.float32)
    )
    kernels = [e for e in SEEN if e[0] == "kernel"]
    assert len(kernels) == 3 and len({id(s) for _, _, s in kernels}) == 1
    assert kernels[0][2] is not None
