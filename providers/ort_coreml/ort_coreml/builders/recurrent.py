"""LSTM, GRU and RNN (opsets 7+) as MIL's ``lstm``, ``gru`` and ``rnn`` run forward.

Gate orders differ: ONNX stacks LSTM weights as (i, o, f, c), MIL as (i, f, o, z=cell); ONNX's
GRU as (z, r, h), MIL's as (r, o=h, z). The builder reorders W, R and the bias (MIL takes one
bias, ONNX's Wb + Rb). Each direction is a forward MIL op: ``reverse`` runs on the input
reversed along time and its output sequence is reversed back, so the steps line up with ONNX's
Y; ``bidirectional`` is both, stacked on Y's direction axis. ``layout=1`` (batch first) is a
transpose before and after. Only the MIL ops' forward direction is used: coremltools documents
no alignment of a reversed output sequence.

MIL's gru computes the new gate as ``act(W x + r * (R h) + b)``: ONNX's
``linear_before_reset=1`` with a zero recurrent bias for that gate. Every other GRU
(``linear_before_reset=0``, ONNX's default, where the reset gate multiplies h before R, or a
non-zero recurrent bias Rbh of the new gate) is unrolled into MIL ops over its time steps
(:func:`_gru_unrolled`): the input projections of all steps in one matmul, then per step
``z, r = f(Xz + H Rz + b), f(Xr + H Rr + b)``, ``h~ = g(Xh + Wbh + (r * H) Rh + Rbh)`` (or
``g(Xh + Wbh + r * (H Rh + Rbh))`` with ``linear_before_reset=1``) and
``H = (1 - z) * h~ + z * H``. That needs a static sequence length of at most :data:`MAX_STEPS`.

Refused with the reason: a dynamic sequence length or more than :data:`MAX_STEPS` steps for an
unrolled GRU, ``sequence_lens`` shorter than the sequence, ``clip`` (ONNX clips the gates' inputs;
MIL's lstm clips the cell state), non-zero peepholes (coremltools documents their shape but not
where they enter the gates), ``input_forget=1``, activations other than Sigmoid, Tanh and Relu
(MIL's other activations have fixed parameters), and, for a bidirectional LSTM, different
activations per direction.
"""

from __future__ import annotations

import numpy as np

from . import FLOATS, Ctx, builder

#: ONNX gate order -> the ONNX gate index of each MIL gate, in MIL's order
_ORDER = {"LSTM": [0, 2, 1, 3], "GRU": [1, 2, 0], "RNN": [0]}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
_MIL_ACTS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: the most time steps a GRU is unrolled over (each step is about 15 MIL ops)
MAX_STEPS = 512


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _directions(direction: str) -> list[bool]:
    """Whether each direction runs reversed, in ONNX's order of Y's direction axis."""
    return {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]


def _activations(op: str, attr, n_dirs: int) -> list[list[str]] | None:
    acts = [_s(a) for a in attr] if attr else _DEFAULT_ACTS[op] * n_dirs
    k = len(_DEFAULT_ACTS[op])
    if len(acts) != k * n_dirs:
        return None
    return [acts[i * k : (i + 1) * k] for i in range(n_dirs)]


