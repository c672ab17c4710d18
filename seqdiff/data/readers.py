"""Streaming readers for sequence files and record encoding.

Every reader yields :class:`Record` objects lazily, so a large file is never
held in memory by the reader itself.  A missing file raises
``FileNotFoundError`` when the reader is called; an empty or malformed file
raises :class:`~seqdiff.data.errors.DataError` (naming the file) while
iterating.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ..tokenizers.base import Tokenizer, TokenizerError, id_dtype
from .errors import DataError

__all__ = [
    "Record",
    "SkippedRecord",
    "EncodedRecords",
    "read_fasta",
    "read_genbank",
    "read_smiles",
    "read_text",
    "read_records",
    "detect_format",
    "encode_records",
    "iter_encode_records",
    "open_text",
]

log = logging.getLogger("seqdiff.data")


class Record(NamedTuple):
    """One sequence record.

    Attributes:
        id: the record's identifier (FASTA/GenBank id, SMILES name, or
            ``"line N"``/``"row N"``/``"chunk N"`` when the file has none).
        seq: the raw sequence/text, not yet validated.
        source: the file it came from (or a label for in-memory data).
        index: 0-based ordinal of the record within its source.
    """

    id: str
    seq: str
    source: str
    index: int


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open a UTF-8 text file for reading, gunzipping it if it is gzip
    compressed (detected from the magic bytes, not the extension)."""
    p = Path(path)
    if _is_gzip(p):
        return gzip.open(p, "rt", encoding="utf-8", newline=None)  # type: ignore[return-value]
    return open(p, "rt", encoding="utf-8", newline=None)


