"""Correcting molecules read several times (`seqdiff correct --group-by`): the reads' channel likelihood
times the model's leave-one-out prior, checked against enumeration on small explicit distributions, and
the real command on FASTA reads."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from conftest import make_oracle
from test_correct import SCHEDULES, SIDS, peaky
from seqdiff.diffusion import Absorbing, DiscreteSchedule, Geometric, Linear, Uniform, all_sequences
from seqdiff.jobs.correct import (consensus_correct, correct, correct_tokens, error_rate_at, estimate_read_rate,
                                  group_reads,
                                  leave_one_out_log_prior, read_counts, reads_log_likelihood, snap_time,
                                  time_for_error_rate)

N = 3  # letters, as in test_correct
L = 3


def channel(y, x, r, m=N):
    """q(y | x) of the substitution channel for whole sequences (y, x: [..., L])."""
    same = (y == x).double()
    return (same * (1 - r) + (1 - same) * r / (m - 1)).prod(-1)


def test_reads_likelihood_and_counts_match_the_product_over_reads():
    g = torch.Generator().manual_seed(0)
    reads = torch.randint(0, 4, (5, 3, 7), generator=g)  # 5 molecules, 3 reads of 7 letters (id 3 = no call)
    counts = torch.stack([read_counts(m.tolist(), 7, 4, no_call=[3]) for m in reads])
    assert counts.shape == (5, 7, 4) and float(counts[..., 3].sum()) == 0
    assert torch.equal(counts[..., :3].sum(-1), (reads != 3).sum(1).double())
    r = torch.tensor([0.02, 0.1, 0.2, 0.3, 0.05], dtype=torch.float64)
    ll = reads_log_likelihood(counts[..., :3], r, 3)
    for b in range(5):
        for i in range(7):
            for a in range(3):
                obs = [int(v) for v in reads[b, :, i] if v != 3]
                want = sum(math.log(1 - r[b]) if v == a else math.log(r[b] / 2) for v in obs)
                assert float(ll[b, i, a]) == pytest.approx(want, abs=1e-12)
    short = read_counts([[0, 1], [0, 1, 2]], 4, 3)  # a shorter read covers a prefix
    assert short.sum(-1).tolist() == [2, 2, 1, 0]


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_leave_one_out_prior_equals_enumeration(name, make):
    """p(x0_i = a | x_{-i}) from the denoiser (eq. 1) equals Σ_{x0: x0_i = a} p0(x0) Π_{j≠i} q_t(x_j | x0_j),
    normalised — for the uniform process at a time, and the masked marginal for the absorbing one."""
    sch = make()
    p0 = peaky(N ** L, 2)
    orc = make_oracle(Uniform(N), sch, length=L, p0=p0)
    x0s = all_sequences(range(N), L)
    x = x0s  # every input
    for rate in (0.03, 0.2):
        t = snap_time(sch, time_for_error_rate(sch, rate, N))
        got = torch.log_softmax(leave_one_out_log_prior(orc, orc.process, sch, x, t.expand(len(x))), -1).exp()
        k = orc.kernel(t.reshape(1))[0].double()  # [N, N]: q_t(y | a) = k[a, y]
        for i in range(L):
            rest = [j for j in range(L) if j != i]
            q_rest = torch.stack([k[x0s[:, j]][:, x[:, j]] for j in rest]).prod(0)  # [x0, input]
            want = torch.zeros(len(x), N, dtype=torch.float64)
            for a in range(N):
                want[:, a] = (p0[:, None] * q_rest * (x0s[:, i] == a).double()[:, None]).sum(0)
            want = want / want.sum(-1, keepdim=True)
            assert torch.allclose(got[:, i], want, atol=1e-9), (rate, i)
    # absorbing: the masked marginal p0(x_i = a | x_{-i})
    orc_a = make_oracle(Absorbing(N + 1), Linear(), length=L, p0=p0)
    got = torch.log_softmax(leave_one_out_log_prior(orc_a, orc_a.process, Linear(), x)[..., :N], -1).exp()
    for i in range(L):
        rest = [j for j in range(L) if j != i]
        match = (x0s[:, None, rest] == x[None, :, rest]).all(-1).double()  # [x0, input]
        want = torch.stack([(p0[:, None] * match * (x0s[:, i] == a).double()[:, None]).sum(0)
                            for a in range(N)], -1)
        assert torch.allclose(got[:, i], want / want.sum(-1, keepdim=True), atol=1e-9)


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_one_read_one_round_is_the_oneshot_posterior_mode(name, make):
    sch = make()
    orc = make_oracle(Uniform(N), sch, length=L, p0=peaky(N ** L, 4))
    x = all_sequences(range(N), L)
    for nominal in (0.05, 0.2):
        # the rate of the time the denoiser is evaluated at (a discrete schedule snaps to a step), so the
        # reads' channel and the model's channel are the same one
        rate = float(error_rate_at(sch, snap_time(sch, time_for_error_rate(sch, nominal, N)), N))
        counts = torch.nn.functional.one_hot(x, N).double()
        c, conf, vote, r, t = consensus_correct(orc, orc.process, sch, counts, error_rate=rate, iters=1)
        one = correct_tokens(orc, orc.process, sch, x, error_rate=rate, method="oneshot")
        assert torch.equal(vote, x)
        assert torch.equal(c, one.corrected) and one.changed.any()
        assert torch.allclose(conf, one.confidence, atol=1e-9)
        assert torch.allclose(t, one.t) and torch.allclose(r, one.error_rate)


def _expected_errors(decide, post_pos, weight):
    """Σ_pairs P(pair) Σ_i P(x0_i ≠ decision_i | pair)."""
    p_right = post_pos.gather(-1, decide[..., None])[..., 0]
    return float((weight[:, None] * (1 - p_right)).sum())


@pytest.mark.parametrize("name,make,proc", [("geometric", lambda: Geometric(1e-4, 20.0), "uniform"),
                                            ("discrete", lambda: DiscreteSchedule(200), "uniform"),
                                            ("linear", Linear, "absorbing")])
def test_two_reads_beat_the_majority_vote_exactly(name, make, proc):
    """Every pair of reads (y1, y2) of every molecule x0 ~ p0 through a channel of rate r, weighted by
    P(y1, y2) = Σ p0(x0) q(y1 | x0) q(y2 | x0): the expected number of wrong letters of the consensus
    decoder with the exact model is below a majority vote that breaks ties at random (which, for two
    reads, is no better than one read), and above the exact per-position posterior mode (the optimum)."""
    sch = make()
    p0 = peaky(N ** L, 5)
    process = Uniform(N) if proc == "uniform" else Absorbing(N + 1)
    orc = make_oracle(process, sch, length=L, p0=p0)
    x0s = all_sequences(range(N), L)
    S = len(x0s)
    y1 = x0s.repeat_interleave(S, 0)
    y2 = x0s.repeat(S, 1)
    for r in (0.05, 0.2):
        lik = channel(y1[:, None], x0s[None], r) * channel(y2[:, None], x0s[None], r)  # [pairs, x0]
        joint = lik * p0[None]
        weight = joint.sum(-1)
        post = joint / weight[:, None]
        post_pos = torch.stack([torch.stack([(post * (x0s[:, i] == a).double()).sum(-1) for a in range(N)], -1)
                                for i in range(L)], 1)  # [pairs, L, N]
        optimum = _expected_errors(post_pos.argmax(-1), post_pos, weight)
        counts = torch.nn.functional.one_hot(y1, N).double() + torch.nn.functional.one_hot(y2, N).double()
        # majority, ties at random: agreeing letters are taken; a split is a coin flip between the two
        p_right = post_pos.gather(-1, y1[..., None])[..., 0]
        p_right2 = post_pos.gather(-1, y2[..., None])[..., 0]
        vote = float((weight[:, None] * (1 - 0.5 * (p_right + p_right2))).sum())
        one_read = float((weight[:, None] * (1 - p_right)).sum())
        assert vote == pytest.approx(one_read, abs=1e-12)  # by symmetry of the two reads
        got = []
        for iters in (1, 2):
            c, conf, _, _, _ = consensus_correct(orc, process, sch, counts, error_rate=r, iters=iters)
            ours = _expected_errors(c, post_pos, weight)
            got.append(ours)
            assert optimum - 1e-12 <= ours < vote
            # share of the gap between the vote and the optimum that the decoder closes: the uniform
            # model reads the noisy consensus as x_t, so its prior is close to the true conditional;
            # a masked model takes the consensus context as clean, which costs it at high noise until a
            # second round has cleaned the context
            closed = (vote - ours) / (vote - optimum)
            want = 0.8 if proc == "uniform" else (0.3 if iters == 1 else 0.5)
            assert closed > want, (r, iters, optimum, ours, vote)
            # confidences are probabilities of the chosen letters
            assert ((conf > 1 / N - 1e-9) & (conf <= 1 + 1e-12)).all()
        assert got[1] <= got[0] + 1e-12  # a second round does not hurt


def test_the_rate_is_estimated_from_the_reads_disagreements():
    g = torch.Generator().manual_seed(0)
    B, K, Lm, M = 8, 3, 400, 4
    for r in (0.01, 0.08, 0.2):
        x0 = torch.randint(0, M, (B, Lm), generator=g)
        hit = torch.rand(B, K, Lm, generator=g) < r
        y = torch.where(hit, (x0[:, None] + torch.randint(1, M, (B, K, Lm), generator=g)) % M, x0[:, None])
        counts = torch.stack([read_counts(m.tolist(), Lm, M) for m in y])
        est = estimate_read_rate(counts, M)
        # the true per-molecule fraction of substituted observations, and a 6-sigma band around it
        frac = hit.double().mean((1, 2))
        band = 6 * math.sqrt(r * (1 - r) / (K * Lm)) + 0.003
        assert ((est - frac).abs() < band).all(), (r, est, frac)


def test_no_call_letters_are_no_observation_and_never_output():
    """A no-call letter (here id 3 of 4 data tokens, like DNA's N) neither counts as a read letter nor is
    ever the result; a position no read covers is filled from the prior (the oracle's conditional)."""
    sch = Geometric(1e-4, 20.0)
    n = 4
    x0s = all_sequences(range(n), L)
    p0 = torch.where((x0s == 3).any(-1), 1e-9, 1.0).double() * peaky(n ** L, 6)
    p0 = p0 / p0.sum()
    orc = make_oracle(Uniform(n), sch, length=L, p0=p0)
    reads = [[0, 3, 3], [0, 3, 2], [0, 3, 2]]  # position 1: no call in every read
    counts = read_counts(reads, L, n, no_call=[3])[None]
    c, conf, vote, _, _ = consensus_correct(orc, orc.process, sch, counts, error_rate=0.05, no_call=[3])
    assert int(c[0, 1]) != 3 and int(vote[0, 1]) != 3 and (c != 3).all()
    keep3 = (x0s != 3).all(-1)
    match = keep3 & (x0s[:, 0] == c[0, 0]) & (x0s[:, 2] == c[0, 2])
    cond = torch.zeros(n, dtype=torch.float64).index_add_(0, x0s[match, 1], p0[match])
    assert int(c[0, 1]) == int(cond.argmax())


def test_keep_positions_hold_their_letters():
    sch = Geometric(1e-4, 20.0)
    orc = make_oracle(Uniform(N), sch, length=L, p0=peaky(N ** L, 7))
    x = all_sequences(range(N), L)
    counts = 2 * torch.nn.functional.one_hot(x, N).double()
    keep = torch.zeros_like(x, dtype=torch.bool)
    keep[:, 1] = True
    forced = torch.full_like(x, 2)
    c, conf, _, _, _ = consensus_correct(orc, orc.process, sch, counts, error_rate=0.3, keep=keep,
                                         keep_tokens=forced)
    assert (c[:, 1] == 2).all() and (conf[:, 1] == 1).all()
    free, _, _, _, _ = consensus_correct(orc, orc.process, sch, counts, error_rate=0.3)
    assert (free[:, 1] != 2).any()  # without keep, position 1 follows the reads


def test_group_reads_and_its_errors():
    ids = ["m1/0", "m2/0", "m1/1", "m3/0", "m2/1"]
    assert group_reads(ids, r"^(m\d+)/") == {"m1": [0, 2], "m2": [1, 4], "m3": [3]}
    assert group_reads(ids, r"m\d") == {"m1": [0, 2], "m2": [1, 4], "m3": [3]}
    assert group_reads(ids, lambda s: s[-1]) == {"0": [0, 1, 3], "1": [2, 4]}
    with pytest.raises(ValueError, match="record 'x9'.*does not match"):
        group_reads(ids + ["x9"], r"^(m\d+)/")
    with pytest.raises(ValueError, match="not a regular expression"):
        group_reads(ids, r"(m")


@pytest.fixture(scope="module")
def dna_uniform():
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model
    return load_model(resolve_model("dna-uniform"))


def test_model_api_groups_reads_and_checks_them(dna_uniform):
    clean = "ACGTTGCAATGCCGTAAGCTTGACCA" * 3
    g = torch.Generator().manual_seed(1)
    reads, ids = [], []
    for k in range(3):
        s = list(clean)
        for i in torch.randperm(len(s), generator=g)[:6].tolist():
            s[i] = "ACGT"[("ACGT".index(s[i]) + 1 + k) % 4]
        reads.append("".join(s))
        ids.append(f"mol1/{k}")
    reads.append(clean[:40])
    ids.append("mol2/0")  # one read: the single-sequence corrector
    res = correct(dna_uniform, reads, ids=ids, group_by=r"^(\w+)/", error_rate=0.08)
    assert [r.id for r in res] == ["mol1", "mol2"] and [r.reads for r in res] == [3, 1]
    assert res[0].method == "consensus-oneshot" and res[1].method == "oneshot"
    assert len(res[0].corrected) == len(clean) and set(res[0].corrected) <= set("ACGT")
    wrong_before = sum(a != b for a, b in zip(res[0].input, clean))
    wrong_after = sum(a != b for a, b in zip(res[0].corrected, clean))
    assert wrong_after <= wrong_before
    assert res[0].positions == [i for i, (a, b) in enumerate(zip(res[0].input, res[0].corrected)) if a != b]
    est = correct(dna_uniform, reads, ids=ids, group_by=r"^(\w+)/")
    assert est[0].estimated and 0.02 < est[0].error_rate < 0.3
    kept = correct(dna_uniform, reads[:3], ids=ids[:3], group_by=r"^(\w+)/", error_rate=0.08,
                   keep="T" + "?" * (len(clean) - 1))
    assert kept[0].corrected[0] == "T"
    with pytest.raises(ValueError, match="molecule 'mol1': read 'mol1/1' has 79 tokens and read 'mol1/0' 78"):
        correct(dna_uniform, [reads[0], reads[1] + "A"], ids=ids[:2], group_by=r"^(\w+)/")
    with pytest.raises(ValueError, match="consensus decoder"):
        correct(dna_uniform, reads[:2], ids=ids[:2], group_by=r"^(\w+)/", method="multistep")
    with pytest.raises(ValueError, match="record 'mol1/0' position 4 .1-based.: invalid character 'Z'"):
        correct(dna_uniform, ["ACGZ", "ACGT"], ids=ids[:2], group_by=r"^(\w+)/")


def test_cli_group_by_on_fasta_reads(dna_uniform, tmp_path):
    from seqdiff.pretrained import resolve_model
    from test_correct import cli
    clean = "TTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGCGGATAACAATT"
    reads = {"m1/1": clean, "m1/2": clean[:10] + "G" + clean[11:], "m1/3": clean[:30] + "NN" + clean[32:],
             "m2/1": clean[::-1]}
    inp = tmp_path / "reads.fa"
    inp.write_text("".join(f">{k} sample\n{v}\n" for k, v in reads.items()))
    r = cli("correct", "-m", resolve_model("dna-uniform"), "-i", inp, "-o", tmp_path / "mols.fa", "-q",
            "--group-by", r"^(\w+)/", "-r", "0.02")
    assert r.returncode == 0, r.stderr
    assert "2 molecules from 4 reads" in r.stdout
    from Bio import SeqIO
    recs = list(SeqIO.parse(tmp_path / "mols.fa", "fasta"))
    assert [x.id for x in recs] == ["m1", "m2"]
    assert str(recs[0].seq) == clean  # the majority fixes the odd base; N is no call
    table = pd.read_csv(tmp_path / "mols.csv", keep_default_na=False, dtype=str)
    assert list(table["reads"]) == ["3", "1"] and list(table["id"]) == ["m1", "m2"]
    assert table["input"][0] == clean and table["corrected"][0] == clean
    bad = tmp_path / "bad.fa"
    bad.write_text(">m1/1\nACGT\n>m1/2\nACG\n")
    r = cli("correct", "-m", resolve_model("dna-uniform"), "-i", bad, "-o", tmp_path / "bad_out.fa", "-q",
            "--group-by", r"^(\w+)/")
    assert r.returncode == 2 and "molecule 'm1'" in r.stderr and "aligned" in r.stderr
    assert not (tmp_path / "bad_out.fa").exists() and not (tmp_path / "bad_out.csv").exists()


# ---------------------------------------------------------------- proteins and SMILES, every domain
@pytest.fixture(scope="module")
def uniform_tiny(tmp_path_factory):
    """Tiny multinomial-diffusion models of the protein and SMILES recipes, trained once (20 steps)."""
    from pathlib import Path

    from seqdiff.training.config import load_config
    from seqdiff.training.train import train
    root = Path(__file__).resolve().parents[1]
    out = {}
    for domain in ("protein", "smiles"):
        run = tmp_path_factory.mktemp(f"correct-tiny-{domain}")
        cfg = load_config(root / "configs" / "tiny" / f"{domain}.yaml",
                          [f"out_dir={run}", "diffusion.process=uniform", "diffusion.loss=multinomial",
                           "diffusion.schedule={name: discrete, num_steps: 100}", "sampling.log_samples=0",
                           "trainer.max_steps=20", "trainer.progress_bar=false"])
        out[domain] = Path(train(cfg, quiet=True)["model"])
    return out


def test_protein_fasta_correction_and_protein_reads(uniform_tiny, tmp_path):
    from Bio import SeqIO
    from test_correct import cli
    wt = "TYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"
    inp = tmp_path / "prot.fa"
    inp.write_text(f">gb1 wild type\n{wt}\n>typo\n{wt[:5]}W{wt[6:]}\n")
    r = cli("correct", "-m", uniform_tiny["protein"], "-i", inp, "-o", tmp_path / "fixed.fa", "-q", "-r", "0.05",
            "--keep", "1-4")
    assert r.returncode == 0, r.stderr
    recs = list(SeqIO.parse(tmp_path / "fixed.fa", "fasta"))
    assert [x.id for x in recs] == ["gb1", "typo"] and all(len(x.seq) == len(wt) for x in recs)
    assert all(str(x.seq)[:4] == wt[:4] for x in recs)  # kept
    table = pd.read_csv(tmp_path / "fixed.csv", keep_default_na=False, dtype=str)
    assert list(table["input"]) == [wt, wt[:5] + "W" + wt[6:]] and "valid" not in table.columns
    # reads of one protein (X = no call): the majority of three reads, with the model's prior
    reads = tmp_path / "reads.fa"
    reads.write_text(f">p/1\n{wt}\n>p/2\n{wt[:9]}X{wt[10:]}\n>p/3\n{wt[:20]}A{wt[21:]}\n")
    r = cli("correct", "-m", uniform_tiny["protein"], "-i", reads, "-o", tmp_path / "mol.fa", "-q",
            "--group-by", r"^(\w+)/", "-r", "0.02")
    assert r.returncode == 0, r.stderr
    (mol,) = list(SeqIO.parse(tmp_path / "mol.fa", "fasta"))
    assert mol.id == "p" and str(mol.seq) == wt and "X" not in str(mol.seq)


def test_smiles_repair_reports_rdkit_validity(uniform_tiny, tmp_path):
    from test_correct import cli
    from seqdiff.tokenizers.smiles import is_valid_smiles
    smis = {"aspirin": "CC(=O)Oc1ccccc1C(=O)O", "open_ring": "CC(=O)Oc1ccccc2C(=O)O", "bad_valence": "CC(=O)(O)(O)O"}
    inp = tmp_path / "mols.smi"
    inp.write_text("".join(f"{s}\t{k}\n" for k, s in smis.items()))
    r = cli("correct", "-m", uniform_tiny["smiles"], "-i", inp, "-o", tmp_path / "fixed.smi", "-q", "-r", "0.1")
    assert r.returncode == 0, r.stderr
    assert "RDKit parses 1 before" in r.stdout
    table = pd.read_csv(tmp_path / "fixed.csv", keep_default_na=False, dtype=str)
    assert list(table["id"]) == list(smis)
    assert list(table["input_valid"]) == ["True", "False", "False"]
    # the validity columns are RDKit's verdict on what was written
    lines = (tmp_path / "fixed.smi").read_text().splitlines()
    written = [ln.split("\t")[0] for ln in lines]
    assert written == list(table["corrected"])
    assert list(table["valid"]) == [str(is_valid_smiles(s)) for s in written]
    assert f"{sum(map(is_valid_smiles, written))} after" in r.stdout
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO\tok\nCC§O\tweird\n")
    r = cli("correct", "-m", uniform_tiny["smiles"], "-i", bad, "-o", tmp_path / "bad_out.smi", "-q")
    assert r.returncode == 2 and "record 'weird'" in r.stderr and "position 3" in r.stderr
    assert not (tmp_path / "bad_out.smi").exists()


# ---------------------------------------------------------------------- base qualities (FASTQ)
def test_quality_evidence_is_the_product_of_per_base_channels():
    from seqdiff.jobs.correct import error_to_phred, phred_to_error, reads_evidence
    g = torch.Generator().manual_seed(3)
    reads = torch.randint(0, 5, (3, 9), generator=g)  # letters 0-3, id 4 = no call
    q = torch.randint(0, 45, (3, 9), generator=g)
    e = phred_to_error(q)
    ev = reads_evidence(reads.tolist(), e.tolist(), 9, 5, no_call=[4])
    for i in range(9):
        for a in range(4):
            want = 0.0
            for j in range(3):
                v, ej = int(reads[j, i]), min(max(float(e[j, i]), 1e-6), 0.75)
                if v != 4:
                    want += math.log(1 - ej) if v == a else math.log(ej / 3)
            assert float(ev[i, a]) == pytest.approx(want, abs=1e-12)
    # one error probability everywhere = the rate-based channel on counts
    same = reads_evidence(reads.tolist(), [[0.07] * 9] * 3, 9, 5, no_call=[4])
    counts = read_counts(reads.tolist(), 9, 5, no_call=[4])[None, :, :4]
    assert torch.allclose(same[:, :4], reads_log_likelihood(counts, torch.tensor([0.07]), 4)[0], atol=1e-12)
    assert error_to_phred(phred_to_error(torch.arange(0, 61))).tolist() == list(range(61))
    assert int(error_to_phred(torch.tensor([0.0]))[0]) == 60  # capped


def test_one_doubtful_base_with_a_masked_model_is_the_exact_posterior():
    """A read whose other bases are certain (Q 60) and one base doubtful (Q 3, e ≈ 0.5): with a masked
    model the decision there is exactly argmax_a p0(y^{i←a}) q(y_i | a) (enumeration), confidence included."""
    from seqdiff.jobs.correct import phred_to_error, reads_evidence
    p0 = peaky(N ** L, 8)
    proc = Absorbing(N + 1)
    orc = make_oracle(proc, Linear(), length=L, p0=p0)
    x0s = all_sequences(range(N), L)
    i = 1
    q = [60] * L
    q[i] = 3
    e = phred_to_error(q).tolist()
    ev = torch.stack([reads_evidence([y.tolist()], [e], L, N) for y in x0s])
    c, conf, _, _, _ = consensus_correct(orc, proc, Linear(), None, log_evidence=ev, iters=2)
    ei = min(float(phred_to_error([3])[0]), (N - 1) / N)
    changed = 0
    for k, y in enumerate(x0s):
        post = torch.zeros(N, dtype=torch.float64)
        for a in range(N):
            ya = y.clone()
            ya[i] = a
            post[a] = p0[int((ya * N ** torch.arange(L - 1, -1, -1)).sum())] * ((1 - ei) if a == y[i] else ei / (N - 1))
        post = post / post.sum()
        assert int(c[k, i]) == int(post.argmax()) and float(conf[k, i]) == pytest.approx(float(post.max()), abs=1e-6)
        assert torch.equal(c[k, [0, 2]], y[[0, 2]])  # the certain bases stay
        changed += int(c[k, i] != y[i])
    assert changed > 0


def test_equal_qualities_are_the_rate_channel():
    from seqdiff.jobs.correct import phred_to_error, reads_evidence
    sch = Geometric(1e-4, 20.0)
    orc = make_oracle(Uniform(N), sch, length=L, p0=peaky(N ** L, 9))
    x = all_sequences(range(N), L)
    e = float(phred_to_error([10])[0])  # 0.1
    ev = torch.stack([reads_evidence([y.tolist()], [[e] * L], L, N) for y in x])
    a = consensus_correct(orc, orc.process, sch, None, log_evidence=ev, error_rate=e)
    b = consensus_correct(orc, orc.process, sch, torch.nn.functional.one_hot(x, N).double(), error_rate=e)
    assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-12) and (a[0] != x).any()


def test_cli_fastq_uses_base_qualities(dna_uniform, tmp_path):
    from Bio import SeqIO
    from seqdiff.pretrained import resolve_model
    from test_correct import cli
    clean = "TTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGCGGATAACAATT"
    q_hi = "I" * len(clean)  # Q 40
    pair_a = clean[:20] + "C" + clean[21:]  # a wrong base called with Q 5 ...
    q_a = q_hi[:20] + "&" + q_hi[21:]
    inp = tmp_path / "reads.fq"
    inp.write_text(f"@solid\n{clean}\n+\n{q_hi}\n@m/1\n{pair_a}\n+\n{q_a}\n@m/2\n{clean}\n+\n{q_hi}\n")
    model = resolve_model("dna-uniform")
    r = cli("correct", "-m", model, "-i", inp, "-o", tmp_path / "fixed.fq", "-q")
    assert r.returncode == 0, r.stderr
    recs = list(SeqIO.parse(tmp_path / "fixed.fq", "fastq"))
    assert [x.id for x in recs] == ["solid", "m/1", "m/2"]
    assert str(recs[0].seq) == clean and str(recs[2].seq) == clean  # Q 40 bases do not move
    assert all(0 <= v <= 60 for x in recs for v in x.letter_annotations["phred_quality"])
    table = pd.read_csv(tmp_path / "fixed.csv", keep_default_na=False, dtype=str)
    assert set(table["method"]) == {"quality-oneshot"} and table["rate_estimated"][0] == "False"
    # ... and with the other read of the molecule at Q 40, the Q 40 letter wins whatever the model thinks
    r = cli("correct", "-m", model, "-i", inp, "-o", tmp_path / "mol.fq", "-q", "--group-by", r"^(m|solid)")
    assert r.returncode == 0, r.stderr
    recs = {x.id: x for x in SeqIO.parse(tmp_path / "mol.fq", "fastq")}
    assert str(recs["m"].seq) == clean and recs["m"].letter_annotations["phred_quality"][20] >= 20
    # qualities ignored: the rate-based channel, and the same records
    r = cli("correct", "-m", model, "-i", inp, "-o", tmp_path / "plain.fq", "-q", "--ignore-quality", "-r", "0.01")
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(tmp_path / "plain.csv", keep_default_na=False, dtype=str)["method"]) == {"oneshot"}
    bad = tmp_path / "bad.fq"
    bad.write_text(f"@ok\n{clean}\n+\n{q_hi}\n@short\nACGT\n+\nII\n")
    r = cli("correct", "-m", model, "-i", bad, "-o", tmp_path / "bad_out.fq", "-q")
    assert r.returncode == 2 and "bad.fq" in r.stderr and "record 2" in r.stderr, r.stderr
    assert not (tmp_path / "bad_out.fq").exists()


