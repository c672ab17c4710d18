"""`seqdiff sample | infill | score | eval | convert` — the user-facing jobs on a trained model.

Each command is a pair ``configure_<name>(parser)`` / ``run_<name>(args) -> exit code``, listed in
:data:`seqdiff.cli.SUBCOMMANDS`; the job code itself lives in :mod:`seqdiff.jobs`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..domains import domain_names
from ..domains.files import FORMATS
from ..pretrained import UNIFORM, shipped_names

__all__: list[str] = []


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", required=True,
                   help="model file or training checkpoint, or a shipped default: "
                        + " | ".join(n for n in shipped_names() if n not in UNIFORM)
                        + " (uniform-noise, for correct: " + " | ".join(UNIFORM) + ")")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="same seed, same output")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per network batch")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")


def _positive(args, *names: str) -> None:
    """Counts given on the command line must be ≥ 1 (``None`` = the default)."""
    for name in names:
        v = getattr(args, name, None)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {v}")


def check_outputs(paths, overwrite: bool) -> None:
    """Refuse an output path that is a folder, or that exists without ``--overwrite``."""
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            raise ValueError(f"{p}: is a folder; give a file name for the output")
        if p.exists() and not overwrite:
            raise ValueError(f"{p} already exists; pass --overwrite to replace it")
        if p.parent.exists() and not p.parent.is_dir():
            raise ValueError(f"{p.parent}: is not a folder")


def _resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    from ..model import _describe_device
    _describe_device(device)  # a clear error for a device this machine does not have
    return device


def _load(args):
    import torch

    from ..model import load_model
    from ..pretrained import resolve_model
    device = _resolve_device(args.device)
    torch.manual_seed(args.seed)
    model = load_model(resolve_model(args.model), map_location=device)
    if not args.quiet:
        print(f"seqdiff: {model.describe()}", file=sys.stderr)
    return model


def _sampler_options(args) -> dict:
    from ..jobs.sampler_args import sampler_options_from_args
    return sampler_options_from_args(args)


def _guidance(args):
    from ..jobs.guidance_args import guidance_from_args
    return guidance_from_args(args)


def _default_out(model, stem: str) -> Path:
    from ..jobs.generate import sequence_format
    ext = {"fasta": ".fa", "smi": ".smi", "txt": ".txt", "jsonl": ".jsonl"}[sequence_format(model.domain)]
    return Path(f"{stem}{ext}")


# ------------------------------------------------------------------------------------- sample
def configure_sample(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--num", "-n", type=int, default=16, help="number of sequences")
    p.add_argument("--length", type=int, default=None,
                   help="sequence length (default: drawn from the training length distribution, "
                        "or the model's window length)")
    from ..jobs.sampler_args import add_sampler_args  # the sampler registry (torch)
    add_sampler_args(p)
    from ..jobs.guidance_args import add_guidance_args  # guidance (torch)
    add_guidance_args(p)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="network arithmetic while sampling (bf16: faster on GPUs, not bit-identical)")
    p.add_argument("--score", action="store_true", help="add the ELBO of each sample to the CSV")
    p.add_argument("--n-t", type=int, default=8, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", default=None, help="sequence file (.fa, .smi, .txt, .jsonl); CSV beside it")
    p.add_argument("--csv", default=None, help="CSV path (default: the output with .csv)")


def _load_for_output(args, stem: str):
    """Check the output paths (before and, for a default name, after loading the model); ``(model, out)``."""
    if args.out:
        check_outputs([args.out, args.csv or Path(args.out).with_suffix(".csv")], args.overwrite)
    model = _load(args)
    out = Path(args.out) if args.out else _default_out(model, stem)
    check_outputs([out, args.csv or out.with_suffix(".csv")], args.overwrite)
    return model, out


def run_sample(args) -> int:
    from ..jobs.generate import sample_job
    _positive(args, "num", "steps", "batch_size", "n_t", "length")
    model, out = _load_for_output(args, "samples")
    s = sample_job(model, args.num, out, length=args.length, sampler=args.sampler, steps=args.steps,
                   batch_size=args.batch_size, seed=args.seed, precision=args.precision, score=args.score,
                   n_t=args.n_t, csv_path=args.csv, progress=not args.quiet,
                   sampler_options=_sampler_options(args), guidance=_guidance(args))
    extra = f", validity {s['validity']:.3f}" if "validity" in s else ""
    print(f"wrote {s['num']} sequences to {s['out']} and {s['csv']} "
          f"({s['sequences_per_second']:.1f} seq/s, {s['sampler']}, {s['steps']} steps{extra})")
    return 0


# ------------------------------------------------------------------------------------- infill
def configure_infill(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--template", "-t", required=True,
                   help="fixed letters, ? = one free position, {k} or {a-b} = free span "
                        "(DNA/protein/text also [N:k], [N:a-b]); e.g. 'TTGACA[N:17]TATAAT[N:5-8]'")
    p.add_argument("--num", "-n", type=int, default=16, help="number of candidates")
    from ..jobs.sampler_args import add_sampler_args  # the sampler registry (torch)
    add_sampler_args(p)
    from ..jobs.guidance_args import add_guidance_args  # guidance (torch)
    add_guidance_args(p)
    p.add_argument("--lengths", default="uniform", choices=["uniform", "likelihood"],
                   help="span lengths: uniform in their ranges, or chosen by ELBO")
    p.add_argument("--rank", action="store_true", help="sort candidates by NLL bound per token")
    p.add_argument("--top-k", type=int, default=None, help="keep the K best (implies --rank)")
    p.add_argument("--valid-only", action="store_true", help="SMILES: keep only molecules RDKit parses")
    p.add_argument("--n-t", type=int, default=8, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", default=None, help="sequence file (.fa, .smi, .txt, .jsonl); CSV beside it")
    p.add_argument("--csv", default=None, help="CSV path (default: the output with .csv)")


def run_infill(args) -> int:
    from ..jobs.generate import infill_job
    _positive(args, "num", "steps", "batch_size", "n_t", "top_k")
    model, out = _load_for_output(args, "infilled")
    s = infill_job(model, args.template, args.num, out, csv_path=args.csv, progress=not args.quiet,
                   sampler=args.sampler, steps=args.steps, seed=args.seed, lengths=args.lengths, rank=args.rank,
                   top_k=args.top_k, valid_only=args.valid_only, batch_size=args.batch_size, n_t=args.n_t,
                   sampler_options=_sampler_options(args), guidance=_guidance(args))
    extra = f", validity {s['validity']:.3f}" if "validity" in s else ""
    print(f"wrote {s['num']} candidates to {s['out']} and {s['csv']}{extra}")
    return 0


# -------------------------------------------------------------------------------------- score
def configure_score(p: argparse.ArgumentParser) -> None:
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
                   choices=["auto", "masked_marginal", "elbo", "ar", "none"],
                   help="repeatable; auto = masked marginal for masked models, ELBO otherwise (none: no model, "
                        "with --train-labels); multi-mutants: see --multi")
    p.add_argument("--n-t", type=int, default=16, help="time points per ELBO estimate")
    p.add_argument("--out", "-o", required=True, help="output CSV (the input with score columns appended)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: rows are written to OUT.partial as they are scored, and "
                        "OUT appears when all are done; rerun with the same arguments and --resume")
    from ..jobs.fewshot_cli import add_fewshot_args
    add_fewshot_args(p)


# rows per piece written to the output (a multiple of the batch size: the same numbers as one piece)
CHUNK_BATCHES = 16


def run_score(args) -> int:
    from ..data import read_fasta
    from ..jobs.generate import _tqdm
    from ..jobs.scoring import (check_variants, file_digest, partial_paths, score_sequences, score_variants,
                          stream_scores)
    from ..jobs.variants import read_variants, variant_warnings
    _positive(args, "batch_size", "n_t")
    if args.train_labels:
        from ..jobs.fewshot_cli import score_fewshot
        return score_fewshot(args)
    if "none" in (args.method or []):
        raise ValueError("--method none is for --train-labels (one-hot ridge without a model)")
    if not args.fasta and not args.variants:
        raise ValueError("give --variants (with --wt or --wt-fasta) or --fasta")
    out = Path(args.out)
    part, _ = partial_paths(out)
    check_outputs([out], args.overwrite)
    if part.exists() and not args.resume and not args.overwrite:
        raise ValueError(f"{part}: an interrupted run of this output; continue it with --resume, or pass "
                         f"--overwrite to start over")
    # read and validate every input row before the model is loaded or anything is written
    if args.fasta:
        from ..domains.files import read_inputs  # FASTA, .smi or text lines, by file name
        ids, seqs, _ = read_inputs(args.fasta)
        keep = [i for i, q in enumerate(seqs) if q.strip()]
        ids, seqs = [ids[i] for i in keep], [seqs[i] for i in keep]
        source, n_rows = args.fasta, len(seqs)
    else:
        if args.wt_fasta:
            wt = next(iter(read_fasta(args.wt_fasta))).seq
        elif args.wt:
            wt = args.wt.strip().upper()
        else:
            raise ValueError("--variants needs the wild type: --wt SEQUENCE or --wt-fasta FILE")
        table = read_variants(args.variants, wt, column=args.column)
        source, n_rows = args.variants, len(table)
    model = _load(args)
    if args.homologs:
        if args.fasta:
            raise ValueError("--homologs scores variants of a wild type; it does not take --fasta")
        from ..jobs.fewshot_cli import family_for
        model = family_for(args, model, wt)
    if args.fasta:
        tok = model.tokenizer
        for i, q in zip(ids, seqs):
            if len(tok.encode(q, name=f"{source}: record {i!r}")) > model.max_len:
                raise ValueError(f"{source}: record {i!r} is longer than the model's maximum {model.max_len}")
    else:
        check_variants(model, wt, table)
        for w in variant_warnings(table, model.domain, source=args.variants):
            print(f"seqdiff score: warning: {w}", file=sys.stderr)
    chunk = args.batch_size * CHUNK_BATCHES
    methods = args.method or ["auto"]
    fingerprint = [file_digest(source), file_digest(model_path(args)), args.n_t, args.seed, args.batch_size,
                   methods, args.column, wt if not args.fasta else None,
                   file_digest(args.homologs) if args.homologs else None, args.multi]
    cols: list[str] = []
    unscored = [0]
    with _tqdm(n_rows, "scoring", not args.quiet, unit="row") as bar:
        def chunks(start_row: int):
            bar.n = start_row
            bar.refresh()
            if n_rows == 0:
                yield (score_sequences(model, [], [], n_t=args.n_t) if args.fasta else
                       score_variants(model, wt, table, methods=methods, n_t=args.n_t, seed=args.seed))
            for start in range(start_row, n_rows, chunk):
                if args.fasta:
                    df = score_sequences(model, ids[start:start + chunk], seqs[start:start + chunk], n_t=args.n_t,
                                         seed=args.seed, batch_size=args.batch_size, offset=start)
                elif args.multi == "additive":
                    from ..jobs.multimutant import additive_scores
                    df = additive_scores(lambda w, t: score_variants(model, w, t, methods=methods, n_t=args.n_t,
                                                                     seed=args.seed, batch_size=args.batch_size),
                                         wt, table.iloc[start:start + chunk])
                else:
                    df = score_variants(model, wt, table.iloc[start:start + chunk], methods=methods,
                                        n_t=args.n_t, seed=args.seed, batch_size=args.batch_size)
                cols[:] = list(df.columns)
                if "score_status" in df:
                    unscored[0] += int((df["score_status"] != "scored").sum())
                bar.update(len(df))
                yield df

        def resumed(start_row: int) -> None:
            print(f"seqdiff score: resuming {part} at row {start_row + 1} of {n_rows}", file=sys.stderr)

        try:
            n = stream_scores(chunks, n_rows, out, fingerprint=fingerprint, chunk_rows=chunk,
                              resume=args.resume, on_resume=resumed)
        except (KeyboardInterrupt, OSError) as e:
            if part.exists():  # said on the same line as the error (seqdiff.cli prints the notes)
                e.add_note(f"the rows scored so far are in {part}: rerun with --resume to continue")
            raise
    shown = [c for c in cols if c.startswith("score_") or c in ("nll_nats", "bits_per_token")]
    print(f"wrote {n} rows to {args.out}" + (f" (columns: {', '.join(shown)})" if shown else "")
          + (f"; {unscored[0]} nonsense variant(s) kept unscored, see score_status" if unscored[0] else ""))
    return 0


def model_path(args) -> Path:
    from ..pretrained import resolve_model
    return resolve_model(args.model)


# --------------------------------------------------------------------------------------- eval
def configure_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None, help="model for held-out likelihood (or shipped name)")
    p.add_argument("--split", default="test", help="valid | test (the recipe's files) or a data file path")
    p.add_argument("--n-t", type=int, default=8, help="time points per ELBO estimate (more: a smaller standard "
                   "error; exact for the AR baseline whatever it is)")
    p.add_argument("--max-rows", type=int, default=None, help="evaluate at most this many rows")
    p.add_argument("--samples", default=None, help="sample file to compute domain metrics of")
    p.add_argument("--domain", default=None, choices=list(domain_names()),
                   help="domain of --samples (default: the model's, or from the file suffix)")
    p.add_argument("--reference", default=None, help="held-out data to compare samples with")
    p.add_argument("--training", default=None, help="training data (SMILES novelty)")
    p.add_argument("--ref-model", default=None, help="text: AR reference model for generative perplexity")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of the ELBO's time points and noise (same seed, "
                   "same numbers)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per network batch")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the model description")


def run_eval(args) -> int:
    from ..jobs.evaluate import evaluate_likelihood, evaluate_samples
    _positive(args, "batch_size", "n_t", "max_rows")
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
            from ..domains import domains, guess_fasta_domain
            suffix = Path(args.samples).suffix
            by_format = {}  # a format only one domain writes names the domain (.smi, .txt)
            for d in domains().values():
                by_format.setdefault(d.file_format, []).append(d.name)
            fmt = next((f for f in by_format if suffix in FORMATS[f].suffixes[:1]), None)
            domain = by_format[fmt][0] if fmt is not None and len(by_format[fmt]) == 1 else None
            if domain is None:
                from ..data import detect_format
                from ..jobs.evaluate import read_sequences
                if detect_format(args.samples) != "fasta":
                    raise ValueError(f"{args.samples}: give --domain for this sample file")
                letters = set("".join(read_sequences(args.samples, "dna")).upper())
                domain = guess_fasta_domain(letters)  # FASTA: DNA, RNA or protein by letters
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


# ------------------------------------------------------------------------------------ convert
def configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a model file or training checkpoint written by an older seqdiff")
    p.add_argument("--out", "-o", default=None, help="where to write the converted model (default: replace SOURCE)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run_convert(args) -> int:
    from ..serialization import convert_model
    if args.out:
        check_outputs([args.out], args.overwrite)
    path = convert_model(args.source, args.out)
    print(f"wrote {path}: tensors and plain data only (opens with torch.load(weights_only=True))")
    return 0
