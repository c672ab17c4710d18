"""Torch datasets over tokenised sequences.

Three ways to turn records into equal-length training rows:

* :class:`WindowDataset`: one long token stream (a genome, a text corpus;
  records concatenated with an optional separator) cut into fixed windows.
  No padding, but windows start anywhere inside a record.
* :class:`PaddedDataset`: one row per record, truncated (or rejected) at
  ``max_len`` and right-padded with ``pad_id``.  Every row starts at a record
  start, and the record length distribution is kept (``length_histogram``)
  so a sampler can draw lengths; the price is compute spent on pad
  positions, which is large when lengths vary a lot.
* :class:`PackedDataset`: variable-length records concatenated with a
  separator and cut into fixed windows, so (almost) no compute is spent on
  pad.  Trade-offs: unless ``allow_split=False`` a record can be cut across
  two windows; several unrelated records share one window and attend to
  each other (the separator is the only boundary cue); the model learns to
  generate separator-delimited streams rather than single records, so
  lengths must be recovered by splitting samples at the separator; and the
  separator must be a token the model is allowed to generate (a data id) or
  one the diffusion process holds fixed.

:class:`StreamingWindowDataset` produces the same windows as
:class:`WindowDataset` while reading the file lazily, sharded over DataLoader
workers (and optionally over distributed ranks).

Items are ``LongTensor[L]``; use :class:`Collator` (or :func:`collate`) to
get a :class:`Batch` ``(x, pad_mask)`` with ``pad_mask`` True at real tokens.

Randomness (reverse-complement augmentation, split assignment, shuffling) is
derived from integer hashing of ``(seed, epoch, index)`` rather than from a
library RNG stream, so it is identical on every machine and independent of
the number of DataLoader workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..tokenizers.base import Tokenizer
from .errors import DataError
from .readers import EncodedRecords, Record, SkippedRecord, encode_records, iter_encode_records, read_records

__all__ = [
    "Batch",
    "Collator",
    "collate",
    "WindowDataset",
    "PaddedDataset",
    "PackedDataset",
    "StreamingWindowDataset",
    "split_indices",
    "split_records",
    "dna_complement_table",
]

log = logging.getLogger("seqdiff.data")

_MASK64 = (1 << 64) - 1


# ------------------------------------------------------------ hashing
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser (a bijection on uint64)."""
    z = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def _mix(*values: int) -> int:
    """Deterministic 64-bit hash of a tuple of integers."""
    h = np.uint64(0x243F6A8885A308D3)
    for v in values:
        h = _splitmix64(np.uint64(int(v) & _MASK64) ^ _splitmix64(h))
    return int(h)


def _unit(*values: int) -> float:
    """Deterministic uniform number in [0, 1) from integers."""
    return (_mix(*values) >> 11) / float(1 << 53)


# --------------------------------------------------------------- splits
def _boundaries(n: int, fractions: Sequence[float]) -> list[int]:
    fr = [float(f) for f in fractions]
    if not fr or any(f < 0 for f in fr):
        raise ValueError(f"fractions must be non-negative, got {fractions}")
    total = sum(fr)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {total})")
    cum = np.cumsum(fr)
    bounds = [0] + [int(round(c * n)) for c in cum[:-1]] + [n]
    return bounds


