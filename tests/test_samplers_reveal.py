"""Samplers that choose what to reveal (confidence-ordered decoding), remasking (ReMDM), tempered
draws, and the sparse absorbing step — against exact answers from small explicit distributions.

Confidence ordering is biased by design: the tests compute its exact output law by enumerating the
draws of every step and check the real loop against it (and that it is *not* p0), instead of
pretending it samples p0. With random order and one token per step it is exact, and is tested so.
"""

import itertools
import math

import pytest
import torch

from conftest import make_oracle, state_index, tv_threshold
from seqdiff.diffusion import (Absorbing, ConfidenceSampler, Linear, LogLinear, MaskedAncestralSampler, NoiseLevel,
                               RemaskingSampler, build_sampler, exact_sampler_distribution, temper_log_probs,
                               total_variation)
from seqdiff.diffusion.samplers import SAMPLERS, build_sampler_options

F64 = torch.float64
L = 3
N_SAMPLES = 20_000


def fixed_denoiser(lp):
    """A denoiser class whose ``p(x_0 | x_t)`` is ``lp [L, N]`` whatever its input."""
    class Fixed:
        parameterization = "x0"

        def __call__(self, x, t):
            return lp.expand(x.shape[0], -1, -1)
    return Fixed


def clean_law(samples, orc):
    n = orc.process.vocab_size
    counts = torch.bincount(state_index(samples, n), minlength=n ** orc.length).double()
    return (counts / counts.sum())[state_index(orc.configs, n)]


# ------------------------------------------------------------------------------- tempering
def test_temper_log_probs_exact():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=F64)
    lp = p.log()
    # temperature: p^(1/T) renormalised
    t = temper_log_probs(lp, 0.5).exp()
    assert torch.allclose(t, p ** 2 / (p ** 2).sum(), atol=1e-12)
    assert torch.allclose(temper_log_probs(lp, 1.0).exp(), p, atol=1e-12)
    # T = 0: all mass on the argmax
    assert torch.equal(temper_log_probs(lp, 0.0).exp().round(), torch.tensor([1.0, 0, 0, 0], dtype=F64))
    assert temper_log_probs(lp, 1e-3).exp()[0] > 1 - 1e-9
    # top-k keeps exactly k values (ties by index), renormalised
    tk = temper_log_probs(lp, top_k=2).exp()
    assert torch.allclose(tk, torch.tensor([0.5, 0.3, 0, 0], dtype=F64) / 0.8, atol=1e-9)
    ties = temper_log_probs(torch.zeros(4, dtype=F64), top_k=2).exp()
    assert int((ties > 1e-6).sum()) == 2
    # top-p: the smallest prefix of the sorted values whose mass reaches p
    assert torch.allclose(temper_log_probs(lp, top_p=0.8).exp(), torch.tensor([0.5, 0.3, 0, 0], dtype=F64) / 0.8,
                          atol=1e-9)
    assert torch.allclose(temper_log_probs(lp, top_p=0.81).exp(),
                          torch.tensor([0.5, 0.3, 0.15, 0], dtype=F64) / 0.95, atol=1e-9)
    assert torch.allclose(temper_log_probs(lp, top_p=0.1).exp(), torch.tensor([1.0, 0, 0, 0], dtype=F64), atol=1e-9)
    # order of operations: temperature first, then truncation
    both = temper_log_probs(lp, 0.5, top_k=2).exp()
    assert torch.allclose(both, torch.tensor([0.25, 0.09, 0, 0], dtype=F64) / 0.34, atol=1e-9)


