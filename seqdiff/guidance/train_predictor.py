"""Training a noisy-sequence property predictor (classifier guidance): `seqdiff train` with
``predictor.column`` set.

The recipe names the diffusion model the predictor will guide (``predictor.model``: a file or a
shipped name); its tokenizer, noise process and schedule are used, so the predictor sees exactly
the ``x_t`` that model's reverse process visits. Labelled records are read as for conditional
training (:func:`~seqdiff.guidance.train_conditional.labelled_tokens`: CSV/TSV beside the
sequences, or FASTA header fields), one record per row. Each training row is noised at a fresh
``t ~ U(0, 1)`` (stratified over the batch) with the model's own forward process
(``loss.corrupt``), and the predictor is fitted by cross-entropy (classes) or the Gaussian
negative log-likelihood (numbers) with Lightning. Validation reports the same objective over
random ``t`` and, on clean sequences, the class accuracy or the correlation of the predicted mean.
The predictor is written atomically to ``out_dir/predictor.pt`` at the end (a run does not resume;
an existing ``predictor.pt`` is never overwritten).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from ..training.config import TrainConfig
from ..training.module import build_optimizer, lr_factor, step_generator
from .conditions import _numbers, assign_classes
from .predictor import Predictor, predictor_loss
from .train_conditional import labelled_tokens

__all__ = ["train_predictor", "fit_predictor", "PredictorLightning", "predictor_labels", "evaluate_predictor"]


class PredictorLightning(L.LightningModule):
    """Fits a :class:`Predictor` on ``(x_0, pad_mask, y)`` batches, noising ``x_0`` at each step."""

    def __init__(self, pred: Predictor, cfg: TrainConfig) -> None:
        super().__init__()
        self.pred, self.cfg = pred, cfg
        self.val_sums = [0.0, 0, 0.0]  # loss sum, rows, clean accuracy sum (classes)
        self.clean: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_val: dict[str, float] = {}

    def _noised(self, x: torch.Tensor, pad_mask: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.pred.loss
        t = loss.sample_t(x.shape[0], g, x.device)
        scored = pad_mask & (x < self.pred.tokenizer.num_data_tokens)
        return loss.corrupt(x, t, g, scored), t

    def training_step(self, batch, batch_idx):
        x, pad_mask, y = batch
        g = step_generator(self.cfg.seed, 0, self.global_step, batch_idx, self.global_rank, device=x.device)
        xt, t = self._noised(x, pad_mask, g)
        loss = predictor_loss(self.pred(xt, t), y, self.pred.kind).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_sums = [0.0, 0, 0.0]
        self.clean = []

    def validation_step(self, batch, batch_idx):
        if self.cfg.data.max_valid_batches and batch_idx >= self.cfg.data.max_valid_batches:
            return
        x, pad_mask, y = batch
        g = step_generator(self.cfg.seed, 1, batch_idx, device=x.device)
        xt, t = self._noised(x, pad_mask, g)
        self.val_sums[0] += float(predictor_loss(self.pred(xt, t), y, self.pred.kind).double().sum())
        self.val_sums[1] += int(x.shape[0])
        clean = self.pred(x, torch.zeros(x.shape[0], device=x.device))
        self.clean.append((clean.detach().cpu(), y.cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self.val_sums[1]:
            return
        out = {"val_loss": self.val_sums[0] / self.val_sums[1]}
        pred = torch.cat([c for c, _ in self.clean])
        y = torch.cat([v for _, v in self.clean])
        if self.pred.kind == "classes":
            out["clean_accuracy"] = float((pred.argmax(-1) == y).double().mean())
        elif y.numel() > 2 and float(y.std()) > 0 and float(pred[:, 0].std()) > 0:
            out["clean_pearson"] = float(np.corrcoef(pred[:, 0].double().numpy(), y.double().numpy())[0, 1])
        self.last_val = out
        for k, v in out.items():
            self.log(f"val/{k}", v, prog_bar=k == "val_loss")

    def configure_optimizers(self):
        opt = build_optimizer(self.pred.net, self.cfg.optim, fused=False)
        o, total = self.cfg.optim, self.cfg.trainer.max_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, o, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit_predictor(pred: Predictor, cfg: TrainConfig, train: tuple, valid: tuple, *, out_dir: str | Path | None = None,
                  quiet: bool = True, callbacks: list | None = None) -> dict[str, Any]:
    """Fit ``pred`` in place on tensors ``(x, pad_mask, y)`` (``y``: class indices, or normalised values);
    returns ``{"steps", "wall_seconds", "val_loss", ...}``."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    d, t = cfg.data, cfg.trainer
    train_dl = DataLoader(TensorDataset(*train), batch_size=d.batch_size, shuffle=True, drop_last=False,
                          generator=torch.Generator().manual_seed(cfg.seed))
    val_dl = DataLoader(TensorDataset(*valid), batch_size=d.eval_batch_size, shuffle=False)
    module = PredictorLightning(pred, cfg)
    trainer = L.Trainer(
        max_steps=t.max_steps, val_check_interval=min(t.val_every, t.max_steps, max(len(train_dl), 1)),
        check_val_every_n_epoch=None, limit_val_batches=d.max_valid_batches or 1.0, log_every_n_steps=t.log_every,
        gradient_clip_val=cfg.optim.grad_clip or None, precision=t.precision, accelerator=t.accelerator,
        devices=t.devices, enable_progress_bar=t.progress_bar and not quiet, enable_model_summary=not quiet,
        enable_checkpointing=False, num_sanity_val_steps=0, default_root_dir=str(out_dir) if out_dir else None,
        logger=CSVLogger(str(out_dir), name="logs", version="") if out_dir else False,
        callbacks=list(callbacks or []))
    start = time.perf_counter()
    trainer.fit(module, train_dl, val_dl)
    wall = time.perf_counter() - start
    trainer.validate(module, val_dl, verbose=False)
    pred.cpu().eval()
    return {"steps": trainer.global_step, "wall_seconds": round(wall, 2), **module.last_val}


