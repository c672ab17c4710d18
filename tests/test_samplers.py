"""Samplers driven by the exact oracle: their output law (exact, by pushing distributions through
the samplers' own step code) and their empirical output (20,000 draws of the real loop) reproduce
p0, and conditioned on fixed positions the exact conditional of p0."""

import math

import pytest
import torch

from conftest import make_oracle, state_index, tv_threshold
from seqdiff.diffusion import (Absorbing, DiscreteSchedule, EulerSampler, Geometric, Linear, LogLinear, NoiseLevel,
                               MaskedAncestralSampler, MultinomialSampler, PerTokenPolynomial, TweedieSampler,
                               Uniform, all_sequences, build_sampler, exact_sampler_distribution, sample, time_grid,
                               total_variation)

F64 = torch.float64
L = 3
N_SAMPLES = 20_000


def genmd4():
    sch = PerTokenPolynomial(4, 3)
    with torch.no_grad():
        sch.log_w.copy_(torch.log(torch.tensor([1.0, 2.0, 0.6, 1.0])))
    return sch


# (id, process, schedule, sampler, parameterisation)
CASES = [
    ("absorb-linear-euler-x0", Absorbing(4), Linear(), "euler", "x0"),
    ("absorb-linear-tweedie-x0", Absorbing(4), Linear(), "tweedie", "x0"),
    ("absorb-linear-ancestral-x0", Absorbing(4), Linear(), "ancestral", "x0"),
    ("absorb-loglinear-euler-score", Absorbing(4), LogLinear(1e-3), "euler", "score"),
    ("absorb-loglinear-tweedie-score", Absorbing(4), LogLinear(1e-3), "tweedie", "score"),
    ("absorb-loglinear-ancestral-score", Absorbing(4), LogLinear(1e-3), "ancestral", "score"),
    ("genmd4-ancestral", Absorbing(4), genmd4(), "ancestral", "x0"),
    ("genmd4-euler", Absorbing(4), genmd4(), "euler", "x0"),
    ("uniform-geometric-euler-x0", Uniform(3), Geometric(1e-4, 20.0), "euler", "x0"),
    ("uniform-geometric-tweedie-x0", Uniform(3), Geometric(1e-4, 20.0), "tweedie", "x0"),
    ("uniform-geometric-euler-score", Uniform(3), Geometric(1e-4, 20.0), "euler", "score"),
    ("uniform-geometric-tweedie-score", Uniform(3), Geometric(1e-4, 20.0), "tweedie", "score"),
    ("multinomial", Uniform(3), DiscreteSchedule(256), "multinomial", "x0"),
]
IDS = [c[0] for c in CASES]


def law_of_clean(dist, oracle):
    """The sampler law restricted to clean sequences, in the oracle's order."""
    return dist[state_index(oracle.configs, oracle.process.vocab_size)]


def empirical(samples, oracle):
    idx = state_index(samples, oracle.process.vocab_size)
    counts = torch.bincount(idx, minlength=oracle.process.vocab_size ** oracle.length).double()
    return law_of_clean(counts / counts.sum(), oracle)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact_law_converges_to_p0(case):
    _, proc, sch, name, param = case
    orc = make_oracle(proc, sch, seed=0, parameterization=param)
    tvs = {}
    for steps in (4, 256):
        law = exact_sampler_distribution(build_sampler(name, proc, sch, steps=steps), orc, L)
        clean = law_of_clean(law, orc)
        assert abs(float(law.sum()) - 1) < 1e-9 and abs(float(clean.sum()) - 1) < 1e-9  # nothing left masked
        tvs[steps] = total_variation(clean, orc.p0)
    assert tvs[256] < 0.01, tvs
    assert tvs[256] < tvs[4] / 5, tvs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_twenty_thousand_samples_reproduce_p0(case):
    """TV(empirical, p0) ≤ TV(empirical, law) + TV(law, p0); the first is below tv_threshold (an
    expectation bound plus a McDiarmid deviation at δ = 1e-6, see conftest), the second is exact."""
    _, proc, sch, name, param = case
    steps = 128
    orc = make_oracle(proc, sch, seed=0, parameterization=param)
    sampler = build_sampler(name, proc, sch, steps=steps)
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(7))
    assert x.shape == (N_SAMPLES, L) and x.dtype == torch.long
    assert (x != proc.mask_id).all() if proc.mask_id is not None else True
    law = law_of_clean(exact_sampler_distribution(sampler, orc, L), orc)
    emp = empirical(x, orc)
    bound = tv_threshold(law, N_SAMPLES)
    assert total_variation(emp, law) < bound
    assert total_variation(emp, orc.p0) < bound + total_variation(law, orc.p0)
    # the threshold separates: samples from a different distribution fail it
    other = make_oracle(proc, sch, seed=31, parameterization=param)
    assert total_variation(emp, other.p0) > bound + total_variation(law, orc.p0)


