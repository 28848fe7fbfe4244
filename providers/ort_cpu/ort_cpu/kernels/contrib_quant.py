"""Quantized com.microsoft contrib kernels: QuantizeLinear, DequantizeLinear, QGemm,
QLinearSoftmax, QLinearAveragePool, MatMulNBits, DynamicQuantizeMatMul and QAttention, with
onnxruntime's semantics (its ContribOperators documentation) and its rounding.

Integer products are exact (float64 GEMM holds every sum of 8-bit products; float32 GEMM in
blocks proven exact for a constant B), converted to float32 once, as onnxruntime's int32
accumulator is; requantization is onnxruntime's: a float32 multiplier, round half to even, the
zero point, saturation.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from ort_core.provider import output_trimmer

from .. import _threads
from . import _blas, _quant_jit
from ._registry import builder
from .contrib import (
    QUANT_SPLIT,
    _attend,
    _causal,
    _heads,
    _key_mask,
    _quant_pieces,
    _warm_pieces,
    requant,
)
from .pool import PoolAttrs, _check_pool
from .quantization import (
    VNNI_SPLIT_WORK,
    dequantize_runner,
    dynamic_quantize_linear,
    integer_matmul_f32,
    pack_integer_b,
    quantize_runner,
    vnni_columns,
)

MS = "com.microsoft"
INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))
_F32 = frozenset({np.dtype(np.float32)})


def _scalar(p, default=0.0) -> np.float32:
    return np.float32(default if p is None else np.asarray(p).reshape(-1)[0])


# -- QuantizeLinear, DequantizeLinear --------------------------------------------------------------
#: the float and quantized types of onnxruntime's contrib schemas (its CPU kernels take float32;
#: it runs float16 through float32 casts, which is what these kernels compute)
_QDQ_FLOAT = frozenset(map(np.dtype, (np.float32, np.float16)))
_Q_TYPES = INT8_TYPES | frozenset(
    map(np.dtype, (np.int16, np.uint16, ml_dtypes.int4, ml_dtypes.uint4))
)
_DQ_TYPES = _Q_TYPES | {np.dtype(np.int32)}


def _same_type(a: int, b: int, what: str):
    """A check that inputs ``a`` and ``b`` (bound to one type parameter) have the same type."""

    def check(info) -> str | None:
        ta = info.input_dtype(a) if info.has_input(a) else None
        tb = info.input_dtype(b) if info.has_input(b) else None
        if ta is not None and tb is not None and ta != tb:
            return (
                f"{info.node.op_type} (com.microsoft): {what} must have the same type; they "
                f"are {ta} and {tb}"
            )
        return None

    return check


@builder("QuantizeLinear", domain=MS, dtypes={0: _QDQ_FLOAT, 1: _QDQ_FLOAT, 2: _Q_TYPES},
         attributes=("axis",), check=_same_type(0, 1, "x and y_scale"))  # fmt: skip
def ms_quantize_linear(info):
    """onnxruntime's contrib QuantizeLinear: the ONNX kernel with only ``axis`` (default 1);
    integer outputs, uint8 without a zero point."""
    return quantize_runner(info.attr("axis", 1))


@builder("DequantizeLinear", domain=MS, dtypes={0: _DQ_TYPES, 1: _QDQ_FLOAT, 2: _DQ_TYPES},
         attributes=("axis",), check=_same_type(0, 2, "x and x_zero_point"))  # fmt: skip
def ms_dequantize_linear(info):
    """onnxruntime's contrib DequantizeLinear: the ONNX kernel with only ``axis`` (default 1);
    the output has x_scale's type."""
    return dequantize_runner(info.attr("axis", 1))


# -- QGemm -----------------------------------------------------------------------------------------
def _check_qgemm(info) -> str | None:
    if info.has_input(7) != info.has_input(8):
        return (
            "QGemm: give both y_scale and y_zero_point (quantized output) or neither (float32 "
            "output)"
        )
    return None


