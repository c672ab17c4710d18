"""Time to first candidate in the design app, per domain, with the shipped models and the app's defaults.

    python benchmarks/bench_app.py                    # every domain with a shipped model
    python benchmarks/bench_app.py --domains dna smiles

Runs the designer's task of ``benchmarks/app_browser.py`` (the real ``seqdiff app`` in headless Chromium:
default template and settings, Generate, first candidate, sort by ELBO, download and read back) and
writes:

* ``benchmarks/results/app_timing.json``: per domain the template, candidates, steps, seconds from the
  click on Generate to the first candidate on the page and to all of them (the README table
  ``app-timing`` is built from it: ``python benchmarks/readme_tables.py``);
* ``docs/app-<domain>.png``: a screenshot of the results, palette-compressed to at most ``--max-kb``.

The machine's load matters on a shared computer: the JSON records the 1-minute load average before
and after each domain.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import app_browser as B  # noqa: E402


def shrink_png(png: bytes, max_kb: int) -> bytes:
    """A palette PNG of at most ``max_kb`` KB where the colour count allows (fewer colours until it fits)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colors in (128, 64, 32, 16):
        buf = io.BytesIO()
        img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() <= max_kb * 1024:
            break
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    from seqdiff.pretrained import available

    shipped = available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", nargs="+", default=[d for d in B.LABELS if d in shipped])
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "app_timing.json"))
    p.add_argument("--docs", default=str(ROOT / "docs"), help="where the screenshots go")
    p.add_argument("--max-kb", type=int, default=110)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=960)
    args = p.parse_args(argv)
    missing = [d for d in args.domains if d not in shipped]
    if missing:
        p.error(f"no shipped model for {', '.join(missing)}")
    os.environ.pop("SEQDIFF_APP_MODELS", None)  # the shipped models, whatever this shell configured
    rows = []
    with tempfile.TemporaryDirectory(prefix="seqdiff-bench-app-") as tmp:
        tmp = Path(tmp)
        (tmp / "dl").mkdir()
        with B.serve(tmp) as url, B.browser_page(args.width, args.height, timeout_ms=600_000) as page:
            for i, domain in enumerate(args.domains):
                load0 = os.getloadavg()[0]
                shot = tmp / f"app-{domain}.png"
                r = B.designer_task(page, url, domain, tmp / "dl", screenshot=shot, first_domain=i == 0,
                                    log=lambda m: print("  " + m, flush=True))
                r["load_1min_before"], r["load_1min_after"] = round(load0, 2), round(os.getloadavg()[0], 2)
                out = Path(args.docs) / f"app-{domain}.png"
                out.write_bytes(shrink_png(shot.read_bytes(), args.max_kb))
                r["screenshot"] = out.relative_to(ROOT).as_posix() if out.is_relative_to(ROOT) else out.name
                rows.append(r)
                print(f"{domain:8s} first candidate after {r['seconds_to_first_candidate']:6.1f} s, all "
                      f"{r['candidates']} after {r['seconds_to_all']:6.1f} s ({r['steps']} steps; template "
                      f"{r['template']}; load {load0:.1f})", flush=True)
    doc = {"command": " ".join(["python benchmarks/bench_app.py"] + list(argv if argv is not None else sys.argv[1:])),
           "cpus": os.cpu_count(), "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
           "rows": rows}
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
