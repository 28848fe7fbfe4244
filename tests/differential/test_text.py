"""String kernels and the ai.onnx.ml data-plumbing operators against the ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from .harness import assert_same, check_node, make_node_model, run_cpu, run_reference

ML = "ai.onnx.ml"
WORDS = ["the", "The", "cat", "CAT", "sat", "on", "a", "Mat", "ça", "ÉTÉ", "", "x y"]


def _strings(values, shape=None):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr.reshape(shape if shape is not None else (len(values),))


def _random_words(rng, shape, words=WORDS):
    return _strings(
        list(rng.choice(np.array(words, dtype=object), size=int(np.prod(shape)))), shape
    )


def _ml_model(op_type, inputs, attrs, version, n_outputs=1):
    """A one-node ai.onnx.ml model at ``version`` of that domain."""
    model, feeds = make_node_model(op_type, inputs, attrs, domain=ML, n_outputs=n_outputs)
    for o in model.opset_import:
        if o.domain == ML:
            o.version = version
    return model, feeds


def _as_object(value):
    """The reference evaluator returns some string results as numpy str_ arrays; ort-core (like
    onnxruntime) uses object arrays of str. Compare the strings, not that representation."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return value.astype(object)
    return value


def check_ml(
    op_type, inputs, attrs=None, version=3, *, ref_inputs=None, ref_attrs=None, ref_dtype=None
):
    """Compare an ai.onnx.ml node with the reference evaluator. ``ref_inputs``/``ref_attrs`` give
    the reference an equivalent node where it departs from the spec (a missing default, an input
    type it mishandles); ``ref_dtype`` is the spec's output type where the reference keeps the
    input's."""
    model, feeds = _ml_model(op_type, inputs, attrs or {}, version)
    ref_model, ref_feeds = _ml_model(
        op_type,
        inputs if ref_inputs is None else ref_inputs,
        {**(attrs or {}), **(ref_attrs or {})},
        version,
    )
    expected = run_reference(ref_model, ref_feeds)
    got = run_cpu(model, feeds)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        e = _as_object(e)
        if ref_dtype is not None:
            e = np.asarray(e).astype(ref_dtype)
        assert_same(e, g, 1e-5, 1e-6, f"{op_type} output {i}")
    return got


def check_strings(op_type, inputs, attrs=None, *, opset=None, n_outputs=1):
    """check_node for operators whose reference results are numpy str_ arrays."""
    model, feeds = make_node_model(op_type, inputs, attrs, opset=opset, n_outputs=n_outputs)
    expected = run_reference(model, feeds)
    got = run_cpu(model, feeds)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert_same(_as_object(e), g, 0, 0, f"{op_type} output {i}")


# -- StringNormalizer ------------------------------------------------------------------------------
# The reference evaluator departs from the spec on accents (stripped), empty strings (dropped),
# spaces (stop words removed inside an element) and case-insensitive stop words with NONE (compared
# case-sensitively): it is the oracle only where it agrees with the spec, a numpy oracle elsewhere.
PLAIN_WORDS = ["the", "The", "cat", "CAT", "sat", "on", "a", "Mat", "mAt"]
NORMALIZER_CASES = [
    (action, sensitive)
    for action in ("NONE", "LOWER", "UPPER")
    for sensitive in (0, 1)
    if sensitive or action != "NONE"
]


@pytest.mark.parametrize("action,case_sensitive", NORMALIZER_CASES)
@pytest.mark.parametrize("stopwords", [None, ["the", "CAT"], ["mat"]])
@pytest.mark.parametrize("shape", [(9,), (1, 9)])
def test_string_normalizer(action, case_sensitive, stopwords, shape):
    x = _strings(PLAIN_WORDS, shape)
    attrs = {"case_change_action": action, "is_case_sensitive": case_sensitive}
    if stopwords is not None:
        attrs["stopwords"] = stopwords
    check_strings("StringNormalizer", [x], attrs, opset=10)


