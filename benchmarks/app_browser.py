"""A designer's task in the design app, driven in headless Chromium with Playwright.

Shared by the browser test (``tests/test_app_browser.py``: tiny models) and the timing script
(``benchmarks/bench_app.py``: the shipped models and the app's real defaults), so that both measure the
same thing:

1. start the real ``seqdiff app`` (Streamlit) on a free loopback port;
2. per domain: open the app, pick the domain, keep its default template and settings, press Generate,
   wait for the first candidates (they stream in batch by batch), wait for the run to finish, sort by
   the ELBO (bits per token, best first), download the FASTA / SMILES / text file and check that it
   parses (Biopython for FASTA, RDKit for SMILES) and holds the candidates in the table's order.

Time to first candidate is measured in the browser: from the click on Generate to the first row of
candidates on the page.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from seqdiff.app import stop_process  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LABELS = {"dna": "DNA", "protein": "Protein", "smiles": "Molecules (SMILES)", "text": "Text", "rna": "RNA"}
DOWNLOAD = {"dna": "FASTA", "protein": "FASTA", "rna": "FASTA", "smiles": "SMILES", "text": "text"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"seqdiff app exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"seqdiff app did not come up in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def serve(workdir: Path, models: Mapping[str, str] | None = None, *, threads: int | None = None,
          timeout: float = 60.0) -> Iterator[str]:
    """Run ``seqdiff app --headless`` (the installed console script's entry point, from this checkout) on a
    free loopback port; yields its URL and stops it (SIGTERM, which the launcher passes on) afterwards."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-c", "import sys; from seqdiff.cli import main; sys.exit(main())", "app", "--headless",
           "--port", str(port), "--address", "127.0.0.1", "--device", "cpu"]
    for dom, path in (models or {}).items():
        cmd += ["--model", f"{dom}={path}"]
    log = Path(workdir) / "seqdiff-app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log, timeout)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process(proc, 15)


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1500, timeout_ms: int = 120_000):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
            page.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield page
        finally:
            browser.close()


def read_download(path: Path, domain: str) -> list[tuple[str, str]]:
    """``(id, sequence)`` of a downloaded candidates file, read with the domain's real parser (for SMILES
    ``(id, smiles, RDKit parsed it)``); raises ``ValueError`` for a file that does not parse."""
    text = Path(path).read_text()
    if domain in ("dna", "protein", "rna"):
        from Bio import SeqIO

        recs = [(r.id, str(r.seq)) for r in SeqIO.parse(io.StringIO(text), "fasta")]
        if not recs or text.count(">") != len(recs):
            raise ValueError(f"{path}: not a FASTA file of {text.count('>')} records")
        return recs
    if domain == "smiles":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        lines = text.splitlines()
        if not lines or any(line.count("\t") != 1 for line in lines):
            raise ValueError(f"{path}: not a SMILES<TAB>id file")
        supplier = Chem.SmilesMolSupplier(str(path), delimiter="\t", smilesColumn=0, nameColumn=1, titleLine=False)
        mols = [supplier[i] for i in range(len(supplier))]  # None: RDKit cannot parse that SMILES
        if len(mols) != len(lines):
            raise ValueError(f"{path}: RDKit read {len(mols)} records of {len(lines)} lines")
        out = []
        for line, mol in zip(lines, mols):
            smi, name = line.split("\t")
            if mol is not None and mol.GetProp("_Name") != name:
                raise ValueError(f"{path}: RDKit read {mol.GetProp('_Name')!r} where the file names {name!r}")
            out.append((name, smi, mol is not None))
        return out
    return [(str(i + 1), line) for i, line in enumerate(text.splitlines())]


def choose(page, combobox, option: str) -> None:
    """Pick ``option`` in a Streamlit selectbox: click it open, type to filter the list, press Enter."""
    from playwright.sync_api import expect

    combobox.scroll_into_view_if_needed()
    combobox.click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    expect(combobox).to_have_value(option)


