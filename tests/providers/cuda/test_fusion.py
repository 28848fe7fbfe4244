"""Fused elementwise chains of the CUDA provider (``ort_cuda.fusion``). No GPU is needed here.

Labels of the tests below:
- host logic: chain detection on hand-built graphs (what fuses, what does not and why), the host
  layout of a launch, and the stand-in interpreter (the chain op by op with an array-API
  namespace) against onnxruntime on random inputs;
- translation: NVRTC compiles; it does not run: the generated CUDA C of every chain and element
  type compiles for every architecture in ``ort_cuda.nvrtc.ARCHES``;
- host emulation of the generated CUDA C: the generated kernels compiled with the host's C++
  compiler against ``_emulate_fusion.py``'s stand-in CUDA header, launched over numpy arrays with
  the native path's host layout, against onnxruntime (and the native path itself, with a cupy
  whose kernels are the emulation).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_cuda import fusion, nvrtc

from ort_core.ir import model_from_proto
from ort_core.partitioner import _extract
from ort_core.provider.view import GraphView

from . import _emulate_fusion as emu

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F16, BF16, F32, F64)
OPSET = 21
MS = "com.microsoft"


def _elem(dt: Any) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dt))


def N(op: str, ins: list[str], outs: list[str] | str, **attrs: Any) -> onnx.NodeProto:  # noqa: N802
    domain = attrs.pop("domain", "")
    outs = [outs] if isinstance(outs, str) else outs
    return helper.make_node(op, ins, outs, domain=domain, name=f"{op}_{outs[0]}", **attrs)


def _model(nodes, inputs, outputs, inits=(), opset=OPSET, ms=False) -> onnx.ModelProto:
    """inputs/outputs: {name: (dtype, shape)}; inits: {name: array}."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, _elem(dt), shape) for k, (dt, shape) in inputs.items()],
        [helper.make_tensor_value_info(k, _elem(dt), shape) for k, (dt, shape) in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(MS, 1)] if ms else [])
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    return m


def _view(model: onnx.ModelProto) -> GraphView:
    ir = model_from_proto(model)
    return GraphView(ir.graph, ir.opset_imports)


def _labels(chains) -> list[list[str]]:
    return [[n.name for n in ch] for ch in chains]


def _chains(model, accepts=lambda n: True) -> list[list[str]]:
    return _labels(fusion.find_chains(_view(model), accepts))


X = {"x": (F32, [2, 3])}
Y = {"y": (F32, [2, 3])}


# -- host logic: chain detection --------------------------------------------------------------
def test_a_chain_fuses_in_topological_order():
    nodes = [N("Add", ["x", "x"], "a"), N("Relu", ["a"], "b"), N("Mul", ["b", "x"], "y")]
    assert _chains(_model(nodes, X, Y)) == [["Add_a", "Relu_b", "Mul_y"]]


def test_a_single_node_is_no_chain():
    assert _chains(_model([N("Relu", ["x"], "y")], X, Y)) == []


def test_diamonds_and_several_written_values_fuse():
    nodes = [
        N("Exp", ["x"], "a"),
        N("Neg", ["x"], "b"),
        N("Add", ["a", "b"], "y"),
        N("Sigmoid", ["a"], "z"),  # a read twice inside: still an intermediate
    ]
    m = _model(nodes, X, {**Y, "z": (F32, [2, 3])})
    assert _chains(m) == [["Exp_a", "Neg_b", "Add_y", "Sigmoid_z"]]


def test_an_intermediate_read_outside_breaks_the_chain():
    """``a`` is read by Relu (fusible) and by MatMul (not): it must be written, and a written
    value is never also an intermediate, so Exp and Relu stay apart."""
    nodes = [
        N("Exp", ["x"], "a"),
        N("Relu", ["a"], "b"),
        N("Neg", ["b"], "y"),
        N("Transpose", ["a"], "t", perm=[1, 0]),
    ]
    m = _model(nodes, X, {**Y, "t": (F32, [3, 2])})
    assert _chains(m) == [["Relu_b", "Neg_y"]]


def test_a_graph_output_is_never_an_intermediate():
    nodes = [N("Exp", ["x"], "a"), N("Relu", ["a"], "b"), N("Neg", ["b"], "y")]
    m = _model(nodes, X, {"a": (F32, [2, 3]), **Y})
    assert _chains(m) == [["Relu_b", "Neg_y"]]


def test_a_non_elementwise_op_breaks_the_chain():
    nodes = [
        N("Exp", ["x"], "a"),
        N("Relu", ["a"], "b"),
        N("Transpose", ["b"], "t", perm=[1, 0]),
        N("Sigmoid", ["t"], "c"),
        N("Neg", ["c"], "y"),
    ]
    m = _model(nodes, X, {"y": (F32, [3, 2])})
    assert _chains(m) == [["Exp_a", "Relu_b"], ["Sigmoid_c", "Neg_y"]]


def test_nodes_the_provider_does_not_accept_are_left_out():
    nodes = [N("Exp", ["x"], "a"), N("Relu", ["a"], "b"), N("Neg", ["b"], "y")]
    m = _model(nodes, X, Y)
    assert _chains(m, lambda n: n.op_type != "Relu") == []
    assert _chains(m, lambda n: n.op_type != "Neg") == [["Exp_a", "Relu_b"]]


def test_a_value_a_subgraph_reads_is_not_an_intermediate():
    """If's branches read ``a`` from the enclosing graph: ``a`` is read outside the chain."""
    branch = helper.make_graph(
        [N("Identity", ["a"], "r")],
        "then",
        [],
        [helper.make_tensor_value_info("r", _elem(F32), [2, 3])],
    )
    nodes = [
        N("Exp", ["x"], "a"),
        N("Relu", ["a"], "b"),
        N("Neg", ["b"], "y"),
        N("ReduceSum", ["x"], "s", keepdims=0),
        N("Cast", ["s"], "c", to=TensorProto.BOOL),
        N("If", ["c"], "z", then_branch=branch, else_branch=branch),
    ]
    m = _model(nodes, X, {**Y, "z": (F32, [2, 3])})
    assert _chains(m) == [["Relu_b", "Neg_y"]]


