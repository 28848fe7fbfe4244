"""The CUDA execution provider of ort-core (``CUDAExecutionProvider``, alias ``cuda``)."""
