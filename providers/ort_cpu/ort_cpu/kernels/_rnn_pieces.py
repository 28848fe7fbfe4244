"""The directions of a bidirectional RNN, GRU or LSTM as compiled pieces, which the spinning
intra-op pool's workers call without the GIL (:func:`ort_cpu._threads.split_compiled`): the
forward and the backward recurrence do not read each other, so at two threads they run at
once, one on each core. A direction is a few hundred small dependent steps (an OCR model's
LSTM: 80 steps of a 48-wide state, 0.4 ms a direction), none of which is worth sharing on its
own.

A piece is a numba ``cfunc`` ``void(int64 argument, int64 lo, int64 hi)`` running directions
``lo:hi`` of :func:`._rnn_jit.run_direction`; its argument block holds :data:`SLOTS` int64
values per direction (:func:`fill`: the arrays' addresses, their sizes, the op's integer
arguments, the clip's float64 bits). This module imports numba when it is imported; the pieces
compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, njit, types

from .. import _threads
from .._spin_jit import _load, _pause, _store, _swap, made, pointer
from . import _rnn_jit

_SIGNATURE = types.void(types.int64, types.int64, types.int64)
#: one direction's slots: the arrays' addresses, the sizes, the op's integer arguments, the
#: clip's float64 bits
(XW, RT, RB, P, H, C, LENS, CODES, ALPHAS, BETAS, Y, SEQ, BATCH, N, GN, P_LEN, OP, REVERSE,
 FLAGS, CLIP) = range(20)  # fmt: skip
SLOTS = 20
_run = _rnn_jit.run_direction.jitted()


@njit(inline="always")
def _common(at, a, dtype):  # pragma: no cover - compiled
    """The arrays and values a direction's slots name, but R^T and the state (whose shapes
    differ between a direction and shared steps): xw, rb, p, c, lens, reverse, codes, alphas,
    betas, clip, flags, y (the block at address ``at``, its slots ``a``)."""
    seq, batch, n, gn = a[SEQ], a[BATCH], a[N], a[GN]
    return (
        carray(pointer(a[XW]), (seq, batch, gn), dtype),
        carray(pointer(a[RB]), gn, dtype),
        carray(pointer(a[P]), a[P_LEN], dtype),
        carray(pointer(a[C]), (batch, n), dtype),
        carray(pointer(a[LENS]), batch, np.int64),
        a[REVERSE] != 0,
        carray(pointer(a[CODES]), 3, np.int64),
        carray(pointer(a[ALPHAS]), 3, dtype),
        carray(pointer(a[BETAS]), 3, dtype),
        dtype(carray(pointer(at + CLIP * 8), 1, np.float64)[0]),
        a[FLAGS],
        carray(pointer(a[Y]), (seq, batch, n), dtype),
    )


def _piece(dtype):
    """Directions ``lo:hi`` of :func:`._rnn_jit.run_direction` for ``dtype`` arrays."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        for d in range(lo, hi):
            at = argument + d * SLOTS * 8
            a = carray(pointer(at), SLOTS, np.int64)
            xw, rb, p, c, lens, reverse, codes, alphas, betas, clip, flags, y = _common(
                at, a, dtype
            )
            rt = carray(pointer(a[RT]), (a[N], a[GN]), dtype)
            h = carray(pointer(a[H]), (a[BATCH], a[N]), dtype)
            _run(a[OP], xw, rt, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y)

    return cfunc(_SIGNATURE, cache=True)(piece)


@njit(cache=True)
def fill(block, d, op, xw, rt, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y):
    """Direction ``d``'s slots of ``block`` from :func:`._rnn_jit.run_direction`'s arguments
    (C-contiguous arrays the caller keeps alive until the pieces are done): one compiled call,
    where eleven ``.ctypes.data`` in Python cost about 11 us."""  # pragma: no cover - compiled
    a = block[d * SLOTS : (d + 1) * SLOTS]
    a[XW], a[RT], a[RB], a[P] = xw.ctypes.data, rt.ctypes.data, rb.ctypes.data, p.ctypes.data
    a[H], a[C], a[LENS], a[CODES] = (
        h.ctypes.data,
        c.ctypes.data,
        lens.ctypes.data,
        codes.ctypes.data,
    )
    a[ALPHAS], a[BETAS], a[Y] = alphas.ctypes.data, betas.ctypes.data, y.ctypes.data
    a[SEQ], a[BATCH], a[GN] = xw.shape[0], xw.shape[1], xw.shape[2]
    a[N], a[P_LEN], a[OP], a[REVERSE], a[FLAGS] = rt.shape[0], p.shape[0], op, reverse, flags
    a[CLIP : CLIP + 1].view(np.float64)[0] = clip


