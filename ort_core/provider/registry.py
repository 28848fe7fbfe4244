"""Kernel providers: kernels registered by (domain, op, since-version), with the element types,
attributes and predicates (``check=`` invalid, ``limit=`` this kernel cannot) that decide whether
a node is run; :class:`KernelProvider` turns a registry into ``get_capability``/``decline``."""

from __future__ import annotations

import inspect
import keyword
import threading
import types
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import PluginError
from .base import Claim, Decline, ExecutionProvider, KernelUnsupported
from .view import GraphView, KernelInfo


@dataclass
class KernelDef:
    """One registered kernel: its key and how to build it."""

    domain: str
    op_type: str
    since: int
    build: Callable[[KernelInfo], Callable[..., Any]]
    dtypes: dict[int, frozenset[np.dtype]] = field(default_factory=dict)
    attributes: frozenset[str] | None = None  # accepted attribute names (None: any)
    check: Callable[[KernelInfo], str | None] | None = None  # the node is invalid: why
    limit: Callable[[KernelInfo], str | None] | None = None  # this kernel cannot: why
    source: str = ""
    host_inputs: frozenset[int] = frozenset()
    host_outputs: frozenset[int] = frozenset()

    def unsupported_reason(self, info: KernelInfo) -> str | None:
        """Why this kernel cannot run the node, or None when it can."""
        d = self.decline(info)
        return d.reason if d is not None else None

    def decline(self, info: KernelInfo) -> Decline | None:
        """Element types, attribute names and ``limit`` are this kernel's limits; ``check`` finds
        the node itself invalid."""
        reason = self.dtype_reason(info) or self.attribute_reason(info)
        if reason is None and self.limit is not None:
            reason = self.limit(info)
        if reason is not None:
            return Decline(reason, "limit")
        reason = self.check_reason(info)
        return Decline(reason, "invalid") if reason is not None else None

    def dtype_reason(self, info: KernelInfo) -> str | None:
        """Why the node's input element types are not supported, or None."""
        for i, allowed in self.dtypes.items():
            dt = info.input_dtype(i) if i < info.num_inputs and info.node.inputs[i] else None
            if dt is not None and dt not in allowed:
                names = ", ".join(sorted(str(d) for d in allowed))
                return f"input {i} has element type {dt}; the kernel supports {names}"
        return None

    def attribute_reason(self, info: KernelInfo) -> str | None:
        """Why the kernel does not accept the node's attributes (an attribute it does not know)."""
        if self.attributes is not None:
            extra = set(info.node.attributes) - self.attributes - set(info.node.subgraphs)
            if extra:
                return f"attribute(s) {sorted(extra)} not supported (supported: {sorted(self.attributes)})"
        return None

    def check_reason(self, info: KernelInfo) -> str | None:
        """What the kernel's ``check`` finds wrong with the node (attribute values...), or None."""
        return self.check(info) if self.check is not None else None


def _normalize_dtypes(dtypes: Any) -> dict[int, frozenset[np.dtype]]:
    if dtypes is None:
        return {}
    if isinstance(dtypes, dict):
        return {int(k): frozenset(np.dtype(d) for d in v) for k, v in dtypes.items()}
    return {0: frozenset(np.dtype(d) for d in dtypes)}


class KernelSource(Protocol):
    """Registers a registry's kernels on demand (see :meth:`KernelRegistry.defer`)."""

    def load(self, registry: KernelRegistry, key: tuple[str, str]) -> None:
        """Register every kernel of ``key`` = (domain, op_type) (and any others it likes)."""

    def load_all(self, registry: KernelRegistry, loaded: frozenset[tuple[str, str]]) -> None:
        """Register every kernel not registered yet; ``loaded`` are the keys already asked for."""


