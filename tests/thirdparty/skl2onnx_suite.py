"""Run a sample of skl2onnx's own test suite with ``import onnxruntime`` resolving to ort_core.

skl2onnx's wheel has no tests, its source distribution has: :func:`fetch_tests` downloads the sdist
of the installed skl2onnx version with pip (from the package index pip is configured with) into a
cache folder and unpacks its ``tests/`` folder there. :func:`write_shim` writes a package named
``onnxruntime`` that re-exports ort_core and makes every ``onnxruntime.<sub>`` module resolve to
``ort_core.<sub>`` (the same module objects, so ``onnxruntime.capi.onnxruntime_pybind11_state.Fail``
*is* ``ort_core``'s). :func:`run_suite` runs the chosen test modules with pytest in a subprocess
whose ``sys.path`` starts with that shim, and reads each test's outcome from a JUnit XML report.

Nothing of skl2onnx is copied into this repository: the tests are fetched when the suite runs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: The onnxruntime release whose behaviour ort_core follows. skl2onnx's tests choose the opsets they
#: target (and skip features) by ``onnxruntime.__version__``, so the shim reports this version.
ORT_API_VERSION = "1.32.0"

#: The sample: skl2onnx test modules covering classifiers and regressors (linear, trees, forests,
#: boosting, bagging, stacking, SVMs, naive Bayes, neighbours, MLP), pipelines and unions,
#: DictVectorizer, text (count and TF-IDF vectorizers, feature hashing), ZipMap options,
#: label/one-hot/ordinal/target encoders, imputers, scalers, normalizers and other transformers.
#: About 750 tests; a few minutes on two cores.
MODULES = (
    "test_sklearn_glm_classifier_converter.py",
    "test_sklearn_glm_regressor_converter.py",
    "test_sklearn_decision_tree_converters.py",
    "test_sklearn_random_forest_converters.py",
    "test_sklearn_gradient_boosting_converters.py",
    "test_sklearn_svm_converters.py",
    "test_sklearn_naive_bayes_converter.py",
    "test_sklearn_nearest_neighbour_converter.py",
    "test_sklearn_mlp_converter.py",
    "test_sklearn_k_means_converter.py",
    "test_sklearn_pipeline.py",
    "test_sklearn_feature_union.py",
    "test_sklearn_dict_vectorizer_converter.py",
    "test_sklearn_count_vectorizer_converter.py",
    "test_sklearn_tfidf_vectorizer_converter.py",
    "test_sklearn_tfidf_transformer_converter.py",
    "test_convert_options.py",
    "test_sklearn_label_encoder_converter.py",
    "test_sklearn_label_binariser_converter.py",
    "test_sklearn_one_hot_encoder_converter.py",
    "test_sklearn_ordinal_encoder.py",
    "test_sklearn_imputer_converter.py",
    "test_sklearn_scaler_converter.py",
    "test_sklearn_normalizer_converter.py",
    "test_sklearn_binarizer_converter.py",
    "test_sklearn_array_feature_extractor.py",
    "test_sklearn_k_bins_discretiser_converter.py",
    "test_sklearn_pca_converter.py",
    "test_sklearn_one_vs_rest_classifier_converter.py",
    "test_sklearn_voting_classifier_converter.py",
    "test_sklearn_calibrated_classifier_cv_converter.py",
    "test_sklearn_feature_selection_converters.py",
    "test_sklearn_polynomial_features_converter.py",
    "test_sklearn_double_tensor_type_cls.py",
    "test_sklearn_double_tensor_type_reg.py",
    "test_sklearn_concat.py",
    "test_sklearn_sgd_classifier_converter.py",
    "test_sklearn_one_vs_one_classifier_converter.py",
    "test_sklearn_bagging_converter.py",
    "test_sklearn_adaboost_converter.py",
    "test_sklearn_stacking.py",
    "test_sklearn_multi_output.py",
    "test_sklearn_grid_search_cv_converter.py",
    "test_sklearn_text.py",
    "test_sklearn_feature_hasher.py",
    "test_sklearn_cast_transformer.py",
    "test_sklearn_function_transformer_converter.py",
    "test_sklearn_truncated_svd.py",
    "test_sklearn_quantile_transformer.py",
    "test_sklearn_power_transformer.py",
    "test_sklearn_perceptron_converter.py",
    "test_sklearn_passive_aggressive_classifier_converter.py",
    "test_sklearn_gaussian_mixture_converter.py",
    "test_sklearn_classifiers_extreme.py",
    "test_sklearn_constant_predictor.py",
    "test_sklearn_target_encoder_converter.py",
    "test_sklearn_woe_transformer.py",
    "test_sklearn_replace_transformer.py",
    "test_sklearn_double_tensor_type_tr.py",
)

EXPECTED_FAILURES = Path(__file__).with_name("skl2onnx_expected_failures.txt")


class Unavailable(Exception):
    """The sdist could not be downloaded because there is no network or package index."""


# -- fetching the tests ------------------------------------------------------------------------------
_OFFLINE_SIGNS = (
    "connection",
    "network is unreachable",
    "temporary failure in name resolution",
    "name or service not known",
    "could not fetch url",
    "no matching distribution",
    "max retries exceeded",
    "timed out",
)


def fetch_tests(cache: Path) -> Path:
    """The ``tests`` folder of the installed skl2onnx version's sdist, fetched once into ``cache``.

    Raises:
        Unavailable: pip could not reach a package index (no network).
        RuntimeError: pip failed for another reason, or the sdist has no tests.
    """
    version = metadata.version("skl2onnx")
    root = cache / f"skl2onnx-{version}"
    tests = root / "tests"
    if (tests / "test_utils" / "__init__.py").is_file():
        return tests
    archive = cache / f"skl2onnx-{version}.tar.gz"
    if not archive.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--disable-pip-version-check", "-d", str(cache), f"skl2onnx=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not archive.is_file():
            output = (proc.stdout + proc.stderr).strip()
            reason = output.splitlines()[-1] if output else f"pip exited with {proc.returncode}"
            if any(sign in output.lower() for sign in _OFFLINE_SIGNS):
                raise Unavailable(f"cannot download skl2onnx=={version}'s sdist: {reason}")
            raise RuntimeError(f"pip download of skl2onnx=={version} failed: {output[-2000:]}")
    prefix = f"skl2onnx-{version}/tests/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        if not members:
            raise RuntimeError(f"{archive.name} has no tests/ folder")
        tar.extractall(cache, members=members, filter="data")
    return tests


#: What skl2onnx's test helpers import beyond ort-core's test dependencies (no dependencies of
#: their own beyond numpy, which is installed).
TEST_REQUIREMENTS = ("pandas", "python-dateutil", "six", "pytz", "tzdata")


def fetch_requirements(cache: Path) -> Path | None:
    """A folder to put on ``sys.path`` with what skl2onnx's tests need and is not installed
    (pandas), installed there once with pip; None when everything is installed.

    Raises:
        Unavailable: pip could not reach a package index.
    """
    if importlib.util.find_spec("pandas") is not None:
        return None
    target = cache / "requirements"
    if (target / "pandas" / "__init__.py").is_file():
        return target
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--target", str(target), *TEST_REQUIREMENTS]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        if any(sign in output.lower() for sign in _OFFLINE_SIGNS):
            raise Unavailable(f"cannot install {', '.join(TEST_REQUIREMENTS)}: {output[-300:]}")
        raise RuntimeError(f"pip install of the test requirements failed: {output[-2000:]}")
    return target


# -- the onnxruntime shim ------------------------------------------------------------------------------
_SHIM = '''\
"""onnxruntime -> ort_core, written by ort-core's tests (tests/thirdparty/skl2onnx_suite.py)."""

