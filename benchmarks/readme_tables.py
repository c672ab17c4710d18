"""The README's result tables, generated from ``benchmarks/results/*.json``.

A generated block in ``README.md`` sits between two markers, each on a line of its own::

    <!-- results:NAME -->
    ...whatever the builder NAME writes...
    <!-- /results:NAME -->

and the text between them is exactly what the registered builder ``NAME`` returns for the JSON
in ``benchmarks/results/`` (``tests/test_readme_tables.py`` checks this for every block, and that
every builder is used). Run after a benchmark::

    python benchmarks/readme_tables.py            # rewrite every block in README.md
    python benchmarks/readme_tables.py --check    # exit 1, with a diff, if the README is stale

To add a table: write a function ``results dir -> markdown`` and register it with
``@table("name")``; put ``<!-- results:name -->`` / ``<!-- /results:name -->`` where it belongs in
the README and run the script. Builders read JSON only (no torch, no models), so this runs in a
second. Prose around the blocks stays hand-written; keep numbers quoted there in step with the
tables.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

#: name -> builder(results_dir) -> markdown (no trailing newline needed)
TABLES: dict[str, Callable[[Path], str]] = {}

# markers are whole lines (a marker quoted inside a sentence is text)
_BLOCK = re.compile(r"^<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)^<!-- /results:(?P=name) -->$", re.S | re.M)
_OPEN = re.compile(r"^<!-- (/?)results:([\w-]+) -->$", re.M)


def table(name: str):
    """Register a README table builder under ``name``."""
    def deco(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        if name in TABLES:
            raise ValueError(f"table {name!r} is registered twice")
        TABLES[name] = fn
        return fn
    return deco


def _load(results: Path, name: str):
    return json.loads((results / name).read_text(encoding="utf-8"))


def md_table(rows: list[dict], cols: list[str], fmt: dict | None = None) -> str:
    """The benchmark tables' markdown (``benchmarks/tables.py`` writes the same): floats with 3
    decimals unless ``fmt`` says otherwise, non-finite as an em dash."""
    fmt = fmt or {}
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if isinstance(v, float):
                v = fmt.get(c, "{:.3f}").format(v) if math.isfinite(v) else "—"
            cells.append(str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


# ------------------------------------------------------------------ benchmarks/tables.py results
LABEL = {"masked": "MD4/MDLM masked", "sedd_absorb": "SEDD absorb", "sedd_uniform": "SEDD uniform",
         "multinomial": "multinomial", "ar": "AR baseline"}


@table("likelihood")
def _likelihood(results: Path) -> str:
    r = _load(results, "results.json")
    methods = r["settings"]["methods"]
    rows = [{"domain": dom, **{LABEL[m]: ev[m]["bits_per_token"] for m in methods}}
            for dom, ev in r["likelihood"].items()]
    se = "; ".join(f"{dom}: " + ", ".join(f"{LABEL[m]} {ev[m]['bits_per_token_stderr']:.3f}"
                                          for m in methods if m != "ar")
                   for dom, ev in r["likelihood"].items())
    return (md_table(rows, ["domain"] + [LABEL[m] for m in methods])
            + "\nMonte Carlo standard errors of the bounds: " + se + "\n")


@table("generation")
def _generation(results: Path) -> str:
    r = _load(results, "results.json")
    s = r["settings"]
    out = [f"#### 2. Generation ({s['samples']} samples, default sampler, {s['sample_steps']} steps)\n"]
    for cols, doms in [(["validity", "uniqueness", "novelty", "FCD"], ["smiles"]),
                       (["3-mer JS", "3-mer JS shuffled"], ["dna", "protein"]),
                       (["gen. perplexity (AR)", "entropy (bits/char)"], ["text8"])]:
        rows = [g for g in r["generation"] if g["domain"] in doms]
        if rows:
            out.append(md_table(rows, ["domain", "method"] + cols))
    ref = r.get("text_reference")
    if ref:
        out.append(f"Held-out text8 windows for comparison: gen. perplexity {ref['gen_ppl']:.2f}, "
                   f"entropy {ref['entropy']:.3f} bits/char.\n")
    return "\n".join(out)


@table("steps")
def _steps(results: Path) -> str:
    r = _load(results, "results.json")
    return md_table(r["steps"], ["model", "sampler", "steps", "gen. perplexity", "entropy", "seconds",
                                 "network evals", "rows evaluated"], {"seconds": "{:.2f}"})


@table("variants")
def _variants(results: Path) -> str:
    r = _load(results, "results.json")
    return (f"#### 4. GB1 variant effects ({r['settings']['variants']} double mutants, Olson et al. 2014): "
            "Spearman with measured fitness (models trained on UniProt only, zero-shot)\n\n"
            + md_table(r["variants"], ["method", "Spearman", "variants/s"], {"variants/s": "{:.0f}"}))


@table("speed")
def _speed(results: Path) -> str:
    r = _load(results, "results.json")
    return md_table(r["speed"], ["domain", "method", "train tokens/s", "sample seq/s"],
                    {"train tokens/s": "{:,.0f}", "sample seq/s": "{:.2f}"})


@table("gb1-singles")
def _gb1_singles(results: Path) -> str:
    r = _load(results, "gb1_singles.json")
    lines = ["| method | Spearman with stability (−ΔΔG_fold) | 95 % bootstrap interval | p | mutants |",
             "|---|---|---|---|---|"]
    for row in r["rows"]:
        lo, hi = row["ci95"]
        lines.append(f"| {row['method']} | {row['spearman']:+.3f} | {lo:+.3f} to {hi:+.3f} | "
                     f"{row['p_value']:.2g} | {row['n']} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ benchmarks/bench_variants.py results
_ZS_LABEL = {"blosum62": "BLOSUM62", "masked_marginal": "masked marginal, joint (shipped protein model)",
             "masked_marginal_additive": "masked marginal, additive (sum of singles)",
             "family (jackhmmer homologs)": "family model (fine-tuned on jackhmmer homologs)",
             "elbo": "ELBO difference, joint"}
_SUP = ("one-hot ridge", "one-hot + masked marginal (Hsu)", "few-shot augmented", "few-shot augmented + pairs",
        "few-shot augmented, GP")


@table("variant-effects")
def _variant_effects(results: Path) -> str:
    r = _load(results, "variants.json")
    sizes = r["sizes"]
    out = []
    for metric, name in (("spearman", "Spearman"), ("ndcg10", "NDCG@top 10 %")):
        lines = [f"**{name}** (zero-shot: over every variant, or the random subsample shown; n = labelled "
                 f"training variants: mean ± sd over {r['splits']} random splits, scored on all the others; "
                 f"s / 1k variants for a regression: fit + predict at its largest n, plus its zero-shot features)\n",
                 "| assay | method | zero-shot | " + " | ".join(f"n = {n}" for n in sizes) + " | s / 1k variants |",
                 "|---|---|---|" + "---|" * len(sizes) + "---|"]
        for assay, a in r["assays"].items():
            label = f"{assay} ({a['n']:,})"
            for z in a["zero_shot"]:
                sub = f" (n = {z['n']})" if z["n"] != a["n"] else ""
                lines.append(f"| {label} | {_ZS_LABEL.get(z['method'], z['method'])} | {z[metric]:+.3f}{sub} | "
                             + " | ".join("" for _ in sizes) + f" | {z['s_per_1k']:.3g} |")
                label = ""
            for m in _SUP:
                by = {row["size"]: row for row in a["supervised"] if row["method"] == m}
                if not by:
                    continue
                cells = [f"{by[n][metric]:+.3f} ± {by[n][metric + '_sd']:.3f}" if n in by else "—" for n in sizes]
                cost = max(row["s_per_1k"] for row in by.values())
                lines.append(f"| {label} | {m} | | " + " | ".join(cells) + f" | {cost:.3g} |")
                label = ""
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


# ------------------------------------------------------------ benchmarks/bench_correct.py results
def _pct(v: float, nd: int = 2) -> str:
    return f"{100 * v:.{nd}f} %"


def _correct_rows(results: Path):
    rows = _load(results, "correct.json")
    return ([r for r in rows if "reads" not in r and "quality" not in r], [r for r in rows if "reads" in r],
            [r for r in rows if "quality" in r])


@table("correct")
def _correct(results: Path) -> str:
    single, _, _ = _correct_rows(results)
    cols = [("oneshot_known", "one-shot, r known"), ("oneshot_em", "one-shot, r̂ EM"),
            ("oneshot_pll", "one-shot, r̂ PLL"), ("multistep_draws", "multi-step draws, r known"),
            ("multistep_known", "multi-step draws + mode, r known"), ("mask_known", "mask (masked model), r known")]
    cols = [(k, h) for k, h in cols if any(k in r for r in single)]
    lines = ["| domain | r | chars | input error | fixable at most | " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * (5 + len(cols))]
    for r in single:
        cells = [(_pct(r[k]) + (f" (r̂ {100 * r[k + '_rate']:.1f} %)" if k + "_rate" in r else "")) if k in r
                 else "—" for k, _ in cols]
        fix = _pct(r["fixable"], 1) if "fixable" in r else "—"
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['n_chars']} | {_pct(r['input'])} | {fix} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@table("correct-ar")
def _correct_ar(results: Path) -> str:
    single, _, _ = _correct_rows(results)
    lines = ["| domain | r | chars | input error | one-shot, uniform model | AR baseline (exact posteriors) | "
             "AR seconds |", "|---|---|---|---|---|---|---|"]
    for r in (r for r in single if "ar" in r):
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['ar_chars']} | {_pct(r['ar_input'])} | "
                     f"{_pct(r['ar_subset_oneshot'])} | {_pct(r['ar'])} | {r['ar_s']} |")
    return "\n".join(lines) + "\n"


@table("correct-reads")
def _correct_reads(results: Path) -> str:
    _, multi, _ = _correct_rows(results)
    cols = [("vote", "majority vote (ties at random)"), ("consensus_known", "consensus, uniform model, r known"),
            ("consensus_est", "consensus, uniform model, r̂ from the reads"),
            ("consensus_mask", "consensus, masked model, r known")]
    cols = [(k, h) for k, h in cols if any(k in r for r in multi)]
    lines = ["| domain | reads | r | chars | error of a read | " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * (5 + len(cols))]
    for r in multi:
        cells = [(_pct(r[k]) + (f" (r̂ {100 * r[k + '_rate']:.1f} %)" if k + "_rate" in r else "")) if k in r
                 else "—" for k, _ in cols]
        lines.append(f"| {r['domain']} | {r['reads']} | {100 * r['rate']:g} % | {r['n_chars']} | "
                     f"{_pct(r['input'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@table("correct-quality")
def _correct_quality(results: Path) -> str:
    _, _, qual = _correct_rows(results)
    cols = [("ignore_quality", "one-shot, qualities ignored (r known)"),
            ("quality_uniform", "qualities, uniform model"), ("quality_mask", "qualities, masked model")]
    cols = [(k, h) for k, h in cols if any(k in r for r in qual)]
    lines = ["| domain | mean error probability | chars | input error | " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * (4 + len(cols))]
    for r in qual:
        cells = [_pct(r[k]) if k in r else "—" for k, _ in cols]
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['n_chars']} | {_pct(r['input'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------- benchmarks/bench_calibration.py results
@table("calibration")
def _calibration(results: Path) -> str:
    r = _load(results, "calibration.json")
    lines = ["| domain | motif | windows (sequences) | letters | model | data ± s.e. | shift: model / data "
             "(ratio) | TV (sampling floor) | k-mer JS (floor) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dom, d in r["domains"].items():
        for m in d["motifs"]:
            if "k1" not in m:
                lines.append(f"| {dom} | `{m['motif']}` | {m['windows']} ({m['sequences']}) | — | — | — | — | — | — |")
                continue
            k1 = m["k1"]
            kk = m.get(f"k{d['k']}") if d["k"] > 1 else None
            js = f"{kk['mean_js']:.3f} ({kk['mean_js_noise']:.3f}), k = {d['k']}" if kk else "—"
            tv = f"{k1['mean_tv']:.3f} ({k1['mean_tv_noise']:.3f})"
            for gname, g in m.get("groups", {}).items():
                se = g.get("data_conditional_stderr", float("nan"))
                resolved = abs(g.get("data_shift_z", 0.0)) >= 2
                ratio = f"{g['shift_ratio']:.2f}" if resolved else "data shift < 2 s.e."
                lines.append(
                    f"| {dom} | `{m['motif']}` | {m['windows']} ({m['sequences']}) | {gname} | "
                    f"{g['model_conditional']:.3f} | {g['data_conditional']:.3f} ± {se:.3f} | "
                    f"{g['model_shift']:+.3f} / {g['data_shift']:+.3f} ({ratio}) | {tv} | {js} |")
                tv, js = "″", "″"
    return "\n".join(lines) + "\n"


# ------------------------------------------------------- benchmarks/bench_smiles_coverage.py results
@table("smiles-coverage")
def _smiles_coverage(results: Path) -> str:
    r = _load(results, "smiles_coverage.json")
    lines = ["| molecule set | form | RDKit-parsable | `parts` scheme (new models) | shipped model's vocabulary "
             f"({r['shipped_vocabulary_size']} tokens) | decode(encode(s)) = s |",
             "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['set']} | {row['form']} | {row['parsable']:,} | {_pct(row['parts_coverage'])} | "
                     f"{_pct(row['shipped_coverage'])} | {row['roundtrip']:,} / {row['parts_covered']:,} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ benchmarks/bench_samplers.py results
#: the columns of each domain's sample-quality table, in order
SAMPLER_KEYS = {"smiles": ["validity", "uniqueness", "novelty", "fcd"],
                "text": ["generative_perplexity", "entropy_bits_per_char"],
                "dna": ["kmer3_js", "kmer3_js_shuffled", "gc_content", "tata_per_kb"],
                "protein": ["composition_js", "kmer3_js", "kmer3_js_shuffled"]}
SAMPLER_ORDER = ["ancestral", "ancestral top-p 0.9", "remdm cap η=0.05", "confidence prob", "confidence max",
                 "confidence margin", "confidence prob thr 0.9", "confidence prob block 32",
                 "confidence prob polish 0.25", "confidence prob block 32 polish 0.25",
                 "confidence prob noise 0.1 polish 0.4"]


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sampler_table(rows: list[dict], domain: str) -> str:
    """One domain's sampler × steps table (held-out data first, the target of every column)."""
    rs = [r for r in rows if r["domain"] == domain and r["setting"] != "held-out data"]
    ref = [r for r in rows if r["domain"] == domain and r["setting"] == "held-out data"]
    keys = [k for k in SAMPLER_KEYS[domain] if any(k in r for r in rs)]
    out = ["| sampler | steps | NFE | network rows per sample | seq/s | " + " | ".join(keys) + " |",
           "|---|---|---|---|---|" + "---|" * len(keys)]

    def cell(v) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    for r in ref:
        out.append("| held-out data | | | | | " + " | ".join(cell(r.get(k)) for k in keys) + " |")
    order = {name: i for i, name in enumerate(SAMPLER_ORDER)}
    for r in sorted(rs, key=lambda r: (order.get(r["setting"], 99), r["steps"])):
        out.append(f"| {r['setting']} | {r['steps']} | {r['nfe']:.0f} | {r['rows_per_sample']:.1f} | "
                   f"{r['seq_per_s']:.1f} | " + " | ".join(cell(r.get(k)) for k in keys) + " |")
    return "\n".join(out) + "\n"


