"""Conditional training for classifier-free guidance: `seqdiff train` with ``condition.column`` set.

Rows are one labelled record each (right-padded to ``data.seq_len``; ``data.too_long`` decides
what happens to longer records: ``reject`` leaves them out, ``truncate`` cuts them, ``error``
fails), with their condition class; each training row's condition is replaced by the null class
with probability ``condition.dropout``, so one network learns ``p(x_0 | x_t, c)`` and
``p(x_0 | x_t)``. Validation reports the conditional bits per token. ``condition.init_from`` starts
from an existing model file (e.g. a shipped default: its tokenizer, network and diffusion sections
replace the recipe's, and the class embedding starts at zero influence,
:func:`~seqdiff.models.dit.unconditional_to_conditional`), or continues a conditional model of the
same column and bins. Lightning fits it, with the same
atomic checkpoints as `seqdiff train` (a conditional run is not resumable: it starts over).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from ..data.errors import DataError
from ..training.config import TrainConfig
from ..training.module import SeqDiffLightning, step_generator
from .conditions import assign_classes, read_labelled

__all__ = ["train_conditional", "labelled_rows", "labelled_tokens", "ConditionalLightning"]


def labelled_rows(cfg: TrainConfig, tokenizer, path: str, *, classes_from: Any = None, limit: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str], list[float] | None]:
    """``(x [R, seq_len], pad_mask, y [R], classes, edges)`` of a labelled file."""
    x, pad_mask, vals, p = labelled_tokens(cfg, tokenizer, path, cfg.condition.column, cfg.condition.sequence_column,
                                           limit or cfg.data.max_records)
    y, classes, edges = assign_classes(vals, classes_from or cfg.condition, p)
    return x, pad_mask, torch.as_tensor(y, dtype=torch.long), classes, edges


def labelled_tokens(cfg: TrainConfig, tokenizer, path: str, column: str, sequence_column: str = "", limit: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """``(x [R, seq_len], pad_mask, values, path)``: the tokenised records of a labelled file (right-padded
    to ``data.seq_len``; ``data.too_long``, ``data.skip_invalid`` and SMILES canonicalisation apply) and
    the label value of each kept record."""
    from ..training.data import resolve_path
    p = resolve_path(path)
    ids, seqs, vals = read_labelled(p, column, sequence_column, limit)
    d, pad = cfg.data, tokenizer.pad_id
    rows, keep = [], []
    canon = None
    if d.kind == "smiles" and d.canonicalize_smiles:
        from ..tokenizers.smiles import canonicalize
        canon = canonicalize
    for k, (rid, s) in enumerate(zip(ids, seqs)):
        if canon is not None:
            try:
                s = canon(s)
            except ValueError:
                raise DataError("RDKit cannot parse this SMILES", path=p, record=rid) from None
        try:
            enc = tokenizer.encode(s, name=rid)
        except ValueError as e:
            if d.skip_invalid:
                continue
            raise DataError(str(e), path=p) from None
        if len(enc) > d.seq_len:
            if d.too_long == "reject":
                continue
            if d.too_long == "error":
                raise DataError(f"{len(enc)} tokens, longer than data.seq_len = {d.seq_len}", path=p, record=rid)
            enc = enc[:d.seq_len]
        if not enc:
            continue
        rows.append(enc)
        keep.append(k)
    if not rows:
        raise DataError("no usable labelled records", path=p)
    x = torch.full((len(rows), d.seq_len), pad, dtype=torch.long)
    for r, enc in enumerate(rows):
        x[r, :len(enc)] = torch.tensor(enc, dtype=torch.long)
    return x, x != pad, [vals[k] for k in keep], p


class ConditionalLightning(SeqDiffLightning):
    """:class:`SeqDiffLightning` on ``(x, pad_mask, y)`` batches with condition dropout."""

    def training_step(self, batch, batch_idx):
        x, pad_mask, y = batch
        g = step_generator(self.cfg.seed, 0, self.global_step, batch_idx, self.global_rank, device=x.device)
        drop = torch.rand(y.shape, generator=g, device=x.device) < self.cfg.condition.dropout
        y = torch.where(drop, torch.full_like(y, self.model.num_classes), y)
        obj, nats = self.model.objective(x, pad_mask, g, cond=y)
        n_tok = self.model.scored(x, pad_mask).sum().clamp_min(1)
        loss = obj.sum() / n_tok
        self.tokens_seen += int(pad_mask.sum()) * self.trainer.world_size
        self.log("train/loss", loss, prog_bar=False, batch_size=x.shape[0])
        self.log("train/bpt", nats.sum() / (n_tok * math.log(2)), prog_bar=True, batch_size=x.shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.train_time += time.perf_counter() - self._t0

    def validation_step(self, batch, batch_idx):
        if self.cfg.data.max_valid_batches and batch_idx >= self.cfg.data.max_valid_batches:
            return
        x, pad_mask, y = batch
        g = step_generator(self.cfg.seed, 1, batch_idx, device=x.device)
        _, nats = self.model.objective(x, pad_mask, g, cond=y)
        self._val[0] += float(nats.double().sum())
        self._val[1] += int(self.model.scored(x, pad_mask).sum())

    def _write_samples(self) -> None:
        pass  # sample logging of a conditional model would need a condition; see `seqdiff sample --condition`


def _init_weights(cfg: TrainConfig, path: str):
    """The recipe with the init model's tokenizer/network/diffusion, its tokenizer, its weights."""
    from ..model import load_model
    from ..pretrained import resolve_model
    base = load_model(resolve_model(path))
    if base.is_ar:
        raise ValueError(f"condition.init_from: {path} is an AR model; conditioning needs a diffusion model")
    d = cfg.to_dict()
    bd = base.cfg.to_dict()
    if base.num_classes:  # continue a conditional model: the same condition and classes
        if bd["condition"]["column"] != d["condition"]["column"] or bd["condition"]["bins"] != d["condition"]["bins"]:
            raise ValueError(f"condition.init_from: {path} is conditional on another column or bins "
                             f"({bd['condition']['column']!r}, {bd['condition']['bins']})")
        d["condition"]["classes"] = bd["condition"]["classes"]
    for key in ("tokenizer", "model", "diffusion"):
        d[key] = bd[key]
    d["data"]["seq_len"] = min(d["data"]["seq_len"], base.max_len) if d["data"]["seq_len"] else base.max_len
    return d, base.tokenizer, base.state_dict(), base.length_histogram


