"""Command-line options of the samplers, built from the samplers' own declarations.

Every option a sampler declares (:mod:`seqdiff.diffusion.options`, torch-free) becomes one flag,
``--temperature``, ``--confidence``, … with its type, choices and help; the help says which samplers
take it. A flag the chosen sampler does not take is an error naming the options it does take
(:func:`seqdiff.diffusion.options.build_sampler_options`), so nothing is silently ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..diffusion.options import SAMPLER_NAMES, options_of

__all__ = ["add_sampler_args", "sampler_options_from_args", "FLAG_NAMES"]

#: flags renamed where a job already has an option of the same name (infill's ``--top-k`` keeps
#: the K best candidates)
FLAG_NAMES = {"top_k": "token-top-k"}
_SKIP = ("cache",)


def _all_options() -> dict[str, tuple[Any, list[str]]]:
    seen: dict[str, tuple[Any, list[str]]] = {}
    for name in SAMPLER_NAMES:
        for key, opt in options_of(name).items():
            if key in _SKIP:
                continue
            if key not in seen:
                seen[key] = (opt, [])
            seen[key][1].append(name)
    return seen


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_sampler_args(p: argparse.ArgumentParser) -> None:
    """``--sampler``, ``--steps`` and one flag per sampler option, in their own help group."""
    g = p.add_argument_group("sampler", "how sequences are drawn (defaults: the model's recorded sampler "
                                        "and settings; `seqdiff sample --help` lists every option)")
    g.add_argument("--sampler", default=None, choices=list(SAMPLER_NAMES),
                   help="default: the model's own (recorded with it); confidence and remdm need a masked model")
    g.add_argument("--steps", type=int, default=None, help="sampling steps (the most network evaluations)")
    for key, (opt, takers) in _all_options().items():
        flag = "--" + FLAG_NAMES.get(key, key.replace("_", "-"))
        kind = _parse_bool if opt.type is bool else opt.type
        default = "" if opt.default is None else f"; default {opt.default}"
        only = "" if len(takers) == len(SAMPLER_NAMES) else f" [{', '.join(takers)}]"
        g.add_argument(flag, dest=f"sampler_opt_{key}", type=kind, default=None, choices=opt.choices,
                       metavar=None if opt.choices else key.upper(), help=f"{opt.help}{default}{only}")


def sampler_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The sampler options given on the command line (unset ones left out)."""
    out = {}
    for key in _all_options():
        value = getattr(args, f"sampler_opt_{key}", None)
        if value is not None:
            out[key] = value
    return out
