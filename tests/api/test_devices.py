"""Devices, memory descriptions and arena settings: the same calls on onnxruntime and ort_core give
the same integers, enum members, attributes and errors."""

from __future__ import annotations

import pytest

import ort_core
from ort_core import errors

from ._diff import same

ENUMS = ["OrtAllocatorType", "OrtMemType", "OrtDeviceMemoryType", "OrtMemoryInfoDeviceType"]


def _device(d):
    return (d.device_type(), d.device_id(), d.device_vendor_id(), d.device_mem_type())


def _native(d):
    return (d.device_type(), d.device_id(), d.vendor_id(), d.mem_type())


def _info(m):
    return (
        m.name,
        m.device_id,
        m.mem_type,
        m.allocator_type,
        m.device_mem_type,
        m.device_vendor_id,
    )


ARENA_KEYS = [
    "max_mem",
    "arena_extend_strategy",
    "initial_chunk_size_bytes",
    "max_dead_bytes_per_chunk",
    "initial_growth_chunk_size_bytes",
    "max_power_of_two_extend_bytes",
]


def _arena(a):
    return [getattr(a, k) for k in ARENA_KEYS]


# -- enums -----------------------------------------------------------------------------------------
def test_vendor_ids_are_onnxruntimes():
    same(lambda rt: [(m.name, int(m)) for m in rt.OrtDeviceVendorId])
    same(lambda rt: (rt.OrtDeviceVendorId.NVIDIA == 0x10DE, str(rt.OrtDeviceVendorId.INTEL)))


@pytest.mark.parametrize("name", ENUMS)
def test_enum_members_and_values(name):
    same(lambda rt: {k: int(v) for k, v in getattr(rt, name).__members__.items()})
    same(lambda rt: [str(v) for v in getattr(rt, name).__members__.values()])
    same(lambda rt: [repr(v) for v in getattr(rt, name).__members__.values()])


def test_enums_compare_with_ints_and_convert_from_them():
    same(lambda rt: (rt.OrtMemType.DEFAULT == 0, rt.OrtMemType.CPU, rt.OrtMemType(-2)))
    same(
        lambda rt: (
            rt.OrtDeviceMemoryType(5),
            rt.OrtMemType.CPU_INPUT.value,
            hash(rt.OrtMemType.DEFAULT) == hash(0),
        )
    )


# -- OrtDevice -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cpu", "gpu", "npu", "cuda", "dml", "cann", "webgpu"])
@pytest.mark.parametrize("device_id", [0, 3])
def test_make_by_name(name, device_id):
    same(lambda rt: _device(rt.OrtDevice.make(name, device_id)))


@pytest.mark.parametrize("name", ["opencl", "CPU", "fpga", "Cuda"])
def test_make_refuses_other_names(name):
    same(lambda rt: rt.OrtDevice.make(name, 0), f"Unsupported device type: {name}")


@pytest.mark.parametrize("name", ["gpu", "npu", "cuda"])
def test_make_with_a_vendor(name):
    same(lambda rt: _device(rt.OrtDevice.make(name, 1, 0x8086)))
    same(lambda rt: _device(rt.OrtDevice.make(name, 0, rt.OrtDeviceVendorId.AMD)))
    same(lambda rt: _device(rt.OrtDevice.make(name, 0, 0)))


def test_make_keeps_negative_ids_and_needs_an_id():
    same(lambda rt: rt.OrtDevice.make("cpu", -1).device_id())
    same(lambda rt: rt.OrtDevice.make("cuda", device_id=2).device_id())
    same(lambda rt: rt.OrtDevice.make("cpu"))


def test_native_constants():
    names = ["cpu", "gpu", "cuda", "npu", "fpga", "cann", "dml", "webgpu", "default_memory"]
    same(lambda rt: [getattr(rt.capi._pybind_state.OrtDevice, n)() for n in names])


@pytest.mark.parametrize(
    "args",
    [(0, 0, 0), (1, 0, 2), (3, 0, 1), (1, 5, 0x10DE, 2), (3, 0, 0x8086, 0), (4, 0, 0), (2, 0, 0)],
)
def test_native_constructor(args):
    same(lambda rt: _native(rt.capi._pybind_state.OrtDevice(*args)))
    same(lambda rt: _device(rt.OrtDevice(rt.capi._pybind_state.OrtDevice(*args))))


