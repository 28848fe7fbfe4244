"""One CUDA device as the provider uses it: cupy, a memory pool, pinned staging, streams, modules.

:class:`CudaDevice` is everything of the provider that touches the GPU runtime. Kernels and the
provider reach the device through it only (``provider.cuda``), so the provider's host logic
(options, capability, placement of copies, streams per run, CUDA-graph bookkeeping) runs unchanged
on a stand-in device in the tests of machines without a GPU; such a device says so with
``native = False`` and kernels that need CUDA C or cuBLAS decline on it.

Memory: every session on one device with the same memory settings (``gpu_mem_limit``,
``arena_extend_strategy``) shares one :class:`cupy.cuda.MemoryPool`; the kernels of a run
allocate from it (``cupy.cuda.using_allocator`` around each kernel, so other cupy users in the
process keep their own allocator). Host copies are staged through cupy's pinned-memory pool so
that they are asynchronous on the run's stream.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument, ProviderNotAvailable, RuntimeException

from .nvrtc import OPTIONS, source

__all__ = ["CudaDevice", "MemorySettings", "get_device"]


class MemorySettings:
    """The memory options of a session: ``gpu_mem_limit`` (bytes, 0 = no limit) and
    ``arena_extend_strategy`` (``kNextPowerOfTwo``: requests are rounded up to a power of two
    so freed blocks serve more later requests; ``kSameAsRequested``: exact sizes)."""

    __slots__ = ("limit", "power_of_two")

    def __init__(self, limit: int = 0, power_of_two: bool = True) -> None:
        self.limit = int(limit)
        self.power_of_two = bool(power_of_two)

    def key(self) -> tuple[int, bool]:
        return (self.limit, self.power_of_two)


def _round_up_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length() if n > 0 else 0


class CudaDevice:
    """cupy on one GPU, with one memory pool per memory settings."""

    #: kernels that need CUDA (cuBLAS, CUDA C modules, cupy.fuse) may run
    native = True

    def __init__(self, device_id: int, memory: MemorySettings) -> None:
        import array_api_compat.cupy as xp
        import cupy

        self.cp = cupy
        self.xp = xp
        self.id = int(device_id)
        self.memory = memory
        self._device = cupy.cuda.Device(self.id)
        with self._device:
            props = cupy.cuda.runtime.getDeviceProperties(self.id)
            self.pool = cupy.cuda.MemoryPool()
            if memory.limit:
                self.pool.set_limit(size=memory.limit)
            self.pinned = cupy.cuda.PinnedMemoryPool()
        self.name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        self.capability = (int(props["major"]), int(props["minor"]))
        self.arch = f"sm_{self.capability[0]}{self.capability[1]}"
        self._streams: queue.SimpleQueue = queue.SimpleQueue()
        self._modules: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()
        self._array = cupy.ndarray
        #: copies made between host and device (tests read these)
        self.uploads = 0
        self.downloads = 0

    # -- allocation ------------------------------------------------------------------------
    def malloc(self, size: int) -> Any:
        """Allocate ``size`` bytes from this device's pool (the allocator kernels run with)."""
        if self.memory.power_of_two:
            size = _round_up_pow2(size)
        try:
            return self.pool.malloc(size)
        except self.cp.cuda.memory.OutOfMemoryError as e:
            raise RuntimeException(_oom_message(self, size, e)) from None

    def scope(self, stream: Any) -> _Scope:
        """A context manager that makes this device, ``stream`` and this pool current (each
        kernel runs inside one)."""
        return _Scope(self, stream)

    # -- streams ---------------------------------------------------------------------------
    def take_stream(self) -> Any:
        """A non-blocking stream for one run (reused across runs)."""
        try:
            return self._streams.get_nowait()
        except queue.Empty:
            with self._device:
                return self.cp.cuda.Stream(non_blocking=True)

    def give_stream(self, stream: Any) -> None:
        self._streams.put(stream)

    def external_stream(self, handle: int) -> Any:
        """The user's ``cudaStream_t`` (``user_compute_stream``) as a cupy stream."""
        return self.cp.cuda.ExternalStream(int(handle), self.id)

    @property
    def default_stream(self) -> Any:
        return self.cp.cuda.Stream.null

    def event(self) -> Any:
        with self._device:
            return self.cp.cuda.Event(disable_timing=True)

    # -- copies ----------------------------------------------------------------------------
    def owns(self, value: Any) -> bool:
        return isinstance(value, self._array) and value.device.id == self.id

    def to_device(self, array: np.ndarray, stream: Any) -> Any:
        """Copy a host array to the device on ``stream``, staged through pinned memory so the
        copy is asynchronous; the staging buffer is kept until the copy completed."""
        # np.ascontiguousarray would turn a 0-d array into shape (1,)
        a = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        with self._device, stream, self.cp.cuda.using_allocator(self.malloc):
            out = self.cp.empty(a.shape, a.dtype)
            if a.nbytes:
                mem = self.pinned.malloc(a.nbytes)
                staged = np.frombuffer(mem, a.dtype, a.size).reshape(a.shape)
                staged[...] = a
                out.set(staged, stream=stream)
                done = stream.record()
                self.cp.cuda.pinned_memory._add_to_watch_list(done, mem)
        self.uploads += 1
        return out

    def to_host(self, value: Any, stream: Any) -> np.ndarray:
        """Copy a device array to a host array on ``stream`` through pinned memory and wait for
        the copy (the caller gets a complete array)."""
        self.downloads += 1
        if value.size == 0:
            return np.empty(value.shape, value.dtype)
        with self._device, stream:
            # a view (Transpose, Split, a reversed slice) is packed on the run's stream, after
            # the kernels that wrote it (cupy.ascontiguousarray would also make a 0-d array 1-d)
            src = value if value.flags.c_contiguous else value.copy(order="C")
            mem = self.pinned.malloc(value.nbytes)
            out = np.frombuffer(mem, value.dtype, value.size).reshape(value.shape)
            src.get(stream=stream, out=out)
            stream.synchronize()
        return out

    def at_address(self, ptr: int, dtype: Any, dims: Sequence[int]) -> Any:
        """A cupy array over ``ptr`` (device memory someone else owns and keeps alive)."""
        cp = self.cp
        dt = np.dtype(dtype)
        nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
        mem = cp.cuda.UnownedMemory(int(ptr), nbytes, None, self.id)
        return cp.ndarray(tuple(int(d) for d in dims), dt, cp.cuda.MemoryPointer(mem, 0))

    def copy_on_device(self, value: Any, stream: Any) -> Any:
        with self._device, stream, self.cp.cuda.using_allocator(self.malloc):
            return value.copy()

    # -- CUDA C modules --------------------------------------------------------------------
    def module(self, name: str, name_expressions: Sequence[str] = (), options: Sequence[str] = ()):
        """The ``cupy.RawModule`` of ``cuda/<name>`` compiled for this device (once per process
        and device; cupy also caches the cubin on disk)."""
        key = (name, tuple(name_expressions) + ("|",) + tuple(options))
        mod = self._modules.get(key)
        if mod is None:
            with self._lock:
                mod = self._modules.get(key)
                if mod is None:
                    with self._device:
                        mod = self.cp.RawModule(
                            code=source(name),
                            options=(*OPTIONS, *options),
                            name_expressions=tuple(name_expressions) or None,
                        )
                    self._modules[key] = mod
        return mod

    def synchronize(self) -> None:
        with self._device:
            self.cp.cuda.runtime.deviceSynchronize()

    def memory_info(self) -> dict[str, int]:
        """Bytes the pool holds (``total``) and of those in use (``used``)."""
        return {"used": int(self.pool.used_bytes()), "total": int(self.pool.total_bytes())}

    def __repr__(self) -> str:
        return f"CudaDevice({self.id}, {self.name!r}, {self.arch})"


