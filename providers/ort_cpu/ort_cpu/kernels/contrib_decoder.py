"""com.microsoft ops of onnxruntime's transformer optimizer that onnxruntime runs on CUDA (and,
for DecoderMaskedMultiHeadAttention in float32, on its CPU provider): GatedRelativePositionBias
(WavLM) and DecoderMaskedMultiHeadAttention (one decoding step with a key/value cache).

float16 is computed in float32, as onnxruntime's kernels accumulate, and cast back. Every
batch entry and head is computed at once (no Python loop over them).
"""

from __future__ import annotations

import math

import numpy as np

from ort_core.errors import InvalidArgument, NotImplemented
from ort_core.provider import output_trimmer

from ._registry import builder
from .elementwise import _sigmoid

MS = "com.microsoft"
HALF_TYPES = frozenset(map(np.dtype, (np.float32, np.float16)))
INT32 = frozenset({np.dtype(np.int32)})


def _where(info) -> str:
    return f"{info.node.op_type} node {info.node.name!r}"


# -- GatedRelativePositionBias -------------------------------------------------------------------
@builder(
    "GatedRelativePositionBias",
    domain=MS,
    dtypes={0: HALF_TYPES, 6: INT32},
    attributes=("num_heads",),
)
def gated_relative_position_bias(info):
    """rel_pos scaled by a gate computed from each query row:

    q = (query_layer + query_bias) in heads (B, N, S, H); g = q @ weight + bias, (B, N, S, D);
    u = sigmoid(sum of g's first D/2), r = sigmoid(sum of its last D/2);
    output = (u * (r * eco_a[n] - 1) + 2) * rel_pos[0, n], (B, N, S, S).

    With token_offset (B, S), query_layer holds the token_count tokens packed, token i going to
    the padded position token_offset.flat[i]; padded positions get query_bias alone.
    """
    n = int(info.attr("num_heads", 0))
    where = _where(info)
    if n <= 0:
        raise InvalidArgument(f"{where}: num_heads must be positive, got {n}.")

    def run(query_layer, query_bias, rel_pos, weight, bias, eco_a, token_offset=None):
        dt = query_layer.dtype
        f = np.float32
        if token_offset is None:
            if query_layer.ndim != 3:
                raise InvalidArgument(
                    f"{where}: query_layer must be (batch_size, seq_len, hidden_size) without "
                    f"token_offset, got shape {list(query_layer.shape)}."
                )
            b, s, d = query_layer.shape
            q = query_layer.astype(f) + query_bias.astype(f)
        else:
            if query_layer.ndim != 2 or token_offset.ndim != 2:
                raise InvalidArgument(
                    f"{where}: with token_offset (batch_size, seq_len), query_layer must be "
                    f"(token_count, hidden_size); got {list(query_layer.shape)} and "
                    f"{list(token_offset.shape)}."
                )
            b, s = token_offset.shape
            count, d = query_layer.shape
            if count > b * s:
                raise InvalidArgument(
                    f"{where}: {count} packed tokens do not fit token_offset's {b} x {s} positions."
                )
            dest = token_offset.reshape(-1)[:count].astype(np.int64)
            if dest.size and (dest.min() < 0 or dest.max() >= b * s):
                raise InvalidArgument(
                    f"{where}: token_offset values must be in [0, {b * s}), got values from "
                    f"{dest.min()} to {dest.max()}."
                )
            q = np.broadcast_to(query_bias.astype(f), (b * s, d)).copy()
            q[dest] += query_layer.astype(f)
            q = q.reshape(b, s, d)
        if d % n or query_bias.shape != (d,):
            raise InvalidArgument(
                f"{where}: hidden size {d} must be num_heads ({n}) x head_size and query_bias "
                f"({d},), got query_bias {list(query_bias.shape)}."
            )
        h = d // n
        if weight.ndim != 2 or weight.shape[0] != h or weight.shape[1] % 2:
            raise InvalidArgument(
                f"{where}: weight must be (head_size={h}, D) with D even, got {list(weight.shape)}."
            )
        dd = weight.shape[1]
        if bias.shape != (dd,) or rel_pos.shape != (1, n, s, s) or eco_a.shape != (1, n, 1, 1):
            raise InvalidArgument(
                f"{where}: expected bias ({dd},), rel_pos (1, {n}, {s}, {s}) and eco_a "
                f"(1, {n}, 1, 1); got {list(bias.shape)}, {list(rel_pos.shape)} and "
                f"{list(eco_a.shape)}."
            )
        heads = q.reshape(b, s, n, h).transpose(0, 2, 1, 3)  # (B, N, S, H)
        g = np.matmul(heads, weight.astype(f)) + bias.astype(f)  # (B, N, S, D)
        halves = g.reshape(b, n, s, 2, dd // 2).sum(axis=-1)
        u, r = _sigmoid(halves[..., 0]), _sigmoid(halves[..., 1])
        gate = u * (r * eco_a.astype(f).reshape(1, n, 1) - 1.0) + 2.0  # (B, N, S)
        return (gate[..., None] * rel_pos.astype(f)).astype(dt, copy=False)

    return run


# -- DecoderMaskedMultiHeadAttention -------------------------------------------------------------
def _check_dmmha(info) -> str | None:
    n = info.attr("num_heads")
    if n is None or int(n) <= 0:
        return f"num_heads must be a positive integer, got {n}"
    for i in (3, 7, 8, 9):
        if info.has_input(i) and info.input_dtype(i) not in (None, np.dtype(np.int32)):
            return f"input {i} must be int32 (got {info.input_dtype(i)})"
    if info.has_input(5) != info.has_input(6):
        return "past_key and past_value must be given together"
    return None


@builder(
    "DecoderMaskedMultiHeadAttention",
    domain=MS,
    dtypes={0: HALF_TYPES},
    attributes=("num_heads", "past_present_share_buffer", "scale", "mask_filter_value",
                "output_qk"),
    check=_check_dmmha,
)  # fmt: skip
def decoder_masked_multi_head_attention(info):
    """Attention of one new token (sequence length 1) per batch entry, as onnxruntime's kernels
    compute it:

    - self attention: query/key/value (B, 1, D) or packed QKV (B, 1, 3D), plus ``bias`` (3D);
      the new key/value join the cache. With ``past_present_share_buffer`` the cache is
      (B, N, max_sequence_length, H), ``past_sequence_length`` keys are valid and the new one
      is written at that position (present has the cache's shape); otherwise past is
      (B, N, P, H) and present (B, N, P + 1, H). Under beam search (``beam_width`` > 1) key and
      value j of beam b are read from beam ``cache_indirection[b, j]`` of the same batch entry.
    - cross attention: no past, key/value (B, N, L, H) already projected (their bias is not
      added); no present outputs.

    scores = q k^T * scale (default 1/sqrt(H)) + attention_bias + mask_filter_value where the
    (B, T) mask is 0; ``qk`` (output 3, when output_qk) is these scores in float32;
    output = softmax(scores) v as (B, 1, N*H).
    """
    n = int(info.attr("num_heads"))
    shared = bool(info.attr("past_present_share_buffer", 0))
    scale_attr = float(info.attr("scale", 0.0) or 0.0)
    filter_value = np.float32(info.attr("mask_filter_value", -10000.0))
    want_qk = bool(info.attr("output_qk", 0))
    outs = info.node.outputs
    want_present = any(len(outs) > i and bool(outs[i]) for i in (1, 2))
    where = _where(info)

    def refuse(what: str):
        return NotImplemented(
            f"{where}: {what} is not supported by the CPU provider's DecoderMaskedMultiHeadAttention."
        )

    outputs = output_trimmer(info.node, info.opset)

    def run(query, key=None, value=None, mask_index=None, attention_bias=None, past_key=None,
            past_value=None, past_sequence_length=None, beam_width=None, cache_indirection=None,
            bias=None):  # fmt: skip
        dt = query.dtype
        f = np.float32
        if query.ndim != 3 or query.shape[1] != 1:
            raise InvalidArgument(
                f"{where}: query must be (batch_size, 1, hidden_size): the op runs one decoding "
                f"step; got shape {list(query.shape)}."
            )
        b = query.shape[0]
        if (key is None) != (value is None):
            raise InvalidArgument(f"{where}: key and value must be given together.")
        packed = key is None
        width = query.shape[2]
        if packed and width % 3:
            raise InvalidArgument(
                f"{where}: packed QKV needs a last dimension of 3 x hidden_size, got {width}."
            )
        d = width // 3 if packed else width
        if d % n:
            raise InvalidArgument(f"{where}: hidden size {d} is not a multiple of num_heads {n}.")
        h = d // n
        cross = not packed and key.ndim == 4
        if bias is not None and bias.shape != (3 * d,):
            raise InvalidArgument(
                f"{where}: bias must be (3 x hidden_size,) = ({3 * d},), got {list(bias.shape)}."
            )
        bias_f = None if bias is None else bias.astype(f)
        q = query[:, 0, :d].astype(f)
        if bias_f is not None:
            q = q + bias_f[:d]
        q = q.reshape(b, n, 1, h)

        if cross:
            if past_key is not None:
                raise refuse("cross attention (4-D key/value) together with past_key/past_value")
            if attention_bias is not None:
                raise refuse("attention_bias with cross attention (4-D key/value)")
            if want_present:
                raise refuse("present_key/present_value outputs with cross attention")
            if key.shape != value.shape or key.shape[:2] != (b, n) or key.shape[3] != h:
                raise InvalidArgument(
                    f"{where}: cross-attention key and value must both be (batch_size, "
                    f"num_heads, kv_sequence_length, head_size) = ({b}, {n}, L, {h}); got "
                    f"{list(key.shape)} and {list(value.shape)}."
                )
            k_all, v_all = key.astype(f), value.astype(f)
            present = (None, None)
        else:
            if packed:
                kn, vn = query[:, 0, d : 2 * d], query[:, 0, 2 * d :]
            else:
                if key.shape != (b, 1, d) or value.shape != (b, 1, d):
                    raise InvalidArgument(
                        f"{where}: self-attention key and value must be (batch_size, 1, "
                        f"hidden_size) = ({b}, 1, {d}); got {list(key.shape)} and "
                        f"{list(value.shape)} (head sizes of K and V must match)."
                    )
                kn, vn = key[:, 0], value[:, 0]
            kn, vn = kn.astype(f), vn.astype(f)
            if bias_f is not None:
                kn, vn = kn + bias_f[d : 2 * d], vn + bias_f[2 * d :]
            kn, vn = kn.reshape(b, n, 1, h), vn.reshape(b, n, 1, h)
            k_all, v_all, present = _self_cache(
                where, kn, vn, past_key, past_value, past_sequence_length, beam_width,
                cache_indirection, shared, dt,
            )  # fmt: skip

        total = k_all.shape[2]
        scale = scale_attr or 1.0 / math.sqrt(h)
        scores = np.matmul(q, np.swapaxes(k_all, -1, -2))  # (B, N, 1, T)
        scores *= f(scale)
        if attention_bias is not None:
            ab = attention_bias
            if (ab.ndim != 4 or ab.shape[0] not in (1, b) or ab.shape[1] not in (1, n)
                    or ab.shape[2:] != (1, total)):  # fmt: skip
                raise InvalidArgument(
                    f"{where}: attention_bias must be (batch_size or 1, num_heads or 1, 1, "
                    f"{total}), got {list(ab.shape)}."
                )
            scores += ab.astype(f)
        if mask_index is not None:
            if mask_index.shape != (b, total):
                raise refuse(
                    f"mask_index of shape {list(mask_index.shape)} (only the 2-D key padding "
                    f"mask (batch_size, total_sequence_length) = ({b}, {total}) is, as in "
                    f"onnxruntime)"
                )
            scores += np.where(mask_index == 0, filter_value, f(0))[:, None, None, :]
        qk = scores.copy() if want_qk else None
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        out = np.matmul(scores, v_all)  # (B, N, 1, H)
        out = out.reshape(b, 1, n * h).astype(dt, copy=False)
        qk_dt = info.output_dtype(3) or np.dtype(np.float32)
        qk_out = None if qk is None else qk.astype(qk_dt, copy=False)
        return outputs((out, present[0], present[1], qk_out))

    return run


def _self_cache(where, kn, vn, past_key, past_value, past_sequence_length, beam_width,
                cache_indirection, shared, dt):  # fmt: skip
    """Keys and values attended to, (B, N, T, H) float32, and the present caches (in ``dt``)."""
    b, n, _, h = kn.shape
    if past_key is None:
        if shared:
            raise InvalidArgument(
                f"{where}: past_present_share_buffer needs the past_key/past_value buffers."
            )
        present = (kn.astype(dt), vn.astype(dt))
        return kn, vn, present
    for name, p in (("past_key", past_key), ("past_value", past_value)):
        if p.ndim != 4 or p.shape[:2] != (b, n) or p.shape[3] != h:
            raise InvalidArgument(
                f"{where}: {name} must be (batch_size, num_heads, L, head_size) = ({b}, {n}, L, "
                f"{h}), got {list(p.shape)}."
            )
    if past_key.shape != past_value.shape:
        raise InvalidArgument(
            f"{where}: past_key {list(past_key.shape)} and past_value {list(past_value.shape)} "
            f"differ."
        )
    if shared:
        if past_sequence_length is None or np.asarray(past_sequence_length).size != 1:
            raise InvalidArgument(
                f"{where}: past_sequence_length (one int32) is required when "
                f"past_present_share_buffer is set."
            )
        p_len = int(np.asarray(past_sequence_length).reshape(()))
        max_len = past_key.shape[2]
        if not 0 <= p_len < max_len:
            raise InvalidArgument(
                f"{where}: past_sequence_length {p_len} leaves no room for the new token in a "
                f"cache of max_sequence_length {max_len}."
            )
    else:
        p_len = past_key.shape[2]
    pk, pv = past_key[:, :, :p_len], past_value[:, :, :p_len]
    beams = 1 if beam_width is None else int(np.asarray(beam_width).reshape(-1)[0])
    if beams > 1:
        if cache_indirection is None:
            raise InvalidArgument(
                f"{where}: beam_width {beams} > 1 needs the cache_indirection input."
            )
        if b % beams:
            raise InvalidArgument(
                f"{where}: batch_size {b} is not a multiple of beam_width {beams}."
            )
        ci = np.asarray(cache_indirection).reshape(b, -1)
        if ci.shape[1] < p_len:
            raise InvalidArgument(
                f"{where}: cache_indirection has {ci.shape[1]} steps per beam, fewer than the "
                f"{p_len} cached positions."
            )
        ci = ci[:, :p_len].astype(np.int64)
        if ci.size and (ci.min() < 0 or ci.max() >= beams):
            raise InvalidArgument(
                f"{where}: cache_indirection values must be in [0, {beams}), got values from "
                f"{ci.min()} to {ci.max()}."
            )
        src = (np.arange(b)[:, None] // beams) * beams + ci  # (B, P): the beam each key is from
        steps = np.arange(p_len)[None, :]
        pk = pk[src, :, steps].transpose(0, 2, 1, 3)  # (B, P, N, H) -> (B, N, P, H)
        pv = pv[src, :, steps].transpose(0, 2, 1, 3)
    k_all = np.concatenate([pk.astype(np.float32), kn], axis=2)
    v_all = np.concatenate([pv.astype(np.float32), vn], axis=2)
    if shared:
        present_k, present_v = past_key.copy(), past_value.copy()
        present_k[:, :, p_len] = kn[:, :, 0]
        present_v[:, :, p_len] = vn[:, :, 0]
    else:
        present_k = np.concatenate([past_key, kn.astype(past_key.dtype)], axis=2)
        present_v = np.concatenate([past_value, vn.astype(past_value.dtype)], axis=2)
    return k_all, v_all, (present_k.astype(dt, copy=False), present_v.astype(dt, copy=False))
