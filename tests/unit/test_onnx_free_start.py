"""A session in a process that has not imported onnx: the stand-in module, the schema table and the
type cache (``ort_core/_onnx.py``, ``ort_core/ir/_schema_table.py``, ``ort_core/ir/_type_cache.py``).

Host logic: the helpers against onnx's own on the same values, the table against onnx's registry for
every schema and opset, and child processes (which import numpy and ort_core only) that create
sessions twice against one cache folder: the second must not import onnx and must give the same
types and outputs as the first.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core import _onnx
from ort_core.ir import _schema_table

# -- helpers ---------------------------------------------------------------------------------------


def test_element_types_match_onnx():
    for name, elem in TensorProto.DataType.items():
        try:
            want = helper.tensor_dtype_to_np_dtype(elem)
        except Exception as e:  # noqa: BLE001 - the same exception class is the point
            want = type(e)
        try:
            got = _onnx.tensor_dtype_to_np_dtype(elem)
        except Exception as e:  # noqa: BLE001
            got = type(e)
        assert got == want, name


@pytest.mark.parametrize(
    "dtype",
    [np.float32, np.float64, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64]
    + [np.uint32, np.uint64, np.bool_, np.float16, np.complex64, np.complex128],
)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3)])
def test_to_array_matches_onnx(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    raw = numpy_helper.from_array(x, "x")
    typed = helper.make_tensor("x", raw.data_type, shape, x.flatten().tolist())
    for t in (raw, typed):
        want, got = numpy_helper.to_array(t), _onnx.to_array(t)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.uint8, np.bool_, object])
def test_from_array_matches_onnx(dtype):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    if dtype is object:
        x = x.astype(str).astype(object)
    for array in (x, np.asfortranarray(x), x[::2, 1::2], x[0, 0]):
        for name in (None, "x"):
            assert _onnx.from_array(np.asarray(array), name) == numpy_helper.from_array(
                np.asarray(array), name
            )


def test_to_array_strings_and_bfloat16_match_onnx():
    s = helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"bc"])
    assert list(_onnx.to_array(s)) == list(numpy_helper.to_array(s))
    assert _onnx.to_array(s).dtype == object
    b = helper.make_tensor("b", TensorProto.BFLOAT16, [2], [1.0, 2.0])  # left to onnx
    assert np.array_equal(_onnx.to_array(b), numpy_helper.to_array(b))


@pytest.mark.parametrize(
    "value",
    [1, 2.5, "abc", b"x", [1, 2], [1.5, 2], ["a", b"b"], (3, 4), True, [True], [True, 2], []]
    + [np.int64(3), np.float32(2.0), [np.int64(1)], {1: 2}, object()],
    ids=lambda v: type(v).__name__ if type(v) is object else repr(v),
)
def test_make_attribute_matches_onnx(value):
    def made(fn):
        try:
            return fn("a", value)
        except Exception as e:  # noqa: BLE001 - same class and message
            return type(e), str(e)

    assert made(_onnx.make_attribute) == made(helper.make_attribute)


def test_other_helpers_match_onnx():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [], [])
    t = helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0])
    assert _onnx.make_attribute("g", g) == helper.make_attribute("g", g)
    assert _onnx.make_attribute("t", t) == helper.make_attribute("t", t)
    for shape in (None, [], [1, "N", None]):
        assert _onnx.make_tensor_type_proto(1, shape) == helper.make_tensor_type_proto(1, shape)
        assert _onnx.make_tensor_value_info("v", 7, shape) == helper.make_tensor_value_info(
            "v", 7, shape
        )
    values = [1, 2.5, "s", [1], [1.5], ["x"], t, g, [g], [t]]
    for a in [helper.make_attribute("a", v) for v in values] + [onnx.AttributeProto(name="u")]:
        assert _onnx.get_attribute_value(a) == helper.get_attribute_value(a)
    assert _onnx.make_opsetid("d", 3) == helper.make_opsetid("d", 3)


def test_stand_in_classes_are_onnx_classes():
    assert _onnx.onnx.ModelProto is onnx.ModelProto
    assert _onnx.onnx.IR_VERSION == onnx.IR_VERSION
    assert _onnx.onnx.defs is onnx.defs  # anything else is the real module's


# -- the schema table ------------------------------------------------------------------------------


def test_schema_table_agrees_with_onnx_for_every_schema_and_opset():
    table = _schema_table._build()
    assert table["newest"] == onnx.defs.onnx_opset_version()
    ops = {
        key: list(zip(since, pickle.loads(blob), strict=True))
        for key, (since, blob) in table["ops"].items()
    }
    newest = {}
    for s in onnx.defs.get_all_schemas_with_history():
        newest[s.domain] = max(newest.get(s.domain, 1), s.since_version)
    checked = 0
    for (name, domain), entries in ops.items():
        since = [v for v, _ in entries]
        for version in range(1, newest[domain] + 2):
            try:
                s = onnx.defs.get_schema(name, max_inclusive_version=version, domain=domain)
                want = _schema_table.facts_of(s)
            except onnx.defs.SchemaError:
                want = None
            i = sum(1 for v in since if v <= version)
            got = _schema_table.SchemaFacts(*entries[i - 1][1]) if i else None
            assert got == want, (domain, name, version)
            checked += 1
    assert checked > 5000


# -- child processes without onnx -------------------------------------------------------------------


def _models(folder: str) -> dict[str, tuple[str, dict]]:
    """name -> (path, feed): a linear model with a ZipMap-like string output, an If, a Loop, a
    tree ensemble (hidden from onnx's inference by the guard), an onnxruntime contrib op that
    the CPU provider registers a schema for."""
    f32 = TensorProto.FLOAT
    out: dict[str, tuple[str, dict]] = {}

    def save(name, graph, opsets, feed):
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        m.ir_version = 8
        path = os.path.join(folder, name + ".onnx")
        onnx.save(m, path)
        out[name] = (path, feed)

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    save(
        "linear",
        helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "w"], ["m"]),
                helper.make_node("Softmax", ["m"], ["p"], axis=1),
                helper.make_node("ArgMax", ["p"], ["y"], axis=1),
            ],
            "g",
            [helper.make_tensor_value_info("x", f32, ["N", 3])],
            [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
            [w],
        ),
        [("", 13)],
        {"x": x},
    )
    then = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", f32, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", f32, None)],
    )
    save(
        "branch",
        helper.make_graph(
            [
                helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
                helper.make_node("Greater", ["s", "zero"], ["c"]),
                helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
            ],
            "g",
            [helper.make_tensor_value_info("x", f32, [2, 3])],
            [helper.make_tensor_value_info("y", f32, None)],
            [numpy_helper.from_array(np.array(0, np.float32), "zero")],
        ),
        [("", 13)],
        {"x": x - 3},
    )
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc", "x"], ["acc2"]),
            helper.make_node("Identity", ["cond"], ["c2"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc", f32, None),
        ],
        [
            helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc2", f32, None),
        ],
    )
    save(
        "loop",
        helper.make_graph(
            [helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)],
            "g",
            [helper.make_tensor_value_info("x", f32, [2, 3])],
            [helper.make_tensor_value_info("y", f32, None)],
            [numpy_helper.from_array(np.array(4, np.int64), "n")],
        ),
        [("", 13)],
        {"x": x},
    )
    save(
        "trees",
        helper.make_graph(
            [
                helper.make_node(
                    "TreeEnsembleRegressor",
                    ["x"],
                    ["y"],
                    domain="ai.onnx.ml",
                    n_targets=1,
                    nodes_treeids=[0, 0, 0],
                    nodes_nodeids=[0, 1, 2],
                    nodes_featureids=[1, 0, 0],
                    nodes_values=[2.5, 0.0, 0.0],
                    nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                    nodes_truenodeids=[1, 0, 0],
                    nodes_falsenodeids=[2, 0, 0],
                    target_treeids=[0, 0],
                    target_nodeids=[1, 2],
                    target_ids=[0, 0],
                    target_weights=[-1.0, 1.0],
                ),
                helper.make_node("Mul", ["y", "y"], ["z"]),
            ],
            "g",
            [helper.make_tensor_value_info("x", f32, ["N", 3])],
            [helper.make_tensor_value_info("z", f32, None)],
        ),
        [("", 13), ("ai.onnx.ml", 1)],
        {"x": x},
    )
    scale = numpy_helper.from_array(np.full(3, 2.0, np.float32), "scale")
    save(
        "rmsnorm",
        helper.make_graph(
            [helper.make_node("SimplifiedLayerNormalization", ["x", "scale"], ["n"], axis=-1)]
            + [helper.make_node("Relu", ["n"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", f32, [2, 3])],
            [helper.make_tensor_value_info("y", f32, None)],
            [scale],
        ),
        [("", 17)],
        {"x": x},
    )
    return out


_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import ort_core
    models = json.loads(sys.argv[1])
    out = {}
    for name, (path, feed_file) in models.items():
        feed = dict(np.load(feed_file))
        s = ort_core.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = s.run(None, feed)[0]
        o = s.get_outputs()[0]
        out[name] = {"y": np.asarray(y).tolist(), "type": o.type, "shape": o.shape,
                     "onnx": "onnx" in sys.modules}
    from ort_core.ir._validate import schema_facts
    # the plugins' schemas are in the facts without onnx (the table was made with them)
    out["_facts"] = schema_facts("SimplifiedLayerNormalization", "", 17) is not None
    out["_onnx_after"] = "onnx" in sys.modules
    from ort_core.plugins import get_plugin_manager
    import onnx  # the plugins' schemas reach onnx once it is imported
    get_plugin_manager()
    out["_registered"] = bool(onnx.defs.has("SimplifiedLayerNormalization"))
    print(json.dumps(out))
    """
)


