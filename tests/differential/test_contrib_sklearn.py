"""The com.microsoft contrib ops skl2onnx emits (Tokenizer, CDist, MurmurHash3) on ort-core's CPU
provider against onnxruntime: one-node models with random inputs and attributes, then whole
scikit-learn models converted by skl2onnx (text vectorizers, nearest neighbours, FeatureHasher)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import ort_core
from ort_core.errors import OrtError

from .harness import assert_same, make_node_model, run_cpu

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for contrib ops")

MS = "com.microsoft"


def _ort_session(model: onnx.ModelProto):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4  # its load errors are the expected outcome of some cases
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _node(op, inputs, attrs):
    return make_node_model(op, inputs, attrs, domain=MS, opset=17)


def check(op, inputs, attrs, *, rtol=0.0, atol=0.0):
    """Run a one-node model on onnxruntime and ort-core; assert the same output."""
    model, feeds = _node(op, inputs, attrs)
    (expected,) = _ort_session(model).run(None, feeds)
    (got,) = run_cpu(model, feeds)
    assert_same(expected, got, rtol, atol, f"{op} {attrs}")
    return got


def check_rejected(op, inputs, attrs, *, at_run=False):
    """Both runtimes refuse the node: at session creation, or at run time with ``at_run``."""
    model, feeds = _node(op, inputs, attrs)
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own exception types
        _ort_session(model).run(None, feeds)
    if at_run:
        sess = ort_core.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        with pytest.raises(OrtError):
            sess.run(None, feeds)
    else:
        with pytest.raises(OrtError):
            ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _strings(values, shape=None) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr.reshape(shape if shape is not None else (len(values),))


# -- Tokenizer -------------------------------------------------------------------------------------
ALPHABET = list("aabbc  ,.;:!?-_AB\t\n019") + ["é", "Ω", "μ", "漢", "字", "😀", "٣", "ſ", "K"]
SEPARATORS = [
    " ", ",", "\\.", "[;:]", "a|ab", "ab|b", "b+", "\\s+", "é", "😀", "[^a-z ]", "(?i)a", "\\d",
    "[[:punct:]]", "\\pL\\pN", "字", "\\x{3A9}", "[[:^alpha:] ]{2}", "c$",
]  # fmt: skip
TOKENEXPS = [
    "[a-z]+", "\\w+", "\\S+", "a|ab|abc", "(?i)[a-z]{2,}", "\\b\\w\\w+\\b", "[^ ,.]+", "\\pL+",
    "[\\p{L}\\p{N}]+", "\\d+", "..", "a*", "b?", "(?U)a+?", "[[:alpha:]]+", "é+", "(a|ab)(c|bcd)",
    "\\x{e9}|\\x{1F600}", "[a-c]{1,2}", "(?s).{2}", "\\w+$", "[^\\x00-\\x7f]+", "(?m)^\\w+$",
    "^\\w+", "a{,2}", "\\141b", "x(?i)a|B", "[\\D]+", "\\QA.\\E|\\.", "(?i)\\x{212A}|ſ",
]  # fmt: skip


def _random_text(rng) -> str:
    n = int(rng.integers(0, 16))
    return "".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), n))


def _random_input(rng) -> np.ndarray:
    shape = [int(rng.integers(1, 4))] if rng.random() < 0.3 else [int(rng.integers(1, 4))] * 2
    shape[-1] = int(rng.integers(1, 5))
    texts = [_random_text(rng) for _ in range(int(np.prod(shape)))]
    return _strings(texts, tuple(shape))


def _common(rng, mincharnum=None) -> dict:
    return {
        "mark": int(rng.integers(0, 2)),
        "pad_value": ["#", "", "<pad>", "π"][int(rng.integers(0, 4))],
        "mincharnum": mincharnum if mincharnum is not None else int(rng.integers(1, 4)),
    }


@pytest.mark.parametrize("seed", range(40))
def test_tokenizer_separators_random(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 4))
    seps = [SEPARATORS[i] for i in rng.choice(len(SEPARATORS), k, replace=False)]
    check("Tokenizer", [_random_input(rng)], {**_common(rng), "separators": seps})


@pytest.mark.parametrize("pattern", TOKENEXPS)
def test_tokenizer_tokenexp(pattern):
    rng = np.random.default_rng(TOKENEXPS.index(pattern))
    for _ in range(3):
        check("Tokenizer", [_random_input(rng)], {**_common(rng), "tokenexp": pattern})


@pytest.mark.parametrize("seed", range(8))
def test_tokenizer_characters(seed):
    """separators [''] and tokenexp '.' split into characters, newline included."""
    rng = np.random.default_rng(100 + seed)
    key, value = [("separators", [""]), ("tokenexp", ".")][seed % 2]
    check("Tokenizer", [_random_input(rng)], {**_common(rng, 1), key: value})


def test_tokenizer_longest_match():
    """RE2 in longest-match mode: the longest alternative wins, not the first."""
    x = _strings(["abcd abd", "aab", "xabcabc"])
    base = {"mark": 0, "pad_value": "#", "mincharnum": 1}
    got = check("Tokenizer", [x], {**base, "tokenexp": "a|ab|abc"})
    assert got.tolist() == [["abc", "ab"], ["a", "ab"], ["abc", "abc"]]
    got = check("Tokenizer", [x], {**base, "separators": ["a|ab"]})
    assert got.tolist() == [["cd ", "d", "#"], ["#", "#", "#"], ["x", "c", "c"]]


@pytest.mark.parametrize(
    "texts,shape",
    [([""], (1,)), (["", ""], (2, 1)), ([" ", ", "], (2,)), (["a b", "", "", ""], (2, 2)),
     (["", "x"], (1, 2)), ([], (0,)), ([], (2, 0)), ([], (0, 3))],
)  # fmt: skip
@pytest.mark.parametrize("mark", [0, 1])
@pytest.mark.parametrize("mode", ["separators", "tokenexp", "chars"])
def test_tokenizer_empty_and_padding(texts, shape, mark, mode):
    """Empty inputs, empty strings, all-separator strings and rows that are all padding."""
    split = {"separators": {"separators": [" ", ","]}, "tokenexp": {"tokenexp": "[a-z]+"},
             "chars": {"separators": [""]}}[mode]  # fmt: skip
    attrs = {"mark": mark, "pad_value": "#", "mincharnum": 1, **split}
    check("Tokenizer", [_strings(texts, shape)], attrs)


def test_tokenizer_empty_separator_matches():
    """A separator that matches the empty string drops the character it stands before. At the
    end of a piece onnxruntime reads past it (undefined behaviour that in practice adds nothing),
    so these expectations were taken from onnxruntime 1.32 once rather than run against it."""
    base = {"mark": 0, "pad_value": "#", "mincharnum": 1}
    for seps, text, want in [
        (["\\b"], "abc", ["bc"]),
        (["x*"], "abc", []),
        (["", "a"], "ab", []),
        (["b", "\\b"], "abc", []),
        (["\\b"], "ab cd", ["b", "d"]),
        (["c*"], "abcab", []),
    ]:
        model, feeds = _node("Tokenizer", [_strings([text])], {**base, "separators": seps})
        (got,) = run_cpu(model, feeds)
        assert got.tolist() == [want], (seps, text)


PATTERN_ZOO_SAME = [
    "a{,2}", "a{2}", "a{1000}", "\\x{61}", "\\x61", "\\141", "\\12", "\\01", "\\0", "a(?i)b",
    "(?i)a|B", "(?i:A)b", "(?-i)a", "(?is)a.", "(?U)a+?", "(?m)a$", "a$", "\\Aa", "a\\z",
    "\\pL+", "[[:alpha:]]+", "[[:^alpha:]]+", "\\Qa.b\\E", "(?P<n>a)", "(?<n>a)", "\\d+", "\\w+",
    "\\s", "\\b\\w+\\b", "[\\d]+", "[^\\n]+", "\\v", "[]a]", "[^]a]+", "[a[]", "a*?", "(?:)",
    "(|a)", "a||b", "(?i)k", "\\S+", "\\W", "\\B", "[[:word:]]+", "\\pN", "é+", "(?)a", "\\_",
    "(?i)(?-i)A|a", "((?i)a)A", "(?i)a(?-i:B)b", "(?P<a1>x)", "\\p{^L}", "\\PL+", "[\\PL]+",
    "\\p{Lu}\\p{Ll}*", "[\\s\\S]", "(?P<n>a)(?P<n>b)", "[a-c&&b]", "a{2,3}?", "a{001}",
    "x{2}{", "[\\d-z]+", "a{,}", "[-a]", "[a-]+", "\\.\\*\\+\\?",
]  # fmt: skip
#: zoo patterns that match the empty string: as separators onnxruntime reads past the text with
#: them (see test_tokenizer_empty_separator_matches), so they are compared as tokenexp only
EMPTY_MATCHING = {"(?:)", "(|a)", "a*?", "\\B"}
PATTERN_ZOO_REJECTED = [
    "a{1001}", "\\u0061", "\\8", "\\1", "(a)\\1", "(?u)\\b\\w\\w+\\b", "a(?=b)", "a(?!b)",
    "(?<=a)b", "a\\Z", "a*+", "a++", "a{2}+", "(?P=n)", "(?#c)a", "(?>a)", "\\e", "\\h", "\\R",
    "\\X", "\\G", "(?x)a b", "(?a)a", "\\N{LATIN SMALL LETTER A}", "[a-\\d]", "[\\Q]\\E]",
    "a**", "*a", "a{2,1}", "[z-a]", "\\é", "(?i-)a", "\\E", "a{2}{3}", "[\\b]", "[\\z]",
    "[\\A]", "(a", "a)", "[a", "\\", "[[:foo:]]",
]  # fmt: skip
ZOO_TEXTS = [
    "aaa bAb xa b aaaa ab a{,2} A_",
    "ab a\n",
    "a.b ]a[ 123 ñé Ωμ ſs Kk\x0b\x1b é\nab",
    "\x00\x01b",
]


@pytest.mark.parametrize("pattern", PATTERN_ZOO_SAME)
def test_tokenizer_re2_syntax(pattern):
    """Where RE2 and Python's re read a pattern differently, the kernel follows RE2."""
    x = _strings(ZOO_TEXTS)
    check("Tokenizer", [x], {"mark": 0, "pad_value": "#", "mincharnum": 1, "tokenexp": pattern})
    if pattern not in EMPTY_MATCHING:
        attrs = {"mark": 1, "pad_value": "", "mincharnum": 1, "separators": [pattern]}
        check("Tokenizer", [x], attrs)


