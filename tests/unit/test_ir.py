import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core import errors
from ort_core.ir import load_model, model_to_proto
from tests.conftest import make_model, reference_outputs, tensor


def _loop_model():
    """A Loop whose body reads an outer-scope value and contains an If (nested subgraphs)."""
    then_g = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "step"], ["t"])], "then", [], [tensor("t", shape=[2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Sub", ["acc_in", "step"], ["e"])], "else", [], [tensor("e", shape=[2])]
    )
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Greater", ["i", "limit"], ["big"]),
            helper.make_node("If", ["big"], ["acc_out"], then_branch=else_g, else_branch=then_g),
            helper.make_node("Identity", ["acc_out"], ["scan_out"]),
        ],
        "body",
        [
            tensor("i", TensorProto.INT64, []),
            tensor("cond_in", TensorProto.BOOL, []),
            tensor("acc_in", shape=[2]),
        ],
        [
            tensor("cond_out", TensorProto.BOOL, []),
            tensor("acc_out", shape=[2]),
            tensor("scan_out", shape=[2]),
        ],
    )
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["step"]),
            helper.make_node("Loop", ["n", "go", "x"], ["final", "all"], body=body),
        ],
        [
            tensor("x", shape=[2]),
            tensor("n", TensorProto.INT64, []),
            tensor("go", TensorProto.BOOL, []),
            tensor("limit", TensorProto.INT64, []),
        ],
        [tensor("final", shape=[2]), tensor("all", shape=["iters", 2])],
        opset=17,
    )


def test_subgraphs_with_outer_scope_run_like_the_reference():
    model = _loop_model()
    feed = {
        "x": np.array([0.5, 1.5], np.float32),
        "n": np.array(6, np.int64),
        "go": np.array(True),
        "limit": np.array(3, np.int64),
    }
    got = ort.InferenceSession(model.SerializeToString(), providers=["cpu"]).run(None, feed)
    for g, e in zip(got, reference_outputs(model, feed)):
        np.testing.assert_allclose(g, e, rtol=1e-6)


