"""Pure conversion helpers: the text8 cleaner of Wikipedia markup, Brown corpus untagging, DMS
variant notation and motif consensus strings (unit-tested on their own)."""

from __future__ import annotations

import io
import re
from typing import Iterable, Iterator, Sequence
from xml.etree import ElementTree

from ...jobs import variants as _variants


# ============================================================== text: wikipedia -> text8
_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DROP_TAGS = ("ref", "math", "timeline", "gallery", "syntaxhighlight", "source", "score",
              "chem", "ce", "hiero", "imagemap", "graph", "mapframe", "templatedata")
_DROP_TAG_RES = [re.compile(rf"<{t}\b[^>]*?(?<!/)>.*?</{t}\s*>", re.S | re.I) for t in _DROP_TAGS]
_SELF_CLOSING_REF = re.compile(r"<ref\b[^>]*/\s*>", re.I)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TEMPLATE = re.compile(r"\{\{(?:(?!\{\{|\}\})[\s\S])*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\})[\s\S])*\|\}")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_BRACKETS = re.compile(r"\[\[|\]\]")
_EXT_LINK = re.compile(r"\[(?:https?:|ftp:|mailto:|news:|irc:|//)[^\s\]]*\s*([^\]]*)\]", re.I)
_BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>\]|]+", re.I)
_ENTITY = re.compile(r"&[a-zA-Z0-9#]+;")
_MAGIC = re.compile(r"__[A-Z]+__")
_NON_AZ = re.compile(r"[^a-z]+")
_IMAGE_NS = {"file", "image", "media"}
_LANG_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
_IMAGE_OPT = re.compile(
    r"^\s*(?:thumb|thumbnail|frame|framed|frameless|border|left|right|center|centre|none|"
    r"upright(?:\s*=?\s*[\d.]+)?|baseline|middle|sub|super|top|text-top|bottom|text-bottom|"
    r"\d*x?\d+\s*px|(?:alt|link|page|class|lang|upright|thumb|thumbnail)\s*=.*)\s*$",
    re.I,
)


def _link_text(inner: str) -> str:
    parts = inner.split("|")
    target = parts[0].strip()
    leading_colon = target.startswith(":")
    if leading_colon:
        target = target[1:].strip()
    if ":" in target:
        ns = target.split(":", 1)[0].strip().lower()
        if ns in _IMAGE_NS and not leading_colon:
            captions = [p for p in parts[1:] if p.strip() and not _IMAGE_OPT.match(p)]
            return f" {captions[-1]} " if captions else " "
        if ns == "category" and not leading_colon:
            return f" {target.split(':', 1)[1]} "  # shown as plain words, as text8 does
        if _LANG_CODE.match(ns) and not leading_colon and len(parts) == 1:
            return " "  # interlanguage link: not visible text
    if len(parts) > 1:
        shown = parts[-1]
        return shown if shown.strip() else target.split(":", 1)[-1]  # pipe trick
    return target


def _resolve_links(s: str) -> str:
    """Replace every ``[[...]]`` by its visible text, innermost first; single
    brackets inside captions (``Bicyclo[1.1.0]butane``) do not confuse it."""
    stack: list[list[str]] = [[]]
    pos = 0
    for m in _BRACKETS.finditer(s):
        stack[-1].append(s[pos:m.start()])
        pos = m.end()
        if m.group() == "[[":
            stack.append([])
        elif len(stack) > 1:
            inner = "".join(stack.pop())
            stack[-1].append(_link_text(inner))
        else:
            stack[-1].append(" ")  # stray closing brackets
    stack[-1].append(s[pos:])
    while len(stack) > 1:  # unclosed link: keep its text
        inner = "".join(stack.pop())
        stack[-1].append(" " + inner)
    return "".join(stack[0])


def _remove_nested(s: str) -> str:
    """Remove templates ``{{...}}`` and tables ``{|...|}``, innermost first."""
    while True:
        t = _TEMPLATE.sub(" ", s)
        t = _TABLE.sub(" ", t)
        if t == s:
            return s
        s = t


