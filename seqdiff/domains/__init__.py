"""What each sequence domain needs around a model: tokenizer defaults, sample
files and model-free metrics.

:data:`DOMAINS` maps ``"text"``, ``"dna"``, ``"protein"`` and ``"smiles"`` to a
:class:`Domain`:

=========  ===============  ======  =================================================
domain     tokenizer        file    metrics (``metrics(samples, reference, training)``)
=========  ===============  ======  =================================================
text       ``char`` text8   txt     mean length, character entropy, word statistics
dna        ``dna``          fasta   GC, 3-mer JS to reference and shuffled baseline,
                                    TATA-box (JASPAR TBP) hit density
protein    ``protein``      fasta   3-mer JS to reference and shuffled baseline,
                                    composition JS
smiles     ``smiles``       smi     validity, uniqueness, novelty, FCD (optional)
=========  ===============  ======  =================================================

Sample files are written atomically (a temporary file in the same
directory, then ``os.replace``), so a failed write never leaves a partial
file behind:

* ``fasta``: Biopython FASTA, header ``>id``;
* ``smi``: one ``SMILES<TAB>id`` line per sample;
* ``txt``: one line per sample; a backslash, newline or carriage return
  inside a sample is written ``\\\\``, ``\\n``, ``\\r`` (``read_samples``
  undoes it).  Ids are not stored; they read back as ``"1"``, ``"2"``, ...

Submodules: :mod:`.sequence` (k-mer spectra, JS distance), :mod:`.motifs`
(JASPAR profiles and scanning), :mod:`.smiles` (RDKit metrics and FCD) and
:mod:`.text`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import sequence as _seq

__all__ = [
    "Domain",
    "DOMAINS",
    "get_domain",
    "domain_for_path",
    "write_samples",
    "read_samples",
    "write_fasta_samples",
    "read_fasta_samples",
    "write_smi_samples",
    "read_smi_samples",
    "write_text_samples",
    "read_text_samples",
    "text_metrics",
    "dna_metrics",
    "protein_metrics",
    "smiles_metrics",
    "TATA_THRESHOLD",
]


# ================================================================ atomic files
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Run ``write(fh)`` on a temporary text file next to ``path``, then
    rename it into place; on any error the temporary file is removed and an
    existing ``path`` is left untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


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

    return _atomic_write(path, write)


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

    return _atomic_write(path, write)


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

    return _atomic_write(path, write)


def read_text_samples(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(ids, texts)``: one sample per line, escapes undone, ids ``"1"``, ``"2"``, ..."""
    texts = [_unescape(line) for line in _read_lines(path)]
    return [str(i) for i in range(1, len(texts) + 1)], texts


# ================================================================ metrics
def _maybe(fn: Callable[[], Any]) -> Any:
    """The value, or ``None`` when the statistic is undefined (no k-mers, ...)."""
    try:
        return fn()
    except ValueError:
        return None


def _mean_len(samples: Sequence[str]) -> float:
    return float(np.mean([len(s) for s in samples])) if samples else 0.0


def text_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                 training: Sequence[str] | None = None) -> dict[str, Any]:
    """``num_samples``, ``mean_length`` (characters), ``char_entropy`` (bits),
    word statistics (:func:`~seqdiff.domains.text.word_stats`, with
    ``oov_rate`` against ``training`` or else ``reference``) and, with a
    reference, ``char_entropy_reference``."""
    from .text import char_entropy, word_stats

    samples = [str(s) for s in samples]
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "mean_length": _mean_len(samples),
        "char_entropy": _maybe(lambda: char_entropy(samples)),
    }
    vocab_source = training if training is not None else reference
    ws = word_stats(samples, vocab_source)
    out.update({k: ws[k] for k in ("num_words", "mean_word_length", "type_token_ratio")})
    if "oov_rate" in ws:
        out["oov_rate"] = ws["oov_rate"]
    if reference is not None:
        out["char_entropy_reference"] = _maybe(lambda: char_entropy(reference))
    return out


