"""Reference kernels of ort-core written once against the Python array API.

A kernel takes its inputs' namespace (``xp``: numpy's or cupy's through array-api-compat, or any
array-API library) and uses nothing else on tensor data, so the CPU provider and a device provider
run the same code. Shape-like inputs (Reshape's shape, Slice's starts...) are declared as host
inputs and read as host integers.

A provider registers the kernels into its own :class:`~ort_core.provider.KernelRegistry`::

    import ort_array
    ort_array.register(registry, skip={"MatMul"})   # after the provider's own (tuned) kernels

Kernels whose inputs all live on the host (Range) create their output in the namespace named by
the provider's ``xp`` attribute (numpy's when it has none).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from ort_core.provider import KernelRegistry

from . import _table
from ._xp import matmul_by, no_host_waits

#: Family modules, one per op family; importing one records its kernels in ``_table.SPECS``.
FAMILIES = (
    "elementwise",
    "reduction",
    "shape",
    "indexing",
    "normalization",
    "linalg",
    "contrib",
    "conv",
    "quant",
    "recurrent",
)


def _load() -> None:
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.kernels.{name}")


def register(
    registry: KernelRegistry,
    skip: Collection[str] = frozenset(),
    *,
    dtypes: Collection[Any] | None = None,
) -> list[tuple[str, str, int]]:
    """Register every shared kernel into ``registry`` and return the keys added.

    Call it after the provider registered its own kernels: for an op the registry already has,
    only shared versions below the provider's lowest since-version are added, so the provider's
    kernels always win (see :func:`ort_array._table.register`).

    Args:
        registry: the provider's kernel registry.
        skip: op types the provider runs itself at every opset (its tuned paths) or not at all.
        dtypes: the element types the provider's arrays hold (None: every type numpy holds).
    """
    _load()
    return _table.register(registry, skip=skip, dtypes=dtypes)


def ops() -> set[str]:
    """The op types the shared kernels cover."""
    _load()
    return {spec.op_type for spec in _table.SPECS}


__all__ = ["FAMILIES", "matmul_by", "no_host_waits", "ops", "register"]