@pytest.mark.parametrize("action", ["NONE", "LOWER", "UPPER"])
@pytest.mark.parametrize("case_sensitive", [0, 1])
@pytest.mark.parametrize("shape", [(12,), (1, 12)])
def test_string_normalizer_spec(action, case_sensitive, shape):
    """Whole elements are stop words; accents, spaces and empty strings are kept."""
    stopwords = ["the", "CAT", "ÉTÉ", "x"]
    x = _strings(WORDS, shape)
    attrs = {"case_change_action": action, "is_case_sensitive": case_sensitive}
    model, feeds = make_node_model("StringNormalizer", [x], {**attrs, "stopwords": stopwords})
    fold = (lambda w: w) if case_sensitive else str.lower
    stops = {fold(w) for w in stopwords}
    change = {"NONE": lambda w: w, "LOWER": str.lower, "UPPER": str.upper}[action]
    kept = [change(w) for w in WORDS if fold(w) not in stops]
    expected = _strings(kept, (len(kept),) if len(shape) == 1 else (1, len(kept)))
    assert_same(expected, run_cpu(model, feeds)[0], 0, 0)


@pytest.mark.parametrize("shape", [(3,), (1, 3)])
def test_string_normalizer_all_removed(shape):
    x = _strings(["a", "B", "a"], shape)
    check_strings("StringNormalizer", [x], {"stopwords": ["A", "b"], "case_change_action": "UPPER"})


def test_string_normalizer_locale_is_accepted():
    x = _strings(["Hello", "World"])
    check_strings("StringNormalizer", [x], {"case_change_action": "LOWER", "locale": "en_US"})


# -- StringConcat, RegexFullMatch, StringSplit -----------------------------------------------------
@pytest.mark.parametrize(
    "xs,ys", [((3,), (3,)), ((2, 3), (3,)), ((), (2, 2)), ((2, 1), (1, 4)), ((0, 2), (2,))]
)
def test_string_concat(xs, ys):
    rng = np.random.default_rng(0)
    check_node("StringConcat", [_random_words(rng, xs), _random_words(rng, ys)], opset=20)


