"""numpy kernels of the CPU provider, one module per op family.

Importing this package imports every family module, which registers its kernels in
:data:`ort_cpu.kernels._registry.registry`, then adds the shared array-API kernels of
``ort_array`` for the ops (and older opsets) the CPU does not run with a tuned kernel of its own.
"""

import importlib

import ort_array

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
    "contrib_quant",
    "contrib_decoder",
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

# After the CPU's own kernels: those win wherever they exist (ort_array.register adds a shared
# kernel only below the lowest since-version the CPU registers for the op).
ort_array.register(registry)

__all__ = ["registry", "FAMILIES"]