def _kmer_block(samples: list[str], reference: Sequence[str] | None, alphabet: str, k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if reference is None:
        return out
    reference = [str(s) for s in reference]
    shuffled = _seq.shuffled_baseline(samples, np.random.default_rng(0))
    out[f"kmer{k}_js"] = _maybe(lambda: _seq.kmer_js(samples, reference, k, alphabet))
    out[f"kmer{k}_js_shuffled"] = _maybe(lambda: _seq.kmer_js(shuffled, reference, k, alphabet))
    return out


#: Relative-score threshold of the TATA-box (JASPAR TBP) density in :func:`dna_metrics`.
TATA_THRESHOLD = 0.9


def dna_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                training: Sequence[str] | None = None, *, k: int = 3, motifs: bool = True) -> dict[str, Any]:
    """``num_samples``, ``mean_length``, ``gc_content``; with a reference
    ``gc_content_reference``, ``kmer3_js`` (JS distance of 3-mer spectra,
    samples vs reference) and ``kmer3_js_shuffled`` (the same for each
    sample's letters shuffled, seed 0: what composition alone gives; a
    model with real k-mer structure scores below it); with ``motifs`` and
    the JASPAR file present, ``tata_per_kb`` (JASPAR TBP hits, both strands,
    relative score >= :data:`TATA_THRESHOLD`, per 1,000 bases) and
    ``tata_per_kb_reference``.  (At the usual 0.8 the short, AT-rich TATA
    profile matches almost everywhere; at 0.9 real fly promoter regions
    have about 1.5x the density of their own shuffles.)"""
    samples = [str(s) for s in samples]
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "mean_length": _mean_len(samples),
        "gc_content": _maybe(lambda: _seq.gc_content(samples)),
    }
    if reference is not None:
        out["gc_content_reference"] = _maybe(lambda: _seq.gc_content(reference))
    out.update(_kmer_block(samples, reference, _seq.DNA_ALPHABET, k))
    if motifs:
        from . import motifs as _motifs

        try:
            tbp = _motifs.find_motif("TBP")
        except (FileNotFoundError, KeyError):
            tbp = None
        if tbp is not None:
            def per_kb(seqs: Sequence[str]) -> float | None:
                bases = sum(len(x) for x in seqs)
                hits = sum(len(_motifs.scan(x, tbp, TATA_THRESHOLD)) for x in seqs)
                return 1000.0 * hits / bases if bases else None

            out["tata_per_kb"] = per_kb(samples)
            if reference is not None:
                out["tata_per_kb_reference"] = per_kb([str(x) for x in reference])
    return out


def protein_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                    training: Sequence[str] | None = None, *, k: int = 3) -> dict[str, Any]:
    """``num_samples``, ``mean_length``; with a reference ``kmer3_js``,
    ``kmer3_js_shuffled`` (as for DNA, over the 20 canonical amino acids)
    and ``composition_js`` (JS distance of amino-acid compositions)."""
    samples = [str(s) for s in samples]
    out: dict[str, Any] = {"num_samples": len(samples), "mean_length": _mean_len(samples)}
    out.update(_kmer_block(samples, reference, _seq.PROTEIN_ALPHABET, k))
    if reference is not None:
        out["composition_js"] = _maybe(lambda: _seq.composition_js(samples, reference, _seq.PROTEIN_ALPHABET))
    return out


def smiles_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                   training: Iterable[str] | None = None) -> dict[str, Any]:
    """:func:`~seqdiff.domains.smiles.smiles_report`: validity, uniqueness,
    novelty (with ``training``) and FCD (with ``reference``; ``None`` and
    ``fcd_error`` when ``fcd_torch`` is missing)."""
    from .smiles import smiles_report

    return smiles_report(list(samples), training=training, reference=reference)


