"""com.microsoft contrib kernels: the fused ops ort-core's optimizer creates at the EXTENDED level,
with onnxruntime's semantics (inputs, outputs, attributes and defaults as in onnxruntime's
ContribOperators documentation). A provider that registers them gets those fusions.

Gelu, BiasGelu, FastGelu, QuickGelu, BiasAdd, BiasSplitGelu; FusedMatMul, FusedGemm;
SkipLayerNormalization, SkipSimplifiedLayerNormalization.

float16 and bfloat16 are computed in float32 (as onnxruntime accumulates) and cast back; float64
stays float64. The normalizations' mean and inv_std_var outputs are float32, as the ops define.
"""

from __future__ import annotations

import math
from typing import Any

from ort_core.provider import FLOAT_TYPES, is_multi_output

from .._table import builder, kernel
from .._xp import cast, matmul, namespace, widened
from .elementwise import (
    _out,
    _sigmoid,
    _softplus,
    celu,
    elu,
    erf,
    hard_sigmoid,
    leaky_relu,
    selu,
    thresholded_relu,
)

MS = "com.microsoft"


def _w(xp: Any, x: Any, like: Any) -> Any:
    """``x`` widened, in the type of ``like`` (an input's computing type)."""
    return cast(xp, widened(xp, x), like.dtype)


# -- Gelu family ------------------------------------------------------------------------------------
def gelu_exact(xp: Any, w: Any) -> Any:
    return 0.5 * w * (1 + erf(xp, w * (1 / math.sqrt(2))))


def gelu_tanh(xp: Any, w: Any) -> Any:
    return 0.5 * w * (1 + xp.tanh((w + 0.044715 * w * w * w) * math.sqrt(2 / math.pi)))


@kernel("Gelu", domain=MS, dtypes=FLOAT_TYPES)
def gelu(x):
    xp = namespace(x)
    return _out(xp, gelu_exact(xp, widened(xp, x)), x.dtype)


@kernel("BiasGelu", domain=MS, dtypes=FLOAT_TYPES)
def bias_gelu(a, b):
    """Gelu(A + B), B broadcast onto A (a bias along the last axis)."""
    xp = namespace(a)
    w = widened(xp, a)
    return _out(xp, gelu_exact(xp, w + _w(xp, b, w)), a.dtype)


@kernel("FastGelu", domain=MS, dtypes=FLOAT_TYPES)
def fast_gelu(x, bias=None):
    """The tanh approximation of Gelu(X + bias)."""
    xp = namespace(x)
    w = widened(xp, x)
    if bias is not None:
        w = w + _w(xp, bias, w)
    return _out(xp, gelu_tanh(xp, w), x.dtype)


@kernel("QuickGelu", domain=MS, dtypes=FLOAT_TYPES)
def quick_gelu(x, alpha=1.702):
    """X * Sigmoid(alpha * X)."""
    xp = namespace(x)
    w = widened(xp, x)
    return _out(xp, w * _sigmoid(xp, w * alpha), x.dtype)


@kernel("BiasAdd", domain=MS, dtypes=FLOAT_TYPES)
def bias_add(x, bias, skip):
    """X + bias + skip."""
    xp = namespace(x)
    w = widened(xp, x)
    return _out(xp, w + _w(xp, bias, w) + _w(xp, skip, w), x.dtype)


def _even_last_dim(info) -> str | None:
    shape = info.input_shape(0)
    if shape and isinstance(shape[-1], int) and shape[-1] % 2:
        return f"the last dimension of X must be even, got {shape[-1]}"
    return None


@kernel("BiasSplitGelu", domain=MS, dtypes=FLOAT_TYPES, check=_even_last_dim)
def bias_split_gelu(x, bias):
    """X + bias split in two halves along the last axis: left * Gelu(right)."""
    xp = namespace(x)
    w = widened(xp, x)
    s = w + _w(xp, bias, w)
    half = s.shape[-1] // 2
    return _out(xp, s[..., :half] * gelu_exact(xp, s[..., half:]), x.dtype)


