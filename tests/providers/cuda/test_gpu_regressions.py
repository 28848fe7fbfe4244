"""``cuda_gpu``: what the first run of the GPU check on an H200 found, each kept as a test.

Device tests (they skip without a GPU, and fail under ``ORT_CUDA_REQUIRE_GPU=1``). The first
GPU run (onnx's backend node tests with [CUDA, CPU] against [CPU]) found:

- 0-d tensors became shape (1,) on the way to and from the GPU (``ascontiguousarray`` makes
  arrays at least 1-d): MatMul of two vectors, Einsum to a scalar, scalar inputs of Range/Loop;
- views (Transpose, Split, reversed CumSum) were packed for the host on another stream than
  the one that computed them, and came back as zeros or stale values;
- cupy's ``where`` and other ufuncs have no bfloat16 loop and returned float32 (OneHot);
- signed BitShift by the width or more, and float Mod with fmod=0 at infinities;
- cupy refuses cuBLAS during a stream capture, so no CUDA graph with a MatMul was possible.

Each is checked against the CPU provider (or numpy), not against stored numbers.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.conftest import make_model, tensor
from tests.providers.cuda.test_gpu import (
    CUDA,
    TOL_FP32,
    _assert_close,
    _cpu,
    _init,
    _run_id,
    _session,
)

pytestmark = pytest.mark.cuda_gpu
BF16 = np.dtype(ml_dtypes.bfloat16)


def _both(model, feeds, cuda_options=None):
    got = _session(model, cuda_options).run(None, feeds)
    ref = _cpu(model, feeds)
    return got, ref


def test_scalars_keep_their_shape_through_the_gpu():
    nodes = [
        helper.make_node("MatMul", ["v", "w"], ["dot"]),  # two vectors: a 0-d result
        helper.make_node("Einsum", ["v", "w"], ["inner"], equation="i,i->"),
        helper.make_node("Add", ["s", "dot"], ["sum"]),  # a 0-d input
    ]
    model = make_model(
        nodes,
        [tensor("v", shape=[5]), tensor("w", shape=[5]), tensor("s", shape=[])],
        [tensor("dot"), tensor("inner"), tensor("sum")],
    )
    rng = np.random.default_rng(0)
    feeds = {
        "v": rng.standard_normal(5).astype(np.float32),
        "w": rng.standard_normal(5).astype(np.float32),
        "s": np.array(2.5, np.float32),
    }
    got, ref = _both(model, feeds, {"use_tf32": "0"})
    for g, r in zip(got, ref):
        assert g.shape == () == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5)


@pytest.mark.parametrize("perm", [(1, 0, 2), (2, 0, 1), (0, 2, 1)])
def test_views_come_back_with_their_values(perm):
    """Transpose and Split outputs that are graph outputs are views on the GPU."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),  # computed on the run's stream first
        helper.make_node("Transpose", ["r"], ["t"], perm=list(perm)),
        helper.make_node("Split", ["r", "sizes"], ["a", "b"], axis=1),
        helper.make_node("CumSum", ["r", "axis"], ["c"], reverse=1),
    ]
    inits = [_init("sizes", np.array([1, 3], np.int64)), _init("axis", np.array(2, np.int64))]
    model = make_model(nodes, [tensor("x", shape=[2, 4, 6])], [tensor(n) for n in "tabc"], inits)
    x = np.random.default_rng(1).standard_normal((2, 4, 6)).astype(np.float32)
    got, ref = _both(model, {"x": x})
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)


