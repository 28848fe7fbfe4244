"""Issue 14, points 2 and 6: the session pipeline is a straight line (every graph, control-flow
bodies included, is partitioned before provider-scoped passes run and before any kernel is
built), and claims and passes are held to their word (refused claims are recorded, a pass's
``providers`` restriction holds, pass names are unique, generated names are stable)."""

from __future__ import annotations

import math
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core.errors import PluginError
from ort_core.hookspecs import hookimpl
from ort_core.ir import load_model
from ort_core.partitioner import function_body, partition_model
from ort_core.plugins import get_plugin_manager
from ort_core.provider import Claim, KernelProvider, KernelRegistry
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import FusingProvider


def _consts(dtype=np.float32):
    return [
        numpy_helper.from_array(np.asarray(v, dtype), n)
        for n, v in (("sqrt2", math.sqrt(2)), ("one", 1.0), ("half", 0.5))
    ]


def _gelu_nodes(x: str, y: str, p: str) -> list[onnx.NodeProto]:
    """The erf form of GELU on ``x`` (5 nodes), names prefixed with ``p``."""
    return [
        helper.make_node("Div", [x, "sqrt2"], [p + "d"]),
        helper.make_node("Erf", [p + "d"], [p + "e"]),
        helper.make_node("Add", [p + "e", "one"], [p + "e1"]),
        helper.make_node("Mul", [x, p + "e1"], [p + "m"]),
        helper.make_node("Mul", [p + "m", "half"], [y]),
    ]


def gelu_in_if_model() -> onnx.ModelProto:
    """``y = If(c, then: gelu(x) reading x and the constants from the outer scope, else: x)``,
    and the same pattern at top level on ``x`` giving ``z``."""
    f = TensorProto.FLOAT
    then = helper.make_graph(
        _gelu_nodes("x", "t_out", "t_"),
        "then",
        [],
        [helper.make_tensor_value_info("t_out", f, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("e_out", f, None)],
    )
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if"),
        *_gelu_nodes("x", "z", "top_"),
    ]
    return make_model(
        nodes,
        [tensor("x", shape=[2, 8]), tensor("c", TensorProto.BOOL, shape=[])],
        [tensor("y", shape=[2, 8]), tensor("z", shape=[2, 8])],
        _consts(),
    )


def _saved_ops(sess_model: onnx.ModelProto, tmp_path) -> tuple[list[str], list[str]]:
    path = str(tmp_path / "opt.onnx")
    so = ort.SessionOptions()
    so.optimized_model_filepath = path
    ort.InferenceSession(sess_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    saved = onnx.load(path)
    top = [n.op_type for n in saved.graph.node]
    if_node = next(n for n in saved.graph.node if n.op_type == "If")
    then = next(a.g for a in if_node.attribute if a.name == "then_branch")
    return top, [n.op_type for n in then.node]


def test_gelu_fuses_inside_an_if_branch_as_at_top_level(tmp_path):
    model = gelu_in_if_model()
    top, then = _saved_ops(model, tmp_path)
    assert "Gelu" in top and "Erf" not in top, top
    assert then == ["Gelu"], then  # before issue 14 the branch kept its 5 nodes
    # and the fused model computes what onnxruntime computes on the original
    import onnxruntime

    x = np.linspace(-3, 3, 16, dtype=np.float32).reshape(2, 8)
    ref = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    ours = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for c in (True, False):
        feed = {"x": x, "c": np.array(c)}
        for got, want in zip(ours.run(None, feed), ref.run(None, feed)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_every_graph_is_partitioned_before_any_kernel_is_built(register_provider):
    """The provider sees the If body in get_capability before create_kernel is ever called: no
    partitioning happens while kernels are built."""
    events: list[str] = []
    reg = KernelRegistry("RecordingExecutionProvider")
    for op in ("Div", "Erf", "Add", "Mul", "Identity"):
        reg.kernel(op, since=1)(lambda *a, _op=op: None)

    class Recording(KernelProvider):
        name = "RecordingExecutionProvider"
        aliases = ("recording",)
        registry = reg

        def get_capability(self, view):
            events.append("capability:" + view.graph.name)
            return super().get_capability(view)

        def create_kernel(self, info):
            events.append("kernel:" + info.node.op_type)
            return super().create_kernel(info)

    register_provider(Recording)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ort.InferenceSession(gelu_in_if_model().SerializeToString(), so, providers=["recording", "cpu"])
    first_kernel = next(i for i, e in enumerate(events) if e.startswith("kernel:"))
    capabilities = [e for e in events if e.startswith("capability:")]
    assert {"capability:then", "capability:else"} <= set(capabilities), events
    assert all(not e.startswith("capability:") for e in events[first_kernel:]), events


def test_plan_prepare_does_not_partition():
    """prepare() builds kernels from partitions it is given; a graph nobody partitioned is a
    typed error (a pass created it after partitioning), not a silent second partitioning."""
    from ort_core.errors import EPFail
    from ort_core.partitioner import ModelPartition
    from ort_core.plan import prepare

    model = load_model(gelu_in_if_model())
    cpu = get_plugin_manager().resolve("cpu").cls({})
    with pytest.raises(EPFail, match="was not partitioned"):
        prepare(model, model.graph, [cpu], ModelPartition())


# -- point 6: claims ------------------------------------------------------------------------
def _two_branch_model() -> onnx.ModelProto:
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="a"),
            helper.make_node("Exp", ["a"], ["u"], name="u"),
            helper.make_node("Add", ["a", "u"], ["y"], name="c"),
        ],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )


