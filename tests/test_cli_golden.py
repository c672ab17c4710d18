"""CLI outputs for fixed seeds are the same as at the commit the registry refactor started from
(recorded by ``python tests/cli_golden.py record``, see that script for the commands)."""

import json

import pytest

from cli_golden import CASES, GOLDEN, run_case

RECORDED = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_output_unchanged(name):
    got = run_case(CASES[name])
    want = RECORDED[name]
    assert sorted(got) == sorted(want)
    for fname in want:
        assert got[fname] == want[fname], f"{name}: {fname} differs"
