"""`seqdiff correct`: fix substitution errors in sequences with a diffusion model (any domain).

Reads text lines (``.txt``), FASTA (``.fa``/``.fasta``/..., ``.gz`` ok) or SMILES (``.smi``), writes the
corrected sequences in the same format plus a CSV with one row per input. Every record is validated
(alphabet, model length, keep mask) before any work, and both outputs are written to temporary files and
renamed into place at the end, so a failed run writes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..domains.files import read_inputs, read_inputs_with_qualities

__all__ = ["correct_job", "read_inputs", "CSV_COLUMNS"]

CSV_COLUMNS = ["id", "input", "corrected", "num_changed", "positions", "confidences", "changed_confidences",
               "t", "error_rate", "rate_estimated", "method", "reads"]


def correct_job(model, input_path: str | Path, out: str | Path, *, csv_path: str | Path | None = None,
                progress: bool = True, use_quality: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Correct every record of ``input_path`` (see :func:`seqdiff.jobs.correct.correct` for ``kwargs``)
    and write the sequences (same format as the input) and the CSV atomically; returns a summary.

    FASTQ: the base qualities enter the channel (``use_quality``; otherwise the rate-based channel), and
    the output FASTQ's qualities are the corrector's confidences, ``-10 log10(1 - confidence)``."""
    import torch

    from ..domains import get_domain
    from .correct import compact_confidences, correct, error_to_phred
    from .generate import _tqdm, _writing

    out = Path(out)
    if out.suffix.lower() == ".csv":
        raise ValueError(f"--out {out} is the corrected-sequence file; give it the input's format "
                         f"(the CSV goes beside it, or to --csv)")
    ids, seqs, fmt, qualities = read_inputs_with_qualities(input_path)
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
    dom = get_domain(model.domain) if getattr(model, "domain", None) else None
    if dom is not None and dom.has_validity:  # SMILES repair: is it valid (RDKit parses it), before and after
        columns += ["input_valid", "valid"]
        for row in rows:
            row["input_valid"] = bool(row["input"]) and bool(dom.per_sample(row["input"])["valid"])
            row["valid"] = bool(row["corrected"]) and bool(dom.per_sample(row["corrected"])["valid"])
    with _writing(out, fmt, csv_path, columns) as w:
        w.write(rows)
    n_changed = sum(c.num_changed for c in res)
    extra = {"valid_before": sum(r["input_valid"] for r in rows), "valid_after": sum(r["valid"] for r in rows)} \
        if "valid" in columns else {}
    return {**extra, "num": len(res), "reads": len(seqs), "changed_tokens": n_changed, "out": str(w.out), "csv": str(w.csv_path),
            "seconds": round(time.perf_counter() - t0, 2), "method": res[0].method if res else ""}
