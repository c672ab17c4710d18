"""Tests for seqdiff.tokenizers on real sequences, molecules and text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio import SeqIO
from Bio.Seq import Seq

from seqdiff.tokenizers import (
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    DNATokenizer,
    ProteinTokenizer,
    SmilesTokenizer,
    Tokenizer,
    TokenizerError,
    build_tokenizer,
    canonicalize,
    is_valid_smiles,
    randomize,
    tokenize_smiles,
    tokenizer_from_dict,
)

FIX = Path(__file__).parent / "fixtures"

UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
GB1 = "MTYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"

DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "ammonium": "[NH4+]",
    "cyclohexane": "C%10CCCCC%10",
    "testosterone": "C[C@]12CC[C@H]3[C@H]([C@@H]1CC[C@@H]2O)CCC4=CC(=O)CC[C@]34C",
    "chlorambucil": "OC(=O)CCCc1ccc(cc1)N(CCCl)CCCl",
    "bromazepam": "O=C1CN=C(c2ccccn2)c2cc(Br)ccc2N1",
    "salt": "[Na+].[Cl-]",
    "butene": "C/C=C/C",
}


@pytest.fixture(scope="module")
def text8_sample() -> str:
    return (FIX / "text8_sample.txt").read_text()


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(FIX / "prose.txt", vocab_size=400, min_frequency=2)


@pytest.fixture(scope="module")
def smiles_tok() -> SmilesTokenizer:
    return SmilesTokenizer.build(DRUGS.values())


def _all_tokenizers(bpe: BPETokenizer, smiles_tok: SmilesTokenizer) -> list[Tokenizer]:
    return [
        CharTokenizer(),
        CharTokenizer("acgt", lowercase=True, use_bos_eos=True),
        ByteTokenizer(),
        bpe,
        DNATokenizer(ambiguity="N", rna=True),
        ProteinTokenizer(allow_gaps=True, strip_stop=False, mask_placeholder="#"),
        smiles_tok,
    ]


# ----------------------------------------------------------------- id layout
@pytest.mark.parametrize(
    "tok, n",
    [
        (CharTokenizer(), 27),
        (ByteTokenizer(), 256),
        (DNATokenizer(), 5),
        (ProteinTokenizer(), 25),
        (ProteinTokenizer(allow_gaps=True), 26),
    ],
)
def test_id_layout(tok: Tokenizer, n: int) -> None:
    assert tok.num_data_tokens == n
    assert len(tok.tokens) == n
    assert tok.mask_id == n
    assert tok.pad_id == n + 1
    assert tok.bos_id is None and tok.eos_id is None
    assert tok.vocab_size == n + 2


def test_id_layout_with_bos_eos() -> None:
    tok = DNATokenizer(use_bos_eos=True)
    assert (tok.mask_id, tok.pad_id, tok.bos_id, tok.eos_id, tok.vocab_size) == (5, 6, 7, 8, 9)
    assert tok.add_special(tok.encode("AC")) == [7, 0, 1, 8]
    assert tok.decode([7, 0, 5, 1, 8, 6]) == "A_C"
    with pytest.raises(ValueError):
        DNATokenizer().add_special([0])


def test_specific_ids() -> None:
    assert CharTokenizer().encode("az ") == [0, 25, 26]
    assert DNATokenizer().encode("ACGTN") == [0, 1, 2, 3, 4]
    p = ProteinTokenizer()
    assert p.encode("ACDY") == [0, 1, 2, 19]
    assert p.encode("XBZUO") == [20, 21, 22, 23, 24]
    assert ProteinTokenizer(allow_gaps=True).encode("A-") == [0, 25]


# ---------------------------------------------------------------- char/text
def test_char_roundtrip_text8(text8_sample: str) -> None:
    tok = CharTokenizer()
    ids = tok.encode(text8_sample)
    assert len(ids) == len(text8_sample)
    assert max(ids) < 27 and min(ids) >= 0
    assert tok.decode(ids) == text8_sample
    # short strings take the per-character path; same result
    assert tok.encode(text8_sample[:20]) == ids[:20]


def test_char_error_names_record_and_position() -> None:
    tok = CharTokenizer()
    with pytest.raises(TokenizerError) as ei:
        tok.encode("hello World", name="doc1")
    e = ei.value
    assert (e.record, e.position, e.token) == ("doc1", 7, "W")
    assert str(e).startswith("record 'doc1' position 7: invalid character 'W'")
    # a long input goes through the vectorised path but reports the same
    long = "a" * 500 + "!" + "b" * 10
    with pytest.raises(TokenizerError, match=r"position 501: invalid character '!'"):
        tok.encode(long)


def test_char_lowercase_and_custom_alphabet() -> None:
    tok = CharTokenizer(lowercase=True)
    assert tok.decode(tok.encode("Hello World")) == "hello world"
    custom = CharTokenizer("01")
    assert custom.num_data_tokens == 2 and custom.encode("0110") == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="duplicate"):
        CharTokenizer("aab")


def test_validate_lists_all_problems_without_raising() -> None:
    tok = CharTokenizer()
    problems = tok.validate("Hi there!", name="r")
    assert [(p.position, p.token) for p in problems] == [(1, "H"), (9, "!")]
    assert all(p.record == "r" for p in problems)
    assert tok.validate("hi there") == []
    assert tok.is_valid_char("q") and not tok.is_valid_char("Q")
    assert CharTokenizer(lowercase=True).is_valid_char("Q")


def test_decode_pad_mask_and_tensor_input() -> None:
    tok = CharTokenizer()
    ids = tok.encode("abc") + [tok.pad_id, tok.pad_id]
    ids[1] = tok.mask_id
    assert tok.decode(ids) == "a_c"
    assert tok.decode(torch.tensor(ids)) == "a_c"
    assert tok.decode(np.array(ids), mask_placeholder="?") == "a?c"
    batch = torch.tensor([tok.encode("ab ") , [0, tok.mask_id, tok.pad_id]])
    assert tok.batch_decode(batch) == ["ab ", "a_"]
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])


def test_batch_encode_names_failing_record() -> None:
    tok = DNATokenizer()
    assert tok.batch_encode(["AC", "gt"]) == [[0, 1], [2, 3]]
    with pytest.raises(TokenizerError, match=r"record 'second' position 2"):
        tok.batch_encode(["AC", "AXG"], names=["first", "second"])


def test_byte_tokenizer_roundtrip_unicode() -> None:
    tok = ByteTokenizer()
    s = "Zürich → 東京 😀"
    ids = tok.encode(s)
    assert ids == list(s.encode("utf-8"))
    assert tok.encode_array(s).tolist() == ids
    assert tok.decode(ids) == s
    assert tok.decode(tok.encode("ab") + [tok.mask_id] + tok.encode("é")) == "ab_é"
    with pytest.raises(TokenizerError) as ei:
        tok.encode("ab\ud800c", name="x")
    assert ei.value.position == 3


# ---------------------------------------------------------------------- BPE
def test_bpe_trains_and_roundtrips(bpe: BPETokenizer) -> None:
    assert 256 < bpe.num_data_tokens <= 400
    assert bpe.mask_id == bpe.num_data_tokens and bpe.pad_id == bpe.num_data_tokens + 1
    lines = (FIX / "prose.txt").read_text().splitlines()
    for line in lines:
        assert bpe.decode(bpe.encode(line)) == line
    # merges were learned: in-corpus text needs far fewer tokens than bytes
    text = lines[0]
    assert len(bpe.encode(text)) < 0.6 * len(text.encode("utf-8"))
    # unseen text, unicode and odd whitespace still round-trip exactly
    unseen = "Quixotic zebras  jumped\tover 12 fjords — naïve café!\n"
    assert bpe.decode(bpe.encode(unseen)) == unseen
    masked = bpe.encode("a truth") + [bpe.mask_id]
    assert bpe.decode(masked) == "a truth_"


def test_bpe_from_iterator_and_dict_roundtrip(bpe: BPETokenizer) -> None:
    d = json.loads(json.dumps(bpe.to_dict()))
    assert d["kind"] == "bpe" and isinstance(d["tokenizer_json"], str)
    rebuilt = tokenizer_from_dict(d)
    assert isinstance(rebuilt, BPETokenizer)
    sample = "Mr. Bennet made no answer, said his lady."
    assert rebuilt.encode(sample) == bpe.encode(sample)
    assert rebuilt.tokens == bpe.tokens
    it_tok = BPETokenizer.train(iter((FIX / "prose.txt").read_text().splitlines(keepends=True)), 300)
    assert it_tok.num_data_tokens <= 300
    assert it_tok.decode(it_tok.encode(sample)) == sample
    with pytest.raises(ValueError, match="256"):
        BPETokenizer.train(["abc"], vocab_size=100)


# ---------------------------------------------------------------------- DNA
def test_dna_roundtrip_real_fasta() -> None:
    tok = DNATokenizer()
    recs = list(SeqIO.parse(FIX / "dna.fa", "fasta"))
    assert len(recs) == 4
    for r in recs:
        s = str(r.seq)
        assert tok.decode(tok.encode(s, name=r.id)) == s.upper()
    egfp = str(next(r.seq for r in recs if r.id == "EGFP"))
    assert len(tok.encode(egfp)) == 720


def test_dna_ambiguity_and_rna_options() -> None:
    strict = DNATokenizer()
    with pytest.raises(TokenizerError) as ei:
        strict.encode("ACGTRA", name="seq2")
    assert (ei.value.position, ei.value.token) == (5, "R")
    assert str(ei.value).startswith("record 'seq2' position 5: invalid character 'R' for DNA")
    lenient = DNATokenizer(ambiguity="N")
    assert lenient.decode(lenient.encode("ACRYkgt")) == "ACNNNGT"
    with pytest.raises(TokenizerError, match="position 3.*rna=True"):
        strict.encode("ACU")
    assert DNATokenizer(rna=True).decode(DNATokenizer(rna=True).encode("acgu")) == "ACGT"
    with pytest.raises(TokenizerError, match="position 3: invalid character '-'"):
        lenient.encode("AC-G")
    with pytest.raises(ValueError):
        DNATokenizer(ambiguity="drop")


def test_reverse_complement() -> None:
    tok = DNATokenizer()
    # A<->T, C<->G, N->N on single bases
    for b, c in zip("ACGTN", "TGCAN"):
        assert tok.reverse_complement(tok.encode(b)) == tok.encode(c)
    # agrees with Biopython on a real gene
    egfp = str(next(r.seq for r in SeqIO.parse(FIX / "dna.fa", "fasta") if r.id == "EGFP"))
    rc = tok.decode(tok.reverse_complement(tok.encode(egfp)))
    assert rc == str(Seq(egfp).reverse_complement())
    assert rc != egfp
    # involution on random id sequences, in every container type
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=200)
    assert np.array_equal(tok.reverse_complement(tok.reverse_complement(x)), x)
    assert not np.array_equal(tok.reverse_complement(x), x)
    t = torch.as_tensor(x)
    assert torch.equal(tok.reverse_complement(tok.reverse_complement(t)), t)
    assert tok.reverse_complement(t).tolist() == tok.reverse_complement(x.tolist())
    # special ids complement to themselves
    assert tok.reverse_complement([tok.mask_id, tok.pad_id]) == [tok.pad_id, tok.mask_id]


# ------------------------------------------------------------------ protein
def test_protein_roundtrip_real_sequences() -> None:
    tok = ProteinTokenizer()
    recs = list(SeqIO.parse(FIX / "proteins.fasta", "fasta"))
    assert len(recs) == 5
    for r in recs:
        s = str(r.seq)
        assert tok.decode(tok.encode(s, name=r.id)) == s.upper().rstrip("*")
    assert tok.decode(tok.encode(UBIQUITIN)) == UBIQUITIN
    assert tok.decode(tok.encode(GB1.lower())) == GB1
    assert len(tok.encode("nlyiqwlkdggpssgrppps*")) == 20


def test_protein_errors_and_options() -> None:
    tok = ProteinTokenizer()
    with pytest.raises(TokenizerError) as ei:
        tok.encode("MQIJVK", name="bad")
    assert (ei.value.record, ei.value.position, ei.value.token) == ("bad", 4, "J")
    with pytest.raises(TokenizerError, match=r"record 'aln' position 3: alignment gap '-'"):
        tok.encode("MQ-K", name="aln")
    with pytest.raises(TokenizerError, match=r"position 2: alignment gap '\.'"):
        tok.encode("M.K")
    with pytest.raises(TokenizerError, match="position 3: stop codon"):
        tok.encode("MK*K*")
    gapped = ProteinTokenizer(allow_gaps=True)
    assert gapped.decode(gapped.encode("mq-.k")) == "MQ--K"
    keep_stop = ProteinTokenizer(strip_stop=False)
    with pytest.raises(TokenizerError, match="position 3"):
        keep_stop.encode("MK*")


# ------------------------------------------------------------------- SMILES
def test_smiles_tokenization_rules() -> None:
    assert tokenize_smiles("[NH4+]") == ["[NH4+]"]
    assert tokenize_smiles("C%10CCCCC%10") == ["C", "%10", "C", "C", "C", "C", "C", "%10"]
    chl = tokenize_smiles(DRUGS["chlorambucil"])
    assert chl.count("Cl") == 2 and "l" not in chl
    brz = tokenize_smiles(DRUGS["bromazepam"])
    assert "Br" in brz and "r" not in brz
    tst = tokenize_smiles(DRUGS["testosterone"])
    assert {"[C@]", "[C@H]", "[C@@H]"} <= set(tst)
    assert tokenize_smiles("C/C=C/C") == ["C", "/", "C", "=", "C", "/", "C"]
    assert tokenize_smiles("[Na+].[Cl-]") == ["[Na+]", ".", "[Cl-]"]
    assert tokenize_smiles("c1ccncc1") == ["c", "1", "c", "c", "n", "c", "c", "1"]
    assert tokenize_smiles("C%(123)CC%(123)")[1] == "%(123)"


def test_smiles_roundtrip_and_vocab(smiles_tok: SmilesTokenizer) -> None:
    for name, smi in DRUGS.items():
        ids = smiles_tok.encode(smi, name=name)
        assert smiles_tok.decode(ids) == smi
        assert len(ids) == len(tokenize_smiles(smi))
    # most frequent token first
    assert smiles_tok.tokens[0] == "C"
    rare = SmilesTokenizer.build(DRUGS.values(), min_count=2)
    assert "[NH4+]" not in rare.tokens and "C" in rare.tokens
    with pytest.raises(TokenizerError, match=r"record 'amm' position 1: unknown SMILES token '\[NH4\+\]'"):
        rare.encode("[NH4+]", name="amm")


def test_smiles_errors(smiles_tok: SmilesTokenizer) -> None:
    with pytest.raises(TokenizerError) as ei:
        smiles_tok.encode("CC[Se]C", name="m1")
    assert (ei.value.position, ei.value.token) == (3, "[Se]")
    with pytest.raises(TokenizerError, match=r"position 3: invalid SMILES character '\?'"):
        smiles_tok.encode("CC?C")
    with pytest.raises(TokenizerError, match="position 3: unclosed"):
        smiles_tok.encode("CC[NH4")
    with pytest.raises(TokenizerError, match=r"record '#1'"):
        SmilesTokenizer.build(["CCO", "C C"])


def test_smiles_rdkit_helpers() -> None:
    assert canonicalize("OC(=O)c1ccccc1OC(C)=O") == canonicalize(DRUGS["aspirin"])
    assert is_valid_smiles(DRUGS["caffeine"]) and not is_valid_smiles("C1CC") and not is_valid_smiles("")
    assert SmilesTokenizer.is_valid(DRUGS["aspirin"])
    with pytest.raises(ValueError, match="cannot parse"):
        canonicalize("C1CC")
    smi = DRUGS["testosterone"]
    a = [randomize(smi, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same string
    variants = {randomize(smi, np.random.default_rng(s)) for s in range(8)}
    assert len(variants) > 1  # really randomised
    assert {canonicalize(v) for v in variants} == {canonicalize(smi)}  # same molecule, stereo kept


# -------------------------------------------------------- (de)serialisation
def test_to_dict_from_dict_all_kinds(bpe: BPETokenizer, smiles_tok: SmilesTokenizer) -> None:
    samples = {
        "char": "anarchism originated",
        "byte": "naïve café",
        "bpe": "It is a truth universally acknowledged",
        "dna": "acgtRYu",
        "protein": "MQIF-VK",
        "smiles": DRUGS["bromazepam"],
    }
    for tok in _all_tokenizers(bpe, smiles_tok):
        d = json.loads(json.dumps(tok.to_dict()))
        rebuilt = Tokenizer.from_dict(d)
        assert type(rebuilt) is type(tok)
        assert rebuilt == tok
        assert (rebuilt.vocab_size, rebuilt.mask_id, rebuilt.pad_id, rebuilt.bos_id) == (
            tok.vocab_size,
            tok.mask_id,
            tok.pad_id,
            tok.bos_id,
        )
        s = samples[tok.kind] if tok.kind != "char" or tok.num_data_tokens == 27 else "ACGTacgt"
        assert rebuilt.encode(s) == tok.encode(s)
        ids = tok.encode(s) + [tok.mask_id]
        assert rebuilt.decode(ids) == tok.decode(ids)
    # the options survive the round trip: a rebuilt strict DNA tokenizer still rejects R
    strict = tokenizer_from_dict(DNATokenizer().to_dict())
    with pytest.raises(TokenizerError):
        strict.encode("ACR")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "nope"})
    with pytest.raises(ValueError, match="not a DNATokenizer"):
        DNATokenizer.from_dict(ProteinTokenizer().to_dict())


def test_build_tokenizer_factory() -> None:
    assert isinstance(build_tokenizer("char"), CharTokenizer)
    assert isinstance(build_tokenizer("byte"), ByteTokenizer)
    assert build_tokenizer("dna", ambiguity="N").encode("R") == [4]
    assert build_tokenizer("protein", allow_gaps=True).num_data_tokens == 26
    smi = build_tokenizer("smiles", smiles=list(DRUGS.values()))
    assert smi.decode(smi.encode(DRUGS["caffeine"])) == DRUGS["caffeine"]
    bpe = build_tokenizer("bpe", source=[str(FIX / "prose.txt")], vocab_size=280)
    assert isinstance(bpe, BPETokenizer) and 256 < bpe.num_data_tokens <= 280
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        build_tokenizer("klingon")


# ------------------------------------------------- SMILES: the "parts" scheme
def _rdkit_sets() -> dict[str, list[str]]:
    """Real molecule sets: RDKit's own NCI sample and ChEMBL extracts shipped with RDKit, and the
    committed MOSES test slice."""
    import gzip
    import os

    from rdkit import RDConfig

    out = {"NCI first_5K (RDKit)": [line.split()[0] for line in
                                    open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi"))
                                    if line.strip()]}
    with gzip.open(Path(__file__).resolve().parents[1] / "datasets" / "moses" / "test.smi.gz", "rt") as fh:
        out["MOSES test (slice)"] = [line.split()[0] for line in fh if line.strip()]
    chembl = Path(RDConfig.RDContribDir) / "fraggle" / "data" / "ChEMBL_11265_actives.smi"
    if chembl.exists():
        out["ChEMBL 11265 actives (RDKit Contrib)"] = [line.split()[0] for line in chembl.read_text().splitlines()
                                                       if line.strip() and not line.startswith("SMILES")]
    return out


def test_smiles_parts_cover_rdkit_parsable_molecules() -> None:
    """Every RDKit-parsable SMILES of RDKit's NCI sample, the MOSES test slice (and ChEMBL actives
    when RDKit ships them), as written and RDKit-canonical, tokenises with the fixed vocabulary
    and decodes back to the same string (>= 99.5 % required; the corpus-built vocabulary of the
    shipped model covers 62 % of NCI as written)."""
    from rdkit import Chem, rdBase

    tok = SmilesTokenizer.parts()
    for name, smis in _rdkit_sets().items():
        for form in ("written", "canonical"):
            parsable = []
            with rdBase.BlockLogs():
                for s in smis:
                    mol = Chem.MolFromSmiles(s)
                    if mol is not None:
                        parsable.append(s if form == "written" else Chem.MolToSmiles(mol))
            assert len(parsable) > 0.9 * len(smis) >= 90, name
            covered = [s for s in parsable if tok.can_encode(s)]
            assert len(covered) >= 0.995 * len(parsable), (name, form, set(parsable) - set(covered))
            assert all(tok.decode(tok.encode(s)) == s for s in covered), (name, form)
            assert all(tok.tokenize(s) == [tok.tokens[i] for i in tok.encode(s)] for s in covered[:200])


def test_smiles_parts_scheme_rules_and_messages() -> None:
    from seqdiff.tokenizers.smiles import ELEMENTS, SMILES_PARTS, tokenize_smiles_parts

    assert len(ELEMENTS) == 118 and len(set(SMILES_PARTS)) == len(SMILES_PARTS)
    assert {"Cl", "Br", "Al", "Cr"} <= set(SMILES_PARTS) and not {"l", "r", "Sc", "Na"} & set(SMILES_PARTS)
    assert tokenize_smiles_parts("[13CH3+:2]C") == ["[", "1", "3", "C", "H", "3", "+", ":", "2", "]", "C"]
    assert tokenize_smiles_parts("C%(123)CC%12") == ["C", "%", "(", "1", "2", "3", ")", "C", "C", "%", "1", "2"]
    assert tokenize_smiles_parts("[C@@H](F)Cl") == ["[", "C", "@", "@", "H", "]", "(", "F", ")", "Cl"]
    assert tokenize_smiles_parts("[Sc+3].[Fe]<-N") == ["[", "S", "c", "+", "3", "]", ".", "[", "F", "e", "]",
                                                        "<", "-", "N"]
    assert tokenize_smiles_parts("CSc1[se]cc[Al]1") == ["C", "S", "c", "1", "[", "s", "e", "]", "c", "c",
                                                         "[", "Al", "]", "1"]
    tok = SmilesTokenizer.parts()
    for every in ELEMENTS:  # every element of the periodic table, in brackets
        assert tok.decode(tok.encode(f"[{every}]")) == f"[{every}]"
    cases = {"C[Xx]C": (4, "unknown element 'Xx' in bracket atom '[Xx]'"),
             "[Qq]": (2, "unknown element 'Qq'"),
             "CCj": (3, "'j' is in no element symbol or aromatic atom (outside brackets only"),
             "C=r": (3, "'r' must end an element symbol"),
             "CC?C": (3, "invalid SMILES character '?'"),
             "CC C": (3, "whitespace")}
    for smi, (pos, reason) in cases.items():
        with pytest.raises(TokenizerError) as ei:
            tok.encode(smi, name="m")
        assert ei.value.position == pos and reason in str(ei.value), (smi, str(ei.value))
    # every token sequence (what any model writes) re-encodes to exactly itself
    rng = np.random.default_rng(0)
    for _ in range(5000):
        ids = [int(i) for i in rng.integers(0, tok.num_data_tokens, rng.integers(1, 40))]
        assert tok.encode(tok.decode(ids)) == ids
    # round trip through a saved dict keeps the scheme
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["scheme"] == "parts" and tokenizer_from_dict(d) == tok
    assert tokenizer_from_dict(d).encode("[NH4+]") == tok.encode("[NH4+]")
    with pytest.raises(ValueError, match="not a single SMILES token of the 'parts' scheme"):
        SmilesTokenizer(["C", "[NH4+]"], scheme="parts")
    with pytest.raises(ValueError, match="unknown SMILES tokenizer scheme"):
        SmilesTokenizer(["C"], scheme="bpe")


def test_smiles_new_models_default_to_parts_and_old_dicts_load_unchanged() -> None:
    """build_tokenizer (what training uses) gives the parts scheme for a new vocabulary; the shipped
    model's saved atom vocabulary loads as 'atoms' and tokenises exactly as the atom regex does."""
    import gzip

    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model

    new = build_tokenizer("smiles", smiles=list(DRUGS.values()))
    assert new.scheme == "parts" and new.tokens == SmilesTokenizer.parts().tokens
    assert build_tokenizer("smiles", smiles=list(DRUGS.values()), scheme="atoms") == \
        SmilesTokenizer.build(DRUGS.values())
    assert build_tokenizer("smiles", tokens=["C", "[NH4+]"]).scheme == "atoms"
    with pytest.raises(TokenizerError, match=r"record '#1'"):
        build_tokenizer("smiles", smiles=["CCO", "C[Xx]"])
    shipped = load_model(resolve_model("smiles")).tokenizer
    d = shipped.to_dict()
    assert shipped.scheme == "atoms" and "scheme" not in d
    assert tokenizer_from_dict(d) == shipped
    with gzip.open(Path(__file__).resolve().parents[1] / "datasets" / "moses" / "test.smi.gz", "rt") as fh:
        smis = [line.strip() for line in fh if line.strip()][:500]
    index = {t: i for i, t in enumerate(shipped.tokens)}
    for s in smis:
        assert shipped.encode(s) == [index[t] for t in tokenize_smiles(s)]
    with pytest.raises(TokenizerError, match=r"unknown SMILES token '\[NH4\+\]'"):
        shipped.encode("[NH4+]")
