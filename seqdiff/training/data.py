"""From a recipe's `data` and `tokenizer` sections to tokenizers, datasets and a Lightning DataModule.

Training batches come from :class:`ResumableBatchSampler`: batch ``k`` is a pure function of
``(seed, k)`` (epoch ``e`` is a seeded permutation of the rows), so after a restart the data
stream continues exactly where the interrupted run was — the basis of exact resume.

The rows of a tokenised corpus are prepared once as one small-integer tensor (:class:`TokenRows`,
uint8 for every shipped alphabet); a training batch is then a single gather (plus the
reverse-complement augmentation as one vectorised flip), with no per-row Python and no collation.
On CUDA the loader pins its batches so the host-to-device copy runs asynchronously.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import (Collator, PackedDataset, PaddedDataset, StreamingWindowDataset, WindowDataset, encode_records,
                    read_records, split_indices)
from ..data.datasets import _splitmix64
from ..data.errors import DataError
from ..domains import get_domain
from ..tokenizers import Tokenizer, build_tokenizer
from ..tokenizers.smiles import canonicalize, randomize
from ..config import ConfigError, TrainConfig

__all__ = ["build_tokenizer_for", "build_datasets", "SeqDataModule", "ResumableBatchSampler", "reader_kwargs",
           "DEFAULT_TOKENIZER", "default_layout", "TokenRows", "TrainBatch"]

log = logging.getLogger(__name__)

def __getattr__(name: str):
    if name == "DEFAULT_TOKENIZER":  # domain -> its tokenizer kind, from the registry
        from ..domains import domains
        return {d.name: d.tokenizer_kind for d in domains().values()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_layout(kind: str) -> str:
    """The row layout of ``data.layout: auto``: the domain's own (:attr:`Domain.layout`)."""
    return get_domain(kind).layout


def reader_kwargs(kind: str, path: str) -> dict:
    """The domain's reader options: text corpora are read line by line (lines are re-joined with a
    separator, see :func:`line_separator`); other kinds record by record."""
    return dict(get_domain(kind).reader_options)


def _separator(kind: str, tokenizer: Tokenizer) -> int | None:
    """The id that joins records in a window stream: a line separator for line-based domains."""
    return line_separator(tokenizer) if get_domain(kind).join_lines else None


