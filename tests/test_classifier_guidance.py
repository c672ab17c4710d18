"""Classifier guidance with a trained noisy-sequence property predictor: the training objective
against the exact noisy posterior of a small explicit distribution (enumeration), the Gaussian
target probabilities, the first-order (gradient) tilt against enumeration, predictor files, the
recipe/CLI path and its errors, and guidance moving a property on a tiny problem."""

from __future__ import annotations

import csv
import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from seqdiff.diffusion import Absorbing, Linear, LogLinear, Uniform, build_sampler, exact_sampler_distribution
from seqdiff.guidance.cfg import ConditionalOracle
from seqdiff.guidance.classifier import classifier_guided, first_order_log_probs, single_change_log_probs
from seqdiff.guidance.predictor import (Predictor, gaussian_log_prob, load_predictor, onehot_first_order,
                                        parse_target, predictor_loss)
from seqdiff.guidance.train_predictor import fit_predictor
from seqdiff.serialization import ModelLoadError
from seqdiff.training.config import TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
L = 3
DNA_TOK = {"kind": "dna", "format_version": 1, "use_bos_eos": False, "mask_placeholder": "_", "ambiguity": "N",
           "rna": False, "num_data_tokens": 5}


def cli(*args):
    import contextlib
    import io
    import types

    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


