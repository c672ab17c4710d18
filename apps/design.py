"""seqdiff design app: infill templates with a discrete-diffusion model, inspect, rank and download the
candidates, and score variants of a wild type.

    streamlit run apps/design.py          # or: seqdiff app

It opens on the shipped default model of each domain (``seqdiff/pretrained/<domain>.pt``). Other
models: a path or an upload in the sidebar, or the environment variable ``SEQDIFF_APP_MODELS``
(``dna=/path/to/model.pt,smiles=/path/to/other.pt``; ``text=none`` hides a shipped model);
``SEQDIFF_APP_DEVICE`` picks the device (``auto`` by default).

Model files are opened without running anything in them (a file that would import code is refused).
Uploads are kept in a private folder (``SEQDIFF_APP_UPLOADS``, made by ``seqdiff app``; otherwise one
made here), removed when the server stops. The path box opens model files (``.pt``, ``.pth``, ``.ckpt``)
only, and answers every other path with the same message, whether it exists or not. A generation stops
when its browser session ends (the tab is closed).
"""

from __future__ import annotations

import atexit
import hashlib
import html
import io
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (_HERE, _HERE.parent):  # the helpers beside this file; seqdiff from a source checkout
    if str(_p) not in sys.path:
        sys.path.insert(0 if _p == _HERE else len(sys.path), str(_p))

import streamlit as st  # noqa: E402

import _components as C  # noqa: E402
import _guidance as G  # noqa: E402
from seqdiff.domains import get_domain  # noqa: E402

st.set_page_config(page_title="seqdiff design", page_icon="🧬", layout="wide")

ss = st.session_state
ss.setdefault("job", None)
ss.setdefault("results", {})
ss.setdefault("run_status", {})
ss.setdefault("variants", {})
ss.setdefault("kept", {})


def kept(key: str, default):
    """The key of a widget whose value survives while the widget is not on the page (Streamlit drops
    the state of widgets it does not draw, e.g. another domain's settings): the value last seen, or
    ``default`` the first time. Create the widget with this key and without a ``value``/``index``."""
    if key not in ss:
        ss[key] = ss["kept"].get(key, default)
    return key


def remember(*keys: str) -> None:
    for key in keys:
        if key in ss:
            ss["kept"][key] = ss[key]

TEMPLATE_HELP = r"""
| syntax | meaning |
|---|---|
| letters | fixed: they appear verbatim in every candidate (SMILES tokens such as `Cl`, `[nH]` count as one position) |
| `?` | one free position |
| `{k}` | `k` free positions |
| `{a-b}` | a free span whose length is drawn per candidate between `a` and `b` |
| `[N:17]`, `[N:5-8]`, `[:4]` | DNA, protein, text: the same as `{17}`, `{5-8}`, `{4}` (in SMILES `[...]` is a bracket atom) |
| `\?` `\{` `\[` `\\` | DNA, protein, text: a literal `?`, `{`, `[` or `\` |

Whitespace between DNA or protein letters is ignored, so a pasted, line-wrapped sequence works.
Examples: DNA `TTGACA[N:17]TATAAT[N:5-8]` (a sigma-70 promoter: -35 box, 17-base spacer, -10 box);
protein `M{10}GPSGSGKST{30-40}` (a Walker A / P-loop motif); SMILES `c1ccccc1{3}C(=O)O`; text `the {3-6} of {8}`.
"""


# ================================================================ models
@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _load_model(path: str, mtime: float, size: int, device: str):
    from seqdiff.model import load_model
    return load_model(path, map_location=device)


MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")
PATH_REFUSED = ("No seqdiff model could be opened at that path. The path box opens model files (.pt, .pth, "
                ".ckpt) that this server can read: a missing file, a folder, another kind of file and a file "
                "refused as unsafe all get this same message.")


@st.cache_resource(show_spinner=False)
def _upload_folder() -> str:
    """The private (0700) folder for uploads: the launcher's, or one made here and removed at exit."""
    given = os.environ.get("SEQDIFF_APP_UPLOADS", "").strip()
    if given and Path(given).is_dir() and (Path(given).stat().st_mode & 0o077) == 0:
        return given
    folder = tempfile.mkdtemp(prefix="seqdiff-app-uploads-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _store_upload(up) -> Path:
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:20]
    folder = Path(_upload_folder())
    if not folder.is_dir():  # removed under us: make a new private one
        _upload_folder.clear()
        folder = Path(_upload_folder())
    suffix = Path(up.name).suffix if Path(up.name).suffix in MODEL_SUFFIXES else ".pt"
    path = folder / f"{digest}{suffix}"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload.", suffix=".part")  # mode 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


