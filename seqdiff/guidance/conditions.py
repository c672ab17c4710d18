"""Condition labels for conditional training: read them beside the sequences, turn them into
classes (names, or numeric values binned), and map a user's condition to a class index.

Sources: a CSV/TSV file (``.csv``, ``.tsv``, optionally ``.gz``) with a sequence column and the
condition column, or a FASTA file whose headers carry ``key=value`` fields
(``>seq1 activity=high gc=0.41``), read with Biopython.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.errors import DataError

__all__ = ["read_labelled", "assign_classes", "class_index", "bin_labels", "SEQUENCE_COLUMNS"]

SEQUENCE_COLUMNS = ("sequence", "smiles", "seq", "SMILES", "Sequence")
_FIELD = re.compile(r"([A-Za-z_][\w.\-]*)=(\"[^\"]*\"|\S+)")


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _base_suffix(path: Path) -> str:
    return Path(path.stem).suffix.lower() if path.suffix == ".gz" else path.suffix.lower()


def read_labelled(path: str | Path, column: str, sequence_column: str = "", limit: int = 0
                  ) -> tuple[list[str], list[str], list[str]]:
    """``(ids, sequences, values)`` of a labelled file; ``DataError`` naming the file and record for
    a missing column or an empty value."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("file not found", path=str(path))
    suffix = _base_suffix(p)
    ids: list[str] = []
    seqs: list[str] = []
    vals: list[str] = []
    if suffix in (".fa", ".fasta", ".fna", ".faa"):
        from Bio import SeqIO
        with _open_text(p) as fh:
            for k, rec in enumerate(SeqIO.parse(fh, "fasta")):
                fields = {m.group(1): m.group(2).strip('"') for m in _FIELD.finditer(rec.description)}
                if column not in fields:
                    raise DataError(f"no `{column}=` field in the header", path=str(path), record=rec.id)
                ids.append(rec.id)
                seqs.append(str(rec.seq).replace(" ", ""))
                vals.append(fields[column])
                if limit and len(ids) >= limit:
                    break
        if not ids:
            raise DataError("no FASTA records", path=str(path))
        return ids, seqs, vals
    if suffix not in (".csv", ".tsv", ".txt"):
        raise DataError("labelled data must be CSV/TSV (a sequence and a condition column) or FASTA with "
                        "key=value header fields", path=str(path))
    with _open_text(p) as fh:
        reader = csv.DictReader(fh, delimiter="\t" if suffix in (".tsv", ".txt") else ",")
        cols = reader.fieldnames or []
        if column not in cols:
            raise DataError(f"no column {column!r} (columns: {', '.join(cols)})", path=str(path))
        seq_col = sequence_column or next((c for c in SEQUENCE_COLUMNS if c in cols), cols[0])
        if seq_col not in cols:
            raise DataError(f"no sequence column {seq_col!r} (columns: {', '.join(cols)})", path=str(path))
        for k, row in enumerate(reader, start=1):
            seq, val = (row.get(seq_col) or "").strip(), (row.get(column) or "").strip()
            if not seq:
                raise DataError(f"empty {seq_col!r}", path=str(path), record=k)
            if not val:
                raise DataError(f"no value in column {column!r}", path=str(path), record=k)
            ids.append(str(k))
            seqs.append(seq)
            vals.append(val)
            if limit and len(ids) >= limit:
                break
    if not ids:
        raise DataError("no rows", path=str(path))
    return ids, seqs, vals


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Names of the bins cut by increasing ``edges``: ``<e0``, ``e0..e1``, …, ``>=ek``."""
    e = [float(v) for v in edges]
    return [f"<{_fmt(e[0])}"] + [f"{_fmt(a)}..{_fmt(b)}" for a, b in zip(e, e[1:])] + [f">={_fmt(e[-1])}"]


def _numbers(values: Sequence[str], path: str | None) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values):
        try:
            out[k] = float(v)
        except ValueError:
            raise DataError(f"condition value {v!r} is not a number (binned conditions need numbers)",
                            path=path, record=k + 1) from None
        if not math.isfinite(out[k]):
            raise DataError(f"condition value {v!r} is not finite", path=path, record=k + 1)
    return out


def assign_classes(values: Sequence[str], cond, path: str | None = None
                   ) -> tuple[np.ndarray, list[str], list[float] | None]:
    """Class index per value, the class names, and the bin edges (``None`` for named classes),
    from a :class:`~seqdiff.training.config.ConditionConfig` (its ``bins``/``quantiles``; recorded
    ``classes`` are reused, so validation data gets the training classes)."""
    if cond.bins or cond.quantiles:
        x = _numbers(values, path)
        if cond.bins:
            edges = [float(b) for b in cond.bins]
        else:
            qs = np.quantile(x, np.linspace(0, 1, cond.quantiles + 1)[1:-1])
            edges = sorted({float(round(q, 6)) for q in qs})
        idx = np.searchsorted(np.asarray(edges), x, side="right")
        return idx.astype(np.int64), bin_labels(edges), edges
    classes = [str(c) for c in cond.classes] if cond.classes else sorted(set(values))
    pos = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(values), dtype=np.int64)
    for k, v in enumerate(values):
        if v not in pos:
            raise DataError(f"condition {v!r} is not one of the recorded classes ({', '.join(classes)})",
                            path=path, record=k + 1)
        out[k] = pos[v]
    return out, classes, None


def class_index(cond, value: Any) -> int:
    """Index of ``value`` among a trained model's classes: a class name, or a number inside a bin
    of a binned condition. ``ValueError`` (one line) naming what the model knows."""
    classes = [str(c) for c in (cond.classes or [])]
    if not classes:
        raise ValueError("this model was not trained with conditions; --condition needs a conditional model "
                         "(train one with `condition.column` in the recipe)")
    text = str(value).strip()
    if text in classes:
        return classes.index(text)
    if cond.bins:
        try:
            v = float(text)
        except ValueError:
            v = None
        if v is not None and math.isfinite(v):
            return bisect.bisect_right([float(b) for b in cond.bins], v)
    what = f"column {cond.column!r}" if cond.column else "its condition"
    raise ValueError(f"condition {text!r} is not one this model was trained on ({what}: "
                     f"{', '.join(classes)}{'; or a number' if cond.bins else ''})")
