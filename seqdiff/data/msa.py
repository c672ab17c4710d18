"""Homolog files for family-aware scoring: alignments in the wild type's columns, and sequence weights.

Formats (chosen by content and name):

* **Stockholm** (``# STOCKHOLM 1.0`` first line; read with Biopython ``AlignIO``): gaps ``-`` or ``.``.
* **A2M / A3M** (``.a2m``/``.a3m``): FASTA whose upper-case letters and ``-`` are match columns and
  whose lower-case letters and ``.`` are insertions (dropped).
* **aligned FASTA**: every record the same length, gaps ``-`` (or ``.``).
* **unaligned FASTA**: anything else in FASTA form; each record is aligned to the wild type with
  Biopython's ``PairwiseAligner`` (local, BLOSUM62, gap open -10 / extend -0.5) and projected onto
  the wild type's positions (insertions relative to the wild type dropped).

An alignment (the first three) must contain the wild type: the record whose residues in the match
columns equal the wild type (or the first record when none does: then its residues must match the
wild type, and the first mismatch is the error). The alignment is reduced to the wild type's columns
(the "focus" columns, as EVmutation does), so every row has ``len(wt)`` characters, ``-`` = gap.

Sequence weights (EVmutation / plmc): ``w_s = 1 / |{t : id(s, t) >= 0.8}|`` with ``id`` the fraction
of identical columns over the ``L`` focus columns (a gap matching a gap counts as identical, as in
plmc) and ``s`` itself counted; ``N_eff = Σ w_s``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["Homologs", "read_homologs", "sequence_weights", "AMINO_ACIDS"]

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
_GAPS = "-."


@dataclass
class Homologs:
    ids: list[str]
    rows: list[str]  # aligned to the wild type: len(wt) characters each, '-' for a gap
    fmt: str  # stockholm | a2m | aligned-fasta | fasta
    dropped: list[tuple[str, str]]  # (id, why) of records left out

    def sequences(self) -> list[str]:
        """The rows without gaps (the homologous segments, for training)."""
        return [r.replace("-", "") for r in self.rows]


def _err(source: str, msg: str) -> DataError:
    return DataError(msg, path=source)


def _read_raw(path: Path, source: str) -> tuple[str, list[tuple[str, str]]]:
    from ..data.readers import open_text
    with open_text(path) as f:
        head = f.read(4096)
    if not head.strip():
        raise _err(source, "empty homolog file")
    name = path.name.lower().removesuffix(".gz")
    if head.lstrip().startswith("# STOCKHOLM"):
        from Bio import AlignIO
        try:
            with open_text(path) as f:
                alns = list(AlignIO.parse(f, "stockholm"))
        except ValueError as e:
            raise _err(source, f"not a readable Stockholm alignment ({e})") from None
        if not alns:
            raise _err(source, "a Stockholm file without an alignment")
        return "stockholm", [(r.id, str(r.seq)) for r in alns[0]]
    if not head.lstrip().startswith(">"):
        raise _err(source, "not a homolog file: expected FASTA ('>' headers), A2M/A3M or Stockholm "
                           "('# STOCKHOLM 1.0')")
    from Bio import SeqIO
    recs = []
    with open_text(path) as f:
        for r in SeqIO.parse(f, "fasta"):
            recs.append((r.id, str(r.seq).replace(" ", "")))
    if not recs:
        raise _err(source, "no FASTA records")
    if name.endswith((".a2m", ".a3m")):
        return "a2m", recs
    lens = {len(s) for _, s in recs}
    if len(lens) == 1 and any(c in s for _, s in recs for c in _GAPS):
        return "aligned-fasta", recs
    if any(c in s for _, s in recs for c in _GAPS):
        # gaps but unequal lengths: a broken alignment, not unaligned sequences
        first = len(recs[0][1])
        for k, (rid, s) in enumerate(recs, start=1):
            if len(s) != first:
                raise _err(source, f"record {k} ({rid!r}) has {len(s)} columns, the first record has {first}: "
                                   f"an aligned file needs rows of equal length")
    return "fasta", recs


def _match_columns(fmt: str, recs, source: str) -> list[tuple[str, str]]:
    """Rows restricted to match columns (A2M: drop insertions), upper-case, gaps '-'; equal lengths."""
    out = []
    for k, (rid, s) in enumerate(recs, start=1):
        if fmt == "a2m":
            s = "".join(c for c in s if not (c.islower() or c == "."))
        s = s.upper().replace(".", "-")
        out.append((rid, s))
    n = len(out[0][1])
    for k, (rid, s) in enumerate(out, start=1):
        if len(s) != n:
            raise _err(source, f"record {k} ({rid!r}) has {len(s)} match columns, the first record has {n}: "
                               f"the alignment is ragged")
    return out


def _check_letters(rows, source: str) -> None:
    ok = set(AMINO_ACIDS) | {"-", "X", "B", "Z", "J", "U", "O"}
    for k, (rid, s) in enumerate(rows, start=1):
        for i, c in enumerate(s, start=1):
            if c not in ok:
                raise _err(source, f"record {k} ({rid!r}), column {i}: {c!r} is not an amino acid or a gap")


def _to_wt_columns(rows, wt: str, source: str) -> list[tuple[str, str]]:
    """Keep the columns where the wild-type row has a residue; the wild-type row must equal ``wt``."""
    def residues(s):
        return s.replace("-", "")
    qi = next((k for k, (_, s) in enumerate(rows) if residues(s) == wt), None)
    if qi is None:
        rid, s = rows[0]
        res = residues(s)
        for p, (a, b) in enumerate(zip(res, wt), start=1):
            if a != b:
                raise _err(source, f"the alignment does not contain the wild type: its first record ({rid!r}) has "
                                   f"{a!r} at wild-type position {p}, the wild type has {b!r}")
        raise _err(source, f"the alignment does not contain the wild type: its first record ({rid!r}) has "
                           f"{len(res)} residues, the wild type {len(wt)}")
    cols = [i for i, c in enumerate(rows[qi][1]) if c != "-"]
    return [(rid, "".join(s[i] for i in cols)) for rid, s in rows]


def _align_to_wt(recs, wt: str) -> list[tuple[str, str]]:
    from Bio.Align import PairwiseAligner, substitution_matrices
    al = PairwiseAligner(mode="local", substitution_matrix=substitution_matrices.load("BLOSUM62"),
                         open_gap_score=-10.0, extend_gap_score=-0.5)
    out = []
    for rid, s in recs:
        s = s.upper()
        row = ["-"] * len(wt)
        try:
            a = al.align(wt, s)[0]
        except (IndexError, ValueError):
            out.append((rid, "".join(row)))
            continue
        for (t0, t1), (q0, q1) in zip(*a.aligned):
            for k in range(t1 - t0):
                row[t0 + k] = s[q0 + k]
        out.append((rid, "".join(row)))
    return out


def read_homologs(path: str | os.PathLike, wt: str, *, min_coverage: float = 0.5) -> Homologs:
    """Read a homolog file (see module docstring) as rows in the wild type's columns.

    Rows covering fewer than ``min_coverage`` of the wild type's positions (fragments) and exact
    duplicates of the wild type are dropped (listed in ``dropped``); the wild type itself is kept once.

    Raises:
        DataError: naming the file and the record/column: unreadable, ragged, a non-amino-acid letter,
            an alignment without the wild type, or no homolog left.
    """
    p = Path(path)
    source = os.fspath(path)
    if not p.is_file():
        raise FileNotFoundError(f"{source}: no such homolog file")
    fmt, recs = _read_raw(p, source)
    if fmt == "fasta":
        _check_letters([(rid, s.upper()) for rid, s in recs], source)
        rows = _align_to_wt(recs, wt)
    else:
        rows = _match_columns(fmt, recs, source)
        _check_letters(rows, source)
        rows = _to_wt_columns(rows, wt, source)
    ids, kept, dropped = [], [], []
    seen_wt = False
    L = len(wt)
    for rid, s in rows:
        cov = sum(c != "-" for c in s) / L
        if cov < min_coverage:
            dropped.append((rid, f"covers {cov:.0%} of the wild type (< {min_coverage:.0%})"))
            continue
        if s == wt:
            if seen_wt:
                dropped.append((rid, "a second copy of the wild type"))
                continue
            seen_wt = True
        ids.append(rid)
        kept.append(s)
    if not kept:
        raise _err(source, f"no homolog covers at least {min_coverage:.0%} of the wild type")
    return Homologs(ids, kept, fmt, dropped)


def sequence_weights(rows, threshold: float = 0.8, block: int = 512) -> np.ndarray:
    """EVmutation weights ``1 / #neighbours`` (identity ``>= threshold`` over the columns, self included)."""
    if not len(rows):
        return np.zeros(0)
    L = len(rows[0])
    if any(len(r) != L for r in rows):
        raise ValueError("sequence weights need aligned rows of equal length")
    A = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), L)
    counts = np.zeros(len(rows), dtype=np.int64)
    need = threshold * L
    for s in range(0, len(rows), block):
        same = (A[s:s + block, None, :] == A[None, :, :]).sum(-1)  # [b, N] identical columns
        counts[s:s + block] = (same >= need - 1e-9).sum(1)
    return 1.0 / counts