class NonConvexProvider(FusingProvider):
    """Claims {a, c} (not convex: a -> u -> c) as one fused subgraph."""

    name = "NonConvexExecutionProvider"
    aliases = ("nonconvex",)

    def get_capability(self, view):
        chosen = [n for n in view.nodes if n.name in ("a", "c")]
        return [Claim.fused_group(chosen)] if len(chosen) == 2 else []


class GreedyProvider(FusingProvider):
    """Claims every node it supports, one fused claim each, also nodes a provider before it
    took."""

    name = "GreedyExecutionProvider"
    aliases = ("greedy",)

    def get_capability(self, view):
        ok = [n for n in view.graph.nodes if n.op_type in self.supported_ops]
        return [Claim.fused_group([n]) for n in ok]


def test_refused_claims_are_recorded_with_their_reason_and_shown_by_inspect(
    register_provider, tmp_path
):
    from tests.unit.providers_for_tests import AddOnlyProvider

    register_provider(NonConvexProvider, GreedyProvider, AddOnlyProvider)
    x = np.array([-1.0, 2.0], np.float32)
    sess = ort.InferenceSession(_two_branch_model().SerializeToString(), providers=["nonconvex"])
    assert len(sess.refused_claims) == 1
    assert "NonConvexExecutionProvider" in sess.refused_claims[0]
    assert "not convex" in sess.refused_claims[0] and "[a, c]" in sess.refused_claims[0]
    want = np.maximum(x, 0) + np.exp(np.maximum(x, 0))
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-6)

    both = ort.InferenceSession(
        _two_branch_model().SerializeToString(), providers=["addonly", "greedy"]
    )
    assert both.refused_claims == [
        "GreedyExecutionProvider: fused claim of 1 node(s) [c] refused: node 'c' (Add) is already taken by "
        "AddOnlyExecutionProvider"
    ], both.refused_claims

    path = tmp_path / "m.onnx"
    onnx.save(_two_branch_model(), path)
    import contextlib
    import io

    from ort_core.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["inspect", str(path), "--providers", "nonconvex"]) == 0
    assert "claims the core refused:" in out.getvalue()
    assert "not convex" in out.getvalue()


def test_fused_and_expanded_names_are_the_same_in_every_session(register_provider):
    register_provider(FusingProvider)
    proto = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="a"),
            helper.make_node("Exp", ["a"], ["u"], name="u"),
            helper.make_node("Sigmoid", ["u"], ["y"], name="s"),
        ],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    cpu = get_plugin_manager().resolve("cpu").cls({})
    fusing = FusingProvider({})
    names = []
    for _ in range(3):
        model = load_model(proto)
        parts = partition_model(model, [fusing, cpu])
        names.append(sorted(sub.name for _, sub in parts.of(model.graph).fused.values()))
    assert names[0] == ["Fusing_subgraph_0", "Fusing_subgraph_1"]
    assert names[0] == names[1] == names[2]


def test_expanded_function_names_are_stable_and_distinct():
    """Two unnamed calls of one function in a model expand to distinct names, and the same
    ones in every session (no process-wide counter)."""
    fn = helper.make_function(
        "custom", "Twice", ["a"], ["out"], [helper.make_node("Add", ["a", "a"], ["out"])],
        [helper.make_opsetid("", 17)],
    )  # fmt: skip
    proto = make_model(
        [
            helper.make_node("Twice", ["x"], ["t"], domain="custom"),
            helper.make_node("Twice", ["t"], ["y"], domain="custom"),
        ],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3])],
        extra_opsets=[helper.make_opsetid("custom", 1)],
        functions=[fn],
    )
    runs = []
    for _ in range(2):
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["cpu"])
        runs.append([n.name for s in sess.placements for n in s.get_nodes()])
        x = np.arange(3, dtype=np.float32)
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 4 * x)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 2, runs[0]


def test_function_body_does_not_mutate_the_model_opsets():
    fn = helper.make_function(
        "custom", "AddOne", ["a"], ["out"],
        [helper.make_node("Add", ["a", "a"], ["out"]), ],
        [helper.make_opsetid("", 17), helper.make_opsetid("other.domain", 3)],
    )  # fmt: skip
    proto = make_model(
        [helper.make_node("AddOne", ["x"], ["y"], domain="custom")],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3])],
        extra_opsets=[helper.make_opsetid("custom", 1)],
        functions=[fn],
    )
    model = load_model(proto)
    before = dict(model.opset_imports)
    body = function_body(model.graph.nodes[0], model.opset_imports, model.functions)
    assert body is not None and [n.op_type for n in body] == ["Add"]
    assert model.opset_imports == before


