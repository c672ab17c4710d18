#!/usr/bin/env python
"""Regenerate the committed small slices in this directory from full fetches.

    python -m seqdiff.data.fetch fetch all      # full corpora into the data root
    python datasets/make_slices.py [NAME ...]   # rewrite datasets/<NAME>/ + manifest.json

Slices are drawn from the full train/valid/test splits with a fixed seed
(see ``seqdiff.data.fetch.make_slices``), so the result is byte-identical on
every machine that fetched the same pinned packages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from seqdiff.data.fetch import FetchError, make_slices  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="slice names (default: all)")
    ap.add_argument("--root", help="data root holding the full fetches (default $SEQDIFF_DATA or "
                                   "~/.cache/seqdiff/data)")
    ap.add_argument("--dest", default=str(HERE), help="where the slices go (default: this directory)")
    a = ap.parse_args(argv)
    try:
        make_slices(a.dest, a.names or None, a.root)
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
