"""Matrix products, convolution, pooling, normalization and softmax."""

from __future__ import annotations

import numpy as np

from ort_core.ops import Window, conv_reason, pool_reason

from . import FLOATS, MAX_DIM, Ctx, attr_axis, builder
from .elementwise import scalar


@builder("MatMul", dtypes=FLOATS)
def matmul(ctx: Ctx, node) -> None:
    # numpy's rules for 1-D operands: a (K,) left operand is a row, a (K,) right one a column,
    # and that axis is dropped from the result
    mb = ctx.mb
    x, y = ctx.x(0), ctx.x(1)
    xs, ys = ctx.shape(0), ctx.shape(1)
    if len(xs) == 1:
        x = mb.reshape(x=x, shape=np.array([1, xs[0]], np.int32))
    if len(ys) == 1:
        y = mb.reshape(x=y, shape=np.array([ys[0], 1], np.int32))
    z = mb.matmul(x=x, y=y)
    if len(xs) == 1 or len(ys) == 1:
        out = list(z.shape)
        if len(ys) == 1:
            out.pop(-1)
        if len(xs) == 1:
            out.pop(-1 if len(ys) == 1 else -2)
        z = mb.reshape(x=z, shape=np.array(out, np.int32))
    ctx.out(0, z)


@builder("Gemm", since=7, dtypes=FLOATS)
def gemm(ctx: Ctx, node) -> None:
    mb = ctx.mb
    y = mb.matmul(
        x=ctx.x(0),
        y=ctx.x(1),
        transpose_x=bool(node.attr("transA", 0)),
        transpose_y=bool(node.attr("transB", 0)),
    )
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    if alpha != 1.0:
        y = mb.mul(x=y, y=scalar(ctx, alpha))
    if ctx.has(2) and beta != 0.0:
        c = ctx.x(2)
        if beta != 1.0:
            c = mb.mul(x=c, y=scalar(ctx, beta)) if not isinstance(c, np.ndarray) else c * beta
        y = mb.add(x=y, y=c)
    ctx.out(0, y)


def _window_check(info, transpose: bool = False) -> str | None:
    x, w = info.input_shape(0), info.input_shape(1)
    invalid = conv_reason(info.attrs, x, w, transpose)
    if invalid:
        return invalid
    if x is not None and not 3 <= len(x) <= 5:
        return f"Core ML convolutions take 1 to 3 spatial axes (input rank {len(x)})"
    return None


def _pads(ctx: Ctx, node, transpose: bool = False) -> tuple[Window, list[int], list[int]]:
    window = Window.from_attrs(node.attr_values())
    x, w = ctx.shape(0), ctx.shape(1) if len(node.inputs) > 1 else None
    spatial_w = None if w is None else w[2:]
    geo = (window.transpose_geometry if transpose else window.geometry)(x[2:], spatial_w)
    pads = [p for b, e in zip(geo.begin, geo.end) for p in (b, e)]
    return window.resolve(len(x) - 2, spatial_w), pads, list(geo.out)


def _conv_args(ctx: Ctx, window: Window, pads: list[int], bias: bool = True) -> dict:
    args = dict(
        x=ctx.x(0),
        weight=ctx.x(1),
        strides=list(window.strides),
        pad_type="custom",
        pad=pads,
        dilations=list(window.dilations),
        groups=window.group,
    )
    if bias and ctx.has(2):
        args["bias"] = ctx.x(2)
    return args


@builder("Conv", dtypes=FLOATS, const_inputs=(1, 2), check=_window_check)
def conv(ctx: Ctx, node) -> None:
    window, pads, _ = _pads(ctx, node)
    ctx.out(0, ctx.mb.conv(**_conv_args(ctx, window, pads)))


@builder("ConvTranspose", dtypes=FLOATS, const_inputs=(1, 2),
         check=lambda info: _window_check(info, transpose=True))  # fmt: skip
