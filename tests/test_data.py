"""Tests for seqdiff.data: readers, encoding, splits and datasets."""

from __future__ import annotations

import gzip
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seqdiff.data import (
    Batch,
    Collator,
    DataError,
    PackedDataset,
    PaddedDataset,
    Record,
    StreamingWindowDataset,
    WindowDataset,
    collate,
    detect_format,
    encode_records,
    read_fasta,
    read_genbank,
    read_records,
    read_smiles,
    read_text,
    split_indices,
    split_records,
)
from seqdiff.tokenizers import CharTokenizer, DNATokenizer, ProteinTokenizer, SmilesTokenizer

FIX = Path(__file__).parent / "fixtures"


def _gzip_copy(src: Path, dst: Path) -> Path:
    with open(src, "rb") as fi, gzip.open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    return dst


def _stack(ds) -> torch.Tensor:
    return torch.stack([ds[i] for i in range(len(ds))])


# ------------------------------------------------------------------ readers
def test_read_fasta_real_records(tmp_path: Path) -> None:
    it = read_fasta(FIX / "proteins.fasta")
    assert isinstance(it, types.GeneratorType)  # lazy
    recs = list(it)
    assert [r.id for r in recs] == [
        "sp|P0CG48|UBC_HUMAN",
        "sp|P06654|SPG1_STRSG",
        "sp|P01308|INS_HUMAN",
        "TC5b",
        "HP35",
    ]
    assert [r.index for r in recs] == [0, 1, 2, 3, 4]
    assert all(r.source == str(FIX / "proteins.fasta") for r in recs)
    insulin = recs[2].seq
    assert len(insulin) == 110 and insulin.startswith("MALWMRLLPLL") and insulin.endswith("LENYCN")
    gz = _gzip_copy(FIX / "proteins.fasta", tmp_path / "proteins.fasta.gz")
    assert [(r.id, r.seq) for r in read_fasta(gz)] == [(r.id, r.seq) for r in recs]
    # a gzip file without .gz suffix is detected from its magic bytes
    hidden = _gzip_copy(FIX / "dna.fa", tmp_path / "plain_name.fa")
    assert len(list(read_fasta(hidden))) == 4


def test_read_fasta_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(DataError) as ei:
        list(read_fasta(empty))
    assert ei.value.path == str(empty) and str(ei.value).startswith(str(empty) + ":")
    assert "empty" in str(ei.value)
    blank = tmp_path / "blank.fa"
    blank.write_text("\n\n  \n")
    with pytest.raises(DataError, match="empty"):
        list(read_fasta(blank))
    with pytest.raises(DataError) as ei:
        list(read_fasta(FIX / "not_fasta.fa"))
    assert "not_fasta.fa" in str(ei.value) and "'>'" in str(ei.value) and "line 1" in str(ei.value)
    with pytest.raises(FileNotFoundError):
        read_fasta(tmp_path / "missing.fa")


def test_read_genbank(tmp_path: Path) -> None:
    recs = list(read_genbank(FIX / "construct.gb"))
    assert len(recs) == 1
    r = recs[0]
    assert r.id == "SDX0001.1"
    assert r.seq.startswith("AATTGTGAGCGGATAACAATT") and len(r.seq) == 60
    empty = tmp_path / "empty.gb"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.gb: empty GenBank"):
        list(read_genbank(empty))
    with pytest.raises(DataError, match="no GenBank records"):
        list(read_genbank(FIX / "dna_bad.fa"))
    truncated = tmp_path / "truncated.gb"  # e.g. an interrupted download
    truncated.write_text((FIX / "construct.gb").read_text()[:300])
    with pytest.raises(DataError, match="truncated.gb: record 1: malformed GenBank record"):
        list(read_genbank(truncated))
    bad_locus = tmp_path / "bad_locus.gb"
    bad_locus.write_text((FIX / "construct.gb").read_text().replace("LOCUS       SDX0001", "LOCUS"))
    with pytest.raises(DataError, match="bad_locus.gb: record 1: malformed GenBank record: Did not recognise the LOCUS"):
        list(read_genbank(bad_locus))


