"""What a fed value becomes before a run, and what a result becomes before the user sees it.

:func:`check_feed` takes one value of ``InferenceSession.run``'s ``input_feed`` and the graph
input's ``onnx.TypeProto`` and returns the value the executor runs with, accepting what onnxruntime
1.32's Python binding accepts and refusing what it refuses, with its error messages (followed by
which input is wrong and how to fix it):

- tensors: numpy arrays whose dtype is the declared one (never cast: a float64 array for a float
  input is ``Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))``),
  any layout (non-contiguous, read-only, subclasses such as ``np.matrix``); Python lists and nested
  lists, converted to the declared dtype as ``np.array(value, dtype=...)`` converts them; not
  tuples (pass ``np.array(value, dtype=...)``); None only for optional inputs. Shapes are checked
  against the declared dims: rank, then every fixed dim (``dim_value`` 0 included, negative values
  ignored) and every symbolic dim given a value by a free dimension override; a declared rank-0
  shape checks nothing, as in onnxruntime.
- string tensors: arrays of dtype ``<U..`` (each element up to its first NUL), ``|S..`` (same,
  decoded as UTF-8), ``np.void`` (every byte, decoded as UTF-8) and object arrays (``str``
  elements kept, anything else written with ``str()``, so ``b"a"`` becomes ``"b'a'"``); they run as
  object arrays of ``str``.
- sequences of tensors: a list of numpy arrays of the declared element type (no shape check);
  sequences of maps: a list, tuple or other iterable of dicts; maps: one dict; optional values:
  None or a value of the element type.
- maps: the key type comes from the first key (``str``: string; ``int``, ``bool`` or a numpy
  integer: int64; others are refused); string maps write later keys with ``str()``; values become
  Python numbers (float values rounded to float32) or strings.

Where onnxruntime's binding cannot build a value of the declared type at all, ort-core accepts the
natural value instead of refusing: maps whose values are not float (onnxruntime builds every dict
as ``map(..., tensor(float))``), empty dicts, lists of dicts for sequences of maps (onnxruntime
takes only other iterables there), ml_dtypes arrays (bfloat16, float8, int4...), complex arrays,
big-endian arrays (read by value; onnxruntime reads their bytes as native), numpy scalars (0-d
arrays, dtype checked as for arrays) and Python scalars (converted as lists are). Fixed-width byte
strings are read within their width (onnxruntime reads past the end of an element that fills it).

:func:`finish_outputs` makes kernel results into what onnxruntime returns: 0-d arrays rather than
numpy scalars, C-contiguous arrays the caller owns (a result that shares memory with a fed array
or a session-owned, read-only array is copied), string tensors as object arrays of ``str``,
sequences as lists, maps as dicts of Python keys and values.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _onnx
from ._elements import numpy_dtype
from ._onnx import helper
from .errors import InvalidArgument
from .ir import type_str
from .ortvalue import OrtValue, _COrtValue
from .sparse import SparseTensor, _CSparseTensor, to_dense

onnx = _onnx.onnx

__all__ = [
    "FeedSpec",
    "check_feed",
    "check_feed_with",
    "feed_spec",
    "PlainMaps",
    "RunOwners",
    "finish_output",
    "finish_outputs",
    "finish_with",
]

STRING = np.dtype(object)
_FIX = "Please fix either the inputs/outputs or the model."
# onnxruntime's general type numbers, as its "expected to be of type: N" messages print them
_GENERAL_TYPE = {"map": 1, "sequence_of_maps": 1, "sequence": 3, "sparse": 4, "optional": 5}
_INT64_RANGE = (-(2**63), 2**63 - 1)


def _dtype_table() -> dict[np.dtype, int]:
    table: dict[np.dtype, int] = {}
    for elem in onnx.TensorProto.DataType.values():
        if elem == onnx.TensorProto.UNDEFINED:
            continue
        try:
            dt = np.dtype(helper.tensor_dtype_to_np_dtype(elem))
        except (KeyError, TypeError, ValueError):
            continue
        table.setdefault(dt, elem)
    return table


_ELEM_OF_DTYPE = _dtype_table()
_DTYPE_OF_ELEM = {elem: dt for dt, elem in _ELEM_OF_DTYPE.items()}


def _is_plain_void(dt: np.dtype) -> bool:
    """A raw ``np.void`` dtype (not an ml_dtypes type, which numpy also files under kind 'V')."""
    return dt.kind == "V" and dt.type is np.void and dt.names is None


def _elem_of(dt: np.dtype) -> int | None:
    """The ONNX element type of a numpy dtype (strings, bytes and raw void: STRING)."""
    elem = _ELEM_OF_DTYPE.get(dt)
    if elem is None:
        if dt.kind in "OUS" or _is_plain_void(dt):
            return onnx.TensorProto.STRING
        if dt.byteorder not in "=|":
            return _ELEM_OF_DTYPE.get(dt.newbyteorder("="))
    return elem


def _tensor_text(elem: int) -> str:
    return type_str(helper.make_tensor_type_proto(elem, None))


def _numpy_name(dt: np.dtype) -> str:
    if dt == STRING:
        return "object"
    return f"np.{dt.name}" if hasattr(np, dt.name) else f"ml_dtypes.{dt.name}"


# -- the declared type, read once ------------------------------------------------------------------
@dataclass(frozen=True)
class FeedSpec:
    """A graph input's declared type, ready to check values against.

    Attributes:
        kind: "tensor", "sequence", "map", "optional", "sparse" or "any" (type not declared).
        text: onnxruntime's spelling of the type, e.g. ``tensor(float)``.
        dtype: tensors: the numpy dtype (object for strings), None when the element type is not
            declared; maps: the value dtype.
        elem: tensors: the ONNX element type; maps: the value element type.
        dims: tensors: the declared dims with free dimension overrides applied (an int is checked,
            None is not); None when the shape is not declared.
        inner: sequences and optionals: the element's spec.
        key: maps: the key element type (STRING or INT64).
        fixed: tensors: (index, size) of every dim the fed shape must match.
    """

    kind: str
    text: str
    dtype: np.dtype | None = None
    elem: int = 0
    dims: tuple[int | None, ...] | None = None
    inner: FeedSpec | None = None
    key: int = 0
    fixed: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, tp: onnx.TypeProto | None, free_dims: Mapping[str, int] | None = None) -> FeedSpec:
        """Read ``tp``; ``free_dims`` gives symbolic dims (by name) a fixed value."""
        which = tp.WhichOneof("value") if tp is not None else None
        text = type_str(tp)
        if which == "tensor_type":
            elem = tp.tensor_type.elem_type
            dims = None
            if tp.tensor_type.HasField("shape"):
                dims = tuple(_dim(d, free_dims or {}) for d in tp.tensor_type.shape.dim)
            fixed = tuple((i, d) for i, d in enumerate(dims or ()) if d is not None)
            return cls("tensor", text, _DTYPE_OF_ELEM.get(elem), elem, dims, fixed=fixed)
        if which == "sequence_type":
            return cls("sequence", text, inner=cls.of(tp.sequence_type.elem_type, free_dims))
        if which == "optional_type":
            return cls("optional", text, inner=cls.of(tp.optional_type.elem_type, free_dims))
        if which == "map_type":
            value = cls.of(tp.map_type.value_type)
            return cls("map", text, value.dtype, value.elem, key=tp.map_type.key_type)
        if which == "sparse_tensor_type":
            return cls("sparse", text)
        return cls("any", text)

    @property
    def general_type(self) -> int:
        """onnxruntime's number for the kind of value this input takes."""
        if self.kind == "sequence" and self.inner is not None and self.inner.kind == "map":
            return _GENERAL_TYPE["sequence_of_maps"]
        return _GENERAL_TYPE.get(self.kind, 0)


