"""The CUDA provider's kernel registry and what its kernel modules share.

Kernels receive cupy arrays (host inputs, declared per registration, arrive as numpy arrays) and
run inside the run's stream, device and memory pool: the provider wraps every kernel it builds in
``CudaDevice.scope`` (see ``provider.py``), so a kernel launches with plain cupy calls.

Kernels that need the GPU runtime itself (cuBLAS settings, CUDA C modules, cupy.fuse) register
with ``limit=needs_cuda``: on a stand-in device (the tests on machines without a GPU) they decline
and the node goes to the shared array-API kernel or the CPU provider instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort_core.provider import KernelRegistry

NAME = "CUDAExecutionProvider"
registry = KernelRegistry(NAME)

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
    BF16 = None
#: Floating types the CUDA kernels compute (half types accumulate in float32).
FLOATS = frozenset(t for t in (F16, F32, F64, BF16) if t is not None)
INTS = frozenset(np.dtype(t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                       "uint32", "uint64"))  # fmt: skip
#: Every element type the provider's arrays hold (cupy has no strings).
ARRAY_TYPES = FLOATS | INTS | {np.dtype(np.bool_)}


def device_of(info: Any) -> Any:
    """The :class:`~ort_cuda.device.CudaDevice` of the provider building ``info``'s kernel."""
    return info.provider.cuda


def needs_cuda(info: Any) -> str | None:
    """``limit=`` of kernels that need the GPU runtime (a stand-in device has none)."""
    prov = getattr(info, "provider", None)
    dev = getattr(prov, "cuda", None)
    if dev is None or not dev.native:
        return "needs the CUDA runtime (cuBLAS or a CUDA C module); the device is a stand-in"
    return None
