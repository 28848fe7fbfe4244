"""The shared kernels of GroupNormalization, LpNormalization, MeanVarianceNormalization, LRN,
NonZero, Compress, ReverseSequence, Dropout, QuantizeLinear/DequantizeLinear and RNN/GRU/LSTM,
node by node: on the provider that has nothing but the shared kernels against onnxruntime, and on
array_api_strict against the same kernels on numpy.

Where onnxruntime has no kernel for a case (float16/float64 MeanVarianceNormalization, an even
LRN size or a 3-D LRN input, int32 QuantizeLinear, float64 recurrences, layout 1) the oracle is
onnx's ReferenceEvaluator, the CPU provider (onnx's reference LRN sums the wrong axis) or
onnxruntime on an equivalent node. Dropout's mask before opset 12 is all true (ones before opset
10), as the spec's reference and the CPU provider give it; onnxruntime fills it with zeros there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
import ort_array
import pytest
from onnx import TensorProto, numpy_helper

import ort_core
from tests.differential.harness import assert_same, make_node_model, run_cpu, run_reference

from ._providers import STRICT_TYPES, ArrayNumpyProvider, ArrayStrictProvider
from .cases import F16, F32, F64, I32, I64, Case, tol
from .test_vs_onnxruntime import run_onnxruntime, run_shared

ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(2718)
U8, I8 = np.uint8, np.int8


@dataclass
class MoreCase(Case):
    """A :class:`Case` with its oracle: ``"ort"`` (onnxruntime), ``"ref"`` (onnx's
    ReferenceEvaluator), ``"cpu"`` (ort-core's CPU provider, whose kernels are its own) or a
    function of the case; ``strict`` False keeps it off array_api_strict (an output type the
    standard lacks)."""

    oracle: str | Callable = "ort"
    strict: bool = True

    @property
    def id(self) -> str:
        return f"{super().id}-o{self.n_outputs}" if self.n_outputs > 1 else super().id


def rand(*shape, dtype=F32, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


CASES: list[MoreCase] = []


def add(*cases: MoreCase) -> None:
    CASES.extend(cases)


# -- normalization -------------------------------------------------------------------------------
for dt in (F32, F16, F64):
    x = rand(2, 4, 3, 2, dtype=dt)
    add(
        MoreCase("GroupNormalization", [x, rand(2, dtype=dt), rand(2, dtype=dt)], {"num_groups": 2},
                 opset=18, **tol(dt)),
        MoreCase("GroupNormalization", [x, rand(4, dtype=dt), rand(4, dtype=dt)], {"num_groups": 2},
                 opset=21, **tol(dt)),
    )  # fmt: skip
add(MoreCase("GroupNormalization", [rand(3, 6), rand(6), rand(6)],
             {"num_groups": 3, "epsilon": 1e-3}, opset=21, tag="rank2"))  # fmt: skip
add(MoreCase("GroupNormalization", [rand(1, 4, 5), rand(4), rand(4)], {"num_groups": 4}, opset=21,
             tag="g4"))  # fmt: skip
lp_zero = np.array([[0, 0, 0], [3, -4, 0], [1, 2, 2]], F32)
for p in (1, 2):
    add(
        MoreCase("LpNormalization", [rand(2, 3, 4)], {"p": p}, opset=1, tag=f"p{p}"),
        MoreCase("LpNormalization", [rand(3, 4)], {"p": p, "axis": 0}, opset=22, tag=f"p{p}"),
        MoreCase("LpNormalization", [lp_zero], {"p": p}, opset=22, tag=f"zero-p{p}"),
    )
add(MoreCase("LpNormalization", [rand(2, 5, dtype=F16)], opset=22, **tol(F16)))
add(MoreCase("LpNormalization", [rand(2, 5, dtype=F64)], {"axis": -2}, opset=22))
x = rand(2, 3, 4, 2)
add(
    MoreCase("MeanVarianceNormalization", [x], opset=13),
    MoreCase("MeanVarianceNormalization", [x], opset=9),
    MoreCase("MeanVarianceNormalization", [rand(3, 5)], {"axes": [1]}, opset=13, tag="axes"),
    MoreCase("MeanVarianceNormalization", [x], {"axes": [0, -1]}, opset=13, tag="neg"),
    MoreCase("MeanVarianceNormalization", [x.astype(F64)], opset=13, oracle="cpu"),
)


def _in_float32(case: MoreCase) -> list:
    """The reference's output on the float16 inputs widened to float32, rounded to float16."""
    inputs = [x.astype(F32) if x.dtype == F16 else x for x in case.inputs]
    model, feeds = make_node_model(case.op, inputs, case.attrs, opset=case.opset)
    return [y.astype(F16) for y in run_reference(model, feeds)]


add(MoreCase("MeanVarianceNormalization", [x.astype(F16)], opset=13, rtol=5e-3, atol=5e-3,
             oracle=_in_float32))  # fmt: skip
x = rand(2, 5, 3, 2, lo=-3, hi=3)
add(
    MoreCase("LRN", [x], {"size": 3}, opset=13),
    MoreCase("LRN", [x], {"size": 5, "alpha": 0.02, "beta": 0.6, "bias": 2.0}, opset=1),
    MoreCase("LRN", [rand(1, 4, 3, 2)], {"size": 1}, opset=13, tag="size1"),
    MoreCase("LRN", [x], {"size": 2, "alpha": 0.1}, opset=13, oracle="cpu", tag="even"),
    MoreCase("LRN", [x], {"size": 4, "alpha": 0.1}, opset=13, oracle="cpu", tag="even4"),
    MoreCase("LRN", [rand(2, 4, 5)], {"size": 3}, opset=13, oracle="cpu", tag="3d"),
    MoreCase("LRN", [x.astype(F16)], {"size": 3}, opset=13, **tol(F16)),
    MoreCase("LRN", [x.astype(F64)], {"size": 3}, opset=13, oracle="cpu"),
)

# -- indexing ------------------------------------------------------------------------------------
nz = rand(3, 4)
nz[nz < 0] = 0
add(
    MoreCase("NonZero", [nz], opset=13),
    MoreCase("NonZero", [np.zeros((2, 3), F32)], opset=13, tag="all-zero"),
    MoreCase("NonZero", [np.zeros((0, 3), F32)], opset=13, tag="empty"),
    MoreCase("NonZero", [rng.integers(-1, 2, (2, 3, 2)).astype(I32)], opset=9),
    MoreCase("NonZero", [rng.integers(0, 2, (5,)).astype(bool)], opset=13),
    MoreCase("NonZero", [np.array([3, 0, 0, 7], U8)], opset=9),
    MoreCase("NonZero", [np.array([1.0, 0.0, -2.0, 0.0], F16)], opset=13),
    MoreCase("NonZero", [np.array([5, 0, -1], I8)], opset=13, oracle="ref"),
    MoreCase("NonZero", [np.array(2.5, F32)], opset=13, tag="scalar"),
    MoreCase("NonZero", [np.array(0, I64)], opset=13, tag="scalar0"),
)
x = np.arange(24, dtype=F32).reshape(4, 6)
add(
    MoreCase("Compress", [x, np.array([True, False, True, True])], {"axis": 0}, opset=11),
    MoreCase("Compress", [x, np.array([False, True, True])], {"axis": 1}, opset=11, tag="short"),
    MoreCase("Compress", [x, np.array([1, 0, 0, 1, 1, 0, 1], bool)], opset=11, tag="flat"),
    MoreCase("Compress", [x, np.array([0, 1, 0, 0, 1, 1], bool)], {"axis": -1}, opset=11,
             tag="neg"),
    MoreCase("Compress", [rand(2, 3, 2), np.zeros(3, bool)], {"axis": 1}, opset=9, tag="none"),
    MoreCase("Compress", [rng.integers(0, 9, (3, 2)).astype(I64), np.array([0, 1, 1], bool)],
             {"axis": 0}, opset=9),
    MoreCase("Compress", [x.astype(F16), np.array([1, 0, 1], bool)], opset=11, tag="flat"),
)  # fmt: skip
x = np.arange(4 * 3 * 2, dtype=F32).reshape(4, 3, 2)
add(
    MoreCase("ReverseSequence", [x, np.array([4, 1, 0], I64)], opset=10),
    MoreCase("ReverseSequence", [x, np.array([2, 3, 1, 0], I64)],
             {"batch_axis": 0, "time_axis": 1}, opset=10, tag="batch-major"),
    MoreCase("ReverseSequence", [x[:, :, 0].astype(I32), np.array([2, 4, 3], I64)], opset=10),
    MoreCase("ReverseSequence", [rand(3, 2, 2, 2, dtype=F16), np.array([3, 2], I64)], opset=10),
    MoreCase("ReverseSequence", [x > 10, np.array([3, 2, 4], I64)], opset=10),
)  # fmt: skip


# -- Dropout (inference) ---------------------------------------------------------------------------
def _kept(mask_type):
    def oracle(case: MoreCase) -> list:
        x = case.inputs[0]
        return [x, np.ones(x.shape, mask_type or x.dtype)][: case.n_outputs]

    return oracle


x = rand(2, 3)
for opset in (7, 10):  # onnxruntime's mask is all zeros here; the spec's reference's all ones
    add(MoreCase("Dropout", [x], opset=opset), MoreCase("Dropout", [x], {"ratio": 0.3}, opset=opset,
        n_outputs=2, oracle=_kept(None if opset < 10 else bool)))  # fmt: skip
for opset in (1, 6):  # onnxruntime has no kernel before opset 7
    add(MoreCase("Dropout", [x], {"is_test": 1}, opset=opset, n_outputs=2, oracle=_kept(None)))
add(
    MoreCase("Dropout", [x], opset=13, n_outputs=2),
    MoreCase("Dropout", [x, np.array(0.2, F32)], {"seed": 3}, opset=12, n_outputs=2),
    MoreCase("Dropout", [x.astype(F64)], opset=22, n_outputs=2),
    MoreCase("Dropout", [x.astype(F16), np.array(0.4, F16)], opset=22),
    MoreCase("Dropout", [x.astype(F16)], opset=13, n_outputs=2),
)

# -- QuantizeLinear / DequantizeLinear --------------------------------------------------------------
ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 300, -300, 0.1, 7.3, -0.7], F32)
half = np.array(0.5, F32)
for opset in (10, 13, 19, 21, 23, 24, 25):
    add(
        MoreCase("QuantizeLinear", [ties * half, half, np.array(3, I8)], opset=opset, tag="ties"),
        MoreCase("QuantizeLinear", [ties, np.array(1.0, F32)], opset=opset, tag="uint8"),
        MoreCase("DequantizeLinear", [np.array([-128, -1, 0, 5, 127], I8), np.array(0.25, F32),
                                      np.array(-3, I8)], opset=opset),
    )  # fmt: skip