@pytest.mark.parametrize("name", ["ancestral", "tweedie", "euler", "remdm"])
def test_tempered_step_is_the_step_of_the_tempered_denoiser(name):
    """A tempered sampler's step equals the untempered step driven by the tempered p(x0|x_t)."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=3)
    hot = build_sampler(name, proc, sch, steps=8, temperature=0.7, top_p=0.9)
    cold = build_sampler(name, proc, sch, steps=8)
    x = torch.tensor([[3, 3, 3], [0, 3, 2], [3, 1, 3]])
    t, s = torch.full((3,), 0.6, dtype=F64), torch.full((3,), 0.4, dtype=F64)
    out = orc(x, t.float())
    tempered = temper_log_probs(proc.to_log_x0(out, "x0", x, NoiseLevel.at(sch, t)), 0.7, None, 0.9)
    assert torch.allclose(hot.step_probs(out, "x0", x, t, s), cold.step_probs(tempered, "x0", x, t, s), atol=1e-9)


def test_temperature_zero_is_the_per_step_argmax():
    """Confidence decoding with T = 0, one position per step by max-probability: the greedy path
    computed by hand from the exact conditionals (every sample identical)."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=11)
    m = proc.mask_id
    x = torch.full((1, L), m)
    for _ in range(L):
        p0 = orc(x, torch.full((1,), 0.5)).double().exp()[0]  # [L, N]; time-independent (absorbing)
        p0[:, m] = 0
        best = p0.max(-1).values.masked_fill(x[0] != m, -1.0)
        i = int(best.argmax())
        x[0, i] = int(p0[i].argmax())
    sampler = ConfidenceSampler(proc, sch, steps=L, temperature=0.0, confidence="max", k_schedule="linear")
    out = sampler.sample(orc, 64, L, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x.expand(64, -1))
    # the ancestral sampler at T = 0 draws the argmax of each revealed position's conditional
    anc = MaskedAncestralSampler(proc, sch, steps=1, temperature=0.0)
    one = anc.sample(orc, 16, L, generator=torch.Generator().manual_seed(1))
    p0 = orc(torch.full((1, L), m), torch.ones(1)).double().exp()[0]
    p0[:, m] = 0
    assert torch.equal(one, p0.argmax(-1).expand(16, -1))


# ------------------------------------------------------------------ the sparse absorbing step
@pytest.mark.parametrize("name", ["ancestral", "tweedie", "euler"])
@pytest.mark.parametrize("param,sch", [("x0", Linear()), ("score", LogLinear(1e-3))])
@pytest.mark.parametrize("tempered", [False, True])
def test_sparse_step_has_the_law_of_the_dense_step(name, param, sch, tempered):
    proc = Absorbing(5)
    orc = make_oracle(proc, sch, seed=2, parameterization=param)
    kw = {"temperature": 0.8, "top_k": 3} if tempered else {}
    sampler = build_sampler(name, proc, sch, steps=4, **kw)
    m = proc.mask_id
    x = torch.tensor([[m, m, m], [0, m, 2], [m, 1, m], [3, 2, m]])
    for t0, s0 in [(0.9, 0.6), (0.5, 0.0), (0.2, 0.05)]:
        t, s = torch.full((4,), t0, dtype=F64), torch.full((4,), s0, dtype=F64)
        out = orc(x, t.float())
        dense = sampler.step_probs(out, param, x, t, s)
        dense = dense / dense.sum(-1, keepdim=True)
        p_move, rows = sampler.move_probs(out, param, x, t, s)
        flat = (x == m).reshape(-1).nonzero()[:, 0]
        tok = rows(flat).double().exp()
        implied = tok * p_move.reshape(-1)[flat, None]
        implied[:, m] = 1 - p_move.reshape(-1)[flat]
        assert torch.allclose(implied, dense.reshape(-1, proc.vocab_size)[flat], atol=1e-6), (t0, s0)


# -------------------------------------------------------------------- confidence ordering
def exact_confidence_law(orc, confidence: str) -> torch.Tensor:
    """Exact output law of one-position-per-step confidence decoding (temperature 1), by
    enumerating every joint draw at the masked positions; ties go to the leftmost position."""
    proc = orc.process
    m, n_data = proc.mask_id, proc.num_data_tokens
    law = {}
    frontier = {tuple([m] * orc.length): 1.0}
    for _ in range(orc.length):
        nxt = {}
        for state, w in frontier.items():
            x = torch.tensor([state])
            p0 = orc(x, torch.full((1,), 0.5)).double().exp()[0, :, :n_data]
            p0 = p0 / p0.sum(-1, keepdim=True)
            masked = [i for i in range(orc.length) if state[i] == m]
            for draw in itertools.product(range(n_data), repeat=len(masked)):
                pr = math.prod(float(p0[i, a]) for i, a in zip(masked, draw))
                if confidence == "prob":
                    conf = [float(p0[i, a]) for i, a in zip(masked, draw)]
                else:  # max
                    conf = [float(p0[i].max()) for i in masked]
                j = max(range(len(masked)), key=lambda k: (conf[k], -k))
                new = list(state)
                new[masked[j]] = draw[j]
                nxt[tuple(new)] = nxt.get(tuple(new), 0.0) + w * pr
        frontier = nxt
    law = torch.zeros(n_data ** orc.length, dtype=F64)
    for state, w in frontier.items():
        law[int(state_index(torch.tensor([state]), n_data)[0])] += w
    return law


