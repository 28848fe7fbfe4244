"""One builder per ONNX op: the MIL ops it emits, and, beside it, when Core ML can take the node.

A builder is registered with :func:`builder`: the ONNX op types it converts, the lowest opset it
handles, the element types it accepts on its first input, the inputs Core ML needs constant, and a
``check`` that returns the reason a node's attributes or shapes are beyond Core ML (None when fine).
:func:`ort_coreml.capability.decide` asks these; :func:`ort_coreml.convert.build_program` calls the
builders. Builders receive a :class:`Ctx` and the node; they read inputs with ``ctx.x(i)`` (a MIL
variable, or a numpy constant for a constant input) and set outputs with ``ctx.out(i, var)``.

int64 values are int32 in the program (Core ML has no int64 tensors): constants are narrowed
(saturated: ends of Slice beyond the int32 range mean "to the end"), inputs are fed as int32 and
outputs widened back by the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort_core.ir import Node
from ort_core.provider import KernelInfo

F32, F16 = np.dtype(np.float32), np.dtype(np.float16)
I32, I64 = np.dtype(np.int32), np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
FLOATS = frozenset({F32, F16})
INTS = frozenset({I32, I64})
NUMERIC = FLOATS | INTS
ANY = NUMERIC | {BOOL}
#: Core ML's largest dimension (the capability checks and the builders that merge axes use it)
MAX_DIM = 16384

Check = Callable[[KernelInfo], "str | None"]


@dataclass(frozen=True)
class OpBuilder:
    """How one ONNX op becomes MIL ops, and what Core ML needs of the node."""

    op_type: str
    build: Callable[[Ctx, Node], None]
    since: int = 1
    dtypes: frozenset = FLOATS
    const_inputs: tuple[int, ...] = ()
    check: Check | None = None
    #: element types beyond :data:`ANY` the node may take or return: values that cannot cross a
    #: program's inputs and outputs, which the provider keeps inside a partition (8-bit tensors)
    carries: frozenset = frozenset()


BUILDERS: dict[str, OpBuilder] = {}


def builder(
    *op_types: str,
    since: int = 1,
    dtypes: frozenset = FLOATS,
    const_inputs: tuple[int, ...] = (),
    check: Check | None = None,
    carries: frozenset = frozenset(),
) -> Callable:
    """Register ``fn(ctx, node)`` as the builder of ``op_types`` (a duplicate is an error)."""

    def deco(fn: Callable[[Ctx, Node], None]) -> Callable[[Ctx, Node], None]:
        for op in op_types:
            if op in BUILDERS:
                raise ValueError(f"two Core ML builders for {op}")
            BUILDERS[op] = OpBuilder(op, fn, since, dtypes, const_inputs, check, carries)
        return fn

    return deco


def narrow(value: np.ndarray) -> np.ndarray:
    """A constant as Core ML holds it: int64 saturated to int32, float64 to float32."""
    value = np.asarray(value)
    if value.dtype == I64 or value.dtype == np.uint64:
        info = np.iinfo(np.int32)
        return np.clip(value, info.min, info.max).astype(np.int32)
    if value.dtype == np.float64:
        return value.astype(np.float32)
    return value


class Ctx:
    """Conversion state of one partition: ONNX value name -> MIL variable (or numpy constant)."""

    def __init__(self, mb: Any, values: dict[str, Any], constants: dict[str, np.ndarray]) -> None:
        self.mb = mb
        self.values = values
        self.constants = constants  # ONNX constants, original dtypes
        self.node: Node | None = None
        self.node_opset = 0  # the opset of the node being converted

    def has(self, i: int) -> bool:
        node = self.node
        return i < len(node.inputs) and bool(node.inputs[i])

    def x(self, i: int) -> Any:
        """Input ``i``: its MIL variable, or its narrowed constant."""
        name = self.node.inputs[i]
        if name in self.values:
            return self.values[name]
        return narrow(self.constants[name])

    def const(self, i: int) -> np.ndarray | None:
        """Input ``i``'s constant value in its ONNX dtype, or None."""
        return self.constants.get(self.node.inputs[i]) if self.has(i) else None

    def out(self, i: int, var: Any) -> None:
        name = self.node.outputs[i]
        if name:
            self.values[name] = var

    def shape(self, i: int) -> tuple[int, ...]:
        v = self.x(i)
        return tuple(int(d) for d in (v.shape if isinstance(v, np.ndarray) else v.shape))

    def rank(self, i: int) -> int:
        return len(self.shape(i))

    def np_dtype(self, i: int) -> np.dtype:
        """numpy dtype of input ``i`` as the program holds it (float32/16, int32, bool)."""
        v = self.x(i)
        if isinstance(v, np.ndarray):
            return v.dtype
        return np.dtype(
            {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}[
                self.dtype_str(i)
            ]
        )

    def dtype_str(self, i: int) -> str:
        """MIL dtype name of input ``i`` (fp32, fp16, int32, bool)."""
        v = self.x(i)
        if isinstance(v, np.ndarray):
            return {F32: "fp32", F16: "fp16", I32: "int32", BOOL: "bool"}[v.dtype]
        from coremltools.converters.mil.mil import types

        return types.builtin_to_string(v.dtype)


def attr_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def load_all() -> dict[str, OpBuilder]:
    """Import every builder module (registering their builders) and return the table."""
    from . import (  # noqa: F401
        einsum,
        elementwise,
        nn,
        quant,
        recurrent,
        reduce,
        resize,
        sampling,
        shape,
    )

    return BUILDERS
