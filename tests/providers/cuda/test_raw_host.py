"""The host side of the CUDA provider's CUDA C kernels (``ort_cuda.kernels.raw``), without a GPU:
what it registers, its launch-configuration arithmetic, the tap tables and index metadata it
prepares, the reasons its limits give on hand-built KernelInfo objects, and, labelled "host
emulation of the CUDA C's per-thread logic", every kernel run through its Python wrapper on the
CPU (``_emulate.py``: the ``.cu`` sources compiled with g++, one fiber per CUDA thread) and
compared with onnxruntime's CPU provider (``_emulate_cases.py``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from ort_cuda.kernels import raw
from ort_cuda.kernels._common import registry
from ort_cuda.nvrtc import SOURCE_DIR

from ort_core import ops
from tests.providers.cuda import _emulate
from tests.providers.cuda._emulate_cases import (
    MS,
    Case,
    all_cases,
    compare,
    kernel_info,
    reference,
    run_kernel,
)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)

# -- what is registered ------------------------------------------------------------------------------
EXPECTED = {
    ("", "TopK"): (1, 10, 11, 24),
    ("", "NonMaxSuppression"): (10, 11),
    ("", "Resize"): (10, 11, 13, 18, 19),
    ("", "GatherND"): (11, 12, 13),
    ("", "ScatterND"): (11, 13, 16, 18),
    ("", "ScatterElements"): (11, 13, 16, 18),
    ("", "Softmax"): (1, 11, 13),
    ("", "LogSoftmax"): (1, 11, 13),
    ("", "LayerNormalization"): (17,),
    ("", "RMSNormalization"): (23,),
    ("", "SimplifiedLayerNormalization"): (1,),
    (MS, "SkipLayerNormalization"): (1,),
    (MS, "SkipSimplifiedLayerNormalization"): (1,),
    (MS, "Attention"): (1,),
    (MS, "MultiHeadAttention"): (1,),
}


def test_registered_versions():
    mine = {}
    for domain, op, since in registry.keys():
        kdef = registry.lookup(domain, op, since)
        if kdef is not None and kdef.since == since and kdef.source.startswith(raw.__name__):
            mine.setdefault((domain, op), []).append(since)
    assert {k: tuple(sorted(v)) for k, v in mine.items()} == EXPECTED


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_registered_with_needs_cuda(key):
    """Every kernel declines on a stand-in device (no CUDA runtime)."""

    class StandIn:
        native = False

    class Prov:
        cuda = StandIn()

    domain, op = key
    case = Case(
        "standin", op, [np.zeros((2, 3), np.float32)], domain=domain, opset=EXPECTED[key][-1]
    )
    info = kernel_info(case, Prov())
    kdef = registry.lookup(domain, op, info.opset)
    d = kdef.decline(info)
    assert d is not None and not d.invalid and "stand-in" in d.reason


def test_sources_list_existing_kernels():
    """Every name expression names a __global__ function of its source, with template arguments
    the wrappers know."""
    ctypes_ = set(raw.CTYPE.values()) | set(raw.BITS.values()) | {"true", "false"}
    assert set(raw.SOURCES) == {p.name for p in SOURCE_DIR.glob("*.cu")}
    for name, exprs in raw.SOURCES.items():
        text = (SOURCE_DIR / name).read_text()
        assert len(set(exprs)) == len(exprs), f"{name}: repeated instantiations"
        for e in exprs:
            m = re.fullmatch(r"(\w+)(?:<(.*)>)?", e)
            assert m, e
            assert re.search(rf"__global__ void {m.group(1)}\(", text), f"{name}: no kernel {e}"
            args = [a.strip() for a in m.group(2).split(",")] if m.group(2) else []
            assert set(args) <= ctypes_, f"{e}: unknown template arguments"


# -- launch configuration --------------------------------------------------------------------------
def test_grid_for():
    assert raw.grid_for(0) == 1
    assert raw.grid_for(1000, 256) == 4
    assert raw.grid_for(1024, 256) == 4
    assert raw.grid_for(10**12, 256) == raw.MAX_BLOCKS
    assert raw.grid_for(5, max_blocks=3) == 3


@pytest.mark.parametrize(
    "n,threads", [(1, 32), (100, 32), (128, 32), (129, 64), (768, 256), (4096, 1024), (10**6, 1024)]
)
def test_row_block(n, threads):
    assert raw.row_block(n) == threads


def test_topk_passes():
    assert raw.topk_passes(100, 5) == [(100, 100, 5)]
    assert raw.topk_passes(2048, 2048) == [(2048, 2048, 2048)]
    assert raw.topk_passes(5000, 70) == [(5000, 2048, 70), (210, 210, 70)]
    assert raw.topk_passes(5000, 1025) is None  # more than half a segment: the sort
    for n, k in [(10**6, 1), (10**6, 1000), (10**7, 1024), (4097, 1024), (2049, 3)]:
        passes = raw.topk_passes(n, k)
        assert passes[0][0] == n and passes[-1][1] == passes[-1][0] <= raw.TOPK_SEGMENT
        for (length, seg, kept), nxt in zip(passes, passes[1:]):
            assert kept == k and nxt[0] == -(-length // seg) * k < length
        assert passes[-1][0] >= k


@pytest.mark.parametrize("dtype", raw.TOPK_TYPES, ids=str)
@pytest.mark.parametrize("segment", [1, 2, 3, 31, 100, 1024, 2048])
def test_topk_launch(dtype, segment):
    threads, pow2, shared = raw.topk_launch(segment, dtype)
    assert pow2 >= segment and pow2 & (pow2 - 1) == 0 and pow2 <= 2 * max(threads, 1)
    assert threads % 32 == 0 and threads <= 1024
    key = 4 if np.dtype(dtype).itemsize <= 4 else 8
    assert shared == pow2 * (key + 8) <= 48 * 1024


def test_nms_block():
    assert raw.nms_block(1) == 32 and raw.nms_block(33) == 64 and raw.nms_block(10**5) == 256


def test_norm_launch():
    assert raw.norm_launch(768, F32) == (256, True)
    assert raw.norm_launch(raw.SHARED_BUDGET // 4, F32)[1]
    assert not raw.norm_launch(raw.SHARED_BUDGET // 4 + 1, F32)[1]
    assert not raw.norm_launch(raw.SHARED_BUDGET // 8 + 1, F64)[1]
    assert not raw.norm_launch(0, F32)[1]


def test_softmax_layout():
    assert raw.softmax_layout((2, 3, 4), -1, 13) == (6, 4, 1)
    assert raw.softmax_layout((2, 3, 4), 1, 13) == (2, 3, 4)
    assert raw.softmax_layout((2, 3, 4), 1, 11) == (2, 12, 1)
    assert raw.softmax_layout((2, 3, 4), 0, 1) == (1, 24, 1)


# -- Resize: layout and tables ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,axes,d",
    [
        ((2, 3, 4, 5, 6), [1, 3], [4, 6, 1]),
        ((2, 3, 4, 5, 6), [2, 3, 4], [1, 1, 1]),
        ((2, 3, 4, 5, 6), [0], [360, 1, 1]),
        ((2, 3, 4, 5, 6), [0, 4], [60, 1, 1]),
        ((7,), [0], [1, 1, 1]),
    ],
)
def test_resize_pass_layout(shape, axes, d):
    assert raw.resize_pass_layout(shape, axes) == d


def test_resize_tables_pack_axes():
    attrs = ops.ResizeAttrs.from_attrs(
        {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, 13
    )
    x_shape = (1, 1, 4, 6)
    _, steps = ops.resize_plan(attrs, x_shape, [1, 1, 2, 0.5], roi=[0, 0, -0.5, 0, 1, 1, 1.5, 1])
    tabs = [ops.tap_table(attrs, s) for s in steps]
    idx, w, outside, slots = raw.resize_tables(tabs, F32)
    assert len(slots) == raw.RESIZE_AXES
    off = 0
    for tab, (taps, o, ooff) in zip(tabs, slots):
        n = tab.index.size
        assert taps == tab.index.shape[1] and o == off
        np.testing.assert_array_equal(idx[o : o + n], tab.index.reshape(-1))
        np.testing.assert_allclose(w[o : o + n], tab.weight.reshape(-1), rtol=1e-7)
        if tab.outside is None:
            assert ooff == -1
        else:
            np.testing.assert_array_equal(outside[ooff : ooff + tab.index.shape[0]], tab.outside)
        off += n
    taps, o, ooff = slots[-1]  # the identity slot of the unused third axis
    assert (taps, ooff) == (1, -1) and idx[o] == 0 and w[o] == 1
    assert idx.dtype == np.int32 and w.dtype == np.float32 and outside.dtype == np.uint8


def test_resize_tables_nearest_has_no_weights():
    attrs = ops.ResizeAttrs.from_attrs({"mode": "nearest"}, 13)
    _, steps = ops.resize_plan(attrs, (2, 5), [1, 3])
    idx, w, outside, slots = raw.resize_tables([ops.tap_table(attrs, steps[0])], None)
    assert w is None and [s[0] for s in slots] == [1, 1, 1]
    assert idx.size == 15 + 1


# -- GatherND / ScatterND / attention helpers --------------------------------------------------------
def test_nd_meta():
    np.testing.assert_array_equal(raw.nd_meta((4, 5, 6), 1, 2), [5, 6, 6, 1])
    np.testing.assert_array_equal(raw.nd_meta((4, 5, 6), 0, 3), [4, 5, 6, 30, 6, 1])
    assert raw.nd_meta((4, 5), 0, 0).size == 0


def test_key_mask_formats():
    xp = _emulate.NumpyXP()
    m, rows = raw.key_mask(xp, np.array([2, 4], np.int32), 2, 3, 4)
    assert rows == 1 and m.shape == (2, 1, 4)
    np.testing.assert_array_equal(m[:, 0], [[1, 1, 0, 0], [1, 1, 1, 1]])
    m, _ = raw.key_mask(xp, np.array([3, 4, 1, 0], np.int32), 2, 3, 4)  # ends, then starts
    np.testing.assert_array_equal(m[:, 0], [[0, 1, 1, 0], [1, 1, 1, 1]])
    m, rows = raw.key_mask(xp, np.array([[1, 0, 2, 0]] * 2, np.int32), 2, 3, 4)
    np.testing.assert_array_equal(m[0, 0], [1, 0, 1, 0])
    m, rows = raw.key_mask(xp, np.ones((2, 3, 4), np.int32), 2, 3, 4)
    assert rows == 3 and m.shape == (2, 3, 4)
    assert raw.key_mask(xp, None, 2, 3, 4) is None
    with pytest.raises(Exception, match="not one of"):
        raw.key_mask(xp, np.ones((2, 5), np.int32), 2, 3, 4)


def test_bias_strides():
    xp = _emulate.NumpyXP()
    b, n, s, t = 2, 3, 4, 5
    arr, sb, sh = raw.bias_strides(xp, np.zeros((1, n, s, t), np.float32), (b, n, s, t))
    assert (sb, sh) == (0, s * t) and arr.shape == (1, n, s, t)
    arr, sb, sh = raw.bias_strides(xp, np.zeros((b, 1, s, t), np.float32), (b, n, s, t))
    assert (sb, sh) == (s * t, 0)
    arr, sb, sh = raw.bias_strides(xp, np.zeros((s, t), np.float32), (b, n, s, t))
    assert (sb, sh) == (0, 0)
    odd = np.zeros((b, n, t, s), np.float32).transpose(0, 1, 3, 2)  # not row-contiguous
    arr, sb, sh = raw.bias_strides(xp, odd, (b, n, s, t))
    assert arr.flags.c_contiguous and (sb, sh) == (n * s * t, s * t)


# -- limits on hand-built KernelInfo -----------------------------------------------------------------
def _f(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


_LIMITS = [
    (Case("resize_linear_int", "Resize", [_f(1, 1, 4, 4, dtype=np.int32), _f(0), _f(4)],
          {"mode": "linear"}), "linear Resize of int32 is not implemented"),
    (Case("scatternd_add_int8", "ScatterND", [_f(4, dtype=np.int8), _f(1, 1, dtype=np.int64),
          _f(1, dtype=np.int8)], {"reduction": "add"}, opset=16), "reduction 'add' on int8"),
    (Case("scatterel_max_u16", "ScatterElements", [_f(4, dtype=np.uint16),
          _f(1, dtype=np.int64), _f(1, dtype=np.uint16)], {"reduction": "max"}, opset=18),
     "compare-and-swap on single bytes"),
    (Case("layernorm_stash", "LayerNormalization", [_f(2, 4), _f(4)], {"stash_type": 11},
          opset=17), "stash_type 11 is not implemented"),
    (Case("simplified_mixed", "SimplifiedLayerNormalization", [_f(2, 4, dtype=np.float16),
          _f(4, dtype=np.float64)], opset=17), "input of float16 with scale of float64"),
    (Case("attention_rotary", "Attention", [_f(1, 2, 8), _f(8, 24)],
          {"num_heads": 2, "do_rotary": 1}, domain=MS), "do_rotary"),
    (Case("attention_shared_buffer", "Attention", [_f(1, 2, 8), _f(8, 24)],
          {"num_heads": 2, "past_present_share_buffer": 1}, domain=MS),
     "past_present_share_buffer"),
    (Case("attention_mask4d", "Attention", [_f(1, 2, 8), _f(8, 24), None,
          _f(1, 1, 4, 4, dtype=np.int32)], {"num_heads": 2}, domain=MS), "4-D mask_index"),
    (Case("mha_qk", "MultiHeadAttention", [_f(1, 2, 8), _f(1, 2, 8), _f(1, 2, 8)],
          {"num_heads": 2}, domain=MS, outputs=4), "the qk output is not implemented"),
    (Case("mha_cache_indirection", "MultiHeadAttention", [_f(1, 2, 8), _f(1, 2, 8),
          _f(1, 2, 8), None, None, None, None, None, None, _f(1, 1, 4, dtype=np.int32)],
          {"num_heads": 2}, domain=MS), "cache_indirection"),
    (Case("mha_mask4d", "MultiHeadAttention", [_f(1, 2, 8), _f(1, 2, 8), _f(1, 2, 8),
          None, _f(1, 1, 2, 2, dtype=np.int32)], {"num_heads": 2}, domain=MS),
     "key_padding_mask of rank 4"),
]  # fmt: skip
_INVALID = [
    (Case("topk1_no_k", "TopK", [_f(2, 4)], opset=1), "'k' attribute is required"),
    (Case("topk_axis", "TopK", [_f(2, 4), _f(1, dtype=np.int64)], {"axis": 2}, opset=11),
     "axis 2 is out of range"),
    (Case("scatternd_reduction_opset", "ScatterND", [_f(4), _f(1, 1, dtype=np.int64), _f(1)],
          {"reduction": "max"}, opset=16), "reduction 'max' is not one of"),
    (Case("resize_mode", "Resize", [_f(1, 1, 2, 2), _f(0), _f(4)], {"mode": "area"}),
     "mode 'area'"),
    (Case("gathernd_batch", "GatherND", [_f(2, 3), _f(3, 1, dtype=np.int64)],
          {"batch_dims": 1}, opset=12), "batch dimension 0"),
    (Case("softmax_axis", "Softmax", [_f(2, 3)], {"axis": 3}), "axis 3 is out of range"),
    (Case("attention_heads", "Attention", [_f(1, 2, 8), _f(8, 24)], {"num_heads": 0},
          domain=MS), "num_heads must be a positive integer"),
]  # fmt: skip


@pytest.fixture(scope="module")
def emu_provider():
    return _emulate.EmuProvider(_emulate.EmuDevice())


@pytest.mark.parametrize("case,reason", _LIMITS, ids=[c.id for c, _ in _LIMITS])
def test_limit_reasons(emu_provider, case, reason):
    info = kernel_info(case, emu_provider)
    d = registry.lookup(case.domain, case.op, info.opset).decline(info)
    assert d is not None and not d.invalid, d
    assert reason in d.reason


@pytest.mark.parametrize("case,reason", _INVALID, ids=[c.id for c, _ in _INVALID])
def test_invalid_reasons(emu_provider, case, reason):
    info = kernel_info(case, emu_provider)
    d = registry.lookup(case.domain, case.op, info.opset).decline(info)
    assert d is not None and d.invalid, d
    assert reason in d.reason


def test_gather_nd_constant_indices_checked_at_build(emu_provider):
    case = Case("gathernd_const", "GatherND", [_f(2, 3), _f(1, 2, dtype=np.int64)], opset=13)
    info = kernel_info(case, emu_provider)
    info.constants[1] = np.array([[1, 3]], np.int64)
    with pytest.raises(Exception, match="out of range"):
        registry.lookup("", "GatherND", 13).build(info)


# -- host emulation of the CUDA C's per-thread logic -------------------------------------------------
CASES = all_cases()


@pytest.mark.skipif(not _emulate.have_compiler(), reason="no g++ to build the host emulation")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_emulated_kernel_matches_onnxruntime(emu_provider, case):
    """host emulation of the CUDA C's per-thread logic: the kernel's wrapper and CUDA C, run on
    the CPU, against onnxruntime's CPU provider."""
    pytest.importorskip("onnxruntime")
    expected = reference(case)
    got = run_kernel(case, emu_provider, registry)
    compare(case, got, expected)


