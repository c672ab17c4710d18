"""`seqdiff correct`: fix substitution errors in sequences with a diffusion model (any domain).

Reads text lines (``.txt``), FASTA (``.fa``/``.fasta``/..., ``.gz`` ok) or SMILES (``.smi``), writes the
corrected sequences in the same format plus a CSV with one row per input. Every record is validated
(alphabet, model length, keep mask) before any work, and both outputs are written to temporary files and
renamed into place at the end, so a failed run writes nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..cli import command

__all__ = ["correct_job", "read_inputs", "CSV_COLUMNS"]

CSV_COLUMNS = ["id", "input", "corrected", "num_changed", "positions", "confidences", "changed_confidences",
               "t", "error_rate", "rate_estimated", "method", "reads"]


def input_format(path: str | Path) -> str:
    """``fasta`` | ``smi`` | ``txt`` from the file name (a trailing ``.gz`` is ignored): FASTA as
    :func:`seqdiff.data.detect_format` recognises it, ``.smi``/``.smiles``, and text lines otherwise."""
    from ..data import detect_format

    fmt = detect_format(path)
    if fmt in ("fasta", "fastq"):
        return fmt
    name = Path(path).name.lower().removesuffix(".gz")
    return "smi" if fmt == "smiles" and name.endswith((".smi", ".smiles")) else "txt"


def read_inputs(path: str | Path) -> tuple[list[str], list[str], str]:
    """``(ids, sequences, format)`` of an input file. Text: one sequence per line (ids ``line N``; empty
    lines are kept, and pass through unchanged); FASTA and FASTQ: the record ids; ``.smi``:
    ``SMILES<TAB>id``."""
    ids, seqs, fmt, _ = _read_inputs(path)
    return ids, seqs, fmt


def _read_inputs(path: str | Path) -> tuple[list[str], list[str], str, list[list[int]] | None]:
    """:func:`read_inputs` plus the phred qualities of a FASTQ file (``None`` for other formats)."""
    from ..data import read_fastq_qualities, read_records
    from ..domains import read_smi_samples

    fmt = input_format(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if fmt == "smi":
        ids, seqs = read_smi_samples(path)
        if not seqs:
            raise ValueError(f"{path}: no SMILES records")
        return ids, seqs, fmt, None
    if fmt == "fastq":
        recs = read_fastq_qualities(path)
        return [r[0] for r in recs], [r[1] for r in recs], fmt, [r[2] for r in recs]
    if fmt == "fasta":
        recs = list(read_records(path, fmt))
    else:
        recs = list(read_records(path, "text", mode="lines", keep_empty=True))
        recs = [r._replace(seq=r.seq.rstrip("\r")) for r in recs]
    return [r.id for r in recs], [r.seq for r in recs], fmt, None


def correct_job(model, input_path: str | Path, out: str | Path, *, csv_path: str | Path | None = None,
                progress: bool = True, use_quality: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Correct every record of ``input_path`` (see :func:`seqdiff.jobs.correct.correct` for ``kwargs``)
    and write the sequences (same format as the input) and the CSV atomically; returns a summary.

    FASTQ: the base qualities enter the channel (``use_quality``; otherwise the rate-based channel), and
    the output FASTQ's qualities are the corrector's confidences, ``-10 log10(1 - confidence)``."""
    import torch

    from .correct import compact_confidences, correct, error_to_phred
    from .generate import _tqdm, _writing

    out = Path(out)
    if out.suffix.lower() == ".csv":
        raise ValueError(f"--out {out} is the corrected-sequence file; give it the input's format "
                         f"(the CSV goes beside it, or to --csv)")
    ids, seqs, fmt, qualities = _read_inputs(input_path)
    if qualities is not None and use_quality:
        kwargs["qualities"] = qualities
        kwargs.pop("error_rate", None)
    t0 = time.perf_counter()
    with _tqdm(len(seqs), "correcting", progress) as bar:
        def tick(i, n):
            bar.total = n
            bar.n = i
            bar.refresh()

        res = correct(model, seqs, ids=ids, progress=tick, **kwargs)
    rows = []
    for c in res:
        conf_changed = ";".join(f"{c.confidences[p]:.3f}" for p in c.positions)
        rows.append({"id": c.id, "sequence": c.corrected, "input": c.input, "corrected": c.corrected,
                     "num_changed": c.num_changed, "positions": ";".join(str(q + 1) for q in c.positions),  # 1-based
                     "confidences": compact_confidences(c.confidences), "changed_confidences": conf_changed,
                     "t": round(c.t, 6), "error_rate": round(c.error_rate, 6),
                     "rate_estimated": c.estimated, "method": c.method, "reads": c.reads})
        if fmt == "fastq":
            rows[-1]["quality"] = "".join(chr(33 + int(q)) for q in
                                          error_to_phred(1.0 - torch.tensor(c.confidences, dtype=torch.float64)))
    columns = list(CSV_COLUMNS)
    if getattr(model, "domain", None) == "smiles":  # SMILES repair: does RDKit parse it, before and after
        from ..tokenizers.smiles import is_valid_smiles
        columns += ["input_valid", "valid"]
        for row in rows:
            row["input_valid"] = bool(row["input"]) and is_valid_smiles(row["input"])
            row["valid"] = bool(row["corrected"]) and is_valid_smiles(row["corrected"])
    with _writing(out, fmt, csv_path, columns) as w:
        w.write(rows)
    n_changed = sum(c.num_changed for c in res)
    extra = {"valid_before": sum(r["input_valid"] for r in rows), "valid_after": sum(r["valid"] for r in rows)} \
        if "valid" in columns else {}
    return {**extra, "num": len(res), "reads": len(seqs), "changed_tokens": n_changed, "out": str(w.out), "csv": str(w.csv_path),
            "seconds": round(time.perf_counter() - t0, 2), "method": res[0].method if res else ""}


def _correct_args(p: argparse.ArgumentParser) -> None:
    from .cli import _common
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


@command("correct", "fix substitution errors (typos, miscalled bases) with a diffusion model", _correct_args)
def _correct(args: argparse.Namespace) -> int:
    from .cli import _load

    from .cli import _positive, check_outputs
    from .correct import positions_to_zero_based

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
