"""Start-up cost: ``import ort_core`` imports no onnx, numpy or provider; a session imports only the
providers it asks for; providers registered by where they are load on first use, and a broken one
is unavailable with its reason instead of breaking every session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from onnx import helper

import ort_core as ort
from ort_core import errors
from ort_core.hookspecs import hookimpl
from ort_core.plugins import get_plugin_manager
from tests.conftest import make_model, tensor

PROVIDER_MODULES = ("ort_cpu.provider", "ort_cuda.provider", "ort_opencl.provider",
                    "ort_openvino.provider")  # fmt: skip


def _fresh(script: str, **env: str) -> dict:
    """Run ``script`` in a new interpreter; it prints one JSON line last."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_is_cheap_and_names_come_on_first_use():
    report = _fresh(
        "import json, sys\n"
        "import ort_core\n"
        "before = sorted(sys.modules)\n"
        "ok = ort_core.SessionOptions is ort_core.options.SessionOptions\n"
        "print(json.dumps({'before': before, 'ok': ok}))\n"
    )
    heavy = {"onnx", "numpy", "ml_dtypes", "pluggy", *PROVIDER_MODULES, "ort_core.session"}
    assert not heavy & set(report["before"]), heavy & set(report["before"])
    assert report["ok"]


def test_public_names_submodules_and_dir():
    assert ort.InferenceSession is ort.session.InferenceSession
    assert ort.OrtEpAssignedNode is ort.EpAssignedNode
    assert ort.capi.onnxruntime_pybind11_state.Fail is errors.Fail
    assert set(ort.__all__) <= set(dir(ort))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        ort.no_such_name  # noqa: B018
    from ort_core import InferenceSession, RunOptions  # noqa: F401 - from-imports work too


def test_a_cpu_session_imports_only_the_cpu_provider():
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from onnx import helper, TensorProto\n"
        "import ort_core\n"
        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])\n"
        "g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g', [x],\n"
        "    [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2])])\n"
        "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]); m.ir_version = 8\n"
        "names = ort_core.get_all_providers()\n"
        "after_names = sorted(sys.modules)\n"
        "out = {}\n"
        "for providers in (None, ['CPUExecutionProvider']):\n"
        "    s = ort_core.InferenceSession(m.SerializeToString(), providers=providers)\n"
        "    out[str(providers)] = s.run(None, {'x': np.array([-1, 2], np.float32)})[0].tolist()\n"
        "after_session = sorted(sys.modules)\n"
        "available = ort_core.get_available_providers()\n"
        "print(json.dumps({'names': names, 'after_names': after_names, 'out': out,\n"
        "    'after_session': after_session, 'available': available,\n"
        "    'after_listing': sorted(sys.modules)}))\n"
    )
    report = _fresh(script)
    assert "CPUExecutionProvider" in report["names"]
    assert not set(PROVIDER_MODULES) & set(report["after_names"])
    assert list(report["out"].values()) == [[0.0, 2.0], [0.0, 2.0]]
    loaded = set(PROVIDER_MODULES) & set(report["after_session"])
    assert loaded == {"ort_cpu.provider"}, loaded
    # listing what is available asks every installed provider, so each is imported then
    installed = {f"ort_{n}.provider" for n in ("cpu", "cuda", "opencl", "openvino")}
    installed = {m for m in installed if m.split(".")[0] in _installed_provider_packages()}
    assert installed <= set(report["after_listing"])


def _installed_provider_packages() -> set[str]:
    return {e.cls.__module__.split(".")[0] for e in get_plugin_manager().ordered()}


# -- providers registered by where they are ---------------------------------------------------------
class _LazyPlugin:
    def __init__(self, *registrations):
        self.registrations = registrations

    @hookimpl
    def ort_register_providers(self, register):
        for target, kwargs in self.registrations:
            register(target, **kwargs)


@pytest.fixture
def lazy_plugin():
    pm = get_plugin_manager()
    added = []

    def add(*registrations):
        name = f"lazy_test_{len(added)}"
        added.append(name)
        pm.add_plugin(_LazyPlugin(*registrations), name, "lazy-dist", "1.2")
        return pm

    yield add
    for n in added:
        pm.remove_plugin(n)


ADD_ONLY = "tests.unit.providers_for_tests:AddOnlyProvider"


