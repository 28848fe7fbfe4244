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