# per axis: exact ties k + 0.5 on each channel's power-of-two scale
scales = np.array([0.5, 0.25, 2.0], F32)
k = rng.integers(-6, 6, (2, 3, 4)).astype(F32) + 0.5
x_axis = k * scales.reshape(3, 1)
zp_axis = np.array([10, 128, 0], U8)
for opset in (13, 21):
    add(
        MoreCase("QuantizeLinear", [x_axis, scales, zp_axis], {"axis": 1}, opset=opset, tag="axis"),
        MoreCase("QuantizeLinear", [x_axis, scales, zp_axis.astype(I8)], {"axis": -2},
                 opset=opset, tag="neg"),
        MoreCase("DequantizeLinear", [rng.integers(0, 255, (2, 3, 4)).astype(U8), scales, zp_axis],
                 {"axis": 1}, opset=opset),
    )  # fmt: skip
add(MoreCase("QuantizeLinear", [rand(3, 2) * 4, np.array([0.5, 0.25], F32)], {"axis": 1},
             opset=13, tag="no-zp"))  # fmt: skip
# blocked: block_size along `axis`, the last block short
blk = np.array([[0.5, 0.25], [1.0, 2.0]], F32)  # x (2, 6), axis 1, block_size 4
x_blk = (rng.integers(-9, 9, (2, 6)) + 0.5).astype(F32) * np.repeat(blk, 4, axis=1)[:, :6]
zp_blk = np.array([[1, -2], [0, 5]], I8)
blk0 = np.array([[0.5, 1.0, 0.25], [2.0, 0.5, 1.0], [0.25, 0.25, 4.0]], F32)  # x (5, 3), axis 0, 2
x_blk0 = (rng.integers(-9, 9, (5, 3)) + 0.5).astype(F32) * np.repeat(blk0, 2, axis=0)[:5]
for opset in (21, 25):
    add(
        MoreCase("QuantizeLinear", [x_blk, blk, zp_blk], {"axis": 1, "block_size": 4},
                 opset=opset, tag="blocked"),
        MoreCase("QuantizeLinear", [x_blk0, blk0, np.full((3, 3), 7, U8)],
                 {"axis": 0, "block_size": 2}, opset=opset, tag="blocked0"),
        MoreCase("DequantizeLinear", [rng.integers(-128, 127, (2, 6)).astype(I8), blk, zp_blk],
                 {"axis": 1, "block_size": 4}, opset=opset, tag="blocked"),
        MoreCase("DequantizeLinear", [rng.integers(0, 255, (5, 3)).astype(U8), blk0],
                 {"axis": 0, "block_size": 2}, opset=opset, tag="blocked0"),
    )  # fmt: skip
