"""Host logic: which hand-built nodes Core ML takes, the reason for each it refuses (as
`ort-core inspect` shows it), and partitions as few and large as possible."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_coreml.provider import CoreMLExecutionProvider

from ort_core.ir import model_from_proto
from ort_core.provider import GraphView
from tests.conftest import make_model, tensor

from .harness import COREML, CPU, placement, session

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
F, I64, D = TensorProto.FLOAT, TensorProto.INT64, TensorProto.DOUBLE


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


W = _init("W", np.ones((4, 3, 3, 3), np.float32))
CASES = [
    # (id, node, inputs, outputs, initializers, options, expected reason fragment or None)
    ("relu", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, [1, 3])],
     [tensor("y", F, [1, 3])], [], {}, None),
    ("rank 6", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, [1] * 6)],
     [tensor("y", F, [1] * 6)], [], {}, "rank 6; Core ML takes rank 5 at most"),
    ("zero dim", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, [0, 3])],
     [tensor("y", F, [0, 3])], [], {}, "zero-sized dimension"),
    ("huge dim", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, [1, 16385])],
     [tensor("y", F, [1, 16385])], [], {}, "16385 > 16384"),
    ("dynamic ok", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, ["N", 3])],
     [tensor("y", F, ["N", 3])], [], {}, None),
    ("dynamic static-only", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, ["N", 3])],
     [tensor("y", F, ["N", 3])], [], {"RequireStaticInputShapes": "1"},
     "dynamic shape ['N', 3] and RequireStaticInputShapes=1"),
    ("unknown rank", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", F, None)],
     [tensor("y", F, None)], [], {}, "unknown rank"),
    ("double", helper.make_node("Relu", ["x"], ["y"]), [tensor("x", D, [2])],
     [tensor("y", D, [2])], [], {}, "float64"),
    ("int Div", helper.make_node("Div", ["a", "b"], ["y"]),
     [tensor("a", I64, [2]), tensor("b", I64, [2])], [tensor("y", I64, [2])], [], {},
     "Div on int64 is not converted"),
    ("no builder", helper.make_node("Mod", ["a", "b"], ["y"]),
     [tensor("a", F, [2]), tensor("b", F, [2])], [tensor("y", F, [2])], [], {},
     "no builder for Mod"),
    ("conv const weight", helper.make_node("Conv", ["x", "W"], ["y"]),
     [tensor("x", F, [1, 3, 8, 8])], [tensor("y", F, [1, 4, 6, 6])], [W], {}, None),
    ("conv input weight", helper.make_node("Conv", ["x", "w"], ["y"]),
     [tensor("x", F, [1, 3, 8, 8]), tensor("w", F, [4, 3, 3, 3])],
     [tensor("y", F, [1, 4, 6, 6])], [], {}, "input 1 ('w') of Conv must be a constant"),
    ("conv bad group", helper.make_node("Conv", ["x", "W"], ["y"], group=2),
     [tensor("x", F, [1, 3, 8, 8])], [tensor("y", F, None)], [W], {}, "group 2"),
    ("maxpool indices", helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2]),
     [tensor("x", F, [1, 1, 4, 4])], [tensor("y", F, [1, 1, 3, 3]), tensor("i", I64, [1, 1, 3, 3])],
     [], {}, "Indices output"),
    ("pool dilations", helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2],
                                        dilations=[2, 2]),
     [tensor("x", F, [1, 1, 4, 4])], [tensor("y", F, None)], [], {}, "no dilations"),
    ("reshape input shape", helper.make_node("Reshape", ["x", "s"], ["y"]),
     [tensor("x", F, [2, 3]), tensor("s", I64, [1])], [tensor("y", F, [6])], [], {},
     "must be a constant"),
    ("reshape const shape", helper.make_node("Reshape", ["x", "S"], ["y"]),
     [tensor("x", F, [2, 3])], [tensor("y", F, [6])], [_init("S", np.array([6]))], {}, None),
    ("argmax last", helper.make_node("ArgMax", ["x"], ["y"], select_last_index=1),
     [tensor("x", F, [2, 3])], [tensor("y", I64, [1, 3])], [], {}, "select_last_index=1"),
    ("pad reflect axis 0", helper.make_node("Pad", ["x", "P"], ["y"], mode="reflect"),
     [tensor("x", F, [4, 4, 4])], [tensor("y", F, None)],
     [_init("P", np.array([1, 0, 0, 1, 0, 0]))], {}, "other than the last two axes"),
    ("pad reflect last two", helper.make_node("Pad", ["x", "P"], ["y"], mode="reflect"),
     [tensor("x", F, [4, 4, 4])], [tensor("y", F, None)],
     [_init("P", np.array([0, 1, 1, 0, 1, 1]))], {}, None),
    ("cast to double", helper.make_node("Cast", ["x"], ["y"], to=D),
     [tensor("x", F, [2])], [tensor("y", D, [2])], [], {}, "float64"),
    ("dropout training", helper.make_node("Dropout", ["x", "r", "T"], ["y"]),
     [tensor("x", F, [2]), tensor("r", F, [])], [tensor("y", F, [2])],
     [_init("T", np.array(True))], {}, "training mode"),
    ("bn training", helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                     training_mode=1),
     [tensor("x", F, [1, 2, 3])], [tensor("y", F, [1, 2, 3])],
     [_init(n, np.ones(2, np.float32)) for n in "sbmv"], {}, "training mode"),
    ("gelu opset 20", helper.make_node("Gelu", ["x"], ["y"], approximate="tanh"),
     [tensor("x", F, [2])], [tensor("y", F, [2])], [], {"opset": 20}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    "node, inputs, outputs, inits, options, expected",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_capability_table(node, inputs, outputs, inits, options, expected):
    options = dict(options)
    opset = options.pop("opset", 17)
    reason = _decide(node, inputs, outputs, inits, opset, options)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason


def _decide(node, inputs, outputs, inits, opset, options):
    model = make_model([node], inputs, outputs, inits, opset=opset)
    m = model_from_proto(model)
    view = GraphView(m.graph, m.opset_imports)
    claims = CoreMLExecutionProvider(options).get_capability(view)
    if claims:
        return None
    (reasons,) = view.reasons.values()
    return reasons[0].split(": ", 1)[1]


def _chain(middle_op="Relu"):
    """x -> Relu -> Sigmoid -> <middle> -> Tanh -> Relu -> y (middle: Mod is not converted)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r0"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="s0"),
        helper.make_node(middle_op, ["b", "b"] if middle_op == "Mod" else ["b"], ["c"],
                         name="mid", **({"fmod": 1} if middle_op == "Mod" else {})),
        helper.make_node("Tanh", ["c"], ["d"], name="t0"),
        helper.make_node("Relu", ["d"], ["y"], name="r1"),
    ]  # fmt: skip
    return make_model(nodes, [tensor("x", F, [2, 3])], [tensor("y", F, [2, 3])])


