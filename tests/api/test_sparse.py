"""Sparse tensors: the same calls on onnxruntime and ort_core build the same tensors, report the
same formats, shapes, types and views, and refuse the same inputs. ``to_dense`` is checked against
what onnxruntime's sparse kernel computes. The last part pins the documented differences."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import ort_core
import ort_core.capi._pybind_state as ort_core_native
from ort_core import errors
from ort_core.sparse import _CSparseTensor, to_dense

from ._diff import ORT, same

SHAPE = [9, 9]
VALUES = np.array([1.0, 2.0, 3.0], dtype=np.float32)
LINEAR = np.array([3, 5, 15], dtype=np.int64)
COORDS = np.array([[0, 3], [0, 5], [1, 6]], dtype=np.int64)
INNER = np.array([1, 1, 1], dtype=np.int64)
OUTER = np.array([0, 1, 2, 3, 3, 3, 3, 3, 3, 3], dtype=np.int64)


def _cpu(rt):
    return rt.OrtDevice.make("cpu", 0)


def _coo(rt, values=VALUES, indices=LINEAR, shape=SHAPE):
    return rt.SparseTensor.sparse_coo_from_numpy(shape, values, indices, _cpu(rt))


def _csr(rt, values=VALUES, inner=INNER, outer=OUTER, shape=SHAPE):
    return rt.SparseTensor.sparse_csr_from_numpy(shape, values, inner, outer, _cpu(rt))


def _views(st, rt):
    coo = st.format() == rt.OrtSparseFormat.ORT_SPARSE_COO
    if coo:
        ind = st.as_coo_view().indices()
        return ("coo", ind, ind.flags.writeable)
    view = st.as_csrc_view()
    return ("csr", view.inner(), view.outer(), view.inner().flags.writeable)


# -- formats ---------------------------------------------------------------------------------------
def test_sparse_format_enum():
    same(lambda rt: {k: int(v) for k, v in rt.OrtSparseFormat.__members__.items()})
    same(lambda rt: [str(v) for v in rt.OrtSparseFormat.__members__.values()])
    same(lambda rt: (rt.OrtSparseFormat(1), rt.OrtSparseFormat.ORT_SPARSE_COO == 1))


# -- COO -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "indices", [LINEAR, COORDS, COORDS.reshape(-1)], ids=["linear", "coords", "flat-coords"]
)
def test_coo(indices):
    def snippet(rt):
        st = _coo(rt, indices=indices)
        return (st, st.format(), _views(st, rt), np.shares_memory(st.values(), VALUES))

    same(snippet)


def test_coo_views_share_the_caller_arrays():
    def snippet(rt):
        values, indices = VALUES.copy(), LINEAR.copy()
        st = _coo(rt, values, indices)
        v, i = st.values(), st.as_coo_view().indices()
        return (
            v.ctypes.data == values.ctypes.data,
            np.shares_memory(i, indices),
            v.flags.writeable,
            i.flags.writeable,
        )

    same(snippet)


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.int8, np.uint8, np.int32, np.uint64])
def test_coo_value_types(dtype):
    same(lambda rt: _coo(rt, values=np.array([1, 0, 1]).astype(dtype)))


@pytest.mark.parametrize(
    "indices",
    [LINEAR.astype(np.int32), [3, 5, 15], LINEAR.astype(np.float64)],
    ids=["int32", "list", "float"],
)
def test_coo_indices_become_int64(indices):
    same(lambda rt: _views(_coo(rt, indices=indices), rt))


def test_coo_shapes_and_empty_tensors():
    same(lambda rt: _coo(rt, shape=np.array([2, 3, 4])).dense_shape())
    same(lambda rt: _coo(rt, shape=[20]).dense_shape())
    same(lambda rt: _coo(rt, np.array([], np.float32), np.array([], np.int64)))


def test_coo_strings():
    def snippet(rt):
        st = _coo(rt, values=np.array(["xyz", "yxz", "zyx"], dtype=str))
        return (st, st.values().flags.writeable, _views(st, rt))

    same(snippet)


@pytest.mark.parametrize(
    "values, indices, fragment",
    [
        (
            VALUES,
            np.array([1, 2], np.int64),
            "Index size: 2 must be equal to or twice the values size: 3",
        ),
        (
            VALUES,
            np.zeros((3, 3), np.int64),
            "Index size: 9 must be equal to or twice the values size: 3",
        ),
        (
            VALUES.reshape(3, 1),
            LINEAR,
            "Expecting values 1-D numpy values array for COO format. Got dims: 2",
        ),
        (np.arange(6, dtype=np.float32)[::2], LINEAR, "Require contiguous numpy array of values"),
        ([1.0, 2.0, 3.0], LINEAR, None),
        (np.float32(1), LINEAR, None),
    ],
)
def test_coo_errors(values, indices, fragment):
    fragments = (fragment,) if fragment else ()
    same(lambda rt: _coo(rt, values, indices), *fragments)


def test_coo_needs_host_memory():
    same(
        lambda rt: rt.SparseTensor.sparse_coo_from_numpy(
            SHAPE, VALUES, LINEAR, rt.OrtDevice.make("cuda", 0)
        ),
        "Unsupported OrtDevice type",
    )


# -- CSR -------------------------------------------------------------------------------------------
def test_csr():
    def snippet(rt):
        inner, outer = INNER.copy(), OUTER.copy()
        st = _csr(rt, inner=inner, outer=outer)
        view = st.as_csrc_view()
        return (
            st,
            _views(st, rt),
            np.shares_memory(view.inner(), inner),
            np.shares_memory(view.outer(), outer),
            view.outer().flags.writeable,
        )

    same(snippet)
    same(lambda rt: _csr(rt, values=np.array(["xyz", "yxz", "zyx"], dtype=str)))


@pytest.mark.parametrize(
    "shape, values, inner, outer, fragment",
    [
        ([3, 3, 3], VALUES, INNER, OUTER, "dense shape must 2-D. Got: 3"),
        (
            SHAPE,
            VALUES,
            INNER,
            OUTER[:5],
            "Outer index count must be rows + 1 or zero. Got: 5 rows: 9",
        ),
        (
            SHAPE,
            VALUES,
            INNER[:2],
            OUTER,
            "Expecting inner index size: 2 the same as values size: 3",
        ),
        (
            SHAPE,
            VALUES,
            INNER.reshape(3, 1),
            OUTER,
            "Expecting all data to be 1-D numpy arrays for CSR format.",
        ),
        (
            SHAPE,
            VALUES.reshape(3, 1),
            INNER,
            OUTER,
            "Expecting all data to be 1-D numpy arrays for CSR format.",
        ),
        (
            [2, 2],
            np.array([], np.float32),
            np.array([], np.int64),
            np.array([0, 0, 0], np.int64),
            "Inner and Outer indices must either be both zero or non-zero",
        ),
    ],
)
def test_csr_errors(shape, values, inner, outer, fragment):
    same(lambda rt: _csr(rt, values, inner, outer, shape), fragment)


# -- views of another format, OrtValues, devices ---------------------------------------------------
def test_views_of_another_format():
    same(lambda rt: _coo(rt).as_csrc_view(), "This sparse tensor does not contain CSR(C) format")
    same(
        lambda rt: _coo(rt).as_blocksparse_view(),
        "This sparse tensor does not contain BlockSparse format",
    )
    same(lambda rt: _csr(rt).as_coo_view(), "This sparse tensor does not contain COO format")


@pytest.mark.parametrize(
    "method",
    [
        "is_sparse_tensor",
        "is_tensor",
        "is_tensor_sequence",
        "data_type",
        "shape",
        "device_name",
        "has_value",
        "element_type",
        "numpy",
        "data_ptr",
        "tensor_size_in_bytes",
    ],
)
def test_ortvalue_of_a_sparse_tensor(method):
    same(lambda rt: getattr(rt.OrtValue.ort_value_from_sparse_tensor(_coo(rt)), method)())


def test_ortvalue_gives_the_sparse_tensor_back():
    def snippet(rt):
        st = rt.OrtValue.ort_value_from_sparse_tensor(_csr(rt)).as_sparse_tensor()
        return (type(st).__name__, st, _views(st, rt))

    same(snippet)
    same(
        lambda rt: rt.OrtValue.ortvalue_from_numpy(VALUES).as_sparse_tensor(),
        "does not contain SparseTensor",
    )


def test_wrapper_needs_a_native_sparse_tensor():
    same(lambda rt: rt.SparseTensor(VALUES), "`Provided object` needs to be of type")


@pytest.mark.skipif("CUDAExecutionProvider" in ORT.get_available_providers(), reason="CUDA here")
def test_to_cuda_without_cuda():
    if "CUDAExecutionProvider" in ort_core.get_available_providers():
        pytest.skip("ort-core's CUDA provider can run here")
    same(
        lambda rt: _coo(rt).to_cuda(rt.OrtDevice.make("cuda", 0)),
        "Cuda is not available in this build",
    )
    same(
        lambda rt: _csr(rt).to_cuda(rt.OrtDevice.make("cuda", 0)),
        "Cuda is not available in this build",
    )


@pytest.mark.skipif(
    ort_core_native.SparseTensor is not _CSparseTensor,
    reason="ort_core.capi does not export the native SparseTensor yet (integration pending)",
)
def test_native_sparse_tensor():
    def snippet(rt):
        C = rt.capi._pybind_state
        st = C.SparseTensor.sparse_coo_from_numpy(SHAPE, VALUES, LINEAR, C.OrtDevice(0, 0, 0))
        return (
            st.format,
            st.dense_shape(),
            st.data_type(),
            st.device_name(),
            st.values(),
            st.get_coo_data().indices(),
        )

    same(snippet)


# -- to_dense against onnxruntime's sparse kernel --------------------------------------------------
def _sparse_matmul():
    graph = helper.make_graph(
        [helper.make_node("SparseToDenseMatMul", ["A", "B"], ["Y"], domain="com.microsoft")],
        "g",
        [
            helper.make_value_info("A", helper.make_sparse_tensor_type_proto(T.FLOAT, [3, 4])),
            helper.make_tensor_value_info("B", T.FLOAT, [4, 2]),
        ],
        [helper.make_tensor_value_info("Y", T.FLOAT, [3, 2])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return ORT.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    "build",
    [
        lambda rt: _coo(rt, indices=np.array([[0, 1], [1, 1], [2, 3]], np.int64), shape=[3, 4]),
        lambda rt: _coo(
            rt, np.array([1.0, 2.0], np.float32), np.array([[0, 1], [0, 1]], np.int64), [3, 4]
        ),
        lambda rt: _csr(
            rt,
            inner=np.array([1, 1, 3], np.int64),
            outer=np.array([0, 1, 2, 3], np.int64),
            shape=[3, 4],
        ),
        lambda rt: _csr(
            rt,
            inner=np.array([0, 2, 3], np.int64),
            outer=np.array([0, 3, 3, 3], np.int64),
            shape=[3, 4],
        ),
    ],
    ids=["coo", "coo-repeated-index", "csr", "csr-one-row"],
)
def test_to_dense_matches_onnxruntimes_sparse_kernel(build):
    b = np.arange(8, dtype=np.float32).reshape(4, 2)
    feed = {
        "A": ORT.OrtValue.ort_value_from_sparse_tensor(build(ORT)),
        "B": ORT.OrtValue.ortvalue_from_numpy(b),
    }
    expected = _sparse_matmul().run_with_ort_values(None, feed)[0].numpy()
    dense = to_dense(build(ort_core))
    assert dense.dtype == np.float32 and dense.shape == (3, 4)
    np.testing.assert_array_equal(dense @ b, expected)


def test_to_dense_takes_every_form():
    st = _coo(ort_core)
    expected = np.zeros(81, np.float32)
    expected[LINEAR] = VALUES
    for form in (st, st._get_c_tensor(), ort_core.OrtValue.ort_value_from_sparse_tensor(st)):
        np.testing.assert_array_equal(to_dense(form), expected.reshape(9, 9))
    strings = to_dense(_coo(ort_core, np.array(["a", "b", "c"]), LINEAR))
    assert (
        strings.dtype == object
        and strings[0, 3] == "a"
        and strings[0, 0] == ""
        and strings[1, 6] == "c"
    )
    with pytest.raises(TypeError, match="to_dense needs a sparse tensor"):
        to_dense(VALUES)


def test_block_sparse():
    values = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    indices = np.array([[0, 1], [0, 1]], np.int32)
    native = ORT.capi._pybind_state.SparseTensor.blocksparse_from_numpy(
        [4, 4], values, indices, ORT.OrtDevice.make("cpu", 0)._get_c_device()
    )
    with pytest.raises(RuntimeError, match="Tensor type mismatch"):  # onnxruntime cannot read them
        ORT.SparseTensor(native).as_blocksparse_view().indices()
    st = ort_core.SparseTensor(
        _CSparseTensor.blocksparse_from_numpy(
            [4, 4], values, indices, ort_core.OrtDevice.make("cpu", 0)
        )
    )
    assert st.format() == ort_core.OrtSparseFormat.ORT_SPARSE_BLOCK_SPARSE
    assert st.data_type() == ORT.SparseTensor(native).data_type() == "sparse_tensor(float)"
    np.testing.assert_array_equal(st.values(), ORT.SparseTensor(native).values())
    got = st.as_blocksparse_view().indices()
    assert got.dtype == np.int32 and got.tolist() == indices.tolist() and not got.flags.writeable
    dense = np.zeros((4, 4), np.float32)
    dense[:2, :2], dense[2:, 2:] = values[0], values[1]
    np.testing.assert_array_equal(to_dense(st), dense)
    with pytest.raises(errors.InvalidArgument, match="Expecting indices to have 2-D shape"):
        _CSparseTensor.blocksparse_from_numpy(
            [4, 4], values, indices[0], ort_core.OrtDevice.make("cpu", 0)
        )
    with pytest.raises(errors.InvalidArgument, match="must tile the dense shape"):
        _CSparseTensor.blocksparse_from_numpy(
            [5, 4], values, indices, ort_core.OrtDevice.make("cpu", 0)
        )


# -- documented differences ------------------------------------------------------------------------
def test_indices_are_checked_against_the_dense_shape():
    outside = np.array([1, 2, 100], np.int64)
    ORT.SparseTensor.sparse_coo_from_numpy(SHAPE, VALUES, outside, ORT.OrtDevice.make("cpu", 0))
    with pytest.raises(errors.InvalidArgument, match=r"must be in \[0, 81\)"):
        _coo(ort_core, indices=outside)
    with pytest.raises(errors.InvalidArgument, match="COO column indices"):
        _coo(ort_core, indices=np.array([[0, 1], [0, 9], [1, 1]], np.int64))
    with pytest.raises(errors.InvalidArgument, match="CSR inner"):
        _csr(ort_core, inner=np.array([1, 9, 1], np.int64))
    with pytest.raises(errors.InvalidArgument, match="must start at 0, never decrease"):
        _csr(ort_core, outer=np.array([0, 2, 1, 3, 3, 3, 3, 3, 3, 3], np.int64))
    with pytest.raises(errors.InvalidArgument, match="negative dim"):
        _coo(ort_core, shape=[-1, 9])
    fractional = LINEAR + 0.5
    assert (
        ORT.SparseTensor.sparse_coo_from_numpy(
            SHAPE, VALUES, fractional, ORT.OrtDevice.make("cpu", 0)
        )
        .as_coo_view()
        .indices()
        .tolist()
        == LINEAR.tolist()
    )  # onnxruntime truncates
    with pytest.raises(errors.InvalidArgument, match="must be integers"):
        _coo(ort_core, indices=fractional)


def test_strings_may_be_objects_or_utf8_bytes():
    objects = np.array(["a", "bc", "d"], dtype=object)
    with pytest.raises(RuntimeError, match="Unsupported values data type"):
        ORT.SparseTensor.sparse_coo_from_numpy(SHAPE, objects, LINEAR, ORT.OrtDevice.make("cpu", 0))
    assert _coo(ort_core, objects).values().tolist() == ["a", "bc", "d"]
    raw = np.array([b"a", b"bc", b"d"])
    assert _coo(ORT, raw).values().tolist() != ["a", "bc", "d"]  # onnxruntime misreads bytes
    assert _coo(ort_core, raw).values().tolist() == ["a", "bc", "d"]
    with pytest.raises(errors.InvalidArgument, match="string values must be str"):
        _coo(ort_core, np.array(["a", 1, "d"], dtype=object))


@pytest.mark.parametrize("dtype, elem", [(np.bool_, 9), (np.float16, 10)])
def test_bool_and_float16_values_can_be_read(dtype, elem):
    values = np.array([1, 0, 1]).astype(dtype)
    with pytest.raises(RuntimeError, match=f"Unsupported data type: {elem}"):
        _coo(ORT, values).values()
    st = _coo(ort_core, values)
    assert st.data_type() == _coo(ORT, values).data_type()
    assert st.values().dtype == dtype and st.values().tolist() == values.tolist()
