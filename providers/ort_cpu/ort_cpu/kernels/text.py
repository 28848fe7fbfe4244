"""String kernels (StringNormalizer, StringConcat, RegexFullMatch, StringSplit, TfIdfVectorizer) and
the data-plumbing operators of the ai.onnx.ml domain (Binarizer, Scaler, Normalizer, Imputer,
LabelEncoder, CategoryMapper, ArrayFeatureExtractor, OneHotEncoder, FeatureVectorizer, ZipMap,
DictVectorizer, CastMap). Strings are numpy object arrays of Python ``str``."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.ir import tensor_dtype
from ort_core.provider import KernelUnsupported

from ._registry import builder, kernel

ML = "ai.onnx.ml"
STRING = np.dtype(object)
_map_strings = np.frompyfunc(lambda f, s: f(s), 2, 1)


def _strings(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``shape`` filled from an iterable of str."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# -- strings ---------------------------------------------------------------------------------------
@builder("StringNormalizer", since=10, dtypes={0: {STRING}})
def string_normalizer(info):
    action = info.attr("case_change_action", "NONE")
    if action not in ("NONE", "LOWER", "UPPER"):
        raise KernelUnsupported(f"case_change_action {action!r}: use NONE, LOWER or UPPER")
    sensitive = bool(info.attr("is_case_sensitive", 0))
    fold = (lambda s: s) if sensitive else str.lower
    stop = {fold(w) for w in info.attr("stopwords", [])}
    change = {"NONE": None, "LOWER": str.lower, "UPPER": str.upper}[action]

    def run(x):
        if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
            raise InvalidArgument(f"StringNormalizer takes a [C] or [1, C] tensor, got {x.shape}")
        kept = [s for s in x.reshape(-1) if fold(s) not in stop]
        if change is not None:
            kept = [change(s) for s in kept]
        if not kept:
            kept = [""]
        return _strings(kept, (len(kept),) if x.ndim == 1 else (1, len(kept)))

    return run


@kernel("StringConcat", since=20, dtypes={0: {STRING}, 1: {STRING}})
def string_concat(x, y):
    return np.asarray(np.add(x, y), dtype=object)


# RE2 syntax that Python's re spells differently. RE2 is otherwise close to a subset of re; the
# remaining differences: RE2 has no backreferences or lookaround (re accepts them), and RE2's (?i)
# folds a few Unicode cases that re does not.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# RE2's \d \w \s \b are ASCII-only; re's are Unicode-aware on str patterns.
_ASCII_ESCAPES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}


def _re2_escape(c: str, in_class: bool) -> str:
    """The re spelling of RE2's escape ``\\c``."""
    if c in "pPC":
        raise KernelUnsupported(f"RE2 escape \\{c} has no Python re equivalent")
    low = c.lower()
    if low in _ASCII_ESCAPES and (not in_class or c == low):
        chars = _ASCII_ESCAPES[low]
        return chars if in_class else f"[{'^' if c != low else ''}{chars}]"
    if c in "bB" and not in_class:
        return f"(?a:\\{c})"
    if c == "z" and not in_class:
        return "\\Z"
    return "\\" + c


def _re2_to_python(pattern: str) -> str:
    """Translate RE2-only spellings into re: ASCII \\d \\w \\s \\b, ``[[:alpha:]]`` classes,
    ``\\z``, ``\\Q...\\E`` and ``(?<name>...)``."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern.startswith("Q", i + 1):
            end = pattern.find("\\E", i + 2)
            end = len(pattern) if end < 0 else end
            out.append(re.escape(pattern[i + 2 : end]))
            i = end + 2
        elif c == "\\" and i + 1 < len(pattern):
            out.append(_re2_escape(pattern[i + 1], in_class))
            i += 2
        elif in_class and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end > 0 else ""
            if name not in _POSIX_CLASSES:
                raise KernelUnsupported(f"RE2 class [:{name}:] is not supported")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
        elif c == "[" and not in_class:
            in_class = True
            i += 1
            out.append("[")
            if pattern.startswith("^", i):  # a ']' right after '[' or '[^' is a literal
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
        else:
            if c == "]" and in_class:
                in_class = False
            elif (
                not in_class and pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in "=!"
            ):
                out.append("(?P")
                i += 2
                continue
            out.append(c)
            i += 1
    return "".join(out)


@builder("RegexFullMatch", since=20, dtypes={0: {STRING}})
def regex_full_match(info):
    pattern = info.attr("pattern", "")
    try:
        regex = re.compile(_re2_to_python(pattern))
    except re.error as e:
        raise KernelUnsupported(f"pattern {pattern!r} is not a valid regex ({e})") from e
    match = np.frompyfunc(lambda s: regex.fullmatch(s) is not None, 1, 1)

    def run(x):
        return np.asarray(match(x), dtype=np.bool_).reshape(x.shape)

    return run


@kernel("StringSplit", since=20, dtypes={0: {STRING}})
def string_split(x, delimiter="", maxsplit=-1):
    sep = delimiter or None
    parts = [s.split(sep, maxsplit) for s in x.reshape(-1)]
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    width = int(counts.max()) if counts.size else 0
    y = np.full((len(parts), width), "", dtype=object)
    for row, p in zip(y, parts, strict=True):
        row[: len(p)] = p
    return y.reshape(x.shape + (width,)), counts


# -- TfIdfVectorizer -------------------------------------------------------------------------------
def _tfidf_pool(info) -> tuple[dict[Any, int], list[dict[tuple[int, ...], int]]]:
    """Token ids (1-based) of the pool's tokens, and per n-gram length a map ids -> pool index."""
    strings, ints = info.attr("pool_strings"), info.attr("pool_int64s")
    if (strings is None) == (ints is None):
        raise KernelUnsupported("TfIdfVectorizer needs exactly one of pool_strings, pool_int64s")
    pool = list(strings if strings is not None else ints)
    starts = list(info.attr("ngram_counts", [])) + [len(pool)]
    vocab: dict[Any, int] = {}
    ngrams: list[dict[tuple[int, ...], int]] = [{}]
    index = 0
    for n, (lo, hi) in enumerate(zip(starts[:-1], starts[1:], strict=True), start=1):
        table: dict[tuple[int, ...], int] = {}
        for j in range(lo, hi, n):
            ids = tuple(vocab.setdefault(t, len(vocab) + 1) for t in pool[j : j + n])
            table[ids] = index
            index += 1
        ngrams.append(table)
    return vocab, ngrams


