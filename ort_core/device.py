"""Devices and memory: :class:`OrtDevice`, :class:`OrtMemoryInfo`, :class:`OrtArenaCfg`, enums.

A device is a typed value: its kind (CPU, GPU, FPGA, NPU), the PCI vendor of the hardware, an index
among the devices of that kind, and the kind of memory (the device's own, or host memory the device
can read). Integer values and member names are onnxruntime's, so code written against
``onnxruntime.OrtDevice``, ``OrtMemoryInfo`` and their enums runs unchanged.

onnxruntime splits the device into a native object (``capi._pybind_state.OrtDevice``: constructor
``(device_type, mem_type, [vendor_id,] device_id)``, accessors ``vendor_id()``/``mem_type()``) and a
Python wrapper (``onnxruntime.OrtDevice``: ``make()``, ``device_vendor_id()``/``device_mem_type()``,
``_get_c_device()``). ort-core has one class that answers both sets of names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import InvalidArgument

__all__ = [
    "OrtAllocatorType",
    "OrtArenaCfg",
    "OrtDevice",
    "OrtDeviceMemoryType",
    "OrtDeviceVendorId",
    "OrtMemType",
    "OrtMemoryInfo",
    "OrtMemoryInfoDeviceType",
    "get_ort_device_type",
    "get_vendor_id_for_device_type",
]


class _NativeEnum(enum.IntEnum):
    """An enum of onnxruntime's native module: ``str()`` is ``Name.MEMBER`` (as pybind11 has it)."""

    __str__ = enum.Enum.__str__


class OrtDeviceVendorId(enum.IntEnum):
    """PCI vendor ids of the hardware a device belongs to (onnxruntime's values)."""

    NONE = 0x0000
    AMD = 0x1002
    NVIDIA = 0x10DE
    ARM = 0x13B5
    MICROSOFT = 0x1414
    HUAWEI = 0x19E5
    QUALCOMM = 0x5143
    INTEL = 0x8086


class OrtAllocatorType(_NativeEnum):
    """How memory is allocated: straight from the device, or from an arena on top of it."""

    INVALID = -1
    ORT_DEVICE_ALLOCATOR = 0
    ORT_ARENA_ALLOCATOR = 1


class OrtMemType(_NativeEnum):
    """Where a kernel reads or writes a value: its device's memory or host memory."""

    CPU_INPUT = -2
    CPU_OUTPUT = -1
    CPU = -1  # onnxruntime's alias of CPU_OUTPUT
    DEFAULT = 0


class OrtDeviceMemoryType(_NativeEnum):
    """The device's own memory, or host memory the device can access (pinned, shared)."""

    DEFAULT = 0
    HOST_ACCESSIBLE = 5


class OrtMemoryInfoDeviceType(_NativeEnum):
    """The kind of device a memory belongs to (the values of :meth:`OrtDevice.device_type`)."""

    CPU = 0
    GPU = 1
    NPU = 3
    FPGA = 2


_KIND_NAMES = {0: "cpu", 1: "gpu", 2: "fpga", 3: "npu"}
_KINDS = {name: value for value, name in _KIND_NAMES.items()}
_LEGACY_DML = 4  # onnxruntime's OrtDevice.dml(): a GPU made by Microsoft
_MEM_TYPES = frozenset(range(6))  # DEFAULT, the legacy pinned types 1-4, HOST_ACCESSIBLE
_INT16 = (-(2**15), 2**15 - 1)

#: ``OrtDevice.make`` names: device type and the vendor the name implies (None: no vendor)
_MAKE_NAMES: dict[str, tuple[int, OrtDeviceVendorId | None]] = {
    "cpu": (0, None),
    "gpu": (1, None),
    "npu": (3, None),
    "cuda": (1, OrtDeviceVendorId.NVIDIA),
    "dml": (1, OrtDeviceVendorId.MICROSOFT),
    "cann": (3, OrtDeviceVendorId.HUAWEI),
    "webgpu": (1, OrtDeviceVendorId.NONE),
}


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} ({value!r}).")
    return int(value.__index__())