def test_a_group_that_a_path_leaves_and_reenters_is_not_fused():
    """Exp's ``a`` feeds Neg and Add; Neg's value goes through a MatMul back into Add. Fusing
    Exp, Neg and Add would make a cycle through the MatMul; Add and Relu still fuse."""
    nodes = [
        N("Exp", ["x"], "a"),
        N("Neg", ["a"], "b"),
        N("MatMul", ["b", "w"], "m"),
        N("Add", ["a", "m"], "c"),
        N("Relu", ["c"], "y"),
    ]
    m = _model(nodes, X, Y, {"w": np.eye(3, dtype=np.float32)})
    assert _chains(m) == [["Add_c", "Relu_y"]]


def test_a_written_value_smaller_than_the_broadcast_shape_does_not_fuse():
    """``b`` ([2,1]) leaves the group but Add broadcasts to [2,3]: one kernel writes one shape."""
    nodes = [
        N("Exp", ["x"], "a"),
        N("Neg", ["a"], "b"),
        N("Add", ["a", "z"], "y"),
    ]
    m = _model(nodes, {"x": (F32, [2, 1]), "z": (F32, [2, 3])}, {"b": (F32, [2, 1]), **Y})
    assert _chains(m) == []
    # with a [2,3] x every value has the broadcast shape: one chain
    m = _model(nodes, {"x": (F32, [2, 3]), "z": (F32, [3])}, {"b": (F32, [2, 3]), **Y})
    assert _chains(m) == [["Exp_a", "Neg_b", "Add_y"]]


def test_unknown_shapes_still_fuse():
    nodes = [N("Add", ["x", "z"], "a"), N("Relu", ["a"], "y")]
    m = _model(nodes, {"x": (F32, ["N", "C"]), "z": (F32, None)}, {"y": (F32, None)})
    assert _chains(m) == [["Add_a", "Relu_y"]]


def test_ranks_above_eight_are_declined():
    shape = [1] * 9
    nodes = [N("Exp", ["x"], "a"), N("Relu", ["a"], "y")]
    m = _model(nodes, {"x": (F32, shape)}, {"y": (F32, shape)})
    assert _chains(m) == []


def test_element_types_and_attributes_decide():
    i32 = np.dtype(np.int32)
    ints = {"x": (i32, [4]), "z": (i32, [4])}
    # integer-safe ops fuse on integers; Exp of an integer is no ONNX op the kernel takes
    nodes = [N("Add", ["x", "z"], "a"), N("Abs", ["a"], "b"), N("Mod", ["b", "z"], "y")]
    assert _chains(_model(nodes, ints, {"y": (i32, [4])})) == [["Add_a", "Abs_b", "Mod_y"]]
    # Mod of floats needs fmod=1
    nodes = [N("Exp", ["x"], "a"), N("Mod", ["a", "x"], "y")]
    assert _chains(_model(nodes, X, Y)) == []
    nodes = [N("Exp", ["x"], "a"), N("Mod", ["a", "x"], "y", fmod=1)]
    assert _chains(_model(nodes, X, Y)) == [["Exp_a", "Mod_y"]]
    # Gelu is an ai.onnx op from opset 20
    nodes = [N("Exp", ["x"], "a"), N("Gelu", ["a"], "y", approximate="tanh")]
    assert _chains(_model(nodes, X, Y)) == [["Exp_a", "Gelu_y"]]
    # non-numeric or float8 element types are not computed
    f8 = {"x": (np.dtype(ml_dtypes.float8_e4m3fn), [4])}
    nodes = [N("Cast", ["x"], "a", to=TensorProto.FLOAT), N("Relu", ["a"], "y")]
    assert _chains(_model(nodes, f8, {"y": (F32, [4])})) == []
    # mixed types through Cast, comparisons and Where fuse
    nodes = [
        N("Cast", ["x"], "a", to=TensorProto.FLOAT16),
        N("Less", ["a", "h"], "c"),
        N("Where", ["c", "a", "h"], "w"),
        N("Cast", ["w"], "y", to=TensorProto.INT64),
    ]
    m = _model(nodes, {"x": (F32, [4]), "h": (F16, [4])}, {"y": (np.int64, [4])})
    assert _chains(m) == [["Cast_a", "Less_c", "Where_w", "Cast_y"]]


def test_chains_are_deterministic_and_ordered_by_first_node():
    nodes = [
        N("Exp", ["x"], "a"),
        N("Relu", ["a"], "b"),
        N("Transpose", ["b"], "t", perm=[1, 0]),
        N("Sigmoid", ["x"], "c"),
        N("Neg", ["c"], "d"),
        N("Abs", ["t"], "e"),
        N("Sqrt", ["e"], "y"),
    ]
    m = _model(nodes, X, {"d": (F32, [2, 3]), "y": (F32, [3, 2])})
    first = _chains(m)
    assert first == [["Exp_a", "Relu_b"], ["Sigmoid_c", "Neg_d"], ["Abs_e", "Sqrt_y"]]
    assert all(_chains(m) == first for _ in range(3))


def test_elementwise_table_names_the_ops():
    ops = {op for _, op in fusion.ELEMENTWISE}
    for op in ("Add", "Where", "Cast", "Gelu", "Clip", "BitShift", "Mod", "IsInf", "Mish"):
        assert op in ops
    assert fusion.ELEMENTWISE[("", "Exp")] == "f"
    assert "i" in fusion.ELEMENTWISE[("", "Add")]
    assert (MS, "FastGelu") in fusion.ELEMENTWISE
    assert ("", "MatMul") not in fusion.ELEMENTWISE


# -- chains computed against onnxruntime ------------------------------------------------------
@dataclass
class Spec:
    """One test chain: ``build(T)`` gives (nodes, inputs {name: (shape, dtype|None, gen|None)},
    constants {name: (values, dtype|None)}, outputs {name: dtype|None}); None means T."""

    name: str
    dtypes: tuple
    build: Any
    ms: bool = False
    ref32: bool = False  # onnxruntime has no kernels of the type: reference in float32
    tol: dict = field(default_factory=dict)
    opset: int = OPSET


