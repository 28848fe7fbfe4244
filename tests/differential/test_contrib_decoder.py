"""com.microsoft GatedRelativePositionBias and DecoderMaskedMultiHeadAttention on the CPU provider.

onnxruntime runs GatedRelativePositionBias on CUDA only: it is checked against a numpy reference
written here from the formula of onnxruntime's contrib op documentation. DecoderMaskedMultiHeadAttention
is checked against onnxruntime's own CPU kernel (float32; shared buffer, cross attention, beams)
and, for the layout onnxruntime refuses (past and present as separate (B, N, P, H) and
(B, N, P + 1, H) tensors), against onnxruntime's MultiHeadAttention on the same step, which
computes the same thing.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core as ort

onnxruntime = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
GRPB = ["query_layer", "query_bias", "rel_pos", "weight", "bias", "eco_a", "token_offset"]
DMMHA = ["query", "key", "value", "mask_index", "attention_bias", "past_key", "past_value",
         "past_sequence_length", "beam_width", "cache_indirection", "bias"]  # fmt: skip
MHA = ["query", "key", "value", "bias", "key_padding_mask", "attention_bias", "past_key",
       "past_value"]  # fmt: skip
#: the largest differences measured by the tests, reported by test_zz_report
MAX_DIFF: dict[str, float] = {}


def _elem(a: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def _model(op, names, feeds, outputs, attrs, out_types=None):
    last = max(names.index(k) for k in feeds)
    inputs = [k if k in feeds else "" for k in names[: last + 1]]
    node = helper.make_node(op, inputs, [o or "" for o in outputs], domain=MS, **attrs)
    elem = _elem(next(iter(feeds.values())))
    out_types = out_types or {}
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(k, _elem(v), v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, out_types.get(o, elem), None) for o in outputs if o],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def _ours(model, feeds):
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)


def _theirs(model, feeds):
    sess = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _raises(model, feeds, error, match):
    """A run fails as a node failure (RuntimeException, as onnxruntime reports a kernel's
    status) whose message and cause carry the kernel's own typed error."""
    with pytest.raises(ort.errors.RuntimeException, match=f"{error.__name__}: .*{match}") as e:
        _ours(model, feeds)
    assert isinstance(e.value.__cause__, error)


def _close(what, got, want, tol):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
    MAX_DIFF[what] = max(MAX_DIFF.get(what, 0.0), diff)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                               atol=tol, err_msg=what)  # fmt: skip


