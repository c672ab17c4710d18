"""The Streamlit design app (apps/design.py), driven through every widget path with Streamlit's AppTest.

Tiny models are trained once per session; the app sees them through SEQDIFF_APP_MODELS (the shipped
text model is hidden with ``text=none`` so the "no model" path is exercised whatever is installed).
"""

from __future__ import annotations

import csv
import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqdiff.app import stop_process

torch.set_num_threads(1)

st_testing = pytest.importorskip("streamlit.testing.v1", reason="the app extra (streamlit) is not installed")
pytest.importorskip("logomaker", reason="the app extra (logomaker) is not installed")
AppTest = st_testing.AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "apps" / "design.py")
TIMEOUT = 60

if str(ROOT / "apps") not in sys.path:
    sys.path.insert(0, str(ROOT / "apps"))
C = importlib.import_module("_components")


# ================================================================ fixtures
@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from seqdiff.training.config import load_config
    from seqdiff.training.train import train

    out = {}
    for dom in ("dna", "protein", "smiles"):
        d = tmp_path_factory.mktemp(f"app-{dom}")
        summary = train(load_config(ROOT / "configs" / "tiny" / f"{dom}.yaml", [f"out_dir={d}"]), quiet=True)
        out[dom] = Path(summary["model"])
    return out


@pytest.fixture
def app_env(monkeypatch, tiny_models):
    monkeypatch.setenv(C.MODELS_ENV, ",".join([f"{d}={p}" for d, p in tiny_models.items()] + ["text=none"]))
    monkeypatch.setenv(C.DEVICE_ENV, "cpu")
    return tiny_models


@pytest.fixture
def downloads(monkeypatch):
    """Every payload handed to the media file manager (download buttons), by its URL."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    seen: dict[str, dict] = {}
    original = MediaFileManager.add

    def add(self, data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        url = original(self, data, mimetype, coordinates, file_name=file_name,
                       is_for_static_download=is_for_static_download)
        seen[url] = {"data": data, "mime": mimetype, "file_name": file_name}
        return url

    monkeypatch.setattr(MediaFileManager, "add", add)
    return seen


def fresh() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def html_blocks(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def set_domain(at: AppTest, domain: str) -> AppTest:
    at.sidebar.selectbox(key="domain").set_value(domain).run()
    ok(at)
    return at


def wait_for_job(at: AppTest, timeout: float = 60.0) -> AppTest:
    job = at.session_state["job"]
    assert job is not None
    assert job.wait(timeout), "generation did not finish in time"
    at.run()
    ok(at)
    return at


def generate(at: AppTest, domain: str, *, num: int = 12, steps: int = 8, seed: int = 0,
             template: str | None = None) -> AppTest:
    if template is not None:
        at.text_area(key=f"template_{domain}").input(template)
    at.number_input(key=f"num_{domain}").set_value(num)
    at.number_input(key=f"steps_{domain}").set_value(steps)
    at.number_input(key=f"seed_{domain}").set_value(seed)
    at.button(key="generate").click().run()
    ok(at)
    return wait_for_job(at)


def download_payload(at: AppTest, downloads: dict, key: str) -> dict:
    btn = at.get("download_button")
    match = [b for b in btn if b.proto.id.endswith(key) or key in b.proto.id]
    assert match, [b.proto.id for b in btn]
    return downloads[match[0].proto.url]


# ================================================================ the pure helpers
def test_models_env_parsing(tmp_path):
    assert C.configured_models("") == {}
    got = C.configured_models(f"dna={tmp_path}/a.pt; smiles = {tmp_path}/b.pt,\ntext=none")
    assert got == {"dna": tmp_path / "a.pt", "smiles": tmp_path / "b.pt", "text": None}
    assert C.configured_models('{"protein": "/x/p.pt", "dna": ""}') == {"protein": Path("/x/p.pt"), "dna": None}
    with pytest.raises(ValueError, match="unknown domain 'klingon'"):
        C.configured_models("klingon=/x.pt")
    with pytest.raises(ValueError, match="expected domain=path"):
        C.configured_models("/x.pt")


def test_mark_region_and_window_helpers(tiny_models):
    from seqdiff.model import load_model

    dna = load_model(tiny_models["dna"])
    assert C.mark_region_template("ACGTACGTAC", 3, 6, "dna", dna.tokenizer) == "[N:2]GTAC[N:4]"
    assert C.mark_region_template("ACGTACGTAC", 1, 10, "dna", dna.tokenizer) == "ACGTACGTAC"
    assert C.mark_region_template("ACGTACGTAC", 3, 6, "dna", dna.tokenizer, slack=1) == "[N:1-3]GTAC[N:3-5]"
    with pytest.raises(ValueError, match="1 ≤ start ≤ end ≤ 10"):
        C.mark_region_template("ACGTACGTAC", 7, 3, "dna", dna.tokenizer)
    assert C.clean_pasted(">seq1 promoter\nACGT ACGT\nAC\n", "dna") == "ACGTACGTAC"
    smi = load_model(tiny_models["smiles"])
    # positions count SMILES tokens: Cl is one token
    assert C.region_units("ClCC(=O)O", "smiles", smi.tokenizer)[:2] == ["Cl", "C"]
    assert C.mark_region_template("ClCC(=O)O", 2, 3, "smiles", smi.tokenizer) == "{1}CC{5}"
    assert C.scan_window(300, 1, 300) == (1, C.MAX_SCAN_POSITIONS, C.scan_window(300, 1, 300)[2])
    assert "at most" in C.scan_window(300, 1, 300)[2]
    assert C.scan_window(50, 10, 20) == (10, 20, None)
    groups = C.length_group_logos(["ACGT", "ACGA", "ACG", "TTTTT"], "ACGT")
    assert [(L, note) for L, _, note in groups] == [(4, "the 2 candidates of length 4"),
                                                    (3, "the 1 candidate of length 3"),
                                                    (5, "the 1 candidate of length 5")]
    assert groups[0][1].loc[4, "T"] == pytest.approx(0.5) and groups[2][1].loc[5, "T"] == 1.0


def test_logo_over_mixed_lengths_aligned_by_template(tiny_models):
    """Every candidate counts, whatever its length: columns are template positions, a variable free span
    is left-aligned after the letters before it (right-aligned when it starts the template)."""
    from seqdiff.jobs.generate import Candidate
    from seqdiff.jobs.template import parse_template
    from seqdiff.model import load_model

    dna = load_model(tiny_models["dna"])
    tmpl = parse_template("{1-2}TA{1-3}G", dna.tokenizer, domain="dna")

    def cand(seq, spans):
        fixed = []
        for i, part in enumerate(["span", "TA", "span", "G"]):
            fixed += [False] * spans[i // 2] if part == "span" else [True] * len(part)
        return Candidate(id=seq, sequence=seq, ids=dna.tokenizer.encode(seq), fixed=fixed, span_lengths=spans)

    cands = [cand("CTAAG", [1, 1]), cand("GCTACCCG", [2, 3]), cand("ATAGGG", [1, 2]), cand("GTTAAG", [2, 1])]
    table, fixed, note = C.template_logo_counts(cands, tmpl, "ACGT")
    # columns: [span 2 (right-aligned)] [T A] [span 3 (left-aligned)] [G]
    assert len(table) == 2 + 2 + 3 + 1 and fixed == [(3, 4), (8, 8)]
    assert "All 4 shown candidates" in note and "left-aligned" in note
    expect = {1: {"G": 2}, 2: {"C": 2, "A": 1, "T": 1}, 3: {"T": 4}, 4: {"A": 4},
              5: {"A": 2, "C": 1, "G": 1}, 6: {"C": 1, "G": 1}, 7: {"C": 1}, 8: {"G": 4}}
    for col, counts in expect.items():
        assert table.loc[col].to_dict() == {a: counts.get(a, 0) / 4 for a in "ACGT"}, col
    # a candidate that does not follow the template letter by letter is refused (the app then draws groups)
    with pytest.raises(ValueError, match="do not follow the template"):
        C.template_logo_counts([Candidate("x", "ACTAG", [0, 1, 3, 0, 2], [True] * 5, [2, 1])], tmpl, "ACGT")


def test_generation_matches_infill(tiny_models):
    """The app's step-by-step generation draws exactly what `seqdiff infill` draws for the same seed."""
    from seqdiff.jobs.generate import infill
    from seqdiff.model import load_model

    model = load_model(tiny_models["dna"])
    ticks = []
    ours = C.generate_candidates(model, "TTGACA[N:17]TATAAT[N:5-8]", 10, steps=6, seed=3, batch_size=4,
                                 report=lambda f, m: ticks.append(f))
    ref = infill(model, "TTGACA[N:17]TATAAT[N:5-8]", 10, steps=6, seed=3, batch_size=4, rank=True)
    assert sorted((c.sequence, round(c.bits_per_token, 6)) for c in ours) == \
        sorted((c.sequence, round(c.bits_per_token, 6)) for c in ref)
    assert len(ticks) >= 3 * 6 and ticks == sorted(ticks) and ticks[-1] == 1.0


