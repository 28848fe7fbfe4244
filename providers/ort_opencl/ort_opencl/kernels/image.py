"""Resize (nearest, linear, cubic; every coordinate transformation mode): separable, one pass per
resized axis. Each pass gathers a few taps per output position; the tap indices and weights of an
axis are computed once per shape on the host (float64, as the spec's formulas) and uploaded."""

from __future__ import annotations

import math

import numpy as np

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
_COORD = ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "half_pixel_symmetric",
          "tf_half_pixel_for_nn", "tf_crop_and_resize")  # fmt: skip


def _coords(mode, out_len, scale, in_len, roi):
    y = np.arange(out_len, dtype=np.float64)
    out_f = scale * in_len
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "align_corners":
        return (np.zeros(out_len) if out_f == 1 else y * (in_len - 1) / (out_f - 1)), None
    if mode == "pytorch_half_pixel":
        return (np.full(out_len, -0.5) if out_f == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel_symmetric":
        return in_len / 2 * (1 - out_len / out_f) + (y + 0.5) / scale - 0.5, None
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale, None
    start, end = (0.0, 1.0) if roi is None else roi
    if out_f == 1:
        x = np.full(out_len, (end - start) * (in_len - 1) / 2)
    else:
        x = y * (end - start) * (in_len - 1) / (out_f - 1)
    x = x + start * (in_len - 1)
    return x, (x < 0) | (x > in_len - 1)


def _table(cfg, out_len, scale, in_len, roi):
    x, outside = _coords(cfg["coord"], out_len, scale, in_len, roi)
    if cfg["mode"] == "nearest":
        fl = np.floor(x)
        frac = x - fl
        nm = cfg["nearest_mode"]
        if nm == "round_prefer_floor":
            idx = fl + (frac > 0.5)
        elif nm == "round_prefer_ceil":
            idx = fl + (frac >= 0.5)
        elif nm == "floor":
            idx = fl
        elif nm == "ceil":
            idx = np.ceil(x)
        else:  # opset 10: truncate when upsampling, ceil when downsampling
            idx = np.ceil(x) if scale < 1 else np.trunc(x)
        idx = np.clip(idx, 0, in_len - 1).astype(np.int64)[:, None]
        w = np.ones_like(idx, dtype=np.float64)
    else:
        support = 1.0 if cfg["mode"] == "linear" else 2.0
        s = min(scale, 1.0) if cfg["antialias"] else 1.0
        start = int(math.floor(-support / s)) + 1
        offsets = np.arange(start, 2 - start)
        fl = np.floor(x)
        frac = (x - fl)[:, None]
        idx = fl.astype(np.int64)[:, None] + offsets[None, :]
        d = np.abs((offsets[None, :] - frac) * s)
        if cfg["mode"] == "linear":
            w = np.clip(1 - d, 0, 1)
        else:
            a = cfg["cubic_coeff_a"]
            near = (a + 2) * d**3 - (a + 3) * d**2 + 1
            far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
            w = np.where(d <= 1, near, np.where(d < 2, far, 0.0))
        if cfg["antialias"]:
            w = w / w.sum(axis=1, keepdims=True)
        if cfg["exclude_outside"]:
            w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
            total = w.sum(axis=1, keepdims=True)
            w = w / np.where(total == 0, 1.0, total)
        idx = np.clip(idx, 0, in_len - 1)
    if outside is None:
        outside = np.zeros(out_len, bool)
    return idx, w.astype(np.float32), outside.astype(np.uint8)


def _plan(shape, scales, sizes, roi, cfg):
    rank = len(shape)
    roi_full = None
    if roi is not None and roi.size:
        r = roi.astype(np.float64).ravel()
        roi_full = [(r[i], r[rank + i]) for i in range(rank)]
    out, sc = list(shape), [1.0] * rank
    if scales is not None and scales.size:
        for a, s in enumerate(scales.tolist()):
            sc[a], out[a] = float(s), int(float(s) * shape[a])
    elif sizes is not None and sizes.size:
        for a, n in enumerate(sizes.tolist()):
            out[a], sc[a] = int(n), int(n) / shape[a]
        policy = cfg["policy"]
        if policy != "stretch":
            s = (min if policy == "not_larger" else max)(sc)
            sc = [s] * rank
            out = [int(s * d + 0.5) for d in shape]
    else:
        raise ValueError("Resize needs non-empty 'scales' or 'sizes'")
    return out, sc, roi_full


def _check(info):
    mode = info.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic") or (info.opset < 11 and mode == "cubic"):
        return f"mode {mode!r} is not supported"
    if info.opset >= 11 and info.attr("coordinate_transformation_mode", "half_pixel") not in _COORD:
        return "unknown coordinate_transformation_mode"
    if info.attr("axes") is not None:
        return "the axes attribute is not supported"
    if info.attr("keep_aspect_ratio_policy", "stretch") not in (
        "stretch",
        "not_larger",
        "not_smaller",
    ):
        return "unknown keep_aspect_ratio_policy"
    return None


def _build(info):
    dev = device_of(info)
    legacy = info.opset < 11
    mode = info.attr("mode", "nearest")
    cfg = {
        "mode": mode,
        "coord": "asymmetric"
        if legacy
        else info.attr("coordinate_transformation_mode", "half_pixel"),
        "nearest_mode": "simple" if legacy else info.attr("nearest_mode", "round_prefer_floor"),
        "cubic_coeff_a": float(info.attr("cubic_coeff_a", -0.75)),
        "exclude_outside": bool(info.attr("exclude_outside", 0)),
        "extrapolation_value": float(info.attr("extrapolation_value", 0.0)),
        "antialias": bool(info.attr("antialias", 0)) and mode != "nearest",
        "policy": info.attr("keep_aspect_ratio_policy", "stretch"),
    }
    tables: dict[tuple, tuple] = {}
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
        out, sc, roi_full = _plan(x.shape, scales, sizes, roi, cfg)
        cur = contiguous(dev, x)
        for a in range(x.ndim):
            r = None if roi_full is None else roi_full[a]
            trivial = r is None or (math.isclose(r[0], 0.0) and math.isclose(r[1], 1.0))
            if math.isclose(sc[a], 1.0) and out[a] == x.shape[a] and trivial:
                continue
            key = (a, out[a], sc[a], x.shape[a], r)
            tab = tables.get(key)
            if tab is None:
                idx, w, outside = _table(cfg, out[a], sc[a], x.shape[a], r)
                tab = tables[key] = (
                    idx.shape[1],
                    dev.to_device(idx),
                    dev.to_device(w),
                    dev.to_device(outside),
                )
            taps, idx_d, w_d, out_d = tab
            shape = list(cur.shape)
            shape[a] = out[a]
            y = dev.empty(shape, dt)
            if y.size and cur.size:
                xb, xo = dev.buf(cur)
                dev.launch(
                    k, (y.size,), None, dev.buf(y)[0], xb, xo, y.size, out[a], cur.shape[a],
                    math.prod(cur.shape[a + 1 :]), taps, idx_d.base_data, w_d.base_data,
                    out_d.base_data, cfg["extrapolation_value"],
                )  # fmt: skip
            cur = y
        return cur if cur is not x else contiguous(dev, x)

    if legacy:
        return lambda x, scales: resize(x, np.asarray(scales), None, None)

    def run(x, roi=None, scales=None, sizes=None):
        return resize(
            x,
            None if scales is None else np.asarray(scales),
            None if sizes is None else np.asarray(sizes),
            None if roi is None else np.asarray(roi),
        )

    return run


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
