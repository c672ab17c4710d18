"""The design app's "Steer towards a property" expander (apps/_guidance.py), driven with Streamlit's AppTest
on tiny models trained from the test recipes."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

pytest.importorskip("streamlit.testing.v1", reason="the app extra (streamlit) is not installed")
pytest.importorskip("logomaker", reason="the app extra (logomaker) is not installed")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "apps") not in sys.path:
    sys.path.insert(0, str(ROOT / "apps"))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
C = importlib.import_module("_components")
G = importlib.import_module("_guidance")
from test_app import errors, fresh, ok, set_domain, tiny_models, wait_for_job  # noqa: E402,F401


@pytest.fixture(scope="module")
def steer_models(tiny_models) -> dict[str, Path]:
    """The app tests' tiny DNA and protein models (trained once per session)."""
    return {d: tiny_models[d] for d in ("dna", "protein")}


@pytest.fixture
def steer_env(monkeypatch, steer_models):
    monkeypatch.setenv(C.MODELS_ENV, ",".join([f"{d}={p}" for d, p in steer_models.items()]
                                              + ["text=none", "smiles=none"]))
    monkeypatch.setenv(C.DEVICE_ENV, "cpu")
    return steer_models


def gc_of(s: str) -> float:
    u = s.upper()
    acgt = sum(u.count(b) for b in "ACGT")
    return (u.count("G") + u.count("C")) / acgt


# ---------------------------------------------------------------- settings → spec (no app)
def test_reward_menu_and_checks():
    assert G.reward_choices("dna") == ["gc", "motif"]
    assert G.reward_choices("protein") == ["hydrophobicity"]
    assert "gc" not in G.reward_choices("smiles") and "qed" in G.reward_choices("smiles")
    base = {"reward": "gc", "arg": None, "use_range": True, "lo": 0.6, "hi": 0.8, "lam": 5.0,
            "method": "best-of-N", "n": 4}
    spec, err = G.check_steering("dna", base)
    assert err is None and spec == "gc@0.6..0.8:5.0"
    from seqdiff.guidance.rewards import parse_reward
    r = parse_reward(spec, "dna")
    assert (r.lo, r.hi, r.lam) == (0.6, 0.8, 5.0)
    # the range is ignored while the checkbox is off
    assert G.check_steering("dna", dict(base, use_range=False, lo=0.9, hi=0.1))[0] == "gc:5.0"
    spec, err = G.check_steering("dna", dict(base, lo=0.9, hi=0.5))
    assert spec is None and "lower end (0.9) is above the upper end (0.5)" in err
    spec, err = G.check_steering("dna", dict(base, reward="qed"))
    assert spec is None and "'qed' is for smiles models; this is a dna model" in err
    spec, err = G.check_steering("dna", dict(base, reward="motif", arg=""))
    assert spec is None and "needs an argument" in err
    spec, err = G.check_steering("dna", dict(base, reward="motif", arg="NOPE"))
    assert spec is None and "unknown JASPAR motif 'NOPE'" in err
    assert G.check_steering("dna", dict(base, reward="motif", arg="TBP", use_range=False)) == ("motif=TBP:5.0", None)
    assert "λ" in G.check_steering("dna", dict(base, lam=0.0))[1]
    assert G.check_steering("dna", dict(base, n=1))[1] is not None  # best of 1 is no steering
    assert G.check_steering("dna", dict(base, method="SMC", n=1))[1] is None


# ---------------------------------------------------------------- the app
def steer_on(at, domain: str, *, lo: float | None = None, hi: float | None = None, n: int = 8,
             lam: float = 10.0, method: str = "best-of-N"):
    at.toggle(key=f"steer_on_{domain}").set_value(True).run()
    ok(at)
    if lo is not None:
        at.checkbox(key=f"steer_range_{domain}_gc").check().run()
        at.number_input(key=f"steer_lo_{domain}_gc").set_value(lo)
        at.number_input(key=f"steer_hi_{domain}_gc").set_value(hi)
    at.radio(key=f"steer_method_{domain}").set_value(method)
    at.number_input(key=f"steer_n_{domain}").set_value(n)
    at.number_input(key=f"steer_lam_{domain}").set_value(lam).run()
    ok(at)
    return at


