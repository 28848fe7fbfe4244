"""Shared kernels at the edges numpy and cupy disagree on, and the ``matmul_by`` hook.

Host logic on numpy and array_api_strict arrays. A real GPU ran onnx's newer backend tests
(``test_mod_float_edge_cases_*``, ``test_bitshift_right_*_negative_shift``/``_shift_ge_width``)
and found the shared kernels relying on the namespace: cupy's ``remainder`` differs from
numpy's on infinities, and C's ``>>`` is undefined for shifts of the width or more. The
references here are numpy's ``mod``/``fmod`` (what the onnx tests and the CPU provider use) and
the CPU provider's BitShift. onnxruntime cannot be the reference: it refuses float Mod with
fmod=0 and BitShift of signed types.
"""

from __future__ import annotations

import array_api_strict as xs
import numpy as np
import ort_array
import pytest
from ort_array.kernels.elementwise import bit_shift, mod
from ort_array.kernels.linalg import einsum, gemm, matmul
from ort_cpu.kernels.elementwise import bit_shift as cpu_bit_shift

INF, NAN = np.inf, np.nan
NAMESPACES = {"numpy": lambda a: a, "array_api_strict": xs.asarray}


def _same(got, ref) -> bool:
    got = np.asarray(got)
    return (
        got.dtype == ref.dtype
        and np.array_equal(got, ref, equal_nan=True)
        and np.array_equal(np.signbit(got), np.signbit(ref))
    )


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize(
    ("ns", "dtype"),  # array_api_strict has no float16
    [(ns, dt) for ns in NAMESPACES for dt in (np.float16, np.float32, np.float64)
     if (ns, dt) != ("array_api_strict", np.float16)],
)  # fmt: skip
def test_float_mod_edge_cases_follow_numpy(ns, fmod, dtype):
    a = np.array([4, -4, 4, -4, 0, -0.0, 1, -1, INF, -INF, NAN, 3, 5.5, -5.5, 1, -1, 2, 7], dtype)
    b = np.array([2, 2, -2, -2, 3, -3, INF, INF, 2, 2, 2, NAN, 0, 2, -INF, -INF, 0, -3], dtype)
    with np.errstate(all="ignore"):
        ref = (np.fmod if fmod else np.mod)(a, b)
    arr = NAMESPACES[ns]
    assert _same(mod(arr(a), arr(b), fmod=fmod), ref)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint32])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bit_shift_out_of_range_matches_the_cpu_provider(ns, dtype, direction):
    bits = np.dtype(dtype).itemsize * 8
    signed = np.dtype(dtype).kind == "i"
    a = np.array(
        [-8, 8, -8, 8, -1, 5, -128, 3] if signed else [8, 8, 200, 1, 255, 5, 128, 3], dtype
    )
    s = np.array([1, 1, bits, bits + 1, 0, bits - 1, 3, 100], dtype)
    if signed:
        s[4] = -1  # a negative shift amount
    ref = cpu_bit_shift(a, s, direction=direction)
    arr = NAMESPACES[ns]
    got = np.asarray(bit_shift(arr(a), arr(s), direction=direction))
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == ref.dtype


def test_matmul_by_routes_every_product_of_the_shared_kernels():
    """A provider's product replaces ``xp.matmul`` on its thread for MatMul, Gemm and Einsum
    (Einsum then avoids the namespace's own einsum), and only inside the block."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    calls = []

    def product(xp, x, y):
        calls.append((x.shape, y.shape))
        return xp.matmul(x, y)

    gemm_run = gemm(_Info({"transB": 1, "alpha": 2.0}))
    c = rng.standard_normal((5, 4))
    with ort_array.matmul_by(product):
        np.testing.assert_allclose(matmul(a, b), a @ b)
        np.testing.assert_allclose(gemm_run(a[0], c), 2.0 * a[0] @ c.T)
        np.testing.assert_allclose(einsum(a, b, equation="bij,jk->bik"), a @ b, rtol=1e-12)
    assert len(calls) == 2  # MatMul and Gemm; Einsum used broadcasting products, no einsum
    matmul(a, b)
    assert len(calls) == 2  # outside the block: xp.matmul


class _Info:
    """The part of a KernelInfo a builder reads: attributes."""

    def __init__(self, attrs):
        self._attrs = attrs

    def attr(self, name, default=None):
        return self._attrs.get(name, default)

    @property
    def attrs(self):
        return dict(self._attrs)


def test_no_host_waits_skips_the_index_check_and_clamps():
    """Inside ``no_host_waits`` (a CUDA-graph capture) index checks read nothing on the host:
    negatives wrap, out-of-range indices clamp; outside it they are a typed error."""
    from ort_array._xp import check_indices

    from ort_core.errors import InvalidArgument

    idx = np.array([0, -1, 4, 7, -9], np.int64)
    with pytest.raises(InvalidArgument, match=r"Gather: index -9 is out of range \[-5, 4\]"):
        check_indices(np, idx, 5, "Gather")
    with ort_array.no_host_waits():
        np.testing.assert_array_equal(check_indices(np, idx, 5, "Gather"), [0, 4, 4, 4, 0])
    np.testing.assert_array_equal(check_indices(np, idx[:3], 5, "Gather"), [0, 4, 4])
