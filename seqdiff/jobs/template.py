r"""Templates for constrained infilling.

A template says which output positions are fixed and which the model fills
in.  It is written in the domain's own alphabet with a few extra symbols:

==============  ============================================================
syntax          meaning
==============  ============================================================
letters         fixed tokens, tokenised by the domain tokenizer (SMILES
                ``Cl``, ``[nH]`` and ``%10`` are single tokens; DNA and
                protein letters are case-folded by their tokenizers)
``?``           one free position
``{k}``         a span of ``k`` free positions
``{a-b}``       a span whose length is drawn per output in ``[a, b]``
``[N:17]``      DNA, protein and text only: the same as ``{17}``; any single
                letter (or none: ``[:4]``) may stand before the colon, so
                ``[N:5-8]``, ``[X:3]`` and ``[:4]`` are spans too.  In SMILES
                ``[...]`` is a bracket atom, never a span.
``\?`` ``\{``   DNA, protein and text only: a literal ``?``, ``{``, ``[``
``\[`` ``\\``   or ``\`` (any character after a backslash is literal).  In
                SMILES the backslash is a bond and is never an escape.
==============  ============================================================

Each run of fixed letters is tokenised on its own, so with a BPE text
tokenizer no merge crosses a span boundary.

Whitespace between DNA or protein letters is ignored, so a pasted,
line-wrapped sequence works.  In text it is a fixed character like any
other, and in SMILES it is an error (as it is for the SMILES tokenizer).

Examples, one per domain::

    dna      TTGACA[N:17]TATAAT[N:5-8]     -35 and -10 boxes of a sigma-70
                                            promoter, 17 free spacer bases and
                                            5-8 free bases after the -10 box
    protein  MK{5}W?Q{2-4}                  MK, 5 free residues, W, 1 free, Q,
                                            then 2-4 free residues
    smiles   c1ccccc1{3}C(=O)O              a benzene ring, 3 free tokens, a
                                            carboxylic acid
    text     the {4} sat                    "the ", 4 free characters, " sat"

Usage::

    tpl = parse_template("TTGACA[N:17]TATAAT[N:5-8]", DNATokenizer(), domain="dna", max_len=128)
    x_fixed, fixed, spans = tpl.instantiate(np.random.default_rng(0))
    # x_fixed: LongTensor[L] with mask_id at the free positions; fixed: BoolTensor[L]

Errors raise :class:`TemplateError` (a ``ValueError``) whose ``position``
is the 1-based character of the template the problem is at.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
import torch

from ..tokenizers.base import CharLevelTokenizer, Tokenizer, TokenizerError

__all__ = [
    "TemplateError",
    "Fixed",
    "Free",
    "Template",
    "parse_template",
    "render",
    "render_runs",
    "TEMPLATE_DOMAINS",
]


def __getattr__(name: str) -> Any:
    if name == "TEMPLATE_DOMAINS":  # every registered domain has template rules
        from ..domains import domain_names
        return domain_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Generator = Union[np.random.Generator, torch.Generator]


class TemplateError(ValueError):
    """A template that cannot be parsed or does not fit.

    Attributes:
        reason: what is wrong.
        position: 1-based character of the template at fault (``None`` only
            when the problem is not tied to a character).
        token: the offending text, when there is one.
        template: the template text.
    """

    def __init__(
        self,
        reason: str,
        *,
        position: int | None = None,
        token: str | None = None,
        template: str | None = None,
    ) -> None:
        self.reason = reason
        self.position = position
        self.token = token
        self.template = template
        super().__init__(f"template character {position}: {reason}" if position is not None else reason)

    def context(self) -> str:
        """The template with a caret under the faulty character (two lines)."""
        if self.template is None or self.position is None:
            return str(self)
        line = self.template.replace("\n", " ").replace("\t", " ")
        return f"{line}\n{' ' * (self.position - 1)}^"

    def __reduce__(self):
        return (_rebuild_template_error, (self.reason, self.position, self.token, self.template))


def _rebuild_template_error(reason, position, token, template) -> TemplateError:
    return TemplateError(reason, position=position, token=token, template=template)


@dataclass(frozen=True)
class Fixed:
    """A run of fixed tokens.

    Attributes:
        ids: token ids (data ids of the tokenizer).
        text: the run as typed, escapes resolved.
        start_char: 1-based template character where the run starts.
    """

    ids: list[int]
    text: str
    start_char: int

    @property
    def length(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Free:
    """A span of free positions whose length is drawn in ``[min_len, max_len]``.

    ``start_char`` is the 1-based template character where the span starts
    (the ``?``, ``{`` or ``[``).
    """

    min_len: int
    max_len: int
    start_char: int


Segment = Union[Fixed, Free]


@dataclass
class Template:
    """A parsed template (build one with :func:`parse_template`).

    Attributes:
        segments: :class:`Fixed` and :class:`Free` segments in order.
        tokenizer: the tokenizer the fixed ids belong to.
        domain: ``"text"``, ``"dna"``, ``"protein"`` or ``"smiles"``.
        text: the template as typed.
        max_len: the longest output allowed (``None`` = no limit); span
            lengths are only ever drawn so that the total fits.
    """

    segments: list[Segment]
    tokenizer: Tokenizer
    domain: str
    text: str
    max_len: int | None = None
    _free_index: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._free_index = [i for i, s in enumerate(self.segments) if isinstance(s, Free)]

    # ------------------------------------------------------------ sizes
    @property
    def free_segments(self) -> list[Free]:
        """The :class:`Free` segments in order (one span length each)."""
        return [self.segments[i] for i in self._free_index]  # type: ignore[misc]

    @property
    def num_spans(self) -> int:
        """Number of :class:`Free` segments."""
        return len(self._free_index)

    @property
    def num_fixed(self) -> int:
        """Number of fixed token positions."""
        return sum(len(s.ids) for s in self.segments if isinstance(s, Fixed))

    @property
    def min_length(self) -> int:
        """Shortest output: fixed tokens + every span at its minimum."""
        return self.num_fixed + sum(s.min_len for s in self.free_segments)

    @property
    def max_length(self) -> int:
        """Longest output: fixed tokens + every span at its maximum, capped
        at ``max_len`` when the template has one."""
        longest = self.num_fixed + sum(s.max_len for s in self.free_segments)
        return longest if self.max_len is None else min(longest, self.max_len)

    def all_lengths(self) -> list[int]:
        """Every total length an output can have.

        Span lengths range over integer intervals, so the totals form the
        interval ``[min_length, max_length]`` and all of it is reachable.
        """
        return list(range(self.min_length, self.max_length + 1))

    # ------------------------------------------------------- instantiate
    def instantiate(
        self,
        rng: Generator | int | None = None,
        *,
        lengths: str | int | Sequence[int] = "uniform",
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """One concrete output layout.

        Args:
            rng: a numpy ``Generator``, a ``torch.Generator``, an int seed or
                ``None`` (fresh entropy).  The same seeded generator gives the
                same result.
            lengths: how to choose the span lengths:

                * ``"uniform"``: each span independently uniform in
                  ``[min_len, max_len]``; when the template has ``max_len``,
                  conditioned on the total fitting (exact rejection sampling,
                  with a sequential fallback when the total rarely fits);
                * an ``int``: the total output length; span lengths are drawn
                  uniformly among all choices that give that total;
                * a list with one length per :class:`Free` segment.

        Returns:
            ``(x_fixed, fixed, span_lengths)``: ``x_fixed`` is a
            ``LongTensor[L]`` holding the fixed ids and ``tokenizer.mask_id``
            at free positions, ``fixed`` a ``BoolTensor[L]`` (``True`` where
            fixed) and ``span_lengths`` the chosen length of each span.
        """
        draw = _drawer(rng)
        bounds = [(s.min_len, s.max_len) for s in self.free_segments]
        if isinstance(lengths, str):
            if lengths != "uniform":
                raise ValueError(
                    f"lengths must be 'uniform', a total length or a list of span lengths, got {lengths!r}"
                )
            span_lengths = self._draw_uniform(bounds, draw)
        elif isinstance(lengths, (int, np.integer)) and not isinstance(lengths, bool):
            total = int(lengths)
            if total not in range(self.min_length, self.max_length + 1):
                raise ValueError(
                    f"total length {total} is not possible for this template "
                    f"(lengths {self.min_length}-{self.max_length})"
                )
            span_lengths = _random_composition(bounds, total - self.num_fixed, draw)
        else:
            span_lengths = self._check_lengths(lengths)
        x_fixed, fixed = self._layout(span_lengths)
        return x_fixed, fixed, span_lengths

    def _draw_uniform(self, bounds: list[tuple[int, int]], draw) -> list[int]:
        budget = None if self.max_len is None else self.max_len - self.num_fixed
        if budget is None or sum(hi for _, hi in bounds) <= budget:
            return [lo + draw(hi - lo + 1) for lo, hi in bounds]
        for _ in range(64):  # exact: independent uniform draws conditioned on fitting
            out = [lo + draw(hi - lo + 1) for lo, hi in bounds]
            if sum(out) <= budget:
                return out
        # rare fit: draw spans one by one, each uniform within what is left
        out = [lo for lo, _ in bounds]
        spare = budget - sum(out)
        for i in _permutation(len(bounds), draw):
            lo, hi = bounds[i]
            extra = draw(min(hi - lo, spare) + 1)
            out[i] += extra
            spare -= extra
        return out

    def _check_lengths(self, lengths: Sequence[int]) -> list[int]:
        out = [int(v) for v in lengths]
        if len(out) != self.num_spans:
            raise ValueError(f"got {len(out)} span lengths for a template with {self.num_spans} spans")
        for k, (v, s) in enumerate(zip(out, self.free_segments)):
            if not s.min_len <= v <= s.max_len:
                raise ValueError(
                    f"span {k + 1} (template character {s.start_char}) must have length "
                    f"{s.min_len}-{s.max_len}, got {v}"
                )
        total = self.num_fixed + sum(out)
        if self.max_len is not None and total > self.max_len:
            raise ValueError(f"span lengths {out} give {total} positions; the model allows {self.max_len}")
        return out

    def _layout(self, span_lengths: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask_id = self.tokenizer.mask_id
        ids: list[int] = []
        flags: list[bool] = []
        k = 0
        for s in self.segments:
            if isinstance(s, Fixed):
                ids.extend(s.ids)
                flags.extend([True] * len(s.ids))
            else:
                n = span_lengths[k]
                k += 1
                ids.extend([mask_id] * n)
                flags.extend([False] * n)
        return torch.tensor(ids, dtype=torch.long), torch.tensor(flags, dtype=torch.bool)

    # --------------------------------------------------------- positions
    def fixed_spans_for(self, span_lengths: Sequence[int]) -> list[tuple[int, int]]:
        """0-based half-open ``(start, end)`` output positions of every fixed
        run, for the given span lengths (for highlighting)."""
        return self._spans_for(span_lengths, want_fixed=True)

    def free_spans_for(self, span_lengths: Sequence[int]) -> list[tuple[int, int]]:
        """0-based half-open ``(start, end)`` output positions of every free
        span (empty spans included, as ``(p, p)``)."""
        return self._spans_for(span_lengths, want_fixed=False)

    def _spans_for(self, span_lengths: Sequence[int], want_fixed: bool) -> list[tuple[int, int]]:
        span_lengths = list(span_lengths)
        if len(span_lengths) != self.num_spans:
            raise ValueError(f"got {len(span_lengths)} span lengths for a template with {self.num_spans} spans")
        out = []
        pos = k = 0
        for s in self.segments:
            if isinstance(s, Fixed):
                n = len(s.ids)
                if want_fixed:
                    out.append((pos, pos + n))
            else:
                n = int(span_lengths[k])
                k += 1
                if not want_fixed:
                    out.append((pos, pos + n))
            pos += n
        return out

    def render(self, ids: Any, fixed_mask: Any, *, style: str = "plain") -> str:
        """:func:`render` with this template's tokenizer."""
        return render(ids, fixed_mask, self.tokenizer, style=style)

    def describe(self) -> str:
        """One line per segment, for logs and UIs."""
        lines = []
        for s in self.segments:
            if isinstance(s, Fixed):
                lines.append(f"char {s.start_char}: fixed {s.text!r} ({len(s.ids)} tokens)")
            elif s.min_len == s.max_len:
                lines.append(f"char {s.start_char}: {s.min_len} free")
            else:
                lines.append(f"char {s.start_char}: {s.min_len}-{s.max_len} free")
        return "\n".join(lines)


# ================================================================ parsing
_SPAN_ONE = re.compile(r"\s*(\d+)\s*")
_SPAN_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")
_BRACKET = re.compile(r"\s*([A-Za-z]?)\s*:(.*)", re.S)


def parse_template(
    text: str,
    tokenizer: Tokenizer,
    *,
    domain: str,
    max_len: int | None = None,
) -> Template:
    """Parse a template (syntax in the module docstring).

    Args:
        text: the template as typed.
        tokenizer: the domain tokenizer; fixed letters are encoded with it.
        domain: a registered domain (:func:`seqdiff.domains.domain_names`); its
            :class:`~seqdiff.domains.TemplateRules` decide
            decides whether ``[...]`` is a span and ``\\`` an escape.
        max_len: the longest output the model allows; a template that needs
            more raises, and longer span draws are never made.

    Raises:
        TemplateError: with the 1-based template character, for an unclosed
            ``{`` or ``[``, an empty or non-numeric span, a range ``a > b``,
            a template with no positions at all, a letter the tokenizer
            rejects, or a minimum length above ``max_len``.
    """
    if not isinstance(text, str):
        raise TypeError(f"template must be a str, got {type(text).__name__}")
    from ..domains import domains

    rules = domains().get(domain)
    if rules is None:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(domains())}")
    rules = rules.template
    if max_len is not None and int(max_len) < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    bracket_spans = rules.bracket_spans  # False in SMILES: `[...]` is a bracket atom and a backslash a bond
    skip_space = rules.skip_whitespace

    def fail(reason: str, pos: int | None, token: str | None = None) -> TemplateError:
        return TemplateError(reason, position=pos, token=token, template=text)

    segments: list[Segment] = []
    chars: list[str] = []
    where: list[int] = []  # 1-based template position of each literal character

    def flush() -> None:
        if not chars:
            return
        run = "".join(chars)
        try:
            ids = tokenizer.encode(run)
        except TokenizerError as e:
            pos = where[e.position - 1] if e.position is not None and 0 < e.position <= len(where) else where[0]
            raise fail(e.reason, pos, e.token) from None
        if isinstance(tokenizer, CharLevelTokenizer) and len(ids) != len(run):
            # a tokenizer hook dropped characters (a protein's trailing stop '*')
            pos = where[len(ids)] if len(ids) < len(where) else where[-1]
            raise fail(f"{run[len(ids)]!r} cannot be a fixed letter in a {domain} template", pos, run[len(ids)])
        segments.append(Fixed(list(ids), run, where[0]))
        chars.clear()
        where.clear()

    def span(inner: str, pos: int, shown: str) -> tuple[int, int]:
        if not inner.strip():
            raise fail(f"empty span {shown}: give a length like {{5}} or a range like {{5-8}}", pos, shown)
        m = _SPAN_ONE.fullmatch(inner)
        if m:
            k = int(m.group(1))
            return k, k
        m = _SPAN_RANGE.fullmatch(inner)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise fail(f"bad range {shown}: the lower bound {a} is larger than the upper bound {b}", pos, shown)
            return a, b
        raise fail(
            f"span length must be a whole number or a range a-b, got {inner.strip()!r} in {shown}", pos, shown
        )

    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and bracket_spans:
            if i + 1 >= n:
                raise fail("a '\\' at the end of the template escapes nothing (write '\\\\' for a backslash)", i + 1, c)
            chars.append(text[i + 1])
            where.append(i + 2)
            i += 2
        elif c == "?":
            flush()
            segments.append(Free(1, 1, i + 1))
            i += 1
        elif c == "{":
            close = text.find("}", i + 1)
            nested = text.find("{", i + 1)
            if close < 0 or 0 <= nested < close:
                raise fail("unclosed '{'", i + 1, c)
            lo, hi = span(text[i + 1 : close], i + 1, text[i : close + 1])
            flush()
            segments.append(Free(lo, hi, i + 1))
            i = close + 1
        elif c == "[" and bracket_spans:
            close = text.find("]", i + 1)
            nested = text.find("[", i + 1)
            if close < 0 or 0 <= nested < close:
                raise fail("unclosed '['", i + 1, c)
            shown = text[i : close + 1]
            m = _BRACKET.fullmatch(text[i + 1 : close])
            if m is None:
                raise fail(
                    f"{shown} is not a span: write [N:17], [N:5-8] or [:4] (or \\[ for a literal '[')", i + 1, shown
                )
            lo, hi = span(m.group(2), i + 1, shown)
            flush()
            segments.append(Free(lo, hi, i + 1))
            i = close + 1
        elif skip_space and c.isspace():
            i += 1
        else:
            chars.append(c)
            where.append(i + 1)
            i += 1
    flush()

    tpl = Template(segments, tokenizer, domain, text, None if max_len is None else int(max_len))
    longest = tpl.num_fixed + sum(s.max_len for s in tpl.free_segments)
    if longest == 0:
        raise fail("the template has no positions (it is empty or only has zero-length spans)", 1)
    if max_len is not None and tpl.min_length > max_len:
        run = 0
        pos = segments[-1].start_char
        for s in segments:
            run += len(s.ids) if isinstance(s, Fixed) else s.min_len
            if run > max_len:
                pos = s.start_char
                break
        raise fail(f"template needs at least {tpl.min_length} positions; the model allows {max_len}", pos)
    if max_len is not None:
        # a span whose upper end can never be reached is an error, not silently clamped
        for s in tpl.free_segments:
            room = max_len - (tpl.min_length - s.min_len)
            if s.max_len > room:
                span = f"{{{s.min_len}-{s.max_len}}}" if s.min_len != s.max_len else f"{{{s.max_len}}}"
                fix = f"{{{s.min_len}-{room}}}" if room > s.min_len else f"{{{room}}}"
                raise fail(f"span {span} can never reach {s.max_len}: the model allows {max_len} positions and "
                           f"the rest of the template needs {tpl.min_length - s.min_len}; write {fix}",
                           s.start_char)
    return tpl


# ================================================================ random draws
def _drawer(rng: Generator | int | None):
    """``draw(n)`` -> uniform int in ``[0, n)`` from a numpy or torch generator."""
    if isinstance(rng, torch.Generator):

        def draw(n: int) -> int:
            return int(torch.randint(0, n, (1,), generator=rng).item()) if n > 1 else 0

        return draw
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator, a torch.Generator, an int seed or None, got {type(rng).__name__}"
        )
    gen = rng

    def draw_np(n: int) -> int:
        return int(gen.integers(0, n)) if n > 1 else 0

    return draw_np