class KernelRegistry:
    """Kernels keyed by (domain, op_type, since-version), with the input element types they accept.

    The highest since-version not above the node's opset wins. Two styles of registration:

    ``@registry.kernel("HardSigmoid", since=6, dtypes=FLOAT_TYPES)`` on a function taking the inputs
    positionally and the attributes as keyword arguments with ONNX's defaults in the signature;
    GRAPH attributes arrive as bound subgraphs callable as ``body(*inputs) -> list``.

    ``@registry.builder("Conv", since=11)`` on ``build(info: KernelInfo) -> callable(*inputs)`` for
    kernels that do work once at session creation (parse attributes, prepack weights).
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._defs: dict[tuple[str, str], list[KernelDef]] = {}
        self._source: KernelSource | None = None
        self._pending = False  # a deferred source has not loaded everything yet
        self._asked: set[tuple[str, str]] = set()
        self._lock = threading.RLock()

    def defer(self, source: KernelSource) -> None:
        """Register kernels when they are first asked for: a lookup of (domain, op_type) calls
        ``source.load(registry, key)`` once for that key, and listing the registry (``keys()``,
        ``ops()``, ``len()``) calls ``source.load_all`` once. A provider whose kernels live in
        many modules then imports, at a session's creation, only those its model's ops need.
        Sessions created in several threads at once see a key only once it is loaded."""
        self._source, self._pending = source, True

    def _get(self, key: tuple[str, str]) -> list[KernelDef] | None:
        if self._pending and key not in self._asked:
            with self._lock:
                source = self._source
                if source is not None and key not in self._asked:
                    try:
                        source.load(self, key)
                    finally:
                        self._asked.add(key)
        return self._defs.get(key)

    def _complete(self) -> None:
        if not self._pending:
            return
        with self._lock:
            source, self._source = self._source, None
            if source is not None:
                try:
                    source.load_all(self, frozenset(self._asked))
                finally:
                    self._pending = False

    def __len__(self) -> int:
        self._complete()
        return sum(len(v) for v in self._defs.values())

    def keys(self) -> list[tuple[str, str, int]]:
        self._complete()
        return self.registered()

    def registered(self) -> list[tuple[str, str, int]]:
        """The keys registered so far, without loading deferred kernels (see :meth:`defer`)."""
        return sorted((d.domain, d.op_type, d.since) for v in self._defs.values() for d in v)

    def versions(self, key: tuple[str, str]) -> list[int]:
        """The since-versions registered so far for ``key`` = (domain, op_type), lowest first,
        without loading deferred kernels."""
        return [d.since for d in self._defs.get(key, ())]

    def ops(self) -> set[tuple[str, str]]:
        self._complete()
        return set(self._defs)

    def add(self, kdef: KernelDef) -> None:
        key = (kdef.domain, kdef.op_type)
        defs = self._defs.setdefault(key, [])
        for d in defs:
            if d.since == kdef.since:
                raise PluginError(
                    f"kernel registry {self.name!r}: {kdef.domain or 'ai.onnx'}::{kdef.op_type} "
                    f"since {kdef.since} registered twice ({d.source} and {kdef.source}). Remove one "
                    "or give it another since-version."
                )
        defs.append(kdef)
        defs.sort(key=lambda d: d.since)

    def kernel(
        self,
        op_type: str,
        since: int | Iterable[int] = 1,
        *,
        domain: str = "",
        dtypes: Any = None,
        check: Callable[[KernelInfo], str | None] | None = None,
        limit: Callable[[KernelInfo], str | None] | None = None,
        host_inputs: Collection[int] = (),
        host_outputs: Collection[int] = (),
    ) -> Callable[[Callable], Callable]:
        """Register a plain kernel function (inputs positional, attributes as keywords).

        ``check(info)`` says why a node is invalid (an error); ``limit(info)`` why this kernel
        cannot run a valid node (rank, sizes, device features: the node falls back).
        ``host_inputs`` lists inputs a device provider's kernel wants as host numpy arrays;
        ``host_outputs`` outputs it returns as host numpy arrays (Shape's, on a device)."""

        def deco(fn: Callable) -> Callable:
            accepted, var_kw = _keyword_params(fn)
            build = _function_builder(fn, accepted)
            attrs = None if var_kw else accepted
            self._add_versions(
                op_type, since, domain, fn, build, dtypes, attrs, check, limit, host_inputs,
                host_outputs,
            )  # fmt: skip
            return fn

        return deco

    def builder(
        self,
        op_type: str,
        since: int | Iterable[int] = 1,
        *,
        domain: str = "",
        dtypes: Any = None,
        attributes: Collection[str] | None = None,
        check: Callable[[KernelInfo], str | None] | None = None,
        limit: Callable[[KernelInfo], str | None] | None = None,
        host_inputs: Collection[int] = (),
        host_outputs: Collection[int] = (),
    ) -> Callable[[Callable], Callable]:
        """Register a kernel builder ``build(info) -> callable`` (``check``/``limit``,
        ``host_inputs``/``host_outputs`` as in :meth:`kernel`)."""

        def deco(fn: Callable) -> Callable:
            self._add_versions(
                op_type, since, domain, fn, fn, dtypes, attributes, check, limit, host_inputs,
                host_outputs,
            )  # fmt: skip
            return fn

        return deco

    def _add_versions(
        self, op_type, since, domain, fn, build, dtypes, attributes, check, limit, host_inputs,
        host_outputs=(),
    ) -> None:  # fmt: skip
        """One KernelDef per since-version of ``fn`` (``build`` makes its callable)."""
        for v in _as_versions(since):
            self.add(
                KernelDef(
                    domain,
                    op_type,
                    v,
                    build,
                    _normalize_dtypes(dtypes),
                    frozenset(attributes) if attributes is not None else None,
                    check,
                    limit,
                    f"{fn.__module__}.{fn.__qualname__}",
                    frozenset(host_inputs),
                    frozenset(host_outputs),
                )
            )

    def lookup(self, domain: str, op_type: str, opset: int) -> KernelDef | None:
        """The kernel with the highest since-version not above ``opset``, or None."""
        defs = self._get(("" if domain == "ai.onnx" else domain, op_type))
        if not defs:
            return None
        best = None
        for d in defs:
            if d.since <= opset:
                best = d
        return best

    def unsupported_reason(self, info: KernelInfo) -> str | None:
        """Why no kernel of this registry runs the node, or None when one does."""
        d = self.decline(info)
        return d.reason if d is not None else None

    def decline(self, info: KernelInfo) -> Decline | None:
        """Why no kernel of this registry runs the node (no kernel is a limit), or None."""
        node = info.node
        kdef = self.lookup(node.domain, node.op_type, info.opset)
        if kdef is None:
            defs = self._get((node.domain, node.op_type))
            if not defs:
                return Decline(f"no kernel for {node.domain or 'ai.onnx'}::{node.op_type}")
            return Decline(
                f"no kernel for {node.op_type} at opset {info.opset} (kernels exist since "
                f"{', '.join(str(d.since) for d in defs)})"
            )
        return kdef.decline(info)

    def create(self, info: KernelInfo) -> Callable[..., Any]:
        """Build the kernel for a node (raises KernelUnsupported when it cannot)."""
        kdef = self.lookup(info.node.domain, info.node.op_type, info.opset)
        if kdef is None:
            raise KernelUnsupported(self.unsupported_reason(info) or "no kernel")
        return kdef.build(info)


def _as_versions(since: int | Iterable[int]) -> list[int]:
    return [since] if isinstance(since, int) else list(since)


def _keyword_params(fn: Callable) -> tuple[list[str], bool]:
    """Attribute names a kernel function accepts (keyword parameters), and whether it takes **kw."""
    if (
        type(fn) is types.FunctionType
        and not hasattr(fn, "__wrapped__")
        and not hasattr(fn, "__signature__")
    ):  # a plain function: read its code object (what inspect.signature reads, ~20x faster)
        code = fn.__code__
        positional = code.co_varnames[: code.co_argcount]
        n_defaults = len(fn.__defaults__ or ())
        first = max(code.co_posonlyargcount, code.co_argcount - n_defaults)
        found = [
            *positional[first:],
            *code.co_varnames[code.co_argcount :][: code.co_kwonlyargcount],
        ]
        return (
            [n.rstrip("_") if keyword.iskeyword(n.rstrip("_")) else n for n in found],
            bool(code.co_flags & inspect.CO_VARKEYWORDS),
        )
    names: list[str] = []
    var_kw = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.KEYWORD_ONLY or (
            p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
        ):
            names.append(p.name.rstrip("_") if keyword.iskeyword(p.name.rstrip("_")) else p.name)
    return names, var_kw


def _function_builder(fn: Callable, accepted: list[str]) -> Callable[[KernelInfo], Callable]:
    """Make a builder that binds a node's attributes to a plain kernel function."""
    rename = {n: (n + "_" if keyword.iskeyword(n) else n) for n in accepted}

    def build(info: KernelInfo) -> Callable[..., Any]:
        kwargs = {rename.get(k, k): v for k, v in info.attrs.items()}
        if not info.subgraph_runners:
            if not kwargs:
                return fn
            return _bind(fn, kwargs)
        n = len(info.node.inputs)
        implicit = info.implicit_inputs
        runners = info.subgraph_runners

        def run_with_subgraphs(*args: Any) -> Any:
            outer = dict(zip(implicit, args[n:]))
            bound = {name: r.bind(outer) for name, r in runners.items()}
            return fn(*args[:n], **kwargs, **bound)

        return run_with_subgraphs

    return build


def _bind(fn: Callable, kwargs: dict[str, Any]) -> Callable[..., Any]:
    def bound(*args: Any) -> Any:
        return fn(*args, **kwargs)

    return bound


class KernelProvider(ExecutionProvider):
    """A provider whose capability is its :class:`KernelRegistry`: one claim per node it has a
    kernel for, given the node's opset, input element types and attributes."""

    registry: ClassVar[KernelRegistry]

    def get_capability(self, view: GraphView) -> list[Claim]:
        claims = []
        for node in view.nodes:
            d = self.decline(view.kernel_info(node, self))
            if d is not None:  # a limit falls back (next provider, function body); invalid: error
                view.reject(node, self.name, d.reason, expandable=not d.invalid)
                continue
            claims.append(Claim.single(node))
        return claims

    def decline(self, info: KernelInfo) -> Decline | None:
        return self.registry.decline(info)

    def create_kernel(self, info: KernelInfo) -> Callable[..., Any]:
        return self.registry.create(info)

    def host_inputs(self, info: KernelInfo) -> frozenset[int]:
        kdef = self.registry.lookup(info.node.domain, info.node.op_type, info.opset)
        return kdef.host_inputs if kdef is not None else frozenset()

    def host_outputs(self, info: KernelInfo) -> frozenset[int]:
        kdef = self.registry.lookup(info.node.domain, info.node.op_type, info.opset)
        return kdef.host_outputs if kdef is not None else frozenset()

    def supports_op(self, domain: str, op_type: str, since: int) -> bool:
        return self.registry.lookup(domain, op_type, since) is not None
