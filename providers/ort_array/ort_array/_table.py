"""The table of shared kernels and :func:`register`, which puts them into a provider's registry.

Family modules declare kernels with :func:`kernel` and :func:`builder`, which take the arguments
of :meth:`ort_core.provider.KernelRegistry.kernel` / ``builder`` and only record them here:
nothing is registered until a provider calls :func:`register` with its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ort_core.provider import KernelRegistry


@dataclass(frozen=True)
class Spec:
    """One shared kernel: what ``registry.kernel(...)`` or ``registry.builder(...)`` gets."""

    op_type: str
    since: tuple[int, ...]
    fn: Callable
    is_builder: bool
    dtypes: Any = None
    check: Callable | None = None
    limit: Callable | None = None
    host_inputs: tuple[int, ...] = ()
    attributes: tuple[str, ...] | None = None
    domain: str = ""


SPECS: list[Spec] = []


def _versions(since: int | Iterable[int]) -> tuple[int, ...]:
    return (since,) if isinstance(since, int) else tuple(since)


def kernel(
    op_type: str,
    since: int | Iterable[int] = 1,
    *,
    dtypes: Any = None,
    check: Callable | None = None,
    limit: Callable | None = None,
    host_inputs: Collection[int] = (),
    domain: str = "",
) -> Callable[[Callable], Callable]:
    """Declare a plain kernel function (inputs positional, attributes as keywords)."""

    def deco(fn: Callable) -> Callable:
        SPECS.append(
            Spec(op_type, _versions(since), fn, False, dtypes, check, limit, tuple(host_inputs),
                 domain=domain)
        )  # fmt: skip
        return fn

    return deco


def builder(
    op_type: str,
    since: int | Iterable[int] = 1,
    *,
    dtypes: Any = None,
    attributes: Collection[str] | None = None,
    check: Callable | None = None,
    limit: Callable | None = None,
    host_inputs: Collection[int] = (),
    domain: str = "",
) -> Callable[[Callable], Callable]:
    """Declare a kernel builder ``build(info) -> callable``."""

    def deco(fn: Callable) -> Callable:
        attrs = tuple(attributes) if attributes is not None else None
        SPECS.append(
            Spec(op_type, _versions(since), fn, True, dtypes, check, limit, tuple(host_inputs),
                 attrs, domain)
        )  # fmt: skip
        return fn

    return deco


def register(
    registry: KernelRegistry,
    *,
    skip: Collection[str] = (),
    dtypes: Collection[Any] | None = None,
    keys: Collection[tuple[str, str]] | None = None,
    exclude: Collection[tuple[str, str]] = (),
) -> list[tuple[str, str, int]]:
    """Register the shared kernels into ``registry``; return the keys added.

    A provider registers its own (tuned) kernels first, then calls this for the rest. For an op the
    registry already has, a shared version is added only below the registry's lowest version of
    the op: an equal version would be a duplicate, and a higher one would shadow the provider's
    kernel at every later opset. So the provider's kernels always win, and the shared ones fill in
    the older opsets it does not cover.

    Args:
        registry: the provider's kernel registry.
        skip: op types to leave out entirely (the provider runs them some other way, or not at
            all).
        dtypes: the element types the provider's arrays can hold (cupy has no bfloat16, say);
            each kernel's declared input types are narrowed to them, and inputs a kernel leaves
            unconstrained are constrained to them.
        keys: register only these (domain, op_type) keys (None: all); a registry that loads its
            own kernels on demand adds the shared ones of a key once it loaded the key's own.
        exclude: keys not to register.
    """
    lowest: dict[tuple[str, str], int] = {}
    if keys is not None:  # (the registry's versions of these keys only: one key at a time)
        for key in keys:
            if versions := registry.versions(key):
                lowest[key] = versions[0]
    else:
        for domain, op, since in registry.registered():
            key = (domain, op)
            lowest[key] = min(since, lowest.get(key, since))
    allowed = None if dtypes is None else frozenset(_dtype(d) for d in dtypes)
    added = []
    for spec in SPECS:
        key = (spec.domain, spec.op_type)
        if spec.op_type in skip or (keys is not None and key not in keys) or key in exclude:
            continue
        own = lowest.get(key)
        versions = [s for s in spec.since if own is None or s < own]
        if not versions:
            continue
        types = _narrow(spec.dtypes, allowed)
        limit = spec.limit if allowed is None else _with_outputs(spec.limit, allowed)
        if spec.is_builder:
            registry.builder(
                spec.op_type, versions, domain=spec.domain, dtypes=types,
                attributes=spec.attributes, check=spec.check, limit=limit,
                host_inputs=spec.host_inputs,
            )(spec.fn)  # fmt: skip
        else:
            registry.kernel(
                spec.op_type, versions, domain=spec.domain, dtypes=types, check=spec.check,
                limit=limit, host_inputs=spec.host_inputs,
            )(spec.fn)  # fmt: skip
        added.extend((spec.domain, spec.op_type, s) for s in versions)
    return added


def _with_outputs(limit: Callable | None, allowed: frozenset) -> Callable:
    """``limit``, and also: every output's element type (when known) is one the provider's
    arrays hold (Cast to float16 on a namespace without float16)."""

    def check(info: Any) -> str | None:
        reason = limit(info) if limit is not None else None
        if reason is not None:
            return reason
        for i in range(info.num_outputs):
            dt = info.output_dtype(i)
            if dt is not None and dt not in allowed:
                return f"output {i} has element type {dt}, which the provider's arrays cannot hold"
        return None

    return check


def _dtype(d: Any) -> Any:
    import numpy as np

    return np.dtype(d)


def _narrow(declared: Any, allowed: frozenset | None) -> Any:
    """A kernel's ``dtypes=`` narrowed to the provider's element types."""
    if allowed is None:
        return declared
    if declared is None:
        return {0: allowed}
    if not isinstance(declared, dict):
        declared = {0: declared}
    out = {i: frozenset(_dtype(d) for d in ts) & allowed for i, ts in declared.items()}
    out.setdefault(0, allowed)
    return out
