"""Hook implementations of the CUDA provider (loaded through the ``ort_core`` entry point).

Cheap to import and never raises without a GPU: cupy is imported only when the provider class
asks for it (``availability()`` reports cupy's own reason when it cannot run).
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    from .provider import CUDAExecutionProvider

    register(CUDAExecutionProvider)
