"""ONNX protobuf <-> IR, and loading models from a path, bytes or a ModelProto."""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Collection
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from .. import _onnx
from .._onnx import helper, numpy_helper
from ..errors import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile
from . import _schema_table, _type_cache
from ._core import Graph, Model, Node, sparse_to_dense
from ._infer import infer_types
from ._validate import validate_graph

__all__ = ["load_model", "model_from_proto", "model_to_proto", "graph_from_proto", "graph_to_proto"]

#: Oldest and newest ONNX IR versions ort-core accepts.
onnx = _onnx.onnx

MIN_IR_VERSION = 3
MAX_IR_VERSION = onnx.IR_VERSION


class _Sources:
    """Where external data comes from besides the model's folder: initializers given by the user
    (``SessionOptions.add_initializer`` / ``add_external_initializers``) and external-data files
    given in memory (``add_external_initializers_from_files_in_memory``)."""

    __slots__ = ("initializers", "files", "real_dir")

    def __init__(self, initializers: dict[str, Any], files: dict[str, bytes]) -> None:
        self.initializers = initializers
        self.files = files
        self.real_dir: str | None = None  # the folder of the model file, symlinks resolved


_SOURCES: contextvars.ContextVar[_Sources | None] = contextvars.ContextVar(
    "ort_core_external_sources", default=None
)


def load_model(
    model: str | os.PathLike | bytes | onnx.ModelProto | Model,
    *,
    initializers: dict[str, Any] | None = None,
    external_files: dict[str, bytes] | None = None,
    external_folder: str | None = None,
) -> Model:
    """Load a model from a path, serialized bytes, a ModelProto or an IR Model.

    External data is read relative to the model's folder (for bytes or a ModelProto, relative to
    ``external_folder`` when given); the location string must stay inside that folder (no ``..``,
    no absolute path), while symlinks placed in the folder are followed, as in the Hugging Face cache.

    Args:
        model: the model.
        initializers: initializer name -> array or OrtValue, replacing the model's data (and not
            read from external files).
        external_files: external-data file name -> its bytes, read instead of the file.
        external_folder: the folder external data is relative to when ``model`` is not a path.

    Raises:
        NoSuchFile: the path does not exist.
        InvalidProtobuf: the bytes are not a ModelProto.
        InvalidGraph: IR version or opset out of range, or the graph is malformed.
        InvalidArgument: an external-data location is unsafe or missing, or a given initializer
            does not exist in the model or does not match its type and shape.
    """
    sources = _Sources(
        {k: _as_array(v, k) for k, v in (initializers or {}).items()},
        {os.path.normpath(k): v for k, v in (external_files or {}).items()},
    )
    token = _SOURCES.set(sources)
    try:
        m = _load_model(model, external_folder)
    finally:
        _SOURCES.reset(token)
    if sources.initializers:
        _override_initializers(m, sources.initializers)
    return m


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    elif callable(getattr(value, "numpy", None)):
        arr = np.asarray(value.numpy())
    else:
        raise InvalidArgument(f"initializer '{name}' must be an OrtValue or a numpy array.")
    view = arr.view()  # the runtime marks initializers read-only; the caller's array stays as is
    return view


def _override_initializers(m: Model, given: dict[str, np.ndarray]) -> None:
    found = set()
    graphs = [m.graph] + [sub for _, n in m.graph.walk() for sub in n.subgraphs.values()]
    for g in graphs:
        for name, arr in given.items():
            if name in g.initializers:
                old = g.initializers[name]
                if isinstance(old, np.ndarray) and (
                    old.dtype != arr.dtype or old.shape != arr.shape
                ):
                    raise InvalidArgument(
                        f"The initializer given for '{name}' is {arr.dtype}{list(arr.shape)} but the "
                        f"model's is {old.dtype}{list(old.shape)}; give one of the same type and "
                        "shape."
                    )
                g.initializers[name] = arr
                found.add(name)
    missing = sorted(set(given) - found)
    if missing:
        raise InvalidArgument(
            f"SessionOptions.add_initializer/add_external_initializers named {missing}, which "
            "the model has no initializer of. Check the names (get them from the model's "
            "graph.initializer)."
        )


