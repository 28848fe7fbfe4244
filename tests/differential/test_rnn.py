"""RNN, GRU and LSTM against onnx's ReferenceEvaluator, and, for what the reference ignores
(sequence_lens, activations and their alpha/beta, clip, input_forget), against the simple
per-sequence oracle below, which follows the ONNX equations one batch entry at a time."""

from __future__ import annotations

import numpy as np
import pytest

from tests.differential.harness import assert_same, check_node, make_node_model, run_cpu

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
N_OUT = {"RNN": 2, "GRU": 2, "LSTM": 3}
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _inputs(op, seq, batch, size, hidden, direction, layout=0, dtype=np.float32, seed=0,
            bias=True, h0=True, c0=True, peep=True, seq_lens=None):  # fmt: skip
    r = np.random.default_rng(seed)
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]

    def rand(*shape):
        return (r.standard_normal(shape) * 0.7).astype(dtype)

    x = rand(seq, batch, size) if layout == 0 else rand(batch, seq, size)
    state = (nd, batch, hidden) if layout == 0 else (batch, nd, hidden)
    inputs = [x, rand(nd, g * hidden, size), rand(nd, g * hidden, hidden)]
    inputs.append(rand(nd, 2 * g * hidden) if bias else None)
    inputs.append(None if seq_lens is None else np.array(seq_lens, np.int32))
    inputs.append(rand(*state) if h0 else None)
    if op == "LSTM":
        inputs.append(rand(*state) if c0 else None)
        inputs.append(rand(nd, 3 * hidden) if peep else None)
    while inputs[-1] is None:
        inputs.pop()
    return inputs


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("dims", [(5, 3, 4, 6), (1, 1, 2, 3), (7, 2, 1, 5)])
def test_recurrent_reference(op, direction, layout, dims):
    inputs = _inputs(op, *dims, direction, layout)
    attrs = dict(hidden_size=dims[3], direction=direction, layout=layout)
    check_node(op, inputs, attrs, opset=22, n_outputs=N_OUT[op], **TOL)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(linear_before_reset, direction):
    inputs = _inputs("GRU", 4, 3, 5, 4, direction)
    attrs = dict(hidden_size=4, direction=direction, linear_before_reset=linear_before_reset)
    check_node("GRU", inputs, attrs, opset=14, n_outputs=2, **TOL)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("missing", ["bias", "h0", "c0", "peep", "all"])
def test_optional_inputs_missing(op, missing):
    names = ["bias", "h0", "c0", "peep"] if missing == "all" else [missing]
    inputs = _inputs(op, 4, 2, 3, 5, "forward", **dict.fromkeys(names, False))
    check_node(op, inputs, dict(hidden_size=5), opset=14, n_outputs=N_OUT[op], **TOL)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("opset", [7, 14])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_opsets_and_outputs(op, opset, n_outputs):
    inputs = _inputs(op, 3, 2, 3, 4, "bidirectional")
    attrs = dict(hidden_size=4, direction="bidirectional")
    check_node(op, inputs, attrs, opset=opset, n_outputs=n_outputs, **TOL)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_dtypes(op, dtype):
    inputs = _inputs(op, 4, 2, 3, 4, "forward", dtype=dtype)
    tol = {"rtol": 2e-2, "atol": 2e-2} if dtype == np.float16 else TOL
    check_node(op, inputs, dict(hidden_size=4), opset=14, n_outputs=N_OUT[op], **tol)


# -- features the reference ignores: a plain oracle --------------------------------------------
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACT = {
    "Tanh": lambda x, a, b: np.tanh(x),
    "Sigmoid": lambda x, a, b: _sigmoid(x),
    "Relu": lambda x, a, b: np.maximum(x, 0),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ThresholdedRelu": lambda x, a, b: np.where(x > a, x, 0),
    "ScaledTanh": lambda x, a, b: a * np.tanh(b * x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "Elu": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)),
    "Softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "Softplus": lambda x, a, b: np.log(1 + np.exp(x)),
}
# activations that take an alpha (beta), with the default used when the list runs out
TAKES_ALPHA = {"Affine": 1.0, "LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "ScaledTanh": 1.0,
               "HardSigmoid": 0.2, "Elu": 1.0}  # fmt: skip