def test_steering_gc_high_guided_vs_baseline(steer_env):
    at = fresh()
    assert at.toggle(key="steer_on_dna").value is False  # off by default
    at.text_area(key="template_dna").input("ACGT{28}")
    at.number_input(key="num_dna").set_value(8)
    at.number_input(key="steps_dna").set_value(8)
    at.number_input(key="seed_dna").set_value(3)
    steer_on(at, "dna", lo=0.7, hi=1.0, n=8, lam=10.0)
    assert not errors(at)
    assert any("unguided baseline" in c.value for c in at.caption)  # the UI says it doubles the work
    at.button(key="generate").click().run()
    ok(at)
    wait_for_job(at, timeout=120)
    assert not errors(at)
    res = at.session_state["results"]["dna"]
    steer = res["steer"]
    seqs = [c.sequence for c in res["cands"]]
    assert len(seqs) == 8 and len(steer["guided"]) == 8 and len(steer["baseline"]) == 8
    assert all(s.startswith("ACGT") for s in seqs)
    assert steer["guided"] == pytest.approx([gc_of(s) for s in seqs])
    # the table has the property and the reward (minus the distance to the range)
    df = res["df"]
    assert list(df["gc"]) == pytest.approx([gc_of(s) for s in seqs], abs=1e-6)
    assert list(df["reward"]) == pytest.approx([-max(0.7 - gc_of(s), 0.0) for s in seqs], abs=1e-6)
    mg, mb = sum(steer["guided"]) / 8, sum(steer["baseline"]) / 8
    assert mg > mb
    shown = {m.label: m.value for m in at.metric}
    assert shown["Mean gc, guided"] == f"{mg:.3f}"
    assert shown["Mean gc, baseline"] == f"{mb:.3f}"
    assert "Steering towards `gc@0.7..1.0:10.0`" in "\n".join(m.value for m in at.markdown)


def test_bad_range_shows_error_and_runs_nothing(steer_env):
    at = fresh()
    steer_on(at, "dna", lo=0.9, hi=0.5)
    assert any("lower end (0.9) is above the upper end (0.5)" in e for e in errors(at))
    at.button(key="generate").click().run()
    ok(at)
    assert at.session_state["job"] is None
    assert any(e.startswith("Nothing was generated") for e in errors(at))
    assert not at.session_state["results"]


def test_steering_settings_persist_across_domain_switch(steer_env):
    at = fresh()
    steer_on(at, "dna", lo=0.6, hi=0.8, n=5, lam=3.0, method="SMC")
    set_domain(at, "protein")
    assert at.selectbox(key="steer_reward_protein").options == ["hydrophobicity: mean Kyte–Doolittle hydropathy "
                                                                 "(GRAVY)"]
    assert at.toggle(key="steer_on_protein").value is False
    at.toggle(key="steer_on_protein").set_value(True).run()
    at.number_input(key="steer_n_protein").set_value(7).run()
    ok(at)
    set_domain(at, "dna")
    assert at.toggle(key="steer_on_dna").value is True
    assert at.radio(key="steer_method_dna").value == "SMC"
    assert at.number_input(key="steer_n_dna").value == 5
    assert at.number_input(key="steer_lam_dna").value == 3.0
    assert at.checkbox(key="steer_range_dna_gc").value is True
    assert (at.number_input(key="steer_lo_dna_gc").value, at.number_input(key="steer_hi_dna_gc").value) == (0.6, 0.8)
    set_domain(at, "protein")
    assert at.toggle(key="steer_on_protein").value is True
    assert at.number_input(key="steer_n_protein").value == 7


