"""Shape and indexing ops. Shapes are concrete when a partition is converted (see convert.py), so
ONNX's shape arithmetic (0 and -1 in Reshape, negative axes, clamped Slice bounds) is done on the
host and the program gets static values."""

from __future__ import annotations

import numpy as np

from . import ANY, F32, FLOATS, I32, I64, INTS, NUMERIC, Ctx, attr_axis, builder, narrow


def _i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).clip(-(2**31), 2**31 - 1).astype(np.int32)


def _axes(ctx: Ctx, node, i: int = 1, attr: str = "axes") -> list[int] | None:
    """Axes from the attribute (older opsets) or the constant input ``i``; None when absent."""
    if node.attr(attr) is not None:
        return [int(a) for a in node.attr(attr)]
    c = ctx.const(i)
    return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]


@builder("Reshape", since=5, dtypes=ANY, const_inputs=(1,))
def reshape(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    target = [int(d) for d in ctx.const(1).reshape(-1)]
    if not node.attr("allowzero", 0):
        target = [shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        target[target.index(-1)] = int(np.prod(shape, dtype=np.int64)) // max(known, 1)
    ctx.out(0, ctx.mb.reshape(x=ctx.x(0), shape=_i32(target)))


@builder("Flatten", since=1, dtypes=ANY)
def flatten(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    axis = attr_axis(int(node.attr("axis", 1)), len(shape))
    lead = int(np.prod(shape[:axis], dtype=np.int64))
    rest = int(np.prod(shape[axis:], dtype=np.int64))
    ctx.out(0, ctx.mb.reshape(x=ctx.x(0), shape=_i32([lead, rest])))


@builder("Transpose", dtypes=ANY)
def transpose(ctx: Ctx, node) -> None:
    rank = ctx.rank(0)
    perm = node.attr("perm")
    perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
    ctx.out(0, ctx.mb.transpose(x=ctx.x(0), perm=perm))


@builder("Concat", since=4, dtypes=ANY)
def concat(ctx: Ctx, node) -> None:
    values = [ctx.x(i) for i in range(len(node.inputs)) if ctx.has(i)]
    axis = attr_axis(int(node.attr("axis")), ctx.rank(0))
    if len(values) == 1:
        ctx.out(0, ctx.mb.identity(x=values[0]))
    else:
        ctx.out(0, ctx.mb.concat(values=values, axis=axis))


def _axes_const(i: int, attr: str = "axes"):
    def check(info) -> str | None:
        if info.attr(attr) is None and info.has_input(i) and info.constant(i) is None:
            return f"input {i} ({attr}) must be constant for Core ML"
        return None

    return check


@builder("Squeeze", dtypes=ANY, check=_axes_const(1))
def squeeze(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    axes = _axes(ctx, node)
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = sorted(attr_axis(a, len(shape)) for a in axes)
    if not axes:
        ctx.out(0, ctx.mb.identity(x=ctx.x(0)))
    else:
        ctx.out(0, ctx.mb.reshape(x=ctx.x(0), shape=_i32(
            [d for i, d in enumerate(shape) if i not in axes])))  # fmt: skip


@builder("Unsqueeze", dtypes=ANY, check=_axes_const(1))
def unsqueeze(ctx: Ctx, node) -> None:
    shape = list(ctx.shape(0))
    axes = _axes(ctx, node)
    out_rank = len(shape) + len(axes)
    for a in sorted(attr_axis(a, out_rank) for a in axes):
        shape.insert(a, 1)
    ctx.out(0, ctx.mb.reshape(x=ctx.x(0), shape=_i32(shape)))


def _slice_check(info) -> str | None:
    if info.opset >= 10:
        for i in range(1, 5):
            if info.has_input(i) and info.constant(i) is None:
                return f"Slice input {i} (starts/ends/axes/steps) must be constant for Core ML"
    return None


@builder("Slice", dtypes=ANY, check=_slice_check)
def slice_(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    rank = len(shape)
    if ctx.node_opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        starts, ends = ctx.const(1), ctx.const(2)
        axes = ctx.const(3) if ctx.has(3) else None
        steps = ctx.const(4) if ctx.has(4) else None
    starts = [int(v) for v in np.asarray(starts).reshape(-1)]
    ends = [int(v) for v in np.asarray(ends).reshape(-1)]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in np.asarray(axes)]
    steps = [1] * len(starts) if steps is None else [int(s) for s in np.asarray(steps)]
    begin, end, stride = [0] * rank, list(shape), [1] * rank
    end_mask = [False] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = attr_axis(a, rank)
        b, stop, step = slice(s, e, st).indices(shape[a])
        begin[a], end[a], stride[a] = b, stop, step
        if step < 0 and stop < 0:  # runs down to (and including) index 0
            end[a], end_mask[a] = 0, True
    y = ctx.mb.slice_by_index(
        x=ctx.x(0), begin=_i32(begin), end=_i32(end), stride=_i32(stride), end_mask=end_mask
    )
    ctx.out(0, y)


def _wrapped_indices(ctx: Ctx, i: int, dim: int):
    """Input ``i``'s indices into an axis of ``dim`` cells with negative ones wrapped (on the
    host for a constant, as a select in the program otherwise), int32."""
    idx = ctx.x(i)
    if isinstance(idx, np.ndarray):
        return np.where(idx < 0, idx + dim, idx).astype(np.int32)
    wrapped = ctx.mb.add(x=idx, y=np.int32(dim))
    return ctx.mb.select(cond=ctx.mb.less(x=idx, y=np.int32(0)), a=wrapped, b=idx)


@builder("GatherElements", since=11, dtypes=ANY, check=lambda info: None
         if info.input_dtype(1) in INTS else "indices must be int32 or int64")  # fmt: skip
def gather_elements(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    axis = attr_axis(int(node.attr("axis", 0)), len(shape))
    idx = _wrapped_indices(ctx, 1, shape[axis])
    ctx.out(0, ctx.mb.gather_along_axis(x=ctx.x(0), indices=idx, axis=axis))


def _gather_nd_check(info) -> str | None:
    if info.input_dtype(1) not in INTS:
        return "indices must be int32 or int64"
    b = int(info.attr("batch_dims", 0))
    x, idx = info.input_shape(0), info.input_shape(1)
    if x is None or idx is None:
        return None
    if not 0 <= b < min(len(x), len(idx)):
        return f"batch_dims {b} must be below the ranks of data ({len(x)}) and indices ({len(idx)})"
    if any(isinstance(d, int) and isinstance(e, int) and d != e for d, e in zip(x[:b], idx[:b])):
        return f"the first {b} (batch) dimensions of data and indices differ"
    k = idx[-1]
    if isinstance(k, int) and k >= 0 and b + k > len(x):
        return f"indices' last dimension {k} plus batch_dims {b} exceeds the data's rank {len(x)}"
    return None


@builder("GatherND", since=11, dtypes=NUMERIC, check=_gather_nd_check)
def gather_nd(ctx: Ctx, node) -> None:
    """MIL's ``gather_nd`` (output ``indices.shape[:-1] + data.shape[batch_dims + k:]``, as
    ONNX's). Its iOS 17 version reads negative indices as out of bounds: each index component
    is wrapped by the dimension it indexes, ``data.shape[batch_dims + j]``."""
    mb = ctx.mb
    shape = ctx.shape(0)
    b = int(node.attr("batch_dims", 0))
    k = ctx.shape(1)[-1]
    dims = np.array(shape[b : b + k], np.int32)
    idx = ctx.x(1)
    if isinstance(idx, np.ndarray):
        idx = np.where(idx < 0, idx + dims, idx).astype(np.int32)
    else:
        idx = mb.select(cond=mb.less(x=idx, y=np.int32(0)), a=mb.add(x=idx, y=dims), b=idx)
    ctx.out(0, mb.gather_nd(x=ctx.x(0), indices=idx, batch_dims=b))


def _check_trilu(info) -> str | None:
    if info.has_input(1) and info.constant(1) is None:
        return "input 1 (k) must be constant for Core ML"
    return None


@builder("Trilu", since=14, dtypes=ANY, check=_check_trilu)
def trilu(ctx: Ctx, node) -> None:
    """The kept triangle as a select against a constant mask of the last two axes (shapes are
    concrete when a partition is converted): exact for every value, infinities included."""
    shape = ctx.shape(0)
    k = int(np.asarray(ctx.const(1)).reshape(-1)[0]) if ctx.has(1) else 0
    rows, cols = np.arange(shape[-2])[:, None], np.arange(shape[-1])[None, :]
    keep = (cols - rows >= k) if int(node.attr("upper", 1)) else (cols - rows <= k)
    ctx.out(0, ctx.mb.select(cond=keep, a=ctx.x(0), b=np.zeros((), ctx.np_dtype(0))))


@builder("Gather", dtypes=ANY, check=lambda info: None
         if info.input_dtype(1) in INTS else "indices must be int32 or int64")  # fmt: skip
def gather(ctx: Ctx, node) -> None:
    mb = ctx.mb
    shape = ctx.shape(0)
    axis = attr_axis(int(node.attr("axis", 0)), len(shape))
    idx = ctx.x(1)
    scalar_index = len(ctx.shape(1)) == 0
    if isinstance(idx, np.ndarray):
        idx = (
            np.where(idx < 0, idx + shape[axis], idx)
            .astype(np.int32)
            .reshape((1,) if scalar_index else idx.shape)
        )
    else:
        if scalar_index:
            idx = mb.reshape(x=idx, shape=np.array([1], np.int32))
        wrapped = mb.add(x=idx, y=np.int32(shape[axis]))
        idx = mb.select(cond=mb.less(x=idx, y=np.int32(0)), a=wrapped, b=idx)
    y = mb.gather(x=ctx.x(0), indices=idx, axis=axis)
    if scalar_index:
        out = [d for i, d in enumerate(shape) if i != axis]
        y = mb.reshape(x=y, shape=_i32(out))
    ctx.out(0, y)


@builder("Shape", dtypes=ANY)
def shape_(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    start, end = int(node.attr("start", 0)), node.attr("end")
    dims = shape[start:] if end is None else shape[start : int(end)]
    ctx.out(0, ctx.mb.identity(x=_i32(dims)))


@builder("Expand", since=8, dtypes=ANY, const_inputs=(1,))
def expand(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    target = [int(d) for d in ctx.const(1).reshape(-1)]
    rank = max(len(shape), len(target))
    src = [1] * (rank - len(shape)) + list(shape)
    tgt = [1] * (rank - len(target)) + target
    out = [max(s, t) if 1 in (s, t) else s for s, t in zip(src, tgt)]
    x = ctx.x(0)
    if len(src) != len(shape):
        x = ctx.mb.reshape(x=x, shape=_i32(src))
    reps = [o // s for o, s in zip(out, src)]
    ctx.out(0, ctx.mb.tile(x=x, reps=_i32(reps)) if any(r != 1 for r in reps)
            else ctx.mb.identity(x=x))  # fmt: skip


@builder("Tile", since=6, dtypes=ANY, const_inputs=(1,))
def tile(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.tile(x=ctx.x(0), reps=_i32(ctx.const(1).reshape(-1))))


def _split_check(info) -> str | None:
    if info.opset >= 13 and info.has_input(1) and info.constant(1) is None:
        return "Split's split input must be constant for Core ML"
    return None


@builder("Split", since=2, dtypes=ANY, check=_split_check)
def split(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    axis = attr_axis(int(node.attr("axis", 0)), len(shape))
    sizes = node.attr("split") if ctx.node_opset < 13 else ctx.const(1)
    n = len(node.outputs)
    if sizes is None:  # equal parts; opset 18's num_outputs lets the last one be smaller
        part = -(-shape[axis] // n)
        sizes = [part] * (n - 1) + [shape[axis] - part * (n - 1)]
    sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
    if n == 1:
        ctx.out(0, ctx.mb.identity(x=ctx.x(0)))
        return
    outs = ctx.mb.split(x=ctx.x(0), split_sizes=_i32(sizes), axis=axis)
    for i, v in enumerate(outs):
        ctx.out(i, v)


def _pad_check(info) -> str | None:
    mode = info.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        return f"Pad mode {mode!r}: Core ML pads with constant, reflect or edge (replicate)"
    if info.opset >= 11:
        for i in (1, 2, 3):
            if info.has_input(i) and info.constant(i) is None:
                return f"Pad input {i} (pads/constant_value/axes) must be constant for Core ML"
        pads = info.constant(1)
    else:
        pads = info.attr("pads")
    if pads is None:
        return None
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    if any(p < 0 for p in pads):
        return "negative pads (cropping) are not converted"
    x = info.input_shape(0)
    if mode != "constant" and x is not None and (info.opset < 18 or not info.has_input(3)):
        n = len(pads) // 2
        if any(pads[i] or pads[i + n] for i in range(max(n - 2, 0))):
            return f"Pad mode {mode!r} on other than the last two axes: Core ML pads those only"
    return None


@builder("Pad", since=2, dtypes=FLOATS, check=_pad_check)
def pad(ctx: Ctx, node) -> None:
    shape = ctx.shape(0)
    rank = len(shape)
    mode = node.attr("mode", "constant")
    if ctx.node_opset < 11:
        pads, value = list(node.attr("pads")), float(node.attr("value", 0.0))
        axes = list(range(rank))
    else:
        pads = [int(p) for p in ctx.const(1).reshape(-1)]
        value = float(ctx.const(2).reshape(())) if ctx.has(2) else 0.0
        axes = _axes(ctx, node, 3) if ctx.has(3) else list(range(len(pads) // 2))
    full = [0] * (2 * rank)
    k = len(axes)
    for j, a in enumerate(axes):
        a = attr_axis(a, rank)
        full[2 * a], full[2 * a + 1] = pads[j], pads[j + k]
    first = next((i for i in range(rank) if full[2 * i] or full[2 * i + 1]), rank)
    if first == rank:
        ctx.out(0, ctx.mb.identity(x=ctx.x(0)))
        return
    mil_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
    kwargs = {"constant_val": np.float32(value)} if mode == "constant" else {}
    if mode == "constant" and ctx.dtype_str(0) == "fp16":
        kwargs["constant_val"] = np.float16(value)
    y = ctx.mb.pad(x=ctx.x(0), pad=_i32(full[2 * first :]), mode=mil_mode, **kwargs)
    ctx.out(0, y)


def _d2s_check(info) -> str | None:
    if info.node.op_type == "SpaceToDepth" and info.attr("mode", "DCR") != "DCR":
        return "SpaceToDepth mode CRD: Core ML's space_to_depth has the DCR order only"
    x = info.input_shape(0)
    if x is not None and len(x) != 4:
        return f"the input has rank {len(x)}; 4 expected"
    return None


@builder("DepthToSpace", "SpaceToDepth", dtypes=frozenset(NUMERIC - INTS), check=_d2s_check)
def depth_space(ctx: Ctx, node) -> None:
    # MIL's depth_to_space is DCR (TensorFlow's order, in NCHW); pixel_shuffle is CRD
    b = int(node.attr("blocksize"))
    if node.op_type == "SpaceToDepth":
        ctx.out(0, ctx.mb.space_to_depth(x=ctx.x(0), block_size=b))
    elif node.attr("mode", "DCR") == "CRD":
        ctx.out(0, ctx.mb.pixel_shuffle(x=ctx.x(0), upscale_factor=b))
    else:
        ctx.out(0, ctx.mb.depth_to_space(x=ctx.x(0), block_size=b))


def _arg_check(info) -> str | None:
    if info.attr("select_last_index", 0):
        return "select_last_index=1: Core ML returns the first index of ties"
    return None


@builder("ArgMax", "ArgMin", dtypes=NUMERIC, check=_arg_check)
def arg(ctx: Ctx, node) -> None:
    fn = ctx.mb.reduce_argmax if node.op_type == "ArgMax" else ctx.mb.reduce_argmin
    axis = attr_axis(int(node.attr("axis", 0)), ctx.rank(0))
    ctx.out(0, fn(x=ctx.x(0), axis=axis, keep_dims=bool(node.attr("keepdims", 1))))


def _cos_check(info) -> str | None:
    value = info.attr("value")
    if value is not None and np.asarray(value).dtype not in (np.float32, np.float16, np.int32,
                                                             np.int64, np.bool_):  # fmt: skip
        return f"ConstantOfShape of {np.asarray(value).dtype}"
    return None


@builder("ConstantOfShape", since=9, dtypes=INTS, const_inputs=(0,), check=_cos_check)
def constant_of_shape(ctx: Ctx, node) -> None:
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    shape = [int(d) for d in ctx.const(0).reshape(-1)]
    ctx.out(0, narrow(np.full(shape, value[0], dtype=value.dtype)))


@builder("Range", since=11, dtypes=frozenset({F32, I32, I64}), const_inputs=(0, 1, 2))
def range_(ctx: Ctx, node) -> None:
    """``range_1d`` on the constant start, limit and delta (the output's length depends on their
    values, and a Core ML program is compiled for static shapes)."""
    start, limit, delta = (narrow(np.asarray(ctx.const(i)).reshape(())) for i in range(3))
    ctx.out(0, ctx.mb.range_1d(start=start, end=limit, step=delta))