def model_sidebar():
    """Domain and model pickers: ``(domain, model or None, label, (kind, message) or None)``."""
    sb = st.sidebar
    sb.title("seqdiff design")
    domain = sb.selectbox("Domain", C.DOMAINS, format_func=C.DOMAIN_LABELS.get, key="domain",
                          help="What kind of sequence to design.")
    try:
        choices, missing = C.model_choices(domain)
    except ValueError as e:
        sb.error(str(e))
        choices, missing = C.model_choices(domain, env="")
    if missing:
        sb.warning(missing)
    labels = [c.label for c in choices]
    mkey = f"model_choice_{domain}"
    if ss.get(mkey) not in labels and ss["kept"].get(mkey) not in labels:
        ss.pop(mkey, None)
        ss["kept"].pop(mkey, None)
    label = sb.selectbox("Model", labels, key=kept(mkey, labels[0]),
                         help="The menu: " + "; ".join(f"**{c.label}**" for c in choices))
    remember(mkey)
    choice = choices[labels.index(label)]
    if choice.path is not None:
        sb.caption(f"<span title=\"{html.escape(str(choice.path))}\">{html.escape(label)}</span>",
                   unsafe_allow_html=True)
    if choice.kind in ("shipped", "configured"):
        path = choice.path
    elif choice.kind == "path":
        text = sb.text_input("Model file", key=f"model_path_{domain}", placeholder="runs/my-run/model.pt",
                             help="An exported model (model.pt) or a training checkpoint (.ckpt).")
        if not text.strip():
            return domain, None, None, ("info", "Enter the path of a model file in the sidebar.")
        path = Path(text.strip()).expanduser()
        label = str(path)
        if path.suffix.lower() not in MODEL_SUFFIXES:
            return domain, None, label, ("error", PATH_REFUSED)
    else:
        up = sb.file_uploader("Model file", type=["pt", "ckpt", "pth"], key=f"model_upload_{domain}",
                              help="An exported model (model.pt) or a training checkpoint (.ckpt).")
        if up is None:
            return domain, None, None, ("info", "Upload a model file in the sidebar.")
        path = _store_upload(up)
        label = up.name
    device = C.resolve_device()
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        stat = path.stat()
        model = _load_model(str(path), stat.st_mtime, stat.st_size, device)
    except Exception as e:  # noqa: BLE001 - any unusable file gets a clear message
        if choice.kind == "path":  # say nothing about the server's files
            return domain, None, label, ("error", PATH_REFUSED)
        from seqdiff.serialization import UnsafeModelError
        if isinstance(e, UnsafeModelError):
            if choice.kind == "upload":
                path.unlink(missing_ok=True)
            return domain, None, label, ("error", f"Refused {label}: it would import code when opened "
                                                  f"({str(e).split('import ', 1)[-1].split(',')[0]}), which a "
                                                  f"seqdiff model never does. Nothing in it was run.")
        shown = str(e).replace(str(path), label) if choice.kind == "upload" else str(e)
        return domain, None, label, ("error", f"Could not load the model {label}: {shown}")
    if model.domain != domain:
        return domain, None, label, ("error", f"{label} is a {model.domain} model, not a {domain} model: choose "
                                              f"the {C.DOMAIN_LABELS[model.domain]} domain, or another model file.")
    sb.caption(f"{model.describe()} · device {device} · default sampler {model.default_sampler}")
    label = f"{model.cfg.name} ({path.name})" if choice.kind != "upload" else f"{model.cfg.name} ({label})"
    with sb.expander("Template syntax"):
        st.markdown(TEMPLATE_HELP)
    return domain, model, label, None


# ================================================================ design tab
def parse_current_template(domain, model):
    from seqdiff.jobs.template import parse_template
    text = ss.get(f"template_{domain}", "")
    if not text.strip():
        return None, ("The template is empty: type one, e.g. " + C.DEFAULT_TEMPLATES[domain], None)
    try:
        return parse_template(text, model.tokenizer, domain=domain, max_len=model.max_len), None
    except ValueError as e:
        return None, C.template_error_text(e)


def _set_template(domain: str, text: str) -> None:
    ss[f"template_{domain}"] = text


