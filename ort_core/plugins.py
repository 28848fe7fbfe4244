"""Plugin manager: entry-point discovery, hook calls, and the provider registry.

Plugins are modules named by entry points in the group ``ort_core``. They are loaded once per process,
the first time anything asks for providers. ``ORT_CORE_PLUGINS`` (a comma-separated list of
entry-point names) restricts which plugins load; ``ORT_CORE_DISABLE_PLUGINS`` lists names to skip.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
import threading
import warnings
from typing import Any, NamedTuple

import pluggy

from . import _disk, _onnx, hookspecs
from .errors import InvalidArgument, PluginError
from .provider import Availability, ExecutionProvider

__all__ = [
    "PluginManager",
    "ProviderEntry",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "ort_core"


class ProviderEntry:
    """A registered provider class and where it came from.

    A plugin registers either the class itself or where to find it (``"module:Class"`` with the
    provider's name and aliases); then the class's module is imported the first time ``cls`` is
    read (a session asks for the provider, or providers are listed with their availability), so
    a process pays only for the providers it uses.
    """

    __slots__ = ("_cls", "_target", "_aliases", "_name", "distribution", "version", "plugin")

    def __init__(
        self,
        cls: type[ExecutionProvider] | None,
        distribution: str,
        version: str,
        plugin: str,
        *,
        target: str = "",
        name: str = "",
        aliases: tuple[str, ...] = (),
    ) -> None:
        self._cls = cls
        self._target = target
        self._name = cls.name if cls is not None else name
        self._aliases = tuple(cls.aliases) if cls is not None else tuple(aliases)
        self.distribution = distribution
        self.version = version
        self.plugin = plugin

    @property
    def name(self) -> str:
        return self._name

    @property
    def aliases(self) -> tuple[str, ...]:
        return self._aliases

    @property
    def loaded(self) -> bool:
        """Whether the provider class has been imported."""
        return self._cls is not None

    @property
    def cls(self) -> type[ExecutionProvider]:
        """The provider class (imported on first use when the plugin registered where it is).

        Raises:
            PluginError: the class cannot be imported, or is not the provider it was registered as.
        """
        cls = self._cls
        if cls is None:
            with _import_lock:
                cls = self._cls
                if cls is None:
                    cls = self._cls = self._import()
        return cls

    def _import(self) -> type[ExecutionProvider]:
        module_name, _, attr = self._target.partition(":")
        where = f"plugin '{self.plugin}' ({self.distribution})"
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except Exception as e:
            raise PluginError(
                f"{where} registered provider '{self._name}' as {self._target}, which cannot be "
                f"imported ({type(e).__name__}: {e}). Reinstall or uninstall {self.distribution}."
            ) from e
        if not (isinstance(cls, type) and issubclass(cls, ExecutionProvider)):
            raise PluginError(
                f"{where} registered provider '{self._name}' as {self._target}, which is "
                f"{cls!r}, not an ExecutionProvider subclass."
            )
        if cls.name != self._name or tuple(cls.aliases) != self._aliases:
            raise PluginError(
                f"{where} registered provider '{self._name}' (aliases {list(self._aliases)}) as "
                f"{self._target}, but that class is named '{cls.name}' (aliases "
                f"{list(cls.aliases)}): make the registration match the class."
            )
        cls.distribution = self.distribution
        return cls

    def availability(self) -> Availability:
        try:
            return self.cls.availability()
        except Exception as e:  # a broken probe makes the provider unavailable, with the reason
            if isinstance(e, PluginError):
                return Availability(False, e.message)
            return Availability(False, f"its availability check failed: {type(e).__name__}: {e}")

    def __repr__(self) -> str:
        what = self._cls.__name__ if self._cls is not None else self._target
        return f"<ProviderEntry {self._name} ({what}) from {self.distribution} {self.version}>"


_import_lock = threading.RLock()


class PluginManager:
    """Loads plugins and holds what they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.providers: dict[str, ProviderEntry] = {}
        self.aliases: dict[str, str] = {}
        self.passes: list[Any] = []
        #: pass name -> the plugin that registered it
        self.pass_owner: dict[str, str] = {}
        self.op_schemas: list[Any] = []
        self.broken: dict[str, str] = {}
        self._dist_of: dict[str, tuple[str, str]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------------
    def load(self) -> None:
        """Discover entry points, register them, check hooks, and collect registrations (once)."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            only = _env_list("ORT_CORE_PLUGINS")
            skip = set(_env_list("ORT_CORE_DISABLE_PLUGINS") or ())
            for ep in _entry_points():
                if (only is not None and ep.name not in only) or ep.name in skip:
                    continue
                dist_name, dist_version = ep.distribution, ep.version
                try:
                    module = ep.load()
                except Exception as e:  # report, do not crash every session for one bad plugin
                    self.broken[ep.name] = f"{dist_name}: import of {ep.value} failed: {e}"
                    warnings.warn(
                        f"ort-core plugin '{ep.name}' from {dist_name} failed to load ({e}); its "
                        "providers are unavailable. Reinstall or uninstall that distribution.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    continue
                self._register_module(module, ep.name, dist_name, dist_version)
            self._finish()

    def _register_module(self, module: Any, name: str, dist: str, version: str) -> None:
        if self.pm.has_plugin(name):
            other = self._dist_of.get(name, ("?", "?"))[0]
            raise PluginError(
                f"two plugins are named '{name}' (from {other} and {dist}); uninstall one of them."
            )
        self.pm.register(module, name=name)
        self._dist_of[name] = (dist, version)

    def _check_pending(self, name: str | None = None) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:
            if name is not None:
                self.pm.unregister(name=name)
                self._dist_of.pop(name, None)
            raise PluginError(
                f"a plugin implements a hook ort-core does not define: {e}. Check the spelling of "
                "the hook names against ort_core.hookspecs."
            ) from None

    def _finish(self) -> None:
        self._check_pending()
        self._defer_ops(self.pm.hook.ort_register_ops.get_hookimpls())
        for impl in self.pm.hook.ort_register_providers.get_hookimpls():
            dist, version = self._dist_of.get(impl.plugin_name, ("?", "?"))
            impl.function(register=self._provider_registrar(impl.plugin_name, dist, version))
        for impl in self.pm.hook.ort_register_passes.get_hookimpls():
            impl.function(register=self._pass_registrar(impl.plugin_name))

    def add_plugin(self, module: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register an in-process plugin (tests and embedding applications) after loading."""
        with self._lock:
            self.load()
            self._register_module(module, name, distribution or name, version or "0")
            self._check_pending(name)
            dist, ver = self._dist_of[name]
            for hook, reg in (
                (self.pm.hook.ort_register_ops, self._register_op),
                (self.pm.hook.ort_register_providers, self._provider_registrar(name, dist, ver)),
                (self.pm.hook.ort_register_passes, self._pass_registrar(name)),
            ):
                for impl in hook.get_hookimpls():
                    if impl.plugin_name == name:
                        impl.function(register=reg)

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin added with :meth:`add_plugin` and forget its providers."""
        with self._lock:
            self.pm.unregister(name=name)
            self._dist_of.pop(name, None)
            mine = {n for n, owner in self.pass_owner.items() if owner == name}
            self.passes = [p for p in self.passes if p.name not in mine]
            for n in mine:
                del self.pass_owner[n]
            for pname in [p for p, e in self.providers.items() if e.plugin == name]:
                canonical = self.providers.pop(pname).name
                for a in list(self.aliases):
                    if self.aliases[a] == canonical:
                        del self.aliases[a]

    def _defer_ops(self, impls: list) -> None:
        """Plugins' op schemas go to onnx when onnx is imported (at once where it is): creating
        a session need not import onnx (see ``ort_core/_onnx.py``). The schema table on disk
        (``ort_core/ir/_schema_table.py``) is keyed by these plugins' identity instead."""
        from .ir import _schema_table

        stamp = []
        for impl in impls:
            dist, version = self._dist_of.get(impl.plugin_name, ("?", "?"))
            source = getattr(impl.plugin, "__file__", None)
            folder = _disk.stamp_folder(os.path.dirname(source)) if source else None
            stamp.append((impl.plugin_name, dist, version, folder))
        _schema_table.set_registrants(tuple(stamp))
        if not impls:
            return

        def register(_onnx_module: Any) -> None:
            for impl in impls:
                impl.function(register=functools.partial(self._register_op, deferred=True))

        _onnx.on_import(register)
        _onnx.sync()

    def _register_op(self, schema: Any, deferred: bool = False) -> None:
        import onnx

        from .ir import _schema_table

        if not deferred:
            _schema_table.go_live()

        try:
            onnx.defs.register_schema(schema)
        except Exception as e:
            name = getattr(schema, "name", schema)
            raise PluginError(f"cannot register op schema {name}: {e}") from e
        self.op_schemas.append(schema)

    def plugin_label(self, plugin: str) -> str:
        """``'name' (distribution)`` of a registered plugin, for messages."""
        return f"'{plugin}' ({self._dist_of.get(plugin, ('?', '?'))[0]})"

    def _pass_registrar(self, plugin: str):
        def register(p: Any) -> None:
            name = getattr(p, "name", "")
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"plugin {self.plugin_label(plugin)} registered the pass {p!r}, which has no "
                    "name; give the pass a unique `name`."
                )
            owner = self.pass_owner.get(name)
            if owner is not None:
                raise PluginError(
                    f"two optimizer passes are named '{name}': one from plugin "
                    f"{self.plugin_label(owner)}, one from plugin {self.plugin_label(plugin)}. "
                    "Pass names must be unique; rename one of them (or uninstall a plugin)."
                )
            self.pass_owner[name] = plugin
            self.passes.append(p)

        return register

    def _provider_registrar(self, plugin: str, dist: str, version: str):
        def register(
            cls: type[ExecutionProvider] | str, *, name: str = "", aliases: Any = ()
        ) -> None:
            if isinstance(cls, str):  # "module:Class", imported when first used
                module_name, colon, attr = cls.partition(":")
                if not (module_name and colon and attr and isinstance(name, str) and name):
                    raise PluginError(
                        f"plugin '{plugin}' ({dist}) registered the provider {cls!r}: a provider "
                        "registered by where it is needs 'module:Class' and its name, "
                        "register('pkg.provider:FooProvider', name='FooExecutionProvider', "
                        "aliases=('foo',))."
                    )
                if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
                    raise PluginError(
                        f"plugin '{plugin}' ({dist}) registered provider '{name}' with aliases "
                        f"{aliases!r}: give a tuple of strings."
                    )
                entry = ProviderEntry(
                    None, dist, version, plugin, target=cls, name=name, aliases=tuple(aliases)
                )
            else:
                if not (isinstance(cls, type) and issubclass(cls, ExecutionProvider)) or not (
                    cls.name
                ):
                    raise PluginError(
                        f"plugin '{plugin}' ({dist}) registered {cls!r}, which is not an "
                        "ExecutionProvider subclass with a name."
                    )
                entry = ProviderEntry(cls, dist, version, plugin)
            for key in (entry.name, *entry.aliases):
                owner = self.aliases.get(key.lower())
                if owner is not None:
                    other = self.providers[owner].distribution
                    raise PluginError(
                        f"provider name '{key}' is registered by both {other} and {dist}; "
                        "uninstall one of the two distributions."
                    )
            if entry.loaded:
                entry.cls.distribution = dist
            self.providers[entry.name] = entry
            for key in (entry.name, *entry.aliases):
                self.aliases[key.lower()] = entry.name

        return register

    # -- queries -------------------------------------------------------------------------------
    def resolve(self, name: str) -> ProviderEntry | None:
        """The provider registered under ``name`` or one of its aliases (case-insensitive)."""
        self.load()
        if not isinstance(name, str):
            raise InvalidArgument(f"provider names are strings, got {type(name).__name__}")
        canonical = self.aliases.get(name.lower())
        return self.providers.get(canonical) if canonical else None

    def ordered(self) -> list[ProviderEntry]:
        """Registered providers in default priority order (the CPU provider last)."""
        self.load()
        entries = list(self.providers.values())
        return sorted(entries, key=lambda e: e.name == "CPUExecutionProvider")


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


class _EntryPoint(NamedTuple):
    """One ``ort_core`` entry point and the distribution that declares it."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        """The object the value names (``module`` or ``module:attr``; extras in brackets
        ignored, as importlib.metadata does)."""
        module, _, attr = self.value.split("[", 1)[0].partition(":")
        obj = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj


def _entry_points() -> list[_EntryPoint]:
    """The group's entry points of the distributions on ``sys.path`` (the first of a name wins,
    as importlib.metadata has it).

    Read from the ``*.dist-info`` / ``*.egg-info`` folders' ``entry_points.txt`` here, parsing
    only files that name the group: importlib.metadata's ``entry_points()`` builds every installed
    distribution through pathlib and took 4 ms of a process's first session among 140 of them.
    A path entry that is not a folder (a zip archive) sends the search to importlib.metadata.
    The result is kept on disk (:func:`_cached_entry_points`) for the next process.
    """
    if not all(os.path.isdir(entry or ".") or not os.path.exists(entry) for entry in sys.path):
        return _metadata_entry_points()
    cached = _cached_entry_points()
    if cached is not None:
        return cached
    read: list[str] = []
    found = _scan_entry_points(read)
    _save_entry_points(found, read)
    return found


def _path_stamp() -> list:
    """sys.path's folders with their mtimes (installing or removing a distribution adds or removes
    a ``*.dist-info`` folder, which changes its folder's mtime)."""
    out = []
    for entry in sys.path:
        try:
            out.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            out.append((entry, None))
    return out


