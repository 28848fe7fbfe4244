"""Type and shape inference cannot crash the process; malformed nodes are typed errors.

Some of onnx's inference functions dereference an input type onnx does not know and kill the
process with a segmentation fault (``tools/find_inference_crashers.py`` finds them; the guard is in
``ort_core/ir/_infer.py``). A regression here would kill the pytest worker, so every load that
could crash runs in a subprocess first: a crash is then a failing test with the signal's name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort_core
from ort_core import errors
from ort_core.ir import load_model
from ort_core.ir._infer import CRASH_ON_UNTYPED_INPUT, RULES, plan
from tests.conftest import make_model, tensor

ort = pytest.importorskip("onnxruntime")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ML = "ai.onnx.ml"


def _load_all_in_subprocess(paths: list[str], session: bool = False, invalid=()) -> None:
    """Load each model file with ort-core in a fresh interpreter; fail with the model that killed
    it (and the signal) if one does. Models in ``invalid`` must raise InvalidGraph instead."""
    load = (
        "ort_core.InferenceSession(p, providers=['CPUExecutionProvider'])"
        if session
        else "load_model(p)"
    )
    code = textwrap.dedent(
        f"""
        import sys, json
        import ort_core
        from ort_core.ir import load_model
        paths, invalid = json.loads(sys.argv[1])
        for p in paths:
            print(p, flush=True)
            try:
                {load}
            except ort_core.errors.InvalidGraph:
                if p not in invalid:
                    raise
                continue
            if p in invalid:
                sys.exit(p + " loaded but is invalid")
        print("DONE", flush=True)
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps([paths, list(invalid)])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    lines = r.stdout.split()
    if r.returncode < 0:
        name = signal.Signals(-r.returncode).name
        pytest.fail(f"loading {lines[-1] if lines else '?'} killed the process with {name}")
    assert r.returncode == 0, f"loading {lines[-1] if lines else '?'} failed:\n{r.stderr[-3000:]}"
    assert lines[-1] == "DONE"


def _save(model: onnx.ModelProto, path) -> str:
    path = str(path)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


# -- the reported model: skl2onnx's decision_path ---------------------------------------------------


def _decision_path_model(kind: str) -> tuple[onnx.ModelProto, np.ndarray]:
    pytest.importorskip("sklearn")
    to_onnx = pytest.importorskip("skl2onnx").to_onnx
    from sklearn import datasets, ensemble, tree

    x, y = datasets.load_iris(return_X_y=True)
    x = x.astype(np.float32)
    options: dict = {"decision_path": True}
    if kind == "classifier":
        model = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
        options["zipmap"] = False  # skl2onnx refuses decision_path together with ZipMap
    elif kind == "forest":
        model = ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
        model.fit(x, y)
        options["zipmap"] = False
    else:
        model = tree.DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, y)
    onx = to_onnx(model, x[:1], options={id(model): options}, target_opset={"": 17, ML: 5})
    return onx, x


def _at_ml_opset(onx: onnx.ModelProto, version: int) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(onx)
    for o in m.opset_import:
        if o.domain == ML:
            o.version = version
    return m


#: skl2onnx's decision_path of classifiers gives each leaf three identical weights and relies on
#: onnxruntime's TreeEnsembleRegressor reading only the first one when n_targets is 1 (the reference
#: evaluator sums them); ort-core's CPU kernel reads them as onnxruntime does.
DECISION_PATH = ["classifier", "regressor", "forest"]


@pytest.fixture(scope="module")
def decision_path_files(tmp_path_factory):
    """(kind, variant) -> (model file, input): the model as skl2onnx writes it (ai.onnx.ml opset 2:
    TreeEnsembleRegressor-1, which onnx does not infer, feeds a LabelEncoder) and the same model
    importing ai.onnx.ml opset 5 (deprecated tree ensembles, LabelEncoder-4). All proven to load
    in one subprocess first."""
    folder = tmp_path_factory.mktemp("decision_path")
    files = {}
    for kind in DECISION_PATH:
        onx, x = _decision_path_model(kind)
        assert {o.domain: o.version for o in onx.opset_import}[ML] < 3
        files[kind, "skl2onnx"] = (_save(onx, folder / f"{kind}.onnx"), x)
        files[kind, "ml5"] = (_save(_at_ml_opset(onx, 5), folder / f"{kind}_ml5.onnx"), x)
    _load_all_in_subprocess([path for path, _ in files.values()], session=True)
    return files


