"""Sequence correction (`seqdiff correct`): exact answers from oracles of small explicit distributions,
and the real command on a tiny uniform-noise model trained here."""

from __future__ import annotations

import contextlib
import io
import math
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_oracle, state_index, tv_threshold
from seqdiff.diffusion import (Absorbing, DiscreteSchedule, Geometric, Linear, LogLinear, MultinomialSampler,
                               TweedieSampler, Uniform, all_sequences, random_distribution,
                               total_variation)
from seqdiff.jobs.correct import (_time_rows, correct, correct_tokens, error_rate_at, estimate_time,
                                  masked_marginals, parse_keep, pseudo_log_likelihood, reverse_from, snap_time,
                                  time_for_error_rate)

ROOT = Path(__file__).resolve().parents[1]
L = 4
N = 3

SCHEDULES = [("geometric", lambda: Geometric(1e-4, 20.0)), ("discrete", lambda: DiscreteSchedule(200))]
SIDS = [s[0] for s in SCHEDULES]


def peaky(size, seed):
    """A random full-support distribution with a few dominant sequences (so correction has work to do)."""
    p = random_distribution(size, torch.Generator().manual_seed(seed)) ** 4
    return p / p.sum()


def oracle(schedule, seed=0, length=L, p0=None):
    p0 = peaky(N ** length, seed) if p0 is None else p0
    return make_oracle(Uniform(N), schedule, length=length, seed=seed, p0=p0)


def states(length=L, n=N):
    return all_sequences(range(n), length)


def corrupt(x0, rate, n, gen):
    """Each position replaced w.p. ``rate`` by a uniformly drawn *different* token."""
    hit = torch.rand(x0.shape, generator=gen, dtype=torch.float64) < rate
    shift = torch.randint(1, n, x0.shape, generator=gen)
    return torch.where(hit, (x0 + shift) % n, x0)


# ------------------------------------------------------------------------------ rate <-> time
@pytest.mark.parametrize("sch", [Geometric(1e-4, 20.0), LogLinear(1e-3), DiscreteSchedule(1000),
                                 DiscreteSchedule(100), DiscreteSchedule(50, "linear")],
                         ids=["geometric", "loglinear", "discrete-1000", "discrete-100", "discrete-linear"])
def test_rate_to_time_inverts_exactly(sch):
    for n in (2, 4, 27):
        rates = torch.tensor([1e-4, 0.003, 0.01, 0.05, 0.1, 0.25, 0.4], dtype=torch.float64)
        rates = rates[rates < (n - 1) / n * 0.9]
        t = time_for_error_rate(sch, rates, n)
        assert ((t > 0) & (t <= 1)).all()
        assert torch.allclose(error_rate_at(sch, t, n), rates, rtol=0, atol=1e-9)
        assert (t.diff() > 0).all()  # monotone
        # scalar form and the definition r = (1 - α)(N - 1)/N
        t1 = time_for_error_rate(sch, 0.05, n)
        if isinstance(sch, DiscreteSchedule):
            k = float(t1) * sch.num_steps
            k0 = math.floor(k)
            la = math.log(sch.alpha_bar[k0]) + (k - k0) * math.log(sch.step_keep[k0])
            alpha = math.exp(la)
        else:
            alpha = float(sch.alpha(t1.reshape(1))[0])
        assert (1 - alpha) * (n - 1) / n == pytest.approx(0.05, abs=1e-12)
    for bad in (0.0, -0.1, 2 / 3, 0.9):
        with pytest.raises(ValueError, match="error rate"):
            time_for_error_rate(sch, bad, 3)


def test_discrete_snap_picks_the_step_with_the_closest_keep_probability():
    sch = DiscreteSchedule(100)
    t = time_for_error_rate(sch, torch.tensor([0.02, 0.07, 0.3]), 27)
    ts = snap_time(sch, t)
    k = torch.round(ts * 100).long()
    assert torch.allclose(ts * 100, k.double())
    a = 1 - torch.tensor([0.02, 0.07, 0.3], dtype=torch.float64) * 27 / 26
    for j in range(3):
        dist = (sch.alpha_bar[1:] - a[j]).abs()
        assert int(k[j]) == int(dist.argmin()) + 1
    # a continuous schedule keeps its t (to the float32 precision denoisers receive)
    g = Geometric()
    tg = time_for_error_rate(g, 0.05, 4)
    assert float(snap_time(g, tg)) == pytest.approx(float(tg), rel=1e-7)


