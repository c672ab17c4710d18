"""The variant tab's few-shot / family section (apps/_variants.py), driven with Streamlit's AppTest on the
shipped protein model."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

st_testing = pytest.importorskip("streamlit.testing.v1", reason="the app extra (streamlit) is not installed")
pytest.importorskip("logomaker", reason="the app extra (logomaker) is not installed")
AppTest = st_testing.AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "apps" / "design.py")
if str(ROOT / "apps") not in sys.path:
    sys.path.insert(0, str(ROOT / "apps"))
C = importlib.import_module("_components")


@pytest.fixture
def at(monkeypatch, tmp_path):
    from seqdiff.pretrained import resolve_model
    monkeypatch.setenv(C.MODELS_ENV, f"protein={resolve_model('protein')},text=none")
    monkeypatch.setenv(C.DEVICE_ENV, "cpu")
    monkeypatch.setenv("SEQDIFF_CACHE", str(tmp_path / "cache"))
    app = AppTest.from_file(APP, default_timeout=180).run()
    app.sidebar.selectbox(key="domain").set_value("protein").run()
    assert not app.exception
    return app


def _labels(wt: str, n_pos: int = 10, seed: int = 0) -> str:
    """Four substitutions at each of ``n_pos`` positions; the measurement is a per-site effect plus noise
    (an explicit rule the site features can learn)."""
    rng = np.random.default_rng(seed)
    rows = ["mutant,fitness"]
    for p in rng.choice(len(wt), n_pos, replace=False):
        effect = rng.normal()
        for a in [c for c in "ADKW" if c != wt[p]][:3] + ["G" if wt[p] != "G" else "P"]:
            rows.append(f"{wt[p]}{p + 1}{a},{effect + 0.1 * rng.normal():.4f}")
    return "\n".join(rows)


def test_fit_shows_learning_curve_heatmap_and_predictions(at):
    wt = at.text_area(key="wt_protein").value
    at.text_area(key="fs_labels_text").input(_labels(wt)).run()
    at.button(key="fs_fit").click().run()
    assert not at.exception and not [e.value for e in at.error]
    res = at.session_state["fewshot"]["protein"]
    assert len(res["pred"]) == 19 * len(wt)
    assert set(res["curve"]["n labelled"]) == {4, 8, 16, 32}
    # the rule is a per-site effect: with 32 labels the few-shot model ranks held-out variants well
    big = res["curve"][(res["curve"]["method"] == "few-shot augmented") & (res["curve"]["n labelled"] == 32)]
    assert big["Spearman"].mean() > 0.5
    # the measured variants carry their measurement; predictions have a positive sd
    assert res["pred"]["measured"].notna().sum() == 40 and (res["pred"]["sd"] > 0).all()
    charts = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
    assert len(charts) >= 2  # learning curve + heatmap
    assert any("Fitted on" in m.value for m in at.markdown)


def test_bad_labels_and_homologs_give_clear_errors(at):
    wt = at.text_area(key="wt_protein").value
    bad = "mutant,fitness\n" + f"{wt[0]}1A,0.1\n" + ("W" if wt[4] != "W" else "Y") + "5A,0.3\n"
    at.text_area(key="fs_labels_text").input(bad).run()
    at.button(key="fs_fit").click().run()
    err = " ".join(e.value for e in at.error)
    assert "row 2" in err and "position 5" in err and "pasted" in err
    # homologs that do not contain the wild type (an alignment with gaps)
    at.text_area(key="fs_labels_text").input(_labels(wt, 3)).run()
    other = wt[:10].replace(wt[3], "W" if wt[3] != "W" else "Y", 1)
    at.file_uploader(key="fs_homologs_up").upload("hom.fa", f">a\n{other}-\n>b\n{other}-\n".encode(), "text/plain")
    at.button(key="fs_fit").click().run()
    err = " ".join(e.value for e in at.error)
    assert "hom.fa" in err and "does not contain the wild type" in err
