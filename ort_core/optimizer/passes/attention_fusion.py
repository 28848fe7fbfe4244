"""EXTENDED: the multi-head attention PyTorch exports for BERT/ViT- and GPT-2-style models becomes
com.microsoft Attention (or MultiHeadAttention when the projections are not recognized).

Matched from each Softmax over the last axis::

    q/k/v 3-D -> Reshape (B, S, N, H) -> Transpose (0,2,1,3) [k: (0,2,3,1)]
    scores = MatMul(q, k) [/ c | * c]   [+ mask]   [Where(causal, scores, -big)]
    out = Reshape(Transpose(MatMul(Softmax(scores), v), (0,2,1,3)), (B, S, N*H))

The additive mask ``(1 - Cast(Unsqueeze(m))) * fill`` of a (B, T) mask becomes mask_index (m as
int32) with mask_filter_value = fill; any other (B|1, N|1, S, T) additive term becomes
attention_bias. A constant lower-triangular Where condition sets unidirectional=1. When q, k and
v are ``x @ W + b`` of one x (separate MatMul+Add, or GPT-2's single Gemm split in three), the
projection is folded in and the node is Attention(x, W, b); otherwise MultiHeadAttention(q, k, v).
"""

from __future__ import annotations

import math

import numpy as np

from ... import _onnx
from ...ir import Model, tensor_dtype
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import add_initializer, all_graphs, constant, fresh_name
from ._fusion import (
    MS,
    accepted,
    can_fuse,
    drop_dead,
    internal_ok,
    new_node,
    replace,
    scalar,
    shape_of,
    static_shape,
)  # fmt: skip

TensorProto = _onnx.onnx.TensorProto


def _perm(n):
    p = n.attr("perm")
    return None if p is None else list(p)


def _heads(g, prods, name, perm):
    """(x3, N, H, nodes) when ``name`` is Transpose(perm)(Reshape(x3, [.., .., N, H]))."""
    t = prods.get(name)
    if t is None or t.op_type != "Transpose" or t.domain or _perm(t) != perm:
        return None
    r = prods.get(t.inputs[0])
    if r is None or r.op_type != "Reshape" or r.domain or len(r.inputs) < 2:
        return None
    target = constant(g, r.inputs[1])
    if target is None or target.shape != (4,) or target[2] <= 0 or target[3] <= 0:
        return None
    return r.inputs[0], int(target[2]), int(target[3]), [t, r]


def _single(consumers, name, op):
    users = consumers.get(name, [])
    if len(users) != 1 or users[0].op_type != op or users[0].domain:
        return None
    return users[0]


class _Found:
    """What the match of one attention block found."""

    def __init__(self):
        self.nodes = []
        self.scale = None
        self.mask = None  # (B, T) mask value
        self.filter = -10000.0
        self.bias = None  # additive (B|1, N|1, S, T) term
        self.causal = False


def _strip_mask(g, prods, name, found: _Found) -> bool:
    """Recognize ``(1 - Cast(Unsqueeze(m))) * fill``; record m and fill."""
    mul = prods.get(name)
    if mul is None or mul.op_type != "Mul" or mul.domain or len(mul.inputs) != 2:
        return False
    for k in (1, 0):
        fill = scalar(g, mul.inputs[k])
        sub = prods.get(mul.inputs[1 - k])
        if fill is None or sub is None or sub.op_type != "Sub" or sub.domain:
            continue
        if scalar(g, sub.inputs[0]) != 1.0:
            continue
        x, axes = sub.inputs[1], []
        while True:
            p = prods.get(x)
            if p is None or p.domain:
                break
            if p.op_type == "Cast":
                x = p.inputs[0]
            elif p.op_type == "Unsqueeze":
                a = p.attr("axes")
                if a is None and len(p.inputs) > 1:
                    a = constant(g, p.inputs[1])
                if a is None:
                    return False
                axes.append([int(v) for v in np.asarray(a).reshape(-1)])
                x = p.inputs[0]
            else:
                break
        shape = shape_of(g, x)
        if shape is None or len(shape) != 2 or sorted(sum(axes, [])) != [1, 2]:
            continue
        if tensor_dtype(g.type_of(x)) is None or tensor_dtype(g.type_of(x)).kind not in "biuf":
            continue
        found.mask, found.filter = x, fill
        return True
    return False


def _is_causal(cond: np.ndarray) -> bool:
    if cond.dtype != np.bool_ or cond.ndim < 2 or any(d != 1 for d in cond.shape[:-2]):
        return False
    s, t = cond.shape[-2:]
    return bool((cond.reshape(s, t) == np.tri(s, t, t - s, dtype=bool)).all())


