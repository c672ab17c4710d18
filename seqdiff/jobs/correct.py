r"""Sequence correction ("spell checking") with discrete diffusion models, for every domain.

Multinomial diffusion (Hoogeboom et al. 2021, "Spell checking") observes that the forward process of a
uniform-noise model *is* a substitution channel: a token keeps its value with probability ``α_t`` and is
otherwise redrawn uniformly from the ``N`` states, ``q_t(y | a) = α_t δ_{ya} + (1 - α_t)/N``. A typo'd
input is therefore a draw ``x_t`` at some time ``t``, and correcting it is denoising: read off or sample
``p(x_0 | x_t = input)``. Masked (absorbing) models have no such channel; for them this module offers a
"mark the doubtful positions, then infill them" mode.

Noise level ↔ error rate (uniform process)
------------------------------------------
A token differs from its clean value with probability ``(1 - α_t)(N - 1)/N`` (it is redrawn w.p.
``1 - α_t`` and the redraw lands on another state w.p. ``(N-1)/N``). A substitution rate ``r`` thus maps
*exactly* to ``α_t = 1 - r N/(N-1)``, which needs ``r < (N-1)/N``; conditioned on a change the new token
is uniform over the other ``N - 1`` states, i.e. the uniform process is precisely the "replace by a
uniformly drawn different letter" channel. :func:`time_for_error_rate` inverts the schedule:

* continuous schedules (SEDD's geometric, log-linear, ...): bisection on ``t`` for ``1 - α(t)``, which is
  increasing; 100 halvings reach float64 resolution, so the implied rate equals ``r`` to ~1e-15;
* :class:`~seqdiff.diffusion.DiscreteSchedule` (multinomial diffusion): ``ᾱ_k`` exists only at integer
  steps, so the map is exact on the natural continuous-time embedding of the chain, which keeps the
  per-step keep probability constant within a step: ``log ᾱ(k + f) = log ᾱ_k + f log(1 - β_{k+1})``
  (``f ∈ [0, 1)``; a constant-rate CTMC during each step). The returned ``t = (k + f)/T`` is exact. A
  multinomial denoiser (and the exact oracle) is defined only at integer steps, so before denoising
  :func:`snap_time` moves ``t`` to the step ``k ≥ 1`` whose ``ᾱ_k`` is closest to ``α`` — the step whose
  channel is closest to the assumed one (with ``T = 1000`` cosine steps ``ᾱ`` changes by at most ~0.16 %
  per step, so the mismatch in the assumed rate is negligible). Correction reports the snapped time it
  used and the rate it assumed.

Estimating the noise level (uniform process): pseudo-likelihood and EM
---------------------------------------------------------------------
Without a given rate, ``t`` can be chosen per sequence (``estimator="pll"``) by maximising the
pseudo-log-likelihood
``PLL_t(x) = Σ_i log p_t(x_i | x_{-i})`` over a grid of times. An ``x0``-denoiser gives each term
exactly. Given the clean token ``x0_i = a``, ``x_i`` is independent of the rest, so

    p_t(x_i | x_{-i}) = Σ_a p(x0_i = a | x_{-i}) q_t(x_i | a)                                   (1)

and Bayes' rule gives ``p(x0_i = a | x) = p(x0_i = a | x_{-i}) q_t(x_i | a) / p_t(x_i | x_{-i})``. Solving
for ``p(x0_i = a | x_{-i})`` and summing over ``a`` (the left side sums to one):

    p_t(x_i | x_{-i}) = 1 / Σ_a [ p(x0_i = a | x, t) / q_t(x_i | a) ].                          (2)

(Equivalently ``1 / Σ_y s_i(y)`` with the concrete scores ``s_i(y) = p_t(x^{i←y})/p_t(x)``.) Why the
maximiser tracks the truth: for ``x ~ p_{t*}``, ``E[PLL_t(x)] = Σ_i E_{x_{-i}} E_{x_i | x_{-i}}
log p_t(x_i | x_{-i})`` and, by Gibbs' inequality for each ``i``, every term is largest when the model
conditional is the true one, at ``t = t*``: the expected PLL is maximised at the true level (a composite
likelihood; consistent as the sequence grows). :func:`estimate_time` evaluates a log-spaced grid of rates
(mapped to times as above, snapped for discrete schedules) and refines around the best point.

Eq. (2) divides the denoiser's probabilities of the *other* values by ``q_t(x_i | a) = (1 - α_t)/N``, which
is tiny at low noise (``4·10⁻⁵`` for 0.1 % on 27 letters): the estimate is exact for an exact denoiser
(tested against enumeration) but amplifies a learned denoiser's relative errors on small probabilities by
``N/(1 - α_t)``. :func:`estimate_time_em` (``estimator="em"``, the default) is the well-conditioned
alternative: EM on the rate for the marginal likelihood ``p_{t(r)}(x)`` itself, whose update
``r ← (1/L) Σ_i P(x0_i ≠ x_i | x, t(r))`` uses only the denoiser's own probability that each token was
substituted. On the benchmark's text model (held-out text corrupted at 1 / 5 / 10 %) EM estimates
1.5 / 6.2 / 10.9 % and the PLL grid 4.5 / 8.5 / 13.5 %; the corrections that follow are nearly the same.

Methods (uniform process)
-------------------------
* ``oneshot``: per position ``argmax_a p(x0_i = a | x_t = x)`` — the exact per-position posterior mode for
  an exact denoiser (one network pass).
* ``multistep``: run the reverse process from ``x_t = x`` at time ``t`` to 0 with the core samplers'
  posterior steps (Tweedie τ-leaping for continuous schedules, the multinomial ancestral step for discrete
  ones; ``steps`` evaluations), ``num_candidates`` draws per sequence. With an exact denoiser and small
  steps the draws follow the joint posterior ``p(x0 | x_t)``. Candidates are ranked by an estimate of
  ``-log p(c | x) + const = NLL(c) - Σ_i log q_t(x_i | c_i)`` (ELBO bound plus the exact channel term,
  ``rank="posterior"``; the ELBO alone with ``rank="elbo"``); with no likelihood function the product of
  the per-position posteriors ranks them. By default (``include_mode``) the one-shot output competes
  with the draws: for the *character* error rate the per-position posterior mode is the Bayes decision,
  whereas a posterior draw errs about twice as often where the posterior is split, so draws alone raise
  the error rate of lightly corrupted input; the draws are what to use for diverse, jointly consistent
  candidates (and the ranking approximates the sequence-level MAP among them).

Masked models: ``mask``
-----------------------
Per position the masked marginal ``m_i = p(x_i = observed | x_{-i})`` (mask that one position; all of
them batched, or ``passes = k`` interleaved passes masking every k-th position for long inputs). The
rate, when not given, is the maximum-likelihood mixing weight of the substitution channel on the
observed tokens, ``argmax_r Σ_i log[(1 - r) m_i + r (1 - m_i)/(n - 1)]`` (EM). The ``ceil(r L)`` lowest
positions (or those below ``threshold``) are masked and infilled with the others fixed: ``infill=
"greedy"`` reveals the most confident position first, taking ``argmax_a p(a | context) q(x_i | a)`` — the
per-position posterior mode under the same channel, so a false alarm keeps its observed token;
``infill="ancestral"`` uses the masked ancestral sampler. Confidences are the infilled tokens'
probabilities (and ``m_i`` elsewhere); ``t`` reports the masked fraction.

Reads of one molecule, base qualities, the AR baseline: ``consensus_correct``
------------------------------------------------------------------------------
Per position the decision is the posterior mode of ``p(x0_i = a | c_{-i}) · Π_j q_ij(y_ij | a)``: the
channel likelihood of everything observed at ``i`` (several reads, :func:`read_counts`, or reads with
per-base error probabilities from their qualities, :func:`reads_evidence`) times the model's
leave-one-out prior given the current consensus ``c`` (:func:`leave_one_out_log_prior`: eq. (1) at the
consensus' own noise level for uniform models, the masked marginal for masked models, and for the AR
baseline ``p(x^{i←a})`` from ``L·N`` sequence evaluations — exact, and slow). Rounds replace ``c`` by
the decision. The rate, when not given, is estimated by EM: from the reads' disagreements, or for a
single read from the prior (the maximum-likelihood mixing weight of the channel).

``keep`` positions are never changed by any method; a denoiser that conditions on fixed positions
(``accepts_fixed``, e.g. the exact oracle) receives them as known clean tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor

from ..diffusion.posterior import (callable_letters, error_rate_at, error_to_phred, estimate_read_rate, log_q_obs,
                                   masked_log_x0, noise_at, phred_to_error, posterior_log_x0,
                                   pseudo_log_likelihood_terms, read_counts, reads_evidence, reads_log_likelihood,
                                   snap_time, time_for_error_rate)
from ..diffusion.processes import NEG, Absorbing, Process, Uniform, sample_categorical
from ..diffusion.samplers import MaskedAncestralSampler, MultinomialSampler, Sampler, TweedieSampler
from ..diffusion.schedules import DiscreteSchedule
from ..tokenizers.base import TokenizerError

__all__ = [
    "METHODS", "Correction", "CorrectionBatch", "TimeEstimate",
    "error_rate_at", "time_for_error_rate", "snap_time", "noise_at",
    "posterior_log_x0", "pseudo_log_likelihood_terms", "pseudo_log_likelihood", "estimate_time",
    "estimate_time_em",
    "oneshot_decode", "reverse_from", "multistep_correct",
    "masked_marginals", "estimate_mask_rate", "mask_correct",
    "read_counts", "reads_log_likelihood", "reads_evidence", "phred_to_error", "error_to_phred",
    "estimate_read_rate", "leave_one_out_log_prior", "consensus_correct", "group_reads",
    "correct_tokens", "correct", "parse_keep", "compact_confidences",
]

METHODS = ("auto", "oneshot", "multistep", "mask", "ar")
Progress = Callable[[int, int], None]
#: ``nll_fn(candidates [B, K, L]) -> nats [B, K]``: a likelihood bound used to rank candidates
NLLFn = Callable[[Tensor], Tensor]


# ============================================================================ noise level ↔ rate
def _valid(x: Tensor, valid: Tensor | None, n: int) -> Tensor:
    return (x < n) if valid is None else valid.to(device=x.device, dtype=torch.bool)


@torch.no_grad()
def pseudo_log_likelihood(denoiser, process: Uniform, schedule, x: Tensor, t: Tensor, *,
                          valid: Tensor | None = None, fixed: Tensor | None = None,
                          batch_size: int | None = None) -> Tensor:
    """``Σ_i log p_t(x_i | x_{-i})`` per sequence ``[B]`` over valid, non-fixed positions (eq. 2)."""
    _need_uniform(process)
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x.shape[0])
    lp = posterior_log_x0(denoiser, process, schedule, x, t, fixed=fixed, batch_size=batch_size)
    terms = pseudo_log_likelihood_terms(lp, x.clamp(max=process.vocab_size - 1), noise_at(schedule, t.cpu()),
                                        process.vocab_size).to(x.device)
    use = _valid(x, valid, process.vocab_size)
    if fixed is not None:
        use = use & ~fixed.bool()
    return torch.where(use, terms, torch.zeros_like(terms)).sum(-1)


@dataclass
class TimeEstimate:
    """Result of :func:`estimate_time`: per-sequence time, implied rate, PLL and the posterior there."""

    t: Tensor  # [B] float64
    error_rate: Tensor  # [B]
    pll: Tensor  # [B]
    log_p0: Tensor  # [B, L, N] at t


def _rate_grid(num_states: int, rate_range: tuple[float, float], size: int) -> Tensor:
    rmax = (num_states - 1) / num_states
    lo = max(float(rate_range[0]), 1e-6)
    hi = min(float(rate_range[1]), 0.98 * rmax)
    if not lo < hi:
        raise ValueError(f"bad rate range {rate_range} for {num_states} states")
    return torch.logspace(math.log10(lo), math.log10(hi), max(size, 2), dtype=torch.float64)


@torch.no_grad()
def estimate_time(denoiser, process: Uniform, schedule, x: Tensor, *, valid: Tensor | None = None,
                  fixed: Tensor | None = None, rates: Tensor | Sequence[float] | None = None,
                  rate_range: tuple[float, float] = (1e-3, 0.4), grid: int = 16, refine: int = 6,
                  batch_size: int | None = None) -> TimeEstimate:
    """Per-sequence noise level maximising the pseudo-log-likelihood (module docstring).

    The grid is ``rates`` if given, else ``grid`` log-spaced rates in ``rate_range`` (clipped below
    ``(N-1)/N``), each mapped exactly to a time (snapped to a step for discrete schedules). ``refine``
    further points per sequence are then tried between the neighbours of its best grid point.
    """
    _need_uniform(process)
    n = process.vocab_size
    B = x.shape[0]
    r = torch.as_tensor(rates, dtype=torch.float64) if rates is not None else _rate_grid(n, rate_range, grid)
    times = torch.unique(snap_time(schedule, time_for_error_rate(schedule, r, n)))  # sorted ascending
    best_pll = torch.full((B,), -math.inf, dtype=torch.float64)
    best_t = torch.zeros(B, dtype=torch.float64)
    best_lp: Tensor | None = None
    best_j = torch.zeros(B, dtype=torch.long)
    xc = x.clamp(max=n - 1)
    use = _valid(x, valid, n)
    if fixed is not None:
        use = use & ~fixed.bool()
    use_c = use.cpu()

    def evaluate(tt: Tensor) -> tuple[Tensor, Tensor]:
        lp = posterior_log_x0(denoiser, process, schedule, x, tt, fixed=fixed, batch_size=batch_size).cpu()
        terms = pseudo_log_likelihood_terms(lp, xc.cpu(), noise_at(schedule, tt), n)
        return torch.where(use_c, terms, torch.zeros_like(terms)).sum(-1), lp

    def update(tt: Tensor, pll: Tensor, lp: Tensor, j: int | None = None) -> None:
        nonlocal best_lp
        better = pll > best_pll
        best_pll.copy_(torch.where(better, pll, best_pll))
        best_t.copy_(torch.where(better, tt, best_t))
        if j is not None:
            best_j.copy_(torch.where(better, torch.full_like(best_j, j), best_j))
        best_lp = lp if best_lp is None else torch.where(better[:, None, None], lp, best_lp)

    for j, tj in enumerate(times):
        tt = tj.expand(B).clone()
        pll, lp = evaluate(tt)
        update(tt, pll, lp, j)
    if refine > 0 and len(times) > 1:
        lo_t = times[(best_j - 1).clamp(min=0)]
        hi_t = times[(best_j + 1).clamp(max=len(times) - 1)]
        r_lo = error_rate_at(schedule, lo_t, n).clamp_min(1e-9)
        r_hi = error_rate_at(schedule, hi_t, n)
        for q in range(1, refine + 1):
            frac = q / (refine + 1)
            rq = torch.exp(torch.log(r_lo) + frac * (torch.log(r_hi) - torch.log(r_lo)))
            rq = torch.where(lo_t == hi_t, r_hi, rq)
            tt = snap_time(schedule, time_for_error_rate(schedule, rq, n))
            pll, lp = evaluate(tt)
            update(tt, pll, lp)
    return TimeEstimate(t=best_t, error_rate=error_rate_at(schedule, best_t, n), pll=best_pll,
                        log_p0=best_lp.to(x.device))


@torch.no_grad()
def estimate_time_em(denoiser, process: Uniform, schedule, x: Tensor, *, valid: Tensor | None = None,
                     fixed: Tensor | None = None, init: float = 0.05, iters: int = 30, tol: float = 1e-3,
                     rate_range: tuple[float, float] = (1e-4, 0.6), batch_size: int | None = None) -> TimeEstimate:
    """Per-sequence maximum-likelihood noise level by EM: ``r ← (1/L) Σ_i P(x0_i ≠ x_i | x, t(r))``.

    Why this is EM for ``log p_{t(r)}(x)``: the clean sequence is the latent variable, the denoiser at
    ``t(r)`` gives its posterior ``p(x0 | x) ∝ p0(x0) q_t(x | x0)`` (E-step; by linearity only the
    per-position marginals are needed for the expected number of substituted positions), and for the
    complete data the channel's likelihood ``Π_i q_t(x_i | x0_i)`` is maximised at ``r = #{i: x_i ≠ x0_i}
    / L`` (M-step; the uniform channel keeps a token w.p. ``1 - r`` and moves it to each other state w.p.
    ``r/(N-1)``). Each iteration therefore does not decrease the marginal likelihood of the input (for
    an exact denoiser; a snapped discrete step may stop it one step short). Rows stop when the rate
    moves by less than ``tol`` (relative) or their step no longer changes. ``pll`` is not computed here
    (NaN).
    """
    _need_uniform(process)
    n = process.vocab_size
    B = x.shape[0]
    rmax = 0.98 * (n - 1) / n
    lo, hi = max(float(rate_range[0]), 1e-9), min(float(rate_range[1]), rmax)
    use = _valid(x, valid, n)
    if fixed is not None:
        use = use & ~fixed.bool()
    cnt = use.sum(-1).clamp_min(1).double()
    r = torch.full((B,), float(init), dtype=torch.float64).clamp(lo, hi)
    t = snap_time(schedule, time_for_error_rate(schedule, r, n))
    lp_all = torch.zeros(B, x.shape[1], n, dtype=torch.float64, device=x.device)
    t_eval = torch.full((B,), math.nan, dtype=torch.float64)  # time each row's posterior was taken at
    active = torch.arange(B)
    for _ in range(max(int(iters), 1)):
        idx = active.to(x.device)
        lp = posterior_log_x0(denoiser, process, schedule, x[idx], t[active],
                              fixed=fixed[idx] if fixed is not None else None, batch_size=batch_size)
        lp_all[idx] = lp
        t_eval[active] = t[active]
        p_same = lp.gather(-1, x[idx].clamp(max=n - 1)[..., None])[..., 0].exp()
        e = torch.where(use[idx], 1.0 - p_same, torch.zeros_like(p_same)).sum(-1).cpu() / cnt[active].cpu()
        r_new = e.clamp(lo, hi)
        t_new = snap_time(schedule, time_for_error_rate(schedule, r_new, n))
        done = ((r_new - r[active]).abs() <= tol * r[active]) | (t_new == t[active])
        r[active], t[active] = r_new, t_new
        active = active[~done]
        if len(active) == 0:
            break
    stale = (t_eval != t).nonzero()[:, 0]  # posterior taken at a (slightly) different time: redo it
    if len(stale):
        idx = stale.to(x.device)
        lp_all[idx] = posterior_log_x0(denoiser, process, schedule, x[idx], t[stale],
                                       fixed=fixed[idx] if fixed is not None else None, batch_size=batch_size)
    return TimeEstimate(t=t, error_rate=error_rate_at(schedule, t, n),
                        pll=torch.full((B,), math.nan, dtype=torch.float64), log_p0=lp_all)


# ======================================================================================= decoders
def oneshot_decode(log_p0: Tensor, x: Tensor, *, keep: Tensor | None = None,
                   valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-position posterior mode ``argmax_a p(x0_i = a | x)``; ``keep``/invalid positions stay.

    Returns ``(corrected [B, L], confidence [B, L])`` — the posterior probability of the output token.
    """
    n = log_p0.shape[-1]
    hold = ~_valid(x, valid, n)
    if keep is not None:
        hold = hold | keep.to(device=x.device, dtype=torch.bool)
    best = log_p0.argmax(-1).to(x.device)
    out = torch.where(hold, x, best)
    conf = log_p0.gather(-1, out.clamp(max=n - 1)[..., None].to(log_p0.device))[..., 0].exp().to(x.device)
    return out, torch.where(hold & (x >= n), torch.ones_like(conf), conf)


