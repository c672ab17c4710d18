"""Sampler step overhead without the network: milliseconds per reverse step at growing vocabularies.

The denoiser output is a fixed random ``[B, L, N]`` tensor (float32), half of the positions are
masked, and one reverse step (t = 0.6 → 0.5) is timed three ways:

* ``dense``  — the per-token law over the whole ``[B, L, N]`` in float64 (``step_probs``) and a
  float64 Gumbel draw everywhere: seqdiff's step before the sparse route;
* ``sparse`` — what the loop runs now for the absorbing process: draw which masked positions move,
  then draw tokens (float64) only there (``Sampler.step``);
* ``dense-f32`` — a dense float32 step written from the masked posterior
  ``q(x_s) = p0 · (α_s − α_t)/(1 − α_t)``, mask ``(1 − α_s)/(1 − α_t)``, with an exponential-race
  draw in float32: the shape of the reference implementations' step, for scale.

    python benchmarks/bench_sampler_step.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdiff.diffusion import Absorbing, Linear, build_sampler  # noqa: E402


def dense_f32(out: torch.Tensor, x: torch.Tensor, mask_id: int, a_t: float, a_s: float) -> torch.Tensor:
    p0 = torch.softmax(out.masked_fill(torch.arange(out.shape[-1]) == mask_id, -1e9), -1)
    q = p0 * ((a_s - a_t) / (1 - a_t))
    q[..., mask_id] = (1 - a_s) / (1 - a_t)
    e = -torch.log(torch.rand_like(q).clamp_min(1e-10))
    new = (q / e).argmax(-1)
    return torch.where(x == mask_id, new, x)


def timed(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1000 * statistics.median(ts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", nargs="+", type=int, default=[28, 1024, 8192])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--samplers", nargs="+", default=["ancestral", "tweedie", "euler"])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(f"step overhead, B={args.batch}, L={args.length}, half masked, {torch.get_num_threads()} threads (ms/step)")
    print(f"{'vocab':>6} {'sampler':>10} {'dense f64':>10} {'sparse':>8} {'dense f32':>10}")
    for n in args.vocab:
        proc, sch = Absorbing(n), Linear()
        g = torch.Generator().manual_seed(0)
        out = torch.randn(args.batch, args.length, n, generator=g)
        x = torch.randint(0, n - 1, (args.batch, args.length), generator=g)
        x[:, ::2] = proc.mask_id
        t = torch.full((args.batch,), 0.6, dtype=torch.float64)
        s = torch.full((args.batch,), 0.5, dtype=torch.float64)
        for name in args.samplers:
            smp = build_sampler(name, proc, sch, steps=10)
            dense = timed(lambda: smp.apply_step(smp.step_probs(out, "x0", x, t, s), x, None, g, False), args.repeats)
            sparse = timed(lambda: smp.step(out, "x0", x, t, s, None, g, 0, 10, {}), args.repeats)
            ref = timed(lambda: dense_f32(out, x, proc.mask_id, 0.4, 0.5), args.repeats)
            rows.append({"vocab": n, "sampler": name, "dense_f64_ms": round(dense, 2), "sparse_ms": round(sparse, 2),
                         "dense_f32_ms": round(ref, 2), "batch": args.batch, "length": args.length,
                         "threads": torch.get_num_threads()})
            print(f"{n:>6} {name:>10} {dense:>10.2f} {sparse:>8.2f} {ref:>10.2f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