def test_random_order_one_token_per_step_samples_p0_exactly():
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=4)
    sampler = ConfidenceSampler(proc, sch, steps=L, confidence="random", k_schedule="linear")
    stats = {}
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(3), stats=stats)
    assert not (x == proc.mask_id).any() and stats["steps"] == L
    assert total_variation(clean_law(x, orc), orc.p0) < tv_threshold(orc.p0, N_SAMPLES)


def test_left_to_right_order_one_token_per_step_samples_p0_exactly():
    """A fixed order (leftmost masked position first) with one token per step is the chain rule:
    exact for the exact denoiser."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=6)
    sampler = ConfidenceSampler(proc, sch, steps=L, confidence="left", k_schedule="linear")
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(5))
    assert total_variation(clean_law(x, orc), orc.p0) < tv_threshold(orc.p0, N_SAMPLES)


def test_block_restricts_reveals_to_the_leftmost_block_with_a_masked_position():
    """block=2 on length 5: the first two steps reveal only within positions 0-1 (then 2-3, then
    4), whatever the confidences say; block=1 with any confidence is left-to-right order."""
    proc, sch = Absorbing(4), Linear()
    length = 5
    lp = torch.log_softmax(torch.randn(length, proc.vocab_size, generator=torch.Generator().manual_seed(1)), -1)
    lp[:, proc.mask_id] = -1e6
    lp = torch.log_softmax(lp, -1)
    lp[0] = lp[0] - 5.0  # the first position is the least confident by far
    lp = torch.log_softmax(lp, -1)

    Fixed = fixed_denoiser(lp)

    trace = []
    s = ConfidenceSampler(proc, sch, steps=length, confidence="max", k_schedule="linear", block=2)
    x = torch.full((1, length), proc.mask_id)
    state = s.begin(x, None)
    for i in range(length):
        x = s.step(Fixed()(x, None), "x0", x, None, None, None, torch.Generator().manual_seed(i), i, length, state)
        trace.append((x[0] != proc.mask_id).nonzero()[:, 0].tolist())
    # one per step (linear schedule over 5 steps); the least confident position 0 is still taken
    # before anything outside its block
    assert [len(t) for t in trace] == [1, 2, 3, 4, 5]
    assert set(trace[1]) == {0, 1} and set(trace[3]) == {0, 1, 2, 3}
    left = ConfidenceSampler(proc, sch, steps=length, confidence="prob", k_schedule="linear", block=1)
    x = torch.full((1, length), proc.mask_id)
    state = left.begin(x, None)
    for i in range(length):
        x = left.step(Fixed()(x, None), "x0", x, None, None, None, torch.Generator().manual_seed(i), i, length, state)
        assert (x[0, : i + 1] != proc.mask_id).all() and (x[0, i + 1:] == proc.mask_id).all()
    with pytest.raises(ValueError, match="block"):
        ConfidenceSampler(proc, sch, steps=4, block=0)


@pytest.mark.parametrize("confidence", ["prob", "max"])
def test_confidence_ordering_has_its_enumerated_biased_law(confidence):
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=5)
    law = exact_confidence_law(orc, confidence)
    assert abs(float(law.sum()) - 1) < 1e-9
    sampler = ConfidenceSampler(proc, sch, steps=L, confidence=confidence, k_schedule="linear")
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(8))
    emp = clean_law(x, orc)
    assert total_variation(emp, law) < tv_threshold(law, N_SAMPLES)
    if confidence == "max":
        # one position per step chosen from the revealed tokens alone (not from the draw) is an
        # adaptive order of the chain rule: exact
        assert total_variation(law, orc.p0) < 1e-12
    else:
        # choosing by the drawn token's probability is biased: it concentrates on p0's likely sequences
        assert total_variation(law, orc.p0) > 0.05
        top = orc.p0.argsort(descending=True)[:5]
        assert float(law[top].sum()) > float(orc.p0[top].sum())


def test_k_per_step_follows_the_schedule_and_the_most_confident_are_revealed():
    """A denoiser with fixed, known per-position distributions: after step 1 exactly
    M - ⌊M g(1/n)⌋ positions are revealed, and they are the most confident ones."""
    proc, sch = Absorbing(6), Linear()
    length, n_data = 10, 5
    torch.manual_seed(0)
    logits = torch.randn(length, proc.vocab_size) * torch.linspace(0.2, 4.0, length)[:, None]
    logits[:, proc.mask_id] = -1e6
    lp = torch.log_softmax(logits, -1)

    Fixed = fixed_denoiser(lp)

    p = lp[:, :n_data].exp().double()
    expected = {"max": p.max(-1).values, "margin": p.topk(2, -1).values[:, 0] - p.topk(2, -1).values[:, 1],
                "entropy": (p * p.log()).sum(-1)}
    for k_sched, g in [("linear", lambda u: 1 - u), ("cosine", lambda u: math.cos(math.pi * u / 2))]:
        for conf, score in expected.items():
            steps = 4
            sampler = ConfidenceSampler(proc, sch, steps=steps, confidence=conf, k_schedule=k_sched)
            seen = []

            class Stop(Exception):
                pass

            def grab(i, n):
                raise Stop

            x0 = torch.full((3, length), proc.mask_id)
            state = sampler.begin(x0, None)
            t = torch.ones(3, dtype=F64)
            new = sampler.step(Fixed()(x0, t), "x0", x0, t, t, None, torch.Generator().manual_seed(1), 0, steps, state)
            revealed = new != proc.mask_id
            k = length - math.floor(length * g(1 / steps) + 1e-9)
            assert (revealed.sum(-1) == k).all(), (k_sched, conf)
            top = set(score.argsort(descending=True)[:k].tolist())
            for row in revealed:
                assert set(row.nonzero()[:, 0].tolist()) == top, (k_sched, conf)
            seen.append(k)
    # prob: the revealed positions are those whose *drawn* token is most probable
    sampler = ConfidenceSampler(proc, sch, steps=4, confidence="prob", k_schedule="linear")
    x0 = torch.full((200, length), proc.mask_id)
    t = torch.ones(200, dtype=F64)
    new = sampler.step(Fixed()(x0, t), "x0", x0, t, t, None, torch.Generator().manual_seed(2), 0, 4,
                       sampler.begin(x0, None))
    for row in new:
        rev = (row != proc.mask_id).nonzero()[:, 0]
        assert len(rev) == length - math.floor(length * 0.75)
        drawn_p = p[rev, row[rev]]
        # every revealed draw is at least as probable as the least probable token any kept position
        # could have beaten: the k-th largest probability of drawn tokens is a lower bound
        assert float(drawn_p.min()) >= 0.0
    # across many rows, the revealed positions' drawn tokens are more probable than average draws
    rev_p = torch.cat([p[(r != proc.mask_id).nonzero()[:, 0], r[r != proc.mask_id]] for r in new])
    avg = (p * p).sum(-1).mean()
    assert float(rev_p.mean()) > float(avg)


def test_confidence_noise_randomises_the_order_and_fades_out():
    """MaskGIT's choice temperature: with noise the first step's revealed set varies between rows
    (without it every row reveals the same, most confident, positions); the noise is scaled by
    1 - i/n, so it is gone at the last step."""
    proc, sch = Absorbing(6), Linear()
    length = 10
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(length, proc.vocab_size) * torch.linspace(0.2, 4.0, length)[:, None], -1)

    Fixed = fixed_denoiser(lp)

    x0 = torch.full((64, length), proc.mask_id)
    t = torch.ones(64, dtype=F64)
    sets = {}
    for noise in (0.0, 3.0):
        s = ConfidenceSampler(proc, sch, steps=4, confidence="max", k_schedule="linear", noise=noise)
        new = s.step(Fixed()(x0, t), "x0", x0, t, t, None, torch.Generator().manual_seed(0), 0, 4, s.begin(x0, None))
        sets[noise] = {tuple((r != proc.mask_id).nonzero()[:, 0].tolist()) for r in new}
        assert ((new != proc.mask_id).sum(-1) == length - math.floor(length * 0.75)).all()
    assert len(sets[0.0]) == 1 and len(sets[3.0]) > 5
    s = ConfidenceSampler(proc, sch, steps=4, noise=3.0)
    conf = torch.rand(20, dtype=F64)
    assert torch.allclose(s._noised(conf, 4, 4, torch.Generator().manual_seed(0)), conf.log())


def test_threshold_reveals_every_confident_position_and_saves_network_calls():
    proc, sch = Absorbing(4), Linear()
    # a peaked p0: one sequence holds most of the mass
    p0 = torch.full((27,), 0.02 / 26, dtype=F64)
    p0[5] = 0.98
    orc = make_oracle(proc, sch, p0=p0)
    stats_fixed, stats_thr = {}, {}
    g = torch.Generator().manual_seed(0)
    ConfidenceSampler(proc, sch, steps=3, k_schedule="linear").sample(orc, 32, L, generator=g, stats=stats_fixed)
    out = ConfidenceSampler(proc, sch, steps=3, k_schedule="linear", threshold=0.9).sample(
        orc, 32, L, generator=torch.Generator().manual_seed(0), stats=stats_thr)
    assert stats_fixed["steps"] == 3
    assert stats_thr["steps"] < 3 and stats_thr["nfe"] < stats_fixed["nfe"]
    assert not (out == proc.mask_id).any()


def test_fixed_positions_seeds_and_infill():
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, length=4, seed=9)
    x_fixed = torch.tensor([[2, 0, 0, 1]]).expand(500, -1).clone()
    fixed = torch.tensor([[True, False, False, True]]).expand(500, -1).clone()
    for name, kw in [("confidence", {}), ("confidence", {"confidence": "margin", "threshold": 0.5}),
                     ("remdm", {"remask": "rescale", "eta": 0.5}), ("remdm", {"remask": "loop", "eta": 0.5}),
                     ("ancestral", {"temperature": 0.5, "top_p": 0.9})]:
        s = build_sampler(name, proc, sch, steps=8, **kw)
        a = s.sample(orc, x_fixed=x_fixed, fixed=fixed, generator=torch.Generator().manual_seed(1))
        b = s.sample(orc, x_fixed=x_fixed, fixed=fixed, generator=torch.Generator().manual_seed(1))
        c = s.sample(orc, x_fixed=x_fixed, fixed=fixed, generator=torch.Generator().manual_seed(2))
        assert torch.equal(a[fixed], x_fixed[fixed]), name
        assert not (a == proc.mask_id).any(), name
        assert torch.equal(a, b) and not torch.equal(a, c), name
    # random order, one per step, with fixed positions: the exact conditional of p0
    s = ConfidenceSampler(proc, sch, steps=2, confidence="random", k_schedule="linear")
    x = s.sample(orc, x_fixed=torch.tensor([[2, 0, 0, 1]]).expand(N_SAMPLES, -1).clone(),
                 fixed=torch.tensor([[True, False, False, True]]).expand(N_SAMPLES, -1).clone(),
                 generator=torch.Generator().manual_seed(4))
    cond = orc.conditional(torch.tensor([True, False, False, True]), torch.tensor([2, 0, 0, 1]))
    assert total_variation(clean_law(x, orc), cond) < tv_threshold(cond, N_SAMPLES)


# ---------------------------------------------------------------------------------- ReMDM
def test_remdm_step_keeps_the_forward_marginals():
    """With the true clean token, x_t ~ q_t(·|x0) and one ReMDM step give x_s ~ q_s(·|x0), for any
    admissible σ (the property the method rests on)."""
    proc, sch = Absorbing(3), Linear()
    m = proc.mask_id
    for remask, eta in [("cap", 0.3), ("rescale", 0.7), ("rescale", 1.0)]:
        s_ = RemaskingSampler(proc, sch, steps=4, remask=remask, eta=eta)
        for t0, s0 in [(0.9, 0.6), (0.5, 0.2), (0.3, 0.0)]:
            t, s = torch.full((1,), t0, dtype=F64), torch.full((1,), s0, dtype=F64)
            x = torch.tensor([[0, m]])  # revealed (prob α_t) or masked (prob 1-α_t)
            out = torch.tensor([[[0.0, -1e6, -1e6], [0.0, -1e6, -1e6]]])  # p0 = δ_0
            P = s_.step_probs(out, "x0", x, t, s)[0]
            a_t, a_s = 1 - t0, 1 - s0
            marg = a_t * P[0] + (1 - a_t) * P[1]
            assert torch.allclose(marg, torch.tensor([a_s, 0.0, 1 - a_s], dtype=F64), atol=1e-9), (remask, t0)
            if s0 > 0 and eta > 0:
                assert float(P[0, m]) > 0  # revealed tokens really are re-masked
    assert torch.allclose(
        RemaskingSampler(proc, sch, eta=0.0).step_probs(out, "x0", x, t, s),
        MaskedAncestralSampler(proc, sch).step_probs(out, "x0", x, t, s), atol=1e-12)


@pytest.mark.parametrize("remask", ["cap", "rescale", "loop"])
def test_remdm_exact_law_converges_to_p0(remask):
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=0)
    # the loop spends (t_on - t_off) of the clock at fixed noise and compresses the rest: more steps
    sampler = RemaskingSampler(proc, sch, steps=1024 if remask == "loop" else 256, remask=remask, eta=0.2)
    law = exact_sampler_distribution(sampler, orc, L)
    n = proc.vocab_size
    clean = law[state_index(orc.configs, n)]
    assert abs(float(clean.sum()) - 1) < 1e-9
    assert total_variation(clean, orc.p0) < 0.01


def test_remdm_loop_holds_the_noise_level():
    s = RemaskingSampler(Absorbing(4), Linear(), steps=20, remask="loop", t_on=0.5, t_off=0.1)
    g = s.times()
    assert g[0] == 1 and g[-1] == 0 and (g[1:] <= g[:-1]).all()
    assert int((g == 0.5).sum()) >= 8  # the loop phase: 0.5 - 0.1 of the clock at fixed t_on


# -------------------------------------------------------------------------------- options
def test_sampler_options_are_declared_and_checked():
    assert build_sampler_options("confidence", {"confidence": "max", "temperature": 1, "top_k": None}) == \
        {"confidence": "max", "temperature": 1.0}
    with pytest.raises(ValueError, match="does not take option 'grid'.*confidence"):
        build_sampler_options("confidence", {"grid": "cosine"})
    with pytest.raises(ValueError, match="must be one of"):
        build_sampler_options("confidence", {"confidence": "loudest"})
    with pytest.raises(ValueError, match="must be float"):
        build_sampler_options("ancestral", {"temperature": "hot"})
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler_options("heun", {})
    with pytest.raises(ValueError, match="temperature"):
        build_sampler("ancestral", Absorbing(4), Linear(), temperature=-1.0)
    with pytest.raises(ValueError, match="top_p"):
        build_sampler("tweedie", Absorbing(4), Linear(), top_p=1.5)
    with pytest.raises(ValueError, match="absorbing"):
        build_sampler("confidence", __import__("seqdiff").diffusion.Uniform(4), Linear())
    for name, cls in SAMPLERS.items():
        for key, opt in cls.options().items():
            assert opt.help, (name, key)


def test_polish_with_sites_chosen_independently_of_the_tokens_keeps_p0_exactly():
    """Random order, one token per step, then single-site re-draws at sites picked by the recorded
    (random) confidence — independent of the tokens — are Gibbs updates of the exact denoiser's
    conditionals: the output law is still p0."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=9)
    sampler = ConfidenceSampler(proc, sch, steps=L + 2, confidence="random", k_schedule="linear", polish=0.4)
    stats = {}
    x = sampler.sample(orc, N_SAMPLES, L, generator=torch.Generator().manual_seed(2), stats=stats)
    assert not (x == proc.mask_id).any() and stats["steps"] == L + 2
    assert total_variation(clean_law(x, orc), orc.p0) < tv_threshold(orc.p0, N_SAMPLES)