def _dim(d: onnx.TensorShapeProto.Dimension, free: Mapping[str, int]) -> int | None:
    """The size a declared dim requires: its value (0 included, negative ones require nothing), a
    free dimension override of its name, or None."""
    which = d.WhichOneof("value")
    if which == "dim_value":
        return d.dim_value if d.dim_value >= 0 else None
    if which == "dim_param":
        return free.get(d.dim_param)
    return None


_SPECS: dict[int, tuple[onnx.TypeProto, dict, FeedSpec]] = {}
_SPECS_MAX = 4096


def feed_spec(tp: onnx.TypeProto | None, free_dims: Mapping[str, int] | None = None) -> FeedSpec:
    """:meth:`FeedSpec.of`, remembered for the same TypeProto object and overrides."""
    free = free_dims or {}
    hit = _SPECS.get(id(tp))
    if hit is not None and hit[0] is tp and hit[1] == free:
        return hit[2]
    free = dict(free)
    spec = FeedSpec.of(tp, free)
    if tp is not None:
        if len(_SPECS) >= _SPECS_MAX:
            _SPECS.clear()
        _SPECS[id(tp)] = (tp, free, spec)  # holding tp keeps its id from being reused
    return spec


# -- checking one fed value ------------------------------------------------------------------------
def check_feed(
    name: str,
    value: Any,
    type_proto: onnx.TypeProto | None,
    *,
    free_dims: Mapping[str, int] | None = None,
    keep_device: bool = False,
) -> Any:
    """Check and convert one fed value against the graph input's declared type.

    Args:
        name: the input's name (used in messages).
        value: what the user fed: a numpy array, a list, a dict, None, an :class:`OrtValue`...
        type_proto: the graph input's declared type.
        free_dims: free dimension overrides (symbolic dim name -> value) of the session.
        keep_device: an OrtValue on a device stays there (its dtype and shape are still checked).

    Returns:
        The value the executor runs with: a numpy array (object array of str for strings), a
        device array, a list (sequences), a dict (maps) or None (an empty optional).

    Raises:
        InvalidArgument: the value does not fit the declared type; the message starts with
            onnxruntime's and then says which input is wrong and how to fix it.
    """
    return _check(name, value, feed_spec(type_proto, free_dims), keep_device)


