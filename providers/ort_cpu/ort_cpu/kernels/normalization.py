"""Normalization kernels: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization, Dropout.

Statistics are computed in float32 for float16/bfloat16 inputs (float64 stays float64), or in the
``stash_type`` precision where the op has one. Inference-mode BatchNormalization with constant
parameters folds them once into a per-channel scale and shift.
"""

from __future__ import annotations

import math

import numpy as np

from ort_core._onnx import helper
from ort_core.provider import FLOAT_TYPES

from .._jit import available as jit_available
from ._registry import builder, kernel
from ._rows import binary, per_row
from .conv import compute_dtype
from .quantization import _FLOAT8 as FLOAT8_TYPES
from .shape_ops import axis_check

BOOL = np.dtype(np.bool_)


def _channel_shape(x: np.ndarray, p: np.ndarray) -> tuple[int, ...]:
    """How a per-channel parameter broadcasts against (N, C, ...) ``x``. A parameter with more
    than C values is per activation (old BatchNormalization with spatial=0): shape C x D1 x ..."""
    if p.size == x.shape[1] or x.ndim < 2:
        return (-1, *([1] * (x.ndim - 2)))
    return x.shape[1:]


def _stats(x: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance over ``axes``, keeping dims."""
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    return mean, (d * d).mean(axis=axes, keepdims=True)


# -- BatchNormalization ---------------------------------------------------------------------
def _fold(scale, bias, mean, var, epsilon, cdt):
    """Per-channel (a, b) with y = a * x + b."""
    a = scale.astype(cdt) / np.sqrt(var.astype(cdt) + cdt.type(epsilon))
    return a, bias.astype(cdt) - mean.astype(cdt) * a


def _bn_train(x, scale, bias, mean, var, epsilon, momentum):
    """Normalize with the batch statistics; return y, batch mean/var, updated running mean/var."""
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    axes = (0, *range(2, x.ndim))
    bmean, bvar = (s.reshape(-1) for s in _stats(xc, axes))
    a, b = _fold(scale, bias, bmean, bvar, epsilon, cdt)
    shape = _channel_shape(x, a)
    y = (xc * a.reshape(shape) + b.reshape(shape)).astype(x.dtype, copy=False)
    run_mean = (mean.astype(cdt) * momentum + bmean * (1 - momentum)).astype(mean.dtype)
    run_var = (var.astype(cdt) * momentum + bvar * (1 - momentum)).astype(var.dtype)
    return y, bmean, bvar, run_mean, run_var


@builder("BatchNormalization", since=(1, 6, 7, 9, 14, 15), dtypes={0: FLOAT_TYPES})
def batch_normalization(info):
    """Inference mode by default. Training mode (batch statistics, running averages updated with
    ``momentum``) when asked: ``is_test=0`` before opset 7, several outputs in opsets 7-13,
    ``training_mode=1`` from opset 14."""
    epsilon = float(info.attr("epsilon", 1e-5))
    momentum = float(info.attr("momentum", 0.9))
    if info.opset < 7:
        training = not info.attr("is_test", 0)
    elif info.opset < 14:
        training = info.num_outputs > 1
    else:
        training = bool(info.attr("training_mode", 0))
    consts = [info.constant(i) for i in range(1, 5)]
    dt = info.input_dtype(0)
    folded = None
    if not training and dt is not None and all(c is not None for c in consts):
        folded = _fold(*consts, epsilon, compute_dtype(dt))

    def run(x, scale, bias, mean, var):
        if training:
            y, bmean, bvar, run_mean, run_var = _bn_train(
                x, scale, bias, mean, var, epsilon, momentum
            )
            if info.opset >= 14:
                return y, run_mean, run_var
            return y, run_mean, run_var, bmean.astype(x.dtype), bvar.astype(x.dtype)
        cdt = compute_dtype(x.dtype)
        a, b = folded if folded is not None else _fold(scale, bias, mean, var, epsilon, cdt)
        shape, row = _channel_shape(x, a), math.prod(x.shape[2:])
        y = per_row(np.multiply, x.astype(cdt, copy=False), a.reshape(shape), row=row)
        per_row(np.add, y, b.reshape(shape), out=y, row=row)
        return (y.astype(x.dtype, copy=False),)

    return run


# -- Instance / Layer / Group / RMS normalization -------------------------------------------
@kernel("InstanceNormalization", since=(1, 6, 22), dtypes=FLOAT_TYPES)
def instance_normalization(x, scale, b, epsilon=1e-5, consumed_inputs=None):
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    mean, var = _stats(xc, tuple(range(2, x.ndim)))
    shape, row = _channel_shape(x, scale), math.prod(x.shape[2:])
    a = scale.astype(cdt).reshape(shape) / np.sqrt(var + cdt.type(epsilon))
    y = per_row(np.subtract, xc, mean, row=row)
    per_row(np.multiply, y, a, out=y, row=row)
    per_row(np.add, y, b.astype(cdt).reshape(shape), out=y, row=row)
    return y.astype(x.dtype, copy=False)


def _stash_dtype(stash_type: int, x_dtype: np.dtype) -> np.dtype:
    """The precision of the statistics: stash_type's, but never below float64 for float64 data
    (as onnxruntime computes double inputs) and never below float32."""
    dt = np.dtype(helper.tensor_dtype_to_np_dtype(stash_type))
    if dt == np.float64 or x_dtype == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _layer_axes(x: np.ndarray, axis: int) -> tuple[int, ...]:
    axis = axis + x.ndim if axis < 0 else axis
    return tuple(range(axis, x.ndim))


def layer_norm(s: np.ndarray, gamma, beta, epsilon: float, simplified: bool, axes=(-1,)):
    """Normalize ``s`` (already in its compute dtype) over ``axes``: y, mean, inv_std. Two
    reductions and one scratch array, which becomes y (shared by LayerNormalization and the
    com.microsoft Skip/Simplified forms)."""
    n = math.prod(s.shape[a] for a in axes)
    compiled = _compiled_layer_norm(s, axes)
    if compiled is not None:
        done = _layer_norm_compiled(compiled, s, gamma, beta, epsilon, simplified, len(axes))
        if done is not None:
            return done
    if simplified:
        mean, d = None, s
    else:
        mean = np.add.reduce(s, axis=axes, keepdims=True)
        mean /= n
        d = per_row(np.subtract, s, mean, row=n)
    y = np.multiply(d, d)
    ms = np.add.reduce(y, axis=axes, keepdims=True)
    ms /= n
    ms += s.dtype.type(epsilon)
    inv_std = np.sqrt(ms, out=ms)
    np.divide(1, inv_std, out=inv_std)
    per_row(np.multiply, d, inv_std, out=y, row=n)
    binary(np.multiply, y, gamma.astype(s.dtype, copy=False), out=y)
    if beta is not None:
        binary(np.add, y, beta.astype(s.dtype, copy=False), out=y)
    return y, mean, inv_std


_LN_JIT: list = []  # the compiled row kernel of :mod:`._norm_jit`, once loaded


def warm_layer_norm() -> None:
    """Load the compiled layer normalization now (kernel builders call it), not in a run."""
    if jit_available() and not _LN_JIT:
        from . import _norm_jit

        fn = _norm_jit.warm()
        if fn is not None:
            _LN_JIT[:] = [fn]


def _compiled_layer_norm(s: np.ndarray, axes) -> object:
    """The compiled row kernel (:mod:`._norm_jit`) where it applies to ``s`` (float32 or
    float64, C-contiguous, normalized over its last axes, not empty) and compiled kernels are
    on; None otherwise."""
    if (
        s.dtype not in (np.float32, np.float64)
        or not s.flags.c_contiguous
        or s.size == 0
        or not jit_available()
    ):
        return None
    if tuple(a % s.ndim for a in axes) != tuple(range(s.ndim - len(axes), s.ndim)):
        return None
    warm_layer_norm()
    return _LN_JIT[0] if _LN_JIT else None


def _row_param(p, dtype: np.dtype, inner: tuple):
    """Gamma or beta (or None) as a contiguous array of ``inner``'s shape and ``dtype``: itself
    where it is one already (the usual constant: numpy's broadcast_to and asarray cost 6 us of
    a one-row LayerNormalization's 14), else broadcast and converted."""
    if p is None:
        return None
    if type(p) is np.ndarray and p.dtype == dtype and p.shape == inner and p.flags.c_contiguous:
        return p
    return np.ascontiguousarray(np.broadcast_to(np.asarray(p, dtype), inner))


def _layer_norm_compiled(fn, s, gamma, beta, epsilon, simplified, k):
    """:func:`layer_norm` over the last ``k`` axes of ``s`` by the compiled row kernel ``fn``;
    None where gamma or beta do not broadcast to the normalized shape alone."""
    lead, inner = s.shape[: s.ndim - k], s.shape[s.ndim - k :]
    n = math.prod(inner)
    try:
        g, b = (_row_param(p, s.dtype, inner) for p in (gamma, beta))
    except ValueError:  # a scale with its own leading axes: numpy broadcasts it
        return None
    t = s.dtype.type
    y = np.empty(s.shape, s.dtype)
    mean = np.empty(lead + (1,) * k, s.dtype)
    inv_std = np.empty(mean.shape, s.dtype)
    fn(s.reshape(-1, n), g.reshape(n), g.reshape(n) if b is None else b.reshape(n), b is not None,
       simplified, t(n), t(epsilon), t(1), y.reshape(-1, n), mean.reshape(-1),
       inv_std.reshape(-1))  # fmt: skip
    return y, None if simplified else mean, inv_std


@builder("LayerNormalization", since=17, dtypes={0: FLOAT_TYPES})
def layer_normalization(info):
    axis = int(info.attr("axis", -1))
    epsilon = float(info.attr("epsilon", 1e-5))
    stash_type = int(info.attr("stash_type", 1))
    warm_layer_norm()
    out_dt = np.dtype(helper.tensor_dtype_to_np_dtype(stash_type))
    # the statistics' precision per input dtype, worked out once (onnx's dtype lookup on every
    # call cost a microsecond)
    stash = {dt: _stash_dtype(stash_type, dt) for dt in map(np.dtype, FLOAT_TYPES)}

    def run(x, scale, b=None):
        sdt = stash.get(x.dtype) or _stash_dtype(stash_type, x.dtype)
        xc = x.astype(sdt, copy=False)
        y, mean, inv_std = layer_norm(xc, scale, b, epsilon, False, _layer_axes(x, axis))
        return (
            y.astype(x.dtype, copy=False),
            mean.astype(out_dt, copy=False),
            inv_std.astype(out_dt, copy=False),
        )

    return run


@kernel("RMSNormalization", since=23, dtypes=FLOAT_TYPES)
def rms_normalization(x, scale, axis=-1, epsilon=1e-5, stash_type=1):
    sdt = _stash_dtype(stash_type, x.dtype)
    xc = x.astype(sdt, copy=False)
    ms = (xc * xc).mean(axis=_layer_axes(x, axis), keepdims=True)
    y = xc / np.sqrt(ms + sdt.type(epsilon)) * scale.astype(sdt, copy=False)
    return y.astype(x.dtype, copy=False)


def _group_norm(x, scale, bias, num_groups, epsilon, per_channel, sdt):
    n, c = x.shape[:2]
    xc = x.astype(sdt, copy=False).reshape(n, num_groups, -1)
    mean, var = _stats(xc, (2,))
    y = per_row(np.subtract, xc, mean, row=xc.shape[2])
    per_row(np.divide, y, np.sqrt(var + sdt.type(epsilon)), out=y, row=xc.shape[2])
    y = y.reshape(x.shape)
    if not per_channel:  # opset 18: one scale and bias per group
        scale, bias = (np.repeat(p, c // num_groups) for p in (scale, bias))
    shape, row = (-1, *([1] * (x.ndim - 2))), math.prod(x.shape[2:])
    per_row(np.multiply, y, scale.astype(sdt).reshape(shape), out=y, row=row)
    per_row(np.add, y, bias.astype(sdt).reshape(shape), out=y, row=row)
    return y.astype(x.dtype, copy=False)


def _groups_check(info) -> str | None:
    shape, groups = info.input_shape(0), info.attr("num_groups")
    if groups is None or groups <= 0:
        return f"num_groups must be a positive integer, got {groups}"
    if shape is not None and len(shape) > 1 and isinstance(shape[1], int) and shape[1] % groups:
        return f"num_groups {groups} does not divide the {shape[1]} channels"
    return None


@kernel("GroupNormalization", since=18, dtypes=FLOAT_TYPES, check=_groups_check)
def group_normalization_18(x, scale, bias, num_groups=0, epsilon=1e-5):
    return _group_norm(x, scale, bias, num_groups, epsilon, False, compute_dtype(x.dtype))


@kernel("GroupNormalization", since=21, dtypes=FLOAT_TYPES, check=_groups_check)
def group_normalization_21(x, scale, bias, num_groups=0, epsilon=1e-5, stash_type=1):
    sdt = _stash_dtype(stash_type, x.dtype)
    return _group_norm(x, scale, bias, num_groups, epsilon, True, sdt)


# -- LRN, LpNormalization, MeanVarianceNormalization -----------------------------------------
@kernel("LRN", since=(1, 13), dtypes=FLOAT_TYPES)
def lrn(x, size=1, alpha=1e-4, beta=0.75, bias=1.0):
    """Cross-channel: square sums over channels [c - (size-1)//2, c + ceil((size-1)/2)]."""
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    sq = xc * xc
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    c = x.shape[1]
    pad = [(0, 0)] * x.ndim
    pad[1] = (lo, hi)
    sqp = np.pad(sq, pad)
    total = sqp[:, 0:c].copy()
    for k in range(1, size):
        total += sqp[:, k : k + c]
    denom = (cdt.type(bias) + cdt.type(alpha / size) * total) ** cdt.type(beta)
    return (xc / denom).astype(x.dtype, copy=False)


@kernel("LpNormalization", since=(1, 22), dtypes=FLOAT_TYPES, check=axis_check(default=-1))
def lp_normalization(x, axis=-1, p=2):
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    if p == 1:
        norm = np.abs(xc).sum(axis=axis, keepdims=True)
    else:
        norm = np.sqrt((xc * xc).sum(axis=axis, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(norm == 0, 0, xc / norm)
    return y.astype(x.dtype, copy=False)


@kernel("MeanVarianceNormalization", since=(9, 13), dtypes=FLOAT_TYPES)
def mean_variance_normalization(x, axes=(0, 2, 3)):
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    mean, var = _stats(xc, tuple(axes))
    return ((xc - mean) / (np.sqrt(var) + cdt.type(1e-9))).astype(x.dtype, copy=False)


# -- Dropout ---------------------------------------------------------------------------------
def _dropout_mask_dtype(opset: int, x: np.ndarray) -> np.dtype:
    return BOOL if opset >= 10 else x.dtype


@builder("Dropout", since=(1, 6, 7, 10), dtypes={0: FLOAT_TYPES})
def dropout_legacy(info):
    """Before opset 12 Dropout is inference-only here: Y = X and a mask of ones (``is_test``
    is ignored: a runtime for inference runs models in test mode)."""
    opset = info.opset

    def run(x):
        return x, np.ones(x.shape, _dropout_mask_dtype(opset, x))

    return run


@builder("Dropout", since=(12, 13), dtypes={0: FLOAT_TYPES})
@builder("Dropout", since=22, dtypes={0: FLOAT_TYPES | FLOAT8_TYPES})
def dropout(info):
    """Identity with a mask of ones unless ``training_mode`` is true and the ratio positive; then
    a Bernoulli mask (reproducible when ``seed`` is given) and scaling by 1 / (1 - ratio)."""
    seed = info.attr("seed")
    from ort_core.environment import seeded_generator

    def run(x, ratio=None, training_mode=None):
        r = 0.5 if ratio is None else float(np.asarray(ratio).reshape(()))
        train = training_mode is not None and bool(np.asarray(training_mode).reshape(()))
        if not train or r == 0:
            return x, np.ones(x.shape, BOOL)
        if seed is None:  # the set_seed() stream when there is one, else fresh entropy
            mask = (seeded_generator() or np.random.default_rng()).random(x.shape) >= r
        else:  # numpy's legacy generator: the same masks as onnx's backend test data
            mask = np.random.RandomState(int(seed)).uniform(0.0, 1.0, x.shape) >= r
        if r >= 1:
            return np.zeros_like(x), mask
        cdt = compute_dtype(x.dtype)
        y = x.astype(cdt) * mask * cdt.type(1.0 / (1.0 - r))
        return y.astype(x.dtype), mask

    return run
