"""The shared com.microsoft contrib kernels (ort_array.kernels.contrib: the fused ops the optimizer
creates) node by node: against onnxruntime on the provider that has nothing but the shared
kernels, and on array_api_strict against the same kernels on numpy.

onnxruntime's CPU provider has no kernel for some of the cases (BiasAdd and BiasSplitGelu run on
CUDA only, FusedGemm without an activation or with an activation parameter left to its default,
float64 Gelu/BiasGelu/FusedGemm): those give a numpy formula as their oracle instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import numpy as np
import ort_array
import pytest

from tests.differential.harness import assert_same, make_node_model

from . import test_vs_onnxruntime
from ._providers import STRICT_TYPES, ArrayNumpyProvider, ArrayStrictProvider
from .cases import F16, F32, F64, Case, r, tol
from .test_vs_onnxruntime import run_shared

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"


@dataclass
class ContribCase(Case):
    """A :class:`Case` of a com.microsoft op; ``omit`` lists outputs left unnamed (omitted
    optional outputs), ``oracle`` computes the expected outputs where onnxruntime cannot."""

    domain: str = MS
    omit: tuple[int, ...] = ()
    oracle: Callable | None = None


def build(omit: tuple[int, ...] = ()) -> Callable:
    """``make_node_model`` whose node leaves its outputs ``omit`` unnamed."""

    def make(op, inputs, attrs=None, *, opset=None, n_outputs=1, domain=""):
        model, feeds = make_node_model(
            op, inputs, attrs, opset=opset, domain=domain, n_outputs=n_outputs
        )
        node = model.graph.node[0]
        names = ["" if i in omit else n for i, n in enumerate(node.output)]
        del node.output[:]
        node.output.extend(names)
        kept = [o for o in model.graph.output if o.name in names]
        del model.graph.output[:]
        model.graph.output.extend(kept)
        return model, feeds

    return make


def run_contrib(case: ContribCase, provider: str, register_provider, cls=ArrayNumpyProvider):
    """:func:`run_shared` on the node of ``case``; with omitted outputs, which run_shared's model
    builder does not make, that builder is swapped for :func:`build`'s while it runs."""
    if not case.omit:
        return run_shared(case, provider, register_provider, cls)
    with mock.patch.object(test_vs_onnxruntime, "make_node_model", build(case.omit)):
        return run_shared(case, provider, register_provider, cls)


def run_onnxruntime(case: ContribCase) -> list:
    if case.oracle is not None:
        out = case.oracle(*case.inputs)
        return list(out) if isinstance(out, tuple) else [out]
    model, feeds = build(case.omit)(
        case.op, case.inputs, case.attrs, opset=case.opset, n_outputs=case.n_outputs,
        domain=case.domain,
    )  # fmt: skip
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# -- numpy oracles (float64, cast back) -------------------------------------------------------------
_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _oracle(fn: Callable) -> Callable:
    def run(*xs):
        return fn(*(None if x is None else x.astype(F64) for x in xs)).astype(xs[0].dtype)

    return run


ACTS = {  # FusedGemm activation -> (attributes, f(y) with them)
    "Relu": ({}, lambda y: np.maximum(y, 0)),
    "Tanh": ({}, np.tanh),
    "Sigmoid": ({}, lambda y: 1 / (1 + np.exp(-y))),
    "Softsign": ({}, lambda y: y / (1 + np.abs(y))),
    "Softplus": ({}, lambda y: np.logaddexp(y, 0)),
    "LeakyRelu": ({"activation_alpha": 0.2}, lambda y: np.where(y >= 0, y, 0.2 * y)),
    "Elu": ({"activation_alpha": 0.7}, lambda y: np.where(y > 0, y, 0.7 * np.expm1(y))),
    "Celu": (
        {"activation_alpha": 0.7},
        lambda y: np.maximum(y, 0) + np.minimum(0, 0.7 * np.expm1(y / 0.7)),
    ),
    "ThresholdedRelu": ({"activation_alpha": 0.4}, lambda y: np.where(y > 0.4, y, 0)),
    "HardSigmoid": (
        {"activation_alpha": 0.3, "activation_beta": 0.4},
        lambda y: np.clip(0.3 * y + 0.4, 0, 1),
    ),
    "Selu": (
        {"activation_alpha": 1.5, "activation_gamma": 1.2},
        lambda y: 1.2 * np.where(y > 0, y, 1.5 * np.expm1(y)),
    ),
    "ScaledTanh": (
        {"activation_alpha": 0.7, "activation_beta": 2.0},
        lambda y: 0.7 * np.tanh(2.0 * y),
    ),
    "ParametricSoftplus": (
        {"activation_alpha": 0.7, "activation_beta": 2.0},
        lambda y: 0.7 * np.logaddexp(2.0 * y, 0),
    ),
}


