"""Profiling: Chrome-trace JSON with onnxruntime's event names and fields.

Open the file in chrome://tracing or Perfetto, or load it with ``json.load``: it is a list of complete
events (``"ph": "X"``) with ``cat`` ``Session`` or ``Node``, ``name``, ``ts`` and ``dur`` in
microseconds, ``pid``, ``tid`` and ``args`` (for nodes: ``op_name``, ``provider``,
``input_type_shape``, ``output_type_shape``, ``activation_size``, ``output_size``).
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from typing import Any

import numpy as np

__all__ = ["Profiler"]


def _type_shape(values: list[Any]) -> list[dict[str, list[int]]]:
    out = []
    for v in values:
        if isinstance(v, np.ndarray):
            out.append({_elem_name(v.dtype): list(v.shape)})
        elif isinstance(v, list):
            out.append({"sequence": [len(v)]})
        else:
            out.append({type(v).__name__: []})
    return out


def _elem_name(dtype: np.dtype) -> str:
    return {"float32": "float", "float64": "double", "object": "string"}.get(dtype.name, dtype.name)


def _nbytes(values: list[Any]) -> int:
    return int(sum(v.nbytes for v in values if isinstance(v, np.ndarray)))


class Profiler:
    """Collects events for one session; ``end()`` writes the JSON file and returns its path."""

    def __init__(self, prefix: str = "onnxruntime_profile_") -> None:
        self.prefix = prefix
        self.events: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        self.start_ns = time.time_ns()  # wall clock, as onnxruntime reports its profiling start
        self.pid = os.getpid()
        self.lock = threading.Lock()
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        self.path = f"{prefix}_{stamp}.json"

    def _us(self, t: float) -> int:
        return int((t - self.start) * 1e6)

    def event(self, cat: str, name: str, t0: float, t1: float, args: dict | None = None) -> None:
        ev = {
            "cat": cat,
            "pid": self.pid,
            "tid": threading.get_native_id(),
            "dur": max(0, int((t1 - t0) * 1e6)),
            "ts": self._us(t0),
            "ph": "X",
            "name": name,
            "args": args or {},
        }
        with self.lock:
            self.events.append(ev)

    def node_event(self, step: Any, t0: float, t1: float, inputs: list, outputs: list) -> None:
        node = step.node
        name = node.name or f"{node.op_type}_{id(node)}"
        self.event(
            "Node",
            f"{name}_kernel_time",
            t0,
            t1,
            {
                "op_name": node.op_type,
                "provider": step.provider,
                "node_index": str(id(node)),
                "activation_size": str(_nbytes(inputs)),
                "output_size": str(_nbytes(outputs)),
                "input_type_shape": _type_shape(inputs),
                "output_type_shape": _type_shape(outputs),
            },
        )

    def end(self) -> str:
        """Write the trace and return the file name."""
        with self.lock:
            events = list(self.events)
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(events, f)
        return self.path
