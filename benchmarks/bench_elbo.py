"""Is the ELBO's reported standard error honest, and what does its batching cost?

For a model (default: the shipped text model — masked loss, linear schedule) and a few held-out
windows, the negative ELBO is estimated with ``--seeds`` different seeds at ``--n-t`` time points:

* ``spread``: the standard deviation of the estimates over seeds (the truth the error bar should match);
* ``reported``: the mean (and root-mean-square) reported standard error, for one antithetic grid
  with the naive spread of its terms (seqdiff's estimate before), one grid with the
  collapsed-strata estimator (the default now), and 8 independent replicate grids;
* ``coverage``: how often the 95 % interval (estimate ± ``ci95``) contains the mean over all seeds.

Then the time of one ELBO evaluation with every (sequence, time) pair in one pass against the
default token budget.

    python benchmarks/bench_elbo.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdiff.diffusion import elbo  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="text")
    p.add_argument("--data", default=str(ROOT / "datasets" / "text8_wiki" / "test.txt"))
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--n-t", type=int, default=64)
    p.add_argument("--seeds", type=int, default=40)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(resolve_model(args.model))
    text = Path(args.data).read_text()
    L = model.max_len
    ids = [model.tokenizer.encode(text[i * L:(i + 1) * L]) for i in range(args.windows)]
    x = torch.tensor(ids)
    mask = model.scored(x, x != model.tokenizer.pad_id)
    report = {"model": model.describe(), "n_t": args.n_t, "seeds": args.seeds, "windows": args.windows}
    for key, reps in (("naive", None), ("collapsed_strata", None), ("replicates", 8)):
        ests, errs, cis = [], [], []
        for seed in range(args.seeds):
            r = elbo(model.denoiser, model.loss, x, n_t=args.n_t, grid="antithetic", loss_mask=mask,
                     generator=torch.Generator().manual_seed(seed), replicates=reps, return_terms=True)
            ests.append(r.nats)
            if key == "naive":
                se = r.terms.std(0) / r.terms.shape[0] ** 0.5
                errs.append(se)
                cis.append(1.96 * se)
            else:
                errs.append(r.stderr)
                cis.append(r.ci95)
        e, s, c = torch.stack(ests), torch.stack(errs), torch.stack(cis)
        spread = e.std(0, unbiased=True)
        center = e.mean(0)
        cover = ((e - center).abs() <= c).double().mean()
        report[key] = {"dof": r.dof, "spread_over_seeds": round(float(spread.mean()), 4),
                       "mean_reported_stderr": round(float(s.mean()), 4),
                       "ratio_reported_to_spread": round(float((s.mean(0) / spread).mean()), 3),
                       "ratio_rms_reported_to_spread": round(float(((s ** 2).mean(0).sqrt() / spread).mean()), 3),
                       "coverage_95": round(float(cover), 3)}
        print(f"{key:16s}: spread {float(spread.mean()):.3f} nats, reported "
              f"{float(s.mean()):.3f} (ratio {report[key]['ratio_reported_to_spread']:.2f}, rms "
              f"{report[key]['ratio_rms_reported_to_spread']:.2f}), "
              f"95% coverage {float(cover):.2f}", flush=True)
    for label, bs in (("all_pairs_one_pass", x.shape[0] * args.n_t), ("token_budget", None)):
        t0 = time.perf_counter()
        for seed in range(3):
            elbo(model.denoiser, model.loss, x, n_t=args.n_t, loss_mask=mask, batch_size=bs,
                 generator=torch.Generator().manual_seed(seed))
        report[label + "_seconds"] = round((time.perf_counter() - t0) / 3, 3)
        print(f"{label}: {report[label + '_seconds']:.3f} s per ELBO of {args.windows} windows", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
