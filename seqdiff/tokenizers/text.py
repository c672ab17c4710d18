"""Text tokenizers: characters, raw UTF-8 bytes and byte-level BPE."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .base import CharLevelTokenizer, Tokenizer, TokenizerError, register_tokenizer

__all__ = ["CharTokenizer", "ByteTokenizer", "BPETokenizer", "TEXT8_ALPHABET"]

#: The text8 alphabet: lowercase ``a``-``z`` then space (27 tokens).
TEXT8_ALPHABET = "abcdefghijklmnopqrstuvwxyz "


@register_tokenizer("char")
class CharTokenizer(CharLevelTokenizer):
    """One token per character of a fixed alphabet.

    Ids follow the order of ``alphabet``; with the default text8 alphabet
    ``a``=0 ... ``z``=25, space=26, mask=27, pad=28 (vocab_size 29).

    Args:
        alphabet: the token characters, a string or sequence of 1-char strings
            (default: text8, ``a``-``z`` and space).
        lowercase: fold upper-case input to lower case before lookup (the
            alphabet itself is used as given).
        use_bos_eos, mask_placeholder: see :class:`~seqdiff.tokenizers.base.Tokenizer`.
    """

    def __init__(
        self,
        alphabet: str | Sequence[str] = TEXT8_ALPHABET,
        *,
        lowercase: bool = False,
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        self._set_alphabet(list(alphabet))
        self.lowercase = bool(lowercase)
        self._alphabet_name = "the text8 alphabet" if "".join(self._chars) == TEXT8_ALPHABET else "the alphabet"

    def _map_char(self, ch: str) -> int | str:
        if self.lowercase:
            idx = self._index.get(ch.lower())
            if idx is not None:
                return idx
        return f"invalid character {ch!r}: not in {self._alphabet_name}"

    def normalize(self, text: str) -> str:
        """The text as :meth:`decode` would return it after encoding."""
        return text.lower() if self.lowercase else text

    @property
    def alphabet(self) -> list[str]:
        extra = [c.upper() for c in self._chars if self.lowercase and c.upper() != c and len(c.upper()) == 1]
        return list(self._chars) + extra

    def _config(self) -> dict[str, Any]:
        return {"alphabet": "".join(self._chars), "lowercase": self.lowercase}


def _byte_token(b: int) -> str:
    return chr(b) if 0x20 <= b < 0x7F else f"<0x{b:02X}>"


@register_tokenizer("byte")
class ByteTokenizer(Tokenizer):
    """UTF-8 bytes: 256 data tokens (id = byte value), mask=256, pad=257.

    Any Python string that UTF-8 can encode is accepted (lone surrogates are
    rejected).  Decoding replaces invalid UTF-8 byte runs (which a sampler may
    produce) with U+FFFD.
    """

    _TOKENS = [_byte_token(b) for b in range(256)]

    def __init__(self, *, use_bos_eos: bool = False, mask_placeholder: str = "_") -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)

    @property
    def tokens(self) -> list[str]:
        return list(self._TOKENS)

    def _scan(self, text, max_problems):
        try:
            return list(text.encode("utf-8")), []
        except UnicodeEncodeError:
            pass
        ids: list[int] = []
        problems = []
        for pos, ch in enumerate(text, start=1):
            try:
                ids.extend(ch.encode("utf-8"))
            except UnicodeEncodeError:
                problems.append((pos, ch, f"character {ch!r} cannot be encoded as UTF-8"))
                if max_problems is not None and len(problems) >= max_problems:
                    break
        return ids, problems

    def encode_array(self, text: str, *, name: str | None = None):
        try:
            raw = text.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            return super().encode_array(text, name=name)
        return np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)

    def _detokenize(self, data_ids):
        return bytes(data_ids).decode("utf-8", errors="replace")

    def is_valid_char(self, ch: str) -> bool:
        return len(ch) == 1 and self.is_valid(ch)

    def _config(self) -> dict[str, Any]:
        return {}


def _iter_file_lines(path: str | os.PathLike) -> Iterator[str]:
    p = Path(path)
    with open(p, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(p, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        yield from fh


def _training_texts(source: Any) -> Iterator[str]:
    """Normalise the ``train`` source argument to an iterator of strings."""
    if isinstance(source, (str, os.PathLike)):
        if isinstance(source, str) and not os.path.isfile(source):
            raise FileNotFoundError(f"BPE training file not found: {source!r} (pass a list of texts to train on strings)")
        yield from _iter_file_lines(source)
        return
    if isinstance(source, (list, tuple)) and source and all(
        isinstance(s, os.PathLike) or (isinstance(s, str) and os.path.isfile(s)) for s in source
    ):
        for f in source:
            yield from _iter_file_lines(f)
        return
    for item in source:
        if not isinstance(item, str):
            raise TypeError(f"BPE training texts must be str, got {type(item).__name__}")
        yield item


@register_tokenizer("bpe")
class BPETokenizer(Tokenizer):
    """Byte-level BPE backed by the HF ``tokenizers`` library.

    The HF model has no special tokens: its ids ``0 .. n-1`` are the data ids
    and mask/pad are appended (``mask=n``, ``pad=n+1``).  The base alphabet
    contains all 256 byte symbols, so every string encodes and decoding is
    lossless.  Build one with :meth:`train`, or from a serialised HF
    tokenizer JSON string.

    Args:
        tokenizer_json: an HF ``tokenizers`` JSON string (``Tokenizer.to_str()``).
    """

    def __init__(self, tokenizer_json: str, *, use_bos_eos: bool = False, mask_placeholder: str = "_") -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import pre_tokenizers

        self._hf = HFTokenizer.from_str(tokenizer_json)
        if self._hf.get_vocab_size(with_added_tokens=True) != self._hf.get_vocab_size(with_added_tokens=False):
            raise ValueError("BPE tokenizer must not have added/special tokens; mask and pad are appended by seqdiff")
        n = self._hf.get_vocab_size(with_added_tokens=False)
        self._tokens = [self._hf.id_to_token(i) for i in range(n)]
        if any(t is None for t in self._tokens):
            raise ValueError("BPE vocabulary ids are not contiguous 0..n-1")
        missing = set(pre_tokenizers.ByteLevel.alphabet()) - set(self._tokens)
        if missing:
            raise ValueError(
                f"BPE vocabulary lacks {len(missing)} of the 256 byte-level symbols; encoding would not be lossless"
            )

    @classmethod
    def train(
        cls,
        files_or_iterator: str | os.PathLike | Sequence[str | os.PathLike] | Iterable[str],
        vocab_size: int,
        *,
        min_frequency: int = 2,
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> "BPETokenizer":
        """Train a byte-level BPE tokenizer.

        Args:
            files_or_iterator: a path, a list of paths (``Path`` objects, or
                strings that all name existing files; ``.gz`` is read
                transparently), or any iterable of text strings.
            vocab_size: number of *data* tokens including the 256 byte
                symbols (so ``>= 256``); mask and pad are added on top.  The
                result may be smaller if the corpus has too few merges.
            min_frequency: minimum pair count for a merge.
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if vocab_size < 256:
            raise ValueError(f"byte-level BPE needs vocab_size >= 256, got {vocab_size}")
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        hf.train_from_iterator(_training_texts(files_or_iterator), trainer=trainer)
        return cls(hf.to_str(), use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)

    @property
    def tokens(self) -> list[str]:
        """HF byte-level token strings (``Ġ`` marks a leading space)."""
        return list(self._tokens)

    @property
    def hf_tokenizer(self):
        """The underlying ``tokenizers.Tokenizer``."""
        return self._hf

    def _scan(self, text, max_problems):
        try:
            return list(self._hf.encode(text, add_special_tokens=False).ids), []
        except Exception:  # lone surrogates and the like
            pass
        for pos, ch in enumerate(text, start=1):
            try:
                ch.encode("utf-8")
            except UnicodeEncodeError:
                return [], [(pos, ch, f"character {ch!r} cannot be encoded as UTF-8")]
        raise TokenizerError("BPE encoding failed")

    def _detokenize(self, data_ids):
        return self._hf.decode(data_ids, skip_special_tokens=False)

    def is_valid_char(self, ch: str) -> bool:
        return len(ch) == 1 and self.is_valid(ch)

    @property
    def alphabet(self) -> list[str]:
        """Byte-level BPE accepts any text; returns the token strings."""
        return list(self._tokens)

    def _config(self) -> dict[str, Any]:
        return {"tokenizer_json": self._hf.to_str()}
