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
_AROMATIC_BRACKET = ("b", "c", "n", "o", "p", "s", "se", "te", "as", "si")
_CHIRAL = ("@", "@@", "@TH", "@AL", "@SP", "@TB", "@OH")

#: The fixed vocabulary of the ``parts`` scheme: every piece a SMILES string is made of. A bracket
#: atom ``[13CH3+:2]`` is written as its parts ``[`` ``1`` ``3`` ``C`` ``H`` ``3`` ``+`` ``:`` ``2``
#: ``]``; a ring closure ``%12`` as ``%`` ``1`` ``2`` (``%(123)`` as ``%`` ``(`` ``1`` ``2`` ``3``
#: ``)``); digits are ring labels outside brackets and counts inside. Joining the parts gives the
#: string back, so ``decode(encode(s)) == s`` for every string the scanner accepts.
SMILES_PARTS: tuple[str, ...] = (
    # structure: branches, ring labels, bonds (``->``/``<-``: RDKit's dative bonds), components
    "(", ")", *"0123456789", "%", "-", "=", "#", "$", ":", "/", "\\", "~", "->", "<-", ".",
    # atoms outside brackets (organic subset, aromatic, wildcard), then bracket pieces
    "B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s", "*",
    "[", "]", "+", *_CHIRAL,
    *[e for e in ELEMENTS if e not in ("B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I")],
    *[a for a in _AROMATIC_BRACKET if a not in ("b", "c", "n", "o", "p", "s")],
)

_OUTSIDE_RE = re.compile(r"Cl|Br|[BCNOPSFI]|[bcnops]|\*|[0-9]|->|<-|[-=#$:/\\~]|[()]|\.")
_BRACKET_TAIL_RE = re.compile(
    r"(?P<chiral>@(?:@|TH|AL|SP|TB|OH)?)?(?P<chiral_n>(?<=[A-Z])[0-9]{1,2})?"
    r"(?P<h>H[0-9]*)?(?P<charge>\+[0-9]+|-[0-9]+|\++|-+)?(?P<cls>:[0-9]+)?\]"
)

_BRACKET_TAIL_PREFIX_RE = re.compile(_BRACKET_TAIL_RE.pattern[:-2])  # the same pieces, without the ']'


def _bracket_parts(smi: str, pos: int) -> tuple[list[tuple[int, str]], int, tuple[int, str, str] | None]:
    """Parts of the bracket atom starting at ``smi[pos] == '['``: ``(parts, end, problem)``."""
    close = smi.find("]", pos + 1)
    nxt = smi.find("[", pos + 1)
    if close < 0 or (0 <= nxt < close):
        return [], len(smi) if close < 0 else nxt, (pos + 1, "[", "unclosed bracket atom '['")
    atom = smi[pos:close + 1]
    parts: list[tuple[int, str]] = [(pos + 1, "[")]
    i = pos + 1

    def digits(j: int) -> int:
        while j < close and smi[j].isdigit():
            parts.append((j + 1, smi[j]))
            j += 1
        return j

    i = digits(i)  # isotope
    el = None
    if smi[i:i + 1] == "#":  # atomic number (an RDKit extension)
        parts.append((i + 1, "#"))
        j = digits(i + 1)
        el = "#" if j > i + 1 else None
        i = j
    elif smi[i:i + 1] == "*":
        el = "*"
    elif smi[i:i + 2] in _ELEMENT_SET or smi[i:i + 2] in _AROMATIC_BRACKET:
        el = smi[i:i + 2]
    elif smi[i:i + 1] in _ELEMENT_SET or smi[i:i + 1] in _AROMATIC_BRACKET:
        el = smi[i:i + 1]
    if el is None:
        sym = re.match(r"[A-Za-z]{1,2}|.", smi[i:close + 1]).group()
        why = (f"unknown element {sym!r} in bracket atom {atom!r}" if sym.isalpha()
               else f"bracket atom {atom!r} has no element symbol")
        return [], close + 1, (i + 1, atom, why)
    if el != "#":
        parts.append((i + 1, el))
        i += len(el)
    m = _BRACKET_TAIL_RE.match(smi, i)
    if m is None or m.end() != close + 1:
        good = _BRACKET_TAIL_PREFIX_RE.match(smi, i).end()  # how far the tail is understood
        return [], close + 1, (good + 1, atom, f"bracket atom {atom!r} not understood at {smi[good:close + 1]!r} "
                                             "(expected chirality, H count, charge, atom class or ']')")
    j = i
    if m.group("chiral"):
        parts.append((j + 1, m.group("chiral")))
        j += len(m.group("chiral"))
    if m.group("chiral_n"):
        j = digits(j)
    if m.group("h"):
        parts.append((j + 1, "H"))
        j = digits(j + 1)
    if m.group("charge"):
        c = m.group("charge")
        for k, ch in enumerate(c):
            parts.append((j + k + 1, ch))
        j += len(c)
    if m.group("cls"):
        parts.append((j + 1, ":"))
        j = digits(j + 1)
    parts.append((close + 1, "]"))
    return parts, close + 1, None


