"""`seqdiff gpu-train`: one time-budgeted command that measures training throughput and MFU, then
trains the default model of every domain (text, DNA, protein, SMILES) and writes each one as soon
as it is finished.

Made for a bare CUDA machine with a hard time limit per command: it needs only PyTorch, numpy and
the repository (Lightning is not used on this path: a plain loop has no per-step hooks, and the time
budget is checked between steps), optionally installs wheels offline from a folder (``--wheels``:
einops, Biopython, RDKit...), and reads the repository's data slices or the corpora fetched by
``seqdiff data fetch`` (preferred when present). Run from a checkout without installing it::

    PYTHONPATH=. python -m seqdiff.cli gpu-train --budget 600 --out gpu-run --wheels wheels/

Phases, all inside ``--budget`` seconds (wall clock from the start of the command):

1. **Throughput** (at most ``--throughput-share`` of the budget): each domain's recipe is built
   (model, fused AdamW, foreach EMA, prepared token rows on the device, the compiled train step)
   and timed over a few steps after warm-up (compilation); on CUDA also a dense bf16 matmul and,
   with ``--mfu-recipe``, a large model. Tokens/s and MFU go to ``throughput.json`` and the summary.
   MFU = (6·N_matmul + 12·n_layers·L·d) FLOPs per token × tokens/s ÷ the device's dense bf16 peak
   (:data:`PEAK_BF16_TFLOPS`, matched on the device name; ``--peak-tflops`` overrides).
2. **Training**, time-sliced: the domains train one after another, each in an equal share of the
   time left (what one domain leaves unused goes to the next). The cosine learning-rate schedule
   is stretched over the number of steps that fit in the slice (from the measured step time).
3. As soon as a domain is finished: EMA weights, rounded to bf16 (``--store bf16``, the default)
   and evaluated as stored: held-out bits per token on the test split of the repository's slice,
   also for the currently shipped model when it is comparable (same tokenizer and row length),
   then ``DIR/<domain>/model.pt`` (the project's model format, :meth:`SeqDiffModel.save`),
   ``recipe.yaml``, ``metrics.json``, ``samples.txt``, and ``DIR/summary.json`` — each written
   atomically (temp file + rename), so a run killed at any moment leaves every finished model whole
   and listed. SIGTERM stops the current domain early and still writes it.

A second run with the same ``--out`` skips the domains already finished there (``--force`` redoes them).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..atomic import write_atomic

__all__ = ["PEAK_BF16_TFLOPS", "DOMAINS", "flops_per_token", "peak_tflops", "main", "configure", "run"]

REPO = Path(__file__).resolve().parents[2]

def _gpu_domains() -> dict[str, str]:
    """Domains with a GPU default recipe (configs/gpu-default/<domain>.yaml) -> the corpus
    `seqdiff data fetch` produces for them (used instead of the slice when present)."""
    from ..domains import domains
    return {d.name: d.corpus or "" for d in domains().values()
            if (REPO / "configs" / "gpu-default" / f"{d.name}.yaml").is_file()}


FETCHED = _gpu_domains()
DOMAINS = tuple(FETCHED)
#: dense (no 2:4 sparsity) bf16 tensor-core peaks in TFLOP/s, matched against the CUDA device name
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0, "H100": 989.0, "GH200": 989.0, "H800": 989.0, "B200": 2250.0, "A100": 312.0,
    "A800": 312.0, "L40S": 362.0, "L40": 181.0, "A10": 125.0, "L4": 121.0, "4090": 165.0, "3090": 71.0,
}


# ----------------------------------------------------------------------------------------- files
def _record_throughput(summary: dict, row: dict, peak: float | None) -> None:
    """Add a throughput row (with its MFU against ``peak`` TFLOP/s) to the summary and print it."""
    row["mfu"] = row["achieved_tflops"] / peak if peak else None
    summary["throughput"].append(row)
    step = f", {row['step_ms']:.1f} ms/step" if "step_ms" in row else ""
    print(f"  throughput {row['recipe']}: {row['tokens_per_s']:,.0f} tokens/s{step}"
          + (f", MFU {row['mfu']:.1%}" if row.get("mfu") else ""), flush=True)


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------------------------ FLOPs
def flops_per_token(network, seq_len: int) -> float:
    """Training FLOPs per token of a DiT/AR network: ``6·N + 12·n_layers·L·d``.

    ``N`` counts the weights of the per-token matmuls (not the embedding lookup, not the
    per-sequence adaLN/time layers); ``12·n_layers·L·d`` is the attention scores and values
    (2 matmuls of ``2·L·d`` FLOPs per token forward, ×3 for forward + backward).
    """
    from torch import nn

    from ..models.dit import Modulation, TimestepEmbedder

    skip: set[int] = set()
    for m in network.modules():
        if isinstance(m, (Modulation, TimestepEmbedder)):
            skip.update(id(p) for p in m.parameters())
    n = sum(m.weight.numel() for m in network.modules() if isinstance(m, nn.Linear) and id(m.weight) not in skip)
    cfg = network.config
    return 6.0 * n + 12.0 * cfg.n_layers * seq_len * cfg.d_model


def peak_tflops(device_name: str) -> tuple[float | None, str]:
    """``(dense bf16 peak, which table entry)`` for a CUDA device name; ``(None, ...)`` if unknown."""
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_BF16_TFLOPS[key], f"table entry {key!r} (dense bf16)"
    return None, "unknown device: pass --peak-tflops"


# ------------------------------------------------------------------------------------- the runs
class _Stop(Exception):
    """SIGTERM arrived: stop training, write what is finished."""


class DomainRun:
    """One domain's recipe built for time-budgeted training: model, optimiser, EMA, compiled step,
    training rows on the device."""

    def __init__(self, recipe: Path, overrides: list[str], device, args) -> None:
        import torch

        from ..config import load_config
        from .data import ResumableBatchSampler, TokenRows, build_datasets, build_tokenizer_for
        from .module import EMA, TrainStep, build_optimizer
        from ..model import SeqDiffModel

        self.torch = torch
        self.device = device
        cfg = load_config(recipe, overrides)
        self.fetched = _use_fetched(cfg, args.data)
        self.cfg = cfg
        self.tokenizer = build_tokenizer_for(cfg)
        ds = build_datasets(cfg, self.tokenizer)
        self.datasets = ds
        hist = ds["train"].length_histogram(cfg.data.seq_len) if hasattr(ds["train"], "length_histogram") else None
        self.length_histogram = [int(c) for c in hist] if hist is not None else None
        if not TokenRows.supports(ds["train"]):
            raise ValueError(f"{recipe}: gpu-train needs a window, packed or padded training layout")
        self.rows = TokenRows(ds["train"], self.tokenizer.pad_id).to(device)
        torch.manual_seed(cfg.seed)
        self.model = SeqDiffModel(cfg, self.tokenizer, self.length_histogram).to(device).train()
        self.opt = build_optimizer(self.model, cfg.optim)
        self.ema = EMA(self.model, cfg.optim.ema) if cfg.optim.ema > 0 else None
        # the recipes ask for compilation; on CPU it would spend the budget compiling, so "recipe" means
        # compiled on CUDA only
        compile_ = (cfg.model.compile and device.type == "cuda") if args.compile == "recipe" else args.compile == "on"
        mode = cfg.trainer.compile_mode if device.type == "cuda" else "default"  # CUDA graphs need CUDA
        self.step_fn = TrainStep(self.model, compile=compile_, mode=mode)
        self.sampler = ResumableBatchSampler(len(self.rows), cfg.data.batch_size, cfg.seed)
        self.bf16 = device.type == "cuda"
        self.step = 0
        self.total_steps = cfg.trainer.max_steps
        self.tokens = 0
        self.train_seconds = 0.0
        self.flops_tok = flops_per_token(self.model.network, cfg.data.seq_len)
        self.last_loss = float("nan")

    def train_steps(self, n: int | None, until: float, stop_flag: list[bool]) -> int:
        """Optimiser steps until ``n`` are done or the clock passes ``until``; returns steps done."""
        from .module import lr_factor, step_generator
        torch = self.torch
        cfg = self.cfg
        done = 0
        params = [p for p in self.model.parameters() if p.requires_grad]
        while (n is None or done < n) and time.monotonic() < until and not stop_flag[0]:
            batch = self.rows[self.sampler.positions(self.step)]
            g = step_generator(cfg.seed, 0, self.step, 0, 0, device=self.device)
            for group in self.opt.param_groups:
                group["lr"] = cfg.optim.lr * lr_factor(self.step, cfg.optim, self.total_steps)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                obj, _ = self.step_fn(batch.x, batch.pad_mask, g, batch.padded)
                n_tok = self.model.scored(batch.x, batch.pad_mask).sum().clamp_min(1)
                loss = obj.sum() / n_tok
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip, foreach=True)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            self.tokens += batch.num_real
            done += 1
            if done % 50 == 0 and self.device.type == "cuda":
                torch.cuda.synchronize()  # keep the clock honest: the queue never runs far ahead
        self.last_loss = float(loss.detach()) if done else self.last_loss
        return done

    def timed(self, warmup: int, steps: int, until: float, stop_flag: list[bool]) -> dict | None:
        """Warm up (compilation), then time ``steps`` steps: tokens/s and MFU."""
        torch = self.torch
        if self.train_steps(warmup, until, stop_flag) < warmup:
            return None
        self._sync()
        t0, tok0 = time.perf_counter(), self.tokens
        k = self.train_steps(steps, until, stop_flag)
        self._sync()
        dt = time.perf_counter() - t0
        if k == 0 or dt <= 0:
            return None
        tok_s = (self.tokens - tok0) / dt
        rows_tok = k * self.cfg.data.batch_size * self.cfg.data.seq_len / dt  # incl. padding (FLOPs)
        self.train_seconds += dt
        return {"recipe": self.cfg.name, "domain": self.cfg.data.kind, "parameters": self.model.num_parameters(),
                "batch": self.cfg.data.batch_size, "seq_len": self.cfg.data.seq_len, "steps": k,
                "step_ms": 1000 * dt / k, "tokens_per_s": tok_s, "flops_per_token": self.flops_tok,
                "achieved_tflops": self.flops_tok * rows_tok / 1e12,
                "compiled": self.step_fn.compiled, "compile_mode": self.step_fn.mode or "default",
                "dtype": "bf16 autocast" if self.bf16 else "fp32", "torch": torch.__version__}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


def _use_fetched(cfg, mode: str) -> bool:
    """Point the recipe's train/valid split at the fetched corpus when asked (or when present)."""
    if mode == "repo":
        return False
    from ..data.fetch import default_root
    root = default_root() / FETCHED[cfg.data.kind]
    ext = Path(cfg.data.train).name.split(".", 1)[1]
    train, valid = root / f"train.{ext}", root / f"valid.{ext}"
    if train.is_file() and valid.is_file():
        cfg.data.train, cfg.data.valid = str(train), str(valid)
        return True
    if mode == "fetched":
        raise FileNotFoundError(f"{train}: not fetched (run: seqdiff data fetch {FETCHED[cfg.data.kind]})")
    return False


