"""Hook implementations of the OpenVINO provider (loaded through the ``ort_core`` entry point).

Cheap to import: openvino itself is imported only when a session uses the provider.
"""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    from .provider import OpenVINOExecutionProvider

    register(OpenVINOExecutionProvider)
