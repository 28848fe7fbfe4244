"""Hook implementations of the CPU provider (loaded through the ``ort_core`` entry point)."""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_providers(register):
    from .provider import CPUExecutionProvider

    register(CPUExecutionProvider)
