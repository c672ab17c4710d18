"""Likelihood scoring of variants and sequences.

Two scores of a variant ``v`` of a wild type ``w`` (higher = the model finds ``v`` more likely):

* **masked marginal** (absorbing models; the fast default): mask the mutated positions ``M`` of the
  wild type and read the model's clean-token distribution there,
  ``Σ_{i∈M} log p(x_i = v_i | w_{-M}) - log p(x_i = w_i | w_{-M})`` — one network pass per unique
  set of mutated positions (all single mutants at a position share one pass). For a single mutant
  and an exact denoiser it is exactly ``log p(v)/p(w)``.
* **ELBO difference**: ``ELBO(v) - ELBO(w)`` = ``-(NLL bound(v) - NLL bound(w))``, estimated with
  common random numbers (the same times and corruption draws for both), with the Monte Carlo
  standard error of the paired difference. Works for every process and loss; for the AR baseline it
  is the exact log-likelihood ratio.

The functions on plain denoisers (:func:`masked_marginal_scores`, :func:`elbo_scores`) are what the
tests check against exact oracles; :func:`score_variants` and :func:`score_sequences` run them on a
:class:`~seqdiff.model.SeqDiffModel` over tables and files.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..diffusion import Absorbing, DiffusionLoss, elbo
from ..diffusion.processes import NoiseLevel
from .variants import VariantError, parse_mutant, score_status

__all__ = ["masked_marginal_scores", "elbo_scores", "score_variants", "score_sequences", "variant_token_edits",
           "check_variants", "stream_scores", "partial_paths"]

Progress = Callable[[int, int], None]
# (0-based position, wild-type id, mutant id) for each substitution of one variant
Edits = Sequence[tuple[int, int, int]]


@torch.no_grad()
def masked_marginal_scores(denoiser, process: Absorbing, wt: Tensor, variants: Sequence[Edits], *,
                           t: float | None = None, batch_size: int = 64, schedule=None,
                           progress: Progress | None = None) -> Tensor:
    """Masked-marginal log-likelihood ratios ``[V]`` (see module docstring).

    ``wt: LongTensor[L]`` (pad ids allowed after the sequence). The denoiser sees time ``t``
    (default: the fraction of masked positions, the masking level such an input is typical of).
    """
    if not isinstance(process, Absorbing):
        raise ValueError("masked-marginal scoring needs an absorbing (masked) model; use the ELBO method")
    device = wt.device
    L = int(wt.shape[0])
    groups: dict[tuple[int, ...], list[int]] = {}
    for v, edits in enumerate(variants):
        groups.setdefault(tuple(sorted({p for p, _, _ in edits})), []).append(v)
    keys = list(groups)
    scores = torch.zeros(len(variants), dtype=torch.float64)
    param = getattr(denoiser, "parameterization", "x0")
    n_real = int((wt < process.vocab_size).sum())
    done = 0
    for start in range(0, len(keys), batch_size):
        chunk = keys[start:start + batch_size]
        x = wt.repeat(len(chunk), 1)
        for r, pos in enumerate(chunk):
            if pos:
                x[r, list(pos)] = process.mask_id
        tt = torch.tensor([t if t is not None else max(len(p), 1) / max(n_real, 1) for p in chunk],
                          device=device, dtype=torch.float32)
        out = denoiser(x, tt)
        if param == "x0":
            logp = process.clean_log_x0(out.float(), x)
        else:
            if schedule is None:
                raise ValueError("score-parameterised models need the schedule to convert scores")
            logp = process.log_score_to_x0(out.float(), x, NoiseLevel.at(schedule, tt))
        logp = logp.double().cpu()
        for r, pos in enumerate(chunk):
            for v in groups[pos]:
                scores[v] = sum(float(logp[r, p, m] - logp[r, p, w]) for p, w, m in variants[v])
        done += len(chunk)
        if progress is not None:
            progress(done, len(keys))
    return scores


@torch.no_grad()
def elbo_scores(denoiser, loss: DiffusionLoss, wt: Tensor, variant_ids: Tensor, *, n_t: int = 16,
                seed: int = 0, batch_size: int = 64, progress: Progress | None = None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(score, stderr, nll_variant, nll_wt)`` per variant (nats), ``score = nll_wt - nll_variant``.

    ``wt: [L]``, ``variant_ids: [V, L]`` (same length). Each batch of variants and a batch of wild
    types of the same shape are evaluated with identically seeded generators, so the time grid and
    the corruption noise are shared and the paired difference has a small standard error.
    """
    pad_id = None
    lm_wt = wt < loss.process.vocab_size
    out_s, out_se, out_nv, out_nw = [], [], [], []
    V = variant_ids.shape[0]
    for start in range(0, V, batch_size):
        var = variant_ids[start:start + batch_size]
        b = var.shape[0]
        wts = wt.repeat(b, 1)
        lm = lm_wt.repeat(b, 1)
        gen_v = torch.Generator(device=wt.device).manual_seed(seed)
        gen_w = torch.Generator(device=wt.device).manual_seed(seed)
        rv = elbo(denoiser, loss, var, n_t=n_t, generator=gen_v, loss_mask=lm, return_terms=True)
        rw = elbo(denoiser, loss, wts, n_t=n_t, generator=gen_w, loss_mask=lm, return_terms=True)
        diff = rw.terms - rv.terms  # [n_t, b]
        prior = (loss.prior_term(wts, lm) - loss.prior_term(var, lm)).double()
        out_s.append(diff.mean(0) + prior)
        out_se.append(diff.std(0) / math.sqrt(diff.shape[0]) if diff.shape[0] > 1 else torch.zeros(b))
        out_nv.append(rv.nats)
        out_nw.append(rw.nats)
        if progress is not None:
            progress(min(start + b, V), V)
    del pad_id
    cat = lambda xs: torch.cat(xs).double().cpu()  # noqa: E731
    return cat(out_s), cat(out_se), cat(out_nv), cat(out_nw)


