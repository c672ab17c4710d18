"""Variants in deep-mutational-scan (DMS) notation.

A substitution is written ``A23G``: the wild-type letter, the 1-based
position and the new letter (``*`` is a stop).  A multi-mutant joins
substitutions with ``:`` (canonical, as written by this module) or ``;``:
``A23G:K45R``.  ``WT``, ``_wt`` (any case) and the empty string mean the
wild type.  Synonymous substitutions such as ``A23A`` are allowed; the same
position twice in one multi-mutant is an error.

This module has no heavy imports at module level (pandas is imported by
:func:`read_variants` and :func:`single_mutant_scan` when called), so the
corpus fetcher can use it cheaply.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Sequence

__all__ = [
    "VariantError",
    "parse_mutant",
    "format_mutant",
    "apply_mutant",
    "mutant_from_sequences",
    "read_variants",
    "variant_warnings",
    "check_substitution_letters",
    "single_mutant_scan",
    "blosum62_score",
    "blosum62_scores",
    "BLOSUM62",
    "BLOSUM62_ALPHABET",
    "MUTANT_COLUMNS",
    "SEQUENCE_COLUMNS",
    "STOP",
    "nonsense_position",
    "score_status",
]

#: The stop letter of DMS notation (a nonsense substitution, e.g. ``K45*``).
STOP = "*"

_SUB_RE = re.compile(r"([A-Z*])(\d+)([A-Z*])")
_SEP_RE = re.compile(r"[:;]")
_WT_WORDS = {"wt", "_wt", ""}

#: Column names :func:`read_variants` recognises as mutant columns (any case).
MUTANT_COLUMNS = ("mutant", "mutation", "mutations", "variant", "variants")
#: Column names :func:`read_variants` recognises as full-sequence columns (any case).
SEQUENCE_COLUMNS = ("sequence", "seq")

Mutation = tuple[str, int, str]


class VariantError(ValueError):
    """A mutant that is malformed or does not fit its wild type.

    Attributes:
        reason: what is wrong.
        mutant: the mutant string (``None`` if not known).
        row: the 1-based data row of the table it came from (``None`` if none).
        position: the sequence position at fault (``None`` if n/a).
        source: the file the table came from (``None`` if none).
    """

    def __init__(
        self,
        reason: str,
        *,
        mutant: str | None = None,
        row: int | str | None = None,
        position: int | None = None,
        source: str | None = None,
    ) -> None:
        self.reason = reason
        self.mutant = mutant
        self.row = row
        self.position = position
        self.source = source
        where = []
        if row is not None:
            where.append(f"row {row}")
        if mutant is not None:
            where.append(f"({mutant!r})")
        head = " ".join(where)
        if source is not None:
            head = f"{source}: {head}" if head else source
        super().__init__(f"{head}: {reason}" if head else reason)

    def __reduce__(self):
        return (_rebuild_variant_error, (self.reason, self.mutant, self.row, self.position, self.source))


def _rebuild_variant_error(reason, mutant, row, position, source) -> VariantError:
    return VariantError(reason, mutant=mutant, row=row, position=position, source=source)


# ================================================================ notation
def parse_mutant(mutant: str, *, strict: bool = False, row: int | str | None = None) -> list[Mutation]:
    """Parse DMS notation into ``[(wt, position, new), ...]`` in written order.

    ``"A23G:K45R"`` -> ``[("A", 23, "G"), ("K", 45, "R")]``;
    ``"WT"``/``"_wt"``/``""`` -> ``[]``.  ``;`` also separates substitutions,
    and whitespace around them is ignored.

    Args:
        strict: also require strictly increasing positions and no synonymous
            substitutions (the canonical form written by
            :func:`mutant_from_sequences`).
        row: named in the error message.

    Raises:
        VariantError: malformed substitution, position < 1, a position given
            twice, or (``strict``) unsorted positions or ``A23A``.
    """
    if not isinstance(mutant, str):
        raise VariantError(f"mutant must be a string, got {type(mutant).__name__}", row=row)
    text = mutant.strip()
    if text.lower() in _WT_WORDS:
        return []
    out: list[Mutation] = []
    seen: set[int] = set()
    for part in _SEP_RE.split(text):
        part = part.strip()
        m = _SUB_RE.fullmatch(part)
        if m is None:
            raise VariantError(
                f"malformed substitution {part!r}: expected wild-type letter, position, new letter (e.g. A23G)",
                mutant=mutant, row=row,
            )
        w, p, t = m.group(1), int(m.group(2)), m.group(3)
        if p < 1:
            raise VariantError(f"position must be >= 1 in {part!r}", mutant=mutant, row=row, position=p)
        if p in seen:
            raise VariantError(f"position {p} is mutated twice", mutant=mutant, row=row, position=p)
        if strict:
            if out and p <= out[-1][1]:
                raise VariantError("positions must be strictly increasing", mutant=mutant, row=row, position=p)
            if w == t:
                raise VariantError(f"{part!r} substitutes a residue by itself", mutant=mutant, row=row, position=p)
        seen.add(p)
        out.append((w, p, t))
    return out


def format_mutant(mutations: Iterable[Mutation]) -> str:
    """Canonical DMS string: substitutions sorted by position, joined with
    ``:``; ``"WT"`` for none."""
    muts = sorted(mutations, key=lambda m: m[1])
    return ":".join(f"{w}{p}{t}" for w, p, t in muts) if muts else "WT"


def apply_mutant(
    wt_seq: str,
    mutant: str | Sequence[Mutation],
    *,
    row: int | str | None = None,
    offset: int = 0,
) -> str:
    """Apply a mutant to the wild-type sequence.

    Position ``p`` refers to ``wt_seq[p - 1 - offset]`` (``offset`` lets a
    domain be numbered as in the full-length protein).

    Raises:
        VariantError: naming ``row`` and the mutant, when a position is
            outside the wild type or its letter is not the stated one, e.g.
            ``row 7 ('A23G'): the wild type has 'K' at position 23, not 'A'``.
    """
    if isinstance(mutant, str):
        label: str | None = mutant
        muts = parse_mutant(mutant, row=row)
    else:
        muts = [(str(w), int(p), str(t)) for w, p, t in mutant]
        label = format_mutant(muts)
    seq = list(wt_seq)
    first, last = 1 + offset, len(wt_seq) + offset
    for w, p, t in muts:
        i = p - 1 - offset
        if not 0 <= i < len(seq):
            raise VariantError(
                f"position {p} is outside the {len(seq)}-residue wild type (positions {first}-{last})",
                mutant=label, row=row, position=p,
            )
        if wt_seq[i] != w:
            raise VariantError(
                f"the wild type has {wt_seq[i]!r} at position {p}, not {w!r}", mutant=label, row=row, position=p
            )
        seq[i] = t
    return "".join(seq)


def mutant_from_sequences(wt: str, seq: str, offset: int = 0) -> str:
    """DMS notation of ``seq`` relative to ``wt``: ``"A23G:K45R"``, positions
    1-based (plus ``offset``), sorted; ``"WT"`` when identical.

    Raises:
        VariantError: when the lengths differ (insertions and deletions have
            no DMS substitution notation).
    """
    if len(seq) != len(wt):
        raise VariantError(f"length {len(seq)} differs from the wild type's {len(wt)}")
    return format_mutant((w, i + 1 + offset, m) for i, (w, m) in enumerate(zip(wt, seq)) if w != m)


def nonsense_position(mutant: str | Sequence[Mutation]) -> int | None:
    """The first position substituted by a stop (``*``), or ``None`` for a missense variant.

    A nonsense variant truncates the protein after the residue before that position; a model of
    full-length sequences has no likelihood for it (see :func:`score_status`).
    """
    muts = parse_mutant(mutant) if isinstance(mutant, str) else list(mutant)
    stops = [p for w, p, t in muts if t == STOP and w != STOP]
    return min(stops) if stops else None


def score_status(mutant: str | Sequence[Mutation]) -> str:
    """Why a variant does or does not get a model score: ``"scored"``, or for a nonsense variant
    ``"not scored: stop at position P truncates the protein after residue P-1 (the model scores
    full-length sequences)"``. Scorers give such rows a missing score and this status, so a table
    with stops is scored in full and no row is silently dropped."""
    p = nonsense_position(mutant)
    if p is None:
        return "scored"
    return (f"not scored: stop at position {p} truncates the protein after residue {p - 1} "
            "(the model scores full-length sequences)")


# ================================================================ tables
def _find_column(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for name in wanted:
        if name in lower:
            return lower[name]
    return None


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def read_variants(
    path_or_df: Any,
    wt_seq: str,
    *,
    column: str | None = None,
    sequence_column: str | None = None,
    offset: int = 0,
):
    """Read and validate a table of variants.

    The input is a CSV/TSV path (``.tsv``/``.tab`` read tab-separated, gzip
    fine) or a pandas DataFrame.  It either has a mutant column (``column``,
    or the first column named ``mutant``, ``mutation(s)`` or ``variant(s)``,
    any case) or a column of full sequences (``sequence_column``, or one
    named ``sequence``/``seq``).  With both, every row's sequence must equal
    its mutant applied to the wild type.

    Returns:
        A copy of the table with the columns ``mutant`` (canonical DMS
        notation), ``sequence``, ``num_mutations`` (synonymous substitutions
        not counted) and ``positions`` (tuple of mutated 1-based positions)
        set, every row validated against ``wt_seq``.  Nonsense variants
        (a stop ``*``) are kept; scorers mark them (:func:`score_status`).

    Raises:
        VariantError: naming the 1-based data row (the first row after the
            header is row 1) and the problem; ``ValueError`` when no mutant
            or sequence column can be found.
    """
    import pandas as pd

    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df.copy()
        source = None
    else:
        source = os.fspath(path_or_df)
        name = source.lower().removesuffix(".gz")
        sep = "\t" if name.endswith((".tsv", ".tab")) else ","
        try:
            header = pd.read_csv(source, sep=sep, nrows=0).columns
            mcol = column if column is not None else _find_column(header, MUTANT_COLUMNS)
            scol = sequence_column if sequence_column is not None else _find_column(header, SEQUENCE_COLUMNS)
            df = pd.read_csv(source, sep=sep)
            text_cols = [c for c in dict.fromkeys((mcol, scol)) if c is not None and c in header]
            if text_cols:
                # the mutant/sequence cells as typed: "NA" or "null" must not turn into a
                # missing value (an empty cell is an error, anything else must parse)
                raw = pd.read_csv(source, sep=sep, usecols=text_cols, dtype=str, keep_default_na=False)
                for c in text_cols:
                    df[c] = raw[c]
        except pd.errors.EmptyDataError:
            raise VariantError("empty file: no header and no variants", source=source) from None
        except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise VariantError(f"not a readable CSV/TSV table ({first})", source=source) from None
    prefix = f"{source}: " if source else ""
    mcol = column if column is not None else _find_column(list(df.columns), MUTANT_COLUMNS)
    scol = sequence_column if sequence_column is not None else _find_column(list(df.columns), SEQUENCE_COLUMNS)
    for given, kind in ((column, "mutant"), (sequence_column, "sequence")):
        if given is not None and given not in df.columns:
            raise ValueError(f"{prefix}no {kind} column {given!r}; columns are {list(df.columns)}")
    if mcol is None and scol is None:
        raise ValueError(
            f"{prefix}no mutant column (one of {', '.join(MUTANT_COLUMNS)}) or sequence column "
            f"(one of {', '.join(SEQUENCE_COLUMNS)}); columns are {list(df.columns)}; pass column= or sequence_column="
        )

    mutants, seqs, nmut, positions = [], [], [], []
    m_vals = df[mcol].tolist() if mcol is not None else [None] * len(df)
    s_vals = df[scol].tolist() if scol is not None else [None] * len(df)
    for r, (mv, sv) in enumerate(zip(m_vals, s_vals), start=1):
        try:
            if mcol is not None:
                mtext = "" if _is_missing(mv) else str(mv)
                if not mtext.strip():
                    # an empty cell is more often a lost value than the wild type: say it
                    raise VariantError("empty mutant cell (write WT for the wild type)", row=r)
                seq = apply_mutant(wt_seq, mtext, row=r, offset=offset)
                muts = parse_mutant(mtext, row=r)
                if scol is not None and not _is_missing(sv) and str(sv).strip() and str(sv).strip() != seq:
                    raise VariantError(
                        "the sequence column differs from the mutant applied to the wild type", mutant=mtext, row=r
                    )
            else:
                if _is_missing(sv) or not str(sv).strip():
                    raise VariantError("empty sequence", row=r)
                seq = str(sv).strip()
                try:
                    canon = mutant_from_sequences(wt_seq, seq, offset)
                except VariantError as e:
                    raise VariantError(e.reason, row=r) from None
                muts = parse_mutant(canon, row=r)
        except VariantError as e:
            raise VariantError(e.reason, mutant=e.mutant, row=e.row, position=e.position, source=source) from None
        real = sorted((w, p, t) for w, p, t in muts if w != t)
        mutants.append(format_mutant(muts))
        seqs.append(seq)
        nmut.append(len(real))
        positions.append(tuple(sorted(p for _, p, _ in real)))
    df["mutant"] = mutants
    df["sequence"] = seqs
    df["num_mutations"] = nmut
    df["positions"] = positions
    return df


def check_substitution_letters(table, domain: str, *, source: str | None = None) -> None:
    """Refuse substitutions *to* an ambiguity code (``Y2Z``: Z is "E or Q", ``A3N`` in DNA)."""
    from ..domains import domains, get_domain

    bad = set(domains()[domain].ambiguity_codes) if domain in domains() else set()
    if not bad:
        return
    for r, m in enumerate(table["mutant"], start=1):
        for w, p, t in parse_mutant(m, row=r):
            if t in bad and t != w:
                raise VariantError(f"{t!r} at position {p} is an ambiguity code, not one "
                                   f"{get_domain(domain).letter}", mutant=m, row=r,
                                   position=p, source=source)


def variant_warnings(table, domain: str | None = None, *, source: str | None = None) -> list[str]:
    """What is legal but probably unintended in a validated table: the same variant on several rows.
    Also checks the substitution letters for ``domain`` (:func:`check_substitution_letters`)."""
    if domain is not None:
        check_substitution_letters(table, domain, source=source)
    first: dict[str, int] = {}
    dups: list[tuple[int, int]] = []
    for r, m in enumerate(table["mutant"], start=1):
        if m in first:
            dups.append((r, first[m]))
        else:
            first[m] = r
    if not dups:
        return []
    head = f"{source}: " if source else ""
    shown = ", ".join(f"row {r} repeats row {f} ({table['mutant'].iloc[r - 1]})" for r, f in dups[:3])
    more = f" and {len(dups) - 3} more" if len(dups) > 3 else ""
    return [f"{head}{len(dups)} duplicate variant row(s): {shown}{more}; each is scored"]


def single_mutant_scan(
    wt_seq: str,
    alphabet: str | Sequence[str] = "ACDEFGHIKLMNPQRSTVWY",
    *,
    include_synonymous: bool = False,
    offset: int = 0,
):
    """Every single substitution of ``wt_seq`` to a letter of ``alphabet``.

    Returns a pandas DataFrame with ``mutant``, ``position`` (1-based plus
    ``offset``), ``wt``, ``mt`` and ``sequence``, ordered by position and
    then by ``alphabet`` order: the rows of a DMS heatmap.
    """
    import pandas as pd

    letters = list(alphabet)
    rows = []
    for i, w in enumerate(wt_seq):
        p = i + 1 + offset
        for a in letters:
            if a == w and not include_synonymous:
                continue
            rows.append((f"{w}{p}{a}", p, w, a, wt_seq[:i] + a + wt_seq[i + 1 :]))
    return pd.DataFrame(rows, columns=["mutant", "position", "wt", "mt", "sequence"])


# ================================================================ BLOSUM62
#: Row/column order of :data:`BLOSUM62` (the NCBI order).
BLOSUM62_ALPHABET = "ARNDCQEGHILKMFPSTWYVBZX*"

_BLOSUM62_ROWS = """
 4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0 -2 -1  0 -4