def _child(models: dict, cache: str, **env) -> dict:
    environ = dict(os.environ, ORT_CORE_CACHE_DIR=cache, ORT_CPU_AOT="0", **env)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(models)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_creates_sessions_without_onnx(tmp_path):
    models = {}
    for name, (path, feed) in _models(str(tmp_path)).items():
        feed_file = str(tmp_path / f"{name}.npz")
        np.savez(feed_file, **feed)
        models[name] = (path, feed_file)
    cache = str(tmp_path / "cache")
    first = _child(models, cache)
    assert os.listdir(os.path.join(cache, "schemas")) and os.listdir(os.path.join(cache, "types"))
    second = _child(models, cache)
    off = _child(models, str(tmp_path / "off"), ORT_CORE_DISK_CACHE="0")
    assert not os.path.exists(str(tmp_path / "off"))
    for name in models:
        assert not second[name]["onnx"], name  # the table and the type cache stood in
        assert off[name]["onnx"], name
        for run in (second, off):
            assert run[name]["y"] == first[name]["y"], name
            assert (run[name]["type"], run[name]["shape"]) == (
                first[name]["type"],
                first[name]["shape"],
            ), name
    assert first["_registered"] and second["_registered"] and off["_registered"]
    assert first["_facts"] and second["_facts"] and off["_facts"]
    assert not second["_onnx_after"]


