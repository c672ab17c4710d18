"""The user-facing jobs (sample, infill, score, eval) on tiny models trained here, and the
variant scores against an exact oracle."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from Bio import SeqIO
from scipy.stats import spearmanr

from conftest import make_oracle
from seqdiff.diffusion import Absorbing, Linear, MaskedDiffusionLoss, all_sequences
from seqdiff.domains import read_samples
from seqdiff.jobs.generate import OutputWriter, infill, sample_job
from seqdiff.jobs.scoring import elbo_scores, masked_marginal_scores
from seqdiff.jobs.template import TemplateError
from seqdiff.model import load_model
from seqdiff.training.config import load_config
from seqdiff.training.train import train

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
EXT = {"text": ".txt", "dna": ".fa", "protein": ".fa", "smiles": ".smi"}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """One tiny model per domain, trained once per test session (seconds each)."""
    out = {}
    for d in ("text", "dna", "protein", "smiles"):
        run = tmp_path_factory.mktemp(f"model-{d}")
        cfg = load_config(ROOT / "configs" / "tiny" / f"{d}.yaml",
                          [f"out_dir={run}", "sampling.log_samples=0", "trainer.max_steps=20"])
        out[d] = Path(train(cfg, quiet=True)["model"])
    return out


def cli(*args, check=True):
    """Run `seqdiff ...` in this process (the console script's own code path, without the
    interpreter start-up); returns an object like ``subprocess.run``'s."""
    import contextlib
    import io
    import types

    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    r = types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check and r.returncode != 0:
        raise AssertionError(r.stderr)
    return r


