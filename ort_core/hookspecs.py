"""pluggy hook specifications of ort-core.

A plugin is a module named by an entry point in the group ``ort_core``; it implements some of these
hooks with ``@ort_core.hookspecs.hookimpl``. Hooks are called by keyword, once, when the plugin manager
loads (the first time providers are listed or a session is created). Every hook receives a
``register`` callback rather than returning values, so that the core handles aliases and name
collisions in one place.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "ort_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ort_register_providers(register: Callable[..., None]) -> None:
    """Register the execution providers this plugin ships.

    Args:
        register: call ``register(ProviderClass)`` once per provider class, where the class derives
            from :class:`ort_core.provider.ExecutionProvider` and sets ``name`` (onnxruntime's
            spelling, e.g. ``"CUDAExecutionProvider"``) and optionally ``aliases``. Registering a name
            or alias that another plugin registered raises :class:`ort_core.errors.PluginError`
            naming both distributions. Or say where the class is, with its name and aliases:
            ``register("pkg.provider:FooProvider", name="FooExecutionProvider", aliases=("foo",))``;
            then the module is imported the first time a session asks for the provider or the
            available providers are listed, so a process imports only the providers it uses. A
            class that fails to import, or whose ``name``/``aliases`` differ from the registered
            ones, makes the provider unavailable with that reason.

    Returns:
        Nothing; results go through ``register``.

    Called once per process, when the plugin manager first loads plugins.
    """


@hookspec
def ort_register_passes(register: Callable[..., None]) -> None:
    """Register graph-optimizer passes this plugin contributes.

    Args:
        register: call ``register(pass_object)`` for each pass, where the object has a unique
            ``name``, a ``level`` (a :class:`ort_core.GraphOptimizationLevel`), and a
            ``__call__(model, context) -> bool`` that returns whether it changed the model. A pass
            may restrict itself to providers with a ``providers`` tuple of provider names.

    Returns:
        Nothing; results go through ``register``.

    Called once per process, when the plugin manager first loads plugins.
    """


@hookspec
def ort_register_ops(register: Callable[..., None]) -> None:
    """Register operator schemas for domains the core does not know (custom ops).

    Args:
        register: call ``register(schema)`` with an :class:`onnx.defs.OpSchema` (domain, name,
            since-version, inputs, outputs, type and shape inference). The schema is registered with
            onnx so that shape inference and the checker know the op.

    Returns:
        Nothing; results go through ``register``.

    Called once per process, when onnx is first imported (at once, where the plugins load after
    it): a process creating sessions for models seen before needs no onnx (see
    ``ort_core/_onnx.py``). ort-core's schema table on disk is keyed by the implementing plugins'
    distributions and source files, so a changed plugin makes a new table.
    """


@hookspec
def ort_preload_libraries(cuda: bool, cudnn: bool) -> None:
    """Load the native libraries this plugin's provider needs into the process now
    (``ort_core.preload_dlls()``, onnxruntime's name), so that other packages imported later find
    them. A plugin without such libraries does not implement it.

    Args:
        cuda: load the CUDA runtime libraries.
        cudnn: load cuDNN.

    Returns:
        Nothing. A library that cannot be loaded is left for the provider's own availability
        check to report.
    """