def test_steering_smc_run_keeps_template_and_reports_reward(steer_env):
    at = fresh()
    at.text_area(key="template_dna").input("ACGT{12}TATA")
    at.number_input(key="num_dna").set_value(4)
    at.number_input(key="steps_dna").set_value(6)
    steer_on(at, "dna", n=4, lam=5.0, method="SMC")
    assert any("--reward 'gc:5.0' --particles 4" in c.value for c in at.caption)
    at.button(key="generate").click().run()
    ok(at)
    wait_for_job(at, timeout=120)
    assert not errors(at)
    res = at.session_state["results"]["dna"]
    seqs = [c.sequence for c in res["cands"]]
    assert len(seqs) == 4 and all(s.startswith("ACGT") and s.endswith("TATA") and len(s) == 20 for s in seqs)
    assert res["steer"]["method"] == "SMC" and len(res["steer"]["baseline"]) == 4
    # no range: the reward is the property itself
    assert list(res["df"]["reward"]) == pytest.approx([gc_of(s) for s in seqs], abs=1e-6)


# ---------------------------------------------------------------- classifier guidance (shipped predictors)
def test_classifier_guidance_menu_and_checks():
    from seqdiff.model import load_model
    assert G.method_choices("dna") == ("best-of-N", "SMC", G.CG)
    assert G.method_choices("smiles") == ("best-of-N", "SMC", G.CG)
    assert G.method_choices("protein") == ("best-of-N", "SMC")  # no shipped predictor
    s = {"method": G.CG, "predictor": "gc", "lo": 0.6, "hi": 1.0, "gamma": 2.0}
    assert G.check_classifier_guidance("dna", s) == ("0.6..1.0", None)
    target, err = G.check_classifier_guidance("dna", dict(s, lo=0.9, hi=0.5))
    assert target is None and err == "Target range: the lower end (0.9) is above the upper end (0.5)."
    assert G.check_classifier_guidance("dna", dict(s, gamma=0.0))[1] == "Strength γ must be a positive number, got 0."
    assert "No shipped predictor 'qed' for dna models" in G.check_classifier_guidance("dna", dict(s, predictor="qed"))[1]
    dna = load_model(ROOT / "seqdiff" / "pretrained" / "dna.pt")
    assert G.check_classifier_guidance("dna", s, dna, "ancestral") == ("0.6..1.0", None)
    # checked against the model: the shipped SMILES predictor does not fit the DNA model's vocabulary
    st = G.guidance_settings(dict(s, predictor="qed", target="0.9..1.0"))
    with pytest.raises(ValueError, match="qed: not a file, nor a shipped predictor for dna models"):
        st.check(dna)
    g = G.guidance_settings(dict(s, target="0.6..1.0")).check(dna)
    assert g.classifier_method == "first_order" and g.guidance == 2.0
    assert (g.classifier.lo, g.classifier.hi) == (0.6, 1.0) and g.classifier.pred.spec["column"] == "gc"


@pytest.fixture
def shipped_env(monkeypatch):
    monkeypatch.delenv(C.MODELS_ENV, raising=False)  # the shipped models
    monkeypatch.setenv(C.DEVICE_ENV, "cpu")


def cg_on(at, domain: str, lo: float, hi: float, gamma: float, predictor: str):
    at.toggle(key=f"steer_on_{domain}").set_value(True).run()
    at.radio(key=f"steer_method_{domain}").set_value(G.CG).run()
    ok(at)
    at.number_input(key=f"steer_cg_lo_{domain}_{predictor}").set_value(lo)
    at.number_input(key=f"steer_cg_hi_{domain}_{predictor}").set_value(hi)
    at.number_input(key=f"steer_gamma_{domain}").set_value(gamma).run()
    ok(at)
    return at


