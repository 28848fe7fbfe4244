"""Shape and data-movement ops. Reshape-like ops return views of the device array (no kernel);
Transpose, Expand, Tile, Slice, Concat, Split and Pad are strided copies (one generated kernel per
element size); ConstantOfShape fills device memory. Shapes, axes, starts/ends, split sizes, repeats
and pads are host inputs.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from ort_core import ops

from ._common import (
    ANY,
    builder,
    contiguous,
    contiguous_strides,
    device_of,
    elem_strides,
    host_ints,
    strided_copy,
)


# -- views --------------------------------------------------------------------------------------
def view(dev, x, shape):
    """``x`` with another shape (a view when contiguous)."""
    x = contiguous(dev, x)
    if x.size == 0:
        return dev.empty(shape, x.dtype)
    return x.reshape(tuple(shape))


@builder(
    "Reshape",
    since=(5, 13, 14, 19, 21, 23, 24),
    dtypes={0: ANY},
    attributes=["allowzero"],
    host_inputs=(1,),
)
def reshape(info):
    dev = device_of(info)
    allowzero = int(info.attr("allowzero", 0))
    return lambda x, shape: view(dev, x, ops.reshape_shape(x.shape, host_ints(shape), allowzero))


@builder("Flatten", since=(1, 9, 11, 13, 21, 23, 24), dtypes=ANY, attributes=["axis"])
def flatten(info):
    dev = device_of(info)
    axis = int(info.attr("axis", 1))

    def run(x):
        a = axis if axis >= 0 else ops.normalize_axis(axis, x.ndim, "Flatten")  # [-r, r]
        return view(dev, x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))

    return run


@builder("Squeeze", since=(1, 11), dtypes=ANY, attributes=["axes"])
def squeeze_1(info):
    dev, axes = device_of(info), info.attr("axes")
    return lambda x: view(dev, x, ops.squeeze_shape(x.shape, axes))


@builder("Squeeze", since=(13, 21, 23, 24), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def squeeze(info):
    dev = device_of(info)

    def run(x, axes=None):
        return view(dev, x, ops.squeeze_shape(x.shape, None if axes is None else host_ints(axes)))

    return run


@builder("Unsqueeze", since=(1, 11), dtypes=ANY, attributes=["axes"])
def unsqueeze_1(info):
    dev, axes = device_of(info), list(info.attr("axes"))
    return lambda x: view(dev, x, ops.unsqueeze_shape(x.shape, axes))


@builder("Unsqueeze", since=(13, 21, 23, 24), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def unsqueeze(info):
    dev = device_of(info)
    return lambda x, axes: view(dev, x, ops.unsqueeze_shape(x.shape, host_ints(axes)))


@builder("Identity", since=(1, 13, 14, 16, 19, 21, 23, 24), dtypes=ANY, attributes=[])
def identity(info):
    return lambda x: x


def _dropout_check(info):
    if info.num_outputs > 1 and info.node.outputs[1]:
        return "the mask output is not supported"
    if info.has_input(2):
        c = info.constant(2)
        if c is None or bool(np.asarray(c)):
            return "training_mode must be a constant false"
    return None


@builder(
    "Dropout",
    since=(7, 10, 12, 13, 22),
    dtypes={0: ANY},
    attributes=["ratio", "seed"],
    check=_dropout_check,
    host_inputs=(1, 2),
)
def dropout(info):
    multi = info.opset >= 7

    def run(x, ratio=None, training_mode=None):
        return (x, None) if multi else x

    return run


# -- copies -------------------------------------------------------------------------------------
@builder("Transpose", since=(1, 13, 21, 23, 24), dtypes=ANY, attributes=["perm"])
def transpose(info):
    dev = device_of(info)
    perm_attr = info.attr("perm")

    def run(x):
        perm = list(perm_attr) if perm_attr is not None else list(reversed(range(x.ndim)))
        shape = [x.shape[p] for p in perm]
        st = elem_strides(x)
        y = dev.empty(shape, x.dtype)
        strided_copy(dev, y, 0, contiguous_strides(shape), x, 0, [st[p] for p in perm], shape)
        return y

    return run


def expand_to(dev, x, shape):
    shape = ops.broadcast_shape(x.shape, shape, op="Expand")
    lead = len(shape) - x.ndim
    st = [0] * lead + [0 if d == 1 else s for d, s in zip(x.shape, elem_strides(x))]
    y = dev.empty(shape, x.dtype)
    strided_copy(dev, y, 0, contiguous_strides(shape), x, 0, st, shape)
    return y


@builder("Expand", since=(8, 13), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def expand(info):
    dev = device_of(info)
    return lambda x, shape: expand_to(dev, x, host_ints(shape))


@builder("Tile", since=(6, 13), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def tile(info):
    dev = device_of(info)

    def run(x, repeats):
        reps = host_ints(repeats)
        out = ops.tile_shape(x.shape, reps)
        st = elem_strides(x)
        it_shape, it_st = [], []
        for r, d, s in zip(reps, x.shape, st):
            it_shape += [r, d]
            it_st += [0, s]
        y = dev.empty(out, x.dtype)
        strided_copy(dev, y, 0, contiguous_strides(it_shape), x, 0, it_st, it_shape)
        return y

    return run


@builder("Concat", since=(4, 11, 13), dtypes=ANY, attributes=["axis"])
def concat(info):
    dev = device_of(info)
    axis_attr = int(info.attr("axis", 0))

    def run(*xs):
        axis = ops.normalize_axis(axis_attr, xs[0].ndim, "Concat")
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        y = dev.empty(shape, xs[0].dtype)
        ys = contiguous_strides(shape)
        off = 0
        for x in xs:
            strided_copy(dev, y, off * ys[axis], ys, x, 0, elem_strides(x), x.shape)
            off += x.shape[axis]
        return y

    return run


def slice_part(dev, x, ranges):
    """``x`` cut to ``ranges`` (one :class:`ort_core.ops.AxisSlice` per axis), a strided copy."""
    st = elem_strides(x)
    shape = [r.length for r in ranges]
    y = dev.empty(shape, x.dtype)
    if y.size:
        offset = sum(r.start * s for r, s in zip(ranges, st))
        strides = [s * r.step for r, s in zip(ranges, st)]
        strided_copy(dev, y, 0, contiguous_strides(shape), x, offset, strides, shape)
    return y


@builder("Slice", since=1, dtypes=ANY, attributes=["starts", "ends", "axes"])
def slice_1(info):
    dev = device_of(info)
    starts, ends, axes = info.attr("starts"), info.attr("ends"), info.attr("axes")
    return lambda x: slice_part(dev, x, ops.slice_ranges(x.shape, starts, ends, axes))


@builder("Slice", since=(10, 11, 13), dtypes={0: ANY}, attributes=[], host_inputs=(1, 2, 3, 4))
def slice_(info):
    dev = device_of(info)

    def run(x, starts, ends, axes=None, steps=None):
        axes, steps = (None if v is None else host_ints(v) for v in (axes, steps))
        ranges = ops.slice_ranges(x.shape, host_ints(starts), host_ints(ends), axes, steps)
        return slice_part(dev, x, ranges)

    return run


def _split(dev, x, axis, sizes):
    axis = ops.normalize_axis(axis, x.ndim, "Split")
    st = elem_strides(x)
    outs, off = [], 0
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        y = dev.empty(shape, x.dtype)
        strided_copy(dev, y, 0, contiguous_strides(shape), x, off * st[axis], st, shape)
        outs.append(y)
        off += s
    return outs


@builder("Split", since=(2, 11), dtypes=ANY, attributes=["axis", "split"])
def split_2(info):
    dev, axis, split = device_of(info), int(info.attr("axis", 0)), info.attr("split")
    n = info.num_outputs
    return lambda x: _split(
        dev, x, axis, ops.split_sizes(x.shape[ops.normalize_axis(axis, x.ndim, "Split")], n, split)
    )


@builder(
    "Split", since=(13, 18), dtypes={0: ANY}, attributes=["axis", "num_outputs"], host_inputs=(1,)
)
def split(info):
    dev, axis = device_of(info), int(info.attr("axis", 0))
    n, num = info.num_outputs, info.attr("num_outputs")

    def run(x, split=None):
        dim = x.shape[ops.normalize_axis(axis, x.ndim, "Split")]
        sizes = ops.split_sizes(dim, n, None if split is None else host_ints(split), num)
        return _split(dev, x, axis, sizes)

    return run


def _pad_check(info):
    mode = info.attr("mode", "constant")
    if mode not in ("constant", b"constant"):
        return f"mode {mode!r} (only constant)"
    return None


@builder(
    "Pad",
    since=(11, 13, 18, 19, 21, 23, 24),
    dtypes={0: ANY},
    attributes=["mode"],
    check=_pad_check,
    host_inputs=(1, 2, 3),
)
def pad(info):
    dev = device_of(info)

    def run(x, pads, value=None, axes=None):
        axes = None if axes is None else host_ints(axes)
        amounts = ops.pad_amounts(x.ndim, host_ints(pads), axes)
        shape = ops.pad_shape(x.shape, amounts)
        parts = ops.pad_parts(x.shape, amounts)
        fill = (
            0 if value is None or np.asarray(value).size == 0 else np.asarray(value).reshape(-1)[0]
        )
        y = dev.fill(dev.empty(shape, x.dtype), fill)
        src = slice_part(dev, x, [ops.AxisSlice(p.start, p.stop, 1) for p in parts])  # the crop
        if src.size:
            ys = contiguous_strides(shape)
            off = sum(p.before * s for p, s in zip(parts, ys))
            strided_copy(dev, y, off, ys, src, 0, elem_strides(src), src.shape)
        return y

    return run


# -- generated tensors --------------------------------------------------------------------------
def _const_check(info):
    value = info.attr("value")
    if value is None:
        return None
    arr = value if isinstance(value, np.ndarray) else numpy_helper.to_array(value)
    if np.asarray(arr).dtype not in ANY:
        return f"value of element type {np.asarray(arr).dtype} is not supported"
    return None


@builder(
    "ConstantOfShape",
    since=(9, 20, 21, 23, 24),
    attributes=["value"],
    check=_const_check,
    host_inputs=(0,),
)
def constant_of_shape(info):
    dev = device_of(info)
    value = info.attr("value")
    arr = (
        np.zeros(1, np.float32)
        if value is None
        else (value if isinstance(value, np.ndarray) else numpy_helper.to_array(value))
    )
    arr = np.asarray(arr).reshape(-1)

    def run(shape):
        return dev.fill(dev.empty(host_ints(shape), arr.dtype), arr[0])

    return run


@builder("Shape", since=(1, 13, 15, 19, 21, 23, 24), dtypes=ANY, attributes=["start", "end"])
def shape(info):
    dev = device_of(info)
    start, end = info.attr("start", 0), info.attr("end")

    def run(x):
        dims = list(x.shape)[slice(start, end)]
        return dev.to_device(np.asarray(dims, np.int64))

    return run


@builder("Size", since=(1, 13, 19, 21, 23, 24), dtypes=ANY, attributes=[])
def size(info):
    dev = device_of(info)
    return lambda x: dev.to_device(np.asarray(x.size, np.int64))
