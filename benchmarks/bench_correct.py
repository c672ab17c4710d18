"""Sequence correction benchmark: character / base error rate before and after `seqdiff correct`.

Held-out text (the text8-style Wikipedia test slice) and held-out DNA (the dm3 upstream test slice) are
cut into windows of the model's length and corrupted with a seeded substitution channel: each position
is replaced with probability ``r`` by a uniformly drawn *different* letter of the domain's alphabet
(27 text8 characters; the 4 bases A, C, G, T). Each method then corrects the corrupted windows and the
error rate against the clean text is reported:

* ``one-shot, r known``: per-position posterior mode at the time the true rate maps to;
* ``one-shot, r̂ EM`` / ``r̂ PLL``: the same at an estimated time (EM on the marginal likelihood, the
  default; or the pseudo-likelihood grid); the mean estimated rate is shown in brackets;
* ``multi-step, r known``: the reverse process from that time, ``--candidates`` posterior draws ranked by
  ELBO + channel term, once among the draws alone and once with the one-shot mode competing (the
  default of ``seqdiff correct``), from the same draws;
* ``mask, r known``: a masked (absorbing) model — the shipped ``seqdiff/pretrained/<domain>.pt`` if
  present — flags the ``ceil(rL)`` positions with the lowest masked marginal and infills them (greedy,
  channel-aware).

Molecules read several times (``--reads 2,3``): each window is read ``k`` times through independent
seeded channels and corrected from its ``k`` reads at once (``correct(..., group_by=...)``: the reads'
likelihood times the model's leave-one-out prior), against a reads-only majority vote with ties broken at
random (for two reads no better than one read). Columns: a uniform model with r known and with r
estimated from the reads' disagreements, and a masked model with r known (16 interleaved masking passes
per round unless ``--mask-passes``).

Single reads with base qualities (``--no-quality`` skips it): a share of the bases is of low quality
(Q 2–6), the rest high (Q 25–40), mixed so that the mean error probability is r, and each base is
substituted with its own probability; the one-shot decoder that ignores the qualities (r known) against
the quality-aware decoder (``correct(..., qualities=...)``, what FASTQ input does).

AR baseline (``--ar-num`` windows, default 16, evenly spread): the causal transformer of the same size
trained with the same recipe (``seqdiff train -c configs/correct/<domain>.yaml model.arch=ar
out_dir=runs/correct-<domain>-ar``; skipped when absent) corrects with exact per-position posteriors
``p(x^{i←a}) q(x_i | a)`` — ``L·N`` sequence evaluations per window, hence the subset — next to the
uniform model's one-shot on the same windows.

The uniform-process models are the shipped ``text-uniform`` / ``dna-uniform`` (multinomial diffusion,
recipes ``configs/correct/{text,dna}.yaml``, trained here when the file is missing), or pass
``--text-model/--dna-model``.

Example::

    python benchmarks/bench_correct.py --threads 1          # both domains, rates 1 %, 5 %, 10 %
    python benchmarks/bench_correct.py --domains text --num 32 --rates 0.05 --json out.json
    python benchmarks/bench_correct.py --domains dna --methods reads --reads 2   # only the reads table
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.jobs import correct as C  # noqa: E402
from seqdiff.jobs.correct import correct  # noqa: E402
from seqdiff.jobs.generate import batch_generator  # noqa: E402
from seqdiff.model import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALPHABETS = {"text": "abcdefghijklmnopqrstuvwxyz ", "dna": "ACGT"}
TEST_FILES = {"text": ROOT / "datasets" / "text8_wiki" / "test.txt",
              "dna": ROOT / "datasets" / "dm3_upstream" / "test.fa.gz"}
RECIPES = {"text": ROOT / "configs" / "correct" / "text.yaml", "dna": ROOT / "configs" / "correct" / "dna.yaml"}
MASKED = {"text": ROOT / "seqdiff" / "pretrained" / "text.pt", "dna": ROOT / "seqdiff" / "pretrained" / "dna.pt"}


def held_out_windows(domain: str, length: int, num: int) -> list[str]:
    """``num`` non-overlapping windows of ``length`` letters, evenly spread over the test slice."""
    if domain == "text":
        stream = TEST_FILES[domain].read_text().strip()
        starts = np.linspace(0, len(stream) - length, num).astype(int)
        return [stream[s:s + length] for s in starts]
    from Bio import SeqIO
    with gzip.open(TEST_FILES[domain], "rt") as fh:
        recs = [str(r.seq).upper() for r in SeqIO.parse(fh, "fasta")]
    windows = [r[i:i + length] for r in recs for i in range(0, len(r) - length + 1, length)]
    windows = [w for w in windows if set(w) <= set("ACGT")]
    idx = np.linspace(0, len(windows) - 1, num).astype(int)
    return [windows[i] for i in idx]


def corrupt(seqs: list[str], rate: float, alphabet: str, seed: int) -> list[str]:
    """Each position replaced w.p. ``rate`` by a uniformly drawn different letter (seeded)."""
    rng = np.random.default_rng(seed)
    index = {c: i for i, c in enumerate(alphabet)}
    out = []
    for s in seqs:
        ids = np.array([index[c] for c in s])
        hit = rng.random(len(s)) < rate
        shift = rng.integers(1, len(alphabet), len(s))
        ids = np.where(hit, (ids + shift) % len(alphabet), ids)
        out.append("".join(alphabet[i] for i in ids))
    return out


def error_rate(pred: list[str], clean: list[str]) -> float:
    wrong = sum(sum(a != b for a, b in zip(p, c)) + abs(len(p) - len(c)) for p, c in zip(pred, clean))
    return wrong / sum(len(c) for c in clean)


def ensure_model(domain: str, path: str | None) -> Path:
    """``path``, else the shipped ``seqdiff/pretrained/<domain>-uniform.pt``, else the recipe's run (trained
    here when missing)."""
    if path:
        return Path(path)
    shipped = ROOT / "seqdiff" / "pretrained" / f"{domain}-uniform.pt"
    if shipped.is_file():
        return shipped
    from seqdiff.training.config import load_config
    cfg = load_config(RECIPES[domain], [])
    out_dir = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else ROOT / cfg.out_dir
    model_path = out_dir / "model.pt"
    if not model_path.is_file():
        from seqdiff.training.train import train
        print(f"[bench_correct] training {RECIPES[domain].relative_to(ROOT)} (model.pt missing) ...", file=sys.stderr)
        cfg = load_config(RECIPES[domain], [f"out_dir={model_path.parent}", "trainer.progress_bar=false"])
        model_path = Path(train(cfg, quiet=True)["model"])
    return model_path


def run_domain(domain: str, args) -> list[dict[str, Any]]:
    model = load_model(ensure_model(domain, getattr(args, f"{domain}_model")))
    masked = None
    mpath = Path(getattr(args, f"masked_{domain}") or MASKED[domain])
    if not args.no_mask and mpath.is_file():
        masked = load_model(mpath)
    length = min(model.max_len, masked.max_len if masked is not None else model.max_len)
    clean = held_out_windows(domain, length, args.num)
    print(f"[bench_correct] {domain}: {model.describe()}; {len(clean)} windows of {length}"
          + (f"; masked model {masked.describe()}" if masked else "; no masked model"), file=sys.stderr)
    ar_path = getattr(args, f"{domain}_ar") or ROOT / "runs" / f"correct-{domain}-ar" / "model.pt"
    ar = load_model(ar_path) if args.ar_num and Path(ar_path).is_file() else None
    if ar is not None:
        print(f"[bench_correct] {domain}: AR baseline {ar.describe()} on {args.ar_num} of the windows",
              file=sys.stderr)
    rows = []
    fixable = headroom(masked, clean, args.rates, domain, args) if masked is not None else {}
    for j, rate in enumerate(args.rates):
        noisy = corrupt(clean, rate, ALPHABETS[domain], args.seed + 1000 * j + (0 if domain == "text" else 7))
        row: dict[str, Any] = {"domain": domain, "rate": rate, "n_chars": sum(map(len, clean)),
                               "input": error_rate(noisy, clean)}
        if rate in fixable:
            row["fixable"], row["max_ratio"] = fixable[rate], fixable["max_ratio"]
        kw = dict(seed=args.seed, batch_size=args.batch_size)

        def multistep_pair():
            draws, pooled = [], []
            tok = model.tokenizer
            n = model.process.vocab_size
            for b, s0 in enumerate(range(0, len(noisy), args.batch_size)):
                x = torch.tensor([tok.encode(q) for q in noisy[s0:s0 + args.batch_size]])
                t = C.snap_time(model.schedule, C.time_for_error_rate(model.schedule, rate, n)).expand(len(x))
                nll = C._model_nll_fn(model, torch.ones_like(x, dtype=torch.bool), args.n_t, args.seed, b)
                _, _, cands, scores = C.multistep_correct(
                    model.denoiser, model.process, model.schedule, x, t, steps=args.steps,
                    num_candidates=args.candidates, generator=batch_generator(args.seed, b, model.device),
                    nll_fn=nll, include_mode=True, batch_size=args.batch_size)
                ar = torch.arange(len(x))
                pooled += tok.batch_decode(cands[ar, scores.argmin(-1)])
                draws += tok.batch_decode(cands[ar, scores[:, 1:].argmin(-1) + 1])
            return draws, pooled

        methods = {
            "oneshot_known": lambda: correct(model, noisy, error_rate=rate, method="oneshot", **kw),
            "oneshot_em": lambda: correct(model, noisy, method="oneshot", estimator="em", **kw),
            "oneshot_pll": lambda: correct(model, noisy, method="oneshot", estimator="pll", **kw),
            "multistep_known": multistep_pair,
        }
        if masked is not None:
            methods["mask_known"] = lambda: correct(masked, noisy, error_rate=rate, method="mask", steps=args.steps,
                                                    passes=args.mask_passes, **kw)
        for name, fn in methods.items():
            if args.methods and name not in args.methods:
                continue
            t0 = time.perf_counter()
            res = fn()
            if name == "multistep_known":
                row["multistep_draws"] = error_rate(res[0], clean)
                row[name] = error_rate(res[1], clean)
            else:
                row[name] = error_rate([r.corrected for r in res], clean)
            row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
            if name in ("oneshot_em", "oneshot_pll"):
                row[f"{name}_rate"] = float(np.mean([r.error_rate for r in res]))
            print(f"[bench_correct] {domain} r={rate:g} {name}: {row['input']:.4f} -> {row[name]:.4f} "
                  f"({row[f'{name}_s']} s)", file=sys.stderr)
        if ar is not None:
            run_ar(row, domain, rate, clean, noisy, model, ar, args)
        rows.append(row)
    for k in args.reads:
        rows += run_reads(domain, k, clean, model, masked, args)
    if args.quality:
        rows += run_quality(domain, clean, model, masked, args)
    return rows


BAD_Q, GOOD_Q = list(range(2, 7)), list(range(25, 41))


def with_qualities(seqs: list[str], rate: float, alphabet: str, seed: int) -> tuple[list[str], list[list[int]]]:
    """Reads with phred qualities: a share ``f`` of the bases is bad (Q 2–6, error 25–63 %), the rest good
    (Q 25–40), ``f`` chosen so that the mean error probability is ``rate``; each base is then substituted
    (by a uniformly drawn different letter) with its own probability ``10^(-Q/10)`` (seeded)."""
    rng = np.random.default_rng(seed)
    e_bad = float(np.mean([10 ** (-q / 10) for q in BAD_Q]))
    e_good = float(np.mean([10 ** (-q / 10) for q in GOOD_Q]))
    f = (rate - e_good) / (e_bad - e_good)
    reads, quals = [], []
    for s in seqs:
        bad = rng.random(len(s)) < f
        q = np.where(bad, rng.choice(BAD_Q, len(s)), rng.choice(GOOD_Q, len(s)))
        hit = rng.random(len(s)) < 10.0 ** (-q / 10)
        shift = rng.integers(1, len(alphabet), len(s))
        ids = np.array([alphabet.index(c) for c in s])
        ids = np.where(hit, (ids + shift) % len(alphabet), ids)
        reads.append("".join(alphabet[i] for i in ids))
        quals.append([int(v) for v in q])
    return reads, quals


def run_quality(domain: str, clean: list[str], model, masked, args) -> list[dict[str, Any]]:
    """Single reads with base qualities (FASTQ): the rate-based one-shot (qualities ignored, r = the mean
    error probability) against the quality-aware decoder (each base its own channel)."""
    rows = []
    for j, rate in enumerate(args.rates):
        reads, quals = with_qualities(clean, rate, ALPHABETS[domain], args.seed + 90_000 + 1000 * j)
        row: dict[str, Any] = {"domain": domain, "quality": True, "rate": rate, "n_chars": sum(map(len, clean)),
                               "input": error_rate(reads, clean)}
        kw = dict(seed=args.seed, batch_size=args.batch_size)
        methods = {"ignore_quality": lambda: correct(model, reads, error_rate=rate, method="oneshot", **kw),
                   "quality_uniform": lambda: correct(model, reads, qualities=quals, iters=args.iters, **kw)}
        if masked is not None:
            methods["quality_mask"] = lambda: correct(masked, reads, qualities=quals, iters=args.iters,
                                                      passes=args.mask_passes or 16, **kw)
        for _ in timed(row, methods, clean, f"{domain} qualities r={rate:g}"):
            pass
        rows.append(row)
    return rows


def markdown_quality(rows: list[dict[str, Any]]) -> str:
    cols = [("ignore_quality", "one-shot, qualities ignored (r known)"),
            ("quality_uniform", "qualities, uniform model"), ("quality_mask", "qualities, masked model")]
    cols = [(k, h) for k, h in cols if any(k in r for r in rows)]
    lines = ["| domain | mean error probability | chars | input error | " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * (4 + len(cols))]
    for r in rows:
        cells = [f"{100 * r[k]:.2f} %" if k in r else "—" for k, _ in cols]
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['n_chars']} | {100 * r['input']:.2f} % | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ar(row: dict[str, Any], domain: str, rate: float, clean: list[str], noisy: list[str], model, ar,
           args) -> None:
    """The AR baseline (exact per-position posteriors, ``L·N`` sequence evaluations each) on an evenly
    spread subset of the windows, with the uniform model's one-shot on the same subset for comparison."""
    sub = sorted(set(np.linspace(0, len(clean) - 1, min(args.ar_num, len(clean))).astype(int).tolist()))
    c_sub, n_sub = [clean[i] for i in sub], [noisy[i] for i in sub]
    row["ar_chars"] = sum(map(len, c_sub))
    row["ar_input"] = error_rate(n_sub, c_sub)
    one = correct(model, n_sub, error_rate=rate, method="oneshot", seed=args.seed, batch_size=args.batch_size)
    row["ar_subset_oneshot"] = error_rate([r.corrected for r in one], c_sub)
    t0 = time.perf_counter()
    res = correct(ar, n_sub, error_rate=rate, seed=args.seed, batch_size=256)
    row["ar"] = error_rate([r.corrected for r in res], c_sub)
    row["ar_s"] = round(time.perf_counter() - t0, 1)
    print(f"[bench_correct] {domain} r={rate:g} AR baseline on {len(sub)} windows: {row['ar_input']:.4f} -> "
          f"{row['ar']:.4f} (uniform one-shot on them: {row['ar_subset_oneshot']:.4f}; {row['ar_s']} s)",
          file=sys.stderr)


