"""The RNA domain: tokenizer, sample files, metrics (with and without ViennaRNA), templates, the
tRNA corpus entry and its committed data, and the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqdiff.data import fetch as F
from seqdiff.domains import get_domain, read_samples, write_samples
from seqdiff.domains import rna as R
from seqdiff.jobs.template import TemplateError, parse_template
from seqdiff.tokenizers import TokenizerError, build_tokenizer, tokenizer_from_dict
from seqdiff.tokenizers.rna import RNATokenizer

ROOT = Path(__file__).resolve().parents[1]
TRNA = ROOT / "datasets" / "trna"


# ------------------------------------------------------------------------------------ tokenizer
def test_tokenizer_ids_round_trip_and_rebuild():
    tok = build_tokenizer("rna")
    assert isinstance(tok, RNATokenizer) and tok.tokens == list("ACGUN")
    assert (tok.mask_id, tok.pad_id, tok.vocab_size) == (5, 6, 7)
    ids = tok.encode("acgUN")
    assert ids == [0, 1, 2, 3, 4] and tok.decode(ids) == "ACGUN"
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(again) is RNATokenizer and again.encode("GUAC") == tok.encode("GUAC")


def test_thymine_and_ambiguity_codes():
    tok = RNATokenizer()
    with pytest.raises(TokenizerError) as e:
        tok.encode("ACGT")
    assert e.value.position == 4 and "thymine" in str(e.value)
    with pytest.raises(TokenizerError) as e:
        tok.encode("ACR")
    assert e.value.position == 3 and "A/G" in str(e.value)
    with pytest.raises(TokenizerError) as e:
        tok.encode("AY")  # Y is C or U in RNA (C or T in DNA)
    assert "C/U" in str(e.value)
    assert RNATokenizer(dna=True).decode(RNATokenizer(dna=True).encode("ACGT")) == "ACGU"
    amb = RNATokenizer(ambiguity="N")
    assert amb.decode(amb.encode("ARYU")) == "ANNU" == amb.normalize("aryu")


def test_reverse_complement_by_hand():
    tok = RNATokenizer()
    ids = tok.encode("AACGUN")
    rc = tok.reverse_complement(ids)
    assert tok.decode(rc) == "NACGUU"  # complement UUGCAN, reversed
    assert tok.reverse_complement(rc) == ids
    arr = np.array([ids, ids])
    assert (tok.reverse_complement(arr) == np.array([rc, rc])).all()
    table = tok.complement_table()
    assert [tok.tokens[table[i]] for i in range(5)] == list("UGCAN")
    assert table[tok.mask_id] == tok.mask_id and table[tok.pad_id] == tok.pad_id


# ------------------------------------------------------------------------------------- domain
def test_domain_record_and_sample_files(tmp_path):
    dom = get_domain("rna")
    assert dom.file_format == "fasta" and dom.extension == ".fa" and dom.tokenizer_kind == "rna"
    assert dom.shipped_model == "rna" and (ROOT / dom.recipe).is_file() and dom.corpus in F.CORPORA
    seqs = ["GGGAAACCC", "ACGUN", ""]
    write_samples(tmp_path / "s.fa", ["a", "b", "c"], seqs, domain="rna")
    assert read_samples(tmp_path / "s.fa", domain="rna") == (["a", "b", "c"], seqs)


def test_gc_and_kmers_by_hand():
    assert R.rna_gc(["GGCAU", "NNCA"]) == pytest.approx(4 / 7)  # G, G, C and C of 7 A/C/G/U letters
    m = R.rna_metrics(["GGCAU"], reference=["GGCAU"], structure=False)
    assert m["gc_content"] == pytest.approx(0.6) and m["gc_content_reference"] == pytest.approx(0.6)
    assert m["kmer3_js"] == pytest.approx(0.0, abs=1e-12)
    assert "mfe_per_nt" not in m


@pytest.mark.skipif(not R.folding_available(), reason="ViennaRNA not installed")
def test_folding_metrics_with_viennarna():
    import RNA

    hairpin = "GGGGAAACCCC"
    structure, mfe = R.fold(hairpin)
    assert len(structure) == len(hairpin) and structure.count("(") == structure.count(")") > 0
    assert mfe < 0 and RNA.energy_of_struct(hairpin, structure) == pytest.approx(mfe, abs=0.01)
    assert R.fold("AAAAAAAA") == ("." * 8, 0.0)  # nothing can pair
    m = R.rna_metrics([hairpin, "AAAAAAAA"], reference=["AAAAAAAA"])
    paired = len(hairpin) - structure.count(".")
    assert m["paired_fraction"] == pytest.approx(paired / 19)
    assert m["mfe_per_nt"] == pytest.approx(mfe / 19, abs=1e-6)
    assert m["mfe_per_nt_reference"] == 0.0 and m["paired_fraction_reference"] == 0.0
    row = R.rna_sample_metrics(hairpin)
    assert row == {"gc": round(8 / 11, 4), "mfe": round(mfe, 2), "structure": structure}


def test_without_viennarna_the_metrics_degrade(monkeypatch):
    monkeypatch.setattr(R, "folding_available", lambda: False)
    m = R.rna_metrics(["GGGGAAACCCC"], reference=["GGGGAAACCCC"])
    assert m["mfe_per_nt"] is None and m["paired_fraction_reference"] is None
    assert "ViennaRNA" in m["mfe_error"] and m["gc_content"] == pytest.approx(8 / 11)
    assert R.rna_sample_metrics("GGCC") == {"gc": 1.0, "mfe": "", "structure": ""}


def test_templates():
    tok = RNATokenizer()
    tpl = parse_template("GCGG [N:3]\nUUCG{2-4}", tok, domain="rna", max_len=20)
    assert tpl.min_length == 4 + 3 + 4 + 2 and tpl.max_length == 4 + 3 + 4 + 4
    with pytest.raises(TemplateError) as e:
        parse_template("GCT{3}", tok, domain="rna")
    assert e.value.position == 3
    example = get_domain("rna").app.template
    assert parse_template(example, tok, domain="rna", max_len=128).max_length <= 128


# ----------------------------------------------------------------------------- corpus and data
def test_trna_converter_on_a_small_package(tmp_path):
    a = tmp_path / "a.fa"
    b = tmp_path / "b.fa"
    a.write_text(">Homo_sapiens_tRNA-Ala-1 x\nGGGGGTATAG\nCTCA\n>Homo_sapiens_tRNA-Ala-2\nggggg\n")
    b.write_text(">Mus_tRNA-Ala-1\nGGGGGTATAGCTCA\n>bad\nGGXC\n>Mus_tRNA-Gly\nGCATTGG\n")
    out = tmp_path / "out"
    out.mkdir()
    stage = F._Staging(out)
    info = F._convert_trna({"m/a.fa": a, "m/b.fa": b}, stage, lambda msg: None)
    stage.commit(lambda msg: None)
    st = info["stats"]
    assert (st["records_in"], st["records_out"], st["invalid_dropped"], st["exact_duplicates_merged"]) == (5, 3, 1, 1)
    recs = {h: s for split in F.SPLITS for h, s in F._read_fasta(out / f"{split}.fa.gz")}
    assert sorted(recs.values()) == sorted(["GGGGGUAUAGCUCA", "GGGGG", "GCAUUGG"])
    merged = next(h for h, s in recs.items() if s == "GGGGGUAUAGCUCA")
    assert merged == "Homo_sapiens_tRNA-Ala-1 same_seq_as=Mus_tRNA-Ala-1"


def test_committed_trna_data_matches_its_manifest_and_is_rna():
    man = json.loads((TRNA / "manifest.json").read_text())
    assert man["slice_of"] == "trna" and man["source"]["package"] == "mimseq"
    assert man["source"]["sha256"] == F.CORPORA["trna"].source.package_sha256
    seen: dict[str, set] = {}
    for name, entry in man["files"].items():
        assert F.sha256_file(TRNA / name) == entry["sha256"], name
        seqs = [s for _, s in F._read_fasta(TRNA / name)]
        assert len(seqs) == entry["records"] and all(set(s) <= set("ACGUN") for s in seqs)
        seen[name] = set(seqs)
    files = list(seen.values())
    assert all(not (x & y) for i, x in enumerate(files) for y in files[i + 1:])  # splits are disjoint


# ----------------------------------------------------------------------------- shipped model
def test_shipped_model_infills_and_keeps_the_motifs(tmp_path):
    from seqdiff.jobs.generate import infill
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model

    model = load_model(resolve_model("rna"))
    assert model.domain == "rna" and model.tokenizer.kind == "rna"
    tpl = parse_template("GCGGAUUUAGCUCAG{20}GUUCGAAUC{6}", model.tokenizer, domain="rna", max_len=model.max_len)
    cands = infill(model, tpl, 3, steps=8, seed=0)
    for c in cands:
        assert c.sequence.startswith("GCGGAUUUAGCUCAG") and c.sequence[35:44] == "GUUCGAAUC"
        assert len(c.sequence) == 50 and set(c.sequence) <= set("ACGUN")
        assert set(c.metrics) == {"gc", "mfe", "structure"}


def test_variants_refuse_substitutions_to_ambiguity_codes():
    import pandas as pd

    from seqdiff.jobs.variants import VariantError, check_substitution_letters

    check_substitution_letters(pd.DataFrame({"mutant": ["A1G", "C2U"]}), "rna")
    with pytest.raises(VariantError) as e:
        check_substitution_letters(pd.DataFrame({"mutant": ["A1G", "C2Y"]}), "rna")
    assert "not one nucleotide" in str(e.value)
