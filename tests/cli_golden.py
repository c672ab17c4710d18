"""Fixed-seed outputs of `seqdiff sample | infill | score | eval` on the shipped models.

``python tests/cli_golden.py record`` runs every command below in one process (through
``seqdiff.cli.main``) and writes the files each produced to ``tests/fixtures/cli_golden.json``;
``tests/test_cli_golden.py`` reruns them and compares file by file, so a refactor that changes
what a user gets for a given seed fails there.  The JSON was recorded at the commit the
registry / layering refactor started from, before any of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "fixtures" / "cli_golden.json"

#: name -> argv; ``{out}`` is a scratch folder, ``{root}`` the repository.  Small counts and few steps
#: keep the whole set to a few seconds of CPU.
CASES: dict[str, list[str]] = {
    "sample-dna": ["sample", "-m", "dna", "-n", "4", "--steps", "16", "--length", "64", "--score",
                   "-o", "{out}/s.fa"],
    "sample-protein": ["sample", "-m", "protein", "-n", "2", "--steps", "16", "-o", "{out}/s.fa"],
    "sample-smiles": ["sample", "-m", "smiles", "-n", "4", "--steps", "16", "-o", "{out}/s.smi"],
    "sample-text": ["sample", "-m", "text", "-n", "2", "--steps", "16", "--length", "48", "-o", "{out}/s.txt"],
    "sample-dna-confidence": ["sample", "-m", "dna", "-n", "2", "--steps", "8", "--length", "32",
                              "--sampler", "confidence", "-o", "{out}/s.fa"],
    "infill-dna": ["infill", "-m", "dna", "-t", "TTGACA[N:17]TATAAT[N:5-8]", "-n", "3", "--steps", "16",
                   "--rank", "-o", "{out}/i.fa"],
    "infill-smiles": ["infill", "-m", "smiles", "-t", "c1ccccc1{3}C(=O)O", "-n", "3", "--steps", "16",
                      "-o", "{out}/i.smi"],
    "infill-text": ["infill", "-m", "text", "-t", "the {4} sat", "-n", "2", "--steps", "16", "-o", "{out}/i.txt"],
    "score-dna-fasta": ["score", "-m", "dna", "--fasta", "{root}/tests/fixtures/dna_short.fa", "--n-t", "4",
                        "-o", "{out}/score.csv"],
    "score-protein-fasta": ["score", "-m", "protein", "--fasta", "{root}/tests/fixtures/proteins.fasta",
                            "--n-t", "4", "-o", "{out}/score.csv"],
    "eval-dna": ["eval", "-m", "dna", "--split", "{root}/datasets/dm3_upstream/valid.fa.gz", "--max-rows", "4",
                 "--n-t", "2", "--json", "--samples", "{root}/tests/fixtures/dna.fa",
                 "--reference", "{root}/datasets/dm3_upstream/valid.fa.gz"],
    "eval-text-samples": ["eval", "--samples", "{root}/tests/fixtures/prose.txt", "--domain", "text", "--json"],
}


def run_case(argv: list[str]) -> dict[str, str]:
    """Run one command in a scratch folder; ``{file name: text}`` of what it wrote (and, for ``eval``,
    its JSON on stdout)."""
    from seqdiff.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        args = [a.replace("{out}", tmp).replace("{root}", str(ROOT)) for a in argv] + ["--quiet", "--device", "cpu", "--seed", "0"]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(args)
        files = {"rc": str(rc)}
        for p in sorted(Path(tmp).iterdir()):
            files[p.name] = p.read_text()
        if argv[0] == "eval":
            files["stdout"] = buf.getvalue().replace(str(ROOT), "{root}")
        return files


def run_all() -> dict[str, dict[str, str]]:
    return {name: run_case(argv) for name, argv in CASES.items()}


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        raise SystemExit("usage: python tests/cli_golden.py record")
    GOLDEN.write_text(json.dumps(run_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
