"""GEMMs through cuBLAS (cupy's matmul) with onnxruntime's TF32 rule: float32 products use
TF32 tensor cores unless the session asks ``use_tf32=0``.

cupy keeps the cuBLAS compute type per element type in process-wide state, so :func:`tf32`
sets it for one kernel call under a lock and restores it: two sessions in one process with
different ``use_tf32`` never see each other's setting. The provider wraps every GEMM-bearing
kernel (``GEMM_OPS``) this way, the shared array-API ones included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Ops whose kernels run float32 GEMMs (directly or through im2col).
GEMM_OPS = frozenset({
    ("", "MatMul"), ("", "Gemm"), ("", "Einsum"), ("", "Conv"), ("", "ConvTranspose"),
    ("com.microsoft", "FusedMatMul"), ("com.microsoft", "FusedGemm"),
    ("com.microsoft", "FusedConv"), ("com.microsoft", "Attention"),
    ("com.microsoft", "MultiHeadAttention"),
})  # fmt: skip

_LOCK = threading.Lock()


def tf32(fn: Callable[..., Any], dev: Any, enabled: bool) -> Callable[..., Any]:
    """``fn`` with cuBLAS float32 GEMMs in TF32 (``enabled``) or full float32, for this call."""
    if not dev.native:
        return fn
    from cupy._core import _routines_linalg as rl

    f32 = dev.cp.dtype("float32")
    mode = rl.COMPUTE_TYPE_TF32 if enabled else rl.COMPUTE_TYPE_FP32

    def run(*args: Any) -> Any:
        with _LOCK:
            before = rl.get_compute_type(f32)
            rl.set_compute_type(f32, mode)
            try:
                return fn(*args)
            finally:
                rl.set_compute_type(f32, before)

    return run