@builder("TfIdfVectorizer", since=9)
def tfidf_vectorizer(info):
    mode = info.attr("mode", "TF")
    if mode not in ("TF", "IDF", "TFIDF"):
        raise KernelUnsupported(f"mode {mode!r}: use TF, IDF or TFIDF")
    vocab, ngrams = _tfidf_pool(info)
    n_grams = sum(len(t) for t in ngrams)
    coords = np.asarray(info.attr("ngram_indexes", list(range(n_grams))), dtype=np.int64)
    weights = info.attr("weights")
    weights = np.ones(len(coords)) if weights is None else np.asarray(weights, np.float64)
    lo, hi = info.attr("min_gram_length", 1), info.attr("max_gram_length", 1)
    max_skip = info.attr("max_skip_count", 0)
    width = int(coords.max()) + 1 if coords.size else 0
    lookup = np.frompyfunc(lambda t: vocab.get(t, 0), 1, 1)

    def count_row(ids: list[int]) -> np.ndarray:
        counts = np.zeros(n_grams, dtype=np.float64)
        for n in range(lo, min(hi, len(ngrams) - 1) + 1):
            table = ngrams[n]
            for skip in range(max_skip + 1 if n > 1 else 1):
                step = skip + 1
                span = (n - 1) * step
                for start in range(len(ids) - span):
                    key = tuple(ids[start : start + span + 1 : step])
                    j = table.get(key)
                    if j is not None:
                        counts[j] += 1
        return counts

    def run(x):
        if x.ndim not in (1, 2):
            raise InvalidArgument(f"TfIdfVectorizer takes a [C] or [N, C] tensor, got {x.shape}")
        rows = x if x.ndim == 2 else x.reshape(1, -1)
        ids = lookup(rows).astype(np.int64) if rows.size else np.zeros(rows.shape, np.int64)
        counts = np.stack([count_row(r.tolist()) for r in ids]) if len(ids) else None
        y = np.zeros((len(ids), width), dtype=np.float32)
        if counts is not None and n_grams:
            if mode == "IDF":
                counts = (counts > 0).astype(np.float64)
            if mode != "TF":
                counts = counts * weights
            y[:, coords] = counts
        return y.reshape(width) if x.ndim == 1 else y

    return run


# -- ai.onnx.ml data plumbing ----------------------------------------------------------------------
@kernel("Binarizer", since=1, domain=ML)
def binarizer(x, threshold=0.0):
    return np.where(x > threshold, 1, 0).astype(x.dtype)


@kernel("Scaler", since=1, domain=ML)
def scaler(x, offset=None, scale=None):
    off = np.asarray(offset if offset is not None else [0.0], dtype=np.float32)
    mul = np.asarray(scale if scale is not None else [1.0], dtype=np.float32)
    return ((x.astype(np.float32) - off) * mul).astype(np.float32)


