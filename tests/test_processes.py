"""Forward processes: closed forms against matrix exponentials and Bayes' rule by enumeration,
and the score ↔ mean conversion against the exact oracle."""

import itertools

import pytest
import torch

from conftest import make_oracle
from seqdiff.diffusion import (Absorbing, DiscreteSchedule, Geometric, Linear, LogLinear, NoiseLevel,
                               PerTokenPolynomial, TweedieSampler, Uniform, all_sequences, build_process)
from seqdiff.diffusion.processes import _onehot

F64 = torch.float64


def _noise(alpha):
    a = torch.tensor([alpha], dtype=F64)
    return NoiseLevel.from_alpha(a)


@pytest.mark.parametrize("proc", [Absorbing(5), Uniform(4), Absorbing(6, mask_id=2)], ids=repr)
@pytest.mark.parametrize("sigma_bar", [1e-6, 0.3, 1.7, 9.0])
def test_transition_is_the_matrix_exponential(proc, sigma_bar):
    q = proc.rate_matrix()
    assert torch.allclose(q.sum(-1), torch.zeros(proc.vocab_size, dtype=F64))
    off = q - torch.diag(torch.diag(q))
    assert (off >= 0).all()
    expm = torch.linalg.matrix_exp(sigma_bar * q)
    x = torch.arange(proc.vocab_size)
    alpha = torch.full((proc.vocab_size,), torch.exp(torch.tensor(-sigma_bar, dtype=F64)).item(), dtype=F64)
    closed = proc.transition_probs(x, alpha)
    assert torch.allclose(closed, expm, atol=1e-13)


def test_multinomial_marginal_is_the_product_of_one_step_matrices():
    proc = Uniform(5)
    sch = DiscreteSchedule(40, "cosine")
    mat = torch.eye(5, dtype=F64)
    x = torch.arange(5)
    for k in range(1, 41):
        b = float(sch.betas[k - 1])
        mat = mat @ ((1 - b) * torch.eye(5, dtype=F64) + b / 5)
        closed = proc.transition_probs(x, sch.alpha_bar[k].expand(5))
        assert torch.allclose(closed, mat, atol=1e-13), k


@pytest.mark.parametrize("proc", [Absorbing(4), Uniform(4)], ids=repr)
@pytest.mark.parametrize("ts", [(0.9, 0.4), (0.5, 0.49), (0.3, 0.0), (1.0, 0.7)])
def test_posterior_is_bayes_rule(proc, ts):
    sch = Geometric(1e-3, 6.0) if isinstance(proc, Uniform) else Linear()
    t, s = (torch.tensor([v], dtype=F64) for v in ts)
    q = proc.rate_matrix()
    kern = lambda tt: torch.linalg.matrix_exp(float(sch.sigma_bar(tt)) * q) if float(sch.alpha(tt)) > 0 \
        else proc.prior_probs(0.0)[None].expand(proc.vocab_size, -1)
    Kt, Ks = kern(t), kern(s)
    Kts = torch.linalg.matrix_exp(float(sch.sigma_bar(t) - sch.sigma_bar(s)) * q) if float(sch.alpha(t)) > 0 \
        else Kt  # from s to t
    nt, ns = NoiseLevel.at(sch, t), NoiseLevel.at(sch, s)
    data = [a for a in range(proc.vocab_size) if a != proc.mask_id]
    for a in data:
        for xt in range(proc.vocab_size):
            if Kt[a, xt] == 0:
                continue
            bayes = Kts[:, xt] * Ks[a, :] / Kt[a, xt]  # q(x_s = y | x_t, x_0 = a)
            got = proc.posterior_probs(torch.tensor([[xt]]), _onehot(torch.tensor([[a]]), proc.vocab_size).double(),
                                       nt, ns)[0, 0]
            assert torch.allclose(got, bayes, atol=1e-12), (a, xt)


def test_multinomial_posterior_matches_the_paper_formula():
    """q(x_{k-1}|x_k,x_0) ∝ [α_k x_k + (1-α_k)/K] ⊙ [ᾱ_{k-1} x_0 + (1-ᾱ_{k-1})/K] (Hoogeboom et al.)."""
    proc, K = Uniform(6), 6
    sch = DiscreteSchedule(30)
    for k in [1, 2, 15, 30]:
        ak = float(sch.step_keep[k - 1])
        abar = float(sch.alpha_bar[k - 1])
        for a, xt in itertools.product(range(K), range(K)):
            th = (ak * (torch.arange(K) == xt).double() + (1 - ak) / K) * \
                 (abar * (torch.arange(K) == a).double() + (1 - abar) / K)
            th = th / th.sum()
            got = proc.posterior_probs(torch.tensor([[xt]]), _onehot(torch.tensor([[a]]), K).double(),
                                       NoiseLevel.from_alpha(sch.alpha_bar[k:k + 1]),
                                       NoiseLevel.from_alpha(sch.alpha_bar[k - 1:k]))[0, 0]
            assert torch.allclose(got, th, atol=1e-12)