@pytest.mark.parametrize("pattern", PATTERN_ZOO_REJECTED)
def test_tokenizer_re2_rejections(pattern):
    """Patterns RE2 rejects (Python's re accepts many of them) fail at session creation."""
    check_rejected("Tokenizer", [_strings(["ab"])],
                   {"mark": 0, "pad_value": "#", "mincharnum": 1, "tokenexp": pattern})  # fmt: skip


@pytest.mark.parametrize("pattern", ["\\p{Greek}+", "\\C"])
def test_tokenizer_refuses_what_re_cannot_say(pattern):
    """RE2 accepts these, Python's re has no equivalent: a typed error names the construct."""
    attrs = {"mark": 0, "pad_value": "#", "mincharnum": 1, "tokenexp": pattern}
    model, _ = _node("Tokenizer", [_strings(["ab"])], attrs)
    with pytest.raises(ort_core.errors.NotImplemented, match=r"Tokenizer.*RE2 pattern"):
        ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    "attrs",
    [{"pad_value": "#", "mincharnum": 1, "tokenexp": "a"},
     {"mark": 0, "mincharnum": 1, "tokenexp": "a"},
     {"mark": 0, "pad_value": "#", "tokenexp": "a"},
     {"mark": 0, "pad_value": "#", "mincharnum": 0, "tokenexp": "a"},
     {"mark": 0, "pad_value": "#", "mincharnum": 2, "tokenexp": "."},
     {"mark": 0, "pad_value": "#", "mincharnum": 2, "separators": [""]},
     {"mark": 0, "pad_value": "#", "mincharnum": 1},
     {"mark": 0, "pad_value": "#", "mincharnum": 1, "tokenexp": ""}],
)  # fmt: skip
def test_tokenizer_attribute_errors(attrs):
    check_rejected("Tokenizer", [_strings(["ab"])], attrs)


