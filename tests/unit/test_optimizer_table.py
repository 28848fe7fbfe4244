"""Host logic: the table of built-in passes (``ort_core/optimizer/_infra.py``) the driver reads
before importing a pass's module, and the skipping of passes whose trigger ops a model lacks."""

from __future__ import annotations

import importlib

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ort_core.ir import load_model
from ort_core.optimizer import GraphOptimizationLevel, PassContext, builtin_passes, optimize
from ort_core.optimizer._infra import BUILTIN_PASSES


def test_table_matches_the_pass_modules():
    for entry in BUILTIN_PASSES:
        p = importlib.import_module(f"ort_core.optimizer.passes.{entry.module}").PASS
        assert p.name == entry.name
        assert int(p.level) == int(entry.level)
        assert getattr(p, "providers", None) is None  # the lazy pass says None
        assert getattr(p, "in_place", True) is True


def _linear_model() -> bytes:
    f32 = TensorProto.FLOAT
    g = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["i"]),
            helper.make_node("MatMul", ["i", "w"], ["m"]),
            helper.make_node("Relu", ["m"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", f32, [2, 3])],
        [helper.make_tensor_value_info("y", f32, [2, 2])],
        [numpy_helper.from_array(np.ones((3, 2), np.float32), "w")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_passes_without_their_trigger_ops_are_not_loaded_or_run():
    model = load_model(_linear_model())
    passes = builtin_passes()
    report = optimize(
        model, GraphOptimizationLevel.ORT_ENABLE_ALL, PassContext(), stage="basic", passes=passes
    )
    loaded = {p.name for p in passes if p._pass is not None}
    # always-run passes, and those whose ops the model holds (Identity, MatMul), were loaded
    assert {"ConstantFolding", "EliminateIdentity", "MatMulAddFusion"} <= loaded
    # no Conv, BatchNormalization, Pad, Reshape, Transpose, Dropout: those passes never ran
    for name in ("ConvBNFusion", "ConvAddMulFusion", "PadFusion", "ReshapeChainFusion"):
        assert name not in loaded
    assert report.applied.get("EliminateIdentity") == 1
    assert [n.op_type for n in model.graph.nodes] == ["MatMul", "Relu"]


def test_a_trigger_made_by_an_earlier_pass_is_seen_in_the_next_round():
    """MatMul + Add becomes Gemm (MatMulAddFusion) in round 1; the next round's op set holds
    Gemm, so a pass triggered by Gemm would run then (checked here with a stand-in pass)."""
    f32 = TensorProto.FLOAT
    g = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", f32, [2, 3])],
        [helper.make_tensor_value_info("y", f32, [2, 2])],
        [
            numpy_helper.from_array(np.ones((3, 2), np.float32), "w"),
            numpy_helper.from_array(np.ones(2, np.float32), "b"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model = load_model(m.SerializeToString())
    seen = []

    class OnGemm:
        name = "OnGemm"
        level = GraphOptimizationLevel.ORT_ENABLE_BASIC
        triggers = frozenset({"Gemm"})

        def __call__(self, model, ctx):
            seen.append([n.op_type for n in model.graph.nodes])
            return False

    passes = [OnGemm(), *builtin_passes()]
    optimize(
        model, GraphOptimizationLevel.ORT_ENABLE_ALL, PassContext(), stage="basic", passes=passes
    )
    assert seen == [["Gemm"]]  # not in round 1 (no Gemm yet), once Gemm existed
