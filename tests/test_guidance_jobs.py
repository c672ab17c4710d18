"""Guidance on real models: rewards on real molecules and sequences (RDKit, JASPAR), conditional
training with Lightning from labelled CSV/FASTA files, old model files, and the CLI flags."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqdiff.data.errors import DataError
from seqdiff.guidance.conditions import read_labelled
from seqdiff.guidance.rewards import parse_reward
from seqdiff.guidance.run import GuidanceSettings, guided_generate
from seqdiff.model import load_model
from seqdiff.models.dit import DiT, DiTConfig, unconditional_to_conditional
from seqdiff.pretrained import resolve_model
from seqdiff.training.config import load_config
from seqdiff.training.train import train

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    import contextlib
    import io
    import types

    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


# ------------------------------------------------------------------------------------- rewards
def test_molecule_rewards_are_rdkit_values_and_invalid_gets_the_floor():
    from rdkit import Chem
    from rdkit.Chem import QED, Crippen, Descriptors
    smis = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CC"]  # the last does not parse
    mols = [Chem.MolFromSmiles(s) for s in smis[:3]]
    assert np.allclose(parse_reward("qed")(smis)[:3], [QED.qed(m) for m in mols]) and parse_reward("qed")(smis)[3] == 0
    assert np.allclose(parse_reward("logp")(smis)[:3], [Crippen.MolLogP(m) for m in mols])
    assert parse_reward("logp")(smis)[3] == -10.0
    assert np.allclose(parse_reward("mw")(smis)[:3], [Descriptors.MolWt(m) for m in mols])
    assert list(parse_reward("has=c1ccccc1")(smis)) == [0, 1, 1, 0]
    assert list(parse_reward("lacks=[OX2H]")(smis)) == [0, 0, 0, 0]  # every valid one has an OH
    sa = parse_reward("sa_ease")(["CCO", "C[C@H]1C[C@@H]2CC[C@H]1C2"])  # stereocentres + bridgeheads
    assert 0 <= sa[1] < sa[0] <= 1


def test_a_molecule_rdkit_cannot_score_gets_the_floor_not_a_crash():
    """Some sanitised molecules make a descriptor raise (QED's hydrogen removal can fail to kekulise); the
    batch is still scored, that molecule at the floor."""
    from rdkit.Chem import Descriptors

    from seqdiff.guidance.rewards import _per_mol

    def heavy_or_fail(m):
        if m.GetNumAtoms() == 1:
            raise ValueError("cannot score this one")
        return Descriptors.MolWt(m)

    f = _per_mol(heavy_or_fail, -1.0)
    out = f(["CCO", "C", "C1CC", "c1ccccc1"])
    assert out[1] == -1.0 and out[2] == -1.0  # the unscorable and the unparsable
    assert np.allclose(out[[0, 3]], [46.069, 78.114], atol=1e-3)


def test_sequence_rewards():
    assert np.allclose(parse_reward("gc")(["GGCA", "ATAT", "gcgc"]), [0.75, 0.0, 1.0])
    assert np.allclose(parse_reward("hydrophobicity")(["IIII", "IK"]), [4.5, (4.5 - 3.9) / 2])
    from seqdiff.domains.motifs import load_motifs
    m = load_motifs()[0]
    motif = parse_reward(f"motif={m.id}")
    rng = random.Random(0)
    bg = "".join(rng.choice("ACGT") for _ in range(40))
    planted = bg[:10] + m.consensus + bg[10 + m.length:]
    s = motif([bg, planted])
    assert s[1] > s[0] and s[1] > 0.9


def test_reward_ranges_and_strength():
    r = parse_reward("gc@0.4..0.6:3")
    assert r.lam == 3.0 and np.allclose(r(["GGGG", "GCAT", "AAAA"]), [-0.4, 0.0, -0.4])
    assert np.allclose(parse_reward("gc@0.5..")(["AAAA", "GGGG"]), [-0.5, 0.0])
    assert parse_reward("has=c1:c:c:c:c:c:1:2").arg == "c1:c:c:c:c:c:1"  # λ after a SMARTS ending in :1


@pytest.mark.parametrize("spec,msg", [("nope", "unknown reward"), ("gc@0.6..0.4", "empty"), ("gc@a..b", "numbers"),
                                      ("qed=x", "takes no argument"), ("has", "needs an argument"),
                                      ("has=[[", "SMARTS"), ("motif=NOT_A_MOTIF", "motif"),
                                      ("py=no_such_module_xyz:f", "cannot import")])
def test_bad_reward_specs_are_one_line_errors(spec, msg):
    with pytest.raises(ValueError, match=msg) as e:
        parse_reward(spec)
    assert "\n" not in str(e.value)


def test_user_python_reward(tmp_path, monkeypatch):
    (tmp_path / "my_scores.py").write_text("def length(seqs):\n    return [len(s) for s in seqs]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(parse_reward("py=my_scores:length:2")(["AC", "ACGT"])) == [2, 4]
    with pytest.raises(ValueError, match="no function"):
        parse_reward("py=my_scores:missing")


# ------------------------------------------------------------------------------- labelled data
def _labelled_dna(path: Path, n: int = 400, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sequence", "label", "gc"])
        for _ in range(n):
            c = rng.choice("AB")
            s = "".join(rng.choice("GGCCAT" if c == "A" else "AATTGC") for _ in range(24))
            w.writerow([s, c, round((s.count("G") + s.count("C")) / 24, 3)])


def test_read_labelled_csv_and_fasta_headers(tmp_path):
    f = tmp_path / "x.fa"
    f.write_text(">s1 activity=high gc=0.5\nACGT\n>s2 gc=0.25 activity=low\nAAGT\n")
    ids, seqs, vals = read_labelled(f, "activity")
    assert (ids, seqs, vals) == (["s1", "s2"], ["ACGT", "AAGT"], ["high", "low"])
    g = tmp_path / "y.fa"
    g.write_text(">s1 gc=0.5\nACGT\n>s2 other=1\nAAGT\n")
    with pytest.raises(DataError, match=r"y.fa: record 's2': no `gc=` field"):
        read_labelled(g, "gc")
    c = tmp_path / "z.csv"
    c.write_text("smiles,qed\nCCO,0.4\nCCN,\n")
    with pytest.raises(DataError, match=r"z.csv: record 2: no value in column 'qed'"):
        read_labelled(c, "qed")
    with pytest.raises(DataError, match=r"no column 'logp' \(columns: smiles, qed\)"):
        read_labelled(c, "logp")


@pytest.fixture(scope="module")
def conditional_dna(tmp_path_factory):
    """A tiny conditional DNA model trained with Lightning on a labelled CSV (class A GC-rich, B AT-rich)."""
    d = tmp_path_factory.mktemp("cond")
    _labelled_dna(d / "lab.csv")
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml", [
        f"out_dir={d / 'run'}", f"data.train={d / 'lab.csv'}", "data.valid=", "data.seq_len=24", "data.layout=pad",
        "data.batch_size=32", "model.time_conditioning=false", "optim.lr=3e-3", "optim.ema=0.0",
        "optim.warmup_steps=10", "trainer.max_steps=150", "trainer.val_every=150", "sampling.log_samples=0",
        "condition.column=label", "condition.dropout=0.2", "sampling.steps=24"])
    summary = train(cfg, quiet=True)
    return Path(summary["model"]), summary


def _gc(texts):
    return float(np.mean([(s.count("G") + s.count("C")) / len(s) for s in texts]))


def test_conditional_training_and_guidance(conditional_dna):
    path, summary = conditional_dna
    assert summary["classes"] == ["A", "B"] and sum(summary["class_counts"]) == summary["train_rows"]
    m = load_model(path)
    assert m.num_classes == 2 and m.network.class_embed.weight.shape[0] == 3  # + the null class
    gc = {}
    for cond in ("A", "B"):
        for gamma in (0.0, 1.0, 3.0):
            st = GuidanceSettings(condition=cond, guidance=gamma).check(m)
            ids = guided_generate(m, st, 200, 24, generator=torch.Generator().manual_seed(0), steps=24)
            gc[cond, gamma] = _gc(m.decode(ids))
    assert gc["A", 0.0] == gc["B", 0.0]  # γ = 0: the unconditional model, whatever the condition
    assert gc["B", 1.0] + 0.08 < gc["A", 0.0] < gc["A", 1.0] - 0.08, gc  # the condition is learned
    assert gc["A", 3.0] > gc["A", 1.0] and gc["B", 3.0] < gc["B", 1.0]  # γ > 1 sharpens it
    # the x0 mode and other samplers work too
    st = GuidanceSettings(condition="A", guidance=2.0, mode="x0").check(m)
    ids = guided_generate(m, st, 100, 24, sampler="confidence", generator=torch.Generator().manual_seed(1), steps=24)
    assert _gc(m.decode(ids)) > gc["A", 0.0]


def test_binned_numeric_conditions(tmp_path):
    _labelled_dna(tmp_path / "lab.csv", n=120)
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml", [
        f"out_dir={tmp_path / 'run'}", f"data.train={tmp_path / 'lab.csv'}", "data.valid=", "data.seq_len=24",
        "data.layout=pad", "trainer.max_steps=2", "trainer.val_every=2", "sampling.log_samples=0",
        "condition.column=gc", "condition.quantiles=3"])
    m = load_model(train(cfg, quiet=True)["model"])
    edges = m.cfg.condition.bins
    assert len(edges) == 2 and m.cfg.condition.quantiles == 0 and len(m.cfg.condition.classes) == 3
    assert m.condition_index(edges[0] - 0.01) == 0 and m.condition_index(edges[1] + 0.01) == 2
    assert m.condition_index(m.cfg.condition.classes[1]) == 1
    with pytest.raises(ValueError, match="not one this model was trained on"):
        m.condition_index("high")


# ------------------------------------------------------------------------------ old model files
def test_shipped_unconditional_models_load_unchanged_and_carry_over_exactly():
    m = load_model(resolve_model("dna"))
    assert m.num_classes == 0 and m.network.class_embed is None
    raw = torch.load(resolve_model("dna"), weights_only=True)
    assert set(raw["state_dict"]) == set(m.state_dict())  # no new weights in an old model
    x = torch.randint(0, 4, (3, 40))
    out = m.denoiser(x, torch.rand(3))
    with pytest.raises(ValueError, match="no condition classes"):
        m.network(x, torch.rand(3), None, cond=torch.zeros(3, dtype=torch.long))
    # the same network with classes, from the old weights: identical outputs for every class and none
    cfg = DiTConfig(**{**{k: v for k, v in m.network.config.to_dict().items() if k != "arch"}, "num_classes": 3})
    net = DiT(cfg)
    net.load_state_dict(unconditional_to_conditional(m.network.state_dict(), cfg), strict=False)
    base = m.network(x, torch.rand(3))
    for c in (0, 1, 2, 3):
        assert torch.allclose(net(x, None, None, cond=torch.full((3,), c)), base, atol=1e-5)
    assert torch.isfinite(out).all()


# ----------------------------------------------------------------------------------------- CLI
def test_cli_reward_column_and_errors(tmp_path, conditional_dna):
    path, _ = conditional_dna
    out = tmp_path / "g.fa"
    r = cli("sample", "-m", path, "-n", 6, "--length", 24, "--reward", "gc@0.6..:5", "--particles", 4, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    for row in rows:  # the CSV's reward is the reward of the written sequence
        assert float(row["reward"]) == pytest.approx(float(parse_reward("gc@0.6..")([row["sequence"]])[0]), abs=1e-6)
    r = cli("infill", "-m", path, "-t", "ACGT{20}", "-n", 3, "--condition", "A", "--guidance", 2, "-o",
            tmp_path / "i.fa", "-q")
    assert r.returncode == 0, r.stderr
    for args, msg in [(["--condition", "C"], "not one this model was trained on"),
                      (["--reward", "qed", "--best-of", 2], "for smiles models"),
                      (["--reward", "nope", "--best-of", 2], "unknown reward"),
                      (["--reward", "gc@1..0", "--best-of", 2], "empty"),
                      (["--condition", "A", "--guidance", -1], "≥ 0"),
                      (["--reward", "gc", "--best-of", 2, "--particles", 2], "one of")]:
        bad = tmp_path / "bad.fa"
        r = cli("sample", "-m", path, "-n", 2, "--length", 24, "-o", bad, "-q", *args)
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert not bad.exists() and "Traceback" not in r.stderr
    r = cli("sample", "-m", "dna", "-n", 2, "--length", 24, "-o", tmp_path / "u.fa", "-q", "--condition", "A")
    assert r.returncode == 2 and "not trained with conditions" in r.stderr


def test_a_conditional_model_continues_from_itself(conditional_dna, tmp_path):
    path, summary = conditional_dna
    lab = tmp_path / "lab.csv"
    _labelled_dna(lab, n=60, seed=1)
    over = [f"data.train={lab}", "data.valid=", "data.seq_len=24", "data.layout=pad", "trainer.max_steps=2",
            "trainer.val_every=2", "sampling.log_samples=0", f"condition.init_from={path}"]
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml", over + [f"out_dir={tmp_path / 'a'}", "condition.column=label"])
    m = load_model(train(cfg, quiet=True)["model"])
    assert m.cfg.condition.classes == ["A", "B"] and m.num_classes == 2
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml", over + [f"out_dir={tmp_path / 'b'}", "condition.column=gc",
                                                                        "condition.bins=[0.5]"])
    with pytest.raises(ValueError, match="conditional on another column"):
        train(cfg, quiet=True)