def test_tokenizer_separators_win_over_tokenexp():
    attrs = {"mark": 0, "pad_value": "#", "mincharnum": 1, "separators": [" "], "tokenexp": "b"}
    got = check("Tokenizer", [_strings(["a b", "cb"])], attrs)
    assert got.tolist() == [["a", "b"], ["cb", "#"]]


def test_tokenizer_rank_error():
    check_rejected("Tokenizer", [_strings(["a"] * 8, (2, 2, 2))],
                   {"mark": 0, "pad_value": "#", "mincharnum": 1, "separators": [" "]},
                   at_run=True)  # fmt: skip


# -- CDist -----------------------------------------------------------------------------------------
def _check_cdist(a, b, metric):
    """float32: within 1e-5 relative, or within the rounding onnxruntime's own expansion
    |a|^2 + |b|^2 - 2 a.b makes (a few ulps of the squared norms) where distances are tiny."""
    model, feeds = _node("CDist", [a, b], {"metric": metric})
    (expected,) = _ort_session(model).run(None, feeds)
    (got,) = run_cpu(model, feeds)
    assert got.dtype == expected.dtype and got.shape == expected.shape

    def largest_square(x):
        return (x.astype(np.float64) ** 2).sum(1).max(initial=0)

    noise = 16 * np.finfo(a.dtype).eps * (largest_square(a) + largest_square(b))
    rtol = 1e-5 if a.dtype == np.float32 else 1e-12
    if metric == "euclidean":
        np.testing.assert_allclose(got.astype(np.float64) ** 2, expected.astype(np.float64) ** 2,
                                   rtol=rtol, atol=noise)  # fmt: skip
        clear = expected > np.sqrt(noise) * 100
        np.testing.assert_allclose(got[clear], expected[clear], rtol=rtol)
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=noise)
    return got


