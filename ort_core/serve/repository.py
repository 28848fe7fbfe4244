"""The model repository: Triton's layout, ``<repository>/<model>/<version>/model.onnx`` with an
optional ``<repository>/<model>/config.pbtxt``, or one ``.onnx`` file served as model version 1.

A name from a request (model, version) is checked against :data:`~.config.NAME_RE` and must be an
entry of the repository folder: no separator, no ``..``, so no request reaches a file outside the
repository. Messages sent to clients name models and versions, never paths of the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import NAME_RE, ModelSettings, ServerOptions, parse_config
from .datatypes import ONNX_TO_V2
from .errors import InvalidRequest, ModelLoadError, ModelNotFound, Unavailable
from .scheduler import Scheduler

__all__ = ["ModelRepository", "LoadedModel", "TensorSpec"]

log = logging.getLogger("ort_core.serve")

PLATFORM = "onnxruntime_onnx"


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the protocol describes it (-1: a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _spec(arg: Any, model: str) -> TensorSpec:
    datatype = ONNX_TO_V2.get(arg.type)
    if datatype is None:
        raise ModelLoadError(
            f"model {model!r}: {arg.name!r} has type {arg.type}; ort-core serve exchanges "
            "tensors only (sequences, maps and optionals have no Open Inference Protocol form)"
        )
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, datatype, dims)


class LoadedModel:
    """One version of a model: its session (shared by every request), the tensors it takes and
    gives, and the scheduler that runs it."""

    def __init__(
        self,
        name: str,
        version: str,
        session: Any,
        settings: ModelSettings,
        options: ServerOptions,
        metrics: Any = None,
    ) -> None:
        self.name, self.version, self.session, self.settings = name, version, session, settings
        self.inputs = [_spec(a, name) for a in session.get_inputs()]
        self.outputs = [_spec(a, name) for a in session.get_outputs()]
        self._input_index = {t.name: t for t in self.inputs}
        self._output_names = {t.name for t in self.outputs}
        self._check_settings()
        self.instances = settings.instance_count or options.instances
        self.max_queue_size = settings.max_queue_size or options.max_queue_size
        self.scheduler = Scheduler(
            f"{name}:{version}",
            session.run,
            [t.name for t in self.outputs],
            settings.batching,
            instances=self.instances,
            max_queue_size=self.max_queue_size,
            metrics=metrics.model(name, version) if metrics is not None else None,
        )

    def _check_settings(self) -> None:
        s, name = self.settings, self.name
        if s.batching.max_batch_size:
            for t in [*self.inputs, *self.outputs]:
                if not t.shape or t.shape[0] != -1:
                    raise ModelLoadError(
                        f"model {name!r}: max_batch_size {s.batching.max_batch_size} needs a "
                        f"batch axis, but {t.name!r} has shape {list(t.shape)} (its first "
                        "dimension must be symbolic); set max_batch_size 0 for this model"
                    )
        for declared, actual, what in (
            (s.declared_inputs, self.inputs, "input"),
            (s.declared_outputs, self.outputs, "output"),
        ):
            by_name = {t.name: t for t in actual}
            for tname, dtype, dims in declared:
                t = by_name.get(tname)
                if t is None:
                    raise ModelLoadError(
                        f"model {name!r}: config.pbtxt declares {what} {tname!r}, which the "
                        f"model lacks; its {what}s are {sorted(by_name)}"
                    )
                if dtype is not None and dtype != t.datatype:
                    raise ModelLoadError(
                        f"model {name!r}: config.pbtxt declares {what} {tname!r} as {dtype}, "
                        f"the model has {t.datatype}"
                    )
                if dims is not None:
                    rank = len(dims) + (1 if s.batching.max_batch_size else 0)
                    if len(t.shape) != rank:
                        raise ModelLoadError(
                            f"model {name!r}: config.pbtxt dims {list(dims)} of {what} "
                            f"{tname!r} do not fit the model's shape {list(t.shape)} (dims "
                            "exclude the batch axis when max_batch_size > 0)"
                        )

    def metadata(self, versions: Sequence[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": list(versions),
            "platform": PLATFORM,
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
        }

    def config(self) -> Any:
        """The configuration this version runs with, as Triton's ModelConfig message (what
        ``GET /v2/models/{m}/config`` and the ModelConfig RPC answer)."""
        from ._proto import model_config_pb2 as mc
        from .datatypes import CONFIG_TO_V2

        s = self.settings
        to_config = {v: k for k, v in CONFIG_TO_V2.items()}
        skip = 1 if s.batching.max_batch_size else 0
        providers = self.session.get_providers()
        gpu = any(p == "CUDAExecutionProvider" for p in providers)
        cfg = mc.ModelConfig(
            name=self.name,
            platform=PLATFORM,
            max_batch_size=s.batching.max_batch_size,
            default_model_filename=s.model_filename,
        )
        for field, specs in ((cfg.input, self.inputs), (cfg.output, self.outputs)):
            for t in specs:
                field.add(name=t.name, data_type=to_config[t.datatype], dims=t.shape[skip:])
        policy = s.version_policy
        if policy[0] == "all":
            cfg.version_policy.all.SetInParent()
        elif policy[0] == "specific":
            cfg.version_policy.specific.versions.extend(policy[1])
        else:
            cfg.version_policy.latest.num_versions = policy[1]
        kind = mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
        cfg.instance_group.add(count=self.instances, kind=kind)
        if s.batching.dynamic:
            db = cfg.dynamic_batching
            db.preferred_batch_size.extend(s.batching.preferred_batch_sizes)
            db.max_queue_delay_microseconds = s.batching.max_queue_delay_us
            db.default_queue_policy.max_queue_size = self.max_queue_size
        cfg.parameters["providers"].string_value = ",".join(providers)
        return cfg

    def prepare(
        self, tensors: Sequence[tuple[str, str, list[int], np.ndarray]], outputs: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """Check decoded inputs ``(name, datatype, shape, array)`` and requested output names
        against the model; returns the feeds and the output names.

        Raises:
            InvalidRequest: naming the input and what is wrong with it.
        """
        feeds: dict[str, np.ndarray] = {}
        mbs = self.settings.batching.max_batch_size
        batch: int | None = None
        for name, datatype, shape, array in tensors:
            spec = self._input_index.get(name)
            if spec is None:
                raise InvalidRequest(
                    f"model {self.name!r} has no input {name!r}; its inputs are "
                    f"{', '.join(t.name for t in self.inputs)}"
                )
            if name in feeds:
                raise InvalidRequest(f"input {name!r} is given twice")
            if datatype != spec.datatype:
                raise InvalidRequest(
                    f"input {name!r} has datatype {datatype}, model {self.name!r} expects "
                    f"{spec.datatype}"
                )
            if len(shape) != len(spec.shape) or any(
                want != -1 and got != want for got, want in zip(shape, spec.shape)
            ):
                raise InvalidRequest(
                    f"input {name!r} has shape {list(shape)}, model {self.name!r} expects "
                    f"{list(spec.shape)} (-1: any size)"
                )
            if mbs:
                if shape[0] < 1 or shape[0] > mbs:
                    raise InvalidRequest(
                        f"input {name!r}: batch size {shape[0]} is outside 1..{mbs} "
                        f"(max_batch_size of model {self.name!r}); split the request"
                    )
                if batch is not None and shape[0] != batch:
                    raise InvalidRequest(
                        f"inputs disagree on the batch size: {name!r} has {shape[0]}, "
                        f"others {batch}"
                    )
                batch = shape[0]
            if datatype == "BYTES":
                array = _as_strings(array, name)
            feeds[name] = array
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise InvalidRequest(
                f"model {self.name!r} needs input(s) {', '.join(missing)}, which the request "
                "does not give"
            )
        for o in outputs:
            if o not in self._output_names:
                raise InvalidRequest(
                    f"model {self.name!r} has no output {o!r}; its outputs are "
                    f"{', '.join(t.name for t in self.outputs)}"
                )
        return feeds, list(outputs)


def _as_strings(array: np.ndarray, name: str) -> np.ndarray:
    """BYTES elements (bytes) -> str, as ONNX string tensors hold them."""
    out = np.empty(array.shape, dtype=object)
    flat_in, flat_out = array.ravel(), out.ravel()
    for i, item in enumerate(flat_in):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(
                    f"input {name!r}: element {i} is not UTF-8; ONNX string tensors hold text"
                ) from None
        flat_out[i] = str(item)
    return out


class ModelRepository:
    """The models a server hosts, loaded from a repository folder or one model file.

    Args:
        source: a repository folder (Triton's layout) or one ``.onnx`` file.
        options: the server's options (default providers, queue size, instances...).
        metrics: the server's :class:`~.metrics.Metrics`, or None.
    """

    def __init__(self, source: str | Path, options: ServerOptions, metrics: Any = None) -> None:
        path = Path(source)
        if not path.exists():
            raise ModelLoadError(f"{source}: no such model file or repository folder")
        self.options = options
        self._metrics = metrics
        self._file: Path | None = None
        if path.is_file():
            self._file = path
            stem = "".join(c if c.isalnum() or c in "_-." else "_" for c in path.stem) or "model"
            self._file_model = stem
            self.root = path.parent
        else:
            self.root = path
        self._models: dict[str, dict[str, LoadedModel]] = {}
        self._states: dict[str, tuple[str, str]] = {}
        self._lock = threading.RLock()

    # -- discovery --------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Model names present in the repository (loaded or not)."""
        if self._file is not None:
            return [self._file_model]
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name))

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidRequest(
                f"model name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
                "at most 128 characters"
            )
        if name not in self.names():
            raise ModelNotFound(f"model {name!r} is not in the model repository")
        return self.root / name

    # -- loading ----------------------------------------------------------------------------
    def load_all(self) -> dict[str, str]:
        """Load every model; returns {model: error message} of those that failed."""
        failed = {}
        for name in self.names():
            try:
                self.load(name)
            except ModelLoadError as exc:
                failed[name] = exc.message
        return failed

    def load(self, name: str) -> list[str]:
        """(Re)load all versions of ``name`` its version policy selects; returns them.

        Raises:
            ModelNotFound: no such model in the repository.
            ModelLoadError: its config, files or session are wrong (the message says which).
        """
        if self._file is not None:
            if name != self._file_model:
                raise ModelNotFound(f"model {name!r} is not served here")
            settings = self.options.model_defaults
            files = {"1": self._file}
        else:
            folder = self._folder(name)
            settings = self.options.model_defaults
            cfg = folder / "config.pbtxt"
            try:
                if cfg.is_file():
                    settings = parse_config(cfg.read_text(encoding="utf-8"), name, settings)
                files = self._version_files(name, folder, settings)
            except ModelLoadError as exc:
                self._load_failed(name, exc)
                raise
        with self._lock:
            if name not in self._models:
                self._states[name] = ("LOADING", "")
        loaded: dict[str, LoadedModel] = {}
        try:
            for version, file in files.items():
                loaded[version] = self._build(name, version, file, settings)
        except ModelLoadError as exc:
            for m in loaded.values():
                m.scheduler.close(0)
            self._load_failed(name, exc)
            raise
        with self._lock:
            old = self._models.get(name, {})
            self._models[name] = loaded
            self._states[name] = ("READY", "")
        for m in old.values():
            m.scheduler.close(self.options.load_timeout_s)
        log.info("model %s: loaded versions %s", name, ", ".join(loaded))
        return list(loaded)

    def _load_failed(self, name: str, exc: ModelLoadError) -> None:
        """A failed (re)load: the versions already loaded, if any, keep serving."""
        with self._lock:
            if self._models.get(name):
                self._states[name] = (
                    "READY",
                    f"reload failed, serving the previous load: {exc.message}",
                )
            else:
                self._states[name] = ("UNAVAILABLE", exc.message)

    def _version_files(self, name: str, folder: Path, settings: ModelSettings) -> dict[str, Path]:
        found = {}
        for p in folder.iterdir():
            if p.is_dir() and p.name.isdigit() and (p / settings.model_filename).is_file():
                found[int(p.name)] = p / settings.model_filename
        if not found:
            raise ModelLoadError(
                f"model {name!r}: no version folder holds {settings.model_filename!r}; the "
                f"layout is <repository>/{name}/<version number>/{settings.model_filename}"
            )
        policy = settings.version_policy
        if policy[0] == "all":
            chosen = sorted(found)
        elif policy[0] == "specific":
            missing = [v for v in policy[1] if v not in found]
            if missing:
                raise ModelLoadError(
                    f"model {name!r}: version_policy asks for versions {missing}, which the "
                    f"repository lacks (present: {sorted(found)})"
                )
            chosen = sorted(policy[1])
        else:
            chosen = sorted(found)[-policy[1] :]
        return {str(v): found[v] for v in chosen}

    def _build(self, name: str, version: str, file: Path, settings: ModelSettings) -> LoadedModel:
        from ort_core import InferenceSession, SessionOptions
        from ort_core import errors as core_errors

        so = SessionOptions()
        if settings.graph_optimization_level is not None:
            from ort_core import GraphOptimizationLevel

            so.graph_optimization_level = GraphOptimizationLevel(settings.graph_optimization_level)
        if settings.intra_op_num_threads is not None:
            so.intra_op_num_threads = settings.intra_op_num_threads
        if settings.inter_op_num_threads is not None:
            so.inter_op_num_threads = settings.inter_op_num_threads
        try:
            for key, value in settings.session_config:
                so.add_session_config_entry(key, value)
            providers = settings.providers or self.options.providers
            session = InferenceSession(
                str(file), so, providers=list(providers) if providers else None
            )
        except (core_errors.OrtError, ValueError, TypeError, OSError) as exc:
            msg = exc.message if isinstance(exc, core_errors.OrtError) else str(exc)
            raise ModelLoadError(
                f"model {name!r} version {version}: the session cannot be created: "
                f"{msg.replace(str(self.root), '<repository>')}"
            ) from exc
        return LoadedModel(name, version, session, settings, self.options, self._metrics)

    def unload(self, name: str) -> None:
        """Stop serving ``name``: new requests get 404; queued ones finish first."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidRequest(f"model name {name!r} is not valid")
        with self._lock:
            old = self._models.pop(name, None)
            if old is None and name not in self._states:
                raise ModelNotFound(f"model {name!r} is not loaded")
            self._states[name] = ("UNAVAILABLE", "unloaded")
        for m in (old or {}).values():
            m.scheduler.close(self.options.load_timeout_s)
        log.info("model %s: unloaded", name)

    def close(self, timeout: float | None = None) -> None:
        """Unload everything, letting queued requests finish (up to ``timeout`` per model)."""
        with self._lock:
            models = [m for versions in self._models.values() for m in versions.values()]
            self._models.clear()
        for m in models:
            m.scheduler.close(timeout)

    # -- lookup -----------------------------------------------------------------------------
    def get(self, name: str, version: str = "") -> LoadedModel:
        """The loaded model (its newest version when ``version`` is empty).

        Raises:
            ModelNotFound: no such model or version is loaded.
        """
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ModelNotFound(f"model {name!r} is not a valid model name")
        with self._lock:
            versions = self._models.get(name)
        if not versions:
            state, reason = self._states.get(name, ("", ""))
            if state == "LOADING":
                raise Unavailable(f"model {name!r} is loading; retry shortly")
            extra = f" ({reason})" if reason and state == "UNAVAILABLE" else ""
            raise ModelNotFound(f"model {name!r} is not loaded{extra}")
        if not version:
            return versions[max(versions, key=int)]
        if version not in versions:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r} loaded; loaded versions: "
                f"{', '.join(sorted(versions, key=int))}"
            )
        return versions[version]

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._models.get(name, {}), key=int)

    def ready(self) -> bool:
        """Every model of the repository is loaded (unloaded ones on request excepted)."""
        with self._lock:
            return all(s == "READY" or r == "unloaded" for s, r in self._states.values())

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Triton's repository index: one entry per model version (or per model not loaded)."""
        out = []
        with self._lock:
            for name in self.names():
                state, reason = self._states.get(name, ("UNAVAILABLE", "not loaded"))
                versions = self._models.get(name)
                if versions:
                    out += [
                        {"name": name, "version": v, "state": "READY", "reason": ""}
                        for v in sorted(versions, key=int)
                    ]
                elif not ready_only:
                    out.append({"name": name, "version": "", "state": state, "reason": reason})
        return out

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return [m for v in self._models.values() for m in v.values()]
