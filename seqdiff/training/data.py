"""From a recipe's `data` and `tokenizer` sections to tokenizers, datasets and a Lightning DataModule.

Training batches come from :class:`ResumableBatchSampler`: batch ``k`` is a pure function of
``(seed, k)`` (epoch ``e`` is a seeded permutation of the rows), so after a restart the data
stream continues exactly where the interrupted run was — the basis of exact resume.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import (Collator, PackedDataset, PaddedDataset, StreamingWindowDataset, WindowDataset, encode_records,
                    read_records, split_indices)
from ..data.errors import DataError
from ..tokenizers import Tokenizer, build_tokenizer
from ..tokenizers.smiles import canonicalize, randomize
from .config import ConfigError, TrainConfig

__all__ = ["build_tokenizer_for", "build_datasets", "SeqDataModule", "ResumableBatchSampler", "reader_kwargs",
           "DEFAULT_TOKENIZER", "default_layout"]

log = logging.getLogger(__name__)

DEFAULT_TOKENIZER = {"text": "char", "dna": "dna", "protein": "protein", "smiles": "smiles"}


def default_layout(kind: str) -> str:
    return "window" if kind in ("text", "dna") else "pad"


def reader_kwargs(kind: str, path: str) -> dict:
    """Text corpora are read line by line (lines are re-joined with a separator, see
    :func:`line_separator`); other kinds record by record."""
    return {"mode": "lines"} if kind == "text" else {}


def line_separator(tokenizer: Tokenizer) -> int | None:
    """The id that joins text lines in a stream: a newline if the tokenizer has one, else a space."""
    for ch in ("\n", " "):
        try:
            ids = tokenizer.encode(ch)
        except ValueError:
            continue
        if len(ids) == 1:
            return ids[0]
    return None


REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_path(path: str) -> str:
    """Expand ``~`` and ``$VARS``; a relative path missing from the working directory is looked up
    in the repository root (so shipped recipes work from anywhere)."""
    p = Path(os.path.expandvars(os.path.expanduser(path)))
    if not p.is_absolute() and not p.exists() and (REPO_ROOT / p).exists():
        p = REPO_ROOT / p
    return str(p)


def _records(cfg: TrainConfig, path: str, limit: int | None = None):
    kind = cfg.data.kind
    path = resolve_path(path)
    if not Path(path).exists():
        raise DataError("no such file", path=path)
    it = read_records(path, **reader_kwargs(kind, path))
    limit = limit if limit is not None else (cfg.data.max_records or None)
    for i, rec in enumerate(it):
        if limit is not None and i >= limit:
            break
        yield rec


def build_tokenizer_for(cfg: TrainConfig) -> Tokenizer:
    """The tokenizer a recipe asks for; BPE and SMILES vocabularies are learnt from the training file."""
    kind = cfg.tokenizer.kind
    if kind == "auto":
        kind = DEFAULT_TOKENIZER[cfg.data.kind]
    opts = dict(cfg.tokenizer.options or {})
    if kind == "bpe" and "tokenizer_json" not in opts:
        opts.setdefault("vocab_size", 2048)
        texts = (r.seq for r in _records(cfg, cfg.data.train))
        return build_tokenizer("bpe", files_or_iterator=texts, **opts)
    if kind == "smiles" and "tokens" not in opts:
        smiles = [_smiles_transform(cfg)(r.seq) for r in _records(cfg, cfg.data.train)]
        return build_tokenizer("smiles", smiles=smiles, **opts)
    return build_tokenizer(kind, **opts)


def _smiles_transform(cfg: TrainConfig) -> Callable[[str], str]:
    if cfg.data.canonicalize_smiles:
        return lambda s: canonicalize(s) or s
    return lambda s: s


def _encode(cfg: TrainConfig, tokenizer: Tokenizer, path: str, *, split: str, skip_invalid: bool):
    transform = _smiles_transform(cfg) if cfg.data.kind == "smiles" else None
    enc = encode_records(_records(cfg, path), tokenizer, skip_invalid=skip_invalid,
                         check_smiles=cfg.data.check_smiles and cfg.data.kind == "smiles", transform=transform)
    if enc.num_skipped:
        log.warning("%s split (%s): skipped %d invalid record(s): %s", split, path, enc.num_skipped,
                    ", ".join(enc.skipped_ids[:10]) + (" ..." if enc.num_skipped > 10 else ""))
    if not enc.arrays:
        raise DataError(f"no usable records in the {split} split", path=path)
    return enc


class _RandomizedSmiles(Dataset):
    """Each access re-encodes a randomised SMILES of the molecule (seeded by epoch and index)."""

    def __init__(self, smiles: list[str], tokenizer: Tokenizer, max_len: int, seed: int) -> None:
        self.smiles, self.tok, self.max_len, self.seed = smiles, tokenizer, max_len, seed
        self.epoch = 0
        lengths = [min(len(tokenizer.encode(s)), max_len) for s in smiles]
        self.lengths = np.asarray(lengths)

    def __len__(self) -> int:
        return len(self.smiles)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        smi = self.smiles[i]
        for _ in range(5):  # a random SMILES may contain a token the vocabulary lacks, or be too long
            cand = randomize(smi, rng)
            try:
                ids = self.tok.encode(cand)
            except ValueError:
                continue
            if len(ids) <= self.max_len:
                break
        else:
            ids = self.tok.encode(smi)[: self.max_len]
        out = torch.full((self.max_len,), self.tok.pad_id, dtype=torch.long)
        out[: len(ids)] = torch.as_tensor(ids)
        return out

    def length_histogram(self, max_len: int | None = None) -> np.ndarray:
        return np.bincount(self.lengths, minlength=(max_len or self.max_len) + 1)


def _rows(cfg: TrainConfig, tokenizer: Tokenizer, enc, *, train: bool):
    d = cfg.data
    layout = d.layout if d.layout != "auto" else default_layout(d.kind)
    rc = d.rc_augment and train and d.kind == "dna"
    if layout == "window":
        sep = line_separator(tokenizer) if d.kind == "text" else None
        return WindowDataset(enc, d.seq_len, separator_id=sep, rc_augment=rc, seed=cfg.seed, pad_id=tokenizer.pad_id)
    if layout == "pack":
        sep = tokenizer.eos_id if tokenizer.eos_id is not None else None
        if sep is None:
            raise ConfigError("`data.layout: pack` needs a separator: use a tokenizer option `use_bos_eos: true`")
        return PackedDataset(enc, d.seq_len, sep, pad_id=tokenizer.pad_id)
    return PaddedDataset(enc, d.seq_len, tokenizer.pad_id, too_long=d.too_long, rc_augment=rc, seed=cfg.seed)


def build_datasets(cfg: TrainConfig, tokenizer: Tokenizer) -> dict[str, Dataset]:
    """``{"train", "valid"[, "test"]}`` datasets for a recipe."""
    d = cfg.data
    out: dict[str, Dataset] = {}
    if d.streaming:
        layout = d.layout if d.layout != "auto" else default_layout(d.kind)
        if layout != "window":
            raise ConfigError("`data.streaming` supports the window layout only")
        out["train"] = StreamingWindowDataset(d.train, tokenizer, d.seq_len, seed=cfg.seed,
                                              reader_kwargs=reader_kwargs(d.kind, d.train),
                                              separator_id=line_separator(tokenizer) if d.kind == "text" else None,
                                              skip_invalid=d.skip_invalid, rc_augment=d.rc_augment)
        train_enc = None
    else:
        train_enc = _encode(cfg, tokenizer, d.train, split="train", skip_invalid=d.skip_invalid)
    # held-out splits: unseen SMILES tokens in held-out data are counted and skipped, never fatal
    held_skip = d.skip_invalid or d.kind == "smiles"
    if d.valid:
        valid_enc = _encode(cfg, tokenizer, d.valid, split="valid", skip_invalid=held_skip)
    else:
        if train_enc is None:
            raise ConfigError("`data.streaming` needs an explicit `data.valid` file")
        n = len(train_enc.arrays)
        tr, va, _ = split_indices(n, (1 - d.valid_fraction, d.valid_fraction, 0.0), seed=cfg.seed)
        valid_enc = [train_enc.arrays[i] for i in va]
        train_enc = [train_enc.arrays[i] for i in tr]
    if "train" not in out:
        if d.kind == "smiles" and d.randomize_smiles:
            smiles = [r.seq for r in _records(cfg, d.train)]
            out["train"] = _RandomizedSmiles(smiles, tokenizer, d.seq_len, cfg.seed)
        else:
            out["train"] = _rows(cfg, tokenizer, train_enc, train=True)
    out["valid"] = _rows(cfg, tokenizer, valid_enc, train=False)
    if d.test:
        out["test"] = _rows(cfg, tokenizer, _encode(cfg, tokenizer, d.test, split="test", skip_invalid=held_skip),
                            train=False)
    for name, ds in out.items():
        if hasattr(ds, "__len__") and len(ds) == 0:
            raise DataError(f"the {name} split has no rows of length {d.seq_len}: use a smaller `data.seq_len`",
                            path=getattr(d, name, "") or d.train)
    return out


class ResumableBatchSampler(Sampler[list[int]]):
    """An endless stream of batches; batch ``k`` depends only on ``(seed, k)``.

    ``start`` is read when iteration begins (a callable, so it can ask the trainer for its restored
    step), and iteration continues from that batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: Callable[[], int] | int = 0,
                 rank: int = 0, world: int = 1) -> None:
        if n < 1:
            raise ValueError("no training rows")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start = start
        self.rank, self.world = rank, world
        self._perm_epoch = -1
        self._perm = np.arange(n)

    def _epoch_perm(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def batch(self, k: int) -> list[int]:
        """Row indices of global batch ``k`` for this rank."""
        per = self.batch_size * self.world
        first = k * per + self.rank * self.batch_size
        idx = []
        for j in range(first, first + self.batch_size):
            epoch, pos = divmod(j, self.n)
            idx.append(int(self._epoch_perm(epoch)[pos]))
        return idx

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start() if callable(self.start) else int(self.start)
        while True:
            yield self.batch(k)
            k += 1


class _Repeat(torch.utils.data.IterableDataset):
    """Endless passes over an iterable dataset (streaming corpora), epochs advancing."""

    def __init__(self, ds) -> None:
        self.ds = ds

    def __iter__(self):
        epoch = 0
        while True:
            if hasattr(self.ds, "set_epoch"):
                self.ds.set_epoch(epoch)
            yield from self.ds
            epoch += 1


class SeqDataModule(L.LightningDataModule):
    """Lightning data module for any domain; built from a recipe and a tokenizer."""

    def __init__(self, cfg: TrainConfig, tokenizer: Tokenizer, datasets: dict[str, Dataset] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.datasets = datasets
        self.collate = Collator(tokenizer.pad_id)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets is None:
            self.datasets = build_datasets(self.cfg, self.tokenizer)

    def _start_step(self) -> int:
        """Batches already consumed: read when the loader starts iterating, i.e. after a resume."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return int(trainer.global_step) * int(trainer.accumulate_grad_batches)

    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        d = self.cfg.data
        if isinstance(ds, torch.utils.data.IterableDataset):
            return DataLoader(_Repeat(ds), batch_size=d.batch_size, collate_fn=self.collate,
                              num_workers=d.num_workers)
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        sampler = ResumableBatchSampler(len(ds), d.batch_size, self.cfg.seed, self._start_step, rank, world)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=self.collate, num_workers=d.num_workers,
                          persistent_workers=False)

    def _eval_loader(self, name: str) -> DataLoader:
        ds = self.datasets[name]
        return DataLoader(ds, batch_size=self.cfg.data.eval_batch_size, shuffle=False, collate_fn=self.collate,
                          num_workers=self.cfg.data.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test" if "test" in self.datasets else "valid")

    def length_histogram(self) -> list[int] | None:
        """Training length distribution for variable-length data (saved with the model)."""
        ds = self.datasets["train"]
        if hasattr(ds, "length_histogram"):
            return [int(c) for c in ds.length_histogram(self.cfg.data.seq_len)]
        return None
