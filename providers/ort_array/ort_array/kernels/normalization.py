"""Normalization kernels: Softmax, LogSoftmax and Hardmax (the opset < 13 form flattens to 2-D at
``axis``; from 13 they work along ``axis``), LayerNormalization, RMSNormalization,
InstanceNormalization, inference-mode BatchNormalization, GroupNormalization,
LpNormalization, MeanVarianceNormalization and LRN.

Statistics are computed in float32 for float16/bfloat16 (float64 stays float64), or in the
``stash_type`` precision where the op has one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort_core._onnx import helper
from ort_core.errors import InvalidArgument
from ort_core.ops import normalize_axes, normalize_axis
from ort_core.provider import FLOAT_TYPES

from .. import _xp
from .._table import builder, kernel
from .._xp import cast, device, namespace, widened
from ..checks import all_of, axes_check, axis_check


# -- Softmax family ------------------------------------------------------------------------------
def _softmax(xp: Any, w: Any, axis: int) -> Any:
    e = xp.exp(w - xp.max(w, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax(xp: Any, w: Any, axis: int) -> Any:
    d = w - xp.max(w, axis=axis, keepdims=True)
    return d - xp.log(xp.sum(xp.exp(d), axis=axis, keepdims=True))


def _hardmax(xp: Any, w: Any, axis: int) -> Any:
    first = xp.argmax(w, axis=axis, keepdims=True)  # the first maximum, as ONNX asks
    n = w.shape[axis]
    pos = xp.reshape(xp.arange(n, device=device(w)), (n,) + (1,) * (w.ndim - axis - 1))
    return xp.astype(first == pos, w.dtype)


def _along_axis(op: str, fn: Any, legacy: bool) -> Any:
    def run(x, axis=1 if legacy else -1):
        xp = namespace(x)
        if math.prod(x.shape) == 0:
            return xp.asarray(x, copy=True)
        w = widened(xp, x)
        if w.ndim == 0:
            w = xp.reshape(w, (1,))
        axis = normalize_axis(axis, w.ndim, op)
        if legacy:  # opset < 13: flatten to 2-D at `axis`, work along the second dimension
            y = fn(xp, xp.reshape(w, (math.prod(w.shape[:axis]), -1)), 1)
        else:
            y = fn(xp, w, axis)
        return cast(xp, xp.reshape(y, x.shape), x.dtype)

    run.__name__ = run.__qualname__ = f"{op.lower()}{'_legacy' if legacy else ''}"
    return run


for _op, _fn in (("Softmax", _softmax), ("LogSoftmax", _log_softmax), ("Hardmax", _hardmax)):
    kernel(_op, 1, dtypes=FLOAT_TYPES, check=axis_check(default=1))(_along_axis(_op, _fn, True))
    kernel(_op, 13, dtypes=FLOAT_TYPES, check=axis_check(default=-1))(_along_axis(_op, _fn, False))


# -- Layer / RMS / Instance normalization -----------------------------------------------------------
def _stash(xp: Any, stash_type: int, x: Any) -> Any:
    """The statistics' type: float64 when stash_type or the data says so (onnxruntime computes
    double data in double), float32 otherwise."""
    wide = np.dtype(helper.tensor_dtype_to_np_dtype(stash_type)) == np.float64
    if wide or _xp.kind(xp, x.dtype) == "f" and _xp.np_dtype(x.dtype) == np.float64:
        return _xp.dtype(xp, np.float64)
    return xp.float32


@builder("LayerNormalization", 17, dtypes={0: FLOAT_TYPES}, check=axis_check(default=-1),
         attributes=("axis", "epsilon", "stash_type"))  # fmt: skip
def layer_normalization(info):
    axis_attr = int(info.attr("axis", -1))
    epsilon = float(info.attr("epsilon", 1e-5))
    stash_type = int(info.attr("stash_type", 1))
    out_type = np.dtype(helper.tensor_dtype_to_np_dtype(stash_type))

    def run(x, scale, b=None):
        xp = namespace(x)
        sdt = _stash(xp, stash_type, x)
        w = xp.astype(x, sdt)
        axes = tuple(range(normalize_axis(axis_attr, x.ndim, "LayerNormalization"), x.ndim))
        mean = xp.mean(w, axis=axes, keepdims=True)
        d = w - mean
        inv_std = 1 / xp.sqrt(xp.mean(d * d, axis=axes, keepdims=True) + epsilon)
        y = d * inv_std * xp.astype(scale, sdt)
        if b is not None:
            y = y + xp.astype(b, sdt)
        out = _xp.dtype(xp, out_type)
        return cast(xp, y, x.dtype), xp.astype(mean, out), xp.astype(inv_std, out)

    return run


@kernel("RMSNormalization", 23, dtypes=FLOAT_TYPES, check=axis_check(default=-1))
def rms_normalization(x, scale, axis=-1, epsilon=1e-5, stash_type=1):
    xp = namespace(x)
    w = xp.astype(x, _stash(xp, stash_type, x))
    axes = tuple(range(normalize_axis(axis, x.ndim, "RMSNormalization"), x.ndim))
    y = w / xp.sqrt(xp.mean(w * w, axis=axes, keepdims=True) + epsilon) * xp.astype(scale, w.dtype)
    return cast(xp, y, x.dtype)


def _per_channel(xp: Any, p: Any, x: Any, dt: Any) -> Any:
    """A per-channel parameter shaped to broadcast against (N, C, ...) ``x``; one with more than
    C values is per activation (BatchNormalization with spatial=0 before opset 9)."""
    p = xp.astype(p, dt)
    if x.ndim < 2:
        return p
    if math.prod(p.shape) == x.shape[1]:
        return xp.reshape(p, (-1,) + (1,) * (x.ndim - 2))
    return xp.reshape(p, tuple(x.shape[1:]))


@kernel("InstanceNormalization", (1, 6, 22), dtypes=FLOAT_TYPES)
def instance_normalization(x, scale, b, epsilon=1e-5, consumed_inputs=None):
    xp = namespace(x)
    w = widened(xp, x)
    axes = tuple(range(2, x.ndim))
    mean = xp.mean(w, axis=axes, keepdims=True)
    d = w - mean
    var = xp.mean(d * d, axis=axes, keepdims=True)
    y = d / xp.sqrt(var + epsilon) * _per_channel(xp, scale, x, w.dtype)
    return cast(xp, y + _per_channel(xp, b, x, w.dtype), x.dtype)


def _training(info) -> bool:
    if info.opset < 7:
        return not info.attr("is_test", 0)
    if info.opset < 14:
        return info.num_outputs > 1
    return bool(info.attr("training_mode", 0))


def _bn_limit(info) -> str | None:
    if _training(info):
        return "the shared BatchNormalization computes inference mode only (no batch statistics)"
    return None


@builder("BatchNormalization", (1, 6, 7, 9, 14, 15), dtypes={0: FLOAT_TYPES}, limit=_bn_limit)
def batch_normalization(info):
    epsilon = float(info.attr("epsilon", 1e-5))

    def run(x, scale, bias, mean, var):
        xp = namespace(x)
        w = widened(xp, x)
        a = _per_channel(xp, scale, x, w.dtype) / xp.sqrt(
            _per_channel(xp, var, x, w.dtype) + epsilon
        )
        y = (w - _per_channel(xp, mean, x, w.dtype)) * a + _per_channel(xp, bias, x, w.dtype)
        return (cast(xp, y, x.dtype),)

    return run


# -- GroupNormalization ------------------------------------------------------------------------------
def _groups_check(info) -> str | None:
    groups, shape = info.attr("num_groups"), info.input_shape(0)
    if groups is None or int(groups) <= 0:
        return f"num_groups must be a positive integer, got {groups}"
    if shape is not None and len(shape) > 1 and isinstance(shape[1], int) and shape[1] % groups:
        return f"num_groups {groups} does not divide the {shape[1]} channels"
    return None


def _group_norm(x, scale, bias, num_groups: int, epsilon: float, per_channel: bool, sdt: Any):
    """Statistics over each group of channels (and the spatial axes); scale and bias per channel
    (opset 21) or per group (opset 18)."""
    xp = namespace(x)
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise InvalidArgument(
            f"GroupNormalization: num_groups {num_groups} does not divide the {c} channels."
        )
    want = c if per_channel else num_groups
    for name, p in (("scale", scale), ("bias", bias)):
        if math.prod(p.shape) != want:
            raise InvalidArgument(
                f"GroupNormalization: {name} has {math.prod(p.shape)} values, expected {want}."
            )
    if math.prod(x.shape) == 0:
        return xp.asarray(x, copy=True)
    spatial = math.prod(x.shape[2:])
    w = xp.reshape(xp.astype(x, sdt), (n, num_groups, (c // num_groups) * spatial))
    mean = xp.mean(w, axis=2, keepdims=True)
    d = w - mean
    y = d / xp.sqrt(xp.mean(d * d, axis=2, keepdims=True) + epsilon)
    rows = (n, c, spatial) if per_channel else (n, num_groups, (c // num_groups) * spatial)
    y = xp.reshape(y, rows)
    y = y * xp.reshape(xp.astype(scale, sdt), (-1, 1)) + xp.reshape(xp.astype(bias, sdt), (-1, 1))
    return cast(xp, xp.reshape(y, x.shape), x.dtype)


@kernel("GroupNormalization", 18, dtypes=FLOAT_TYPES, check=_groups_check)
def group_normalization_18(x, scale, bias, num_groups=0, epsilon=1e-5):
    xp = namespace(x)
    return _group_norm(x, scale, bias, num_groups, epsilon, False, widened(xp, x).dtype)


@kernel("GroupNormalization", 21, dtypes=FLOAT_TYPES, check=_groups_check)
def group_normalization(x, scale, bias, num_groups=0, epsilon=1e-5, stash_type=1):
    sdt = _stash(namespace(x), stash_type, x)
    return _group_norm(x, scale, bias, num_groups, epsilon, True, sdt)


# -- LpNormalization, MeanVarianceNormalization, LRN --------------------------------------------------
def _p_check(info) -> str | None:
    p = info.attr("p", 2)
    return None if p in (1, 2) else f"p must be 1 or 2, got {p}"


@kernel("LpNormalization", (1, 22), dtypes=FLOAT_TYPES,
        check=all_of(axis_check(default=-1), _p_check))  # fmt: skip
def lp_normalization(x, axis=-1, p=2):
    xp = namespace(x)
    w = widened(xp, x)
    axis = normalize_axis(axis, x.ndim, "LpNormalization")
    if p == 1:
        norm = xp.sum(xp.abs(w), axis=axis, keepdims=True)
    else:
        norm = xp.sqrt(xp.sum(w * w, axis=axis, keepdims=True))
    zero = norm == 0  # an all-zero slice stays zero, as onnxruntime leaves it
    y = xp.where(zero, xp.zeros_like(w), w / xp.where(zero, xp.ones_like(norm), norm))
    return cast(xp, y, x.dtype)


@kernel("MeanVarianceNormalization", (9, 13), dtypes=FLOAT_TYPES, check=axes_check())
def mean_variance_normalization(x, axes=(0, 2, 3)):
    xp = namespace(x)
    w = widened(xp, x)
    axes = normalize_axes(axes, x.ndim, "MeanVarianceNormalization")
    d = w - xp.mean(w, axis=axes, keepdims=True)
    std = xp.sqrt(xp.mean(d * d, axis=axes, keepdims=True))
    return cast(xp, d / (std + 1e-9), x.dtype)  # ONNX's function body adds 1e-9 to the std


def _lrn_check(info) -> str | None:
    size = info.attr("size")
    if size is None or int(size) < 1:
        return f"size must be a positive integer, got {size}"
    shape = info.input_shape(0)
    if shape is not None and len(shape) < 2:
        return f"the input must have rank >= 2 (N, C, ...), got rank {len(shape)}"
    return None


@kernel("LRN", (1, 13), dtypes=FLOAT_TYPES, check=_lrn_check)
def lrn(x, size=0, alpha=1e-4, beta=0.75, bias=1.0):
    """Across channels: the squares of channels [c - (size-1)//2, c + ceil((size-1)/2)] summed
    (an even size too, as the spec has it; onnxruntime takes odd sizes only)."""
    xp = namespace(x)
    w = widened(xp, x)
    c = x.shape[1]
    lo = (size - 1) // 2
    hi = size - 1 - lo

    def zeros(k: int) -> Any:
        return xp.zeros((x.shape[0], k, *x.shape[2:]), dtype=w.dtype, device=device(w))

    padded = xp.concat([zeros(lo), w * w, zeros(hi)], axis=1)
    total = padded[:, 0:c, ...]
    for k in range(1, size):  # the window's offsets (a handful), each a whole-tensor add
        total = total + padded[:, k : k + c, ...]
    return cast(xp, w / (total * (alpha / size) + bias) ** beta, x.dtype)