def _permutation(n: int, draw) -> list[int]:
    order = list(range(n))
    for i in range(n - 1, 0, -1):  # Fisher-Yates
        j = draw(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def _random_composition(bounds: list[tuple[int, int]], total: int, draw) -> list[int]:
    """Span lengths within ``bounds`` summing to ``total``, uniform over all
    such choices (counting by dynamic programming, then sampling span by span)."""
    k = len(bounds)
    if k == 0:
        return []
    # ways[i][r]: number of ways spans i..k-1 sum to r (floats: counts can be large)
    ways = np.zeros((k + 1, total + 1))
    ways[k][0] = 1.0
    for i in range(k - 1, -1, -1):
        lo, hi = bounds[i]
        cum = np.concatenate([[0.0], np.cumsum(ways[i + 1])])
        for r in range(total + 1):
            a, b = r - hi, r - lo  # the rest sums to r - v for v in [lo, hi]
            if b < 0:
                continue
            ways[i][r] = cum[b + 1] - cum[max(a, 0)]
    out = []
    left = total
    for i, (lo, hi) in enumerate(bounds):
        vs = [v for v in range(lo, min(hi, left) + 1) if ways[i + 1][left - v] > 0]
        w = np.array([ways[i + 1][left - v] for v in vs])
        # draw in units of 1/2**30 of the total weight
        u = draw(1 << 30) / float(1 << 30) * w.sum()
        j = min(int(np.searchsorted(np.cumsum(w), u, side="right")), len(vs) - 1)
        out.append(vs[j])
        left -= vs[j]
    return out


# ================================================================ rendering
def render_runs(ids: Any, fixed_mask: Any, tokenizer: Tokenizer) -> list[tuple[str, bool]]:
    """Decode ``ids`` into ``(text, is_fixed)`` runs of equal fixedness."""
    id_list = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    mask = fixed_mask.tolist() if hasattr(fixed_mask, "tolist") else list(fixed_mask)
    if len(id_list) != len(mask):
        raise ValueError(f"{len(id_list)} ids but {len(mask)} fixed flags")
    runs: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(id_list) + 1):
        if i == len(id_list) or bool(mask[i]) != bool(mask[start]):
            runs.append((tokenizer.decode(id_list[start:i]), bool(mask[start])))
            start = i
    return runs


def render(ids: Any, fixed_mask: Any, tokenizer: Tokenizer, *, style: str = "plain") -> str:
    """Decode an output and mark which parts were fixed by the template.

    Styles: ``"plain"`` (just the decoded text), ``"brackets"`` (generated
    runs wrapped in ``«»``), ``"html"`` (``<span class="fixed">`` and
    ``<span class="generated">``, text escaped) and ``"ansi"`` (generated
    runs in bold for terminals).
    """
    runs = render_runs(ids, fixed_mask, tokenizer)
    if style == "plain":
        return "".join(t for t, _ in runs)
    if style == "brackets":
        return "".join(t if f else f"«{t}»" for t, f in runs)
    if style == "html":
        return "".join(
            f'<span class="{"fixed" if f else "generated"}">{html.escape(t)}</span>' for t, f in runs
        )
    if style == "ansi":
        return "".join(t if f else f"\x1b[1m{t}\x1b[0m" for t, f in runs)
    raise ValueError(f"unknown style {style!r}; expected plain, brackets, html or ansi")