class OrtDevice:
    """A device: kind (cpu, gpu, fpga, npu), vendor, index, and memory type.

    Forms of the constructor:

    - ``OrtDevice(kind="gpu", vendor=OrtDeviceVendorId.NVIDIA, id=0, mem=0)``: ort-core's form.
    - ``OrtDevice(device_type, mem_type, device_id)`` or
      ``OrtDevice(device_type, mem_type, vendor_id, device_id)``: onnxruntime's native form, with
      the integers of :meth:`cpu`, :meth:`gpu`, :meth:`default_memory`...
    - ``OrtDevice(other_device)``: onnxruntime's wrapper form (a copy).

    Devices are immutable, hashable and compare by value. ``OrtDevice.make("cuda", 0)`` is the
    everyday way to name one.
    """

    __slots__ = ("_type", "_mem", "_vendor", "_id")

    def __init__(
        self,
        *args: Any,
        kind: str | None = None,
        vendor: int = OrtDeviceVendorId.NONE,
        id: int = 0,
        mem: int = OrtDeviceMemoryType.DEFAULT,
    ) -> None:
        if kind is not None:
            if args:
                raise TypeError(
                    "OrtDevice: give either kind=... or positional arguments, not both."
                )
            if kind not in _KINDS:
                raise InvalidArgument(
                    f"OrtDevice: unknown device kind {kind!r}; use one of {sorted(_KINDS)}."
                )
            self._set(_KINDS[kind], mem, vendor, id)
        elif len(args) == 1 and isinstance(args[0], OrtDevice):
            other = args[0]
            self._type, self._mem, self._vendor, self._id = (
                other._type,
                other._mem,
                other._vendor,
                other._id,
            )
        elif len(args) == 3:
            self._set(args[0], args[1], None, args[2])
        elif len(args) == 4:
            self._set(args[0], args[1], args[2], args[3])
        elif len(args) == 1:
            raise InvalidArgument(
                "`Provided object` needs to be of type OrtDevice: OrtDevice(...) wraps another "
                f"device, got {type(args[0]).__name__}; make a device with "
                "OrtDevice.make('cpu', 0) or OrtDevice(kind='gpu', id=0)."
            )
        else:
            raise TypeError(
                "OrtDevice takes (device_type, mem_type, device_id), (device_type, mem_type, "
                "vendor_id, device_id), an OrtDevice, or kind=/vendor=/id=/mem= keywords; got "
                f"{len(args)} positional argument(s)."
            )

    def _set(self, device_type: Any, mem_type: Any, vendor_id: Any, device_id: Any) -> None:
        dtype = _int(device_type, "device_type")
        vendor = None if vendor_id is None else _int(vendor_id, "vendor_id")
        if dtype == _LEGACY_DML:
            dtype = 1
            vendor = OrtDeviceVendorId.MICROSOFT if vendor in (None, 0) else vendor
        if dtype not in _KIND_NAMES:
            raise InvalidArgument(
                f"OrtDevice: device_type {dtype} is not a device kind; use OrtDevice.cpu() (0), "
                "gpu() (1), fpga() (2) or npu() (3)."
            )
        mem = _int(mem_type, "mem_type")
        if mem not in _MEM_TYPES:
            raise InvalidArgument(
                f"OrtDevice: mem_type {mem} is not a device memory type; use "
                "OrtDevice.default_memory() (0) or OrtDeviceMemoryType.HOST_ACCESSIBLE (5)."
            )
        did = _int(device_id, "device_id")
        if not _INT16[0] <= did <= _INT16[1]:
            raise InvalidArgument(f"OrtDevice: device_id {did} is out of range (a 16-bit index).")
        vendor = 0 if vendor is None else vendor
        if not 0 <= vendor <= 0xFFFFFFFF:
            raise InvalidArgument(f"OrtDevice: vendor_id {vendor} is not a PCI vendor id.")
        self._type, self._mem, self._vendor, self._id = dtype, mem, int(vendor), did

    # -- onnxruntime's native constants --------------------------------------------------------
    @staticmethod
    def cpu() -> int:
        """The device type of the CPU (0)."""
        return 0

    @staticmethod
    def gpu() -> int:
        """The device type of GPUs (1)."""
        return 1

    @staticmethod
    def cuda() -> int:
        """The device type of CUDA devices: a GPU (1)."""
        return 1

    @staticmethod
    def webgpu() -> int:
        """The device type of WebGPU devices: a GPU (1)."""
        return 1

    @staticmethod
    def fpga() -> int:
        """The device type of FPGAs (2)."""
        return 2

    @staticmethod
    def npu() -> int:
        """The device type of NPUs (3)."""
        return 3

    @staticmethod
    def cann() -> int:
        """The device type of Huawei Ascend devices: an NPU (3)."""
        return 3

    @staticmethod
    def dml() -> int:
        """onnxruntime's legacy DirectML device type (4): made into a Microsoft GPU."""
        return _LEGACY_DML

    @staticmethod
    def default_memory() -> int:
        """The memory type of a device's own memory (0)."""
        return 0

    # -- onnxruntime's wrapper ----------------------------------------------------------------
    @staticmethod
    def make(ort_device_name: str, device_id: int, vendor_id: int = -1) -> OrtDevice:
        """A device named as onnxruntime names them: ``cpu``, ``gpu``, ``npu``, ``cuda``, ``dml``,
        ``cann``, ``webgpu``.

        Args:
            ort_device_name: the device name (lower case, as onnxruntime requires).
            device_id: the index of the device among those of its kind.
            vendor_id: the PCI vendor id (an int or :class:`OrtDeviceVendorId`); -1 takes the
                vendor the name implies (NVIDIA for ``cuda``...), none for ``gpu``/``npu``.

        Raises:
            InvalidArgument: the name is not one of those above.
        """
        entry = _MAKE_NAMES.get(ort_device_name) if isinstance(ort_device_name, str) else None
        if entry is None:
            raise InvalidArgument(
                f"Unsupported device type: {ort_device_name}. OrtDevice.make takes one of "
                f"{sorted(_MAKE_NAMES)} (lower case); an ort-core provider's own device (e.g. "
                "'opencl') is named by its provider in OrtValue.ortvalue_from_numpy(...)."
            )
        dtype, implied = entry
        vendor = _int(vendor_id, "vendor_id")
        if vendor < 0:
            vendor = int(implied) if implied is not None else 0
        return OrtDevice(dtype, OrtDevice.default_memory(), vendor, device_id)

    def _get_c_device(self) -> OrtDevice:
        """The native device (the same object here)."""
        return self

    def device_id(self) -> int:
        """The index of the device among the devices of its kind."""
        return self._id

    def device_type(self) -> int:
        """The kind as onnxruntime's integer: 0 CPU, 1 GPU, 2 FPGA, 3 NPU."""
        return self._type

    def device_vendor_id(self) -> int:
        """The PCI vendor id (compare with :class:`OrtDeviceVendorId`)."""
        return self._vendor

    def device_mem_type(self) -> int:
        """0 for the device's own memory, 5 for host memory the device can access."""
        return self._mem

    vendor_id = device_vendor_id  # the native object's names
    mem_type = device_mem_type

    # -- ort-core ------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"cpu"``, ``"gpu"``, ``"fpga"`` or ``"npu"``."""
        return _KIND_NAMES[self._type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrtDevice):
            return NotImplemented
        return (self._type, self._mem, self._vendor, self._id) == (
            other._type,
            other._mem,
            other._vendor,
            other._id,
        )

    def __hash__(self) -> int:
        return hash((self._type, self._mem, self._vendor, self._id))

    def __repr__(self) -> str:
        try:
            vendor = OrtDeviceVendorId(self._vendor).name
        except ValueError:
            vendor = hex(self._vendor)
        mem = "" if self._mem == 0 else f", mem={self._mem}"
        return f"OrtDevice(kind={self.kind!r}, vendor={vendor}, id={self._id}{mem})"


