"""A partition (a fused subgraph) as a MIL program, and the program as an ML Program package.

:func:`build_program` runs each node's builder (``builders/``) inside one MIL function whose inputs
have the concrete shapes of a run (Core ML compiles static shapes; a partition with dynamic input
shapes is converted once per distinct set of shapes, see ``kernel.py``). :func:`to_mlpackage`
converts the program with ``ct.convert(..., convert_to="mlprogram")`` for the deployment target
:data:`TARGET` and saves it; :func:`cache_key` names it in ``ModelCacheDirectory`` from the bytes of
the partition's ONNX model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ort_core.errors import EPFail
from ort_core.ir import Graph, graph_to_proto

from . import __version__
from .builders import BOOL, F16, F32, I32, I64, Ctx, load_all

PROVIDER = "CoreMLExecutionProvider"
#: Core ML's ML Program deployment target: iOS 17 / macOS 14 (Core ML specification version 8)
TARGET_NAME = "iOS17"
SPEC_VERSION = 8


def coremltools():
    """Import coremltools with its import-time notices (missing native libraries off macOS,
    unsupported scikit-learn versions) kept off the console; they say nothing about this
    provider, which reports its own availability."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import coremltools as ct
        from coremltools.converters.mil import Builder  # noqa: F401
    return ct


def target():
    return getattr(coremltools().target, TARGET_NAME)


#: ONNX element type -> the MIL type of a program input or output holding it
IO_DTYPES = {F32: "fp32", F16: "fp16", I64: "int32", I32: "int32", BOOL: "int32"}


def mil_name(name: str, taken: set[str]) -> str:
    """A MIL identifier for an ONNX value name, unique among ``taken``."""
    base = re.sub(r"\W", "_", name) or "v"
    if not re.match(r"[A-Za-z_]", base):
        base = "v_" + base
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


@dataclass
class Signature:
    """How an ONNX partition's values map onto the program's inputs and outputs."""

    inputs: list[tuple[str, str, np.dtype, tuple[int, ...]]] = field(default_factory=list)
    outputs: list[tuple[str, str, np.dtype | None, bool]] = field(default_factory=list)
    # inputs: (onnx name, MIL name, ONNX dtype, shape)
    # outputs: (onnx name, MIL name, ONNX dtype, rank 0: travels as shape (1,))


def build_program(
    sub: Graph,
    opsets: dict[str, int],
    shapes: list[tuple[int, ...]],
    dtypes: list[np.dtype],
) -> tuple[Any, Signature]:
    """The MIL program of ``sub`` for inputs of ``shapes`` and ONNX ``dtypes``.

    Raises:
        EPFail: a builder failed; the message names node, op, opset and provider.
    """
    coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program, types

    builders = load_all()
    taken: set[str] = set()
    sig = Signature()
    specs = {}
    for name, shape, dt in zip(sub.inputs, shapes, dtypes):
        mname = mil_name(name, taken)
        io_shape = tuple(shape) or (1,)  # Core ML has no rank-0 inputs: fed as (1,)
        specs[mname] = mb.placeholder(
            shape=io_shape, dtype=types.string_to_builtin(IO_DTYPES[np.dtype(dt)])
        )
        sig.inputs.append((name, mname, np.dtype(dt), tuple(shape)))
    with Function(specs, opset_version=target()) as func:
        values: dict[str, Any] = {}
        for name, mname, dt, shape in sig.inputs:
            v = func.inputs[mname]
            if not shape:
                v = mb.reshape(x=v, shape=np.zeros((0,), np.int32))
            if dt == BOOL:
                v = mb.cast(x=v, dtype="bool")
            values[name] = v
        ctx = Ctx(mb, values, dict(sub.initializers))
        for node in sub.nodes:
            ctx.node = node
            ctx.node_opset = opsets.get(node.domain, opsets.get("", 1))
            try:
                builders[node.op_type].build(ctx, node)
            except Exception as e:
                raise EPFail(
                    f"{PROVIDER} could not convert {node.label()} (opset {ctx.node_opset}) to "
                    f"Core ML: {type(e).__name__}: {e}. Leave it to the next provider with "
                    "ORT_CORE_DISABLE_PLUGINS=coreml, or report the model to ort-coreml."
                ) from e
        outs = []
        for name in sub.outputs:
            v = values[name]
            if isinstance(v, np.ndarray):
                v = mb.identity(x=v)
            mname = mil_name(name, taken)
            if types.is_bool(v.dtype):
                v = mb.cast(x=v, dtype="int32")
            scalar = v.rank == 0
            if scalar:
                v = mb.reshape(x=v, shape=np.array([1], np.int32))
            outs.append(mb.identity(x=v, name=mname))
            tp = sub.value_types.get(name)
            odt = None
            if tp is not None and tp.tensor_type.elem_type:
                odt = helper.tensor_dtype_to_np_dtype(tp.tensor_type.elem_type)
            sig.outputs.append((name, mname, odt, scalar))
        func.set_outputs(outs)
    prog = Program()
    prog.add_function("main", func)
    return prog, sig