# --------------------------------------------------------------------------- Gaussian targets
def test_gaussian_target_probabilities_are_normal_cdf_differences():
    """log P(lo ≤ y ≤ hi) against 50-digit arithmetic (mpmath, a dependency of torch's sympy),
    including far tails where a plain difference of two CDFs near 1 loses every digit."""
    import mpmath
    from scipy.stats import norm
    mpmath.mp.dps = 50
    mu = torch.tensor([0.0, 1.0, -2.0, 0.3, 9.0], dtype=torch.float64)
    logvar = torch.tensor([0.0, 0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    sd = np.exp(0.5 * logvar.numpy())
    for lo, hi in [(-0.5, 0.7), (0.2, None), (None, -1.0), (3.0, 4.0), (-30.0, -29.0)]:
        got = gaussian_log_prob(mu, logvar, lo, hi).numpy()
        for k in range(len(mu)):
            m, s_ = mpmath.mpf(float(mu[k])), mpmath.mpf(float(sd[k]))
            a = mpmath.ncdf((lo - m) / s_) if lo is not None else 0
            b = mpmath.ncdf((hi - m) / s_) if hi is not None else 1
            assert got[k] == pytest.approx(float(mpmath.log(b - a)), rel=1e-9, abs=1e-9), (lo, hi, k)
    v = gaussian_log_prob(mu, logvar, 0.4, 0.4).numpy()
    assert np.allclose(v, norm.logpdf(0.4, mu.numpy(), sd))
    # gradients are finite everywhere (one-sided ranges included)
    m = mu.clone().requires_grad_(True)
    for lo, hi in [(0.2, None), (None, -1.0), (3.0, 4.0)]:
        (g,) = torch.autograd.grad(gaussian_log_prob(m, logvar, lo, hi).sum(), m)
        assert torch.isfinite(g).all()


def test_predictor_loss_is_cross_entropy_and_gaussian_nll():
    out = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([2, 0])
    assert torch.allclose(predictor_loss(out, y, "classes"), -torch.log_softmax(out, -1)[torch.arange(2), y])
    g = torch.tensor([[0.5, math.log(0.25)], [-1.0, 0.0]])
    v = torch.tensor([1.0, -1.0])
    want = torch.tensor([-math.log(1 / math.sqrt(2 * math.pi * 0.25)) + 0.25 / (2 * 0.25),
                         0.5 * math.log(2 * math.pi)])
    assert torch.allclose(predictor_loss(g, v, "gaussian"), want, atol=1e-6)


# ----------------------------------------------------- the objective against the exact posterior
def _joint(proc, sch):
    """Two classes, each drawing its tokens independently from its own law (class a favours the first
    tokens, class b the last), priors 0.4 / 0.6: the noisy posterior is a sum of evidence over the
    positions that still carry information."""
    k = proc.num_data_tokens
    pa = torch.linspace(3.0, 0.5, k, dtype=torch.float64)
    laws = torch.stack([pa / pa.sum(), pa.flip(0) / pa.sum()])
    configs = torch.tensor(list(itertools.product(range(k), repeat=L)))
    p = laws[:, configs].prod(-1)  # [2, k^L]
    return ConditionalOracle(p, torch.tensor([0.4, 0.6], dtype=torch.float64), L, proc, sch)


def _tiny_cfg(**over) -> TrainConfig:
    d = {"data": {"kind": "dna", "train": "unused", "seq_len": L, "batch_size": 256, "eval_batch_size": 512},
         "optim": {"lr": 1e-2, "warmup_steps": 10, "lr_schedule": "constant", "ema": 0.0, "grad_clip": 1.0},
         "trainer": {"max_steps": 300, "val_every": 300, "log_every": 50, "accelerator": "cpu", "deterministic": False,
                     "progress_bar": False}}
    for k, v in over.items():
        d[k].update(v)
    return TrainConfig.from_dict(d)


def _draw(orc, n, seed):
    g = torch.Generator().manual_seed(seed)
    c = torch.multinomial(orc.prior, n, replacement=True, generator=g)
    idx = torch.multinomial(orc.p0_given_c[c], 1, generator=g)[:, 0]
    return orc.oracles[0].configs[idx], c


@pytest.mark.parametrize("process", ["absorbing", "uniform"])
def test_trained_predictor_approaches_the_exact_noisy_posterior(process):
    """Cross-entropy on (x_t, c) pairs noised by the model's own process is minimised by the exact
    p(c | x_t); a tiny predictor trained on draws of an explicit joint law gets close to it (KL
    averaged over the noisy marginal, over several t), far closer than the class prior does."""
    if process == "absorbing":
        proc, sch, diff = Absorbing(6), Linear(), {"process": "absorbing", "schedule": {"name": "linear"},
                                                   "loss": "masked", "parameterization": "x0"}
    else:
        proc, sch, diff = Uniform(5), LogLinear(), {"process": "uniform", "schedule": {"name": "loglinear"},
                                                    "loss": "score_entropy", "parameterization": "x0"}
    orc = _joint(proc, sch)
    spec = {"column": "c", "kind": "classes", "classes": ["a", "b"], "bins": None, "mean": None, "std": None,
            "network": {"d_model": 32, "n_layers": 1, "n_heads": 2, "cond_dim": 32, "mlp_ratio": 2.0}}
    pred = Predictor(spec, DNA_TOK, diff)
    assert type(pred.process) is type(proc) and pred.process.vocab_size == proc.vocab_size
    x, c = _draw(orc, 6000, 0)
    vx, vc = _draw(orc, 500, 1)
    m = torch.ones_like(x, dtype=torch.bool)
    res = fit_predictor(pred, _tiny_cfg(), (x, m, c), (vx, torch.ones_like(vx, dtype=torch.bool), vc))
    assert res["steps"] == 300
    states = torch.tensor(list(itertools.product(range(proc.vocab_size), repeat=L)))
    kl_pred, kl_prior = [], []
    for t in (0.2, 0.5, 0.8):
        tt = torch.full((states.shape[0],), t, dtype=torch.float64)
        w = orc.oracles[-1].marginal(states, tt)  # p_t(x_t)
        exact = orc.log_class_posterior(states, tt)
        with torch.no_grad():
            got = pred.log_probs(states, tt.float()).double()
        kl = (exact.exp() * (exact - got)).sum(-1)
        kl0 = (exact.exp() * (exact - torch.log(orc.prior)[None])).sum(-1)
        kl_pred.append(float((w * kl).sum()))
        kl_prior.append(float((w * kl0).sum()))
    assert max(kl_pred) < 0.01 and sum(kl_pred) < 0.05 * sum(kl_prior), (kl_pred, kl_prior)


# ------------------------------------------------------------------ first order vs enumeration
class _OneHotClassifier:
    """A classifier given as a function of one-hot inputs (``[B, L, N] -> log p(target) [B]``)."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def __call__(self, x, t):
        return self.fn(torch.nn.functional.one_hot(x, self.n).double())[:, None]

    def first_order(self, x, t, n_states):
        return onehot_first_order(self.fn, x, self.n, n_states, torch.float64)


def test_first_order_tilt_equals_enumeration_for_an_additive_classifier_and_is_first_order_otherwise():
    """When log p(c | x) is a sum over positions the gradient estimate of every single-token change
    is exact, so the first-order guided sampler has exactly the enumerated guided law; adding an
    interaction between positions of strength ε, the estimate's error is that interaction's alone
    (proportional to ε, however large the additive part)."""
    proc, sch = Absorbing(4), Linear()
    n = proc.vocab_size
    g = torch.Generator().manual_seed(0)
    w = torch.randn(L, n, generator=g, dtype=torch.float64)
    additive = _OneHotClassifier(lambda oh: (oh * w).sum((1, 2)) - 5.0, n)
    from conftest import make_oracle
    orc = make_oracle(proc, sch, seed=3)
    for name in ("ancestral", "tweedie"):
        for gamma in (1.0, 3.0):
            a = classifier_guided(build_sampler(name, proc, sch, steps=4), additive, 0, gamma, method="exact")
            b = classifier_guided(build_sampler(name, proc, sch, steps=4), additive, 0, gamma, method="first_order")
            la, lb = exact_sampler_distribution(a, orc, L), exact_sampler_distribution(b, orc, L)
            assert torch.allclose(la, lb, atol=1e-10)
            base = exact_sampler_distribution(build_sampler(name, proc, sch, steps=4), orc, L)
            assert float((la - base).abs().sum()) > 0.05  # the tilt does something
    # with interactions between positions: the error is the interaction's only
    v = torch.randn(L, L, n, n, generator=g, dtype=torch.float64)
    x = torch.tensor([[0, 3, 2], [3, 3, 1]])
    errs = []
    for eps in (0.1, 0.01, 0.0):
        fn = lambda oh, e=eps: 10 * (oh * w).sum((1, 2)) + e * torch.einsum("bia,bjc,ijac->b", oh, oh, v)  # noqa: E731
        clf = _OneHotClassifier(fn, n)
        exact = single_change_log_probs(clf, x, torch.zeros(2), 0, n)
        approx = first_order_log_probs(clf, x, torch.zeros(2), n)
        errs.append(float((exact - approx).abs().max()))
    assert errs[0] > 0.01 and errs[1] == pytest.approx(errs[0] / 10, rel=1e-6) and errs[2] < 1e-9, errs


def test_x0_mode_with_the_exact_classifier_is_the_exact_conditional_prediction():
    """Masked process: tilting p(x_0^i | z_t) by p(c | z_t^{i←a}) / p(c | z_t) is Bayes' rule, so with the
    exact noisy classifier and γ = 1 the x0-mode prediction equals the exact conditional denoiser
    p(x_0^i | z_t, c) at every masked position of every noisy state; γ = 0 is the unconditional one."""
    from seqdiff.guidance.classifier import ClassifierX0
    proc, sch = Absorbing(4), Linear()
    g = torch.Generator().manual_seed(5)
    p = torch.rand(2, 27, generator=g, dtype=torch.float64) ** 2
    orc = ConditionalOracle(p / p.sum(-1, keepdim=True), torch.tensor([0.3, 0.7], dtype=torch.float64), L, proc, sch)
    states = torch.tensor(list(itertools.product(range(4), repeat=L)))
    t = torch.full((states.shape[0],), 0.6)
    masked = states == proc.mask_id
    for c in (0, 1):
        clf = lambda x, tt, c=c: orc.log_class_posterior(x, tt)[:, c:c + 1]  # noqa: E731
        got = ClassifierX0(orc.oracles[-1], clf, 1.0, "exact", proc)(states, t)
        want = orc.oracles[c](states, t)
        assert torch.allclose(got.double().exp()[masked], want.double().exp()[masked], atol=1e-6)
        assert float((orc.oracles[-1](states, t).double().exp() - want.double().exp())[masked].abs().max()) > 0.05
        same = ClassifierX0(orc.oracles[-1], clf, 0.0, "exact", proc)(states, t)
        assert torch.equal(same, orc.oracles[-1](states, t))
    with pytest.raises(ValueError, match="for masked models"):
        ClassifierX0(orc.oracles[-1], clf, 1.0, "exact", Uniform(3))


def test_predictor_gradient_is_the_derivative_in_the_one_hot_input():
    """PredictorTarget.first_order differentiates the predictor itself: each gradient entry matches a
    central finite difference of the target log-probability along that one-hot coordinate."""
    torch.manual_seed(0)
    spec = {"column": "y", "kind": "gaussian", "classes": None, "bins": None, "mean": 0.5, "std": 0.2,
            "network": {"d_model": 16, "n_layers": 1, "n_heads": 2, "cond_dim": 16, "mlp_ratio": 2.0}}
    pred = Predictor(spec, DNA_TOK, {"process": "absorbing", "schedule": {"name": "linear"}, "loss": "masked",
                                     "parameterization": "x0"})
    for p in pred.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    tgt = pred.target("0.6..0.9")
    x = torch.tensor([[0, 5, 2, 6], [5, 5, 1, 3]])  # 5 = mask, 6 = pad
    lp, grad = tgt.first_order(x, torch.zeros(2), 6)
    assert torch.allclose(lp, tgt(x, torch.zeros(2))[:, 0], atol=1e-6)
    emb = pred.net.embed.weight
    h = 3e-3  # float32 network: a central difference with a step well above rounding
    for b, i, y in [(0, 0, 3), (0, 1, 1), (1, 2, 4), (1, 0, 5)]:
        oh = torch.nn.functional.one_hot(x, emb.shape[0]).float()
        e = torch.zeros_like(oh)
        e[b, i, y] = h
        with torch.no_grad():
            up = tgt._from_out(pred(x, None, embedded=(oh + e) @ emb))[b]
            dn = tgt._from_out(pred(x, None, embedded=(oh - e) @ emb))[b]
        assert float(grad[b, i, y]) == pytest.approx(float((up - dn) / (2 * h)), rel=2e-3, abs=2e-3)
    assert float(grad.abs().max()) > 0.05  # not a vacuous comparison of zeros


# ------------------------------------------------------------------------ files, targets, CLI
def _labelled_dna(path: Path, n: int = 600, seed: int = 0) -> None:
    """DNA 24-mers with a wide spread of GC content; columns gc (a number) and label (gc ≥ 0.5)."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sequence", "gc", "label"])
        for _ in range(n):
            p = rng.random()
            s = "".join(rng.choice("GC") if rng.random() < p else rng.choice("AT") for _ in range(24))
            gc = (s.count("G") + s.count("C")) / 24
            w.writerow([s, round(gc, 4), "rich" if gc >= 0.5 else "poor"])