def variant_token_edits(tokenizer, wt_seq: str, mutant: str, row: int | None = None) -> list[tuple[int, int, int]]:
    """Token-level edits ``(position, wt id, mutant id)`` of a DMS mutant on a per-letter alphabet."""
    edits = []
    for m in parse_mutant(mutant, row=row):
        wt_letter, pos, mt_letter = m[0], m[1], m[2]
        try:
            w_id = tokenizer.encode(wt_letter)[0]
            m_id = tokenizer.encode(mt_letter)[0]
        except ValueError as e:
            raise VariantError(f"letter not in the model's alphabet: {e}", mutant=mutant, row=row) from None
        edits.append((pos - 1, w_id, m_id))
    return edits


def _encode_padded(tokenizer, seqs: Sequence[str], length: int | None = None) -> Tensor:
    ids = [tokenizer.encode(s, name=f"sequence {i + 1}") for i, s in enumerate(seqs)]
    L = length or max(len(i) for i in ids)
    out = torch.full((len(ids), L), tokenizer.pad_id, dtype=torch.long)
    for r, i in enumerate(ids):
        out[r, :len(i)] = torch.tensor(i, dtype=torch.long)
    return out


def score_variants(model, wt_seq: str, table, *, methods: Sequence[str] = ("auto",), n_t: int = 16, seed: int = 0,
                   batch_size: int = 64, progress: Progress | None = None):
    """Append score columns to a validated variant table (from :func:`~seqdiff.jobs.variants.read_variants`).

    Methods: ``masked_marginal`` (absorbing diffusion models), ``elbo`` (any diffusion model; adds
    ``score_elbo_se``), ``ar`` (AR baseline: exact log-likelihood ratio); ``auto`` = masked marginal
    for absorbing models, ELBO for uniform ones, ``ar`` for the baseline.

    Nonsense variants (a stop ``*``) get missing scores; the ``score_status`` column says why for
    every row (:func:`~seqdiff.jobs.variants.score_status`), so no row is dropped.
    """
    full = table
    status = [score_status(m) for m in full["mutant"]]
    ok = np.array([st == "scored" for st in status], dtype=bool)
    table = full[ok] if len(full) else full
    tok = model.tokenizer
    if len(wt_seq) > model.max_len:
        raise ValueError(f"the wild type has {len(wt_seq)} positions; the model allows {model.max_len}")
    device = model.device
    wt = torch.tensor(tok.encode(wt_seq, name="wild type"), dtype=torch.long, device=device)
    methods = list(methods)
    if "auto" in methods:
        methods.remove("auto")
        auto = "ar" if model.is_ar else ("masked_marginal" if isinstance(model.process, Absorbing) else "elbo")
        if auto not in methods:
            methods.insert(0, auto)
    out = table.copy()
    rows = np.flatnonzero(ok) + 1  # errors name the row of the table as given
    edits = [variant_token_edits(tok, wt_seq, m, row=int(r)) for r, m in zip(rows, out["mutant"])]
    var_ids = torch.stack([wt.clone().index_put_((torch.tensor([p for p, _, _ in e], dtype=torch.long),),
                                                  torch.tensor([m for _, _, m in e], dtype=torch.long))
                           if e else wt.clone() for e in edits]) if edits else wt[None][:0]
    for method in methods:
        if method == "masked_marginal":
            if model.is_ar or not isinstance(model.process, Absorbing):
                raise ValueError("masked_marginal needs an absorbing diffusion model; use --method elbo")
            s = masked_marginal_scores(model.denoiser, model.process, wt, edits, batch_size=batch_size,
                                       schedule=model.schedule, progress=progress)
            out["score_masked_marginal"] = s.numpy()
        elif method == "elbo":
            if model.is_ar:
                raise ValueError("the AR baseline has an exact likelihood: use --method ar")
            s, se, nv, nw = elbo_scores(model.denoiser, model.loss, wt, var_ids, n_t=n_t, seed=seed,
                                        batch_size=batch_size, progress=progress) if len(var_ids) else \
                (torch.zeros(0),) * 4
            out["score_elbo"] = s.numpy()
            out["score_elbo_se"] = se.numpy()
            out["nll_bound_nats"] = nv.numpy()
        elif method == "ar":
            if not model.is_ar:
                raise ValueError("method 'ar' is for the AR baseline")
            ll = []
            for start in range(0, var_ids.shape[0], batch_size):
                ll.append(model.network.log_likelihood(var_ids[start:start + batch_size]).double().cpu())
            ll_wt = float(model.network.log_likelihood(wt[None]).double())
            out["score_ar"] = (torch.cat(ll) - ll_wt).numpy() if ll else np.zeros(0)
        else:
            raise ValueError(f"unknown scoring method {method!r} (masked_marginal | elbo | ar | auto)")
    if not ok.all():  # every row comes back, in order: nonsense rows with missing scores
        res = full.copy()
        for c in [c for c in out.columns if c not in full.columns]:
            col = np.full(len(full), np.nan)
            col[ok] = out[c].to_numpy(dtype=float)
            res[c] = col
        out = res
    out["score_status"] = status
    return out