# ------------------------------------------------------------------------------------ one-shot
@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_oneshot_is_the_exact_per_position_posterior_mode(name, make):
    sch = make()
    orc = oracle(sch, seed=1)
    x = states()  # every possible input
    for rate in (0.05, 0.2):
        res = correct_tokens(orc, orc.process, sch, x, error_rate=rate, method="oneshot")
        t = snap_time(sch, time_for_error_rate(sch, rate, N))
        assert torch.allclose(res.t, t.expand(len(x)))
        post = orc.posterior(x, t.expand(len(x)))
        assert torch.equal(res.corrected, post.argmax(-1))
        assert torch.allclose(res.confidence, post.max(-1).values, atol=1e-9)
        assert torch.equal(res.changed, res.corrected != x)
        assert torch.allclose(res.error_rate, torch.full((len(x),), rate, dtype=torch.float64))
        assert res.changed.any()  # some inputs do get corrected
    # the high-level API agrees on raw token ids
    out = correct(orc, x[:5], error_rate=0.2, method="oneshot")
    post = orc.posterior(x[:5], snap_time(sch, time_for_error_rate(sch, 0.2, N)).expand(5))
    for c, row, p in zip(out, x[:5], post):
        assert c.corrected == p.argmax(-1).tolist()
        assert c.positions == [i for i in range(L) if c.corrected[i] != int(row[i])]


