"""Normalization: BatchNormalization (inference), LayerNormalization, InstanceNormalization, LRN.

Batch norm is elementwise per channel; layer and instance norm run one work-item per normalized
row (mean and variance in two passes); LRN sums squares over a channel window per element.
"""

from __future__ import annotations

import math

import numpy as np

from ort_core import ops

from ._common import (
    CTYPE,
    FLOATS,
    builder,
    checks,
    compute_type,
    contiguous,
    device_of,
    load,
    pragmas,
    store,
)
from .shape_ops import expand_to

_BN_SRC = """
__kernel void bn(__global {T}* y, __global const {T}* x, long ox, long total, long C, long inner,
                 __global const {T}* sc, long osc, __global const {T}* b, long ob,
                 __global const {T}* mean, long om, __global const {T}* var, long ov, float eps) {{
  long gid = get_global_id(0);
  if (gid >= total) return;
  long c = (gid / inner) % C;
  {CT} v = {lx};
  {CT} r = ({lsc}) * (v - ({lm})) / sqrt(({lv}) + eps) + ({lb});
  {st}
}}
"""


def _bn_check(info):
    if int(info.attr("training_mode", 0)):
        return "training_mode=1 is not supported"
    if int(info.attr("spatial", 1)) != 1:
        return "spatial=0 is not supported"
    if any(info.node.outputs[1:]):
        return "the training outputs are not supported"
    return None


@builder(
    "BatchNormalization",
    since=(7, 9, 14, 15),
    dtypes={0: FLOATS},
    attributes=["epsilon", "momentum", "training_mode", "spatial", "is_test"],
    check=checks(_bn_check),
)
def batch_norm(info):
    dev = device_of(info)
    eps = float(info.attr("epsilon", 1e-5))
    kernels = {}

    def run(x, scale, b, mean, var):
        dt = np.dtype(x.dtype)
        if not all(np.dtype(t.dtype) == dt for t in (scale, b, mean, var)):
            raise ValueError("BatchNormalization: mixed element types are not supported")
        k = kernels.get(dt)
        if k is None:
            src = pragmas(dt) + _BN_SRC.format(
                T=CTYPE[dt], CT=compute_type(dt), lx=load(dt, "x", "ox + gid"),
                lsc=load(dt, "sc", "osc + c"), lm=load(dt, "mean", "om + c"),
                lv=load(dt, "var", "ov + c"), lb=load(dt, "b", "ob + c"),
                st=store(dt, "y", "gid", "r"),
            )  # fmt: skip
            k = kernels[dt] = dev.kernel(
                src, "bn", [None, None, np.int64, np.int64, np.int64, np.int64]
                + [None, np.int64] * 4 + [np.float32]
            )  # fmt: skip
        x = contiguous(dev, x)
        y = dev.empty(x.shape, dt)
        if y.size:
            c = x.shape[1] if x.ndim > 1 else 1
            inner = math.prod(x.shape[2:])
            args = []
            for t in (scale, b, mean, var):
                args += list(dev.buf(contiguous(dev, t)))
            xb, xo = dev.buf(x)
            dev.launch(k, (y.size,), None, dev.buf(y)[0], xb, xo, y.size, c, inner, *args, eps)
        return (y,)  # the schema declares several outputs; the others are declined above

    return run


_ROW_SRC = """
__kernel void rownorm(__global {T}* y, __global const {T}* x, long ox, long rows, long n,
                      __global const {T}* sc, long osc, __global const {T}* b, long ob, int has_b,
                      long C, int per_channel, float eps,
                      __global float* mean_out, __global float* inv_out, int stats) {{
  long row = get_global_id(0);
  if (row >= rows) return;
  const long base = ox + row * n;
  float s = 0;
  for (long j = 0; j < n; ++j) s += {lx};
  const float mu = s / n;
  float q = 0;
  for (long j = 0; j < n; ++j) {{ float d = {lx} - mu; q += d * d; }}
  const float inv = 1.0f / sqrt(q / n + eps);
  if (stats) {{ mean_out[row] = mu; inv_out[row] = inv; }}
  const long c = row % C;
  for (long j = 0; j < n; ++j) {{
    const long k = per_channel ? c : j;
    float r = ({lx} - mu) * inv * ({lsc});
    if (has_b) r += {lb};
    {st}
  }}
}}
"""


def _row_kernel(dev, kernels, dt):
    k = kernels.get(dt)
    if k is None:
        src = pragmas(dt) + _ROW_SRC.format(
            T=CTYPE[dt], lx=load(dt, "x", "base + j"), lsc=load(dt, "sc", "osc + k"),
            lb=load(dt, "b", "ob + k"), st=store(dt, "y", "row * n + j", "r"),
        )  # fmt: skip
        k = kernels[dt] = dev.kernel(
            src, "rownorm",
            [None, None, np.int64, np.int64, np.int64, None, np.int64, None, np.int64, np.int32,
             np.int64, np.int32, np.float32, None, None, np.int32],
        )  # fmt: skip
    return k


