"""numpy kernels of the CPU provider, one module per op family.

The registry (:data:`ort_cpu.kernels._registry.registry`) loads them on demand: the first lookup
of an op imports the family modules that register its kernels (listed in :mod:`._index`), then
adds the shared array-API kernels of ``ort_array`` for the op's opsets the CPU does not run with
a tuned kernel of its own. A session thus imports only its model's families (a logistic
regression imports ``ml``, not the convolutions, attention and decoders); listing the registry
(``keys()``, ``ops()``) imports them all.

Add a family module to :data:`FAMILIES`, and after adding or moving a kernel run
``python -m ort_cpu.kernels._make_index`` to rewrite the index (a unit test checks it is current).
"""

from __future__ import annotations

import importlib

from ._index import FAMILIES_OF
from ._registry import registry

#: Family modules, imported in this order when the whole registry is listed. Add a module here
#: when you add a family.
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


def import_family(name: str) -> None:
    importlib.import_module(f"{__name__}.{name}")


class _Families:
    """The registry's :class:`~ort_core.provider.KernelSource`: family modules by the index."""

    def load(self, registry, key):
        for name in FAMILIES_OF.get(key, ()):
            import_family(name)
        # after the CPU's own kernels of the op: those win wherever they exist (ort_array adds a
        # shared kernel only below the lowest since-version the CPU registers for the op)
        import ort_array

        ort_array.register(registry, keys=(key,))

    def load_all(self, registry, loaded):
        for name in FAMILIES:
            import_family(name)
        import ort_array

        ort_array.register(registry, exclude=loaded)


registry.defer(_Families())

__all__ = ["registry", "FAMILIES", "import_family"]
