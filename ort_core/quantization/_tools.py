"""What the ``quantize``, ``float16`` and ``compare`` commands compute: input folders, random
inputs, accuracy against the float model, node-by-node divergence."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

_NP = {
    TensorProto.FLOAT: np.float32,
    TensorProto.FLOAT16: np.float16,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.BOOL: np.bool_,
}


def safe_name(name: str) -> str:
    """The file-name form of a tensor name (as ``ort-core run`` writes outputs)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def load_feeds(folder: str, model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    """Batches from ``folder``: ``<input>.npy`` files directly in it make one batch; each
    sub-folder holding ``<input>.npy`` files makes one more. Names are matched after replacing
    characters other than letters, digits, ``-_.`` by ``_``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"input folder {folder!r} does not exist")
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    dirs = [folder] + sorted(
        os.path.join(folder, d)
        for d in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, d))
    )
    feeds = []
    for d in dirs:
        files = {f[:-4]: os.path.join(d, f) for f in os.listdir(d) if f.endswith(".npy")}
        if not files:
            continue
        feed, missing = {}, []
        for name in names:
            path = files.get(safe_name(name))
            if path is None:
                missing.append(name)
            else:
                feed[name] = np.load(path, allow_pickle=False)
        if missing:
            raise ValueError(
                f"{d!r} has .npy files but none for input(s) {missing}; name each file after its "
                f"input ({', '.join(safe_name(n) + '.npy' for n in names)})"
            )
        feeds.append(feed)
    if not feeds:
        raise ValueError(
            f"no .npy inputs in {folder!r}; put <input>.npy files in it (one batch) or in "
            "sub-folders (one batch each)"
        )
    return feeds


def random_feed(model: onnx.ModelProto, seed: int = 0, dim: int = 1) -> dict[str, np.ndarray]:
    """Standard-normal inputs (small integers for integer inputs); symbolic dims set to ``dim``."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else dim for d in tt.shape.dim]
        dtype = _np_type(tt.elem_type)
        if np.issubdtype(dtype, np.floating) or dtype.__name__ == "bfloat16":
            feed[vi.name] = rng.standard_normal(shape).astype(np.float32).astype(dtype)
        elif dtype == np.bool_:
            feed[vi.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feed[vi.name] = rng.integers(0, 4, shape).astype(dtype)
    return feed


def _np_type(elem: int) -> Any:
    if elem == TensorProto.BFLOAT16:
        import ml_dtypes

        return ml_dtypes.bfloat16
    if elem not in _NP:
        raise ValueError(f"inputs of type {TensorProto.DataType.Name(elem)} are not supported here")
    return _NP[elem]


def adapt_feed(feed: dict[str, np.ndarray], model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """``feed`` cast to the input types of ``model`` (float32 inputs for a float16 model...)."""
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    return {
        k: np.asarray(v).astype(_np_type(types[k])) if k in types else v for k, v in feed.items()
    }


@dataclass
class Accuracy:
    max_abs: float
    max_rel: float
    top1: float | None  # agreement of argmax over the last axis (None when it has size 1)

    def __str__(self) -> str:
        top = "" if self.top1 is None else f", top-1 agreement {self.top1 * 100:.1f}%"
        return f"max abs error {self.max_abs:.4g}, max relative error {self.max_rel:.4g}{top}"


def accuracy(refs: Sequence[np.ndarray], outs: Sequence[np.ndarray]) -> Accuracy:
    """Error of ``outs`` against ``refs`` (lists of arrays: outputs of several batches)."""
    max_abs = max_rel = 0.0
    agree = total = 0
    for r, o in zip(refs, outs):
        r = np.asarray(r, dtype=np.float64)
        o = np.asarray(o, dtype=np.float64)
        if r.size == 0:
            continue
        d = np.abs(r - o)
        max_abs = max(max_abs, float(d.max()))
        max_rel = max(max_rel, float(d.max() / max(np.abs(r).max(), 1e-12)))
        if r.ndim >= 1 and r.shape[-1] > 1:
            agree += int((r.argmax(-1) == o.argmax(-1)).sum())
            total += int(np.prod(r.shape[:-1]))
    return Accuracy(max_abs, max_rel, agree / total if total else None)


def run_all(model: onnx.ModelProto, feeds, providers=None) -> list[list[np.ndarray]]:
    """Outputs of every batch, run in ort-core."""
    from ort_core import InferenceSession

    sess = InferenceSession(
        model.SerializeToString(), providers=providers or ["CPUExecutionProvider"]
    )
    return [[np.asarray(v) for v in sess.run(None, adapt_feed(f, model))] for f in feeds]


def compare_outputs(ref_model, other_model, feeds, providers=None, other_providers=None):
    """Per-output accuracy of ``other_model`` against ``ref_model`` on ``feeds``."""
    a = run_all(ref_model, feeds, providers)
    b = run_all(other_model, feeds, other_providers or providers)
    n = len(a[0])
    return [accuracy([x[i] for x in a], [y[i] for y in b]) for i in range(n)]


# -- node by node ------------------------------------------------------------------------


@dataclass
class TensorDiff:
    name: str
    node: str  # the producing node in the reference model: "op_type 'name'"
    max_abs: float
    max_rel: float
    diverged: bool


def expose(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """``model`` with every float intermediate tensor of the main graph added as an output,
    and (tensor, producing node) pairs in graph order."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
        if vi.type.HasField("tensor_type")
    }
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    order = []
    for n in out.graph.node:
        for o in n.output:
            if o and types.get(o) in floats:
                order.append((o, f"{n.op_type} {n.name!r}"))
                if o not in present:
                    out.graph.output.append(helper.make_tensor_value_info(o, types[o], None))
                    present.add(o)
    return out, order


def node_by_node(
    model: onnx.ModelProto,
    other: onnx.ModelProto,
    feed: dict[str, np.ndarray],
    providers: Sequence[Any],
    other_providers: Sequence[Any],
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> list[TensorDiff]:
    """Run both models with their intermediate tensors exposed, match tensors by name, and
    return the differences in the first model's graph order. A tensor diverges when
    ``max|a - b| > atol + rtol * max|a|``."""
    from ort_core import InferenceSession

    a_model, order = expose(model)
    b_model, aliases = _expose_dequantized(other)
    names = [(n, node) for n, node in order if n in aliases]
    if not names:
        raise ValueError(
            "the two models share no float tensor names; compare needs the second model to be "
            "derived from the first (quantized or float16 versions keep the tensor names)"
        )
    sa = InferenceSession(a_model.SerializeToString(), providers=list(providers))
    sb = InferenceSession(b_model.SerializeToString(), providers=list(other_providers))
    wanted = [n for n, _ in names]
    va = sa.run(wanted, adapt_feed(feed, model))
    vb = sb.run([aliases[n] for n in wanted], adapt_feed(feed, other))
    diffs = []
    for (name, node), x, y in zip(names, va, vb):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            diffs.append(TensorDiff(name, node, float("inf"), float("inf"), True))
            continue
        d = float(np.abs(x - y).max()) if x.size else 0.0
        ref = float(np.abs(x).max()) if x.size else 0.0
        diffs.append(TensorDiff(name, node, d, d / max(ref, 1e-12), d > atol + rtol * ref))
    return diffs


def _expose_dequantized(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """``model`` with its float tensors exposed, and for each original tensor name the tensor
    that carries its value: ``T_DequantizeLinear_Output`` after a QDQ pair, a DequantizeLinear
    added for ``T_quantized`` integer tensors (QOperator), else ``T`` itself."""
    out, order = expose(model)
    names = {n for n, _ in order} | {o.name for o in model.graph.output}
    inits = {i.name for i in model.graph.initializer}
    aliases = {n: n for n in names}
    for n in list(out.graph.node):
        for o in n.output:
            if o.endswith("_DequantizeLinear_Output") and n.op_type == "DequantizeLinear":
                aliases[o[: -len("_DequantizeLinear_Output")]] = o
            elif o.endswith("_quantized") and n.op_type != "QuantizeLinear":
                base = o[: -len("_quantized")]
                scale, zp = f"{base}_scale", f"{base}_zero_point"
                if scale in inits and zp in inits and base not in names:
                    dq = f"{base}__compare_dequantized"
                    out.graph.node.append(
                        helper.make_node("DequantizeLinear", [o, scale, zp], [dq], f"{dq}_node")
                    )
                    out.graph.output.append(
                        helper.make_tensor_value_info(dq, TensorProto.FLOAT, None)
                    )
                    aliases[base] = dq
    return out, aliases
