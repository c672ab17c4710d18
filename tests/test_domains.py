"""Tests for the domain metrics, motif scanning and sample files (seqdiff.domains) on real data."""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest
from Bio import SeqIO

from seqdiff.domains import DOMAINS, get_domain, read_samples, write_samples
from seqdiff.domains import motifs as M
from seqdiff.domains import sequence as Q
from seqdiff.domains import smiles as S
from seqdiff.domains import text as T

DATA = Path(__file__).resolve().parents[1] / "datasets"


def _fasta(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [str(r.seq) for r in SeqIO.parse(fh, "fasta")]


def _smi(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line.strip() for _, line in zip(range(n), fh)]


@pytest.fixture(scope="module")
def dm3() -> dict[str, list[str]]:
    return {s: _fasta(DATA / "dm3_upstream" / f"{s}.fa.gz") for s in ("train", "valid")}


# ----------------------------------------------------------------------------- SMILES
SAMPLES = ["CCO", "OCC", "c1ccccc1", "C1=CC=CC=C1", "C1CC", "", "xyz", "CC(=O)O"]


def test_validity_uniqueness_novelty_known_answers():
    # valid: CCO, OCC (same molecule), benzene twice (aromatic and Kekulé), acetic acid;
    # invalid: an unclosed ring, the empty string, nonsense
    assert S.validity(SAMPLES) == pytest.approx(5 / 8)
    assert S.uniqueness(SAMPLES) == pytest.approx(3 / 5)
    # ethanol and acetic acid (written differently) are in the training set; benzene is novel
    assert S.novelty(SAMPLES, ["OCC", "CC(O)=O", "not a smiles"]) == pytest.approx(1 / 3)
    assert S.novelty(SAMPLES, S.canonical_set(["OCC", "CC(O)=O"])) == pytest.approx(1 / 3)
    assert S.canonical("C1=CC=CC=C1") == S.canonical("c1ccccc1") == "c1ccccc1"
    assert S.canonical("C1CC") is None and S.canonical("") is None
    assert S.uniqueness(["xyz"]) == 0.0 and S.novelty([""], ["CCO"]) == 0.0
    with pytest.raises(ValueError):
        S.validity([])
    report = S.smiles_report(SAMPLES, training=["OCC"])
    assert report["num_valid"] == 5 and report["num_unique"] == 3
    assert report["validity"] == pytest.approx(5 / 8) and report["novelty"] == pytest.approx(2 / 3)
    assert "fcd" not in report


def test_real_moses_slice_metrics():
    train = _smi(DATA / "moses" / "train.smi.gz", 2000)
    valid = _smi(DATA / "moses" / "valid.smi.gz", 300)
    assert S.validity(valid) == 1.0 and S.uniqueness(valid) == 1.0
    assert S.novelty(valid, train) == 1.0  # the MOSES splits do not overlap
    assert S.novelty(train[:100], train) == 0.0


def test_mol_grid_image():
    from PIL import Image

    img = S.mol_grid_image(["CCO", "not smiles", "c1ccccc1", "CC(=O)O"], n_per_row=2, size=120)
    assert isinstance(img, Image.Image) and img.size == (240, 240)  # 3 valid -> 2 rows of 2
    blank = S.mol_grid_image(["", "xyz"], 3, (100, 80))
    assert isinstance(blank, Image.Image) and blank.size == (100, 80)


def test_fcd():
    if not S.fcd_available():
        with pytest.raises(S.FCDUnavailableError, match="fcd_torch"):
            S.fcd(["CCO", "CCN"], ["CCO", "CCN"])
        pytest.skip("fcd_torch not installed")
    train = _smi(DATA / "moses" / "train.smi.gz", 100)
    valid = _smi(DATA / "moses" / "valid.smi.gz", 100)
    simple = [f"{'C' * n}{end}" for n in range(1, 35) for end in ("", "O", "N")][:100]
    same = S.fcd(train, train)
    near = S.fcd(train, valid)
    far = S.fcd(train, simple)
    assert abs(same) < 1e-2
    assert near > 1.0 and far > 2 * near
    assert S.fcd(valid, train) == pytest.approx(near, rel=1e-4)  # symmetric
    report = S.smiles_report(valid[:20] + ["xyz"], reference=train[:50])
    assert report["fcd"] is not None and report["fcd"] > 0


def test_frechet_distance_gaussians():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    s1 = a @ a.T + np.eye(4)
    mu = rng.normal(size=4)
    assert S.frechet_distance(mu, s1, mu, s1) == pytest.approx(0.0, abs=1e-8)
    # 1-D closed form: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s1, s2
    assert S.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == \
        pytest.approx(4.0 + 1.0)


# ----------------------------------------------------------------------------- k-mers
def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_js_distance_properties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.random(64), rng.random(64)
        d = Q.js_distance(p, q)
        assert 0.0 <= d <= 1.0
        assert d == pytest.approx(Q.js_distance(q, p))
        # the entropy form of the divergence: JSD = H(m) - (H(p) + H(q)) / 2
        p, q = p / p.sum(), q / q.sum()
        jsd = _entropy_bits((p + q) / 2) - (_entropy_bits(p) + _entropy_bits(q)) / 2
        assert d == pytest.approx(math.sqrt(jsd))
    assert Q.js_distance([1, 2, 3], [2, 4, 6]) == 0.0
    assert Q.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_kmer_spectrum_basics():
    spec = Q.kmer_spectrum(["ACGT", "acgn"], 2)
    names = Q.kmer_names(2)
    got = {names[i]: v for i, v in enumerate(spec) if v}
    assert got == pytest.approx({"AC": 0.4, "CG": 0.4, "GT": 0.2})  # GN skipped; lower case folded
    assert Q.gc_content(["GGCC", "AATT", "NNNN"]) == 0.5
    assert Q.composition("AACG") == {"A": 0.5, "C": 0.25, "G": 0.25, "T": 0.0}
    with pytest.raises(ValueError):
        Q.kmer_spectrum(["NN"], 2)


def test_kmer_js_real_dna_vs_shuffled_baseline(dm3):
    train, valid = dm3["train"], dm3["valid"]
    assert Q.kmer_js(train, train) == 0.0
    held_out = Q.kmer_js(valid, train, k=3)
    assert held_out == pytest.approx(Q.kmer_js(train, valid, k=3))  # symmetric
    shuffled = Q.shuffled_baseline(valid, np.random.default_rng(0))
    # the shuffle keeps each sequence's length and composition ...
    assert [sorted(s) for s in shuffled[:20]] == [sorted(s) for s in valid[:20]]
    assert Q.composition(shuffled) == Q.composition(valid)
    # ... but loses the k-mer structure the held-out split shares with train
    baseline = Q.kmer_js(shuffled, train, k=3)
    assert 0.0 < held_out < baseline <= 1.0
    assert held_out < baseline / 3
    # deterministic for a seed
    assert Q.shuffled_baseline(valid[:3], 5) == Q.shuffled_baseline(valid[:3], 5)


# ----------------------------------------------------------------------------- motifs
def test_jaspar_profiles():
    motifs = M.load_motifs()
    assert len(motifs) == 50
    tbp = M.find_motif("TBP")
    assert tbp.id == "MA0108.3" and tbp.consensus == "TATAAAA" and tbp.iupac == "TATAAAW" and len(tbp) == 7
    assert M.find_motif("MA0108.3") is tbp and M.find_motif("MA0108") is tbp and M.find_motif("tbp") is tbp
    assert M.find_motif("CTCF").consensus == "GCCACCAGGGGGCGC"
    with pytest.raises(KeyError, match="CTCF"):
        M.find_motif("CTFC")
    w = tbp.pwm()
    assert w.shape == (4, 7) and np.isfinite(w).all()
    # log-odds by hand for column 1 (A=16, C=46, G=18, T=309), pseudocount 0.8 split evenly
    n = 16 + 46 + 18 + 309
    assert w[3, 0] == pytest.approx(math.log2((309 + 0.2) / (n + 0.8) / 0.25))
    rc = tbp.reverse_complement()
    assert rc.consensus == "TTTTATA"
    with pytest.raises(FileNotFoundError, match="JASPAR motif file not found"):
        M.load_motifs("/nonexistent/core_motifs.json")


def test_scan_finds_planted_tata_box():
    tbp = M.find_motif("TBP")
    rng = np.random.default_rng(3)
    background = "".join(rng.choice(list("GC"), 300))  # GC-only: no TATA-like site by chance
    seq = background[:100] + "TATAAAA" + background[100:200] + "TTTTATA" + background[200:]
    hits = M.scan(seq, tbp, threshold=0.9)
    assert [(h.start, h.end, h.strand) for h in hits] == [(100, 107, "+"), (207, 214, "-")]
    # at the usual 0.8 the AT-rich profile also takes shifted, partial windows, all weaker
    loose = M.scan(seq, tbp)
    assert set(hits) < set(loose) and all(h.score < 0.85 for h in loose if h not in hits)
    assert all(h.score == pytest.approx(1.0) and h.matched == "TATAAAA" for h in hits)
    assert seq[hits[1].start : hits[1].end] == "TTTTATA"
    assert M.scan(seq, tbp, 0.9, both_strands=False) == hits[:1]
    assert M.scan(seq.lower(), "TBP", 0.9)[0].start == 100
    assert [h.start for h in M.scan("N" * 3 + "TATAAAA", tbp, 0.9)] == [3]
    assert M.scan("TATA", tbp) == []
    # a weaker site passes a low threshold but not a high one
    weak = background[:50] + "TATAAGA" + background[50:100]
    assert M.scan(weak, tbp, 0.7) and not M.scan(weak, tbp, 0.95)
    table = M.motif_hits([seq, background], ["TBP", "MA0139.2"], threshold=0.9)
    row = table.set_index("name").loc["TBP"]
    assert (row["hits"], row["plus"], row["minus"], row["seqs_with_hit"]) == (2, 1, 1, 1)
    assert row["frac_seqs_with_hit"] == 0.5


# ----------------------------------------------------------------------------- text
def test_text_stats():
    assert T.char_entropy("aaaa") == 0.0
    assert T.char_entropy(["ab", "ab"]) == pytest.approx(1.0)
    text8 = (DATA / "text8_wiki" / "valid.txt").read_text()[:100_000]
    assert 3.9 < T.char_entropy(text8) < 4.3
    ws = T.word_stats(["the cat sat", "the dog"], reference=["the cat sat on the mat"])
    assert ws["num_words"] == 5 and ws["distinct_words"] == 4 and ws["mean_words_per_text"] == 2.5
    assert ws["oov_rate"] == pytest.approx(1 / 5)


# ----------------------------------------------------------------------------- registry and files
def test_registry_and_metrics(dm3):
    assert set(DOMAINS) == {"text", "dna", "protein", "smiles", "rna"}
    assert {d: DOMAINS[d].file_format for d in DOMAINS} == {"text": "txt", "dna": "fasta", "protein": "fasta",
                                                           "smiles": "smi", "rna": "fasta"}
    assert get_domain("DNA") is DOMAINS["dna"]
    assert DOMAINS["dna"].build_tokenizer().kind == "dna"
    assert DOMAINS["text"].build_tokenizer().num_data_tokens == 27
    assert DOMAINS["protein"].parse_template("MK{3}").min_length == 5
    with pytest.raises(KeyError):
        get_domain("klingon")

    m = DOMAINS["dna"].metrics(dm3["valid"][:60], reference=dm3["train"][:300])
    assert m["num_samples"] == 60 and 0.3 < m["gc_content"] < 0.5
    assert m["kmer3_js"] < m["kmer3_js_shuffled"]
    assert m["tata_per_kb"] > 0 and m["tata_per_kb_reference"] > 0

    prot = _fasta(DATA / "uniprot" / "valid.fa.gz")[:100]
    ref = _fasta(DATA / "uniprot" / "train.fa.gz")[:300]
    pm = DOMAINS["protein"].metrics(prot, reference=ref)
    assert 0 < pm["composition_js"] < pm["kmer3_js"] < 1 and pm["mean_length"] > 0

    tm = DOMAINS["text"].metrics(["the cat sat", "a dog"], reference=["the cat sat on the mat"])
    assert tm["num_samples"] == 2 and tm["mean_length"] == 8.0 and tm["oov_rate"] == pytest.approx(2 / 5)

    sm = DOMAINS["smiles"].metrics(SAMPLES, training=["OCC"])
    assert sm["validity"] == pytest.approx(5 / 8) and sm["novelty"] == pytest.approx(2 / 3)


ROUND_TRIP = {
    "dna": (["seq1", "seq 2 with spaces", "empty"], ["ACGT" * 40, "TTGACA", ""]),
    "protein": (["p1", "p2"], ["MKTAYIAKQRQISFVKSHFSRQ", "M"]),
    "smiles": (["m1", "m 2", "bad"], ["CC(=O)Oc1ccccc1C(=O)O", "[nH]1cccc1", ""]),
    "text": (["1", "2", "3", "4"], ["the cat sat", "", "two\nlines and a \\ backslash\\n", "tab\there"]),
}


@pytest.mark.parametrize("domain", sorted(ROUND_TRIP))
def test_write_read_round_trip(tmp_path, domain):
    ids, seqs = ROUND_TRIP[domain]
    d = DOMAINS[domain]
    path = tmp_path / f"samples{d.extension}"
    d.write_samples(path, ids, seqs)
    assert d.read_samples(path) == (ids, seqs)
    assert read_samples(path, domain=domain) == (ids, seqs)
    assert read_samples(path) == (ids, seqs)  # format from the suffix
    assert sorted(os.listdir(tmp_path)) == [path.name]
    if domain in ("dna", "protein"):
        assert [r.description for r in SeqIO.parse(path, "fasta")] == ids
    if domain == "smiles":
        assert path.read_text().splitlines()[0] == "CC(=O)Oc1ccccc1C(=O)O\tm1"
    if domain == "text":
        assert len(path.read_text().splitlines()) == len(seqs)


@pytest.mark.parametrize("domain", sorted(ROUND_TRIP))
def test_atomic_write_leaves_no_partial_file(tmp_path, domain):
    d = DOMAINS[domain]
    path = tmp_path / f"out{d.extension}"

    def failing():
        yield "ACGT"
        yield "CCO"
        raise RuntimeError("sampler crashed")

    with pytest.raises(RuntimeError, match="sampler crashed"):
        d.write_samples(path, ["a", "b", "c"], failing())
    assert os.listdir(tmp_path) == []  # neither the target nor a temporary file
    # an existing file survives a failed rewrite unchanged
    d.write_samples(path, ["x"], ["CC"])
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        d.write_samples(path, ["a", "b", "c"], failing())
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]
    # mismatched lengths are an error, not a silently short file
    with pytest.raises(ValueError):
        write_samples(path, ["a"], ["CC", "CCC"], domain=domain)
    assert path.read_bytes() == before