import importlib
import importlib.abc
import importlib.util
import sys

import ort_core
from ort_core import *  # noqa: F403

__version__ = {version!r}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """onnxruntime.<sub> is the module ort_core.<sub> itself."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("onnxruntime."):
            return None
        if importlib.util.find_spec("ort_core." + fullname[len("onnxruntime."):]) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module("ort_core." + spec.name[len("onnxruntime."):])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Alias())


def __getattr__(name):
    return getattr(ort_core, name)
'''

_SEED_PLUGIN = '''\
"""Seeds numpy's global generator before each test, so random test data is the same every run."""

import numpy
import pytest


@pytest.fixture(autouse=True)
def _seed_numpy():
    numpy.random.seed(0)
'''


def write_shim(folder: Path) -> Path:
    """Write the ``onnxruntime`` shim package and the seeding pytest plugin into ``folder``."""
    package = folder / "onnxruntime"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(_SHIM.format(version=ORT_API_VERSION))
    (folder / "ort_core_seed.py").write_text(_SEED_PLUGIN)
    return folder


# -- running -------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One test's result: "passed", "failed", "error" or "skipped", and the failure's text."""

    status: str
    message: str = ""


def run_suite(
    tests: Path,
    shim: Path,
    modules: tuple[str, ...] = MODULES,
    *,
    extra_path: Path | None = None,
    workers: int = 2,
    timeout: float = 1500,
) -> dict[str, Outcome]:
    """Run ``modules`` of skl2onnx's tests against ort_core; ``{node id: outcome}``.

    ``extra_path`` goes on the subprocess's ``sys.path`` after the shim and the tests (see
    :func:`fetch_requirements`); ``workers`` > 1 runs them with pytest-xdist when installed."""
    report = tests.parent / "junit.xml"
    ini = tests / "ort_core_pytest.ini"
    ini.write_text("[pytest]\naddopts =\n")
    cmd = [sys.executable, "-m", "pytest", "-c", str(ini), "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "ort_core_seed", f"--junitxml={report}", "-o", "junit_family=xunit2"]
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", str(workers)]
    cmd += [m for m in modules if (tests / m).is_file()]
    env = dict(os.environ)
    path = [str(shim), str(tests)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(path + [env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        cmd, cwd=tests, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if not report.is_file():
        raise RuntimeError(
            f"pytest wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
        )
    return read_junit(report)


def read_junit(report: Path) -> dict[str, Outcome]:
    """Outcomes by pytest node id (``module.py::Class::test``) from a JUnit XML report."""
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module, _, cls = case.get("classname", "").partition(".")
        node = (
            f"{module}.py::{cls}::{case.get('name')}" if cls else f"{module}.py::{case.get('name')}"
        )
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip()
                break
        outcomes[node] = Outcome(status, message)
    return outcomes


# -- expected failures -----------------------------------------------------------------------------------
def read_expected(path: Path = EXPECTED_FAILURES) -> dict[str, tuple[str, bool]]:
    """``{node id: (reason, strict)}`` from an expected-failures file.

    One entry per line, ``node id  # reason``; a reason starting with ``[flaky]`` marks a test whose
    random data can make it pass (not strict: passing is not an error).

    Raises:
        ValueError: an entry without a reason, or a duplicate.
    """
    entries: dict[str, tuple[str, bool]] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        node, sep, reason = line.partition("#")
        node, reason = node.strip(), reason.strip()
        if not sep or not reason:
            raise ValueError(f"{path.name}:{number}: '{node}' has no reason; add '# why'")
        if node in entries:
            raise ValueError(f"{path.name}:{number}: duplicate entry '{node}'")
        entries[node] = (reason, not reason.startswith("[flaky]"))
    return entries


def summary(outcomes: dict[str, Outcome], expected: dict[str, tuple[str, bool]]) -> dict:
    """Counts and the lists a report needs: unexpected failures, stale strict entries."""
    failed = {n for n, o in outcomes.items() if o.status in ("failed", "error")}
    passed = {n for n, o in outcomes.items() if o.status == "passed"}
    return {
        "passed": len(passed),
        "failed": len(failed),
        "skipped": sum(o.status == "skipped" for o in outcomes.values()),
        "unexpected": sorted(failed - set(expected)),
        "stale": sorted(n for n in passed if n in expected and expected[n][1]),
        "missing": sorted(set(expected) - set(outcomes)),
    }


def failure_lines(outcomes: dict[str, Outcome], nodes: list[str]) -> str:
    """One line per failing test with the first line of its failure message."""
    lines = []
    for node in nodes:
        first = outcomes[node].message.splitlines()[0] if outcomes[node].message else ""
        lines.append(f"{node}  # {textwrap.shorten(first, 200)}")
    return "\n".join(lines)
