import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import ort_core as ort
from ort_core import errors
from ort_core.hookspecs import hookimpl
from ort_core.plugins import PluginManager, get_plugin_manager, reset_plugin_manager
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import AddOnlyProvider

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ort_toy"


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory):
    """Build and install the throwaway provider distribution offline into a private folder."""
    site = tmp_path_factory.mktemp("toy_site")
    build = tmp_path_factory.mktemp("toy_build")
    import shutil

    src = build / "ort_toy"
    shutil.copytree(FIXTURE, src)  # build in a copy: setuptools writes build/ and egg-info
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
        str(site),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert any(p.name.startswith("ort_toy-") and p.suffix == ".dist-info" for p in site.iterdir())
    return site


@pytest.fixture
def with_toy(toy_site, monkeypatch):
    monkeypatch.syspath_prepend(str(toy_site))
    importlib.invalidate_caches()
    reset_plugin_manager()
    yield
    reset_plugin_manager()
    for mod in [m for m in sys.modules if m == "ort_toy" or m.startswith("ort_toy.")]:
        del sys.modules[mod]


def toy_model():
    # Relu and Add are Toy's; Exp and Sigmoid fall back to the CPU provider
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Exp", ["a"], ["b"], name="exp"),
            helper.make_node("Add", ["b", "x"], ["c"], name="add"),
            helper.make_node("Sigmoid", ["c"], ["y"], name="sigmoid"),
        ],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3])],
    )


def test_installed_distribution_is_discovered_claims_and_falls_back(with_toy, tmp_path):
    assert "ToyExecutionProvider" in ort.get_all_providers()
    assert "ToyExecutionProvider" in ort.get_available_providers()
    entry = get_plugin_manager().resolve("toy")
    assert entry.distribution == "ort-toy" and entry.version == "0.1.0"
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "toy")
    sess = ort.InferenceSession(
        toy_model().SerializeToString(), so, providers=["ToyExecutionProvider"]
    )
    assert sess.get_providers() == ["ToyExecutionProvider", "CPUExecutionProvider"]
    placed = {n.name: s.ep_name for s in sess.placements for n in s.get_nodes()}
    assert placed == {
        "relu": "ToyExecutionProvider",
        "exp": "CPUExecutionProvider",
        "add": "ToyExecutionProvider",
        "sigmoid": "CPUExecutionProvider",
    }
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-(np.exp(np.maximum(x, 0)) + x))), rtol=1e-6)
    ran = {
        e["args"]["op_name"]: e["args"]["provider"]
        for e in json.load(open(sess.end_profiling()))
        if e["cat"] == "Node"
    }
    assert ran == {
        "Relu": "ToyExecutionProvider",
        "Exp": "CPUExecutionProvider",
        "Add": "ToyExecutionProvider",
        "Sigmoid": "CPUExecutionProvider",
    }


