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

from ..lazy import lazy_exports

_EXPORTS = {
    "template": (
        "TemplateError", "Fixed", "Free", "Template", "parse_template", "render", "render_runs", "TEMPLATE_DOMAINS",
    ),
    "variants": (
        "VariantError", "parse_mutant", "format_mutant", "apply_mutant", "mutant_from_sequences", "read_variants",
        "single_mutant_scan", "blosum62_score", "blosum62_scores", "BLOSUM62", "BLOSUM62_ALPHABET",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