@pytest.mark.parametrize("kind", DECISION_PATH)
def test_decision_path_model_loads_and_matches_onnxruntime(kind, decision_path_files):
    path, x = decision_path_files[kind, "skl2onnx"]
    sess = ort_core.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [(o.name, o.type) for o in sess.get_outputs()] == [
        (o.name, o.type) for o in ref.get_outputs()
    ]
    names = [o.name for o in ref.get_outputs()]
    got = dict(zip(names, sess.run(None, {"X": x})))
    want = dict(zip(names, ref.run(None, {"X": x})))
    for name in names:
        if name == "decision_path":
            continue  # strings: compared exactly below
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    assert got["decision_path"].shape == want["decision_path"].shape
    assert got["decision_path"].dtype == want["decision_path"].dtype == object
    np.testing.assert_array_equal(got["decision_path"], want["decision_path"])


@pytest.mark.parametrize("kind", DECISION_PATH)
def test_decision_path_strings_match_onnxruntime(kind, decision_path_files):
    path, x = decision_path_files[kind, "skl2onnx"]
    got = ort_core.InferenceSession(path, providers=["cpu"]).run(["decision_path"], {"X": x})
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        ["decision_path"], {"X": x}
    )
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("kind", DECISION_PATH)
def test_decision_path_model_at_ml_opset_5(kind, decision_path_files):
    """onnxruntime refuses the deprecated tree ensembles of ai.onnx.ml opset 5 (InvalidGraph),
    ort-core runs them; onnx's inference crashes on this model as on the other."""
    path, x = decision_path_files[kind, "ml5"]
    with pytest.raises(Exception, match="deprecated"):
        ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = ort_core.InferenceSession(path, providers=["cpu"]).run(None, {"X": x})
    path2, _ = decision_path_files[kind, "skl2onnx"]
    want = ort_core.InferenceSession(path2, providers=["cpu"]).run(None, {"X": x})
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_decision_path_values_are_typed(decision_path_files):
    """The deprecated TreeEnsembleRegressor (no onnx inference) and the LabelEncoder hidden from
    onnx are typed by ort-core's rules, and onnx types the Reshape after them from those."""
    onx = onnx.load(decision_path_files["classifier", "skl2onnx"][0])
    p = plan(onx)
    assert sorted(n.op_type for _, n in p.hidden) == ["LabelEncoder", "TreeEnsembleRegressor"]
    graph = load_model(onx).graph
    types = {n: graph.type_of(n) for n in ("dpath", "spath", "decision_path")}
    assert types["dpath"].tensor_type.elem_type == TensorProto.FLOAT
    assert types["spath"].tensor_type.elem_type == TensorProto.STRING
    assert [d.dim_value for d in types["spath"].tensor_type.shape.dim][1:] == [1]
    assert types["decision_path"].tensor_type.elem_type == TensorProto.STRING


# -- every crasher class of the hunt ---------------------------------------------------------------


def _crasher_node(op: tuple[str, str], inputs: list[str], output: str = "y") -> onnx.NodeProto:
    """A node of a crashing op with attributes valid enough to reach the input it reads."""
    domain, op_type = op
    attrs: dict = {
        "LabelEncoder": {"keys_floats": [1.0, 2.0], "values_strings": ["a", "b"]},
        "DictVectorizer": {"string_vocabulary": ["a", "b", "c"]},
        "TreeEnsemble": {
            "n_targets": 1,
            "nodes_featureids": [0],
            "nodes_modes": helper.make_tensor("m", TensorProto.UINT8, [1], [0]),
            "nodes_splits": helper.make_tensor("s", TensorProto.FLOAT, [1], [0.5]),
            "nodes_truenodeids": [0],
            "nodes_falsenodeids": [0],
            "nodes_trueleafs": [1],
            "nodes_falseleafs": [1],
            "leaf_targetids": [0],
            "leaf_weights": helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0]),
            "tree_roots": [0],
        },
        "RegexFullMatch": {"pattern": "a+"},
        "EyeLike": {"dtype": TensorProto.INT32},
    }[op_type]
    return helper.make_node(
        op_type, inputs, [output], name=f"the_{op_type}", domain=domain, **attrs
    )


