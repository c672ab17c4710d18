"""Reward-guided sampling (best-of-N, SMC) and classifier-free guidance against exact answers on
small explicit distributions (enumeration)."""

from __future__ import annotations

import itertools

import pytest
import torch

from conftest import make_oracle, state_index, tv_threshold
from seqdiff.diffusion import (Absorbing, Linear, LogLinear, Uniform, build_sampler, exact_sampler_distribution,
                               total_variation)
from seqdiff.guidance import best_of_n, best_of_n_law, smc_sample, tilt_log_potential

L = 3


def clean_law(sampler, orc):
    law = exact_sampler_distribution(sampler, orc, L)
    return law[state_index(orc.configs, orc.process.vocab_size)]


def table_reward(orc, values):
    return lambda x: values[orc.index(x)]


PROCS = [("absorbing-ancestral", Absorbing(4), Linear(), "ancestral"),
         ("uniform-tweedie", Uniform(3), LogLinear(), "tweedie")]


def test_best_of_n_law_formula_matches_brute_force():
    """The closed form against the law of the winner of every ordered tuple of draws."""
    g = torch.Generator().manual_seed(3)
    q = torch.rand(6, generator=g, dtype=torch.float64)
    q /= q.sum()
    r = torch.tensor([0.5, 0.2, 0.5, 0.9, 0.2, 0.9], dtype=torch.float64)  # ties between states
    for n in (1, 2, 3):
        brute = torch.zeros(6, dtype=torch.float64)
        for draw in itertools.product(range(6), repeat=n):
            best = max(range(n), key=lambda j: (r[draw[j]], -j))  # highest reward, first on ties
            brute[draw[best]] += float(torch.prod(q[list(draw)]))
        assert torch.allclose(best_of_n_law(q, r, n), brute, atol=1e-12)
    assert torch.allclose(best_of_n_law(q, r, 1), q)


@pytest.mark.parametrize("case", PROCS, ids=[c[0] for c in PROCS])
def test_best_of_n_output_law_is_the_exact_formula(case):
    _, proc, sch, name = case
    orc = make_oracle(proc, sch, seed=0)
    sampler = build_sampler(name, proc, sch, steps=8)
    q = clean_law(sampler, orc)
    g = torch.Generator().manual_seed(1)
    r = torch.round(torch.rand(orc.configs.shape[0], generator=g, dtype=torch.float64) * 6) / 6  # with ties
    n_out = 20_000
    x, rew = best_of_n(sampler, orc, table_reward(orc, r), n_out, L, n=4, generator=torch.Generator().manual_seed(2))
    assert x.shape == (n_out, L) and torch.equal(rew, r[orc.index(x)])
    emp = torch.bincount(orc.index(x), minlength=len(q)).double() / n_out
    exact = best_of_n_law(q, r, 4)
    bound = tv_threshold(exact, n_out)
    assert total_variation(emp, exact) < bound
    assert total_variation(emp, q) > bound + 0.05  # it is not the plain sampler's law


