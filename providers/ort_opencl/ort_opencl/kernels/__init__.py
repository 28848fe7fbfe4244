"""OpenCL C kernels of the OpenCL provider, one module per op family.

Importing this package imports every family module, which registers its kernels in
:data:`ort_opencl.kernels._common.registry`. The modules hold the C sources as strings; nothing is
compiled until a session builds a node's kernel (programs are cached per device and source).
"""

import importlib

from ._common import registry

#: Family modules, imported in this order. Add a module here when you add a family.
FAMILIES = (
    "elementwise",
    "reduction",
    "linalg",
    "conv",
    "pool",
    "normalization",
    "shape_ops",
    "indexing",
    "image",
)

for _name in FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["registry", "FAMILIES"]
