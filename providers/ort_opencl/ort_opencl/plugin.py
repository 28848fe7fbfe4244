"""Hook implementations of the OpenCL provider (loaded through the ``ort_core`` entry point).

Cheap to import: pyopencl is imported only when the provider class is used.
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    from .provider import OpenCLExecutionProvider

    register(OpenCLExecutionProvider)
