"""GridSample (opsets 16-22) as MIL's ``resample`` (4-D NCHW input, grid of normalized (x, y)).

ONNX and MIL both take the grid's last axis as (x, y) = (width, height) in [-1, 1]
(``coordinates_mode="normalized_minus_one_to_one"``) and denormalize it the same way for
``align_corners`` 0 and 1. Padding: ``zeros`` -> ``constant`` with value 0, ``border`` ->
``border``; ``reflection`` reflects about the extreme coordinates, which are the corner pixels'
centers with ``align_corners=1`` (MIL's ``reflection``) and their outer edges otherwise (MIL's
``symmetric``), as coremltools' own PyTorch frontend maps ``grid_sampler``. Refused with the
reason: ``bicubic``/``cubic`` (resample is bilinear or nearest), inputs of rank other than 4.
"""

from __future__ import annotations

import numpy as np

from . import FLOATS, Ctx, builder

#: ONNX GridSample mode -> MIL resample sampling_mode (opset 16 names and opset 20 names)
_MODES = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest"}


def _s(v, default: str) -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def _check(info) -> str | None:
    mode = _s(info.attr("mode"), "bilinear" if info.opset < 20 else "linear")
    if mode not in _MODES:
        return f"GridSample mode {mode!r}: Core ML's resample samples bilinear or nearest only"
    padding = _s(info.attr("padding_mode"), "zeros")
    if padding not in ("zeros", "border", "reflection"):
        return f"GridSample padding_mode {padding!r} is not an ONNX padding mode"
    x = info.input_shape(0)
    if x is not None and len(x) != 4:
        return f"the input has rank {len(x)}; Core ML's resample takes 4-D (N, C, H, W) only"
    if info.input_dtype(1) not in FLOATS:
        return f"the grid is {info.input_dtype(1)}; Core ML's resample takes a float grid"
    return None


@builder("GridSample", since=16, dtypes=FLOATS, check=_check)
def grid_sample(ctx: Ctx, node) -> None:
    align = bool(node.attr("align_corners", 0))
    padding = _s(node.attr("padding_mode"), "zeros")
    padding = {"zeros": "constant", "border": "border"}.get(
        padding, "reflection" if align else "symmetric"
    )
    mode = _MODES[_s(node.attr("mode"), "bilinear" if ctx.node_opset < 20 else "linear")]
    y = ctx.mb.resample(
        x=ctx.x(0),
        coordinates=ctx.x(1),
        sampling_mode=mode,
        padding_mode=padding,
        padding_value=np.zeros((), ctx.np_dtype(0)),
        coordinates_mode="normalized_minus_one_to_one",
        align_corners=align,
    )
    ctx.out(0, y)
