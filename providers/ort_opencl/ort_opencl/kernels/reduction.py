"""Reductions (Reduce*, ArgMax/ArgMin) and Softmax/LogSoftmax/Hardmax.

A reduction runs one work-item per output element: the kept dimensions locate it, a loop walks the
reduced ones (both sets merged where contiguous and passed as strides). Softmax-like ops run one
work-item per row of the normalized axis.
"""

from __future__ import annotations

import numpy as np

from ort_core import ops

from ._common import (
    CTYPE,
    FLOATS,
    MAXR,
    builder,
    checks,
    compute_type,
    contiguous,
    device_of,
    elem_strides,
    host_ints,
    load,
    merge_dims,
    pad_args,
    pragmas,
    rank_check,
    store,
    too_deep,
)

I32, I64 = np.dtype(np.int32), np.dtype(np.int64)

# op: (axes-as-input since, input types, init, update (acc, v), final (acc, n))
REDUCE = {
    "ReduceSum": (13, FLOATS | {I32, I64}, "0", "acc += v;", "acc"),
    "ReduceMean": (18, FLOATS, "0", "acc += v;", "acc / (ACC)n"),
    "ReduceMax": (
        18,
        FLOATS | {I32, I64},
        "LOWEST",
        "acc = (v > acc || isnan_(v)) ? v : acc;",
        "acc",
    ),
    "ReduceMin": (
        18,
        FLOATS | {I32, I64},
        "HIGHEST",
        "acc = (v < acc || isnan_(v)) ? v : acc;",
        "acc",
    ),
    "ReduceProd": (18, FLOATS | {I32, I64}, "1", "acc *= v;", "acc"),
    "ReduceL1": (18, FLOATS, "0", "acc += fabs(v);", "acc"),
    "ReduceL2": (18, FLOATS, "0", "acc += v * v;", "sqrt(acc)"),
    "ReduceSumSquare": (18, FLOATS, "0", "acc += v * v;", "acc"),
    "ReduceLogSum": (18, FLOATS, "0", "acc += v;", "log(acc)"),
    "ReduceLogSumExp": (18, FLOATS, "0", "", ""),
}

_LIMITS = {
    "float": ("-INFINITY", "INFINITY"),
    "int": ("INT_MIN", "INT_MAX"),
    "long": ("LONG_MIN", "LONG_MAX"),
}


def _walk(prefix: str, var: str, idx: str) -> str:
    return "".join(
        f"  if ({k} < {prefix}rank) {{ long c = {var} % {prefix}d{k}; {var} /= {prefix}d{k}; "
        f"{idx} += c * {prefix}s{k}; }}\n"
        for k in reversed(range(MAXR))
    )


def _reduce_source(op: str, dt: np.dtype, out_dt: np.dtype) -> str:
    _, _, init, update, final = REDUCE[op]
    ct = compute_type(dt)
    lo, hi = _LIMITS[ct]
    isnan = "isnan(v)" if ct == "float" else "0"
    if op == "ReduceLogSumExp":
        body = f"""
  ACC m = -INFINITY;
  for (long j = 0; j < n; ++j) {{ long q = j, off = base;
{_walk("r", "q", "off")}    ACC v = {load(dt, "x", "off")}; m = (v > m) ? v : m; }}
  if (!isfinite(m)) m = 0;
  ACC acc = 0;
  for (long j = 0; j < n; ++j) {{ long q = j, off = base;
{_walk("r", "q", "off")}    ACC v = {load(dt, "x", "off")}; acc += exp(v - m); }}
  {store(out_dt, "y", "gid", "log(acc) + m")}"""
    else:
        body = f"""
  ACC acc = {init};
  for (long j = 0; j < n; ++j) {{ long q = j, off = base;
{_walk("r", "q", "off")}    ACC v = {load(dt, "x", "off")}; {update} }}
  {store(out_dt, "y", "gid", final)}"""
    dims = lambda p: ", ".join(f"long {p}d{k}" for k in range(MAXR))  # noqa: E731
    sts = lambda p: ", ".join(f"long {p}s{k}" for k in range(MAXR))  # noqa: E731
    return (
        pragmas(dt)
        + f"#define ACC {ct}\n#define LOWEST {lo}\n#define HIGHEST {hi}\n#define isnan_(v) {isnan}\n"
        + f"""
__kernel void reduce(__global {CTYPE[out_dt]}* y, __global const {CTYPE[dt]}* x, long ox, long nout,
                     int krank, {dims("k")}, {sts("k")}, int rrank, {dims("r")}, {sts("r")},
                     long n) {{
  long gid = get_global_id(0);
  if (gid >= nout) return;
  long p = gid, base = ox;
{_walk("k", "p", "base")}{body}
}}
"""
    )