def split_indices(
    n: int, fractions: Sequence[float] = (0.9, 0.05, 0.05), seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Deterministic random split of ``range(n)``.

    Returns one sorted int64 array per fraction (e.g. train/validation/test).
    The parts are disjoint and together cover ``range(n)``; their sizes are
    ``round(cumulative_fraction * n)`` differences.  The permutation comes from
    an integer hash of ``(seed, index)``, so the same seed gives the same
    split on any machine and with any numpy version.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    bounds = _boundaries(n, fractions)
    keys = _splitmix64(np.arange(n, dtype=np.uint64) ^ np.uint64(_mix(seed, 0x5E1)))
    order = np.argsort(keys, kind="stable")
    return tuple(np.sort(order[bounds[k] : bounds[k + 1]]).astype(np.int64) for k in range(len(fractions)))


def _hash_unit_str(s: str, seed: int) -> float:
    h = hashlib.blake2b(s.encode("utf-8"), digest_size=8, key=int(seed & _MASK64).to_bytes(8, "little"))
    return (int.from_bytes(h.digest(), "little") >> 11) / float(1 << 53)


def split_records(
    records: Iterable[Any],
    fractions: Sequence[float] = (0.9, 0.05, 0.05),
    seed: int = 0,
    *,
    by: str = "index",
) -> tuple[list[Any], ...]:
    """Deterministic record-level split.

    Args:
        records: records (:class:`Record` or anything else for ``by="index"``).
        fractions: one fraction per part, summing to 1.
        seed: the split seed.
        by: ``"index"``: exact part sizes via :func:`split_indices` on the
            record order.  ``"id"``: each record is assigned from a hash of
            its id, so the assignment of a record does not change when other
            records are added, removed or reordered, and records sharing an
            id stay together (sizes are then only approximately
            proportional).  ``"seq"``: like ``"id"`` but hashing the
            sequence, so identical sequences never straddle two parts.

    Returns:
        One list per fraction, each keeping the input order.
    """
    recs = list(records)
    fr = list(fractions)
    _boundaries(len(recs), fr)  # validates fractions
    if by == "index":
        parts = split_indices(len(recs), fr, seed)
        return tuple([recs[i] for i in part] for part in parts)
    if by not in ("id", "seq"):
        raise ValueError(f"by must be 'index', 'id' or 'seq', got {by!r}")
    cum = np.cumsum(fr)
    cum[-1] = 1.0 + 1e-12
    out: list[list[Any]] = [[] for _ in fr]
    for r in recs:
        key = r.id if by == "id" else r.seq
        u = _hash_unit_str(str(key), seed)
        out[int(np.searchsorted(cum, u, side="right"))].append(r)
    return tuple(out)


# ----------------------------------------------------------- collation
class Batch(NamedTuple):
    """A training batch.

    Attributes:
        x: ``LongTensor[B, L]`` token ids (pad positions hold ``pad_id``).
        pad_mask: ``BoolTensor[B, L]``, ``True`` at real (non-pad) tokens.
    """

    x: torch.Tensor
    pad_mask: torch.Tensor


def collate(items: Sequence[Any], pad_id: int, *, pad_to_multiple_of: int | None = None) -> Batch:
    """Stack 1-D id sequences into a :class:`Batch`.

    Items may have different lengths; they are right-padded with ``pad_id``
    to the longest (rounded up to ``pad_to_multiple_of``).  ``pad_mask`` is
    ``x != pad_id``; pad is never a real token, so this is exact.
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty batch")
    tensors = [torch.as_tensor(np.asarray(it) if not isinstance(it, torch.Tensor) else it).long().reshape(-1) for it in items]
    L = max(t.numel() for t in tensors)
    if pad_to_multiple_of:
        L = -(-L // pad_to_multiple_of) * pad_to_multiple_of
    x = torch.full((len(tensors), L), int(pad_id), dtype=torch.long)
    for i, t in enumerate(tensors):
        x[i, : t.numel()] = t
    return Batch(x, x != int(pad_id))


class Collator:
    """Picklable ``collate_fn`` for ``DataLoader`` (works with workers).

    Example: ``DataLoader(ds, batch_size=32, collate_fn=Collator(tok.pad_id))``.
    """

    def __init__(self, pad_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = int(pad_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Any]) -> Batch:
        return collate(items, self.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)

    def __repr__(self) -> str:
        return f"Collator(pad_id={self.pad_id})"


# -------------------------------------------------------- augmentation
def dna_complement_table() -> np.ndarray:
    """Complement table for :class:`~seqdiff.tokenizers.DNATokenizer` ids
    (A0<->T3, C1<->G2, N4->N4; mask/pad/bos/eos 5..8 fixed)."""
    from ..tokenizers.dna import DNATokenizer

    return DNATokenizer(use_bos_eos=True).complement_table()


class _RCAugment:
    """Seeded per-item reverse-complement of the real (non-pad) prefix."""

    def __init__(self, enabled: bool, prob: float, complement: Sequence[int] | np.ndarray | None, seed: int) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"rc_prob must be in [0, 1], got {prob}")
        self.enabled = bool(enabled)
        self.prob = float(prob)
        self.seed = int(seed)
        self.table = None
        if self.enabled:
            self.table = np.asarray(dna_complement_table() if complement is None else complement, dtype=np.int64)

    def __call__(self, arr: np.ndarray, length: int, key: int, epoch: int) -> np.ndarray:
        if not self.enabled or _unit(self.seed, epoch, key, 0xC0) >= self.prob:
            return arr
        assert self.table is not None
        if arr[:length].size and int(arr[:length].max()) >= len(self.table):
            raise DataError(f"token id {int(arr[:length].max())} outside the complement table (size {len(self.table)})")
        out = arr.copy()
        out[:length] = self.table[arr[:length][::-1]]
        return out


def _complement_from_tokenizer(tokenizer: Tokenizer | None, rc_augment: bool, complement):
    if not rc_augment or complement is not None:
        return complement
    if tokenizer is None:
        return None
    if not hasattr(tokenizer, "complement_table"):
        raise ValueError(f"rc_augment needs a DNA tokenizer, got {type(tokenizer).__name__}")
    return tokenizer.complement_table()


def _as_arrays(sequences: Any) -> tuple[list[np.ndarray], EncodedRecords | None]:
    if isinstance(sequences, EncodedRecords):
        return list(sequences.arrays), sequences
    if isinstance(sequences, (np.ndarray, torch.Tensor)) and np.asarray(sequences).ndim == 1:
        return [np.asarray(sequences)], None
    arrays = []
    for s in sequences:
        a = s.numpy() if isinstance(s, torch.Tensor) else np.asarray(s)
        if a.ndim != 1:
            raise ValueError(f"each sequence must be 1-D, got shape {a.shape}")
        if a.size and (not np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"sequences must hold integer ids, got dtype {a.dtype}")
        arrays.append(a)
    return arrays, None


def _storage_dtype(max_id: int) -> np.dtype:
    if max_id < 1 << 8:
        return np.dtype(np.uint8)
    if max_id < 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int64)


def _concat(arrays: Sequence[np.ndarray], separator_id: int | None) -> np.ndarray:
    """Join arrays, inserting ``separator_id`` between consecutive ones."""
    max_id = max([int(a.max()) for a in arrays if a.size] + [separator_id or 0, 0])
    dtype = _storage_dtype(max_id)
    if separator_id is None or len(arrays) <= 1:
        return np.concatenate([a.astype(dtype, copy=False) for a in arrays]) if arrays else np.zeros(0, dtype)
    sep = np.array([separator_id], dtype=dtype)
    parts: list[np.ndarray] = []
    for i, a in enumerate(arrays):
        if i:
            parts.append(sep)
        parts.append(a.astype(dtype, copy=False))
    return np.concatenate(parts)


def _to_long(a: np.ndarray) -> torch.Tensor:
    """Copy into a fresh LongTensor (never a view of dataset storage)."""
    return torch.from_numpy(np.array(a, dtype=np.int64, copy=True))


# -------------------------------------------------------------- windows
class WindowDataset(Dataset):
    """Fixed-length windows over one concatenated token stream.

    Args:
        sequences: an :class:`EncodedRecords`, a list of 1-D id arrays, or a
            single 1-D array (the stream itself).
        seq_len: window length.
        stride: distance between window starts (default ``seq_len``:
            non-overlapping).  ``stride < seq_len`` overlaps windows.
        separator_id: id inserted between consecutive records (none by default).
        drop_last: drop the incomplete tail (default).  If ``False`` the first
            incomplete window is kept, right-padded with ``pad_id``.
        pad_id: required when ``drop_last=False``.
        rc_augment: reverse-complement each window with probability
            ``rc_prob`` (seeded by ``seed``, the epoch and the index).
        complement: complement table (default: the DNA tokenizer's).
        seed: augmentation seed.

    Items are ``LongTensor[seq_len]``.
    """

    def __init__(
        self,
        sequences: Any,
        seq_len: int,
        *,
        stride: int | None = None,
        separator_id: int | None = None,
        drop_last: bool = True,
        pad_id: int | None = None,
        rc_augment: bool = False,
        rc_prob: float = 0.5,
        complement: Sequence[int] | np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        if seq_len < 1:
            raise ValueError("seq_len must be >= 1")
        self.seq_len = int(seq_len)
        self.stride = int(stride) if stride is not None else self.seq_len
        if self.stride < 1:
            raise ValueError("stride must be >= 1")
        if not drop_last and pad_id is None:
            raise ValueError("drop_last=False needs pad_id")
        self.separator_id = separator_id
        self.drop_last = bool(drop_last)
        self.pad_id = pad_id
        arrays, self.encoded = _as_arrays(sequences)
        self.stream = _concat(arrays, separator_id)
        total = len(self.stream)
        self.num_full = (total - self.seq_len) // self.stride + 1 if total >= self.seq_len else 0
        tail_start = self.num_full * self.stride
        self.has_partial = (not self.drop_last) and tail_start < total
        self._rc = _RCAugment(rc_augment, rc_prob, complement, seed)
        self.epoch = 0

    @classmethod
    def from_records(
        cls,
        records: Iterable[Record],
        tokenizer: Tokenizer,
        seq_len: int,
        *,
        skip_invalid: bool = False,
        check_smiles: bool = False,
        **kwargs: Any,
    ) -> "WindowDataset":
        """Encode ``records`` with ``tokenizer`` then build the dataset.

        ``pad_id`` and (for ``rc_augment``) the complement table default to
        the tokenizer's.  Skipped records are in ``dataset.encoded.skipped``.
        """
        enc = encode_records(records, tokenizer, skip_invalid=skip_invalid, check_smiles=check_smiles)
        kwargs.setdefault("pad_id", tokenizer.pad_id)
        kwargs["complement"] = _complement_from_tokenizer(tokenizer, kwargs.get("rc_augment", False), kwargs.get("complement"))
        return cls(enc, seq_len, **kwargs)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        tokenizer: Tokenizer,
        seq_len: int,
        *,
        format: str | None = None,
        reader_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> "WindowDataset":
        """Read ``path`` (see :func:`read_records`) and build the dataset."""
        return cls.from_records(read_records(path, format, **(reader_kwargs or {})), tokenizer, seq_len, **kwargs)

    def __len__(self) -> int:
        return self.num_full + int(self.has_partial)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self.epoch = int(epoch)

    def window_start(self, i: int) -> int:
        """Offset of window ``i`` in :attr:`stream`."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return i * self.stride

    def __getitem__(self, i: int) -> torch.Tensor:
        if i < 0:
            i += len(self)
        s = self.window_start(i)
        w = self.stream[s : s + self.seq_len]
        n_real = len(w)
        if n_real < self.seq_len:
            w = np.concatenate([w.astype(np.int64), np.full(self.seq_len - n_real, self.pad_id, dtype=np.int64)])
        w = self._rc(np.asarray(w, dtype=np.int64), n_real, i, self.epoch)
        return _to_long(w)


class PackedDataset(WindowDataset):
    """Variable-length records packed into fixed windows with a separator.

    Args:
        sequences: as for :class:`WindowDataset`.
        seq_len: window length.
        separator_id: id placed between records (required).
        allow_split: ``True`` (default): plain concatenation cut every
            ``seq_len`` tokens, zero pad, records may straddle windows.
            ``False``: whole records only, packed greedily in order
            (next-fit); the rest of a window is padded with ``pad_id``;
            records longer than ``seq_len`` are truncated or rejected
            according to ``too_long``.
        pad_id: required when ``allow_split=False`` or ``drop_last=False``.
        too_long: ``"truncate"`` or ``"reject"`` (``allow_split=False`` only);
            rejected record positions are listed in :attr:`rejected`.
        other arguments: as for :class:`WindowDataset`.

    See the module docstring for the trade-offs against padding.
    """

    def __init__(
        self,
        sequences: Any,
        seq_len: int,
        separator_id: int,
        *,
        allow_split: bool = True,
        pad_id: int | None = None,
        too_long: str = "truncate",
        drop_last: bool = True,
        rc_augment: bool = False,
        rc_prob: float = 0.5,
        complement: Sequence[int] | np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        if separator_id is None:
            raise ValueError("PackedDataset needs a separator_id")
        self.allow_split = bool(allow_split)
        self.rejected: list[int] = []
        self.num_truncated = 0
        if self.allow_split:
            super().__init__(
                sequences,
                seq_len,
                separator_id=separator_id,
                drop_last=drop_last,
                pad_id=pad_id,
                rc_augment=rc_augment,
                rc_prob=rc_prob,
                complement=complement,
                seed=seed,
            )
            self._rows = None
            return
        if pad_id is None:
            raise ValueError("allow_split=False needs pad_id")
        if too_long not in ("truncate", "reject"):
            raise ValueError(f"too_long must be 'truncate' or 'reject', got {too_long!r}")
        if seq_len < 1:
            raise ValueError("seq_len must be >= 1")
        self.seq_len = int(seq_len)
        self.stride = self.seq_len
        self.separator_id = separator_id
        self.pad_id = pad_id
        self.drop_last = drop_last
        arrays, self.encoded = _as_arrays(sequences)
        windows: list[list[np.ndarray]] = []
        current: list[np.ndarray] = []
        used = 0
        sep = np.array([separator_id], dtype=np.int64)
        for k, a in enumerate(arrays):
            a = a.astype(np.int64)
            if len(a) > self.seq_len:
                if too_long == "reject":
                    self.rejected.append(k)
                    continue
                a = a[: self.seq_len]
                self.num_truncated += 1
            need = len(a) + (1 if current else 0)
            if current and used + need > self.seq_len:
                windows.append(current)
                current, used, need = [], 0, len(a)
            if current:
                current.append(sep)
            current.append(a)
            used += need
        if current:
            windows.append(current)
        rows = np.full((len(windows), self.seq_len), pad_id, dtype=np.int64)
        self.row_lengths = np.zeros(len(windows), dtype=np.int64)
        for r, parts in enumerate(windows):
            flat = np.concatenate(parts)
            rows[r, : len(flat)] = flat
            self.row_lengths[r] = len(flat)
        self._rows = rows
        self.stream = rows.reshape(-1)
        self.num_full = len(windows)
        self.has_partial = False
        self._rc = _RCAugment(rc_augment, rc_prob, complement, seed)
        self.epoch = 0
        if self.rejected:
            log.warning("PackedDataset: %d record(s) longer than %d rejected", len(self.rejected), self.seq_len)

    def __getitem__(self, i: int) -> torch.Tensor:
        if self._rows is None:
            return super().__getitem__(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        row = self._rows[i]
        return _to_long(self._rc(row, int(self.row_lengths[i]), i, self.epoch))


# --------------------------------------------------------------- padded
class PaddedDataset(Dataset):
    """One right-padded row per record.

    Args:
        sequences: an :class:`EncodedRecords` or a list of 1-D id arrays.
        max_len: row length (including BOS/EOS if used).
        pad_id: padding id (the tokenizer's ``pad_id``).
        too_long: what to do with records longer than ``max_len``:
            ``"truncate"`` (default; counted in :attr:`num_truncated`),
            ``"reject"`` (left out; listed in :attr:`rejected` as
            ``(input position, record id or None, length)``), or ``"error"``
            (raise :class:`DataError`).
        bos_id, eos_id: if given, each row is ``[bos] + seq + [eos]`` (the
            EOS is kept when truncating).
        rc_augment, rc_prob, complement, seed: reverse-complement
            augmentation of the real prefix (pads stay at the right).

    Items are ``LongTensor[max_len]``.  :attr:`lengths` holds each row's
    number of real tokens.
    """

    def __init__(
        self,
        sequences: Any,
        max_len: int,
        pad_id: int,
        *,
        too_long: str = "truncate",
        bos_id: int | None = None,
        eos_id: int | None = None,
        rc_augment: bool = False,
        rc_prob: float = 0.5,
        complement: Sequence[int] | np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        if too_long not in ("truncate", "reject", "error"):
            raise ValueError(f"too_long must be 'truncate', 'reject' or 'error', got {too_long!r}")
        extra = int(bos_id is not None) + int(eos_id is not None)
        if max_len < extra + 1:
            raise ValueError(f"max_len must be at least {extra + 1}")
        self.max_len = int(max_len)
        self.pad_id = int(pad_id)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.too_long = too_long
        arrays, self.encoded = _as_arrays(sequences)
        names = self.encoded.ids if self.encoded is not None else None
        self.rejected: list[tuple[int, str | None, int]] = []
        self.num_truncated = 0
        kept: list[np.ndarray] = []
        self.kept_positions: list[int] = []
        body_max = self.max_len - extra
        for k, a in enumerate(arrays):
            name = names[k] if names is not None else None
            if len(a) > body_max:
                if too_long == "error":
                    src = self.encoded.sources[k] if self.encoded is not None else None
                    raise DataError(
                        f"record has {len(a)} tokens, more than max_len={self.max_len}"
                        + (f" minus {extra} for BOS/EOS" if extra else ""),
                        path=src,
                        record=name if name is not None else k + 1,
                    )
                if too_long == "reject":
                    self.rejected.append((k, name, len(a)))
                    continue
                a = a[:body_max]
                self.num_truncated += 1
            parts = [a.astype(np.int64)]
            if bos_id is not None:
                parts.insert(0, np.array([bos_id], dtype=np.int64))
            if eos_id is not None:
                parts.append(np.array([eos_id], dtype=np.int64))
            kept.append(np.concatenate(parts) if len(parts) > 1 else parts[0])
            self.kept_positions.append(k)
        if self.rejected:
            log.warning("PaddedDataset: %d record(s) longer than max_len=%d rejected", len(self.rejected), self.max_len)
        self.lengths = np.array([len(a) for a in kept], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        max_id = max([int(a.max()) for a in kept if a.size] + [0])
        self.flat = (
            np.concatenate(kept).astype(_storage_dtype(max_id)) if kept else np.zeros(0, dtype=np.uint8)
        )
        self._rc = _RCAugment(rc_augment, rc_prob, complement, seed)
        self.epoch = 0

    @classmethod
    def from_records(
        cls,
        records: Iterable[Record],
        tokenizer: Tokenizer,
        max_len: int,
        *,
        skip_invalid: bool = False,
        check_smiles: bool = False,
        **kwargs: Any,
    ) -> "PaddedDataset":
        """Encode ``records`` and build the dataset; ``pad_id``, BOS/EOS (if
        the tokenizer uses them) and the complement table come from
        ``tokenizer``.  Skipped records are in ``dataset.encoded.skipped``."""
        enc = encode_records(records, tokenizer, skip_invalid=skip_invalid, check_smiles=check_smiles)
        kwargs.setdefault("bos_id", tokenizer.bos_id)
        kwargs.setdefault("eos_id", tokenizer.eos_id)
        kwargs["complement"] = _complement_from_tokenizer(tokenizer, kwargs.get("rc_augment", False), kwargs.get("complement"))
        return cls(enc, max_len, tokenizer.pad_id, **kwargs)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        tokenizer: Tokenizer,
        max_len: int,
        *,
        format: str | None = None,
        reader_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> "PaddedDataset":
        """Read ``path`` (see :func:`read_records`) and build the dataset."""
        return cls.from_records(read_records(path, format, **(reader_kwargs or {})), tokenizer, max_len, **kwargs)

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self.epoch = int(epoch)

    def sequence(self, i: int) -> np.ndarray:
        """The unpadded ids of row ``i`` (without augmentation)."""
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def __getitem__(self, i: int) -> torch.Tensor:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)} rows")
        seq = self.sequence(i)
        row = np.full(self.max_len, self.pad_id, dtype=np.int64)
        row[: len(seq)] = seq
        n = len(seq)
        if self._rc.enabled:
            # keep BOS/EOS in place: only reverse the body
            lo = int(self.bos_id is not None)
            hi = n - int(self.eos_id is not None)
            body = self._rc(row[lo:hi].copy(), hi - lo, i, self.epoch)
            row[lo:hi] = body
        return _to_long(row)

    def length_histogram(self, max_len: int | None = None) -> np.ndarray:
        """``hist[L]`` = number of rows with exactly ``L`` real tokens, for
        ``L = 0 .. max_len`` (default ``self.max_len``)."""
        m = self.max_len if max_len is None else int(max_len)
        return np.bincount(np.minimum(self.lengths, m), minlength=m + 1)[: m + 1]


# ------------------------------------------------------------ streaming
class StreamingWindowDataset(IterableDataset):
    """Windows over a corpus read lazily and tokenised on the fly.

    Yields exactly the windows :class:`WindowDataset` would build from the
    same records, in the same order (when ``shuffle_buffer=0``), without
    holding the corpus in memory.

    Sharding: window ``k`` goes to shard ``k mod S`` where
    ``S = num_shards * num_workers`` and this iterator's shard is
    ``shard_index * num_workers + worker_id``; so DataLoader workers (and
    distributed ranks, via ``num_shards``/``shard_index``) see disjoint
    windows that together cover every window once.  Each worker reads and
    tokenises the whole stream but only materialises its own windows, so
    this scales the per-window work, not the file reading.

    Args:
        source: a file path, a list of paths (read in order), or a
            zero-argument callable returning an iterable of :class:`Record`.
        tokenizer: used to encode each record.
        seq_len, stride, separator_id, drop_last: as for :class:`WindowDataset`
            (``pad_id`` is the tokenizer's).
        format, reader_kwargs: passed to :func:`read_records` for paths (use
            ``reader_kwargs={"mode": "chunks"}`` for single-line text corpora).
        skip_invalid, check_smiles: as for :func:`encode_records`; skipped
            records are logged and, in the main process, listed in
            :attr:`skipped` after an epoch.
        shuffle_buffer: if > 0, windows are shuffled through a buffer of this
            size (seeded by ``seed``, the epoch and the shard).
        rc_augment, rc_prob: reverse-complement augmentation seeded by
            ``seed``, the epoch and the global window index (so it matches
            :class:`WindowDataset`).
        seed: seed for shuffling and augmentation.
        num_shards, shard_index: distributed sharding (e.g. world size, rank).
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike] | Callable[[], Iterable[Record]],
        tokenizer: Tokenizer,
        seq_len: int,
        *,
        stride: int | None = None,
        separator_id: int | None = None,
        drop_last: bool = True,
        format: str | None = None,
        reader_kwargs: dict[str, Any] | None = None,
        skip_invalid: bool = False,
        check_smiles: bool = False,
        shuffle_buffer: int = 0,
        rc_augment: bool = False,
        rc_prob: float = 0.5,
        seed: int = 0,
        num_shards: int = 1,
        shard_index: int = 0,
    ) -> None:
        super().__init__()
        if seq_len < 1:
            raise ValueError("seq_len must be >= 1")
        if not 0 <= shard_index < num_shards:
            raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
        self.source = source
        self.tokenizer = tokenizer
        self.seq_len = int(seq_len)
        self.stride = int(stride) if stride is not None else self.seq_len
        if self.stride < 1:
            raise ValueError("stride must be >= 1")
        self.separator_id = separator_id
        self.drop_last = bool(drop_last)
        self.pad_id = tokenizer.pad_id
        self.format = format
        self.reader_kwargs = dict(reader_kwargs or {})
        self.skip_invalid = skip_invalid
        self.check_smiles = check_smiles
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.num_shards = int(num_shards)
        self.shard_index = int(shard_index)
        complement = _complement_from_tokenizer(tokenizer, rc_augment, None)
        self._rc = _RCAugment(rc_augment, rc_prob, complement, seed)
        self.epoch = 0
        self.skipped: list[SkippedRecord] = []

    def set_epoch(self, epoch: int) -> None:
        """Change shuffling/augmentation for a new epoch."""
        self.epoch = int(epoch)

    def _records(self) -> Iterator[Record]:
        src = self.source
        if callable(src):
            yield from src()
            return
        paths = [src] if isinstance(src, (str, os.PathLike)) else list(src)
        for p in paths:
            yield from read_records(p, self.format, **self.reader_kwargs)

    def _windows(self, skipped: list[SkippedRecord]) -> Iterator[tuple[int, np.ndarray, int]]:
        """All windows of the stream as ``(global index, window, n_real)``."""
        L, stride = self.seq_len, self.stride
        buf = np.zeros(0, dtype=np.int64)
        buf_start = 0  # absolute stream offset of buf[0]
        next_start = 0
        k = 0
        first = True
        sep = None if self.separator_id is None else np.array([self.separator_id], dtype=np.int64)
        for _, arr in iter_encode_records(
            self._records(),
            self.tokenizer,
            skip_invalid=self.skip_invalid,
            check_smiles=self.check_smiles,
            skipped=skipped,
        ):
            piece = arr.astype(np.int64)
            if sep is not None and not first:
                piece = np.concatenate([sep, piece])
            first = False
            buf = np.concatenate([buf, piece])
            end = buf_start + len(buf)
            while next_start + L <= end:
                o = next_start - buf_start
                yield k, buf[o : o + L], L
                k += 1
                next_start += stride
            drop = min(next_start - buf_start, len(buf))
            if drop > 0:
                buf = buf[drop:]
                buf_start += drop
        end = buf_start + len(buf)
        if not self.drop_last and next_start < end:
            o = next_start - buf_start
            tail = buf[o:]
            w = np.concatenate([tail, np.full(L - len(tail), self.pad_id, dtype=np.int64)])
            yield k, w, len(tail)

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        num_workers = info.num_workers if info is not None else 1
        worker_id = info.id if info is not None else 0
        total = self.num_shards * num_workers
        shard = self.shard_index * num_workers + worker_id
        epoch = self.epoch
        skipped: list[SkippedRecord] = []
        buffer: list[torch.Tensor] = []
        rng_state = _mix(self.seed, epoch, shard, 0x5F)
        counter = 0

        def rand_index(n: int) -> int:
            nonlocal counter
            counter += 1
            return _mix(rng_state, counter) % n

        for k, w, n_real in self._windows(skipped):
            if k % total != shard:
                continue
            item = _to_long(self._rc(w, n_real, k, epoch))
            if self.shuffle_buffer <= 0:
                yield item
                continue
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            j = rand_index(len(buffer))
            out, buffer[j] = buffer[j], item
            yield out
        while buffer:
            j = rand_index(len(buffer))
            buffer[j], buffer[-1] = buffer[-1], buffer[j]
            yield buffer.pop()
        if skipped:
            log.warning("StreamingWindowDataset shard %d: %d record(s) skipped", shard, len(skipped))
        if info is None:
            self.skipped = skipped