def _centred_b(b: np.ndarray, b_zp, trans_b: bool) -> np.ndarray:
    """QGemm's B as (K, N) float64 less its zero points (per tensor or per column)."""
    bm = b.T if trans_b else b
    bz = 0.0 if b_zp is None else np.asarray(b_zp).astype(np.float64).reshape(-1)
    return bm.astype(np.float64) - bz


def _vnni_product(info, b, trans_a: bool, trans_b: bool, alpha: np.float32):
    """``run(a, a_zero_point, c, a_scale, b_scale, y_scale)`` -> (M, N) float32: QGemm's int32
    sums plus its int32 bias ``c`` (or none), rounded once to float32 as onnxruntime converts
    its accumulator, times the column scales ``alpha * a_scale * b_scale`` (over ``y_scale``
    where there is one: the value to requantize), on AVX-512 VNNI (:func:`._vnni.qgemm_rows`:
    the bias folded into its zero-point correction, the scales into its multipliers, a -0.0
    added, which changes nothing), for uint8 A (not transposed) and constant 2-D int8 B with
    zero zero points (:func:`.quantization.vnni_columns`); None otherwise (the float64 product
    gives the same values). MobileNetV2-QDQ's classifier (1,000 x 1,280 weights) took 0.5 ms
    more in float64. The correction and the scales are worked out once for the arrays a run
    passes (constants: the same arrays each run): with them worked out per run, ten numpy calls
    on 1,000 columns took 60 us of the 80 us of that classifier's run."""
    if b is None or trans_a:
        return None
    packed = vnni_columns(info, b.T if trans_b else b, 5)
    if packed is None:
        return None
    _vnni, packed_b = packed
    wsum = packed_b.wsum
    k, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    minus_zero = np.full(n, -0.0, np.float32)
    derived: dict = {}  # by the identities of the arrays below: (those arrays, shift, scales)
    blocks: dict = {}  # the shared product's argument blocks (_vnni.split_columns)

    def columns(a_zero_point, c, a_scale, b_scale, y_scale):
        # float32(sum - shift) with shift = a_zp * sum(B's column) - c: the sum's zero-point
        # correction and the bias in one int32, so that the result is rounded once
        shift = np.int32(_scalar(a_zero_point)) * wsum
        if c is not None:
            shift = shift - np.broadcast_to(np.asarray(c, np.int32).reshape(-1), (n,))
        scale = alpha * _scalar(a_scale) * b_scale.astype(np.float32).reshape(-1)  # this order
        if y_scale is not None:
            scale = scale / np.float32(np.asarray(y_scale).reshape(()))
        scale = np.ascontiguousarray(np.broadcast_to(scale, (n,)), np.float32)
        return np.ascontiguousarray(shift, np.int32), scale

    def run(a, a_zero_point, c, a_scale, b_scale, y_scale):
        if a.shape[1] != k:
            raise ValueError(f"QGemm: A has {a.shape[1]} columns, B {k} rows")
        given = (a_zero_point, c, a_scale, b_scale, y_scale)
        key = tuple(map(id, given))
        hit = derived.get(key)
        if hit is None or any(x is not y for x, y in zip(hit[0], given, strict=True)):
            if len(derived) >= 8:  # (arrays computed in the run: new ones every run)
                derived.clear()
            hit = derived[key] = (given, *columns(*given))
        _, shift, scale = hit
        p = a.shape[0]
        y = np.empty((p, n), np.float32)
        aw = _vnni.left_words(np.ascontiguousarray(a))
        one = np.int32(1)
        wq, words = packed_b.for_rows(p)
        if not (
            p * k * n >= VNNI_SPLIT_WORK
            and _vnni.split_columns(aw, wq, shift, one, scale, minus_zero, y, words, blocks)
        ):
            _vnni.qgemm_rows.get()(aw, wq, shift, one, scale, minus_zero, y, 0, n, words)
        return y

    return run