_REDUCE_ARGS = (
    [None, None, np.int64, np.int64, np.int32]
    + [np.int64] * (2 * MAXR)
    + [np.int32]
    + [np.int64] * (2 * MAXR)
    + [np.int64]
)


def _axes_of(axes, rank: int, noop: int, op: str = ""):
    if axes is None or len(axes) == 0:
        return [] if noop else list(range(rank))
    return sorted(set(ops.normalize_axes(axes, rank, op, unique=False)))


def reduce_walk(dev, kern, x, axes, keepdims, out_dt):
    """Run a reduce-shaped kernel: one work-item per output element over ``axes`` of ``x``."""
    rank = x.ndim
    st = elem_strides(x)
    kept = [i for i in range(rank) if i not in axes]
    out_shape = (
        [1 if i in axes else d for i, d in enumerate(x.shape)]
        if keepdims
        else [x.shape[i] for i in kept]
    )
    y = dev.empty(out_shape, out_dt)
    if y.size == 0:
        return y
    kd, (ks,) = merge_dims([x.shape[i] for i in kept], [[st[i] for i in kept]])
    rd, (rs,) = merge_dims([x.shape[i] for i in axes], [[st[i] for i in axes]])
    if len(kd) > MAXR or len(rd) > MAXR:
        raise too_deep(max(len(kd), len(rd)))
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    xb, xo = dev.buf(x)
    yb, _ = dev.buf(y)
    dev.launch(
        kern, (y.size,), None, yb, xb, xo, y.size,
        len(kd), *pad_args(kd, 1), *pad_args(ks, 0),
        len(rd), *pad_args(rd, 1), *pad_args(rs, 0), n,
    )  # fmt: skip
    return y


def _reduce_builder(op, input_since):
    def build(info):
        dev = device_of(info)
        keepdims = int(info.attr("keepdims", 1))
        noop = int(info.attr("noop_with_empty_axes", 0))
        attr_axes = info.attr("axes")
        axes_input = info.opset >= input_since
        kernels = {}

        def run(x, axes=None):
            dt = np.dtype(x.dtype)
            k = kernels.get(dt)
            if k is None:
                k = kernels[dt] = dev.kernel(_reduce_source(op, dt, dt), "reduce", _REDUCE_ARGS)
            ax = (None if axes is None else host_ints(axes)) if axes_input else attr_axes
            ax = _axes_of(ax, x.ndim, noop, op)
            return reduce_walk(dev, k, x, ax, keepdims, dt)

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op, (_in_since, _types, *_rest) in REDUCE.items():
    _versions = sorted({1, 11, 13, _in_since, 18, 20})
    _versions = [v for v in _versions if v <= 20]
    builder(
        _op,
        since=_versions,
        dtypes={0: _types},
        attributes=["axes", "keepdims", "noop_with_empty_axes"],
        check=checks(rank_check()),
        host_inputs=(1,),
    )(_reduce_builder(_op, _in_since))


# -- ArgMax / ArgMin -------------------------------------------------------------------------------
def _arg_source(dt: np.dtype, op: str, last: bool) -> str:
    cmp = ">" if op == "ArgMax" else "<"
    if last:
        cmp += "="
    return (
        pragmas(dt)
        + f"""
__kernel void arg(__global long* y, __global const {CTYPE[dt]}* x, long ox, long nout, long n,
                  long inner) {{
  long gid = get_global_id(0);
  if (gid >= nout) return;
  long o = gid / inner, i = gid % inner, base = ox + o * n * inner + i;
  {compute_type(dt)} best = {load(dt, "x", "base")};
  long at = 0;
  for (long j = 1; j < n; ++j) {{
    {compute_type(dt)} v = {load(dt, "x", "base + j * inner")};
    if (v {cmp} best) {{ best = v; at = j; }}
  }}
  y[gid] = at;
}}
"""
    )


