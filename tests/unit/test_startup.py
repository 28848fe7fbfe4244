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


# -- kernels and plugins found without importing everything (host logic) ---------------------


def test_a_session_imports_only_the_kernel_families_its_ops_need():
    """The CPU registry imports a family module at the first lookup of one of its ops
    (``ort_cpu/kernels/_index.py``): a logistic regression's session never imports the
    convolutions, attention or decoders, and its outputs are onnxruntime's."""
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from onnx import helper, TensorProto as T\n"
        "import ort_core as ort\n"
        "node = helper.make_node('LinearRegressor', ['x'], ['y'], domain='ai.onnx.ml',\n"
        "    coefficients=[1.0, 2.0, 3.0], intercepts=[0.5])\n"
        "x = helper.make_tensor_value_info('x', T.FLOAT, [2, 3])\n"
        "y = helper.make_tensor_value_info('y', T.FLOAT, [2, 1])\n"
        "g = helper.make_graph([node], 'g', [x], [y])\n"
        "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17),\n"
        "    helper.make_opsetid('ai.onnx.ml', 3)])\n"
        "s = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])\n"
        "y = s.run(None, {'x': np.arange(6, dtype=np.float32).reshape(2, 3)})[0]\n"
        "fams = sorted(m for m in sys.modules if m.startswith('ort_cpu.kernels.')\n"
        "    and not m.split('.')[-1].startswith('_'))\n"
        "print(json.dumps({'families': fams, 'y': y.ravel().tolist()}))\n"
    )
    report = _fresh(script)
    assert report["families"] == ["ort_cpu.kernels.ml"], report["families"]
    assert report["y"] == [8.5, 26.5]  # [0,1,2].[1,2,3] + 0.5, [3,4,5].[1,2,3] + 0.5


