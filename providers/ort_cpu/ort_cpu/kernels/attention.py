"""Attention family: direct kernels for ops the standard defines as functions (Attention,
RotaryEmbedding, SwiGLU, LinearAttention, CausalConvWithState and ai.onnx.preview FlexAttention).

The standard's function bodies run these as tens of small nodes (shape arithmetic, Expand of K and
V for grouped heads, casts); the kernels here compute the same in a few numpy calls: grouped
query heads share their K/V head through a reshape instead of a copy, masks are built once as one
additive bias, and float16/bfloat16 inputs are computed in float32 and rounded once at the end.
"""

from __future__ import annotations

import math

import numpy as np

from ort_core._onnx import helper
from ort_core.errors import InvalidArgument
from ort_core.provider import FLOAT_TYPES, KernelInfo

from . import _blas
from ._registry import builder, kernel

_NEG_INF = -np.inf
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_NO_DOUBLE = FLOAT_TYPES - {_F64}  # float32, float16, bfloat16


def _work(dt: np.dtype) -> np.dtype:
    """float64 stays float64; every other float type is computed in float32."""
    return _F64 if dt == _F64 else _F32


def _softmax_rows(s: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Softmax over the last axis (in ``s``'s memory when ``inplace``); a row that is all -inf
    gives zeros, not NaN."""
    m = s.max(axis=-1, keepdims=True)
    m[np.isneginf(m)] = 0
    e = np.subtract(s, m, out=s if inplace else None)
    np.exp(e, out=e)
    total = e.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    e /= total
    return e


def _allowed_bias(allowed: np.ndarray, dt: np.dtype) -> np.ndarray:
    return np.where(allowed, dt.type(0), dt.type(_NEG_INF))


# -- Attention (23, 24, 25) ----------------------------------------------------------------------
_SOFTMAX_PRECISIONS = (1, 10, 11, 16)


def _attention_check(info: KernelInfo) -> str | None:
    mode = info.attr("qk_matmul_output_mode", 0)
    if mode not in (0, 1, 2, 3):
        return f"qk_matmul_output_mode {mode} is not one of 0, 1, 2, 3"
    sp = info.attr("softmax_precision")
    if sp is not None and sp not in _SOFTMAX_PRECISIONS:
        return (
            f"softmax_precision {sp} is not one of {_SOFTMAX_PRECISIONS} "
            "(float, float16, double, bfloat16)"
        )
    for name in ("left_window_size", "right_window_size"):
        if info.attr(name, -1) < -1:
            return f"{name} {info.attr(name)} must be -1 (unbounded) or >= 0"
    shape = info.input_shape(0)
    if shape is not None and len(shape) not in (3, 4):
        return f"Q has rank {len(shape)}; Attention takes 3D or 4D Q, K, V"
    if shape is not None and len(shape) == 3:
        if info.attr("q_num_heads") is None or info.attr("kv_num_heads") is None:
            return "3D inputs need the q_num_heads and kv_num_heads attributes"
    if info.has_input(4) != info.has_input(5):
        return "past_key and past_value must be given together"
    return None


def _to_heads(x: np.ndarray, heads: int | None, what: str) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D); 4D inputs are returned as they are."""
    if x.ndim == 4:
        return x
    if x.ndim != 3 or heads is None or heads <= 0 or x.shape[2] % heads:
        raise InvalidArgument(
            f"Attention: {what} of shape {x.shape} cannot be split into {heads} heads."
        )
    b, s, hidden = x.shape
    return x.reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3)


def _grouped_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (B, Hq, M, K) @ b (B, Hkv, K, N) where query head h uses kv head h // (Hq / Hkv)."""
    bsz, hq, m, _ = a.shape
    hkv = b.shape[1]
    if hq == hkv:
        return _blas.matmul(a, b)
    if hkv == 0 or hq % hkv:
        raise InvalidArgument(
            f"Attention: {hq} query heads are not a multiple of {hkv} key/value heads."
        )
    # (B, Hq, M, K) is (B, Hkv, G*M, K) in memory: one larger product per kv head, no K/V copies
    folded = a.reshape(bsz, hkv, (hq // hkv) * m, a.shape[3])
    return _blas.matmul(folded, b).reshape(bsz, hq, m, b.shape[3])


class _AttentionConfig:
    __slots__ = (
        "scale",
        "causal",
        "softcap",
        "mode",
        "softmax_dtype",
        "q_heads",
        "kv_heads",
        "left",
        "right",
        "want_qk",
    )

    def __init__(self, info: KernelInfo):
        self.want_qk = info.num_outputs > 3 and bool(info.node.outputs[3])
        self.scale = info.attr("scale")
        self.causal = bool(info.attr("is_causal", 0))
        self.softcap = float(info.attr("softcap", 0.0))
        self.mode = int(info.attr("qk_matmul_output_mode", 0))
        sp = info.attr("softmax_precision")
        self.softmax_dtype = None if sp is None else np.dtype(helper.tensor_dtype_to_np_dtype(sp))
        self.q_heads = info.attr("q_num_heads")
        self.kv_heads = info.attr("kv_num_heads")
        self.left = int(info.attr("left_window_size", -1))
        self.right = int(info.attr("right_window_size", -1))


def _attention_bias(cfg, mask, nonpad, past_len, bsz, sq, total, work):
    """The additive bias (broadcastable to (B, Hq, Sq, T)), or None when nothing is masked."""
    bias = None
    if mask is not None:
        mask = np.asarray(mask)
        pad = total - mask.shape[-1]
        if mask.dtype == np.bool_:
            if pad > 0:
                mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)])
            bias = _allowed_bias(mask, work)
        else:
            bias = mask.astype(work)
            if pad > 0:
                bias = np.pad(
                    bias, [(0, 0)] * (bias.ndim - 1) + [(0, pad)], constant_values=_NEG_INF
                )
    windowed = cfg.left >= 0 or cfg.right >= 0
    if cfg.causal or windowed:
        i = np.arange(sq).reshape(sq, 1)
        j = np.arange(total).reshape(1, total)
        if past_len is None and nonpad is not None:
            offset = (np.asarray(nonpad).astype(np.int64).reshape(-1) - sq).reshape(-1, 1, 1, 1)
        else:
            offset = past_len or 0
        diff = i + offset - j  # query position minus key position
        allowed = np.ones(np.shape(diff), dtype=bool)
        if cfg.causal:
            allowed &= diff >= 0
        if cfg.left >= 0:
            allowed &= diff <= cfg.left
        if cfg.right >= 0:
            allowed &= -diff <= cfg.right
        extra = _allowed_bias(allowed, work)
        bias = extra if bias is None else bias + extra
    if nonpad is not None:
        valid = np.arange(total) < np.asarray(nonpad).astype(np.int64).reshape(-1, 1)
        extra = _allowed_bias(valid.reshape(bsz, 1, 1, total), work)
        bias = extra if bias is None else bias + extra
    return bias


