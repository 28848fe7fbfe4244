"""Hook implementations of the CPU provider (loaded through the ``ort_core`` entry point)."""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_ops(register):
    from .schemas import register_all

    register_all(register)


@hookimpl
def ort_register_providers(register):
    from .provider import CPUExecutionProvider

    register(CPUExecutionProvider)
