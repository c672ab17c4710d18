"""Reverse-process samplers. Every sampler

* takes any denoiser of the contract ``denoiser(x_t [B, L], t [B]) -> [B, L, N]`` with
  ``denoiser.parameterization in {"x0", "score"}``,
* draws categoricals in float64 with the given ``torch.Generator`` (same seed, same samples),
* honours fixed positions: ``fixed [B, L]`` (bool) positions hold ``x_fixed`` from the prior draw to
  the end and are never changed — the basis of infilling,
* is written as :meth:`Sampler.step_probs` (per-token transition probabilities of one reverse step)
  plus a shared loop, so tests can push exact distributions through the very same step code.

Samplers (``SAMPLERS``):

``euler``        Euler τ-leaping (Campbell et al. 2022; SEDD): ``p(y) = δ + Δt · R_t(x_t → y)`` with
                 the reverse rates ``R_t = σ(t) Q(y, x_t) s(y)``; negative mass clamped, renormalised.
``tweedie``      Tweedie τ-leaping (SEDD Thm 4.2): the exact per-token reverse marginal over the step.
``ancestral``    MD4/MDLM masked ancestral sampling with caching of the denoiser output when no token
                 changed (time-independent denoisers), uniform or cosine time grid.
``multinomial``  multinomial diffusion ancestral sampling over the ``T`` discrete steps (or a stride).

Euler and Tweedie end with the denoising step to ``t = 0`` (a Tweedie step to zero noise), so
``steps`` counts network evaluations. With a uniform process, clamping fixed tokens is exact only
when the denoiser conditions on them: a denoiser with ``accepts_fixed = True`` receives
``fixed=...``; for the absorbing process clamping is exact as it is (a clean token reveals itself).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .processes import Absorbing, NoiseLevel, Process, Uniform, _onehot, _upcast, sample_categorical
from .schedules import DiscreteSchedule

__all__ = [
    "Sampler",
    "EulerSampler",
    "TweedieSampler",
    "MaskedAncestralSampler",
    "MultinomialSampler",
    "SAMPLERS",
    "build_sampler",
    "sample",
    "time_grid",
]

Progress = Callable[[int, int], None]


def time_grid(steps: int, kind: str = "uniform", t_max: float = 1.0, dtype=torch.float64) -> Tensor:
    """Decreasing times ``t_0 = t_max > … > t_steps = 0``.

    ``uniform``: equal steps. ``cosine``: ``t_k = t_max · cos(π/2 · k/steps)`` — small steps near
    ``t = 1``, where few tokens are unmasked per step, growing towards ``t = 0`` (the MD4
    observation that gradually increasing the number of parallel predictions samples best).
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    k = torch.arange(steps + 1, dtype=dtype)
    if kind == "uniform":
        g = t_max * (1.0 - k / steps)
    elif kind == "cosine":
        g = t_max * torch.cos(0.5 * math.pi * k / steps)
    else:
        raise ValueError(f"unknown time grid {kind!r} (uniform | cosine)")
    g[-1] = 0.0
    return g