def _samplers_block(domain: str):
    def build(results: Path) -> str:
        return sampler_table(load_jsonl(results / "samplers.jsonl"), domain)
    return build


for _d in ("smiles", "text", "dna", "protein"):
    table(f"samplers-{_d}")(_samplers_block(_d))


@table("samplers-smiles-1000")
def _samplers_smiles_1000(results: Path) -> str:
    return sampler_table(load_jsonl(results / "samplers_smiles_1000.jsonl"), "smiles")


@table("sampler-step")
def _sampler_step(results: Path) -> str:
    rows = _load(results, "sampler_step.json")
    lines = ["| states | sampler | dense float64 (before) | sparse (now) | dense float32 reference |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['vocab']:,} | {r['sampler']} | {r['dense_f64_ms']:.1f} ms | {r['sparse_ms']:.1f} ms | "
                     f"{r['dense_f32_ms']:.1f} ms |")
    return "\n".join(lines) + "\n"


@table("elbo-stderr")
def _elbo_stderr(results: Path) -> str:
    r = _load(results, "elbo_stderr.json")
    label = {"naive": "spread of the terms (before)", "collapsed_strata": "collapsed strata (default now)",
             "replicates": "8 replicate grids (`replicates=8`)"}
    lines = ["| standard error | spread of the estimate over seeds (nats) | mean reported | root-mean-square "
             "reported / spread | 95 % interval coverage |", "|---|---|---|---|---|"]
    for key in ("naive", "collapsed_strata", "replicates"):
        m = r[key]
        lines.append(f"| {label[key]} | {m['spread_over_seeds']:.2f} | {m['mean_reported_stderr']:.2f} | "
                     f"{m['ratio_rms_reported_to_spread']:.2f} | {m['coverage_95']:.2f} |")
    return "\n".join(lines) + "\n"


