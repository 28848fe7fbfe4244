"""The CPU provider's kernel registry. Kernel modules register with ``@kernel`` or ``@builder``."""

from ort_core.provider import KernelRegistry

registry = KernelRegistry("CPUExecutionProvider")
kernel = registry.kernel
builder = registry.builder