def _check(info) -> str | None:
    op = info.node.op_type
    x = info.input_shape(0)
    if x is not None and len(x) != 3:
        return f"{op}'s input has rank {len(x)}; 3 expected"
    direction = _s(info.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        return f"direction {direction!r} is not an ONNX direction"
    if info.attr("clip") is not None:
        return "clip: ONNX clips the gates' inputs, Core ML's lstm clips the cell state"
    acts = _activations(op, info.attr("activations"), len(_directions(direction)))
    if acts is None:
        return f"{op} needs {len(_DEFAULT_ACTS[op])} activations per direction"
    for a in sum(acts, []):
        if a.lower() not in _MIL_ACTS:
            return (
                f"activation {a}: Core ML's {op.lower()} takes Sigmoid, Tanh and Relu (its other "
                "activations have fixed parameters)"
            )
    if info.has_input(4):
        lens = info.constant(4)
        steps = None if x is None else x[1 if info.attr("layout", 0) else 0]
        if lens is None or not isinstance(steps, int) or np.any(np.asarray(lens) != steps):
            return "sequence_lens shorter than the sequence: Core ML's recurrent ops run every step"
    if op == "LSTM":
        if info.attr("input_forget", 0):
            return "input_forget=1 (coupled input and forget gates) is not converted"
        if info.has_input(7):
            p = info.constant(7)
            if p is None or np.any(np.asarray(p) != 0):
                return (
                    "peepholes: coremltools documents lstm's peephole weights but not where they "
                    "enter the gates"
                )
    if op == "GRU":
        why = _unroll_reason(info.attr("linear_before_reset", 0), info.constant(3))
        steps = None if x is None else x[1 if info.attr("layout", 0) else 0]
        if why and not isinstance(steps, int):
            return (
                f"GRU with {why} is unrolled over its time steps, which needs a static sequence "
                f"length (input 0 has shape {_dims(x)}); give the model a fixed sequence length"
            )
        if why and steps > MAX_STEPS:
            return (
                f"GRU with {why} is unrolled over its time steps: {steps} steps are more than "
                f"the {MAX_STEPS} converted (to keep the Core ML program small)"
            )
    return None


def _dims(shape) -> str:
    return "unknown" if shape is None else "(" + ", ".join(map(str, shape)) + ")"


def _unroll_reason(linear_before_reset, b) -> str | None:
    """Why a GRU is beyond MIL's gru (so is unrolled), or None. ``b`` is the constant B or None
    (absent: zero biases; fed at run time: refused by the builder's constant inputs)."""
    if not linear_before_reset:
        return (
            "linear_before_reset=0 (MIL's gru applies the reset gate after the recurrent product)"
        )
    if b is not None:
        h = np.asarray(b).shape[-1] // 6
        if np.any(np.asarray(b)[..., 5 * h :] != 0):
            return "a non-zero new-gate recurrent bias Rbh (MIL's gru has no bias inside r * (R h))"
    return None


def _gates(m: np.ndarray, op: str, h: int) -> np.ndarray:
    """ONNX's stacked gates (axis 0) in MIL's order."""
    return np.concatenate([m[g * h : (g + 1) * h] for g in _ORDER[op]], axis=0)


def _state(ctx: Ctx, i: int, d: int, layout: int, batch: int, h: int, dt) -> object:
    """Direction ``d`` of initial state input ``i`` as (batch, H): zeros when absent."""
    if not ctx.has(i):
        return np.zeros((batch, h), dt)
    v = ctx.x(i)
    if isinstance(v, np.ndarray):
        return np.ascontiguousarray(v[:, d] if layout else v[d]).astype(dt)
    begin = [0, d, 0] if layout else [d, 0, 0]
    end = [batch, d + 1, h] if layout else [d + 1, batch, h]
    v = ctx.mb.slice_by_index(x=v, begin=np.array(begin, np.int32), end=np.array(end, np.int32))
    return ctx.mb.reshape(x=v, shape=np.array([batch, h], np.int32))


@builder("LSTM", "GRU", "RNN", since=7, dtypes=FLOATS, const_inputs=(1, 2, 3), check=_check)
def recurrent(ctx: Ctx, node) -> None:
    mb, op = ctx.mb, node.op_type
    layout = int(node.attr("layout", 0))
    x = ctx.x(0)
    if layout:
        x = mb.transpose(x=x, perm=[1, 0, 2])
    steps, batch, _ = (ctx.shape(0)[i] for i in ((1, 0, 2) if layout else (0, 1, 2)))
    dt = ctx.np_dtype(0)
    w, r = ctx.const(1), ctx.const(2)
    h = r.shape[-1]
    n_gates = len(_ORDER[op])
    bias = ctx.const(3) if ctx.has(3) else np.zeros((w.shape[0], 2 * n_gates * h))
    reversed_ = _directions(_s(node.attr("direction", "forward")))
    acts = _activations(op, node.attr("activations"), len(reversed_))
    want_y = len(node.outputs) > 0 and bool(node.outputs[0])
    lbr = int(node.attr("linear_before_reset", 0))
    unroll = op == "GRU" and _unroll_reason(lbr, bias) is not None
    ys, hs, cs = [], [], []
    for d, rev in enumerate(reversed_):
        h0 = _state(ctx, 5, d, layout, batch, h, dt)
        a = [_MIL_ACTS[s.lower()] for s in acts[d]]
        if unroll:
            y, last = _gru_unrolled(mb, x, h0, w[d], r[d], bias[d], a, lbr, steps, rev, want_y, dt)
            ys.append(y)
            hs.append(last)
            continue
        wb, rb = bias[d, : n_gates * h], bias[d, n_gates * h :]
        b = wb + rb  # for GRU's new gate Wbh alone: its Rbh is zero (else unrolled)
        args = dict(
            x=mb.reverse(x=x, axes=[0]) if rev else x,
            initial_h=h0,
            weight_ih=_gates(w[d], op, h).astype(dt),
            weight_hh=_gates(r[d], op, h).astype(dt),
            bias=_gates(b, op, h).astype(dt),
            output_sequence=want_y,
        )
        if op == "LSTM":
            args.update(initial_c=_state(ctx, 6, d, layout, batch, h, dt),
                        recurrent_activation=a[0], cell_activation=a[1], activation=a[2])  # fmt: skip
        elif op == "GRU":
            args.update(recurrent_activation=a[0], activation=a[1])
        else:
            args.update(activation=a[0])
        outs = getattr(mb, op.lower())(**args)
        y = outs[0]
        if rev and want_y:
            y = mb.reverse(x=y, axes=[0])
        ys.append(y)
        hs.append(outs[1])
        if op == "LSTM":
            cs.append(outs[2])

    if want_y:  # (steps, D, batch, H), or (batch, steps, D, H) with layout=1
        y = _stack(mb, ys, 1)
        ctx.out(0, mb.transpose(x=y, perm=[2, 0, 1, 3]) if layout else y)
    for i, states in ((1, hs), (2, cs)):
        if states and i < len(node.outputs) and node.outputs[i]:
            s = _stack(mb, states, 0)  # (D, batch, H), or (batch, D, H) with layout=1
            ctx.out(i, mb.transpose(x=s, perm=[1, 0, 2]) if layout else s)


def _stack(mb, values: list, axis: int):
    if len(values) == 1:
        return mb.expand_dims(x=values[0], axes=[axis])
    return mb.stack(values=values, axis=axis)


def _gru_unrolled(mb, x, state, w, r, b, acts, lbr, steps, rev, want_y, dt):
    """One direction of an ONNX GRU as MIL ops per time step: (Y of (steps, batch, H) or None,
    the last state (batch, H)). ``x`` is (steps, batch, I); ``w``, ``r``, ``b`` the direction's
    W (3H, I), R (3H, H) and B (6H) in ONNX's gate order z, r, h; ``state`` the initial H."""
    n = r.shape[-1]
    f, g = (getattr(mb, a) for a in acts)
    wb, rb = b[: 3 * n], b[3 * n :]

    def per_step(v):  # (steps, batch, k) -> [(batch, k)] * steps
        parts = mb.split(x=v, num_splits=steps, axis=0) if steps > 1 else [v]
        return [mb.squeeze(x=p, axes=[0]) for p in parts]

    # input projections of every step at once; z and r take both biases, the new gate Wbh alone
    x_zr = per_step(mb.add(x=mb.matmul(x=x, y=w[: 2 * n].T.astype(dt)),
                           y=(wb[: 2 * n] + rb[: 2 * n]).astype(dt)))  # fmt: skip
    x_h = per_step(mb.add(x=mb.matmul(x=x, y=w[2 * n :].T.astype(dt)), y=wb[2 * n :].astype(dt)))
    r_zr, r_h = r[: 2 * n].T.astype(dt), r[2 * n :].T.astype(dt)
    rbh = rb[2 * n :].astype(dt)
    one = np.array(1, dt)
    out = [None] * steps
    for t in reversed(range(steps)) if rev else range(steps):
        zr = f(x=mb.add(x=x_zr[t], y=mb.matmul(x=state, y=r_zr)))
        z, rg = mb.split(x=zr, num_splits=2, axis=1)
        if lbr:  # r * (H Rh + Rbh)
            rec = mb.mul(x=rg, y=mb.add(x=mb.matmul(x=state, y=r_h), y=rbh))
        else:  # (r * H) Rh + Rbh
            rec = mb.matmul(x=mb.mul(x=rg, y=state), y=r_h)
            if np.any(rbh != 0):
                rec = mb.add(x=rec, y=rbh)
        cand = g(x=mb.add(x=x_h[t], y=rec))
        state = mb.add(x=mb.mul(x=mb.sub(x=one, y=z), y=cand), y=mb.mul(x=z, y=state))
        out[t] = state
    y = _stack(mb, out, 0) if want_y else None
    return y, state