@kernel("Normalizer", since=1, domain=ML)
def normalizer(x, norm="MAX"):
    v = np.atleast_2d(x).astype(np.float32)
    if norm == "MAX":
        div = v.max(axis=1, keepdims=True)
    elif norm == "L1":
        div = np.abs(v).sum(axis=1, keepdims=True)
    elif norm == "L2":
        div = np.sqrt((v * v).sum(axis=1, keepdims=True))
    else:
        raise InvalidArgument(f"Normalizer: norm {norm!r} is not MAX, L1 or L2")
    y = np.divide(v, div, out=v.copy(), where=div != 0)
    return y.reshape(x.shape)


@kernel("Imputer", since=1, domain=ML)
def imputer(
    x,
    imputed_value_floats=None,
    imputed_value_int64s=None,
    replaced_value_float=0.0,
    replaced_value_int64=0,
):
    if x.dtype.kind == "f":
        values, target = imputed_value_floats, replaced_value_float
    else:
        values, target = imputed_value_int64s, replaced_value_int64
    if not values:
        raise InvalidArgument("Imputer: the imputed values for this input type are missing")
    fill = np.asarray(values).astype(x.dtype)
    mask = np.isnan(x) if x.dtype.kind == "f" and np.isnan(target) else x == target
    return np.where(mask, fill, x).astype(x.dtype)


def _lookup_kernel(keys: np.ndarray, values: np.ndarray, default: Any, out_dtype: np.dtype):
    """A kernel mapping each element found in ``keys`` to ``values`` and others to ``default``."""
    if keys.dtype.kind == "f":
        nan = np.isnan(keys)
        nan_value = values[nan][-1] if nan.any() else default
        table = dict(zip(keys[~nan].tolist(), values[~nan].tolist(), strict=True))
    else:
        nan_value = default
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))

    def get(k):
        if isinstance(k, float) and math.isnan(k):
            return nan_value
        return table.get(k, default)

    mapper = np.frompyfunc(get, 1, 1)

    def run(x):
        if x.size == 0:
            return np.empty(x.shape, dtype=out_dtype)
        return np.asarray(mapper(x.astype(object)), dtype=out_dtype).reshape(x.shape)

    return run


_TYPED_ATTRS = (  # (suffix of keys_*/values_*, default_* attribute, its default, numpy dtype)
    ("strings", "default_string", "_Unused", STRING),
    ("int64s", "default_int64", -1, np.dtype(np.int64)),
    ("floats", "default_float", -0.0, np.dtype(np.float32)),
)


def _label_encoder_attrs(info, side: str) -> tuple[np.ndarray, Any, np.dtype]:
    """(array, default, dtype) of one side ('keys' or 'values') of a LabelEncoder since 2."""
    tensor = info.attr(f"{side}_tensor")
    found = [(info.attr(f"{side}_{sfx}"), d, dv, dt) for sfx, d, dv, dt in _TYPED_ATTRS]
    found = [f for f in found if f[0] is not None]
    if (tensor is not None) + len(found) != 1:
        raise KernelUnsupported(f"LabelEncoder needs exactly one {side}_* attribute")
    if tensor is not None:
        arr = np.asarray(tensor).reshape(-1)
        default = info.attr("default_tensor")
        if default is None:
            default = "_Unused" if arr.dtype == object else -0.0 if arr.dtype.kind == "f" else -1
        else:
            default = np.asarray(default).reshape(-1)[0]
        return arr, default, arr.dtype
    values, default_name, default_value, dtype = found[0]
    return np.asarray(values, dtype=dtype), info.attr(default_name, default_value), dtype


def _two_way(to_int, to_str):
    """A kernel choosing between two lookups by the input's element type (string or int)."""

    def run(x):
        return to_int(x) if x.dtype == STRING else to_str(x)

    return run


@builder("LabelEncoder", since=1, domain=ML)
def label_encoder_1(info):
    classes = np.asarray(info.attr("classes_strings", []), dtype=object)
    positions = np.arange(len(classes), dtype=np.int64)
    return _two_way(
        _lookup_kernel(classes, positions, info.attr("default_int64", -1), np.int64),
        _lookup_kernel(positions, classes, info.attr("default_string", "_Unused"), STRING),
    )


@builder("LabelEncoder", since=(2, 4), domain=ML)
def label_encoder(info):
    keys, _, _ = _label_encoder_attrs(info, "keys")
    values, default, dtype = _label_encoder_attrs(info, "values")
    if len(keys) != len(values):
        raise KernelUnsupported("LabelEncoder: keys and values have different lengths")
    return _lookup_kernel(keys, values, default, dtype)


@builder("CategoryMapper", since=1, domain=ML)
def category_mapper(info):
    strings = np.asarray(info.attr("cats_strings", []), dtype=object)
    ints = np.asarray(info.attr("cats_int64s", []), dtype=np.int64)
    if len(strings) != len(ints):
        raise KernelUnsupported("CategoryMapper: cats_strings and cats_int64s differ in length")
    return _two_way(
        _lookup_kernel(strings, ints, info.attr("default_int64", -1), np.int64),
        _lookup_kernel(ints, strings, info.attr("default_string", "_Unused"), STRING),
    )