def _u(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _with(gen, values):
    def g(rng, shape):
        a = np.asarray(gen(rng, shape), dtype=np.float64)
        flat = a.reshape(-1)
        flat[: len(values)] = values
        return a

    return g


def _spec_bias_act(T):
    nodes = [N("Add", ["x", "b"], "t"), N("Relu", ["t"], "u"), N("Mul", ["u", "s"], "w"),
             N("Sigmoid", ["w"], "y")]  # fmt: skip
    ins = {"x": ([2, 3, 5], None, None)}
    consts = {"b": (np.linspace(-1, 1, 5), None), "s": (np.array(0.3), None)}
    return nodes, ins, consts, {"y": None}


def _spec_sqrt_log(T):
    nodes = [N("Sub", ["x", "y"], "a"), N("Abs", ["a"], "b"), N("Sqrt", ["b"], "c"),
             N("Neg", ["c"], "d"), N("Exp", ["d"], "e"), N("Log", ["e"], "f"),
             N("Sub", ["f", "one"], "g"), N("Reciprocal", ["g"], "o")]  # fmt: skip
    ins = {"x": ([4, 1, 6], None, None), "y": ([3, 6], None, None)}
    return nodes, ins, {"one": (np.array([1.0]), None)}, {"o": None}


def _spec_div_clip(T):
    nodes = [N("Div", ["x", "y"], "a"), N("Clip", ["a", "lo", "hi"], "b"), N("Tanh", ["b"], "c"),
             N("Erf", ["c"], "d")]  # fmt: skip
    sign = lambda rng, shape: rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape)  # noqa: E731
    ins = {"x": ([2, 3, 4], None, None), "y": ([4], None, sign)}
    return nodes, ins, {"lo": (np.array(-1.5), None), "hi": (np.array(1.5), None)}, {"d": None}


def _spec_variadic(T):
    nodes = [N("Max", ["x", "y", "z"], "m"), N("Min", ["m", "w"], "n"),
             N("Sum", ["n", "x", "y"], "s"), N("Mean", ["s", "z"], "o")]  # fmt: skip
    nan = _with(_u(-2, 2), [np.nan, 0.5, 1.0, -1.0, np.nan])
    ins = {"x": ([3, 4], None, nan), "y": ([4], None, None), "z": ([3, 1], None, None),
           "w": ([1], None, None)}  # fmt: skip
    return nodes, ins, {}, {"o": None}


def _spec_pow(T):
    nodes = [N("Abs", ["x"], "a"), N("Add", ["a", "half"], "b"), N("Pow", ["b", "e"], "p"),
             N("Pow", ["p", "two"], "q"), N("Pow", ["q", "k"], "o")]  # fmt: skip
    ins = {"x": ([2, 5], None, _u(-1, 1)), "e": ([5], None, _u(0.5, 2))}
    consts = {"half": (np.array(0.5), None), "two": (np.array(2.0), None),
              "k": (np.array(3), np.int64)}  # fmt: skip
    return nodes, ins, consts, {"o": None}


def _spec_act1(T):
    nodes = [N("LeakyRelu", ["x"], "a", alpha=0.1), N("Elu", ["x"], "b", alpha=0.7),
             N("Selu", ["x"], "c"), N("Celu", ["x"], "d", alpha=2.0),
             N("Sum", ["a", "b", "c", "d"], "s"),
             N("HardSigmoid", ["s"], "h", alpha=0.3, beta=0.4), N("HardSwish", ["x"], "hs"),
             N("Add", ["h", "hs"], "o")]  # fmt: skip
    return nodes, {"x": ([3, 7], None, _u(-4, 4))}, {}, {"o": None}


def _spec_act2(T):
    nodes = [N("Softplus", ["x"], "a"), N("Softsign", ["x"], "b"),
             N("ThresholdedRelu", ["x"], "c", alpha=0.2), N("Mish", ["x"], "d"),
             N("Gelu", ["x"], "e", approximate="tanh"), N("Gelu", ["x"], "f"),
             N("Sum", ["a", "b", "c", "d", "e", "f"], "o")]  # fmt: skip
    return nodes, {"x": ([3, 7], None, _u(-4, 4))}, {}, {"o": None}


def _spec_trig(T):
    chain = ["Sin", "Asin", "Cos", "Acos", "Tan", "Atan", "Sinh", "Asinh", "Cosh"]
    nodes = [N("Mul", ["x", "q"], "m"), N("Add", ["m", "shift"], "v0")]
    for k, op in enumerate(chain):
        nodes.append(N(op, [f"v{k}"], f"v{k + 1}"))
    last = f"v{len(chain)}"
    nodes += [N("Add", [last, "one"], "l"), N("Acosh", ["l"], "ac"), N("Tanh", ["ac"], "th"),
              N("Mul", ["th", "nine"], "p"), N("Atanh", ["p"], "o")]  # fmt: skip
    consts = {"q": (np.array(0.25), None), "shift": (np.array(0.6), None),
              "one": (np.array(1.0), None), "nine": (np.array(0.9), None)}  # fmt: skip
    return nodes, {"x": ([2, 6], None, _u(-2, 2))}, consts, {"o": None}


def _spec_rounding(T):
    nodes = [N("Mul", ["x", "k"], "a"), N("Floor", ["a"], "b"), N("Ceil", ["a"], "c"),
             N("Round", ["a"], "d"), N("Sum", ["b", "c", "d"], "e"), N("Sub", ["e", "a"], "f"),
             N("Sign", ["f"], "g"), N("Round", ["x"], "r"), N("Add", ["r", "f"], "o2")]  # fmt: skip
    halves = _with(_u(-3, 3), [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.0])
    consts = {"k": (np.array(3.7), None)}
    return nodes, {"x": ([4, 5], None, halves)}, consts, {"g": None, "o2": None}


