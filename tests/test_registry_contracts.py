"""Contract tests generated over the registries: every domain (seqdiff.domains) and every sampler
(seqdiff.diffusion.SAMPLERS) is checked here as soon as it is registered, with nothing to add.

Domains: the tokenizer round-trips the domain's own example letters, sample files read back what was
written, the template rules parse the domain's examples, the recipe, corpus, shipped model and demo
section it names exist and agree with it, the augmentation it claims is supported by its tokenizer.

Samplers: on every process it declares, with its ``unbiased_options``, 20,000 draws driven by the
exact oracle reproduce ``p0`` (and, when its step law is available, the exact law of the sampler
itself converges to ``p0``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import make_oracle, state_index, tv_threshold
from seqdiff.config import DataConfig, load_config
from seqdiff.data.fetch import CORPORA
from seqdiff.diffusion import (SAMPLERS, Absorbing, DiscreteSchedule, Geometric, Linear, Uniform, build_sampler,
                               exact_sampler_distribution, total_variation)
from seqdiff.domains import domains
from seqdiff.domains.files import FORMATS
from seqdiff.jobs.template import Fixed, parse_template

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = list(domains().values())
DOMAIN_IDS = [d.name for d in DOMAINS]


def _fixed_runs(dom) -> list[str]:
    tpl = parse_template(dom.template.example, dom.build_tokenizer(), domain=dom.name)
    return [seg.text for seg in tpl.segments if isinstance(seg, Fixed)]


# ------------------------------------------------------------------------------------- domains
@pytest.mark.parametrize("dom", DOMAINS, ids=DOMAIN_IDS)
def test_domain_tokenizer_round_trips_its_own_letters(dom):
    tok = dom.build_tokenizer()
    runs = _fixed_runs(dom)
    assert runs, f"{dom.name}: the template example fixes no letters"
    for text in runs:
        ids = tok.encode(text)
        assert all(0 <= i < tok.num_data_tokens for i in ids)
        assert tok.encode(tok.decode(ids)) == ids
    if dom.fasta_letters is not None:  # every letter a FASTA file of this domain may hold is a token
        assert tok.decode(tok.encode(dom.fasta_letters)) == dom.fasta_letters


@pytest.mark.parametrize("dom", DOMAINS, ids=DOMAIN_IDS)
def test_domain_sample_files_read_back(dom, tmp_path):
    assert dom.file_format in FORMATS
    seqs = _fixed_runs(dom) + ["".join(_fixed_runs(dom))]
    path = dom.write_samples(tmp_path / f"s{dom.extension}", [str(i) for i in range(len(seqs))], seqs)
    ids, back = dom.read_samples(path)
    assert back == seqs and len(ids) == len(seqs)


@pytest.mark.parametrize("dom", DOMAINS, ids=DOMAIN_IDS)
def test_domain_template_rules_and_app_hints(dom):
    tok = dom.build_tokenizer()
    for text in (dom.template.example, dom.app.template):
        tpl = parse_template(text, tok, domain=dom.name, max_len=128)
        assert tpl.free_segments and 1 <= tpl.min_length <= tpl.max_length <= 128
    if dom.template.bracket_spans:  # `[N:3]` is a span of three
        assert parse_template("[N:3]", tok, domain=dom.name).max_length == 3
    assert dom.app.label and dom.app.steps >= 1 and dom.app.count >= 1
    if dom.app.sampler is not None:
        assert dom.app.sampler in SAMPLERS
    hints = dom.app
    assert set(hints.views) <= {"logo", "molecules", "motifs", "scan", "fewshot"}, dom.name
    assert hints.batch_size >= 1 and hints.units in ("letters", "tokens")
    assert hints.window_fill in (None, "before", "after")
    if {"logo", "scan"} & set(hints.views):  # the drawn / substituted residues are the model's letters
        assert hints.letters and tok.decode(tok.encode(hints.letters)) == hints.letters, dom.name
    if "molecules" in hints.views:
        assert "valid" in dom.sample_columns
    if hints.wild_type:
        assert tok.decode(tok.encode(hints.wild_type)) == hints.wild_type
    # the app's free spans and short-window template are templates of this domain
    span = parse_template(hints.template + hints.span_format.format(n=5), tok, domain=dom.name)
    assert span.max_length == parse_template(hints.template, tok, domain=dom.name).max_length + 5
    if hints.short_template is not None:
        assert parse_template(hints.short_template.format(free=3), tok, domain=dom.name).max_length >= 3


@pytest.mark.parametrize("dom", DOMAINS, ids=DOMAIN_IDS)
def test_domain_data_settings(dom):
    assert dom.layout in ("window", "pad")
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    assert set(dom.record_options) <= fields
    for aug in dom.augmentations:
        assert aug == "reverse_complement"
        table = dom.build_tokenizer().complement_table()
        assert (table[table] == range(len(table))).all()  # an involution
    cols = dom.per_sample(_fixed_runs(dom)[0])
    assert tuple(cols) == dom.sample_columns


@pytest.mark.parametrize("dom", DOMAINS, ids=DOMAIN_IDS)
def test_domain_recipe_corpus_model_and_demo(dom):
    if dom.recipe is not None:
        cfg = load_config(ROOT / dom.recipe)
        assert cfg.data.kind == dom.name
    if dom.corpus is not None:
        assert CORPORA[dom.corpus].domain == dom.name
    if dom.shipped_model is not None:
        from seqdiff.model import load_model
        from seqdiff.pretrained import resolve_model

        assert load_model(resolve_model(dom.shipped_model)).domain == dom.name
    if dom.demo is not None:
        import importlib

        module, func = dom.demo.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_domain_metrics_on_the_reference_itself():
    """Set metrics of a domain's letters against themselves: a k-mer distance, where there is one, is 0."""
    for dom in DOMAINS:
        seqs = ["".join(_fixed_runs(dom)) * 3]
        m = dom.metrics(seqs, reference=seqs)
        assert m["num_samples"] == 1
        for key, value in m.items():
            if key.startswith("kmer") and key.endswith("_js") and value is not None:
                assert value == pytest.approx(0.0, abs=1e-12), (dom.name, key)