def test_supported_chain_is_one_partition(reference):
    sess = session(_chain())
    assert len(sess.placements) == 1 and placement(sess) == {COREML: 5}


def test_refused_node_splits_into_two_partitions_and_says_why(reference):
    sess = session(_chain("Mod"))
    assert [p.ep_name for p in sess.placements] == [COREML, CPU, COREML]
    assert placement(sess) == {COREML: 4, CPU: 1}
    (why,) = [v for k, v in sess.placement_reasons.items() if "mid" in k]
    assert any("CoreMLExecutionProvider: Core ML has no builder for Mod" in r for r in why)
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    b = 1 / (1 + np.exp(-np.maximum(x, 0)))
    want = np.maximum(np.tanh(np.fmod(b, b)), 0)
    np.testing.assert_allclose(session(_chain("Mod")).run(None, {"x": x})[0], want, atol=1e-6)


def test_inspect_shows_the_reason(reference, tmp_path, capsys):
    from ort_core.cli import main

    path = tmp_path / "chain.onnx"
    path.write_bytes(_chain("Mod").SerializeToString())
    assert main(["inspect", str(path), "--providers", "coreml,cpu"]) == 0
    out = capsys.readouterr().out
    assert "CoreMLExecutionProvider: Core ML has no builder for Mod" in out


def test_control_flow_bodies_need_enable_on_subgraphs(reference):
    body = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["z"], name="inner")], "then", [], [tensor("z", F, [2])]
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["z2"], name="inner2")], "else", [], [tensor("z2", F, [2])]
    )
    model = make_model(
        [helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=other, name="if")],
        [tensor("c", TensorProto.BOOL, []), tensor("x", F, [2])],
        [tensor("y", F, [2])],
    )
    x = np.array([-1, 2], np.float32)

    def body_providers(sess):  # the core reports placements of the main graph only
        (if_node,) = sess._model.graph.nodes
        return sorted(n.provider for g in if_node.subgraphs.values() for n in g.nodes)

    off = session(model)
    assert body_providers(off) == [CPU, CPU]
    on = session(model, {"EnableOnSubgraphs": "1"})
    assert body_providers(on) == [COREML, COREML]  # Relu and Neg, each body's own partition
    np.testing.assert_array_equal(on.run(None, {"c": np.array(True), "x": x})[0], [0, 2])
    np.testing.assert_array_equal(on.run(None, {"c": np.array(False), "x": x})[0], [1, -2])