big = rand(20, lo=-40000, hi=70000)
add(
    MoreCase("QuantizeLinear", [big, np.array(1.5, F32), np.array(-3, np.int16)], opset=21),
    MoreCase("QuantizeLinear", [big, np.array(1.5, F32), np.array(9, np.uint16)], opset=21),
    MoreCase("QuantizeLinear", [ties * 100, np.array(1.0, F32)],
             {"output_dtype": TensorProto.INT16}, opset=21, tag="output_dtype"),
    MoreCase("QuantizeLinear", [np.array([-5, 3, 1000, 7, -9], I32), np.array(2.0, F32),
                                np.array(1, I8)], opset=23, oracle="ref", tag="int32"),
    MoreCase("DequantizeLinear", [np.array([-5, 3, 1000], np.int16), np.array(2.0, F32),
                                  np.array(-7, np.int16)], opset=21),
    MoreCase("DequantizeLinear", [np.array([5, 3, 65535], np.uint16), np.array(0.5, F32),
                                  np.array(7, np.uint16)], opset=21),
    MoreCase("DequantizeLinear", [np.array([-5, 3, 1000, 2**30 + 1], I32), np.array(2.0, F32),
                                  np.array(3, I32)], opset=21),
    MoreCase("DequantizeLinear", [np.array([-5, 3, 1000], I32), np.array(0.5, F32)], opset=10),
    MoreCase("DequantizeLinear", [np.array([5, 3, 100], U8), np.array(2.0, F32),
                                  np.array(7, U8)], {"output_dtype": TensorProto.FLOAT16},
             opset=23, strict=False, tag="output_dtype"),
)  # fmt: skip
# float16: divided in float32 to opset 21, in the scale's type (or `precision`) from opset 23
x16 = (rand(64, lo=-30, hi=30) * 0.1).astype(F16)
s16 = np.array(0.1, F16)
for opset in (19, 21, 23, 25):
    add(MoreCase("QuantizeLinear", [x16, s16, np.array(3, I8)], opset=opset))
    add(MoreCase("DequantizeLinear", [rng.integers(-128, 127, 16).astype(I8), s16,
                                      np.array(5, I8)], opset=opset))  # fmt: skip