def test_classifier_guidance_gc_in_the_app_matches_infill_and_beats_baseline(shipped_env):
    """The shipped DNA model steered by the shipped GC predictor in the app: exactly what `infill` with the
    same guidance draws, GC measured on the outputs, above the same-size unguided baseline."""
    from seqdiff.guidance.run import GuidanceSettings
    from seqdiff.jobs.generate import infill
    from seqdiff.model import load_model
    at = fresh()
    assert at.sidebar.selectbox(key="domain").value == "dna"
    at.text_area(key="template_dna").input("ACGT{40}")
    at.number_input(key="num_dna").set_value(12)
    at.number_input(key="steps_dna").set_value(8)
    at.number_input(key="seed_dna").set_value(5)
    at.selectbox(key="sampler_dna").set_value("ancestral")
    cg_on(at, "dna", 0.6, 1.0, 3.0, "gc")
    assert not errors(at)
    assert at.selectbox(key="steer_pred_dna").options == ["gc: GC content, predicted from noisy sequences"]
    assert any("`--classifier gc --target 0.6..1.0 --guidance 3 --classifier-method first_order`" in c.value
               for c in at.caption)
    at.button(key="generate").click().run()
    ok(at)
    wait_for_job(at, timeout=180)
    assert not errors(at)
    res = at.session_state["results"]["dna"]
    steer, seqs = res["steer"], [c.sequence for c in res["cands"]]
    assert len(seqs) == 12 and all(s.startswith("ACGT") and len(s) == 44 for s in seqs)
    assert steer["guided"] == pytest.approx([gc_of(s) for s in seqs]) and len(steer["baseline"]) == 12
    assert "valid_guided" not in steer
    # the same draws as the command-line path with the same guidance
    model = load_model(ROOT / "seqdiff" / "pretrained" / "dna.pt")
    ref = infill(model, "ACGT{40}", 12, sampler="ancestral", steps=8, seed=5, batch_size=res["settings"]["batch_size"],
                 guidance=GuidanceSettings(classifier="gc", target="0.6..1.0", guidance=3.0,
                                           classifier_method="first_order"))
    assert sorted(seqs) == sorted(c.sequence for c in ref)
    plain = infill(model, "ACGT{40}", 12, sampler="ancestral", steps=8, seed=5, batch_size=res["settings"]["batch_size"])
    assert sorted(steer["baseline"]) == pytest.approx(sorted(gc_of(c.sequence) for c in plain))
    mg, mb = sum(steer["guided"]) / 12, sum(steer["baseline"]) / 12
    assert mg > mb + 0.05, (mg, mb)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Mean gc, guided"] == f"{mg:.3f}" and shown["Mean gc, baseline"] == f"{mb:.3f}"
    fg = sum(v >= 0.6 for v in steer["guided"]) / 12
    fb = sum(v >= 0.6 for v in steer["baseline"]) / 12
    assert shown["In the target range, guided vs baseline"] == f"{fg:.0%} vs {fb:.0%}"
    assert "Classifier guidance towards gc in 0.6..1.0" in "\n".join(m.value for m in at.markdown)


def test_classifier_guidance_bad_range_starts_no_job(shipped_env):
    at = fresh()
    cg_on(at, "dna", 0.9, 0.5, 2.0, "gc")
    assert "Target range: the lower end (0.9) is above the upper end (0.5)." in errors(at)
    at.button(key="generate").click().run()
    ok(at)
    assert at.session_state["job"] is None
    assert any(e.startswith("Nothing was generated") for e in errors(at))
    assert not at.session_state["results"]


def test_classifier_guidance_qed_shows_rdkit_qed_of_valid_molecules(shipped_env):
    from rdkit import Chem
    from rdkit.Chem import QED
    at = set_domain(fresh(), "smiles")
    at.number_input(key="num_smiles").set_value(6)
    at.number_input(key="steps_smiles").set_value(8)
    at.number_input(key="nt_smiles").set_value(2)
    cg_on(at, "smiles", 0.8, 1.0, 2.0, "qed")
    assert not errors(at)
    at.button(key="generate").click().run()
    ok(at)
    wait_for_job(at, timeout=240)
    assert not errors(at)
    res = at.session_state["results"]["smiles"]
    steer, seqs = res["steer"], [c.sequence for c in res["cands"]]
    mols = [Chem.MolFromSmiles(s) for s in seqs]
    assert steer["guided"] == pytest.approx([QED.qed(m) for m in mols if m is not None])
    assert steer["valid_guided"] == sum(m is not None for m in mols) / 6
    assert 0 <= steer["valid_baseline"] <= 1 and len(steer["baseline"]) == round(steer["valid_baseline"] * 6)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Valid, guided vs baseline"] == f"{steer['valid_guided']:.0%} vs {steer['valid_baseline']:.0%}"
    assert "valid molecules, RDKit" in "\n".join(m.value for m in at.markdown)