@torch.no_grad()
def score_sequences(model, ids: Sequence[str], seqs: Sequence[str], *, n_t: int = 16, seed: int = 0,
                    batch_size: int = 64, progress: Progress | None = None, offset: int = 0):
    """NLL bound (nats), its standard error and bits per token for each sequence (a DataFrame).

    ``offset``: the index of ``seqs[0]`` in a longer list scored in pieces (the noise of each batch is
    seeded by its position, so pieces that start at multiples of ``batch_size`` give the same numbers)."""
    import pandas as pd

    tok = model.tokenizer
    too_long = [i for i, s in zip(ids, seqs) if len(tok.encode(s, name=str(i))) > model.max_len]
    if too_long:
        raise ValueError(f"sequence {too_long[0]!r} is longer than the model's maximum {model.max_len}")
    rows = []
    for start in range(0, len(seqs), batch_size):
        chunk = list(seqs[start:start + batch_size])
        x = _encode_padded(tok, chunk).to(model.device)
        res = model.nll(x, n_t=n_t, generator=torch.Generator(device=model.device).manual_seed(seed + offset + start))
        for j, s in enumerate(chunk):
            n = int(res.num_tokens[j])
            nats = float(res.nats[j])
            rows.append({"id": ids[start + j], "sequence": s, "length": n, "nll_nats": nats,
                         "nll_stderr": float(res.stderr[j]), "bits_per_token": nats / (n * math.log(2))})
        if progress is not None:
            progress(min(start + len(chunk), len(seqs)), len(seqs))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ streaming to a file
