"""Conv as an implicit GEMM: per (image, group), ``Y[M/g, P] = W[M/g, K] x cols[K, P]`` where the
tiled GEMM kernel of linalg.py gathers each B tile straight from the image (im2col without the
buffer). One to three spatial axes (1-D and 2-D run as 3-D with unit axes); strides, dilations,
pads, auto_pad and groups are kernel arguments, their values and the output size from
``ort_core.ops`` (shared with every provider).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ort_core import ops
from ort_core.errors import InvalidArgument

from ._common import FLOATS, builder, checks, compute_type, device_of, load
from .linalg import GEMM_ARGS, _Offsets, gemm_grid, gemm_source


def spatial_limit(info) -> str | None:
    """The kernels take 1 to 3 spatial axes."""
    shape = info.input_shape(0)
    if shape is not None and not 3 <= len(shape) <= 5:
        return f"input rank {len(shape)} (1 to 3 spatial axes are supported)"
    return None


def _conv_check(info) -> str | None:
    """The spec's window and channel rules (:func:`ort_core.ops.conv_reason`), then the rank."""
    reason = ops.conv_reason(info.attrs, info.input_shape(0), info.input_shape(1))
    return reason or spatial_limit(info)


def to3(values: Sequence[int], fill: int) -> list[int]:
    """Spatial values of 1 to 3 axes as 3 (leading unit axes)."""
    return [fill] * (3 - len(values)) + list(values)


_CONV_EXTRA = (
    ", int ID, int IH, int IW, int OH, int OW, int KD, int KH, int KW, int SD, int SH, int SW,"
    " int DD, int DH, int DW, int PD, int PH, int PW"
)
_CONV_PROLOGUE = """
    int c_ = 0, id_ = -1, ih_ = -1, iw_ = -1;
    if (kb < K && n < N) {
      const int kvol = KD * KH * KW, r = kb % kvol, r2 = r % (KH * KW);
      c_ = kb / kvol;
      const int ow_ = n % OW, t_ = n / OW, oh_ = t_ % OH, od_ = t_ / OH;
      id_ = od_ * SD - PD + (r / (KH * KW)) * DD;
      ih_ = oh_ * SH - PH + (r2 / KW) * DH;
      iw_ = ow_ * SW - PW + (r2 % KW) * DW;
    }
    const int inside_ = id_ >= 0 && id_ < ID && ih_ >= 0 && ih_ < IH && iw_ >= 0 && iw_ < IW;"""


def conv_source(dt: np.dtype) -> str:
    idx = "bb + (((long)c_ * ID + id_) * IH + ih_) * IW + iw_"
    return gemm_source(
        dt,
        name="conv",
        load_b=f"(inside_ ? {load(dt, 'B', idx)} : 0)",
        b_prologue=_CONV_PROLOGUE,
        extra_args=_CONV_EXTRA,
        bias_index="obias + boffs[4 * batch + 3] + m",
        offsets_per_batch=4,
    )


CONV_ARGS = GEMM_ARGS + [np.float32, np.float32] + [np.int32] * 17


@builder(
    "Conv",
    since=(1, 11, 22),
    dtypes={0: FLOATS, 1: FLOATS},
    attributes=["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
    check=checks(_conv_check),
)
def conv(info):
    dev = device_of(info)
    window = ops.Window.from_attrs(info.attrs)
    group = window.group
    offsets = _Offsets(dev)
    kernels = {}

    def run(x, w, b=None):
        dt = np.dtype(x.dtype)
        if compute_type(dt) != "float":
            raise ValueError(f"Conv: element type {dt} is not supported")
        if not (x.flags.c_contiguous and w.flags.c_contiguous):
            from ._common import contiguous

            x, w = contiguous(dev, x), contiguous(dev, w)
        win = window.resolve(x.ndim - 2, w.shape[2:])
        kernel, strides, dil = win.kernel_shape, win.strides, win.dilations
        out, begin, _ = win.geometry(x.shape[2:])
        n_img, c = x.shape[:2]
        m = w.shape[0]
        cg, mg = c // group, m // group
        if w.shape[1] != cg:
            raise InvalidArgument(
                f"Conv: input has {c} channels, weights expect {w.shape[1] * group}."
            )
        y = dev.empty((n_img, m, *out), dt)
        if y.size == 0:
            return y
        p = math.prod(out)
        kk = cg * math.prod(kernel)
        spatial = math.prod(x.shape[2:])

        def build():
            rows = []
            for i in range(n_img):
                for g in range(group):
                    rows.append(
                        [g * mg * kk, (i * c + g * cg) * spatial, (i * m + g * mg) * p, g * mg]
                    )
            return rows

        boffs = offsets.get((n_img, c, m, group, p, spatial, kk), build)
        xb, xo = dev.buf(x)
        wb, wo = dev.buf(w)
        yb, yo = dev.buf(y)
        if b is not None:
            bb_, bo = dev.buf(b)
        else:
            bb_, bo = yb, 0
        g_, loc, suffix = gemm_grid(mg, p, n_img * group)
        k = kernels.get((dt, suffix))
        if k is None:
            k = kernels[dt, suffix] = dev.kernel(conv_source(dt), "conv" + suffix, CONV_ARGS)
        dev.launch(
            k, g_, loc, yb, yo, wb, wo, kk, 1, xb, xo, 0, 0,
            bb_, bo, 0, 0, int(b is not None), boffs.base_data, mg, p, kk, 1.0, 1.0,
            *to3(x.shape[2:], 1), *to3(out, 1)[1:],
            *to3(kernel, 1), *to3(strides, 1), *to3(dil, 1), *to3(begin, 0),
        )  # fmt: skip
        return y

    return run
