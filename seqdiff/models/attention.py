"""Attention backends behind one switch.

Backends
--------
``"sdpa"``
    :func:`torch.nn.functional.scaled_dot_product_attention`. Default on CPU and GPU.
``"flash"``
    flash-attn's ``flash_attn_varlen_func`` (or ``flash_attn_func`` when there is no
    padding). Needs ``import flash_attn`` to work and CUDA tensors in fp16/bf16; the
    padded batch is unpadded into the ``cu_seqlens`` form, run, and re-padded.
    Asking for it when it cannot run raises :class:`AttentionBackendError`.
``"reference"``
    Plain ``softmax(Q K^T / sqrt(d) + mask) V`` computed in float32. Slow; for tests.
``"auto"``
    ``"flash"`` when flash-attn is importable and the tensors are CUDA fp16/bf16 with a
    supported head size, otherwise ``"sdpa"`` (silently).

Layout: every backend takes ``q, k, v`` as ``[b, l, h, d]`` (batch, length, heads,
head dim) and returns ``[b, l, h, d]`` in the dtype of ``q``.

Masks: ``pad_mask`` is a ``BoolTensor[b, l]`` with ``True`` for real tokens. Real
queries attend only to real keys (and, if ``causal``, only to keys at positions
``<= query``). The output rows of padded queries are set to exactly zero on every
backend, so they are finite and identical across backends; a row made only of
padding therefore produces zeros rather than NaN.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

__all__ = [
    "BACKENDS",
    "AttentionBackendError",
    "AttentionContext",
    "attention",
    "attention_backends_available",
    "check_backend",
    "flash_attn_available",
    "resolve_backend",
]

BACKENDS: tuple[str, ...] = ("sdpa", "flash", "reference", "auto")


class AttentionBackendError(RuntimeError):
    """Raised when an attention backend is unknown or cannot run on the given inputs."""


_FLASH_IMPORT: tuple[ModuleType | None, str] | None = None


def _import_flash_attn() -> tuple[ModuleType | None, str]:
    """Import flash-attn once. Returns ``(module or None, reason it failed)``.

    A plain module-level cache (not ``functools.lru_cache``): once filled, ``torch.compile``
    reads it as a constant instead of tracing the import (a graph break). Models call
    :func:`check_backend` at construction, which fills it before any forward is compiled.
    """
    global _FLASH_IMPORT
    if _FLASH_IMPORT is None:
        try:
            import flash_attn  # type: ignore[import-not-found]
            from flash_attn import flash_attn_func, flash_attn_varlen_func  # noqa: F401
        except Exception as exc:  # ImportError, or a broken CUDA extension (OSError...)
            _FLASH_IMPORT = (None, f"{type(exc).__name__}: {exc}")
        else:
            _FLASH_IMPORT = (flash_attn, "")
    return _FLASH_IMPORT


def _load_flash_attn() -> ModuleType | None:
    """The flash-attn module, or ``None`` when it cannot be imported (tests patch this)."""
    return _import_flash_attn()[0]


def flash_attn_available() -> bool:
    """True when ``import flash_attn`` works and a CUDA device is visible."""
    return _load_flash_attn() is not None and torch.cuda.is_available()


def attention_backends_available() -> dict[str, bool]:
    """Which backends can run in this process, e.g. ``{"sdpa": True, "flash": False, ...}``.

    ``"flash"`` is True only when flash-attn imports and CUDA is available (it still
    needs fp16/bf16 tensors at call time). ``"auto"`` is always usable.
    """
    return {"sdpa": True, "flash": flash_attn_available(), "reference": True, "auto": True}


def _flash_missing_message() -> str:
    reason = _import_flash_attn()[1] or "module patched out"
    return (
        "attention backend 'flash' was requested but flash-attn cannot be imported "
        f"({reason}). Install it with `pip install flash-attn --no-build-isolation` on a "
        "CUDA machine, or use attn_backend='auto' (falls back to 'sdpa') or 'sdpa'."
    )


def check_backend(name: str) -> None:
    """Validate a backend name at construction time.

    Raises :class:`AttentionBackendError` for an unknown name, or for ``"flash"`` when
    flash-attn is not importable (a clear early error instead of one at the first step).
    """
    if name not in BACKENDS:
        raise AttentionBackendError(f"unknown attention backend {name!r}; choose one of {BACKENDS}")
    if name in ("flash", "auto"):
        _import_flash_attn()  # settle the import now, outside any compiled forward
    if name == "flash" and _load_flash_attn() is None:
        raise AttentionBackendError(_flash_missing_message())


def _flash_can_run(q: torch.Tensor) -> bool:
    head_dim = q.shape[-1]
    return (
        q.is_cuda
        and q.dtype in (torch.float16, torch.bfloat16)
        and head_dim % 8 == 0
        and head_dim <= 256
    )


def resolve_backend(name: str, q: torch.Tensor) -> str:
    """Map a requested backend to the one that will run for query tensor ``q`` ``[b l h d]``.

    ``"auto"`` becomes ``"flash"`` or ``"sdpa"``; ``"flash"`` raises
    :class:`AttentionBackendError` when flash-attn is missing or ``q`` is not a CUDA
    fp16/bf16 tensor with a head size flash-attn supports.
    """
    if name not in BACKENDS:
        raise AttentionBackendError(f"unknown attention backend {name!r}; choose one of {BACKENDS}")
    if name == "auto":
        return "flash" if (_load_flash_attn() is not None and _flash_can_run(q)) else "sdpa"
    if name == "flash":
        if _load_flash_attn() is None:
            raise AttentionBackendError(_flash_missing_message())
        if not _flash_can_run(q):
            raise AttentionBackendError(
                "attention backend 'flash' needs CUDA tensors in float16/bfloat16 with head "
                f"dim a multiple of 8 and <= 256; got device={q.device}, dtype={q.dtype}, "
                f"head_dim={q.shape[-1]}. Run under torch.autocast('cuda', dtype=torch.bfloat16) "
                "or use attn_backend='auto'."
            )
    return name


@dataclass
class AttentionContext:
    """Per-forward attention settings, shared by all layers of a model.

    Build one per forward pass; the masks (dense ``[b 1 l l]`` for sdpa/reference, or
    unpadding indices for flash) are computed on first use and reused by every layer.

    Args:
        pad_mask: ``BoolTensor[b, l]``, True = real token, or None (no padding).
        causal: mask keys at positions after the query.
        backend: one of :data:`BACKENDS`.
    """

    pad_mask: torch.Tensor | None = None
    causal: bool = False
    backend: str = "sdpa"
    _resolved: str | None = field(default=None, repr=False)
    _dense: torch.Tensor | None = field(default=None, repr=False)
    _varlen: tuple[torch.Tensor, torch.Tensor, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise AttentionBackendError(
                f"unknown attention backend {self.backend!r}; choose one of {BACKENDS}"
            )
        if self.pad_mask is not None:
            if self.pad_mask.dim() != 2:
                raise ValueError(f"pad_mask must be [b, l], got shape {tuple(self.pad_mask.shape)}")
            self.pad_mask = self.pad_mask.to(torch.bool)

    def resolved(self, q: torch.Tensor) -> str:
        """The backend that runs for ``q`` (memoised after the first layer)."""
        if self._resolved is None:
            self._resolved = resolve_backend(self.backend, q)
        return self._resolved

    def dense_mask(self, length: int, device: torch.device) -> torch.Tensor | None:
        """Boolean ``[b, 1, l, l]`` mask (True = may attend) or None when no mask is needed.

        Padded query rows are allowed to attend to every key so that no row is empty
        (their outputs are zeroed afterwards).
        """
        if self.pad_mask is None:
            return None  # causal handled by is_causal / tril
        if self._dense is None:
            keep = self.pad_mask.to(device)
            allowed = keep[:, None, None, :]  # b 1 1 l
            if self.causal:
                tril = torch.ones(length, length, dtype=torch.bool, device=device).tril()
                allowed = allowed & tril  # b 1 l l
            allowed = allowed | ~keep[:, None, :, None]  # padded query rows: anything
            self._dense = allowed.expand(keep.shape[0], 1, length, length)
        return self._dense

    def varlen(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(indices of real tokens in the flattened b*l axis, cu_seqlens int32 [b+1], max_seqlen)``."""
        assert self.pad_mask is not None
        if self._varlen is None:
            keep = self.pad_mask
            seqlens = keep.sum(dim=-1, dtype=torch.int32)
            indices = torch.nonzero(keep.flatten(), as_tuple=False).flatten()
            cu_seqlens = F.pad(torch.cumsum(seqlens, dim=0, dtype=torch.int32), (1, 0))
            self._varlen = (indices, cu_seqlens, int(seqlens.max().item()) if keep.numel() else 0)
        return self._varlen


