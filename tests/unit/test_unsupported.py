"""An op, element type or attribute value the CPU provider does not support fails at session
creation with ort_core.errors.NotImplemented naming the node, op, opset and what is supported
(issue 5, item 5), never at run time with a numpy error."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper

import ort_core
from ort_core.errors import NotImplemented as OrtNotImplemented
from tests.differential.harness import make_node_model

TRAINING = "ai.onnx.preview.training"


def _model(op, inputs, attrs=None, *, opset=None, domain=""):
    model, _ = make_node_model(op, inputs, attrs, opset=opset, domain=domain)
    model.graph.node[0].name = "my_node"
    return model


def _create(model: onnx.ModelProto, optimize: bool = True):
    opts = ort_core.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort_core.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _assert_names(err: Exception, op: str, opset: int, *supported: str) -> None:
    msg = str(err)
    assert "my_node" in msg, msg
    assert op in msg, msg
    assert f"opset {opset}" in msg, msg
    for s in supported:
        assert s in msg, msg


def test_unsupported_op():
    model = _model("Frobnicate", [np.ones(3, np.float32)], opset=21)
    with pytest.raises(OrtNotImplemented) as info:
        _create(model)
    _assert_names(info.value, "Frobnicate", 21, "no kernel for ai.onnx::Frobnicate")


@pytest.mark.parametrize(
    "op, inputs, opset, domain, supported",
    [
        (
            "Adagrad",
            [np.float32(0.1), np.int64(1), *[np.ones(3, np.float16)] * 3],
            1,
            TRAINING,
            ("float16", "float32, float64"),
        ),
        ("Dropout", [np.ones(3, ml_dtypes.float8_e4m3fn)], 21, "", ("float8_e4m3fn", "bfloat16")),
        ("Relu", [np.array(["a"], object)], 14, "", ("object",)),
    ],
)
def test_unsupported_element_type(op, inputs, opset, domain, supported):
    model = _model(op, inputs, opset=opset, domain=domain)
    with pytest.raises(OrtNotImplemented) as info:
        _create(model)
    _assert_names(info.value, op, opset, *supported)


@pytest.mark.parametrize(
    "op, inputs, attrs, opset, domain, supported",
    [
        (
            "TensorScatter",
            [np.ones((2, 4, 3), np.float32), np.ones((2, 1, 3), np.float32)],
            {"mode": "bogus"},
            24,
            "",
            ("mode 'bogus'", "linear", "circular"),
        ),
        (
            "TensorScatter",
            [np.ones((2, 4, 3), np.float32), np.ones((2, 1, 3), np.float32)],
            {"axis": 0},
            24,
            "",
            ("axis 0", "non-batch axis"),
        ),
        (
            "Momentum",
            [np.float32(0.1), np.int64(1), *[np.ones(3, np.float32)] * 3],
            {"alpha": 0.9, "beta": 0.1, "norm_coefficient": 0.0, "mode": "heavy_ball"},
            1,
            TRAINING,
            ("mode 'heavy_ball'", "standard", "nesterov"),
        ),
        (
            "RoiAlign",
            [np.ones((1, 1, 4, 4), np.float32), np.ones((1, 4), np.float32), np.zeros(1, np.int64)],
            {"mode": "median"},
            16,
            "",
            ("mode 'median'", "avg", "max"),
        ),
        (
            "Resize",
            [np.ones((1, 1, 2, 2), np.float32), None, np.array([2, 2, 2, 2], np.float32)],
            {"nearest_mode": "sideways"},
            19,
            "",
            ("nearest_mode 'sideways'", "round_prefer_floor"),
        ),
        (
            "SplitToSequence",
            [np.ones((2, 3), np.float32)],
            {"axis": 4},
            11,
            "",
            ("axis 4 is out of range",),
        ),
        (
            "LpNormalization",
            [np.ones((2, 3), np.float32)],
            {"axis": -3},
            22,
            "",
            ("axis -3 is out of range",),
        ),
    ],
)
def test_unsupported_attribute_value(op, inputs, attrs, opset, domain, supported):
    model = _model(op, inputs, attrs, opset=opset, domain=domain)
    with pytest.raises(OrtNotImplemented) as info:
        _create(model)
    _assert_names(info.value, op, opset, *supported)


@pytest.mark.parametrize("optimize", [False, True])
def test_unsupported_cast_target(optimize):
    model = _model("Cast", [np.ones(3, np.float32)], {"to": 9999}, opset=21)
    with pytest.raises(OrtNotImplemented) as info:
        _create(model, optimize=optimize)
    _assert_names(info.value, "Cast", 21, "to=9999 is not an ONNX element type")


@pytest.mark.parametrize(
    "op, inputs, attrs, opset, supported",
    [
        ("Softmax", [np.ones((2, 3), np.float32)], {"axis": 5}, 13, ("axis 5",)),
        (
            "NegativeLogLikelihoodLoss",
            [np.ones((2, 3), np.float32), np.zeros(2, np.int64)],
            {"reduction": "bogus"},
            13,
            ("reduction 'bogus'",),
        ),
    ],
)
def test_function_ops_with_invalid_attributes_are_reported_not_expanded(
    op, inputs, attrs, opset, supported
):
    model = _model(op, inputs, attrs, opset=opset)
    with pytest.raises(OrtNotImplemented) as info:
        _create(model)
    _assert_names(info.value, op, opset, *supported)


def test_missing_required_input_is_invalid_graph():
    from ort_core.errors import InvalidGraph

    a = np.ones((2, 2), np.uint8)
    s = np.array(1.0, np.float32)
    model = _model("QLinearMatMul", [a, s, None, a, s, None, s, None], opset=21)
    with pytest.raises(InvalidGraph, match="my_node.*required input 2 \\('a_zero_point'\\)"):
        _create(model)


def test_unknown_attribute_is_refused():
    """An attribute the op's schema does not define makes the node invalid (as in onnxruntime)."""
    from ort_core.errors import InvalidGraph

    model = _model("Relu", [np.ones(3, np.float32)], opset=14)
    model.graph.node[0].attribute.append(helper.make_attribute("flavour", "spicy"))
    with pytest.raises(InvalidGraph) as info:
        _create(model)
    _assert_names(info.value, "Relu", 14, "flavour")
