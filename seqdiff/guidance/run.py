"""Guided generation with a :class:`~seqdiff.model.SeqDiffModel`: rewards on decoded sequences,
best-of-N and SMC, classifier-free guidance, and classifier guidance by a trained noisy-sequence
predictor, behind one call used by the jobs and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .rewards import Reward, parse_reward
from .smc import best_of_n, smc_sample, tilt_log_potential

__all__ = ["GuidanceSettings", "model_reward", "guided_generate"]


def model_reward(model, reward: Reward, cache: dict | None = None) -> Callable[[Tensor], Tensor]:
    """``ids [B, L] -> float64 [B]``: the reward of the decoded sequences (memoised by string, so
    the many repeated predictions of an SMC run are scored once)."""
    memo = {} if cache is None else cache

    def f(ids: Tensor) -> Tensor:
        texts = model.decode(ids)
        todo = sorted({s for s in texts if s not in memo})
        if todo:
            for s, v in zip(todo, reward(todo)):
                memo[s] = float(v)
        return torch.tensor([memo[s] for s in texts], dtype=torch.float64)

    return f


@dataclass
class GuidanceSettings:
    """What steers a run: a reward (spec or parsed) with ``best_of`` or ``particles``; a condition
    with a guidance weight; or a trained predictor (``classifier``: its file, or a loaded
    :class:`~seqdiff.guidance.predictor.Predictor`) with a ``target`` and a guidance weight
    (``classifier_method``: ``exact`` enumeration of single-token changes, ``first_order`` gradient
    estimate, ``auto``: exact for vocabularies of at most 8 states). ``None`` everywhere: plain
    sampling."""

    reward: str | Reward | None = None
    best_of: int | None = None
    particles: int | None = None
    tilt: str = "exp"
    ess_threshold: float = 0.5
    every: int = 1
    condition: Any = None
    guidance: float | None = None
    mode: str = "auto"
    classifier: Any = None
    target: Any = None
    classifier_method: str = "auto"

    def check(self, model, sampler: str | None = None) -> "GuidanceSettings":
        """Validated copy (reward parsed for the model's domain, predictor loaded and its target
        parsed); ``sampler``: the sampler the run will use (default: the model's), checked for
        classifier guidance. ``ValueError`` with one clear line."""
        if self.best_of is not None and self.particles is not None:
            raise ValueError("choose one of --best-of and --particles")
        if (self.best_of is not None or self.particles is not None) and self.reward is None:
            raise ValueError("--best-of and --particles need a --reward")
        for name, v in (("best-of", self.best_of), ("particles", self.particles), ("every", self.every)):
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
                raise ValueError(f"--{name} must be an integer ≥ 1, got {v}")
        if not 0.0 <= self.ess_threshold <= 1.0:
            raise ValueError(f"--ess-threshold must be in [0, 1], got {self.ess_threshold}")
        rew = self.reward
        if isinstance(rew, str):
            rew = parse_reward(rew, model.domain)
        if rew is not None and self.best_of is None and self.particles is None:
            raise ValueError("--reward needs --best-of N or --particles K (how to steer towards it)")
        if self.guidance is not None and self.condition is None and self.classifier is None:
            raise ValueError("--guidance needs a --condition or a --classifier")
        if self.target is not None and self.classifier is None:
            raise ValueError("--target needs a --classifier (a trained property predictor)")
        if self.classifier is not None:
            if self.target is None:
                raise ValueError("--classifier needs a --target (a class, a value, or a range LO..HI)")
            if self.condition is not None or rew is not None:
                raise ValueError("--classifier steers on its own: not with --condition or --reward")
        if self.guidance is not None and not (0 <= self.guidance < float("inf")):
            raise ValueError(f"--guidance must be a number ≥ 0, got {self.guidance}")
        out = GuidanceSettings(rew, self.best_of, self.particles, self.tilt, self.ess_threshold, self.every,
                               self.condition, self.guidance, self.mode, self.classifier, self.target,
                               self.classifier_method)
        if self.classifier is not None:
            out._check_classifier(model, sampler)
        if self.condition is not None:
            from .cfg import check_condition
            out.condition = check_condition(model, self.condition)
            if out.guidance is None:
                out.guidance = 1.0
        return out

    def _check_classifier(self, model, sampler: str | None) -> None:
        from .classifier import CG_METHODS
        from .cfg import has_step_probs
        from .predictor import Predictor, PredictorTarget, load_predictor
        if self.classifier_method not in ("auto", *CG_METHODS):
            raise ValueError(f"--classifier-method must be one of auto, {', '.join(CG_METHODS)}; "
                             f"got {self.classifier_method!r}")
        name = "the classifier" if isinstance(self.classifier, (Predictor, PredictorTarget)) else str(self.classifier)
        pred = self.classifier.pred if isinstance(self.classifier, PredictorTarget) else self.classifier
        if not isinstance(pred, Predictor):
            from ..pretrained import resolve_predictor
            path = resolve_predictor(pred, model.domain)  # a file, or a shipped predictor's name
            if str(path) != str(pred):
                name = f"the shipped {pred} predictor"
            pred = load_predictor(path)
        pred.check_compatible(model, name)
        self.classifier = pred.target(self.target)
        if self.guidance is None:
            self.guidance = 1.0
        if self.classifier_method == "auto":
            self.classifier_method = "exact" if model.process.vocab_size <= 8 else "first_order"
        s = model.build_sampler(sampler)
        mode = self.mode if self.mode != "auto" else ("transition" if has_step_probs(s) else "x0")
        if mode == "transition" and not has_step_probs(s):
            raise ValueError(f"classifier guidance mode transition tilts each token's reverse transition; sampler "
                             f"{s.name!r} has none: use --sampler ancestral (or tweedie, euler), or --guidance-mode x0")
        if mode == "x0" and model.cfg.diffusion.process != "absorbing":
            raise ValueError("classifier guidance mode x0 (tilting the clean-data prediction) is for masked models; "
                             f"use a sampler with per-token transitions (sampler {s.name!r} has none)")

    @property
    def active(self) -> bool:
        return self.reward is not None or self.condition is not None or self.classifier is not None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.reward is not None:
            d["reward"] = self.reward.spec if isinstance(self.reward, Reward) else self.reward
            if self.best_of is not None:
                d["best_of"] = self.best_of
            if self.particles is not None:
                d.update(particles=self.particles, tilt=self.tilt, ess_threshold=self.ess_threshold)
        if self.condition is not None:
            d.update(condition=self.condition, guidance=self.guidance, guidance_mode=self.mode)
        if self.classifier is not None:
            from .predictor import PredictorTarget
            if isinstance(self.classifier, PredictorTarget):
                d.update(classifier=self.classifier.pred.spec["column"], target=self.classifier.describe())
            else:
                d.update(classifier=str(self.classifier), target=self.target)
            d.update(guidance=self.guidance, classifier_method=self.classifier_method, guidance_mode=self.mode)
        return d


@torch.no_grad()
def guided_generate(model, settings: GuidanceSettings, num: int | None = None, length=None, *,
                    sampler: str | None = None, steps: int | None = None,
                    generator: torch.Generator | None = None, x_fixed: Tensor | None = None,
                    fixed: Tensor | None = None, progress=None, stats: dict | None = None,
                    reward_cache: dict | None = None, **sampler_kwargs) -> Tensor:
    """Token ids ``[B, L]`` like :meth:`SeqDiffModel.generate`, steered by ``settings`` (checked)."""
    if not settings.active:
        return model.generate(num, length, sampler=sampler, steps=steps, generator=generator, x_fixed=x_fixed,
                              fixed=fixed, progress=progress, stats=stats, **sampler_kwargs)
    if model.is_ar:
        raise ValueError("guidance needs a diffusion model; the AR baseline has no reverse process")
    x_fixed, fixed = model.layout(num, length, generator, x_fixed, fixed)
    s = model.build_sampler(sampler, steps, **sampler_kwargs)
    denoiser = model.denoiser
    if settings.condition is not None:
        from .cfg import guided
        s, denoiser = guided(s, model.denoiser, model.condition_index(settings.condition),
                             float(settings.guidance), mode=settings.mode)
    if settings.classifier is not None:
        from .classifier import classifier_guided
        from .predictor import PredictorTarget
        if not isinstance(settings.classifier, PredictorTarget):
            raise ValueError("classifier guidance settings must be checked first (GuidanceSettings.check)")
        settings.classifier.pred.to(model.device)
        method = settings.classifier_method if settings.classifier_method != "auto" else \
            ("exact" if model.process.vocab_size <= 8 else "first_order")
        from .cfg import has_step_probs
        mode = settings.mode if settings.mode != "auto" else ("transition" if has_step_probs(s) else "x0")
        if mode == "transition":
            s = classifier_guided(s, settings.classifier, 0, float(settings.guidance), method=method)
        else:
            from .classifier import ClassifierX0
            denoiser = ClassifierX0(denoiser, settings.classifier, float(settings.guidance), method, model.process)
    if settings.reward is None:
        return s.sample(denoiser, x_fixed=x_fixed, fixed=fixed, generator=generator, progress=progress, stats=stats)
    rew = model_reward(model, settings.reward, reward_cache)
    if settings.best_of is not None:
        x, _ = best_of_n(s, denoiser, rew, n=settings.best_of, x_fixed=x_fixed, fixed=fixed, generator=generator,
                         progress=progress, stats=stats)
        return x
    lam = settings.reward.lam
    res = smc_sample(s, denoiser, tilt_log_potential(rew, lam, settings.tilt), particles=settings.particles,
                     x_fixed=x_fixed, fixed=fixed, ess_threshold=settings.ess_threshold, every=settings.every,
                     generator=generator, progress=progress, stats=stats)
    return res.samples
