import numpy as np
import pytest
from onnx import helper

import ort_core as ort
from ort_core.errors import NotImplemented as OrtNotImplemented
from ort_core.ir import model_from_proto
from ort_core.partitioner import is_convex
from ort_core.provider import convex_clusters
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import AddOnlyProvider, FusingProvider


def chain_model():
    # x -> Relu -> Add(+x) -> Exp -> Mul(*x) -> Sigmoid -> y
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Add", ["a", "x"], ["b"], name="add"),
            helper.make_node("Exp", ["b"], ["c"], name="exp"),
            helper.make_node("Mul", ["c", "x"], ["d"], name="mul"),
            helper.make_node("Sigmoid", ["d"], ["y"], name="sigmoid"),
        ],
        [tensor("x", shape=[2, 3])],
        [tensor("y", shape=[2, 3])],
    )


def expected(x):
    a = np.maximum(x, 0)
    return 1 / (1 + np.exp(-(np.exp(a + x) * x)))


def placements(sess):
    return {n.name: sub.ep_name for sub in sess.placements for n in sub.get_nodes()}


def test_priority_order_and_cpu_fallback(register_provider):
    register_provider(AddOnlyProvider)
    sess = ort.InferenceSession(
        chain_model().SerializeToString(), providers=["AddOnlyExecutionProvider"]
    )
    assert sess.get_providers() == ["AddOnlyExecutionProvider", "CPUExecutionProvider"]
    p = placements(sess)
    assert p == {
        "relu": "CPUExecutionProvider",
        "add": "AddOnlyExecutionProvider",
        "exp": "CPUExecutionProvider",
        "mul": "AddOnlyExecutionProvider",
        "sigmoid": "CPUExecutionProvider",
    }
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected(x), rtol=1e-6)
    # CPU first: it claims everything it can, AddOnly gets nothing
    sess = ort.InferenceSession(
        chain_model().SerializeToString(), providers=["CPUExecutionProvider", "addonly"]
    )
    assert set(placements(sess).values()) == {"CPUExecutionProvider"}


def test_disable_cpu_fallback_raises_not_implemented(register_provider):
    register_provider(AddOnlyProvider)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(OrtNotImplemented) as e:
        ort.InferenceSession(chain_model().SerializeToString(), so, providers=["addonly"])
    msg = str(e.value)
    for part in ("relu", "Relu", "opset 17", "AddOnlyExecutionProvider", "no kernel"):
        assert part in msg


def test_fused_claims_are_convex_and_run(register_provider):
    register_provider(FusingProvider)
    sess = ort.InferenceSession(chain_model().SerializeToString(), providers=["fusing"])
    info = sess.placements
    fused = [s for s in info if s.ep_name == "FusingExecutionProvider"]
    # Exp is unsupported, so {relu, add} and {mul, sigmoid} are two clusters (one would be a cycle)
    assert sorted(sorted(n.name for n in s.get_nodes()) for s in fused) == [
        ["add", "relu"],
        ["mul", "sigmoid"],
    ]
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected(x), rtol=1e-6)


def test_convex_clusters_never_build_a_cycle():
    # a -> U -> c, and a -> c directly: a and c cannot be fused without U
    m = model_from_proto(
        make_model(
            [
                helper.make_node("Relu", ["x"], ["a"], name="a"),
                helper.make_node("Exp", ["a"], ["u"], name="u"),
                helper.make_node("Add", ["a", "u"], ["c"], name="c"),
                helper.make_node("Relu", ["x"], ["d"], name="d"),
                helper.make_node("Add", ["d", "c"], ["y"], name="e"),
            ],
            [tensor("x", shape=[2])],
            [tensor("y", shape=[2])],
        )
    )
    g = m.graph
    sup = [n for n in g.nodes if n.name != "u"]
    clusters = convex_clusters(g, sup)
    for c in clusters:
        assert is_convex(g, c), [n.name for n in c]
    names = sorted(sorted(n.name for n in c) for c in clusters)
    assert ["a", "d"] in names or ["a"] in names
    assert not any({"a", "c"} <= set(c) for c in names)
    assert sum(len(c) for c in clusters) == 4
    assert not is_convex(g, [g.nodes[0], g.nodes[2]])