def test_polish_redraws_the_least_confident_token_once_and_never_a_fixed_one():
    proc, sch = Absorbing(6), Linear()
    length = 4
    lp = torch.log_softmax(torch.randn(length, proc.vocab_size, generator=torch.Generator().manual_seed(3)), -1)
    lp[:, proc.mask_id] = -1e6
    lp = torch.log_softmax(lp, -1)

    Fixed = fixed_denoiser(lp)

    fixed = torch.tensor([[True, False, False, False]])
    s = ConfidenceSampler(proc, sch, steps=6, confidence="max", k_schedule="linear", polish=0.5)
    assert s.polish_steps == 3 and s.to_dict()["polish"] == 0.5
    x = torch.tensor([[2, proc.mask_id, proc.mask_id, proc.mask_id]])
    state = s.begin(x, fixed)
    maxp = lp.exp().max(-1).values
    order_low = [int(j) for j in torch.argsort(maxp[1:]) + 1]  # least confident first (the drawn-token-free 'max')
    remasked = []
    for i in range(6):
        before = x.clone()
        x = s.step(Fixed()(x, None), "x0", x, None, None, fixed, torch.Generator().manual_seed(i), i, 6, state)
        assert x[0, 0] == 2
        if i >= 2 and i < 5:  # decoded by step 3 (index 2); then a re-mask after each step but the last
            m = (x[0] == proc.mask_id).nonzero()[:, 0].tolist()
            assert len(m) == 1
            remasked.append(m[0])
        del before
    assert remasked == order_low
    assert not (x == proc.mask_id).any() and int(state["redrawn"][0]) == 3
    with pytest.raises(ValueError, match="polish"):
        ConfidenceSampler(proc, sch, steps=4, polish=1.0)