def test_native_constructor_needs_three_or_four_ints():
    same(lambda rt: rt.capi._pybind_state.OrtDevice())
    same(lambda rt: rt.capi._pybind_state.OrtDevice(0, 0))


def test_wrapper_refuses_what_is_not_a_device():
    same(lambda rt: rt.OrtDevice(1), "`Provided object` needs to be of type")


def test_device_is_a_typed_value():
    d = ort_core.OrtDevice(kind="gpu", vendor=ort_core.OrtDeviceVendorId.NVIDIA, id=1)
    assert d == ort_core.OrtDevice.make("cuda", 1) and hash(d) == hash(
        ort_core.OrtDevice.make("cuda", 1)
    )
    assert (d.kind, d.device_type(), d.device_vendor_id(), d.device_id()) == ("gpu", 1, 0x10DE, 1)
    assert d != ort_core.OrtDevice.make("cuda", 0) and d._get_c_device() is d
    assert ort_core.OrtDevice(kind="npu", mem=5).device_mem_type() == 5
    assert repr(d) == "OrtDevice(kind='gpu', vendor=NVIDIA, id=1)"
    with pytest.raises(errors.InvalidArgument, match="unknown device kind 'tpu'"):
        ort_core.OrtDevice(kind="tpu")
    with pytest.raises(errors.InvalidArgument, match="device_type 9 is not a device kind"):
        ort_core.OrtDevice(9, 0, 0)  # onnxruntime stores any integer


# -- OrtMemoryInfo ---------------------------------------------------------------------------------
MEMORY_NAMES = [
    "Cpu",
    "Cuda",
    "CudaPinned",
    "Hip",
    "HipPinned",
    "DML",
    "OpenVINO_GPU",
    "OpenVINO_RT_NPU",
    "QnnHtpShared",
    "WebGPU_Buffer",
    "WebNN_Tensor",
]


@pytest.mark.parametrize("name", MEMORY_NAMES)
@pytest.mark.parametrize("device_id", [0, 3, -1])
def test_memory_info_by_name(name, device_id):
    def snippet(rt):
        return _info(
            rt.OrtMemoryInfo(
                name, rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, device_id, rt.OrtMemType.DEFAULT
            )
        )

    same(snippet)


@pytest.mark.parametrize("mem_type", ["CPU_INPUT", "CPU_OUTPUT", "DEFAULT"])
@pytest.mark.parametrize("allocator", ["ORT_DEVICE_ALLOCATOR", "ORT_ARENA_ALLOCATOR", "INVALID"])
def test_memory_info_keeps_allocator_and_mem_type(mem_type, allocator):
    def snippet(rt):
        alloc = getattr(rt.OrtAllocatorType, allocator)
        return _info(rt.OrtMemoryInfo("Cuda", alloc, 1, getattr(rt.OrtMemType, mem_type)))

    same(snippet)


@pytest.mark.parametrize("name", ["CPU", "cpu", "Foo", "OpenVINO_CPU", "Cann"])
def test_memory_info_refuses_unknown_names(name):
    def snippet(rt):
        return rt.OrtMemoryInfo(
            name, rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, rt.OrtMemType.DEFAULT
        )

    same(snippet, "Specified device is not supported. Try CreateMemoryInfo_V2.")


def test_memory_info_attributes_are_read_only():
    def snippet(rt):
        m = rt.OrtMemoryInfo(
            "Cpu", rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, rt.OrtMemType.DEFAULT
        )
        m.name = "x"

    same(snippet)


@pytest.mark.parametrize("kind", ["CPU", "GPU", "NPU", "FPGA"])
@pytest.mark.parametrize("dev_mem", ["DEFAULT", "HOST_ACCESSIBLE"])
@pytest.mark.parametrize("allocator", ["ORT_DEVICE_ALLOCATOR", "ORT_ARENA_ALLOCATOR"])
def test_memory_info_create_v2(kind, dev_mem, allocator):
    def snippet(rt):
        m = rt.OrtMemoryInfo.create_v2(
            "Test",
            getattr(rt.OrtMemoryInfoDeviceType, kind),
            0x10DE,
            2,
            getattr(rt.OrtDeviceMemoryType, dev_mem),
            128,
            getattr(rt.OrtAllocatorType, allocator),
        )
        return _info(m)

    same(snippet)


