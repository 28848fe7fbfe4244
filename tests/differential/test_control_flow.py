"""If, Loop and Scan against onnx's ReferenceEvaluator: outer-scope values, nested subgraphs, scan
axes and directions."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.differential.harness import assert_same, run_cpu, run_reference

F = TensorProto.FLOAT


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, opset=17):
    m = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    m.ir_version = 8
    return m


def compare(m, feed, rtol=1e-5, atol=1e-6):
    expected = run_reference(m, feed)
    got = run_cpu(m, feed)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"output {i}")


@pytest.mark.parametrize("cond", [True, False])
@pytest.mark.parametrize("opset", [11, 13, 16, 21])
def test_if_reads_outer_scope(cond, opset):
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["t"])], "then", [], [vi("t", shape=[3])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", shape=[3])]
    )
    m = model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        [vi("c", TensorProto.BOOL, []), vi("x", shape=[3]), vi("k", shape=[3])],
        [vi("y", shape=[3])],
        opset,
    )
    rng = np.random.default_rng(0)
    compare(
        m,
        {
            "c": np.array(cond),
            "x": rng.standard_normal(3).astype(np.float32),
            "k": rng.standard_normal(3).astype(np.float32),
        },
    )


def test_nested_if_inside_if():
    inner_then = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["a"])], "it", [], [vi("a", shape=[2])]
    )
    inner_else = helper.make_graph(
        [helper.make_node("Sub", ["x", "x"], ["b"])], "ie", [], [vi("b", shape=[2])]
    )
    outer_then = helper.make_graph(
        [helper.make_node("If", ["c2"], ["o"], then_branch=inner_then, else_branch=inner_else)],
        "ot",
        [],
        [vi("o", shape=[2])],
    )
    outer_else = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["p"])], "oe", [], [vi("p", shape=[2])]
    )
    m = model(
        [helper.make_node("If", ["c1"], ["y"], then_branch=outer_then, else_branch=outer_else)],
        [vi("c1", TensorProto.BOOL, []), vi("c2", TensorProto.BOOL, []), vi("x", shape=[2])],
        [vi("y", shape=[2])],
    )
    for c1 in (True, False):
        for c2 in (True, False):
            compare(
                m, {"c1": np.array(c1), "c2": np.array(c2), "x": np.array([1.5, -2.0], np.float32)}
            )


@pytest.mark.parametrize("trips", [0, 1, 5])
def test_loop_carried_and_scan_outputs(trips):
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc", "w"], ["acc_out"]),
            helper.make_node("Cast", ["i"], ["i_f"], to=F),
            helper.make_node("Mul", ["acc_out", "i_f"], ["scan"]),
            helper.make_node("Less", ["i", "limit"], ["cond_out"]),
        ],
        "body",
        [vi("i", TensorProto.INT64, []), vi("cond", TensorProto.BOOL, []), vi("acc", shape=[2])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", shape=[2]), vi("scan", shape=[2])],
    )
    m = model(
        [helper.make_node("Loop", ["M", "c", "x"], ["final", "scans"], body=body)],
        [
            vi("M", TensorProto.INT64, []),
            vi("c", TensorProto.BOOL, []),
            vi("x", shape=[2]),
            vi("w", shape=[2]),
            vi("limit", TensorProto.INT64, []),
        ],
        [vi("final", shape=[2]), vi("scans", shape=None)],
    )
    feed = {
        "M": np.array(trips, np.int64),
        "c": np.array(True),
        "x": np.array([1.0, 2.0], np.float32),
        "w": np.array([0.5, -1.0], np.float32),
        "limit": np.array(3, np.int64),
    }
    if trips == 0:
        got = run_cpu(m, feed)  # the reference cannot stack zero scan outputs
        np.testing.assert_array_equal(got[0], feed["x"])
        # (0, *the body's declared scan shape), as onnxruntime gives
        assert got[1].shape == (0, 2) and got[1].dtype == np.float32
    else:
        compare(m, feed)


@pytest.mark.parametrize("directions", [(0, 0), (1, 0), (0, 1)])
@pytest.mark.parametrize("axes", [(0, 0), (1, 1)])
def test_scan_axes_and_directions(directions, axes):
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s", "a"], ["s_out"]),
            helper.make_node("Mul", ["s_out", "b"], ["y"]),
        ],
        "body",
        [vi("s", shape=[2]), vi("a", shape=[2]), vi("b", shape=[2])],
        [vi("s_out", shape=[2]), vi("y", shape=[2])],
    )
    m = model(
        [
            helper.make_node(
                "Scan",
                ["s0", "A", "B"],
                ["s_final", "Y"],
                body=body,
                num_scan_inputs=2,
                scan_input_axes=list(axes),
                scan_input_directions=list(directions),
                scan_output_directions=[directions[1]],
            )
        ],
        [vi("s0", shape=[2]), vi("A", shape=None), vi("B", shape=None)],
        [vi("s_final", shape=[2]), vi("Y", shape=None)],
    )
    rng = np.random.default_rng(3)
    shape = (4, 2) if axes[0] == 0 else (2, 4)
    feed = {
        "s0": np.zeros(2, np.float32),
        "A": rng.standard_normal(shape).astype(np.float32),
        "B": rng.standard_normal(shape).astype(np.float32),
    }
    if axes == (0, 0) and directions == (0, 0):
        compare(m, feed)
        return
    # the reference evaluator implements only axis 0 and forward directions: check with numpy
    a, b = (np.moveaxis(feed[k], axes[0], 0) for k in "AB")
    if directions[0]:
        a = a[::-1]
    if directions[1]:
        b = b[::-1]
    s, ys = np.zeros(2, np.float32), []
    for t in range(4):
        s = s + a[t]
        ys.append(s * b[t])
    ys = np.stack(ys[::-1] if directions[1] else ys)
    got_s, got_y = run_cpu(m, feed)
    np.testing.assert_allclose(got_s, s, rtol=1e-6)
    np.testing.assert_allclose(got_y, ys, rtol=1e-6)


def test_loop_inside_scan_reads_outer_values():
    loop_body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Add", ["v", "bias"], ["v_out"]),
        ],
        "lb",
        [vi("i", TensorProto.INT64, []), vi("c", TensorProto.BOOL, []), vi("v", shape=[2])],
        [vi("c_out", TensorProto.BOOL, []), vi("v_out", shape=[2])],
    )
    scan_body = helper.make_graph(
        [
            helper.make_node("Loop", ["n", "", "x"], ["z"], body=loop_body),
            helper.make_node("Add", ["st", "z"], ["st_out"]),
        ],
        "sb",
        [vi("st", shape=[2]), vi("x", shape=[2])],
        [vi("st_out", shape=[2])],
    )
    m = model(
        [helper.make_node("Scan", ["s0", "X"], ["s"], body=scan_body, num_scan_inputs=1)],
        [
            vi("s0", shape=[2]),
            vi("X", shape=[3, 2]),
            vi("n", TensorProto.INT64, []),
            vi("bias", shape=[2]),
        ],
        [vi("s", shape=[2])],
    )
    feed = {
        "s0": np.zeros(2, np.float32),
        "X": np.arange(6, dtype=np.float32).reshape(3, 2),
        "n": np.array(2, np.int64),
        "bias": np.array([1.0, 10.0], np.float32),
    }
    # expected: each row x -> x + 2*bias, summed over rows
    (s,) = run_cpu(m, feed)
    np.testing.assert_allclose(s, feed["X"].sum(0) + 3 * 2 * feed["bias"])
