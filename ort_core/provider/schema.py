"""What the core asks of onnx's schemas for any provider: the schema in force, output arity."""

from __future__ import annotations

from .. import _onnx
from ..ir import Node
from ..ir._schema_table import VARIADIC
from ..ir._validate import schema_facts

onnx = _onnx.onnx

_SCHEMAS: dict[tuple[str, str, int], onnx.defs.OpSchema] = {}


def schema_for(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    """The ONNX schema in force for an op at an opset, or None when onnx does not know the op.
    Found schemas are kept, and an unknown op is told by ``onnx.defs.has`` (0.2 us) rather than
    by get_schema's exception: kernels with optional outputs ask on every run, and a contrib
    op's miss cost 11 us (a SkipLayerNormalization took 45 us where Add + LayerNormalization
    took 27). Unknown ops are not kept: a schema may be registered later (one deregistered
    after it was found stays known to the process)."""
    key = (op_type, domain, opset)
    schema = _SCHEMAS.get(key)
    if schema is not None:
        return schema
    if not onnx.defs.has(op_type, opset, domain):
        return None
    try:
        schema = onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None
    _SCHEMAS[key] = schema
    return schema


def is_multi_output(node: Node, opset: int) -> bool:
    """True when the kernel of ``node`` returns a sequence of outputs (see module docstring)."""
    facts = schema_facts(node.op_type, node.domain, opset)
    if facts is None:
        return len(node.outputs) != 1
    outs = facts.outputs
    return len(outs) != 1 or outs[0][1] == VARIADIC


def output_trimmer(node: Node, opset: int):
    """For a kernel computing all of its op's outputs: a function from that tuple of values to
    what the core expects of ``node`` (the tuple trimmed to the node's outputs, None for omitted
    ones, when :func:`is_multi_output`; else the first value alone). Made with the kernel, so the
    schema is asked once, not on every run."""
    if not is_multi_output(node, opset):
        return lambda values: values[0]
    names = node.outputs

    def trim(values: tuple) -> tuple:
        return tuple(v if names[i] else None for i, v in enumerate(values[: len(names)]))

    return trim
