"""End to end: the real `seqdiff app` server driven in headless Chromium with Playwright — a designer's task
for every domain (benchmarks/app_browser.py): open the app, keep the default template, generate, wait for
the first candidate, sort by ELBO, download the FASTA / SMILES / text file and read it back with
Biopython / RDKit.

Tiny models keep it short; ``benchmarks/bench_app.py`` runs the same task with the shipped models and the
app's real defaults and records the times. Needs the Debian ``chromium`` package (``/usr/bin/chromium``)
and the ``playwright`` Python package (no downloaded browsers); skipped, with the reason, when either is
missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import app_browser as B  # noqa: E402

# what each domain's default template fixes, as the candidates show it
FIXED = {"dna": "TATAAAA", "smiles": "c1ccccc1", "protein": "GPSGSGKST", "text": "the", "rna": "GUUCGAAUC"}


@pytest.mark.timeout(300)
def test_designer_task_in_headless_chromium(tmp_path):
    if not Path(B.CHROMIUM).is_file():
        pytest.skip(f"{B.CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing (pip install playwright; the browser is Debian's chromium)")
    pytest.importorskip("streamlit", reason="the app extra (streamlit) is not installed")

    import torch

    from seqdiff.training.config import load_config
    from seqdiff.training.train import train

    torch.set_num_threads(1)
    # DNA first, then a domain switch after every finished run: the "Generated N candidates" banner of
    # each run must appear (it once went missing after a switch; the banner now lives in the fragment)
    domains = ("dna", "smiles", "protein", "text", "rna")
    models = {d: train(load_config(ROOT / "configs" / "tiny" / f"{d}.yaml", [f"out_dir={tmp_path / d}"]),
                       quiet=True)["model"] for d in domains}
    (tmp_path / "dl").mkdir()
    results = []
    with B.serve(tmp_path, models, threads=1) as url, B.browser_page(timeout_ms=60_000) as page:
        for i, domain in enumerate(domains):
            shot = tmp_path / f"app-{domain}.png"
            r = B.designer_task(page, url, domain, tmp_path / "dl", screenshot=shot, first_domain=i == 0)
            results.append(r)
            # the default template's fixed letters are in every downloaded candidate
            recs = B.read_download(tmp_path / "dl" / r["download"], domain)
            assert len(recs) == r["candidates"] == 16 and all(FIXED[domain] in rec[1] for rec in recs), recs[:2]
            assert 0 < r["seconds_to_first_candidate"] <= r["seconds_to_all"]
            assert shot.stat().st_size > 10_000
        assert not page.get_by_test_id("stException").count()
    assert [r["domain"] for r in results] == list(domains)
    # a file that does not parse is caught (the checks above can fail)
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO x\n")
    with pytest.raises(ValueError, match="SMILES<TAB>id"):
        B.read_download(bad, "smiles")
    bad.write_text("ACGT\n")  # no FASTA header
    with pytest.raises(ValueError):
        B.read_download(bad, "dna")