def check_feed_with(name: str, value: Any, spec: FeedSpec, keep_device: bool = False) -> Any:
    """:func:`check_feed` with the input's :func:`feed_spec` computed once (by the session)."""
    return _check(name, value, spec, keep_device)


def _check(name: str, value: Any, spec: FeedSpec, keep_device: bool) -> Any:
    if isinstance(value, _COrtValue):  # a native value (``OrtValue._get_c_value()``)
        value = OrtValue._from_c(value)
    if isinstance(value, (SparseTensor, _CSparseTensor)) or (
        isinstance(value, OrtValue) and value.is_sparse_tensor()
    ):
        if spec.kind in ("sparse", "any"):
            return to_dense(value)  # kernels compute on dense arrays (duplicates summed)
        raise InvalidArgument(
            f"Input '{name}' is declared {spec.text} but a sparse tensor was fed: densify it "
            "first (ort_core.sparse.to_dense(value)) or feed a numpy array."
        )
    if isinstance(value, OrtValue):
        if keep_device and value.provider is not None and spec.kind in ("tensor", "optional"):
            inner = spec if spec.kind == "tensor" else spec.inner
            if inner is not None and inner.kind == "tensor":
                return _check_device(name, value.value(), inner)
        # a host OrtValue holds the value itself (array, list, dict, None); a device one a tensor
        value = value._host_value()
    kind = spec.kind
    if kind == "tensor":
        return _tensor(name, value, spec)
    if kind == "sequence":
        return _sequence(name, value, spec)
    if kind == "map":
        return _map(name, value, spec)
    if kind == "optional":
        return _optional(name, value, spec, keep_device)
    if kind == "sparse":  # a dense array fed for a sparse input: already what kernels compute on
        return _tensor(name, value, spec.inner) if getattr(spec, "inner", None) else value
    if isinstance(value, list):
        return value if any(isinstance(v, (dict, np.ndarray)) for v in value) else np.asarray(value)
    if isinstance(value, np.ndarray):
        return _native(value)
    return value


def _actual_text(value: Any) -> str:
    """onnxruntime's spelling of the type of a fed value (for the non-tensor mismatch message)."""
    if isinstance(value, Mapping):
        return f"map({_key_text(value)},tensor(float))"
    if isinstance(value, np.ndarray):
        elem = _elem_of(value.dtype)
        return _tensor_text(elem) if elem is not None else f"tensor({value.dtype})"
    return type(value).__name__


