"""Hook implementations of the OpenCL provider (loaded through the ``ort_core`` entry point).

Cheap to import: pyopencl is imported only when the provider class is used.
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    # by where it is: ort_opencl.provider (and its kernels) is imported when a session or a listing of
    # available providers first needs it; name and aliases are the class's (checked on import)
    register(
        "ort_opencl.provider:OpenCLExecutionProvider",
        name="OpenCLExecutionProvider",
        aliases=("opencl",),
    )
