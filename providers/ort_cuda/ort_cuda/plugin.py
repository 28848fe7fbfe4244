"""Hook implementations of the CUDA provider (loaded through the ``ort_core`` entry point).

Cheap to import and never raises without a GPU: cupy is imported only when the provider class
asks for it (``availability()`` reports cupy's own reason when it cannot run).
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    # by where it is: ort_cuda.provider (and its kernels) is imported when a session or a listing of
    # available providers first needs it; name and aliases are the class's (checked on import)
    register(
        "ort_cuda.provider:CUDAExecutionProvider", name="CUDAExecutionProvider", aliases=("cuda",)
    )


@hookimpl
def ort_preload_libraries(cuda, cudnn):
    """``ort_core.preload_dlls()``: import cupy now (it loads the CUDA libraries it uses)."""
    try:
        import cupy  # noqa: F401
    except Exception:  # cupy reports its own reason when the provider is used
        return