def _spec_logic(T):
    bool_ = np.dtype(np.bool_)
    nodes = [N("Less", ["x", "y"], "c1"), N("GreaterOrEqual", ["y", "z"], "c2"),
             N("Xor", ["c1", "c2"], "c3"), N("LessOrEqual", ["x", "z"], "c4"),
             N("Or", ["c3", "c4"], "c5"), N("Not", ["c5"], "c6"), N("Where", ["c6", "x", "y"], "o1"),
             N("Equal", ["x", "x"], "c7"), N("Greater", ["y", "z"], "c8"),
             N("And", ["c7", "c8"], "c9"), N("And", ["c9", "c6"], "o2"), N("IsNaN", ["x"], "n1"),
             N("IsInf", ["x"], "n2"), N("Or", ["n1", "n2"], "n"), N("Or", ["n", "c4"], "o3"),
             N("IsInf", ["x"], "n3", detect_positive=0),
             N("And", ["n3", "c2"], "o4")]  # fmt: skip
    special = _with(_u(-2, 2), [np.nan, np.inf, -np.inf, 0.0, -np.inf, 1.0])
    ins = {"x": ([3, 4], None, special), "y": ([4], None, None), "z": ([3, 1], None, None)}
    return nodes, ins, {}, {"o1": None, "o2": bool_, "o3": bool_, "o4": bool_}


def _spec_casts(T):
    nodes = [N("Mul", ["x", "ten"], "a"), N("Cast", ["a"], "b", to=TensorProto.INT32),
             N("Add", ["b", "k"], "c"), N("Cast", ["c"], "d", to=_elem(T)),
             N("Cast", ["x"], "e", to=TensorProto.BOOL), N("Cast", ["e"], "f", to=_elem(T)),
             N("Add", ["d", "f"], "g"), N("Cast", ["x"], "bb", to=TensorProto.BFLOAT16),
             N("Cast", ["bb"], "bt", to=_elem(T)), N("Add", ["g", "bt"], "s"),
             N("Cast", ["s"], "h", to=TensorProto.FLOAT16),
             N("Cast", ["h"], "o1", to=TensorProto.DOUBLE),
             N("Cast", ["bb"], "o2", to=TensorProto.FLOAT)]  # fmt: skip
    zeros = _with(_u(-2, 2), [0.0, -0.0, 0.0, 1.23456789])
    consts = {"ten": (np.array(10.0), None), "k": (np.array(3), np.int32)}
    return nodes, {"x": ([3, 5], None, zeros)}, consts, {"o1": F64, "o2": F32}


def _spec_prelu_mod(T):
    nodes = [N("PRelu", ["x", "slope"], "a"), N("Mod", ["a", "y"], "b", fmod=1),
             N("Neg", ["b"], "o")]  # fmt: skip
    signed = lambda rng, shape: rng.uniform(1, 3, shape) * rng.choice([-1, 1], shape)  # noqa: E731
    ins = {"x": ([2, 3, 4], None, _u(-6, 6)), "y": ([3, 1], None, signed)}
    return nodes, ins, {"slope": (np.array([0.1, 0.2, -0.3, 2.0]), None)}, {"o": None}


def _spec_ms_gelu(T):
    nodes = [N("FastGelu", ["x", "bias"], "a", domain=MS),
             N("QuickGelu", ["a"], "b", alpha=1.5, domain=MS), N("Gelu", ["b"], "c", domain=MS),
             N("BiasGelu", ["c", "bias2"], "d", domain=MS),
             N("FastGelu", ["d"], "o", domain=MS)]  # fmt: skip
    consts = {"bias": (np.linspace(-0.5, 0.5, 5), None), "bias2": (np.linspace(0.3, -0.2, 5), None)}
    return nodes, {"x": ([2, 5], None, _u(-3, 3))}, consts, {"o": None}


def _spec_nan_minmax(T):
    nodes = [N("Max", ["x", "zero"], "a"), N("Min", ["a", "six"], "b"),
             N("Clip", ["x", "lo"], "c"), N("Clip", ["x", "", "hi"], "d"),
             N("Greater", ["x", "zero"], "g"), N("Where", ["g", "b", "c"], "e"),
             N("Add", ["e", "d"], "o")]  # fmt: skip
    nan = _with(_u(-8, 8), [np.nan, 7.0, -7.0, np.nan])
    consts = {"zero": (np.array(0.0), None), "six": (np.array(6.0), None),
              "lo": (np.array(-1.0), None), "hi": (np.array(1.0), None)}  # fmt: skip
    return nodes, {"x": ([3, 4], None, nan)}, consts, {"o": None}


def _ints(lo, hi, nonzero=False):
    def g(rng, shape):
        v = rng.integers(lo, hi, shape)
        if nonzero:
            v = np.where(v == 0, 1, v)
        return v

    return g


def _spec_int_arith(T):
    nodes = [N("Add", ["a", "b"], "t"), N("Mul", ["t", "three"], "u"), N("Sub", ["u", "a"], "v"),
             N("Div", ["v", "d"], "w"), N("Mod", ["w", "five"], "m"),
             N("Mod", ["v", "d"], "m2", fmod=1), N("Abs", ["m2"], "ab"), N("Neg", ["ab"], "ng"),
             N("Max", ["ng", "m", "b"], "mx"), N("Min", ["mx", "a"], "mn"),
             N("Max", ["mn", "zero"], "rl"), N("Sign", ["v"], "sg"),
             N("Clip", ["v", "lo", "hi"], "cl"), N("Add", ["rl", "sg"], "s1"),
             N("Add", ["s1", "cl"], "o1"), N("Clip", ["a", "zero", "three"], "ca"),
             N("Pow", ["b", "ca"], "p1"), N("Pow", ["ca", "two"], "p2"),
             N("Add", ["p1", "p2"], "p3"), N("Add", ["p3", "cl"], "o2")]  # fmt: skip
    ins = {"a": ([3, 4], None, _ints(-20, 20)), "b": ([4], None, _ints(-20, 20)),
           "d": ([3, 1], None, _ints(-7, 8, nonzero=True))}  # fmt: skip
    consts = {k: (np.array(v), None) for k, v in
              {"three": 3, "five": 5, "lo": -5, "hi": 5, "zero": 0, "two": 2}.items()}  # fmt: skip
    return nodes, ins, consts, {"o1": None, "o2": None}


