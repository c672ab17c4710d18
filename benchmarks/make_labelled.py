"""Labelled training files for conditional models (classifier-free guidance), from the sliced
corpora in datasets/:

* ``runs/labelled/moses_qed_{train,valid}.csv``: MOSES SMILES with RDKit QED, logP and molecular
  weight computed here (RDKit), one row per molecule;
* ``runs/labelled/gb1_{train,valid}.csv``: GB1 double mutants (Olson et al. 2014, as distributed
  with the MAVE-NN package) with their measured fitness (log enrichment);
* ``runs/labelled/dm3_gc_{train,valid}.csv``: 100-bp windows of the Drosophila upstream regions
  (``datasets/dm3_upstream``; the first ten non-overlapping windows of each record) with their GC
  content (a property with no validity question, for the DNA classifier-guidance benchmark).

Usage: python benchmarks/make_labelled.py [--out runs/labelled] [--only moses gb1 dm3_gc]
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


def dm3_gc(out: Path, width: int = 100, per_record: int = 10) -> None:
    from Bio import SeqIO
    for split in ("train", "valid"):
        dest = out / f"dm3_gc_{split}.csv"
        n = 0
        with gzip.open(ROOT / "datasets" / "dm3_upstream" / f"{split}.fa.gz", "rt") as fh, \
                open(dest, "w", newline="") as oh:
            w = csv.writer(oh)
            w.writerow(["sequence", "gc"])
            for rec in SeqIO.parse(fh, "fasta"):
                s = str(rec.seq).upper()
                for k in range(min(per_record, len(s) // width)):
                    win = s[k * width:(k + 1) * width]
                    if "N" in win:
                        continue
                    w.writerow([win, f"{(win.count('G') + win.count('C')) / width:.4f}"])
                    n += 1
        print(f"{dest}: {n} windows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "labelled"))
    ap.add_argument("--only", nargs="+", choices=["moses", "gb1", "dm3_gc"], help="make only these files")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ap_only = {"moses": moses, "gb1": gb1, "dm3_gc": dm3_gc}
    for name in args.only or list(ap_only):
        ap_only[name](out)


if __name__ == "__main__":
    main()