def test_read_smiles_smi_and_csv(tmp_path: Path) -> None:
    smi = list(read_smiles(FIX / "molecules.smi"))
    assert len(smi) == 10  # comment line skipped
    assert (smi[0].id, smi[0].seq) == ("aspirin", "CC(=O)Oc1ccccc1C(=O)O")
    assert smi[8].id == "sodium chloride" and smi[8].seq == "[Na+].[Cl-]"
    headed = tmp_path / "headed.smi"
    headed.write_text("SMILES Name\nCCO\nc1ccccc1 benzene\n")
    h = list(read_smiles(headed))
    assert [(r.id, r.seq) for r in h] == [("line 2", "CCO"), ("benzene", "c1ccccc1")]
    csv = list(read_smiles(FIX / "molecules.csv"))
    assert [r.id for r in csv] == ["paracetamol", "aspirin", "broken ring", "ibuprofen", "bad char"]
    assert csv[0].seq == "CC(=O)Nc1ccc(O)cc1"
    gz = _gzip_copy(FIX / "molecules.csv", tmp_path / "molecules.csv.gz")
    assert [r.seq for r in read_smiles(gz, column="SMILES")] == [r.seq for r in csv]
    with pytest.raises(DataError, match="no column 'smi'"):
        list(read_smiles(FIX / "molecules.csv", column="smi"))
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="nocol.csv: no SMILES column"):
        list(read_smiles(nocol))
    noid = tmp_path / "noid.csv"
    noid.write_text("smiles\nCCO\nCCN\n")
    assert [r.id for r in read_smiles(noid)] == ["row 1", "row 2"]
    empty = tmp_path / "empty.smi"
    empty.write_text("# nothing\n")
    with pytest.raises(DataError, match="empty.smi"):
        list(read_smiles(empty))


def test_read_text_modes(tmp_path: Path) -> None:
    lines = list(read_text(FIX / "prose.txt"))
    assert lines[0].id == "line 1" and lines[0].seq.startswith("It is a truth")
    assert all(r.seq for r in lines)  # the empty line is skipped ...
    assert "line 10" not in [r.id for r in lines]  # ... and it was line 10
    assert len(list(read_text(FIX / "prose.txt", keep_empty=True))) == len(lines) + 1
    whole = list(read_text(FIX / "text8_sample.txt", mode="file"))
    assert len(whole) == 1 and whole[0].seq == (FIX / "text8_sample.txt").read_text()
    chunks = list(read_text(FIX / "text8_sample.txt", mode="chunks", chunk_chars=50))
    assert all(len(c.seq) == 50 for c in chunks[:-1])
    assert "".join(c.seq for c in chunks) == whole[0].seq
    assert chunks[1].id == "chunk 2"
    gz = _gzip_copy(FIX / "text8_sample.txt", tmp_path / "t.txt.gz")
    assert list(read_text(gz, mode="file"))[0].seq == whole[0].seq
    empty = tmp_path / "e.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="e.txt: empty text file"):
        list(read_text(empty))


def test_detect_format_and_dispatch() -> None:
    assert detect_format("x/genome.fna.gz") == "fasta"
    assert detect_format("a.gbk") == "genbank"
    assert detect_format("mols.csv.gz") == "smiles"
    assert detect_format("corpus.txt") == "text"
    assert [r.id for r in read_records(FIX / "construct.gb")] == ["SDX0001.1"]


# ----------------------------------------------------------------- encoding
def test_encode_records_error_names_file_record_position() -> None:
    with pytest.raises(DataError) as ei:
        encode_records(read_fasta(FIX / "dna_bad.fa"), DNATokenizer())
    e = ei.value
    assert (e.path, e.record, e.position) == (str(FIX / "dna_bad.fa"), "seq2", 5)
    assert str(e).startswith(f"{FIX / 'dna_bad.fa'}: record 'seq2' position 5: invalid character 'R' for DNA")
    # seq3 has its bad letter on the second sequence line: position counts across lines
    with pytest.raises(DataError, match=r"record 'seq3' position 17: invalid character 'J' for DNA"):
        encode_records(read_fasta(FIX / "dna_bad.fa"), DNATokenizer(ambiguity="N"))


