"""Op schemas the CPU provider runs that onnx does not define, registered with onnx so that the
checker and shape inference know them (onnxruntime defines the same ops)."""

from __future__ import annotations

import onnx
from onnx.defs import OpSchema

_FLOATS = ["tensor(float)", "tensor(float16)", "tensor(double)", "tensor(bfloat16)"]


def _attr(name: str, value) -> OpSchema.Attribute:
    return OpSchema.Attribute(name, onnx.helper.make_attribute(name, value), "")


def simplified_layer_normalization() -> OpSchema:
    """onnxruntime's RMS normalization, which it places in the ONNX domain (since 1)."""
    P = OpSchema.FormalParameter
    return OpSchema(
        "SimplifiedLayerNormalization",
        "",
        1,
        doc="Y = X / sqrt(mean(X^2, axes >= axis) + epsilon) * scale (onnxruntime's RMSNorm).",
        inputs=[P("X", "T"), P("scale", "V")],
        outputs=[
            P("Y", "V"),
            P("inv_std_var", "U", param_option=OpSchema.FormalParameterOption.Optional),
        ],
        type_constraints=[
            ("T", _FLOATS, "input type"),
            ("U", ["tensor(float)", "tensor(double)"], "statistics type"),
            ("V", _FLOATS, "output and scale type"),
        ],
        attributes=[_attr("axis", -1), _attr("epsilon", 1e-5), _attr("stash_type", 1)],
    )


SCHEMAS = (simplified_layer_normalization,)


def register_all(register) -> None:
    for make in SCHEMAS:
        schema = make()
        if not onnx.defs.has(schema.name, schema.domain):
            register(schema)