-1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3 -1  0 -1 -4
-2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3  3  0 -1 -4
-2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3  4  1 -1 -4
 0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1 -3 -3 -2 -4
-1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2  0  3 -1 -4
-1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2  1  4 -1 -4
 0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3 -1 -2 -1 -4
-2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3  0  0 -1 -4
-1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3 -3 -3 -1 -4
-1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1 -4 -3 -1 -4
-1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2  0  1 -1 -4
-1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1 -3 -1 -1 -4
-2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1 -3 -3 -1 -4
-1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2 -2 -1 -2 -4
 1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2  0  0  0 -4
 0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0 -1 -1  0 -4
-3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3 -4 -3 -2 -4
-2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1 -3 -2 -1 -4
 0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4 -3 -2 -1 -4
-2 -1  3  4 -3  0  1 -1  0 -3 -4  0 -3 -3 -2  0 -1 -4 -3 -3  4  1 -1 -4
-1  0  0  1 -3  3  4 -2  0 -3 -3  1 -1 -3 -1  0 -1 -3 -2 -2  1  4 -1 -4
 0 -1 -1 -1 -2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2  0  0 -2 -1 -1 -1 -1 -1 -4
-4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4  1
"""

#: BLOSUM62 (Henikoff & Henikoff 1992) in half-bit units, as distributed by
#: NCBI: ``BLOSUM62[a][b]`` for one-letter codes of :data:`BLOSUM62_ALPHABET`.
BLOSUM62: dict[str, dict[str, int]] = {
    a: {b: int(v) for b, v in zip(BLOSUM62_ALPHABET, line.split())}
    for a, line in zip(BLOSUM62_ALPHABET, _BLOSUM62_ROWS.strip().splitlines())
}


def blosum62_score(wt: str, mutant: str | Sequence[Mutation], *, offset: int = 0) -> int:
    """The simple substitution baseline for a variant effect:
    ``score = sum over substituted positions p of BLOSUM62[wt[p], new[p]]``.

    Synonymous substitutions (``A23A``) are not substitutions and add 0, so
    the wild type scores 0.  The mutant is validated against ``wt`` first.

    Raises:
        VariantError: a wrong wild-type letter or position, or a letter
            BLOSUM62 has no entry for (e.g. ``U``, ``O``).
    """
    label = mutant if isinstance(mutant, str) else format_mutant(mutant)
    muts = parse_mutant(mutant) if isinstance(mutant, str) else list(mutant)
    apply_mutant(wt, muts, offset=offset)  # validates letters and positions
    total = 0
    for w, p, t in muts:
        if w == t:
            continue
        if w not in BLOSUM62 or t not in BLOSUM62:
            bad = w if w not in BLOSUM62 else t
            raise VariantError(f"BLOSUM62 has no entry for {bad!r}", mutant=label, position=p)
        total += BLOSUM62[w][t]
    return total


def blosum62_scores(wt: str, mutants: Iterable[str], *, offset: int = 0) -> list[int]:
    """:func:`blosum62_score` for many mutants (errors name the 1-based item)."""
    out = []
    for r, m in enumerate(mutants, start=1):
        try:
            out.append(blosum62_score(wt, m, offset=offset))
        except VariantError as e:
            raise VariantError(e.reason, mutant=e.mutant or m, row=r, position=e.position) from None
    return out