@pytest.mark.parametrize("seed", range(24))
def test_cdist_random(seed):
    rng = np.random.default_rng(seed)
    dtype = (np.float32, np.float64)[seed % 2]
    metric = ("sqeuclidean", "euclidean")[(seed // 2) % 2]
    n, m, k = (int(v) for v in rng.integers([0, 0, 1], [9, 9, 40]))
    scale = 10.0 ** rng.integers(-2, 3)
    a = (rng.standard_normal((n, k)) * scale).astype(dtype)
    b = (rng.standard_normal((m, k)) * scale).astype(dtype)
    if n and m:  # some rows of B repeat rows of A: distances of zero
        b[: min(n, m) // 2] = a[: min(n, m) // 2]
    _check_cdist(a, b, metric)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_cdist_offset_data(metric):
    """Points far from the origin: the expansion loses digits; both runtimes lose the same ones
    up to rounding."""
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((6, 5)) + 50).astype(np.float32)
    b = (rng.standard_normal((7, 5)) + 50).astype(np.float32)
    _check_cdist(a, b, metric)


def test_cdist_default_metric_is_sqeuclidean():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((2, 4))
    check("CDist", [a, b.astype(np.float32)], {}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shapes,attrs,at_run",
    [(((3, 4), (2, 4)), {"metric": "cityblock"}, False),
     (((3, 4), (2, 4)), {"metric": "cosine"}, False),
     (((3, 0), (2, 0)), {"metric": "euclidean"}, True),
     (((3, 4), (2, 3)), {"metric": "euclidean"}, True),
     (((4,), (2, 4)), {"metric": "euclidean"}, True),
     (((3, 4), (4,)), {"metric": "sqeuclidean"}, True)],
)  # fmt: skip
def test_cdist_errors(shapes, attrs, at_run):
    a, b = (np.ones(s, np.float32) for s in shapes)
    check_rejected("CDist", [a, b], attrs, at_run=at_run)


def test_cdist_mixed_types_rejected():
    check_rejected("CDist", [np.ones((2, 3), np.float32), np.ones((2, 3))], {})


# -- MurmurHash3 -----------------------------------------------------------------------------------
HASHED = [np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64, object]


def _random_keys(rng, dtype, shape) -> np.ndarray:
    size = int(np.prod(shape))
    if dtype is object:
        texts = ["".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), rng.integers(0, 40)))
                 for _ in range(size)]  # fmt: skip
        return _strings(texts, shape)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        raw = rng.integers(0, 256, size * dt.itemsize, dtype=np.uint8).view(dt)  # any bits: nan too
        raw[: size // 2] = (rng.standard_normal(size // 2) * 1e3).astype(dt)
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dt)
        raw[: min(size, 5)] = special[: min(size, 5)]
        return raw.reshape(shape)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size, dtype=dt, endpoint=True).reshape(shape)


