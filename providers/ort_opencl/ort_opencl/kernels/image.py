"""Resize (nearest, linear, cubic; every coordinate transformation mode, ``axes`` and
keep_aspect_ratio_policy): separable, one pass per resized axis. Each pass gathers a few taps per
output position; the output sizes and each axis's tap table (indices and weights) come from
``ort_core.ops``, shared with every provider, and are uploaded once per table."""

from __future__ import annotations

import math

import numpy as np

from ort_core import ops

from ._common import (
    CTYPE,
    FLOATS,
    builder,
    checks,
    contiguous,
    device_of,
    load,
    pragmas,
    store,
)

_SRC = """
__kernel void resize_axis(__global {T}* y, __global const {T}* x, long ox, long total, long out_len,
                          long in_len, long inner, int taps, __global const long* idx,
                          __global const float* w, __global const uchar* outside, float extrap) {{
  long gid = get_global_id(0);
  if (gid >= total) return;
  const long i = gid % inner;
  long t = gid / inner;
  const long j = t % out_len, o = t / out_len;
  const long base = ox + o * in_len * inner + i;
  float acc = 0;
  for (int k = 0; k < taps; ++k) acc += w[j * taps + k] * {lx};
  if (outside[j]) acc = extrap;
  {st}
}}
"""
_ARGS = [
    None,
    None,
    np.int64,
    np.int64,
    np.int64,
    np.int64,
    np.int64,
    np.int32,
    None,
    None,
    None,
    np.float32,
]


def _check(info):
    """The spec's rules, shared with every provider (:func:`ort_core.ops.resize_reason`)."""
    shape = info.input_shape(0)
    rank = None if shape is None else len(shape)
    return ops.resize_reason(info.attrs, info.opset, info.node.op_type, rank)


def _upload(dev, table: ops.TapTable, out_len: int):
    """A tap table in the kernel's layout on the device: (taps, index, weight, outside)."""
    taps = table.index.shape[1]
    w = np.ones((out_len, taps), np.float32) if table.weight is None else table.weight
    outside = np.zeros(out_len, bool) if table.outside is None else table.outside
    return (
        taps,
        dev.to_device(np.ascontiguousarray(table.index, np.int64)),
        dev.to_device(np.ascontiguousarray(w, np.float32)),
        dev.to_device(outside.astype(np.uint8)),
    )


def _build(info):
    dev = device_of(info)
    attrs = ops.ResizeAttrs.from_attrs(info.attrs, info.opset, info.node.op_type)
    tables: dict[tuple, tuple] = {}  # per (in_len, out_len, scale, roi): the uploaded table
    kernels = {}

    def resize(x, scales, sizes, roi):
        dt = np.dtype(x.dtype)
        k = kernels.get(dt)
        if k is None:
            src = pragmas(dt) + _SRC.format(
                T=CTYPE[dt], lx=load(dt, "x", "base + idx[j * taps + k] * inner"),
                st=store(dt, "y", "gid", "acc"),
            )  # fmt: skip
            k = kernels[dt] = dev.kernel(src, "resize_axis", _ARGS)
        _, steps = ops.resize_plan(attrs, x.shape, scales, sizes, roi)
        cur = contiguous(dev, x)
        for step in steps:
            tab = tables.get(step[1:])
            if tab is None:
                tab = tables[step[1:]] = _upload(dev, ops.tap_table(attrs, step), step.out_len)
            taps, idx_d, w_d, out_d = tab
            shape = list(cur.shape)
            shape[step.axis] = step.out_len
            y = dev.empty(shape, dt)
            if y.size and cur.size:
                xb, xo = dev.buf(cur)
                dev.launch(
                    k, (y.size,), None, dev.buf(y)[0], xb, xo, y.size, step.out_len,
                    cur.shape[step.axis], math.prod(cur.shape[step.axis + 1 :]), taps,
                    idx_d.base_data, w_d.base_data, out_d.base_data, attrs.extrapolation_value,
                )  # fmt: skip
            cur = y
        return cur

    if info.opset < 11:
        return lambda x, scales: resize(x, scales, None, None)
    return lambda x, roi=None, scales=None, sizes=None: resize(x, scales, sizes, roi)


_ATTRS = ["mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
          "exclude_outside", "extrapolation_value", "antialias", "keep_aspect_ratio_policy", "axes"]  # fmt: skip
builder(
    "Resize",
    since=10,
    dtypes={0: FLOATS},
    attributes=["mode"],
    check=checks(_check),
    host_inputs=(1,),
)(_build)
builder(
    "Resize",
    since=(11, 13, 18, 19),
    dtypes={0: FLOATS},
    attributes=_ATTRS,
    check=checks(_check),
    host_inputs=(1, 2, 3),
)(_build)
