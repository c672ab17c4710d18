"""`seqdiff sample | infill | score | eval` — the user-facing jobs on a trained model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import command
from .sampler_args import add_sampler_args, sampler_options_from_args
from . import app_cli as _app_cli  # noqa: F401  (registers `seqdiff app`)
from . import correct_cli as _correct_cli  # noqa: F401  (registers `seqdiff correct`)
from . import demo as _demo  # noqa: F401  (registers `seqdiff demo`)

__all__: list[str] = []


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", required=True,
                   help="model file or training checkpoint, or a shipped default: text | dna | protein | smiles "
                        "(uniform-noise, for correct: text-uniform | dna-uniform)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="same seed, same output")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per network batch")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _load(args):
    import torch

    from ..model import load_model
    from ..pretrained import resolve_model
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    model = load_model(resolve_model(args.model), map_location=device)
    if not args.quiet:
        print(f"seqdiff: {model.describe()}", file=sys.stderr)
    return model


def _default_out(model, stem: str) -> Path:
    from .generate import sequence_format
    ext = {"fasta": ".fa", "smi": ".smi", "txt": ".txt", "jsonl": ".jsonl"}[sequence_format(model.domain)]
    return Path(f"{stem}{ext}")


# ------------------------------------------------------------------------------------- sample
def _sample_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--num", "-n", type=int, default=16, help="number of sequences")
    p.add_argument("--length", type=int, default=None,
                   help="sequence length (default: drawn from the training length distribution, "
                        "or the model's window length)")
    add_sampler_args(p)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--score", action="store_true", help="add the ELBO of each sample to the CSV")
    p.add_argument("--n-t", type=int, default=8, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", default=None, help="sequence file (.fa, .smi, .txt, .jsonl); CSV beside it")
    p.add_argument("--csv", default=None, help="CSV path (default: the output with .csv)")


@command("sample", "generate sequences from a model (FASTA / .smi / text + a CSV)", _sample_args)
def _sample(args) -> int:
    from .generate import sample_job
    model = _load(args)
    out = Path(args.out) if args.out else _default_out(model, "samples")
    s = sample_job(model, args.num, out, length=args.length, sampler=args.sampler, steps=args.steps,
                   batch_size=args.batch_size, seed=args.seed, precision=args.precision, score=args.score,
                   n_t=args.n_t, csv_path=args.csv, progress=not args.quiet,
                   sampler_options=sampler_options_from_args(args))
    extra = f", validity {s['validity']:.3f}" if "validity" in s else ""
    print(f"wrote {s['num']} sequences to {s['out']} and {s['csv']} "
          f"({s['sequences_per_second']:.1f} seq/s, {s['sampler']}, {s['steps']} steps{extra})")
    return 0


# ------------------------------------------------------------------------------------- infill
def _infill_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--template", "-t", required=True,
                   help="fixed letters, ? = one free position, {k} or {a-b} = free span "
                        "(DNA/protein/text also [N:k], [N:a-b]); e.g. 'TTGACA[N:17]TATAAT[N:5-8]'")
    p.add_argument("--num", "-n", type=int, default=16, help="number of candidates")
    add_sampler_args(p)
    p.add_argument("--lengths", default="uniform", choices=["uniform", "likelihood"],
                   help="span lengths: uniform in their ranges, or chosen by ELBO")
    p.add_argument("--rank", action="store_true", help="sort candidates by NLL bound per token")
    p.add_argument("--top-k", type=int, default=None, help="keep the K best (implies --rank)")
    p.add_argument("--valid-only", action="store_true", help="SMILES: keep only molecules RDKit parses")
    p.add_argument("--n-t", type=int, default=8, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", default=None)
    p.add_argument("--csv", default=None)


@command("infill", "fill the free positions of a template; fixed letters are kept in every output", _infill_args)
def _infill(args) -> int:
    from .generate import infill_job
    model = _load(args)
    out = Path(args.out) if args.out else _default_out(model, "infilled")
    s = infill_job(model, args.template, args.num, out, csv_path=args.csv, progress=not args.quiet,
                   sampler=args.sampler, steps=args.steps, seed=args.seed, lengths=args.lengths, rank=args.rank,
                   top_k=args.top_k, valid_only=args.valid_only, batch_size=args.batch_size, n_t=args.n_t,
                   sampler_options=sampler_options_from_args(args))
    extra = f", validity {s['validity']:.3f}" if "validity" in s else ""
    print(f"wrote {s['num']} candidates to {s['out']} and {s['csv']}{extra}")
    return 0


# -------------------------------------------------------------------------------------- score
def _score_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--wt", help="wild-type sequence")
    src.add_argument("--wt-fasta", help="FASTA file whose first record is the wild type")
    p.add_argument("--variants", help="CSV of variants (a mutant column in DMS notation, e.g. A23G:K45R, "
                                      "or a column of full sequences)")
    p.add_argument("--column", default=None, help="name of the mutant column (auto-detected)")
    p.add_argument("--fasta", metavar="FILE", help="score plain sequences instead (FASTA, .smi, or text lines): "
                   "NLL bound (nats) and bits per token")
    p.add_argument("--method", action="append", default=None,
                   choices=["auto", "masked_marginal", "elbo", "ar"],
                   help="repeatable; auto = masked marginal for masked models, ELBO otherwise")
    p.add_argument("--n-t", type=int, default=16, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", required=True, help="output CSV (the input with score columns appended)")


@command("score", "likelihood scores of variants (DMS notation) or of plain sequences", _score_args)
def _score(args) -> int:
    from ..data import read_fasta
    from .generate import _tqdm
    from .scoring import score_sequences, score_variants
    from .variants import read_variants
    if not args.fasta and not args.variants:
        raise ValueError("give --variants (with --wt or --wt-fasta) or --fasta")
    model = _load(args)
    with _tqdm(1, "scoring", not args.quiet, unit="batch") as bar:
        def tick(i, n):
            bar.total = n
            bar.n = i
            bar.refresh()

        if args.fasta:
            from .correct_cli import read_inputs  # FASTA, .smi or text lines, by file name
            ids, seqs, _ = read_inputs(args.fasta)
            keep = [i for i, q in enumerate(seqs) if q.strip()]
            df = score_sequences(model, [ids[i] for i in keep], [seqs[i] for i in keep], n_t=args.n_t,
                                 seed=args.seed, batch_size=args.batch_size, progress=tick)
        else:
            if args.wt_fasta:
                wt = next(iter(read_fasta(args.wt_fasta))).seq
            elif args.wt:
                wt = args.wt.strip().upper()
            else:
                raise ValueError("--variants needs the wild type: --wt SEQUENCE or --wt-fasta FILE")
            table = read_variants(args.variants, wt, column=args.column)
            df = score_variants(model, wt, table, methods=args.method or ["auto"], n_t=args.n_t, seed=args.seed,
                                batch_size=args.batch_size, progress=tick)
    _write_csv_atomic(df, Path(args.out))
    cols = [c for c in df.columns if c.startswith("score_") or c in ("nll_nats", "bits_per_token")]
    unscored = int((df["score_status"] != "scored").sum()) if "score_status" in df else 0
    print(f"wrote {len(df)} rows to {args.out} (columns: {', '.join(cols)})"
          + (f"; {unscored} nonsense variant(s) kept unscored, see score_status" if unscored else ""))
    return 0


def _write_csv_atomic(df, path: Path) -> None:
    import os
    import tempfile
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------- eval
def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None, help="model for held-out likelihood (or shipped name)")
    p.add_argument("--split", default="test", help="valid | test (the recipe's files) or a data file path")
    p.add_argument("--n-t", type=int, default=8)
    p.add_argument("--max-rows", type=int, default=None, help="evaluate at most this many rows")
    p.add_argument("--samples", default=None, help="sample file to compute domain metrics of")
    p.add_argument("--domain", default=None, choices=["text", "dna", "protein", "smiles"],
                   help="domain of --samples (default: the model's, or from the file suffix)")
    p.add_argument("--reference", default=None, help="held-out data to compare samples with")
    p.add_argument("--training", default=None, help="training data (SMILES novelty)")
    p.add_argument("--ref-model", default=None, help="text: AR reference model for generative perplexity")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", "-q", action="store_true")


@command("eval", "held-out bits per token of a model, and domain metrics of samples", _eval_args)
def _eval(args) -> int:
    from .evaluate import evaluate_likelihood, evaluate_samples
    if not args.model and not args.samples:
        raise ValueError("give --model (likelihood) and/or --samples (domain metrics)")
    report: dict = {}
    model = _load(args) if args.model else None
    if model is not None:
        report["likelihood"] = evaluate_likelihood(model, args.split, n_t=args.n_t, seed=args.seed,
                                                   batch_size=args.batch_size, max_rows=args.max_rows)
    if args.samples:
        domain = args.domain or (model.domain if model is not None else None)
        if domain is None:
            suffix = Path(args.samples).suffix
            domain = {".smi": "smiles", ".txt": "text"}.get(suffix)
            if domain is None:
                from ..data import detect_format
                from .evaluate import read_sequences
                if detect_format(args.samples) != "fasta":
                    raise ValueError(f"{args.samples}: give --domain for this sample file")
                letters = set("".join(read_sequences(args.samples, "dna")).upper())
                domain = "dna" if letters <= set("ACGTUN") else "protein"  # FASTA: DNA or protein by letters
        ref_model = None
        if args.ref_model:
            ns = argparse.Namespace(**{**vars(args), "model": args.ref_model})
            ref_model = _load(ns)
        report["samples"] = evaluate_samples(domain, args.samples, reference=args.reference,
                                             training=args.training, ref_model=ref_model)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for section, vals in report.items():
            print(f"[{section}]")
            for k, v in vals.items():
                print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
    return 0
