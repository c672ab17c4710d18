"""The domain-free diffusion core: processes, schedules, losses, samplers, likelihood bounds.

Imports torch only. See ARCHITECTURE.md ("The denoiser contract") for the interface every sampler and
loss speaks. Names are imported lazily (on first use), so the torch-free declarations of
:mod:`seqdiff.diffusion.options` can be read without loading the numerical core (`--help`).
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "likelihood": ("ELBOResult", "bits_per_token", "elbo", "t_grid"),
    "losses": ("LOSSES", "DiffusionLoss", "GenMD4Loss", "MaskedDiffusionLoss", "MultinomialLoss",
               "ScoreEntropyLoss", "build_loss"),
    "oracle": ("ExactOracle", "all_sequences", "exact_negative_elbo", "exact_sampler_distribution",
               "random_distribution", "total_variation"),
    "processes": ("NEG", "PROCESSES", "Absorbing", "NoiseLevel", "Process", "Uniform", "build_process",
                  "sample_categorical"),
    "samplers": ("SAMPLERS", "ConfidenceSampler", "EulerSampler", "MaskedAncestralSampler", "MultinomialSampler",
                 "RemaskingSampler", "Sampler", "temper_log_probs", "TweedieSampler", "build_sampler", "sample",
                 "time_grid"),
    "options": ("CONFIDENCES", "Option"),
    "schedules": ("SCHEDULES", "Cosine", "DiscreteSchedule", "Geometric", "Linear", "LogLinear",
                  "PerTokenPolynomial", "Polynomial", "Schedule", "build_schedule"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
