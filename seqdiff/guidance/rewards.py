"""Pluggable rewards of generated sequences, by name, for best-of-N, SMC and benchmarks.

A reward maps decoded sequences (strings) to floats; an invalid sequence (a SMILES RDKit cannot
parse) gets the reward's ``floor``. Specs as the command line takes them::

    NAME[=ARG][@LO..HI][:λ]

``NAME`` a registered reward (:data:`REWARDS`), ``ARG`` its argument (a SMARTS pattern, a JASPAR
motif, ``module:function``), ``@LO..HI`` turns the value into a *target range*: the reward becomes
``-(distance from v to [LO, HI])`` (0 inside; either end may be left out, ``@0.4..`` = at least
0.4), ``:λ`` the strength (default 1; a spec whose last ``:`` is followed by a number takes it as
λ, so a SMARTS that ends in ``:1`` needs an explicit ``:λ`` after it).

Molecules (RDKit): ``qed``, ``logp`` (Crippen), ``mw`` (molecular weight, Da), ``sa_ease``
(``(10 - SA-like)/9`` in [0, 1], 1 = easy: the ring/stereo/size complexity terms of Ertl &
Schuffenhauer's synthetic accessibility score, without its fragment-frequency term), ``has=SMARTS``
and ``lacks=SMARTS`` (1 if the substructure is present / absent). DNA: ``gc`` (GC fraction),
``motif=ID|NAME`` (best relative PWM score of a JASPAR profile on either strand, in [0, 1]).
Protein: ``hydrophobicity`` (mean Kyte–Doolittle, GRAVY). Any domain: ``py=module:function``, a
Python function of the user's own installed or local module taking a list of strings and returning
one number per string (run in this process: it is code the user chose, like a plugin).
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["REWARDS", "RewardSpec", "Reward", "parse_reward", "reward_names", "KYTE_DOOLITTLE"]


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward: ``make(arg)`` returns ``f(list[str]) -> array``; ``domains`` it applies to
    (``None``: any); ``floor`` for invalid sequences; ``arg`` what its argument is (``None``: none)."""

    make: Callable[[str | None], Callable[[Sequence[str]], np.ndarray]]
    domains: tuple[str, ...] | None
    help: str
    floor: float = 0.0
    arg: str | None = None


# --------------------------------------------------------------------------------- molecules
def _mols(smiles: Sequence[str]):
    from rdkit import Chem, rdBase
    out = []
    with rdBase.BlockLogs():
        for s in smiles:
            out.append(Chem.MolFromSmiles(s) if s else None)
    return out


def _per_mol(fn, floor: float):
    """``fn`` of each parsed molecule; ``floor`` for an unparsable one, and for one RDKit parses but cannot
    score (e.g. QED's hydrogen removal fails to kekulise a few sanitised molecules): scored like invalid,
    not a crash of the whole batch."""
    def one(m) -> float:
        if m is None:
            return floor
        try:
            return float(fn(m))
        except Exception:  # noqa: BLE001 — RDKit raises its own exception types (KekulizeException, ...)
            return floor

    def f(smiles: Sequence[str]) -> np.ndarray:
        return np.array([one(m) for m in _mols(smiles)], dtype=np.float64)
    return f


def _qed(_arg):
    from rdkit.Chem import QED
    return _per_mol(QED.qed, 0.0)


def _logp(_arg):
    from rdkit.Chem import Crippen
    return _per_mol(Crippen.MolLogP, -10.0)


def _mw(_arg):
    from rdkit.Chem import Descriptors
    return _per_mol(Descriptors.MolWt, 0.0)


def sa_like(mol) -> float:
    """A synthetic-accessibility-like score in [1, 10] (1 easy) from the complexity terms of Ertl &
    Schuffenhauer (2009): size, stereocentres, spiro and bridgehead atoms, macrocycles."""
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors as D
    n = mol.GetNumAtoms()
    if n == 0:
        return 10.0
    stereo = len(Chem.FindMolChiralCenters(mol, includeUnassigned=True))
    spiro, bridge = D.CalcNumSpiroAtoms(mol), D.CalcNumBridgeheadAtoms(mol)
    macro = sum(1 for r in mol.GetRingInfo().AtomRings() if len(r) > 8)
    penalty = (n ** 1.005 - n) + math.log10(stereo + 1) + math.log10(spiro + 1) + math.log10(bridge + 1) \
        + (math.log10(2) if macro else 0.0)
    # map the penalty (0 for a small, flat, acyclic molecule) onto 1..10 as the SA score's tail does
    return float(min(10.0, 1.0 + 2.25 * penalty))


