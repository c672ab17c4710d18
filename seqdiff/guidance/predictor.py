"""Property predictors on noisy sequences, for classifier guidance.

A predictor learns ``p(y | x_t)`` where ``x_t`` is a labelled sequence noised by the *same* forward
process and schedule as the diffusion model it will guide (masked/absorbing or uniform). Its
network is small (DiT blocks from :mod:`seqdiff.models.dit`, mean-pooled over the real positions,
a few hundred thousand parameters by default) and it has one of two heads:

``classes``
    ``log p(c | x_t)`` over named classes (labels, or numbers cut into bins), trained by
    cross-entropy on ``(x_t, c)`` pairs with ``t ~ U(0, 1)``. The minimiser of that objective is the
    exact noisy posterior ``p(c | x_t) = Σ_{x_0} p(c | x_0) q_t(x_0 | x_t)`` (tested by enumeration).
``gaussian``
    a mean and log-variance of a numeric property (in units of the training labels' standard
    deviation), trained by the Gaussian negative log-likelihood. A guidance target is then a value
    ``v`` (``log N(v; μ, σ²)``) or a range (``log P(lo ≤ y ≤ hi) = log(Φ(b) − Φ(a))``).

Time: for the masked process ``q_t(x_0 | x_t)`` — and so ``p(y | x_t)`` — does not depend on ``t``
(the likelihood of ``x_t`` is ``α^{#kept}(1−α)^{#masked}`` for every consistent ``x_0``), so a
masked-process predictor takes no time input; a uniform-process predictor is time-conditioned
through adaLN. State-dependent schedules (GenMD4) are not supported.

Files (``predictor.pt``) use the project's safe model format (:mod:`seqdiff.serialization`: tensors
and plain data, read without unpickling code): ``format: seqdiff-predictor`` with the predictor's
settings, the diffusion model's tokenizer and diffusion section (checked against the model it is
used with), the label statistics and the weights.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.attention import AttentionContext
from ..models.dit import DiTBlock, LayerNorm, TimestepEmbedder, _zero_init_modulations, init_weights
from ..models.rotary import RotaryEmbedding, rotary_phases
from ..serialization import ModelLoadError, safe_load, save_atomic, storage_state

__all__ = ["PredictorNet", "Predictor", "PredictorTarget", "load_predictor", "parse_target", "noise_process",
           "predictor_loss", "gaussian_log_prob", "onehot_first_order", "PREDICTOR_FORMAT"]

PREDICTOR_FORMAT = "seqdiff-predictor"
PREDICTOR_VERSION = 1
_LOGVAR_MIN, _LOGVAR_MAX = -12.0, 6.0


class PredictorNet(nn.Module):
    """``(x [B, L], t [B]) -> [B, n_out]``: token embedding, DiT blocks (adaLN-zero time conditioning
    when ``time_conditioning``), LayerNorm, mean over the real positions, a linear head (zero at
    initialisation: uniform classes, or ``μ = 0, log σ² = 0``).

    ``embedded``: the token embeddings ``[B, L, d]`` to use instead of ``embed(x)`` (the first-order
    guidance differentiates through a one-hot ``@ embed.weight``)."""

    def __init__(self, vocab_size: int, n_out: int, *, d_model: int = 128, n_layers: int = 2, n_heads: int = 4,
                 cond_dim: int = 64, mlp_ratio: float = 2.0, time_conditioning: bool = False,
                 pad_id: int | None = None) -> None:
        super().__init__()
        self.settings = dict(vocab_size=vocab_size, n_out=n_out, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                             cond_dim=cond_dim, mlp_ratio=mlp_ratio, time_conditioning=time_conditioning,
                             pad_id=pad_id)
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model)
        self.time_embed = TimestepEmbedder(cond_dim) if time_conditioning else None
        self.rotary = RotaryEmbedding(d_model // n_heads)
        self.blocks = nn.ModuleList(DiTBlock(d_model, n_heads, mlp_ratio, 0.0, cond_dim if time_conditioning else None)
                                    for _ in range(n_layers))
        self.norm = LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_out)
        init_weights(self)
        _zero_init_modulations(self)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()

    def forward(self, x: Tensor, t: Tensor | None = None, embedded: Tensor | None = None) -> Tensor:
        real = x != self.pad_id if self.pad_id is not None else torch.ones_like(x, dtype=torch.bool)
        h = self.embed(x) if embedded is None else embedded
        c = None
        if self.time_embed is not None:
            tt = torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1)
            c = F.silu(self.time_embed(tt.expand(x.shape[0]) if tt.numel() == 1 else tt))
        rot = rotary_phases(*self.rotary(x.shape[1], x.device))
        ctx = AttentionContext(pad_mask=None if bool(real.all()) else real, causal=False, backend="sdpa")
        for block in self.blocks:
            h = block(h, rot, ctx, c)
        h = self.norm(h).float()
        w = real.float()[..., None]
        pooled = (h * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.head(pooled)


def gaussian_log_prob(mu: Tensor, logvar: Tensor, lo: float | None, hi: float | None) -> Tensor:
    """``log P(lo ≤ y ≤ hi)`` for ``y ~ N(μ, e^{logvar})`` (``None``: unbounded), stable in the tails
    (the upper tail is computed as the lower tail of ``−y``); ``lo == hi`` is the log density at that
    value."""
    sd = torch.exp(0.5 * logvar)
    if lo is not None and hi is not None and lo == hi:
        return -0.5 * (math.log(2 * math.pi) + logvar + ((lo - mu) / sd) ** 2)
    if lo is None:
        return torch.special.log_ndtr((hi - mu) / sd)
    if hi is None:
        return torch.special.log_ndtr((mu - lo) / sd)
    a, b = (lo - mu) / sd, (hi - mu) / sd
    # P = Φ(b) − Φ(a) = Φ(−a) − Φ(−b); use the side whose terms are small (no cancellation of two ~1s)
    upper = a > 0
    lb = torch.special.log_ndtr(torch.where(upper, -a, b))
    ls = torch.special.log_ndtr(torch.where(upper, -b, a))
    return lb + torch.log(-torch.expm1((ls - lb).clamp_max(-1e-12)))


def predictor_loss(out: Tensor, y: Tensor, kind: str) -> Tensor:
    """Per-row objective: cross-entropy of the class (``kind='classes'``, ``y`` long) or the Gaussian
    negative log-likelihood of the normalised value (``'gaussian'``, ``y`` float), in nats."""
    if kind == "classes":
        return F.cross_entropy(out.float(), y, reduction="none")
    mu, logvar = out[:, 0].float(), out[:, 1].float().clamp(_LOGVAR_MIN, _LOGVAR_MAX)
    return 0.5 * (math.log(2 * math.pi) + logvar + (y.float() - mu) ** 2 * torch.exp(-logvar))


def noise_process(diffusion: dict, num_data_tokens: int):
    """``(process, schedule, loss)`` of a diffusion recipe section, built as :class:`SeqDiffModel` builds
    them (the predictor needs the forward process, not the network)."""
    from ..diffusion import build_loss, build_process, build_schedule
    if diffusion["process"] == "absorbing":
        process = build_process("absorbing", vocab_size=num_data_tokens + 1, mask_id=num_data_tokens)
    else:
        process = build_process("uniform", vocab_size=num_data_tokens)
    spec = dict(diffusion.get("schedule") or {"name": "linear"})
    if spec.get("name") == "genmd4" or diffusion.get("loss") == "genmd4":
        raise ValueError("a property predictor needs a fixed noise schedule; GenMD4's learnt, state-dependent "
                         "schedule is not supported")
    schedule = build_schedule(spec)
    return process, schedule, build_loss(diffusion["loss"], process, schedule)


class Predictor(nn.Module):
    """A trained (or untrained) noisy-sequence property predictor with what it was trained for."""

    def __init__(self, spec: dict, tokenizer: dict, diffusion: dict, net_state: dict | None = None) -> None:
        super().__init__()
        from ..tokenizers import tokenizer_from_dict
        self.spec = dict(spec)
        self.tokenizer_dict = dict(tokenizer)
        self.diffusion = dict(diffusion)
        self.tokenizer = tokenizer_from_dict(tokenizer)
        self.kind = spec["kind"]
        if self.kind not in ("classes", "gaussian"):
            raise ValueError(f"predictor kind must be classes or gaussian, got {self.kind!r}")
        self.process, self.schedule, self.loss = noise_process(diffusion, self.tokenizer.num_data_tokens)
        n_out = len(spec["classes"]) if self.kind == "classes" else 2
        self.net = PredictorNet(self.tokenizer.vocab_size, n_out, time_conditioning=diffusion["process"] != "absorbing",
                                pad_id=self.tokenizer.pad_id, **spec["network"])
        if net_state is not None:
            self.net.load_state_dict(net_state)

    # -- what it predicts -----------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.spec.get("classes") or [])

    def describe(self) -> str:
        what = (f"classes of {self.spec['column']!r} ({', '.join(self.classes)})" if self.kind == "classes" else
                f"a Gaussian of {self.spec['column']!r} (training mean {self.spec['mean']:.4g}, sd {self.spec['std']:.4g})")
        n = sum(p.numel() for p in self.net.parameters())
        return f"property predictor: {what}; {n / 1e6:.2f}M params; {self.diffusion['process']} process"

    def forward(self, x: Tensor, t: Tensor | None = None, embedded: Tensor | None = None) -> Tensor:
        """Raw outputs: class logits ``[B, C]``, or ``[B, 2]`` (normalised mean, log-variance)."""
        return self.net(x, t, embedded)

    def log_probs(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        """``log p(c | x_t)`` ``[B, C]`` (classes predictors)."""
        if self.kind != "classes":
            raise ValueError("this predictor is Gaussian; it has no classes")
        return torch.log_softmax(self.net(x, t).float(), -1)

    def mean_sd(self, x: Tensor, t: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Predicted mean and standard deviation in the property's units (Gaussian predictors)."""
        out = self.net(x, t).float()
        mu = out[:, 0] * self.spec["std"] + self.spec["mean"]
        sd = torch.exp(0.5 * out[:, 1].clamp(_LOGVAR_MIN, _LOGVAR_MAX)) * self.spec["std"]
        return mu, sd

    def check_compatible(self, model, name: str = "the classifier") -> None:
        """``ValueError`` (one line) unless ``model`` has this predictor's tokenizer and noise process."""
        if model.is_ar:
            raise ValueError("classifier guidance needs a diffusion model; the AR baseline has no reverse process")
        mine, theirs = self.tokenizer_dict, model.tokenizer.to_dict()
        if mine != theirs:
            raise ValueError(f"{name} was trained for another vocabulary ({mine.get('kind')}, "
                             f"{self.tokenizer.num_data_tokens} tokens) than this model's ({theirs.get('kind')}, "
                             f"{model.tokenizer.num_data_tokens} tokens)")
        md = model.cfg.diffusion
        if md.process != self.diffusion["process"] or dict(md.schedule or {"name": "linear"}) != \
                dict(self.diffusion.get("schedule") or {"name": "linear"}):
            raise ValueError(f"{name} was trained on the {self.diffusion['process']} process with schedule "
                             f"{self.diffusion.get('schedule')}; this model uses the {md.process} process with "
                             f"schedule {md.schedule}")

    def target(self, text: str) -> "PredictorTarget":
        return PredictorTarget(self, *parse_target(self, text))

    # -- files ----------------------------------------------------------------------------------
    def export_dict(self, dtype: torch.dtype | None = None) -> dict[str, Any]:
        """The file's contents; ``dtype`` (e.g. ``torch.bfloat16``) stores floating weights in that type
        (half the size; :func:`load_predictor` casts them back to float32)."""
        return {"format": PREDICTOR_FORMAT, "version": PREDICTOR_VERSION, "predictor": self.spec,
                "tokenizer": self.tokenizer_dict, "diffusion": self.diffusion,
                "state_dict": storage_state(self.net.state_dict(), dtype)}

    def save(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Atomic write in the safe model format (read back before it is renamed into place); ``dtype``
        as in :meth:`export_dict`."""
        return save_atomic(self.export_dict(dtype), path)


def load_predictor(path: str | os.PathLike) -> Predictor:
    """A predictor file, opened safely (no code can run); :class:`ModelLoadError` naming the file otherwise."""
    p = Path(path)
    obj = safe_load(p)
    if obj.get("format") == "seqdiff-model" or "hyper_parameters" in obj:
        raise ModelLoadError(f"{p}: a diffusion model, not a property predictor (train one with "
                             f"`predictor.column` in a recipe)")
    if obj.get("format") != PREDICTOR_FORMAT:
        raise ModelLoadError(f"{p}: not a seqdiff property predictor")
    for key in ("predictor", "tokenizer", "diffusion", "state_dict"):
        if not isinstance(obj.get(key), dict):
            raise ModelLoadError(f"{p}: a property predictor without its `{key}`: the file is incomplete")
    try:
        pred = Predictor(obj["predictor"], obj["tokenizer"], obj["diffusion"], obj["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"{p}: the settings or weights of this property predictor are not valid ({first})") from None
    return pred.eval()


# -------------------------------------------------------------------------------------- targets
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUM})?\s*\.\.\s*({_NUM})?\s*")


def parse_target(pred: Predictor, text: str) -> tuple[list[int] | None, float | None, float | None]:
    """``(class indices, lo, hi)`` of a ``--target``: for a classes predictor one or more class names
    (``A,B``: either) or a number inside a bin; for a Gaussian predictor a value ``V`` or a range
    ``LO..HI`` / ``LO..`` / ``..HI`` (in the property's units). ``ValueError`` (one line) otherwise."""
    text = str(text).strip()
    if not text:
        raise ValueError("--target is empty")
    if pred.kind == "classes":
        names = pred.classes
        parts = [s.strip() for s in text.split(",")] if text not in names else [text]
        out = []
        for part in parts:
            if part in names:
                out.append(names.index(part))
                continue
            bins = pred.spec.get("bins")
            try:
                v = float(part)
            except ValueError:
                v = None
            if bins and v is not None and math.isfinite(v):
                import bisect
                out.append(bisect.bisect_right([float(b) for b in bins], v))
                continue
            raise ValueError(f"target {part!r} is not a class of this predictor ({pred.spec['column']!r}: "
                             f"{', '.join(names)}{'; or a number' if bins else ''})")
        return sorted(set(out)), None, None
    m = _RANGE.fullmatch(text)
    if m is not None:
        lo = float(m.group(1)) if m.group(1) else None
        hi = float(m.group(2)) if m.group(2) else None
        if lo is None and hi is None:
            raise ValueError(f"target range {text!r} has no bounds (LO..HI, LO.. or ..HI)")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"target range {text!r} is empty (LO must be below HI)")
        return None, lo, hi
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"target {text!r} is not a number or a range LO..HI (this predictor is Gaussian: "
                         f"{pred.spec['column']!r})") from None
    if not math.isfinite(v):
        raise ValueError(f"target {text!r} is not finite")
    return None, v, v


