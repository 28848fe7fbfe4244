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


def test_no_fusion_onto_a_kernel_that_declines_the_fused_node(register_provider):
    """Issue 14, point 1: a float16 GELU pattern on a provider whose com.microsoft Gelu takes float32
    only stays unfused (the pass asks the provider's decline() with the fused node's types), and
    the session runs; a float32 one on the same provider fuses."""
    import ort_core as ort
    from ort_core.provider import KernelProvider, KernelRegistry

    reg = KernelRegistry("Float32GeluExecutionProvider")
    f16 = np.dtype(np.float16)
    f32 = np.dtype(np.float32)
    for op, fn in (("Div", np.divide), ("Add", np.add), ("Mul", np.multiply)):
        reg.kernel(op, since=7, dtypes={0: {f16, f32}})(lambda a, b, _f=fn: _f(a, b))
    reg.kernel("Erf", since=9, dtypes={f16, f32})(
        lambda x: np.asarray([math.erf(v) for v in x.reshape(-1)], x.dtype).reshape(x.shape)
    )

    @reg.kernel("Gelu", domain="com.microsoft", dtypes={f32})
    def gelu(x):
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))).astype(x.dtype)

    class Float32GeluProvider(KernelProvider):
        name = "Float32GeluExecutionProvider"
        aliases = ("f32gelu",)
        registry = reg

    register_provider(Float32GeluProvider)
    for dtype, fused in ((np.float16, False), (np.float32, True)):
        consts = [numpy_helper.from_array(np.asarray(v, dtype), n) for n, v in
                  (("sqrt2", math.sqrt(2)), ("one", 1.0), ("half", 0.5))]  # fmt: skip
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        nodes = ERF[1:]
        nodes = (
            [helper.make_node("Div", ["x0", "sqrt2"], ["d"])]
            + nodes[1:3]
            + [
                helper.make_node("Mul", ["x0", "e1"], ["m"]),
                nodes[4],
            ]
        )
        m = make_model(
            nodes,
            [helper.make_tensor_value_info("x0", elem, [2, 8])],
            [helper.make_tensor_value_info("y", elem, [2, 8])],
            consts,
        )
        so = ort.SessionOptions()
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["f32gelu"])
        ops = [n.op_type for s in sess.placements for n in s.get_nodes()]
        assert ("Gelu" in ops) is fused, (dtype, ops)
        x = np.linspace(-3, 3, 16, dtype=dtype).reshape(2, 8)
        want = 0.5 * x * (1 + np.vectorize(math.erf)(x.astype(np.float64) / math.sqrt(2)))
        got = sess.run(None, {"x0": x})[0]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