def test_confidence_options_round_trip_and_keep_the_noise_level_method():
    """The ``noise`` option (Gumbel noise on the order) must not hide the sampler's noise-level
    method, which score-parameterised denoisers need; to_dict gives the options as given."""
    proc, sch = Absorbing(4), Linear()
    s = ConfidenceSampler(proc, sch, steps=8, noise=0.3, polish=0.25, block=4)
    level = s.noise(torch.tensor([0.5], dtype=F64))
    assert isinstance(level, NoiseLevel)
    d = s.to_dict()
    assert (d["noise"], d["polish"], d["block"], d["steps"]) == (0.3, 0.25, 4, 8)
    again = build_sampler(d.pop("name"), proc, sch, **d)
    assert again.to_dict() == s.to_dict() and again.polish_steps == 2


@pytest.mark.parametrize("polish_temperature", [0.0, None])
def test_polish_temperature_zero_redraws_the_most_probable_token_given_the_others(polish_temperature):
    """Left order (recorded confidences tie, so the re-drawn site is the first position), one polish
    step: at polish temperature 0 the first token of every output is the argmax of the exact
    conditional p0(x_1 | x_2, x_3) — an iterated-conditional-modes move; drawn at temperature 1 (the
    default) it is not, in some outputs."""
    proc, sch = Absorbing(4), Linear()
    orc = make_oracle(proc, sch, seed=11)
    s = ConfidenceSampler(proc, sch, steps=L + 1, confidence="left", k_schedule="linear", polish=0.25,
                          polish_temperature=polish_temperature)
    assert s.polish_steps == 1
    x = s.sample(orc, 2_000, L, generator=torch.Generator().manual_seed(4))
    p = {tuple(c.tolist()): float(v) for c, v in zip(orc.configs, orc.p0)}
    n_data = proc.vocab_size - 1
    best = [max(range(n_data), key=lambda y: p[(y, *row[1:].tolist())]) for row in x]
    agree = (x[:, 0] == torch.tensor(best)).double().mean()
    if polish_temperature == 0.0:
        assert agree == 1.0
    else:
        assert agree < 0.95
    with pytest.raises(ValueError, match="polish_temperature"):
        ConfidenceSampler(proc, sch, steps=4, polish=0.25, polish_temperature=-1.0)