def _settle(page, quiet_ms: int = 400) -> None:
    """Wait until the app has finished its current rerun (Streamlit's status widget is gone)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(quiet_ms)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def designer_task(page, url: str, domain: str, downloads: Path, *, screenshot: Path | None = None,
                  first_domain: bool = True, log=None) -> dict:
    """Open the app, pick ``domain``, keep its default template, generate, wait for the first candidate,
    sort by ELBO, download the sequence file; returns timings and what was checked."""
    from playwright.sync_api import expect

    t_start = time.perf_counter()

    def stage(what: str) -> None:
        if log is not None:
            log(f"{domain}: {what} ({time.perf_counter() - t_start:.1f} s)")

    if first_domain:
        page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(page.locator("#sd-template-preview")).to_be_visible()
    select = sidebar.get_by_role("combobox", name="Domain")
    if select.input_value() != LABELS[domain]:
        choose(page, select, LABELS[domain])
        expect(page.locator("#sd-candidates")).to_have_count(0)  # the previous domain's results are gone
    _settle(page)
    expect(page.locator("#sd-template-preview")).to_be_visible()
    template = page.get_by_role("textbox", name="Template").input_value()
    num = int(page.get_by_role("spinbutton", name="Candidates").input_value())
    steps = int(page.get_by_role("spinbutton", name="Steps").input_value())
    stage(f"generate {num} candidates, {steps} steps, template {template}")
    page.get_by_role("button", name="Generate", exact=True).click()
    t0 = time.perf_counter()
    first = page.get_by_text(re.compile(r"candidates so far|^Generated \d+ candidates")).first
    expect(first).to_be_visible()
    t_first = time.perf_counter() - t0
    stage(f"first candidates after {t_first:.1f} s")
    expect(page.get_by_text(re.compile(rf"^Generated {num} candidates"))).to_be_visible()
    t_all = time.perf_counter() - t0
    stage(f"all candidates after {t_all:.1f} s; sorting")
    # sort by the ELBO, best first
    _settle(page)
    sort = page.get_by_role("combobox", name="Sort by")
    choose(page, sort, "bits per token (best first)")
    _settle(page)
    rows = page.locator("#sd-candidates .sd-seq .sd-id")
    expect(rows.first).to_be_visible()
    scores = [float(s.split()[0]) for s in page.locator("#sd-candidates .sd-score").all_inner_texts()]
    ids_shown = rows.all_inner_texts()
    if scores != sorted(scores):
        raise AssertionError(f"{domain}: not sorted by bits/token: {scores}")
    # download the candidates in the domain's format and read them back with a real parser
    kind = DOWNLOAD[domain]
    stage(f"sorted; downloading {kind}")
    with page.expect_download() as dl:
        page.get_by_role("button", name=f"Download {kind}").click()
    path = Path(downloads) / dl.value.suggested_filename
    dl.value.save_as(path)
    records = read_download(path, domain)
    if len(records) != num:
        raise AssertionError(f"{domain}: {len(records)} records downloaded, {num} generated")
    if domain != "text" and [r[0] for r in records[:len(ids_shown)]] != ids_shown:
        raise AssertionError(f"{domain}: the file is not in the table's order")
    valid = None
    if domain == "smiles":  # RDKit's verdicts on the file agree with the validity the app shows
        valid = sum(r[2] for r in records)
        shown = page.get_by_test_id("stMetric").filter(has_text="Valid molecules").inner_text()
        if f"{100 * valid / num:.0f}%" not in shown:
            raise AssertionError(f"smiles: RDKit parsed {valid} of {num} downloaded; the app shows {shown!r}")
    stage("downloaded and read back")
    if screenshot is not None:
        page.get_by_text(re.compile(r"^\d+ candidates$")).first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        page.screenshot(path=str(screenshot))
    return {"domain": domain, "template": template, "candidates": num, "steps": steps,
            "seconds_to_first_candidate": round(t_first, 2), "seconds_to_all": round(t_all, 2),
            "download": path.name, "records_parsed": len(records), "valid_molecules": valid, "best_bits_per_token": scores[0] if scores else None}