# ------------------------------------------------------------------------------ the AR baseline
class ExplicitAR:
    """An "autoregressive model" whose joint is an explicit p0 (log_likelihood looks it up)."""

    def __init__(self, p0, n):
        self.p0, self.n = p0, n
        self.config = type("C", (), {"n_out": n})()

    def log_likelihood(self, x, pad_mask=None):
        w = self.n ** torch.arange(x.shape[-1] - 1, -1, -1)
        return torch.log(self.p0[(x * w).sum(-1)])


def test_ar_substitutions_and_the_ar_decision_are_exact():
    from seqdiff.jobs.correct import ar_substitution_log_likelihoods
    p0 = peaky(N ** L, 10)
    ar = ExplicitAR(p0, N)
    x = all_sequences(range(N), L)
    idx = lambda s: int((s * N ** torch.arange(L - 1, -1, -1)).sum())  # noqa: E731
    got = ar_substitution_log_likelihoods(ar, x, batch_size=5)
    for k, y in enumerate(x):
        for i in range(L):
            for a in range(N):
                ya = y.clone()
                ya[i] = a
                assert float(got[k, i, a]) == pytest.approx(math.log(p0[idx(ya)] / p0[idx(y)]), abs=1e-9)
    # one read, rate r: per position argmax_a p0(y^{i←a}) q(y_i | a), the posterior with the rest as read
    r = 0.2
    c, conf, _, _, _ = consensus_correct(ar, None, None, torch.nn.functional.one_hot(x, N).double(),
                                         error_rate=r, iters=1)
    q = torch.tensor([[1 - r if a == b else r / (N - 1) for a in range(N)] for b in range(N)], dtype=torch.float64)
    want = torch.softmax(got + torch.log(q[x]), -1)
    assert torch.equal(c, want.argmax(-1)) and torch.allclose(conf, want.max(-1).values, atol=1e-9)
    assert (c != x).any()