@pytest.fixture(scope="module")
def dna_predictors(tmp_path_factory):
    """Gaussian and class predictors of GC content for the shipped DNA model, trained with `seqdiff train`."""
    d = tmp_path_factory.mktemp("pred")
    _labelled_dna(d / "lab.csv")
    common = [f"data.train={d / 'lab.csv'}", "data.valid=", "data.batch_size=64", "optim.lr=3e-3", "optim.warmup_steps=10",
              "optim.lr_schedule=constant", "optim.ema=0.0", "trainer.max_steps=150", "trainer.val_every=150",
              "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.deterministic=false",
              "predictor.model=dna", "predictor.d_model=32", "predictor.n_layers=1", "predictor.n_heads=2"]
    out = {}
    for name, extra in (("gauss", ["predictor.column=gc"]), ("cls", ["predictor.column=label"])):
        r = cli("train", "-q", "-c", ROOT / "configs" / "tiny" / "dna.yaml", f"out_dir={d / name}", *common, *extra)
        assert r.returncode == 0, r.stderr
        out[name] = d / name / "predictor.pt"
    return out


def test_predictor_files_round_trip_and_targets(dna_predictors, tmp_path):
    g = load_predictor(dna_predictors["gauss"])
    assert g.kind == "gaussian" and g.diffusion["process"] == "absorbing" and g.net.time_embed is None
    assert 0.3 < g.spec["mean"] < 0.7 and g.spec["std"] > 0.1
    assert sum(p.numel() for p in g.net.parameters()) < 100_000
    g.save(tmp_path / "again.pt")
    h = load_predictor(tmp_path / "again.pt")
    x = torch.tensor([[0, 1, 2, 3, 5, 5], [2, 2, 1, 1, 0, 5]])
    with torch.no_grad():
        assert torch.equal(g(x), h(x)) and h.spec == g.spec
    c = load_predictor(dna_predictors["cls"])
    assert c.classes == ["poor", "rich"]
    assert parse_target(c, "rich") == ([1], None, None) and parse_target(c, "poor,rich") == ([0, 1], None, None)
    assert parse_target(g, "0.6..") == (None, 0.6, None) and parse_target(g, "..0.4") == (None, None, 0.4)
    assert parse_target(g, "0.5") == (None, 0.5, 0.5)
    # a union of all classes is certain
    assert torch.allclose(c.target("poor,rich")(x, None), torch.zeros(2, 1, dtype=torch.float64), atol=1e-6)
    for pred, text, msg in [(c, "medium", "not a class of this predictor"), (g, "0.7..0.2", "is empty"),
                            (g, "high", "not a number or a range"), (g, "..", "no bounds"), (g, "nan", "not finite")]:
        with pytest.raises(ValueError, match=msg):
            parse_target(pred, text)
    # a model file is not a predictor, and a predictor is not a model
    with pytest.raises(ModelLoadError, match="a diffusion model, not a property predictor"):
        load_predictor(ROOT / "seqdiff" / "pretrained" / "dna.pt")
    from seqdiff.model import load_model
    with pytest.raises(ModelLoadError):
        load_model(dna_predictors["gauss"])


