"""Batch generation and constrained infilling, as a Python API and the `seqdiff sample` /
`seqdiff infill` jobs.

Outputs go to a sequence file in the domain's format (FASTA for DNA/protein, ``.smi`` for SMILES,
``.txt`` or ``.jsonl`` for text) plus a CSV with one row per output. Both are written to temporary
files next to their destination and renamed into place at the end, so an interrupted or failed job
never leaves a partial file, and an earlier output of the same name survives until the new one is
complete. `sample` streams to those temporary files batch by batch: memory stays at one batch.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..atomic import publish, temp_path
from ..domains import get_domain
from ..domains.files import FORMATS
from .template import Template, parse_template

__all__ = ["sample_job", "infill", "infill_job", "Candidate", "OutputWriter", "sequence_format",
           "per_sample_metrics", "batch_generator"]

Progress = Callable[[int, int], None]


def batch_generator(seed: int, batch_index: int, device) -> torch.Generator:
    """The generator of batch ``b`` of a job with seed ``s`` (so batches are reproducible)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) * 1_000_003 + int(batch_index))
    return g


def sequence_format(domain: str, path: str | Path | None = None) -> str:
    """``fasta`` | ``smi`` | ``txt`` | ``jsonl`` from the domain, or from the suffix of ``path``."""
    if path is not None:
        suffix = Path(path).suffix.lower()
        if suffix == ".jsonl":
            return "jsonl"
        for fmt in FORMATS.values():
            if suffix in fmt.suffixes:
                return fmt.name
    return get_domain(domain).file_format


def per_sample_metrics(domain: str, seq: str) -> dict[str, Any]:
    """Cheap per-sequence metrics for the CSV: the domain's own (:attr:`Domain.sample_metrics`;
    SMILES validity and canonical form, DNA GC, ...)."""
    return get_domain(domain).per_sample(seq)


def format_record(fmt: str, sid: str, seq: str, description: str = "", quality: str | None = None) -> str:
    """One record as it appears in a ``fmt`` file: FASTA (``>id description``, wrapped at 80), FASTQ
    (``quality``: the phred+33 string, one character per letter), ``SMILES<TAB>id``, a JSON line, or a
    text line (which may not contain a newline)."""
    if fmt == "fastq":
        if quality is None or len(quality) != len(seq):
            raise ValueError(f"record {sid!r}: a FASTQ record needs one quality character per letter")
        head = f"@{sid} {description}" if description else f"@{sid}"
        return f"{head}\n{seq}\n+\n{quality}\n"
    if fmt == "fasta":
        head = f">{sid} {description}" if description else f">{sid}"
        return head + "\n" + "".join(seq[i:i + 80] + "\n" for i in range(0, max(len(seq), 1), 80))
    if fmt == "smi":
        return f"{seq}\t{sid}\n"
    if fmt == "jsonl":
        return json.dumps({"id": sid, "text": seq}) + "\n"
    if "\n" in seq:
        raise ValueError("a text sample contains a newline; use a .jsonl output")
    return seq + "\n"


class OutputWriter:
    """Streams sequences and CSV rows into temporary files; :meth:`commit` renames them into place."""

    def __init__(self, out: str | Path, fmt: str, csv_path: str | Path | None = None,
                 columns: Sequence[str] = ()) -> None:
        self.out = Path(out)
        self.fmt = fmt
        self.csv_path = Path(csv_path) if csv_path else self.out.with_suffix(".csv")
        if self.csv_path == self.out:
            raise ValueError("the sequence file and the CSV must differ")
        for p in (self.out, self.csv_path):
            if p.is_dir():
                raise ValueError(f"{p}: is a folder; give a file name for the output")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_seq = self._tmp(self.out)
        self._tmp_csv = self._tmp(self.csv_path)
        self._seq = open(self._tmp_seq, "w")
        self._csv_f = open(self._tmp_csv, "w", newline="")
        self._csv = csv.DictWriter(self._csv_f, fieldnames=list(columns), extrasaction="ignore")
        self._csv.writeheader()
        self.count = 0

    @staticmethod
    def _tmp(path: Path) -> Path:
        return temp_path(path)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            self._seq.write(format_record(self.fmt, r["id"], r["sequence"], quality=r.get("quality")))
            self._csv.writerow(r)
            self.count += 1
        self._seq.flush()
        self._csv_f.flush()

    def commit(self) -> tuple[Path, Path]:
        self._seq.close()
        self._csv_f.close()
        for tmp, dest in ((self._tmp_seq, self.out), (self._tmp_csv, self.csv_path)):
            publish(tmp, dest)
        return self.out, self.csv_path

    def abort(self) -> None:
        for f in (self._seq, self._csv_f):
            with contextlib.suppress(Exception):
                f.close()
        for tmp in (self._tmp_seq, self._tmp_csv):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _writing(out, fmt, csv_path, columns) -> Iterator[OutputWriter]:
    w = OutputWriter(out, fmt, csv_path, columns)
    try:
        yield w
    except BaseException:
        w.abort()
        raise
    w.commit()