FIXED_CASES = [c for c in CASES if c[0] in ("absorb-linear-tweedie-x0", "absorb-linear-ancestral-x0",
                                             "absorb-loglinear-euler-score", "genmd4-ancestral",
                                             "uniform-geometric-tweedie-x0", "uniform-geometric-euler-score",
                                             "multinomial")]


@pytest.mark.parametrize("case", FIXED_CASES, ids=[c[0] for c in FIXED_CASES])
def test_fixed_positions_give_the_exact_conditional(case):
    _, proc, sch, name, param = case
    orc = make_oracle(proc, sch, seed=2, parameterization=param)
    fixed = torch.tensor([False, True, False])
    values = torch.tensor([0, 1, 0])
    cond = orc.conditional(fixed, values)
    sampler = build_sampler(name, proc, sch, steps=128)
    law = law_of_clean(exact_sampler_distribution(sampler, orc, L, fixed, values), orc)
    assert total_variation(law, cond) < 0.02
    x = sampler.sample(orc, x_fixed=values.expand(N_SAMPLES, L).clone(), fixed=fixed.expand(N_SAMPLES, L),
                       generator=torch.Generator().manual_seed(3))
    assert (x[:, 1] == 1).all()  # fixed tokens appear verbatim in every sample
    emp = empirical(x, orc)
    assert total_variation(emp, cond) < tv_threshold(law, N_SAMPLES) + total_variation(law, cond)


def test_uniform_clamping_needs_a_fixed_aware_denoiser():
    """With the uniform process a clamped clean token looks like a noisy one to a plain denoiser:
    the output is then not the conditional. The exact oracle conditions on ``fixed`` and is."""
    proc, sch = Uniform(3), Geometric(1e-4, 20.0)
    orc = make_oracle(proc, sch, seed=2)

    class Unaware:
        parameterization = "x0"

        def __call__(self, x, t):
            return orc(x, t)

    fixed = torch.tensor([True, False, False])
    values = torch.tensor([2, 0, 0])
    cond = orc.conditional(fixed, values)
    sampler = TweedieSampler(proc, sch, steps=128)
    aware = law_of_clean(exact_sampler_distribution(sampler, orc, L, fixed, values), orc)
    plain = law_of_clean(exact_sampler_distribution(sampler, Unaware(), L, fixed, values), orc)
    assert total_variation(aware, cond) < 0.02
    assert total_variation(plain, cond) > 3 * total_variation(aware, cond)


def _true_step(oracle, t, s):
    """The true reverse kernel p(x_s | x_t) over all states: [S(x_s), S(x_t)]."""
    proc = oracle.process
    states = all_sequences(range(proc.vocab_size), oracle.length)
    S = len(states)
    tt, ss = torch.full((S,), t, dtype=F64), torch.full((S,), s, dtype=F64)
    step = torch.linalg.matrix_exp(float(oracle.schedule.sigma_bar(tt[:1]) - oracle.schedule.sigma_bar(ss[:1]))
                                   * proc.rate_matrix())
    trans = torch.ones(S, S, dtype=F64)
    for i in range(oracle.length):
        trans = trans * step[states[:, i]][:, states[:, i]]
    joint = oracle.marginal(states, ss)[:, None] * trans
    return states, joint / oracle.marginal(states, tt)[None, :]


