"""Command-line options of guided generation (`seqdiff sample` and `seqdiff infill`)."""

from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from ..guidance import CFG_MODES, CG_METHODS
from ..guidance.rewards import REWARDS
from ..pretrained import predictor_names

if TYPE_CHECKING:
    from ..guidance.run import GuidanceSettings

__all__ = ["add_guidance_args", "guidance_from_args"]


def _rewards_help() -> str:
    return "; ".join(f"{k}{'=' + v.arg if v.arg else ''} ({v.help})" for k, v in sorted(REWARDS.items()))


def add_guidance_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "guidance", "steer outputs: towards a condition of a conditional model (classifier-free guidance), towards "
                    "a target of a trained noisy-sequence property predictor (classifier guidance), or towards a "
                    "reward with no training (best-of-N or sequential Monte Carlo)")
    g.add_argument("--condition", default=None,
                   help="a condition the model was trained on: a class name, or a value inside one of its bins")
    g.add_argument("--guidance", type=float, default=None, metavar="GAMMA",
                   help="guidance weight γ of --condition or --classifier (1 = the conditional model, 0 = "
                        "unconditional, >1 = stronger); default 1")
    g.add_argument("--guidance-mode", default="auto", choices=CFG_MODES,
                   help="transition: the exact tilt of each reverse transition (dense steps); x0: tilt the "
                        "clean-data prediction (any sampler); auto: transition where the sampler allows it")
    g.add_argument("--classifier", default=None, metavar="NAME|PATH",
                   help="classifier guidance by a property predictor trained on noisy sequences of this model's "
                        "process: a shipped one by name, for the shipped model of its domain ("
                        + ", ".join(predictor_names()) + "), or a file (`seqdiff train` with `predictor.column` "
                        "writes predictor.pt)")
    g.add_argument("--target", default=None, metavar="CLASS|V|LO..HI",
                   help="--classifier's target: a class name (A,B = either) or a number inside a bin; for a "
                        "numeric (Gaussian) predictor a value V or a range LO..HI, LO.. or ..HI")
    g.add_argument("--classifier-method", default="auto", choices=("auto", *CG_METHODS),
                   help="exact: enumerate every single-token change (B·L·N predictor rows per step); first_order: "
                        "their first-order estimate from one gradient per step; auto: exact for vocabularies "
                        "of at most 8 states")
    g.add_argument("--reward", default=None, metavar="NAME[=ARG][@LO..HI][:λ]",
                   help="reward to steer towards, with strength λ (default 1); @LO..HI makes it a target range. "
                        + _rewards_help())
    g.add_argument("--best-of", type=int, default=None, metavar="N",
                   help="draw N candidates per output and keep the best by --reward")
    g.add_argument("--particles", type=int, default=None, metavar="K",
                   help="sequential Monte Carlo with K particles per output, targeting p(x)·e^{λ r(x)}")
    g.add_argument("--tilt", default="exp", choices=("exp", "power"),
                   help="SMC target: exp = p·e^{λ r}, power = p·r^λ (rewards ≥ 0)")
    g.add_argument("--ess-threshold", type=float, default=0.5,
                   help="SMC: resample when the effective sample size falls below this share of K")
    g.add_argument("--reward-every", type=int, default=1, metavar="STEPS",
                   help="SMC: score the particles (and maybe resample) every this many steps")


def guidance_from_args(args: argparse.Namespace) -> GuidanceSettings | None:
    """The settings given on the command line, unchecked (``None``: plain sampling)."""
    from ..guidance.run import GuidanceSettings

    st = GuidanceSettings(reward=args.reward, best_of=args.best_of, particles=args.particles, tilt=args.tilt,
                          ess_threshold=args.ess_threshold, every=args.reward_every, condition=args.condition,
                          guidance=args.guidance, mode=args.guidance_mode, classifier=args.classifier,
                          target=args.target, classifier_method=args.classifier_method)
    given = any(v is not None for v in (args.reward, args.best_of, args.particles, args.condition, args.guidance,
                                        args.classifier, args.target))
    return st if given else None
