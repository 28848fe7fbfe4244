"""Small recurrent and control-flow models as audio pipelines use them, built with onnx.helper.

Shapes are what PyTorch's exporter gives nn.LSTM/nn.GRU at batch 1 ([seq, batch, features], gates in
ONNX order, GRU with linear_before_reset=1). Random weights, uniform in +-1/sqrt(hidden) as PyTorch
initializes them.

- ``lstm_h128_s64``: two stacked LSTM layers, 80 features (a mel frame), hidden 128, 64 frames
- ``bilstm_h64_s32``: one bidirectional LSTM layer, 40 features, hidden 64, 32 frames
- ``gru_h128_s64``: two stacked GRU layers, 80 features, hidden 128, 64 frames
- ``lstm_b8_h256_s32``: one LSTM layer, 128 features, hidden 256, 32 steps, a batch of 8 sequences
  (the batch dim symbolic, as exporters write it): batched inference of a text or speech encoder
- ``gru_h64_s16_state``: a streaming GRU: state in, state out, 16 frames per call
- ``silero_vad_like``: Silero-VAD v5's layout: ``If`` on the sample-rate input chooses the 16 kHz or the
  8 kHz branch, each an STFT as a Conv1d, four Conv1d+ReLU encoder layers, an LSTM step on the
  carried state, a Conv1d+Sigmoid decoder; 576 samples (512 and 64 of context) per call
- ``loop_rnn_32``: a ``Loop`` of 32 iterations of an Elman cell over the input frames, with scan outputs
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from geometries import _Builder
from onnx import TensorProto, helper
from zoo import Spec

KIND = "recurrent"
DEPENDS = ("geometries.py", "zoo.py")
F = TensorProto.FLOAT


def _uniform(b: _Builder, base: str, shape, hidden: int) -> str:
    k = 1 / math.sqrt(hidden)
    return b.const(base, b.rng.uniform(-k, k, shape).astype(np.float32))


def rnn_layer(
    b: _Builder,
    op: str,
    x: str,
    d_in: int,
    hidden: int,
    bidirectional: bool = False,
    initial_h: str | None = None,
    initial_c: str | None = None,
) -> tuple[str, list[str]]:
    """(Y reshaped to [seq, batch, dirs*hidden], [Y, Y_h(, Y_c)]) of one LSTM or GRU layer."""
    dirs = 2 if bidirectional else 1
    gates = 4 if op == "LSTM" else 3
    inputs = [
        x,
        _uniform(b, "W", (dirs, gates * hidden, d_in), hidden),
        _uniform(b, "R", (dirs, gates * hidden, hidden), hidden),
        _uniform(b, "B", (dirs, 2 * gates * hidden), hidden),
    ]
    if initial_h or initial_c:
        inputs += ["", initial_h or ""] + ([initial_c] if initial_c else [])
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if bidirectional else "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    outs = b.op(op, inputs, 3 if op == "LSTM" else 2, **attrs)
    y = b.op("Transpose", [outs[0]], perm=[0, 2, 1, 3])
    y = b.op("Reshape", [y, b.const("shape", np.array([0, 0, -1], np.int64))])
    return y, outs


def stacked(
    op: str,
    layers: int,
    d_in: int,
    hidden: int,
    seq: int,
    bidirectional: bool,
    seed: int,
    batch: int | str = 1,
) -> onnx.ModelProto:
    b = _Builder(seed)
    x, d = "input", d_in
    for _ in range(layers):
        x, _h = rnn_layer(b, op, x, d, hidden, bidirectional)
        d = hidden * (2 if bidirectional else 1)
    b.nodes.append(helper.make_node("Identity", [b.linear(x, d, 32)], ["output"], name="out"))
    return b.model(
        [helper.make_tensor_value_info("input", F, [seq, batch, d_in])],
        [helper.make_tensor_value_info("output", F, [seq, batch, 32])],
        op.lower(),
    )


def streaming_gru(d_in: int = 40, hidden: int = 64, seq: int = 16) -> onnx.ModelProto:
    b = _Builder(21)
    y, (_, h) = rnn_layer(b, "GRU", "input", d_in, hidden, initial_h="state")
    b.nodes.append(helper.make_node("Identity", [b.linear(y, hidden, 16)], ["output"], name="out"))
    b.nodes.append(helper.make_node("Identity", [h], ["state_out"], name="state_id"))
    return b.model(
        [
            helper.make_tensor_value_info("input", F, [seq, 1, d_in]),
            helper.make_tensor_value_info("state", F, [1, 1, hidden]),
        ],
        [
            helper.make_tensor_value_info("output", F, [seq, 1, 16]),
            helper.make_tensor_value_info("state_out", F, [1, 1, hidden]),
        ],
        "streaming_gru",
    )


class _Prefixed(_Builder):
    """Names prefixed by a tag: the two branches of an If name their values apart, as exporters do."""

    def __init__(self, seed: int, tag: str) -> None:
        super().__init__(seed)
        self.tag = tag

    def name(self, base: str) -> str:
        return f"{self.tag}/{super().name(base)}"


def _vad_branch(seed: int, n_fft: int, hop: int, tag: str) -> onnx.GraphProto:
    """One sample-rate branch of the VAD: reads the outer ``input`` and ``state``."""
    b = _Prefixed(seed, tag)
    bins = n_fft // 2 + 1
    x = b.op(
        "Pad",
        ["input", b.const("pads", np.array([0, 0, 0, hop // 2], np.int64))],
        mode="reflect",
    )
    x = b.op("Unsqueeze", [x, b.const("axes", np.array([1], np.int64))])
    # the STFT as a strided Conv1d with a fixed (here random) basis: real and imaginary rows
    basis = b.weight("stft_basis", (2 * bins, 1, n_fft), scale=1 / math.sqrt(n_fft))
    spec = b.op("Conv", [x, basis], kernel_shape=[n_fft], strides=[hop])
    re, im = b.op("Split", [spec, b.const("split", np.array([bins, bins], np.int64))], 2, axis=1)
    mag = b.op("Sqrt", [b.op("Add", [b.op("Mul", [re, re]), b.op("Mul", [im, im])])])
    c = bins
    for cout, stride in ((128, 1), (64, 2), (64, 2), (128, 1)):
        w = b.weight("enc_w", (cout, c, 3), scale=math.sqrt(2 / (3 * c)))
        mag = b.op(
            "Relu",
            [
                b.op(
                    "Conv",
                    [mag, w, b.const("enc_b", np.zeros(cout, np.float32))],
                    kernel_shape=[3],
                    strides=[stride],
                    pads=[1, 1],
                )
            ],
        )
        c = cout
    # [1, 128, frames] -> the last frame as one LSTM step on the carried state
    feat = b.op("Gather", [mag, b.const("last", np.array([-1], np.int64))], axis=2)  # [1, 128, 1]
    feat = b.op("Transpose", [feat], perm=[2, 0, 1])  # [1 step, batch, 128]
    h0, c0 = b.op("Split", ["state", b.const("split", np.array([1, 1], np.int64))], 2, axis=0)
    _y, (_, hn, cn) = rnn_layer(b, "LSTM", feat, 128, 128, initial_h=h0, initial_c=c0)
    state = b.op("Concat", [hn, cn], axis=0)
    d = b.op("Relu", [b.op("Transpose", [hn], perm=[1, 2, 0])])  # [batch, 128, 1]
    d = b.op(
        "Conv",
        [d, b.weight("dec_w", (1, 128, 1), scale=0.1), b.const("dec_b", np.zeros(1, np.float32))],
        kernel_shape=[1],
    )
    prob = b.op("ReduceMean", [b.op("Sigmoid", [d])], axes=[2], keepdims=0)
    b.nodes.append(helper.make_node("Identity", [prob], [f"out_{tag}"], name=f"out_{tag}"))
    b.nodes.append(helper.make_node("Identity", [state], [f"state_{tag}"], name=f"state_{tag}"))
    return helper.make_graph(
        b.nodes,
        f"vad_{tag}",
        [],
        [
            helper.make_tensor_value_info(f"out_{tag}", F, None),
            helper.make_tensor_value_info(f"state_{tag}", F, None),
        ],
        b.inits,
    )


def silero_vad_like() -> onnx.ModelProto:
    b = _Builder(22)
    is16k = b.op("Equal", ["sr", b.const("sr16k", np.array(16000, np.int64))])
    b.nodes.append(
        helper.make_node(
            "If",
            [is16k],
            ["output", "stateN"],
            name="if_sr",
            then_branch=_vad_branch(23, 256, 128, "16k"),
            else_branch=_vad_branch(24, 128, 64, "8k"),
        )
    )
    return b.model(
        [
            helper.make_tensor_value_info("input", F, ["batch", "samples"]),
            helper.make_tensor_value_info("state", F, [2, "batch", 128]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("output", F, ["batch", 1]),
            helper.make_tensor_value_info("stateN", F, [2, "batch", 128]),
        ],
        "silero_vad_like",
    )


def loop_rnn(steps: int = 32, d_in: int = 64, hidden: int = 128) -> onnx.ModelProto:
    outer = _Builder(25)
    body = _Builder(26)
    x = body.op("Gather", ["frames", "i"], axis=0)  # [1, d_in], read from the outer scope
    pre = body.op(
        "Add",
        [
            body.op("MatMul", [x, _uniform(body, "U", (d_in, hidden), hidden)]),
            body.op("MatMul", ["h", _uniform(body, "W", (hidden, hidden), hidden)]),
        ],
    )
    h_new = body.op("Tanh", [body.op("Add", [pre, _uniform(body, "b", (hidden,), hidden)])])
    body.nodes += [
        helper.make_node("Identity", ["cond"], ["cond_out"], name="cond_id"),
        helper.make_node("Identity", [h_new], ["h_out"], name="h_id"),
        helper.make_node("Identity", [h_new], ["y_out"], name="y_id"),
    ]
    graph = helper.make_graph(
        body.nodes,
        "step",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h", F, [1, hidden]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", F, [1, hidden]),
            helper.make_tensor_value_info("y_out", F, [1, hidden]),
        ],
        body.inits,
    )
    trip = outer.op(
        "Gather", [outer.op("Shape", ["frames"]), outer.const("zero", np.array(0, np.int64))]
    )
    outer.nodes.append(
        helper.make_node(
            "Loop",
            [
                trip,
                outer.const("true", np.array(True)),
                outer.const("h0", np.zeros((1, hidden), np.float32)),
            ],
            ["h_final", "ys"],
            name="loop",
            body=graph,
        )
    )
    return outer.model(
        [helper.make_tensor_value_info("frames", F, [steps, 1, d_in])],
        [
            helper.make_tensor_value_info("h_final", F, [1, hidden]),
            helper.make_tensor_value_info("ys", F, [steps, 1, hidden]),
        ],
        "loop_rnn",
    )


def _normal(**shapes) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def _vad_feed() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "input": (rng.standard_normal((1, 576)) * 0.1).astype(np.float32),
        "state": np.zeros((2, 1, 128), np.float32),
        "sr": np.array(16000, np.int64),
    }


MODELS = {
    "lstm_h128_s64": Spec(
        "lstm_h128_s64",
        lambda: stacked("LSTM", 2, 80, 128, 64, False, 20),
        lambda: _normal(input=(64, 1, 80)),
        "2 x LSTM, 80 -> 128, 64 steps",
    ),
    "bilstm_h64_s32": Spec(
        "bilstm_h64_s32",
        lambda: stacked("LSTM", 1, 40, 64, 32, True, 27),
        lambda: _normal(input=(32, 1, 40)),
        "bidirectional LSTM, 40 -> 64, 32 steps",
    ),
    "gru_h128_s64": Spec(
        "gru_h128_s64",
        lambda: stacked("GRU", 2, 80, 128, 64, False, 28),
        lambda: _normal(input=(64, 1, 80)),
        "2 x GRU, 80 -> 128, 64 steps",
    ),
    "lstm_b8_h256_s32": Spec(
        "lstm_b8_h256_s32",
        lambda: stacked("LSTM", 1, 128, 256, 32, False, 29, batch="batch"),
        lambda: _normal(input=(32, 8, 128)),
        "LSTM, 128 -> 256, 32 steps, a batch of 8 (symbolic)",
    ),
    "gru_h64_s16_state": Spec(
        "gru_h64_s16_state",
        streaming_gru,
        lambda: _normal(input=(16, 1, 40), state=(1, 1, 64)),
        "streaming GRU with state in/out, 16 steps",
    ),
    "silero_vad_like": Spec(
        "silero_vad_like", silero_vad_like, _vad_feed, "If(sr) -> STFT conv, 4 convs, LSTM step"
    ),
    "loop_rnn_32": Spec(
        "loop_rnn_32", loop_rnn, lambda: _normal(frames=(32, 1, 64)), "Loop x32 of an Elman cell"
    ),
}
