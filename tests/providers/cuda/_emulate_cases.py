"""The cases the host emulation runs (see ``_emulate.py``): one ONNX node each, built through
the CUDA provider's kernel builder (``ort_cuda.kernels.raw``) on an emulated device and compared
with onnxruntime's CPU provider on the same inputs.

Where onnxruntime's CPU provider has no kernel for an element type (bfloat16, float16 scatter
reductions) the reference runs on the inputs widened to float32 (``ref_dtype``) and the result is
compared within the narrow type's precision.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np
import onnx
from onnx import helper

BF16 = np.dtype(ml_dtypes.bfloat16)
MS = "com.microsoft"


@dataclass
class Case:
    id: str
    op: str
    inputs: list[Any]  # None: an omitted optional input
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 13
    domain: str = ""
    outputs: int | list[bool] = 1  # count, or which outputs the node has (False: omitted)
    rtol: float = 1e-5
    atol: float = 1e-6
    ref_dtype: Any = None  # run the reference on float inputs widened to this type
    ref_inputs: list[Any] | None = None  # the reference's inputs, when onnxruntime's CPU
    # provider has no kernel for this layout (MultiHeadAttention's packed QKV / KV)

    def output_flags(self) -> list[bool]:
        if isinstance(self.outputs, int):
            return [True] * self.outputs
        return list(self.outputs)


def node_model(case: Case) -> tuple[onnx.ModelProto, onnx.NodeProto, list[str], list[str]]:
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(case.inputs)]
    outs = [f"out{i}" if f else "" for i, f in enumerate(case.output_flags())]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(case.op, names, outs, domain=case.domain, **case.attrs)
    graph_inputs = []
    for n, a in zip(names, case.inputs):
        if n:
            dt = helper.np_dtype_to_tensor_dtype(_ref_array(case, a).dtype)
            graph_inputs.append(helper.make_tensor_value_info(n, dt, a.shape))
    graph = helper.make_graph(
        [node],
        case.id,
        graph_inputs,
        [helper.make_value_info(o, onnx.TypeProto()) for o in outs if o],
    )
    imports = [helper.make_opsetid("", case.opset)]
    if case.domain:
        imports.append(helper.make_opsetid(case.domain, 1))
    return helper.make_model(graph, opset_imports=imports, ir_version=10), node, names, outs


def _ref_array(case: Case, a: np.ndarray) -> np.ndarray:
    if case.ref_dtype is not None and (a.dtype.kind == "f" or a.dtype == BF16):
        return a.astype(case.ref_dtype)
    return a


def reference(case: Case) -> list[np.ndarray]:
    import onnxruntime as ort

    if case.ref_inputs is not None:
        case = dataclasses.replace(case, inputs=case.ref_inputs, ref_inputs=None)
    model, _, names, _ = node_model(case)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {n: _ref_array(case, a) for n, a in zip(names, case.inputs) if n}
    return sess.run(None, feeds)


def kernel_info(case: Case, provider: Any):
    from ort_core.ir import Node
    from ort_core.provider.view import KernelInfo

    model, node, names, outs = node_model(case)
    types = {vi.name: vi.type for vi in model.graph.input}
    n = Node(
        case.op,
        list(node.input),
        list(node.output),
        domain=case.domain,
        attributes={a.name: a for a in node.attribute},
    )
    in_types = []
    for name, a in zip(node.input, case.inputs):
        if not name:
            in_types.append(None)
            continue
        tp = onnx.TypeProto()
        tp.CopyFrom(types[name])
        tp.tensor_type.elem_type = helper.np_dtype_to_tensor_dtype(a.dtype)
        in_types.append(tp)
    opset = 1 if case.domain else case.opset
    return KernelInfo(n, opset, in_types, [None] * len(outs), {}, provider=provider)


def run_kernel(case: Case, provider: Any, registry: Any) -> list[Any]:
    """The kernel's outputs (None for omitted ones), as the provider would run it."""
    info = kernel_info(case, provider)
    kdef = registry.lookup(case.domain, case.op, info.opset)
    assert kdef is not None, f"no CUDA kernel for {case.op}-{info.opset}"
    assert kdef.source.startswith("ort_cuda.kernels.raw"), kdef.source
    decline = kdef.decline(info)
    assert decline is None, f"{case.id}: declined: {decline.reason}"
    fn = kdef.build(info)
    args = [a for a in case.inputs]
    while args and args[-1] is None:
        args.pop()
    got = fn(*args)
    return list(got) if isinstance(got, (tuple, list)) else [got]


