"""Shape ops: Identity, Constant, ConstantOfShape, Shape, Size, Reshape, Flatten, Squeeze,
Unsqueeze, Expand, Transpose, Range, EyeLike.

Results are views of the input wherever numpy allows (reshape, transpose, squeeze, slicing).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from ort_array.checks import all_of as all_checks  # noqa: F401 (the families import them here)
from ort_array.checks import axis_check, choice_check  # noqa: F401

from ort_core import ops
from ort_core._onnx import helper
from ort_core.errors import InvalidArgument
from ort_core.ops import normalize_axes, normalize_axis  # noqa: F401 (the families import them here)

from ._registry import builder, kernel


def zero_of(dtype: np.dtype) -> np.ndarray:
    """The 0-d "zero" of an element type: ``""`` for strings (object arrays), else 0."""
    return np.array("", dtype=object) if dtype.kind == "O" else np.zeros((), dtype=dtype)


def int_list(values) -> list[int]:
    """A 1-D (or 0-d) integer tensor or a list as a list of Python ints (an integer array's
    ``tolist``: a Python int per element without a numpy scalar each, 0.3 against 1.2 us for a
    Reshape's four values)."""
    if type(values) is np.ndarray and values.dtype.kind in "iu":
        return values.reshape(-1).tolist()
    return [int(v) for v in np.asarray(values).reshape(-1)]


# -- pass-through and constants -------------------------------------------------------------------
@kernel("Identity", since=1)
def identity(x):
    return x  # tensors, sequences (lists) and optionals (None or a value) alike


def _constant_value(attrs: dict) -> np.ndarray:
    if len(attrs) != 1:
        raise InvalidArgument(
            f"Constant: exactly one value attribute is required, got {sorted(attrs)}."
        )
    [(name, v)] = attrs.items()
    if name in ("value", "sparse_value"):
        return np.asarray(v)
    if name == "value_float":
        return np.asarray(v, dtype=np.float32)
    if name == "value_floats":
        return np.asarray(v, dtype=np.float32).reshape(-1)
    if name == "value_int":
        return np.asarray(v, dtype=np.int64)
    if name == "value_ints":
        return np.asarray(v, dtype=np.int64).reshape(-1)
    if name == "value_string":
        return np.array(v, dtype=object)
    if name == "value_strings":
        arr = np.empty(len(v), dtype=object)
        arr[:] = list(v)
        return arr
    raise InvalidArgument(f"Constant: unknown attribute {name!r}.")


_CONSTANT_ATTRS = (
    "value",
    "sparse_value",
    "value_float",
    "value_floats",
    "value_int",
    "value_ints",
    "value_string",
    "value_strings",
)


@builder("Constant", since=1, attributes=_CONSTANT_ATTRS)
def constant(info):
    value = _constant_value(info.attrs)

    def run():
        return value.copy()  # callers may write into outputs; never hand out the shared array

    return run


@builder("ConstantOfShape", since=9, attributes=("value",))
def constant_of_shape(info):
    value = info.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    if fill.size != 1:
        raise InvalidArgument(f"ConstantOfShape: 'value' must hold one element, got {fill.size}.")

    # The result depends on the shape only: keep the last one (read-only, so no kernel can write
    # into it) instead of allocating and filling it again on every run. Models that build their
    # weights with ConstantOfShape from overridable shape inputs hit this on every run.
    last: list = [None, None]
    lock = threading.Lock()

    def run(shape):
        dims = tuple(int_list(shape))
        with lock:
            if last[0] == dims:
                return last[1]
        if any(d < 0 for d in dims):
            raise InvalidArgument(f"ConstantOfShape: negative dimension in shape {list(dims)}.")
        out = np.full(dims, fill[0], dtype=fill.dtype)
        out.flags.writeable = False
        with lock:
            last[0], last[1] = dims, out
        return out

    return run


# -- shape queries ---------------------------------------------------------------------------------
@kernel("Shape", since=1)
def shape(x, start=0, end=None):
    return np.array(x.shape[start:end], dtype=np.int64)  # slicing clamps as the spec asks


@kernel("Size", since=1)
def size(x):
    return np.asarray(x.size, dtype=np.int64)


# -- reshaping -------------------------------------------------------------------------------------
@kernel("Reshape", since=1)
def reshape_1(x, shape=None, consumed_inputs=None):  # noqa: ARG001 (a legacy optimizer hint)
    if shape is None:
        raise InvalidArgument("Reshape-1: the shape attribute is required.")
    return x.reshape(ops.reshape_shape(x.shape, shape))


#: (input shape, the shape input's bytes, allowzero) -> Reshape's output shape (a model reshapes
#: the same shapes each run: the conversion and the lookup took 1 of a 1.15 us Reshape)
_RESHAPES: dict = {}


@kernel("Reshape", since=5)
def reshape(x, shape, allowzero=0):
    if shape.__class__ is np.ndarray:
        key = (x.shape, shape.dtype.char, shape.tobytes(), allowzero)
    else:
        key = (x.shape, None, tuple(shape), allowzero)
    out = _RESHAPES.get(key)
    if out is None:
        out = ops.reshape_shape(x.shape, int_list(shape), allowzero)
        if len(_RESHAPES) >= 4096:
            _RESHAPES.clear()
        _RESHAPES[key] = out
    return x.reshape(out)


@kernel("Flatten", since=1)
def flatten(x, axis=1):
    rank = x.ndim
    if not -rank <= axis <= rank:
        raise InvalidArgument(f"Flatten: axis {axis} is out of range for a tensor of rank {rank}.")
    axis = axis + rank if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def axes_key(axes):
    """A hashable form of an axes attribute (a list) or input (an integer tensor), or None."""
    if axes is None or axes.__class__ is tuple:
        return axes
    if axes.__class__ is list:
        return tuple(axes)
    return np.asarray(axes).tobytes()


def _reshaper(rule):
    """A kernel ``run(x, axes)`` reshaping ``x`` to ``rule(x.shape, axes as ints or None)``,
    the shape worked out once per input shape and axes (each call took 1.6 us above the
    reshape for a Squeeze or Unsqueeze on a small tensor)."""
    shapes: dict = {}

    def run(x, axes):
        key = (x.shape, axes_key(axes))
        shape = shapes.get(key)
        if shape is None:
            shape = rule(x.shape, None if axes is None else int_list(axes))
            if len(shapes) < 256:
                shapes[key] = shape
        return x.reshape(shape)

    return run


_squeeze = _reshaper(ops.squeeze_shape)
_unsqueeze = _reshaper(ops.unsqueeze_shape)


@kernel("Squeeze", since=(1, 11, 13))
def squeeze(x, axes=None):  # axes: an attribute before opset 13, an optional input since
    return _squeeze(x, axes)


@kernel("Unsqueeze", since=(1, 11, 13))
def unsqueeze(x, axes=()):  # axes: an attribute before opset 13, an input since
    return _unsqueeze(x, axes)


def _expand_shape(have: tuple, want: list) -> tuple | None:
    """Expand's output shape where ``want`` has at least ``have``'s rank and every axis
    matches or one side is 1 (the usual case, in one loop); None otherwise
    (:func:`ops.broadcast_shape` then gives the shape or the error)."""
    lead = len(want) - len(have)
    if lead < 0:
        return None
    out = want[:lead]
    for a, b in zip(have, want[lead:]):
        if a == b or b == 1:
            out.append(a)
        elif a == 1:
            out.append(b)
        else:
            return None
    return tuple(out)


@kernel("Expand", since=8)
def expand(x, shape):
    want = int_list(shape)
    target = _expand_shape(x.shape, want)
    if target is None:
        target = ops.broadcast_shape(x.shape, want, op="Expand")
    # A fresh array: a stride-0 broadcast view would be read-only for whoever receives it.
    # Written by one broadcasting copy (np.broadcast_to's Python checks took 2.5 us)
    y = np.empty(target, x.dtype)
    np.copyto(y, x)
    return y


@builder("Transpose", since=1, attributes=("perm",))
def transpose_builder(info):
    perm = info.attr("perm")
    if perm is None:
        return transpose
    perm = tuple(int(p) for p in perm)
    valid = sorted(perm) == list(range(len(perm)))  # checked once, not per call

    def run(x):
        if x.ndim != len(perm) or not valid:
            return transpose(x, perm)  # the error
        return x.transpose(perm)

    return run


def transpose(x, perm=None):
    if perm is None:
        return x.transpose()
    if sorted(perm) != list(range(x.ndim)):
        raise InvalidArgument(
            f"Transpose: perm {list(perm)} is not a permutation of 0..{x.ndim - 1}."
        )
    return x.transpose(perm)


# -- generators ------------------------------------------------------------------------------------
_STASH = {1: np.float32, 11: np.float64}


@kernel("Range", since=11)
def range_(start, limit, delta, stash_type=1):
    dtype = np.asarray(start).dtype
    s, e, d = (np.asarray(v).reshape(()).item() for v in (start, limit, delta))
    if d == 0:
        raise InvalidArgument("Range: delta must not be zero.")
    if dtype.kind in "iu":
        n = max(-((s - e) // d), 0)  # exact ceil((e - s) / d) on Python ints
        return (np.arange(n, dtype=np.int64) * d + s).astype(dtype)
    n = max(math.ceil((e - s) / d), 0)
    compute = np.float64
    if dtype.itemsize < 4:  # float16 / bfloat16: accumulate as stash_type says
        compute = _STASH.get(int(stash_type))
        if compute is None:
            raise InvalidArgument(f"Range: unsupported stash_type {stash_type} (use 1 or 11).")
        s, d = float(compute(s)), float(compute(d))
    return (np.arange(n, dtype=compute) * compute(d) + compute(s)).astype(dtype)


@kernel("EyeLike", since=9)
def eye_like(x, dtype=None, k=0):
    if x.ndim != 2:
        raise InvalidArgument(f"EyeLike: input must be 2-D, got shape {x.shape}.")
    out_dtype = x.dtype if dtype is None else helper.tensor_dtype_to_np_dtype(dtype)
    out = np.zeros(x.shape, dtype=out_dtype)
    rows, cols = x.shape
    i = np.arange(max(0, -k), min(rows, cols - k)) if rows and cols else np.arange(0)
    out[i, i + k] = 1
    return out