# ------------------------------------------------------------------------------------- samplers
N_SAMPLES = 20_000
L = 3


def _setups():
    for name, cls in SAMPLERS.items():
        for proc_name in cls.processes:
            yield pytest.param(name, proc_name, id=f"{name}-{proc_name}")


def _process_and_schedule(cls, proc_name):
    if proc_name == "absorbing":
        return Absorbing(4), Linear()
    sch = DiscreteSchedule(256) if cls.discrete_time else Geometric(1e-4, 20.0)
    return Uniform(3), sch


@pytest.mark.parametrize("name,proc_name", list(_setups()))
def test_every_sampler_reproduces_p0_with_the_exact_denoiser(name, proc_name):
    cls = SAMPLERS[name]
    proc, sch = _process_and_schedule(cls, proc_name)
    orc = make_oracle(proc, sch, seed=0)
    sampler = build_sampler(name, proc, sch, steps=128, **cls.unbiased_options)
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(7))
    assert x.shape == (N_SAMPLES, L)
    if proc.mask_id is not None:
        assert (x != proc.mask_id).all()
    idx = state_index(x, proc.vocab_size)
    counts = torch.bincount(idx, minlength=proc.vocab_size ** L).double()
    emp = counts[state_index(orc.configs, proc.vocab_size)] / counts.sum()
    try:
        law = exact_sampler_distribution(sampler, orc, L)[state_index(orc.configs, proc.vocab_size)]
    except NotImplementedError:  # no per-token step law (confidence ordering): the empirical check only
        law = None
    if law is not None:
        gap = total_variation(law, orc.p0)
        assert gap < 0.02, f"{name}: the exact law at 128 steps is {gap:.4f} from p0"
        assert total_variation(emp, orc.p0) < tv_threshold(law, N_SAMPLES) + gap
    else:
        assert total_variation(emp, orc.p0) < tv_threshold(orc.p0, N_SAMPLES)
    # the check can fail: draws from another distribution do
    other = make_oracle(proc, sch, seed=31)
    assert total_variation(emp, other.p0) > tv_threshold(orc.p0, N_SAMPLES) + 0.02
