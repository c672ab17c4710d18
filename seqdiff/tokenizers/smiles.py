"""Atom-level SMILES tokenizer and RDKit helpers."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from .base import Tokenizer, TokenizerError, register_tokenizer

__all__ = ["SmilesTokenizer", "tokenize_smiles", "canonicalize", "randomize", "is_valid_smiles", "SMILES_TOKEN_REGEX"]

#: Atom-level SMILES token pattern (the usual regex of the molecular
#: transformer literature, extended with ``%(nnn)`` ring closures).
SMILES_TOKEN_REGEX = re.compile(
    r"""
      \[[^\[\]]+\]        # bracket atom, one token: [NH4+], [C@@H], [13CH3], [Se]
    | Br | Cl             # two-letter organic-subset elements
    | [BCNOPSFI]          # one-letter organic-subset elements
    | [bcnops]            # aromatic organic-subset atoms
    | \*                  # wildcard atom
    | %\([0-9]+\)         # ring closure %(nnn)
    | %[0-9]{2}           # two-digit ring closure %nn
    | [0-9]               # one-digit ring closure
    | [-=\#$:/\\~]        # bonds (and ~, 'any bond')
    | [()]                # branches
    | \.                  # disconnected components
    | [+]                 # stray charge outside brackets
    """,
    re.VERBOSE,
)


def _scan_smiles(smi: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """Split ``smi`` into ``(1-based position, token)`` pairs and problems."""
    toks: list[tuple[int, str]] = []
    problems: list[tuple[int, str, str]] = []
    pos = 0
    n = len(smi)
    while pos < n:
        m = SMILES_TOKEN_REGEX.match(smi, pos)
        if m is not None:
            toks.append((pos + 1, m.group()))
            pos = m.end()
            continue
        ch = smi[pos]
        if ch == "[":
            problems.append((pos + 1, ch, "unclosed or empty bracket atom '['"))
            close = smi.find("]", pos + 1)
            pos = n if close < 0 else close + 1
            continue
        if ch == "%":
            problems.append((pos + 1, smi[pos : pos + 3], "ring closure '%' must be followed by two digits or '(n)'"))
        elif ch.isspace():
            problems.append((pos + 1, ch, f"whitespace {ch!r} inside SMILES"))
        else:
            problems.append((pos + 1, ch, f"invalid SMILES character {ch!r}"))
        pos += 1
    return toks, problems


def tokenize_smiles(smi: str, *, name: str | None = None) -> list[str]:
    """Split a SMILES string into atom-level tokens.

    Raises:
        TokenizerError: on a character no token pattern accepts.
    """
    toks, problems = _scan_smiles(smi)
    if problems:
        p, t, r = problems[0]
        raise TokenizerError(r, record=name, position=p, token=t)
    return [t for _, t in toks]


def _mol_from_smiles(smi: str):
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smi)


def is_valid_smiles(smi: str) -> bool:
    """``True`` if RDKit parses (and sanitises) ``smi`` into a molecule."""
    if not isinstance(smi, str) or not smi:
        return False
    return _mol_from_smiles(smi) is not None


def canonicalize(smi: str, *, isomeric: bool = True) -> str:
    """RDKit canonical SMILES; ``ValueError`` if ``smi`` does not parse."""
    from rdkit import Chem

    mol = _mol_from_smiles(smi)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smi!r}")
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric, canonical=True)


def randomize(smi: str, rng: np.random.Generator | random.Random | int | None = None, *, isomeric: bool = True) -> str:
    """A random (non-canonical) SMILES for the same molecule.

    Uses RDKit's random atom-order SMILES writer (``doRandom=True``) seeded
    from ``rng`` so that the result is reproducible for a seeded generator.
    ``ValueError`` if ``smi`` does not parse.
    """
    from rdkit import Chem

    mol = _mol_from_smiles(smi)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smi!r}")
    if isinstance(rng, np.random.Generator):
        seed = int(rng.integers(0, 2**31 - 1))
    elif isinstance(rng, random.Random):
        seed = rng.randrange(0, 2**31 - 1)
    elif rng is None:
        seed = random.randrange(0, 2**31 - 1)
    else:
        seed = int(rng)
    return Chem.MolToRandomSmilesVect(mol, 1, randomSeed=seed, isomericSmiles=isomeric)[0]


@register_tokenizer("smiles")
class SmilesTokenizer(Tokenizer):
    """Atom-level SMILES tokenizer with a vocabulary built from data.

    Data ids index ``tokens`` (as built by :meth:`build`: most frequent first,
    ties alphabetical); mask = n, pad = n + 1.

    Args:
        tokens: the vocabulary; each entry must be exactly one SMILES token.
    """

    canonicalize = staticmethod(canonicalize)
    randomize = staticmethod(randomize)

    def __init__(self, tokens: Sequence[str], *, use_bos_eos: bool = False, mask_placeholder: str = "_") -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        tokens = list(tokens)
        if not tokens:
            raise ValueError("SmilesTokenizer needs at least one token")
        for t in tokens:
            m = SMILES_TOKEN_REGEX.fullmatch(t) if isinstance(t, str) else None
            if m is None:
                raise ValueError(f"{t!r} is not a single SMILES token")
        if len(set(tokens)) != len(tokens):
            raise ValueError("SmilesTokenizer tokens must be unique")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(
        cls,
        smiles: Iterable[str],
        *,
        min_count: int = 1,
        extra_tokens: Iterable[str] = (),
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> "SmilesTokenizer":
        """Build the vocabulary from training SMILES.

        Tokens seen fewer than ``min_count`` times are left out (encoding
        them later raises).  ``extra_tokens`` are always included.  A SMILES
        that cannot be tokenised raises :class:`TokenizerError` naming its
        0-based index in ``smiles``.
        """
        counts: Counter[str] = Counter()
        for i, smi in enumerate(smiles):
            counts.update(tokenize_smiles(smi, name=f"#{i}"))
        vocab = [t for t, c in counts.items() if c >= min_count]
        vocab.sort(key=lambda t: (-counts[t], t))
        for t in extra_tokens:
            if t not in vocab:
                vocab.append(t)
        return cls(vocab, use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def tokenize(self, smi: str, *, name: str | None = None) -> list[str]:
        """Atom-level token strings of ``smi`` (no vocabulary check)."""
        return tokenize_smiles(smi, name=name)

    def _scan(self, text, max_problems):
        toks, problems = _scan_smiles(text)
        out_problems: list[tuple[int | None, str | None, str]] = list(problems)
        ids: list[int] = []
        for pos, t in toks:
            idx = self._index.get(t)
            if idx is None:
                out_problems.append((pos, t, f"unknown SMILES token {t!r} (not in the vocabulary)"))
            else:
                ids.append(idx)
        out_problems.sort(key=lambda p: p[0] or 0)
        if max_problems is not None:
            out_problems = out_problems[:max_problems]
        return ids, out_problems

    def _detokenize(self, data_ids):
        toks = self._tokens
        return "".join(toks[i] for i in data_ids)

    def is_valid_char(self, ch: str) -> bool:
        """Whether ``ch`` occurs in some vocabulary token."""
        return len(ch) == 1 and any(ch in t for t in self._tokens)

    @staticmethod
    def is_valid(smi: str) -> bool:  # type: ignore[override]
        """RDKit validity of a SMILES string (not just tokenisability)."""
        return is_valid_smiles(smi)

    def can_encode(self, smi: str) -> bool:
        """``True`` if every token of ``smi`` is in the vocabulary."""
        return not self._scan(smi, 1)[1]

    def _config(self) -> dict[str, Any]:
        return {"tokens": list(self._tokens)}
