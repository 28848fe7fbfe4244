"""com.microsoft contrib kernels that scikit-learn models converted by skl2onnx use: Tokenizer (text
vectorizers), CDist (nearest neighbours, Gaussian processes, kernel PCA) and MurmurHash3
(FeatureHasher), with onnxruntime's semantics.

Tokenizer's separators and tokenexp are RE2 patterns searched in RE2's leftmost-longest mode.
:func:`re2_search` brings a pattern into Python's ``re`` (and refuses, naming the construct, what
RE2 rejects or ``re`` cannot say); :class:`LongestMatch` finds leftmost-longest matches with the
leftmost-first engine of ``re``.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from functools import cache, lru_cache

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.provider import KernelUnsupported

from ._registry import builder
from .text import _POSIX_CLASSES, _re2_to_python

MS = "com.microsoft"
STRING = np.dtype(object)


# -- RE2 patterns in Python's re -------------------------------------------------------------------
_RE2_MAX_REPEAT = 1000  # RE2 rejects larger repetition counts
_OCTAL = "01234567"
_REPEAT = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
_FLAGS = re.compile(r"\(\?([A-Za-z-]*)([:)])")
_GROUP_NAME = re.compile(r"\(\?P?<(\w+)>")
_MAX_CODE_POINT = 0x10FFFF


def _repetition(pattern: str, i: int) -> re.Match[str] | None:
    """The ``{n}``, ``{n,}`` or ``{n,m}`` at ``i``, or None where RE2 reads a literal brace
    (anything else, ``{,m}`` and numbers with a leading zero included)."""
    m = _REPEAT.match(pattern, i)
    if m is None or any(len(n) > 1 and n[0] == "0" for n in (m.group(1), m.group(3) or "")):
        return None
    return m


def _refuse(construct: str, pattern: str) -> KernelUnsupported:
    return KernelUnsupported(f"RE2 pattern {pattern!r}: {construct}")


def _literal(ch: str) -> str:
    """``ch`` as a literal that RE2 and Python's re both read as itself, in or out of a class."""
    cp = ord(ch)
    if ch.isascii() and ch.isalnum():
        return ch
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    return "\\" + ch if cp < 0x80 else ch


def _class_body(ranges: list[tuple[int, int]]) -> str:
    """Code point ranges as the inside of a character class."""
    return "".join(
        _literal(chr(lo)) if lo == hi else f"{_literal(chr(lo))}-{_literal(chr(hi))}"
        for lo, hi in ranges
    )


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_CODE_POINT:
        out.append((nxt, _MAX_CODE_POINT))
    return out


