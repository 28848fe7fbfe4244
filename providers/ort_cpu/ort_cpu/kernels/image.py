"""Image kernels: Resize, Upsample, DepthToSpace, SpaceToDepth, GridSample, AffineGrid, Col2Im,
CenterCropPad, NonMaxSuppression and ImageDecoder (through Pillow, an optional dependency: the
extra ``ort-cpu[image]``).

Resize is separable: each resized axis is interpolated on its own, as a gather of a few taps per
output position along that axis weighted by per-position coefficients (no per-pixel loops); the
output sizes and the tap tables are ONNX arithmetic, shared with every provider (``ort_core.ops``).
Interpolation runs in float32 for float32/float16/bfloat16 inputs and in float64 otherwise;
integer results are rounded half to even and saturated.
"""

from __future__ import annotations

import itertools

import numpy as np

from ort_core import ops
from ort_core.provider import FLOAT_TYPES, KernelInfo, KernelUnsupported

from .._jit import jit
from ._registry import builder, kernel
from .shape_ops import choice_check

_NARROW_FLOATS = frozenset(map(np.dtype, ("float16", "float32"))) | {
    d for d in FLOAT_TYPES if d.kind == "V"
}


def _work_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dt in _NARROW_FLOATS else np.dtype(np.float64)


def _cast_back(y: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Cast interpolated values back to the input type (integers: round and saturate)."""
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.rint(y), info.min, info.max).astype(dt)
    if dt == np.bool_:
        return y != 0
    return y.astype(dt, copy=False)


# -- Resize --------------------------------------------------------------------------------------
def _resize_axis(data, step: ops.AxisResize, table: ops.TapTable, attrs: ops.ResizeAttrs, work):
    """One axis of a separable resize: a gather of ``table``'s taps, weighted."""
    axis = step.axis
    shape = [1] * data.ndim
    shape[axis] = step.out_len
    if table.weight is None:
        res = np.take(data, table.index[:, 0], axis=axis)
    else:
        if data.dtype != work:
            data = data.astype(work)
        w = table.weight.astype(work)
        res = None
        for k in range(table.index.shape[1]):
            term = np.take(data, table.index[:, k], axis=axis) * w[:, k].reshape(shape)
            res = term if res is None else res + term
    if table.outside is not None:
        res = np.where(table.outside.reshape(shape), attrs.extrapolation_value, res).astype(
            res.dtype
        )
    return res


def _resize(x, attrs: ops.ResizeAttrs, scales=None, sizes=None, roi=None, cache=None):
    """Resize ``x``; ``cache`` (a dict kept by the node's kernel): the plan of each input shape
    and scales / sizes / roi, made once (the tap tables are Python arithmetic per output
    position: tens of microseconds a run on small maps)."""
    key = None
    if cache is not None:
        key = (x.shape, _key(scales), _key(sizes), _key(roi))
        found = cache.get(key)
    if key is None or found is None:
        _, steps = ops.resize_plan(attrs, x.shape, scales, sizes, roi)
        tables = [ops.tap_table(attrs, step) for step in steps]
        found = (steps, tables, _repeats(x.ndim, steps, tables))
        if key is not None and len(cache) < 16:
            cache[key] = found
    steps, tables, repeats = found
    if (
        repeats is not None
        and x.ndim == 4
        and (x.dtype.kind in "biu" or x.dtype in _COMPILED_FLOATS)
        and (fn := repeat_cells.get()) is not None
    ):
        # nearest with whole factors on the two last axes: each cell repeated (a detector's
        # 2x upsampling; two gathers along the axes took 1.8 ms for 96 x 80 x 80, onnxruntime
        # 0.2 ms), in one compiled pass
        sh, sw = repeats
        y = np.empty((*x.shape[:2], x.shape[2] * sh, x.shape[3] * sw), x.dtype)
        fn(np.ascontiguousarray(x), sh, sw, y)
        return y
    work = _work_dtype(x.dtype)
    res = x
    for step, table in zip(steps, tables, strict=True):
        res = _resize_axis(res, step, table, attrs, work)
    if res.dtype != x.dtype:
        res = _cast_back(res, x.dtype)
    return res


#: float types :func:`repeat_cells` compiles for (not float16, bfloat16 or float8)
_COMPILED_FLOATS = frozenset(map(np.dtype, ("float32", "float64")))


def _key(v) -> tuple | None:
    return None if v is None else tuple(np.asarray(v).reshape(-1).tolist())


def _repeats(rank: int, steps, tables) -> tuple[int, int] | None:
    """(factor of axis rank - 2, of axis rank - 1) where the resize is nothing but each cell
    repeated a whole number of times along those two axes (nearest picks ``j // factor``, no
    extrapolation), else None."""
    factors = [1, 1]
    for step, table in zip(steps, tables, strict=True):
        if step.axis < rank - 2 or table.weight is not None or table.outside is not None:
            return None
        f, rest = divmod(step.out_len, step.in_len) if step.in_len else (0, 1)
        if rest or f < 1:
            return None
        if not np.array_equal(table.index[:, 0], np.arange(step.out_len) // f):
            return None
        factors[step.axis - (rank - 2)] = f
    return factors[0], factors[1]


@jit()
def repeat_cells(x, sh, sw, y):  # pragma: no cover - compiled
    """``y[a, b, i * sh + r, j * sw + k] = x[a, b, i, j]``: each output row written once from
    its input row, the other ``sh - 1`` copies of it copied."""
    n, c, h, w = x.shape
    for a in range(n):
        for b in range(c):
            for i in range(h):
                src = x[a, b, i]
                first = y[a, b, i * sh]
                if sw == 2:  # (the usual 2x: pairs the compiler writes as vector shuffles)
                    for j in range(w):
                        v = src[j]
                        first[2 * j] = v
                        first[2 * j + 1] = v
                else:
                    for j in range(w):
                        v = src[j]
                        for k in range(sw):
                            first[j * sw + k] = v
                for r in range(1, sh):
                    row = y[a, b, i * sh + r]
                    for q in range(first.shape[0]):
                        row[q] = first[q]


def _resize_check(info: KernelInfo) -> str | None:
    """The spec's rules (:func:`ort_core.ops.resize_reason`), and interpolation needs numbers."""
    shape = info.input_shape(0)
    reason = ops.resize_reason(
        info.attrs, info.opset, info.node.op_type, None if shape is None else len(shape)
    )
    if reason:
        return reason
    dt = info.input_dtype(0)
    mode = info.attr("mode", "nearest")
    if dt is not None and mode != "nearest" and dt.kind in "Ob":
        return f"mode {mode!r} needs a numeric input, got {dt}"
    return None


def _resize_attrs(info: KernelInfo) -> ops.ResizeAttrs:
    return ops.ResizeAttrs.from_attrs(info.attrs, info.opset, info.node.op_type)


@builder("Resize", since=10, check=_resize_check)
def resize_10(info: KernelInfo):
    attrs = _resize_attrs(info)

    cache: dict = {}

    def run(x, scales):
        return _resize(x, attrs, scales, cache=cache)

    return run


@builder("Resize", since=(11, 13, 18, 19), check=_resize_check)
def resize(info: KernelInfo):
    attrs = _resize_attrs(info)
    cache: dict = {}

    def run(x, roi=None, scales=None, sizes=None):
        return _resize(x, attrs, scales, sizes, roi, cache)

    return run


@builder("Upsample", since=1, dtypes=FLOAT_TYPES, check=_resize_check)
def upsample_1(info: KernelInfo):
    attrs = _resize_attrs(info)
    scales = ops.upsample_1_scales(info.attrs)
    cache: dict = {}

    def run(x):
        return _resize(x, attrs, scales, cache=cache)

    return run


@builder("Upsample", since=7, check=_resize_check)
def upsample_7(info: KernelInfo):
    attrs = _resize_attrs(info)
    scales = [float(s) for s in info.attr("scales")]
    cache: dict = {}

    def run(x):
        return _resize(x, attrs, scales, cache=cache)

    return run


@builder("Upsample", since=9, check=_resize_check)
def upsample_9(info: KernelInfo):
    attrs = _resize_attrs(info)
    cache: dict = {}

    def run(x, scales):
        return _resize(x, attrs, scales, cache=cache)

    return run


# -- DepthToSpace / SpaceToDepth -----------------------------------------------------------------
@kernel("DepthToSpace", since=(1, 11, 13), check=choice_check(mode=("DCR", "CRD")))
def depth_to_space(x, blocksize=None, mode="DCR"):
    out = ops.depth_to_space_shape(x.shape, blocksize)
    b, c, h, w = x.shape
    bs = int(blocksize)
    if mode == "DCR":
        t = x.reshape(b, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(b, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(out)


@kernel("SpaceToDepth", since=(1, 13, 28), check=choice_check(mode=("DCR", "CRD")))
def space_to_depth(x, blocksize=None, mode="DCR"):
    """Inverse of DepthToSpace; the ``mode`` attribute (opset 28) orders the output channels."""
    out = ops.space_to_depth_shape(x.shape, blocksize)
    b, c, h, w = x.shape
    bs = int(blocksize)
    t = x.reshape(b, c, h // bs, bs, w // bs, bs)
    t = t.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(out)


# -- GridSample ----------------------------------------------------------------------------------
_GS_MODES = {"bilinear": "linear", "bicubic": "cubic", "nearest": "nearest", "linear": "linear",
             "cubic": "cubic"}  # fmt: skip


def _reflect(x, lo: float, hi: float):
    """Reflect coordinates by the borders [lo, hi] until they fall inside (float64)."""
    x = np.asarray(x, dtype=np.float64)
    rng = hi - lo
    if rng <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    dx = np.where(below, lo - x, np.where(above, x - hi, 0.0))
    n = np.trunc(dx / rng)
    r = dx - n * rng
    even = n % 2 == 0
    low_side = np.where(even, lo + r, hi - r)
    high_side = np.where(even, hi - r, lo + r)
    return np.where(below, low_side, np.where(above, high_side, x))


def _gs_taps(x, mode):
    """Tap offsets' integer positions [k, ...] and weights [k, ...] along one spatial axis."""
    if mode == "nearest":
        return x.astype(np.int64)[None], None
    fl = np.floor(x)
    t = (x - fl).astype(np.float64)
    base = fl.astype(np.int64)
    if mode == "linear":
        return np.stack([base, base + 1]), np.stack([1 - t, t])
    offs = (-1, 0, 1, 2)
    return np.stack([base + o for o in offs]), np.stack([ops.cubic_weights(o - t) for o in offs])


def _grid_sample(X, grid, mode, padding, align):
    n, c = X.shape[:2]
    dims = X.shape[2:]
    nd = len(dims)
    out_sp = grid.shape[1:-1]
    if X.size == 0 or grid.size == 0:
        return np.zeros((n, c, *out_sp), X.dtype)
    coords = []
    for i, size in enumerate(dims):
        g = grid[..., nd - 1 - i]
        if align:
            xi = ((g + 1) / 2.0 * (size - 1)).astype(np.float32)
        else:
            xi = (((g + 1) * size - 1) / 2.0).astype(np.float32)
        if mode == "nearest":
            xi = np.rint(xi)
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if padding == "border":
            xi = np.where((xi < lo) | (xi > hi), np.clip(xi, 0, size - 1), xi)
        elif padding == "reflection":
            xi = _reflect(xi, lo, hi).astype(np.float32)
        coords.append((xi, lo, hi))
    work = _work_dtype(X.dtype) if mode != "nearest" else X.dtype
    flat = X.reshape(n, c, -1)
    if flat.dtype != work:
        flat = flat.astype(work)
    taps = [_gs_taps(xi, mode) for xi, _, _ in coords]
    strides = np.cumprod((1,) + tuple(dims[::-1]))[:-1][::-1]
    out = np.zeros((n, c, int(np.prod(out_sp))), work)
    bidx = np.arange(n)[:, None, None]
    cidx = np.arange(c)[None, :, None]
    for combo in itertools.product(*[range(len(t[0])) for t in taps]):
        lin = 0
        inside = True
        weight = 1.0
        for i, k in enumerate(combo):
            pos, w = taps[i][0][k], taps[i][1]
            size, (_, lo, hi) = dims[i], coords[i]
            if padding == "zeros":
                inside = inside & (pos >= 0) & (pos < size)
                pos = np.clip(pos, 0, size - 1)
            elif padding == "border":
                pos = np.clip(pos, 0, size - 1)
            else:
                pos = np.trunc(_reflect(pos, lo, hi)).astype(np.int64)
                pos = np.clip(pos, 0, size - 1)
            lin = lin + pos * strides[i]
            if w is not None:
                weight = weight * w[k]
        vals = flat[bidx, cidx, np.reshape(lin, (n, 1, -1))]
        if padding == "zeros":
            vals = np.where(np.reshape(inside, (n, 1, -1)), vals, 0)
        if mode == "nearest":
            out = vals
        else:
            out = out + vals * np.reshape(weight, (n, 1, -1)).astype(work)
    return _cast_back(out, X.dtype).reshape(n, c, *out_sp)


def _grid_sample_builder(info: KernelInfo, default_mode: str):
    mode = _GS_MODES.get(info.attr("mode", default_mode))
    padding = info.attr("padding_mode", "zeros")
    if mode is None or padding not in ("zeros", "border", "reflection"):
        raise KernelUnsupported("mode linear/cubic/nearest, padding_mode zeros/border/reflection")
    align = bool(info.attr("align_corners", 0))

    def run(x, grid):
        return _grid_sample(x, grid, mode, padding, align)

    return run


def _gs_check(info: KernelInfo) -> str | None:
    dt = info.input_dtype(0)
    mode = info.attr("mode", "bilinear")
    if dt is not None and mode != "nearest" and dt not in FLOAT_TYPES:
        return f"mode {mode!r} is supported for float inputs only, got {dt}"
    if dt is not None and dt.kind in "Oc":
        return f"element type {dt} is not supported"
    return None


@builder("GridSample", since=16, check=_gs_check)
def grid_sample_16(info: KernelInfo):
    return _grid_sample_builder(info, "bilinear")


@builder("GridSample", since=20, check=_gs_check)
def grid_sample_20(info: KernelInfo):
    return _grid_sample_builder(info, "linear")


# -- AffineGrid ----------------------------------------------------------------------------------
def _base_coords(size: int, align: bool) -> np.ndarray:
    i = np.arange(size, dtype=np.float64)
    if align:
        return -1 + 2 * i / (size - 1) if size > 1 else np.full(size, -1.0)
    return (2 * i + 1) / size - 1


@kernel("AffineGrid", since=20, dtypes=FLOAT_TYPES)
def affine_grid(theta, size, align_corners=0):
    size = [int(s) for s in size]
    spatial = size[2:]
    axes = [_base_coords(s, bool(align_corners)) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")
    # homogeneous coordinates in (x, y[, z], 1) order: the last spatial axis first
    homo = np.stack([*mesh[::-1], np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)
    t = theta.astype(np.float64)
    grid = np.einsum("pk,njk->npj", homo, t)
    return grid.reshape(theta.shape[0], *spatial, len(spatial)).astype(theta.dtype)


# -- Col2Im --------------------------------------------------------------------------------------
@kernel("Col2Im", since=18)
def col2im(x, image_shape, block_shape, dilations=None, pads=None, strides=None):
    image = [int(v) for v in image_shape]
    block = [int(v) for v in block_shape]
    nd = len(image)
    dil = list(dilations or [1] * nd)
    st = list(strides or [1] * nd)
    pd = list(pads or [0] * (2 * nd))
    n = x.shape[0]
    c = x.shape[1] // int(np.prod(block))
    padded = [image[i] + pd[i] + pd[nd + i] for i in range(nd)]
    counts = [
        ops.window_output_size(image[i], block[i], st[i], dil[i], pd[i], pd[nd + i])
        for i in range(nd)
    ]
    cols = x.reshape(n, c, *block, *counts)
    acc_dtype = np.float32 if x.dtype.kind == "V" else x.dtype
    out = np.zeros((n, c, *padded), acc_dtype)
    for k in itertools.product(*[range(b) for b in block]):
        sl = tuple(
            slice(k[i] * dil[i], k[i] * dil[i] + st[i] * (counts[i] - 1) + 1, st[i])
            for i in range(nd)
        )
        out[(slice(None), slice(None), *sl)] += cols[(slice(None), slice(None), *k)]
    crop = tuple(slice(pd[i], pd[i] + image[i]) for i in range(nd))
    return out[(slice(None), slice(None), *crop)].astype(x.dtype, copy=False)


# -- CenterCropPad -------------------------------------------------------------------------------
@kernel("CenterCropPad", since=18)
def center_crop_pad(x, shape, axes=None):
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    src = [slice(None)] * rank
    dst = [slice(None)] * rank
    out_shape = list(x.shape)
    for a, target in zip(axes, [int(s) for s in shape], strict=False):
        dim = x.shape[a]
        out_shape[a] = target
        if target < dim:
            start = (dim - target) // 2
            src[a] = slice(start, start + target)
        elif target > dim:
            start = (target - dim) // 2
            dst[a] = slice(start, start + dim)
    out = np.zeros(out_shape, x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


# -- NonMaxSuppression ---------------------------------------------------------------------------
def _corners(boxes: np.ndarray, center_point_box: int):
    if center_point_box:
        cx, cy, w, h = (boxes[:, i] for i in range(4))
        return cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    y1, x1, y2, x2 = (boxes[:, i] for i in range(4))
    return np.minimum(x1, x2), np.maximum(x1, x2), np.minimum(y1, y2), np.maximum(y1, y2)


def _suppressed(corners, top: int, rest: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Whether each box in ``rest`` overlaps box ``top`` with IoU above the threshold."""
    x0, x1, y0, y1 = corners
    ix0, ix1 = np.maximum(x0[top], x0[rest]), np.minimum(x1[top], x1[rest])
    iy0, iy1 = np.maximum(y0[top], y0[rest]), np.minimum(y1[top], y1[rest])
    overlap = (ix1 > ix0) & (iy1 > iy0)
    inter = (ix1 - ix0) * (iy1 - iy0)
    area_t = (x1[top] - x0[top]) * (y1[top] - y0[top])
    area_r = (x1[rest] - x0[rest]) * (y1[rest] - y0[rest])
    union = area_t + area_r - inter
    ok = overlap & (inter > 0) & (area_t > 0) & (area_r > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / np.where(union > 0, union, 1)
    return ok & (iou > iou_threshold)


def _nms_class(corners, scores, max_out, iou_threshold, score_threshold):
    cand = np.arange(scores.shape[0])
    if score_threshold is not None:
        cand = cand[scores > score_threshold]
    order = cand[np.lexsort((cand, -scores[cand].astype(np.float64)))]
    selected: list[int] = []
    while order.size and len(selected) < max_out:
        top = int(order[0])
        selected.append(top)
        rest = order[1:]
        order = rest[~_suppressed(corners, top, rest, iou_threshold)]
    return selected


def _scalar(v, default):
    if v is None or np.asarray(v).size == 0:
        return default
    return np.asarray(v).reshape(-1)[0]


@kernel("NonMaxSuppression", since=(10, 11), dtypes=FLOAT_TYPES)
def non_max_suppression(
    boxes,
    scores,
    max_output_boxes_per_class=None,
    iou_threshold=None,
    score_threshold=None,
    center_point_box=0,
):
    max_out = max(int(_scalar(max_output_boxes_per_class, 0)), 0)
    iou = _scalar(iou_threshold, 0.0)
    score_t = _scalar(score_threshold, None)
    rows = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], center_point_box)
        for cls in range(scores.shape[1]):
            for i in _nms_class(corners, scores[b, cls], max_out, iou, score_t):
                rows.append((b, cls, i))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


_PIXEL_FORMATS = {"RGB": ("RGB", 3), "BGR": ("RGB", 3), "Grayscale": ("L", 1)}


def _image_decoder_check(info: KernelInfo) -> str | None:
    fmt = info.attr("pixel_format", "RGB")
    if fmt not in _PIXEL_FORMATS:
        return f"pixel_format '{fmt}' is not one of {sorted(_PIXEL_FORMATS)}"
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return "decoding images needs Pillow: pip install 'ort-cpu[image]'"
    return None


@builder("ImageDecoder", since=20, dtypes={np.uint8}, check=_image_decoder_check)
def image_decoder(info: KernelInfo):
    import io

    import PIL.Image

    fmt = info.attr("pixel_format", "RGB")
    mode, channels = _PIXEL_FORMATS[fmt]

    def run(encoded):
        try:
            with PIL.Image.open(io.BytesIO(np.ascontiguousarray(encoded).tobytes())) as img:
                pixels = np.asarray(img.convert(mode), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError):  # what Pillow raises on bad or unknown data
            return np.zeros((0, 0, channels), dtype=np.uint8)
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], channels)
        return np.ascontiguousarray(pixels[:, :, ::-1]) if fmt == "BGR" else pixels

    return run
