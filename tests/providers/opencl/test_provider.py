"""The OpenCL provider as a plugin: discovery, availability, device options and their errors,
data transfer, and the program cache shared by sessions."""

import numpy as np
import pytest

import ort_core as ort
from ort_core.errors import InvalidArgument

from ._util import OPENCL, requires_opencl


def test_registered_with_alias():
    assert OPENCL in ort.get_all_providers()
    from ort_core.plugins import get_plugin_manager

    entry = get_plugin_manager().resolve("opencl")
    assert entry is not None and entry.name == OPENCL and entry.distribution == "ort-opencl"


def test_unavailable_without_platforms(monkeypatch):
    import pyopencl as cl
    from ort_opencl.provider import OpenCLExecutionProvider

    monkeypatch.setattr(cl, "get_platforms", lambda: [])
    avail = OpenCLExecutionProvider.availability()
    assert not avail and "no OpenCL platform" in avail.reason


@requires_opencl
def test_device_options_by_index_and_name():
    from ort_opencl.device import list_devices
    from ort_opencl.provider import OpenCLExecutionProvider

    pi, pname, di, dname = list_devices()[0]
    by_index = OpenCLExecutionProvider({"platform": str(pi), "device": str(di)})
    by_name = OpenCLExecutionProvider({"platform": pname[:4].lower(), "device": dname[:5]})
    assert by_index.cl is by_name.cl
    assert by_index.cl.name == dname
    assert OpenCLExecutionProvider({}).get_options()["device"] == dname


@requires_opencl
@pytest.mark.parametrize(
    "options,words",
    [({"platform": "99"}, "out of range"), ({"device": "no-such-device"}, "matches no device"),
     ({"devcie": "0"}, "does not know")],
)  # fmt: skip
def test_bad_options_list_what_exists(options, words):
    from ort_opencl.provider import OpenCLExecutionProvider

    with pytest.raises(InvalidArgument, match=words):
        OpenCLExecutionProvider(options)


@requires_opencl
def test_round_trip_and_program_cache(mlp_model):
    from ort_opencl import device as device_mod

    data = mlp_model.SerializeToString()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    first = ort.InferenceSession(data, providers=[OPENCL]).run(None, {"x": x})[0]
    built = len(device_mod._PROGRAMS)
    second = ort.InferenceSession(data, providers=[OPENCL]).run(None, {"x": x})[0]
    assert len(device_mod._PROGRAMS) == built, "a second session rebuilt programs"
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(first, cpu, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first, second)
    ep = ort.InferenceSession(data, providers=[OPENCL])._providers[0]
    for arr in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array(2.5, np.float32),
                np.zeros((0, 3), np.float32), np.array([True, False])):  # fmt: skip
        back = ep.to_host(ep.to_device(arr))
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)