def _gemm_oracle(act: str | None, alpha=1.0, beta=1.0, ta=0, tb=0, defaults=None) -> Callable:
    f = (defaults or ACTS[act][1]) if act else (lambda y: y)

    def run(a, b, c=None):
        y = alpha * ((a.T if ta else a) @ (b.T if tb else b))
        return f(y if c is None else y + beta * c)

    return _oracle(run)


def _skip_norm_oracle(simplified: bool, eps: float, outputs: int, omit=()):
    def run(x, skip, gamma, beta=None, bias=None):
        if simplified:
            beta, bias = None, beta
        dt = x.dtype
        s = x.astype(F64) + skip + (0 if bias is None else bias)
        mean = np.zeros_like(s[..., :1]) if simplified else s.mean(-1, keepdims=True)
        d = s - mean
        inv = 1 / np.sqrt((d * d).mean(-1, keepdims=True) + eps)
        y = d * inv * gamma + (0 if beta is None else beta)
        out = (y.astype(dt), mean.astype(F32), inv.astype(F32), s.astype(dt))[:outputs]
        return tuple(v for i, v in enumerate(out) if i not in omit)

    return run


# -- cases -----------------------------------------------------------------------------------------
CASES: list[ContribCase] = []


def add(*cases: ContribCase) -> None:
    CASES.extend(cases)


for dt in (F32, F16):
    x, b = r(2, 3, 8, dtype=dt), r(8, dtype=dt)
    add(
        ContribCase("Gelu", [x], **tol(dt)),
        ContribCase("BiasGelu", [x, b], **tol(dt)),
        ContribCase("BiasGelu", [x[0], b], tag="2d", **tol(dt)),
        ContribCase("FastGelu", [x], **tol(dt)),
        ContribCase("FastGelu", [x, b], tag="bias", **tol(dt)),
        ContribCase("QuickGelu", [x], **tol(dt)),
        ContribCase("QuickGelu", [x], {"alpha": 1.2}, tag="alpha", **tol(dt)),
        ContribCase(
            "BiasAdd",
            [x, b, r(2, 3, 8, dtype=dt)],
            oracle=_oracle(lambda x, b, s: x + b + s),
            **tol(dt),
        ),
        ContribCase(
            "BiasSplitGelu",
            [x, b],
            oracle=_oracle(lambda x, b: (x + b)[..., :4] * _gelu((x + b)[..., 4:])),
            **tol(dt),
        ),
    )
add(
    ContribCase("Gelu", [np.linspace(-7, 7, 29).astype(F32)], tag="range"),
    ContribCase("Gelu", [np.array(0.7, F32)], tag="0d"),
    ContribCase("QuickGelu", [np.array(-0.7, F32)], tag="0d"),
    ContribCase("Gelu", [r(3, 4, dtype=F64)], oracle=_oracle(_gelu)),
    ContribCase(
        "BiasGelu", [r(3, 4, dtype=F64), r(4, dtype=F64)], oracle=_oracle(lambda a, b: _gelu(a + b))
    ),
    ContribCase("FastGelu", [r(3, 4, dtype=F64), r(4, dtype=F64)], tag="bias"),
    ContribCase("QuickGelu", [r(3, 4, dtype=F64)], {"alpha": 1.5}),
)

# FusedMatMul: (A, B, attributes, tag)
MATMULS = [
    ((3, 4), (4, 5), {}, "2d"),
    ((3, 4), (4, 5), {"alpha": 0.5}, "alpha"),
    ((4, 3), (5, 4), {"transA": 1, "transB": 1, "alpha": 2.0}, "trans"),
    ((2, 3, 4), (4, 5), {}, "batch"),
    ((1, 3, 4), (2, 4, 5), {"transB": 0}, "bcast"),
    ((2, 1, 3, 4), (3, 5, 4), {"transB": 1}, "bcast4d"),
    ((3, 2, 4), (2, 4, 5), {"transBatchA": 1}, "tbA"),
    ((2, 3, 4), (4, 2, 5), {"transBatchB": 1}, "tbB"),
    ((4, 2, 3), (2, 4, 5), {"transBatchA": 1, "transA": 1}, "tbA-tA"),
    ((2, 3, 4), (5, 2, 4), {"transBatchB": 1, "transB": 1, "alpha": 0.3}, "tbB-tB"),
    ((3, 2, 2, 4), (2, 2, 4, 5), {"transBatchA": 1}, "tbA4d"),
    (
        (3, 2, 4),
        (5, 2, 3),
        {"transBatchA": 1, "transBatchB": 1, "transA": 1, "transB": 1},
        "tb-all",
    ),
    ((4,), (4, 5), {}, "vec-mat"),
    ((3, 4), (4,), {}, "mat-vec"),
]
for sa, sb, attrs, tag in MATMULS:
    for dt in (F32, F16, F64):
        add(ContribCase("FusedMatMul", [r(*sa, dtype=dt), r(*sb, dtype=dt)], attrs, tag=tag,
                        **tol(dt)))  # fmt: skip

