r"""Domain-free posterior maths of an observed sequence under a forward process: the noise level that
corresponds to a substitution rate, the denoiser's posterior ``p(x_0 | x_t = x)`` at that level, and the
observation channel's pseudo-likelihood terms.  Sequence correction (:mod:`seqdiff.jobs.correct`, whose
docstring derives each formula) is built on these.

* Noise level <-> error rate (uniform process): a token differs from its clean value with probability
  ``(1 - α_t)(N - 1)/N``, so a substitution rate ``r`` is exactly ``α_t = 1 - r N/(N-1)``
  (:func:`error_rate_at`, :func:`time_for_error_rate`, by bisection for continuous schedules and on
  the continuous-time embedding of a :class:`~seqdiff.diffusion.DiscreteSchedule`, snapped back to
  its steps by :func:`snap_time`).
* :func:`posterior_log_x0`: ``log p(x_0^i | x_t = x, t)`` from any denoiser of the contract, in batches.
* :func:`pseudo_log_likelihood_terms`: ``log p_t(x_i | x_{-i}) = -log Σ_a p(x0_i = a | x) / q_t(x_i | a)``.
* Reads of one molecule through a substitution channel: per-position counts, phred <-> error,
  the channel's log-likelihood (one rate, or each base's own error) and the EM estimate of the rate.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .processes import NEG, Absorbing, NoiseLevel, Process, _upcast
from .samplers import Sampler
from .schedules import DiscreteSchedule

__all__ = ["noise_at", "error_rate_at", "time_for_error_rate", "snap_time", "masked_log_x0", "posterior_log_x0",
           "log_q_obs", "pseudo_log_likelihood_terms", "read_counts", "phred_to_error", "error_to_phred",
           "reads_evidence", "reads_log_likelihood", "estimate_read_rate", "callable_letters"]


def _alpha(schedule, t: Tensor) -> tuple[Tensor, Tensor]:
    """``(α(t), 1 - α(t))`` in float64; discrete schedules are interpolated log-linearly within a step."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if isinstance(schedule, DiscreteSchedule):
        T = schedule.num_steps
        kf = (t * T).clamp(0.0, float(T))
        kr = torch.round(kf)
        kf = torch.where((kf - kr).abs() < 1e-9, kr, kf)  # an integer step up to rounding is that step
        k0 = kf.floor().long().clamp(max=T - 1)
        f = kf - k0.double()
        log_abar = torch.log(schedule.alpha_bar.to(t.device))
        log_keep = torch.log(schedule.step_keep.to(t.device))  # index j: step j+1
        la = log_abar[k0] + f * log_keep[k0]
        return la.exp(), -torch.expm1(la)
    if getattr(schedule, "state_dependent", False):
        raise ValueError("a state-dependent schedule has no single substitution rate")
    return schedule.alpha(t).double(), schedule.one_minus_alpha(t).double()


def noise_at(schedule, t: Tensor) -> NoiseLevel:
    """:class:`NoiseLevel` at times ``t: [B]`` for continuous and discrete schedules alike."""
    a, oma = _alpha(schedule, t)
    return NoiseLevel(a[:, None, None], oma[:, None, None])


def error_rate_at(schedule, t: Tensor | float, num_states: int) -> Tensor:
    """Substitution rate of the uniform process at time ``t``: ``(1 - α_t)(N - 1)/N``."""
    _, oma = _alpha(schedule, torch.as_tensor(t, dtype=torch.float64))
    return oma * (num_states - 1) / num_states


def time_for_error_rate(schedule, rate: Tensor | float, num_states: int) -> Tensor:
    """The time ``t`` at which the uniform process substitutes a token with probability ``rate``.

    ``α_t = 1 - r N/(N-1)`` (module docstring). Continuous schedules: bisection on ``1 - α(t)``.
    Discrete schedules: exact on the within-step log-linear interpolation of ``ᾱ`` (a fractional step;
    see :func:`snap_time`). Raises for ``r ∉ (0, (N-1)/N)`` or a rate the schedule never reaches.
    """
    r = torch.as_tensor(rate, dtype=torch.float64)
    n = int(num_states)
    rmax = (n - 1) / n
    if bool(((r <= 0) | (r >= rmax) | torch.isnan(r)).any()):
        bad = float(r.reshape(-1)[((r <= 0) | (r >= rmax) | torch.isnan(r)).reshape(-1)][0])
        raise ValueError(f"error rate must be in (0, {rmax:.4g}) for {n} states (a rate of (N-1)/N is "
                         f"pure noise), got {bad}")
    target = r * n / (n - 1)  # 1 - α
    top = float(_alpha(schedule, torch.ones(1, dtype=torch.float64))[1][0])
    if bool((target > top * (1 + 1e-12)).any()):
        reach = top * (n - 1) / n
        raise ValueError(f"error rate {float(r.max()):.4g} is beyond this schedule's noise at t = 1 "
                         f"(at most {reach:.4g})")
    if isinstance(schedule, DiscreteSchedule):
        T = schedule.num_steps
        log_abar = torch.log(schedule.alpha_bar)
        log_keep = torch.log(schedule.step_keep)
        la = torch.log1p(-target)
        # largest k0 < T with log ᾱ_{k0} ≥ la (log ᾱ is non-increasing in k)
        k0 = (torch.searchsorted(-log_abar, -la.reshape(-1), right=True) - 1).clamp(0, T - 1).reshape(la.shape)
        lk = log_keep[k0]
        f = torch.where(lk < 0, (la - log_abar[k0]) / lk.clamp(max=-1e-300), torch.zeros_like(la)).clamp(0.0, 1.0)
        return (k0.double() + f) / T
    lo = torch.zeros_like(target)
    hi = torch.ones_like(target)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = _alpha(schedule, mid)[1] < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    # the endpoint whose rate is closer
    e_lo = (_alpha(schedule, lo)[1] - target).abs()
    e_hi = (_alpha(schedule, hi)[1] - target).abs()
    return torch.where(e_lo <= e_hi, lo, hi)


