"""Resize and Upsample, written once: attribute defaults and checks, output sizes from ``scales`` or
``sizes`` (``axes``, ``keep_aspect_ratio_policy``, ``roi``), coordinate transforms, nearest rounding,
the linear and cubic filters (``cubic_coeff_a``, ``exclude_outside``, ``antialias``) and, per
resized axis, the tap table a provider applies to its tensor.

Resize is separable: each resized axis is one gather of a few taps per output position, weighted.
A tap table is ONNX arithmetic, not tensor compute: two small 1-D tables per axis (``out_len`` rows
of a few taps: input indices and weights), computed on the host with numpy in float64 as the
spec's formulas, and cached. How a table is applied to the data (a numpy gather, an OpenCL kernel)
is the provider's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import InvalidArgument
from ._axes import axes_reason, normalize_axes

COORDINATE_TRANSFORMATION_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
KEEP_ASPECT_RATIO_POLICIES = ("stretch", "not_larger", "not_smaller")
MODES = ("nearest", "linear", "cubic")
#: Upsample-1's mode names and the Resize mode each is.
UPSAMPLE_1_MODES = {"nearest": "nearest", "bilinear": "linear"}


def _legacy(op_type: str, opset: int) -> bool:
    """Resize-10 and every Upsample: asymmetric coordinates, the old nearest rounding, no cubic."""
    return op_type == "Upsample" or opset < 11


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str | None:
    if value not in allowed:
        return f"{name} '{value}' is not one of {list(allowed)}"
    return None


def resize_reason(
    attrs: Mapping[str, Any], opset: int, op_type: str = "Resize", rank: int | None = None
) -> str | None:
    """Why a Resize or Upsample node's attributes break the ONNX spec, or None. ``rank``: the
    input's rank when known (checks ``axes``)."""
    mode = attrs.get("mode", "nearest")
    if op_type == "Upsample" and opset < 7:
        reason = _choice("mode", mode, list(UPSAMPLE_1_MODES))
        if reason:
            return reason
        if attrs.get("height_scale") is None or attrs.get("width_scale") is None:
            return "the height_scale and width_scale attributes are required"
        if rank is not None and rank != 4:
            return f"the input has rank {rank}; Upsample-1 takes a 4D (N, C, H, W) input"
        return None
    if op_type == "Upsample" and opset < 9 and attrs.get("scales") is None:
        return "the scales attribute is required"
    reason = _choice("mode", mode, MODES[:2] if _legacy(op_type, opset) else MODES)
    if reason:
        return reason
    if _legacy(op_type, opset):
        return None
    reason = (
        _choice(
            "coordinate_transformation_mode",
            attrs.get("coordinate_transformation_mode", "half_pixel"),
            COORDINATE_TRANSFORMATION_MODES,
        )
        or _choice("nearest_mode", attrs.get("nearest_mode", "round_prefer_floor"), NEAREST_MODES)
        or _choice(
            "keep_aspect_ratio_policy",
            attrs.get("keep_aspect_ratio_policy", "stretch"),
            KEEP_ASPECT_RATIO_POLICIES,
        )
    )
    if reason:
        return reason
    axes = attrs.get("axes")
    if axes is not None and rank is not None:
        return axes_reason(axes, rank)
    return None


@dataclass(frozen=True, slots=True)
class ResizeAttrs:
    """A Resize or Upsample node's attributes, ONNX's defaults filled in. For Resize-10 and
    Upsample, ``coordinate_transformation_mode`` is ``asymmetric`` and ``nearest_mode`` is
    ``legacy`` (truncate when upsampling, ceil when downsampling), as those ops compute."""

    mode: str = "nearest"
    coordinate_transformation_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    extrapolation_value: float = 0.0
    antialias: bool = False
    axes: tuple[int, ...] | None = None
    keep_aspect_ratio_policy: str = "stretch"

    @classmethod
    def from_attrs(
        cls, attrs: Mapping[str, Any], opset: int, op_type: str = "Resize"
    ) -> ResizeAttrs:
        """From a node's attribute values.

        Raises:
            InvalidArgument: :func:`resize_reason` finds them invalid.
        """
        reason = resize_reason(attrs, opset, op_type)
        if reason:
            raise InvalidArgument(f"{op_type}-{opset}: {reason}.")
        mode = attrs.get("mode", "nearest")
        if op_type == "Upsample" and opset < 7:
            mode = UPSAMPLE_1_MODES[mode]
        if _legacy(op_type, opset):
            return cls(
                mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="legacy"
            )
        axes = attrs.get("axes")
        return cls(
            mode=mode,
            coordinate_transformation_mode=attrs.get(
                "coordinate_transformation_mode", "half_pixel"
            ),
            nearest_mode=attrs.get("nearest_mode", "round_prefer_floor"),
            cubic_coeff_a=float(attrs.get("cubic_coeff_a", -0.75)),
            exclude_outside=bool(attrs.get("exclude_outside", 0)),
            extrapolation_value=float(attrs.get("extrapolation_value", 0.0)),
            antialias=bool(attrs.get("antialias", 0)) and mode != "nearest",
            axes=None if axes is None else tuple(int(a) for a in axes),
            keep_aspect_ratio_policy=attrs.get("keep_aspect_ratio_policy", "stretch"),
        )