def test_encode_records_skip_invalid_accounts_for_everything() -> None:
    enc = encode_records(read_fasta(FIX / "dna_bad.fa"), DNATokenizer(), skip_invalid=True)
    assert enc.ids == ["seq1", "seq4"]
    assert enc.num_skipped == 2 and enc.skipped_ids == ["seq2", "seq3"]
    assert [s.position for s in enc.skipped] == [5, 17]
    assert "'J'" in enc.skipped[1].reason
    assert enc.lengths.tolist() == [16, 12]
    assert "2 skipped" in enc.summary() and "'seq3'" in enc.summary()
    tok = DNATokenizer()
    assert tok.decode(enc.arrays[1]) == "GGGCCCAAATTT"


def test_encode_records_empty_sequence_is_invalid() -> None:
    recs = [Record("a", "ACGT", "mem", 0), Record("b", "", "mem", 1)]
    with pytest.raises(DataError, match="record 'b': empty sequence"):
        encode_records(recs, DNATokenizer())
    assert encode_records(recs, DNATokenizer(), skip_invalid=True).skipped_ids == ["b"]


def test_encode_smiles_with_rdkit_check() -> None:
    recs = list(read_smiles(FIX / "molecules.csv"))
    tok = SmilesTokenizer.build([r.seq for r in recs if r.id != "bad char"])
    with pytest.raises(DataError, match=r"molecules.csv: record 'bad char' position 3: invalid SMILES character"):
        encode_records(recs, tok)
    plain = encode_records(recs, tok, skip_invalid=True)
    assert plain.skipped_ids == ["bad char"]  # the unclosed ring tokenises fine
    checked = encode_records(recs, tok, skip_invalid=True, check_smiles=True)
    assert checked.skipped_ids == ["broken ring", "bad char"]
    assert checked.ids == ["paracetamol", "aspirin", "ibuprofen"]
    with pytest.raises(DataError, match="record 'broken ring': RDKit cannot parse"):
        encode_records(recs[:3], tok, check_smiles=True)