def _key_text(d: Mapping) -> str:
    first = next(iter(d), "")
    return "string" if isinstance(first, str) else "int64"


def _wrong_kind(name: str, value: Any, spec: FeedSpec, hint: str) -> InvalidArgument:
    """onnxruntime's message for a value of another kind (a dict for a tensor, a map for a
    sequence...), followed by the input's name and ``hint``."""
    return InvalidArgument(
        f"Unexpected input data type. Actual: (({_actual_text(value)})) , expected: "
        f"(({spec.text})). Input '{name}' is declared {spec.text}: {hint}"
    )


def _unusable(name: str, value: Any, spec: FeedSpec, hint: str) -> InvalidArgument:
    """The message for a value the binding cannot read at all (a scalar, a string, a tuple)."""
    if isinstance(value, (str, bytes)) or hasattr(value, "__iter__"):
        head = f"Input must be a list of dictionaries or a single numpy array for input '{name}'."
    else:
        head = f"Unable to handle object of type {type(value)}."
    return InvalidArgument(f"{head} Input '{name}' is declared {spec.text}: {hint}")


def _received_tensor(name: str, spec: FeedSpec, hint: str) -> InvalidArgument:
    return InvalidArgument(
        f"input with name: '{name}' expected to be of type: {spec.general_type} but received a "
        f"tensor. Input '{name}' is declared {spec.text}: {hint}"
    )


# -- tensors ---------------------------------------------------------------------------------------
def _tensor_hint(spec: FeedSpec) -> str:
    if spec.dtype is None:
        return "pass a numpy array."
    return f"pass a numpy array, e.g. np.array(value, dtype={_numpy_name(spec.dtype)})."


def _tensor(name: str, value: Any, spec: FeedSpec) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value if type(value) is np.ndarray else np.asarray(value)
    elif isinstance(value, list):
        arr = _from_list(name, value, spec)
    elif isinstance(value, np.generic):  # onnxruntime refuses numpy scalars: a 0-d array here
        arr = np.asarray(value)
    elif isinstance(value, (bool, int, float, str)):  # refused by onnxruntime too; taken as lists
        arr = _from_list(name, value, spec)
    elif isinstance(value, Mapping):
        raise _wrong_kind(name, value, spec, _tensor_hint(spec))
    elif value is None:
        raise InvalidArgument(
            f"Input '{name}' is None, but the model declares {spec.text}; None is only valid for "
            f"optional inputs: {_tensor_hint(spec)}"
        )
    else:
        raise _unusable(name, value, spec, _tensor_hint(spec))
    arr = _element_type(name, arr, spec)
    _check_dims(name, arr.shape, spec)
    return arr


def _from_list(name: str, value: Any, spec: FeedSpec) -> np.ndarray:
    """A list (or a Python scalar) as onnxruntime reads a list: ``np.array(value, dtype=<declared
    dtype>)``."""
    dtype = spec.dtype
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as e:
        target = f"a {_numpy_name(dtype)} array" if dtype is not None else "an array"
        what = "list" if isinstance(value, list) else type(value).__name__
        raise InvalidArgument(
            f"Could not create tensor from given input {what}. Input '{name}' is declared "
            f"{spec.text} and its {what} cannot be made into {target} ({e}); pass a numpy array "
            "of that type."
        ) from None
    return arr


def _element_type(name: str, arr: np.ndarray, spec: FeedSpec) -> np.ndarray:
    """The array with the declared element type: the same array when it has it, string arrays of
    any kind as object arrays of str; anything else is an error."""
    want, dt = spec.dtype, arr.dtype
    if dt == want:
        return _strings(name, arr) if want == STRING else arr
    elem = _elem_of(dt)
    if want is None:  # element type not declared: strings still run as object arrays of str
        return _strings(name, arr) if elem == onnx.TensorProto.STRING else _native(arr)
    if elem == spec.elem:
        return _strings(name, arr) if want == STRING else arr.astype(want)  # byte order
    if elem is None:
        raise InvalidArgument(
            f"numpy dtype {dt} has no ONNX element type, so it cannot be fed to input '{name}' "
            f"({spec.text}); convert it, e.g. value.astype({_numpy_name(want)})."
        )
    raise InvalidArgument(
        f"Unexpected input data type. Actual: ({_tensor_text(elem)}) , expected: ({spec.text}). "
        f"Input '{name}' is declared {spec.text}: convert the array first, e.g. "
        f"value.astype({_numpy_name(want)})."
    )