def check_variants(model, wt_seq: str, table) -> None:
    """Every variant of a validated table fits the model (length, alphabet), before any work is done."""
    if len(wt_seq) > model.max_len:
        raise ValueError(f"the wild type has {len(wt_seq)} positions; the model allows {model.max_len}")
    model.tokenizer.encode(wt_seq, name="wild type")
    for i, m in enumerate(table["mutant"]):
        if score_status(m) == "scored":  # nonsense rows are kept unscored (score_variants)
            variant_token_edits(model.tokenizer, wt_seq, m, row=i + 1)


def _fingerprint(parts: Sequence) -> str:
    import hashlib
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, (bytes, bytearray)):
            h.update(p)
        else:
            h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def file_digest(path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def partial_paths(out) -> tuple:
    """Where a streaming score writes before it is complete: ``OUT.partial`` and its state ``OUT.partial.json``."""
    from pathlib import Path
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def stream_scores(chunks, n_rows: int, out, *, fingerprint: Sequence, chunk_rows: int, resume: bool = False,
                  on_resume: Callable[[int], None] | None = None) -> int:
    """Write the DataFrames of ``chunks(start_row)`` (each ``chunk_rows`` rows, from ``start_row`` on) to
    ``out`` as they come, through ``OUT.partial``; returns the number of rows written.

    After each chunk the partial file is flushed and ``OUT.partial.json`` records the rows and bytes that
    are complete, so an interrupted run (Ctrl-C, SIGTERM, a kill, a full disk) keeps its work and
    ``resume=True`` continues it exactly where it stopped (same input and options: checked by
    ``fingerprint``, and by the chunking, which is the same as an uninterrupted run's). ``out`` itself
    appears only when every row is written (renamed from the partial file).
    """
    import json
    import os
    from pathlib import Path

    from ..atomic import publish, write_atomic
    from ..serialization import fsync_dir
    out = Path(out)
    part, state_path = partial_paths(out)
    fp = _fingerprint(list(fingerprint) + [chunk_rows, n_rows])
    start_row, size = 0, 0
    if resume and part.is_file() and state_path.is_file():
        try:
            state = json.loads(state_path.read_text())
            start_row, size, old_fp = int(state["rows"]), int(state["bytes"]), state["fingerprint"]
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise ValueError(f"{state_path}: unreadable resume state ({e}); remove {part.name} and its .json "
                             f"to start over") from None
        if old_fp != fp:
            raise ValueError(f"{part}: written for another input, model or options; cannot resume it "
                             f"(remove it, or rerun with the same arguments)")
        if part.stat().st_size < size:
            raise ValueError(f"{part}: shorter than its recorded {size} bytes; remove it to start over")
        with open(part, "r+b") as f:
            f.truncate(size)  # drop a chunk that was being written when the run stopped
        if on_resume is not None:
            on_resume(start_row)
    elif resume and part.exists() != state_path.exists():
        raise ValueError(f"{part}: incomplete resume state; remove {part.name}* to start over")
    else:
        part.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)

    def save_state(rows: int, nbytes: int) -> None:
        write_atomic(state_path, json.dumps({"rows": rows, "bytes": nbytes, "fingerprint": fp, "total": n_rows}))

    if not part.exists():
        part.touch()
        save_state(0, 0)
    rows = start_row
    with open(part, "ab") as f:
        for df in chunks(start_row):
            text = df.to_csv(index=False, header=(rows == 0), lineterminator="\n")
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
            rows += len(df)
            size = f.tell()
            save_state(rows, size)
    if rows != n_rows:
        raise RuntimeError(f"wrote {rows} rows of {n_rows}")  # never expected
    publish(part, out)
    state_path.unlink(missing_ok=True)
    fsync_dir(out.parent)
    return rows
