"""Random generators: RandomNormal/Uniform(+Like), Bernoulli, Multinomial.

With a ``seed`` attribute every run draws from a fresh generator seeded with it, so the same model
gives the same values on every run; without one, nodes draw from the stream that
``ort_core.set_seed()`` started when it was called (reproducible from that call on), else fresh OS
entropy on every run. The values are
not those of onnxruntime or of the reference evaluator (the spec leaves the generator open).
"""

from __future__ import annotations

import numpy as np

from ort_core._onnx import helper
from ort_core.environment import seeded_generator
from ort_core.provider import FLOAT_TYPES

from ._registry import kernel


def _rng(seed: float | None) -> np.random.Generator:
    if seed is None:
        return seeded_generator() or np.random.default_rng()
    # The float's bit pattern: distinct seeds (negative or fractional too) give distinct streams.
    return np.random.default_rng(int(np.float64(seed).view(np.uint64)))


def _out_dtype(dtype: int | None, like: np.ndarray | None = None) -> np.dtype:
    if dtype is None:
        return like.dtype
    return np.dtype(helper.tensor_dtype_to_np_dtype(dtype))


def _normal(shape, dtype, mean, scale, seed) -> np.ndarray:
    return _rng(seed).normal(mean, scale, size=tuple(shape)).astype(dtype)


def _uniform(shape, dtype, low, high, seed) -> np.ndarray:
    return _rng(seed).uniform(low, high, size=tuple(shape)).astype(dtype)


@kernel("RandomNormal", since=1)
def random_normal(*, shape, dtype=1, mean=0.0, scale=1.0, seed=None):
    return _normal(shape, _out_dtype(dtype), mean, scale, seed)


@kernel("RandomUniform", since=1)
def random_uniform(*, shape, dtype=1, high=1.0, low=0.0, seed=None):
    return _uniform(shape, _out_dtype(dtype), low, high, seed)


@kernel("RandomNormalLike", since=1)
def random_normal_like(x, dtype=None, mean=0.0, scale=1.0, seed=None):
    return _normal(x.shape, _out_dtype(dtype, x), mean, scale, seed)


@kernel("RandomUniformLike", since=1)
def random_uniform_like(x, dtype=None, high=1.0, low=0.0, seed=None):
    return _uniform(x.shape, _out_dtype(dtype, x), low, high, seed)


@kernel("Bernoulli", since=15, dtypes=FLOAT_TYPES)
def bernoulli(x, dtype=None, seed=None):
    draws = _rng(seed).random(x.shape) < x.astype(np.float64)
    return draws.astype(_out_dtype(dtype, x))


@kernel("Multinomial", since=7, dtypes=FLOAT_TYPES)
def multinomial(x, dtype=6, sample_size=1, seed=None):
    """Samples class indices; each row of ``x`` holds unnormalized log-probabilities."""
    logits = x.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    cdf /= cdf[..., -1:]
    u = _rng(seed).random((x.shape[0], sample_size))
    idx = (cdf[:, None, :] <= u[:, :, None]).sum(axis=-1)
    return np.minimum(idx, x.shape[-1] - 1).astype(_out_dtype(dtype))
