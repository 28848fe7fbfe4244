"""The MIL reference runtime: evaluates a converted MIL program with numpy, op by op.

It is a test oracle for the translation from ONNX to Core ML, not Core ML: it runs wherever
coremltools installs (Linux included) and only when asked for (``ORT_COREML_REFERENCE=1``).

Each op is evaluated by coremltools' own value inference where the op has one (the op is rebuilt
with constant inputs inside a scratch MIL function, which makes coremltools compute its value), and
by the numpy implementations in :data:`NUMPY_OPS` for the ops whose value inference is missing.
Those numpy implementations are checked one by one against onnx's ReferenceEvaluator
(tests/providers/coreml/test_milref.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core.errors import EPFail

from .convert import coremltools


def _pads(pad, n: int) -> list[tuple[int, int]]:
    pad = [int(p) for p in np.asarray(pad).reshape(-1)] if pad is not None else [0] * (2 * n)
    return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]


def _windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """Sliding windows over the spatial axes of (N, C, *D): (N, C, *out, *kernel)."""
    n = x.ndim - 2
    view = np.lib.stride_tricks.sliding_window_view(
        x, [(k - 1) * d + 1 for k, d in zip(kernel, dilations)], axis=tuple(range(2, 2 + n))
    )
    idx = (slice(None), slice(None))
    idx += tuple(slice(None, None, s) for s in strides)
    idx += tuple(slice(None, None, d) for d in dilations)
    return view[idx]


def conv(x, weight, bias=None, strides=None, pad_type="custom", pad=None, dilations=None,
         groups=1, **_) -> np.ndarray:  # fmt: skip
    n = x.ndim - 2
    strides = [1] * n if strides is None else list(strides)
    dilations = [1] * n if dilations is None else list(dilations)
    if pad_type != "custom":
        raise NotImplementedError(f"conv pad_type={pad_type}")
    acc = np.float64 if x.dtype == np.float64 else np.float32
    xp = np.pad(x.astype(acc), [(0, 0), (0, 0)] + _pads(pad, n))
    w = weight.astype(acc)
    win = _windows(xp, w.shape[2:], strides, dilations)  # N, C, *out, *k
    g = int(groups)
    cin, cout = x.shape[1] // g, w.shape[0] // g
    outs = []
    letters = "defgh"[:n]
    for i in range(g):
        part = win[:, i * cin : (i + 1) * cin]
        wg = w[i * cout : (i + 1) * cout]
        spec = f"nc{letters.upper()}{letters},oc{letters}->no{letters.upper()}"
        outs.append(np.einsum(spec, part, wg, optimize=True))
    y = np.concatenate(outs, axis=1)
    if bias is not None:
        y = y + bias.astype(acc).reshape((1, -1) + (1,) * n)
    return y.astype(x.dtype)


def conv_transpose(x, weight, bias=None, strides=None, pad_type="custom", pad=None,
                   dilations=None, groups=1, output_shape=None, **_) -> np.ndarray:  # fmt: skip
    n = x.ndim - 2
    strides = [1] * n if strides is None else [int(s) for s in strides]
    dilations = [1] * n if dilations is None else [int(d) for d in dilations]
    pads = _pads(pad, n)
    g = int(groups)
    cin, cout_g = x.shape[1] // g, weight.shape[1]
    k = weight.shape[2:]
    full = [
        (i - 1) * s + (kk - 1) * d + 1 for i, s, kk, d in zip(x.shape[2:], strides, k, dilations)
    ]
    if output_shape is not None:
        out_sp = [int(v) for v in np.asarray(output_shape).reshape(-1)[-n:]]
        full = [max(f, p[0] + o) for f, p, o in zip(full, pads, out_sp)]
    else:
        out_sp = [f - b - e for f, (b, e) in zip(full, pads)]
    acc = np.float32
    y = np.zeros((x.shape[0], cout_g * g, *full), acc)
    xa, wa = x.astype(acc), weight.astype(acc)
    for gi in range(g):
        xs = xa[:, gi * cin : (gi + 1) * cin]
        ws = wa[gi * cin : (gi + 1) * cin]  # (cin, cout_g, *k)
        for kidx in np.ndindex(*k):
            contrib = np.einsum("nc...,co->no...", xs, ws[(slice(None), slice(None)) + kidx])
            sl = tuple(
                slice(kk * d, kk * d + (i - 1) * s + 1, s)
                for kk, d, i, s in zip(kidx, dilations, x.shape[2:], strides)
            )
            y[(slice(None), slice(gi * cout_g, (gi + 1) * cout_g)) + sl] += contrib
    crop = tuple(slice(b, b + o) for (b, _), o in zip(pads, out_sp))
    y = y[(slice(None), slice(None)) + crop]
    if bias is not None:
        y = y + bias.astype(acc).reshape((1, -1) + (1,) * n)
    return y.astype(x.dtype)


def _pool(x, kernel_sizes, strides, pad_type, pad, fill, reduce, **_):
    n = x.ndim - 2
    if pad_type != "custom":
        raise NotImplementedError(f"pool pad_type={pad_type}")
    xp = np.pad(x, [(0, 0), (0, 0)] + _pads(pad, n), constant_values=fill)
    win = _windows(xp, list(kernel_sizes), list(strides), [1] * n)
    return reduce(win, tuple(range(-n, 0)))


def max_pool(x, kernel_sizes, strides=None, pad_type="custom", pad=None, ceil_mode=False, **_):
    strides = strides if strides is not None else [1] * (x.ndim - 2)
    return _pool(x, kernel_sizes, strides, pad_type, pad, -np.inf, lambda w, a: w.max(axis=a))


def avg_pool(x, kernel_sizes, strides=None, pad_type="custom", pad=None,
             exclude_padding_from_average=False, ceil_mode=False, **_):  # fmt: skip
    n = x.ndim - 2
    strides = strides if strides is not None else [1] * n
    acc = x.astype(np.float32)
    total = _pool(acc, kernel_sizes, strides, pad_type, pad, 0.0, lambda w, a: w.sum(axis=a))
    if exclude_padding_from_average:
        ones = np.ones((1, 1) + x.shape[2:], np.float32)
        count = _pool(ones, kernel_sizes, strides, pad_type, pad, 0.0, lambda w, a: w.sum(axis=a))
    else:
        count = float(np.prod(kernel_sizes))
    return (total / count).astype(x.dtype)


def _per_channel(v, rank: int) -> np.ndarray:
    return np.asarray(v, np.float32).reshape((1, -1) + (1,) * (rank - 2))


def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5, **_):
    """Inference batch normalization over the channel axis 1 of (N, C, *D)."""
    r = x.ndim
    y = (x.astype(np.float32) - _per_channel(mean, r)) / np.sqrt(
        _per_channel(variance, r) + np.float32(epsilon)
    )
    if gamma is not None:
        y = y * _per_channel(gamma, r)
    if beta is not None:
        y = y + _per_channel(beta, r)
    return y.astype(x.dtype)


def instance_norm(x, gamma=None, beta=None, epsilon=1e-5, **_):
    """Normalization over the spatial axes of each (n, c) of (N, C, *D)."""
    axes = tuple(range(2, x.ndim))
    acc = x.astype(np.float32)
    mean = acc.mean(axis=axes, keepdims=True)
    var = ((acc - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (acc - mean) / np.sqrt(var + np.float32(epsilon))
    if gamma is not None:
        y = y * _per_channel(gamma, x.ndim)
    if beta is not None:
        y = y + _per_channel(beta, x.ndim)
    return y.astype(x.dtype)


def silu(x, **_):
    a = x.astype(np.float32)
    return (a / (1 + np.exp(-a))).astype(x.dtype)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0, **_):
    size = int(size)
    sq = x.astype(np.float32) ** 2
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2  # ONNX: floor((size-1)/2) before, ceil((size-1)/2) after
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    s = sum(padded[:, i : i + c] for i in range(size))
    return (x / (np.float32(k) + np.float32(alpha) / size * s) ** np.float32(beta)).astype(x.dtype)


def depth_to_space(x, block_size, **_):
    """DCR order: channel index = (row offset * b + column offset) * C' + c."""
    b = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def pixel_shuffle(x, upscale_factor, **_):
    """CRD order: channel index = c * b * b + row offset * b + column offset."""
    b = int(upscale_factor)
    n, c, h, w = x.shape
    y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(x, block_size, **_):
    """The inverse of depth_to_space (DCR)."""
    b = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def upsample_nearest_neighbor(x, scale_factor_height=1, scale_factor_width=1, **_):
    """Output pixel (i, j) is input pixel (floor(i / sh), floor(j / sw))."""
    h, w = x.shape[-2:]
    sh, sw = float(scale_factor_height), float(scale_factor_width)
    rows = np.minimum(np.floor(np.arange(int(np.floor(h * sh))) / sh).astype(int), h - 1)
    cols = np.minimum(np.floor(np.arange(int(np.floor(w * sw))) / sw).astype(int), w - 1)
    return x[..., rows, :][..., cols]


