"""Recurrent kernels: RNN, GRU, LSTM and com.microsoft DynamicQuantizeLSTM.

The input projection ``X @ W^T + Wb`` is computed for every timestep in one matmul; only the
recurrent part loops over time. ``sequence_lens`` is handled by masking: a batch entry stops
updating its state after its last step, its ``Y`` rows past the end are zero, and the reverse
direction walks each entry from its own last step. float16 and bfloat16 are computed in float32.

Where numba is available (``ort_cpu._jit``), the whole recurrence of a direction runs in one
compiled loop (``_rnn_jit.run_direction``) and the numpy step loops below are the fallback and the
readable statement of the equations; both paths are tested against onnxruntime.
"""

from __future__ import annotations

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.provider import FLOAT_TYPES, KernelInfo, KernelUnsupported

from .. import _threads
from . import _blas, _rnn_jit
from ._registry import builder
from .quantization import INT8_TYPES, _k_blocks, dynamic_quantize_linear, integer_matmul_f32


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.logaddexp(0, x)


#: multiply-adds of each direction's recurrence (steps x entries x gates x width x width) from
#: which a bidirectional node runs its two directions at once on two threads: a direction's
#: steps cost a few microseconds each beyond their products, so even small ones pay for the
#: hand-off (about 5 us): in the benchmark's geometry (20 ms of runs after 50 ms idle),
#: bilstm_h64_s32 (524,288 a direction) 83 us at once against 99 one after the other
#: (onnxruntime 82); in blocks of ten runs after 20 ms idle, where the second core is often
#: slow to start, 115 and 131 against 102 and 116
DIRECTION_SPLIT_WORK = 1 << 16
#: multiply-adds of one step's recurrent product (entries x gates x width x width) from which a
#: single direction shares each step's hidden units between two threads (a 256-wide LSTM's
#: 262144: the halves' products read 512 KB each, which one core's 1 MB L2 keeps, instead of
#: 1 MB, at a cost of one wait per step); narrower layers run on one thread. Interleaved with
#: onnxruntime in one process, in blocks of 5-10 runs after 20-60 ms idle (where the second
#: core is often slow to start), one LSTM layer over 64 steps at two threads, Zen 4, median us
#: shared / not shared: 128 wide 708, 544, 556 / 390, 407, 416 (the two-layer lstm_h128_s64:
#: 965, 811 / 743, 749), 256 wide 1759, 956, 1255 / 1376, 1338, 2440, 512 wide 3142 / 4099; in
#: the benchmark's geometry (20 ms of runs after 50 ms idle) lstm_h128_s64 600 / 598. Alone in
#: a process the 128-wide one had gained 5% (a 128-wide GRU's 49152 had lost then too)
STEP_SPLIT_WORK = 1 << 18
#: and from this many steps: the hand-off costs a few microseconds, a shared step saves about
#: one (Silero's one-step LSTM of width 128 took 5 us longer shared)
STEP_SPLIT_STEPS = 8
#: float32 entries from which steps are not shared: the shared halves read ``R^T`` once per
#: entry, one thread's tiles from ``_rnn_jit.BATCH_TILES`` entries once per four (at two
#: threads, a 128-wide LSTM over 64 steps of 3 entries: 617-630 us shared against 546 on one
#: thread's tiles)
STEP_SPLIT_ENTRIES = _rnn_jit.BATCH_TILES
#: rows (steps x entries) up to which a float32 node's input projection is the compiled
#: :func:`._rnn_jit.project` instead of numpy's product: it reads the weights once per row, which
#: pays for a streaming model's few rows only. 128 -> 512 gate units, us, projection against
#: product and bias: 1 row 4.4 against 6.3, 4 rows 16.0 against 21.8, 8 rows 31.9 against 20.6
PROJECT_ROWS = 4

# name -> (function(x, alpha, beta), default alpha or None when unused, default beta or None)
_ACTIVATIONS = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: _softplus(x), None, None),
}


def _sigmoid_(x: np.ndarray) -> np.ndarray:
    """Sigmoid in place, as 0.5 * tanh(0.5 x) + 0.5 (no overflow for large negative x)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _activation_specs(info: KernelInfo, defaults: list[str], num_dir: int) -> list[list]:
    """Per direction, ``(name, alpha, beta)`` of each activation (f, g[, h]) of the node.

    ``activation_alpha``/``activation_beta`` are consumed in order by the activations that take
    an alpha (beta); an activation whose value is not listed uses its ONNX default.
    """
    names = info.attr("activations") or defaults * num_dir
    if len(names) == len(defaults) and num_dir == 2:
        names = list(names) * 2
    if len(names) != len(defaults) * num_dir:
        raise KernelUnsupported(
            f"activations needs {len(defaults) * num_dir} entries ({len(defaults)} per direction),"
            f" got {len(names)}"
        )
    alphas = list(info.attr("activation_alpha") or [])
    betas = list(info.attr("activation_beta") or [])
    specs = []
    for name in names:
        key = str(name).lower()
        entry = _ACTIVATIONS.get(key)
        if entry is None:
            raise KernelUnsupported(f"activation {name!r} (supported: {sorted(_ACTIVATIONS)})")
        _, da, db = entry
        a = alphas.pop(0) if da is not None and alphas else da
        b = betas.pop(0) if db is not None and betas else db
        specs.append((key, a, b))
    k = len(defaults)
    return [specs[d * k : (d + 1) * k] for d in range(num_dir)]


def _activations(specs: list[list]) -> list[list]:
    """Per direction, the activation callables for :func:`_activation_specs`'s result."""
    return [
        [lambda x, fn=_ACTIVATIONS[name][0], a=a, b=b: fn(x, a, b) for name, a, b in direction]
        for direction in specs
    ]