# FusedGemm: every activation; float16 where onnxruntime runs it (Relu, LeakyRelu, Tanh)
for act, (act_attrs, _) in ACTS.items():
    attrs = {"activation": act, **act_attrs}
    add(ContribCase("FusedGemm", [r(3, 4), r(4, 5), r(5)], attrs, tag=act))
    add(ContribCase("FusedGemm", [r(3, 4, dtype=F64), r(4, 5, dtype=F64), r(5, dtype=F64)], attrs,
                    tag=act, oracle=_gemm_oracle(act)))  # fmt: skip
for act in ("Relu", "LeakyRelu", "Tanh"):
    attrs = {"activation": act, **ACTS[act][0]}
    add(ContribCase("FusedGemm", [r(3, 4, dtype=F16), r(4, 5, dtype=F16), r(5, dtype=F16)], attrs,
                    tag=act, **tol(F16)))  # fmt: skip
for c_shape, tag in (((3, 5), "c2d"), ((3, 1), "ccol"), ((1,), "cscalar"), (None, "noc")):
    c = None if c_shape is None else r(*c_shape)
    attrs = {"activation": "LeakyRelu", "activation_alpha": 0.1, "alpha": 0.5, "beta": 2.0,
             "transA": 1, "transB": 1}  # fmt: skip
    add(ContribCase("FusedGemm", [r(4, 3), r(5, 4)] + ([c] if c is not None else []), attrs,
                    tag=tag))  # fmt: skip
add(
    # onnxruntime refuses these (no activation; an activation parameter left to its default);
    # the optimizer creates them: the ONNX defaults apply
    ContribCase(
        "FusedGemm",
        [r(3, 4), r(4, 5), r(5)],
        {"alpha": 0.5},
        tag="none",
        oracle=_gemm_oracle(None, alpha=0.5),
    ),
    ContribCase(
        "FusedGemm",
        [r(3, 4), r(4, 5), r(5)],
        {"activation": "LeakyRelu"},
        tag="LeakyRelu-default",
        oracle=_gemm_oracle("LeakyRelu", defaults=lambda y: np.where(y >= 0, y, 0.01 * y)),
    ),
    ContribCase(
        "FusedGemm",
        [r(3, 4), r(4, 5), r(5)],
        {"activation": "Selu"},
        tag="Selu-default",
        oracle=_gemm_oracle(
            "Selu",
            defaults=lambda y: (
                1.0507009873554805 * np.where(y > 0, y, 1.6732632423543772 * np.expm1(y))
            ),
        ),
    ),
    ContribCase(
        "FusedGemm",
        [r(3, 4), r(4, 5), r(5)],
        {"activation": "HardSigmoid", "activation_alpha": 0.3},
        tag="HardSigmoid-beta",
        oracle=_gemm_oracle("HardSigmoid", defaults=lambda y: np.clip(0.3 * y + 0.5, 0, 1)),
    ),
)

# SkipLayerNormalization: input, skip, gamma, beta, bias -> output, mean, inv_std_var, sum
for dt in (F32, F16):
    x, s = r(2, 3, 8, dtype=dt), r(2, 3, 8, dtype=dt)
    g, be, bi = r(8, dtype=dt), r(8, dtype=dt), r(8, dtype=dt)
    t = tol(dt)
    add(
        ContribCase(
            "SkipLayerNormalization",
            [x, s, g, be, bi],
            {"epsilon": 1e-5},
            n_outputs=4,
            tag="all",
            **t,
        ),
        ContribCase("SkipLayerNormalization", [x, s, g], tag="plain", **t),
        ContribCase(
            "SkipLayerNormalization", [x, s, g, None, bi], {"epsilon": 1e-3}, tag="nobeta", **t
        ),
        ContribCase("SkipLayerNormalization", [x, s, g, be], n_outputs=2, tag="mean", **t),
        ContribCase(
            "SkipLayerNormalization", [x, s, g, be, bi], n_outputs=3, omit=(1,), tag="inv", **t
        ),
        ContribCase(
            "SkipLayerNormalization", [x, s, g, be, bi], n_outputs=4, omit=(1, 2), tag="sum", **t
        ),
        ContribCase("SkipLayerNormalization", [x, s[0], g, be, bi], n_outputs=4, tag="skip2d", **t),
        ContribCase("SkipLayerNormalization", [x, s[:1], g, be], n_outputs=4, tag="skip1SH", **t),
        ContribCase("SkipLayerNormalization", [x[0], s[0], g, be, bi], n_outputs=4, tag="2d", **t),
        ContribCase(
            "SkipSimplifiedLayerNormalization",
            [x, s, g, bi],
            {"epsilon": 1e-5},
            n_outputs=4,
            tag="all",
            **t,
        ),
        ContribCase("SkipSimplifiedLayerNormalization", [x, s, g], tag="plain", **t),
        ContribCase(
            "SkipSimplifiedLayerNormalization",
            [x, s, g, bi],
            n_outputs=3,
            omit=(1,),
            tag="inv",
            **t,
        ),
        ContribCase(
            "SkipSimplifiedLayerNormalization", [x, s, g], n_outputs=4, omit=(1, 2), tag="sum", **t
        ),
        ContribCase(
            "SkipSimplifiedLayerNormalization", [x, s[0], g, bi], n_outputs=4, tag="skip2d", **t
        ),
        ContribCase(
            "SkipSimplifiedLayerNormalization", [x[0], s[0], g], n_outputs=2, tag="2d", **t
        ),
    )
