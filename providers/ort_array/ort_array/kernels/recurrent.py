"""Recurrent kernels: RNN, GRU and LSTM (forward, reverse and bidirectional; layout 0 and 1).

The input projection ``X @ W^T`` of every time step and direction is one matmul; the recurrence
then loops over the time steps, each a small matmul and elementwise work on the whole batch.
float16 and bfloat16 are computed in float32.

``sequence_lens`` (a host input) gives each batch entry its own length: an entry stops updating
its state after its last step, its ``Y`` rows past the end are zero, and the reverse direction
walks each entry from its own last step. As onnxruntime does, an entry of length 0 ends with zero
``Y_h`` (and ``Y_c``), not its initial state.

Activations take ``activation_alpha``/``activation_beta`` in order, each value going to the next
activation that has such a parameter; one without a listed value takes the default of the ONNX
operator of that name (LeakyRelu 0.01, ThresholdedRelu 1, HardSigmoid 0.2/0.5, Elu 1, Affine
1/0, ScaledTanh 1/1), as the spec says. onnxruntime instead takes 0 for Affine's, ScaledTanh's and
ThresholdedRelu's missing values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.provider import FLOAT_TYPES

from .._table import builder
from .._xp import cast, clip, device, matmul, namespace, widened
from .elementwise import _sigmoid, _softplus, elu, hard_sigmoid, leaky_relu, thresholded_relu

# lower-case name -> (fn(xp, x, alpha, beta), default alpha or None when unused, default beta)
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda xp, x, a, b: xp.maximum(x, 0), None, None),
    "tanh": (lambda xp, x, a, b: xp.tanh(x), None, None),
    "sigmoid": (lambda xp, x, a, b: _sigmoid(xp, x), None, None),
    "affine": (lambda xp, x, a, b: x * a + b, 1.0, 0.0),
    "leakyrelu": (lambda xp, x, a, b: leaky_relu(xp, x, a), 0.01, None),
    "thresholdedrelu": (lambda xp, x, a, b: thresholded_relu(xp, x, a), 1.0, None),
    "scaledtanh": (lambda xp, x, a, b: xp.tanh(x * b) * a, 1.0, 1.0),
    "hardsigmoid": (lambda xp, x, a, b: hard_sigmoid(xp, x, a, b), 0.2, 0.5),
    "elu": (lambda xp, x, a, b: elu(xp, x, a), 1.0, None),
    "softsign": (lambda xp, x, a, b: x / (xp.abs(x) + 1), None, None),
    "softplus": (lambda xp, x, a, b: _softplus(xp, x), None, None),
}

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTIVATIONS = {
    "RNN": ("Tanh",),
    "GRU": ("Sigmoid", "Tanh"),
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
}
_DIRECTIONS = ("forward", "reverse", "bidirectional")
_COMMON_ATTRIBUTES = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
                      "hidden_size", "layout")  # fmt: skip

Activation = Callable[[Any, Any], Any]


def _activations(op: str, info) -> tuple[list[list[Activation]], str | None]:
    """Per direction, the activations (f, g[, h]) of the node, or the reason it has none."""
    defaults = _DEFAULT_ACTIVATIONS[op]
    k = len(defaults)
    num_dir = 2 if info.attr("direction", "forward") == "bidirectional" else 1
    names = list(info.attr("activations") or defaults * num_dir)
    if len(names) == k and num_dir == 2:
        names = names * 2
    if len(names) != k * num_dir:
        return [], f"activations needs {k * num_dir} entries ({k} per direction), got {len(names)}"
    alphas = [float(v) for v in info.attr("activation_alpha") or []]
    betas = [float(v) for v in info.attr("activation_beta") or []]
    funcs: list[Activation] = []
    for name in names:
        entry = _ACTIVATIONS.get(str(name).lower())
        if entry is None:
            return [], f"activation {name!r} is not one of {sorted(_ACTIVATIONS)}"
        fn, da, db = entry
        a = alphas.pop(0) if da is not None and alphas else da
        b = betas.pop(0) if db is not None and betas else db
        funcs.append(lambda xp, x, fn=fn, a=a, b=b: fn(xp, x, a, b))
    return [funcs[d * k : (d + 1) * k] for d in range(num_dir)], None


def _check(op: str) -> Callable[[Any], str | None]:
    def check(info) -> str | None:
        direction = info.attr("direction", "forward")
        if direction not in _DIRECTIONS:
            return f"direction '{direction}' is not one of {list(_DIRECTIONS)}"
        layout = info.attr("layout", 0)
        if layout not in (0, 1):
            return f"layout must be 0 or 1, got {layout}"
        reason = _activations(op, info)[1]
        if reason is not None:
            return reason
        num_dir, hidden = 2 if direction == "bidirectional" else 1, info.attr("hidden_size")
        w, r = info.input_shape(1), info.input_shape(2)
        for name, shape in (("W", w), ("R", r)):
            n = shape[0] if shape is not None and len(shape) == 3 else None
            if isinstance(n, int) and n != num_dir:
                return f"{name} has {n} directions, direction '{direction}' needs {num_dir}"
        if hidden is not None and r is not None and len(r) == 3 and isinstance(r[2], int):
            if r[2] != hidden:
                return f"R's last dimension {r[2]} differs from hidden_size {hidden}"
        return None

    return check


def _lengths(op: str, sequence_lens: Any, seq: int, batch: int) -> np.ndarray | None:
    """The host lengths, checked; None when every entry runs the whole sequence."""
    if sequence_lens is None:
        return None
    lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
    if lens.shape != (batch,):
        raise InvalidArgument(f"{op}: sequence_lens has {lens.size} values, batch is {batch}.")
    if lens.size and (lens.min() < 0 or lens.max() > seq):
        raise InvalidArgument(
            f"{op}: invalid value/s in sequence_lens {lens.tolist()}. All values must be >= 0 "
            f"and <= seq_length {seq}."
        )
    return None if bool(np.all(lens == seq)) else lens


class _Recurrent:
    """The driver every op shares: layout, defaults, the input projection, directions, sequence
    lengths and the outputs. Subclasses define the cell (``step``)."""

    op = "RNN"

    def __init__(self, info) -> None:
        direction = info.attr("direction", "forward")
        self.num_dir = 2 if direction == "bidirectional" else 1
        self.reverse_only = direction == "reverse"
        self.layout = int(info.attr("layout", 0))
        clip = info.attr("clip")
        self.clip = None if clip is None else float(clip)
        self.acts, reason = _activations(self.op, info)
        if reason is not None:
            raise InvalidArgument(f"{self.op}: {reason}.")
        self.gates = _GATES[self.op]

    def _clip(self, xp: Any, x: Any) -> Any:
        return x if self.clip is None else clip(xp, x, -self.clip, self.clip)

    def __call__(self, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None):
        xp = namespace(X)
        x = widened(xp, X)
        wt = x.dtype
        if x.ndim != 3:
            raise InvalidArgument(f"{self.op}: X must have rank 3, got shape {X.shape}.")
        if self.layout:  # (batch, seq, input) -> (seq, batch, input); states (batch, dir, H)
            x = xp.permute_dims(x, (1, 0, 2))
            initial_h, initial_c = (
                None if s is None else xp.permute_dims(s, (1, 0, 2)) for s in (initial_h, initial_c)
            )
        seq, batch, _ = x.shape
        nd, hidden = self.num_dir, R.shape[-1]
        g = self.gates * hidden
        if tuple(W.shape[:2]) != (nd, g) or tuple(R.shape) != (nd, g, hidden):
            raise InvalidArgument(
                f"{self.op}: W {tuple(W.shape)} and R {tuple(R.shape)} do not fit {nd} "
                f"direction(s) of {self.gates} gate(s) of hidden size {hidden}."
            )
        lens = _lengths(self.op, sequence_lens, seq, batch)
        # the input projection of every step and direction: one matmul
        w2 = xp.reshape(xp.astype(W, wt), (nd * g, W.shape[2]))
        xw = matmul(xp, xp.reshape(x, (seq * batch, x.shape[2])), xp.permute_dims(w2, (1, 0)))
        xw = xp.reshape(xw, (seq, batch, nd, g))
        b = None if B is None else xp.astype(B, wt)
        zeros = xp.zeros((batch, hidden), dtype=wt, device=device(x))
        valid = gather = None
        if lens is not None:
            steps = np.arange(seq).reshape(-1, 1)
            on = steps < lens  # (seq, batch): the steps each entry runs
            valid = xp.asarray(on.reshape(seq, batch, 1), device=device(x))
            # the reverse direction reads entry b's step lens[b] - 1 - k at step k (an involution:
            # the same rows put the outputs back in time order)
            tidx = np.where(on, lens - 1 - steps, steps)
            gather = xp.asarray((tidx * batch + np.arange(batch)).reshape(-1), device=device(x))
        ys, finals = [], []
        for d in range(nd):
            reverse = self.reverse_only or d == 1
            xs = xw[:, :, d, :]
            bias, rb = self._biases(xp, b, d, g, hidden)
            if bias is not None:
                xs = xs + bias
            if reverse and gather is not None:  # each entry from its own last step
                xs = xp.take(xp.reshape(xs, (seq * batch, g)), gather, axis=0)
                xs = xp.reshape(xs, (seq, batch, g))
            states = [zeros if initial_h is None else xp.astype(initial_h[d, ...], wt)]
            if self.op == "LSTM":
                states.append(zeros if initial_c is None else xp.astype(initial_c[d, ...], wt))
            weights = self._weights(xp, xp.astype(R[d, ...], wt), rb, P, d, wt)
            hs: list[Any] = [None] * seq
            order = range(seq - 1, -1, -1) if reverse and gather is None else range(seq)
            for t in order:
                new = self.step(xp, d, xs[t, ...], states, weights)
                if valid is not None:
                    m = valid[t, ...]
                    new = [xp.where(m, n, s) for n, s in zip(new, states)]
                    hs[t] = xp.where(m, new[0], zeros)
                else:
                    hs[t] = new[0]
                states = new
            y = xp.stack(hs, axis=0) if seq else xp.expand_dims(zeros, axis=0)[:0, ...]
            if reverse and gather is not None:  # back in time order
                y = xp.take(xp.reshape(y, (seq * batch, hidden)), gather, axis=0)
                y = xp.reshape(y, (seq, batch, hidden))
            if lens is not None and bool(np.any(lens == 0)):  # onnxruntime: zero final states
                ran = xp.asarray((lens > 0).reshape(batch, 1), device=device(x))
                states = [xp.where(ran, s, zeros) for s in states]
            ys.append(y)
            finals.append(states)
        outs = [xp.stack(ys, axis=1)] + [
            xp.stack([f[k] for f in finals], axis=0) for k in range(len(finals[0]))
        ]
        if self.layout:
            outs = [xp.permute_dims(outs[0], (2, 0, 1, 3))] + [
                xp.permute_dims(o, (1, 0, 2)) for o in outs[1:]
            ]
        return tuple(cast(xp, o, X.dtype) for o in outs)

    def _biases(self, xp: Any, b: Any, d: int, g: int, hidden: int) -> tuple[Any, Any]:
        """The bias added to the input projection (Wb + Rb), and what stays in the recurrence."""
        if b is None:
            return None, None
        return b[d, :g] + b[d, g:], None

    def _weights(self, xp: Any, r: Any, rb: Any, p: Any, d: int, wt: Any) -> Any:
        return xp.permute_dims(r, (1, 0))

    def step(self, xp: Any, d: int, x: Any, states: list, rt: Any) -> list:
        (f,) = self.acts[d]
        return [f(xp, self._clip(xp, x + matmul(xp, states[0], rt)))]


class _GRU(_Recurrent):
    op = "GRU"

    def __init__(self, info) -> None:
        super().__init__(info)
        self.linear_before_reset = bool(info.attr("linear_before_reset", 0))

    def _biases(self, xp, b, d, g, hidden):
        if b is None:
            return None, None
        if not self.linear_before_reset:
            return b[d, :g] + b[d, g:], None
        zr = b[d, : 2 * hidden] + b[d, g : g + 2 * hidden]
        return xp.concat([zr, b[d, 2 * hidden : g]]), b[d, g + 2 * hidden :]

    def _weights(self, xp, r, rb, p, d, wt):
        n = r.shape[-1]
        r_zr, r_h = r[: 2 * n, ...], r[2 * n :, ...]
        return xp.permute_dims(r_zr, (1, 0)), xp.permute_dims(r_h, (1, 0)), rb

    def step(self, xp, d, x, states, weights):
        f, g = self.acts[d]
        r_zr, r_h, rb_h = weights
        h = states[0]
        n = h.shape[-1]
        zr = f(xp, self._clip(xp, x[:, : 2 * n] + matmul(xp, h, r_zr)))
        z, r = zr[:, :n], zr[:, n:]
        if self.linear_before_reset:
            rh = matmul(xp, h, r_h)
            pre = x[:, 2 * n :] + r * (rh if rb_h is None else rh + rb_h)
        else:
            pre = x[:, 2 * n :] + matmul(xp, r * h, r_h)
        hh = g(xp, self._clip(xp, pre))
        return [(1 - z) * hh + z * h]


class _LSTM(_Recurrent):
    op = "LSTM"

    def __init__(self, info) -> None:
        super().__init__(info)
        self.input_forget = bool(info.attr("input_forget", 0))

    def _weights(self, xp, r, rb, p, d, wt):
        n = r.shape[-1]
        peep = None if p is None else xp.astype(p[d, ...], wt)
        peeps = (None,) * 3 if peep is None else (peep[:n], peep[n : 2 * n], peep[2 * n :])
        return xp.permute_dims(r, (1, 0)), *peeps

    def step(self, xp, d, x, states, weights):
        f, g, h_act = self.acts[d]
        rt, p_i, p_o, p_f = weights
        h, c = states
        n = h.shape[-1]
        gates = x + matmul(xp, h, rt)  # i, o, f, c
        gi = gates[:, :n] if p_i is None else gates[:, :n] + p_i * c
        i = f(xp, self._clip(xp, gi))
        if self.input_forget:
            forget = 1 - i
        else:
            gf = gates[:, 2 * n : 3 * n]
            forget = f(xp, self._clip(xp, gf if p_f is None else gf + p_f * c))
        c_new = forget * c + i * g(xp, self._clip(xp, gates[:, 3 * n :]))
        go = gates[:, n : 2 * n]
        o = f(xp, self._clip(xp, go if p_o is None else go + p_o * c_new))
        return [o * h_act(xp, c_new), c_new]


_VERSIONS = (7, 14, 22)


@builder("RNN", _VERSIONS, dtypes={0: FLOAT_TYPES}, check=_check("RNN"), host_inputs=(4,),
         attributes=_COMMON_ATTRIBUTES)  # fmt: skip
def rnn(info):
    return _Recurrent(info)


@builder("GRU", _VERSIONS, dtypes={0: FLOAT_TYPES}, check=_check("GRU"), host_inputs=(4,),
         attributes=(*_COMMON_ATTRIBUTES, "linear_before_reset"))  # fmt: skip
def gru(info):
    return _GRU(info)


@builder("LSTM", _VERSIONS, dtypes={0: FLOAT_TYPES}, check=_check("LSTM"), host_inputs=(4,),
         attributes=(*_COMMON_ATTRIBUTES, "input_forget"))  # fmt: skip
def lstm(info):
    return _LSTM(info)
