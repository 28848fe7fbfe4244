"""The direct BLAS GEMM the CPU provider's convolutions call (ort_cpu.kernels._blas)."""

from __future__ import annotations

import ctypes
import os
import threading
import time

import numpy as np
import pytest
from ort_cpu import _threads
from ort_cpu.kernels import _blas


@pytest.fixture
def gemm32():
    gemm = _blas.find_gemm(np.float32)
    if gemm is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    return gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_strided_operands_and_beta(dtype):
    """Operands are windows of longer rows (the leading dimension), and beta=1 accumulates."""
    gemm = _blas.find_gemm(dtype)
    if gemm is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    rng = np.random.default_rng(0)
    a_buf = rng.standard_normal((5, 40)).astype(dtype)
    b_buf = rng.standard_normal((40, 70)).astype(dtype)
    a, b = a_buf[:, 3:40], b_buf[3:40, 10:67]
    c = np.zeros((5, 80), dtype)
    gemm(a, b, c[:, 5:62], 0.0)
    np.testing.assert_allclose(c[:, 5:62], a @ b, rtol=1e-5, atol=1e-4)
    assert not c[:, :5].any() and not c[:, 62:].any()  # nothing outside the window
    gemm(a, b, c[:, 5:62], 1.0)
    np.testing.assert_allclose(c[:, 5:62], 2 * (a @ b), rtol=1e-5, atol=1e-4)


def test_empty_dimensions(gemm32):
    c = np.full((3, 4), 7, np.float32)
    gemm32(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), c, 0.0)
    assert not c.any()  # an empty inner dimension is a zero product
    gemm32(np.zeros((0, 2), np.float32), np.zeros((2, 4), np.float32), c[:0], 0.0)
    gemm32(np.ones((3, 2), np.float32), np.zeros((2, 0), np.float32), c[:, :0], 0.0)


def test_single_row_operands(gemm32):
    """A one-row operand's stride may be anything in numpy; its leading dimension is its row."""
    a = np.arange(3, dtype=np.float32)[None, :]
    b = np.ones((3, 4), np.float32)
    c = np.empty((1, 4), np.float32)
    gemm32(a, b, c, 0.0)
    np.testing.assert_array_equal(c, [[3, 3, 3, 3]])


def test_other_dtypes_have_none():
    assert _blas.find_gemm(np.float16) is None
    assert _blas.find_gemm(np.int32) is None


def test_no_blas_library_means_none(monkeypatch):
    """Where threadpoolctl finds no BLAS (or none with a usable symbol), there is no direct GEMM
    and the kernels keep their numpy path."""
    monkeypatch.setattr(_blas, "_resolved", {})
    monkeypatch.setattr(_blas, "_blas_libraries", lambda: [])
    assert _blas.find_gemm(np.float32) is None
    assert _blas.find_gemm_batch(np.float32) is None


def test_a_gemm_that_gets_it_wrong_is_refused(monkeypatch):
    """The self-check against numpy rejects a symbol whose calling convention does not match."""

    class WrongLib:
        def __getattr__(self, name):
            def fn(*args):
                return None  # never writes c

            return fn

    monkeypatch.setattr(_blas, "_resolved", {})
    monkeypatch.setattr(_blas, "_blas_libraries", lambda: [WrongLib()])
    assert _blas.find_gemm(np.float32) is None


class _FakeLib:
    """A library with an OpenBLAS config string and no usable GEMM."""

    def __init__(self, config: bytes) -> None:
        self.config = config

    def __getattr__(self, name):
        if "get_config" in name:
            return lambda: self.config
        raise AttributeError(name)


def test_integer_width_follows_the_build():
    """A 64_-suffixed symbol is ILP64; an unsuffixed one takes the width openblas_get_config
    names, so the call matches the ABI (no guessing from a 64-bit register's low half)."""
    ilp64 = _FakeLib(b"OpenBLAS 0.3.31 USE64BITINT DYNAMIC_ARCH")
    lp64 = _FakeLib(b"OpenBLAS 0.3.31 DYNAMIC_ARCH")
    assert _blas._int_width(lp64, "scipy_cblas_sgemm64_") is _blas.ctypes.c_int64
    assert _blas._int_width(ilp64, "cblas_sgemm") is _blas.ctypes.c_int64
    assert _blas._int_width(lp64, "cblas_sgemm") is _blas.ctypes.c_int32

    class NoConfig:
        pass

    assert _blas._int_width(NoConfig(), "cblas_sgemm") is None


def test_only_openblas_libraries_are_used(monkeypatch):
    """MKL, Accelerate or BLIS keep the numpy paths: their integer width is not knowable here."""
    import threadpoolctl

    infos = [
        {"user_api": "blas", "internal_api": "mkl", "filepath": "libmkl_rt.so"},
        {"user_api": "blas", "internal_api": "openblas", "filepath": "libopenblas.so"},
        {"user_api": "openmp", "internal_api": "openmp", "filepath": "libgomp.so"},
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: infos)
    assert _threads.blas_paths() == ["libopenblas.so"]