@builder("QGemm", domain=MS, dtypes={0: INT8_TYPES, 3: INT8_TYPES}, check=_check_qgemm)
def qgemm(info):
    """``(A' - a_zp)(B' - b_zp) + C`` on the int32 accumulator, scaled by ``alpha * a_scale *
    b_scale`` (float32, in that order) to a float32 output (no y_scale) or requantized onto
    (y_scale, y_zp); B's scale and zero point per tensor or per column."""
    alpha = np.float32(info.attr("alpha", 1.0))
    trans_a, trans_b = bool(info.attr("transA", 0)), bool(info.attr("transB", 0))
    b_const = info.constant(3)
    vnni = _vnni_product(info, b_const, trans_a, trans_b, alpha)
    # constant B less its zero points in float32, with the blocks of K over which float32 sums
    # are exact (integer_matmul_f32), once; (None, None) for B or its zero point given at run
    packed = pack_integer_b(info, 3, 5, trans_b) if vnni is None else (None, None)
    n_out = None if b_const is None else b_const.shape[0 if trans_b else 1]

    def run(a, a_scale, a_zp, b, b_scale, b_zp, c=None, y_scale=None, y_zp=None):
        if (
            vnni is not None
            and a.dtype == np.uint8
            and a.ndim == 2
            and (c is None or c.size == 1 or (c.shape[-1] == n_out and c.size == n_out))
        ):
            y = vnni(a, a_zp, c, a_scale, b_scale, y_scale)  # scaled (over y_scale)
            return y if y_scale is None else requant(y, np.float32(1), y_zp, a.dtype)
        if packed[0] is not None:  # the exact sums (and bias), rounded once
            acc = integer_matmul_f32(a.T if trans_a else a, a_zp, *packed, c)
        else:
            af = a.astype(np.float64) - float(_scalar(a_zp))
            acc = _blas.matmul(
                af.T if trans_a else af, _centred_b(b, b_zp, trans_b)
            )  # exact: every partial sum is an integer < 2**53
            if c is not None:
                acc += c.astype(np.float64)
            acc = acc.astype(np.float32)  # the int32 accumulator as float
        scale = alpha * _scalar(a_scale) * b_scale.astype(np.float32).reshape(-1)  # this order
        if y_scale is None:
            return (acc * scale).astype(np.float32)
        mult = scale / np.float32(np.asarray(y_scale).reshape(()))
        return requant(acc * mult, np.float32(1), y_zp, a.dtype)

    return run


# -- QLinearSoftmax --------------------------------------------------------------------------------
_F32_MAX = float(np.finfo(np.float32).max)


def _softmax_table(x_scale: np.float32, d: int) -> np.ndarray:
    """float32 ``exp((v - 255) * x_scale)`` for the 256 distances ``255 - v`` to the row maximum,
    each raised by the same factor: as much headroom as a float32 sum of ``d`` terms allows,
    less 5 (in the exponent), as onnxruntime's table is."""
    shift = max(0.0, np.log(_F32_MAX / d) - 5.0) / float(x_scale)
    v = np.arange(256, dtype=np.float64)
    return np.exp((v - 255.0 + shift) * float(x_scale)).astype(np.float32)


def _check_softmax(info) -> str | None:
    if info.attr("opset") is None:
        return "QLinearSoftmax: the attribute opset (the Softmax opset it replaces) is required"
    return None


