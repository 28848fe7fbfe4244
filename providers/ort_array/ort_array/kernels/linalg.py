"""Linear algebra kernels: MatMul, Gemm, Einsum.

float16 and bfloat16 are multiplied in float32 (as onnxruntime accumulates) and cast back. Einsum
uses the namespace's ``einsum`` where it has one (numpy, cupy: not part of the standard) and
otherwise contracts with broadcasting products and sums, which every namespace has.
"""

from __future__ import annotations

import string
from typing import Any

from ort_core.errors import InvalidArgument
from ort_core.provider import NUMERIC_TYPES

from .._table import builder, kernel
from .._xp import cast, device, is_int, matmul_overridden, namespace, result, widened
from .._xp import matmul as _matmul


@kernel("MatMul", 1, dtypes=NUMERIC_TYPES)
def matmul(a, b):
    xp = namespace(a)
    return cast(xp, result(_matmul(xp, widened(xp, a), widened(xp, b))), a.dtype)


@builder("Gemm", (1, 6, 7, 9, 11, 13), dtypes=NUMERIC_TYPES,
         attributes=("alpha", "beta", "transA", "transB", "broadcast"))  # fmt: skip
def gemm(info):
    alpha = float(info.attr("alpha", 1.0))
    beta = float(info.attr("beta", 1.0))
    trans_a, trans_b = bool(info.attr("transA", 0)), bool(info.attr("transB", 0))

    def scaled(xp, y, s: float):
        if s == 1.0:
            return y
        return y * (int(s) if is_int(xp, y.dtype) and s.is_integer() else s)

    def run(a, b, c=None):
        xp = namespace(a)
        aw, bw = widened(xp, a), widened(xp, b)
        y = scaled(xp, _matmul(xp, aw.T if trans_a else aw, bw.T if trans_b else bw), alpha)
        if c is not None and beta != 0.0:
            y = y + scaled(xp, cast(xp, widened(xp, c), y.dtype), beta)
        return cast(xp, y, a.dtype)

    return run


# -- Einsum ------------------------------------------------------------------------------------------
def _parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand and output terms with '...' replaced by capital letters (right-aligned, so that
    ellipsis dimensions broadcast); the implicit output is the ellipsis, then the letters seen
    once, sorted."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise InvalidArgument(
            f"Einsum: equation {equation!r} has {len(terms)} operands, got {len(ranks)}."
        )
    spare = [c for c in string.ascii_uppercase if c not in eq]
    widths = [r - (len(t) - 3) if "..." in t else 0 for t, r in zip(terms, ranks)]
    ell = spare[: max(widths, default=0)]
    out_terms = []
    for t, w in zip(terms, widths):
        t = t.replace("...", "".join(ell[len(ell) - w :]))
        out_terms.append(t)
    if arrow:
        out = rhs.replace("...", "".join(ell))
    else:
        letters = "".join(out_terms).replace("".join(ell), "")
        singles = sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        out = "".join(ell) + "".join(singles)
    for t, r in zip(out_terms, ranks):
        if len(t) != r:
            raise InvalidArgument(
                f"Einsum: term {t!r} of {equation!r} does not match an operand of rank {r}."
            )
    return out_terms, out


def _diagonal(xp: Any, x: Any, term: str) -> tuple[Any, str]:
    """Take the diagonal of every repeated letter of ``term``."""
    while len(set(term)) < len(term):
        c = next(c for c in term if term.count(c) > 1)
        i, j = term.index(c), term.index(c, term.index(c) + 1)
        n = x.shape[i]
        shape = [1] * x.ndim
        shape[i] = shape[j] = n
        eye = xp.reshape(xp.eye(n, dtype=x.dtype, device=device(x)), tuple(shape))
        x = xp.sum(x * eye, axis=j, dtype=x.dtype)
        term = term[:j] + term[j + 1 :]
    return x, term


def einsum_generic(xp: Any, equation: str, *xs: Any) -> Any:
    """Einsum from broadcasting products and sums (for namespaces without ``einsum``)."""
    terms, out = _parse(equation, [x.ndim for x in xs])
    ops = [_diagonal(xp, x, t) for x, t in zip(xs, terms)]
    labels = list(out) + sorted({c for _, t in ops for c in t} - set(out))
    acc = None
    for k, (x, t) in enumerate(ops):
        order = sorted(range(len(t)), key=lambda i: labels.index(t[i]))
        x = xp.permute_dims(x, tuple(order))
        present = [t[i] for i in order]
        x = xp.reshape(x, tuple(x.shape[present.index(c)] if c in present else 1 for c in labels))
        acc = x if acc is None else acc * x
        later = {c for _, t2 in ops[k + 1 :] for c in t2}
        done = [
            i for i, c in enumerate(labels) if c not in out and c not in later and acc.shape[i] > 1
        ]
        if done:  # sum a letter out as soon as no later operand needs it
            acc = xp.sum(acc, axis=tuple(done), keepdims=True, dtype=acc.dtype)
    return xp.reshape(acc, tuple(acc.shape[: len(out)]))


@kernel("Einsum", 12, dtypes=NUMERIC_TYPES)
def einsum(*xs, equation=""):
    xp = namespace(xs[0])
    ws = [widened(xp, x) for x in xs]
    fn = getattr(xp, "einsum", None)
    if fn is not None and not matmul_overridden():  # cupy's einsum calls cuBLAS itself
        y = fn(equation.replace(" ", ""), *ws)
    else:
        y = einsum_generic(xp, equation, *ws)
    return cast(xp, result(y), xs[0].dtype)
