"""The DNA domain: metrics (GC, 3-mer spectrum, TATA-box density) and its
:class:`~seqdiff.domains.Domain` record."""

from __future__ import annotations

from typing import Any, Sequence

from . import sequence as _seq
from .registry import AppHints, Domain, TemplateRules

__all__ = ["dna_metrics", "dna_sample_metrics", "TATA_THRESHOLD", "DOMAIN"]

#: Relative-score threshold of the TATA-box (JASPAR TBP) density in :func:`dna_metrics`.
TATA_THRESHOLD = 0.9


def dna_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                training: Sequence[str] | None = None, *, k: int = 3, motifs: bool = True) -> dict[str, Any]:
    """``num_samples``, ``mean_length``, ``gc_content``; with a reference
    ``gc_content_reference``, ``kmer3_js`` (JS distance of 3-mer spectra,
    samples vs reference) and ``kmer3_js_shuffled`` (the same for each
    sample's letters shuffled, seed 0: what composition alone gives; a
    model with real k-mer structure scores below it); with ``motifs`` and
    the JASPAR file present, ``tata_per_kb`` (JASPAR TBP hits, both strands,
    relative score >= :data:`TATA_THRESHOLD`, per 1,000 bases) and
    ``tata_per_kb_reference``.  (At the usual 0.8 the short, AT-rich TATA
    profile matches almost everywhere; at 0.9 real fly promoter regions
    have about 1.5x the density of their own shuffles.)"""
    samples = [str(s) for s in samples]
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "mean_length": _seq.mean_length(samples),
        "gc_content": _seq.maybe(lambda: _seq.gc_content(samples)),
    }
    if reference is not None:
        out["gc_content_reference"] = _seq.maybe(lambda: _seq.gc_content(reference))
    out.update(_seq.kmer_block(samples, reference, _seq.DNA_ALPHABET, k))
    if motifs:
        from . import motifs as _motifs

        try:
            tbp = _motifs.find_motif("TBP")
        except (FileNotFoundError, KeyError):
            tbp = None
        if tbp is not None:
            def per_kb(seqs: Sequence[str]) -> float | None:
                bases = sum(len(x) for x in seqs)
                hits = sum(len(_motifs.scan(x, tbp, TATA_THRESHOLD)) for x in seqs)
                return 1000.0 * hits / bases if bases else None

            out["tata_per_kb"] = per_kb(samples)
            if reference is not None:
                out["tata_per_kb_reference"] = per_kb([str(x) for x in reference])
    return out


def dna_sample_metrics(seq: str) -> dict[str, Any]:
    """``gc`` of one sequence (NaN for an empty one)."""
    return {"gc": round(_seq.gc_content([seq]), 4) if seq else float("nan")}


DOMAIN = Domain(
    name="dna", letter="base", tokenizer_kind="dna", file_format="fasta", metrics=dna_metrics,
    sample_metrics=dna_sample_metrics, sample_columns=("gc",),
    layout="window", augmentations=("reverse_complement",),
    template=TemplateRules(skip_whitespace=True, example="TTGACA[N:17]TATAAT[N:5-8]"),
    fasta_letters="ACGTN", ambiguity_codes="NRYSWKMBDHV",
    shipped_model="dna", recipe="configs/pretrained/dna.yaml", corpus="dm3-upstream",
    # the shipped model saw dm3 upstream regions, which end where transcription starts: a TBP box
    # (JASPAR MA0108 TATAAAA) ~30 bp upstream of the start, as in a Drosophila core promoter
    app=AppHints(label="DNA", template="TATAAAA[N:30]", menu_position=1,
                 views=("logo", "motifs", "scan"), letters="ACGT", logo_colors="classic",
                 wild_type="GCAGTCGCTATAAAAGGCGCTCGCAGTTCAGTCAGTTCGTTCGGAGTCAGCTCAGTTCAG",  # a fly promoter core
                 span_format="[N:{n}]", window_fill="before", short_template="TATAAAA[N:{free}]"),
    demo="seqdiff.jobs.demo:dna_section", order=1,
)
