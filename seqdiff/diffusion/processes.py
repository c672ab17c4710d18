"""Forward CTMCs on tokens, factorised over positions: absorbing (mask) and uniform.

Conventions (row convention, as a transition matrix is read):

* ``Q[x, y]`` is the rate of a jump ``x → y`` at unit noise rate; rows sum to zero.
* The token kernel at total noise ``σ̄`` is ``q_t(y | x) = exp(σ̄ Q)[x, y]``; with the keep
  probability ``α = exp(-σ̄)`` it has the closed forms

  - absorbing: ``q_t(· | x) = α δ_x + (1 - α) δ_m`` (``m`` the mask state, ``x ≠ m``),
  - uniform:   ``q_t(· | x) = α δ_x + (1 - α)/N``        (``Q = 11ᵀ/N - I``, SEDD's ``Q^uniform/N``).

* The *concrete score* at position ``i`` is ``s_i(y) = p_t(x^{i←y}) / p_t(x)`` (SEDD).
  The true reverse process jumps ``x_t^i → y`` at rate ``σ(t) Q[y, x_t^i] s_i(y)``.
* A denoiser's ``"x0"`` output is ``log p(x_0^i = a | x_t)``. Where the kernel has support,
  ``s_i(y) = Σ_a p(x_0^i = a | x_t) q_t(y|a) / q_t(x_t^i|a)`` (ARCHITECTURE.md); for the absorbing
  process that holds at masked positions, which are the only ones whose scores enter the reverse
  rates or the loss (an unmasked token never changes in reverse).

Noise levels are passed as :class:`NoiseLevel` (``α`` and ``1-α`` in float64, shaped to broadcast
against ``[B, L, N]``: ``[B, 1, 1]`` for scalar schedules, ``[B, 1, N]`` for GenMD4's
state-dependent one, whose ``α`` is indexed by the clean token's value).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["NoiseLevel", "Process", "Absorbing", "Uniform", "build_process", "NEG", "PROCESSES"]

#: Large finite negative used for forbidden log-probabilities / log-scores (never ``-inf``).
NEG = -1e6


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float64) -> Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, then moved to ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gdev, dtype=dtype).to(device)


def _randint(high: int, shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> Tensor:
    gdev = generator.device if generator is not None else device
    return torch.randint(high, shape, generator=generator, device=gdev).to(device)


def _onehot(x: Tensor, n: int) -> Tensor:
    """Boolean one-hot ``[*x.shape, n]`` (a comparison; cheaper than ``F.one_hot``)."""
    return x[..., None] == torch.arange(n, device=x.device)


@dataclass
class NoiseLevel:
    """Keep probability ``α`` and ``1 - α`` at one time, broadcastable to ``[B, L, N]``."""

    alpha: Tensor
    one_minus_alpha: Tensor

    @classmethod
    def at(cls, schedule, t: Tensor) -> "NoiseLevel":
        """Noise level of a continuous schedule at times ``t: [B]`` (float64)."""
        t = t.double()
        a, oma = schedule.alpha(t), schedule.one_minus_alpha(t)
        if schedule.state_dependent:  # [B, N] -> [B, 1, N]
            return cls(a[:, None, :], oma[:, None, :])
        return cls(a[:, None, None], oma[:, None, None])

    @classmethod
    def from_alpha(cls, alpha: Tensor) -> "NoiseLevel":
        """From keep probabilities ``[B]`` (e.g. multinomial ``ᾱ_k``)."""
        alpha = alpha.double()
        return cls(alpha[:, None, None], (1.0 - alpha)[:, None, None])

    def log_alpha(self) -> Tensor:
        return torch.log(self.alpha)

    def log_one_minus_alpha(self) -> Tensor:
        return torch.log(self.one_minus_alpha)


class Process(ABC):
    """A factorised forward CTMC on ``N = vocab_size`` token states."""

    name: str = "process"
    mask_id: int | None = None

    def __init__(self, vocab_size: int) -> None:
        if vocab_size < 2:
            raise ValueError(f"a process needs at least 2 states, got {vocab_size}")
        self.vocab_size = int(vocab_size)

    # ---- definition -------------------------------------------------------------------------
    @property
    @abstractmethod
    def num_data_tokens(self) -> int:
        """Number of clean-token values (``N - 1`` for absorbing, ``N`` for uniform)."""

    @abstractmethod
    def rate_matrix(self, dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        """Unit-rate generator ``Q[x, y]`` (rate ``x → y``), ``[N, N]``, rows summing to zero."""

    @abstractmethod
    def transition_probs(self, x: Tensor, alpha: Tensor) -> Tensor:
        """``q_t(· | x)`` for keep probability ``alpha`` (shape of ``x``): ``[*x.shape, N]``."""

    @abstractmethod
    def sample_xt(self, x0: Tensor, alpha: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``x_t ~ q_t(· | x0)`` with per-position keep probability ``alpha`` (shape of ``x0``)."""

    @abstractmethod
    def prior_probs(self, alpha1: float = 0.0, dtype=torch.float64, device=None) -> Tensor:
        """The reverse process's starting distribution per token, ``[N]``."""

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                     device=None, alpha1: float = 0.0) -> Tensor:
        """Draw a prior sample of the given shape."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        probs = self.prior_probs(alpha1, device=device).expand(*shape, self.vocab_size)
        return sample_categorical(probs, generator)

    @abstractmethod
    def prior_kl(self, x0: Tensor, alpha1: Tensor) -> Tensor:
        """Per-position ``KL(q_1(· | x0) ‖ prior)`` in nats for keep probability ``alpha1``."""

    # ---- parameterisations ------------------------------------------------------------------
    @abstractmethod
    def x0_to_log_score(self, log_p0: Tensor, x_t: Tensor, noise: NoiseLevel) -> Tensor:
        """Mean → score: ``log s_i(y)`` from ``log p(x_0^i | x_t)``, both ``[B, L, N]``."""

    @abstractmethod
    def log_score_to_x0(self, log_score: Tensor, x_t: Tensor, noise: NoiseLevel) -> Tensor:
        """Score → mean: ``log p(x_0^i | x_t)`` from ``log s_i``, normalised."""

    def to_log_x0(self, out: Tensor, parameterization: str, x_t: Tensor, noise: NoiseLevel) -> Tensor:
        """Denoiser output of either parameterisation → normalised log ``p(x_0 | x_t)``."""
        if parameterization == "x0":
            return self.clean_log_x0(out, x_t)
        if parameterization == "score":
            return self.log_score_to_x0(out, x_t, noise)
        raise ValueError(f"unknown parameterization {parameterization!r} (x0 | score)")

    def to_log_score(self, out: Tensor, parameterization: str, x_t: Tensor, noise: NoiseLevel) -> Tensor:
        """Denoiser output of either parameterisation → log concrete scores."""
        if parameterization == "score":
            return out
        if parameterization == "x0":
            return self.x0_to_log_score(self.clean_log_x0(out, x_t), x_t, noise)
        raise ValueError(f"unknown parameterization {parameterization!r} (x0 | score)")

    def clean_log_x0(self, log_p0: Tensor, x_t: Tensor) -> Tensor:
        """Renormalise an ``"x0"`` output over the clean-token values (mask forbidden)."""
        return torch.log_softmax(log_p0, dim=-1)

    # ---- reverse process --------------------------------------------------------------------
    @abstractmethod
    def posterior_probs(self, x_t: Tensor, p0: Tensor, noise_t: NoiseLevel, noise_s: NoiseLevel) -> Tensor:
        """``p(x_s^i = y | x_t) = Σ_a p0_i(a) q(x_s^i = y | x_t^i, x_0^i = a)`` for ``s < t``.

        With the true ``p0 = p(x_0^i | x_t)`` this is the exact per-token marginal of the reverse
        process: the Tweedie τ-leaping step (SEDD Thm 4.2) and the masked ancestral step (MD4).
        """

    @abstractmethod
    def tweedie_probs_score(self, x_t: Tensor, log_score: Tensor, noise_t: NoiseLevel,
                            noise_s: NoiseLevel) -> Tensor:
        """SEDD's Tweedie step from scores: ``(exp(-Δσ̄ Q) s)_y · exp(Δσ̄ Q)(y, x_t)``, clamped ≥ 0."""

    @abstractmethod
    def reverse_rates(self, x_t: Tensor, out: Tensor, parameterization: str, t: Tensor, schedule) -> Tensor:
        """Reverse generator rows at time ``t``: rate ``x_t^i → y`` (diagonal ``-Σ``), ``[B, L, N]``."""

    def to_dict(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab_size}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class Absorbing(Process):
    """The absorbing (mask) process: each token jumps to the mask state at rate ``σ(t)``.

    States ``0..N-1``; ``mask_id`` defaults to ``N-1`` (the seqdiff tokenizer layout puts the mask
    right after the ``N-1`` data tokens).
    """

    name = "absorbing"

    def __init__(self, vocab_size: int, mask_id: int | None = None) -> None:
        super().__init__(vocab_size)
        self.mask_id = vocab_size - 1 if mask_id is None else int(mask_id)
        if not 0 <= self.mask_id < vocab_size:
            raise ValueError(f"mask_id {self.mask_id} out of range for vocab_size {vocab_size}")

    @property
    def num_data_tokens(self) -> int:
        return self.vocab_size - 1

    def _mask_col(self, device) -> Tensor:
        col = torch.zeros(self.vocab_size, dtype=torch.bool, device=device)
        col[self.mask_id] = True
        return col

    def rate_matrix(self, dtype=torch.float64, device=None) -> Tensor:
        n, m = self.vocab_size, self.mask_id
        q = -torch.eye(n, dtype=dtype, device=device)
        q[:, m] += 1.0
        return q  # row m is all zero: the mask state is absorbing

    def transition_probs(self, x: Tensor, alpha: Tensor) -> Tensor:
        alpha = torch.as_tensor(alpha, dtype=torch.float64, device=x.device).expand(x.shape)
        out = torch.zeros(*x.shape, self.vocab_size, dtype=torch.float64, device=x.device)
        out.scatter_(-1, x[..., None], alpha[..., None])
        out[..., self.mask_id] += 1.0 - alpha
        return out

    def sample_xt(self, x0, alpha, generator=None):
        keep = _rand(tuple(x0.shape), generator, x0.device) < alpha.double()
        return torch.where(keep, x0, torch.full_like(x0, self.mask_id))

    def prior_probs(self, alpha1: float = 0.0, dtype=torch.float64, device=None) -> Tensor:
        """All-mask when ``α(1) = 0``; else ``(1-α₁) δ_m + α₁ · Uniform(data)`` (finite KL)."""
        p = torch.full((self.vocab_size,), float(alpha1) / self.num_data_tokens, dtype=dtype, device=device)
        p[self.mask_id] = 1.0 - float(alpha1)
        return p

    def prior_kl(self, x0: Tensor, alpha1: Tensor) -> Tensor:
        # q_1 = α₁ δ_{x0} + (1-α₁) δ_m against the prior above: KL = α₁ log(N-1).
        return alpha1.double() * math.log(self.num_data_tokens)

    def clean_log_x0(self, log_p0, x_t):
        # Mask column forbidden; unmasked positions carry their token over (MDLM's SUBS).
        col = self._mask_col(log_p0.device)
        lp = torch.log_softmax(log_p0.masked_fill(col, NEG), dim=-1)
        carry = _onehot(x_t, self.vocab_size)
        keep = (x_t != self.mask_id)[..., None]
        return torch.where(keep, torch.where(carry, 0.0, NEG).to(lp.dtype), lp)

    def x0_to_log_score(self, log_p0, x_t, noise):
        # masked x_t: s(y) = α_y/(1-α_y) p0(y) for y ≠ m, s(m) = 1 (MD4 Prop. 1)
        col = self._mask_col(log_p0.device)
        ratio = (noise.log_alpha() - noise.log_one_minus_alpha()).to(log_p0.dtype)
        ls = torch.where(col, torch.zeros_like(log_p0), log_p0 + ratio)
        # unmasked x_t: no reverse move is possible; s(x_t) = 1 and the rest are irrelevant.
        carry = _onehot(x_t, self.vocab_size)
        unmasked = (x_t != self.mask_id)[..., None]
        return torch.where(unmasked, torch.where(carry, 0.0, NEG).to(ls.dtype), ls)

    def log_score_to_x0(self, log_score, x_t, noise):
        col = self._mask_col(log_score.device)
        ratio = (noise.log_one_minus_alpha() - noise.log_alpha()).to(log_score.dtype)
        lp = torch.log_softmax((log_score + ratio).masked_fill(col, NEG), dim=-1)
        carry = _onehot(x_t, self.vocab_size)
        unmasked = (x_t != self.mask_id)[..., None]
        return torch.where(unmasked, torch.where(carry, 0.0, NEG).to(lp.dtype), lp)

    def posterior_probs(self, x_t, p0, noise_t, noise_s):
        p0 = p0.double()
        col = self._mask_col(p0.device)
        # q(x_s = a | x_t = m, x_0 = a) = (α_s - α_t)/(1 - α_t);  stays masked w.p. (1-α_s)/(1-α_t)
        stay = (noise_s.one_minus_alpha / noise_t.one_minus_alpha.clamp_min(1e-300)).clamp(0.0, 1.0)
        p0 = p0.masked_fill(col, 0.0)
        out = p0 * (1.0 - stay)
        out[..., self.mask_id] = (p0 * stay).sum(-1)
        unmasked = (x_t != self.mask_id)[..., None]
        return torch.where(unmasked, _onehot(x_t, self.vocab_size).double(), out)

    def tweedie_probs_score(self, x_t, log_score, noise_t, noise_s):
        col = self._mask_col(log_score.device)
        # e^{Δσ̄} - 1 = α_s/α_t - 1 = (oma_t - oma_s)/α_t
        em1 = ((noise_t.one_minus_alpha - noise_s.one_minus_alpha) / noise_t.alpha)
        s = log_score.double().exp().masked_fill(col, 0.0)
        out = em1 * s
        out[..., self.mask_id] = 1.0 - (em1 * s).sum(-1)
        out = out.clamp_min(0.0)
        # To s = 0 the exact mask mass 1 - em1·Σs is zero (Σ_y s(y) = α_t/(1-α_t)); a learned score is
        # not normalised exactly, so that step puts none on the mask and renormalises (no mask survives).
        clean = (noise_s.one_minus_alpha <= 0).expand(out.shape[:-1] + (1,)).to(out.device)
        data = out.masked_fill(col, 0.0)
        total = data.sum(-1, keepdim=True)
        data = torch.where(total > 0, data / total.clamp_min(1e-300), (~col).double() / (~col).sum())
        out = torch.where(clean, data, out)
        unmasked = (x_t != self.mask_id)[..., None]
        return torch.where(unmasked, _onehot(x_t, self.vocab_size).double(), out)

    def reverse_rates(self, x_t, out, parameterization, t, schedule):
        col = self._mask_col(out.device)
        tt = t.double()
        if parameterization == "x0":
            # σ(t) s(y) = -α'_y/(1-α_y) p0(y): finite even where α(t) = 0
            w = schedule.loss_weight(tt)
            w = w[:, None, :] if schedule.state_dependent else w[:, None, None]
            rates = w * self.clean_log_x0(out, x_t).double().exp()
        elif parameterization == "score":
            if schedule.state_dependent:
                raise ValueError("score parameterisation is not defined for state-dependent schedules")
            rates = schedule.sigma(tt)[:, None, None] * out.double().exp()
        else:
            raise ValueError(f"unknown parameterization {parameterization!r}")
        rates = rates.masked_fill(col, 0.0)
        rates[..., self.mask_id] = -rates.sum(-1)
        unmasked = (x_t != self.mask_id)[..., None]
        return torch.where(unmasked, torch.zeros_like(rates), rates)

    def to_dict(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "mask_id": self.mask_id}