def conv_transpose(ctx: Ctx, node) -> None:
    window, pads, out_spatial = _pads(ctx, node, transpose=True)
    x, w = ctx.shape(0), ctx.shape(1)
    # a negative trailing pad means the output reaches past what the kernels write: those cells
    # hold only the bias; zeros are padded after the transposed convolution, then the bias added
    extra = [max(0, -p) for p in pads[1::2]]
    pads = [max(0, p) for p in pads]
    conv_spatial = [o - e for o, e in zip(out_spatial, extra)]
    # MIL's conv_transpose takes the weight as ONNX lays it out (C_in, C_out / groups, k...)
    y = ctx.mb.conv_transpose(
        **_conv_args(ctx, window, pads, bias=not any(extra)),
        output_shape=np.array([x[0], w[1] * window.group, *conv_spatial], np.int32),
    )
    if any(extra):
        full = [0, 0, 0, 0] + [p for e in extra for p in (0, e)]
        y = ctx.mb.pad(x=y, pad=np.array(full, np.int32), mode="constant")
        if ctx.has(2):
            y = ctx.mb.add(x=y, y=_channel(ctx, 2, len(x)))
    ctx.out(0, y)


def _pool_check(info) -> str | None:
    x = info.input_shape(0)
    invalid = pool_reason(info.attrs, x)
    if invalid:
        return invalid
    if x is not None and not 3 <= len(x) <= 5:
        return f"Core ML pools take 1 to 3 spatial axes (input rank {len(x)})"
    dil = info.attr("dilations")
    if dil is not None and any(d != 1 for d in dil):
        return "Core ML pools have no dilations"
    if info.node.op_type == "MaxPool":
        if info.num_outputs > 1 and info.node.outputs[1]:
            return "MaxPool's Indices output is not converted"
    elif info.attr("ceil_mode", 0) and info.attr("count_include_pad", 0):
        return (
            "AveragePool with ceil_mode=1 and count_include_pad=1 averages over a window "
            "Core ML cannot express"
        )
    return None


@builder("MaxPool", "AveragePool", dtypes=FLOATS, check=_pool_check)
def pool(ctx: Ctx, node) -> None:
    window = Window.from_attrs(node.attr_values())
    x = ctx.shape(0)
    geo = window.geometry(x[2:])
    window = window.resolve(len(x) - 2)
    # ceil_mode: the last window may start inside the input and reach past it and the pads;
    # extend the trailing pad to cover it (those cells count as padding)
    end = [
        max(e, (o - 1) * s + k - i - b)
        for o, s, k, i, b, e in zip(
            geo.out, window.strides, window.kernel_shape, x[2:], geo.begin, geo.end
        )
    ]
    pads = [p for b, e in zip(geo.begin, end) for p in (b, e)]
    common = dict(
        x=ctx.x(0),
        kernel_sizes=list(window.kernel_shape),
        strides=list(window.strides),
        pad_type="custom",
        pad=pads,
    )
    if node.op_type == "MaxPool":
        y = ctx.mb.max_pool(**common)
    else:
        exclude = not node.attr("count_include_pad", 0)
        y = ctx.mb.avg_pool(**common, exclude_padding_from_average=exclude)
    ctx.out(0, y)


def _global_check(info) -> str | None:
    x = info.input_shape(0)
    if x is not None and len(x) < 3:
        return f"the input has rank {len(x)}; a pool needs (N, C, D1, ...)"
    return None


@builder("GlobalAveragePool", "GlobalMaxPool", dtypes=FLOATS, check=_global_check)
def global_pool(ctx: Ctx, node) -> None:
    axes = list(range(2, ctx.rank(0)))
    fn = ctx.mb.reduce_mean if node.op_type == "GlobalAveragePool" else ctx.mb.reduce_max
    ctx.out(0, fn(x=ctx.x(0), axes=axes, keep_dims=True))


def _bn_check(info) -> str | None:
    if info.attr("training_mode", 0):
        return "BatchNormalization in training mode (training_mode=1)"
    if any(o for o in info.node.outputs[1:]):
        return "BatchNormalization's running statistics outputs are not converted"
    x = info.input_shape(0)
    if x is not None and len(x) < 2:
        return f"the input has rank {len(x)}; BatchNormalization needs (N, C, ...)"
    return None


def _channel(ctx: Ctx, i: int, rank: int) -> np.ndarray:
    """A per-channel constant shaped (C, 1, ...) to broadcast over (N, C, D...)."""
    return ctx.x(i).reshape((-1,) + (1,) * (rank - 2))


@builder("BatchNormalization", since=7, dtypes=FLOATS, const_inputs=(1, 2, 3, 4),
         check=_bn_check)  # fmt: skip
