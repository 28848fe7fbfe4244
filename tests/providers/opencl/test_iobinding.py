"""IOBinding with the OpenCL provider: inputs and outputs stay on the device between runs, so a
chain of runs makes no host round trips (the device's transfer counters prove it)."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core as ort
from ort_core.errors import InvalidArgument

from ._util import OPENCL, requires_opencl

pytestmark = requires_opencl


def _model():
    """y = Relu(x @ W + b) (a 6x6 map, so outputs can feed the next run)."""
    rng = np.random.default_rng(1)
    w = helper.make_tensor("W", TensorProto.FLOAT, [6, 6], rng.standard_normal(36) * 0.3)
    b = helper.make_tensor("B", TensorProto.FLOAT, [6], rng.standard_normal(6))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "B"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 6])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_chain_of_runs_stays_on_the_device():
    data = _model()
    sess = ort.InferenceSession(data, providers=[OPENCL])
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    dev = sess._providers[0].cl
    x0 = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    value = ort.OrtValue.ortvalue_from_numpy(x0, "opencl", 0)
    assert value.device_name() == "opencl"
    binding = sess.io_binding()
    ref = x0
    up, down = dev.uploads, dev.downloads
    for _ in range(4):
        binding.bind_ortvalue_input("x", value)
        binding.bind_output("y", "opencl")
        sess.run_with_iobinding(binding)
        (value,) = binding.get_outputs()
        assert value.device_name() == "opencl" and sess._providers[0].owns(value.value())
        ref = cpu.run(None, {"x": ref})[0]
    assert (dev.uploads, dev.downloads) == (up, down), (
        "a run copied a tensor between host and device"
    )
    np.testing.assert_allclose(value.numpy(), ref, rtol=1e-5, atol=1e-6)
    assert dev.downloads == down + 1


def test_host_bound_input_and_output_are_copied():
    sess = ort.InferenceSession(_model(), providers=[OPENCL])
    dev = sess._providers[0].cl
    x = np.ones((3, 6), np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y")
    sess.run_with_iobinding(binding)  # the first run schedules this binding (constants uploaded)
    up, down = dev.uploads, dev.downloads
    sess.run_with_iobinding(binding)
    (out,) = binding.copy_outputs_to_cpu()
    assert isinstance(out, np.ndarray)
    assert dev.uploads == up + 1 and dev.downloads == down + 1
    np.testing.assert_allclose(out, sess.run(None, {"x": x})[0])


def test_to_device_keeps_device_arrays_and_rejects_raw_pointers():
    sess = ort.InferenceSession(_model(), providers=[OPENCL])
    ep = sess._providers[0]
    arr = ep.to_device(np.zeros((3, 6), np.float32))
    assert ep.to_device(arr) is arr
    binding = sess.io_binding()
    with pytest.raises(InvalidArgument):
        binding.bind_input("x", "opencl", 0, np.float32, [3, 6], 12345)
