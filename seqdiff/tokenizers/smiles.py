"""Atom-level SMILES tokenizer and RDKit helpers."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from .base import Tokenizer, TokenizerError, register_tokenizer

__all__ = ["SmilesTokenizer", "tokenize_smiles", "tokenize_smiles_parts", "canonicalize", "randomize",
           "is_valid_smiles", "SMILES_TOKEN_REGEX", "SMILES_PARTS", "ELEMENTS"]

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


# ----------------------------------------------------------------- the "parts" scheme
#: The 118 element symbols (IUPAC), in atomic-number order.
ELEMENTS = tuple("""
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr
Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb
Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf
Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split())
_ELEMENT_SET = frozenset(ELEMENTS)
#: Aromatic symbols allowed inside brackets (OpenSMILES, plus RDKit's ``si``).
_AROMATIC = frozenset(("b", "c", "n", "o", "p", "s", "se", "te", "as", "si"))
#: Two-letter element symbols kept whole: those whose second letter is ``l`` or ``r``.
_WHOLE = tuple(e for e in ELEMENTS if len(e) == 2 and e[1] in "lr")

#: The fixed vocabulary of the ``parts`` scheme (87 tokens). Every character a SMILES string
#: can hold is a part of its own — the letters of element symbols, digits, bonds, branches,
#: brackets, ``@``, charges, ``%``, RDKit's ``->``/``<-`` — except that the element symbols ending
#: in ``l`` or ``r`` (``Cl``, ``Br``, ``Al``, ``Cr``, …) are one part each and ``l``/``r`` are no
#: part on their own. So ``[13CH3+]`` is ``[`` ``1`` ``3`` ``C`` ``H`` ``3`` ``+`` ``]``, ``[Sc]``
#: is ``[`` ``S`` ``c`` ``]`` and ``%12`` is ``%`` ``1`` ``2``. Because no part spans the boundary
#: of two others, the longest-match reading of any concatenation of parts gives those parts back:
#: every token sequence a model writes re-encodes to itself, and ``decode(encode(s)) == s``.
#: (Whole symbols for every element would not be: ``[Sc]`` scandium and ``Sc`` thioether sulfur
#: next to an aromatic carbon would share a spelling but not a reading.)
SMILES_PARTS: tuple[str, ...] = tuple(dict.fromkeys([
    "C", "c", "(", ")", "1", "O", "2", "N", "=", "n", "3", "[", "]", "H", "@", "F", "Cl", "S", "s", "o",
    "#", "+", "-", "4", "Br", "5", "/", "\\", "6", "7", "8", "9", "0", "%", ".", "P", "p", "I", "B", "b",
    "*", "$", ":", "~", ">", "<",
    *_WHOLE,
    *sorted({e[0] for e in ELEMENTS} - {"C", "N", "O", "H", "F", "S", "P", "I", "B"}),
    *sorted(({e[1] for e in ELEMENTS if len(e) == 2} | {ch for a in _AROMATIC for ch in a}) - set("lr")),
]))
_SINGLE = frozenset(t for t in SMILES_PARTS if len(t) == 1)
_PAIRS = frozenset(_WHOLE)


def _bracket_context(smi: str, i: int) -> str:
    """What the structure says about position ``i`` inside a bracket atom (for error messages)."""
    open_ = smi.rfind("[", 0, i + 1)
    if open_ < 0 or "]" in smi[open_:i]:
        return ""
    close = smi.find("]", i)
    atom = smi[open_:close + 1] if close >= 0 else smi[open_:]
    m = re.match(r"\[[0-9]*([A-Za-z][a-z]?)", atom)  # isotope, then the element symbol
    if m and m.group(1) not in _ELEMENT_SET and m.group(1) not in _AROMATIC:
        return f": unknown element {m.group(1)!r} in bracket atom {atom!r}"
    return f" in bracket atom {atom!r}"