def batch_norm(ctx: Ctx, node) -> None:
    """y = x * s + (b - m * s), s = scale / sqrt(var + eps), folded on the host in float64 and
    applied in float32: a float16 input is cast to float32 and the result back (one rounding;
    coremltools' fuse_elementwise_to_batchnorm pass turns a float16 per-channel mul and add on
    a 4-D value into a batch_norm with float32 statistics and rejects it)."""
    mb, rank = ctx.mb, ctx.rank(0)
    eps = float(node.attr("epsilon", 1e-5))
    scale, bias, mean, var = (ctx.const(i).astype(np.float64) for i in (1, 2, 3, 4))
    s = scale / np.sqrt(var + eps)
    shape = (-1,) + (1,) * (rank - 2)
    half = ctx.dtype_str(0) == "fp16"
    x = mb.cast(x=ctx.x(0), dtype="fp32") if half else ctx.x(0)
    dt = np.float32 if half else ctx.np_dtype(0)
    y = mb.mul(x=x, y=s.astype(dt).reshape(shape))
    y = mb.add(x=y, y=(bias - mean * s).astype(dt).reshape(shape))
    ctx.out(0, mb.cast(x=y, dtype="fp16") if half else y)


@builder("InstanceNormalization", since=6, dtypes=FLOATS, const_inputs=(1, 2),
         check=_global_check)  # fmt: skip
def instance_norm(ctx: Ctx, node) -> None:
    mb, x = ctx.mb, ctx.x(0)
    rank = ctx.rank(0)
    axes = list(range(2, rank))
    mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True)
    centered = mb.sub(x=x, y=mean)
    var = mb.reduce_mean(x=mb.mul(x=centered, y=centered), axes=axes, keep_dims=True)
    inv = mb.rsqrt(x=var, epsilon=scalar(ctx, float(node.attr("epsilon", 1e-5))))
    y = mb.mul(x=centered, y=inv)
    y = mb.mul(x=y, y=_channel(ctx, 1, rank))
    ctx.out(0, mb.add(x=y, y=_channel(ctx, 2, rank)))


def _ln_check(info) -> str | None:
    if any(o for o in info.node.outputs[1:]):
        return "LayerNormalization's Mean and InvStdDev outputs are not converted"
    return None


@builder("LayerNormalization", since=17, dtypes=FLOATS, check=_ln_check)
def layer_norm(ctx: Ctx, node) -> None:
    mb = ctx.mb
    rank = ctx.rank(0)
    axis = attr_axis(int(node.attr("axis", -1)), rank)
    y = mb.layer_norm(
        x=ctx.x(0),
        axes=list(range(axis, rank)),
        epsilon=scalar(ctx, float(node.attr("epsilon", 1e-5))),
    )
    y = mb.mul(x=y, y=ctx.x(1))
    if ctx.has(2):
        y = mb.add(x=y, y=ctx.x(2))
    ctx.out(0, y)


def _softmax_axis_check(info) -> str | None:
    x = info.input_shape(0)
    axis = info.attr("axis", 1 if info.opset < 13 else -1)
    if x is not None and not -len(x) <= axis < max(len(x), 1):
        return f"axis {axis} is out of range for rank {len(x)}"
    return None


@builder("Softmax", "LogSoftmax", dtypes=FLOATS, check=_softmax_axis_check)
def softmax(ctx: Ctx, node) -> None:
    mb, x = ctx.mb, ctx.x(0)
    shape = ctx.shape(0)
    rank = len(shape)
    axis = attr_axis(int(node.attr("axis", 1 if ctx.node_opset < 13 else -1)), rank)
    coerced = ctx.node_opset < 13 and axis != rank - 1
    if coerced:  # before opset 13 the input is seen as 2-D: (prod(shape[:axis]), rest)
        lead = int(np.prod(shape[:axis], dtype=np.int64))
        x = mb.reshape(x=x, shape=np.array([lead, -1], np.int32))
        axis = 1
    if node.op_type == "Softmax":
        y = mb.softmax(x=x, axis=axis)
    else:
        y = mb.sub(x=x, y=mb.reduce_log_sum_exp(x=x, axes=[axis], keep_dims=True))
    if coerced:
        y = mb.reshape(x=y, shape=np.array(shape, np.int32))
    ctx.out(0, y)


def _lrn_check(info) -> str | None:
    x = info.input_shape(0)
    if x is not None and len(x) != 4:
        return f"Core ML's local_response_norm takes rank-4 inputs (rank {len(x)})"
    return None


@builder("LRN", dtypes=FLOATS, check=_lrn_check)
def lrn(ctx: Ctx, node) -> None:
    size = int(node.attr("size"))
    y = ctx.mb.local_response_norm(
        x=ctx.x(0),
        size=size,
        alpha=scalar(ctx, float(node.attr("alpha", 1e-4))),
        beta=scalar(ctx, float(node.attr("beta", 0.75))),
        k=scalar(ctx, float(node.attr("bias", 1.0))),
    )
    ctx.out(0, y)