def _ranges_of(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


@cache
def _ascii_ranges(body: str) -> tuple[tuple[int, int], ...]:
    """The ASCII code points of a class body (RE2's Perl and POSIX classes are ASCII-only)."""
    rx = re.compile(f"[{body}]")
    return tuple(_ranges_of([cp for cp in range(128) if rx.match(chr(cp))]))


@lru_cache(maxsize=1)
def _categories() -> dict[str, tuple[tuple[int, int], ...]]:
    """Code point ranges per Unicode general category (two letters), from Python's unicodedata."""
    cps: dict[str, list[int]] = {}
    for cp in range(_MAX_CODE_POINT + 1):
        cps.setdefault(unicodedata.category(chr(cp)), []).append(cp)
    return {cat: tuple(_ranges_of(v)) for cat, v in cps.items()}


def _category_ranges(name: str, pattern: str) -> list[tuple[int, int]]:
    """Ranges of a Unicode class RE2 knows by name: ``Any``, a general category (``L``, ``Lu``)."""
    if name == "Any":
        return [(0, _MAX_CODE_POINT)]
    cats = _categories()
    if len(name) == 1 and name.isupper():
        # RE2's one-letter groups; its C covers Cc Cf Co Cs, not the unassigned code points
        parts = [r for cat, rs in cats.items() if cat[0] == name and cat != "Cn" for r in rs]
        if parts:
            return _ranges_of([cp for lo, hi in sorted(parts) for cp in range(lo, hi + 1)])
    elif len(name) == 2 and name in cats and name != "Cn":
        return list(cats[name])
    raise _refuse(
        f"Unicode class \\p{{{name}}} is not supported (ort-core knows the general categories "
        "such as L, Lu, N, Nd, P, and Any, but no scripts); spell the characters as ranges",
        pattern,
    )


class _Scope:
    """One group level while normalizing: the inline flag groups ``(?i)`` opened in it (each is
    turned into a scoped group that must be closed and reopened around ``|``) and whether
    multi-line mode holds."""

    __slots__ = ("inline", "multiline")

    def __init__(self, multiline: bool) -> None:
        self.inline: list[str] = []
        self.multiline = multiline


class _Normalizer:
    """Rewrites an RE2 pattern into RE2 syntax that :func:`_re2_to_python` carries over to re with
    RE2's meaning; refuses what RE2 rejects but re accepts, and what re cannot express.

    It also notes whether re's first match is already the longest: true when the pattern has no
    alternation and at most one item of variable count, that item a single character (class)
    repeated greedily. Backtracking tries that count from the largest down, so the first count
    that leads to a match is the largest, and the match the longest.
    """

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.variable_items = 0
        self.first_is_longest = True
        self.after_group = False  # the last item was a group (a quantifier would repeat it)

    def run(self) -> str:
        p, out, stack = self.p, [], [_Scope(False)]
        i = 0
        while i < len(p):
            c = p[i]
            top = stack[-1]
            if c in "\\[":
                text, i = self.escape(i, in_class=False) if c == "\\" else self.char_class(i)
                out.append(text)
                self.after_group = False
                continue
            if c == "(":
                i = self.group(i, out, stack)
                continue
            if c == ")":
                if len(stack) == 1:
                    raise _refuse("unmatched ')'", p)
                out.append(")" * (len(top.inline) + 1))
                stack.pop()
                self.after_group = True
                i += 1
                continue
            if c == "|":
                out.append(")" * len(top.inline) + "|" + "".join(top.inline))
                self.first_is_longest = False
            elif c == "$":
                out.append("$" if top.multiline else "\\z")
            elif c == "{":
                m = _repetition(p, i)
                if m is None:  # a literal brace in RE2 (re may read {,n} or {01} as a repetition)
                    out.append("\\{")
                else:
                    lo, comma, hi = m.groups()
                    top_n = int(hi) if hi else int(lo)
                    if max(int(lo), top_n) > _RE2_MAX_REPEAT or (hi and int(hi) < int(lo)):
                        raise _refuse(f"bad repetition {m.group(0)} (RE2 allows up to 1000)", p)
                    out.append(m.group(0))
                    i = self.after_quantifier(m.end(), out, variable=bool(comma) and hi != lo)
                    continue
            elif c in "*+?":
                out.append(c)
                i = self.after_quantifier(i + 1, out, variable=True)
                continue
            else:
                out.append(c)
            self.after_group = False
            i += 1
        if len(stack) > 1:
            raise _refuse("missing ')'", p)
        out.append(")" * len(stack[0].inline))
        return "".join(out)

    def after_quantifier(self, i: int, out: list[str], variable: bool) -> int:
        lazy = self.p.startswith("?", i)
        if lazy:  # non-greedy: the same in longest-match mode
            out.append("?")
            i += 1
        if self.p.startswith(("+", "*", "?"), i) or _repetition(self.p, i):
            raise _refuse(f"bad repetition operator at {self.p[i - 1 : i + 1]!r}", self.p)
        if variable:
            self.variable_items += 1
        if self.after_group or (variable and lazy) or self.variable_items > 1:
            self.first_is_longest = False
        self.after_group = False
        return i

    def group(self, i: int, out: list[str], stack: list[_Scope]) -> int:
        """Every group becomes non-capturing (only the whole match is used); inline flags become
        scoped groups; U (ungreedy) is dropped since longest-match mode ignores greediness."""
        p, top = self.p, stack[-1]
        if not p.startswith("(?", i):
            out.append("(?:")
            stack.append(_Scope(top.multiline))
            return i + 1
        m = _GROUP_NAME.match(p, i)
        if m is not None:  # names do not matter (RE2 even accepts a name twice)
            out.append("(?:")
            stack.append(_Scope(top.multiline))
            return m.end()
        for start, what in (
            (("(?=", "(?!", "(?<=", "(?<!"), "lookaround assertions"),
            (("(?P=", "(?P>", "(?&"), "backreferences and recursion"),
            (("(?#",), "comment groups"),
            (("(?>",), "atomic groups"),
            (("(?(",), "conditional groups"),
        ):
            if p.startswith(start, i):
                raise _refuse(f"{what} are not RE2 syntax", p)
        m = _FLAGS.match(p, i)
        if m is None:
            raise _refuse(f"invalid group syntax at {p[i : i + 4]!r}", p)
        on, minus, off = m.group(1).partition("-")
        bad = sorted(set(on + off) - set("imsU"))
        if bad or (minus and not off):
            raise _refuse(f"invalid flags {m.group(0)!r} (RE2 flags: i, m, s, U)", p)
        multiline = ("m" in on or top.multiline) and "m" not in off
        py_on, py_off = on.replace("U", ""), off.replace("U", "")
        flags = py_on + (f"-{py_off}" if py_off else "")
        opener = f"(?{flags}:" if flags else "(?:"
        if m.group(2) == ":":
            stack.append(_Scope(multiline))
            out.append(opener)
        else:  # (?flags): in force to the end of the enclosing group, across its '|'
            top.multiline = multiline
            if flags:
                top.inline.append(opener)
                out.append(opener)
        return m.end()

    def escape(self, i: int, in_class: bool) -> tuple[str, int]:
        p = self.p
        if i + 1 >= len(p):
            raise _refuse("trailing backslash", p)
        c = p[i + 1]
        if c == "Q":
            if in_class:
                raise _refuse("\\Q...\\E inside a character class", p)
            end = p.find("\\E", i + 2)
            end = len(p) if end < 0 else end
            return "".join(_literal(ch) for ch in p[i + 2 : end]), min(end + 2, len(p))
        if c == "x":
            if p.startswith("{", i + 2):
                end = p.find("}", i + 3)
                digits = p[i + 3 : end] if end > 0 else ""
                nxt = end + 1
            else:
                digits, nxt = p[i + 2 : i + 4], i + 4
                digits = digits if len(digits) == 2 else ""
            if not digits or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise _refuse(f"invalid escape {p[i:nxt]!r}", p)
            if int(digits, 16) > _MAX_CODE_POINT:
                raise _refuse(f"code point {digits} out of range", p)
            return _literal(chr(int(digits, 16))), nxt
        if c in _OCTAL and (c == "0" or p[i + 2 : i + 3] in tuple(_OCTAL)):
            end = i + 2
            while end < min(i + 4, len(p)) and p[end] in _OCTAL:
                end += 1
            return _literal(chr(int(p[i + 1 : end], 8))), end
        if c.isdigit():
            raise _refuse(f"backreference \\{c} (RE2 has none)", p)
        if c in "pP":
            return self.unicode_class(i, in_class)
        if c in "DSW" and in_class:  # RE2's are ASCII-only; re's are not
            low = c.lower()
            body = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}[low]
            return _class_body(_complement(list(_ascii_ranges(body)))), i + 2
        if c in "bBAz" and in_class:
            raise _refuse(f"\\{c} inside a character class", p)
        if c in "dDsSwWbBAzafnrtv" or (c.isascii() and not c.isalnum()):
            return "\\" + c, i + 2
        raise _refuse(f"escape \\{c} is not RE2 syntax", p)

    def unicode_class(self, i: int, in_class: bool) -> tuple[str, int]:
        p = self.p
        negate = p[i + 1] == "P"
        if p.startswith("{", i + 2):
            end = p.find("}", i + 3)
            if end < 0:
                raise _refuse("missing '}' after \\p{", p)
            name, nxt = p[i + 3 : end], end + 1
        else:
            name, nxt = p[i + 2 : i + 3], i + 3
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        ranges = _category_ranges(name, p)
        if in_class:
            return _class_body(_complement(ranges) if negate else ranges), nxt
        return f"[{'^' if negate else ''}{_class_body(ranges)}]", nxt

    def char_class(self, i: int) -> tuple[str, int]:
        p = self.p
        out, j = ["["], i + 1
        if p.startswith("^", j):
            out.append("^")
            j += 1
        first = True
        while True:
            if j >= len(p):
                raise _refuse("missing ']'", p)
            c = p[j]
            if c == "]" and not first:
                out.append("]")
                return "".join(out), j + 1
            first = False
            if c == "\\":
                text, j = self.escape(j, in_class=True)
                out.append(text)
                continue
            if p.startswith("[:", j) and p.find(":]", j + 2) > 0:
                end = p.find(":]", j + 2)
                name = p[j + 2 : end]
                negate = name.startswith("^")
                body = _POSIX_CLASSES.get(name[1:] if negate else name)
                if body is None:
                    raise _refuse(f"unknown class [:{name}:]", p)
                ranges = list(_ascii_ranges(body))
                out.append(_class_body(_complement(ranges) if negate else ranges))
                j = end + 2
                continue
            # literal in both flavours; escaped where re would warn or read a set operation
            out.append("\\" + c if c in "[]&~|" else c)
            j += 1


