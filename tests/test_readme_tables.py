"""The README's result tables agree with benchmarks/results/*.json (benchmarks/readme_tables.py)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_tables"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_agree_with_the_results(rt):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = rt.blocks(readme)
    # every builder is used in the README, every block has a builder
    assert set(found) == set(rt.TABLES), (set(found) ^ set(rt.TABLES))
    regenerated = rt.render(readme)
    for name in found:
        assert rt.blocks(regenerated)[name] == found[name], \
            f"README block {name!r} differs from benchmarks/results: run python benchmarks/readme_tables.py"
    assert regenerated == readme


def test_a_changed_result_changes_its_block_only(rt, tmp_path):
    """The check can fail: edit one number in a copy of the results and only that block moves."""
    res = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", res)
    data = json.loads((res / "results.json").read_text())
    data["likelihood"]["dna"]["masked"]["bits_per_token"] = 1.2345
    (res / "results.json").write_text(json.dumps(data))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    new = rt.render(readme, res)
    before, after = rt.blocks(readme), rt.blocks(new)
    assert [n for n in before if before[n] != after[n]] == ["likelihood"]
    assert "| dna | 1.234 |" in after["likelihood"] or "| dna | 1.235 |" in after["likelihood"]
    readme_copy = tmp_path / "README.md"
    readme_copy.write_text(readme, encoding="utf-8")
    assert rt.main(["--check", "--readme", str(readme_copy), "--results", str(res)]) == 1
    assert readme_copy.read_text(encoding="utf-8") == readme  # --check never writes
    assert rt.main(["--readme", str(readme_copy), "--results", str(res)]) == 0
    assert readme_copy.read_text(encoding="utf-8") == new
    assert rt.main(["--check", "--readme", str(readme_copy), "--results", str(res)]) == 0


def test_markers_are_checked(rt, tmp_path):
    rt.TABLES.setdefault("_unit", lambda results: "| a |\n|---|\n| 1 |")
    try:
        text = "x\n<!-- results:_unit -->\nold\n<!-- /results:_unit -->\ny\n"
        assert rt.render(text) == "x\n<!-- results:_unit -->\n| a |\n|---|\n| 1 |\n<!-- /results:_unit -->\ny\n"
        assert rt.render(text, only=set()) == text
        for bad, msg in [("<!-- results:_unit -->\nold\n", "never closed"),
                         ("<!-- /results:_unit -->\n", "without its opening"),
                         ("<!-- results:nope -->\n<!-- /results:nope -->\n", "no table builder named 'nope'"),
                         ("<!-- results:_unit -->\n<!-- results:_unit -->\n<!-- /results:_unit -->\n"
                          "<!-- /results:_unit -->\n", "do not nest")]:
            with pytest.raises(ValueError, match=msg):
                rt.render(bad)
        with pytest.raises(ValueError, match="registered twice"):
            rt.table("_unit")(lambda results: "")
    finally:
        rt.TABLES.pop("_unit", None)
