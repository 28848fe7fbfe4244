"""Compiled time-step loop of RNN, GRU and LSTM (see ``rnn.py`` and ``ort_cpu._jit``).

:data:`run_direction` runs one direction of one layer over the whole sequence: the input
projection ``xw = X @ W^T + Wb`` comes in precomputed (one BLAS matmul in numpy), the recurrent
product ``h @ R^T`` is register tiles of 256 gate columns summed over the rows of ``rt = R^T``
per batch entry in float32 (:func:`_gemv_tiles`), from :data:`BATCH_TILES` entries tiles of
four entries by 64 columns (:func:`_rows_tiles`, the same bits), a loop over those rows four
at a time in float64 (:func:`_gemv`), and the gates follow the ONNX equations element by element (an
LSTM with the default activations in one pass, :func:`_lstm_cell`), with ``sequence_lens``,
``clip``, activations with alpha/beta, peepholes, ``input_forget`` and ``linear_before_reset``.
A batch entry runs its own length: the reverse direction reads its steps from its last one back,
its ``Y`` rows past the end keep what the caller put there (zeros) and its state stops at its
last step.

float32 stays float32: constants are made in the arrays' dtype, and tanh (sigmoid is
``0.5 * tanh(x / 2) + 0.5``) is the rational approximation onnxruntime's MLAS uses for float
(``exact=False``: a few units in the last place, in a loop LLVM vectorizes); float64 uses
``math.tanh`` (``exact=True``). One function serves the three ops so that a process compiles (or
loads from the disk cache) one piece of machine code per dtype.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import LazyIntrinsic, jit
from ._conv_jit import GEMV_VECTORS, PW_CELLS, PW_ROWS

row_tile = LazyIntrinsic("ort_cpu.kernels._taps", "row_tile")
pointwise_tile = LazyIntrinsic("ort_cpu.kernels._taps", "pointwise_tile")
#: the columns (gate units) of one register tile of :func:`_gemv_tiles`
TILE_CELLS = 16 * GEMV_VECTORS
#: batch entries from which the float32 product ``h @ R^T`` takes tiles of several entries
#: (:func:`_rows_tiles`: ``R^T`` read once per PW_ROWS entries, not once per entry). One node
#: at one thread, a Zen 4, us, one entry's tiles against these (onnxruntime): LSTM of 256
#: units over 32 steps of 8 entries 4423 -> 2202 (2019), GRU of 512 units over 50 steps of 16
#: 39743 -> 21947 (19405), LSTM of 128 units over 64 steps of 3 entries 845 -> 546, 64 units
#: over 32 steps of 2 97 -> 91
BATCH_TILES = 2

#: activation name (lower case) -> code understood by the compiled loop
ACT_CODES = {
    "relu": 0,
    "tanh": 1,
    "sigmoid": 2,
    "affine": 3,
    "leakyrelu": 4,
    "thresholdedrelu": 5,
    "scaledtanh": 6,
    "hardsigmoid": 7,
    "elu": 8,
    "softsign": 9,
    "softplus": 10,
}

#: op -> code of the ``op`` argument, and gates per op
OPS = {"RNN": 0, "GRU": 1, "LSTM": 2}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


@jit(error_model="numpy")
def _act(v, code, a, b, clip, exact):
    """Activation ``code`` (see ACT_CODES) in place on the 1-D array ``v``, its input clipped
    to [-clip, clip] when clip > 0."""
    dt = v.dtype.type
    zero, half, one = dt(0.0), dt(0.5), dt(1.0)
    m = v.shape[0]
    if clip > zero:
        for j in range(m):
            x = v[j]
            x = clip if x > clip else x
            v[j] = -clip if x < -clip else x
    if code == 1 or code == 2 or code == 6:  # tanh, sigmoid, scaled tanh
        if code == 2:
            pre, post, add = half, half, half
        elif code == 6:
            pre, post, add = b, a, zero
        else:
            pre, post, add = one, one, zero
        if exact:
            for j in range(m):
                v[j] = post * math.tanh(pre * v[j]) + add
        else:
            for j in range(m):
                v[j] = post * _tanh_rational(pre * v[j], dt) + add
    elif code == 0:
        for j in range(m):
            v[j] = v[j] if v[j] > zero else zero
    elif code == 3:
        for j in range(m):
            v[j] = a * v[j] + b
    elif code == 4:
        for j in range(m):
            v[j] = v[j] if v[j] >= zero else a * v[j]
    elif code == 5:
        for j in range(m):
            v[j] = v[j] if v[j] > a else zero
    elif code == 7:
        for j in range(m):
            x = a * v[j] + b
            v[j] = zero if x < zero else (one if x > one else x)
    elif code == 8:
        for j in range(m):
            v[j] = v[j] if v[j] >= zero else a * (math.exp(v[j]) - one)
    elif code == 9:
        for j in range(m):
            v[j] = v[j] / (one + abs(v[j]))
    else:  # softplus, log(1 + exp(x)) without overflow
        for j in range(m):
            x = v[j]
            v[j] = (x if x > zero else zero) + math.log1p(math.exp(-abs(x)))
    return 0


@jit(inline="always")
def _tanh_rational(x, dt):  # pragma: no cover - compiled
    """MLAS's rational tanh of ``x`` (clamped to [-9, 9]), in ``dt``: :func:`_act`'s float
    path, one value."""
    hi = dt(9.0)
    x = hi if x > hi else x
    x = -hi if x < -hi else x
    x2 = x * x
    q = x2 * dt(-2.76076847742355e-16) + dt(2.00018790482477e-13)
    q = q * x2 + dt(-8.60467152213735e-11)
    q = q * x2 + dt(5.12229709037114e-08)
    q = q * x2 + dt(1.48572235717979e-05)
    q = q * x2 + dt(6.37261928875436e-04)
    q = q * x2 + dt(4.89352455891786e-03)
    d = x2 * dt(1.19825839466702e-06) + dt(1.18534705686654e-04)
    d = d * x2 + dt(2.26843463243900e-03)
    d = d * x2 + dt(4.89352518554385e-03)
    return x * q / d


@jit(inline="always")
def _lstm_cell(g, x, cb, hb, n):  # pragma: no cover - compiled
    """An LSTM entry's step with the default activations (sigmoid, tanh, tanh), no clip, no
    peepholes, no input_forget, float math: ``g`` (4n: h R^T + Rb, gates i, o, f, c) plus
    ``x`` (its step's input projection), the cell ``cb`` and the state ``hb`` (n) updated in
    place. One pass over the gates (unsigned indices: vector code) with :func:`_act`'s
    operations in its order, so the same values as its five passes over slices (a 64-wide
    LSTM over 32 steps: 35 -> 29 us)."""
    dt = g.dtype.type
    half = dt(0.5)
    w = np.uint64(n)
    for j in range(n):
        u = np.uint64(j)
        gi = g[u] + x[u]
        go = g[w + u] + x[w + u]
        gf = g[w + w + u] + x[w + w + u]
        gc = g[w + w + w + u] + x[w + w + w + u]
        i = half * _tanh_rational(half * gi, dt) + half
        f = half * _tanh_rational(half * gf, dt) + half
        c = f * cb[u] + i * _tanh_rational(gc, dt)
        cb[u] = c
        o = half * _tanh_rational(half * go, dt) + half
        hb[u] = o * _tanh_rational(c, dt)


@jit(error_model="numpy")
def _gemv(acc, src, rt, active):
    """acc[b] += src[b] @ rt for the active entries b, four rows of rt at a time: the inner
    loop runs over whole contiguous rows, which LLVM vectorizes, and reads and writes ``acc``
    once per four rows."""
    n = rt.shape[0]
    n4 = n - n % 4
    for b in range(acc.shape[0]):
        if not active[b]:
            continue
        out = acc[b]
        s = src[b]
        for k in range(0, n4, 4):
            s0, s1, s2, s3 = s[k], s[k + 1], s[k + 2], s[k + 3]
            r0, r1, r2, r3 = rt[k], rt[k + 1], rt[k + 2], rt[k + 3]
            for j in range(out.shape[0]):
                out[j] += (s0 * r0[j] + s1 * r1[j]) + (s2 * r2[j] + s3 * r3[j])
        for k in range(n4, n):
            sk = s[k]
            r0 = rt[k]
            for j in range(out.shape[0]):
                out[j] += sk * r0[j]
    return 0


@jit(inline="always")
def row_product(dst, rt, cols, src, n, base, like):  # pragma: no cover - compiled
    """``dst[q] = base[q] + sum over k < n of src[k] * rt[k * cols + q]`` for ``q < cols``
    (int64 addresses of float32 arrays, ``rt`` C-contiguous (n, cols)): register tiles of
    :data:`TILE_CELLS` columns summed over ``rt``'s rows in k's order
    (:func:`._taps.row_tile`: each row of ``rt`` read once, ``dst`` written once). ``dst``
    may be ``base``. The shared steps' halves (:mod:`._rnn_pieces`) take it too, so that
    their columns are these bits."""
    cell = 4
    for c0 in range(0, cols, TILE_CELLS):
        row_tile(dst + c0 * cell, rt + c0 * cell, cols, src, n, min(TILE_CELLS, cols - c0),
                 base + c0 * cell, like)  # fmt: skip


@jit()
def project(x, wt, wb, xw):
    """``xw = x @ wt + wb`` for the float32 C-contiguous (rows, k) ``x``, (k, G) ``wt``, G
    ``wb`` and (rows, G) ``xw``: the input projection of a few rows (a streaming model's one
    step) on :func:`row_product`'s register tiles, the bias their residual, in one call where
    numpy's product and the bias's addition took two (one 128-wide LSTM step's 1 x 128 x 512:
    4.7 + 2.4 us alone, 8.6 + 3.1 inside a run)."""
    rows, k = x.shape
    g = wt.shape[1]
    if rows == 0 or g == 0:
        return 0
    like = xw[0, 0]
    for r in range(rows):
        row_product(xw.ctypes.data + r * g * 4, wt.ctypes.data, g,
                    x.ctypes.data + r * k * 4, k, wb.ctypes.data, like)  # fmt: skip
    return 0


@jit(inline="always")
def _gemv_tiles(acc, src, rt, base, active):  # pragma: no cover - compiled
    """``acc = src @ rt + base`` for float32 (batch, n) ``src``, (n, G) ``rt``, (batch, G)
    ``acc`` and G ``base`` values (every entry's), all C-contiguous, for the active entries
    (:func:`row_product`). :func:`_gemv` read and wrote ``acc`` once per four rows of ``rt``.
    The loop, one thread, one entry, :func:`_gemv` -> tiles (us): LSTM 64 wide over 32 steps
    33 -> 29, GRU 128 wide over 64 steps 163 -> 153, 64 wide over 16 14.9 -> 14.0; a 128-wide
    LSTM's product reads 256 KB of ``rt`` a step and stays as it was (205 -> 195), bound by
    the core's cache bandwidth either way."""
    batch, n = src.shape
    g = rt.shape[1]
    like = acc[0, 0]
    for b in range(batch):
        if not active[b]:
            continue
        row_product(acc.ctypes.data + b * g * 4, rt.ctypes.data, g,
                    src.ctypes.data + b * n * 4, n, base.ctypes.data, like)  # fmt: skip


@jit(inline="always")
def _rows_tiles(acc, src, rt, bases, zeros):  # pragma: no cover - compiled
    """``acc = src @ rt + base`` for float32 (batch, n) ``src``, (n, G) ``rt`` and (batch, G)
    ``acc``, every entry (an inactive one's row is computed and not read): tiles of
    :data:`PW_ROWS` entries by :data:`PW_CELLS` columns summed in registers
    (:func:`._taps.pointwise_tile`, the entries' h values broadcast as a 1x1 convolution's
    weights), so that each row of ``rt`` is read once per PW_ROWS entries where
    :func:`_gemv_tiles` read all of ``rt`` once per entry. The same bits as :func:`row_product`:
    sums from zero, fused multiply-adds in k's order, then ``base`` added. ``bases``: (PW_ROWS,
    G) rows of ``base``; ``zeros``: PW_ROWS zeros."""
    batch, n = src.shape
    g = rt.shape[1]
    like = acc[0, 0]
    zero = acc.dtype.type(0.0)
    cell = 4
    for b0 in range(0, batch, PW_ROWS):
        rows = min(PW_ROWS, batch - b0)
        for c0 in range(0, g, PW_CELLS):
            pointwise_tile(acc.ctypes.data + (b0 * g + c0) * cell, g, rt.ctypes.data + c0 * cell, g,
                           src.ctypes.data + b0 * n * cell, n, zeros.ctypes.data, n, rows,
                           min(PW_CELLS, g - c0), bases.ctypes.data + c0 * cell, 0, zero, zero,
                           like)  # fmt: skip


@jit(inline="always")
def _product(acc, src, rt, base, bases, zeros, active, tiles):  # pragma: no cover - compiled
    """``acc = src @ rt + base`` for the active entries: on the register tiles where ``tiles``
    (float32: :func:`_rows_tiles` from :data:`BATCH_TILES` entries, given ``bases``, else
    :func:`_gemv_tiles`), else ``acc`` seeded with ``base`` and :func:`_gemv`'s loop."""
    if tiles and bases.shape[0]:
        _rows_tiles(acc, src, rt, bases, zeros)
    elif tiles:
        _gemv_tiles(acc, src, rt, base, active)
    else:
        for b in range(acc.shape[0]):
            if active[b]:
                acc[b, :] = base
        _gemv(acc, src, rt, active)


@jit(error_model="numpy")
def run_direction(op, xw, rt, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y):
    """One direction over the sequence, updating ``h`` (and ``c``) in place and writing ``y``.

    ``op``: 0 RNN, 1 GRU, 2 LSTM. ``xw`` [seq, batch, G*n]: the input projection plus Wb. ``rt``
    [n, G*n]: R transposed. ``rb`` [G*n]: the recurrent bias. ``p`` [3n]: LSTM peepholes (i, o,
    f). ``h``, ``c`` [batch, n]: the initial states, replaced by the final ones. ``lens``
    [batch] int64: steps per entry (at most seq). ``codes``/``alphas``/``betas``: the op's
    activations (f, g, h). ``clip`` > 0 clips every gate's input to [-clip, clip]. ``flags``: bit
    0 peepholes, bit 1 input_forget, bit 2 linear_before_reset, bit 3 exact (float64) math,
    bit 4 (GRU without linear_before_reset) ``rt``'s buffer holds R^T's z and r columns as one
    contiguous (n, 2n) block, then its h columns as an (n, n) block (see :func:`split_gru`):
    without it each call copied both out of R^T (a one-step GRU of width 128: 15 of 18 us).
    ``y`` [seq, batch, n]: the outputs.
    """
    dt = xw.dtype.type
    zero, one = dt(0.0), dt(1.0)
    use_peep = (flags & 1) != 0
    input_forget = (flags & 2) != 0
    lbr = (flags & 4) != 0
    exact = (flags & 8) != 0
    seq, batch, gn = xw.shape
    n = rt.shape[0]
    acc = np.empty((batch, gn), xw.dtype)  # h @ R^T (+ rb) per entry
    split = op == 1 and not lbr  # GRU without linear_before_reset: h's gate reads r * h
    rh = np.empty((batch, n if split else 0), xw.dtype)  # r * h
    if split and (flags & 16) != 0:  # laid out by split_gru
        flat = rt.reshape(-1)
        rt_zr = flat[: 2 * n * n].reshape(n, 2 * n)
        rt_h = flat[2 * n * n :].reshape(n, n)
    elif split:
        rt_zr = np.ascontiguousarray(rt[:, : 2 * n])
        rt_h = np.ascontiguousarray(rt[:, 2 * n :])
    else:
        rt_zr = rt
        rt_h = rt
    acc_zr = np.empty((batch, 2 * n if split else 0), xw.dtype)
    acc_h = np.empty((batch, n if split else 0), xw.dtype)
    tmp = np.empty(n, xw.dtype)
    active = np.zeros(batch, np.bool_)
    tidx = np.zeros(batch, np.int64)
    # float32 products on the register tiles (_product), the recurrent biases added as the
    # tiles' residuals
    tiles = xw.itemsize == 4
    rb_zr, rb_h = rb[: 2 * n], rb[2 * n :]
    # the bases' rows for the tiles of several entries (_rows_tiles), or none
    many = PW_ROWS if tiles and batch >= BATCH_TILES else 0
    rbb = np.empty((many, gn), xw.dtype)
    rbb_zr = np.empty((many if split else 0, len(rb_zr)), xw.dtype)
    rbb_h = np.empty((many if split else 0, len(rb_h)), xw.dtype)
    zeros = np.zeros(PW_ROWS, xw.dtype)
    for r in range(many):
        rbb[r] = rb
    for r in range(rbb_zr.shape[0]):
        rbb_zr[r] = rb_zr
        rbb_h[r] = rb_h
    plain_lstm = (
        op == 2
        and not (use_peep or input_forget or exact)
        and not clip > zero
        and codes[0] == 2
        and codes[1] == 1
        and codes[2] == 1
    )

    for t in range(seq):
        any_active = False
        for b in range(batch):
            active[b] = t < lens[b]
            if active[b]:
                any_active = True
                tidx[b] = lens[b] - 1 - t if reverse else t
        if not any_active:
            break
        if split:
            _product(acc_zr, h, rt_zr, rb_zr, rbb_zr, zeros, active, tiles)
            for b in range(batch):
                if active[b]:
                    acc[b, : 2 * n] = acc_zr[b]
        else:
            _product(acc, h, rt, rb, rbb, zeros, active, tiles)
        if op == 0:  # RNN: h = f(xw + h R^T + Rb)
            for b in range(batch):
                if not active[b]:
                    continue
                x = xw[tidx[b], b]
                g = acc[b]
                for j in range(n):
                    g[j] += x[j]
                _act(g, codes[0], alphas[0], betas[0], clip, exact)
                h[b, :] = g
                y[tidx[b], b, :] = g
        elif op == 1:  # GRU, gates z, r, h
            for b in range(batch):
                if not active[b]:
                    continue
                x = xw[tidx[b], b]
                g = acc[b]
                for j in range(2 * n):
                    g[j] += x[j]
                _act(g[: 2 * n], codes[0], alphas[0], betas[0], clip, exact)
                if lbr:  # r * (h Rh^T + Rbh)
                    for j in range(n):
                        g[2 * n + j] = x[2 * n + j] + g[n + j] * g[2 * n + j]
                else:
                    for j in range(n):
                        rh[b, j] = g[n + j] * h[b, j]
            if split:  # (r * h) Rh^T + Rbh
                _product(acc_h, rh, rt_h, rb_h, rbb_h, zeros, active, tiles)
                for b in range(batch):
                    if active[b]:
                        x = xw[tidx[b], b]
                        for j in range(n):
                            acc[b, 2 * n + j] = acc_h[b, j] + x[2 * n + j]
            for b in range(batch):
                if not active[b]:
                    continue
                g = acc[b]
                hh = g[2 * n :]
                _act(hh, codes[1], alphas[1], betas[1], clip, exact)
                for j in range(n):
                    z = g[j]
                    h[b, j] = (one - z) * hh[j] + z * h[b, j]
                y[tidx[b], b, :] = h[b]
        elif plain_lstm:  # the default activations: one pass (_lstm_cell)
            for b in range(batch):
                if active[b]:
                    _lstm_cell(acc[b], xw[tidx[b], b], c[b], h[b], n)
                    y[tidx[b], b, :] = h[b]
        else:  # LSTM, gates i, o, f, c
            for b in range(batch):
                if not active[b]:
                    continue
                x = xw[tidx[b], b]
                g = acc[b]
                for j in range(gn):
                    g[j] += x[j]
                cb = c[b]
                if use_peep:
                    for j in range(n):
                        g[j] += p[j] * cb[j]
                        g[2 * n + j] += p[2 * n + j] * cb[j]
                gi = g[:n]
                _act(gi, codes[0], alphas[0], betas[0], clip, exact)
                gf = g[2 * n : 3 * n]
                if input_forget:
                    for j in range(n):
                        gf[j] = one - gi[j]
                else:
                    _act(gf, codes[0], alphas[0], betas[0], clip, exact)
                gc = g[3 * n :]
                _act(gc, codes[1], alphas[1], betas[1], clip, exact)
                for j in range(n):
                    cb[j] = gf[j] * cb[j] + gi[j] * gc[j]
                go = g[n : 2 * n]
                if use_peep:
                    for j in range(n):
                        go[j] += p[n + j] * cb[j]
                _act(go, codes[0], alphas[0], betas[0], clip, exact)
                tmp[:] = cb
                _act(tmp, codes[2], alphas[2], betas[2], zero, exact)  # h(c): not clipped
                for j in range(n):
                    h[b, j] = go[j] * tmp[j]
                y[tidx[b], b, :] = h[b]
    return 0


def split_gru(rt: np.ndarray) -> np.ndarray:
    """GRU's R^T (n, 3n) laid out for :func:`run_direction`'s bit 4: its z and r columns as one
    C-contiguous (n, 2n) block, then its h columns as an (n, n) block, in an array of R^T's
    shape."""
    n = rt.shape[0]
    out = np.empty(rt.shape, rt.dtype)
    flat = out.reshape(-1)
    flat[: 2 * n * n] = rt[:, : 2 * n].reshape(-1)
    flat[2 * n * n :] = rt[:, 2 * n :].reshape(-1)
    return out


def warm_project():
    """:func:`project` compiled (or loaded) for writable and read-only inputs, or None when
    compiled kernels are off."""
    fn = None
    for writable in (True, False):
        x = np.zeros((1, 1), np.float32)
        x.flags.writeable = writable
        fn = project.warm(x, np.zeros((1, 1), np.float32), np.zeros(1, np.float32),
                          np.zeros((1, 1), np.float32))  # fmt: skip
    return fn


def compiled(dtype: np.dtype):
    """:data:`run_direction` compiled (or loaded from the disk cache) for ``dtype``, or None when
    compiled kernels are off. Call at kernel creation: the first call in a process compiles."""
    return run_direction.warm(*_warm_args(dtype))


def _warm_args(dtype: np.dtype) -> tuple:
    """Tiny arguments of the types the kernels pass, for ``run_direction.warm``."""
    dt = np.dtype(dtype)
    n, seq, batch = 1, 1, 1
    z = np.zeros
    return (
        2,
        z((seq, batch, 4 * n), dt),
        z((n, 4 * n), dt),
        z(4 * n, dt),
        z(3 * n, dt),
        z((batch, n), dt),
        z((batch, n), dt),
        np.ones(batch, np.int64),
        False,
        np.ones(3, np.int64),
        z(3, dt),
        z(3, dt),
        dt.type(0),
        0,
        z((seq, batch, n), dt),
    )
