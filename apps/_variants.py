"""The variant tab's few-shot and family section: measured variants and homologs -> predictions.

``fewshot_section(domain, model, wt)`` draws, under the zero-shot scorer of the variant tab:

* an input for **measured variants** (a CSV upload, or pasted CSV text: a mutant column and a
  measurement column) and, optionally, a **homolog file** (FASTA / A2M / Stockholm);
* on *Fit*: (homologs) the model fine-tuned on the homologs (:mod:`seqdiff.jobs.family`, cached),
  then zero-shot scores of every single mutant and every measured variant, and the augmented ridge
  regression (:mod:`seqdiff.jobs.fewshot`: one-hot, per-site and per-letter effects, the model's score
  and BLOSUM62; which of them and the strength chosen by leave-one-out CV on the measured variants);
* the **learning curve** (Spearman on held-out measured variants against the number of labels,
  random splits) beside the zero-shot model's and BLOSUM62's Spearman on the same variants;
* the **predicted heatmap** of every single mutant, and a table (prediction, its sd, measured value)
  to download.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import streamlit as st

import _components as C

ss = st.session_state

__all__ = ["fewshot_section"]


def _upload_path(up) -> Path:
    """An uploaded file on disk (name kept, for messages), in a folder per content hash."""
    digest = hashlib.sha256(up.getvalue()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "seqdiff-app-homologs" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(up.name).name
    if not path.exists():
        path.write_bytes(up.getvalue())
    return path


def _labels_frame(up, text: str):
    import pandas as pd
    if up is not None:
        sep = "\t" if up.name.lower().endswith((".tsv", ".tab")) else ","
        return pd.read_csv(io.BytesIO(up.getvalue()), sep=sep), up.name
    if not text.strip():
        raise ValueError("no measured variants: upload a CSV or paste one (a mutant column and a measurement "
                         "column, e.g. `mutant,fitness`)")
    return pd.read_csv(io.StringIO(text.strip() + "\n")), "the pasted table"


def _fit(domain, model, wt, labels_df, source, homologs_path):
    import numpy as np
    import pandas as pd

    from seqdiff.jobs.fewshot import FewShotModel, learning_curve, read_labels
    from seqdiff.jobs.scoring import score_variants
    from seqdiff.jobs.variants import blosum62_scores, read_variants, single_mutant_scan

    labels = read_labels(labels_df, wt, source=source)
    if len(labels) < 4:
        raise ValueError(f"{source}: give at least 4 measured variants (got {len(labels)})")
    family_note = None
    if homologs_path is not None:
        from seqdiff.jobs.family import family_model
        with st.spinner("Fine-tuning the model on the homologs (cached for the next run)…"):
            model, info = family_model(model, None, homologs_path, wt, steps=int(ss.get("fs_steps", 300)),
                                       log=lambda m: None)
        family_note = (f"Family model: {info['n_homologs']} homologs (N_eff {info['n_eff']:.1f}), "
                       f"loss {info['loss_start']:.2f} → {info['loss_end']:.2f} nats/residue"
                       + (" (from cache)" if info.get("cached") else ""))
    scan = single_mutant_scan(wt)
    union = list(dict.fromkeys(list(labels["mutant"]) + list(scan["mutant"])))
    table = read_variants(pd.DataFrame({"mutant": union}), wt)
    scored = score_variants(model, wt, table, methods=("auto",))
    zcol = C.score_column(scored)
    Z = np.stack([scored[zcol].to_numpy(dtype=float), np.asarray(blosum62_scores(wt, union), dtype=float)], 1)
    index = {m: i for i, m in enumerate(union)}
    tr = np.array([index[m] for m in labels["mutant"]])
    y = labels["y"].to_numpy(dtype=float)
    fs = FewShotModel(wt, union, Z, site=True, aa=True).fit(tr, y)
    rows = np.array([index[m] for m in scan["mutant"]])
    mean, sd, _ = fs.predict(rows)
    measured = labels.groupby("mutant")["y"].mean()
    pred = pd.DataFrame({"mutant": scan["mutant"], "num_mutations": 1, "prediction": mean, "sd": sd,
                         "zero_shot": Z[rows, 0], "measured": [measured.get(m, np.nan) for m in scan["mutant"]]})
    # learning curve on the measured variants only
    lab_rows = [index[m] for m in labels["mutant"]]
    mut_l = [union[i] for i in lab_rows]
    n = len(y)
    sizes = [s for s in (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048) if s <= 0.8 * n]
    curve = []
    if sizes:
        for name, cols, site in (("few-shot augmented", [0, 1], True), ("one-hot ridge", [], False)):
            kw = {"site": True, "aa": True} if site else {"select": False}
            for r in learning_curve(wt, mut_l, y, Z[lab_rows][:, cols] if cols else None, sizes=sizes, splits=5,
                                    **kw):
                curve.append({"method": name, "n labelled": r["size"], "Spearman": r["spearman"]})
    from seqdiff.jobs.fewshot import spearman
    zs = {"zero-shot model": spearman(Z[lab_rows, 0], y), "BLOSUM62": spearman(Z[lab_rows, 1], y)}
    ss["fewshot"][domain] = {"wt": wt, "pred": pred, "curve": pd.DataFrame(curve), "zero": zs,
                             "lam": fs.fit_.lam, "design": fs.choice_.label([zcol.removeprefix("score_"), "BLOSUM62"]),
                             "n": n, "family": family_note, "zcol": zcol}


def _curve_chart(curve, zero):
    import altair as alt
    import pandas as pd
    agg = curve.groupby(["method", "n labelled"], as_index=False)["Spearman"].agg(["mean", "std"]).reset_index()
    agg = agg.rename(columns={"mean": "Spearman", "std": "sd"})
    base = alt.Chart(agg).encode(x=alt.X("n labelled:Q", scale=alt.Scale(type="log"), title="labelled variants"),
                                 color=alt.Color("method:N"))
    lines = base.mark_line(point=True).encode(y=alt.Y("Spearman:Q", title="Spearman on held-out measured"),
                                              tooltip=["method", "n labelled", alt.Tooltip("Spearman:Q", format="+.3f"),
                                                       alt.Tooltip("sd:Q", format=".3f")])
    ref = pd.DataFrame([{"method": k, "Spearman": v} for k, v in zero.items()])
    rules = alt.Chart(ref).mark_rule(strokeDash=[4, 4]).encode(y="Spearman:Q", color=alt.Color("method:N"),
                                                               tooltip=["method", alt.Tooltip("Spearman:Q",
                                                                                              format="+.3f")])
    return (lines + rules).properties(width=520, height=260)


def fewshot_section(domain, model, wt: str) -> None:
    """The few-shot / family block of the variant tab (domains whose app hints offer ``fewshot``)."""
    if not C.has_view(domain, "fewshot") or len(wt) > model.max_len:
        return  # the zero-shot section above already says what is wrong with the wild type
    ss.setdefault("fewshot", {})
    st.divider()
    st.markdown("**Measured variants and homologs: few-shot and family-aware predictions**")
    st.caption("Give measured variants (a CSV with a mutant column such as `A23G` or `A23G:K45R` and a "
               "measurement column such as `fitness`) and, optionally, the wild type's homologs. seqdiff fits a "
               "ridge regression on one-hot substitutions, per-site and per-letter effects, the model's score and "
               "BLOSUM62 (Hsu et al. 2022; which features, by cross-validation on your measurements), and predicts every single mutant with an uncertainty. Homologs fine-tune the "
               "model on the family first (EVmutation-weighted; a few minutes on a CPU, cached).")
    c1, c2 = st.columns(2)
    with c1:
        up = st.file_uploader("Measured variants (CSV/TSV)", type=["csv", "tsv", "txt"], key="fs_labels_up")
        st.text_area("…or paste them (CSV)", key="fs_labels_text", height=120,
                     placeholder="mutant,fitness\nI44A,-1.2\nK48R,0.3")
    with c2:
        hom = st.file_uploader("Homologs (optional: FASTA, A2M/A3M or Stockholm)",
                               type=["fa", "fasta", "a2m", "a3m", "sto", "stk", "txt"], key="fs_homologs_up")
        st.number_input("Fine-tuning steps (with homologs)", 10, 5000, 300, key="fs_steps")
    if st.button("Fit and predict", key="fs_fit", type="primary"):
        try:
            df, source = _labels_frame(up, ss.get("fs_labels_text", ""))
            hpath = _upload_path(hom) if hom is not None else None
            with st.spinner("Scoring and fitting…"):
                _fit(domain, model, wt, df, source, hpath)
        except Exception as e:  # noqa: BLE001 - bad input: a clear message
            st.error(f"Few-shot: {e}")
    res = ss["fewshot"].get(domain)
    if not res:
        return
    if res["wt"] != wt:
        st.warning("These predictions are for an earlier wild type; fit again to update them.")
    if res["family"]:
        st.info(res["family"])
    st.markdown(f"Fitted on **{res['n']}** measured variants: features {res['design']}, ridge strength "
                f"{res['lam']:.3g}, both chosen by leave-one-out cross-validation. Zero-shot Spearman on them: model {res['zero']['zero-shot model']:+.3f}, "
                f"BLOSUM62 {res['zero']['BLOSUM62']:+.3f}.")
    if len(res["curve"]):
        st.markdown("**Learning curve** (5 random splits per size; dashed: zero-shot)")
        st.altair_chart(_curve_chart(res["curve"], res["zero"]), width="content")
    else:
        st.caption("Too few measured variants for a learning curve (it needs at least 5).")
    pred = res["pred"]
    st.markdown("**Predicted effect of every single mutant** (higher = predicted fitter)")
    long = C.single_mutant_matrix(pred, "prediction", res["wt"], C.SCAN_ALPHABETS[domain])
    st.altair_chart(C.heatmap_chart(long, C.SCAN_ALPHABETS[domain], res["wt"]), width="content")
    view = pred.drop(columns=["num_mutations"]).round(4).sort_values("prediction", ascending=False, kind="stable")
    st.dataframe(view, hide_index=True, width="stretch")
    st.download_button("Download predictions (CSV)", C.csv_bytes(view), file_name="seqdiff_fewshot_predictions.csv",
                       mime="text/csv", key="dl_fewshot", on_click="ignore")