def compare(case: Case, got: list[Any], expected: list[np.ndarray]) -> None:
    flags = case.output_flags()
    present = [g for g, f in zip(got, flags) if f]
    assert len(present) == len(expected), (len(present), len(expected))
    for i, (g, e) in enumerate(zip(present, expected)):
        assert g is not None, f"{case.id}: output {i} missing"
        g = np.asarray(g)
        assert g.shape == e.shape, f"{case.id}: output {i} shape {g.shape} != {e.shape}"
        if e.dtype.kind in "iub":
            assert g.dtype == e.dtype, f"{case.id}: output {i} dtype {g.dtype} != {e.dtype}"
            np.testing.assert_array_equal(g, e, err_msg=f"{case.id}: output {i}")
        else:
            np.testing.assert_allclose(
                g.astype(np.float64),
                e.astype(np.float64),
                rtol=case.rtol,
                atol=case.atol,
                err_msg=f"{case.id}: output {i}",
            )


# -- the cases -------------------------------------------------------------------------------------
def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _f(shape, dtype=np.float32, seed=0, lo=-2.0, hi=2.0):
    return _rng(seed).uniform(lo, hi, size=shape).astype(dtype)


def _k(k: int) -> np.ndarray:
    return np.array([k], np.int64)


HALF = {"rtol": 2e-3, "atol": 2e-3}
BFLOAT = {"rtol": 2e-2, "atol": 2e-2, "ref_dtype": np.float32}


def topk_cases() -> list[Case]:
    ties = _rng(1).integers(0, 6, size=(5, 40)).astype(np.float32)  # many equal values
    long_row = _f((2, 5000), seed=2)
    long_row[:, 100:160] = 1.5  # ties across segments
    c = [
        Case("topk1_attr", "TopK", [_f((4, 37))], {"k": 5}, opset=1, outputs=2),
        Case("topk10", "TopK", [_f((4, 37)), _k(3)], {"axis": 0}, opset=10, outputs=2),
        Case("topk11_largest_ties", "TopK", [ties, _k(7)], {}, opset=11, outputs=2),
        Case("topk11_smallest_ties", "TopK", [ties, _k(7)], {"largest": 0}, opset=11, outputs=2),
        Case("topk11_axis1_3d", "TopK", [_f((3, 9, 4)), _k(9)], {"axis": 1}, opset=11, outputs=2),
        Case("topk11_k0", "TopK", [_f((3, 9)), _k(0)], {}, opset=11, outputs=2),
        Case("topk11_f16", "TopK", [ties.astype(np.float16), _k(11)], {}, opset=11, outputs=2),
        Case(
            "topk11_f64",
            "TopK",
            [_f((3, 33), np.float64), _k(4)],
            {"largest": 0},
            opset=11,
            outputs=2,
        ),  # fmt: skip
        Case("topk11_i32", "TopK", [ties.astype(np.int32), _k(6)], {}, opset=11, outputs=2),
        Case(
            "topk11_i64",
            "TopK",
            [ties.astype(np.int64), _k(6)],
            {"largest": 0},
            opset=11,
            outputs=2,
        ),  # fmt: skip
        Case("topk11_multipass", "TopK", [long_row, _k(70)], {}, opset=11, outputs=2),
        Case(
            "topk11_sortpath", "TopK", [long_row, _k(1100)], {"largest": 0}, opset=11, outputs=2
        ),  # fmt: skip
    ]
    return c


