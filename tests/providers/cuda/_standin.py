"""A stand-in CUDA device for the provider's host logic on machines without a GPU.

It has the interface of ``ort_cuda.device.CudaDevice`` with ``native = False``: tensors are
array_api_strict arrays that refuse every implicit conversion to numpy (as numpy refuses a cupy
array), streams are objects that record the work done inside them, events record which stream
waits for which. Kernels that need the CUDA runtime decline on it, so what runs is the provider's
own host logic (options, capability, shape math on the host, copies, streams per run, IOBinding)
with the shared array-API kernels. It proves host logic, never CUDA behaviour.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np

_ids = itertools.count()
_current = threading.local()


class StandInStream:
    def __init__(self, label: str = "") -> None:
        self.id = next(_ids)
        self.label = label
        self.kernels = 0  # kernel calls made inside this stream
        self.copies: list[str] = []
        self.waits: list[StandInEvent] = []
        self.syncs = 0

    def __enter__(self) -> StandInStream:
        stack = getattr(_current, "stack", None)
        if stack is None:
            stack = _current.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _current.stack.pop()

    def synchronize(self) -> None:
        self.syncs += 1

    def record(self) -> StandInEvent:
        return StandInEvent(self)

    def wait_event(self, event: StandInEvent) -> None:
        self.waits.append(event)

    def __repr__(self) -> str:
        return f"<StandInStream {self.id} {self.label}>"


class StandInEvent:
    def __init__(self, stream: StandInStream) -> None:
        self.stream = stream


def current_stream() -> StandInStream | None:
    stack = getattr(_current, "stack", None)
    return stack[-1] if stack else None


class StandInPool:
    def __init__(self) -> None:
        self.freed = 0

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        self.freed += 1


class _Scope:
    def __init__(self, stream: StandInStream) -> None:
        self.stream = stream

    def __enter__(self) -> StandInStream:
        self.stream.__enter__()
        self.stream.kernels += 1
        return self.stream

    def __exit__(self, *exc: Any) -> None:
        self.stream.__exit__(*exc)


class StandInDevice:
    native = False

    def __init__(self, device_id: int, memory: Any) -> None:
        import array_api_strict

        self.xp = array_api_strict
        self.cp = None
        self.id = device_id
        self.memory = memory
        self.name = "stand-in"
        self.arch = "none"
        self.pool = StandInPool()
        self._array = type(array_api_strict.asarray(0))
        self.default_stream = StandInStream("default")
        self.streams_made: list[StandInStream] = []
        self._free: list[StandInStream] = []
        self._lock = threading.Lock()
        self.uploads = 0
        self.downloads = 0

    def scope(self, stream: StandInStream) -> _Scope:
        return _Scope(stream)

    def take_stream(self) -> StandInStream:
        with self._lock:
            if self._free:
                return self._free.pop()
            s = StandInStream("run")
            self.streams_made.append(s)
            return s

    def give_stream(self, stream: StandInStream) -> None:
        with self._lock:
            self._free.append(stream)

    def external_stream(self, handle: int) -> StandInStream:
        return StandInStream(f"user:{handle}")

    def event(self) -> StandInEvent:
        return StandInEvent(self.default_stream)

    def owns(self, value: Any) -> bool:
        return isinstance(value, self._array)

    def to_device(self, array: np.ndarray, stream: StandInStream) -> Any:
        stream.copies.append("h2d")
        with self._lock:
            self.uploads += 1
        return self.xp.asarray(np.array(array, copy=True))

    def to_host(self, value: Any, stream: StandInStream) -> np.ndarray:
        stream.copies.append("d2h")
        with self._lock:
            self.downloads += 1
        return np.from_dlpack(value).copy()

    def copy_on_device(self, value: Any, stream: StandInStream) -> Any:
        return self.xp.asarray(value, copy=True)

    def module(self, *a: Any, **k: Any) -> Any:
        raise AssertionError("a CUDA C module was asked of the stand-in device")

    def synchronize(self) -> None:
        pass

    def memory_info(self) -> dict[str, int]:
        return {"used": 0, "total": 0}
