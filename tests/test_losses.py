"""Losses as likelihood bounds, checked against exact answers by enumeration."""

import math

import pytest
import torch
from torch import nn

from conftest import make_oracle, state_index
from seqdiff.diffusion import (Absorbing, Cosine, DiscreteSchedule, ExactOracle, GenMD4Loss, Geometric, Linear,
                               LogLinear, MaskedDiffusionLoss, MultinomialLoss, MultinomialSampler,
                               PerTokenPolynomial, Polynomial, ScoreEntropyLoss, Uniform, all_sequences, build_loss,
                               elbo, exact_negative_elbo, exact_sampler_distribution, random_distribution)
from seqdiff.diffusion.oracle import _gauss_legendre

F64 = torch.float64


def genmd4_schedule(w=(1.0, 2.5, 1.5, 1.0)):
    sch = PerTokenPolynomial(4, 3)
    with torch.no_grad():
        sch.log_w.copy_(torch.log(torch.tensor(w)))
    return sch


def model_log_prob(oracle):
    """log p_θ(x_0) of the exact reverse CTMC started at the process prior π:
    p_θ(x_0) = Σ_{x_1} π(x_1) p(x_0 | x_1) (the reverse of the true process maps x_1 to x_0 by the
    forward posterior)."""
    proc = oracle.process
    states = all_sequences(range(proc.vocab_size), oracle.length)
    a1 = 0.0 if getattr(oracle.schedule, "state_dependent", False) else \
        float(oracle.schedule.alpha(torch.ones(1, dtype=F64)).reshape(-1)[0])
    prior = proc.prior_probs(a1)[states].prod(-1)
    G, _ = oracle._likelihoods(states, torch.ones(len(states), dtype=F64), None)
    joint = oracle._joint(G)
    marg = joint.sum(-1, keepdim=True)
    post = torch.where(marg > 0, joint / marg.clamp_min(1e-300), torch.zeros_like(joint))
    return torch.log((prior[:, None] * post).sum(0))


CONTINUOUS = [
    # (id, process, schedule, loss name, parameterisations, n_quad, |gap to -log p0| allowed)
    ("masked-linear", Absorbing(4), Linear(), "masked", ["x0", "score"], 48, 1e-9),
    ("masked-cosine", Absorbing(4), Cosine(), "masked", ["x0"], 64, 1e-7),
    ("masked-poly2", Absorbing(4), Polynomial(2.0), "masked", ["x0"], 48, 1e-9),
    ("sedd-absorb-linear", Absorbing(4), Linear(), "score_entropy", ["x0", "score"], 48, 1e-9),
    ("sedd-absorb-loglinear", Absorbing(4), LogLinear(1e-3), "score_entropy", ["x0", "score"], 48, 3e-3),
    ("sedd-uniform-geometric", Uniform(3), Geometric(1e-4, 20.0), "score_entropy", ["x0", "score"], 192, 1e-6),
    ("genmd4", Absorbing(4), genmd4_schedule((1.0, 2.0, 3.0, 1.0)), "genmd4", ["x0"], 128, 1e-7),
]