def markdown_ar(rows: list[dict[str, Any]]) -> str:
    lines = ["| domain | r | chars | input error | one-shot, uniform model | AR baseline (exact posteriors) | AR seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['ar_chars']} | {100 * r['ar_input']:.2f} % | "
                     f"{100 * r['ar_subset_oneshot']:.2f} % | {100 * r['ar']:.2f} % | {r['ar_s']} |")
    return "\n".join(lines)


def headroom(masked, clean: list[str], rates: list[float], domain: str, args) -> dict[Any, float]:
    """How many substitutions a single-read corrector could fix at all: the share of (position, wrong
    letter) pairs of the clean windows where the masked model, given the *clean* context, finds the true
    letter more than ``(M - 1)(1 - r)/r`` times likelier than the wrong one — the likelihood ratio the
    channel demands before the posterior mode leaves the observed letter."""
    from seqdiff.jobs.correct import masked_marginals
    tok = masked.tokenizer
    x = torch.tensor([tok.encode(s) for s in clean], device=masked.device)
    letters = [tok.encode(c)[0] for c in ALPHABETS[domain]]
    num_letters = len(letters)
    lp = masked_marginals(masked.denoiser, masked.process, x, passes=16, schedule=masked.schedule,
                          batch_size=args.batch_size).cpu()[..., letters]
    idx = torch.tensor([letters.index(int(v)) for v in x.flatten()]).view(x.shape)
    true = lp.gather(-1, idx[..., None])
    log_ratio = (true - lp)  # [B, L, M]: log p(true)/p(other)
    wrong = torch.ones_like(log_ratio, dtype=torch.bool).scatter_(-1, idx[..., None], False)
    out = {}
    for r in rates:
        need = math.log((num_letters - 1) * (1 - r) / r)
        out[r] = float(((log_ratio > need) & wrong).sum() / wrong.sum())
    out["max_ratio"] = float(log_ratio[wrong].max().exp())
    return out


