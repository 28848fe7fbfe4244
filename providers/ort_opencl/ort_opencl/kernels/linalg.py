"""MatMul and Gemm: one tiled kernel (TS x TS work-groups, both operands staged through local
memory) over operands given by strides, so transposes and broadcast batches need no copies.
Conv (conv.py) reuses the same tiling with the B tile gathered from the image (implicit im2col).
"""

from __future__ import annotations

import numpy as np

from ._common import (
    CTYPE,
    FLOATS,
    broadcast_strides,
    builder,
    checks,
    compute_type,
    device_of,
    elem_strides,
    load,
    pragmas,
    store,
)

TS = 16  # tile edge: a work-group computes a TS x TS block of C
WPT = 4  # each work-item computes WPT rows of its column (a TS*WPT x TS block per group)

_GEMM_TEMPLATE = """
#define TS {ts}
#define WPT {wpt}
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void {name}(__global {T}* C, long oc_, __global const {T}* A, long oa, long sam, long sak,
            __global const {T}* B, long ob, long sbk, long sbn,
            __global const {T}* Bias, long obias, long scm, long scn, int has_bias,
            __global const long* boffs, int M, int N, int K, {CT} alpha, {CT} beta{extra_args}) {{
  const int tx = get_local_id(0), ty = get_local_id(1);
  const int n = get_group_id(0) * TS + tx;
  const int m0 = get_group_id(1) * TS * WPT;
  const long batch = get_global_id(2);
  const long ba = oa + boffs[{bst} * batch], bb = ob + boffs[{bst} * batch + 1];
  const long bc = oc_ + boffs[{bst} * batch + 2];
  __local {CT} As[TS * WPT][TS + 1];
  __local {CT} Bs[TS][TS + 1];
  {CT} acc[WPT];
  for (int w = 0; w < WPT; ++w) acc[w] = 0;
  for (int k0 = 0; k0 < K; k0 += TS) {{
    const int ka = k0 + tx;
    for (int w = 0; w < WPT; ++w) {{
      const int m = m0 + ty + w * TS;
      As[ty + w * TS][tx] = (m < M && ka < K) ? {load_a} : 0;
    }}
    const int kb = k0 + ty;
    {b_prologue}
    Bs[ty][tx] = (kb < K && n < N) ? {load_b} : 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < TS; ++k) {{
      const {CT} bv = Bs[k][tx];
      for (int w = 0; w < WPT; ++w) acc[w] += As[ty + w * TS][k] * bv;
    }}
    barrier(CLK_LOCAL_MEM_FENCE);
  }}
  if (n >= N) return;
  for (int w = 0; w < WPT; ++w) {{
    const int m = m0 + ty + w * TS;
    if (m < M) {{
      {CT} r = alpha * acc[w];
      if (has_bias) r += beta * {load_bias};
      {store_c}
    }}
  }}
}}

__kernel void {name}_small(__global {T}* C, long oc_, __global const {T}* A, long oa, long sam,
            long sak, __global const {T}* B, long ob, long sbk, long sbn,
            __global const {T}* Bias, long obias, long scm, long scn, int has_bias,
            __global const long* boffs, int M, int N, int K, {CT} alpha, {CT} beta{extra_args}) {{
  const int n = get_global_id(0), m = get_global_id(1);
  const long batch = get_global_id(2);
  if (n >= N || m >= M) return;
  const long ba = oa + boffs[{bst} * batch], bb = ob + boffs[{bst} * batch + 1];
  const long bc = oc_ + boffs[{bst} * batch + 2];
  {CT} acc = 0;
  for (int kb = 0; kb < K; ++kb) {{
    const int ka = kb;
    {b_prologue}
    acc += {load_a} * {load_b};
  }}
  {CT} r = alpha * acc;
  if (has_bias) r += beta * {load_bias};
  {store_c}
}}
"""

GEMM_ARGS = [
    None,
    np.int64,
    None,
    np.int64,
    np.int64,
    np.int64,
    None,
    np.int64,
    np.int64,
    np.int64,
] + [None, np.int64, np.int64, np.int64, np.int32, None, np.int32, np.int32, np.int32]


def gemm_source(
    dt: np.dtype,
    name: str = "gemm",
    load_b: str | None = None,
    b_prologue: str = "",
    extra_args: str = "",
    bias_index: str = "obias + (long)m * scm + (long)n * scn",
    offsets_per_batch: int = 3,
) -> str:
    """The tiled GEMM kernel for element type ``dt``; ``load_b`` may replace the B-tile load (an
    expression of ``bb``, ``kb`` and ``n``) to gather B from somewhere else. ``boffs`` holds
    ``offsets_per_batch`` offsets per batch: A, B, C (and what ``bias_index`` reads)."""
    return pragmas(dt) + _GEMM_TEMPLATE.format(
        ts=TS,
        wpt=WPT,
        name=name,
        T=CTYPE[dt],
        CT=compute_type(dt),
        load_a=load(dt, "A", "ba + (long)m * sam + (long)ka * sak"),
        load_b=load_b or load(dt, "B", "bb + (long)kb * sbk + (long)n * sbn"),
        b_prologue=b_prologue,
        load_bias=load(dt, "Bias", bias_index),
        bst=offsets_per_batch,
        store_c=store(dt, "C", "bc + (long)m * N + n", "r"),
        extra_args=extra_args,
    )


SMALL_M = 16  # below this many rows the tiles would be mostly empty: one work-item per output