def _file_stamp(paths: list[str]) -> list:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((path, None, None))
    return out


def _entry_points_file() -> str:
    key = _disk.digest((ENTRY_POINT_GROUP, _path_stamp()))
    return os.path.join(_disk.cache_root(), "entry-points", key + ".pickle")


def _cached_entry_points() -> list[_EntryPoint] | None:
    """The scan's result saved by an earlier process with the same sys.path folders, when the
    files it read are unchanged (``ort_core/_disk.py``; 0.2 ms against 2.3 for the scan)."""
    if not _disk.enabled():
        return None
    import pickle

    try:
        with open(_entry_points_file(), "rb") as f:
            found, files = pickle.load(f)
        if _file_stamp([path for path, _, _ in files]) != files:
            return None
        return [_EntryPoint(*e) for e in found]
    except Exception:  # none yet, or unreadable
        return None


def _save_entry_points(found: list[_EntryPoint], read: list[str]) -> None:
    if not _disk.enabled():
        return
    import pickle

    data = ([tuple(e) for e in found], _file_stamp(read))
    _disk.write_atomic(_entry_points_file(), pickle.dumps(data))


def _scan_entry_points(read: list[str]) -> list[_EntryPoint]:
    """Read the entry points of every distribution on sys.path (``read`` gets the files that
    mattered: those naming the group, and their distributions' metadata)."""
    header = f"[{ENTRY_POINT_GROUP}]"
    seen_dists: set[str] = set()
    found: dict[str, _EntryPoint] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            project = re.sub(r"[-_.]+", "_", folder.rpartition(".")[0].split("-")[0]).lower()
            if project in seen_dists:
                continue
            seen_dists.add(project)
            path = os.path.join(entry or ".", folder)
            try:
                with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if header not in text:
                continue
            read.append(os.path.join(path, "entry_points.txt"))
            read.extend(os.path.join(path, meta) for meta in ("METADATA", "PKG-INFO"))
            dist, version = _name_and_version(path, folder)
            for name, value in _section(text, header):
                found.setdefault(name + "\0" + value, _EntryPoint(name, value, dist, version))
    return list(found.values())


