"""Steering generation: the property distribution of guided samples against the unguided baseline.

For molecules (the shipped SMILES model, its default confidence sampler) the reward is RDKit QED:
unguided, best-of-N, sequential Monte Carlo at several strengths λ (target ``p(x)·e^{λ·QED}``), and,
when a conditional model exists (``--cond-model``, default ``runs/smiles-qed/model.pt`` from
``configs/guidance/smiles-qed.yaml``), classifier-free guidance towards its top QED class at several
γ. Beside each: validity, uniqueness, novelty (against the MOSES training slice in
``datasets/moses``; the shipped model saw the full MOSES training split, so novelty is an upper
bound) and the logP mean (what else moved). For DNA (the shipped promoter model) the reward is GC
content: unguided, best-of-N and SMC, with uniqueness and the 3-mer spectrum JS distance to the
held-out promoters (how far the guided samples leave the data distribution). Every row records its
wall time as seconds per 1,000 outputs. Each row is written to ``--out`` (a JSON list, replacing a
row of the same domain, setting and N) as soon as it is measured.

    python benchmarks/bench_guidance.py --domains smiles --num 100 --steps 16
    python benchmarks/bench_guidance.py --domains dna --num 100 --steps 16 --length 100
    python benchmarks/bench_guidance.py --domains gb1 smiles-cond --num 250
    python benchmarks/bench_guidance.py --domains smiles-cg --num 200 --steps 32

``smiles-cg``: classifier guidance of the shipped SMILES model by a QED predictor trained on noisy
SMILES (``--classifier``, default the shipped ``qed`` predictor, trained by
``configs/guidance/smiles-qed-predictor.yaml``; or a file) towards QED in ``--cg-target`` (default ``0.9..``),
first-order (gradient) tilt: with the default confidence sampler the clean-data prediction is tilted
(guidance mode x0); with the ancestral sampler each reverse transition (mode transition). Beside the
QED distribution: the share of valid molecules in the target range and of all outputs (an invalid
molecule is never in range), validity, uniqueness, novelty.

``dna-cg``: the same for the shipped DNA promoter model (``--length`` bp, its ancestral sampler, so
each reverse transition is tilted) with a GC predictor (``--dna-classifier``, default the
shipped ``gc`` predictor, trained by ``configs/guidance/dna-gc-predictor.yaml``; or a file) towards GC in
``--dna-cg-target`` (default ``0.6..``), beside the 3-mer spectrum distance to held-out promoters.

    python benchmarks/bench_guidance.py --domains dna-cg --num 1000 --steps 16 --length 100 --cg-gammas 0.5 1 2
    python benchmarks/bench_guidance.py --domains smiles-cg --num 1000 --steps 32 --cg-gammas 5 --no-ancestral
    python benchmarks/bench_guidance.py --table benchmarks/results/guidance.json [--table-num 1000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdiff.guidance.rewards import parse_reward  # noqa: E402
from seqdiff.guidance.run import GuidanceSettings, guided_generate  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402


def _settings(domain: str, cond_model: bool) -> list[tuple[str, dict]]:
    if domain == "smiles":
        rows = [("unguided", {}),
                ("best-of-4", {"reward": "qed", "best_of": 4}),
                ("SMC K=4 λ=5", {"reward": "qed:5", "particles": 4}),
                ("SMC K=4 λ=20", {"reward": "qed:20", "particles": 4})]
        if cond_model:
            rows += [(f"CFG γ={g:g}", {"condition": ">=0.875", "guidance": g, "cond": True}) for g in (1.0, 2.0, 4.0)]
        return rows
    return [("unguided", {}),
            ("best-of-4", {"reward": "gc", "best_of": 4}),
            ("SMC K=4 λ=10", {"reward": "gc:10", "particles": 4}),
            ("SMC K=4 λ=40", {"reward": "gc:40", "particles": 4})]


def _quartiles(v: np.ndarray) -> dict:
    if v.size == 0:
        return {"mean": None, "q25": None, "median": None, "q75": None}
    q = np.quantile(v, [0.25, 0.5, 0.75])
    return {"mean": round(float(v.mean()), 4), "q25": round(float(q[0]), 4), "median": round(float(q[1]), 4),
            "q75": round(float(q[2]), 4)}


def _smiles_metrics(texts: list[str], train: set[str]) -> dict:
    from seqdiff.domains.smiles import novelty, uniqueness, validity
    from seqdiff.tokenizers.smiles import is_valid_smiles
    valid = [s for s in texts if is_valid_smiles(s)]
    qed = parse_reward("qed").raw(valid)
    logp = parse_reward("logp").raw(valid)
    return {"qed": _quartiles(qed), "logp_mean": round(float(logp.mean()), 3) if len(valid) else None,
            "validity": round(validity(texts), 4), "uniqueness": round(uniqueness(texts), 4),
            "novelty": round(novelty(texts, train, training_is_canonical=True), 4)}


def _dna_metrics(texts: list[str], ref: list[str]) -> dict:
    from seqdiff.domains.sequence import kmer_js
    gc = parse_reward("gc").raw(texts)
    return {"gc": _quartiles(gc), "uniqueness": round(len(set(texts)) / len(texts), 4),
            "kmer3_js": round(float(kmer_js(texts, ref, 3)), 4)}


def _read_smi(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line.split()[0] for line in fh if line.strip()]


def _read_fa(path: Path) -> list[str]:
    from Bio import SeqIO
    with gzip.open(path, "rt") as fh:
        return [str(r.seq).upper() for r in SeqIO.parse(fh, "fasta")]


def run(args) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for domain in args.domains:
        model = load_model(resolve_model(domain))
        cond_path = Path(args.cond_model) if domain == "smiles" and args.cond_model else None
        cond = load_model(cond_path) if cond_path is not None and cond_path.exists() else None
        if domain == "smiles":
            from seqdiff.domains.smiles import canonical_set
            train = canonical_set(_read_smi(ROOT / "datasets" / "moses" / "train.smi.gz"))
            metric = lambda texts: _smiles_metrics(texts, train)  # noqa: E731
            length = None
        else:
            ref = [s[: args.length] for s in _read_fa(ROOT / "datasets" / "dm3_upstream" / "test.fa.gz")]
            metric = lambda texts: _dna_metrics(texts, ref)  # noqa: E731
            length = args.length
        done = {(r["domain"], r["setting"], r["num"]) for r in json.loads(out.read_text())} \
            if args.resume and out.exists() else set()
        for label, kw in _settings(domain, cond is not None):
            if (domain, label, args.num) in done:
                continue
            m = cond if kw.pop("cond", False) else model
            st = GuidanceSettings(**kw).check(m) if kw else None
            texts: list[str] = []
            t0 = time.perf_counter()
            for b, start in enumerate(range(0, args.num, args.batch_size)):
                n = min(args.batch_size, args.num - start)
                g = torch.Generator().manual_seed(args.seed * 1000 + b)
                if st is None:
                    ids = m.generate(n, length, steps=args.steps, generator=g)
                else:
                    ids = guided_generate(m, st, n, length, steps=args.steps, generator=g)
                texts += m.decode(ids)
            secs = time.perf_counter() - t0
            row = {"domain": domain, "setting": label, "num": args.num, "steps": args.steps,
                   "sampler": m.default_sampler, "seconds_per_1000": round(secs * 1000 / args.num, 1),
                   **metric(texts)}
            if domain == "dna":
                row["length"] = length
            print(json.dumps(row), flush=True)
            _record(out, row)


def _record(out: Path, row: dict) -> None:
    """Add (or replace: same domain, setting and N) one row of the results file, atomically."""
    from seqdiff.serialization import write_atomic
    rows = json.loads(out.read_text()) if out.exists() else []
    key = (row["domain"], row["setting"], row["num"])
    rows = [r for r in rows if (r["domain"], r["setting"], r["num"]) != key] + [row]
    write_atomic(out, json.dumps(rows, indent=1) + "\n")


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann–Whitney) formula, ties counted half."""
    from scipy.stats import rankdata
    r = rankdata(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def conditional_likelihood(args, domain: str, model_path: str, labelled: Path, limit: int = 0) -> None:
    """A conditional model on held-out labelled data: the ELBO of each sequence under every class
    (paired: the same times and noise) and under the null class. Reports the accuracy of the
    class with the best ELBO (uniform class prior) against the largest class's share (chance),
    bits per token under the true class, under the others (averaged) and unconditionally, and for
    two classes the ROC AUC of ``ELBO(x | class 0) - ELBO(x | class 1)``."""
    from seqdiff.diffusion import elbo
    from seqdiff.guidance.cfg import ConditionedDenoiser
    from seqdiff.guidance.train_conditional import labelled_rows
    m = load_model(model_path)
    x, pad, y, classes, _ = labelled_rows(m.cfg, m.tokenizer, str(labelled), classes_from=m.cfg.condition,
                                          limit=limit)
    mask = m.scored(x, pad)
    nats = torch.stack([elbo(ConditionedDenoiser(m.denoiser, c), m.loss, x, n_t=args.n_t,
                             generator=torch.Generator().manual_seed(args.seed), loss_mask=mask).nats
                        for c in range(m.num_classes + 1)], -1)
    k = m.num_classes
    tokens = float(mask.sum()) * np.log(2)  # bits = nats / ln 2
    true = nats[torch.arange(len(y)), y]
    others = (nats[:, :k].sum(-1) - true) / (k - 1)
    row = {"domain": domain, "setting": f"conditional on {m.cfg.condition.column} ({', '.join(classes)})",
           "num": int(x.shape[0]), "classes": k,
           "accuracy": round(float((nats[:, :k].argmin(-1) == y).double().mean()), 4),
           "chance": round(float(torch.bincount(y, minlength=k).max()) / len(y), 4),
           "bpt_true_class": round(float(true.sum()) / tokens, 4),
           "bpt_other_class": round(float(others.sum()) / tokens, 4),
           "bpt_unconditional": round(float(nats[:, k].sum()) / tokens, 4), "n_t": args.n_t,
           "model": str(Path(model_path).relative_to(ROOT)) if Path(model_path).is_relative_to(ROOT) else model_path}
    if k == 2:
        row["auc"] = round(_auc((y == 1).numpy(), (nats[:, 0] - nats[:, 1]).numpy()), 4)
    print(json.dumps(row), flush=True)
    _record(Path(args.out), row)


def _cg_settings(gammas, ancestral: bool = True) -> list[tuple[str, str | None, float | None]]:
    rows = [("unguided", None, None)] + [(f"CG γ={g:g}", None, g) for g in gammas]
    if not ancestral:
        return rows
    mid = gammas[len(gammas) // 2]
    return rows + [("unguided, ancestral", "ancestral", None), (f"CG γ={mid:g}, ancestral", "ancestral", mid)]


def _predictor(name_or_path: str, domain: str):
    """A predictor file, or a shipped predictor by name (``qed``, ``gc``)."""
    from seqdiff.guidance.predictor import load_predictor
    from seqdiff.pretrained import resolve_predictor
    path = resolve_predictor(name_or_path, domain)
    return load_predictor(path), path.name


def _done(args, out: Path) -> set:
    return {(r["domain"], r["setting"], r["num"]) for r in json.loads(out.read_text())} \
        if args.resume and out.exists() else set()


def run_cg(args) -> None:
    """Classifier guidance by a trained noisy-SMILES QED predictor (rows of domain ``smiles-cg``)."""
    from seqdiff.domains.smiles import canonical_set
    from seqdiff.tokenizers.smiles import is_valid_smiles
    out = Path(args.out)
    model = load_model(resolve_model("smiles"))
    pred, pred_name = _predictor(args.classifier, "smiles")
    train = canonical_set(_read_smi(ROOT / "datasets" / "moses" / "train.smi.gz"))
    lo, _, hi = args.cg_target.partition("..")
    lo, hi = float(lo) if lo else -np.inf, float(hi) if hi else np.inf
    done = _done(args, out)
    for label, sampler, gamma in _cg_settings(args.cg_gammas, not args.no_ancestral):
        if ("smiles-cg", label, args.num) in done:
            continue
        st = None if gamma is None else GuidanceSettings(classifier=pred, target=args.cg_target, guidance=gamma,
                                                         classifier_method="first_order").check(model, sampler)
        texts: list[str] = []
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, args.num, args.batch_size)):
            n = min(args.batch_size, args.num - start)
            g = torch.Generator().manual_seed(args.seed * 1000 + b)
            if st is None:
                ids = model.generate(n, sampler=sampler, steps=args.steps, generator=g)
            else:
                ids = guided_generate(model, st, n, sampler=sampler, steps=args.steps, generator=g)
            texts += model.decode(ids)
        secs = time.perf_counter() - t0
        valid = [t for t in texts if is_valid_smiles(t)]
        qed = parse_reward("qed").raw(valid)
        inside = int(((qed >= lo) & (qed <= hi)).sum()) if len(valid) else 0
        row = {"domain": "smiles-cg", "setting": label, "num": args.num, "steps": args.steps,
               "sampler": sampler or model.default_sampler, "sampler_options": model.sampler_options(sampler),
               "target": args.cg_target,
               "method": None if gamma is None else "first_order",
               "mode": None if gamma is None else ("transition" if sampler == "ancestral" else "x0"),
               "seconds_per_1000": round(secs * 1000 / args.num, 1),
               "in_target_of_valid": round(inside / max(len(valid), 1), 4), "in_target_of_all": round(inside / args.num, 4),
               **_smiles_metrics(texts, train), "classifier": pred_name}
        print(json.dumps(row), flush=True)
        _record(out, row)


