"""Resize (opsets 10-19) and Upsample (opsets 7-9): 4-D NCHW input resized on its last two axes.

- ``linear`` becomes ``resize_bilinear`` to the output size, with the sampling mode that places
  the samples where ONNX's coordinate transformation does (both clamp to the input's edges):
  ``align_corners`` -> STRICT_ALIGN_CORNERS (x * (in - 1) / (out - 1)), ``asymmetric`` -> DEFAULT
  (x * in / out), ``half_pixel`` and ``pytorch_half_pixel`` -> UNALIGN_CORNERS
  ((x + 0.5) * in / out - 0.5). MIL derives the scale from the sizes, so given scales must
  make integral output sizes (ONNX would otherwise sample with the unrounded scale).
- ``nearest`` becomes ``upsample_nearest_neighbor`` (input pixel floor(x / s)) for integer scale
  factors s >= 1, where ONNX picks the same pixel: ``asymmetric`` with ``nearest_mode=floor``,
  ``half_pixel`` and ``pytorch_half_pixel`` with
  ``round_prefer_floor`` / ``round_prefer_ceil`` ((x + 0.5) / s - 0.5 lies strictly within 0.5 of
  floor(x / s)).

Resize-10 and Upsample are ``asymmetric``, nearest rounding down. Everything else is refused with
the reason (cubic, antialias, exclude_outside, other coordinate modes, non-integer nearest factors,
batch or channel resizing, scales or sizes not constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import Ctx, builder

_LINEAR_MODES = {
    "align_corners": "STRICT_ALIGN_CORNERS",
    "asymmetric": "DEFAULT",
    "half_pixel": "UNALIGN_CORNERS",
    "pytorch_half_pixel": "UNALIGN_CORNERS",
}
_NEAREST_OK = {
    ("asymmetric", "floor"),
    ("half_pixel", "round_prefer_floor"),
    ("half_pixel", "round_prefer_ceil"),
    ("pytorch_half_pixel", "round_prefer_floor"),
    ("pytorch_half_pixel", "round_prefer_ceil"),
}


@dataclass(frozen=True)
class Plan:
    mode: str  # "linear" or "nearest"
    size: tuple[int, int]  # output height, width
    sampling_mode: str = ""  # resize_bilinear's
    factors: tuple[int, int] = (1, 1)  # upsample_nearest_neighbor's


def _s(v, default: str) -> str:
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def _nonempty(v) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v).reshape(-1)
    return v if v.size else None


def plan(op: str, opset: int, attr, has, const, shape) -> Plan | str:
    """How the node converts, or the reason Core ML does not take it.

    ``attr(name, default)``, ``has(i)`` and ``const(i)`` read the node; ``shape`` is its input's.
    """
    mode = _s(attr("mode", "nearest"), "nearest")
    if mode not in ("nearest", "linear"):
        return f"{op} mode '{mode}': Core ML resizes with nearest and linear only"
    if shape is None or len(shape) != 4:
        rank = "unknown" if shape is None else len(shape)
        return f"{op} of a rank-{rank} input: Core ML resizes 4-D NCHW input only"
    if not all(isinstance(d, int) and d > 0 for d in shape[2:]):
        return f"{op} with a dynamic height or width {list(shape)}: Core ML needs them static"
    ctm, nearest_mode, axes = "asymmetric", "floor", None
    scales = sizes = None
    if op == "Upsample":
        if opset < 9:
            scales = _nonempty(attr("scales", None))
        elif not has(1) or const(1) is None:
            return "Upsample's scales must be a constant for Core ML"
        else:
            scales = _nonempty(const(1))
    elif opset < 11:
        if not has(1) or const(1) is None:
            return "Resize's scales must be a constant for Core ML"
        scales = _nonempty(const(1))
    else:
        ctm = _s(attr("coordinate_transformation_mode", None), "half_pixel")
        nearest_mode = _s(attr("nearest_mode", None), "round_prefer_floor")
        for i, what in ((2, "scales"), (3, "sizes")):
            if has(i) and const(i) is None:
                return f"Resize's {what} must be a constant for Core ML"
        scales = _nonempty(const(2)) if has(2) else None
        sizes = _nonempty(const(3)) if has(3) else None
        if attr("exclude_outside", 0):
            return "Resize with exclude_outside=1 is not converted for Core ML"
        if opset >= 18:
            if attr("antialias", 0):
                return "Resize with antialias=1: Core ML's resize ops do not antialias"
            policy = _s(attr("keep_aspect_ratio_policy", None), "stretch")
            if sizes is not None and policy != "stretch":
                return f"Resize keep_aspect_ratio_policy '{policy}' is not converted for Core ML"
            axes = attr("axes", None)
            if axes is not None:
                axes = [int(a) + 4 if int(a) < 0 else int(a) for a in axes]
    if sizes is None and scales is None:
        return f"{op} without constant scales or sizes is not converted for Core ML"
    axes = axes or [0, 1, 2, 3]
    values = sizes if sizes is not None else scales
    if len(values) != len(axes):
        return f"{op}: {len(values)} scales or sizes for {len(axes)} axes"
    full = dict(zip(axes, (float(v) for v in values)))
    n, c, h, w = shape
    if sizes is not None:
        keep = {0: n, 1: c}
        if any(full.get(a, keep[a]) != keep[a] for a in (0, 1)):
            return f"{op} resizes the batch or channel axis: Core ML resizes height and width only"
        out = (int(full.get(2, h)), int(full.get(3, w)))
    else:
        if any(full.get(a, 1.0) != 1.0 for a in (0, 1)):
            return f"{op} resizes the batch or channel axis: Core ML resizes height and width only"
        factors = (full.get(2, 1.0), full.get(3, 1.0))
        out = (int(np.floor(h * factors[0])), int(np.floor(w * factors[1])))
        if any(o != d * f for o, d, f in zip(out, (h, w), factors)):
            return (
                f"{op} scales {list(factors)} on height and width {h}x{w} give non-integral "
                "sizes: Core ML resamples with the scale of the rounded size"
            )
    if min(out) < 1:
        return f"{op} output size {list(out)}: Core ML needs sizes of at least 1"
    if mode == "linear":
        sampling = _LINEAR_MODES.get(ctm)
        if sampling is None:
            return f"linear {op} with coordinate_transformation_mode '{ctm}' is not converted"
        if ctm != "half_pixel" and 1 in out and (h, w) != out:
            return (
                f"linear {op} to a size of 1 with '{ctm}' is not converted (Core ML's sampling "
                "of a single output differs)"
            )
        return Plan("linear", out, sampling_mode=sampling)
    if any(o % d for o, d in zip(out, (h, w))):
        return (
            f"nearest {op} from {h}x{w} to {out[0]}x{out[1]}: Core ML's "
            "upsample_nearest_neighbor repeats pixels by integer factors only"
        )
    if (ctm, nearest_mode) not in _NEAREST_OK:
        return (
            f"nearest {op} with coordinate_transformation_mode '{ctm}' and nearest_mode "
            f"'{nearest_mode}' is not converted (Core ML's upsample_nearest_neighbor picks "
            "floor(x / scale))"
        )
    return Plan("nearest", out, factors=(out[0] // h, out[1] // w))


def _check(info) -> str | None:
    node = info.node
    res = plan(node.op_type, info.opset, info.attr, info.has_input, info.constant,
               info.input_shape(0))  # fmt: skip
    return res if isinstance(res, str) else None


@builder("Resize", since=10, check=_check)
@builder("Upsample", since=7, check=_check)
def resize(ctx: Ctx, node) -> None:
    res = plan(node.op_type, ctx.node_opset, node.attr, ctx.has, ctx.const, ctx.shape(0))
    if isinstance(res, str):
        raise ValueError(res)
    if res.mode == "linear":
        y = ctx.mb.resize_bilinear(x=ctx.x(0), target_size_height=res.size[0],
                                   target_size_width=res.size[1],
                                   sampling_mode=res.sampling_mode)  # fmt: skip
    else:
        y = ctx.mb.upsample_nearest_neighbor(x=ctx.x(0), scale_factor_height=res.factors[0],
                                             scale_factor_width=res.factors[1])  # fmt: skip
    ctx.out(0, y)