_PARTS_BY_LEN = {n: frozenset(t for t in SMILES_PARTS if len(t) == n) for n in (1, 2, 3)}


def _segment_parts(smi: str) -> list[tuple[int, str]] | None:
    """A segmentation of ``smi`` into the fewest parts (ties: longer parts first), or ``None``.

    The fallback for strings that are not SMILES syntax but are made of parts, such as what an
    undertrained model writes (``CCd``, ``[@]``): every concatenation of parts can be encoded
    again, in at most as many tokens, so decoded model output always re-encodes.
    """
    n = len(smi)
    best = [0] + [None] * n  # best[i]: (tokens, next) covering smi[n-i:]... computed from the end
    cost: list[int | None] = [None] * (n + 1)
    step: list[int] = [0] * (n + 1)
    cost[n] = 0
    for i in range(n - 1, -1, -1):
        for w in (3, 2, 1):
            if i + w <= n and cost[i + w] is not None and smi[i:i + w] in _PARTS_BY_LEN[w]:
                c = cost[i + w] + 1
                if cost[i] is None or c < cost[i]:
                    cost[i], step[i] = c, w
    del best
    if cost[0] is None:
        return None
    out, i = [], 0
    while i < n:
        out.append((i + 1, smi[i:i + step[i]]))
        i += step[i]
    return out


def _scan_smiles_parts(smi: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """``(1-based position, part)`` pairs of ``smi`` and the problems (the ``parts`` scheme).

    SMILES syntax is read structurally (bracket atoms by their grammar, the organic subset
    outside brackets). A string that is not SMILES but is made of parts is segmented into the
    fewest parts instead (:func:`_segment_parts`); only a character that no part covers is a
    problem, reported with what the structural reading did not understand there.
    """
    toks, problems = _scan_smiles_structured(smi)
    if problems:
        seg = _segment_parts(smi)
        if seg is not None:
            return seg, []
    return toks, problems


def _scan_smiles_structured(smi: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    toks: list[tuple[int, str]] = []
    problems: list[tuple[int, str, str]] = []
    pos, n = 0, len(smi)
    while pos < n:
        ch = smi[pos]
        if ch == "[":
            parts, pos, problem = _bracket_parts(smi, pos)
            toks.extend(parts)
            if problem:
                problems.append(problem)
            continue
        if ch == "%":
            m = re.compile(r"%(?:([0-9]{2})|\(([0-9]+)\))").match(smi, pos)
            if m is None:
                problems.append((pos + 1, smi[pos:pos + 3], "ring closure '%' must be followed by two digits or '(n)'"))
                pos += 1
                continue
            toks.append((pos + 1, "%"))
            if m.group(1):
                toks.extend((pos + 2 + k, d) for k, d in enumerate(m.group(1)))
            else:
                toks.append((pos + 2, "("))
                toks.extend((pos + 3 + k, d) for k, d in enumerate(m.group(2)))
                toks.append((m.end(), ")"))
            pos = m.end()
            continue
        m = _OUTSIDE_RE.match(smi, pos)
        if m is not None:
            toks.append((pos + 1, m.group()))
            pos = m.end()
            continue
        if ch.isspace():
            problems.append((pos + 1, ch, f"whitespace {ch!r} inside SMILES"))
        elif ch == "]":
            problems.append((pos + 1, ch, "']' without an opening '['"))
        elif ch.isalpha():
            problems.append((pos + 1, ch, f"{ch!r} is not an atom outside brackets (only B C N O P S F Cl Br I, "
                                          "aromatic b c n o p s and *; write other elements in brackets, e.g. [Na])"))
        else:
            problems.append((pos + 1, ch, f"invalid SMILES character {ch!r}"))
        pos += 1
    return toks, problems


def tokenize_smiles_parts(smi: str, *, name: str | None = None) -> list[str]:
    """Split a SMILES string into the parts of the fixed ``parts`` vocabulary (:data:`SMILES_PARTS`).

    Raises:
        TokenizerError: naming the first thing that is not understood (an unknown element, a
            malformed bracket atom or ring closure, a stray character) and its 1-based position.
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
      ``]``), so no molecule is rejected for a bracket atom the training data lacked; what is not
      understood is named with its position (an unknown element, a malformed bracket atom).
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
