"""Steering generation: reward-guided sampling with no training (best-of-N, SMC), classifier-free
guidance of conditional models, classifier guidance by trained noisy-sequence predictors, and the
rewards they use.

Names are imported lazily (on first use), so the command line's help can list the rewards and modes
without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: how classifier-free guidance mixes the two predictions (see :mod:`seqdiff.guidance.cfg`)
CFG_MODES = ("auto", "transition", "x0")
#: how classifier guidance estimates the tilt of single-token changes (:mod:`seqdiff.guidance.classifier`)
CG_METHODS = ("exact", "first_order")

_EXPORTS = {
    "rewards": ("REWARDS", "Reward", "parse_reward", "reward_names"),
    "smc": ("SMCResult", "best_of_n", "best_of_n_law", "smc_sample", "tilt_log_potential"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["CFG_MODES", "CG_METHODS", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
