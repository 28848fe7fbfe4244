"""The execution-provider contract, the kernel registry and the helpers providers share.

A provider is a class deriving from :class:`ExecutionProvider`. Kernel providers (CPU, CUDA, OpenCL)
derive from :class:`KernelProvider` and get ``get_capability``/``create_kernel`` from a
:class:`KernelRegistry`; compiling providers (OpenVINO, CoreML) override ``get_capability`` to return
fused :class:`Claim` objects (grouped with :func:`convex_clusters`) and implement ``compile``.

Kernel calling convention: a kernel is a callable taking the node's inputs positionally (``None`` for
an omitted optional input), followed by the values of the node's implicit inputs (outer-scope names
read by its subgraphs, see :attr:`KernelInfo.implicit_inputs`). It returns one value when the op's
schema declares a single, non-variadic output, and a sequence of values otherwise (extra trailing
values are ignored). Values are numpy arrays on the host (strings as object arrays; bfloat16, float8
and int4 as ml_dtypes), lists for sequences, ``None`` for empty optionals, dicts for ONNX-ML maps.

Modules, one concern each: ``base`` (the ExecutionProvider class, Claim, Decline, Availability),
``context`` (RunContext: one run's streams and thread, and ``current_run()``), ``fp`` (numpy's
floating-point warnings off during runs: ``fp_errors_ignored()``),
``view`` (GraphView, KernelInfo), ``registry`` (KernelRegistry, KernelProvider), ``clusters``
(convex_clusters for compiling providers), ``schema`` (onnx schema lookups), ``dtypes`` (element-type
sets). Import from this package; the module split is not part of the contract.
"""

from .base import Availability, Claim, Decline, ExecutionProvider, KernelUnsupported
from .clusters import convex_clusters
from .context import RunContext, current_run
from .dtypes import (
    ALL_TYPES,
    FLOAT_TYPES,
    INT_TYPES,
    NUMERIC_TYPES,
    SIGNED_INT_TYPES,
    SIGNED_TYPES,
    UINT_TYPES,
)
from .fp import fp_errors_ignored
from .registry import KernelDef, KernelProvider, KernelRegistry, KernelSource
from .schema import is_multi_output, output_trimmer, schema_for
from .view import GraphView, KernelInfo

__all__ = [
    "Availability",
    "Claim",
    "Decline",
    "ExecutionProvider",
    "fp_errors_ignored",
    "GraphView",
    "KernelDef",
    "KernelInfo",
    "KernelProvider",
    "KernelRegistry",
    "KernelSource",
    "KernelUnsupported",
    "RunContext",
    "current_run",
    "convex_clusters",
    "schema_for",
    "is_multi_output",
    "output_trimmer",
    "FLOAT_TYPES",
    "INT_TYPES",
    "UINT_TYPES",
    "SIGNED_INT_TYPES",
    "SIGNED_TYPES",
    "NUMERIC_TYPES",
    "ALL_TYPES",
]
