"""The compiled elementwise kernels (ort_cpu.kernels._elementwise_jit) against the numpy path they
replace, bit for bit, and the HardSwish node against onnxruntime (float64: the spec's formula,
onnxruntime has no float64 kernel)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core as ort

from .harness import make_node_model


@pytest.fixture
def compiled():
    from ort_cpu.kernels import _elementwise_jit

    fn = _elementwise_jit.warm_hard_swish()
    if fn is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    return fn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 40, 41)])
def test_hard_swish_compiled_equals_numpy(compiled, dtype, shape):
    from ort_cpu.kernels.elementwise import _hard_swish

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    flat = x.reshape(-1)
    flat[:3] = [np.nan, np.inf, -np.inf][: flat.size]
    y = np.empty_like(x)
    compiled(x.reshape(-1), y.reshape(-1))
    with np.errstate(invalid="ignore"):  # numpy warns on inf * 0, the compiled pass does not
        want = _hard_swish(x)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("view", ["contiguous", "strided"])
def test_hard_swish_node_matches_onnxruntime(dtype, view):
    onnxruntime = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    base = (rng.standard_normal((2, 6, 10)) * 4).astype(dtype)
    x = base if view == "contiguous" else base[:, ::2, 1:]
    model, _ = make_node_model("HardSwish", [np.ascontiguousarray(x)], opset=14)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x0": x})[0]
    if dtype == np.float64:  # onnxruntime has no float64 HardSwish: the spec's formula
        want = x * np.clip(x / 6 + 0.5, 0, 1)
    else:
        ref = onnxruntime.InferenceSession(model.SerializeToString())
        want = ref.run(None, {"x0": np.ascontiguousarray(x)})[0]
    tol = 1e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert got.dtype == dtype and got.shape == x.shape


def test_hard_swish_model_is_warmed_at_session_creation(compiled):
    """The compiled pass is ready when the session is: its first run compiles nothing."""
    graph = helper.make_graph(
        [helper.make_node("HardSwish", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    from ort_cpu.kernels import _elementwise_jit

    assert _elementwise_jit._hard_swish._compiled is not None
    x = np.array([-4, -1, 0.5, 4], np.float32)
    np.testing.assert_array_equal(
        sess.run(None, {"x": x})[0], x * np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "op, attrs, numpy_path",
    [
        ("LeakyRelu", {"alpha": 0.3}, "_leaky_relu"),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, "_hard_sigmoid"),
    ],
)
def test_activation_nodes_compiled_equal_numpy(compiled, op, attrs, numpy_path, dtype):
    """LeakyRelu and HardSigmoid run as one compiled pass (contiguous float32/64): bit for bit
    the numpy path they replace (NaN and infinities included), which strided views still take."""
    from ort_cpu.kernels import elementwise

    rng = np.random.default_rng(2)
    base = (rng.standard_normal((3, 8, 10)) * 6).astype(dtype)
    base.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    reference = getattr(elementwise, numpy_path)
    for x in (base, base[:, ::2, 1:]):
        model, _ = make_node_model(op, [np.ascontiguousarray(x)], attrs, opset=13)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x0": x})[0]
        with np.errstate(invalid="ignore"):
            # the attributes as the model stores them: float32
            want = reference(
                np.ascontiguousarray(x), *(float(np.float32(v)) for v in attrs.values())
            )
        np.testing.assert_array_equal(got, want)
        assert got.dtype == dtype and got.shape == x.shape


@pytest.mark.parametrize("op", ["Relu", "LeakyRelu", "HardSigmoid", "Add", "Sub", "Mul"])
def test_large_passes_shared_between_two_threads(op, monkeypatch):
    """A float32 Relu, LeakyRelu, HardSigmoid, Add, Sub or Mul of 2**18 cells or more
    (_elementwise_jit.CELLS_SPLIT) runs at two threads as compiled pieces shared with the pool
    (host logic and compiled code): the same bits as one thread's numpy or compiled pass,
    NaN, infinities and -0 included, and onnxruntime's values; below the size nothing is
    shared."""
    import onnxruntime
    from ort_cpu.kernels import _elementwise_jit

    from .harness import run_one_and_two_threads

    if _elementwise_jit.warm_activate_into() is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    rng = np.random.default_rng(3)
    arrays = []
    for _ in range(2 if op in ("Add", "Sub", "Mul") else 1):
        v = (rng.standard_normal((1, 24, 120, 97)) * 4).astype(np.float32)  # 18 pieces
        flat = v.reshape(-1)
        flat[:5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
        flat[-3:] = [-0.0, 1e30, -1e-30]
        arrays.append(v)
    attrs = {"alpha": 0.2} if op in ("LeakyRelu", "HardSigmoid") else {}
    for cut, shared in ((None, True), (8, False)):
        inputs = [a[:, :, :cut] for a in arrays]
        model, feeds = make_node_model(op, inputs, attrs)
        one, two, handed = run_one_and_two_threads(model, feeds, monkeypatch)
        assert one[0].tobytes() == two[0].tobytes()
        assert any(done for *_, done in handed) == shared, handed
        ref = onnxruntime.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        np.testing.assert_allclose(two[0], ref.run(None, feeds)[0], rtol=1e-6)


@pytest.mark.parametrize("cells", [4095, 4096, 10007])
def test_float32_relu_from_4096_cells_is_the_compiled_pass_with_numpys_bits(cells, monkeypatch):
    """A float32 Relu of elementwise.RELU_COMPILED cells or more runs as the compiled
    activation pass on the calling thread (host logic and compiled code): the bytes of numpy's
    maximum against zero (NaN kept, +0 for -0, infinities), and onnxruntime's values; fewer
    cells keep numpy's call."""
    import onnxruntime
    from ort_cpu.kernels import _elementwise_jit, elementwise

    if _elementwise_jit.warm_activate_into() is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((1, cells)) * 3).astype(np.float32)
    x[0, :6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -1e-40]
    calls = []
    real = elementwise.relu
    monkeypatch.setattr(elementwise, "relu", lambda *a, **k: calls.append(1) or real(*a, **k))
    model, feeds = make_node_model("Relu", [x], {})
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    got = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)[0]
    assert bool(calls) == (cells < elementwise.RELU_COMPILED)
    assert got.tobytes() == np.maximum(x, np.float32(0)).tobytes()
    ref = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_array_equal(got, ref.run(None, feeds)[0])
