"""DNA tokenizer with reverse-complement support."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from .base import CharLevelTokenizer, register_tokenizer

__all__ = ["DNATokenizer", "IUPAC_AMBIGUITY"]

#: IUPAC nucleotide ambiguity codes (besides N) and what they stand for.
IUPAC_AMBIGUITY = {
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
}

_BASES = "ACGTN"
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}

T = TypeVar("T")


@register_tokenizer("dna")
class DNATokenizer(CharLevelTokenizer):
    """Nucleotides ``A C G T N`` = ids ``0 1 2 3 4``; mask=5, pad=6 (vocab_size 7).

    Input is case-folded.  Decoding always gives upper case.

    Args:
        ambiguity: what to do with IUPAC ambiguity codes ``R Y S W K M B D H V``:
            ``"error"`` (default) raises a :class:`TokenizerError` with the
            position; ``"N"`` maps them to ``N``.
        rna: accept ``U`` and map it to ``T`` (otherwise ``U`` is an error).
        use_bos_eos, mask_placeholder: see :class:`~seqdiff.tokenizers.base.Tokenizer`.
    """

    no_call_token = "N"
    #: the nucleotides (ids in this order) and their complements; a subclass for another
    #: nucleotide alphabet (RNA) changes these
    NAME = "DNA"
    BASES = _BASES
    COMPLEMENT = _COMPLEMENT
    #: the other nucleotide alphabet's letter, the base it maps to when the option allows it, the
    #: option, and what the letter is
    FOREIGN = ("U", "T", "rna", "RNA uracil")

    def __init__(
        self,
        *,
        ambiguity: str = "error",
        rna: bool = False,
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> None:
        if ambiguity not in ("error", "N"):
            raise ValueError(f"ambiguity must be 'error' or 'N', got {ambiguity!r}")
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        self.ambiguity = ambiguity
        self.rna = bool(rna)
        self._set_alphabet(list(self.BASES))

    def _map_char(self, ch: str) -> int | str:
        up = ch.upper()
        idx = self._index.get(up)
        if idx is not None:
            return idx
        letter, to, option, what = self.FOREIGN
        if up == letter:
            if getattr(self, option):
                return self._index[to]
            return f"invalid character {ch!r} for {self.NAME} ({what}; use {option}=True to map {letter} to {to})"
        if up in IUPAC_AMBIGUITY:
            if self.ambiguity == "N":
                return self._index["N"]
            meaning = "/".join(IUPAC_AMBIGUITY[up].replace("T", self.BASES[3]))
            return (
                f"invalid character {ch!r} for {self.NAME} (IUPAC ambiguity code for {meaning}; "
                "use ambiguity='N' to map it to N)"
            )
        return f"invalid character {ch!r} for {self.NAME}"

    @property
    def alphabet(self) -> list[str]:
        letter, _, option, _ = self.FOREIGN
        chars = list(self.BASES)
        if getattr(self, option):
            chars.append(letter)
        if self.ambiguity == "N":
            chars.extend(IUPAC_AMBIGUITY)
        return chars + [c.lower() for c in chars]

    def normalize(self, text: str) -> str:
        """The sequence as :meth:`decode` would return it after encoding."""
        letter, to, option, _ = self.FOREIGN
        s = text.upper()
        if getattr(self, option):
            s = s.replace(letter, to)
        if self.ambiguity == "N":
            s = s.translate({ord(c): "N" for c in IUPAC_AMBIGUITY})
        return s

    def complement_table(self) -> np.ndarray:
        """``table[id]`` = id of the complement for every id < ``vocab_size``.

        A<->T, C<->G, N->N; mask, pad, BOS and EOS map to themselves.
        """
        table = np.arange(self.vocab_size, dtype=np.int64)
        for b, c in self.COMPLEMENT.items():
            table[self._index[b]] = self._index[c]
        return table

    def reverse_complement(self, ids: T) -> T:
        """Reverse complement of a sequence of ids.

        Accepts a list/tuple of ints, a numpy array or a torch tensor (along
        the last dimension) and returns the same kind.  An involution:
        ``rc(rc(x)) == x``.  Pad ids are complemented to themselves but *are*
        moved by the reversal; to keep right-padding in place reverse only the
        real prefix (the datasets do this).
        """
        table = self.complement_table()
        try:
            import torch

            if isinstance(ids, torch.Tensor):
                t = torch.as_tensor(table, device=ids.device)
                return t[ids.long()].flip(-1).to(ids.dtype)  # type: ignore[return-value]
        except ImportError:  # pragma: no cover
            pass
        if isinstance(ids, np.ndarray):
            return table[ids][..., ::-1].astype(ids.dtype)  # type: ignore[return-value]
        out = [int(table[int(i)]) for i in reversed(list(ids))]  # type: ignore[arg-type]
        return type(ids)(out) if isinstance(ids, tuple) else out  # type: ignore[return-value]

    def _config(self) -> dict[str, Any]:
        return {"ambiguity": self.ambiguity, "rna": self.rna}
