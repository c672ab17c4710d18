"""Domain-level pieces of the user-facing jobs: infilling templates and variants.

* :mod:`seqdiff.jobs.template`: the template language for constrained infilling
  (:func:`parse_template`, :class:`Template`, :class:`TemplateError`).
* :mod:`seqdiff.jobs.variants`: DMS variant notation, variant tables and the
  BLOSUM62 baseline (:func:`parse_mutant`, :func:`apply_mutant`,
  :func:`read_variants`, :class:`VariantError`, ...).

Names are imported lazily, so ``import seqdiff.jobs.variants`` does not pull in
torch (the corpus fetcher uses it).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "template": (
        "TemplateError", "Fixed", "Free", "Template", "parse_template", "render", "render_runs", "TEMPLATE_DOMAINS",
    ),
    "variants": (
        "VariantError", "parse_mutant", "format_mutant", "apply_mutant", "mutant_from_sequences", "read_variants",
        "single_mutant_scan", "blosum62_score", "blosum62_scores", "BLOSUM62", "BLOSUM62_ALPHABET",
    ),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'seqdiff.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
