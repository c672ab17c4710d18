"""Family-aware scoring: fine-tune a protein model on the wild type's homologs ("evotuning").

:func:`family_model` reads a homolog file (:func:`seqdiff.data.msa.read_homologs`: Stockholm, A2M/A3M,
aligned or unaligned FASTA, reduced to the wild type's positions), weights each homolog by
EVmutation's 1 / (number of homologs at >= 80 % identity), and continues training the given model
(the shipped ``protein`` model by default) on the gap-free homolog segments: AdamW, batches drawn
with probability proportional to the weights, the model's own diffusion objective per residue. The
result is an ordinary seqdiff model file, cached under a key made of the homolog file's SHA-256, the
base model file's SHA-256, the wild type and the training options, so a second run with the same
inputs loads it instead of training (the file is loaded like any model: no code runs from it).

Scoring with it is the same as with any model (masked marginal by default); multi-mutants are
scored the same way (joint masking of all mutated positions).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .scoring import file_digest

__all__ = ["family_model", "default_cache_dir", "FAMILY_FORMAT"]

FAMILY_FORMAT = "family-v1"


def default_cache_dir() -> Path:
    base = os.environ.get("SEQDIFF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "seqdiff")
    return Path(base) / "family"


def _sha_state(model) -> str:
    """A digest of a model's weights and recipe (when it has no file, e.g. in the app)."""
    h = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True, default=str).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def family_model(base, base_path, homologs_path, wt: str, *, steps: int = 300, batch_size: int = 16,
                 lr: float = 1e-4, seed: int = 0, cache_dir=None, log=None):
    """``(model, info)``: ``base`` fine-tuned on the homologs in ``homologs_path`` (or the cached result).

    ``base_path``: the base model's file (its SHA-256 keys the cache), or ``None`` to key by its weights.

    ``info`` records the homolog count, N_eff, the dropped records, the training loss at the start and
    the end (nats per residue, over the last 10 % of steps), seconds, and the cache file.
    """
    from ..data.msa import read_homologs, sequence_weights
    from ..model import load_model
    if base.is_ar or base.domain != "protein":
        raise ValueError("--homologs fine-tunes a protein diffusion model; give --model protein or another "
                         "protein diffusion model")
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError("family training needs steps >= 1, batch size >= 1 and lr > 0")
    log = log or (lambda msg: print(f"seqdiff: {msg}", file=sys.stderr))
    base_key = file_digest(base_path) if base_path is not None else _sha_state(base)
    key_parts = [FAMILY_FORMAT, file_digest(homologs_path), base_key, wt, steps, batch_size, lr, seed]
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:20]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"family-{key}.pt"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        model = load_model(path, map_location=base.device)
        info = json.loads(meta.read_text())
        info["cached"] = True
        log(f"family model from cache {path} ({info['n_homologs']} homologs, N_eff {info['n_eff']:.1f})")
        return model, info
    hom = read_homologs(homologs_path, wt)
    w = sequence_weights(hom.rows)
    seqs = hom.sequences()
    tok = base.tokenizer
    ids, keep = [], []
    for k, s in enumerate(seqs):
        try:
            ids.append(tok.encode(s, name=hom.ids[k]))
            keep.append(k)
        except ValueError as e:
            hom.dropped.append((hom.ids[k], f"not encodable by the model ({e})"))
    if not keep:
        raise ValueError(f"{homologs_path}: no homolog the model can encode")
    w = w[keep]
    p = w / w.sum()
    model = copy.deepcopy(base)
    model.train()
    dev = model.device
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=dev).manual_seed(seed)
    pad = tok.pad_id
    losses = []
    t0 = time.perf_counter()
    for step in range(steps):
        pick = rng.choice(len(ids), size=batch_size, p=p)
        width = max(len(ids[i]) for i in pick)
        x = torch.full((batch_size, width), pad, dtype=torch.long)
        for r, i in enumerate(pick):
            x[r, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
        x = x.to(dev)
        mask = x != pad
        obj, nats = model.objective(x, mask, gen)
        n_tok = model.scored(x, mask).sum().clamp(min=1)
        loss = obj.sum() / n_tok
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(nats.sum() / n_tok))
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"family fine-tuning step {step + 1}/{steps}: {np.mean(losses[-max(1, steps // 10):]):.3f} "
                f"nats/residue")
    model.eval()
    tail = max(1, steps // 10)
    info = {"format": FAMILY_FORMAT, "homologs": os.fspath(homologs_path), "homolog_format": hom.fmt,
            "n_homologs": len(keep), "n_eff": float(w.sum()), "dropped": len(hom.dropped),
            "dropped_examples": [f"{i}: {why}" for i, why in hom.dropped[:5]], "steps": steps,
            "batch_size": batch_size, "lr": lr, "seed": seed,
            "loss_start": float(np.mean(losses[:tail])), "loss_end": float(np.mean(losses[-tail:])),
            "seconds": time.perf_counter() - t0, "cache_file": str(path), "key": key, "cached": False}
    if not math.isfinite(info["loss_end"]):
        raise ValueError("family fine-tuning diverged (non-finite loss); try a smaller --family-lr")
    cache.mkdir(parents=True, exist_ok=True)
    model.save(path)
    from ..atomic import write_atomic
    write_atomic(meta, json.dumps(info, indent=1) + "\n")
    log(f"family model: {info['n_homologs']} homologs (N_eff {info['n_eff']:.1f}), {steps} steps in "
        f"{info['seconds']:.0f} s, loss {info['loss_start']:.3f} -> {info['loss_end']:.3f} nats/residue; "
        f"cached at {path}")
    return model, info