PATTERNS = [
    r"[a-z]+",
    r"(?i)the|cat",
    r"\w+@\w+\.com",
    r"a.*b?",
    r"[^0-9]*\d{2,3}",
    r"(ab)+|c",
    r"",
    r"x\sy",
    r"[]a]+",
]
SUBJECTS = ["abc", "The", "cat", "me@site.com", "me@site.org", "ab", "a", "", "xx12", "x y", "]a]"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("shape", [(11,), (1, 11)])
def test_regex_full_match(pattern, shape):
    check_node("RegexFullMatch", [_strings(SUBJECTS, shape)], {"pattern": pattern}, opset=20)


def test_regex_full_match_scalar_and_empty():
    check_node("RegexFullMatch", [_strings(["abc"], ())], {"pattern": "a.c"})
    check_node("RegexFullMatch", [_strings([], (0, 3))], {"pattern": "a.c"})


@pytest.mark.parametrize(
    "pattern,subject,expected",
    [
        ("[[:alpha:]]+", "abcXYZ", True),
        ("[[:alpha:]]+", "abc1", False),
        ("[[:digit:][:space:]]+", "1 2 3", True),
        ("[^[:upper:]]+", "abc", True),
        ("ab\\z", "ab", True),
        ("\\d+", "١٢٣", False),  # RE2's \d is ASCII-only (re's is Unicode)
        ("\\w+\\s\\d", "ab_1 7", True),
        ("[\\w]+", "é", False),
        ("\\Qa.b\\E+", "a.bbb", True),
        ("\\Qa.b\\E", "axb", False),
        ("(?<year>\\d{4})-\\d\\d", "2024-05", True),
    ],
)
def test_regex_full_match_re2_syntax(pattern, subject, expected):
    """RE2 spellings Python's re lacks (the reference evaluator uses re, so it cannot be the
    oracle here): POSIX classes inside brackets and ``\\z``."""
    model, feeds = make_node_model("RegexFullMatch", [_strings([subject])], {"pattern": pattern})
    assert_same(np.array([expected]), run_cpu(model, feeds)[0], 0, 0)


SPLIT_TEXT = ["a,b,,c", "", ",", "one", "  lead and  trail  ", "x,y", "tab\tsep\nnl", "a,,"]


@pytest.mark.parametrize("delimiter", [None, "", ",", ",,", " "])
@pytest.mark.parametrize("maxsplit", [None, 0, 1, 2])
@pytest.mark.parametrize("shape", [(8,), (2, 4)])
def test_string_split(delimiter, maxsplit, shape):
    attrs = {}
    if delimiter is not None:
        attrs["delimiter"] = delimiter
    if maxsplit is not None:
        attrs["maxsplit"] = maxsplit
    check_node("StringSplit", [_strings(SPLIT_TEXT, shape)], attrs, opset=20, n_outputs=2)


@pytest.mark.parametrize("shape", [(0,), (2, 0)])
def test_string_split_empty(shape):
    check_node("StringSplit", [_strings([], shape)], {}, n_outputs=2)


@pytest.mark.parametrize("delimiter", ["", "-"])
def test_string_split_scalar(delimiter):
    """The reference evaluator cannot split a 0-d tensor: compare with its result for [x]."""
    x = _strings(["a b-c  d"], ())
    attrs = {"delimiter": delimiter}
    model, feeds = make_node_model("StringSplit", [x.reshape(1)], attrs, n_outputs=2)
    y, z = run_reference(model, feeds)
    model, feeds = make_node_model("StringSplit", [x], attrs, n_outputs=2)
    got_y, got_z = run_cpu(model, feeds)
    assert_same(y.reshape(y.shape[1:]), got_y, 0, 0, "Y")
    assert_same(z.reshape(()), got_z, 0, 0, "Z")


# -- TfIdfVectorizer -------------------------------------------------------------------------------
POOL_INTS = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]  # unigrams 2,3,5,4; bigrams (5,6) (7,8) (6,7)
POOL_COUNTS = [0, 4]
TFIDF_X = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], dtype=np.int32)


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize("grams", [(1, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("max_skip", [0, 1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_tfidf_int_pool(mode, grams, max_skip, weighted):
    rng = np.random.default_rng(3)
    x = rng.integers(1, 9, size=(3, 12)).astype(np.int64)
    attrs = {
        "mode": mode,
        "min_gram_length": grams[0],
        "max_gram_length": grams[1],
        "max_skip_count": max_skip,
        "ngram_counts": POOL_COUNTS,
        "ngram_indexes": [0, 1, 2, 3, 4, 5, 6],
        "pool_int64s": POOL_INTS,
    }
    if weighted:
        attrs["weights"] = [0.5, 1.0, 2.0, 3.0, 0.25, 4.0, 1.5]
        check_node("TfIdfVectorizer", [x], attrs, opset=9)
        return
    # Without weights the reference evaluator fails in IDF/TFIDF modes: give it the spec's default.
    model, feeds = make_node_model("TfIdfVectorizer", [x], attrs, opset=9)
    ref_model, _ = make_node_model("TfIdfVectorizer", [x], {**attrs, "weights": [1.0] * 7}, opset=9)
    assert_same(run_reference(ref_model, feeds)[0], run_cpu(model, feeds)[0], 1e-6, 0)


@pytest.mark.parametrize("x", [TFIDF_X, TFIDF_X[1], TFIDF_X.astype(np.int64)[:, :0]])
def test_tfidf_shapes_and_sparse_indexes(x):
    attrs = {
        "mode": "TF",
        "min_gram_length": 1,
        "max_gram_length": 2,
        "max_skip_count": 2,
        "ngram_counts": POOL_COUNTS,
        "ngram_indexes": [9, 1, 2, 3, 7, 5, 0],  # output wider than the pool, holes stay zero
        "pool_int64s": POOL_INTS,
    }
    check_node("TfIdfVectorizer", [x], attrs)


@pytest.mark.parametrize("shape", [(10,), (2, 5)])
@pytest.mark.parametrize("grams,max_skip", [((1, 3), 0), ((2, 3), 1), ((3, 3), 2)])
def test_tfidf_string_pool(shape, grams, max_skip):
    rng = np.random.default_rng(4)
    vocab = ["a", "b", "c", "d", "e"]
    x = _random_words(rng, shape, vocab)
    pool = ["a", "c", "e", "a", "b", "b", "c", "d", "d", "a", "b", "c", "b", "a", "d"]
    attrs = {
        "mode": "TFIDF",
        "min_gram_length": grams[0],
        "max_gram_length": grams[1],
        "max_skip_count": max_skip,
        "ngram_counts": [0, 3, 9],  # 3 unigrams, 3 bigrams, 2 trigrams
        "ngram_indexes": list(range(8)),
        "weights": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "pool_strings": pool,
    }
    check_node("TfIdfVectorizer", [x], attrs)


# -- ai.onnx.ml ------------------------------------------------------------------------------------
ML_NUMERIC = [np.float32, np.float64, np.int64, np.int32]


def _ml_rand(rng, shape, dtype):
    return (rng.standard_normal(shape) * 5).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threshold", [None, 0.5, -1.0])
def test_binarizer(dtype, threshold):
    x = _ml_rand(np.random.default_rng(5), (3, 4), dtype)
    check_ml("Binarizer", [x], {} if threshold is None else {"threshold": threshold})


# Scaler, Normalizer and FeatureVectorizer output float32 whatever the input (the spec); the
# reference evaluator keeps the input's type, so it gets the input already cast to float32.
@pytest.mark.parametrize("dtype", ML_NUMERIC)
@pytest.mark.parametrize(
    "offset,scale", [([1.0], [2.0]), ([0.5, -1.0, 2.0], [1.0, 0.5, -3.0]), (None, [3.0])]
)
def test_scaler(dtype, offset, scale):
    x = _ml_rand(np.random.default_rng(6), (4, 3), dtype)
    attrs = {"scale": scale}
    if offset is not None:
        attrs["offset"] = offset
    ref_attrs = {"offset": [0.0]} if offset is None else {}
    check_ml("Scaler", [x], attrs, ref_inputs=[x.astype(np.float32)], ref_attrs=ref_attrs)


@pytest.mark.parametrize("dtype", ML_NUMERIC)
@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
@pytest.mark.parametrize("shape", [(4, 3), (1, 5), (2, 1)])
def test_normalizer(dtype, norm, shape):
    x = _ml_rand(np.random.default_rng(7), shape, dtype)
    if norm == "MAX":  # the spec divides by max(X), the reference by max(|X|): agree when X >= 0
        x = np.abs(x)
    check_ml("Normalizer", [x], {"norm": norm}, ref_inputs=[x.astype(np.float32)])


def test_normalizer_1d_and_spec_edges():
    """1-D input is one row; MAX divides by the (signed) max; a zero divisor leaves X as is."""
    x = np.array([[-4.0, -2.0, -1.0], [0.0, 0.0, 0.0], [3.0, -6.0, 2.0]], dtype=np.float64)
    for norm, div in [
        ("MAX", x.max(axis=1, keepdims=True)),
        ("L1", np.abs(x).sum(axis=1, keepdims=True)),
        ("L2", np.sqrt((x * x).sum(axis=1, keepdims=True))),
    ]:
        expected = np.where(div == 0, x, x / np.where(div == 0, 1, div)).astype(np.float32)
        model, feeds = _ml_model("Normalizer", [x], {"norm": norm}, 1)
        assert_same(expected, run_cpu(model, feeds)[0], 1e-6, 1e-7, norm)
        model, feeds = _ml_model("Normalizer", [x[2]], {"norm": norm}, 1)
        assert_same(expected[2], run_cpu(model, feeds)[0], 1e-6, 1e-7, f"{norm} 1-D")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("replaced", [0.0, float("nan"), -1.0])
@pytest.mark.parametrize("imputed", [[7.5], [1.0, 2.0, 3.0]])
def test_imputer_float(dtype, replaced, imputed):
    x = np.array([[0.0, np.nan, -1.0], [2.0, 0.0, np.nan], [-1.0, -1.0, 5.0]], dtype=dtype)
    attrs = {"imputed_value_floats": imputed, "replaced_value_float": replaced}
    check_ml("Imputer", [x], attrs)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("imputed", [[9], [1, 2, 3]])
def test_imputer_int(dtype, imputed):
    x = np.array([[0, 4, -1], [2, 0, 0], [-1, -1, 5]], dtype=dtype)
    check_ml("Imputer", [x], {"imputed_value_int64s": imputed, "replaced_value_int64": -1})


@pytest.mark.parametrize("to_strings", [False, True])
@pytest.mark.parametrize("shape", [(6,), (2, 3)])
def test_label_encoder_v1(to_strings, shape):
    """Version 1 (classes_strings) is not in the reference evaluator: a numpy oracle."""
    classes = ["a", "b", "c", "d"]
    if to_strings:
        x = np.array([0, 3, 1, 7, -1, 2], dtype=np.int64).reshape(shape)
        attrs = {"classes_strings": classes, "default_string": "?"}
        lookup = dict(enumerate(classes))
        expected = _strings([lookup.get(int(v), "?") for v in x.reshape(-1)], shape)
    else:
        x = _strings(["a", "d", "zz", "b", "", "c"], shape)
        attrs = {"classes_strings": classes, "default_int64": -5}
        lookup = {c: i for i, c in enumerate(classes)}
        expected = np.array([lookup.get(v, -5) for v in x.reshape(-1)], np.int64).reshape(shape)
    model, feeds = _ml_model("LabelEncoder", [x], attrs, 1)
    assert_same(expected, run_cpu(model, feeds)[0], 0, 0)


LE2_CASES = {
    "str->int": (["a", "b", "c"], "strings", [5, 6, 7], "int64s"),
    "int->str": ([1, 2, 9], "int64s", ["x", "y", "z"], "strings"),
    "float->str": ([0.5, 3.0, -2.0], "floats", ["h", "n", "m"], "strings"),
    "str->float": (["a", "b", "c"], "strings", [0.5, 1.5, -1.0], "floats"),
    "int->float": ([1, 2, 3], "int64s", [0.5, 1.5, -1.0], "floats"),
    "float->int": ([1.0, 2.5, 3.0], "floats", [4, 5, 6], "int64s"),
}
LE2_INPUTS = {
    "strings": _strings(["a", "b", "q", "c", "a", "z"]),
    "int64s": np.array([1, 2, 9, 4, 1, 0], dtype=np.int64),
    "floats": np.array([0.5, 7.0, 2.5, -2.0, 1.0, 3.0], dtype=np.float32),
}
LE_DEFAULTS = {  # values type -> (attribute, the spec's default)
    "strings": ("default_string", "_Unused"),
    "int64s": ("default_int64", -1),
    "floats": ("default_float", -0.0),
}


@pytest.mark.parametrize("case", LE2_CASES)
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("with_default", [False, True])
def test_label_encoder_v2_attributes(case, version, with_default):
    keys, ktype, values, vtype = LE2_CASES[case]
    attrs = {f"keys_{ktype}": keys, f"values_{vtype}": values}
    name, spec_default = LE_DEFAULTS[vtype]
    if with_default:
        attrs[name] = {"strings": "DEF", "int64s": 42, "floats": 9.5}[vtype]
    # The reference evaluator does not know the spec's defaults: spell them out for it.
    ref_attrs = {} if with_default else {name: spec_default}
    x = LE2_INPUTS[ktype].reshape(2, 3)
    check_ml("LabelEncoder", [x], attrs, version=version, ref_attrs=ref_attrs)


def test_label_encoder_nan_key():
    """A NaN key matches any NaN input (the reference evaluator misses it: numpy oracle)."""
    attrs = {"keys_floats": [0.5, float("nan")], "values_int64s": [1, 2], "default_int64": 9}
    x = np.array([np.nan, 0.5, 1.0, -np.nan], dtype=np.float32)
    model, feeds = _ml_model("LabelEncoder", [x], attrs, 2)
    assert_same(np.array([2, 1, 9, 2], np.int64), run_cpu(model, feeds)[0], 0, 0)


@pytest.mark.parametrize(
    "keys,values,default",
    [
        (np.array([1, 2, 3], np.int64), np.array(["a", "b", "c"], object), None),
        (np.array([1, 2, 3], np.int64), np.array([0.5, 1.5, 2.5], np.float64), 9.0),
        (np.array(["a", "b"], object), np.array([10, 20], np.int16), -2),
        (np.array([1, 2], np.int32), np.array([10, 20], np.int32), 7),
        (np.array([1, 2], np.int16), np.array([1.5, 2.5], np.float32), None),
        (np.array([0.5, 1.5], np.float64), np.array(["x", "y"], object), "dflt"),
    ],
)
def test_label_encoder_v4_tensors(keys, values, default):
    attrs = {
        "keys_tensor": numpy_helper.from_array(keys, "keys"),
        "values_tensor": numpy_helper.from_array(values, "values"),
    }
    spec_default = "_Unused" if values.dtype == object else -0.0 if values.dtype.kind == "f" else -1
    d = np.array([spec_default if default is None else default], dtype=values.dtype)
    default_attr = {"default_tensor": numpy_helper.from_array(d, "default")}
    if default is not None:
        attrs.update(default_attr)
    x = np.concatenate([keys, keys[:1]]) if keys.dtype != object else _strings(["a", "q", "b"])
    if keys.dtype.kind in "iuf":
        x = np.concatenate([x, np.array([99], keys.dtype)])
    check_ml("LabelEncoder", [x.reshape(1, -1)], attrs, version=4, ref_attrs=default_attr)


def test_label_encoder_v4_keeps_attribute_forms():
    x = _strings(["a", "b", "q"])
    attrs = {"keys_strings": ["a", "b"], "values_int64s": [3, 4], "default_int64": 0}
    check_ml("LabelEncoder", [x], attrs, version=4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, object])
@pytest.mark.parametrize("shape", [(3, 5), (2, 2, 5)])
@pytest.mark.parametrize("indices", [[0], [4, 1, 1], [-1, 2]])
def test_array_feature_extractor(dtype, shape, indices):
    rng = np.random.default_rng(8)
    x = _random_words(rng, shape) if dtype is object else _ml_rand(rng, shape, dtype)
    check_ml("ArrayFeatureExtractor", [x, np.array(indices, dtype=np.int64)])


def test_array_feature_extractor_1d():
    x = np.arange(6, dtype=np.float32)
    check_ml("ArrayFeatureExtractor", [x, np.array([5, 0], dtype=np.int64)])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6,), (2, 3)])
def test_one_hot_encoder_ints(dtype, shape):
    x = np.array([1, 4, 2, 9, 1, 0], dtype=dtype).reshape(shape)
    check_ml("OneHotEncoder", [x], {"cats_int64s": [0, 1, 2, 4], "zeros": 1})


@pytest.mark.parametrize("shape", [(5,), (1, 5)])
def test_one_hot_encoder_strings(shape):
    x = _strings(["b", "a", "z", "b", "c"], shape)
    check_ml("OneHotEncoder", [x], {"cats_strings": ["a", "b", "c"]})


def test_one_hot_encoder_unknown_category_fails_without_zeros():
    model, feeds = _ml_model(
        "OneHotEncoder", [np.array([1, 5], dtype=np.int64)], {"cats_int64s": [1, 2], "zeros": 0}, 3
    )
    with pytest.raises(Exception):  # noqa: B017 - the reference raises too; any error will do
        run_reference(model, feeds)
    with pytest.raises(Exception, match="(?i)categor"):
        run_cpu(model, feeds)


@pytest.mark.parametrize(
    "shapes,dims",
    [
        ([(2, 3), (2, 1)], [3, 1]),
        ([(2, 3), (2, 2)], [2, 4]),  # trimmed and zero-padded
        ([(1, 4), (4,)], [4, 4]),  # 1-D is one row
    ],
)
@pytest.mark.parametrize("dtype", ML_NUMERIC)
def test_feature_vectorizer(shapes, dims, dtype):
    rng = np.random.default_rng(9)
    xs = [_ml_rand(rng, s, dtype) for s in shapes]
    ref_inputs = [x.astype(np.float32).reshape(x.shape[0] if x.ndim > 1 else 1, -1) for x in xs]
    check_ml("FeatureVectorizer", xs, {"inputdimensions": dims}, ref_inputs=ref_inputs)


# -- operators the reference evaluator lacks: checked against small numpy oracles ------------------
@pytest.mark.parametrize("shape", [(6,), (2, 3)])
def test_category_mapper(shape):
    cats_s, cats_i = ["a", "b", "c"], [10, 20, 30]
    attrs = {"cats_strings": cats_s, "cats_int64s": cats_i, "default_int64": -3}
    x = _strings(["a", "c", "q", "b", "", "a"], shape)
    model, feeds = _ml_model("CategoryMapper", [x], attrs, 1)
    lookup = dict(zip(cats_s, cats_i, strict=True))
    expected = np.array([lookup.get(s, -3) for s in x.reshape(-1)], np.int64).reshape(shape)
    assert_same(expected, run_cpu(model, feeds)[0], 0, 0)

    attrs = {"cats_strings": cats_s, "cats_int64s": cats_i, "default_string": "?"}
    y = np.array([10, 30, 5, 20, 10, 0], dtype=np.int64).reshape(shape)
    model, feeds = _ml_model("CategoryMapper", [y], attrs, 1)
    back = dict(zip(cats_i, cats_s, strict=True))
    expected = _strings([back.get(int(v), "?") for v in y.reshape(-1)], shape)
    assert_same(expected, run_cpu(model, feeds)[0], 0, 0)


@pytest.mark.parametrize("labels", [["a", "b", "c"], [3, 1, 2]])
@pytest.mark.parametrize("shape", [(4, 3), (3,)])
def test_zip_map(labels, shape):
    x = np.random.default_rng(10).random(shape).astype(np.float32)
    key = "classlabels_strings" if isinstance(labels[0], str) else "classlabels_int64s"
    model, feeds = _ml_model("ZipMap", [x], {key: labels}, 1)
    got = run_cpu(model, feeds)[0]
    rows = np.atleast_2d(x)
    assert isinstance(got, list) and len(got) == rows.shape[0]
    for row, mapping in zip(rows, got, strict=True):
        assert list(mapping) == labels
        np.testing.assert_allclose(list(mapping.values()), row)


def _map_model(op_type, key_type, value_type, attrs):
    map_type = helper.make_map_type_proto(key_type, helper.make_tensor_type_proto(value_type, None))
    node = helper.make_node(op_type, ["x"], ["y"], domain=ML, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_value_info("x", map_type)],
        [helper.make_value_info("y", helper.make_tensor_type_proto(0, None))],
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(ML, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    "key_type,value_type,vocab,x",
    [
        (TensorProto.STRING, TensorProto.FLOAT, ["a", "c", "b", "z"], {"a": 4.0, "c": 8.0}),
        (TensorProto.INT64, TensorProto.DOUBLE, [5, 1, 3], {1: 2.5, 3: -1.0, 5: 0.5}),
        (TensorProto.STRING, TensorProto.INT64, ["p", "q"], {"q": 7}),
    ],
)
def test_dict_vectorizer(key_type, value_type, vocab, x):
    name = "string_vocabulary" if key_type == TensorProto.STRING else "int64_vocabulary"
    model = _map_model("DictVectorizer", key_type, value_type, {name: vocab})
    expected = run_reference(model, {"x": x})[0]
    dtype = helper.tensor_dtype_to_np_dtype(value_type)
    got = run_cpu(model, {"x": x})[0]
    # The reference evaluator returns float64 and no batch axis; the spec says the map's type.
    assert got.dtype == dtype
    np.testing.assert_allclose(got.reshape(-1).astype(np.float64), np.asarray(expected).reshape(-1))


@pytest.mark.parametrize("cast_to", ["TO_FLOAT", "TO_INT64", "TO_STRING"])
@pytest.mark.parametrize("form", ["DENSE", "SPARSE"])
def test_cast_map(cast_to, form):
    x = {3: 1.5, 0: 2.0, 1: -4.0}
    model = _map_model(
        "CastMap",
        TensorProto.INT64,
        TensorProto.FLOAT,
        {"cast_to": cast_to, "map_form": form, "max_map": 5},
    )
    got = run_cpu(model, {"x": x})[0]
    keys = sorted(x) if form == "DENSE" else range(5)
    dtype = {"TO_FLOAT": np.float32, "TO_INT64": np.int64, "TO_STRING": object}[cast_to]
    raw = [x.get(k, 0.0) for k in keys]
    expected = np.array([str(v) for v in raw] if dtype is object else raw).astype(dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == (1, len(expected))
    if dtype is object:
        assert [float(s) for s in got.reshape(-1)] == [float(s) for s in expected]
    else:
        np.testing.assert_array_equal(got.reshape(-1), expected)
