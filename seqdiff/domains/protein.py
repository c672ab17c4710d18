"""The protein domain: metrics (3-mer spectrum, composition) and its
:class:`~seqdiff.domains.Domain` record."""

from __future__ import annotations

from typing import Any, Sequence

from . import sequence as _seq
from .registry import AppHints, Domain, TemplateRules

__all__ = ["protein_metrics", "DOMAIN"]


def protein_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                    training: Sequence[str] | None = None, *, k: int = 3) -> dict[str, Any]:
    """``num_samples``, ``mean_length``; with a reference ``kmer3_js``,
    ``kmer3_js_shuffled`` (as for DNA, over the 20 canonical amino acids)
    and ``composition_js`` (JS distance of amino-acid compositions)."""
    samples = [str(s) for s in samples]
    out: dict[str, Any] = {"num_samples": len(samples), "mean_length": _seq.mean_length(samples)}
    out.update(_seq.kmer_block(samples, reference, _seq.PROTEIN_ALPHABET, k))
    if reference is not None:
        out["composition_js"] = _seq.maybe(lambda: _seq.composition_js(samples, reference, _seq.PROTEIN_ALPHABET))
    return out


DOMAIN = Domain(
    name="protein", letter="amino acid", tokenizer_kind="protein", file_format="fasta", metrics=protein_metrics,
    layout="pad", template=TemplateRules(skip_whitespace=True, example="MK{5}W?Q{2-4}"),
    fasta_letters=None, ambiguity_codes="BZJX",
    shipped_model="protein", recipe="configs/pretrained/protein.yaml", corpus="uniprot-20k",
    app=AppHints(label="Protein", template="M{10}GPSGSGKST{30-40}", menu_position=2,
                 views=("logo", "scan", "fewshot"), letters="ACDEFGHIKLMNPQRSTVWY",
                 wild_type="MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"),  # human ubiquitin
    demo="seqdiff.jobs.demo:protein_section", order=2,
)