def test_cached_types_are_onnx_inference_results(tmp_path, monkeypatch):
    """The type cache returns what inference gave, for the same skeleton, and a changed model
    (one attribute) is a different entry."""
    from ort_core.ir import _infer, _type_cache

    path, _ = _models(str(tmp_path))["linear"]
    model = onnx.load(path)
    monkeypatch.setenv("ORT_CORE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(_schema_table, "use_table", lambda: True)
    calls = []

    def infer(sk, ops):
        calls.append(1)
        return _infer.infer_types(sk, ops)

    live = _infer.infer_types(model, None)
    assert _type_cache.inferred_types(model, None, infer) == live
    assert _type_cache.inferred_types(model, None, infer) == live
    assert len(calls) == 1
    model.graph.node[2].attribute[0].i = 0  # ArgMax over the other axis
    _type_cache.inferred_types(model, None, infer)
    assert len(calls) == 2


def test_a_model_file_is_keyed_by_its_identity(tmp_path, monkeypatch):
    """Loaded from a file (no external data), the type cache's key is the file's identity: the
    same file hits without serializing the model; rewriting it (new size or mtime) misses."""
    from ort_core.ir import _infer, _type_cache, load_model

    path, _ = _models(str(tmp_path))["linear"]
    monkeypatch.setenv("ORT_CORE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(_schema_table, "use_table", lambda: True)
    calls, serialized = [], []
    real_infer = _infer.infer_types

    def infer(sk, ops):
        calls.append(1)
        return real_infer(sk, ops)

    monkeypatch.setattr("ort_core.ir._convert.infer_types", infer)
    load_model(path)
    load_model(path)
    assert len(calls) == 1
    original = _type_cache.inferred_types

    def spy(skeleton, ops, fn, *, source=None):
        serialized.append(source is None)
        return original(skeleton, ops, fn, source=source)

    monkeypatch.setattr(_type_cache, "inferred_types", spy)
    load_model(path)
    assert serialized == [False] and len(calls) == 1  # keyed by the file, a hit
    model = onnx.load(path)
    model.graph.node[2].attribute[0].i = 0
    onnx.save(model, path)
    os.utime(path, ns=(1, 1))  # a rewrite with an older mtime still changes the identity
    load_model(path)
    assert len(calls) == 2
    load_model(model.SerializeToString())  # bytes: keyed by the skeleton's digest
    assert serialized[-1] is True


def test_table_key_follows_registrants(monkeypatch):
    before = _schema_table.env_stamp()
    saved = _schema_table._state["registrants"]
    try:
        _schema_table.set_registrants((("x", "dist", "1.0", None),))
        assert _schema_table.env_stamp() != before
    finally:
        _schema_table.set_registrants(saved)
    assert _schema_table.env_stamp() == before