def cli_process(*args):
    """The real console entry point in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "seqdiff.cli", *map(str, args)], env=ENV, cwd=ROOT,
                          capture_output=True, text=True)


@pytest.mark.parametrize("domain", ["text", "dna", "protein", "smiles"])
def test_sample_writes_the_domain_format_and_a_csv(domain, models, tmp_path):
    out = tmp_path / f"s{EXT[domain]}"
    cli("sample", "-m", models[domain], "-n", 12, "--batch-size", 5, "--steps", 8, "--seed", 3, "--score",
        "-o", out, "-q")
    ids, seqs = read_samples(out, domain=domain)
    table = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert len(seqs) == 12 == len(table)
    assert list(table["sequence"]) == seqs
    for col in ("id", "length", "sampler", "steps", "seed", "elbo_nats", "bits_per_token"):
        assert col in table.columns
    assert (table["bits_per_token"].astype(float) > 0).all()
    model = load_model(models[domain])
    for s, n in zip(seqs, table["length"]):
        assert len(model.tokenizer.encode(s)) == int(n) <= model.max_len
    if domain in ("dna", "protein"):  # real FASTA, parsed by Biopython
        recs = list(SeqIO.parse(out, "fasta"))
        assert [str(r.seq) for r in recs] == seqs and [r.id for r in recs] == ids
    if domain == "smiles":
        assert set(table["valid"].astype(str)) <= {"True", "False"}
    # the same seed gives the same file; another seed does not
    again = tmp_path / f"again{EXT[domain]}"
    cli("sample", "-m", models[domain], "-n", 12, "--batch-size", 5, "--steps", 8, "--seed", 3, "-o", again, "-q")
    assert read_samples(again, domain=domain)[1] == seqs
    other = tmp_path / f"other{EXT[domain]}"
    cli("sample", "-m", models[domain], "-n", 12, "--steps", 8, "--seed", 4, "-o", other, "-q")
    assert read_samples(other, domain=domain)[1] != seqs


def test_sample_streams_batches_and_leaves_nothing_partial(models, tmp_path, monkeypatch):
    model = load_model(models["dna"])
    sizes = []
    real_write = OutputWriter.write

    def spy(self, rows):
        sizes.append(len(rows))
        return real_write(self, rows)

    monkeypatch.setattr(OutputWriter, "write", spy)
    s = sample_job(model, 50, tmp_path / "x.fa", batch_size=8, steps=4, progress=False)
    assert s["num"] == 50 and max(sizes) == 8 and sum(sizes) == 50  # written batch by batch
    # a failure mid-way leaves the previous output intact and no temporary file behind
    before = (tmp_path / "x.fa").read_text()
    calls = {"n": 0}
    real_generate = type(model).generate

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_generate(self, *a, **k)

    monkeypatch.setattr(type(model), "generate", failing)
    with pytest.raises(KeyboardInterrupt):
        sample_job(model, 50, tmp_path / "x.fa", batch_size=8, steps=4, progress=False)
    assert (tmp_path / "x.fa").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.fa"]


TEMPLATES = {
    "dna": "TTGACA[N:17]TATAAT[N:5-8]",
    "protein": "MK{3-6}WQ?GDE{4}",
    "smiles": "c1ccccc1{3-5}Cl",
    "text": "the {4} of {2-3} and",
}


@pytest.mark.parametrize("domain", ["text", "dna", "protein", "smiles"])
def test_infill_keeps_every_fixed_letter(domain, models, tmp_path):
    out = tmp_path / f"inf{EXT[domain]}"
    cli("infill", "-m", models[domain], "-t", TEMPLATES[domain], "-n", 10, "--steps", 8, "--rank", "-o", out, "-q")
    table = pd.read_csv(tmp_path / "inf.csv", keep_default_na=False)
    assert len(table) == 10
    model = load_model(models[domain])
    from seqdiff.jobs.template import parse_template
    tmpl = parse_template(TEMPLATES[domain], model.tokenizer, domain=domain)
    bpt = table["bits_per_token"].astype(float).tolist()
    assert bpt == sorted(bpt)  # ranked, best first
    for seq, spans in zip(table["sequence"], table["span_lengths"]):
        span_lengths = [int(v) for v in str(spans).split(",")]
        for (lo, hi), free in zip([(s.min_len, s.max_len) for s in tmpl.free_segments], span_lengths):
            assert lo <= free <= hi
        ids = model.tokenizer.encode(seq)
        x_fixed, fixed, _ = tmpl.instantiate(lengths=span_lengths)
        assert len(ids) == len(x_fixed)
        assert torch.equal(torch.tensor(ids)[fixed], x_fixed[fixed])  # verbatim, at the right places
    if domain == "dna":  # text form: the motifs are literally there
        for seq in table["sequence"]:
            assert seq.startswith("TTGACA") and seq[23:29] == "TATAAT"


def test_infill_top_k_and_valid_only(models):
    model = load_model(models["smiles"])
    cands = infill(model, "C{4-8}", 12, steps=8, top_k=5, seed=1)
    assert len(cands) == 5 and [c.bits_per_token for c in cands] == sorted(c.bits_per_token for c in cands)
    valid = infill(model, "C{4-8}", 12, steps=8, valid_only=True, seed=1)
    assert all(c.metrics["valid"] for c in valid)
    chosen = infill(model, "C{2-6}O", 4, steps=4, lengths="likelihood", seed=0)
    assert len(chosen) == 4 and all(model.tokenizer.tokenize(c.sequence)[-1] == "O" for c in chosen)


@pytest.mark.parametrize("template,message", [
    ("TTGACA[N:17", "unclosed"),
    ("TTGJCA{3}", "'J'"),
    ("ACGT{100}", "allows 64"),
    ("AC{5-2}", "5"),
])
def test_bad_templates_fail_clearly_and_write_nothing(template, message, models, tmp_path):
    out = tmp_path / "bad.fa"
    out.write_text(">old\nACGT\n")
    r = cli("infill", "-m", models["dna"], "-t", template, "-n", 3, "-o", out, "--overwrite", "-q", check=False)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == ">old\nACGT\n" and not (tmp_path / "bad.csv").exists()
    with pytest.raises(TemplateError):
        infill(load_model(models["dna"]), template, 2)


def test_score_variants_cli_appends_columns_and_checks_the_wild_type(models, tmp_path):
    wt = "MTYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"  # GB1
    variants = tmp_path / "v.csv"
    pd.DataFrame({"mutant": ["T2A", "K4R:L5I", "WT", "E56D"], "fitness": [0.1, 0.2, 0.3, 0.4]}).to_csv(variants,
                                                                                                  index=False)
    out = tmp_path / "scored.csv"
    cli("score", "-m", models["protein"], "--wt", wt, "--variants", variants, "--method", "masked_marginal",
        "--method", "elbo", "--n-t", 4, "-o", out, "-q")
    df = pd.read_csv(out)
    assert list(df["fitness"]) == [0.1, 0.2, 0.3, 0.4]  # the input columns are kept
    for col in ("score_masked_marginal", "score_elbo", "score_elbo_se"):
        assert np.isfinite(df[col]).all()
    assert df.loc[2, "score_masked_marginal"] == 0 and df.loc[2, "score_elbo"] == 0  # the wild type itself
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"mutant": ["T2A", "Q5A"]}).to_csv(bad, index=False)
    r = cli("score", "-m", models["protein"], "--wt", wt, "--variants", bad, "-o", tmp_path / "o.csv", "-q",
            check=False)
    assert r.returncode == 2 and "row 2" in r.stderr and "'Q5A'" in r.stderr
    assert not (tmp_path / "o.csv").exists()
    fa = tmp_path / "seqs.fa"
    fa.write_text(">a\nMTYKLILNGK\n>b\nMTYKLILNGKTLKGE\n")
    cli("score", "-m", models["protein"], "--fasta", fa, "-o", tmp_path / "nll.csv", "-q")
    nll = pd.read_csv(tmp_path / "nll.csv")
    assert list(nll["id"]) == ["a", "b"] and (nll["bits_per_token"] > 0).all()
    lines = tmp_path / "sents.txt"  # text models score text lines (empty lines skipped)
    lines.write_text("the city is on the river\n\nthe city is on the rover\n")
    cli("score", "-m", models["text"], "--fasta", lines, "-o", tmp_path / "t.csv", "-q")
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 2 and t["sequence"].iloc[1].endswith("rover") and (t["nll_nats"] > 0).all()


def test_scores_rank_variants_like_the_true_log_probabilities():
    """Exact oracle of an absorbing process over 4 tokens × length 4: the masked marginal of a
    single mutant IS log p(v)/p(w); the paired ELBO difference tracks log p(v)/p(w) within its
    standard error, for singles and doubles."""
    proc, sch = Absorbing(5), Linear()
    orc = make_oracle(proc, sch, length=4, seed=21)
    wt = orc.configs[int(torch.argmax(orc.p0))]
    singles = [[(i, int(wt[i]), a)] for i in range(4) for a in range(4) if a != int(wt[i])]
    doubles = [[(0, int(wt[0]), (int(wt[0]) + 1) % 4), (2, int(wt[2]), (int(wt[2]) + 2) % 4)],
               [(1, int(wt[1]), (int(wt[1]) + 3) % 4), (3, int(wt[3]), (int(wt[3]) + 1) % 4)]]
    variants = singles + doubles

    def seq_of(edits):
        x = wt.clone()
        for p, _, m in edits:
            x[p] = m
        return x

    var_ids = torch.stack([seq_of(e) for e in variants])
    truth = (orc.log_p0(var_ids) - orc.log_p0(wt[None])).numpy()
    mm = masked_marginal_scores(orc, proc, wt, variants).numpy()
    assert np.allclose(mm[:len(singles)], truth[:len(singles)], atol=1e-9)
    assert spearmanr(mm, truth).correlation > 0.9
    score, se, _, _ = elbo_scores(orc, MaskedDiffusionLoss(proc, sch), wt, var_ids, n_t=2000, seed=0)
    score, se = score.numpy(), se.numpy()
    assert (np.abs(score - truth) < 5 * se + 1e-6).all()
    assert spearmanr(score, truth).correlation > 0.95
    # precise enough to rank; the bound is loose because the 1/t weight of the linear schedule gives the
    # per-time terms heavy tails (the largest of these standard errors varies from 0.3 to 0.6 over seeds)
    assert (se < 0.4).all()


def test_eval_reports_likelihood_and_sample_metrics(models, tmp_path):
    r = cli("eval", "-m", models["dna"], "--split", "valid", "--max-rows", 64, "--json", "-q")
    rep = json.loads(r.stdout)["likelihood"]
    assert 0 < rep["bits_per_token"] < 3 and rep["perplexity_bound"] == pytest.approx(2 ** rep["bits_per_token"])
    out = tmp_path / "s.fa"
    cli("sample", "-m", models["dna"], "-n", 16, "--steps", 8, "-o", out, "-q")
    r = cli("eval", "--samples", out, "--reference", ROOT / "datasets/dm3_upstream/valid.fa.gz", "--json")
    rep = json.loads(r.stdout)["samples"]  # a FASTA of A/C/G/T is read as DNA without --domain
    assert rep["num_samples"] == 16
    assert any("js" in k for k in rep) and "gc_content" in rep
    smi = tmp_path / "m.smi"
    cli("sample", "-m", models["smiles"], "-n", 16, "--steps", 8, "-o", smi, "-q")
    rep = json.loads(cli("eval", "--samples", smi, "--training", ROOT / "datasets/moses/valid.smi.gz",
                         "--json").stdout)["samples"]
    assert 0 <= rep["validity"] <= 1
    txt = tmp_path / "t.txt"
    cli("sample", "-m", models["text"], "-n", 8, "--steps", 8, "-o", txt, "-q")
    rep = json.loads(cli("eval", "--samples", txt, "--ref-model", models["text"], "--json").stdout)["samples"]
    assert rep["generative_perplexity"] > 1 and rep["entropy_bits_per_char"] > 0


def test_unknown_models_fail_clearly(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_text("hello")
    r = cli_process("sample", "-m", junk, "-n", 2, "-o", tmp_path / "x.fa")
    assert r.returncode == 2 and "not a seqdiff model" in r.stderr
    r = cli("sample", "-m", tmp_path / "missing.pt", "-n", 2, "-o", tmp_path / "x.fa", check=False)
    assert r.returncode == 2 and "no such model" in r.stderr
