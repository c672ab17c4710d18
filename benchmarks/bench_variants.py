"""Variant-effect prediction against measured DMS fitness: zero-shot, one-hot ridge and few-shot.

Assays (all committed in ``datasets/``):

* ``gb1_singles``: 813 single mutants of protein G B1, stability (-ΔΔG, Nisthal et al. 2019);
* ``gb1_doubles``: the 5,000 committed double mutants of GB1, fitness (Olson et al. 2014);
* ``amyloid``: amyloid-β 1-42 nucleation scores (Seuma et al. 2021), 14,483 missense variants;
* ``tdp43``: TDP-43 290-373 toxicity (Bolognesi et al. 2019), 53,468 missense variants.

Nonsense variants (a stop) are left out of every assay (the model scores full-length proteins).

Methods:

* zero-shot (no labels; Spearman and NDCG over every variant): BLOSUM62 (additive), the shipped
  ``protein`` model's masked marginal (joint: all mutated positions masked together), its additive
  version (sum of the single-mutant masked marginals; multi-mutant assays only) and its ELBO
  difference (joint; on a random subsample of ``--elbo-n`` variants, common random numbers, 16 times);
  and, where ``datasets/homologs`` has an alignment (GB1 only), the family model (the shipped model
  fine-tuned 300 steps on the EVmutation-weighted homologs, :mod:`seqdiff.jobs.family`), masked marginal;
* supervised at each training size n (random labelled variants, evaluated on all the others,
  ``--splits`` splits per size, the same splits for every method, mean ± sd): one-hot ridge (one
  weight per substitution, Hsu et al.'s baseline); the ablation one-hot + masked marginal,
  unconstrained (Hsu et al.'s augmented model exactly); and few-shot augmented: the design chosen per
  fit by leave-one-out error on the training variants only, among one-hot plus any of the per-site
  and per-letter blocks, crossed with none or any subset of {masked marginal, BLOSUM62} (penalised
  1,000× less, kept non-negative). Its variants: ``+ pairs`` (multi-mutant assays; the pair and
  site-pair epistasis blocks tried on top of that choice; up to ``--pairs-max-size``) and ``GP`` (a
  Gaussian process on the chosen design's features, up to ``--gp-max-size``: its prediction costs
  O(n) per variant). Ridge strength by exact leave-one-out CV on the training variants only.

Seconds per 1,000 variants on 2 CPU threads: zero-shot scoring time / variants; for the
regressions, fit + predict time / held-out variants, plus the zero-shot features' own cost.

Zero-shot scores are cached in ``runs/variant_cache/`` keyed by assay, method and the model file's
SHA-256 (the timing measured when first computed is cached with them).

    python benchmarks/bench_variants.py                 # ~30-60 min on 2 busy cores
    python benchmarks/bench_variants.py --assays tdp43 --merge   # one assay, keeping the others in --out
    python benchmarks/bench_variants.py --assays gb1_singles --splits 2 --out /tmp/v.json  # quick look

Writes ``benchmarks/results/variants.json``; ``benchmarks/readme_tables.py`` makes the README table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.jobs.fewshot import FewShotModel, ndcg_top, spearman  # noqa: E402
from seqdiff.jobs.variants import blosum62_scores, parse_mutant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "variant_cache"
SIZES = (8, 32, 128, 512, 2048)
#: assays with a homolog set in datasets/homologs (file, the wild type the alignment is built on); the
#: family model is fine-tuned once on the GB1 alignment and scores both GB1 assays
HOMOLOGS = {"gb1_singles": ("datasets/homologs/gb1_jackhmmer.sto", lambda: _gb1_olson()),
            "gb1_doubles": ("datasets/homologs/gb1_jackhmmer.sto", lambda: _gb1_olson())}
FAMILY_INFO: dict = {}


def _gb1_olson() -> str:
    return _fasta(ROOT / "datasets/gb1/wild_type.fa")["GB1_olson2014"]


def _fasta(path: Path) -> dict[str, str]:
    from Bio import SeqIO
    return {r.id: str(r.seq) for r in SeqIO.parse(path, "fasta")}


def load_assay(name: str) -> tuple[str, pd.DataFrame]:
    """``(wild type, table with mutant and y)`` of one assay, nonsense variants left out."""
    if name == "gb1_singles":
        wt = _fasta(ROOT / "datasets/gb1/wild_type.fa")["GB1_nisthal2019"]
        d = pd.read_csv(ROOT / "datasets/gb1/singles.csv")[["mutant", "stability"]].rename(columns={"stability": "y"})
    elif name == "gb1_doubles":
        wt = _fasta(ROOT / "datasets/gb1/wild_type.fa")["GB1_olson2014"]
        d = pd.concat([pd.read_csv(ROOT / f"datasets/gb1/doubles_{s}.csv.gz") for s in ("train", "valid", "test")])
        d = d[["mutant", "fitness"]].rename(columns={"fitness": "y"})
    elif name in ("amyloid", "tdp43"):
        wts = _fasta(ROOT / "datasets/dms/wild_type.fa")
        wt = wts["Abeta42" if name == "amyloid" else "TDP43_290_373"]
        d = pd.read_csv(ROOT / f"datasets/dms/{name}.csv.gz")[["mutant", "y"]]
    else:
        raise ValueError(f"unknown assay {name!r}")
    d = d[~d["mutant"].str.contains(r"\*", regex=True)]
    d = d.groupby("mutant", as_index=False, sort=False)["y"].mean()  # a variant measured twice: its mean
    return wt, d.reset_index(drop=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_zero_shot(assay: str, method: str, wt: str, mutants: list[str], model_path: Path, compute):
    """``(scores, seconds)`` from the cache, or computed by ``compute()`` and stored."""
    key = hashlib.sha256(json.dumps([assay, method, wt, _sha(model_path), mutants]).encode()).hexdigest()[:16]
    path = CACHE / f"{assay}_{method}_{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["scores"], float(z["seconds"])
    t0 = time.perf_counter()
    scores = np.asarray(compute(), dtype=float)
    dt = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, scores=scores, seconds=np.array(dt))
    tmp.replace(path)
    return scores, dt


def zero_shot(assay: str, wt: str, mutants: list[str], model, model_path: Path, elbo_n: int, seed: int) -> dict:
    from seqdiff.jobs.scoring import score_variants
    from seqdiff.jobs.variants import read_variants
    out = {}
    table = read_variants(pd.DataFrame({"mutant": mutants}), wt)
    t0 = time.perf_counter()
    out["blosum62"] = (np.asarray(blosum62_scores(wt, mutants), dtype=float), time.perf_counter() - t0, None)
    mm, t_mm = cached_zero_shot(assay, "masked_marginal", wt, mutants, model_path, lambda: score_variants(
        model, wt, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy())
    out["masked_marginal"] = (mm, t_mm, None)
    if any(len(parse_mutant(m)) > 1 for m in mutants):
        singles = sorted({f"{w}{p}{t}" for m in mutants for w, p, t in parse_mutant(m)})
        s1, t1 = cached_zero_shot(assay, "mm_singles", wt, singles, model_path, lambda: score_variants(
            model, wt, read_variants(pd.DataFrame({"mutant": singles}), wt),
            methods=["masked_marginal"])["score_masked_marginal"].to_numpy())
        look = dict(zip(singles, s1))
        out["masked_marginal_additive"] = (np.array([sum(look[f"{w}{p}{t}"] for w, p, t in parse_mutant(m))
                                                     for m in mutants]), t1, None)
    if assay in HOMOLOGS:
        from seqdiff.jobs.family import family_model
        hom_file, hom_wt = HOMOLOGS[assay]
        fam, info = family_model(model, model_path, ROOT / hom_file, hom_wt(), steps=300, seed=seed,
                                 cache_dir=CACHE / "family")
        fam_path = Path(info["cache_file"])
        fs, t_f = cached_zero_shot(assay, "family_mm", wt, mutants, fam_path, lambda: score_variants(
            fam, wt, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy())
        out["family (jackhmmer homologs)"] = (fs, t_f, None)
        FAMILY_INFO[assay] = {k: info[k] for k in ("n_homologs", "n_eff", "steps", "loss_start", "loss_end")}
        FAMILY_INFO[assay]["homologs"] = hom_file
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(len(mutants), min(elbo_n, len(mutants)), replace=False))
    sub_m = [mutants[i] for i in sub]
    el, t_el = cached_zero_shot(assay, f"elbo{len(sub)}", wt, sub_m, model_path, lambda: score_variants(
        model, wt, read_variants(pd.DataFrame({"mutant": sub_m}), wt), methods=["elbo"], n_t=16,
        seed=seed)["score_elbo"].to_numpy())
    out["elbo"] = (el, t_el, sub)
    return out


def supervised(wt, mutants, y, Z, regs: dict, sizes, splits, seed, zero: dict) -> list[dict]:
    """Learning curves of each regression in ``regs`` (name -> :class:`Reg`) and of the zero-shot scores
    in ``zero`` (name -> scores) on the same held-out variants (the same splits for every method)."""
    rows = []
    n = len(y)
    models = {name: FewShotModel(wt, mutants, Z[:, r.cols] if r.cols else None, **r.blocks)
              for name, r in regs.items()}
    models.update(zero)
    for size in sizes:
        if size > 0.8 * n:
            continue
        rng = np.random.default_rng([seed, size])
        perms = [rng.permutation(n) for _ in range(splits)]
        for name, m in models.items():
            reg = regs.get(name)
            if reg is not None and size > reg.max_size:
                continue
            rho, nd, secs, chosen = [], [], [], []
            for perm in perms:
                tr, te = perm[:size], perm[size:]
                t0 = time.perf_counter()
                if isinstance(m, np.ndarray):  # a zero-shot score: nothing to fit
                    pred = m[te]
                else:
                    m.fit(tr, y[tr], **reg.fit)
                    pred = m.predict(te, with_sd=False)
                    chosen.append(m.choice_.label([("masked marginal", "BLOSUM62")[c] for c in reg.cols]))
                secs.append((time.perf_counter() - t0) / len(te) * 1000)
                rho.append(spearman(pred, y[te]))
                nd.append(ndcg_top(y[te], pred))
            row = {"method": name, "size": int(size), "splits": splits, "n_test": int(n - size),
                   "spearman": float(np.mean(rho)), "spearman_sd": float(np.std(rho, ddof=1)),
                   "ndcg10": float(np.mean(nd)), "ndcg10_sd": float(np.std(nd, ddof=1)),
                   "s_per_1k_fit": float(np.mean(secs))}
            if chosen and reg.fit.get("select", True):
                row["chosen"] = chosen
            rows.append(row)
            print(f"  {name:32s} n={size:5d}: Spearman {np.mean(rho):+.3f} ± {np.std(rho, ddof=1):.3f}, "
                  f"NDCG@10% {np.mean(nd):.3f}" + (f"  [{'; '.join(dict.fromkeys(chosen))}]" if chosen else ""),
                  flush=True)
    return rows


@dataclass
class Reg:
    """A regression of the benchmark: available blocks, zero-shot columns of ``Z``, fit options, and the
    largest training size it is run at."""

    blocks: dict
    cols: list
    fit: dict
    max_size: int = 10 ** 9


def main(argv=None) -> int:
    import torch

    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--assays", default="gb1_singles,gb1_doubles,amyloid,tdp43")
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--elbo-n", type=int, default=500, help="variants per assay scored by ELBO difference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gp-max-size", type=int, default=512,
                   help="largest training size the GP rows run at (its prediction is O(n) per variant)")
    p.add_argument("--pairs-max-size", type=int, default=512,
                   help="largest training size the pairwise-feature rows run at")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/variants.json"))
    p.add_argument("--merge", action="store_true",
                   help="keep the other assays already in --out (run the assays one at a time)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    model_path = Path(resolve_model("protein"))
    model = load_model(model_path)
    sizes = [int(s) for s in args.sizes.split(",")]
    result = {"model": "protein (shipped)", "model_sha256": _sha(model_path), "threads": 2, "splits": args.splits,
              "sizes": sizes, "seed": args.seed, "assays": {}}
    for assay in args.assays.split(","):
        wt, d = load_assay(assay)
        mutants, y = list(d["mutant"]), d["y"].to_numpy(dtype=float)
        print(f"{assay}: {len(y):,} variants, wild type {len(wt)} residues", flush=True)
        zs = zero_shot(assay, wt, mutants, model, model_path, args.elbo_n, args.seed)
        zrows = []
        for name, (s, secs, sub) in zs.items():
            yy = y if sub is None else y[sub]
            zrows.append({"method": name, "n": int(len(yy)), "spearman": spearman(s, yy), "ndcg10": ndcg_top(yy, s),
                          "s_per_1k": secs / len(yy) * 1000})
            print(f"  {name:32s} zero-shot: Spearman {zrows[-1]['spearman']:+.3f}, NDCG@10% "
                  f"{zrows[-1]['ndcg10']:.3f} ({zrows[-1]['s_per_1k']:.3f} s/1k, n={len(yy)})", flush=True)
        Z = np.stack([zs["masked_marginal"][0], zs["blosum62"][0]], 1)
        multi = any(len(parse_mutant(m)) > 1 for m in mutants)
        regs = {"one-hot ridge": Reg({}, [], {"select": False}),
                "one-hot + masked marginal (Hsu)": Reg({}, [0], {"select": False, "nonneg": False}),
                "few-shot augmented": Reg({"site": True, "aa": True}, [0, 1], {}),
                "few-shot augmented, GP": Reg({"site": True, "aa": True}, [0, 1], {"regressor": "gp"},
                                              args.gp_max_size)}
        if multi:
            regs["few-shot augmented + pairs"] = Reg({"site": True, "aa": True, "pairs": True, "sitepairs": True},
                                                     [0, 1], {}, args.pairs_max_size)
        zero = {"BLOSUM62 (held-out)": zs["blosum62"][0], "masked marginal (held-out)": zs["masked_marginal"][0]}
        srows = supervised(wt, mutants, y, Z, regs, sizes, args.splits, args.seed, zero)
        cost = {r["method"]: r["s_per_1k"] for r in zrows}
        zcost = {"BLOSUM62 (held-out)": cost["blosum62"], "masked marginal (held-out)": cost["masked_marginal"],
                 "one-hot ridge": 0.0, "one-hot + masked marginal (Hsu)": cost["masked_marginal"]}
        for r in srows:
            r["s_per_1k"] = r["s_per_1k_fit"] + zcost.get(r["method"], cost["masked_marginal"] + cost["blosum62"])
        result["assays"][assay] = {"n": int(len(y)), "wt_length": len(wt), "zero_shot": zrows, "supervised": srows}
        if assay in FAMILY_INFO:
            result["assays"][assay]["family"] = FAMILY_INFO[assay]
    out = Path(args.out)
    if args.merge and out.is_file():
        old = json.loads(out.read_text())
        keep = {k: v for k, v in old.get("assays", {}).items() if k not in result["assays"]}
        result["assays"] = {**keep, **result["assays"]}
        order = ["gb1_singles", "gb1_doubles", "amyloid", "tdp43"]
        result["assays"] = dict(sorted(result["assays"].items(),
                                       key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
