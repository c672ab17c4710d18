"""One converter per corpus: extracted package members -> the project's standard files and splits."""

from __future__ import annotations

import bz2
import json
import re
import shutil
import sqlite3
import time
from typing import Callable, Sequence

from ...jobs.variants import apply_mutant, mutant_from_sequences
from .cleaners import (consensus_sequence, iupac_consensus, motif_consensus, parse_mutant, untag_brown,
                       wiki_xml_to_text8)
from .core import (FetchError, SEED, SPLITS, _Logger, _member, _read_fasta, _split_text_blocks, _write_fasta,
                   split_contiguous, split_groups, split_records)
from .driver import _Staging


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
