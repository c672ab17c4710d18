"""Reward-guided sampling with no training: best-of-N and sequential Monte Carlo (SMC).

Both run over any sampler of :mod:`seqdiff.diffusion.samplers` and any denoiser of the core's
contract; neither changes the sampler. The reward enters as a *log-potential* ``φ(x)`` of a clean
sequence (a function ``ids [B, L] -> float64 [B]``); :func:`tilt_log_potential` builds it from a
reward ``r``: ``λ r(x)`` (``tilt="exp"``, target ``p0 e^{λ r}``) or ``λ log r(x)`` (``tilt="power"``,
target ``p0 r^λ``, for rewards ≥ 0 such as QED).

Best-of-N
    Draw ``N`` sequences from the sampler and keep the one of highest reward (the first on ties).
    Its law is exact in closed form (:func:`best_of_n_law`): with ``q`` the sampler's law,
    ``F(r) = q(R ≤ r)``, ``F⁻(r) = q(R < r)`` and ``Q(r) = q(R = r)``,
    ``P(out = x) = q(x) / Q(r(x)) · (F(r(x))^N - F⁻(r(x))^N)``.

Sequential Monte Carlo (twisted by the reward of the denoised prediction)
    ``K`` particles per output run the sampler's own reverse steps (the proposal). Before step
    ``k`` the network's output at ``x_k`` gives a prediction ``x̂_0(x_k)`` (the argmax of
    ``p(x_0 | x_k)``, or one draw from it; revealed and fixed tokens carried over), and the
    intermediate potential is ``φ_k = φ(x̂_0(x_k))`` — it costs no extra network call, because the
    step needs that output anyway. Particle weights start at ``e^{φ_0}`` and are multiplied by
    ``e^{φ_k - φ_{k-1}}`` at every evaluation; after the last step the potential is the exact
    ``φ(x_0)`` of the clean sequence. The product telescopes to ``e^{φ(x_0)}``, so whatever the
    intermediate potentials are, the weighted particle set targets ``q(x) e^{φ(x)} / Z`` — the
    sampler's law tilted (with an exact denoiser and enough steps, ``p0 r^λ / Z``). The
    intermediate potentials only decide which particles are multiplied when a group is resampled
    (systematic resampling, when the group's effective sample size falls below
    ``ess_threshold · K``), which moves the particles to where the reward is high early; they are
    clipped to ``[-INTERMEDIATE_CLIP, INTERMEDIATE_CLIP]`` so that a prediction of weight zero (an
    invalid molecule under a power tilt) does not kill a particle whose clean end may be fine. One output
    per group is drawn from its final weights; its law converges to the tilted target as ``K``
    grows (bias ``O(1/K)``; tested against the exact target by enumeration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..diffusion.processes import _rand, _upcast, sample_categorical

__all__ = ["best_of_n", "best_of_n_law", "smc_sample", "SMCResult", "tilt_log_potential", "denoised_prediction",
           "systematic_resample", "PREDICTIONS"]

LogPotential = Callable[[Tensor], Tensor]
#: bound on the intermediate log-potentials (the final one is exact)
INTERMEDIATE_CLIP = 50.0
PREDICTIONS = ("argmax", "sample")


def tilt_log_potential(reward: Callable[[Tensor], Tensor], lam: float, tilt: str = "exp") -> LogPotential:
    """``ids -> λ r(ids)`` (``exp``) or ``λ log r(ids)`` (``power``; ``r < 0`` is an error, ``r = 0``
    gives weight 0). A reward of NaN (an invalid sequence the reward did not floor) gets weight 0."""
    if tilt not in ("exp", "power"):
        raise ValueError(f"tilt must be exp or power, got {tilt!r}")
    lam = float(lam)
    if not math.isfinite(lam):
        raise ValueError(f"λ must be finite, got {lam}")

    def phi(ids: Tensor) -> Tensor:
        r = torch.as_tensor(reward(ids), dtype=torch.float64).reshape(-1)
        if tilt == "power":
            if bool((r < 0).any()):
                raise ValueError("a power tilt r^λ needs a reward ≥ 0; use tilt='exp' (e^{λ r})")
            out = lam * torch.log(r)
            out = torch.where(r == 0, torch.full_like(out, -math.inf if lam > 0 else math.inf), out)
            out = torch.where(torch.isnan(out) & (r == 0), torch.zeros_like(out), out)  # λ = 0
        else:
            out = lam * r
        return torch.where(torch.isnan(r), torch.full_like(out, -math.inf), out)

    return phi


def denoised_prediction(sampler, out: Tensor, param: str, x: Tensor, t: Tensor, fixed: Tensor | None,
                        how: str = "argmax", generator: torch.Generator | None = None) -> Tensor:
    """``x̂_0(x_t)``: the argmax of (or a draw from) the untempered ``p(x_0 | x_t)`` at each free
    position; fixed positions (and, for the masked process, revealed tokens) are carried over."""
    noise = sampler.noise(t)
    lp = sampler.process.to_log_x0(_upcast(out), param, x.clamp(0, sampler.process.vocab_size - 1), noise)
    if how == "argmax":
        pred = lp.argmax(-1)
    elif how == "sample":
        pred = sample_categorical(lp.double().exp(), generator)
    else:
        raise ValueError(f"prediction must be one of {list(PREDICTIONS)}, got {how!r}")
    return torch.where(fixed, x, pred) if fixed is not None else pred


def systematic_resample(weights: Tensor, generator: torch.Generator | None) -> Tensor:
    """Systematic resampling of each row of normalised ``weights [G, K]``: ancestor indices ``[G, K]``."""
    g, k = weights.shape
    u = _rand((g, 1), generator, weights.device)
    points = (u + torch.arange(k, device=weights.device, dtype=torch.float64)[None, :]) / k
    cdf = torch.cumsum(weights.double(), -1)
    cdf[:, -1] = 1.0
    return torch.searchsorted(cdf, points).clamp_(max=k - 1)


def _normalise(logw: Tensor) -> Tensor:
    """Row-normalised weights from log-weights ``[G, K]``; a row with every weight 0 becomes uniform."""
    finite = torch.isfinite(logw).any(-1, keepdim=True)
    lw = torch.where(finite, logw, torch.zeros_like(logw))
    lw = torch.where(torch.isnan(lw), torch.full_like(lw, -math.inf), lw)
    return torch.softmax(lw, -1)


@dataclass
class SMCResult:
    """Output of :func:`smc_sample`: ``samples [G, L]`` (one per group), every final particle
    ``particles [G, K, L]`` with normalised ``weights [G, K]``, the per-group ``log_potential`` of the
    particles, and counts: ``resamples`` (resampling events over all groups), ``evaluations``
    (potential evaluations), ``ess`` (mean relative ESS before each evaluation's resampling)."""

    samples: Tensor
    particles: Tensor
    weights: Tensor
    log_potential: Tensor
    resamples: int = 0
    evaluations: int = 0
    ess: list[float] = field(default_factory=list)


def _expand(t: Tensor | None, k: int) -> Tensor | None:
    return None if t is None else t.repeat_interleave(k, 0)


@torch.no_grad()
def smc_sample(sampler, denoiser, log_potential: LogPotential, num_samples: int | None = None,
               length: int | None = None, *, particles: int = 8, x_fixed: Tensor | None = None,
               fixed: Tensor | None = None, ess_threshold: float = 0.5, every: int = 1,
               prediction: str = "argmax", anneal: bool = True, generator: torch.Generator | None = None, device=None,
               progress: Callable[[int, int], None] | None = None, stats: dict | None = None) -> SMCResult:
    """Sequential Monte Carlo over ``sampler``'s reverse steps, targeting ``q(x) e^{φ(x)} / Z``.

    ``num_samples`` outputs (or one per row of ``x_fixed``), each from its own group of
    ``particles`` particles. ``every``: evaluate intermediate potentials (and maybe resample) every
    that many steps (the final potential is always exact). ``ess_threshold`` in ``[0, 1]``: resample
    a group when its effective sample size falls below this share of ``particles`` (0: never, 1:
    always). ``prediction``: ``argmax`` or ``sample`` (a draw of ``p(x_0 | x_t)``) for the denoised
    prediction the intermediate potentials are computed on. ``anneal``: scale the intermediate
    potentials by ``1 - t`` (trust the prediction more as the noise falls; the weights stay exact
    because the final potential is the full ``φ(x_0)``) — without it a particle whose early
    prediction scored badly but whose end is good carries a huge weight ``e^{φ(x_0) - φ_k}``.
    """
    k = int(particles)
    if k < 1:
        raise ValueError(f"particles must be ≥ 1, got {particles}")
    if not 0.0 <= ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must be in [0, 1], got {ess_threshold}")
    if int(every) < 1:
        raise ValueError(f"every must be ≥ 1, got {every}")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {list(PREDICTIONS)}, got {prediction!r}")
    param = getattr(denoiser, "parameterization", "x0")
    sampler.check_parameterization(param)
    if x_fixed is not None:
        num_samples, length = x_fixed.shape
    if num_samples is None or length is None:
        raise ValueError("give num_samples and length, or x_fixed")
    g_count = int(num_samples)
    x, fixed = sampler.init(g_count * k, length, _expand(x_fixed, k), _expand(fixed, k), generator, device)
    rows = x.shape[0]
    use_cache = sampler.cache and getattr(denoiser, "time_independent", False)
    grid = sampler.times().to(x.device)
    n = len(grid) - 1
    state = sampler.begin(x, fixed)
    out: Tensor | None = None
    stale = torch.ones(rows, dtype=torch.bool, device=x.device)
    logw = torch.zeros(g_count, k, dtype=torch.float64, device=x.device)
    phi_prev = torch.zeros(g_count, k, dtype=torch.float64, device=x.device)
    nfe = taken = resamples = evaluations = 0
    ess_hist: list[float] = []
    for i in range(n):
        if sampler.finished(x, fixed, state):
            break
        t, s = sampler.step_times(i, grid, x, state)
        if not use_cache or out is None:
            out = sampler.call_denoiser(denoiser, x, t.float(), fixed)
            nfe += 1
        elif bool(stale.any()):
            idx = stale.nonzero()[:, 0]
            fresh = sampler.call_denoiser(denoiser, x[idx], t[idx].float(), fixed[idx] if fixed is not None else None)
            out = out.clone()
            out[idx] = fresh.to(out.dtype)
            nfe += 1
        if i % int(every) == 0 and k > 1:
            pred = denoised_prediction(sampler, out, param, x, t, fixed, prediction, generator)
            phi = log_potential(pred).to(x.device).double()
            if anneal:
                phi = phi * (1.0 - t.double().clamp(0.0, 1.0))
            phi = phi.view(g_count, k)
            phi = torch.nan_to_num(phi, nan=-INTERMEDIATE_CLIP).clamp(-INTERMEDIATE_CLIP, INTERMEDIATE_CLIP)
            logw = logw + (phi - phi_prev)
            phi_prev = phi
            evaluations += 1
            w = _normalise(logw)
            ess = 1.0 / (w * w).sum(-1)  # [G]
            ess_hist.append(float((ess / k).mean()))
            low = ess < ess_threshold * k - 1e-9 if ess_threshold < 1.0 else torch.ones_like(ess, dtype=torch.bool)
            if bool(low.any()):
                anc = systematic_resample(w, generator)  # [G, K]
                keep = torch.arange(k, device=x.device).expand(g_count, k)
                anc = torch.where(low[:, None], anc, keep)
                flat = (anc + torch.arange(g_count, device=x.device)[:, None] * k).reshape(-1)
                x, out, stale = x[flat], out[flat], stale[flat]
                if fixed is not None:
                    fixed = fixed[flat]
                state = {key: (v[flat] if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == rows else v)
                         for key, v in state.items()}
                phi_prev = phi_prev.gather(1, anc)
                # a resampled group restarts with equal weights: log of the mean weight, shared
                mean_lw = torch.logsumexp(logw, -1, keepdim=True) - math.log(k)
                logw = torch.where(low[:, None], mean_lw.expand(-1, k), logw.gather(1, anc))
                resamples += int(low.sum())
        new = sampler.step(out, param, x, t, s, fixed, generator, i, n, state)
        stale = (new != x).any(-1)
        x = new
        taken += 1
        if progress is not None:
            progress(i + 1, n)
    phi = log_potential(x).to(x.device).double().view(g_count, k)
    phi = torch.where(torch.isnan(phi), torch.full_like(phi, -math.inf), phi)
    logw = logw + (phi - phi_prev)  # phi_prev is finite: the telescoped weight is e^{φ(x_0)}
    w = _normalise(logw)
    pick = sample_categorical(w, generator)  # [G]
    parts = x.view(g_count, k, -1)
    samples = parts[torch.arange(g_count, device=x.device), pick]
    if stats is not None:
        stats["nfe"] = stats.get("nfe", 0) + nfe
        stats["steps"] = stats.get("steps", 0) + taken
        stats["resamples"] = stats.get("resamples", 0) + resamples
    return SMCResult(samples, parts, w, phi, resamples, evaluations, ess_hist)


@torch.no_grad()
def best_of_n(sampler, denoiser, reward: Callable[[Tensor], Tensor], num_samples: int | None = None,
              length: int | None = None, *, n: int = 8, x_fixed: Tensor | None = None,
              fixed: Tensor | None = None, generator: torch.Generator | None = None, device=None,
              progress: Callable[[int, int], None] | None = None, stats: dict | None = None
              ) -> tuple[Tensor, Tensor]:
    """``num_samples`` outputs, each the highest-reward of ``n`` draws of the sampler (the first of
    the draws on ties; NaN rewards lose). Returns ``(samples [G, L], rewards [G])``."""
    if int(n) < 1:
        raise ValueError(f"best-of-N needs N ≥ 1, got {n}")
    n = int(n)
    if x_fixed is not None:
        num_samples, length = x_fixed.shape
    if num_samples is None or length is None:
        raise ValueError("give num_samples and length, or x_fixed")
    g_count = int(num_samples)
    x = sampler.sample(denoiser, g_count * n if x_fixed is None else None, length, x_fixed=_expand(x_fixed, n),
                       fixed=_expand(fixed, n), generator=generator, device=device, progress=progress, stats=stats)
    r = torch.as_tensor(reward(x), dtype=torch.float64).reshape(g_count, n)
    r = torch.where(torch.isnan(r), torch.full_like(r, -math.inf), r)
    best = r.argmax(-1)  # first maximum
    idx = torch.arange(g_count)
    return x.view(g_count, n, -1)[idx, best.to(x.device)], r[idx, best]


def best_of_n_law(q: Tensor, r: Tensor, n: int) -> Tensor:
    """Exact law of best-of-``n`` from a sampler law ``q`` over states with rewards ``r`` (same
    order); ties between different states go to the first drawn, i.e. in proportion to ``q``."""
    q = torch.as_tensor(q, dtype=torch.float64)
    r = torch.as_tensor(r, dtype=torch.float64)
    le = (r[None, :] <= r[:, None]).double() @ q  # F(r_x)
    lt = (r[None, :] < r[:, None]).double() @ q  # F⁻(r_x)
    eq = le - lt
    out = torch.where(eq > 0, q / eq.clamp_min(1e-300) * (le.pow(n) - lt.pow(n)), torch.zeros_like(q))
    return out
