"""Network → denoiser contract: the output heads of both parameterisations.

A network returns raw logits ``[B, L, N]`` over the process's states. :class:`DiffusionDenoiser`
turns them into what the core's losses and samplers expect (ARCHITECTURE.md, the denoiser contract):

* ``"x0"`` (mean parameterisation, MD4/MDLM): ``log_softmax`` with the mask column forbidden
  (a large finite negative, never ``-inf``); the core carries unmasked tokens over.
* ``"score"`` (SEDD): log concrete scores. For the absorbing process SEDD's σ-scaling
  ``log s = logits - log(e^{σ̄(t)} - 1) - log(N - 1)`` makes the total score of a masked position
  ``α/(1-α)`` at initialisation, which is its true value; ``log s(x_t) = 0`` by definition.

Padding: ids ``≥ N`` (the tokenizer's pad) are attention-masked via ``pad_mask``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..diffusion.processes import NEG, Absorbing, Process

__all__ = ["DiffusionDenoiser"]


class DiffusionDenoiser(nn.Module):
    """Wrap a network ``net(x, t, pad_mask) -> logits`` as a denoiser of the core's contract."""

    def __init__(self, network: nn.Module, process: Process, schedule, parameterization: str = "x0",
                 pad_id: int | None = None) -> None:
        super().__init__()
        if parameterization not in ("x0", "score"):
            raise ValueError(f"unknown parameterization {parameterization!r} (x0 | score)")
        self.network = network
        self.process = process
        # a learnable schedule (GenMD4) is a module: nn.Module registers it, so it trains and saves
        self.schedule = schedule
        self.parameterization = parameterization
        self.pad_id = pad_id
        cfg = getattr(network, "config", None)
        #: the masked ancestral sampler may cache outputs of a time-independent mean denoiser
        self.time_independent = bool(parameterization == "x0" and isinstance(process, Absorbing)
                                     and cfg is not None and not getattr(cfg, "time_conditioning", True))

    def pad_mask(self, x_t: Tensor) -> Tensor | None:
        """``True`` at real tokens, or ``None`` when the batch has no padding (keeps SDPA fast)."""
        if self.pad_id is None:
            return None
        real = x_t != self.pad_id
        return None if bool(real.all()) else real

    def forward(self, x_t: Tensor, t: Tensor, pad_mask: Tensor | None = None, *,
                padded: bool | None = None, cond: Tensor | None = None) -> Tensor:
        """``padded=False`` states that the batch has no padding (no mask, no check: the training
        step knows it from the host, and a check would be a device sync and a graph break).
        ``cond``: condition classes ``[B]`` of a conditional network (None: unconditional)."""
        if pad_mask is None and padded is not False:
            pad_mask = self.pad_mask(x_t)
        if cond is None:
            logits = self.network(x_t, t, pad_mask)
        else:
            logits = self.network(x_t, t, pad_mask, cond=cond)
        n = self.process.vocab_size
        if logits.shape[-1] != n:
            raise ValueError(f"network outputs {logits.shape[-1]} states; the process has {n}")
        logits = logits.float()
        mask_id = self.process.mask_id
        if self.parameterization == "x0":
            if mask_id is not None:
                logits = logits.clone()
                logits[..., mask_id] = NEG
            return torch.log_softmax(logits, dim=-1)
        # score head
        if isinstance(self.process, Absorbing):
            sb = self.schedule.sigma_bar(t.double())
            # log(e^σ̄ - 1), stable for small and large σ̄
            log_em1 = torch.where(sb < 20, torch.log(torch.expm1(sb.clamp_min(1e-12))), sb)
            logits = logits - (log_em1 + math.log(self.process.num_data_tokens)).float()[:, None, None]
        here = x_t.clamp(0, n - 1)[..., None]
        return logits.scatter(-1, here, 0.0)
