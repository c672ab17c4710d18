"""The benchmark tables: likelihood, generation, quality vs steps, variant scoring, speed.

Same network size, same data and same training budget for every row. Each (domain, method) model is
trained with the domain's CPU recipe (``configs/{text8,dna,protein,smiles}.yaml``) at the size and
budget given by the flags, into ``runs/bench/<domain>-<method>`` (an existing finished run is
reused, an interrupted one resumed). Results go to ``benchmarks/results/tables.md`` and
``results.json``.

    python benchmarks/tables.py                      # everything (about an hour on 2 CPU cores)
    python benchmarks/tables.py --domains text8 --methods masked ar --steps 200   # a subset

Methods: ``masked`` (MD4/MDLM: absorbing, linear α, mean parameterisation), ``sedd_absorb``
(absorbing, log-linear, score parameterisation, score entropy), ``sedd_uniform`` (uniform,
geometric, score entropy), ``multinomial`` (uniform, discrete T = 1000), ``ar`` (causal baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from readme_tables import md_table  # noqa: E402  (the README's generator writes the same markdown)

from seqdiff.domains import get_domain  # noqa: E402
from seqdiff.domains.text import char_entropy  # noqa: E402
from seqdiff.jobs.evaluate import evaluate_likelihood, generative_perplexity, read_sequences  # noqa: E402
from seqdiff.jobs.scoring import score_variants  # noqa: E402
from seqdiff.jobs.variants import blosum62_scores, read_variants  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.training.config import load_config  # noqa: E402
from seqdiff.training.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = {"text8": "text", "dna": "dna", "protein": "protein", "smiles": "smiles"}
METHODS = {
    "masked": ["diffusion.process=absorbing", "diffusion.loss=masked", "diffusion.schedule.name=linear",
               "diffusion.parameterization=x0"],
    "sedd_absorb": ["diffusion.process=absorbing", "diffusion.loss=score_entropy",
                    "diffusion.schedule={name: loglinear, eps: 0.001}", "diffusion.parameterization=score"],
    "sedd_uniform": ["diffusion.process=uniform", "diffusion.loss=score_entropy",
                     "diffusion.schedule={name: geometric, sigma_min: 0.0001, sigma_max: 20.0}",
                     "diffusion.parameterization=score"],
    "multinomial": ["diffusion.process=uniform", "diffusion.loss=multinomial",
                    "diffusion.schedule={name: discrete, num_steps: 1000}", "diffusion.parameterization=x0"],
    "ar": ["model.arch=ar"],
}
TEST_FILES = {"text8": "datasets/text8_wiki/test.txt", "dna": "datasets/dm3_upstream/test.fa.gz",
              "protein": "datasets/uniprot/test.fa.gz", "smiles": "datasets/moses/test.smi.gz"}
LABEL = {"masked": "MD4/MDLM masked", "sedd_absorb": "SEDD absorb", "sedd_uniform": "SEDD uniform",
         "multinomial": "multinomial", "ar": "AR baseline", "masked_ti": "masked, time-independent"}


def run_dir(args, domain, method) -> Path:
    return ROOT / "runs" / "bench" / f"{domain}-{method}"


def train_one(args, domain: str, method: str) -> dict:
    out = run_dir(args, domain, method)
    summary = out / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    extra = METHODS[method] if method in METHODS else METHODS["masked"] + ["model.time_conditioning=false"]
    seq_len = 64 if domain == "smiles" else args.seq_len
    over = [f"out_dir={out}", f"name=bench-{domain}-{method}", f"trainer.max_steps={args.steps}",
            f"trainer.val_every={args.steps}", f"trainer.ckpt_every={max(50, args.steps // 4)}",
            f"optim.warmup_steps={min(100, args.steps // 10)}", "optim.lr=2e-3", "optim.ema=0.99",
            f"model.d_model={args.d_model}", f"model.n_layers={args.layers}", f"model.n_heads={args.heads}",
            f"model.cond_dim={args.d_model // 2}", f"data.seq_len={seq_len}", f"data.batch_size={args.batch}",
            "data.max_valid_batches=8", "sampling.log_samples=0", "trainer.progress_bar=false"] + extra
    cfg = load_config(ROOT / "configs" / f"{domain}.yaml", over)
    print(f"[train] {domain} {method}", flush=True)
    return train(cfg, quiet=True)



@torch.no_grad()
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--steps", type=int, default=500, help="training steps per model (the shared budget)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--n-t", type=int, default=16, help="time points per ELBO estimate")
    p.add_argument("--eval-rows", type=int, default=256)
    p.add_argument("--samples", type=int, default=64, help="sequences per generation metric")
    p.add_argument("--sample-steps", type=int, default=128)
    p.add_argument("--steps-grid", type=int, nargs="+", default=[8, 32, 128, 512, 1024])
    p.add_argument("--variants", type=int, default=5000, help="GB1 double mutants to score")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"settings": vars(args).copy()}
    results["settings"]["out"] = str(args.out)
    md = [f"Settings: every model {args.d_model}-wide × {args.layers} layers, {args.steps} steps of "
          f"{args.batch} × {args.seq_len} tokens (SMILES 64), same data per domain; "
          f"ELBO with {args.n_t} time points on {args.eval_rows} held-out rows; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads.\n"]

    # ---- 1. likelihood ------------------------------------------------------------------------
    summaries, lik = {}, []
    for dom in args.domains:
        row = {"domain": dom}
        for meth in args.methods:
            s = train_one(args, dom, meth)
            summaries[(dom, meth)] = s
            model = load_model(s["model"])
            ev = evaluate_likelihood(model, "test", n_t=args.n_t, max_rows=args.eval_rows)
            row[LABEL[meth]] = ev["bits_per_token"]
            row[LABEL[meth] + " ±"] = ev["bits_per_token_stderr"]
            results.setdefault("likelihood", {}).setdefault(dom, {})[meth] = ev
        lik.append(row)
    cols = ["domain"] + [LABEL[m] for m in args.methods]
    md.append("### 1. Held-out bits per token (diffusion: ELBO bound ≤; AR: exact)\n")
    md.append(md_table(lik, cols))
    md.append("\nMonte Carlo standard errors of the bounds: " + "; ".join(
        f"{r['domain']}: " + ", ".join(f"{LABEL[m]} {r[LABEL[m] + ' ±']:.3f}" for m in args.methods if m != "ar")
        for r in lik) + "\n")

    # ---- 2. generation --------------------------------------------------------------------------
    gen_rows, speed = [], []
    ar_text = load_model(summaries[("text8", "ar")]["model"]) if ("text8", "ar") in summaries else None
    for dom in args.domains:
        kind = DOMAINS[dom]
        ref = read_sequences(ROOT / TEST_FILES[dom], kind, 2000)
        train_ref = read_sequences(ROOT / "datasets/moses/train.smi.gz", kind, 30000) if dom == "smiles" else None
        for meth in args.methods:
            model = load_model(summaries[(dom, meth)]["model"])
            g = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            ids = model.generate(args.samples, generator=g, steps=args.sample_steps) if not model.is_ar else \
                model.generate(args.samples, generator=g)
            dt = time.perf_counter() - t0
            texts = model.decode(ids)
            row = {"domain": dom, "method": LABEL[meth], "samples": len(texts),
                   "seq/s": len(texts) / dt}
            if kind == "smiles":
                m = get_domain("smiles").metrics(texts, reference=ref, training=train_ref)
                row.update({"validity": m["validity"], "uniqueness": m["uniqueness"], "novelty": m["novelty"],
                            "FCD": m.get("fcd") if m.get("fcd") is not None else float("nan")})
            elif kind in ("dna", "protein"):
                refs = ref if kind == "protein" else [r[:model.max_len] for r in ref]
                m = get_domain(kind).metrics(texts, reference=refs)
                row.update({"3-mer JS": m["kmer3_js"], "3-mer JS shuffled": m["kmer3_js_shuffled"]})
            else:
                row["entropy (bits/char)"] = char_entropy(texts)
                if ar_text is not None:
                    row["gen. perplexity (AR)"] = generative_perplexity(ar_text, texts)
            gen_rows.append(row)
            results.setdefault("generation", []).append(row)
            speed.append({"domain": dom, "method": LABEL[meth],
                          "train tokens/s": summaries[(dom, meth)]["tokens_per_second"],
                          "sample seq/s": row["seq/s"]})
    md.append(f"\n### 2. Generation ({args.samples} samples, default sampler, {args.sample_steps} steps)\n")
    for kind_cols, doms in [(["validity", "uniqueness", "novelty", "FCD"], ["smiles"]),
                            (["3-mer JS", "3-mer JS shuffled"], ["dna", "protein"]),
                            (["gen. perplexity (AR)", "entropy (bits/char)"], ["text8"])]:
        rows = [r for r in gen_rows if r["domain"] in doms]
        if rows:
            md.append(md_table(rows, ["domain", "method"] + kind_cols))
            md.append("\n")
    ref_entropy = None
    if "text8" in args.domains:
        held = read_sequences(ROOT / "datasets/text8_wiki/test.txt", "text")
        chunks = [held[0][i:i + args.seq_len] for i in range(0, 64 * args.seq_len, args.seq_len)]
        ref_entropy = char_entropy(chunks)
        ppl_ref = generative_perplexity(ar_text, chunks) if ar_text is not None else float("nan")
        md.append(f"Held-out text8 windows for comparison: gen. perplexity {ppl_ref:.2f}, "
                  f"entropy {ref_entropy:.3f} bits/char.\n")
        results["text_reference"] = {"gen_ppl": ppl_ref, "entropy": ref_entropy}

    # ---- 3. quality vs steps --------------------------------------------------------------------
    if "text8" in args.domains and ar_text is not None and "masked" in args.methods:
        ti = train_one(args, "text8", "masked_ti")
        rows = []
        for name, path, samplers in [("masked", summaries[("text8", "masked")]["model"], ["euler", "tweedie", "ancestral"]),
                                     ("masked_ti", ti["model"], ["ancestral"])]:
            model = load_model(path)
            for sampler in samplers:
                for steps in args.steps_grid:
                    stats: dict = {}
                    t0 = time.perf_counter()
                    ids = model.generate(32, args.seq_len, sampler=sampler, steps=steps,
                                         generator=torch.Generator().manual_seed(1), stats=stats)
                    dt = time.perf_counter() - t0
                    texts = model.decode(ids)
                    rows.append({"model": LABEL[name], "sampler": sampler + (" (cache)" if name == "masked_ti" else ""),
                                 "steps": steps, "gen. perplexity": generative_perplexity(ar_text, texts),
                                 "entropy": char_entropy(texts), "seconds": dt,
                                 "network evals": stats.get("nfe"), "rows evaluated": stats.get("rows")})
        results["steps"] = rows
        md.append("\n### 3. Quality vs steps (text8, 32 samples of 128 characters; generative perplexity "
                  "under the AR baseline)\n")
        md.append(md_table(rows, ["model", "sampler", "steps", "gen. perplexity", "entropy", "seconds",
                                  "network evals", "rows evaluated"], {"seconds": "{:.2f}"}))

    # ---- 4. variant scoring ---------------------------------------------------------------------
    if "protein" in args.domains:
        gb1 = ROOT / "datasets" / "gb1"
        wt = "".join((gb1 / "wild_type.fa").read_text().split(">")[1].splitlines()[1:])
        table = pd.concat([pd.read_csv(gb1 / f"doubles_{s}.csv.gz") for s in ("train", "valid", "test")])
        table = table.sample(min(args.variants, len(table)), random_state=0)
        table = read_variants(table[["mutant", "fitness"]], wt)
        rows = []
        b62 = np.array(blosum62_scores(wt, list(table["mutant"])))
        rows.append({"method": "BLOSUM62 (baseline)", "Spearman": pd.Series(b62).corr(
            table["fitness"].reset_index(drop=True), method="spearman"), "variants/s": float("nan")})
        for meth, methods in [("masked", ["masked_marginal", "elbo"]), ("sedd_absorb", ["masked_marginal", "elbo"]),
                              ("ar", ["ar"])]:
            if meth not in args.methods:
                continue
            model = load_model(summaries[("protein", meth)]["model"])
            for m in methods:
                t0 = time.perf_counter()
                sc = score_variants(model, wt, table, methods=[m], n_t=args.n_t)
                dt = time.perf_counter() - t0
                col = {"masked_marginal": "score_masked_marginal", "elbo": "score_elbo", "ar": "score_ar"}[m]
                rho = sc[col].corr(sc["fitness"], method="spearman")
                rows.append({"method": f"{LABEL[meth]}: {m.replace('_', ' ')}", "Spearman": rho,
                             "variants/s": len(sc) / dt})
        results["variants"] = rows
        md.append(f"\n### 4. GB1 variant effects ({len(table)} double mutants, Olson et al. 2014): Spearman "
                  "with measured fitness (models trained on UniProt only, zero-shot)\n")
        md.append(md_table(rows, ["method", "Spearman", "variants/s"], {"variants/s": "{:.0f}"}))

    # ---- 5. speed -------------------------------------------------------------------------------
    results["speed"] = speed
    md.append("\n### 5. Speed (CPU)\n")
    md.append(md_table(speed, ["domain", "method", "train tokens/s", "sample seq/s"],
                       {"train tokens/s": "{:,.0f}", "sample seq/s": "{:.2f}"}))
    (args.out / "tables.md").write_text("\n".join(md))
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