@pytest.mark.parametrize("case", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_elbo_is_a_tight_bound_with_the_exact_denoiser(case):
    _, proc, sch, loss_name, params, n_quad, tol = case
    loss = build_loss(loss_name, proc, sch)
    for param in params:
        orc = make_oracle(proc, sch, seed=1, parameterization=param)
        bound = exact_negative_elbo(loss, orc, orc, n_quad=n_quad)
        nll0 = -torch.log(orc.p0)
        nll_model = -model_log_prob(orc)
        # a bound on the model's likelihood for every sequence (up to quadrature error) ...
        assert (bound >= nll_model - 1e-7).all(), float((bound - nll_model).min())
        # ... and, with the exact denoiser, within tol of the data's -log p0 for every sequence
        assert (bound - nll0).abs().max() <= tol, float((bound - nll0).abs().max())
        # the average is an upper bound on the entropy of p0 (cross-entropy ≥ entropy)
        assert float((orc.p0 * bound).sum()) >= float((orc.p0 * nll0).sum()) - 1e-7


def test_multinomial_elbo_bounds_the_model_and_tightens_with_T():
    gaps = []
    for T in (100, 1000):
        proc, sch = Uniform(3), DiscreteSchedule(T)
        orc = make_oracle(proc, sch, seed=2)
        bound = exact_negative_elbo(MultinomialLoss(proc, sch), orc, orc)
        # the model of a factorised discrete-time reverse is not p0: its law is the sampler's output
        law = exact_sampler_distribution(MultinomialSampler(proc, sch), orc, 3)
        p_model = law[state_index(orc.configs, proc.vocab_size)]
        assert (bound >= -torch.log(p_model) - 1e-9).all()
        ent = float((orc.p0 * -torch.log(orc.p0)).sum())
        assert float((orc.p0 * bound).sum()) >= ent
        gaps.append(float((bound + torch.log(orc.p0)).abs().max()))
    # discretisation error O(1/T): ten times the steps, about a tenth of the gap
    assert gaps[1] < 0.2 * gaps[0] and gaps[1] < 0.02, gaps


@pytest.mark.parametrize("case", [c for c in CONTINUOUS if c[0] in
                                  ("masked-linear", "sedd-absorb-loglinear", "sedd-uniform-geometric", "genmd4")],
                         ids=lambda c: c[0])
def test_a_wrong_denoiser_gives_a_strictly_worse_bound(case):
    _, proc, sch, loss_name, params, n_quad, _ = case
    loss = build_loss(loss_name, proc, sch)
    right = make_oracle(proc, sch, seed=1, parameterization=params[-1])
    wrong = make_oracle(proc, sch, seed=99, parameterization=params[-1])
    p0 = right.p0
    b_right = exact_negative_elbo(loss, right, right, n_quad=n_quad)
    b_wrong = exact_negative_elbo(loss, wrong, right, n_quad=n_quad)
    kl = float((p0 * (torch.log(p0) - torch.log(wrong.p0))).sum())
    assert kl > 0.05
    # E_p0[bound(wrong)] ≥ E_p0[-log p_θ,wrong] = H(p0) + KL(p0 ‖ p_θ,wrong), p_θ,wrong ≈ p_wrong
    nll_wrong_model = -model_log_prob(wrong)
    assert (b_wrong >= nll_wrong_model - 1e-6).all()
    assert float((p0 * b_wrong).sum()) >= float((p0 * nll_wrong_model).sum()) - 1e-7
    assert float((p0 * b_wrong).sum()) >= float((p0 * b_right).sum()) + 0.9 * kl


def test_multinomial_wrong_denoiser_is_worse():
    proc, sch = Uniform(3), DiscreteSchedule(200)
    loss = MultinomialLoss(proc, sch)
    right, wrong = make_oracle(proc, sch, seed=1), make_oracle(proc, sch, seed=50)
    b_right, b_wrong = exact_negative_elbo(loss, right, right), exact_negative_elbo(loss, wrong, right)
    kl = float((right.p0 * (torch.log(right.p0) - torch.log(wrong.p0))).sum())
    assert float((right.p0 * b_wrong).sum()) > float((right.p0 * b_right).sum()) + 0.5 * kl


def test_score_entropy_with_mean_parameterisation_is_the_md4_loss(gen):
    """For the absorbing process SEDD's DWDSE with s = α/(1-α) μ equals MD4's weighted CE, pointwise."""
    proc = Absorbing(6)
    for sch in [Linear(), LogLinear(1e-3)]:
        se, md = ScoreEntropyLoss(proc, sch), MaskedDiffusionLoss(proc, sch)
        x0 = torch.randint(0, 5, (64, 9), generator=gen)
        t = torch.rand(64, generator=gen).clamp(0.01, 0.99)
        xt = se.corrupt(x0, t, gen)
        out = torch.randn(64, 9, 6, generator=gen, dtype=F64)
        assert torch.allclose(se.integrand(out, "x0", x0, xt, t), md.integrand(out, "x0", x0, xt, t), rtol=1e-10)


@pytest.mark.parametrize("grid", ["antithetic", "stratified", "uniform"])
def test_monte_carlo_elbo_is_unbiased(grid):
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=4)
    loss = MaskedDiffusionLoss(proc, sch)
    exact = exact_negative_elbo(loss, orc, orc)
    x0 = orc.configs[[0, 5, 17]].repeat_interleave(400, 0)
    g = torch.Generator().manual_seed(0)
    res = elbo(orc, loss, x0, n_t=8, grid=grid, generator=g)
    for j, c in enumerate([0, 5, 17]):
        est = res.nats[j * 400:(j + 1) * 400]
        se = float(est.std()) / math.sqrt(400)
        assert abs(float(est.mean()) - float(exact[c])) < 5 * se + 1e-6
    # seeded: the same generator state gives the same estimates
    again = elbo(orc, loss, x0[:10], n_t=8, grid=grid, generator=torch.Generator().manual_seed(0))
    first = elbo(orc, loss, x0[:10], n_t=8, grid=grid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.nats, first.nats)
    assert (res.bits_per_token > 0).all()