def _native(arr: np.ndarray) -> np.ndarray:
    dt = arr.dtype
    return arr.astype(dt.newbyteorder("=")) if dt.byteorder not in "=|" else arr


def _check_dims(name: str, shape: tuple[int, ...], spec: FeedSpec) -> None:
    dims = spec.dims
    if not dims:  # no shape declared, or rank 0: onnxruntime checks nothing then
        return
    if len(shape) != len(dims):
        raise InvalidArgument(
            f"Invalid rank for input: {name} Got: {len(shape)} Expected: {len(dims)} {_FIX} "
            f"The model declares shape {_shape_text(spec)}; the fed value has shape "
            f"{list(shape)}."
        )
    for i, e in spec.fixed:
        if shape[i] != e:
            bad = [(i, shape[i], e) for i, e in spec.fixed if shape[i] != e]
            lines = "".join(f"\n index: {i} Got: {g} Expected: {e}" for i, g, e in bad)
            raise InvalidArgument(
                f"Got invalid dimensions for input: {name} for the following indices{lines}\n "
                f"{_FIX} The model declares shape {_shape_text(spec)} (free dimension "
                f"overrides applied); the fed value has shape {list(shape)}."
            )


def _shape_text(spec: FeedSpec) -> str:
    """The declared dims as a list, '?' where any size is accepted."""
    return "[" + ", ".join("?" if d is None else str(d) for d in spec.dims or ()) + "]"


def _check_device(name: str, arr: Any, spec: FeedSpec) -> Any:
    """A device array (cupy, ...) bound through IOBinding: checked, never moved."""
    if spec.dtype is not None:
        dt = numpy_dtype(arr.dtype)
        if dt != spec.dtype:
            elem = _elem_of(dt)
            actual = _tensor_text(elem) if elem is not None else f"tensor({dt})"
            raise InvalidArgument(
                f"Unexpected input data type. Actual: ({actual}) , expected: ({spec.text}). "
                f"Input '{name}' is bound on a device as {dt}: bind an array of dtype "
                f"{spec.dtype} instead."
            )
    _check_dims(name, tuple(arr.shape), spec)
    return arr


# -- strings ---------------------------------------------------------------------------------------
def _strings(name: str, arr: np.ndarray) -> np.ndarray:
    """An object array of ``str`` with the shape of ``arr``, read as onnxruntime reads it."""
    kind = arr.dtype.kind
    if kind == "O":
        flat = arr.reshape(-1)
        if all(type(s) is str for s in flat):
            return arr
        out = np.empty(arr.shape, dtype=object)
        out.reshape(-1)[:] = [s if type(s) is str else str(s) for s in flat]
        return out
    if kind == "U":
        out = arr.astype(object)
        flat = out.reshape(-1)
        for i, s in enumerate(flat):
            if "\x00" in s:
                flat[i] = s.split("\x00", 1)[0]
        return out
    if kind == "S":
        items = [b.split(b"\x00", 1)[0] for b in arr.reshape(-1).tolist()]
    else:  # raw void: every byte of the element
        items = [bytes(v) for v in arr.reshape(-1)]
    out = np.empty(arr.shape, dtype=object)
    out.reshape(-1)[:] = [_decode(name, b, i) for i, b in enumerate(items)]
    return out


