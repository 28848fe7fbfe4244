"""The core holds no kernels and imports no provider runtime (ARCHITECTURE: "ort_core/: no kernels,
no cupy/openvino/coremltools/pyopencl imports"; providers -> shared kernels -> core, never
upward)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ort_core

CORE = Path(ort_core.__file__).parent
# Provider runtimes, provider distributions and the shared kernels: none belongs in the core.
FORBIDDEN = ("cupy", "cupyx", "pyopencl", "openvino", "coremltools", "torch",
             "array_api_compat", "ort_array", "ort_cpu", "ort_cuda", "ort_opencl", "ort_openvino",
             "ort_coreml")  # fmt: skip
# Imports of a provider runtime the core may make, only inside these functions: none
# (preload_dlls asks the plugins, through the ort_preload_libraries hook).
ALLOWED: set[tuple[str, str, str]] = set()

SCRIPT = r"""
import json, sys
import numpy as np
from onnx import TensorProto, helper

import ort_core
from ort_core.plugins import get_plugin_manager
from ort_core.provider import KernelProvider, KernelRegistry

registry = KernelRegistry("CoreOnly")

@registry.kernel("Add", since=7)
def add(a, b):
    return a + b

class CoreOnlyProvider(KernelProvider):
    name = "CoreOnlyExecutionProvider"
    registry = registry

class Plugin:
    @ort_core.hookspecs.hookimpl
    def ort_register_providers(self, register):
        register(CoreOnlyProvider)

get_plugin_manager().add_plugin(Plugin(), "core_only", "test")
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "g", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
so = ort_core.SessionOptions()
so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
sess = ort_core.InferenceSession(model.SerializeToString(), so, providers=["CoreOnlyExecutionProvider"])
out = sess.run(None, {"x": np.array([1.0, 2.0], np.float32)})[0]
print(json.dumps({"out": out.tolist(), "modules": sorted(sys.modules)}))
"""


def _top(name: str) -> str:
    return name.split(".")[0]


def test_a_core_only_session_imports_no_provider_runtime() -> None:
    """Importing ort_core and running a session with a provider defined in the script (no
    plugins loaded) leaves every provider runtime and the shared kernels unimported."""
    env_cmd = [sys.executable, "-c", SCRIPT]
    import os

    env = dict(os.environ, ORT_CORE_PLUGINS="")  # load no entry-point plugin
    done = subprocess.run(env_cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["out"] == [2.0, 4.0]
    loaded = sorted({m for m in report["modules"] if _top(m) in FORBIDDEN})
    assert not loaded, f"the core imported provider code: {loaded}"


def _forbidden_imports(path: Path) -> list[tuple[str, str, int]]:
    """(function or '<module>', module imported, line) for each forbidden import in a file."""
    found = []
    tree = ast.parse(path.read_text(), str(path))

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            for n in names:
                if _top(n) in FORBIDDEN:
                    found.append((scope, _top(n), child.lineno))
            visit(child, scope)

    visit(tree, "<module>")
    return found


def test_core_source_imports_no_provider_runtime() -> None:
    bad = []
    for path in sorted(CORE.rglob("*.py")):
        for scope, module, line in _forbidden_imports(path):
            if (path.name, scope, module) not in ALLOWED:
                bad.append(f"{path.relative_to(CORE)}:{line} imports {module} (in {scope})")
    assert not bad, "the core must not import provider runtimes or kernels:\n" + "\n".join(bad)


def test_the_purity_scan_sees_imports() -> None:
    """The scanner above finds imports at module level and inside functions."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.py"
        p.write_text("import cupy\ndef f():\n    from ort_array.kernels import shape\n")
        assert _forbidden_imports(p) == [("<module>", "cupy", 1), ("f", "ort_array", 3)]


def _registrations(path: Path) -> list[int]:
    """Lines where a file declares a kernel: a ``KernelRegistry(...)`` it creates, or a
    ``.kernel(...)``/``.builder(...)`` registration call."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name == "KernelRegistry" or (
                isinstance(f, ast.Attribute) and name in ("kernel", "builder")
            ):
                lines.append(node.lineno)
    return lines


def test_core_source_registers_no_kernels() -> None:
    """Kernels live in provider distributions and ort_array; the core defines the registry
    (ort_core/provider/registry.py) and nothing registers into one."""
    bad = [
        f"{path.relative_to(CORE)}:{line}"
        for path in sorted(CORE.rglob("*.py"))
        if path.relative_to(CORE).as_posix() != "provider/registry.py"
        for line in _registrations(path)
    ]
    assert not bad, f"kernel registrations in the core: {bad}"


def test_the_registration_scan_sees_kernels() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.py"
        p.write_text("r = KernelRegistry('x')\n@r.kernel('Abs')\ndef f(x):\n    return x\n")
        assert _registrations(p) == [1, 2]