def timed(row: dict[str, Any], methods: dict[str, Any], clean: list[str], label: str, vote: bool = False):
    """Run each method, record its error rate and seconds in ``row``, report, and yield ``(name, result)``."""
    for name, fn in methods.items():
        t0 = time.perf_counter()
        res = fn()
        row[name] = error_rate([r.corrected for r in res], clean)
        row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
        base = f"read {row['input']:.4f}, vote {row['vote']:.4f}" if vote else f"{row['input']:.4f}"
        print(f"[bench_correct] {label} {name}: {base} -> {row[name]:.4f} ({row[f'{name}_s']} s)", file=sys.stderr)
        yield name, res


def majority(reads: list[str], rng: np.random.Generator) -> str:
    """Per-position majority letter of aligned reads; ties broken uniformly at random (seeded)."""
    out = []
    for letters in zip(*reads):
        count: dict[str, int] = {}
        for c in letters:
            count[c] = count.get(c, 0) + 1
        top = max(count.values())
        tied = sorted(c for c, v in count.items() if v == top)
        out.append(tied[int(rng.integers(len(tied)))])
    return "".join(out)


def run_reads(domain: str, k: int, clean: list[str], model, masked, args) -> list[dict[str, Any]]:
    """Each clean window read ``k`` times through independent seeded channels; one corrected sequence per
    window from its ``k`` reads (``correct(..., group_by=...)``) against a reads-only majority vote."""
    rows = []
    for j, rate in enumerate(args.rates):
        reads, ids = [], []
        for copy in range(k):
            reads += corrupt(clean, rate, ALPHABETS[domain], args.seed + 50_000 + 1000 * j + 10 * k + copy)
            ids += [f"w{i}/{copy}" for i in range(len(clean))]
        rng = np.random.default_rng(args.seed + j)
        row: dict[str, Any] = {"domain": domain, "reads": k, "rate": rate, "n_chars": sum(map(len, clean)),
                               "input": error_rate(reads, clean * k),
                               "vote": error_rate([majority(reads[i::len(clean)], rng) for i in range(len(clean))],
                                                  clean)}
        kw = dict(ids=ids, group_by=r"^(w\d+)/", seed=args.seed, batch_size=args.batch_size, iters=args.iters)
        methods = {"consensus_known": lambda: correct(model, reads, error_rate=rate, **kw),
                   "consensus_est": lambda: correct(model, reads, **kw)}
        if masked is not None:
            methods["consensus_mask"] = lambda: correct(masked, reads, error_rate=rate,
                                                        passes=args.mask_passes or 16, **kw)
        for name, res in timed(row, methods, clean, f"{domain} {k} reads r={rate:g}", vote=True):
            if name == "consensus_est":
                row[f"{name}_rate"] = float(np.mean([r.error_rate for r in res]))
        rows.append(row)
    return rows


