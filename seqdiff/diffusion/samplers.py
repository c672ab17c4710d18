"""Reverse-process samplers. Every sampler

* takes any denoiser of the contract ``denoiser(x_t [B, L], t [B]) -> [B, L, N]`` with
  ``denoiser.parameterization in {"x0", "score"}``,
* draws categoricals in float64 with the given ``torch.Generator`` (same seed, same samples),
* honours fixed positions: ``fixed [B, L]`` (bool) positions hold ``x_fixed`` from the prior draw to
  the end and are never changed — the basis of infilling,
* takes tempered draws: ``temperature``, ``top_k`` and ``top_p`` (nucleus) reshape the per-token
  clean-data distribution ``p(x_0^i | x_t)`` before it enters the step (defaults: no change),
* declares its options (:attr:`Sampler.OPTIONS`), so the CLI, the app and config validation are
  built from one place.

The per-token samplers are written as :meth:`Sampler.step_probs` (per-token transition
probabilities of one reverse step) plus a shared loop, so tests can push exact distributions through
the very same step code. For the absorbing process the loop takes an equivalent sparse route
(:meth:`Sampler.move_probs`): it first draws *which* masked positions leave the mask over the step
and then draws tokens only there — the same law (tested against ``step_probs``), without float64
work over the whole ``[B, L, N]`` tensor.

Samplers (``SAMPLERS``):

``euler``        Euler τ-leaping (Campbell et al. 2022; SEDD): ``p(y) = δ + Δt · R_t(x_t → y)`` with
                 the reverse rates ``R_t = σ(t) Q(y, x_t) s(y)``; negative mass clamped, renormalised.
``tweedie``      Tweedie τ-leaping (SEDD Thm 4.2): the exact per-token reverse marginal over the step.
``ancestral``    MD4/MDLM masked ancestral sampling with caching of the denoiser output when no token
                 changed (time-independent denoisers), uniform or cosine time grid.
``remdm``        ReMDM (Wang et al. 2025): masked ancestral sampling in which revealed tokens are
                 re-masked with probability ``σ_t`` (``cap``, ``rescale`` or a ``loop`` phase at fixed
                 noise), so late steps can correct early mistakes; ``eta = 0`` is ``ancestral``.
``confidence``   confidence-ordered parallel decoding (MaskGIT; LLaDA's low-confidence remasking;
                 Fast-dLLM's threshold): each step draws a token at every masked position and keeps the
                 ``k`` most confident, re-masking the rest. Biased by design (it prefers the modes).
``multinomial``  multinomial diffusion ancestral sampling over the ``T`` discrete steps (or a stride).

Euler and Tweedie end with the denoising step to ``t = 0`` (a Tweedie step to zero noise), so
``steps`` counts network evaluations. With a uniform process, clamping fixed tokens is exact only
when the denoiser conditions on them: a denoiser with ``accepts_fixed = True`` receives
``fixed=...``; for the absorbing process clamping is exact as it is (a clean token reveals itself).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from .options import (CONFIDENCES, COMMON_OPTIONS, MASKED_ONLY, SAMPLER_OPTIONS, SAMPLER_PROCESSES,
                      Option, build_sampler_options)
from .processes import NEG, Absorbing, NoiseLevel, Process, Uniform, _onehot, _rand, _upcast, sample_categorical
from .schedules import DiscreteSchedule

__all__ = [
    "Sampler",
    "EulerSampler",
    "TweedieSampler",
    "MaskedAncestralSampler",
    "RemaskingSampler",
    "ConfidenceSampler",
    "MultinomialSampler",
    "SAMPLERS",
    "Option",
    "build_sampler",
    "build_sampler_options",
    "MASKED_ONLY",
    "sample",
    "time_grid",
    "temper_log_probs",
    "CONFIDENCES",
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


def temper_log_probs(log_p: Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> Tensor:
    """Tempered, truncated, renormalised log-probabilities over the last dimension.

    In this order: ``p^{1/T}`` (``T = 0``: all mass on the argmax, the first on ties), keep the
    ``top_k`` most probable values (ties broken by index), keep the smallest set of most probable values whose mass reaches
    ``top_p`` (at least one). Removed values get :data:`NEG`. ``T = 1`` with no truncation returns
    ``log_p`` renormalised.
    """
    lp = log_p
    if temperature == 0.0:
        return torch.where(_onehot(lp.argmax(-1), lp.shape[-1]), 0.0, NEG).to(lp.dtype)
    if temperature != 1.0:
        lp = lp / temperature
    if top_k is not None and top_k < lp.shape[-1]:
        keep = torch.zeros_like(lp, dtype=torch.bool).scatter(-1, torch.topk(lp, top_k, dim=-1).indices, True)
        lp = lp.masked_fill(~keep, NEG)
    lp = torch.log_softmax(lp, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_lp, order = torch.sort(lp, dim=-1, descending=True)
        mass_before = torch.cumsum(sorted_lp.exp(), -1) - sorted_lp.exp()
        drop_sorted = mass_before >= top_p  # the first value is never dropped (mass before it is 0)
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        lp = torch.log_softmax(lp.masked_fill(drop, NEG), dim=-1)
    return lp


def _mask_fraction_time(schedule, frac: Tensor) -> Tensor:
    """The time ``t`` at which a position is masked with probability ``frac`` (``1 - α(t) = frac``),
    by bisection (float64, ``frac: [B]``); state-dependent schedules use the mean over tokens."""
    lo = torch.zeros_like(frac, dtype=torch.float64)
    hi = torch.ones_like(frac, dtype=torch.float64)
    target = frac.double()
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        oma = schedule.one_minus_alpha(mid)
        if oma.dim() > 1:
            oma = oma.mean(-1)
        below = oma < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


class Sampler:
    """Base class: time grid, prior draw, the loop, fixed positions, tempering, progress."""

    name = "sampler"
    #: the forward processes it reverses (declared in :data:`SAMPLER_PROCESSES`)
    processes: tuple[str, ...] = ("absorbing", "uniform")
    #: it needs a discrete-time schedule (multinomial diffusion) rather than a continuous one
    discrete_time: bool = False
    #: options under which its output law tends to ``p0`` as the steps grow, given the exact
    #: denoiser (a default that is biased by design, like confidence ordering, is switched off here);
    #: the registry's contract test checks every sampler this way against the exact oracle
    unbiased_options: dict[str, Any] = {}
    #: options every sampler takes (besides ``steps``); subclasses add theirs in ``EXTRA_OPTIONS``
    #: (both declared in :mod:`seqdiff.diffusion.options`, torch-free)
    COMMON_OPTIONS: dict[str, Option] = COMMON_OPTIONS
    EXTRA_OPTIONS: dict[str, Option] = {"grid": SAMPLER_OPTIONS["euler"]["grid"]}

    @classmethod
    def options(cls) -> dict[str, Option]:
        """Every option this sampler takes, with its default (``steps`` aside)."""
        return {**cls.COMMON_OPTIONS, **cls.EXTRA_OPTIONS}

    def __init__(self, process: Process, schedule, steps: int = 128, grid: str = "uniform",
                 final: str = "sample", cache: bool = True, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> None:
        if final not in ("sample", "argmax"):
            raise ValueError(f"final must be 'sample' or 'argmax', got {final!r}")
        self.process = process
        self.schedule = schedule
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be an integer ≥ 1, got {steps}")
        self.steps = int(steps)
        self.grid = grid
        self.final = final
        self.cache = bool(cache)
        if not (temperature >= 0.0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be ≥ 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be ≥ 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature = float(temperature)
        self.top_k = None if top_k is None else int(top_k)
        self.top_p = None if top_p is None else float(top_p)

    # -- pieces -------------------------------------------------------------------------------
    @property
    def tempered(self) -> bool:
        return self.temperature != 1.0 or self.top_k is not None or (self.top_p is not None and self.top_p < 1.0)

    def temper(self, log_p0: Tensor) -> Tensor:
        """The sampler's tempering applied to normalised log ``p(x_0 | x_t)`` (identity by default)."""
        if not self.tempered:
            return log_p0
        return temper_log_probs(log_p0, self.temperature, self.top_k, self.top_p)

    def times(self) -> Tensor:
        return time_grid(self.steps, self.grid)

    def prior_alpha1(self) -> float:
        one = torch.ones(1, dtype=torch.float64)
        a1 = self.schedule.alpha(one)
        return float(a1.reshape(-1)[0]) if not getattr(self.schedule, "state_dependent", False) else 0.0

    def prior_probs(self, device) -> Tensor:
        return self.process.prior_probs(self.prior_alpha1(), device=device)

    def noise(self, t: Tensor) -> NoiseLevel:
        return NoiseLevel.at(self.schedule, t)

    def log_x0(self, out: Tensor, parameterization: str, x_t: Tensor, t: Tensor) -> Tensor:
        """Tempered, normalised log ``p(x_0 | x_t)`` from a denoiser output of either kind."""
        return self.temper(self.process.to_log_x0(_upcast(out), parameterization, x_t, self.noise(t)))

    def step_probs(self, out: Tensor, parameterization: str, x_t: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """Per-token probabilities ``[B, L, N]`` of ``x_s`` given ``x_t`` and the denoiser output."""
        raise NotImplementedError

    def move_probs(self, out: Tensor, parameterization: str, x_t: Tensor, t: Tensor, s: Tensor
                   ) -> tuple[Tensor, Callable[[Tensor], Tensor]] | None:
        """Sparse form of an absorbing-process step, or ``None`` (then :meth:`step_probs` is used).

        Returns ``(p_move [B, L], token_logits)``: the probability that a masked position leaves the
        mask over the step, and a function mapping the flat indices of the positions that move to
        the log-weights ``[K, N]`` of their new token (mask excluded). The step's law is
        ``p_move · softmax(token_logits) + (1 - p_move) · δ_mask`` at masked positions.
        """
        return None

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

    def begin(self, x: Tensor, fixed: Tensor | None) -> dict:
        """Per-run state handed to :meth:`step` (none for the per-token samplers)."""
        return {}

    def finished(self, x: Tensor, fixed: Tensor | None, state: dict) -> bool:
        """Whether the loop may stop before the grid's end (e.g. nothing left to reveal)."""
        return False

    def step_times(self, i: int, grid: Tensor, x: Tensor, state: dict) -> tuple[Tensor, Tensor]:
        """``(t, s)`` of step ``i`` per sequence, float64 ``[B]``."""
        return grid[i].expand(x.shape[0]), grid[i + 1].expand(x.shape[0])

    @torch.no_grad()
    def sample(self, denoiser, num_samples: int | None = None, length: int | None = None, *,
               x_fixed: Tensor | None = None, fixed: Tensor | None = None,
               generator: torch.Generator | None = None, device=None,
               progress: Progress | None = None, stats: dict | None = None) -> Tensor:
        """Run the reverse process; returns ``x_0`` as ``LongTensor[B, L]``.

        ``progress(i, n)`` is called after each step (raise from it to cancel); ``stats`` (a dict)
        receives ``nfe`` (denoiser calls), ``rows`` (sequences passed through the denoiser) and
        ``steps`` (steps taken: fewer than the grid's when a sampler finishes early).
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
        state = self.begin(x, fixed)
        out: Tensor | None = None
        stale = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        nfe = rows = taken = 0
        for i in range(n):
            if self.finished(x, fixed, state):
                if progress is not None:
                    progress(n, n)
                break
            t, s = self.step_times(i, grid, x, state)
            if not use_cache or out is None:
                out = self.call_denoiser(denoiser, x, t.float(), fixed)
                nfe, rows = nfe + 1, rows + x.shape[0]
            elif bool(stale.any()):
                idx = stale.nonzero()[:, 0]
                fresh = self.call_denoiser(denoiser, x[idx], t[idx].float(), fixed[idx] if fixed is not None else None)
                out = out.clone()
                out[idx] = fresh.to(out.dtype)
                nfe, rows = nfe + 1, rows + int(idx.numel())
            new = self.step(out, param, x, t, s, fixed, generator, i, n, state)
            stale = (new != x).any(-1)
            x = new
            taken += 1
            if progress is not None:
                progress(i + 1, n)
        if stats is not None:
            stats["nfe"] = stats.get("nfe", 0) + nfe
            stats["rows"] = stats.get("rows", 0) + rows
            stats["steps"] = stats.get("steps", 0) + taken
        return x

    def step(self, out: Tensor, param: str, x: Tensor, t: Tensor, s: Tensor, fixed: Tensor | None,
             generator, i: int, n: int, state: dict) -> Tensor:
        """One reverse step: the sparse absorbing route when the sampler has one, else dense."""
        last = i == n - 1
        moved = self.move_probs(out, param, x, t, s) if isinstance(self.process, Absorbing) else None
        if moved is None:
            return self.apply_step(self.step_probs(out, param, x, t, s), x, fixed, generator, last)
        p_move, token_logits = moved
        mask = x == self.process.mask_id
        if fixed is not None:
            mask = mask & ~fixed
        u = _rand(tuple(x.shape), generator, x.device)
        moves = mask & (u < p_move)
        flat = moves.reshape(-1).nonzero()[:, 0]
        new = x.clone()
        if flat.numel():
            logits = token_logits(flat)
            if last and self.final == "argmax":
                tok = logits.argmax(-1)
            else:
                tok = sample_categorical(logits.double().exp(), generator)
            new.view(-1)[flat] = tok
        return new

    def apply_step(self, probs: Tensor, x: Tensor, fixed: Tensor | None, generator, last: bool) -> Tensor:
        if last and self.final == "argmax":
            new = probs.argmax(-1)
        else:
            new = sample_categorical(probs, generator)
        if fixed is not None:
            new = torch.where(fixed, x, new)
        return new

    def to_dict(self) -> dict:
        d = {"name": self.name, "steps": self.steps}
        for k in self.options():
            d[k] = self.option_value(k)
        return d

    def option_value(self, key: str) -> Any:
        """The value this sampler was built with for option ``key`` (as given, not derived)."""
        return getattr(self, key)

    # -- helpers for the sparse absorbing route ---------------------------------------------------
    def _rows_log_x0(self, out: Tensor, param: str, tempered: bool = True) -> Callable[[Tensor], Tensor]:
        """Flat masked-position indices → log ``p(x_0)`` over data tokens ``[K, N]`` (tempered by
        the sampler's settings unless ``tempered=False``).

        At a masked position both parameterisations give ``p(x_0 = a) ∝ exp(out_a)`` over the data
        tokens (a score differs from the mean by a per-sequence factor ``α/(1-α)`` there)."""
        n_tok = out.shape[-1]
        m = self.process.mask_id

        def rows(flat: Tensor) -> Tensor:
            r = _upcast(out.reshape(-1, n_tok)[flat]).float().clone()
            r[:, m] = NEG
            lp = torch.log_softmax(r, -1)
            return self.temper(lp) if tempered else lp

        return rows

    def _reveal_move(self, out: Tensor, param: str, x_t: Tensor, t: Tensor, s: Tensor):
        """The masked-posterior step in sparse form: leave the mask w.p. ``(α_s - α_t)/(1 - α_t)``
        towards the (tempered) ``p(x_0)`` — ancestral, and Tweedie with a mean."""
        nt, ns = self.noise(t), self.noise(s)
        stay = (ns.one_minus_alpha / nt.one_minus_alpha.clamp_min(1e-300)).clamp(0.0, 1.0)[:, :, 0]
        return (1.0 - stay).expand(x_t.shape), self._rows_log_x0(out, param)

    def _score_mass(self, out: Tensor) -> Tensor:
        """``Σ_{y ≠ mask} s(y)`` per position ``[B, L]`` (float64) from log scores."""
        data = _upcast(out).masked_fill(self.process._mask_col(out.device), NEG)
        return torch.logsumexp(data, -1).double().exp()

    def _state_independent(self) -> bool:
        return not getattr(self.schedule, "state_dependent", False)


class TweedieSampler(Sampler):
    """Tweedie τ-leaping: ``p(x_s^i = y | x_t) = Σ_a p(x_0^i=a | x_t) q(x_s^i=y | x_t^i, a)``.

    With a score denoiser it uses SEDD's form ``(exp(-Δσ̄ Q) s)_y · exp(Δσ̄ Q)(y, x_t^i)``; both are
    the same step when the score and the mean are related by the contract (tested). Tempered draws
    go through the mean form.
    """

    name = "tweedie"

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = self.noise(t), self.noise(s)
        if parameterization == "score" and not self.tempered:
            return self.process.tweedie_probs_score(x_t, _upcast(out), nt, ns)
        p0 = self.log_x0(out, parameterization, x_t, t).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)

    def move_probs(self, out, parameterization, x_t, t, s):
        if not self._state_independent():
            return None
        if parameterization == "score" and not self.tempered:
            # leave the mask w.p. min(1, (e^{Δσ̄} - 1) Σ_y s(y)), towards y ∝ s(y); all of it at s = 0
            nt, ns = self.noise(t), self.noise(s)
            em1 = ((nt.one_minus_alpha - ns.one_minus_alpha) / nt.alpha)[:, :, 0]
            p_move = (em1 * self._score_mass(out)).clamp(max=1.0)
            p_move = torch.where((ns.one_minus_alpha <= 0)[:, :, 0], torch.ones_like(p_move), p_move)
            return p_move, self._rows_log_x0(out, parameterization)
        return self._reveal_move(out, parameterization, x_t, t, s)


class EulerSampler(TweedieSampler):
    """Euler τ-leaping with the rates at the start of each step; the last step denoises (Tweedie to 0)."""

    name = "euler"

    def step_probs(self, out, parameterization, x_t, t, s):
        if bool((s == 0).all()):
            return super().step_probs(out, parameterization, x_t, t, s)
        if self.tempered:
            out, parameterization = self.log_x0(out, parameterization, x_t, t), "x0"
        rates = self.process.reverse_rates(x_t, _upcast(out), parameterization, t, self.schedule)
        dt = (t - s).double()[:, None, None]
        probs = _onehot(x_t, self.process.vocab_size).double() + dt * rates
        probs = torch.nan_to_num(probs, nan=0.0, posinf=1e30).clamp_min(0.0)
        return probs / probs.sum(-1, keepdim=True)

    def move_probs(self, out, parameterization, x_t, t, s):
        if bool((s == 0).all()):
            return super().move_probs(out, parameterization, x_t, t, s)
        if not self._state_independent():
            return None
        tt, dt = t.double(), (t - s).double()
        if parameterization == "score" and not self.tempered:
            # rates σ(t) s(y) towards y; leave the mask w.p. min(1, Δt σ(t) Σ_y s(y))
            total = (dt * self.schedule.sigma(tt))[:, None] * self._score_mass(out)
        else:
            # rates -α'/(1-α) p0(y): their sum is the weight itself
            total = (dt * self.schedule.loss_weight(tt))[:, None].expand(x_t.shape)
        p_move = torch.nan_to_num(total, nan=1.0, posinf=1.0).clamp(0.0, 1.0)
        return p_move, self._rows_log_x0(out, parameterization)


class MaskedAncestralSampler(Sampler):
    """MD4/MDLM masked ancestral sampling (absorbing process, mean parameterisation).

    Each masked token is revealed over ``(s, t]`` with probability ``(α_s - α_t)/(1 - α_t)`` and
    then drawn from ``μ_θ(x_t)``; revealed tokens never change. Unless few steps are taken most steps
    reveal nothing in a given sequence, so the caching of :meth:`Sampler.sample` (time-independent
    denoisers) skips most network evaluations.
    """

    processes = ("absorbing",)

    name = "ancestral"
    EXTRA_OPTIONS = SAMPLER_OPTIONS["ancestral"]

    def __init__(self, process: Absorbing, schedule, steps: int = 128, grid: str = "cosine",
                 final: str = "sample", cache: bool = True, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> None:
        if not isinstance(process, Absorbing):
            raise ValueError(f"{self.name} sampling needs the absorbing process")
        super().__init__(process, schedule, steps, grid, final, cache, temperature, top_k, top_p)

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = self.noise(t), self.noise(s)
        p0 = self.log_x0(out, parameterization, x_t, t).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)

    def move_probs(self, out, parameterization, x_t, t, s):
        return self._reveal_move(out, parameterization, x_t, t, s) if self._state_independent() else None


class RemaskingSampler(MaskedAncestralSampler):
    """ReMDM: masked ancestral sampling with remasking (Wang et al. 2025, "Remasking Discrete
    Diffusion Models with Inference-Time Scaling").

    With ``σ_t ∈ [0, σ_max]``, ``σ_max = min(1, (1 - α_s)/α_t)``, the step from ``t`` to ``s`` is

    * a revealed token stays with probability ``1 - σ_t`` and is re-masked with probability ``σ_t``;
    * a masked token is revealed as ``a`` with probability ``(α_s - (1 - σ_t) α_t)/(1 - α_t) · p0(a)``
      and stays masked otherwise.

    These keep the forward marginals ``q(x_s | x_0)`` of the masked process, so with the exact
    denoiser the law still converges to ``p0`` as steps grow (tested). ``remask``:
    ``cap``: ``σ_t = min(η, σ_max)``; ``rescale``: ``σ_t = η σ_max``; ``loop``: plain ancestral
    steps from ``t = 1`` to ``t_on``, then steps at the fixed noise level ``α(t_on)`` with
    ``σ = min(η, σ_max)`` for the share ``t_on - t_off`` of the grid (tokens are re-masked and
    re-revealed at an unchanged masked fraction), then ancestral steps from ``α(t_on)`` to clean.
    """

    name = "remdm"
    EXTRA_OPTIONS = SAMPLER_OPTIONS["remdm"]

    def __init__(self, process: Absorbing, schedule, steps: int = 128, grid: str = "uniform",
                 final: str = "sample", cache: bool = True, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, eta: float = 0.02,
                 remask: str = "cap", t_on: float = 0.55, t_off: float = 0.05) -> None:
        super().__init__(process, schedule, steps, grid, final, cache, temperature, top_k, top_p)
        if remask not in ("cap", "rescale", "loop"):
            raise ValueError(f"remask must be cap, rescale or loop, got {remask!r}")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        if remask == "loop" and not 0.0 < t_off < t_on < 1.0:
            raise ValueError(f"the loop needs 0 < t_off < t_on < 1, got t_off={t_off}, t_on={t_on}")
        self.eta, self.remask, self.t_on, self.t_off = float(eta), remask, float(t_on), float(t_off)

    def times(self) -> Tensor:
        u = time_grid(self.steps, self.grid)
        if self.remask != "loop":
            return u
        # the sampler's clock u → noise time: identity above t_on, held at t_on down to t_off, then
        # t_on · u / t_off to 0
        return torch.where(u >= self.t_on, u, torch.where(u >= self.t_off, torch.full_like(u, self.t_on),
                                                          self.t_on * u / self.t_off))

    def _sigma(self, nt: NoiseLevel, ns: NoiseLevel) -> Tensor:
        sigma_max = (ns.one_minus_alpha / nt.alpha.clamp_min(1e-300)).clamp(max=1.0)
        if self.remask == "rescale":
            return self.eta * sigma_max
        sigma = sigma_max.clamp(max=self.eta)
        if self.remask == "loop":
            in_loop = (nt.alpha == ns.alpha) & (nt.one_minus_alpha > 0)
            sigma = torch.where(in_loop, sigma, torch.zeros_like(sigma))
        return sigma

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = self.noise(t), self.noise(s)
        p0 = self.log_x0(out, parameterization, x_t, t).double().exp()
        sigma = self._sigma(nt, ns)
        m = self.process.mask_id
        reveal = ((ns.alpha - (1.0 - sigma) * nt.alpha) / nt.one_minus_alpha.clamp_min(1e-300)).clamp(0.0, 1.0)
        p0 = p0.masked_fill(self.process._mask_col(p0.device), 0.0)
        masked = p0 * reveal
        masked[..., m] = 1.0 - masked.sum(-1)
        kept = _onehot(x_t, p0.shape[-1]).double() * (1.0 - sigma)
        kept[..., m] = kept[..., m] + sigma[..., 0]
        return torch.where((x_t == m)[..., None], masked.clamp_min(0.0), kept)

    def move_probs(self, out, parameterization, x_t, t, s):
        return None  # re-masking moves revealed tokens too: the dense step


def _ranks(key: Tensor, descending: bool) -> Tensor:
    """The rank of each entry of ``key [B, L]`` within its row (0 = first in the order; ties to the
    leftmost: a stable sort)."""
    order = torch.sort(key, dim=-1, descending=descending, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(key.shape[-1], device=key.device).expand_as(order))
    return rank


def _one_per_group(flags: Tensor, conf: Tensor, allowed: Tensor) -> Tensor:
    """``bool [B, L]``: the flagged positions to re-draw. ``flags`` is ``bool`` (every flagged
    position its own fault) or a group number per position (``-1``: not flagged; a group is one
    fault, of which only the least confident allowed position — ``conf`` lowest, ties to the
    leftmost — is re-drawn)."""
    if flags.dtype == torch.bool:
        return flags & allowed
    sus = (flags >= 0) & allowed
    if not bool(sus.any()):
        return sus
    b, length = flags.shape
    groups = int(flags.max()) + 1
    key = torch.arange(b, device=flags.device)[:, None] * groups + flags.clamp_min(0)  # [B, L]: row·groups + group
    # each flagged position's rank by (confidence, position) in its row; keep the lowest of each group
    rank = _ranks(conf.masked_fill(~sus, math.inf), descending=False)
    best = torch.full((b * groups,), length, dtype=rank.dtype, device=flags.device)
    best.scatter_reduce_(0, key[sus], rank[sus], reduce="amin")
    return sus & (rank == best[key])


class ConfidenceSampler(Sampler):
    """Confidence-ordered parallel decoding for masked models (MaskGIT, Chang et al. 2022; LLaDA's
    low-confidence remasking, Nie et al. 2025; Fast-dLLM's threshold, Wu et al. 2025).

    At each step a token is drawn at every masked position from the (tempered) ``p(x_0^i | x_t)``;
    the ``k`` masked positions of highest confidence keep their draw and the rest stay masked.
    Confidence (from the untempered ``p(x_0^i | x_t)``): ``prob`` — probability of the drawn token;
    ``max`` — the largest probability; ``margin`` — largest minus second largest; ``entropy`` —
    negative entropy; ``random`` — a uniform random number (random order: with one token per step
    and temperature 1 the output law is exactly ``p0`` for the exact denoiser); ``left`` — the
    leftmost masked positions first (left-to-right order: exact too, one token per step).

    ``block`` (semi-autoregressive decoding, LLaDA): only positions in the leftmost block of
    ``block`` positions that still has a masked one may be revealed; ``k`` is then taken within it.

    ``polish`` (a Gibbs-style correction phase, in the spirit of ReMDM's confidence remasking): a
    fraction of the steps, ``P = round(polish · steps)``; the reveal schedule runs over
    ``steps - P`` steps; once a sequence is fully revealed, each remaining step (up to ``P``) re-masks the revealed, non-fixed position whose token had the
    lowest confidence when drawn (each position at most once) and re-draws it from
    ``p(x_0^i | all other tokens)`` — one network evaluation per re-drawn token. With the exact
    denoiser a re-draw is a single-site Gibbs update, which leaves ``p0`` invariant when the site
    is chosen independently of the tokens (``random``); choosing the least confident is biased
    towards correcting likely mistakes (the tests pin both). ``repair`` (with a ``suspects`` check set by the
    caller: the domain's validity check) makes the polish phase re-mask, in a fully revealed sequence,
    every token the check flags (least confident first, as many as steps and polish budget remain;
    flagged tokens may be re-drawn again; a check may report a fault as a group of tokens of which
    one must change — then only the group's least confident token is re-masked, and the check runs
    again on the next fully revealed sequence) before any least-confident re-draw; re-masked tokens are
    re-drawn one per step, most confident first, each from ``p(x_0^i | the rest)`` with the flagged
    token excluded (a flagged token must change). ``polish_temperature`` draws the
    re-drawn tokens at their own temperature (0: the most probable token given all the others — an
    iterated-conditional-modes move, biased towards the modes by design); by default they are drawn
    like every other token.

    ``k`` per sequence: after step ``j`` of ``n`` the number of positions still masked is
    ``⌊M · g(j/n)⌋``, ``M`` the sequence's masked positions at the start, ``g(u) = 1 - u``
    (``linear``) or ``cos(πu/2)`` (``cosine``); at least one is revealed per step. With a
    ``threshold`` every position whose confidence reaches it is revealed too (at least the
    schedule's count), so easy sequences finish in fewer network evaluations; the loop stops as
    soon as nothing is masked. Ties in confidence go to the leftmost position.

    The network sees the time at which a position is masked with the sequence's current masked
    fraction (``1 - α(t) = m/M``), so time-conditioned models get a consistent input.
    """

    name = "confidence"
    processes = ("absorbing",)
    unbiased_options = {"confidence": "random", "k_schedule": "linear"}
    EXTRA_OPTIONS = SAMPLER_OPTIONS["confidence"]

    def __init__(self, process: Absorbing, schedule, steps: int = 128, final: str = "sample",
                 cache: bool = True, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, confidence: str = "prob", k_schedule: str = "cosine",
                 threshold: float | None = None, noise: float = 0.0, block: int | None = None,
                 polish: float = 0.0, polish_temperature: float | None = None, repair: bool = False) -> None:
        if not isinstance(process, Absorbing):
            raise ValueError("confidence-ordered decoding needs the absorbing process")
        if not noise >= 0.0:
            raise ValueError(f"noise must be ≥ 0, got {noise}")
        if block is not None and int(block) < 1:
            raise ValueError(f"block must be ≥ 1, got {block}")
        self.order_noise = float(noise)  # not `self.noise`: that is the noise level method
        self.block = None if block is None else int(block)
        if not 0.0 <= float(polish) < 1.0:
            raise ValueError(f"polish is a fraction of the steps in [0, 1), got {polish}")
        self.polish = float(polish)
        self.polish_steps = min(int(round(self.polish * int(steps))), max(int(steps) - 1, 0))
        if polish_temperature is not None and not float(polish_temperature) >= 0.0:
            raise ValueError(f"polish_temperature must be ≥ 0, got {polish_temperature}")
        self.polish_temperature = None if polish_temperature is None else float(polish_temperature)
        self.repair = bool(repair)
        if self.repair and not self.polish_steps:
            raise ValueError("repair re-draws flagged tokens in the polish phase: give polish > 0 "
                             f"(polish={polish} at {steps} steps leaves no polish step)")
        #: ``suspects(x [B, L]) -> bool [B, L]`` (each flagged token its own fault) or ``long [B, L]``
        #: (a fault's group number, -1 = none): the tokens a validity check flags (set by the model
        #: layer from the domain, e.g. :func:`seqdiff.domains.smiles.smiles_suspects`; used by ``repair``)
        self.suspects: Callable[[Tensor], Tensor] | None = None
        super().__init__(process, schedule, steps, "uniform", final, cache, temperature, top_k, top_p)
        if confidence not in CONFIDENCES:
            raise ValueError(f"confidence must be one of {list(CONFIDENCES)}, got {confidence!r}")
        if k_schedule not in ("linear", "cosine"):
            raise ValueError(f"k_schedule must be linear or cosine, got {k_schedule!r}")
        self.confidence, self.k_schedule = confidence, k_schedule
        self.threshold = None if threshold is None else float(threshold)

    def remaining(self, m0: Tensor, j: int, n: int) -> Tensor:
        """How many positions may still be masked after step ``j`` (1-based) of ``n``."""
        u = j / n
        g = 1.0 - u if self.k_schedule == "linear" else math.cos(0.5 * math.pi * u)
        if j >= n:
            g = 0.0
        return torch.floor(m0.double() * g + 1e-9).long()

    def option_value(self, key: str) -> Any:
        return self.order_noise if key == "noise" else super().option_value(key)

    def _masked(self, x: Tensor, fixed: Tensor | None) -> Tensor:
        mask = x == self.process.mask_id
        return mask & ~fixed if fixed is not None else mask

    def begin(self, x, fixed):
        if self.repair and self.suspects is None:
            raise ValueError("repair needs the domain's syntax check (a model of a domain that has one, "
                             "e.g. SMILES); this sampler was given none")
        state = {"m0": self._masked(x, fixed).sum(-1)}
        if self.polish_steps:
            # confidence of each position's token when it was drawn (fixed positions: never re-drawn)
            state["conf"] = torch.full(x.shape, math.inf, dtype=torch.float64, device=x.device)
            state["done"] = torch.zeros(x.shape, dtype=torch.bool, device=x.device)  # re-drawn already
            state["redrawn"] = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return state

    def finished(self, x, fixed, state):
        return not bool(self._masked(x, fixed).any())

    def step_times(self, i, grid, x, state):
        m = (x == self.process.mask_id).sum(-1).double()
        frac = m / state["m0"].clamp_min(1).double()
        t = _mask_fraction_time(self.schedule, frac.clamp(0.0, 1.0)).to(x.device)
        return t, t

    def scores(self, lp: Tensor, tok: Tensor | None, generator) -> Tensor:
        """Confidence of each row ``[K]`` from untempered log-probabilities ``lp [K, N]``."""
        c = self.confidence
        if c == "prob":
            return lp.gather(-1, tok[:, None])[:, 0].exp().double()
        if c == "max":
            return lp.max(-1).values.exp().double()
        if c == "margin":
            top2 = torch.topk(lp, 2, dim=-1).values.exp().double()
            return top2[:, 0] - top2[:, 1]
        if c == "entropy":
            p = lp.exp().double()
            return (p * lp.double().clamp_min(NEG)).sum(-1)
        if c == "left":  # every position equally confident: ties go to the leftmost
            return torch.zeros(lp.shape[0], dtype=torch.float64, device=lp.device)
        return _rand((lp.shape[0],), generator, lp.device)

    def step(self, out, param, x, t, s, fixed, generator, i, n, state):
        mask = self._masked(x, fixed)
        b, length = x.shape
        flat = mask.reshape(-1).nonzero()[:, 0]
        if flat.numel() == 0:
            return x
        lp = self._rows_log_x0(out, param, tempered=False)(flat)  # confidence reads the model's own p
        banned = state.get("banned")
        if banned is not None:  # a repaired token is re-drawn from p(x_i | the rest, x_i ≠ the flagged token)
            ban = banned.view(-1)[flat]
            hit = (ban >= 0).nonzero()[:, 0]
            if hit.numel():
                lp = lp.clone()
                lp[hit, ban[hit]] = NEG
                lp[hit] = torch.log_softmax(lp[hit], dim=-1)
        draw_first = self.confidence == "prob"
        polishing = None  # the rows whose masked position is a polish re-draw (own temperature)
        if self.polish_steps and self.polish_temperature is not None:
            polishing = (state["redrawn"] > 0)[flat // length]
        tok = self._draw_rows(lp, polishing, generator, last=(i == n - 1)) if draw_first else None
        raw = self.scores(lp, tok, generator)
        conf = torch.full((b * length,), -math.inf, dtype=torch.float64, device=x.device)
        conf[flat] = self._noised(raw, i, n, generator) if self.order_noise > 0 else raw
        conf = conf.view(b, length)
        if self.block is not None:  # only the leftmost block that still has a masked position
            pos = torch.arange(length, device=x.device)
            first = torch.where(mask, pos, length).min(-1).values
            lo = (first // self.block) * self.block
            outside = (pos[None] < lo[:, None]) | (pos[None] >= lo[:, None] + self.block)
            conf = conf.masked_fill(outside, -math.inf)
            mask_in = mask & ~outside
        else:
            mask_in = mask
        m_now = mask.sum(-1)
        n_dec = n - self.polish_steps
        k = (m_now - self.remaining(state["m0"], min(i + 1, n_dec), n_dec)).clamp_min(1)
        if self.threshold is not None:
            above = torch.zeros(b * length, dtype=torch.bool, device=x.device)
            above[flat] = raw >= self.threshold
            k = torch.maximum(k, above.view(b, length).sum(-1))
        if self.polish_steps and i < n - 1:  # polish re-draws: one token per step (the last step reveals all)
            k = torch.where(state["redrawn"] > 0, k.clamp(max=1), k)
        k = torch.minimum(k, mask_in.sum(-1))
        # the k most confident masked positions per sequence; ties to the leftmost (stable sort)
        reveal = (_ranks(conf, descending=True) < k[:, None]) & mask
        new = x.clone()
        sel = reveal.reshape(-1)[flat]
        if draw_first:
            chosen = tok[sel]
        else:
            chosen = self._draw_rows(lp[sel], None if polishing is None else polishing[sel], generator,
                                     last=(i == n - 1))
        new.view(-1)[flat[sel]] = chosen
        if self.polish_steps:
            if banned is not None:
                banned.view(-1)[flat[sel]] = -1
            self._record_and_remask(new, fixed, flat[sel], raw[sel], i, n, state)
        return new

    def _record_and_remask(self, new: Tensor, fixed: Tensor | None, revealed: Tensor, conf: Tensor,
                           i: int, n: int, state: dict) -> None:
        """Keep the confidence of the tokens just drawn; then, in every fully revealed sequence with
        re-draws left (and a step after this one), re-mask its least confident revealed position."""
        rec = state["conf"]
        rec.view(-1)[revealed] = conf
        if i >= n - 1:
            return
        mask = new == self.process.mask_id
        ready = ~mask.any(-1) & (state["redrawn"] < self.polish_steps)
        if not bool(ready.any()):
            return
        if self.repair:  # flagged tokens first: all of them (as steps and budget allow), least confident first
            sus = _one_per_group(self.suspects(new).to(new.device), rec, ~mask if fixed is None else ~mask & ~fixed)
            cap = (self.polish_steps - state["redrawn"]).clamp(max=n - 1 - i)
            rank = _ranks(rec.masked_fill(~sus, math.inf), descending=False)
            pick = sus & (rank < cap[:, None]) & ready[:, None]
            if bool(pick.any()):
                if "banned" not in state:
                    state["banned"] = torch.full(new.shape, -1, dtype=torch.long, device=new.device)
                state["banned"][pick] = new[pick]
                new[pick] = self.process.mask_id
                state["done"] |= pick
                state["redrawn"] += pick.sum(-1)
                state["repaired"] = state.get("repaired", 0) + int(pick.sum())
                ready = ready & ~pick.any(-1)
        cand = rec.masked_fill(state["done"], math.inf)
        if fixed is not None:
            cand = cand.masked_fill(fixed, math.inf)
        site = cand.argmin(-1)  # ties to the leftmost
        ok = ready & torch.isfinite(cand.gather(-1, site[:, None])[:, 0])
        rows = ok.nonzero()[:, 0]
        new[rows, site[rows]] = self.process.mask_id
        state["done"][rows, site[rows]] = True
        state["redrawn"][rows] += 1

    def _noised(self, conf: Tensor, i: int, n: int, generator) -> Tensor:
        """``log conf + noise · (1 - i/n) · Gumbel`` (probability-like confidences on the log scale)."""
        base = conf.clamp_min(1e-300).log() if self.confidence in ("prob", "max", "margin") else conf
        u = _rand(tuple(conf.shape), generator, conf.device).clamp_(1e-300, 1.0)
        return base + self.order_noise * (1.0 - i / n) * -torch.log(-torch.log(u))

    def _draw_rows(self, lp: Tensor, polishing: Tensor | None, generator, last: bool) -> Tensor:
        """A token per row of ``lp [K, N]``; rows flagged in ``polishing`` at the polish temperature."""
        if polishing is None or not bool(polishing.any()):
            return self._draw(lp, generator, last=last)
        tok = torch.empty(lp.shape[0], dtype=torch.long, device=lp.device)
        if not bool(polishing.all()):
            tok[~polishing] = self._draw(lp[~polishing], generator, last=last)
        tok[polishing] = self._draw(lp[polishing], generator, last=False, polish=True)
        return tok

    def _draw(self, lp: Tensor, generator, last: bool, polish: bool = False) -> Tensor:
        if polish:  # a polish re-draw at its own temperature (the same truncation)
            tl = temper_log_probs(lp, self.polish_temperature, self.top_k, self.top_p)
            return tl.argmax(-1) if self.polish_temperature == 0.0 else sample_categorical(tl.double().exp(), generator)
        tl = self.temper(lp)
        if last and self.final == "argmax":
            return tl.argmax(-1)
        return sample_categorical(tl.double().exp(), generator)


class MultinomialSampler(Sampler):
    """Multinomial diffusion ancestral sampling: ``x_T ~ U``, then ``x_{j} ~ p_θ(x_j | x_k)``.

    ``steps = T`` walks every step; fewer steps use an even stride over ``0..T`` with the exact
    multi-step posterior ``q(x_j | x_k, x_0)`` (keep probability ``ᾱ_k/ᾱ_j``).
    """

    processes = ("uniform",)
    discrete_time = True

    name = "multinomial"
    EXTRA_OPTIONS = SAMPLER_OPTIONS["multinomial"]

    def __init__(self, process: Uniform, schedule: DiscreteSchedule, steps: int | None = None,
                 final: str = "sample", cache: bool = True, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None) -> None:
        if not isinstance(process, Uniform) or not isinstance(schedule, DiscreteSchedule):
            raise ValueError("multinomial sampling needs the uniform process and a DiscreteSchedule")
        steps = schedule.num_steps if steps is None else min(int(steps), schedule.num_steps)
        super().__init__(process, schedule, steps, "uniform", final, cache, temperature, top_k, top_p)

    def times(self):
        T = self.schedule.num_steps
        k = torch.round(torch.linspace(T, 0, self.steps + 1, dtype=torch.float64))
        return k / T

    def prior_alpha1(self):
        return 0.0

    def noise(self, t: Tensor) -> NoiseLevel:
        return NoiseLevel.from_alpha(self.schedule.alpha_bar_at(self.schedule.step_of(t)))

    def step_probs(self, out, parameterization, x_t, t, s):
        nt, ns = self.noise(t), self.noise(s)
        p0 = self.log_x0(out, parameterization, x_t, t).double().exp()
        return self.process.posterior_probs(x_t, p0, nt, ns)


SAMPLERS = {
    "euler": EulerSampler,
    "tweedie": TweedieSampler,
    "ancestral": MaskedAncestralSampler,
    "remdm": RemaskingSampler,
    "confidence": ConfidenceSampler,
    "multinomial": MultinomialSampler,
}

assert tuple(SAMPLERS) == tuple(SAMPLER_OPTIONS) and all(
    cls.name == n and cls.processes == SAMPLER_PROCESSES[n] and cls.options() == {**COMMON_OPTIONS, **SAMPLER_OPTIONS[n]}
    for n, cls in SAMPLERS.items()), "the samplers disagree with their declarations in seqdiff.diffusion.options"


def build_sampler(name: str, process: Process, schedule, **kwargs) -> Sampler:
    """Sampler by name (see :data:`SAMPLERS`) with options checked by :func:`build_sampler_options`."""
    checked = build_sampler_options(name, kwargs)
    return SAMPLERS[name](process, schedule, **checked)


def sample(denoiser, process: Process, schedule, method: str = "tweedie", *,
           num_samples: int | None = None, length: int | None = None, steps: int = 128,
           x_fixed: Tensor | None = None, fixed: Tensor | None = None,
           generator: torch.Generator | None = None, device=None, progress: Progress | None = None,
           stats: dict | None = None, **kwargs) -> Tensor:
    """One-call sampling: ``sample(denoiser, process, schedule, "euler", num_samples=8, length=64)``."""
    sampler = build_sampler(method, process, schedule, steps=steps, **kwargs)
    return sampler.sample(denoiser, num_samples, length, x_fixed=x_fixed, fixed=fixed,
                          generator=generator, device=device, progress=progress, stats=stats)