def test_function_op_nobody_claims_is_expanded(register_provider):
    # Provider knows Add/Mul only; a model-local function "AddMul" built from them is expanded.
    fn = helper.make_function(
        "custom",
        "AddMul",
        ["a", "b"],
        ["out"],
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "b"], ["out"])],
        [helper.make_opsetid("", 17)],
    )
    model = make_model(
        [helper.make_node("AddMul", ["x", "y"], ["z"], domain="custom", name="call")],
        [tensor("x", shape=[3]), tensor("y", shape=[3])],
        [tensor("z", shape=[3])],
        extra_opsets=[helper.make_opsetid("custom", 1)],
        functions=[fn],
    )
    register_provider(AddOnlyProvider)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["addonly"])
    ops = [n.op_type for s in sess.placements for n in s.get_nodes()]
    assert ops == ["Add", "Mul"]
    x, y = np.arange(3, dtype=np.float32), np.full(3, 2, np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "y": y})[0], (x + y) * y)


def _addmul_model(shape):
    fn = helper.make_function(
        "custom",
        "AddMul",
        ["a", "b"],
        ["out"],
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "b"], ["out"])],
        [helper.make_opsetid("", 17)],
    )
    return make_model(
        [helper.make_node("AddMul", ["x", "y"], ["z"], domain="custom", name="call")],
        [tensor("x", shape=shape), tensor("y", shape=shape)],
        [tensor("z", shape=shape)],
        extra_opsets=[helper.make_opsetid("custom", 1)],
        functions=[fn],
    )


@pytest.mark.parametrize("kind", ["limit", "check"])
def test_a_limit_falls_back_to_the_function_body_and_a_check_is_an_error(register_provider, kind):
    # One predicate, two kinds: a kernel's ``limit`` (rank > 1 here) sends the node on to its
    # function body on the same provider; a ``check`` says the node is invalid and stops the load.
    from ort_core.provider import KernelRegistry

    reg = KernelRegistry("RankOneExecutionProvider")
    reg.kernel("Add", since=7)(np.add)
    reg.kernel("Mul", since=7)(np.multiply)

    def rank_one(info):
        return None if len(info.input_shape(0) or ()) <= 1 else "AddMul here takes rank <= 1"

    @reg.kernel("AddMul", since=1, domain="custom", **{kind: rank_one})
    def addmul(a, b):
        return (a + b) * b

    class RankOne(AddOnlyProvider):
        name = "RankOneExecutionProvider"
        aliases = ("rankone",)
        registry = reg

    register_provider(RankOne)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    x, y = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    if kind == "check":
        with pytest.raises(Exception, match="AddMul here takes rank <= 1"):
            ort.InferenceSession(
                _addmul_model([2, 3]).SerializeToString(), so, providers=["rankone"]
            )
        return
    sess = ort.InferenceSession(
        _addmul_model([2, 3]).SerializeToString(), so, providers=["rankone"]
    )
    assert [n.op_type for s in sess.placements for n in s.get_nodes()] == ["Add", "Mul"]
    np.testing.assert_array_equal(sess.run(None, {"x": x, "y": y})[0], (x + y) * y)
    sess = ort.InferenceSession(_addmul_model([3]).SerializeToString(), so, providers=["rankone"])
    assert [n.op_type for s in sess.placements for n in s.get_nodes()] == ["AddMul"]


def test_standard_function_op_expanded_when_unclaimed(register_provider):
    # CPU without a Softsign-like kernel is simulated by a provider that has only primitive ops:
    # MeanVarianceNormalization is defined as a function of ReduceMean/Sub/Mul/Sqrt/Div...
    model = make_model(
        [helper.make_node("MeanVarianceNormalization", ["x"], ["y"], name="mvn")],
        [tensor("x", shape=[2, 3, 2, 2])],
        [tensor("y", shape=[2, 3, 2, 2])],
        opset=13,
    )
    from ort_core.ir import load_model
    from ort_core.plan import build_plan
    from ort_core.plugins import get_plugin_manager

    cpu = get_plugin_manager().resolve("cpu").cls({})
    m = load_model(model)

    # pretend the CPU provider has no MVN kernel by rejecting it in a wrapper provider
    class NoMVN(type(cpu)):
        def get_capability(self, view):
            return [
                c
                for c in super().get_capability(view)
                if c.nodes[0].op_type != "MeanVarianceNormalization"
            ]

    plan = build_plan(m, m.graph, [NoMVN({})])
    assert plan.partition.expanded and "mvn" in plan.partition.expanded[0]
    assert all(s.node.op_type != "MeanVarianceNormalization" for s in plan.steps)
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2)).astype(np.float32)
    from tests.conftest import reference_outputs

    np.testing.assert_allclose(
        plan.run([x])[0], reference_outputs(model, {"x": x})[0], rtol=1e-4, atol=1e-5
    )