def _time_rows(schedule, t: Tensor, steps: int) -> Tensor:
    """Per-row decreasing grids ``[B, steps + 1]`` from ``t_b`` to 0 (integer steps for discrete)."""
    k = torch.arange(steps + 1, dtype=torch.float64)
    frac = 1.0 - k / steps
    if isinstance(schedule, DiscreteSchedule):
        T = schedule.num_steps
        k0 = torch.round(t.double() * T)
        return torch.round(k0[:, None] * frac[None, :]) / T
    g = t.double()[:, None] * frac[None, :]
    g[:, -1] = 0.0
    return g


@torch.no_grad()
def reverse_from(denoiser, process: Uniform, schedule, x: Tensor, t: Tensor, *, steps: int = 16,
                 fixed: Tensor | None = None, generator: torch.Generator | None = None,
                 batch_size: int | None = None, final: str = "sample") -> Tensor:
    """Run the reverse process from ``x_t = x`` at per-row times ``t: [B]`` down to ``t = 0``.

    Uses the core samplers' step code: :class:`~seqdiff.diffusion.TweedieSampler` (continuous schedules)
    or :class:`~seqdiff.diffusion.MultinomialSampler` (discrete) ``step_probs`` on an even grid of
    ``steps`` steps (integer steps, at most ``k`` of them, for discrete schedules). ``fixed`` positions
    (keep, padding) are clamped and passed to denoisers that accept them. ``final="argmax"`` takes the
    mode instead of a draw in the last step (to ``t = 0``, where ``p(x_0 | x_s)`` is the posterior).
    """
    _need_uniform(process)
    if final not in ("sample", "argmax", "greedy"):
        raise ValueError(f"final must be 'sample', 'argmax' or 'greedy', got {final!r}")
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    stepper = MultinomialSampler(process, schedule) if isinstance(schedule, DiscreteSchedule) \
        else TweedieSampler(process, schedule, steps=steps)
    param = getattr(denoiser, "parameterization", "x0")
    x = x.clone()
    B = x.shape[0]
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(B).cpu()
    grid = _time_rows(schedule, t, steps)
    fixed = fixed.to(device=x.device, dtype=torch.bool) if fixed is not None else None
    chunk = batch_size or max(B, 1)
    for i in range(steps):
        tt, ss = grid[:, i], grid[:, i + 1]
        active = (tt > ss).nonzero()[:, 0]
        for s in range(0, len(active), chunk):
            idx = active[s:s + chunk].to(x.device)
            xi = x[idx]
            fi = fixed[idx] if fixed is not None else None
            ti, si = tt[idx.cpu()].to(x.device), ss[idx.cpu()].to(x.device)
            out = Sampler.call_denoiser(denoiser, xi, ti.float(), fi)
            probs = stepper.step_probs(out, param, xi.clamp(max=process.vocab_size - 1), ti, si)
            if final == "greedy":  # the mode of every step
                new = probs.argmax(-1).to(x.device)
            else:
                new = sample_categorical(probs, generator).to(x.device)
            if final == "argmax":  # the step to t = 0 takes the mode
                new = torch.where((si == 0)[:, None], probs.argmax(-1).to(x.device), new)
            if fi is not None:
                new = torch.where(fi, xi, new)
            x[idx] = new
    return x


