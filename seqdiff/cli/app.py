"""`seqdiff app` — start the Streamlit design app (apps/design.py)."""

from __future__ import annotations

import argparse

__all__: list[str] = []


def configure_app(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="server port (Streamlit's default: 8501)")
    p.add_argument("--address", default=None, help="server address (default 127.0.0.1: this computer only; e.g. 0.0.0.0 serves every "
                        "network this computer is on, so anyone there can use the app)")
    p.add_argument("--headless", action="store_true", help="do not open a browser window")
    p.add_argument("--model", action="append", default=[], metavar="DOMAIN=PATH",
                   help="model file to offer first for a domain (repeatable), e.g. --model dna=runs/dna/model.pt; "
                        "DOMAIN=none hides the shipped model of that domain")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--dry-run", action="store_true", help="print the command and environment, start nothing")


def run_app(args: argparse.Namespace) -> int:
    from ..app import launch
    return launch(port=args.port, address=args.address, headless=args.headless, models=args.model,
                  device=args.device, dry_run=args.dry_run)
