"""Sliding-window geometry of Conv, ConvTranspose and the pools, on Python ints.

ONNX's rules for ``kernel_shape``, ``strides``, ``dilations``, ``pads``, ``auto_pad`` (NOTSET,
VALID, SAME_UPPER, SAME_LOWER), ``ceil_mode``, ``group`` and ConvTranspose's ``output_padding`` and
``output_shape``: the defaults, why a node's values break the spec (the ``*_reason`` functions give
the invalid-node message), and the explicit pads and output sizes they give for an input shape.
Where the spec is loose the rules follow onnx's reference implementation
(``onnx/reference/ops/op_pool_common.py``, ``op_conv_transpose.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from ..errors import InvalidArgument

#: The values of ``auto_pad``; an empty string reads as NOTSET.
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")

Dim = int | str | None


def _ints(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)


def auto_pad_reason(auto_pad: Any) -> str | None:
    """Why ``auto_pad`` is not one of ONNX's values, or None."""
    if auto_pad in ("", *AUTO_PADS):
        return None
    return f"auto_pad '{auto_pad}' is not one of {list(AUTO_PADS)}"


class WindowGeometry(NamedTuple):
    """Per spatial axis: output size, leading pads, trailing pads (the explicit pads a window uses,
    whatever ``auto_pad`` said). ConvTranspose's trailing pads may be negative: the output then
    reaches past what the kernels write, and those cells are zero."""

    out: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]


