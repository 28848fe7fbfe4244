"""Pooling: MaxPool, AveragePool (one work-item per output cell looping over its window, 1 to 3
spatial axes; the window arithmetic from ``ort_core.ops``) and the global pools (a reduction over
the spatial axes)."""

from __future__ import annotations

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
from .conv import spatial_limit, to3
from .reduction import reduce_walk

_POOL_SRC = """
__kernel void pool(__global {T}* y, __global const {T}* x, long ox, long nout,
                   int ID, int IH, int IW, int OD, int OH, int OW, int KD, int KH, int KW,
                   int SD, int SH, int SW, int DD, int DH, int DW, int PD, int PH, int PW,
                   int ED, int EH, int EW, int include_pad) {{
  long gid = get_global_id(0);
  if (gid >= nout) return;
  const int ow = gid % OW; long t = gid / OW;
  const int oh = t % OH; t /= OH;
  const int od = t % OD; const long nc = t / OD;
  const long base = ox + nc * ID * IH * IW;
  {CT} acc = {init};
  int valid = 0, padded = 0;
  for (int a = 0; a < KD; ++a) {{
    const int id = od * SD - PD + a * DD;
    for (int b = 0; b < KH; ++b) {{
      const int ih = oh * SH - PH + b * DH;
      for (int c = 0; c < KW; ++c) {{
        const int iw = ow * SW - PW + c * DW;
        if (id >= -PD && id < ID + ED && ih >= -PH && ih < IH + EH && iw >= -PW && iw < IW + EW)
          ++padded;
        if (id < 0 || id >= ID || ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
        const {CT} v = {load_x};
        ++valid;
        {update}
      }}
    }}
  }}
  {store_y}
}}
"""


def _pool_source(dt, op):
    if op == "MaxPool":
        init, update, final = "-INFINITY", "acc = (v > acc || isnan(v)) ? v : acc;", "acc"
    else:
        init, update = "0", "acc += v;"
        final = "acc / (include_pad ? padded : valid)"
    return pragmas(dt) + _POOL_SRC.format(
        T=CTYPE[dt],
        CT=compute_type(dt),
        init=init,
        update=update,
        load_x=load(dt, "x", "base + ((long)id * IH + ih) * IW + iw"),
        store_y=store(dt, "y", "gid", final),
    )


_POOL_ARGS = [None, None, np.int64, np.int64] + [np.int32] * 22


def _pool_check(info):
    reason = ops.pool_reason(info.attrs, info.input_shape(0))
    if reason:
        return reason
    if info.num_outputs > 1 and info.node.outputs[1]:
        return "the Indices output is not supported"
    if int(info.attr("storage_order", 0)):
        return "storage_order=1 is not supported"
    return spatial_limit(info)


def _pool_builder(op):
    def build(info):
        dev = device_of(info)
        window = ops.Window.from_attrs(info.attrs)
        window = window.resolve(len(window.kernel_shape))
        kernel, strides, dil = window.kernel_shape, window.strides, window.dilations
        include_pad = int(info.attr("count_include_pad", 0))
        multi = op == "MaxPool" and info.opset >= 8
        kernels = {}

        def run(x):
            dt = np.dtype(x.dtype)
            k = kernels.get(dt)
            if k is None:
                k = kernels[dt] = dev.kernel(_pool_source(dt, op), "pool", _POOL_ARGS)
            x = contiguous(dev, x)
            out, begin, end = window.geometry(x.shape[2:])
            y = dev.empty((*x.shape[:2], *out), dt)
            if y.size:
                xb, xo = dev.buf(x)
                yb, _ = dev.buf(y)
                dev.launch(
                    k, (y.size,), None, yb, xb, xo, y.size,
                    *to3(x.shape[2:], 1), *to3(out, 1), *to3(kernel, 1), *to3(strides, 1),
                    *to3(dil, 1), *to3(begin, 0), *to3(end, 0), include_pad,
                )  # fmt: skip
            return (y, None) if multi else y

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


_ATTRS = ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"]
builder(
    "MaxPool",
    since=(1, 8, 10, 11, 12, 22),
    dtypes=FLOATS,
    attributes=[*_ATTRS, "storage_order"],
    check=checks(_pool_check),
)(_pool_builder("MaxPool"))
builder(
    "AveragePool",
    since=(1, 7, 10, 11, 19, 22),
    dtypes=FLOATS,
    attributes=[*_ATTRS, "count_include_pad"],
    check=checks(_pool_check),
)(_pool_builder("AveragePool"))


def _global_builder(op):
    from .reduction import _REDUCE_ARGS, _reduce_source

    red = "ReduceMean" if op == "GlobalAveragePool" else "ReduceMax"

    def build(info):
        dev = device_of(info)
        kernels = {}

        def run(x):
            dt = np.dtype(x.dtype)
            k = kernels.get(dt)
            if k is None:
                k = kernels[dt] = dev.kernel(_reduce_source(red, dt, dt), "reduce", _REDUCE_ARGS)
            return reduce_walk(dev, k, x, list(range(2, x.ndim)), 1, dt)

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op in ("GlobalAveragePool", "GlobalMaxPool"):
    builder(_op, since=(1, 22), dtypes=FLOATS, attributes=[], check=checks())(_global_builder(_op))