@builder(
    "QLinearSoftmax",
    domain=MS,
    dtypes={0: INT8_TYPES},
    attributes=("axis", "opset"),
    check=_check_softmax,
)
def qlinear_softmax(info):
    """Softmax of the dequantized input as onnxruntime computes it: a float32 table of exp over
    the 256 possible distances to the row maximum, summed in order in float32, each term times
    ``floor(1 / y_scale)`` divided by the sum, rounded half to even, plus the zero point,
    saturated (a product past float32's range too).
    ``opset`` < 13 softmaxes the input flattened to 2-D at ``axis``, later opsets along
    ``axis``."""
    opset = int(info.attr("opset", 13))
    axis = int(info.attr("axis", -1 if opset >= 13 else 1))
    fast = _quant_jit.warm_qsoftmax()
    if fast is not None:
        _warm_pieces(info, info.input_dtype(0))

    def run(x, x_scale, x_zp, y_scale, y_zp=None):
        if x.size == 0:
            return x.copy()
        ax = axis % max(x.ndim, 1)
        if fast is not None:  # the same steps compiled, on a 3-D view around the axis
            if opset < 13:
                view = (int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:])), 1)
            else:
                view = (int(np.prod(x.shape[:ax])), x.shape[ax], int(np.prod(x.shape[ax + 1 :])))
            lim = np.iinfo(x.dtype)
            y = np.empty(x.shape, x.dtype)
            zp = np.float32(0 if y_zp is None else _scalar(y_zp))
            args = (
                np.ascontiguousarray(x).reshape(view), _softmax_table(_scalar(x_scale), view[1]),
                np.floor(np.float32(1) / _scalar(y_scale)), zp, np.float32(lim.min),
                np.float32(lim.max), y.reshape(view),
            )  # fmt: skip
            if x.size >= QUANT_SPLIT and _threads.spinning() and _quant_pieces().softmax(*args):
                return y
            fast(*args)
            return y
        if opset < 13:
            rows = x.reshape(int(np.prod(x.shape[:ax])), -1)
        else:
            rows = np.moveaxis(x, ax, -1)
            moved = rows.shape
            rows = rows.reshape(-1, x.shape[ax])
        table = _softmax_table(_scalar(x_scale), rows.shape[1])
        xi = rows.astype(np.int64)
        e = table[xi - xi.max(axis=1, keepdims=True) + 255]
        total = np.add.accumulate(e, axis=1, dtype=np.float32)[:, -1:]  # in order, in float32
        with np.errstate(over="ignore"):  # a product past float32's range saturates, as there
            q = np.rint(e * np.floor(np.float32(1) / _scalar(y_scale)) / total) + _scalar(y_zp)
        lim = np.iinfo(x.dtype)
        y = np.clip(q, lim.min, lim.max).astype(x.dtype)
        if opset < 13:
            return y.reshape(x.shape)
        return np.moveaxis(y.reshape(moved), -1, ax)

    return run


# -- QLinearAveragePool ----------------------------------------------------------------------------
@builder(
    "QLinearAveragePool",
    domain=MS,
    dtypes={0: INT8_TYPES},
    check=_check_pool,
    attributes=(
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "kernel_shape",
        "pads",
        "strides",
        "channels_last",
    ),
)
def qlinear_average_pool(info):
    """AveragePool of the float32 dequantized input (NCHW, or NHWC with channels_last) as
    onnxruntime computes it: each window summed in float32 in row-major order of its cells,
    divided by its count of input cells (count_include_pad: by the whole kernel, also where a
    ceil_mode window overhangs the padding), then ``rint(y / y_scale + y_zero_point)``
    saturated (the zero point added before rounding)."""
    channels_last = bool(info.attr("channels_last", 0))
    include_pad = bool(info.attr("count_include_pad", 0))
    attrs = PoolAttrs(info)

    def run(x, x_scale, x_zp, y_scale, y_zp=None):
        f = (x.astype(np.int32) - int(_scalar(x_zp))).astype(np.float32) * _scalar(x_scale)
        if channels_last:
            f = np.moveaxis(f, -1, 1)
        size = f.shape[2:]
        out, begin, _, _ = attrs.geometry(size)
        k, st = attrs.kernel, attrs.strides
        after = [
            max(0, (o - 1) * s + kk - b - n) for o, s, kk, b, n in zip(out, st, k, begin, size)
        ]
        fp = np.pad(f, [(0, 0), (0, 0), *zip(begin, after)])  # zeros: adding them is exact
        total = np.zeros(f.shape[:2] + tuple(out), np.float32)
        for offs in np.ndindex(*k):  # the window's cells in row-major order, as onnxruntime
            total += fp[
                (..., *(slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offs, out, st)))
            ]
        if include_pad:
            count = np.float32(np.prod(k))
        else:
            count = np.ones((), np.float32)
            for n, s, kk, b, m in zip(out, st, k, begin, size):
                start = np.arange(n) * s - b
                c = np.minimum(start + kk, m) - np.maximum(start, 0)
                count = count[..., None] * c.astype(np.float32)
        y = total / count
        if channels_last:
            y = np.moveaxis(y, 1, -1)
        lim = np.iinfo(x.dtype)
        q = np.rint(y / _scalar(y_scale) + _scalar(y_zp))
        return np.clip(q, lim.min, lim.max).astype(x.dtype)

    return run