def _load_model(model: Any, external_folder: str | None) -> Model:
    if isinstance(model, Model):
        return model
    base_dir = None
    source = None  # the file the proto comes from, as the type cache keys it
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise NoSuchFile(
                f"Load model from {path} failed: file does not exist. Check the path and that the "
                "model was written completely."
            )
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
        source = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)
        proto = _parse(data, f"file {path}")
        base_dir = os.path.dirname(os.path.abspath(path))
        sources = _SOURCES.get()
        if sources is not None:
            sources.real_dir = os.path.dirname(os.path.realpath(path))
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto = _parse(bytes(model), "the bytes given")
        base_dir = external_folder
    elif isinstance(model, onnx.ModelProto):
        proto = model
        base_dir = external_folder
    else:
        raise InvalidArgument(
            f"Cannot load a model from {type(model).__name__}: give a file path, the model's bytes "
            "or an onnx.ModelProto."
        )
    if _has_external_data(proto):
        source = None  # what inference sees depends on other files too
        if base_dir is None and _needs_folder(proto):
            raise InvalidArgument(
                "The model refers to external data but was given as bytes or a ModelProto, so there "
                "is no folder to read it from. Load it from its file path instead, call "
                "onnx.load(path) (which loads the external data) and pass the ModelProto, or set "
                "the session config entry session.model_external_initializers_file_folder_path."
            )
        # Dense initializers are read from their files straight into arrays when the graph is
        # converted (one copy of the weights, never two); only the rare external tensors
        # elsewhere (node attributes, sparse initializers) are loaded into a copy of the proto.
        check_external_locations(proto, base_dir or "")
        if _has_external_data(proto, initializers=False):
            proto = _copy(proto)
            load_external_data(proto, base_dir or "", initializers=False)
    m = model_from_proto(proto, base_dir=base_dir, source=source)
    m.base_dir = base_dir
    return m


def _needs_folder(proto: onnx.ModelProto) -> bool:
    """Whether some external tensor must be read from a file (not given by the user)."""
    sources = _SOURCES.get()
    for t in _all_tensors(proto):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        if sources is not None and (
            t.name in sources.initializers or _location(t) in sources.files
        ):
            continue
        return True
    return False


def _location(tensor: onnx.TensorProto) -> str:
    for e in tensor.external_data:
        if e.key == "location":
            return os.path.normpath(e.value) if e.value else ""
    return ""


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    p = onnx.ModelProto()
    p.CopyFrom(proto)
    return p


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidProtobuf(
            f"Failed to load model from {what}: protobuf parsing failed ({e}). The data is not an "
            "ONNX model; check that the file is a complete .onnx file."
        ) from None
    if not proto.HasField("graph") and proto.ir_version == 0:
        raise InvalidProtobuf(
            f"Failed to load model from {what}: the data parsed as an empty ModelProto (no graph, "
            "no IR version). It is not an ONNX model."
        )
    return proto


def _all_tensors(proto: onnx.ModelProto, initializers: bool = True):
    """Every TensorProto of the model; with ``initializers=False`` all but the graphs' dense
    initializers (node attributes and sparse initializers)."""
    if initializers:
        yield from _onnx.all_tensors(proto)
        return
    yield from _onnx.attribute_tensors(proto)
    for g in _all_graph_protos(proto.graph):
        for st in g.sparse_initializer:
            yield st.values
            yield st.indices


def _all_graph_protos(g: onnx.GraphProto):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_graph_protos(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    yield from _all_graph_protos(sub)


def _has_external_data(proto: onnx.ModelProto, initializers: bool = True) -> bool:
    return any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in _all_tensors(proto, initializers)
    )


