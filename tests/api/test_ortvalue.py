"""OrtValue, its native value and OrtValueVector: the same calls on onnxruntime and ort_core give
the same values, dtypes, shapes, type strings, memory sharing and errors.

The last part pins the documented differences (each test also checks onnxruntime still behaves as
the difference says)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import ort_core
from ort_core import errors

from ._diff import ORT, same

X = np.arange(6, dtype=np.float32).reshape(2, 3)
DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.bool_,
]


def _accessors(v):
    return (
        v.device_name(),
        v.shape(),
        v.data_type(),
        v.element_type(),
        v.tensor_size_in_bytes(),
        v.is_tensor(),
        v.is_sparse_tensor(),
        v.is_tensor_sequence(),
        v.has_value(),
        v.numpy(),
    )


# -- ortvalue_from_numpy ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 4), (5,)])
def test_from_numpy_accessors(dtype, shape):
    a = np.arange(int(np.prod(shape))).reshape(shape).astype(dtype)
    same(lambda rt: _accessors(rt.OrtValue.ortvalue_from_numpy(a)))


def test_from_numpy_is_zero_copy_on_cpu():
    def snippet(rt):
        x = X.copy()
        v = rt.OrtValue.ortvalue_from_numpy(x)
        n = v.numpy()
        x[0, 0] = 42
        return (v.data_ptr() == x.ctypes.data, np.shares_memory(n, x), v.numpy()[0, 0], n is x)

    same(snippet)


def test_from_numpy_copies_a_non_contiguous_array():
    def snippet(rt):
        x = np.arange(12.0).reshape(3, 4)[:, ::2]
        v = rt.OrtValue.ortvalue_from_numpy(x)
        return (v.data_ptr() == x.ctypes.data, v.numpy(), v.numpy().flags.c_contiguous)

    same(snippet)


@pytest.mark.parametrize(
    "value",
    [np.array(["a", "bc"]), np.array(["a"], dtype=object), [1.0, 2.0], 3.0, np.float32(3)],
    ids=["str", "object", "list", "float", "np-scalar"],
)
def test_from_numpy_refuses_strings_and_non_arrays(value):
    same(
        lambda rt: rt.OrtValue.ortvalue_from_numpy(value),
        "Creation of OrtValues is currently only supported from non-string numpy arrays",
    )


@pytest.mark.skipif("CUDAExecutionProvider" in ORT.get_available_providers(), reason="CUDA here")
def test_from_numpy_on_a_device_without_its_provider():
    if "CUDAExecutionProvider" in ort_core.get_available_providers():
        pytest.skip("ort-core's CUDA provider can run here")
    same(lambda rt: rt.OrtValue.ortvalue_from_numpy(X, "cuda", 0), "Can't allocate memory on the")
    same(
        lambda rt: rt.OrtValue.ortvalue_from_shape_and_type([2], np.float32, "cuda", 0),
        "Can't allocate memory on the",
    )
    same(lambda rt: rt.OrtValue.ortvalue_from_numpy(X, "foo", 0), "Unsupported device type: foo")


# -- ortvalue_from_numpy_with_onnx_type ------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, elem",
    [
        (np.float32, T.FLOAT),
        (np.int64, T.INT64),
        (np.uint16, T.BFLOAT16),
        (np.float32, T.INT32),
        (np.int8, T.UINT8),
        (np.uint8, T.FLOAT8E4M3FN),
        (np.uint8, T.FLOAT8E5M2),
        (np.uint8, T.INT4),
        (np.uint8, T.UINT4),
    ],
)
def test_from_numpy_with_onnx_type(dtype, elem):
    a = np.arange(6).reshape(2, 3).astype(dtype)

    def snippet(rt):
        v = rt.OrtValue.ortvalue_from_numpy_with_onnx_type(a, elem)
        return (
            v.is_tensor(),
            v.element_type(),
            v.shape(),
            v.data_type(),
            v.tensor_size_in_bytes(),
            v.device_name(),
        )

    same(snippet)


def test_from_numpy_with_onnx_type_shares_memory_and_reinterprets():
    def snippet(rt):
        a = np.ones(3, np.float32)
        v = rt.OrtValue.ortvalue_from_numpy_with_onnx_type(a, T.INT32)
        return (v.data_ptr() == a.ctypes.data, v.numpy())

    same(snippet)
    same(
        lambda rt: rt.OrtValue.ortvalue_from_numpy_with_onnx_type(
            np.ones((4, 3), np.uint16).T, 16
        ).shape()
    )


@pytest.mark.parametrize(
    "array, elem, fragment",
    [
        (
            np.zeros(3, np.float32),
            T.BFLOAT16,
            "Items size in the incoming array: 4 specified by onnxtype: 2",
        ),
        (np.zeros(3, np.uint8), 99, "Not a valid ONNX Tensor data type: 99"),
        (np.zeros(3, np.uint8), 0, "tensor type 0 is not supported"),
        ([1, 2], T.INT64, None),
    ],
)
def test_from_numpy_with_onnx_type_errors(array, elem, fragment):
    fragments = (fragment,) if fragment else ()
    same(lambda rt: rt.OrtValue.ortvalue_from_numpy_with_onnx_type(array, elem), *fragments)


# -- ortvalue_from_shape_and_type ------------------------------------------------------------------
@pytest.mark.parametrize(
    "element_type",
    [np.float32, np.int64, np.bool_, np.float16, np.dtype("float64"), "float32", np.uint8],
    ids=str,
)
def test_from_shape_and_numpy_type(element_type):
    def snippet(rt):
        v = rt.OrtValue.ortvalue_from_shape_and_type([2, 3], element_type)
        return (
            v.shape(),
            v.data_type(),
            v.numpy().dtype.str,
            v.numpy().shape,
            v.tensor_size_in_bytes(),
        )

    same(snippet)


@pytest.mark.parametrize(
    "elem",
    [
        T.FLOAT,
        T.INT64,
        T.BOOL,
        T.BFLOAT16,
        T.FLOAT8E4M3FN,
        T.FLOAT8E5M2FNUZ,
        T.INT4,
        T.UINT4,
        T.FLOAT4E2M1,
        T.UINT2,
        T.INT2,
        T.FLOAT8E8M0,
    ],
)
@pytest.mark.parametrize("shape", [[3], (2, 3), []])
def test_from_shape_and_onnx_type(elem, shape):
    def snippet(rt):
        v = rt.OrtValue.ortvalue_from_shape_and_type(shape, elem)
        return (v.shape(), v.data_type(), v.element_type(), v.tensor_size_in_bytes())

    same(snippet)


@pytest.mark.parametrize(
    "element_type, fragment",
    [
        (99, "tensor type 99 is not supported"),
        (0, "tensor type 0 is not supported"),
        (
            T.STRING,
            "Creation of OrtValues is currently only supported from non-string numpy arrays",
        ),
        (np.str_, "Creation of OrtValues is currently only supported from non-string numpy arrays"),
        (object, "Creation of OrtValues is currently only supported from non-string numpy arrays"),
    ],
)
def test_from_shape_and_type_errors(element_type, fragment):
    same(lambda rt: rt.OrtValue.ortvalue_from_shape_and_type([2], element_type), fragment)


def test_from_shape_and_type_negative_dim():
    same(
        lambda rt: rt.OrtValue.ortvalue_from_shape_and_type([-1], np.float32),
        "shape.Size() must be >= 0",
    )


def test_from_shape_and_type_with_memory_info():
    def snippet(rt):
        info = rt.OrtMemoryInfo(
            "Cpu", rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, rt.OrtMemType.DEFAULT
        )
        rt.create_and_register_allocator(info, None)
        v = rt.OrtValue.ortvalue_from_shape_and_type([2, 2], np.float32, memory_info=info)
        w = rt.OrtValue.ortvalue_from_shape_and_type([3], T.INT64, memory_info=info)
        return (v.device_name(), v.shape(), v.data_type(), w.data_type())

    same(snippet)

    def ignored(rt):
        info = rt.OrtMemoryInfo(
            "Cpu", rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, rt.OrtMemType.DEFAULT
        )
        rt.create_and_register_allocator(info, None)
        with pytest.warns(UserWarning, match="ignored when memory_info is provided"):
            return rt.OrtValue.ortvalue_from_shape_and_type(
                [2], np.float32, "cpu", 1, memory_info=info
            ).shape()

    same(ignored)


# -- numpy interop: __array__ and DLPack -----------------------------------------------------------
def test_array_protocol():
    def snippet(rt):
        x = X.copy()
        v = rt.OrtValue.ortvalue_from_numpy(x)
        a = np.asarray(v)
        same_dtype = np.asarray(v, dtype=np.float32)
        f64 = np.asarray(v, dtype=np.float64)
        copied = np.array(v)
        no_copy = np.array(v, copy=False)
        return (
            a.ctypes.data == v.data_ptr(),
            same_dtype.ctypes.data == v.data_ptr(),
            f64,
            np.shares_memory(copied, x),
            np.shares_memory(no_copy, x),
        )

    same(snippet)
    for dtype in (np.int64, np.bool_):
        arr = np.array([1, 0, 1], dtype=dtype)
        same(lambda rt, arr=arr: np.asarray(rt.OrtValue.ortvalue_from_numpy(arr)))


def test_dlpack_export():
    def snippet(rt):
        x = X.copy()
        v = rt.OrtValue.ortvalue_from_numpy(x)
        capsule = v.__dlpack__()
        back = np.from_dlpack(v)
        c = v._get_c_value()
        return (
            v.__dlpack_device__(),
            type(capsule).__name__,
            np.shares_memory(back, x),
            back.tolist(),
            c.__dlpack_device__(),
            type(c.to_dlpack()).__name__,
            type(c.__dlpack__()).__name__,
            type(v._ortvalue).__name__,
        )

    same(snippet)


def test_from_dlpack_is_zero_copy():
    def snippet(rt):
        x = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
        from_array = rt.OrtValue.from_dlpack(x)
        src = rt.OrtValue.ortvalue_from_numpy(x)
        from_value = rt.OrtValue.from_dlpack(src)
        from_capsule = rt.OrtValue.from_dlpack(src.__dlpack__())
        native = rt.capi._pybind_state.OrtValue.from_dlpack(src._ortvalue.to_dlpack())
        return [
            (v.data_ptr() == x.ctypes.data, v.numpy(), v.shape())
            for v in (from_array, from_value, from_capsule, native)
        ]

    same(snippet)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.float16, np.float64, np.uint64])
def test_from_dlpack_keeps_the_dtype(dtype):
    a = np.array([1, 0, 1, 1]).astype(dtype)
    same(lambda rt: rt.OrtValue.from_dlpack(rt.OrtValue.ortvalue_from_numpy(a)).numpy())
    same(lambda rt: rt.OrtValue.from_dlpack(a).numpy())
    same(lambda rt: rt.OrtValue.from_dlpack(a.__dlpack__()).numpy())


@pytest.mark.parametrize("shape", [(1, 8, 0, 128), (0,), (0, 4), (4, 0), ()])
def test_from_dlpack_zero_size_and_scalars(shape):
    a = np.zeros(shape, dtype=np.float32)
    same(lambda rt: rt.capi._pybind_state.OrtValue.from_dlpack(a.__dlpack__()).shape())
    same(
        lambda rt: rt.OrtValue.from_dlpack(
            rt.OrtValue.ortvalue_from_numpy(a)._ortvalue.to_dlpack()
        ).shape()
    )


@pytest.mark.parametrize("data", [3, [1, 2], "x"], ids=["int", "list", "str"])
def test_from_dlpack_needs_a_capsule(data):
    same(
        lambda rt: rt.OrtValue.from_dlpack(data),
        "from_dlpack expected a valid DLPack capsule named 'dltensor'",
    )


def test_a_capsule_is_consumed_once():
    def snippet(rt):
        capsule = X.__dlpack__()
        rt.OrtValue.from_dlpack(capsule)
        return rt.OrtValue.from_dlpack(capsule)

    same(snippet, "from_dlpack expected a valid DLPack capsule named 'dltensor'")


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")

    def snippet(rt):
        t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        v = rt.OrtValue.from_dlpack(t)
        back = torch.from_dlpack(v)
        b = rt.OrtValue.from_dlpack(torch.tensor([True, False]))
        return (v.data_ptr() == t.data_ptr(), v.numpy(), back.data_ptr() == t.data_ptr(), b.numpy())

    same(snippet)


# -- update_inplace --------------------------------------------------------------------------------
def test_update_inplace_writes_into_the_same_memory():
    def snippet(rt):
        y = np.zeros(3, np.float32)
        v = rt.OrtValue.ortvalue_from_numpy(y)
        v.update_inplace(np.array([1, 2, 3], np.float32))
        first = y.copy()
        v.update_inplace(rt.OrtValue.ortvalue_from_numpy(np.array([7, 8, 9], np.float32)))
        second = y.copy()
        v.update_inplace(np.arange(6, dtype=np.float32)[::2])
        third = y.copy()
        v.update_inplace(np.array([[4, 5, 6]], np.float32))
        return (first, second, third, y, v.data_ptr() == y.ctypes.data)

    same(snippet)


@pytest.mark.parametrize(
    "data, fragment",
    [
        (
            np.array([1, 2], np.float32),
            "The input size of numpy arrays does not match the size of the OrtValue",
        ),
        (
            np.array([1, 2, 3, 4], np.float32),
            "The input size of numpy arrays does not match the size of the OrtValue",
        ),
        ([1, 2, 3], "data must be a numpy.ndarray or an OrtValue."),
    ],
)
def test_update_inplace_errors(data, fragment):
    same(
        lambda rt: rt.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32)).update_inplace(data),
        fragment,
    )


# -- values a run returns --------------------------------------------------------------------------
def _model():
    tt = helper.make_tensor_type_proto
    graph = helper.make_graph(
        [
            helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
            helper.make_node("Identity", ["a"], ["c"]),
            helper.make_node("Optional", ["a"], ["o"]),
            helper.make_node(
                "Constant", [], ["t"], value=helper.make_tensor("k", T.STRING, [2], [b"x", b"yz"])
            ),
        ],
        "g",
        [
            helper.make_tensor_value_info("a", T.INT64, [2]),
            helper.make_tensor_value_info("b", T.INT64, [2]),
        ],
        [
            helper.make_tensor_sequence_value_info("s", T.INT64, None),
            helper.make_tensor_value_info("c", T.INT64, [2]),
            helper.make_value_info("o", helper.make_optional_type_proto(tt(T.INT64, [2]))),
            helper.make_tensor_value_info("t", T.STRING, [2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


def _run(rt, names=None):
    sess = rt.InferenceSession(_model(), providers=["CPUExecutionProvider"])
    a = np.array([1, 2], np.int64)
    feed = {"a": rt.OrtValue.ortvalue_from_numpy(a), "b": rt.OrtValue.ortvalue_from_numpy(a + 1)}
    return sess.run_with_ort_values(names, feed)


@pytest.mark.parametrize(
    "method",
    [
        "data_type",
        "is_tensor",
        "is_tensor_sequence",
        "is_sparse_tensor",
        "has_value",
        "element_type",
        "shape",
        "device_name",
        "tensor_size_in_bytes",
        "numpy",
    ],
)
def test_values_of_a_run(method):
    same(lambda rt: [type(v).__name__ for v in _run(rt)])
    same(lambda rt: [getattr(v, method)() for v in _run(rt)][1:])
    same(lambda rt: getattr(_run(rt, ["s"])[0], method)())


def test_a_sequence_is_not_a_tensor():
    for fn in ("numpy", "data_ptr", "__dlpack__", "__dlpack_device__", "as_sparse_tensor"):
        same(lambda rt, fn=fn: getattr(_run(rt, ["s"])[0], fn)())
    same(lambda rt: np.asarray(_run(rt, ["s"])[0]))


def test_native_run_returns_an_ortvaluevector():
    def snippet(rt):
        sess = rt.InferenceSession(_model(), providers=["CPUExecutionProvider"])
        a = rt.OrtValue.ortvalue_from_numpy(np.array([1, 2], np.int64))
        feed = {"a": a._get_c_value(), "b": a._get_c_value()}
        vect = sess._sess.run_with_ort_values(feed, ["c"], rt.RunOptions())
        return (
            isinstance(vect, rt.capi._pybind_state.OrtValueVector),
            len(vect),
            vect[0].numpy(),
            rt.OrtValue(vect[0]).data_type(),
        )

    same(snippet)


# -- OrtValueVector --------------------------------------------------------------------------------
def test_ortvaluevector():
    def snippet(rt):
        C = rt.capi._pybind_state
        x = np.arange(3, dtype=np.float32)
        b = np.array([True, False])
        vec = C.OrtValueVector()
        vec.push_back(rt.OrtValue.ortvalue_from_numpy(x)._ortvalue)
        vec.push_back(b.__dlpack__())
        vec.reserve(8)
        return (
            len(vec),
            vec[0].data_ptr() == x.ctypes.data,
            [type(v).__name__ for v in vec],
            [v.numpy() for v in vec],
            vec.element_type_at(0),
            vec.element_type_at(1),
            type(vec.dlpack_at(0)).__name__,
            [type(c).__name__ for c in vec.to_dlpacks(None)],
            bool(vec),
        )

    same(snippet)
    same(lambda rt: rt.capi._pybind_state.OrtValueVector()[5])
    same(lambda rt: rt.capi._pybind_state.OrtValueVector().push_back(np.zeros(2)))


# -- the wrapper and the native value --------------------------------------------------------------
def test_wrapper_and_native_value():
    def snippet(rt):
        v = rt.OrtValue.ortvalue_from_numpy(X)
        c = v._get_c_value()
        w = rt.OrtValue(c)
        return (
            c is v._ortvalue,
            isinstance(c, rt.capi._pybind_state.OrtValue),
            w.data_ptr() == v.data_ptr(),
            c.device_name(),
            c.shape(),
            c.data_type(),
            v._is_webgpu_buffer,
        )

    same(snippet)
    same(
        lambda rt: rt.capi._pybind_state.OrtValue.ortvalue_from_numpy(
            X, rt.capi._pybind_state.OrtDevice(0, 0, 0)
        ).numpy()
    )


# -- documented differences ------------------------------------------------------------------------
def test_ml_dtypes_arrays_are_accepted():
    a = np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16)
    with pytest.raises(RuntimeError, match="non-string numpy arrays"):
        ORT.OrtValue.ortvalue_from_numpy(a)
    v = ort_core.OrtValue.ortvalue_from_numpy(a)
    assert v.data_type() == "tensor(bfloat16)" and v.element_type() == T.BFLOAT16
    assert v.data_ptr() == a.ctypes.data and v.numpy().dtype == ml_dtypes.bfloat16
    bits = ort_core.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16), T.BFLOAT16)
    np.testing.assert_array_equal(bits.numpy().astype(np.float32), [1.5, -2.0])


def test_packed_types_are_unpacked():
    packed = np.array([0x21, 0xF3], np.uint8)  # int4 elements 1, 2, 3, -1 (low nibble first)
    v = ort_core.OrtValue.ortvalue_from_numpy_with_onnx_type(packed, T.INT4)
    assert v.shape() == [2] and v.tensor_size_in_bytes() == 1
    np.testing.assert_array_equal(v.numpy().astype(np.int8), [1, 2])
    with pytest.raises(RuntimeError, match="No corresponding Numpy type"):
        ORT.OrtValue.ortvalue_from_numpy_with_onnx_type(packed, T.INT4).numpy()


def test_from_dlpack_takes_strided_and_read_only_arrays():
    strided = X.T
    with pytest.raises(RuntimeError, match="contiguous"):
        ORT.OrtValue.from_dlpack(strided)
    v = ort_core.OrtValue.from_dlpack(strided)
    assert v.shape() == [3, 2] and np.shares_memory(v.numpy(), X)
    frozen = np.frombuffer(b"abcd", np.uint8)
    with pytest.raises(BufferError):
        ORT.OrtValue.from_dlpack(frozen)
    assert ort_core.OrtValue.from_dlpack(frozen).numpy().tolist() == [97, 98, 99, 100]
    with pytest.raises(errors.InvalidArgument, match="read-only array"):
        ort_core.OrtValue.from_dlpack(frozen).update_inplace(np.zeros(4, np.uint8))


def test_update_inplace_refuses_another_dtype():
    y = np.zeros(3, np.float32)
    ORT.OrtValue.ortvalue_from_numpy(y).update_inplace(np.array([1, 2, 3], np.int32))
    assert y[0] != 1.0  # onnxruntime copied the int32 bytes into the float32 tensor
    with pytest.raises(
        errors.InvalidArgument, match="the source is int32 but the OrtValue holds float32"
    ):
        ort_core.OrtValue.ortvalue_from_numpy(y).update_inplace(np.array([1, 2, 3], np.int32))
    bf = ort_core.OrtValue.ortvalue_from_shape_and_type([2], T.BFLOAT16)
    bf.update_inplace(
        np.array([1.0, 2.0], ml_dtypes.bfloat16).view(np.uint16)
    )  # raw bits: same size
    np.testing.assert_array_equal(bf.numpy().astype(np.float32), [1.0, 2.0])


def test_copy_tensors_copies_on_the_host():
    src = np.arange(4, dtype=np.float32)
    with pytest.raises(RuntimeError, match="Data transfer implementation"):
        ORT.copy_tensors(
            [ORT.OrtValue.ortvalue_from_numpy(src)],
            [ORT.OrtValue.ortvalue_from_numpy(np.zeros(4, np.float32))],
        )
    dst = np.zeros(4, np.float32)
    ort_core.copy_tensors(
        [ort_core.OrtValue.ortvalue_from_numpy(src)], [ort_core.OrtValue.ortvalue_from_numpy(dst)]
    )
    np.testing.assert_array_equal(dst, src)
    with pytest.raises(errors.InvalidArgument, match="shapes and element types must match"):
        ort_core.copy_tensors(
            [ort_core.OrtValue.ortvalue_from_numpy(src)],
            [ort_core.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32))],
        )
    again = np.zeros(4, np.float32)
    native = [ort_core.OrtValue.ortvalue_from_numpy(again)._get_c_value()]
    ort_core.copy_tensors([ort_core.OrtValue.ortvalue_from_numpy(src)._get_c_value()], native)
    np.testing.assert_array_equal(again, src)
    same(
        lambda rt: rt.copy_tensors([rt.OrtValue.ortvalue_from_numpy(src)], []),
        "Invalid arguments provided to CopyTensors.",
    )


def test_an_empty_optional_says_so():
    # onnxruntime crashes the process on data_type()/numpy() of an empty optional: ort-core only
    graph = helper.make_graph(
        [
            helper.make_node(
                "Optional", [], ["e"], type=helper.make_tensor_type_proto(T.FLOAT, None)
            )
        ],
        "g",
        [],
        [
            helper.make_value_info(
                "e", helper.make_optional_type_proto(helper.make_tensor_type_proto(T.FLOAT, None))
            )
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    (v,) = ort_core.InferenceSession(model.SerializeToString()).run_with_ort_values(None, {})
    assert v.has_value() is False and v.is_tensor() is False
    with pytest.raises(errors.InvalidArgument, match="holds no value"):
        v.numpy()


def test_device_values_keep_their_provider(register_provider):
    from tests.unit.providers_for_tests import DeviceArray, FakeDeviceProvider

    register_provider(FakeDeviceProvider)
    v = ort_core.OrtValue.ortvalue_from_numpy(X, "gpu", 0)
    assert isinstance(v.value(), DeviceArray) and isinstance(v.provider, FakeDeviceProvider)
    assert v.device_name() == "gpu" and v.shape() == [2, 3] and v.data_type() == "tensor(float)"
    np.testing.assert_array_equal(np.asarray(v), X)
    with pytest.raises(errors.InvalidArgument, match="does not expose device addresses"):
        v.data_ptr()
    with pytest.raises(errors.InvalidArgument, match="do not speak DLPack"):
        v.__dlpack_device__()
    empty = ort_core.OrtValue.ortvalue_from_shape_and_type([4], T.INT64, "gpu", 0)
    assert isinstance(empty.value(), DeviceArray) and empty.data_type() == "tensor(int64)"


def test_numpy_reads_a_writable_array_through_dlpack():
    x = X.copy()
    assert not np.from_dlpack(ORT.OrtValue.ortvalue_from_numpy(x)).flags.writeable
    view = np.from_dlpack(ort_core.OrtValue.ortvalue_from_numpy(x))
    view[0, 0] = 7
    assert x[0, 0] == 7
    bf16 = ort_core.OrtValue.ortvalue_from_shape_and_type([2], T.BFLOAT16)
    with pytest.raises(errors.InvalidArgument, match="cannot be exported through DLPack"):
        bf16.__dlpack__()
