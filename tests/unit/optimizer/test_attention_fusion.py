"""AttentionFusion: the exported BERT/GPT-2 attention blocks become Attention; attention over
projected q, k, v inputs becomes MultiHeadAttention."""

from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.ir import load_model, model_to_proto
from ort_core.optimizer import GraphOptimizationLevel, optimize
from ort_core.optimizer.passes import attention_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import (
    apply_on_cpu,
    assert_same_run,
    cpu_context,
    fused_ops,
)

FIXTURES = Path(__file__).parents[2] / "models" / "fixtures"
RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name,unidirectional", [("bert_tiny", None), ("gpt2_tiny", 1)])
def test_exported_blocks(name, unidirectional):
    model = load_model(str(FIXTURES / f"{name}.onnx"))
    ctx = cpu_context()
    optimize(model, GraphOptimizationLevel.ORT_ENABLE_BASIC, ctx, stage="basic")
    basic = model_to_proto(model)
    for n in model.graph.nodes:
        n.provider = "CPUExecutionProvider"
    assert attention_fusion.PASS(model, ctx)
    model.graph.sort()
    attn = [n for n in model.graph.nodes if n.op_type == "Attention"]
    assert len(attn) == 2 and "Softmax" not in fused_ops(model)
    assert all(
        n.attr("num_heads") == 4 and n.attr("unidirectional") == unidirectional for n in attn
    )
    feed = {"input_ids": RNG.integers(0, 100, (2, 16)).astype(np.int64)}
    if name == "bert_tiny":
        mask = np.ones((2, 16), np.int64)
        mask[1, 10:] = 0
        feed |= {"attention_mask": mask, "token_type_ids": np.zeros((2, 16), np.int64)}
        assert len(attn[0].inputs) == 4  # mask_index
    assert_same_run(basic, model_to_proto(model), feed, rtol=1e-4, atol=1e-4)


def test_projected_inputs_give_multi_head_attention():
    b, s, n, h = 2, 5, 2, 4
    shape4 = numpy_helper.from_array(np.array([b, s, n, h], np.int64), "s4")
    shape3 = numpy_helper.from_array(np.array([b, s, n * h], np.int64), "s3")
    scale = numpy_helper.from_array(np.float32(0.3), "scale")
    nodes = []
    for x, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [
            helper.make_node("Reshape", [x, "s4"], [f"{x}r"]),
            helper.make_node("Transpose", [f"{x}r"], [f"{x}t"], perm=perm),
        ]
    nodes += [
        helper.make_node("MatMul", ["qt", "kt"], ["sc"]),
        helper.make_node("Mul", ["sc", "scale"], ["scs"]),
        helper.make_node("Softmax", ["scs"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "vt"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ot", "s3"], ["y"]),
    ]
    m = make_model(
        nodes,
        [tensor(x, shape=[b, s, n * h]) for x in "qkv"],
        [tensor("y")],
        [shape4, shape3, scale],
    )
    model, changed, fused = apply_on_cpu(attention_fusion.PASS, m)
    assert changed and fused_ops(model) == ["MultiHeadAttention"]
    assert model.graph.nodes[0].attr("scale") == pytest.approx(0.3)
    feed = {x: RNG.standard_normal((b, s, n * h)).astype(np.float32) for x in "qkv"}
    assert_same_run(m, fused, feed)
