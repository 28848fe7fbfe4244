"""ai.onnx.preview.training optimizers: Adagrad, Adam and Momentum (one update step each).

Each takes a learning rate R, an update count T and then its tensors grouped by role: Adagrad
``X..., G..., H...``, Adam ``X..., G..., V..., H...``, Momentum ``X..., G..., V...``; it returns the
updated tensors grouped the same way (without the gradients). Scalar factors are computed in float64
and every output keeps the element type of its X.

Gradient (the same domain) is not here: it differentiates the enclosing graph, which a kernel cannot
see (see the issue-5 report).
"""

from __future__ import annotations

import math

import numpy as np

from ._registry import builder

_TRAINING = "ai.onnx.preview.training"
_F = frozenset(map(np.dtype, (np.float32, np.float64)))
_TYPES = {0: _F, 1: frozenset({np.dtype(np.int64)}), 2: _F}


def _groups(n_roles: int, what: str):
    """A check that the node has R, T and a multiple of ``n_roles`` tensors (and as many outputs
    as the tensors it updates)."""

    def check(info):
        n = info.num_inputs - 2
        if n <= 0 or n % n_roles:
            return f"expects R, T and {what} ({n_roles} tensors per optimized tensor), got {n}"
        return None

    return check


def _split(tensors, n_roles):
    k = len(tensors) // n_roles
    return [tensors[i * k : (i + 1) * k] for i in range(n_roles)]


def _float(a) -> float:
    return float(np.asarray(a).reshape(-1)[0])


def _count(t) -> int:
    return int(np.asarray(t).reshape(-1)[0])


@builder("Adagrad", since=1, domain=_TRAINING, dtypes=_TYPES, check=_groups(3, "X..., G..., H..."))
def adagrad(info):
    norm = info.attr("norm_coefficient", 0.0)
    decay = info.attr("decay_factor", 0.0)
    eps = info.attr("epsilon", 1e-6)

    def run(r, t, *tensors):
        xs, gs, hs = _split(tensors, 3)
        lr = _float(r) / (1.0 + _count(t) * decay)
        new_x, new_h = [], []
        for x, g, h in zip(xs, gs, hs):
            dt = x.dtype
            g_reg = (norm * x + g).astype(dt, copy=False)
            h_new = (h + g_reg * g_reg).astype(dt, copy=False)
            x_new = x - (lr * g_reg / (np.sqrt(h_new) + eps)).astype(dt, copy=False)
            new_x.append(x_new.astype(dt, copy=False))
            new_h.append(h_new)
        return new_x + new_h

    return run


@builder(
    "Adam", since=1, domain=_TRAINING, dtypes=_TYPES, check=_groups(4, "X..., G..., V..., H...")
)
def adam(info):
    alpha = info.attr("alpha", 0.9)
    beta = info.attr("beta", 0.999)
    eps = info.attr("epsilon", 1e-6)
    norm = info.attr("norm_coefficient", 0.0)
    norm_post = info.attr("norm_coefficient_post", 0.0)

    def run(r, t, *tensors):
        xs, gs, vs, hs = _split(tensors, 4)
        lr, step = _float(r), _count(t)
        if step > 0:
            lr = lr * math.sqrt(1.0 - beta**step) / (1.0 - alpha**step)
        new_x, new_v, new_h = [], [], []
        for x, g, v, h in zip(xs, gs, vs, hs):
            dt = x.dtype
            g_reg = (norm * x + g).astype(dt, copy=False)
            v_new = (alpha * v + (1 - alpha) * g_reg).astype(dt, copy=False)
            h_new = (beta * h + (1 - beta) * g_reg * g_reg).astype(dt, copy=False)
            x_new = x - lr * v_new / (np.sqrt(h_new) + eps)
            new_x.append(((1 - norm_post) * x_new).astype(dt, copy=False))
            new_v.append(v_new)
            new_h.append(h_new)
        return new_x + new_v + new_h

    return run


_MODES = ("standard", "nesterov")


def _check_momentum(info):
    missing = [a for a in ("alpha", "beta", "norm_coefficient", "mode") if info.attr(a) is None]
    if missing:
        return f"required attribute(s) {missing} missing"
    if info.attr("mode") not in _MODES:
        return f"mode '{info.attr('mode')}' is not one of {_MODES}"
    return _groups(3, "X..., G..., V...")(info)


@builder("Momentum", since=1, domain=_TRAINING, dtypes=_TYPES, check=_check_momentum)
def momentum(info):
    alpha = info.attr("alpha")
    beta = info.attr("beta")
    norm = info.attr("norm_coefficient")
    nesterov = info.attr("mode") == "nesterov"

    def run(r, t, *tensors):
        xs, gs, vs = _split(tensors, 3)
        lr = _float(r)
        beta_adj = beta if _count(t) > 0 else 1.0
        new_x, new_v = [], []
        for x, g, v in zip(xs, gs, vs):
            dt = x.dtype
            g_reg = (norm * x + g).astype(dt, copy=False)
            v_new = (alpha * v + beta_adj * g_reg).astype(dt, copy=False)
            step = g_reg + alpha * v_new if nesterov else v_new
            new_x.append((x - lr * step).astype(dt, copy=False))
            new_v.append(v_new)
        return new_x + new_v

    return run