def test_memory_info_create_v2_refuses_a_negative_alignment():
    def snippet(rt):
        return rt.OrtMemoryInfo.create_v2(
            "T",
            rt.OrtMemoryInfoDeviceType.CPU,
            0,
            0,
            rt.OrtDeviceMemoryType.DEFAULT,
            -1,
            rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
        )

    same(snippet)


def test_memory_info_carries_its_device():
    m = ort_core.OrtMemoryInfo(
        "CudaPinned", ort_core.OrtAllocatorType.ORT_DEVICE_ALLOCATOR, 1, ort_core.OrtMemType.DEFAULT
    )
    assert m.device == ort_core.OrtDevice(kind="gpu", vendor=0x10DE, id=1, mem=5)
    assert m == ort_core.OrtMemoryInfo(
        "CudaPinned", ort_core.OrtAllocatorType.ORT_DEVICE_ALLOCATOR, 1, ort_core.OrtMemType.DEFAULT
    )


# -- OrtArenaCfg -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [(8, 0, 4, 2), (0, -1, -1, -1), (2**40, 1, 0, 0), (True, 0, 0, 0)])
def test_arena_positional(args):
    same(lambda rt: _arena(rt.OrtArenaCfg(*args)))


@pytest.mark.parametrize(
    "args", [(-5, 0, 0, 0), (1, 2**31, 0, 0), (1.0, 0, 0, 0), (1, 2, 3), (), ("1", 0, 0, 0)]
)
def test_arena_positional_errors(args):
    same(lambda rt: rt.OrtArenaCfg(*args))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_mem": 16},
        {
            "max_mem": 16,
            "arena_extend_strategy": 1,
            "initial_chunk_size_bytes": 8,
            "max_dead_bytes_per_chunk": 4,
            "initial_growth_chunk_size_bytes": 2,
        },
        {
            "max_mem": 32,
            "arena_extend_strategy": 11,
            "initial_chunk_size_bytes": 18,
            "max_dead_bytes_per_chunk": 14,
            "initial_growth_chunk_size_bytes": 12,
            "max_power_of_two_extend_bytes": 17,
        },
        {"arena_extend_strategy": -1, "max_mem": True},
    ],
)
def test_arena_from_a_dict(options):
    same(lambda rt: _arena(rt.OrtArenaCfg(options)))


def test_arena_unknown_option():
    same(
        lambda rt: rt.OrtArenaCfg({"max_mem": 16, "bogus": 1}), "Invalid OrtArenaCfg option: bogus"
    )


@pytest.mark.parametrize("value", [-1, 3.0, None, "16"])
def test_arena_dict_values_must_be_ints_in_range(value):
    same(lambda rt: rt.OrtArenaCfg({"max_mem": value}))


@pytest.mark.parametrize("key", ARENA_KEYS)
def test_arena_attributes_are_settable(key):
    def snippet(rt):
        a = rt.OrtArenaCfg(0, 0, 0, 0)
        setattr(a, key, 7)
        return _arena(a)

    same(snippet)


@pytest.mark.parametrize("value", ["x", 2**40, -1])
def test_arena_setter_checks_the_value(value):
    def snippet(rt):
        a = rt.OrtArenaCfg(0, 0, 0, 0)
        a.arena_extend_strategy = value
        return _arena(a)

    same(snippet)


@pytest.mark.parametrize("name", ["cpu", "gpu", "npu", "cuda", "dml", "cann", "webgpu", "opencl"])
def test_device_type_and_vendor_of_a_name(name):
    from onnxruntime.capi import onnxruntime_inference_collection as reference

    from ort_core.device import get_ort_device_type, get_vendor_id_for_device_type

    assert get_vendor_id_for_device_type(name) == reference.get_vendor_id_for_device_type(name)
    if name == "opencl":
        with pytest.raises(Exception, match="Unsupported device type: opencl"):
            reference.get_ort_device_type(name)
        with pytest.raises(errors.InvalidArgument, match="Unsupported device type: opencl"):
            get_ort_device_type(name)
    else:
        assert get_ort_device_type(name) == reference.get_ort_device_type(name)
