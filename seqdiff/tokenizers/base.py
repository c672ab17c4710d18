"""Tokenizer interface shared by every sequence domain.

Id layout (the diffusion core and the networks rely on it)::

    0 .. n-1   data tokens            (n = num_data_tokens)
    n          mask_id                (absorbing state of the absorbing process)
    n + 1      pad_id                 (never diffused; held fixed, attention-masked)
    n + 2      bos_id                 (only if the tokenizer uses BOS/EOS)
    n + 3      eos_id                 (only if the tokenizer uses BOS/EOS)

``vocab_size`` is the total number of ids.  ``encode`` only ever returns data
ids (``0 .. n-1``); :meth:`Tokenizer.add_special` wraps a sequence with
BOS/EOS when the tokenizer is configured to use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np

__all__ = [
    "Tokenizer",
    "TokenizerError",
    "register_tokenizer",
    "tokenizer_from_dict",
    "registered_kinds",
    "registered_class",
    "id_dtype",
]


class TokenizerError(ValueError):
    """Raised when a text cannot be encoded.

    Attributes:
        reason: what is wrong, e.g. ``"invalid character 'J' for DNA"``.
        record: name of the record being encoded (``None`` if not given).
        position: 1-based position of the offending character/token in the
            input text (``None`` when the problem concerns the whole text).
        token: the offending character or token string (``None`` if n/a).
    """

    def __init__(
        self,
        reason: str,
        *,
        record: str | None = None,
        position: int | None = None,
        token: str | None = None,
    ) -> None:
        self.reason = reason
        self.record = record
        self.position = position
        self.token = token
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.record is not None:
            parts.append(f"record {self.record!r}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        prefix = " ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def __reduce__(self):  # keep keyword attributes when pickled (DataLoader workers)
        return (_rebuild_tokenizer_error, (self.reason, self.record, self.position, self.token))


def _rebuild_tokenizer_error(reason, record, position, token) -> TokenizerError:
    return TokenizerError(reason, record=record, position=position, token=token)


_REGISTRY: dict[str, type["Tokenizer"]] = {}


def register_tokenizer(kind: str) -> Callable[[type["Tokenizer"]], type["Tokenizer"]]:
    """Class decorator registering a tokenizer class under ``kind``.

    The kind string is stored in :meth:`Tokenizer.to_dict` so that the
    tokenizer can be rebuilt from a checkpoint with :func:`tokenizer_from_dict`.
    """

    def deco(cls: type[Tokenizer]) -> type[Tokenizer]:
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ValueError(f"tokenizer kind {kind!r} is already registered to {_REGISTRY[kind].__name__}")
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return deco


def registered_class(kind: str) -> type["Tokenizer"] | None:
    """The class registered under ``kind``; a domain's own tokenizer module registers when the domain
    registry is first read, so an unknown kind loads the domains once before giving up."""
    if kind not in _REGISTRY:
        from ..domains import domains

        domains()
    return _REGISTRY.get(kind)


def registered_kinds() -> list[str]:
    """Names of all registered tokenizer kinds."""
    return sorted(_REGISTRY)


def tokenizer_from_dict(d: dict[str, Any]) -> "Tokenizer":
    """Rebuild a tokenizer from the output of :meth:`Tokenizer.to_dict`."""
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError("tokenizer dict must be a mapping with a 'kind' entry")
    kind = d["kind"]
    cls = registered_class(kind)
    if cls is None:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known kinds: {registered_kinds()}")
    return cls._from_config(dict(d))


def id_dtype(vocab_size: int) -> np.dtype:
    """Smallest numpy unsigned integer dtype able to hold ids ``< vocab_size``."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int64)


def _as_id_list(ids: Any) -> list[int]:
    """Accept a list/tuple of ints, a numpy array or a 1-D torch tensor."""
    if hasattr(ids, "tolist"):
        if getattr(ids, "ndim", 1) != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}")
        out = ids.tolist()
    else:
        out = list(ids)
    return [int(i) for i in out]