add(
    MoreCase("QuantizeLinear", [x16, np.array(0.1, F32), np.array(3, I8)], opset=23, tag="mixed"),
    MoreCase("QuantizeLinear", [x16.astype(F32), s16, np.array(3, I8)], opset=23, tag="mixed"),
    MoreCase("QuantizeLinear", [x16.astype(F32), np.array(0.1, F32), np.array(3, I8)],
             {"precision": TensorProto.FLOAT16}, opset=23, strict=False, tag="precision"),
    MoreCase("QuantizeLinear", [x16, s16, np.array(3, I8)], {"precision": TensorProto.FLOAT},
             opset=25, tag="precision"),
)  # fmt: skip

# -- RNN, GRU, LSTM --------------------------------------------------------------------------------
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
S, B, IN, H = 4, 3, 2, 3


def recurrent(op, direction="forward", *, dt=F32, layout=0, bias=True, lens=None, h0=False,
              c0=False, peep=False, attrs=None, opset=22, tag="", **kw) -> MoreCase:  # fmt: skip
    nd, g = 2 if direction == "bidirectional" else 1, GATES[op] * H
    x = rand(S, B, IN, dtype=dt) if layout == 0 else rand(B, S, IN, dtype=dt)
    state = (nd, B, H) if layout == 0 else (B, nd, H)
    inputs = [x, rand(nd, g, IN, dtype=dt), rand(nd, g, H, dtype=dt),
              rand(nd, 2 * g, dtype=dt) if bias else None,
              None if lens is None else np.array(lens, I32),
              rand(*state, dtype=dt) if h0 else None,
              rand(*state, dtype=dt) if c0 and op == "LSTM" else None,
              rand(nd, 3 * H, dtype=dt) if peep else None]  # fmt: skip
    while inputs[-1] is None:
        inputs.pop()
    attrs = {"hidden_size": H, "direction": direction, **(attrs or {})}
    if layout:
        attrs["layout"] = layout
    n = 3 if op == "LSTM" else 2
    tag = "-".join(t for t in (direction, tag) if t)
    return MoreCase(op, inputs, attrs, opset=opset, n_outputs=n, tag=tag, **{**tol(dt), **kw})