def predictor_labels(pr, values: list[str], path: str, recorded: dict | None = None
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(y, spec part)``: class indices (and the classes and bin edges) or normalised numbers (and their
    training mean and standard deviation); ``recorded``: the training file's spec part, for validation."""
    kind = pr.kind if recorded is None else recorded["kind"]
    if kind == "auto":
        if pr.bins or pr.quantiles:
            kind = "classes"
        else:
            try:
                _numbers(values, path)
                kind = "gaussian"
            except ValueError:
                kind = "classes"
    if kind == "classes":
        src = pr if recorded is None else type("Recorded", (), {"bins": recorded["bins"], "quantiles": 0,
                                                                 "classes": recorded["classes"]})()
        y, classes, edges = assign_classes(values, src, path)
        return torch.as_tensor(y, dtype=torch.long), {"kind": "classes", "classes": classes, "bins": edges,
                                                      "mean": None, "std": None}
    v = _numbers(values, path)
    if recorded is None:
        mean, std = float(v.mean()), float(v.std())
        if not std > 0:
            raise ValueError(f"{path}: every value of {pr.column!r} is {mean:g}; a Gaussian predictor needs variation")
    else:
        mean, std = recorded["mean"], recorded["std"]
    return torch.as_tensor((v - mean) / std, dtype=torch.float32), {"kind": "gaussian", "classes": None, "bins": None,
                                                                   "mean": mean, "std": std}


def train_predictor(cfg: TrainConfig, *, quiet: bool = False, callbacks: list | None = None) -> dict:
    """Train the predictor a recipe describes (``predictor`` section); writes ``out_dir/predictor.pt`` and
    ``out_dir/summary.json``; returns the summary."""
    from ..model import load_model
    from ..pretrained import resolve_model
    from ..training.train import write_json_atomic
    pr = cfg.predictor
    out = Path(cfg.out_dir)
    dest = out / "predictor.pt"
    if dest.exists():
        raise ValueError(f"{dest}: a predictor already exists there (use another out_dir)")
    base = load_model(resolve_model(pr.model))
    if base.is_ar:
        raise ValueError(f"predictor.model: {pr.model} is an AR model; classifier guidance needs a diffusion model")
    d = cfg.to_dict()
    d["data"]["kind"] = base.domain
    d["data"]["seq_len"] = min(d["data"]["seq_len"], base.max_len) if d["data"]["seq_len"] else base.max_len
    cfg = TrainConfig.from_dict(d, "<recipe>")
    tokenizer, diffusion = base.tokenizer, base.cfg.to_dict()["diffusion"]
    del base
    x, m, vals, p = labelled_tokens(cfg, tokenizer, cfg.data.train, pr.column, pr.sequence_column, cfg.data.max_records)
    y, part = predictor_labels(pr, vals, p)
    if cfg.data.valid:
        vx, vm, vvals, vp = labelled_tokens(cfg, tokenizer, cfg.data.valid, pr.column, pr.sequence_column)
        vy, _ = predictor_labels(pr, vvals, vp, recorded=part)
        tx, tm, ty = x, m, y
    else:
        perm = torch.as_tensor(np.random.default_rng(cfg.seed).permutation(x.shape[0]))
        n_val = max(1, int(round(cfg.data.valid_fraction * x.shape[0])))
        vi, ti = perm[:n_val], perm[n_val:]
        vx, vm, vy, tx, tm, ty = x[vi], m[vi], y[vi], x[ti], m[ti], y[ti]
    network = {k: getattr(pr, k) for k in ("d_model", "n_layers", "n_heads", "cond_dim", "mlp_ratio")}
    spec = {"column": pr.column, "model": str(pr.model), "domain": cfg.data.kind, "max_len": cfg.data.seq_len,
            "network": network, **part}
    pred = Predictor(spec, tokenizer.to_dict(), diffusion)
    if not quiet:
        counts = (", ".join(f"{c} ({n})" for c, n in zip(part["classes"], torch.bincount(ty, minlength=len(part["classes"])).tolist()))
                  if part["kind"] == "classes" else f"mean {part['mean']:.4g}, sd {part['std']:.4g}")
        print(f"seqdiff: {pred.describe()}; {tx.shape[0]} training rows ({counts}), {vx.shape[0]} validation rows")
    res = fit_predictor(pred, cfg, (tx, tm, ty), (vx, vm, vy), out_dir=out, quiet=quiet, callbacks=callbacks)
    pred.save(dest)
    summary = {"name": cfg.name, "domain": cfg.data.kind, "predictor": str(dest), "model": str(pr.model),
               "column": pr.column, "kind": part["kind"], "classes": part["classes"], "mean": part["mean"],
               "std": part["std"], "parameters": sum(q.numel() for q in pred.net.parameters()),
               "train_rows": int(tx.shape[0]), "valid_rows": int(vx.shape[0]), **res}
    write_json_atomic(out / "summary.json", summary)
    extra = "".join(f", {k} {v:.4f}" for k, v in res.items() if k.startswith("clean_"))
    print(f"seqdiff: done: {res['steps']} steps, validation loss {res.get('val_loss', float('nan')):.4f} nats over "
          f"noise levels{extra}; predictor written to {dest}")
    return summary


@torch.no_grad()
def evaluate_predictor(pred: Predictor, cfg: TrainConfig, path: str, *, seed: int = 0, batch_size: int = 256,
                       repeats: int = 1) -> dict[str, Any]:
    """Held-out figures of a trained predictor on every record of the labelled file ``path`` (read with
    the recipe ``cfg``'s data settings, the predictor's column and length):

    ``nll``: the training objective (cross-entropy, or Gaussian NLL in normalised units) averaged over
    ``repeats`` noisings of each record at stratified ``t ~ U(0, 1)`` (seeded: the same figures on
    every run); on the clean sequences ``accuracy`` (classes) or ``pearson`` (``None`` for a constant
    prediction) and ``mae`` of the predicted mean against the labels, in the property's units (Gaussian)."""
    pr = pred.spec
    d = cfg.to_dict()
    d["data"]["kind"], d["data"]["seq_len"] = pr["domain"], pr["max_len"]
    cfg = TrainConfig.from_dict(d, "<recipe>")
    x, m, vals, p = labelled_tokens(cfg, pred.tokenizer, path, pr["column"], cfg.predictor.sequence_column)
    y, _ = predictor_labels(cfg.predictor, vals, p, recorded=pr)
    pred.eval()
    g = torch.Generator().manual_seed(seed)
    nll, clean = 0.0, []
    for i in range(0, x.shape[0], batch_size):
        xb, mb, yb = x[i:i + batch_size], m[i:i + batch_size], y[i:i + batch_size]
        scored = mb & (xb < pred.tokenizer.num_data_tokens)
        for _ in range(repeats):
            t = pred.loss.sample_t(xb.shape[0], g, xb.device)
            xt = pred.loss.corrupt(xb, t, g, scored)
            nll += float(predictor_loss(pred(xt, t).float(), yb, pred.kind).double().sum())
        clean.append(pred(xb, torch.zeros(xb.shape[0])).float())
    out: dict[str, Any] = {"file": str(p), "rows": int(x.shape[0]), "nll": nll / (x.shape[0] * repeats)}
    c = torch.cat(clean)
    if pred.kind == "classes":
        out["accuracy"] = float((c.argmax(-1) == y).double().mean())
    else:
        mu = (c[:, 0].double() * pr["std"] + pr["mean"]).numpy()
        lab = np.asarray([float(v) for v in vals])
        out["pearson"] = float(np.corrcoef(mu, lab)[0, 1]) if mu.std() > 0 and lab.std() > 0 else None
        out["mae"] = float(np.abs(mu - lab).mean())
        out["label_sd"] = float(lab.std())
    return out
