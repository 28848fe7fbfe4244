"""Direct calls to the GEMM of the BLAS numpy already loaded, for what ``np.matmul`` cannot say.

``np.matmul`` always overwrites its output and wants operands it can describe with one stride per
axis. The BLAS ``gemm`` underneath also takes ``beta`` (accumulate into the output) and a leading
dimension per operand (any row stride, e.g. a window of a longer flat buffer). The shifted
convolution needs both: one GEMM per kernel tap, each reading a slice of the padded input and all
adding into one output, with no column matrix and no temporary per tap.

The library is the one threadpoolctl reports numpy using (OpenBLAS in numpy's wheels, MKL or
OpenBLAS elsewhere), so ``intra_op_num_threads`` (set through threadpoolctl) governs these calls
too. Integer arguments are passed as 64-bit: correct for an ILP64 build, and for an LP64 one the
callee reads the low half of the same register or stack slot (x86-64 and AArch64 are little
endian). A tiny product is checked against numpy when the symbol is found; if the library, the
symbol or that check is missing, :func:`gemm` is ``None`` and callers keep their numpy path.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111
# scipy-openblas (numpy >= 2 wheels) prefixes and, for its ILP64 build, suffixes its symbols
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_", "scipy_cblas_{}gemm", "cblas_{}gemm")

Gemm = Callable[[np.ndarray, np.ndarray, np.ndarray, float], None]
_lock = threading.Lock()
_resolved: dict[str, Gemm | None] = {}


def _blas_paths() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]


def _bind(fn, ctype) -> Gemm:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 3 + [i64] * 3 + [ctype, ptr, i64, ptr, i64, ctype, ptr, i64]
    fn.restype = None

    def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float = 0.0) -> None:
        """``c = a @ b + beta * c`` for 2-D operands of the routine's dtype whose rows may have
        any stride but whose elements are contiguous within a row (not checked: callers build
        them so)."""
        m, k = a.shape
        n = b.shape[1]
        if m == 0 or n == 0:
            return
        if k == 0:  # BLAS would not touch c; the product of empty operands is zero
            c *= beta
            return
        fn(
            _ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, 1.0,
            a.ctypes.data, _lead(a, k), b.ctypes.data, _lead(b, n),
            beta, c.ctypes.data, _lead(c, n),
        )  # fmt: skip

    return gemm


def _lead(x: np.ndarray, cols: int) -> int:
    """The leading dimension of a row-major 2-D operand: its row stride in elements (numpy may
    give a single row any stride; BLAS wants at least the row length)."""
    return x.strides[0] // x.itemsize if x.shape[0] > 1 else max(cols, 1)


def _works(gemm: Gemm, dtype) -> bool:
    """A 3x4 @ 4x5 product over row-strided views, accumulated once, against numpy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 6)).astype(dtype)[:, :4]
    b = rng.standard_normal((4, 7)).astype(dtype)[:, 1:6]
    c0 = rng.standard_normal((3, 8)).astype(dtype)
    c = c0.copy()
    gemm(a, b, c[:, 2:7], 1.0)
    want = c0.copy()
    want[:, 2:7] += a @ b
    return bool(np.allclose(c, want, rtol=1e-4, atol=1e-4))


def find_gemm(dtype) -> Gemm | None:
    """The direct GEMM for float32 or float64, or ``None`` where none can be used."""
    dtype = np.dtype(dtype)
    prefix = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(dtype)
    if prefix is None:
        return None
    with _lock:
        if prefix not in _resolved:
            _resolved[prefix] = _resolve(prefix, dtype)
        return _resolved[prefix]


def _resolve(prefix: str, dtype: np.dtype) -> Gemm | None:
    ctype = ctypes.c_float if prefix == "s" else ctypes.c_double
    for path in _blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern in _SYMBOLS:
            fn = getattr(lib, pattern.format(prefix), None)
            if fn is None:
                continue
            gemm = _bind(fn, ctype)
            if _works(gemm, dtype):
                return gemm
    return None
