import numpy as np
import pytest
from onnx import helper, numpy_helper

import ort_core as ort
from ort_core import errors
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import DeviceArray, FakeDeviceProvider


@pytest.fixture
def device_session(register_provider):
    register_provider(FakeDeviceProvider)
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [tensor("x", shape=[4])],
        [tensor("y", shape=[4])],
        [w],
    )
    return ort.InferenceSession(model.SerializeToString(), providers=["fakedev"])


def test_chain_of_runs_stays_on_the_device(device_session):
    sess = device_session
    x = ort.OrtValue.ortvalue_from_numpy(np.zeros(4, np.float32), "gpu", 0)
    assert isinstance(x.value(), DeviceArray) and x.device_name() == "gpu"
    FakeDeviceProvider.uploads = FakeDeviceProvider.downloads = 0
    binding = sess.io_binding()
    for _ in range(5):
        binding.bind_ortvalue_input("x", x)
        binding.bind_output("y", "gpu")
        sess.run_with_iobinding(binding)
        (x,) = binding.get_outputs()
        assert isinstance(x.value(), DeviceArray)
    assert FakeDeviceProvider.uploads == 0 and FakeDeviceProvider.downloads == 0
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], np.full(4, 5, np.float32))
    assert FakeDeviceProvider.downloads == 1


def test_host_binding_and_default_plan_copy(device_session):
    sess = device_session
    binding = sess.io_binding()
    binding.bind_cpu_input("x", np.arange(4, dtype=np.float32))
    binding.bind_output("y")
    sess.run_with_iobinding(binding)
    (y,) = binding.copy_outputs_to_cpu()
    np.testing.assert_array_equal(y, np.arange(4) + 1)
    assert sess.copy_count == 2  # the plain run() plan copies x in and y out


def test_preallocated_output_and_errors(device_session):
    sess = device_session
    binding = sess.io_binding()
    out = ort.OrtValue.ortvalue_from_numpy(np.empty(4, np.float32))
    binding.bind_cpu_input("x", np.ones(4, np.float32))
    binding.bind_ortvalue_output("y", out)
    sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(out.numpy(), np.full(4, 2, np.float32))
    with pytest.raises(errors.InvalidArgument, match="Failed to find NodeArg with name: nope"):
        binding.bind_cpu_input("nope", np.ones(4))
    with pytest.raises(errors.InvalidArgument, match="Invalid output name: z"):
        binding.bind_output("z")
    with pytest.raises(errors.InvalidArgument, match="no provider of this session"):
        binding.bind_output("y", "opencl")
    binding.clear_binding_inputs()
    with pytest.raises(errors.InvalidArgument, match="not bound"):
        sess.run_with_iobinding(binding)


def test_bound_device_input_is_validated(device_session):
    binding = device_session.io_binding()
    bad = ort.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32), "gpu", 0)
    binding.bind_ortvalue_input("x", bad)
    binding.bind_output(device_session.get_outputs()[0].name)
    with pytest.raises(errors.InvalidArgument, match="invalid dimensions for input: x"):
        device_session.run_with_iobinding(binding)
