"""translation: NVRTC compiles the CUDA C; it does not run it.

Every ``.cu`` source of the CUDA provider (``ort_cuda/cuda``) is compiled with NVRTC, through cupy's
binding, for every architecture in :data:`ort_cuda.nvrtc.ARCHES`, with exactly the template
instantiations run time compiles (``ort_cuda.kernels.raw.SOURCES``): a source without an entry
there fails, as does an instantiation NVRTC cannot lower. No GPU and no driver are needed; the
kernels' logic is checked by the host emulation in ``test_raw_host.py``.
"""

from __future__ import annotations

import pytest
from ort_cuda.nvrtc import ARCHES, SOURCE_DIR

LABEL = "translation: NVRTC compiles the CUDA C; it does not run it"
CU_FILES = sorted(p.name for p in SOURCE_DIR.glob("*.cu"))


@pytest.fixture(scope="module")
def nvrtc():
    """cupy's NVRTC binding, or a skip saying why there is none."""
    pytest.importorskip("cupy", reason="cupy is not installed: no NVRTC to compile the CUDA C")
    from cupy.cuda import nvrtc

    try:
        nvrtc.getVersion()
    except Exception as e:  # the binding loads libnvrtc lazily
        pytest.skip(f"the NVRTC library is not loadable: {e}")
    return nvrtc


def _sources() -> dict[str, tuple[str, ...]]:
    from ort_cuda.kernels.raw import SOURCES

    return SOURCES


def test_sources_found():
    """The folder has sources, and every source and only those have instantiations listed."""
    assert CU_FILES, f"no .cu sources in {SOURCE_DIR.name}/"
    listed = set(_sources())
    assert not set(CU_FILES) - listed, (
        f"{sorted(set(CU_FILES) - listed)}: no entry in ort_cuda.kernels.raw.SOURCES (list the "
        "template instantiations run time compiles)"
    )
    assert not listed - set(CU_FILES), (
        f"SOURCES names missing files {sorted(listed - set(CU_FILES))}"
    )


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", CU_FILES)
def test_compiles(nvrtc, name, arch):
    """translation: NVRTC compiles the CUDA C; it does not run it."""
    from ort_cuda.nvrtc import compile_source, source

    exprs = _sources().get(name)
    if exprs is None:
        pytest.fail(f"{name} has no entry in ort_cuda.kernels.raw.SOURCES")
    assert exprs, f"{name}: no name expressions listed"
    compiled = compile_source(source(name), arch, exprs, filename=name)
    assert compiled.cubin, f"{name} ({arch}): empty cubin"
    assert set(compiled.lowered) == set(exprs)
    missing = [e for e, low in compiled.lowered.items() if not low]
    assert not missing, f"{name} ({arch}): no lowered name for {missing}"
    assert "warning" not in compiled.log.lower(), (
        f"{name} ({arch}) compiled with warnings:\n{compiled.log}"
    )
