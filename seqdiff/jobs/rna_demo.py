"""The RNA section of ``seqdiff demo``: tRNA-like sequences infilled around fixed conserved
motifs (the start of the D-arm and the T-loop), compared with held-out tRNAs."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RNA_HELDOUT", "rna_section"]

#: held-out tRNAs (never seen in training) the infilled candidates are compared with
RNA_HELDOUT = "datasets/trna/test.fa.gz"


def rna_section(out: Path, *, num: int = 32, steps: int = 64, seed: int = 0, quiet: bool = True, **_) -> dict:
    """Infill the domain's example template; GC, 3-mer spectrum and (with ViennaRNA) MFE of the
    candidates against the held-out tRNAs."""
    import pandas as pd

    from ..data import read_fasta
    from ..domains import get_domain
    from ..model import load_model
    from ..pretrained import resolve_model
    from ..training.data import REPO_ROOT
    from .generate import infill_job

    dom = get_domain("rna")
    template = dom.app.template
    print("\n== RNA: tRNA-like sequences around a fixed D-arm start and T-loop")
    model = load_model(resolve_model("rna"))
    print(f"model: {model.describe()}\ntemplate: {template}")
    s = infill_job(model, template, num, out / "rna_trna.fa", steps=steps, seed=seed, rank=True, progress=not quiet)
    cands = pd.read_csv(out / "rna_trna.csv", keep_default_na=False)
    seqs = list(cands["sequence"])
    held = [r.seq for r in read_fasta(REPO_ROOT / RNA_HELDOUT)]
    m = dom.metrics(seqs, reference=held)
    keys = ("gc_content", "gc_content_reference", "kmer3_js", "kmer3_js_shuffled", "mfe_per_nt",
            "mfe_per_nt_reference", "paired_fraction", "paired_fraction_reference")
    rep = {"template": template, "candidates": len(seqs),
           "mean_bits_per_token": round(float(pd.to_numeric(cands["bits_per_token"]).mean()), 4),
           **{k: (round(m[k], 4) if isinstance(m.get(k), float) else m.get(k)) for k in keys},
           "reference": RNA_HELDOUT, "file": s["out"]}
    if "mfe_error" in m:
        rep["mfe_error"] = m["mfe_error"]
    print(f"{len(seqs)} candidates -> {s['out']}; best (ELBO): {seqs[0]}")
    line = (f"GC {m['gc_content']:.3f} (held-out tRNAs {m['gc_content_reference']:.3f}); 3-mer JS to them "
            f"{m['kmer3_js']:.3f} (shuffled {m['kmer3_js_shuffled']:.3f})")
    if m.get("mfe_per_nt") is not None:
        line += (f"; MFE {m['mfe_per_nt']:.3f} kcal/mol/nt (held-out {m['mfe_per_nt_reference']:.3f}), paired "
                 f"{m['paired_fraction']:.2f} ({m['paired_fraction_reference']:.2f})")
    else:
        line += f"; MFE not computed: {m.get('mfe_error')}"
    print(line)
    return rep
