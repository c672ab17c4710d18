"""Homolog files and EVmutation sequence weights (seqdiff.data.msa) on tiny explicit alignments."""

from __future__ import annotations

import numpy as np
import pytest

from seqdiff.data.errors import DataError
from seqdiff.data.msa import read_homologs, sequence_weights


def test_weights_on_an_explicit_alignment():
    rows = ["AAAAA", "AAAAC", "CCCCC", "AAACC"]
    # identities: (1,2) 4/5, (1,4) 3/5, (2,4) 4/5, (3,4) 2/5, (1,3) 0, (2,3) 1/5
    # neighbours at >= 0.8 (self included): 1:{1,2} 2:{1,2,4} 3:{3} 4:{2,4}
    np.testing.assert_allclose(sequence_weights(rows), [1 / 2, 1 / 3, 1, 1 / 2])
    assert sequence_weights(rows).sum() == pytest.approx(7 / 3)  # N_eff
    # gaps are a character: '-' matching '-' counts as identical (plmc)
    np.testing.assert_allclose(sequence_weights(["AA--A", "AA--C", "AACCA"]), [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(sequence_weights(rows, threshold=0.6), [1 / 3, 1 / 3, 1, 1 / 3])
    # blocking does not change the answer
    rng = np.random.default_rng(0)
    many = ["".join(rng.choice(list("AC-"), 6)) for _ in range(40)]
    np.testing.assert_array_equal(sequence_weights(many, block=7), sequence_weights(many, block=1000))


WT = "MKVLAT"


def test_stockholm_a2m_and_aligned_fasta_reduce_to_wild_type_columns(tmp_path):
    sto = tmp_path / "h.sto"
    sto.write_text("# STOCKHOLM 1.0\nwt     MK-VLAT\nh1     MRGVL-T\nh2     --G-LAT\nfrag   ------T\n//\n")
    h = read_homologs(sto, WT)
    assert h.fmt == "stockholm"
    assert h.ids == ["wt", "h1", "h2"] and h.rows == [WT, "MRVL-T", "--LAT"[:0] + "---LAT"]
    assert h.dropped and h.dropped[0][0] == "frag"
    assert h.sequences() == [WT, "MRVLT", "LAT"]
    a2m = tmp_path / "h.a2m"
    a2m.write_text(">wt\nMKVLAT\n>h1\nMRggVL-T\n>h2\n-KVIAs.T\n")  # lower case / '.': insertions
    h = read_homologs(a2m, WT)
    assert h.fmt == "a2m" and h.rows == [WT, "MRVL-T", "-KVIAT"]
    fa = tmp_path / "h.fa"
    fa.write_text(">h1\nMR-VL-T\n>wt\nMK-VLAT\n")  # the wild type need not be first
    assert read_homologs(fa, WT).rows == ["MRVL-T", WT]


def test_unaligned_fasta_is_aligned_to_the_wild_type(tmp_path):
    wt = "MKTAYIAKQRQISFVKSHFSRQ"
    fa = tmp_path / "u.fa"
    # h1: two substitutions; h2: an insertion (GG) and a missing N-terminus
    fa.write_text(f">h1\nMKTAYIAKERQISFVKSHFSRE\n>h2\nAYIAKQRQGGISFVKSHFSRQ\n>{'x'}\n{wt}\n")
    h = read_homologs(fa, wt)
    assert h.fmt == "fasta"
    assert h.rows[0] == "MKTAYIAKERQISFVKSHFSRE"
    assert h.rows[1] == "---AYIAKQRQISFVKSHFSRQ"  # the insertion dropped, the missing start gapped
    assert h.rows[2] == wt


def test_bad_homolog_files_name_file_record_and_column(tmp_path):
    ragged = tmp_path / "r.fa"
    ragged.write_text(">wt\nMK-VLAT\n>h1\nMRVL-T\n")
    with pytest.raises(DataError, match=r"r.fa.*record 2 \('h1'\).*ragged|r.fa.*record 2 \('h1'\).*equal length"):
        read_homologs(ragged, WT)
    letters = tmp_path / "l.sto"
    letters.write_text("# STOCKHOLM 1.0\nwt MKVLAT\nh1 MK1LAT\n//\n")
    with pytest.raises(DataError, match=r"l.sto.*record 2 \('h1'\), column 3: '1'"):
        read_homologs(letters, WT)
    other = tmp_path / "o.fa"
    other.write_text(">q\nMK-VIAT\n>h\nMR-VIAT\n")
    with pytest.raises(DataError, match=r"o.fa.*does not contain the wild type.*'I' at wild-type position 4"):
        read_homologs(other, WT)
    empty = tmp_path / "e.fa"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        read_homologs(empty, WT)
    junk = tmp_path / "j.txt"
    junk.write_text("hello\n")
    with pytest.raises(DataError, match="not a homolog file"):
        read_homologs(junk, WT)