def _spec_int_select(T):
    nodes = [N("Greater", ["a", "b"], "g"), N("Where", ["g", "a", "b"], "w"),
             N("Equal", ["w", "a"], "e"), N("Cast", ["e"], "ci", to=_elem(T)),
             N("Add", ["w", "ci"], "o1"), N("Cast", ["a"], "f", to=TensorProto.FLOAT),
             N("Mul", ["f", "half"], "h"), N("Cast", ["h"], "hc", to=_elem(T)),
             N("Add", ["hc", "w"], "o2")]  # fmt: skip
    ins = {"a": ([3, 4], None, _ints(-20, 20)), "b": ([4], None, _ints(-20, 20))}
    return nodes, ins, {"half": (np.array(0.5), F32)}, {"o1": None, "o2": None}


def _spec_shift(T):
    bits = 8 * np.dtype(T).itemsize
    nodes = [N("BitShift", ["a", "s"], "l", direction="LEFT"),
             N("BitShift", ["l", "one"], "r", direction="RIGHT"), N("Add", ["r", "a"], "o")]  # fmt: skip
    shifts = lambda rng, shape: np.array([0, 1, 3, bits - 1, bits, bits + 2])[: shape[0]]  # noqa: E731
    ins = {"a": ([3, 6], None, _ints(0, 200)), "s": ([6], None, shifts)}
    return nodes, ins, {"one": (np.array(1), None)}, {"o": None}


def _spec_int_edges(T):
    """int32 only: onnxruntime's Relu takes no int64. Pow of integers truncates through double
    (2^-1 is 0, (-1)^-3 is -1)."""
    nodes = [N("Pow", ["a", "e"], "p"), N("Relu", ["a"], "r"), N("Add", ["p", "r"], "o")]
    ins = {"a": ([3, 5], None, _ints(-3, 4)), "e": ([5], None, lambda rng, s: np.arange(-3, 2))}
    return nodes, ins, {}, {"o": None}


def _spec_clip6(T):
    """Opset 10: Clip's bounds are attributes, by default the float range (inf clamps)."""
    bool_ = np.dtype(np.bool_)
    nodes = [N("Clip", ["x"], "c", min=-0.5, max=0.7), N("Clip", ["x"], "c2"),
             N("Add", ["c", "c2"], "o"),
             N("IsInf", ["c2"], "n", detect_negative=0, detect_positive=0),
             N("Greater", ["c2", "c"], "g"), N("Or", ["n", "g"], "o2")]  # fmt: skip
    special = _with(_u(-2, 2), [np.inf, -np.inf, np.nan, 0.6])
    return nodes, {"x": ([2, 5], None, special)}, {}, {"o": None, "o2": bool_}


I32, I64 = np.dtype(np.int32), np.dtype(np.int64)
U8, U32 = np.dtype(np.uint8), np.dtype(np.uint32)
SPECS = [
    Spec("bias_act", FLOATS, _spec_bias_act),
    Spec("sqrt_log", FLOATS, _spec_sqrt_log),
    Spec("div_clip", FLOATS, _spec_div_clip),
    Spec("variadic", FLOATS, _spec_variadic),
    Spec("pow", FLOATS, _spec_pow),
    Spec("act1", FLOATS, _spec_act1),
    Spec("act2", FLOATS, _spec_act2),
    Spec("trig", FLOATS, _spec_trig, tol={F32: (2e-4, 2e-5)}),
    Spec("rounding", FLOATS, _spec_rounding),
    Spec("logic", FLOATS, _spec_logic),
    Spec("casts", FLOATS, _spec_casts),
    Spec("prelu_mod", FLOATS, _spec_prelu_mod),
    Spec("ms_gelu", FLOATS, _spec_ms_gelu, ms=True, ref32=True),
    Spec("nan_minmax", FLOATS, _spec_nan_minmax),
    Spec("int_arith", (I32, I64), _spec_int_arith),
    Spec("int_select", (I32, I64), _spec_int_select),
    Spec("int_edges", (I32,), _spec_int_edges),
    Spec("clip6", (F32, F64), _spec_clip6, opset=10),
    Spec("shift", (U8, U32), _spec_shift),
]
CASES = [(s, dt) for s in SPECS for dt in s.dtypes]
CASE_IDS = [f"{s.name}-{dt.name}" for s, dt in CASES]
TOL = {F16: (4e-3, 4e-3), BF16: (2e-2, 2e-2), F32: (1e-4, 1e-5), F64: (1e-9, 1e-12)}


@dataclass
class Case:
    model: onnx.ModelProto
    sub: Any  # the fused subgraph, as the partitioner extracts it
    opsets: dict
    inputs: list[np.ndarray]  # in sub.inputs order, of the case's element types
    expected: list[np.ndarray]  # onnxruntime's outputs, in sub.outputs order
    tol: tuple[float, float]


def _build(spec: Spec, T: np.dtype, rng_seed: int = 0):
    nodes, ins, consts, outs = spec.build(T)
    rng = np.random.default_rng(rng_seed)
    values = {}
    for name, (shape, dt, gen) in ins.items():
        dt = np.dtype(dt or T)
        raw = (gen or (_ints(-20, 20) if dt.kind in "iu" else _u(-2, 2)))(rng, shape)
        values[name] = np.asarray(raw).astype(dt)
    inits = {k: np.asarray(v).astype(np.dtype(dt or T)) for k, (v, dt) in consts.items()}
    in_types = {k: (np.dtype(dt or T), shape) for k, (shape, dt, _) in ins.items()}
    out_types = {k: (np.dtype(dt or T), None) for k, dt in outs.items()}
    return nodes, in_types, out_types, inits, values


def _ref_type(dt: np.dtype, T: np.dtype, ref: np.dtype) -> np.dtype:
    return ref if dt == T else dt


