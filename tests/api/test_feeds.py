"""What a user may feed to ``InferenceSession.run`` and what comes back: the same feed goes to
onnxruntime and to ort_core, and the outcomes must agree (values, types, dtypes, shapes; or the
error class and, where users match on it, onnxruntime's message at the start of ours).

The second half pins the documented differences: values onnxruntime's binding cannot build at all
that ort-core accepts, and onnxruntime bugs ort-core does not reproduce. Each of those tests also
checks that onnxruntime still behaves as the difference says."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

import ort_core
from ort_core import errors
from ort_core.feeds import check_feed, finish_output, finish_outputs

ort = pytest.importorskip("onnxruntime")

ML = "ai.onnx.ml"
tt = helper.make_tensor_type_proto
seq = helper.make_sequence_type_proto
mapt = helper.make_map_type_proto
opt = helper.make_optional_type_proto


# -- models ------------------------------------------------------------------------------------------
def _model(nodes, inputs, outputs, opset=18) -> bytes:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_value_info(n, t) for n, t in inputs],
        [helper.make_value_info(n, t) for n, t in outputs],
    )
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(ML, 3)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def identity(in_type, opset=18) -> bytes:
    """y = Identity(x): tensors, sequences and optionals."""
    return _model(
        [helper.make_node("Identity", ["x"], ["y"])], [("x", in_type)], [("y", in_type)], opset
    )


def dict_vectorizer(key, value, vocab) -> bytes:
    """y = DictVectorizer(x) for a map(key, value) input."""
    attr = "string_vocabulary" if key == T.STRING else "int64_vocabulary"
    node = helper.make_node("DictVectorizer", ["x"], ["y"], domain=ML, **{attr: vocab})
    return _model([node], [("x", mapt(key, tt(value, None)))], [("y", tt(value, None))])


def unused(in_type) -> bytes:
    """A model that declares x (any type, e.g. a sequence of maps) and returns Identity(z)."""
    z = tt(T.FLOAT, None)
    node = helper.make_node("Identity", ["z"], ["y"])
    return _model([node], [("x", in_type), ("z", z)], [("y", z)])


F_N3 = identity(tt(T.FLOAT, ["N", 3]))
F_23 = identity(tt(T.FLOAT, [2, 3]))
F_ANY = identity(tt(T.FLOAT, None))
F_SCALAR = identity(tt(T.FLOAT, []))
I64 = identity(tt(T.INT64, ["N"]))
I32 = identity(tt(T.INT32, ["N"]))
U8 = identity(tt(T.UINT8, ["N"]))
B = identity(tt(T.BOOL, None))
F16 = identity(tt(T.FLOAT16, None))
S_N = identity(tt(T.STRING, ["N"]))
S_ANY = identity(tt(T.STRING, None))
SEQ_F = identity(seq(tt(T.FLOAT, None)))
SEQ_F2 = identity(seq(tt(T.FLOAT, [2])))
SEQ_S = identity(seq(tt(T.STRING, None)))
OPT_F = identity(opt(tt(T.FLOAT, [2])))
OPT_SEQ = identity(opt(seq(tt(T.FLOAT, None))))
DV_SF = dict_vectorizer(T.STRING, T.FLOAT, ["a", "b", "c"])
DV_IF = dict_vectorizer(T.INT64, T.FLOAT, [1, 2, 3])
DV_S2 = dict_vectorizer(T.STRING, T.FLOAT, ["a", "2"])
SEQ_MAP = unused(seq(mapt(T.STRING, tt(T.FLOAT, None))))
MAP_SF = unused(mapt(T.STRING, tt(T.FLOAT, None)))

f32 = np.float32
ARR = np.arange(6, dtype=f32).reshape(2, 3)

# (id, model, value, message check): the message check is "prefix" (onnxruntime's message starts
# ours), or "class" (only the error class must correspond: onnxruntime's text is an internal
# assertion or has a typo we do not copy).
SAME = [
    # tensors from arrays
    ("f32", F_N3, ARR, "prefix"),
    ("noncontiguous", F_N3, np.ascontiguousarray(ARR.T).T, "prefix"),
    ("readonly", F_N3, np.frombuffer(ARR.tobytes(), f32).reshape(2, 3), "prefix"),
    ("matrix", F_N3, np.asmatrix(ARR), "prefix"),
    ("f64 for float", F_N3, ARR.astype(np.float64), "prefix"),
    ("i64 for float", F_N3, ARR.astype(np.int64), "prefix"),
    ("bool for float", F_N3, ARR.astype(bool), "prefix"),
    ("f16 for float", F_N3, ARR.astype(np.float16), "prefix"),
    ("object for float", F_N3, ARR.astype(object), "prefix"),
    ("str for float", F_N3, np.array([["1", "2", "3"]]), "prefix"),
    ("bytes for float", F_N3, np.array([[b"1", b"2", b"3"]]), "prefix"),
    ("i32 for i64", I64, np.zeros(3, np.int32), "prefix"),
    ("u16 for f16", F16, np.zeros(2, np.uint16), "prefix"),
    ("float for str", S_N, np.zeros(2, f32), "prefix"),
    ("rank", F_N3, np.zeros(3, f32), "prefix"),
    ("dims", F_N3, np.zeros((2, 4), f32), "prefix"),
    ("two dims", F_23, np.zeros((3, 4), f32), "prefix"),
    ("dtype before rank", F_23, np.zeros(2), "prefix"),
    ("declared rank 0 takes any shape", F_SCALAR, np.zeros((3, 4), f32), "prefix"),
    ("0-d", F_ANY, np.array(1.5, f32), "prefix"),
    ("empty", F_N3, np.zeros((0, 3), f32), "prefix"),
    # tensors from lists
    ("list", F_N3, [[1, 2, 3]], "prefix"),
    ("list of floats", F_N3, [[1.5, 2, 3]], "prefix"),
    ("list of arrays", F_N3, [np.zeros(3), np.ones(3)], "prefix"),
    ("list with None", F_ANY, [None, 1.0], "prefix"),
    ("list of numeric str", F_ANY, ["1.5", "2"], "prefix"),
    ("list of bools", F_ANY, [True, False], "prefix"),
    ("empty list", F_ANY, [], "prefix"),
    ("list of empty lists", F_ANY, [[], []], "prefix"),
    ("list wrong dims", F_N3, [[1.0, 2.0]], "prefix"),
    ("list wrong rank", F_N3, [1.0, 2.0, 3.0], "prefix"),
    ("ragged list", F_ANY, [[1, 2], [3]], "prefix"),
    ("list of words", F_ANY, [["a", "b", "c"]], "prefix"),
    ("list of dicts", F_ANY, [{"a": 1.0}], "prefix"),
    ("list to int64", I64, [1.7, 2, 3], "prefix"),
    ("list to int32", I32, [1, 2, 3], "prefix"),
    ("list overflows int32", I32, [2**40], "prefix"),
    ("list overflows uint8", U8, [-1, 300], "prefix"),
    ("list to bool", B, [0.5, 0.0, 2], "prefix"),
    ("list to float16", F16, [1.0, 2.5], "prefix"),
    ("nan to int64", I64, [float("nan")], "prefix"),
    # what the binding cannot read
    ("tuple", F_N3, ((1.0, 2.0, 3.0),), "prefix"),
    ("str", F_ANY, "abc", "class"),
    ("dict for tensor", F_ANY, {"a": 1.0}, "prefix"),
    ("complex for float", F_ANY, np.zeros(2, np.complex64), "class"),
    ("datetime", F_ANY, np.zeros(2, "datetime64[s]"), "class"),
    # string tensors
    ("str_", S_N, np.array(["a", "bc", "日本"]), "prefix"),
    ("str_ embedded NUL", S_N, np.array(["a\x00b", "c"]), "prefix"),
    ("str_ 0-d", S_ANY, np.array("abc"), "prefix"),
    ("str_ 2-d transposed", S_ANY, np.array([["a", "b"], ["c", "d"]]).T, "prefix"),
    ("bytes_ with room", S_N, np.array([b"a", b"bc", b""], dtype="S3"), "prefix"),
    ("bytes_ embedded NUL", S_N, np.array([b"a\x00b", b"c"], dtype="S4"), "prefix"),
    ("void", S_N, np.array([b"ab", b"c"], dtype="V2"), "prefix"),
    ("void not utf-8", S_N, np.array([b"\xff\xfe"], dtype="V2"), "class"),
    ("object str", S_N, np.array(["a", "bc"], dtype=object), "prefix"),
    ("object embedded NUL", S_N, np.array(["a\x00b"], dtype=object), "prefix"),
    ("object bytes", S_N, np.array([b"a", b"\xff"], dtype=object), "prefix"),
    (
        "object mixed",
        S_N,
        np.array(["a", 1, 1.5, None, np.str_("s"), np.bytes_(b"b")], object),
        "prefix",
    ),
    ("list of str", S_N, ["a", "b"], "prefix"),
    ("list of bytes", S_N, [b"a", b"b"], "prefix"),
    ("list of ints to str", S_N, [1, 2], "prefix"),
    ("nested list of str", S_ANY, [["a", "b"], ["c", "d"]], "prefix"),
    ("string dims", identity(tt(T.STRING, ["N", 3])), np.array([["a", "b"]]), "prefix"),
    # sequences of tensors
    ("seq", SEQ_F, [np.zeros(2, f32), np.ones((2, 2), f32)], "prefix"),
    ("seq empty", SEQ_F, [], "prefix"),
    ("seq element shape unchecked", SEQ_F2, [np.zeros(3, f32)], "prefix"),
    ("seq noncontiguous element", SEQ_F, [np.zeros((3, 2), f32).T], "prefix"),
    ("seq of str_", SEQ_S, [np.array(["a", "b"]), np.array(["c"])], "prefix"),
    ("seq f64 element", SEQ_F, [np.zeros(2)], "class"),
    ("seq mixed elements", SEQ_F, [np.zeros(2, f32), np.zeros(2)], "class"),
    ("seq of lists", SEQ_F, [[1.0, 2.0]], "prefix"),
    ("seq of scalars", SEQ_F, [1.0], "prefix"),
    ("seq tuple", SEQ_F, (np.zeros(2, f32),), "prefix"),
    ("seq array", SEQ_F, np.zeros((2, 2), f32), "prefix"),
    ("seq dict", SEQ_F, {"a": 1.0}, "prefix"),
    ("seq str", SEQ_F, "abc", "prefix"),
    # maps
    ("map str->float", DV_SF, {"a": 1.0, "c": 2}, "prefix"),
    (
        "map numpy keys and values",
        DV_SF,
        {np.str_("a"): np.float32(1.5), "b": np.int64(2)},
        "prefix",
    ),
    ("map bool and 0-d values", DV_SF, {"a": True, "b": np.array(2.5)}, "prefix"),
    ("map float32 overflow", DV_SF, {"a": 1e39, "b": float("nan")}, "prefix"),
    ("map int keys for str", DV_SF, {1: 1.0}, "prefix"),
    ("map later int key for str", DV_S2, {"a": 1.0, 2: 3.0}, "prefix"),
    ("map bytes key", DV_SF, {b"a": 1.0}, "prefix"),
    ("map str value", DV_SF, {"a": "x"}, "class"),
    ("map None value", DV_SF, {"a": None}, "class"),
    ("map complex value", DV_SF, {"a": 1 + 2j}, "class"),
    ("map int64 keys", DV_IF, {1: 1.0, 3: 2.5}, "prefix"),
    (
        "map numpy int keys",
        DV_IF,
        {np.int64(1): 1.0, np.int32(2): 2.0, np.uint64(3): 3.0},
        "prefix",
    ),
    ("map bool key", DV_IF, {True: 1.0}, "prefix"),
    ("map negative key", DV_IF, {-1: 1.0, 1: 2.0}, "prefix"),
    ("map str keys for int64", DV_IF, {"a": 1.0}, "prefix"),
    ("map later str key for int64", DV_IF, {1: 1.0, "2": 1.0}, "class"),
    ("map float key", DV_IF, {1.5: 1.0}, "class"),
    ("map key beyond int64", DV_IF, {1: 1.0, 2**63: 2.0}, "class"),
    ("map array", MAP_SF, np.zeros(2, f32), "prefix"),
    ("map tuple of dicts", DV_SF, ({"a": 1.0},), "prefix"),
    # sequences of maps
    ("seqmap tuple", SEQ_MAP, ({"a": 1.0}, {"b": 2.0}), "prefix"),
    ("seqmap dict", SEQ_MAP, {"a": 1.0}, "prefix"),
    ("seqmap array", SEQ_MAP, np.zeros(2, f32), "prefix"),
    # optionals
    ("optional None", OPT_F, None, "prefix"),
    ("optional value", OPT_F, np.zeros(2, f32), "prefix"),
    ("optional list", OPT_F, [1.0, 2.0], "prefix"),
    ("optional wrong dtype", OPT_F, np.zeros(2), "prefix"),
    ("optional wrong rank", OPT_F, np.zeros((1, 2), f32), "prefix"),
    ("optional dims", OPT_F, np.zeros(3, f32), "prefix"),
    ("optional dict", OPT_F, {"a": 1.0}, "prefix"),
    ("optional seq None", OPT_SEQ, None, "prefix"),
    ("optional seq value", OPT_SEQ, [np.zeros(2, f32)], "prefix"),
    ("optional seq empty", OPT_SEQ, [], "prefix"),
    ("optional seq array", OPT_SEQ, np.zeros(2, f32), "prefix"),
]

# onnxruntime's error class -> the class ort_core's error must be an instance of
CORRESPONDING = {
    "InvalidArgument": errors.InvalidArgument,
    "RuntimeError": RuntimeError,
    "Fail": errors.OrtError,
    "UnicodeDecodeError": ValueError,
}


def _sessions(model: bytes, so_ort=None, so_core=None):
    theirs = ort.InferenceSession(model, so_ort, providers=["CPUExecutionProvider"])
    ours = ort_core.InferenceSession(model, so_core, providers=["CPUExecutionProvider"])
    return theirs, ours


def _outcome(sess, feed):
    try:
        return sess.run(None, feed), None
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return None, e


def _feed(model: bytes, value) -> dict:
    names = [i.name for i in onnx.load_from_string(model).graph.input]
    feed = {"x": value}
    if "z" in names:
        feed["z"] = np.zeros(1, f32)
    return feed


def assert_same_value(ours, theirs, where="output"):
    """ours and theirs are the same Python/numpy value, down to element types."""
    assert type(ours) is type(theirs), f"{where}: {type(ours)} != {type(theirs)}"
    if isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} != {theirs.dtype}"
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
        if theirs.dtype == object:
            for i, (a, b) in enumerate(zip(ours.reshape(-1), theirs.reshape(-1))):
                assert_same_value(a, b, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
        for k in theirs:
            assert type(next(k2 for k2 in ours if k2 == k)) is type(k), f"{where}: key type {k!r}"
            assert_same_value(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, float) and np.isnan(theirs):
        assert np.isnan(ours), where
    else:
        assert ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def _message(e: BaseException) -> str:
    return e.message if isinstance(e, errors.OrtError) else str(e)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("model, value, check", [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_same_as_onnxruntime(model, value, check):
    theirs_sess, ours_sess = _sessions(model)
    feed = _feed(model, value)
    theirs, their_error = _outcome(theirs_sess, feed)
    ours, our_error = _outcome(ours_sess, feed)
    if their_error is None:
        assert our_error is None, f"onnxruntime accepts this feed, ort_core raised {our_error!r}"
        assert_same_value(ours, theirs)
        return
    assert our_error is not None, f"onnxruntime raised {their_error!r}, ort_core returned {ours!r}"
    expected_class = CORRESPONDING[type(their_error).__name__]
    assert isinstance(our_error, expected_class), (their_error, our_error)
    if check == "prefix":
        if type(their_error).__name__ == "InvalidArgument":  # both say [ONNXRuntimeError] : 2 : ...
            assert str(our_error).startswith(str(their_error)), (str(their_error), str(our_error))
        else:
            assert _message(our_error).startswith(str(their_error)), (
                str(their_error),
                _message(our_error),
            )
    # every ort_core error says which input is wrong
    assert "'x'" in str(our_error) or "input: x" in str(our_error), str(our_error)


@pytest.mark.parametrize(
    "overrides, shape",
    [({"N": 2}, (2, 3)), ({"N": 2}, (5, 3)), ({"N": 2}, (5, 4)), ({"N": 2, "M": 4}, (1, 3))],
)
def test_free_dimension_overrides_as_onnxruntime(overrides, shape):
    model = identity(tt(T.FLOAT, ["N", "M" if "M" in overrides else 3]))
    so_ort, so_core = ort.SessionOptions(), ort_core.SessionOptions()
    for k, v in overrides.items():
        so_ort.add_free_dimension_override_by_name(k, v)
        so_core.add_free_dimension_override_by_name(k, v)
    theirs_sess, ours_sess = _sessions(model, so_ort, so_core)
    feed = {"x": np.zeros(shape, f32)}
    theirs, their_error = _outcome(theirs_sess, feed)
    ours, our_error = _outcome(ours_sess, feed)
    if their_error is None:
        assert our_error is None
        assert_same_value(ours, theirs)
    else:
        assert isinstance(our_error, errors.InvalidArgument)
        assert str(our_error).startswith(str(their_error))


def test_messages_users_match_on():
    sess = ort_core.InferenceSession(F_N3)
    with pytest.raises(
        errors.InvalidArgument,
        match=r"Unexpected input data type\. Actual: \(tensor\(double\)\) , expected: "
        r"\(tensor\(float\)\)",
    ) as info:
        sess.run(None, {"x": np.zeros((1, 3))})
    assert "x.astype" in str(info.value) or "astype(np.float32)" in str(info.value)
    with pytest.raises(ValueError, match="Got invalid dimensions for input: x"):
        sess.run(None, {"x": np.zeros((1, 4), f32)})


# -- outputs -------------------------------------------------------------------------------------------
def test_pass_through_output_is_a_copy_of_the_input():
    x = np.arange(6, dtype=f32).reshape(2, 3)
    for model in (F_N3, _model([], [("x", tt(T.FLOAT, None))], [("x", tt(T.FLOAT, None))])):
        (y,) = ort_core.InferenceSession(model).run(None, {"x": x})
        assert not np.shares_memory(x, y)
        y[0, 0] = 100
        assert x[0, 0] == 0
        assert y.flags.writeable and y.flags.c_contiguous


def test_reshaped_input_and_initializer_outputs_are_the_callers():
    w = helper.make_tensor("w", T.FLOAT, [2, 2], [1, 2, 3, 4])
    shape = helper.make_tensor("s", T.INT64, [1], [4])
    nodes = [
        helper.make_node("Reshape", ["x", "s"], ["flat"]),
        helper.make_node("Identity", ["w"], ["w_out"]),
        helper.make_node("Transpose", ["x"], ["xt"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", T.FLOAT, [2, 2])],
        [
            helper.make_tensor_value_info("flat", T.FLOAT, None),
            helper.make_tensor_value_info("w_out", T.FLOAT, None),
            helper.make_tensor_value_info("xt", T.FLOAT, None),
        ],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    sess = ort_core.InferenceSession(model.SerializeToString())
    x = np.arange(4, dtype=f32).reshape(2, 2)
    flat, w_out, xt = sess.run(None, {"x": x})
    assert not np.shares_memory(flat, x) and not np.shares_memory(xt, x)
    for y in (flat, w_out, xt):
        assert y.flags.writeable and y.flags.c_contiguous
    w_out[...] = -1  # the session's weight must not change
    (_, w_again, _) = sess.run(None, {"x": x})
    np.testing.assert_array_equal(w_again, [[1, 2], [3, 4]])


def test_finish_output_shapes_what_the_user_gets():
    assert finish_output(np.float32(2.5)).shape == ()
    out = finish_output(np.array(["a", "b"]))
    assert out.dtype == object and [type(s) for s in out] == [str, str]
    zipped = finish_output([{np.int64(1): np.float32(0.5)}])
    ((key, value),) = zipped[0].items()
    assert type(key) is int and type(value) is float
    x = np.zeros(3, f32)
    assert not np.shares_memory(finish_output(x[1:], inputs=[x]), x)
    y = finish_output(x)  # a kernel's own array is handed over without a copy, as a view
    assert np.shares_memory(y, x) and y.base is x  # (onnxruntime's outputs have a base too)
    seq, alias = finish_outputs([[x[:2]], x.T], inputs=[x])
    assert not np.shares_memory(seq[0], x) and not np.shares_memory(alias, x)


# -- documented differences: ort-core accepts what onnxruntime's binding cannot build ---------------
def _ort_refuses(model: bytes, value) -> None:
    theirs_sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the point is that it refuses
        theirs_sess.run(None, _feed(model, value))


@pytest.mark.parametrize(
    "key, value, feed, expected",
    [
        (T.STRING, T.DOUBLE, {"a": 1, "b": 0.1}, np.array([[1.0, 0.1]])),
        (T.STRING, T.INT64, {"b": np.int32(7)}, np.array([[0, 7]], np.int64)),
        (T.INT64, T.DOUBLE, {2: 0.5}, np.array([[0.0, 0.5]])),
        (T.STRING, T.FLOAT, {}, np.zeros((1, 2), f32)),
    ],
)
def test_maps_onnxruntime_cannot_build(key, value, feed, expected):
    vocab = ["a", "b"] if key == T.STRING else [1, 2]
    model = dict_vectorizer(key, value, vocab)
    _ort_refuses(model, feed)
    (y,) = ort_core.InferenceSession(model).run(None, {"x": feed})
    assert_same_value(y, expected)


def test_map_values_of_the_wrong_kind_are_refused_with_the_key():
    model = dict_vectorizer(T.STRING, T.INT64, ["a"])
    with pytest.raises(errors.InvalidArgument, match=r"key 'a'.*int64"):
        ort_core.InferenceSession(model).run(None, {"x": {"a": 1.5}})


def test_sequence_of_maps_from_a_list():
    tp = seq(mapt(T.INT64, tt(T.FLOAT, None)))
    _ort_refuses(unused(tp), [{1: 1.0}])
    got = check_feed("x", [{1: 0.1, np.int64(2): 2}, {}], tp)
    assert got == [{1: float(f32(0.1)), 2: 2.0}, {}]
    assert all(type(k) is int for k in got[0])


def test_list_of_dicts_for_a_map_input_says_to_feed_one_dict():
    _ort_refuses(DV_SF, [{"a": 1.0}])
    with pytest.raises(errors.InvalidArgument, match="one dict"):
        ort_core.InferenceSession(DV_SF).run(None, {"x": [{"a": 1.0}, {"b": 1.0}]})


def test_ml_dtypes_and_complex_arrays():
    for elem, dtype in [
        (T.BFLOAT16, ml_dtypes.bfloat16),
        (T.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
    ]:
        model = identity(tt(elem, None), opset=19)
        x = np.array([1.0, 2.5], dtype=dtype)
        _ort_refuses(model, x)
        (y,) = ort_core.InferenceSession(model).run(None, {"x": x})
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.astype(f32), [1.0, 2.5])
        (y,) = ort_core.InferenceSession(model).run(None, {"x": [1.0, 2.5]})
        assert y.dtype == dtype
    model = identity(tt(T.COMPLEX64, None))
    with pytest.raises(Exception, match="complex64"):  # onnxruntime cannot even load it
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.array([1 + 2j], np.complex64)
    (y,) = ort_core.InferenceSession(model).run(None, {"x": x})
    assert y.dtype == np.complex64 and y[0] == 1 + 2j
    with pytest.raises(errors.InvalidArgument, match=r"Actual: \(tensor\(complex128\)\)"):
        ort_core.InferenceSession(model).run(None, {"x": x.astype(np.complex128)})


@pytest.mark.parametrize(
    "model, value, expected",
    [
        (F_ANY, np.float32(1.5), np.array(1.5, f32)),
        (F_ANY, 1.5, np.array(1.5, f32)),
        (identity(tt(T.INT64, None)), 3, np.array(3)),
        (S_ANY, "word", np.array("word", dtype=object)),
        (S_ANY, np.str_("word"), np.array("word", dtype=object)),
    ],
    ids=["np.float32", "float", "int", "str", "np.str_"],
)
def test_scalars_are_0d_tensors(model, value, expected):
    _ort_refuses(model, value)  # "Unable to handle object of type ..."
    (got,) = ort_core.InferenceSession(model).run(None, {"x": value})
    assert_same_value(got, expected)


def test_numpy_scalars_keep_their_dtype_check():
    with pytest.raises(errors.InvalidArgument, match=r"Actual: \(tensor\(double\)\)"):
        ort_core.InferenceSession(F_ANY).run(None, {"x": np.float64(1.5)})


def test_big_endian_arrays_are_read_by_value():
    x = np.array([1.0, 2.0], ">f4")
    (theirs,) = ort.InferenceSession(F_ANY, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert not np.array_equal(theirs, [1.0, 2.0])  # onnxruntime reads the bytes as native
    (ours,) = ort_core.InferenceSession(F_ANY).run(None, {"x": x})
    assert ours.dtype == np.float32 and np.array_equal(ours, [1.0, 2.0])


def test_full_width_bytes_are_read_within_their_width():
    x = np.array([b"ab", b"cd"], dtype="S2")  # no NUL after each element: onnxruntime overreads
    (ours,) = ort_core.InferenceSession(S_N).run(None, {"x": x})
    assert_same_value(ours, np.array(["ab", "cd"], dtype=object))
    with pytest.raises(errors.InvalidArgument, match="not UTF-8"):
        ort_core.InferenceSession(S_N).run(None, {"x": np.array([b"\xff"], dtype="S1")})


def test_none_for_a_tensor_is_refused_at_feed_time():
    with pytest.raises(errors.InvalidArgument, match="None is only valid for optional inputs"):
        ort_core.InferenceSession(F_N3).run(None, {"x": None})


def test_complex_cast_is_refused_like_onnxruntime():
    """ONNX's Cast excludes complex types: onnxruntime refuses the model, so does ort-core (it
    used to drop the imaginary part with a ComplexWarning)."""
    node = helper.make_node("Cast", ["x"], ["y"], to=T.FLOAT)
    model = _model([node], [("x", tt(T.COMPLEX64, None))], [("y", tt(T.FLOAT, None))])
    with pytest.raises(Exception, match="complex64"):
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    with pytest.raises(errors.OrtError, match="does not convert complex tensors"):
        ort_core.InferenceSession(model)
