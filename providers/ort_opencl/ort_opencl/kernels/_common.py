"""The OpenCL provider's kernel registry and what the op families share: element types, the
float16 capability check, and two generated kernels every family builds on:

- :class:`Elementwise`: ``y = f(x0, x1, ...)`` with numpy broadcasting (strides as arguments; a flat
  variant when every input is contiguous or a scalar);
- :class:`StridedCopy`: ``y[out strides] = x[in strides]`` over an iteration shape, by element size
  (Transpose, Slice, Expand, Concat, Split, Tile are all this copy with different strides).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ort_core.provider import KernelInfo, KernelRegistry

from ..device import CTYPES, UINT_BY_SIZE

registry = KernelRegistry("OpenCLExecutionProvider")


def _as_limit(decorate: Callable[..., Any]) -> Callable[..., Any]:
    """The registry's decorator with ``check=`` read as ``limit=``: every check of this provider
    (device features such as float16, ranks, modes it does not implement) is one of its limits, so
    a node it declines goes to the next provider or to the op's function body; whether a node is
    invalid is decided by the core's validation and the CPU provider."""

    def deco(*args: Any, check: Any = None, limit: Any = None, **kwargs: Any) -> Any:
        if check is not None and limit is not None:
            first, second = check, limit

            def both(info: KernelInfo) -> str | None:
                return first(info) or second(info)

            limit = both
        else:
            limit = check if check is not None else limit
        return decorate(*args, limit=limit, **kwargs)

    return deco


kernel = _as_limit(registry.kernel)
builder = _as_limit(registry.builder)

MAXR = 8  # highest rank the strided kernels take (after merging dimensions)

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
BOOL = np.dtype(np.bool_)
FLOATS = frozenset({F32, F16})
SINT = frozenset(map(np.dtype, (np.int8, np.int16, np.int32, np.int64)))
UINT = frozenset(map(np.dtype, (np.uint8, np.uint16, np.uint32, np.uint64)))
INTS = SINT | UINT
NUMERIC = FLOATS | INTS
#: every element type a copy-only kernel moves (by element size)
ANY = NUMERIC | {BOOL, F64}

CTYPE = CTYPES  # numpy dtype -> OpenCL C type (one table, in device.py)
BYTES = UINT_BY_SIZE  # element size -> unsigned C type, for kernels that only move bytes
FP64_PRAGMA = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"


def device_of(info: KernelInfo):
    """The :class:`~ort_opencl.device.OpenCLDevice` of the provider building this node."""
    return info.provider.cl


def compute_type(dt: np.dtype) -> str:
    """C type arithmetic runs in: half is loaded into float; the rest as stored."""
    return "float" if dt == F16 else CTYPE[dt]


def pragmas(*dtypes: np.dtype) -> str:
    out = ""
    if F64 in dtypes:
        out += FP64_PRAGMA
    return out


def load(dt: np.dtype, ptr: str, idx: str) -> str:
    """C expression reading element ``idx`` of ``ptr`` into its compute type."""
    return f"vload_half({idx}, {ptr})" if dt == F16 else f"{ptr}[{idx}]"


def store(dt: np.dtype, ptr: str, idx: str, value: str) -> str:
    """C statement writing ``value`` to element ``idx`` of ``ptr``."""
    if dt == F16:
        return f"vstore_half_rte((float)({value}), {idx}, {ptr});"
    if dt == BOOL:
        return f"{ptr}[{idx}] = (uchar)(({value}) ? 1 : 0);"
    return f"{ptr}[{idx}] = ({CTYPE[dt]})({value});"


# -- partition-time checks ---------------------------------------------------------------------
def fp16_check(info: KernelInfo) -> str | None:
    """Decline float16 nodes on devices without cl_khr_fp16."""
    types = [info.input_dtype(i) for i in range(info.num_inputs) if info.has_input(i)]
    types += [info.output_dtype(i) for i in range(info.num_outputs)]
    if F16 in types and not device_of(info).fp16:
        return f"the OpenCL device {device_of(info).name!r} lacks cl_khr_fp16 (no float16 kernels)"
    return None


def checks(*fns: Callable[[KernelInfo], str | None]) -> Callable[[KernelInfo], str | None]:
    """One check running ``fp16_check`` and then ``fns`` in order; the first reason wins."""

    def run(info: KernelInfo) -> str | None:
        for fn in (fp16_check, *fns):
            reason = fn(info)
            if reason:
                return reason
        return None

    return run


def rank_check(max_rank: int = MAXR) -> Callable[[KernelInfo], str | None]:
    def run(info: KernelInfo) -> str | None:
        for i in range(info.num_inputs):
            shape = info.input_shape(i) if info.has_input(i) else None
            if shape is not None and len(shape) > max_rank:
                return (
                    f"input {i} has rank {len(shape)}; the OpenCL kernels take rank <= {max_rank}"
                )
        return None

    return run


