"""The README's examples run as written.

Every fenced ``bash`` and ``python`` block of README.md runs, whole, in a fresh folder that holds links to
the repository's ``datasets/``, ``configs/`` and ``benchmarks/`` (the paths the examples use), with the
``seqdiff`` command of this checkout first on the PATH: bash blocks under ``bash -euo pipefail``, python
blocks with this interpreter. A block must exit 0. Output blocks (fences without a language) are not run.

A block that cannot run here says so in the README, on the line just before its fence::

    <!-- readme-test: skip (why: too slow on CPU, needs a GPU, starts a server, ...) -->

The skipped set is kept small, and the test checks that each marker gives a reason and sits on a block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<why>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


def readme_blocks(text: str) -> list[dict]:
    """Fenced blocks: ``lang``, ``code``, 1-based ``line`` of the opening fence, ``skip`` reason or None."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        prev = lines[i - 1] if i > 0 else ""
        skip = SKIP.match(prev)
        out.append({"lang": m.group("lang"), "code": "\n".join(lines[i + 1:j]) + "\n", "line": i + 1,
                    "skip": skip.group("why") if skip else None})
        i = j + 1
    return out


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b["lang"] in ("bash", "python")]


def test_skip_markers_sit_on_runnable_blocks():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    markers = [k for k, ln in enumerate(lines) if ln.startswith("<!-- readme-test")]
    for k in markers:
        assert SKIP.match(lines[k]), f"README line {k + 1}: a skip marker needs a reason: {lines[k]!r}"
        assert k + 1 < len(lines) and re.match(r"^```(bash|python)\s*$", lines[k + 1]), \
            f"README line {k + 1}: a skip marker must sit right above a bash or python block"
    assert len([b for b in BLOCKS if b["skip"]]) == len(markers)


def _workdir(tmp_path: Path) -> tuple[Path, dict]:
    for name in ("datasets", "configs", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    launcher = bin_dir / "seqdiff"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; from seqdiff.cli import main; '
                        f'sys.exit(main())" "$@"\n')
    launcher.chmod(0o755)
    # a launcher, not a symlink: a symlinked venv interpreter outside the venv loses its site-packages
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("SEQDIFF_APP_MODELS", None)
    return tmp_path, env


@pytest.mark.timeout(600)
@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b['line']}-{b['lang']}" for b in BLOCKS])
def test_readme_block_runs(block, tmp_path):
    if block["skip"]:
        pytest.skip(f"README line {block['line']}: {block['skip']}")
    cwd, env = _workdir(tmp_path)
    if block["lang"] == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", block["code"]]
    else:
        script = tmp_path / "block.py"
        script.write_text(block["code"])
        cmd = [sys.executable, str(script)]
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=580)
    assert r.returncode == 0, (f"README block at line {block['line']} failed ({r.returncode}):\n{block['code']}\n"
                               f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")


def test_block_parser_and_a_failing_block_fails(tmp_path):
    """The parser finds languages, lines and markers; a block that errors makes the test fail."""
    text = ("intro\n```bash\nseqdiff --help\n```\n<!-- readme-test: skip (needs a GPU) -->\n```python\nimport x\n```\n"
            "```\noutput\n```\n")
    blocks = readme_blocks(text)
    assert [(b["lang"], b["line"], b["skip"]) for b in blocks] == [("bash", 2, None), ("python", 6, "needs a GPU"),
                                                                    ("", 9, None)]
    with pytest.raises(AssertionError, match="failed"):
        test_readme_block_runs({"lang": "bash", "code": "seqdiff sample -m nonexistent-model -n 1\n", "line": 1,
                                "skip": None}, tmp_path)