def _opsets():
    return [helper.make_opsetid("", 22), helper.make_opsetid(ML, 5), helper.make_opsetid("x.y", 1)]


def _model(nodes, inputs, outputs, functions=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    m = helper.make_model(graph, opset_imports=_opsets(), functions=list(functions))
    m.ir_version = 10
    return m


def _untyped(name: str) -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto()
    vi.name = name
    return vi


def _crasher_models(op) -> dict[str, onnx.ModelProto]:
    """The op fed an input onnx has no type for, in every way the hunt found to crash."""
    opaque = helper.make_node("Opaque", [], ["a"], domain="x.y")  # a custom op: untyped output
    out = [_untyped("y")]
    models = {
        "custom_op_input": _model([opaque, _crasher_node(op, ["a"])], [], out),
        "graph_input_without_type": _model([_crasher_node(op, ["a"])], [_untyped("a")], out),
        "empty_input_name": _model([_crasher_node(op, [""])], [], out),
    }
    if op[1] in ("LabelEncoder", "EyeLike"):  # ops with a numeric input: an initializer works
        init = helper.make_tensor("a", TensorProto.FLOAT, [1, 2], [1.0, 2.0])
        m = _model([_crasher_node(op, ["a"])], [_untyped("a")], out)  # IR < 4 style
        m.graph.initializer.append(init)
        models["initializer_listed_without_type"] = m
    branch = helper.make_graph([_crasher_node(op, ["a"], "b")], "branch", [], [_untyped("b")])
    models["inside_if_branch"] = _model(
        [opaque, helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
        [tensor("c", TensorProto.BOOL, [])],
        out,
    )
    body = [_crasher_node(op, ["fa"], "fb")]
    fn = helper.make_function("local", "F", ["fa"], ["fb"], body, _opsets())
    nested = helper.make_function(
        "local", "G", ["ga"], ["gb"], [helper.make_node("F", ["ga"], ["gb"], domain="local")],
        [*_opsets(), helper.make_opsetid("local", 1)],
    )  # fmt: skip
    call = helper.make_node("G", ["a"], ["y"], domain="local")
    m = _model([opaque, call], [], out, functions=[fn, nested])
    m.opset_import.append(helper.make_opsetid("local", 1))
    models["through_local_functions"] = m
    return models


@pytest.fixture(scope="module")
def crasher_files(tmp_path_factory):
    """op -> case -> (model, file): every op of the table in every crashing setting, all proven
    not to crash ort-core in one subprocess first."""
    folder = tmp_path_factory.mktemp("crashers")
    files, invalid = {}, []
    for op in sorted(CRASH_ON_UNTYPED_INPUT):
        files[op] = {}
        for case, m in _crasher_models(op).items():
            path = _save(m, folder / f"{op[1]}_{case}.onnx")
            files[op][case] = (m, path)
            if case == "empty_input_name":  # malformed: rejected before inference
                invalid.append(path)
    _load_all_in_subprocess(
        [p for cases in files.values() for _, p in cases.values()], invalid=invalid
    )
    return files


@pytest.mark.parametrize("op", sorted(CRASH_ON_UNTYPED_INPUT), ids="::".join)
def test_crashing_ops_with_untyped_inputs_load(op, crasher_files):
    for case, (m, _) in crasher_files[op].items():
        p = plan(m)
        if case == "through_local_functions":
            assert p.risky_functions == {("local", "F", ""), ("local", "G", "")}
            assert [n.op_type for _, n in p.hidden] == ["G"]
        elif case == "inside_if_branch":
            assert [n.op_type for _, n in p.hidden] == [op[1]] * 2  # then and else
        else:  # hidden from onnx even where the validation stops it first
            assert [n.op_type for _, n in p.hidden] == [op[1]], case
        if case == "empty_input_name":
            with pytest.raises(errors.InvalidGraph, match="required input 0"):
                load_model(m)
        else:
            load_model(m)  # proven safe by the fixture


def test_label_encoder_after_custom_op_is_typed_by_its_values(crasher_files):
    """Loaded in-process once the fixture proved this kind of model safe in a subprocess."""
    opaque = helper.make_node("Opaque", [], ["a"], domain="x.y")
    m = _model([opaque, _crasher_node((ML, "LabelEncoder"), ["a"], "s"),
                helper.make_node("Identity", ["s"], ["y"])], [], [_untyped("y")])  # fmt: skip
    graph = load_model(m).graph
    assert graph.type_of("s").tensor_type.elem_type == TensorProto.STRING
    assert graph.type_of("y").tensor_type.elem_type == TensorProto.STRING  # onnx, from ours


def test_crashing_op_with_declared_input_types_is_left_to_onnx():
    x = tensor("x", TensorProto.FLOAT, ["N", 2])
    m = _model([_crasher_node((ML, "LabelEncoder"), ["x"])], [x], [_untyped("y")])
    assert plan(m).hidden == []
    tp = load_model(m).graph.type_of("y")
    assert tp.tensor_type.elem_type == TensorProto.STRING
    assert [d.dim_param or d.dim_value for d in tp.tensor_type.shape.dim] == ["N", 2]


def test_outputs_onnx_leaves_untyped_get_the_rule_type():
    """TreeEnsembleClassifier-1's onnx inference types the labels only; the probabilities get
    ort-core's rule ([N, classes] float)."""
    tree = dict(nodes_nodeids=[0], nodes_treeids=[0], nodes_modes=["LEAF"], nodes_featureids=[0],
                nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0])  # fmt: skip
    node = helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["label", "proba"], domain=ML,
        classlabels_int64s=[0, 1, 2], class_ids=[0], class_nodeids=[0], class_treeids=[0],
        class_weights=[1.0], **tree,
    )  # fmt: skip
    m = make_model(
        [node, helper.make_node("Identity", ["proba"], ["y"])],
        [tensor("x", TensorProto.FLOAT, ["N", 4])],
        [_untyped("y")],
        extra_opsets=[helper.make_opsetid(ML, 1)],
    )
    graph = load_model(m).graph
    proba = graph.type_of("proba").tensor_type
    assert proba.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in proba.shape.dim] == ["N", 3]
    assert graph.type_of("label").tensor_type.elem_type == TensorProto.INT64


