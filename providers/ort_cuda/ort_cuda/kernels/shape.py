"""Shape and Size: their values are read by the host (Reshape's shape, Slice's starts...), so the
kernels return host arrays (``host_outputs``), as onnxruntime's CUDA kernels write them to CPU
memory; reading a tensor's shape never waits for the GPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import ARRAY_TYPES, registry


@registry.kernel("Shape", since=(1, 13, 15, 19, 21, 23, 24), dtypes=ARRAY_TYPES, host_outputs=(0,))
def shape(x: Any, start: int = 0, end: int | None = None) -> np.ndarray:
    dims = tuple(x.shape)
    r = len(dims)
    lo = max(0, min(r, start + r if start < 0 else start))
    hi = r if end is None else max(0, min(r, end + r if end < 0 else end))
    return np.array(dims[lo:hi], dtype=np.int64)


@registry.kernel("Size", since=(1, 13, 19, 21, 23, 24), dtypes=ARRAY_TYPES, host_outputs=(0,))
def size(x: Any) -> np.ndarray:
    return np.array(int(np.prod(x.shape, dtype=np.int64)), dtype=np.int64)


@registry.builder("ConstantOfShape", since=(9, 20, 21, 23, 24), host_inputs=(0,))
def constant_of_shape(info: Any) -> Any:
    """A tensor of the given shape (read on the host) filled on the device with ``value``."""
    from ort_array._xp import dtype as xp_dtype

    value = info.attr("value")
    arr = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    xp = info.provider.xp
    dt = xp_dtype(xp, arr.dtype)
    fill = arr[0].item()

    def run(shape: np.ndarray) -> Any:
        return xp.full(tuple(int(d) for d in np.asarray(shape).reshape(-1)), fill, dtype=dt)

    return run