def upsample_1_scales(attrs: Mapping[str, Any]) -> list[float]:
    """Upsample-1's scales of its (N, C, H, W) input, from height_scale and width_scale."""
    return [1.0, 1.0, float(attrs["height_scale"]), float(attrs["width_scale"])]


class AxisResize(NamedTuple):
    """One axis to resize: its index, input and output lengths, scale, and ``roi`` (start, end)
    for tf_crop_and_resize (None: the whole axis)."""

    axis: int
    in_len: int
    out_len: int
    scale: float
    roi: tuple[float, float] | None


def _values(v: Any) -> list | None:
    if v is None:
        return None
    arr = np.asarray(v).reshape(-1)
    return arr.tolist() if arr.size else None


def resize_plan(
    attrs: ResizeAttrs,
    shape: Sequence[int],
    scales: Any = None,
    sizes: Any = None,
    roi: Any = None,
) -> tuple[tuple[int, ...], list[AxisResize]]:
    """The output shape, and the axes that change (in order), of resizing a ``shape`` tensor.

    ``scales``, ``sizes`` and ``roi`` are the node's inputs (anything numpy reads; empty or None is
    absent), one value (two for roi) per axis of ``attrs.axes`` (every axis when absent). Scales
    give ``floor(scale * length)`` cells; sizes give the scale ``size / length``, and under
    ``not_larger`` / ``not_smaller`` one scale for every axis (the smallest or largest) and
    ``round(scale * length)`` cells.

    Raises:
        InvalidArgument: neither scales nor sizes, a count that does not match the axes, or a
            size or scale that is not positive.
    """
    rank = len(shape)
    axes = (
        list(range(rank))
        if attrs.axes is None
        else list(normalize_axes(attrs.axes, rank, "Resize"))
    )
    n = len(axes)
    scales, sizes, roi_v = _values(scales), _values(sizes), _values(roi)
    out, sc = [int(d) for d in shape], [1.0] * rank
    if scales is not None:
        if len(scales) != n:
            raise InvalidArgument(f"Resize: {len(scales)} scales for {n} axes.")
        for a, s in zip(axes, scales):
            if not s > 0:
                raise InvalidArgument(f"Resize: scale {s} of axis {a} is not positive.")
            sc[a], out[a] = float(s), int(float(s) * shape[a])
    elif sizes is not None:
        if len(sizes) != n:
            raise InvalidArgument(f"Resize: {len(sizes)} sizes for {n} axes.")
        for a, size in zip(axes, sizes):
            if int(size) < 0 or (int(size) and not shape[a]):
                raise InvalidArgument(f"Resize: size {int(size)} of axis {a} (length {shape[a]}).")
            out[a] = int(size)
            sc[a] = int(size) / shape[a] if shape[a] else 1.0
        policy = attrs.keep_aspect_ratio_policy
        if policy != "stretch":
            s = (min if policy == "not_larger" else max)(sc[a] for a in axes)
            for a in axes:
                sc[a], out[a] = s, int(s * shape[a] + 0.5)
    else:
        raise InvalidArgument("Resize: neither 'scales' nor 'sizes' is given (one must be).")
    rois: dict[int, tuple[float, float]] = {}
    if roi_v is not None and attrs.coordinate_transformation_mode == "tf_crop_and_resize":
        if len(roi_v) != 2 * n:
            raise InvalidArgument(f"Resize: roi has {len(roi_v)} values; {2 * n} expected.")
        rois = {a: (float(roi_v[i]), float(roi_v[n + i])) for i, a in enumerate(axes)}
    steps = []
    for a in axes:
        r = rois.get(a)
        whole = r is None or (math.isclose(r[0], 0.0) and math.isclose(r[1], 1.0))
        if out[a] == shape[a] and math.isclose(sc[a], 1.0) and whole:
            continue
        steps.append(AxisResize(a, int(shape[a]), out[a], sc[a], r))
    return tuple(out), steps


