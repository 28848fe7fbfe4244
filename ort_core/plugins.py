"""Plugin manager: entry-point discovery, hook calls, and the provider registry.

Plugins are modules named by entry points in the group ``ort_core``. They are loaded once per process,
the first time anything asks for providers. ``ORT_CORE_PLUGINS`` (a comma-separated list of
entry-point names) restricts which plugins load; ``ORT_CORE_DISABLE_PLUGINS`` lists names to skip.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import InvalidArgument, PluginError
from .provider import Availability, ExecutionProvider

__all__ = [
    "PluginManager",
    "ProviderEntry",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "ort_core"


@dataclass
class ProviderEntry:
    """A registered provider class and where it came from."""

    cls: type[ExecutionProvider]
    distribution: str
    version: str
    plugin: str

    @property
    def name(self) -> str:
        return self.cls.name

    def availability(self) -> Availability:
        try:
            return self.cls.availability()
        except Exception as e:  # a broken probe makes the provider unavailable, with the reason
            return Availability(False, f"its availability check failed: {type(e).__name__}: {e}")


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
                dist = getattr(ep, "dist", None)
                dist_name = dist.metadata["Name"] if dist is not None else "?"
                dist_version = dist.version if dist is not None else "?"
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
        for impl in self.pm.hook.ort_register_ops.get_hookimpls():
            impl.function(register=self._register_op)
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
                cls = self.providers.pop(pname).cls
                for a in list(self.aliases):
                    if self.aliases[a] == cls.name:
                        del self.aliases[a]

    def _register_op(self, schema: Any) -> None:
        import onnx

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
        def register(cls: type[ExecutionProvider]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, ExecutionProvider)) or not cls.name:
                raise PluginError(
                    f"plugin '{plugin}' ({dist}) registered {cls!r}, which is not an "
                    "ExecutionProvider subclass with a name."
                )
            for key in (cls.name, *cls.aliases):
                owner = self.aliases.get(key.lower())
                if owner is not None:
                    other = self.providers[owner].distribution
                    raise PluginError(
                        f"provider name '{key}' is registered by both {other} and {dist}; "
                        "uninstall one of the two distributions."
                    )
            cls.distribution = dist
            self.providers[cls.name] = ProviderEntry(cls, dist, version, plugin)
            for key in (cls.name, *cls.aliases):
                self.aliases[key.lower()] = cls.name

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
        return sorted(entries, key=lambda e: e.cls.name == "CPUExecutionProvider")


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points()
    selected = (
        eps.select(group=ENTRY_POINT_GROUP)
        if hasattr(eps, "select")
        else eps.get(ENTRY_POINT_GROUP, [])
    )
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in selected:  # the same distribution can be visible twice on sys.path
        seen.setdefault(ep.name + "\0" + ep.value, ep)
    return list(seen.values())


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = PluginManager()
    _manager.load()
    return _manager


def device_provider(device: str, device_id: int) -> Any:
    """An instance of an installed provider whose memory is ``device`` (None when none is)."""
    for entry in get_plugin_manager().ordered():
        cls = entry.cls
        if cls.device_name == device and not cls.host_memory:
            return cls.for_device(device_id)
    return None


def reset_plugin_manager() -> None:
    """Forget every loaded plugin; the next call to :func:`get_plugin_manager` rediscovers them."""
    global _manager
    with _manager_lock:
        _manager = None
