"""ort-opencl: the OpenCL execution provider of ort-core (OpenCL C kernels through pyopencl)."""
