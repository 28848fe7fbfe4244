"""SmoothQuant (Xiao et al., 2023): move activation outliers into the weights before quantizing.

A few activation channels much larger than the rest force a coarse per-tensor scale on every
channel. For each MatMul, Gemm or 1x1 Conv whose weight is a constant, SmoothQuant divides input
channel j of the activation by ``s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)`` and multiplies
row j of the weight (the weights for input channel j) by ``s_j``, so the product is unchanged while
the activation's range evens out. ``max|X_j|`` comes from running calibration batches through
ort-core's ``InferenceSession``.

The division is folded into the op producing the activation (a LayerNormalization's scale and
bias, a MatMul/Gemm/Conv's output channels and their bias) when folding is on and every reader of
the activation is smoothed with the same scales; otherwise a Mul by ``1 / s`` is inserted before
the smoothed readers. Activations read by several smoothable ops get one scale per channel, from
the largest weight row over all of them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ._graph import _all_inputs, attr, elem_types, infer_types
from .calibrate import _augment, _batches

__all__ = ["DEFAULTS", "check_options", "smooth_model"]

logger = logging.getLogger(__name__)

#: the extra_options SmoothQuant reads, with their defaults (onnxruntime's names; the batch
#: count is ort-core's, at the default neural-compressor uses)
DEFAULTS: dict[str, Any] = {
    "SmoothQuant": False,
    "SmoothQuantAlpha": 0.5,
    "SmoothQuantFolding": True,
    "SmoothQuantCalibIter": 100,
}
#: the smallest smoothing factor written (a factor of 0 would erase a channel)
MIN_SCALE = 1e-5


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def check_options(extra: dict) -> None:
    """ValueError naming the option for a SmoothQuant value of the wrong kind or range."""
    for key in ("SmoothQuant", "SmoothQuantFolding"):
        if key in extra and not _is_bool(extra[key]):
            raise ValueError(f"extra_options[{key!r}] must be True or False, got {extra[key]!r}")
    if "SmoothQuantAlpha" in extra:
        a = extra["SmoothQuantAlpha"]
        if _is_bool(a) or not isinstance(a, (int, float, np.integer, np.floating)):
            raise ValueError(f"extra_options['SmoothQuantAlpha'] must be a number, got {a!r}")
        if not (math.isfinite(float(a)) and 0.0 <= float(a) <= 1.0):
            raise ValueError(f"extra_options['SmoothQuantAlpha'] must be in [0, 1], got {a!r}")
    if "SmoothQuantCalibIter" in extra:
        n = extra["SmoothQuantCalibIter"]
        if _is_bool(n) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(
                f"extra_options['SmoothQuantCalibIter'] must be a positive integer, got {n!r}"
            )


def settings(extra: dict) -> dict | None:
    """The SmoothQuant settings in effect (None when SmoothQuant is off)."""
    if not extra.get("SmoothQuant", False):
        return None
    return {
        "alpha": float(extra.get("SmoothQuantAlpha", DEFAULTS["SmoothQuantAlpha"])),
        "folding": bool(extra.get("SmoothQuantFolding", DEFAULTS["SmoothQuantFolding"])),
        "calib_iter": int(extra.get("SmoothQuantCalibIter", DEFAULTS["SmoothQuantCalibIter"])),
    }


@dataclass
class _Target:
    """A smoothable op: its weight initializer and the axis of it that indexes input channels."""

    node: onnx.NodeProto
    weight: str
    w_axis: int
    conv: bool  # the activation's channels are axis 1 (Conv), else its last axis


def _along(v: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """``v`` shaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def _divide_along(axis: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Divide slice i of an array along ``axis`` by s[i]."""
    return lambda a, s: a / _along(s, axis, a.ndim).astype(a.dtype)


def _divide_last(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Divide a bias broadcast along the last axis (one value, or one per channel) by s."""
    if a.shape[-1:] != (s.size,):  # one value: one per channel, keeping the rank
        a = np.broadcast_to(a, (*a.shape[:-1], s.size))
    return a / _along(s, a.ndim - 1, a.ndim).astype(a.dtype)


class _Smoother:
    def __init__(self, model: onnx.ModelProto, alpha: float, folding: bool):
        self.model, self.alpha, self.folding = model, alpha, folding
        g = model.graph
        self.g = g
        self.arrays = {
            i.name: numpy_helper.to_array(i)
            for i in g.initializer
            if i.data_type == TensorProto.FLOAT
        }
        self.types = elem_types(infer_types(model).graph)
        graph_io = {vi.name for vi in [*g.input, *g.output]}
        self.graph_outputs = {o.name for o in g.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            for name in dict.fromkeys(_all_inputs(n)):
                if name:
                    self.readers.setdefault(name, []).append(n)
        self.producer = {o: n for n in g.node for o in n.output if o}
        # constants safe to rewrite: float initializers one node reads, not overridable inputs
        self.owned = {
            name
            for name in self.arrays
            if name not in graph_io and len(self.readers.get(name, [])) == 1
        }

    # -- which ops -----------------------------------------------------------------------------

    def _const(self, name: str, node: onnx.NodeProto) -> np.ndarray | None:
        """The float initializer ``name`` when only ``node`` reads it."""
        if name in self.owned and self.readers[name][0] is node:
            return self.arrays[name]
        return None

    def target(self, n: onnx.NodeProto) -> _Target | None:
        if n.domain not in ("", "ai.onnx") or len(n.input) < 2:
            return None
        x = n.input[0]
        if x in self.arrays or self.types.get(x, TensorProto.FLOAT) != TensorProto.FLOAT:
            return None
        w = self._const(n.input[1], n)
        if w is None:
            return None
        if n.op_type == "MatMul" and w.ndim == 2:
            return _Target(n, n.input[1], 0, False)
        if n.op_type == "Gemm" and w.ndim == 2 and not attr(n, "transA", 0):
            return _Target(n, n.input[1], 1 if attr(n, "transB", 0) else 0, False)
        if (
            n.op_type == "Conv"
            and w.ndim >= 3
            and all(d == 1 for d in w.shape[2:])
            and attr(n, "group", 1) == 1
        ):
            return _Target(n, n.input[1], 1, True)
        return None

    def groups(self) -> dict[str, list[_Target]]:
        """The smoothable ops by the activation they read (one axis kind per activation)."""
        out: dict[str, list[_Target]] = {}
        for n in self.g.node:
            t = self.target(n)
            if t is not None:
                out.setdefault(n.input[0], []).append(t)
        return {x: ts for x, ts in out.items() if len({t.conv for t in ts}) == 1}

    # -- scales --------------------------------------------------------------------------------

    def scales(self, x_max: np.ndarray, targets: list[_Target]) -> np.ndarray | None:
        w_max = None
        for t in targets:
            w = np.abs(self.arrays[t.weight]).astype(np.float64)
            m = np.moveaxis(w, t.w_axis, 0).reshape(w.shape[t.w_axis], -1).max(axis=1)
            if m.size != x_max.size:
                return None
            w_max = m if w_max is None else np.maximum(w_max, m)
        x_max = x_max.astype(np.float64)
        live = (x_max > 0) & (w_max > 0)
        s = np.ones_like(x_max)
        s[live] = x_max[live] ** self.alpha / w_max[live] ** (1.0 - self.alpha)
        return np.maximum(s, MIN_SCALE)

    # -- folding -------------------------------------------------------------------------------

    def fold_plan(self, x: str, conv: bool, rank: int) -> list[tuple[str, Callable]] | None:
        """How to divide the channels of ``x`` by s inside its producer: (initializer, function
        of (array, s)) pairs, or None when the producer cannot absorb it."""
        p = self.producer.get(x)
        if p is None or p.domain not in ("", "ai.onnx") or p.output[0] != x:
            return None
        if conv:
            return self._conv_plan(p)
        if p.op_type == "LayerNormalization":
            scale = self._const(p.input[1], p)
            if scale is None or scale.ndim != 1 or attr(p, "axis", -1) % rank != rank - 1:
                return None
            plan = [(p.input[1], _divide_along(0))]
            if len(p.input) > 2 and p.input[2]:
                bias = self._const(p.input[2], p)
                if bias is None or bias.shape != scale.shape:
                    return None
                plan.append((p.input[2], _divide_along(0)))
            return plan
        if p.op_type in ("MatMul", "Gemm"):
            made = self._linear_plan(p)
            return None if made is None else made[0]
        if p.op_type == "Add":  # MatMul/Gemm -> Add(constant bias): fold into both
            for t, c in ((p.input[0], p.input[1]), (p.input[1], p.input[0])):
                inner = self.producer.get(t)
                if (
                    inner is None
                    or inner.op_type not in ("MatMul", "Gemm")
                    or inner.domain not in ("", "ai.onnx")
                    or t in self.graph_outputs
                    or len(self.readers.get(t, [])) != 1
                ):
                    continue
                made = self._linear_plan(inner)
                if made is None or not self._bias_ok(c, p, made[1]):
                    return None
                return [*made[0], (c, _divide_last)]
        return None

    def _bias_ok(self, name: str, node: onnx.NodeProto, k: int) -> bool:
        """Whether ``name`` is a constant only ``node`` reads, one value or one per channel
        along its last axis (so dividing it channel by channel keeps the broadcast)."""
        b = self._const(name, node)
        return b is not None and (b.size == 1 or (b.ndim >= 1 and b.shape[-1] == k))

    def _linear_plan(self, p: onnx.NodeProto) -> tuple[list[tuple[str, Callable]], int] | None:
        """(plan, output channels) dividing the output channels of MatMul/Gemm ``p``."""
        w = self._const(p.input[1], p)
        if w is None or w.ndim != 2:
            return None
        if p.op_type == "Gemm" and attr(p, "transB", 0):
            plan, k = [(p.input[1], _divide_along(0))], w.shape[0]
        else:
            plan, k = [(p.input[1], _divide_along(1))], w.shape[1]
        if p.op_type == "Gemm" and len(p.input) > 2 and p.input[2]:
            if not self._bias_ok(p.input[2], p, k):
                return None
            plan.append((p.input[2], _divide_last))
        return plan, k

    def _conv_plan(self, p: onnx.NodeProto) -> list[tuple[str, Callable]] | None:
        if p.op_type != "Conv":
            return None
        w = self._const(p.input[1], p)
        if w is None:
            return None
        plan = [(p.input[1], _divide_along(0))]
        if len(p.input) > 2 and p.input[2]:
            b = self._const(p.input[2], p)
            if b is None or b.shape != (w.shape[0],):
                return None
            plan.append((p.input[2], _divide_along(0)))
        return plan

    # -- rewriting -----------------------------------------------------------------------------

    def apply(self, x: str, targets: list[_Target], s: np.ndarray, rank: int) -> str | None:
        """Smooth ``targets`` by ``s``; the name of the Mul inserted, or None when folded."""
        for t in targets:
            w = self.arrays[t.weight]
            self.arrays[t.weight] = (w * _along(s, t.w_axis, w.ndim)).astype(w.dtype)
        readers = {id(n) for n in self.readers.get(x, [])}
        plan = None
        if (
            self.folding
            and x not in self.graph_outputs
            and readers == {id(t.node) for t in targets}
        ):
            plan = self.fold_plan(x, targets[0].conv, rank)
        if plan is not None:
            for name, fn in plan:
                self.arrays[name] = fn(self.arrays[name], s).astype(np.float32)
            return None
        taken = {t for n in self.g.node for t in [*n.input, *n.output, n.name]}
        taken |= {i.name for i in self.g.initializer} | {vi.name for vi in self.g.input}
        out, node_name, inv_name = (
            _fresh(f"{x}_smoothed", taken),
            _fresh(f"{x}_SmoothQuant_Mul", taken),
            _fresh(f"{x}_SmoothQuant_inv_scale", taken),
        )
        inv = (1.0 / s).astype(np.float32)
        if targets[0].conv:
            inv = _along(inv, 0, rank - 1)
        self.g.initializer.append(numpy_helper.from_array(inv, inv_name))
        mul = helper.make_node("Mul", [x, inv_name], [out], node_name)
        first = min(list(self.g.node).index(t.node) for t in targets)
        self.g.node.insert(first, mul)
        for t in targets:
            t.node.input[0] = out
        return node_name

    def write_back(self) -> None:
        for init in self.g.initializer:
            if init.name in self.arrays:
                init.CopyFrom(numpy_helper.from_array(self.arrays[init.name], init.name))


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _channel_absmax(
    model: onnx.ModelProto,
    groups: dict[str, list[_Target]],
    batches: Iterable[dict],
    providers: Sequence[Any] | None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per-channel max |x| and the rank of each activation in ``groups``, over ``batches``."""
    from ort_core import InferenceSession

    aug = _augment(model, list(groups))
    sess = InferenceSession(
        aug.SerializeToString(), providers=list(providers or ["CPUExecutionProvider"])
    )
    names = [o.name for o in sess.get_outputs() if o.name in groups]
    x_max: dict[str, np.ndarray] = {}
    rank: dict[str, int] = {}
    count = 0
    for feed in batches:
        count += 1
        for name, value in zip(names, sess.run(names, feed)):
            a = np.abs(np.asarray(value, dtype=np.float32))
            axis = 1 if groups[name][0].conv else a.ndim - 1
            if a.ndim <= axis:
                continue
            m = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1).max(axis=1, initial=0.0)
            prev = x_max.get(name)
            if prev is not None and prev.shape != m.shape:
                raise ValueError(
                    f"SmoothQuant: tensor {name!r} changed its channel count between calibration "
                    f"batches ({prev.size} then {m.size})"
                )
            x_max[name] = m if prev is None else np.maximum(prev, m)
            rank[name] = a.ndim
    if count == 0:
        raise ValueError("the calibration data reader gave no batches; it must yield at least one")
    return x_max, rank


def smooth_model(
    model: onnx.ModelProto,
    data_reader: Any,
    extra_options: dict,
    providers: Sequence[Any] | None = None,
) -> tuple[onnx.ModelProto, list[str], Iterable[dict]]:
    """Apply SmoothQuant to a copy of ``model`` with the options in ``extra_options``.

    Reads the first ``SmoothQuantCalibIter`` batches of ``data_reader``.

    Returns:
        The smoothed model (it computes the same function), the names of the Mul nodes
        inserted (to be left unquantized), and the batches for calibration: those read here
        followed by the rest of ``data_reader``.
    """
    check_options(extra_options)
    opts = settings({**extra_options, "SmoothQuant": True})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    sm = _Smoother(out, opts["alpha"], opts["folding"])
    stream = _batches(data_reader)
    taken = list(itertools.islice(stream, opts["calib_iter"]))
    rest = itertools.chain(taken, stream)
    groups = sm.groups()
    if not groups:
        logger.warning("SmoothQuant: no MatMul, Gemm or 1x1 Conv with a constant weight to smooth")
        return out, [], rest
    x_max, rank = _channel_absmax(model, groups, taken, providers)
    inserted, folded = [], 0
    for x, targets in groups.items():
        if x not in x_max:
            continue
        s = sm.scales(x_max[x], targets)
        if s is None:
            continue
        mul = sm.apply(x, targets, s, rank[x])
        if mul is None:
            folded += 1
        else:
            inserted.append(mul)
    sm.write_back()
    logger.info(
        "SmoothQuant (alpha %.3g): %d activations smoothed, %d folded into their producer, "
        "%d through an inserted Mul",
        opts["alpha"],
        folded + len(inserted),
        folded,
        len(inserted),
    )
    return out, inserted, rest