def external_file(tensor: onnx.TensorProto, base_dir: str) -> tuple[str, int, int | None]:
    """(file, offset, length or None for "to the end") of an external tensor, after checking that
    its location stays inside ``base_dir`` and that the file exists.

    Two checks, as onnxruntime makes them. The location string the model holds must be a relative
    path that does not climb out of the folder (no ``..`` component, not absolute). Symlinks are
    followed, but the file they lead to must lie under the model's folder or under the folder of
    the model file itself once its own symlink is resolved: the Hugging Face cache keeps a model's
    files as symlinks from ``snapshots/<rev>/`` into ``blobs/``, and both land in ``blobs/``.

    Raises:
        InvalidArgument: the location is absolute, empty or leaves the model's folder, or a
            symlink leads outside the allowed folders.
        NoSuchFile: the file does not exist.
    """
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    norm = os.path.normpath(location) if location else ""
    drive, _ = os.path.splitdrive(location)
    if (
        not location
        or os.path.isabs(location)
        or drive
        or norm == ".."
        or norm.startswith(".." + os.sep)
        or norm.startswith("../")
    ):
        raise InvalidArgument(
            f"Tensor '{tensor.name}' has external data at location '{location}', which is "
            f"outside the model's folder. For safety, external data must be a relative path "
            "inside the folder of the .onnx file; move the data file there and fix the location."
        )
    target = os.path.join(base_dir, norm)
    if not os.path.isfile(target):  # follows symlinks
        raise NoSuchFile(
            f"External data file '{location}' of tensor '{tensor.name}' does not exist in the "
            "model's folder. Copy it next to the .onnx file."
        )
    real = os.path.realpath(target)
    roots = {os.path.realpath(base_dir)}
    sources = _SOURCES.get()
    if sources is not None and sources.real_dir:
        roots.add(sources.real_dir)
    if not any(os.path.commonpath([root, real]) == root for root in roots):
        raise InvalidArgument(
            f"External data path validation failed: '{location}' of tensor '{tensor.name}' is a "
            f"symlink to '{real}', which is neither under the model's folder nor under the folder "
            "the model file itself resolves to. Place the data with the model (or link the model "
            "from the same folder as its data, as the Hugging Face cache does)."
        )
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise InvalidArgument(
            f"Tensor '{tensor.name}' has a non-integer external data offset or length "
            f"({info.get('offset')!r}, {info.get('length')!r})."
        ) from None
    return target, offset, length


def _in_memory(tensor: onnx.TensorProto) -> bytes | None:
    """The bytes of an external tensor whose file was given in memory (None otherwise)."""
    sources = _SOURCES.get()
    if sources is None or not sources.files:
        return None
    data = sources.files.get(_location(tensor))
    if data is None:
        return None
    info = {e.key: e.value for e in tensor.external_data}
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise InvalidArgument(
            f"Tensor '{tensor.name}' has a non-integer external data offset or length."
        ) from None
    return data[offset:] if length is None else data[offset : offset + length]


def check_external_locations(proto: onnx.ModelProto, base_dir: str) -> None:
    """Check every external tensor's location up front (before anything is read); tensors the
    user supplied (as initializers or in-memory files) need no file."""
    sources = _SOURCES.get()
    for tensor in _all_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            if sources is not None and (
                tensor.name in sources.initializers or _location(tensor) in sources.files
            ):
                continue
            external_file(tensor, base_dir)


def load_external_data(proto: onnx.ModelProto, base_dir: str, initializers: bool = True) -> None:
    """Read the external tensors of ``proto`` from files under ``base_dir``, in place (with
    ``initializers=False``, all but the dense initializers)."""
    for tensor in _all_tensors(proto, initializers):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        data = _in_memory(tensor)
        if data is not None:
            tensor.raw_data = data
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]
            continue
        location, offset, length = external_file(tensor, base_dir)
        try:  # read here: onnx's reader refuses the symlinks external_file allows
            with open(location, "rb") as f:
                f.seek(offset)
                data = f.read() if length is None else f.read(length)
        except OSError as e:
            raise InvalidArgument(
                f"Cannot read external data of tensor '{tensor.name}' from '{location}': {e}"
            ) from None
        if length is not None and len(data) != length:
            raise InvalidArgument(
                f"External data file '{location}' of tensor '{tensor.name}' is too short: "
                f"{len(data)} bytes at offset {offset}, {length} expected."
            )
        tensor.raw_data = data
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _external_array(t: onnx.TensorProto, base_dir: str | None) -> np.ndarray:
    """An external initializer read from its file into an array: one copy of the data, never
    placed in the proto (whose memory protobuf would keep until the whole model is freed)."""
    sources = _SOURCES.get()
    if sources is not None and t.name in sources.initializers:
        return sources.initializers[t.name]
    data = _in_memory(t)
    if data is not None:
        return _decode_external(t, data, "memory", 0)
    if base_dir is None:
        raise InvalidArgument(
            f"Initializer '{t.name}' refers to external data but the model was not loaded from "
            "a file, so there is no folder to read it from. Load it from its file path."
        )
    target, offset, length = external_file(t, base_dir)
    try:
        with open(target, "rb") as f:
            f.seek(offset)
            arr = _read_plain(t, f, length)
            if arr is not None:
                return arr
            data = f.read() if length is None else f.read(length)
    except OSError as e:
        raise InvalidArgument(
            f"Cannot read external data of tensor '{t.name}' from '{target}': {e}"
        ) from None
    return _decode_external(t, data, target, offset)