def _has(kind: str, option: str) -> bool:
    """Whether the domain honours a domain-specific recipe option (``randomize_smiles``, ...)."""
    return option in get_domain(kind).record_options


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
        kind = get_domain(cfg.data.kind).tokenizer_kind
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
    transform = _smiles_transform(cfg) if _has(cfg.data.kind, "canonicalize_smiles") else None
    enc = encode_records(_records(cfg, path), tokenizer, skip_invalid=skip_invalid,
                         check_smiles=cfg.data.check_smiles and _has(cfg.data.kind, "check_smiles"),
                         transform=transform)
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
    rc = d.rc_augment and train and "reverse_complement" in get_domain(d.kind).augmentations
    if layout == "window":
        sep = _separator(d.kind, tokenizer)
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
                                              separator_id=_separator(d.kind, tokenizer),
                                              skip_invalid=d.skip_invalid, rc_augment=d.rc_augment)
        train_enc = None
    else:
        train_enc = _encode(cfg, tokenizer, d.train, split="train", skip_invalid=d.skip_invalid)
    # held-out splits: unseen SMILES tokens in held-out data are counted and skipped, never fatal
    held_skip = d.skip_invalid or bool(get_domain(d.kind).record_options)
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
        if d.randomize_smiles and _has(d.kind, "randomize_smiles"):
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

    def positions(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(row indices, epochs)`` of global batch ``k`` for this rank (int64 arrays)."""
        per = self.batch_size * self.world
        first = k * per + self.rank * self.batch_size
        epoch, pos = np.divmod(np.arange(first, first + self.batch_size, dtype=np.int64), self.n)
        idx = np.empty(self.batch_size, dtype=np.int64)
        for e in np.unique(epoch):  # one or a few epochs per batch
            sel = epoch == e
            idx[sel] = self._epoch_perm(int(e))[pos[sel]]
        return idx, epoch

    def batch(self, k: int) -> list[int]:
        """Row indices of global batch ``k`` for this rank."""
        return self.positions(k)[0].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start() if callable(self.start) else int(self.start)
        while True:
            yield self.batch(k)
            k += 1


class PositionBatchSampler(ResumableBatchSampler):
    """:class:`ResumableBatchSampler` yielding ``[(indices, epochs)]`` for :class:`TokenRows`."""

    def __iter__(self) -> Iterator[list]:
        k = self.start() if callable(self.start) else int(self.start)
        while True:
            yield [self.positions(k)]
            k += 1


def _whole_batch(batch):
    return batch


class TrainBatch(NamedTuple):
    """A prepared training batch: ids, real-token mask, and host-side facts the step needs without
    a device sync (the number of real tokens, and whether the batch has any padding)."""

    x: torch.Tensor
    pad_mask: torch.Tensor
    num_real: int
    padded: bool


def _rc_draw(seed: int, epochs: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The augmentation's per-row uniform draw, vectorised: ``_unit(seed, epoch, key, 0xC0)``."""
    h = np.uint64(0x243F6A8885A308D3)
    h = _splitmix64(np.uint64(int(seed) & ((1 << 64) - 1)) ^ _splitmix64(h))
    h = _splitmix64(np.asarray(epochs, dtype=np.int64).astype(np.uint64) ^ _splitmix64(h))
    h = _splitmix64(np.asarray(keys, dtype=np.int64).astype(np.uint64) ^ _splitmix64(h))
    h = _splitmix64(np.uint64(0xC0) ^ _splitmix64(h))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class TokenRows(torch.utils.data.Dataset):
    """Every row of a window, packed or padded dataset, prepared once as a ``[n, L]`` small-integer
    tensor; ``rows[(indices, epochs)]`` returns a whole :class:`TrainBatch`.

    Batches are identical to stacking ``ds[i]`` after ``ds.set_epoch(epoch)`` for each row, including
    the reverse-complement augmentation, which is redrawn every epoch from ``(seed, epoch, row)``.
    :meth:`to` moves the rows to a device so batches can be gathered there (no host work per step).
    """

    def __init__(self, ds: Dataset, pad_id: int) -> None:
        self.pad_id = int(pad_id)
        n = len(ds)
        if isinstance(ds, PaddedDataset):
            L = ds.max_len
            col = np.arange(L)
            real = col[None, :] < ds.lengths[:, None]
            rows = np.full((n, L), ds.pad_id, dtype=np.int64)
            rows[real] = ds.flat[(ds.offsets[:-1, None] + col[None, :])[real]]
            lo = np.full(n, int(ds.bos_id is not None), dtype=np.int64)
            hi = ds.lengths - int(ds.eos_id is not None)
        elif isinstance(ds, WindowDataset) and getattr(ds, "_rows", None) is not None:  # whole-record packing
            rows, lo, hi = ds._rows, np.zeros(n, dtype=np.int64), ds.row_lengths.astype(np.int64)
        elif isinstance(ds, WindowDataset):
            L = ds.seq_len
            if ds.stride == L:  # non-overlapping windows: a view of the stream, no index array
                rows = ds.stream[:ds.num_full * L].reshape(ds.num_full, L)
            else:
                starts = np.arange(ds.num_full, dtype=np.int64) * ds.stride
                rows = ds.stream[starts[:, None] + np.arange(L)[None, :]] if ds.num_full else np.zeros((0, L), np.int64)
            hi = np.full(ds.num_full, L, dtype=np.int64)
            if ds.has_partial:
                tail = ds.stream[ds.num_full * ds.stride:]
                last = np.full((1, L), ds.pad_id, dtype=np.int64)
                last[0, :len(tail)] = tail
                rows = np.concatenate([rows.astype(np.int64), last])
                hi = np.concatenate([hi, [len(tail)]])
            lo = np.zeros(n, dtype=np.int64)
        else:
            raise TypeError(f"TokenRows needs a window, packed or padded dataset, got {type(ds).__name__}")
        rows = np.asarray(rows)
        top = int(rows.max()) if rows.size else 0
        np_dtype = np.uint8 if top < 256 else np.int16 if top < 1 << 15 else np.int32
        self.rows = torch.from_numpy(np.ascontiguousarray(rows.astype(np_dtype, copy=False)))
        self.real_len = (rows != self.pad_id).sum(1).astype(np.int64)  # stays on the host
        rc = ds._rc
        if rc.enabled and top >= len(rc.table):
            raise DataError(f"token id {top} outside the complement table (size {len(rc.table)})")
        self.rc = rc.enabled
        self.rc_seed, self.rc_prob = rc.seed, rc.prob
        self.table = torch.as_tensor(rc.table, dtype=torch.long) if rc.enabled else None
        self.lo, self.hi = torch.from_numpy(lo), torch.from_numpy(np.asarray(hi, dtype=np.int64))
        self.seq_len = self.rows.shape[1]

    @staticmethod
    def supports(ds: Dataset) -> bool:
        return isinstance(ds, (PaddedDataset, WindowDataset)) and not isinstance(ds, StreamingWindowDataset)

    def __len__(self) -> int:
        return self.rows.shape[0]

    def to(self, device: torch.device | str) -> "TokenRows":
        """Keep the rows (and the tables the augmentation needs) on ``device``."""
        for name in ("rows", "table", "lo", "hi"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, v.to(device))
        return self

    def __getitems__(self, items: list) -> TrainBatch:
        """DataLoader batch fetch: ``items`` is ``[(indices, epochs)]`` from :class:`PositionBatchSampler`."""
        (item,) = items
        return self[item]

    def __getitem__(self, item) -> TrainBatch:
        idx, epochs = item
        dev = self.rows.device
        i = torch.as_tensor(np.asarray(idx, dtype=np.int64)).to(dev, non_blocking=True)
        x = self.rows[i].long()
        if self.rc:
            flip = _rc_draw(self.rc_seed, np.asarray(epochs), np.asarray(idx)) < self.rc_prob
            if flip.any():
                f = torch.as_tensor(np.flatnonzero(flip)).to(dev)
                lo, hi = self.lo[i[f]][:, None], self.hi[i[f]][:, None]
                col = torch.arange(self.seq_len, device=dev)[None, :]
                body = (col >= lo) & (col < hi)
                src = torch.where(body, lo + hi - 1 - col, col)
                sub = torch.gather(x[f], 1, src)
                x[f] = torch.where(body, self.table[sub], sub)
        pad_mask = x != self.pad_id
        num_real = int(self.real_len[np.asarray(idx, dtype=np.int64)].sum())
        return TrainBatch(x, pad_mask, num_real, num_real < x.numel())


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
        self._rows: TokenRows | None = None

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
        if TokenRows.supports(ds):
            # prepared rows: one gather per batch in the main process (workers would only add IPC);
            # pinned on CUDA so Lightning's non-blocking transfer overlaps the previous step
            if self._rows is None:
                self._rows = TokenRows(ds, self.tokenizer.pad_id)
            on_cuda = trainer is not None and getattr(trainer.strategy.root_device, "type", "") == "cuda"
            sampler = PositionBatchSampler(len(ds), d.batch_size, self.cfg.seed, self._start_step, rank, world)
            return DataLoader(self._rows, batch_sampler=sampler, collate_fn=_whole_batch, num_workers=0,
                              pin_memory=on_cuda)
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
