"""Forward+backward throughput of the seqdiff networks.

For each (size, backend) pair this measures training-step speed (forward, loss,
backward; no optimiser step) in tokens/s, the parameter count, peak memory and, on CUDA,
the model-FLOPs utilisation (MFU).

Examples::

    python benchmarks/bench_model.py                                  # CPU: tiny+small, sdpa vs reference
    python benchmarks/bench_model.py --device cuda --dtype bf16       # GPU: small+base, flash vs sdpa
    python benchmarks/bench_model.py --sizes base --batch 16 --seq-len 2048 --device cuda --compile

Speed: tokens/s from the median step time (steps are synchronised on CUDA); the
mean is in the JSON output as ``step_ms_mean``.

Memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset per configuration). On CPU the
peak resident set size of the process (``resource.getrusage``); every configuration runs
in its own subprocess so the figures do not contaminate each other (``--no-isolate`` to
turn that off); "rss_delta" subtracts the RSS measured after importing torch.

MFU = achieved FLOP/s / peak FLOP/s, with FLOPs per step =
6 * N_tok * tokens (N_tok: weights of the per-token matmuls, i.e. without the
embedding lookup and the per-sequence adaLN/time layers) + 12 * n_layers * B * L^2 * d
for attention scores and values (halved for the causal AR model). Peak defaults to the
dense bf16 figure of a recognised GPU; pass ``--peak-tflops`` otherwise.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.models import ARConfig, ARTransformer, DiT, DiTConfig, attention_backends_available, maybe_compile
from seqdiff.models.dit import Modulation, TimestepEmbedder

SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(d_model=128, n_layers=4, n_heads=4, cond_dim=128),  # ~1.3M
    "small": dict(d_model=256, n_layers=6, n_heads=4, cond_dim=256),  # ~7M
    "base": dict(d_model=768, n_layers=10, n_heads=12, cond_dim=128),  # ~77M (GPU size)
}

# dense bf16 tensor-core peaks (TFLOP/s), matched against torch.cuda.get_device_name()
GPU_PEAK_BF16: dict[str, float] = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
    "4090": 165.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=None,
                   help="default: tiny small on CPU, small base on CUDA")
    p.add_argument("--backends", nargs="+", choices=["sdpa", "flash", "reference", "auto"], default=None,
                   help="default: sdpa reference on CPU, flash sdpa on CUDA")
    p.add_argument("--arch", choices=["dit", "ar"], default="dit")
    p.add_argument("--batch", type=int, default=None, help="default 8 (CPU) / 32 (CUDA)")
    p.add_argument("--seq-len", type=int, default=None, help="default 128 (CPU) / 1024 (CUDA)")
    p.add_argument("--vocab", type=int, default=32, help="data tokens n (+ mask + pad are embedded)")
    p.add_argument("--pad-frac", type=float, default=0.0,
                   help="fraction of rows right-padded to a random length (0 = no pad mask)")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default=None,
                   help="bf16 = torch.autocast; default fp32 on CPU, bf16 on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-isolate", action="store_true", help="CPU: run all configs in this process")
    p.add_argument("--json", action="store_true", help="print one JSON line per configuration")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.sizes = args.sizes or (["small", "base"] if cuda else ["tiny", "small"])
    args.backends = args.backends or (["flash", "sdpa"] if cuda else ["sdpa", "reference"])
    args.batch = args.batch or (32 if cuda else 8)
    args.seq_len = args.seq_len or (1024 if cuda else 128)
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    return args


def rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0**2 if sys.platform == "darwin" else 1024.0)


def per_token_matmul_params(model: nn.Module) -> int:
    """Weights of Linear layers applied to every token (not adaLN / time MLP, not embeddings)."""
    skip: set[int] = set()
    for m in model.modules():
        if isinstance(m, (Modulation, TimestepEmbedder)):
            skip.update(id(p) for p in m.parameters())
    return sum(
        m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) not in skip
    )


def build(args: argparse.Namespace, size: str, backend: str) -> nn.Module:
    dims = dict(SIZES[size])
    common = dict(vocab_size=args.vocab + 2, max_len=max(args.seq_len, 1024), attn_backend=backend,
                  compile=args.compile)
    if args.arch == "ar":
        dims.pop("cond_dim")
        model: nn.Module = ARTransformer(ARConfig(n_out=args.vocab, **common, **dims))
    else:
        model = DiT(DiTConfig(n_out=args.vocab + 1, **common, **dims))
    return model


def run_one(args: argparse.Namespace, size: str, backend: str) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    rss0 = rss_mib()
    torch.manual_seed(0)
    model = build(args, size, backend).to(device)
    model.train()
    maybe_compile(model)
    b, l = args.batch, args.seq_len
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, args.vocab + 1, (b, l), generator=g).to(device)
    target = torch.randint(0, args.vocab, (b, l), generator=g).to(device)
    t = torch.rand(b, generator=g).to(device)
    pad_mask = None
    if args.pad_frac > 0:
        lengths = torch.full((b,), l)
        n_pad = int(round(args.pad_frac * b))
        lengths[:n_pad] = torch.randint(1, l + 1, (n_pad,), generator=g)
        pad_mask = (torch.arange(l)[None, :] < lengths[:, None]).to(device)
        x = torch.where(pad_mask, x, torch.full_like(x, args.vocab + 1))
    n_tokens = b * l
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            logits = model(x, pad_mask) if args.arch == "ar" else model(x, t, pad_mask)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        loss.backward()

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times: list[float] = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    # median step time: robust to other processes competing for the CPU
    elapsed = statistics.median(times) * args.steps

    cfg = model.config
    result: dict[str, Any] = {
        "arch": args.arch,
        "size": size,
        "backend": backend,
        "device": str(device) if not cuda else torch.cuda.get_device_name(device),
        "dtype": args.dtype,
        "compile": args.compile,
        "batch": b,
        "seq_len": l,
        "params": model.num_parameters(),
        "params_per_token": per_token_matmul_params(model),
        "step_ms": 1000.0 * elapsed / args.steps,
        "step_ms_mean": 1000.0 * sum(times) / len(times),
        "tokens_per_s": n_tokens * args.steps / elapsed,
    }
    if cuda:
        result["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        causal = 0.5 if args.arch == "ar" else 1.0
        flops = 6 * result["params_per_token"] * n_tokens + causal * 12 * cfg.n_layers * b * l * l * cfg.d_model
        achieved = flops * args.steps / elapsed
        peak = args.peak_tflops
        if peak is None:
            name = torch.cuda.get_device_name(device)
            peak = next((v for k, v in GPU_PEAK_BF16.items() if k in name), None)
        result["tflops"] = achieved / 1e12
        result["mfu"] = achieved / (peak * 1e12) if peak else None
    else:
        result["peak_rss_mib"] = rss_mib()
        result["rss_delta_mib"] = result["peak_rss_mib"] - rss0
    return result


def child_command(args: argparse.Namespace, size: str, backend: str, argv: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *argv, "--_child", json.dumps([size, backend])]


def format_row(r: dict[str, Any]) -> str:
    mem = (f"{r['peak_mem_mib']:9.0f} MiB (cuda peak)" if "peak_mem_mib" in r
           else f"{r['peak_rss_mib']:7.0f} MiB rss (+{r['rss_delta_mib']:.0f})")
    mfu = ""
    if "tflops" in r:
        mfu = f"  {r['tflops']:7.1f} TFLOP/s" + (f"  MFU {100 * r['mfu']:5.1f}%" if r["mfu"] else "  MFU n/a (--peak-tflops)")
    return (f"{r['arch']:>3} {r['size']:>6} {r['backend']:>9} {r['dtype']:>4}  params {r['params'] / 1e6:7.2f}M  "
            f"{r['step_ms']:9.1f} ms/step  {r['tokens_per_s']:10.0f} tok/s  {mem}{mfu}")


def main(argv: list[str] | None = None) -> None:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if args._child is not None:
        size, backend = json.loads(args._child)
        print("RESULT " + json.dumps(run_one(args, size, backend)), flush=True)
        return
    available = attention_backends_available()
    isolate = not args.device.startswith("cuda") and not args.no_isolate
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads or torch.get_num_threads()}, "
          f"batch {args.batch} x seq {args.seq_len}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"pad_frac {args.pad_frac}, compile {args.compile}")
    for size in args.sizes:
        for backend in args.backends:
            if backend == "flash" and not available["flash"]:
                print(f"{args.arch:>3} {size:>6} {backend:>9}  skipped: flash-attn/CUDA not available")
                continue
            if isolate:
                proc = subprocess.run(child_command(args, size, backend, raw), capture_output=True, text=True)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not lines:
                    print(f"{args.arch:>3} {size:>6} {backend:>9}  failed:\n{proc.stderr[-2000:]}")
                    continue
                result = json.loads(lines[-1][len("RESULT "):])
            else:
                result = run_one(args, size, backend)
            print(json.dumps(result) if args.json else format_row(result), flush=True)


if __name__ == "__main__":
    main()
