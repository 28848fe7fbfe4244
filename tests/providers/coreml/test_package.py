"""Translation: the saved ML Program package is well formed (specification version of the
deployment target, input and output names, types and shapes, weights), reloads from its spec with
the same results, is cached under a key derived from the model's bytes, and float16 compute is
applied on request. Evaluated by the MIL reference runtime, not by Core ML."""

from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_coreml import kernel
from ort_coreml.convert import SPEC_VERSION, coremltools, load_program, target
from ort_coreml.milref import MilReferenceRuntime

from tests.conftest import make_model, tensor

from .harness import COREML, CPU, placement, session

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
FC = RNG.standard_normal((5, 36)).astype(np.float32)


def _model(batch=1, w=W):
    """x[batch,3,8,8] -> Conv -> Relu -> MaxPool -> Flatten -> Gemm -> y; and Gather(table, idx)
    with int64 indices -> g; and Shape(y) -> s (int64)."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[1, 1]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "FC"], ["y"], name="fc", transB=1),
        helper.make_node("Gather", ["table", "idx"], ["g"], name="gather", axis=0),
        helper.make_node("Shape", ["y"], ["s"], name="shape"),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (B, "B"), (FC, "FC"))]
    return make_model(
        nodes,
        [tensor("x", shape=[batch, 3, 8, 8]), tensor("table", shape=[6, 2]),
         tensor("idx", TensorProto.INT64, [3])],
        [tensor("y", shape=[batch, 5]), tensor("g", shape=[3, 2]),
         tensor("s", TensorProto.INT64, [2])],
        inits,
    )  # fmt: skip


def _feed(batch=1):
    return {
        "x": RNG.standard_normal((batch, 3, 8, 8)).astype(np.float32),
        "table": RNG.standard_normal((6, 2)).astype(np.float32),
        "idx": np.array([5, -1, 0], np.int64),
    }


def _packages(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(".mlpackage"))


@pytest.fixture
def cached(reference, tmp_path):
    sess = session(_model(), {"ModelCacheDirectory": str(tmp_path)}, fallback=False)
    (pkg,) = _packages(tmp_path)
    return sess, str(tmp_path / pkg)


def test_results_match_cpu_and_every_node_is_on_coreml(cached):
    sess, _ = cached
    assert placement(sess) == {COREML: 7}
    feed = _feed()
    got = sess.run(None, feed)
    want = _cpu(_model(), feed)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _cpu(model, feed):
    import ort_core as ort

    return ort.InferenceSession(model.SerializeToString(), providers=[CPU]).run(None, feed)


def test_spec_version_names_types_shapes(cached):
    _, pkg = cached
    ct = coremltools()
    spec = ct.utils.load_spec(pkg)
    assert spec.specificationVersion == SPEC_VERSION == target().value
    assert spec.WhichOneof("Type") == "mlProgram"
    FLOAT32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    INT32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
    ins = {i.name: (i.type.multiArrayType.dataType, list(i.type.multiArrayType.shape))
           for i in spec.description.input}  # fmt: skip
    assert ins == {"x": (FLOAT32, [1, 3, 8, 8]), "table": (FLOAT32, [6, 2]), "idx": (INT32, [3])}
    outs = {o.name: (o.type.multiArrayType.dataType, list(o.type.multiArrayType.shape))
            for o in spec.description.output}  # fmt: skip
    assert outs == {"y": (FLOAT32, [1, 5]), "g": (FLOAT32, [3, 2]), "s": (INT32, [2])}


def test_weights_are_stored_and_equal_the_initializers(cached):
    _, pkg = cached
    weights = os.path.join(pkg, "Data", "com.apple.CoreML", "weights", "weight.bin")
    assert os.path.getsize(weights) >= W.nbytes + FC.nbytes
    consts = [
        op.outputs[0].val
        for op in load_program(pkg).functions["main"].operations
        if op.op_type == "const" and op.outputs[0].val is not None
    ]
    for want in (W, FC):
        assert any(np.shape(c) == want.shape and np.array_equal(c, want) for c in consts)


def test_reloaded_program_gives_the_same_results(cached):
    sess, pkg = cached
    feed = _feed()
    got = sess.run(None, feed)
    rt = MilReferenceRuntime(load_program(pkg))
    out = rt.run({"x": feed["x"], "table": feed["table"], "idx": feed["idx"].astype(np.int32)})
    np.testing.assert_array_equal(out["y"], got[0])
    np.testing.assert_array_equal(out["g"], got[1])
    np.testing.assert_array_equal(out["s"], got[2].astype(np.int32))


def test_cache_is_reused_and_keyed_by_model_bytes(cached, tmp_path, monkeypatch):
    sess, pkg = cached
    feed = _feed()
    first = sess.run(None, feed)

    def no_conversion(*a, **k):
        raise AssertionError("converted again although the package is cached")

    monkeypatch.setattr(kernel, "to_mlmodel", no_conversion)
    again = session(_model(), {"ModelCacheDirectory": str(tmp_path)}, fallback=False)
    for a, b in zip(again.run(None, feed), first):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    monkeypatch.setenv("ORT_COREML_REFERENCE", "1")
    other = session(_model(w=W * 2), {"ModelCacheDirectory": str(tmp_path)}, fallback=False)
    assert len(_packages(tmp_path)) == 2
    assert not np.allclose(other.run(None, feed)[0], first[0])


def test_dynamic_batch_is_converted_per_shape(reference, tmp_path):
    model = _model(batch="N")
    sess = session(model, {"ModelCacheDirectory": str(tmp_path)})
    assert _packages(tmp_path) == []  # nothing static to convert at session creation
    for batch in (1, 3, 1):
        feed = _feed(batch)
        for g, w in zip(sess.run(None, feed), _cpu(model, feed)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    assert len(_packages(tmp_path)) == 2


def test_static_shapes_only_refuses_the_dynamic_model(reference):
    sess = session(_model(batch="N"), {"RequireStaticInputShapes": "1"})
    counts = placement(sess)
    assert counts.get(CPU, 0) >= 1  # Conv on a dynamic input went to the CPU provider
    reasons = [r for v in sess.placement_reasons.values() for r in v]
    assert any("RequireStaticInputShapes=1" in r for r in reasons)


def test_float16_compute_on_request(reference, tmp_path):
    sess = session(
        _model(), {"ModelCacheDirectory": str(tmp_path), "ComputePrecision": "FLOAT16"},
        fallback=False,
    )  # fmt: skip
    (pkg,) = _packages(tmp_path)
    ops = load_program(str(tmp_path / pkg)).functions["main"].operations
    from coremltools.converters.mil.mil import types

    convs = [op for op in ops if op.op_type == "conv"]
    assert convs and all(types.is_float(op.x.dtype) and op.x.dtype == types.fp16 for op in convs)
    feed = _feed()
    got, want = sess.run(None, feed)[0], _cpu(_model(), feed)[0]
    assert got.dtype == np.float32  # the ONNX output type is kept
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)
    assert not np.array_equal(got, want)  # half precision really ran