def _grouped_shape(shape, groups: int) -> list[int]:
    """(N, C, *D) as (N, G, C / G, *D): rank 5 at most, so a 5-D input's spatial axes are one."""
    n, c, spatial = shape[0], shape[1], list(shape[2:])
    if len(shape) > 4:
        spatial = [int(np.prod(spatial, dtype=np.int64))]
    return [n, groups, c // groups, *spatial]


def _gn_check(info) -> str | None:
    groups = info.attr("num_groups")
    if groups is None or int(groups) < 1:
        return "GroupNormalization needs a positive num_groups"
    stash = int(info.attr("stash_type", 1))
    if stash != 1:
        return f"stash_type {stash}: the statistics are converted in float32 (stash_type=1) only"
    x = info.input_shape(0)
    if x is None:
        return None
    if len(x) < 2:
        return f"the input has rank {len(x)}; GroupNormalization needs (N, C, ...)"
    if isinstance(x[1], int) and x[1] > 0 and x[1] % int(groups):
        return f"{x[1]} channels do not split into {groups} groups"
    if not all(isinstance(d, int) and d > 0 for d in x):
        return None
    big = max(_grouped_shape(x, int(groups)))
    if big > MAX_DIM:
        return (
            f"the 5-D input's spatial axes merged hold {big} > {MAX_DIM} values, Core ML's largest"
        )
    return None


def _per_channel(ctx: Ctx, i: int, groups: int, channels: int, rank: int):
    """Input ``i`` (scale or bias) in float32, shaped (C, 1, ...) to broadcast over (N, C, *D);
    before opset 21 it holds one value per group, repeated over the group's channels."""
    mb, v = ctx.mb, ctx.x(i)
    per_group = ctx.node_opset < 21
    target = np.array((channels,) + (1,) * (rank - 2), np.int32)
    if isinstance(v, np.ndarray):
        v = v.reshape(-1).astype(np.float32)
        return (np.repeat(v, channels // groups) if per_group else v).reshape(target)
    if ctx.dtype_str(i) == "fp16":
        v = mb.cast(x=v, dtype="fp32")
    if per_group:
        v = mb.reshape(x=v, shape=np.array([groups, 1], np.int32))
        v = mb.tile(x=v, reps=np.array([1, channels // groups], np.int32))
    return mb.reshape(x=v, shape=target)


@builder("GroupNormalization", since=18, dtypes=FLOATS, check=_gn_check)
def group_norm(ctx: Ctx, node) -> None:
    """(N, C, *D) viewed as (N, G, C / G, *D) and normalized over all but its first two axes,
    then scaled and shifted per channel, in float32 (ONNX's stash_type=1): a float16 input is
    cast to float32 and the result back. ONNX applies scale and bias to the float16 normalized
    value; here they are applied before the one rounding to float16 (coremltools fuses a float16
    per-channel mul and add on a 4-D value into a batch_norm it builds with mixed types and then
    rejects). Under ``ComputePrecision=FLOAT16`` coremltools computes it all in float16, as
    every other op."""
    mb = ctx.mb
    shape = ctx.shape(0)
    groups = int(node.attr("num_groups"))
    x = ctx.x(0)
    half = ctx.dtype_str(0) == "fp16"
    if half:
        x = mb.cast(x=x, dtype="fp32")
    grouped = _grouped_shape(shape, groups)
    axes = list(range(2, len(grouped)))
    x = mb.reshape(x=x, shape=np.array(grouped, np.int32))
    centered = mb.sub(x=x, y=mb.reduce_mean(x=x, axes=axes, keep_dims=True))
    var = mb.reduce_mean(x=mb.mul(x=centered, y=centered), axes=axes, keep_dims=True)
    eps = np.float32(node.attr("epsilon", 1e-5))
    y = mb.mul(x=centered, y=mb.rsqrt(x=var, epsilon=eps))
    y = mb.reshape(x=y, shape=np.array(shape, np.int32))
    y = mb.mul(x=y, y=_per_channel(ctx, 1, groups, shape[1], len(shape)))
    y = mb.add(x=y, y=_per_channel(ctx, 2, groups, shape[1], len(shape)))
    ctx.out(0, mb.cast(x=y, dtype="fp16") if half else y)