class _Scope:
    """Device, stream and allocator made current for one kernel call (a class, not a
    generator context manager: this is on every kernel's path)."""

    __slots__ = ("dev", "stream", "_alloc")

    def __init__(self, dev: CudaDevice, stream: Any) -> None:
        self.dev = dev
        self.stream = stream

    def __enter__(self) -> Any:
        dev = self.dev
        dev._device.__enter__()
        self.stream.__enter__()
        self._alloc = dev.cp.cuda.using_allocator(dev.malloc)
        self._alloc.__enter__()
        return self.stream

    def __exit__(self, *exc: Any) -> None:
        self._alloc.__exit__(*exc)
        self.stream.__exit__(*exc)
        self.dev._device.__exit__(*exc)


def _oom_message(dev: CudaDevice, size: int, e: Exception) -> str:
    used = dev.pool.used_bytes()
    limit = dev.memory.limit
    where = f"gpu_mem_limit={limit} bytes" if limit else "the GPU's free memory"
    return (
        f"CUDAExecutionProvider: failed to allocate {size} bytes on GPU {dev.id} "
        f"({used} bytes in use by ort-core's pool) past {where}: {e}. Raise gpu_mem_limit, "
        "use a smaller batch, or free other GPU memory."
    )


_DEVICES: dict[tuple[int, tuple[int, bool]], CudaDevice] = {}
_DEVICES_LOCK = threading.Lock()


def get_device(device_id: int, memory: MemorySettings | None = None) -> CudaDevice:
    """The shared :class:`CudaDevice` of ``device_id`` with these memory settings."""
    import cupy

    memory = memory or MemorySettings()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise ProviderNotAvailable(f"CUDA is not usable: {e}") from None
    if not 0 <= device_id < count:
        raise InvalidArgument(
            f"CUDAExecutionProvider option device_id={device_id} is out of range: this machine "
            f"has {count} CUDA device(s), 0 to {count - 1}."
        )
    key = (device_id, memory.key())
    with _DEVICES_LOCK:
        dev = _DEVICES.get(key)
        if dev is None:
            dev = _DEVICES[key] = CudaDevice(device_id, memory)
    return dev