def _run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@functools.cache
def _case(spec_name: str, dtname: str) -> Case:
    spec = next(s for s in SPECS if s.name == spec_name)
    T = BF16 if dtname == "bfloat16" else np.dtype(dtname)
    nodes, in_types, out_types, inits, values = _build(spec, T)
    model = _model(nodes, in_types, out_types, inits, opset=spec.opset, ms=spec.ms)
    view = _view(model)
    chains = fusion.find_chains(view, lambda n: True)
    assert len(chains) == 1 and len(chains[0]) == len(view.graph.nodes), _labels(chains)
    sub = _extract(view, chains[0])
    sub.name = f"{spec.name}_{dtname}"
    tol = spec.tol.get(T, TOL.get(T, (0, 0)))
    # reference: onnxruntime in the case's type, or in float32 where it has no kernels of it
    refs = [T]
    if T.kind == "f" or T == BF16:
        refs = [F32] if (T in (F16, BF16) or spec.ref32) else [T, F32]
    for ref in refs:
        rnodes, rin, rout, rinits, _ = _build(spec, ref)
        rmodel = _model(
            rnodes,
            {k: (_ref_type(dt, T, ref), s) for k, (dt, s) in in_types.items()},
            {k: (_ref_type(dt, T, ref), s) for k, (dt, s) in out_types.items()},
            {k: v.astype(_ref_type(v.dtype, T, ref)) for k, v in inits.items()},
            opset=spec.opset,
            ms=spec.ms,
        )
        feeds = {k: v.astype(_ref_type(v.dtype, T, ref)) for k, v in values.items()}
        try:
            got = _run_ort(rmodel, feeds)
        except Exception:  # noqa: BLE001 - onnxruntime has no kernel of this type
            if ref is refs[-1]:
                raise
            continue
        if ref != T and T == F64:
            tol = TOL[F32]
        names = [o.name for o in rmodel.graph.output]
        expected = [got[names.index(o)] for o in sub.outputs]
        break
    return Case(model, sub, dict(view.opsets), [values[k] for k in sub.inputs], expected, tol)


def _check(case: Case, actual: list, where: str) -> None:
    assert len(actual) == len(case.expected)
    for name, a, e in zip(case.sub.outputs, actual, case.expected):
        a = np.asarray(a)
        want = _out_dtype(case, name)
        assert a.dtype == want, f"{where}: output {name} is {a.dtype}, not {want}"
        assert a.shape == e.shape, f"{where}: output {name} has shape {a.shape}, not {e.shape}"
        if a.dtype.kind in "biu":
            np.testing.assert_array_equal(a, e.astype(a.dtype), err_msg=f"{where}: {name}")
        else:
            rtol, atol = case.tol
            np.testing.assert_allclose(
                a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                equal_nan=True, err_msg=f"{where}: {name}",
            )  # fmt: skip


def _out_dtype(case: Case, name: str) -> np.dtype:
    elem = next(o for o in case.model.graph.output if o.name == name).type.tensor_type.elem_type
    return BF16 if elem == TensorProto.BFLOAT16 else np.dtype(helper.tensor_dtype_to_np_dtype(elem))


# -- host logic: the stand-in interpreter against onnxruntime ---------------------------------
@pytest.mark.parametrize(("spec", "dt"), CASES, ids=CASE_IDS)
def test_standin_interpreter_matches_onnxruntime(spec, dt):
    import array_api_compat.numpy as xp

    case = _case(spec.name, dt.name)
    run = fusion.compile_chain(case.sub, case.opsets, SimpleNamespace(native=False, xp=xp))
    _check(case, run(*case.inputs), "stand-in (numpy)")


STRICT = [(s, dt) for s, dt in CASES if dt not in (F16, BF16)]


@pytest.mark.parametrize(("spec", "dt"), STRICT, ids=[f"{s.name}-{d.name}" for s, d in STRICT])
def test_standin_interpreter_is_strict_array_api(spec, dt):
    """The stand-in device's arrays are array_api_strict's (no float16 there)."""
    xp = pytest.importorskip("array_api_strict")
    case = _case(spec.name, dt.name)
    run = fusion.compile_chain(case.sub, case.opsets, SimpleNamespace(native=False, xp=xp))
    got = run(*(xp.asarray(a) for a in case.inputs))
    _check(case, [np.from_dlpack(g) for g in got], "stand-in (array_api_strict)")


# -- host logic: the layout of one launch -----------------------------------------------------
def _plan(nodes, inputs, outputs, inits=()):
    view = _view(_model(nodes, inputs, outputs, inits))
    sub = _extract(view, [n for n in view.graph.nodes])
    return fusion._make_plan(sub, {k: dt for k, (dt, _) in inputs.items()}, view.opsets)


def test_layout_merges_dimensions_and_broadcasts_with_zero_strides():
    nodes = [N("Add", ["x", "z"], "a"), N("Relu", ["a"], "y")]
    plan = _plan(nodes, {"x": (F32, [2, 3, 4]), "z": (F32, [4])}, {"y": (F32, [2, 3, 4])})
    x, z = np.zeros((2, 3, 4), np.float32), np.zeros(4, np.float32)
    lay = fusion._layout(plan, [x, z])
    n, rank, *rest = (int(v) for v in lay.scalars)
    dims, s0, s1 = rest[:8], rest[8:16], rest[16:24]
    assert (lay.shape, n, rank, lay.fallback) == ((2, 3, 4), 24, 2, False)
    assert dims[:2] == [4, 6] and s0[:2] == [1, 4] and s1[:2] == [1, 0]
    # same shapes merge to one dimension; a transposed input keeps its strides
    lay = fusion._layout(plan, [x, np.zeros((2, 3, 4), np.float32)])
    assert int(lay.scalars[1]) == 1
    xt = np.zeros((4, 3, 2), np.float32).transpose(2, 1, 0)
    lay = fusion._layout(plan, [xt, z])
    rest = [int(v) for v in lay.scalars[2:]]
    assert int(lay.scalars[1]) == 3 and rest[8:11] == [6, 2, 1]  # innermost first


