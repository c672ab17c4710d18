"""`seqdiff train`: build everything from a recipe, fit with Lightning, resume, summarise, export.

Scale-out is Lightning's own: ``trainer.strategy: ddp`` (or ``fsdp``), ``trainer.devices``,
``trainer.num_nodes`` and ``trainer.precision`` go straight to :class:`lightning.Trainer`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..model import SeqDiffModel
from ..serialization import ModelLoadError, UnsafeModelError, previous_path, safe_load, save_atomic, write_atomic
from ..tokenizers import tokenizer_from_dict
from ..config import ConfigError, TrainConfig
from .data import SeqDataModule, build_datasets, build_tokenizer_for
from .module import SeqDiffLightning

__all__ = ["train", "find_resume_checkpoint", "write_json_atomic", "SafeCheckpointIO"]

log = logging.getLogger(__name__)

# sections that must match for a resume to be the same run
_RESUME_KEYS = ("model", "diffusion", "tokenizer", "seed")


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written and read the way seqdiff model files are (:mod:`seqdiff.serialization`).

    Saving: a temporary file beside the target, flushed to disk and read back (its step checked) before
    it replaces the target; the checkpoint it replaces is kept as ``<name>.prev.ckpt``, so the newest two
    survive and a full disk or a kill mid-write never destroys the last good one. Loading: the file is
    scanned and refused if it would import code, and unpickled with ``weights_only=True``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        step = checkpoint.get("global_step")

        def same_step(back: dict) -> None:
            if back.get("global_step") != step:
                raise ModelLoadError(f"{path}: read back step {back.get('global_step')}, wrote {step}")

        save_atomic(checkpoint, path, keep_previous=True, verify=same_step)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return safe_load(path)

    def remove_checkpoint(self, path) -> None:
        for p in (Path(path), previous_path(path)):
            p.unlink(missing_ok=True)


def _checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def _resume_candidates(out_dir: str | Path) -> list[Path]:
    last = _checkpoint_dir(out_dir) / "last.ckpt"
    return [p for p in (last, previous_path(last)) if p.is_file()]


def _newest_good_checkpoint(out_dir: str | Path) -> tuple[Path | None, dict | None]:
    """The newest intact checkpoint of a run (``last.ckpt``, else ``last.prev.ckpt``) and its contents.

    A damaged (truncated, corrupt) ``last.ckpt`` is renamed ``last.ckpt.damaged`` when an older good one
    exists; a file that would run code stops everything (:class:`UnsafeModelError`); temporary files of
    an interrupted save are removed.
    """
    folder = _checkpoint_dir(out_dir)
    if folder.is_dir():
        for tmp in folder.glob(".*.ckpt.*.tmp"):
            tmp.unlink(missing_ok=True)
    damaged: list[tuple[Path, str]] = []
    for path in _resume_candidates(out_dir):
        try:
            saved = safe_load(path)
        except UnsafeModelError:
            raise
        except ModelLoadError as e:
            damaged.append((path, str(e)))
            continue
        if not isinstance(saved.get("hyper_parameters"), dict) or "global_step" not in saved:
            damaged.append((path, f"{path}: not a seqdiff training checkpoint"))
            continue
        for bad, why in damaged:
            aside = bad.with_name(bad.name + ".damaged")
            os.replace(bad, aside)
            print(f"seqdiff: {bad.name} is damaged ({why.split(': ', 1)[-1]}); moved it to {aside.name} and "
                  f"resuming from {path.name}")
        return path, saved
    if damaged:
        raise ConfigError(f"{folder}: no intact checkpoint to resume from ({damaged[0][1]}); move the run "
                          f"folder away to start over")
    return None, None


def find_resume_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint a run in ``out_dir`` resumes from (see :func:`_newest_good_checkpoint`), or ``None``."""
    return _newest_good_checkpoint(out_dir)[0]


def _check_resumable(ckpt: dict, cfg: TrainConfig, path: Path) -> dict:
    hp = ckpt.get("hyper_parameters", {})
    old = hp.get("config")
    if old is None:
        raise ConfigError(f"{path}: not a seqdiff training checkpoint")
    new = cfg.to_dict()
    for key in _RESUME_KEYS:
        if old.get(key) != new.get(key):
            raise ConfigError(f"{path}: cannot resume: `{key}` differs from the checkpoint's recipe "
                              f"(start a new run with another out_dir, or restore the recipe)")
    return hp


