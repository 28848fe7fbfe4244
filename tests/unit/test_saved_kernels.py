"""The CPU provider's saved-kernel library (``ort_cpu._aot``, ``ort_cpu._aot_build``,
``ort_cpu/_aot_dispatch.c``): kernels numba compiled in one process are compiled ahead of time
into an extension module that later processes call without importing numba.

What the tests prove:
- host logic (the C dispatcher, built from its source here with the system's C compiler):
  a call takes the entry point whose codes its arguments' types have, as numba's typeof types
  them, and anything else goes to the fallback;
- translation (numba's AOT compiler on the provider's own kernels): the saved entry points give
  the numba dispatcher's results, to the bit;
- the whole cycle in fresh processes: a process that compiled kernels leaves its signatures and
  starts the builder; the next process runs the model on the saved kernels without importing
  numba, with the outputs of the first and of onnxruntime.
They skip, with the reason, where numba or a C compiler is missing.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from ort_cpu import _aot, _aot_build, _jit  # noqa: E402
from ort_cpu.kernels import _ml_jit  # noqa: E402


def _compiler_works() -> bool:
    try:
        return _aot_build.compiler_works()
    except Exception:
        return False


needs_compiler = pytest.mark.skipif(
    not _compiler_works() or not _jit.available(),
    reason="no working C compiler (or numba off): the library cannot be built here",
)


@pytest.fixture(scope="module")
def dispatch_module(tmp_path_factory):
    if not _compiler_works():
        pytest.skip("no working C compiler: the dispatcher cannot be built here")
    path = str(tmp_path_factory.mktemp("dispatch"))
    name = _aot_build._build_dispatch(path)
    return _aot._load_extension(_aot.DISPATCH_MODULE, os.path.join(path, name))


def _dispatcher(module, *codes):
    """A Dispatcher whose entry point k returns k, and whose fallback returns "fallback"."""
    entries = tuple(functools.partial(lambda k, *a: k, k) for k in range(len(codes)))
    return module.Dispatcher(lambda *a, **k: "fallback", entries, tuple(c.encode() for c in codes))


# -- host logic: the C dispatcher ---------------------------------------------------------------


def test_dispatcher_takes_arrays_of_the_exact_dtype_rank_and_layout(dispatch_module):
    d = _dispatcher(dispatch_module, "af42Cw", "af82Cw", "af41Cw", "af42Aw")
    x = np.zeros((3, 4), np.float32)
    assert d(x) == 0
    assert d(x.astype(np.float64)) == 1
    assert d(np.zeros(4, np.float32)) == 2
    assert d(x[:, ::2]) == 3  # not contiguous: only the any-layout entry takes it
    assert d(np.asfortranarray(x)) == 3  # F order: not the C entry
    assert d(x.astype(np.int32)) == "fallback"  # same item size, another kind
    assert d(np.zeros((1, 2, 3), np.float32)) == "fallback"
    assert d(x.astype(x.dtype.newbyteorder())) == "fallback"  # not native order
    assert d([[1.0]]) == "fallback"  # a list is not an array
    assert d(np.ma.masked_array(x)) == "fallback"  # a subclass: numba types it otherwise


def test_dispatcher_keeps_read_only_arrays_off_entry_points_that_may_write(dispatch_module):
    d = _dispatcher(dispatch_module, "af41Cw", "af41Cr")
    x = np.zeros(3, np.float32)
    ro = x.copy()
    ro.flags.writeable = False
    assert d(x) == 0
    assert d(ro) == 1
    only_writable = _dispatcher(dispatch_module, "af41Cw")
    assert only_writable(ro) == "fallback"


def test_dispatcher_scalars_none_and_tuples(dispatch_module):
    d = _dispatcher(dispatch_module, "i", "f", "b", "n", "sf4", "si4", "t2if", "t0")
    assert d(3) == 0 and d(np.int64(3)) == 0
    assert d(2**70) == "fallback"  # beyond int64: numba would not type it int64
    assert d(1.5) == 1 and d(np.float64(1.5)) == 1
    assert d(True) == 2 and d(np.bool_(False)) == 2  # bool is not taken as an int
    assert d(None) == 3
    assert d(np.float32(1)) == 4
    assert d(np.int32(1)) == 5
    assert d((1, 2.0)) == 6
    assert d((1, 2)) == "fallback"
    assert d(()) == 7
    assert d([1, 2.0]) == "fallback"
    assert d("text") == "fallback"


def test_dispatcher_checks_every_argument_and_the_count(dispatch_module):
    d = _dispatcher(dispatch_module, "af41Cwi", "af41Cwf")
    x = np.zeros(2, np.float32)
    assert d(x, 1) == 0
    assert d(x, 1.0) == 1
    assert d(x) == "fallback"
    assert d(x, 1, 2) == "fallback"
    assert d(x, k=1) == "fallback"  # keywords always go to the fallback


def test_dispatcher_rejects_mismatched_tables(dispatch_module):
    with pytest.raises(ValueError, match="2 entry points but 1 signatures"):
        dispatch_module.Dispatcher(print, (print, print), (b"i",))
    with pytest.raises(TypeError, match="callable"):
        dispatch_module.Dispatcher(None, (), ())


def test_codes_are_what_numba_types_the_values():
    from numba.core import types
    from numba.core.typing import typeof

    values = [
        np.zeros((2, 3), np.float32),
        np.zeros(4, np.int64)[::2],
        np.asfortranarray(np.zeros((2, 3))),
        3,
        2.5,
        True,
        None,
        np.float32(1),
        np.uint8(1),
        (1, 2.0, np.zeros(1, np.int32)),
    ]
    ro = np.zeros(2, np.uint8)
    ro.flags.writeable = False
    values.append(ro)
    expected = ["af42Cw", "ai81Aw", "af82Fw", "i", "f", "b", "n", "sf4", "su1", "t3ifai41Cw"]
    expected.append("au11Cr")
    for value, code in zip(values, expected, strict=True):
        assert _aot_build._code(typeof.typeof(value)) == code, value
    assert _aot_build._code(types.unicode_type) is None  # stays with numba
    assert _aot_build._codes((types.int64, types.unicode_type)) is None


# -- translation: the provider's kernels saved and called ---------------------------------------


@pytest.fixture
def numba_compiles(monkeypatch):
    """The kernels' warm-ups in this test compile with numba (not the saved library a run with
    ORT_CPU_AOT on may have loaded), so that they have numba signatures to save."""
    monkeypatch.setattr(_aot, "library", lambda: None)
    for kernel in vars(_ml_jit).values():
        if isinstance(kernel, _jit.LazyKernel):
            monkeypatch.setattr(kernel, "_compiled", None)


def _wanted(path, kernels):
    """Write the signatures ``kernels`` compiled in this process as a process would at exit."""
    new = _aot.new_signatures(kernels, _aot.read_table(path))
    os.makedirs(os.path.join(path, "wanted"), exist_ok=True)
    with open(os.path.join(path, "wanted", f"test-{len(os.listdir(path))}.pkl"), "wb") as f:
        pickle.dump(new, f)
    return new


@needs_compiler
def test_saved_kernels_give_numbas_results(tmp_path, numba_compiles):
    path = str(tmp_path)
    _ml_jit.warm_linear_rows()
    _ml_jit.warm_normalize()
    kernels = [_ml_jit.linear_rows, _ml_jit.normalize]
    new = _wanted(path, kernels)
    assert set(new) >= {"ort_cpu.kernels._ml_jit:linear_rows", "ort_cpu.kernels._ml_jit:normalize"}
    assert _aot_build.update(path) == 0
    table = _aot.read_table(path)
    assert len(table["segments"]) == 1 and not table.get("failed")
    lib = _aot.Library(path, table)
    misses = []
    saved = lib.dispatcher("ort_cpu.kernels._ml_jit:linear_rows", lambda *a: misses.append(a))
    rng = np.random.default_rng(0)
    for rows, code in ((1, 0), (3, 1), (5, 2)):
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        w = rng.standard_normal((6, 3)).astype(np.float32)
        bias = rng.standard_normal(3).astype(np.float32)
        want, got = np.zeros((rows, 3), np.float32), np.zeros((rows, 3), np.float32)
        best_want, best_got = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
        _ml_jit.linear_rows.jitted()(x, w, bias, code, want, best_want)
        saved(x, w, bias, code, got, best_got)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(best_got, best_want)
    assert not misses
    # float64 rows were never compiled: the call goes to the fallback, not to a float32 entry
    x64 = np.zeros((1, 6))
    saved(x64, w, bias, 0, np.zeros((1, 3), np.float32), np.zeros(1, np.int64))
    assert len(misses) == 1
    # a segment removed after the table was read (a builder compacting): numba keeps the kernel
    gone = dict(table, segments=[{"file": "gone.so", "module": _aot.KERNELS_MODULE + "0"}])
    assert _aot.Library(path, gone).dispatcher("ort_cpu.kernels._ml_jit:normalize", print) is None
    norm = lib.dispatcher("ort_cpu.kernels._ml_jit:normalize", None.__class__)
    v = rng.standard_normal((4, 5)).astype(np.float32)
    v.flags.writeable = False
    for how in (0, 1, 2):
        want, got = np.zeros_like(v), np.zeros_like(v)
        _ml_jit.normalize.jitted()(v, how, want)
        norm(v, how, got)
        np.testing.assert_array_equal(got, want)


@needs_compiler
def test_builder_adds_segments_skips_what_it_cannot_and_compacts(
    tmp_path, monkeypatch, numba_compiles
):
    path = str(tmp_path)
    _ml_jit.warm_scale()
    _wanted(path, [_ml_jit.scale])
    assert _aot_build.update(path) == 0
    first = _aot.read_table(path)
    # nothing new: no file is written and no build runs
    assert _aot.new_signatures([_ml_jit.scale], first) == {}
    _ml_jit.warm_transforms()
    blobs = _wanted(path, [_ml_jit.transform_rows, _ml_jit.logistic_pair])
    assert "ort_cpu.kernels._ml_jit:scale" not in blobs
    # a signature the dispatcher has no codes for, and a kernel that does not exist
    from numba.core import types

    odd = pickle.dumps(((types.unicode_type,), types.none))
    with open(os.path.join(path, "wanted", "odd.pkl"), "wb") as f:
        pickle.dump({"ort_cpu.kernels._ml_jit:scale": [odd], "no.such:kernel": [odd]}, f)
    monkeypatch.setattr(_aot_build, "MAX_SEGMENTS", 2)
    assert _aot_build.update(path) == 0
    second = _aot.read_table(path)
    assert len(second["segments"]) == 2
    assert {s["why"] for v in second["skipped"].values() for s in v} == {
        "an argument type the dispatcher lacks",
        "kernel not found",
    }
    assert not os.listdir(os.path.join(path, "wanted"))
    # a third build finds MAX_SEGMENTS segments: everything is compiled into one again
    _ml_jit.warm_svc_rbf()
    _wanted(path, [_ml_jit.svc_rbf])
    assert _aot_build.update(path) == 0
    third = _aot.read_table(path)
    assert len(third["segments"]) == 1
    names = set(third["kernels"])
    assert names >= {f"ort_cpu.kernels._ml_jit:{k}" for k in ("scale", "svc_rbf", "transform_rows")}
    files = [f for f in os.listdir(path) if f.startswith(_aot.KERNELS_MODULE)]
    assert files == [third["segments"][0]["file"]]  # the old segments are removed


@needs_compiler
def test_a_failed_build_is_recorded_and_not_retried(tmp_path, monkeypatch, numba_compiles):
    path = str(tmp_path)
    _ml_jit.warm_scale()
    _wanted(path, [_ml_jit.scale])

    def broken(*a, **k):
        raise RuntimeError("no C compiler here")

    monkeypatch.setattr(_aot_build, "_build_dispatch", broken)
    assert _aot_build.update(path) == 1
    table = _aot.read_table(path)
    assert table["failed"] == "RuntimeError: no C compiler here"
    assert os.listdir(os.path.join(path, "wanted"))  # kept for a --retry
    monkeypatch.setenv("ORT_CPU_CACHE_DIR", str(tmp_path.parent))
    monkeypatch.setattr(_aot, "folder", lambda: path)
    monkeypatch.setenv("ORT_CPU_AOT", "1")
    monkeypatch.setattr(_aot, "_COMPILED", {_ml_jit.scale})
    assert _aot.write_wanted_and_build(start=False) is None  # a failed folder gets no more
    monkeypatch.undo()
    assert _aot_build.update(path, retry=True) == 0
    assert not _aot.read_table(path).get("failed")


def test_modes_and_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("ORT_CPU_AOT", "0")
    assert _aot.mode() == "off"
    monkeypatch.setenv("ORT_CPU_AOT", "load")
    assert _aot.mode() == "load"
    monkeypatch.setenv("ORT_CPU_AOT", "1")
    assert _aot.mode() == "build"
    monkeypatch.setenv("ORT_CPU_CACHE_DIR", str(tmp_path))
    assert _aot.folder() == os.path.join(str(tmp_path), _aot.key())
    monkeypatch.delenv("ORT_CPU_CACHE_DIR")
    monkeypatch.delenv("ORT_CORE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _aot.cache_root() == os.path.join(str(tmp_path / "xdg"), "ort-core", "cpu-kernels")
    monkeypatch.setenv("ORT_CORE_CACHE_DIR", str(tmp_path / "core"))  # ort-core's caches' folder
    assert _aot.cache_root() == os.path.join(str(tmp_path / "core"), "cpu-kernels")
    assert len(_aot.key()) == 20


# -- the whole cycle in fresh processes ---------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import ort_core
    so = ort_core.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort_core.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
    x = np.load(sys.argv[2])
    label, scores = s.run(None, {"x": x})
    print(json.dumps({"numba": "numba" in sys.modules, "label": label.tolist(),
                      "scores": scores.tolist()}))
    """
)


