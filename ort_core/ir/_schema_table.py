"""The facts of onnx's op schemas, kept on disk so that a process need not import onnx to read them.

Validation (:mod:`._validate`), the crash guard of type inference (:mod:`._infer`) and the
executor's output arity read a few facts of each node's schema: arity, attribute types, required
attributes. onnx holds the schemas in its C++ registry, which needs ``import onnx`` (50 ms) and,
on the first lookup, the registry's set-up (10 ms). This module writes every schema's facts, all
domains and versions, to one file the first time a process needs them, and reads that file
(about a millisecond) in later processes.

The file is keyed by the onnx build (its files' sizes and times), the Python version and the
plugins that register op schemas with onnx (:func:`set_registrants`: their distributions'
versions and their source files' sizes and times), so a new onnx or an edited plugin makes a
new table. In a process that has imported onnx, the facts come from onnx directly (the user or a
library may have registered schemas of their own): the table stands in for onnx only where onnx
is not loaded, or loaded by ort-core itself (:func:`use_table`). Where the cache lives and how to
turn it off: ``ort_core/_disk.py``.
"""

from __future__ import annotations

import bisect
import importlib.util
import os
import pickle
import sys
import threading
from dataclasses import dataclass
from typing import Any

from .. import _disk, _onnx

__all__ = [
    "SchemaFacts",
    "lookup",
    "versions",
    "newest_opset",
    "set_registrants",
    "env_stamp",
    "use_table",
    "go_live",
]

FORMAT = 3

# FormalParameterOption numbers
SINGLE, OPTIONAL, VARIADIC = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SchemaFacts:
    """What the checks need from one OpSchema, read once per (domain, op, opset)."""

    since_version: int
    #: per formal input / output: (name, option, min_arity); option is SINGLE, OPTIONAL, VARIADIC
    inputs: tuple[tuple[str, int, int], ...]
    outputs: tuple[tuple[str, int, int], ...]
    min_input: int
    max_input: int
    min_output: int
    max_output: int
    #: attribute name -> AttributeProto type number
    attribute_types: dict[str, int]
    required: tuple[str, ...]
    required_set: frozenset[str]
    #: the schema has required (Single) inputs / outputs, which may not be empty names
    single_inputs: bool
    single_outputs: bool
    #: onnx infers this version's outputs (an inference function or a function body)
    onnx_infers: bool


def facts_of(s: Any) -> SchemaFacts:
    """The facts of one ``onnx.defs.OpSchema``."""
    inputs = tuple((p.name, int(p.option.value), p.min_arity) for p in s.inputs)
    outputs = tuple((p.name, int(p.option.value), p.min_arity) for p in s.outputs)
    return SchemaFacts(
        since_version=s.since_version,
        inputs=inputs,
        outputs=outputs,
        min_input=s.min_input,
        max_input=s.max_input,
        min_output=s.min_output,
        max_output=s.max_output,
        attribute_types={name: int(a.type.value) for name, a in s.attributes.items()},
        required=tuple(sorted(name for name, a in s.attributes.items() if a.required)),
        required_set=frozenset(name for name, a in s.attributes.items() if a.required),
        single_inputs=any(p[1] == SINGLE for p in inputs),
        single_outputs=any(p[1] == SINGLE for p in outputs),
        onnx_infers=bool(
            s.has_type_and_shape_inference_function
            or s.has_function
            or s.has_context_dependent_function
        ),
    )


_lock = threading.Lock()
_state: dict[str, Any] = {"registrants": (), "table": None, "live": False}


def _onnx_stamp() -> Any:
    if "onnx_stamp" not in _state:
        spec = importlib.util.find_spec("onnx")
        origin = spec.origin if spec is not None else None
        _state["onnx_stamp"] = _disk.stamp_folder(os.path.dirname(origin)) if origin else None
    return _state["onnx_stamp"]


def set_registrants(stamp: tuple) -> None:
    """The plugins whose op schemas onnx will hold once it is imported (their identity: what
    makes the table): set by the plugin manager when it defers their registration."""
    with _lock:
        if stamp != _state["registrants"]:
            _state["registrants"] = stamp
            _state["table"] = None


def env_stamp() -> str:
    """A digest of what schemas and onnx's inference depend on besides the model."""
    return _disk.digest((FORMAT, sys.version, _onnx_stamp(), _state["registrants"]))


def _path() -> str:
    return os.path.join(_disk.cache_root(), "schemas", env_stamp() + ".pickle")


def _build() -> dict:
    """The table from onnx itself: (op_type, domain) -> (since-versions, the pickled facts of
    each): a process unpickles only the ops its models use (0.07 ms for the index against 0.9
    for every op's facts)."""
    onnx = _onnx.real()
    ops: dict[tuple[str, str], list] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        f = facts_of(s)
        fields = tuple(getattr(f, name) for name in SchemaFacts.__slots__)
        ops.setdefault((s.name, s.domain), []).append((s.since_version, fields))
    index = {}
    for key, entries in ops.items():
        entries.sort(key=lambda e: e[0])
        blob = pickle.dumps([fields for _, fields in entries], protocol=pickle.HIGHEST_PROTOCOL)
        index[key] = ([since for since, _ in entries], blob)
    return {"format": FORMAT, "newest": onnx.defs.onnx_opset_version(), "ops": index}


def _table() -> dict:
    table = _state["table"]
    if table is not None:
        return table
    with _lock:
        if _state["table"] is not None:
            return _state["table"]
        path = _path()
        table = None
        try:
            with open(path, "rb") as f:
                table = pickle.load(f)
            if not isinstance(table, dict) or table.get("format") != FORMAT:
                table = None
        except Exception:  # none yet, or unreadable: build it
            table = None
        if table is None:
            table = _build()
            _disk.write_atomic(path, pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))
        table["facts"] = {}  # (op_type, domain) -> [SchemaFacts], as they are asked for
        _state["table"] = table
        return table


def use_table() -> bool:
    """Whether facts come from the table: the cache is on, and onnx is not imported in this
    process or only by ort-core itself (to build the table or to infer a new model's types)."""
    return _disk.enabled() and not _onnx.foreign() and not _state["live"]


def go_live() -> None:
    """From now on ask onnx: a schema was registered that the table's key does not cover (a
    plugin added in process)."""
    _state["live"] = True


def lookup(op_type: str, domain: str, version: int) -> SchemaFacts | None:
    """The facts of ``domain::op_type`` in force at opset ``version`` from the table, or None
    when onnx defines no such op at that version."""
    table = _table()
    key = (op_type, domain)
    entry = table["ops"].get(key)
    if entry is None:
        return None
    i = bisect.bisect_right(entry[0], version)
    if not i:
        return None
    facts = table["facts"].get(key)
    if facts is None:
        facts = table["facts"][key] = [SchemaFacts(*f) for f in pickle.loads(entry[1])]
    return facts[i - 1]


def versions(op_type: str, domain: str) -> list[int]:
    """The since-versions of an op's schemas (table), oldest first."""
    entry = _table()["ops"].get((op_type, domain))
    return list(entry[0]) if entry is not None else []


def newest_opset() -> int:
    """The newest opset of the default domain the installed onnx knows."""
    if use_table():
        return _table()["newest"]
    return _onnx.real().defs.onnx_opset_version()