def _rule_cases():
    x = tensor("x", TensorProto.FLOAT, ["N", 4])
    s = tensor("x", TensorProto.STRING, ["N", 3])
    dv = onnx.ValueInfoProto()
    dv.name = "x"
    dv.type.map_type.key_type = TensorProto.STRING
    dv.type.map_type.value_type.tensor_type.elem_type = TensorProto.DOUBLE
    tree = dict(nodes_nodeids=[0], nodes_treeids=[0], nodes_modes=["LEAF"], nodes_featureids=[0],
                nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0])  # fmt: skip
    yield "label_encoder", 5, x, _crasher_node((ML, "LabelEncoder"), ["x"])
    yield (
        "label_encoder_v1",
        1,
        tensor("x", TensorProto.INT64, ["N"]),
        helper.make_node("LabelEncoder", ["x"], ["y"], domain=ML, classes_strings=["a", "b"]),
    )
    yield "dict_vectorizer", 5, dv, _crasher_node((ML, "DictVectorizer"), ["x"])
    yield "tree_ensemble", 5, x, _crasher_node((ML, "TreeEnsemble"), ["x"])
    yield "regex_full_match", 5, s, _crasher_node(("", "RegexFullMatch"), ["x"])
    yield "eye_like_dtype", 5, x, _crasher_node(("", "EyeLike"), ["x"])
    yield "eye_like", 5, x, helper.make_node("EyeLike", ["x"], ["y"])
    yield "tree_classifier", 3, x, helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["y", "z"], domain=ML, classlabels_strings=["a", "b", "c"],
        class_ids=[0], class_nodeids=[0], class_treeids=[0], class_weights=[1.0], **tree,
    )  # fmt: skip
    yield "tree_regressor", 3, x, helper.make_node(
        "TreeEnsembleRegressor", ["x"], ["y"], domain=ML, n_targets=2, target_ids=[0],
        target_nodeids=[0], target_treeids=[0], target_weights=[1.0], **tree,
    )  # fmt: skip


