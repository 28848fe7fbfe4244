"""The process-wide environment: what onnxruntime's module-level functions configure.

Version and build information, telemetry, the random seed, global thread pools, allocators shared by
sessions, execution-provider devices (``get_ep_devices``) and provider libraries registered at run
time. Logging lives in :mod:`ort_core.logs`.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import os
import platform
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from . import errors
from ._version import __version__
from .errors import Fail, InvalidArgument

__all__ = [
    "get_version_string",
    "get_build_info",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "telemetry_enabled",
    "set_seed",
    "random_seed",
    "seeded_generator",
    "set_global_thread_pool_sizes",
    "global_thread_pool_sizes",
    "create_and_register_allocator",
    "create_and_register_allocator_v2",
    "registered_allocators",
    "register_execution_provider_library",
    "unregister_execution_provider_library",
    "has_collective_ops",
    "get_ep_devices",
    "OrtEpDevice",
    "OrtHardwareDevice",
    "OrtHardwareDeviceType",
    "preload_dlls",
    "print_debug_info",
]

_lock = threading.Lock()
_state: dict[str, Any] = {
    "telemetry": True,
    "seed": None,
    "generator": None,
    "threads": None,
    "allocators": {},
    "libraries": {},
}


def _version() -> str:
    return __version__


def get_version_string() -> str:
    """ort-core's version (onnxruntime returns its own version here)."""
    return _version()


def get_build_info() -> str:
    """A one-line description of this build: version, Python, onnx and numpy, and each installed
    provider with its distribution and whether it is available here."""
    import numpy as np
    import onnx

    from .plugins import get_plugin_manager

    parts = [
        f"ort-core Build Info: version={_version()}",
        f"python={platform.python_version()}",
        f"onnx={onnx.__version__}",
        f"numpy={np.__version__}",
    ]
    for entry in get_plugin_manager().ordered():
        state = "available" if entry.availability() else "unavailable"
        parts.append(f"{entry.name}={entry.distribution} {entry.version} ({state})")
    return ", ".join(parts)


# -- telemetry ----------------------------------------------------------------------------------
def disable_telemetry_events() -> None:
    """ort-core collects and sends no telemetry; this records the user's choice (see
    :func:`telemetry_enabled`) so that a provider which would report anything must respect it."""
    _state["telemetry"] = False


def enable_telemetry_events() -> None:
    """Undo :func:`disable_telemetry_events` (ort-core itself still sends nothing)."""
    _state["telemetry"] = True


def telemetry_enabled() -> bool:
    """Whether the user allowed telemetry events (providers must check it before reporting)."""
    return bool(_state["telemetry"])


