"""Causal autoregressive transformer baseline.

Made of the same :class:`~seqdiff.models.dit.DiTBlock` as the DiT, with conditioning off
(learned-constant modulation, zero-init gates) and causal attention. Inputs are shifted
right internally behind a learned BOS embedding, so the logits at position ``i`` predict
``x_i`` from ``x_{<i}`` and position 0 predicts ``x_0`` from nothing.

Padding: real tokens must form a prefix of each row (right padding). Rows may be empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionContext, check_backend
from .dit import ConfigMixin, DiTBlock, FinalLayer, _check_tokens, _validate_common, _zero_init_modulations, init_weights
from .rotary import RotaryEmbedding, rotary_phases

__all__ = ["ARConfig", "ARTransformer"]


@dataclass
class ARConfig(ConfigMixin):
    """Hyper-parameters of :class:`ARTransformer`.

    Attributes:
        vocab_size: number of input ids embedded (data tokens + mask + pad + ...).
        n_out: number of data tokens ``n`` (the model predicts only data tokens).
        d_model, n_layers, n_heads, mlp_ratio, dropout, max_len, attn_backend,
        rotary_base, compile: as in :class:`~seqdiff.models.dit.DiTConfig`.
    """

    arch: ClassVar[str] = "ar"

    vocab_size: int
    n_out: int
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_len: int = 1024
    attn_backend: str = "sdpa"
    rotary_base: float = 10000.0
    compile: bool = False

    def __post_init__(self) -> None:
        _validate_common(self)
        if self.n_out > self.vocab_size:
            raise ValueError(f"n_out={self.n_out} data tokens cannot exceed vocab_size={self.vocab_size}")


class ARTransformer(nn.Module):
    """Causal transformer: ``forward(x [b l], pad_mask [b l] | None) -> logits [b l n]``."""

    def __init__(self, config: ARConfig) -> None:
        super().__init__()
        check_backend(config.attn_backend)
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.bos = nn.Parameter(torch.zeros(config.d_model))
        self.rotary = RotaryEmbedding(config.d_model // config.n_heads, base=config.rotary_base)
        self.blocks = nn.ModuleList(
            DiTBlock(
                config.d_model,
                config.n_heads,
                mlp_ratio=config.mlp_ratio,
                dropout=config.dropout,
                cond_dim=None,
                causal=True,
            )
            for _ in range(config.n_layers)
        )
        self.final = FinalLayer(config.d_model, config.n_out, cond_dim=None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """normal(0, 0.02) for embeddings/linears and the BOS vector; zero modulations/output."""
        init_weights(self)
        nn.init.normal_(self.bos, 0.0, 0.02)
        _zero_init_modulations(self)

    def set_attn_backend(self, name: str) -> None:
        """Switch the attention backend."""
        check_backend(name)
        self.config.attn_backend = name

    def num_parameters(self, exclude_embedding: bool = False) -> int:
        """Parameter count (optionally without the token embedding)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embedding:
            n -= self.embed.weight.numel()
        return n

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits.

        Args:
            x: ``LongTensor[b, l]``.
            pad_mask: ``BoolTensor[b, l]``, True = real token; real tokens must be a prefix
                of each row. None = no padding.

        Returns:
            ``FloatTensor[b, l, n_out]`` (float32): position ``i`` scores ``x_i`` given ``x_{<i}``.
        """
        _check_tokens(x, pad_mask, self.config.max_len)
        batch, length = x.shape
        if length == 0:
            return torch.zeros(batch, 0, self.config.n_out, device=x.device)
        in_mask = None
        if pad_mask is not None:
            pad_mask = pad_mask.to(torch.bool)
            # validation needs a host sync; skipped while torch.compile traces the model
            if not torch.compiler.is_compiling() and bool((pad_mask[:, 1:] & ~pad_mask[:, :-1]).any()):
                raise ValueError("ARTransformer expects right padding: real tokens must be a prefix")
            # slot 0 holds BOS (always real); slot i holds x_{i-1}
            in_mask = torch.cat([pad_mask.new_ones(batch, 1), pad_mask[:, :-1]], dim=1)
        emb = self.embed(x[:, :-1])  # b l-1 d
        bos = self.bos.to(emb.dtype)[None, None, :].expand(batch, 1, -1)
        h = torch.cat([bos, emb], dim=1)  # b l d
        rotary = rotary_phases(*self.rotary(length, x.device))
        ctx = AttentionContext(pad_mask=in_mask, causal=True, backend=self.config.attn_backend)
        for block in self.blocks:
            h = block(h, rotary, ctx, None)
        return self.final(h, None)

    def log_likelihood(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence log-likelihood in nats, ``[b]``: sum over real positions of ``log p(x_i | x_{<i})``.

        ``x`` at real positions must be data tokens ``< n_out``; padded positions are ignored.
        """
        logits = self.forward(x, pad_mask)
        logp = torch.log_softmax(logits.float(), dim=-1)  # b l n
        real = torch.ones_like(x, dtype=torch.bool) if pad_mask is None else pad_mask.to(torch.bool)
        targets = torch.where(real, x, torch.zeros_like(x))
        if bool((targets >= self.config.n_out).any() or (targets < 0).any()):
            raise ValueError(f"real tokens must be data tokens in [0, {self.config.n_out})")
        token_ll = logp.gather(-1, targets[..., None]).squeeze(-1)  # b l
        return (token_ll * real).sum(dim=-1)

    @torch.no_grad()
    def sample(
        self,
        batch: int,
        length: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        prefix: torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling without a KV cache (one full forward per new token).

        Args:
            batch: number of sequences ``b``.
            length: total length ``l`` including the prefix.
            generator: torch generator for reproducibility; sampling happens on its device.
            temperature: softmax temperature; ``0`` means greedy (argmax).
            prefix: ``LongTensor[p]`` or ``[b, p]`` of data tokens kept verbatim.
            device: where to run the network (default: the model's device).

        Returns:
            ``LongTensor[b, l]`` of data tokens (on the model's device).
        """
        if temperature < 0:
            raise ValueError("temperature must be >= 0")
        if length > self.config.max_len:
            raise ValueError(f"length {length} exceeds max_len={self.config.max_len}")
        device = torch.device(device) if device is not None else self.bos.device
        out = torch.zeros(batch, length, dtype=torch.long, device=device)
        start = 0
        if prefix is not None:
            prefix = torch.as_tensor(prefix, dtype=torch.long, device=device)
            if prefix.dim() == 1:
                prefix = prefix[None, :].expand(batch, -1)
            if prefix.shape[0] != batch or prefix.shape[1] > length:
                raise ValueError(f"prefix shape {tuple(prefix.shape)} does not fit batch={batch}, length={length}")
            start = prefix.shape[1]
            out[:, :start] = prefix
        was_training = self.training
        self.eval()
        try:
            for i in range(start, length):
                logits = self.forward(out[:, : i + 1])[:, i].double()  # b n (x_i slot unseen)
                if temperature == 0:
                    nxt = logits.argmax(dim=-1)
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    sample_device = generator.device if generator is not None else probs.device
                    nxt = torch.multinomial(probs.to(sample_device), 1, generator=generator).squeeze(-1)
                out[:, i] = nxt.to(device)
        finally:
            self.train(was_training)
        return out