def get_ort_device_type(device_type: str) -> int:
    """onnxruntime's device type integer of a device name (``"cuda"`` -> 1).

    Raises:
        InvalidArgument: not one of onnxruntime's device names.
    """
    entry = _MAKE_NAMES.get(device_type) if isinstance(device_type, str) else None
    if entry is None:
        raise InvalidArgument(
            f"Unsupported device type: {device_type}. Known device names: {sorted(_MAKE_NAMES)}."
        )
    return _LEGACY_DML if device_type == "dml" else entry[0]


def get_vendor_id_for_device_type(device_type: str) -> OrtDeviceVendorId | None:
    """The vendor a device name implies (NVIDIA for ``"cuda"``...), None for generic names."""
    entry = _MAKE_NAMES.get(device_type)
    return None if entry is None or device_type in ("cpu", "gpu", "npu") else entry[1]


# -- memory info -----------------------------------------------------------------------------
#: names ``OrtMemoryInfo(name, ...)`` accepts: stored name, device kind, vendor, memory type
_MEMORY_NAMES: dict[str, tuple[str, int, int, int]] = {
    "Cpu": ("Cpu", 0, OrtDeviceVendorId.NONE, 0),
    "Cuda": ("Cuda", 1, OrtDeviceVendorId.NVIDIA, 0),
    "CudaPinned": ("CudaPinned", 1, OrtDeviceVendorId.NVIDIA, 5),
    "Hip": ("Hip", 1, OrtDeviceVendorId.AMD, 0),
    "HipPinned": ("HipPinned", 1, OrtDeviceVendorId.AMD, 5),
    "DML": ("DML", 1, OrtDeviceVendorId.MICROSOFT, 0),
    "OpenVINO_GPU": ("OpenVINO_GPU", 1, OrtDeviceVendorId.INTEL, 0),
    "OpenVINO_RT_NPU": ("OpenVINO_RT_NPU", 3, OrtDeviceVendorId.INTEL, 0),
    "QnnHtpShared": ("QnnHtpShared", 3, OrtDeviceVendorId.QUALCOMM, 5),
    "WebGPU_Buffer": ("WebGPU_Buf", 1, OrtDeviceVendorId.NONE, 0),
    "WebGPU_Buf": ("WebGPU_Buf", 1, OrtDeviceVendorId.NONE, 0),
    "WebNN_Tensor": ("WebNN_Ten", 1, OrtDeviceVendorId.NONE, 0),
    "WebNN_Ten": ("WebNN_Ten", 1, OrtDeviceVendorId.NONE, 0),
}


