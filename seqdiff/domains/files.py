"""Sample files: how each domain's generated sequences are written and read back.

Every writer is atomic (a temporary file in the same directory, then ``os.replace``), so a failed
write never leaves a partial file and an earlier file of the same name survives:

* ``fasta``: Biopython FASTA, header ``>id``;
* ``smi``: one ``SMILES<TAB>id`` line per sample;
* ``txt``: one line per sample; a backslash, newline or carriage return inside a sample is written
  ``\\\\``, ``\\n``, ``\\r`` (``read_text_samples`` undoes it).  Ids are not stored; they read back
  as ``"1"``, ``"2"``, ...

:data:`FORMATS` maps each format to its suffix, reader and writer; a domain names its format
(:attr:`seqdiff.domains.Domain.file_format`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..atomic import atomic_write

__all__ = ["SampleFormat", "FORMATS", "format_for_path", "atomic_write", "write_fasta_samples",
           "read_fasta_samples", "write_smi_samples", "read_smi_samples", "write_text_samples",
           "read_text_samples", "input_format", "read_inputs", "read_inputs_with_qualities"]


def _pairs(ids: Iterable[Any], seqs: Iterable[str]) -> Iterable[tuple[str, str]]:
    for rid, seq in zip(ids, seqs, strict=True):
        rid, seq = str(rid), str(seq)
        if "\n" in rid or "\r" in rid:
            raise ValueError(f"sample id {rid!r} contains a line break")
        yield rid, seq


def _read_lines(path: str | os.PathLike) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        from ..data.errors import DataError
        raise DataError(f"not UTF-8 text (byte {e.start + 1}: {e.reason})", path=os.fspath(path)) from None
    if not text:
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


# ---------------------------------------------------------------- FASTA
def write_fasta_samples(path: str | os.PathLike, ids: Iterable[Any], seqs: Iterable[str]) -> Path:
    """Write FASTA (Biopython, 60 columns, header ``>id``) atomically."""
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    def write(fh) -> None:
        for rid, seq in _pairs(ids, seqs):
            SeqIO.write(SeqRecord(Seq(seq), id=rid, description=""), fh, "fasta")

    return atomic_write(path, write)


def read_fasta_samples(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(ids, seqs)`` of a FASTA file (the id is the whole header line)."""
    from Bio import SeqIO

    ids, seqs = [], []
    with open(path, encoding="utf-8") as fh:
        for rec in SeqIO.parse(fh, "fasta"):
            ids.append(rec.description)
            seqs.append(str(rec.seq))
    return ids, seqs


# ---------------------------------------------------------------- SMILES
def write_smi_samples(path: str | os.PathLike, ids: Iterable[Any], seqs: Iterable[str]) -> Path:
    """Write ``SMILES<TAB>id`` lines atomically (an empty SMILES, an invalid
    generation, is kept as an empty field)."""

    def write(fh) -> None:
        for rid, smi in _pairs(ids, seqs):
            if any(c in smi for c in "\t\n\r"):
                raise ValueError(f"SMILES {smi!r} (id {rid!r}) contains a tab or line break")
            if "\t" in rid:
                raise ValueError(f"sample id {rid!r} contains a tab")
            fh.write(f"{smi}\t{rid}\n")

    return atomic_write(path, write)