# ================================================================ the app
def test_opens_with_model_and_live_preview(app_env):
    at = fresh()
    assert at.sidebar.selectbox(key="domain").value == "dna"
    assert at.sidebar.selectbox(key="model_choice_dna").value.startswith("Configured:")
    assert not errors(at)
    page = html_blocks(at)
    assert '<span class="free" title="free positions">27 free</span><span class="fixed">TATAAAA</span>' in page
    # the tiny DNA model saw 64-base windows: the example core promoter is padded in front to fill one
    assert at.text_area(key="template_dna").value == "[N:27]TATAAAA[N:30]"
    assert any("Output length 64" in c.value for c in at.caption)
    assert any("windows of exactly 64 positions" in c.value for c in at.caption)
    # edit the template: the preview follows
    at.text_area(key="template_dna").input("GGG{4}CC").run()
    ok(at)
    assert '<span class="fixed">GGG</span>' in html_blocks(at)
    assert any("fixed at positions 1–3, 8–9" in c.value for c in at.caption)
    assert not at.button(key="generate").disabled


def test_domain_switch_and_missing_model(app_env, monkeypatch):
    at = fresh()
    set_domain(at, "smiles")
    assert at.text_area(key="template_smiles").value == C.DEFAULT_TEMPLATES["smiles"]
    assert '<span class="fixed">c1ccccc1</span>' in html_blocks(at)
    set_domain(at, "protein")
    assert '<span class="fixed">GPSGSGKST</span>' in html_blocks(at)
    # text: the shipped model is hidden by the test environment; the app says what to do
    set_domain(at, "text")
    assert not errors(at)
    assert any("No shipped text model" in w.value for w in at.sidebar.warning)
    assert any("Enter the path of a model file" in i.value for i in at.info)
    # a fresh installation without shipped models and without configuration: a clear warning
    import seqdiff.pretrained

    monkeypatch.delenv(C.MODELS_ENV)
    monkeypatch.setattr(seqdiff.pretrained, "available", lambda: {})
    at = fresh()
    warn = " ".join(w.value for w in at.sidebar.warning)
    assert "The shipped dna model is not in this installation" in warn
    assert "configs/pretrained/dna.yaml" in warn


