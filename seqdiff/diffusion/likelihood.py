"""Likelihood bounds: Monte Carlo ELBO per sequence with a fixed, seedable time grid.

For a continuous-time loss the negative ELBO is ``∫_0^1 f(t) dt + prior`` with
``f(t) = E_{x_t ~ q_t(·|x_0)} integrand(x_t, t)``; :func:`elbo` estimates the integral with ``n_t``
times per sequence:

* ``stratified``: ``t_k = (k + u_k)/n_t`` — one point in each of ``n_t`` equal strata;
* ``antithetic``: stratified pairs ``t`` and ``1 - t`` (``n_t`` even), which cancels the linear
  part of ``f``'s variation;
* ``uniform``: i.i.d. ``t_k ~ U(0, 1)``.

For the discrete-time multinomial loss the sum over ``k = 1..T`` is stratified the same way
(``n_t ≥ T`` enumerates every step exactly once). Each estimate is unbiased.

Standard errors. One grid keeps the precision stratification buys, but the naive spread of its
``n_t`` terms is not the error of their mean: it ignores the strata (over-stating the error of
smooth integrands) and the pairing of antithetic points, and a heavy-tailed term (the ``1/t``
weight of the masked loss) makes it erratic. The default is the *collapsed-strata* estimator:
independent units in stratum order — single points (stratified), antithetic pairs averaged
(antithetic) — are paired with their neighbours, and ``Σ (y_a − y_b)² / m²`` over the ``m/2``
pairs estimates the variance of the mean of ``m`` units; it is unbiased up to the (small) squared
differences of neighbouring strata's means, so it errs on the safe side. ``ELBOResult.ci95``
widens it by the Student-t quantile for its degrees of freedom (the number of pairs). With
``replicates=R`` the times are instead ``R`` independent grids of ``n_t/R`` points, and the error
is the spread of the ``R`` grid means (exact in expectation, fewer strata per grid). I.i.d.
(``uniform``) grids use the spread of the terms.

Memory: with ``batch_size=None`` the (sequence, time) pairs go through the denoiser in chunks of
at most ``token_budget`` tokens (default 32,768).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .losses import T_MIN, DiffusionLoss, _parameterization
from .processes import _rand

__all__ = ["ELBOResult", "elbo", "bits_per_token", "t_grid", "replicate_count"]


@dataclass
class ELBOResult:
    """Per-sequence negative ELBO (nats) with its Monte Carlo standard error and token counts."""

    nats: Tensor  # [B]
    stderr: Tensor  # [B]
    num_tokens: Tensor  # [B]
    #: the per-time terms ``[n_t, B]`` whose mean (plus the prior) is ``nats`` (``return_terms=True``)
    terms: Tensor | None = None
    #: degrees of freedom of ``stderr`` (pairs of strata, replicate grids − 1, or terms − 1)
    dof: int = 10 ** 6

    @property
    def bits_per_token(self) -> Tensor:
        return bits_per_token(self.nats, self.num_tokens)

    @property
    def ci95(self) -> Tensor:
        """Half-width of a 95 % interval for ``nats``: Student-t quantile × ``stderr``."""
        return _t975(self.dof) * self.stderr


def _t975(dof: int) -> float:
    """The 97.5 % quantile of Student's t with ``dof`` degrees of freedom (Cornish–Fisher series;
    within 1e-3 of the exact value for dof ≥ 3, exact enough for an interval's width)."""
    z = 1.959963984540054
    if dof >= 10 ** 6:
        return z
    d = float(max(dof, 1))
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    exact = {1: 12.7062047, 2: 4.30265273}
    return exact.get(int(d), z + g1 / d + g2 / d ** 2 + g3 / d ** 3 + g4 / d ** 4)


def replicate_count(n_t: int, grid: str, replicates: int | None = None) -> int:
    """How many independent replicate grids ``n_t`` times are split into: the largest ``R ≤
    replicates`` (default 8) dividing ``n_t`` with an even share per replicate for antithetic grids."""
    cap = 8 if replicates is None else int(replicates)
    for r in range(max(min(cap, n_t), 1), 0, -1):
        share = n_t // r
        if n_t % r == 0 and (grid != "antithetic" or share % 2 == 0):
            return r
    return 1


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
         batch_size: int | None = None, return_terms: bool = False, replicates: int | None = None,
         token_budget: int = 32_768) -> ELBOResult:
    """Negative ELBO per sequence in nats (an upper bound on ``-log p_θ(x_0)``).

    ``x0: LongTensor[B, L]``; ``loss_mask`` marks the scored positions (default: all).
    ``batch_size`` bounds how many ``(sequence, time)`` pairs go through the denoiser at once
    (default: as many as fit in ``token_budget`` tokens). ``replicates``: see the module docstring.
    Two calls with equally seeded generators and inputs of the same shape draw the same times and
    the same corruption noise (common random numbers: paired differences have low variance);
    ``return_terms`` keeps the per-time terms for such paired standard errors.
    """
    b, device = x0.shape[0], x0.device
    reps = 1
    if loss.continuous:
        if replicates is not None and replicates > 1:
            reps = replicate_count(n_t, grid, replicates)
        times = torch.cat([t_grid(n_t // reps, grid, generator, device) for _ in range(reps)])
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
    chunk = batch_size or max(1, token_budget // max(x0.shape[1], 1))
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
    stderr, dof = _standard_error(vals, reps, grid if loss.continuous else "stratified")
    nats = mean + loss.prior_term(x0, loss_mask).double()
    return ELBOResult(nats=nats, stderr=stderr.to(nats), num_tokens=lm.sum(-1),
                      terms=vals if return_terms else None, dof=dof)


def _standard_error(vals: Tensor, reps: int, grid: str) -> tuple[Tensor, int]:
    """Standard error of ``vals.mean(0)`` and its degrees of freedom (module docstring)."""
    n, b = vals.shape
    if reps > 1:
        rep_means = vals.view(reps, n // reps, b).mean(1)
        return rep_means.std(0, unbiased=True) / math.sqrt(reps), reps - 1
    if grid == "uniform" or n < 2:
        return (vals.std(0, unbiased=True) / math.sqrt(n) if n > 1 else torch.zeros(b, dtype=vals.dtype)), \
            max(n - 1, 1)
    units = vals
    if grid == "antithetic" and n % 2 == 0 and n >= 4:
        half = n // 2
        units = 0.5 * (vals[:half] + vals[half:])  # pair k: t_k and 1 - t_k, strata in order
    m = units.shape[0]
    if m < 2:
        return vals.std(0, unbiased=True) / math.sqrt(n), 1
    pairs = m // 2
    d2 = (units[0:2 * pairs:2] - units[1:2 * pairs:2]) ** 2
    var = d2.sum(0)
    if m % 2:  # the last unit shares the last pair's estimate
        var = var + d2[-1] / 2
    return var.sqrt() / m, pairs