def nms_cases() -> list[Case]:
    rng = _rng(3)
    b, n, classes = 2, 40, 3
    xy = rng.uniform(0, 10, size=(b, n, 2))
    wh = rng.uniform(1, 4, size=(b, n, 2))
    corners = np.concatenate([xy, xy + wh], axis=2).astype(np.float32)  # [y1, x1, y2, x2]
    flipped = corners[..., [2, 3, 0, 1]].copy()  # the other corner order
    center = np.concatenate([xy + wh / 2, wh], axis=2).astype(np.float32)
    scores = rng.uniform(0, 1, size=(b, classes, n)).astype(np.float32)
    tied = np.round(scores * 4) / 4
    m, iou, st = np.array([5], np.int64), np.array([0.3], np.float32), np.array([0.2], np.float32)
    return [
        Case("nms10", "NonMaxSuppression", [corners, scores, m, iou, st], opset=10),
        Case("nms11_flipped", "NonMaxSuppression", [flipped, scores, m, iou, st], opset=11),
        Case(
            "nms11_center",
            "NonMaxSuppression",
            [center, scores, np.array([40], np.int64), np.array([0.1], np.float32)],
            {"center_point_box": 1},
            opset=11,
        ),  # fmt: skip
        Case("nms11_no_threshold", "NonMaxSuppression", [corners, scores, m], opset=11),
        Case(
            "nms11_zero",
            "NonMaxSuppression",
            [corners, scores, np.array([0], np.int64), iou],
            opset=11,
        ),  # fmt: skip
        Case(
            "nms11_tied",
            "NonMaxSuppression",
            [
                corners,
                tied,
                np.array([100], np.int64),
                np.array([0.5], np.float32),
                np.array([0.0], np.float32),
            ],
            opset=11,
        ),  # fmt: skip
    ]