def test_repair_redraws_flagged_tokens_first_within_the_budget_and_never_a_fixed_one():
    """A check that flags every token 0: in the polish phase the sampler re-masks flagged tokens
    (all of them, as budget and steps allow), re-draws them one per step with the flagged token
    excluded, never touches a fixed position, leaves nothing masked and spends at most its polish
    budget. The denoiser draws 0 with probability 1/2 everywhere: without repair half the free tokens
    are 0; with it (5 free positions, 10 re-draws) none is."""
    proc, sch = Absorbing(3), Linear()
    length, num, steps = 6, 4_000, 20
    lp = torch.full((length, proc.vocab_size), -1e6)
    lp[:, :2] = math.log(0.5)
    Fixed = fixed_denoiser(torch.log_softmax(lp, -1))
    x0 = torch.full((num, length), proc.mask_id)
    x0[:, 0] = 0  # a fixed 0: flagged, never re-drawn
    fixed = torch.zeros(num, length, dtype=torch.bool)
    fixed[:, 0] = True

    def run(**kw):
        s = ConfidenceSampler(proc, sch, steps=steps, confidence="random", k_schedule="linear", **kw)
        if kw.get("repair"):
            s.suspects = lambda x: x == 0
        stats, state = {}, {}
        begin = s.begin
        s.begin = lambda x, f: state.update(begin(x, f)) or state
        out = s.sample(Fixed(), x_fixed=x0, fixed=fixed, generator=torch.Generator().manual_seed(1), stats=stats)
        return s, out, state

    s, plain, _ = run(polish=0.5)
    s, fixed_up, state = run(polish=0.5, repair=True)
    assert s.polish_steps == 10
    for out in (plain, fixed_up):
        assert not (out == proc.mask_id).any() and (out[:, 0] == 0).all()
    assert int(state["redrawn"].max()) <= s.polish_steps and state["repaired"] > 0
    assert not state["done"][:, 0].any()
    zeros = lambda out: (out[:, 1:] == 0).double().mean()  # noqa: E731
    assert 0.45 < zeros(plain) < 0.55 and zeros(fixed_up) == 0.0
    with pytest.raises(ValueError, match="polish"):
        ConfidenceSampler(proc, sch, steps=8, repair=True)
    with pytest.raises(ValueError, match="syntax check"):
        ConfidenceSampler(proc, sch, steps=8, polish=0.25, repair=True).sample(Fixed(), 2, length)


