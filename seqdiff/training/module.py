"""The Lightning module: trains any (process, schedule, loss, parameterisation) of the core, or
the AR baseline, with AdamW, warm-up + cosine/constant LR, gradient clipping (by the Trainer),
EMA weights for evaluation and sampling, validation bits per token, and periodic samples.

The hot path is shared with ``seqdiff gpu-train`` and the throughput benchmark:
:class:`TrainStep` (noise draw, then network + loss, optionally under ``torch.compile``),
:func:`build_optimizer` (AdamW, fused on CUDA, multi-tensor on CPU) and :class:`EMA`
(multi-tensor ``torch._foreach_lerp_``)."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

from ..diffusion.losses import DiffusionLoss
from ..model import SeqDiffModel
from ..config import OptimConfig, TrainConfig

__all__ = ["SeqDiffLightning", "EMA", "TrainStep", "build_optimizer", "lr_factor", "step_generator"]


def step_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by ``(seed, *keys)``: the same step draws the same noise after a resume."""
    h = hashlib.sha256(repr((seed,) + keys).encode()).digest()
    g = torch.Generator(device=device)
    g.manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))
    return g


class EMA:
    """Exponential moving average of a module's trainable parameters (by name).

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the average
    never carries a large share of the initial weights: with a plain decay of 0.999 a 1,000-step run
    would keep e^{-1} ≈ 37% of the (untrained) initialisation in its "EMA" model.

    One update is a single multi-tensor ``torch._foreach_lerp_`` over all parameters (the same
    arithmetic as a per-parameter ``lerp_``, without one kernel launch per tensor).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
        self._backup: dict[str, torch.Tensor] | None = None
        self._pairs: tuple[int, list[torch.Tensor], list[torch.Tensor]] | None = None

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    def _lists(self, module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(shadows, parameters) in matching order; shadows follow the parameters' devices."""
        key = id(module)
        if self._pairs is None or self._pairs[0] != key or any(
                s.device != p.device for s, p in zip(self._pairs[1][:1], self._pairs[2][:1])):
            shadows, params = [], []
            for n, p in module.named_parameters():
                if n in self.shadow:
                    if self.shadow[n].device != p.device:
                        self.shadow[n] = self.shadow[n].to(p.device)
                    shadows.append(self.shadow[n])
                    params.append(p)
            self._pairs = (key, shadows, params)
        return self._pairs[1], self._pairs[2]

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = self.current_decay()
        self.num_updates += 1
        shadows, params = self._lists(module)
        if shadows:
            torch._foreach_lerp_(shadows, [p.detach() for p in params], 1.0 - decay)

    @torch.no_grad()
    def swap_in(self, module: nn.Module) -> None:
        """Put the EMA weights into the module (keeping the raw ones aside)."""
        if self._backup is not None:
            return
        self._backup = {}
        for n, p in module.named_parameters():
            if n in self.shadow:
                self._backup[n] = p.detach().clone()
                p.copy_(self.shadow[n])

    @torch.no_grad()
    def swap_out(self, module: nn.Module) -> None:
        if self._backup is None:
            return
        for n, p in module.named_parameters():
            if n in self._backup:
                p.copy_(self._backup[n])
        self._backup = None

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": {k: v.detach().cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.num_updates = int(state.get("num_updates", 0))
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
        self._pairs = None


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim < 2 or "emb" in name or "norm" in name or "log_w" in name


def build_optimizer(model: nn.Module, o: OptimConfig, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; the fused kernel when the parameters are on CUDA
    (``fused=None``), the multi-tensor (foreach) one otherwise. Call it after the model is on its
    device. ``fused=False`` for fp16 mixed precision with gradient clipping (Lightning cannot clip
    the gradients of an optimiser that unscales them itself)."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if _no_decay(n, p) else decay).append(p)
    on_cuda = all(p.is_cuda for p in decay + no_decay) and bool(decay + no_decay)
    impl = {"fused": True} if (on_cuda if fused is None else fused and on_cuda) else {"foreach": True}
    return torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=o.lr, betas=tuple(o.betas), eps=o.eps, **impl)


