"""What the core asks of onnx's schemas for any provider: the schema in force, output arity."""

from __future__ import annotations

import onnx

from ..ir import Node


def schema_for(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    """The ONNX schema in force for an op at an opset, or None when onnx does not know the op."""
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None


def is_multi_output(node: Node, opset: int) -> bool:
    """True when the kernel of ``node`` returns a sequence of outputs (see module docstring)."""
    schema = schema_for(node.op_type, node.domain, opset)
    if schema is None:
        return len(node.outputs) != 1
    outs = schema.outputs
    return len(outs) != 1 or outs[0].option == onnx.defs.OpSchema.FormalParameterOption.Variadic