class Tokenizer(ABC):
    """Abstract tokenizer mapping strings to data ids and back.

    Subclasses implement :attr:`tokens`, :meth:`_scan` (tokenise + collect
    problems), :meth:`_detokenize` and :meth:`_config`.

    Args:
        use_bos_eos: reserve ``bos_id = n+2`` and ``eos_id = n+3``.
        mask_placeholder: string used by :meth:`decode` for ``mask_id``.
    """

    kind: ClassVar[str] = ""
    #: the data token that means "no call" in a read (DNA ``N``, protein ``X``): sequence correction
    #: counts it as no observation and never outputs it
    no_call_token: ClassVar[str | None] = None

    def __init__(self, *, use_bos_eos: bool = False, mask_placeholder: str = "_") -> None:
        self.use_bos_eos = bool(use_bos_eos)
        self.mask_placeholder = str(mask_placeholder)

    # ------------------------------------------------------------------ ids
    @property
    @abstractmethod
    def tokens(self) -> list[str]:
        """Token strings for data ids ``0 .. n-1`` (index = id)."""

    @property
    def no_call_ids(self) -> list[int]:
        """Ids of :attr:`no_call_token` (empty when the alphabet has none)."""
        tok = self.no_call_token
        return [self.tokens.index(tok)] if tok is not None and tok in self.tokens else []

    @property
    def num_data_tokens(self) -> int:
        """Number of regular (data) tokens ``n``."""
        return len(self.tokens)

    @property
    def mask_id(self) -> int:
        """Id of the mask (absorbing) token: ``n``."""
        return self.num_data_tokens

    @property
    def pad_id(self) -> int:
        """Id of the padding token: ``n + 1``."""
        return self.num_data_tokens + 1

    @property
    def bos_id(self) -> int | None:
        """``n + 2`` if BOS/EOS are used, else ``None``."""
        return self.num_data_tokens + 2 if self.use_bos_eos else None

    @property
    def eos_id(self) -> int | None:
        """``n + 3`` if BOS/EOS are used, else ``None``."""
        return self.num_data_tokens + 3 if self.use_bos_eos else None

    @property
    def vocab_size(self) -> int:
        """Total number of ids (data + mask + pad [+ bos + eos])."""
        return self.num_data_tokens + (4 if self.use_bos_eos else 2)

    @property
    def special_ids(self) -> dict[str, int]:
        """Mapping of special-token names to ids."""
        out = {"mask": self.mask_id, "pad": self.pad_id}
        if self.use_bos_eos:
            out["bos"] = self.bos_id  # type: ignore[assignment]
            out["eos"] = self.eos_id  # type: ignore[assignment]
        return out

    def token_to_id(self, token: str) -> int:
        """Id of a data token string (``KeyError`` if unknown)."""
        lookup = self.__dict__.get("_token_index_cache")
        if lookup is None:
            lookup = {t: i for i, t in enumerate(self.tokens)}
            self.__dict__["_token_index_cache"] = lookup
        return lookup[token]

    def id_to_token(self, idx: int) -> str:
        """String for any id; special ids render as ``<mask>``, ``<pad>``, ..."""
        idx = int(idx)
        n = self.num_data_tokens
        if 0 <= idx < n:
            return self.tokens[idx]
        names = {v: k for k, v in self.special_ids.items()}
        if idx in names:
            return f"<{names[idx]}>"
        raise ValueError(f"id {idx} out of range for vocab_size {self.vocab_size}")

    # ------------------------------------------------------------ encoding
    @abstractmethod
    def _scan(self, text: str, max_problems: int | None) -> tuple[list[int], list[tuple[int | None, str | None, str]]]:
        """Tokenise ``text``.

        Returns ``(ids, problems)`` where each problem is
        ``(1-based position or None, offending token or None, reason)``.
        Scanning stops after ``max_problems`` problems (``None`` = no limit).
        """

    def _prepare(self, text: str) -> str:
        """Hook run before scanning.  May only drop *trailing* characters
        (e.g. a protein stop ``*``) so that reported positions stay valid."""
        return text

    def encode(self, text: str, *, name: str | None = None) -> list[int]:
        """Encode ``text`` to data ids ``0 .. n-1``.

        Raises:
            TokenizerError: naming ``name``, the 1-based position and the
                offending character/token of the first problem.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__}")
        ids, problems = self._scan(self._prepare(text), 1)
        if problems:
            pos, tok, reason = problems[0]
            raise TokenizerError(reason, record=name, position=pos, token=tok)
        return ids

    def encode_array(self, text: str, *, name: str | None = None) -> np.ndarray:
        """Like :meth:`encode` but returns a numpy array of the smallest
        unsigned dtype that holds ``vocab_size`` ids (see :func:`id_dtype`)."""
        return np.asarray(self.encode(text, name=name), dtype=id_dtype(self.vocab_size))

    def validate(self, text: str, *, name: str | None = None, max_problems: int | None = 100) -> list[TokenizerError]:
        """Return the problems that :meth:`encode` would hit, without raising.

        An empty list means the text encodes cleanly.  At most
        ``max_problems`` problems are reported (``None`` = all).
        """
        _, problems = self._scan(self._prepare(text), max_problems)
        return [TokenizerError(r, record=name, position=p, token=t) for p, t, r in problems]

    def is_valid(self, text: str) -> bool:
        """``True`` if ``text`` encodes without error."""
        return not self._scan(self._prepare(text), 1)[1]

    def is_valid_char(self, ch: str) -> bool:
        """Whether a single input character is acceptable on its own.

        Character-level tokenizers override this with an exact alphabet test;
        the default tries to encode the character alone.
        """
        return len(ch) == 1 and self.is_valid(ch)

    @property
    def alphabet(self) -> list[str]:
        """Input characters/tokens accepted (for UIs); defaults to :attr:`tokens`."""
        return list(self.tokens)

    def add_special(self, ids: Sequence[int]) -> list[int]:
        """Wrap data ids with BOS/EOS (requires ``use_bos_eos=True``)."""
        if not self.use_bos_eos:
            raise ValueError(f"{type(self).__name__} was built with use_bos_eos=False")
        return [self.bos_id, *[int(i) for i in ids], self.eos_id]  # type: ignore[list-item]

    def batch_encode(self, texts: Iterable[str], *, names: Sequence[str | None] | None = None) -> list[list[int]]:
        """Encode several texts; ``names`` (same length) label errors."""
        texts = list(texts)
        if names is not None and len(names) != len(texts):
            raise ValueError(f"got {len(names)} names for {len(texts)} texts")
        return [self.encode(t, name=None if names is None else names[i]) for i, t in enumerate(texts)]

    # ------------------------------------------------------------ decoding
    @abstractmethod
    def _detokenize(self, data_ids: list[int]) -> str:
        """Join a run of data ids (all in ``0 .. n-1``) into a string."""

    def decode(self, ids: Any, *, mask_placeholder: str | None = None) -> str:
        """Decode ids to a string.

        Pad (and BOS/EOS) ids are skipped; ``mask_id`` is rendered as
        ``mask_placeholder`` (default: the tokenizer's ``mask_placeholder``).
        Accepts a list/tuple, numpy array or 1-D tensor.
        """
        placeholder = self.mask_placeholder if mask_placeholder is None else mask_placeholder
        n = self.num_data_tokens
        vs = self.vocab_size
        pieces: list[str] = []
        run: list[int] = []
        for i in _as_id_list(ids):
            if 0 <= i < n:
                run.append(i)
            elif i == n:  # mask
                if run:
                    pieces.append(self._detokenize(run))
                    run = []
                pieces.append(placeholder)
            elif n < i < vs:  # pad / bos / eos: skipped
                continue
            else:
                raise ValueError(f"id {i} out of range for vocab_size {vs}")
        if run:
            pieces.append(self._detokenize(run))
        return "".join(pieces)

    def batch_decode(self, batch: Any, *, mask_placeholder: str | None = None) -> list[str]:
        """Decode a list of id sequences or a 2-D tensor/array ``[B, L]``."""
        if hasattr(batch, "ndim") and batch.ndim != 2:
            raise ValueError(f"batch_decode expects a 2-D batch, got shape {tuple(batch.shape)}")
        return [self.decode(row, mask_placeholder=mask_placeholder) for row in batch]

    # ------------------------------------------------------- serialisation
    @abstractmethod
    def _config(self) -> dict[str, Any]:
        """Subclass-specific JSON-serialisable constructor arguments."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description, rebuilt by :func:`tokenizer_from_dict`."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "format_version": 1,
            "use_bos_eos": self.use_bos_eos,
            "mask_placeholder": self.mask_placeholder,
        }
        d.update(self._config())
        # redundant, for humans reading a checkpoint and for a consistency check
        d["num_data_tokens"] = self.num_data_tokens
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tokenizer":
        """Rebuild a tokenizer from :meth:`to_dict` output.

        Called on the base class it dispatches on ``d["kind"]``; called on a
        subclass it checks the kind matches.
        """
        tok = tokenizer_from_dict(d)
        if cls is not Tokenizer and not isinstance(tok, cls):
            raise ValueError(f"dict describes a {type(tok).__name__}, not a {cls.__name__}")
        return tok

    @classmethod
    def _from_config(cls, d: dict[str, Any]) -> "Tokenizer":
        d.pop("kind", None)
        d.pop("format_version", None)
        expected_n = d.pop("num_data_tokens", None)
        tok = cls(**d)
        if expected_n is not None and tok.num_data_tokens != expected_n:
            raise ValueError(
                f"rebuilt {cls.__name__} has {tok.num_data_tokens} data tokens, dict says {expected_n}"
            )
        return tok

    # --------------------------------------------------------------- misc
    def info(self) -> dict[str, Any]:
        """Summary for UIs: kind, sizes, special ids and tokens."""
        return {
            "kind": self.kind,
            "num_data_tokens": self.num_data_tokens,
            "vocab_size": self.vocab_size,
            "special_ids": self.special_ids,
            "tokens": list(self.tokens),
        }

    def __len__(self) -> int:
        return self.vocab_size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.kind, self.num_data_tokens))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_data_tokens={self.num_data_tokens}, vocab_size={self.vocab_size})"