# ---------------------------------------------------------------------------------- evaluation
def _heldout_rows(run: DomainRun, max_rows: int):
    """The first rows of the recipe's test split (else its validation file), as ``(x, pad_mask)``.

    Only the training (and validation) files are swapped for a fetched corpus, so this is the
    repository slice's test split: the rows the shipped models are compared on.
    """
    import torch

    from .data import _encode, _rows
    cfg = run.cfg
    path = cfg.data.test or cfg.data.valid
    held = _rows(cfg, run.tokenizer, _encode(cfg, run.tokenizer, path, split="held-out", skip_invalid=True),
                 train=False)
    n = min(len(held), max_rows)
    x = torch.stack([held[i] for i in range(n)])
    return x, x != run.tokenizer.pad_id


def _bits_per_token(model, x, pad, n_t: int, batch: int) -> float:
    import torch
    g = torch.Generator().manual_seed(1234)  # the same noise for every model compared
    res = model.nll(x, pad, n_t=n_t, generator=g, batch_size=batch)
    count = int(model.scored(x, pad).sum())
    return float(res.nats.sum()) / (count * math.log(2))


def _finish(run: DomainRun, out: Path, args, extra: dict) -> dict:
    """EMA weights -> (bf16) -> held-out bits/token, shipped comparison, samples -> files."""
    import torch
    import yaml

    from ..model import SeqDiffModel, load_model
    from ..pretrained import available
    dom = run.cfg.data.kind
    model = run.model
    if run.ema is not None:
        run.ema.swap_in(model)
    model.eval()
    if args.store == "bf16":
        with torch.no_grad():  # evaluate exactly what is stored
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
    x, pad = _heldout_rows(run, args.eval_rows)
    ev_dev = run.device
    t0 = time.perf_counter()
    bpt = _bits_per_token(model, x.to(ev_dev), pad.to(ev_dev), args.eval_nt, args.eval_batch)
    metrics: dict[str, Any] = {"domain": dom, "heldout_rows": int(x.shape[0]), "heldout_tokens": int(pad.sum()),
                               "heldout_bits_per_token": bpt, "eval_n_t": args.eval_nt}
    shipped = available().get(dom)
    if shipped is not None:
        old = load_model(shipped)
        same = (old.tokenizer.to_dict() == run.tokenizer.to_dict() and old.max_len >= x.shape[1])
        metrics["shipped_model"] = str(shipped.relative_to(REPO)) if shipped.is_relative_to(REPO) else str(shipped)
        if same:
            old.to(ev_dev)
            metrics["shipped_heldout_bits_per_token"] = _bits_per_token(old, x.to(ev_dev), pad.to(ev_dev),
                                                                         args.eval_nt, args.eval_batch)
            metrics["beats_shipped"] = bpt < metrics["shipped_heldout_bits_per_token"]
        else:
            metrics["shipped_comparable"] = False
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 2)
    g = torch.Generator().manual_seed(7)
    ids = model.generate(args.samples, steps=args.sample_steps, generator=g)
    samples = model.decode(ids)
    model.cpu()
    old = None
    folder = out / dom
    stored = model.to(torch.bfloat16) if args.store == "bf16" else model
    stored.save(folder / "model.pt")
    model.float()
    write_atomic(folder / "recipe.yaml", yaml.safe_dump(run.cfg.to_dict(), sort_keys=False))
    write_atomic(folder / "samples.txt", "\n".join(samples) + "\n")
    metrics.update(extra)
    _write_json(folder / "metrics.json", metrics)
    return metrics