def _linear_classifier(tmp_path):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    coefs = rng.standard_normal(3 * 5).astype(np.float32)
    node = helper.make_node(
        "LinearClassifier",
        ["x"],
        ["label", "scores"],
        domain="ai.onnx.ml",
        classlabels_ints=[0, 1, 2],
        coefficients=coefs.tolist(),
        intercepts=rng.standard_normal(3).astype(np.float32).tolist(),
        post_transform="SOFTMAX",
    )
    graph = helper.make_graph(
        [node],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    path = tmp_path / "linear.onnx"
    path.write_bytes(model.SerializeToString())
    x = rng.standard_normal((2, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return str(path), str(tmp_path / "x.npy"), x


@pytest.mark.slow
@needs_compiler
def test_the_next_process_runs_the_saved_kernels_without_numba(tmp_path):
    model, feed, x = _linear_classifier(tmp_path)
    env = dict(os.environ, ORT_CPU_AOT="1", ORT_CPU_CACHE_DIR=str(tmp_path / "cache"))

    def child():
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, model, feed], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = child()
    assert first["numba"]  # nothing saved yet: numba compiled (or loaded) the kernels
    folders = os.listdir(tmp_path / "cache")
    assert len(folders) == 1
    folder = str(tmp_path / "cache" / folders[0])
    build = subprocess.run(
        [sys.executable, "-m", "ort_cpu._aot_build", "--wait", "--folder", folder],
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    table = _aot.read_table(folder)
    assert "ort_cpu.kernels._ml_jit:linear_rows" in table["kernels"]
    second = child()
    assert not second["numba"]
    assert second["label"] == first["label"]
    assert second["scores"] == first["scores"]  # the same machine code's results, to the bit
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert second["label"] == ref[0].tolist()
    np.testing.assert_allclose(second["scores"], ref[1], rtol=1e-5, atol=1e-6)
    # the second process compiled nothing: it left no signatures
    assert not os.listdir(os.path.join(folder, "wanted"))


def test_the_aot_compile_releases_the_gil_keeps_options_and_targets_this_cpu(monkeypatch):
    """Host logic: inside the builder's compile, each kernel compiles with the GIL released
    (``nogil``, so the pool's threads run saved kernels at once), its own ``error_model``, and
    for the CPU features numba's JIT would use (the CPU model's defaults may not be this
    machine's), all restored after."""
    import numba.pycc.compiler as pc
    from numba.core.codegen import AOTCPUCodegen
    from numba.core.compiler import Flags

    seen = []

    def recorder(*a, **k):
        seen.append(a[5])

    monkeypatch.setattr(pc, "compile_extra", recorder)

    def kernel():
        pass

    def other():
        pass

    flags = Flags()
    before = AOTCPUCodegen._customize_tm_features
    with _aot_build._aot_compiler({id(kernel): {"error_model": "numpy"}}):
        pc.compile_extra(None, None, kernel, (), None, flags, {})
        pc.compile_extra(None, None, other, (), None, flags, {})
        features = AOTCPUCodegen._customize_tm_features(
            types.SimpleNamespace(_get_host_cpu_features=lambda: "+host")
        )
    assert [f.release_gil for f in seen] == [True, True]
    assert [f.error_model for f in seen] == ["numpy", "python"]
    assert not flags.release_gil  # the caller's flags are not changed
    assert features == "+host"
    assert AOTCPUCodegen._customize_tm_features is before
    assert pc.compile_extra is recorder


def test_the_builder_starts_detached_with_this_process_path(monkeypatch, tmp_path):
    """Host logic: the builder a process starts at exit runs this interpreter on this process's
    folder, in its own session, with this process's import path (a script may have put the
    package there itself), and nothing of its output reaches the user's terminal."""
    import subprocess

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append((a, k)))
    monkeypatch.setattr(_aot, "folder", lambda: str(tmp_path))
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "vendored")])
    _aot.start_builder()
    ((args, kw),) = started
    assert args[0][:3] == [sys.executable, "-m", "ort_cpu._aot_build"]
    assert args[0][-2:] == ["--folder", str(tmp_path)]
    assert kw["start_new_session"] and kw["stdout"] == kw["stderr"] == subprocess.DEVNULL
    assert str(tmp_path / "vendored") in kw["env"]["PYTHONPATH"].split(os.pathsep)
