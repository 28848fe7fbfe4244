"""ort-core's graph IR: Model, Graph and Node, and conversion to and from ONNX protobuf."""

from ._convert import (
    add_inferred_types,
    check_model,
    graph_from_proto,
    graph_to_proto,
    load_model,
    model_from_proto,
    model_to_proto,
    node_from_proto,
    node_to_proto,
)
from ._core import (
    Graph,
    Model,
    Node,
    attribute_value,
    constant_value,
    node_reads,
    tensor_dtype,
    tensor_shape,
    type_str,
)
from ._infer import infer_types

__all__ = [
    "Model",
    "Graph",
    "Node",
    "attribute_value",
    "constant_value",
    "node_reads",
    "tensor_dtype",
    "tensor_shape",
    "type_str",
    "load_model",
    "model_from_proto",
    "model_to_proto",
    "graph_from_proto",
    "graph_to_proto",
    "node_from_proto",
    "node_to_proto",
    "check_model",
    "infer_types",
    "add_inferred_types",
]