@pytest.mark.parametrize("case", PROCS, ids=[c[0] for c in PROCS])
def test_smc_converges_to_the_tilted_target(case):
    """The law of SMC's output (the expected weighted particle measure, estimated over many
    independent groups) approaches q·r^λ/Z as the particles per group grow; q is the sampler's
    exact law (the tilt is of what the sampler draws)."""
    _, proc, sch, name = case
    orc = make_oracle(proc, sch, seed=0)
    sampler = build_sampler(name, proc, sch, steps=16)
    q = clean_law(sampler, orc)
    r = torch.rand(len(q), generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.05
    lam = 2.0
    target = q * r ** lam
    target /= target.sum()
    phi = tilt_log_potential(table_reward(orc, r), lam, "power")
    tv, picks = {}, {}
    for k in (1, 4, 64):
        groups = 32_768 // k
        res = smc_sample(sampler, orc, phi, groups, L, particles=k, generator=torch.Generator().manual_seed(5))
        assert torch.allclose(res.weights.sum(-1), torch.ones(groups, dtype=torch.float64))
        est = torch.zeros(len(q), dtype=torch.float64)
        est.index_add_(0, orc.index(res.particles.reshape(-1, L)), res.weights.reshape(-1))
        tv[k] = total_variation(est / groups, target)
        picks[k] = torch.bincount(orc.index(res.samples), minlength=len(q)).double() / groups
    assert tv[1] > 0.2 and abs(tv[1] - total_variation(q, target)) < 0.02  # one particle: no tilt
    assert tv[64] < tv[4] < tv[1]
    assert tv[64] < 0.025, tv
    # one output per group, drawn from the weights: its empirical law is near the target too
    assert total_variation(picks[64], target) < tv_threshold(target, 32_768 // 64) + 0.025


def test_smc_exp_tilt_and_fixed_positions():
    """An exponential tilt e^{λ r} with a fixed position: the target is q(·|fixed)·e^{λ r}/Z."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=2)
    sampler = build_sampler("ancestral", proc, sch, steps=16)
    fixed = torch.tensor([False, True, False])
    values = torch.tensor([3, 1, 3])
    law = exact_sampler_distribution(sampler, orc, L, fixed, values)[state_index(orc.configs, 4)]
    r = torch.linspace(-1.0, 1.0, len(law), dtype=torch.float64)
    lam = 1.5
    target = law * torch.exp(lam * r)
    target /= target.sum()
    groups = 512
    res = smc_sample(sampler, orc, tilt_log_potential(table_reward(orc, r), lam), particles=64,
                     x_fixed=values.expand(groups, L), fixed=fixed.expand(groups, L),
                     generator=torch.Generator().manual_seed(0))
    assert (res.particles[..., 1] == 1).all()
    est = torch.zeros(len(law), dtype=torch.float64)
    est.index_add_(0, orc.index(res.particles.reshape(-1, L)), res.weights.reshape(-1))
    assert total_variation(est / groups, target) < 0.03
    assert total_variation(law, target) > 0.2


def test_bad_smc_arguments():
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch)
    s = build_sampler("ancestral", proc, sch, steps=4)
    phi = tilt_log_potential(lambda x: torch.ones(x.shape[0]), 1.0)
    with pytest.raises(ValueError, match="particles"):
        smc_sample(s, orc, phi, 2, L, particles=0)
    with pytest.raises(ValueError, match="ess_threshold"):
        smc_sample(s, orc, phi, 2, L, ess_threshold=1.5)
    with pytest.raises(ValueError, match="power tilt"):
        tilt_log_potential(lambda x: -torch.ones(x.shape[0]), 1.0, "power")(torch.zeros(2, L, dtype=torch.long))
    with pytest.raises(ValueError, match="N ≥ 1"):
        best_of_n(s, orc, lambda x: torch.ones(x.shape[0]), 2, L, n=0)


# ------------------------------------------------------------------------ classifier-free guidance
from seqdiff.diffusion import random_distribution  # noqa: E402
from seqdiff.guidance.cfg import ConditionalOracle, combine_transitions, guided  # noqa: E402


def cond_oracle(proc, sch, seed=0, param="x0"):
    g = torch.Generator().manual_seed(seed)
    n = proc.num_data_tokens ** L
    p = torch.stack([random_distribution(n, g), random_distribution(n, g)])
    return ConditionalOracle(p, torch.tensor([0.3, 0.7]), L, proc, sch, param)


CFG_CASES = [("absorbing-ancestral", Absorbing(4), Linear(), "ancestral", "x0"),
             ("absorbing-tweedie", Absorbing(4), Linear(), "tweedie", "x0"),
             ("uniform-euler-score", Uniform(3), LogLinear(eps=1e-3), "euler", "score"),
             ("uniform-tweedie", Uniform(3), LogLinear(), "tweedie", "x0")]


def _guided_law(sampler, orc, cond, gamma, mode="transition"):
    s, den = guided(sampler, orc, cond, gamma, mode=mode)
    return exact_sampler_distribution(s, den, L)[state_index(orc.oracles[0].configs, orc.process.vocab_size)]


@pytest.mark.parametrize("case", CFG_CASES, ids=[c[0] for c in CFG_CASES])
def test_cfg_weight_one_is_the_conditional_law_and_zero_the_unconditional(case):
    """With exact conditional/unconditional denoisers: the guided transition at γ = 1 (computed
    through the two-output combination, not the shortcut) is the conditional sampler's, whose law
    tends to p0(x | c); γ = 0 is the unconditional one (p0(x))."""
    _, proc, sch, name, param = case
    orc = cond_oracle(proc, sch, param=param)
    sampler = build_sampler(name, proc, sch, steps=128)
    from seqdiff.guidance.cfg import CFGPair, _transition_class
    import copy
    for gamma, cls in ((1.0, 1), (0.0, None)):
        s = copy.copy(sampler)
        s.__class__ = _transition_class(type(sampler))
        s.cfg_gamma = gamma
        law = exact_sampler_distribution(s, CFGPair(orc, 1, 2), L)[state_index(orc.oracles[0].configs, proc.vocab_size)]
        ref_orc = orc.oracles[cls if cls is not None else 2]
        plain = clean_law(sampler, ref_orc)
        assert torch.allclose(law, plain, atol=1e-12)
        exact = orc.p0_given_c[cls] if cls is not None else orc.marginal
        assert total_variation(law, exact) < 0.02
        assert total_variation(law, orc.p0_given_c[0]) > 0.1  # it is not the other class's law
    # and through guided() (its γ ∈ {0, 1} shortcuts), in both modes
    for mode in ("transition", "x0"):
        assert torch.allclose(_guided_law(sampler, orc, 1, 1.0, mode), clean_law(sampler, orc.oracles[1]), atol=1e-12)
        assert torch.allclose(_guided_law(sampler, orc, 1, 0.0, mode), clean_law(sampler, orc.oracles[2]), atol=1e-12)


def test_cfg_masked_transition_matches_the_closed_form():
    """At a masked position the tilted transition stays masked w.p. S/(S + M Z) and reveals a w.p.
    M g(a)/(S + M Z), g = p_c^γ p_u^{1-γ}, Z = Σ g (module docstring), from the exact posteriors."""
    proc, sch = Absorbing(4), Linear()
    orc = cond_oracle(proc, sch, seed=4)
    sampler = build_sampler("ancestral", proc, sch, steps=8)
    x = torch.tensor([[3, 1, 3], [3, 3, 3], [0, 3, 2]])
    t, s = torch.full((3,), 0.6, dtype=torch.float64), torch.full((3,), 0.45, dtype=torch.float64)
    for gamma in (0.5, 2.0, 3.0):
        gs, den = guided(sampler, orc, 0, gamma, mode="transition")
        P = gs.step_probs(den(x, t.float()), "x0", x, t, s)
        pc = orc.oracles[0].posterior(x, t)[..., :3]
        pu = orc.oracles[2].posterior(x, t)[..., :3]
        a_t, a_s = 1 - 0.6, 1 - 0.45
        S, M = (1 - a_s) / (1 - a_t), (a_s - a_t) / (1 - a_t)
        g = pc ** gamma * pu ** (1 - gamma)
        Z = g.sum(-1, keepdim=True)
        masked = x == 3
        assert torch.allclose(P[..., 3][masked], (S / (S + M * Z[..., 0]))[masked], atol=1e-10)
        assert torch.allclose(P[..., :3][masked], (M * g / (S + M * Z))[masked], atol=1e-10)
        assert torch.equal(P[~masked].argmax(-1), x[~masked]) and torch.allclose(P[~masked].max(-1).values,
                                                                                  torch.ones(int((~masked).sum()), dtype=torch.float64))
        # the x0 mode reveals with the unguided probability M, tokens from g / Z
        s0, d0 = guided(sampler, orc, 0, gamma, mode="x0")
        P0 = s0.step_probs(d0(x, t.float()), "x0", x, t, s)
        assert torch.allclose(P0[..., :3][masked], (M * g / Z)[masked], atol=1e-6)


def test_cfg_strong_guidance_moves_mass_towards_the_condition():
    """γ > 1 raises the probability of sequences that the condition makes likelier than the
    marginal does: E[log p0(x|c) - log p0(x)] under the guided law grows with γ."""
    proc, sch = Absorbing(4), Linear()
    orc = cond_oracle(proc, sch, seed=1)
    sampler = build_sampler("ancestral", proc, sch, steps=64)
    pmi = torch.log(orc.p0_given_c[0]) - torch.log(orc.marginal)
    vals = [float((_guided_law(sampler, orc, 0, g) * pmi).sum()) for g in (0.0, 1.0, 2.0, 4.0)]
    assert vals[0] < vals[1] < vals[2] < vals[3], vals


def test_combine_transitions_is_the_normalised_geometric_mixture():
    pc = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    pu = torch.tensor([[0.25, 0.25, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    out = combine_transitions(pc, pu, 2.0)
    w = pc ** 2 / pu
    w = torch.where(pc > 0, w, torch.zeros_like(w))
    assert torch.allclose(out, w / w.sum(-1, keepdim=True))
    assert torch.equal(combine_transitions(pc, pu, 1.0), pc) and torch.equal(combine_transitions(pc, pu, 0.0), pu)


# ------------------------------------------------------------------------------ classifier guidance
from seqdiff.guidance.classifier import classifier_guided  # noqa: E402


@pytest.mark.parametrize("case", [("absorbing", Absorbing(4), Linear(), "ancestral"),
                                  ("uniform", Uniform(3), LogLinear(), "tweedie")], ids=["absorbing", "uniform"])
def test_classifier_guidance_with_the_exact_noisy_classifier_tends_to_p0_given_c(case):
    """The unconditional sampler tilted by the exact p(c | z_s) (enumerating single-token changes)
    reaches p0(x | c) as the steps grow (one token moves per step in the limit)."""
    _, proc, sch, name = case
    orc = cond_oracle(proc, sch, seed=2)
    tv = {}
    for steps in (4, 256):
        s = classifier_guided(build_sampler(name, proc, sch, steps=steps), orc.log_class_posterior, 0, 1.0)
        law = exact_sampler_distribution(s, orc.oracles[2], L)[state_index(orc.oracles[0].configs, proc.vocab_size)]
        assert abs(float(law.sum()) - 1) < 1e-9
        tv[steps] = total_variation(law, orc.p0_given_c[0])
    assert tv[256] < 0.02 and tv[256] < tv[4] / 3, tv
    assert total_variation(orc.marginal, orc.p0_given_c[0]) > 0.1
    # γ = 0 is the unguided sampler
    s0 = classifier_guided(build_sampler(name, proc, sch, steps=16), orc.log_class_posterior, 0, 0.0)
    base = build_sampler(name, proc, sch, steps=16)
    assert torch.allclose(exact_sampler_distribution(s0, orc.oracles[2], L), exact_sampler_distribution(base, orc.oracles[2], L))


def test_smc_over_confidence_decoding_raises_the_reward():
    """SMC runs over a sampler with no per-token transition (confidence-ordered decoding) and moves
    its outputs towards the reward."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=0)
    s = build_sampler("confidence", proc, sch, steps=3)
    r = torch.linspace(0.0, 1.0, 27, dtype=torch.float64)
    plain = s.sample(orc, 2000, L, generator=torch.Generator().manual_seed(0))
    res = smc_sample(s, orc, tilt_log_potential(table_reward(orc, r), 4.0), 500, L, particles=8,
                     generator=torch.Generator().manual_seed(0))
    assert float(r[orc.index(res.samples)].mean()) > float(r[orc.index(plain)].mean()) + 0.1
