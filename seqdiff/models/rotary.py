"""Rotary position embeddings (RoPE, Su et al. 2021).

Channel pairs ``(2i, 2i+1)`` of each head are rotated by the angle ``pos * base^(-2i/d)``
(the original interleaved layout). Applied to queries and keys only, so that the
attention score ``q_m . k_n`` depends on the positions only through ``m - n``.

A rotation of the pair ``(a, b)`` by ``θ`` is the complex product ``(a + ib) e^{iθ}``, so the
networks view each pair as one complex number and rotate queries and keys together with a
single complex multiply (:func:`apply_rotary_complex`, float32 arithmetic: there is no bf16
complex type, and rotating in bf16 would lose the position signal of long sequences).
:func:`apply_rotary_reference` is the same rotation written out in real arithmetic; it is kept
as the test and benchmark reference.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

__all__ = ["RotaryEmbedding", "apply_rotary", "apply_rotary_complex", "apply_rotary_reference", "rotary_phases"]


class RotaryEmbedding(nn.Module):
    """Cached cos/sin tables for rotary embeddings.

    The tables are computed in float64 then cast, and cached per ``(device, dtype)``;
    a longer request grows the cached table, shorter ones are views (slices) of it, so
    each distinct length/device/dtype costs nothing after the first call. The cache is
    not part of the state dict and is unaffected by ``model.to(dtype)``.

    Args:
        head_dim: per-head channel count ``d`` (must be even).
        base: frequency base (10000 as in the RoPE paper).
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary needs an even head dim, got {head_dim}")
        self.head_dim = head_dim
        self.base = float(base)
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def _build(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.head_dim // 2
        inv_freq = self.base ** (-torch.arange(half, dtype=torch.float64) * 2.0 / self.head_dim)
        angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)  # l d/2
        return angles.cos().to(device=device, dtype=dtype), angles.sin().to(device=device, dtype=dtype)

    def forward(
        self, length: int, device: torch.device | str, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(cos, sin)``, each ``[l, d/2]``, for positions ``0..length-1``."""
        device = torch.device(device)
        key = (device, dtype)
        cached = self._cache.get(key)
        if cached is None or cached[0].shape[0] < length:
            grow = max(length, 2 * cached[0].shape[0]) if cached is not None else length
            cached = self._build(grow, device, dtype)
            self._cache[key] = cached
        cos, sin = cached
        return cos[:length], sin[:length]

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base:g}"


def rotary_phases(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``e^{iθ}`` as a complex64 table ``[l, d/2]`` from the ``(cos, sin)`` tables.

    While ``torch.compile`` traces, the ``(cos, sin)`` pair is returned instead: Inductor generates
    no code for complex tensors (it falls back to eager kernels), while the same rotation written in
    real arithmetic compiles into one fused element-wise kernel. :func:`apply_rotary_complex`
    accepts both forms.
    """
    if torch.compiler.is_compiling():
        return cos, sin
    return torch.complex(cos.float(), sin.float())


def apply_rotary_complex(x: torch.Tensor, phases: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate channel pairs of ``x`` by one complex multiply.

    Args:
        x: ``[..., l, h, d]`` queries and/or keys (e.g. ``[2, b, l, h, d]`` for both at once).
        phases: complex ``[l, d/2]`` from :func:`rotary_phases` (or its ``(cos, sin)`` form
            under ``torch.compile``: the same product in real arithmetic).

    Returns:
        ``x`` rotated, same shape, in ``x.dtype`` (the product is computed in complex64,
        complex128 for float64 input).
    """
    xr = x if x.dtype == torch.float64 else x.float()
    if isinstance(phases, tuple):  # (a + ib)(c + is) = (ac - bs) + i(as + bc)
        c, s_ = (t.to(xr.dtype)[:, None, :] for t in phases)
        a, b = xr.reshape(*x.shape[:-1], x.shape[-1] // 2, 2).unbind(-1)
        return torch.stack((a * c - b * s_, a * s_ + b * c), dim=-1).flatten(-2).to(x.dtype)
    pairs = torch.view_as_complex(xr.reshape(*x.shape[:-1], x.shape[-1] // 2, 2))  # ... l h d/2
    rotated = pairs * phases.to(pairs.dtype)[:, None, :]  # broadcast over heads (and any leading axes)
    return torch.view_as_real(rotated).flatten(-2).to(x.dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of ``x`` (``[b, l, h, d]``) by the ``[l, d/2]`` tables from
    :class:`RotaryEmbedding`; returns ``[b, l, h, d]`` in ``x.dtype`` (rotation in float32)."""
    return apply_rotary_complex(x, rotary_phases(cos, sin))


def apply_rotary_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The rotation in real arithmetic (the implementation before the complex multiply).

    Args:
        x: ``[b, l, h, d]`` queries or keys.
        cos, sin: ``[l, d/2]`` tables from :class:`RotaryEmbedding`.

    Returns:
        ``[b, l, h, d]`` in ``x.dtype`` (the rotation itself runs in float32 or wider).
    """
    compute = torch.promote_types(x.dtype, torch.float32)
    pairs = rearrange(x.to(compute), "b l h (d r) -> b l h d r", r=2)
    even, odd = pairs.unbind(dim=-1)  # b l h d/2
    c = rearrange(cos.to(compute), "l d -> 1 l 1 d")
    s = rearrange(sin.to(compute), "l d -> 1 l 1 d")
    rotated = torch.stack((even * c - odd * s, even * s + odd * c), dim=-1)
    return rearrange(rotated, "b l h d r -> b l h (d r)").to(x.dtype)
