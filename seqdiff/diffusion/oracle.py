"""Exact answers for small explicit distributions, by enumeration.

For a distribution ``p_0`` over all ``n^L`` sequences (``n`` clean-token values, length ``L``) and a
forward process with its schedule, :class:`ExactOracle` computes ``p_t``, the true concrete scores
and the true posteriors ``p(x_0^i | x_t)`` by summing over every clean sequence, and serves them as
a denoiser of either parameterisation. The token kernels are computed independently of the
processes' closed forms: ``exp(σ̄(t) Q)`` by ``torch.linalg.matrix_exp`` for continuous schedules,
the product of explicit one-step matrices for the discrete (multinomial) schedule, and ``α_{t,a}``
directly for GenMD4's state-dependent schedule.

With it the rest of the core is checked against exact answers: :func:`exact_negative_elbo`
(expectations over ``x_t`` enumerated, time integrated by Gauss–Legendre quadrature) and
:func:`exact_sampler_distribution` (the law of a sampler's output, pushed through the sampler's own
step code state by state). It is also a handy denoiser for demos and benchmarks of samplers.
"""

from __future__ import annotations

import itertools
import numpy as np
import torch
from torch import Tensor

from .processes import NEG, Absorbing, NoiseLevel, Process
from .schedules import DiscreteSchedule

__all__ = ["ExactOracle", "exact_negative_elbo", "exact_sampler_distribution", "all_sequences",
           "random_distribution", "total_variation"]


def all_sequences(values: list[int] | Tensor, length: int) -> Tensor:
    """Every sequence over ``values`` of the given length, lexicographic: ``[len(values)^L, L]``."""
    vals = [int(v) for v in values]
    return torch.tensor(list(itertools.product(vals, repeat=length)), dtype=torch.long)


def random_distribution(size: int, generator: torch.Generator | None = None, floor: float = 1e-3) -> Tensor:
    """A random full-support distribution (normalised exponential weights, a flat Dirichlet draw).

    ``floor`` is added to every weight before normalising so no entry is vanishingly small.
    """
    u = torch.rand(size, generator=generator, dtype=torch.float64).clamp_min(1e-12)
    w = -torch.log(u) + floor
    return w / w.sum()


def total_variation(p: Tensor, q: Tensor) -> float:
    """``½ Σ |p - q|``."""
    return 0.5 * float((p.double() - q.double()).abs().sum())


