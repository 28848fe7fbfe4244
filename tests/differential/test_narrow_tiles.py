"""The compiled kernels' AVX2 register tiles, run on a CPU with AVX-512.

The register tiles of :mod:`ort_cpu.kernels._conv_jit` are sized for the CPU numba compiles for:
AVX-512's 32 registers (``WIDE``), else AVX2's 16, where the same tiles spilled their sums to
the stack. The exact integer products (:mod:`ort_cpu.kernels._vnni`) sum with AVX-512 VNNI's
``vpdpbusd`` where numba compiles for it, else with AVX2's ``vpmaddwd`` on the bytes widened.
The rest of the suite runs the tiles of the CPU it is on; this test runs the compiled
convolution, GEMM-tile, recurrent and integer-product tests again in a process that numba
compiles for an AVX2 CPU (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``, which also key numba's
cache), so an AVX-512 machine checks the AVX2 tiles and products as well (host logic and
compiled code, against onnxruntime). On a CPU without AVX-512 the suite already runs them, and
it skips.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

from ort_cpu import _aot, _jit  # noqa: E402

#: a Haswell's features: AVX2 and FMA, no AVX-512
AVX2 = {
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,"
    "+mmx,+movbe,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave",
}
HERE = os.path.dirname(os.path.abspath(__file__))
FILES = [
    os.path.join(HERE, f)
    for f in (
        "test_conv_paths.py",
        "test_cnn_jit.py",
        "test_rnn_jit.py",
        "test_qdq_integer.py",
        "test_contrib_quant.py",
    )
]


def test_feature_override_sets_the_tiles(monkeypatch):
    """numba's feature list, where given, decides the tiles (host logic)."""
    monkeypatch.setenv("NUMBA_CPU_FEATURES", AVX2["NUMBA_CPU_FEATURES"])
    assert not _aot.wide_vectors()
    assert not _aot.has_feature("avx512vnni")
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2,+avx512f,+avx512bw,+avx512vnni")
    assert _aot.wide_vectors()
    assert _aot.has_feature("avx512vnni")


@pytest.mark.slow
@pytest.mark.skipif(not _aot.wide_vectors(), reason="no AVX-512: the suite runs the AVX2 tiles")
@pytest.mark.skipif(not _jit.available(), reason="the compiled kernels are off")
def test_avx2_tiles_on_an_avx512_cpu():
    env = {**os.environ, **AVX2, "ORT_CPU_AOT": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    probe = (
        "from ort_cpu.kernels import _conv_jit, _vnni, _vnni_ir; "
        "assert not _conv_jit.WIDE, 'wide tiles'; assert not _vnni_ir.VNNI, 'vpdpbusd'; "
        "assert _vnni.available(), 'no integer products'"
    )
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=120)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *FILES],
        cwd=os.path.dirname(os.path.dirname(HERE)),
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, tail
    assert " passed" in tail, tail