def resize_cases() -> list[Case]:
    # scales exact in binary whose output lengths are whole (scale * length): onnxruntime
    # computes coordinates in float32 and align_corners / tf_crop_and_resize from the integer
    # output length, ort_core.ops in float64 from scale * length; these agree on such scales
    x = _f((2, 3, 6, 8), seed=4)
    none = np.array([], np.float32)
    up = np.array([1, 1, 2, 1.5], np.float32)
    down = np.array([1, 1, 0.5, 0.75], np.float32)
    c = [Case("resize10_nearest", "Resize", [x, up], {"mode": "nearest"}, opset=10),
         Case("resize10_linear", "Resize", [x, down], {"mode": "linear"}, opset=10)]  # fmt: skip
    for ctm in ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel",
                "half_pixel_symmetric", "tf_half_pixel_for_nn"):  # fmt: skip
        for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
            if ctm != "half_pixel" and nm not in ("round_prefer_floor", "ceil"):
                continue
            c.append(Case(f"resize13_nearest_{ctm}_{nm}", "Resize", [x, none, up],
                          {"mode": "nearest", "coordinate_transformation_mode": ctm,
                           "nearest_mode": nm}, opset=13))  # fmt: skip
    for ctm in ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel",
                "half_pixel_symmetric"):  # fmt: skip
        for mode in ("linear", "cubic"):
            for sc, tag in ((up, "up"), (down, "down")):
                c.append(Case(f"resize13_{mode}_{ctm}_{tag}", "Resize", [x, none, sc],
                              {"mode": mode, "coordinate_transformation_mode": ctm},
                              opset=13, rtol=1e-4, atol=1e-5))  # fmt: skip
    c += [
        Case("resize13_cubic_exclude_a05", "Resize", [x, none, up],
             {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, opset=13,
             rtol=1e-4, atol=1e-5),
        Case("resize13_crop_linear", "Resize",
             [x, np.array([0, 0, -0.25, 0.125, 1, 1, 1.25, 0.875], np.float32), up],
             {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
              "extrapolation_value": -7.0}, opset=13, rtol=1e-4, atol=1e-5),
        Case("resize13_crop_nearest", "Resize",
             [x, np.array([0, 0, -0.25, 0.125, 1, 1, 1.25, 0.875], np.float32), up],
             {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize",
              "extrapolation_value": 3.0}, opset=13),
        Case("resize13_sizes", "Resize", [x, none, None, np.array([2, 3, 9, 4], np.int64)],
             {"mode": "linear"}, opset=13, rtol=1e-4, atol=1e-5),
        Case("resize18_antialias_linear", "Resize", [x, none, down],
             {"mode": "linear", "antialias": 1}, opset=18, rtol=1e-4, atol=1e-5),
        Case("resize18_antialias_cubic", "Resize", [x, none, down],
             {"mode": "cubic", "antialias": 1}, opset=18, rtol=1e-4, atol=1e-5),
        Case("resize18_axes_policy", "Resize", [x, none, None, np.array([9, 9], np.int64)],
             {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
             opset=18, rtol=1e-4, atol=1e-5),
        Case("resize19_axes_smaller", "Resize", [x, none, None, np.array([4, 4], np.int64)],
             {"mode": "cubic", "axes": [3, 2], "keep_aspect_ratio_policy": "not_smaller"},
             opset=19, rtol=1e-4, atol=1e-5),
        Case("resize13_f16_linear", "Resize", [x.astype(np.float16), none, up],
             {"mode": "linear"}, opset=13, **HALF),
        Case("resize13_f64_cubic", "Resize", [x.astype(np.float64), none, down],
             {"mode": "cubic"}, opset=13, rtol=1e-5, atol=1e-5, ref_dtype=np.float32),
        Case("resize13_bf16_linear", "Resize", [x.astype(BF16), none, up],
             {"mode": "linear"}, opset=13, **BFLOAT),
        Case("resize13_u8_nearest", "Resize", [(x * 40 + 100).astype(np.uint8), none, up],
             {"mode": "nearest"}, opset=13),
        Case("resize13_i32_nearest", "Resize", [(x * 40).astype(np.int32), none, down],
             {"mode": "nearest"}, opset=13),
        Case("resize13_5d_trilinear", "Resize", [_f((1, 2, 3, 4, 5), seed=5), none,
             np.array([1, 1, 2, 1.5, 0.8], np.float32)], {"mode": "linear"}, opset=13,
             rtol=1e-4, atol=1e-5),  # three axes in one pass
        Case("resize13_4axes_nearest", "Resize", [_f((2, 3, 4, 5), seed=6), none,
             np.array([2, 0.5, 1.5, 2], np.float32)], {"mode": "nearest"}, opset=13),  # chained
    ]  # fmt: skip
    return c


def gather_scatter_cases() -> list[Case]:
    data = _f((4, 5, 6), seed=7)
    idx2 = np.array([[0, 1], [3, -1], [2, 4], [-4, 0]], np.int64)
    batch_idx = np.array([[[1], [4]], [[0], [0]], [[3], [2]], [[4], [-5]]], np.int64)
    dup = np.array([[1, 2], [1, 2], [0, 0], [3, 4]], np.int64)
    upd = _f((4, 6), seed=8)
    se_data = _f((4, 5), seed=9)
    se_idx = np.array([[1, 0, 3], [-1, 2, 0], [1, 1, 1]], np.int64)
    se_upd = _f((3, 3), seed=10)
    c = [
        Case("gathernd11", "GatherND", [data, idx2], opset=11),
        Case("gathernd12_batch", "GatherND", [data, batch_idx], {"batch_dims": 1}, opset=12),
        Case("gathernd13_full", "GatherND", [data, np.array([[1, 2, 3], [0, -1, -2]])], opset=13),
        Case("gathernd13_i64", "GatherND", [(data * 9).astype(np.int64), idx2], opset=13),
        Case("gathernd13_f16", "GatherND", [data.astype(np.float16), idx2], opset=13),
        Case("gathernd13_bool", "GatherND", [data > 0, idx2], opset=13),
        Case("scatternd11", "ScatterND", [data, idx2, upd], opset=11),
        Case("scatternd16_add", "ScatterND", [data, dup, upd], {"reduction": "add"}, opset=16),
        Case("scatternd16_mul", "ScatterND", [data, dup, upd], {"reduction": "mul"}, opset=16),
        Case("scatternd18_max", "ScatterND", [data, dup, upd], {"reduction": "max"}, opset=18),
        Case("scatternd18_min", "ScatterND", [data, dup, upd], {"reduction": "min"}, opset=18),
        Case("scatternd18_add_i64", "ScatterND", [(data * 9).astype(np.int64), dup,
             (upd * 9).astype(np.int64)], {"reduction": "add"}, opset=18),  # fmt: skip
        Case("scatternd18_add_i32", "ScatterND", [(data * 9).astype(np.int32), dup,
             (upd * 9).astype(np.int32)], {"reduction": "max"}, opset=18),  # fmt: skip
        Case("scatternd18_add_f16", "ScatterND", [data.astype(np.float16), dup,
             upd.astype(np.float16)], {"reduction": "add"}, opset=18, ref_dtype=np.float32,
             **HALF),  # fmt: skip
        Case("scatternd18_mul_bf16", "ScatterND", [data.astype(BF16), dup, upd.astype(BF16)],
             {"reduction": "mul"}, opset=18, **BFLOAT),
        Case("scatternd13_u8", "ScatterND", [(data * 9 + 30).astype(np.uint8), idx2,
             (upd * 9 + 30).astype(np.uint8)], opset=13),  # fmt: skip
        Case("scatterel11", "ScatterElements", [se_data, se_idx, se_upd], {"axis": 0}, opset=11),
        Case("scatterel13_axis1_i32", "ScatterElements",
             [se_data, np.array([[0, 4], [-2, 1]], np.int32), se_upd[:2, :2]], {"axis": 1},
             opset=13),
        Case("scatterel16_add", "ScatterElements", [se_data, se_idx, se_upd],
             {"reduction": "add"}, opset=16),
        Case("scatterel16_mul", "ScatterElements", [se_data, se_idx, se_upd],
             {"reduction": "mul", "axis": 1}, opset=16),
        Case("scatterel18_max", "ScatterElements", [se_data, se_idx, se_upd],
             {"reduction": "max"}, opset=18),
        Case("scatterel18_min_f16", "ScatterElements", [se_data.astype(np.float16), se_idx,
             se_upd.astype(np.float16)], {"reduction": "min"}, opset=18, **HALF),
        Case("scatterel18_add_f64", "ScatterElements", [se_data.astype(np.float64), se_idx,
             se_upd.astype(np.float64)], {"reduction": "add", "axis": -1}, opset=18),
    ]  # fmt: skip
    return c


def softmax_cases() -> list[Case]:
    x = _f((3, 4, 37), seed=11, lo=-6, hi=6)
    inf_rows = x.copy()
    inf_rows[0, 1, :] = -np.inf
    inf_rows[1, 2, 5] = -np.inf
    c = []
    for op in ("Softmax", "LogSoftmax"):
        c += [
            Case(f"{op}13_last", op, [x], {}, opset=13),
            Case(f"{op}13_axis1", op, [x], {"axis": 1}, opset=13),
            Case(f"{op}13_axis0", op, [x], {"axis": 0}, opset=13),
            Case(f"{op}11_coerced", op, [x], {"axis": 1}, opset=11),
            Case(f"{op}1_default", op, [x], {}, opset=1),
            Case(f"{op}13_f16", op, [x.astype(np.float16)], {}, opset=13, **HALF),
            Case(
                f"{op}13_f64",
                op,
                [x.astype(np.float64)],
                {"axis": -2},
                opset=13,
                rtol=1e-12,
                atol=1e-12,
            ),  # fmt: skip
            Case(f"{op}13_bf16", op, [x.astype(BF16)], {}, opset=13, **BFLOAT),
            Case(
                f"{op}13_long_row",
                op,
                [_f((2, 3000), seed=12, lo=-9, hi=9)],
                {},
                opset=13,
                rtol=1e-5,
                atol=1e-6,
            ),  # fmt: skip
        ]
    c.append(Case("Softmax13_neg_inf", "Softmax", [inf_rows], {}, opset=13))
    return c


def norm_cases() -> list[Case]:
    x = _f((2, 5, 24), seed=13, lo=-3, hi=5)
    g, b = _f((24,), seed=14), _f((24,), seed=15)
    g2, b2 = _f((5, 24), seed=16), _f((5, 24), seed=17)
    skip, skip_s = _f((2, 5, 24), seed=18), _f((5, 24), seed=19)
    bias = _f((24,), seed=20)
    h = np.float16
    return [
        Case("layernorm17", "LayerNormalization", [x, g, b], {}, opset=17, outputs=3),
        Case("layernorm17_axis1", "LayerNormalization", [x, g2, b2], {"axis": 1}, opset=17,
             outputs=3),
        Case("layernorm17_nobias_y", "LayerNormalization", [x, g], {"epsilon": 1e-3}, opset=17),
        Case("layernorm17_f16", "LayerNormalization", [x.astype(h), g.astype(h), b.astype(h)],
             {}, opset=17, outputs=3, **HALF),
        Case("layernorm17_f64", "LayerNormalization", [x.astype(np.float64),
             g.astype(np.float64), b.astype(np.float64)], {}, opset=17, rtol=1e-9, atol=1e-9),
        Case("layernorm17_bf16", "LayerNormalization", [x.astype(BF16), g.astype(BF16),
             b.astype(BF16)], {}, opset=17, **BFLOAT),
        Case("rmsnorm23", "RMSNormalization", [x, g], {}, opset=23),
        Case("rmsnorm23_axis1", "RMSNormalization", [x, g2], {"axis": 1, "epsilon": 1e-2},
             opset=23),
        Case("rmsnorm23_f16", "RMSNormalization", [x.astype(h), g.astype(h)], {}, opset=23,
             **HALF),
        Case("simplified", "SimplifiedLayerNormalization", [x, g], {}, opset=17, outputs=2),
        Case("simplified_f32_f16", "SimplifiedLayerNormalization", [x, g.astype(h)], {},
             opset=17, outputs=2, **HALF),
        Case("skipln", "SkipLayerNormalization", [x, skip, g, b, bias], domain=MS, outputs=4,
             rtol=1e-5, atol=1e-5),
        Case("skipln_bcast_skip", "SkipLayerNormalization", [x, skip_s, g], domain=MS,
             outputs=[True, False, False, True]),
        Case("skipln_f16", "SkipLayerNormalization", [x.astype(h), skip.astype(h), g.astype(h),
             b.astype(h), bias.astype(h)], domain=MS, outputs=[True, False, False, True],
             **HALF),
        Case("skipsimplified", "SkipSimplifiedLayerNormalization", [x, skip, g, bias],
             domain=MS, outputs=[True, False, True, True]),
        Case("skipsimplified_nobias", "SkipSimplifiedLayerNormalization", [x, skip, g],
             {"epsilon": 1e-6}, domain=MS, outputs=1),
    ]  # fmt: skip


def attention_cases() -> list[Case]:
    b, s, d, heads = 2, 5, 16, 2
    x = _f((b, s, d), seed=21, lo=-1, hi=1)
    w = _f((d, 3 * d), seed=22, lo=-0.5, hi=0.5)
    bias = _f((3 * d,), seed=23, lo=-0.5, hi=0.5)
    mask2 = np.ones((b, s), np.int32)
    mask2[0, 3:] = 0
    lengths = np.array([3, 5], np.int32)
    past = _f((2, b, heads, 4, d // heads), seed=24)
    mask_past = np.ones((b, s + 4), np.int32)
    mask_past[1, :2] = 0
    abias = _f((1, heads, s, s), seed=25)
    q = _f((b, s, d), seed=26)
    k = _f((b, 7, d), seed=27)
    v = _f((b, 7, d), seed=28)
    pk = _f((b, heads, 3, d // heads), seed=29)
    pv = _f((b, heads, 3, d // heads), seed=30)
    hd = d // heads
    packed_kv = np.stack([k.reshape(b, 7, heads, hd), v.reshape(b, 7, heads, hd)], axis=3)
    q2, v2 = _f((b, s, d), seed=34), _f((b, s, d), seed=35)
    packed_qkv = np.stack([t.reshape(b, s, heads, hd) for t in (q, q2, v2)], axis=3)
    qkv_bias = _f((3 * d,), seed=36)
    kpm = np.ones((b, 7), np.int32)
    kpm[1, 5:] = 0
    at = {"num_heads": heads}
    tol = {"rtol": 1e-4, "atol": 1e-5}
    return [
        Case("attention", "Attention", [x, w, bias], at, domain=MS, **tol),
        Case("attention_mask2d", "Attention", [x, w, bias, mask2], at, domain=MS, **tol),
        Case("attention_mask1d", "Attention", [x, w, bias, lengths], at, domain=MS, **tol),
        Case("attention_causal", "Attention", [x, w, bias], {**at, "unidirectional": 1},
             domain=MS, **tol),
        Case("attention_past", "Attention", [x, w, bias, mask_past, past],
             {**at, "unidirectional": 1}, domain=MS, outputs=2, **tol),
        Case("attention_bias_scale", "Attention", [x, w, bias, None, None, abias],
             {**at, "scale": 0.3}, domain=MS, **tol),
        Case("attention_qkv_sizes", "Attention", [x, _f((d, 40), seed=31), None],
             {**at, "qkv_hidden_sizes": [12, 12, 16]}, domain=MS, **tol),
        Case("attention_f16", "Attention", [x.astype(np.float16), w.astype(np.float16),
             bias.astype(np.float16), mask2], at, domain=MS, rtol=5e-3, atol=5e-3),
        Case("mha", "MultiHeadAttention", [q, k, v], at, domain=MS, **tol),
        Case("mha_bias_mask", "MultiHeadAttention", [q, k, v, _f((3 * d,), seed=32), kpm],
             at, domain=MS, **tol),
        Case("mha_past", "MultiHeadAttention", [q, k, v, None, None, None, pk, pv],
             at, domain=MS, outputs=3, **tol),
        Case("mha_causal_self", "MultiHeadAttention", [q, q, q], {**at, "unidirectional": 1},
             domain=MS, **tol),
        Case("mha_attention_bias", "MultiHeadAttention",
             [q, k, v, None, None, _f((b, 1, s, 7), seed=33)], at, domain=MS, **tol),
        Case("mha_packed_kv", "MultiHeadAttention", [q, packed_kv], at, domain=MS,
             ref_inputs=[q, k, v], **tol),
        Case("mha_packed_qkv", "MultiHeadAttention", [packed_qkv, None, None, qkv_bias], at,
             domain=MS, ref_inputs=[q, q2, v2, qkv_bias], **tol),
        Case("mha_f16_mask1d", "MultiHeadAttention", [q.astype(np.float16), k.astype(np.float16),
             v.astype(np.float16), None, np.array([7, 4], np.int32)], at, domain=MS,
             rtol=5e-3, atol=5e-3),
    ]  # fmt: skip


def type_cases() -> list[Case]:
    """The remaining instantiations of each source (every element type or size its wrapper can
    launch), on small inputs."""
    ties = _rng(37).integers(0, 6, size=(3, 20)).astype(np.float32)
    x = _f((2, 3, 4, 6), seed=38)
    none = np.array([], np.float32)
    sc = np.array([1, 1, 1.5, 0.5], np.float32)
    data, idx = _f((4, 5), seed=39), np.array([[1], [3], [-1]], np.int64)
    se_idx = np.array([[1, 0, 3], [-1, 2, 0], [1, 1, 1]], np.int64)
    se_upd = _f((3, 3), seed=40)
    q, kv = _f((2, 3, 8), seed=41), _f((2, 4, 8), seed=42)
    h, d, i32, i64 = np.float16, np.float64, np.int32, np.int64
    mha = {"num_heads": 2}
    return [
        Case("types_topk_f16_smallest", "TopK", [ties.astype(h), _k(4)], {"largest": 0},
             opset=11, outputs=2),
        Case("types_topk_bf16", "TopK", [ties.astype(BF16), _k(4)], {}, opset=11, outputs=2,
             ref_dtype=np.float32),
        Case("types_topk_bf16_smallest", "TopK", [ties.astype(BF16), _k(4)], {"largest": 0},
             opset=11, outputs=2, ref_dtype=np.float32),
        Case("types_topk_f64", "TopK", [ties.astype(d), _k(4)], {}, opset=11, outputs=2),
        Case("types_topk_i32_smallest", "TopK", [ties.astype(i32), _k(4)], {"largest": 0},
             opset=11, outputs=2),
        Case("types_topk_i64", "TopK", [ties.astype(i64), _k(4)], {}, opset=11, outputs=2),
        Case("types_resize_nearest_f16", "Resize", [x.astype(h), none, sc], {}, opset=13),
        Case("types_resize_nearest_f64", "Resize", [x.astype(d), none, sc], {}, opset=13,
             ref_dtype=np.float32),
        Case("types_scatternd_f16", "ScatterND", [data.astype(h), idx,
             _f((3, 5), h, seed=43)], opset=13),
        Case("types_scatternd_i64", "ScatterND", [(data * 9).astype(i64), idx,
             (_f((3, 5), seed=44) * 9).astype(i64)], opset=13),
        Case("types_scatternd_min_f64", "ScatterND", [data.astype(d), idx[[0, 0, 1]],
             _f((3, 5), d, seed=45)], {"reduction": "min"}, opset=18),
        Case("types_scatterel_u8", "ScatterElements", [(data * 9 + 30).astype(np.uint8),
             se_idx, (se_upd * 9 + 30).astype(np.uint8)], opset=13),
        Case("types_scatterel_f16", "ScatterElements", [data.astype(h), se_idx,
             se_upd.astype(h)], opset=13),
        Case("types_scatterel_i64", "ScatterElements", [(data * 9).astype(i64), se_idx,
             (se_upd * 9).astype(i64)], {"axis": 1}, opset=13),
        Case("types_scatterel_add_bf16", "ScatterElements", [data.astype(BF16), se_idx,
             se_upd.astype(BF16)], {"reduction": "add"}, opset=16, **BFLOAT),
        Case("types_scatterel_mul_i32", "ScatterElements", [(data * 3).astype(i32), se_idx,
             (se_upd * 3).astype(i32)], {"reduction": "mul"}, opset=16),
        Case("types_scatterel_min_i64", "ScatterElements", [(data * 9).astype(i64), se_idx,
             (se_upd * 9).astype(i64)], {"reduction": "min"}, opset=18),
        Case("types_softmax_f64_rows", "Softmax", [x.astype(d)], {}, opset=13, rtol=1e-12,
             atol=1e-12),
        Case("types_logsoftmax_f64_rows", "LogSoftmax", [x.astype(d)], {}, opset=13,
             rtol=1e-12, atol=1e-12),
        Case("types_softmax_f16_strided", "Softmax", [x.astype(h)], {"axis": 1}, opset=13,
             **HALF),
        Case("types_logsoftmax_f16_strided", "LogSoftmax", [x.astype(h)], {"axis": 1},
             opset=13, **HALF),
        Case("types_softmax_bf16_strided", "Softmax", [x.astype(BF16)], {"axis": 2},
             opset=13, **BFLOAT),
        Case("types_logsoftmax_bf16_strided", "LogSoftmax", [x.astype(BF16)], {"axis": 2},
             opset=13, **BFLOAT),
        Case("types_simplified_f16_f32", "SimplifiedLayerNormalization",
             [x.astype(h), _f((6,), seed=46)], {}, opset=17, outputs=2, **HALF),
        Case("types_simplified_f32_bf16", "SimplifiedLayerNormalization",
             [x, _f((6,), BF16, seed=47)], {}, opset=17, **BFLOAT),
        Case("types_simplified_bf16_f32", "SimplifiedLayerNormalization",
             [x.astype(BF16), _f((6,), seed=48)], {}, opset=17, **BFLOAT),
        Case("types_mha_bf16", "MultiHeadAttention", [q.astype(BF16), kv.astype(BF16),
             kv.astype(BF16)], mha, domain=MS, **BFLOAT),
        Case("types_mha_f64", "MultiHeadAttention", [q.astype(d), kv.astype(d), kv.astype(d)],
             mha, domain=MS, rtol=1e-5, atol=1e-6, ref_dtype=np.float32),
    ]  # fmt: skip


def all_cases() -> list[Case]:
    return (
        type_cases()
        + topk_cases()
        + nms_cases()
        + resize_cases()
        + gather_scatter_cases()
        + softmax_cases()
        + norm_cases()
        + attention_cases()
    )