def _autocast(model, precision: str):
    dev = model.device.type
    if precision == "bf16":
        return torch.autocast(dev, dtype=torch.bfloat16)
    if precision not in ("fp32", "32"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    return contextlib.nullcontext()


def _tqdm(total: int, desc: str, enabled: bool, unit: str = "seq"):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def sample_job(model, num: int, out: str | Path, *, length: int | None = None, sampler: str | None = None,
               steps: int | None = None, batch_size: int = 64, seed: int = 0, precision: str = "fp32",
               score: bool = False, n_t: int = 8, csv_path: str | Path | None = None, fmt: str | None = None,
               progress: bool = True, sampler_options: dict[str, Any] | None = None,
               guidance=None) -> dict[str, Any]:
    """Generate ``num`` sequences into ``out`` (+ CSV); returns a summary dict.

    ``sampler_options``: the sampler's options (``temperature``, ``confidence``, ``grid``, …; see
    :meth:`seqdiff.diffusion.Sampler.options`); the model's recorded defaults fill the rest.
    ``guidance``: a :class:`seqdiff.guidance.run.GuidanceSettings` (condition, reward, best-of-N,
    SMC); with a reward the CSV has a ``reward`` column (each output's reward)."""
    if num < 1:
        raise ValueError("num must be ≥ 1")
    if batch_size < 1 or (steps is not None and steps < 1):
        raise ValueError(f"batch_size and steps must be ≥ 1, got {batch_size} and {steps}")
    if length is not None and not 1 <= length <= model.max_len:
        raise ValueError(f"length must be in 1..{model.max_len} (the model's maximum), got {length}")
    fmt = fmt or sequence_format(model.domain, out)
    sampler_name = model.default_sampler if sampler is None else sampler
    steps = steps or model.cfg.sampling.steps
    kw = dict(sampler_options or {})
    if sampler_name != "ar":
        model.build_sampler(sampler, steps, **kw)  # options checked before anything is written
    guide = _check_guidance(model, guidance, sampler)
    columns = ["id", "sequence", "length", "sampler", "steps", "seed"] + \
        (["reward"] if guide is not None and guide.reward is not None else []) + \
        (["elbo_nats", "bits_per_token"] if score else []) + \
        list(get_domain(model.domain).sample_columns)
    t0 = time.perf_counter()
    n_valid = 0
    with _writing(out, fmt, csv_path, columns) as w, _tqdm(num, "sampling", progress) as bar:
        for b, start in enumerate(range(0, num, batch_size)):
            n = min(batch_size, num - start)
            g = batch_generator(seed, b, model.device)
            with _autocast(model, precision):
                ids = _generate(model, guide, n, length, sampler=sampler, steps=steps, generator=g, **kw)
            texts = model.decode(ids)
            rewards = _rewards(guide, texts)
            rows = []
            nll = None
            if score:
                res = model.nll(ids, n_t=n_t, generator=batch_generator(seed + 1, b, model.device))
                nll = res
            for j, s in enumerate(texts):
                r = {"id": f"sample_{start + j + 1}", "sequence": s, "length": int((ids[j] != model.tokenizer.pad_id).sum()),
                     "sampler": sampler_name, "steps": steps if sampler_name != "ar" else "", "seed": seed}
                if rewards is not None:
                    r["reward"] = round(float(rewards[j]), 6)
                if nll is not None:
                    r["elbo_nats"] = round(float(nll.nats[j]), 4)
                    r["bits_per_token"] = round(float(nll.nats[j]) / (r["length"] * math.log(2)), 4)
                r.update(per_sample_metrics(model.domain, s))
                n_valid += int(bool(r.get("valid", False)))
                rows.append(r)
            w.write(rows)
            bar.update(n)
            bar.set_postfix(seq_per_s=f"{bar.n / max(time.perf_counter() - t0, 1e-9):.1f}")
    elapsed = time.perf_counter() - t0
    summary = {"num": num, "out": str(w.out), "csv": str(w.csv_path), "seconds": round(elapsed, 2),
               "sequences_per_second": round(num / elapsed, 2), "sampler": sampler_name, "steps": steps,
               "sampler_options": {} if model.is_ar else model.sampler_options(sampler, **kw)}
    if guide is not None:
        summary["guidance"] = guide.describe()
    if get_domain(model.domain).has_validity:
        summary["validity"] = n_valid / num
    return summary


def _check_guidance(model, guidance, sampler=None):
    """Checked guidance settings, or ``None``; errors come before anything is written."""
    return None if guidance is None else guidance.check(model, sampler)


def _generate(model, guide, num=None, length=None, **kw):
    if guide is None:
        return model.generate(num, length, **kw)
    from ..guidance.run import guided_generate
    return guided_generate(model, guide, num, length, **kw)


def _rewards(guide, texts):
    if guide is None or guide.reward is None:
        return None
    return guide.reward(texts)


# ------------------------------------------------------------------------------------ infilling
@dataclass
class Candidate:
    """One infilled output."""

    id: str
    sequence: str
    ids: list[int]
    fixed: list[bool]  # per token position
    span_lengths: list[int]
    nll_nats: float | None = None
    bits_per_token: float | None = None
    nll_stderr: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def fixed_string(self, tokens: Sequence[str]) -> str:
        return "".join(t if f else "_" * len(t) for t, f in zip(tokens, self.fixed))


def _layouts(template: Template, num: int, lengths: str, rng: np.random.Generator) -> list[list[int]]:
    if lengths == "uniform":
        return [template.instantiate(rng)[2] for _ in range(num)]
    raise ValueError(f"unknown length choice {lengths!r} (uniform | likelihood)")


@torch.no_grad()
def infill(model, template: str | Template, num: int = 10, *, sampler: str | None = None, steps: int | None = None,
           seed: int = 0, lengths: str = "uniform", rank: bool = False, top_k: int | None = None,
           valid_only: bool = False, batch_size: int = 64, n_t: int = 8,
           sampler_options: dict[str, Any] | None = None, score: bool = False, progress: Progress | None = None,
           step_progress: Callable[[int, int, int, int], None] | None = None,
           on_batch: Callable[[list[Candidate], bool], None] | None = None, guidance=None) -> list[Candidate]:
    """Fill the free positions of a template; fixed letters appear verbatim in every candidate.

    ``lengths``: ``uniform`` draws each span's length uniformly in its range; ``likelihood`` makes,
    for every output, one candidate at each total length the template allows (at most 16, evenly
    spread) and keeps the one with the best ELBO bits per token.
    ``score`` adds each candidate's NLL bound (ELBO); ``rank`` (implied by ``top_k``) also sorts
    by it, best bits per token first (``top_k`` keeps that many candidates; the sampler's own
    ``top_k`` truncation goes in ``sampler_options``). ``valid_only`` (SMILES) drops molecules RDKit
    cannot parse.
    ``progress(done, total)`` is called after each batch, ``step_progress(batch, n_batches, step,
    n_steps)`` after every sampler step (raise from either to cancel). ``on_batch(candidates, scored)``
    receives each batch's candidates as soon as they are sampled (``scored`` False, no ELBO yet) and,
    when scoring, the same objects again once their ELBO is filled in (``scored`` True); with
    ``lengths="likelihood"`` it is called only with the final choices, after all batches.
    """
    if model.is_ar:
        raise ValueError("the AR baseline cannot infill; use a diffusion model")
    tmpl = template if isinstance(template, Template) else \
        parse_template(template, model.tokenizer, domain=model.domain, max_len=model.max_len)
    if tmpl.max_length > model.max_len:
        raise ValueError(f"the template allows up to {tmpl.max_length} positions; the model allows {model.max_len}")
    if num < 1:
        raise ValueError("num must be ≥ 1")
    rng = np.random.default_rng(seed)
    rank = rank or top_k is not None or lengths == "likelihood"
    model.build_sampler(sampler, steps, **(sampler_options or {}))  # options checked before any work
    guide = _check_guidance(model, guidance, sampler)
    score = score or rank
    if lengths == "likelihood":
        totals = tmpl.all_lengths()
        if len(totals) > 16:
            totals = sorted({totals[int(round(i))] for i in np.linspace(0, len(totals) - 1, 16)})
        layouts = [tmpl.instantiate(rng, lengths=int(tot))[2] for _ in range(num) for tot in totals]
        group = len(totals)
    else:
        layouts = _layouts(tmpl, num, lengths, rng)
        group = 1
    pad = model.tokenizer.pad_id
    cands: list[Candidate] = []
    total = len(layouts)
    n_batches = math.ceil(total / batch_size)
    for b, start in enumerate(range(0, total, batch_size)):
        chunk = layouts[start:start + batch_size]
        rows = [tmpl.instantiate(lengths=sl)[:2] for sl in chunk]
        width = max(int(x.shape[0]) for x, _ in rows)
        x_fixed = torch.full((len(rows), width), pad, dtype=torch.long)
        fixed = torch.ones((len(rows), width), dtype=torch.bool)
        for r, (x, f) in enumerate(rows):
            x_fixed[r, :len(x)] = x
            fixed[r, :len(x)] = f
        g = batch_generator(seed, b, model.device)
        kw = dict(sampler_options or {})
        on_step = None
        if step_progress is not None:
            def on_step(i: int, n: int, b: int = b) -> None:
                step_progress(b, n_batches, i, n)
        ids = _generate(model, guide, x_fixed=x_fixed, fixed=fixed, sampler=sampler, steps=steps, generator=g,
                        progress=on_step, **kw).cpu()
        # hard constraint: the fixed letters are there, verbatim
        if not torch.equal(ids[fixed], x_fixed[fixed]):
            raise RuntimeError("a fixed position changed during sampling")  # never expected
        texts = model.decode(ids)
        batch = []
        for r, (sl, (x, f)) in enumerate(zip(chunk, rows)):
            n = int(x.shape[0])
            c = Candidate(id=f"infill_{start + r + 1}", sequence=texts[r], ids=ids[r, :n].tolist(),
                          fixed=f.tolist(), span_lengths=list(sl))
            c.metrics = per_sample_metrics(model.domain, c.sequence)
            if guide is not None and guide.reward is not None:
                c.metrics["reward"] = round(float(guide.reward([c.sequence])[0]), 6)
            batch.append(c)
        stream = on_batch is not None and group == 1
        if stream:
            on_batch(batch, False)
        if score:
            nll = model.nll(ids.to(model.device), n_t=n_t, generator=batch_generator(seed + 1, b, model.device))
            for r, c in enumerate(batch):
                c.nll_nats = float(nll.nats[r])
                c.nll_stderr = float(nll.stderr[r])
                c.bits_per_token = c.nll_nats / (len(c.ids) * math.log(2))
            if stream:
                on_batch(batch, True)
        cands.extend(batch)
        if progress is not None:
            progress(min(start + len(chunk), total), total)
    if group > 1:  # likelihood-chosen lengths: best bits/token among the lengths of each output
        cands = [min(cands[i:i + group], key=lambda c: c.bits_per_token) for i in range(0, len(cands), group)]
        for j, c in enumerate(cands):
            c.id = f"infill_{j + 1}"
        if on_batch is not None:
            on_batch(cands, True)
    if valid_only and get_domain(model.domain).has_validity:
        cands = [c for c in cands if c.metrics.get("valid")]
    if rank:
        cands.sort(key=lambda c: c.bits_per_token)
    if top_k is not None:
        cands = cands[:top_k]
    return cands


def infill_job(model, template: str, num: int, out: str | Path, *, csv_path: str | Path | None = None,
               fmt: str | None = None, progress: bool = True, **kwargs) -> dict[str, Any]:
    """Run :func:`infill` and write the candidates (sequence file + CSV) atomically."""
    tmpl = parse_template(template, model.tokenizer, domain=model.domain, max_len=model.max_len)
    t0 = time.perf_counter()
    with _tqdm(num, "infilling", progress) as bar:
        last = [0]

        def tick(i, n):
            bar.total = n
            bar.update(i - last[0])
            last[0] = i

        cands = infill(model, tmpl, num, progress=tick, **kwargs)
    fmt = fmt or sequence_format(model.domain, out)
    columns = ["id", "sequence", "length", "template", "span_lengths", "fixed", "nll_nats", "nll_stderr",
               "bits_per_token"] + list(get_domain(model.domain).sample_columns) + \
        (["reward"] if any("reward" in c.metrics for c in cands) else [])
    tokens = model.tokenizer.tokens
    with _writing(out, fmt, csv_path, columns) as w:
        w.write([{"id": c.id, "sequence": c.sequence, "length": len(c.ids), "template": template,
                  "span_lengths": ",".join(map(str, c.span_lengths)),
                  "fixed": c.fixed_string([tokens[i] if i < len(tokens) else "?" for i in c.ids]),
                  "nll_nats": None if c.nll_nats is None else round(c.nll_nats, 4),
                  "nll_stderr": None if c.nll_stderr is None else round(c.nll_stderr, 4),
                  "bits_per_token": None if c.bits_per_token is None else round(c.bits_per_token, 4),
                  **c.metrics} for c in cands])
    summary = {"num": len(cands), "out": str(w.out), "csv": str(w.csv_path),
               "seconds": round(time.perf_counter() - t0, 2), "template": template}
    if get_domain(model.domain).has_validity:
        summary["validity"] = sum(bool(c.metrics.get("valid")) for c in cands) / max(len(cands), 1)
    return summary