class PredictorTarget:
    """``log p(target | x_t)`` of a predictor as a classifier for :func:`classifier_guided`:
    ``__call__(x, t) -> [B, 1]`` (class index 0), and :meth:`first_order` for the gradient
    approximation."""

    def __init__(self, pred: Predictor, classes: list[int] | None, lo: float | None, hi: float | None,
                 chunk: int = 4096) -> None:
        self.pred, self.classes, self.lo, self.hi, self.chunk = pred, classes, lo, hi, chunk
        if classes is None:  # the bounds in normalised units
            m, s = pred.spec["mean"], pred.spec["std"]
            self.nlo = None if lo is None else (lo - m) / s
            self.nhi = None if hi is None else (hi - m) / s

    def describe(self) -> str:
        if self.classes is not None:
            return ",".join(self.pred.classes[c] for c in self.classes)
        if self.lo is not None and self.lo == self.hi:
            return f"{self.lo:g}"
        return f"{'' if self.lo is None else f'{self.lo:g}'}..{'' if self.hi is None else f'{self.hi:g}'}"

    def _from_out(self, out: Tensor) -> Tensor:
        if self.classes is not None:
            return torch.logsumexp(torch.log_softmax(out.float(), -1)[:, self.classes], -1)
        lp = gaussian_log_prob(out[:, 0].float(), out[:, 1].float().clamp(_LOGVAR_MIN, _LOGVAR_MAX), self.nlo, self.nhi)
        if self.lo is not None and self.lo == self.hi:  # a density: in the property's units
            lp = lp - math.log(self.pred.spec["std"])
        return lp

    def _time(self, t, b: int, device) -> Tensor:
        t = torch.as_tensor(0.0 if t is None else t, device=device).float().reshape(-1)
        return t.expand(b) if t.numel() == 1 else t

    @torch.no_grad()
    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        t = self._time(t, x.shape[0], x.device)
        outs = [self._from_out(self.pred(x[i:i + self.chunk], t[i:i + self.chunk]))
                for i in range(0, x.shape[0], self.chunk)]
        return torch.cat(outs)[:, None].double()

    def first_order(self, x: Tensor, t: Tensor, n_states: int) -> tuple[Tensor, Tensor]:
        """``(log p(target | x) [B], ∂ log p / ∂ onehot(x) [B, L, n_states])``: the gradient with respect
        to the one-hot input (through the embedding), for the first-order change estimate
        ``log p(x^{i←y}) ≈ log p(x) + g[i, y] − g[i, x_i]``."""
        t = self._time(t, x.shape[0], x.device)
        w = self.pred.net.embed.weight
        return onehot_first_order(lambda oh: self._from_out(self.pred(x, t, embedded=oh @ w)), x, w.shape[0],
                                  n_states, w.dtype)


def onehot_first_order(fn, x: Tensor, width: int, n_states: int, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """``(fn(onehot(x)) [B], ∂ fn / ∂ onehot [B, L, n_states])`` for a function of one-hot inputs
    ``[B, L, width]`` (``width ≥ n_states``: ids beyond the process's states, e.g. padding, are inputs
    only)."""
    with torch.enable_grad():
        onehot = F.one_hot(x, width).to(dtype).requires_grad_(True)
        lp = fn(onehot)
        (grad,) = torch.autograd.grad(lp.sum(), onehot)
    return lp.detach().double(), grad[..., :n_states].double()
