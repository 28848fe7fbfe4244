"""The array namespace of a kernel's inputs, and what kernels need to know about element types.

Kernels get ``xp`` from their first data input with :func:`namespace` (array-api-compat's
``array_namespace``, memoized per array type: resolving it costs microseconds, a dictionary lookup
does not). Shape-like inputs a provider declares as host inputs arrive as host (numpy) arrays and
are read with :func:`ints`.

Element types fall in kinds (:func:`kind`): ``b`` bool, ``i``/``u`` signed/unsigned integers,
``f`` float32/float64, ``h`` float16 (not in the standard, but numpy and cupy compute it
natively), ``c`` complex, and ``x`` for the other floats a namespace may hold (ml_dtypes' bfloat16
and float8 in numpy), which kernels compute in float32 and cast back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import array_api_compat
import numpy as np

from ort_core.errors import InvalidArgument

_NAMESPACES: dict[type, Any] = {}
_KINDS: dict[tuple[type, str], str] = {}


def namespace(x: Any) -> Any:
    """The array-API namespace of ``x`` (the same for every array of its type)."""
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = array_api_compat.array_namespace(x)
        _NAMESPACES[type(x)] = xp
    return xp


def device(x: Any) -> Any:
    """The device ``x`` lives on (pass it to creation functions)."""
    return array_api_compat.device(x)


def result(r: Any) -> Any:
    """``r`` as an array: numpy operations on 0-d arrays return numpy scalars."""
    return np.asarray(r) if isinstance(r, np.generic) else r


def kind(xp: Any, dtype: Any) -> str:
    """The kind of an element type: one of ``b i u f h c x`` (see the module docstring)."""
    key = (type(dtype), str(dtype))  # never compares dtypes of two libraries
    k = _KINDS.get(key)
    if k is None:
        k = _classify(xp, dtype)
        _KINDS[key] = k
    return k


def _classify(xp: Any, dtype: Any) -> str:
    names = {
        "b": ("bool",),
        "i": ("int8", "int16", "int32", "int64"),
        "u": ("uint8", "uint16", "uint32", "uint64"),
        "f": ("float32", "float64"),
        "h": ("float16",),
        "c": ("complex64", "complex128"),
    }
    for k, group in names.items():
        for name in group:
            if hasattr(xp, name) and dtype == getattr(xp, name):
                return k
    return "x"


def is_float(xp: Any, dtype: Any) -> bool:
    """Any real floating type, float16 and bfloat16/float8 included."""
    return kind(xp, dtype) in "fhx"


def is_int(xp: Any, dtype: Any) -> bool:
    return kind(xp, dtype) in "iu"


def widened(xp: Any, x: Any) -> Any:
    """``x`` in the type formulas and accumulations run in: float32 for float16, bfloat16 and
    float8, ``x`` itself otherwise."""
    return xp.astype(x, xp.float32) if kind(xp, x.dtype) in "hx" else x


def computable(xp: Any, x: Any) -> Any:
    """``x`` in a type the namespace's functions compute natively: float32 for bfloat16 and
    float8 (float16 stays: numpy and cupy compute it in float32 per element and round once)."""
    return xp.astype(x, xp.float32) if kind(xp, x.dtype) == "x" else x


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` as ``dtype`` (no copy when it already is)."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def ints(values: Any) -> list[int]:
    """A host tensor (or a list, or None: []) of integers as a list of Python ints."""
    if values is None:
        return []
    if isinstance(values, (list, tuple)):
        return [int(v) for v in values]
    return [int(v) for v in np.asarray(values).reshape(-1)]


def scalar(values: Any) -> Any:
    """The single value of a host tensor as a Python number."""
    arr = np.asarray(values).reshape(-1)
    if arr.size != 1:
        raise ValueError(f"expected one value, got {arr.size}")
    return arr[0].item()


def full(xp: Any, shape: Iterable[int], value: Any, like: Any) -> Any:
    """An array of ``shape`` filled with ``value``, of ``like``'s type and on its device."""
    return xp.full(tuple(shape), value, dtype=like.dtype, device=device(like))


def dtype(xp: Any, np_dtype: Any) -> Any:
    """The namespace's element type for a numpy dtype (ONNX types are named by numpy dtypes;
    array_api_strict has its own dtype objects). Types the standard lacks (float16, bfloat16)
    stay numpy dtypes, which numpy and cupy take."""
    np_dtype = np.dtype(np_dtype)
    return getattr(xp, np_dtype.name, np_dtype) if np_dtype.kind in "biufc" else np_dtype


