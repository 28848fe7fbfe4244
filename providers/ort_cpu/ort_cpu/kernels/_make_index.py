"""Write :mod:`ort_cpu.kernels._index` (which family modules register each op's kernels):
``python -m ort_cpu.kernels._make_index [--check]`` in a fresh process (see
:mod:`ort_core.provider.index`)."""

from __future__ import annotations

import sys

from ort_core.provider import index

from . import FAMILIES, _index, import_family, registry


def make() -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[tuple[str, str], int]]:
    return index.family_index(FAMILIES, import_family, registry.registered)


def main(argv: list[str] | None = None) -> int:
    return index.main(argv, module=__name__, index=_index, make=make)


if __name__ == "__main__":
    sys.exit(main())
