"""Likelihood bounds: Monte Carlo ELBO per sequence with a fixed, seedable time grid.

For a continuous-time loss the negative ELBO is ``∫_0^1 f(t) dt + prior`` with
``f(t) = E_{x_t ~ q_t(·|x_0)} integrand(x_t, t)``; :func:`elbo` estimates the integral with ``n_t``
times per sequence:

* ``stratified``: ``t_k = (k + u_k)/n_t`` — one point in each of ``n_t`` equal strata;
* ``antithetic``: stratified pairs ``t`` and ``1 - t`` (``n_t`` even), which cancels the linear
  part of ``f``'s variation;
* ``uniform``: i.i.d. ``t_k ~ U(0, 1)``.

For the discrete-time multinomial loss the sum over ``k = 1..T`` is stratified the same way
(``n_t ≥ T`` enumerates every step exactly once). Each estimate is unbiased; the reported standard
error is that of the mean of the ``n_t`` per-time terms (conservative for stratified grids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .losses import T_MIN, DiffusionLoss, _parameterization
from .processes import _rand

__all__ = ["ELBOResult", "elbo", "bits_per_token", "t_grid"]


@dataclass
class ELBOResult:
    """Per-sequence negative ELBO (nats) with its Monte Carlo standard error and token counts."""

    nats: Tensor  # [B]
    stderr: Tensor  # [B]
    num_tokens: Tensor  # [B]
    #: the per-time terms ``[n_t, B]`` whose mean (plus the prior) is ``nats`` (``return_terms=True``)
    terms: Tensor | None = None

    @property
    def bits_per_token(self) -> Tensor:
        return bits_per_token(self.nats, self.num_tokens)


def bits_per_token(nats: Tensor, num_tokens: Tensor | int) -> Tensor:
    """Convert nats per sequence into bits per token: ``nats / (n · ln 2)``."""
    return nats / (torch.as_tensor(num_tokens, dtype=nats.dtype, device=nats.device) * math.log(2.0))


def t_grid(n_t: int, kind: str = "antithetic", generator: torch.Generator | None = None,
           device=None) -> Tensor:
    """``n_t`` times in ``(0, 1)`` for the ELBO integral (see module docstring)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if n_t < 1:
        raise ValueError(f"n_t must be ≥ 1, got {n_t}")
    if kind == "stratified":
        u = _rand((n_t,), generator, device)
        t = (torch.arange(n_t, device=device, dtype=torch.float64) + u) / n_t
    elif kind == "antithetic":
        if n_t % 2:
            raise ValueError("antithetic grids need an even n_t")
        half = n_t // 2
        u = _rand((half,), generator, device)
        lo = (torch.arange(half, device=device, dtype=torch.float64) + u) / n_t  # strata of [0, 1/2)
        t = torch.cat([lo, 1.0 - lo])
    elif kind == "uniform":
        t = _rand((n_t,), generator, device)
    else:
        raise ValueError(f"unknown t-grid {kind!r} (stratified | antithetic | uniform)")
    return t.clamp(T_MIN, 1.0 - T_MIN)


@torch.no_grad()
def elbo(denoiser, loss: DiffusionLoss, x0: Tensor, *, n_t: int = 32, grid: str = "antithetic",
         generator: torch.Generator | None = None, loss_mask: Tensor | None = None,
         batch_size: int | None = None, return_terms: bool = False) -> ELBOResult:
    """Negative ELBO per sequence in nats (an upper bound on ``-log p_θ(x_0)``).

    ``x0: LongTensor[B, L]``; ``loss_mask`` marks the scored positions (default: all).
    ``batch_size`` bounds how many ``(sequence, time)`` pairs go through the denoiser at once.
    Two calls with equally seeded generators and inputs of the same shape draw the same times and
    the same corruption noise (common random numbers: paired differences have low variance);
    ``return_terms`` keeps the per-time terms for such paired standard errors.
    """
    b, device = x0.shape[0], x0.device
    if loss.continuous:
        times = t_grid(n_t, grid, generator, device)
    else:
        T = loss.schedule.num_steps
        if n_t >= T:
            ks = torch.arange(1, T + 1, device=device)
            n_t = T
        else:
            u = _rand((n_t,), generator, device)
            ks = ((torch.arange(n_t, device=device, dtype=torch.float64) + u) / n_t * T).floor().long() + 1
        times = ks.double() / T
    lm = loss_mask if loss_mask is not None else torch.ones_like(x0, dtype=torch.bool)
    # every (time, sequence) pair, flattened time-major
    tt = times.repeat_interleave(b).float()
    xx = x0.repeat(len(times), 1)
    mm = lm.repeat(len(times), 1)
    chunk = batch_size or xx.shape[0]
    terms = []
    param = _parameterization(denoiser)
    for i in range(0, xx.shape[0], chunk):
        xs, ts, ms = xx[i:i + chunk], tt[i:i + chunk], mm[i:i + chunk]
        x_t = loss.corrupt(xs, ts, generator, ms)
        out = denoiser(x_t, ts)
        terms.append(loss.integrand(out, param, xs, x_t, ts, ms).double())
    vals = torch.cat(terms).view(len(times), b)
    # discrete: each term is T × L_k, so the mean over stratified (or all) k estimates Σ_k L_k
    mean = vals.mean(0)
    stderr = vals.std(0, unbiased=True) / math.sqrt(len(times)) if len(times) > 1 else torch.zeros(b)
    nats = mean + loss.prior_term(x0, loss_mask).double()
    return ELBOResult(nats=nats, stderr=stderr.to(nats), num_tokens=lm.sum(-1),
                      terms=vals if return_terms else None)
