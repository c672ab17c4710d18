"""Bidirectional diffusion transformer (DiT) with adaLN-zero time conditioning.

Architecture (in the style of the SEDD / MDLM DiT):

* token embedding ``vocab_size x d`` (all input ids, including mask and pad);
* rotary position embeddings on queries and keys;
* ``n_layers`` pre-norm blocks: weight-only LayerNorm -> adaLN shift/scale ->
  fused-qkv multi-head self-attention -> gated residual; weight-only LayerNorm ->
  shift/scale -> MLP (GELU, tanh approximation, ratio ``mlp_ratio``) -> gated residual;
* time conditioning: ``t`` in [0, 1] is multiplied by ``time_scale`` (default 1000, the
  usual DDPM step range, so the 256-dim sinusoidal embedding with max period 10000
  resolves small differences of ``t``), embedded sinusoidally, passed through
  ``Linear -> SiLU -> Linear`` into ``cond_dim`` and a SiLU gives the conditioning
  vector ``c``; each block maps ``c`` with a zero-initialised ``Linear(cond_dim, 6 d)``
  to shift/scale/gate for attention and MLP (adaLN-zero);
* a final layer: LayerNorm -> adaLN shift/scale (zero-init) -> ``Linear(d, n_out)``
  (zero-init), so the logits are exactly zero at initialisation.

With ``time_conditioning=False`` there is no time embedding at all; each modulation is a
learned constant vector (zero-init, so gates still start at zero) and ``t`` is ignored.

Class conditioning (``num_classes > 0``, classifier-free guidance): a class embedding
``Embedding(num_classes + 1, cond_dim)`` — the last row is the *null* class of a dropped or absent
condition — is added to the time embedding before the SiLU; a time-independent model gets
``c = SiLU(class embedding)`` and linear modulations (their bias plays the learned constant's part,
so an unconditional model's weights carry over: :func:`unconditional_to_conditional`).

The network returns raw logits in float32 over ``n_out`` states; the diffusion code turns
them into denoiser outputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import BACKENDS, AttentionContext, attention, check_backend
from .rotary import RotaryEmbedding, apply_rotary_complex, rotary_phases

__all__ = [
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "FinalLayer",
    "LayerNorm",
    "Modulation",
    "TimestepEmbedder",
    "maybe_compile",
]

_C = TypeVar("_C", bound="ConfigMixin")


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for the model config dataclasses.

    ``to_dict`` adds an ``"arch"`` key naming the model class so that
    :func:`seqdiff.models.build_model` can rebuild it.
    """

    arch: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain (JSON/YAML-serialisable) dict, including ``"arch"``."""
        out: dict[str, Any] = {"arch": self.arch}
        out.update(dataclasses.asdict(self))  # type: ignore[call-overload]
        return out

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
        """Inverse of :meth:`to_dict`. Unknown keys raise ``TypeError`` (catches typos)."""
        data = dict(data)
        arch = data.pop("arch", cls.arch)
        if arch != cls.arch:
            raise ValueError(f"{cls.__name__}.from_dict got arch={arch!r}, expected {cls.arch!r}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} keys: {unknown}")
        return cls(**data)


def _validate_common(cfg: Any) -> None:
    if cfg.vocab_size < 1 or cfg.n_out < 1:
        raise ValueError(f"vocab_size and n_out must be positive, got {cfg.vocab_size}, {cfg.n_out}")
    if cfg.d_model % cfg.n_heads:
        raise ValueError(f"d_model={cfg.d_model} is not divisible by n_heads={cfg.n_heads}")
    if (cfg.d_model // cfg.n_heads) % 2:
        raise ValueError("head dim (d_model / n_heads) must be even for rotary embeddings")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.attn_backend not in BACKENDS:
        raise ValueError(f"attn_backend must be one of {BACKENDS}, got {cfg.attn_backend!r}")


@dataclass
class DiTConfig(ConfigMixin):
    """Hyper-parameters of :class:`DiT`.

    Attributes:
        vocab_size: number of input ids embedded (data tokens + mask + pad + ...).
        n_out: number of output states (n+1 for absorbing/mask diffusion, n for uniform).
        d_model: residual width ``d``.
        n_layers: number of transformer blocks.
        n_heads: attention heads (``d_model / n_heads`` must be even).
        cond_dim: width of the time-conditioning vector ``c``.
        mlp_ratio: MLP hidden width / ``d``.
        dropout: residual dropout on attention and MLP outputs.
        max_len: longest accepted sequence (positions are rotary, nothing is learned per position).
        attn_backend: ``"sdpa" | "flash" | "reference" | "auto"``.
        time_conditioning: False removes the time embedding (time-independent models).
        time_scale: ``t`` is multiplied by this before the sinusoidal embedding.
        rotary_base: RoPE frequency base.
        compile: ask :func:`maybe_compile` to ``torch.compile`` the model.
        num_classes: condition classes (0 = an unconditional model); class ``num_classes`` is null.
    """

    arch: ClassVar[str] = "dit"

    vocab_size: int
    n_out: int
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    cond_dim: int = 128
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_len: int = 1024
    attn_backend: str = "sdpa"
    time_conditioning: bool = True
    time_scale: float = 1000.0
    rotary_base: float = 10000.0
    compile: bool = False
    num_classes: int = 0

    def __post_init__(self) -> None:
        _validate_common(self)
        if self.num_classes < 0 or (self.num_classes and self.cond_dim < 1):
            raise ValueError(f"num_classes must be ≥ 0 (with cond_dim ≥ 1), got {self.num_classes}")
        if self.time_conditioning and self.cond_dim < 1:
            raise ValueError("cond_dim must be positive when time_conditioning=True")


class LayerNorm(nn.Module):
    """LayerNorm with a learned scale and no bias, computed in float32.

    ``[..., d] -> [..., d]`` in the input dtype.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the scale goes into the fused kernel (one pass instead of a norm and a separate multiply);
        # float32 statistics: a no-op for the float32 residual stream of mixed-precision training
        y = F.layer_norm(x.float(), (self.dim,), self.weight.float(), None, self.eps)
        return y.to(x.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x * (1 + scale) + shift``; ``x``: ``[b l d]``, shift/scale: ``[b|1, 1, d]``."""
    return x * (1.0 + scale) + shift


class Modulation(nn.Module):
    """adaLN-zero modulation producing ``n_chunks`` vectors of width ``d``.

    With ``cond_dim`` set: ``Linear(cond_dim, n_chunks*d)`` of ``c`` ``[b, cond_dim]``,
    zero-initialised. With ``cond_dim=None``: a learned constant (zero-initialised).
    Returns a tuple of ``n_chunks`` tensors shaped ``[b, 1, d]`` (or ``[1, 1, d]``).
    """

    def __init__(self, dim: int, n_chunks: int, cond_dim: int | None) -> None:
        super().__init__()
        self.n_chunks = n_chunks
        self.linear: nn.Linear | None = None
        self.constant: nn.Parameter | None = None
        if cond_dim is None:
            self.constant = nn.Parameter(torch.zeros(n_chunks * dim))
        else:
            self.linear = nn.Linear(cond_dim, n_chunks * dim)
        self.zero_init()

    def zero_init(self) -> None:
        """Set all parameters to zero (adaLN-zero)."""
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()

    def forward(self, c: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if self.linear is not None:
            if c is None:
                raise ValueError("this modulation is time-conditioned: c must not be None")
            mod = self.linear(c)[:, None, :]  # b 1 k*d
        else:
            assert self.constant is not None
            mod = self.constant[None, None, :]  # 1 1 k*d
        return mod.chunk(self.n_chunks, dim=-1)


class TimestepEmbedder(nn.Module):
    """``t`` ``[b]`` in [0, 1] -> ``[b, cond_dim]``.

    Sinusoidal features of ``t * time_scale`` (``freq_dim`` channels, periods from 1 to
    ``max_period``), then ``Linear -> SiLU -> Linear``.
    """

    def __init__(
        self, cond_dim: int, freq_dim: int = 256, time_scale: float = 1000.0, max_period: float = 10000.0
    ) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_scale = time_scale
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def sinusoidal(self, t: torch.Tensor) -> torch.Tensor:
        """``[b] -> [b, freq_dim]`` (float32): ``[cos(s*f_i), sin(s*f_i)]``, ``s = t*time_scale``."""
        half = self.freq_dim // 2
        freqs = torch.exp(
            -math.log(self.max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = (t.float() * self.time_scale)[:, None] * freqs[None, :]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.freq_dim % 2:
            emb = F.pad(emb, (0, 1))
        return emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoidal(t))


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-zero modulation.

    Used bidirectionally by :class:`DiT` and causally (``causal=True``,
    ``cond_dim=None``) by the autoregressive baseline.

    Args:
        d_model: width ``d``; n_heads: heads; mlp_ratio: MLP width / d; dropout: residual
        dropout; cond_dim: conditioning width or None for learned-constant modulation;
        causal: causal self-attention (must match the :class:`AttentionContext` passed in,
        which also carries the padding mask and the backend, shared by all blocks).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cond_dim: int | None = None,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.causal = causal
        hidden = int(round(mlp_ratio * d_model))
        self.norm1 = LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.norm2 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d_model)
        )
        self.dropout = nn.Dropout(dropout)
        self.adaLN_modulation = Modulation(d_model, 6, cond_dim)

    def forward(
        self,
        x: torch.Tensor,
        rotary: torch.Tensor,
        ctx: AttentionContext,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x``: ``[b l d]``; rotary: complex phases ``[l, d_head/2]`` (:func:`rotary_phases`);
        ``c``: ``[b, cond_dim]`` or None.

        Returns ``[b l d]``.
        """
        if ctx.causal != self.causal:
            raise ValueError(f"block built with causal={self.causal} got a context with causal={ctx.causal}")
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c)
        h = modulate(self.norm1(x), shift_a, scale_a)
        qkv = rearrange(self.qkv(h), "b l (three h e) -> three b l h e", three=3, h=self.n_heads)
        q, k = apply_rotary_complex(qkv[:2], rotary)  # queries and keys in one complex multiply
        a = attention(q, k, qkv[2], ctx=ctx)
        a = self.attn_out(rearrange(a, "b l h e -> b l (h e)"))
        x = x + gate_a * self.dropout(a)
        h = modulate(self.norm2(x), shift_m, scale_m)
        x = x + gate_m * self.dropout(self.mlp(h))
        return x