def mark_region_helper(domain, model):
    unit = get_domain(domain).letter
    st.caption(f"Paste a sequence, choose the region to keep (1-based, both ends included; positions count "
               f"{unit}s), and make it the template: the region is fixed and the rest is free.")
    pasted = st.text_area("Sequence", key=f"region_seq_{domain}", height=80,
                          placeholder="paste a sequence (FASTA headers are ignored)")
    seq = C.clean_pasted(pasted, domain)
    if not seq:
        return
    try:
        units = C.region_units(seq, domain, model.tokenizer)
    except ValueError as e:
        st.error(f"The pasted sequence cannot be read: {e}")
        return
    n = len(units)
    mode = st.radio("Select the region with", ["start / end positions", "a slider"], horizontal=True,
                    key=f"region_mode_{domain}")
    if mode == "a slider" and n > 1:
        start, end = st.slider("Region", 1, n, (1, min(n, max(1, n // 3))), key=f"region_slider_{domain}")
    else:
        c1, c2 = st.columns(2)
        start = int(c1.number_input("Start", 1, n, 1, key=f"region_start_{domain}"))
        end = int(c2.number_input("End", 1, n, min(n, max(1, n // 3)), key=f"region_end_{domain}"))
    slack = int(st.number_input("Let each free flank vary by ± positions", 0, 1000, 0, key=f"region_slack_{domain}"))
    try:
        text = C.mark_region_template(seq, start, end, domain, model.tokenizer, slack)
    except ValueError as e:
        st.error(str(e))
        return
    st.code(text, language=None)
    st.caption(f"{n} {unit}s; fixed: {start}–{end} ({end - start + 1} {unit}s).")
    st.button("Use as template", key=f"region_apply_{domain}", on_click=_set_template, args=(domain, text))


def start_job(domain, model, model_label, tmpl, settings) -> None:
    from seqdiff.domains.smiles import uniqueness, validity

    steer = settings.get("steer")

    def work(job: C.GenerationJob):
        def run(report, on_batch, guidance=None):
            return C.generate_candidates(model, tmpl, settings["num"], sampler=settings["sampler"],
                                         steps=settings["steps"], seed=settings["seed"], n_t=settings["n_t"],
                                         batch_size=settings["batch_size"],
                                         sampler_options=settings["sampler_options"],
                                         report=report, on_batch=on_batch, guidance=guidance)

        if steer is None:
            cands = run(job.report, job.add_batch)
            steer_res = None
        else:  # the guided run, then an unguided baseline of the same size (half the bar each)
            cands = run(lambda f, m: job.report(0.5 * f, f"guided: {m}"), job.add_batch, G.guidance_settings(steer))
            base = run(lambda f, m: job.report(0.5 + 0.5 * f, f"unguided baseline: {m}"), None)
            name = G.MEASURED[steer["predictor"]] if steer["method"] == G.CG else steer["reward"]
            guided_v = G.measured_values(steer, domain, [c.sequence for c in cands])
            base_v = G.measured_values(steer, domain, [c.sequence for c in base])
            for c, v in zip(cands, guided_v):
                if v is not None:
                    c.metrics[name] = round(v, 6)
            steer_res = dict(steer, name=name, guided=[v for v in guided_v if v is not None],
                             baseline=[v for v in base_v if v is not None])
            if steer["method"] == G.CG and get_domain(domain).has_validity:  # the property of valid molecules only
                steer_res.update(valid_guided=sum(v is not None for v in guided_v) / max(len(guided_v), 1),
                                 valid_baseline=sum(v is not None for v in base_v) / max(len(base_v), 1))
        df = C.candidates_frame(cands, domain)
        extra = {}
        if "valid" in get_domain(domain).sample_columns:
            seqs = [c.sequence for c in cands]
            extra = {"validity": validity(seqs), "uniqueness": uniqueness(seqs)}
        return {"cands": cands, "df": df, "template": tmpl.text, "tmpl": tmpl, "model": model_label,
                "settings": settings, "extra": extra, "steer": steer_res}

    job = C.GenerationJob(domain=domain, settings=dict(settings, template=tmpl.text), alive=C.session_alive_check())
    ss["job"] = job
    job.start(work)


def collect_job() -> None:
    """Move a finished background job's outcome into the session."""
    job = ss.get("job")
    if job is None or job.running or job.collected:
        return
    job.collected = True
    tmpl = job.settings.get("template")
    if job.state == "done":
        job.result["seconds"] = job.elapsed
        job.result["first_after"] = job.first_after
        ss["results"][job.domain] = job.result
        first = f" (first candidates after {job.first_after:.1f} s)" if job.first_after is not None else ""
        ss["run_status"][job.domain] = ("done", f"Generated {len(job.result['cands'])} candidates in "
                                                f"{job.elapsed:.1f} s{first}.", tmpl)
    elif job.state == "cancelled":
        ss["run_status"][job.domain] = ("cancelled", f"Generation cancelled after {job.elapsed:.1f} s "
                                                     f"({job.fraction:.0%} done); nothing new was kept.", tmpl)
    else:
        ss["run_status"][job.domain] = ("error", f"Generation failed: {job.error}", tmpl)


def _progress_body(domain: str, template: str | None) -> None:
    """The running job's progress and streaming table, or this domain's last run's banner.

    The banner is drawn here, inside the fragment, rather than after it: a run-every fragment run that
    ends after the full rerun which collected the job would otherwise leave the page without it (seen
    in the browser when one domain's run follows another's)."""
    job = ss.get("job")
    if job is not None and not job.collected:
        if not job.running:
            st.rerun()  # the whole app: collect the results
        st.progress(job.fraction, text=C.progress_text(job))
        if job.cancel_requested:
            st.caption("Cancelling after the current sampler step…")
        st.button("Cancel", key="cancel_job", on_click=job.cancel, disabled=job.cancel_requested)
        cands, scored = job.snapshot()
        if cands:
            st.markdown(f"**{len(cands)} of {job.settings['num']} candidates so far** (in generation order; "
                        f"bits/token appears when its batch is scored: {scored} of {len(cands)} scored)")
            df = C.candidates_frame(cands, job.domain)
            st.dataframe(df[[c for c in ("id", "sequence", "length", "bits_per_token", "valid", "gc") if c in df]],
                         hide_index=True, width="stretch",
                         column_config={"sequence": st.column_config.TextColumn("sequence", width="large"),
                                        "bits_per_token": st.column_config.NumberColumn("bits/token",
                                                                                         format="%.3f")})
        return
    status = ss["run_status"].get(domain)
    # a banner belongs to the template it was generated from: new input clears it
    if status and template is not None and status[2] == template:
        kind, msg, _ = status
        {"done": st.success, "cancelled": st.warning, "error": st.error}[kind](msg)


def progress_panel(domain: str, template: str | None) -> None:
    job = ss.get("job")
    running = job is not None and job.running
    st.fragment(_progress_body, run_every=0.4 if running else None)(domain, template)


def design_tab(domain, model, model_label):
    key = kept(f"template_{domain}", C.default_template(domain, model))
    st.text_area("Template", key=key, height=80,
                 help="Fixed letters appear in every candidate; `?`, `{k}`, `{a-b}` (and `[N:k]` for DNA, "
                      "protein, text) are free positions. See *Template syntax* in the sidebar.")
    tmpl, err = parse_current_template(domain, model)
    st.markdown(C.TEMPLATE_CSS, unsafe_allow_html=True)
    if err is not None:
        msg, ctx = err
        st.error(f"Template error: {msg}")
        if ctx:
            st.code(ctx, language=None)
    else:
        st.markdown('<div class="sd-legend"><span class="sd-seq"><span class="fixed">fixed</span></span>'
                    '<span class="sd-seq"><span class="free">free</span></span></div>'
                    + C.template_preview_html(tmpl), unsafe_allow_html=True)
        st.caption(C.template_summary(tmpl, model.max_len))
    hint = C.window_hint(model)
    if hint:
        st.caption("ℹ️ " + hint)
    with st.expander("Mark a region of a pasted sequence as fixed"):
        mark_region_helper(domain, model)

    samplers = C.usable_samplers(model)
    d = C.design_defaults(domain, model)
    default_sampler = d["sampler"] if d["sampler"] in samplers else (
        model.default_sampler if model.default_sampler in samplers else samplers[0])
    skey = f"sampler_{domain}"
    if ss.get(skey, ss["kept"].get(skey)) not in samplers:  # another model of the domain lacks it
        ss.pop(skey, None)
        ss["kept"].pop(skey, None)
    c1, c2, c3, c4 = st.columns(4)
    num = int(c1.number_input("Candidates", 1, 2048, key=kept(f"num_{domain}", d["num"])))
    sampler = c2.selectbox("Sampler", samplers, key=kept(skey, default_sampler),
                           help="confidence: reveal the most confident positions first (masked models; "
                                "biased towards the modes, best validity); ancestral: random order (exact "
                                "in the limit); remdm: ancestral with remasking; tweedie/euler: SEDD-style; "
                                "multinomial: uniform-noise models. The model's own is preselected.")
    own_steps = int(model.cfg.sampling.steps or 128)
    steps = int(c3.number_input("Steps", 1, 10000, key=kept(f"steps_{domain}", d["steps"]),
                                help=f"Sampler steps (network evaluations per batch). The model was recorded with "
                                     f"{own_steps}; fewer steps give the first candidates sooner."))
    seed = int(c4.number_input("Seed", 0, 2**31 - 1, key=kept(f"seed_{domain}", 0), help="Same seed, same candidates."))
    with st.expander("Advanced"):
        a1, a2 = st.columns(2)
        batch_size = int(a1.number_input("Batch size", 1, 1024, key=kept(f"batch_{domain}", d["batch_size"]),
                                         help="Candidates per batch: they appear in the table as each batch "
                                              "finishes (smaller batches: the first ones sooner)."))
        n_t = int(a2.number_input("ELBO time points", 2, 256, key=kept(f"nt_{domain}", d["n_t"]),
                                  help="Monte-Carlo points of the likelihood bound used to rank candidates."))
        sampler_options = C.sampler_option_widgets(st, sampler, model, domain, kept=kept, remember=remember)
    steer, steer_err = G.steering_expander(st, domain, kept, remember, model=model, sampler=sampler)
    remember(key, f"num_{domain}", skey, f"steps_{domain}", f"seed_{domain}", f"batch_{domain}", f"nt_{domain}")

    job = ss.get("job")
    running = job is not None and job.running
    if st.button("Generate", type="primary", key="generate", disabled=tmpl is None or running,
                 help="Another generation is running" if running else None):
        if steer_err is not None:
            st.error(f"Nothing was generated: fix the steering settings first ({steer_err})")
        else:
            ss["run_status"].pop(domain, None)
            start_job(domain, model, model_label, tmpl,
                      {"num": num, "sampler": sampler, "steps": steps, "seed": seed, "batch_size": batch_size,
                       "n_t": n_t, "sampler_options": sampler_options, "steer": steer})
            st.rerun()
    progress_panel(domain, None if tmpl is None else tmpl.text)
    if running and job.domain == domain:
        return  # the streaming table stands in for the results until the run is complete
    results_section(domain, model)


# ---------------------------------------------------------------- results
@st.cache_data(show_spinner=False, max_entries=16)
def _logo_files(table_json: str, domain: str, fixed_ranges: tuple) -> tuple[bytes, bytes]:
    """(PNG, SVG) of a logo table (passed as JSON so that it can be cached)."""
    import pandas as pd

    table = pd.read_json(io.StringIO(table_json), orient="split")
    return (C.figure_bytes(C.logo_figure(table, domain, fixed_ranges), "png"),
            C.figure_bytes(C.logo_figure(table, domain, fixed_ranges), "svg"))


def figure_downloads(png: bytes, svg: bytes, name: str, key: str) -> None:
    """PNG and SVG download buttons for a plot."""
    b1, b2, _ = st.columns([1, 1, 4])
    b1.download_button("Download PNG", png, file_name=f"{name}.png", mime="image/png", key=f"{key}_png",
                       on_click="ignore")
    b2.download_button("Download SVG", svg, file_name=f"{name}.svg", mime="image/svg+xml", key=f"{key}_svg",
                       on_click="ignore")


def logo_section(domain, shown, by_id, tmpl) -> None:
    seqs = list(shown["sequence"][:1000])
    cands = [by_id[i] for i in shown["id"][:1000]]
    alphabet = C.LOGO_ALPHABETS[domain]
    st.markdown("**Sequence logo**")
    try:
        logos = [(C.template_logo_counts(cands, tmpl, alphabet), "aligned")] if tmpl is not None else []
    except ValueError:
        logos = []
    if not logos:  # not aligned to a template: one logo per length group
        try:
            groups = C.length_group_logos(seqs, alphabet)
        except ValueError as e:
            st.info(f"No logo: {e}")
            return
        st.caption(f"One logo per length group ({len(groups)} group{'s' if len(groups) != 1 else ''}), "
                   f"not aligned across lengths.")
        logos = [((table, [], note.capitalize() + "."), f"len{L}") for L, table, note in groups[:6]]
    for (table, fixed, note), tag in logos:
        png, svg = _logo_files(table.to_json(orient="split"), domain, tuple(fixed))
        st.caption(note)
        st.image(png)
        figure_downloads(png, svg, f"seqdiff_{domain}_logo_{tag}", f"dl_logo_{tag}_{domain}")


@st.cache_data(show_spinner=False, max_entries=16)
def _motif_table(seqs: tuple[str, ...], threshold: float):
    from seqdiff.domains.motifs import motif_hits
    df = motif_hits(seqs, threshold=threshold)
    df = df[df["hits"] > 0].sort_values(["frac_seqs_with_hit", "hits_per_kb"], ascending=False)
    return df.reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=16)
def _mol_grid_png(smiles: tuple[str, ...], legends: tuple[str, ...]) -> bytes:
    from seqdiff.domains.smiles import mol_grid_image
    img = mol_grid_image(list(smiles), n_per_row=4, size=220, legends=list(legends), max_mols=24)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=16)
def _mol_grid_svg(smiles: tuple[str, ...], legends: tuple[str, ...]) -> bytes:
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) for s in smiles]
    keep = [(m, lg) for m, lg in zip(mols, legends) if m is not None]
    svg = Draw.MolsToGridImage([m for m, _ in keep], molsPerRow=4, subImgSize=(220, 220),
                               legends=[lg for _, lg in keep], useSVG=True)
    return (svg if isinstance(svg, str) else svg.data).encode()


@st.cache_data(show_spinner=False, max_entries=8)
def _heatmap_files(long_json: str, alphabet: str, wt: str) -> tuple[bytes, bytes]:
    import pandas as pd

    long = pd.read_json(io.StringIO(long_json), orient="split")
    return (C.figure_bytes(C.heatmap_figure(long, alphabet, wt), "png"),
            C.figure_bytes(C.heatmap_figure(long, alphabet, wt), "svg"))


def results_section(domain, model):
    res = ss["results"].get(domain)
    if not res:
        return
    cands = res["cands"]
    by_id = {c.id: c for c in cands}
    df = res["df"]
    s = res["settings"]
    st.divider()
    st.subheader(f"{len(cands)} candidates")
    if ss.get(f"template_{domain}", res["template"]) != res["template"]:
        st.caption(f"ℹ️ These candidates are from the template `{res['template']}`; generate again for the "
                   f"current one.")
    st.caption(f"Template `{res['template']}` · model {res['model']} · {s['sampler']} sampler, {s['steps']} steps · "
               f"seed {s['seed']} · ELBO with {s['n_t']} time points · {res.get('seconds', 0):.1f} s")
    m = st.columns(4)
    m[0].metric("Best bits/token", f"{df['bits_per_token'].min():.3f}")
    m[1].metric("Mean bits/token", f"{df['bits_per_token'].mean():.3f}")
    if "validity" in res["extra"]:
        m[2].metric("Valid molecules", f"{res['extra']['validity']:.0%}")
        m[3].metric("Unique (of valid)", f"{res['extra']['uniqueness']:.0%}")
    elif "gc" in df:
        m[2].metric("Mean GC", f"{df['gc'].mean():.1%}")
    G.steering_results(st, res)
    # ---- filter and sort
    f1, f2, f3, f4 = st.columns([2, 1, 1, 2])
    sort_options = [k for k in C.SORT_KEYS if k != "GC content" or "gc" in df]
    sort_by = f1.selectbox("Sort by", sort_options, key=f"sort_{domain}")
    descending = f2.checkbox("Descending", key=f"desc_{domain}")
    max_bits = f3.number_input("Max bits/token", min_value=0.0, value=None, step=0.1, key=f"maxbits_{domain}",
                               placeholder="no limit")
    pattern = f4.text_input("Must contain (regular expression)", key=f"pattern_{domain}", placeholder="e.g. GC{2}")
    valid_only = False
    if "valid" in df:
        valid_only = st.checkbox("Valid molecules only", key=f"validonly_{domain}")
    try:
        shown = C.filter_sort(df, valid_only=valid_only, max_bits=max_bits, pattern=pattern or None,
                              sort_by=sort_by, descending=descending)
    except ValueError as e:
        st.error(f"Filter: {e}")
        shown = C.filter_sort(df, sort_by=sort_by, descending=descending)
    st.caption(f"Showing {len(shown)} of {len(df)} candidates.")
    ss.setdefault("shown", {})[domain] = shown
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"sequence": st.column_config.TextColumn("sequence", width="large"),
                                "bits_per_token": st.column_config.NumberColumn("bits/token", format="%.3f")})
    # ---- downloads
    data, ext, mime = C.sequence_file(shown, domain)
    kind = {".fa": "FASTA", ".smi": "SMILES", ".txt": "text"}[ext]
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button(f"Download {kind}", data, file_name=f"seqdiff_{domain}_candidates{ext}", mime=mime,
                       key=f"dl_seq_{domain}", disabled=shown.empty, on_click="ignore")
    d2.download_button("Download CSV", C.csv_bytes(shown), file_name=f"seqdiff_{domain}_candidates.csv",
                       mime="text/csv", key=f"dl_csv_{domain}", disabled=shown.empty, on_click="ignore")
    if shown.empty:
        return
    # ---- highlighted sequences
    st.markdown("**Candidates** (fixed regions highlighted)")
    limit = 50
    lines = [C.candidate_html(by_id[i], model.tokenizer, score=b)
             for i, b in zip(shown["id"][:limit], shown["bits_per_token"][:limit])]
    more = f'<div class="sd-seq">… and {len(shown) - limit} more (download them)</div>' if len(shown) > limit else ""
    st.markdown(f'<div id="sd-candidates">{"".join(lines)}{more}</div>', unsafe_allow_html=True)
    # ---- domain views
    if C.has_view(domain, "molecules"):
        valid = shown[shown["valid"]]
        st.markdown("**Molecules** (valid candidates, in table order, at most 24)")
        if valid.empty:
            st.info("No valid molecule among the shown candidates.")
        else:
            legends = tuple(f"{i} · {b:.2f} b/t" for i, b in zip(valid["id"][:24], valid["bits_per_token"][:24]))
            grid = (tuple(valid["sequence"][:24]), legends)
            st.image(_mol_grid_png(*grid))
            figure_downloads(_mol_grid_png(*grid), _mol_grid_svg(*grid), f"seqdiff_{domain}_molecules",
                             f"dl_grid_{domain}")
    if domain in C.LOGO_ALPHABETS:
        logo_section(domain, shown, by_id, res.get("tmpl"))
    if C.has_view(domain, "motifs"):
        st.markdown("**JASPAR motif matches** (both strands)")
        thr = st.slider("Relative score threshold", 0.70, 1.0, 0.90, 0.01, key=f"motif_thr_{domain}",
                        help="0.8 is a common JASPAR cut-off; short AT-rich motifs match almost anywhere at 0.8.")
        try:
            hits = _motif_table(tuple(shown["sequence"][:300]), float(thr))
        except FileNotFoundError as e:
            st.info(f"JASPAR profiles not found: {e}")
        else:
            if hits.empty:
                st.caption("No motif reaches the threshold.")
            else:
                st.caption("Profiles with at least one hit in the shown candidates (at most 300 scanned); fixed "
                           "template letters count too.")
                st.dataframe(hits.head(20), hide_index=True, width="stretch",
                             column_config={"frac_seqs_with_hit": st.column_config.NumberColumn(
                                 "fraction of candidates", format="%.2f"),
                                 "hits_per_kb": st.column_config.NumberColumn("hits per kb", format="%.1f")})


# ================================================================ variant tab
def _default_mutations(wt: str, domain: str) -> str:
    curated = {"protein": ["I44A", "K48R", "L8A:I44A", "F45W", "I3A", "K6R", "L8A"],
               "dna": ["T9G", "A12C", "T10A:A11G", "G1A"]}[domain]
    ok = []
    for m in curated:
        try:
            from seqdiff.jobs.variants import apply_mutant
            apply_mutant(wt, m)
            ok.append(m)
        except ValueError:
            pass
    if len(ok) < 2:
        alpha = C.SCAN_ALPHABETS[domain]
        ok = [f"{wt[p - 1]}{p}{next(a for a in alpha if a != wt[p - 1])}" for p in range(1, min(len(wt), 4) + 1)
              if wt[p - 1] in alpha]
    return "\n".join(ok)


def _run_scoring(domain, model, wt, table, kind, note=None):
    from seqdiff.jobs.scoring import score_variants

    bar = st.progress(0.0, text="Scoring…")

    def tick(i, n):
        bar.progress(i / max(n, 1), text=f"Scoring: {i}/{n} network batches")

    scored = score_variants(model, wt, table, methods=("auto",), n_t=int(ss.get(f"var_nt_{domain}", 16)),
                            seed=0, progress=tick)
    bar.empty()
    ss["variants"][domain] = {"table": scored, "col": C.score_column(scored), "wt": wt, "kind": kind,
                              "note": note}


def variant_tab(domain, model):
    _variant_tab(domain, model)
    wt = C.clean_wild_type(ss.get(f"wt_{domain}", ""))
    if C.has_view(domain, "fewshot") and wt:
        from _variants import fewshot_section  # measured variants and homologs (few-shot, family)
        fewshot_section(domain, model, wt)


def _variant_tab(domain, model):
    if domain not in ("dna", "protein"):
        st.info("Variant scoring is for DNA and protein models (substitutions in DMS notation such as A23G). "
                "Choose the DNA or Protein domain in the sidebar.")
        return
    import pandas as pd

    from seqdiff.jobs.variants import read_variants, single_mutant_scan

    st.caption("Scores are log-likelihood ratios log p(variant) − log p(wild type) in nats under the model "
               "(masked marginal for masked models, ELBO difference otherwise): above 0, the model finds the "
               "variant more likely than the wild type.")
    wt_key = kept(f"wt_{domain}", C.DEFAULT_WILD_TYPES[domain][:model.max_len])
    st.text_area("Wild-type sequence", key=wt_key, height=80)
    remember(wt_key)
    wt = C.clean_wild_type(ss[wt_key])
    if not wt:
        st.error("Enter a wild-type sequence.")
        return
    try:
        model.tokenizer.encode(wt, name="wild type")
    except ValueError as e:
        st.error(f"Wild type: {e}")
        return
    if len(wt) > model.max_len:
        st.error(f"The wild type has {len(wt)} positions; this model allows at most {model.max_len}.")
        return
    st.caption(f"{len(wt)} positions.")
    mut_key = f"mutations_{domain}"
    if mut_key not in ss and mut_key not in ss["kept"]:
        ss[mut_key] = _default_mutations(wt, domain)
    kept(mut_key, "")
    left, right = st.columns(2)
    with left:
        st.markdown("**Score a list of variants**")
        st.text_area("Mutations, one per line (A23G, or A23G:K45R for a multi-mutant)", key=mut_key, height=140)
        remember(mut_key)
        up = st.file_uploader("…or a CSV/TSV with a mutant (or sequence) column", type=["csv", "tsv", "txt"],
                              key=f"variant_csv_{domain}")
        if st.button("Score variants", key=f"score_{domain}", type="primary"):
            try:
                if up is not None:
                    sep = "\t" if up.name.lower().endswith(".tsv") else ","
                    raw = pd.read_csv(io.BytesIO(up.getvalue()), sep=sep, dtype=str, keep_default_na=False)
                    table = read_variants(raw, wt)
                else:
                    lines = C.mutation_lines(ss[mut_key])
                    if not lines:
                        raise ValueError("no mutations given: type one per line, e.g. A23G")
                    table = read_variants(pd.DataFrame({"mutant": lines}), wt)
                _run_scoring(domain, model, wt, table, "list")
            except Exception as e:  # noqa: BLE001 - bad input: a clear message
                st.error(f"Variants: {e}")
    with right:
        st.markdown("**Scan all single mutants** (deep-mutational-scan style)")
        c1, c2 = st.columns(2)
        start = int(c1.number_input("From position", 1, len(wt), 1, key=f"scan_start_{domain}"))
        end = int(c2.number_input("To position", 1, len(wt), min(len(wt), C.MAX_SCAN_POSITIONS),
                                  key=f"scan_end_{domain}"))
        st.caption(f"At most {C.MAX_SCAN_POSITIONS} positions per scan; "
                   f"{len(C.SCAN_ALPHABETS[domain]) - 1} substitutions per position.")
        st.number_input("ELBO time points (non-masked models)", 2, 256, 16, key=f"var_nt_{domain}")
        if st.button("Scan all single mutants", key=f"scan_{domain}"):
            try:
                a, b, note = C.scan_window(len(wt), start, end)
                scan = single_mutant_scan(wt[a - 1:b], C.SCAN_ALPHABETS[domain], offset=a - 1)
                table = read_variants(scan[["mutant"]], wt)
                _run_scoring(domain, model, wt, table, "scan", note)
            except Exception as e:  # noqa: BLE001
                st.error(f"Scan: {e}")
    res = ss["variants"].get(domain)
    if not res:
        return
    st.divider()
    if res["wt"] != wt:
        st.warning("These scores are for an earlier wild type; score again to update them.")
    if res.get("note"):
        st.info(res["note"])
    col = res["col"]
    df = res["table"]
    view = pd.DataFrame({"mutant": df["mutant"], "num_mutations": df["num_mutations"],
                         "score": df[col].astype(float).round(4)})
    if "score_elbo_se" in df:
        view["stderr"] = df["score_elbo_se"].astype(float).round(4)
    order = st.selectbox("Order", ["score, high to low", "score, low to high", "as entered"],
                         key=f"var_order_{domain}")
    if order != "as entered":
        view = view.sort_values("score", ascending=order.endswith("high"), kind="stable")
    st.markdown(f"**{len(view)} variants** scored with `{col.removeprefix('score_')}`")
    st.dataframe(view, hide_index=True, width="stretch")
    st.download_button("Download scores (CSV)", C.csv_bytes(view), file_name=f"seqdiff_{domain}_variant_scores.csv",
                       mime="text/csv", key=f"dl_var_{domain}", on_click="ignore")
    alphabet = C.SCAN_ALPHABETS[domain]
    long = C.single_mutant_matrix(df, col, res["wt"], alphabet)
    if long.empty:
        st.caption("No single mutants to draw a heatmap of.")
    else:
        blocks = C.heatmap_blocks(long["position"])
        if len(blocks) > 1:
            st.caption(f"{len(set(long['position']))} positions, wrapped in rows of at most {C.HEATMAP_WRAP}; "
                       f"hover a cell for its score.")
        else:
            st.caption("Hover a cell for its score.")
        st.altair_chart(C.heatmap_chart(long, alphabet, res["wt"]), width="content")
        png, svg = _heatmap_files(long.to_json(orient="split"), alphabet, res["wt"])
        figure_downloads(png, svg, f"seqdiff_{domain}_single_mutants", f"dl_heatmap_{domain}")


# ================================================================ help tab
def help_tab():
    st.markdown(f"""
### How to
1. Pick a **domain** and a **model** in the sidebar (the shipped model opens by default; a path or an upload
   loads your own `model.pt` or training checkpoint).
2. Write a **template**: fixed letters stay, free spans are designed. The preview highlights the fixed letters.
   The *Mark a region* helper turns a pasted sequence and a selected region into a template.
3. **Generate**; candidates appear batch by batch as they are sampled (their ELBO when scored), with an
   estimate of the time left, and the run can be cancelled. Candidates are ranked by the ELBO bound in
   bits per token (lower = more likely under the model). Each domain keeps its own settings.
4. Sort, filter and **download** (FASTA / SMILES / text, and CSV with the scores); every plot has PNG
   and SVG downloads.

{TEMPLATE_HELP}

### Settings for administrators
* `{C.MODELS_ENV}`: models per domain, e.g. `dna=/models/dna.pt,smiles=/models/smiles.pt` (or a JSON object);
  `text=none` hides the shipped text model.
* `{C.DEVICE_ENV}`: `auto` (default), `cpu`, `cuda` or `cuda:N`.
""")


# ================================================================ page
def main():
    collect_job()
    domain, model, label, problem = model_sidebar()
    st.title("Sequence design with discrete diffusion")
    if model is None:
        kind, msg = problem
        (st.error if kind == "error" else st.info)(msg)
        help_tab()
        return
    design, variants, helptab = st.tabs(["Design", "Variant scoring", "Help"])
    for tab, body in ((design, lambda: design_tab(domain, model, label)),
                      (variants, lambda: variant_tab(domain, model)), (helptab, help_tab)):
        with tab:
            try:
                body()
            except Exception as e:  # noqa: BLE001 - never let a bug take the whole app down
                st.error(f"Something went wrong: {type(e).__name__}: {e}")
                with st.expander("Details"):
                    st.code(traceback.format_exc(), language=None)


main()