def _read_plain(t: onnx.TensorProto, f, length: int | None) -> np.ndarray | None:
    """A tensor of a plain numeric type whose stored length is its size, read from ``f`` straight
    into a new writable array (no bytes object and no copy of it: BERT-base's 440 MB of weights
    took 0.5 s more); None, ``f`` back where it was, for every other case."""
    try:
        np_dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
    except (KeyError, TypeError, ValueError):
        return None
    count = int(np.prod(t.dims, dtype=np.int64))
    if (
        np_dtype.kind not in "biuf"
        or t.data_type in _PACKED_TYPES
        or length is None
        or length != count * np_dtype.itemsize
    ):
        return None
    arr = np.empty(count, np_dtype)
    start = f.tell()
    if f.readinto(memoryview(arr).cast("B")) != length:
        f.seek(start)
        return None
    if sys.byteorder == "big":  # stored little-endian
        arr.byteswap(inplace=True)
    return arr.reshape(tuple(t.dims))


def _decode_external(t: onnx.TensorProto, data: bytes, target: str, offset: int) -> np.ndarray:
    """An external tensor's bytes as an array of its type and shape."""
    try:
        np_dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
        count = int(np.prod(t.dims, dtype=np.int64))
        plain = np_dtype.kind in "biuf" and t.data_type not in _PACKED_TYPES
        if plain and len(data) == count * np_dtype.itemsize:
            arr = np.frombuffer(data, dtype=np_dtype.newbyteorder("<"), count=count)
            return arr.astype(np_dtype, copy=True).reshape(tuple(t.dims))  # writable, native
        tmp = onnx.TensorProto()  # bfloat16, float8, 4-bit: onnx's own decoding
        tmp.data_type = t.data_type
        tmp.dims.extend(t.dims)
        tmp.raw_data = data
        return numpy_helper.to_array(tmp)
    except Exception as e:
        raise InvalidArgument(
            f"Cannot read external data of tensor '{t.name}' from '{target}' ({len(data)} bytes "
            f"at offset {offset}) as {list(t.dims)} of element type {t.data_type}: {e}"
        ) from None


#: element types whose raw bytes are not numpy's layout of tensor_dtype_to_np_dtype
_PACKED_TYPES = frozenset(
    getattr(onnx.TensorProto, name)
    for name in (
        "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",
        "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
    )
    if hasattr(onnx.TensorProto, name)
)  # fmt: skip


def model_from_proto(
    proto: onnx.ModelProto, base_dir: str | None = None, *, source: tuple | None = None
) -> Model:
    """Convert a ModelProto to the IR, checking IR version and opsets; runs shape inference.
    External initializers are read from ``base_dir``. ``source``: the file ``proto`` was just
    parsed from, unchanged and without external data, as (real path, size, mtime, inode): the
    type cache (:mod:`._type_cache`) keys the model by it instead of serializing it."""
    if proto.ir_version < MIN_IR_VERSION or proto.ir_version > MAX_IR_VERSION:
        raise InvalidGraph(
            f"Unsupported model IR version: {proto.ir_version}; ort-core supports IR versions "
            f"{MIN_IR_VERSION} to {MAX_IR_VERSION} (onnx {onnx.__version__}). Re-export the model "
            "with a supported version, or upgrade onnx."
        )
    opsets: dict[str, int] = {}
    for op in proto.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        opsets[domain] = op.version
    if proto.ir_version >= 3 and not proto.opset_import:
        raise InvalidGraph(
            "The model imports no opset: add an opset_import for the default domain."
        )
    newest = _schema_table.newest_opset()
    if opsets.get("", 7) > newest:
        raise Fail(
            f"The model uses opset {opsets['']} of the default domain but the installed onnx "
            f"{onnx.__version__} knows opsets up to {newest}. Upgrade onnx, or convert the model "
            "with onnx.version_converter."
        )
    graph = graph_from_proto(proto.graph, base_dir=base_dir)
    ops = validate_graph(graph, opsets)  # before onnx's inference sees a malformed node
    add_inferred_types(graph, _infer(proto, base_dir, ops, source))
    model = Model(graph, opsets)
    model.ir_version = proto.ir_version
    model.producer_name = proto.producer_name
    model.producer_version = proto.producer_version
    model.domain = proto.domain
    model.model_version = proto.model_version
    model.doc_string = proto.doc_string
    model.metadata_props = {p.key: p.value for p in proto.metadata_props}
    for f in proto.functions:
        model.functions[(f.domain, f.name, getattr(f, "overload", ""))] = f
    model.training_info = list(proto.training_info)
    return model


