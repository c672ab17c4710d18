"""`seqdiff demo`: the quick-start job on the shipped models (the job: :mod:`seqdiff.jobs.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__: list[str] = []


def configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", "-o", default="demo", help="output folder")
    p.add_argument("--num", type=int, default=32, help="sequences per generation task")
    p.add_argument("--steps", type=int, default=64, help="sampling steps")
    p.add_argument("--variants", type=int, default=2000, help="GB1 double mutants to score (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same outputs")
    p.add_argument("--progress", action="store_true", help="show progress bars")


def run_demo(args) -> int:
    from ..jobs.demo import run_demo as demo
    demo(Path(args.out), num=args.num, steps=args.steps, seed=args.seed, variants=args.variants,
         quiet=not args.progress)
    return 0