def _scan_smiles_parts(smi: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """``(1-based position, part)`` pairs of ``smi`` and the problems (the ``parts`` scheme)."""
    toks: list[tuple[int, str]] = []
    problems: list[tuple[int, str, str]] = []
    i, n = 0, len(smi)
    while i < n:
        two = smi[i:i + 2]
        if two in _PAIRS:
            toks.append((i + 1, two))
            i += 2
            continue
        ch = smi[i]
        if ch in _SINGLE:
            toks.append((i + 1, ch))
        elif ch.isspace():
            problems.append((i + 1, ch, f"whitespace {ch!r} inside SMILES"))
        elif ch in "lr":
            prev = smi[i - 1:i + 1] if i else ch
            problems.append((i + 1, ch, f"{ch!r} must end an element symbol (Cl, Br, Al, Cr, …); {prev!r} is none"
                                        + _bracket_context(smi, i)))
        elif ch.isalpha():
            ctx = _bracket_context(smi, i)
            problems.append((i + 1, ch, f"{ch!r} is in no element symbol or aromatic atom"
                                        + (ctx or " (outside brackets only B C N O P S F Cl Br I, aromatic "
                                                  "b c n o p s and * are atoms; write others in brackets, "
                                                  "e.g. [Na])")))
        else:
            problems.append((i + 1, ch, f"invalid SMILES character {ch!r}" + _bracket_context(smi, i)))
        i += 1
    return toks, problems


def tokenize_smiles_parts(smi: str, *, name: str | None = None) -> list[str]:
    """Split a SMILES string into the parts of the fixed ``parts`` vocabulary (:data:`SMILES_PARTS`).

    Raises:
        TokenizerError: naming the first character no part covers, its 1-based position and, in a
            bracket atom, what was not understood there (e.g. an unknown element).
    """
    toks, problems = _scan_smiles_parts(smi)
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


SCHEMES = ("atoms", "parts")


@register_tokenizer("smiles")
class SmilesTokenizer(Tokenizer):
    """SMILES tokenizer, in one of two schemes.

    * ``"parts"`` (the default for new models, :meth:`parts`): a fixed vocabulary
      (:data:`SMILES_PARTS`) that covers every element of the periodic table, aromatic bracket
      atoms, isotopes, chirality (``@``, ``@@``, ``@TH1`` … ``@OH30``), hydrogen counts, charges,
      atom classes, ring closures up to ``%(n)``, RDKit's dative bonds and ``[#6]``. A bracket
      atom is written as its parts (``[13CH3+]`` → ``[`` ``1`` ``3`` ``C`` ``H`` ``3`` ``+``
      ``]``), so no molecule is rejected for a bracket atom the training data lacked, and every
      token sequence re-encodes to itself. A character no part covers is named with its position
      and, in a bracket atom, the unknown element it belongs to.
    * ``"atoms"`` (the original scheme; every saved model without a ``scheme`` entry): atom-level
      tokens with each bracket atom one token, vocabulary built from the training corpus by
      :meth:`build` (most frequent first, ties alphabetical). A token the corpus lacked cannot be
      encoded.

    Data ids index ``tokens``; mask = n, pad = n + 1.

    Args:
        tokens: the vocabulary; each entry must be exactly one token of the scheme.
        scheme: ``"atoms"`` (default, so saved tokenizer dicts load exactly as before) or ``"parts"``.
    """

    canonicalize = staticmethod(canonicalize)
    randomize = staticmethod(randomize)

    def __init__(self, tokens: Sequence[str], *, scheme: str = "atoms", use_bos_eos: bool = False,
                 mask_placeholder: str = "_") -> None:
        super().__init__(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        if scheme not in SCHEMES:
            raise ValueError(f"unknown SMILES tokenizer scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        tokens = list(tokens)
        if not tokens:
            raise ValueError("SmilesTokenizer needs at least one token")
        parts = set(SMILES_PARTS)
        for t in tokens:
            ok = isinstance(t, str) and (t in parts if scheme == "parts" else SMILES_TOKEN_REGEX.fullmatch(t))
            if not ok:
                raise ValueError(f"{t!r} is not a single SMILES token of the {scheme!r} scheme")
        if len(set(tokens)) != len(tokens):
            raise ValueError("SmilesTokenizer tokens must be unique")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        self._scanner = _scan_smiles_parts if scheme == "parts" else _scan_smiles

    @classmethod
    def parts(cls, *, use_bos_eos: bool = False, mask_placeholder: str = "_") -> "SmilesTokenizer":
        """The fixed ``parts`` vocabulary (:data:`SMILES_PARTS`): no corpus needed."""
        return cls(SMILES_PARTS, scheme="parts", use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)

    @classmethod
    def build(
        cls,
        smiles: Iterable[str],
        *,
        min_count: int = 1,
        extra_tokens: Iterable[str] = (),
        scheme: str = "atoms",
        use_bos_eos: bool = False,
        mask_placeholder: str = "_",
    ) -> "SmilesTokenizer":
        """Build the vocabulary from training SMILES.

        ``scheme="atoms"``: tokens seen fewer than ``min_count`` times are left
        out (encoding them later raises); ``extra_tokens`` are always included.
        ``scheme="parts"``: the fixed vocabulary of :meth:`parts` (``min_count``
        and ``extra_tokens`` do not apply); the corpus is only checked.  Either
        way a SMILES that cannot be tokenised raises :class:`TokenizerError`
        naming its 0-based index in ``smiles``.
        """
        if scheme == "parts":
            for i, smi in enumerate(smiles):
                tokenize_smiles_parts(smi, name=f"#{i}")
            return cls.parts(use_bos_eos=use_bos_eos, mask_placeholder=mask_placeholder)
        if scheme != "atoms":
            raise ValueError(f"unknown SMILES tokenizer scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
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
        """Token strings of ``smi`` in this tokenizer's scheme (no vocabulary check)."""
        return tokenize_smiles_parts(smi, name=name) if self.scheme == "parts" else tokenize_smiles(smi, name=name)

    def _scan(self, text, max_problems):
        toks, problems = self._scanner(text)
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
        # an "atoms" tokenizer writes exactly what it always wrote (no scheme entry)
        return {"tokens": list(self._tokens)} | ({"scheme": self.scheme} if self.scheme != "atoms" else {})
