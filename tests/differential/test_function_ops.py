"""Ops the standard defines as functions but the CPU provider runs with a direct kernel: the direct
kernel's outputs against the function body's, both run on the CPU provider (issue 5, item 4).

The attention family (Attention, RotaryEmbedding, SwiGLU, LinearAttention, CausalConvWithState,
FlexAttention) has its own, wider comparisons in test_attention.py; SoftmaxCrossEntropyLoss also in
test_loss.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.differential.harness import assert_same, make_node_model


def run_direct_and_expanded(model: onnx.ModelProto, feeds: dict, op_type: str):
    """Run ``model`` twice on the CPU provider: once with the direct kernel for ``op_type``, once
    with a CPU provider that declines ``op_type`` so the partitioner expands its function body."""
    from ort_core.ir import load_model
    from ort_core.plan import build_plan
    from ort_core.plugins import get_plugin_manager

    cpu_cls = get_plugin_manager().resolve("cpu").cls

    class NoDirect(cpu_cls):
        def get_capability(self, view):
            return [c for c in super().get_capability(view) if c.nodes[0].op_type != op_type]

    direct_m, expanded_m = load_model(model), load_model(model)
    direct = build_plan(direct_m, direct_m.graph, [cpu_cls({})])
    expanded = build_plan(expanded_m, expanded_m.graph, [NoDirect({})])
    assert [s.node.op_type for s in direct.steps] == [op_type]
    assert op_type not in [s.node.op_type for s in expanded.steps]
    args = [feeds[i.name] for i in model.graph.input]
    return direct.run(args), expanded.run(args)


def compare_with_body(op_type, inputs, attrs, *, opset=None, domain="", n_outputs=1, tol=1e-5):
    model, feeds = make_node_model(
        op_type, inputs, attrs, opset=opset, domain=domain, n_outputs=n_outputs
    )
    direct, expanded = run_direct_and_expanded(model, feeds, op_type)
    assert len(direct) == len(expanded) == n_outputs
    for i, (d, e) in enumerate(zip(direct, expanded)):
        assert_same(e, d, tol, tol, f"{op_type} output {i} (direct vs function body)")


_rng = np.random.default_rng(0)


def _f(*shape, dtype=np.float32):
    return _rng.standard_normal(shape).astype(dtype)


def _i64(*vals):
    return np.array(vals, dtype=np.int64)


# op -> list of (inputs, attrs, opset, n_outputs)
CASES = {
    "Celu": [([_f(3, 4)], {"alpha": 1.5}, None, 1)],
    "Elu": [([_f(3, 4)], {"alpha": 0.7}, None, 1)],
    "Gelu": [([_f(3, 4)], {}, None, 1), ([_f(5)], {"approximate": "tanh"}, None, 1)],
    "HardSigmoid": [([_f(3, 4)], {"alpha": 0.3, "beta": 0.4}, None, 1)],
    "HardSwish": [([_f(3, 4) * 4], {}, None, 1)],
    "LeakyRelu": [([_f(3, 4)], {"alpha": 0.2}, None, 1)],
    "Mish": [([_f(3, 4)], {}, None, 1)],
    "Relu": [([_f(3, 4)], {}, None, 1), ([_f(6).astype(np.int32)], {}, None, 1)],
    "Selu": [([_f(3, 4)], {}, None, 1)],
    "Shrink": [([_f(3, 4)], {"bias": 0.2, "lambd": 0.6}, None, 1)],
    "Softplus": [([_f(3, 4)], {}, None, 1)],
    "Softsign": [([_f(3, 4)], {}, None, 1)],
    "Swish": [([_f(3, 4)], {"alpha": 1.3}, None, 1)],
    "ThresholdedRelu": [([_f(3, 4)], {"alpha": 0.4}, None, 1)],
    "Softmax": [([_f(2, 3, 4)], {"axis": 1}, None, 1)],
    "LogSoftmax": [([_f(2, 3, 4)], {"axis": -1}, None, 1)],
    "ReduceL1": [([_f(2, 3, 4), _i64(1)], {}, None, 1)],
    "ReduceL2": [([_f(2, 3, 4), _i64(0, 2)], {"keepdims": 0}, None, 1)],
    "ReduceLogSum": [([np.abs(_f(2, 3, 4)), _i64(1)], {}, None, 1)],
    "ReduceLogSumExp": [([_f(2, 3, 4), _i64(-1)], {}, None, 1)],
    "ReduceSumSquare": [([_f(2, 3, 4)], {"keepdims": 0}, None, 1)],
    "MeanVarianceNormalization": [([_f(2, 3, 4, 5)], {}, None, 1)],
    "PRelu": [([_f(2, 3, 4), _f(3, 1)], {}, None, 1)],
    "GreaterOrEqual": [([_f(3, 4), _f(4)], {}, None, 1)],
    "LessOrEqual": [([_f(3, 4), _f(3, 1)], {}, None, 1)],
    "CastLike": [([_f(3, 4), np.zeros(1, np.float64)], {}, None, 1)],
    "LayerNormalization": [([_f(2, 3, 4), _f(4), _f(4)], {"axis": -1}, None, 3)],
    "GroupNormalization": [([_f(2, 4, 3), _f(4), _f(4)], {"num_groups": 2}, None, 1)],
    "RMSNormalization": [([_f(2, 3, 4), _f(4)], {"axis": -1}, None, 1)],
    "Clip": [([_f(3, 4), np.float32(-0.5), np.float32(0.7)], {}, None, 1)],
    "Range": [([np.float32(1), np.float32(7.5), np.float32(1.5)], {}, None, 1)],
    "BlackmanWindow": [([np.int64(10)], {}, None, 1)],
    "HammingWindow": [([np.int64(9)], {"periodic": 0}, None, 1)],
    "HannWindow": [([np.int64(8)], {"output_datatype": 11}, None, 1)],
    "DepthToSpace": [([_f(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}, None, 1)],
    "SpaceToDepth": [([_f(1, 2, 4, 6)], {"blocksize": 2}, None, 1)],
    "CenterCropPad": [([_f(5, 4, 3), _i64(3, 6)], {"axes": [0, 1]}, None, 1)],
    "AffineGrid": [([_f(2, 2, 3), _i64(2, 3, 4, 5)], {"align_corners": 1}, None, 1)],
    "DynamicQuantizeLinear": [([_f(3, 4)], {}, None, 3)],
    "NegativeLogLikelihoodLoss": [
        ([_f(4, 5), _i64(0, 3, 4, 1), np.abs(_f(5))], {"reduction": "mean"}, None, 1)
    ],
    "SoftmaxCrossEntropyLoss": [([_f(4, 5, 2), _rng.integers(0, 5, (4, 2))], {}, None, 2)],
}

#: Function ops with a direct kernel that no case here compares, with the reason.
NOT_COMPARED = {
    "Bernoulli": "random: the direct kernel and the body draw different samples",
    "SequenceMap": "its body is a Loop over the sequences; covered by test_sequence.py",
    "Attention": "test_attention.py",
    "RotaryEmbedding": "test_attention.py",
    "SwiGLU": "test_attention.py",
    "LinearAttention": "test_attention.py",
    "CausalConvWithState": "test_attention.py",
    "FlexAttention": "test_attention.py",
}


@pytest.mark.parametrize(
    "op, case",
    [(op, i) for op, cases in CASES.items() for i in range(len(cases))],
    ids=lambda v: str(v),
)
def test_direct_kernel_matches_function_body(op, case):
    inputs, attrs, opset, n_out = CASES[op][case]
    compare_with_body(op, inputs, attrs, opset=opset, n_outputs=n_out, tol=1e-5)


def test_every_function_op_with_a_direct_kernel_is_compared():
    from ort_cpu.kernels import registry

    with_kernel = set()
    for s in onnx.defs.get_all_schemas_with_history():
        if s.deprecated or not (s.has_function or s.has_context_dependent_function):
            continue
        if s.domain in ("", "ai.onnx.preview") and registry.lookup(
            s.domain, s.name, s.since_version
        ):
            with_kernel.add(s.name)
    uncovered = with_kernel - set(CASES) - set(NOT_COMPARED)
    assert not uncovered, f"function ops with a direct kernel but no comparison: {uncovered}"