def _layout0(case: MoreCase) -> list:
    """onnxruntime has no layout 1: its layout-0 outputs on the transposed inputs."""
    inputs = [
        x.transpose(1, 0, 2) if i in (0, 5, 6) and x is not None else x
        for i, x in enumerate(case.inputs)
    ]
    attrs = {k: v for k, v in case.attrs.items() if k != "layout"}
    outs = run_onnxruntime(dataclasses.replace(case, inputs=inputs, attrs=attrs))
    return [outs[0].transpose(2, 0, 1, 3)] + [o.transpose(1, 0, 2) for o in outs[1:]]


for op in GATES:
    for direction in ("forward", "reverse", "bidirectional"):
        add(recurrent(op, direction, h0=True, c0=True))
        add(recurrent(op, direction, lens=[4, 2, 0], h0=True, c0=True, tag="lens"))
        add(recurrent(op, direction, layout=1, lens=[3, 4, 1], h0=True, c0=True, tag="layout1",
                      oracle=_layout0))  # fmt: skip
    add(recurrent(op, bias=False, opset=7), recurrent(op, "reverse", opset=14, lens=[1, 3, 2]))
    add(recurrent(op, "bidirectional", dt=F16, h0=True, lens=[2, 4, 3]))
    add(recurrent(op, "bidirectional", dt=F64, h0=True, opset=14, oracle="ref"))
    add(recurrent(op, "bidirectional", attrs={"clip": 0.4}, tag="clip"))
add(
    recurrent("LSTM", "bidirectional", peep=True, c0=True, h0=True, lens=[4, 1, 3], tag="peep"),
    recurrent("LSTM", peep=True, attrs={"clip": 0.3}, opset=14, tag="peep-clip"),
    recurrent("LSTM", "reverse", attrs={"input_forget": 1}, tag="input-forget"),
    recurrent("LSTM", attrs={"activations": ["HardSigmoid", "ScaledTanh", "LeakyRelu"],
              "activation_alpha": [0.3, 0.8, 0.2], "activation_beta": [0.4, 1.2]}, tag="acts"),
    recurrent("LSTM", "bidirectional", attrs={"activations": ["Sigmoid", "Elu", "Softsign",
              "HardSigmoid", "Tanh", "Softplus"], "activation_alpha": [0.5]}, tag="acts-two"),
)  # fmt: skip
for lbr in (0, 1):
    for direction in ("forward", "bidirectional"):
        add(recurrent("GRU", direction, h0=True, lens=[3, 4, 2], attrs={"linear_before_reset": lbr},
                      tag=f"lbr{lbr}"))  # fmt: skip
    lbr_attrs = {"linear_before_reset": lbr}
    add(recurrent("GRU", "reverse", bias=False, attrs=lbr_attrs, tag=f"lbr{lbr}"))
add(recurrent("GRU", attrs={"activations": ["HardSigmoid", "Softplus"]}, tag="acts"))
for acts, alpha, beta in ((["Relu"], [], []), (["LeakyRelu"], [0.3], []), (["LeakyRelu"], [], []),
                          (["Affine"], [0.5], [0.2]), (["ThresholdedRelu"], [0.1], []),
                          (["ScaledTanh"], [0.7], [1.3]), (["Sigmoid", "Tanh"], [], [])):  # fmt: skip
    attrs = {"activations": acts, "activation_alpha": alpha, "activation_beta": beta}
    direction = "bidirectional" if len(acts) == 2 else "forward"
    tag = "-".join([acts[0], *map(str, alpha)])
    add(recurrent("RNN", direction, attrs={k: v for k, v in attrs.items() if v}, tag=tag))

