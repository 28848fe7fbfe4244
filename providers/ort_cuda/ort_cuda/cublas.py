"""Matrix products that a CUDA graph can capture: cuBLAS called directly through ctypes.

cupy refuses every cuBLAS call while a stream is being captured ("calling cuBLAS API during
stream capture is currently unsupported"), although cuBLAS itself supports capture when its
workspace is set up beforehand. A CUDA graph of a model with MatMul/Gemm/attention/convolution
therefore needs products that do not go through cupy's cuBLAS wrappers. :class:`CaptureBlas`
owns one cuBLAS handle per device, with a workspace allocated outside the capture, and computes
``a @ b`` with numpy's matmul semantics (1-D operands, broadcast batch dimensions) as one
``cublasGemmStridedBatchedEx`` on the current cupy stream.

:class:`~ort_cuda.graphs.CudaGraphRunner` installs :meth:`CaptureBlas.matmul` with
``ort_array.matmul_by`` for its warm-up and capture runs, so every kernel that multiplies
matrices through ``ort_array``'s ``matmul`` (MatMul, Gemm, FusedMatMul, im2col convolution,
attention, the recurrent ops) is captured, and the warm-up computes exactly what the replays do.

The library is the one cupy loaded (found with ``cuda.pathfinder``, a dependency of cupy).
Float32 products use TF32 tensor cores unless ``use_tf32=0``, as cupy's path does; float16 and
bfloat16 accumulate in float32; float64 in float64. Other element types fall back to cupy
(outside a capture that works; inside, cupy's error names the problem).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

__all__ = ["CaptureBlas", "capture_blas"]

# cublasOperation_t, cudaDataType, cublasComputeType_t, cublasGemmAlgo_t (cuBLAS's headers)
_OP_N = 0
_R_32F, _R_64F, _R_16F, _R_16BF = 0, 1, 2, 14
_COMPUTE_32F, _COMPUTE_32F_FAST_TF32, _COMPUTE_64F = 68, 77, 70
_GEMM_DEFAULT = -1
#: bytes of the workspace given to cuBLAS before any capture (cuBLAS asks for at most 32 MiB
#: on Hopper; it must not allocate while capturing)
WORKSPACE = 32 << 20

_TYPES = {"float32": _R_32F, "float64": _R_64F, "float16": _R_16F, "bfloat16": _R_16BF}


class CublasError(RuntimeError):
    pass


def _load() -> ctypes.CDLL:
    from cuda.pathfinder import load_nvidia_dynamic_lib

    lib = ctypes.CDLL(load_nvidia_dynamic_lib("cublas").abs_path)
    vp, i, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
    lib.cublasSetStream_v2.argtypes = [vp, vp]
    lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
    lib.cublasGemmStridedBatchedEx.argtypes = [
        vp, i, i, i, i, i,  # handle, transa, transb, m, n, k
        vp, vp, i, i, i64,  # alpha, A, Atype, lda, strideA
        vp, i, i, i64,  # B, Btype, ldb, strideB
        vp, vp, i, i, i64,  # beta, C, Ctype, ldc, strideC
        i, i, i,  # batchCount, computeType, algo
    ]  # fmt: skip
    for name in ("cublasCreate_v2", "cublasSetStream_v2", "cublasSetWorkspace_v2",
                 "cublasGemmStridedBatchedEx"):  # fmt: skip
        getattr(lib, name).restype = ctypes.c_int
    return lib


class CaptureBlas:
    """cuBLAS products on one device that a stream capture can record (module docstring)."""

    def __init__(self, dev: Any) -> None:
        self.dev = dev
        cp = dev.cp
        with dev._device:
            cp.cuda.device.get_cublas_handle()  # cupy loads libcublas first: we use that one
            self.lib = _load()
            handle = ctypes.c_void_p()
            self._check(self.lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
            self.handle = handle
            self.workspace = cp.empty(WORKSPACE, cp.uint8)
            self._check(
                self.lib.cublasSetWorkspace_v2(handle, self.workspace.data.ptr, WORKSPACE),
                "cublasSetWorkspace",
            )
        self._lock = threading.Lock()

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise CublasError(f"{what} failed with cuBLAS status {status}")

    def supports(self, a: Any, b: Any) -> bool:
        return a.dtype == b.dtype and a.dtype.name in _TYPES

    def matmul(self, xp: Any, a: Any, b: Any, tf32: bool = True) -> Any:
        """``xp.matmul(a, b)`` with numpy's semantics, as one batched cuBLAS GEMM on the current
        stream (other element types: cupy's matmul)."""
        if not self.supports(a, b):
            return xp.matmul(a, b)
        cp = self.dev.cp
        squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
        if squeeze_a:
            a = a.reshape(1, -1)
        if squeeze_b:
            b = b.reshape(-1, 1)
        m, k = a.shape[-2:]
        k2, n = b.shape[-2:]
        if k != k2:
            raise ValueError(f"matmul: operand shapes {a.shape} and {b.shape} do not align")
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        count = int(np.prod(batch, dtype=np.int64))
        out = cp.empty(batch + (m, n), a.dtype)
        if out.size and k == 0:
            out.fill(0)
        elif out.size:
            a2, sa = _operand(cp, a, batch)
            b2, sb = _operand(cp, b, batch)
            self._gemm(a2, sa, b2, sb, out, m, n, k, count, tf32)
        if squeeze_a:
            out = out.reshape(out.shape[:-2] + (n,))
        if squeeze_b:
            out = out.reshape(out.shape[:-1])
        return out

    def _gemm(self, a, sa, b, sb, out, m, n, k, count, tf32) -> None:
        dt = a.dtype.name
        t = _TYPES[dt]
        if dt == "float64":
            compute, scalar = _COMPUTE_64F, ctypes.c_double
        else:
            compute = _COMPUTE_32F_FAST_TF32 if (tf32 and dt == "float32") else _COMPUTE_32F
            scalar = ctypes.c_float
        one, zero = scalar(1), scalar(0)
        stream = self.dev.cp.cuda.get_current_stream().ptr
        # row-major C (m x n) = A (m x k) @ B (k x n) is column-major C^T = B^T @ A^T, and a
        # row-major matrix read column-major is its transpose: no transposition is needed
        with self._lock:
            self._check(self.lib.cublasSetStream_v2(self.handle, stream), "cublasSetStream")
            status = self.lib.cublasGemmStridedBatchedEx(
                self.handle, _OP_N, _OP_N, n, m, k,
                ctypes.byref(one), b.data.ptr, t, n, sb,
                a.data.ptr, t, k, sa,
                ctypes.byref(zero), out.data.ptr, t, n, m * n,
                count, compute, _GEMM_DEFAULT,
            )  # fmt: skip
        self._check(status, f"cublasGemmStridedBatchedEx ({dt}, {count} x {m}x{k}x{n})")


def _operand(cp: Any, x: Any, batch: tuple[int, ...]) -> tuple[Any, int]:
    """``x`` as a C-contiguous stack of matrices for ``batch``, and its batch stride in
    elements (0 when one matrix serves every batch entry)."""
    mat = x.shape[-2] * x.shape[-1]
    if int(np.prod(x.shape[:-2], dtype=np.int64)) == 1:  # one matrix, broadcast
        x = x.reshape(x.shape[-2:])
        return (x if x.flags.c_contiguous else cp.ascontiguousarray(x)), 0
    if tuple(x.shape[:-2]) != batch:
        x = cp.broadcast_to(x, batch + x.shape[-2:])
    if not x.flags.c_contiguous:
        x = cp.ascontiguousarray(x)  # a copy kernel: capture records it like any other
    return x, mat


_BLAS: dict[int, CaptureBlas] = {}
_BLAS_LOCK = threading.Lock()


def capture_blas(dev: Any) -> CaptureBlas:
    """The :class:`CaptureBlas` of a :class:`~ort_cuda.device.CudaDevice` (one per device)."""
    with _BLAS_LOCK:
        blas = _BLAS.get(dev.id)
        if blas is None:
            blas = _BLAS[dev.id] = CaptureBlas(dev)
        return blas