# ------------------------------------------------------------------- splits
def test_split_indices_deterministic_disjoint_covering() -> None:
    a = split_indices(1000, (0.9, 0.05, 0.05), seed=3)
    b = split_indices(1000, (0.9, 0.05, 0.05), seed=3)
    c = split_indices(1000, (0.9, 0.05, 0.05), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert [len(p) for p in a] == [900, 50, 50]
    allidx = np.concatenate(a)
    assert len(np.unique(allidx)) == 1000 and allidx.min() == 0 and allidx.max() == 999
    # pinned values: the split must not depend on the machine or library versions
    pinned = split_indices(20, (0.6, 0.2, 0.2), seed=0)
    assert [p.tolist() for p in pinned] == [
        [0, 1, 2, 5, 7, 11, 12, 13, 15, 16, 17, 19],
        [6, 8, 9, 14],
        [3, 4, 10, 18],
    ]
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices(10, (0.5, 0.2))


def test_split_records_by_index_id_and_seq() -> None:
    recs = [Record(f"r{i}", "ACGT"[i % 4] * (i + 1), "mem", i) for i in range(200)]
    tr, va, te = split_records(recs, (0.8, 0.1, 0.1), seed=1)
    assert (len(tr), len(va), len(te)) == (160, 20, 20)
    ids = [r.id for part in (tr, va, te) for r in part]
    assert sorted(ids) == sorted(r.id for r in recs)
    assert split_records(recs, (0.8, 0.1, 0.1), seed=1) == (tr, va, te)
    # by id: a record's split does not depend on the other records or their order
    full = split_records(recs, (0.8, 0.1, 0.1), seed=1, by="id")
    partial = split_records(list(reversed(recs[:100])), (0.8, 0.1, 0.1), seed=1, by="id")
    where_full = {r.id: k for k, part in enumerate(full) for r in part}
    where_partial = {r.id: k for k, part in enumerate(partial) for r in part}
    assert all(where_full[i] == k for i, k in where_partial.items())
    assert sum(len(p) for p in full) == 200 and len(full[0]) > 100 and full[1] and full[2]
    # by seq: identical sequences land in the same part
    dups = recs[:20] + [Record(f"dup{i}", r.seq, "mem", 200 + i) for i, r in enumerate(recs[:20])]
    parts = split_records(dups, (0.5, 0.5), seed=0, by="seq")
    for part in parts:
        seqs = {r.seq for r in part}
        assert all(r.seq in seqs for r in dups if r.seq in seqs)
    assert {r.seq for r in parts[0]}.isdisjoint({r.seq for r in parts[1]})


# ----------------------------------------------------------------- datasets
def test_window_dataset_contents() -> None:
    seqs = [np.arange(0, 10), np.arange(10, 15)]
    ds = WindowDataset(seqs, 4)
    assert len(ds) == 3
    assert _stack(ds).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert ds[0].dtype == torch.long and ds[-1].tolist() == [8, 9, 10, 11]
    over = WindowDataset(seqs, 4, stride=3, separator_id=99)
    # stream: 0..9, 99, 10..14 (16 tokens) -> starts 0,3,6,9,12
    assert over[3].tolist() == [9, 99, 10, 11]
    assert len(over) == 5 and over[4].tolist() == [11, 12, 13, 14]
    tail = WindowDataset(seqs, 6, drop_last=False, pad_id=-1)
    assert len(tail) == 3 and tail[2].tolist() == [12, 13, 14, -1, -1, -1]
    with pytest.raises(IndexError):
        ds[3]
    # items are copies: editing one does not corrupt the dataset
    x = ds[0]
    x[0] = 7
    assert ds[0][0].item() == 0


def test_window_dataset_from_real_genome_text() -> None:
    tok = DNATokenizer()
    ds = WindowDataset.from_file(FIX / "dna.fa", tok, 100)
    total = 21 + 20 + 720 + 10
    assert len(ds) == total // 100
    stream = "".join(r.seq.upper() for r in read_fasta(FIX / "dna.fa"))
    assert tok.decode(ds[2]) == stream[200:300]
    ctok = CharTokenizer()
    text = WindowDataset.from_file(FIX / "text8_sample.txt", ctok, 32, reader_kwargs={"mode": "file"})
    assert ctok.decode(text[1]) == (FIX / "text8_sample.txt").read_text()[32:64]


def test_padded_dataset_real_proteins() -> None:
    tok = ProteinTokenizer()
    recs = list(read_fasta(FIX / "proteins.fasta"))
    ds = PaddedDataset.from_records(recs, tok, max_len=64)
    assert len(ds) == 5
    x = _stack(ds)
    assert x.shape == (5, 64) and x.dtype == torch.long
    assert ds.lengths.tolist() == [64, 56, 64, 20, 35]
    assert ds.num_truncated == 2  # ubiquitin (76) and insulin (110)
    gb1 = ds[1]
    assert tok.decode(gb1) == recs[1].seq and (gb1[56:] == tok.pad_id).all() and (gb1[:56] != tok.pad_id).all()
    assert tok.decode(ds[0]) == recs[0].seq[:64]
    hist = ds.length_histogram()
    assert hist.shape == (65,) and hist[64] == 2 and hist[20] == 1 and hist.sum() == 5
    rej = PaddedDataset.from_records(recs, tok, max_len=64, too_long="reject")
    assert len(rej) == 3 and [(k, name, n) for k, name, n in rej.rejected] == [
        (0, "sp|P0CG48|UBC_HUMAN", 76),
        (2, "sp|P01308|INS_HUMAN", 110),
    ]
    with pytest.raises(DataError, match=r"record 'sp\|P0CG48\|UBC_HUMAN': record has 76 tokens"):
        PaddedDataset.from_records(recs, tok, max_len=64, too_long="error")
    bos = ProteinTokenizer(use_bos_eos=True)
    wrapped = PaddedDataset.from_records(recs[3:4], bos, max_len=30)
    row = wrapped[0].tolist()
    assert row[0] == bos.bos_id and row[21] == bos.eos_id and row[22:] == [bos.pad_id] * 8


def test_packed_dataset() -> None:
    seqs = [np.array([1, 1, 1]), np.array([2, 2]), np.array([3, 3, 3, 3]), np.array([4])]
    split = PackedDataset(seqs, 4, separator_id=0)
    # stream 1 1 1 0 2 2 0 3 3 3 3 0 4 -> 3 full windows, no pad at all
    assert _stack(split).tolist() == [[1, 1, 1, 0], [2, 2, 0, 3], [3, 3, 3, 0]]
    whole = PackedDataset(seqs, 6, separator_id=0, allow_split=False, pad_id=9)
    assert _stack(whole).tolist() == [[1, 1, 1, 0, 2, 2], [3, 3, 3, 3, 0, 4]]
    tight = PackedDataset(seqs, 4, separator_id=0, allow_split=False, pad_id=9)
    assert _stack(tight).tolist() == [[1, 1, 1, 9], [2, 2, 9, 9], [3, 3, 3, 3], [4, 9, 9, 9]]
    rej = PackedDataset(seqs, 3, separator_id=0, allow_split=False, pad_id=9, too_long="reject")
    # [2, 2] + separator + [4] needs 4 > 3 slots, so [4] starts a new window
    assert rej.rejected == [2] and _stack(rej).tolist() == [[1, 1, 1], [2, 2, 9], [4, 9, 9]]


def test_collate_and_dataloader() -> None:
    b = collate([torch.tensor([1, 2, 3]), np.array([4]), [5, 6]], pad_id=9)
    assert isinstance(b, Batch)
    assert b.x.tolist() == [[1, 2, 3], [4, 9, 9], [5, 6, 9]]
    assert b.pad_mask.dtype == torch.bool
    assert b.pad_mask.tolist() == [[True, True, True], [True, False, False], [True, True, False]]
    assert collate([[1]], pad_id=0, pad_to_multiple_of=8).x.shape == (1, 8)
    tok = ProteinTokenizer()
    ds = PaddedDataset.from_records(read_fasta(FIX / "proteins.fasta"), tok, max_len=80)
    x, pad_mask = next(iter(DataLoader(ds, batch_size=5, collate_fn=Collator(tok.pad_id))))
    assert x.shape == (5, 80) and pad_mask.sum(1).tolist() == ds.lengths.tolist()


# ---------------------------------------------------------------- streaming
def test_streaming_matches_in_memory() -> None:
    tok = DNATokenizer()
    for kw in ({}, {"stride": 37, "separator_id": 4}, {"stride": 150}, {"drop_last": False}):
        mem = WindowDataset.from_file(FIX / "dna.fa", tok, 64, **kw)
        stream = StreamingWindowDataset(FIX / "dna.fa", tok, 64, **kw)
        got = torch.stack(list(stream))
        assert torch.equal(got, _stack(mem)), kw
    ctok = CharTokenizer()
    mem = WindowDataset.from_file(
        FIX / "text8_sample.txt", ctok, 16, reader_kwargs={"mode": "chunks", "chunk_chars": 7}
    )
    stream = StreamingWindowDataset(
        FIX / "text8_sample.txt", ctok, 16, reader_kwargs={"mode": "chunks", "chunk_chars": 7}
    )
    windows = list(stream)
    assert len(windows) == len(mem) == len((FIX / "text8_sample.txt").read_text()) // 16
    assert torch.equal(torch.stack(windows), _stack(mem))


def test_streaming_two_workers_no_duplicates() -> None:
    tok = DNATokenizer()
    mem = _stack(WindowDataset.from_file(FIX / "dna.fa", tok, 32, stride=16))
    stream = StreamingWindowDataset(FIX / "dna.fa", tok, 32, stride=16)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    got = [w.tolist() for w in loader]
    assert len(got) == len(mem)
    assert sorted(got) == sorted(mem.tolist())
    # distributed shards (e.g. 2 ranks) are disjoint and cover everything too
    shards = [
        [w.tolist() for w in StreamingWindowDataset(FIX / "dna.fa", tok, 32, stride=16, num_shards=2, shard_index=r)]
        for r in range(2)
    ]
    assert len(shards[0]) + len(shards[1]) == len(mem)
    assert shards[0] == mem[0::2].tolist() and shards[1] == mem[1::2].tolist()


def test_streaming_shuffle_and_skip() -> None:
    tok = DNATokenizer()
    a = [w.tolist() for w in StreamingWindowDataset(FIX / "dna.fa", tok, 16, shuffle_buffer=8, seed=5)]
    b = [w.tolist() for w in StreamingWindowDataset(FIX / "dna.fa", tok, 16, shuffle_buffer=8, seed=5)]
    plain = [w.tolist() for w in StreamingWindowDataset(FIX / "dna.fa", tok, 16)]
    assert a == b and a != plain and sorted(a) == sorted(plain)
    s = StreamingWindowDataset(FIX / "dna_bad.fa", tok, 4, skip_invalid=True)
    got = list(s)
    assert len(got) == (16 + 12) // 4 and s.skipped and [r.id for r in s.skipped] == ["seq2", "seq3"]
    with pytest.raises(DataError, match="record 'seq2' position 5"):
        list(StreamingWindowDataset(FIX / "dna_bad.fa", tok, 4))


# -------------------------------------------------------------- rc augment
def test_rc_augment_seeded_and_correct() -> None:
    tok = DNATokenizer()
    plain = WindowDataset.from_file(FIX / "dna.fa", tok, 50)
    aug = WindowDataset.from_file(FIX / "dna.fa", tok, 50, rc_augment=True, seed=11)
    again = WindowDataset.from_file(FIX / "dna.fa", tok, 50, rc_augment=True, seed=11)
    assert torch.equal(_stack(aug), _stack(again))
    flipped = 0
    for i in range(len(plain)):
        if torch.equal(aug[i], plain[i]):
            continue
        assert torch.equal(aug[i], tok.reverse_complement(plain[i]))
        flipped += 1
    assert 0 < flipped < len(plain)  # p = 0.5 over 15 windows
    aug.set_epoch(1)
    assert not torch.equal(_stack(aug), _stack(again))
    always = WindowDataset.from_file(FIX / "dna.fa", tok, 50, rc_augment=True, rc_prob=1.0)
    assert all(torch.equal(always[i], tok.reverse_complement(plain[i])) for i in range(len(plain)))
    stream = StreamingWindowDataset(FIX / "dna.fa", tok, 50, rc_augment=True, seed=11)
    assert torch.equal(torch.stack(list(stream)), _stack(aug.__class__.from_file(FIX / "dna.fa", tok, 50, rc_augment=True, seed=11)))
    # padded rows: only the real prefix is reverse-complemented, pads stay right
    recs = list(read_fasta(FIX / "dna.fa"))[:2]
    padded = PaddedDataset.from_records(recs, tok, max_len=30, rc_augment=True, rc_prob=1.0)
    row = padded[0]
    n = len(recs[0].seq)
    assert tok.decode(row[:n]) == "AATTGTTATCCGCTCACAATT"  # reverse complement of lacO1
    assert (row[n:] == tok.pad_id).all()
    with pytest.raises(ValueError, match="DNA tokenizer"):
        PaddedDataset.from_records(read_fasta(FIX / "proteins.fasta"), ProteinTokenizer(), 64, rc_augment=True)


def test_fastq_records_qualities_and_errors(tmp_path):
    from seqdiff.data import DataError, detect_format, read_fastq, read_fastq_qualities, read_records
    p = tmp_path / "reads.fq.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("@r1 lane 1\nACGTN\n+\nII#5!\n@r2\nGG\n+\n++\n")
    assert detect_format(p) == "fastq" and detect_format("x.fastq") == "fastq"
    assert read_fastq_qualities(p) == [("r1", "ACGTN", [40, 40, 2, 20, 0]), ("r2", "GG", [10, 10])]
    assert [(r.id, r.seq, r.index) for r in read_records(p)] == [("r1", "ACGTN", 0), ("r2", "GG", 1)]
    assert [r.seq for r in read_fastq(p)] == ["ACGTN", "GG"]
    bad = tmp_path / "bad.fastq"
    bad.write_text("@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n")
    with pytest.raises(DataError, match=r"bad.fastq.*record 2.*malformed FASTQ"):
        read_fastq_qualities(bad)
    notfq = tmp_path / "x.fq"
    notfq.write_text(">r1\nACGT\n")
    with pytest.raises(DataError, match="not a FASTQ file: line 1"):
        read_fastq_qualities(notfq)