def _gc(texts):
    return float(np.mean([(s.count("G") + s.count("C")) / max(len(s), 1) for s in texts]))


def test_cli_classifier_guidance_moves_gc_and_errors(dna_predictors, tmp_path):
    """Guidance with the trained predictors moves GC content the way the target asks (exact
    enumeration and first order), and bad uses are one-line errors with nothing written."""
    gc = {}
    runs = [("none", []), ("high", ["--target", "0.7..", "--guidance", "3"]),
            ("low", ["--target", "..0.3", "--guidance", "3"]),
            ("high-fo", ["--target", "0.7..", "--guidance", "3", "--classifier-method", "first_order"]),
            ("rich", ["--target", "rich", "--guidance", "3", "--classifier-method", "exact"]),
            ("high-x0", ["--target", "0.7..", "--guidance", "3", "--sampler", "confidence"])]
    for name, args in runs:
        out = tmp_path / f"{name}.fa"
        clf = [] if name == "none" else ["--classifier", dna_predictors["cls" if name == "rich" else "gauss"]]
        r = cli("sample", "-m", "dna", "-n", 48, "--length", 24, "--steps", 12, "--sampler", "ancestral", "-o", out,
                "-q", "--seed", 1, *clf, *args)
        assert r.returncode == 0, r.stderr
        gc[name] = _gc([row["sequence"] for row in csv.DictReader(open(out.with_suffix(".csv")))])
    assert gc["high"] > gc["none"] + 0.1 and gc["low"] < gc["none"] - 0.1, gc
    assert gc["high-fo"] > gc["none"] + 0.1 and gc["rich"] > gc["none"] + 0.1, gc
    assert gc["high-x0"] > gc["none"] + 0.1, gc  # confidence decoding: the clean-data prediction is tilted
    r = cli("infill", "-m", "dna", "-t", "ACGT{16}", "-n", 4, "--sampler", "ancestral", "--classifier",
            dna_predictors["gauss"], "--target", "0.6..", "-o", tmp_path / "i.fa", "-q")
    assert r.returncode == 0, r.stderr
    smiles_pred = tmp_path / "smiles_pred.pt"
    spec = {"column": "qed", "kind": "gaussian", "classes": None, "bins": None, "mean": 0.8, "std": 0.1,
            "network": {"d_model": 16, "n_layers": 1, "n_heads": 2, "cond_dim": 16, "mlp_ratio": 2.0}}
    from seqdiff.model import load_model
    sm = load_model(ROOT / "seqdiff" / "pretrained" / "smiles.pt")
    Predictor(spec, sm.tokenizer.to_dict(), sm.cfg.to_dict()["diffusion"]).save(smiles_pred)
    uni = tmp_path / "uniform_pred.pt"
    Predictor(spec, DNA_TOK, {"process": "uniform", "schedule": {"name": "loglinear"}, "loss": "score_entropy",
                              "parameterization": "x0"}).save(uni)
    cases = [(["--classifier", dna_predictors["cls"], "--target", "medium"], "not a class of this predictor"),
             (["--classifier", dna_predictors["gauss"], "--target", "0.9..0.1"], "is empty"),
             (["--classifier", dna_predictors["gauss"], "--target", "0.5..", "--guidance-mode", "transition"],
              "sampler 'confidence' has none"),
             (["--classifier", dna_predictors["gauss"]], "needs a --target"),
             (["--target", "0.5.."], "needs a --classifier"),
             (["--classifier", smiles_pred, "--target", "0.9.."], "another vocabulary"),
             (["--classifier", uni, "--target", "0.5.."], "trained on the uniform process"),
             (["--classifier", ROOT / "seqdiff" / "pretrained" / "dna.pt", "--target", "1"], "not a property predictor"),
             (["--classifier", dna_predictors["gauss"], "--target", "0.5..", "--reward", "gc", "--best-of", "2"],
              "not with --condition or --reward")]
    for args, msg in cases:
        bad = tmp_path / "bad.fa"
        sampler = "confidence" if "confidence" in msg else "ancestral"
        r = cli("sample", "-m", "dna", "-n", 2, "--length", 24, "-o", bad, "-q", "--sampler", sampler, *args)
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, (msg, r.stderr)
        assert not bad.exists() and not bad.with_suffix(".csv").exists() and "Traceback" not in r.stderr


