"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
MatMulIntegerToFloat (com.microsoft).

Per-tensor (scalar scale), per-axis (1-D scale along ``axis``) and blocked (``block_size``)
granularities; integer targets round half to even and saturate, float8 targets follow ``saturate``.
Parameters that fit none of them are an error, as in onnxruntime (:func:`check_params`).
:func:`quantize_runner` and :func:`dequantize_runner` are the kernels, shared with the
com.microsoft QuantizeLinear/DequantizeLinear of :mod:`.contrib_quant`.
The common case -- float32 to and from 8-bit integers, per tensor or per axis -- runs as one
compiled loop (``_quant_jit``) with the numpy path's float32 operations; the rest stays numpy.
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

from ort_core._onnx import helper
from ort_core.errors import InvalidArgument

from .. import _threads
from .._jit import available as jit_available
from . import _blas, _quant_jit
from ._registry import builder, kernel

INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))
_FLOAT8 = frozenset(
    map(
        np.dtype,
        (
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float8_e4m3fnuz,
            ml_dtypes.float8_e5m2,
            ml_dtypes.float8_e5m2fnuz,
        ),
    )
)


@functools.cache  # (np.iinfo takes 1.5 us, and QuantizeLinear's runs ask each time)
def _int_range(dtype: np.dtype) -> tuple[int, int] | None:
    """The saturation range of an integer quantized type, or None for float types."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
    elif dtype.name in ("int4", "uint4", "int2", "uint2"):
        info = ml_dtypes.iinfo(dtype)
    else:
        return None
    return int(info.min), int(info.max)


def _f32(a: np.ndarray) -> np.ndarray:
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def _expand(p: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point made broadcastable against an input of ``shape``."""
    if p.ndim == 0 or p.size == 1 and not block_size:
        return p.reshape(())
    axis %= len(shape)
    if block_size:
        return np.repeat(p, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    dims = [1] * len(shape)
    dims[axis] = p.size
    return p.reshape(dims)


_DQ_FAST = INT8_TYPES | {np.dtype(np.int32)}


def _per_channel(fn, x, scale, zero_point, axis, out, quantize=False):
    """``fn`` (a compiled loop of ``_quant_jit``) on ``x`` viewed as (outer, channels, inner), or
    None where the parameters are not per tensor or per axis of float32 ``x`` (quantize) or of
    ``x`` (dequantize) with float32 scales."""
    if scale.dtype != np.float32 or (quantize and x.dtype != np.float32):
        return None
    if zero_point is not None and zero_point.shape != scale.shape:
        return None
    if scale.size == 1:
        outer, ch, inner = 1, 1, x.size
    elif scale.ndim == 1 and x.ndim and scale.size == x.shape[axis % x.ndim]:
        ax = axis % x.ndim
        outer, ch = int(np.prod(x.shape[:ax])), x.shape[ax]
        inner = int(np.prod(x.shape[ax + 1 :]))
    else:
        return None
    s = np.array(scale.reshape(-1), np.float32)  # a writable copy: one compiled variant
    z = np.zeros(s.size, np.float32) if zero_point is None else zero_point.reshape(-1)
    z = z.astype(np.float32)
    x3 = np.ascontiguousarray(x).reshape(outer, ch, inner)
    y = np.empty(x3.shape, out)
    if quantize:
        lo, hi = _int_range(out)
        fn(x3, s, z, np.float32(lo), np.float32(hi), y)
    else:
        fn(x3, s, z, y)
    return y.reshape(x.shape)


def quantize(x, scale, zero_point, out: np.ndarray | np.dtype, saturate=1, precision=None):
    """``saturate(round(x / scale) + zero_point)`` in the quantized type ``out``."""
    out = np.dtype(out)
    if precision is not None:
        q = x.astype(precision) / scale.astype(precision)
    elif scale.dtype == np.float64 or x.dtype == np.float64:
        q = _f32(x) / _f32(scale)
    else:
        q = x.astype(np.float32) / scale.astype(np.float32)
    bounds = _int_range(out)
    if bounds is not None:
        q = np.rint(q)
        if zero_point is not None:
            q = q + zero_point.astype(np.float32)
        return np.asarray(np.clip(q, *bounds)).astype(out)
    if zero_point is not None:
        q = q + zero_point.astype(np.float32)
    if out in _FLOAT8 and saturate:
        fi = ml_dtypes.finfo(out)
        q = np.clip(q, float(fi.min), float(fi.max))
    return np.asarray(q).astype(out)


def _per_tensor(p: np.ndarray) -> bool:
    return p.ndim == 0 or p.shape == (1,)


def check_params(
    shape: tuple[int, ...], scale, zero_point, axis: int, block_size: int, prefix: str
) -> None:
    """onnxruntime's checks of a Q/DQ node's scale and zero point against its input's ``shape``
    (``prefix``: "y" for QuantizeLinear's y_scale and y_zero_point, "x" for DequantizeLinear's):
    a scalar or 1-element scale is per tensor, a 1-D one per axis, one of the input's rank
    blocked (``block_size`` > 0); the zero point, when given, is shaped like the scale."""
    s, z = f"{prefix}_scale", f"{prefix}_zero_point"
    if block_size < 0:
        raise InvalidArgument(f"block_size is {block_size}; it must be 0 or positive.")
    if _per_tensor(scale):
        if zero_point is not None and not _per_tensor(zero_point):
            raise InvalidArgument(
                f"{z} has shape {zero_point.shape} but {s} is a scalar (per-tensor "
                f"quantization): give {z} as a scalar or a 1-element 1-D tensor too."
            )
        if block_size:
            raise InvalidArgument(
                f"block_size is {block_size} but {s} is a scalar: blocked quantization needs a "
                f"{s} of the input's rank; set block_size to 0 for per-tensor quantization."
            )
        return
    rank = len(shape)
    if not rank:
        raise InvalidArgument(
            f"{s} has shape {scale.shape} but the input is a scalar: give {s} as a scalar too."
        )
    if not -rank <= axis < rank:
        raise InvalidArgument(
            f"axis {axis} is out of range for an input of rank {rank} (valid: [{-rank}, "
            f"{rank - 1}]); {s} of shape {scale.shape} is not a scalar, so it is applied along "
            "axis."
        )
    dim = shape[axis]
    if not block_size:
        if scale.shape != (dim,):
            raise InvalidArgument(
                f"{s} has shape {scale.shape}; for per-axis quantization along axis {axis} of "
                f"an input of shape {tuple(shape)} it must be 1-D with {dim} elements (or a "
                "scalar for per-tensor quantization)."
            )
        if zero_point is not None and zero_point.shape != (dim,):
            raise InvalidArgument(
                f"{z} has shape {zero_point.shape}; for per-axis quantization along axis "
                f"{axis} it must be 1-D with {dim} elements, as {s} is."
            )
        return
    want = list(shape)
    want[axis] = -(-dim // block_size)
    if scale.shape != tuple(want):
        raise InvalidArgument(
            f"{s} has shape {scale.shape}; for blocked quantization (block_size {block_size} "
            f"along axis {axis}) of an input of shape {tuple(shape)} it must have shape "
            f"{tuple(want)}."
        )
    if zero_point is not None and zero_point.shape != scale.shape:
        raise InvalidArgument(
            f"{z} has shape {zero_point.shape}; it must have {s}'s shape {scale.shape}."
        )


def quantize_runner(axis=1, block_size=0, saturate=1, precision=None, default_out=np.uint8):
    """The QuantizeLinear kernel ``run(x, y_scale, y_zero_point=None)`` for these attributes
    (``default_out``: the output type without a zero point)."""
    default_out = np.dtype(default_out)
    fast = _quant_jit.warm_quantize() if not block_size and precision is None else None

    def run(x, y_scale, y_zero_point=None):
        check_params(x.shape, y_scale, y_zero_point, axis, block_size, "y")
        out = y_zero_point.dtype if y_zero_point is not None else default_out
        if fast is not None and out in INT8_TYPES:
            y = _per_channel(fast, x, y_scale, y_zero_point, axis, out, quantize=True)
            if y is not None:
                return y
        scale = _expand(y_scale, x.shape, axis, block_size)
        zp = None if y_zero_point is None else _expand(y_zero_point, x.shape, axis, block_size)
        return quantize(x, scale, zp, out, saturate, precision)

    return run


@builder("QuantizeLinear", since=10,
         attributes=("axis", "saturate", "block_size", "output_dtype", "precision"))  # fmt: skip
def quantize_linear(info):
    prec = info.attr("precision", 0)
    precision = np.dtype(helper.tensor_dtype_to_np_dtype(prec)) if prec else None
    if precision is not None and precision.kind == "V":
        precision = np.dtype(np.float32)
    odt = info.attr("output_dtype", 0)
    return quantize_runner(
        info.attr("axis", 1),
        info.attr("block_size", 0),
        info.attr("saturate", 1),
        precision,
        helper.tensor_dtype_to_np_dtype(odt) if odt else np.uint8,
    )


def dequantize(x, scale, zero_point, out: np.dtype) -> np.ndarray:
    """``(x - zero_point) * scale`` in ``out``; int32 ``x - zero_point`` in int32 first (wrapping
    around, as onnxruntime's), which float32 would round above 2**24."""
    if x.dtype in _FLOAT8 or x.dtype.name.startswith("float"):
        zero_point = None  # float zero points are zero by definition
    if x.dtype == np.int32 and zero_point is not None:
        d = np.subtract(x, zero_point, dtype=np.int32).astype(np.float32)
    else:
        d = x.astype(np.float32)
        if zero_point is not None:
            d -= zero_point.astype(np.float32)
    d *= scale.astype(np.float32, copy=False)
    return np.asarray(d).astype(out, copy=False)


def dequantize_runner(axis=1, block_size=0, out=None):
    """The DequantizeLinear kernel ``run(x, x_scale, x_zero_point=None)`` for these attributes
    (``out``: the output type; None: x_scale's)."""
    out = np.dtype(out) if out is not None else None
    fast = _quant_jit.warm_dequantize() if not block_size else None

    def run(x, x_scale, x_zero_point=None):
        check_params(x.shape, x_scale, x_zero_point, axis, block_size, "x")
        if (
            fast is not None
            and (out or x_scale.dtype) == np.float32
            and x.dtype in _DQ_FAST
            and (x_zero_point is None or x.dtype != np.int32)
        ):
            y = _per_channel(fast, x, x_scale, x_zero_point, axis, np.dtype(np.float32))
            if y is not None:
                return y
        scale = _expand(x_scale, x.shape, axis, block_size)
        zp = None if x_zero_point is None else _expand(x_zero_point, x.shape, axis, block_size)
        return dequantize(x, scale, zp, out or x_scale.dtype)

    return run


@builder("DequantizeLinear", since=10, attributes=("axis", "block_size", "output_dtype"))
def dequantize_linear(info):
    odt = info.attr("output_dtype", 0)
    return dequantize_runner(
        info.attr("axis", 1),
        info.attr("block_size", 0),
        helper.tensor_dtype_to_np_dtype(odt) if odt else None,
    )


def dynamic_quantize_linear(x, fast=None):
    """DynamicQuantizeLinear: (uint8 y, float32 scale, uint8 zero point), onnxruntime's range
    (always including 0) and its scale of 1 for an all-zero input. ``fast``:
    :func:`._quant_jit.quantize_flat` (or None: numpy's steps, the same bits). The scalars are
    worked out in float32 numpy scalars and Python's round (half to even, as rint), not
    np.clip and np.rint on scalars: the glue took 9 of a 49K-element call's 24 us."""
    if x.size:
        hi, lo = x.max(), x.min()
        hi = hi if hi > 0 else np.float32(0)  # (a NaN maximum counts as 0, as it did)
        lo = lo if lo < 0 else np.float32(0)
    else:
        hi = lo = np.float32(0)
    # onnxruntime's scale for an all-zero input is 1 (the spec's formula would divide by zero)
    scale = np.float32((hi - lo) / np.float32(255)) if hi != lo else np.float32(1)
    v = float(np.float32(0) - lo / scale)
    zp = np.float32(round(min(max(v, 0.0), 255.0))) if v == v else np.float32(0)
    if fast is not None and x.dtype == np.float32:
        y = np.empty(x.shape, np.uint8)
        fast(
            np.ascontiguousarray(x).reshape(-1), scale, zp, np.float32(0), np.float32(255),
            y.reshape(-1),
        )  # fmt: skip
        return y, np.asarray(scale, np.float32), np.asarray(zp, np.uint8)
    y = np.rint(x / scale)
    y += zp
    y = np.clip(y, 0, 255)
    return np.asarray(y).astype(np.uint8), np.asarray(scale, np.float32), np.asarray(zp, np.uint8)


@builder("DynamicQuantizeLinear", since=11, dtypes=frozenset({np.dtype(np.float32)}))
def _dynamic_quantize_linear(info):
    fast = _quant_jit.warm_quantize_flat()
    return lambda x: dynamic_quantize_linear(x, fast)


def _per_row(p: np.ndarray, m: int) -> np.ndarray:
    """A per-row (length-M vector) parameter of the left operand as a column."""
    return p[:, None] if p.ndim == 1 and p.size == m and m != 1 else p


def _mm_zero_point(zp, n: int, row: bool):
    if zp is None:
        return 0.0
    z = zp.astype(np.float64)
    return _per_row(z, n) if row else z


@kernel("QLinearMatMul", since=10, dtypes={0: INT8_TYPES, 3: INT8_TYPES})
@kernel("QLinearMatMul", since=21, dtypes={0: INT8_TYPES | _FLOAT8, 3: INT8_TYPES | _FLOAT8})
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    m = a.shape[-2] if a.ndim >= 2 else 1
    n = b.shape[-1] if b.ndim >= 2 else 1
    # float64 holds the int8 products and their sums exactly
    af = a.astype(np.float64) - _mm_zero_point(a_zero_point, m, row=True)
    bf = b.astype(np.float64) - _mm_zero_point(b_zero_point, n, row=False)
    acc = _blas.matmul(af, bf)
    sa = _per_row(a_scale.astype(np.float32), m)
    sb = b_scale.astype(np.float32)
    mult = (sa * sb / y_scale.astype(np.float32)).astype(np.float64)
    y = acc * mult
    out = y_zero_point.dtype if y_zero_point is not None else a.dtype
    if out in _FLOAT8:  # float8 targets: no rounding to integers, saturate to the finite range
        if y_zero_point is not None:
            y += y_zero_point.astype(np.float64)
        fi = ml_dtypes.finfo(out)
        return np.clip(y, float(fi.min), float(fi.max)).astype(np.float32).astype(out)
    np.rint(y, out=y)
    if y_zero_point is not None:
        y += y_zero_point.astype(np.float64)
    bounds = _int_range(out)
    return np.clip(y, *bounds).astype(out)


# -- MatMulIntegerToFloat (com.microsoft) ---------------------------------------------------------
#: float32 holds every integer up to 2**24 exactly: a block of the reduction whose sum of
#: |products| stays below it is computed exactly by float32 GEMM, in any order of summation
_EXACT_F32 = float(1 << 24)


def _k_blocks(b: np.ndarray, a_bound: float) -> list[tuple[int, int]]:
    """Ranges of the reduction axis of centred ``b`` (K, N) over which float32 sums of products
    with a left operand bounded by ``a_bound`` are exact."""
    k = b.shape[0]
    limit = _EXACT_F32 / max(a_bound, 1.0)
    if k == 0 or np.abs(b).sum(axis=0, dtype=np.float64).max() < limit:
        return [(0, k)]  # one block (most layers: a 384-deep reduction of 8-bit values)
    col = np.cumsum(np.abs(b.astype(np.float64)), axis=0)
    col = np.concatenate([np.zeros((1, b.shape[1])), col])
    blocks, start = [], 0
    while start < k:
        spans = (col[start + 1 :] - col[start]).max(axis=1)  # spans[i]: block start..start+i+1
        over = np.nonzero(spans >= limit)[0]
        end = start + (int(over[0]) if over.size else k - start)
        end = max(end, start + 1)
        blocks.append((start, end))
        start = end
    return blocks


def integer_matmul_f32(a, a_zp, packed, blocks, bias=None) -> np.ndarray:
    """The exact integer product ``(a - a_zp) @ packed`` (plus the integer ``bias``, broadcast
    onto its rows, where given) rounded once to float32, as the int32 accumulator cast to float
    is (``packed``: the right operand centred, float32, (K, N))."""
    af = a.reshape(-1, a.shape[-1]).astype(np.float32)
    if a_zp is not None:
        af -= np.float32(a_zp.reshape(()))
    if len(blocks) == 1:
        acc = _blas.matmul(af, packed)
        if bias is not None:  # added to the exact sums in float64, then rounded once
            acc = (acc.astype(np.float64) + bias.astype(np.float64)).astype(np.float32)
    else:
        acc = np.zeros((af.shape[0], packed.shape[1]), np.float64)
        for s, e in blocks:
            acc += _blas.matmul(np.ascontiguousarray(af[:, s:e]), packed[s:e])
        if bias is not None:
            acc += bias.astype(np.float64)
        acc = acc.astype(np.float32)
    return acc.reshape(*a.shape[:-1], packed.shape[1])


def pack_integer_b(info, b_index: int, zp_index: int, trans: bool = False):
    """(packed, blocks) for a constant 2-D integer right operand (transposed where ``trans``)
    with a per-tensor or per-column zero point: the centred B in float32 (K, N) and the
    reduction blocks over which float32 sums with an 8-bit left operand stay exact
    (:func:`_k_blocks`); (None, None) otherwise."""
    b = info.constant(b_index)
    b_zp = info.constant(zp_index) if info.has_input(zp_index) else None
    if b is None or b.ndim != 2 or (info.has_input(zp_index) and b_zp is None):
        return None, None
    b = b.T if trans else b
    zp = 0 if b_zp is None else b_zp.astype(np.float32).reshape(-1)
    if np.size(zp) not in (1, b.shape[1]):
        return None, None
    packed = np.ascontiguousarray(b.astype(np.float32) - zp)
    return packed, _k_blocks(packed, 255.0)


def vnni_columns(info, b, zp_index: int):
    """(:mod:`._vnni`, its packed :class:`._vnni.Columns`) of a constant 2-D int8 right operand
    ``b`` (K, N) of a product with a uint8 left operand (input 0) and zero zero points (input
    ``zp_index``), for :func:`._vnni.qgemm_rows`; None where that does not apply, the CPU lacks
    AVX-512 VNNI and AVX2, or compiled kernels are off."""
    zp = info.constant(zp_index) if info.has_input(zp_index) else None
    if (
        b is None
        or b.ndim != 2
        or b.dtype != np.int8
        or info.input_dtype(0) != np.uint8
        or (info.has_input(zp_index) and (zp is None or np.any(zp)))
        or not jit_available()
    ):
        return None
    from . import _vnni

    if not _vnni.available():
        return None
    return _vnni, _vnni.Columns(np.ascontiguousarray(b))


#: multiply-adds from which a VNNI product's tiles (of output channels, columns or rows: the
#: convolutions of .conv too) are shared among the run's threads as compiled pieces
VNNI_SPLIT_WORK = 1 << 20


def _vnni_matmul(info):
    """MatMulIntegerToFloat on AVX-512 VNNI (:mod:`._vnni`): ``run(a, a_zero_point, a_scale,
    b_scale, bias)`` for a uint8 left operand (a per-tensor zero point and scale) and a constant
    2-D int8 right operand with zero zero points; None otherwise (or without VNNI, or with
    compiled kernels off): the float path gives the same values."""
    b = info.constant(1)
    packed = vnni_columns(info, b, 5)
    if packed is None:
        return None
    _vnni, columns = packed
    wsum = columns.wsum
    k, n = b.shape
    no_bias = np.zeros(n, np.float32)
    blocks: dict = {}  # the shared product's argument blocks (_vnni.split_columns)
    # a constant bias in the form the product adds, once (the same array each run: the
    # shared product's kept argument block names it)
    const_bias = info.constant(6)
    const_add = (
        None
        if const_bias is None or const_bias.size not in (1, n)
        else np.ascontiguousarray(np.broadcast_to(const_bias, (n,)), np.float32)
    )
    if _threads.will_split(info.provider):
        _vnni.piece_address(np.float32)  # loaded now, not in the first run

    def run(a, a_zero_point, a_scale, b_scale, bias):
        rows = a.reshape(-1, k)
        p = rows.shape[0]
        aw = _vnni.left_words(rows)
        za = np.int32(0 if a_zero_point is None else a_zero_point.reshape(()))
        scale = np.ascontiguousarray(
            np.broadcast_to(a_scale.astype(np.float32) * b_scale.astype(np.float32), (n,)),
            np.float32,
        )
        if bias is None:
            add = no_bias
        elif bias is const_bias and const_add is not None:
            add = const_add
        else:
            add = np.ascontiguousarray(np.broadcast_to(bias, (n,)), np.float32)
        y = np.empty((p, n), np.float32)
        wq, words = columns.for_rows(p)
        if not (
            p * k * n >= VNNI_SPLIT_WORK
            and _vnni.split_columns(aw, wq, wsum, za, scale, add, y, words, blocks)
        ):
            _vnni.qgemm_rows.get()(aw, wq, wsum, za, scale, add, y, 0, n, words)
        return y.reshape(*a.shape[:-1], n)

    return run


@builder("MatMulIntegerToFloat", domain="com.microsoft", dtypes={0: INT8_TYPES, 1: INT8_TYPES})
def matmul_integer_to_float(info):
    """``float(A @ B as int32) * (a_scale * b_scale) + bias``, as onnxruntime's contrib op; the
    integer product exact through float32 GEMM in blocks of the reduction (B constant, 2-D,
    per-tensor or per-column zero point) or float64 GEMM otherwise."""
    packed, blocks = pack_integer_b(info, 1, 5)
    vnni = _vnni_matmul(info)

    def run(a, b, a_scale, b_scale, a_zero_point=None, b_zero_point=None, bias=None):
        if (
            vnni is not None
            and a.dtype == np.uint8
            and a.ndim >= 2
            and (a_zero_point is None or a_zero_point.size == 1)
            and a_scale.size == 1
        ):
            return vnni(a, a_zero_point, a_scale, b_scale, bias)
        if packed is not None and (a_zero_point is None or a_zero_point.size == 1):
            acc = integer_matmul_f32(a, a_zero_point, packed, blocks)
        else:
            af = a.astype(np.float64) - _mm_zero_point(a_zero_point, a.shape[-2], row=True)
            bf = b.astype(np.float64) - _mm_zero_point(b_zero_point, b.shape[-1], row=False)
            acc = _blas.matmul(af, bf).astype(np.float32)
        y = acc * (a_scale.astype(np.float32) * b_scale.astype(np.float32))
        if bias is not None:
            y += bias
        return y

    return run
