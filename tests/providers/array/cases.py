"""Single-node cases for the shared kernels: op, inputs (None: an omitted optional input),
attributes, opset, output count and tolerance. Every op of ``ort_array.ops()`` has some."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

rng = np.random.default_rng(14)
F16, F32, F64 = np.float16, np.float32, np.float64
I32, I64 = np.int32, np.int64


@dataclass
class Case:
    op: str
    inputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 21
    n_outputs: int = 1
    rtol: float = 1e-5
    atol: float = 1e-6
    tag: str = ""
    domain: str = ""

    @property
    def id(self) -> str:
        types = "-".join(str(np.asarray(x).dtype) for x in self.inputs if x is not None)
        return f"{self.op}{self.opset}-{types}{'-' + self.tag if self.tag else ''}"


def r(*shape, dtype=F32, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


def ri(*shape, dtype=I32, lo=-9, hi=10):
    return rng.integers(lo, hi, shape).astype(dtype)


def i64(*v):
    return np.array(v, dtype=I64)


CASES: list[Case] = []


def add(*cases: Case) -> None:
    CASES.extend(cases)


def tol(dt):
    return {"rtol": 2e-3, "atol": 2e-3} if dt == F16 else {}


# -- elementwise ---------------------------------------------------------------------------------------
for op in ("Abs", "Neg", "Exp", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Atan",
           "Sinh", "Cosh", "Asinh", "Tanh", "Sigmoid", "Softsign", "Softplus", "Relu",
           "HardSwish", "Mish", "Erf"):  # fmt: skip
    for dt in (F32, F64, F16):
        add(Case(op, [r(3, 4, dtype=dt)], **tol(dt)))
for op in ("Log", "Sqrt", "Reciprocal", "Acosh"):
    add(Case(op, [r(3, 4, lo=1.0, hi=5.0)]), Case(op, [r(5, dtype=F64, lo=1.0, hi=5.0)]))
for op in ("Asin", "Acos", "Atanh"):
    add(Case(op, [r(3, 4, lo=-0.9, hi=0.9)]))
add(Case("Round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4], F32)], tag="ties"))
for op in ("Abs", "Neg", "Sign", "Relu"):
    add(Case(op, [ri(3, 4)]), Case(op, [ri(6, dtype=I64)]))
add(Case("Abs", [ri(4, dtype=np.uint8, lo=0)]))
add(Case("Erf", [np.array([-4.0, -1.0, -0.3, 0.0, 1e-4, 0.4, 0.6, 2.0, 6.0], F32)], tag="range"))
add(Case("Not", [r(3, 4) > 0]))
add(Case("BitwiseNot", [ri(3, 4)]), Case("BitwiseNot", [ri(5, dtype=np.uint8, lo=0, hi=255)]))
add(Case("IsNaN", [np.array([1.0, np.nan, np.inf, -np.inf], F32)]))
for dn, dp in ((1, 1), (1, 0), (0, 1), (0, 0)):
    add(Case("IsInf", [np.array([1.0, np.nan, np.inf, -np.inf], F32)],
             {"detect_negative": dn, "detect_positive": dp}, tag=f"{dn}{dp}"))  # fmt: skip
for op, attrs in (("LeakyRelu", {"alpha": 0.1}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
                  ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                  ("ThresholdedRelu", {"alpha": 0.5}), ("Shrink", {"bias": 0.2, "lambd": 0.6}),
                  ("Gelu", {}), ("Gelu", {"approximate": "tanh"})):  # fmt: skip
    for dt in (F32, F64):
        add(Case(op, [r(2, 5, dtype=dt)], attrs, tag=attrs.get("approximate", "")))
add(Case("Shrink", [ri(8)], {"bias": 1.0, "lambd": 2.0}))
add(Case("Celu", [r(2, 5)], {"alpha": 1.5}))
add(Case("Swish", [r(2, 5)], {"alpha": 1.3}, opset=24))
add(Case("PRelu", [r(2, 3, 4), r(4)]), Case("PRelu", [r(2, 3, 4), r(3, 1)]))
add(Case("PRelu", [r(2, 3, 4, dtype=F64), r(1, dtype=F64)]))
for op in ("Add", "Sub", "Mul", "Div"):
    add(Case(op, [r(2, 3, 4), r(3, 1)]), Case(op, [r(3, dtype=F64), r(2, 3, dtype=F64)]))
    add(Case(op, [r(2, 3, dtype=F16), r(2, 3, dtype=F16)], rtol=2e-3, atol=2e-3))
add(Case("Add", [ri(2, 3), ri(3)]), Case("Mul", [ri(2, 3, dtype=I64), ri(2, 3, dtype=I64)]))
div_b = ri(4, 5)
div_b[div_b == 0] = 3
add(
    Case("Div", [ri(4, 5, lo=-50, hi=50), div_b]),
    Case("Sub", [ri(4, dtype=np.uint8, lo=9), ri(4, dtype=np.uint8, lo=0, hi=9)]),
)
for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    add(
        Case(op, [ri(3, 4), ri(4)]),
        Case(op, [ri(5, dtype=np.uint8, lo=0, hi=255), ri(5, dtype=np.uint8, lo=0, hi=255)]),
    )
for op in ("And", "Or", "Xor"):
    add(Case(op, [r(3, 4) > 0, r(4) > 0]))
for op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
    a = ri(3, 4, lo=-2, hi=3)
    add(
        Case(op, [a, ri(4, lo=-2, hi=3)]),
        Case(op, [a.astype(F32), ri(3, 1, lo=-2, hi=3).astype(F32)]),
    )
add(Case("Equal", [r(4) > 0, r(4) > 0]))
add(
    Case("Pow", [r(3, 4, lo=0.5, hi=2.0), r(3, 4)]),
    Case("Pow", [r(3, 4, lo=0.5), ri(4, lo=0, hi=4)]),
)
add(
    Case("Pow", [ri(5, lo=-4, hi=5), ri(5, lo=0, hi=4)]),
    Case("Pow", [ri(5, dtype=I64, lo=1, hi=5), r(5, lo=0, hi=2)]),
)
mod_b = ri(6, lo=1, hi=7) * np.array([1, -1, 1, -1, 1, -1], I32)
for fmod in (0, 1):
    add(Case("Mod", [ri(6, lo=-20, hi=20), mod_b], {"fmod": fmod}, tag=f"fmod{fmod}"))
add(Case("Mod", [r(6, lo=-9, hi=9), r(6, lo=0.5, hi=3) * np.array([1, -1] * 3, F32)], {"fmod": 1}))
for d in ("LEFT", "RIGHT"):
    add(
        Case(
            "BitShift",
            [ri(6, dtype=np.uint8, lo=0, hi=255), np.array([0, 1, 2, 3, 7, 4], np.uint8)],
            {"direction": d},
            tag=d,
        )
    )
    add(
        Case(
            "BitShift",
            [ri(4, dtype=np.uint32, lo=0, hi=1000), np.array([0, 5, 17, 31], np.uint32)],
            {"direction": d},
            tag=d,
        )
    )
for op in ("Sum", "Max", "Min"):
    add(Case(op, [r(3, 4), r(4), r(1, 4)]), Case(op, [r(2, 2)]))
    if op != "Sum":  # ONNX's Sum takes floats only
        add(Case(op, [ri(3, 1), ri(3, 4)]))
add(Case("Mean", [r(3, 4), r(4), r(3, 1)]), Case("Mean", [r(2, 3, dtype=F64)]))
add(
    Case("Clip", [r(3, 4), np.array(-1.0, F32), np.array(0.5, F32)]),
    Case("Clip", [r(3, 4), None, np.array(0.5, F32)]),
)
add(Case("Clip", [ri(3, 4), np.array(-2, I32), np.array(3, I32)]), Case("Clip", [r(6)]))
add(Case("Clip", [r(3, 4)], {"min": -0.5, "max": 1.0}, opset=6))
add(Case("Where", [r(3, 4) > 0, r(3, 4), r(4)]), Case("Where", [r(3, 1) > 0, ri(3, 4), ri(1)]))
for src, dst in (
    (F32, 6),
    (F32, 11),
    (F64, 1),
    (I32, 1),
    (I64, 10),
    (F32, 9),
    (np.bool_, 1),
    (F16, 1),
    (F32, 10),
):
    x = r(3, 4, lo=-100, hi=100).astype(src)
    add(Case("Cast", [x], {"to": dst}, tag=str(dst)))
add(
    Case("CastLike", [r(3, 4, lo=-50, hi=50), ri(1, dtype=I64)]),
    Case("CastLike", [ri(4), r(1, dtype=F64)]),
)

# -- reductions ----------------------------------------------------------------------------------------
RED = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
       "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")  # fmt: skip
for op in RED:
    x = r(2, 3, 4, lo=0.2, hi=2.0)
    add(Case(op, [x, i64(1)], opset=18), Case(op, [x, i64(0, -1)], {"keepdims": 0}, opset=18))
    add(
        Case(op, [x], opset=18, tag="all"),
        Case(op, [x, i64()], {"noop_with_empty_axes": 1}, opset=18, tag="noop"),
    )
    add(Case(op, [x], {"axes": [2]}, opset=13 if op != "ReduceSum" else 11, tag="attr"))
    add(Case(op, [x.astype(F64), i64(1)], {"keepdims": 0}, opset=18))
    add(Case(op, [x.astype(F16), i64(2)], opset=18, rtol=3e-3, atol=3e-3))
    add(Case(op, [np.zeros((2, 0, 3), F32), i64(1)], opset=18, tag="empty"))
for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"):
    add(Case(op, [ri(2, 3, 4, lo=-3, hi=4), i64(1)], opset=18))
add(
    Case("ReduceMax", [r(2, 3) > 0, i64(1)], opset=20),
    Case("ReduceMin", [r(2, 3) > 0, i64(0)], opset=20),
)
for op in ("ArgMax", "ArgMin"):
    x = ri(3, 4, lo=0, hi=3).astype(F32)
    add(
        Case(op, [x]),
        Case(op, [x], {"axis": -1, "keepdims": 0}),
        Case(op, [x], {"axis": 1, "select_last_index": 1}),
    )
    add(Case(op, [ri(2, 5, dtype=I64)], {"axis": 1}))
for attrs in ({}, {"exclusive": 1}, {"reverse": 1}, {"exclusive": 1, "reverse": 1}):
    add(
        Case("CumSum", [r(3, 4), i64(1)], attrs, tag="".join(attrs)),
        Case("CumSum", [ri(3, 4), np.array(-2, I32)], attrs, tag="".join(attrs)),
    )
add(Case("CumProd", [r(3, 4, lo=0.5, hi=1.5), i64(1)], {"exclusive": 1}, opset=26))

# -- normalization -------------------------------------------------------------------------------------
for op in ("Softmax", "LogSoftmax", "Hardmax"):
    x = r(2, 3, 4)
    add(Case(op, [x]), Case(op, [x], {"axis": 1}), Case(op, [x.astype(F64)], {"axis": 0}))
    add(Case(op, [x], {"axis": 1}, opset=11, tag="legacy"), Case(op, [x], opset=11, tag="legacy"))
    add(Case(op, [x.astype(F16)], rtol=3e-3, atol=3e-3))
add(Case("Hardmax", [np.array([[1, 3, 3], [2, 2, 0]], F32)], tag="ties"))
x = r(2, 3, 8)
add(Case("LayerNormalization", [x, r(8), r(8)], {"epsilon": 1e-3}, opset=17, n_outputs=3))
add(Case("LayerNormalization", [x, r(3, 8)], {"axis": 1}, opset=17, n_outputs=3))
add(
    Case(
        "LayerNormalization",
        [x.astype(F64), r(8, dtype=F64), r(8, dtype=F64)],
        {"stash_type": 11},
        opset=17,
        n_outputs=1,
    )
)
add(
    Case("RMSNormalization", [x, r(8)], opset=23),
    Case("RMSNormalization", [x, r(3, 8)], {"axis": -2}, opset=23),
)
add(
    Case("InstanceNormalization", [r(2, 3, 4, 5), r(3), r(3)]),
    Case(
        "InstanceNormalization",
        [r(2, 3, 6, dtype=F64), r(3, dtype=F64), r(3, dtype=F64)],
        {"epsilon": 1e-3},
    ),
)
bn = [r(2, 3, 4, 5), r(3), r(3), r(3), r(3, lo=0.5, hi=2.0)]
add(
    Case("BatchNormalization", bn, opset=15),
    Case("BatchNormalization", bn, {"epsilon": 1e-2}, opset=9),
)
add(Case("BatchNormalization", [a.astype(F64) for a in bn], opset=14))

# -- linalg ----------------------------------------------------------------------------------------------
for a, b in (
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 2)),
    ((4,), (4, 3)),
    ((2, 1, 3, 4), (2, 4, 2)),
    ((4,), (4,)),
):
    add(Case("MatMul", [r(*a), r(*b)]))
add(Case("MatMul", [r(3, 4, dtype=F64), r(4, 2, dtype=F64)]), Case("MatMul", [ri(3, 4), ri(4, 2)]))
add(Case("MatMul", [r(3, 4, dtype=F16), r(4, 2, dtype=F16)], rtol=3e-3, atol=3e-3))
add(
    Case("Gemm", [r(3, 4), r(4, 5), r(5)]),
    Case(
        "Gemm", [r(4, 3), r(5, 4), r(3, 5)], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}
    ),
)
add(
    Case("Gemm", [r(3, 4), r(4, 5)], {"alpha": 2.0}),
    Case("Gemm", [r(3, 4, dtype=F64), r(4, 5, dtype=F64), r(1, dtype=F64)]),
)
for eq, shapes in (("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
                   ("ii->i", [(4, 4)]), ("ii", [(3, 3)]), ("ij->ji", [(2, 3)]),
                   ("...ij,...jk->...ik", [(2, 3, 4), (1, 4, 2)]), ("i,i", [(5,), (5,)]),
                   ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("ij->", [(3, 4)]),
                   ("ij,kl->ijkl", [(2, 3), (2, 2)])):  # fmt: skip
    add(
        Case(
            "Einsum",
            [r(*s) for s in shapes],
            {"equation": eq},
            tag=eq.replace("...", "E").replace("->", "_").replace(",", ""),
        )
    )
add(Case("Einsum", [ri(3, 4), ri(4, 2)], {"equation": "ij,jk->ik"}, tag="int"))

# -- shape -------------------------------------------------------------------------------------------------
x = r(2, 3, 4)
add(
    Case("Identity", [x]),
    Case("Shape", [x]),
    Case("Shape", [x], {"start": 1, "end": -1}, tag="range"),
)
add(
    Case("Shape", [x], {"start": -5}, tag="clamp"),
    Case("Size", [x]),
    Case("Size", [np.zeros((0, 3), F32)]),
)
add(
    Case("Reshape", [x, i64(4, -1)]),
    Case("Reshape", [x, i64(0, 12)]),
    Case("Reshape", [x, i64(0, 12)], {"allowzero": 0}, tag="zero"),
)
add(Case("Reshape", [np.zeros((0, 4), F32), i64(0, 2, 2)], {"allowzero": 1}, tag="allowzero"))
for axis in (0, 1, 3, -1):
    add(Case("Flatten", [x if axis != 3 else r(2, 3, 4, 2)], {"axis": axis}, tag=str(axis)))
y = r(1, 3, 1, 4)
add(
    Case("Squeeze", [y]),
    Case("Squeeze", [y, i64(0, -2)]),
    Case("Squeeze", [y], {"axes": [2]}, opset=11),
)
add(
    Case("Unsqueeze", [x, i64(0, -1)]),
    Case("Unsqueeze", [x, i64(2)]),
    Case("Unsqueeze", [x], {"axes": [1, 4]}, opset=11),
)
add(
    Case("Transpose", [x]),
    Case("Transpose", [x], {"perm": [1, 2, 0]}),
    Case("Transpose", [ri(2, 3)], {"perm": [1, 0]}),
)
add(
    Case("Concat", [x, r(2, 1, 4), r(2, 2, 4)], {"axis": 1}),
    Case("Concat", [ri(2, 3), ri(2, 1)], {"axis": -1}),
)
add(Case("Concat", [np.zeros((0, 3), F32), r(2, 3)], {"axis": 0}, tag="empty"))
add(Case("Split", [r(6, 4), i64(2, 4)], {"axis": 0}, opset=13, n_outputs=2))
add(Case("Split", [r(6, 4)], {"axis": 0}, opset=13, n_outputs=3))
add(Case("Split", [r(2, 7)], {"axis": 1, "num_outputs": 3}, opset=18, n_outputs=3))
add(Case("Split", [r(2, 6)], {"axis": -1, "split": [1, 5]}, opset=11, n_outputs=2))
add(
    Case("Expand", [r(3, 1), i64(2, 1, 4)]),
    Case("Expand", [ri(1, 4), i64(3, 1)]),
    Case("Expand", [r(3), i64(1)]),
)
add(Case("Tile", [x, i64(1, 2, 3)]), Case("Tile", [ri(2, 2), i64(3, 1)]))
for mode in ("constant", "reflect", "edge", "wrap"):
    add(Case("Pad", [r(3, 4), i64(1, 2, 2, 1)], {"mode": mode}, opset=19, tag=mode))
    add(
        Case(
            "Pad",
            [r(2, 3, 4), i64(1, 2, 0, 1), None, i64(0, 2)],
            {"mode": mode},
            opset=19,
            tag=mode + "-axes",
        )
    )
add(Case("Pad", [r(3, 4), i64(1, -1, 0, 2), np.array(1.5, F32)], opset=19, tag="value-negative"))
add(Case("Pad", [ri(3, 4), i64(0, 1, 1, 0)], {"mode": "constant"}, opset=13))
add(Case("Pad", [r(3, 4)], {"pads": [1, 1, 0, 2], "value": 2.0}, opset=2, tag="attr"))
for mode in ("DCR", "CRD"):
    add(Case("DepthToSpace", [r(2, 8, 2, 3)], {"blocksize": 2, "mode": mode}, tag=mode))
add(Case("SpaceToDepth", [r(2, 2, 4, 6)], {"blocksize": 2}))
add(
    Case("Range", [np.array(1, I64), np.array(10, I64), np.array(3, I64)]),
    Case("Range", [np.array(5, I32), np.array(-4, I32), np.array(-2, I32)]),
)
add(
    Case("Range", [np.array(0.5, F32), np.array(3.0, F32), np.array(0.7, F32)]),
    Case("Range", [np.array(1.0, F64), np.array(1.0, F64), np.array(1.0, F64)], tag="empty"),
)
add(
    Case("EyeLike", [r(3, 4)]),
    Case("EyeLike", [ri(4, 3)], {"k": -1, "dtype": 1}),
    Case("EyeLike", [r(3, 3)], {"k": 2}),
)

# -- indexing ----------------------------------------------------------------------------------------------
x = r(4, 5, 6)
add(
    Case("Slice", [x, i64(1, 0), i64(3, 10), i64(0, 2), i64(1, 2)]),
    Case("Slice", [x, i64(-1), i64(-(10**9)), i64(1), i64(-2)]),
)
add(
    Case("Slice", [x, i64(0), i64(-1)]),
    Case("Slice", [x, i64(5, 4), i64(0, 1), i64(-1, 0), i64(-1, -1)]),
)
add(Case("Slice", [x], {"starts": [1], "ends": [3], "axes": [2]}, opset=9))
add(
    Case("Gather", [x, i64(0, -1, 2)], {"axis": 1}),
    Case("Gather", [x, np.array([[0, 1], [3, -4]], I32)]),
    Case("Gather", [x, np.array(-1, I64)], {"axis": 2}),
)
add(Case("GatherElements", [r(3, 4), np.array([[0, 2], [1, -1], [3, 0]], I64)], {"axis": 1}))
add(Case("GatherElements", [ri(3, 3), np.array([[1, 2, 0], [2, 0, 0]], I32)], {"axis": 0}))
add(
    Case("GatherND", [r(2, 3, 4), np.array([[0, 1], [1, 2]], I64)]),
    Case("GatherND", [r(2, 3, 4), np.array([[1], [0]], I64)]),
)
add(
    Case(
        "GatherND",
        [r(2, 3, 4), np.array([[[1, 2]], [[0, -1]]], I64)],
        {"batch_dims": 1},
        tag="batch",
    )
)
add(Case("GatherND", [ri(2, 3), np.array([[0, 0], [1, 2]], I64)]))
data, idx = r(3, 4), np.array([[1, 0, 2], [0, 2, 1]], I64)
for red in ("none", "add", "mul", "max", "min"):
    add(
        Case(
            "ScatterElements",
            [data, idx, r(2, 3)],
            {"axis": 0, "reduction": red},
            opset=18,
            tag=red,
        )
    )
    add(
        Case(
            "ScatterND",
            [r(4, 3), np.array([[1], [3], [1]], I64), r(3, 3)],
            {"reduction": red},
            opset=18,
            tag=red,
        )
    )
add(
    Case(
        "ScatterElements", [data, np.array([[3, -1], [0, 2]], I64), r(2, 2)], {"axis": 1}, opset=18
    )
)
add(Case("ScatterND", [r(2, 3, 4), np.array([[0, 1], [1, 2]], I64), r(2, 4)], opset=11))
add(Case("ScatterND", [ri(4, 3), np.array([[2, 1], [0, 0]], I64), ri(2)], opset=11))
add(Case("Scatter", [data, np.array([[1, 0, 2]], I64), r(1, 3)], opset=9))
add(Case("OneHot", [np.array([0, 2, -1, 5], I64), i64(4), np.array([0.0, 1.0], F32)]))
add(
    Case(
        "OneHot",
        [np.array([[1, 0], [2, 3]], I32), np.array([4], F32), np.array([-1, 7], F32)],
        {"axis": 0},
    )
)
for upper in (0, 1):
    add(
        Case("Trilu", [r(3, 4)], {"upper": upper}, opset=14),
        Case("Trilu", [r(2, 4, 3), i64(-1)], {"upper": upper}, opset=14, tag=f"k{upper}"),
    )
add(Case("Trilu", [ri(3, 3), i64(1)], opset=14))
tk = np.array([[3, 1, 3, 2], [0, 5, 5, 1]], F32)
add(
    Case("TopK", [tk, i64(2)], n_outputs=2), Case("TopK", [tk, i64(3)], {"largest": 0}, n_outputs=2)
)
add(
    Case("TopK", [tk, i64(1)], {"axis": 0}, n_outputs=2),
    Case("TopK", [ri(3, 5), i64(2)], n_outputs=2),
)
add(Case("TopK", [tk], {"k": 2}, opset=9, n_outputs=2))

# -- convolution and pooling -------------------------------------------------------------------------
MS = "com.microsoft"


def conv_case(x, w, b=None, attrs=None, opset=22, tag="", **kw):
    add(Case("Conv", [x, w] + ([b] if b is not None else []), attrs or {}, opset=opset, tag=tag,
             **{**tol(x.dtype), **kw}))  # fmt: skip


conv_case(r(1, 2, 7), r(3, 2, 3), r(3), {"pads": [1, 0], "strides": [2]}, tag="1d")
conv_case(r(2, 4, 5, 6), r(6, 2, 3, 3), r(6),
          {"group": 2, "dilations": [2, 1], "pads": [1, 0, 2, 1], "strides": [1, 2]}, tag="2d-g2")  # fmt: skip
conv_case(r(1, 3, 5, 5), r(6, 1, 3, 3), r(6), {"group": 3, "strides": [2, 2], "auto_pad": "SAME_UPPER"},
          tag="depthwise")  # fmt: skip
conv_case(
    r(1, 2, 5, 4), r(3, 2, 2, 3), None, {"auto_pad": "SAME_LOWER", "strides": [2, 1]}, tag="lower"
)
conv_case(r(1, 2, 5, 4), r(3, 2, 2, 2), r(3), {"auto_pad": "VALID", "strides": [2, 2]}, tag="valid")
conv_case(r(1, 2, 3, 4, 3), r(2, 2, 2, 2, 2), r(2), {"pads": [1, 0, 0, 0, 1, 1]}, tag="3d")
conv_case(
    r(1, 4, 3, 4, 3), r(4, 1, 2, 1, 2), None, {"group": 4, "dilations": [1, 1, 2]}, tag="3d-dw"
)
conv_case(r(2, 3, 4, 4), r(5, 3, 1, 1), r(5), tag="1x1")
conv_case(r(1, 3, 5, 5), r(2, 3, 1, 1), None, {"strides": [2, 2]}, tag="1x1-s2")
conv_case(r(1, 2, 3, 3), r(4, 2, 3, 3), r(4), tag="whole")
conv_case(
    r(1, 2, 4, 5, dtype=F64), r(3, 2, 3, 3, dtype=F64), r(3, dtype=F64), {"pads": [1, 1, 1, 1]}
)
conv_case(r(1, 4, 5, 5, dtype=F16), r(4, 2, 3, 3, dtype=F16), r(4, dtype=F16),
          {"group": 2, "pads": [1, 1, 1, 1]})  # fmt: skip
conv_case(r(1, 2, 5, 5), r(3, 2, 3, 3), None, {"kernel_shape": [3, 3], "strides": [2, 2]}, opset=1)
conv_case(r(1, 2, 6), r(2, 1, 2), r(2), {"group": 2, "dilations": [3]}, opset=11, tag="1d-dil")


def conv_t_case(x, w, b=None, attrs=None, opset=22, tag="", **kw):
    add(Case("ConvTranspose", [x, w] + ([b] if b is not None else []), attrs or {}, opset=opset,
             tag=tag, **{**tol(x.dtype), **kw}))  # fmt: skip


conv_t_case(r(1, 2, 4), r(2, 3, 3), r(3), {"strides": [2], "output_padding": [1]}, tag="1d-op")
conv_t_case(r(1, 4, 3, 3), r(4, 2, 3, 3), r(4),
            {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 0, 1]}, tag="2d-g2")  # fmt: skip
conv_t_case(r(1, 2, 3, 4), r(2, 2, 3, 3), None, {"strides": [2, 2], "output_shape": [7, 9]},
            tag="out-shape")  # fmt: skip
conv_t_case(r(1, 2, 3, 3), r(2, 1, 3, 3), r(1), {"strides": [2, 2], "output_shape": [8, 8], "auto_pad": "SAME_LOWER"},
            tag="out-shape-big")  # fmt: skip
conv_t_case(r(1, 2, 3, 3), r(2, 2, 3, 2), None, {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
            tag="upper")  # fmt: skip
conv_t_case(r(1, 2, 3, 3), r(2, 2, 3, 3), None, {"strides": [2, 1], "auto_pad": "SAME_LOWER"},
            tag="lower")  # fmt: skip
conv_t_case(
    r(1, 2, 3, 2), r(2, 1, 2, 2), r(1), {"strides": [3, 2], "auto_pad": "VALID"}, tag="valid"
)
conv_t_case(r(1, 3, 3, 3), r(3, 1, 3, 3), r(3), {"group": 3, "strides": [2, 2], "pads": [1, 1, 1, 1],
            "output_padding": [1, 1]}, tag="depthwise")  # fmt: skip
conv_t_case(r(1, 2, 2, 3, 2), r(2, 2, 2, 2, 2), r(2), {"strides": [2, 1, 2]}, tag="3d")
conv_t_case(r(2, 3, 3, 3), r(3, 2, 1, 1), None, tag="1x1")
conv_t_case(r(1, 2, 3, 3, dtype=F64), r(2, 2, 2, 2, dtype=F64), None, {"strides": [2, 2]})
conv_t_case(
    r(1, 2, 3, 3, dtype=F16), r(2, 2, 3, 3, dtype=F16), r(2, dtype=F16), {"strides": [2, 2]}
)
conv_t_case(r(1, 2, 3, 3), r(2, 2, 3, 3), None, {"pads": [1, 1, 0, 0]}, opset=1)
conv_t_case(r(1, 2, 4), r(2, 2, 2), r(2), {"strides": [3], "output_shape": [12]}, opset=11)

for act, params in (("Relu", []), ("Tanh", []), ("Sigmoid", []), ("LeakyRelu", [0.2]),
                    ("Clip", [-0.5, 0.8]), ("HardSigmoid", [0.3, 0.4]), ("", [])):  # fmt: skip
    attrs = {"pads": [1, 1, 1, 1], "group": 2} | ({"activation": act} if act else {})
    attrs |= {"activation_params": params} if params else {}
    x, w, b = r(1, 4, 4, 5), r(4, 2, 3, 3), r(4)
    add(Case("FusedConv", [x, w, b], attrs, opset=22, domain=MS, tag=act or "none"))
    add(Case("FusedConv", [x, w, b, r(1, 4, 4, 5)], attrs, opset=22, domain=MS, tag=f"{act}-z"))
add(Case("FusedConv", [r(1, 2, 6), r(3, 2, 3), None, r(1, 3, 2)], {"activation": "Relu",
         "strides": [2]}, opset=22, domain=MS, tag="1d"))  # fmt: skip
add(Case("FusedConv", [r(1, 2, 3, 3, 3), r(2, 2, 2, 2, 2), r(2)], {"activation": "Sigmoid"},
         opset=22, domain=MS, tag="3d"))  # fmt: skip
add(Case("FusedConv", [r(1, 2, 4, 4, dtype=F16), r(3, 2, 3, 3, dtype=F16), r(3, dtype=F16),
         r(1, 3, 2, 2, dtype=F16)], {"activation": "LeakyRelu", "activation_params": [0.1]},
         opset=22, domain=MS, tag="f16", **tol(F16)))  # fmt: skip


def pool_case(op, x, attrs, opset=22, n_outputs=1, tag="", **kw):
    add(Case(op, [x], attrs, opset=opset, n_outputs=n_outputs, tag=tag,
             **{**tol(x.dtype), **kw}))  # fmt: skip


x1, x2, x3 = r(2, 3, 7), r(2, 2, 5, 6), r(1, 2, 4, 3, 5)
for op in ("MaxPool", "AveragePool", "LpPool"):
    for x, attrs, tag in (
        (x1, {"kernel_shape": [3], "strides": [2], "pads": [1, 2]}, "1d"),
        (x2, {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [1, 0, 2, 1]}, "2d"),
        (x2, {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "upper"),
        (x2, {"kernel_shape": [3, 3], "strides": [2, 1], "auto_pad": "SAME_LOWER"}, "lower"),
        (x2, {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID"}, "valid"),
        (x2, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 0, 1], "ceil_mode": 1}, "ceil"),
        (x2, {"kernel_shape": [2, 2], "dilations": [2, 2], "strides": [2, 1], "ceil_mode": 1}, "dil"),
        (x3, {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 1]}, "3d"),
        (x2, {"kernel_shape": [1, 1], "strides": [2, 2]}, "1x1"),
        (x2, {"kernel_shape": [5, 6]}, "whole"),
    ):  # fmt: skip
        extra = {"p": 3} if op == "LpPool" and tag in ("1d", "3d") else {}
        pool_case(op, x, attrs | extra, opset=22, tag=tag)
for so in (0, 1):
    for x, attrs, tag in (
        (x2, {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 1, 1, 0]}, "2d"),
        (x3, {"kernel_shape": [2, 2, 2], "strides": [1, 2, 2], "pads": [1, 0, 0, 0, 1, 1],
              "dilations": [1, 1, 2]}, "3d"),
        (x1, {"kernel_shape": [2], "strides": [2], "ceil_mode": 1}, "1d"),
        (x2, {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER"}, "lower"),
    ):  # fmt: skip
        pool_case("MaxPool", x, attrs | {"storage_order": so}, n_outputs=2, tag=f"idx{so}-{tag}")
pool_case("MaxPool", np.full((1, 1, 3, 3), -np.inf, F32), {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]},
          n_outputs=2, tag="all-lowest")  # fmt: skip
for dt in (np.int8, np.uint8):
    xi = ri(1, 2, 5, 5, dtype=dt, lo=0 if dt == np.uint8 else -128, hi=127)
    pool_case("MaxPool", xi, {"kernel_shape": [2, 2], "pads": [1, 1, 0, 1]}, opset=12, n_outputs=2)
    pool_case(
        "MaxPool", xi, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, tag="ceil"
    )
pool_case("MaxPool", x2, {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}, opset=1, tag="legacy")
pool_case("MaxPool", x2, {"kernel_shape": [3, 3], "storage_order": 1}, opset=8, n_outputs=2)
pool_case("MaxPool", x2, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, opset=10)
pool_case("MaxPool", x2, {"kernel_shape": [2, 2], "dilations": [1, 2]}, opset=11, n_outputs=2)
for dt in (F64, F16):
    pool_case("MaxPool", x2.astype(dt), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, n_outputs=2)
    pool_case("AveragePool", x2.astype(dt), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    pool_case("LpPool", x2.astype(dt), {"kernel_shape": [2, 2], "strides": [2, 2]})
for cip in (0, 1):
    for x, attrs, tag in (
        (x2, {"kernel_shape": [3, 3], "pads": [1, 2, 2, 1]}, "pads"),
        (x2, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 0], "ceil_mode": 1}, "ceil"),
        (x2, {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "upper"),
        (x2, {"kernel_shape": [3, 2], "strides": [1, 2], "auto_pad": "SAME_LOWER"}, "lower"),
        (x3, {"kernel_shape": [2, 3, 2], "strides": [2, 2, 2], "pads": [1, 1, 0, 0, 1, 1]}, "3d"),
        (x1, {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1,
              "dilations": [2]}, "dil"),
    ):  # fmt: skip
        pool_case("AveragePool", x, attrs | {"count_include_pad": cip}, tag=f"cip{cip}-{tag}")
    pool_case("AveragePool", x2, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
              "count_include_pad": cip}, opset=7, tag=f"cip{cip}")  # fmt: skip
    pool_case("AveragePool", x2, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1],
              "ceil_mode": 1, "count_include_pad": cip}, opset=11, tag=f"cip{cip}")  # fmt: skip
pool_case("AveragePool", x2, {"kernel_shape": [2, 2]}, opset=1, tag="legacy")
pool_case(
    "AveragePool", x2, {"kernel_shape": [2, 2], "dilations": [2, 1], "pads": [1, 1, 0, 0]}, opset=19
)
for p in (1, 2, 3):
    pool_case(
        "LpPool", x2, {"kernel_shape": [2, 2], "pads": [1, 0, 0, 1], "p": p}, opset=11, tag=f"p{p}"
    )
pool_case("LpPool", x2, {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1, "dilations": [1, 2],
          "p": 3}, opset=18, tag="ceil-dil")  # fmt: skip
pool_case("LpPool", x1, {"kernel_shape": [2], "p": 2}, opset=2, tag="legacy")
for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):
    for x in (x1, x2, x3, x2.astype(F64), x2.astype(F16)):  # onnxruntime's GlobalLpPool: v2
        if op != "GlobalLpPool" or x.dtype != F64:  # and no float64 (nor has onnx's reference)
            opset = 21 if op == "GlobalLpPool" else 22
            add(Case(op, [x], opset=opset, tag=f"{x.ndim - 2}d", **tol(x.dtype)))
    add(Case(op, [x2], opset=1, tag="legacy") if op != "GlobalLpPool" else Case(op, [x2], opset=2))
add(Case("GlobalLpPool", [x3], {"p": 3}, opset=21, tag="p3"), Case("GlobalLpPool", [x1], {"p": 1}))