@kernel("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(x, indices):
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -x.shape[-1] or idx.max() >= x.shape[-1]):
        raise InvalidArgument(f"ArrayFeatureExtractor: index out of range [0, {x.shape[-1]})")
    y = np.take(x, idx, axis=-1)
    return y.reshape(1, -1) if x.ndim == 1 else y


@builder("OneHotEncoder", since=1, domain=ML)
def one_hot_encoder(info):
    strings, ints = info.attr("cats_strings"), info.attr("cats_int64s")
    if (strings is None) == (ints is None):
        raise KernelUnsupported("OneHotEncoder needs exactly one of cats_strings, cats_int64s")
    cats = list(strings if strings is not None else ints)
    position = {c: i for i, c in reversed(list(enumerate(cats)))}
    zeros = bool(info.attr("zeros", 1))
    find = np.frompyfunc(lambda v: position.get(v, -1), 1, 1)

    def run(x):
        keys = x if x.dtype == object else x.astype(np.int64)
        pos = np.asarray(find(keys.astype(object)), dtype=np.int64).reshape(x.shape)
        if not zeros and (pos < 0).any():
            raise InvalidArgument("OneHotEncoder: a value is not among the categories (zeros=0)")
        return (pos[..., None] == np.arange(len(cats))).astype(np.float32)

    return run


@kernel("FeatureVectorizer", since=1, domain=ML)
def feature_vectorizer(*xs, inputdimensions=None):
    dims = list(inputdimensions or [x.shape[-1] if x.ndim else 1 for x in xs])
    rows = max((x.shape[0] if x.ndim > 1 else 1) for x in xs) if xs else 1
    out = np.zeros((rows, sum(dims)), dtype=np.float32)
    col = 0
    for x, d in zip(xs, dims, strict=False):
        part = x.reshape(x.shape[0] if x.ndim > 1 else 1, -1)[:, :d]
        out[:, col : col + part.shape[1]] = part
        col += d
    return out


# -- maps (dicts) ----------------------------------------------------------------------------------
@kernel("ZipMap", since=1, domain=ML)
def zip_map(x, classlabels_int64s=None, classlabels_strings=None):
    labels = classlabels_strings if classlabels_strings is not None else classlabels_int64s
    if labels is None:
        raise InvalidArgument("ZipMap needs classlabels_strings or classlabels_int64s")
    rows = np.atleast_2d(x)
    if rows.shape[-1] != len(labels):
        raise InvalidArgument(f"ZipMap: {rows.shape[-1]} columns for {len(labels)} labels")
    return [dict(zip(labels, r, strict=True)) for r in rows.tolist()]


def _map_value_dtype(type_proto) -> np.dtype | None:
    """The numpy dtype of a map type's values, or None when unknown."""
    if type_proto is None or type_proto.WhichOneof("value") != "map_type":
        return None
    return tensor_dtype(type_proto.map_type.value_type)


@builder("DictVectorizer", since=1, domain=ML)
def dict_vectorizer(info):
    strings, ints = info.attr("string_vocabulary"), info.attr("int64_vocabulary")
    if (strings is None) == (ints is None):
        raise KernelUnsupported("DictVectorizer needs exactly one of the *_vocabulary attributes")
    vocab = list(strings if strings is not None else ints)
    position = {k: i for i, k in enumerate(vocab)}
    known = info.output_dtype(0) or _map_value_dtype(info.input_types[0])

    def run(x):
        dtype = known or (np.asarray(list(x.values())).dtype if x else np.dtype(np.float32))
        fill = "" if dtype == STRING else 0
        out = np.full((1, len(vocab)), fill, dtype=dtype)
        for k, v in x.items():
            if k in position:
                out[0, position[k]] = v
        return out

    return run


@kernel("CastMap", since=1, domain=ML)
def cast_map(x, cast_to="TO_FLOAT", map_form="DENSE", max_map=1):
    dtype = {"TO_FLOAT": np.float32, "TO_STRING": object, "TO_INT64": np.int64}.get(cast_to)
    if dtype is None:
        raise InvalidArgument(f"CastMap: cast_to {cast_to!r} is not TO_FLOAT, TO_STRING, TO_INT64")
    keys = sorted(x)
    convert = (lambda v: str(v)) if dtype is object else (lambda v: float(v))
    if map_form == "DENSE":
        values = [convert(x[k]) for k in keys]
        return np.asarray(values, dtype=dtype).reshape(1, len(keys))
    out = np.full((1, max_map), "0" if dtype is object else 0, dtype=dtype)
    for k in keys:
        if not 0 <= k < max_map:
            raise InvalidArgument(f"CastMap: key {k} is outside [0, {max_map}) in SPARSE form")
        out[0, k] = convert(x[k])
    return out
