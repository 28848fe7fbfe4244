"""Direct calls to the GEMM of the BLAS numpy already loaded, for what ``np.matmul`` cannot say.

``np.matmul`` always overwrites its output and wants operands it can describe with one stride per
axis. The BLAS ``gemm`` underneath also takes ``beta`` (accumulate into the output) and a leading
dimension per operand (any row stride, e.g. a window of a longer flat buffer). The per-tap
convolution needs both (one GEMM per kernel tap, each reading a slice of the padded input and all
adding into one output, with no column matrix and no temporary per tap), and the Winograd one
reads its transformed tiles in place.

The library is the OpenBLAS threadpoolctl reports numpy using (numpy's wheels bundle one, as do
conda-forge's builds), so ``intra_op_num_threads`` (set through threadpoolctl) governs these
calls too. Integer arguments take the width the build uses: 64-bit for a symbol with the ``64_``
suffix of ILP64 builds, otherwise what ``openblas_get_config`` says (``USE64BITINT`` or not), so
the call matches the library's ABI on every platform. Other BLAS libraries (MKL, Accelerate,
BLIS) are left alone, as is any library whose GEMM fails a check against numpy on a tiny product:
there :func:`find_gemm` is ``None`` and callers keep their numpy path.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111
# scipy-openblas (numpy >= 2 wheels) prefixes and, for its ILP64 build, suffixes its symbols
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_", "scipy_cblas_{}gemm", "cblas_{}gemm")
_CONFIGS = ("scipy_openblas_get_config64_", "openblas_get_config64_", "scipy_openblas_get_config",
            "openblas_get_config")  # fmt: skip

Gemm = Callable[[np.ndarray, np.ndarray, np.ndarray, float], None]
_lock = threading.Lock()
_resolved: dict[str, Gemm | None] = {}


def _blas_paths() -> list[str]:
    """The OpenBLAS libraries loaded in this process (numpy's)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]


def _int_width(lib, symbol: str):
    """The ctypes integer type of the library's BLAS integers, or None if it cannot tell."""
    if symbol.endswith("64_"):
        return ctypes.c_int64
    for name in _CONFIGS:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_char_p
            config = fn() or b""
            return ctypes.c_int64 if b"USE64BITINT" in config else ctypes.c_int32
    return None


def _bind(fn, ctype, itype) -> Gemm:
    ptr = ctypes.c_void_p
    fn.argtypes = (
        [ctypes.c_int] * 3 + [itype] * 3 + [ctype, ptr, itype, ptr, itype, ctype, ptr, itype]
    )
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
            symbol = pattern.format(prefix)
            fn = getattr(lib, symbol, None)
            itype = None if fn is None else _int_width(lib, symbol)
            if itype is None:
                continue
            gemm = _bind(fn, ctype, itype)
            if _works(gemm, dtype):
                return gemm
    return None