x64 = [r(2, 3, 8, dtype=F64) for _ in range(2)] + [r(8, dtype=F64) for _ in range(3)]
add(  # float64 is outside the schemas' types: for array_api_strict, against a numpy formula
    ContribCase(
        "SkipLayerNormalization",
        x64,
        {"epsilon": 1e-5},
        n_outputs=4,
        tag="all",
        oracle=_skip_norm_oracle(False, 1e-5, 4),
    ),
    ContribCase(
        "SkipSimplifiedLayerNormalization",
        x64[:4],
        n_outputs=4,
        omit=(1,),
        tag="inv",
        oracle=_skip_norm_oracle(True, 1e-12, 4, omit=(1,)),
    ),
)


# -- tests -----------------------------------------------------------------------------------------
def _ids(cases: list[ContribCase]) -> list[str]:
    return [f"{c.id}-omit{''.join(map(str, c.omit))}" if c.omit else c.id for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_matches_onnxruntime(case: ContribCase, register_provider) -> None:
    expected = run_onnxruntime(case)
    got = run_contrib(case, "ArrayNumpyExecutionProvider", register_provider)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, case.rtol, case.atol, f"{case.id} output {i}")


STRICT_CASES = [
    c for c in CASES if all(x is None or np.asarray(x).dtype in STRICT_TYPES for x in c.inputs)
]


@pytest.mark.parametrize("case", STRICT_CASES, ids=_ids(STRICT_CASES))
def test_strict_matches_numpy(case: ContribCase, register_provider) -> None:
    on_numpy = run_contrib(case, "ArrayNumpyExecutionProvider", register_provider)
    on_strict = run_contrib(
        case, "ArrayStrictExecutionProvider", register_provider, ArrayStrictProvider
    )
    assert len(on_numpy) == len(on_strict)
    for i, (e, g) in enumerate(zip(on_numpy, on_strict)):
        assert_same(e, g, 1e-6, 1e-7, f"{case.id} output {i}")


def test_every_contrib_op_has_cases() -> None:
    """Every com.microsoft shared kernel has cases here, in float32 and float16."""
    from ort_array import _table
    from ort_array.kernels import contrib

    ort_array.ops()  # loads the families
    specs = [s for s in _table.SPECS if s.fn.__module__ == contrib.__name__]
    assert specs and all(s.domain == MS for s in specs)
    ops = {s.op_type for s in specs}
    assert ops == {c.op for c in CASES}
    for dt in (F32, F16):
        assert ops == {c.op for c in CASES if np.asarray(c.inputs[0]).dtype == dt}


def test_ids_are_unique() -> None:
    assert len(set(_ids(CASES))) == len(CASES)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"activation": "Clip"}, "activation 'Clip' is not one of"),
        (
            {"activation": "ScaledTanh", "activation_beta": 1.0},
            "needs the attribute activation_alpha",
        ),
        (
            {"activation": "ScaledTanh", "activation_alpha": 1.0},
            "needs the attribute activation_beta",
        ),
    ],
)
def test_fused_gemm_rejects_what_onnxruntime_rejects(attrs, reason, register_provider) -> None:
    case = ContribCase("FusedGemm", [r(3, 4), r(4, 5)], attrs)
    with pytest.raises(Exception, match=reason):
        run_contrib(case, "ArrayNumpyExecutionProvider", register_provider)


def test_bias_split_gelu_needs_an_even_last_dimension(register_provider) -> None:
    case = ContribCase("BiasSplitGelu", [r(2, 5), r(5)])
    with pytest.raises(Exception, match="the last dimension of X must be even, got 5"):
        run_contrib(case, "ArrayNumpyExecutionProvider", register_provider)