def _ln_check(info):
    if int(info.attr("stash_type", 1)) != 1:
        return "stash_type other than 1 (float) is not supported"
    return None


@builder(
    "LayerNormalization",
    since=17,
    dtypes={0: FLOATS},
    attributes=["axis", "epsilon", "stash_type"],
    check=checks(_ln_check),
)
def layer_norm(info):
    dev = device_of(info)
    axis_attr = int(info.attr("axis", -1))
    eps = float(info.attr("epsilon", 1e-5))
    kernels = {}

    def run(x, scale, b=None):
        dt = np.dtype(x.dtype)
        k = _row_kernel(dev, kernels, dt)
        x = contiguous(dev, x)
        axis = ops.normalize_axis(axis_attr, x.ndim, "LayerNormalization")
        norm_shape = x.shape[axis:]
        n = math.prod(norm_shape)
        rows = math.prod(x.shape[:axis])
        scale = (
            contiguous(dev, scale)
            if tuple(scale.shape) == tuple(norm_shape)
            else expand_to(dev, scale, norm_shape)
        )
        if b is not None and tuple(b.shape) != tuple(norm_shape):
            b = expand_to(dev, b, norm_shape)
        y = dev.empty(x.shape, dt)
        stat_shape = [*x.shape[:axis], *([1] * (x.ndim - axis))]
        mean = dev.empty(stat_shape, np.float32)
        inv = dev.empty(stat_shape, np.float32)
        if y.size and rows:
            xb, xo = dev.buf(x)
            sb, so = dev.buf(scale)
            bb, bo = dev.buf(b) if b is not None else (sb, 0)
            dev.launch(
                k, (rows,), None, dev.buf(y)[0], xb, xo, rows, n, sb, so, bb, bo,
                int(b is not None), 1, 0, eps, dev.buf(mean)[0], dev.buf(inv)[0], 1,
            )  # fmt: skip
        return y, mean, inv

    return run


@builder(
    "InstanceNormalization",
    since=(6, 22),
    dtypes={0: FLOATS},
    attributes=["epsilon"],
    check=checks(),
)
def instance_norm(info):
    dev = device_of(info)
    eps = float(info.attr("epsilon", 1e-5))
    kernels = {}

    def run(x, scale, b):
        dt = np.dtype(x.dtype)
        k = _row_kernel(dev, kernels, dt)
        x = contiguous(dev, x)
        c = x.shape[1]
        rows = x.shape[0] * c
        n = math.prod(x.shape[2:])
        y = dev.empty(x.shape, dt)
        if y.size:
            xb, xo = dev.buf(x)
            sb, so = dev.buf(contiguous(dev, scale))
            bb, bo = dev.buf(contiguous(dev, b))
            dummy = dev.buf(y)[0]
            dev.launch(
                k, (rows,), None, dev.buf(y)[0], xb, xo, rows, n, sb, so, bb, bo, 1, c, 1, eps,
                dummy, dummy, 0,
            )  # fmt: skip
        return y

    return run


_LRN_SRC = """
__kernel void lrn(__global {T}* y, __global const {T}* x, long ox, long total, long C, long inner,
                  int lo, int hi, float alpha_n, float beta, float bias) {{
  long gid = get_global_id(0);
  if (gid >= total) return;
  const long c = (gid / inner) % C;
  const long base = gid - c * inner;
  float s = 0;
  for (long k = c - lo; k <= c + hi; ++k) {{
    if (k < 0 || k >= C) continue;
    float v = {lk};
    s += v * v;
  }}
  float r = {lx} / pow(bias + alpha_n * s, beta);
  {st}
}}
"""


@builder(
    "LRN",
    since=(1, 13),
    dtypes=FLOATS,
    attributes=["alpha", "beta", "bias", "size"],
    check=checks(),
)
def lrn(info):
    dev = device_of(info)
    alpha = float(info.attr("alpha", 1e-4))
    beta = float(info.attr("beta", 0.75))
    bias = float(info.attr("bias", 1.0))
    size = int(info.attr("size"))
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    kernels = {}

    def run(x):
        dt = np.dtype(x.dtype)
        k = kernels.get(dt)
        if k is None:
            src = pragmas(dt) + _LRN_SRC.format(
                T=CTYPE[dt], lk=load(dt, "x", "ox + base + k * inner"), lx=load(dt, "x", "ox + gid"),
                st=store(dt, "y", "gid", "r"),
            )  # fmt: skip
            k = kernels[dt] = dev.kernel(
                src, "lrn", [None, None, np.int64, np.int64, np.int64, np.int64, np.int32,
                             np.int32, np.float32, np.float32, np.float32],
            )  # fmt: skip
        x = contiguous(dev, x)
        y = dev.empty(x.shape, dt)
        if y.size:
            xb, xo = dev.buf(x)
            dev.launch(
                k, (y.size,), None, dev.buf(y)[0], xb, xo, y.size, x.shape[1],
                math.prod(x.shape[2:]), lo, hi, alpha / size, beta, bias,
            )  # fmt: skip
        return y

    return run