# ---------------------------------------------------------------------------- pseudo-likelihood
@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_pseudo_likelihood_from_the_denoiser_equals_enumeration(name, make):
    """Σ_i log p_t(x_i | x_{-i}) via eq. (2) from the oracle's x0 output equals the same sum computed
    from the marginal p_t by enumerating every neighbour: p_t(x_i | x_{-i}) = p_t(x) / Σ_y p_t(x^{i←y})."""
    sch = make()
    orc = oracle(sch, seed=2)
    x = states()
    for rate in (0.01, 0.1, 0.4):
        t = snap_time(sch, time_for_error_rate(sch, rate, N)).expand(len(x))
        pll = pseudo_log_likelihood(orc, orc.process, sch, x, t)
        direct = torch.zeros(len(x), dtype=torch.float64)
        here = orc.marginal(x, t)
        for i in range(L):
            tot = torch.zeros(len(x), dtype=torch.float64)
            for y in range(N):
                xy = x.clone()
                xy[:, i] = y
                tot += orc.marginal(xy, t)
            direct += torch.log(here / tot)
        assert torch.allclose(pll, direct, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_expected_pseudo_likelihood_peaks_at_the_true_rate(name, make):
    """Population version of the estimator, exactly: for x ~ p_{t*}, E[PLL_t(x)] over a grid of rates
    that contains the true one is largest at the true one (Gibbs' inequality, term by term)."""
    sch = make()
    orc = oracle(sch, seed=3)
    x = states()
    grid = torch.tensor([0.02, 0.04, 0.08, 0.15, 0.25, 0.4], dtype=torch.float64)
    times = snap_time(sch, time_for_error_rate(sch, grid, N))
    pll = torch.stack([pseudo_log_likelihood(orc, orc.process, sch, x, tj.expand(len(x))) for tj in times])
    for j in (1, 3, 4):
        w = orc.marginal(x, times[j].expand(len(x)))
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-9)
        expected = pll @ w
        assert int(expected.argmax()) == j, expected


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_estimated_rate_tracks_the_corruption_level(name, make):
    """Sequences drawn from p0 and corrupted at 3 %, 12 % and 35 %: the per-sequence estimates rise with
    the true level, and the pooled estimate (the grid rate maximising the summed PLL over 600 sequences)
    lands on the true rate's grid point or a neighbour. Why that tolerance: the population maximiser is
    exactly the truth (previous test), and the sample maximiser's error shrinks as 1/√n; one grid step
    (a factor 1.5 in rate) is more than two standard errors at n = 600, checked below from the per-sequence
    PLL differences themselves."""
    sch = make()
    L6 = 6
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():  # a fixed p0 (Dirichlet has no generator argument)
        torch.manual_seed(0)
        p0 = torch.distributions.Dirichlet(torch.full((N ** L6,), 0.05, dtype=torch.float64)).sample()
    orc = make_oracle(Uniform(N), sch, length=L6, p0=p0 / p0.sum())
    grid = torch.tensor([0.02 * 1.5 ** k for k in range(9)], dtype=torch.float64)  # 0.02 .. 0.51
    times = snap_time(sch, time_for_error_rate(sch, grid, N))
    means, pooled = [], []
    for true_j in (1, 4, 7):  # 3 %, 10 %, 34 %
        rate = float(grid[true_j])
        x0 = orc.configs[torch.multinomial(orc.p0, 600, replacement=True, generator=gen)]
        x = corrupt(x0, rate, N, gen)
        est = estimate_time(orc, orc.process, sch, x, rates=grid, refine=0)
        means.append(float(est.error_rate.mean()))
        pll = torch.stack([pseudo_log_likelihood(orc, orc.process, sch, x, tj.expand(len(x))) for tj in times])
        j = int(pll.sum(-1).argmax())
        pooled.append(j)
        assert abs(j - true_j) <= 1, (rate, j)
        # the margin by which the true grid point beats the ones two steps away, in standard errors
        for far in (true_j - 2, true_j + 2):
            if 0 <= far < len(grid):
                d = pll[true_j] - pll[far]
                # (one-sided z > 2; this p0 gives 2.5 at 3 % against 6.75 %, the closest call)
                assert float(d.mean()) > 2 * float(d.std() / math.sqrt(len(d))), (rate, far)
    assert means[0] < means[1] < means[2], means


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_em_estimate_climbs_the_marginal_likelihood_and_tracks_the_level(name, make):
    """EM on the rate: each iteration does not decrease log p_{t(r)}(x) (computed here by enumeration,
    exact for the continuous schedule; within one discrete step otherwise), its fixed point satisfies
    r = mean_i P(x0_i ≠ x_i | x, t(r)), and the estimates rise with the corruption level."""
    sch = make()
    L6 = 6
    gen = torch.Generator().manual_seed(1)
    orc = make_oracle(Uniform(N), sch, length=L6, p0=peaky(N ** L6, 11))
    x0 = orc.configs[torch.multinomial(orc.p0, 40, replacement=True, generator=gen)]
    x = corrupt(x0, 0.15, N, gen)
    from seqdiff.jobs.correct import estimate_time_em
    prev = None
    for iters in (1, 2, 4, 8, 1000):  # EM can converge slowly: run the last one to its fixed point
        est = estimate_time_em(orc, orc.process, sch, x, iters=iters, tol=1e-9)
        ll = torch.log(orc.marginal(x, est.t))
        if prev is not None and not isinstance(sch, DiscreteSchedule):
            assert (ll >= prev - 1e-9).all()
        prev = ll
    post = orc.posterior(x, est.t)
    assert torch.allclose(est.log_p0.exp(), post, atol=1e-9)  # the posterior is taken at the reported t
    if not isinstance(sch, DiscreteSchedule):
        fixed_point = (1 - post.gather(-1, x[..., None])[..., 0]).mean(-1).clamp(1e-4, 0.6)  # default range
        assert torch.allclose(est.error_rate, fixed_point, rtol=1e-2)
    means = []
    for rate in (0.03, 0.1, 0.34):
        x0 = orc.configs[torch.multinomial(orc.p0, 400, replacement=True, generator=gen)]
        est = estimate_time_em(orc, orc.process, sch, corrupt(x0, rate, N, gen))
        means.append(float(est.error_rate.mean()))
    assert means[0] < means[1] < means[2], means
    res = correct_tokens(orc, orc.process, sch, x, method="oneshot", estimator="em")
    assert res.estimated.all() and torch.equal(res.corrected, orc.posterior(x, res.t).argmax(-1))


# ----------------------------------------------------------------------------------- multistep
def _exact_reverse_law(orc, sch, x_t, t, steps):
    """Law of :func:`reverse_from` started at one x_t, by pushing the distribution over all N^L states
    through the samplers' own step code on the same time grid."""
    proc = orc.process
    S = states(orc.length, N)
    stepper = MultinomialSampler(proc, sch) if isinstance(sch, DiscreteSchedule) else TweedieSampler(proc, sch)
    grid = _time_rows(sch, torch.tensor([float(t)], dtype=torch.float64), steps)[0]
    dist = (S == x_t).all(-1).double()
    for i in range(steps):
        tt, ss = grid[i], grid[i + 1]
        if not tt > ss:
            continue
        out = orc(S, tt.expand(len(S)).float())
        P = stepper.step_probs(out, "x0", S, tt.expand(len(S)), ss.expand(len(S)))
        trans = torch.ones(len(S), len(S), dtype=torch.float64)
        for j in range(orc.length):
            trans = trans * P[:, j, :][:, S[:, j]]
        dist = dist @ trans
    return dist