def test_toy_is_a_device_provider_end_to_end(with_toy):
    """ort-toy keeps tensors in ToyArray, which numpy refuses: every copy between the toy device
    and the host must be placed by the core, kernels run with their run's stream, and
    run_with_ort_values keeps toy values on the toy device."""
    from ort_toy.provider import ToyArray, ToyExecutionProvider

    sess = ort.InferenceSession(toy_model().SerializeToString(), providers=["toy"])
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    want = 1 / (1 + np.exp(-(np.exp(np.maximum(x, 0)) + x)))
    ToyExecutionProvider.uploads = ToyExecutionProvider.downloads = 0
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-6)
    # x up once (Relu and Add read it), Relu's output down (Exp is on the CPU), Exp's up, Add's
    # down (Sigmoid is on the CPU)
    assert sess.copy_count == 4
    assert (ToyExecutionProvider.uploads, ToyExecutionProvider.downloads) == (2, 2)
    assert ort.OrtValue.ortvalue_from_numpy(x, "toy", 0).device_name() == "toy"

    # a graph that ends on the device: its output stays there with run_with_ort_values
    m = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Mul", ["a", "a"], ["b"], name="mul"),
            helper.make_node("Reshape", ["b", "shape"], ["y"], name="reshape"),
        ],
        [tensor("x", shape=[4]), tensor("shape", 7, [2])],
        [tensor("y", shape=[2, 2])],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["toy"])
    xs = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
    shape = np.array([2, 2], np.int64)
    ToyExecutionProvider.uploads = ToyExecutionProvider.downloads = 0
    xv = ort.OrtValue.ortvalue_from_numpy(xs, "toy", 0)
    (y,) = sess.run_with_ort_values(
        None, {"x": xv, "shape": ort.OrtValue.ortvalue_from_numpy(shape)}
    )
    assert y.device_name() == "toy" and isinstance(y.value(), ToyArray)
    assert (ToyExecutionProvider.uploads, ToyExecutionProvider.downloads) == (1, 0)
    np.testing.assert_array_equal(y.numpy(), (np.maximum(xs, 0) ** 2).reshape(2, 2))
    # plain run: the output comes back to the host, the shape (a host input) never goes up
    np.testing.assert_array_equal(
        sess.run(None, {"x": xs, "shape": shape})[0], (np.maximum(xs, 0) ** 2).reshape(2, 2)
    )


def test_toy_declines_other_dtypes_with_reason(with_toy):
    m = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [tensor("x", 11, [2])],
        [tensor("y", 11, [2])],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["toy"])
    assert sess.placements[0].ep_name == "CPUExecutionProvider"
    assert "float64" in " ".join(sess.placement_reasons["r"])


def test_env_var_restricts_plugins(with_toy, monkeypatch):
    monkeypatch.setenv("ORT_CORE_PLUGINS", "cpu")
    reset_plugin_manager()
    assert ort.get_all_providers() == ["CPUExecutionProvider"]
    monkeypatch.delenv("ORT_CORE_PLUGINS")
    monkeypatch.setenv("ORT_CORE_DISABLE_PLUGINS", "toy")
    reset_plugin_manager()
    assert "ToyExecutionProvider" not in ort.get_all_providers()


def test_unavailable_toy_reports_reason(with_toy, monkeypatch):
    monkeypatch.setenv("ORT_TOY_DISABLE", "1")
    assert ort.get_provider_availability()["ToyExecutionProvider"] == (
        False,
        "ORT_TOY_DISABLE is set in the environment.",
    )


def test_duplicate_provider_names_name_both_distributions(register_provider):
    register_provider(AddOnlyProvider, distribution="first-dist")
    with pytest.raises(errors.PluginError, match="first-dist and second-dist"):
        register_provider(AddOnlyProvider, distribution="second-dist")


def test_misspelled_hook_is_an_error():
    class Plugin:
        @hookimpl
        def ort_register_provider(self, register):  # missing "s"
            pass

    pm = PluginManager()
    pm._loaded = True
    with pytest.raises(errors.PluginError, match="does not define"):
        pm.add_plugin(Plugin(), "typo")


def test_cpu_provider_comes_from_its_entry_point():
    entry = get_plugin_manager().resolve("CPUExecutionProvider")
    assert entry.distribution == "ort-cpu" and entry.plugin == "cpu"


def test_preload_dlls_asks_the_plugins():
    """``preload_dlls`` calls each plugin's ``ort_preload_libraries`` hook with onnxruntime's
    flags; the core imports no provider runtime itself."""
    calls = []

    class Plugin:
        @hookimpl
        def ort_preload_libraries(self, cuda, cudnn):
            calls.append((cuda, cudnn))

    pm = get_plugin_manager()
    pm.add_plugin(Plugin(), "preload_probe", "test")
    try:
        ort.preload_dlls(cuda=True, cudnn=False)
        ort.preload_dlls(cuda=False, cudnn=False)  # nothing asked: no hook call
    finally:
        pm.remove_plugin("preload_probe")
    assert calls == [(True, False)]
