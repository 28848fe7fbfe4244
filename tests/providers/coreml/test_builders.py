"""Translation: builder edge cases the backend suite does not reach, each a small model run on
[Core ML (MIL reference runtime)] alone and compared with the CPU provider: the ONNX semantics a
builder re-expresses with other MIL ops (numpy's 1-D MatMul, opset-11 Softmax's 2-D view, a
transposed convolution reaching past its kernels, negative Gather indices fed at run time) and the
values Core ML cannot carry across a model's inputs and outputs (rank 0, bool, int64)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from tests.conftest import make_model, tensor

from .harness import COREML, CPU, placement, session

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.usefixtures("reference"),
]
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
RNG = np.random.default_rng(7)


def _same_as_cpu(model, feed, atol=1e-5):
    sess = session(model, fallback=False)
    assert placement(sess) == {COREML: len(model.graph.node)}
    got = sess.run(None, feed)
    want = ort.InferenceSession(model.SerializeToString(), providers=[CPU]).run(None, feed)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol)


def test_conv_transpose_output_past_the_kernels_holds_the_bias():
    w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = np.array([1, 2, 3], np.float32)
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], strides=[2, 2],
                            output_shape=[10, 8])  # fmt: skip
    model = make_model([node], [tensor("x", shape=[1, 2, 3, 3])], [tensor("y", shape=None)],
                       [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])  # fmt: skip
    _same_as_cpu(model, {"x": RNG.standard_normal((1, 2, 3, 3)).astype(np.float32)})


@pytest.mark.parametrize("a, b", [((4,), (4, 3)), ((2, 3, 4), (4,)), ((4,), (4,))])
def test_matmul_one_dimensional_operands(a, b):
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       [tensor("a", shape=list(a)), tensor("b", shape=list(b))],
                       [tensor("y", shape=None)])  # fmt: skip
    feed = {"a": RNG.standard_normal(a).astype(np.float32),
            "b": RNG.standard_normal(b).astype(np.float32)}  # fmt: skip
    _same_as_cpu(model, feed)


def test_softmax_before_opset_13_sees_a_2d_input():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                       [tensor("x", shape=[2, 3, 4])], [tensor("y", shape=[2, 3, 4])],
                       opset=11)  # fmt: skip
    _same_as_cpu(model, {"x": RNG.standard_normal((2, 3, 4)).astype(np.float32)})


def test_gather_with_negative_indices_fed_at_run_time():
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                       [tensor("x", shape=[2, 5]), tensor("i", I64, [3])],
                       [tensor("y", shape=[2, 3])])  # fmt: skip
    feed = {"x": RNG.standard_normal((2, 5)).astype(np.float32), "i": np.array([-1, 0, -5])}
    _same_as_cpu(model, feed)


def test_scalar_bool_and_int64_across_the_model_boundary():
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),  # rank-0 float output
        helper.make_node("Greater", ["x", "t"], ["g"]),  # bool output
        helper.make_node("Not", ["m"], ["n"]),  # bool input and output
        helper.make_node("Add", ["k", "k"], ["k2"]),  # int64 in and out
        helper.make_node("Mul", ["x", "c"], ["xc"]),  # rank-0 input
    ]
    model = make_model(
        nodes,
        [tensor("x", shape=[2, 3]), tensor("t", shape=[3]), tensor("m", B, [4]),
         tensor("k", I64, [2]), tensor("c", shape=[])],
        [tensor("s", shape=[]), tensor("g", B, [2, 3]), tensor("n", B, [4]),
         tensor("k2", I64, [2]), tensor("xc", shape=[2, 3])],
    )  # fmt: skip
    feed = {
        "x": RNG.standard_normal((2, 3)).astype(np.float32),
        "t": np.zeros(3, np.float32),
        "m": np.array([True, False, True, True]),
        "k": np.array([7, -(2**30)], np.int64),
        "c": np.array(2.5, np.float32),
    }
    _same_as_cpu(model, feed)


@pytest.mark.parametrize("constants", [True, False])
def test_where_with_the_condition_wider_than_both_branches(constants):
    """MIL's select shapes its output after the branches alone; ONNX broadcasts the condition
    too (the expanded NLLLoss with ignore_index selects scalars by a (N, d) mask)."""
    if constants:
        inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in
                 (("a", 0.0), ("b", 1.0))]  # fmt: skip
        inputs = [tensor("c", B, [3, 2])]
        feed = {}
    else:
        inits = []
        inputs = [tensor("c", B, [3, 2]), tensor("a", shape=[2]), tensor("b", shape=[1])]
        feed = {"a": np.array([5.0, -1.0], np.float32), "b": np.array([2.5], np.float32)}
    model = make_model([helper.make_node("Where", ["c", "a", "b"], ["y"])], inputs,
                       [tensor("y", shape=[3, 2])], inits)  # fmt: skip
    feed["c"] = np.array([[True, False], [False, False], [True, True]])
    _same_as_cpu(model, feed)


def test_trilu_and_gather_elements_with_negative_indices_fed_at_run_time():
    nodes = [
        helper.make_node("GatherElements", ["x", "i"], ["g"], axis=1),
        helper.make_node("Trilu", ["g", "k"], ["y"], upper=0),
    ]
    model = make_model(nodes, [tensor("x", shape=[3, 4]), tensor("i", I64, [3, 4])],
                       [tensor("y", shape=[3, 4])],
                       [numpy_helper.from_array(np.array(1, np.int64), "k")], opset=14)  # fmt: skip
    feed = {"x": RNG.standard_normal((3, 4)).astype(np.float32),
            "i": RNG.integers(-4, 4, (3, 4)).astype(np.int64)}  # fmt: skip
    _same_as_cpu(model, feed)
