"""A complete seqdiff model: network + process + schedule + loss + tokenizer, independent of Lightning.

:class:`SeqDiffModel` is what training produces and what every job (sample, infill, score, eval,
correct, the app) loads. It is built from a recipe (:class:`~seqdiff.config.TrainConfig`)
and a tokenizer, and saved either inside a Lightning checkpoint (training, resume) or as a small
exported file (weights + recipe + tokenizer + length distribution), e.g. the shipped defaults.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from .diffusion import (Absorbing, DiffusionLoss, ELBOResult, GenMD4Loss, Sampler, build_loss, build_process,
                        build_sampler, build_schedule, elbo)
from .diffusion.samplers import MASKED_ONLY
from .models import ARConfig, ARTransformer, DiT, DiTConfig
from .models.denoiser import DiffusionDenoiser
from .tokenizers import Tokenizer, tokenizer_from_dict
from .serialization import ModelLoadError, UnsafeModelError, safe_load, save_atomic, storage_state
from .config import TrainConfig

__all__ = ["SeqDiffModel", "load_model", "model_from_dict", "ModelLoadError", "UnsafeModelError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
DEFAULT_SAMPLER = {"masked": "ancestral", "genmd4": "ancestral", "score_entropy": "tweedie",
                   "multinomial": "multinomial"}


class SeqDiffModel(nn.Module):
    """Everything needed to train, sample, infill and score, for one domain."""

    def __init__(self, config: TrainConfig | dict, tokenizer: Tokenizer | dict,
                 length_histogram: list[int] | None = None) -> None:
        super().__init__()
        self.cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config, "<checkpoint>")
        self.tokenizer = tokenizer if isinstance(tokenizer, Tokenizer) else tokenizer_from_dict(tokenizer)
        self.length_histogram = list(length_histogram) if length_histogram is not None else None
        cfg, tok = self.cfg, self.tokenizer
        n = tok.num_data_tokens
        m = cfg.model
        common = dict(vocab_size=tok.vocab_size, d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads,
                      mlp_ratio=m.mlp_ratio, dropout=m.dropout, max_len=max(cfg.data.seq_len, 1),
                      attn_backend=m.attn_backend, compile=m.compile)
        self.is_ar = m.arch == "ar"
        self.process = None
        self.loss: DiffusionLoss | None = None
        self.denoiser: DiffusionDenoiser | None = None
        self.ar: ARTransformer | None = None
        if self.is_ar:
            self.ar = ARTransformer(ARConfig(n_out=n, **common))
        else:
            d = cfg.diffusion
            if d.process == "absorbing":
                self.process = build_process("absorbing", vocab_size=n + 1, mask_id=n)
            else:
                self.process = build_process("uniform", vocab_size=n)
            sched_spec = dict(d.schedule or {"name": "linear"})
            if sched_spec.get("name") == "genmd4":
                sched_spec.setdefault("vocab_size", n + 1)
                sched_spec.setdefault("mask_id", n)
            schedule = build_schedule(sched_spec)
            kwargs = {"num_samples": d.genmd4_samples} if d.loss == "genmd4" else {}
            self.loss = build_loss(d.loss, self.process, schedule, **kwargs)
            net = DiT(DiTConfig(n_out=self.process.vocab_size, cond_dim=m.cond_dim,
                                time_conditioning=m.time_conditioning, num_classes=self.num_classes, **common))
            # the denoiser owns the network and (if learnable, GenMD4) the schedule
            self.denoiser = DiffusionDenoiser(net, self.process, schedule, d.parameterization, pad_id=tok.pad_id)

    @property
    def num_classes(self) -> int:
        """Condition classes of a conditional model (0: unconditional)."""
        return len(self.cfg.condition.classes or [])

    def condition_index(self, value) -> int:
        """The class index of a condition given by name (or, for a binned numeric condition, by a
        value inside one of its bins); ``ValueError`` naming the known classes otherwise."""
        from .guidance.conditions import class_index
        return class_index(self.cfg.condition, value)

    @property
    def network(self) -> nn.Module:
        """The transformer (DiT, or the AR baseline)."""
        return self.ar if self.is_ar else self.denoiser.network

    @property
    def schedule(self):
        return None if self.is_ar else self.denoiser.schedule

    # -- basics ---------------------------------------------------------------------------------
    @property
    def domain(self) -> str:
        return self.cfg.data.kind

    @property
    def max_len(self) -> int:
        return self.cfg.data.seq_len

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def default_sampler(self) -> str:
        if self.is_ar:
            return "ar"
        s = self.cfg.sampling.sampler
        return DEFAULT_SAMPLER[self.cfg.diffusion.loss] if s == "auto" else s

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def describe(self) -> str:
        c = self.cfg
        what = "AR baseline" if self.is_ar else \
            f"{c.diffusion.process}/{c.diffusion.loss}/{c.diffusion.parameterization}"
        return (f"{c.name}: {c.data.kind}, {what}, {self.num_parameters() / 1e6:.2f}M params, "
                f"vocab {self.tokenizer.num_data_tokens}, max_len {self.max_len}")

    # -- training objective ---------------------------------------------------------------------
    def scored(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """Positions that count in the loss and in bits per token: real data tokens."""
        return pad_mask if self.is_ar else pad_mask & (x < self.tokenizer.num_data_tokens)

    def objective(self, x: Tensor, pad_mask: Tensor, generator: torch.Generator | None = None,
                  cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(objective, nats)`` per sequence: backpropagate the first, report the second.

        Only data tokens are diffused and scored; special tokens in the input (a packing separator)
        are fixed context, like padding (which the network also does not attend to). ``cond``: the
        condition class of each row of a conditional model (``num_classes`` = none).
        """
        if self.is_ar:
            nll = -self.network.log_likelihood(x, pad_mask)
            return nll, nll.detach()
        den = self.denoiser
        if cond is not None:
            from .guidance.cfg import ConditionedDenoiser
            den = ConditionedDenoiser(self.denoiser, cond)
        return self.loss.training_loss(den, x, generator, loss_mask=self.scored(x, pad_mask))

    # -- likelihood -----------------------------------------------------------------------------
    @torch.no_grad()
    def nll(self, x: Tensor, pad_mask: Tensor | None = None, *, n_t: int = 16, grid: str = "antithetic",
            generator: torch.Generator | None = None, batch_size: int | None = None) -> ELBOResult:
        """Negative log-likelihood bound per sequence (nats): the ELBO for diffusion models,
        the exact NLL for the AR baseline (standard error 0)."""
        if pad_mask is None:
            pad_mask = x != self.tokenizer.pad_id
        pad_mask = self.scored(x, pad_mask)
        if self.is_ar:
            nats = -self.network.log_likelihood(x, pad_mask).double()
            return ELBOResult(nats, torch.zeros_like(nats), pad_mask.sum(-1))
        if not self.loss.continuous and n_t < 2:
            n_t = 2
        if grid == "antithetic" and n_t % 2:
            n_t += 1
        return elbo(self.denoiser, self.loss, x, n_t=n_t, grid=grid, generator=generator, loss_mask=pad_mask,
                    batch_size=batch_size)

    # -- sampling -------------------------------------------------------------------------------
    @property
    def default_sampler_options(self) -> dict:
        """The options recorded with the model for its default sampler (``sampling.options``)."""
        return dict(self.cfg.sampling.options or {}) if self.cfg.sampling.sampler != "auto" else {}

    def sampler_options(self, name: str | None = None, **given) -> dict:
        """The options a run of sampler ``name`` uses: the model's recorded ones when it is the
        model's own sampler, under those ``given`` (``None`` values mean "the default")."""
        own = name is None or name == self.default_sampler
        return {**(self.default_sampler_options if own else {}), **{k: v for k, v in given.items() if v is not None}}

    def build_sampler(self, name: str | None = None, steps: int | None = None, **kwargs) -> Sampler:
        """A sampler by name (default: the model's own, with its recorded options under any option
        given here). Options a sampler does not take are an error; ``None`` means the default."""
        options = self.sampler_options(name, **kwargs)
        name = name or self.default_sampler
        if self.is_ar or name == "ar":
            raise ValueError("the AR baseline samples left to right; it has no diffusion sampler")
        if name in MASKED_ONLY and not isinstance(self.process, Absorbing):
            raise ValueError(f"sampler {name!r} needs a masked (absorbing) model; this one is {self.process.name}")
        steps = steps if steps is not None else self.cfg.sampling.steps
        sampler = build_sampler(name, self.process, self.schedule, steps=steps, **options)
        if getattr(sampler, "repair", False):
            sampler.suspects = self.syntax_check()
        return sampler

    def syntax_check(self) -> Callable[[Tensor], Tensor]:
        """``check(x [B, L]) -> long [B, L]``: the tokens the domain's check flags, as a group number
        per position (``-1``: not flagged; the tokens of one group are one fault, of which the sampler
        re-draws the least confident; see :attr:`seqdiff.domains.Domain.syntax_suspects`); a
        ``ValueError`` for a domain without a check."""
        from .domains import get_domain

        check = get_domain(self.domain).syntax_suspects
        if check is None:
            raise ValueError(f"repair needs a syntax check; the {self.domain} domain has none (SMILES has one)")
        tok = self.tokenizer
        names = {}
        for i in range(self.process.vocab_size):
            try:
                names[i] = tok.id_to_token(i)
            except (KeyError, IndexError, ValueError):
                names[i] = ""

        def suspects(x: Tensor) -> Tensor:
            out = torch.full(x.shape, -1, dtype=torch.long)
            for r, row in enumerate(x.tolist()):
                for g, item in enumerate(check([names.get(i, "") for i in row])):
                    out[r, list(item) if isinstance(item, (tuple, list)) else item] = g
            return out.to(x.device)
        return suspects

    def sample_lengths(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Lengths drawn from the training length distribution (fixed ``max_len`` for windows)."""
        hist = self.length_histogram
        if not hist or sum(hist[1:]) == 0:
            return torch.full((num,), self.max_len, dtype=torch.long)
        p = torch.tensor(hist, dtype=torch.float64)
        p[0] = 0.0
        u = torch.rand(num, generator=generator, dtype=torch.float64)
        cdf = torch.cumsum(p / p.sum(), 0)
        return torch.searchsorted(cdf, u).clamp(1, len(hist) - 1)

    @torch.no_grad()
    def generate(self, num: int | None = None, length: int | Tensor | None = None, *, sampler: str | None = None,
                 steps: int | None = None, generator: torch.Generator | None = None,
                 x_fixed: Tensor | None = None, fixed: Tensor | None = None,
                 progress: Callable[[int, int], None] | None = None, stats: dict | None = None,
                 **sampler_kwargs) -> Tensor:
        """Token ids ``[B, L]`` (pad after each sequence's length).

        ``length``: an int, a tensor of per-sample lengths, or ``None`` to draw lengths from the
        training distribution. ``x_fixed``/``fixed`` clamp positions (infilling).
        """
        x_fixed, fixed = self.layout(num, length, generator, x_fixed, fixed)
        if self.is_ar:
            return self._generate_ar(x_fixed, fixed, generator)
        s = self.build_sampler(sampler, steps, **sampler_kwargs)
        return s.sample(self.denoiser, x_fixed=x_fixed, fixed=fixed, generator=generator, progress=progress,
                        stats=stats)

    def layout(self, num: int | None = None, length: int | Tensor | None = None,
               generator: torch.Generator | None = None, x_fixed: Tensor | None = None,
               fixed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x_fixed, fixed)`` of a generation run: given ones moved to the model's device, or pad
        positions after each sequence's length (drawn from the training distribution when ``length``
        is ``None``)."""
        device = self.device
        pad = self.tokenizer.pad_id
        if x_fixed is not None:
            x_fixed = x_fixed.to(device)
            num = x_fixed.shape[0]
            fixed = torch.zeros_like(x_fixed, dtype=torch.bool) if fixed is None else fixed.to(device).bool()
        else:
            if num is None:
                raise ValueError("give num (or x_fixed)")
            if length is None:
                lengths = self.sample_lengths(num, generator)
            elif isinstance(length, int):
                lengths = torch.full((num,), length, dtype=torch.long)
            else:
                lengths = torch.as_tensor(length, dtype=torch.long)
            if int(lengths.max()) > self.max_len:
                raise ValueError(f"length {int(lengths.max())} exceeds the model's maximum {self.max_len}")
            width = int(lengths.max())
            ar = torch.arange(width)
            is_pad = ar[None, :] >= lengths[:, None]
            x_fixed = torch.where(is_pad, torch.full((num, width), pad), torch.zeros((num, width), dtype=torch.long))
            x_fixed = x_fixed.to(device)
            fixed = is_pad.to(device)
        if x_fixed.shape[1] > self.max_len:
            raise ValueError(f"length {x_fixed.shape[1]} exceeds the model's maximum {self.max_len}")
        return x_fixed, fixed

    def _generate_ar(self, x_fixed: Tensor, fixed: Tensor, generator) -> Tensor:
        """Left-to-right sampling; per-sample lengths are imposed by cutting (no end token)."""
        pad = self.tokenizer.pad_id
        real = ~(fixed & (x_fixed == pad))
        if (fixed & real).any():
            raise ValueError("the AR baseline cannot infill fixed positions")
        out = self.network.sample(x_fixed.shape[0], x_fixed.shape[1], generator=generator, device=x_fixed.device)
        return torch.where(real, out, torch.full_like(out, pad))

    def decode(self, ids: Tensor) -> list[str]:
        return self.tokenizer.batch_decode(ids.cpu())

    # -- files ----------------------------------------------------------------------------------
    def export_dict(self, dtype: torch.dtype | None = None) -> dict[str, Any]:
        """The exported model; ``dtype`` (e.g. ``torch.bfloat16``) stores floating weights in that
        type (half the size; :func:`load_model` casts them back to float32)."""
        return {"format": "seqdiff-model", "version": FORMAT_VERSION, "config": self.cfg.to_dict(),
                "tokenizer": self.tokenizer.to_dict(), "length_histogram": self.length_histogram,
                "state_dict": storage_state(self.state_dict(), dtype)}

    def save(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write an exported model file atomically: a temporary file in the same folder, flushed to disk
        and read back (safely, see :mod:`seqdiff.serialization`) before it is renamed into place;
        ``dtype`` as in :meth:`export_dict`."""
        return save_atomic(self.export_dict(dtype), path)


def _describe_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {str(device)!r}: not a device (auto | cpu | cuda | cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine (use cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
    return dev


def model_from_dict(obj: dict, path: str | os.PathLike = "<model>", *, ema: bool = True) -> SeqDiffModel:
    """A :class:`SeqDiffModel` from the dict of an exported model file or a Lightning training checkpoint
    (EMA weights by default); every missing or malformed part is a :class:`ModelLoadError` naming ``path``."""
    p = str(path)
    if obj.get("format") == "seqdiff-model":
        src, what = obj, "model file"
        state = obj.get("state_dict")
    elif isinstance(obj.get("hyper_parameters"), dict) and "state_dict" in obj:
        src, what = obj["hyper_parameters"], "training checkpoint"
        raw = obj["state_dict"]
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{p}: a seqdiff {what} whose `state_dict` is not a dict")
        state = {k[len("model."):]: v for k, v in raw.items() if isinstance(k, str) and k.startswith("model.")}
        shadow = obj.get("ema", {}).get("shadow") if ema and isinstance(obj.get("ema"), dict) else None
        if isinstance(shadow, dict):
            state.update(shadow)
    else:
        raise ModelLoadError(f"{p}: not a seqdiff model or checkpoint (no seqdiff config inside)")
    for key, kind in (("config", dict), ("tokenizer", dict)):
        if key not in src:
            raise ModelLoadError(f"{p}: a seqdiff {what} without its `{key}`: the file is incomplete "
                                 f"(re-export it, or convert it with `seqdiff convert`)")
        if not isinstance(src[key], kind):
            raise ModelLoadError(f"{p}: the `{key}` of this {what} is not a {kind.__name__}")
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(f"{p}: a seqdiff {what} without weights (`state_dict`)")
    hist = src.get("length_histogram")
    if hist is not None and not (isinstance(hist, (list, tuple)) and all(isinstance(v, int) for v in hist)):
        raise ModelLoadError(f"{p}: the `length_histogram` of this {what} is not a list of counts")
    try:
        model = SeqDiffModel(src["config"], src["tokenizer"], hist)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{p}: the recipe or tokenizer inside this {what} is not valid: "
                             f"{e.args[0] if isinstance(e, KeyError) and e.args else e}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{p}: the weights do not match the recipe inside this {what} ({first})") from None
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu", *, ema: bool = True
               ) -> SeqDiffModel:
    """Load an exported model file or a training checkpoint (EMA weights by default), in eval mode.

    The file is opened without running anything in it (:func:`seqdiff.serialization.safe_load`): a file
    that would import code is refused with :class:`UnsafeModelError`.
    """
    device = _describe_device(map_location)
    p = Path(path)
    model = model_from_dict(safe_load(p), p, ema=ema)
    return model.to(device).eval()