@pytest.mark.parametrize("name,make", SCHEDULES, ids=SIDS)
def test_multistep_from_the_true_time_reproduces_the_exact_posterior(name, make):
    """Started at a fixed x_t with the exact oracle, the reverse chain's draws follow p(x0 | x_t)
    (enumerated as p0(x0) Π_i q_t(x_t^i | x0_i)): the exact law of the procedure is close to it, and
    20,000 real draws are within tv_threshold of that law."""
    torch.manual_seed(0)
    sch = make()
    orc = oracle(sch, seed=4, length=3)
    x_t = torch.tensor([0, 2, 1])
    rate = 0.3
    t = snap_time(sch, time_for_error_rate(sch, rate, N))
    K = orc.kernel(t.reshape(1))[0]  # q_t(y | a)
    post = orc.p0.clone()
    for i in range(3):
        post = post * K[orc.config_idx[:, i], x_t[i]]
    post = post / post.sum()
    steps = 128
    law = _exact_reverse_law(orc, sch, x_t, t, steps)[state_index(orc.configs, N)]
    assert float(law.sum()) == pytest.approx(1.0, abs=1e-9)
    assert total_variation(law, post) < 0.01
    n = 20_000
    draws = reverse_from(orc, orc.process, sch, x_t.expand(n, 3).clone(), t.expand(n), steps=steps,
                         generator=torch.Generator().manual_seed(5))
    emp = torch.bincount(state_index(draws, N), minlength=N ** 3).double()[state_index(orc.configs, N)] / n
    bound = tv_threshold(law, n)
    assert total_variation(emp, law) < bound
    assert total_variation(emp, post) < bound + total_variation(law, post)
    # the one-step marginals of the posterior are not the joint: the test can tell them apart
    prod = torch.ones_like(post)
    pm = orc.posterior(x_t[None], t.reshape(1))[0]
    for i in range(3):
        prod = prod * pm[i, orc.configs[:, i]]
    assert total_variation(emp, prod) > bound + total_variation(law, post)


def test_multistep_with_the_mode_as_a_candidate():
    """include_mode puts the one-shot output first among the candidates; with an exact likelihood the
    returned sequence is the best-scored of mode and draws, so it scores no worse than the mode."""
    sch = DiscreteSchedule(100)
    orc = oracle(sch, seed=8)
    x = states()[::5]
    from seqdiff.jobs.correct import multistep_correct, oneshot_decode
    t = snap_time(sch, time_for_error_rate(sch, 0.2, N)).expand(len(x))
    nll = lambda c: -orc.log_p0(c.reshape(-1, L)).reshape(c.shape[:2])  # noqa: E731
    out, _, cands, scores = multistep_correct(orc, orc.process, sch, x, t, steps=6, num_candidates=3,
                                              generator=torch.Generator().manual_seed(1), nll_fn=nll,
                                              include_mode=True)
    mode, _ = oneshot_decode(torch.log(orc.posterior(x, t)), x)
    assert cands.shape == (len(x), 4, L) and torch.equal(cands[:, 0], mode)
    assert (scores.min(-1).values <= scores[:, 0]).all()
    assert torch.equal(out, cands[torch.arange(len(x)), scores.argmin(-1)])
    for final in ("argmax", "greedy"):  # mode-taking variants of the reverse chain run and keep lengths
        y = reverse_from(orc, orc.process, sch, x, t, steps=4, final=final)
        assert y.shape == x.shape and ((y >= 0) & (y < N)).all()


def test_multistep_ranks_candidates_by_the_posterior():
    """With the exact log p0 as the likelihood, the posterior ranking returns the candidate with the
    highest p0(c) q_t(x | c) among the draws."""
    sch = Geometric(1e-4, 20.0)
    orc = oracle(sch, seed=5)
    x = states()[::7]
    nll = lambda c: -orc.log_p0(c.reshape(-1, L)).reshape(c.shape[:2])  # noqa: E731
    from seqdiff.jobs.correct import multistep_correct
    t = snap_time(sch, time_for_error_rate(sch, 0.25, N)).expand(len(x))
    out, conf, cands, scores = multistep_correct(orc, orc.process, sch, x, t, steps=8, num_candidates=6,
                                                 generator=torch.Generator().manual_seed(0), nll_fn=nll)
    K = orc.kernel(t[:1])[0]
    for b in range(len(x)):
        lp = [float(orc.log_p0(c[None])[0]) + sum(math.log(K[int(c[i]), int(x[b, i])]) for i in range(L))
              for c in cands[b]]
        assert out[b].tolist() == cands[b, max(range(6), key=lambda k: lp[k])].tolist()
        assert scores[b].tolist() == pytest.approx([-v for v in lp], abs=1e-9)


