"""Reading sequence files, encoding records and building torch datasets.

Readers (:mod:`seqdiff.data.readers`) stream :class:`Record` objects from
FASTA, GenBank, SMILES (``.smi``/``.csv``) and plain-text files;
:func:`encode_records` turns them into token-id arrays (raising or skipping
and accounting for invalid records); :mod:`seqdiff.data.datasets` provides
window, padded, packed and streaming datasets, deterministic splits and
collation.  Problems are reported as :class:`DataError`.
"""

from __future__ import annotations

from .datasets import (
    Batch,
    Collator,
    PackedDataset,
    PaddedDataset,
    StreamingWindowDataset,
    WindowDataset,
    collate,
    dna_complement_table,
    split_indices,
    split_records,
)
from .errors import DataError
from .readers import (
    EncodedRecords,
    Record,
    SkippedRecord,
    detect_format,
    encode_records,
    iter_encode_records,
    open_text,
    read_fasta,
    read_fastq,
    read_fastq_qualities,
    read_genbank,
    read_records,
    read_smiles,
    read_text,
)

# Downloading datasets lives in ``seqdiff.data.fetch`` (imported explicitly
# by its users; not re-exported here).

__all__ = [
    "DataError",
    "Record",
    "SkippedRecord",
    "EncodedRecords",
    "read_fasta",
    "read_fastq",
    "read_fastq_qualities",
    "read_genbank",
    "read_smiles",
    "read_text",
    "read_records",
    "detect_format",
    "open_text",
    "encode_records",
    "iter_encode_records",
    "WindowDataset",
    "PaddedDataset",
    "PackedDataset",
    "StreamingWindowDataset",
    "Batch",
    "Collator",
    "collate",
    "split_indices",
    "split_records",
    "dna_complement_table",
]