def test_copies_between_memories_are_inserted_and_counted(register_provider):
    from onnx import numpy_helper

    from tests.unit.providers_for_tests import FakeDeviceProvider

    register_provider(FakeDeviceProvider)
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32), "w")
    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "shape")
    model = make_model(
        [
            helper.make_node("Add", ["x", "w"], ["a"], name="add"),  # device (w copied once)
            helper.make_node("Reshape", ["a", "shape"], ["r"], name="reshape"),  # shape stays host
            helper.make_node("Relu", ["r"], ["y"], name="relu"),  # CPU: copy back to host
        ],
        [tensor("x", shape=[6])],
        [tensor("y", shape=[2, 3])],
        [w, shape],
    )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["fakedev"])
    assert placements(sess) == {
        "add": "FakeDeviceExecutionProvider",
        "reshape": "FakeDeviceExecutionProvider",
        "relu": "CPUExecutionProvider",
    }
    assert sess.copy_count == 2  # x to the device, r back to the host; w was copied at build time
    FakeDeviceProvider.uploads = 0
    x = np.linspace(-3, 3, 6).astype(np.float32)
    for _ in range(3):
        (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x + np.arange(6), 0).reshape(2, 3))
    assert FakeDeviceProvider.uploads == 3  # one upload per run: x only


def test_omitted_outputs_do_not_leak_into_omitted_inputs():
    # MaxPool computes indices nobody asked for (its optional second output omitted with "");
    # Clip's omitted min input must stay None
    from onnx import numpy_helper

    model = make_model(
        [
            helper.make_node("MaxPool", ["x"], ["vals", ""], name="pool", kernel_shape=[2]),
            helper.make_node("Clip", ["vals", "", "hi"], ["y"], name="clip"),
        ],
        [tensor("x", shape=[1, 1, 5])],
        [tensor("y", shape=[1, 1, 4])],
        [numpy_helper.from_array(np.float32(4.0), "hi")],
    )
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["cpu"])
    (y,) = sess.run(None, {"x": np.array([[[1, 9, -3, 2, 7]]], np.float32)})
    np.testing.assert_array_equal(y, [[[4, 4, 2, 4]]])


def test_overridable_initializer_default_is_uploaded_once(register_provider):
    from onnx import numpy_helper

    from tests.unit.providers_for_tests import FakeDeviceProvider

    register_provider(FakeDeviceProvider)
    w = numpy_helper.from_array(np.ones(3, np.float32), "w")
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [tensor("x", shape=[3]), tensor("w", shape=[3])],  # w is also a graph input: overridable
        [tensor("y", shape=[3])],
        [w],
    )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["fakedev"])
    x = np.arange(3, dtype=np.float32)
    sess.run(None, {"x": x})
    FakeDeviceProvider.uploads = 0
    for _ in range(3):
        (y,) = sess.run(None, {"x": x})
    assert FakeDeviceProvider.uploads == 3  # x each run; the default w was uploaded once, before
    (y,) = sess.run(None, {"x": x, "w": np.full(3, 2, np.float32)})
    np.testing.assert_array_equal(y, x + 2)


def test_a_provider_whose_get_capability_raises_does_not_take_the_session_down(
    register_provider, mlp_model
):
    """A provider bug (here a KeyError, as the OpenVINO provider once raised on an unordered
    graph) leaves its nodes to the next providers with a warning; strict mode makes it EPFail."""
    from ort_core.provider import ExecutionProvider

    class BrokenProvider(ExecutionProvider):
        name = "BrokenExecutionProvider"
        aliases = ("broken",)

        def get_capability(self, view):
            raise KeyError(12345)

    register_provider(BrokenProvider)
    model = mlp_model.SerializeToString()
    with pytest.warns(RuntimeWarning, match="BrokenExecutionProvider.*KeyError"):
        sess = ort.InferenceSession(model, providers=["broken", "cpu"])
    assert {s.ep_name for s in sess.placements} == {"CPUExecutionProvider"}
    assert any("get_capability failed" in r for rs in sess.placement_reasons.values() for r in rs)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.strict_providers", "1")
    with pytest.raises(ort.errors.EPFail, match="get_capability failed"):
        ort.InferenceSession(model, so, providers=["broken", "cpu"])