class Uniform(Process):
    """The uniform process: each token is resampled uniformly at rate ``σ(t)`` (``Q = 11ᵀ/N - I``)."""

    name = "uniform"

    @property
    def num_data_tokens(self) -> int:
        return self.vocab_size

    def rate_matrix(self, dtype=torch.float64, device=None) -> Tensor:
        n = self.vocab_size
        return torch.full((n, n), 1.0 / n, dtype=dtype, device=device) - torch.eye(n, dtype=dtype, device=device)

    def transition_probs(self, x, alpha):
        alpha = torch.as_tensor(alpha, dtype=torch.float64, device=x.device).expand(x.shape)
        out = ((1.0 - alpha) / self.vocab_size)[..., None].expand(*x.shape, self.vocab_size).clone()
        out.scatter_add_(-1, x[..., None], alpha[..., None])
        return out

    def sample_xt(self, x0, alpha, generator=None):
        keep = _rand(tuple(x0.shape), generator, x0.device) < alpha.double()
        rnd = _randint(self.vocab_size, tuple(x0.shape), generator, x0.device)
        return torch.where(keep, x0, rnd)

    def prior_probs(self, alpha1: float = 0.0, dtype=torch.float64, device=None) -> Tensor:
        return torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=dtype, device=device)

    def prior_kl(self, x0, alpha1):
        a = alpha1.double()
        n = self.vocab_size
        u = (1.0 - a) / n
        return torch.xlogy(a + u, n * (a + u)) + (n - 1) * torch.xlogy(u, n * u)

    def _log_q_xt_given(self, x_t: Tensor, noise: NoiseLevel, dtype) -> Tensor:
        """``log q_t(x_t^i | a)`` for every ``a``: ``[B, L, N]``."""
        n = self.vocab_size
        log_u = (torch.log(noise.one_minus_alpha) - math.log(n)).to(dtype)
        log_diag = torch.log(noise.alpha + noise.one_minus_alpha / n).to(dtype)
        same = _onehot(x_t, n)
        return torch.where(same, log_diag, log_u)

    def x0_to_log_score(self, log_p0, x_t, noise):
        # v_a = p0(a)/q_t(x_t|a);  s(y) = α v_y + (1-α)/N Σ_a v_a
        n = self.vocab_size
        log_v = log_p0 - self._log_q_xt_given(x_t, noise, log_p0.dtype)
        la = noise.log_alpha().to(log_p0.dtype)
        lu = (noise.log_one_minus_alpha() - math.log(n)).to(log_p0.dtype)
        ls = torch.logaddexp(la + log_v, lu + torch.logsumexp(log_v, -1, keepdim=True))
        carry = _onehot(x_t, n)
        return ls.masked_fill(carry, 0.0)

    def log_score_to_x0(self, log_score, x_t, noise):
        # invert s = α v + u Σv (with s(x_t) = 1): Σ_y s_y = Σ_a v_a = C, v = (s - uC)/α
        n = self.vocab_size
        carry = _onehot(x_t, n)
        s = log_score.double().masked_fill(carry, 0.0).exp()
        c = s.sum(-1, keepdim=True)
        v = ((s - noise.one_minus_alpha / n * c) / noise.alpha).clamp_min(0.0)
        p = v * self._log_q_xt_given(x_t, noise, torch.float64).exp()
        p = p / p.sum(-1, keepdim=True).clamp_min(1e-300)
        return torch.log(p.clamp_min(1e-300)).clamp_min(NEG).to(log_score.dtype)

    def posterior_probs(self, x_t, p0, noise_t, noise_s):
        n = self.vocab_size
        p0 = p0.double()
        v = p0 / self._log_q_xt_given(x_t, noise_t, torch.float64).exp()
        c = noise_s.alpha * v + noise_s.one_minus_alpha / n * v.sum(-1, keepdim=True)
        # one-step kernel s → t keeps with α_t/α_s;  1 - α_t/α_s = (oma_t - oma_s)/α_s
        keep = noise_t.alpha / noise_s.alpha
        resample = (noise_t.one_minus_alpha - noise_s.one_minus_alpha) / noise_s.alpha
        fwd = (resample / n).expand_as(c).clone()
        fwd = fwd + _onehot(x_t, n).double() * keep
        out = (fwd * c).clamp_min(0.0)
        return out / out.sum(-1, keepdim=True)

    def tweedie_probs_score(self, x_t, log_score, noise_t, noise_s):
        n = self.vocab_size
        carry = _onehot(x_t, n)
        s = log_score.double().masked_fill(carry, 0.0).exp()
        e = noise_s.alpha / noise_t.alpha  # e^{Δσ̄}
        stag = e * s + (1.0 - e) / n * s.sum(-1, keepdim=True)
        keep = noise_t.alpha / noise_s.alpha
        resample = (noise_t.one_minus_alpha - noise_s.one_minus_alpha) / noise_s.alpha
        fwd = (resample / n).expand_as(s).clone() + carry.double() * keep
        out = (stag * fwd).clamp_min(0.0)
        return out / out.sum(-1, keepdim=True).clamp_min(1e-300)

    def reverse_rates(self, x_t, out, parameterization, t, schedule):
        n = self.vocab_size
        tt = t.double()
        noise = NoiseLevel.at(schedule, tt)
        log_s = self.to_log_score(out, parameterization, x_t, noise).double()
        sigma = schedule.sigma(tt)[:, None, None]
        rates = torch.nan_to_num(sigma / n * log_s.exp(), posinf=1e30)
        carry = _onehot(x_t, n)
        rates = rates.masked_fill(carry, 0.0)
        return rates - carry.double() * rates.sum(-1, keepdim=True)


PROCESSES = {"absorbing": Absorbing, "uniform": Uniform}


def build_process(spec: dict | str, **overrides) -> Process:
    """Build a process from a name or ``{"name": ..., "vocab_size": ...}``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = {**spec, **overrides}
    name = spec.pop("name", None)
    if name not in PROCESSES:
        raise ValueError(f"unknown process {name!r}; choose one of {sorted(PROCESSES)}")
    return PROCESSES[name](**spec)


def _upcast(x: Tensor) -> Tensor:
    """bf16/fp16 → fp32; fp32 and fp64 pass through (losses and steps never run in half precision)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def sample_categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one index per row of ``probs [..., N]`` by the Gumbel-max trick in float64.

    float64 noise matters: float32 Gumbel draws truncate the tail of the distribution and bias
    samples (the generative-perplexity artefact reported for MDLM/SEDD samplers). ``probs`` need
    not be normalised; zero entries are never drawn.
    """
    p = probs.double()
    u = _rand(tuple(p.shape), generator, p.device).clamp_(1e-300, 1.0)
    g = -torch.log(-torch.log(u))
    return torch.argmax(torch.log(p) + g, dim=-1)
