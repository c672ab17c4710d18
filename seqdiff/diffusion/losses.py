"""Diffusion losses, each a per-sequence negative ELBO in nats (so each doubles as a likelihood bound).

* :class:`ScoreEntropyLoss` — SEDD's diffusion-weighted denoising score entropy (DWDSE,
  Lou et al. 2024, Thm 3.6), absorbing or uniform process, score or mean parameterisation:

  ``-log p(x_0) ≤ ∫_0^1 E_{x_t} Σ_i Σ_{y ≠ x_t^i} σ(t) Q(y, x_t^i) [s_i(y) - r_i(y) log s_i(y) + K(r_i(y))] dt
  + KL(q_1(·|x_0) ‖ prior)``, with ``r_i(y) = q_t(y|x_0^i)/q_t(x_t^i|x_0^i)`` and
  ``K(r) = r(log r - 1)`` — the constant that makes each bracket a Bregman divergence ``≥ 0``.

* :class:`MaskedDiffusionLoss` — MD4/MDLM's continuous-time ELBO as a weighted cross-entropy
  (Shi et al. 2024): ``∫_0^1 -α'_t/(1-α_t) E_{x_t} Σ_{i: x_t^i = m} -log μ_θ(x_t, t)_i[x_0^i] dt``,
  for any α schedule.
* :class:`GenMD4Loss` — the state-dependent version (GenMD4):
  ``∫ Σ_{i: x_t^i=m} (α'_t/(1-α_t))ᵀ (x_0 - μ + x_0 x_0ᵀ log μ) dt`` with ``α_{t,a} = 1 - t^{w_a}``,
  plus the RLOO estimator for the gradient with respect to ``w`` through the masking draw.
* :class:`MultinomialLoss` — multinomial diffusion (Hoogeboom et al. 2021), discrete time, ``T``
  steps: ``KL(q(x_T|x_0) ‖ U) + Σ_{k≥2} E KL(q(x_{k-1}|x_k,x_0) ‖ p_θ(x_{k-1}|x_k)) - E log p_θ(x_0|x_1)``.

Every loss has the same call: ``loss(denoiser, x0, t=None, generator=None, loss_mask=None)``
returns a one-sample unbiased estimate of the negative ELBO per sequence (``[B]``, nats), and
:meth:`DiffusionLoss.integrand` evaluates the time-``t`` term for a given ``x_t`` so exact
expectations can be computed by enumeration. ``loss_mask [B, L]`` marks the positions that are
diffused and scored (``False`` = padding or fixed context: kept clean, contributes nothing).
All arithmetic is fp32/fp64 even when the denoiser ran under bf16 autocast.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .processes import Absorbing, NoiseLevel, Process, Uniform, _onehot, _rand, _upcast
from .schedules import DiscreteSchedule, Schedule

__all__ = [
    "DiffusionLoss",
    "ScoreEntropyLoss",
    "MaskedDiffusionLoss",
    "GenMD4Loss",
    "MultinomialLoss",
    "build_loss",
    "LOSSES",
    "T_MIN",
]

#: Continuous times are kept in ``[T_MIN, 1 - T_MIN]`` when drawn, so weights stay finite.
T_MIN = 1e-6

Denoiser = Callable[[Tensor, Tensor], Tensor]


def _parameterization(denoiser) -> str:
    return getattr(denoiser, "parameterization", "x0")


def _xlogx_minus_x(r: Tensor) -> Tensor:
    """``K(r) = r log r - r`` (with ``K(0) = 0``)."""
    return torch.xlogy(r, r) - r


class DiffusionLoss(ABC):
    """Common interface: time sampling, corruption, integrand, prior term."""

    #: False for discrete-time losses (``t = k/T``)
    continuous: bool = True

    def __init__(self, process: Process, schedule) -> None:
        self.process = process
        self.schedule = schedule

    # -- time ---------------------------------------------------------------------------------
    def sample_t(self, batch: int, generator: torch.Generator | None = None, device=None,
                 stratified: bool = True) -> Tensor:
        """Times for a batch: stratified over the batch (``(u + i/B) mod 1``) or i.i.d. uniform."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        if stratified:
            u0 = _rand((1,), generator, device)
            u = torch.remainder(u0 + torch.arange(batch, device=device, dtype=torch.float64) / batch, 1.0)
        else:
            u = _rand((batch,), generator, device)
        return u.clamp(T_MIN, 1.0 - T_MIN).float()

    # -- forward process ----------------------------------------------------------------------
    def keep_prob(self, x0: Tensor, t: Tensor) -> Tensor:
        """Per-position keep probability ``[B, L]`` at times ``t``."""
        return self.schedule.alpha_at(x0, t.double())

    def corrupt(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None,
                loss_mask: Tensor | None = None) -> Tensor:
        """Draw ``x_t ~ q_t(· | x0)``; positions outside ``loss_mask`` stay clean."""
        x0c = self._clamp(x0)
        xt = self.process.sample_xt(x0c, self.keep_prob(x0c, t).detach(), generator)
        if loss_mask is not None:
            xt = torch.where(loss_mask, xt, x0)
        return xt

    def _clamp(self, x: Tensor) -> Tensor:
        return x.clamp(0, self.process.vocab_size - 1)

    def _prepare(self, x0: Tensor, x_t: Tensor, loss_mask: Tensor | None):
        if loss_mask is None:
            loss_mask = torch.ones_like(x0, dtype=torch.bool)
        return self._clamp(x0), self._clamp(x_t), loss_mask

    # -- ELBO pieces --------------------------------------------------------------------------
    @abstractmethod
    def integrand(self, out: Tensor, parameterization: str, x0: Tensor, x_t: Tensor, t: Tensor,
                  loss_mask: Tensor | None = None) -> Tensor:
        """Time-``t`` term of the negative ELBO for one ``x_t`` per sequence: ``[B]`` nats.

        For continuous losses ``E_{t~U(0,1)} E_{x_t} integrand + prior_term`` is the bound.
        """

    def prior_term(self, x0: Tensor, loss_mask: Tensor | None = None) -> Tensor:
        """``Σ_i KL(q_1(·|x_0^i) ‖ prior)`` per sequence (nats)."""
        x0c = self._clamp(x0)
        one = torch.ones(x0.shape[0], dtype=torch.float64, device=x0.device)
        a1 = self.schedule.alpha_at(x0c, one).detach()
        kl = self.process.prior_kl(x0c, a1)
        if loss_mask is not None:
            kl = kl * loss_mask
        return kl.sum(-1)

    def __call__(self, denoiser: Denoiser, x0: Tensor, t: Tensor | None = None,
                 generator: torch.Generator | None = None, loss_mask: Tensor | None = None) -> Tensor:
        """One-sample unbiased estimate of the negative ELBO per sequence, ``[B]`` nats."""
        if t is None:
            t = self.sample_t(x0.shape[0], generator, x0.device)
        x_t = self.corrupt(x0, t, generator, loss_mask)
        out = denoiser(x_t, t)
        return self.integrand(out, _parameterization(denoiser), x0, x_t, t, loss_mask) + \
            self.prior_term(x0, loss_mask)

    def training_loss(self, denoiser: Denoiser, x0: Tensor, generator: torch.Generator | None = None,
                      loss_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(objective, nats)`` per sequence; backpropagate ``objective``, log ``nats``."""
        nats = self(denoiser, x0, None, generator, loss_mask)
        return nats, nats.detach()

    def to_dict(self) -> dict:
        return {"name": self.name}


class ScoreEntropyLoss(DiffusionLoss):
    """SEDD's DWDSE with the constant ``K`` (the value is a negative ELBO, ``≥ 0``)."""

    name = "score_entropy"

    def __init__(self, process: Process, schedule: Schedule) -> None:
        if getattr(schedule, "state_dependent", False):
            raise ValueError("score entropy is implemented for scalar schedules; use GenMD4Loss")
        if isinstance(schedule, DiscreteSchedule):
            raise ValueError("score entropy is a continuous-time loss; got a discrete schedule")
        super().__init__(process, schedule)

    def integrand(self, out, parameterization, x0, x_t, t, loss_mask=None):
        x0c, xtc, lm = self._prepare(x0, x_t, loss_mask)
        # t = 0 exactly: an x0 output cannot carry the score of clean data (q_0(x_t|a) = 0 for
        # a ≠ x_t), so the integrand there is its value at T_MIN (a single time has measure 0)
        tt = t.double().clamp_min(T_MIN)
        noise = NoiseLevel.at(self.schedule, tt)
        out = _upcast(out)
        if isinstance(self.process, Absorbing):
            m = self.process.mask_id
            masked = (xtc == m) & lm
            # With r = α/(1-α) (the only y with r(y) > 0 is x_0) and σ r = w = -α'/(1-α):
            #   σ Σ_{y≠m} s(y) - w log s(x_0) + w (log r - 1) = w [Σ_y e^{ρ(y)} - ρ(x_0) - 1],
            # ρ = log s - log r (= log p(x_0 | x_t) for a mean output) — finite at t = 1 where
            # α = 0 makes σ, log r and log s infinite separately.
            w = self.schedule.loss_weight(tt)[:, None]
            if parameterization == "x0":
                rho = self.process.clean_log_x0(out, xtc).double()
            else:
                log_r = (torch.log(self.schedule.alpha(tt)) - torch.log(self.schedule.one_minus_alpha(tt)))
                rho = out.double() - log_r[:, None, None]
            rho_data = rho.clone()
            rho_data[..., m] = -math.inf
            rho_x0 = torch.gather(rho, -1, x0c[..., None])[..., 0]
            term = w * (torch.logsumexp(rho_data, -1).exp() - rho_x0 - 1.0)
            return torch.where(masked, term, torch.zeros_like(term)).sum(-1).to(out.dtype)
        log_s = self.process.to_log_score(out, parameterization, xtc, noise).to(out.dtype)
        if isinstance(self.process, Uniform):
            n = self.process.vocab_size
            a = noise.alpha[:, :, 0]
            u = noise.one_minus_alpha[:, :, 0] / n
            log_s = log_s.masked_fill(_onehot(xtc, n), 0.0).double()
            sum_s = log_s.exp().sum(-1) - 1.0  # Σ_{y≠x_t} s(y)
            sum_ls = log_s.sum(-1)  # Σ_{y≠x_t} log s(y)  (log s(x_t) = 0)
            ls_a = torch.gather(log_s, -1, x0c[..., None])[..., 0]
            same = xtc == x0c
            rho = u / (a + u)  # r(y) for every y ≠ x_t when x_t = x_0
            r_a = 1.0 + a / u  # r(x_0) when x_t ≠ x_0; r(y) = 1 for the others
            neg = torch.where(same, rho * sum_ls, (r_a - 1.0) * ls_a + sum_ls)
            const = torch.where(same, (n - 1) * _xlogx_minus_x(rho).expand_as(sum_s),
                                _xlogx_minus_x(r_a) - (n - 2))
            term = self.schedule.sigma(tt)[:, None] / n * (sum_s - neg + const)
            return torch.where(lm, term, torch.zeros_like(term)).sum(-1).to(out.dtype)
        raise TypeError(f"score entropy does not support {type(self.process).__name__}")


class MaskedDiffusionLoss(DiffusionLoss):
    """MD4/MDLM weighted cross-entropy, mean parameterisation, any (scalar) α schedule."""

    name = "masked"

    def __init__(self, process: Absorbing, schedule: Schedule) -> None:
        if not isinstance(process, Absorbing):
            raise ValueError("the masked-diffusion loss needs the absorbing process")
        if isinstance(schedule, DiscreteSchedule):
            raise ValueError("the masked-diffusion ELBO is continuous-time; got a discrete schedule")
        super().__init__(process, schedule)

    def integrand(self, out, parameterization, x0, x_t, t, loss_mask=None):
        x0c, xtc, lm = self._prepare(x0, x_t, loss_mask)
        tt = t.double()
        noise = NoiseLevel.at(self.schedule, tt)
        out = _upcast(out)
        log_mu = self.process.to_log_x0(out, parameterization, xtc, noise).to(out.dtype)
        masked = (xtc == self.process.mask_id) & lm
        log_mu_x0 = torch.gather(log_mu, -1, x0c[..., None])[..., 0]
        if not self.schedule.state_dependent:
            w = self.schedule.loss_weight(tt)[:, None]  # -α'/(1-α) ≥ 0
            term = -w * log_mu_x0.double()
        else:
            # (α'/(1-α))ᵀ (x0 - μ + x0 x0ᵀ log μ) = -w_{x0}(1 + log μ_{x0}) + Σ_j w_j μ_j, w = -α'/(1-α)
            w = self.schedule.loss_weight(tt)[:, None, :]  # [B, 1, N]
            w_x0 = torch.gather(w.expand(*x0c.shape, w.shape[-1]), -1, x0c[..., None])[..., 0]
            mu = log_mu.double().exp()
            term = -w_x0 * (1.0 + log_mu_x0.double()) + (w * mu).sum(-1)
        return torch.where(masked, term, torch.zeros_like(term)).sum(-1).to(out.dtype)


class GenMD4Loss(MaskedDiffusionLoss):
    """GenMD4: masked diffusion with a learnable state-dependent schedule ``α_{t,a} = 1 - t^{w_a}``.

    :meth:`training_loss` draws ``num_samples`` independent ``(t, x_t)`` per sequence and returns
    the RLOO surrogate ``mean_k L_k + mean_k sg(L_k - mean_{j≠k} L_j) · log q(x_t^k | x_0; w)``
    whose gradient is unbiased for ``∇ E[L]`` with respect to both the network and ``w``.
    """

    name = "genmd4"

    def __init__(self, process: Absorbing, schedule, num_samples: int = 2) -> None:
        if not getattr(schedule, "state_dependent", False):
            raise ValueError("GenMD4Loss needs a state-dependent schedule (PerTokenPolynomial)")
        if num_samples < 2:
            raise ValueError("RLOO needs num_samples ≥ 2")
        super().__init__(process, schedule)
        self.num_samples = int(num_samples)

    def log_q(self, x0: Tensor, x_t: Tensor, t: Tensor, loss_mask: Tensor | None = None) -> Tensor:
        """``log q(x_t | x_0; w)`` per sequence (differentiable in ``w``)."""
        x0c, xtc, lm = self._prepare(x0, x_t, loss_mask)
        tt = t.double()
        oma = self.schedule.one_minus_alpha(tt)  # [B, N]
        oma_x0 = torch.gather(oma, 1, x0c)
        masked = xtc == self.process.mask_id
        lp = torch.where(masked, torch.log(oma_x0), torch.log1p(-oma_x0))
        return torch.where(lm, lp, torch.zeros_like(lp)).sum(-1)

    def training_loss(self, denoiser, x0, generator=None, loss_mask=None):
        k, b = self.num_samples, x0.shape[0]
        xk = x0.repeat(k, 1)
        lmk = loss_mask.repeat(k, 1) if loss_mask is not None else None
        t = self.sample_t(k * b, generator, x0.device)
        x_t = self.corrupt(xk, t, generator, lmk)
        out = denoiser(x_t, t)
        nats = (self.integrand(out, _parameterization(denoiser), xk, x_t, t, lmk)
                + self.prior_term(xk, lmk)).view(k, b)
        logq = self.log_q(xk, x_t, t, lmk).view(k, b)
        baseline = (nats.sum(0, keepdim=True) - nats) / (k - 1)
        surrogate = nats.mean(0) + ((nats - baseline).detach() * logq).mean(0)
        return surrogate, nats.detach().mean(0)

    def to_dict(self):
        return {"name": self.name, "num_samples": self.num_samples}


class MultinomialLoss(DiffusionLoss):
    """Multinomial diffusion's discrete-time negative ELBO (Hoogeboom et al. 2021).

    ``p_θ(x_{k-1} | x_k) = Σ_a μ_θ(x_k)_a q(x_{k-1} | x_k, x_0 = a)`` — the mean parameterisation of
    the denoiser contract. (Hoogeboom et al. plug a probability vector ``x̂_0`` into the posterior
    formula instead; the two coincide under ``x̂_0 ∝ μ / q(x_k | ·)``, so both families are the same.)
    The estimate draws ``k`` uniformly from ``1..T`` and scales its term by ``T``.
    """

    name = "multinomial"
    continuous = False

    def __init__(self, process: Uniform, schedule: DiscreteSchedule) -> None:
        if not isinstance(process, Uniform):
            raise ValueError("multinomial diffusion uses the uniform process")
        if not isinstance(schedule, DiscreteSchedule):
            raise ValueError("multinomial diffusion needs a DiscreteSchedule")
        super().__init__(process, schedule)

    def sample_t(self, batch, generator=None, device=None, stratified=True):
        """Times ``k/T`` with ``k ∈ {1..T}`` (stratified over the batch by default)."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        T = self.schedule.num_steps
        if stratified:
            u0 = _rand((1,), generator, device)
            u = torch.remainder(u0 + torch.arange(batch, device=device, dtype=torch.float64) / batch, 1.0)
        else:
            u = _rand((batch,), generator, device)
        k = (u * T).floor().long().clamp(0, T - 1) + 1
        return (k.double() / T).float()

    def keep_prob(self, x0, t):
        k = self.schedule.step_of(t).to(x0.device)
        return self.schedule.alpha_bar_at(k)[:, None].expand(x0.shape)

    def integrand(self, out, parameterization, x0, x_t, t, loss_mask=None):
        x0c, xtc, lm = self._prepare(x0, x_t, loss_mask)
        T = self.schedule.num_steps
        k = self.schedule.step_of(t).to(x0.device)
        if (k < 1).any() or (k > T).any():
            raise ValueError(f"multinomial steps must be in 1..{T}")
        n = self.process.vocab_size
        noise_t = NoiseLevel.from_alpha(self.schedule.alpha_bar_at(k))
        noise_s = NoiseLevel.from_alpha(self.schedule.alpha_bar_at(k - 1))
        out = _upcast(out)
        log_mu = self.process.to_log_x0(out, parameterization, xtc, noise_t)
        q = self.process.posterior_probs(xtc, _onehot(x0c, n).double(), noise_t, noise_s)
        p = self.process.posterior_probs(xtc, log_mu.double().exp(), noise_t, noise_s)
        kl = (torch.xlogy(q, q) - torch.xlogy(q, p)).sum(-1)
        dec = -torch.gather(log_mu, -1, x0c[..., None])[..., 0].double()
        term = torch.where((k == 1)[:, None], dec, kl)
        return (T * torch.where(lm, term, torch.zeros_like(term)).sum(-1)).to(out.dtype)

    def prior_term(self, x0, loss_mask=None):
        x0c = self._clamp(x0)
        a_T = self.schedule.alpha_bar[-1].to(x0.device).expand(x0.shape)
        kl = self.process.prior_kl(x0c, a_T)
        if loss_mask is not None:
            kl = kl * loss_mask
        return kl.sum(-1)


LOSSES = {
    "score_entropy": ScoreEntropyLoss,
    "masked": MaskedDiffusionLoss,
    "genmd4": GenMD4Loss,
    "multinomial": MultinomialLoss,
}


def build_loss(name: str, process: Process, schedule, **kwargs) -> DiffusionLoss:
    """Loss by name (see :data:`LOSSES`)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name](process, schedule, **kwargs)
