"""Kernels written in CUDA C, for what the array API does not express well: TopK,
NonMaxSuppression, Resize, GatherND / ScatterND / ScatterElements, Softmax / LogSoftmax, the layer
normalizations (LayerNormalization, RMSNormalization, SimplifiedLayerNormalization and the
com.microsoft Skip forms) and com.microsoft Attention / MultiHeadAttention (cuBLAS batched
matmuls through cupy around a masked one-pass softmax).

The CUDA C sources are ``ort_cuda/cuda/*.cu``; :data:`SOURCES` lists every template instantiation
of each, and run time compiles exactly those (``CudaDevice.module``), as the tests do for every
architecture in :data:`ort_cuda.nvrtc.ARCHES`. Launch configurations, tap tables and index
metadata are computed here on the host with the shared ONNX arithmetic of ``ort_core.ops``.

Every kernel registers with ``limit=needs_cuda``. Kernels take the device of the session from
``device_of(info)`` and use ``dev.cp`` (cupy) and ``dev.module``; they run inside the run's
stream, device and memory pool, so plain cupy calls and launches go to the run's stream.

What the kernels leave to other providers (``limit``, with the reason):

* Resize: linear and cubic of integer types (nearest copies any type). More than three resized
  axes are not declined: one launch resizes three, further axes are chained launches.
* ScatterND / ScatterElements reductions on types other than float16, bfloat16, float32,
  float64, int32 and int64 (the atomic instantiations; CUDA has no single-byte compare-and-swap).
* The normalizations with ``stash_type`` other than 1, or an input / scale type pair other than
  equal types or float32 with a half type.
* com.microsoft Attention with ``do_rotary``, ``past_present_share_buffer`` or
  ``past_sequence_length`` (a preallocated KV cache), or a 4-D ``mask_index``;
  MultiHeadAttention with ``past_sequence_length`` / ``cache_indirection``, the ``qk`` output, or
  a ``key_padding_mask`` of rank 4 (the (3B + 2) 1-D format raises at run time).

Out-of-range indices of GatherND / ScatterND / ScatterElements are not followed by the kernels;
they set an error flag the host reads after the launch (a wait), and raise. GatherND's constant
indices into a data shape known at session creation are checked once, at build, instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ort_array._xp import matmul

from ort_core import ops
from ort_core.errors import InvalidArgument
from ort_core.provider import output_trimmer

from ._common import ARRAY_TYPES, BF16, F16, F32, F64, FLOATS, device_of, needs_cuda, registry

__all__ = [
    "SOURCES",
    "CTYPE",
    "grid_for",
    "row_block",
    "topk_passes",
    "topk_launch",
    "resize_pass_layout",
    "resize_tables",
    "nd_meta",
    "norm_launch",
]

MS = "com.microsoft"
I32, I64 = np.dtype(np.int32), np.dtype(np.int64)

#: C++ type of each element type the kernels are instantiated for
CTYPE: dict[np.dtype, str] = {
    F16: "__half",
    F32: "float",
    F64: "double",
    I32: "int",
    I64: "long long",
}
if BF16 is not None:
    CTYPE[BF16] = "__nv_bfloat16"
#: unsigned C++ type of each element size (kernels that copy bits)
BITS = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long long"}
HALVES = frozenset(t for t in (F16, BF16) if t is not None)
#: floating types in a fixed order (instantiation lists)
FLOAT_ORDER = tuple(t for t in (F16, BF16, F32, F64) if t is not None)


def _b(flag: bool) -> str:
    return "true" if flag else "false"


TOPK_TYPES = (*FLOAT_ORDER, I32, I64)
TOPK_EXPRS = tuple(
    f"topk_segments<{CTYPE[t]}, {_b(largest)}>" for t in TOPK_TYPES for largest in (True, False)
)
SOFTMAX_EXPRS = tuple(
    f"{k}<{CTYPE[t]}, {_b(log)}>"
    for k in ("softmax_rows", "softmax_strided")
    for t in FLOAT_ORDER
    for log in (False, True)
) + tuple(
    f"attention_softmax<{CTYPE[t]}>" for t in FLOAT_ORDER if t != BF16
)  # bfloat16 attention runs in float32
#: (X type, scale/output type) pairs of the normalizations: equal types, and float32 with a half
#: type either way (RMSNormalization and SimplifiedLayerNormalization allow the types to differ)
NORM_PAIRS = tuple((t, t) for t in FLOAT_ORDER) + tuple(
    p for h in HALVES for p in ((F32, h), (h, F32))
)
NORM_EXPRS = tuple(f"norm_rows<{CTYPE[t]}, {CTYPE[v]}>" for t, v in NORM_PAIRS)
RESIZE_EXPRS = tuple(f"resize_filter<{CTYPE[t]}>" for t in FLOAT_ORDER) + tuple(
    f"resize_nearest<{BITS[n]}>" for n in (1, 2, 4, 8)
)
#: element types of the atomic reductions of ScatterND / ScatterElements
REDUCE_TYPES = (*FLOAT_ORDER, I32, I64)
SCATTER_EXPRS = (
    tuple(f"gather_nd<{BITS[n]}>" for n in (1, 2, 4, 8))
    + tuple(f"scatter_nd_copy<{BITS[n]}>" for n in (1, 2, 4, 8))
    + tuple(f"scatter_nd_reduce<{CTYPE[t]}>" for t in REDUCE_TYPES)
    + tuple(f"scatter_elements_copy<{BITS[n]}>" for n in (1, 2, 4, 8))
    + tuple(f"scatter_elements_reduce<{CTYPE[t]}>" for t in REDUCE_TYPES)
)
NMS_EXPRS = ("nms_select",)

#: every CUDA C source of the provider and the name expressions (template instantiations) run
#: time compiles it with; the tests compile exactly these for every architecture
SOURCES: dict[str, tuple[str, ...]] = {
    "topk.cu": TOPK_EXPRS,
    "nms.cu": NMS_EXPRS,
    "resize.cu": RESIZE_EXPRS,
    "scatter.cu": SCATTER_EXPRS,
    "softmax.cu": SOFTMAX_EXPRS,
    "norm.cu": NORM_EXPRS,
}

# -- launch configuration --------------------------------------------------------------------------
#: threads per block of the element-wise (one thread per element) kernels
THREADS = 256
#: most blocks a launch uses; grid-stride loops cover the rest
MAX_BLOCKS = 1 << 16
#: the dynamic shared memory a block may use without opting in (48 KiB), less the static scratch
SHARED_BUDGET = 48 * 1024 - 1024


def grid_for(work: int, per_block: int = 1, max_blocks: int = MAX_BLOCKS) -> int:
    """Blocks for ``work`` items at ``per_block`` items a block (at least 1, at most
    ``max_blocks``: the kernels' grid-stride loops do the rest)."""
    return max(1, min(-(-int(work) // int(per_block)), max_blocks))


def _pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def row_block(n: int) -> int:
    """Threads of a block that reduces one row of ``n`` elements: a power of two from 32 to 1024,
    about four elements a thread."""
    return max(32, min(1024, _pow2(-(-int(n) // 4))))


def _i64(v: int) -> np.int64:
    return np.int64(v)


def _i32(v: int) -> np.int32:
    return np.int32(v)


class _Kernels:
    """The kernels of one source on one device, compiled on first use (all instantiations of
    :data:`SOURCES` at once, as the tests compile them)."""

    def __init__(self, dev: Any, name: str) -> None:
        self.dev = dev
        self.name = name
        self._fns: dict[str, Any] = {}

    def __call__(self, expr: str) -> Any:
        fn = self._fns.get(expr)
        if fn is None:
            if expr not in SOURCES[self.name]:
                raise KeyError(f"{expr} is not an instantiation of {self.name}")
            fn = self.dev.module(self.name, SOURCES[self.name]).get_function(expr)
            self._fns[expr] = fn
        return fn


def _launch(fn: Any, grid: int, block: int, args: Sequence[Any], shared: int = 0) -> None:
    fn((int(grid),), (int(block),), tuple(args), shared_mem=int(shared))


def _contig(xp: Any, a: Any) -> Any:
    # xp.ascontiguousarray would make a 0-d array 1-d
    return a if a.flags.c_contiguous else xp.ascontiguousarray(a)


def _prod(values: Sequence[int]) -> int:
    return int(math.prod(int(v) for v in values))


def _scalar(v: Any, default: Any) -> Any:
    """The one value of an optional scalar (host) input, or ``default`` when absent or empty."""
    if v is None:
        return default
    a = np.asarray(v).reshape(-1)
    return a[0].item() if a.size else default


def _raise_if(err: Any, message: str) -> None:
    """Raise InvalidArgument when a kernel set its error flag (waits for the kernel)."""
    if int(err[0]) != 0:
        raise InvalidArgument(message)


def _wants(info: Any, i: int) -> bool:
    outs = info.node.outputs
    return i < len(outs) and bool(outs[i])


def _limits(*fns: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """One ``limit=``: the first reason of ``fns`` (needs_cuda first)."""

    def limit(info: Any) -> str | None:
        for fn in (needs_cuda, *fns):
            reason = fn(info)
            if reason is not None:
                return reason
        return None

    return limit


def _rank(info: Any, i: int) -> int | None:
    shape = info.input_shape(i) if info.has_input(i) else None
    return None if shape is None else len(shape)


# -- TopK ----------------------------------------------------------------------------------------
#: the longest segment one block sorts (2048 keys, 1024 threads)
TOPK_SEGMENT = 2048


def topk_passes(n: int, k: int, segment: int = TOPK_SEGMENT) -> list[tuple[int, int, int]] | None:
    """The passes that select the ``k`` first of rows of ``n``: (row length, segment length,
    kept per segment) each; the last pass has one segment. None when segment passes cannot (k
    above half a segment of a row longer than one: the sort fallback)."""
    if n <= segment:
        return [(n, n, k)]
    if 2 * k > segment:
        return None
    passes = []
    while n > segment:
        passes.append((n, segment, k))
        n = -(-n // segment) * k
    passes.append((n, n, k))
    return passes


def topk_launch(segment: int, dtype: np.dtype) -> tuple[int, int, int]:
    """(threads, padded length, shared bytes) of a block sorting one segment."""
    pow2 = max(2, _pow2(segment))
    key = 4 if np.dtype(dtype) in HALVES else np.dtype(dtype).itemsize
    return max(32, pow2 // 2), pow2, pow2 * (key + 8)


def _topk_sort(xp: Any, x: Any, k: int, axis: int, largest: bool) -> tuple[Any, Any]:
    """TopK by a stable sort of the whole axis (cupy's argsort is stable): rows longer than a
    segment with k above half a segment."""
    n = x.shape[axis]
    key = x.astype(np.float32) if np.dtype(x.dtype) in HALVES else x
    key = xp.moveaxis(key, axis, -1)
    if largest:
        # ascending sort of the reversed row, read backwards: descending, ties by lower index
        order = xp.argsort(xp.flip(key, -1), axis=-1)
        order = (n - 1) - xp.flip(order, -1)
    else:
        order = xp.argsort(key, axis=-1)
    idx = _contig(xp, xp.moveaxis(order[..., :k], -1, axis)).astype(np.int64, copy=False)
    return xp.take_along_axis(x, idx, axis=axis), idx


def _topk_run(dev: Any, kernels: _Kernels, x: Any, k: int, axis: int, largest: bool):
    xp = dev.cp
    shape = tuple(x.shape)
    axis = ops.normalize_axis(axis, len(shape), "TopK")
    n = shape[axis]
    if not 0 <= k <= n:
        raise InvalidArgument(f"TopK: k={k} is out of range [0, {n}] for axis {axis}.")
    out_shape = shape[:axis] + (k,) + shape[axis + 1 :]
    y = xp.empty(out_shape, x.dtype)
    yi = xp.empty(out_shape, np.int64)
    if y.size == 0:
        return y, yi
    passes = topk_passes(n, k)
    if passes is None:
        return _topk_sort(xp, x, k, axis, largest)
    dt = np.dtype(x.dtype)
    outer, inner = _prod(shape[:axis]), _prod(shape[axis + 1 :])
    rows = outer * inner
    fn = kernels(f"topk_segments<{CTYPE[dt]}, {_b(largest)}>")
    cur, cur_i = _contig(xp, x), None
    for p, (length, segment, kept) in enumerate(passes):
        nseg = -(-length // segment)
        if p == len(passes) - 1:
            out, out_i = y, yi
        else:
            out = xp.empty((outer, nseg * kept, inner), dt)
            out_i = xp.empty((outer, nseg * kept, inner), np.int64)
        threads, pow2, shared = topk_launch(segment, dt)
        args = (cur, cur_i, out, out_i, _i64(rows), _i64(length), _i64(inner), _i64(segment),
                _i64(nseg), _i32(kept), _i32(pow2))  # fmt: skip
        _launch(fn, grid_for(rows * nseg), threads, args, shared)
        cur, cur_i = out, out_i
    return y, yi


def _topk_check(info: Any) -> str | None:
    if info.opset < 10 and info.attr("k") is None:
        return "the 'k' attribute is required before opset 10"
    rank = _rank(info, 0)
    if rank is not None:
        return ops.axis_reason(info.attr("axis", -1), rank)
    return None


def _topk_build(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "topk.cu")
    axis = int(info.attr("axis", -1))
    largest = bool(info.attr("largest", 1))
    if info.opset < 10:
        k_attr = int(info.attr("k"))
        return lambda x: _topk_run(dev, kernels, x, k_attr, axis, True)

    def run(x, k):
        kv = np.asarray(k).reshape(-1)
        if kv.size != 1:
            raise InvalidArgument(f"TopK: K must hold one value, got {kv.size}.")
        return _topk_run(dev, kernels, x, int(kv[0]), axis, largest)

    return run


_TOPK_DT = {0: frozenset(TOPK_TYPES)}
registry.builder(
    "TopK", since=1, dtypes=_TOPK_DT, attributes=("axis", "k"), check=_topk_check,
    limit=needs_cuda,
)(_topk_build)  # fmt: skip
registry.builder(
    "TopK", since=10, dtypes=_TOPK_DT, attributes=("axis",), check=_topk_check,
    limit=needs_cuda, host_inputs=(1,),
)(_topk_build)  # fmt: skip
registry.builder(
    "TopK", since=(11, 24), dtypes=_TOPK_DT, attributes=("axis", "largest", "sorted"),
    check=_topk_check, limit=needs_cuda, host_inputs=(1,),
)(_topk_build)  # fmt: skip


# -- NonMaxSuppression -----------------------------------------------------------------------------
def _argsort_desc(xp: Any, a: Any) -> Any:
    """Indices sorting the last axis by descending value, equal values by increasing index."""
    n = a.shape[-1]
    return (n - 1) - xp.flip(xp.argsort(xp.flip(a, -1), axis=-1), -1)


def nms_block(n_boxes: int) -> int:
    """Threads of the block that selects one class's boxes."""
    return max(32, min(256, -(-int(n_boxes) // 32) * 32))


@registry.builder(
    "NonMaxSuppression",
    since=(10, 11),
    dtypes={0: {F32}, 1: {F32}},
    attributes=("center_point_box",),
    limit=needs_cuda,
    host_inputs=(2, 3, 4),
)
def non_max_suppression(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "nms.cu")
    center = int(info.attr("center_point_box", 0))
    if center not in (0, 1):
        raise InvalidArgument(f"NonMaxSuppression: center_point_box is {center}; expected 0 or 1.")

    def run(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
            score_threshold=None):  # fmt: skip
        xp = dev.cp
        max_out = max(int(_scalar(max_output_boxes_per_class, 0)), 0)
        iou = float(_scalar(iou_threshold, 0.0))
        if not 0.0 <= iou <= 1.0:
            raise InvalidArgument(f"NonMaxSuppression: iou_threshold {iou} is not in [0, 1].")
        score_t = _scalar(score_threshold, None)
        if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3:
            raise InvalidArgument(
                f"NonMaxSuppression: boxes {list(boxes.shape)} must be (B, N, 4) and scores "
                f"{list(scores.shape)} (B, C, N)."
            )
        b, n = boxes.shape[0], boxes.shape[1]
        c = scores.shape[1]
        if scores.shape[0] != b or scores.shape[2] != n:
            raise InvalidArgument(
                f"NonMaxSuppression: scores {list(scores.shape)} do not match boxes "
                f"{list(boxes.shape)} (expected ({b}, C, {n}))."
            )
        keep = min(max_out, n)
        if keep == 0 or b * c == 0:
            return xp.empty((0, 3), np.int64)
        s = _contig(xp, scores).reshape(b * c, n)
        order = _argsort_desc(xp, s)
        if score_t is not None:
            valid = s > np.float32(score_t)
            # candidates first (stable: still by descending score)
            rejected = (~xp.take_along_axis(valid, order, axis=1)).astype(np.int8)
            first = xp.argsort(rejected, axis=1)
            order = xp.take_along_axis(order, first, axis=1)
            ncand = valid.sum(axis=1).astype(np.int32)
        else:
            ncand = xp.full((b * c,), n, np.int32)
        order = _contig(xp, order).astype(np.int64, copy=False)
        alive = xp.empty((b * c, n), np.uint8)
        sel = xp.empty((b * c, keep), np.int64)
        count = xp.empty((b * c,), np.int32)
        args = (_contig(xp, boxes), order, ncand, alive, sel, count, _i64(b * c), _i32(c),
                _i32(n), _i32(keep), np.float32(iou), _i32(center))  # fmt: skip
        _launch(kernels("nms_select"), grid_for(b * c), nms_block(n), args)
        cls, t = xp.nonzero(xp.arange(keep)[None, :] < count[:, None])
        return xp.stack([cls // c, cls % c, sel[cls, t]], axis=1).astype(np.int64, copy=False)

    return run


# -- Resize --------------------------------------------------------------------------------------
#: resized axes one kernel launch handles; more are chained (the filter is separable)
RESIZE_AXES = 3


def resize_pass_layout(shape: Sequence[int], axes: Sequence[int]) -> list[int]:
    """(d1, d2, d3) of the kernel's (d0, L1, d1, L2, d2, L3, d3) view of ``shape`` with the
    resized ``axes`` (increasing, at most three) as L1..L3: the products of the axes after each
    resized axis up to the next (axes past the last resized one are 1)."""
    bounds = [*axes, len(shape)]
    d = [_prod(shape[a + 1 : bounds[i + 1]]) for i, a in enumerate(axes)]
    return d + [1] * (RESIZE_AXES - len(d))


def resize_tables(
    tables: Sequence[ops.TapTable], weight_dtype: np.dtype | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[tuple[int, int, int]]]:
    """The tap tables of one pass packed for the kernel: int32 indices, weights of
    ``weight_dtype`` (None: nearest, no weights), uint8 outside flags, and per axis slot
    (taps, offset, outside offset or -1); unused slots get a one-tap identity table."""
    idx: list[np.ndarray] = []
    wts: list[np.ndarray] = []
    outside: list[np.ndarray] = []
    slots = []
    off = ooff = 0
    for tab in tables:
        out_len, taps = tab.index.shape
        idx.append(tab.index.astype(np.int32).reshape(-1))
        if weight_dtype is not None:
            w = np.ones((out_len, taps)) if tab.weight is None else tab.weight
            wts.append(np.asarray(w, weight_dtype).reshape(-1))
        if tab.outside is not None:
            outside.append(tab.outside.astype(np.uint8))
            slots.append((taps, off, ooff))
            ooff += out_len
        else:
            slots.append((taps, off, -1))
        off += out_len * taps
    for _ in range(RESIZE_AXES - len(tables)):  # identity: index 0, weight 1
        slots.append((1, off, -1))
    idx.append(np.zeros(1, np.int32))
    if weight_dtype is not None:
        wts.append(np.ones(1, weight_dtype))
    outside.append(np.zeros(1, np.uint8))
    return (
        np.concatenate(idx),
        np.concatenate(wts) if weight_dtype is not None else None,
        np.concatenate(outside),
        slots,
    )


def _resize_check(info: Any) -> str | None:
    return ops.resize_reason(info.attrs, info.opset, info.node.op_type, _rank(info, 0))


def _resize_limit(info: Any) -> str | None:
    dt = info.input_dtype(0)
    mode = info.attr("mode", "nearest")
    if mode != "nearest" and dt is not None and dt not in FLOATS:
        return (
            f"{mode} Resize of {dt} is not implemented (only nearest copies integers; linear and "
            "cubic interpolate floating types)"
        )
    return None


def _resize_build(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "resize.cu")
    attrs = ops.ResizeAttrs.from_attrs(info.attrs, info.opset, info.node.op_type)
    nearest = attrs.mode == "nearest"
    cache: dict[tuple, tuple] = {}  # per (dtype, geometry of the pass): tables on the device

    def tables_for(dt: np.dtype, group: list[ops.AxisResize]) -> tuple:
        key = (dt, tuple(s[1:] for s in group))
        got = cache.get(key)
        if got is None:
            wdt = None if nearest else (F64 if dt == F64 else F32)
            idx, w, outside, slots = resize_tables([ops.tap_table(attrs, s) for s in group], wdt)
            xp = dev.cp
            got = (xp.asarray(idx), None if w is None else xp.asarray(w), xp.asarray(outside),
                   slots)  # fmt: skip
            _settle(xp)
            cache[key] = got
        return got

    def resize(x, scales, sizes, roi):
        xp = dev.cp
        dt = np.dtype(x.dtype)
        out_shape, steps = ops.resize_plan(attrs, x.shape, scales, sizes, roi)
        if not steps:
            return x.copy()
        cur = _contig(xp, x)
        steps = sorted(steps, key=lambda s: s.axis)
        for g in range(0, len(steps), RESIZE_AXES):
            group = steps[g : g + RESIZE_AXES]
            shape = list(cur.shape)
            for s in group:
                shape[s.axis] = s.out_len
            y = xp.empty(tuple(shape), dt)
            if y.size and cur.size:
                _resize_pass(kernels, tables_for(dt, group), cur, y, group, nearest, attrs)
            cur = y
        return cur

    if info.opset < 11:
        return lambda x, scales: resize(x, scales, None, None)
    return lambda x, roi=None, scales=None, sizes=None: resize(x, scales, sizes, roi)


def _resize_pass(kernels, tabs, x, y, group, nearest: bool, attrs) -> None:
    idx, w, outside, slots = tabs
    d = resize_pass_layout(x.shape, [s.axis for s in group])
    lens = [(s.in_len, s.out_len) for s in group] + [(1, 1)] * (RESIZE_AXES - len(group))
    total = y.size
    head = (x, y, _i64(total), _i64(d[0]), _i64(d[1]), _i64(d[2]))
    per_axis: list[Any] = []
    dt = np.dtype(x.dtype)
    for (n_in, n_out), (taps, off, ooff) in zip(lens, slots):
        if nearest:
            per_axis += [_i32(n_in), _i32(n_out), _i32(off), _i32(ooff)]
        else:
            per_axis += [_i32(n_in), _i32(n_out), _i32(taps), _i32(off), _i32(ooff)]
    if nearest:
        bits = np.dtype(f"u{dt.itemsize}")
        extrap = np.array(attrs.extrapolation_value).astype(dt).view(bits)[()]
        fn = kernels(f"resize_nearest<{BITS[dt.itemsize]}>")
        args = (*head, *per_axis, idx, outside, extrap)
    else:
        fn = kernels(f"resize_filter<{CTYPE[dt]}>")
        args = (*head, *per_axis, idx, w, outside, np.float64(attrs.extrapolation_value))
    _launch(fn, grid_for(total, THREADS), THREADS, args)


def _cached_upload(xp: Any, cache: dict, key: Any, make: Callable[[], np.ndarray]) -> Any:
    """The device copy of the host array ``make()`` for ``key``, uploaded once (index metadata
    per shape: later runs reuse it without a host copy)."""
    got = cache.get(key)
    if got is None:
        got = cache[key] = xp.asarray(make())
        _settle(xp)
    return got


def _settle(xp: Any) -> None:
    """Wait for the uploads of a cached table: later runs may use it on another stream."""
    cuda = getattr(xp, "cuda", None)
    if cuda is not None:
        cuda.get_current_stream().synchronize()


_RESIZE_ATTRS = ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                 "exclude_outside", "extrapolation_value", "antialias", "keep_aspect_ratio_policy",
                 "axes")  # fmt: skip
registry.builder(
    "Resize", since=10, dtypes={0: ARRAY_TYPES}, attributes=("mode",), check=_resize_check,
    limit=_limits(_resize_limit), host_inputs=(1,),
)(_resize_build)  # fmt: skip
registry.builder(
    "Resize", since=(11, 13, 18, 19), dtypes={0: ARRAY_TYPES}, attributes=_RESIZE_ATTRS,
    check=_resize_check, limit=_limits(_resize_limit), host_inputs=(1, 2, 3),
)(_resize_build)  # fmt: skip


# -- GatherND, ScatterND, ScatterElements ----------------------------------------------------------
REDUCTIONS = {"none": 0, "add": 1, "mul": 2, "max": 3, "min": 4}


def nd_meta(shape: Sequence[int], first: int, k: int) -> np.ndarray:
    """The lengths and element strides of axes ``first`` .. ``first + k - 1`` of a C-contiguous
    tensor of ``shape`` (what an index tuple of GatherND / ScatterND addresses), as int64
    [lengths..., strides...]."""
    dims = [int(d) for d in shape[first : first + k]]
    strides = [_prod(shape[first + q + 1 :]) for q in range(k)]
    return np.array(dims + strides, np.int64)


def _dims_strides(ishape: Sequence[int], dshape: Sequence[int]) -> np.ndarray:
    """ScatterElements' metadata: the indices' shape, then data's element strides (int64)."""
    strides = [_prod(dshape[q + 1 :]) for q in range(len(dshape))]
    return np.array([int(d) for d in ishape] + strides, np.int64)


def _bits(dt: np.dtype) -> str:
    return BITS[np.dtype(dt).itemsize]


def _index_ok(idx: np.ndarray, dims: Sequence[int]) -> bool:
    """Whether every index tuple (last axis of ``idx``) addresses an element of ``dims``."""
    d = np.array(dims, np.int64)
    return bool(((idx >= -d) & (idx < d)).all()) if idx.size else True


def _static(shape: Any) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(v, int) for v in shape):
        return None
    return tuple(shape)


def _gather_nd_check(info: Any) -> str | None:
    ds, is_ = info.input_shape(0), info.input_shape(1)
    if ds is None or is_ is None:
        return None
    return ops.gather_nd_reason(ds, is_, int(info.attr("batch_dims", 0)))


@registry.builder(
    "GatherND",
    since=(11, 12, 13),
    dtypes={0: ARRAY_TYPES},
    attributes=("batch_dims",),
    check=_gather_nd_check,
    limit=needs_cuda,
)
def gather_nd(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "scatter.cu")
    bd = int(info.attr("batch_dims", 0))
    # constant indices into a data shape known now are checked once, here, instead of by a
    # wait for the kernel's error flag on every run
    const, dshape = info.constant(1), _static(info.input_shape(0))
    prechecked = None
    if const is not None and dshape is not None and const.ndim >= 1:
        k = const.shape[-1]
        if ops.gather_nd_reason(dshape, const.shape, bd) is None:
            if not _index_ok(np.asarray(const), dshape[bd : bd + k]):
                raise InvalidArgument(
                    f"GatherND: an index is out of range for data {list(dshape)}."
                )
            prechecked = dshape
    metas: dict[tuple, Any] = {}

    def run(data, indices):
        xp = dev.cp
        out_shape = ops.gather_nd_shape(data.shape, indices.shape, bd)
        out = xp.empty(out_shape, data.dtype)
        if out.size == 0:
            return out
        k = int(indices.shape[-1])
        meta = _cached_upload(xp, metas, (tuple(data.shape), k), lambda: nd_meta(data.shape, bd, k))
        slice_ = _prod(data.shape[bd + k :])
        rows_per_batch = _prod(indices.shape[bd:-1])
        err = xp.zeros(1, np.int32)
        args = (_contig(xp, data), _contig(xp, indices).astype(np.int64, copy=False), out,
                _i64(out.size), _i64(slice_), _i64(rows_per_batch),
                _i64(_prod(data.shape[bd:])), _i32(k), meta, err)  # fmt: skip
        _launch(kernels(f"gather_nd<{_bits(data.dtype)}>"), grid_for(out.size, THREADS), THREADS,
                args)  # fmt: skip
        if prechecked != tuple(data.shape):
            _raise_if(err, f"GatherND: an index is out of range for data {list(data.shape)}.")
        return out

    return run


def _reduction(info: Any) -> str:
    return str(info.attr("reduction", "none"))


def _scatter_check(info: Any) -> str | None:
    r = _reduction(info)
    allowed = ("none",) if info.opset < 16 else ("none", "add", "mul")
    if info.opset >= 18:
        allowed = tuple(REDUCTIONS)
    if r not in allowed:
        return f"reduction '{r}' is not one of {list(allowed)} at opset {info.opset}"
    if info.node.op_type == "ScatterElements":
        rank = _rank(info, 0)
        if rank is not None:
            return ops.axis_reason(info.attr("axis", 0), rank)
    return None


def _scatter_limit(info: Any) -> str | None:
    r = _reduction(info)
    dt = info.input_dtype(0)
    if r != "none" and dt is not None and dt not in REDUCE_TYPES:
        names = ", ".join(str(t) for t in REDUCE_TYPES)
        return (
            f"reduction '{r}' on {dt} is not implemented (atomic reductions exist for {names}; "
            "CUDA has no compare-and-swap on single bytes)"
        )
    return None


def _scatter_common(dev: Any, info: Any, data: Any):
    xp = dev.cp
    out = _contig(xp, data).copy()
    op = REDUCTIONS[_reduction(info)]
    dt = np.dtype(data.dtype)
    suffix = f"_copy<{_bits(dt)}>" if op == 0 else f"_reduce<{CTYPE[dt]}>"
    return xp, out, op, suffix


@registry.builder(
    "ScatterND",
    since=(11, 13, 16, 18),
    dtypes={0: ARRAY_TYPES},
    attributes=("reduction",),
    check=_scatter_check,
    limit=_limits(_scatter_limit),
)
def scatter_nd(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "scatter.cu")
    metas: dict[tuple, Any] = {}

    def run(data, indices, updates):
        xp, out, op, suffix = _scatter_common(dev, info, data)
        k = int(indices.shape[-1]) if indices.ndim else -1
        expected = tuple(indices.shape[:-1]) + tuple(data.shape[k:])
        if indices.ndim == 0 or k > data.ndim or tuple(updates.shape) != expected:
            raise InvalidArgument(
                f"ScatterND: updates {list(updates.shape)} do not match data "
                f"{list(data.shape)} and indices {list(indices.shape)} (expected {list(expected)})."
            )
        if updates.size == 0:
            return out
        meta = _cached_upload(xp, metas, (tuple(data.shape), k), lambda: nd_meta(data.shape, 0, k))
        err = xp.zeros(1, np.int32)
        args = [out, _contig(xp, indices).astype(np.int64, copy=False), _contig(xp, updates),
                _i64(updates.size), _i64(_prod(data.shape[k:])), _i32(k), meta]  # fmt: skip
        if op:
            args.append(_i32(op))
        args.append(err)
        _launch(kernels("scatter_nd" + suffix), grid_for(updates.size, THREADS), THREADS, args)
        _raise_if(err, f"ScatterND: an index is out of range for data {list(data.shape)}.")
        return out

    return run


@registry.builder(
    "ScatterElements",
    since=(11, 13, 16, 18),
    dtypes={0: ARRAY_TYPES},
    attributes=("axis", "reduction"),
    check=_scatter_check,
    limit=_limits(_scatter_limit),
)
def scatter_elements(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "scatter.cu")
    axis_attr = int(info.attr("axis", 0))
    metas: dict[tuple, Any] = {}

    def run(data, indices, updates):
        xp, out, op, suffix = _scatter_common(dev, info, data)
        rank = data.ndim
        axis = ops.normalize_axis(axis_attr, rank, "ScatterElements")
        if indices.shape != updates.shape or indices.ndim != rank:
            raise InvalidArgument(
                f"ScatterElements: indices {list(indices.shape)} and updates "
                f"{list(updates.shape)} must have one shape of data's rank {rank}."
            )
        for q in range(rank):
            if q != axis and indices.shape[q] > data.shape[q]:
                raise InvalidArgument(
                    f"ScatterElements: indices {list(indices.shape)} exceed data "
                    f"{list(data.shape)} on axis {q}."
                )
        if updates.size == 0:
            return out
        meta = _cached_upload(
            xp, metas, (tuple(indices.shape), tuple(data.shape)),
            lambda: _dims_strides(indices.shape, data.shape),
        )  # fmt: skip
        err = xp.zeros(1, np.int32)
        args = [out, _contig(xp, indices).astype(np.int64, copy=False), _contig(xp, updates),
                _i64(updates.size), _i32(rank), _i32(axis), _i64(data.shape[axis]), meta]  # fmt: skip
        if op:
            args.append(_i32(op))
        args.append(err)
        _launch(kernels("scatter_elements" + suffix), grid_for(updates.size, THREADS), THREADS,
                args)  # fmt: skip
        _raise_if(err, f"ScatterElements: an index is out of range for data {list(data.shape)}.")
        return out

    return run


# -- Softmax, LogSoftmax ---------------------------------------------------------------------------
def softmax_layout(shape: Sequence[int], axis: int, opset: int) -> tuple[int, int, int]:
    """(outer, n, inner) of Softmax along ``axis``: before opset 13 the input is coerced to 2-D at
    ``axis`` (rows of every axis from ``axis`` on, inner 1); from 13 the one axis."""
    axis = ops.normalize_axis(axis, len(shape), "Softmax")
    if opset < 13:
        return _prod(shape[:axis]), _prod(shape[axis:]), 1
    return _prod(shape[:axis]), int(shape[axis]), _prod(shape[axis + 1 :])


def _softmax_check(info: Any) -> str | None:
    rank = _rank(info, 0)
    default = 1 if info.opset < 13 else -1
    if rank is not None and rank > 0:
        return ops.axis_reason(info.attr("axis", default), rank)
    return None


def _softmax_builder(log: bool):
    def build(info: Any):
        dev = device_of(info)
        kernels = _Kernels(dev, "softmax.cu")
        axis = int(info.attr("axis", 1 if info.opset < 13 else -1))
        opset = info.opset

        def run(x):
            xp = dev.cp
            y = xp.empty(x.shape, x.dtype)
            if y.size == 0:
                return y
            outer, n, inner = softmax_layout(x.shape, axis, opset)
            ct = CTYPE[np.dtype(x.dtype)]
            xc = _contig(xp, x)
            if inner == 1:
                fn = kernels(f"softmax_rows<{ct}, {_b(log)}>")
                _launch(fn, grid_for(outer), row_block(n), (xc, y, _i64(outer), _i64(n)))
            else:
                fn = kernels(f"softmax_strided<{ct}, {_b(log)}>")
                args = (xc, y, _i64(outer), _i64(n), _i64(inner))
                _launch(fn, grid_for(outer * inner, THREADS), THREADS, args)
            return y

        return run

    return build


for _op, _log in (("Softmax", False), ("LogSoftmax", True)):
    registry.builder(
        _op, since=(1, 11, 13), dtypes={0: FLOATS}, attributes=("axis",), check=_softmax_check,
        limit=needs_cuda,
    )(_softmax_builder(_log))  # fmt: skip


# -- layer normalizations --------------------------------------------------------------------------
def norm_launch(n: int, acc_dtype: np.dtype) -> tuple[int, bool]:
    """(threads, cache) of the block normalizing a row of ``n``: cache the row in shared memory
    when its accumulation-type values fit."""
    return row_block(n), 0 < n * np.dtype(acc_dtype).itemsize <= SHARED_BUDGET


def _acc(dt: np.dtype) -> np.dtype:
    return F64 if np.dtype(dt) == F64 else F32


def _row_param(xp: Any, p: Any, norm_shape: tuple[int, ...], what: str, op: str) -> Any:
    """A scale / bias as the n contiguous values of the normalized shape."""
    n = _prod(norm_shape)
    if p.size == n:
        return _contig(xp, p).reshape(n)
    try:
        return _contig(xp, xp.broadcast_to(p, norm_shape)).reshape(n)
    except ValueError:
        raise InvalidArgument(
            f"{op}: {what} {list(p.shape)} does not broadcast to the normalized shape "
            f"{list(norm_shape)}."
        ) from None


def _norm(dev: Any, kernels: _Kernels, op: str, x: Any, gamma: Any, beta: Any, *, axis: int,
          epsilon: float, simplified: bool, skip: Any = None, bias: Any = None,
          want_sum: bool = False, want_stats: bool = False):  # fmt: skip
    """y, mean, inv_std (shape x.shape[:axis] + 1s, accumulation type; None unless
    ``want_stats``) and the skip sum (None unless ``want_sum``)."""
    xp = dev.cp
    shape = tuple(x.shape)
    axis = ops.normalize_axis(axis, len(shape), op)
    rows, n = _prod(shape[:axis]), _prod(shape[axis:])
    xdt, vdt = np.dtype(x.dtype), np.dtype(gamma.dtype)
    adt = _acc(xdt)
    y = xp.empty(shape, vdt)
    stat_shape = shape[:axis] + (1,) * (len(shape) - axis)
    mean = xp.empty(stat_shape, adt) if want_stats else None
    inv = xp.empty(stat_shape, adt) if want_stats else None
    total = xp.empty(shape, xdt) if want_sum else None
    if x.size == 0:
        return y, mean, inv, total
    norm_shape = shape[axis:]
    g = _row_param(xp, gamma, norm_shape, "scale", op)
    bt = (
        None
        if beta is None
        else _row_param(xp, beta.astype(vdt, copy=False), norm_shape, "bias", op)
    )
    bs = (
        None
        if bias is None
        else _row_param(xp, bias.astype(xdt, copy=False), norm_shape, "bias", op)
    )
    sk, skip_rows = None, 1
    if skip is not None:
        skip = skip.astype(xdt, copy=False)
        if skip.size and skip.size % n == 0 and _broadcasts(skip.shape, shape):
            # the skip's rows repeat over the leading axes: row r adds skip row r % skip_rows
            sk, skip_rows = _contig(xp, skip).reshape(-1), skip.size // n
        else:
            try:
                sk = _contig(xp, xp.broadcast_to(skip, shape)).reshape(-1)
            except ValueError:
                raise InvalidArgument(
                    f"{op}: skip {list(skip.shape)} does not broadcast to input {list(shape)}."
                ) from None
            skip_rows = rows
    threads, cache = norm_launch(n, adt)
    fn = kernels(f"norm_rows<{CTYPE[xdt]}, {CTYPE[vdt]}>")
    args = (_contig(xp, x), sk, _i64(skip_rows), bs, g, bt, y, total, mean, inv, _i64(rows),
            _i64(n), np.float64(epsilon), _i32(simplified), _i32(cache))  # fmt: skip
    _launch(fn, grid_for(rows), threads, args, n * adt.itemsize if cache else 0)
    return y, mean, inv, total


def _broadcasts(small: Sequence[int], big: Sequence[int]) -> bool:
    """Whether ``small`` is a suffix of ``big`` up to leading 1s (rows repeat over the rest)."""
    small = list(small)
    while small and small[0] == 1:
        small.pop(0)
    return len(small) <= len(big) and tuple(big[len(big) - len(small) :]) == tuple(small)


def _norm_types_limit(info: Any) -> str | None:
    xdt, sdt = info.input_dtype(0), info.input_dtype(1) if info.has_input(1) else None
    if info.node.op_type in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
        sdt = info.input_dtype(2) if info.has_input(2) else None
    if xdt is not None and sdt is not None and (xdt, sdt) not in NORM_PAIRS:
        return (
            f"input of {xdt} with scale of {sdt} is not implemented (the pairs are equal types, "
            "or float32 with a half type either way)"
        )
    return None


def _stash_limit(info: Any) -> str | None:
    stash = int(info.attr("stash_type", 1))
    if stash != 1:
        return f"stash_type {stash} is not implemented (only 1: float32 statistics)"
    return None


def _layer_norm_check(info: Any) -> str | None:
    rank = _rank(info, 0)
    if rank is not None:
        return ops.axis_reason(info.attr("axis", -1), rank)
    return None


@registry.builder(
    "LayerNormalization",
    since=17,
    dtypes={0: FLOATS},
    attributes=("axis", "epsilon", "stash_type"),
    check=_layer_norm_check,
    limit=_limits(_norm_types_limit, _stash_limit),
)
def layer_normalization(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "norm.cu")
    axis = int(info.attr("axis", -1))
    eps = float(info.attr("epsilon", 1e-5))
    stats = _wants(info, 1) or _wants(info, 2)
    sdt = [info.output_dtype(i) or F32 for i in (1, 2)]

    outputs = output_trimmer(info.node, info.opset)

    def run(x, scale, b=None):
        y, mean, inv, _ = _norm(dev, kernels, "LayerNormalization", x, scale, b, axis=axis,
                                epsilon=eps, simplified=False, want_stats=stats)  # fmt: skip
        if stats:
            mean, inv = mean.astype(sdt[0], copy=False), inv.astype(sdt[1], copy=False)
        return outputs((y, mean, inv))

    return run


@registry.builder(
    "RMSNormalization",
    since=23,
    dtypes={0: FLOATS, 1: FLOATS},
    attributes=("axis", "epsilon", "stash_type"),
    check=_layer_norm_check,
    limit=_limits(_norm_types_limit, _stash_limit),
)
def rms_normalization(info: Any):
    dev = device_of(info)
    kernels = _Kernels(dev, "norm.cu")
    axis = int(info.attr("axis", -1))
    eps = float(info.attr("epsilon", 1e-5))

    def run(x, scale):
        return _norm(dev, kernels, "RMSNormalization", x, scale, None, axis=axis, epsilon=eps,
                     simplified=True)[0]  # fmt: skip

    return run


@registry.builder(
    "SimplifiedLayerNormalization",
    since=1,
    dtypes={0: FLOATS, 1: FLOATS},
    attributes=("axis", "epsilon", "stash_type"),
    check=_layer_norm_check,
    limit=_limits(_norm_types_limit, _stash_limit),
)
def simplified_layer_normalization(info: Any):
    """RMS normalization from ``axis`` on (onnxruntime registers it in the ONNX domain); outputs
    Y and inv_std_var."""
    dev = device_of(info)
    kernels = _Kernels(dev, "norm.cu")
    axis = int(info.attr("axis", -1))
    eps = float(info.attr("epsilon", 1e-5))
    stats = _wants(info, 1)
    inv_dt = info.output_dtype(1) or F32

    outputs = output_trimmer(info.node, info.opset)

    def run(x, scale):
        y, _, inv, _ = _norm(dev, kernels, "SimplifiedLayerNormalization", x, scale, None,
                             axis=axis, epsilon=eps, simplified=True, want_stats=stats)  # fmt: skip
        return outputs((y, None if inv is None else inv.astype(inv_dt, copy=False)))

    return run


def _skip_norm_builder(simplified: bool):
    op = "SkipSimplifiedLayerNormalization" if simplified else "SkipLayerNormalization"

    def build(info: Any):
        dev = device_of(info)
        kernels = _Kernels(dev, "norm.cu")
        eps = float(info.attr("epsilon", 1e-12))
        stats = _wants(info, 1) or _wants(info, 2)
        want_sum = _wants(info, 3)

        outputs = output_trimmer(info.node, info.opset)

        def run(x, skip, gamma, *rest):
            if simplified:
                beta, bias = None, (rest[0] if rest else None)
            else:
                beta = rest[0] if rest else None
                bias = rest[1] if len(rest) > 1 else None
            y, mean, inv, total = _norm(dev, kernels, op, x, gamma, beta, axis=-1, epsilon=eps,
                                        simplified=simplified, skip=skip, bias=bias,
                                        want_sum=want_sum, want_stats=stats)  # fmt: skip
            if stats:
                mean, inv = mean.astype(F32, copy=False), inv.astype(F32, copy=False)
            return outputs((y, None if simplified else mean, inv, total))

        return run

    return build


for _simplified in (False, True):
    registry.builder(
        "SkipSimplifiedLayerNormalization" if _simplified else "SkipLayerNormalization",
        since=1, domain=MS, dtypes={0: FLOATS}, attributes=("epsilon",),
        limit=_limits(_norm_types_limit),
    )(_skip_norm_builder(_simplified))  # fmt: skip


# -- Attention, MultiHeadAttention (com.microsoft) --------------------------------------------------
def _compute_dtype(dt: np.dtype) -> np.dtype:
    """What attention's matmuls and softmax run in: bfloat16 in float32, other types as they are
    (cuBLAS accumulates float16 products in float32)."""
    return F32 if BF16 is not None and np.dtype(dt) == BF16 else np.dtype(dt)


def _heads(x: Any, n: int) -> Any:
    """(B, S, N*H) -> (B, N, S, H) (a view)."""
    b, s, d = x.shape
    return x.reshape(b, s, n, d // n).transpose(0, 2, 1, 3)


def key_mask(xp: Any, mask: Any, b: int, s: int, total: int) -> tuple[Any, int] | None:
    """A mask of attention's key positions as int32 (B, rows, T) (0: masked) and rows (1 or S),
    from the formats onnxruntime takes: (B) valid lengths, (2B) ends then starts, (B, T) raw,
    (B, S, T) raw. None for no mask.

    Raises:
        InvalidArgument: another shape."""
    if mask is None:
        return None
    cols = xp.arange(total)
    if mask.ndim == 1 and mask.shape[0] == b:
        keep = cols[None, :] < mask[:, None]
        return _contig(xp, keep.astype(np.int32)).reshape(b, 1, total), 1
    if mask.ndim == 1 and mask.shape[0] == 2 * b:
        keep = (cols[None, :] < mask[:b, None]) & (cols[None, :] >= mask[b:, None])
        return _contig(xp, keep.astype(np.int32)).reshape(b, 1, total), 1
    if mask.ndim == 2 and tuple(mask.shape) == (b, total):
        return _contig(xp, (mask > 0).astype(np.int32)).reshape(b, 1, total), 1
    if mask.ndim == 3 and tuple(mask.shape) == (b, s, total):
        return _contig(xp, (mask > 0).astype(np.int32)), s
    raise InvalidArgument(
        f"attention mask of shape {list(mask.shape)} is not one of (B), (2B), (B, T), (B, S, T) "
        f"with B={b}, S={s}, T={total}."
    )


def bias_strides(xp: Any, bias: Any, shape: tuple[int, int, int, int]) -> tuple[Any, int, int]:
    """An additive attention bias broadcast to (B, N, S, T) as (array, batch stride, head stride)
    in elements, with each (S, T) block contiguous (a copy only when it is not)."""
    b, n, s, t = shape
    view = xp.broadcast_to(bias, shape)
    item = view.dtype.itemsize
    if bias.flags.c_contiguous and view.strides[2:] == (t * item, item):
        return bias, view.strides[0] // item, view.strides[1] // item
    full = _contig(xp, view)
    return full, n * s * t, s * t


def _attend(dev: Any, kernels: _Kernels, q: Any, k: Any, v: Any, *, scale: float, bias: Any,
            mask: Any, causal: bool, filter_value: float) -> Any:  # fmt: skip
    """softmax(q k^T * scale + bias + mask) v for q (B, N, S, H), k (B, N, T, H), v (B, N, T, Hv)
    in the compute type -> (B, S, N*Hv)."""
    xp = dev.cp
    b, n, s, _ = q.shape
    t = k.shape[2]
    scores = _contig(xp, matmul(xp, q, xp.swapaxes(k, -1, -2)))  # (B, N, S, T)
    dt = np.dtype(scores.dtype)
    bias_arr, sb, sh = None, 0, 0
    if bias is not None:
        bias_arr, sb, sh = bias_strides(xp, bias.astype(dt, copy=False), (b, n, s, t))
    marr, mrows = mask if mask is not None else (None, 1)
    rows = b * n * s
    if rows and t:
        args = (scores, scores, _i64(rows), _i32(n), _i32(s), _i32(t), np.float32(scale), bias_arr,
                _i64(sb), _i64(sh), marr, _i32(mrows), _i32(causal), _i32(t - s),
                np.float32(filter_value))  # fmt: skip
        _launch(kernels(f"attention_softmax<{CTYPE[dt]}>"), grid_for(rows), row_block(t), args)
    ctx = matmul(xp, scores, v)  # (B, N, S, Hv)
    return ctx.transpose(0, 2, 1, 3).reshape(b, s, n * v.shape[-1])


def _attention_limit(info: Any) -> str | None:
    if int(info.attr("do_rotary", 0) or 0):
        return "do_rotary (rotary embedding inside Attention) is not implemented"
    if int(info.attr("past_present_share_buffer", 0) or 0) or info.has_input(6):
        return (
            "past_present_share_buffer / past_sequence_length (a preallocated KV cache) is not "
            "implemented"
        )
    if _rank(info, 3) == 4:
        return "a 4-D mask_index (B, 1, max_sequence, max_sequence) is not implemented"
    return None


def _attention_check(info: Any) -> str | None:
    heads = info.attr("num_heads")
    if heads is None or int(heads) <= 0:
        return f"num_heads must be a positive integer, got {heads}"
    return None


@registry.builder(
    "Attention",
    domain=MS,
    dtypes={0: FLOATS},
    check=_attention_check,
    limit=_limits(_attention_limit),
)
def attention(info: Any):
    """Self-attention with its input projection, onnxruntime's com.microsoft Attention: qkv =
    input @ weights + bias, multi-head scaled dot-product attention with mask_index ((B), (2B),
    (B, T), (B, S, T)), attention_bias, unidirectional (causal) and past/present as
    (2, B, N, T, H)."""
    dev = device_of(info)
    kernels = _Kernels(dev, "softmax.cu")
    n = int(info.attr("num_heads"))
    causal = bool(info.attr("unidirectional", 0))
    sizes = info.attr("qkv_hidden_sizes")
    filter_value = float(info.attr("mask_filter_value", -10000.0))
    scale_attr = info.attr("scale")
    want_present = _wants(info, 1)

    outputs = output_trimmer(info.node, info.opset)

    def run(x, weights, bias=None, mask_index=None, past=None, attention_bias=None, *_):
        xp = dev.cp
        dt = np.dtype(x.dtype)
        cdt = _compute_dtype(dt)
        b, s, d = x.shape
        qkv = matmul(
            xp, x.astype(cdt, copy=False).reshape(b * s, d), weights.astype(cdt, copy=False)
        )
        if bias is not None:
            qkv = qkv + bias.astype(cdt, copy=False)
        hq, hk, hv = [int(v) for v in sizes] if sizes else [qkv.shape[-1] // 3] * 3
        if hq % n or hk % n or hv % n or hq != hk or hq + hk + hv != qkv.shape[-1]:
            raise InvalidArgument(
                f"Attention: hidden sizes {[hq, hk, hv]} do not split into {n} heads (q and k "
                f"equal) or do not sum to the weights' {qkv.shape[-1]} columns."
            )
        qkv = qkv.reshape(b, s, hq + hk + hv)
        q = _heads(qkv[..., :hq], n)
        k = _heads(qkv[..., hq : hq + hk], n)
        v = _heads(qkv[..., hq + hk :], n)
        if past is not None and past.size:
            k = xp.concatenate([past[0].astype(cdt, copy=False), k], axis=2)
            v = xp.concatenate([past[1].astype(cdt, copy=False), v], axis=2)
        total = k.shape[2]
        scale = float(scale_attr) if scale_attr else 1.0 / math.sqrt(hq // n)
        out = _attend(dev, kernels, q, k, v, scale=scale, bias=attention_bias,
                      mask=key_mask(xp, mask_index, b, s, total), causal=causal,
                      filter_value=filter_value)  # fmt: skip
        present = None
        if want_present:
            if hk != hv:
                raise InvalidArgument("Attention: present needs equal key and value sizes.")
            present = xp.stack([k, v]).astype(dt, copy=False)
        return outputs((out.astype(dt, copy=False), present))

    return run


def _mha_limit(info: Any) -> str | None:
    if info.has_input(8) or info.has_input(9):
        return (
            "past_sequence_length / cache_indirection (a shared KV buffer, beam search) are not "
            "implemented"
        )
    if _wants(info, 3):
        return "the qk output is not implemented"
    rank = _rank(info, 4)
    if rank is not None and rank not in (1, 2, 3):
        return f"a key_padding_mask of rank {rank} is not implemented (ranks 1, 2 and 3 are)"
    return None


def _mha_qkv(xp: Any, query: Any, key: Any, value: Any, bias: Any, n: int, cdt: np.dtype):
    """q, k, v as (B, N, S|L, H) from MultiHeadAttention's layouts (3-D, packed QKV (B, S, N, 3,
    H), packed KV (B, L, N, 2, H), or 4-D key / value already in heads), the bias added where it
    applies; and whether past key / value are concatenated (not for 4-D key / value)."""
    q = query.astype(cdt, copy=False)
    cb = None if bias is None else bias.astype(cdt, copy=False)
    if key is None and q.ndim == 5:
        if cb is not None:
            q = q + cb.reshape(3, n, -1).transpose(1, 0, 2)
        t = q.transpose(3, 0, 2, 1, 4)
        return t[0], t[1], t[2], True
    if key is None:
        raise InvalidArgument("MultiHeadAttention: key is required unless query packs QKV.")
    d = q.shape[-1]
    if cb is not None:
        q = q + cb[:d]
    q = _heads(q, n)
    k = key.astype(cdt, copy=False)
    if k.ndim == 5:
        if cb is not None:
            k = k + cb[d:].reshape(2, n, -1).transpose(1, 0, 2)
        t = k.transpose(3, 0, 2, 1, 4)
        return q, t[0], t[1], True
    if value is None:
        raise InvalidArgument("MultiHeadAttention: value is required with a 3-D or 4-D key.")
    vv = value.astype(cdt, copy=False)
    if k.ndim == 4:
        return q, k, vv, False
    if cb is not None:
        dk = k.shape[-1]
        k = k + cb[d : d + dk]
        vv = vv + cb[d + dk :]
    return q, _heads(k, n), _heads(vv, n), True


@registry.builder(
    "MultiHeadAttention",
    domain=MS,
    dtypes={0: FLOATS},
    check=_attention_check,
    limit=_limits(_mha_limit),
)
def multi_head_attention(info: Any):
    """onnxruntime's com.microsoft MultiHeadAttention on projected query / key / value (3-D,
    packed QKV or KV, or 4-D key / value), with bias, key_padding_mask ((B), (B, T), (B, S, T)),
    attention_bias, unidirectional, and past / present key and value as (B, N, T, H)."""
    dev = device_of(info)
    kernels = _Kernels(dev, "softmax.cu")
    n = int(info.attr("num_heads"))
    causal = bool(info.attr("unidirectional", 0))
    filter_value = float(info.attr("mask_filter_value", -10000.0))
    scale_attr = info.attr("scale")

    outputs = output_trimmer(info.node, info.opset)

    def run(query, key=None, value=None, bias=None, key_padding_mask=None, attention_bias=None,
            past_key=None, past_value=None, *_):  # fmt: skip
        xp = dev.cp
        dt = np.dtype(query.dtype)
        cdt = _compute_dtype(dt)
        q, k, v, use_past = _mha_qkv(xp, query, key, value, bias, n, cdt)
        if use_past and past_key is not None and past_key.size:
            k = xp.concatenate([past_key.astype(cdt, copy=False), k], axis=2)
            v = xp.concatenate([past_value.astype(cdt, copy=False), v], axis=2)
        b, _, s, head = q.shape
        total = k.shape[2]
        scale = float(scale_attr) if scale_attr else 1.0 / math.sqrt(head)
        out = _attend(dev, kernels, q, k, v, scale=scale, bias=attention_bias,
                      mask=key_mask(xp, key_padding_mask, b, s, total), causal=causal,
                      filter_value=filter_value)  # fmt: skip
        return outputs(
            (out.astype(dt, copy=False), k.astype(dt, copy=False), v.astype(dt, copy=False))
        )

    return run