@pytest.mark.skipif(not _emulate.have_compiler(), reason="no g++ to build the host emulation")
def test_emulated_errors(emu_provider):
    """host emulation of the CUDA C's per-thread logic: out-of-range indices are reported by the
    kernels' error flag, not followed."""
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    bad = [
        Case("gathernd_oob", "GatherND", [data, np.array([[3]], np.int64)], opset=13),
        Case(
            "scatternd_oob", "ScatterND", [data, np.array([[-4]], np.int64), data[:1]], opset=13
        ),  # fmt: skip
        Case(
            "scatterel_oob",
            "ScatterElements",
            [data, np.array([[4]], np.int64), data[:1, :1]],
            {"axis": 1},
            opset=13,
        ),  # fmt: skip
    ]
    for case in bad:
        with pytest.raises(Exception, match="out of range"):
            run_kernel(case, emu_provider, registry)
    with pytest.raises(Exception, match="k=5 is out of range"):
        run_kernel(Case("topk_k", "TopK", [data, np.array([5], np.int64)], opset=11,
                        outputs=2), emu_provider, registry)  # fmt: skip
    with pytest.raises(Exception, match="iou_threshold"):
        boxes, scores = np.zeros((1, 2, 4), np.float32), np.zeros((1, 1, 2), np.float32)
        run_kernel(Case("nms_iou", "NonMaxSuppression", [boxes, scores,
                        np.array([1], np.int64), np.array([1.5], np.float32)], opset=11),
                   emu_provider, registry)  # fmt: skip


