"""The calls of :mod:`._exp_jit`'s kernels (Softmax, GELU, logistic): each on the calling thread,
or shared among the run's threads as the compiled pieces of :mod:`._exp_pieces` where it pays and
the run's pool spins (that module imports numba; this one does not).
"""

from __future__ import annotations

import numpy as np

from .. import _threads
from . import _exp_jit


def softmax(s: np.ndarray, scale: float, mask: np.ndarray | None, per_mask: int) -> None:
    """:func:`._exp_jit.softmax_keys` over every head of ``s`` (C-contiguous float32), ``mask``
    (rows, keys) float32 C-contiguous or None; the heads shared among the run's threads where it
    pays and the run's pool is free, else on this thread."""
    if mask is None:
        mask, per_mask = np.zeros((1, s.shape[1]), np.float32), 0
    if s.size >= _exp_jit.SPLIT_WORK and _threads.spinning():
        from . import _exp_pieces as pieces

        a = pieces.block(
            (s.ctypes.data, *s.shape, mask.ctypes.data, mask.shape[0], per_mask), (scale,)
        )
        if _threads.split_compiled(s.shape[0], pieces.address("softmax"), a.ctypes.data):
            return
    _exp_jit.softmax_keys.get()(s, np.float32(scale), mask, per_mask, 0, s.shape[0])


def warm_softmax(split: bool) -> None:
    """Compile (or load) :func:`._exp_jit.softmax_keys` now, and with ``split`` its piece."""
    s = np.zeros((1, 1, 1), np.float32)
    _exp_jit.softmax_keys.warm(s, np.float32(1), np.zeros((1, 1), np.float32), 1, 0, 1)
    if split:
        from . import _exp_pieces

        _exp_pieces.address("softmax")


def softmax_last(x: np.ndarray, log: int) -> np.ndarray:
    """:func:`._exp_jit.softmax_rows` over the last axis of the C-contiguous float32 ``x`` (at least
    one element), into a new array; the rows shared among the run's threads where it pays."""
    y = np.empty(x.shape, np.float32)
    rows = x.size // x.shape[-1]
    x2, y2 = x.reshape(rows, x.shape[-1]), y.reshape(rows, x.shape[-1])
    if x.size >= _exp_jit.SOFTMAX_SPLIT and rows > 1 and _threads.spinning():
        from . import _exp_pieces as pieces

        a = pieces.block((x2.ctypes.data, *x2.shape, y2.ctypes.data, log))
        if _threads.split_compiled(rows, pieces.address("softmax_rows"), a.ctypes.data):
            return y
    _exp_jit.softmax_rows.get()(x2, y2, log, 0, rows)
    return y


def warm_softmax_rows(split: bool) -> None:
    """Compile (or load) :func:`._exp_jit.softmax_rows` now (a writable and a read-only input), and
    with ``split`` its piece."""
    x = np.zeros((1, 1), np.float32)
    ro = x.copy()
    ro.flags.writeable = False
    for v in (x, ro):
        _exp_jit.softmax_rows.warm(v, np.empty_like(x), 0, 0, 1)
    if split:
        from . import _exp_pieces

        _exp_pieces.address("softmax_rows")


def gelu(x: np.ndarray, bias: np.ndarray | None, q: np.ndarray, s_max: float) -> np.ndarray:
    """:func:`._exp_jit.gelu_rows` over every row of the C-contiguous float32 ``x`` (rows, columns),
    ``bias`` (columns,) or None, into a new array; rows shared among the run's threads where it pays
    and the run's pool is free."""
    y = np.empty(x.shape, np.float32)
    b = np.zeros(0, np.float32) if bias is None else bias
    rows = x.shape[0]
    if x.size >= _exp_jit.GELU_SPLIT and rows > 1 and _threads.spinning():
        from . import _exp_pieces as pieces

        a = pieces.block(
            (x.ctypes.data, *x.shape, b.ctypes.data, b.shape[0], y.ctypes.data, q.ctypes.data),
            (s_max,),
        )
        if _threads.split_compiled(rows, pieces.address("gelu"), a.ctypes.data):
            return y
    _exp_jit.gelu_rows.get()(x, b, y, q, np.float32(s_max), 0, rows)
    return y


def warm_gelu(split: bool, q: np.ndarray) -> None:
    """Compile (or load) :func:`._exp_jit.gelu_rows` now (with and without a bias), and with
    ``split`` its piece."""
    x = np.zeros((1, 1), np.float32)
    for b in (np.zeros(0, np.float32), np.zeros(1, np.float32)):
        _exp_jit.gelu_rows.warm(x, b, x.copy(), q, np.float32(1), 0, 1)
    if split:
        from . import _exp_pieces

        _exp_pieces.address("gelu")


def logistic(x: np.ndarray, alpha: float, times_x: bool) -> np.ndarray:
    """:func:`._exp_jit.logistic_cells` over the flat C-contiguous float32 ``x``, into a new array;
    its pieces shared among the run's threads from :data:`._exp_jit.LOGISTIC_SPLIT` cells (YOLO's
    SiLUs ran on the calling thread in numpy's four passes: 14 of its 115 ms at one thread, and
    longer at two, reading what the other core had written)."""
    n = x.shape[0]
    y = np.empty(n, np.float32)
    a = np.float32(alpha)
    if n >= _exp_jit.LOGISTIC_SPLIT and _threads.spinning():
        from . import _exp_pieces as pieces

        blk = pieces.block((x.ctypes.data, y.ctypes.data, n, int(times_x)), (alpha,))
        units = -(-n // _exp_jit.LOGISTIC_PIECE)
        if _threads.split_compiled(units, pieces.address("logistic"), blk.ctypes.data):
            return y
    _exp_jit.logistic_cells.get()(x, y, a, times_x, 0, n)
    return y


def warm_logistic(split: bool) -> None:
    """Compile (or load) :func:`._exp_jit.logistic_cells` now (for writable and read-only inputs),
    and with ``split`` its piece."""
    x = np.zeros(1, np.float32)
    for writable in (True, False):
        x.flags.writeable = writable
        for times_x in (True, False):
            _exp_jit.logistic_cells.warm(x, np.empty(1, np.float32), np.float32(1), times_x, 0, 1)
    if split:
        from . import _exp_pieces

        _exp_pieces.address("logistic")
