"""The small committed slices under datasets/, drawn from full fetches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

from ...atomic import atomic_open
from .core import (FetchError, MANIFEST, _Logger, _human, _open_read, _rank, _read_fasta, _stderr_log,
                   _write_fasta, _write_json, corpus_dir, read_manifest, sha256_file, snap_to_space)
from .driver import verify


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