def _num_directions(info: KernelInfo) -> int:
    direction = info.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise KernelUnsupported(f"direction {direction!r} (forward, reverse, bidirectional)")
    return 2 if direction == "bidirectional" else 1


def _work_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _time_order(seq: int, batch: int, lens: np.ndarray | None, reverse: bool):
    """Per step and batch entry, the timestep to read/write and whether the entry is active.

    Returns ``(tidx, valid)``, both of shape [seq, batch]. For inactive steps ``tidx`` points
    at positions past the entry's length, so every column of ``tidx`` is a permutation.
    """
    t = np.arange(seq)[:, None]
    if lens is None:
        lens_b = np.full((1, batch), seq, dtype=np.int64)
    else:
        lens_b = np.minimum(lens.astype(np.int64), seq).reshape(1, batch)
    valid = np.broadcast_to(t < lens_b, (seq, batch))
    tidx = np.broadcast_to(t, (seq, batch))
    if reverse:
        tidx = np.where(valid, lens_b - 1 - t, t)
    return tidx, valid


class _Recurrent:
    """Shared driver: layout, defaults, directions, sequence lengths and output assembly."""

    op = "RNN"
    gates = 1
    default_acts = ["Tanh"]

    def __init__(self, info: KernelInfo):
        self.num_dir = _num_directions(info)
        self.reverse_only = info.attr("direction", "forward") == "reverse"
        self.layout = int(info.attr("layout", 0))
        clip = info.attr("clip")
        self.clip = None if clip is None else float(clip)
        if self.clip is not None and not self.clip > 0 and self.op != "RNN":
            # onnxruntime refuses it for GRU and LSTM; its RNN clips to [clip, -clip], which the
            # numpy path does (the compiled loop reads clip <= 0 as none, so it is not used)
            raise InvalidArgument(
                f"{info.node.label()}: clip must be a positive threshold, got {clip}; remove "
                "the attribute for no clipping."
            )
        specs = _activation_specs(info, self.default_acts, self.num_dir)
        self.acts = _activations(specs)
        defaults = [a.lower() for a in self.default_acts]
        #: per direction: default activations and no clip, so the in-place step loop applies
        self.plain = [self.clip is None and [name for name, _, _ in d] == defaults for d in specs]
        self.num_outputs = info.num_outputs
        self.info = info
        self._setup_jit(info, specs)

    def _setup_jit(self, info: KernelInfo, specs: list[list]) -> None:
        """The compiled loop (None: the numpy path) and its per-direction arguments."""
        wt = _work_dtype(info.input_dtype(0) or np.dtype(np.float32))
        self.jit_dtype = wt
        #: the bound call of the usual run (see _bind): (X's shape, W, R, B, call); None
        #: before the first compiled run, () where it does not apply
        self._bound: tuple | None = None
        self.jit = _compiled(wt) if self.clip is None or self.clip > 0 else None
        if self.jit is None:
            return
        self.op_code = _rnn_jit.OPS[self.op]
        self.project = _rnn_jit.warm_project() if wt == np.float32 else None
        self.codes, self.alphas, self.betas = [], [], []
        for d in specs:
            d = d + [("tanh", None, None)] * (3 - len(d))
            self.codes.append(np.array([_rnn_jit.ACT_CODES[name] for name, _, _ in d], np.int64))
            self.alphas.append(np.array([0.0 if a is None else a for _, a, _ in d], wt))
            self.betas.append(np.array([0.0 if b is None else b for _, _, b in d], wt))
        self.clip_w = wt.type(self.clip if self.clip is not None and self.clip > 0 else 0)
        self.flags = (8 if wt == np.float64 else 0) | self.jit_flags(info)
        #: (W, R, B) objects of the last run and the per-direction arrays made from them
        self._weights_of: tuple = ()
        self._weights: list = []
        self._full_lens: dict = {}  # (batch, seq) -> every entry's length, seq (see run_jit)
        #: the directions (or halves of one direction's entries) as compiled pieces on the
        #: run's pool (:mod:`._rnn_pieces`), or None
        self._pieces = None
        # (two directions at once, or one direction's entries in two halves)
        if (self.num_dir == 2 or wt == np.float32) and _threads.will_split(info.provider):
            from . import _rnn_pieces

            _rnn_pieces.warm(wt, _rnn_jit._warm_args(wt))
            self._pieces = _rnn_pieces
        #: one direction's steps shared between two threads (:func:`._rnn_pieces.run_shared`)
        #: where the op's gates allow it (not GRU's r * h product): the module, or None
        self._shared = None
        self._halves: tuple = ()  # (R^T, its packed halves, the unit bounds)
        r = info.constant(2)
        n = info.attr("hidden_size") or (r.shape[-1] if r is not None else 0)
        if (
            self.num_dir == 1
            and not self.flags & 16
            and (self.op != "GRU" or self.flags & 4)
            and self.gates * n * n >= STEP_SPLIT_WORK
            and _threads.will_split(info.provider)
        ):
            from . import _rnn_pieces

            _rnn_pieces.warm_shared(wt)
            self._shared = _rnn_pieces
        # constant weights laid out now, not in the first run (a 128-wide LSTM's transposes
        # and halves were 2 of its first run's 3 ms)
        w, b = info.constant(1), info.constant(3)
        if w is not None and r is not None and (b is not None or not info.has_input(3)):
            rt = self.direction_weights(w, r, b, wt)[0][2]
            if self._shared is not None:
                self._halves_of(rt)

    def _halves_of(self, rt: np.ndarray) -> tuple:
        """(R^T, its halves packed for :func:`._rnn_pieces.run_shared`, the unit bounds), kept
        while R^T is the same array."""
        if not self._halves or self._halves[0] is not rt:
            n = rt.shape[0]
            bounds = np.array([0, n // 2, n], np.int64)
            self._halves = (rt, self._shared.pack_halves(rt, self.gates, bounds), bounds)
        return self._halves

    def jit_flags(self, info: KernelInfo) -> int:
        """The op's bits of ``run_direction``'s ``flags`` (input_forget, linear_before_reset)."""
        return 0

    def _clip(self, x):
        return x if self.clip is None else np.clip(x, -self.clip, self.clip)

    def __call__(self, X, W, R, B=None, sequence_lens=None, initial_h=None, *extra):
        bound = self._bound
        if (
            bound
            and X.shape == bound[0]
            and X.dtype is self.jit_dtype
            and W is bound[1]
            and R is bound[2]
            and B is bound[3]
            and sequence_lens is None
            and (not extra or (len(extra) == 1 and (extra[0] is None or extra[0].ndim == 3)))
        ):
            return bound[4](X, initial_h, extra[0] if extra else None)
        dtype = X.dtype
        wt = _work_dtype(dtype)
        if self.jit is not None and wt == self.jit_dtype:
            out = self.run_jit(X, W, R, B, sequence_lens, initial_h, *extra)
            if self._bound is None and sequence_lens is None and len(extra) <= 1:
                self._bound = self._bind(X, W, R, B)
            return out
        if self.layout:
            X = np.swapaxes(X, 0, 1)
            initial_h = None if initial_h is None else np.swapaxes(initial_h, 0, 1)
            extra = tuple(
                np.swapaxes(e, 0, 1) if i == 0 and e is not None else e for i, e in enumerate(extra)
            )
        X, W, R = X.astype(wt, copy=False), W.astype(wt, copy=False), R.astype(wt, copy=False)
        seq, batch, _ = X.shape
        if sequence_lens is not None and np.all(np.asarray(sequence_lens) >= seq):
            sequence_lens = None  # every entry runs the whole sequence
        hidden = R.shape[-1]
        g = self.gates
        if B is None:
            B = np.zeros((self.num_dir, 2 * g * hidden), wt)
        B = B.astype(wt, copy=False)
        if initial_h is None:
            initial_h = np.zeros((self.num_dir, batch, hidden), wt)
        initial_h = initial_h.astype(wt)  # a copy: the step loops update states in place
        extra = tuple(None if e is None else e.astype(wt) for e in extra)
        Y = np.zeros((seq, self.num_dir, batch, hidden), wt)
        finals = []
        for d in range(self.num_dir):
            reverse = self.reverse_only or d == 1
            xw = (X.reshape(seq * batch, -1) @ W[d].T).reshape(seq, batch, -1)
            xw += B[d, : g * hidden]
            if sequence_lens is None:  # every entry runs the whole sequence: no gather needed
                order = slice(None, None, -1) if reverse else slice(None)
                xw = xw[order]
                valid = None
            else:
                tidx, valid = _time_order(seq, batch, sequence_lens, reverse)
                xw = xw[tidx, np.arange(batch)[None, :]]
            states = (initial_h[d],) + tuple(None if e is None else e[d] for e in extra[:1])
            if sequence_lens is None and self.plain[d] and self.plain_extra(extra):
                xw += B[d, g * hidden :] * self.folded_bias(hidden)
                hs, states = self.run_plain(d, xw, R[d], B[d, g * hidden :], states)
            else:
                if valid is None:
                    valid = np.ones((seq, batch), dtype=bool)
                hs, states = self.run_direction(
                    d, xw, valid, R[d], B[d, g * hidden :], states, extra
                )
            if sequence_lens is None:
                Y[:, d] = hs[order]
            else:
                Y[tidx, d, np.arange(batch)[None, :]] = hs
            finals.append(states)
        outs = [Y] + [np.stack([f[k] for f in finals]) for k in range(len(finals[0]))]
        if self.layout:
            outs = [np.transpose(outs[0], (2, 0, 1, 3))] + [np.swapaxes(o, 0, 1) for o in outs[1:]]
        return tuple(o.astype(dtype, copy=False) for o in outs)

    def direction_weights(self, W, R, B, wt) -> list:
        """Per direction ``(W^T, Wb, R^T, Rb)`` contiguous in ``wt``; reused while the node's
        weights are the same constant arrays (the usual case), rebuilt when they are inputs."""
        kept = self._weights_of
        if kept and W is kept[0] and R is kept[1] and B is kept[2]:
            return self._weights
        key = (W, R, B)
        gn = self.gates * R.shape[-1]
        out = []
        split = self.flags & 16  # (called by run_jit only: the compiled loop's flags)
        for d in range(self.num_dir):
            b = np.zeros(2 * gn, wt) if B is None else B[d].astype(wt)
            rt = np.ascontiguousarray(R[d].T, wt)
            out.append(
                (
                    np.ascontiguousarray(W[d].T, wt),
                    np.ascontiguousarray(b[:gn]),
                    _rnn_jit.split_gru(rt) if split else rt,
                    np.ascontiguousarray(b[gn:]),
                )
            )
        info = self.info
        if all(
            (x is None and not info.has_input(i)) or (x is not None and x is info.constant(i))
            for i, x in ((1, W), (2, R), (3, B))
        ):
            self._weights_of, self._weights = key, out
        return out

    def run_jit(self, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None):
        """All of the node in the compiled loop, one call per direction."""
        dtype = X.dtype
        wt = self.jit_dtype
        if self.layout:
            X = np.swapaxes(X, 0, 1)
            initial_h = None if initial_h is None else np.swapaxes(initial_h, 0, 1)
            initial_c = None if initial_c is None else np.swapaxes(initial_c, 0, 1)
        seq, batch, _ = X.shape
        n = R.shape[-1]
        weights = self.direction_weights(W, R, B, wt)
        x2 = X.reshape(seq * batch, -1).astype(wt, copy=False)
        project = self.project if seq * batch <= PROJECT_ROWS else None
        if sequence_lens is None:
            lens = self._full_lens.get((batch, seq))  # read only by the loop: one per shape
            if lens is None:
                lens = np.full(batch, seq, np.int64)
                if len(self._full_lens) < 64:
                    self._full_lens[(batch, seq)] = lens
            ys = np.empty((self.num_dir, seq, batch, n), wt)
        else:
            lens = np.clip(np.asarray(sequence_lens, np.int64).reshape(batch), 0, seq)
            ys = np.zeros((self.num_dir, seq, batch, n), wt)
        hs = np.empty((self.num_dir, batch, n), wt)
        if initial_h is None:
            hs.fill(0)
        else:
            hs[...] = initial_h
        lstm = self.gates == 4
        cs = np.zeros((self.num_dir, batch, n), wt) if lstm else hs
        if lstm and initial_c is not None:
            cs[...] = initial_c
        flags = self.flags | (1 if P is not None else 0)
        args = []
        for d in range(self.num_dir):
            wt_d, wb, rt, rb = weights[d]
            xw = _projection(x2, wt_d, wb, (seq, batch, self.gates * n), project)
            p = np.ascontiguousarray(P[d], wt) if P is not None else rb
            args.append((
                self.op_code, xw, rt, rb, p, hs[d], cs[d], lens, self.reverse_only or d == 1,
                self.codes[d], self.alphas[d], self.betas[d], self.clip_w, flags, ys[d],
            ))  # fmt: skip
        work = seq * batch * self.gates * n * n
        if not (
            self._both_at_once(args, work)
            or (self._shares_steps(seq, batch, n) and self._steps_shared(args))
            or (self._splits_entries(batch, work) and self._halves_at_once(args[0]))
        ):
            for a in args:
                self.jit(*a)
        y = ys.transpose(1, 0, 2, 3)
        outs = [y if self.num_dir == 1 else np.ascontiguousarray(y), hs] + ([cs] if lstm else [])
        if self.layout:
            outs = [np.transpose(outs[0], (2, 0, 1, 3))] + [np.swapaxes(o, 0, 1) for o in outs[1:]]
        if dtype == wt:
            return tuple(outs)
        return tuple(o.astype(dtype, copy=False) for o in outs)

    def _bind(self, X, W, R, B) -> tuple:
        """(X's shape, W, R, B, ``call(X, initial_h, initial_c)``): :meth:`run_jit`'s work
        for inputs of ``X``'s shape and dtype with these constant weights, its arguments bound
        once, or an empty tuple (not tried again) where it does not apply: one direction,
        layout 0, no sequence lengths nor peepholes (the caller checks both per run), a run
        that does not share its steps among threads; initial states of another shape than
        (1, batch, hidden) take :meth:`run_jit` (which broadcasts them). A streaming model's
        one-step LSTM or a 16-step GRU spent a third of the node in :meth:`run_jit`'s Python
        (checks, a dozen small numpy calls, fifteen arguments assembled per direction)."""
        info = self.info
        if (
            self.num_dir != 1
            or self.layout
            or X.dtype != self.jit_dtype
            or X.ndim != 3
            or not all(
                (x is None and not info.has_input(i)) or (x is not None and x is info.constant(i))
                for i, x in ((1, W), (2, R), (3, B))
            )
        ):
            return ()
        seq, batch, _ = X.shape
        n, g, wt = R.shape[-1], self.gates, self.jit_dtype
        if self._shares_steps(seq, batch, n) or self._splits_entries(
            batch, seq * batch * g * n * n
        ):
            return ()  # (its steps or entries shared among threads when the pool is free)
        wt_d, wb, rt, rb = self.direction_weights(W, R, B, wt)[0]
        rows = seq * batch
        project = self.project if rows <= PROJECT_ROWS else None
        lens = np.full(batch, seq, np.int64)
        lstm = g == 4
        head = (self.op_code,)
        tail = (lens, self.reverse_only, self.codes[0], self.alphas[0], self.betas[0],
                self.clip_w, self.flags)  # fmt: skip
        jit, state = self.jit, (1, batch, n)

        def call(X, initial_h, initial_c):
            if (initial_h is not None and initial_h.shape != state) or (
                initial_c is not None and initial_c.shape != state
            ):
                return self.run_jit(
                    X, W, R, B, None, initial_h, *(() if not lstm else (initial_c,))
                )
            xw = _projection(X.reshape(rows, -1), wt_d, wb, (seq, batch, g * n), project)
            # the states as copies: the loop updates them in place
            hs = np.zeros(state, wt) if initial_h is None else np.array(initial_h, wt)
            cs = hs
            if lstm:
                cs = np.zeros(state, wt) if initial_c is None else np.array(initial_c, wt)
            ys = np.empty((1, seq, batch, n), wt)
            jit(*head, xw, rt, rb, rb, hs.reshape(batch, n), cs.reshape(batch, n), *tail,
                ys[0])  # fmt: skip
            y = ys.transpose(1, 0, 2, 3)
            return (y, hs, cs) if lstm else (y, hs)

        return (X.shape, W, R, B, call)

    def _both_at_once(self, args: list, work: int) -> bool:
        """Both directions of a bidirectional node at once on the run's threads, as compiled
        pieces (:mod:`._rnn_pieces`), where each direction has :data:`DIRECTION_SPLIT_WORK`
        multiply-adds or more and the run's pool is free; False (nothing run) otherwise."""
        pieces = self._pieces
        if (
            len(args) != 2
            or pieces is None
            or work < DIRECTION_SPLIT_WORK
            or not _threads.spinning()
        ):
            return False
        return self._run_two(args)

    def _run_two(self, args: list) -> bool:
        """Two run_direction argument tuples at once on the run's threads, as compiled pieces
        (:mod:`._rnn_pieces`); False (nothing run) where the run's pool is not free."""
        pieces = self._pieces
        block = np.empty(2 * pieces.SLOTS, np.int64)
        for d, a in enumerate(args):
            pieces.fill(block, d, *a)
        return pieces.run(block, self.jit_dtype)

    def _splits_entries(self, batch: int, work: int) -> bool:
        """Whether one direction of ``batch`` entries (``work`` multiply-adds) runs its entries
        in two halves on the run's threads where its pool is free (:meth:`_halves_at_once`):
        a float32 node of one direction, two entries or more, whose steps are not shared, from
        :data:`DIRECTION_SPLIT_WORK`."""
        return (
            self._pieces is not None
            and self.num_dir == 1
            and batch >= 2
            and self.jit_dtype == np.float32
            and work >= DIRECTION_SPLIT_WORK
        )

    def _halves_at_once(self, a: tuple) -> bool:
        """One direction's entries in two halves at once on the run's threads, as the two
        directions of a bidirectional node run (:mod:`._rnn_pieces`): entries are independent,
        and each half's products keep one entry's bits. The first half a whole number of
        tiles of entries (``_rnn_jit.PW_ROWS``) where the second keeps one; each half's inputs
        and outputs copied into arrays of its own (their entries are not contiguous). False
        (nothing run) where the run's pool is not free. At two threads, an LSTM of 256 units
        over 32 steps of 8 entries: 2.3-2.4 ms on one thread (onnxruntime 1.1-1.2)."""
        if not _threads.spinning():
            return False
        op, xw, rt, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y = a
        batch = xw.shape[1]
        tile = _rnn_jit.PW_ROWS
        half = batch // 2
        if half % tile and (half // tile + 1) * tile < batch:
            half = (half // tile + 1) * tile
        halves = ((0, half), (half, batch))
        ys = [np.ascontiguousarray(y[:, lo:hi]) for lo, hi in halves]
        args = [
            (op, np.ascontiguousarray(xw[:, lo:hi]), rt, rb, p, h[lo:hi], c[lo:hi], lens[lo:hi],
             reverse, codes, alphas, betas, clip, flags, y_d)
            for (lo, hi), y_d in zip(halves, ys, strict=True)
        ]  # fmt: skip
        if not self._run_two(args):
            return False
        for (lo, hi), y_d in zip(halves, ys, strict=True):
            y[:, lo:hi] = y_d
        return True

    def _shares_steps(self, seq: int, batch: int, n: int) -> bool:
        """Whether a run of ``seq`` steps of ``batch`` entries (``n`` hidden units) shares its
        steps among the run's threads where its pool is free: the node can
        (:mod:`._rnn_pieces` loaded), :data:`STEP_SPLIT_STEPS` steps or more, each of
        :data:`STEP_SPLIT_WORK` multiply-adds or more, fewer than :data:`STEP_SPLIT_ENTRIES`
        entries where the node is float32."""
        return (
            self._shared is not None
            and seq >= STEP_SPLIT_STEPS
            and batch * self.gates * n * n >= STEP_SPLIT_WORK
            and (batch < STEP_SPLIT_ENTRIES or self.jit_dtype != np.float32)
        )

    def _steps_shared(self, args: list) -> bool:
        """One direction's steps shared between the run's two threads, half of the hidden units
        each (:func:`._rnn_pieces.run_shared`), for a shape :meth:`_shares_steps` allows, where
        the run has two threads and its pool is free; False (nothing run) otherwise."""
        shared = self._shared
        if shared is None or _threads.threads() < 2:
            return False
        (op, xw, rt, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y) = args[0]
        _, rtp, bounds = self._halves_of(rt)
        return shared.run_shared(
            op, xw, rtp, rb, p, h, c, lens, reverse, codes, alphas, betas, clip, flags, y, bounds
        )

    def plain_extra(self, extra) -> bool:
        """Whether the node's extra inputs allow the in-place step loop."""
        return True

    def folded_bias(self, n: int) -> np.ndarray | float:
        """Which parts of the recurrent bias the step loop adds with the input projection
        (1: all of it, folded once, outside the loop)."""
        return 1.0

    def run_plain(self, d, xw, R, Rb, states):
        """Tanh RNN over full-length sequences, in place: h = tanh(xw[t] + h R^T)."""
        h = states[0]
        hs = np.empty(xw.shape[:2] + (h.shape[-1],), h.dtype)
        rt = R.T
        for t in range(xw.shape[0]):
            out = hs[t]
            np.matmul(h, rt, out=out)
            out += xw[t]
            np.tanh(out, out=out)
            h = out
        return hs, (h.copy(),)

    def run_direction(self, d, xw, valid, R, Rb, states, extra):
        h = states[0]
        f = self.acts[d][0]
        hs = np.zeros(xw.shape[:2] + (h.shape[-1],), h.dtype)
        rt = R.T
        for t in range(xw.shape[0]):
            hn = f(self._clip(xw[t] + h @ rt + Rb))
            h = np.where(valid[t][:, None], hn, h)
            hs[t] = np.where(valid[t][:, None], hn, 0)
        return hs, (h,)


class _GRU(_Recurrent):
    op = "GRU"
    gates = 3
    default_acts = ["Sigmoid", "Tanh"]

    def __init__(self, info: KernelInfo):
        self.linear_before_reset = bool(info.attr("linear_before_reset", 0))
        super().__init__(info)

    def jit_flags(self, info: KernelInfo) -> int:
        # without linear_before_reset the weights come laid out by _rnn_jit.split_gru
        return 4 if self.linear_before_reset else 16

    def folded_bias(self, n: int) -> np.ndarray | float:
        # z and r always; h's only when it is added after the reset gate's product
        keep = np.ones(3 * n)
        if self.linear_before_reset:
            keep[2 * n :] = 0
        return keep

    def run_plain(self, d, xw, R, Rb, states):
        """GRU (sigmoid, tanh) over full-length sequences, in place."""
        h = states[0]
        n = h.shape[-1]
        hs = np.empty(xw.shape[:2] + (n,), h.dtype)
        r_zr, r_h = R[: 2 * n].T, R[2 * n :].T
        rb_h = Rb[2 * n :]
        zr = np.empty((h.shape[0], 2 * n), h.dtype)
        hh = np.empty((h.shape[0], n), h.dtype)
        for t in range(xw.shape[0]):
            x = xw[t]
            np.matmul(h, r_zr, out=zr)
            zr += x[:, : 2 * n]
            _sigmoid_(zr)
            z, r = zr[:, :n], zr[:, n:]
            if self.linear_before_reset:
                np.matmul(h, r_h, out=hh)
                hh += rb_h
                hh *= r
            else:
                np.matmul(r * h, r_h, out=hh)
            hh += x[:, 2 * n :]
            np.tanh(hh, out=hh)
            out = hs[t]  # (1 - z) * hh + z * h = hh + z * (h - hh)
            np.subtract(h, hh, out=out)
            out *= z
            out += hh
            h = out
        return hs, (h.copy(),)

    def run_direction(self, d, xw, valid, R, Rb, states, extra):
        h = states[0]
        f, gact = self.acts[d]
        n = h.shape[-1]
        hs = np.zeros(xw.shape[:2] + (n,), h.dtype)
        r_zr, r_h = R[: 2 * n].T, R[2 * n :].T
        rb_zr, rb_h = Rb[: 2 * n], Rb[2 * n :]
        for t in range(xw.shape[0]):
            x = xw[t]
            zr = f(self._clip(x[:, : 2 * n] + h @ r_zr + rb_zr))
            z, r = zr[:, :n], zr[:, n:]
            if self.linear_before_reset:
                pre = x[:, 2 * n :] + r * (h @ r_h + rb_h)
            else:
                pre = x[:, 2 * n :] + (r * h) @ r_h + rb_h
            hh = gact(self._clip(pre))
            hn = (1 - z) * hh + z * h
            m = valid[t][:, None]
            h = np.where(m, hn, h)
            hs[t] = np.where(m, hn, 0)
        return hs, (h,)


class _LSTM(_Recurrent):
    op = "LSTM"
    gates = 4
    default_acts = ["Sigmoid", "Tanh", "Tanh"]
    #: whether the next step reads the step's masked output (zero for entries past their
    #: sequence length) as its state, onnxruntime's way, with each entry's final state kept
    #: apart: only where the entries' products depend on each other (DynamicQuantizeLSTM)
    step_past_end = False

    def __init__(self, info: KernelInfo):
        self.input_forget = bool(info.attr("input_forget", 0))
        super().__init__(info)

    def jit_flags(self, info: KernelInfo) -> int:
        return 2 if self.input_forget else 0

    def plain_extra(self, extra) -> bool:
        # peepholes and input_forget take the general loop
        return not self.input_forget and not (len(extra) > 1 and extra[1] is not None)

    def run_plain(self, d, xw, R, Rb, states):
        """LSTM (sigmoid, tanh, tanh) over full-length sequences, in place; gates in ONNX's
        i, o, f, c order, so one sigmoid covers i, o and f."""
        h = states[0]
        n = h.shape[-1]
        c = states[1].copy() if len(states) > 1 and states[1] is not None else np.zeros_like(h)
        hs = np.empty(xw.shape[:2] + (n,), h.dtype)
        rt = R.T
        gates = np.empty((h.shape[0], 4 * n), h.dtype)
        i, o, f, cc = (gates[:, k * n : (k + 1) * n] for k in range(4))
        for t in range(xw.shape[0]):
            np.matmul(h, rt, out=gates)
            gates += xw[t]
            _sigmoid_(gates[:, : 3 * n])
            np.tanh(cc, out=cc)
            c *= f  # c = f * c + i * cc
            cc *= i
            c += cc
            out = hs[t]
            np.tanh(c, out=out)
            out *= o
            h = out
        return hs, (h.copy(), c)

    def recur(self, h: np.ndarray, rt: np.ndarray) -> np.ndarray:
        """A step's recurrent product ``h @ R^T``."""
        return h @ rt

    def run_direction(self, d, xw, valid, R, Rb, states, extra):
        h = states[0]
        n = h.shape[-1]
        c = states[1] if len(states) > 1 and states[1] is not None else np.zeros_like(h)
        p = extra[1] if len(extra) > 1 and extra[1] is not None else None
        pi, po, pf = (0, 0, 0) if p is None else (p[d, :n], p[d, n : 2 * n], p[d, 2 * n :])
        f, gact, hact = self.acts[d]
        hs = np.zeros(xw.shape[:2] + (n,), h.dtype)
        rt = R.T
        h_end, c_end = h, c
        for t in range(xw.shape[0]):
            gates = xw[t] + self.recur(h, rt) + Rb
            i = f(self._clip(gates[:, :n] + pi * c))
            if self.input_forget:
                fg = 1 - i
            else:
                fg = f(self._clip(gates[:, 2 * n : 3 * n] + pf * c))
            cc = gact(self._clip(gates[:, 3 * n :]))
            cn = fg * c + i * cc
            o = f(self._clip(gates[:, n : 2 * n] + po * cn))
            hn = o * hact(cn)
            m = valid[t][:, None]
            hs[t] = np.where(m, hn, 0)
            if self.step_past_end:  # the final states are taken at each entry's last step
                h_end, c_end = np.where(m, hn, h_end), np.where(m, cn, c_end)
                h, c = hs[t], cn
            else:
                h = np.where(m, hn, h)
                c = np.where(m, cn, c)
        return hs, ((h_end, c_end) if self.step_past_end else (h, c))


class _QuantizedWeights:
    """A direction's quantized recurrent weights as :meth:`_LSTM.run_direction` takes R (it
    reads ``R.T``) and hands to :meth:`_DynamicQuantizeLSTM.recur`: the centred (K, N) float32
    weights, their exact reduction blocks and the scale. One per run: runs may be concurrent."""

    __slots__ = ("packed", "blocks", "scale")

    def __init__(self, packed, blocks, scale) -> None:
        self.packed, self.blocks = packed, blocks
        self.scale = np.asarray(scale, np.float32).reshape(-1)

    @property
    def T(self):  # noqa: N802 - stands in for a weight matrix
        return self


class _DynamicQuantizeLSTM(_LSTM):
    """com.microsoft DynamicQuantizeLSTM, as onnxruntime's quantizer writes an LSTM: W
    [dirs, input, 4 * hidden] and R [dirs, hidden, 4 * hidden] hold 8-bit weights (already
    transposed) with a scale and zero point per direction or per output column. Each product,
    the input projection of the whole sequence and the recurrent one of every step, quantizes
    its float left operand to uint8 as DynamicQuantizeLinear does (onnxruntime's rnn GEMM),
    multiplies exactly as integers and scales the sum by ``a_scale * w_scale``; the gates are
    LSTM's. float32 only, the numpy step loop (the compiled loop multiplies float weights)."""

    #: onnxruntime's step reads the previous step's output, zero for finished entries, and
    #: with quantized products the entries share the state's quantization range
    step_past_end = True

    def __init__(self, info: KernelInfo):
        super().__init__(info)
        self.jit = None
        self._packed: dict = {}  # (input index, direction) -> (weights, packed, blocks)

    def _operand(self, q, zp, d: int, index: int):
        """Direction ``d`` of the quantized ``q`` centred on its zero point as float32 (K, N),
        and the reduction blocks whose float32 sums stay exact; kept while ``q`` is the same
        array (a constant)."""
        hit = self._packed.get((index, d))
        if hit is not None and hit[0] is q:
            return hit[1], hit[2]
        z = np.float32(0) if zp is None else zp[d].astype(np.float32).reshape(-1)
        if np.size(z) not in (1, q.shape[2]):
            raise InvalidArgument(
                f"{self.info.node.label()}: zero point of input {index} has {np.size(z)} values "
                f"per direction; expected 1 or {q.shape[2]} (one per output column)."
            )
        packed = np.ascontiguousarray(q[d].astype(np.float32) - z)
        blocks = _k_blocks(packed, 255.0)
        self._packed[(index, d)] = (q, packed, blocks)
        return packed, blocks

    @staticmethod
    def _product(a, packed, blocks, scale) -> np.ndarray:
        aq, a_scale, a_zp = dynamic_quantize_linear(np.ascontiguousarray(a, np.float32))
        return integer_matmul_f32(aq, a_zp, packed, blocks) * (a_scale * scale)

    def recur(self, h, rt):
        return self._product(h, rt.packed, rt.blocks, rt.scale)

    def __call__(
        self, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None,
        W_scale=None, W_zero_point=None, R_scale=None, R_zero_point=None,
    ):  # fmt: skip
        X = X.astype(np.float32, copy=False)
        seq, batch, _ = X.shape
        n = R.shape[1]
        if sequence_lens is not None and np.all(np.asarray(sequence_lens) >= seq):
            sequence_lens = None
        B = np.zeros((self.num_dir, 8 * n), np.float32) if B is None else B
        h0 = np.zeros((self.num_dir, batch, n), np.float32) if initial_h is None else initial_h
        c0 = np.zeros((self.num_dir, batch, n), np.float32) if initial_c is None else initial_c
        extra = (c0, P)
        Y = np.zeros((seq, self.num_dir, batch, n), np.float32)
        finals = []
        for d in range(self.num_dir):
            reverse = self.reverse_only or d == 1
            wp, wb = self._operand(W, W_zero_point, d, 1)
            scale = W_scale[d].astype(np.float32).reshape(-1)
            xw = self._product(X.reshape(seq * batch, -1), wp, wb, scale).reshape(seq, batch, -1)
            xw += B[d, : 4 * n]
            r = _QuantizedWeights(*self._operand(R, R_zero_point, d, 2), R_scale[d])
            tidx, valid = _time_order(seq, batch, sequence_lens, reverse)
            xw = xw[tidx, np.arange(batch)[None, :]]
            states = (h0[d].astype(np.float32), c0[d].astype(np.float32))
            hs, states = self.run_direction(d, xw, valid, r, B[d, 4 * n :], states, extra)
            Y[tidx, d, np.arange(batch)[None, :]] = hs
            finals.append(states)
        return (Y, *(np.stack([f[k] for f in finals]) for k in range(2)))


_RNN_DTYPES = {0: FLOAT_TYPES}


def _projection(x2, wt_d, wb, shape: tuple, project) -> np.ndarray:
    """A direction's input projection ``x2 @ wt_d + wb`` of shape ``shape`` (seq, batch, G*n):
    the compiled ``project`` where given (a few rows, :data:`PROJECT_ROWS`), else numpy's
    product (its columns shared among the run's threads when large: numpy's bits) and the
    bias added."""
    if project is not None:
        xw = np.empty(shape, wb.dtype)
        project(np.ascontiguousarray(x2), wt_d, wb, xw.reshape(-1, shape[2]))
        return xw
    xw = _blas.matmul(x2, wt_d).reshape(shape)
    xw += wb
    return xw


def _compiled(dtype: np.dtype):
    """The compiled loop for ``dtype`` or None (tests replace this to take the numpy path)."""
    return _rnn_jit.compiled(dtype)


@builder("RNN", since=(1, 7, 14), dtypes=_RNN_DTYPES)
def rnn(info: KernelInfo):
    return _Recurrent(info)


@builder("GRU", since=(1, 3, 7, 14), dtypes=_RNN_DTYPES)
def gru(info: KernelInfo):
    return _GRU(info)


@builder("LSTM", since=(1, 7, 14), dtypes=_RNN_DTYPES)
def lstm(info: KernelInfo):
    return _LSTM(info)


@builder(
    "DynamicQuantizeLSTM",
    domain="com.microsoft",
    dtypes={0: frozenset({np.dtype(np.float32)}), 1: INT8_TYPES, 2: INT8_TYPES},
)
def dynamic_quantize_lstm(info: KernelInfo):
    return _DynamicQuantizeLSTM(info)