def test_multinomial_monte_carlo_elbo_matches_the_exact_sum():
    proc, sch = Uniform(3), DiscreteSchedule(50)
    orc = make_oracle(proc, sch, seed=4)
    loss = MultinomialLoss(proc, sch)
    exact = exact_negative_elbo(loss, orc, orc)
    x0 = orc.configs[[3]].repeat(600, 1)
    res = elbo(orc, loss, x0, n_t=10, generator=torch.Generator().manual_seed(1))
    se = float(res.nats.std()) / math.sqrt(600)
    assert abs(float(res.nats.mean()) - float(exact[3])) < 5 * se
    full = elbo(orc, loss, x0[:200], n_t=50, generator=torch.Generator().manual_seed(1))  # every step once
    assert abs(float(full.nats.mean()) - float(exact[3])) < 5 * float(full.nats.std()) / math.sqrt(200) + 1e-9


def test_one_sample_loss_call_is_unbiased():
    proc, sch = Uniform(3), Geometric(1e-3, 8.0)
    orc = make_oracle(proc, sch, seed=8)
    loss = ScoreEntropyLoss(proc, sch)
    exact = exact_negative_elbo(loss, orc, orc, n_quad=96)
    x0 = orc.configs[[2]].repeat(20_000, 1)
    est = loss(orc, x0, generator=torch.Generator().manual_seed(3))
    se = float(est.std()) / math.sqrt(len(est))
    assert abs(float(est.mean()) - float(exact[2])) < 5 * se


def test_loss_mask_keeps_positions_clean_and_out_of_the_loss(gen):
    proc, sch = Absorbing(5), Linear()
    loss = MaskedDiffusionLoss(proc, sch)
    x0 = torch.randint(0, 4, (32, 10), generator=gen)
    x0[:, 7:] = 9  # padding ids beyond the process vocabulary
    lm = torch.ones_like(x0, dtype=torch.bool)
    lm[:, 7:] = False
    t = torch.full((32,), 0.9)
    xt = loss.corrupt(x0, t, gen, lm)
    assert torch.equal(xt[:, 7:], x0[:, 7:])
    out = torch.randn(32, 10, 5, generator=gen)
    full = loss.integrand(out, "x0", x0, xt, t, lm)
    out2 = out.clone()
    out2[:, 7:] = torch.randn(32, 3, 5, generator=gen)  # outputs at padding do not matter
    assert torch.equal(full, loss.integrand(out2, "x0", x0, xt, t, lm))
    assert torch.isfinite(loss.prior_term(x0, lm)).all()


def _table_denoiser(n_states_total, length, n_out, parameterization, seed=0):
    """A free-parameter table indexed by the whole sequence x_t: out[x_t] ∈ R^{L×N}."""
    g = torch.Generator().manual_seed(seed)

    class Table(nn.Module):
        def __init__(self):
            super().__init__()
            self.param = nn.Parameter(0.1 * torch.randn(n_states_total ** length, length, n_out, generator=g))
            self.parameterization = parameterization

        def forward(self, x, t):
            return self.param[state_index(x, n_states_total)]

    return Table()


