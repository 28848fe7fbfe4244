"""Elementwise kernels: unary math, activations, broadcasting binary ops, variadic ops, Clip,
Cast and CastLike (Where is ort_array's shared kernel: as fast as numpy's where, 1.8 us on 64
elements and 1.1 ms on 256K, measured against the kernel it replaced).

ml_dtypes floats (bfloat16, float8) are computed in float32 and cast back; numpy floats are
computed in their own precision.
"""

from __future__ import annotations

import functools
import math

import ml_dtypes
import numpy as np

from ort_core import _onnx
from ort_core._onnx import helper
from ort_core.provider import (
    FLOAT_TYPES,
    INT_TYPES,
    NUMERIC_TYPES,
    SIGNED_TYPES,
    fp_errors_ignored,
)

from .. import _threads
from .._jit import available as jit_available
from . import _elementwise_jit
from ._registry import builder, kernel
from ._rows import LONG_ROW, ranked
from ._rows import binary as broadcast_binary
from .shape_ops import choice_check

TensorProto = _onnx.onnx.TensorProto

BOOL = frozenset({np.dtype(np.bool_)})
STRING = frozenset({np.dtype(object)})
NUM_BOOL = NUMERIC_TYPES | BOOL
NUM_BOOL_STR = NUM_BOOL | STRING


def _exotic(dt: np.dtype) -> bool:
    """True for ml_dtypes element types (bfloat16, float8, int4...), which numpy handles slowly."""
    return dt.kind == "V"


def _arr(r, dtype: np.dtype) -> np.ndarray:
    """``r`` as an array of ``dtype`` (numpy scalars from 0-d operations become 0-d arrays)."""
    if type(r) is np.ndarray and r.dtype == dtype:  # the common case, on every kernel call
        return r
    return np.asarray(r).astype(dtype, copy=False)


def widened(fn):
    """Run ``fn`` in float32 for ml_dtypes inputs and cast the result back to the input type."""

    @functools.wraps(fn)
    def run(x, *args, **kwargs):
        if x.ndim and x.dtype.kind != "V":  # plain numpy types: nothing to widen
            return _arr(fn(x, *args, **kwargs), x.dtype)
        xc = x.reshape(1) if x.ndim == 0 else x  # 0-d ufunc results are scalars: no out=
        if _exotic(x.dtype):
            args = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
            xc = xc.astype(np.float32)
        return _arr(fn(xc, *args, **kwargs), x.dtype).reshape(x.shape)

    return run


# -- erf without scipy -------------------------------------------------------------------------
_SQRT_PI_2 = 2.0 / math.sqrt(math.pi)
# Maclaurin series of erf(x) / x in powers of x^2, used for |x| < 0.5 (truncation error < 1e-11).
_ERF_SERIES = [_SQRT_PI_2 * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(9)]
# Chebyshev fit of erfc (Numerical Recipes, erfcc): fractional error below 1.2e-7 everywhere.
_ERFC_COEFS = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)  # fmt: skip
_erf_exact = np.frompyfunc(math.erf, 1, 1)


# Elementwise chains of many ufunc passes run over blocks of this many elements, so that their
# temporaries stay in cache and are allocated once per call (4x faster than whole-array passes).
CHUNK = 32768
#: elements up to which the blocked kernels run as plain whole-tensor numpy calls
TINY = 256
_ONE = {"f": np.float32(1), "d": np.float64(1)}
_F32_F64 = (np.dtype(np.float32), np.dtype(np.float64))
SMALL = 200  # below this many elements, math.erf per element is faster than the ufunc chain
_ERFC_F32 = tuple(np.float32(c) for c in _ERFC_COEFS)
# GELU as x * sigmoid(h(x)) with h = logit Phi, exactly x * Phi(x); h is odd, and h(x) / x is
# a degree-7 polynomial Q in s = min(x^2, 5.5^2), here with its sign flipped so that
# gelu = x / (1 + exp(x * -Q(s))). Q is a weighted minimax fit on [0, 5.5] (iteratively
# reweighted least squares on 40,000 Chebyshev points, float64), the error in h weighted by
# max(Phi (1 - Phi), 1e-4): Phi's error is Phi (1 - Phi) times h's. Measured in float32 on a
# 2M-point grid over [-12, 12] against x * Phi(x) in float64: absolute error below 1.6e-7 |x|,
# relative error below 8e-5 where |gelu| > 1e-3 and 5.1e-4 where |gelu| > 1e-6. Past 5.5 the
# clamped Q makes h linear in x: Phi is then within 1e-8 of 0 or 1.
_GELU_Q = tuple(
    np.float32(c)
    for c in (
        -1.5957703590393066, -0.07266325503587723, 6.117839802755043e-05,
        0.00011274026473984122, -8.439295925199986e-06, 3.222396287583251e-07,
        -6.4517227116311915e-09, 5.316710960379112e-11,
    )
)  # fmt: skip
_GELU_S_MAX = 5.5**2