@pytest.mark.parametrize(
    "count,m,k,n", [(16, 128, 128, 70), (3, 4, 5, 6), (2, 100, 100, 100), (0, 120, 120, 120)]
)
def test_batch_of_strided_products(count, m, k, n):
    """The batch of GEMMs over stacks of row-strided windows: large products (one direct GEMM
    call each) and small ones (numpy's loop)."""
    gemm_batch = _blas.find_gemm_batch(np.float32)
    if gemm_batch is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    rng = np.random.default_rng(count + m)
    a = rng.standard_normal((count, m, k + 3)).astype(np.float32)[:, :, 2 : k + 2]
    b = rng.standard_normal((count, k, n + 5)).astype(np.float32)[:, :, :n]
    c = np.full((count, m, n + 1), 2, np.float32)
    gemm_batch(a, b, c[:, :, 1:], 1.0)
    np.testing.assert_allclose(c[:, :, 1:], a @ b + 2, rtol=1e-4, atol=1e-3)
    assert (c[:, :, 0] == 2).all()


def test_layouts_blas_cannot_take_go_through_numpy(gemm32):
    """A broadcast operand (zero row stride) or an unaligned one is multiplied by numpy instead
    of reaching BLAS with an illegal leading dimension (which OpenBLAS reports on the console
    and then skips: a silent wrong answer)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 5)).astype(np.float32)
    row = rng.standard_normal((1, 6)).astype(np.float32)
    b = np.broadcast_to(row, (5, 6))  # every row the same memory
    c = np.ones((4, 6), np.float32)
    gemm32(a, b, c, 1.0)
    np.testing.assert_allclose(c, a @ b + 1, rtol=1e-5, atol=1e-5)
    raw = np.zeros(4 * 5 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(4, 5)  # unaligned
    raw[...] = a
    c = np.empty((4, 6), np.float32)
    gemm32(raw, np.ascontiguousarray(b), c, 0.0)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    batch = _blas.find_gemm_batch(np.float32)
    if batch is not None:
        big = rng.standard_normal((1, 128, 128)).astype(np.float32)
        stack = np.broadcast_to(big, (3, 128, 128))  # zero stride between matrices: fine
        rows = np.broadcast_to(big[:, :1, :], (3, 128, 128))  # zero row stride: numpy
        out = np.empty((3, 128, 128), np.float32)
        batch(stack, rows, out, 0.0)
        np.testing.assert_allclose(out, stack @ rows, rtol=1e-4, atol=1e-3)


def _address(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value


def test_gemm_and_thread_count_are_numpy_own_openblas(monkeypatch):
    """With a second OpenBLAS loaded (scipy's wheels bundle their own; numba imports scipy), the
    direct GEMM and the thread-count setter both resolve to numpy's library: the symbols
    numpy's core module sees. Taken from different libraries, the GEMM ran unpinned."""
    pytest.importorskip("scipy.linalg")  # loads scipy's OpenBLAS where scipy has one
    core = _threads._numpy_core()
    if core is None or _threads._thread_setter() is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS whose thread count can be set")
    setter = next(
        (getattr(core, name) for name, _ in _threads._THREAD_SYMBOLS if hasattr(core, name)), None
    )
    if setter is None:
        pytest.skip("numpy's core module does not see an OpenBLAS thread-count symbol")
    monkeypatch.setattr(_threads, "_thread_fns", [])
    monkeypatch.setattr(_blas, "_resolved", {})
    assert _address(_threads._thread_setter()[0]) == _address(setter)
    gemm = _blas.find_gemm(np.float32)
    assert gemm is not None
    fn = next(
        c.cell_contents for c in gemm.trans.__closure__ if hasattr(c.cell_contents, "argtypes")
    )
    names = [p.format("s") for p in _blas._SYMBOLS]
    assert any(hasattr(core, n) and _address(getattr(core, n)) == _address(fn) for n in names)


def _task_cpu() -> dict[str, int]:
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread CPU times: Linux")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: nothing to spill onto")
def test_pinned_products_run_on_the_calling_thread():
    """Inside a one-thread run (BLAS pinned) the direct GEMM and the batch keep to the calling
    thread: no other thread of the process gains more than a fraction of its CPU time (they
    used as much as the caller when the GEMM came from an unpinned library)."""
    pytest.importorskip("scipy.linalg")
    gemm, batch = _blas.find_gemm(np.float32), _blas.find_gemm_batch(np.float32)
    if gemm is None or batch is None or not _threads.can_set_threads():
        pytest.skip("numpy's BLAS exposes no GEMM or thread count this process can set")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((16, 384, 384)).astype(np.float32)
    c = np.empty_like(a)
    a @ a  # OpenBLAS's workers exist (numpy at its default thread count)
    time.sleep(0.3)  # ... and have stopped spinning after that product (about 0.1 s)
    me = str(threading.get_native_id())
    _threads.enter(None)
    try:
        before = _task_cpu()
        for _ in range(6):
            for i in range(16):
                gemm(a[i], a[i], c[i], 0.0)
            batch(a, a, c)
        after = _task_cpu()
    finally:
        _threads.leave()
    mine = after[me] - before[me]
    others = sum(t - before.get(k, 0) for k, t in after.items() if k != me)
    assert mine > 0 and others <= 0.25 * mine, (mine, others)