@pytest.mark.parametrize("case", ["uniform", "absorbing"])
def test_score_entropy_is_consistent(case):
    """SEDD Prop. 3.2: minimising (denoising) score entropy on samples of p_t recovers p_t(y)/p_t(x)."""
    torch.manual_seed(0)
    if case == "uniform":
        proc, sch = Uniform(3), Geometric(1e-3, 4.0)
    else:
        proc, sch = Absorbing(4), LogLinear(1e-3)
    L, t_fixed = 2, 0.6
    orc = make_oracle(proc, sch, length=L, seed=12, parameterization="score")
    loss = ScoreEntropyLoss(proc, sch)
    table = _table_denoiser(proc.vocab_size, L, proc.vocab_size, "score")
    opt = torch.optim.Adam(table.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 600)
    g = torch.Generator().manual_seed(0)
    cdf = torch.cumsum(orc.p0, 0)
    for _ in range(600):
        x0 = orc.configs[torch.searchsorted(cdf, torch.rand(8192, generator=g, dtype=F64)).clamp(max=len(cdf) - 1)]
        t = torch.full((8192,), t_fixed)
        xt = loss.corrupt(x0, t, g)
        obj = loss.integrand(table(xt, t), "score", x0, xt, t).mean()
        opt.zero_grad()
        obj.backward()
        opt.step()
        sched.step()
    states = all_sequences(range(proc.vocab_size), L)
    tt = torch.full((len(states),), t_fixed, dtype=F64)
    true = orc.log_scores(states, tt).exp()
    learned = table(states, tt).detach().double().exp()
    # compare where the ratio enters the loss: rates into x_t (all y ≠ x_t for uniform; masked x_t for absorbing)
    rel = torch.ones_like(true, dtype=torch.bool)
    rel &= ~(states[..., None] == torch.arange(proc.vocab_size))
    if isinstance(proc, Absorbing):
        rel &= (states == proc.mask_id)[..., None]
        rel[..., proc.mask_id] = False
    # weight by how often x_t is visited; rare states are learned less precisely
    visits = orc.marginal(states, tt)
    common = visits[:, None, None].expand_as(true) > 0.01
    err = ((learned - true).abs() / true)[rel & common]
    assert err.max() < 0.1, float(err.max())
    # and the score-entropy optimum is zero-gap: evaluating with the learned table is near the exact ELBO term
    assert err.median() < 0.03


def _tiny_net(n_in, n_out, param):
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(n_in, 16)
            self.t = nn.Linear(1, 16)
            self.out = nn.Linear(16, n_out)
            self.parameterization = param

        def forward(self, x, t):
            h = self.emb(x) + self.t(t[:, None].to(self.t.weight.dtype))[:, None, :]
            return self.out(torch.tanh(h))

    return Net()


GRAD_CASES = [
    ("masked", Absorbing(5), Linear(), "x0"),
    ("masked", Absorbing(5), Cosine(), "x0"),
    ("score_entropy", Absorbing(5), LogLinear(1e-3), "score"),
    ("score_entropy", Absorbing(5), LogLinear(1e-3), "x0"),
    ("score_entropy", Uniform(4), Geometric(1e-4, 20.0), "score"),
    ("score_entropy", Uniform(4), Geometric(1e-4, 20.0), "x0"),
    ("multinomial", Uniform(4), DiscreteSchedule(100), "x0"),
    ("genmd4", Absorbing(5), None, "x0"),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"{c[0]}-{type(c[1]).__name__}-{c[3]}")
