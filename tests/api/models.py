"""Small models for the differential API tests, built with onnx.helper (the shapes, names and ops
that onnxruntime's own Python API tests and tutorials use)."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=17, ir=8, **kw) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, kw.pop("name", "g"), inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = ir
    return m


def mul_1() -> onnx.ModelProto:
    """Y = X * W, W = [[1, 2], [3, 4], [5, 6]] (onnxruntime's mul_1.onnx)."""
    w = numpy_helper.from_array(np.arange(1, 7, dtype=np.float32).reshape(3, 2), "W")
    return _model(
        [helper.make_node("Mul", ["X", "W"], ["Y"], name="mul_1")],
        [helper.make_tensor_value_info("X", F, [3, 2])],
        [helper.make_tensor_value_info("Y", F, [3, 2])],
        [w],
    )


def logicaland() -> onnx.ModelProto:
    b = TensorProto.BOOL
    return _model(
        [helper.make_node("And", ["input1:0", "input:0"], ["output:0"])],
        [
            helper.make_tensor_value_info("input1:0", b, [2, 2]),
            helper.make_tensor_value_info("input:0", b, [2, 2]),
        ],
        [helper.make_tensor_value_info("output:0", b, [2, 2])],
    )


def identity_string() -> onnx.ModelProto:
    s = TensorProto.STRING
    return _model(
        [helper.make_node("Identity", ["input:0"], ["output:0"])],
        [helper.make_tensor_value_info("input:0", s, [2, 2])],
        [helper.make_tensor_value_info("output:0", s, [2, 2])],
    )


def abs_free_dimensions() -> onnx.ModelProto:
    """Abs over x[Dim1, Dim2, 5], the first two dims denoted DATA_BATCH and DATA_CHANNEL."""
    x = helper.make_tensor_value_info("x", F, ["Dim1", "Dim2", 5])
    dims = x.type.tensor_type.shape.dim
    dims[0].denotation, dims[1].denotation = "DATA_BATCH", "DATA_CHANNEL"
    return _model(
        [helper.make_node("Abs", ["x"], ["y"])],
        [x],
        [helper.make_tensor_value_info("y", F, ["Dim1", "Dim2", 5])],
    )


def with_ort_config() -> onnx.ModelProto:
    m = mul_1()
    entry = m.metadata_props.add()
    entry.key = "ort_config"
    entry.value = json.dumps(
        {
            "session_options": {
                "inter_op_num_threads": 5,
                "intra_op_num_threads": 2,
                "graph_optimization_level": 99,
                "enable_profiling": 1,
            }
        }
    )
    return m


def add_mul_add() -> onnx.ModelProto:
    return _model(
        [
            helper.make_node("Add", ["a", "b"], ["t1"], name="add_0"),
            helper.make_node("Mul", ["t1", "c"], ["t2"], name="mul_0"),
            helper.make_node("Add", ["t2", "a"], ["y"], name="add_1"),
        ],
        [helper.make_tensor_value_info(n, F, [2]) for n in ("a", "b", "c")],
        [helper.make_tensor_value_info("y", F, [2])],
    )


def lora() -> onnx.ModelProto:
    """input_x @ weight_x + (input_x @ lora_param_a) @ lora_param_b, the LoRA parameters being
    overridable initializers with an empty default (onnxruntime's LoRA test model)."""
    x = helper.make_tensor_value_info("input_x", F, [4, 4])
    a = helper.make_tensor_value_info("lora_param_a", F, [4, "dim"])
    b = helper.make_tensor_value_info("lora_param_b", F, ["dim", 4])
    w = numpy_helper.from_array(np.arange(1, 17, dtype=np.float32).reshape(4, 4), "weight_x")
    ia = numpy_helper.from_array(np.zeros((4, 0), np.float32), "lora_param_a")
    ib = numpy_helper.from_array(np.zeros((0, 4), np.float32), "lora_param_b")
    return _model(
        [
            helper.make_node("MatMul", ["input_x", "weight_x"], ["mm_x"]),
            helper.make_node("MatMul", ["input_x", "lora_param_a"], ["mm_a"]),
            helper.make_node("MatMul", ["mm_a", "lora_param_b"], ["mm_b"]),
            helper.make_node("Add", ["mm_x", "mm_b"], ["output"]),
        ],
        [x, a, b],
        [helper.make_tensor_value_info("output", F, [4, 4])],
        [w, ia, ib],
    )


def pads_external(folder: str, write_file: bool) -> str:
    """y = x + Pads_not_on_disk (int64[4]), the initializer's data in external file
    Pads_not_on_disk.bin (written only when ``write_file``); returns the model's path."""
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1], dtype=np.int64), "Pads_not_on_disk")
    pads.data_location = TensorProto.EXTERNAL
    raw = pads.raw_data
    pads.ClearField("raw_data")
    for k, v in (("location", "Pads_not_on_disk.bin"), ("offset", "0"), ("length", str(len(raw)))):
        e = pads.external_data.add()
        e.key, e.value = k, v
    m = _model(
        [helper.make_node("Add", ["x", "Pads_not_on_disk"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [4])],
        [pads],
    )
    path = os.path.join(folder, "model_with_external_initializer_come_from_user.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    if write_file:
        with open(os.path.join(folder, "Pads_not_on_disk.bin"), "wb") as f:
            f.write(raw)
    return path


def save(model: onnx.ModelProto, folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    onnx.save(model, path)
    return path
