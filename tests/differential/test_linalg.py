"""Linear algebra kernels against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from . import harness
from .harness import check_node, make_node_model

rng = np.random.default_rng(2)


def rand(shape, dtype=np.float32):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -5
        return rng.integers(lo, 6, size=shape).astype(dtype)
    return rng.uniform(-1, 1, size=shape).astype(dtype)


def tol(dtype):
    if dtype == np.float16:
        return {"rtol": 5e-3, "atol": 5e-3}
    if dtype == ml_dtypes.bfloat16:
        return {"rtol": 5e-2, "atol": 5e-2}
    return {"rtol": 1e-5, "atol": 1e-5}


MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)), ((0, 4), (4, 3)), ((3, 0), (0, 2)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                   np.uint32])  # fmt: skip
def test_matmul(dtype):
    for sa, sb in MATMUL_SHAPES:
        check_node("MatMul", [rand(sa, dtype), rand(sb, dtype)], **tol(dtype))
    check_node("MatMul", [rand((3, 4), dtype), rand((4, 2), dtype)], opset=9, **tol(dtype))


def test_matmul_bfloat16():
    a, b = rand((3, 8), ml_dtypes.bfloat16), rand((8, 2), ml_dtypes.bfloat16)
    check_node("MatMul", [a, b], **tol(ml_dtypes.bfloat16))


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gemm(trans_a, trans_b, dtype):
    m, k, n = 3, 5, 4
    a = rand((k, m) if trans_a else (m, k), dtype)
    b = rand((n, k) if trans_b else (k, n), dtype)
    attrs = {"transA": trans_a, "transB": trans_b}
    for c in (None, rand((n,), dtype), rand((m, n), dtype), rand((m, 1), dtype), rand((), dtype)):
        check_node("Gemm", [a, b, c], attrs, **tol(dtype))
        check_node("Gemm", [a, b, c], {**attrs, "alpha": 0.5, "beta": 2.0}, **tol(dtype))
    check_node("Gemm", [a, b, rand((m, n), dtype)], {**attrs, "alpha": 1.5}, opset=7, **tol(dtype))
    check_node("Gemm", [a, b, rand((n,), dtype)], {**attrs, "beta": 0.0}, opset=9, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_gemm_int(dtype):
    a, b, c = rand((3, 4), dtype), rand((4, 2), dtype), rand((2,), dtype)
    check_node("Gemm", [a, b, c])
    check_node("Gemm", [a, b])


def test_gemm_opset6_broadcast_attr():
    a, b, c = rand((3, 4)), rand((4, 2)), rand((2,))
    check_node("Gemm", [a, b, c], {"broadcast": 1}, opset=6)


@pytest.mark.parametrize("ta,tb", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8),
                                   (np.int8, np.uint8)])  # fmt: skip
def test_matmul_integer(ta, tb):
    def q(shape, t):
        info = np.iinfo(t)
        return rng.integers(info.min, info.max + 1, size=shape).astype(t)

    a, b = q((4, 6), ta), q((6, 3), tb)
    check_node("MatMulInteger", [a, b])
    check_node("MatMulInteger", [a, b, q((), ta), q((), tb)])
    azp = q((4, 1), ta)
    check_node("MatMulInteger", [a, b, azp, q((3,), tb)])
    # a per-row zero point may also be an M-vector (the reference only broadcasts it as (M, 1))
    (y_row,) = harness.run_cpu(*make_node_model("MatMulInteger", [a, b, azp.ravel(), None]))
    (y_ref,) = check_node("MatMulInteger", [a, b, azp, None])
    np.testing.assert_array_equal(y_row, y_ref)
    check_node("MatMulInteger", [a, b, None, q((3,), tb)])
    check_node("MatMulInteger", [q((2, 4, 6), ta), b, q((), ta)])


EQUATIONS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("bhid, bhjd -> bhij", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ij->", [(3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", EQUATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_einsum(eq, shapes, dtype):
    check_node("Einsum", [rand(s, dtype) for s in shapes], {"equation": eq}, **tol(dtype))


def test_einsum_float16():
    xs = [rand((2, 3), np.float16), rand((3, 4), np.float16)]
    check_node("Einsum", xs, {"equation": "ij,jk->ik"}, **tol(np.float16))


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1), (2, 2, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_det(shape, dtype):
    check_node("Det", [rand(shape, dtype)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout", ["plain", "b_transposed", "a_transposed"])
def test_stacked_matmul_as_one_batch(layout):
    """Stacks of 128 x 64 x 128 products (attention written out as MatMuls) go through the
    batch of GEMMs (:func:`_blas.find_gemm_batch`); a Transpose in front (fused into
    FusedMatMul's transA/transB) is read in place through the batch's trans flags."""
    import onnx
    from onnx import TensorProto, helper
    from ort_cpu.kernels import _blas

    if _blas.find_gemm_batch(np.float32) is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    rng = np.random.default_rng(21)
    a = rng.standard_normal((2, 3, 128, 64)).astype(np.float32)
    b = rng.standard_normal((2, 3, 64, 128)).astype(np.float32)
    nodes, ins = [], {"a": a, "b": b}
    left, right = "a", "b"
    if layout == "b_transposed":
        ins["b"] = np.ascontiguousarray(np.swapaxes(b, -1, -2))
        nodes.append(helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 1, 3, 2]))
        right = "bt"
    if layout == "a_transposed":
        ins["a"] = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        nodes.append(helper.make_node("Transpose", ["a"], ["at"], perm=[0, 1, 3, 2]))
        left = "at"
    nodes.append(helper.make_node("MatMul", [left, right], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in ins.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 128, 128])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    got = harness.run_cpu(model, ins)[0]
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows", [1, 4, 6])
@pytest.mark.parametrize("copy", [True, False])
def test_gemm_constant_transposed_weights(rows, copy, monkeypatch):
    """A classifier's Gemm: constant (N, K) weights with transB and a constant bias. A of at
    most linalg.GEMV_ROWS rows multiplies the kernel's (K, N) copy of the weights (made up to
    GEMV_COPY_BYTES), more rows the transposed view; both against the reference (host logic:
    which layout BLAS reads)."""
    from onnx import numpy_helper
    from ort_cpu.kernels import linalg

    if not copy:
        monkeypatch.setattr(linalg, "GEMV_COPY_BYTES", 0)
    a, w, c = rand((rows, 96)), rand((40, 96)), rand((40,))
    model, feeds = make_node_model("Gemm", [a, w, c], {"transB": 1})
    for name in ("x1", "x2"):
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(name), name))
    kept = [v for v in model.graph.input if v.name == "x0"]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    (got,) = harness.run_cpu(model, feeds)
    np.testing.assert_allclose(got, a @ w.T + c, rtol=1e-5, atol=1e-5)