def clean_wikitext(markup: str, spell_digits: bool = True) -> str:
    """Clean one article's wiki markup the text8 way.

    Keeps only the text a reader sees: comments, ``<ref>`` references and
    other non-prose tags (math, gallery, ...) are dropped with their content,
    templates ``{{...}}`` and tables ``{|...|}`` are dropped (nested ones
    too), ``[[target|shown]]`` becomes ``shown`` and ``[[target]]`` becomes
    ``target``, image links keep their caption, interlanguage links vanish,
    ``[http://url text]`` keeps ``text``, remaining HTML tags and entities go.
    Then, as Matt Mahoney's ``wikifil.pl`` (text8): upper case is folded to
    lower case, each digit is spelled out (``1`` -> `` one ``) unless
    ``spell_digits=False``, and every run of characters outside ``a``-``z``
    becomes a single space.  The result has no leading/trailing space.
    """
    s = _COMMENT.sub(" ", markup)
    s = _SELF_CLOSING_REF.sub(" ", s)
    for rx in _DROP_TAG_RES:
        s = rx.sub(" ", s)
    s = _remove_nested(s)
    s = _HTML_TAG.sub(" ", s)
    s = _resolve_links(s)
    s = _EXT_LINK.sub(r" \1 ", s)
    s = _BARE_URL.sub(" ", s)
    s = _MAGIC.sub(" ", s)
    s = _ENTITY.sub(" ", s)
    s = s.lower()
    if spell_digits:
        s = re.sub(r"[0-9]", lambda m: f" {_DIGITS[int(m.group())]} ", s)
    return _NON_AZ.sub(" ", s).strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def iter_wiki_articles(stream: io.IOBase, namespaces: tuple[str, ...] = ("0",)) -> Iterator[tuple[str, str]]:
    """Yield ``(title, wikitext)`` for the article pages of a MediaWiki XML
    export (any schema version).  Redirects and pages outside ``namespaces``
    (main namespace only by default) are skipped."""
    title = ns = text = None
    redirect = False
    for event, el in ElementTree.iterparse(stream, events=("end",)):
        tag = _local(el.tag)
        if tag == "title":
            title = el.text or ""
        elif tag == "ns":
            ns = (el.text or "").strip()
        elif tag == "redirect":
            redirect = True
        elif tag == "text":
            text = el.text or ""
        elif tag == "page":
            is_redirect = redirect or bool(re.match(r"\s*#redirect", text or "", re.I))
            if not is_redirect and (ns is None or ns in namespaces) and text:
                yield title or "", text
            title = ns = text = None
            redirect = False
            el.clear()


def wiki_xml_to_text8(stream: io.IOBase, spell_digits: bool = True) -> tuple[str, list[str]]:
    """Clean every article of a MediaWiki XML export and join them with single
    spaces into one text8-style stream.  Returns ``(text, titles)``."""
    parts, titles = [], []
    for title, markup in iter_wiki_articles(stream):
        cleaned = clean_wikitext(markup, spell_digits=spell_digits)
        if cleaned:
            parts.append(cleaned)
            titles.append(title)
    return " ".join(parts), titles


# ============================================================== text: brown
def untag_brown(line: str) -> list[str]:
    """Tokens of one tagged Brown-corpus line with the ``/tag`` suffixes removed
    (``The/at Fulton/np-tl`` -> ``["The", "Fulton"]``; ``1/2/cd`` -> ``1/2``)."""
    out = []
    for tok in line.split():
        word = tok.rsplit("/", 1)[0] if "/" in tok else tok
        if word:
            out.append(word)
    return out


# ============================================================== variants: DMS notation
def parse_mutant(mutant: str) -> list[tuple[str, int, str]]:
    """Strict DMS parsing, as the converters write mutants: ``"A23G:K45R"`` ->
    ``[("A", 23, "G"), ("K", 45, "R")]``, ``"WT"`` -> ``[]``; positions must be
    strictly increasing and no residue may be substituted by itself.  See
    :func:`seqdiff.jobs.variants.parse_mutant` (``strict=True``)."""
    return _variants.parse_mutant(mutant, strict=True)


def consensus_sequence(seqs: Iterable[str]) -> str:
    """Most frequent letter at each position of equal-length sequences
    (the wild type of a deep-mutational scan of sparse mutants)."""
    counts: list[dict[str, int]] | None = None
    for s in seqs:
        if counts is None:
            counts = [dict() for _ in s]
        if len(s) != len(counts):
            raise ValueError("sequences differ in length")
        for c, ch in zip(counts, s):
            c[ch] = c.get(ch, 0) + 1
    if not counts:
        raise ValueError("no sequences")
    return "".join(max(sorted(c), key=lambda k: c[k]) for c in counts)


# ============================================================== motifs
_IUPAC2 = {frozenset("AC"): "M", frozenset("AG"): "R", frozenset("AT"): "W",
           frozenset("CG"): "S", frozenset("CT"): "Y", frozenset("GT"): "K"}
_IUPAC3 = {frozenset("ACG"): "V", frozenset("ACT"): "H", frozenset("AGT"): "D", frozenset("CGT"): "B"}


def motif_consensus(counts: dict[str, Sequence[float]]) -> str:
    """Most frequent base per column (ties: A < C < G < T)."""
    n = len(counts["A"])
    return "".join(max("ACGT", key=lambda b: (counts[b][i], -"ACGT".index(b))) for i in range(n))


def iupac_consensus(counts: dict[str, Sequence[float]]) -> str:
    """Degenerate consensus after Cavener (1987): a base if its frequency is
    > 50 % and more than twice the second; else a two-base code if the top two
    exceed 75 %; else a three-base code if one base is absent; else ``N``."""
    out = []
    for i in range(len(counts["A"])):
        col = {b: float(counts[b][i]) for b in "ACGT"}
        tot = sum(col.values()) or 1.0
        fr = sorted(((v / tot, b) for b, v in col.items()), reverse=True)
        (f1, b1), (f2, b2) = fr[0], fr[1]
        if f1 > 0.5 and f1 > 2 * f2:
            out.append(b1)
        elif f1 + f2 > 0.75:
            out.append(_IUPAC2[frozenset((b1, b2))])
        elif fr[3][0] == 0:
            out.append(_IUPAC3[frozenset(b for _, b in fr[:3])])
        else:
            out.append("N")
    return "".join(out)