def to_mlmodel(prog: Any, precision: str, compute_units: str, load: bool) -> Any:
    """``ct.convert`` the program to an ML Program (its progress bars kept off the console)."""
    ct = coremltools()
    # coremltools drops a TemporaryDirectory of weights inside convert (a ResourceWarning when it
    # is collected): the package holds a copy, so the warning says nothing to users
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return ct.convert(
            prog,
            convert_to="mlprogram",
            minimum_deployment_target=target(),
            compute_precision=getattr(ct.precision, precision),
            compute_units=compute_unit(compute_units),
            skip_model_load=not load,
        )


def compute_unit(name: str) -> Any:
    """coremltools' ComputeUnit for an ``MLComputeUnits`` option value."""
    ct = coremltools()
    return {
        "CPUOnly": ct.ComputeUnit.CPU_ONLY,
        "CPUAndNeuralEngine": ct.ComputeUnit.CPU_AND_NE,
        "CPUAndGPU": ct.ComputeUnit.CPU_AND_GPU,
        "ALL": ct.ComputeUnit.ALL,
    }[name]


def cache_key(
    sub: Graph, opsets: dict[str, int], shapes: list, dtypes: list, precision: str
) -> str:
    """A key derived from the bytes of the partition's ONNX model and what its conversion depends
    on (input shapes and types, precision, deployment target, this package's version)."""
    gp = graph_to_proto(sub)
    model = helper.make_model(
        gp, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    h = hashlib.sha256(model.SerializeToString(deterministic=True))
    h.update(repr((shapes, [str(d) for d in dtypes], precision, TARGET_NAME, __version__)).encode())
    return h.hexdigest()[:32]


def save_atomically(mlmodel: Any, path: str) -> None:
    """Save ``mlmodel`` at ``path`` (an .mlpackage folder); concurrent savers of the same key
    leave one complete package."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".ort-coreml-", dir=folder)
    try:
        staged = os.path.join(tmp, os.path.basename(path))
        mlmodel.save(staged)
        try:
            os.replace(staged, path)
        except OSError:  # another process saved the same key first: keep theirs
            if not os.path.isdir(path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_program(path: str) -> Any:
    """The MIL program stored in an .mlpackage (its spec and weights), for the reference runtime."""
    ct = coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    spec = ct.utils.load_spec(path)
    weights = os.path.join(path, "Data", "com.apple.CoreML", "weights")
    return milproto_load(
        spec, specification_version=spec.specificationVersion, file_weights_dir=weights
    )


def onnx_model_of(sub: Graph, opsets: dict[str, int]) -> onnx.ModelProto:
    """The partition as a standalone ONNX model (for tests and error reports)."""
    gp = graph_to_proto(sub)
    return helper.make_model(
        gp, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