# -- MatMulNBits -----------------------------------------------------------------------------------
def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The ``count`` unsigned ``bits``-bit values of each row of bytes ``packed`` (..., n),
    least significant bits first."""
    flat = np.unpackbits(packed.astype(np.uint8), axis=-1, bitorder="little")
    groups = flat[..., : (flat.shape[-1] // bits) * bits].reshape(*packed.shape[:-1], -1, bits)
    weights = (1 << np.arange(bits)).astype(np.uint8)
    return (groups * weights).sum(axis=-1, dtype=np.uint8)[..., :count]


def _check_nbits(info) -> str | None:
    bits = int(info.attr("bits", 4))
    block = int(info.attr("block_size", 0))
    if bits not in (2, 4, 8):
        # 3, 5, 6 and 7 bits are stored as separate 1-, 2- and 4-bit planes per block, a layout
        # onnxruntime does not run either: nothing to check such a kernel against
        return f"MatMulNBits: bits={bits} is not supported (2, 4 or 8); requantize the weights"
    if block < 16 or block & (block - 1):
        return f"MatMulNBits: block_size={block} must be a power of 2 and at least 16"
    if info.attr("K") is None or info.attr("N") is None:
        return "MatMulNBits: the attributes K and N are required"
    return None


def dequantize_nbits(b, scales, zero_points, g_idx, k: int, n: int, bits: int, block: int):
    """The float32 weight (N, K) of MatMulNBits' packed blocks."""
    n_blocks = (k + block - 1) // block
    q = unpack_bits(b.reshape(n, n_blocks, -1), bits, block).astype(np.float32)
    s = scales.astype(np.float32).reshape(n, n_blocks)
    if zero_points is None:
        zp = np.full((n, n_blocks), float(1 << (bits - 1)), np.float32)
    elif zero_points.dtype == np.uint8:
        zp = unpack_bits(zero_points.reshape(n, -1), bits, n_blocks).astype(np.float32)
    else:
        zp = zero_points.astype(np.float32).reshape(n, n_blocks)
    if g_idx is not None:  # per-K block index (act-order quantization)
        gi = g_idx.astype(np.int64).reshape(-1)[:k]
        qk = q.reshape(n, -1)[:, :k]
        return ((qk - zp[:, gi]) * s[:, gi]).astype(np.float32)
    w = (q - zp[:, :, None]) * s[:, :, None]
    return w.reshape(n, -1)[:, :k]


@builder(
    "MatMulNBits",
    domain=MS,
    dtypes={0: _F32},
    check=_check_nbits,
    attributes=("K", "N", "bits", "block_size", "accuracy_level"),
)
def matmul_nbits(info):
    """``A @ W.T + bias`` with W (N, K) dequantized from ``bits``-bit blocks: ``(q - zp) *
    scale`` per block, zero point 2**(bits-1) by default; W is dequantized once at session
    creation when its inputs are constant, and the product is a float32 GEMM."""
    k, n = int(info.attr("K")), int(info.attr("N"))
    bits, block = int(info.attr("bits", 4)), int(info.attr("block_size"))
    const_w = None
    idx = [i for i in (1, 2, 3, 4) if info.has_input(i)]
    if all(info.constant(i) is not None for i in idx):
        args = [info.constant(i) if info.has_input(i) else None for i in (1, 2, 3, 4)]
        const_w = np.ascontiguousarray(dequantize_nbits(*args, k, n, bits, block).T)

    def run(a, b, scales, zero_points=None, g_idx=None, bias=None):
        wt = const_w
        if wt is None:
            wt = dequantize_nbits(b, scales, zero_points, g_idx, k, n, bits, block).T
        y = _blas.matmul(a.astype(np.float32), wt)
        if bias is not None:
            y += bias.astype(np.float32)
        return y

    return run