class CharLevelTokenizer(Tokenizer):
    """Helper base for tokenizers where one input character is one token.

    Subclasses call :meth:`_set_alphabet` with the token characters and may
    override :meth:`_map_char` to normalise/reject individual characters.
    """

    def _set_alphabet(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"alphabet entries must be single characters, got {c!r}")
        dup = sorted({c for c in chars if chars.count(c) > 1})
        if dup:
            raise ValueError(f"alphabet has duplicate characters: {dup}")
        self._chars = chars
        self._index = {c: i for i, c in enumerate(chars)}
        self._lut = None  # built lazily (subclasses may change _map_char behaviour in __init__)

    def _build_lut(self) -> np.ndarray:
        lut = np.full(256, -1, dtype=np.int64)
        for cp in range(256):
            ch = chr(cp)
            idx = self._index.get(ch)
            if idx is None:
                res = self._map_char(ch)
                idx = -1 if isinstance(res, str) else res
            lut[cp] = idx
        return lut

    def _fast_encode(self, text: str) -> np.ndarray | None:
        """Vectorised encoding for texts whose characters are all < U+0100;
        returns ``None`` if the text has any problem (slow path reports it)."""
        if self._lut is None:
            self._lut = self._build_lut()
        text = self._prepare(text)
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            return None
        ids = self._lut[np.frombuffer(raw, dtype=np.uint8)]
        if ids.size and int(ids.min()) < 0:
            return None
        return ids

    def encode(self, text: str, *, name: str | None = None) -> list[int]:
        if isinstance(text, str) and len(text) > 64:
            fast = self._fast_encode(text)
            if fast is not None:
                return fast.tolist()
        return super().encode(text, name=name)

    def encode_array(self, text: str, *, name: str | None = None) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__}")
        fast = self._fast_encode(text)
        if fast is not None:
            return fast.astype(id_dtype(self.vocab_size))
        return super().encode_array(text, name=name)

    @property
    def tokens(self) -> list[str]:
        return list(self._chars)

    def _map_char(self, ch: str) -> int | str:
        """Return the id for ``ch`` or a reason string if it is invalid."""
        idx = self._index.get(ch)
        if idx is None:
            return f"invalid character {ch!r}"
        return idx

    def _scan(self, text, max_problems):
        ids: list[int] = []
        problems: list[tuple[int | None, str | None, str]] = []
        index = self._index
        for pos, ch in enumerate(text, start=1):
            idx = index.get(ch)
            if idx is None:
                res = self._map_char(ch)
                if isinstance(res, str):
                    problems.append((pos, ch, res))
                    if max_problems is not None and len(problems) >= max_problems:
                        break
                    continue
                idx = res
            ids.append(idx)
        return ids, problems

    def _detokenize(self, data_ids):
        chars = self._chars
        return "".join(chars[i] for i in data_ids)

    def is_valid_char(self, ch: str) -> bool:
        if len(ch) != 1:
            return False
        return ch in self._index or not isinstance(self._map_char(ch), str)