def _zero_padded_rows(out: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """Set output rows of padded queries to zero. ``out``: ``[b l h d]``."""
    if pad_mask is None:
        return out
    return out.masked_fill(~pad_mask[:, :, None, None], 0.0)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
    length = q.shape[1]
    q_, k_, v_ = (rearrange(x, "b l h d -> b h l d") for x in (q, k, v))
    mask = ctx.dense_mask(length, q.device)
    if mask is None:
        out = F.scaled_dot_product_attention(q_, k_, v_, is_causal=ctx.causal)
    else:
        out = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask)
    out = rearrange(out, "b h l d -> b l h d")
    return _zero_padded_rows(out, ctx.pad_mask)


def _reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext
) -> torch.Tensor:
    length = q.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1])
    qf, kf, vf = q.float(), k.float(), v.float()
    scores = torch.einsum("bqhd,bkhd->bhqk", qf, kf) * scale  # b h l l
    mask = ctx.dense_mask(length, q.device)
    if mask is None and ctx.causal:
        mask = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("bhqk,bkhd->bqhd", probs, vf)
    return _zero_padded_rows(out, ctx.pad_mask).to(q.dtype)


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
    fa: Any = _load_flash_attn()
    batch, length, heads, dim = q.shape
    if ctx.pad_mask is None:
        return fa.flash_attn_func(q, k, v, dropout_p=0.0, causal=ctx.causal)
    indices, cu_seqlens, max_seqlen = ctx.varlen()
    if indices.numel() == 0:  # nothing but padding
        return torch.zeros_like(q)
    q_, k_, v_ = (x.reshape(batch * length, heads, dim).index_select(0, indices) for x in (q, k, v))
    out_unpadded = fa.flash_attn_varlen_func(
        q_, k_, v_, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, dropout_p=0.0, causal=ctx.causal
    )  # (total h d)
    out = out_unpadded.new_zeros(batch * length, heads, dim)
    out = out.index_copy(0, indices, out_unpadded)
    return out.view(batch, length, heads, dim)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pad_mask: torch.Tensor | None = None,
    causal: bool = False,
    backend: str = "sdpa",
    ctx: AttentionContext | None = None,
) -> torch.Tensor:
    """Multi-head attention through the chosen backend.

    Args:
        q, k, v: ``[b, l, h, d]``.
        pad_mask: ``BoolTensor[b, l]`` (True = real token) or None. Ignored if ``ctx``.
        causal: causal masking. Ignored if ``ctx`` is given.
        backend: ``"sdpa" | "flash" | "reference" | "auto"``. Ignored if ``ctx``.
        ctx: a prepared :class:`AttentionContext` (lets several layers share masks).

    Returns:
        ``[b, l, h, d]`` in ``q.dtype``; rows of padded queries are zero.
    """
    if ctx is None:
        ctx = AttentionContext(pad_mask=pad_mask, causal=causal, backend=backend)
    if q.dim() != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"q, k, v must be [b, l, h, d] with equal shapes; got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if ctx.pad_mask is not None and tuple(ctx.pad_mask.shape) != tuple(q.shape[:2]):
        raise ValueError(
            f"pad_mask shape {tuple(ctx.pad_mask.shape)} does not match [b, l]={tuple(q.shape[:2])}"
        )
    name = ctx.resolved(q)
    if name == "flash":
        return _flash(q, k, v, ctx)
    if name == "reference":
        return _reference(q, k, v, ctx)
    return _sdpa(q, k, v, ctx)