def _brute_posterior(oracle, x_t, t):
    """p(x_0^i = a | x_t) with explicit Python loops (independent of the oracle's vectorised code)."""
    K = oracle.kernel(torch.tensor([t], dtype=F64))[0]
    L = oracle.length
    post = torch.zeros(L, oracle.process.vocab_size, dtype=F64)
    for c, p in zip(oracle.config_idx.tolist(), oracle.p0.tolist()):
        w = p
        for i in range(L):
            w *= float(K[c[i], x_t[i]])
        for i in range(L):
            post[i, int(oracle.data_ids[c[i]])] += w
    return post / post[0].sum()


@pytest.mark.parametrize("case", ["absorbing", "uniform"])
def test_oracle_posterior_against_loops(case):
    proc, sch = (Absorbing(4), Linear()) if case == "absorbing" else (Uniform(3), Geometric(1e-3, 5.0))
    orc = make_oracle(proc, sch, seed=3)
    states = all_sequences(range(proc.vocab_size), 3)
    t = 0.37
    post = orc.posterior(states, torch.full((len(states),), t, dtype=F64))
    for j in range(0, len(states), 7):
        assert torch.allclose(post[j], _brute_posterior(orc, states[j].tolist(), t), atol=1e-12)


def _exact_step_marginals(oracle, t, s):
    """Per-token marginals of the true reverse p(x_s | x_t) = p_s(x_s) q(x_t|x_s)/p_t(x_t), all x_t."""
    proc, L = oracle.process, oracle.length
    N = proc.vocab_size
    states = all_sequences(range(N), L)
    S = len(states)
    tt, ss = torch.full((S,), t, dtype=F64), torch.full((S,), s, dtype=F64)
    pt, ps = oracle.marginal(states, tt), oracle.marginal(states, ss)
    # per-token kernel from s to t, through the oracle's kernels: q_t = q_s · q_{t|s}
    sch = oracle.schedule
    if getattr(sch, "state_dependent", False):
        a_t, a_s = sch.alpha(tt[:1]).detach()[0], sch.alpha(ss[:1]).detach()[0]
        # a clean token a at s is still a at t w.p. α_t,a/α_s,a (its value is its x_0): Markov in x_s
        step = torch.zeros(N, N, dtype=F64)
        for a in range(N):
            if a == proc.mask_id:
                step[a, a] = 1.0
            else:
                step[a, a] = a_t[a] / a_s[a]
                step[a, proc.mask_id] = 1 - a_t[a] / a_s[a]
    else:
        step = torch.linalg.matrix_exp(float(sch.sigma_bar(tt[:1]) - sch.sigma_bar(ss[:1])) * proc.rate_matrix())
    trans = torch.ones(S, S, dtype=F64)
    for i in range(L):
        trans = trans * step[states[:, i]][:, states[:, i]]  # [x_s, x_t]
    joint = ps[:, None] * trans
    cond = joint / pt[None, :]
    marg = torch.zeros(S, L, N, dtype=F64)
    for i in range(L):
        for y in range(N):
            marg[:, i, y] = cond[states[:, i] == y].sum(0)
    return states, marg, pt > 1e-14


@pytest.mark.parametrize("case", ["absorbing", "uniform", "genmd4"])
@pytest.mark.parametrize("ts", [(0.8, 0.3), (0.5, 0.45), (0.25, 0.0)])
def test_tweedie_step_is_the_exact_reverse_marginal(case, ts):
    if case == "absorbing":
        proc, sch = Absorbing(4), LogLinear(1e-3)
    elif case == "uniform":
        proc, sch = Uniform(3), Geometric(1e-3, 8.0)
    else:
        proc = Absorbing(4)
        sch = PerTokenPolynomial(4, 3)
        with torch.no_grad():
            sch.log_w.copy_(torch.log(torch.tensor([1.0, 2.5, 0.7, 1.0])))
    orc = make_oracle(proc, sch, seed=5)
    states, marg, live = _exact_step_marginals(orc, *ts)
    S = len(states)
    t, s = torch.full((S,), ts[0], dtype=F64), torch.full((S,), ts[1], dtype=F64)
    got = TweedieSampler(proc, sch).step_probs(orc(states, t), "x0", states, t, s)
    assert torch.allclose(got[live], marg[live], atol=1e-9)
    if case != "genmd4":  # the score form of the same step
        sorc = make_oracle(proc, sch, seed=5, parameterization="score")
        got_s = TweedieSampler(proc, sch).step_probs(sorc(states, t), "score", states, t, s)
        assert torch.allclose(got_s[live], marg[live], atol=1e-9)


