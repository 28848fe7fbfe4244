"""GeluFusion: erf, tanh and sigmoid GELU formulas become Gelu/BiasGelu, FastGelu, QuickGelu."""

import math

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import gelu_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, assert_same_run, fused_ops

RNG = np.random.default_rng(0)


def c(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


CONSTS = [c("sqrt2", math.sqrt(2)), c("one", 1.0), c("half", 0.5), c("k", 0.044715),
          c("s", math.sqrt(2 / math.pi)), c("three", 3.0), c("alpha", 1.702),
          c("bias", RNG.standard_normal(8))]  # fmt: skip

ERF = [
    helper.make_node("Add", ["x0", "bias"], ["x"]),
    helper.make_node("Div", ["x", "sqrt2"], ["d"]),
    helper.make_node("Erf", ["d"], ["e"]),
    helper.make_node("Add", ["e", "one"], ["e1"]),
    helper.make_node("Mul", ["x", "e1"], ["m"]),
    helper.make_node("Mul", ["m", "half"], ["y"]),
]
TANH = [
    helper.make_node("Mul", ["x0", "half"], ["h"]),
    helper.make_node("Pow", ["x0", "three"], ["p"]),
    helper.make_node("Mul", ["p", "k"], ["pk"]),
    helper.make_node("Add", ["x0", "pk"], ["inner"]),
    helper.make_node("Mul", ["inner", "s"], ["si"]),
    helper.make_node("Tanh", ["si"], ["t"]),
    helper.make_node("Add", ["t", "one"], ["t1"]),
    helper.make_node("Mul", ["h", "t1"], ["y"]),
]
QUICK = [
    helper.make_node("Mul", ["x0", "alpha"], ["ax"]),
    helper.make_node("Sigmoid", ["ax"], ["sg"]),
    helper.make_node("Mul", ["x0", "sg"], ["y"]),
]


@pytest.mark.parametrize(
    "nodes,expected", [(ERF, "BiasGelu"), (TANH, "FastGelu"), (QUICK, "QuickGelu")]
)
def test_gelu_forms(nodes, expected):
    m = make_model(nodes, [tensor("x0", shape=[2, 8])], [tensor("y")], CONSTS)
    model, changed, fused = apply_on_cpu(gelu_fusion.PASS, m)
    assert changed and fused_ops(model) == [expected]
    assert_same_run(m, fused, {"x0": 3 * RNG.standard_normal((2, 8)).astype(np.float32)})


def test_intermediate_read_elsewhere_blocks_fusion():
    m = make_model(ERF, [tensor("x0", shape=[2, 8])], [tensor("y"), tensor("e")], CONSTS)
    _, changed, _ = apply_on_cpu(gelu_fusion.PASS, m)
    assert not changed