# -- shapes and strides ------------------------------------------------------------------------
def elem_strides(a: Any) -> list[int]:
    """Strides of an array in elements."""
    return [s // a.dtype.itemsize for s in a.strides] if a.ndim else []


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def broadcast_strides(
    shape: Sequence[int], strides: Sequence[int], out: Sequence[int]
) -> list[int]:
    """Strides of an operand read with numpy broadcasting over ``out``."""
    lead = len(out) - len(shape)
    res = [0] * lead
    for d, s, o in zip(shape, strides, out[lead:]):
        res.append(0 if d == 1 and o != 1 else s)
    return res


def merge_dims(shape: Sequence[int], strides: Sequence[Sequence[int]]):
    """Drop size-1 dimensions and merge neighbours every operand walks contiguously.

    Returns (shape, [strides per operand]), innermost last."""
    dims: list[int] = []
    sts: list[list[int]] = [[] for _ in strides]
    for k, d in enumerate(shape):
        if d == 1:
            continue
        if dims and all(st[-1] == s[k] * d for st, s in zip(sts, strides)):
            dims[-1] *= d
            for st, s in zip(sts, strides):
                st[-1] = s[k]
            continue
        dims.append(d)
        for st, s in zip(sts, strides):
            st.append(s[k])
    return dims, sts


def pad_args(values: Sequence[int], fill: int) -> list[int]:
    return list(values) + [fill] * (MAXR - len(values))


def too_deep(rank: int) -> ValueError:
    return ValueError(f"a tensor of rank {rank} (after merging dimensions) exceeds {MAXR}")


# -- generated elementwise kernels -------------------------------------------------------------
class Elementwise:
    """``y = expr(a0, a1, ...)`` with broadcasting, built per input dtypes.

    ``expr`` is a C expression over ``a0, a1, ...`` (in their compute types) and ``p0, p1, ...``
    (scalar parameters of type ``param_type``, given per call); ``out_dtype(dtypes)`` gives the
    output element type.
    """

    def __init__(
        self,
        dev: Any,
        name: str,
        expr: str | Callable[[list[np.dtype]], str],
        n_inputs: int,
        out_dtype: Callable[[list[np.dtype]], np.dtype],
        n_params: int = 0,
        preamble: str = "",
    ) -> None:
        self.dev = dev
        self.name = name
        self.expr = expr
        self.n = n_inputs
        self.out_dtype = out_dtype
        self.n_params = n_params
        self.preamble = preamble
        self._built: dict[tuple, tuple] = {}

    def _build(self, dts: tuple[np.dtype, ...]):
        got = self._built.get(dts)
        if got is not None:
            return got
        odt = np.dtype(self.out_dtype(list(dts)))
        expr = self.expr(list(dts)) if callable(self.expr) else self.expr
        ptype = compute_type(dts[0]) if self.n_params else "float"
        n = self.n
        ins_flat = ", ".join(
            f"__global const {CTYPE[d]}* x{i}, long o{i}, long s{i}" for i, d in enumerate(dts)
        )
        ins_str = ", ".join(
            f"__global const {CTYPE[d]}* x{i}, long o{i}, "
            + ", ".join(f"long s{i}_{k}" for k in range(MAXR))
            for i, d in enumerate(dts)
        )
        params = "".join(f", {ptype} p{j}" for j in range(self.n_params))
        loads_flat = "".join(
            f"  {compute_type(d)} a{i} = {load(d, f'x{i}', f'o{i} + gid * s{i}')};\n"
            for i, d in enumerate(dts)
        )
        loads_str = "".join(
            f"  {compute_type(d)} a{i} = {load(d, f'x{i}', f'i{i}')};\n" for i, d in enumerate(dts)
        )
        walk = "".join(
            f"  if ({k} < rank) {{ long c = r % d{k}; r /= d{k}; "
            + " ".join(f"i{i} += c * s{i}_{k};" for i in range(n))
            + " }\n"
            for k in reversed(range(MAXR))
        )
        dims = ", ".join(f"long d{k}" for k in range(MAXR))
        src = (
            pragmas(*dts, odt)
            + self.preamble
            + f"""
__kernel void flat(__global {CTYPE[odt]}* y, long oy, long nel, {ins_flat}{params}) {{
  long gid = get_global_id(0);
  if (gid >= nel) return;
{loads_flat}  {store(odt, "y", "oy + gid", expr)}
}}
__kernel void strided(__global {CTYPE[odt]}* y, long oy, long nel, int rank, {dims},
                      {ins_str}{params}) {{
  long gid = get_global_id(0);
  if (gid >= nel) return;
  long r = gid;
  {" ".join(f"long i{i} = o{i};" for i in range(n))}
{walk}{loads_str}  {store(odt, "y", "oy + gid", expr)}
}}
"""
        )
        pt = ptype_numpy(ptype)
        flat_args = [None, np.int64, np.int64] + [None, np.int64, np.int64] * n
        flat_args += [pt] * self.n_params
        str_args = [None, np.int64, np.int64, np.int32] + [np.int64] * MAXR
        str_args += ([None, np.int64] + [np.int64] * MAXR) * n + [pt] * self.n_params
        got = (
            odt,
            self.dev.kernel(src, "flat", flat_args),
            self.dev.kernel(src, "strided", str_args),
        )
        self._built[dts] = got
        return got

    def __call__(self, *inputs: Any, params: Sequence[float] = ()) -> Any:
        dev = self.dev
        odt, kflat, kstr = self._build(tuple(np.dtype(x.dtype) for x in inputs))
        shape = tuple(np.broadcast_shapes(*(tuple(x.shape) for x in inputs)))
        y = dev.empty(shape, odt)
        total = y.size
        if total == 0:
            return y
        yb, yo = dev.buf(y)
        if all(x.flags.c_contiguous and x.size in (1, total) for x in inputs):
            args: list[Any] = [yb, yo, total]
            for x in inputs:
                b, o = dev.buf(x)
                args += [b, o, 1 if x.size == total and total != 1 else 0]
            dev.launch(kflat, (total,), None, *args, *params)
            return y
        strides = [broadcast_strides(x.shape, elem_strides(x), shape) for x in inputs]
        dims, sts = merge_dims(shape, strides)
        if len(dims) > MAXR:
            raise too_deep(len(dims))
        args = [yb, yo, total, len(dims), *pad_args(dims, 1)]
        for x, st in zip(inputs, sts):
            b, o = dev.buf(x)
            args += [b, o, *pad_args(st, 0)]
        dev.launch(kstr, (total,), None, *args, *params)
        return y


def ptype_numpy(ctype_name: str) -> np.dtype:
    """numpy type of a scalar kernel argument of C type ``ctype_name``."""
    return next(d for d, c in CTYPE.items() if c == ctype_name and d != BOOL)


# -- strided copies ----------------------------------------------------------------------------
_COPY_SRC = """
__kernel void copy(__global T* y, long oy, __global const T* x, long ox, long nel, int rank,
                   {dims}, {ys}, {xs}) {{
  long gid = get_global_id(0);
  if (gid >= nel) return;
  long r = gid, iy = oy, ix = ox;
{walk}  y[iy] = x[ix];
}}
"""


def _copy_source(itemsize: int) -> str:
    walk = "".join(
        f"  if ({k} < rank) {{ long c = r % d{k}; r /= d{k}; iy += c * sy{k}; ix += c * sx{k}; }}\n"
        for k in reversed(range(MAXR))
    )
    return f"#define T {BYTES[itemsize]}\n" + _COPY_SRC.format(
        dims=", ".join(f"long d{k}" for k in range(MAXR)),
        ys=", ".join(f"long sy{k}" for k in range(MAXR)),
        xs=", ".join(f"long sx{k}" for k in range(MAXR)),
        walk=walk,
    )


_COPY_ARGS = [None, np.int64, None, np.int64, np.int64, np.int32] + [np.int64] * (3 * MAXR)


def strided_copy(
    dev: Any,
    y: Any,
    y_offset: int,
    y_strides: Sequence[int],
    x: Any,
    x_offset: int,
    x_strides: Sequence[int],
    shape: Sequence[int],
) -> None:
    """Copy ``shape`` elements from ``x`` (offset and strides in elements, relative to the array's
    own start) to ``y``. Both arrays share one element size."""
    total = math.prod(shape)
    if total == 0:
        return
    dims, (sy, sx) = merge_dims(shape, [y_strides, x_strides])
    if len(dims) > MAXR:
        raise too_deep(len(dims))
    k = dev.kernel(_copy_source(y.dtype.itemsize), "copy", _COPY_ARGS)
    yb, yo = dev.buf(y)
    xb, xo = dev.buf(x)
    dev.launch(
        k,
        (total,),
        None,
        yb,
        yo + y_offset,
        xb,
        xo + x_offset,
        total,
        len(dims),
        *pad_args(dims, 1),
        *pad_args(sy, 0),
        *pad_args(sx, 0),
    )


def contiguous(dev: Any, x: Any) -> Any:
    """``x`` itself when C-contiguous, else a contiguous copy."""
    if x.flags.c_contiguous:
        return x
    y = dev.empty(x.shape, x.dtype)
    strided_copy(dev, y, 0, contiguous_strides(x.shape), x, 0, elem_strides(x), x.shape)
    return y


def host_ints(v: Any) -> list[int]:
    """A host input (shape, axes, pads...) as a list of Python ints."""
    return [int(t) for t in np.asarray(v).reshape(-1)]
