"""A fused partition converted to Core ML: the callable the core runs for it.

The partition is converted to an ML Program for the concrete shapes of its inputs: at session
creation when they are all static, else on the first run with each new set of input shapes (the
most recent :data:`SHAPE_CACHE_SIZE` conversions are kept). With ``ModelCacheDirectory`` the
package is saved there under :func:`~ort_coreml.convert.cache_key` and reused by later sessions.

Two runtimes run the converted program:

- Core ML, on macOS: coremltools' ``MLModel`` with the chosen compute units and optimization hints.
  UNVERIFIED HERE: no Mac is available to this project's CI; see docs/providers/coreml.md.
- the MIL reference runtime (``milref.py``), when ``ORT_COREML_REFERENCE=1``: numpy evaluation of
  the very program saved in the package, reloaded from it when it came from the cache.

int64 inputs are fed as int32 (values outside the int32 range are an error naming the input),
outputs are widened back to their ONNX element types, and rank-0 values travel as shape (1,).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ort_core import logs
from ort_core.errors import InvalidArgument
from ort_core.ir import Graph, tensor_dtype, tensor_shape

from .convert import (
    PROVIDER,
    Signature,
    build_program,
    cache_key,
    load_program,
    save_atomically,
    to_mlmodel,
)
from .options import CoreMLOptions

SHAPE_CACHE_SIZE = 8
_I32 = np.iinfo(np.int32)


class Converted:
    """One conversion of a partition: its signature and a runner for it."""

    def __init__(self, sig: Signature, run: Any, runtime: str, path: str | None) -> None:
        self.sig = sig
        self.run = run
        self.runtime = runtime
        self.package_path = path


class CompiledPartition:
    """Runs a partition with Core ML or with the MIL reference runtime (see module doc)."""

    def __init__(
        self,
        sub: Graph,
        opsets: dict[str, int],
        options: CoreMLOptions,
        reference: bool,
        name: str = "",
    ) -> None:
        self.sub = sub
        self.opsets = dict(opsets)
        self.options = options
        self.reference = reference
        self.name = name or sub.name
        self.runtime = "MIL reference runtime (numpy)" if reference else "Core ML"
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Converted] = OrderedDict()
        self.dtypes = []
        shapes = []
        for name in sub.inputs:
            tp = sub.value_types.get(name)
            self.dtypes.append(tensor_dtype(tp))
            shapes.append(tensor_shape(tp))
        if shapes and all(s is not None and all(isinstance(d, int) for d in s) for s in shapes):
            self._get(tuple(tuple(s) for s in shapes))  # static: convert now
        elif not sub.inputs:
            self._get(())

    # -- conversion -----------------------------------------------------------------------------
    def _get(self, shapes: tuple) -> Converted:
        with self._lock:
            hit = self._cache.get(shapes)
            if hit is not None:
                self._cache.move_to_end(shapes)
                return hit
            conv = self._convert(list(shapes))
            self._cache[shapes] = conv
            while len(self._cache) > SHAPE_CACHE_SIZE:
                self._cache.popitem(last=False)
            return conv

    def _convert(self, shapes: list) -> Converted:
        opts = self.options
        path = None
        if opts.model_cache_directory:
            key = cache_key(self.sub, self.opsets, shapes, self.dtypes, opts.compute_precision)
            path = os.path.join(opts.model_cache_directory, f"{key}.mlpackage")
        prog, sig = build_program(self.sub, self.opsets, shapes, self.dtypes)
        if self.reference:
            from .milref import MilReferenceRuntime

            if path is not None and os.path.isdir(path):
                program = load_program(path)
            else:
                mlmodel = to_mlmodel(prog, opts.compute_precision, opts.compute_units, False)
                if path is not None:
                    save_atomically(mlmodel, path)
                program = mlmodel._mil_program
            runtime = MilReferenceRuntime(program)
            return Converted(sig, runtime.run, runtime.name, path)
        return self._convert_coreml(prog, sig, path)

    def _convert_coreml(self, prog: Any, sig: Signature, path: str | None) -> Converted:
        # UNVERIFIED: runs on macOS only; no Mac is available to this project's CI.
        from .convert import compute_unit, coremltools

        ct = coremltools()
        opts = self.options
        hints: dict[str, Any] = {}
        if opts.specialization_strategy == "FastPrediction":
            hints["specializationStrategy"] = ct.SpecializationStrategy.FastPrediction
        if opts.allow_low_precision_accumulation_on_gpu:
            hints["allowLowPrecisionAccumulationOnGPU"] = True
        converted = None  # owns the temporary package when there is no ModelCacheDirectory
        if path is None or not os.path.isdir(path):
            converted = to_mlmodel(prog, opts.compute_precision, opts.compute_units, False)
            if path is None:
                path = converted.package_path
            else:
                save_atomically(converted, path)
        model = ct.models.MLModel(
            path,
            compute_units=compute_unit(opts.compute_units),
            optimization_hints=hints or None,
        )
        if opts.profile_compute_plan:
            _log_compute_plan(ct, model, opts.compute_units)

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return model.predict(feeds)

        run.keep = converted  # type: ignore[attr-defined]  # the package outlives the model
        return Converted(sig, run, "Core ML", path)

    # -- running --------------------------------------------------------------------------------
    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        arrays = [np.asarray(x) for x in inputs]
        conv = self._get(tuple(tuple(int(d) for d in a.shape) for a in arrays))
        feeds = {}
        for (name, mname, _dt, shape), a in zip(conv.sig.inputs, arrays):
            if a.dtype == np.int64 and a.size and (a.min() < _I32.min or a.max() > _I32.max):
                raise InvalidArgument(
                    f"{PROVIDER}: input '{name}' of {self.name} holds int64 values outside the "
                    "int32 range Core ML computes in; run this model on another provider "
                    "(providers=['CPUExecutionProvider'])."
                )
            io = {np.float32: np.float32, np.float16: np.float16}.get(a.dtype.type, np.int32)
            feeds[mname] = a.astype(io, copy=False).reshape(shape or (1,))
        outs = conv.run(feeds)
        result = []
        for _name, mname, dt, scalar in conv.sig.outputs:
            v = np.asarray(outs[mname])
            if scalar:
                v = v.reshape(())
            result.append(v.astype(dt, copy=False) if dt is not None else v)
        return result


def _log_compute_plan(ct: Any, model: Any, units: str) -> None:
    """ProfileComputePlan=1: log which device each operation of the main function prefers and
    its estimated cost (Core ML's MLComputePlan; macOS 14.4+). UNVERIFIED: macOS only."""
    from .convert import compute_unit

    compiled = model.get_compiled_model_path()
    plan = ct.models.compute_plan.MLComputePlan.load_from_path(
        compiled, compute_units=compute_unit(units)
    )
    program = plan.model_structure.program
    if program is None:
        return
    for op in program.functions["main"].block.operations:
        usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
        cost = plan.get_estimated_cost_for_mlprogram_operation(op)
        device = type(usage.preferred_compute_device).__name__ if usage else "unknown"
        logs.log(
            logs.Severity.INFO,
            f"{PROVIDER} compute plan: {op.operator_name} on {device}, estimated cost "
            f"{cost.weight if cost else 'unknown'}",
            category="providers",
        )


__all__ = ["CompiledPartition", "SHAPE_CACHE_SIZE"]
