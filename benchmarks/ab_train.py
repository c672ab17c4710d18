"""Training step before and after the fast path, alternating in one process (robust to machine load).

CPU timings on a shared machine swing by several times between runs, so comparing two benchmark runs
says little. This script imports the package twice — the checkout given by ``--before`` (e.g. commit
7c18beb, before the fast training path) and this one — builds each recipe with both, and alternates
their optimisation steps on the same batches: the old step (per-row items + collation,
``SeqDiffModel.objective``, default AdamW, per-parameter EMA) and the new one (prepared token rows,
``TrainStep``, foreach AdamW, foreach EMA). It prints the median step time of each and their ratio.

    git worktree add /tmp/seqdiff-before 7c18beb
    python benchmarks/ab_train.py --before /tmp/seqdiff-before --threads 2 --steps 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="a checkout of the earlier commit")
    p.add_argument("--recipes", nargs="+", default=["text8", "dna", "protein", "smiles"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-records", type=int, default=2000)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ab-train-"))
    shutil.copytree(args.before / "seqdiff", tmp / "seqdiff_before")
    shutil.copytree(ROOT / "seqdiff", tmp / "seqdiff_after")
    sys.path.insert(0, str(tmp))
    import torch
    torch.set_num_threads(args.threads)
    from seqdiff_after.training.config import load_config as load_a
    from seqdiff_after.training.data import ResumableBatchSampler as sampler_a
    from seqdiff_after.training.data import TokenRows, build_datasets as data_a, build_tokenizer_for as tok_a
    from seqdiff_after.training.module import EMA as EMA_a, TrainStep, build_optimizer, step_generator as gen_a
    from seqdiff_after.model import SeqDiffModel as model_a
    from seqdiff_before.data import Collator
    from seqdiff_before.model import SeqDiffModel as model_b
    from seqdiff_before.training.config import load_config as load_b
    from seqdiff_before.training.data import ResumableBatchSampler as sampler_b
    from seqdiff_before.training.data import build_datasets as data_b, build_tokenizer_for as tok_b
    from seqdiff_before.training.module import EMA as EMA_b, step_generator as gen_b

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; before = {args.before}")
    for rec in args.recipes:
        path = ROOT / "configs" / f"{rec}.yaml"
        cb, ca = load_b(path), load_a(path)
        cb.data.max_records = ca.data.max_records = args.max_records
        tb, ta = tok_b(cb), tok_a(ca)
        dsb, dsa = data_b(cb, tb)["train"], data_a(ca, ta)["train"]
        torch.manual_seed(0)
        mb = model_b(cb, tb).train()
        torch.manual_seed(0)
        ma = model_a(ca, ta).train()
        ob, oa = torch.optim.AdamW(mb.parameters(), lr=cb.optim.lr), build_optimizer(ma, ca.optim)
        eb, ea = EMA_b(mb, cb.optim.ema), EMA_a(ma, ca.optim.ema)
        sb, sa = sampler_b(len(dsb), cb.data.batch_size, 0), sampler_a(len(dsa), ca.data.batch_size, 0)
        collate, rows, step = Collator(tb.pad_id), TokenRows(dsa, ta.pad_id), TrainStep(ma)
        params_a = [q for q in ma.parameters()]
        before, after, tokens = [], [], []
        for k in range(args.steps + 1):  # step 0 warms up
            t0 = time.perf_counter()
            x, pad = collate([dsb[i] for i in sb.batch(k)])
            obj, _ = mb.objective(x, pad, gen_b(0, k))
            (obj.sum() / pad.sum()).backward()
            torch.nn.utils.clip_grad_norm_(mb.parameters(), cb.optim.grad_clip)
            ob.step()
            ob.zero_grad(set_to_none=True)
            eb.update(mb)
            t1 = time.perf_counter()
            batch = rows[sa.positions(k)]
            obj, _ = step(batch.x, batch.pad_mask, gen_a(0, k), batch.padded)
            (obj.sum() / batch.pad_mask.sum()).backward()
            torch.nn.utils.clip_grad_norm_(params_a, ca.optim.grad_clip, foreach=True)
            oa.step()
            oa.zero_grad(set_to_none=True)
            ea.update(ma)
            t2 = time.perf_counter()
            if k:
                before.append(t1 - t0)
                after.append(t2 - t1)
                tokens.append(batch.num_real)
        b, a, n = statistics.median(before), statistics.median(after), statistics.mean(tokens)
        print(json.dumps({"recipe": f"{rec}.yaml", "batch": ca.data.batch_size, "seq_len": ca.data.seq_len,
                          "before_tokens_per_s": round(n / b), "after_tokens_per_s": round(n / a),
                          "after_over_before": round(b / a, 3), "before_ms": [round(1000 * t) for t in before],
                          "after_ms": [round(1000 * t) for t in after]}), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