def run(block: np.ndarray, dtype) -> bool:
    """Both directions filled into ``block`` (:func:`fill`) run at once on the run's threads;
    False (nothing run) where the run has no spinning pool free."""
    return _threads.split_compiled(2, made(_piece, np.dtype(dtype).type), block.ctypes.data)


def warm(dtype, args: tuple) -> None:
    """Make (or load) the piece for ``dtype`` and :func:`fill` for ``args`` (run_direction's
    tiny arguments) now, so that a first run compiles nothing."""
    made(_piece, np.dtype(dtype).type)
    fill(np.zeros(2 * SLOTS, np.int64), 0, *args)


# -- one direction's steps shared between two threads ---------------------------------------------
# A single-direction layer is a chain of dependent steps, but within a step the hidden units are
# independent: each of two threads takes half of them, always the same half (the columns of
# h @ R^T that feed its units, packed contiguously once, :func:`pack_halves`, so that each core
# keeps its own half of R^T in its cache: a 128-wide LSTM's is 256 KB), reads the whole previous
# state and writes its half of the next (two state buffers, swapped each step), then waits for
# the other half of the step. A thread that has not started its half when the other needs it
# (a sleeping worker) is taken over: the other thread runs both halves from then on, so a run
# never waits on a thread that is not there.
#: the shared steps' slots, after a direction's SLOTS: the two state buffers, the sync counters,
#: the halves' unit bounds, the packed halves' column count, the steps to run
HB, SYNC, BOUNDS, HALF_COLS, STEPS = range(SLOTS, SLOTS + 5)
SHARED_SLOTS = SLOTS + 5
#: sync slots (each on its own cache line): each half's owner (0 none yet, 1 its thread, 2 taken
#: over) and the steps it has finished
OWNER, DONE = (0, 8), (16, 24)
#: polls (about 25 ns each) a half waits for the other's thread to start before taking it over
TAKE_OVER_POLLS = 4000
_act = _rnn_jit._act.jitted()
_row_product = _rnn_jit.row_product.jitted()


