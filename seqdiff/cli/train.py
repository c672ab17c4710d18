"""`seqdiff train` and `seqdiff gpu-train` (the training code: :mod:`seqdiff.training`)."""

from __future__ import annotations

import argparse

__all__: list[str] = []


# --------------------------------------------------------------------------------------- train
def configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML recipe (see configs/); with a `predictor` section (e.g. "
                   "configs/guidance/smiles-qed-predictor.yaml) it trains a property predictor on noisy sequences "
                   "of `predictor.model` and writes out_dir/predictor.pt, for `seqdiff sample --classifier`")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3 trainer.max_steps=50")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run in out_dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or Lightning chatter")
    p.add_argument("--help-config", action="store_true", help="print every config field and exit")


def run_train(args: argparse.Namespace) -> int:
    from ..config import config_docs, load_config
    from ..training.train import train
    if args.help_config:
        print(config_docs())
        return 0
    if not args.config:
        raise SystemExit("seqdiff train: --config is required (see configs/)")
    cfg = load_config(args.config, args.overrides)
    train(cfg, resume=False if args.no_resume else "auto", quiet=args.quiet)
    return 0


# ----------------------------------------------------------------------------------- gpu-train
def configure_gpu_train(p: argparse.ArgumentParser) -> None:
    from ..training.oneshot import configure
    configure(p)


def run_gpu_train(args: argparse.Namespace) -> int:
    from ..training.oneshot import run
    return run(args)
