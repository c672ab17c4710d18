"""Atomic file writes, in one place: every file seqdiff writes (sample files, CSVs, corpora and their
manifests, summaries, recipes; model files build on the same pieces in :mod:`seqdiff.serialization`)
goes to a temporary file in the destination's folder and is renamed into place only when complete,
so a failed, killed or interrupted write never leaves a partial file, and an earlier file of the same
name survives until the new one is complete.

Standard library only (the corpus fetcher and the one-shot GPU run use it before torch is installed).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["temp_path", "publish", "atomic_open", "atomic_write", "write_atomic", "file_mode"]

#: gzip level of the reproducible ``.gz`` outputs
GZ_LEVEL = 9


def file_mode() -> int:
    """The mode of a new regular file under the process's umask (``0o666 & ~umask``)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path: str | os.PathLike) -> Path:
    """A new empty temporary file beside ``path`` (``.<name>.*.tmp``), its folder created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Give ``tmp`` the normal file mode and rename it to ``path`` (atomic within a folder)."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)
    return Path(path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wt", gz: bool | None = None) -> Iterator[Any]:
    """Open ``path`` for writing through a temporary sibling renamed into place on success (and
    removed on any error).  ``mode`` is ``"wt"`` (UTF-8, ``\\n`` newlines) or ``"wb"``; ``gz`` (default:
    the name ends in ``.gz``) writes a reproducible gzip stream (no file name, mtime 0), so identical
    content gives identical bytes.  The data are flushed to disk before the rename."""
    path = Path(path)
    gz = path.name.endswith(".gz") if gz is None else gz
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as raw:
            gzf = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZ_LEVEL) if gz else None
            inner: Any = gzf if gzf is not None else raw
            if "b" in mode:
                yield inner
            else:
                txt = io.TextIOWrapper(inner, encoding="utf-8", newline="\n")
                yield txt
                txt.flush()
                txt.detach()
            if gzf is not None:
                gzf.close()
            raw.flush()
            os.fsync(raw.fileno())
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, gz: bool | None = False) -> Path:
    """Run ``write(fh)`` on a text file that replaces ``path`` only when ``write`` returns."""
    with atomic_open(path, "wt", gz=gz) as fh:
        write(fh)
    return Path(path)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically."""
    with atomic_open(path, "wb", gz=False) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
