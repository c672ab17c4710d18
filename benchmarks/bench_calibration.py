"""Conditional calibration of the shipped models' infilling (``seqdiff.jobs.calibration``).

For fixed motifs that occur in held-out data, the model's predicted composition (and k-mer
spectrum) at every free offset of ``{left} motif {right}`` against the empirical conditional: the
held-out windows around real occurrences of the motif at the same offsets, with cluster-robust
standard errors (one cluster per source sequence). Domains where infilling applies and a shipped
masked model exists: DNA (dm3 upstream regions), protein (UniProt), text (text8-style Wikipedia),
SMILES (MOSES; token offsets).

    python benchmarks/bench_calibration.py              # all domains, about a minute on 2 cores
    python benchmarks/bench_calibration.py --domains dna

Writes ``benchmarks/results/calibration.json``; ``benchmarks/readme_tables.py`` turns it into the
README's calibration table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.jobs.calibration import group_share, motif_calibration, motif_windows  # noqa: E402
from seqdiff.jobs.evaluate import read_sequences  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: domain -> (shipped model, held-out files, training slice, motifs, left, right, k, letter groups)
TASKS = {
    "dna": ("dna", ["datasets/dm3_upstream/valid.fa.gz", "datasets/dm3_upstream/test.fa.gz"],
            "datasets/dm3_upstream/train.fa.gz", ["TATAAAA", "AAAAAAA", "CGCGCGC"], 45, 45, 3, {"GC": "GC"}),
    "protein": ("protein", ["datasets/uniprot/valid.fa.gz", "datasets/uniprot/test.fa.gz"],
                "datasets/uniprot/train.fa.gz", ["LLL", "EEE", "GGG"], 10, 10, 1,
                {"hydrophobic AILMFVW": "AILMFVW", "motif letter": None}),
    "text": ("text", ["datasets/text8_wiki/valid.txt", "datasets/text8_wiki/test.txt"],
             "datasets/text8_wiki/train.txt", [" the ", "tion"], 20, 20, 2, {"space": " ", "vowels aeiou": "aeiou"}),
    "smiles": ("smiles", ["datasets/moses/valid.smi.gz", "datasets/moses/test.smi.gz"],
               "datasets/moses/train.smi.gz", ["C(=O)N", "c1ccccc1"], 4, 4, 1, {"aromatic c": "c"}),
}


#: models trained on windows see a template alone; models trained on whole records (padded
#: layout) see each occurrence's own record, masked except the motif
CONTEXT = {"dna": "template", "text": "template", "protein": "record", "smiles": "record"}


def _groups(spec: dict, motif: str) -> dict[str, str]:
    return {name: (letters if letters is not None else "".join(sorted(set(motif))))
            for name, letters in spec.items()}


def _train_shift(model, train: list[str], motif: str, left: int, right: int, groups: dict[str, str]) -> dict:
    """The data side measured on the training slice (what the model was fitted to)."""
    tok = model.tokenizer
    enc = [tok.encode(s) for s in train]
    mot = tok.encode(motif)
    wins, src, _ = motif_windows(enc, mot, left, right)
    if len(wins) < 2:
        return {}
    free = [i for i in range(left + len(mot) + right) if not left <= i < left + len(mot)]
    out = {"windows": int(len(wins))}
    for name, letters in groups.items():
        ids = sorted({tok.encode(ch)[0] for ch in letters})
        share, se = group_share(wins, src, free, ids)
        out[name] = {"data_conditional": share, "data_conditional_stderr": se}
    return out


def _blocks(texts: list[str], size: int = 2000) -> list[str]:
    return [t[i:i + size] for t in texts for i in range(0, len(t), size)]


def _round(x, nd=5):
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v, nd) for v in x]
    return x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="*", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--bootstrap", type=int, default=200, help="replicates of the JS sampling-noise floor")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "calibration.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    results = {"settings": {"bootstrap": a.bootstrap, "model_side": "denoiser marginals with every free "
                            "position masked; k-mers by the chain rule", "data_side": "held-out windows "
                            "around real occurrences at the same offsets; cluster-robust errors by sequence"},
               "domains": {}}
    out_path = Path(a.out)
    if out_path.exists():  # a subset run keeps the other domains' rows
        old = json.loads(out_path.read_text())
        results["domains"] = {k: v for k, v in old.get("domains", {}).items() if k not in a.domains}
    for dom in a.domains:
        name, held_files, train_file, motifs, left, right, k, gspec = TASKS[dom]
        t0 = time.perf_counter()
        model = load_model(resolve_model(name))
        held = [s for f in held_files for s in read_sequences(ROOT / f, model.domain)]
        train = read_sequences(ROOT / train_file, model.domain)
        if dom == "text":  # one long text per file: 2,000-character blocks are the error clusters
            held, train = _blocks(held), _blocks(train)
        rows = []
        for motif in motifs:
            groups = _groups(gspec, motif)
            rep = motif_calibration(model, held, motif, left, right, k=k, groups=groups, bootstrap=a.bootstrap,
                                    context=CONTEXT[dom])
            rep["train_slice"] = _train_shift(model, train, motif, left, right, groups)
            if "groups" in rep:  # the group share far from the motif (> 20 positions), model and data
                for g in rep["groups"].values():
                    far = [r for r, i in enumerate(rep["k1"]["per_offset"])
                           if min(abs(i["offset"] - left), abs(i["offset"] - (left + len(model.tokenizer.encode(motif)) - 1))) > 20]
                    if far:
                        g["model_conditional_far"] = float(np.mean([g["model_conditional_by_offset"][r] for r in far]))
                        g["data_conditional_far"] = float(np.mean([g["data_conditional_by_offset"][r] for r in far]))
            rows.append(rep)
            gtxt = "; ".join(f"{gn} model {g['model_conditional']:.3f} data {g['data_conditional']:.3f}"
                             f"±{g.get('data_conditional_stderr', float('nan')):.3f} (shift ratio "
                             f"{g['shift_ratio']:.2f})" for gn, g in rep.get("groups", {}).items())
            print(f"[{dom}] {motif!r}: {rep['windows']} windows in {rep['sequences']} sequences; "
                  f"k=1 mean TV {rep.get('k1', {}).get('mean_tv', float('nan')):.3f}; {gtxt}", flush=True)
        results["domains"][dom] = {"model": name, "describe": model.describe(), "heldout": held_files,
                                   "train_slice": train_file, "left": left, "right": right, "k": k,
                                   "motifs": rows, "seconds": round(time.perf_counter() - t0, 1)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(_round(results), indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