def gemm_grid(m: int, n: int, batches: int):
    """(global size, local size, kernel suffix) of a GEMM launch."""
    if m < SMALL_M:
        return (n, m, batches), None, "_small"
    gx = -(-n // TS) * TS
    gy = -(-m // (TS * WPT)) * TS
    return (gx, gy, batches), (TS, TS, 1), ""


class _Offsets:
    """Per-batch (a, b, c) element offsets uploaded once per shape."""

    def __init__(self, dev):
        self.dev = dev
        self.cache: dict[tuple, object] = {}

    def get(self, key, build):
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = self.dev.to_device(np.asarray(build(), np.int64).reshape(-1))
            self.dev.uploads -= 1  # bookkeeping of the kernel, not a copy of a tensor value
        return v


def _gemm_kernel(dev, kernels, dt, suffix):
    k = kernels.get((dt, suffix))
    if k is None:
        args = GEMM_ARGS + [_ct(dt), _ct(dt)]
        k = kernels[dt, suffix] = dev.kernel(gemm_source(dt), "gemm" + suffix, args)
    return k


def _ct(dt):
    return np.float32 if compute_type(dt) == "float" else np.float64


@builder("MatMul", since=(1, 9, 13), dtypes={0: FLOATS, 1: FLOATS}, attributes=[], check=checks())
def matmul(info):
    dev = device_of(info)
    offsets = _Offsets(dev)
    kernels = {}

    def run(a, b):
        dt = np.dtype(a.dtype)
        a_shape, b_shape = list(a.shape), list(b.shape)
        sa, sb = elem_strides(a), elem_strides(b)
        if a.ndim == 1:
            a_shape, sa = [1] + a_shape, [0] + sa
        if b.ndim == 1:
            b_shape, sb = b_shape + [1], sb + [0]
        m, ka = a_shape[-2:]
        kb, n = b_shape[-2:]
        if ka != kb:
            raise ValueError(f"MatMul: inner dimensions differ ({a.shape} x {b.shape})")
        batch = tuple(np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
        out_shape = [*batch, m, n]
        if a.ndim == 1:
            out_shape.pop(-2)
        if b.ndim == 1:
            out_shape.pop(-1)
        y = dev.empty(out_shape, dt)
        if y.size == 0:
            return y
        if ka == 0:
            return dev.fill(y, 0)
        nb = int(np.prod(batch, dtype=np.int64))

        def build():
            bsa = broadcast_strides(a_shape[:-2], sa[:-2], batch)
            bsb = broadcast_strides(b_shape[:-2], sb[:-2], batch)
            idx = np.indices(batch).reshape(len(batch), -1).T if batch else np.zeros((1, 0), int)
            return np.stack(
                [idx @ np.asarray(bsa, np.int64), idx @ np.asarray(bsb, np.int64),
                 np.arange(nb, dtype=np.int64) * m * n], axis=1
            )  # fmt: skip

        boffs = offsets.get((tuple(a_shape), tuple(sa), tuple(b_shape), tuple(sb)), build)
        ab, ao = dev.buf(a)
        bb_, bo = dev.buf(b)
        yb, yo = dev.buf(y)
        g, loc, suffix = gemm_grid(m, n, nb)
        k = _gemm_kernel(dev, kernels, dt, suffix)
        dev.launch(
            k, g, loc, yb, yo, ab, ao, sa[-2], sa[-1], bb_, bo, sb[-2], sb[-1],
            yb, 0, 0, 0, 0, boffs.base_data, m, n, ka, 1.0, 0.0,
        )  # fmt: skip
        return y

    return run


@builder(
    "Gemm",
    since=(7, 9, 11, 13),
    dtypes={0: FLOATS, 1: FLOATS},
    attributes=["alpha", "beta", "transA", "transB"],
    check=checks(),
)
def gemm(info):
    dev = device_of(info)
    alpha, beta = float(info.attr("alpha", 1.0)), float(info.attr("beta", 1.0))
    ta, tb = int(info.attr("transA", 0)), int(info.attr("transB", 0))
    offsets = _Offsets(dev)
    kernels = {}

    def run(a, b, c=None):
        dt = np.dtype(a.dtype)
        sa, sb = elem_strides(a), elem_strides(b)
        m, ka = (a.shape[1], a.shape[0]) if ta else a.shape
        kb, n = (b.shape[1], b.shape[0]) if tb else b.shape
        if ka != kb:
            raise ValueError(f"Gemm: inner dimensions differ ({a.shape}, {b.shape})")
        sam, sak = (sa[1], sa[0]) if ta else (sa[0], sa[1])
        sbk, sbn = (sb[1], sb[0]) if tb else (sb[0], sb[1])
        y = dev.empty((m, n), dt)
        if y.size == 0:
            return y
        boffs = offsets.get((), lambda: [0, 0, 0])
        ab, ao = dev.buf(a)
        bb_, bo = dev.buf(b)
        yb, yo = dev.buf(y)
        if c is not None and c.size:
            scm, scn = broadcast_strides(c.shape, elem_strides(c), (m, n))[-2:] if c.ndim >= 2 else (
                [0] + broadcast_strides(c.shape, elem_strides(c), (n,))
                if c.ndim == 1 else [0, 0]
            )  # fmt: skip
            cb, co = dev.buf(c)
            has = 1
        else:
            cb, co, scm, scn, has = yb, 0, 0, 0, 0
        g, loc, suffix = gemm_grid(m, n, 1)
        k = _gemm_kernel(dev, kernels, dt, suffix)
        dev.launch(
            k, g, loc, yb, yo, ab, ao, sam, sak, bb_, bo, sbk, sbn,
            cb, co, scm, scn, has, boffs.base_data, m, n, ka, alpha, beta,
        )  # fmt: skip
        return y

    return run
