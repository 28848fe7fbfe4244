"""Gather and GatherElements: one work-item per output element reading an index from the device
(negative indices count from the end, as ONNX says). Elements move by size, so every type works."""

from __future__ import annotations

import math

import numpy as np

from ort_core import ops

from ._common import ANY, BYTES, builder, contiguous, device_of

_GATHER_SRC = """
__kernel void gather(__global T* y, __global const T* x, long ox, __global const I* idx, long oi,
                     long total, long nidx, long inner, long axis_dim) {
  long gid = get_global_id(0);
  if (gid >= total) return;
  const long i = gid % inner;
  long t = gid / inner;
  const long j = t % nidx, o = t / nidx;
  long k = idx[oi + j];
  if (k < 0) k += axis_dim;
  y[gid] = (k >= 0 && k < axis_dim) ? x[ox + (o * axis_dim + k) * inner + i] : 0;
}
"""
_ARGS = [None, None, np.int64, None, np.int64, np.int64, np.int64, np.int64, np.int64]
_INDEX = {np.dtype(np.int32): "int", np.dtype(np.int64): "long"}


def _source(itemsize, idx_dtype):
    return f"#define T {BYTES[itemsize]}\n#define I {_INDEX[np.dtype(idx_dtype)]}\n" + _GATHER_SRC


@builder("Gather", since=(1, 11, 13), dtypes={0: ANY, 1: set(_INDEX)}, attributes=["axis"])
def gather(info):
    dev = device_of(info)
    axis_attr = int(info.attr("axis", 0))

    def run(x, indices):
        x, indices = contiguous(dev, x), contiguous(dev, indices)
        axis = ops.normalize_axis(axis_attr, x.ndim, "Gather")
        shape = [*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]]
        y = dev.empty(shape, x.dtype)
        if y.size:
            k = dev.kernel(_source(x.dtype.itemsize, indices.dtype), "gather", _ARGS)
            xb, xo = dev.buf(x)
            ib, io = dev.buf(indices)
            dev.launch(
                k, (y.size,), None, dev.buf(y)[0], xb, xo, ib, io, y.size, indices.size,
                math.prod(x.shape[axis + 1 :]), x.shape[axis],
            )  # fmt: skip
        return y

    return run