# -- coordinates and filters ----------------------------------------------------------------------
def source_coordinates(
    mode: str,
    out_len: int,
    scale: float,
    in_len: int,
    roi: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The input coordinate (float64) of each output position along one axis, per
    ``coordinate_transformation_mode``, and for tf_crop_and_resize the mask of positions that
    fall outside the input (they take ``extrapolation_value``; else None)."""
    y = np.arange(out_len, dtype=np.float64)
    out_f = scale * in_len
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "align_corners":
        if out_f == 1:
            return np.zeros(out_len), None
        return y * (in_len - 1) / (out_f - 1), None
    if mode == "pytorch_half_pixel":
        if out_f == 1:
            return np.full(out_len, -0.5), None
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / out_f)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale, None
    if mode == "tf_crop_and_resize":
        start, end = (0.0, 1.0) if roi is None else roi
        if out_f == 1:
            x = np.full(out_len, (end - start) * (in_len - 1) / 2)
        else:
            x = y * (end - start) * (in_len - 1) / (out_f - 1)
        x = x + start * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    raise InvalidArgument(
        f"Resize: coordinate_transformation_mode '{mode}' is not one of "
        f"{list(COORDINATE_TRANSFORMATION_MODES)}."
    )


def nearest_indices(x: np.ndarray, nearest_mode: str, scale: float, in_len: int) -> np.ndarray:
    """The input index (int64, clamped into the axis) nearest each coordinate, per
    ``nearest_mode``; ``legacy`` is Resize-10's and Upsample's (truncate when upsampling, ceil
    when downsampling)."""
    fl = np.floor(x)
    frac = x - fl
    if nearest_mode == "round_prefer_floor":
        idx = fl + (frac > 0.5)
    elif nearest_mode == "round_prefer_ceil":
        idx = fl + (frac >= 0.5)
    elif nearest_mode == "floor":
        idx = fl
    elif nearest_mode == "ceil":
        idx = np.ceil(x)
    elif nearest_mode == "legacy":
        idx = np.ceil(x) if scale < 1 else np.trunc(x)
    else:
        raise InvalidArgument(
            f"Resize: nearest_mode '{nearest_mode}' is not one of {list(NEAREST_MODES)}."
        )
    return np.clip(idx, 0, in_len - 1).astype(np.int64)


def cubic_weights(d: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a`` (``cubic_coeff_a``) at distances
    ``d``: ``(a+2)|d|^3 - (a+3)|d|^2 + 1`` within 1, ``a|d|^3 - 5a|d|^2 + 8a|d| - 4a`` within 2,
    else 0."""
    d = np.abs(np.asarray(d, dtype=np.float64))
    d2, d3 = d * d, d * d * d
    near = (a + 2) * d3 - (a + 3) * d2 + 1
    far = a * d3 - 5 * a * d2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def linear_weights(d: np.ndarray) -> np.ndarray:
    """The triangle (linear) kernel ``max(0, 1 - |d|)``."""
    return np.clip(1 - np.abs(np.asarray(d, dtype=np.float64)), 0, 1)


class TapTable(NamedTuple):
    """How one axis is resized: output position ``j`` is ``sum_k weight[j, k] * x[index[j, k]]``
    along the axis (``weight`` None: one tap of weight 1, nearest), or ``extrapolation_value``
    where ``outside[j]`` (tf_crop_and_resize; None: nowhere). Read-only arrays: ``index`` int64
    (out_len, taps) clamped into the axis, ``weight`` float64 of the same shape, ``outside`` bool
    (out_len,)."""

    index: np.ndarray
    weight: np.ndarray | None
    outside: np.ndarray | None


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=512)
def _tap_table(attrs: ResizeAttrs, in_len: int, out_len: int, scale: float, roi) -> TapTable:
    x, outside = source_coordinates(
        attrs.coordinate_transformation_mode, out_len, scale, in_len, roi
    )
    if outside is not None and not outside.any():
        outside = None
    if attrs.mode == "nearest":
        idx = nearest_indices(x, attrs.nearest_mode, scale, in_len)[:, None]
        return TapTable(_frozen(idx), None, _frozen(outside))
    support = 1.0 if attrs.mode == "linear" else 2.0
    # antialias widens the filter by 1/scale when downsampling (and scales the distances to match)
    s = min(scale, 1.0) if attrs.antialias else 1.0
    start = int(math.floor(-support / s)) + 1
    offsets = np.arange(start, 2 - start)
    fl = np.floor(x)
    idx = fl.astype(np.int64)[:, None] + offsets[None, :]
    d = (offsets[None, :] - (x - fl)[:, None]) * s
    w = linear_weights(d) if attrs.mode == "linear" else cubic_weights(d, attrs.cubic_coeff_a)
    if attrs.antialias:
        w = w / w.sum(axis=1, keepdims=True)
    if attrs.exclude_outside:
        w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return TapTable(_frozen(np.clip(idx, 0, in_len - 1)), _frozen(w), _frozen(outside))


def tap_table(attrs: ResizeAttrs, step: AxisResize) -> TapTable:
    """The :class:`TapTable` of one axis of a :func:`resize_plan`, computed once per geometry."""
    return _tap_table(attrs, step.in_len, step.out_len, step.scale, step.roi)