def _sa_ease(_arg):
    return _per_mol(lambda m: (10.0 - sa_like(m)) / 9.0, 0.0)


def _smarts(arg: str | None):
    from rdkit import Chem, rdBase
    if not arg:
        raise ValueError("a substructure reward needs a SMARTS pattern, e.g. has=c1ccccc1")
    with rdBase.BlockLogs():
        patt = Chem.MolFromSmarts(arg)
    if patt is None:
        raise ValueError(f"not a valid SMARTS pattern: {arg!r}")
    return patt


def _has(arg):
    patt = _smarts(arg)
    return _per_mol(lambda m: float(m.HasSubstructMatch(patt)), 0.0)


def _lacks(arg):
    patt = _smarts(arg)
    return _per_mol(lambda m: float(not m.HasSubstructMatch(patt)), 0.0)


# --------------------------------------------------------------------------------- sequences
def _gc(_arg):
    def f(seqs: Sequence[str]) -> np.ndarray:
        out = []
        for s in seqs:
            u = s.upper()
            acgt = sum(u.count(b) for b in "ACGT")
            out.append((u.count("G") + u.count("C")) / acgt if acgt else 0.0)
        return np.array(out, dtype=np.float64)
    return f


def _motif(arg):
    from ..domains.motifs import _encode, _window_scores, find_motif
    if not arg:
        raise ValueError("a motif reward needs a JASPAR id or name, e.g. motif=CTCF")
    try:
        m = find_motif(arg)
    except (KeyError, ValueError, LookupError) as e:
        raise ValueError(f"unknown JASPAR motif {arg!r}: {e.args[0] if e.args else e}") from None
    w = m.pwm()
    lo, hi = float(w.min(axis=0).sum()), float(w.max(axis=0).sum())
    span = hi - lo if hi > lo else 1.0

    def f(seqs: Sequence[str]) -> np.ndarray:
        out = []
        for s in seqs:
            idx = _encode(s)
            best = -np.inf
            for mat in (w, w[::-1, ::-1]):
                sc = _window_scores(idx, mat)
                if sc.size:
                    best = max(best, float(sc.max()))
            out.append(0.0 if not np.isfinite(best) else (best - lo) / span)
        return np.array(out, dtype=np.float64)
    return f


#: Kyte & Doolittle (1982) hydropathy index
KYTE_DOOLITTLE = {"A": 1.8, "R": -4.5, "N": -3.5, "D": -3.5, "C": 2.5, "Q": -3.5, "E": -3.5, "G": -0.4,
                  "H": -3.2, "I": 4.5, "L": 3.8, "K": -3.9, "M": 1.9, "F": 2.8, "P": -1.6, "S": -0.8,
                  "T": -0.7, "W": -0.9, "Y": -1.3, "V": 4.2}


def _hydro(_arg):
    def f(seqs: Sequence[str]) -> np.ndarray:
        out = []
        for s in seqs:
            v = [KYTE_DOOLITTLE[c] for c in s.upper() if c in KYTE_DOOLITTLE]
            out.append(float(np.mean(v)) if v else -4.5)
        return np.array(out, dtype=np.float64)
    return f


def _python(arg):
    if not arg or ":" not in arg:
        raise ValueError(f"py= needs module:function, got {arg!r}")
    mod_name, fn_name = arg.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"py={arg}: cannot import module {mod_name!r} ({e})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ValueError(f"py={arg}: module {mod_name!r} has no function {fn_name!r}")

    def f(seqs: Sequence[str]) -> np.ndarray:
        vals = np.asarray(fn(list(seqs)), dtype=np.float64).reshape(-1)
        if vals.shape[0] != len(seqs):
            raise ValueError(f"py={arg}: returned {vals.shape[0]} values for {len(seqs)} sequences")
        return vals
    return f


