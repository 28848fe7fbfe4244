"""onnx's protobuf classes and the helpers a session uses, without importing the onnx package.

``import onnx`` costs 50-55 ms of a process's start (measured here: 53 ms median with onnx 1.23,
against 24 ms for all of ``import onnxruntime``), most of it in modules a session never uses
(``google.protobuf.json_format``, ``typing_extensions``, ``importlib.metadata``, ``ml_dtypes``,
the version converter, the hub). What creating a session needs is the message classes and a few
pure helpers; onnx's C++ parts (schemas, shape inference) are reached through caches on disk
(:mod:`.ir._schema_table`, :mod:`.ir._type_cache`) once a model has been seen, and imported on a
miss.

- :data:`onnx` is a stand-in for the module: its message classes (``onnx.ModelProto``...) and
  ``IR_VERSION`` come from onnx's own generated ``onnx_ml_pb2.py``, loaded by file without the
  package's ``__init__``; any other attribute imports the real onnx and is taken from it. The
  classes are the very ones onnx uses (protobuf's upb backend makes one class per descriptor,
  so a model from ``onnx.load`` is an instance of ``_onnx.onnx.ModelProto`` and the other way
  round); with another protobuf backend the stand-in imports onnx at once.
- :func:`real` is the onnx module itself (imported on first call; the callbacks of
  :func:`on_import` run then, e.g. plugins registering op schemas with onnx).
- The helpers below mirror ``onnx.helper`` / ``onnx.numpy_helper`` on the common cases and
  hand anything else (bfloat16 and float8 data, numpy scalars, typed-out attribute values,
  external data, a big-endian host) to onnx's own function, so they return what onnx returns.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "onnx",
    "real",
    "loaded",
    "on_import",
    "sync",
    "foreign",
    "tensor_dtype_to_np_dtype",
    "np_dtype_to_tensor_dtype",
    "get_attribute_value",
    "make_attribute",
    "make_tensor_type_proto",
    "make_tensor_value_info",
    "make_value_info",
    "make_opsetid",
    "to_array",
    "from_array",
    "helper",
    "numpy_helper",
    "all_tensors",
    "attribute_tensors",
]

_lock = threading.RLock()
_pb2: list[Any] = []
_callbacks: list[Callable[[Any], None]] = []
_PRIVATE_PB2 = "ort_core._onnx_ml_pb2"
_state: dict[str, Any] = {"real": None}


def loaded() -> bool:
    """Whether the onnx package has been imported in this process (by anyone)."""
    return "onnx" in sys.modules and not getattr(
        getattr(sys.modules["onnx"], "__spec__", None), "_initializing", False
    )


def on_import(callback: Callable[[Any], None]) -> None:
    """Run ``callback(onnx)`` when :func:`real` first imports onnx (at once, if it has)."""
    with _lock:
        _callbacks.append(callback)
    if _state["real"] is not None:
        _run_callbacks()


def real() -> Any:
    """The onnx module (imported on the first call), with the :func:`on_import` callbacks run."""
    mod = _state["real"]
    if mod is not None and not _callbacks:
        return mod
    if mod is None and not loaded():
        _state["ours"] = True
    import onnx as mod  # noqa: PLC0415 - the point of this module

    _state["real"] = mod
    _run_callbacks()
    return mod


def foreign() -> bool:
    """Whether onnx is imported in this process by someone else than :func:`real` (the user or
    a library, who may have registered op schemas of their own)."""
    return loaded() and not _state.get("ours", False)


def sync() -> None:
    """Run the :func:`on_import` callbacks if someone has imported onnx since they were set."""
    if _callbacks and loaded():
        real()


def _run_callbacks() -> None:
    while True:
        with _lock:
            if not _callbacks:
                return
            callback = _callbacks.pop(0)
        callback(_state["real"])


def _load_pb2() -> Any:
    """onnx's generated ``onnx_ml_pb2`` module, without onnx's ``__init__`` where possible."""
    if _pb2:
        return _pb2[0]
    with _lock:
        if _pb2:
            return _pb2[0]
        mod = sys.modules.get("onnx.onnx_ml_pb2") or sys.modules.get(_PRIVATE_PB2)
        if mod is None and not loaded():
            mod = _load_pb2_file()
        if mod is None:
            mod = real().onnx_ml_pb2
        _pb2.append(mod)
        return mod


def _load_pb2_file() -> Any:
    try:
        from google.protobuf.internal import api_implementation

        if api_implementation.Type() != "upb":
            return None  # other backends may make separate classes per module: use onnx's
        spec = importlib.util.find_spec("onnx")
        if spec is None or not spec.origin:
            return None
        path = os.path.join(os.path.dirname(spec.origin), "onnx_ml_pb2.py")
        if not os.path.isfile(path):
            return None
        file_spec = importlib.util.spec_from_file_location(_PRIVATE_PB2, path)
        if file_spec is None or file_spec.loader is None:
            return None
        mod = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(mod)
    except Exception:  # anything odd: the real package decides
        return None
    sys.modules[_PRIVATE_PB2] = mod
    return mod


class _Stand_in:
    """``onnx`` for attribute access: message classes and enums from the generated module, the
    rest from the real package (see the module docstring). A value found is kept on the instance,
    so the next access is a plain attribute read."""

    def __getattr__(self, name: str) -> Any:
        value = None
        if name[:1].isupper():
            value = getattr(_load_pb2(), name, None)
        if value is None:
            value = getattr(real(), name)
        if not name.startswith("__"):
            self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return "<onnx, imported on demand by ort_core._onnx>"


onnx: Any = _Stand_in()

# -- helpers (onnx.helper / onnx.numpy_helper on the common cases) ---------------------------------

#: element types numpy has natively -> numpy dtype (what onnx.helper.tensor_dtype_to_np_dtype gives)
_NP: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    8: np.dtype(object),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
    14: np.dtype(np.complex64),
    15: np.dtype(np.complex128),
}
_ELEM = {dtype: elem for elem, dtype in _NP.items()}
#: the ml_dtypes ones, as they are asked for (to_array leaves their data to onnx)
_NP_ML: dict[int, np.dtype] = {}


#: element types onnx maps to ml_dtypes' types (onnx depends on ml_dtypes)
_ML = {
    16: "bfloat16",
    17: "float8_e4m3fn",
    18: "float8_e4m3fnuz",
    19: "float8_e5m2",
    20: "float8_e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4_e2m1fn",
    24: "float8_e8m0fnu",
    25: "uint2",
    26: "int2",
    27: "float6_e2m3fn",
    28: "float6_e3m2fn",
}


def tensor_dtype_to_np_dtype(elem: int) -> np.dtype:
    """``onnx.helper.tensor_dtype_to_np_dtype``."""
    dtype = _NP.get(elem) or _NP_ML.get(elem)
    if dtype is not None:
        return dtype
    name = _ML.get(elem)
    if name is not None:
        import ml_dtypes

        t = getattr(ml_dtypes, name, None)
        if t is not None:
            dtype = _NP_ML[elem] = np.dtype(t)
            return dtype
    return real().helper.tensor_dtype_to_np_dtype(elem)


def np_dtype_to_tensor_dtype(dtype: Any) -> int:
    """``onnx.helper.np_dtype_to_tensor_dtype``."""
    elem = _ELEM.get(dtype) if isinstance(dtype, np.dtype) else None
    if elem is not None:
        return elem
    return real().helper.np_dtype_to_tensor_dtype(dtype)


# AttributeProto.AttributeType numbers
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_GRAPH = 1, 2, 3, 4, 5
_A_FLOATS, _A_INTS, _A_STRINGS, _A_TENSORS, _A_GRAPHS = 6, 7, 8, 9, 10
_A_SPARSE, _A_SPARSES, _A_TP, _A_TPS = 11, 12, 13, 14


#: AttributeProto type -> the field holding its value (a list for the repeated ones)
_ONE_FIELD = {_A_FLOAT: "f", _A_INT: "i", _A_STRING: "s", _A_TENSOR: "t", _A_GRAPH: "g"}
_ONE_FIELD.update({_A_SPARSE: "sparse_tensor", _A_TP: "tp"})
_LIST_FIELD = {_A_FLOATS: "floats", _A_INTS: "ints", _A_STRINGS: "strings"}
_LIST_FIELD.update({_A_TENSORS: "tensors", _A_GRAPHS: "graphs", _A_SPARSES: "sparse_tensors"})
_LIST_FIELD[_A_TPS] = "type_protos"


def get_attribute_value(attr: Any) -> Any:
    """``onnx.helper.get_attribute_value``."""
    t = attr.type
    if not attr.ref_attr_name:
        field = _ONE_FIELD.get(t)
        if field is not None:
            return getattr(attr, field)
        field = _LIST_FIELD.get(t)
        if field is not None:
            return list(getattr(attr, field))
        if t == 0:
            return None
    return real().helper.get_attribute_value(attr)  # onnx's ValueError for the rest


def make_attribute(key: str, value: Any, doc_string: str | None = None, attr_type=None) -> Any:
    """``onnx.helper.make_attribute`` (Python ints, floats, strings and lists of one of them,
    tensors and graphs here; anything else by onnx)."""
    if doc_string or attr_type is not None:
        return real().helper.make_attribute(key, value, doc_string, attr_type)
    pb2 = _load_pb2()
    vt = type(value)
    attr = pb2.AttributeProto()
    attr.name = key
    if vt is int or vt is bool:
        attr.i = int(value)
        attr.type = _A_INT
    elif vt is float:
        attr.f = value
        attr.type = _A_FLOAT
    elif vt is str:
        attr.s = value.encode("utf-8")
        attr.type = _A_STRING
    elif vt is bytes:
        attr.s = value
        attr.type = _A_STRING
    elif vt is pb2.TensorProto:
        attr.t.CopyFrom(value)
        attr.type = _A_TENSOR
    elif vt is pb2.GraphProto:
        attr.g.CopyFrom(value)
        attr.type = _A_GRAPH
    elif (vt is list or vt is tuple) and value:
        kinds = {type(v) for v in value}
        if kinds == {int}:
            attr.ints.extend(value)
            attr.type = _A_INTS
        elif kinds <= {int, float}:
            attr.floats.extend(value)
            attr.type = _A_FLOATS
        elif kinds <= {str, bytes}:
            attr.strings.extend(v.encode("utf-8") if type(v) is str else v for v in value)
            attr.type = _A_STRINGS
        else:
            return real().helper.make_attribute(key, value)
    else:
        return real().helper.make_attribute(key, value)
    return attr


def make_tensor_type_proto(elem_type: int, shape, shape_denotation=None) -> Any:
    """``onnx.helper.make_tensor_type_proto``."""
    if shape_denotation:
        return real().helper.make_tensor_type_proto(elem_type, shape, shape_denotation)
    tp = _load_pb2().TypeProto()
    tt = tp.tensor_type
    tt.elem_type = elem_type
    if shape is not None:
        shape_proto = tt.shape
        shape_proto.dim.extend([])  # an empty shape is still a shape (a scalar)
        for d in shape:
            dim = shape_proto.dim.add()
            if d is None:
                continue
            if isinstance(d, int):
                dim.dim_value = d
            elif isinstance(d, str):
                dim.dim_param = d
            else:
                raise ValueError(f"Invalid item in shape: {d}. Needs to be of int or str.")
    return tp


def make_tensor_value_info(name: str, elem_type: int, shape, doc_string: str = "") -> Any:
    """``onnx.helper.make_tensor_value_info``."""
    vi = _load_pb2().ValueInfoProto()
    vi.name = name
    if doc_string:
        vi.doc_string = doc_string
    vi.type.CopyFrom(make_tensor_type_proto(elem_type, shape))
    return vi


def make_value_info(name: str, type_proto: Any, doc_string: str = "") -> Any:
    """``onnx.helper.make_value_info``."""
    vi = _load_pb2().ValueInfoProto()
    vi.name = name
    if doc_string:
        vi.doc_string = doc_string
    vi.type.CopyFrom(type_proto)
    return vi


def make_opsetid(domain: str, version: int) -> Any:
    """``onnx.helper.make_opsetid``."""
    op = _load_pb2().OperatorSetIdProto()
    op.domain = domain
    op.version = version
    return op


_LITTLE = sys.byteorder == "little"
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_INT32_AS_16 = frozenset({4, 5, 10})  # UINT16, INT16, FLOAT16 in int32_data
#: element type -> (the field onnx stores it in without raw_data, that field's numpy type)
_STORAGE = {
    1: ("float_data", np.float32),
    11: ("double_data", np.float64),
    7: ("int64_data", np.int64),
    6: ("int32_data", np.int32),
    2: ("int32_data", np.int32),
    3: ("int32_data", np.int32),
    12: ("uint64_data", np.uint64),
    13: ("uint64_data", np.uint64),
    14: ("float_data", np.float32),
    15: ("double_data", np.float64),
}


def to_array(tensor: Any, base_dir: str = "") -> np.ndarray:
    """``onnx.numpy_helper.to_array`` (numpy's own element types here; bfloat16, float8, 4-bit
    and 2-bit data, segments, external data and big-endian hosts by onnx)."""
    elem = tensor.data_type
    dtype = _NP.get(elem)
    if (
        dtype is None
        or not _LITTLE
        or tensor.data_location == _EXTERNAL
        or tensor.HasField("segment")
    ):
        return real().numpy_helper.to_array(tensor, base_dir)
    dims = tensor.dims
    if elem == 8:
        ss = [s.decode("utf-8") for s in tensor.string_data]
        return np.asarray(ss).astype(dtype).reshape(dims)
    if tensor.HasField("raw_data"):
        return np.frombuffer(tensor.raw_data, dtype=dtype).reshape(dims)
    if elem in _INT32_AS_16:
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint16)
        return bits.reshape(dims).view(dtype)
    if elem == 9:
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint8)
        return bits.view(dtype).reshape(dims)
    field, store = _STORAGE[elem]
    values = np.array(getattr(tensor, field), dtype=store)
    if elem == 14 or elem == 15:  # complex: (real, imaginary) pairs
        return values.view(dtype).reshape(dims)
    return values.astype(dtype).reshape(dims)


# -- the tensors of a model (onnx.external_data_helper's walk) --------------------------------------


def _graph_tensors(attribute: Any, walk: Callable[[Any], Any]):
    if attribute.type == _A_GRAPH:
        yield from walk(attribute.g)
    elif attribute.type == _A_GRAPHS:
        for g in attribute.graphs:
            yield from walk(g)


def _initializers_of(graph: Any):
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            yield from _graph_tensors(attribute, _initializers_of)


def _attribute_tensors_of(graph_or_function: Any):
    for node in graph_or_function.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            yield from _graph_tensors(attribute, _attribute_tensors_of)


def attribute_tensors(model: Any):
    """The tensors of node attributes, in the graphs and the model's functions."""
    yield from _attribute_tensors_of(model.graph)
    for function in model.functions:
        yield from _attribute_tensors_of(function)


