import pytest

from tests.conformance.suite import read_expected


def pytest_collection_modifyitems(config, items):
    cache: dict[str, dict[str, str]] = {}
    for item in items:
        module = getattr(item, "module", None)
        name = getattr(module, "EXPECTED_FAILURES", None)
        if name is None:
            continue
        if name not in cache:
            cache[name] = read_expected(name)
        reason = cache[name].get(item.name)
        if reason is not None:
            # "[random]" entries compare random draws and "[ill-conditioned]" ones depend on how
            # the machine's BLAS rounds exact ties: either may pass by chance, so not strict
            strict = not reason.startswith(("[random]", "[ill-conditioned]"))
            item.add_marker(pytest.mark.xfail(strict=strict, reason=reason))