def train(cfg: TrainConfig, *, resume: str | bool = "auto", callbacks: list | None = None,
          quiet: bool = False) -> dict:
    """Train (or resume) a recipe; returns the run summary (also written to ``out_dir/summary.json``).

    ``resume``: ``"auto"`` continues from ``out_dir/checkpoints/last.ckpt`` when it exists,
    ``False`` refuses to overwrite an existing run, a path resumes from that checkpoint.
    A recipe with ``condition.column`` trains a conditional model (classifier-free guidance) from
    a labelled file: :func:`seqdiff.guidance.train_conditional.train_conditional`; one with
    ``predictor.column`` a noisy-sequence property predictor for classifier guidance:
    :func:`seqdiff.guidance.train_predictor.train_predictor`.
    """
    if cfg.predictor.column:
        from ..guidance.train_predictor import train_predictor
        return train_predictor(cfg, quiet=quiet, callbacks=callbacks)
    if cfg.condition.column:
        from ..guidance.train_conditional import train_conditional
        return train_conditional(cfg, quiet=quiet, callbacks=callbacks)
    out = Path(cfg.out_dir)
    ckpt_path: Path | None = None
    saved: dict | None = None
    if resume == "auto":
        ckpt_path, saved = _newest_good_checkpoint(out)
    elif resume:
        ckpt_path = Path(resume)
        saved = safe_load(ckpt_path)  # refuses a file that would run code; nothing in it runs
    elif _resume_candidates(out):
        raise ConfigError(f"{out}: a run already exists there (use resume, or another out_dir)")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if quiet:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning", "lightning.pytorch.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*Total length of `DataLoader` across ranks is zero.*")
    warnings.filterwarnings("ignore", message=".*You're resuming from a checkpoint that ended before the epoch.*")

    resumed_at = 0
    if ckpt_path is not None:
        hp = _check_resumable(saved, cfg, ckpt_path)
        resumed_at = int(saved.get("global_step", 0))
        del saved
        tokenizer = tokenizer_from_dict(hp["tokenizer"])
        print(f"seqdiff: resuming {cfg.name} from {ckpt_path}")
    else:
        tokenizer = build_tokenizer_for(cfg)
    datasets = build_datasets(cfg, tokenizer)
    dm = SeqDataModule(cfg, tokenizer, datasets)
    module = SeqDiffLightning(cfg.to_dict(), tokenizer.to_dict(), dm.length_histogram())
    n_params = module.model.num_parameters()
    n_train = len(datasets["train"]) if hasattr(datasets["train"], "__len__") else "streaming"
    print(f"seqdiff: {module.model.describe()}")
    print(f"seqdiff: train rows {n_train}, valid rows {len(datasets['valid'])}, "
          f"{cfg.data.batch_size}×{cfg.data.seq_len} tokens per step, {cfg.trainer.max_steps} steps")

    t = cfg.trainer
    # resume point: last.ckpt every ckpt_every steps, whether or not a validation has run yet
    last_cb = ModelCheckpoint(dirpath=out / "checkpoints", monitor=None, save_top_k=0, save_last=True,
                              every_n_train_steps=t.ckpt_every)
    # best.ckpt: lowest validation bits per token
    best_cb = ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val/bpt", mode="min",
                              save_top_k=1, save_last=False, auto_insert_metric_name=False)
    trainer = L.Trainer(
        max_steps=t.max_steps, val_check_interval=min(t.val_every, t.max_steps), check_val_every_n_epoch=None,
        limit_val_batches=cfg.data.max_valid_batches or 1.0, log_every_n_steps=t.log_every,
        gradient_clip_val=cfg.optim.grad_clip or None, precision=t.precision, accelerator=t.accelerator,
        devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
        accumulate_grad_batches=t.accumulate_grad_batches,
        deterministic="warn" if t.deterministic else False, enable_progress_bar=t.progress_bar and not quiet,
        enable_model_summary=not quiet, num_sanity_val_steps=0, default_root_dir=str(out),
        # a resumed run logs to its own file so the earlier metrics are kept
        logger=CSVLogger(str(out), name="logs", version=f"resumed-{resumed_at:07d}" if ckpt_path else ""),
        callbacks=[last_cb, best_cb] + list(callbacks or []),
        plugins=[SafeCheckpointIO()],  # atomic, verified, newest two kept; read without unpickling code
    )
    start = time.perf_counter()
    trainer.fit(module, dm, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    wall = time.perf_counter() - start
    if getattr(module, "last_val_bpt", None) is None or trainer.global_step % min(t.val_every, t.max_steps):
        trainer.validate(module, dm, verbose=False)
    test_bpt = None
    if "test" in datasets and trainer.is_global_zero:
        trainer.test(module, dm, verbose=False)
        test_bpt = getattr(module, "test_bpt", None)

    summary: dict[str, Any] = {}
    if trainer.is_global_zero:
        model_path = out / "model.pt"
        if module.ema is not None:
            module.ema.swap_in(module.model)
        module.model.cpu().save(model_path)
        tok_s = module.tokens_seen / module.train_time if module.train_time > 0 else float("nan")
        summary = {
            "name": cfg.name, "domain": cfg.data.kind, "parameters": n_params, "steps": trainer.global_step,
            "tokens_seen": module.tokens_seen, "train_seconds": round(module.train_time, 2),
            "tokens_per_second": round(tok_s, 1), "wall_seconds": round(wall, 2),
            "val_bits_per_token": getattr(module, "last_val_bpt", None), "test_bits_per_token": test_bpt,
            "model": str(model_path), "checkpoint": str(out / "checkpoints" / "last.ckpt"),
        }
        write_json_atomic(out / "summary.json", summary)
        vb = summary["val_bits_per_token"]
        print(f"seqdiff: done: {n_params / 1e6:.2f}M params, {summary['steps']} steps, "
              f"{tok_s:,.0f} tokens/s, val {vb:.4f} bits/token"
              + (f", test {test_bpt:.4f} bits/token" if test_bpt is not None else "")
              + f"; model written to {model_path}")
    return summary