RULE_CASES = list(_rule_cases())


@pytest.mark.parametrize(("case", "ml", "x", "node"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_own_rules_agree_with_onnx_where_onnx_infers(case, ml, x, node):
    """On typed inputs (safe), onnx's inference and ort-core's rule give the same output types."""
    outs = [_untyped(o) for o in node.output]
    g = helper.make_graph([node], "g", [x], outs)
    opsets = [helper.make_opsetid("", 22 if ml == 5 else 17), helper.make_opsetid(ML, ml)]
    m = helper.make_model(g, opset_imports=opsets)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=False)
    want = [vi.type for vi in inferred.graph.output]
    got = RULES[(node.domain, node.op_type)](node, [x.type])
    assert len(got) == len(want), case
    for g, w in zip(got, want):
        assert g.tensor_type.elem_type == w.tensor_type.elem_type, case
        if w.tensor_type.HasField("shape"):  # onnx's shape, where it gives one (ours may add one)
            assert g.tensor_type.shape == w.tensor_type.shape, case


# -- malformed nodes: typed errors naming the node and the attribute -------------------------------


def _graph(name: str, nodes, inputs, outputs) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, inputs, outputs)


def _malformed_models():
    """(case, model, words the message must hold)."""
    x = tensor("x", TensorProto.FLOAT, [2, 3])
    y = tensor("y", TensorProto.FLOAT, None)
    c = tensor("c", TensorProto.BOOL, [])
    n = tensor("n", TensorProto.INT64, [])
    branch = _graph("branch", [helper.make_node("Relu", ["x"], ["b"])], [], [_untyped("b")])
    yield (
        "loop_without_body",
        make_model([helper.make_node("Loop", ["n", "c", "x"], ["y"], name="the_loop")],
                   [n, c, x], [y]),
        ["'the_loop'", "Loop", "'body'", "GRAPH", "opset 17", "ai.onnx"],
    )  # fmt: skip
    yield (
        "scan_without_body",
        make_model([helper.make_node("Scan", ["x"], ["y"], name="the_scan", num_scan_inputs=1)],
                   [x], [y]),
        ["'the_scan'", "Scan", "'body'"],
    )  # fmt: skip
    yield (
        "if_without_else",
        make_model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=branch)],
                   [c, x], [y]),
        ["'the_if'", "If", "'else_branch'"],
    )  # fmt: skip
    yield (
        "if_without_branches",
        make_model([helper.make_node("If", ["c"], ["y"], name="the_if")], [c], [y]),
        ["'the_if'", "If", "'else_branch'"],
    )
    yield (
        "graph_attribute_of_wrong_type",
        make_model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=branch,
                                     else_branch=3)], [c, x], [y]),
        ["'the_if'", "'else_branch'", "INT", "GRAPH"],
    )  # fmt: skip
    yield (
        "attribute_of_wrong_type",
        make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1.5)], [x], [y]),
        ["'sm'", "Softmax", "'axis'", "FLOAT", "INT"],
    )
    yield (
        "ints_given_as_int",
        make_model([helper.make_node("Transpose", ["x"], ["y"], name="tr", perm=1)], [x], [y]),
        ["'tr'", "Transpose", "'perm'", "INTS"],
    )
    untyped_attr = onnx.AttributeProto()
    untyped_attr.name = "axis"
    untyped_attr.i = 1
    node = helper.make_node("Softmax", ["x"], ["y"], name="sm")
    node.attribute.append(untyped_attr)
    yield "attribute_without_type", make_model([node], [x], [y]), ["'sm'", "'axis'", "type"]
    yield (
        "unknown_attribute",
        make_model([helper.make_node("Relu", ["x"], ["y"], name="r", foo=1)], [x], [y]),
        ["'r'", "Relu", "'foo'"],
    )
    yield (
        "too_many_inputs",
        make_model([helper.make_node("Relu", ["x", "x"], ["y"], name="r")], [x], [y]),
        ["'r'", "Relu", "2 inputs"],
    )
    yield (
        "too_few_inputs",
        make_model([helper.make_node("Add", ["x"], ["y"], name="a")], [x], [y]),
        ["'a'", "Add", "1 inputs"],
    )
    yield (
        "empty_required_input",
        make_model([helper.make_node("Add", ["x", ""], ["y"], name="a")], [x], [y]),
        ["'a'", "Add", "required input 1", "'B'"],
    )
    yield (
        "too_many_outputs",
        make_model([helper.make_node("Relu", ["x"], ["y", "z"], name="r")], [x], [y]),
        ["'r'", "Relu", "2 outputs"],
    )
    yield (
        "op_newer_than_the_opset",
        make_model([helper.make_node("Celu", ["x"], ["y"], name="c")], [x], [y], opset=11),
        ["'c'", "Celu", "opset 11", "opset 12"],
    )
    bad_branch = _graph(
        "bad_branch", [helper.make_node("Relu", ["x", "x"], ["b"], name="inner")], [],
        [_untyped("b")],
    )  # fmt: skip
    yield (
        "malformed_node_in_a_subgraph",
        make_model([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=bad_branch,
                                     else_branch=branch)], [c, x], [y]),
        ["'inner'", "Relu", "'bad_branch'"],
    )  # fmt: skip
    ml = helper.make_opsetid(ML, 3)
    yield (
        "ml_op_lacking_its_attribute",
        make_model([helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], name="tree",
                                     domain=ML, nodes_modes=3)], [x], [y], extra_opsets=[ml]),
        ["'tree'", "TreeEnsembleRegressor", "ai.onnx.ml", "'nodes_modes'", "STRINGS"],
    )  # fmt: skip