def test_registered_by_path_is_imported_on_first_use(lazy_plugin, monkeypatch):
    monkeypatch.delitem(sys.modules, "tests.unit.providers_for_tests", raising=False)
    pm = lazy_plugin((ADD_ONLY, {"name": "AddOnlyExecutionProvider", "aliases": ("addonly",)}))
    entry = pm.providers["AddOnlyExecutionProvider"]
    assert not entry.loaded and "tests.unit.providers_for_tests" not in sys.modules
    assert "AddOnlyExecutionProvider" in ort.get_all_providers()
    assert not entry.loaded
    assert pm.resolve("ADDONLY") is entry and not entry.loaded  # aliases without importing
    assert entry.name == "AddOnlyExecutionProvider" and entry.distribution == "lazy-dist"
    m = make_model(
        [helper.make_node("Add", ["x", "x"], ["y"], name="add")],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["addonly"])
    assert entry.loaded and entry.cls.distribution == "lazy-dist"
    assert sess.get_providers() == ["AddOnlyExecutionProvider", "CPUExecutionProvider"]
    np.testing.assert_array_equal(sess.run(None, {"x": np.ones(2, np.float32)})[0], [2.0, 2.0])


def test_a_registration_that_does_not_match_its_class_is_unavailable(lazy_plugin):
    pm = lazy_plugin((ADD_ONLY, {"name": "SomethingExecutionProvider", "aliases": ("something",)}))
    avail = pm.resolve("something").availability()
    assert not avail and "named 'AddOnlyExecutionProvider'" in avail.reason
    with pytest.raises(errors.PluginError, match="make the registration match the class"):
        pm.resolve("something").cls  # noqa: B018


def test_a_provider_whose_module_fails_to_import_is_unavailable_with_the_reason(lazy_plugin):
    pm = lazy_plugin(
        ("tests.unit.no_such_module:Provider", {"name": "BrokenExecutionProvider"}),
    )
    avail = pm.resolve("BrokenExecutionProvider").availability()
    assert not avail
    assert "tests.unit.no_such_module:Provider" in avail.reason and "lazy-dist" in avail.reason
    assert "BrokenExecutionProvider" not in ort.get_available_providers()
    m = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = ort.InferenceSession(m.SerializeToString(), providers=["BrokenExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert any("cannot be imported" in str(w.message) for w in caught), [
        str(w.message) for w in caught
    ]


@pytest.mark.parametrize(
    "target, kwargs, message",
    [
        ("no_colon", {"name": "XExecutionProvider"}, "needs 'module:Class' and its name"),
        (ADD_ONLY, {}, "needs 'module:Class' and its name"),
        (ADD_ONLY, {"name": "XExecutionProvider", "aliases": "x"}, "give a tuple of strings"),
    ],
)
def test_malformed_registrations_are_plugin_errors(lazy_plugin, target, kwargs, message):
    with pytest.raises(errors.PluginError, match=message):
        lazy_plugin((target, kwargs))


def test_a_duplicate_name_is_found_without_importing(lazy_plugin):
    with pytest.raises(errors.PluginError, match="registered by both"):
        lazy_plugin(("tests.unit.no_such_module:P", {"name": "CPUExecutionProvider"}))


def test_installed_providers_register_their_own_name_and_aliases():
    """Each installed provider's registration (in its plugin.py) matches its class."""
    for entry in get_plugin_manager().ordered():
        cls = entry.cls
        assert (cls.name, tuple(cls.aliases)) == (entry.name, entry.aliases)


def test_keyword_params_reads_code_objects_as_inspect_does():
    import functools
    import inspect
    import keyword

    from ort_core.provider.registry import _keyword_params

    def slow(fn):
        names, var_kw = [], False
        for p in inspect.signature(fn).parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.kind is p.KEYWORD_ONLY or (
                p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
            ):
                n = p.name.rstrip("_")
                names.append(n if keyword.iskeyword(n) else p.name)
        return names, var_kw

    def f(a, b=1, /, c=2, *args, d, e=3, **kw):
        pass

    def g(a, b, c=1, *, in_=2, lambda_=None):
        pass

    def h(x, /, y=1):
        pass

    @functools.wraps(g)
    def wrapped(*args, **kwargs):
        return g(*args, **kwargs)

    for fn in (f, g, h, wrapped, lambda x, axis=0: x, functools.partial(g, 1)):
        assert _keyword_params(fn) == slow(fn), fn
