"""Tests for the infilling template language (seqdiff.jobs.template) with the real tokenizers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from seqdiff.jobs.template import Fixed, Free, TemplateError, parse_template, render, render_runs
from seqdiff.tokenizers import CharTokenizer, DNATokenizer, ProteinTokenizer, SmilesTokenizer

DATA = Path(__file__).resolve().parents[1] / "datasets"


@pytest.fixture(scope="module")
def dna() -> DNATokenizer:
    return DNATokenizer()


@pytest.fixture(scope="module")
def protein() -> ProteinTokenizer:
    return ProteinTokenizer()


@pytest.fixture(scope="module")
def smiles_tok() -> SmilesTokenizer:
    """A vocabulary built from the committed MOSES slice, plus the tokens the tests need."""
    with gzip.open(DATA / "moses" / "valid.smi.gz", "rt") as fh:
        smis = [line.strip() for line in fh if line.strip()][:500]
    return SmilesTokenizer.build(smis, extra_tokens=["Cl", "[nH]", "%10", "c", "1", "C", "(", "=", "O", ")"])


def _fixed(tpl):
    return [s for s in tpl.segments if isinstance(s, Fixed)]


def _free(tpl):
    return [s for s in tpl.segments if isinstance(s, Free)]


def _check_layout(tpl, tok, x, fixed, spans):
    """The fixed ids sit where fixed_spans_for says; everything else is mask."""
    assert x.dtype == torch.long and fixed.dtype == torch.bool and x.shape == fixed.shape
    assert len(x) == tpl.num_fixed + sum(spans)
    regions = tpl.fixed_spans_for(spans)
    for seg, (a, b) in zip(_fixed(tpl), regions):
        assert x[a:b].tolist() == seg.ids and fixed[a:b].all()
    for a, b in tpl.free_spans_for(spans):
        assert (x[a:b] == tok.mask_id).all() and not fixed[a:b].any()
    assert int(fixed.sum()) == tpl.num_fixed


# ----------------------------------------------------------------------------- per domain
def test_dna_promoter_template(dna):
    tpl = parse_template("TTGACA[N:17]TATAAT[N:5-8]", dna, domain="dna", max_len=128)
    assert [type(s).__name__ for s in tpl.segments] == ["Fixed", "Free", "Fixed", "Free"]
    f1, f2 = _fixed(tpl)
    assert (f1.text, f1.start_char, f1.ids) == ("TTGACA", 1, dna.encode("TTGACA"))
    assert (f2.text, f2.start_char) == ("TATAAT", 13)
    assert [(s.min_len, s.max_len, s.start_char) for s in _free(tpl)] == [(17, 17, 7), (5, 8, 19)]
    assert (tpl.num_fixed, tpl.min_length, tpl.max_length) == (12, 34, 37)
    assert tpl.all_lengths() == [34, 35, 36, 37]
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        x, fixed, spans = tpl.instantiate(rng)
        assert spans[0] == 17 and 5 <= spans[1] <= 8
        _check_layout(tpl, dna, x, fixed, spans)
        assert x[:6].tolist() == dna.encode("TTGACA") and x[23:29].tolist() == dna.encode("TATAAT")
        seen.add(len(x))
    assert seen == set(tpl.all_lengths())
    # lower case and the other bracket spellings are the same template
    same = parse_template("ttgaca[n:17]tataat{5-8}", dna, domain="dna")
    assert [s.ids for s in _fixed(same)] == [s.ids for s in _fixed(tpl)]
    for form in ("[N:3]", "[X:3]", "[:3]", "{3}", "[ N : 3 ]"):
        t = parse_template(f"AC{form}GT", dna, domain="dna")
        assert [(s.min_len, s.max_len) for s in _free(t)] == [(3, 3)]
    # whitespace and line breaks in a pasted DNA template are ignored
    assert parse_template("TTG ACA\n[N:2]", dna, domain="dna").num_fixed == 6


def test_protein_template(protein):
    tpl = parse_template("MK{5}W?Q{2-4}", protein, domain="protein")
    assert [s.text for s in _fixed(tpl)] == ["MK", "W", "Q"]
    assert [(s.min_len, s.max_len, s.start_char) for s in _free(tpl)] == [(5, 5, 3), (1, 1, 7), (2, 4, 9)]
    assert (tpl.min_length, tpl.max_length, tpl.num_fixed) == (12, 14, 4)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(100):
        x, fixed, spans = tpl.instantiate(g)
        _check_layout(tpl, protein, x, fixed, spans)
        assert spans[:2] == [5, 1] and 2 <= spans[2] <= 4
        assert protein.decode(x, mask_placeholder="_").startswith("MK_____W_Q")
        seen.add(len(x))
    assert seen == {12, 13, 14}


def test_smiles_template_tokens(smiles_tok):
    tok = smiles_tok
    tpl = parse_template("c1ccccc1{3}C(=O)O", tok, domain="smiles")
    f1, f2 = _fixed(tpl)
    assert f1.ids == tok.encode("c1ccccc1") and len(f1.ids) == 8
    assert (f2.text, f2.start_char, len(f2.ids)) == ("C(=O)O", 12, 6)
    assert [(s.min_len, s.start_char) for s in _free(tpl)] == [(3, 9)]
    # multi-character tokens: Cl, [nH] (a bracket atom, not a span) and %10 are single tokens
    tpl = parse_template("Clc1cc[nH]c1{1-2}C%10CCCCC%10", tok, domain="smiles")
    first = _fixed(tpl)[0]
    assert [tok.tokens[i] for i in first.ids] == ["Cl", "c", "1", "c", "c", "[nH]", "c", "1"]
    assert [tok.tokens[i] for i in _fixed(tpl)[1].ids][:2] == ["C", "%10"]
    x, fixed, spans = tpl.instantiate(np.random.default_rng(1))
    _check_layout(tpl, tok, x, fixed, spans)
    assert render(x, fixed, tok).startswith("Clc1cc[nH]c1_")
    # backslash is a SMILES bond there, not an escape
    bonds = parse_template("F/C=C\\F", SmilesTokenizer(["F", "/", "C", "=", "\\"]), domain="smiles")
    assert _fixed(bonds)[0].text == "F/C=C\\F" and bonds.num_fixed == 7


def test_text_template_and_escapes():
    tok = CharTokenizer()
    tpl = parse_template("the {4} sat", tok, domain="text")
    assert [s.text for s in _fixed(tpl)] == ["the ", " sat"]
    x, fixed, spans = tpl.instantiate(7)
    assert spans == [4] and tok.decode(x, mask_placeholder="_") == "the ____ sat"
    _check_layout(tpl, tok, x, fixed, spans)
    # escapes give literal characters; spaces are ordinary fixed characters in text
    wide = CharTokenizer("abcdefghijklmnopqrstuvwxyz ?{}[]\\")
    t = parse_template(r"a\?b\{c\[d\\e [:2] f", wide, domain="text")
    assert [s.text for s in _fixed(t)] == ["a?b{c[d\\e ", " f"]
    assert _fixed(t)[0].ids == wide.encode("a?b{c[d\\e ")
    assert [(s.min_len, s.start_char) for s in _free(t)] == [(2, 15)]
    assert parse_template("a}b]", wide, domain="text").num_fixed == 4  # stray closers are letters


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("TTGACA{17", 7, "unclosed '{'"),
        ("TTGACA[N:17", 7, "unclosed '['"),
        ("AC{2{3}}", 3, "unclosed '{'"),
        ("AC{}GT", 3, "empty span"),
        ("AC[N:]GT", 3, "empty span"),
        ("AC{x}GT", 3, "whole number or a range"),
        ("AC{2.5}GT", 3, "whole number or a range"),
        ("ACGT{8-5}", 5, "bad range {8-5}"),
        ("AC[N:9-2]", 3, "bad range [N:9-2]"),
        ("AC[hello]", 3, "is not a span"),
        ("TTGJCA[N:3]", 4, "invalid character 'J' for DNA"),
        ("ACG{2}TTRA", 9, "IUPAC ambiguity code"),
        ("{0}", 1, "no positions"),
        ("", 1, "no positions"),
        ("{0-0}[N:0]", 1, "no positions"),
        ("ACGT\\", 5, "escapes nothing"),
    ],
)
def test_template_errors_name_the_character(dna, text, position, fragment):
    with pytest.raises(TemplateError) as ei:
        parse_template(text, dna, domain="dna")
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.position == position, str(e)
    assert fragment in str(e) and f"character {position}" in str(e)
    assert e.context().splitlines()[-1] == " " * (position - 1) + "^"


def test_unknown_letters_other_domains(protein, smiles_tok):
    with pytest.raises(TemplateError) as ei:
        parse_template("MK{5}WJQ", protein, domain="protein")
    assert ei.value.position == 7 and ei.value.token == "J"
    with pytest.raises(TemplateError) as ei:
        parse_template("MKW{2}*", protein, domain="protein")  # a stop the tokenizer would strip
    assert ei.value.position == 7
    with pytest.raises(TemplateError) as ei:
        parse_template("c1ccccc1{3}[Xe]", smiles_tok, domain="smiles")
    assert ei.value.position == 12 and ei.value.token == "[Xe]" and "unknown SMILES token" in str(ei.value)
    with pytest.raises(TemplateError) as ei:
        parse_template("the {4} Sat", CharTokenizer(), domain="text")
    assert ei.value.position == 9 and ei.value.token == "S"
    with pytest.raises(TemplateError) as ei:
        parse_template(r"the \? cat", CharTokenizer(), domain="text")  # escaped, but not in text8
    assert ei.value.position == 6


def test_max_len(dna):
    with pytest.raises(TemplateError, match="template needs at least 130 positions; the model allows 128") as ei:
        parse_template("ACGT{120}ACGTAC", dna, domain="dna", max_len=128)
    assert ei.value.position == 10  # the fixed run where the minimum first passes 128
    # a span that can never reach its upper end is an error (it used to be clamped silently)
    with pytest.raises(TemplateError, match=r"span \{100-200\} can never reach 200.*write \{100-124\}") as ei:
        parse_template("ACGT{100-200}", dna, domain="dna", max_len=128)
    assert ei.value.position == 5
    with pytest.raises(TemplateError, match=r"span \{3-300\} can never reach 300"):
        parse_template("{3-300}", dna, domain="dna", max_len=256)
    tpl = parse_template("ACGT{100-124}", dna, domain="dna", max_len=128)
    assert tpl.max_length == 128 and tpl.all_lengths() == list(range(104, 129))
    rng = np.random.default_rng(0)
    assert all(len(tpl.instantiate(rng)[0]) <= 128 for _ in range(50))
    # each span fits alone, not both at their longest: lengths are drawn so that the total fits
    two = parse_template("{1-18}A{1-18}", dna, domain="dna", max_len=20)
    assert two.max_length == 20
    for _ in range(50):
        x, _, spans = two.instantiate(rng)
        assert len(x) <= 20 and all(1 <= s <= 18 for s in spans)
    with pytest.raises(ValueError, match="the model allows 20"):
        two.instantiate(rng, lengths=[10, 10])


# ----------------------------------------------------------------------------- instantiation
def test_instantiate_deterministic_and_explicit_lengths(dna):
    tpl = parse_template("A{1-9}C?G{0-4}T", dna, domain="dna")

    def draws(make):
        g = make()
        return [tuple(tpl.instantiate(g)[2]) for _ in range(20)]

    assert draws(lambda: np.random.default_rng(5)) == draws(lambda: np.random.default_rng(5))
    assert draws(lambda: torch.Generator().manual_seed(5)) == draws(lambda: torch.Generator().manual_seed(5))
    assert len(set(draws(lambda: np.random.default_rng(5)))) > 1
    x, fixed, spans = tpl.instantiate(None, lengths=[3, 1, 0])
    assert spans == [3, 1, 0] and len(x) == 4 + 4
    assert tpl.fixed_spans_for(spans) == [(0, 1), (4, 5), (6, 7), (7, 8)]
    assert tpl.free_spans_for(spans) == [(1, 4), (5, 6), (7, 7)]
    with pytest.raises(ValueError, match="length 1-9"):
        tpl.instantiate(None, lengths=[10, 1, 0])
    with pytest.raises(ValueError, match="3 spans"):
        tpl.instantiate(None, lengths=[3])
    # a total length: every span within range and the total exact, all splits reachable
    rng = np.random.default_rng(0)
    splits = set()
    for _ in range(300):
        x, _, spans = tpl.instantiate(rng, lengths=9)
        assert len(x) == 9 and 1 <= spans[0] <= 9 and spans[1] == 1 and 0 <= spans[2] <= 4
        splits.add(tuple(spans))
    assert splits == {(a, 1, 4 - a) for a in range(1, 5)}
    with pytest.raises(ValueError, match="not possible"):
        tpl.instantiate(rng, lengths=30)


def test_render(dna):
    tpl = parse_template("AC{2}GT", dna, domain="dna")
    x, fixed, _ = tpl.instantiate(0)
    x = x.clone()
    x[2:4] = torch.tensor(dna.encode("TT"))
    assert render_runs(x, fixed, dna) == [("AC", True), ("TT", False), ("GT", True)]
    assert tpl.render(x, fixed) == "ACTTGT"
    assert tpl.render(x, fixed, style="brackets") == "AC«TT»GT"
    assert tpl.render(x, fixed, style="html") == (
        '<span class="fixed">AC</span><span class="generated">TT</span><span class="fixed">GT</span>'
    )
    assert "\x1b[1mTT" in tpl.render(x, fixed, style="ansi")
