"""The domain registry: one :class:`Domain` record per kind of sequence, and nothing domain-specific
anywhere else.

Every list of domains in seqdiff (recipe choices, command-line choices, shipped models, the demo,
the app's menu) and every per-domain decision (tokenizer, reader, row layout, augmentation, template
syntax, metrics, output format) is read from these records.

**Adding a domain** is adding one module ``seqdiff/domains/<name>.py`` that defines a module-level
``DOMAIN = Domain(...)`` (see :mod:`seqdiff.domains.rna` for a complete example, and
ARCHITECTURE.md).  The registry finds it by listing the package: nothing else is edited.  Modules of
the package that are not domains (helpers such as :mod:`.sequence`) simply define no ``DOMAIN``.

The records are collected the first time they are asked for (:func:`domains`), so importing
:mod:`seqdiff.domains` stays light.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["Domain", "TemplateRules", "AppHints", "domains", "domain_names", "get_domain", "guess_fasta_domain"]


@dataclass(frozen=True)
class TemplateRules:
    """How an infilling template is read in this domain (:func:`seqdiff.jobs.template.parse_template`).

    Attributes:
        bracket_spans: ``[N:17]`` is a span and a backslash escapes the next character (False for
            SMILES, where ``[...]`` is a bracket atom and ``\\`` a bond).
        skip_whitespace: whitespace between letters is ignored (a pasted, line-wrapped sequence);
            otherwise it is a fixed character like any other (text) or rejected by the tokenizer.
        example: a template that shows the syntax (documentation, the app's default).
    """

    bracket_spans: bool = True
    skip_whitespace: bool = False
    example: str = ""


@dataclass(frozen=True)
class AppHints:
    """What a user interface needs to present a domain; only data, no UI code.

    Attributes:
        label: display name (``"Molecules (SMILES)"``).
        template: the default infilling template (fits a 64-position model; a 32-position one for text).
        steps, count: default sampling steps and number of outputs.
        sampler: default sampler (``None``: the model's own).
        menu_position: position in a domain menu (smaller first).
        batch_size: candidates per batch (small, so results stream in early).
        views: the result views offered: ``"logo"`` (sequence logo of ``letters``), ``"molecules"``
            (a grid of the valid molecules), ``"motifs"`` (JASPAR matches), ``"scan"`` (single-mutant
            scans over ``letters`` in the variant tab), ``"fewshot"`` (measured variants and homologs).
        letters: the residues drawn in logos and substituted in scans.
        logo_colors: logomaker colour scheme of the logo.
        wild_type: example wild type of the variant tab.
        units: what a pasted sequence's positions count: ``"letters"`` or ``"tokens"`` (SMILES).
        span_format: how the app writes a free span of ``n`` positions (``{n}``; ``[N:n]`` for DNA).
        window_fill: where a free span that fills a window model's length goes: ``"before"`` or
            ``"after"`` the template (``None``: never filled).
        short_template: the template for a window shorter than ``template`` (``{free}``: the free
            positions left), or ``None``.
    """

    label: str
    template: str
    steps: int = 64
    count: int = 16
    sampler: str | None = None
    menu_position: int = 100
    batch_size: int = 4
    views: tuple[str, ...] = ()
    letters: str = ""
    logo_colors: str = "chemistry"
    wild_type: str = ""
    units: str = "letters"
    span_format: str = "{{{n}}}"
    window_fill: str | None = None
    short_template: str | None = None


@dataclass(frozen=True)
class Domain:
    """Everything domain-specific around a model.

    Attributes:
        name: the registry key (``"dna"``); also the shipped model's name and recipe stem by default.
        letter: what one position is called in messages (``"base"``, ``"amino acid"``).
        tokenizer_kind, tokenizer_kwargs: defaults for :func:`seqdiff.tokenizers.build_tokenizer`
            (a recipe's ``tokenizer.kind: auto`` resolves to ``tokenizer_kind``).
        file_format: sample file format, a key of :data:`seqdiff.domains.files.FORMATS`.
        metrics: per-set metrics, ``metrics(samples, reference=None, training=None) -> dict``.
        sample_metrics: per-sample metrics for the jobs' CSV, ``sample_metrics(seq) -> dict`` with
            the keys ``sample_columns``; a ``valid`` column makes jobs report validity and
            ``--valid-only`` keep valid outputs only.
        syntax_suspects: a validity check of one sample, ``syntax_suspects(tokens) -> faults``: one
            item per fault found — the index of the token that must change, or a tuple of indices of
            which one must change (empty when the sample is well-formed); the confidence sampler's
            ``repair`` re-draws those first (of a tuple, the least confident token). SMILES: its
            grammar, then RDKit's valence and aromaticity checks. ``None``: the domain has none.
        reader_options: keyword arguments for :func:`seqdiff.data.read_records` (text: ``mode=lines``).
        layout: the recipe's ``data.layout: auto``: ``window`` (one long stream, cut into rows) or
            ``pad`` (one record per row).
        join_lines: records are lines of one stream, joined by a newline (or space) token in
            windows; a reference for sample metrics is joined into one text.
        augmentations: training augmentations the domain supports (``"reverse_complement"``: the
            recipe's ``data.rc_augment``; needs a tokenizer with ``complement_table``).
        record_options: the domain-specific recipe options it honours (``data.randomize_smiles``,
            ``data.canonicalize_smiles``, ``data.check_smiles``); records of a domain with any of
            them may be invalid, so held-out records the tokenizer rejects are skipped, not fatal.
        template: :class:`TemplateRules`.
        fasta_letters: the letters a FASTA sample file of this domain holds (upper case), used to
            tell DNA, RNA and protein files apart; ``None``: any letters.
        ambiguity_codes: letters that stand for several residues (IUPAC ``N R Y ...``, protein
            ``B Z J X``): a variant may not substitute to one.
        shipped_model: name of the shipped default model (``seqdiff/pretrained/<name>.pt``), or None.
        recipe: the recipe that trains it (relative to the repository).
        corpus: the ``seqdiff data fetch`` corpus the full recipe trains on.
        app: :class:`AppHints`.
        demo: ``"module:function"`` of this domain's section of ``seqdiff demo``, called as
            ``fn(out, num=, steps=, seed=, quiet=) -> dict`` (the dict goes into the report).
        order: position in every list of domains (smaller first).
    """

    name: str
    letter: str
    tokenizer_kind: str
    file_format: str
    metrics: Callable[..., dict[str, Any]] = field(repr=False)
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    sample_metrics: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False)
    sample_columns: tuple[str, ...] = ()
    syntax_suspects: Callable[[Sequence[str]], list[int | tuple[int, ...]]] | None = field(default=None, repr=False)
    reader_options: dict[str, Any] = field(default_factory=dict, hash=False)
    layout: str = "pad"
    join_lines: bool = False
    augmentations: tuple[str, ...] = ()
    record_options: tuple[str, ...] = ()
    template: TemplateRules = TemplateRules()
    fasta_letters: str | None = None
    ambiguity_codes: str = ""
    shipped_model: str | None = None
    recipe: str | None = None
    corpus: str | None = None
    app: AppHints | None = None
    demo: str | None = None
    order: int = 100

    # ---------------------------------------------------------------- derived
    @property
    def label(self) -> str:
        return self.app.label if self.app is not None else self.name

    @property
    def extension(self) -> str:
        """The usual suffix of a sample file (``.fa``)."""
        from .files import FORMATS

        return FORMATS[self.file_format].extension

    def write_samples(self, path, ids, seqs) -> Path:
        """Write samples in this domain's format, atomically."""
        from .files import FORMATS

        return FORMATS[self.file_format].write(path, ids, seqs)

    def read_samples(self, path) -> tuple[list[str], list[str]]:
        """``(ids, seqs)`` of a sample file in this domain's format."""
        from .files import FORMATS

        return FORMATS[self.file_format].read(path)

    def build_tokenizer(self, **overrides: Any):
        """The default tokenizer, with keyword overrides."""
        from ..tokenizers import build_tokenizer

        return build_tokenizer(self.tokenizer_kind, **{**self.tokenizer_kwargs, **overrides})

    def parse_template(self, text: str, tokenizer=None, *, max_len: int | None = None):
        """:func:`seqdiff.jobs.template.parse_template` for this domain."""
        from ..jobs.template import parse_template

        return parse_template(text, tokenizer if tokenizer is not None else self.build_tokenizer(),
                              domain=self.name, max_len=max_len)

    def per_sample(self, seq: str) -> dict[str, Any]:
        """The per-sample metrics of one output (``{}`` when the domain has none)."""
        return self.sample_metrics(seq) if self.sample_metrics is not None else {}

    @property
    def has_validity(self) -> bool:
        """Whether outputs can be invalid (a ``valid`` per-sample column)."""
        return "valid" in self.sample_columns

    def run_demo(self, out: Path, **kwargs: Any) -> dict:
        """Run this domain's demo section (``KeyError`` if it has none)."""
        if self.demo is None:
            raise KeyError(f"domain {self.name!r} has no demo section")
        module, func = self.demo.split(":")
        return getattr(importlib.import_module(module), func)(out, **kwargs)


# ------------------------------------------------------------------------------------ discovery
_DOMAINS: dict[str, Domain] | None = None


def _discover() -> dict[str, Domain]:
    from .. import domains as package

    found: list[Domain] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in ("registry", "files"):
            continue
        mod = importlib.import_module(f"{package.__name__}.{info.name}")
        dom = getattr(mod, "DOMAIN", None)
        if isinstance(dom, Domain):
            found.append(dom)
    found.sort(key=lambda d: (d.order, d.name))
    out: dict[str, Domain] = {}
    for d in found:
        if d.name in out:
            raise RuntimeError(f"two domain modules define the domain {d.name!r}")
        out[d.name] = d
    return out


def domains() -> dict[str, Domain]:
    """Every registered domain, name -> :class:`Domain`, in their ``order``."""
    global _DOMAINS
    if _DOMAINS is None:
        _DOMAINS = _discover()
    return _DOMAINS


def domain_names() -> tuple[str, ...]:
    """The registered domain names, in order (for choices and menus)."""
    return tuple(domains())


def get_domain(name: str) -> Domain:
    """The :class:`Domain` for ``name`` (``KeyError`` listing the known ones)."""
    try:
        return domains()[str(name).lower()]
    except KeyError:
        raise KeyError(f"unknown domain {name!r}; expected one of {', '.join(domains())}") from None


def guess_fasta_domain(letters: set[str]) -> str:
    """The domain of a FASTA sample file from the letters in it: the domain with the smallest
    ``fasta_letters`` that holds them all (registry order breaks ties), else a FASTA domain that
    takes any letters."""
    letters = {c.upper() for c in letters}
    fasta = [d for d in domains().values() if d.file_format == "fasta"]
    fits = [d for d in fasta if d.fasta_letters is not None and letters <= set(d.fasta_letters)]
    if fits:
        return min(fits, key=lambda d: len(d.fasta_letters or "")).name
    for d in fasta:
        if d.fasta_letters is None:
            return d.name
    raise ValueError("no FASTA domain takes these letters: " + "".join(sorted(letters)))