TAKES_BETA = {"Affine": 0.0, "ScaledTanh": 1.0, "HardSigmoid": 0.5}
DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _bind_acts(names, alphas, betas):
    alphas, betas, out = list(alphas), list(betas), []
    for n in names:
        a = (alphas.pop(0) if alphas else TAKES_ALPHA[n]) if n in TAKES_ALPHA else None
        b = (betas.pop(0) if betas else TAKES_BETA[n]) if n in TAKES_BETA else None
        out.append(lambda x, f=ACT[n], a=a, b=b: f(x, a, b))
    return out


def _oracle(op, inputs, attrs):
    x, w, r = (v.astype(np.float64) for v in inputs[:3])
    hidden = r.shape[-1]
    g = GATES[op]
    nd = w.shape[0]
    seq, batch = x.shape[:2]

    def get(i):
        return inputs[i].astype(np.float64) if len(inputs) > i and inputs[i] is not None else None

    b = get(3)
    b = np.zeros((nd, 2 * g * hidden)) if b is None else b
    lens = inputs[4] if len(inputs) > 4 and inputs[4] is not None else np.full(batch, seq)
    h0 = get(5)
    h0 = np.zeros((nd, batch, hidden)) if h0 is None else h0
    c0, p = get(6), get(7)
    c0 = np.zeros((nd, batch, hidden)) if c0 is None else c0
    p = np.zeros((nd, 3 * hidden)) if p is None else p
    k = len(DEFAULT_ACTS[op])
    names = attrs.get("activations", DEFAULT_ACTS[op] * nd)
    acts = _bind_acts(names, attrs.get("activation_alpha", []), attrs.get("activation_beta", []))
    clip = attrs.get("clip")
    cl = (lambda v: v) if clip is None else (lambda v: np.clip(v, -clip, clip))  # noqa: E731
    y = np.zeros((seq, nd, batch, hidden))
    yh, yc = np.zeros((nd, batch, hidden)), np.zeros((nd, batch, hidden))
    for d in range(nd):
        rev = attrs.get("direction") == "reverse" or d == 1
        fa = acts[d * k : (d + 1) * k]
        wb, rb = b[d, : g * hidden], b[d, g * hidden :]
        for n in range(batch):
            h, c = h0[d, n], c0[d, n]
            steps = range(lens[n] - 1, -1, -1) if rev else range(lens[n])
            for t in steps:
                xw = x[t, n] @ w[d].T + wb
                if op == "RNN":
                    h = fa[0](cl(xw + h @ r[d].T + rb))
                elif op == "GRU":
                    hw = hidden
                    z = fa[0](cl(xw[:hw] + h @ r[d, :hw].T + rb[:hw]))
                    rr = fa[0](cl(xw[hw : 2 * hw] + h @ r[d, hw : 2 * hw].T + rb[hw : 2 * hw]))
                    if attrs.get("linear_before_reset"):
                        pre = xw[2 * hw :] + rr * (h @ r[d, 2 * hw :].T + rb[2 * hw :])
                    else:
                        pre = xw[2 * hw :] + (rr * h) @ r[d, 2 * hw :].T + rb[2 * hw :]
                    h = (1 - z) * fa[1](cl(pre)) + z * h
                else:
                    gs = xw + h @ r[d].T + rb
                    gi, go, gf, gc = (gs[j * hidden : (j + 1) * hidden] for j in range(4))
                    pi, po, pf = (p[d, j * hidden : (j + 1) * hidden] for j in range(3))
                    i = fa[0](cl(gi + pi * c))
                    f = 1 - i if attrs.get("input_forget") else fa[0](cl(gf + pf * c))
                    c = f * c + i * fa[1](cl(gc))
                    o = fa[0](cl(go + po * c))
                    h = o * fa[2](c)
                y[t, d, n] = h
            yh[d, n], yc[d, n] = h, c
    dt = inputs[0].dtype
    return [y.astype(dt), yh.astype(dt), yc.astype(dt)][: N_OUT[op]]


