"""Classifier-free guidance (CFG) for discrete diffusion, as denoiser wrappers and one sampler
wrapper, so no sampler changes.

Schiff et al. (2024) tilt the reverse transition of the masked and the uniform process by the
guidance weight ``γ``, per position:

    p_γ(z_s | z_t, c) ∝ p(z_s | z_t, c)^γ · p(z_s | z_t)^(1-γ)        (normalised over z_s).

``γ = 1`` is the conditional model, ``γ = 0`` the unconditional one, ``γ > 1`` sharpens towards the
condition.

What this means for the masked (absorbing) process. At a masked position the transition of the
mean parameterisation is ``S δ_mask + M p(x_0 = · | z_t)`` with ``S = (1-α_s)/(1-α_t)`` and
``M = (α_s-α_t)/(1-α_t)`` — the same ``S`` and ``M`` with and without the condition. The tilt
therefore gives, with ``g(a) = p_c(a)^γ p_u(a)^{1-γ}`` and ``Z = Σ_a g(a)``:

    stay masked  with probability  S / (S + M Z),
    reveal  a    with probability  M g(a) / (S + M Z).

So a revealed token is drawn from the normalised geometric mixture ``g / Z`` of the two clean-data
predictions, but the *reveal probability* changes too: it is scaled by ``Z / (S + M Z)``. For
``γ ∈ [0, 1]`` Hölder gives ``Z ≤ 1`` (the two models disagree, so the guided process hesitates and
reveals later); for ``γ > 1`` ``Z`` can exceed 1. Revealed tokens stay (both transitions are
``δ_{z_t}`` there). At the last step (``s = 0``, ``S = 0``) every masked position is revealed from
``g / Z``. For the uniform process the transition is a mixture over ``x_0`` in every state, and the
tilt has no closed form through ``p(x_0 | z_t)``.

Two modes:

``transition`` (the formula above, exactly, for every sampler with per-token step probabilities:
    euler, tweedie, ancestral, remdm, multinomial): the denoiser wrapper :class:`CFGPair` returns
    the conditional and the unconditional output side by side (``[B, L, 2N]``, one batched network
    call) and :func:`guided` wraps the sampler so that its own ``step_probs`` runs on each half and
    the two transitions are combined per position (dense steps).
``x0`` (any sampler, including confidence-ordered decoding): :class:`CFGMean` returns the
    normalised geometric mixture ``g / Z`` as the clean-data prediction; for the masked process this
    is the transition tilt without the change of reveal probability.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..diffusion.processes import NEG, _upcast
from . import CFG_MODES

__all__ = ["ConditionedDenoiser", "CFGPair", "CFGMean", "guided", "ConditionalOracle", "check_condition",
           "CFG_MODES", "combine_transitions"]



def _cond_tensor(cond, batch: int, device) -> Tensor:
    c = torch.as_tensor(cond, device=device).long().reshape(-1)
    return c.expand(batch) if c.numel() == 1 else c


class _Wrapper:
    """Delegates the denoiser attributes (parameterization, time_independent, schedule, …)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def accepts_fixed(self) -> bool:
        return bool(getattr(self.inner, "accepts_fixed", False))

    def _call(self, x: Tensor, t: Tensor, fixed: Tensor | None, cond: Tensor) -> Tensor:
        if fixed is not None and self.accepts_fixed:
            return self.inner(x, t, fixed=fixed, cond=cond)
        return self.inner(x, t, cond=cond)


class ConditionedDenoiser(_Wrapper):
    """``denoiser(x, t)`` of one condition (``cond``: a class index or ``[B]`` indices; the
    model's ``num_classes`` is the null class, i.e. the unconditional model)."""

    def __init__(self, inner, cond) -> None:
        super().__init__(inner)
        self.cond = cond

    def __call__(self, x: Tensor, t: Tensor, fixed: Tensor | None = None, **kw) -> Tensor:
        if kw:  # the training losses pass nothing else; a pad mask etc. goes straight through
            return self.inner(x, t, cond=_cond_tensor(self.cond, x.shape[0], x.device), **kw)
        return self._call(x, t, fixed, _cond_tensor(self.cond, x.shape[0], x.device))


