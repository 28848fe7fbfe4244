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
from .._spin_jit import made, pointer
from . import _rnn_jit

_SIGNATURE = types.void(types.int64, types.int64, types.int64)
#: one direction's slots: the arrays' addresses, the sizes, the op's integer arguments, the
#: clip's float64 bits
(XW, RT, RB, P, H, C, LENS, CODES, ALPHAS, BETAS, Y, SEQ, BATCH, N, GN, P_LEN, OP, REVERSE,
 FLAGS, CLIP) = range(20)  # fmt: skip
SLOTS = 20
_run = _rnn_jit.run_direction.get()


def _piece(dtype):
    """Directions ``lo:hi`` of :func:`._rnn_jit.run_direction` for ``dtype`` arrays."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        for d in range(lo, hi):
            at = argument + d * SLOTS * 8
            a = carray(pointer(at), SLOTS, np.int64)
            seq, batch, n, gn = a[SEQ], a[BATCH], a[N], a[GN]
            _run(
                a[OP],
                carray(pointer(a[XW]), (seq, batch, gn), dtype),
                carray(pointer(a[RT]), (n, gn), dtype),
                carray(pointer(a[RB]), gn, dtype),
                carray(pointer(a[P]), a[P_LEN], dtype),
                carray(pointer(a[H]), (batch, n), dtype),
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