OPS = {
    "GroupNormalization", "LpNormalization", "MeanVarianceNormalization", "LRN", "NonZero",
    "Compress", "ReverseSequence", "Dropout", "QuantizeLinear", "DequantizeLinear", "RNN", "GRU",
    "LSTM",
}  # fmt: skip
STRICT_CASES = [
    c
    for c in CASES
    if c.strict and all(x is None or np.asarray(x).dtype in STRICT_TYPES for x in c.inputs)
]


def expected(case: MoreCase) -> list:
    if callable(case.oracle):
        return case.oracle(case)
    if case.oracle == "ort":
        return run_onnxruntime(case)
    model, feeds = make_node_model(
        case.op, case.inputs, case.attrs, opset=case.opset, n_outputs=case.n_outputs
    )
    return run_reference(model, feeds) if case.oracle == "ref" else run_cpu(model, feeds)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_onnxruntime(case: MoreCase, register_provider) -> None:
    want = expected(case)
    got = run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
    assert len(got) == len(want)
    for i, (e, g) in enumerate(zip(want, got)):
        assert_same(e, g, case.rtol, case.atol, f"{case.id} output {i}")


@pytest.mark.parametrize("case", STRICT_CASES, ids=[c.id for c in STRICT_CASES])
def test_strict_matches_numpy(case: MoreCase, register_provider) -> None:
    on_numpy = run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
    on_strict = run_shared(
        case, "ArrayStrictExecutionProvider", register_provider, ArrayStrictProvider
    )
    assert len(on_numpy) == len(on_strict)
    for i, (e, g) in enumerate(zip(on_numpy, on_strict)):
        assert_same(e, g, 1e-6, 1e-7, f"{case.id} output {i}")


def test_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


# -- what is registered ------------------------------------------------------------------------------
EXPECTED_VERSIONS = {
    "GroupNormalization": (18, 21),
    "LpNormalization": (1, 22),
    "MeanVarianceNormalization": (9, 13),
    "LRN": (1, 13),
    "NonZero": (9, 13),
    "Compress": (9, 11),
    "ReverseSequence": (10,),
    "Dropout": (1, 6, 7, 10, 12, 13, 22),
    "QuantizeLinear": (10, 13, 19, 21, 23, 24, 25),
    "DequantizeLinear": (10, 13, 19, 21, 23, 24, 25),
    "RNN": (7, 14, 22),
    "GRU": (7, 14, 22),
    "LSTM": (7, 14, 22),
}


def _shared_versions() -> dict[str, tuple[int, ...]]:
    from ort_array import _table

    ort_array.ops()  # loads the families
    versions: dict[str, list[int]] = {}
    for spec in _table.SPECS:
        if spec.op_type in OPS and not spec.domain:
            versions.setdefault(spec.op_type, []).extend(spec.since)
    return {op: tuple(sorted(v)) for op, v in versions.items()}


def test_registered_versions() -> None:
    """Each op at the since-versions where onnx changed its signature or semantics (later
    versions that only add element types resolve to the highest one below them)."""
    assert _shared_versions() == EXPECTED_VERSIONS
    onnx_versions: dict[str, set[int]] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.name in OPS and not schema.domain:
            onnx_versions.setdefault(schema.name, set()).add(schema.since_version)
    for op, versions in EXPECTED_VERSIONS.items():
        assert set(versions) <= onnx_versions[op], op


def test_every_version_has_a_case() -> None:
    """Every registered since-version of every op runs in some case here."""
    missing = []
    for op, versions in EXPECTED_VERSIONS.items():
        bounds = list(versions) + [10**6]
        for lo, hi in zip(bounds, bounds[1:]):
            if not any(c.op == op and lo <= c.opset < hi for c in CASES):
                missing.append((op, lo))
    assert not missing


def test_every_op_has_float16_and_strict_cases() -> None:
    assert {c.op for c in CASES} == OPS
    assert {c.op for c in STRICT_CASES} == OPS
    f16 = {c.op for c in CASES if any(np.asarray(x).dtype == F16 for x in c.inputs)}
    assert f16 == OPS


def test_cpu_provider_keeps_its_own_kernels() -> None:
    """The CPU provider registers every one of these ops at its lowest since-version, so
    ort_array.register adds none of the shared kernels there: every opset resolves to the CPU's."""
    from ort_cpu.kernels import registry

    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.name in OPS and not schema.domain:
            kdef = registry.lookup("", schema.name, schema.since_version)
            assert kdef is not None, (schema.name, schema.since_version)
            assert kdef.source.startswith("ort_cpu."), (schema.name, kdef.since, kdef.source)