# -- GatedRelativePositionBias -------------------------------------------------------------------
def _grpb_reference(query_layer, query_bias, rel_pos, weight, bias, eco_a, n, token_offset=None):
    """The documented formula, in float64, one head at a time."""
    f = np.float64
    if token_offset is not None:  # scatter the packed tokens to their padded positions
        b, s = token_offset.shape
        full = np.zeros((b * s, query_layer.shape[1]), f)
        for i, pos in enumerate(token_offset.reshape(-1)[: query_layer.shape[0]]):
            full[pos] = query_layer[i]
        query_layer = full.reshape(b, s, -1)
    b, s, d = query_layer.shape
    h, dd = d // n, weight.shape[1]
    out = np.empty((b, n, s, s), f)
    for head in range(n):
        q = (query_layer.astype(f) + query_bias.astype(f))[:, :, head * h : (head + 1) * h]
        g = q @ weight.astype(f) + bias.astype(f)  # (B, S, D)
        gate_u = 1 / (1 + np.exp(-g[..., : dd // 2].sum(-1)))
        gate_r = 1 / (1 + np.exp(-g[..., dd // 2 :].sum(-1)))
        gate = gate_u * (gate_r * f(eco_a[0, head, 0, 0]) - 1.0) + 2.0  # (B, S)
        out[:, head] = gate[:, :, None] * rel_pos[0, head].astype(f)
    return out


def _grpb_inputs(rng, b, s, n, h, dd, dtype=np.float32):
    def r(*shape, k=1.0):
        return (rng.standard_normal(shape) * k).astype(dtype)

    return {
        "query_layer": r(b, s, n * h), "query_bias": r(n * h), "rel_pos": r(1, n, s, s),
        "weight": r(h, dd, k=0.3), "bias": r(dd), "eco_a": r(1, n, 1, 1),
    }  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "b,s,n,h,dd", [(2, 5, 2, 8, 4), (1, 7, 4, 16, 8), (3, 4, 12, 64, 8), (2, 1, 1, 4, 2)]
)
def test_gated_relative_position_bias(b, s, n, h, dd, dtype):
    rng = np.random.default_rng(b * 100 + s * 10 + n)
    feeds = _grpb_inputs(rng, b, s, n, h, dd, dtype)
    model = _model("GatedRelativePositionBias", GRPB, feeds, ["out"], {"num_heads": n})
    (got,) = _ours(model, feeds)
    assert got.dtype == dtype and got.shape == (b, n, s, s)
    want = _grpb_reference(**feeds, n=n)
    _close(f"GatedRelativePositionBias {np.dtype(dtype).name}", got, want,
           1e-5 if dtype == np.float32 else 4e-3)  # fmt: skip


def test_gated_relative_position_bias_token_offset():
    """Packed tokens (the right-padded batch without its padding): padded rows of the output
    come from query_bias alone."""
    rng = np.random.default_rng(7)
    b, s, n, h, dd = 3, 5, 2, 8, 6
    lengths = [5, 2, 3]
    offsets = [bi * s + si for bi in range(b) for si in range(lengths[bi])]
    pads = [p for p in range(b * s) if p not in offsets]
    token_offset = np.array(offsets + pads, np.int32).reshape(b, s)
    feeds = _grpb_inputs(rng, b, s, n, h, dd)
    feeds["query_layer"] = rng.standard_normal((sum(lengths), n * h)).astype(np.float32)
    feeds["token_offset"] = token_offset
    model = _model("GatedRelativePositionBias", GRPB, feeds, ["out"], {"num_heads": n})
    (got,) = _ours(model, feeds)
    want = _grpb_reference(**feeds, n=n)
    _close("GatedRelativePositionBias token_offset", got, want, 1e-5)


def test_gated_relative_position_bias_rejects_bad_shapes():
    rng = np.random.default_rng(3)
    feeds = _grpb_inputs(rng, 2, 4, 2, 8, 4)
    feeds["rel_pos"] = feeds["rel_pos"][:, :, :3]  # (1, N, 3, 4): not (1, N, S, S)
    model = _model("GatedRelativePositionBias", GRPB, feeds, ["out"], {"num_heads": 2})
    _raises(model, feeds, ort.errors.InvalidArgument, "GatedRelativePositionBias node.*rel_pos")
    feeds = _grpb_inputs(rng, 2, 4, 2, 8, 3)  # odd D
    model = _model("GatedRelativePositionBias", GRPB, feeds, ["out"], {"num_heads": 2})
    _raises(model, feeds, ort.errors.InvalidArgument, "D even")


# -- DecoderMaskedMultiHeadAttention -----------------------------------------------------------
OUTS = ["out", "present_key", "present_value"]


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _shared_feeds(rng, b, n, h, max_len, past, *, mask=False, bias=False, attn_bias=None,
                  packed=False):  # fmt: skip
    d = n * h
    feeds = {"query": _rand(rng, b, 1, 3 * d if packed else d)}
    if not packed:
        feeds["key"], feeds["value"] = _rand(rng, b, 1, d), _rand(rng, b, 1, d)
    if mask:
        m = (rng.random((b, past + 1)) > 0.3).astype(np.int32)
        m[:, -1] = 1
        feeds["mask_index"] = m
    if attn_bias is not None:
        feeds["attention_bias"] = _rand(rng, *attn_bias, 1, past + 1)
    feeds["past_key"] = _rand(rng, b, n, max_len, h)
    feeds["past_value"] = _rand(rng, b, n, max_len, h)
    feeds["past_sequence_length"] = np.array([past], np.int32)
    if bias:
        feeds["bias"] = _rand(rng, 3 * d)
    return feeds


@pytest.mark.parametrize(
    "b,n,h,max_len,past,opts",
    [
        (2, 2, 8, 6, 3, {}),
        (2, 4, 16, 9, 0, {}),
        (3, 2, 32, 7, 6, {"mask": True}),
        (2, 3, 8, 8, 4, {"bias": True}),
        (2, 2, 16, 5, 2, {"attn_bias": (2, 2)}),
        (2, 2, 16, 5, 2, {"attn_bias": (1, 2)}),
    ],
)  # fmt: skip
def test_dmmha_shared_buffer_against_onnxruntime(b, n, h, max_len, past, opts):
    rng = np.random.default_rng(b + n + h + max_len + past)
    feeds = _shared_feeds(rng, b, n, h, max_len, past, **opts)
    attrs = {"num_heads": n, "past_present_share_buffer": 1, "output_qk": 1}
    model = _model("DecoderMaskedMultiHeadAttention", DMMHA, feeds, [*OUTS, "qk"], attrs)
    want, got = _theirs(model, feeds), _ours(model, feeds)
    for name, g, w in zip([*OUTS, "qk"], got, want):
        _close(f"DMMHA shared {name}", g, w, 1e-5)


def test_dmmha_packed_qkv_against_onnxruntime_on_the_split_inputs():
    """Packed QKV (B, 1, 3D), which onnxruntime's CPU kernel cannot broadcast its bias over,
    against onnxruntime on the same query, key and value given apart."""
    rng = np.random.default_rng(21)
    b, n, h, max_len, past = 2, 4, 8, 10, 5
    packed = _shared_feeds(rng, b, n, h, max_len, past, packed=True, bias=True, mask=True)
    d = n * h
    split = dict(packed)
    qkv = packed["query"]
    split["query"], split["key"], split["value"] = (
        qkv[..., :d],
        qkv[..., d : 2 * d],
        qkv[..., 2 * d :],
    )
    split = {k: split[k] for k in DMMHA if k in split}
    attrs = {"num_heads": n, "past_present_share_buffer": 1, "output_qk": 1}
    got = _ours(_model("DecoderMaskedMultiHeadAttention", DMMHA, packed, [*OUTS, "qk"], attrs),
                packed)  # fmt: skip
    want = _theirs(_model("DecoderMaskedMultiHeadAttention", DMMHA, split, [*OUTS, "qk"], attrs),
                   split)  # fmt: skip
    for name, g, w in zip([*OUTS, "qk"], got, want):
        _close(f"DMMHA packed {name}", g, w, 1e-5)


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("b,n,h,kv", [(2, 2, 8, 5), (3, 4, 16, 11)])
def test_dmmha_cross_attention_against_onnxruntime(b, n, h, kv, mask):
    rng = np.random.default_rng(b * kv)
    feeds = {"query": _rand(rng, b, 1, n * h), "key": _rand(rng, b, n, kv, h),
             "value": _rand(rng, b, n, kv, h)}  # fmt: skip
    if mask:
        m = (rng.random((b, kv)) > 0.3).astype(np.int32)
        m[:, 0] = 1
        feeds["mask_index"] = m
    feeds["bias"] = _rand(rng, 3 * n * h)  # only its query part applies
    attrs = {"num_heads": n, "output_qk": 1, "scale": 0.3}
    model = _model("DecoderMaskedMultiHeadAttention", DMMHA, feeds, ["out", "", "", "qk"], attrs)
    want, got = _theirs(model, feeds), _ours(model, feeds)
    for name, g, w in zip(["out", "qk"], got, want):
        _close(f"DMMHA cross {name}", g, w, 1e-5)


def test_dmmha_beam_search_against_onnxruntime():
    """Two batch entries of three beams: past keys and values come from the beam that
    cache_indirection names, step by step. (onnxruntime needs the present outputs here: without
    them its CPU kernel crashes the process; and it reads row b // beam_width of a
    (batch_size, ...) attention_bias, so the bias here is broadcast over the batch.)"""
    rng = np.random.default_rng(11)
    batch, beams, n, h, max_len, past = 2, 3, 2, 8, 7, 4
    b = batch * beams
    feeds = _shared_feeds(rng, b, n, h, max_len, past, bias=True, mask=True,
                          attn_bias=(1, n))  # fmt: skip
    feeds["beam_width"] = np.array([beams], np.int32)
    feeds["cache_indirection"] = rng.integers(0, beams, (batch, beams, max_len)).astype(np.int32)
    attrs = {"num_heads": n, "past_present_share_buffer": 1, "output_qk": 1}
    model = _model("DecoderMaskedMultiHeadAttention", DMMHA, feeds, [*OUTS, "qk"], attrs)
    want, got = _theirs(model, feeds), _ours(model, feeds)
    for name, g, w in zip([*OUTS, "qk"], got, want):
        _close(f"DMMHA beams {name}", g, w, 1e-5)
    # the same step without indirection differs: the test would notice a kernel ignoring it
    plain = {k: v for k, v in feeds.items() if k not in ("beam_width", "cache_indirection")}
    model = _model("DecoderMaskedMultiHeadAttention", DMMHA, plain, [*OUTS, "qk"], attrs)
    assert not np.allclose(_ours(model, plain)[0], got[0], atol=1e-3)


def _mha_step(feeds, n, scale=None):
    """onnxruntime's MultiHeadAttention on the same step: query/key/value of one token after a
    (B, N, P, H) past; outputs output, present_key, present_value."""
    mha = {k: feeds[k] for k in ("query", "key", "value", "past_key", "past_value") if k in feeds}
    if "bias" in feeds:
        mha["bias"] = feeds["bias"]
    if "mask_index" in feeds:
        mha["key_padding_mask"] = feeds["mask_index"]
    if "attention_bias" in feeds:
        mha["attention_bias"] = feeds["attention_bias"]
    attrs = {"num_heads": n} if scale is None else {"num_heads": n, "scale": scale}
    node = helper.make_node("MultiHeadAttention", [k if k in mha else "" for k in MHA], OUTS,
                            domain=MS, **attrs)  # fmt: skip
    graph = helper.make_graph(
        [node], "mha",
        [helper.make_tensor_value_info(k, _elem(v), v.shape) for k, v in mha.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in OUTS],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return _theirs(model.SerializeToString(), mha)


@pytest.mark.parametrize(
    "b,n,h,past,opts",
    [
        (2, 2, 8, 3, {}),
        (2, 4, 16, 6, {"bias": True}),
        (3, 2, 8, 5, {"mask": True}),
        (2, 2, 8, 4, {"attn_bias": (2, 2), "bias": True, "mask": True}),
        (1, 3, 4, 0, {"scale": 0.25}),
    ],
)  # fmt: skip
def test_dmmha_separate_past_and_present_against_multi_head_attention(b, n, h, past, opts):
    rng = np.random.default_rng(100 + b + n + past)
    scale = opts.pop("scale", None)
    feeds = _shared_feeds(rng, b, n, h, past, past, **opts)
    del feeds["past_sequence_length"]
    attrs = {"num_heads": n} if scale is None else {"num_heads": n, "scale": scale}
    model = _model("DecoderMaskedMultiHeadAttention", DMMHA, feeds, OUTS, attrs)
    got = _ours(model, feeds)
    want = _mha_step(feeds, n, scale)
    assert got[1].shape == (b, n, past + 1, h)
    for name, g, w in zip(OUTS, got, want):
        _close(f"DMMHA separate {name}", g, w, 1e-5)


def test_dmmha_float16_computes_in_float32():
    """float16 inputs give onnxruntime's float32 result (on the same rounded inputs), rounded
    once to float16; present caches are exact copies."""
    rng = np.random.default_rng(5)
    b, n, h, max_len, past = 2, 4, 16, 8, 5
    feeds = _shared_feeds(rng, b, n, h, max_len, past, mask=True, bias=True)
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in feeds.items()}
    f32 = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in half.items()}
    attrs = {"num_heads": n, "past_present_share_buffer": 1, "output_qk": 1}
    qk_f32 = {"qk": TensorProto.FLOAT}
    got = _ours(_model("DecoderMaskedMultiHeadAttention", DMMHA, half, [*OUTS, "qk"], attrs,
                       qk_f32), half)  # fmt: skip
    want = _theirs(_model("DecoderMaskedMultiHeadAttention", DMMHA, f32, [*OUTS, "qk"], attrs),
                   f32)  # fmt: skip
    assert [g.dtype for g in got] == [np.float16] * 3 + [np.float32]
    _close("DMMHA float16 out", got[0], want[0].astype(np.float16), 1e-3)
    for i in (1, 2):
        np.testing.assert_array_equal(got[i], want[i].astype(np.float16))
    _close("DMMHA float16 qk", got[3], want[3], 1e-5)


def _expect_error(feeds, attrs, outputs, error, match):
    _raises(_model("DecoderMaskedMultiHeadAttention", DMMHA, feeds, outputs, attrs), feeds,
            error, match)  # fmt: skip


def test_dmmha_refusals_name_the_node_and_what_is_not_supported():
    rng = np.random.default_rng(9)
    b, n, h = 2, 2, 8
    base = _shared_feeds(rng, b, n, h, 6, 3)
    shared = {"num_heads": n, "past_present_share_buffer": 1}
    bad_mask = {**base, "mask_index": np.array([3, 4], np.int32)}  # 1-D key lengths
    _expect_error(bad_mask, shared, OUTS, ort.errors.NotImplemented,
                  "DecoderMaskedMultiHeadAttention node.*mask_index of shape \\[2\\]")  # fmt: skip
    cross = {"query": _rand(rng, b, 1, n * h), "key": _rand(rng, b, n, 5, h),
             "value": _rand(rng, b, n, 5, h), "attention_bias": _rand(rng, 1, n, 1, 5)}  # fmt: skip
    _expect_error(cross, {"num_heads": n}, ["out"], ort.errors.NotImplemented,
                  "attention_bias with cross attention")  # fmt: skip
    del cross["attention_bias"]
    _expect_error(cross, {"num_heads": n}, OUTS, ort.errors.NotImplemented,
                  "present_key/present_value outputs with cross attention")  # fmt: skip
    two = {**base, "query": _rand(rng, b, 2, n * h)}
    _expect_error(two, shared, OUTS, ort.errors.InvalidArgument, "one decoding step")
    beams = {**base, "beam_width": np.array([2], np.int32)}
    _expect_error(beams, shared, OUTS, ort.errors.InvalidArgument, "cache_indirection")
    full = {**base, "past_sequence_length": np.array([6], np.int32)}
    _expect_error(full, shared, OUTS, ort.errors.InvalidArgument, "leaves no room")
    no_len = {k: v for k, v in base.items() if k != "past_sequence_length"}
    _expect_error(no_len, shared, OUTS, ort.errors.InvalidArgument, "past_sequence_length")


def test_zz_report(capsys):
    """Prints the largest differences measured above (run with -s to see them)."""
    with capsys.disabled():
        for what, diff in sorted(MAX_DIFF.items()):
            print(f"\n  max |diff| {what}: {diff:.3g}", end="")
    assert MAX_DIFF, "the comparisons above recorded no difference at all"
