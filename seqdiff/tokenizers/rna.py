"""RNA tokenizer: ``A C G U N``, IUPAC ambiguity codes as the DNA tokenizer treats them."""

from __future__ import annotations

from typing import Any

from .base import register_tokenizer
from .dna import DNATokenizer

__all__ = ["RNATokenizer"]

_BASES = "ACGUN"
_COMPLEMENT = {"A": "U", "C": "G", "G": "C", "U": "A", "N": "N"}


@register_tokenizer("rna")
class RNATokenizer(DNATokenizer):
    """Nucleotides ``A C G U N`` = ids ``0 1 2 3 4``; mask=5, pad=6 (vocab_size 7).

    Input is case-folded.  Decoding always gives upper case.  Reverse complement (A<->U, C<->G,
    N->N) as for DNA (:meth:`reverse_complement`, inherited).

    Args:
        ambiguity: IUPAC ambiguity codes ``R Y S W K M B D H V`` (``T`` stands for ``U`` in them):
            ``"error"`` (default) raises a :class:`TokenizerError` with the position; ``"N"`` maps
            them to ``N``.
        dna: accept ``T`` and map it to ``U`` (a DNA copy of an RNA; otherwise ``T`` is an error).
        use_bos_eos, mask_placeholder: see :class:`~seqdiff.tokenizers.base.Tokenizer`.
    """

    no_call_token = "N"
    NAME = "RNA"
    BASES = _BASES
    COMPLEMENT = _COMPLEMENT
    FOREIGN = ("T", "U", "dna", "DNA thymine")

    def __init__(self, *, ambiguity: str = "error", dna: bool = False, use_bos_eos: bool = False,
                 mask_placeholder: str = "_") -> None:
        super().__init__(ambiguity=ambiguity, use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        self.dna = bool(dna)

    def _config(self) -> dict[str, Any]:
        return {"ambiguity": self.ambiguity, "dna": self.dna}