def test_bfloat16_outputs_stay_bfloat16():
    nodes = [
        helper.make_node("OneHot", ["idx", "depth", "vals"], ["oh"]),
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("Where", ["pos", "x", "zero"], ["relu"]),
    ]
    inits = [
        _init("depth", np.array(4, np.int64)),
        _init("vals", np.array([0.5, 3.0], BF16)),
        _init("zero", np.array(0, BF16)),
    ]
    model = make_model(
        nodes,
        [tensor("idx", TensorProto.INT64, [3]), tensor("x", TensorProto.BFLOAT16, [2, 3])],
        [tensor("oh", TensorProto.BFLOAT16), tensor("relu", TensorProto.BFLOAT16)],
        inits,
    )
    feeds = {
        "idx": np.array([0, 3, 1], np.int64),
        "x": np.array([[-1, 2, 0.5], [3, -4, 1]], BF16),
    }
    got, ref = _both(model, feeds)
    for g, r in zip(got, ref):
        assert g.dtype == BF16 == r.dtype
        np.testing.assert_array_equal(g.astype(np.float32), r.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_signed_right_shift_by_the_width_or_more(dtype):
    bits = np.dtype(dtype).itemsize * 8
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("BitShift", ["a", "s"], ["y"], direction="RIGHT")
    model = make_model([node], [tensor("a", elem, [6]), tensor("s", elem, [6])], [tensor("y")])
    feeds = {
        "a": np.array([-8, 8, -8, 8, -1, -128], dtype),
        "s": np.array([1, 1, bits, bits + 3, -1, 3], dtype),
    }
    got, ref = _both(model, feeds)
    np.testing.assert_array_equal(got[0], ref[0])


@pytest.mark.parametrize("fmod", [0, 1])
def test_float_mod_edge_cases(fmod):
    node = helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)
    model = make_model([node], [tensor("a", shape=[12]), tensor("b", shape=[12])], [tensor("y")])
    inf, nan = np.inf, np.nan
    feeds = {
        "a": np.array([4, -4, 4, -4, 1, -1, inf, -inf, nan, 5.5, 1, -0.0], np.float32),
        "b": np.array([2, 2, -2, -2, inf, inf, 2, 2, 2, 0, -inf, 3], np.float32),
    }
    got, ref = _both(model, feeds)
    np.testing.assert_array_equal(got[0], ref[0])  # NaN where NaN
    real = ~np.isnan(ref[0])  # the sign of zeros and infinities (a NaN's sign bit is noise)
    np.testing.assert_array_equal(np.signbit(got[0][real]), np.signbit(ref[0][real]))


# -- cuBLAS called directly (CUDA graphs) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((7,), (7,)),
        ((3, 7), (7,)),
        ((7,), (7, 5)),
        ((16, 32), (32, 8)),
        ((4, 1, 5, 6), (3, 6, 7)),
        ((5, 6), (2, 6, 4)),
        ((2, 3, 0), (0, 4)),
        ((0, 3), (3, 4)),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_capture_blas_matmul_equals_numpy(cp, sa, sb, dtype):
    from ort_cuda.cublas import capture_blas
    from ort_cuda.device import MemorySettings, get_device

    dt = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(2)
    a = rng.standard_normal(sa).astype(dt)
    b = rng.standard_normal(sb).astype(dt)
    dev = get_device(0, MemorySettings())
    blas = capture_blas(dev)
    got = blas.matmul(cp, cp.asarray(a), cp.asarray(b), tf32=False)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == ref.shape and got.dtype == dt
    tol = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-2, "bfloat16": 2e-2}[dtype]
    if ref.size:
        _assert_close(cp.asnumpy(got).astype(np.float64), ref, tol, f"{sa} @ {sb}")


def test_capture_blas_reads_transposed_views(cp):
    from ort_cuda.cublas import capture_blas
    from ort_cuda.device import MemorySettings, get_device

    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 8, 5)).astype(np.float32)
    b = rng.standard_normal((2, 8, 6)).astype(np.float32)
    blas = capture_blas(get_device(0, MemorySettings()))
    ga, gb = cp.asarray(a), cp.asarray(b)
    got = blas.matmul(cp, ga.transpose(0, 2, 1), gb, tf32=False)
    _assert_close(cp.asnumpy(got), a.transpose(0, 2, 1) @ b, TOL_FP32)


def test_cuda_graph_of_gemm_einsum_and_attention_products():
    """A capture of MatMul, Gemm (transB, bias), Einsum and a batched MatMul of a transposed
    operand: every product goes through the capture-safe cuBLAS path."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Gemm", ["x", "W", "bias"], ["h"], transB=1, alpha=0.5),
        helper.make_node("Reshape", ["h", "shape"], ["h3"]),
        helper.make_node("Transpose", ["h3"], ["ht"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["h3", "ht"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("Einsum", ["p", "h3"], ["ctx"], equation="bij,bjd->bid"),
        helper.make_node("MatMul", ["ctx", "V"], ["y"]),
    ]
    inits = [
        _init("W", rng.standard_normal((32, 16)).astype(np.float32)),
        _init("bias", rng.standard_normal(32).astype(np.float32)),
        _init("shape", np.array([2, 4, 32], np.int64)),
        _init("V", rng.standard_normal((32, 8)).astype(np.float32)),
    ]
    model = make_model(nodes, [tensor("x", shape=[8, 16])], [tensor("y")], inits)
    graph = _session(model, {"enable_cuda_graph": "1", "use_tf32": "0"})
    assert {a.ep_name for a in graph.placements} == {CUDA}
    for k in range(4):  # warm-up, capture (a failed capture raises EPFail), replays
        x = rng.standard_normal((8, 16)).astype(np.float32)
        got = graph.run(None, {"x": x}, _run_id(0))[0]
        _assert_close(got, _cpu(model, {"x": x})[0], 1e-4, f"run {k}")
