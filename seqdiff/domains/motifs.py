"""Transcription-factor motifs: JASPAR count matrices, log-odds PWMs and scanning.

The profiles come from the committed ``datasets/jaspar/core_motifs.json``
(50 JASPAR 2024 CORE profiles, CC BY 4.0) or any file of the same layout
(``{"motifs": [{"matrix_id", "name", "counts": {"A": [...], ...}}, ...]}``;
the full fetch's ``core_matrices.json`` works too).

Scoring, for a motif of length ``L`` with counts ``c[b, j]`` (``N_j`` sites
in column ``j``), background ``q[b]`` and pseudocount mass ``s``:

* probability ``f[b, j] = (c[b, j] + s * q[b]) / (N_j + s)``;
* log-odds ``w[b, j] = log2(f[b, j] / q[b])``;
* a window ``x_1..x_L`` scores ``S = sum_j w[x_j, j]``;
* relative score ``(S - S_min) / (S_max - S_min)`` in ``[0, 1]``, where
  ``S_min``/``S_max`` sum the column minima/maxima.  A hit is a window whose
  relative score is at least the threshold (0.8 by default, a common choice
  for JASPAR scans).
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

__all__ = [
    "Motif",
    "Hit",
    "default_motif_path",
    "load_motifs",
    "find_motif",
    "scan",
    "motif_hits",
]

_BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGTacgtNn", "TGCAtgcaNn")


def default_motif_path() -> Path:
    """``datasets/jaspar/core_motifs.json`` of the source tree."""
    return Path(__file__).resolve().parents[2] / "datasets" / "jaspar" / "core_motifs.json"


@dataclass(frozen=True)
class Motif:
    """A position frequency matrix.

    Attributes:
        name: the factor, e.g. ``"TBP"``.
        id: the matrix id, e.g. ``"MA0108.3"``.
        counts: ``float`` array of shape ``(4, L)``, rows A, C, G, T.
        info: other fields of the source entry (tax group, class, ...).
    """

    name: str
    id: str
    counts: np.ndarray = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.counts, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != 4 or c.shape[1] < 1:
            raise ValueError(f"motif {self.id}: counts must have shape (4, L), got {c.shape}")
        if (c < 0).any():
            raise ValueError(f"motif {self.id}: negative counts")
        object.__setattr__(self, "counts", c)

    @classmethod
    def from_counts(cls, name: str, id: str, counts: dict[str, Sequence[float]], **info: Any) -> "Motif":
        """From a ``{"A": [...], "C": [...], "G": [...], "T": [...]}`` mapping."""
        missing = [b for b in _BASES if b not in counts]
        if missing:
            raise ValueError(f"motif {id}: no counts for {missing}")
        return cls(name, id, np.array([list(counts[b]) for b in _BASES], dtype=np.float64), dict(info))

    @property
    def length(self) -> int:
        return int(self.counts.shape[1])

    def __len__(self) -> int:
        return self.length

    @property
    def consensus(self) -> str:
        """Most frequent base per column (ties: A < C < G < T)."""
        return "".join(_BASES[int(i)] for i in np.argmax(self.counts, axis=0))

    @property
    def iupac(self) -> str:
        """Degenerate consensus (Cavener's rules)."""
        from ..data.fetch import iupac_consensus

        return iupac_consensus({b: self.counts[i].tolist() for i, b in enumerate(_BASES)})

    def pwm(self, pseudocount: float = 0.8, background: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> np.ndarray:
        """Log-odds matrix ``w[b, j] = log2(f[b, j] / q[b])`` with
        ``f[b, j] = (c[b, j] + s q[b]) / (N_j + s)``, shape ``(4, L)``."""
        q = np.asarray(background, dtype=np.float64)
        if q.shape != (4,) or (q <= 0).any():
            raise ValueError("background must be 4 positive frequencies (A, C, G, T)")
        q = q / q.sum()
        if pseudocount < 0:
            raise ValueError("pseudocount must be >= 0")
        n = self.counts.sum(axis=0, keepdims=True)
        f = (self.counts + pseudocount * q[:, None]) / (n + pseudocount)
        with np.errstate(divide="ignore"):
            return np.log2(f / q[:, None])

    def reverse_complement(self) -> "Motif":
        """The motif as read on the other strand."""
        return Motif(self.name, self.id, self.counts[::-1, ::-1].copy(), dict(self.info))


class Hit(NamedTuple):
    """A motif occurrence.

    ``start``/``end`` are 0-based, half-open positions on the given sequence
    (``seq[start:end]``), whatever the strand.  ``strand`` is ``"+"`` or
    ``"-"``.  ``score`` is the relative score in ``[0, 1]``.  ``matched``
    is the site as read along the motif: ``seq[start:end]`` on ``+``, its
    reverse complement on ``-``.
    """

    start: int
    end: int
    strand: str
    score: float
    matched: str


# ================================================================ loading
@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> tuple[Motif, ...]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    entries = data["motifs"] if isinstance(data, dict) else data
    out = []
    for e in entries:
        mid = e.get("matrix_id") or e.get("id")
        info = {k: v for k, v in e.items() if k not in ("matrix_id", "id", "name", "counts")}
        out.append(Motif.from_counts(str(e["name"]), str(mid), e["counts"], **info))
    return tuple(out)


def load_motifs(path: str | os.PathLike | None = None) -> list[Motif]:
    """All profiles of a JASPAR JSON file (default :func:`default_motif_path`).

    Raises:
        FileNotFoundError: naming the path (a package installed without the
            source tree has no ``datasets/``; pass ``path=``).
    """
    p = Path(path) if path is not None else default_motif_path()
    if not p.is_file():
        raise FileNotFoundError(
            f"JASPAR motif file not found: {p} (pass path= to a core_motifs.json or the fetched "
            "jaspar corpus's core_matrices.json)"
        )
    return list(_load_cached(str(p.resolve()), p.stat().st_mtime))


def _version(m: Motif) -> int:
    tail = m.id.rpartition(".")[2]
    return int(tail) if tail.isdigit() else 0


def find_motif(name_or_id: str, path: str | os.PathLike | None = None) -> Motif:
    """A profile by matrix id (``"MA0108.3"``, or ``"MA0108"`` for the latest
    version) or by factor name (case-insensitive, ``"tbp"``).

    Raises:
        KeyError: with close matches when nothing fits.
    """
    motifs = load_motifs(path)
    key = name_or_id.strip()
    for m in motifs:
        if m.id == key:
            return m
    versions = [m for m in motifs if m.id.split(".")[0] == key]
    if versions:
        return max(versions, key=_version)
    named = [m for m in motifs if m.name.lower() == key.lower()]
    if named:
        return named[0]
    names = sorted({m.name for m in motifs} | {m.id for m in motifs})
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no motif named or with id {name_or_id!r}{hint}")


# ================================================================ scanning
def _encode(seq: str) -> np.ndarray:
    lut = np.full(256, -1, dtype=np.int64)
    for i, b in enumerate(_BASES):
        lut[ord(b)] = i
        lut[ord(b.lower())] = i
    return lut[np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)]


def _window_scores(idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Log-odds of every window; ``-inf`` where a window has a non-ACGT letter."""
    L = w.shape[1]
    n = idx.size - L + 1
    if n <= 0:
        return np.empty(0)
    win = np.lib.stride_tricks.sliding_window_view(idx, L)
    valid = (win >= 0).all(axis=1)
    s = w[np.where(win >= 0, win, 0), np.arange(L)].sum(axis=1)
    return np.where(valid, s, -np.inf)


def scan(
    seq: str,
    motif: Motif | str,
    threshold: float = 0.8,
    *,
    both_strands: bool = True,
    pseudocount: float = 0.8,
    background: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
) -> list[Hit]:
    """Occurrences of ``motif`` in ``seq`` with relative score >= ``threshold``.

    The ``-`` strand is scanned with the reverse-complement matrix, so a site
    planted as the reverse complement of the consensus is found on ``-`` at
    the same ``start``.  Windows with letters other than A, C, G, T (any
    case) are skipped.  Hits are ordered by start, ``+`` before ``-``.
    """
    if isinstance(motif, str):
        motif = find_motif(motif)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a relative score in [0, 1], got {threshold}")
    w = motif.pwm(pseudocount, background)
    smin, smax = float(w.min(axis=0).sum()), float(w.max(axis=0).sum())
    span = smax - smin
    idx = _encode(seq)
    L = motif.length
    hits: list[Hit] = []
    strands = [("+", w)]
    if both_strands:
        strands.append(("-", w[::-1, ::-1]))
    for strand, mat in strands:
        rel = (_window_scores(idx, mat) - smin) / span if span > 0 else np.ones(max(idx.size - L + 1, 0))
        for i in np.nonzero(rel >= threshold - 1e-12)[0].tolist():
            site = seq[i : i + L]
            matched = site.upper() if strand == "+" else site.upper().translate(_COMPLEMENT)[::-1]
            hits.append(Hit(i, i + L, strand, float(min(rel[i], 1.0)), matched))
    hits.sort(key=lambda h: (h.start, h.strand != "+"))
    return hits


def motif_hits(
    seqs: Iterable[str],
    motifs: Iterable[Motif | str] | None = None,
    threshold: float = 0.8,
    *,
    both_strands: bool = True,
):
    """Summary of motif occurrences over a set of sequences (a pandas DataFrame).

    One row per motif (default: every profile of :func:`load_motifs`) with
    ``motif_id``, ``name``, ``length``, ``hits`` (total), ``plus``/``minus``
    (per strand), ``seqs_with_hit``, ``frac_seqs_with_hit`` and
    ``hits_per_kb`` (hits per 1,000 scanned bases).
    """
    import pandas as pd

    seq_list = [str(s) for s in seqs]
    if motifs is None:
        motif_list = load_motifs()
    else:
        motif_list = [find_motif(m) if isinstance(m, str) else m for m in motifs]
    total_bases = sum(len(s) for s in seq_list)
    rows = []
    for m in motif_list:
        n_plus = n_minus = with_hit = 0
        for s in seq_list:
            hs = scan(s, m, threshold, both_strands=both_strands)
            n_plus += sum(h.strand == "+" for h in hs)
            n_minus += sum(h.strand == "-" for h in hs)
            with_hit += bool(hs)
        n = n_plus + n_minus
        rows.append({
            "motif_id": m.id,
            "name": m.name,
            "length": m.length,
            "hits": n,
            "plus": n_plus,
            "minus": n_minus,
            "seqs_with_hit": with_hit,
            "frac_seqs_with_hit": with_hit / len(seq_list) if seq_list else 0.0,
            "hits_per_kb": 1000.0 * n / total_bases if total_bases else 0.0,
        })
    return pd.DataFrame(rows, columns=["motif_id", "name", "length", "hits", "plus", "minus", "seqs_with_hit",
                                       "frac_seqs_with_hit", "hits_per_kb"])
