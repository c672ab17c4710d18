"""Classifier guidance by enumeration of single-token changes (Schiff et al. 2024, the discrete
classifier guidance for small vocabularies).

The reverse transition is tilted by a classifier of the *noisy* sequence at the step's end,
``p_γ(z_s | z_t, c) ∝ p(z_s | z_t) · p(c | z_s)^γ``. With the per-position transitions of the
samplers the tilt is applied position by position: at position ``i`` the candidate ``z_s^i = y``
is weighted by ``p(c | z_t^{i←y}, s)^γ`` — the classifier on the current sequence with that one
token changed, enumerated over every ``y`` the step can reach (the mask and the data tokens of a
masked position; every token of the uniform process), ``B · L · N`` classifier rows per step. As the
steps grow at most one position moves per step and, with the exact classifier and γ = 1, the tilted
reverse rates ``R(x → y) p(c | y)/p(c | x)`` are exactly those of ``p0(x | c)`` (tested by
enumeration).

A classifier is a callable ``classifier(x [B, L], t [B]) -> log p(c | x_t) [B, C]``;
:meth:`ConditionalOracle.log_class_posterior` is the exact one of a small explicit distribution, and
:class:`~seqdiff.guidance.predictor.PredictorTarget` a trained predictor's.

First-order guidance (``method="first_order"``; Nisonoff et al. 2024, and Schiff et al. 2024 for large
vocabularies): enumeration costs ``B · L · N`` classifier rows per step, so instead the change of
``log p(c | ·)`` when position ``i`` becomes ``y`` is estimated from one gradient with respect to the
one-hot input at the current sequence,

    log p(c | z^{i←y}) ≈ log p(c | z) + g_i(y) − g_i(z^i),    g = ∂ log p(c | z) / ∂ onehot(z),

one forward and one backward pass per step. It is exact when ``log p(c | ·)`` is additive over
positions (tested against enumeration) and agrees with it to first order otherwise. The classifier
must provide ``first_order(x, t, n_states) -> (log p [B], g [B, L, N])``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

__all__ = ["classifier_guided", "ClassifierX0", "single_change_log_probs", "first_order_log_probs", "CG_METHODS"]

from .cfg import _Wrapper  # noqa: E402  (delegates the denoiser's attributes)
from . import CG_METHODS  # noqa: E402  (torch-free, in the package for the command line's help)


def single_change_log_probs(classifier, x: Tensor, s: Tensor, cls: int, n_states: int,
                            candidates: Tensor | None = None) -> Tensor:
    """``log p(c | x^{i←y}, s)`` for every position ``i`` and state ``y``: ``[B, L, N]`` (``-inf``
    where ``candidates [B, L, N]`` is False: not evaluated)."""
    b, length = x.shape
    if candidates is None:
        candidates = torch.ones(b, length, n_states, dtype=torch.bool, device=x.device)
    idx = candidates.nonzero()  # [K, 3]: row, position, state
    out = torch.full((b, length, n_states), -math.inf, dtype=torch.float64, device=x.device)
    if idx.numel() == 0:
        return out
    rows = x[idx[:, 0]].clone()
    rows[torch.arange(idx.shape[0], device=x.device), idx[:, 1]] = idx[:, 2]
    lp = classifier(rows, s[idx[:, 0]])[:, cls].double()
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = lp
    return out


def first_order_log_probs(classifier, x: Tensor, s: Tensor, n_states: int) -> Tensor:
    """The first-order estimate of :func:`single_change_log_probs` for the classifier's target
    (``first_order`` gives the log-probability of one target and its gradient): ``[B, L, N]``."""
    lp, g = classifier.first_order(x, s, n_states)
    here = g.gather(-1, x.clamp(0, n_states - 1)[..., None])
    return lp.double()[:, None, None] + g.double() - here.double()


_CLASSES: dict[type, type] = {}


def _guided_class(base: type) -> type:
    if base in _CLASSES:
        return _CLASSES[base]

    def step_probs(self, out, parameterization, x_t, t, s):
        p = base.step_probs(self, out, parameterization, x_t, t, s).double()
        moves = (p > 0).sum(-1, keepdim=True) > 1  # positions with a choice
        cand = (p > 0) & moves
        if self.cg_method == "first_order":
            lc = first_order_log_probs(self.cg_classifier, x_t, s, p.shape[-1])
        else:
            lc = single_change_log_probs(self.cg_classifier, x_t, s, self.cg_class, p.shape[-1], cand)
        lw = torch.log(p.clamp_min(1e-300)) + self.cg_gamma * lc
        lw = torch.where(p > 0, lw, torch.full_like(lw, -math.inf))
        some = torch.isfinite(torch.where(cand, lw, torch.full_like(lw, -math.inf))).any(-1, keepdim=True)
        tilted = torch.softmax(torch.where(cand, lw, torch.full_like(lw, -math.inf)).masked_fill(~some, 0.0), -1)
        return torch.where(moves & some, tilted, p)

    def move_probs(self, out, parameterization, x_t, t, s):
        return None

    cls = type(f"ClassifierGuided{base.__name__}", (base,), {"step_probs": step_probs, "move_probs": move_probs})
    _CLASSES[base] = cls
    return cls


def classifier_guided(sampler, classifier, cls: int, gamma: float = 1.0, method: str = "exact"):
    """A copy of ``sampler`` whose transitions are tilted by ``p(c = cls | z_s)^gamma``; ``method``:
    ``exact`` (enumerate single-token changes) or ``first_order`` (one gradient per step)."""
    from .cfg import has_step_probs
    if method not in CG_METHODS:
        raise ValueError(f"classifier guidance method must be one of {', '.join(CG_METHODS)}, got {method!r}")
    if method == "first_order" and not callable(getattr(classifier, "first_order", None)):
        raise ValueError("first-order classifier guidance needs a classifier with a gradient (a trained predictor)")
    if method == "first_order" and int(cls) != 0:
        raise ValueError("first-order classifier guidance steers towards the classifier's one target (class 0)")
    if not has_step_probs(sampler):
        raise ValueError(f"sampler {sampler.name!r} has no per-token transition to tilt")
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ValueError(f"the guidance weight γ must be ≥ 0, got {gamma}")
    s = copy.copy(sampler)
    s.__class__ = _guided_class(type(sampler))
    s.cg_classifier, s.cg_class, s.cg_gamma, s.cg_method = classifier, int(cls), float(gamma), method
    return s


class ClassifierX0(_Wrapper):
    """Classifier guidance of the clean-data prediction (masked process; any sampler, including
    confidence-ordered decoding): at each masked position the prediction ``p(x_0^i = a | z_t)`` is
    tilted by ``(p(c | z_t^{i←a}) / p(c | z_t))^γ`` and renormalised — the token law of a reveal in
    the exact guided transition (whose *reveal probability* also changes, which this mode leaves to
    the sampler, as the x0 mode of classifier-free guidance does). Positions already revealed are
    unchanged. ``method``: ``exact`` (enumerate the reveals: ``B · #masked · N`` classifier rows) or
    ``first_order``."""

    def __init__(self, inner, classifier, gamma: float, method: str, process) -> None:
        from ..diffusion.processes import Absorbing
        if not isinstance(process, Absorbing):
            raise ValueError("classifier guidance of the clean-data prediction (guidance mode x0) is for masked "
                             "models; use a sampler with per-token transitions (ancestral, tweedie, euler)")
        if getattr(inner, "parameterization", "x0") != "x0":
            raise ValueError("classifier guidance mode x0 needs a mean-parameterised (x0) model")
        if method not in CG_METHODS:
            raise ValueError(f"classifier guidance method must be one of {', '.join(CG_METHODS)}, got {method!r}")
        if method == "first_order" and not callable(getattr(classifier, "first_order", None)):
            raise ValueError("first-order classifier guidance needs a classifier with a gradient (a trained predictor)")
        if not (gamma >= 0 and math.isfinite(gamma)):
            raise ValueError(f"the guidance weight γ must be ≥ 0, got {gamma}")
        self.inner, self.classifier, self.gamma, self.method, self.process = inner, classifier, float(gamma), method, process

    def __call__(self, x: Tensor, t: Tensor, fixed: Tensor | None = None) -> Tensor:
        out = self.inner(x, t, fixed=fixed) if fixed is not None and self.accepts_fixed else self.inner(x, t)
        n, mask = self.process.vocab_size, self.process.mask_id
        masked = x == mask
        if fixed is not None:
            masked = masked & ~fixed
        if not bool(masked.any()) or self.gamma == 0.0:
            return out
        tt = torch.as_tensor(t, device=x.device).reshape(-1)
        tt = tt.expand(x.shape[0]) if tt.numel() == 1 else tt
        if self.method == "first_order":
            lc = first_order_log_probs(self.classifier, x, tt, n)
        else:
            cand = masked[..., None].expand(*x.shape, n)
            lc = single_change_log_probs(self.classifier, x, tt, 0, n, cand)
        tilt = self.gamma * (lc - lc[..., mask:mask + 1])
        tilt[..., mask] = 0.0
        new = torch.log_softmax(out.double() + tilt.masked_fill(~masked[..., None], 0.0), -1)
        new[..., mask] = out[..., mask].double()
        return torch.where(masked[..., None], new.to(out.dtype), out)