def _roundtrip_models():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 3)).astype(np.float32), "w")
    yield (
        "plain",
        make_model(
            [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])],
            [tensor("x", shape=["batch", 3])],
            [tensor("y", shape=["batch", 3])],
            [w],
            doc_string="doc",
        ),
    )
    yield "subgraphs", _loop_model()
    fn = helper.make_function(
        "local",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    yield (
        "functions",
        make_model(
            [helper.make_node("Twice", ["x"], ["y"], domain="local")],
            [tensor("x", shape=[3])],
            [tensor("y", shape=[3])],
            extra_opsets=[helper.make_opsetid("local", 1)],
            functions=[fn],
        ),
    )


@pytest.mark.parametrize(
    "name,model", list(_roundtrip_models()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_roundtrip_is_valid_and_equivalent(name, model):
    back = model_to_proto(load_model(model))
    onnx.checker.check_model(back, full_check=True)
    assert {(o.domain, o.version) for o in back.opset_import} == {
        (o.domain, o.version) for o in model.opset_import
    }
    assert len(back.functions) == len(model.functions)
    rng = np.random.default_rng(1)
    feed = {}
    for vi in model.graph.input:
        elem = vi.type.tensor_type.elem_type
        shape = [d.dim_value or 2 for d in vi.type.tensor_type.shape.dim]
        if elem == TensorProto.BOOL:
            feed[vi.name] = np.array(True)
        elif elem == TensorProto.INT64:
            feed[vi.name] = np.array(5 if vi.name == "n" else 2, np.int64)
        else:
            feed[vi.name] = rng.standard_normal(shape).astype(np.float32)
    a = ort.InferenceSession(model, providers=["cpu"]).run(None, feed)
    b = ort.InferenceSession(back, providers=["cpu"]).run(None, feed)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _external_model(folder, location):
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        [tensor("x", shape=[2, 3])],
        [tensor("y", shape=[2, 3])],
        [w],
    )
    onnx.external_data_helper.convert_model_to_external_data(
        model, location="weights.bin", size_threshold=0
    )
    onnx.save(model, os.path.join(folder, "model.onnx"))
    # now point the tensor at the location under test
    m = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = location
    onnx.save(m, os.path.join(folder, "model.onnx"))
    return os.path.join(folder, "model.onnx")


def test_external_data_inside_folder(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    y = ort.InferenceSession(path, providers=["cpu"]).run(None, {"x": np.ones((2, 3), np.float32)})[
        0
    ]
    np.testing.assert_array_equal(y, np.arange(6).reshape(2, 3) + 1)


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../weights.bin"])
def test_external_data_leaving_the_folder_is_refused(tmp_path, location):
    folder = tmp_path / "model_dir"
    folder.mkdir()
    path = _external_model(folder, location)
    os.replace(folder / "weights.bin", tmp_path / "weights.bin")
    with pytest.raises(errors.InvalidArgument, match="outside the model's folder"):
        ort.InferenceSession(path, providers=["cpu"])


def test_external_data_missing_file(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(errors.NoSuchFile, match="weights.bin"):
        ort.InferenceSession(path, providers=["cpu"])


def test_external_data_from_bytes_is_explained(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    with pytest.raises(errors.InvalidArgument, match="no folder to read it from"):
        ort.InferenceSession(open(path, "rb").read(), providers=["cpu"])


def test_malformed_initializer_is_invalid_graph():
    t = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    t.dims[0] = 7  # data no longer matches dims
    m = make_model([helper.make_node("Identity", ["w"], ["y"])], [], [tensor("y", shape=[4])], [t])
    with pytest.raises(errors.InvalidGraph, match="initializer 'w'"):
        ort.InferenceSession(m.SerializeToString(), providers=["cpu"])


def test_missing_opset_import_is_invalid_graph(mlp_model):
    del mlp_model.opset_import[:]
    with pytest.raises(errors.InvalidGraph, match="imports no opset"):
        ort.InferenceSession(mlp_model.SerializeToString(), providers=["cpu"])


def test_light_model_roundtrip_checker_and_outputs():
    from ort_core.demo import light_model_case

    path, feed, _ = light_model_case("squeezenet")
    back = model_to_proto(load_model(path))
    onnx.checker.check_model(back)
    a = ort.InferenceSession(path, providers=["cpu"]).run(None, feed)
    b = ort.InferenceSession(back, providers=["cpu"]).run(None, feed)
    np.testing.assert_array_equal(a[0], b[0])


def test_external_initializers_of_every_kind_load_as_onnx_reads_them(tmp_path):
    """Initializers read straight from the data file (not through the proto) equal what onnx
    reads, for plain and packed element types, at their offsets, in subgraphs too; a data file
    cut short is an error naming the tensor."""
    from ort_core.ir import load_model

    rng = np.random.default_rng(0)
    values = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal(7).astype(np.float16),
        "i64": rng.integers(-(2**40), 2**40, (2, 2)),
        "u8": rng.integers(0, 255, 9).astype(np.uint8),
        "flag": np.array([True, False, True]),
    }
    inits = [numpy_helper.from_array(v, k) for k, v in values.items()]
    inits.append(helper.make_tensor("bf16", TensorProto.BFLOAT16, [4], [1.0, -2.5, 3.25, 0.0]))
    inits.append(helper.make_tensor("i4", TensorProto.INT4, [5], [-8, 7, 0, 3, -1]))
    inner = numpy_helper.from_array(np.arange(4, dtype=np.float32), "inner_w")
    branch = helper.make_graph(
        [helper.make_node("Identity", ["inner_w"], ["o"])], "b", [], [tensor("o", shape=[4])],
        [inner],
    )  # fmt: skip
    nodes = [helper.make_node("Identity", [k], [f"{k}_out"]) for k in [*values, "bf16", "i4"]]
    nodes.append(helper.make_node("If", ["c"], ["z"], then_branch=branch, else_branch=branch))
    outputs = [helper.make_tensor_value_info(f"{k}_out", 0, None) for k in [*values, "bf16", "i4"]]
    m = make_model(
        nodes, [tensor("c", TensorProto.BOOL, [])], outputs + [tensor("z")], inits, opset=21
    )
    onnx.external_data_helper.convert_model_to_external_data(
        m, location="w.bin", size_threshold=0, all_tensors_to_one_file=True
    )
    path = str(tmp_path / "m.onnx")
    onnx.save(m, path)
    expected = onnx.load(path)  # onnx's own reading, external data included
    want = {t.name: numpy_helper.to_array(t) for t in expected.graph.initializer}
    model = load_model(path)
    for name, arr in want.items():
        got = model.graph.initializers[name]
        assert got.dtype == arr.dtype and got.shape == arr.shape, name
        np.testing.assert_array_equal(got, arr)
        assert got.flags.writeable
    if_node = model.graph.nodes[-1]
    np.testing.assert_array_equal(
        if_node.subgraphs["then_branch"].initializers["inner_w"], np.arange(4)
    )
    with open(tmp_path / "w.bin", "r+b") as f:
        f.truncate(16)
    with pytest.raises(errors.InvalidArgument, match="Cannot read external data of tensor"):
        load_model(path)


def _hf_cache_layout(root):
    """A model folder laid out as the Hugging Face cache lays it out: the model and its data file
    are symlinks (relative, into ../../blobs) inside snapshots/<revision>/."""
    src = root / "src"
    src.mkdir()
    _external_model(src, "weights.bin")
    blobs = root / "blobs"
    snap = root / "snapshots" / "0123abcd"
    blobs.mkdir()
    snap.mkdir(parents=True)
    os.replace(src / "model.onnx", blobs / "9f86d081")
    os.replace(src / "weights.bin", blobs / "60303ae2")
    os.symlink(os.path.join("..", "..", "blobs", "9f86d081"), snap / "model.onnx")
    os.symlink(os.path.join("..", "..", "blobs", "60303ae2"), snap / "weights.bin")
    return snap / "model.onnx"


def test_external_data_in_a_hugging_face_cache_folder(tmp_path):
    """The location string stays inside the folder; the symlinks the cache placed there are
    followed (into the blobs folder)."""
    path = _hf_cache_layout(tmp_path)
    x = np.ones((2, 3), np.float32)
    y = ort.InferenceSession(str(path), providers=["cpu"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, np.arange(6).reshape(2, 3) + 1)


def test_external_data_folder_for_bytes(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    so = ort.SessionOptions()
    so.add_session_config_entry(
        "session.model_external_initializers_file_folder_path", str(tmp_path)
    )
    sess = ort.InferenceSession(open(path, "rb").read(), so, providers=["cpu"])
    y = sess.run(None, {"x": np.ones((2, 3), np.float32)})[0]
    np.testing.assert_array_equal(y, np.arange(6).reshape(2, 3) + 1)


def test_node_attributes_convert_one_at_a_time_and_as_arrays():
    """Node.attr converts only the attribute asked for; attr_values gives every attribute in
    the node's order (after partial use too, and again after set_attr); attr_array gives a
    numeric list as the array np.asarray(attr(name), dtype) makes, a tensor through attr, and
    the default when absent (host logic)."""
    from ort_core.ir import Node

    floats = [0.1, -2.5, 3.0e-8, 7.0]
    attrs = {
        "ints": helper.make_attribute("ints", [3, -1, 2**40]),
        "floats": helper.make_attribute("floats", floats),
        "mode": helper.make_attribute("mode", "BRANCH_LEQ"),
        "t": helper.make_attribute("t", numpy_helper.from_array(np.arange(4, dtype=np.int32))),
    }
    node = Node("Op", ["x"], ["y"], attributes=attrs)
    assert node.attr("mode") == "BRANCH_LEQ"
    assert list(node._attr_cache) == ["mode"]  # nothing else converted yet
    assert list(node.attr_values()) == ["ints", "floats", "mode", "t"]
    assert node.attr_values()["ints"] == [3, -1, 2**40]
    for name, dtype in (("ints", np.int64), ("floats", np.float32), ("floats", np.float64),
                        ("t", np.float64), ("ints", np.float32)):  # fmt: skip
        got = node.attr_array(name, dtype)
        want = np.asarray(node.attr(name), dtype)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    default = np.zeros(2)
    assert node.attr_array("absent", np.int64, default) is default
    assert node.attr_array("absent", np.int64) is None
    node.set_attr("mode", "LEAF")
    assert node.attr("mode") == "LEAF" and node.attr_values()["mode"] == "LEAF"