# ------------------------------------------------------------------------------------------ main
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", type=float, required=True, help="wall-clock seconds for the whole command")
    p.add_argument("--out", required=True, help="output folder (created; finished domains are skipped)")
    p.add_argument("--wheels", help="folder of wheels to install offline first (pip --no-index --find-links)")
    p.add_argument("--recipes", default=str(REPO / "configs" / "gpu-default"),
                   help="folder with <domain>.yaml recipes (default configs/gpu-default)")
    p.add_argument("--domains", nargs="+", choices=DOMAINS, default=list(DOMAINS),
                   help="domains to train, in this order (default: every domain with a recipe in --recipes)")
    p.add_argument("--override", action="append", default=[], help="recipe override for every domain, "
                   "e.g. data.max_records=2000 (repeatable)")
    p.add_argument("--data", choices=("auto", "fetched", "repo"), default="auto",
                   help="training corpus: fetched (seqdiff data fetch) if present, else the repository slice")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--compile", choices=("recipe", "on", "off"), default="recipe",
                   help="torch.compile the train step: as the recipe says (model.compile; off on CPU), on, off")
    p.add_argument("--throughput-share", type=float, default=0.15, help="budget share of the throughput phase")
    p.add_argument("--throughput-steps", type=int, default=20, help="timed steps per throughput row")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before each throughput row")
    p.add_argument("--mfu-recipe", default=None, help="also time this recipe (e.g. configs/text8-gpu.yaml) "
                   "for MFU, with random tokens (default on CUDA: configs/text8-gpu.yaml; 'none' to skip)")
    p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device")
    p.add_argument("--store", choices=("bf16", "fp32"), default="bf16", help="weight storage of the models")
    p.add_argument("--eval-rows", type=int, default=256, help="held-out rows of each model's bound")
    p.add_argument("--eval-nt", type=int, default=16, help="time points per sequence of the held-out bound")
    p.add_argument("--eval-batch", type=int, default=2048, help="rows per batch of the held-out bound")
    p.add_argument("--samples", type=int, default=8, help="sequences each model writes as a sample")
    p.add_argument("--sample-steps", type=int, default=64, help="sampling steps of those samples")
    p.add_argument("--reserve", type=float, default=0.1,
                   help="share of each domain's slice kept for evaluation and writing")
    p.add_argument("--force", action="store_true", help="retrain domains already finished in --out")


