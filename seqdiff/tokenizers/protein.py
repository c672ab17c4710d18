"""Protein (amino-acid) tokenizer."""

from __future__ import annotations

from typing import Any

from .base import CharLevelTokenizer, register_tokenizer

__all__ = ["ProteinTokenizer", "CANONICAL_AMINO_ACIDS", "EXTRA_AMINO_ACIDS"]

#: The 20 canonical amino acids, one-letter codes, alphabetical.
CANONICAL_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: X unknown, B Asx (D/N), Z Glx (E/Q), U selenocysteine, O pyrrolysine.
EXTRA_AMINO_ACIDS = "XBZUO"


@register_tokenizer("protein")
class ProteinTokenizer(CharLevelTokenizer):
    """Amino acids: ids 0-19 = ``ACDEFGHIKLMNPQRSTVWY``, 20-24 = ``X B Z U O``.

    Without gaps: mask=25, pad=26 (vocab_size 27).  With ``allow_gaps=True``
    the gap ``-`` is data id 25 (``.`` is read as ``-``), mask=26, pad=27.
    Input is case-folded; decoding gives upper case.

    Args:
        allow_gaps: accept alignment gaps ``-``/``.`` as a token (otherwise
            they are an error naming the position).
        strip_stop: drop a trailing stop ``*`` (or several).  A ``*`` anywhere
            else, or at the end when ``strip_stop=False``, is an error.
        use_bos_eos, mask_placeholder: see :class:`~seqdiff.tokenizers.base.Tokenizer`.
    """

    no_call_token = "X"

    def __init__(
        self,
        *,
        allow_gaps: bool = False,
        strip_stop: bool = True,
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        self.allow_gaps = bool(allow_gaps)
        self.strip_stop = bool(strip_stop)
        self._set_alphabet(list(CANONICAL_AMINO_ACIDS + EXTRA_AMINO_ACIDS + ("-" if self.allow_gaps else "")))

    def _prepare(self, text: str) -> str:
        if self.strip_stop:
            return text.rstrip("*")
        return text

    def _map_char(self, ch: str) -> int | str:
        up = ch.upper()
        idx = self._index.get(up)
        if idx is not None:
            return idx
        if ch in "-.":
            if self.allow_gaps:
                return self._index["-"]
            return f"alignment gap {ch!r} in protein sequence (use allow_gaps=True to keep gaps as '-')"
        if ch == "*":
            if self.strip_stop:
                return "stop codon '*' inside protein sequence (only a trailing '*' is stripped)"
            return "stop codon '*' in protein sequence (strip_stop=False)"
        return f"invalid character {ch!r} for protein"

    def normalize(self, text: str) -> str:
        """The sequence as :meth:`decode` would return it after encoding."""
        s = self._prepare(text).upper()
        return s.replace(".", "-") if self.allow_gaps else s

    @property
    def alphabet(self) -> list[str]:
        chars = list(self._chars)
        if self.allow_gaps:
            chars.append(".")
        return chars + [c.lower() for c in chars if c.lower() != c]

    def _config(self) -> dict[str, Any]:
        return {"allow_gaps": self.allow_gaps, "strip_stop": self.strip_stop}