@table("app-timing")
def _app_timing(results: Path) -> str:
    r = _load(results, "app_timing.json")
    lines = ["| domain | default template | candidates | steps | first candidate | all candidates | "
             "load (1 min) |", "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['domain']} | `{row['template']}` | {row['candidates']} | {row['steps']} | "
                     f"{row['seconds_to_first_candidate']:.1f} s | {row['seconds_to_all']:.1f} s | "
                     f"{row['load_1min_before']:.1f} |")
    return "\n".join(lines) + f"\n\n`{r['command'].strip()}` on {r['cpus']} CPU cores ({r['date']}).\n"


# ----------------------------------------------------------------------------------- machinery
def render(text: str, results: Path = RESULTS, only: set[str] | None = None) -> str:
    """``text`` with every results block rebuilt (``only``: just these names)."""
    opened = [(m.group(1), m.group(2)) for m in _OPEN.finditer(text)]
    stack: list[str] = []
    for closing, name in opened:
        if closing:
            if not stack or stack.pop() != name:
                raise ValueError(f"README: <!-- /results:{name} --> without its opening marker")
        else:
            if stack:
                raise ValueError(f"README: results blocks do not nest (results:{name} inside results:{stack[-1]})")
            stack.append(name)
    if stack:
        raise ValueError(f"README: <!-- results:{stack[-1]} --> is never closed")

    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise ValueError(f"README: no table builder named {name!r} (known: {', '.join(sorted(TABLES))})")
        if only is not None and name not in only:
            return m.group(0)
        body = TABLES[name](results).rstrip("\n") + "\n"
        return f"<!-- results:{name} -->\n{body}<!-- /results:{name} -->"

    return _BLOCK.sub(sub, text)


def blocks(text: str) -> dict[str, str]:
    """The current body of every results block: ``{name: text}``."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 with a diff if the README is stale")
    ap.add_argument("--readme", default=str(README))
    ap.add_argument("--results", default=str(RESULTS))
    a = ap.parse_args(argv)
    path = Path(a.readme)
    old = path.read_text(encoding="utf-8")
    try:
        new = render(old, Path(a.results))
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path),
                                                       "generated"))
            return 1
        print(f"{path}: {len(blocks(old))} results blocks up to date")
        return 0
    if new != old:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    print(f"{path}: {len(blocks(new))} results blocks written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