def test_recipe_errors_for_predictors(tmp_path):
    from seqdiff.config import ConfigError
    base = ROOT / "configs" / "tiny" / "dna.yaml"
    with pytest.raises(ConfigError, match="predictor.model` is required"):
        load_config(base, ["predictor.column=gc"])
    with pytest.raises(ConfigError, match="not both"):
        load_config(base, ["predictor.column=gc", "predictor.model=dna", "condition.column=gc"])
    with pytest.raises(ConfigError, match="takes no bins"):
        load_config(base, ["predictor.column=gc", "predictor.model=dna", "predictor.kind=gaussian",
                           "predictor.bins=[0.5]"])
    lab = tmp_path / "l.csv"
    lab.write_text("sequence,gc\nACGT,0.5\nACGA,x\n")
    cfg = load_config(base, ["predictor.column=gc", "predictor.model=dna", "predictor.kind=gaussian",
                             f"data.train={lab}", f"out_dir={tmp_path / 'o'}"])
    from seqdiff.training.train import train
    with pytest.raises(ValueError, match=r"l.csv: record 2: condition value 'x' is not a number"):
        train(cfg, quiet=True)
    assert not (tmp_path / "o" / "predictor.pt").exists()


@pytest.mark.parametrize("section", ["condition", "predictor"])
def test_recipe_bins_are_checked_alike_for_conditions_and_predictors(section):
    from seqdiff.training.config import ConfigError

    root = Path(__file__).resolve().parents[1]
    base = [f"{section}.column=y"] + (["predictor.model=m.pt"] if section == "predictor" else [])
    recipe = root / "configs" / "tiny" / "smiles.yaml"
    with pytest.raises(ConfigError, match=rf"`{section}.bins` must be increasing numbers"):
        load_config(recipe, base + [f"{section}.bins=[3,1]"])
    with pytest.raises(ConfigError, match=rf"`{section}.quantiles` must be ≥ 0 and not given with `{section}.bins`"):
        load_config(recipe, base + [f"{section}.bins=[1,3]", f"{section}.quantiles=4"])
    load_config(recipe, base + [f"{section}.bins=[1,3]"])  # increasing bins alone are fine