def run_cg_dna(args) -> None:
    """Classifier guidance of the shipped DNA model by a trained noisy-DNA GC predictor (``dna-cg`` rows)."""
    out = Path(args.out)
    model = load_model(resolve_model("dna"))
    pred, pred_name = _predictor(args.dna_classifier, "dna")
    done = _done(args, out)
    ref = [s[: args.length] for s in _read_fa(ROOT / "datasets" / "dm3_upstream" / "test.fa.gz")]
    lo, _, hi = args.dna_cg_target.partition("..")
    lo, hi = float(lo) if lo else -np.inf, float(hi) if hi else np.inf
    for label, gamma in [("unguided", None)] + [(f"CG γ={g:g}", g) for g in args.cg_gammas]:
        if ("dna-cg", label, args.num) in done:
            continue
        st = None if gamma is None else GuidanceSettings(classifier=pred, target=args.dna_cg_target, guidance=gamma,
                                                         classifier_method="first_order").check(model)
        texts: list[str] = []
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, args.num, args.batch_size)):
            n = min(args.batch_size, args.num - start)
            g = torch.Generator().manual_seed(args.seed * 1000 + b)
            ids = model.generate(n, args.length, steps=args.steps, generator=g) if st is None else \
                guided_generate(model, st, n, args.length, steps=args.steps, generator=g)
            texts += model.decode(ids)
        secs = time.perf_counter() - t0
        gc = parse_reward("gc").raw(texts)
        row = {"domain": "dna-cg", "setting": label, "num": args.num, "steps": args.steps,
               "sampler": model.default_sampler, "length": args.length, "target": args.dna_cg_target,
               "method": None if gamma is None else "first_order", "mode": None if gamma is None else "transition",
               "seconds_per_1000": round(secs * 1000 / args.num, 1),
               "in_target": round(float(((gc >= lo) & (gc <= hi)).mean()), 4), **_dna_metrics(texts, ref),
               "classifier": pred_name}
        print(json.dumps(row), flush=True)
        _record(out, row)