@pytest.mark.parametrize("dtype", HASHED, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("seed", range(6))
def test_murmurhash3_random(dtype, seed):
    rng = np.random.default_rng(seed)
    shape = [(), (0,), (17,), (3, 5), (2, 0, 3), (4, 1, 6)][seed]
    x = _random_keys(rng, dtype, shape)
    attrs = {"seed": int(rng.integers(-(2**40), 2**40)), "positive": [0, 1, 2][seed % 3]}
    if seed == 0:
        attrs = {}  # onnxruntime's defaults: seed 0, positive 1
    check("MurmurHash3", [x], attrs)


def test_murmurhash3_strings_of_every_tail_length():
    """Lengths 0 to 12 bytes (every tail, several blocks) and multi-byte UTF-8, in one tensor."""
    texts = ["", "a", "ab", "abc", "abcd", "abcde", "é", "éé", "漢", "😀", "a😀b", "x" * 12,
             "b\x00c", "y" * 11]  # fmt: skip
    for seed in (0, 1, 2**31, 2**32 - 1):
        check("MurmurHash3", [_strings(texts)], {"seed": seed, "positive": 0})


def test_murmurhash3_rejects_other_types():
    check_rejected("MurmurHash3", [np.ones(3, np.int16)], {})
    check_rejected("MurmurHash3", [np.ones(3, np.float16)], {})


# -- whole scikit-learn models converted by skl2onnx -----------------------------------------------
def _compare_model(onx: onnx.ModelProto, feeds: dict, rtol: float = 1e-5, atol: float = 1e-6):
    """Every output of the converted model on onnxruntime and on ort-core."""
    expected = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = expected.run(None, feeds)
    sess = ort_core.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"output {i}")
    return got


CORPUS = [
    "The quick brown fox, jumps over the lazy dog.",
    "Le café était très bon; merci!",
    "",
    "fox fox FOX dog-dog dog_dog 123 4567",
    "Ωμέγα and alpha: beta? gamma! (delta)",
    "   spaces    everywhere   ",
    "a b c d e f g",
]


#: StringNormalizer's locale: onnxruntime's default (en_US.UTF-8) is often not installed
LOCALE = "C.UTF-8"


@pytest.fixture(scope="module")
def sk():
    pytest.importorskip("sklearn")
    return pytest.importorskip("skl2onnx")


@pytest.mark.parametrize(
    "pattern,ngrams,options",
    [(r"[a-zA-Z]{2,}", (1, 1), {}),
     (r"\b\w+\b", (1, 2), {}),
     (r"[^\s,.;:!?()]+", (1, 2), {}),
     (r"(?u)\b\w\w+\b", (1, 1), {"separators": [" ", "[.]", ",", ";", ":", "!", "\\?"]}),
     (r"(?u)\b\w\w+\b", (1, 1), {"tokenexp": r"[\pL\pN]+"})],
)  # fmt: skip
def test_skl2onnx_tfidf_vectorizer(sk, pattern, ngrams, options):
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = TfidfVectorizer(token_pattern=pattern, ngram_range=ngrams, lowercase=True)
    model.fit(CORPUS)
    onx = sk.convert_sklearn(
        model,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(model): {**options, "locale": LOCALE}},
        target_opset=17,
    )
    ops = {(n.domain, n.op_type) for n in onx.graph.node}
    assert (MS, "Tokenizer") in ops
    feeds = {"text": np.array(CORPUS + ["unseen words only", "fox"]).reshape(-1, 1)}
    _compare_model(onx, feeds)