def markdown_reads(rows: list[dict[str, Any]]) -> str:
    cols = [("vote", "majority vote (ties at random)"), ("consensus_known", "consensus, uniform model, r known"),
            ("consensus_est", "consensus, uniform model, r̂ from the reads"),
            ("consensus_mask", "consensus, masked model, r known")]
    cols = [(k, h) for k, h in cols if any(k in r for r in rows)]
    lines = ["| domain | reads | r | chars | error of a read | " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * (5 + len(cols))]
    for r in rows:
        cells = []
        for k, _ in cols:
            cell = f"{100 * r[k]:.2f} %" if k in r else "—"
            if f"{k}_rate" in r:
                cell += f" (r̂ {100 * r[f'{k}_rate']:.1f} %)"
            cells.append(cell)
        lines.append(f"| {r['domain']} | {r['reads']} | {100 * r['rate']:g} % | {r['n_chars']} | "
                     f"{100 * r['input']:.2f} % | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = [("oneshot_known", "one-shot, r known"), ("oneshot_em", "one-shot, r̂ EM"),
            ("oneshot_pll", "one-shot, r̂ PLL"), ("multistep_draws", "multi-step draws, r known"),
            ("multistep_known", "multi-step draws + mode, r known"), ("mask_known", "mask (masked model), r known")]
    cols = [(k, h) for k, h in cols if any(k in r for r in rows)]
    head = ("| domain | r | chars | input error | fixable at most | " + " | ".join(h for _, h in cols) + " |")
    sep = "|" + "---|" * (5 + len(cols))
    lines = [head, sep]
    for r in rows:
        cells = []
        for k, _ in cols:
            if k not in r:
                cells.append("—")
                continue
            cell = f"{100 * r[k]:.2f} %"
            if f"{k}_rate" in r:
                cell += f" (r̂ {100 * r[f'{k}_rate']:.1f} %)"
            cells.append(cell)
        fix = f"{100 * r['fixable']:.1f} %" if "fixable" in r else "—"
        lines.append(f"| {r['domain']} | {100 * r['rate']:g} % | {r['n_chars']} | {100 * r['input']:.2f} % | {fix} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--domains", default="text,dna")
    p.add_argument("--rates", default="0.01,0.05,0.1", help="comma-separated substitution rates")
    p.add_argument("--num", type=int, default=64, help="held-out windows per domain")
    p.add_argument("--text-model", default=None)
    p.add_argument("--dna-model", default=None)
    p.add_argument("--masked-text", default=None, help="masked model for the mask mode (default: shipped)")
    p.add_argument("--masked-dna", default=None)
    p.add_argument("--text-ar", default=None, help="AR baseline (default: runs/correct-text-ar/model.pt if present)")
    p.add_argument("--dna-ar", default=None, help="AR baseline (default: runs/correct-dna-ar/model.pt if present)")
    p.add_argument("--ar-num", type=int, default=16,
                   help="windows the AR baseline corrects (an evenly spread subset; 0: none)")
    p.add_argument("--no-mask", action="store_true", help="skip the masked-model mode")
    p.add_argument("--methods", default=None,
                   help="subset: oneshot_known,oneshot_em,oneshot_pll,multistep_known,mask_known ('reads' alone: only the "
                        "--reads table)")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--n-t", type=int, default=32, help="multi-step: ELBO time points per candidate")
    p.add_argument("--mask-passes", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--reads", default="2,3",
                   help="also read each window this many times and correct the molecule from its reads "
                        "(comma-separated; '' for none)")
    p.add_argument("--iters", type=int, default=2, help="consensus rounds (--reads, --quality)")
    p.add_argument("--no-quality", dest="quality", action="store_false",
                   help="skip the table of single reads with base qualities")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",")]
    args.reads = [int(k) for k in args.reads.split(",") if k.strip()]
    args.methods = set(args.methods.split(",")) if args.methods else None
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for d in args.domains.split(","):
        rows += run_domain(d.strip(), args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    single = [r for r in rows if "reads" not in r and "quality" not in r]
    multi = [r for r in rows if "reads" in r]
    qual = [r for r in rows if "quality" in r]
    if single and (args.methods is None or args.methods - {"reads"}):
        print(markdown(single))
    with_ar = [r for r in single if "ar" in r]
    if with_ar:
        print("\n" + markdown_ar(with_ar))
    if multi:
        print("\n" + markdown_reads(multi))
    if qual:
        print("\n" + markdown_quality(qual))
    return 0


if __name__ == "__main__":
    sys.exit(main())