def np_dtype(dt: Any) -> np.dtype:
    """The numpy dtype of a namespace's element type (array_api_strict's print as
    ``array_api_strict.float32``)."""
    try:
        return np.dtype(dt)
    except TypeError:
        return np.dtype(str(dt).rsplit(".", 1)[-1])


def provider_namespace(info: Any) -> Any:
    """The array namespace a kernel whose inputs are all host arrays creates its output in
    (Range): the provider's ``xp`` attribute, numpy's when it has none."""
    xp = getattr(info.provider, "xp", None)
    if xp is None:
        import array_api_compat.numpy as xp
    return xp


def check_indices(xp: Any, idx: Any, size: int, op: str, axis: int | None = None) -> Any:
    """``idx`` with negative indices counted from the end; an :class:`InvalidArgument` naming
    ``op`` when an index lies outside [-size, size-1] (one device-to-host read)."""
    if idx.size == 0:
        return idx
    if not host_waits():  # no device-to-host read: wrap negatives, clamp the rest
        return clip(xp, xp.where(idx < 0, idx + size, idx), 0, size - 1)
    if bool(xp.any((idx < -size) | (idx >= size))):
        bad = int(xp.min(idx)) if int(xp.min(idx)) < -size else int(xp.max(idx))
        where = "" if axis is None else f" on axis {axis}"
        raise InvalidArgument(f"{op}: index {bad} is out of range [{-size}, {size - 1}]{where}.")
    return xp.where(idx < 0, idx + size, idx)


# -- what a provider's run allows: matrix products, waits for the device --------------------------
_MODE = threading.local()


def matmul(xp: Any, a: Any, b: Any) -> Any:
    """``xp.matmul(a, b)``, or the product a provider installed for this thread with
    :func:`matmul_by` (the CUDA provider's capture-safe cuBLAS while it records a CUDA graph)."""
    fn = getattr(_MODE, "matmul", None)
    return xp.matmul(a, b) if fn is None else fn(xp, a, b)


def matmul_overridden() -> bool:
    """Whether a :func:`matmul_by` product is installed on this thread (then kernels avoid
    library calls that multiply matrices some other way, such as ``einsum``)."""
    return getattr(_MODE, "matmul", None) is not None


@contextlib.contextmanager
def matmul_by(fn: Callable[[Any, Any, Any], Any]) -> Iterator[None]:
    """Within the block, the shared kernels on this thread compute ``matmul(xp, a, b)`` with
    ``fn(xp, a, b)``."""
    before = getattr(_MODE, "matmul", None)
    _MODE.matmul = fn
    try:
        yield
    finally:
        _MODE.matmul = before


def host_waits() -> bool:
    """Whether kernels may read device values on the host (index checks, data-dependent
    paths); not inside :func:`no_host_waits`."""
    return not getattr(_MODE, "no_waits", False)


@contextlib.contextmanager
def no_host_waits() -> Iterator[None]:
    """Within the block, the shared kernels on this thread never read device values on the host
    (a CUDA-graph capture forbids it): index checks are skipped, and out-of-range indices are
    clamped to the axis, as onnxruntime's CUDA kernels leave them unchecked."""
    before = getattr(_MODE, "no_waits", False)
    _MODE.no_waits = True
    try:
        yield
    finally:
        _MODE.no_waits = before


def clip(xp: Any, x: Any, lo: Any = None, hi: Any = None) -> Any:
    """``x`` limited to [lo, hi] (Python numbers or arrays; None: no bound) as numpy's clip:
    ``minimum(maximum(x, lo), hi)``, NaN kept. array-api-compat's ``clip`` assigns through
    boolean masks, which on cupy waits for the GPU (and breaks a CUDA-graph capture) and is slower
    everywhere; ``maximum``/``minimum`` are one elementwise kernel each."""
    native = array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp)

    def bound(v: Any) -> Any:
        if native or not isinstance(v, (int, float)):
            return v  # numpy and cupy pass Python numbers to the kernel as weak scalars
        return xp.asarray(v, dtype=x.dtype, device=device(x))

    if lo is not None:
        x = xp.maximum(x, bound(lo))
    if hi is not None:
        x = xp.minimum(x, bound(hi))
    return x
