"""What each sampler takes: its options (type, default, choices, one-line help) and its processes.

Declared here, apart from the samplers' code and without torch, so that the command line
(`seqdiff sample --help`), the app's widgets and recipe validation can be built from one place
without loading the numerical core. :mod:`seqdiff.diffusion.samplers` reads these tables (each
sampler class's ``EXTRA_OPTIONS`` and ``processes`` are the entries below; a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Option", "COMMON_OPTIONS", "SAMPLER_OPTIONS", "SAMPLER_PROCESSES", "SAMPLER_NAMES", "MASKED_ONLY",
           "CONFIDENCES", "options_of", "build_sampler_options"]


@dataclass(frozen=True)
class Option:
    """One sampler option: its type, default, allowed values and a one-line help text."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None

    def check(self, sampler: str, name: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (isinstance(value, bool) and self.type is not bool):
            raise ValueError(f"sampler {sampler!r}: option {name} must be {self.type.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"sampler {sampler!r}: option {name} must be one of {list(self.choices)}, got {value!r}")
        return value


CONFIDENCES = ("prob", "max", "margin", "entropy", "random", "left")

#: options every sampler takes (besides ``steps``)
COMMON_OPTIONS: dict[str, Option] = {
    "final": Option(str, "sample", "last step: draw, or take the most probable token", ("sample", "argmax")),
    "cache": Option(bool, True, "reuse the network output of a sequence that did not change "
                                "(time-independent denoisers)"),
    "temperature": Option(float, 1.0, "temperature of the per-token clean-data distribution (0 = argmax)"),
    "top_k": Option(int, None, "keep only the k most probable tokens at each position"),
    "top_p": Option(float, None, "nucleus: keep the most probable tokens up to this mass"),
}

_GRID = ("uniform", "cosine")

#: each sampler's own options, by name, in the order the samplers are listed
SAMPLER_OPTIONS: dict[str, dict[str, Option]] = {
    "euler": {"grid": Option(str, "uniform", "time grid", _GRID)},
    "tweedie": {"grid": Option(str, "uniform", "time grid", _GRID)},
    "ancestral": {"grid": Option(str, "cosine", "time grid", _GRID)},
    "remdm": {
        "grid": Option(str, "uniform", "time grid", _GRID),
        "eta": Option(float, 0.02, "remasking strength η"),
        "remask": Option(str, "cap", "remasking schedule", ("cap", "rescale", "loop")),
        "t_on": Option(float, 0.55, "loop: noise level at which the loop phase starts"),
        "t_off": Option(float, 0.05, "loop: where the loop phase ends on the sampler's clock"),
    },
    "confidence": {
        "confidence": Option(str, "prob", "which positions to reveal first", CONFIDENCES),
        "k_schedule": Option(str, "cosine", "how many positions to reveal per step", ("linear", "cosine")),
        "threshold": Option(float, None, "also reveal every position at least this confident"),
        "noise": Option(float, 0.0, "Gumbel noise on the log-confidence, annealed to 0 over the steps "
                                    "(MaskGIT's choice temperature: more diverse orders)"),
        "block": Option(int, None, "semi-autoregressive: reveal only within the leftmost block of this "
                                   "many positions that is still masked"),
        "polish": Option(float, 0.0, "this fraction of the steps, at the end, re-draws one token each given "
                                     "all the others (the least confident not yet re-drawn)"),
        "polish_temperature": Option(float, None, "temperature of the polish re-draws (0 = the most probable "
                                                  "token); default: the sampler's temperature"),
        "repair": Option(bool, False, "in the polish phase, first re-mask the tokens the domain's validity check "
                                      "flags (SMILES: unbalanced parentheses, unpaired ring digits, then RDKit's "
                                      "valence and aromaticity problems) and re-draw them one per step; needs "
                                      "polish > 0"),
    },
    "multinomial": {},
}

#: the processes each sampler runs on
SAMPLER_PROCESSES: dict[str, tuple[str, ...]] = {
    "euler": ("absorbing", "uniform"), "tweedie": ("absorbing", "uniform"), "ancestral": ("absorbing",),
    "remdm": ("absorbing",), "confidence": ("absorbing",), "multinomial": ("uniform",),
}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLER_OPTIONS)

#: samplers that need the absorbing (mask) process
MASKED_ONLY: tuple[str, ...] = tuple(n for n in SAMPLER_NAMES if SAMPLER_PROCESSES[n] == ("absorbing",))


def options_of(name: str) -> dict[str, Option]:
    """Every option sampler ``name`` takes, with its default (``steps`` aside)."""
    if name not in SAMPLER_OPTIONS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLER_NAMES)}")
    return {**COMMON_OPTIONS, **SAMPLER_OPTIONS[name]}


def build_sampler_options(name: str, options: dict) -> dict:
    """``options`` checked against sampler ``name``'s own (:func:`options_of`): an unknown
    sampler, an option it does not take (the error names the ones it does) or a value of the wrong
    type or outside its choices is a ``ValueError``. ``None`` values mean "the default" and are
    dropped; ``steps`` passes through."""
    opts = options_of(name)
    checked = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "steps":
            checked[key] = value
            continue
        if key not in opts:
            raise ValueError(f"sampler {name!r} does not take option {key!r} (it takes: {', '.join(sorted(opts))})")
        checked[key] = opts[key].check(name, key, value)
    return checked