def _decode(name: str, raw: bytes, index: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgument(
            f"{e}. Element {index} of input '{name}' ({raw!r}) is not UTF-8; string tensors take "
            "UTF-8 text: decode the bytes yourself and feed an array of str."
        ) from None


# -- sequences, maps, optionals --------------------------------------------------------------------
def _sequence(name: str, value: Any, spec: FeedSpec) -> list:
    inner = spec.inner
    if inner is not None and inner.kind == "map":
        return _sequence_of_maps(name, value, spec)
    hint = "feed a list of numpy arrays."
    if isinstance(value, np.ndarray):
        raise _received_tensor(name, spec, hint)
    if isinstance(value, Mapping):
        raise _wrong_kind(name, value, spec, hint)
    if not isinstance(value, list):
        if isinstance(value, tuple):
            raise InvalidArgument(
                "Iterable of <class 'numpy.ndarray'> should be given as array for input "
                f"'{name}'. Input '{name}' is declared {spec.text}: pass a list, list(value)."
            )
        if value is None:
            raise InvalidArgument(
                f"Input '{name}' is None, but the model declares {spec.text}; {hint}"
            )
        raise _unusable(name, value, spec, hint)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, _COrtValue):
            item = OrtValue._from_c(item)
        if isinstance(item, OrtValue):
            item = item._host_value()
        if not isinstance(item, np.ndarray):
            raise InvalidArgument(
                f"CreateSequenceOfTensors: Input is not a tensor. Element {i} of input '{name}' "
                f"is a {type(item).__name__}; {spec.text} takes a list of numpy arrays."
            )
        if inner is not None and inner.kind == "tensor":
            arr = item if type(item) is np.ndarray else np.asarray(item)
            try:
                item = _element_type(name, arr, inner)
            except InvalidArgument:
                elem = _elem_of(arr.dtype)
                got = _tensor_text(elem) if elem is not None else f"tensor({arr.dtype})"
                raise InvalidArgument(
                    f"Unexpected input data type. Actual: ((seq({got}))) , expected: "
                    f"(({spec.text})). Element {i} of input '{name}' is {arr.dtype}: every "
                    f"element must be {_numpy_name(inner.dtype)}."
                ) from None
        out.append(item)
    return out


def _sequence_of_maps(name: str, value: Any, spec: FeedSpec) -> list[dict]:
    hint = "feed a list of dicts."
    if isinstance(value, np.ndarray):
        raise _received_tensor(name, spec, hint)
    if isinstance(value, Mapping):
        raise _wrong_kind(name, value, spec, hint + " Wrap one dict in a list: [value].")
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _unusable(name, value, spec, hint)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidArgument(
                f"Element {i} of input '{name}' is a {type(item).__name__}, not a dict; "
                f"{spec.text} takes a list of dicts."
            )
        out.append(_convert_map(name, item, spec.inner, spec))
    return out


def _map(name: str, value: Any, spec: FeedSpec) -> dict:
    hint = "feed one dict per run."
    if isinstance(value, np.ndarray):
        raise _received_tensor(name, spec, hint)
    if isinstance(value, Mapping):
        return _convert_map(name, value, spec, spec)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        raise InvalidArgument(
            f"Unexpected input data type. Actual: ((seq(map({_key_text(value[0])},"
            f"tensor(float))))) , expected: (({spec.text})). Input '{name}' is declared "
            f"{spec.text}, one dict: run once per dict, or convert the model with a "
            "sequence-of-maps input."
        )
    if value is None:
        raise InvalidArgument(f"Input '{name}' is None, but the model declares {spec.text}; {hint}")
    raise _unusable(name, value, spec, hint)


def _is_int(k: Any) -> bool:
    return isinstance(k, (numbers.Integral, np.integer))


def _convert_map(name: str, d: Mapping, spec: FeedSpec, declared: FeedSpec) -> dict:
    """A fed dict as a dict of Python keys and values of the declared types."""
    if not d:
        return {}
    first = next(iter(d))
    if isinstance(first, str):
        key = onnx.TensorProto.STRING
    elif _is_int(first) or isinstance(first, numbers.Number):
        key = onnx.TensorProto.INT64
    else:
        raise InvalidArgument(
            f"Key type must be int or string (not {type(first)}) for input '{name}'. "
            f"{declared.text} takes dicts with "
            f"{'str' if spec.key == onnx.TensorProto.STRING else 'int'} keys."
        )
    if key != spec.key:
        actual = f"map({'string' if key == onnx.TensorProto.STRING else 'int64'},tensor(float))"
        want = "str" if spec.key == onnx.TensorProto.STRING else "int"
        raise InvalidArgument(
            f"Unexpected input data type. Actual: (({actual})) , expected: (({declared.text})). "
            f"Input '{name}' is declared {declared.text}: give the dict {want} keys."
        )
    if key == onnx.TensorProto.STRING:
        keys = [k if type(k) is str else str(k) for k in d]
    else:
        keys = []
        for k in d:
            if not _is_int(k) or not _INT64_RANGE[0] <= int(k) <= _INT64_RANGE[1]:
                raise InvalidArgument(
                    f"Unexpected key type  {type(k)}, it cannot be linked to C type int64_t for "
                    f"input '{name}': key {k!r} is not an int64."
                )
            keys.append(int(k))
    convert = _VALUE_CONVERTERS.get(spec.elem)
    if convert is None:
        raise InvalidArgument(
            f"Input '{name}' is declared {declared.text}, a map type ort-core cannot build from "
            "a dict; maps take float, double, int64 or string values."
        )
    values = []
    for k, v in zip(keys, d.values()):
        try:
            values.append(convert(v))
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument(
                f"Unexpected value type {type(v)}, it cannot be linked to "
                f"{_VALUE_NAMES[spec.elem]} for input '{name}' (key {k!r}: {e}); "
                f"{declared.text} takes {_VALUE_NAMES[spec.elem]} values."
            ) from None
    return dict(zip(keys, values))