def _in_blocks(n: int, m: int, steps: float, scratch: int, dtype, body, **errstate) -> None:
    """``body(start, k, *buffers)`` over the blocks [start, start + k) of ``m`` elements of a
    flat length ``n``, each with ``scratch`` buffers of ``k`` elements of ``dtype`` that stay in
    cache. The blocks are shared among the run's threads when the work (``steps`` per element)
    pays for it; each piece has its own buffers and numpy ``errstate`` (it is per thread). One
    block below the parallel threshold is one call, with no pieces or closures: a tiny tensor
    (a scikit-learn model's row, an RNN's state) paid 15 us for the machinery, 4 for the work."""
    if n <= m and n * steps < _threads.MIN_PARALLEL_WORK:
        bufs = [np.empty(n, dtype) for _ in range(scratch)]
        if errstate:
            with np.errstate(**errstate):
                body(0, n, *bufs)
        else:
            body(0, n, *bufs)
        return

    def piece(b0: int, b1: int) -> None:
        bufs = [np.empty(m, dtype) for _ in range(scratch)]
        with np.errstate(**errstate):
            for st in range(b0 * m, min(n, b1 * m), m):
                k = min(m, n - st)
                body(st, k, *(b[:k] for b in bufs))

    _threads.split(-(-n // m), piece, n * steps)


def _erf_block(xf, out, z, t, x2) -> None:
    """erf of the float32 block ``xf`` into ``out`` (z, t, x2: scratch blocks of its size)."""
    np.clip(xf, -0.5, 0.5, out=z)  # the series' domain (keeps it finite elsewhere)
    np.multiply(z, z, out=x2)
    np.multiply(x2, np.float32(_ERF_SERIES[-1]), out=t)
    t += np.float32(_ERF_SERIES[-2])
    for c in _ERF_SERIES[-3::-1]:
        t *= x2
        t += np.float32(c)
    t *= z  # the series, valid where |x| < 0.5
    np.abs(xf, out=z)
    small = z < 0.5
    np.multiply(z, np.float32(0.5), out=x2)
    x2 += 1
    np.reciprocal(x2, out=x2)  # erfcc's variable
    c = _ERFC_F32
    np.multiply(x2, c[9], out=out)
    out += c[8]
    for k in range(7, -1, -1):
        out *= x2
        out += c[k]
    np.multiply(z, z, out=z)
    out -= z
    np.exp(out, out=out)
    out *= x2  # erfc(|x|)
    np.subtract(1, out, out=out)
    np.copysign(out, xf, out=out)
    # select without a mask operation: multiplying by exactly 1 or 0 and adding is exact
    t *= small
    out *= ~small
    out += t


def erf(x: np.ndarray) -> np.ndarray:
    """erf in x's float precision: exact (math.erf) for float64, ~1e-7 relative otherwise."""
    if x.dtype == np.float64 or x.size <= SMALL:
        y = np.asarray(_erf_exact(x.astype(np.float64, copy=False)), np.float64)
        return y.astype(x.dtype, copy=False)
    xf = x.astype(np.float32, copy=False).reshape(-1)
    n = xf.size
    out = np.empty(n, np.float32)
    m = max(min(CHUNK, n), 1)

    def block(s: int, k: int, z, t, x2) -> None:
        _erf_block(xf[s : s + k], out[s : s + k], z, t, x2)

    _in_blocks(n, m, _GELU_STEPS, 3, np.float32, block)  # 32 passes: as gelu_erf
    return out.reshape(x.shape).astype(x.dtype, copy=False)


def gelu_erf(x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Exact (erf) GELU of ``x + bias`` in float32 (float64 input: float64, through math.erf):
    ``x / (1 + exp(-h(x)))`` with ``h = logit Phi`` from a fitted polynomial (``_GELU_Q``),
    22 passes over each block where erfc's fit took 32 (1.4x faster on ViT's activations);
    absolute error below 1.6e-7 * |x|."""
    if bias is not None and (x.ndim == 0 or bias.ndim != 1 or bias.shape[0] != x.shape[-1]):
        x, bias = x + bias, None
    if x.dtype == np.float64 or x.size <= SMALL:
        xb = x.astype(np.float64) if bias is None else x.astype(np.float64) + bias
        with np.errstate(invalid="ignore"):
            y = xb * 0.5 * (1 + erf(xb * (1 / math.sqrt(2))))
        y = np.where(np.isneginf(xb), 0.0, y)  # the limit, as the blocks below give
        return y if x.dtype == np.float64 else y.astype(np.float32)
    compiled = _compiled_gelu() if x.dtype == np.float32 and x.flags.c_contiguous else None
    if compiled is not None:
        b = None if bias is None else np.ascontiguousarray(bias, np.float32)
        rows = x.reshape(-1, x.shape[-1] if x.ndim else 1)
        return compiled.gelu(rows, b, _GELU_Q_ARRAY, _GELU_S_MAX).reshape(x.shape)
    xf = x.astype(np.float32, copy=False).reshape(-1)
    n = xf.size
    out = np.empty(n, np.float32)
    m = max(min(CHUNK, n), 1)
    if bias is not None:
        bf, nb = bias.astype(np.float32, copy=False), bias.shape[0]
        m = max(m // nb, 1) * nb  # whole rows, for the bias to broadcast
    q, f32 = _GELU_Q, np.dtype(np.float32)
    lo, hi = _filled(f32, -1e30, m), _filled(f32, _GELU_S_MAX, m)  # arrays: see _filled

    def block(st: int, k: int, uk, sk, pk) -> None:
        xs = xf[st : st + k]
        if bias is not None:
            np.add(xs.reshape(-1, nb), bf, out=uk.reshape(-1, nb))
            xs = uk
        np.maximum(xs, lo[:k], out=uk)  # -inf: -1e30 / inf = -0, not nan
        np.multiply(uk, uk, out=sk)
        np.minimum(sk, hi[:k], out=sk)
        np.multiply(sk, q[7], out=pk)
        pk += q[6]
        for c in q[5::-1]:
            pk *= sk
            pk += c
        pk *= uk  # -h
        np.exp(pk, out=pk)
        pk += 1
        np.divide(uk, pk, out=out[st : st + k])

    # compute-bound (22 passes, an exp among them): blocks are shared among the run's threads
    # (MiniLM's 128 x 1536 activations: 1.1 ms on one thread); exp overflows to inf far left,
    # and x / inf is the -0 wanted
    _in_blocks(n, m, _GELU_STEPS, 3, np.float32, block, over="ignore")
    return out.reshape(x.shape)


#: comparable steps per element of :func:`gelu_erf`, for :func:`ort_cpu._threads.split`
_GELU_STEPS = 50.0
_GELU_Q_ARRAY = np.array(_GELU_Q, np.float32)
#: :mod:`._exp` by the kernel loaded from it ("gelu", "logistic"): see :func:`_exp_loaded`
_EXP_LOADED: dict = {}


def _exp_loaded(kind: str):
    """:mod:`._exp` with its ``kind`` kernel loaded, where compiled kernels are on (loaded now,
    with the logistic's piece where the run's pool spins, if no kernel did it when its session
    was created: :func:`_warm_exp`), else None. Every Sigmoid, SiLU and GELU call asks: the
    loaded module is one dict read (asking :func:`_threads.spin_supported` first cost 3 us a
    call)."""
    if not jit_available():  # asked each time: tests turn the compiled kernels off
        return None
    module = _EXP_LOADED.get(kind)
    if module is None:
        # the logistic's piece where this run's pool spins (numba is loaded for it then): a
        # one-thread process keeps to the saved kernels (ort_cpu._aot)
        _warm_exp(kind, kind == "logistic" and _threads.spinning())
        module = _EXP_LOADED[kind]
    return module


def _warm_exp(kind: str, split: bool) -> None:
    """Load :mod:`._exp`'s ``kind`` kernel (the erf GELU of :func:`gelu_erf`, or
    :func:`logistic`'s) now, with ``split`` its piece for the intra-op pool too; nothing where
    compiled kernels are off."""
    if not jit_available():
        return
    from . import _exp

    if kind == "gelu":
        _exp.warm_gelu(split, _GELU_Q_ARRAY)
    else:
        _exp.warm_logistic(split)
    _EXP_LOADED[kind] = _exp


def _compiled_gelu():
    """:mod:`._exp` with its GELU loaded, or None (:func:`_exp_loaded`)."""
    return _exp_loaded("gelu")


def warm_gelu(split: bool) -> None:
    """Load the compiled erf GELU now (:func:`_warm_exp`)."""
    _warm_exp("gelu", split)


def warm_gelu_for(info) -> None:
    """At kernel creation: :func:`warm_gelu` for a node computing the erf GELU (its pieces too
    where the session's runs share work), so that its first run does not compile; nothing for
    float64, which keeps numpy's erf."""
    if info.input_dtype(0) != np.float64:
        warm_gelu(_threads.will_split(info.provider))


# -- unary math -----------------------------------------------------------------------------------
def _round(x):
    return np.round(x)  # half to even, as ONNX specifies


UNARY = {  # op: (since, input types, numpy function)
    "Abs": (1, NUMERIC_TYPES, np.abs),
    "Neg": (1, SIGNED_TYPES, np.negative),
    "Exp": (1, FLOAT_TYPES, np.exp),
    "Log": (1, FLOAT_TYPES, np.log),
    "Sqrt": (1, FLOAT_TYPES, np.sqrt),
    "Reciprocal": (1, FLOAT_TYPES, np.reciprocal),
    "Floor": (1, FLOAT_TYPES, np.floor),
    "Ceil": (1, FLOAT_TYPES, np.ceil),
    "Round": (11, FLOAT_TYPES, _round),
    "Sign": (9, NUMERIC_TYPES, np.sign),
    "Erf": (9, NUMERIC_TYPES, erf),
    "Sin": (7, FLOAT_TYPES, np.sin),
    "Cos": (7, FLOAT_TYPES, np.cos),
    "Tan": (7, FLOAT_TYPES, np.tan),
    "Asin": (7, FLOAT_TYPES, np.arcsin),
    "Acos": (7, FLOAT_TYPES, np.arccos),
    "Atan": (7, FLOAT_TYPES, np.arctan),
    "Sinh": (9, FLOAT_TYPES, np.sinh),
    "Cosh": (9, FLOAT_TYPES, np.cosh),
    "Asinh": (9, FLOAT_TYPES, np.arcsinh),
    "Acosh": (9, FLOAT_TYPES, np.arccosh),
    "Atanh": (9, FLOAT_TYPES, np.arctanh),
    "Sigmoid": (1, FLOAT_TYPES, None),  # defined below
    "Tanh": (1, FLOAT_TYPES, np.tanh),
    "Softsign": (1, FLOAT_TYPES, None),
    "Softplus": (1, FLOAT_TYPES, None),
    "Mish": (18, FLOAT_TYPES, None),
    "Not": (1, BOOL, np.logical_not),
    "BitwiseNot": (18, INT_TYPES, np.invert),
}


def logistic(x: np.ndarray, alpha: float = 1.0, times_x: bool = False) -> np.ndarray:
    """``sigmoid(alpha * x)``, times ``x`` when ``times_x`` (SiLU, QuickGelu), for float32 and
    float64 ``x``, as ``1 / (1 + exp(-alpha x))`` (``x / (...)``): four passes per block of
    :data:`CHUNK` elements that stay in cache, where the two-sided formula below made ten passes
    and five temporaries of the whole tensor (YOLO's 16 x 320 x 320 SiLU: the temporaries alone
    were 33 MB of traffic). Both tails are exact limits: exp overflows to inf far left, and
    1 / inf is 0 (x / inf is -0; -inf / inf is NaN, as -inf * 0 is in onnxruntime). The blocks
    are shared among the run's threads (an exp per element: compute-bound). A tensor of at most
    :data:`TINY` elements is four numpy calls and no blocks (a 4-element Sigmoid: 17 -> 5 us).
    Where compiled kernels are on, float32 takes one compiled pass instead
    (:func:`._exp.logistic`, MLAS's exponential: within 4e-7 of these steps), shared among
    the run's threads as compiled pieces: 1.6M cells 1.46 -> 0.72 ms on one thread."""
    dt = x.dtype
    xf = x.reshape(-1)  # 1-D, also for a 0-d tensor (whose ufunc results are scalars)
    compiled = _compiled_logistic() if dt == np.float32 else None
    if compiled is not None:  # one compiled pass (:func:`._exp.logistic`)
        return compiled.logistic(np.ascontiguousarray(xf), alpha, times_x).reshape(x.shape)
    if xf.size <= TINY or (
        xf.size <= CHUNK and xf.size * _LOGISTIC_STEPS < _threads.MIN_PARALLEL_WORK
    ):  # one block's steps in place, without its closure and slices: 8 -> 5 us (3168: 9.3 -> 5.5)
        # in a run no errstate of its own is needed (a 4-element Sigmoid 3.7 -> 2.6 us)
        if fp_errors_ignored():
            return _logistic_steps(xf, alpha, times_x, dt).reshape(x.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            return _logistic_steps(xf, alpha, times_x, dt).reshape(x.shape)
    n = xf.size
    out = np.empty(n, dt)
    m = max(min(CHUNK, n), 1)
    neg = dt.type(-alpha)

    def block(st: int, k: int, tk) -> None:
        xs = xf[st : st + k]
        np.multiply(xs, neg, out=tk)
        np.exp(tk, out=tk)
        tk += 1
        if times_x:
            np.divide(xs, tk, out=out[st : st + k])
        else:
            np.reciprocal(tk, out=out[st : st + k])

    # x = -inf: -inf / inf is NaN
    _in_blocks(n, m, _LOGISTIC_STEPS, 1, dt, block, over="ignore", invalid="ignore")
    return out.reshape(x.shape)


def _compiled_logistic():
    """:mod:`._exp` with its logistic loaded, or None (:func:`_exp_loaded`)."""
    return _exp_loaded("logistic")


def _logistic_steps(xf: np.ndarray, alpha: float, times_x: bool, dt) -> np.ndarray:
    """:func:`logistic`'s four steps on the 1-D ``xf``, into one new array."""
    t = np.negative(xf) if alpha == 1.0 else np.multiply(xf, dt.type(-alpha))
    np.exp(t, out=t)
    np.add(t, _ONE[dt.char], out=t)
    return np.divide(xf, t, out=t) if times_x else np.reciprocal(t, out=t)


#: comparable steps per element of :func:`logistic` (an exp), for :func:`_threads.split`
_LOGISTIC_STEPS = 20.0


def _sigmoid(x):
    if x.dtype in _F32_F64:
        return logistic(x)
    # other types: stable in both tails with s = e/(1+e), e = exp(-|x|): sigmoid is s below 0
    # and 1-s above, blended arithmetically (masked operations are several times slower)
    s = np.abs(x)
    np.negative(s, out=s)
    np.exp(s, out=s)
    t = s + 1
    np.divide(s, t, out=s)
    np.multiply(s, -2, out=t)
    t += 1
    t *= x >= 0
    t += s
    return t


def _softsign(x):
    return x / (np.abs(x) + 1)


def _softplus(x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))
    r = np.exp(-np.abs(x))
    np.log1p(r, out=r)
    r += np.maximum(x, 0)
    return r


# numpy's SIMD loops for maximum and minimum take two arrays; with a scalar operand they fall
# back to a loop three times slower (measured here: 16 us against 5 us over 32K float32, the same
# for 800K). Bounds are therefore given as views of cached read-only constant-filled arrays.
_FILLED: dict[tuple[str, float], np.ndarray] = {}
_FILL_BLOCK = 1 << 20  # elements per operation beyond which larger arrays are done in blocks


def _filled(dtype: np.dtype, value: float, n: int) -> np.ndarray:
    key = (dtype.str, float(value))
    arr = _FILLED.get(key)
    if arr is None or arr.size < n:
        arr = np.full(max(n, 4096), value, dtype=dtype)
        arr.flags.writeable = False
        if len(_FILLED) < 64:
            _FILLED[key] = arr
    return arr


def bound(x: np.ndarray, lo=None, hi=None, out: np.ndarray | None = None) -> np.ndarray:
    """``minimum(maximum(x, lo), hi)`` (ONNX Clip's order: hi wins when lo > hi; NaN stays NaN)
    with scalar bounds, through numpy's fast two-array loops for contiguous float arrays."""
    small = x.size < 4096  # too few elements for the loop choice to matter more than the calls
    if out is None:
        out = np.empty_like(x)
    if small or x.dtype.kind != "f" or not (x.flags.c_contiguous and out.flags.c_contiguous):
        y = x if lo is None else np.maximum(x, x.dtype.type(lo), out=out)
        return y if hi is None else np.minimum(y, x.dtype.type(hi), out=out)
    xf, of = x.reshape(-1), out.reshape(-1)
    n = xf.size
    for s in range(0, n, _FILL_BLOCK):
        k = min(_FILL_BLOCK, n - s)
        src, dst = xf[s : s + k], of[s : s + k]
        if lo is not None:
            np.maximum(src, _filled(x.dtype, lo, k)[:k], out=dst)
            src = dst
        if hi is not None:
            np.minimum(src, _filled(x.dtype, hi, k)[:k], out=dst)
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None and x.size < 4096:
        # one call against a 0-d zero of x's type (a Python 0 is converted on every call: 0.64
        # against 0.35 us on 4 elements; the bounded loop took 3.6)
        zero = _ZERO.get(x.dtype.char)
        return np.maximum(x, 0 if zero is None else zero)
    return bound(x, 0, None, out)


#: 0-d zeros of the float and integer types, by type code (:func:`relu`)
_ZERO = {t: np.zeros((), t) for t in "efdbhilqBHILQ"}


def _hard_swish(x):
    """x * clip(x / 6 + 0.5, 0, 1), in place on one temporary (np.clip is several times slower
    than :func:`bound`'s two-array loops on float maps)."""
    t = np.multiply(x, x.dtype.type(1 / 6)) if x.dtype.kind == "f" else x * (1 / 6)
    t += t.dtype.type(0.5)
    bound(t, 0, 1, out=t)
    return np.multiply(t, x, out=t)


def _mish(x):
    return x * np.tanh(_softplus(x))


_DEFINED = {
    "Sigmoid": _sigmoid,
    "Softsign": _softsign,
    "Softplus": _softplus,
    "Mish": _mish,
}


def _unary_kernel(fn):
    def plain(x):
        return _arr(fn(x), x.dtype)

    plain.__name__ = plain.__qualname__ = fn.__name__
    if fn in (np.logical_not, np.invert):
        return plain
    slow = widened(plain)  # 0-d arrays and ml_dtypes types

    def run(x):  # one call and one type check on the common path (tiny tensors pay per call)
        if x.ndim and x.dtype.kind != "V":
            r = fn(x)
            return r if r.__class__ is np.ndarray and r.dtype == x.dtype else _arr(r, x.dtype)
        return slow(x)

    run.__name__ = run.__qualname__ = fn.__name__
    return run


for _op, (_since, _types, _fn) in UNARY.items():
    kernel(_op, since=_since, dtypes=_types)(_unary_kernel(_fn or _DEFINED[_op]))


def _shared_cells(kind: str, arrays: tuple, ints: tuple, floats: tuple, cells: int) -> bool:
    """A float32 pass of :mod:`._elementwise_pieces` (``kind``: activate or binary, its argument
    block the addresses of ``arrays``, then ``ints``, and ``floats``; the addresses asked of
    numpy only for a pass that is shared, 1.4 us each) over ``cells`` cells, shared among the
    run's threads in pieces of :data:`._elementwise_jit.CELLS_PIECE`; False (nothing done)
    below :data:`._elementwise_jit.CELLS_SPLIT` cells or where the run has no spinning pool
    free.
    numpy's pass on the calling thread left the other core idle: a 96 x 160 x 160 Add took 927
    us at two threads (onnxruntime 771), a 24 x 320 x 320 Relu 936 (onnxruntime 287)."""
    if cells < _elementwise_jit.CELLS_SPLIT or not _threads.spinning():
        return False
    pieces = _elementwise_pieces()
    blk = pieces.block((*(a.ctypes.data for a in arrays), *ints), floats)
    units = -(-cells // _elementwise_jit.CELLS_PIECE)
    return _threads.split_compiled(units, pieces.address(kind), blk.ctypes.data)


def _compiled_unary(info, plain, warm, *params):
    """``plain(x)`` (numpy), run instead as one compiled pass into a new array for contiguous
    float32 and float64 tensors: ``warm()`` gives the compiled ``fn(x_flat, y_flat, *params)``
    (or None where compiled kernels are off), loaded when the session is created. Other types,
    strided views and ``ORT_CPU_JIT=0`` take numpy. With the activation kernel
    (:func:`._elementwise_jit.warm_activate_into`: ``params`` its code, alpha and beta), a
    large float32 tensor's pass is shared among the run's threads (:func:`_shared_cells`)."""
    fast = warm() if info.input_dtype(0) in _F32_F64 else None
    if fast is None:
        return plain
    coded = warm is _elementwise_jit.warm_activate_into
    if coded and _threads.will_split(info.provider):
        _elementwise_pieces().address("activate")  # loaded now, not in the first run

    def run(x):
        if x.ndim and x.dtype in _F32_F64 and x.flags.c_contiguous:
            if coded:
                return _activated(fast, x, params)
            y = np.empty_like(x)
            fast(x.reshape(-1), y.reshape(-1), *params)
            return y
        return plain(x)

    return run


def _activated(fast, x, params: tuple) -> np.ndarray:
    """The activation ``params`` (code, alpha, beta) of the contiguous float ``x`` into a new
    array: a float32 pass shared among the run's threads where it is large
    (:func:`_shared_cells`), else the compiled pass ``fast``
    (:func:`._elementwise_jit.warm_activate_into`) on the calling thread."""
    y = np.empty_like(x)
    if not (
        x.dtype == np.float32
        and _shared_cells("activate", (x, y), (x.size, params[0]), params[1:], x.size)
    ):
        fast(x.reshape(-1), y.reshape(-1), *params)
    return y


@functools.cache  # once imported, a lookup (the import statement took 1 us a call)
def _elementwise_pieces():
    """:mod:`._elementwise_pieces` (it imports numba: only where a run shares such a pass)."""
    from . import _elementwise_pieces as pieces

    return pieces


#: float32 cells from which Relu is a compiled pass (below, numpy's maximum against a 0-d zero:
#: :func:`relu`)
RELU_COMPILED = 4096


@builder("Relu", since=1, dtypes=NUMERIC_TYPES)
def relu_op(info):
    """Relu: numpy's maximum; a float32 tensor of :data:`RELU_COMPILED` cells or more in one
    compiled pass (the same values, +0 for -0 as numpy's), shared among the run's threads when
    large (:func:`_shared_cells`). numpy's maximum against a block of zeros took 45 us over 128
    x 1536 cells, the compiled pass into a new array 27 (onnxruntime's Relu node 30)."""
    plain = _unary_kernel(relu)
    fast = _elementwise_jit.warm_activate_into() if info.input_dtype(0) == np.float32 else None
    if fast is None:
        return plain
    params = (_elementwise_jit.ACT_CODES["Relu"], 0.0, 0.0)
    if _threads.will_split(info.provider):
        _elementwise_pieces().address("activate")

    def run(x):
        if x.size >= RELU_COMPILED and x.dtype == np.float32 and x.flags.c_contiguous:
            return _activated(fast, x, params)
        return plain(x)

    return run


@builder("HardSwish", since=14, dtypes=FLOAT_TYPES)
def hard_swish(info):
    """HardSwish; float32 and float64 in one compiled pass (:mod:`._elementwise_jit`, the numpy
    path's operations in its order: the same results, 5-7x faster from 8 elements to 230K)."""
    return _compiled_unary(info, _unary_kernel(_hard_swish), _elementwise_jit.warm_hard_swish)


@kernel("IsNaN", since=9, dtypes=FLOAT_TYPES | {np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
    ml_dtypes.float8_e5m2fnuz)})  # fmt: skip
def is_nan(x):
    return np.asarray(np.isnan(x.astype(np.float32) if _exotic(x.dtype) else x))


@kernel("IsInf", since=10, dtypes=FLOAT_TYPES | {np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
    ml_dtypes.float8_e5m2fnuz)})  # fmt: skip
def is_inf(x, detect_negative=1, detect_positive=1):
    if _exotic(x.dtype):
        x = x.astype(np.float32)
    if detect_negative and detect_positive:
        return np.asarray(np.isinf(x))
    if detect_negative:
        return np.asarray(x == -np.inf)
    if detect_positive:
        return np.asarray(x == np.inf)
    return np.zeros(x.shape, np.bool_)


# -- activations with attributes ------------------------------------------------------------------
@widened
def _leaky_relu(x, alpha=0.01):
    r = np.minimum(x, 0)
    r *= x.dtype.type(alpha)
    r += np.maximum(x, 0)
    return r


@builder("LeakyRelu", since=1, dtypes=FLOAT_TYPES, attributes=("alpha",))
def leaky_relu(info):
    alpha = float(info.attr("alpha", 0.01))
    code = _elementwise_jit.ACT_CODES["LeakyRelu"]
    plain = lambda x: _leaky_relu(x, alpha)  # noqa: E731
    # three numpy temporaries: one compiled pass
    return _compiled_unary(info, plain, _elementwise_jit.warm_activate_into, code, alpha, 0.0)


@kernel("PRelu", since=7, dtypes=NUMERIC_TYPES)
def prelu(x, slope):
    dt = x.dtype
    if _exotic(dt):
        x, slope = x.astype(np.float32), slope.astype(np.float32)
    # max(x, 0) + slope * min(x, 0): exact, and faster than a masked select
    return _arr(np.maximum(x, 0) + np.minimum(x, 0) * slope, dt)


@kernel("PRelu", since=(1, 6), dtypes=NUMERIC_TYPES)
def prelu_per_channel(x, slope, consumed_inputs=None):
    """Before opset 7 a 1-D slope of size C applies per channel (axis 1), as PyTorch exported it."""
    if slope.ndim == 1 and x.ndim > 2 and slope.size == x.shape[1] and slope.size > 1:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
    return prelu(x, slope)


@kernel("Elu", since=1, dtypes=FLOAT_TYPES)
@widened
def elu(x, alpha=1.0):
    r = np.minimum(x, 0)
    np.expm1(r, out=r)
    r *= x.dtype.type(alpha)
    r += np.maximum(x, 0)
    return r


@kernel("Selu", since=1, dtypes=FLOAT_TYPES)
@widened
def selu(x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    r = elu(x, alpha)
    r *= x.dtype.type(gamma)
    return r


@kernel("Celu", since=12, dtypes=FLOAT_TYPES)
@widened
def celu(x, alpha=1.0):
    a = x.dtype.type(alpha)
    return np.maximum(x, 0) + np.minimum(np.expm1(np.minimum(x, 0) / a) * a, 0)


@widened
def _hard_sigmoid(x, alpha=0.2, beta=0.5):
    t = x.dtype.type
    r = x * t(alpha)
    r += t(beta)
    return np.clip(r, 0, 1, out=r)


@builder("HardSigmoid", since=1, dtypes=FLOAT_TYPES, attributes=("alpha", "beta"))
def hard_sigmoid(info):
    alpha, beta = float(info.attr("alpha", 0.2)), float(info.attr("beta", 0.5))
    code = _elementwise_jit.ACT_CODES["HardSigmoid"]
    plain = lambda x: _hard_sigmoid(x, alpha, beta)  # noqa: E731
    # np.clip is several times slower than the arithmetic: one compiled pass
    return _compiled_unary(info, plain, _elementwise_jit.warm_activate_into, code, alpha, beta)


@kernel("ThresholdedRelu", since=10, dtypes=FLOAT_TYPES)
@widened
def thresholded_relu(x, alpha=1.0):
    return np.where(x > x.dtype.type(alpha), x, 0)


@kernel("Shrink", since=9, dtypes=NUMERIC_TYPES)
def shrink(x, bias=0.0, lambd=0.5):
    xf = x.astype(np.float32) if _exotic(x.dtype) else x
    r = np.where(xf < -lambd, xf + bias, np.where(xf > lambd, xf - bias, 0))
    return _arr(r, x.dtype)


@builder("Gelu", since=20, dtypes=FLOAT_TYPES, check=choice_check(approximate=("none", "tanh")))
def gelu_builder(info):
    approximate = info.attr("approximate", "none")
    if approximate == "none":
        warm_gelu_for(info)

    def run(x):
        return gelu(x, approximate)

    return run


@widened
def gelu(x, approximate="none"):
    t = x.dtype.type
    if approximate == "tanh":
        inner = x * x
        inner *= t(0.044715)
        inner += 1
        inner *= x
        inner *= t(math.sqrt(2 / math.pi))
        np.tanh(inner, out=inner)
    else:
        return gelu_erf(x)
    inner += 1
    inner *= x
    inner *= t(0.5)
    return inner


@kernel("Swish", since=24, dtypes=FLOAT_TYPES)
@widened
def swish(x, alpha=1.0):
    if x.dtype in _F32_F64:
        return logistic(x, alpha, times_x=True)
    return x * _sigmoid(x * x.dtype.type(alpha))


# -- binary ops with numpy broadcasting ----------------------------------------------------------
def _div(a, b):
    if a.dtype.kind in "iu":
        q = np.floor_divide(a, b)
        if a.dtype.kind == "i":  # ONNX (like C) truncates toward zero
            q += ((a % b) != 0) & ((a < 0) != (b < 0))
        return q
    return np.divide(a, b)


def _bit_shift(a, b, direction):
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    s = np.where(ok, b, 0).astype(a.dtype, copy=False)
    if direction == "RIGHT":
        r = np.right_shift(a, s)
        fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
    elif direction == "LEFT":
        if a.dtype.kind == "i":
            u = np.dtype(f"u{a.dtype.itemsize}")
            r = np.left_shift(a.view(u), s.view(u)).view(a.dtype)
        else:
            r = np.left_shift(a, s)
        fill = 0
    else:
        raise ValueError(f"BitShift direction must be LEFT or RIGHT, not {direction!r}")
    return np.where(ok, r, fill)


#: the binary ufuncs whose large float32 passes are shared among a run's threads
#: (:func:`_shared_cells`), by :func:`._elementwise_jit.binary_cells`' operation codes
_SHARED_BINARY = {
    np.add: _elementwise_jit.ADD,
    np.subtract: _elementwise_jit.SUB,
    np.multiply: _elementwise_jit.MUL,
}


def _binary(fn, out_dtype=None):
    def run(a, b):
        if _exotic(a.dtype):
            r = fn(a.astype(np.float32), b.astype(np.float32))
            return _arr(r, out_dtype or a.dtype)
        if isinstance(fn, np.ufunc):
            return _arr(broadcast_binary(fn, a, b), out_dtype or a.dtype)
        return _arr(fn(a, b), out_dtype or a.dtype)

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "binary")
    if not isinstance(fn, np.ufunc):
        return run
    small = 4 * LONG_ROW  # operands below this many elements: numpy's buffer is no loss

    op = _SHARED_BINARY.get(fn)

    def run_ufunc(a, b):
        if a.size + b.size < small and a.dtype.kind != "V":  # the common case first
            r = fn(a, b)  # one operand type: the result has it (or out_dtype's)
            return r if type(r) is np.ndarray else np.asarray(r)
        if (
            op is not None
            and a.size >= _elementwise_jit.CELLS_SPLIT  # (no output made for an unshared pass)
            and a.shape == b.shape
            and a.dtype == b.dtype == np.float32
            and a.flags.c_contiguous
            and b.flags.c_contiguous
        ):
            y = np.empty_like(a)
            if _shared_cells("binary", (a, b, y), (a.size, op), (), a.size):
                return y
        return run(a, b)

    run_ufunc.__name__ = run_ufunc.__qualname__ = fn.__name__
    return run_ufunc


_CMP = NUMERIC_TYPES
BINARY = {  # op: (since versions, input types, numpy function, output dtype or None)
    "Add": (7, NUMERIC_TYPES, np.add, None),
    "Sub": (7, NUMERIC_TYPES, np.subtract, None),
    "Mul": (7, NUMERIC_TYPES, np.multiply, None),
    "Div": (7, NUMERIC_TYPES, _div, None),
    "BitwiseAnd": (18, INT_TYPES, np.bitwise_and, None),
    "BitwiseOr": (18, INT_TYPES, np.bitwise_or, None),
    "BitwiseXor": (18, INT_TYPES, np.bitwise_xor, None),
    "And": (7, BOOL, np.logical_and, None),
    "Or": (7, BOOL, np.logical_or, None),
    "Xor": (7, BOOL, np.logical_xor, None),
    "Equal": (7, NUM_BOOL_STR, np.equal, np.bool_),
    "Less": (7, _CMP, np.less, np.bool_),
    "LessOrEqual": (12, _CMP, np.less_equal, np.bool_),
    "Greater": (7, _CMP, np.greater, np.bool_),
    "GreaterOrEqual": (12, _CMP, np.greater_equal, np.bool_),
}


def _legacy_broadcast(run):
    """Opset < 7 form: B broadcasts to A only with ``broadcast=1``, aligned at ``axis``."""

    def legacy(a, b, broadcast=0, axis=None, consumed_inputs=None):
        if broadcast and axis is not None and 0 < b.ndim < a.ndim:
            b = b.reshape(b.shape + (1,) * (a.ndim - axis % a.ndim - b.ndim))
        return run(a, b)

    legacy.__name__ = legacy.__qualname__ = f"legacy_{run.__name__}"
    return legacy


def _ranked(run):
    """A builder of ``run(a, b)`` that gives a constant operand of lower rank than the other
    (a bias of shape (C,) added to (N, C)) the other's rank once, ones prepended: the same
    broadcast, which numpy does 0.5 us faster (a 1 x 64 minus 64: 0.8 -> 0.3 us)."""

    def build(info):
        for j in (0, 1):
            const, other = info.constant(j), info.input_shape(1 - j)
            if not isinstance(const, np.ndarray) or other is None or len(other) <= const.ndim:
                continue
            shaped = ranked(const, len(other))
            if j == 1:
                return lambda a, b: run(a, shaped if b is const else b)
            return lambda a, b: run(shaped if a is const else a, b)
        return run

    return build


for _op, (_since, _types, _fn, _out) in BINARY.items():
    _run = _binary(_fn, _out and np.dtype(_out))
    builder(_op, since=_since, dtypes=_types, attributes=())(_ranked(_run))
    if _since == 7:
        kernel(_op, since=1, dtypes=_types)(_legacy_broadcast(_run))


@kernel("Pow", since=7, dtypes=NUMERIC_TYPES)
def pow_(a, b):
    if _exotic(a.dtype) or a.dtype == np.float16:
        return _arr(np.power(a.astype(np.float32), b.astype(np.float32)), a.dtype)
    if a.dtype.kind == "f":
        return _arr(np.power(a, b.astype(a.dtype, copy=False)), a.dtype)
    if b.dtype.kind in "iu" and (b.size == 0 or b.min() >= 0):
        return _arr(np.power(a, b.astype(np.int64, copy=False)), a.dtype)
    with np.errstate(all="ignore"):
        return _arr(np.power(a.astype(np.float64), b.astype(np.float64)), a.dtype)


kernel("Pow", since=1, dtypes=NUMERIC_TYPES)(_legacy_broadcast(pow_))


@kernel("Mod", since=10, dtypes=NUMERIC_TYPES)
def mod(a, b, fmod=0):
    fn = np.fmod if fmod else np.mod
    if _exotic(a.dtype):
        return _arr(fn(a.astype(np.float32), b.astype(np.float32)), a.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _arr(fn(a, b), a.dtype)


def _check_direction(info):
    d = info.attr("direction")
    return None if d in ("LEFT", "RIGHT") else f"direction must be LEFT or RIGHT, not {d!r}"


@kernel("BitShift", since=11, dtypes=INT_TYPES, check=_check_direction)
def bit_shift(a, b, direction=""):
    return _arr(_bit_shift(a, b, direction), a.dtype)


# -- variadic ops ---------------------------------------------------------------------------------
def _variadic(fn, mean=False):
    def run(*xs):
        dt = xs[0].dtype
        if _exotic(dt):
            xs = [x.astype(np.float32) for x in xs]
        if len(xs) == 1:
            return xs[0].astype(dt)  # a fresh array: the output must not alias the input
        r = fn(xs[0], xs[1])
        for x in xs[2:]:
            if r.ndim and r.shape == np.broadcast_shapes(r.shape, x.shape):
                fn(r, x, out=r)
            else:
                r = fn(r, x)
        if mean:
            r = r / len(xs) if r.dtype.kind == "f" else r // len(xs)
        return _arr(r, dt)

    return run


kernel("Sum", since=1, dtypes=NUMERIC_TYPES)(_variadic(np.add))
kernel("Mean", since=1, dtypes=FLOAT_TYPES)(_variadic(np.add, mean=True))
kernel("Max", since=1, dtypes=NUMERIC_TYPES)(_variadic(np.maximum))
kernel("Min", since=1, dtypes=NUMERIC_TYPES)(_variadic(np.minimum))


# -- Clip -----------------------------------------------------------------------------------------
def _clip(x, lo, hi):
    if lo is None and hi is None:
        return x.copy()
    xf = x.astype(np.float32) if _exotic(x.dtype) else x
    if lo is not None:
        lo = np.asarray(lo).astype(xf.dtype)
    if hi is not None:
        hi = np.asarray(hi).astype(xf.dtype)
    if xf.dtype.kind == "f" and (lo is None or lo.size == 1) and (hi is None or hi.size == 1):
        return _arr(
            bound(
                np.asarray(xf, order="C"),  # (ascontiguousarray would make a scalar 1-D)
                None if lo is None else lo.reshape(()).item(),
                None if hi is None else hi.reshape(()).item(),
            ),
            x.dtype,
        )
    return _arr(np.clip(xf, lo, hi), x.dtype)


@kernel("Clip", since=1, dtypes=NUMERIC_TYPES)
def clip_6(x, min=-3.4028234663852886e38, max=3.4028234663852886e38):  # noqa: A002
    return _clip(x, min, max)


@kernel("Clip", since=11, dtypes=NUMERIC_TYPES)
def clip_11(x, lo=None, hi=None):
    return _clip(x, lo, hi)


# -- Cast, CastLike -------------------------------------------------------------------------------
_FLOAT8 = {
    np.dtype(t)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e5m2fnuz,
    )
}
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


def _to_e8m0(x: np.ndarray, saturate: int, round_mode: str) -> np.ndarray:
    """Float to float8e8m0 (a power of two, stored as the biased float32 exponent)."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.int32)
    frac = bits & 0x7FFFFF
    special = exp == 0xFF
    if round_mode == "up":
        exp += frac != 0
    elif round_mode == "nearest":
        exp += (frac & 0x400000) != 0  # ties round up
    elif round_mode != "down":
        raise ValueError(f"Cast: round_mode must be up, down or nearest, not {round_mode!r}")
    exp = np.where(exp > 0xFE, 0xFE if saturate else 0xFF, exp)
    exp[special] = 0xFF
    return exp.astype(np.uint8).view(_E8M0)


def _from_string(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "b":
        return np.array([bool(float(s)) for s in x.ravel()], np.bool_).reshape(x.shape)
    if dtype.kind in "iu":
        flat = [int(s) if str(s).lstrip("+-").isdigit() else int(float(s)) for s in x.ravel()]
        return np.array(flat, np.int64).astype(dtype).reshape(x.shape)
    return x.astype(np.float64).astype(dtype)


def _to_string(x: np.ndarray) -> np.ndarray:
    if _exotic(x.dtype):
        x = x.astype(np.float32)
    return x.astype(np.str_).astype(object)


def cast_to(x: np.ndarray, dtype: np.dtype, saturate: int = 1, round_mode: str = "up"):
    """Cast ``x`` to ``dtype`` with ONNX Cast semantics."""
    src = x.dtype
    if dtype == src:
        return x.copy()
    if dtype.kind == "O":
        return _to_string(x)
    if src.kind == "O":
        return _from_string(x, dtype)
    if dtype == _E8M0:
        return _to_e8m0(x, saturate, round_mode)
    if dtype in _FLOAT8 and saturate and src.kind != "b":
        fi = ml_dtypes.finfo(dtype)
        xf = x.astype(np.float32) if src.kind != "f" or src == np.float16 else x
        return np.clip(xf, float(fi.min), float(fi.max)).astype(dtype)
    return np.asarray(x).astype(dtype)


def _dtype_of(to) -> np.dtype:
    if isinstance(to, str):  # Cast-1 names the type
        to = TensorProto.DataType.Value(to.upper())
    return np.dtype(helper.tensor_dtype_to_np_dtype(to))


def _to_check(info) -> str | None:
    to = info.attr("to")
    try:
        _dtype_of(to)
    except (KeyError, ValueError, TypeError):
        return f"to={to!r} is not an ONNX element type numpy can hold"
    return None


def _no_complex(info, target=None) -> str | None:
    """ONNX's Cast and CastLike take no complex tensors (onnxruntime rejects such models)."""
    kinds = [t.kind for t in (info.input_dtype(0), target) if t is not None]
    if "c" in kinds:
        return (
            f"{info.node.op_type} does not convert complex tensors: ONNX's type constraints exclude "
            "complex64 and complex128 (onnxruntime rejects the model too); give the model real "
            "and imaginary parts as separate real tensors"
        )
    return None


def _cast_check(info) -> str | None:
    reason = _to_check(info)
    if reason is None:
        reason = choice_check(round_mode=("up", "down", "nearest"))(info)
    if reason is None:
        reason = _no_complex(info, _dtype_of(info.attr("to")))
    return reason


@builder("Cast", since=1, check=_cast_check)
def cast(info):
    dtype = _dtype_of(info.attr("to"))
    saturate = info.attr("saturate", 1)
    round_mode = info.attr("round_mode", "up")

    def run(x):
        return cast_to(x, dtype, saturate, round_mode)

    return run


def _cast_like_check(info) -> str | None:
    reason = choice_check(round_mode=("up", "down", "nearest"))(info)
    return reason if reason is not None else _no_complex(info, info.input_dtype(1))


@kernel("CastLike", since=15, check=_cast_like_check)
def cast_like(x, like, saturate=1, round_mode="up"):
    return cast_to(x, like.dtype, saturate, round_mode)


def _bitcast_check(info):
    reason = _to_check(info)
    if reason is not None:
        return reason
    src, dst = info.input_dtype(0), _dtype_of(info.attr("to"))
    if src is not None and (src.kind == "O" or src.itemsize != dst.itemsize):
        return (
            f"BitCast needs types of equal bit width (got {src} -> {dst}); strings are not allowed"
        )
    return None


@builder("BitCast", since=26, check=_bitcast_check)
def bitcast(info):
    dtype = _dtype_of(info.attr("to"))

    def run(x):
        if x.dtype.itemsize != dtype.itemsize or x.dtype.kind == "O":
            raise ValueError(f"BitCast from {x.dtype} to {dtype}: the bit widths differ")
        # the spec reads bytes as little endian: numpy's native order on the hosts we run on
        return np.ascontiguousarray(x).view(dtype).reshape(x.shape)

    return run
