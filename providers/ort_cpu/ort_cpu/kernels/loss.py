"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (a direct kernel; the standard also
defines it as a function of LogSoftmax and NegativeLogLikelihoodLoss)."""

from __future__ import annotations

import numpy as np

from ort_core.provider import FLOAT_TYPES, KernelUnsupported

from ._registry import builder

_REDUCTIONS = ("none", "sum", "mean")


def _check_reduction(info):
    r = info.attr("reduction", "mean")
    return None if r in _REDUCTIONS else f"reduction '{r}' is not one of {_REDUCTIONS}"


def _nll(log_prob, target, weight, reduction, ignore_index):
    """-log_prob[n, target[n, ...], ...] weighted, ignoring ``ignore_index``, then reduced."""
    target = target.astype(np.int64, copy=False)
    valid = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    safe = np.where(valid, target, 0)
    c = log_prob.shape[1]
    if np.any((safe < 0) | (safe >= c)):
        bad = safe[(safe < 0) | (safe >= c)].reshape(-1)[0]
        raise ValueError(f"target value {bad} is out of range [0, {c}) of the class axis")
    picked = np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1).squeeze(1)
    w = np.ones(target.shape, dtype=log_prob.dtype) if weight is None else weight[safe]
    w = np.where(valid, w, 0).astype(log_prob.dtype, copy=False)
    loss = -picked * w
    if reduction == "none":
        return loss.astype(log_prob.dtype, copy=False)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=log_prob.dtype)
    total = w.sum()
    return np.asarray(loss.sum() / total if total != 0 else np.float64(0), dtype=log_prob.dtype)


@builder(
    "NegativeLogLikelihoodLoss", since=(12, 13, 22), dtypes=FLOAT_TYPES, check=_check_reduction
)
def negative_log_likelihood_loss(info):
    reduction = info.attr("reduction", "mean")
    ignore_index = info.attr("ignore_index")

    def run(x, target, weight=None):
        return _nll(x, target, weight, reduction, ignore_index)

    return run


def _log_softmax_axis1(x):
    m = x.max(axis=1, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@builder("SoftmaxCrossEntropyLoss", since=(12, 13), dtypes=FLOAT_TYPES, check=_check_reduction)
def softmax_cross_entropy_loss(info):
    reduction = info.attr("reduction", "mean")
    ignore_index = info.attr("ignore_index")
    if info.input_dtype(0) is not None and info.input_dtype(0).itemsize < 4:
        compute = np.float32
    else:
        compute = None

    def run(scores, labels, weights=None):
        dtype = scores.dtype
        x = scores.astype(compute) if compute is not None else scores
        if x.ndim < 2:
            raise KernelUnsupported("scores must have shape (N, C, ...)")
        log_prob = _log_softmax_axis1(x)
        w = None if weights is None else weights.astype(log_prob.dtype, copy=False)
        loss = _nll(log_prob, labels, w, reduction, ignore_index).astype(dtype, copy=False)
        return loss, log_prob.astype(dtype, copy=False)

    return run