def test_layout_falls_back_for_smaller_outputs_and_high_ranks():
    nodes = [N("Exp", ["x"], "a"), N("Neg", ["a"], "b"), N("Add", ["a", "z"], "y")]
    plan = _plan(nodes, {"x": (F32, None), "z": (F32, None)}, {"b": (F32, None), "y": (F32, None)})
    assert fusion._layout(
        plan, [np.zeros((2, 1), np.float32), np.zeros((2, 3), np.float32)]
    ).fallback
    assert not fusion._layout(plan, [np.zeros((2, 3), np.float32)] * 2).fallback
    # nine dimensions that cannot merge (every other one broadcasts)
    shape_x = (2, 1) * 4 + (2,)
    shape_z = (1, 2) * 4 + (1,)
    lay = fusion._layout(plan, [np.zeros(shape_x, np.float32), np.zeros(shape_z, np.float32)])
    assert lay.fallback
    with pytest.raises(Exception, match="do not broadcast"):
        fusion._layout(plan, [np.zeros((2, 3), np.float32), np.zeros((4,), np.float32)])


def test_generated_names_are_distinct_and_literals_exact():
    srcs = {}
    for spec, dt in CASES:
        case = _case(spec.name, dt.name)
        src, name = fusion.generate(
            case.sub, dict(zip(case.sub.inputs, (a.dtype for a in case.inputs))), case.opsets
        )
        assert f" {name}(" in src and src.count('extern "C" __global__') == 1
        srcs[name] = src
    assert len(srcs) == len(CASES)
    assert fusion._float_literal(0.1, "float") == "0x1.99999a0000000p-4f"
    assert float.fromhex(fusion._float_literal(0.1, "double")) == 0.1
    assert fusion._float_literal(-2.5, "double") == "(-0x1.4000000000000p+1)"
    assert fusion._float_literal(math.inf, "float") == "ORT_INF_F"
    assert fusion._literal(np.int64(-(2**63)), I64) == "((long long)(-9223372036854775807LL - 1))"
    assert fusion._literal(np.float16(0.1), F16) == "0x1.9980000000000p-4f"


