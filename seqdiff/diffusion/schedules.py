"""Noise schedules for factorised forward CTMCs.

Every schedule is written in both of its usual forms and they are kept consistent:

* the *keep probability* ``α(t)`` (MD4, Shi et al. 2024): the probability that a token is still
  its clean value at time ``t`` under the absorbing process, ``α(0) = 1``, ``α`` decreasing;
* the *total noise* ``σ̄(t) = ∫_0^t σ(s) ds`` and the *rate* ``σ(t)`` (SEDD, Lou et al. 2024),
  related by ``α(t) = exp(-σ̄(t))`` and ``σ(t) = -α'(t) / α(t)``.

For the uniform process ``α(t)`` is the weight of the identity in ``q_t = α I + (1-α) 11ᵀ/N``,
again ``exp(-σ̄(t))``. All schedules have ``σ̄(0) = 0`` exactly, so the ELBO bounds the likelihood
of the clean data (SEDD's geometric schedule starts at σ_min; ours is shifted down by σ_min).

Schedules compute in the dtype of ``t``; the losses and samplers call them in float64.
``one_minus_alpha`` is given in closed form where it avoids cancellation near ``t = 0``.

GenMD4's state-dependent schedule (:class:`PerTokenPolynomial`) returns one keep probability per
clean-token value: ``α(t)`` has shape ``[B, N]`` instead of ``[B]``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

__all__ = [
    "Schedule",
    "LogLinear",
    "Geometric",
    "Linear",
    "Cosine",
    "Polynomial",
    "PerTokenPolynomial",
    "DiscreteSchedule",
    "build_schedule",
    "SCHEDULES",
]


class Schedule(ABC):
    """A continuous-time noise schedule on ``t ∈ [0, 1]``.

    Subclasses implement :meth:`alpha` and :meth:`alpha_prime`; the σ-form follows from them.
    """

    #: True when ``α`` depends on the clean token's value (GenMD4); then ``α(t)`` is ``[B, N]``.
    state_dependent: bool = False
    name: str = "schedule"

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Keep probability ``α(t) = exp(-σ̄(t))``; shape of ``t`` (or ``[*t.shape, N]``)."""

    @abstractmethod
    def alpha_prime(self, t: Tensor) -> Tensor:
        """Time derivative ``dα/dt`` (≤ 0)."""

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        """``1 - α(t)``; overridden where a closed form avoids cancellation."""
        return 1.0 - self.alpha(t)

    def sigma_bar(self, t: Tensor) -> Tensor:
        """Total noise ``σ̄(t) = -log α(t) = -log1p(-(1-α))`` (``+inf`` where ``α = 0``)."""
        return -torch.log1p(-self.one_minus_alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        """Noise rate ``σ(t) = dσ̄/dt = -α'(t)/α(t)``."""
        return -self.alpha_prime(t) / self.alpha(t)

    def loss_weight(self, t: Tensor) -> Tensor:
        """MD4 weight ``-α'(t) / (1 - α(t))`` (≥ 0), finite at ``t = 1`` for α-form schedules."""
        return -self.alpha_prime(t) / self.one_minus_alpha(t)

    def alpha_at(self, x0: Tensor, t: Tensor) -> Tensor:
        """Keep probability of each position: ``[B, L]`` for ``x0: [B, L]`` and ``t: [B]``.

        For scalar schedules this is ``α(t)`` broadcast over positions; for state-dependent ones
        it is ``α(t)[x0]``.
        """
        a = self.alpha(t)
        if not self.state_dependent:
            return a[:, None].expand(x0.shape)
        return torch.gather(a, 1, x0.clamp(0, a.shape[-1] - 1))

    def to_dict(self) -> dict:
        """Serialisable description; :func:`build_schedule` inverts it."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({args})"


class LogLinear(Schedule):
    """SEDD's log-linear schedule: ``σ̄(t) = -log(1 - (1-ε) t)``, i.e. ``α(t) = 1 - (1-ε) t``.

    With ``ε = 0`` this is MD4's linear schedule. ``ε > 0`` keeps ``σ̄(1) = -log ε`` finite, which
    score-parameterised models need (their output is scaled by ``1/(e^σ̄ - 1)``).
    """

    name = "loglinear"

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"LogLinear eps must be in [0, 1), got {eps}")
        self.eps = float(eps)

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return (1.0 - self.eps) * t

    def sigma_bar(self, t: Tensor) -> Tensor:
        return -torch.log1p(-(1.0 - self.eps) * t)

    def to_dict(self) -> dict:
        return {"name": self.name, "eps": self.eps}


class Geometric(Schedule):
    """SEDD's geometric schedule, shifted to start at zero noise.

    ``σ̄(t) = σ_min^{1-t} σ_max^t - σ_min``, ``σ(t) = (σ̄(t) + σ_min) log(σ_max/σ_min)``.
    Used by SEDD for the uniform process. ``α(1) = exp(-(σ_max - σ_min))``.
    """

    name = "geometric"

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0) -> None:
        if not 0.0 < sigma_min < sigma_max:
            raise ValueError(f"Geometric needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def _raw(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(self._log_ratio * t)

    def sigma_bar(self, t: Tensor) -> Tensor:
        return self._raw(t) - self.sigma_min

    def sigma(self, t: Tensor) -> Tensor:
        return self._raw(t) * self._log_ratio

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-self.sigma_bar(t))

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -self.sigma(t) * self.alpha(t)

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return -torch.expm1(-self.sigma_bar(t))

    def to_dict(self) -> dict:
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class Linear(Schedule):
    """MD4 linear schedule ``α(t) = 1 - t`` (equal to :class:`LogLinear` with ``ε = 0``)."""

    name = "linear"

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return t.clone()


class Cosine(Schedule):
    """MD4 cosine schedule ``α(t) = 1 - cos(π/2 · (1 - t)) = 1 - sin(π t / 2)``."""

    name = "cosine"

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - torch.sin(0.5 * math.pi * t)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)


class Polynomial(Schedule):
    """MD4 polynomial schedule ``α(t) = 1 - t^w`` (``w = 1`` is linear)."""

    name = "polynomial"

    def __init__(self, exponent: float = 1.0) -> None:
        if exponent <= 0:
            raise ValueError(f"Polynomial exponent must be > 0, got {exponent}")
        self.exponent = float(exponent)

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t.pow(self.exponent)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -self.exponent * t.pow(self.exponent - 1.0)

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return t.pow(self.exponent)

    def to_dict(self) -> dict:
        return {"name": self.name, "exponent": self.exponent}


class PerTokenPolynomial(nn.Module, Schedule):
    """GenMD4's state-dependent schedule ``α_{t,a} = 1 - t^{w_a}`` with a learnable ``w > 0``.

    ``w`` is stored as ``log w`` (one entry per state of the absorbing process; the mask state's
    entry is never used, since the mask is not a clean value, and receives no gradient). ``alpha(t)`` has shape ``[*t.shape, N]``. Its gradient through
    the discrete masking draw is estimated with RLOO (:class:`~seqdiff.diffusion.losses.GenMD4Loss`).
    """

    name = "genmd4"
    state_dependent = True

    def __init__(self, vocab_size: int, mask_id: int, init_exponent: float = 1.0) -> None:
        nn.Module.__init__(self)
        if init_exponent <= 0:
            raise ValueError(f"init_exponent must be > 0, got {init_exponent}")
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.log_w = nn.Parameter(torch.full((vocab_size,), math.log(init_exponent)))
        self.init_exponent = float(init_exponent)

    @property
    def w(self) -> Tensor:
        """Per-state exponents ``w_a`` (``[N]``)."""
        return self.log_w.exp()

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - self.one_minus_alpha(t)

    def one_minus_alpha(self, t: Tensor) -> Tensor:
        return t[..., None].clamp_min(0).pow(self.w.to(t.dtype))

    def alpha_prime(self, t: Tensor) -> Tensor:
        w = self.w.to(t.dtype)
        return -w * t[..., None].pow(w - 1.0)

    def to_dict(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab_size, "mask_id": self.mask_id,
                "init_exponent": self.init_exponent}

    def __repr__(self) -> str:  # nn.Module's repr would hide the schedule parameters
        return f"PerTokenPolynomial(vocab_size={self.vocab_size}, mask_id={self.mask_id})"


class DiscreteSchedule:
    """Discrete-time schedule of multinomial diffusion (Hoogeboom et al. 2021) with ``T`` steps.

    One step keeps a token with probability ``1 - β_k`` and otherwise resamples it uniformly:
    ``q(x_k | x_{k-1}) = (1-β_k) δ + β_k/N``. Hence ``q(x_k | x_0) = ᾱ_k δ + (1-ᾱ_k)/N`` with
    ``ᾱ_k = ∏_{j≤k} (1 - β_j)`` and ``ᾱ_0 = 1``.

    ``kind="cosine"`` uses ``ᾱ_k = f(k)/f(0)``, ``f(k) = cos²(π/2 · (k/T + s)/(1 + s))``,
    ``s = 0.008`` (Nichol & Dhariwal, as in the multinomial diffusion paper), with per-step keep
    probabilities clipped to ``[1e-3, 1]`` and ``ᾱ`` recomputed as their product;
    ``kind="linear"`` uses ``ᾱ_k = 1 - k/T`` (last step clipped the same way).
    Continuous time ``t = k/T`` is what a denoiser receives.
    """

    name = "discrete"

    def __init__(self, num_steps: int = 1000, kind: str = "cosine", s: float = 0.008) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps must be ≥ 1, got {num_steps}")
        if kind not in ("cosine", "linear"):
            raise ValueError(f"unknown discrete schedule kind {kind!r} (cosine | linear)")
        self.num_steps = int(num_steps)
        self.kind = kind
        self.s = float(s)
        k = torch.arange(num_steps + 1, dtype=torch.float64)
        if kind == "cosine":
            f = torch.cos((k / num_steps + s) / (1 + s) * math.pi / 2) ** 2
            abar = f / f[0]
        else:
            abar = 1.0 - k / num_steps
        step = (abar[1:] / abar[:-1].clamp_min(1e-300)).clamp(1e-3, 1.0)
        #: per-step keep probabilities ``1 - β_k`` for k = 1..T (index k-1)
        self.step_keep = step
        #: cumulative keep probabilities ``ᾱ_k`` for k = 0..T
        self.alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(step, 0)])

    @property
    def betas(self) -> Tensor:
        """``β_k`` for k = 1..T."""
        return 1.0 - self.step_keep

    def alpha_bar_at(self, k: Tensor) -> Tensor:
        """``ᾱ_k`` for integer steps ``k`` (any shape), float64 on ``k``'s device."""
        return self.alpha_bar.to(k.device)[k.long()]

    def time(self, k: Tensor) -> Tensor:
        """Continuous time ``k/T`` fed to denoisers."""
        return k.double() / self.num_steps

    def step_of(self, t: Tensor) -> Tensor:
        """Inverse of :meth:`time` (rounded)."""
        return torch.round(t.double() * self.num_steps).long()

    def to_dict(self) -> dict:
        return {"name": self.name, "num_steps": self.num_steps, "kind": self.kind, "s": self.s}

    def __repr__(self) -> str:
        return f"DiscreteSchedule(num_steps={self.num_steps}, kind={self.kind!r})"


SCHEDULES = {
    "loglinear": LogLinear,
    "geometric": Geometric,
    "linear": Linear,
    "cosine": Cosine,
    "polynomial": Polynomial,
    "genmd4": PerTokenPolynomial,
    "discrete": DiscreteSchedule,
}


def build_schedule(spec: dict | str, **overrides) -> Schedule | DiscreteSchedule:
    """Build a schedule from a name or a ``{"name": ..., **kwargs}`` dict (see :data:`SCHEDULES`)."""
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = {**spec, **overrides}
    name = spec.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[name](**spec)
    except TypeError as e:
        raise ValueError(f"bad arguments for schedule {name!r}: {e}") from None
