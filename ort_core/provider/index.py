"""Indexes of which module registers which op's kernels, so a provider imports only what a
session needs (see :meth:`ort_core.provider.KernelRegistry.defer`).

A provider whose kernels live in family modules keeps a generated ``_index.py`` beside them,
``FAMILIES_OF = {(domain, op_type): (family, ...)}`` and ``LOWEST_SINCE = {(domain, op_type):
since}`` (the lowest since-version among the key's kernels), and a ``_make_index`` module
whose ``main`` calls :func:`main` here: ``python -m <package>._make_index`` rewrites the index
after a kernel was added or moved, ``--check`` exits 1 when it is out of date (run it in the
provider's tests).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Key = tuple[str, str]

_HEADER = '''"""Which family modules register each op's kernels: (domain, op_type) -> modules.

Written by ``python -m {module}``; do not edit. Kernels are imported by it on first use.
"""

# fmt: off
'''


def family_index(
    families: Sequence[str],
    import_family: Callable[[str], None],
    registered: Callable[[], Iterable[tuple[str, str, int]]],
) -> tuple[dict[Key, tuple[str, ...]], dict[Key, int]]:
    """Import the families in order; a key's families are those whose import registered more
    of its kernels. ``registered()`` lists (domain, op_type, since) of every kernel registered
    so far; it must list none before the first import (a fresh process). Returns the families
    and the lowest since-version of each key."""
    if any(True for _ in registered()):
        raise RuntimeError("a kernel index must be made in a fresh process")
    found: dict[Key, list[str]] = {}
    before: dict[Key, int] = {}
    lowest: dict[Key, int] = {}
    for name in families:
        import_family(name)
        now: dict[Key, int] = {}
        for domain, op, since in registered():
            key = (domain, op)
            now[key] = now.get(key, 0) + 1
            lowest[key] = min(since, lowest.get(key, since))
        for key, n in now.items():
            if n > before.get(key, 0):
                found.setdefault(key, []).append(name)
        before = now
    return {key: tuple(found[key]) for key in sorted(found)}, dict(sorted(lowest.items()))


def render(index: tuple[Mapping[Key, tuple[str, ...]], Mapping[Key, int]], module: str) -> str:
    """The text of an ``_index.py`` written by ``python -m module``."""
    families, lowest = index
    return (
        _HEADER.format(module=module)
        + "FAMILIES_OF: dict[tuple[str, str], tuple[str, ...]] = {\n"
        + "".join(f"    {key!r}: {names!r},\n" for key, names in families.items())
        + "}\n\nLOWEST_SINCE: dict[tuple[str, str], int] = {\n"
        + "".join(f"    {key!r}: {since!r},\n" for key, since in lowest.items())
        + "}\n# fmt: on\n"
    )


def main(
    argv: list[str] | None,
    *,
    module: str,
    index: Any,
    make: Callable[[], tuple[dict[Key, tuple[str, ...]], dict[Key, int]]],
) -> int:
    """The command line of a provider's ``_make_index`` module (``module``): write the index
    ``make()`` returns over the index module ``index`` (its file), or with ``--check`` compare
    it to what that module holds."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the index is stale")
    args = parser.parse_args(argv)
    found = make()
    path = index.__file__
    if args.check:
        families = getattr(index, "FAMILIES_OF", {})
        lowest = getattr(index, "LOWEST_SINCE", {})
        if found == (families, lowest):
            return 0
        stale = sorted(
            (set(found[0].items()) ^ set(families.items()))
            | {(k, (v,)) for k, v in set(found[1].items()) ^ set(lowest.items())}
        )
        sys.stderr.write(
            f"{path} is out of date ({len(stale)} entries differ, first {stale[:3]}): run "
            f"python -m {module}\n"
        )
        return 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(found, module))
    return 0
