"""`seqdiff correct`: fix substitution errors with a diffusion model (the job: :mod:`seqdiff.jobs.correct_cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .jobs import _common, _load, _positive, check_outputs

__all__: list[str] = []


def configure_correct(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--input", "-i", required=True,
                   help="sequences to correct: text lines (.txt), FASTA (.fa, .fasta, ...), FASTQ (.fastq, .fq; "
                        "base qualities are used), SMILES (.smi); .gz ok")
    p.add_argument("--out", "-o", required=True,
                   help="corrected sequences, in the input's format; a CSV goes beside it (same name, .csv)")
    p.add_argument("--csv", default=None, help="CSV path (default: --out with .csv)")
    p.add_argument("--error-rate", "-r", type=float, default=None,
                   help="substitution rate of the input (e.g. 0.05); default: estimated per sequence")
    p.add_argument("--estimator", default="em", choices=["em", "pll"],
                   help="how the rate is estimated when not given: EM on the marginal likelihood (default) or the "
                        "pseudo-likelihood grid")
    p.add_argument("--method", default="auto", choices=["auto", "oneshot", "multistep", "mask", "ar"],
                   help="auto = oneshot for uniform-noise models, mask for masked models, ar for the AR baseline "
                        "(exact per-position posteriors from L·N sequence evaluations: slow)")
    p.add_argument("--keep", default=None,
                   help="positions never changed, for every record: a 1-based list '1-6,13' (both ends included), "
                        "or a mask as long as each sequence ('?', '.', '_' = may change; other letters = keep, "
                        "e.g. 'TTGACA????')")
    p.add_argument("--zero-based", action="store_true", help="--keep positions count from 0 instead of 1")
    p.add_argument("--candidates", "-k", type=int, default=4, help="multistep: reverse draws per sequence")
    p.add_argument("--steps", type=int, default=16, help="multistep: reverse steps; mask: infill rounds")
    p.add_argument("--rank", default="posterior", choices=["posterior", "elbo"],
                   help="multistep: rank candidates by ELBO + channel term (posterior) or ELBO alone")
    p.add_argument("--n-t", type=int, default=32, help="multistep: time points per ELBO estimate")
    p.add_argument("--draws-only", action="store_true",
                   help="multistep: rank only the reverse draws (by default the one-shot mode competes too)")
    p.add_argument("--threshold", type=float, default=None,
                   help="mask: flag positions whose masked marginal is below this (instead of ceil(rate·L))")
    p.add_argument("--infill", default="greedy", choices=["greedy", "ancestral"], help="mask: how to infill")
    p.add_argument("--mask-passes", type=int, default=None,
                   help="mask: k interleaved passes per sequence instead of one per position (long inputs)")
    p.add_argument("--group-by", default=None, metavar="REGEX",
                   help="reads of one molecule: records whose ids give the same key (the regex's first group, or "
                        "its match; e.g. '^(\\S+)/\\d+$' or 'umi=(\\w+)') are aligned reads of one molecule and "
                        "are combined into one corrected sequence (their letters' likelihood times the model's prior)")
    p.add_argument("--iters", type=int, default=2, help="--group-by, FASTQ: consensus rounds (network passes)")
    p.add_argument("--ignore-quality", action="store_true",
                   help="FASTQ: ignore the base qualities (use --error-rate or the estimated rate instead)")


def run_correct(args: argparse.Namespace) -> int:
    from ..jobs.correct import positions_to_zero_based
    from ..jobs.correct_cli import correct_job

    _positive(args, "candidates", "steps", "batch_size", "iters", "n_t", "mask_passes")
    keep = args.keep if args.zero_based else positions_to_zero_based(args.keep)
    out = Path(args.out)
    check_outputs([out, Path(args.csv) if args.csv else out.with_suffix(".csv")], args.overwrite)
    model = _load(args)
    s = correct_job(model, args.input, args.out, csv_path=args.csv, progress=not args.quiet,
                    error_rate=args.error_rate, method=args.method, keep=keep,
                    num_candidates=args.candidates, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                    n_t=args.n_t, rank=args.rank, threshold=args.threshold, infill=args.infill,
                    passes=args.mask_passes, estimator=args.estimator, include_mode=not args.draws_only,
                    group_by=args.group_by, iters=args.iters, use_quality=not args.ignore_quality)
    what = f"{s['num']} molecules from {s['reads']} reads" if args.group_by else f"{s['num']} sequences"
    valid = f"; RDKit parses {s['valid_before']} before, {s['valid_after']} after" if "valid_after" in s else ""
    print(f"corrected {what} ({s['changed_tokens']} tokens changed, {s['method']}{valid}): "
          f"wrote {s['out']} and {s['csv']}")
    return 0
