"""Tests for DMS variant handling (seqdiff.jobs.variants) on the committed GB1 slice."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
from Bio import SeqIO

from seqdiff.jobs.variants import (
    BLOSUM62,
    BLOSUM62_ALPHABET,
    VariantError,
    apply_mutant,
    blosum62_score,
    blosum62_scores,
    format_mutant,
    mutant_from_sequences,
    parse_mutant,
    read_variants,
    single_mutant_scan,
)

GB1 = Path(__file__).resolve().parents[1] / "datasets" / "gb1"


@pytest.fixture(scope="module")
def wild_types() -> dict[str, str]:
    return {rec.id: str(rec.seq) for rec in SeqIO.parse(GB1 / "wild_type.fa", "fasta")}


@pytest.fixture(scope="module")
def wt(wild_types) -> str:
    return wild_types["GB1_olson2014"]


@pytest.fixture(scope="module")
def doubles() -> pd.DataFrame:
    return pd.read_csv(GB1 / "doubles_valid.csv.gz")


def test_parse_forms():
    assert parse_mutant("A23G") == [("A", 23, "G")]
    assert parse_mutant("A23G:K45R") == parse_mutant("A23G;K45R") == parse_mutant(" A23G ; K45R ")
    assert parse_mutant("K45R:A23G") == [("K", 45, "R"), ("A", 23, "G")]  # written order kept
    assert format_mutant(parse_mutant("K45R;A23G")) == "A23G:K45R"  # canonical: sorted, ':'
    assert parse_mutant("A23A") == [("A", 23, "A")]  # synonymous allowed
    assert parse_mutant("Q5*") == [("Q", 5, "*")]
    for wt_form in ("WT", "_wt", "wt", "", "  "):
        assert parse_mutant(wt_form) == []
    for bad in ["A23", "23G", "A0G", "a23g", "A23G:", "A23GK45R", "A23G,K45R", "AB23G"]:
        with pytest.raises(VariantError):
            parse_mutant(bad)
    with pytest.raises(VariantError, match="position 23 is mutated twice"):
        parse_mutant("A23G:A23C")
    # the strict form (what the corpus fetcher writes and checks)
    with pytest.raises(VariantError, match="increasing"):
        parse_mutant("K45R:A23G", strict=True)
    with pytest.raises(VariantError, match="by itself"):
        parse_mutant("A23A", strict=True)


def test_real_gb1_doubles_roundtrip(wt, doubles):
    assert len(wt) == 55 and wt.startswith("QYKLILNGK")
    sample = doubles.sample(n=200, random_state=0)
    for m, x in zip(sample["mutant"], sample["x"]):
        assert apply_mutant(wt, m) == x
        assert mutant_from_sequences(wt, x) == m
        assert len(parse_mutant(m)) == 2
    # native numbering is the same variant shifted by one
    for m, native in zip(sample["mutant"].head(20), sample["mutant_native"].head(20)):
        assert apply_mutant(wt, native, offset=1) == apply_mutant(wt, m)


def test_real_gb1_singles(wild_types):
    singles = pd.read_csv(GB1 / "singles.csv")
    wt_n = wild_types["GB1_nisthal2019"]
    for m, x, vs_olson in zip(singles["mutant"], singles["x"], singles["mutant_vs_olson_wt"]):
        assert apply_mutant(wt_n, m) == x
        assert apply_mutant(wild_types["GB1_olson2014"], vs_olson) == x
    scan = single_mutant_scan(wt_n)
    assert len(scan) == 55 * 19 and set(singles["mutant"]) <= set(scan["mutant"])
    assert scan.iloc[0].tolist() == ["T1A", 1, "T", "A", "A" + wt_n[1:]]
    assert (scan["sequence"].map(len) == 55).all()
    assert len(single_mutant_scan("MK", "ACK", include_synonymous=True)) == 6


def test_apply_errors_name_row_and_position(wt):
    assert mutant_from_sequences(wt, apply_mutant(wt, "A23G:K3R")) == "K3R:A23G"
    with pytest.raises(VariantError) as ei:
        apply_mutant(wt, "K1A", row=7)  # position 1 is Q
    e = ei.value
    assert str(e) == "row 7 ('K1A'): the wild type has 'Q' at position 1, not 'K'"
    assert (e.row, e.position, e.mutant) == (7, 1, "K1A")
    with pytest.raises(VariantError, match=r"position 56 is outside the 55-residue wild type \(positions 1-55\)"):
        apply_mutant(wt, "E56A")
    with pytest.raises(VariantError, match="mutated twice"):
        apply_mutant(wt, "Q1A:Q1C", row=2)
    with pytest.raises(VariantError, match="differs from the wild type"):
        mutant_from_sequences(wt, wt[:-1])
    err = pickle.loads(pickle.dumps(e))
    assert str(err) == str(e) and err.row == 7


def test_read_variants_csv(tmp_path, wt, doubles):
    rows = doubles.head(5)[["mutant", "fitness"]].rename(columns={"mutant": "Mutation"})
    extra = pd.DataFrame({"Mutation": ["WT", "_wt", "Y2A;Q1A", "Q1Q"], "fitness": [0.0, 0.1, 0.2, 0.3]})
    path = tmp_path / "scan.csv"
    pd.concat([rows, extra]).to_csv(path, index=False)
    df = read_variants(path, wt)
    assert list(df.columns) == ["Mutation", "fitness", "mutant", "sequence", "num_mutations", "positions"]
    assert df["mutant"].tolist()[:5] == doubles.head(5)["mutant"].tolist()
    assert df["sequence"].tolist()[:5] == doubles.head(5)["x"].tolist()
    assert df["mutant"].tolist()[5:] == ["WT", "WT", "Q1A:Y2A", "Q1Q"]
    assert df["num_mutations"].tolist() == [2] * 5 + [0, 0, 2, 0]
    assert df["positions"].iloc[7] == (1, 2) and df["positions"].iloc[8] == ()
    assert df["sequence"].iloc[8] == wt

    # one bad row: the error names the file and its 1-based data row
    bad = pd.concat([rows, pd.DataFrame({"Mutation": ["K1A"], "fitness": [1.0]})])
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    with pytest.raises(VariantError) as ei:
        read_variants(bad_path, wt)
    assert ei.value.row == 6 and "row 6 ('K1A')" in str(ei.value) and str(bad_path) in str(ei.value)
    assert "the wild type has 'Q' at position 1, not 'K'" in str(ei.value)

    # an empty mutant cell is an error naming its row, not the wild type
    empty_path = tmp_path / "empty.csv"
    empty_path.write_text("mutant,y\nQ1A,1\n,2\n")
    with pytest.raises(VariantError, match=r"empty.csv: row 2: empty mutant cell \(write WT"):
        read_variants(empty_path, wt)
    with pytest.raises(VariantError, match="row 1: empty mutant cell"):
        read_variants(pd.DataFrame({"mutant": ["  "]}), wt)

    # "NA" is not silently taken for a missing value (= wild type)
    na_path = tmp_path / "na.csv"
    na_path.write_text("variant,y\nQ1A,1\nNA,2\n")
    with pytest.raises(VariantError, match="row 2 .*malformed"):
        read_variants(na_path, wt)


def test_read_variants_sequences_and_frames(tmp_path, wt, doubles):
    # a table of full sequences
    seqs = doubles.head(6)[["x", "fitness"]].rename(columns={"x": "sequence"})
    path = tmp_path / "seqs.tsv"
    seqs.to_csv(path, sep="\t", index=False)
    df = read_variants(path, wt)
    assert df["mutant"].tolist() == doubles.head(6)["mutant"].tolist()
    # the raw GB1 slice: explicit columns; mutant and sequence must agree
    df = read_variants(doubles.head(50), wt, column="mutant", sequence_column="x")
    assert (df["sequence"] == df["x"]).all() and (df["num_mutations"] == 2).all()
    broken = doubles.head(3).copy()
    broken.loc[broken.index[2], "x"] = wt
    with pytest.raises(VariantError, match="row 3 .*sequence column differs"):
        read_variants(broken, wt, column="mutant", sequence_column="x")
    short = pd.DataFrame({"sequence": [wt, wt[:-2]]})
    with pytest.raises(VariantError, match="row 2: length 53 differs"):
        read_variants(short, wt)
    with pytest.raises(ValueError, match="no mutant column"):
        read_variants(pd.DataFrame({"fitness": [1.0]}), wt)


def test_blosum62_matches_biopython():
    from Bio.Align import substitution_matrices

    ref = substitution_matrices.load("BLOSUM62")
    assert set(ref.alphabet) == set(BLOSUM62_ALPHABET)
    for a in BLOSUM62_ALPHABET:
        for b in BLOSUM62_ALPHABET:
            assert BLOSUM62[a][b] == ref[a][b], (a, b)
            assert BLOSUM62[a][b] == BLOSUM62[b][a]


def test_blosum62_score(wt, doubles):
    assert blosum62_score(wt, "WT") == 0
    assert blosum62_score(wt, "Q1A") == BLOSUM62["Q"]["A"] == -1
    assert blosum62_score(wt, "Q1A:Y2F") == -1 + 3
    assert blosum62_score(wt, "Q1Q") == 0  # synonymous: not a substitution
    assert blosum62_score(wt, [("Q", 1, "W")]) == -2
    with pytest.raises(VariantError, match="not 'K'"):
        blosum62_score(wt, "K1A")
    with pytest.raises(VariantError, match="no entry for 'U'"):
        blosum62_score(wt, "Q1U")
    muts = doubles["mutant"].head(30).tolist()
    scores = blosum62_scores(wt, muts)
    assert scores == [sum(BLOSUM62[w][t] for w, _, t in parse_mutant(m)) for m in muts]
    with pytest.raises(VariantError, match="row 2"):
        blosum62_scores(wt, ["Q1A", "K1A"])


def test_stop_codons_get_a_status_never_dropped(tmp_path, wt):
    """A nonsense variant (``*``) is kept in the scored table with a missing score and a
    ``score_status`` saying why; the missense rows score exactly as they do without it."""
    import contextlib
    import io

    import numpy as np

    from seqdiff.cli import main
    from seqdiff.jobs.scoring import score_variants
    from seqdiff.jobs.variants import nonsense_position, score_status
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model

    assert nonsense_position("Y2A") is None and nonsense_position("K3*") == 3
    assert nonsense_position("E55*:K3*") == 3 and nonsense_position([("Y", 2, "A"), ("E", 55, "*")]) == 55
    assert score_status("Y2A:K3R") == "scored"
    assert score_status("Y2A:K3*").startswith("not scored: stop at position 3 truncates the protein after residue 2")
    rows = ["Y2A", "K3*", "WT", "E55*:Y2A", "K9R"]
    table = read_variants(pd.DataFrame({"mutant": rows, "y": [1.0, 2.0, 3.0, 4.0, 5.0]}), wt)
    model = load_model(resolve_model("protein"))
    got = score_variants(model, wt, table, methods=["masked_marginal"])
    assert list(got["mutant"]) == ["Y2A", "K3*", "WT", "Y2A:E55*", "K9R"] and list(got["y"]) == [1, 2, 3, 4, 5]
    assert list(got["score_status"] == "scored") == [True, False, True, False, True]
    assert got["score_status"][3].startswith("not scored: stop at position 55")
    missense = score_variants(model, wt, table.iloc[[0, 2, 4]], methods=["masked_marginal"])
    s = got["score_masked_marginal"].to_numpy()
    assert np.isnan(s[[1, 3]]).all()
    assert np.array_equal(s[[0, 2, 4]], missense["score_masked_marginal"].to_numpy())
    # a table of stops only still comes back whole
    only = score_variants(model, wt, table.iloc[[1]], methods=["masked_marginal", "elbo"], n_t=2)
    assert len(only) == 1 and np.isnan(only["score_elbo"]).all() and only["score_status"].iloc[0] != "scored"
    # the CLI writes every row and says how many were not scored
    src = tmp_path / "v.csv"
    pd.DataFrame({"mutant": rows}).to_csv(src, index=False)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["score", "-m", "protein", "--wt", wt, "--variants", str(src), "-o", str(tmp_path / "s.csv"),
                     "-q"])
    assert code == 0, err.getvalue()
    assert "2 nonsense variant(s) kept unscored" in out.getvalue()
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5


def test_errors_after_a_stop_name_the_row_as_given(wt):
    from seqdiff.jobs.scoring import score_variants
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model

    table = read_variants(pd.DataFrame({"mutant": ["Y2A", "K3*", "Y2J"]}), wt)
    with pytest.raises(VariantError, match=r"row 3 \('Y2J'\)"):
        score_variants(load_model(resolve_model("protein")), wt, table, methods=["masked_marginal"])