@pytest.mark.parametrize("autocast", [False, True])
def test_gradients_are_finite_at_the_ends_and_in_bf16(case, autocast, gen):
    name, proc, sch, param = case
    if sch is None:
        sch = PerTokenPolynomial(5, 4)
    loss = build_loss(name, proc, sch)
    net = _tiny_net(proc.vocab_size + 1, proc.vocab_size, param)
    x0 = torch.randint(0, proc.num_data_tokens, (16, 12), generator=gen)
    ends = [1e-6, 1 - 1e-6] if loss.continuous else [1 / sch.num_steps, 1.0]
    for t_end in ends + [None]:
        t = torch.full((16,), t_end) if t_end is not None else loss.sample_t(16, gen)
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            xt = loss.corrupt(x0, t, gen)
            out = net(xt, t)
            val = loss.integrand(out, param, x0, xt, t) + loss.prior_term(x0)
        assert val.dtype in (torch.float32, torch.float64)
        assert torch.isfinite(val).all(), (t_end, val)
        val.mean().backward()
        for p in list(net.parameters()) + list(getattr(sch, "parameters", lambda: [])()):
            if p.grad is not None:
                assert torch.isfinite(p.grad).all(), (t_end, p.shape)
    # the GenMD4 surrogate too
    if name == "genmd4":
        obj, nats = loss.training_loss(net, x0, gen)
        obj.mean().backward()
        assert torch.isfinite(sch.log_w.grad).all() and torch.isfinite(nats).all()


def test_genmd4_rloo_gradient_is_unbiased():
    """The RLOO surrogate's gradient w.r.t. the schedule exponents matches the exact gradient of
    E_{x0} E_t E_{x_t} L computed by enumeration; dropping the score-function term biases it."""
    L = 2
    proc = Absorbing(4)
    sch = genmd4_schedule((1.0, 2.0, 1.5, 1.0))
    loss = GenMD4Loss(proc, sch, num_samples=2)
    p0 = random_distribution(9, torch.Generator().manual_seed(5))
    configs = all_sequences(range(3), L)
    table = _table_denoiser(4, L, 4, "x0", seed=1)
    for p in table.parameters():
        p.requires_grad_(False)
    # exact: E_{x0 ~ p0} ∫ Σ_{x_t} q_w(x_t|x0) L_w(x_t, x0, t) dt  (autograd through w)
    states = all_sequences(range(4), L)
    nodes, weights = _gauss_legendre(48)
    total = torch.zeros((), dtype=F64)
    C, S = len(configs), len(states)
    x0 = configs.repeat_interleave(S, 0)
    xt = states.repeat(C, 1)
    for t, w in zip(nodes, weights):
        tt = t.expand(C * S)
        a = sch.alpha(tt)  # [CS, N]
        keep = torch.gather(a, 1, x0)
        q = torch.where(xt == 3, 1 - keep, torch.where(xt == x0, keep, torch.zeros_like(keep))).prod(-1)
        vals = loss.integrand(table(xt, tt), "x0", x0, xt, tt)
        total = total + w * (p0.repeat_interleave(S) * q * vals).sum()
    (g_exact,) = torch.autograd.grad(total, sch.log_w)
    # Monte Carlo: many independent batches of the RLOO surrogate
    gen = torch.Generator().manual_seed(0)
    cdf = torch.cumsum(p0, 0)
    ests, naive = [], []
    for _ in range(60):
        x = configs[torch.searchsorted(cdf, torch.rand(4000, generator=gen, dtype=F64)).clamp(max=8)]
        obj, _ = loss.training_loss(table, x, gen)
        (g_hat,) = torch.autograd.grad(obj.mean(), sch.log_w)
        ests.append(g_hat)
        # pathwise-only estimate (no score-function term)
        t = loss.sample_t(4000, gen)
        x_t = loss.corrupt(x, t, gen)
        (g_n,) = torch.autograd.grad(loss.integrand(table(x_t, t), "x0", x, x_t, t).mean(), sch.log_w)
        naive.append(g_n)
    ests, naive = torch.stack(ests).double(), torch.stack(naive).double()
    se = ests.std(0) / math.sqrt(len(ests))
    idx = slice(0, 3)  # the data tokens' exponents (the mask's is unused)
    assert ((ests.mean(0) - g_exact)[idx].abs() <= 5 * se[idx] + 1e-4).all(), (ests.mean(0), g_exact, se)
    se_n = naive.std(0) / math.sqrt(len(naive))
    assert ((naive.mean(0) - g_exact)[idx].abs() > 5 * se_n[idx]).any()
