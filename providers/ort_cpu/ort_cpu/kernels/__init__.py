"""numpy kernels of the CPU provider, one module per op family.

Importing this package imports every family module, which registers its kernels in
:data:`ort_cpu.kernels._registry.registry`.
"""

import importlib

from ._registry import registry

#: Family modules, imported in this order. Add a module here when you add a family.
FAMILIES = (
    "elementwise",
    "reduction",
    "linalg",
    "quantization",
    "conv",
    "pool",
    "normalization",
    "rnn",
    "image",
    "shape_ops",
    "indexing",
    "combine",
    "sequence",
    "random",
    "text",
    "ml",
    "signal",
    "loss",
    "contrib",
    "contrib_text",
    "control_flow",
    "training",
    "attention",
)

for _name in FAMILIES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as e:  # a family not written yet
        if e.name != f"{__name__}.{_name}":
            raise

__all__ = ["registry", "FAMILIES"]
