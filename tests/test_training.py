"""The training pipeline on real data: every domain trains, resume after a kill is exact, the
checkpoint reloads and samples, recipes are validated."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from seqdiff.data.errors import DataError
from seqdiff.model import ModelLoadError, SeqDiffModel, load_model
from seqdiff.tokenizers import CharTokenizer, DNATokenizer
from seqdiff.training.config import ConfigError, config_docs, load_config
from seqdiff.training.data import build_datasets
from seqdiff.training.train import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _initial_bpt(cfg, model: SeqDiffModel) -> float:
    """Validation bits/token of the untrained model, with the training module's estimator."""
    ds = build_datasets(cfg, model.tokenizer)["valid"]
    rows = torch.stack([ds[i] for i in range(min(len(ds), 256))])
    pad = rows != model.tokenizer.pad_id
    res = model.nll(rows, pad, n_t=16, generator=torch.Generator().manual_seed(0))
    return float(res.nats.sum() / (pad.sum() * math.log(2)))


@pytest.mark.parametrize("domain", ["text", "dna", "protein", "smiles"])
def test_each_domain_trains_and_its_validation_bound_falls(domain, tmp_path):
    cfg = load_config(TINY / f"{domain}.yaml", [f"out_dir={tmp_path}", "trainer.progress_bar=false"])
    summary = train(cfg, quiet=True)
    model = load_model(summary["model"])
    fresh = SeqDiffModel(cfg, model.tokenizer, model.length_histogram)
    before = _initial_bpt(cfg, fresh)
    # masked diffusion with a uniform prediction costs exactly log2(#tokens) bits per token
    assert before == pytest.approx(math.log2(model.tokenizer.num_data_tokens), rel=0.05)
    assert summary["val_bits_per_token"] < before - 0.1, (before, summary)
    assert summary["tokens_per_second"] > 0 and summary["parameters"] == model.num_parameters()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["steps"] == cfg.trainer.max_steps
    # periodic samples were written and decode in the domain's alphabet
    samples = sorted((tmp_path / "samples").glob("step_*.txt"))
    assert samples and samples[-1].read_text().strip()
    # the model reloads (export and Lightning checkpoint agree: both EMA weights) and samples
    from_ckpt = load_model(tmp_path / "checkpoints" / "last.ckpt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, from_ckpt.state_dict()[k]), k
    ids = model.generate(6, generator=torch.Generator().manual_seed(1), steps=8)
    texts = model.decode(ids)
    assert len(texts) == 6
    for s in texts:
        assert 0 < len(model.tokenizer.encode(s)) <= cfg.data.seq_len
    if domain in ("protein", "smiles"):  # variable lengths drawn from the training distribution
        lens = (ids != model.tokenizer.pad_id).sum(-1)
        hist = torch.tensor(model.length_histogram)
        assert (hist[lens] > 0).all()


VARIANTS = [
    ["diffusion.loss=score_entropy", "diffusion.schedule.name=loglinear", "diffusion.parameterization=score"],
    ["diffusion.loss=score_entropy", "diffusion.schedule.name=loglinear"],
    ["diffusion.process=uniform", "diffusion.loss=score_entropy", "diffusion.schedule.name=geometric"],
    ["diffusion.process=uniform", "diffusion.loss=multinomial", "diffusion.schedule={name: discrete, num_steps: 100}"],
    ["diffusion.loss=genmd4", "diffusion.schedule.name=genmd4"],
    ["model.arch=ar"],
    ["model.time_conditioning=false", "diffusion.schedule.name=cosine"],
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda v: "+".join(o.split("=")[1].split(",")[0] for o in v))
def test_every_objective_trains(overrides, tmp_path):
    cfg = load_config(TINY / "text.yaml", [f"out_dir={tmp_path}", "trainer.max_steps=40", "trainer.val_every=40",
                                           "sampling.log_samples=0"] + overrides)
    fresh = SeqDiffModel(cfg, CharTokenizer())
    before = _initial_bpt(cfg, fresh)
    summary = train(cfg, quiet=True)
    assert math.isfinite(summary["val_bits_per_token"])
    assert summary["val_bits_per_token"] < before, (before, summary["val_bits_per_token"])
    model = load_model(summary["model"])
    if model.is_ar:
        ids = model.generate(3, 16, generator=torch.Generator().manual_seed(0))
    else:
        ids = model.generate(3, 16, steps=8, generator=torch.Generator().manual_seed(0))
    assert ids.shape == (3, 16) and (ids < model.tokenizer.num_data_tokens).all()
    if "diffusion.loss=genmd4" in overrides:  # the schedule exponents are trained
        assert not torch.allclose(model.schedule.w[:-1], torch.ones(model.tokenizer.num_data_tokens))


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from lightning.pytorch.callbacks import Callback
    from seqdiff.training.config import load_config
    from seqdiff.training.train import train

    class KillAt(Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, like a node failure

    train(load_config(sys.argv[1], [f"out_dir={sys.argv[2]}"]), callbacks=[KillAt()], quiet=True)
""")


def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path):
    cfg_path = TINY / "text.yaml"
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cli = [sys.executable, "-m", "seqdiff.cli", "train", "-c", str(cfg_path), "-q"]
    subprocess.run(cli + [f"out_dir={straight}"], check=True, env=ENV, cwd=ROOT, capture_output=True)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    # killed at step 13: after the step-10 checkpoint and before the first validation (step 15)
    r = subprocess.run([sys.executable, str(script), str(cfg_path), str(killed), "13"], env=ENV, cwd=ROOT,
                       capture_output=True)
    assert r.returncode == -9
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10
    assert not (killed / "model.pt").exists()
    r = subprocess.run(cli + [f"out_dir={killed}"], env=ENV, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "resuming" in r.stdout
    a = torch.load(straight / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = json.loads((straight / "summary.json").read_text())
    sb = json.loads((killed / "summary.json").read_text())
    assert sa["val_bits_per_token"] == sb["val_bits_per_token"]


def test_resume_refuses_a_different_recipe(tmp_path):
    cfg = load_config(TINY / "text.yaml", [f"out_dir={tmp_path}", "trainer.max_steps=10", "sampling.log_samples=0"])
    train(cfg, quiet=True)
    other = load_config(TINY / "text.yaml", [f"out_dir={tmp_path}", "model.d_model=48", "model.n_heads=2"])
    with pytest.raises(ConfigError, match="`model` differs"):
        train(other, quiet=True)
    with pytest.raises(ConfigError, match="already exists"):
        train(cfg, resume=False, quiet=True)


def test_recipes_are_validated(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {train: x.txt}\noptim: {learning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key `optim.learning_rate`"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must be int"):
        load_config(TINY / "text.yaml", ["trainer.max_steps=ten"])
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(TINY / "text.yaml", ["diffusion.process=gaussian"])
    with pytest.raises(ConfigError, match="needs `diffusion.process: absorbing`"):
        load_config(TINY / "text.yaml", ["diffusion.process=uniform"])
    with pytest.raises(ConfigError, match="divisible"):
        load_config(TINY / "text.yaml", ["model.n_heads=3"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(TINY / "text.yaml", ["optim.lr=0.5", "model.attn_backend=reference"])
    assert cfg.optim.lr == 0.5 and cfg.model.attn_backend == "reference"
    # YAML 1.1 reads `2e-3` as a string: float fields still take it, in files and overrides alike
    exp = tmp_path / "exp.yaml"
    exp.write_text("data: {train: x.txt}\noptim: {lr: 2e-3, weight_decay: 1}\n")
    cfg = load_config(exp, ["optim.eps=1E-6"])
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.eps) == (2e-3, 1.0, 1e-6)
    with pytest.raises(ConfigError, match="must be float"):
        load_config(TINY / "text.yaml", ["optim.lr=fast"])
    docs = config_docs()
    for key in ("data.seq_len", "diffusion.loss", "optim.ema", "trainer.strategy", "model.time_conditioning"):
        assert f"`{key}`" in docs


def test_every_shipped_recipe_is_valid():
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        load_config(path)


def test_bad_records_fail_with_file_record_and_position(tmp_path):
    fa = tmp_path / "bad.fa"
    fa.write_text(">ok\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n"
                  ">broken\nACGTACGJACGT\n")
    r = subprocess.run([sys.executable, "-m", "seqdiff.cli", "train", "-c", str(TINY / "dna.yaml"),
                        f"data.train={fa}", f"out_dir={tmp_path / 'run'}", "-q"], env=ENV, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "bad.fa" in r.stderr and "'broken'" in r.stderr and "position 8" in r.stderr
    assert not (tmp_path / "run" / "model.pt").exists()
    cfg = load_config(TINY / "dna.yaml", [f"data.train={fa}", "data.skip_invalid=true", "data.seq_len=16"])
    ds = build_datasets(cfg, DNATokenizer(ambiguity="N"))
    assert ds["train"].encoded.num_skipped == 1 and ds["train"].encoded.skipped_ids == ["broken"]


def test_load_model_rejects_files_that_are_not_models(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a seqdiff model"):
        load_model(junk)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ModelLoadError, match="no seqdiff config"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ModelLoadError, match="no such"):
        load_model(tmp_path / "nothing.pt")


def test_config_reference_is_in_sync():
    """configs/README.md is generated from the dataclasses; regenerate it when a field changes."""
    text = (ROOT / "configs" / "README.md").read_text()
    assert text.endswith(config_docs()), "regenerate configs/README.md from seqdiff.training.config.config_docs()"


@pytest.mark.parametrize("overrides", [
    ["data.streaming=true"],  # text read lazily, never loaded whole
], ids=["streaming"])
def test_text_layouts_train(overrides, tmp_path):
    cfg = load_config(TINY / "text.yaml", [f"out_dir={tmp_path}", "trainer.max_steps=12", "trainer.val_every=12",
                                           "sampling.log_samples=0"] + overrides)
    summary = train(cfg, quiet=True)
    assert summary["steps"] == 12 and math.isfinite(summary["val_bits_per_token"])


def test_packed_smiles_train(tmp_path):
    """Packing: molecules concatenated with an end token, no compute spent on padding."""
    cfg = load_config(TINY / "smiles.yaml", [f"out_dir={tmp_path}", "trainer.max_steps=12", "trainer.val_every=12",
                                             "sampling.log_samples=0", "data.layout=pack",
                                             "tokenizer.options={use_bos_eos: true}"])
    summary = train(cfg, quiet=True)
    model = load_model(summary["model"])
    from seqdiff.training.data import build_datasets
    rows = build_datasets(cfg, model.tokenizer)["train"]
    x = torch.stack([rows[i] for i in range(8)])
    assert (x != model.tokenizer.pad_id).all()  # every position is a real token
    assert (x == model.tokenizer.eos_id).any()  # molecules are separated
    # separators are context: neither diffused nor scored
    assert torch.equal(model.scored(x, x != model.tokenizer.pad_id), x < model.tokenizer.num_data_tokens)
    assert math.isfinite(summary["val_bits_per_token"])


def test_ema_warms_up_and_tracks_the_weights():
    """The EMA must not keep a large share of the initial weights in short runs."""
    from seqdiff.training.module import EMA
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, 0.999)
    for _ in range(200):
        with torch.no_grad():
            lin.weight.fill_(1.0)
        ema.update(lin)
    # a plain 0.999 decay would give 1 - 0.999**200 ≈ 0.18 after 200 updates
    assert float(ema.shadow["weight"]) > 0.9
    assert ema.current_decay() <= 0.999
    state = ema.state_dict()
    again = EMA(lin, 0.5)
    again.load_state_dict(state)
    assert again.num_updates == 200 and again.decay == 0.999