# ----------------------------------------------------------------------------------------- keep
@pytest.mark.parametrize("method", ["oneshot", "multistep", "mask"])
def test_keep_positions_never_change(method):
    if method == "mask":
        sch = Linear()
        orc = make_oracle(Absorbing(N + 1), sch, length=L, seed=6)
    else:
        sch = DiscreteSchedule(100) if method == "multistep" else Geometric(1e-4, 20.0)
        orc = oracle(sch, seed=6)
    x = states()
    free = correct_tokens(orc, orc.process, sch, x, error_rate=0.3, method=method, num_candidates=2, steps=8,
                          generator=torch.Generator().manual_seed(0))
    assert free.changed.any(dim=0).all()  # every position changes somewhere when allowed to
    keep = torch.zeros_like(x, dtype=torch.bool)
    keep[:, 1] = True
    keep[::2, 3] = True
    for rate in (0.3, None):
        res = correct_tokens(orc, orc.process, sch, x, error_rate=rate, method=method, keep=keep,
                             num_candidates=2, steps=8, generator=torch.Generator().manual_seed(0))
        assert torch.equal(res.corrected[keep], x[keep])
        assert not res.changed[keep].any()
    # via the API with a position list and with a mask string (raw ids: '*' keeps)
    out = correct(orc, x, error_rate=0.3, method=method, keep="1", num_candidates=2, steps=8,
                  process=orc.process, schedule=sch)
    assert all(c.corrected[1] == int(r[1]) for c, r in zip(out, x))
    out = correct(orc, x, error_rate=0.3, method=method, keep="?*??", num_candidates=2, steps=8)
    assert all(1 not in c.positions for c in out)


def test_parse_keep_forms_and_errors():
    from seqdiff.tokenizers import DNATokenizer
    tok = DNATokenizer()
    seq = "ACGTACGT"
    ids = tok.encode(seq)
    assert parse_keep(None, 8) == set()
    assert parse_keep("0-2, 5", 8) == {0, 1, 2, 5}
    assert parse_keep([7, 0], 8) == {0, 7}
    assert parse_keep("AC??.*_T", 8, text=seq, ids=ids, tokenizer=tok) == {0, 1, 5, 7}
    assert parse_keep("ac??????", 8, text=seq, ids=ids, tokenizer=tok) == {0, 1}  # case-folded like the data
    with pytest.raises(ValueError, match="position 1 says 'G'"):
        parse_keep("AG??????", 8, text=seq, ids=ids, tokenizer=tok, record="r1")
    with pytest.raises(ValueError, match="7 characters"):
        parse_keep("AC?????", 8, text=seq, ids=ids, tokenizer=tok)
    with pytest.raises(ValueError, match="outside the sequence"):
        parse_keep("3-9", 8)
    with pytest.raises(ValueError, match="not a letter"):
        parse_keep("AC??Z???", 8, text=seq, ids=ids, tokenizer=tok)