def test_skl2onnx_count_vectorizer_separators(sk):
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import CountVectorizer

    model = CountVectorizer(ngram_range=(1, 2)).fit(CORPUS)
    seps = [" ", "[.]", ",", ";", ":", "!", "\\?", "\\(", "\\)"]
    onx = sk.convert_sklearn(
        model,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(model): {"separators": seps, "locale": LOCALE}},
        target_opset=17,
    )
    _compare_model(onx, {"text": np.array(CORPUS).reshape(-1, 1)})


@pytest.fixture(scope="module")
def iris():
    """Iris with a little noise: its one-decimal measurements tie many distances, and which of
    two tied neighbours wins then depends on the last bit of each runtime's rounding."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x + np.random.default_rng(1).normal(0, 1e-3, x.shape), y


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skl2onnx_knn_classifier(sk, iris, weights, dtype):
    from sklearn.neighbors import KNeighborsClassifier

    x, y = iris
    model = KNeighborsClassifier(n_neighbors=5, weights=weights).fit(x, y)
    onx = sk.to_onnx(
        model, x[:1].astype(dtype), options={id(model): {"optim": "cdist", "zipmap": False}},
        target_opset=17,
    )  # fmt: skip
    assert (MS, "CDist") in {(n.domain, n.op_type) for n in onx.graph.node}
    rng = np.random.default_rng(0)
    queries = (x[::5] + rng.normal(0, 0.05, x[::5].shape)).astype(dtype)
    _, proba = _compare_model(onx, {"X": queries}, rtol=1e-4, atol=1e-5)
    if weights == "uniform":  # the converter weighs distances its own way; ties of votes too
        np.testing.assert_allclose(proba, model.predict_proba(queries), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skl2onnx_knn_regressor(sk, iris, dtype):
    from sklearn.neighbors import KNeighborsRegressor

    x, _ = iris
    y = x[:, 0] * 2 - x[:, 3]
    model = KNeighborsRegressor(n_neighbors=3).fit(x[:, 1:], y)
    onx = sk.to_onnx(model, x[:1, 1:].astype(dtype), options={id(model): {"optim": "cdist"}},
                     target_opset=17)  # fmt: skip
    assert (MS, "CDist") in {(n.domain, n.op_type) for n in onx.graph.node}
    queries = (x[::5, 1:] + 0.01).astype(dtype)
    (pred,) = _compare_model(onx, {"X": queries}, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pred.ravel(), model.predict(queries), rtol=1e-4)


@pytest.mark.parametrize("alternate_sign", [True, False])
@pytest.mark.parametrize("n_cols", [1, 3])
def test_skl2onnx_feature_hasher(sk, alternate_sign, n_cols):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.feature_extraction import FeatureHasher

    words = ["z0", "o11", "d222", "q4444", "t333", "c5555", "é", "😀 x", "", "fox", "dog", "Ω"]
    data = np.array(words).reshape(-1, n_cols)
    model = FeatureHasher(n_features=16, alternate_sign=alternate_sign, input_type="string")
    model.fit(data)
    onx = sk.to_onnx(
        model,
        initial_types=[("X", StringTensorType([None, n_cols]))],
        final_types=[("Y", FloatTensorType([None, 16]))],
        target_opset=17,
    )
    assert (MS, "MurmurHash3") in {(n.domain, n.op_type) for n in onx.graph.node}
    (got,) = _compare_model(onx, {"X": data})
    np.testing.assert_array_equal(got, model.transform(data).toarray().astype(np.float32))
