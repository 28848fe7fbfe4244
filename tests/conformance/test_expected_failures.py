"""The expected-failures files are well formed: every entry has a reason, no duplicates, and every
entry names a case that exists in the installed onnx's suite (stale names fail here; stale entries
whose test now passes fail as strict XPASS in the suite run)."""

import pytest

from tests.conformance.suite import EXPECTED_DIR, all_case_names, read_expected

FILES = sorted(p.stem for p in EXPECTED_DIR.glob("*.txt"))


@pytest.mark.parametrize("name", FILES)
def test_entries_exist(name):
    entries = read_expected(name)
    unknown = sorted(set(entries) - all_case_names())
    assert not unknown, f"{name}.txt lists tests the suite does not have: {unknown[:10]}"


def test_reader_rejects_duplicates_and_missing_reasons(tmp_path, monkeypatch):
    import tests.conformance.suite as suite

    monkeypatch.setattr(suite, "EXPECTED_DIR", tmp_path)
    (tmp_path / "x.txt").write_text("test_a_cpu # why\ntest_a_cpu # again\n")
    with pytest.raises(ValueError, match="duplicate"):
        suite.read_expected("x")
    (tmp_path / "y.txt").write_text("test_b_cpu\n")
    with pytest.raises(ValueError, match="no reason"):
        suite.read_expected("y")
