"""What each sequence domain needs around a model: one :class:`Domain` record per domain.

The registry (:mod:`.registry`) collects a ``DOMAIN`` record from every module of this package;
:func:`domains` lists them, :func:`get_domain` looks one up.  The shipped domains:

=========  ===============  ======  =================================================
domain     tokenizer        file    metrics (``metrics(samples, reference, training)``)
=========  ===============  ======  =================================================
text       ``char`` text8   txt     mean length, character entropy, word statistics
dna        ``dna``          fasta   GC, 3-mer JS to reference and shuffled baseline,
                                    TATA-box (JASPAR TBP) hit density
protein    ``protein``      fasta   3-mer JS to reference and shuffled baseline,
                                    composition JS
smiles     ``smiles``       smi     validity, uniqueness, novelty, FCD (optional)
rna        ``rna``          fasta   GC, 3-mer JS to reference and shuffled baseline,
                                    minimum free energy (with ViennaRNA)
=========  ===============  ======  =================================================

Sample files (:mod:`.files`) are written atomically.  Submodules: :mod:`.sequence` (k-mer
spectra, JS distance), :mod:`.motifs` (JASPAR profiles and scanning), one module per domain
(:mod:`.text`, :mod:`.dna`, :mod:`.protein`, :mod:`.smiles`, :mod:`.rna`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from .dna import TATA_THRESHOLD, dna_metrics
from .files import (FORMATS, format_for_path, read_fasta_samples, read_smi_samples, read_text_samples,
                    write_fasta_samples, write_smi_samples, write_text_samples)
from .protein import protein_metrics
from .registry import AppHints, Domain, TemplateRules, domain_names, domains, get_domain, guess_fasta_domain
from .smiles import smiles_metrics
from .text import text_metrics

__all__ = [
    "Domain",
    "TemplateRules",
    "AppHints",
    "DOMAINS",
    "domains",
    "domain_names",
    "get_domain",
    "guess_fasta_domain",
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


def __getattr__(name: str) -> Any:
    if name == "DOMAINS":  # the registry, collected on first use
        return domains()
    raise AttributeError(f"module 'seqdiff.domains' has no attribute {name!r}")


def domain_for_path(path: str | os.PathLike) -> str:
    """The sample file format (``txt``/``fasta``/``smi``) from the suffix."""
    return format_for_path(path)


def _format(path: str | os.PathLike, domain: str | None) -> str:
    return get_domain(domain).file_format if domain is not None else format_for_path(path)


def write_samples(path: str | os.PathLike, ids: Iterable[Any], seqs: Iterable[str], *,
                  domain: str | None = None) -> Path:
    """Write samples in ``domain``'s format, or the format the suffix names."""
    return FORMATS[_format(path, domain)].write(path, ids, seqs)


def read_samples(path: str | os.PathLike, *, domain: str | None = None) -> tuple[list[str], list[str]]:
    """Read ``(ids, seqs)`` in ``domain``'s format, or the format the suffix names."""
    return FORMATS[_format(path, domain)].read(path)
