"""ort_cpu.kernels._rows: per-row broadcasts with numpy's small ufunc buffer on long rows."""

from __future__ import annotations

import numpy as np
import pytest
from ort_cpu.kernels import _rows


@pytest.mark.parametrize("shape", [(2, 3, 40, 40), (1, 5, 7, 7), (3, 1000)])
@pytest.mark.parametrize("ufunc", [np.add, np.multiply, np.subtract, np.divide])
def test_per_row_matches_the_plain_ufunc(shape, ufunc):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.uniform(0.5, 2, (shape[0], shape[1], *[1] * (len(shape) - 2))).astype(np.float32)
    row = int(np.prod(shape[2:]))
    want = ufunc(a, b)
    np.testing.assert_array_equal(_rows.per_row(ufunc, a, b, row=row), want)
    out = a.copy()
    assert _rows.per_row(ufunc, out, b, out=out, row=row) is out
    np.testing.assert_array_equal(out, want)


def test_per_row_restores_the_buffer_size(monkeypatch):
    """The small buffer is set only around the long-row operation, and restored even when the
    operation raises."""
    before = np.getbufsize()
    seen = []
    real = np.add

    def spy(*args, **kw):
        seen.append(np.getbufsize())
        return real(*args, **kw)

    a = np.ones((4, _rows.LONG_ROW), np.float32)
    _rows.per_row(spy, a, np.ones((4, 1), np.float32), row=_rows.LONG_ROW)
    _rows.per_row(spy, a[:, :10], np.ones((4, 1), np.float32), row=10)
    assert seen == [_rows.SMALL_BUFFER, before]
    with pytest.raises(ValueError):
        _rows.per_row(np.add, a, np.ones((3, 1), np.float32), row=_rows.LONG_ROW)
    assert np.getbufsize() == before


@pytest.mark.parametrize(
    "a,b,run",
    [
        ((128, 768), (768,), 768),  # a bias row
        ((1, 256, 56, 56), (1, 256, 1, 1), 3136),  # a per-channel value
        ((12, 197, 197), (12, 1, 197), 197),
        ((4, 1), (1, 5), 5),
        ((2, 3, 40, 40), (3, 1, 1), 1600),
        ((2, 3, 4), (1,), 24),
    ],
)
def test_broadcast_run(a, b, run):
    assert _rows.broadcast_run(a, b) == run
    assert _rows.broadcast_run(b, a) == run


@pytest.mark.parametrize(
    "a,b", [((64, 3072), (3072,)), ((1, 16, 40, 40), (1, 16, 1, 1)), ((8, 100), (8, 1))]
)
def test_binary_uses_the_small_buffer_on_long_rows_only(a, b, monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(a).astype(np.float32), rng.standard_normal(b).astype(np.float32)
    calls = []
    real = _rows.per_row
    monkeypatch.setattr(
        _rows, "per_row", lambda *args, **kw: calls.append(kw["row"]) or real(*args, **kw)
    )
    np.testing.assert_array_equal(_rows.binary(np.subtract, x, y), x - y)
    np.testing.assert_array_equal(_rows.binary(np.subtract, y, x), y - x)
    run = _rows.broadcast_run(a, b)
    assert calls == ([run, run] if run >= _rows.LONG_ROW else [])
