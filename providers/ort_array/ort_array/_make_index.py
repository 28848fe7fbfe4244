"""Write :mod:`ort_array._index` (which family modules declare each op's shared kernels):
``python -m ort_array._make_index [--check]`` in a fresh process (see
:mod:`ort_core.provider.index`)."""

from __future__ import annotations

import sys

from ort_core.provider import index

from . import FAMILIES, _index, _table, import_family


def make() -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[tuple[str, str], int]]:
    return index.family_index(
        FAMILIES,
        import_family,
        lambda: [(s.domain, s.op_type, v) for s in _table.SPECS for v in s.since],
    )


def main(argv: list[str] | None = None) -> int:
    return index.main(argv, module=__name__, index=_index, make=make)


if __name__ == "__main__":
    sys.exit(main())