MALFORMED = list(_malformed_models())


@pytest.mark.parametrize(("case", "model", "words"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_node_is_invalid_graph_like_onnxruntime(case, model, words):
    data = model.SerializeToString()
    with pytest.raises(Exception) as ref:
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert type(ref.value).__name__ == "InvalidGraph", ref.value
    with pytest.raises(errors.InvalidGraph) as e:
        ort_core.InferenceSession(data, providers=["CPUExecutionProvider"])
    message = str(e.value)
    for word in words:
        assert word in message, (word, message)


def _malformed_beyond_schema():
    """(case, model, words, what onnxruntime does): malformed attributes the kernels used to trip
    on with ValueError/TypeError (found by ``find_inference_crashers.py --through session``)."""
    x = tensor("x", TensorProto.FLOAT, [2, 3])
    y = tensor("y", TensorProto.FLOAT, None)
    ref = onnx.AttributeProto()
    ref.name, ref.type, ref.ref_attr_name = "axis", onnx.AttributeProto.INT, "outer_axis"
    node = helper.make_node("Softmax", ["x"], ["y"], name="sm")
    node.attribute.append(ref)
    yield "attribute_reference_outside_a_function", make_model([node], [x], [y]), [
        "'sm'", "'axis'", "ref_attr_name", "function"
    ], None  # fmt: skip
    no_data = onnx.TensorProto()
    no_data.data_type = TensorProto.FLOAT
    no_data.dims.extend([2, 3])
    yield (
        "tensor_attribute_without_data",
        make_model([helper.make_node("Constant", [], ["y"], name="c", value=no_data)], [], [y]),
        ["'c'", "Constant", "'value'", "float_data", "6"],
        "InvalidArgument",
    )
    short = onnx.TensorProto()
    short.data_type, short.raw_data = TensorProto.FLOAT, b"1234"
    short.dims.extend([2, 3])
    yield (
        "tensor_attribute_with_short_raw_data",
        make_model([helper.make_node("Constant", [], ["y"], name="c", value=short)], [], [y]),
        ["'c'", "'value'", "raw_data", "24"],
        "Fail",
    )
    yield (
        "tensor_attribute_without_type",
        make_model([helper.make_node("Constant", [], ["y"], name="c", value=onnx.TensorProto())],
                   [], [y]),
        ["'c'", "'value'", "data type"],
        "Fail",
    )  # fmt: skip


BEYOND_SCHEMA = list(_malformed_beyond_schema())


@pytest.mark.parametrize(
    ("case", "model", "words", "ort_error"), BEYOND_SCHEMA, ids=[c[0] for c in BEYOND_SCHEMA]
)
def test_malformed_attribute_is_invalid_graph(case, model, words, ort_error):
    """ort-core says InvalidGraph where onnxruntime says Fail or InvalidArgument, or (for an
    attribute reference outside a function) loads the model and ignores the attribute."""
    data = model.SerializeToString()
    if ort_error is None:
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    else:
        with pytest.raises(Exception) as ref:
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        assert type(ref.value).__name__ == ort_error, ref.value
    with pytest.raises(errors.InvalidGraph) as e:
        ort_core.InferenceSession(data, providers=["CPUExecutionProvider"])
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_malformed_models_cannot_crash(tmp_path):
    """The same models in a subprocess, to be sure that none would take pytest down if the check
    before inference regressed (each raises InvalidGraph, checked above)."""
    cases = [c[:2] for c in MALFORMED] + [c[:2] for c in BEYOND_SCHEMA]
    paths = [_save(m, tmp_path / f"{case}.onnx") for case, m in cases]
    code = textwrap.dedent(
        """
        import sys, json, ort_core
        for p in json.loads(sys.argv[1]):
            try:
                ort_core.InferenceSession(p, providers=["CPUExecutionProvider"])
            except ort_core.errors.InvalidGraph:
                continue
            sys.exit(f"{p} loaded")
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_loop_without_body_is_no_bare_key_error():
    """The kernel used to look the body up in a dict and raise ``KeyError: 'body'``."""
    x = tensor("x", TensorProto.FLOAT, [2])
    m = make_model(
        [helper.make_node("Loop", ["n", "", "x"], ["y"], name="loop")],
        [tensor("n", TensorProto.INT64, []), x],
        [tensor("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(errors.InvalidGraph, match="'body'"):
        ort_core.InferenceSession(m.SerializeToString(), providers=["cpu"])


def test_ops_without_onnx_schema_are_not_validated():
    """Contrib and custom-domain ops are their provider's business, whatever their attributes."""
    x = tensor("x", TensorProto.FLOAT, [2, 3])
    m = make_model(
        [
            helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft", anything=3),
            helper.make_node("Foo", ["g", "g", "g"], ["y", "z"], domain="my.ops", bar="b"),
        ],
        [x],
        [tensor("y", TensorProto.FLOAT, None)],
        extra_opsets=[helper.make_opsetid("com.microsoft", 1), helper.make_opsetid("my.ops", 1)],
    )
    model = load_model(m)
    assert [n.op_type for n in model.graph.nodes] == ["Gelu", "Foo"]


def test_optional_inputs_and_outputs_may_be_empty():
    x = tensor("x", TensorProto.FLOAT, [2, 3])
    m = make_model(
        [
            helper.make_node("Clip", ["x", "", "hi"], ["c"], name="clip"),
            helper.make_node("Dropout", ["c"], ["y", ""], name="drop"),
        ],
        [x, tensor("hi", TensorProto.FLOAT, [])],
        [tensor("y", TensorProto.FLOAT, [2, 3])],
    )
    sess = ort_core.InferenceSession(m.SerializeToString(), providers=["cpu"])
    feed = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "hi": np.array(3, np.float32)}
    np.testing.assert_array_equal(sess.run(None, feed)[0], np.minimum(feed["x"], 3))


# -- the hunt, through ort-core --------------------------------------------------------------------


def test_hunter_finds_no_crash_through_ort_core():
    """The hunt's probes of the crashing ops, loaded through ort-core: nothing crashes, and every
    error is one of ort_core.errors. (The full hunt over every schema takes about half a minute:
    ``python tools/find_inference_crashers.py --through ort-core``.)"""
    if not hasattr(os, "fork"):
        pytest.skip("the hunter forks its probe processes (POSIX only)")
    ops = ",".join(sorted({op for _, op in CRASH_ON_UNTYPED_INPUT} | {"Loop", "If", "Scan"}))
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "find_inference_crashers.py"),
         "--through", "ort-core", "--jobs", "2", "--ops", ops],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " 0 findings" in r.stdout, r.stdout