@torch.no_grad()
def multistep_correct(denoiser, process: Uniform, schedule, x: Tensor, t: Tensor, *, steps: int = 16,
                      num_candidates: int = 4, keep: Tensor | None = None, valid: Tensor | None = None,
                      generator: torch.Generator | None = None, nll_fn: NLLFn | None = None,
                      rank: str = "posterior", log_p0: Tensor | None = None, final: str = "sample",
                      include_mode: bool = False,
                      batch_size: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``num_candidates`` reverse-process draws from ``x_t = x`` per sequence; the best-ranked is returned.

    Ranking (lower is better): ``nll_fn(c) - Σ_i log q_t(x_i | c_i)`` (``rank="posterior"``) or
    ``nll_fn(c)`` (``rank="elbo"``); without ``nll_fn``, ``-Σ_i log p(x0_i = c_i | x)``.
    ``include_mode`` adds the one-shot output (the per-position posterior mode) as candidate 0, so the
    ranking chooses between it and the draws. ``final``: see :func:`reverse_from`.
    Returns ``(corrected [B, L], confidence [B, L], candidates [B, K(+1), L], scores [B, K(+1)])``; the
    confidence is ``p(x0_i = corrected_i | x)`` from the denoiser at ``t``.
    """
    _need_uniform(process)
    if rank not in ("posterior", "elbo"):
        raise ValueError(f"rank must be 'posterior' or 'elbo', got {rank!r}")
    n = process.vocab_size
    B, L = x.shape
    K = max(int(num_candidates), 1)
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(B).cpu()
    hold = ~_valid(x, valid, n)
    if keep is not None:
        hold = hold | keep.to(device=x.device, dtype=torch.bool)
    if log_p0 is None:
        log_p0 = posterior_log_x0(denoiser, process, schedule, x, t, fixed=hold, batch_size=batch_size)
    xk = x.repeat_interleave(K, 0)
    cands = reverse_from(denoiser, process, schedule, xk, t.repeat_interleave(K), steps=steps,
                         fixed=hold.repeat_interleave(K, 0), generator=generator, batch_size=batch_size,
                         final=final)
    cands = cands.view(B, K, L)
    lp = log_p0.to(x.device)
    if include_mode:
        mode, _ = oneshot_decode(lp, x, keep=hold)
        cands = torch.cat([mode[:, None], cands], 1)
        K += 1
    use = ~hold
    if nll_fn is not None:
        scores = nll_fn(cands).double().to(x.device).view(B, K)
        if rank == "posterior":
            lq = log_q_obs(x.clamp(max=n - 1), noise_at(schedule, t), n).to(x.device)  # [B, L, N]
            ch = lq[:, None].expand(B, K, L, n).gather(-1, cands.clamp(max=n - 1)[..., None])[..., 0]
            scores = scores - torch.where(use[:, None], ch, torch.zeros_like(ch)).sum(-1)
    else:
        post = lp[:, None].expand(B, K, L, n).gather(-1, cands.clamp(max=n - 1)[..., None])[..., 0]
        scores = -torch.where(use[:, None], post, torch.zeros_like(post)).sum(-1)
    best = scores.argmin(-1)
    out = cands[torch.arange(B, device=x.device), best]
    out = torch.where(hold, x, out)
    conf = lp.gather(-1, out.clamp(max=n - 1)[..., None])[..., 0].exp()
    conf = torch.where(hold & (x >= n), torch.ones_like(conf), conf)
    return out, conf, cands, scores


# ===================================================================================== mask mode
@torch.no_grad()
def masked_marginals(denoiser, process: Absorbing, x: Tensor, *, valid: Tensor | None = None,
                     positions: Tensor | None = None, passes: int | None = None, schedule=None,
                     batch_size: int = 64) -> Tensor:
    """``log p(x_i = · | x_{-i})`` at each requested position, float64 ``[B, L, N]``.

    ``passes=None``: one input per position with that position masked (exact masked marginal). ``passes
    = k``: ``k`` inputs per sequence, the j-th masking every position ``i ≡ j (mod k)`` at once (cheaper
    for long sequences; neighbours ``k`` apart are missing from each other's context). The denoiser sees
    ``t`` = the masked fraction. Unrequested positions are left at 0.
    """
    if not isinstance(process, Absorbing):
        raise ValueError("masked marginals need an absorbing (masked) model")
    B, L = x.shape
    n_states = process.vocab_size
    want = _valid(x, valid, process.mask_id) if positions is None else positions.to(x.device).bool()
    want = want & _valid(x, valid, process.mask_id)
    rows_b, rows_m = [], []  # (sequence, mask set) per input row
    ar = torch.arange(L, device=x.device)
    for b in range(B):
        pos = want[b].nonzero()[:, 0]
        if len(pos) == 0:
            continue
        if passes is None or passes >= len(pos):
            m = torch.zeros(len(pos), L, dtype=torch.bool, device=x.device)
            m[torch.arange(len(pos), device=x.device), pos] = True
        else:
            k = int(passes)
            if k < 1:
                raise ValueError("passes must be ≥ 1")
            m = ((ar[None, :] % k) == torch.arange(k, device=x.device)[:, None]) & want[b][None, :]
            m = m[m.any(-1)]
        rows_b.append(torch.full((m.shape[0],), b, dtype=torch.long, device=x.device))
        rows_m.append(m)
    out = torch.zeros(B, L, n_states, dtype=torch.float64, device=x.device)
    if not rows_b:
        return out
    rb, rm = torch.cat(rows_b), torch.cat(rows_m)
    lengths = _valid(x, valid, process.mask_id).sum(-1).clamp_min(1)
    param = getattr(denoiser, "parameterization", "x0")
    for s in range(0, len(rb), batch_size):
        b, m = rb[s:s + batch_size], rm[s:s + batch_size]
        xr = torch.where(m, torch.full_like(x[b], process.mask_id), x[b])
        tt = (m.sum(-1).double() / lengths[b].double()).clamp(1e-4, 1.0)
        lp = masked_log_x0(process, denoiser(xr, tt.float()), xr, tt, param, schedule)
        r_idx, p_idx = m.nonzero(as_tuple=True)
        out[b[r_idx], p_idx] = lp[r_idx, p_idx]
    return out


def estimate_mask_rate(m: Tensor, use: Tensor, num_data: int, iters: int = 200) -> Tensor:
    """ML substitution rate per sequence from masked marginals ``m = p(x_i = observed | x_{-i})``:
    ``argmax_r Σ_i log[(1 - r) m_i + r (1 - m_i)/(n - 1)]`` by EM (concave in ``r``)."""
    m = m.double().clamp(1e-12, 1.0)
    off = (1.0 - m) / (num_data - 1)
    w = use.double()
    cnt = w.sum(-1).clamp_min(1.0)
    r = torch.full((m.shape[0],), 0.05, dtype=torch.float64, device=m.device)
    rmax = 0.98 * (num_data - 1) / num_data
    for _ in range(iters):
        num = r[:, None] * off
        e = num / (num + (1.0 - r[:, None]) * m)
        r = ((e * w).sum(-1) / cnt).clamp(1e-6, rmax)
    return r


def _channel(x: Tensor, r: Tensor, n_states: int, num_data: int, mask_id: int) -> Tensor:
    """``log q(x_i | a)`` of the substitution channel with rate ``r`` per row: ``[B, L, N]``."""
    r = r.double().to(x.device)[:, None, None]
    same = x[..., None] == torch.arange(n_states, device=x.device)
    out = torch.where(same, torch.log1p(-r), torch.log(r / (num_data - 1)))
    out[..., mask_id] = NEG
    return out


@torch.no_grad()
def mask_correct(denoiser, process: Absorbing, x: Tensor, *, valid: Tensor | None = None,
                 keep: Tensor | None = None, error_rate: Tensor | float | None = None,
                 threshold: float | None = None, steps: int = 16, infill: str = "greedy", schedule=None,
                 generator: torch.Generator | None = None, passes: int | None = None,
                 batch_size: int = 64) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Mark the doubtful positions of each sequence and infill them (module docstring).

    Returns ``(corrected, confidence, flagged [B, L] bool, error_rate [B], estimated [B] bool)``.
    """
    if not isinstance(process, Absorbing):
        raise ValueError("method 'mask' needs an absorbing (masked) model")
    if infill not in ("greedy", "ancestral"):
        raise ValueError(f"infill must be 'greedy' or 'ancestral', got {infill!r}")
    B, L = x.shape
    N, mask_id, nd = process.vocab_size, process.mask_id, process.num_data_tokens
    val = _valid(x, valid, mask_id)
    free = val & ~(keep.to(x.device).bool() if keep is not None else torch.zeros_like(val))
    logP = masked_marginals(denoiser, process, x, valid=val, positions=free, passes=passes,
                            schedule=schedule, batch_size=batch_size)
    m = logP.gather(-1, x.clamp(max=N - 1)[..., None])[..., 0].exp()
    if error_rate is None:
        rate = estimate_mask_rate(m, free, nd)
        estimated = torch.ones(B, dtype=torch.bool)
    else:
        rate = torch.as_tensor(error_rate, dtype=torch.float64).reshape(-1).expand(B).clone()
        if bool(((rate <= 0) | (rate >= (nd - 1) / nd)).any()):
            raise ValueError(f"error rate must be in (0, {(nd - 1) / nd:.4g}), got {float(rate[0])}")
        estimated = torch.zeros(B, dtype=torch.bool)
    rate = rate.to(x.device)
    if threshold is not None:
        flagged = free & (m < float(threshold))
    else:
        n_flag = torch.ceil(rate * val.sum(-1).double() - 1e-9).long().clamp(min=0)
        n_flag = torch.minimum(n_flag, free.sum(-1))
        score = torch.where(free, m, torch.full_like(m, math.inf))
        order = score.argsort(-1)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(L, device=x.device).expand(B, L).contiguous())
        flagged = free & (rank < n_flag[:, None])
    conf = torch.where(val, m, torch.ones_like(m))
    xcur = torch.where(flagged, torch.full_like(x, mask_id), x)
    if infill == "ancestral":
        sampler = MaskedAncestralSampler(process, schedule, steps=steps, grid="cosine")
        out = sampler.sample(denoiser, x_fixed=xcur, fixed=~flagged, generator=generator)
        # confidence: masked marginal of the infilled token given the corrected rest
        lp2 = masked_marginals(denoiser, process, out, valid=val, positions=flagged, passes=None,
                               schedule=schedule, batch_size=batch_size)
        c2 = lp2.gather(-1, out.clamp(max=N - 1)[..., None])[..., 0].exp()
        conf = torch.where(flagged, c2, conf)
        return out, conf, flagged, rate.cpu(), estimated
    # greedy: most confident masked position first, channel-aware argmax
    remaining = flagged.clone()
    lch = _channel(x.clamp(max=N - 1), rate, N, nd, mask_id)
    rounds = max(int(steps), 1)
    param = getattr(denoiser, "parameterization", "x0")
    for rnd in range(rounds):
        rows = remaining.any(-1).nonzero()[:, 0]
        if len(rows) == 0:
            break
        left = rounds - rnd
        for s in range(0, len(rows), batch_size):
            idx = rows[s:s + batch_size]
            xi = xcur[idx]
            tt = ((xi == mask_id).sum(-1).double() / val[idx].sum(-1).clamp_min(1).double()).clamp(1e-4, 1.0)
            lp = masked_log_x0(process, denoiser(xi, tt.float()), xi, tt, param, schedule)
            post = torch.log_softmax(lp + lch[idx], -1)
            c, a = post.max(-1)
            rem = remaining[idx]
            k = torch.ceil(rem.sum(-1).double() / left).long()
            c_sel = torch.where(rem, c, torch.full_like(c, -math.inf))
            order = c_sel.argsort(-1, descending=True)
            rank = torch.empty_like(order)
            rank.scatter_(1, order, torch.arange(L, device=x.device).expand(len(idx), L).contiguous())
            reveal = rem & (rank < k[:, None])
            xcur[idx] = torch.where(reveal, a, xi)
            conf[idx] = torch.where(reveal, c.exp(), conf[idx])
            remaining[idx] = rem & ~reveal
    return xcur, conf, flagged, rate.cpu(), estimated


# ============================================================================ reads of one molecule
@torch.no_grad()
def ar_substitution_log_likelihoods(ar, x: Tensor, *, valid: Tensor | None = None, positions: Tensor | None = None,
                                    batch_size: int = 64) -> Tensor:
    """``log p(x^{i←a}) - log p(x)`` under an autoregressive model for every requested position ``i`` and
    letter ``a`` (float64 ``[B, L, N]``, N = ``ar.config.n_out``; unrequested positions 0): normalised over
    ``a`` this is the AR joint's exact conditional ``p(x_i = a | x_{-i})``. Each substitution is a full
    sequence evaluation (``L·N`` per sequence), so this is the costly way to a leave-one-out prior."""
    n = ar.config.n_out
    B, L = x.shape
    val = _valid(x, valid, n)
    want = val if positions is None else positions.to(x.device).bool() & val
    out = torch.zeros(B, L, n, dtype=torch.float64)
    for b in range(B):
        length = int(val[b].sum())
        pos = want[b, :length].nonzero()[:, 0]
        if length == 0 or len(pos) == 0:
            continue
        base = x[b, :length]
        ref = float(ar.log_likelihood(base[None]).double()[0])
        rows_p = pos.repeat_interleave(n)
        rows_a = torch.arange(n, device=x.device).repeat(len(pos))
        lls = []
        for s0 in range(0, len(rows_p), batch_size):
            rp, ra = rows_p[s0:s0 + batch_size], rows_a[s0:s0 + batch_size]
            var = base.expand(len(rp), length).clone()
            var[torch.arange(len(rp), device=x.device), rp] = ra
            lls.append(ar.log_likelihood(var).double().cpu())
        out[b, pos.cpu()] = (torch.cat(lls) - ref).view(len(pos), n)
    return out


@torch.no_grad()
def leave_one_out_log_prior(denoiser, process: Process, schedule, x: Tensor, t: Tensor | None = None, *,
                            valid: Tensor | None = None, hold: Tensor | None = None, passes: int | None = None,
                            batch_size: int = 64) -> Tensor:
    """``log p(x0_i = a | x_{-i})`` per position (float64 ``[B, L, N]``; unnormalised over ``a``).

    Uniform process: ``x`` is read as ``x_t`` at times ``t: [B]`` and, by eq. (1) of the module docstring,
    ``p(x0_i = a | x_{-i}) ∝ p(x0_i = a | x, t) / q_t(x_i | a)`` — one network pass. Absorbing process
    (``t`` unused): the masked marginal ``p(x_i = a | x_{-i})`` (:func:`masked_marginals`; ``passes``).
    ``hold`` positions (fixed) are passed to the denoiser as known and left at 0 in the output.
    ``process=None``: ``denoiser`` is an autoregressive model (``log_likelihood(x)``) and the prior is
    ``p(x^{i←a})`` (:func:`ar_substitution_log_likelihoods`; ``L·N`` sequence evaluations).
    """
    if process is None:
        val = _valid(x, valid, denoiser.config.n_out)
        free = val if hold is None else val & ~hold.to(x.device).bool()
        return ar_substitution_log_likelihoods(denoiser, x, valid=val, positions=free, batch_size=batch_size)
    if isinstance(process, Absorbing):
        val = _valid(x, valid, process.mask_id)
        free = val if hold is None else val & ~hold.to(x.device).bool()
        return masked_marginals(denoiser, process, x, valid=val, positions=free, passes=passes,
                                schedule=schedule, batch_size=batch_size)
    _need_uniform(process)
    n = process.vocab_size
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x.shape[0]).cpu()
    lp = posterior_log_x0(denoiser, process, schedule, x, t, fixed=hold, batch_size=batch_size)
    return lp - log_q_obs(x.clamp(max=n - 1), noise_at(schedule, t), n).to(lp.device)


