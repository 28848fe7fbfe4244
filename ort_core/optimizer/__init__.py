"""The graph optimizer: onnxruntime's levels, one module per pass in ``passes/``.

See :mod:`ort_core.optimizer._infra` for the pass contract. Plugins add passes through the
``ort_register_passes`` hook.
"""

from ._infra import (
    GraphOptimizationLevel,
    GraphPass,
    OptimizationReport,
    PassContext,
    all_passes,
    builtin_passes,
    check_disabled,
    optimize,
)

__all__ = [
    "GraphOptimizationLevel",
    "GraphPass",
    "OptimizationReport",
    "PassContext",
    "all_passes",
    "builtin_passes",
    "check_disabled",
    "optimize",
]
