"""One OpenCL device as the provider uses it: context, in-order queue, memory pool, program cache.

Devices are shared per (platform, device) within a process, so every session (and every
``OrtValue`` made for ``"opencl"``) on the same device uses one context: arrays made by one are
valid in the others. Built programs are cached per (context, source, options) for the life of the
process, so a second session with the same kernels builds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import pyopencl.tools as clt

from ort_core.errors import InvalidArgument, ProviderNotAvailable

__all__ = ["OpenCLDevice", "get_device", "list_devices", "CTYPES", "ctype"]

#: numpy dtype -> OpenCL C type of one element (bool is stored as one byte 0/1).
CTYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.float16): "half",
    np.dtype(np.int8): "char",
    np.dtype(np.uint8): "uchar",
    np.dtype(np.int16): "short",
    np.dtype(np.uint16): "ushort",
    np.dtype(np.int32): "int",
    np.dtype(np.uint32): "uint",
    np.dtype(np.int64): "long",
    np.dtype(np.uint64): "ulong",
    np.dtype(np.bool_): "uchar",
}
#: element size -> unsigned C type, for kernels that only move bytes (copies, gathers).
UINT_BY_SIZE = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}

_PROGRAMS: dict[tuple[int, str, str], Any] = {}
_PROGRAMS_LOCK = threading.Lock()
_DEVICES: dict[tuple[int, int], OpenCLDevice] = {}
_DEVICES_LOCK = threading.Lock()


def ctype(dtype: np.dtype) -> str:
    return CTYPES[np.dtype(dtype)]


class OpenCLDevice:
    """Context, queue, memory pool and kernel cache of one OpenCL device."""

    def __init__(self, platform: Any, device: Any) -> None:
        self.platform = platform
        self.device = device
        self.name = device.name.strip()
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context)
        self.pool = clt.MemoryPool(clt.ImmediateAllocator(self.queue))
        ext = device.extensions.split()
        self.fp16 = "cl_khr_fp16" in ext
        self.fp64 = "cl_khr_fp64" in ext or device.double_fp_config != 0
        self.max_group = int(device.max_work_group_size)
        self.local_mem = int(device.local_mem_size)
        self._kernels: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._dummy = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, 16)
        #: how many host->device and device->host copies this device made (tests read these).
        self.uploads = 0
        self.downloads = 0

    # -- programs ----------------------------------------------------------------------------
    def program(self, source: str, options: Sequence[str] = ()) -> Any:
        """The built program of ``source`` (built once per context, source and options)."""
        key = (self.context.int_ptr, source, " ".join(options))
        prg = _PROGRAMS.get(key)
        if prg is None:
            with _PROGRAMS_LOCK:
                prg = _PROGRAMS.get(key)
                if prg is None:
                    prg = cl.Program(self.context, source).build(options=list(options))
                    _PROGRAMS[key] = prg
        return prg

    def kernel(self, source: str, name: str, arg_dtypes: Sequence[Any]) -> Any:
        """Kernel ``name`` of ``source``; ``arg_dtypes`` gives numpy types of scalar arguments
        (None for buffers), so callers may pass plain Python numbers."""
        key = (source, name)
        k = self._kernels.get(key)
        if k is None:
            k = getattr(self.program(source), name)
            k.set_scalar_arg_dtypes(list(arg_dtypes))
            self._kernels[key] = k
        return k

    def launch(self, kernel: Any, gsize: Sequence[int], lsize: Sequence[int] | None, *args) -> None:
        """Enqueue ``kernel``; setting arguments and enqueueing are one step under a lock, so
        runs on several threads may share kernels."""
        with self._lock:
            kernel(self.queue, tuple(gsize), None if lsize is None else tuple(lsize), *args)

    # -- memory ------------------------------------------------------------------------------
    def empty(self, shape: Sequence[int], dtype: Any) -> cla.Array:
        return cla.Array(
            self.queue, tuple(int(s) for s in shape), np.dtype(dtype), allocator=self.pool
        )

    def fill(self, arr: cla.Array, value: Any) -> cla.Array:
        """Fill ``arr`` (contiguous) with one value of its dtype."""
        if arr.size:
            pattern = np.asarray(value, dtype=arr.dtype).reshape(1)
            cl.enqueue_fill_buffer(
                self.queue, arr.base_data, pattern, arr.offset, arr.size * arr.dtype.itemsize
            )
        return arr

    def buf(self, arr: cla.Array) -> tuple[Any, int]:
        """(buffer, offset in elements) of an array, for kernel arguments."""
        data = arr.base_data
        if data is None:
            return self._dummy, 0
        return data, arr.offset // arr.dtype.itemsize

    def to_device(self, array: np.ndarray) -> cla.Array:
        a = array if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(array.shape)
        if a.dtype not in CTYPES:
            raise InvalidArgument(
                f"the OpenCL provider cannot hold tensors of element type {a.dtype}; supported: "
                f"{', '.join(sorted(str(d) for d in CTYPES))}."
            )
        out = self.empty(a.shape, a.dtype)
        if a.size:
            out.set(a)
        self.uploads += 1
        return out

    def to_host(self, arr: cla.Array) -> np.ndarray:
        self.downloads += 1
        if arr.size == 0:
            return np.empty(arr.shape, arr.dtype)
        return arr.get()

    def owns(self, value: Any) -> bool:
        return isinstance(value, cla.Array) and value.context.int_ptr == self.context.int_ptr

    def __repr__(self) -> str:
        return f"OpenCLDevice({self.platform.name.strip()!r}, {self.name!r})"


def list_devices() -> list[tuple[int, str, int, str]]:
    """(platform index, platform name, device index, device name) of every OpenCL device."""
    rows = []
    for pi, p in enumerate(cl.get_platforms()):
        try:
            devs = p.get_devices()
        except cl.Error:
            devs = []
        for di, d in enumerate(devs):
            rows.append((pi, p.name.strip(), di, d.name.strip()))
    return rows


def _pick(kind: str, choice: str, names: list[str]) -> int:
    """Index of ``choice`` (an index or a case-insensitive name substring) among ``names``."""
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names))
    if choice.strip().lstrip("-").isdigit():
        i = int(choice)
        if 0 <= i < len(names):
            return i
        raise InvalidArgument(
            f"OpenCLExecutionProvider option {kind}={choice!r} is out of range; the {kind}s are: "
            f"{listing}."
        )
    hits = [i for i, n in enumerate(names) if choice.lower() in n.lower()]
    if not hits:
        raise InvalidArgument(
            f"OpenCLExecutionProvider option {kind}={choice!r} matches no {kind}; the {kind}s "
            f"are: {listing}. Give an index or part of a name."
        )
    return hits[0]


def get_device(platform: str | None = None, device: str | None = None) -> OpenCLDevice:
    """The shared device chosen by the provider options (default: the first device found)."""
    try:
        platforms = cl.get_platforms()
    except cl.Error as e:
        raise ProviderNotAvailable(f"pyopencl finds no OpenCL platform ({e}).") from None
    if not platforms:
        raise ProviderNotAvailable("pyopencl finds no OpenCL platform.")

    def devices_of(p):
        try:
            return p.get_devices()
        except cl.Error:
            return []

    if platform is not None:
        pis = [_pick("platform", platform, [p.name.strip() for p in platforms])]
    else:
        pis = [i for i, p in enumerate(platforms) if devices_of(p)]
        if not pis:
            raise ProviderNotAvailable("no OpenCL platform has a device.")
    if device is not None:
        names = [
            (pi, di, d.name.strip()) for pi in pis for di, d in enumerate(devices_of(platforms[pi]))
        ]
        if not names:
            raise ProviderNotAvailable(f"OpenCL platform {pis[0]} has no device.")
        k = _pick("device", device, [n for _, _, n in names])
        pi, di = names[k][0], names[k][1]
    else:
        pi = pis[0]
        if not devices_of(platforms[pi]):
            raise ProviderNotAvailable(
                f"OpenCL platform {pi} ({platforms[pi].name.strip()}) has no device."
            )
        di = 0
    key = (pi, di)
    with _DEVICES_LOCK:
        dev = _DEVICES.get(key)
        if dev is None:
            dev = OpenCLDevice(platforms[pi], devices_of(platforms[pi])[di])
            _DEVICES[key] = dev
    return dev