@pytest.fixture(scope="module")
def tiny_text_ar(tmp_path_factory):
    from pathlib import Path

    from seqdiff.training.config import load_config
    from seqdiff.training.train import train
    root = Path(__file__).resolve().parents[1]
    run = tmp_path_factory.mktemp("correct-tiny-ar")
    cfg = load_config(root / "configs" / "tiny" / "text.yaml",
                      [f"out_dir={run}", "model.arch=ar", "sampling.log_samples=0", "trainer.max_steps=20",
                       "trainer.progress_bar=false", "data.seq_len=16"])
    return Path(train(cfg, quiet=True)["model"])


def test_ar_baseline_corrects_through_the_api_and_the_cli(tiny_text_ar, tmp_path):
    from seqdiff.model import load_model
    from test_correct import cli
    model = load_model(tiny_text_ar)
    seqs = ["the cat sat", "on the mqt"]
    res = correct(model, seqs, error_rate=0.1, keep="0-2")
    assert [r.method for r in res] == ["ar", "ar"] and [len(r.corrected) for r in res] == [11, 10]
    assert all(r.corrected[:3] == s[:3] for r, s in zip(res, seqs))
    est = correct(model, seqs)
    assert all(r.estimated and 0 < r.error_rate < 0.75 for r in est)
    with pytest.raises(ValueError, match="method 'ar'"):
        correct(model, seqs, method="oneshot")
    inp = tmp_path / "typos.txt"
    inp.write_text("\n".join(seqs) + "\n")
    r = cli("correct", "-m", tiny_text_ar, "-i", inp, "-o", tmp_path / "fixed.txt", "-q", "-r", "0.05")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "fixed.csv", keep_default_na=False, dtype=str)
    assert set(table["method"]) == {"ar"} and list(table["input"]) == seqs