def lr_factor(step: int, o: OptimConfig, total: int) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``min_lr_ratio`` (or constant)."""
    if step < o.warmup_steps:
        return (step + 1) / max(1, o.warmup_steps)
    if o.lr_schedule == "constant":
        return 1.0
    prog = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog))


class TrainStep:
    """``(x, pad_mask, generator) -> (objective, nats)`` per sequence, as ``SeqDiffModel.objective``.

    For the masked (MD4/MDLM) and score-entropy (SEDD) losses the step is split in two: the
    noise draw (``t`` and ``x_t`` from the seeded generator, a few element-wise kernels) runs
    eagerly, and the network plus the loss integrand — all the arithmetic — is one function that
    ``torch.compile`` captures as a single graph (no graph breaks; ``tests/test_fast_path.py``
    checks it). The other objectives (GenMD4's several draws and REINFORCE term, multinomial
    diffusion's step-range check, the AR baseline) compile the network only. Results are the same
    as ``SeqDiffModel.objective`` up to floating-point reassociation.

    ``padded``: pass ``False`` when the batch has no padding (known on the host, so no device
    sync): attention then runs unmasked, as the denoiser itself does for unpadded batches.

    Args:
        model: the :class:`~seqdiff.model.SeqDiffModel` (its parameters are used in place).
        compile: ``torch.compile`` the arithmetic; ``mode``: its mode (``"reduce-overhead"`` = CUDA
            graphs, for small models); ``backend``: the compile backend (``"inductor"``).
    """

    def __init__(self, model: SeqDiffModel, compile: bool = False, mode: str | None = None,
                 backend: str = "inductor") -> None:
        self.model = model
        self.mode = None if mode in (None, "default") else mode
        self.split = (not model.is_ar and model.loss.name in ("masked", "score_entropy")
                      and type(model.loss).training_loss is DiffusionLoss.training_loss)
        self.compiled = bool(compile)
        if self.split:
            self._fn = torch.compile(self._core, mode=self.mode, backend=backend, dynamic=False) \
                if compile else self._core
        else:
            if compile:
                model.network.compile(mode=self.mode, backend=backend)
            self._fn = self._whole

    def _core(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, loss_mask: torch.Tensor,
              attn_mask: torch.Tensor | None) -> torch.Tensor:
        m = self.model
        out = m.denoiser(x_t, t, attn_mask, padded=attn_mask is not None)
        return m.loss.integrand(out, m.denoiser.parameterization, x0, x_t, t, loss_mask) + \
            m.loss.prior_term(x0, loss_mask)

    def _whole(self, x: torch.Tensor, pad_mask: torch.Tensor, generator: torch.Generator | None):
        return self.model.objective(x, pad_mask, generator)

    def __call__(self, x: torch.Tensor, pad_mask: torch.Tensor, generator: torch.Generator | None = None,
                 padded: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.compiled and self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        if not self.split:
            return self._fn(x, pad_mask, generator)
        m = self.model
        loss: DiffusionLoss = m.loss
        scored = m.scored(x, pad_mask)
        t = loss.sample_t(x.shape[0], generator, x.device)
        x_t = loss.corrupt(x, t, generator, scored)
        if padded is None:
            padded = not bool(pad_mask.all())
        nats = self._fn(x, x_t, t, scored, pad_mask if padded else None)
        return nats, nats.detach()


class SeqDiffLightning(L.LightningModule):
    """Lightning wrapper around :class:`~seqdiff.model.SeqDiffModel`.

    The checkpoint's hyper-parameters hold the recipe, the tokenizer and the training length
    distribution, so a checkpoint is self-contained; the EMA weights are saved next to the state.
    """

    def __init__(self, config: dict, tokenizer: dict, length_histogram: list[int] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = SeqDiffModel(config, tokenizer, length_histogram)
        self.cfg: TrainConfig = self.model.cfg
        self.ema = EMA(self.model, self.cfg.optim.ema) if self.cfg.optim.ema > 0 else None
        #: the training hot path; `model.compile: true` compiles it (mode: `trainer.compile_mode`)
        self.step = TrainStep(self.model, compile=self.cfg.model.compile, mode=self.cfg.trainer.compile_mode)
        self._val = [0.0, 0]
        self._tok_time: tuple[float, int] | None = None
        self.tokens_seen = 0
        self.train_time = 0.0

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self):
        fp16 = str(self.cfg.trainer.precision).startswith("16")
        opt = build_optimizer(self.model, self.cfg.optim, fused=False if fp16 else None)
        total = self.cfg.trainer.max_steps
        o = self.cfg.optim
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, o, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, pad_mask = batch[0], batch[1]
        # prepared batches (data.TokenRows) carry their real-token count and padding flag from the
        # host, so the step needs no device sync; plain collated batches compute them here
        num_real, padded = (batch[2], batch[3]) if len(batch) > 2 else (int(pad_mask.sum()), None)
        g = step_generator(self.cfg.seed, 0, self.global_step, batch_idx % max(1, self.trainer.accumulate_grad_batches),
                           self.global_rank, device=x.device)
        obj, nats = self.step(x, pad_mask, g, padded)
        n_tok = self.model.scored(x, pad_mask).sum().clamp_min(1)
        loss = obj.sum() / n_tok
        self.tokens_seen += int(num_real) * self.trainer.world_size
        bpt = nats.sum() / (n_tok * math.log(2))
        self.log("train/loss", loss, prog_bar=False, batch_size=x.shape[0])
        self.log("train/bpt", bpt, prog_bar=True, batch_size=x.shape[0])
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        self._t0 = time.perf_counter()

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        # after every optimizer step (not micro-batch), and before checkpoint callbacks run
        if self.ema is not None:
            self.ema.update(self.model)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        dt = time.perf_counter() - self._t0
        self.train_time += dt
        n_tok = int(batch[2] if len(batch) > 2 else batch[1].sum()) * self.trainer.world_size
        if dt > 0:
            self.log("train/tok_per_s", n_tok / dt, prog_bar=True, batch_size=batch[0].shape[0])

    # -- evaluation (EMA weights) ---------------------------------------------------------------
    def on_validation_epoch_start(self):
        if self.ema is not None:
            self.ema.swap_in(self.model)
        self._val = [0.0, 0]

    def validation_step(self, batch, batch_idx):
        if self.cfg.data.max_valid_batches and batch_idx >= self.cfg.data.max_valid_batches:
            return
        x, pad_mask = batch
        g = step_generator(self.cfg.seed, 1, batch_idx, device=x.device)
        _, nats = self.model.objective(x, pad_mask, g)
        self._val[0] += float(nats.double().sum())
        self._val[1] += int(self.model.scored(x, pad_mask).sum())

    def on_validation_epoch_end(self):
        total, count = self._val
        if count:
            t = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)
            t = self.all_gather(t).reshape(-1, 2).sum(0) if self.trainer.world_size > 1 else t
            bpt = float(t[0] / (t[1] * math.log(2)))
            self.log("val/bpt", bpt, prog_bar=True, sync_dist=False, rank_zero_only=True)
            self.last_val_bpt = bpt
        if self.cfg.sampling.log_samples and self.global_rank == 0 and not self.trainer.sanity_checking:
            self._write_samples()
        if self.ema is not None:
            self.ema.swap_out(self.model)

    def _write_samples(self) -> None:
        n = self.cfg.sampling.log_samples
        g = step_generator(self.cfg.seed, 2, self.global_step)
        was = self.model.training
        self.model.eval()
        try:
            ids = self.model.generate(n, generator=g, steps=min(self.cfg.sampling.steps, 64))
        finally:
            self.model.train(was)
        texts = self.model.decode(ids)
        out = Path(self.cfg.out_dir) / "samples"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"step_{self.global_step:07d}.txt").write_text("\n".join(texts) + "\n")

    def test_step(self, batch, batch_idx):
        x, pad_mask = batch
        g = step_generator(self.cfg.seed, 3, batch_idx, device=x.device)
        res = self.model.nll(x, pad_mask, n_t=4, generator=g)
        self._val[0] += float(res.nats.sum())
        self._val[1] += int(res.num_tokens.sum())

    def on_test_epoch_start(self):
        self.on_validation_epoch_start()

    def on_test_epoch_end(self):
        total, count = self._val
        if count:
            self.test_bpt = total / (count * math.log(2))
            self.log("test/bpt", self.test_bpt)
        if self.ema is not None:
            self.ema.swap_out(self.model)

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint):
        if self.ema is not None:
            checkpoint["ema"] = self.ema.state_dict()
            # shadow keys as in SeqDiffModel.state_dict (the Lightning state prefixes "model.")
        checkpoint["seqdiff"] = {"tokens_seen": self.tokens_seen, "train_time": self.train_time}

    def on_load_checkpoint(self, checkpoint):
        if self.ema is not None and "ema" in checkpoint:
            self.ema.load_state_dict(checkpoint["ema"])
        extra = checkpoint.get("seqdiff", {})
        self.tokens_seen = extra.get("tokens_seen", 0)
        self.train_time = extra.get("train_time", 0.0)
