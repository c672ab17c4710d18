"""The `seqdiff` command's layout: an explicit subcommand table, a --help that loads no torch, and
every option of every subcommand documented."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from seqdiff.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"], ["convert", "--help"], ["data", "--help"]])
def test_help_loads_neither_torch_nor_lightning(argv):
    code = (f"import sys\nfrom seqdiff.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'lightning', 'pandas') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    if argv == ["--help"]:
        assert all(name in r.stdout for name in SUBCOMMANDS)
    else:
        assert r.stdout.startswith(f"usage: seqdiff {argv[0]}")


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_of_every_subcommand_is_documented(name):
    parser = build_parser([name])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    assert callable(SUBCOMMANDS[name].function("run", name))
    missing = [a.option_strings or [a.dest] for a in sub._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not missing, f"seqdiff {name}: options without help: {missing}"


def test_only_the_chosen_subcommand_is_configured():
    parser = build_parser(["data"])
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert [a.dest for a in subs["data"]._actions if a.dest != "help"] == ["rest"]
    assert [a.dest for a in subs["sample"]._actions if a.dest != "help"] == []