# -- FusedMatMul, FusedGemm -----------------------------------------------------------------------
def _trans_batch(xp: Any, x: Any) -> Any:
    """Dimension 0 moved behind the batch dimensions: [d0, d1.. dk, dn] -> [d1.. dk, d0, dn]."""
    if x.ndim < 3:
        return x
    return xp.permute_dims(x, (*range(1, x.ndim - 1), 0, x.ndim - 1))


def _prepare(xp: Any, x: Any, trans_batch: int, trans: int) -> Any:
    w = widened(xp, x)
    if trans_batch:
        w = _trans_batch(xp, w)
    if trans and w.ndim >= 2:
        w = xp.matrix_transpose(w)
    return w


@kernel("FusedMatMul", domain=MS, dtypes=FLOAT_TYPES)
def fused_matmul(a, b, alpha=1.0, transA=0, transB=0, transBatchA=0, transBatchB=0):  # noqa: N803
    """alpha * A' @ B': transBatch moves the first dimension behind the batch dimensions, trans
    then swaps the last two."""
    xp = namespace(a)
    y = matmul(xp, _prepare(xp, a, transBatchA, transA), _prepare(xp, b, transBatchB, transB))
    if alpha != 1.0:
        y = y * alpha
    return _out(xp, y, a.dtype)


def _scaled_tanh(xp: Any, y: Any, alpha: float, beta: float) -> Any:
    return xp.tanh(y * beta) * alpha


def _parametric_softplus(xp: Any, y: Any, alpha: float, beta: float) -> Any:
    return _softplus(xp, y * beta) * alpha


#: FusedGemm's activations (onnxruntime's): name -> (f(xp, y, alpha, beta, gamma), the defaults
#: of alpha, beta, gamma; None: the activation has no such parameter, REQUIRED: the node must set
#: it)
REQUIRED = object()
ACTIVATIONS = {
    "Relu": (lambda xp, y, a, b, g: xp.maximum(y, 0), None, None, None),
    "Tanh": (lambda xp, y, a, b, g: xp.tanh(y), None, None, None),
    "Sigmoid": (lambda xp, y, a, b, g: _sigmoid(xp, y), None, None, None),
    "Softsign": (lambda xp, y, a, b, g: y / (xp.abs(y) + 1), None, None, None),
    "Softplus": (lambda xp, y, a, b, g: _softplus(xp, y), None, None, None),
    "LeakyRelu": (lambda xp, y, a, b, g: leaky_relu(xp, y, a), 0.01, None, None),
    "Elu": (lambda xp, y, a, b, g: elu(xp, y, a), 1.0, None, None),
    "Celu": (lambda xp, y, a, b, g: celu(xp, y, a), 1.0, None, None),
    "ThresholdedRelu": (lambda xp, y, a, b, g: thresholded_relu(xp, y, a), 1.0, None, None),
    "HardSigmoid": (lambda xp, y, a, b, g: hard_sigmoid(xp, y, a, b), 0.2, 0.5, None),
    "Selu": (
        lambda xp, y, a, b, g: selu(xp, y, a, g),
        1.67326319217681884765625,
        None,
        1.05070102214813232421875,
    ),
    "ScaledTanh": (lambda xp, y, a, b, g: _scaled_tanh(xp, y, a, b), REQUIRED, REQUIRED, None),
    "ParametricSoftplus": (
        lambda xp, y, a, b, g: _parametric_softplus(xp, y, a, b),
        REQUIRED,
        REQUIRED,
        None,
    ),
}
_PARAMS = ("alpha", "beta", "gamma")


def _check_activation(info) -> str | None:
    name = info.attr("activation")
    if not name:
        return None
    if name not in ACTIVATIONS:
        return f"activation {name!r} is not one of {sorted(ACTIVATIONS)}"
    for param, default in zip(_PARAMS, ACTIVATIONS[name][1:]):
        if default is REQUIRED and info.attr(f"activation_{param}") is None:
            return f"activation {name} needs the attribute activation_{param}"
    return None