def _product(P, states):
    out = torch.ones(len(states), len(states), dtype=F64)  # [x_t, x_s]
    for i in range(states.shape[1]):
        out = out * P[:, i, :][:, states[:, i]]
    return out.T  # [x_s, x_t]


@pytest.mark.parametrize("proc_sch", [(Uniform(3), Geometric(1e-4, 20.0)), (Uniform(4), Geometric(1e-3, 5.0)),
                                      (Absorbing(4), LogLinear(1e-3))], ids=["uniform3", "uniform4", "absorbing"])
def test_tweedie_is_the_kl_optimal_tau_leaping_step(proc_sch):
    """SEDD Thm 4.2: among factorised updates, Tweedie's minimises KL(true step ‖ update) for every x_t."""
    proc, sch = proc_sch
    orc = make_oracle(proc, sch, seed=4)
    for t, s in [(0.9, 0.6), (0.6, 0.3), (0.3, 0.1)]:
        states, true = _true_step(orc, t, s)
        S = len(states)
        tt, ss = torch.full((S,), t, dtype=F64), torch.full((S,), s, dtype=F64)
        out = orc(states, tt)
        prods = {}
        for name in ("tweedie", "euler"):
            P = build_sampler(name, proc, sch, steps=8).step_probs(out, "x0", states, tt, ss)
            prods[name] = _product(P, states)
        live = orc.marginal(states, tt) > 1e-12

        def kl(q):
            v = torch.xlogy(true, true) - torch.xlogy(true, q)
            v = torch.where(true > 0, v, torch.zeros_like(v))
            return v.sum(0)[live]

        assert (kl(prods["tweedie"]) <= kl(prods["euler"]) + 1e-12).all()


def test_tweedie_is_at_least_as_close_as_euler_at_small_step_counts():
    for seed in range(4):
        for proc, sch, steps in [(Uniform(3), Geometric(1e-4, 20.0), 2), (Uniform(4), Geometric(1e-4, 20.0), 2),
                                 (Absorbing(4), LogLinear(1e-3), 2), (Absorbing(4), LogLinear(1e-3), 4)]:
            orc = make_oracle(proc, sch, seed=seed)
            tv = {name: total_variation(law_of_clean(exact_sampler_distribution(
                build_sampler(name, proc, sch, steps=steps), orc, L), orc), orc.p0) for name in ("euler", "tweedie")}
            assert tv["tweedie"] <= tv["euler"] + 1e-12, (seed, proc, tv)


def test_ancestral_cache_skips_the_network_and_changes_nothing():
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=6)
    assert orc.time_independent
    runs = {}
    for cache in (True, False):
        stats = {}
        x = MaskedAncestralSampler(proc, sch, steps=256, cache=cache).sample(
            orc, 2000, L, generator=torch.Generator().manual_seed(9), stats=stats)
        runs[cache] = (x, stats)
    assert torch.equal(runs[True][0], runs[False][0])  # identical samples: the outputs were reused exactly
    assert runs[False][1]["rows"] == 2000 * 256
    # a sequence changes state at most L times, so it is evaluated at most L + 1 times
    assert runs[True][1]["rows"] <= 2000 * (L + 1)
    assert runs[True][1]["nfe"] <= 256


def test_cosine_and_uniform_grids():
    g = time_grid(8, "cosine")
    assert g[0] == 1 and g[-1] == 0 and (g[1:] < g[:-1]).all()
    assert (g[:-1] - g[1:])[0] < (g[:-1] - g[1:])[-1]  # small steps first
    u = time_grid(4)
    assert torch.allclose(u, torch.tensor([1, 0.75, 0.5, 0.25, 0], dtype=F64))
    with pytest.raises(ValueError):
        time_grid(4, "log")
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=1)
    law = exact_sampler_distribution(MaskedAncestralSampler(proc, sch, steps=256, grid="cosine"), orc, L)
    assert total_variation(law_of_clean(law, orc), orc.p0) < 0.01