@pytest.mark.parametrize("package", ["ort_cpu.kernels", "ort_array"])
def test_the_kernel_indexes_are_current(package):
    """A kernel added to a family without rewriting the index would be invisible to sessions
    (``python -m <package>._make_index`` rewrites it)."""
    done = subprocess.run(
        [sys.executable, "-m", f"{package}._make_index", "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_registry_on_demand_holds_what_loading_everything_holds():
    """Ops asked for in any order, then the whole registry listed, give the same kernels (and
    the same shared kernels below the CPU's own versions) as listing it first."""
    dump = (
        "import json\n"
        "from ort_cpu.kernels import registry\n"
        "{ask}\n"
        "registry.keys()\n"
        "print(json.dumps([[*key, registry.lookup(*key).source] for key in registry.keys()]))\n"
    )
    ask = (
        "import random\n"
        "from ort_cpu.kernels._index import FAMILIES_OF\n"
        "from ort_array._index import FAMILIES_OF as SHARED\n"
        "keys = sorted(set(FAMILIES_OF) | set(SHARED)) + [('com.example', 'NoSuchOp')]\n"
        "random.Random(7).shuffle(keys)\n"
        "for domain, op in keys[: len(keys) // 2]:\n"
        "    registry.lookup(domain, op, 21)\n"
    )
    everything = subprocess.run(
        [sys.executable, "-c", dump.format(ask="")], capture_output=True, text=True, timeout=300
    )
    on_demand = subprocess.run(
        [sys.executable, "-c", dump.format(ask=ask)], capture_output=True, text=True, timeout=300
    )
    assert everything.returncode == 0 and on_demand.returncode == 0, on_demand.stderr[-2000:]
    first, second = json.loads(everything.stdout), json.loads(on_demand.stdout)
    assert len(first) > 400 and first == second


def test_a_deferred_registry_asks_its_source_once_per_key():
    from ort_core.provider import KernelRegistry

    calls = []

    class Source:
        def load(self, registry, key):
            calls.append(key)
            if key == ("", "Relu"):
                registry.kernel("Relu", since=14)(lambda x: x)

        def load_all(self, registry, loaded):
            calls.append(("all", sorted(loaded)))
            registry.kernel("Tanh", since=6)(lambda x: x)

    reg = KernelRegistry("test")
    reg.defer(Source())
    assert reg.lookup("ai.onnx", "Relu", 21).since == 14
    assert reg.lookup("", "Relu", 13) is None  # no second load of the key
    assert reg.lookup("", "Sigmoid", 13) is None
    assert calls == [("", "Relu"), ("", "Sigmoid")]
    assert reg.registered() == [("", "Relu", 14)]  # listing what is there loads nothing
    assert reg.ops() == {("", "Relu"), ("", "Tanh")}
    assert calls[-1] == ("all", [("", "Relu"), ("", "Sigmoid")])
    assert len(reg) == 2 and reg.lookup("", "Tanh", 7) is not None and len(calls) == 3


def test_family_index_records_which_import_registered_each_key():
    from ort_core.provider.index import family_index, render

    declared: list = []
    families = {"a": [("", "Add", 7), ("", "Add", 14)], "b": [("", "Add", 1), ("x", "Op", 2)]}
    index = family_index(["a", "b"], lambda name: declared.extend(families[name]), lambda: declared)
    assert index == (
        {("", "Add"): ("a", "b"), ("x", "Op"): ("b",)},
        {("", "Add"): 1, ("x", "Op"): 2},
    )
    namespace: dict = {}
    exec(render(index, "pkg._make_index"), namespace)
    assert (namespace["FAMILIES_OF"], namespace["LOWEST_SINCE"]) == index
    with pytest.raises(RuntimeError, match="fresh process"):
        family_index(["a"], lambda name: None, lambda: declared)


def test_entry_points_are_read_from_the_distributions_on_the_path(tmp_path, monkeypatch):
    """What importlib.metadata finds, read from the ``*.dist-info`` folders themselves: the
    first distribution of a name on the path wins, only the ``ort_core`` section counts, and
    Name / Version come from the metadata's headers."""
    import importlib.metadata

    from ort_core import plugins

    installed = plugins._entry_points()
    assert sorted(installed) == sorted(plugins._metadata_entry_points())
    assert {ep.name for ep in installed} >= {"cpu"}

    def dist(where, folder, entry_points, metadata):
        path = where / folder
        path.mkdir(parents=True)
        (path / "entry_points.txt").write_text(entry_points)
        (path / "METADATA").write_text(metadata)

    first, second = tmp_path / "first", tmp_path / "second"
    dist(
        first,
        "ort_fake-2.0.dist-info",
        "[console_scripts]\nfake = fake:main\n\n[ort_core]\n# a comment\nfake = ort_fake.plugin\n"
        "[other]\nx = y\n",
        "Metadata-Version: 2.1\nName: ort-fake\nVersion: 2.0\n\nName: not a header\n",
    )
    dist(second, "ort_fake-1.0.dist-info", "[ort_core]\nfake = old.plugin\n", "Name: ort-fake\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    importlib.invalidate_caches()
    found = [ep for ep in plugins._entry_points() if ep.name == "fake"]
    assert found == [plugins._EntryPoint("fake", "ort_fake.plugin", "ort-fake", "2.0")]
    assert sorted(plugins._entry_points()) == sorted(plugins._metadata_entry_points())


def test_a_zip_archive_on_the_path_sends_the_search_to_importlib_metadata(tmp_path, monkeypatch):
    import zipfile

    from ort_core import plugins

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("placeholder.txt", "")
    monkeypatch.syspath_prepend(str(archive))
    asked = []
    monkeypatch.setattr(plugins, "_metadata_entry_points", lambda: asked.append(1) or [])
    assert plugins._entry_points() == [] and asked == [1]


def test_threads_asking_at_once_each_see_the_kernels_loaded():
    """Sessions created in several threads at once: a key being loaded by one thread is not
    seen as missing by another."""
    report = _fresh(
        "import json, threading\n"
        "from ort_cpu.kernels import registry\n"
        "from ort_cpu.kernels._index import FAMILIES_OF\n"
        "keys = sorted(FAMILIES_OF)\n"
        "missing = []\n"
        "start = threading.Barrier(6)\n"
        "def ask(offset):\n"
        "    start.wait()\n"
        "    for domain, op in keys[offset:] + keys[:offset]:\n"
        "        if registry.lookup(domain, op, 1 << 20) is None:\n"
        "            missing.append((domain, op))\n"
        "threads = [threading.Thread(target=ask, args=(i * 37,)) for i in range(6)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(json.dumps({'missing': missing, 'keys': len(keys)}))\n"
    )
    assert report["keys"] > 250 and report["missing"] == []