def _bilinear_grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """resize_bilinear's sample positions along one axis (coremltools' documented grid)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode == "STRICT_ALIGN_CORNERS":
        g = i * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(1)
    elif mode == "DEFAULT":
        g = i * ((n_in - n_in / n_out) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    elif mode == "UNALIGN_CORNERS":
        g = (i + 0.5) * (n_in / n_out) - 0.5
    else:
        raise NotImplementedError(f"resize_bilinear sampling_mode={mode}")
    return np.clip(g, 0, n_in - 1)


def _lerp_axis(x: np.ndarray, grid: np.ndarray, axis: int) -> np.ndarray:
    lo = np.floor(grid).astype(int)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    t = (grid - lo).reshape((-1,) + (1,) * (x.ndim - 1 - (axis % x.ndim)))
    return np.take(x, lo, axis=axis) * (1 - t) + np.take(x, hi, axis=axis) * t


def resize_bilinear(x, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT", **_):
    """Linear interpolation of the last two axes at the sampling mode's grid (clamped)."""
    h, w = x.shape[-2:]
    mode = str(sampling_mode)
    y = x.astype(np.float64)
    y = _lerp_axis(y, _bilinear_grid(h, int(target_size_height), mode), -2)
    y = _lerp_axis(y, _bilinear_grid(w, int(target_size_width), mode), -1)
    return y.astype(x.dtype)