@pytest.mark.parametrize("case", ["absorbing", "uniform", "genmd4"])
@pytest.mark.parametrize("t", [1e-3, 0.3, 0.8, 0.999])
def test_score_and_mean_conversions_are_exact(case, t):
    if case == "absorbing":
        proc, sch = Absorbing(4), LogLinear(1e-3)
    elif case == "uniform":
        proc, sch = Uniform(3), Geometric(1e-3, 8.0)
    else:
        proc = Absorbing(4)
        sch = PerTokenPolynomial(4, 3)
        with torch.no_grad():
            sch.log_w.copy_(torch.log(torch.tensor([1.0, 2.5, 0.7, 1.0])))
    orc_x0 = make_oracle(proc, sch, seed=7)
    orc_s = make_oracle(proc, sch, seed=7, parameterization="score")
    states = all_sequences(range(proc.vocab_size), 3)
    tt = torch.full((len(states),), t, dtype=F64)
    noise = NoiseLevel.at(sch, tt)
    log_p0, log_s = orc_x0(states, tt), orc_s(states, tt)
    # the positions whose scores enter the reverse rates: masked ones (absorbing) / all (uniform)
    rel = states == proc.mask_id if isinstance(proc, Absorbing) else torch.ones_like(states, dtype=torch.bool)
    live = orc_x0.marginal(states, tt) > 1e-14
    rel = rel & live[:, None]
    conv_s = proc.x0_to_log_score(log_p0, states, noise)
    assert torch.allclose(conv_s[rel].exp(), log_s[rel].exp(), rtol=1e-7, atol=1e-10)
    conv_p = proc.log_score_to_x0(log_s, states, noise)
    assert torch.allclose(conv_p[live].exp(), log_p0[live].exp(), atol=1e-7)


def test_reverse_rates_agree_between_parameterisations():
    for proc, sch in [(Absorbing(4), LogLinear(1e-3)), (Uniform(3), Geometric(1e-3, 8.0))]:
        orc_x0 = make_oracle(proc, sch, seed=11)
        orc_s = make_oracle(proc, sch, seed=11, parameterization="score")
        states = all_sequences(range(proc.vocab_size), 3)
        tt = torch.full((len(states),), 0.42, dtype=F64)
        r0 = proc.reverse_rates(states, orc_x0(states, tt), "x0", tt, sch)
        rs = proc.reverse_rates(states, orc_s(states, tt), "score", tt, sch)
        assert torch.allclose(r0, rs, rtol=1e-7, atol=1e-9)
        assert torch.allclose(r0.sum(-1), torch.zeros_like(r0.sum(-1)), atol=1e-9)
        off = r0.masked_fill(_onehot(states, proc.vocab_size), 0.0)
        assert (off >= 0).all()
        if isinstance(proc, Absorbing):  # unmasked tokens never move in reverse
            assert (r0[states != proc.mask_id] == 0).all()


def test_sample_xt_follows_the_kernel(gen):
    for proc in [Absorbing(5), Uniform(4)]:
        n = 200_000
        x0 = torch.full((n, 1), 1)
        alpha = torch.full((n, 1), 0.35, dtype=F64)
        xt = proc.sample_xt(x0, alpha, gen)
        freq = torch.bincount(xt[:, 0], minlength=proc.vocab_size).double() / n
        exact = proc.transition_probs(torch.tensor([1]), torch.tensor([0.35], dtype=F64))[0]
        assert (freq - exact).abs().max() < 5 * (0.25 / n) ** 0.5


def test_prior_kl_and_prior_draws(gen):
    for proc, a1 in [(Absorbing(5), 1e-3), (Absorbing(5), 0.0), (Uniform(4), 0.2)]:
        x0 = torch.tensor([[0, 3]])
        q1 = proc.transition_probs(x0, torch.full((1, 2), a1, dtype=F64))
        pri = proc.prior_probs(a1)
        direct = (torch.xlogy(q1, q1) - torch.xlogy(q1, pri.expand_as(q1))).sum(-1)
        assert torch.allclose(proc.prior_kl(x0, torch.full((1, 2), a1, dtype=F64)), direct, atol=1e-12)
        draws = proc.sample_prior((100_000,), gen, alpha1=a1)
        freq = torch.bincount(draws, minlength=proc.vocab_size).double() / 1e5
        assert (freq - pri).abs().max() < 0.01


def test_build_process_and_errors():
    p = build_process({"name": "absorbing", "vocab_size": 7})
    assert p.mask_id == 6 and p.num_data_tokens == 6
    assert build_process("uniform", vocab_size=3).num_data_tokens == 3
    with pytest.raises(ValueError, match="unknown process"):
        build_process("gaussian", vocab_size=3)
    with pytest.raises(ValueError):
        Absorbing(4, mask_id=9)
    with pytest.raises(ValueError):
        Uniform(1)
