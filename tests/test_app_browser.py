"""End to end: the design app served by `streamlit run`, driven in headless Chromium with Playwright.

Needs the Debian ``chromium`` package (``/usr/bin/chromium``) and the ``playwright`` Python package (no
downloaded browsers); skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "design.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# what each domain's default template fixes, as the candidates show it
FIXED = {"dna": "TTGACA", "smiles": "c1ccccc1", "protein": "GPSGSGKST", "text": "the"}
LABELS = {"dna": "DNA", "protein": "Protein", "smiles": "Molecules (SMILES)", "text": "Text"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"streamlit did not come up in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(240)
def test_app_in_headless_chromium(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (pip install playwright; the browser is Debian's chromium)")
    pytest.importorskip("streamlit", reason="the app extra (streamlit) is not installed")

    import torch

    from seqdiff.training.config import load_config
    from seqdiff.training.train import train

    torch.set_num_threads(1)
    domains = ("dna", "smiles", "protein", "text")
    models = {d: train(load_config(ROOT / "configs" / "tiny" / f"{d}.yaml", [f"out_dir={tmp_path / d}"]),
                       quiet=True)["model"] for d in domains}

    port = _free_port()
    env = dict(os.environ, SEQDIFF_APP_MODELS=",".join(f"{d}={p}" for d, p in models.items()),
               SEQDIFF_APP_DEVICE="cpu", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = tmp_path / "streamlit.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                page.set_default_timeout(45_000)
                expect.set_options(timeout=45_000)
                page.goto(f"http://127.0.0.1:{port}/")
                sidebar = page.get_by_test_id("stSidebar")
                for domain in domains:
                    if domain != "dna":
                        sidebar.get_by_test_id("stSelectbox").first.click()
                        page.get_by_role("option", name=LABELS[domain], exact=True).click()
                        # the previous domain's candidates go once the rerun for the new domain is complete
                        expect(page.locator("#sd-candidates")).to_have_count(0)
                    expect(page.locator("#sd-template-preview")).to_contain_text(FIXED[domain])
                    page.get_by_role("button", name="Generate", exact=True).click()
                    rows = page.locator("#sd-candidates .sd-seq")
                    expect(rows).to_have_count(16)
                    expect(page.locator("#sd-candidates .fixed", has_text=FIXED[domain])).to_have_count(16)
                    texts = rows.all_inner_texts()
                    assert all(FIXED[domain] in t for t in texts), texts[:3]
                    expect(page.get_by_text("Generated 16 candidates")).to_be_visible()
                    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
                    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)  # the run has settled
                    page.wait_for_timeout(300)
                    shot = tmp_path / f"app-{domain}.png"
                    page.screenshot(path=str(shot))
                    assert shot.stat().st_size > 10_000
                assert not page.get_by_test_id("stException").count()
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