def pack_halves(rt: np.ndarray, gates: int, bounds) -> np.ndarray:
    """R^T [n, G*n] as two [n, G*w] blocks, block k holding the G gates' columns of units
    ``bounds[k]:bounds[k + 1]`` side by side (w: the wider half's units; the other's padding
    is never read)."""
    n = rt.shape[0]
    w = max(bounds[1] - bounds[0], bounds[2] - bounds[1])
    out = np.zeros((2, n, gates * w), rt.dtype)
    for k in range(2):
        u0, u1 = bounds[k], bounds[k + 1]
        for g in range(gates):
            out[k, :, g * w : g * w + u1 - u0] = rt[:, g * n + u0 : g * n + u1]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _half_step(op, xw, rtk, rb, p, cur, nxt, c, t, b, u0, u1, w, codes, alphas, betas, clip,
               flags, y, acc, tmp):  # fmt: skip  # pragma: no cover - compiled
    """Units ``u0:u1`` of batch entry ``b`` at timestep ``t``: the same operations, in the same
    order, as :func:`._rnn_jit.run_direction` (its product, float32's register tiles or
    float64's four rows at a time, then the gates), so the results are its bits."""
    dt = xw.dtype.type
    zero, one = dt(0.0), dt(1.0)
    n = cur.shape[1]
    gn = xw.shape[2]
    gates = gn // n
    hw = u1 - u0
    exact = (flags & 8) != 0
    for g in range(gates):
        for j in range(hw):
            acc[g * w + j] = rb[g * n + u0 + j]
    s = cur[b]
    cols = gates * w
    if xw.itemsize == 4:  # float32: run_direction's register tiles, onto the biases
        at = acc.ctypes.data
        _row_product(at, rtk.ctypes.data, cols, s.ctypes.data, n, at, acc[0])
    else:
        n4 = n - n % 4
        for k in range(0, n4, 4):
            s0, s1, s2, s3 = s[k], s[k + 1], s[k + 2], s[k + 3]
            r0, r1, r2, r3 = rtk[k], rtk[k + 1], rtk[k + 2], rtk[k + 3]
            for j in range(cols):
                acc[j] += (s0 * r0[j] + s1 * r1[j]) + (s2 * r2[j] + s3 * r3[j])
        for k in range(n4, n):
            sk = s[k]
            r0 = rtk[k]
            for j in range(cols):
                acc[j] += sk * r0[j]
    x = xw[t, b]
    if op == 0:  # RNN
        g0 = acc[:hw]
        for j in range(hw):
            g0[j] += x[u0 + j]
        _act(g0, codes[0], alphas[0], betas[0], clip, exact)
        for j in range(hw):
            nxt[b, u0 + j] = g0[j]
            y[t, b, u0 + j] = g0[j]
    elif op == 1:  # GRU with linear_before_reset: z, r, h
        gz, gr, gh = acc[:hw], acc[w : w + hw], acc[2 * w : 2 * w + hw]
        for j in range(hw):
            gz[j] += x[u0 + j]
        for j in range(hw):
            gr[j] += x[n + u0 + j]
        _act(gz, codes[0], alphas[0], betas[0], clip, exact)
        _act(gr, codes[0], alphas[0], betas[0], clip, exact)
        for j in range(hw):
            gh[j] = x[2 * n + u0 + j] + gr[j] * gh[j]
        _act(gh, codes[1], alphas[1], betas[1], clip, exact)
        for j in range(hw):
            z = gz[j]
            v = (one - z) * gh[j] + z * s[u0 + j]
            nxt[b, u0 + j] = v
            y[t, b, u0 + j] = v
    else:  # LSTM: i, o, f, c
        gi, go = acc[:hw], acc[w : w + hw]
        gf, gc = acc[2 * w : 2 * w + hw], acc[3 * w : 3 * w + hw]
        for j in range(hw):
            gi[j] += x[u0 + j]
            go[j] += x[n + u0 + j]
            gf[j] += x[2 * n + u0 + j]
            gc[j] += x[3 * n + u0 + j]
        cb = c[b]
        if (flags & 1) != 0:
            for j in range(hw):
                gi[j] += p[u0 + j] * cb[u0 + j]
                gf[j] += p[2 * n + u0 + j] * cb[u0 + j]
        _act(gi, codes[0], alphas[0], betas[0], clip, exact)
        if (flags & 2) != 0:
            for j in range(hw):
                gf[j] = one - gi[j]
        else:
            _act(gf, codes[0], alphas[0], betas[0], clip, exact)
        _act(gc, codes[1], alphas[1], betas[1], clip, exact)
        for j in range(hw):
            cb[u0 + j] = gf[j] * cb[u0 + j] + gi[j] * gc[j]
        if (flags & 1) != 0:
            for j in range(hw):
                go[j] += p[n + u0 + j] * cb[u0 + j]
        _act(go, codes[0], alphas[0], betas[0], clip, exact)
        th = tmp[:hw]
        for j in range(hw):
            th[j] = cb[u0 + j]
        _act(th, codes[2], alphas[2], betas[2], zero, exact)  # h(c): not clipped
        for j in range(hw):
            v = go[j] * th[j]
            nxt[b, u0 + j] = v
            y[t, b, u0 + j] = v
    return 0


@njit(cache=True, nogil=True, error_model="numpy")
def _half(op, xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas, clip, flags, y,
          bounds, s, k, acc, tmp):  # fmt: skip  # pragma: no cover - compiled
    """Half ``k`` of step ``s``: reads ``hb[s % 2]``, writes ``hb[(s + 1) % 2]``; an entry past
    its length carries its state over."""
    w = rtp.shape[2] // (xw.shape[2] // hb.shape[2])
    u0, u1 = bounds[k], bounds[k + 1]
    cur, nxt = hb[s & 1], hb[(s + 1) & 1]
    for b in range(hb.shape[1]):
        if s < lens[b]:
            t = lens[b] - 1 - s if reverse else s
            _half_step(op, xw, rtp[k], rb, p, cur, nxt, c, t, b, u0, u1, w, codes, alphas,
                       betas, clip, flags, y, acc, tmp)  # fmt: skip
        else:
            for j in range(u0, u1):
                nxt[b, j] = cur[b, j]
    return 0