# ------------------------------------------------------------------------------------ mask mode
def test_mask_mode_flags_and_replaces_a_planted_improbable_token():
    """p0 puts almost all mass on constant sequences; in 1 1 2 1 the 2 is the improbable token. Its
    masked marginal p(x_2 = 2 | rest) (enumerated from p0) is the lowest; it is flagged (rate given,
    estimated, or by threshold) and replaced by 1."""
    n, length = 3, 4
    proc, sch = Absorbing(n + 1), Linear()
    configs = all_sequences(range(n), length)
    const = (configs == configs[:, :1]).all(-1)
    p0 = torch.where(const, 1.0, 0.004).double()
    p0 = p0 / p0.sum()
    orc = make_oracle(proc, sch, length=length, p0=p0)
    x = torch.tensor([[1, 1, 2, 1], [0, 0, 0, 0]])
    lp = masked_marginals(orc, proc, x)
    for b in range(2):  # exact masked marginals p0(x_i | x_{-i})
        for i in range(length):
            rest = [j for j in range(length) if j != i]
            match = (configs[:, rest] == x[b, rest]).all(-1)
            cond = torch.zeros(n, dtype=torch.float64).index_add_(0, configs[match, i], p0[match])
            assert torch.allclose(lp[b, i, :n].exp(), cond / cond.sum(), atol=1e-9)
    for kw in ({"error_rate": 0.25}, {}, {"threshold": 0.1}):
        res = correct_tokens(orc, proc, sch, x, method="mask", infill="greedy", steps=4,
                             generator=torch.Generator().manual_seed(0), **kw)
        assert res.corrected[0].tolist() == [1, 1, 1, 1], kw
        assert res.changed[0].tolist() == [False, False, True, False]
        assert res.corrected[1].tolist() == [0, 0, 0, 0]
        assert float(res.confidence[0, 2]) > 0.9
        # ancestral infill draws from the model: with the estimated (large) rate more than the
        # planted position is re-drawn, and a non-constant fill has probability ~0.1 — so count
        wins = 0
        for seed in range(40):
            res = correct_tokens(orc, proc, sch, x, method="mask", infill="ancestral", steps=4,
                                 generator=torch.Generator().manual_seed(seed), **kw)
            wins += res.corrected[0].tolist() == [1, 1, 1, 1]
        assert wins >= 30, (kw, wins)
    # estimated rate: only the planted position is informative in row 0 (the others have masked
    # marginal 1/3, where the channel likelihood is flat in r), so its ML rate is large; row 1 is clean
    est = correct_tokens(orc, proc, sch, x, method="mask")
    assert float(est.error_rate[0]) > 0.2 and float(est.error_rate[1]) < 0.01 and est.estimated.all()
    assert est.corrected.tolist() == [[1, 1, 1, 1], [0, 0, 0, 0]]
    # interleaved passes give the same flags here (the planted token is isolated)
    res = correct_tokens(orc, proc, sch, x, method="mask", error_rate=0.25, passes=2)
    assert res.corrected[0].tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="uniform-process"):
        correct_tokens(orc, proc, sch, x, method="oneshot", error_rate=0.1)


def test_methods_check_the_process():
    sch = Geometric()
    orc = oracle(sch)
    with pytest.raises(ValueError, match="absorbing"):
        correct_tokens(orc, orc.process, sch, states()[:2], method="mask")
    with pytest.raises(ValueError, match="unknown correction method"):
        correct_tokens(orc, orc.process, sch, states()[:2], method="magic")


def test_score_parameterised_denoiser_gives_the_same_oneshot():
    sch = Geometric(1e-4, 20.0)
    x = states()
    a = correct_tokens(make_oracle(Uniform(N), sch, length=L, seed=7), Uniform(N), sch, x, error_rate=0.1)
    b = correct_tokens(make_oracle(Uniform(N), sch, length=L, seed=7, parameterization="score"), Uniform(N), sch,
                       x, error_rate=0.1)
    assert torch.equal(a.corrected, b.corrected)
    assert torch.allclose(a.confidence, b.confidence, atol=1e-6)


# ------------------------------------------------------------------------------ the real command
@pytest.fixture(scope="session")
def uniform_text_model(tmp_path_factory):
    """A tiny multinomial-diffusion text model (uniform process, 100 discrete steps), trained once."""
    from seqdiff.training.config import load_config
    from seqdiff.training.train import train
    run = tmp_path_factory.mktemp("correct-tiny-text")
    cfg = load_config(ROOT / "configs" / "tiny" / "text.yaml",
                      [f"out_dir={run}", "diffusion.process=uniform", "diffusion.loss=multinomial",
                       "diffusion.schedule={name: discrete, num_steps: 100}", "sampling.log_samples=0",
                       "trainer.max_steps=20", "trainer.progress_bar=false"])
    return Path(train(cfg, quiet=True)["model"])