def _enum(enum_cls: type[enum.IntEnum], value: Any, what: str) -> Any:
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(_int(value, what))
    except ValueError:
        names = ", ".join(f"{m.name} ({int(m)})" for m in enum_cls)
        raise InvalidArgument(f"{what} {value!r} is not an {enum_cls.__name__}: {names}.") from None


class OrtMemoryInfo:
    """Which memory a value lives in: a name, the device, the allocator kind and memory type.

    ``OrtMemoryInfo(name, allocator_type, device_id, mem_type)`` takes onnxruntime's memory names
    (``"Cpu"``, ``"Cuda"``, ``"CudaPinned"``, ``"DML"``, ``"OpenVINO_GPU"``, ...); for any other
    device use :meth:`create_v2`, as onnxruntime asks. Attributes are read-only.
    """

    __slots__ = ("_name", "_allocator_type", "_mem_type", "_device", "_alignment")

    def __init__(
        self,
        name: str,
        allocator_type: OrtAllocatorType,
        device_id: int,
        mem_type: OrtMemType,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"OrtMemoryInfo name must be a str, got {type(name).__name__}.")
        entry = _MEMORY_NAMES.get(name)
        if entry is None:
            raise InvalidArgument(
                f"Specified device is not supported. Try CreateMemoryInfo_V2. OrtMemoryInfo "
                f"knows the memory names {sorted(_MEMORY_NAMES)}; for another device use "
                "OrtMemoryInfo.create_v2(name, OrtMemoryInfoDeviceType..., vendor_id, device_id, "
                "OrtDeviceMemoryType..., alignment, OrtAllocatorType...)."
            )
        stored, kind, vendor, dev_mem = entry
        did = 0 if kind == 0 else _int(device_id, "device_id")
        self._init(
            stored,
            OrtDevice(kind, dev_mem, vendor, did),
            _enum(OrtAllocatorType, allocator_type, "allocator_type"),
            _enum(OrtMemType, mem_type, "mem_type"),
            0,
        )

    def _init(
        self,
        name: str,
        device: OrtDevice,
        allocator_type: OrtAllocatorType,
        mem_type: OrtMemType,
        alignment: int,
    ) -> None:
        self._name = name
        self._device = device
        self._allocator_type = allocator_type
        self._mem_type = mem_type
        self._alignment = alignment

    @classmethod
    def create_v2(
        cls,
        name: str,
        device_type: OrtMemoryInfoDeviceType,
        vendor_id: int,
        device_id: int,
        device_mem_type: OrtDeviceMemoryType,
        alignment: int,
        allocator_type: OrtAllocatorType,
    ) -> OrtMemoryInfo:
        """Describe memory on any device (onnxruntime's ``CreateMemoryInfo_V2``).

        Args:
            name: any name.
            device_type: the device kind.
            vendor_id: the PCI vendor id.
            device_id: the index of the device.
            device_mem_type: the device's own memory or host-accessible memory; host-accessible
                memory has ``mem_type`` CPU_OUTPUT, the device's own DEFAULT.
            alignment: the allocation alignment in bytes (0: the default).
            allocator_type: device or arena allocator.
        """
        if not isinstance(name, str):
            raise TypeError(f"OrtMemoryInfo name must be a str, got {type(name).__name__}.")
        kind = _enum(OrtMemoryInfoDeviceType, device_type, "device_type")
        dev_mem = _enum(OrtDeviceMemoryType, device_mem_type, "device_mem_type")
        align = _int(alignment, "alignment")
        if align < 0:
            raise TypeError(f"alignment must be a byte count >= 0, got {align}.")
        info = cls.__new__(cls)
        info._init(
            name,
            OrtDevice(int(kind), int(dev_mem), _int(vendor_id, "vendor_id"), device_id),
            _enum(OrtAllocatorType, allocator_type, "allocator_type"),
            OrtMemType.CPU_OUTPUT
            if dev_mem == OrtDeviceMemoryType.HOST_ACCESSIBLE
            else OrtMemType.DEFAULT,
            align,
        )
        return info

    @property
    def name(self) -> str:
        """The memory's name (``"Cpu"``, ``"Cuda"``...)."""
        return self._name

    @property
    def device_id(self) -> int:
        """The index of the device."""
        return self._device.device_id()

    @property
    def mem_type(self) -> OrtMemType:
        """Device memory (DEFAULT) or host memory (CPU_INPUT, CPU_OUTPUT)."""
        return self._mem_type

    @property
    def allocator_type(self) -> OrtAllocatorType:
        """Device or arena allocator."""
        return self._allocator_type

    @property
    def device_mem_type(self) -> OrtDeviceMemoryType:
        """The device's own memory or host-accessible memory."""
        return OrtDeviceMemoryType(self._device.device_mem_type())

    @property
    def device_vendor_id(self) -> int:
        """The PCI vendor id of the device."""
        return self._device.device_vendor_id()

    @property
    def device(self) -> OrtDevice:
        """The device this memory belongs to (ort-core)."""
        return self._device

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrtMemoryInfo):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self._name, self._device, self._allocator_type, self._mem_type, self._alignment)

    def __repr__(self) -> str:
        return (
            f"OrtMemoryInfo(name={self._name!r}, device={self._device!r}, "
            f"allocator_type={self._allocator_type.name}, mem_type={self._mem_type.name})"
        )