def _tap(i: np.ndarray, n: int, padding_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixel index ``i`` along an axis of ``n`` pixels under resample's padding: the index read
    and whether the tap lies inside (a ``constant`` tap outside reads the padding value)."""
    if padding_mode == "constant":
        return np.clip(i, 0, n - 1), (i >= 0) & (i < n)
    if padding_mode == "border":
        return np.clip(i, 0, n - 1), np.ones(i.shape, bool)
    if padding_mode == "reflection":  # about the edge pixels: |1 2 3| -> 2 3 2 1 2 3 2 1
        if n == 1:
            return np.zeros_like(i), np.ones(i.shape, bool)
        m = np.mod(i, 2 * (n - 1))
        return np.where(m >= n, 2 * (n - 1) - m, m), np.ones(i.shape, bool)
    if padding_mode == "symmetric":  # the edge pixels repeated: |1 2 3| -> 3 2 1 1 2 3 3 2 1
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m), np.ones(i.shape, bool)
    raise NotImplementedError(f"resample padding_mode={padding_mode}")


def resample(x, coordinates, sampling_mode="bilinear", padding_mode="constant",
             padding_value=0.0, coordinates_mode="normalized_minus_one_to_one",
             align_corners=False, **_) -> np.ndarray:  # fmt: skip
    """Sample (B, C, H, W) at the (x, y) pairs of coordinates (B, H2, W2, 2), the input padded
    by ``padding_mode`` (coremltools' documented op; bilinear, or nearest rounding half to
    even as PyTorch's grid_sample, whose frontend maps onto it)."""
    if str(coordinates_mode) != "normalized_minus_one_to_one":
        raise NotImplementedError(f"resample coordinates_mode={coordinates_mode}")
    mode, pad = str(sampling_mode), str(padding_mode)
    h, w = x.shape[-2:]
    g = np.asarray(coordinates, np.float64)

    def denorm(v, n):
        return (v + 1) / 2 * (n - 1) if bool(align_corners) else ((v + 1) * n - 1) / 2

    cx, cy = denorm(g[..., 0], w), denorm(g[..., 1], h)  # (B, H2, W2)
    xf = x.astype(np.float64)
    b = np.arange(x.shape[0])[:, None, None]

    def pixel(iy, ix):  # (B, C, H2, W2)
        ry, oky = _tap(iy, h, pad)
        rx, okx = _tap(ix, w, pad)
        v = xf[b, :, ry, rx]  # (B, H2, W2, C)
        v = np.where((oky & okx)[..., None], v, float(padding_value))
        return np.moveaxis(v, -1, 1)

    if mode == "nearest":
        y = pixel(np.rint(cy).astype(np.int64), np.rint(cx).astype(np.int64))
    elif mode == "bilinear":
        y0, x0 = np.floor(cy).astype(np.int64), np.floor(cx).astype(np.int64)
        ty, tx = (cy - y0)[:, None], (cx - x0)[:, None]
        y = (pixel(y0, x0) * (1 - ty) * (1 - tx) + pixel(y0, x0 + 1) * (1 - ty) * tx
             + pixel(y0 + 1, x0) * ty * (1 - tx) + pixel(y0 + 1, x0 + 1) * ty * tx)  # fmt: skip
    else:
        raise NotImplementedError(f"resample sampling_mode={mode}")
    return y.astype(x.dtype)


def gather_nd(x, indices, batch_dims=0, **_):
    """iOS 17's gather_nd: output ``indices.shape[:-1] + x.shape[batch_dims + k:]``, each row of
    ``k`` indices picking a slice of its batch's ``x``; indices in [0, dim) only (iOS 17 reads
    negative ones as out of bounds, an error here)."""
    b, k = int(batch_dims), indices.shape[-1]
    bounds = np.array(x.shape[b : b + k])
    if np.any(indices < 0) or np.any(indices >= bounds):
        raise IndexError(f"gather_nd: indices outside [0, {list(bounds)}) of iOS 17's gather_nd")
    xb = x.reshape((-1,) + x.shape[b:])
    ib = indices.reshape((xb.shape[0], -1, k))
    out = np.stack([xb[i][tuple(ib[i].T)] for i in range(xb.shape[0])])
    return out.reshape(indices.shape[:-1] + x.shape[b + k :])


_ACTIVATIONS = {
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0),
}


def _recurrent(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, cell):
    """Run ``cell(gates_x, h) -> h`` over the steps of x (s, b, I), forward only (the builders
    emit no other direction): (all states or the last, last state)."""
    if str(direction) != "forward":
        raise NotImplementedError(f"recurrent direction={direction}")
    acc = np.float64
    gx = np.einsum("sbi,gi->sbg", x.astype(acc), weight_ih.astype(acc))
    if bias is not None:
        gx = gx + bias.astype(acc)
    h = np.asarray(initial_h, acc)
    wh = weight_hh.astype(acc)
    states = []
    for t in range(x.shape[0]):
        h = cell(gx[t], h, wh)
        states.append(h)
    y = np.stack(states) if bool(output_sequence) else h[None]
    return y.astype(x.dtype), h.astype(x.dtype)


def lstm(x, initial_h, initial_c, weight_ih, weight_hh, bias=None, direction="forward",
         output_sequence=False, recurrent_activation="sigmoid", cell_activation="tanh",
         activation="tanh", peephole=None, clip=None, **_):  # fmt: skip
    """coremltools' lstm, gates stacked (input, forget, output, cell)."""
    if peephole is not None or clip is not None:
        raise NotImplementedError("lstm with peephole or clip")
    f, g, hact = (_ACTIVATIONS[str(a)] for a in (recurrent_activation, cell_activation,
                                                  activation))  # fmt: skip
    c = [np.asarray(initial_c, np.float64)]

    def cell(gx, h, wh):
        i, fg, o, z = np.split(gx + h @ wh.T, 4, axis=-1)
        c[0] = f(fg) * c[0] + f(i) * g(z)
        return f(o) * hact(c[0])

    y, h = _recurrent(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, cell)
    return y, h, c[0].astype(x.dtype)


def gru(x, initial_h, weight_ih, weight_hh, bias=None, direction="forward",
        output_sequence=False, recurrent_activation="sigmoid", activation="tanh", **_):  # fmt: skip
    """coremltools' gru, gates stacked (reset, output, update):
    o = act(W_o x + r * (R_o h) + b_o), h' = (1 - z) * o + z * h."""
    f, g = _ACTIVATIONS[str(recurrent_activation)], _ACTIVATIONS[str(activation)]

    def cell(gx, h, wh):
        n = h.shape[-1]
        xr, xo, xz = np.split(gx, 3, axis=-1)
        hr, ho, hz = h @ wh[:n].T, h @ wh[n : 2 * n].T, h @ wh[2 * n :].T
        r, z = f(xr + hr), f(xz + hz)
        o = g(xo + r * ho)
        return (1 - z) * o + z * h

    return _recurrent(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence, cell)


def rnn(x, initial_h, weight_ih, weight_hh, bias=None, direction="forward",
        output_sequence=False, activation="tanh", **_):  # fmt: skip
    """coremltools' rnn: h' = act(W x + R h + b)."""
    act = _ACTIVATIONS[str(activation)]
    return _recurrent(x, initial_h, weight_ih, weight_hh, bias, direction, output_sequence,
                      lambda gx, h, wh: act(gx + h @ wh.T))  # fmt: skip


#: MIL op -> numpy implementation, for the ops whose coremltools value inference is missing
NUMPY_OPS: dict[str, Callable[..., np.ndarray]] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "batch_norm": batch_norm,
    "instance_norm": instance_norm,
    "local_response_norm": local_response_norm,
    "silu": silu,
    "depth_to_space": depth_to_space,
    "pixel_shuffle": pixel_shuffle,
    "space_to_depth": space_to_depth,
    "upsample_nearest_neighbor": upsample_nearest_neighbor,
    "resize_bilinear": resize_bilinear,
    "resample": resample,
    "gather_nd": gather_nd,
    "lstm": lstm,
    "gru": gru,
    "rnn": rnn,
}


