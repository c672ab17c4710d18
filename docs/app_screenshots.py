"""Make the README screenshots of the design app (docs/app-<domain>.png).

    python docs/app_screenshots.py                         # shipped models, DNA and SMILES
    python docs/app_screenshots.py --model dna=runs/x/model.pt --domains dna

Starts ``streamlit run apps/design.py`` on a free port, drives it in headless Chromium (the system
browser: ``--chromium``) with Playwright, generates candidates for each domain and saves a palette PNG
(at most ``--max-kb`` KB) of the page.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"dna": "DNA", "protein": "Protein", "smiles": "Molecules (SMILES)", "text": "Text"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shrink(png: bytes, max_kb: int) -> bytes:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colors in (256, 128, 64, 32):
        buf = io.BytesIO()
        img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() <= max_kb * 1024:
            return buf.getvalue()
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", nargs="+", default=["dna", "smiles"], choices=list(LABELS))
    p.add_argument("--model", action="append", default=[], metavar="DOMAIN=PATH", help="instead of the shipped model")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--candidates", type=int, default=16)
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2000)
    p.add_argument("--max-kb", type=int, default=290)
    args = p.parse_args(argv)

    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if args.model:
        pairs = [m.split("=", 1) for m in args.model]
        env["SEQDIFF_APP_MODELS"] = ",".join(f"{d}={path}" for d, path in pairs)  # as given: relative to here
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "apps" / "design.py"),
                             "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.25)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            for i, domain in enumerate(args.domains):
                if i or domain != "dna":
                    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
                    page.get_by_role("option", name=LABELS[domain], exact=True).click()
                    expect(page.locator("#sd-candidates")).to_have_count(0)
                box = page.get_by_role("spinbutton", name="Candidates")
                box.fill(str(args.candidates))
                box.press("Enter")
                page.wait_for_timeout(800)
                page.get_by_role("button", name="Generate", exact=True).click()
                expect(page.locator("#sd-candidates .sd-seq")).to_have_count(min(args.candidates, 50))
                expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
                page.wait_for_timeout(1500)
                out = Path(args.out) / f"app-{domain}.png"
                out.write_bytes(_shrink(page.screenshot(), args.max_kb))
                print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
                # the highlighted candidates and the domain's view (logo, motifs, molecules) below them
                page.get_by_text("(fixed regions highlighted)").scroll_into_view_if_needed()
                page.mouse.wheel(0, 250)
                page.wait_for_timeout(800)
                out = Path(args.out) / f"app-{domain}-results.png"
                out.write_bytes(_shrink(page.screenshot(), args.max_kb))
                print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
                page.mouse.wheel(0, -100_000)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
