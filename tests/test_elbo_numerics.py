"""The ELBO's standard error against the spread over seeds, its batching, and the losses at the
ends of the time interval (t = 0 and t = 1 exactly)."""

import math

import pytest
import torch

from conftest import make_oracle
from seqdiff.diffusion import (Absorbing, Geometric, Linear, MaskedDiffusionLoss, ScoreEntropyLoss, Uniform, elbo)
from seqdiff.diffusion.likelihood import _t975, replicate_count


def test_replicate_counts_and_t_quantiles():
    assert [replicate_count(n, "antithetic") for n in (2, 4, 8, 16, 64, 6)] == [1, 2, 4, 8, 8, 3]
    assert [replicate_count(n, "stratified") for n in (1, 7, 64)] == [1, 7, 8]
    assert replicate_count(64, "antithetic", 4) == 4
    # Student t 97.5 % quantiles (tables)
    for dof, q in [(1, 12.706), (2, 4.303), (3, 3.182), (7, 2.365), (30, 2.042)]:
        assert abs(_t975(dof) - q) < 5e-3, dof


def test_token_budget_batching_changes_nothing():
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, length=5, seed=1)
    loss = MaskedDiffusionLoss(proc, sch)
    x = orc.configs[:7]
    runs = [elbo(orc, loss, x, n_t=16, generator=torch.Generator().manual_seed(3), **kw)
            for kw in ({"batch_size": 10_000}, {"token_budget": 5 * 3}, {"batch_size": 1})]
    for r in runs[1:]:
        assert torch.allclose(r.nats, runs[0].nats, atol=1e-9) and torch.allclose(r.stderr, runs[0].stderr)
    assert runs[0].dof == 4  # 16 antithetic points: 8 pairs, collapsed into 4
    rep = elbo(orc, loss, x, n_t=16, generator=torch.Generator().manual_seed(3), replicates=4)
    assert rep.dof == 3 and torch.isfinite(rep.stderr).all()


@pytest.mark.parametrize("replicates", [None, 8])
def test_reported_stderr_matches_the_spread_over_seeds(replicates):
    """Collapsed-strata (default) and replicate-grid standard errors track the real spread of the
    estimate over seeds (within the sampling error of 400 seeds; the collapsed-strata one may err
    on the safe side), and the 95 % intervals cover about 95 %."""
    proc, sch = Absorbing(3), Linear()
    orc = make_oracle(proc, sch, length=6, seed=2)
    loss = MaskedDiffusionLoss(proc, sch)
    x = orc.configs[torch.tensor([0, 20, 40, 63])]
    ests, errs, cis = [], [], []
    for seed in range(400):
        r = elbo(orc, loss, x, n_t=16, generator=torch.Generator().manual_seed(seed), replicates=replicates)
        ests.append(r.nats)
        errs.append(r.stderr)
        cis.append(r.ci95)
    e, s, c = torch.stack(ests), torch.stack(errs), torch.stack(cis)
    spread = e.std(0)
    # the squared error is unbiased for the variance: its root-mean-square matches the spread (the
    # plain mean of the errors is lower — a heavy-tailed 1/t term makes most estimates of the
    # spread small and a few large — which is why the interval uses Student-t quantiles)
    ratio = (s ** 2).mean(0).sqrt() / spread
    assert ((ratio > 0.8) & (ratio < 1.4)).all(), ratio
    truth = -orc.log_p0(x)  # the exact oracle: the ELBO is tight, its mean is -log p0
    assert torch.allclose(e.mean(0), truth, atol=4 * float(spread.max()) / math.sqrt(400))
    cover = ((e - truth).abs() <= c).double().mean(0)
    # heavy tails: the interval from one grid covers ~87-90 % (the sample error is skewed: usually small,
    # rarely large); independent replicate grids get closer to the nominal 95 %
    assert ((cover > 0.8) & (cover < 0.995)).all(), cover
    assert float(cover.mean()) > (0.88 if replicates else 0.85), cover


def test_score_entropy_is_finite_at_both_ends_of_time():
    # absorbing, linear schedule, mean output: at t = 1 (α = 0) the integrand is the masked loss's
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, length=3, seed=4)
    se, md = ScoreEntropyLoss(proc, sch), MaskedDiffusionLoss(proc, sch)
    x0 = orc.configs[:5]
    m = proc.mask_id
    for t0 in (1.0, 1.0 - 1e-6, 0.5):
        x_t = x0.clone()
        x_t[:, ::2 if t0 < 1 else 1] = m  # at t = 1 every token is masked
        t = torch.full((5,), t0)
        out = orc(x_t, t)
        a = se.integrand(out, "x0", x0, x_t, t)
        b = md.integrand(out, "x0", x0, x_t, t)
        assert torch.isfinite(a).all(), t0
        assert torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-5), t0
    # uniform process, mean output, t = 0 exactly: finite, the value at the smallest time
    proc, sch = Uniform(3), Geometric(1e-4, 20.0)
    orc = make_oracle(proc, sch, length=3, seed=4)
    se = ScoreEntropyLoss(proc, sch)
    x0 = orc.configs[:6]
    out0 = orc(x0, torch.full((6,), 1e-6))
    v0 = se.integrand(out0, "x0", x0, x0, torch.zeros(6))
    v1 = se.integrand(out0, "x0", x0, x0, torch.full((6,), 1e-6))
    assert torch.isfinite(v0).all() and torch.allclose(v0, v1)