def _to_float(v: Any) -> float:
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(f"{type(v).__name__} is not a number")
    return float(v)


def _to_float32(v: Any) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(_to_float(v)))


def _to_int64(v: Any) -> int:
    if not _is_int(v):
        raise TypeError(f"{type(v).__name__} is not an integer")
    i = int(v)
    if not _INT64_RANGE[0] <= i <= _INT64_RANGE[1]:
        raise OverflowError(f"{i} does not fit int64")
    return i


def _to_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{type(v).__name__} is not a str")
    return str(v)


_VALUE_CONVERTERS = {
    onnx.TensorProto.FLOAT: _to_float32,
    onnx.TensorProto.DOUBLE: _to_float,
    onnx.TensorProto.INT64: _to_int64,
    onnx.TensorProto.STRING: _to_str,
}
_VALUE_NAMES = {
    onnx.TensorProto.FLOAT: "float",
    onnx.TensorProto.DOUBLE: "double",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.STRING: "str",
}


def _optional(name: str, value: Any, spec: FeedSpec, keep_device: bool) -> Any:
    if value is None:
        return None
    inner = spec.inner
    if inner is None:
        return value
    if isinstance(value, Mapping) and inner.kind != "map":
        raise _wrong_kind(name, value, spec, "feed None or a value of the element type.")
    if isinstance(value, np.ndarray) and inner.kind != "tensor":
        raise _received_tensor(name, spec, "feed None or a list of numpy arrays.")
    return _check(name, value, inner, keep_device)