def _check_oracle(op, inputs, attrs, opset=14):
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, n_outputs=N_OUT[op])
    got = run_cpu(model, feeds)
    for i, (e, g_) in enumerate(zip(_oracle(op, inputs, attrs), got, strict=True)):
        assert_same(e, g_, 1e-4, 1e-5, f"{op} output {i}")


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("lens", [[5, 2, 3], [1, 5, 4], [5, 5, 5]])
def test_sequence_lens(op, direction, lens):
    inputs = _inputs(op, 5, 3, 4, 3, direction, seq_lens=lens)
    _check_oracle(op, inputs, dict(hidden_size=3, direction=direction))


ACT_CASES = {
    "RNN": [(["Relu"], [], []), (["Affine"], [0.5], [0.1]), (["ScaledTanh"], [1.5], [0.7]),
            (["LeakyRelu", "Softsign"], [0.2], []), (["Softplus", "Elu"], [0.8], [])],
    "GRU": [(["HardSigmoid", "Softsign"], [0.3], [0.4]), (["Sigmoid", "LeakyRelu"], [], []),
            (["ThresholdedRelu", "Tanh", "Sigmoid", "Elu"], [0.1, 0.5], [])],
    "LSTM": [(["HardSigmoid", "Tanh", "Softsign"], [0.25], [0.45]),
             (["Sigmoid", "Affine", "ScaledTanh"], [0.9, 1.1], [0.1, 0.6]),
             (["Sigmoid", "Relu", "Tanh", "Sigmoid", "Tanh", "Elu"], [], [])],
}  # fmt: skip


@pytest.mark.parametrize("op, case", [(op, c) for op, cases in ACT_CASES.items() for c in cases])
def test_activations(op, case):
    names, alphas, betas = case
    direction = "bidirectional" if len(names) == 2 * len(DEFAULT_ACTS[op]) else "forward"
    attrs = dict(hidden_size=4, direction=direction, activations=names)
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    _check_oracle(op, _inputs(op, 4, 2, 3, 4, direction), attrs)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(op):
    inputs = _inputs(op, 4, 2, 3, 4, "bidirectional")
    _check_oracle(op, inputs, dict(hidden_size=4, direction="bidirectional", clip=0.3))


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_lstm_input_forget(direction):
    inputs = _inputs("LSTM", 4, 2, 3, 4, direction, seq_lens=[4, 2])
    _check_oracle("LSTM", inputs, dict(hidden_size=4, direction=direction, input_forget=1))


def test_sequence_lens_layout_1():
    """sequence_lens with batch-major layout: compare with the oracle on transposed tensors."""
    inputs = _inputs("LSTM", 5, 3, 2, 4, "bidirectional", layout=1, seq_lens=[2, 5, 3])
    model, feeds = make_node_model(
        "LSTM",
        inputs,
        dict(hidden_size=4, direction="bidirectional", layout=1),
        opset=14,
        n_outputs=3,
    )
    got = run_cpu(model, feeds)
    tin = list(inputs)
    for i in (0, 5, 6):
        tin[i] = np.swapaxes(inputs[i], 0, 1)
    y, yh, yc = _oracle("LSTM", tin, dict(direction="bidirectional"))
    assert_same(np.transpose(y, (2, 0, 1, 3)), got[0], 1e-4, 1e-5)
    assert_same(np.swapaxes(yh, 0, 1), got[1], 1e-4, 1e-5)
    assert_same(np.swapaxes(yc, 0, 1), got[2], 1e-4, 1e-5)