#: Initializers with more elements than this are given to shape inference as typed inputs only.
_INFER_VALUE_LIMIT = 1024


def _skeleton(proto: onnx.ModelProto, base_dir: str | None = None) -> onnx.ModelProto:
    """The model without the data of its large initializers (they become typed graph inputs), so
    shape inference does not serialize and copy the weights. Small ones keep their values, which
    data propagation needs (shapes, axes); small external ones are read in."""
    big = [
        t for t in proto.graph.initializer if np.prod(t.dims, dtype=np.int64) > _INFER_VALUE_LIMIT
    ]
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    if not big and not external:
        return proto
    sk = onnx.ModelProto()
    for field_name in (
        "ir_version",
        "producer_name",
        "producer_version",
        "domain",
        "model_version",
    ):
        setattr(sk, field_name, getattr(proto, field_name))
    sk.opset_import.extend(proto.opset_import)
    sk.functions.extend(proto.functions)
    g, src = sk.graph, proto.graph
    g.name = src.name
    g.node.extend(src.node)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    big_names = {t.name for t in big}
    for t in src.initializer:
        if t.name in big_names:
            continue
        if t.data_location == onnx.TensorProto.EXTERNAL:
            try:
                t = numpy_helper.from_array(_external_array(t, base_dir), t.name)
            except Exception:  # reported when the graph is converted
                continue
        g.initializer.append(t)
    g.input.extend(vi for vi in src.input if vi.name not in big_names)
    for t in big:
        g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return sk


def _infer(
    proto: onnx.ModelProto,
    base_dir: str | None = None,
    ops: frozenset[tuple[str, str]] | None = None,
    source: tuple | None = None,
) -> dict[str, onnx.TypeProto]:
    """Value types from onnx shape inference, guarded so that it cannot crash the process (see
    :mod:`._infer`; ``ops``: the (domain, op_type) pairs the graphs use, from the validation);
    empty when inference cannot run on this model. Kept on disk (:mod:`._type_cache`)."""
    sk = _skeleton(proto, base_dir)
    return _type_cache.inferred_types(sk, ops, infer_types, source=source)


def add_inferred_types(g: Graph, inferred: dict[str, onnx.TypeProto]) -> None:
    """Give node outputs and graph outputs (in subgraphs too) their inferred types where the model
    declares none."""
    for n in g.nodes:
        for o in n.outputs:
            if o and o not in g.value_types and o in inferred:
                g.value_types[o] = inferred[o]
        for sub in n.subgraphs.values():
            add_inferred_types(sub, inferred)
    for o in g.outputs:
        if o not in g.value_types and o in inferred:
            g.value_types[o] = inferred[o]


def graph_from_proto(
    gp: onnx.GraphProto,
    inferred: dict[str, onnx.TypeProto] | None = None,
    *,
    base_dir: str | None = None,
) -> Graph:
    """Convert a GraphProto (and its subgraphs) to a :class:`Graph`; external initializers are
    read from ``base_dir``."""
    inferred = inferred or {}
    g = Graph(gp.name or "graph")
    g.doc_string = gp.doc_string
    for t in gp.initializer:
        if not t.name:
            raise InvalidGraph(f"graph '{g.name}' has an initializer without a name.")
        if t.data_location == onnx.TensorProto.EXTERNAL:
            g.initializers[t.name] = _external_array(t, base_dir)
            continue
        try:
            g.initializers[t.name] = numpy_helper.to_array(t)
        except Exception as e:
            raise InvalidGraph(
                f"initializer '{t.name}' of graph '{g.name}' cannot be read: {e}. The tensor's "
                "data does not match its dims or type."
            ) from None
    for st in gp.sparse_initializer:
        g.initializers[st.values.name] = sparse_to_dense(st)
    init_names = set(g.initializers)
    for vi in gp.input:
        if vi.name in init_names:
            # an initializer listed as input is an overridable default (IR < 4 style)
            pass
        g.inputs.append(vi.name)
        if vi.HasField("type"):
            g.value_types[vi.name] = vi.type
        if vi.doc_string:
            g.value_docs[vi.name] = vi.doc_string
    for vi in gp.output:
        g.outputs.append(vi.name)
        if vi.HasField("type") and vi.type.WhichOneof("value") is not None:
            g.value_types[vi.name] = vi.type
    for vi in gp.value_info:
        if vi.HasField("type"):
            g.value_types.setdefault(vi.name, vi.type)
    for n in gp.node:
        g.nodes.append(node_from_proto(n, inferred, base_dir=base_dir))
    for n in g.nodes:
        for o in n.outputs:
            if o and o not in g.value_types and o in inferred:
                g.value_types[o] = inferred[o]
    for o in g.outputs:
        if o not in g.value_types and o in inferred:
            g.value_types[o] = inferred[o]
    return g