def table(path: Path, num: int | None = None) -> str:
    rows = [r for r in json.loads(path.read_text()) if num is None or r.get("num") == num]
    lines = []
    cond = [r for r in rows if r["domain"] in ("gb1", "smiles-cond")]
    if cond:
        head = ["held-out labelled data", "N", "best-ELBO class accuracy", "chance", "AUC (2 classes)",
                "bits/token, true class", "other classes", "unconditional"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in cond:
            lines.append(f"| {r['domain']}: {r['setting']} | {r['num']} | {r['accuracy']} | {r['chance']} | "
                         f"{r.get('auc', '')} | {r['bpt_true_class']} | {r['bpt_other_class']} | "
                         f"{r['bpt_unconditional']} |")
        lines.append("")
    def gamma(r):
        return -1.0 if r["setting"].startswith("unguided") else float(r["setting"].split("=")[1].split(",")[0])
    cg = sorted((r for r in rows if r["domain"] == "smiles-cg"), key=lambda r: (-r["num"], r["sampler"], gamma(r)))
    if cg:
        head = ["classifier guidance (QED predictor)", "sampler", "N", "qed mean", "qed median",
                f"in {cg[0]['target']} (of valid)", "in range (of all)", "validity", "uniqueness", "novelty",
                "s / 1,000"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in cg:
            q = r["qed"]
            vals = [r["setting"], r["sampler"], r["num"], q["mean"], q["median"], r["in_target_of_valid"],
                    r["in_target_of_all"], r["validity"], r["uniqueness"], r["novelty"], r["seconds_per_1000"]]
            lines.append("| " + " | ".join("" if v is None else str(v) for v in vals) + " |")
        lines.append("")
    dcg = sorted((r for r in rows if r["domain"] == "dna-cg"),
                 key=lambda r: (-r["num"], gamma(r)))
    if dcg:
        head = ["classifier guidance (GC predictor)", "N", "gc mean", "gc median", f"in {dcg[0]['target']}",
                "uniqueness", "kmer3_js", "s / 1,000"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in dcg:
            vals = [r["setting"], r["num"], r["gc"]["mean"], r["gc"]["median"], r["in_target"], r["uniqueness"],
                    r["kmer3_js"], r["seconds_per_1000"]]
            lines.append("| " + " | ".join("" if v is None else str(v) for v in vals) + " |")
        lines.append("")
    for domain, prop in (("smiles", "qed"), ("dna", "gc")):
        rs = [r for r in rows if r["domain"] == domain]
        if not rs:
            continue
        extra = ["validity", "uniqueness", "novelty", "logp_mean"] if domain == "smiles" else ["uniqueness", "kmer3_js"]
        head = ["setting", "N", f"{prop} mean", f"{prop} q25", f"{prop} median", f"{prop} q75", *extra, "s / 1,000"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rs:
            q = r[prop]
            vals = [r["setting"], r["num"], q["mean"], q["q25"], q["median"], q["q75"], *[r[e] for e in extra],
                    r["seconds_per_1000"]]
            lines.append("| " + " | ".join("" if v is None else str(v) for v in vals) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+", default=["smiles", "dna"], choices=["smiles", "dna", "gb1", "smiles-cond", "smiles-cg", "dna-cg"])
    ap.add_argument("--num", type=int, default=1000, help="outputs per setting")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--length", type=int, default=100, help="DNA length")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cond-model", default=str(ROOT / "runs" / "smiles-qed" / "model.pt"))
    ap.add_argument("--gb1-model", default=str(ROOT / "runs" / "gb1-fitness" / "model.pt"))
    ap.add_argument("--n-t", type=int, default=16, help="gb1: time points per ELBO")
    ap.add_argument("--classifier", default="qed",
                    help="smiles-cg: the QED predictor (a file, or the shipped one's name)")
    ap.add_argument("--cg-target", default="0.9..", help="smiles-cg: the QED target range")
    ap.add_argument("--dna-classifier", default="gc",
                    help="dna-cg: the GC predictor (a file, or the shipped one's name)")
    ap.add_argument("--dna-cg-target", default="0.6..", help="dna-cg: the GC target range")
    ap.add_argument("--cg-gammas", type=float, nargs="+", default=[2.0, 5.0, 15.0], help="guidance weights γ")
    ap.add_argument("--no-ancestral", action="store_true",
                    help="smiles-cg: only the default sampler (no ancestral-sampler rows)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "guidance.json"))
    ap.add_argument("--resume", action="store_true", help="skip the rows --out already has (same N)")
    ap.add_argument("--table", default=None, help="print the markdown tables of a results file and exit")
    ap.add_argument("--table-num", type=int, default=None, help="--table: only the rows of this N")
    args = ap.parse_args()
    if args.table:
        print(table(Path(args.table), args.table_num))
        return
    torch.set_num_threads(args.threads)
    if "gb1" in args.domains:
        conditional_likelihood(args, "gb1", args.gb1_model, ROOT / "runs" / "labelled" / "gb1_valid.csv")
    if "smiles-cond" in args.domains:
        conditional_likelihood(args, "smiles-cond", args.cond_model, ROOT / "runs" / "labelled" / "moses_qed_valid.csv",
                               limit=args.num)
    if "smiles-cg" in args.domains:
        run_cg(args)
    if "dna-cg" in args.domains:
        run_cg_dna(args)
    args.domains = [d for d in args.domains if d in ("smiles", "dna")]
    run(args)


if __name__ == "__main__":
    main()
