"""The domain-free diffusion core: processes, schedules, losses, samplers, likelihood bounds.

Imports torch only. See ARCHITECTURE.md ("The denoiser contract") for the interface every sampler and
loss speaks.
"""

from .likelihood import ELBOResult, bits_per_token, elbo, t_grid
from .losses import (LOSSES, DiffusionLoss, GenMD4Loss, MaskedDiffusionLoss, MultinomialLoss,
                     ScoreEntropyLoss, build_loss)
from .oracle import (ExactOracle, all_sequences, exact_negative_elbo, exact_sampler_distribution,
                     random_distribution, total_variation)
from .processes import (NEG, PROCESSES, Absorbing, NoiseLevel, Process, Uniform, build_process,
                        sample_categorical)
from .samplers import (CONFIDENCES, SAMPLERS, ConfidenceSampler, EulerSampler, MaskedAncestralSampler,
                       MultinomialSampler, Option, RemaskingSampler, Sampler, temper_log_probs,
                       TweedieSampler, build_sampler, sample, time_grid)
from .schedules import (SCHEDULES, Cosine, DiscreteSchedule, Geometric, Linear, LogLinear,
                        PerTokenPolynomial, Polynomial, Schedule, build_schedule)

__all__ = [
    "Absorbing", "Uniform", "Process", "NoiseLevel", "build_process", "PROCESSES", "NEG",
    "sample_categorical",
    "Schedule", "LogLinear", "Geometric", "Linear", "Cosine", "Polynomial", "PerTokenPolynomial",
    "DiscreteSchedule", "build_schedule", "SCHEDULES",
    "DiffusionLoss", "ScoreEntropyLoss", "MaskedDiffusionLoss", "GenMD4Loss", "MultinomialLoss",
    "build_loss", "LOSSES",
    "Sampler", "EulerSampler", "TweedieSampler", "MaskedAncestralSampler", "MultinomialSampler",
    "RemaskingSampler", "ConfidenceSampler", "Option", "temper_log_probs", "CONFIDENCES",
    "build_sampler", "sample", "time_grid", "SAMPLERS",
    "elbo", "ELBOResult", "bits_per_token", "t_grid",
    "ExactOracle", "exact_negative_elbo", "exact_sampler_distribution", "all_sequences",
    "random_distribution", "total_variation",
]
