"""Which nodes Core ML takes: the conditions every node must meet (element types, rank <= 5,
dimensions neither zero nor above 16384, static input shapes on request, constant inputs where
Core ML needs them) and each op's own limits, registered beside its builder (``builders/``).

:func:`node_reason` gives the reason a node is refused, or None; nothing here imports coremltools.
"""

from __future__ import annotations

import numpy as np

from ort_core.ir import tensor_dtype, tensor_shape
from ort_core.provider import KernelInfo

from .builders import ANY, MAX_DIM, load_all

MAX_RANK = 5


def _dims_reason(what: str, shape, static: bool) -> str | None:
    if shape is None:
        return f"{what} has an unknown rank (Core ML needs every rank)"
    if len(shape) > MAX_RANK:
        return f"{what} has rank {len(shape)}; Core ML takes rank {MAX_RANK} at most"
    for d in shape:
        if isinstance(d, int) and d >= 0:
            if d == 0:
                return f"{what} has a zero-sized dimension {list(shape)}; Core ML has none"
            if d > MAX_DIM:
                return f"{what} has dimension {d} > {MAX_DIM}, Core ML's largest"
        elif static:
            return f"{what} has a dynamic shape {list(shape)} and RequireStaticInputShapes=1"
    return None


def node_reason(info: KernelInfo, *, require_static: bool = False) -> str | None:
    """Why Core ML does not take ``info.node`` (one sentence), or None when it does."""
    node = info.node
    if node.domain not in ("", "ai.onnx"):
        return f"Core ML has no builder for {node.domain}::{node.op_type}"
    b = load_all().get(node.op_type)
    if b is None:
        return f"Core ML has no builder for {node.op_type}"
    if info.opset < b.since:
        return f"{node.op_type} of opset {info.opset} is not converted (from opset {b.since})"
    if node.subgraphs:
        return "nodes with subgraphs are not converted"
    for i, name in enumerate(node.inputs):
        if not name:
            continue
        dt = info.input_dtype(i)
        if dt is None:
            return f"input {i} ('{name}') has an unknown element type"
        if dt not in ANY and dt not in b.carries:
            return f"input {i} ('{name}') is {dt}; Core ML programs hold float32/16, int32/64, bool"
        if info.constant(i) is None:
            reason = _dims_reason(f"input {i} ('{name}')", info.input_shape(i), require_static)
            if reason:
                return reason
        elif np.asarray(info.constant(i)).ndim > MAX_RANK:
            return f"constant input {i} has rank > {MAX_RANK}"
    for i, name in enumerate(node.outputs):
        if not name:
            continue
        tp = info.output_types[i] if i < len(info.output_types) else None
        dt = tensor_dtype(tp)
        if dt is not None and dt not in ANY and dt not in b.carries:
            return (
                f"output {i} ('{name}') is {dt}; Core ML programs hold float32/16, int32/64, bool"
            )
        reason = _dims_reason(f"output {i} ('{name}')", tensor_shape(tp), False)
        if reason and "unknown rank" not in reason:
            return reason
    first = info.input_dtype(0) if node.inputs and node.inputs[0] else None
    if first is not None and first not in b.dtypes:
        kinds = ", ".join(sorted(str(d) for d in b.dtypes))
        return f"{node.op_type} on {first} is not converted (Core ML takes {kinds})"
    for i in b.const_inputs:
        if info.has_input(i) and info.constant(i) is None:
            return (
                f"input {i} ('{node.inputs[i]}') of {node.op_type} must be a constant for Core ML"
            )
    if b.check is not None:
        return b.check(info)
    return None
