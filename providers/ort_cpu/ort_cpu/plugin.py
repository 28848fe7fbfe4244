"""Hook implementations of the CPU provider (loaded through the ``ort_core`` entry point)."""

from ort_core.hookspecs import hookimpl


@hookimpl
def ort_register_ops(register):
    from .schemas import register_all

    register_all(register)


@hookimpl
def ort_register_providers(register):
    # by where it is: ort_cpu.provider (and its kernels) is imported when a session or a listing of
    # available providers first needs it; name and aliases are the class's (checked on import)
    register("ort_cpu.provider:CPUExecutionProvider", name="CPUExecutionProvider", aliases=("cpu",))


@hookimpl
def ort_register_passes(register):
    from .passes import PASSES

    for p in PASSES:
        register(p)
