"""`seqdiff eval`: held-out likelihood of a model, and domain metrics of a sample file.

* Likelihood: bits per token (ELBO bound for diffusion models, exact for the AR baseline) on a
  split of the model's recipe (``valid``/``test``) or any file of the domain, and the matching
  perplexity bound ``2^{bits/token}``.
* Samples: SMILES validity, uniqueness, novelty against the training set (RDKit canonical SMILES)
  and FCD when available; DNA/protein 3-mer spectrum Jensen–Shannon distance and composition against
  held-out data, next to a shuffled-data baseline; text: generative perplexity under a reference
  model (this project's AR baseline), with the sample entropy beside it (low-entropy, repetitive
  samples can have a deceptively good generative perplexity).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..data import read_records
from ..domains import get_domain, read_samples
from ..domains.text import char_entropy
from ..training.data import REPO_ROOT, reader_kwargs, resolve_path

__all__ = ["evaluate_likelihood", "evaluate_samples", "generative_perplexity", "read_sequences"]

Progress = Callable[[int, int], None]


def read_sequences(path: str | Path, domain: str, limit: int | None = None) -> list[str]:
    """Sequences of a data file (FASTA, .smi/.csv, text lines) via the project's readers."""
    out = []
    for i, rec in enumerate(read_records(resolve_path(str(path)), **reader_kwargs(domain, str(path)))):
        if limit is not None and i >= limit:
            break
        out.append(rec.seq)
    return out


@torch.no_grad()
def evaluate_likelihood(model, split: str = "test", *, n_t: int = 8, seed: int = 0, batch_size: int = 64,
                        max_rows: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Held-out bits per token on ``split`` (``valid``, ``test``, or a file path), as the recipe rows it."""
    from ..training.data import _encode, _rows  # the same rows as training/validation

    cfg = model.cfg
    path = getattr(cfg.data, split, None) if split in ("valid", "test", "train") else split
    if not path:
        raise ValueError(f"the model's recipe has no `{split}` file; pass a path")
    enc = _encode(cfg, model.tokenizer, path, split=str(split), skip_invalid=True)
    rows = _rows(cfg, model.tokenizer, enc, train=False)
    n = len(rows) if max_rows is None else min(len(rows), max_rows)
    if n == 0:
        raise ValueError(f"{path}: no record gives a row for this model (rows of {cfg.data.seq_len} positions, "
                         f"layout {cfg.data.layout!r}): the records are too short or empty")
    total_nats, total_var, total_tok = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        x = torch.stack([rows[i] for i in range(start, min(n, start + batch_size))]).to(model.device)
        g = torch.Generator(device=model.device).manual_seed(seed * 7919 + start)
        res = model.nll(x, n_t=n_t, generator=g)
        total_nats += float(res.nats.sum())
        total_var += float((res.stderr.double() ** 2).sum())
        total_tok += int(res.num_tokens.sum())
        if progress is not None:
            progress(min(n, start + batch_size), n)
    if total_tok == 0:
        raise ValueError(f"{path}: the rows hold no scored tokens")
    bpt = total_nats / (total_tok * math.log(2))
    return {"split": str(path), "rows": n, "tokens": total_tok, "bits_per_token": bpt,
            "bits_per_token_stderr": math.sqrt(total_var) / (total_tok * math.log(2)),
            "nats_per_token": total_nats / total_tok, "perplexity_bound": 2 ** bpt,
            "exact": bool(model.is_ar)}


@torch.no_grad()
def generative_perplexity(ref_model, texts: Sequence[str], batch_size: int = 64) -> float:
    """``exp(mean NLL per token)`` of ``texts`` under a reference model (exact for the AR baseline)."""
    tok = ref_model.tokenizer
    total, count = 0.0, 0
    seqs = [s for s in texts if s]
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start:start + batch_size]
        ids = [tok.encode(s)[: ref_model.max_len] for s in chunk]
        L = max(len(i) for i in ids)
        x = torch.full((len(ids), L), tok.pad_id, dtype=torch.long)
        for r, i in enumerate(ids):
            x[r, :len(i)] = torch.tensor(i)
        x = x.to(ref_model.device)
        res = ref_model.nll(x, n_t=8, generator=torch.Generator(device=ref_model.device).manual_seed(start))
        total += float(res.nats.sum())
        count += int(res.num_tokens.sum())
    return math.exp(total / max(count, 1))


def evaluate_samples(domain: str, samples: str | Path | Sequence[str], *, reference: str | Path | None = None,
                     training: str | Path | None = None, ref_model=None, limit: int = 20000) -> dict[str, Any]:
    """Domain metrics of generated samples (a sample file or a list of strings)."""
    if isinstance(samples, (str, Path)):
        _, seqs = read_samples(samples, domain=domain)
    else:
        seqs = list(samples)
    ref = read_sequences(reference, domain, limit) if reference else None
    train = read_sequences(training, domain, limit) if training else None
    dom = get_domain(domain)
    if dom.join_lines and ref is not None:  # a reference of lines is one text
        ref = [" ".join(ref)]
    out = dict(dom.metrics(seqs, reference=ref, training=train))
    out["num_samples"] = len(seqs)
    if dom.join_lines:  # prose: the entropy beside generative perplexity (repetitive text scores well)
        out["entropy_bits_per_char"] = char_entropy(seqs)
        if ref_model is not None:
            out["generative_perplexity"] = generative_perplexity(ref_model, seqs)
    return out