def test_shipped_model_listed_and_loaded(app_env, monkeypatch):
    """A shipped model is offered (after a configured one) and loads; stand-in: the tiny DNA model."""
    import seqdiff.pretrained

    monkeypatch.setattr(seqdiff.pretrained, "available", lambda: {"dna": app_env["dna"]})
    at = fresh()
    sel = at.sidebar.selectbox(key="model_choice_dna")
    assert sel.options[:2] == [f"Configured: {app_env['dna']}", "Shipped dna model (model.pt)"]
    assert not at.sidebar.warning
    sel.set_value("Shipped dna model (model.pt)").run()
    ok(at)
    assert not errors(at) and any("tiny-dna" in c.value for c in at.sidebar.caption)
    monkeypatch.delenv(C.MODELS_ENV)
    at = fresh()
    assert at.sidebar.selectbox(key="model_choice_dna").value == "Shipped dna model (model.pt)"


def test_shipped_model_when_present(app_env):
    from seqdiff.pretrained import available

    shipped = available()
    if not shipped:
        pytest.skip("no shipped model in this installation yet")
    domain = next(d for d in ("dna", "smiles", "protein") if d in shipped) if \
        any(d in shipped for d in ("dna", "smiles", "protein")) else None
    if domain is None:
        pytest.skip("only the shipped text model is present, which this environment hides")
    at = fresh()
    set_domain(at, domain)
    sel = at.sidebar.selectbox(key=f"model_choice_{domain}")
    sel.set_value(next(o for o in sel.options if o.startswith("Shipped"))).run()
    ok(at)
    assert not errors(at)
    assert any(f"pretrained-{domain}" in c.value for c in at.sidebar.caption)


def test_model_path_and_bad_files(app_env, tmp_path):
    at = fresh()
    at.sidebar.selectbox(key="model_choice_dna").set_value("A model file on this computer (path)").run()
    ok(at)
    assert any("Enter the path" in i.value for i in at.info)
    at.sidebar.text_input(key="model_path_dna").input(str(app_env["dna"])).run()
    ok(at)
    assert not errors(at) and any("tiny-dna" in c.value for c in at.sidebar.caption)
    # a file that is not a model, a missing file, a folder, another kind of file (that exists), a file
    # that would run code: all get the same message, which says nothing about the server's files
    junk = tmp_path / "notes.pt"
    junk.write_text("these are not weights\n")
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "marker"
    _hostile_model(evil, marker)
    (tmp_path / "folder.pt").mkdir()
    seen = set()
    for path in (junk, tmp_path / "missing.pt", tmp_path / "folder.pt", ROOT / "pyproject.toml", Path("/etc/passwd"),
                 tmp_path / "nothing.toml", evil):
        at.sidebar.text_input(key="model_path_dna").input(str(path)).run()
        ok(at)
        seen.update(e for e in errors(at))
    assert seen == {design_constant("PATH_REFUSED")}
    assert not marker.exists()
    # a model of another domain
    at.sidebar.text_input(key="model_path_dna").input(str(app_env["smiles"])).run()
    ok(at)
    assert any("is a smiles model, not a dna model" in e for e in errors(at))


def _hostile_model(path: Path, marker: Path) -> None:
    """A model-shaped .pt whose pickle would create ``marker`` when unpickled without restrictions."""
    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "seqdiff-model", "version": 1, "config": {}, "tokenizer": {}, "payload": Payload()}, path)