def re2_search(pattern: str) -> LongestMatch:
    """A leftmost-longest searcher with the meaning of the RE2 ``pattern``. Raises
    KernelUnsupported naming the construct when RE2 would reject the pattern or re cannot express
    it.

    Handled: ASCII-only ``\\d \\w \\s \\b`` and POSIX classes (also negated and inside
    classes); ``$`` is the end of the text unless ``(?m)``; ``{,n}`` is literal; inline flags
    anywhere, ``(?U)``; octal and ``\\x{...}`` escapes; ``\\Q...\\E``; Unicode general
    categories (``\\pL``, ``\\p{Lu}``, ``\\PN``). Refused: lookaround, backreferences,
    possessive quantifiers, atomic and conditional groups, ``\\Z``, Unicode scripts
    (``\\p{Greek}``), ``\\C``.
    """
    normalizer = _Normalizer(pattern)
    source = _re2_to_python(normalizer.run())
    try:
        return LongestMatch(source, normalizer.first_is_longest)
    except re.error as e:
        raise KernelUnsupported(f"RE2 pattern {pattern!r} is not valid ({e})") from None


class LongestMatch:
    """RE2's leftmost-longest search on Python's leftmost-first ``re``.

    Both engines agree on where the leftmost match starts; from there the longest end is the
    largest ``t`` for which the pattern, followed by at most ``len(text) - t`` characters to the
    end, still matches (a question re answers with a lookahead; it is monotonic in ``t``, so a
    binary search over ``t`` finds the longest end). ``first_is_longest`` skips that search for
    patterns whose first match is known to be the longest (see :class:`_Normalizer`).
    """

    def __init__(self, source: str, first_is_longest: bool = False) -> None:
        self.source = source
        self.first = self._compile(source)
        self.first_is_longest = first_is_longest
        self._tails: dict[int, re.Pattern[str]] = {}

    @staticmethod
    def _compile(source: str) -> re.Pattern[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(source)

    def _reaches(self, text: str, start: int, end: int) -> bool:
        """Whether a match starting at ``start`` ends at ``end`` or later."""
        rest = len(text) - end
        rx = self._tails.get(rest)
        if rx is None:
            if len(self._tails) >= 512:
                self._tails.clear()
            rx = self._tails[rest] = self._compile(f"(?:{self.source})(?=[\\s\\S]{{0,{rest}}}\\Z)")
        return rx.match(text, start) is not None

    def search(self, text: str, pos: int) -> tuple[int, int] | None:
        """(start, end) of the leftmost-longest match at or after ``pos``, or None."""
        m = self.first.search(text, pos)
        if m is None:
            return None
        start, end = m.span()
        n = len(text)
        if not self.first_is_longest and end < n and self._reaches(text, start, end + 1):
            lo, hi = end + 1, n
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._reaches(text, start, mid):
                    lo = mid
                else:
                    hi = mid - 1
            end = lo
        return start, end


# -- Tokenizer -------------------------------------------------------------------------------------
_START, _END = "\x02", "\x03"


class _TokenizerSpec:
    """The attributes of a Tokenizer node, checked as onnxruntime checks them at load."""

    __slots__ = ("mark", "pad", "mincharnum", "chars", "separators", "tokenexp")

    def __init__(self, info) -> None:
        for name in ("mark", "pad_value", "mincharnum"):
            if info.attr(name) is None:
                raise KernelUnsupported(f"required attribute {name!r} is missing")
        self.mark = bool(info.attr("mark"))
        self.pad = str(info.attr("pad_value"))
        self.mincharnum = int(info.attr("mincharnum"))
        if self.mincharnum <= 0:
            raise KernelUnsupported(f"mincharnum must be positive, got {self.mincharnum}")
        separators, tokenexp = info.attr("separators"), info.attr("tokenexp")
        self.separators: list[LongestMatch] = []
        self.tokenexp: LongestMatch | None = None
        if separators is not None:  # separators win when both are set, as in onnxruntime
            if not separators:
                raise KernelUnsupported("separators must not be empty")
            self.chars = list(separators) == [""]
        elif tokenexp is None:
            raise KernelUnsupported("set one of the attributes separators or tokenexp")
        elif not tokenexp:
            raise KernelUnsupported("tokenexp must not be empty")
        else:
            self.chars = tokenexp == "."
        if self.chars and self.mincharnum > 1:
            raise KernelUnsupported(
                "mincharnum must be 1 for character tokenization (separators [''] or tokenexp '.')"
            )
        if self.chars:
            return
        if separators is not None:
            self.separators = [re2_search(s) for s in separators]
        else:
            self.tokenexp = re2_search(tokenexp)

    def split(self, text: str) -> list[str]:
        """``text`` cut at every separator match, one separator after the other, keeping pieces
        of at least mincharnum characters. An empty match drops the character it stands before."""
        pieces = [text]
        for sep in self.separators:
            cut: list[str] = []
            for piece in pieces:
                pos, n = 0, len(piece)
                while pos <= n:
                    hit = sep.search(piece, pos)
                    if hit is None:
                        if n - pos >= self.mincharnum:
                            cut.append(piece[pos:])
                        break
                    start, end = hit
                    if start - pos >= self.mincharnum:
                        cut.append(piece[pos:start])
                    pos = end if end > start else start + 1
            pieces = cut
        return pieces

    def find(self, tokenexp: LongestMatch, text: str) -> list[str]:
        """The matches of tokenexp of at least mincharnum characters; after a shorter match the
        search resumes one character after where that match started."""
        tokens, pos, n = [], 0, len(text)
        while pos <= n:
            hit = tokenexp.search(text, pos)
            if hit is None:
                break
            start, end = hit
            if end - start >= self.mincharnum:
                tokens.append(text[start:end])
                pos = end
            else:
                pos = start + 1
        return tokens

    def tokens(self, text: str) -> list[str]:
        if self.chars:
            return list(text)
        if self.tokenexp is not None:
            return self.find(self.tokenexp, text)
        return self.split(text)


def _check_tokenizer(info) -> str | None:
    try:
        _TokenizerSpec(info)
    except KernelUnsupported as e:
        return str(e)
    return None


def _checked(value, node: str) -> str:
    if type(value) is not str:
        raise InvalidArgument(f"{node}: input elements must be str, got {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgument(
                f"{node}: input string {value!r} is not valid UTF-8 ({e})"
            ) from None
    return value


@builder("Tokenizer", domain=MS, dtypes={0: {STRING}}, check=_check_tokenizer)
def tokenizer(info):
    """Splits each string of a [C] or [N, C] tensor into tokens: output [C, T] or [N, C, T], T the
    most tokens of any string (plus the start/end marks 0x02/0x03 with ``mark``), short rows
    padded with ``pad_value`` after the end mark. No tokens anywhere: a last dimension of 0 (and
    no marks). An empty input gives [0] or [N, 0]."""
    spec = _TokenizerSpec(info)
    label = info.node.label()

    def run(x):
        if x.ndim not in (1, 2):
            raise InvalidArgument(
                f"{label}: the input must be [C] or [N, C], got shape {list(x.shape)}"
            )
        if x.size == 0:
            return np.empty((x.shape[0], 0) if x.ndim == 2 else (0,), dtype=object)
        rows = [spec.tokens(_checked(s, label)) for s in x.reshape(-1)]
        width = max(map(len, rows))
        if width == 0:
            return np.empty((*x.shape, 0), dtype=object)
        lead = int(spec.mark)
        y = np.full((len(rows), width + 2 * lead), spec.pad, dtype=object)
        for out, row in zip(y, rows, strict=True):
            out[lead : lead + len(row)] = row
            if lead:
                out[0], out[len(row) + 1] = _START, _END
        return y.reshape(*x.shape, width + 2 * lead)

    return run


# -- CDist -----------------------------------------------------------------------------------------
_CDIST_TYPES = frozenset(map(np.dtype, (np.float32, np.float64)))
_CDIST_METRICS = ("sqeuclidean", "euclidean")


def _check_cdist(info) -> str | None:
    metric = info.attr("metric", "sqeuclidean")
    if metric not in _CDIST_METRICS:
        return f"metric {metric!r} is not supported: onnxruntime's CDist has {_CDIST_METRICS}"
    a, b = info.input_dtype(0), info.input_dtype(1)
    if a is not None and b is not None and a != b:
        return f"A and B must have the same element type, got {a} and {b}"
    return None


@builder("CDist", domain=MS, dtypes={0: _CDIST_TYPES, 1: _CDIST_TYPES}, check=_check_cdist)
def cdist(info):
    """Distances between the rows of A [N, K] and B [M, K]: [N, M]. Computed as onnxruntime does,
    ``|a|^2 + |b|^2 - 2 a.b`` and its absolute value (then the square root for euclidean), in
    float64 so that float32 results carry only the final rounding."""
    euclidean = info.attr("metric", "sqeuclidean") == "euclidean"
    label = info.node.label()

    def run(a, b):
        if a.ndim != 2 or a.shape[1] == 0 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise InvalidArgument(
                f"{label}: A must be [N, K] with K > 0 and B [M, K], got {list(a.shape)} and "
                f"{list(b.shape)}"
            )
        a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
        d = a64 @ b64.T
        d *= -2.0
        d += np.einsum("ij,ij->i", a64, a64)[:, None]
        d += np.einsum("ij,ij->i", b64, b64)[None, :]
        np.abs(d, out=d)
        if euclidean:
            np.sqrt(d, out=d)
        return d.astype(a.dtype, copy=False)

    return run


# -- MurmurHash3 -----------------------------------------------------------------------------------
_HASHED_TYPES = frozenset(
    map(np.dtype, (np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64, object))
)
_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _scramble(k: np.ndarray) -> np.ndarray:
    return _rotl(k * _C1, 15) * _C2


def _mix(h: np.ndarray, k: np.ndarray) -> np.ndarray:
    return _rotl(h ^ _scramble(k), 13) * np.uint32(5) + np.uint32(0xE6546B64)


def _finish(h: np.ndarray, length: np.ndarray) -> np.ndarray:
    h = h ^ length.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _murmur3_words(words: np.ndarray, seed: int) -> np.ndarray:
    """MurmurHash3 x86 32-bit of each row of ``words`` [n, w] (little-endian uint32 blocks)."""
    h = np.full(words.shape[0], seed, dtype=np.uint32)
    for j in range(words.shape[1]):
        h = _mix(h, words[:, j])
    return _finish(h, np.full(words.shape[0], 4 * words.shape[1]))


def _murmur3_bytes(keys: list[bytes], seed: int) -> np.ndarray:
    """MurmurHash3 x86 32-bit of each byte string, all strings at once: each is padded with
    zeros to whole 4-byte blocks plus one (the tail block, zero when there is no tail), and block
    ``j`` of every string long enough is mixed in one vector step."""
    lens = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    blocks = lens // 4
    widths = blocks + 1
    buf = b"".join(k.ljust(4 * int(w), b"\0") for k, w in zip(keys, widths, strict=True))
    words = np.frombuffer(buf, dtype="<u4")
    starts = np.cumsum(widths) - widths
    h = np.full(len(keys), seed, dtype=np.uint32)
    order = np.argsort(-blocks, kind="stable")
    by_blocks = -blocks[order]  # ascending
    for j in range(int(blocks.max(initial=0))):
        rows = order[: np.searchsorted(by_blocks, -j, side="left")]  # strings with > j blocks
        h[rows] = _mix(h[rows], words[starts[rows] + j])
    tail = (lens & 3) != 0
    h[tail] ^= _scramble(words[starts[tail] + blocks[tail]])
    return _finish(h, lens)


def _encode(value, label: str) -> bytes:
    try:
        return value.encode("utf-8")
    except (AttributeError, UnicodeEncodeError) as e:
        raise InvalidArgument(f"{label}: cannot hash {value!r} as UTF-8 text ({e})") from None


@builder("MurmurHash3", domain=MS, dtypes={0: _HASHED_TYPES})
def murmur_hash3(info):
    """MurmurHash3 x86 32-bit of each element: the UTF-8 bytes of a string, the little-endian
    bytes of a number (4 for int32, uint32, float; 8 for int64, uint64, double). uint32 output when
    ``positive`` is 1 (the default), int32 otherwise; ``seed`` taken modulo 2**32."""
    seed = int(info.attr("seed", 0)) & 0xFFFFFFFF
    out_type = np.uint32 if int(info.attr("positive", 1)) == 1 else np.int32
    label = info.node.label()

    def run(x):
        flat = x.reshape(-1)
        if x.dtype == object:
            h = _murmur3_bytes([_encode(s, label) for s in flat], seed)
        else:
            raw = np.ascontiguousarray(flat, dtype=x.dtype.newbyteorder("<"))
            h = _murmur3_words(raw.view("<u4").reshape(len(flat), x.dtype.itemsize // 4), seed)
        return h.view(out_type).reshape(x.shape)

    return run