# -- DynamicQuantizeMatMul -------------------------------------------------------------------------
@builder("DynamicQuantizeMatMul", domain=MS, dtypes={0: _F32, 1: INT8_TYPES})
def dynamic_quantize_matmul(info):
    """A quantized to uint8 as DynamicQuantizeLinear does, multiplied by the quantized B as
    integers (exact: float32 GEMM in blocks proven exact for a constant 2-D B, float64 otherwise),
    scaled by ``a_scale * b_scale`` (per tensor or per column), plus bias."""
    packed, blocks = pack_integer_b(info, 1, 3)

    def run(a, b, b_scale, b_zero_point=None, bias=None):
        aq, a_scale, a_zp = dynamic_quantize_linear(a)
        if packed is not None:
            acc = integer_matmul_f32(aq, a_zp, packed, blocks)
        else:
            af = aq.astype(np.float64) - float(a_zp)
            bz = 0.0 if b_zero_point is None else b_zero_point.astype(np.float64).reshape(-1)
            acc = _blas.matmul(af, b.astype(np.float64) - bz).astype(np.float32)
        y = acc * (a_scale * b_scale.astype(np.float32).reshape(-1))
        if bias is not None:
            y += bias.astype(np.float32)
        return y

    return run


# -- QAttention ------------------------------------------------------------------------------------
def _check_qattention(info) -> str | None:
    for name in ("do_rotary", "past_present_share_buffer"):
        if info.attr(name, 0):
            return f"QAttention: {name}=1 is not supported; export the model with {name}=0"
    if info.attr("num_heads") is None:
        return "QAttention: the attribute num_heads is required"
    return None


@builder(
    "QAttention",
    domain=MS,
    dtypes={0: INT8_TYPES, 1: INT8_TYPES},
    check=_check_qattention,
    attributes=(
        "num_heads",
        "unidirectional",
        "do_rotary",
        "past_present_share_buffer",
        "mask_filter_value",
        "scale",
    ),
)
def qattention(info):
    """Attention (com.microsoft) whose input projection is quantized: QKV = the exact integer
    product ``(input - input_zp) @ (weight - weight_zp)`` scaled by ``input_scale *
    weight_scale`` (per tensor or per column) plus bias, then multi-head scaled dot-product
    attention in float32 as the float Attention kernel; past/present as (2, B, N, T, H)."""
    n = int(info.attr("num_heads"))
    unidirectional = bool(info.attr("unidirectional", 0))
    filter_value = float(info.attr("mask_filter_value", -10000.0))
    scale_attr = info.attr("scale")
    outs = info.node.outputs
    want_present = len(outs) > 1 and bool(outs[1])

    outputs = output_trimmer(info.node, info.opset)

    def run(x, weight, bias, input_scale, weight_scale, mask_index=None, input_zp=None,
            weight_zp=None, past=None):  # fmt: skip
        b, s, d = x.shape
        xf = x.reshape(b * s, d).astype(np.float64) - float(_scalar(input_zp))
        wz = 0.0 if weight_zp is None else weight_zp.astype(np.float64).reshape(-1)
        acc = _blas.matmul(xf, weight.astype(np.float64) - wz).astype(np.float32)  # exact
        qkv = acc * (_scalar(input_scale) * weight_scale.astype(np.float32).reshape(-1))
        qkv += bias.astype(np.float32)
        hidden = qkv.shape[-1] // 3
        head = hidden // n
        scale = float(scale_attr) if scale_attr else 1 / math.sqrt(head)
        qkv = qkv.reshape(b, s, 3 * hidden)
        q = _heads(qkv[..., :hidden], n)
        k, v = _heads(qkv[..., hidden : 2 * hidden], n), _heads(qkv[..., 2 * hidden :], n)
        if past is not None and past.size:
            k = np.concatenate([past[0].astype(np.float32), k], axis=2)
            v = np.concatenate([past[1].astype(np.float32), v], axis=2)
        total = k.shape[2]
        masks = [_key_mask(mask_index, b, s, total, total - s, filter_value, np.float32)]
        if unidirectional:
            masks.append(_causal(s, total, np.float32))
        out = _attend(q, k, v, scale, masks)
        present = np.stack([k, v]) if want_present else None
        return outputs((out, present))

    return run