# ================================================================ registry
@dataclass(frozen=True)
class Domain:
    """Everything domain-specific a job needs.

    Attributes:
        name: ``"text"``, ``"dna"``, ``"protein"`` or ``"smiles"``.
        tokenizer_kind, tokenizer_kwargs: defaults for
            :func:`seqdiff.tokenizers.build_tokenizer` (SMILES additionally
            needs ``smiles=`` training strings or ``tokens=``).
        file_format: ``"txt"``, ``"fasta"`` or ``"smi"``; ``extension`` its suffix.
        metrics: ``metrics(samples, reference=None, training=None) -> dict``.
        write_samples: ``write_samples(path, ids, seqs)`` (atomic).
        read_samples: ``read_samples(path) -> (ids, seqs)``.
    """

    name: str
    tokenizer_kind: str
    tokenizer_kwargs: dict[str, Any] = field(hash=False)
    file_format: str
    extension: str
    metrics: Callable[..., dict[str, Any]] = field(repr=False)
    write_samples: Callable[..., Path] = field(repr=False)
    read_samples: Callable[..., tuple[list[str], list[str]]] = field(repr=False)

    def build_tokenizer(self, **overrides: Any):
        """The default tokenizer, with keyword overrides."""
        from ..tokenizers import build_tokenizer

        return build_tokenizer(self.tokenizer_kind, **{**self.tokenizer_kwargs, **overrides})

    def parse_template(self, text: str, tokenizer=None, *, max_len: int | None = None):
        """:func:`seqdiff.jobs.template.parse_template` for this domain."""
        from ..jobs.template import parse_template

        return parse_template(text, tokenizer if tokenizer is not None else self.build_tokenizer(),
                              domain=self.name, max_len=max_len)


DOMAINS: dict[str, Domain] = {
    "text": Domain("text", "char", {}, "txt", ".txt", text_metrics, write_text_samples, read_text_samples),
    "dna": Domain("dna", "dna", {}, "fasta", ".fa", dna_metrics, write_fasta_samples, read_fasta_samples),
    "protein": Domain("protein", "protein", {}, "fasta", ".fa", protein_metrics, write_fasta_samples,
                      read_fasta_samples),
    "smiles": Domain("smiles", "smiles", {}, "smi", ".smi", smiles_metrics, write_smi_samples, read_smi_samples),
}

_FORMAT_BY_SUFFIX = {".txt": "txt", ".fa": "fasta", ".fasta": "fasta", ".fna": "fasta", ".faa": "fasta",
                     ".smi": "smi", ".smiles": "smi"}
_READERS = {"txt": read_text_samples, "fasta": read_fasta_samples, "smi": read_smi_samples}
_WRITERS = {"txt": write_text_samples, "fasta": write_fasta_samples, "smi": write_smi_samples}


def get_domain(name: str) -> Domain:
    """The :class:`Domain` for ``name`` (``KeyError`` listing the known ones)."""
    try:
        return DOMAINS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown domain {name!r}; expected one of {', '.join(DOMAINS)}") from None


def domain_for_path(path: str | os.PathLike) -> str:
    """The sample file format (``txt``/``fasta``/``smi``) from the suffix."""
    fmt = _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the sample format of {os.fspath(path)!r}; use .txt, .fa/.fasta or .smi")
    return fmt


def write_samples(path: str | os.PathLike, ids: Iterable[Any], seqs: Iterable[str], *,
                  domain: str | None = None) -> Path:
    """Write samples in ``domain``'s format, or the format the suffix names."""
    fmt = get_domain(domain).file_format if domain is not None else domain_for_path(path)
    return _WRITERS[fmt](path, ids, seqs)


def read_samples(path: str | os.PathLike, *, domain: str | None = None) -> tuple[list[str], list[str]]:
    """Read ``(ids, seqs)`` in ``domain``'s format, or the format the suffix names."""
    fmt = get_domain(domain).file_format if domain is not None else domain_for_path(path)
    return _READERS[fmt](path)
