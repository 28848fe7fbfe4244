"""ONNX semantics every provider shares, written once (ARCHITECTURE: ``ort_core.ops``).

What lives here is arithmetic on shapes, axes and attributes, never on tensor data: axis
normalization, broadcasting rules, attribute defaults and checks, window geometry (pads, auto_pad,
dilations, output sizes), Resize's coordinate transforms and tap tables. Providers call these from
their kernels (run time) and from their ``limit=``/``check=`` predicates (partition time), so a rule
changes in one place for every provider.
"""

from ._axes import axes_reason, axis_reason, normalize_axes, normalize_axis
from ._broadcast import broadcast_reason, broadcast_shape

__all__ = [
    "axes_reason",
    "axis_reason",
    "broadcast_reason",
    "broadcast_shape",
    "normalize_axes",
    "normalize_axis",
]