def read_smi_samples(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(ids, smiles)`` of a ``.smi`` file: ``SMILES<TAB>id`` lines (a line
    without a tab splits at its first whitespace; no id gives ``"line N"``).
    Blank lines and ``#`` comments are skipped; a ``#`` line with a tab is a record (a generated,
    invalid string that starts with a bond symbol, as the samples writer puts it)."""
    ids, smis = [], []
    for n, line in enumerate(_read_lines(path), start=1):
        line = line.rstrip("\r")
        if not line.strip() or (line.startswith("#") and "\t" not in line):
            continue
        if "\t" in line:
            smi, rid = line.split("\t", 1)
        else:
            parts = line.split(None, 1)
            smi, rid = parts[0], (parts[1] if len(parts) > 1 else "")
        smis.append(smi.strip())
        ids.append(rid if rid else f"line {n}")
    return ids, smis


# ---------------------------------------------------------------- text
_ESC = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESC = {"\\": "\\", "n": "\n", "r": "\r"}


def _escape(text: str) -> str:
    return "".join(_ESC.get(c, c) for c in text)


def _unescape(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in _UNESC:
            out.append(_UNESC[line[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def write_text_samples(path: str | os.PathLike, ids: Iterable[Any], seqs: Iterable[str]) -> Path:
    """Write one sample per line atomically (``\\``, newline and carriage
    return escaped as ``\\\\``, ``\\n``, ``\\r``; ids are not stored)."""

    def write(fh) -> None:
        for _, text in _pairs(ids, seqs):
            fh.write(_escape(text) + "\n")

    return atomic_write(path, write)


def read_text_samples(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(ids, texts)``: one sample per line, escapes undone, ids ``"1"``, ``"2"``, ..."""
    texts = [_unescape(line) for line in _read_lines(path)]
    return [str(i) for i in range(1, len(texts) + 1)], texts


# ---------------------------------------------------------------- the table
@dataclass(frozen=True)
class SampleFormat:
    """A sample file format: its usual suffix, the other suffixes it is recognised by, and its
    atomic writer and reader."""

    name: str
    extension: str
    suffixes: tuple[str, ...]
    write: Callable[..., Path]
    read: Callable[..., tuple[list[str], list[str]]]


FORMATS: dict[str, SampleFormat] = {
    "txt": SampleFormat("txt", ".txt", (".txt",), write_text_samples, read_text_samples),
    "fasta": SampleFormat("fasta", ".fa", (".fa", ".fasta", ".fna", ".faa"), write_fasta_samples,
                          read_fasta_samples),
    "smi": SampleFormat("smi", ".smi", (".smi", ".smiles"), write_smi_samples, read_smi_samples),
}


def format_for_path(path: str | os.PathLike) -> str:
    """The sample file format (``txt``/``fasta``/``smi``) from the suffix."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt.name
    raise ValueError(f"cannot tell the sample format of {os.fspath(path)!r}; use .txt, .fa/.fasta or .smi")


# ---------------------------------------------------------------- sequences given to a job
# (`seqdiff correct --input`, `seqdiff score --fasta`): FASTA/FASTQ, .smi or text lines, by file name
def input_format(path: str | Path) -> str:
    """``fasta`` | ``smi`` | ``txt`` from the file name (a trailing ``.gz`` is ignored): FASTA as
    :func:`seqdiff.data.detect_format` recognises it, ``.smi``/``.smiles``, and text lines otherwise."""
    from ..data import detect_format

    fmt = detect_format(path)
    if fmt in ("fasta", "fastq"):
        return fmt
    name = Path(path).name.lower().removesuffix(".gz")
    return "smi" if fmt == "smiles" and name.endswith((".smi", ".smiles")) else "txt"


def read_inputs(path: str | Path) -> tuple[list[str], list[str], str]:
    """``(ids, sequences, format)`` of an input file. Text: one sequence per line (ids ``line N``; empty
    lines are kept, and pass through unchanged); FASTA and FASTQ: the record ids; ``.smi``:
    ``SMILES<TAB>id``."""
    ids, seqs, fmt, _ = read_inputs_with_qualities(path)
    return ids, seqs, fmt


def read_inputs_with_qualities(path: str | Path) -> tuple[list[str], list[str], str, list[list[int]] | None]:
    """:func:`read_inputs` plus the phred qualities of a FASTQ file (``None`` for other formats)."""
    from ..data import read_fastq_qualities, read_records

    fmt = input_format(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if fmt == "smi":
        ids, seqs = read_smi_samples(path)
        if not seqs:
            raise ValueError(f"{path}: no SMILES records")
        return ids, seqs, fmt, None
    if fmt == "fastq":
        recs = read_fastq_qualities(path)
        return [r[0] for r in recs], [r[1] for r in recs], fmt, [r[2] for r in recs]
    if fmt == "fasta":
        recs = list(read_records(path, fmt))
    else:
        recs = list(read_records(path, "text", mode="lines", keep_empty=True))
        recs = [r._replace(seq=r.seq.rstrip("\r")) for r in recs]
    return [r.id for r in recs], [r.seq for r in recs], fmt, None
