"""Einsum (opset 12+) with one or two operands.

MIL's ``einsum`` takes one family of equations: matrices laid out on axes -1 and -3 of rank-3 or
rank-4 operands with the other axes batch (``nchw,nwhu->nchu``, ``chw,whr->chr`` and their
renamings). Those equations (operands of equal batch sizes) become ``einsum``; every other one is
decomposed, exactly, into the ops it stands for: ``reduce_sum`` over the letters only one operand
has and the output lacks, then per operand a ``transpose`` to (batch, free, contracted) and a
``reshape`` to one free and one contracted axis, one ``matmul`` (batch axes broadcast as ONNX's
do), and a ``reshape`` and ``transpose`` to the output's order. ``...`` stands for the leading
axes, which become letters of their own once the ranks are known.

Refused with the reason: three or more operands, a letter repeated within an operand (a
diagonal), integer operands (Core ML's matmul is float).
"""

from __future__ import annotations

import string

import numpy as np

from . import FLOATS, Ctx, builder


def _parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand subscripts and the output's, ``...`` replaced by letters unused in the
    equation, and the implicit output (the letters used once, in order) made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    spare = iter(c for c in string.ascii_letters if c not in eq)
    width = max([r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t], default=0)
    ell = "".join(next(spare) for _ in range(width))
    subs = [t.replace("...", ell[width - (r - (len(t) - 3)) :]) for t, r in zip(terms, ranks)]
    if arrow:
        out = out.replace("...", ell)
    else:
        letters = "".join(subs)
        out = ell + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        )
    return subs, out


def _check(info) -> str | None:
    n = info.num_inputs
    if n > 2:
        return f"Einsum of {n} operands is not converted (Core ML converts one or two)"
    eq = info.attr("equation")
    eq = eq.decode() if isinstance(eq, bytes) else str(eq)
    for t in eq.replace(" ", "").partition("->")[0].split(","):
        t = t.replace("...", "")
        if len(set(t)) != len(t):
            return f"Einsum term {t!r} repeats a letter (a diagonal), which Core ML cannot take"
    return None


def _mil_einsum(a: str, b: str, out: str, sa, sb) -> str | None:
    """The equation in MIL einsum's own letters when ``a,b->out`` is of its family."""
    if len(a) != len(b) or len(a) not in (3, 4) or len(out) != len(a):
        return None
    if len(a) == 4:
        n, c, h, w = a
        if (b, out) != (n + w + h + b[3], n + c + h + b[3]):
            return None
        u = b[3]
        same = sa[0] == sb[0] and sa[2] == sb[2]
        distinct = len({n, c, h, w, u}) == 5
        return "nchw,nwhu->nchu" if same and distinct else None
    c, h, w = a
    r = b[2]
    if (b, out) != (w + h + r, c + h + r) or len({c, h, w, r}) != 4 or sa[1] != sb[1]:
        return None
    return "chw,whr->chr"


def _perm(src: str, dst: str) -> list[int]:
    return [src.index(c) for c in dst]


def _i32(v) -> np.ndarray:
    return np.asarray(v, np.int32).reshape(-1)


class _Operand:
    """A MIL value with the letters of its axes and their sizes."""

    def __init__(self, ctx: Ctx, var, letters: str, shape) -> None:
        self.ctx, self.var, self.letters, self.shape = ctx, var, letters, list(shape)

    def size(self, c: str) -> int:
        return self.shape[self.letters.index(c)]

    def reduce(self, letters, keep: bool = False) -> None:
        axes = [self.letters.index(c) for c in letters]
        if not axes:
            return
        self.var = self.ctx.mb.reduce_sum(x=self.var, axes=axes, keep_dims=keep)
        if keep:
            for a in axes:
                self.shape[a] = 1
        else:
            self.letters = "".join(c for i, c in enumerate(self.letters) if i not in axes)
            self.shape = [d for i, d in enumerate(self.shape) if i not in axes]

    def transpose(self, order: str) -> None:
        if order != self.letters:
            perm = _perm(self.letters, order)
            self.var = self.ctx.mb.transpose(x=self.var, perm=perm)
            self.shape = [self.shape[p] for p in perm]
            self.letters = order

    def reshape(self, shape) -> None:
        if list(shape) != self.shape:
            self.var = self.ctx.mb.reshape(x=self.var, shape=_i32(shape))
            self.shape = list(shape)


@builder("Einsum", since=12, dtypes=FLOATS, check=_check)
def einsum(ctx: Ctx, node) -> None:
    mb = ctx.mb
    eq = node.attr("equation")
    eq = eq.decode() if isinstance(eq, bytes) else str(eq)
    n = len(node.inputs)
    subs, out = _parse(eq, [ctx.rank(i) for i in range(n)])
    ops = [_Operand(ctx, ctx.x(i), subs[i], ctx.shape(i)) for i in range(n)]
    if n == 2:
        a, b = ops
        mil = _mil_einsum(a.letters, b.letters, out, a.shape, b.shape)
        if mil is not None:
            ctx.out(0, mb.einsum(values=(a.var, b.var), equation=mil))
            return
    for i, op in enumerate(ops):  # letters of one operand that the output lacks: summed
        others = "".join(o.letters for j, o in enumerate(ops) if j != i)
        op.reduce([c for c in op.letters if c not in out and c not in others])
    if n == 1:
        (a,) = ops
        a.transpose(out)
        ctx.out(0, mb.identity(x=a.var) if a.var is ctx.x(0) else a.var)
        return
    a, b = ops
    batch = [c for c in out if c in a.letters and c in b.letters]
    contract = [c for c in a.letters if c in b.letters and c not in out]
    free_a = [c for c in a.letters if c not in b.letters]
    free_b = [c for c in b.letters if c not in a.letters]
    # a contracted letter of size 1 on one side only: sum the other side's first
    for c in contract:
        if a.size(c) == 1 and b.size(c) != 1:
            b.reduce([c], keep=True)
        elif b.size(c) == 1 and a.size(c) != 1:
            a.reduce([c], keep=True)
    a.transpose("".join(batch + free_a + contract))
    b.transpose("".join(batch + contract + free_b))
    nb = len(batch)
    sizes_a, sizes_b = [a.size(c) for c in free_a], [b.size(c) for c in free_b]
    fa = int(np.prod(sizes_a, dtype=np.int64))
    fb = int(np.prod(sizes_b, dtype=np.int64))
    k = int(np.prod([a.size(c) for c in contract], dtype=np.int64))
    a.reshape(a.shape[:nb] + [fa, k])
    b.reshape(b.shape[:nb] + [k, fb])
    y = mb.matmul(x=a.var, y=b.var)
    bshape = [max(a.shape[i], b.shape[i]) for i in range(nb)]
    res = _Operand(ctx, y, "", bshape + [fa, fb])
    res.reshape(bshape + sizes_a + sizes_b)
    res.letters = "".join(batch + free_a + free_b)
    res.transpose(out)
    ctx.out(0, res.var)