def activation(info) -> Any:
    """``f(xp, y)`` for the node's activation and its activation_alpha/beta/gamma (None: none)."""
    name = info.attr("activation")
    if not name:
        return None
    fn, *defaults = ACTIVATIONS[name]
    a, b, g = (
        float(info.attr(f"activation_{p}", d)) if d is not None else None
        for p, d in zip(_PARAMS, defaults)
    )
    return lambda xp, y: fn(xp, y, a, b, g)


@builder("FusedGemm", domain=MS, dtypes=FLOAT_TYPES, check=_check_activation,
         attributes=("alpha", "beta", "transA", "transB", "activation", "activation_alpha",
                     "activation_beta", "activation_gamma"))  # fmt: skip
def fused_gemm(info):
    """activation(alpha * A' B' + beta * C), the activation in the accumulation type."""
    alpha = float(info.attr("alpha", 1.0))
    beta = float(info.attr("beta", 1.0))
    trans_a, trans_b = bool(info.attr("transA", 0)), bool(info.attr("transB", 0))
    act = activation(info)

    def run(a, b, c=None):
        xp = namespace(a)
        aw, bw = widened(xp, a), widened(xp, b)
        y = matmul(xp, aw.T if trans_a else aw, bw.T if trans_b else bw)
        if alpha != 1.0:
            y = y * alpha
        if c is not None and beta != 0.0:
            cw = _w(xp, c, y)
            y = y + (cw if beta == 1.0 else cw * beta)
        if act is not None:
            y = act(xp, y)
        return _out(xp, y, a.dtype)

    return run


# -- Skip(Simplified)LayerNormalization ----------------------------------------------------------------
def _skip_norm(info, simplified: bool) -> Any:
    """LayerNorm (RMSNorm when ``simplified``) over the last axis of input + skip (+ bias), skip
    broadcast onto input; outputs output, mean, inv_std_var, input_skip_bias_sum (the mean of
    the simplified form is 0, as onnxruntime writes it)."""
    epsilon = float(info.attr("epsilon", 1e-12))
    multi = is_multi_output(info.node, info.opset)
    names = list(info.node.outputs)

    def run(x, skip, gamma, beta=None, bias=None):
        xp = namespace(x)
        w = widened(xp, x)
        s = w + _w(xp, skip, w)
        if bias is not None:
            s = s + _w(xp, bias, w)
        if simplified:
            mean = xp.zeros_like(s[..., :1], dtype=xp.float32)
            inv_std = 1 / xp.sqrt(xp.mean(s * s, axis=-1, keepdims=True) + epsilon)
            y = s * inv_std * _w(xp, gamma, w)
        else:
            mean = xp.mean(s, axis=-1, keepdims=True)
            d = s - mean
            inv_std = 1 / xp.sqrt(xp.mean(d * d, axis=-1, keepdims=True) + epsilon)
            y = d * inv_std * _w(xp, gamma, w)
            if beta is not None:
                y = y + _w(xp, beta, w)
        out = _out(xp, y, x.dtype)
        if not multi:
            return out
        f32 = xp.float32
        values = (out, _out(xp, mean, f32), _out(xp, inv_std, f32), _out(xp, s, x.dtype))
        return tuple(v if i < len(names) and names[i] else None for i, v in enumerate(values))

    return run


@builder("SkipLayerNormalization", domain=MS, dtypes=FLOAT_TYPES, attributes=("epsilon",))
def skip_layer_normalization(info):
    return _skip_norm(info, simplified=False)


@builder("SkipSimplifiedLayerNormalization", domain=MS, dtypes=FLOAT_TYPES,
         attributes=("epsilon",))  # fmt: skip
def skip_simplified_layer_normalization(info):
    run = _skip_norm(info, simplified=True)

    def simplified(x, skip, gamma, bias=None):  # input 3 is the bias: there is no beta
        return run(x, skip, gamma, None, bias)

    return simplified