@njit(cache=True, nogil=True, error_model="numpy")
def shared_steps(op, xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas, clip, flags, y,
                 sync, bounds, steps, k):  # fmt: skip  # pragma: no cover - compiled
    """Half ``k``'s thread (see the section's comment): its half of every step, each after the
    other half of the step before; both halves from the step where it takes the other over."""
    if not _swap(sync, OWNER[k], 0, 1):
        return  # taken over before this thread started
    other = 1 - k
    acc = np.empty(rtp.shape[2], xw.dtype)
    tmp = np.empty(rtp.shape[2], xw.dtype)
    both = False
    for s in range(steps):
        if not both:
            polls = 0
            while _load(sync, DONE[other]) < s:
                polls += 1
                if (
                    polls > TAKE_OVER_POLLS
                    and _load(sync, OWNER[other]) == 0
                    and _swap(sync, OWNER[other], 0, 2)
                ):
                    both = True  # the other never started: it had done no step (s == 1)
                    _half(op, xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas,
                          clip, flags, y, bounds, s - 1, other, acc, tmp)  # fmt: skip
                    break
                _pause()
        _half(op, xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas, clip, flags, y,
              bounds, s, k, acc, tmp)  # fmt: skip
        if both:
            _half(op, xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas, clip, flags,
                  y, bounds, s, other, acc, tmp)  # fmt: skip
        _store(sync, DONE[k], s + 1)
    if both:
        _store(sync, DONE[other], steps)


def _shared_piece(dtype):
    """The piece running :func:`shared_steps` for half ``lo`` from a shared-steps block."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SHARED_SLOTS, np.int64)
        if hi - lo != 1:
            return  # (run_shared hands out two pieces of one half each)
        xw, rb, p, c, lens, reverse, codes, alphas, betas, clip, flags, y = _common(
            argument, a, dtype
        )
        rtp = carray(pointer(a[RT]), (2, a[N], a[HALF_COLS]), dtype)
        hb = carray(pointer(a[HB]), (2, a[BATCH], a[N]), dtype)
        sync = carray(pointer(a[SYNC]), 32, np.int64)
        bounds = carray(pointer(a[BOUNDS]), 3, np.int64)
        shared_steps(a[OP], xw, rtp, rb, p, hb, c, lens, reverse, codes, alphas, betas, clip,
                     flags, y, sync, bounds, a[STEPS], lo)  # fmt: skip

    return cfunc(_SIGNATURE, cache=True)(piece)


def run_shared(op, xw, rtp, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y,
               bounds) -> bool:  # fmt: skip
    """One direction of :func:`._rnn_jit.run_direction` (its arguments; ``rtp``: R^T packed by
    :func:`pack_halves` for the unit ``bounds`` [3] int64) with its steps' halves shared
    between the run's two threads; ``h`` gets the final state. False (nothing run) where the
    run has no spinning pool free."""
    if not _threads.spinning():
        return False
    batch, n = h.shape
    hb = np.empty((2, batch, n), h.dtype)
    hb[0] = h
    steps = int(lens.max(initial=0))
    sync = np.zeros(32, np.int64)
    block = np.zeros(SHARED_SLOTS, np.int64)
    fill(block, 0, op, xw, rtp[0], rb, p, hb[0], c, lens, reverse, codes, alphas, betas, clip,
         flags, y)  # fmt: skip
    block[RT], block[HB], block[SYNC] = rtp.ctypes.data, hb.ctypes.data, sync.ctypes.data
    block[BOUNDS], block[HALF_COLS], block[STEPS] = bounds.ctypes.data, rtp.shape[2], steps
    address = made(_shared_piece, np.dtype(h.dtype).type)
    if not _threads.split_compiled(2, address, block.ctypes.data):
        return False
    h[...] = hb[steps & 1]
    return True


def warm_shared(dtype) -> None:
    """Make (or load) the shared-steps piece for ``dtype``, and :func:`fill`, now: loaded in
    the first run instead, they made it 15x the median at two threads."""
    made(_shared_piece, np.dtype(dtype).type)
    fill(np.zeros(SHARED_SLOTS, np.int64), 0, *_rnn_jit._warm_args(dtype))
