"""The shared kernels, one module per op family (imported by :func:`ort_array.register`)."""