class CFGPair(_Wrapper):
    """Conditional and unconditional outputs side by side, ``[B, L, 2N]``, from one network call on
    the doubled batch (``null``: the null class index)."""

    def __init__(self, inner, cond, null: int) -> None:
        super().__init__(inner)
        self.cond, self.null = cond, int(null)

    def __call__(self, x: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        c = torch.cat([_cond_tensor(self.cond, b, x.device), torch.full((b,), self.null, device=x.device)])
        t = torch.as_tensor(t).reshape(-1)
        t2 = torch.cat([t, t]) if t.numel() == b else t
        out = self._call(torch.cat([x, x]), t2, None if fixed is None else torch.cat([fixed, fixed]), c)
        return torch.cat([out[:b], out[b:]], dim=-1)


class CFGMean(_Wrapper):
    """The guided clean-data prediction ``log(g / Z)``, ``g = p_c^γ p_u^{1-γ}`` (mean
    parameterisation: a score-parameterised model's outputs are turned into ``p(x_0 | x_t)`` first)."""

    def __init__(self, inner, cond, null: int, gamma: float, process, schedule) -> None:
        super().__init__(inner)
        self.pair = CFGPair(inner, cond, null)
        self.gamma, self.process, self.schedule = float(gamma), process, schedule

    @property
    def parameterization(self) -> str:
        return "x0"

    def __call__(self, x: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        from ..diffusion.processes import NoiseLevel
        out = self.pair(x, t, fixed)
        n = out.shape[-1] // 2
        param = getattr(self.inner, "parameterization", "x0")
        tt = torch.as_tensor(t, device=x.device).double().reshape(-1).expand(x.shape[0])
        noise = NoiseLevel.at(self.schedule, tt) if param == "score" else None
        xs = x.clamp(0, self.process.vocab_size - 1)
        lc = self.process.to_log_x0(_upcast(out[..., :n]), param, xs, noise)
        lu = self.process.to_log_x0(_upcast(out[..., n:]), param, xs, noise)
        mix = self.gamma * lc.clamp_min(NEG) + (1.0 - self.gamma) * lu.clamp_min(NEG)
        return torch.log_softmax(mix, -1).clamp_min(NEG)


def combine_transitions(pc: Tensor, pu: Tensor, gamma: float) -> Tensor:
    """``∝ pc^γ pu^{1-γ}`` per position over the last dimension (float64). The support is where
    both are positive (for ``γ`` 0 or 1, that of the one used); a position where they share no
    state (never for the processes here) keeps ``pc``."""
    pc, pu = pc.double(), pu.double()
    if gamma == 1.0:
        return pc
    if gamma == 0.0:
        return pu
    both = (pc > 0) & (pu > 0)
    lw = gamma * torch.log(pc.clamp_min(1e-300)) + (1.0 - gamma) * torch.log(pu.clamp_min(1e-300))
    lw = lw.masked_fill(~both, -math.inf)
    ok = both.any(-1, keepdim=True)
    w = torch.softmax(torch.where(ok, lw, torch.zeros_like(lw)), -1)
    return torch.where(ok, w, pc)


_GUIDED_CLASSES: dict[type, type] = {}


def _transition_class(base: type) -> type:
    """``base`` with ``step_probs`` run on each half of a :class:`CFGPair` output and combined."""
    if base in _GUIDED_CLASSES:
        return _GUIDED_CLASSES[base]

    def step_probs(self, out, parameterization, x_t, t, s):
        n = out.shape[-1] // 2
        pc = base.step_probs(self, out[..., :n], parameterization, x_t, t, s)
        pu = base.step_probs(self, out[..., n:], parameterization, x_t, t, s)
        return combine_transitions(pc, pu, self.cfg_gamma)

    def move_probs(self, out, parameterization, x_t, t, s):
        return None  # the dense route: the tilt changes the reveal probability per position

    cls = type(f"Guided{base.__name__}", (base,), {"step_probs": step_probs, "move_probs": move_probs,
                                                   "__doc__": f"{base.__name__} with the CFG transition tilt."})
    _GUIDED_CLASSES[base] = cls
    return cls


def has_step_probs(sampler) -> bool:
    from ..diffusion.samplers import Sampler
    return type(sampler).step_probs is not Sampler.step_probs


def guided(sampler, denoiser, cond, gamma: float, *, null: int | None = None, mode: str = "auto"):
    """``(sampler, denoiser)`` for classifier-free guidance of condition ``cond`` at weight
    ``gamma``. ``null``: the null class (default: the network's ``num_classes``). ``mode``:
    ``transition`` | ``x0`` | ``auto`` (transition where the sampler has per-token step
    probabilities, else x0). ``γ = 1`` needs only the conditional model and ``γ = 0`` only the
    unconditional one: both skip the second network call."""
    import copy
    if mode not in CFG_MODES:
        raise ValueError(f"guidance mode must be one of {list(CFG_MODES)}, got {mode!r}")
    gamma = float(gamma)
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"the guidance weight γ must be ≥ 0, got {gamma}")
    if null is None:
        null = _num_classes(denoiser)
    if gamma == 1.0:
        return sampler, ConditionedDenoiser(denoiser, cond)
    if gamma == 0.0:
        return sampler, ConditionedDenoiser(denoiser, null)
    if mode == "auto":
        mode = "transition" if has_step_probs(sampler) else "x0"
    if mode == "x0":
        return sampler, CFGMean(denoiser, cond, null, gamma, sampler.process, sampler.schedule)
    if not has_step_probs(sampler):
        raise ValueError(f"sampler {sampler.name!r} has no per-token transition; use guidance mode x0")
    s = copy.copy(sampler)
    s.__class__ = _transition_class(type(sampler))
    s.cfg_gamma = gamma
    return s, CFGPair(denoiser, cond, null)


def _num_classes(denoiser) -> int:
    net = getattr(denoiser, "network", None)
    n = getattr(getattr(net, "config", None), "num_classes", None)
    if n is None:
        n = getattr(denoiser, "num_classes", None)
    if not n:
        raise ValueError("this model was not trained with conditions (no condition classes)")
    return int(n)


def check_condition(model, value) -> Any:
    """``value`` if ``model`` knows it as a condition, else ``ValueError`` (one line)."""
    model.condition_index(value)
    return value


class ConditionalOracle:
    """Exact conditional denoisers by enumeration: ``oracles[c]`` the :class:`ExactOracle` of
    ``p0(x | c)`` and ``oracles[-1]`` that of the mixture ``p0(x) = Σ_c π_c p0(x | c)`` (the null
    class, index ``len(oracles) - 1``). Called with ``cond [B]`` like a conditional network."""

    accepts_fixed = True

    def __init__(self, p0_given_c: Tensor, prior: Tensor, length: int, process, schedule,
                 parameterization: str = "x0") -> None:
        from ..diffusion.oracle import ExactOracle
        p = torch.as_tensor(p0_given_c, dtype=torch.float64)
        pi = torch.as_tensor(prior, dtype=torch.float64)
        self.p0_given_c, self.prior = p, pi
        self.marginal = (pi[:, None] * p).sum(0)
        self.oracles = [ExactOracle(p[c], length, process, schedule, parameterization) for c in range(p.shape[0])]
        self.oracles.append(ExactOracle(self.marginal, length, process, schedule, parameterization))
        self.num_classes = p.shape[0]
        self.parameterization = parameterization
        self.process, self.schedule = process, schedule
        self.time_independent = self.oracles[0].time_independent

    def log_class_posterior(self, x: Tensor, t: Tensor) -> Tensor:
        """The exact noisy classifier ``log p(c | x_t) = log π_c + log p_t(x_t | c) - log p_t(x_t)``:
        ``[B, C]``."""
        t = torch.as_tensor(t).reshape(-1).double()
        t = t.expand(x.shape[0]) if t.numel() == 1 else t
        joint = torch.stack([self.prior[c] * self.oracles[c].marginal(x, t) for c in range(self.num_classes)], -1)
        total = joint.sum(-1, keepdim=True)
        # a state no class can produce (probability 0): the prior, so it never decides anything
        return torch.where(total > 0, torch.log(joint) - torch.log(total.clamp_min(1e-300)),
                           torch.log(self.prior)[None, :].expand_as(joint))

    def __call__(self, x: Tensor, t: Tensor, fixed: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        cond = torch.full((b,), self.num_classes) if cond is None else _cond_tensor(cond, b, "cpu")
        t = torch.as_tensor(t).reshape(-1)
        t = t.expand(b) if t.numel() == 1 else t
        out = None
        for c in cond.unique().tolist():
            rows = (cond == c).nonzero()[:, 0].to(x.device)
            o = self.oracles[c](x[rows], t[rows.cpu()], None if fixed is None else fixed[rows])
            if out is None:
                out = torch.empty(b, *o.shape[1:], dtype=o.dtype, device=o.device)
            out[rows] = o
        return out