def cli(*args):
    import seqdiff.jobs.correct_cli  # noqa: F401  (registers the subcommand)
    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_cli_round_trip_writes_corrected_text_and_a_csv(uniform_text_model, tmp_path):
    lines = ["the quick brown fox jumps over", "anarchism is a politicul idea", "", "in the yeqr one nine eight"]
    inp = tmp_path / "typos.txt"
    inp.write_text("\n".join(lines) + "\n")
    for extra in ([], ["--error-rate", "0.05"], ["--estimator", "pll"],
                  ["--method", "multistep", "--candidates", "2", "--steps", "4", "--n-t", "4", "--error-rate", "0.1"],
                  ["--method", "multistep", "--candidates", "2", "--steps", "4", "--n-t", "2", "--draws-only"]):
        out = tmp_path / "fixed.txt"
        r = cli("correct", "-m", uniform_text_model, "-i", inp, "-o", out, "-q", "--keep", "1-3", "--overwrite",
                *extra)
        assert r.returncode == 0, r.stderr
        got = out.read_text().split("\n")[:-1]
        table = pd.read_csv(tmp_path / "fixed.csv", keep_default_na=False, dtype=str)
        assert len(got) == len(lines) == len(table)
        assert list(table.columns) == ["id", "input", "corrected", "num_changed", "positions", "confidences",
                                       "changed_confidences", "t", "error_rate", "rate_estimated", "method",
                                       "reads"]
        assert set(table["reads"]) == {"1"}
        assert list(table["input"]) == lines and list(table["corrected"]) == got
        assert list(table["id"]) == ["line 1", "line 2", "line 3", "line 4"]
        for s_in, s_out, row in zip(lines, got, table.itertuples()):
            assert len(s_out) == len(s_in) and s_out[:3] == s_in[:3]  # substitutions only; keep honoured
            pos = [int(p) - 1 for p in row.positions.split(";")] if row.positions else []  # 1-based in the CSV
            assert pos == [i for i in range(len(s_in)) if s_in[i] != s_out[i]]
            assert int(row.num_changed) == len(pos) and len(row.confidences) == len(s_in)
            if s_in:
                assert 0 < float(row.error_rate) < 1 and 0 < float(row.t) <= 1
        assert set(table["method"]) <= {"oneshot", "multistep"}
        est = table["rate_estimated"][0] == "True"
        assert est == ("--error-rate" not in extra)
        if "--error-rate" in extra:
            assert float(table["error_rate"][0]) == float(extra[extra.index("--error-rate") + 1])


@pytest.fixture(scope="session")
def masked_text_model(tmp_path_factory):
    """The tiny masked (absorbing) text recipe, trained once."""
    from seqdiff.training.config import load_config
    from seqdiff.training.train import train
    run = tmp_path_factory.mktemp("correct-tiny-masked")
    cfg = load_config(ROOT / "configs" / "tiny" / "text.yaml",
                      [f"out_dir={run}", "sampling.log_samples=0", "trainer.max_steps=20",
                       "trainer.progress_bar=false"])
    return Path(train(cfg, quiet=True)["model"])


@pytest.mark.parametrize("infill", ["greedy", "ancestral"])
def test_cli_mask_mode_on_a_masked_model(masked_text_model, tmp_path, infill):
    inp = tmp_path / "in.txt"
    lines = ["the cat sat on the mat", "a dog barked at the moon"]
    inp.write_text("\n".join(lines) + "\n")
    r = cli("correct", "-m", masked_text_model, "-i", inp, "-o", tmp_path / "out.txt", "-q", "-r", "0.2",
            "--keep", "1-4", "--infill", infill, "--steps", "3", "--mask-passes", "4")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype=str)
    assert list(table["method"]) == ["mask", "mask"] and list(table["input"]) == lines
    for s_in, s_out in zip(lines, table["corrected"]):
        assert len(s_out) == len(s_in) and s_out[:4] == s_in[:4]
    # t reports the masked fraction: ceil(0.2 L) of L positions
    assert [float(v) for v in table["t"]] == pytest.approx([math.ceil(0.2 * len(s)) / len(s) for s in lines], abs=1e-6)
    # a uniform-only method on a masked model is a clear error
    r = cli("correct", "-m", masked_text_model, "-i", inp, "-o", tmp_path / "o2.txt", "-q", "--method", "oneshot")
    assert r.returncode == 2 and "uniform-process" in r.stderr


def test_console_entry_point_in_a_fresh_interpreter(uniform_text_model, tmp_path):
    import os
    import subprocess
    import sys
    inp = tmp_path / "in.txt"
    inp.write_text("the quikc brown fox\n")
    code = "import sys, seqdiff.jobs.correct_cli; from seqdiff.cli import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, "correct", "-m", str(uniform_text_model), "-i", str(inp),
                        "-o", str(tmp_path / "out.txt"), "--seed", "3"], env=env, cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "corrected 1 sequences" in r.stdout and (tmp_path / "out.csv").is_file()
    assert len((tmp_path / "out.txt").read_text()) == len("the quikc brown fox\n")


