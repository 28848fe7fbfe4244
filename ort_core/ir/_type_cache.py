"""onnx's inferred value types of a model, kept on disk so that a later process creating a session
for the same model need not import onnx.

Every session types its model's values with onnx's shape inference (:mod:`._infer`), which needs
``import onnx`` (50 ms) and the inference itself. The result depends only on what inference sees
(the model without its large initializers, :func:`._convert._skeleton`), the onnx build, the op
schemas plugins register, and ort-core's guard around inference: the cache's key is a digest of
those, the first from the skeleton's bytes, so two models that differ in anything inference reads
never share an entry, wherever they are loaded from (a path, bytes, a ModelProto). A model read
from a file without external data is keyed by the file's identity instead (real path, size,
mtime, inode: what decides the skeleton, as Python's bytecode cache trusts size and mtime),
which spares serializing a model whose weights are node attributes (tree ensembles, Constant
nodes) at every start.

The cache is read and written where the schema table is in use (:func:`._schema_table.use_table`:
onnx not imported in the process, or only by ort-core); where someone else has imported onnx,
inference runs as always (a user may have registered schemas of their own). The entries are
small (a GraphProto of value_info: the names and types); the folder is pruned to the newest half
when it passes :data:`MAX_ENTRIES`. ``ORT_CORE_DISK_CACHE=0`` turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import _disk, _onnx
from . import _schema_table

__all__ = ["inferred_types"]

FORMAT = 1
MAX_ENTRIES = 4096

_HERE = os.path.dirname(os.path.abspath(__file__))
_sources: list[list] = []


def _code_stamp() -> str:
    """The environment's digest (onnx, the plugins' schemas) plus this package's sources (the
    inference guard's code)."""
    if not _sources:
        _sources.append(_disk.stamp_folder(_HERE))
    return _disk.digest((FORMAT, _schema_table.env_stamp(), _sources[0]))


def _folder() -> str:
    return os.path.join(_disk.cache_root(), "types")


def inferred_types(
    skeleton: Any,
    ops: Any,
    infer: Callable[[Any, Any], dict[str, Any]],
    *,
    source: tuple | None = None,
) -> dict[str, Any]:
    """``infer(skeleton, ops)``, from the cache where the schema table is in use. ``source``:
    the identity of the file the skeleton was made from alone (real path, size, mtime, inode),
    which keys it without serializing it (a 2-4 MB forest or recurrent model: 4-6 ms)."""
    if not _schema_table.use_table():
        return infer(skeleton, ops)
    h = _disk.blake2b(digest_size=20)
    h.update(_code_stamp().encode())
    if source is not None:
        h.update(repr(("file", source)).encode())
    else:
        h.update(skeleton.SerializeToString(deterministic=True))
    path = os.path.join(_folder(), h.hexdigest() + ".pb")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        data = None
    if data is not None:
        try:
            graph = _onnx.onnx.GraphProto.FromString(data)
            return {vi.name: vi.type for vi in graph.value_info}
        except Exception:  # a damaged entry: infer again and rewrite it
            pass
    types = infer(skeleton, ops)
    _write(path, types)
    return types


def _write(path: str, types: dict[str, Any]) -> None:
    graph = _onnx.onnx.GraphProto()
    for name, tp in types.items():
        vi = graph.value_info.add()
        vi.name = name
        vi.type.CopyFrom(tp)
    if _disk.write_atomic(path, graph.SerializeToString()):
        try:
            _prune(os.path.dirname(path))
        except OSError:
            pass


def _prune(folder: str) -> None:
    entries = [e for e in os.scandir(folder) if e.name.endswith(".pb")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for e in entries[: len(entries) - MAX_ENTRIES // 2]:
        try:
            os.remove(e.path)
        except OSError:
            pass