def _install_wheels(folder: str) -> list[str]:
    wheels = sorted(str(w) for w in Path(folder).glob("*.whl"))
    if not wheels:
        raise FileNotFoundError(f"{folder}: no .whl files")
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", folder, *wheels]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise ValueError(f"{folder}: offline wheel install failed: {r.stderr.strip().splitlines()[-1:]}")
    return [Path(w).name for w in wheels]


def _check_imports(domains: list[str]) -> None:
    missing = []
    from ..domains import get_domain
    fasta = any(get_domain(d).file_format == "fasta" for d in domains)
    need = ["numpy", "yaml", "einops"] + (["Bio"] if fasta else [])
    for mod in need:
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        names = {"yaml": "pyyaml", "Bio": "biopython"}
        raise ValueError(f"missing Python packages: {', '.join(names.get(m, m) for m in missing)} "
                         "(bring their wheels and pass --wheels DIR)")


def _mfu_probe(recipe: str, device, args, until: float) -> dict | None:
    """Time a (large) recipe on random tokens: the MFU of the model size the issue targets."""
    import torch

    from ..model import SeqDiffModel
    from ..tokenizers import build_tokenizer
    from ..config import load_config
    from .module import TrainStep, build_optimizer, step_generator
    cfg = load_config(recipe)
    from ..domains import get_domain
    kind = get_domain(cfg.data.kind).tokenizer_kind
    tok = build_tokenizer(kind) if kind != "smiles" else None  # the SMILES vocabulary is built from data
    if tok is None:
        return None
    model = SeqDiffModel(cfg, tok).to(device).train()
    opt = build_optimizer(model, cfg.optim)
    step = TrainStep(model, compile=True, mode=cfg.trainer.compile_mode)
    B, L = cfg.data.batch_size, cfg.data.seq_len
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, tok.num_data_tokens, (B, L), device=device, generator=g)
    pad = torch.ones_like(x, dtype=torch.bool)
    times = []
    for k in range(args.warmup_steps + args.throughput_steps):
        if time.monotonic() > until:
            return None
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            obj, _ = step(x, pad, step_generator(0, k, device=device), False)
            loss = obj.sum() / pad.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if k >= args.warmup_steps:
            times.append(time.perf_counter() - t0)
    dt = sorted(times)[len(times) // 2]
    ft = flops_per_token(model.network, L)
    return {"recipe": cfg.name, "parameters": model.num_parameters(), "batch": B, "seq_len": L,
            "step_ms": 1000 * dt, "tokens_per_s": B * L / dt, "flops_per_token": ft,
            "achieved_tflops": ft * B * L / dt / 1e12, "compiled": True, "compile_mode": cfg.trainer.compile_mode,
            "data": "random tokens"}


def _matmul_probe(device) -> float:
    import torch
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192 ** 3 * 10 / (time.perf_counter() - t0) / 1e12


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    deadline = start + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob(".*.tmp"):  # temp files of a killed earlier run (never final files)
        stale.unlink(missing_ok=True)
    installed = _install_wheels(args.wheels) if args.wheels else []
    _check_imports(args.domains)
    import torch

    stop = [False]

    def on_term(signum, frame):  # finish the current domain early, write it, then stop
        stop[0] = True

    old_handler = signal.signal(signal.SIGTERM, on_term)
    try:
        return _run(args, out, start, deadline, installed, stop, torch)
    finally:
        signal.signal(signal.SIGTERM, old_handler)


def _run(args, out: Path, start: float, deadline: float, installed: list[str], stop: list[bool], torch) -> int:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    summary_path = out / "summary.json"
    previous: dict = {}
    if summary_path.is_file() and not args.force:
        try:
            previous = json.loads(summary_path.read_text())
        except ValueError:
            previous = {}
    done_before = {d: m for d, m in (previous.get("models") or {}).items()
                   if (out / d / "model.pt").is_file()}
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak, source = (args.peak_tflops, "--peak-tflops") if args.peak_tflops else peak_tflops(name)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        name, peak, source = "cpu", args.peak_tflops, "--peak-tflops" if args.peak_tflops else "n/a on CPU"
    summary: dict[str, Any] = {
        "status": "running", "device": name, "torch": torch.__version__, "budget_seconds": args.budget,
        "peak_bf16_tflops": peak, "peak_source": source, "wheels_installed": installed,
        "throughput": list(previous.get("throughput") or []), "models": dict(done_before), "pending": [d for d in args.domains if d not in done_before],
    }

    def save_summary() -> None:
        summary["elapsed_seconds"] = round(time.monotonic() - start, 2)
        _write_json(summary_path, summary)

    save_summary()
    recipes = Path(args.recipes)
    todo = [d for d in args.domains if d not in done_before]
    print(f"seqdiff gpu-train: {name}, budget {args.budget:.0f} s, domains {' '.join(todo) or '(all done)'}"
          + (f", peak {peak:g} TFLOP/s ({source})" if peak else ""), flush=True)

    # -- phase 1: throughput ------------------------------------------------------------------------
    runs: dict[str, DomainRun] = {}
    phase_end = start + args.throughput_share * args.budget
    if device.type == "cuda":
        summary["matmul_bf16_tflops"] = round(_matmul_probe(device), 1)
        mfu_recipe = args.mfu_recipe or str(REPO / "configs" / "text8-gpu.yaml")
        if mfu_recipe != "none":
            row = _mfu_probe(mfu_recipe, device, args, phase_end)
            if row:
                _record_throughput(summary, row, peak)
            save_summary()
    for dom in todo:
        if stop[0]:
            break
        runs[dom] = DomainRun(recipes / f"{dom}.yaml", args.override, device, args)
        row = runs[dom].timed(args.warmup_steps, args.throughput_steps,
                              min(deadline, max(phase_end, time.monotonic() + 1.0)), stop)
        if row:
            _record_throughput(summary, row, peak)
        save_summary()
    if runs or device.type == "cuda":
        _write_json(out / "throughput.json", summary["throughput"])

    # -- phase 2: time-sliced training, each model written when finished ------------------------------
    for i, dom in enumerate(todo):
        if stop[0] or time.monotonic() >= deadline:
            break
        r = runs[dom]
        left = deadline - time.monotonic()
        slice_s = left / (len(todo) - i)
        train_until = time.monotonic() + slice_s * (1 - args.reserve)
        # stretch the cosine schedule over the steps that fit (step time measured in phase 1)
        per_step = r.train_seconds / max(1, r.step) if r.step else None
        if per_step:
            r.total_steps = min(r.cfg.trainer.max_steps, r.step + max(1, int((train_until - time.monotonic()) / per_step)))
        t0 = time.perf_counter()
        r.train_steps(None, train_until, stop)
        r._sync()
        r.train_seconds += time.perf_counter() - t0
        extra = {"steps": r.step, "tokens_seen": r.tokens, "train_seconds": round(r.train_seconds, 2),
                 "tokens_per_s": round(r.tokens / r.train_seconds, 1) if r.train_seconds else None,
                 "parameters": r.model.num_parameters(), "last_train_loss": r.last_loss,
                 "data": "fetched corpus" if r.fetched else "repository slice", "train_file": r.cfg.data.train,
                 "interrupted": bool(stop[0])}
        metrics = _finish(r, out, args, extra)
        runs[dom] = None  # free the device memory before the next domain
        summary["models"][dom] = {"model": f"{dom}/model.pt", "recipe": f"{dom}/recipe.yaml",
                                  "metrics": f"{dom}/metrics.json", "samples": f"{dom}/samples.txt",
                                  "heldout_bits_per_token": metrics["heldout_bits_per_token"],
                                  "shipped_heldout_bits_per_token": metrics.get("shipped_heldout_bits_per_token"),
                                  "beats_shipped": metrics.get("beats_shipped"), "steps": r.step,
                                  "finished_at_seconds": round(time.monotonic() - start, 2)}
        summary["pending"] = [d for d in summary["pending"] if d != dom]
        save_summary()
        vs = metrics.get("shipped_heldout_bits_per_token")
        print(f"  {dom}: {r.step} steps, held-out {metrics['heldout_bits_per_token']:.4f} bits/token"
              + (f" (shipped {vs:.4f})" if vs is not None else "") + f" -> {out / dom / 'model.pt'}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    summary["status"] = "done" if not summary["pending"] else ("interrupted" if stop[0] else "budget exhausted")
    save_summary()
    print(f"seqdiff gpu-train: {summary['status']} in {time.monotonic() - start:.1f} s; summary: {summary_path}")
    return 0 if summary["status"] == "done" else 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="seqdiff gpu-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
