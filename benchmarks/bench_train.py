"""Training throughput of real recipes: tokens/s, peak memory and (on CUDA) MFU, side by side with
the figures measured before the fast training path (commit 7c18beb).

Each recipe (``configs/*.yaml``) is built exactly as ``seqdiff train`` builds it — tokenizer,
datasets, :class:`~seqdiff.model.SeqDiffModel` — and timed over full optimisation steps of the
training hot path (:mod:`seqdiff.training.module`): the batch gathered from the prepared token rows,
the noise draw, network + loss (compiled with ``--compile``), backward, clipping, AdamW (fused on
CUDA, foreach on CPU) and the foreach EMA update — without Lightning's logging. Prints one row per
recipe, then the reference table (CPU rows measured on this project's 2-core machine, GPU rows on
one H200) with this run's figure next to each one it measured and, for the rest, the command that
produces it.

Examples::

    python benchmarks/bench_train.py --threads 2                       # CPU: configs/{text8,dna,protein,smiles}.yaml
    python benchmarks/bench_train.py configs/text8-gpu.yaml --device cuda --compile
    python benchmarks/bench_train.py configs/gpu-default/smiles.yaml --device cuda --compile --compile-mode reduce-overhead
    python benchmarks/bench_train.py --block --threads 2               # per-block forward: complex vs real rotary
    python benchmarks/bench_train.py configs/dna.yaml --override data.batch_size=8 --steps 10

MFU = (6·N_matmul + 12·n_layers·L·d) FLOPs per token (``seqdiff.training.oneshot.flops_per_token``)
× tokens/s (padding included, it is computed) ÷ the device's dense bf16 peak
(``seqdiff.training.oneshot.PEAK_BF16_TFLOPS``: H100/H200 989 TFLOP/s; ``--peak-tflops`` overrides).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import rss_mib  # noqa: E402

from seqdiff.model import SeqDiffModel  # noqa: E402
from seqdiff.training.config import load_config  # noqa: E402
from seqdiff.training.data import ResumableBatchSampler, TokenRows, build_datasets, build_tokenizer_for  # noqa: E402
from seqdiff.training.module import EMA, TrainStep, build_optimizer, step_generator  # noqa: E402
from seqdiff.training.oneshot import flops_per_token, peak_tflops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT / "configs" / f"{n}.yaml" for n in ("text8", "dna", "protein", "smiles")]
REFERENCE = ROOT / "benchmarks" / "results" / "train_reference.json"


def run(path: Path, args) -> dict:
    cfg = load_config(path, args.override)
    if args.max_records:
        cfg.data.max_records = args.max_records
    device = torch.device(args.device)
    tok = build_tokenizer_for(cfg)
    ds = build_datasets(cfg, tok)["train"]
    rows = TokenRows(ds, tok.pad_id).to(device)
    torch.manual_seed(cfg.seed)
    model = SeqDiffModel(cfg, tok).to(device).train()
    opt = build_optimizer(model, cfg.optim)
    ema = EMA(model, cfg.optim.ema) if cfg.optim.ema > 0 else None
    step = TrainStep(model, compile=args.compile, mode=args.compile_mode)
    sampler = ResumableBatchSampler(len(rows), cfg.data.batch_size, cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    use_bf16 = args.dtype == "bf16"
    times, toks = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for k in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        batch = rows[sampler.positions(k)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            obj, _ = step(batch.x, batch.pad_mask, step_generator(cfg.seed, k, device=device), batch.padded)
            loss = obj.sum() / model.scored(batch.x, batch.pad_mask).sum().clamp_min(1)
        loss.backward()
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if k >= args.warmup:
            times.append(time.perf_counter() - t0)
            toks.append(batch.num_real)
    step_s = statistics.median(times)
    tok_s = statistics.mean(toks) / step_s
    try:  # relative to configs/ (tiny/smiles.yaml is not smiles.yaml)
        name = str(path.resolve().relative_to(ROOT / "configs"))
    except ValueError:
        name = str(path)
    row = {"recipe": name, "device": args.device, "dtype": args.dtype, "params_M": model.num_parameters() / 1e6,
           "batch": cfg.data.batch_size, "seq_len": cfg.data.seq_len, "step_ms": 1000 * step_s,
           "tokens_per_s": tok_s, "compiled": args.compile, "compile_mode": args.compile_mode}
    if device.type == "cuda":
        row["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2 ** 30
        name = torch.cuda.get_device_name()
        row["gpu"] = name
        peak = args.peak_tflops or peak_tflops(name)[0]
        computed = cfg.data.batch_size * cfg.data.seq_len / step_s
        row["mfu"] = flops_per_token(model.network, cfg.data.seq_len) * computed / (peak * 1e12) if peak else None
    else:
        row["peak_rss_MiB"] = rss_mib()
    return row


def bench_block(args) -> list[dict]:
    """Per-block forward of the DiT at the CPU recipe size: rotary as one complex multiply vs the
    real-arithmetic reference (same block, same weights, same input)."""
    import seqdiff.models.dit as dit
    from seqdiff.models.rotary import RotaryEmbedding, apply_rotary_reference, rotary_phases

    torch.manual_seed(0)
    d, heads, b, length = 256, 4, 32, 256
    block = dit.DiTBlock(d, heads, cond_dim=128).eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.02)
    x, c = torch.randn(b, length, d), torch.randn(b, 128)
    cos, sin = RotaryEmbedding(d // heads)(length, "cpu")
    phases = rotary_phases(cos, sin)
    ctx = lambda: dit.AttentionContext(pad_mask=None, causal=False, backend="sdpa")  # noqa: E731
    complex_fn = dit.apply_rotary_complex

    def reference(qk, _phases):
        return torch.stack([apply_rotary_reference(qk[0], cos, sin), apply_rotary_reference(qk[1], cos, sin)])

    out = {}
    with torch.no_grad():
        for name, fn in (("complex multiply", complex_fn), ("real reference", reference)) * 2:
            dit.apply_rotary_complex = fn
            try:
                for _ in range(args.warmup):
                    y = block(x, phases, ctx(), c)
                ts = []
                for _ in range(args.steps * 4):
                    t0 = time.perf_counter()
                    y = block(x, phases, ctx(), c)
                    ts.append(time.perf_counter() - t0)
            finally:
                dit.apply_rotary_complex = complex_fn
            out.setdefault(name, []).append(statistics.median(ts))
            out[name + " y"] = y
    diff = (out["complex multiply y"] - out["real reference y"]).abs().max().item()
    rows = []
    for name in ("complex multiply", "real reference"):
        rows.append({"rotary": name, "block_forward_ms": 1000 * min(out[name]), "batch": b, "seq_len": length,
                     "d_model": d, "max_abs_diff": diff})
    return rows


def reference_table(rows: list[dict], args) -> list[str]:
    """The before/now table: reference figures with this run's measurement where it has one."""
    ref = json.loads(REFERENCE.read_text())
    lines = []
    cpu = ref["cpu"]
    lines.append(f"\n## CPU ({cpu['hardware']}, {cpu['threads']} threads, fp32): before = commit {cpu['commit']}")
    lines.append(f"(before: {cpu['note']})")
    lines.append(f"{'recipe':22s} {'before tokens/s':>16s} {'now tokens/s':>14s} {'now/before':>10s}")
    now = {r["recipe"]: r for r in rows if r["device"] == "cpu"}
    for name, before in cpu["rows"].items():
        r = now.get(name)
        if r:
            lines.append(f"{name:22s} {before['tokens_per_s']:16,.0f} {r['tokens_per_s']:14,.0f} "
                         f"{r['tokens_per_s'] / before['tokens_per_s']:9.2f}×")
        else:
            lines.append(f"{name:22s} {before['tokens_per_s']:16,.0f} {'(not run)':>14s}")
    gpu = ref["gpu"]
    lines.append(f"\n## GPU ({gpu['hardware']}, bf16): before = commit {gpu['commit']}; goal: {gpu['goal']}")
    cuda_now = {r["recipe"]: r for r in rows if r["device"].startswith("cuda")}
    for w in gpu["rows"]:
        before = f"{w['tokens_per_s'] / 1e3:,.0f} k tok/s, MFU {w['mfu']}"
        r = cuda_now.get(w["recipe"])
        if r:
            mfu = f", MFU {r['mfu']:.1%}" if r.get("mfu") else ""
            nowtxt = f"{r['tokens_per_s'] / 1e3:,.0f} k tok/s{mfu} ({r.get('gpu', 'cuda')})"
        else:
            nowtxt = f"awaiting GPU: {w['command']}"
        lines.append(f"{w['workload']:44s} before {before:28s} now {nowtxt}")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipes", nargs="*", type=Path, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default=None, help="default: fp32 on CPU, bf16 on CUDA")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-records", type=int, default=2000, help="read only this many records (fast start)")
    p.add_argument("--override", action="append", default=[], help="recipe override, e.g. data.batch_size=8")
    p.add_argument("--compile", action="store_true", help="torch.compile the step (network + loss)")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--block", action="store_true", help="only the per-block forward (rotary) comparison")
    p.add_argument("--no-reference", action="store_true", help="do not print the before/now table")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, {args.dtype}"
          + (f", compiled ({args.compile_mode})" if args.compile else ""))
    if args.block:
        for row in bench_block(args):
            print(json.dumps(row) if args.json else
                  f"DiT block forward, rotary as {row['rotary']:17s} {row['block_forward_ms']:8.2f} ms "
                  f"(batch {row['batch']} × {row['seq_len']}, d {row['d_model']}; outputs differ by "
                  f"{row['max_abs_diff']:.1e})")
        return
    rows = []
    for path in args.recipes or DEFAULT:
        row = run(path, args)
        rows.append(row)
        if args.json:
            print(json.dumps(row))
            continue
        mem = f"{row['peak_mem_GiB']:.2f} GiB" if "peak_mem_GiB" in row else f"{row['peak_rss_MiB']:.0f} MiB RSS"
        mfu = f", MFU {row['mfu']:.1%}" if row.get("mfu") else ""
        print(f"{row['recipe']:22s} {row['params_M']:6.2f}M params  batch {row['batch']:4d} × {row['seq_len']:5d}  "
              f"{row['step_ms']:8.1f} ms/step  {row['tokens_per_s']:10,.0f} tokens/s  {mem}{mfu}")
    if not args.json and not args.no_reference:
        print("\n".join(reference_table(rows, args)))


if __name__ == "__main__":
    main()