def design_constant(name: str):
    """A module-level constant of apps/design.py (read from its source: importing it runs the app)."""
    import ast
    tree = ast.parse(Path(APP).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def test_upload_model_and_bad_upload(app_env, tmp_path, monkeypatch):
    uploads = tmp_path / "uploads"
    uploads.mkdir(mode=0o700)
    monkeypatch.setenv("SEQDIFF_APP_UPLOADS", str(uploads))
    at = fresh()
    at.sidebar.selectbox(key="model_choice_dna").set_value("Upload a model file").run()
    ok(at)
    assert any("Upload a model file" in i.value for i in at.info)
    at.sidebar.file_uploader(key="model_upload_dna").upload("weights.pt", b"\x00garbage" * 100).run()
    ok(at)
    assert any("not a seqdiff model or checkpoint" in e for e in errors(at))
    assert not any(str(uploads) in e for e in errors(at))  # the server's folder is not shown
    # a hostile upload is refused, says so, runs nothing, and is not kept
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    _hostile_model(evil, marker)
    at.sidebar.file_uploader(key="model_upload_dna").set_value(
        ("evil.pt", evil.read_bytes(), "application/octet-stream")).run()
    ok(at)
    assert any("Refused evil.pt" in e and "posix.system" in e and "Nothing in it was run" in e for e in errors(at))
    assert not marker.exists()
    at.sidebar.file_uploader(key="model_upload_dna").set_value(
        ("model.pt", app_env["dna"].read_bytes(), "application/octet-stream")).run()
    ok(at)
    assert not errors(at) and any("tiny-dna" in c.value for c in at.sidebar.caption)
    kept = [p for p in uploads.iterdir()]
    assert len(kept) == 2 and all(p.stat().st_mode & 0o077 == 0 for p in kept)  # junk + model, private


def test_uploads_go_to_a_private_folder_removed_at_exit(tmp_path):
    """Without the launcher's folder, the app makes its own (0700) and removes it when the server exits."""
    script = tmp_path / "run.py"
    script.write_text(f"""
import os, sys
from streamlit.testing.v1 import AppTest
os.environ.pop("SEQDIFF_APP_UPLOADS", None)
os.environ["SEQDIFF_APP_MODELS"] = "dna={ROOT / 'seqdiff' / 'pretrained' / 'dna.pt'}"
os.environ["SEQDIFF_APP_DEVICE"] = "cpu"
at = AppTest.from_file({str(APP)!r}, default_timeout=60).run()
at.sidebar.selectbox(key="model_choice_dna").set_value("Upload a model file").run()
at.sidebar.file_uploader(key="model_upload_dna").upload("w.pt", b"junk").run()
import glob, tempfile
found = glob.glob(os.path.join(tempfile.gettempdir(), "seqdiff-app-uploads-*"))
mine = [f for f in found if os.listdir(f)]
print("FOLDER", mine[0], oct(os.stat(mine[0]).st_mode & 0o777), flush=True)
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    line = [x for x in r.stdout.splitlines() if x.startswith("FOLDER")]
    assert line, r.stderr[-2000:]
    _, folder, mode = line[0].split()
    assert mode == "0o700"
    assert not Path(folder).exists()  # removed at exit


@pytest.mark.parametrize("template, message", [
    ("TTGAXA{3}", "template character 5: invalid character 'X' for DNA"),
    ("TTGACA{17", "template character 7: unclosed '{'"),
    ("TTGACA{3-x}", "span length must be a whole number"),
    ("A" * 80, "template needs at least 80 positions; the model allows 64"),
    ("ACGT{70-90}", "template needs at least 74 positions; the model allows 64"),
    ("   ", "The template is empty"),
])
def test_bad_templates_show_errors(app_env, template, message):
    at = fresh()
    at.text_area(key="template_dna").input(template).run()
    ok(at)
    assert any(message in e for e in errors(at)), errors(at)
    assert at.button(key="generate").disabled


def test_mark_region_helper(app_env):
    at = fresh()
    at.text_area(key="region_seq_dna").input(">my promoter\nAAAATTGACAGGGG\nCCCC").run()
    ok(at)
    at.number_input(key="region_start_dna").set_value(5)
    at.number_input(key="region_end_dna").set_value(10).run()
    ok(at)
    assert any(c.value == "[N:4]TTGACA[N:8]" for c in at.code)
    at.button(key="region_apply_dna").click().run()
    ok(at)
    assert at.text_area(key="template_dna").value == "[N:4]TTGACA[N:8]"
    assert '<span class="fixed">TTGACA</span>' in html_blocks(at)
    # the slider, with flanks that may vary
    at.radio(key="region_mode_dna").set_value("a slider").run()
    at.slider(key="region_slider_dna").set_range(1, 4)
    at.number_input(key="region_slack_dna").set_value(2).run()
    ok(at)
    at.button(key="region_apply_dna").click().run()
    assert at.text_area(key="template_dna").value == "AAAA[N:12-16]"  # no flank before position 1
    # a letter the model does not know
    at.text_area(key="region_seq_dna").input("ACGTJJ").run()
    ok(at)
    assert any("cannot be read" in e and "'J'" in e for e in errors(at))


def test_generate_sort_filter_download(app_env, downloads):
    at = generate(fresh(), "dna", num=12, steps=8, template="[N:27]TTGACA[N:17]TATAAT[N:5-8]")
    assert at.session_state["run_status"]["dna"][0] == "done"
    assert any("Generated 12 candidates" in s.value for s in at.success)
    assert any("model tiny-dna (model.pt) · ancestral sampler, 8 steps · seed 0" in c.value for c in at.caption)
    df = at.dataframe[0].value
    assert len(df) == 12 and list(df["bits_per_token"]) == sorted(df["bits_per_token"])
    assert all(s[27:33] == "TTGACA" and s[50:56] == "TATAAT" and 61 <= len(s) <= 64 for s in df["sequence"])
    block = next(m.value for m in at.markdown if m.value.startswith('<div id="sd-candidates">'))
    assert block.count('<span class="fixed">TTGACA</span>') == 12 and 'class="generated"' in block
    assert block.count('<span class="fixed">TATAAT</span>') == 12
    assert at.get("image"), "the sequence logo is missing"
    assert any("most common length" in c.value or "All 12" in c.value for c in at.caption)
    assert any("JASPAR" in m.value for m in at.markdown)
    # downloads: FASTA and CSV of the shown table
    fa = download_payload(at, downloads, "dl_seq_dna")
    assert fa["file_name"] == "seqdiff_dna_candidates.fa"
    text = fa["data"].decode()
    assert text.count(">") == 12 and f">{df['id'][0]} " in text and df["sequence"][0] in text
    rows = list(csv.DictReader(io.StringIO(download_payload(at, downloads, "dl_csv_dna")["data"].decode())))
    assert [r["id"] for r in rows] == list(df["id"]) and "bits_per_token" in rows[0] and "gc" in rows[0]
    # sort by length, longest first
    at.selectbox(key="sort_dna").set_value("length")
    at.checkbox(key="desc_dna").check().run()
    ok(at)
    lengths = list(at.dataframe[0].value["length"])
    assert lengths == sorted(lengths, reverse=True)
    # filter: max bits per token, then a pattern
    cut = float(sorted(df["bits_per_token"])[5])
    at.number_input(key="maxbits_dna").set_value(cut).run()
    ok(at)
    shown = at.dataframe[0].value
    assert 1 <= len(shown) <= 6 and (shown["bits_per_token"] <= cut).all()
    assert download_payload(at, downloads, "dl_seq_dna")["data"].decode().count(">") == len(shown)
    at.number_input(key="maxbits_dna").set_value(None)
    at.text_input(key="pattern_dna").input("TATAAT[ACGT]{5}$").run()
    ok(at)
    shown = at.dataframe[0].value
    assert len(shown) == sum(len(s) == 61 for s in df["sequence"]) >= 1
    assert all(len(s) == 61 for s in shown["sequence"])
    at.text_input(key="pattern_dna").input("TATA(").run()
    ok(at)
    assert any("not a valid regular expression" in e for e in errors(at))


def test_smiles_generation_validity_and_grid(app_env, downloads):
    at = set_domain(fresh(), "smiles")
    at = generate(at, "smiles", num=16, steps=8)
    df = at.dataframe[0].value
    assert "valid" in df and all(s.startswith("c1ccccc1") and s.endswith("C(=O)O") for s in df["sequence"])
    assert any(m.label == "Valid molecules" for m in at.get("metric"))
    n_valid = int(df["valid"].sum())
    at.checkbox(key="validonly_smiles").check().run()
    ok(at)
    assert len(at.dataframe[0].value) == n_valid
    assert any(f"Showing {n_valid} of 16" in c.value for c in at.caption)
    if n_valid:
        assert at.get("image"), "the molecule grid is missing"
    smi = download_payload(at, downloads, "dl_seq_smiles")
    assert smi["file_name"].endswith(".smi")
    lines = smi["data"].decode().splitlines()
    assert len(lines) == n_valid and all("\t" in ln for ln in lines)


def test_generation_error_is_shown(app_env):
    at = fresh()
    # only samplers that can run the model are offered; an impossible ReMDM loop fails in the job
    assert "multinomial" not in at.selectbox(key="sampler_dna").options
    at.selectbox(key="sampler_dna").set_value("remdm").run()
    at.selectbox(key="opt_remask_remdm_dna").set_value("loop")
    at.number_input(key="opt_t_on_remdm_dna").set_value(0.1)
    at.number_input(key="opt_t_off_remdm_dna").set_value(0.5)
    at = generate(at, "dna", num=2, steps=2)
    assert at.session_state["run_status"]["dna"][0] == "error"
    assert any(e.startswith("Generation failed:") for e in errors(at))


def test_cancel_generation(app_env):
    at = fresh()
    at.number_input(key="num_dna").set_value(64)
    at.number_input(key="steps_dna").set_value(10000)
    at.button(key="generate").click().run()
    ok(at)
    job = at.session_state["job"]
    deadline = time.time() + 30
    while job.fraction == 0 and time.time() < deadline:  # wait for the first sampler step
        time.sleep(0.05)
    at.run()
    ok(at)
    assert job.running and at.get("progress")
    at.button(key="cancel_job").click().run()
    ok(at)
    assert job.wait(30)
    at.run()
    ok(at)
    assert job.state == "cancelled" and job.fraction < 0.5
    assert at.session_state["run_status"]["dna"][0] == "cancelled"
    assert any("Generation cancelled" in w.value for w in at.warning)
    assert "dna" not in at.session_state["results"]
    assert not at.button(key="generate").disabled


def test_variant_scoring_and_heatmap(app_env, downloads):
    at = set_domain(fresh(), "protein")
    wt = at.text_area(key="wt_protein").value
    assert wt == C.DEFAULT_WILD_TYPES["protein"][:64]
    at.text_area(key="mutations_protein").input("I3A\nK6R\n# a comment\nL8A:K11R\nWT").run()
    at.button(key="score_protein").click().run()
    ok(at)
    assert not errors(at)
    view = at.dataframe[0].value
    assert set(view["mutant"]) == {"I3A", "K6R", "L8A:K11R", "WT"}
    assert float(view.set_index("mutant").loc["WT", "score"]) == 0.0
    assert list(view["score"]) == sorted(view["score"], reverse=True)
    assert at.get("vega_lite_chart"), "the heatmap is missing"
    at.selectbox(key="var_order_protein").set_value("as entered").run()
    assert list(at.dataframe[0].value["mutant"]) == ["I3A", "K6R", "L8A:K11R", "WT"]
    # a CSV upload
    at.file_uploader(key="variant_csv_protein").upload("dms.csv", b"mutant,fitness\nQ2A,0.1\nT7S,-1\n", "text/csv")
    at.button(key="score_protein").click().run()
    ok(at)
    assert set(at.dataframe[0].value["mutant"]) == {"Q2A", "T7S"}
    at.file_uploader(key="variant_csv_protein").set_value(None)
    # scan all single mutants in a window
    at.number_input(key="scan_start_protein").set_value(3)
    at.number_input(key="scan_end_protein").set_value(7)
    at.button(key="scan_protein").click().run()
    ok(at)
    view = at.dataframe[0].value
    assert len(view) == 5 * 19 and set(view["mutant"].str[1:-1].astype(int)) == {3, 4, 5, 6, 7}
    assert at.get("vega_lite_chart")
    data = download_payload(at, downloads, "dl_var_protein")["data"].decode()
    assert data.startswith("mutant,num_mutations,score") and len(data.splitlines()) == 96


@pytest.mark.parametrize("mutations, wild_type, message", [
    ("Q3A", None, "the wild type has 'I' at position 3, not 'Q'"),
    ("I3", None, "malformed substitution 'I3'"),
    ("I300A", None, "position 300 is outside the 64-residue wild type"),
    ("I3A", "MQJFV", "Wild type:"),
    ("I3A", "M" * 70, "The wild type has 70 positions; this model allows at most 64"),
])
def test_bad_variants_show_errors(app_env, mutations, wild_type, message):
    at = set_domain(fresh(), "protein")
    if wild_type is not None:
        at.text_area(key="wt_protein").input(wild_type).run()
        ok(at)
    if "score_protein" in [b.key for b in at.button]:
        at.text_area(key="mutations_protein").input(mutations)
        at.button(key="score_protein").click().run()
        ok(at)
    assert any(message in e for e in errors(at)), errors(at)


def test_variant_tab_other_domains(app_env):
    at = set_domain(fresh(), "smiles")
    assert any("Variant scoring is for DNA and protein" in i.value for i in at.info)


def test_dna_variants_and_cli_dry_run(app_env, capsys):
    at = fresh()
    at.button(key="score_dna").click().run()
    ok(at)
    assert not errors(at) and len(at.dataframe[0].value) >= 2
    from seqdiff.cli import main

    assert main(["app", "--dry-run", "--port", "8999", "--headless", "--model", f"dna={app_env['dna']}",
                 "--model", "text=none"]) == 0
    out = capsys.readouterr().out
    assert "streamlit run" in out and str(Path(APP)) in out and "--server.port 8999" in out
    assert "--server.address 127.0.0.1" in out  # this computer only, unless --address says otherwise
    assert f"dna={app_env['dna'].resolve()}" in out and "text=none" in out
    assert main(["app", "--dry-run", "--model", "rna=x.pt"]) == 2


# ================================================================ the served app: network, signals, sessions
def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":  # LISTEN
                out.append(addr)
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


@pytest.mark.timeout(180)
def test_launcher_serves_loopback_only_and_forwards_sigterm(tmp_path):
    import signal
    import socket
    import urllib.request

    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs /proc/net/tcp to see the listening socket")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", C.DEVICE_ENV: "cpu"}
    log = open(tmp_path / "app.log", "w")
    launcher = subprocess.Popen([sys.executable, "-m", "seqdiff.cli", "app", "--headless", "--port", str(port)],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            assert launcher.poll() is None, (tmp_path / "app.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("the app did not come up:\n" + (tmp_path / "app.log").read_text()[-2000:])
        addrs = _listening(port)
        assert addrs and set(addrs) <= {"0100007F", "00000000000000000000000001000000"}, addrs  # 127.0.0.1, ::1
        server = _children(launcher.pid)
        assert len(server) == 1
        environ = dict(x.split("=", 1) for x in Path(f"/proc/{server[0]}/environ").read_text().split("\0") if "=" in x)
        uploads = environ["SEQDIFF_APP_UPLOADS"]
        assert Path(uploads).is_dir() and Path(uploads).stat().st_mode & 0o777 == 0o700
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(30) == 0
        assert not Path(f"/proc/{server[0]}").exists()  # the server stopped with it: no orphan
        assert not Path(uploads).exists()  # the private upload folder is gone
        assert not _listening(port)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        log.close()


def test_a_generation_stops_when_its_session_ends():
    """The job's ``alive`` check (the browser session is connected) cancels it after the grace period."""
    state = {"alive": True, "steps": 0}

    def work(job):
        for i in range(1000):
            job.report(i / 1000, f"step {i}")
            state["steps"] += 1
            time.sleep(0.002)
        return "finished"

    job = C.GenerationJob(domain="dna", settings={}, alive=lambda: state["alive"], grace=0.2).start(work)
    time.sleep(0.3)
    assert job.running and state["steps"] > 10
    state["alive"] = False  # the tab is closed
    assert job.wait(5.0)
    assert job.state == "cancelled" and job.cancel_reason == "the browser session ended"
    assert state["steps"] < 1000
    # a short disconnection (shorter than the grace period) does not cancel
    state.update(alive=True, steps=0)
    job = C.GenerationJob(domain="dna", settings={}, alive=lambda: state["alive"], grace=30.0).start(work)
    time.sleep(0.1)
    state["alive"] = False
    time.sleep(0.2)
    state["alive"] = True
    assert job.wait(60.0) and job.state == "done" and job.result == "finished"
    # outside a served app there is no session to watch
    assert C.session_alive_check() is None


@pytest.mark.timeout(150)
def test_closing_the_browser_session_cancels_its_generation(tmp_path):
    """The real app on a real Streamlit server, driven over the browser's own protocol (a websocket of
    protobuf messages): open the page, press Generate with many steps, close the connection (the tab).
    The session ends and its generation is cancelled."""
    import asyncio
    import socket
    import urllib.request

    websockets = pytest.importorskip("websockets.asyncio.client")
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", C.DEVICE_ENV: "cpu"}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                                   "--server.port", str(port), "--server.address", "127.0.0.1",
                                   "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                                  env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            assert server.poll() is None and time.time() < deadline, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)

        def rerun(page: str = "", widgets=()) -> bytes:
            msg = BackMsg()
            msg.rerun_script.query_string = ""
            msg.rerun_script.page_script_hash = page
            for wid, field, value in widgets:
                w = msg.rerun_script.widget_states.widgets.add()
                w.id = wid
                setattr(w, field, value)
            return msg.SerializeToString()

        async def visit() -> None:
            url = f"ws://127.0.0.1:{port}/_stcore/stream"
            async with websockets.connect(url, subprotocols=["streamlit"], max_size=None) as ws:
                await ws.send(rerun())  # the page opens
                ids, page, finished = {}, "", False
                end = time.time() + 60
                while not finished and time.time() < end:
                    fm = ForwardMsg()
                    fm.ParseFromString(await asyncio.wait_for(ws.recv(), 30))
                    kind = fm.WhichOneof("type")
                    if kind == "new_session":
                        page = fm.new_session.page_script_hash
                    elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                        el = fm.delta.new_element
                        widget = getattr(el, el.WhichOneof("type"))
                        if hasattr(widget, "label") and hasattr(widget, "id"):
                            ids[widget.label] = widget.id
                    finished = kind == "script_finished"
                assert "Generate" in ids and "Steps" in ids, sorted(ids)
                # many sampler steps, then Generate: a run that takes far longer than this visit
                await ws.send(rerun(page, [(ids["Steps"], "int_value", 10000), (ids["Generate"], "trigger_value", True)]))
                end = time.time() + 4
                while time.time() < end:
                    try:
                        await asyncio.wait_for(ws.recv(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                assert "cancelled" not in log_path.read_text()  # still running while the tab is open
            # the tab is closed here

        asyncio.run(visit())
        deadline = time.time() + 30
        while "generation cancelled" not in log_path.read_text() and time.time() < deadline:
            time.sleep(0.2)
        assert "dna generation cancelled: the browser session ended" in log_path.read_text(), log_path.read_text()
    finally:
        stop_process(server, 15)


# ================================================================ streaming, persistence, plots that fit
def test_candidates_stream_batch_by_batch(tiny_models):
    """Each batch reaches ``on_batch`` as soon as it is sampled (no ELBO yet), then again once scored;
    the streamed candidates are exactly the final ones, in generation order."""
    from seqdiff.jobs.generate import infill
    from seqdiff.model import load_model

    model = load_model(tiny_models["dna"])
    seen = []
    ours = C.generate_candidates(model, "TTGACA[N:10]", 10, steps=4, seed=1, batch_size=4,
                                 on_batch=lambda cs, scored: seen.append(
                                     (scored, [c.id for c in cs], [c.bits_per_token for c in cs], cs)))
    assert [(sc, len(ids)) for sc, ids, _, _ in seen] == [(False, 4), (True, 4), (False, 4), (True, 4),
                                                          (False, 2), (True, 2)]
    assert all(b is None for sc, _, bits, _ in seen if not sc for b in bits)  # streamed before scoring
    assert all(b is not None for sc, _, bits, _ in seen if sc for b in bits)
    assert [i for sc, ids, _, _ in seen if not sc for i in ids] == [c.id for c in ours]
    scored_objects = [c for sc, _, _, cs in seen if sc for c in cs]  # the same objects, ELBO filled in
    assert len(scored_objects) == 10 and all(a is b for a, b in zip(scored_objects, ours))
    ref = infill(model, "TTGACA[N:10]", 10, steps=4, seed=1, batch_size=4, score=True)
    assert [(c.sequence, c.bits_per_token) for c in ours] == [(c.sequence, c.bits_per_token) for c in ref]
    # the job keeps what has arrived, and estimates the time left from the progress so far
    job = C.GenerationJob(domain="dna", settings={"num": 10})
    assert job.eta() is None and job.snapshot() == ([], 0)
    job.add_batch(ours[:4], False)
    assert job.snapshot() == (ours[:4], 0) and job.first_after is not None
    job.add_batch(ours[:4], True)
    job.started -= 10.0
    job.report(0.25, "batch 1/3")
    assert job.snapshot()[1] == 4 and job.eta() == pytest.approx(30.0, rel=0.01)
    assert "about 30 s left" in C.progress_text(job) and "4 of 10 candidates so far" in C.progress_text(job)
    assert C.format_seconds(75) == "1 min 15 s"


def test_streaming_table_shows_first_batch_while_running(app_env, monkeypatch):
    """While a generation runs, the candidates of its finished batches are on the page (with their ELBO
    once scored), with the progress and the time left."""
    import threading

    release = threading.Event()
    real = C.generate_candidates

    def held(*args, on_batch=None, **kw):
        def hook(cs, scored):
            on_batch(cs, scored)
            if scored and not release.is_set():
                release.wait(30)  # hold the run after its first scored batch
        return real(*args, on_batch=hook, **kw)

    monkeypatch.setattr(C, "generate_candidates", held)
    at = fresh()
    at.number_input(key="num_dna").set_value(8)
    at.number_input(key="batch_dna").set_value(3)
    at.number_input(key="steps_dna").set_value(4)
    at.button(key="generate").click().run()
    ok(at)
    job = at.session_state["job"]
    try:
        deadline = time.time() + 30
        while job.snapshot()[1] < 3 and time.time() < deadline:
            time.sleep(0.05)
        at.run()
        ok(at)
        assert any("3 of 8 candidates so far" in m.value for m in at.markdown)
        table = at.dataframe[0].value
        assert list(table["id"]) == ["infill_1", "infill_2", "infill_3"] and table["bits_per_token"].notna().all()
        assert "left" in at.get("progress")[0].proto.text
        assert not at.get("download_button")  # the full results come when the run is complete
    finally:
        release.set()
    wait_for_job(at)
    assert len(at.dataframe[0].value) == 8
    assert any("Generated 8 candidates" in s.value and "first candidates after" in s.value for s in at.success)


def test_settings_kept_across_domain_switches(app_env):
    at = fresh()
    at.text_area(key="template_dna").input("[N:20]TATAAAA[N:10]")
    at.number_input(key="num_dna").set_value(7)
    at.number_input(key="steps_dna").set_value(5)
    at.number_input(key="seed_dna").set_value(42)
    at.number_input(key="batch_dna").set_value(2)
    at.selectbox(key="sampler_dna").set_value("remdm").run()
    ok(at)
    set_domain(at, "smiles")
    assert at.number_input(key="num_smiles").value == C.design_defaults("smiles")["num"]
    at.number_input(key="num_smiles").set_value(3).run()
    set_domain(at, "protein")
    set_domain(at, "dna")
    assert at.text_area(key="template_dna").value == "[N:20]TATAAAA[N:10]"
    assert (at.number_input(key="num_dna").value, at.number_input(key="steps_dna").value,
            at.number_input(key="seed_dna").value, at.number_input(key="batch_dna").value) == (7, 5, 42, 2)
    assert at.selectbox(key="sampler_dna").value == "remdm"
    set_domain(at, "smiles")
    assert at.number_input(key="num_smiles").value == 3
    assert not at.warning, [w.value for w in at.warning]


def test_banners_follow_the_template_and_full_model_names(app_env):
    at = generate(fresh(), "dna", num=4, steps=4)
    assert any("Generated 4 candidates" in s.value for s in at.success)
    at.text_area(key="template_dna").input("TTGACA{17").run()  # a new, broken template: only its error
    ok(at)
    assert any("Template error" in e for e in errors(at)) and not at.success
    at.text_area(key="template_dna").input("[N:20]TATAAAA[N:10]").run()  # a new valid one: no old banner
    ok(at)
    assert not at.success and any("These candidates are from the template" in c.value for c in at.caption)
    # the model menu's full names are in its tooltip and under it
    sel = at.sidebar.selectbox(key="model_choice_dna")
    assert f"Configured: {app_env['dna']}" in sel.help
    assert any(f"Configured: {app_env['dna']}" in m.value for m in at.sidebar.caption)


def _scan_frame(length: int, seed: int = 0):
    import random

    import pandas as pd

    rng = random.Random(seed)
    alpha = C.SCAN_ALPHABETS["protein"]
    wt = "".join(rng.choice(alpha) for _ in range(length))
    rows = [{"position": p, "wt": wt[p - 1], "mt": m, "mutant": f"{wt[p - 1]}{p}{m}", "score": rng.gauss(0, 1)}
            for p in range(1, length + 1) for m in alpha if m != wt[p - 1]]
    return pd.DataFrame(rows), wt


@pytest.mark.parametrize("length", [76, 300])
def test_heatmap_fits_any_length(length):
    """Rows of at most HEATMAP_WRAP positions cover every position once; one shared colour legend
    symmetric around 0; every cell's score on hover; PNG and SVG of the same plot."""
    long, wt = _scan_frame(length)
    spec = C.heatmap_chart(long, C.SCAN_ALPHABETS["protein"], wt).to_dict()
    rows = spec["vconcat"]
    assert len(rows) == -(-length // C.HEATMAP_WRAP)
    covered = []
    for row in rows:
        cells = row["layer"][0]
        enc = cells["encoding"]
        block = enc["x"]["sort"]
        assert len(block) <= C.HEATMAP_WRAP and row["width"] == 14 * len(block) <= 14 * C.HEATMAP_WRAP
        covered += block
        assert enc["color"]["scale"]["domain"] == [-max(abs(long["score"])), max(abs(long["score"]))]
        assert {"mutant", "score"} <= {t["field"] for t in enc["tooltip"]}
    assert covered == list(range(1, length + 1))
    assert spec["resolve"]["scale"]["color"] == "shared"
    png = C.figure_bytes(C.heatmap_figure(long, C.SCAN_ALPHABETS["protein"], wt), "png")
    svg = C.figure_bytes(C.heatmap_figure(long, C.SCAN_ALPHABETS["protein"], wt), "svg")
    assert png.startswith(b"\x89PNG") and b"<svg" in svg[:500] and b"score (nats)" in svg


def test_heatmap_of_a_76_residue_scan_in_the_app(app_env, downloads, monkeypatch):
    """Ubiquitin (76 residues) scanned whole with the shipped protein model: two heatmap rows, and the
    PNG / SVG downloads."""
    from seqdiff.pretrained import available

    if "protein" not in available():
        pytest.skip("no shipped protein model in this installation")
    monkeypatch.setenv(C.MODELS_ENV, "text=none")
    at = set_domain(fresh(), "protein")
    assert len(at.text_area(key="wt_protein").value) == 76
    at.number_input(key="scan_end_protein").set_value(76)
    at.button(key="scan_protein").click().run()
    ok(at)
    assert len(at.dataframe[0].value) == 76 * 19
    assert any("76 positions, wrapped in rows of at most 50" in c.value for c in at.caption)
    assert at.get("vega_lite_chart")
    png = download_payload(at, downloads, "dl_heatmap_protein_png")
    svg = download_payload(at, downloads, "dl_heatmap_protein_svg")
    assert png["data"].startswith(b"\x89PNG") and png["file_name"].endswith(".png")
    assert b"<svg" in svg["data"][:500] and svg["mime"] == "image/svg+xml"


def test_logo_and_grid_downloads(app_env, downloads):
    at = generate(set_domain(fresh(), "protein"), "protein", num=6, steps=4)
    assert any("All 6 shown candidates, aligned by template position" in c.value for c in at.caption)
    assert download_payload(at, downloads, "dl_logo_aligned_protein_png")["data"].startswith(b"\x89PNG")
    assert b"<svg" in download_payload(at, downloads, "dl_logo_aligned_protein_svg")["data"][:500]


def test_repair_option_only_where_the_domain_has_a_syntax_check(app_env):
    """The confidence sampler's `repair` needs the domain's syntax check: offered for SMILES (and
    used by a run), not for DNA; the polish temperature is left to the CLI and recipes."""
    at = fresh()
    at.selectbox(key="sampler_dna").set_value("confidence").run()
    ok(at)
    keys = {w.key for w in at.checkbox} | {w.key for w in at.number_input}
    assert "opt_polish_confidence_dna" in keys and "opt_repair_confidence_dna" not in keys
    assert not any(k.startswith("opt_polish_temperature") for k in keys)
    at = set_domain(at, "smiles")
    at.selectbox(key="sampler_smiles").set_value("confidence").run()
    at.number_input(key="opt_polish_confidence_smiles").set_value(0.25)
    at.checkbox(key="opt_repair_confidence_smiles").check()
    at = generate(at, "smiles", num=4, steps=8)
    assert at.session_state["run_status"]["smiles"][0] == "done"
    assert at.session_state["results"]["smiles"]["settings"]["sampler_options"].get("repair") is True