def test_emulator_checks_launches():
    """The emulation refuses what CUDA would: blocks not a multiple of 32, too much shared
    memory, and scalars of the wrong size (cupy passes numpy scalars as they are)."""
    if not _emulate.have_compiler():
        pytest.skip("no g++ to build the host emulation")
    mod = _emulate.EmuDevice().module("softmax.cu", raw.SOURCES["softmax.cu"])
    fn = mod.get_function("softmax_rows<float, false>")
    x, y = np.zeros((2, 8), np.float32), np.zeros((2, 8), np.float32)
    with pytest.raises(RuntimeError, match="multiple of 32"):
        fn((1,), (48,), (x, y, np.int64(2), np.int64(8)))
    with pytest.raises(RuntimeError, match="shared memory"):
        fn((1,), (32,), (x, y, np.int64(2), np.int64(8)), shared_mem=64 * 1024)
    with pytest.raises(TypeError, match="bytes"):
        fn((1,), (32,), (x, y, np.int32(2), np.int64(8)))
    with pytest.raises(TypeError, match="numpy scalar"):
        fn((1,), (32,), (x, y, 2, np.int64(8)))
    fn((1,), (32,), (x, y, np.int64(2), np.int64(8)))
    np.testing.assert_allclose(y, 1 / 8)