class Sampler:
    """Base class: time grid, prior draw, the loop, fixed positions, progress."""

    name = "sampler"

    def __init__(self, process: Process, schedule, steps: int = 128, grid: str = "uniform",
                 final: str = "sample", cache: bool = True) -> None:
        if final not in ("sample", "argmax"):
            raise ValueError(f"final must be 'sample' or 'argmax', got {final!r}")
        self.process = process
        self.schedule = schedule
        self.steps = int(steps)
        self.grid = grid
        self.final = final
        self.cache = bool(cache)
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {steps}")

    # -- pieces -------------------------------------------------------------------------------
    def times(self) -> Tensor:
        return time_grid(self.steps, self.grid)

    def prior_alpha1(self) -> float:
        one = torch.ones(1, dtype=torch.float64)
        a1 = self.schedule.alpha(one)
        return float(a1.reshape(-1)[0]) if not getattr(self.schedule, "state_dependent", False) else 0.0

    def prior_probs(self, device) -> Tensor:
        return self.process.prior_probs(self.prior_alpha1(), device=device)

    def step_probs(self, out: Tensor, parameterization: str, x_t: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """Per-token probabilities ``[B, L, N]`` of ``x_s`` given ``x_t`` and the denoiser output."""
        raise NotImplementedError

    def check_parameterization(self, parameterization: str) -> None:
        """Score outputs are ratios ``∝ α/(1-α)``: they carry no information where ``α(1) = 0``."""
        if parameterization not in ("x0", "score"):
            raise ValueError(f"unknown parameterization {parameterization!r} (x0 | score)")
        if parameterization == "score" and self.prior_alpha1() <= 0.0:
            raise ValueError(
                f"a score-parameterised denoiser needs a schedule with α(1) > 0 (finite σ̄(1)), e.g. "
                f"LogLinear(eps=1e-3) or Geometric; {self.schedule!r} reaches α(1) = 0")

    @staticmethod
    def call_denoiser(denoiser, x: Tensor, t: Tensor, fixed: Tensor | None) -> Tensor:
        """``denoiser(x, t)``, with the fixed positions for a denoiser that conditions on them
        (``accepts_fixed``)."""
        if fixed is not None and getattr(denoiser, "accepts_fixed", False):
            return denoiser(x, t, fixed=fixed)
        return denoiser(x, t)

    # -- the loop -----------------------------------------------------------------------------
    def init(self, num_samples: int | None, length: int | None, x_fixed: Tensor | None,
             fixed: Tensor | None, generator, device) -> tuple[Tensor, Tensor | None]:
        if x_fixed is not None:
            num_samples, length = x_fixed.shape
            device = x_fixed.device
        if num_samples is None or length is None:
            raise ValueError("give num_samples and length, or x_fixed")
        device = torch.device(device) if device is not None else torch.device("cpu")
        probs = self.prior_probs(device).expand(num_samples, length, self.process.vocab_size)
        x = sample_categorical(probs, generator)
        if fixed is not None:
            if x_fixed is None:
                raise ValueError("fixed positions need x_fixed (their tokens)")
            if fixed.shape != x.shape:
                raise ValueError(f"fixed has shape {tuple(fixed.shape)}, expected {tuple(x.shape)}")
            fixed = fixed.to(device=device, dtype=torch.bool)
            x = torch.where(fixed, x_fixed.to(device), x)
        return x, fixed

    @torch.no_grad()
    def sample(self, denoiser, num_samples: int | None = None, length: int | None = None, *,
               x_fixed: Tensor | None = None, fixed: Tensor | None = None,
               generator: torch.Generator | None = None, device=None,
               progress: Progress | None = None, stats: dict | None = None) -> Tensor:
        """Run the reverse process; returns ``x_0`` as ``LongTensor[B, L]``.

        ``progress(i, n)`` is called after each step (raise from it to cancel); ``stats`` (a dict)
        receives ``nfe`` (denoiser calls) and ``rows`` (sequences passed through the denoiser).
        With ``cache`` and a denoiser that declares ``time_independent = True``, a sequence whose
        tokens did not change since its last evaluation is not evaluated again (MDLM's caching):
        the network runs at most once per distinct state a sequence visits.
        """
        param = getattr(denoiser, "parameterization", "x0")
        self.check_parameterization(param)
        x, fixed = self.init(num_samples, length, x_fixed, fixed, generator, device)
        use_cache = self.cache and getattr(denoiser, "time_independent", False)
        grid = self.times().to(x.device)
        n = len(grid) - 1
        out: Tensor | None = None
        stale = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        nfe = rows = 0
        for i in range(n):
            t = grid[i].expand(x.shape[0])
            s = grid[i + 1].expand(x.shape[0])
            if not use_cache or out is None:
                out = self.call_denoiser(denoiser, x, t.float(), fixed)
                nfe, rows = nfe + 1, rows + x.shape[0]
            elif bool(stale.any()):
                idx = stale.nonzero()[:, 0]
                fresh = self.call_denoiser(denoiser, x[idx], t[idx].float(), fixed[idx] if fixed is not None else None)
                out = out.clone()
                out[idx] = fresh.to(out.dtype)
                nfe, rows = nfe + 1, rows + int(idx.numel())
            new = self.apply_step(self.step_probs(out, param, x, t, s), x, fixed, generator, last=(i == n - 1))
            stale = (new != x).any(-1)
            x = new
            if progress is not None:
                progress(i + 1, n)
        if stats is not None:
            stats["nfe"] = stats.get("nfe", 0) + nfe
            stats["rows"] = stats.get("rows", 0) + rows
        return x

    def apply_step(self, probs: Tensor, x: Tensor, fixed: Tensor | None, generator, last: bool) -> Tensor:
        if last and self.final == "argmax":
            new = probs.argmax(-1)
        else:
            new = sample_categorical(probs, generator)
        if fixed is not None:
            new = torch.where(fixed, x, new)
        return new

    def to_dict(self) -> dict:
        return {"name": self.name, "steps": self.steps, "grid": self.grid, "final": self.final, "cache": self.cache}


class TweedieSampler(Sampler):
    """Tweedie τ-leaping: ``p(x_s^i = y | x_t) = Σ_a p(x_0^i=a | x_t) q(x_s^i=y | x_t^i, a)``.

    With a score denoiser it uses SEDD's form ``(exp(-Δσ̄ Q) s)_y · exp(Δσ̄ Q)(y, x_t^i)``; both are
    the same step when the score and the mean are related by the contract (tested).
    """

    name = "tweedie"

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = NoiseLevel.at(self.schedule, t), NoiseLevel.at(self.schedule, s)
        if parameterization == "score":
            return self.process.tweedie_probs_score(x_t, _upcast(out), nt, ns)
        p0 = self.process.to_log_x0(_upcast(out), parameterization, x_t, nt).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)