@torch.no_grad()
def consensus_correct(denoiser, process: Process, schedule, counts: Tensor | None, *,
                      log_evidence: Tensor | None = None, valid: Tensor | None = None,
                      keep: Tensor | None = None, keep_tokens: Tensor | None = None,
                      error_rate: Tensor | float | None = None, no_call: Sequence[int] = (), iters: int = 2,
                      passes: int | None = None, pad_id: int | None = None,
                      batch_size: int = 64) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""Correct molecules read several times: the reads' channel likelihood times the model's prior.

    ``counts: [B, L, N_data]``: per position, how many aligned reads of molecule ``b`` show each letter
    (:func:`read_counts`). The decision at position ``i`` is the posterior mode of

        p(x0_i = a | reads, c_{-i}) ∝ p(x0_i = a | c_{-i}) · Π_j q(y_ij | a),

    where ``c`` is the current consensus and the prior ``p(x0_i = a | c_{-i})`` is the model's:

    * uniform process: ``c`` is read as ``x_t`` at the time ``t_c`` whose substitution rate is the
      consensus' own expected error rate (mean of ``1 - max`` posterior); by eq. (1) of the module
      docstring the leave-one-out prior is ``p(x0_i = a | c, t_c) / q_{t_c}(c_i | a)``, renormalised —
      exact for an exact denoiser when ``c_{-i}`` is a draw at ``t_c``;
    * absorbing process: the masked marginal ``p(x_i = a | c_{-i})`` (position ``i`` masked).

    The consensus starts as the per-position majority (the reads alone) and is replaced by the decision
    ``iters`` times (each a network pass; the mask mode a pass per position, or ``passes``). A molecule
    read once, with the rate given and ``iters=1``, gets exactly the one-shot posterior mode:
    ``p(a | c, t)/q_t(c_i | a) · q(y_i | a) ∝ p(a | c, t)`` since ``c = y`` and ``t`` maps ``r`` (when the
    alphabet has no no-call letter: DNA's ``N`` is a fifth state of the model's channel, while reads
    substitute among four bases). Positions no read covers get the model's prior alone (an infill).
    Without ``error_rate`` the rate is estimated from the reads' disagreements (:func:`estimate_read_rate`)
    and refined by one EM step per round with the model's posterior; a molecule read once has no
    disagreements, and its rate is EM's maximum-likelihood mixing weight under the model's prior (50
    steps per round). ``keep``: positions fixed to ``keep_tokens``.

    ``log_evidence [B, L, N_data]`` replaces the counts' channel likelihood with per-observation error
    probabilities (:func:`reads_evidence`, from base qualities); ``error_rate`` is then only reported
    (give the mean error probability) and never estimated.

    Returns ``(corrected [B, L], confidence [B, L], vote [B, L], rate [B], t [B])``: ``vote`` is the
    reads-only majority (ties to the lower id), ``t`` the time the denoiser saw last (mask: 0).
    """
    if (counts is None) == (log_evidence is None):
        raise ValueError("give counts or log_evidence")
    B, L, nd = (counts if counts is not None else log_evidence).shape
    autoregressive = process is None  # denoiser: an AR model (log_likelihood)
    absorbing = autoregressive or isinstance(process, Absorbing)  # no time: the context is taken as clean
    if not absorbing:
        _need_uniform(process)
    n_states = denoiser.config.n_out if autoregressive else process.vocab_size
    n_model = n_states if autoregressive or not isinstance(process, Absorbing) else process.num_data_tokens
    if nd != n_model:
        raise ValueError(f"counts have {nd} letters; the model has {n_model} data tokens")
    dev = (counts if counts is not None else log_evidence).device
    letters = callable_letters(nd, no_call, dev)
    M = int(letters.sum())
    if M < 2:
        raise ValueError("correction needs at least two callable letters")
    val = torch.ones(B, L, dtype=torch.bool, device=dev) if valid is None else valid.to(dev).bool()
    hold = ~val if keep is None else (~val | keep.to(dev).bool())
    pad = int(pad_id) if pad_id is not None else n_states + 1
    if log_evidence is not None:
        rate = torch.full((B,), math.nan, dtype=torch.float64) if error_rate is None else \
            torch.as_tensor(error_rate, dtype=torch.float64).reshape(-1).expand(B).clone()
        estimated = False
        loglik = log_evidence.double().to(dev).masked_fill(~letters, NEG)
        counts = torch.zeros_like(loglik)
    elif error_rate is None:
        rate = estimate_read_rate(counts, M, letters=letters)
        estimated = True
    else:
        rate = torch.as_tensor(error_rate, dtype=torch.float64).reshape(-1).expand(B).clone()
        if bool(((rate <= 0) | (rate >= (M - 1) / M)).any()):
            raise ValueError(f"error rate must be in (0, {(M - 1) / M:.4g}), got {float(rate.reshape(-1)[0])}")
        estimated = False
    if log_evidence is None:
        counts = torch.where(letters, counts.double(), torch.zeros_like(counts, dtype=torch.float64))
        loglik = reads_log_likelihood(counts, rate, M).masked_fill(~letters, NEG)
    vote = loglik.argmax(-1)  # majority (uniform prior); no coverage → the first letter
    post = torch.softmax(loglik, -1)
    if keep_tokens is not None and keep is not None:
        vote = torch.where(keep.to(dev).bool(), keep_tokens.to(dev), vote)
    c = torch.where(val, vote, torch.full_like(vote, pad))
    t_used = torch.zeros(B, dtype=torch.float64)
    nobs = counts.sum(-1, keepdim=True)
    use = (val & ~hold)[..., None]
    free_n = use[..., 0].sum(-1).clamp_min(1).double()
    den = torch.where(use, nobs, torch.zeros_like(nobs)).sum((-1, -2)).clamp_min(1.0)
    # molecules read more than once start from their reads' disagreements and take one EM step per round;
    # single reads have only the prior to go on and iterate to the maximum-likelihood rate
    single = torch.where(use[..., 0], nobs[..., 0], torch.zeros_like(nobs[..., 0])).amax(-1) <= 1
    for _ in range(max(int(iters), 1)):
        conf_c = post.max(-1).values
        if not absorbing:
            r_c = (torch.where(use[..., 0], 1.0 - conf_c, torch.zeros_like(conf_c)).sum(-1) / free_n)
            r_c = r_c.clamp(1e-4, 0.9 * (n_states - 1) / n_states).cpu()
            t_used = snap_time(schedule, time_for_error_rate(schedule, r_c, n_states))
        prior = leave_one_out_log_prior(denoiser, process, schedule, c, None if absorbing else t_used, valid=val,
                                        hold=hold, passes=passes, batch_size=batch_size)[..., :nd].to(dev)
        prior = torch.log_softmax(prior.masked_fill(~letters, NEG), -1)
        if estimated:  # EM on the rate with the model's posterior (prior fixed in this round)
            for step in range(50):
                post_r = torch.softmax(prior + reads_log_likelihood(counts, rate, M).masked_fill(~letters, NEG), -1)
                num = torch.where(use, post_r * (nobs - counts), torch.zeros_like(post_r)).sum((-1, -2))
                move = den > 1.0 if step == 0 else (den > 1.0) & single
                rate = torch.where(move, num / den, rate).clamp(1e-6, 0.98 * (M - 1) / M)
                if not bool(single.any()):
                    break
            loglik = reads_log_likelihood(counts, rate, M).masked_fill(~letters, NEG)
        post = torch.softmax(prior + loglik, -1)
        best = post.argmax(-1)
        c = torch.where(hold, c, best)
    conf = post.gather(-1, c.clamp(max=nd - 1)[..., None])[..., 0]
    conf = torch.where(hold, torch.ones_like(conf), conf)
    return c, conf, torch.where(val, vote, c), rate.cpu(), t_used.double()


# ==================================================================================== batch API
@dataclass
class CorrectionBatch:
    """Corrections of a batch of token sequences (tensors)."""

    corrected: Tensor  # [B, L]
    changed: Tensor  # bool [B, L]
    confidence: Tensor  # float64 [B, L]: posterior probability of the output token
    t: Tensor  # [B] time the denoiser saw (mask mode: the masked fraction)
    error_rate: Tensor  # [B] assumed or estimated substitution rate
    estimated: Tensor  # bool [B]: the rate was estimated
    method: str


def _need_uniform(process) -> None:
    if not isinstance(process, Uniform):
        raise ValueError("this correction method needs a uniform-process model (multinomial diffusion or "
                         "SEDD uniform); for a masked model use method 'mask'")


@torch.no_grad()
def correct_tokens(denoiser, process: Process, schedule, x: Tensor, *, valid: Tensor | None = None,
                   keep: Tensor | None = None, error_rate: Tensor | float | None = None, method: str = "auto",
                   num_candidates: int = 4, steps: int = 16, generator: torch.Generator | None = None,
                   nll_fn: NLLFn | None = None, rank: str = "posterior", threshold: float | None = None,
                   infill: str = "greedy", passes: int | None = None, batch_size: int = 64,
                   estimator: str = "em", include_mode: bool = True, rates: Sequence[float] | None = None,
                   rate_range: tuple[float, float] = (1e-3, 0.4), grid: int = 16, refine: int = 6) -> CorrectionBatch:
    """Correct token sequences ``x: [B, L]`` (ids ``≥ N`` are padding, or give ``valid``).

    ``method``: ``oneshot`` | ``multistep`` (uniform process) | ``mask`` (absorbing) | ``auto``.
    ``error_rate``: a float or per-sequence ``[B]``; ``None`` estimates it per sequence with
    ``estimator`` = ``pll`` (:func:`estimate_time`) or ``em`` (:func:`estimate_time_em`).
    ``keep``: bool ``[B, L]`` positions that never change.
    """
    if method not in METHODS:
        raise ValueError(f"unknown correction method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        method = "mask" if isinstance(process, Absorbing) else "oneshot"
    B = x.shape[0]
    if method == "mask":
        val = _valid(x, valid, process.mask_id if isinstance(process, Absorbing) else process.vocab_size)
        out, conf, flagged, rate, est = mask_correct(
            denoiser, process, x, valid=val, keep=keep, error_rate=error_rate, threshold=threshold, steps=steps,
            infill=infill, schedule=schedule, generator=generator, passes=passes, batch_size=batch_size)
        frac = flagged.sum(-1).double().cpu() / val.sum(-1).clamp_min(1).double().cpu()
        return CorrectionBatch(out, (out != x) & val, conf, frac, rate, est, method)
    _need_uniform(process)
    n = process.vocab_size
    val = _valid(x, valid, n)
    hold = ~val if keep is None else (~val | keep.to(x.device).bool())
    if estimator not in ("pll", "em"):
        raise ValueError(f"estimator must be 'pll' or 'em', got {estimator!r}")
    if error_rate is None and estimator == "em":
        est = estimate_time_em(denoiser, process, schedule, x, valid=val, fixed=hold, batch_size=batch_size)
        t, rate, log_p0 = est.t, est.error_rate, est.log_p0
        estimated = torch.ones(B, dtype=torch.bool)
    elif error_rate is None:
        est = estimate_time(denoiser, process, schedule, x, valid=val, fixed=hold, rates=rates,
                            rate_range=rate_range, grid=grid, refine=refine, batch_size=batch_size)
        t, rate, log_p0 = est.t, est.error_rate, est.log_p0
        estimated = torch.ones(B, dtype=torch.bool)
    else:
        rate = torch.as_tensor(error_rate, dtype=torch.float64).reshape(-1).expand(B).clone()
        t = snap_time(schedule, time_for_error_rate(schedule, rate, n))
        log_p0 = posterior_log_x0(denoiser, process, schedule, x, t, fixed=hold, batch_size=batch_size)
        estimated = torch.zeros(B, dtype=torch.bool)
    if method == "oneshot":
        out, conf = oneshot_decode(log_p0, x, keep=hold, valid=val)
    else:
        out, conf, _, _ = multistep_correct(denoiser, process, schedule, x, t, steps=steps,
                                            num_candidates=num_candidates, keep=hold, valid=val,
                                            generator=generator, nll_fn=nll_fn, rank=rank, log_p0=log_p0,
                                            include_mode=include_mode, batch_size=batch_size)
    return CorrectionBatch(out, (out != x) & val, conf.double(), t.double().cpu(), rate.double().cpu(),
                           estimated, method)


# ================================================================================== keep parsing
_POSITIONS = re.compile(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*")
_FREE = set("?._")


def positions_to_zero_based(spec: Any) -> Any:
    """A 1-based position list as typed on the command line (``"1-6,13"``, both ends included) in the
    0-based form :func:`parse_keep` takes (``"0-5,12"``); a keep mask (or ``None``) is returned as it is."""
    if not isinstance(spec, str) or not _POSITIONS.fullmatch(spec):
        return spec
    parts = []
    for part in spec.split(","):
        a, dash, b = part.partition("-")
        nums = [int(a)] + ([int(b)] if dash else [])
        if min(nums) < 1:
            raise ValueError(f"keep position {part.strip()!r}: positions count from 1 (pass --zero-based "
                             f"to give 0-based positions)")
        parts.append("-".join(str(n - 1) for n in nums))
    return ",".join(parts)


def _mask_letter(ch: str, i: int, tokenizer, where: str) -> int | None:
    """The token id a keep-mask character stands for (``None`` if it is not a single token)."""
    try:
        want = tokenizer.encode(ch)
    except ValueError:
        raise ValueError(f"{where}keep mask position {i}: {ch!r} is not a letter of the model's "
                         f"alphabet (use ?, . or _ for positions that may change, * to keep)") from None
    return int(want[0]) if len(want) == 1 else None


def parse_keep(spec: Any, length: int, *, text: str | None = None, ids: Sequence[int] | None = None,
               tokenizer=None, record: str | None = None) -> set[int]:
    """Positions (0-based) that must not change, from one of:

    * ``None`` → none;
    * an iterable of ints → those positions;
    * a position list string ``"0-5,10,12"`` (0-based, inclusive ranges);
    * a mask string as long as the sequence (per-character alphabets): ``?``, ``.`` or ``_`` = may change,
      ``*`` = keep, any other character = keep, and it must equal the sequence's letter there (as in a
      template: write the letters you are sure of, e.g. ``TTGACA??????????TATAAT``).
    """
    where = f"record {record!r}: " if record is not None else ""
    if spec is None:
        return set()
    if isinstance(spec, str) and _POSITIONS.fullmatch(spec):
        out: set[int] = set()
        for part in spec.split(","):
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b) if b.strip() else int(a)
            if lo > hi:
                raise ValueError(f"{where}keep range {part.strip()!r} is empty")
            out.update(range(lo, hi + 1))
        spec = out
    if isinstance(spec, str):
        from ..tokenizers.base import CharLevelTokenizer
        if tokenizer is not None and not isinstance(tokenizer, CharLevelTokenizer):
            raise ValueError(f"{where}keep masks need a one-character-per-token alphabet; give 0-based "
                             f"positions (e.g. '0-4,9') instead")
        if len(spec) != length:
            raise ValueError(f"{where}keep mask has {len(spec)} characters; the sequence has {length}")
        out = set()
        for i, ch in enumerate(spec):
            if ch in _FREE:
                continue
            if ch != "*" and ids is not None and tokenizer is not None:
                want = _mask_letter(ch, i, tokenizer, where)
                if want is None or want != int(ids[i]):
                    have = text[i] if text is not None and i < len(text) else "another letter"
                    raise ValueError(f"{where}keep mask position {i} says {ch!r} but the sequence has {have!r}")
            out.add(i)
        return out
    try:
        pos = {int(p) for p in spec}
    except (TypeError, ValueError):
        raise ValueError(f"{where}keep must be positions or a mask string, got {spec!r}") from None
    bad = sorted(p for p in pos if not 0 <= p < length)
    if bad:
        raise ValueError(f"{where}keep position {bad[0]} is outside the sequence (0-based, length {length})")
    return pos


# ==================================================================================== model API
@dataclass
class Correction:
    """One corrected sequence."""

    id: str
    input: Any  # str for a model, list[int] for a raw denoiser
    corrected: Any
    positions: list[int]  # 0-based token positions that changed
    confidences: list[float]  # per position: posterior probability of the output token
    t: float
    error_rate: float
    method: str
    estimated: bool  # error_rate was estimated (not given)
    reads: int = 1  # reads combined (``group_by``); ``input`` is then their majority vote

    @property
    def num_changed(self) -> int:
        return len(self.positions)


def _is_model(obj) -> bool:
    return hasattr(obj, "tokenizer") and hasattr(obj, "denoiser") and hasattr(obj, "max_len")


def _model_nll_fn(model, valid: Tensor, n_t: int, seed: int, batch_index: int) -> NLLFn:
    """ELBO bound per candidate with common random numbers: candidate k of every sequence is scored in
    a batch of the same shape with an identically seeded generator (same times and corruption draws)."""
    from .generate import batch_generator

    def fn(cands: Tensor) -> Tensor:
        B, K, _ = cands.shape
        out = torch.empty(B, K, dtype=torch.float64)
        for k in range(K):
            g = batch_generator(seed + 104_729, batch_index, model.device)
            out[:, k] = model.nll(cands[:, k], valid, n_t=n_t, generator=g).nats.double().cpu()
        return out
    return fn


@torch.no_grad()
def correct(model_or_denoiser, sequences, *, ids: Sequence[str] | None = None, process: Process | None = None,
            schedule=None, error_rate: float | Sequence[float] | None = None, method: str = "auto",
            keep: Any = None, num_candidates: int = 4, steps: int = 16, seed: int = 0, batch_size: int = 32,
            n_t: int = 32, rank: str = "posterior", threshold: float | None = None, infill: str = "greedy",
            passes: int | None = None, estimator: str = "em", include_mode: bool = True,
            nll_fn: NLLFn | None = None, group_by: str | Callable[[str], str] | None = None, iters: int = 2,
            qualities: Sequence[Sequence[int]] | None = None,
            progress: Progress | None = None) -> list[Correction]:
    """Correct sequences with a model (strings) or a raw denoiser (token ids).

    ``model_or_denoiser``: a :class:`~seqdiff.model.SeqDiffModel` with ``sequences`` a list of strings,
    or any denoiser of the core contract with ``sequences`` a ``LongTensor[B, L]`` / list of id lists
    (``process``/``schedule`` default to the denoiser's attributes; ``nll_fn`` ranks multistep candidates).
    ``keep``: one spec for every sequence, or a list with one per sequence (see :func:`parse_keep`).
    ``error_rate``: substitution rate (float, or one per sequence); ``None`` estimates it.
    Everything is validated before any computation: an unknown letter or an over-long sequence raises
    ``ValueError`` naming the record and position.

    ``group_by``: reads of one molecule (a regular expression whose first group — or whole match — in
    each id is the molecule key, or a function of the id). The aligned, equally long reads of each
    molecule are combined by :func:`consensus_correct` (``iters`` rounds; ``method`` ``auto``, ``oneshot``
    or ``mask``) into one :class:`Correction` per molecule, in order of first appearance; ``input`` is
    the reads' majority vote and ``positions`` where the result differs from it. A molecule with one
    read is corrected like any single sequence. ``keep`` is then one spec for every molecule.

    ``qualities``: phred base qualities, one list per sequence (FASTQ). Each base then has its own error
    probability ``10^(-Q/10)`` in the channel (:func:`reads_evidence`) and every sequence — read alone or
    grouped — goes through :func:`consensus_correct`: a low-quality base is settled by the model's prior,
    a high-quality one needs overwhelming evidence to change. ``error_rate`` is not used then.
    """
    from .generate import batch_generator

    if method not in METHODS:
        raise ValueError(f"unknown correction method {method!r}; choose one of {', '.join(METHODS)}")
    is_model = _is_model(model_or_denoiser)
    seqs = list(sequences) if not isinstance(sequences, Tensor) else [row.tolist() for row in sequences]
    ids = [str(i) for i in ids] if ids is not None else [str(i + 1) for i in range(len(seqs))]
    if len(ids) != len(seqs):
        raise ValueError(f"got {len(ids)} ids for {len(seqs)} sequences")
    keeps = keep if isinstance(keep, (list, tuple)) and len(keep) == len(seqs) and \
        not all(isinstance(k, int) for k in keep) else [keep] * len(seqs)
    rates = list(error_rate) if isinstance(error_rate, (list, tuple)) else [error_rate] * len(seqs)
    if len(rates) != len(seqs):
        raise ValueError(f"got {len(rates)} error rates for {len(seqs)} sequences")
    if any((r is None) != (rates[0] is None) for r in rates):
        raise ValueError("give an error rate for every sequence or for none")
    if is_model:
        model = model_or_denoiser
        if model.is_ar:  # the AR baseline: exact conditionals from L·N sequence evaluations
            denoiser, process, schedule = model.network, None, None
        else:
            denoiser, process, schedule = model.denoiser, model.process, model.schedule
        tok = model.tokenizer
        device = model.device
        encoded = []
        for rid, s in zip(ids, seqs):
            if not isinstance(s, str):
                raise ValueError(f"record {rid!r}: expected a string")
            try:
                enc = tok.encode(s, name=rid)
            except TokenizerError as e:
                where = f" position {e.position} (1-based)" if e.position is not None else ""
                raise ValueError(f"record {rid!r}{where}: {e.reason}") from None
            if len(enc) > model.max_len:
                raise ValueError(f"record {rid!r} has {len(enc)} tokens; the model's maximum length is "
                                 f"{model.max_len}")
            encoded.append(enc)
        pad = tok.pad_id
    else:
        denoiser = model_or_denoiser
        process = process if process is not None else getattr(denoiser, "process", None)
        schedule = schedule if schedule is not None else getattr(denoiser, "schedule", None)
        if process is None or schedule is None:
            raise ValueError("give process= and schedule= for a raw denoiser")
        tok = None
        device = torch.device("cpu")
        encoded = [[int(v) for v in s] for s in seqs]
        limit = process.mask_id if isinstance(process, Absorbing) else process.vocab_size
        for rid, enc in zip(ids, encoded):
            for i, v in enumerate(enc):
                if not 0 <= v < limit:
                    raise ValueError(f"record {rid!r} position {i}: token id {v} is not a data token")
        pad = process.vocab_size + 1
    if method == "auto":
        method = "ar" if process is None else ("mask" if isinstance(process, Absorbing) else "oneshot")
    if (method == "ar") != (process is None):
        raise ValueError("method 'ar' is for the AR baseline, and the AR baseline corrects with method 'ar'")
    errors = None
    if qualities is not None:
        if len(qualities) != len(seqs):
            raise ValueError(f"got {len(qualities)} quality lists for {len(seqs)} sequences")
        errors = []
        for rid, q, e in zip(ids, qualities, encoded):
            if len(q) != len(e):
                raise ValueError(f"record {rid!r} has {len(e)} letters and {len(q)} base qualities")
            if any(int(v) < 0 for v in q):
                raise ValueError(f"record {rid!r}: negative base quality")
            errors.append(phred_to_error([int(v) for v in q]).tolist())
    if group_by is not None or errors is not None or method == "ar":
        return _correct_groups(
            model_or_denoiser if is_model else None, denoiser, process, schedule, tok, ids, seqs, encoded,
            group_by=group_by if group_by is not None else (lambda rid: rid), errors=errors, method=method,
            keep=keep, rates=rates, iters=iters, passes=passes, seed=seed, batch_size=batch_size,
            estimator=estimator, device=device, pad=pad, progress=progress)
    # (an empty record has nothing to correct or keep; it passes through unchanged)
    keep_sets = [parse_keep(k, len(e), text=s if isinstance(s, str) else None, ids=e, tokenizer=tok, record=rid)
                 if len(e) else set() for k, e, s, rid in zip(keeps, encoded, seqs, ids)]
    results: list[Correction | None] = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(encoded[i]))
    nonempty = [i for i in order if len(encoded[i]) > 0]
    for i in order:
        if len(encoded[i]) == 0:
            results[i] = Correction(ids[i], seqs[i], seqs[i], [], [], 0.0, 0.0,
                                    method, error_rate is None)
    done = len(seqs) - len(nonempty)
    for b, start in enumerate(range(0, len(nonempty), batch_size)):
        chunk = nonempty[start:start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        x = torch.full((len(chunk), width), pad, dtype=torch.long)
        kp = torch.zeros((len(chunk), width), dtype=torch.bool)
        for r, i in enumerate(chunk):
            x[r, :len(encoded[i])] = torch.tensor(encoded[i], dtype=torch.long)
            if keep_sets[i]:
                kp[r, sorted(keep_sets[i])] = True
        valid = torch.arange(width)[None, :] < torch.tensor([len(encoded[i]) for i in chunk])[:, None]
        x, kp, valid = x.to(device), kp.to(device), valid.to(device)
        g = batch_generator(seed, b, device)
        fn = nll_fn
        if fn is None and is_model and method == "multistep":
            fn = _model_nll_fn(model_or_denoiser, valid, n_t, seed, b)
        er = None if rates[0] is None else torch.tensor([float(rates[i]) for i in chunk], dtype=torch.float64)
        res = correct_tokens(denoiser, process, schedule, x, valid=valid, keep=kp, error_rate=er, method=method,
                             num_candidates=num_candidates, steps=steps, generator=g, nll_fn=fn, rank=rank,
                             threshold=threshold, infill=infill, passes=passes, estimator=estimator,
                             include_mode=include_mode, batch_size=batch_size)
        out = res.corrected.cpu()
        for r, i in enumerate(chunk):
            n_i = len(encoded[i])
            row = out[r, :n_i].tolist()
            corrected = tok.decode(row) if tok is not None else row
            results[i] = Correction(
                id=ids[i], input=seqs[i], corrected=corrected,
                positions=res.changed[r, :n_i].nonzero()[:, 0].tolist(),
                confidences=[float(c) for c in res.confidence[r, :n_i].cpu()],
                t=float(res.t[r]), error_rate=float(res.error_rate[r]), method=res.method,
                estimated=bool(res.estimated[r]))
        done += len(chunk)
        if progress is not None:
            progress(done, len(seqs))
    return results  # type: ignore[return-value]


def group_reads(ids: Sequence[str], group_by: str | Callable[[str], str]) -> dict[str, list[int]]:
    """Molecule key → indices of its reads, in order of first appearance. ``group_by``: a regular
    expression searched in each id (key: its first group, or the whole match) or a function of the id."""
    if callable(group_by):
        key_of = group_by
    else:
        try:
            pat = re.compile(group_by)
        except re.error as e:
            raise ValueError(f"--group-by {group_by!r} is not a regular expression: {e}") from None

        def key_of(rid: str) -> str:
            m = pat.search(rid)
            if m is None:
                raise ValueError(f"record {rid!r}: --group-by pattern {group_by!r} does not match its id")
            return m.group(1) if pat.groups else m.group(0)
    groups: dict[str, list[int]] = {}
    for i, rid in enumerate(ids):
        groups.setdefault(str(key_of(rid)), []).append(i)
    return groups


def _mean_error(reads, errors, num_letters: int, no_call: Sequence[int]) -> float:
    """Mean error probability over the callable observations of a molecule's reads (for reporting)."""
    skip = {int(v) for v in no_call}
    vals = [e for read, err in zip(reads, errors) for v, e in zip(read, err) if v < num_letters and v not in skip]
    return float(sum(vals) / len(vals)) if vals else math.nan


def _group_keep(spec: Any, length: int, tok, key: str) -> tuple[set[int], dict[int, int]]:
    """``keep`` for a molecule: positions, and the letters a mask string fixes them to."""
    pos = parse_keep(spec, length, tokenizer=tok, record=key)
    letters: dict[int, int] = {}
    if isinstance(spec, str) and len(spec) == length and not _POSITIONS.fullmatch(spec):
        for i, ch in enumerate(spec):
            if ch in _FREE or ch == "*":
                continue
            letter = _mask_letter(ch, i, tok, f"record {key!r}: ") if tok is not None else int(ch)
            if letter is not None:
                letters[i] = letter
    return pos, letters


def _correct_groups(model, denoiser, process, schedule, tok, ids, seqs, encoded, *, group_by, errors, method,
                    keep, rates, iters, passes, seed, batch_size, estimator, device, pad,
                    progress) -> list[Correction]:
    if method not in ("oneshot", "mask", "ar"):
        what = "reads of one molecule (group_by)" if errors is None else "sequences with base qualities"
        raise ValueError(f"{what} are combined by the consensus decoder; method must be 'auto', 'oneshot', "
                         f"'mask' or 'ar', not {method!r}")
    if method == "mask" and not isinstance(process, Absorbing):
        raise ValueError("method 'mask' needs an absorbing (masked) model")
    if method == "oneshot":
        _need_uniform(process)
    if isinstance(keep, (list, tuple)) and keep and not all(isinstance(k, int) for k in keep):
        raise ValueError("with group_by, keep is one spec for every molecule")
    groups = group_reads(ids, group_by)
    nd = denoiser.config.n_out if process is None else \
        process.num_data_tokens if isinstance(process, Absorbing) else process.vocab_size
    no_call = tok.no_call_ids if tok is not None else []
    multi = []
    for key, idx in groups.items():
        lens = {len(encoded[i]) for i in idx}
        if len(lens) > 1:
            first = idx[0]
            other = next(i for i in idx if len(encoded[i]) != len(encoded[first]))
            raise ValueError(f"molecule {key!r}: read {ids[other]!r} has {len(encoded[other])} tokens and read "
                             f"{ids[first]!r} {len(encoded[first])}; reads of one molecule must be aligned "
                             f"(the same length)")
        if rates[idx[0]] is not None and any(rates[i] != rates[idx[0]] for i in idx):
            raise ValueError(f"molecule {key!r}: its reads were given different error rates")
        multi.append((key, idx))
    results: dict[str, Correction] = {}
    # one read: the single-sequence corrector (the AR baseline and qualities have only the consensus decoder)
    singles = [(k, idx) for k, idx in multi if len(idx) == 1] if errors is None and process is not None else []
    if singles:
        obj = model if model is not None else denoiser
        single = correct(obj, [seqs[idx[0]] for _, idx in singles], ids=[k for k, _ in singles],
                         process=None if model is not None else process,
                         schedule=None if model is not None else schedule,
                         error_rate=[rates[idx[0]] for _, idx in singles] if rates[0] is not None else None,
                         method=method, keep=keep, seed=seed, batch_size=batch_size, passes=passes,
                         estimator=estimator)
        results.update({c.id: c for c in single})
    groups_multi = [(k, idx) for k, idx in multi if len(idx) > 1 or errors is not None or process is None]
    done = len(singles)
    if progress is not None and singles:
        progress(done, len(multi))
    for start in range(0, len(groups_multi), batch_size):
        chunk = groups_multi[start:start + batch_size]
        width = max(len(encoded[idx[0]]) for _, idx in chunk)
        if errors is None:
            counts = torch.stack([read_counts([encoded[i] for i in idx], width, nd, no_call) for _, idx in chunk])
            evidence, mean_err = None, None
        else:
            counts = None
            evidence = torch.stack([reads_evidence([encoded[i] for i in idx], [errors[i] for i in idx], width, nd,
                                                   no_call) for _, idx in chunk])
            mean_err = torch.tensor([_mean_error([encoded[i] for i in idx], [errors[i] for i in idx], nd, no_call)
                                     for _, idx in chunk], dtype=torch.float64)
        lengths = torch.tensor([len(encoded[idx[0]]) for _, idx in chunk])
        valid = torch.arange(width)[None, :] < lengths[:, None]
        kp = torch.zeros(len(chunk), width, dtype=torch.bool)
        kt = torch.zeros(len(chunk), width, dtype=torch.long)
        for r, (key, idx) in enumerate(chunk):
            if keep is not None:
                pos, letters = _group_keep(keep, int(lengths[r]), tok, key)
                if pos:
                    kp[r, sorted(pos)] = True
                c_r = (counts if counts is not None else evidence)[r].argmax(-1)
                for p_ in pos:
                    kt[r, p_] = letters.get(p_, int(c_r[p_]))
        er = None if rates[chunk[0][1][0]] is None else \
            torch.tensor([float(rates[idx[0]]) for _, idx in chunk], dtype=torch.float64)
        if evidence is not None:
            er = mean_err
        c, conf, vote, rate, t = consensus_correct(
            denoiser, process, schedule, counts.to(device) if counts is not None else None,
            log_evidence=evidence.to(device) if evidence is not None else None,
            valid=valid.to(device), keep=kp.to(device),
            keep_tokens=kt.to(device), error_rate=er, no_call=no_call, iters=iters, passes=passes, pad_id=pad,
            batch_size=batch_size)
        c, conf, vote = c.cpu(), conf.cpu(), vote.cpu()
        for r, (key, idx) in enumerate(chunk):
            n_i = int(lengths[r])
            row, vrow = c[r, :n_i].tolist(), vote[r, :n_i].tolist()
            single = len(idx) == 1  # a read alone: compared with itself, not with a vote
            base = encoded[idx[0]] if single else vrow
            results[key] = Correction(
                id=key, input=seqs[idx[0]] if single else (tok.decode(vrow) if tok is not None else vrow),
                corrected=tok.decode(row) if tok is not None else row,
                positions=[i for i in range(n_i) if row[i] != base[i]],
                confidences=[float(v) for v in conf[r, :n_i]], t=float(t[r]), error_rate=float(rate[r]),
                method=("quality-" if errors is not None else "consensus-" if not single else "") + method,
                estimated=er is None,
                reads=len(idx))
        done += len(chunk)
        if progress is not None:
            progress(done, len(multi))
    return [results[k] for k, _ in multi]


def compact_confidences(conf: Iterable[float]) -> str:
    """One digit per position: ``min(9, ⌊10 p⌋)`` (``9`` = at least 0.9), like a quality string."""
    return "".join(str(min(9, max(0, int(math.floor(10 * float(c)))))) for c in conf)