def _arg_builder(op):
    def build(info):
        dev = device_of(info)
        axis = int(info.attr("axis", 0))
        keepdims = int(info.attr("keepdims", 1))
        last = bool(info.attr("select_last_index", 0))
        kernels = {}

        def run(x):
            dt = np.dtype(x.dtype)
            k = kernels.get(dt)
            if k is None:
                k = kernels[dt] = dev.kernel(
                    _arg_source(dt, op, last),
                    "arg",
                    [None, None, np.int64, np.int64, np.int64, np.int64],
                )
            x = contiguous(dev, x)
            a = ops.normalize_axis(axis, x.ndim, op)
            n = x.shape[a]
            inner = int(np.prod(x.shape[a + 1 :], dtype=np.int64))
            shape = list(x.shape)
            if keepdims:
                shape[a] = 1
            else:
                del shape[a]
            y = dev.empty(shape, np.int64)
            if y.size == 0:
                return y
            if n == 0:
                raise ValueError(f"{op} over an empty axis")
            xb, xo = dev.buf(x)
            yb, _ = dev.buf(y)
            dev.launch(k, (y.size,), None, yb, xb, xo, y.size, n, inner)
            return y

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op in ("ArgMax", "ArgMin"):
    builder(
        _op,
        since=(1, 11, 12, 13),
        dtypes=FLOATS | {I32, I64},
        attributes=["axis", "keepdims", "select_last_index"],
        check=checks(),
    )(_arg_builder(_op))


# -- Softmax family ------------------------------------------------------------------------------
def _softmax_source(op: str, dt: np.dtype) -> str:
    ct = compute_type(dt)
    if op == "Hardmax":
        body = f"""
  long at = 0; {ct} best = {load(dt, "x", "base")};
  for (long l = 1; l < n; ++l) {{ {ct} v = {load(dt, "x", "base + l * inner")}; if (v > best) {{ best = v; at = l; }} }}
  for (long l = 0; l < n; ++l) {{ {store(dt, "y", "yb + l * inner", "l == at ? 1 : 0")} }}"""
    else:
        final = "exp(v - m) / s" if op == "Softmax" else "v - m - log(s)"
        body = f"""
  {ct} m = -INFINITY;
  for (long l = 0; l < n; ++l) {{ {ct} v = {load(dt, "x", "base + l * inner")}; m = v > m ? v : m; }}
  {ct} s = 0;
  for (long l = 0; l < n; ++l) {{ {ct} v = {load(dt, "x", "base + l * inner")}; s += exp(v - m); }}
  for (long l = 0; l < n; ++l) {{ {ct} v = {load(dt, "x", "base + l * inner")}; {store(dt, "y", "yb + l * inner", final)} }}"""
    return (
        pragmas(dt)
        + f"""
__kernel void softmax(__global {CTYPE[dt]}* y, __global const {CTYPE[dt]}* x, long ox, long rows,
                      long n, long inner) {{
  long gid = get_global_id(0);
  if (gid >= rows) return;
  long o = gid / inner, i = gid % inner;
  long base = ox + o * n * inner + i, yb = o * n * inner + i;
{body}
}}
"""
    )


def _softmax_builder(op):
    def build(info):
        dev = device_of(info)
        legacy = info.opset < 13
        axis = int(info.attr("axis", 1 if legacy else -1))
        kernels = {}

        def run(x):
            dt = np.dtype(x.dtype)
            k = kernels.get(dt)
            if k is None:
                k = kernels[dt] = dev.kernel(
                    _softmax_source(op, dt),
                    "softmax",
                    [None, None, np.int64, np.int64, np.int64, np.int64],
                )
            x = contiguous(dev, x)
            y = dev.empty(x.shape, dt)
            if y.size == 0:
                return y
            a = ops.normalize_axis(axis, x.ndim, op)
            if legacy:
                outer = int(np.prod(x.shape[:a], dtype=np.int64))
                n, inner = y.size // outer, 1
            else:
                n = x.shape[a]
                inner = int(np.prod(x.shape[a + 1 :], dtype=np.int64))
                outer = y.size // (n * inner)
            xb, xo = dev.buf(x)
            yb, _ = dev.buf(y)
            dev.launch(k, (outer * inner,), None, yb, xb, xo, outer * inner, n, inner)
            return y

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    builder(_op, since=(1, 11, 13), dtypes=FLOATS, attributes=["axis"], check=checks())(
        _softmax_builder(_op)
    )