def test_multinomial_strided_steps():
    proc, sch = Uniform(3), DiscreteSchedule(400)
    orc = make_oracle(proc, sch, seed=1)
    full = law_of_clean(exact_sampler_distribution(MultinomialSampler(proc, sch), orc, L), orc)
    few = law_of_clean(exact_sampler_distribution(MultinomialSampler(proc, sch, steps=8), orc, L), orc)
    assert total_variation(full, orc.p0) < total_variation(few, orc.p0) < 0.2
    assert MultinomialSampler(proc, sch).steps == 400


def test_seeds_progress_cancel_and_errors():
    proc, sch = Absorbing(4), LogLinear(1e-3)
    orc = make_oracle(proc, sch, seed=1)
    a = sample(orc, proc, sch, "tweedie", num_samples=64, length=L, steps=16, generator=torch.Generator().manual_seed(1))
    b = sample(orc, proc, sch, "tweedie", num_samples=64, length=L, steps=16, generator=torch.Generator().manual_seed(1))
    c = sample(orc, proc, sch, "tweedie", num_samples=64, length=L, steps=16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    seen = []
    sample(orc, proc, sch, "euler", num_samples=4, length=L, steps=5, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 5) for i in range(1, 6)]

    class Stop(Exception):
        pass

    def cancel(i, n):
        if i == 2:
            raise Stop

    with pytest.raises(Stop):
        sample(orc, proc, sch, "ancestral", num_samples=4, length=L, steps=5, progress=cancel)
    score_orc = make_oracle(proc, Linear(), seed=1, parameterization="score")
    with pytest.raises(ValueError, match="α\\(1\\) > 0"):
        sample(score_orc, proc, Linear(), "tweedie", num_samples=4, length=L, steps=4)
    with pytest.raises(ValueError, match="x_fixed"):
        sample(orc, proc, sch, "tweedie", num_samples=4, length=L, fixed=torch.zeros(4, L, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(orc, proc, sch, "heun", num_samples=4, length=L)
    with pytest.raises(ValueError):
        MaskedAncestralSampler(Uniform(3), sch)
    with pytest.raises(ValueError):
        EulerSampler(proc, sch, steps=0)


@pytest.mark.parametrize("sampler_cls", [TweedieSampler, EulerSampler])
def test_no_mask_survives_the_last_step_of_an_unnormalised_score(sampler_cls):
    """A learned score is not normalised exactly: with the exact scores scaled by 0.5 (too little mass
    leaves the mask in the step to t = 0) no sample may keep a mask, and with exact scores the
    step to 0 is unchanged (the renormalisation is a no-op there)."""
    proc, sch = Absorbing(4), LogLinear(1e-3)
    orc = make_oracle(proc, sch, length=3, seed=5, parameterization="score")

    class Halved:
        parameterization = "score"

        def __call__(self, x, t):
            return orc(x, t) + math.log(0.5)

    g = torch.Generator().manual_seed(0)
    out = sampler_cls(proc, sch, steps=4).sample(Halved(), 512, 3, generator=g)
    assert not (out == proc.mask_id).any()
    x = torch.full((2, 3), proc.mask_id)
    t, s = torch.full((2,), 0.3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    nt, ns = NoiseLevel.at(sch, t), NoiseLevel.at(sch, s)
    step = proc.tweedie_probs_score(x, orc(x, t.float()).double(), nt, ns)
    em1 = (nt.one_minus_alpha - ns.one_minus_alpha) / nt.alpha
    raw = em1 * orc(x, t.float()).double().exp()
    raw[..., proc.mask_id] = 0.0
    assert torch.allclose(step, raw, atol=1e-6)  # exact scores already sum to α_t/(1-α_t)
