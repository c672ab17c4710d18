"""`seqdiff demo`: the quick start's main job, on the shipped default models (a few minutes on CPU).

One section per registered domain that names one (:attr:`seqdiff.domains.Domain.demo`), in registry order:

* text: unconditional text8-style samples and an infilled sentence;
* DNA: promoter-like sequences with a fixed JASPAR TATA box (TBP), scanned for motif hits;
* protein: GB1 double mutants (Olson et al. 2014) scored by masked marginals, against measured
  fitness (Spearman) and the BLOSUM62 baseline;
* SMILES: unconditional molecules, with RDKit validity, uniqueness and novelty;
* RNA: tRNA-like sequences around a fixed anticodon stem-loop motif, with GC, 3-mer and MFE
  against held-out tRNAs (:func:`seqdiff.domains.rna.demo_section`).

Every output goes under ``--out`` (default ``demo/``), and a short report is printed and saved
(``report.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import torch

from ..training.data import REPO_ROOT

__all__ = ["run_demo"]


def _section(title: str) -> None:
    print(f"\n== {title}")


def run_demo(out: Path, *, num: int = 32, steps: int = 64, seed: int = 0, variants: int = 2000,
             quiet: bool = True) -> dict:
    """Every registered domain's demo section (:attr:`seqdiff.domains.Domain.demo`), in registry
    order; the report maps each domain to what its section returned."""
    from ..domains import domains

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    t_all = time.perf_counter()
    for dom in domains().values():
        if dom.demo is not None:
            report[dom.name] = dom.run_demo(out, num=num, steps=steps, seed=seed, variants=variants, quiet=quiet)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ndone in {report['seconds']} s; report: {out / 'report.json'}")
    return report


def smiles_section(out: Path, *, num: int = 32, steps: int = 64, seed: int = 0, quiet: bool = True, **_) -> dict:
    """Unconditional molecules, with RDKit validity, uniqueness and novelty."""
    from ..domains import get_domain
    from ..model import load_model
    from ..pretrained import resolve_model
    from .generate import sample_job

    _section("SMILES: unconditional drug-like molecules")
    smi = load_model(resolve_model("smiles"))
    print(f"model: {smi.describe()}")
    s = sample_job(smi, num * 2, out / "molecules.smi", steps=steps, seed=seed, progress=not quiet)
    mols = pd.read_csv(out / "molecules.csv", keep_default_na=False)
    train_smiles = [line.split()[0] for line in _lines(REPO_ROOT / "datasets" / "moses" / "train.smi.gz")]
    m = get_domain("smiles").metrics(list(mols["sequence"]), training=train_smiles)
    rep = {k: m.get(k) for k in ("validity", "uniqueness", "novelty")} | {
        "file": s["out"], "sampler": s["sampler"], "sampler_options": s["sampler_options"], "steps": s["steps"]}
    opts = ", ".join(f"{k} {v}" for k, v in s["sampler_options"].items()) or "defaults"
    print(f"{len(mols)} molecules -> {s['out']} ({s['sampler']} sampler, {opts}, {s['steps']} steps); validity "
          f"{m['validity']:.2f}, uniqueness {m['uniqueness']:.2f}, novelty {m['novelty']:.2f}")
    print("examples: " + ", ".join(mols.loc[mols['valid'].astype(str) == 'True', 'sequence'].head(3)))
    return rep


def protein_section(out: Path, *, seed: int = 0, variants: int = 2000, **_) -> dict:
    """GB1 double mutants (Olson et al. 2014) scored by masked marginals, against measured fitness
    (Spearman) and the BLOSUM62 baseline."""
    from ..model import load_model
    from ..pretrained import resolve_model
    from .scoring import score_variants
    from .variants import blosum62_scores, read_variants

    _section("Protein: scoring GB1 double mutants against measured fitness")
    prot = load_model(resolve_model("protein"))
    print(f"model: {prot.describe()}")
    gb1 = REPO_ROOT / "datasets" / "gb1"
    wt = "".join(line.strip() for line in (gb1 / "wild_type.fa").read_text().split(">")[1].splitlines()[1:])
    table = pd.read_csv(gb1 / "doubles_test.csv.gz")
    if variants and len(table) > variants:
        table = table.sample(variants, random_state=seed)
    table = read_variants(table[["mutant", "fitness"]], wt)
    t0 = time.perf_counter()
    scored = score_variants(prot, wt, table, methods=["masked_marginal"], seed=seed)
    rate = len(scored) / (time.perf_counter() - t0)
    scored["blosum62"] = blosum62_scores(wt, list(scored["mutant"]))
    scored.drop(columns=["positions"]).to_csv(out / "gb1_scores.csv", index=False)
    rho = scored[["score_masked_marginal", "fitness"]].corr(method="spearman").iloc[0, 1]
    rho_b = scored[["blosum62", "fitness"]].corr(method="spearman").iloc[0, 1]
    print(f"{len(scored)} variants scored ({rate:.0f}/s) -> {out / 'gb1_scores.csv'}")
    print(f"Spearman with fitness: masked marginal {rho:.3f}, BLOSUM62 baseline {rho_b:.3f}")
    return {"variants": len(scored), "spearman_masked_marginal": round(float(rho), 4),
            "spearman_blosum62": round(float(rho_b), 4), "variants_per_second": round(rate, 1),
            "file": str(out / "gb1_scores.csv")}


def text_section(out: Path, *, steps: int = 64, seed: int = 0, quiet: bool = True, **_) -> dict:
    """Unconditional text8-style samples and an infilled sentence."""
    from ..model import load_model
    from ..pretrained import resolve_model
    from .generate import infill_job, sample_job

    _section("Text: samples and an infilled sentence")
    txt = load_model(resolve_model("text"))
    print(f"model: {txt.describe()}")
    s = sample_job(txt, 4, out / "text_samples.txt", steps=steps, seed=seed, length=96, progress=not quiet)
    texts = (out / "text_samples.txt").read_text().splitlines()
    s2 = infill_job(txt, "the history of {10-16} in the {8} century", 4, out / "text_infill.txt", steps=steps,
                    seed=seed, rank=True, progress=not quiet)
    filled = (out / "text_infill.txt").read_text().splitlines()
    for t in texts[:2]:
        print(f"  sample: {t}")
    for t in filled[:2]:
        print(f"  infill: {t}")
    return {"samples": texts, "infilled": filled, "files": [s["out"], s2["out"]]}


#: held-out DNA the demo's generated flanks are compared with (never seen in training)
DNA_HELDOUT = ("datasets/dm3_upstream/valid.fa.gz", "datasets/dm3_upstream/test.fa.gz")


def matched_flanks(seqs: list[str], motif: str, left: int, right_lengths: list[int]
                   ) -> tuple[list[str], int, int]:
    """The reference for flanks generated around a fixed motif: windows of real sequences around
    real occurrences of the same motif, at the same offsets.

    Every occurrence with ``left`` letters before it and ``max(right_lengths)`` after it gives the
    flank ``seq[j-left:j] + seq[j+m : j+m+r]``, ``r`` cycling through ``right_lengths`` (the
    candidates' drawn right-span lengths, so both sides have the same length distribution).
    Returns ``(flanks, occurrences used, sequences they come from)``.
    """
    import numpy as np

    from .calibration import motif_windows

    m, r_max = len(motif), max(right_lengths)
    enc = [np.frombuffer(s.encode("ascii"), dtype=np.uint8) for s in seqs]
    wins, src, _ = motif_windows(enc, np.frombuffer(motif.encode("ascii"), dtype=np.uint8), left, r_max)
    flanks = []
    for n, w in enumerate(wins):
        r = right_lengths[n % len(right_lengths)]
        text = w.astype(np.uint8).tobytes().decode("ascii")
        flanks.append(text[:left] + text[left + m:left + m + r])
    return flanks, len(wins), len(set(src.tolist()))


def dna_section(out: Path, *, num: int = 32, steps: int = 64, seed: int = 0, quiet: bool = True, **_) -> dict:
    """Promoter-like DNA around a fixed TATA box; the flanks against motif-matched held-out windows."""
    from ..domains import get_domain
    from ..domains.motifs import find_motif
    from ..model import load_model
    from ..pretrained import resolve_model
    from .generate import infill_job

    _section("DNA: promoter-like sequences around a fixed JASPAR TATA box")
    dna = load_model(resolve_model("dna"))
    tbp = find_motif("TBP")
    left, r_lo, r_hi = 60, 25, 35
    template = f"{{{left}}}{tbp.consensus}{{{r_lo}-{r_hi}}}"
    print(f"model: {dna.describe()}\ntemplate: {template}  (TBP {tbp.id} consensus {tbp.consensus})")
    s = infill_job(dna, template, num, out / "dna_tata.fa", steps=steps, seed=seed, rank=True, progress=not quiet)
    cands = pd.read_csv(out / "dna_tata.csv")
    seqs = list(cands["sequence"])
    m_len = len(tbp.consensus)
    present = sum(x[left:left + m_len] == tbp.consensus for x in seqs) / len(seqs)
    flanks = [x[:left] + x[left + m_len:] for x in seqs]  # what the model wrote
    held = [q for f in DNA_HELDOUT for q in _fasta_seqs(REPO_ROOT / f)]
    ref, n_occ, n_src = matched_flanks(held, tbp.consensus, left, [len(x) - left for x in flanks])
    m = get_domain("dna").metrics(flanks, reference=ref)
    rep = {"template": template, "candidates": len(cands), "motif_present": present,
           "mean_bits_per_token": round(float(cands["bits_per_token"].mean()), 4),
           "gc": round(m["gc_content"], 4), "gc_reference": round(m["gc_content_reference"], 4),
           "kmer3_js": round(m["kmer3_js"], 4), "kmer3_js_shuffled": round(m["kmer3_js_shuffled"], 4),
           "reference": {"kind": f"motif-matched: held-out windows around real {tbp.consensus} occurrences, "
                                 f"{left} bases before and the candidates' right-span lengths after",
                         "files": list(DNA_HELDOUT), "occurrences": n_occ, "sequences": n_src},
           "file": s["out"]}
    print(f"{len(cands)} candidates -> {s['out']}; TATA box kept in {present:.0%}; best (ELBO): {seqs[0][:72]}...")
    print(f"generated flanks: GC {m['gc_content']:.3f} (held-out flanks of {n_occ} real {tbp.consensus} "
          f"occurrences at the same offsets: {m['gc_content_reference']:.3f}); 3-mer JS to them "
          f"{m['kmer3_js']:.3f} (their shuffles {m['kmer3_js_shuffled']:.3f})")
    return rep


def _fasta_seqs(path: Path) -> list[str]:
    from ..data import read_fasta
    return [r.seq for r in read_fasta(path)]


def _lines(path: Path) -> list[str]:
    import gzip
    with gzip.open(path, "rt") as f:
        return [line for line in f if line.strip()]