def snap_time(schedule, t: Tensor) -> Tensor:
    """Times a denoiser is defined at: for a :class:`DiscreteSchedule` the step ``k ≥ 1`` with ``ᾱ_k``
    closest to ``α(t)`` (as ``k/T``); continuous schedules round ``t`` to float32, the precision the
    samplers pass times to denoisers in, so the channel and the denoiser see the same time."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if not isinstance(schedule, DiscreteSchedule):
        return t.float().double()  # denoisers receive float32 times: compute the channel at that very t
    a, _ = _alpha(schedule, t)
    abar = schedule.alpha_bar[1:].to(t.device)
    k = (a.reshape(-1, 1) - abar[None, :]).abs().argmin(-1) + 1
    return (k.double() / schedule.num_steps).reshape(t.shape)


# ================================================================================ denoiser calls
def masked_log_x0(process: Absorbing, out: Tensor, x: Tensor, t: Tensor, param: str, schedule) -> Tensor:
    """``log p(x0 | x)`` (float64) from a masked model's output at times ``t``; only a score output needs
    the schedule."""
    if param == "score" and schedule is None:
        raise ValueError("a score-parameterised model needs its schedule for masked marginals")
    noise = NoiseLevel.at(schedule, t) if param == "score" else None
    return process.to_log_x0(_upcast(out), param, x.clamp(max=process.vocab_size - 1), noise).double()


@torch.no_grad()
def posterior_log_x0(denoiser, process: Process, schedule, x: Tensor, t: Tensor, *,
                     fixed: Tensor | None = None, batch_size: int | None = None) -> Tensor:
    """``log p(x0_i = a | x_t = x)`` as float64 ``[B, L, N]`` from a denoiser of either parameterisation.

    ``t: [B]`` (float64 times; snapped for discrete schedules by the caller). Ids ``≥ N`` (padding) are
    passed to the denoiser as they are; their rows of the output are meaningless.
    """
    param = getattr(denoiser, "parameterization", "x0")
    B = x.shape[0]
    t = torch.as_tensor(t, dtype=torch.float64, device=x.device).reshape(-1).expand(B)
    chunk = batch_size or max(B, 1)
    outs = []
    for s in range(0, B, chunk):
        xs, ts = x[s:s + chunk], t[s:s + chunk]
        fs = fixed[s:s + chunk] if fixed is not None else None
        out = Sampler.call_denoiser(denoiser, xs, ts.float(), fs)
        xc = xs.clamp(max=process.vocab_size - 1)
        outs.append(process.to_log_x0(_upcast(out), param, xc, noise_at(schedule, ts)).double())
    return torch.cat(outs) if outs else torch.zeros(0, x.shape[1], process.vocab_size, dtype=torch.float64)


def log_q_obs(x: Tensor, noise: NoiseLevel, n: int) -> Tensor:
    """``log q_t(x_i | a)`` for every clean value ``a``: ``[B, L, N]`` (uniform process)."""
    log_diag = torch.log(noise.alpha + noise.one_minus_alpha / n)
    log_off = torch.log(noise.one_minus_alpha / n)
    same = x[..., None] == torch.arange(n, device=x.device)
    return torch.where(same, log_diag.to(x.device), log_off.to(x.device))


def pseudo_log_likelihood_terms(log_p0: Tensor, x: Tensor, noise: NoiseLevel, num_states: int) -> Tensor:
    """``log p_t(x_i | x_{-i}) = -log Σ_a p(x0_i = a | x)/q_t(x_i | a)`` per position, ``[B, L]`` (eq. 2)."""
    return -torch.logsumexp(log_p0.double() - log_q_obs(x, noise, num_states), dim=-1)


# ------------------------------------------------------------------ reads through a substitution channel
def read_counts(reads: Sequence[Sequence[int]], length: int, num_letters: int,
                no_call: Sequence[int] = ()) -> Tensor:
    """Per-position letter counts ``[length, num_letters]`` (float64) of aligned reads of one molecule.

    ``reads``: token-id lists, each at most ``length`` long (a shorter read covers a prefix); ids in
    ``no_call`` (e.g. DNA ``N``) or ``≥ num_letters`` are no observation.
    """
    counts = torch.zeros(length, num_letters, dtype=torch.float64)
    skip = set(int(v) for v in no_call)
    for read in reads:
        for i, v in enumerate(read):
            v = int(v)
            if v < num_letters and v not in skip:
                counts[i, v] += 1.0
    return counts


def phred_to_error(quality: Sequence[int] | Tensor) -> Tensor:
    """Per-base error probability ``10^(-Q/10)`` of phred qualities (float64)."""
    return torch.pow(10.0, -torch.as_tensor(quality, dtype=torch.float64) / 10.0)


def error_to_phred(error: Tensor, cap: int = 60) -> Tensor:
    """Phred quality ``round(-10 log10 e)`` (capped; ``e = 1 - confidence``) as int64."""
    e = torch.as_tensor(error, dtype=torch.float64).clamp_min(10.0 ** (-cap / 10.0))
    return torch.round(-10.0 * torch.log10(e)).clamp(0, cap).long()


def reads_evidence(reads: Sequence[Sequence[int]], errors: Sequence[Sequence[float]], length: int,
                   num_letters: int, no_call: Sequence[int] = ()) -> Tensor:
    """``log Π_j q_ij(y_ij | a)`` per position and letter ``[length, num_letters]`` for reads with their own
    per-base error probabilities (e.g. from FASTQ qualities, :func:`phred_to_error`): a read shows the
    clean letter w.p. ``1 - e`` and each of the ``M - 1`` other callable letters w.p. ``e/(M - 1)``.
    ``e`` is clipped to ``[1e-6, (M-1)/M]`` (``(M-1)/M``: the base says nothing). No-call ids and ids
    ``≥ num_letters`` add nothing. With one ``e = r`` everywhere this is :func:`reads_log_likelihood`."""
    skip = {int(v) for v in no_call}
    M = num_letters - len([v for v in skip if v < num_letters])
    ev = torch.zeros(length, num_letters, dtype=torch.float64)
    for read, err in zip(reads, errors):
        if len(err) != len(read):
            raise ValueError(f"a read has {len(read)} letters and {len(err)} error probabilities")
        ids = torch.as_tensor(list(read), dtype=torch.long)
        e = torch.as_tensor(list(err), dtype=torch.float64).clamp(1e-6, (M - 1) / M)
        use = (ids < num_letters) & ~torch.isin(ids, torch.tensor(sorted(skip) or [-1]))
        pos, v, e = torch.arange(len(ids))[use], ids[use], e[use]
        off = torch.log(e / (M - 1))
        ev[pos] += off[:, None]
        ev[pos, v] += torch.log1p(-e) - off
    return ev


def reads_log_likelihood(counts: Tensor, rate: Tensor, num_callable: int) -> Tensor:
    """``log Π_j q(y_j | a)`` per position and clean letter ``a`` for reads through a substitution channel
    of rate ``r`` (a read shows ``a`` w.p. ``1 - r``, each of the ``M - 1`` other callable letters w.p.
    ``r/(M - 1)``): ``n_a log(1 - r) + (n - n_a) log(r/(M - 1))``. ``counts: [B, L, N]``, ``rate: [B]``."""
    r = rate.double().to(counts.device)[:, None, None]
    n = counts.sum(-1, keepdim=True)
    return counts * torch.log1p(-r) + (n - counts) * torch.log(r / (num_callable - 1))


def callable_letters(num_letters: int, no_call: Sequence[int], device) -> Tensor:
    """``[num_letters]`` bool: the letters a clean position can take (those that are not no-call)."""
    ok = torch.ones(num_letters, dtype=torch.bool, device=device)
    for v in no_call:
        ok[int(v)] = False
    return ok


def estimate_read_rate(counts: Tensor, num_callable: int, *, letters: Tensor | None = None,
                       log_prior: Tensor | None = None, iters: int = 100) -> Tensor:
    """Substitution rate per molecule from how its reads disagree, by EM (``[B]``).

    E-step: ``P(x0_i = a | reads_i) ∝ π_i(a) Π_j q(y_ij | a)`` (``log_prior`` π, uniform over ``letters``
    when not given); M-step: ``r = Σ_i Σ_a P(a) (n_i - n_ia) / Σ_i n_i``, the expected fraction of
    observations that differ from the clean letter. A molecule read once has no disagreement to go on
    (with a flat prior its likelihood does not depend on ``r``, and the estimate stays at its start, 5 %);
    :func:`consensus_correct` then estimates it under the model's prior instead.
    """
    B, L, N = counts.shape
    n_obs = counts.sum((-1, -2)).clamp_min(1.0)
    lp = torch.zeros(B, L, N, dtype=torch.float64) if log_prior is None else log_prior.double()
    if letters is not None:
        lp = lp.masked_fill(~letters.to(lp.device), NEG)
    rmax = 0.98 * (num_callable - 1) / num_callable
    r = torch.full((B,), 0.05, dtype=torch.float64)
    n = counts.sum(-1, keepdim=True)
    for _ in range(iters):
        post = torch.softmax(lp + reads_log_likelihood(counts, r, num_callable), -1)
        r = ((post * (n - counts)).sum((-1, -2)) / n_obs).clamp(1e-6, rmax)
    return r