def _check_exists(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{os.fspath(path)}: no such file")
    if p.is_dir():
        raise DataError("is a directory, expected a file", path=path)
    return p


def _first_content_line(path: Path) -> tuple[int, str] | None:
    """(1-based line number, line) of the first non-blank line, or None."""
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    return lineno, line.rstrip("\r\n")
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read as UTF-8 text ({e})", path=path) from e
    return None


def _short(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


# ---------------------------------------------------------------- FASTA
def read_fasta(path: str | os.PathLike) -> Iterator[Record]:
    """Stream the records of a FASTA file (optionally gzip-compressed).

    Parsed with Biopython ``SeqIO``.  ``Record.id`` is the first word of the
    header; line breaks and spaces in the sequence are removed.

    Raises:
        DataError: empty file, no ``>`` header before the first sequence
            line, or a parse error.
    """
    p = _check_exists(path)
    return _iter_fasta(p, os.fspath(path))


def _iter_fasta(p: Path, source: str) -> Iterator[Record]:
    first = _first_content_line(p)
    if first is None:
        raise DataError("empty FASTA file (no records)", path=source)
    lineno, line = first
    if not line.startswith(">"):
        raise DataError(
            f"not a FASTA file: line {lineno} should start with a '>' header, got {_short(line)!r}", path=source
        )
    count = 0
    for rec in _seqio_records(p, source, "fasta"):
        yield Record(rec.id, str(rec.seq), source, count)
        count += 1
    if count == 0:  # pragma: no cover - guarded by the header check
        raise DataError("no FASTA records", path=source)


def _seqio_records(p: Path, source: str, fmt: str) -> Iterator[Any]:
    """Biopython ``SeqIO`` records of ``fmt``; a parse error becomes a :class:`DataError` naming the file
    and the 1-based number of the record it stopped at."""
    from Bio import SeqIO

    count = 0
    with open_text(p) as fh:
        it = SeqIO.parse(fh, fmt)
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except (ValueError, UnicodeDecodeError, EOFError) as e:
                raise DataError(f"malformed {fmt.upper()} record: {e}", path=source, record=count + 1) from e
            count += 1
            yield rec


# -------------------------------------------------------------- GenBank
def read_genbank(path: str | os.PathLike) -> Iterator[Record]:
    """Stream the records of a GenBank flat file (optionally gzipped).

    ``Record.id`` is the accession.version (Biopython's ``SeqRecord.id``).

    Raises:
        DataError: empty file, no ``LOCUS`` record, a parse error, or a
            record without sequence data (e.g. a CONTIG-only record).
    """
    p = _check_exists(path)
    return _iter_genbank(p, os.fspath(path))


def _iter_genbank(p: Path, source: str) -> Iterator[Record]:
    from Bio import SeqIO

    if _first_content_line(p) is None:
        raise DataError("empty GenBank file (no records)", path=source)
    count = 0
    with open_text(p) as fh:
        it = SeqIO.parse(fh, "genbank")
        while True:
            try:
                rec = next(it)
            except StopIteration:
                break
            except (ValueError, UnicodeDecodeError, EOFError, AttributeError, IndexError, AssertionError) as e:
                raise DataError(f"malformed GenBank record: {e}", path=source, record=count + 1) from e
            try:
                seq = str(rec.seq)
            except ValueError as e:  # Bio.Seq.UndefinedSequenceError
                raise DataError(f"record has no sequence data ({e})", path=source, record=rec.id) from e
            yield Record(rec.id, seq, source, count)
            count += 1
    if count == 0:
        raise DataError("no GenBank records found (expected a LOCUS line)", path=source)


# --------------------------------------------------------------- SMILES
_SMILES_HEADER_WORDS = {"smiles", "smile", "canonical_smiles", "isomeric_smiles"}
_ID_COLUMN_NAMES = ("id", "name", "mol_id", "molecule_id", "compound_id", "chembl_id", "zinc_id", "title")


def _smiles_format(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".csv":
        return "csv"
    if ext == ".tsv":
        return "tsv"
    return "smi"


def read_smiles(
    path: str | os.PathLike,
    column: str | None = None,
    *,
    id_column: str | None = None,
    chunksize: int = 10_000,
) -> Iterator[Record]:
    """Stream SMILES records from a ``.smi`` or ``.csv``/``.tsv`` file (``.gz`` ok).

    * ``.smi`` (and any other extension): one molecule per line, the first
      whitespace-separated field is the SMILES, the rest of the line (if any)
      the id.  Blank lines and ``#`` comments are skipped; a first line whose
      first field is ``smiles`` (any case) is taken as a header.  Lines
      without an id get ``"line N"``.
    * ``.csv``/``.tsv``: read with pandas in chunks.  The SMILES column is
      ``column`` or auto-detected (a column named ``smiles`` in any case, or
      the only column whose name contains "smiles").  The id column is
      ``id_column`` or an ``id``/``name``-like column; otherwise ``"row N"``
      (1-based data row).  Empty cells give empty sequences, which
      :func:`encode_records` reports as invalid.

    Raises:
        DataError: empty file, missing/ambiguous SMILES column.
    """
    p = _check_exists(path)
    fmt = _smiles_format(p)
    if fmt == "smi":
        if column is not None or id_column is not None:
            raise ValueError("column/id_column only apply to .csv/.tsv SMILES files")
        return _iter_smi(p, os.fspath(path))
    return _iter_smiles_table(p, os.fspath(path), "," if fmt == "csv" else "\t", column, id_column, chunksize)


def _iter_smi(p: Path, source: str) -> Iterator[Record]:
    try:
        yield from _iter_smi_lines(p, source)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"not a readable SMILES file ({type(e).__name__}: {e})", path=source) from None


def _iter_smi_lines(p: Path, source: str) -> Iterator[Record]:
    count = 0
    first = True
    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split(None, 1)
            if first:
                first = False
                if parts[0].lower() in _SMILES_HEADER_WORDS:
                    continue
            rid = parts[1].strip() if len(parts) > 1 else f"line {lineno}"
            yield Record(rid, parts[0], source, count)
            count += 1
    if count == 0:
        raise DataError("no SMILES records (empty file)", path=source)


def _pick_column(columns: list[str], wanted: str | None, source: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"no column {wanted!r}; columns are {columns}", path=source)
        return wanted
    exact = [c for c in columns if c.strip().lower() == "smiles"]
    if len(exact) == 1:
        return exact[0]
    loose = [c for c in columns if "smiles" in c.lower()]
    if len(loose) == 1:
        return loose[0]
    if not exact and not loose:
        raise DataError(f"no SMILES column found (columns: {columns}); pass column=...", path=source)
    raise DataError(f"several candidate SMILES columns {exact or loose}; pass column=...", path=source)


def _iter_smiles_table(
    p: Path, source: str, sep: str, column: str | None, id_column: str | None, chunksize: int
) -> Iterator[Record]:
    import pandas as pd

    try:
        header = pd.read_csv(p, sep=sep, nrows=0, compression="infer")
    except pd.errors.EmptyDataError as e:
        raise DataError("empty SMILES table", path=source) from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"malformed table: {e}", path=source) from e
    columns = [str(c) for c in header.columns]
    col = _pick_column(columns, column, source)
    if id_column is not None:
        if id_column not in columns:
            raise DataError(f"no id column {id_column!r}; columns are {columns}", path=source)
        idcol = id_column
    else:
        lower = {c.lower(): c for c in columns}
        idcol = next((lower[n] for n in _ID_COLUMN_NAMES if n in lower), None)
    usecols = [col] if idcol is None or idcol == col else [col, idcol]
    count = 0
    try:
        reader = pd.read_csv(
            p, sep=sep, usecols=usecols, dtype=str, keep_default_na=False, chunksize=chunksize, compression="infer"
        )
        for chunk in reader:
            smiles = chunk[col].tolist()
            ids = chunk[idcol].tolist() if idcol is not None else None
            for j, smi in enumerate(smiles):
                row = count + 1
                rid = ids[j].strip() if ids is not None and ids[j].strip() else f"row {row}"
                yield Record(rid, smi.strip(), source, count)
                count += 1
    except pd.errors.ParserError as e:
        raise DataError(f"malformed table near data row {count + 1}: {e}", path=source, record=count + 1) from e
    if count == 0:
        raise DataError("no SMILES records (table has a header but no rows)", path=source)


# ----------------------------------------------------------------- text
def read_text(
    path: str | os.PathLike,
    *,
    mode: str = "lines",
    chunk_chars: int = 1 << 20,
    keep_empty: bool = False,
) -> Iterator[Record]:
    """Stream a plain-text file (``.gz`` ok).

    Args:
        mode: ``"lines"``: each line (newline removed) is a record with id
            ``"line N"``; empty lines are skipped unless ``keep_empty``.
            ``"file"``: the whole file is one record (id = file name).
            ``"chunks"``: consecutive pieces of ``chunk_chars`` characters
            (newlines kept verbatim), ids ``"chunk N"``; use this for corpora
            stored as one huge line (e.g. text8) so that memory stays bounded.
        chunk_chars: chunk size for ``mode="chunks"``.
        keep_empty: keep empty lines in ``"lines"`` mode.

    Raises:
        DataError: the file is empty (or has only empty lines in line mode)
            or is not valid UTF-8.
    """
    if mode not in ("lines", "file", "chunks"):
        raise ValueError(f"mode must be 'lines', 'file' or 'chunks', got {mode!r}")
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be >= 1")
    p = _check_exists(path)
    return _iter_text(p, os.fspath(path), mode, chunk_chars, keep_empty)


def _iter_text(p: Path, source: str, mode: str, chunk_chars: int, keep_empty: bool) -> Iterator[Record]:
    count = 0
    try:
        with open_text(p) as fh:
            if mode == "lines":
                for lineno, line in enumerate(fh, start=1):
                    line = line.rstrip("\n")
                    if not line and not keep_empty:
                        continue
                    yield Record(f"line {lineno}", line, source, count)
                    count += 1
            elif mode == "file":
                text = fh.read()
                if text:
                    yield Record(p.name, text, source, 0)
                    count = 1
            else:
                while True:
                    piece = fh.read(chunk_chars)
                    if not piece:
                        break
                    yield Record(f"chunk {count + 1}", piece, source, count)
                    count += 1
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read as UTF-8 text after {count} record(s) ({e})", path=source) from e
    if count == 0:
        raise DataError("empty text file (no records)", path=source)


# ------------------------------------------------------------- dispatch
_FORMAT_BY_EXT = {
    ".fastq": "fastq",
    ".fq": "fastq",
    ".fa": "fasta",
    ".fasta": "fasta",
    ".fna": "fasta",
    ".ffn": "fasta",
    ".faa": "fasta",
    ".frn": "fasta",
    ".fas": "fasta",
    ".mpfa": "fasta",
    ".gb": "genbank",
    ".gbk": "genbank",
    ".gbff": "genbank",
    ".genbank": "genbank",
    ".smi": "smiles",
    ".smiles": "smiles",
    ".csv": "smiles",
    ".tsv": "smiles",
    ".txt": "text",
    ".text": "text",
}

def read_fastq_qualities(path: str | os.PathLike) -> list[tuple[str, str, list[int]]]:
    """``(id, sequence, phred qualities)`` of every record of a FASTQ file (Sanger/Illumina 1.8+ encoding,
    offset 33; optionally gzip-compressed), parsed with Biopython ``SeqIO``.

    Raises:
        DataError: empty file, a first line that is not an ``@`` header, or a malformed record
            (naming the 1-based record number).
    """
    p = _check_exists(path)
    source = os.fspath(path)
    first = _first_content_line(p)
    if first is None:
        raise DataError("empty FASTQ file (no records)", path=source)
    lineno, line = first
    if not line.startswith("@"):
        raise DataError(f"not a FASTQ file: line {lineno} should start with an '@' header, got {_short(line)!r}",
                        path=source)
    return [(rec.id, str(rec.seq), [int(q) for q in rec.letter_annotations["phred_quality"]])
            for rec in _seqio_records(p, source, "fastq")]


def read_fastq(path: str | os.PathLike) -> Iterator[Record]:
    """The records of a FASTQ file as :class:`Record` (qualities dropped; see
    :func:`read_fastq_qualities`)."""
    source = os.fspath(path)
    for i, (rid, seq, _) in enumerate(read_fastq_qualities(path)):
        yield Record(rid, seq, source, i)


_READERS: dict[str, Callable[..., Iterator[Record]]] = {
    "fasta": read_fasta,
    "fastq": read_fastq,
    "genbank": read_genbank,
    "smiles": read_smiles,
    "text": read_text,
}


def detect_format(path: str | os.PathLike) -> str:
    """Guess ``"fasta"``, ``"fastq"``, ``"genbank"``, ``"smiles"`` or ``"text"`` from the
    file extension (a trailing ``.gz`` is ignored); unknown extensions are
    treated as text."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return _FORMAT_BY_EXT.get(suffixes[-1] if suffixes else "", "text")


def read_records(path: str | os.PathLike, format: str | None = None, **kwargs) -> Iterator[Record]:
    """Read any supported file; ``format`` defaults to :func:`detect_format`.
    Extra keyword arguments go to the specific reader."""
    fmt = format or detect_format(path)
    if fmt not in _READERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(_READERS)}")
    reader = _READERS[fmt]
    import inspect
    params = inspect.signature(reader).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:  # options meant for another format: this file is not the kind of data expected
        raise ValueError(f"{path}: a {fmt} file (by its name), not the kind of file expected here "
                         f"(options {', '.join(unknown)} are for other formats)")
    return reader(path, **kwargs)


# ------------------------------------------------------------- encoding
@dataclass(frozen=True)
class SkippedRecord:
    """A record left out by ``skip_invalid=True`` and why."""

    id: str
    source: str
    index: int
    reason: str
    position: int | None = None


@dataclass
class EncodedRecords:
    """Token-id arrays for the records that encoded cleanly, plus an account
    of the records that were skipped.

    Attributes:
        arrays: one 1-D numpy array of data ids per kept record.
        ids, sources, indices: the kept records' ids, files and 0-based
            indices within their file (parallel to ``arrays``).
        skipped: the records left out (only with ``skip_invalid=True``).
    """

    arrays: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.arrays[i]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.arrays)

    @property
    def num_skipped(self) -> int:
        """How many records were skipped."""
        return len(self.skipped)

    @property
    def skipped_ids(self) -> list[str]:
        """Ids of the skipped records, in input order."""
        return [s.id for s in self.skipped]

    @property
    def lengths(self) -> np.ndarray:
        """Token count of each kept record."""
        return np.array([len(a) for a in self.arrays], dtype=np.int64)

    def summary(self) -> str:
        """One line suitable for a log."""
        msg = f"{len(self.arrays)} records encoded, {self.num_skipped} skipped"
        if self.skipped:
            shown = ", ".join(repr(i) for i in self.skipped_ids[:10])
            more = "" if self.num_skipped <= 10 else f" (+{self.num_skipped - 10} more)"
            msg += f": {shown}{more}"
        return msg


def iter_encode_records(
    records: Iterable[Record],
    tokenizer: Tokenizer,
    *,
    skip_invalid: bool = False,
    check_smiles: bool = False,
    transform: Callable[[str], str] | None = None,
    skipped: list[SkippedRecord] | None = None,
) -> Iterator[tuple[Record, np.ndarray]]:
    """Lazily encode records, yielding ``(record, ids)`` pairs.

    Same rules as :func:`encode_records`; skipped records are appended to the
    ``skipped`` list (if given) and logged as warnings on the
    ``seqdiff.data`` logger.
    """
    if check_smiles:
        from ..tokenizers.smiles import is_valid_smiles
    dtype = id_dtype(tokenizer.vocab_size)
    for rec in records:
        problem: DataError | None = None
        arr: np.ndarray | None = None
        seq = rec.seq
        if transform is not None:
            try:
                seq = transform(seq)
            except (ValueError, TypeError) as e:
                problem = DataError(f"transform failed: {e}", path=rec.source, record=rec.id)
        if problem is None and not seq:
            problem = DataError("empty sequence", path=rec.source, record=rec.id)
        if problem is None:
            try:
                arr = tokenizer.encode_array(seq, name=rec.id).astype(dtype, copy=False)
            except TokenizerError as e:
                problem = DataError(e.reason, path=rec.source, record=rec.id, position=e.position)
        if problem is None and check_smiles and not is_valid_smiles(seq):
            problem = DataError("RDKit cannot parse this SMILES", path=rec.source, record=rec.id)
        if problem is not None:
            if not skip_invalid:
                raise problem
            log.warning("skipping invalid record: %s", problem)
            if skipped is not None:
                skipped.append(SkippedRecord(rec.id, rec.source, rec.index, problem.reason, problem.position))
            continue
        yield rec, arr  # type: ignore[misc]


def encode_records(
    records: Iterable[Record],
    tokenizer: Tokenizer,
    *,
    skip_invalid: bool = False,
    check_smiles: bool = False,
    transform: Callable[[str], str] | None = None,
) -> EncodedRecords:
    """Encode records into token-id arrays.

    Args:
        records: e.g. the output of a reader.
        tokenizer: any :class:`~seqdiff.tokenizers.Tokenizer`.
        skip_invalid: if ``False`` (default) the first invalid record raises
            :class:`DataError` naming the file, record id and 1-based
            position; if ``True`` invalid records are skipped, logged, and
            listed in ``result.skipped`` (``num_skipped``, ``skipped_ids``).
        check_smiles: additionally require RDKit to parse each sequence.
        transform: optional function applied to each sequence before
            encoding (e.g. :func:`~seqdiff.tokenizers.canonicalize`); a
            ``ValueError`` from it makes the record invalid.

    An empty sequence is always invalid.
    """
    out = EncodedRecords()
    for rec, arr in iter_encode_records(
        records,
        tokenizer,
        skip_invalid=skip_invalid,
        check_smiles=check_smiles,
        transform=transform,
        skipped=out.skipped,
    ):
        out.arrays.append(arr)
        out.ids.append(rec.id)
        out.sources.append(rec.source)
        out.indices.append(rec.index)
    if out.skipped:
        log.warning("%s", out.summary())
    return out
