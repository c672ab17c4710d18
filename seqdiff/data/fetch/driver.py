"""The fetch driver: download, verify checksums, convert through a staging folder, write the
manifest last; and verification of fetched outputs."""

from __future__ import annotations

import fnmatch
import io
import os
import shlex
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ...atomic import atomic_open
from .clients import _download, _extract, _meta_patterns, _read_license
from .core import (ChecksumError, Corpus, FORMAT_VERSION, FetchError, MANIFEST, SEED, _Logger, _digest_members,
                   _get, _human, _stderr_log, _write_json, corpus_dir, read_manifest, sha256_file)


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