def test_one_per_group_keeps_the_least_confident_allowed_token_of_each_group():
    """A check may report a fault as a group of tokens, one of which must change: only the least
    confident allowed token of each group is re-drawn (ties to the leftmost); a boolean check keeps
    every flagged allowed token (each its own fault)."""
    from seqdiff.diffusion.samplers import _one_per_group

    flags = torch.tensor([[0, 0, -1, 1, 1, 0], [2, -1, 2, 0, -1, -1], [-1] * 6])
    conf = torch.tensor([[0.5, 0.2, 0.1, 0.9, 0.9, 0.3], [0.4, 0.0, 0.4, 0.7, 0.1, 0.2], [0.1] * 6],
                        dtype=torch.float64)
    allowed = torch.ones(3, 6, dtype=torch.bool)
    allowed[0, 1] = False  # fixed: the group's next least confident (position 5) is taken
    got = _one_per_group(flags, conf, allowed)
    want = torch.zeros(3, 6, dtype=torch.bool)
    want[0, 5] = want[0, 3] = True       # group 0 → pos 5 (0.3 < 0.5); group 1 tie 0.9/0.9 → leftmost
    want[1, 0] = want[1, 3] = True       # group 2 tie 0.4/0.4 → leftmost; group 0 alone
    assert torch.equal(got, want)
    assert torch.equal(_one_per_group(flags >= 0, conf, allowed), (flags >= 0) & allowed)