def train_conditional(cfg: TrainConfig, *, quiet: bool = False, callbacks: list | None = None) -> dict:
    """Fit a conditional model from a labelled file; returns the run summary (``out_dir/summary.json``)
    and writes ``out_dir/model.pt``."""
    from ..models.dit import DiTConfig, unconditional_to_conditional
    from ..training.data import build_tokenizer_for
    from ..training.train import SafeCheckpointIO, write_json_atomic
    out = Path(cfg.out_dir)
    if (out / "checkpoints" / "last.ckpt").exists():
        raise ValueError(f"{out}: a run already exists there (a conditional run does not resume; use another out_dir)")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    state, hist = None, None
    cfg_d = cfg.to_dict()
    if cfg.condition.init_from:
        cfg_d, tokenizer, state, hist = _init_weights(cfg, cfg.condition.init_from)
        cfg = TrainConfig.from_dict(cfg_d, "<recipe>")
    else:
        tokenizer = build_tokenizer_for(cfg)
    x, m, y, classes, edges = labelled_rows(cfg, tokenizer, cfg.data.train)
    cfg_d["condition"]["classes"] = classes
    if edges is not None:
        cfg_d["condition"]["bins"], cfg_d["condition"]["quantiles"] = edges, 0
    cfg = TrainConfig.from_dict(cfg_d, "<recipe>")
    rng = np.random.default_rng(cfg.seed)
    if cfg.data.valid:
        vx, vm, vy, _, _ = labelled_rows(cfg, tokenizer, cfg.data.valid, classes_from=cfg.condition)
        tx, tm, ty = x, m, y
    else:
        perm = torch.as_tensor(rng.permutation(x.shape[0]))
        n_val = max(1, int(round(cfg.data.valid_fraction * x.shape[0])))
        vi, ti = perm[:n_val], perm[n_val:]
        vx, vm, vy, tx, tm, ty = x[vi], m[vi], y[vi], x[ti], m[ti], y[ti]
    lengths = tm.sum(-1)
    if hist is None:
        hist = torch.bincount(lengths, minlength=cfg.data.seq_len + 1).tolist()
    module = ConditionalLightning(cfg.to_dict(), tokenizer.to_dict(), hist)
    if state is not None:
        net_cfg: DiTConfig = module.model.network.config
        prefix = "denoiser.network."
        net_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not any(k.startswith("class_embed") for k in net_state):
            net_state = unconditional_to_conditional(net_state, net_cfg)
        missing, unexpected = module.model.network.load_state_dict(net_state, strict=False)
        if unexpected or any(not k.startswith("class_embed") for k in missing):
            raise ValueError(f"condition.init_from: the weights do not fit ({(unexpected or missing)[:3]})")
        if cfg.condition.freeze_base:
            for name, p in module.model.network.named_parameters():
                p.requires_grad_(name.startswith("class_embed") or (name.endswith("linear.weight")
                                                                    and "adaLN_modulation" in name
                                                                    and not net_cfg.time_conditioning))
        if module.ema is not None:
            module.ema = type(module.ema)(module.model, cfg.optim.ema)
    counts = torch.bincount(ty, minlength=len(classes)).tolist()
    print(f"seqdiff: {module.model.describe()}; condition {cfg.condition.column!r}: "
          + ", ".join(f"{c} ({n})" for c, n in zip(classes, counts)))
    d, t = cfg.data, cfg.trainer
    train_dl = DataLoader(TensorDataset(tx, tm, ty), batch_size=d.batch_size, shuffle=True, drop_last=False,
                          generator=torch.Generator().manual_seed(cfg.seed))
    val_dl = DataLoader(TensorDataset(vx, vm, vy), batch_size=d.eval_batch_size, shuffle=False)
    last_cb = ModelCheckpoint(dirpath=out / "checkpoints", monitor=None, save_top_k=0, save_last=True,
                              every_n_train_steps=t.ckpt_every)
    trainer = L.Trainer(
        max_steps=t.max_steps, val_check_interval=min(t.val_every, t.max_steps, max(len(train_dl), 1)),
        check_val_every_n_epoch=None, limit_val_batches=d.max_valid_batches or 1.0, log_every_n_steps=t.log_every,
        gradient_clip_val=cfg.optim.grad_clip or None, precision=t.precision, accelerator=t.accelerator,
        devices=t.devices, enable_progress_bar=t.progress_bar and not quiet, enable_model_summary=not quiet,
        num_sanity_val_steps=0, default_root_dir=str(out), logger=CSVLogger(str(out), name="logs", version=""),
        callbacks=[last_cb] + list(callbacks or []), plugins=[SafeCheckpointIO()])
    start = time.perf_counter()
    trainer.fit(module, train_dl, val_dl)
    wall = time.perf_counter() - start
    trainer.validate(module, val_dl, verbose=False)
    model_path = out / "model.pt"
    if module.ema is not None:
        module.ema.swap_in(module.model)
    module.model.cpu().save(model_path)
    summary = {"name": cfg.name, "domain": cfg.data.kind, "parameters": module.model.num_parameters(),
               "steps": trainer.global_step, "train_rows": int(tx.shape[0]), "valid_rows": int(vx.shape[0]),
               "condition": cfg.condition.column, "classes": classes, "class_counts": counts,
               "init_from": cfg.condition.init_from or None, "wall_seconds": round(wall, 2),
               "val_bits_per_token": getattr(module, "last_val_bpt", None), "model": str(model_path)}
    write_json_atomic(out / "summary.json", summary)
    print(f"seqdiff: done: {summary['steps']} steps, val {summary['val_bits_per_token']:.4f} bits/token "
          f"(conditional); model written to {model_path}")
    return summary
