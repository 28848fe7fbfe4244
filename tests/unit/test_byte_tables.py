"""The 256-entry byte tables of the quantized unary ops (QLinearSigmoid, QLinearLeakyRelu,
QLinearConcat's requantization) looked up 64 bytes at a time with AVX-512 VBMI byte permutes
(``ort_cpu.kernels._fma.table_bytes``), the rest one at a time: the table's bytes exactly, at
every length and for both halves of the table (host logic; the vector path is device code of
this CPU, checked where it has VBMI)."""

from __future__ import annotations

import numpy as np
import pytest
from ort_cpu import _jit
from ort_cpu.kernels import _quant_jit, contrib

pytestmark = pytest.mark.skipif(not _jit.available(), reason=_jit.reason() or "no numba")


def _vbmi() -> bool:
    return contrib._lookup_split() != contrib.QUANT_SPLIT


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 127, 128, 1000, 64 * 37 + 5])
def test_lookup_gives_the_tables_bytes(dtype, n):
    rng = np.random.default_rng(n)
    table = rng.integers(0, 256, 256).astype(np.uint8).view(dtype)
    x = rng.integers(0, 256, n).astype(np.uint8)
    x[: min(n, 256)] = np.arange(min(n, 256), dtype=np.uint8)  # every index, top bit both ways
    out = np.full(n, 7, dtype)
    look = _quant_jit.warm_lookup()
    look(x, table, out)
    np.testing.assert_array_equal(out, table[x])


def test_whole_blocks_go_through_the_byte_permutes_where_the_cpu_has_them():
    """Device (this CPU): with VBMI the intrinsic does every whole 64-byte block itself and
    reports it; without, it does none (the loop does them all)."""
    from numba import njit
    from ort_cpu.kernels._fma import table_bytes

    @njit
    def blocks(x, table, out):
        return table_bytes(x.ctypes.data, table.ctypes.data, out.ctypes.data, x.shape[0])

    x = np.arange(200, dtype=np.uint8)
    table = np.arange(256, dtype=np.uint8)[::-1].copy()
    out = np.zeros(200, np.uint8)
    done = blocks(x, table, out)
    if not _vbmi():
        assert done == 0 and not out.any()
        pytest.skip("this CPU has no AVX-512 VBMI: the byte loop does the lookups")
    assert done == 192
    np.testing.assert_array_equal(out[:192], table[x[:192]])
    assert not out[192:].any()  # the tail is the caller's