class ExactOracle:
    """Exact denoiser of ``p_0`` under a process and schedule.

    ``p0``: probabilities of the ``n^L`` clean sequences in the lexicographic order of
    :func:`all_sequences` over the process's data tokens. Call it like a network:
    ``oracle(x_t, t, fixed=None)``. With ``fixed`` (bool ``[B, L]``), the fixed positions of ``x_t``
    are treated as observed clean tokens, i.e. the oracle is the denoiser of ``p_0`` conditioned on
    them (``accepts_fixed = True`` tells the samplers to pass it).
    """

    accepts_fixed = True

    def __init__(self, p0: Tensor, length: int, process: Process, schedule,
                 parameterization: str = "x0") -> None:
        if parameterization not in ("x0", "score"):
            raise ValueError(f"unknown parameterization {parameterization!r}")
        self.process = process
        self.schedule = schedule
        self.parameterization = parameterization
        self.length = int(length)
        n_states = process.vocab_size
        mask = process.mask_id
        self.data_ids = torch.tensor([i for i in range(n_states) if i != mask], dtype=torch.long)
        self.n = len(self.data_ids)
        self.configs = all_sequences(self.data_ids, self.length)  # [C, L] token ids
        self.config_idx = all_sequences(range(self.n), self.length)  # [C, L] data indices
        p0 = torch.as_tensor(p0, dtype=torch.float64).reshape(-1)
        if p0.numel() != self.configs.shape[0]:
            raise ValueError(f"p0 has {p0.numel()} entries; expected n^L = {self.configs.shape[0]}")
        if (p0 < 0).any() or abs(float(p0.sum()) - 1.0) > 1e-9:
            raise ValueError("p0 must be a probability vector")
        self.p0 = p0
        # an absorbing process with a scalar schedule has a time-independent posterior
        self.time_independent = parameterization == "x0" and isinstance(process, Absorbing) \
            and not getattr(schedule, "state_dependent", False) \
            and not isinstance(schedule, DiscreteSchedule)
        if isinstance(schedule, DiscreteSchedule):
            n = n_states
            mats = [torch.eye(n, dtype=torch.float64)]
            for keep in schedule.step_keep:
                step = keep * torch.eye(n, dtype=torch.float64) + (1 - keep) / n
                mats.append(mats[-1] @ step)
            self._discrete = torch.stack(mats)  # [T+1, N, N]

    # -- kernels ------------------------------------------------------------------------------
    def kernel(self, t: Tensor) -> Tensor:
        """``q_t(y | a)`` for data values ``a`` (rows) and all states ``y``: ``[B, n, N]``."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        uniq, inv = torch.unique(t, return_inverse=True)
        n_states = self.process.vocab_size
        if isinstance(self.schedule, DiscreteSchedule):
            k = self.schedule.step_of(uniq)
            full = self._discrete[k]
        elif getattr(self.schedule, "state_dependent", False):
            a = self.schedule.alpha(uniq).detach().double()  # [U, N]
            full = torch.zeros(len(uniq), n_states, n_states, dtype=torch.float64)
            idx = torch.arange(n_states)
            full[:, idx, idx] = a
            full[:, :, self.process.mask_id] += 1.0 - a
            full[:, self.process.mask_id, :] = 0.0
            full[:, self.process.mask_id, self.process.mask_id] = 1.0
        else:
            q = self.process.rate_matrix(torch.float64)
            sb = self.schedule.sigma_bar(uniq).double()
            full = torch.empty(len(uniq), n_states, n_states, dtype=torch.float64)
            for j, s in enumerate(sb):
                if torch.isfinite(s):
                    full[j] = torch.linalg.matrix_exp(s * q)
                else:  # α = 0: every row is the stationary law
                    full[j] = self.process.prior_probs(0.0)[None, :].expand(n_states, n_states)
        return full[inv][:, self.data_ids, :]

    def _likelihoods(self, x_t: Tensor, t: Tensor, fixed: Tensor | None) -> tuple[Tensor, Tensor]:
        """``G[b, i, a] = q_t(x_t^i | a)`` (δ at fixed positions) and the kernels."""
        x_t = x_t.cpu()
        K = self.kernel(t.cpu())  # [B, n, N]
        if K.shape[0] == 1 and x_t.shape[0] > 1:
            K = K.expand(x_t.shape[0], -1, -1)
        G = torch.gather(K, 2, x_t[:, None, :].expand(-1, self.n, -1)).transpose(1, 2)  # [B, L, n]
        if fixed is not None:
            fixed = fixed.cpu().bool()
            onehot = (x_t[..., None] == self.data_ids).double()
            G = torch.where(fixed[..., None], onehot, G)
        return G, K

    def _joint(self, G: Tensor) -> Tensor:
        """``p_0(c) Π_i G[b, i, c_i]`` for every clean sequence ``c``: ``[B, C]``."""
        out = self.p0[None, :].expand(G.shape[0], -1).clone()
        for i in range(self.length):
            out = out * G[:, i, :][:, self.config_idx[:, i]]
        return out

    # -- exact quantities ---------------------------------------------------------------------
    def marginal(self, x_t: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        """``p_t(x_t)`` (or ``p_t(x_t^free, x_0^fixed)`` with ``fixed``): ``[B]``."""
        G, _ = self._likelihoods(x_t, torch.as_tensor(t), fixed)
        return self._joint(G).sum(-1)

    def posterior(self, x_t: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        """``p(x_0^i = y | x_t)`` for every state ``y`` (0 on the mask): ``[B, L, N]`` float64."""
        G, _ = self._likelihoods(x_t, torch.as_tensor(t), fixed)
        joint = self._joint(G)
        joint = joint / joint.sum(-1, keepdim=True)
        post = torch.zeros(x_t.shape[0], self.length, self.process.vocab_size, dtype=torch.float64)
        for i in range(self.length):
            post[:, i, :].index_add_(1, self.configs[:, i], joint)
        return post

    def log_scores(self, x_t: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        """True ``log p_t(x^{i←y}) / p_t(x)`` by enumerating every neighbour: ``[B, L, N]``."""
        G, K = self._likelihoods(x_t, torch.as_tensor(t), fixed)
        x_t = x_t.cpu()
        B, L, N = x_t.shape[0], self.length, self.process.vocab_size
        out = torch.full((B, L, N), NEG, dtype=torch.float64)
        for i in range(L):
            H = self.p0[None, :].expand(B, -1).clone()
            for j in range(L):
                if j != i:
                    H = H * G[:, j, :][:, self.config_idx[:, j]]
            Kc = K[:, self.config_idx[:, i], :]  # [B, C, N]: q_t(y | c_i)
            neigh = torch.einsum("bc,bcy->by", H, Kc)  # p_t(x^{i<-y})
            here = torch.gather(neigh, 1, x_t[:, i:i + 1])
            ls = torch.log(neigh) - torch.log(here)
            out[:, i, :] = torch.where(neigh > 0, ls, torch.full_like(ls, NEG))
            out[:, i, :].scatter_(1, x_t[:, i:i + 1], 0.0)
        if fixed is not None:
            fixed = fixed.cpu().bool()
            carry = torch.where(torch.nn.functional.one_hot(x_t, N).bool(), 0.0, NEG).double()
            out = torch.where(fixed[..., None], carry, out)
        return out

    def __call__(self, x_t: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        device = x_t.device
        t = torch.as_tensor(t).reshape(-1)
        if t.numel() == 1:
            t = t.expand(x_t.shape[0])
        # a batch of samples visits few distinct (x_t, t, fixed) rows: compute each once
        x_c, t_c = x_t.cpu(), t.cpu().double()
        L, N = self.length, self.process.vocab_size
        t_vals, t_inv = torch.unique(t_c, return_inverse=True)
        key = (x_c * N ** torch.arange(L - 1, -1, -1)).sum(-1)
        if fixed is not None:
            key = key * 2 ** L + (fixed.cpu().long() * 2 ** torch.arange(L)).sum(-1)
        key = key * len(t_vals) + t_inv
        uniq, first, inv = _unique_rows(key)
        if len(uniq) < len(key):
            sub_fixed = fixed.cpu()[first] if fixed is not None else None
            return self._evaluate(x_c[first], t_c[first], sub_fixed)[inv].to(device)
        return self._evaluate(x_c, t_c, fixed).to(device)

    def _evaluate(self, x_t: Tensor, t: Tensor, fixed: Tensor | None) -> Tensor:
        if self.parameterization == "score":
            return self.log_scores(x_t, t, fixed)
        post = self.posterior(x_t, t, fixed)
        return torch.log(post.clamp_min(1e-300)).clamp_min(NEG)

    def log_p0(self, x0: Tensor) -> Tensor:
        """``log p_0(x_0)`` for clean sequences ``[B, L]``."""
        return torch.log(self.p0[self.index(x0)])

    def index(self, x: Tensor) -> Tensor:
        """Position of clean sequences in the enumeration order: ``[B]``."""
        lookup = torch.full((self.process.vocab_size,), -1, dtype=torch.long)
        lookup[self.data_ids] = torch.arange(self.n)
        d = lookup[x.cpu()]
        if (d < 0).any():
            raise ValueError("not a clean sequence (contains the mask)")
        weights = self.n ** torch.arange(self.length - 1, -1, -1)
        return (d * weights).sum(-1)

    def conditional(self, fixed: Tensor, values: Tensor) -> Tensor:
        """``p_0(· | x^fixed = values)`` over all clean sequences (``fixed: [L]`` bool)."""
        ok = ((self.configs == values[None, :]) | ~fixed[None, :]).all(-1)
        p = torch.where(ok, self.p0, torch.zeros_like(self.p0))
        return p / p.sum()


def _unique_rows(key: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Unique values of a 1-D key, the index of one occurrence of each, and the inverse map."""
    uniq, inv = torch.unique(key, return_inverse=True)
    first = torch.empty(len(uniq), dtype=torch.long)
    first[inv] = torch.arange(len(key))
    return uniq, first, inv


