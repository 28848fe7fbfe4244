"""The CUDA provider's kernels: its own families, then the shared array-API kernels.

Importing this package imports every family module below, which registers its kernels in
:data:`ort_cuda.kernels._common.registry`; then ``ort_array.register`` adds the shared kernels
for every op (and older opset) the provider has no kernel of its own for, narrowed to the
element types cupy arrays hold. Nothing touches the GPU at import.
"""

import importlib

import ort_array

from ._common import ARRAY_TYPES, registry

#: The provider's own kernel families, imported in this order.
FAMILIES = ("shape", "conv", "raw")

for _name in FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")

#: Ops the shared kernels must not run here: strings (cupy has none) and the ops whose values
#: the provider keeps on the host itself.
SKIP = frozenset({"StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch"})
ort_array.register(registry, skip=SKIP, dtypes=ARRAY_TYPES)

__all__ = ["registry", "FAMILIES"]
