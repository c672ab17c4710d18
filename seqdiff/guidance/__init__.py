"""Steering generation: reward-guided sampling with no training (best-of-N, SMC), classifier-free
guidance of conditional models, classifier guidance by trained noisy-sequence predictors, and the
rewards they use.

Names are imported lazily (on first use), so the command line's help can list the rewards and modes
without loading torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: how classifier-free guidance mixes the two predictions (see :mod:`seqdiff.guidance.cfg`)
CFG_MODES = ("auto", "transition", "x0")
#: how classifier guidance estimates the tilt of single-token changes (:mod:`seqdiff.guidance.classifier`)
CG_METHODS = ("exact", "first_order")

_EXPORTS = {
    "rewards": ("REWARDS", "Reward", "parse_reward", "reward_names"),
    "smc": ("SMCResult", "best_of_n", "best_of_n_law", "smc_sample", "tilt_log_potential"),
}
_names, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["CFG_MODES", "CG_METHODS", *_names]
