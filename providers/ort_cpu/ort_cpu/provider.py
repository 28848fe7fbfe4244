"""CPUExecutionProvider: numpy kernels from :mod:`ort_cpu.kernels`."""

from __future__ import annotations

from ort_core.provider import KernelProvider

from .kernels import registry


class CPUExecutionProvider(KernelProvider):
    """Runs nodes with numpy kernels on the host. Always available; the default fallback.

    ``SessionOptions.intra_op_num_threads`` (when > 0) sets the number of BLAS threads numpy uses,
    through threadpoolctl. numpy has one BLAS pool per process, so the setting is process-wide:
    the last session created with a thread count decides it.
    """

    name = "CPUExecutionProvider"
    aliases = ("cpu",)
    device_type = "cpu"
    registry = registry

    def __init__(self, options=None, session_options=None):
        super().__init__(options, session_options)
        threads = int(getattr(session_options, "intra_op_num_threads", 0) or 0)
        if threads > 0:
            set_blas_threads(threads)


def set_blas_threads(threads: int) -> None:
    """Limit numpy's BLAS to ``threads`` threads (no-op when threadpoolctl finds no BLAS)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