# -- arena configuration --------------------------------------------------------------------
_U64 = (0, 2**64 - 1)
_I32 = (-(2**31), 2**31 - 1)
_I64 = (-(2**63), 2**63 - 1)


class OrtArenaCfg:
    """Settings of a memory arena, as onnxruntime's ``OrtArenaCfg``.

    ``OrtArenaCfg(max_mem, arena_extend_strategy, initial_chunk_size_bytes,
    max_dead_bytes_per_chunk)`` or ``OrtArenaCfg({"max_mem": ..., ...})`` with any of the keys in
    :attr:`KEYS`. Unset values are -1 (``max_mem`` 0): the allocator's defaults. ort-core's
    providers allocate through their own pools; an arena configuration is accepted wherever
    onnxruntime accepts one and passed to the provider that owns the memory.
    """

    #: the settings, with their integer ranges (max_mem is a size_t)
    KEYS: ClassVar[dict[str, tuple[int, int]]] = {
        "max_mem": _U64,
        "arena_extend_strategy": _I32,
        "initial_chunk_size_bytes": _I32,
        "max_dead_bytes_per_chunk": _I32,
        "initial_growth_chunk_size_bytes": _I32,
        "max_power_of_two_extend_bytes": _I64,
    }
    __slots__ = tuple(KEYS)

    def __init__(self, *args: Any) -> None:
        for key in self.KEYS:
            object.__setattr__(self, key, 0 if key == "max_mem" else -1)
        if len(args) == 1 and isinstance(args[0], Mapping):
            for key, value in args[0].items():
                if key not in self.KEYS:
                    raise InvalidArgument(
                        f"Invalid OrtArenaCfg option: {key}. The options are {list(self.KEYS)}."
                    )
                if not isinstance(value, int):
                    raise InvalidArgument(
                        f"OrtArenaCfg option {key} must be an int, got {type(value).__name__} "
                        f"({value!r})."
                    )
                self._store(key, int(value), InvalidArgument)
        elif len(args) == 4:
            for key, value in zip(list(self.KEYS)[:4], args):
                self._store(key, _int_or_bool(value, key), TypeError)
        else:
            raise TypeError(
                "OrtArenaCfg takes (max_mem, arena_extend_strategy, initial_chunk_size_bytes, "
                "max_dead_bytes_per_chunk) or one dict of options, got "
                f"{len(args)} positional argument(s)."
            )

    def _store(self, key: str, value: int, error: type[Exception]) -> None:
        lo, hi = self.KEYS[key]
        if not lo <= int(value) <= hi:
            raise error(f"OrtArenaCfg option {key}={value} is out of range [{lo}, {hi}].")
        object.__setattr__(self, key, int(value))

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in self.KEYS:
            raise AttributeError(f"OrtArenaCfg has no option {key!r}; options: {list(self.KEYS)}.")
        self._store(key, _int_or_bool(value, key), TypeError)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)}" for k in self.KEYS)
        return f"OrtArenaCfg({inner})"


def _int_or_bool(value: Any, what: str) -> int:
    if isinstance(value, bool):
        return int(value)
    return _int(value, what)
