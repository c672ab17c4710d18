"""Store a trained property predictor as a shipped one (``seqdiff/pretrained/predictors/<domain>-<name>.pt``),
with its weights rounded to bf16, its provenance inside the file (recipe, steps, data, validation
figures, the command), and print the held-out figures of exactly the stored weights.

    python benchmarks/make_labelled.py --only dm3_gc moses
    seqdiff train -c configs/guidance/dna-gc-predictor.yaml
    python benchmarks/ship_predictors.py -c configs/guidance/dna-gc-predictor.yaml --name gc

The figures (``evaluate_predictor`` on every record of the recipe's validation file: the Gaussian NLL
over noise levels in normalised units, and on clean sequences the Pearson r and mean absolute error of
the predicted mean against the labels) are printed as JSON and written into the file's
``predictor.provenance``; ``--check`` only prints the figures of an already stored predictor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch

    from seqdiff.config import load_config
    from seqdiff.guidance.predictor import load_predictor
    from seqdiff.guidance.train_predictor import evaluate_predictor
    from seqdiff.pretrained import PREDICTORS, PRETRAINED_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", required=True, help="the predictor recipe it was trained with")
    ap.add_argument("--name", required=True, help="the shipped name (gc, qed)")
    ap.add_argument("--src", default=None, help="the trained predictor (default: the recipe's out_dir/predictor.pt)")
    ap.add_argument("--repeats", type=int, default=4, help="noisings per held-out record for the NLL")
    ap.add_argument("--check", action="store_true", help="only evaluate the stored predictor")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    torch.set_num_threads(1)
    src = Path(args.src or Path(cfg.out_dir) / "predictor.pt")
    if args.check:
        dom = [d for d, n in PREDICTORS if n == args.name]
        dest = PRETRAINED_DIR / "predictors" / f"{dom[0]}-{args.name}.pt"
        pred = load_predictor(dest)
        print(json.dumps(evaluate_predictor(pred, cfg, cfg.data.valid, repeats=args.repeats), indent=1))
        return 0
    pred = load_predictor(src)
    domain = pred.spec["domain"]
    if (domain, args.name) not in PREDICTORS:
        raise SystemExit(f"{args.name}: not a shipped predictor name for {domain} (seqdiff.pretrained.PREDICTORS)")
    dest = PRETRAINED_DIR / "predictors" / f"{domain}-{args.name}.pt"
    with torch.no_grad():  # the stored weights: bf16-rounded
        for v in pred.net.state_dict().values():
            if v.is_floating_point():
                v.copy_(v.to(torch.bfloat16).float())
    figures = evaluate_predictor(pred, cfg, cfg.data.valid, repeats=args.repeats)
    figures["file"] = str(cfg.data.valid)
    summary_path = src.parent / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    pred.spec["provenance"] = {
        "recipe": str(args.config), "command": f"seqdiff train -c {args.config}",
        "steps": summary.get("steps"), "train_rows": summary.get("train_rows"), "train_data": str(cfg.data.train),
        "labels": "python benchmarks/make_labelled.py", "wall_seconds": summary.get("wall_seconds"),
        "stored": "bfloat16", "validation": figures}
    dest.parent.mkdir(parents=True, exist_ok=True)
    pred.save(dest, dtype=torch.bfloat16)
    back = load_predictor(dest)
    probe = torch.randint(0, pred.tokenizer.vocab_size, (4, int(pred.spec["max_len"])))
    same = torch.equal(back(probe, torch.full((4,), 0.5)), pred(probe, torch.full((4,), 0.5)))
    print(json.dumps({"path": str(dest.relative_to(ROOT)), "bytes": dest.stat().st_size,
                      "reloaded_outputs_identical": same, **pred.spec["provenance"]}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