def _section(text: str, header: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of an ini file's section ``header``."""
    pairs, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == header
        elif inside and line and line[0] not in "#;" and "=" in line:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def _name_and_version(path: str, folder: str) -> tuple[str, str]:
    """A distribution's Name and Version from its metadata's headers (the folder's as a
    fallback)."""
    name, _, rest = folder.rpartition(".")[0].partition("-")
    found = {"Name": name, "Version": rest.split("-")[0] or "?"}
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, meta), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    key, _, value = line.partition(":")
                    if key in found:
                        found[key] = value.strip()
        except OSError:
            continue
        break
    return found["Name"], found["Version"]


def _metadata_entry_points() -> list[_EntryPoint]:
    import importlib.metadata

    found: dict[str, _EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        found.setdefault(ep.name + "\0" + ep.value, _EntryPoint(ep.name, ep.value, name, version))
    return list(found.values())


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = PluginManager()
    _manager.load()
    _onnx.sync()
    return _manager


def device_provider(device: str, device_id: int) -> Any:
    """An instance of an installed provider whose memory is ``device`` (None when none is)."""
    for entry in get_plugin_manager().ordered():
        try:
            cls = entry.cls
        except PluginError:  # a provider whose class cannot be imported has no memory to offer
            continue
        if cls.device_name == device and not cls.host_memory:
            return cls.for_device(device_id)
    return None


def reset_plugin_manager() -> None:
    """Forget every loaded plugin; the next call to :func:`get_plugin_manager` rediscovers them."""
    global _manager
    with _manager_lock:
        _manager = None