def _gauss_legendre(n: int) -> tuple[Tensor, Tensor]:
    x, w = np.polynomial.legendre.leggauss(n)
    return torch.tensor((x + 1) / 2, dtype=torch.float64), torch.tensor(w / 2, dtype=torch.float64)


def _tail(denoiser, oracle) -> tuple[int, int]:
    return (oracle.length, oracle.process.vocab_size)


@torch.no_grad()
def exact_negative_elbo(loss, denoiser, oracle: ExactOracle, n_quad: int = 64) -> Tensor:
    """Negative ELBO of every clean sequence, with ``E_{x_t}`` enumerated exactly.

    Continuous losses integrate ``t`` by ``n_quad``-point Gauss–Legendre on ``[0, 1]``; the
    multinomial loss sums all ``T`` steps. ``q(x_t | x_0)`` comes from the oracle's kernels.
    Returns ``[C]`` in the oracle's enumeration order (float64).
    """
    proc = oracle.process
    states = all_sequences(range(proc.vocab_size), oracle.length)  # every x_t
    S, C = states.shape[0], oracle.configs.shape[0]
    x0 = oracle.configs.repeat_interleave(S, 0)  # [C*S, L]
    xt = states.repeat(C, 1)
    if loss.continuous:
        nodes, weights = _gauss_legendre(n_quad)
    else:
        T = loss.schedule.num_steps
        nodes = torch.arange(1, T + 1, dtype=torch.float64) / T
        weights = torch.full((T,), 1.0 / T, dtype=torch.float64)  # integrand carries the factor T
    param = getattr(denoiser, "parameterization", "x0")
    total = torch.zeros(C, dtype=torch.float64)
    chunk = max(1, 200_000 // (C * S))
    for j in range(0, len(nodes), chunk):
        tn, wn = nodes[j:j + chunk], weights[j:j + chunk]
        m = len(tn)
        K = oracle.kernel(tn)  # [m, n, N]
        # q(x_t | x_0) for every (node, x0, x_t)
        lik = torch.ones(m, C, S, dtype=torch.float64)
        for i in range(oracle.length):
            lik = lik * K[:, oracle.config_idx[:, i]][:, :, states[:, i]]
        t_states = tn.repeat_interleave(S)  # [m*S]
        out = denoiser(states.repeat(m, 1), t_states).view(m, 1, S, *_tail(denoiser, oracle))
        out = out.expand(m, C, S, *out.shape[3:]).reshape(m * C * S, *out.shape[3:])
        vals = loss.integrand(out, param, x0.repeat(m, 1), xt.repeat(m, 1), tn.repeat_interleave(C * S))
        vals = torch.nan_to_num(vals.double().view(m, C, S), nan=0.0)
        total += (wn[:, None] * (lik * vals * (lik > 0)).sum(-1)).sum(0)
    return total + loss.prior_term(oracle.configs).double()


@torch.no_grad()
def exact_sampler_distribution(sampler, denoiser, length: int, fixed: Tensor | None = None,
                               x_fixed: Tensor | None = None) -> Tensor:
    """Exact law of a sampler's output over all ``N^L`` states (lexicographic), float64.

    Pushes the full distribution through ``sampler.step_probs`` step by step: the transition of a
    τ-leaping step is the product over positions of the per-token step probabilities.
    ``fixed: [L]`` and ``x_fixed: [L]`` clamp positions as the sampler does.
    """
    proc = sampler.process
    N = proc.vocab_size
    states = all_sequences(range(N), length)  # [S, L]
    S = states.shape[0]
    prior = sampler.prior_probs(torch.device("cpu"))
    dist = torch.ones(S, dtype=torch.float64)
    for i in range(length):
        if fixed is not None and bool(fixed[i]):
            dist = dist * (states[:, i] == x_fixed[i]).double()
        else:
            dist = dist * prior[states[:, i]]
    fixed_b = fixed[None, :].expand(S, -1) if fixed is not None else None
    param = getattr(denoiser, "parameterization", "x0")
    sampler.check_parameterization(param)
    grid = sampler.times()
    for k in range(len(grid) - 1):
        t = grid[k].expand(S)
        s = grid[k + 1].expand(S)
        live = dist > 0
        out = sampler.call_denoiser(denoiser, states, t.float(), fixed_b)
        P = sampler.step_probs(out, param, states, t, s)  # [S, L, N]
        last = k == len(grid) - 2
        if last and sampler.final == "argmax":
            P = torch.nn.functional.one_hot(P.argmax(-1), N).double()
        if fixed_b is not None:
            P = torch.where(fixed_b[..., None], torch.nn.functional.one_hot(states, N).double(), P)
        trans = torch.ones(S, S, dtype=torch.float64)
        for i in range(length):
            trans = trans * P[:, i, :][:, states[:, i]]
        trans = torch.where(live[:, None], trans, torch.zeros_like(trans))
        dist = dist @ trans
    return dist
