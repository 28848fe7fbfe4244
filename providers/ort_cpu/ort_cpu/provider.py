"""CPUExecutionProvider: numpy kernels from :mod:`ort_cpu.kernels`."""

from __future__ import annotations

from ort_core.provider import KernelProvider

from .kernels import registry


class CPUExecutionProvider(KernelProvider):
    """Runs nodes with numpy kernels on the host. Always available; the default fallback."""

    name = "CPUExecutionProvider"
    aliases = ("cpu",)
    device_type = "cpu"
    registry = registry