# -- point 6: passes ------------------------------------------------------------------------
class CountingPass:
    level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    in_place = True

    def __init__(self, name, providers=None):
        self.name = name
        self.providers = providers
        self.calls = 0
        self.declines: list = []

    def __call__(self, model, ctx):
        self.calls += 1
        for _, n in model.graph.walk():
            self.declines.append(ctx.declines(model, model.graph, n))
        return False


def _pass_plugin(*passes):
    class Plugin:
        @hookimpl
        def ort_register_passes(self, register):
            for p in passes:
                register(p)

    return Plugin()


@pytest.fixture
def plugins():
    pm = get_plugin_manager()
    added: list[str] = []

    def add(name, *passes):
        pm.add_plugin(_pass_plugin(*passes), name, f"{name}-dist")
        added.append(name)

    yield add
    for n in added:
        if pm.pm.has_plugin(n):
            pm.remove_plugin(n)


def test_a_pass_restricted_to_providers_runs_only_for_them(plugins):
    elsewhere = CountingPass("only_elsewhere", providers=("NoSuchExecutionProvider",))
    on_cpu = CountingPass("only_cpu", providers=("CPUExecutionProvider",))
    plugins("restricted_passes", elsewhere, on_cpu)
    ort.InferenceSession(_two_branch_model().SerializeToString(), providers=["cpu"])
    assert elsewhere.calls == 0
    assert on_cpu.calls >= 1 and all(d is None for d in on_cpu.declines)
    assert len(get_plugin_manager().passes) >= 2


def test_a_pass_sees_nodes_of_other_providers_as_declined(plugins, register_provider):
    """A pass restricted to one provider is told that nodes of the others are not its to
    rewrite (ctx.declines gives a limit, ctx.provider_supports says no)."""
    register_provider(NonConvexProvider)
    other = CountingPass("only_nonconvex", providers=("NonConvexExecutionProvider",))
    plugins("restricted_other", other)
    ort.InferenceSession(_two_branch_model().SerializeToString(), providers=["nonconvex", "cpu"])
    assert other.calls >= 1
    assert other.declines and all(d is not None and d.kind == "limit" for d in other.declines)
    assert "restricted to NonConvexExecutionProvider" in other.declines[0].reason


def test_two_passes_with_one_name_are_an_error_naming_both_plugins(plugins):
    plugins("first_plugin", CountingPass("same_name"))
    with pytest.raises(PluginError) as e:
        plugins("second_plugin", CountingPass("same_name"))
    msg = str(e.value)
    assert "'same_name'" in msg and "first_plugin" in msg and "second_plugin" in msg
    assert "first_plugin-dist" in msg and "second_plugin-dist" in msg


def test_a_plugin_pass_may_not_take_a_builtin_name(plugins):
    plugins("shadowing_plugin", CountingPass("GeluFusion"))
    with pytest.raises(PluginError, match="shadowing_plugin.*built-in"):
        ort.InferenceSession(_two_branch_model().SerializeToString(), providers=["cpu"])


def test_removing_a_plugin_forgets_its_passes(plugins):
    plugins("transient_plugin", CountingPass("transient_pass"))
    pm = get_plugin_manager()
    assert "transient_pass" in pm.pass_owner
    pm.remove_plugin("transient_plugin")
    assert "transient_pass" not in pm.pass_owner
    assert all(p.name != "transient_pass" for p in pm.passes)


def _core_import_graph() -> dict[str, set[str]]:
    """ort_core module -> the ort_core modules it imports, anywhere in the file (imports inside
    functions too: a lazy import only hides a circle), except under ``if TYPE_CHECKING:``."""
    import ast
    from pathlib import Path

    root = Path(ort.__file__).parent
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = ["ort_core", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        skip = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for b in node.body
            for n in ast.walk(b)
        }
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
                # `from pkg import submodule` imports the submodule (and runs pkg's __init__,
                # which is not an import of pkg's API by this module)
                targets = subs if len(subs) == len(node.names) else [mod, *subs]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def test_core_has_no_import_circle():
    """Point 7: no module of ort_core imports, directly or through others, a module that
    imports it back."""
    graph = _core_import_graph()
    assert "ort_core.session" in graph and "ort_core.provider.base" in graph
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    # the package itself imports its public API; nothing may import the package back
    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_import_circle_check_finds_a_circle(monkeypatch):
    """The check above can fail: a circle put into the graph is reported."""
    graph = _core_import_graph()
    graph["ort_core.options"] = graph["ort_core.options"] | {"ort_core.session"}
    monkeypatch.setattr(sys.modules[__name__], "_core_import_graph", lambda: graph)
    with pytest.raises(AssertionError, match="import circle"):
        test_core_has_no_import_circle()