def effective_kernel(kernel: int, dilation: int) -> int:
    """Cells one window spans: ``(kernel - 1) * dilation + 1``."""
    return (kernel - 1) * dilation + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int, auto_pad: str) -> tuple[int, int]:
    """(leading, trailing) pads of SAME_UPPER / SAME_LOWER along one axis: the output has
    ``ceil(size / stride)`` cells and the odd cell of padding goes at the end (UPPER) or at the
    beginning (LOWER)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + effective_kernel(kernel, dilation) - size)
    small = total // 2
    begin = small if auto_pad == "SAME_UPPER" else total - small
    return begin, total - begin


def window_output_size(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    begin: int,
    end: int,
    ceil_mode: bool = False,
) -> int:
    """Output cells along one axis with explicit pads: ``floor`` (or ``ceil`` under ceil_mode) of
    ``(size + begin + end - effective kernel) / stride + 1``; under ceil_mode a last window that
    would start in the trailing padding is dropped."""
    span = size + begin + end - effective_kernel(kernel, dilation)
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + begin:
            out -= 1
    else:
        out = span // stride + 1
    return max(out, 0)


def ceil_window_dropped(
    size: int, kernel: int, stride: int, dilation: int, begin: int, end: int
) -> bool:
    """Whether ceil_mode's last window along one axis would start in the trailing padding (ONNX
    drops that window; some runtimes keep it)."""
    span = size + begin + end - effective_kernel(kernel, dilation)
    out = -(-span // stride) + 1
    return (out - 1) * stride >= size + begin


def window_reach(size: int, out: int, kernel: int, stride: int, dilation: int, begin: int) -> int:
    """How many cells past the end of the input the last window reaches (negative when it stops
    short). Beyond the trailing pads only under ceil_mode; pools treat those cells as absent."""
    return (out - 1) * stride + effective_kernel(kernel, dilation) - size - begin


def window_geometry(
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str = "NOTSET",
    ceil_mode: bool = False,
) -> WindowGeometry:
    """Output sizes and explicit pads of a sliding window (Conv, the pools) per spatial axis.

    SAME_UPPER / SAME_LOWER: ``ceil(size / stride)`` outputs whatever ``pads`` and ``ceil_mode``
    say; VALID: no padding; NOTSET: ``pads`` (zeros when absent).
    """
    n = len(in_shape)
    out, begin, end = [0] * n, [0] * n, [0] * n
    for i in range(n):
        size, k, s, d = int(in_shape[i]), int(kernel[i]), int(strides[i]), int(dilations[i])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            begin[i], end[i] = same_pads(size, k, s, d, auto_pad)
            out[i] = -(-size // s)
            continue
        if auto_pad in ("NOTSET", "") and pads:
            begin[i], end[i] = int(pads[i]), int(pads[i + n])
        out[i] = window_output_size(size, k, s, d, begin[i], end[i], ceil_mode)
    return WindowGeometry(tuple(out), tuple(begin), tuple(end))


def conv_transpose_geometry(
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str = "NOTSET",
    output_padding: Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
) -> WindowGeometry:
    """Output sizes and the pads cropped off the full ConvTranspose result per spatial axis.

    The full result has ``stride * (size - 1) + output_padding + effective kernel`` cells. When
    ``output_shape`` is given (its last ``nd`` values), or auto_pad is SAME_UPPER / SAME_LOWER
    (which ask for ``size * stride`` cells), the pads are generated as the spec says: the total
    ``full - output`` (at least 0), its odd cell cropped at the end for SAME_UPPER and at the
    beginning otherwise; an output larger than the full result ends in zeros. Otherwise ``pads``
    (zeros when absent or VALID) are cropped.
    """
    nd = len(in_shape)
    out_pad = list(output_padding or [0] * nd)[-nd:]
    full = [
        s * (i - 1) + op + effective_kernel(k, d)
        for i, s, op, k, d in zip(in_shape, strides, out_pad, kernel, dilations, strict=True)
    ]
    shape = None if output_shape is None else [int(v) for v in list(output_shape)[-nd:]]
    if shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = [int(i) * int(s) for i, s in zip(in_shape, strides, strict=True)]
    if shape is not None:
        begin = []
        for f, o in zip(full, shape, strict=True):
            total = max(0, f - o)
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    else:
        explicit = [0] * (2 * nd) if auto_pad == "VALID" or not pads else [int(p) for p in pads]
        begin = explicit[:nd]
        shape = [f - b - e for f, b, e in zip(full, begin, explicit[nd:], strict=True)]
    end = [f - b - o for f, b, o in zip(full, begin, shape, strict=True)]
    return WindowGeometry(tuple(shape), tuple(begin), tuple(end))


def _known(dims: Sequence[Dim] | None) -> bool:
    return dims is not None and all(isinstance(d, int) for d in dims)


@dataclass(frozen=True, slots=True)
class Window:
    """A node's window attributes, ONNX's defaults filled in.

    ``kernel_shape``, ``strides`` and ``dilations`` are None until :meth:`resolve` fills them for
    a number of spatial axes (the kernel from the weight where the attribute is absent); ``pads``
    stays None when absent (zeros). Build one per node with :meth:`from_attrs`.
    """

    kernel_shape: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None
    dilations: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    auto_pad: str = "NOTSET"
    ceil_mode: bool = False
    group: int = 1
    output_padding: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Window:
        """From a node's attribute values (``KernelInfo.attrs``, ``Node.attr_values()``); an
        empty or absent list is absent, ``auto_pad=""`` is NOTSET."""

        def ints(name: str) -> tuple[int, ...] | None:
            value = attrs.get(name)
            return _ints(value) if value is not None and len(value) else None

        return cls(
            kernel_shape=ints("kernel_shape"),
            strides=ints("strides"),
            dilations=ints("dilations"),
            pads=ints("pads"),
            auto_pad=str(attrs.get("auto_pad") or "NOTSET"),
            ceil_mode=bool(attrs.get("ceil_mode", 0)),
            group=int(attrs.get("group", 1)),
            output_padding=ints("output_padding"),
            output_shape=ints("output_shape"),
        )

    def spatial_rank(self, rank: int | None = None, weight_rank: int | None = None) -> int | None:
        """Number of spatial axes: from ``kernel_shape``, else the input's or weight's rank."""
        if self.kernel_shape is not None:
            return len(self.kernel_shape)
        for r in (rank, weight_rank):
            if r is not None:
                return r - 2
        return None

    def reason(
        self,
        rank: int | None = None,
        weight_shape: Sequence[Dim] | None = None,
        *,
        pool: bool = False,
    ) -> str | None:
        """Why these attributes break the ONNX spec, or None. ``rank``: the input's rank when
        known; ``weight_shape``: Conv's weight shape when known; ``pool``: a pool, whose
        ``kernel_shape`` is required."""
        reason = auto_pad_reason(self.auto_pad)
        if reason:
            return reason
        if self.pads is not None and self.auto_pad not in ("NOTSET", ""):
            return f"the pads attribute cannot be used together with auto_pad '{self.auto_pad}'"
        if pool and self.kernel_shape is None:
            return "the kernel_shape attribute is required"
        if rank is not None and rank < 3:
            return f"the input has rank {rank}; a window needs (N, C, D1, ...): rank 3 or more"
        if weight_shape is not None and rank is not None and len(weight_shape) != rank:
            return f"the weight has rank {len(weight_shape)}, the input rank {rank}"
        nd = self.spatial_rank(rank, None if weight_shape is None else len(weight_shape))
        if nd is None:
            return None
        if rank is not None and nd != rank - 2:
            return f"kernel_shape has {nd} values for an input with {rank - 2} spatial axes"
        for name, want, low in (
            ("kernel_shape", nd, 1),
            ("strides", nd, 1),
            ("dilations", nd, 1),
            ("pads", 2 * nd, 0),
            ("output_padding", nd, 0),
        ):
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) != want:
                return f"{name} has {len(values)} values; {want} expected ({nd} spatial axes)"
            if any(v < low for v in values):
                return f"{name} {list(values)} has a value below {low}"
        if self.output_shape is not None and len(self.output_shape) not in (nd, nd + 2):
            return f"output_shape has {len(self.output_shape)} values; {nd} expected"
        if self.group < 1:
            return f"group {self.group} is below 1"
        if weight_shape is not None and self.kernel_shape is not None:
            spatial = tuple(weight_shape[2:])
            if _known(spatial) and spatial != self.kernel_shape:
                return f"kernel_shape {list(self.kernel_shape)} differs from the weight's {list(spatial)}"
        return None

    def resolve(self, nd: int, weight_spatial: Sequence[int] | None = None) -> Window:
        """This window with ``kernel_shape`` (from the weight's spatial dims where absent),
        ``strides`` and ``dilations`` (ones) filled in for ``nd`` spatial axes."""
        kernel = self.kernel_shape
        if kernel is None:
            if weight_spatial is None:
                raise InvalidArgument("kernel_shape is absent and no weight shape was given.")
            kernel = _ints(weight_spatial)
        return replace(
            self,
            kernel_shape=kernel,
            strides=self.strides or (1,) * nd,
            dilations=self.dilations or (1,) * nd,
        )

    def geometry(
        self, in_shape: Sequence[int], weight_spatial: Sequence[int] | None = None
    ) -> WindowGeometry:
        """:func:`window_geometry` of the spatial dims ``in_shape`` (Conv, the pools)."""
        w = self.resolve(len(in_shape), weight_spatial)
        return window_geometry(
            in_shape, w.kernel_shape, w.strides, w.dilations, w.pads, w.auto_pad, w.ceil_mode
        )

    def transpose_geometry(
        self, in_shape: Sequence[int], weight_spatial: Sequence[int] | None = None
    ) -> WindowGeometry:
        """:func:`conv_transpose_geometry` of the spatial dims ``in_shape``."""
        w = self.resolve(len(in_shape), weight_spatial)
        return conv_transpose_geometry(
            in_shape, w.kernel_shape, w.strides, w.dilations, w.pads, w.auto_pad,
            w.output_padding, w.output_shape,
        )  # fmt: skip


def conv_channels_reason(
    x_shape: Sequence[Dim] | None,
    w_shape: Sequence[Dim] | None,
    group: int,
    transpose: bool = False,
) -> str | None:
    """Why Conv's (or ConvTranspose's) input and weight channels do not fit ``group``, or None.
    Conv: weight (M, C/group, k...), M a multiple of group. ConvTranspose: weight (C, M/group,
    k...), C a multiple of group. Unknown dims fit."""
    c = x_shape[1] if x_shape is not None and len(x_shape) > 1 else None
    w0 = w_shape[0] if w_shape is not None and len(w_shape) > 1 else None
    w1 = w_shape[1] if w_shape is not None and len(w_shape) > 1 else None
    if group < 1:
        return f"group {group} is below 1"
    if transpose:
        if isinstance(c, int) and c % group:
            return f"the input's {c} channels are not a multiple of group {group}"
        if isinstance(c, int) and isinstance(w0, int) and c != w0:
            return f"the input has {c} channels; the weight expects {w0}"
        return None
    if isinstance(w0, int) and w0 % group:
        return f"the weight's {w0} output channels are not a multiple of group {group}"
    if isinstance(c, int) and isinstance(w1, int) and c != w1 * group:
        return f"the input has {c} channels; the weight expects {w1 * group} (group {group})"
    return None


def conv_reason(
    attrs: Mapping[str, Any],
    x_shape: Sequence[Dim] | None,
    w_shape: Sequence[Dim] | None,
    transpose: bool = False,
) -> str | None:
    """Why a Conv-family node (Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv...)
    breaks the ONNX spec, from its attribute values and, when known, its input and weight shapes;
    or None."""
    window = Window.from_attrs(attrs)
    rank = None if x_shape is None else len(x_shape)
    return window.reason(rank, w_shape) or conv_channels_reason(
        x_shape, w_shape, window.group, transpose
    )


def pool_reason(attrs: Mapping[str, Any], x_shape: Sequence[Dim] | None) -> str | None:
    """Why a windowed pool (MaxPool, AveragePool, LpPool) breaks the ONNX spec, or None."""
    rank = None if x_shape is None else len(x_shape)
    return Window.from_attrs(attrs).reason(rank, pool=True)