def _attention(cfg: _AttentionConfig, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    out_dt, kv_dt = q.dtype, k.dtype
    three_d = q.ndim == 3
    if (past_k is None) != (past_v is None):
        raise InvalidArgument("Attention: past_key and past_value must be given together.")
    if nonpad is not None and past_k is not None:
        raise InvalidArgument("Attention: nonpad_kv_seqlen cannot be used with past_key/value.")
    q = _to_heads(q, cfg.q_heads, "Q")
    k = _to_heads(k, cfg.kv_heads, "K")
    v = _to_heads(v, cfg.kv_heads, "V")
    if past_k is not None:
        k = np.concatenate((past_k, k), axis=2)
        v = np.concatenate((past_v, v), axis=2)
    present_k, present_v = k, v
    bsz, _, sq, head = q.shape
    total = k.shape[2]
    work = _work(np.result_type(_work(out_dt), _work(kv_dt)))
    scale = 1.0 / math.sqrt(head) if cfg.scale is None else float(cfg.scale)
    # The standard scales Q and K by sqrt(scale) each (rounded to Q's type); one product of the
    # two, applied to Q, is the same up to rounding.
    root = float(out_dt.type(math.sqrt(scale)))
    qs = q.astype(work) * work.type(root * root)
    scores = _grouped_matmul(qs, np.swapaxes(k.astype(work, copy=False), 2, 3))
    raw = scores if cfg.mode == 0 else None
    if cfg.softcap > 0:
        scores = cfg.softcap * np.tanh(scores / cfg.softcap)
    capped = scores if cfg.mode == 1 else None
    past_len = None if past_k is None else past_k.shape[2]
    bias = _attention_bias(cfg, mask, nonpad, past_len, bsz, sq, total, work)
    if bias is not None:
        inplace = not (cfg.want_qk and cfg.mode in (0, 1))  # else scores is an output as it is
        if inplace and np.broadcast_shapes(scores.shape, bias.shape) == scores.shape:
            scores += bias
        else:
            scores = scores + bias
    biased = scores if cfg.mode == 2 else None
    if cfg.softmax_dtype is not None and cfg.softmax_dtype != work:
        scores = scores.astype(cfg.softmax_dtype).astype(work)
    keep = (raw, capped, biased) if cfg.want_qk else ()
    probs = _softmax_rows(scores, inplace=all(scores is not x for x in keep))
    if bias is not None:
        masked_rows = np.isneginf(bias.max(axis=-1, keepdims=True))
        if masked_rows.any():
            probs = np.where(masked_rows, work.type(0), probs)
    if cfg.softmax_dtype is not None and cfg.softmax_dtype != work:
        probs = probs.astype(cfg.softmax_dtype).astype(work)
    qk = {0: raw, 1: capped, 2: biased, 3: probs}[cfg.mode]
    y = _grouped_matmul(probs, v.astype(work, copy=False))
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(bsz, sq, -1)
    qk_out = None
    if cfg.want_qk:
        qk_out = np.broadcast_to(qk, (bsz, q.shape[1], sq, total)).astype(out_dt)
    return y.astype(out_dt, copy=False), present_k, present_v, qk_out


@builder("Attention", since=(23, 24, 25), dtypes=FLOAT_TYPES, check=_attention_check)
def attention(info: KernelInfo):
    cfg = _AttentionConfig(info)

    def run(q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None):
        return _attention(cfg, q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen)

    return run


# -- RotaryEmbedding (23) ------------------------------------------------------------------------
def _rotary_check(info: KernelInfo) -> str | None:
    shape = info.input_shape(0)
    if shape is not None and len(shape) not in (3, 4):
        return f"input has rank {len(shape)}; RotaryEmbedding takes 3D or 4D input"
    if shape is not None and len(shape) == 3 and not info.attr("num_heads"):
        return "3D input needs the num_heads attribute"
    return None


@builder("RotaryEmbedding", since=23, dtypes=_NO_DOUBLE, check=_rotary_check)
def rotary_embedding(info: KernelInfo):
    interleaved = bool(info.attr("interleaved", 0))
    rot_dim_attr = int(info.attr("rotary_embedding_dim", 0))
    num_heads = info.attr("num_heads")

    def run(x, cos_cache, sin_cache, position_ids=None):
        dt = x.dtype
        if x.ndim == 4:  # (B, H, S, D)
            xs = x
        else:
            if not num_heads or x.shape[2] % num_heads:
                raise InvalidArgument(
                    f"RotaryEmbedding: hidden size {x.shape[2]} is not a multiple of "
                    f"num_heads={num_heads}."
                )
            b, s, hidden = x.shape
            xs = x.reshape(b, s, num_heads, hidden // num_heads).transpose(0, 2, 1, 3)
        head = xs.shape[3]
        rot = rot_dim_attr or head
        half = rot // 2
        if position_ids is not None:
            cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
        if cos_cache.shape[-1] != half or sin_cache.shape[-1] != half:
            raise InvalidArgument(
                f"RotaryEmbedding: cos/sin caches have last dimension {cos_cache.shape[-1]}, "
                f"expected rotary_embedding_dim / 2 = {half}."
            )
        cos = cos_cache.astype(_F32, copy=False)[:, None]  # (B, 1, S, half)
        sin = sin_cache.astype(_F32, copy=False)[:, None]
        out = rotate(xs.astype(_F32), cos, sin, interleaved).astype(dt)
        if x.ndim == 3:
            return out.transpose(0, 2, 1, 3).reshape(x.shape)
        return out

    return run


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, interleaved: bool) -> np.ndarray:
    """Rotary embedding of ``x`` (..., S, D) by per-position ``cos``/``sin`` (..., S, R/2), over
    its first R features (pairs (i, i + R/2), or adjacent pairs when ``interleaved``); the other
    features are copied. Computed in ``x``'s dtype."""
    half = cos.shape[-1]
    rot = 2 * half
    part = x[..., :rot]
    if interleaved:
        x1, x2 = part[..., 0::2], part[..., 1::2]
    else:
        x1, x2 = part[..., :half], part[..., half:]
    out = x.copy()
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if interleaved:
        out[..., 0:rot:2], out[..., 1:rot:2] = real, imag
    else:
        out[..., :half], out[..., half:rot] = real, imag
    return out


# -- SwiGLU (28) ---------------------------------------------------------------------------------
@kernel("SwiGLU", since=28, dtypes=FLOAT_TYPES)
def swiglu(a, b, alpha=1.0):
    if a.shape != b.shape:
        raise InvalidArgument(f"SwiGLU: A {a.shape} and B {b.shape} must have the same shape.")
    work = _work(a.dtype)
    aw = a.astype(work, copy=False)
    y = aw * b.astype(work, copy=False) / (1 + np.exp(-alpha * aw))
    return y.astype(a.dtype, copy=False)


# -- CausalConvWithState (27) --------------------------------------------------------------------
_ACTIVATIONS = ("none", "silu", "swish")


def _causal_conv_check(info: KernelInfo) -> str | None:
    act = info.attr("activation", "none")
    return None if act in _ACTIVATIONS else f"activation '{act}' is not one of {_ACTIVATIONS}"


@builder("CausalConvWithState", since=27, dtypes=_NO_DOUBLE, check=_causal_conv_check)
def causal_conv_with_state(info: KernelInfo):
    silu = info.attr("activation", "none") in ("silu", "swish")

    def run(x, weight, bias=None, past_state=None):
        if x.ndim != 3 or weight.ndim != 3 or weight.shape[0] != x.shape[1]:
            raise InvalidArgument(
                f"CausalConvWithState: input {x.shape} must be (batch, channels, length) and "
                f"weight {weight.shape} must be (channels, 1, k)."
            )
        dt = x.dtype
        bsz, channels, length = x.shape
        k = weight.shape[2]
        if past_state is None:
            past_state = np.zeros((bsz, channels, k - 1), dtype=dt)
        padded = np.concatenate((past_state.astype(dt, copy=False), x), axis=2)
        xw = padded.astype(_F32, copy=False)
        w = weight.astype(_F32, copy=False)[:, 0, :, None]  # (C, k, 1)
        y = np.zeros((bsz, channels, length), dtype=_F32)
        for i in range(k):
            y += w[:, i] * xw[:, :, i : i + length]
        if bias is not None:
            y += bias.astype(_F32, copy=False)[:, None]
        y = y.astype(dt)
        if silu:
            yw = y.astype(_F32)
            y = (yw / (1 + np.exp(-yw))).astype(dt)
        return y, padded[:, :, padded.shape[2] - (k - 1) :]

    return run


# -- LinearAttention (27) ------------------------------------------------------------------------
_UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


def _linear_attention_check(info: KernelInfo) -> str | None:
    rule = info.attr("update_rule", "gated_delta")
    if rule not in _UPDATE_RULES:
        return f"update_rule '{rule}' is not one of {_UPDATE_RULES}"
    hq, hkv = info.attr("q_num_heads"), info.attr("kv_num_heads")
    if hq is None or hkv is None:
        return "the q_num_heads and kv_num_heads attributes are required"
    if hq <= 0 or hkv <= 0 or hq % hkv:
        return f"q_num_heads ({hq}) must be a positive multiple of kv_num_heads ({hkv})"
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gated != info.has_input(4):
        return f"update_rule '{rule}' {'needs' if gated else 'takes no'} decay input"
    if delta != info.has_input(5):
        return f"update_rule '{rule}' {'needs' if delta else 'takes no'} beta input"
    return None


def _heads_last(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, T, H*D) -> (B, T, H, D) in float32."""
    b, t, hd = x.shape
    if hd % heads:
        raise InvalidArgument(f"LinearAttention: last dimension {hd} is not a multiple of {heads}.")
    return x.reshape(b, t, heads, hd // heads).astype(_F32)


@builder("LinearAttention", since=27, dtypes=_NO_DOUBLE, check=_linear_attention_check)
def linear_attention(info: KernelInfo):
    rule = info.attr("update_rule", "gated_delta")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    hq, hkv = int(info.attr("q_num_heads")), int(info.attr("kv_num_heads"))
    scale_attr = float(info.attr("scale", 0.0))

    def run(query, key, value, past_state=None, decay=None, beta=None):
        b, t, _ = query.shape
        q, k, v = _heads_last(query, hq), _heads_last(key, hkv), _heads_last(value, hkv)
        dk, dv, group = q.shape[3], v.shape[3], hq // hkv
        scale = scale_attr or 1.0 / math.sqrt(dk)
        if past_state is None:
            state = np.zeros((b, hkv, dk, dv), dtype=_F32)
            state_dt = query.dtype
        else:
            state, state_dt = past_state.astype(_F32), past_state.dtype
        if gated:  # (B, T, H) per head or (B, T, H*dk) per key dimension -> (B, T, H, dk|1, 1)
            g = np.exp(decay.astype(_F32).reshape(b, t, hkv, -1))[..., None]
        if delta:  # (B, T, H) or (B, T, 1) -> (B, T, H|1, 1)
            bt = beta.astype(_F32).reshape(b, t, -1, 1)
        qg = q.reshape(b, t, hkv, group, dk)  # query heads grouped by their kv head
        out = np.empty((b, t, hkv, group, dv), dtype=_F32)
        for i in range(t):
            if gated:
                state = state * g[:, i]
            k_i, v_i = k[:, i], v[:, i]  # (B, H, dk), (B, H, dv)
            if delta:
                retrieved = (k_i[:, :, None, :] @ state)[:, :, 0]  # S^T k: (B, H, dv)
                v_i = bt[:, i] * (v_i - retrieved)
            state = state + k_i[..., :, None] * v_i[..., None, :]
            out[:, i] = qg[:, i] @ state  # (B, H, G, dk) @ (B, H, dk, dv)
        out *= scale
        return out.reshape(b, t, hq * dv).astype(query.dtype), state.astype(state_dt)

    return run


# -- FlexAttention (ai.onnx.preview 1) -----------------------------------------------------------
def _flex_check(info: KernelInfo) -> str | None:
    sp = info.attr("softmax_precision")
    if sp is not None and sp not in _SOFTMAX_PRECISIONS:
        return f"softmax_precision {sp} is not one of {_SOFTMAX_PRECISIONS}"
    shape = info.input_shape(0)
    if shape is not None and len(shape) != 4:
        return f"Q has rank {len(shape)}; FlexAttention takes rank-4 Q, K, V"
    return None


@builder("FlexAttention", since=1, domain="ai.onnx.preview", dtypes=FLOAT_TYPES, check=_flex_check)
def flex_attention(info: KernelInfo):
    sp = info.attr("softmax_precision")
    scale_attr = info.attr("scale")
    has_score_mod = "score_mod" in info.node.subgraphs
    has_prob_mod = "prob_mod" in info.node.subgraphs

    def run(*args):
        (q, k, v), mods = info.split_implicit(args)
        dt = q.dtype
        sdt = np.dtype(helper.tensor_dtype_to_np_dtype(sp)) if sp is not None else _work(dt)
        work = _work(dt)
        head = q.shape[3]
        scale = 1.0 / math.sqrt(head) if scale_attr is None else float(scale_attr)
        qs = q.astype(work) * work.type(float(dt.type(math.sqrt(scale))) ** 2)
        scores = _grouped_matmul(qs, np.swapaxes(k.astype(work, copy=False), 2, 3))
        scores = scores.astype(dt).astype(sdt)
        if has_score_mod:
            scores = np.asarray(mods["score_mod"](scores)[0])
        s = scores.astype(_work(sdt), copy=False)
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        probs = (e / e.sum(axis=-1, keepdims=True)).astype(sdt)
        if has_prob_mod:
            probs = np.asarray(mods["prob_mod"](probs)[0])
        y = _grouped_matmul(probs.astype(dt).astype(work), v.astype(work, copy=False))
        return y.astype(dt)

    return run