def test_standin_outputs_never_alias_inputs():
    """Cast to the same type and a one-input Max compute nothing: the output is still a new
    array (the caller may write into it)."""
    import array_api_compat.numpy as xp

    nodes = [N("Cast", ["x"], "c", to=TensorProto.FLOAT), N("Max", ["c"], "y")]
    view = _view(_model(nodes, X, Y))
    (chain,) = fusion.find_chains(view, lambda n: True)
    run = fusion.compile_chain(
        _extract(view, chain), view.opsets, SimpleNamespace(native=False, xp=xp)
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = run(x)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(x, y)


def test_unsupported_chains_are_refused_at_compile():
    from ort_core.errors import EPFail

    nodes = [N("Exp", ["x"], "a"), N("MatMul", ["a", "a"], "y")]
    view = _view(_model(nodes, {"x": (F32, [2, 2])}, {"y": (F32, [2, 2])}))
    sub = _extract(view, list(view.graph.nodes))
    with pytest.raises(EPFail, match="cannot be fused"):
        fusion.compile_chain(sub, view.opsets, SimpleNamespace(native=False, xp=np))
    with pytest.raises(fusion.FusionError):
        fusion.generate(sub, {"x": F32})


# -- translation: NVRTC compiles; it does not run ---------------------------------------------
def _sources(dtname: str) -> list[str]:
    out = []
    for spec, dt in CASES:
        if dt.name == dtname:
            case = _case(spec.name, dt.name)
            types = dict(zip(case.sub.inputs, (a.dtype for a in case.inputs)))
            out.append(fusion.generate(case.sub, types, case.opsets)[0])
    return out


DTYPE_NAMES = sorted({dt.name for _, dt in CASES})


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvrtc_compiles_every_chain(arch):
    """Translation: NVRTC compiles; it does not run. Every chain of every element type, in one
    program per architecture (the preamble is guarded, so the sources concatenate); every
    kernel is in the cubin."""
    pytest.importorskip("cupy")
    from ort_cuda.nvrtc import ARCHES, compile_source

    assert arch in ARCHES
    sources = [src for name in DTYPE_NAMES for src in _sources(name)]
    assert len(sources) == len(CASES)
    compiled = compile_source("\n".join(sources), arch)  # with nvrtc.include_options()
    for src in sources:
        name, _ = emu.kernel_params(src)
        assert name.encode() in compiled.cubin


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvrtc_compiles_one_chain_alone(arch):
    """Translation: NVRTC compiles; it does not run. One source as the native path compiles
    it (headers and preamble included once)."""
    pytest.importorskip("cupy")
    from ort_cuda.nvrtc import compile_source

    (src,) = [s for s in _sources("bfloat16") if "__nv_bfloat16*" in s][:1]
    name, _ = emu.kernel_params(src)
    assert name.encode() in compile_source(src, arch).cubin


def test_nvrtc_arches_are_covered():
    from ort_cuda.nvrtc import ARCHES

    assert set(ARCHES) == {"sm_80", "sm_90"}


# -- host emulation of the generated CUDA C ---------------------------------------------------
needs_cxx = pytest.mark.skipif(emu.compiler() is None, reason="no C++ compiler for the emulation")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """All generated kernels compiled into one host library."""
    if emu.compiler() is None:
        pytest.skip("no C++ compiler for the emulation")
    sources = [s for name in DTYPE_NAMES for s in _sources(name)]
    return emu.Library(sources, tmp_path_factory.mktemp("fused"))


@needs_cxx
@pytest.mark.parametrize(("spec", "dt"), CASES, ids=CASE_IDS)
def test_emulated_kernel_matches_onnxruntime(emulated, spec, dt):
    """Host emulation of the generated CUDA C."""
    case = _case(spec.name, dt.name)
    plan = fusion._make_plan(case.sub, [a.dtype for a in case.inputs], case.opsets)
    _check(case, emu.run_plan(emulated, plan, case.inputs), "emulated kernel")


@needs_cxx
def test_emulated_kernel_reads_strided_and_broadcast_inputs(emulated):
    """Host emulation of the generated CUDA C: non-contiguous inputs are read in place."""
    case = _case("sqrt_log", "float32")
    plan = fusion._make_plan(case.sub, [a.dtype for a in case.inputs], case.opsets)
    x, y = case.inputs
    xt = np.ascontiguousarray(x.transpose(2, 1, 0)).transpose(2, 1, 0)  # same values, strided
    yr = np.ascontiguousarray(y[::-1])[::-1]
    assert not xt.flags.c_contiguous and yr.strides[0] < 0
    _check(case, emu.run_plan(emulated, plan, [xt, yr]), "emulated kernel, strided")


def _ties(values: np.ndarray, dt: np.dtype) -> np.ndarray:
    """The midpoints between each value of type ``dt`` and the next one up (exact in float32)."""
    v = values.astype(dt)
    v = v[np.isfinite(v.astype(np.float64))]
    up = np.nextafter(v, np.array(np.inf, dtype=dt)) if dt != BF16 else _next_bf16(v)
    mid = (v.astype(np.float64) + up.astype(np.float64)) / 2
    return mid[np.isfinite(mid)].astype(np.float32)


def _next_bf16(v: np.ndarray) -> np.ndarray:
    bits = v.view(np.uint16).astype(np.int32)
    step = np.where(v.astype(np.float32) >= 0, 1, -1)
    step = np.where(bits == 0x8000, 0x8001 - 0x8000, step)  # -0 -> smallest positive
    return np.where(bits == 0x8000, 1, bits + step).astype(np.uint16).view(BF16)


@needs_cxx
def test_emulated_half_conversions_round_to_nearest_even(tmp_path):
    """Host emulation of the generated CUDA C: the stand-in __half/__nv_bfloat16 conversions
    agree with numpy's float16 and ml_dtypes' bfloat16 on every float16, on ties, overflow and
    subnormals."""
    conv = emu.Conversions(tmp_path)
    rng = np.random.default_rng(1)
    with np.errstate(invalid="ignore", over="ignore"):
        every_half = np.arange(2**16, dtype=np.uint16).view(np.float16)
        vals = np.concatenate(
            [
                rng.standard_normal(4000) * 10.0 ** rng.integers(-9, 7, 4000),
                every_half.astype(np.float32),
                _ties(every_half, F16),
                _ties(rng.standard_normal(4000).astype(np.float32) * 100, BF16),
                [65504, 65519, 65520, 1e6, -1e-8, 6e-8, 2.0**-25, 3 * 2.0**-26, np.inf, -np.inf],
            ]
        ).astype(np.float32)
        finite = vals[~np.isnan(vals)]
        np.testing.assert_array_equal(conv.to_half(finite), finite.astype(F16).view(np.uint16))
        np.testing.assert_array_equal(conv.to_bf16(finite), finite.astype(BF16).view(np.uint16))
        nan = conv.to_half(np.array([np.nan], np.float32)).view(F16)
        assert (
            np.isnan(nan).all()
            and np.isnan(conv.to_bf16(np.array([np.nan], np.float32)).view(BF16)).all()
        )
        bits = every_half.view(np.uint16)
        np.testing.assert_array_equal(conv.from_half(bits), every_half.astype(np.float32))


NATIVE = ["bias_act-float16", "variadic-float32", "casts-bfloat16", "int_arith-int64",
          "logic-float64", "shift-uint8"]  # fmt: skip


@needs_cxx
@pytest.mark.parametrize("case_id", NATIVE)
def test_native_path_end_to_end_on_emulated_cupy(emulated, case_id, tmp_path):
    """Host emulation of the generated CUDA C: ``compile_chain`` on a native device whose cupy
    compiles modules for the host: compiled once, launched per call, the host layout cached per
    input layout, constants uploaded once, outputs allocated with ``cp.empty``."""
    name, dtname = case_id.rsplit("-", 1)
    case = _case(name, dtname)
    dev = emu.FakeNativeDevice(tmp_path, emulated)
    run = fusion.compile_chain(case.sub, case.opsets, dev)
    assert len(dev.cp.compiled) == 1  # input types known: compiled at once
    code, options = dev.cp.compiled[0]
    assert options == nvrtc.OPTIONS
    for _ in range(2):
        _check(case, run(*case.inputs), "native path on emulated cupy")
    assert len(dev.cp.compiled) == 1 and len(dev.cp.functions[0].launches) == 2
    plan = fusion._make_plan(case.sub, [a.dtype for a in case.inputs], case.opsets)
    assert dev.uploads == len(plan.constants)


@needs_cxx
def test_native_path_launches_nothing_for_empty_outputs(emulated, tmp_path):
    """Host emulation of the generated CUDA C: zero output elements, no launch."""
    case = _case("variadic", "float32")
    dev = emu.FakeNativeDevice(tmp_path, emulated)
    run = fusion.compile_chain(case.sub, case.opsets, dev)
    (out,) = run(*(a[..., :0] for a in case.inputs))
    assert out.shape == (3, 0) and out.dtype == F32
    assert not dev.cp.functions[0].launches


@needs_cxx
def test_native_path_runs_op_by_op_where_the_kernel_does_not_apply(tmp_path):
    """A written value smaller than the broadcast shape (unknown statically) runs op by op."""
    nodes = [N("Exp", ["x"], "a"), N("Neg", ["a"], "b"), N("Add", ["a", "z"], "y")]
    shapes = {"x": (F32, None), "z": (F32, None)}
    view = _view(_model(nodes, shapes, {"b": (F32, None), "y": (F32, None)}))
    (chain,) = fusion.find_chains(view, lambda n: True)
    sub = _extract(view, chain)
    dev = emu.FakeNativeDevice(tmp_path)
    run = fusion.compile_chain(sub, view.opsets, dev)
    x = np.linspace(-1, 1, 2, dtype=np.float32).reshape(2, 1)
    z = np.ones((2, 3), np.float32)
    b, y = run(x, z)
    np.testing.assert_allclose(b, -np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(y, np.exp(x) + z, rtol=1e-6)
    assert not dev.cp.functions[0].launches
    b, y = run(np.ones((2, 3), np.float32), z)
    assert b.shape == (2, 3) and len(dev.cp.functions[0].launches) == 1
