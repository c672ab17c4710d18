"""The shipped protein model on the 813 GB1 single mutants of Nisthal et al. 2019 (zero-shot).

Scores every single mutant of ``datasets/gb1/singles.csv`` by masked marginal (the shipped
``protein`` model) and by BLOSUM62, and reports the Spearman correlation of each with the measured
stability (``stability = -ddG_fold``: higher = more stable; the fetch pins the sign), with a
bootstrap 95 % interval over mutants (2,000 resamples, seed 0).

    python benchmarks/bench_gb1_singles.py     # a few seconds

Writes ``benchmarks/results/gb1_singles.json`` (the README table is generated from it by
``benchmarks/readme_tables.py``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.jobs.scoring import score_variants  # noqa: E402
from seqdiff.jobs.variants import blosum62_scores, read_variants  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _wild_type(name: str) -> str:
    from Bio import SeqIO

    return next(str(r.seq) for r in SeqIO.parse(ROOT / "datasets" / "gb1" / "wild_type.fa", "fasta") if r.id == name)


def main() -> int:
    wt = _wild_type("GB1_nisthal2019")
    table = read_variants(pd.read_csv(ROOT / "datasets" / "gb1" / "singles.csv")[["mutant", "ddG_fold", "stability"]],
                          wt)
    scored = score_variants(load_model(resolve_model("protein")), wt, table, methods=["masked_marginal"])
    scores = {"protein (shipped): masked marginal": scored["score_masked_marginal"].to_numpy(),
              "BLOSUM62 (baseline)": np.asarray(blosum62_scores(wt, list(table["mutant"])), dtype=float)}
    y = table["stability"].to_numpy()
    rng = np.random.default_rng(0)
    boots = [rng.integers(0, len(y), len(y)) for _ in range(2000)]
    rows = []
    for name, s in scores.items():
        rho, p = spearmanr(s, y)
        bs = np.array([spearmanr(s[b], y[b])[0] for b in boots])
        lo, hi = np.nanpercentile(bs, [2.5, 97.5])
        rows.append({"method": name, "n": int(len(y)), "spearman": float(rho), "p_value": float(p),
                     "ci95": [float(lo), float(hi)]})
        print(f"{name}: Spearman {rho:+.3f} (95 % CI {lo:+.3f} to {hi:+.3f}, p = {p:.3g}, n = {len(y)})")
    out = {"data": "datasets/gb1/singles.csv (Nisthal et al. 2019)", "target": "stability = -ddG_fold",
           "rows": rows}
    path = ROOT / "benchmarks" / "results" / "gb1_singles.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
