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
def reshape_target(shape, target, allowzero=0) -> tuple[int, ...]:
    out = [
        (shape[i] if (d == 0 and not allowzero and i < len(shape)) else d)
        for i, d in enumerate(target)
    ]
    if -1 in out:
        k = out.index(-1)
        rest = math.prod(d for i, d in enumerate(out) if i != k)
        total = math.prod(shape)
        if rest == 0 or total % rest:
            raise ValueError(f"cannot reshape {list(shape)} to {list(target)}")
        out[k] = total // rest
    if math.prod(out) != math.prod(shape):
        raise ValueError(f"cannot reshape {list(shape)} to {list(target)}")
    return tuple(out)


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
    return lambda x, shape: view(dev, x, reshape_target(x.shape, host_ints(shape), allowzero))


@builder("Flatten", since=(1, 9, 11, 13, 21, 23, 24), dtypes=ANY, attributes=["axis"])
def flatten(info):
    dev = device_of(info)
    axis = int(info.attr("axis", 1))

    def run(x):
        a = axis if axis >= 0 else ops.normalize_axis(axis, x.ndim, "Flatten")  # [-r, r]
        return view(dev, x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))

    return run


def _squeeze(dev, x, axes):
    if axes is None:
        shape = [d for d in x.shape if d != 1]
    else:
        ax = set(ops.normalize_axes(axes, x.ndim, "Squeeze", unique=False))
        shape = [d for i, d in enumerate(x.shape) if i not in ax]
    return view(dev, x, shape)


def _unsqueeze(dev, x, axes):
    rank = x.ndim + len(axes)
    ax = sorted(ops.normalize_axes(axes, rank, "Unsqueeze"))
    shape = list(x.shape)
    for a in ax:
        shape.insert(a, 1)
    return view(dev, x, shape)


@builder("Squeeze", since=(1, 11), dtypes=ANY, attributes=["axes"])
def squeeze_1(info):
    dev, axes = device_of(info), info.attr("axes")
    return lambda x: _squeeze(dev, x, axes)


@builder("Squeeze", since=(13, 21, 23, 24), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def squeeze(info):
    dev = device_of(info)
    return lambda x, axes=None: _squeeze(dev, x, None if axes is None else host_ints(axes))


@builder("Unsqueeze", since=(1, 11), dtypes=ANY, attributes=["axes"])
def unsqueeze_1(info):
    dev, axes = device_of(info), list(info.attr("axes"))
    return lambda x: _unsqueeze(dev, x, axes)


@builder("Unsqueeze", since=(13, 21, 23, 24), dtypes={0: ANY}, attributes=[], host_inputs=(1,))
def unsqueeze(info):
    dev = device_of(info)
    return lambda x, axes: _unsqueeze(dev, x, host_ints(axes))


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
    shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(shape)))
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
        st = elem_strides(x)
        it_shape, it_st = [], []
        for r, d, s in zip(reps, x.shape, st):
            it_shape += [r, d]
            it_st += [0, s]
        out = [r * d for r, d in zip(reps, x.shape)]
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


def slice_part(dev, x, starts, ends, axes, steps):
    """The ONNX Slice of ``x`` (starts/ends clamped as the spec says; negative steps allowed)."""
    rank = x.ndim
    if axes is None:
        axes = list(range(len(starts)))
    else:
        axes = list(ops.normalize_axes(axes, rank, "Slice", unique=False))
    steps = [1] * len(starts) if steps is None else steps
    st = elem_strides(x)
    shape, strides, offset = list(x.shape), list(st), 0
    for s, e, a, k in zip(starts, ends, axes, steps):
        if k == 0:
            raise ValueError("Slice step cannot be 0")
        start, stop, step = slice(s, e, k).indices(x.shape[a])
        n = len(range(start, stop, step))
        shape[a] = n
        strides[a] = st[a] * step
        if n:
            offset += start * st[a]
    y = dev.empty(shape, x.dtype)
    if y.size:
        strided_copy(dev, y, 0, contiguous_strides(shape), x, offset, strides, shape)
    return y


@builder("Slice", since=1, dtypes=ANY, attributes=["starts", "ends", "axes"])
def slice_1(info):
    dev = device_of(info)
    starts, ends, axes = info.attr("starts"), info.attr("ends"), info.attr("axes")
    return lambda x: slice_part(dev, x, list(starts), list(ends), axes, None)


@builder("Slice", since=(10, 11, 13), dtypes={0: ANY}, attributes=[], host_inputs=(1, 2, 3, 4))
def slice_(info):
    dev = device_of(info)

    def run(x, starts, ends, axes=None, steps=None):
        return slice_part(
            dev,
            x,
            host_ints(starts),
            host_ints(ends),
            None if axes is None else host_ints(axes),
            None if steps is None else host_ints(steps),
        )

    return run


def _split_sizes(dim, n_out, split, num_outputs=None):
    if split is not None:
        return list(split)
    n = num_outputs or n_out
    if num_outputs is not None:
        chunk = -(-dim // n)
        return [min(chunk, dim - i * chunk) for i in range(n)]
    if dim % n:
        raise ValueError(f"cannot split a dimension of {dim} into {n} equal parts")
    return [dim // n] * n


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
        dev, x, axis, _split_sizes(x.shape[ops.normalize_axis(axis, x.ndim, "Split")], n, split)
    )


@builder(
    "Split", since=(13, 18), dtypes={0: ANY}, attributes=["axis", "num_outputs"], host_inputs=(1,)
)
def split(info):
    dev, axis = device_of(info), int(info.attr("axis", 0))
    n, num = info.num_outputs, info.attr("num_outputs")

    def run(x, split=None):
        dim = x.shape[ops.normalize_axis(axis, x.ndim, "Split")]
        sizes = _split_sizes(dim, n, None if split is None else host_ints(split), num)
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
        p = host_ints(pads)
        rank = x.ndim
        ax = list(range(rank))
        if axes is not None:
            ax = list(ops.normalize_axes(host_ints(axes), rank, "Pad", unique=False))
        begin, end = [0] * rank, [0] * rank
        for i, a in enumerate(ax):
            begin[a], end[a] = p[i], p[i + len(ax)]
        shape = [d + b + e for d, b, e in zip(x.shape, begin, end)]
        fill = (
            0 if value is None or np.asarray(value).size == 0 else np.asarray(value).reshape(-1)[0]
        )
        y = dev.fill(dev.empty(shape, x.dtype), fill)
        src = slice_part(
            dev, x, [max(-b, 0) for b in begin], [d - max(-e, 0) for d, e in zip(x.shape, end)],
            None, None,
        )  # fmt: skip
        ys = contiguous_strides(shape)
        off = sum(max(b, 0) * s for b, s in zip(begin, ys))
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
