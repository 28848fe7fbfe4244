"""Hook implementations of the Core ML provider (loaded through the ``ort_core`` entry point).

Cheap to import: coremltools itself is imported only when a session uses the provider.
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    # by where it is: ort_coreml.provider is imported when a session or a listing of available
    # providers first needs it; name and aliases are the class's (checked on import)
    register(
        "ort_coreml.provider:CoreMLExecutionProvider",
        name="CoreMLExecutionProvider",
        aliases=("coreml",),
    )