def node_from_proto(
    n: onnx.NodeProto,
    inferred: dict[str, onnx.TypeProto] | None = None,
    *,
    base_dir: str | None = None,
) -> Node:
    """Convert a NodeProto; GRAPH attributes become subgraphs."""
    attrs: dict[str, onnx.AttributeProto] = {}
    subgraphs: dict[str, Graph] = {}
    for a in n.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            subgraphs[a.name] = graph_from_proto(a.g, inferred, base_dir=base_dir)
        else:
            attrs[a.name] = a
    return Node(
        n.op_type,
        list(n.input),
        list(n.output),
        domain=n.domain,
        name=n.name,
        attributes=attrs,
        subgraphs=subgraphs,
        doc_string=n.doc_string,
        overload=getattr(n, "overload", ""),
    )


def node_to_proto(n: Node) -> onnx.NodeProto:
    """Convert a Node back to a NodeProto."""
    p = onnx.NodeProto()
    p.op_type = n.op_type
    p.domain = n.domain
    p.name = n.name
    p.input.extend(n.inputs)
    p.output.extend(n.outputs)
    if n.doc_string:
        p.doc_string = n.doc_string
    if n.overload:
        p.overload = n.overload
    for a in n.attributes.values():
        p.attribute.append(a)
    for name, sub in n.subgraphs.items():
        p.attribute.append(helper.make_attribute(name, graph_to_proto(sub)))
    return p


def _value_info(name: str, tp: onnx.TypeProto | None, doc: str = "") -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto()
    vi.name = name
    if tp is not None:
        vi.type.CopyFrom(tp)
    if doc:
        vi.doc_string = doc
    return vi


def graph_to_proto(g: Graph, *, skip_initializers: Collection[str] = ()) -> onnx.GraphProto:
    """Convert a Graph back to a GraphProto (initializers serialized from numpy, except those in
    ``skip_initializers``, which the caller adds in another form, e.g. as external data)."""
    gp = onnx.GraphProto()
    gp.name = g.name
    if g.doc_string:
        gp.doc_string = g.doc_string
    for name, arr in g.initializers.items():
        if name not in skip_initializers:
            gp.initializer.append(_to_tensor(arr, name))
    for name in g.inputs:
        gp.input.append(_value_info(name, g.type_of(name), g.value_docs.get(name, "")))
    for name in g.outputs:
        gp.output.append(_value_info(name, g.value_types.get(name)))
    for n in g.nodes:
        gp.node.append(node_to_proto(n))
    io = set(g.inputs) | set(g.outputs)
    for n in g.nodes:
        for o in n.outputs:
            if o and o not in io and o in g.value_types:
                gp.value_info.append(_value_info(o, g.value_types[o]))
    return gp


def _to_tensor(arr: Any, name: str) -> onnx.TensorProto:
    arr = np.asarray(arr)
    return numpy_helper.from_array(arr, name)


def model_to_proto(m: Model) -> onnx.ModelProto:
    """Convert a Model back to a ModelProto that onnx.checker accepts."""
    p = onnx.ModelProto()
    p.ir_version = m.ir_version
    p.producer_name = m.producer_name or "ort-core"
    p.producer_version = m.producer_version
    p.domain = m.domain
    p.model_version = m.model_version
    if m.doc_string:
        p.doc_string = m.doc_string
    for domain, version in m.opset_imports.items():
        p.opset_import.append(helper.make_opsetid(domain, version))
    for k, v in m.metadata_props.items():
        entry = p.metadata_props.add()
        entry.key, entry.value = k, v
    p.graph.CopyFrom(graph_to_proto(m.graph))
    p.functions.extend(m.functions.values())
    p.training_info.extend(m.training_info)
    return p


def check_model(proto: onnx.ModelProto) -> None:
    """Run onnx.checker, turning its error into :class:`InvalidGraph`."""
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise InvalidGraph(f"The model is not valid ONNX: {e}") from None
    except Exception as e:
        raise Fail(f"onnx.checker failed: {e}") from None