# -- results ---------------------------------------------------------------------------------------
def _owner(a: Any) -> Any:
    """The object that owns the memory of an array (the end of its ``base`` chain)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _owners(values: Iterable[Any]) -> set[int]:
    ids: set[int] = set()
    for v in values:
        if type(v) is np.ndarray and v.base is None:  # most fed arrays own their memory
            ids.add(id(v))
        elif isinstance(v, np.ndarray):
            ids.add(id(_owner(v)))
        elif isinstance(v, list):
            ids |= _owners(v)
    return ids


class RunOwners:
    """The memory owners of one run's fed values, found when an output first asks (a result that
    is a fresh array of the wrong kind, a sequence or a map never makes anyone look)."""

    __slots__ = ("inputs", "_ids")

    def __init__(self, inputs: Iterable[Any]) -> None:
        self.inputs = inputs
        self._ids: set[int] | None = None

    def __contains__(self, owner_id: object) -> bool:
        ids = self._ids
        if ids is None:
            ids = self._ids = _owners(self.inputs)
        return owner_id in ids


def finish_outputs(values: Iterable[Any], inputs: Iterable[Any] = ()) -> list[Any]:
    """:func:`finish_output` for every result of one run (the inputs are looked at once)."""
    owners = RunOwners(inputs)
    return [_finish(v, owners) for v in values]


def finish_at(values: Sequence[Any], positions: Iterable[int], inputs: Sequence[Any]) -> list[Any]:
    """:func:`finish_output` for ``values[i]`` at each of ``positions``: the results of one
    run (``inputs``: the values it was fed). A fresh array the run made (no ``base``; aligned,
    writeable and C-contiguous: ``flags.carray``) is handed out as a view after checking only
    that it is not fed memory (:func:`_fed`); other values take :func:`_finish`. A run's two
    outputs took 1.9 us through :func:`finish_with`; 1.0 (1.6 fed a view) with the owners' ids
    gathered for every run and ``flags`` read twice an output; 0.76 (0.87) so."""
    owners = None
    result = []
    for i in positions:
        v = values[i]
        if type(v) is np.ndarray and v.base is None and v.flags.carray and v.dtype.kind not in "US":
            fed = _fed(v, inputs)
            if fed is None:  # a fed value that is not an array: the owners' ids
                if owners is None:
                    owners = RunOwners(inputs)
                fed = id(v) in owners
            if not fed:
                result.append(v.view())
                continue
        if owners is None:
            owners = RunOwners(inputs)
        result.append(_finish(v, owners))
    return result


def _fed(v: np.ndarray, inputs: Sequence[Any]) -> bool | None:
    """Whether the array ``v`` (which owns its memory) is one of the fed arrays or the owner of
    a fed view, by identity; None where a fed value is not a numpy array (a sequence: its
    owners are gathered by :class:`RunOwners`)."""
    for x in inputs:
        if x is v:
            return True
        if type(x) is not np.ndarray:
            return None
        b = x.base
        if b is not None and (b is v or (getattr(b, "base", None) is not None and _owner(b) is v)):
            return True
    return False


def finish_with(value: Any, owners: RunOwners) -> Any:
    """:func:`finish_output` with the run's fed values given as a :class:`RunOwners` shared by
    all of its outputs."""
    return _finish(value, owners)


def finish_output(value: Any, inputs: Iterable[Any] = ()) -> Any:
    """One kernel result as onnxruntime returns it to the user.

    Args:
        value: a graph output as the executor produced it.
        inputs: the values the run was fed (an output sharing memory with one is copied).

    Returns:
        A C-contiguous, writeable numpy array that shares no memory with the inputs or the
        session (0-d for scalars, object array of str for strings), a list (sequences), a dict
        (maps) or None.
    """
    return _finish(value, RunOwners(inputs))


class PlainMaps(list):
    """A sequence of maps whose keys and values are Python scalars already (``ZipMap`` builds
    them from ``tolist()``, fresh each run): :func:`finish_output` returns its dicts in a plain
    list the first time, and a list of copies of them after that (the same value handed out
    twice: an output listed twice), without looking at their items. Copying every time took 8-9
    us of a 100-row logistic regression's 66 with its ZipMap."""

    __slots__ = ("handed",)


def _finish(value: Any, owners: set[int] | RunOwners) -> Any:
    if type(value) is np.ndarray and value.dtype.kind not in "US":  # the common case, first
        flags = value.flags
        base = value.base
        if (
            flags.writeable
            and flags.c_contiguous
            and id(value if base is None else _owner(base)) not in owners
        ):
            # a view of the result, as onnxruntime hands out views of the buffers its run produced
            return value.view() if base is None else value
        value = np.array(value, order="C", copy=True)
        return value.view()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            out = np.empty(value.shape, dtype=object)
            out.reshape(-1)[:] = [
                s.decode("utf-8") if isinstance(s, bytes) else s for s in value.reshape(-1).tolist()
            ]
            return out
        if type(value) is not np.ndarray:
            value = np.asarray(value)
        if not value.flags.writeable or not value.flags.c_contiguous or id(_owner(value)) in owners:
            value = np.array(value, order="C", copy=True)
        # a view of the result, as onnxruntime hands out views of the buffers its run produced
        return value.view() if value.base is None else value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if type(value) is PlainMaps:
        if getattr(value, "handed", False):
            return list(map(dict, value))
        value.handed = True
        return list(value)
    if isinstance(value, list):
        return [_finish(v, owners) for v in value]
    if isinstance(value, dict):
        return {_python(k): _python(v) for k, v in value.items()}
    return value


def _python(v: Any) -> Any:
    """A numpy scalar as the Python scalar onnxruntime gives in maps."""
    if isinstance(v, np.generic):
        return v.item()
    return v