# -- Dropout's training mode, declined types, invalid inputs ------------------------------------------
def _session(model: onnx.ModelProto, register_provider):
    register_provider(ArrayNumpyProvider)
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return ort_core.InferenceSession(
        model.SerializeToString(), so, providers=["ArrayNumpyExecutionProvider"]
    )


def _with_constants(case: Case, constant: tuple[int, ...]) -> tuple[onnx.ModelProto, dict]:
    """``case``'s node with the inputs ``constant`` made initializers."""
    model, feeds = make_node_model(
        case.op, case.inputs, case.attrs, opset=case.opset, n_outputs=case.n_outputs
    )
    for i in constant:
        name = f"x{i}"
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(name), name))
        kept = [v for v in model.graph.input if v.name != name]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    return model, feeds


@pytest.mark.parametrize(
    ("training", "ratio"), [(False, 0.5), (True, 0.0)], ids=["inference", "zero-ratio"]
)
def test_dropout_with_constant_training_mode_runs(training, ratio, register_provider) -> None:
    case = Case("Dropout", [rand(2, 3), np.array(ratio, F32), np.array(training)], opset=13,
                n_outputs=2)  # fmt: skip
    model, feeds = _with_constants(case, (1, 2))
    got = _session(model, register_provider).run(None, feeds)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    for i, (e, g) in enumerate(zip(want, got)):
        assert_same(e, g, 0, 0, f"output {i}")


@pytest.mark.parametrize(
    ("case", "constant", "reason"),
    [
        (Case("Dropout", [rand(2, 3), np.array(0.5, F32), np.array(True)], opset=13), (1, 2),
         "training_mode is true"),
        (Case("Dropout", [rand(2, 3), None, np.array(False)], opset=22), (),
         "training_mode is not a constant"),
        (Case("Dropout", [rand(2, 3)], opset=6), (), "is_test is 0"),
        (Case("QuantizeLinear", [rand(4), np.array(0.5, F32)],
              {"output_dtype": TensorProto.FLOAT8E4M3FN}, opset=21), (),
         "float8_e4m3fn \\(float8 needs its own rounding"),
        (Case("QuantizeLinear", [rand(4), np.array(0.5, F32)],
              {"output_dtype": TensorProto.UINT4}, opset=21), (), "uint4 \\(sub-byte"),
        (Case("DequantizeLinear", [np.ones(4, ml_dtypes.float8_e5m2), np.array(0.5, F32)],
              opset=21), (), "x has element type float8_e5m2"),
        (Case("DequantizeLinear", [np.ones(4, ml_dtypes.int4), np.array(0.5, F32)],
              opset=21), (), "x has element type int4"),
    ],
    ids=["dropout-training", "dropout-input", "dropout-is_test", "q-float8", "q-uint4",
         "dq-float8", "dq-int4"],
)  # fmt: skip
def test_declined(case, constant, reason, register_provider) -> None:
    model, _ = _with_constants(case, constant)
    with pytest.raises(Exception, match=reason):
        _session(model, register_provider)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (recurrent("LSTM", lens=[4, 5, 1]), "invalid value/s in sequence_lens"),
        (Case("ReverseSequence", [rand(3, 2), np.array([4, 1], I64)], opset=10),
         "sequence length 4 is outside \\[0, 3\\]"),
        (Case("Compress", [rand(3), np.ones(4, bool)], {"axis": 0}, opset=11),
         "condition has 4 elements but axis 0 has 3"),
        (Case("QuantizeLinear", [rand(2, 3), np.ones(2, F32)], {"axis": 1}, opset=13),
         "per-axis scale/zero point shape \\(2,\\) does not match axis 1"),
        (Case("DequantizeLinear", [np.ones((2, 6), I8), np.ones((2, 3), F32)],
              {"axis": 1, "block_size": 4}, opset=21), "does not match \\(2, 2\\)"),
    ],
    ids=["rnn-lens", "reverse-lens", "compress-long", "q-axis", "dq-blocks"],
)  # fmt: skip
def test_invalid_inputs_are_errors(case, message, register_provider) -> None:
    with pytest.raises(ort_core.errors.OrtError, match=message):
        run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
