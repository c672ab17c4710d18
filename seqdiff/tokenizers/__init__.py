"""Tokenizers for text, DNA, proteins and SMILES.

All tokenizers share the id layout documented in :mod:`seqdiff.tokenizers.base`:
data ids ``0..n-1``, ``mask_id = n``, ``pad_id = n+1`` and, only when
``use_bos_eos=True``, ``bos_id = n+2`` and ``eos_id = n+3``.
"""

from __future__ import annotations

from typing import Any

from .base import (Tokenizer, TokenizerError, id_dtype, register_tokenizer, registered_class, registered_kinds,
                   tokenizer_from_dict)
from .dna import IUPAC_AMBIGUITY, DNATokenizer
from .protein import CANONICAL_AMINO_ACIDS, EXTRA_AMINO_ACIDS, ProteinTokenizer
from .smiles import SmilesTokenizer, canonicalize, is_valid_smiles, randomize, tokenize_smiles, tokenize_smiles_parts
from .text import TEXT8_ALPHABET, BPETokenizer, ByteTokenizer, CharTokenizer

__all__ = [
    "Tokenizer",
    "TokenizerError",
    "register_tokenizer",
    "registered_kinds",
    "tokenizer_from_dict",
    "id_dtype",
    "build_tokenizer",
    "CharTokenizer",
    "ByteTokenizer",
    "BPETokenizer",
    "TEXT8_ALPHABET",
    "DNATokenizer",
    "IUPAC_AMBIGUITY",
    "ProteinTokenizer",
    "CANONICAL_AMINO_ACIDS",
    "EXTRA_AMINO_ACIDS",
    "SmilesTokenizer",
    "tokenize_smiles",
    "tokenize_smiles_parts",
    "canonicalize",
    "randomize",
    "is_valid_smiles",
]


def build_tokenizer(kind: str, **kwargs: Any) -> Tokenizer:
    """Construct a tokenizer by kind name.

    Kinds and their keyword arguments:

    * ``"char"``: ``alphabet`` (default text8), ``lowercase``.
    * ``"byte"``: none.
    * ``"bpe"``: either ``tokenizer_json`` (a trained HF tokenizer) or
      ``files_or_iterator`` (alias ``source``) plus ``vocab_size`` and optional
      ``min_frequency`` to train one.
    * ``"dna"``: ``ambiguity`` (``"error"``/``"N"``), ``rna``.
    * ``"protein"``: ``allow_gaps``, ``strip_stop``.
    * ``"smiles"``: ``scheme`` (``"parts"``, the default for a new vocabulary:
      the fixed one that covers every RDKit-parsable SMILES; or ``"atoms"``:
      the original corpus-built atom vocabulary) and either ``tokens`` (an
      explicit vocabulary, ``"atoms"`` unless ``scheme`` says otherwise) or
      ``smiles`` (training SMILES, checked; for ``"atoms"`` the vocabulary is
      built from them, with optional ``min_count``/``extra_tokens``).

    All kinds accept ``use_bos_eos`` and ``mask_placeholder``.
    """
    kind = kind.lower()
    if kind == "char":
        return CharTokenizer(**kwargs)
    if kind == "byte":
        return ByteTokenizer(**kwargs)
    if kind == "bpe":
        if "tokenizer_json" in kwargs:
            return BPETokenizer(**kwargs)
        source = kwargs.pop("files_or_iterator", None)
        if source is None:
            source = kwargs.pop("source", None)
        if source is None or "vocab_size" not in kwargs:
            raise ValueError("bpe needs tokenizer_json, or files_or_iterator/source and vocab_size to train")
        return BPETokenizer.train(source, **kwargs)
    if kind == "dna":
        return DNATokenizer(**kwargs)
    if kind == "protein":
        return ProteinTokenizer(**kwargs)
    if kind == "smiles":
        if "tokens" in kwargs:  # an explicit vocabulary: "atoms" unless scheme says otherwise
            return SmilesTokenizer(**kwargs)
        kwargs.setdefault("scheme", "parts")  # new models cover all the chemistry RDKit parses
        smiles = kwargs.pop("smiles", None)
        if smiles is None:
            if kwargs["scheme"] == "parts":
                return SmilesTokenizer.parts(**{k: v for k, v in kwargs.items() if k != "scheme"})
            raise ValueError("smiles needs tokens=[...] or smiles=[...] to build a vocabulary")
        return SmilesTokenizer.build(smiles, **kwargs)
    cls = registered_class(kind)  # a domain's own tokenizer (e.g. rna), registered by its module
    if cls is not None:
        return cls(**kwargs)
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {', '.join(registered_kinds())}")