class EulerSampler(TweedieSampler):
    """Euler τ-leaping with the rates at the start of each step; the last step denoises (Tweedie to 0)."""

    name = "euler"

    def step_probs(self, out, parameterization, x_t, t, s):
        if bool((s == 0).all()):
            return super().step_probs(out, parameterization, x_t, t, s)
        rates = self.process.reverse_rates(x_t, _upcast(out), parameterization, t, self.schedule)
        dt = (t - s).double()[:, None, None]
        probs = _onehot(x_t, self.process.vocab_size).double() + dt * rates
        probs = torch.nan_to_num(probs, nan=0.0, posinf=1e30).clamp_min(0.0)
        return probs / probs.sum(-1, keepdim=True)


class MaskedAncestralSampler(Sampler):
    """MD4/MDLM masked ancestral sampling (absorbing process, mean parameterisation).

    Each masked token is revealed over ``(s, t]`` with probability ``(α_s - α_t)/(1 - α_t)`` and
    then drawn from ``μ_θ(x_t)``; revealed tokens never change. Unless few steps are taken most steps
    reveal nothing in a given sequence, so the caching of :meth:`Sampler.sample` (time-independent
    denoisers) skips most network evaluations.
    """

    name = "ancestral"

    def __init__(self, process: Absorbing, schedule, steps: int = 128, grid: str = "cosine",
                 final: str = "sample", cache: bool = True) -> None:
        if not isinstance(process, Absorbing):
            raise ValueError("masked ancestral sampling needs the absorbing process")
        super().__init__(process, schedule, steps, grid, final, cache)

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = NoiseLevel.at(self.schedule, t), NoiseLevel.at(self.schedule, s)
        p0 = self.process.to_log_x0(_upcast(out), parameterization, x_t, nt).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)


class MultinomialSampler(Sampler):
    """Multinomial diffusion ancestral sampling: ``x_T ~ U``, then ``x_{j} ~ p_θ(x_j | x_k)``.

    ``steps = T`` walks every step; fewer steps use an even stride over ``0..T`` with the exact
    multi-step posterior ``q(x_j | x_k, x_0)`` (keep probability ``ᾱ_k/ᾱ_j``).
    """

    name = "multinomial"

    def __init__(self, process: Uniform, schedule: DiscreteSchedule, steps: int | None = None,
                 final: str = "sample") -> None:
        if not isinstance(process, Uniform) or not isinstance(schedule, DiscreteSchedule):
            raise ValueError("multinomial sampling needs the uniform process and a DiscreteSchedule")
        steps = schedule.num_steps if steps is None else min(int(steps), schedule.num_steps)
        super().__init__(process, schedule, steps, "uniform", final)

    def times(self):
        T = self.schedule.num_steps
        k = torch.round(torch.linspace(T, 0, self.steps + 1, dtype=torch.float64))
        return k / T

    def prior_alpha1(self):
        return 0.0

    def _noise(self, t: Tensor) -> NoiseLevel:
        return NoiseLevel.from_alpha(self.schedule.alpha_bar_at(self.schedule.step_of(t)))

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = self._noise(t), self._noise(s)
        p0 = self.process.to_log_x0(_upcast(out), parameterization, x_t, nt).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)


SAMPLERS = {
    "euler": EulerSampler,
    "tweedie": TweedieSampler,
    "ancestral": MaskedAncestralSampler,
    "multinomial": MultinomialSampler,
}


def build_sampler(name: str, process: Process, schedule, **kwargs) -> Sampler:
    """Sampler by name (see :data:`SAMPLERS`)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](process, schedule, **kwargs)


def sample(denoiser, process: Process, schedule, method: str = "tweedie", *,
           num_samples: int | None = None, length: int | None = None, steps: int = 128,
           x_fixed: Tensor | None = None, fixed: Tensor | None = None,
           generator: torch.Generator | None = None, device=None, progress: Progress | None = None,
           stats: dict | None = None, **kwargs) -> Tensor:
    """One-call sampling: ``sample(denoiser, process, schedule, "euler", num_samples=8, length=64)``."""
    sampler = build_sampler(method, process, schedule, steps=steps, **kwargs)
    return sampler.sample(denoiser, num_samples, length, x_fixed=x_fixed, fixed=fixed,
                          generator=generator, device=device, progress=progress, stats=stats)