def test_evaluate_predictor_and_bf16_files(dna_predictors, tmp_path):
    """Held-out figures: an untrained predictor (zero head: N(0, 1) in normalised units) scores exactly the
    standard-normal NLL of the labels whatever the noise; a trained one's clean Pearson r and error are those
    of its predicted means. A bf16 file is half the size and loads the bf16-rounded weights as float32."""
    from seqdiff.guidance.train_predictor import evaluate_predictor
    lab = dna_predictors["gauss"].parent.parent / "lab.csv"
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml", ["predictor.column=gc", "predictor.model=dna"])
    g = load_predictor(dna_predictors["gauss"])
    rows = list(csv.DictReader(open(lab)))
    y = np.array([float(r["gc"]) for r in rows])
    zero = Predictor(g.spec, g.tokenizer_dict, g.diffusion)
    ev0 = evaluate_predictor(zero, cfg, str(lab), repeats=2)
    z = (y - g.spec["mean"]) / g.spec["std"]
    assert ev0["rows"] == 600 and ev0["nll"] == pytest.approx(float(np.mean(0.5 * (math.log(2 * math.pi) + z ** 2))),
                                                               rel=1e-6)
    ev = evaluate_predictor(g, cfg, str(lab))
    x = torch.stack([torch.as_tensor(g.tokenizer.encode(r["sequence"])) for r in rows])
    with torch.no_grad():
        mu, _ = g.mean_sd(x)
    mu = mu.double().numpy()
    assert ev["pearson"] == pytest.approx(float(np.corrcoef(mu, y)[0, 1]), abs=1e-6) and ev["pearson"] > 0.9
    assert ev["mae"] == pytest.approx(float(np.abs(mu - y).mean()), abs=1e-6)
    assert ev0["pearson"] is None and ev0["mae"] == pytest.approx(float(np.abs(y - g.spec["mean"]).mean()))
    assert ev["nll"] < ev0["nll"] - 0.3  # it learned something at every noise level on average
    c = load_predictor(dna_predictors["cls"])
    evc = evaluate_predictor(c, cfg, str(lab))
    with torch.no_grad():
        right = (c.log_probs(x).argmax(-1) == torch.tensor([c.classes.index(r["label"]) for r in rows])).double()
    assert evc["accuracy"] == pytest.approx(float(right.mean())) and evc["accuracy"] > 0.8
    g.save(tmp_path / "f32.pt")
    g.save(tmp_path / "b16.pt", dtype=torch.bfloat16)
    assert (tmp_path / "b16.pt").stat().st_size < 0.7 * (tmp_path / "f32.pt").stat().st_size
    h = load_predictor(tmp_path / "b16.pt")
    for k, v in g.net.state_dict().items():
        w = h.net.state_dict()[k]
        assert w.dtype == v.dtype and torch.equal(w, v.to(torch.bfloat16).to(v.dtype) if v.is_floating_point() else v)