class MilReferenceRuntime:
    """Evaluate the ``main`` function of a MIL program on numpy inputs (see the module doc)."""

    #: what this runtime is, as sessions and tests report it (never "Core ML")
    name = "MIL reference runtime (numpy)"

    def __init__(self, program: Any) -> None:
        self.program = program
        self.func = program.functions["main"]
        self.opset = self.func.opset_version

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Values of the function's outputs, by MIL name, for ``feeds`` (MIL input name -> array)."""
        env: dict[str, Any] = {}
        for name in self.func.inputs:
            env[name] = np.asarray(feeds[name])
        for op in self.func.operations:
            self._eval(op, env)
        return {v.name: np.asarray(env[v.name]) for v in self.func.outputs}

    def _eval(self, op: Any, env: dict[str, Any]) -> None:
        if op.op_type == "const":
            env[op.outputs[0].name] = op.outputs[0].val
            return
        kwargs: dict[str, Any] = {}
        for key, var in op.inputs.items():
            if isinstance(var, (list, tuple)):
                kwargs[key] = [self._value(v, env) for v in var]
            else:
                kwargs[key] = self._value(var, env)
        impl = NUMPY_OPS.get(op.op_type)
        if impl is not None:
            results = impl(**kwargs)
            results = results if isinstance(results, tuple) else (results,)
        else:
            results = self._infer(op, kwargs)
        for var, value in zip(op.outputs, results):
            value = np.asarray(value)
            want = _np_dtype(var.dtype)
            if want is not None and value.dtype != want:
                value = value.astype(want)
            env[var.name] = value

    @staticmethod
    def _value(var: Any, env: dict[str, Any]) -> Any:
        if var.name in env:
            return env[var.name]
        if var.val is not None:
            return var.val
        raise EPFail(f"MIL reference runtime: value '{var.name}' is read before it is computed.")

    def _infer(self, op: Any, kwargs: dict[str, Any]) -> tuple:
        """coremltools' value inference of ``op`` on constant inputs."""
        coremltools()
        from coremltools.converters.mil import Builder as mb
        from coremltools.converters.mil.mil import Function

        with Function({}, opset_version=self.opset), _quiet():
            try:
                out = getattr(mb, op.op_type)(**kwargs)
            except Exception as e:
                raise EPFail(
                    f"MIL reference runtime: coremltools could not evaluate {op.op_type} "
                    f"('{op.name}'): {type(e).__name__}: {e}"
                ) from e
        outs = out if isinstance(out, (list, tuple)) else (out,)
        values = []
        for v in outs:
            if v.val is None:
                raise EPFail(
                    f"MIL reference runtime: {op.op_type} ('{op.name}') has no value inference in "
                    "coremltools and no numpy implementation here; add one to NUMPY_OPS with a "
                    "test against onnx's ReferenceEvaluator."
                )
            values.append(v.val)
        return tuple(values)


@contextlib.contextmanager
def _quiet():
    """coremltools warns when it stores an int64 value in an int32 tensor, which is what Core ML
    itself does with these values: keep those warnings off the log while evaluating."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _np_dtype(dtype: Any) -> np.dtype | None:
    from coremltools.converters.mil.mil import types

    try:
        return np.dtype(types.nptype_from_builtin(dtype))
    except Exception:  # a non-tensor type (list, state): leave the value as computed
        return None
