"""ONNX semantics every provider shares, written once (ARCHITECTURE: ``ort_core.ops``).

What lives here is arithmetic on shapes, axes and attributes, never on tensor data: axis
normalization, broadcasting rules, attribute defaults and checks, window geometry (pads, auto_pad,
dilations, output sizes), Resize's coordinate transforms and tap tables. Providers call these from
their kernels (run time) and from their ``limit=``/``check=`` predicates (partition time), so a rule
changes in one place for every provider.
"""

from ._axes import axes_reason, axis_reason, normalize_axes, normalize_axis
from ._broadcast import broadcast_reason, broadcast_shape
from ._resize import (
    COORDINATE_TRANSFORMATION_MODES,
    KEEP_ASPECT_RATIO_POLICIES,
    NEAREST_MODES,
    AxisResize,
    ResizeAttrs,
    TapTable,
    cubic_weights,
    linear_weights,
    nearest_indices,
    resize_plan,
    resize_reason,
    source_coordinates,
    tap_table,
    upsample_1_scales,
)
from ._window import (
    AUTO_PADS,
    Window,
    WindowGeometry,
    auto_pad_reason,
    ceil_window_dropped,
    conv_channels_reason,
    conv_reason,
    conv_transpose_geometry,
    effective_kernel,
    pool_reason,
    same_pads,
    window_geometry,
    window_output_size,
    window_reach,
)

__all__ = [
    "AUTO_PADS",
    "COORDINATE_TRANSFORMATION_MODES",
    "KEEP_ASPECT_RATIO_POLICIES",
    "NEAREST_MODES",
    "AxisResize",
    "ResizeAttrs",
    "TapTable",
    "Window",
    "WindowGeometry",
    "auto_pad_reason",
    "axes_reason",
    "axis_reason",
    "broadcast_reason",
    "broadcast_shape",
    "ceil_window_dropped",
    "conv_channels_reason",
    "conv_reason",
    "conv_transpose_geometry",
    "cubic_weights",
    "effective_kernel",
    "linear_weights",
    "nearest_indices",
    "normalize_axes",
    "normalize_axis",
    "pool_reason",
    "resize_plan",
    "resize_reason",
    "same_pads",
    "source_coordinates",
    "tap_table",
    "upsample_1_scales",
    "window_geometry",
    "window_output_size",
    "window_reach",
]