class FinalLayer(nn.Module):
    """LayerNorm -> adaLN shift/scale (zero-init) -> ``Linear(d, n_out)`` (zero-init).

    ``[b l d] -> [b l n_out]`` (float32).
    """

    def __init__(self, d_model: int, n_out: int, cond_dim: int | None) -> None:
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.adaLN_modulation = Modulation(d_model, 2, cond_dim)
        self.linear = nn.Linear(d_model, n_out)
        self.zero_init()

    def zero_init(self) -> None:
        self.adaLN_modulation.zero_init()
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c)
        return self.linear(modulate(self.norm(x), shift, scale)).float()


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """normal(0, std) for Linear/Embedding weights, zero biases, ones for norms.

    Zero-initialised parts (:class:`Modulation`, :class:`FinalLayer`) must be reset
    afterwards (the models' ``reset_parameters`` do it).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, LayerNorm):
            nn.init.ones_(m.weight)


def _zero_init_modulations(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (Modulation, FinalLayer)):
            m.zero_init()


def _check_tokens(x: torch.Tensor, pad_mask: torch.Tensor | None, max_len: int) -> None:
    if x.dim() != 2:
        raise ValueError(f"x must be a LongTensor [b, l], got shape {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={max_len}")
    if pad_mask is not None and tuple(pad_mask.shape) != tuple(x.shape):
        raise ValueError(f"pad_mask shape {tuple(pad_mask.shape)} != x shape {tuple(x.shape)}")


class DiT(nn.Module):
    """Bidirectional diffusion transformer producing raw logits.

    ``forward(x [b l] long, t [b] float in [0,1], pad_mask [b l] bool | None)``
    ``-> logits [b l n_out] float32``.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        check_backend(config.attn_backend)
        self.config = config
        cond_dim = config.cond_dim if (config.time_conditioning or config.num_classes) else None
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.class_embed = nn.Embedding(config.num_classes + 1, config.cond_dim) if config.num_classes else None
        self.time_embed = (
            TimestepEmbedder(config.cond_dim, time_scale=config.time_scale)
            if config.time_conditioning
            else None
        )
        self.rotary = RotaryEmbedding(config.d_model // config.n_heads, base=config.rotary_base)
        self.blocks = nn.ModuleList(
            DiTBlock(
                config.d_model,
                config.n_heads,
                mlp_ratio=config.mlp_ratio,
                dropout=config.dropout,
                cond_dim=cond_dim,
                causal=False,
            )
            for _ in range(config.n_layers)
        )
        self.final = FinalLayer(config.d_model, config.n_out, cond_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """normal(0, 0.02) everywhere, then zero the adaLN modulations and the output layer."""
        init_weights(self)
        _zero_init_modulations(self)

    def set_attn_backend(self, name: str) -> None:
        """Switch the attention backend (e.g. load a flash-trained model for CPU evaluation)."""
        check_backend(name)
        self.config.attn_backend = name

    def num_parameters(self, exclude_embedding: bool = False) -> int:
        """Parameter count (optionally without the token embedding)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embedding:
            n -= self.embed.weight.numel()
        return n

    def _class_embedding(self, cond: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        n = self.config.num_classes
        if cond is None:
            cond = torch.full((batch,), n, dtype=torch.long, device=device)
        cond = torch.as_tensor(cond, device=device).long().reshape(-1)
        if cond.numel() == 1 and batch > 1:
            cond = cond.expand(batch)
        if cond.shape[0] != batch:
            raise ValueError(f"cond must have shape [b]={batch}, got {cond.shape[0]} values")
        if bool(((cond < 0) | (cond > n)).any()):
            raise ValueError(f"condition classes are 0..{n - 1} (and {n} = none)")
        return self.class_embed(cond)

    def _conditioning(self, t: torch.Tensor | float | None, batch: int, device: torch.device,
                      cond: torch.Tensor | None = None) -> torch.Tensor | None:
        if self.class_embed is None and cond is not None:
            raise ValueError("this DiT has no condition classes (num_classes = 0)")
        if self.time_embed is None:
            if self.class_embed is None:
                return None
            return F.silu(self._class_embedding(cond, batch, device))
        if t is None:
            raise ValueError("this DiT is time-conditioned: pass t (shape [b], values in [0, 1])")
        t = torch.as_tensor(t, device=device, dtype=torch.float32)
        if t.dim() == 0:
            t = t.expand(batch)
        t = t.reshape(-1)
        if t.shape[0] != batch:
            raise ValueError(f"t must have shape [b]={batch}, got {t.shape[0]} values")
        emb = self.time_embed(t)
        if self.class_embed is not None:
            emb = emb + self._class_embedding(cond, batch, device)
        return F.silu(emb)  # b cond_dim

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float | None = None,
        pad_mask: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw logits.

        Args:
            x: ``LongTensor[b, l]`` input ids in ``[0, vocab_size)``.
            t: ``Tensor[b]`` (or scalar) diffusion time in [0, 1]; ignored (may be None)
                when ``time_conditioning=False``.
            pad_mask: ``BoolTensor[b, l]``, True = real token. Real positions never
                attend to padding; outputs at padded positions are finite but meaningless.
            cond: ``LongTensor[b]`` condition classes (``num_classes`` = none), or None = none.

        Returns:
            ``FloatTensor[b, l, n_out]`` (float32, also under autocast).
        """
        _check_tokens(x, pad_mask, self.config.max_len)
        batch, length = x.shape
        c = self._conditioning(t, batch, x.device, cond)
        h = self.embed(x)  # b l d
        rotary = rotary_phases(*self.rotary(length, x.device))
        ctx = AttentionContext(pad_mask=pad_mask, causal=False, backend=self.config.attn_backend)
        for block in self.blocks:
            h = block(h, rotary, ctx, c)
        return self.final(h, c)


def unconditional_to_conditional(state: dict[str, torch.Tensor], config: DiTConfig) -> dict[str, torch.Tensor]:
    """The weights of an unconditional DiT laid out for ``config`` (the same DiT with
    ``num_classes > 0``): a time-independent model's constant modulations become the biases of
    zero linear maps, so the conditional network computes exactly the unconditional function until
    it is trained (the class embedding enters through those zero weights)."""
    out = dict(state)
    if config.time_conditioning or not config.num_classes:
        return out
    for key in list(out):
        if key.endswith("adaLN_modulation.constant"):
            const = out.pop(key)
            base = key[: -len("constant")]
            out[base + "linear.bias"] = const.clone()
            out[base + "linear.weight"] = torch.zeros(const.shape[0], config.cond_dim, dtype=const.dtype)
    return out


def maybe_compile(model: nn.Module, enabled: bool | None = None, **compile_kwargs: Any) -> nn.Module:
    """``torch.compile`` the model in place when asked.

    ``enabled`` defaults to ``model.config.compile``. Uses ``nn.Module.compile`` so the
    module object and its state-dict keys are unchanged. Returns the model.
    """
    if enabled is None:
        enabled = bool(getattr(getattr(model, "config", None), "compile", False))
    if enabled:
        model.compile(**compile_kwargs)
    return model