def test_cli_fasta_round_trip(uniform_text_model, tmp_path):
    inp = tmp_path / "in.fa"
    inp.write_text(">a first\nthecatsat\n>b\nonthe\nmat\n")
    r = cli("correct", "-m", uniform_text_model, "-i", inp, "-o", tmp_path / "out.fa", "-q", "-r", "0.05")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "out.fa").read_text().split("\n")
    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype=str)
    assert text[0] == ">a" and text[2] == ">b" and text[1] == table["corrected"][0] and text[3] == table["corrected"][1]
    assert list(table["id"]) == ["a", "b"] and list(table["input"]) == ["thecatsat", "onthemat"]
    assert [len(s) for s in table["corrected"]] == [9, 8]


@pytest.mark.parametrize("case", ["letter", "too_long", "bad_keep"])
def test_cli_bad_input_exits_2_naming_the_record_and_writes_nothing(uniform_text_model, tmp_path, case):
    inp = tmp_path / "in.txt"
    keep = []
    if case == "letter":
        inp.write_text("all fine here\nbut noT this one\n")
        want = ["line 2", "position 7", "'T'"]
    elif case == "too_long":
        inp.write_text("short\n" + "a" * 40 + "\n")  # the tiny model's max_len is 32
        want = ["line 2", "40 tokens", "32"]
    else:
        inp.write_text("abc\nabcd\n")
        keep = ["--keep", "a??"]
        want = ["line 2", "4"]
    out = tmp_path / "out.txt"
    out_csv = tmp_path / "out.csv"
    r = cli("correct", "-m", uniform_text_model, "-i", inp, "-o", out, "-q", *keep)
    assert r.returncode == 2
    for w in want:
        assert w in r.stderr, r.stderr
    assert not out.exists() and not out_csv.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.txt"]  # no temporary files left either


def test_model_api_on_a_trained_model(uniform_text_model):
    from seqdiff.model import load_model
    model = load_model(uniform_text_model)
    seqs = ["the quick brown fox", "a cat"]
    res = correct(model, seqs, error_rate=[0.05, 0.2], keep=[{0}, "a*???"], method="multistep",
                  num_candidates=2, steps=3, n_t=2)
    assert [len(r.corrected) for r in res] == [19, 5]
    assert res[0].corrected[0] == "t" and res[1].corrected[:2] == "a "
    assert [r.error_rate for r in res] == [0.05, 0.2]
    again = correct(model, seqs, error_rate=[0.05, 0.2], keep=[{0}, "a*???"], method="multistep",
                    num_candidates=2, steps=3, n_t=2)
    assert [r.corrected for r in res] == [r.corrected for r in again]  # same seed, same output
    est = correct(model, seqs)  # estimated rate, one-shot
    assert all(r.estimated and 0 < r.error_rate < 1 for r in est)
    assert all(len(r.confidences) == len(s) and all(0 <= c <= 1 for c in r.confidences)
               for r, s in zip(est, seqs))
    with pytest.raises(ValueError, match="absorbing"):
        correct(model, seqs, method="mask")


# ------------------------------------------------------------------ shipped uniform-noise models
@pytest.mark.parametrize("name,alphabet,factor", [("text-uniform", "abcdefghijklmnopqrstuvwxyz ", 0.85),
                                                  ("dna-uniform", "ACGT", 1.0)])
def test_shipped_uniform_models_lower_the_error_rate_of_held_out_data(name, alphabet, factor):
    """On held-out data at 5 % the shipped multinomial-diffusion models fix more than they break (text)
    and break no more than they fix (DNA). benchmarks/bench_correct.py gives the full table; this
    guards the shipped files."""
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_correct as bench
    finally:
        sys.path.pop(0)
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model

    model = load_model(resolve_model(name))
    assert isinstance(model.process, Uniform)
    clean = bench.held_out_windows("text" if name.startswith("text") else "dna", 128, 16)
    noisy = bench.corrupt(clean, 0.05, alphabet, seed=3)
    before = bench.error_rate(noisy, clean)
    for kw in ({"error_rate": 0.05}, {}):  # known rate; rate estimated by EM
        res = correct(model, noisy, method="oneshot", seed=0, **kw)
        after = bench.error_rate([r.corrected for r in res], clean)
        # DNA at ~1.95 bits/base leaves a single-sequence prior little to go on (a base is changed only
        # where the model finds another ~3(1-r)/r times likelier): there, correction must not hurt
        assert after <= factor * before and (factor == 1.0 or after < before), (kw, before, after)
