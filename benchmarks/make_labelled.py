"""Labelled training files for conditional models (classifier-free guidance), from the sliced
corpora in datasets/:

* ``runs/labelled/moses_qed_{train,valid}.csv``: MOSES SMILES with RDKit QED, logP and molecular
  weight computed here (RDKit), one row per molecule;
* ``runs/labelled/gb1_{train,valid}.csv``: GB1 double mutants (Olson et al. 2014, as distributed
  with the MAVE-NN package) with their measured fitness (log enrichment).

Usage: python benchmarks/make_labelled.py [--out runs/labelled]
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _smiles(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line.split()[0] for line in fh if line.strip()]


def moses(out: Path) -> None:
    from rdkit import Chem, rdBase
    from rdkit.Chem import QED, Crippen, Descriptors
    for split in ("train", "valid"):
        rows = []
        with rdBase.BlockLogs():
            for s in _smiles(ROOT / "datasets" / "moses" / f"{split}.smi.gz"):
                m = Chem.MolFromSmiles(s)
                if m is None:
                    continue
                rows.append((s, QED.qed(m), Crippen.MolLogP(m), Descriptors.MolWt(m)))
        dest = out / f"moses_qed_{split}.csv"
        with open(dest, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["smiles", "qed", "logp", "mw"])
            for s, q, lp, mw in rows:
                w.writerow([s, f"{q:.4f}", f"{lp:.3f}", f"{mw:.2f}"])
        print(f"{dest}: {len(rows)} molecules")


def gb1(out: Path) -> None:
    for split in ("train", "valid"):
        src = ROOT / "datasets" / "gb1" / f"doubles_{split}.csv.gz"
        dest = out / f"gb1_{split}.csv"
        with gzip.open(src, "rt") as fh, open(dest, "w", newline="") as oh:
            r = csv.DictReader(fh)
            w = csv.writer(oh)
            w.writerow(["sequence", "fitness", "mutant"])
            n = 0
            for row in r:
                w.writerow([row["x"], row["fitness"], row["mutant"]])
                n += 1
        print(f"{dest}: {n} variants")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "labelled"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    moses(out)
    gb1(out)


if __name__ == "__main__":
    main()