REWARDS: dict[str, RewardSpec] = {
    "qed": RewardSpec(_qed, ("smiles",), "RDKit QED drug-likeness in [0, 1]"),
    "logp": RewardSpec(_logp, ("smiles",), "Crippen logP", floor=-10.0),
    "mw": RewardSpec(_mw, ("smiles",), "molecular weight (Da)"),
    "sa_ease": RewardSpec(_sa_ease, ("smiles",), "(10 - SA-like score)/9: 1 = simple to make"),
    "has": RewardSpec(_has, ("smiles",), "1 if the SMARTS substructure is present", arg="SMARTS"),
    "lacks": RewardSpec(_lacks, ("smiles",), "1 if the SMARTS substructure is absent", arg="SMARTS"),
    "gc": RewardSpec(_gc, ("dna", "rna"), "GC fraction"),
    "motif": RewardSpec(_motif, ("dna",), "best relative PWM score of a JASPAR motif, both strands",
                        arg="ID|NAME"),
    "hydrophobicity": RewardSpec(_hydro, ("protein",), "mean Kyte–Doolittle hydropathy (GRAVY)", floor=-4.5),
    "py": RewardSpec(_python, None, "your function: module:function (list of str -> numbers)",
                     arg="module:function"),
}


def reward_names() -> list[str]:
    return sorted(REWARDS)


_NUM = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass
class Reward:
    """A parsed reward spec: call it on strings; ``lam`` its strength; ``spec`` the text it came from."""

    name: str
    arg: str | None
    lo: float | None
    hi: float | None
    lam: float
    spec: str
    fn: Callable[[Sequence[str]], np.ndarray]

    def raw(self, seqs: Sequence[str]) -> np.ndarray:
        """The property itself (no range transform)."""
        return self.fn(list(seqs))

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        v = self.raw(seqs)
        if self.lo is None and self.hi is None:
            return v
        below = np.maximum((self.lo if self.lo is not None else -np.inf) - v, 0.0)
        above = np.maximum(v - (self.hi if self.hi is not None else np.inf), 0.0)
        return 0.0 - (below + above)

    @property
    def label(self) -> str:
        return self.spec


def _parse_range(text: str, spec: str) -> tuple[float | None, float | None]:
    if ".." not in text:
        raise ValueError(f"reward {spec!r}: a range is LO..HI (either end may be left out), got {text!r}")
    a, b = text.split("..", 1)
    try:
        lo = float(a) if a.strip() else None
        hi = float(b) if b.strip() else None
    except ValueError:
        raise ValueError(f"reward {spec!r}: the range {text!r} is not LO..HI with numbers") from None
    if lo is None and hi is None:
        raise ValueError(f"reward {spec!r}: an empty range {text!r}")
    for v in (lo, hi):
        if v is not None and not math.isfinite(v):
            raise ValueError(f"reward {spec!r}: the range {text!r} must be finite")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"reward {spec!r}: the range {text!r} is empty (LO > HI)")
    return lo, hi


def parse_reward(spec: str, domain: str | None = None) -> Reward:
    """A :class:`Reward` from ``NAME[=ARG][@LO..HI][:λ]``; ``ValueError`` with one clear line for an
    unknown name, a reward for another domain, a missing or bad argument, a bad range or λ."""
    text = spec.strip()
    lam = 1.0
    head, sep, tail = text.rpartition(":")
    if sep and _NUM.match(tail.strip()):
        text, lam = head, float(tail)
    name, eq, rest = text.partition("=")
    name = name.strip()
    lo = hi = None
    if not eq and "@" in name:
        name, _, rng = name.partition("@")
        lo, hi = _parse_range(rng, spec)
        rest = ""
    elif eq and "@" in rest:
        rest, _, rng = rest.rpartition("@")
        lo, hi = _parse_range(rng, spec)
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of: {', '.join(reward_names())}")
    rs = REWARDS[name]
    if domain is not None and rs.domains is not None and domain not in rs.domains:
        raise ValueError(f"reward {name!r} is for {'/'.join(rs.domains)} models; this model is {domain}")
    if rs.arg is None and eq:
        raise ValueError(f"reward {name!r} takes no argument (got {name}={rest})")
    if rs.arg is not None and not (eq and rest):
        raise ValueError(f"reward {name!r} needs an argument: {name}={rs.arg}")
    if not math.isfinite(lam):
        raise ValueError(f"reward {spec!r}: λ must be finite")
    return Reward(name, rest or None, lo, hi, lam, spec, rs.make(rest or None))