def _scores(g, prods, name, found: _Found, s_len: int | None):
    """Walk back from the Softmax input over Where/Add/scale to MatMul(q, k)."""
    for _ in range(2):
        p = prods.get(name)
        if p is None or p.domain:
            return None
        if p.op_type == "Where" and not found.causal:
            cond, fill = constant(g, p.inputs[0]), scalar(g, p.inputs[2])
            if cond is None or fill is None or fill > -1e3 or not _is_causal(cond):
                return None
            found.causal = True
            found.nodes.append(p)
            name = p.inputs[1]
        elif p.op_type == "Add" and found.mask is None and found.bias is None:
            for k in (1, 0):
                other = p.inputs[k]
                if _strip_mask(g, prods, other, found):
                    break
                dims = static_shape(g, other)
                if dims is not None and len(dims) == 4 and prods.get(p.inputs[1 - k]) is not None:
                    if prods[p.inputs[1 - k]].op_type in ("Div", "Mul", "MatMul"):
                        found.bias = other
                        break
            else:
                return None
            found.nodes.append(p)
            name = p.inputs[1 - k]
        else:
            break
    p = prods.get(name)
    if p is not None and p.op_type in ("Div", "Mul") and not p.domain:
        for k in (1, 0) if p.op_type == "Mul" else (1,):
            c = scalar(g, p.inputs[k])
            if c is not None and c != 0:
                found.scale = c if p.op_type == "Mul" else 1.0 / c
                found.nodes.append(p)
                name = p.inputs[1 - k]
                break
    p = prods.get(name)
    return p if p is not None and p.op_type == "MatMul" and not p.domain else None


def _projection(g, prods, consumers, name):
    """(x, W, b, nodes) when ``name`` is Add(MatMul(x, W), b) with constants W (2-D), b (1-D)."""
    add = prods.get(name)
    if add is None or add.op_type != "Add" or add.domain:
        return None
    for k in (0, 1):
        mm, b = prods.get(add.inputs[k]), constant(g, add.inputs[1 - k])
        if mm is None or mm.op_type != "MatMul" or mm.domain or b is None or b.ndim != 1:
            continue
        w = constant(g, mm.inputs[1])
        if w is None or w.ndim != 2 or len(consumers.get(mm.outputs[0], [])) != 1:
            continue
        return mm.inputs[0], w, b, [add, mm]
    return None


def _gemm_split(g, prods, q3, k3, v3):
    """(x, W, b, nodes) for GPT-2's Reshape(Gemm(Reshape(x)), (B, S, 3D)) split in q, k, v."""
    split = prods.get(q3)
    if split is None or split.op_type != "Split" or split.domain or split.outputs != [q3, k3, v3]:
        return None
    if split.attr("axis", 0) not in (-1, 2):
        return None
    r2 = prods.get(split.inputs[0])
    gemm = prods.get(r2.inputs[0]) if r2 is not None and r2.op_type == "Reshape" else None
    if gemm is None or gemm.op_type != "Gemm" or gemm.domain or len(gemm.inputs) != 3:
        return None
    if any(gemm.attr(a, d) != d for a, d in (("alpha", 1.0), ("beta", 1.0), ("transA", 0))):
        return None
    r1 = prods.get(gemm.inputs[0])
    w, b = constant(g, gemm.inputs[1]), constant(g, gemm.inputs[2])
    if r1 is None or r1.op_type != "Reshape" or w is None or b is None or b.ndim != 1:
        return None
    if gemm.attr("transB", 0):
        w = w.T
    x = r1.inputs[0]
    sx, so = static_shape(g, x), static_shape(g, split.inputs[0])
    if sx is None or so is None or len(sx) != 3 or so[:2] != sx[:2] or so[2] % 3:
        return None
    sizes = constant(g, split.inputs[1]) if len(split.inputs) > 1 and split.inputs[1] else None
    if sizes is not None and len(set(sizes.tolist())) != 1:
        return None
    return x, np.ascontiguousarray(w), b, [split, r2, gemm, r1]


