"""ONNX shape arithmetic that every provider needs the same way (no kernels here)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["window_geometry"]


def window_geometry(
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str = "NOTSET",
    ceil_mode: bool = False,
) -> tuple[list[int], list[int], list[int]]:
    """(output size, leading pads, trailing pads) of a sliding window (Conv, pooling) per spatial
    axis, following ONNX's auto_pad, pads and ceil_mode rules."""
    n = len(in_shape)
    begin, end, out = [0] * n, [0] * n, [0] * n
    for i in range(n):
        size, eff = in_shape[i], (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out[i] = -(-size // strides[i])
            total = max(0, (out[i] - 1) * strides[i] + eff - size)
            small = total // 2
            begin[i] = small if auto_pad == "SAME_UPPER" else total - small
            end[i] = total - begin[i]
            continue
        if auto_pad == "NOTSET" and pads:
            begin[i], end[i] = int(pads[i]), int(pads[i + n])
        span = size + begin[i] + end[i] - eff
        if ceil_mode:
            out[i] = -(-span // strides[i]) + 1
            if (out[i] - 1) * strides[i] >= size + begin[i]:
                out[i] -= 1
        else:
            out[i] = span // strides[i] + 1
        out[i] = max(out[i], 0)
    return out, begin, end
