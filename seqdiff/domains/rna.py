"""The RNA domain: tokenizer ``rna`` (``A C G U N``), FASTA files, metrics and its
:class:`~seqdiff.domains.Domain` record.

Metrics of a set of samples (:func:`rna_metrics`): GC content, the 3-mer spectrum's Jensen-Shannon
distance to a reference next to a shuffled baseline (as for DNA), and, when the ViennaRNA package is
installed (``pip install 'seqdiff[rna]'``), the minimum free energy (MFE) of each sequence's
secondary structure: the mean MFE per nucleotide and the fraction of paired bases, for samples and
reference.  Without ViennaRNA those entries are ``None`` and ``mfe_error`` says why; nothing else
changes.

Per sample (the jobs' CSV): ``gc``, ``mfe`` (kcal/mol) and ``structure`` (dot-bracket; both empty
without ViennaRNA).

This module is the worked example of adding a domain (ARCHITECTURE.md, "Adding a domain"): its
tokenizer is :mod:`seqdiff.tokenizers.rna`, its corpus the ``trna`` entry of
:mod:`seqdiff.data.fetch`, its recipe ``configs/pretrained/rna.yaml``, its demo section
:mod:`seqdiff.jobs.rna_demo`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from . import sequence as _seq
from ..tokenizers import rna as _tokenizer  # noqa: F401  (registers the `rna` tokenizer kind)
from .registry import AppHints, Domain, TemplateRules

__all__ = ["RNA_ALPHABET", "fold", "folding_available", "rna_gc", "rna_metrics", "rna_sample_metrics",
           "MFE_LIMIT", "DOMAIN"]

#: Unambiguous ribonucleotides.
RNA_ALPHABET = "ACGU"
#: At most this many sequences of samples and of the reference are folded for the set metrics.
MFE_LIMIT = 1000
FOLDING_HINT = "ViennaRNA is not installed (pip install 'seqdiff[rna]' or pip install ViennaRNA)"


@lru_cache(maxsize=1)
def folding_available() -> bool:
    """Whether the ViennaRNA Python package (module ``RNA``) can be imported."""
    try:
        import RNA  # noqa: F401
    except ImportError:
        return False
    return True


def fold(seq: str) -> tuple[str, float] | None:
    """``(dot-bracket structure, MFE in kcal/mol)`` of one RNA (ViennaRNA defaults: 37 °C, Turner
    2004 parameters), or ``None`` without ViennaRNA or for an empty sequence."""
    if not seq or not folding_available():
        return None
    import RNA

    structure, mfe = RNA.fold(str(seq).upper().replace("T", "U"))
    return structure, float(mfe)


def rna_gc(seqs: str | Sequence[str]) -> float:
    """GC fraction pooled over sequences, ``(G + C) / (A + C + G + U)`` (``N`` ignored)."""
    seqs = [seqs] if isinstance(seqs, str) else list(seqs)
    return _seq.gc_content([str(s).upper().replace("U", "T") for s in seqs])


def _fold_stats(seqs: Sequence[str]) -> dict[str, float | None]:
    folded = [(len(s), fold(s)) for s in seqs[:MFE_LIMIT] if s]
    folded = [(n, f) for n, f in folded if f is not None]
    if not folded:
        return {"mfe_per_nt": None, "paired_fraction": None}
    nts = sum(n for n, _ in folded)
    return {"mfe_per_nt": sum(f[1] for _, f in folded) / nts,
            "paired_fraction": sum(n - f[0].count(".") for n, f in folded) / nts}


def rna_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                training: Sequence[str] | None = None, *, k: int = 3, structure: bool = True) -> dict[str, Any]:
    """``num_samples``, ``mean_length``, ``gc_content``; with a reference ``gc_content_reference``,
    ``kmer3_js`` and ``kmer3_js_shuffled`` (as for DNA, over ACGU); with ``structure``, the MFE
    statistics of the first :data:`MFE_LIMIT` sequences: ``mfe_per_nt`` (kcal/mol per nucleotide,
    lower is more stable) and ``paired_fraction`` (bases paired in the MFE structure), with
    ``_reference`` twins, or ``None`` and ``mfe_error`` without ViennaRNA."""
    samples = [str(s).upper() for s in samples]
    ref = [str(s).upper() for s in reference] if reference is not None else None
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "mean_length": _seq.mean_length(samples),
        "gc_content": _seq.maybe(lambda: rna_gc(samples)),
    }
    if ref is not None:
        out["gc_content_reference"] = _seq.maybe(lambda: rna_gc(ref))
    out.update(_seq.kmer_block(samples, ref, RNA_ALPHABET, k))
    if structure:
        out.update(_fold_stats(samples))
        if ref is not None:
            out.update({f"{key}_reference": v for key, v in _fold_stats(ref).items()})
        if not folding_available():
            out["mfe_error"] = FOLDING_HINT
    return out


def rna_sample_metrics(seq: str) -> dict[str, Any]:
    """``gc`` (NaN for an empty sequence), ``mfe`` (kcal/mol) and ``structure`` (dot-bracket); the
    last two empty without ViennaRNA."""
    folded = fold(seq)
    return {"gc": round(rna_gc([seq]), 4) if seq else float("nan"),
            "mfe": round(folded[1], 2) if folded is not None else "",
            "structure": folded[0] if folded is not None else ""}


DOMAIN = Domain(
    name="rna", letter="nucleotide", tokenizer_kind="rna", file_format="fasta", metrics=rna_metrics,
    sample_metrics=rna_sample_metrics, sample_columns=("gc", "mfe", "structure"),
    layout="pad", augmentations=("reverse_complement",),
    template=TemplateRules(skip_whitespace=True, example="GCGGAUUUAGCUCAG{30-40}GUUCGAAUC{12-16}"),
    fasta_letters="ACGUN", ambiguity_codes="NRYSWKMBDHV",
    shipped_model="rna", recipe="configs/pretrained/rna.yaml", corpus="trna",
    app=AppHints(label="RNA", template="GCGGAUUUAGCUCAG{30-40}GUUCGAAUC{12-16}", menu_position=5,
                 views=("logo",), letters="ACGU", logo_colors="classic"),
    demo="seqdiff.jobs.rna_demo:rna_section", order=4,
)
