"""Training throughput of real recipes: tokens/s, peak memory and (on CUDA) MFU.

Each recipe (``configs/*.yaml``) is built exactly as ``seqdiff train`` builds it — tokenizer,
datasets, :class:`~seqdiff.model.SeqDiffModel`, AdamW — and timed over full optimisation steps
(batch from the recipe's data, the diffusion objective, backward, clipping, optimiser step),
without Lightning's logging overhead. Prints one row per recipe.

Examples::

    python benchmarks/bench_train.py                                   # CPU: configs/{text8,dna,protein,smiles}.yaml
    python benchmarks/bench_train.py configs/text8-gpu.yaml --device cuda --dtype bf16
    python benchmarks/bench_train.py configs/dna.yaml --override data.batch_size=8 --steps 10

MFU = 6 · N_tok · tokens + attention FLOPs (see bench_model.py) over the GPU's dense bf16 peak.
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

from bench_model import GPU_PEAK_BF16, per_token_matmul_params, rss_mib  # noqa: E402

from seqdiff.data import Collator  # noqa: E402
from seqdiff.model import SeqDiffModel  # noqa: E402
from seqdiff.training.config import load_config  # noqa: E402
from seqdiff.training.data import ResumableBatchSampler, build_datasets, build_tokenizer_for  # noqa: E402
from seqdiff.training.module import step_generator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT / "configs" / f"{n}.yaml" for n in ("text8", "dna", "protein", "smiles")]


def run(path: Path, args) -> dict:
    cfg = load_config(path, args.override)
    if args.max_records:
        cfg.data.max_records = args.max_records
    device = torch.device(args.device)
    tok = build_tokenizer_for(cfg)
    ds = build_datasets(cfg, tok)["train"]
    model = SeqDiffModel(cfg, tok).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    sampler = ResumableBatchSampler(len(ds), cfg.data.batch_size, cfg.seed)
    collate = Collator(tok.pad_id)
    use_bf16 = args.dtype == "bf16"
    times, toks = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for k in range(args.warmup + args.steps):
        x, pad = collate([ds[i] for i in sampler.batch(k)])
        x, pad = x.to(device), pad.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            obj, _ = model.objective(x, pad, step_generator(cfg.seed, k, device=device))
            loss = obj.sum() / pad.sum()
        loss.backward()
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if k >= args.warmup:
            times.append(time.perf_counter() - t0)
            toks.append(int(pad.sum()))
    step = statistics.median(times)
    tok_s = statistics.mean(toks) / step
    row = {"recipe": path.name, "device": args.device, "dtype": args.dtype, "params_M": model.num_parameters() / 1e6,
           "batch": cfg.data.batch_size, "seq_len": cfg.data.seq_len, "step_ms": 1000 * step,
           "tokens_per_s": tok_s}
    if device.type == "cuda":
        row["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2 ** 30
        m = cfg.model
        flops_tok = 6 * per_token_matmul_params(model.network) + 12 * m.n_layers * cfg.data.seq_len * m.d_model
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in GPU_PEAK_BF16.items() if k in name), None)
        row["mfu"] = flops_tok * tok_s / (peak * 1e12) if peak else None
    else:
        row["peak_rss_MiB"] = rss_mib()
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipes", nargs="*", type=Path, default=DEFAULT)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default=None, help="default: fp32 on CPU, bf16 on CUDA")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-records", type=int, default=2000, help="read only this many records (fast start)")
    p.add_argument("--override", action="append", default=[], help="recipe override, e.g. data.batch_size=8")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, {args.dtype}")
    for path in args.recipes:
        row = run(path, args)
        if args.json:
            print(json.dumps(row))
            continue
        mem = f"{row['peak_mem_GiB']:.2f} GiB" if "peak_mem_GiB" in row else f"{row['peak_rss_MiB']:.0f} MiB RSS"
        mfu = f", MFU {row['mfu']:.1%}" if row.get("mfu") else ""
        print(f"{row['recipe']:22s} {row['params_M']:6.2f}M params  batch {row['batch']:4d} × {row['seq_len']:5d}  "
              f"{row['step_ms']:8.1f} ms/step  {row['tokens_per_s']:10,.0f} tokens/s  {mem}{mfu}")


if __name__ == "__main__":
    main()