def all_tensors(model: Any):
    """Every TensorProto of a model: initializers (subgraphs' too), then attribute tensors
    (``onnx.external_data_helper._get_all_tensors``' order)."""
    yield from _initializers_of(model.graph)
    yield from attribute_tensors(model)


class _Helpers:
    """A namespace of the fast helpers above that hands every other name to onnx's module."""

    def __init__(self, module: str, own: dict[str, Any]) -> None:
        self._module = module
        self.__dict__.update(own)  # found as plain attributes; __getattr__ only for the rest

    def __getattr__(self, name: str) -> Any:
        return getattr(getattr(real(), self._module), name)


#: ``onnx.helper`` with the functions above done here
helper: Any = _Helpers(
    "helper",
    {
        "tensor_dtype_to_np_dtype": tensor_dtype_to_np_dtype,
        "np_dtype_to_tensor_dtype": np_dtype_to_tensor_dtype,
        "get_attribute_value": get_attribute_value,
        "make_attribute": make_attribute,
        "make_tensor_type_proto": make_tensor_type_proto,
        "make_tensor_value_info": make_tensor_value_info,
        "make_value_info": make_value_info,
        "make_opsetid": make_opsetid,
    },
)


def from_array(array: np.ndarray, name: str | None = None) -> Any:
    """``onnx.numpy_helper.from_array`` (numpy's numeric types on a little-endian host here)."""
    elem = _ELEM.get(array.dtype) if isinstance(array, np.ndarray) else None
    if elem is None or elem == 8 or not _LITTLE:
        return real().numpy_helper.from_array(array, name)
    t = _load_pb2().TensorProto()
    t.dims.extend(array.shape)
    if name:
        t.name = name
    t.data_type = elem
    t.raw_data = array.tobytes()
    return t


#: ``onnx.numpy_helper`` with ``to_array`` and ``from_array`` done here
numpy_helper: Any = _Helpers("numpy_helper", {"to_array": to_array, "from_array": from_array})