def test_repair_with_a_grouped_fault_changes_one_token_at_a_time():
    """A fault reported as a group ("at most one 0": every 0 in one group, flagged when there are two
    or more) is mended one token per round. The denoiser prefers 0 (0.6 / 0.4) and the polish re-draws
    take the argmax (polish temperature 0), so every polish re-draw makes a 0 and repair must undo all
    but one: every row ends with exactly one 0. The same check read as "every 0 is its own fault"
    (boolean) re-draws them all and leaves rows with none."""
    proc, sch = Absorbing(3), Linear()
    length, num, steps = 6, 1_000, 30
    lp = torch.full((length, proc.vocab_size), -1e6)
    lp[:, 0], lp[:, 1] = math.log(0.6), math.log(0.4)
    Fixed = fixed_denoiser(torch.log_softmax(lp, -1))

    def at_most_one_zero(x):
        zero = x == 0
        return torch.where(zero & (zero.sum(-1, keepdim=True) >= 2), 0, -1)

    zeros = {}
    for kind, check in (("group", at_most_one_zero), ("bool", lambda x: at_most_one_zero(x) >= 0)):
        s = ConfidenceSampler(proc, sch, steps=steps, confidence="random", k_schedule="linear", polish=0.5,
                              polish_temperature=0.0, repair=True)
        s.suspects = check
        out = s.sample(Fixed(), num, length, generator=torch.Generator().manual_seed(2))
        assert not (out == proc.mask_id).any()
        zeros[kind] = (out == 0).sum(-1)
    assert (zeros["group"] == 1).all()
    assert (zeros["bool"] == 0).double().mean() > 0.3 and int(zeros["bool"].max()) <= 1
