"""String kernels (StringNormalizer, StringConcat, RegexFullMatch, StringSplit, TfIdfVectorizer).
Strings are numpy object arrays of Python ``str``. The ai.onnx.ml operators live in ``ml.py``."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
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