class AttentionFusion(GraphPass):
    name = "AttentionFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for sm in list(g.nodes):
                if sm.op_type == "Softmax" and not sm.domain and sm in g.nodes:
                    changed |= self._try(model, g, ctx, sm)
            if changed:  # the mask arithmetic the fused nodes no longer read
                drop_dead(g, [n for n in g.nodes if n.provider is not None])
        return changed

    def _try(self, model, g, ctx, sm) -> bool:
        prods, consumers = g.producers(), g.consumers()
        if sm.attr("axis", -1 if model.opset("") >= 13 else 1) not in (-1, 3):
            return False
        mm2 = _single(consumers, sm.outputs[0], "MatMul")
        if mm2 is None or mm2.inputs[0] != sm.outputs[0]:
            return False
        tr = _single(consumers, mm2.outputs[0], "Transpose")
        if tr is None or _perm(tr) != [0, 2, 1, 3]:
            return False
        out_r = _single(consumers, tr.outputs[0], "Reshape")
        target = constant(g, out_r.inputs[1]) if out_r is not None else None
        if target is None or target.shape not in ((3,), (2,)):
            return False
        keep_reshape = target.shape == (2,)  # (B*S, D) for a Gemm: keep it after the fusion
        found = _Found()
        mm1 = _scores(g, prods, sm.inputs[0], found, None)
        if mm1 is None:
            return False
        q = _heads(g, prods, mm1.inputs[0], [0, 2, 1, 3])
        k = _heads(g, prods, mm1.inputs[1], [0, 2, 3, 1])
        v = _heads(g, prods, mm2.inputs[1], [0, 2, 1, 3])
        if q is None or k is None or v is None or not (q[1] == k[1] == v[1]) or q[2] != k[2]:
            return False
        n_heads, head = q[1], q[2]
        if int(target[-1]) not in (-1, n_heads * v[2]):
            return False
        nodes = [sm, mm2, tr, mm1, *found.nodes, *q[3], *k[3], *v[3]]
        root = tr
        if not keep_reshape:
            nodes.append(out_r)
            root = out_r
        provider = nodes[0].provider
        proj = self._projection(g, prods, consumers, q[0], k[0], v[0])
        if proj is not None and not internal_ok(g, nodes + proj[3], root, consumers):
            proj = None
        if not internal_ok(g, nodes, root, consumers):
            return False
        scale = None
        if found.scale is not None and not math.isclose(found.scale, 1 / math.sqrt(head)):
            scale = float(found.scale)
        elif found.scale is None:
            scale = 1.0
        attrs = dict(
            num_heads=n_heads,
            unidirectional=1 if found.causal else None,
            scale=scale,
            mask_filter_value=float(found.filter) if found.mask else None,
        )
        op = "Attention" if proj is not None else "MultiHeadAttention"
        all_nodes = nodes + (proj[3] if proj is not None else [])
        if not can_fuse(ctx, model, all_nodes, MS, op):
            return False
        new = []
        mask = ""
        if found.mask is not None:
            mask = self._int32_mask(model, g, found.mask, provider, new, ctx)
            if mask is None:
                return False
        bias = found.bias or ""
        if proj is not None:
            x, w, b, _ = proj
            wname = add_initializer(g, "attention_qkv_weight", w)
            bname = add_initializer(g, "attention_qkv_bias", b)
            inputs = [x, wname, bname, mask, "", bias]
        else:
            inputs = [q[0], k[0], v[0], "", mask, bias]
        while inputs and not inputs[-1]:
            inputs.pop()
        out = out_r.outputs[0] if not keep_reshape else fresh_name(g, "attention_output")
        fused = new_node(model, g, op, inputs, [out], provider=provider, base=op, **attrs)
        if not accepted(ctx, model, g, [*new, fused]):
            return False
        if keep_reshape:
            out_r.inputs[0] = out
        replace(g, out_r, [*new, fused], all_nodes)
        return True

    @staticmethod
    def _projection(g, prods, consumers, q3, k3, v3):
        projs = [_projection(g, prods, consumers, x) for x in (q3, k3, v3)]
        if all(p is not None for p in projs) and len({p[0] for p in projs}) == 1:
            ws, bs = [p[1] for p in projs], [p[2] for p in projs]
            if len({w.shape[0] for w in ws}) != 1 or len({w.shape[1] for w in ws}) != 1:
                return None
            if any(w.shape[1] != b.shape[0] for w, b in zip(ws, bs)):
                return None
            nodes = [n for p in projs for n in p[3]]
            return projs[0][0], np.concatenate(ws, axis=1), np.concatenate(bs), nodes
        return _gemm_split(g, prods, q3, k3, v3)

    @staticmethod
    def _int32_mask(model, g, mask, provider, new, ctx):
        if tensor_dtype(g.type_of(mask)) == np.int32:
            return mask
        for n in g.nodes:
            if n.op_type == "Cast" and n.inputs == [mask] and n.attr("to") == TensorProto.INT32:
                return n.outputs[0]
        cast = new_node(
            model, g, "Cast", [mask], [fresh_name(g, f"{mask}_int32")], domain="",
            provider=provider, to=TensorProto.INT32,
        )  # fmt: skip
        if not ctx.provider_supports(cast, "", "Cast", model.opset("")):
            return None
        new.append(cast)
        return cast.outputs[0]


PASS = AttentionFusion()