# -- random seed ----------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed the random operators (RandomNormal, RandomUniform, their Like forms, Bernoulli,
    Multinomial, Dropout in training mode) that have no ``seed`` attribute, in sessions created
    after this call: each such node then draws a reproducible sequence, run after run.

    Raises:
        TypeError: ``seed`` is not an integer.
    """
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise TypeError(f"set_seed() needs an integer, got {seed!r}.")
    import numpy as np

    with _lock:
        _state["seed"] = int(seed.__index__())
        _state["generator"] = np.random.default_rng(_state["seed"] & ((1 << 64) - 1))


def random_seed() -> int | None:
    """The seed set with :func:`set_seed`, or None (kernels then draw fresh entropy)."""
    return _state["seed"]


def seeded_generator() -> Any:
    """The random stream :func:`set_seed` started (a ``numpy.random.Generator``), or None. Random
    kernels without a ``seed`` attribute draw from it, so a program that calls ``set_seed(n)`` and
    then runs the same sessions gets the same values every time."""
    return _state["generator"]


# -- threads --------------------------------------------------------------------------------------
def set_global_thread_pool_sizes(
    intra_op_num_threads: int = 0, inter_op_num_threads: int = 0
) -> None:
    """Sizes of the process-wide thread pools used by sessions whose
    ``SessionOptions.use_per_session_threads`` is False: BLAS threads inside operators and threads
    for independent nodes in ORT_PARALLEL mode (0: the number of cores)."""
    for name, value in (("intra", intra_op_num_threads), ("inter", inter_op_num_threads)):
        if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 0:
            raise TypeError(
                f"set_global_thread_pool_sizes: {name}_op_num_threads must be an integer >= 0, "
                f"got {value!r}."
            )
    _state["threads"] = (int(intra_op_num_threads), int(inter_op_num_threads))


def global_thread_pool_sizes() -> tuple[int, int] | None:
    """(intra, inter) set with :func:`set_global_thread_pool_sizes`, or None."""
    return _state["threads"]


# -- allocators -----------------------------------------------------------------------------------
def create_and_register_allocator(mem_info: Any, arena_cfg: Any = None) -> None:
    """Register a process-wide allocator for ``mem_info``'s device, shared by sessions whose config
    entry ``session.use_env_allocators`` is "1".

    On the host ort-core's tensors are numpy arrays from the process heap, which every session
    already shares; with an arena (the default allocator type) the heap keeps freed memory for reuse
    (as ``enable_cpu_mem_arena`` does). Arena limits (``max_mem`` and the chunk sizes) cannot be
    enforced on numpy's allocations, so a configuration that sets them is refused.

    Raises:
        NotImplemented: the arena configuration sets limits, or no provider can allocate on the
            device.
    """
    _register_allocator("CPUExecutionProvider", mem_info, {}, arena_cfg)


def create_and_register_allocator_v2(
    provider_type: str, mem_info: Any, provider_options: dict, arena_cfg: Any = None
) -> None:
    """Like :func:`create_and_register_allocator`, for the device of provider ``provider_type``."""
    _register_allocator(provider_type, mem_info, dict(provider_options or {}), arena_cfg)


def _register_allocator(provider: str, mem_info: Any, options: dict, arena_cfg: Any) -> None:
    name = str(getattr(mem_info, "name", "")).lower()
    device_type = _mem_info_device_type(mem_info)
    if arena_cfg is not None:
        limits = {
            k: getattr(arena_cfg, k, None)
            for k in (
                "max_mem",
                "initial_chunk_size_bytes",
                "max_dead_bytes_per_chunk",
                "initial_growth_chunk_size_bytes",
                "max_power_of_two_extend_bytes",
            )
        }
        set_limits = {k: v for k, v in limits.items() if v not in (None, 0, -1)}
        if set_limits:
            raise errors.NotImplemented(
                f"create_and_register_allocator: ort-core cannot enforce arena limits {set_limits} "
                "(host tensors are numpy arrays from the process heap). Pass arena_cfg=None or "
                "OrtArenaCfg(0, -1, -1, -1) for the shared heap arena."
            )
    if device_type != "cpu":
        from .plugins import get_plugin_manager

        entry = get_plugin_manager().resolve(provider)
        register = getattr(entry.cls, "register_env_allocator", None) if entry else None
        if register is None:
            raise errors.NotImplemented(
                f"create_and_register_allocator: no installed provider can create a shared "
                f"allocator for memory '{getattr(mem_info, 'name', mem_info)}' (provider "
                f"'{provider}'). Install the provider of that device."
            )
        register(mem_info, options, arena_cfg)
    with _lock:
        _state["allocators"][(device_type, name)] = (provider, mem_info, arena_cfg)


def _mem_info_device_type(mem_info: Any) -> str:
    name = str(getattr(mem_info, "name", "")).lower()
    if name.startswith("cpu") or name in ("", "cpupinned"):
        return "cpu"
    return "gpu" if name.startswith(("cuda", "gpu", "opencl", "dml", "webgpu")) else name


def registered_allocators() -> dict[tuple[str, str], tuple[str, Any, Any]]:
    """Allocators registered with create_and_register_allocator, by (device type, name)."""
    return dict(_state["allocators"])


# -- provider libraries ---------------------------------------------------------------------------
def register_execution_provider_library(registration_name: str, path: str) -> None:
    """Register the provider(s) of a plugin at run time, without installing a distribution.

    ``path`` is a Python module (a dotted import name, or a ``.py`` file) implementing ort-core's
    hooks (``ort_register_providers``...), as an entry point of group ``ort_core`` would name it.
    Native libraries (``.so``/``.dll``/``.dylib``) hold onnxruntime's C ABI, which ort-core cannot
    load.

    Raises:
        Fail: the file does not exist (onnxruntime's message).
        NotImplemented: a native library.
        InvalidArgument: the name is already registered, or the module cannot be imported.
    """
    from .plugins import get_plugin_manager

    if not isinstance(registration_name, str) or not registration_name:
        raise TypeError("register_execution_provider_library needs a registration name.")
    path = os.fspath(path)
    if path.endswith((".so", ".dll", ".dylib")) or ".so." in os.path.basename(path):
        if not os.path.exists(path):
            raise Fail(
                f"Failed to load library {path} with error: {path}: cannot open shared object "
                "file: No such file or directory"
            )
        raise errors.NotImplemented(
            f"register_execution_provider_library('{registration_name}', '{path}'): ort-core "
            "cannot load native execution-provider libraries (they implement onnxruntime's C ABI). "
            "ort-core providers are Python plugins: pass the plugin's module name or .py file, or "
            "install its distribution (docs/provider-authors.md)."
        )
    with _lock:
        if registration_name in _state["libraries"]:
            raise InvalidArgument(
                f"An execution provider library is already registered as '{registration_name}'; "
                "unregister it first."
            )
        if path.endswith(".py"):
            if not os.path.isfile(path):
                raise Fail(f"Failed to load library {path} with error: no such file.")
            spec = importlib.util.spec_from_file_location(f"ort_core_ep_{registration_name}", path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            except Exception as e:
                raise InvalidArgument(f"Cannot import provider module {path}: {e}") from None
        else:
            try:
                module = importlib.import_module(path)
            except ImportError as e:
                raise InvalidArgument(
                    f"Cannot import provider module '{path}': {e}. Give an importable module "
                    "name or a .py file."
                ) from None
        get_plugin_manager().add_plugin(module, f"library:{registration_name}", path)
        _state["libraries"][registration_name] = path


def unregister_execution_provider_library(registration_name: str) -> None:
    """Remove providers registered with :func:`register_execution_provider_library`."""
    from .plugins import get_plugin_manager

    with _lock:
        if registration_name not in _state["libraries"]:
            raise InvalidArgument(
                f"No execution provider library is registered as '{registration_name}'."
            )
        get_plugin_manager().remove_plugin(f"library:{registration_name}")
        del _state["libraries"][registration_name]


def has_collective_ops() -> bool:
    """Whether this build has the collective (multi-device communication) ops: it does not."""
    return False


def preload_dlls(
    cuda: bool = True, cudnn: bool = True, msvc: bool = True, directory: Any = None
) -> None:
    """Load the native libraries of the installed providers (the CUDA provider's cupy) into the
    process now, so later imports of other GPU packages find them: each plugin's
    ``ort_preload_libraries`` hook (the core imports no provider runtime itself)."""
    from .plugins import get_plugin_manager

    if cuda or cudnn:
        get_plugin_manager().pm.hook.ort_preload_libraries(cuda=cuda, cudnn=cudnn)


def print_debug_info() -> None:
    """Print (to stdout, as asked) the build information and the providers' availability."""
    from .plugins import get_plugin_manager

    print(get_build_info())
    for entry in get_plugin_manager().ordered():
        a = entry.availability()
        print(f"  {entry.name}: {'available' if a else 'unavailable: ' + a.reason}")


# -- execution-provider devices -------------------------------------------------------------------
class OrtHardwareDeviceType(enum.IntEnum):
    """onnxruntime's hardware device kinds."""

    CPU = 0
    GPU = 1
    NPU = 2


@dataclass(frozen=True)
class OrtHardwareDevice:
    """A device of the machine: ``type`` (OrtHardwareDeviceType), ``vendor_id`` (PCI vendor id),
    ``vendor`` name, ``device_id`` and ``metadata`` (str -> str)."""

    type: OrtHardwareDeviceType
    vendor_id: int
    vendor: str
    device_id: int
    metadata: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class OrtEpDevice:
    """A (provider, device) pair that ``get_ep_devices()`` offers for device-based provider selection
    (``SessionOptions.add_provider_for_devices``, selection policies)."""

    ep_name: str
    ep_vendor: str
    device: OrtHardwareDevice
    ep_metadata: dict[str, str] = field(default_factory=dict, compare=False)
    ep_options: dict[str, str] = field(default_factory=dict, compare=False)

    def memory_info(self, memory_type: Any = None) -> Any:
        """The memory this provider allocates on this device (``OrtMemoryInfo``)."""
        from .device import (
            OrtAllocatorType,
            OrtDeviceMemoryType,
            OrtMemoryInfo,
            OrtMemoryInfoDeviceType,
            OrtMemType,
        )

        if self.device.type == OrtHardwareDeviceType.CPU and self.ep_name == "CPUExecutionProvider":
            return OrtMemoryInfo(
                "Cpu",
                OrtAllocatorType.ORT_ARENA_ALLOCATOR,
                self.device.device_id,
                OrtMemType.DEFAULT,
            )
        kind = OrtMemoryInfoDeviceType[self.device.type.name]
        return OrtMemoryInfo.create_v2(
            self.ep_name.replace("ExecutionProvider", ""),
            kind,
            self.device.vendor_id,
            self.device.device_id,
            OrtDeviceMemoryType.DEFAULT if memory_type is None else memory_type,
            0,
            OrtAllocatorType.ORT_ARENA_ALLOCATOR,
        )

    def create_sync_stream(self) -> Any:
        """Streams are per run in ort-core (no user-managed sync streams)."""
        raise errors.NotImplemented(
            "OrtEpDevice.create_sync_stream: ort-core providers manage their streams per run; "
            "there is no user-created sync stream."
        )


_CPU_VENDORS = {"GenuineIntel": ("Intel", 0x8086), "AuthenticAMD": ("AMD", 0x1022)}


def _cpu_vendor() -> tuple[str, int]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return _CPU_VENDORS.get(line.split(":", 1)[1].strip(), ("Unknown", 0))
    except OSError:
        pass
    machine = platform.machine().lower()
    if sys.platform == "darwin" and machine in ("arm64", "aarch64"):
        return "Apple", 0x106B
    return "Unknown", 0


def get_ep_devices() -> list[OrtEpDevice]:
    """One entry per (available provider, device it can run on), ordered NPU, GPU, then CPU, with
    the CPU provider last (the order of onnxruntime's device selection)."""
    from .plugins import get_plugin_manager

    vendor, vendor_id = _cpu_vendor()
    devices: list[OrtEpDevice] = []
    for entry in get_plugin_manager().ordered():
        if not entry.availability():
            continue
        described = getattr(entry.cls, "ep_devices", None)
        kinds = described() if callable(described) else None
        if not kinds:
            dev = entry.cls.device
            kinds = [
                {
                    "type": dev.kind,
                    "device_id": dev.device_id(),
                    "vendor_id": dev.device_vendor_id(),
                }
            ]
        for k in kinds:
            kind = str(k.get("type", "cpu")).upper()
            dtype = OrtHardwareDeviceType[kind if kind in ("CPU", "NPU") else "GPU"]
            is_cpu = dtype == OrtHardwareDeviceType.CPU
            hw = OrtHardwareDevice(
                dtype,
                int(k.get("vendor_id", vendor_id if is_cpu else 0)),
                str(k.get("vendor", vendor if is_cpu else "Unknown")),
                int(k.get("device_id", 0)),
                dict(k.get("metadata", {})),
            )
            devices.append(
                OrtEpDevice(
                    entry.name,
                    str(k.get("ep_vendor", "ort-core")),
                    hw,
                    {"version": entry.version, "distribution": entry.distribution},
                    dict(k.get("ep_options", {})),
                )
            )
    rank = {
        OrtHardwareDeviceType.NPU: 0,
        OrtHardwareDeviceType.GPU: 1,
        OrtHardwareDeviceType.CPU: 2,
    }
    devices.sort(key=lambda d: (rank[d.device.type], d.ep_name == "CPUExecutionProvider"))
    return devices
