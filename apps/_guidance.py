"""Steering in the design app: a reward menu for the current domain, an optional target range, strength λ
and method (best-of-N or SMC), or classifier guidance by the domain's shipped property predictor (target
range, strength γ); the guided run next to an unguided baseline of the same size, and the property
distribution of both (for classifier guidance the property measured on the outputs: GC content, RDKit QED
of the valid molecules)."""

from __future__ import annotations

import math
from typing import Any, Callable

from seqdiff.domains import get_domain
from seqdiff.guidance.rewards import REWARDS, parse_reward
from seqdiff.pretrained import PREDICTORS, predictor_names

__all__ = ["reward_choices", "method_choices", "build_spec", "check_steering", "check_classifier_guidance",
           "steering_expander", "guidance_settings", "property_values", "measured_values", "steering_results"]

# properties with natural bounds (the range inputs are clamped to them) and a starting range for the others
NATURAL_BOUNDS: dict[str, tuple[float, float]] = {
    "gc": (0.0, 1.0), "qed": (0.0, 1.0), "sa_ease": (0.0, 1.0), "motif": (0.0, 1.0), "has": (0.0, 1.0),
    "lacks": (0.0, 1.0)}
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "gc": (0.4, 0.6), "qed": (0.6, 1.0), "sa_ease": (0.6, 1.0), "motif": (0.9, 1.0), "has": (1.0, 1.0),
    "lacks": (1.0, 1.0), "logp": (1.0, 3.0), "mw": (250.0, 450.0), "hydrophobicity": (-0.5, 0.5)}
METHODS = ("best-of-N", "SMC")
CG = "classifier guidance"
#: the starting target range of classifier guidance by each shipped predictor
CG_RANGES: dict[str, tuple[float, float]] = {"gc": (0.6, 1.0), "qed": (0.9, 1.0)}
#: shipped predictor -> the reward that measures its property on the outputs
MEASURED = {"gc": "gc", "qed": "qed"}
ARG_EXAMPLES = {"motif": "a JASPAR id or name, e.g. TBP or CTCF", "has": "a SMARTS pattern, e.g. C(=O)O",
                "lacks": "a SMARTS pattern, e.g. [N+](=O)[O-]"}


def reward_choices(domain: str) -> list[str]:
    """The registered rewards that apply to ``domain`` (a user Python function is left to the CLI)."""
    return sorted(k for k, v in REWARDS.items() if v.domains is not None and domain in v.domains)


def method_choices(domain: str) -> tuple[str, ...]:
    """best-of-N and SMC, and classifier guidance where a predictor is shipped for the domain."""
    return METHODS + ((CG,) if predictor_names(domain) else ())


def _num(v: float) -> str:
    return repr(float(v))


def build_spec(name: str, arg: str | None = None, lo: float | None = None, hi: float | None = None,
               lam: float = 1.0) -> str:
    """The reward spec ``NAME[=ARG][@LO..HI][:λ]`` the CLI takes for the same settings."""
    s = name + (f"={arg}" if arg else "")
    if lo is not None or hi is not None:
        s += f"@{'' if lo is None else _num(lo)}..{'' if hi is None else _num(hi)}"
    return s + f":{_num(lam)}"


def check_steering(domain: str, s: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(spec, None)`` for usable settings, ``(None, message)`` with one clear line otherwise."""
    name = s["reward"]
    if name not in REWARDS:
        return None, f"unknown reward {name!r}"
    doms = REWARDS[name].domains
    if doms is not None and domain not in doms:
        return None, f"The reward {name!r} is for {'/'.join(doms)} models; this is a {domain} model."
    lo, hi = (s.get("lo"), s.get("hi")) if s.get("use_range") else (None, None)
    for v in (lo, hi):
        if v is not None and not math.isfinite(v):
            return None, "The target range must be finite numbers."
    if lo is not None and hi is not None and lo > hi:
        return None, f"Target range: the lower end ({lo:g}) is above the upper end ({hi:g})."
    lam = float(s.get("lam", 1.0))
    if not (math.isfinite(lam) and lam > 0):
        return None, f"Strength λ must be a positive number, got {lam:g}."
    n = s.get("n")
    if n is None or int(n) != n or n < 1 or (s.get("method") == "best-of-N" and n < 2):
        return None, "N (candidates per output) must be ≥ 2; particles ≥ 1."
    spec = build_spec(name, (s.get("arg") or "").strip() or None, lo, hi, lam)
    try:
        parse_reward(spec, domain)
    except (ValueError, OSError) as e:  # OSError: e.g. the JASPAR profiles are not installed
        return None, f"Reward: {e}"
    return spec, None


def check_classifier_guidance(domain: str, s: dict[str, Any], model=None, sampler: str | None = None
                              ) -> tuple[str | None, str | None]:
    """``(target "LO..HI", None)`` for usable classifier-guidance settings (``predictor``, ``lo``, ``hi``,
    ``gamma``), ``(None, message)`` otherwise; with ``model`` also checked against it (the predictor's
    vocabulary and noise process, the sampler)."""
    name, lo, hi, gamma = s.get("predictor"), s.get("lo"), s.get("hi"), s.get("gamma")
    if name not in predictor_names(domain):
        return None, (f"No shipped predictor {name!r} for {domain} models "
                      f"(shipped: {', '.join(predictor_names())}).")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None, "The target range must be finite numbers."
    if lo > hi:
        return None, f"Target range: the lower end ({lo:g}) is above the upper end ({hi:g})."
    if gamma is None or not (math.isfinite(gamma) and gamma > 0):
        return None, f"Strength γ must be a positive number, got {gamma if gamma is None else format(gamma, 'g')}."
    target = f"{_num(lo)}..{_num(hi)}"
    if model is not None:
        try:
            guidance_settings({"method": CG, "predictor": name, "target": target, "gamma": gamma}).check(model, sampler)
        except (ValueError, OSError) as e:
            return None, f"Classifier guidance: {e}"
    return target, None


def guidance_settings(steer: dict[str, Any]):
    """The :class:`~seqdiff.guidance.run.GuidanceSettings` of checked app settings."""
    from seqdiff.guidance.run import GuidanceSettings
    if steer["method"] == CG:  # first order: one predictor gradient per step, whatever the vocabulary
        return GuidanceSettings(classifier=steer["predictor"], target=steer["target"], guidance=float(steer["gamma"]),
                                classifier_method="first_order")
    if steer["method"] == "best-of-N":
        return GuidanceSettings(reward=steer["spec"], best_of=int(steer["n"]))
    return GuidanceSettings(reward=steer["spec"], particles=int(steer["n"]))


def steering_expander(st, domain: str, kept: Callable, remember: Callable, model=None,
                      sampler: str | None = None) -> tuple[dict | None, str | None]:
    """The "Steer towards a property" expander: ``(settings, None)`` when steering is on and usable,
    ``(None, message)`` when it is on but not usable, ``(None, None)`` when it is off. ``model`` and
    ``sampler``: what the run will use (classifier guidance is checked against them)."""
    choices = reward_choices(domain)
    methods = method_choices(domain)
    keys = [f"steer_on_{domain}"]
    with st.expander("Steer towards a property"):
        if not choices and len(methods) == len(METHODS):
            st.caption(f"No reward applies to {domain} models yet (a Python reward works from the command line: "
                       f"`seqdiff infill --reward py=module:function --best-of N`).")
            return None, None
        on = st.toggle("Steer generation", key=kept(f"steer_on_{domain}", False),
                       help="Off: plain sampling. On: every candidate is steered towards the property, and an "
                            "unguided baseline of the same size is generated to compare against.")
        mkey = f"steer_method_{domain}"
        if st.session_state.get(mkey, st.session_state["kept"].get(mkey)) not in methods:
            st.session_state.pop(mkey, None)
            st.session_state["kept"].pop(mkey, None)
        method = st.radio("Method", methods, key=kept(mkey, methods[0]), disabled=not on, horizontal=True,
                          help="best-of-N: draw N candidates per output and keep the one with the best reward. "
                               "SMC: sequential Monte Carlo with particles resampled along the way by the reward "
                               "of their denoised prediction, targeting p(x)·e^{λ r(x)}. Classifier guidance: "
                               "every sampler step is tilted towards the target by a property predictor trained "
                               "on noisy sequences of this model (shipped with seqdiff), no extra candidates.")
        keys.append(mkey)
        if method == CG:
            return _classifier_controls(st, domain, on, kept, remember, keys, model, sampler)
        if not choices:
            remember(*keys)
            st.caption(f"No reward applies to {domain} models.")
            return None, None
        rkey = f"steer_reward_{domain}"
        if st.session_state.get(rkey, st.session_state["kept"].get(rkey)) not in choices:
            st.session_state.pop(rkey, None)
            st.session_state["kept"].pop(rkey, None)
        c1, c2 = st.columns([2, 1])
        name = c1.selectbox("Property (reward)", choices, key=kept(rkey, choices[0]),
                            format_func=lambda k: f"{k}: {REWARDS[k].help}", disabled=not on)
        keys.append(rkey)
        arg = None
        if REWARDS[name].arg is not None:
            akey = f"steer_arg_{domain}_{name}"
            arg = c2.text_input(f"Argument ({REWARDS[name].arg})", key=kept(akey, ""), disabled=not on,
                                 placeholder=ARG_EXAMPLES.get(name))
            keys.append(akey)
        ukey, lkey, hkey = (f"steer_range_{domain}_{name}", f"steer_lo_{domain}_{name}", f"steer_hi_{domain}_{name}")
        lo0, hi0 = DEFAULT_RANGES.get(name, (0.0, 1.0))
        use_range = st.checkbox("Target range (otherwise: as high as possible)", key=kept(ukey, False),
                                disabled=not on,
                                help="Inside the range the reward is 0; outside it is minus the distance to "
                                     "the range, so candidates are pulled into it.")
        keys.append(ukey)
        lo = hi = None
        if use_range:
            lo, hi = _range_inputs(st, name, on, kept, lkey, hkey, lo0, hi0)
            keys += [lkey, hkey]
        m2, m3 = st.columns(2)
        n = int(m2.number_input("N" if method == METHODS[0] else "Particles", 1, 256,
                                key=kept(f"steer_n_{domain}", 8), disabled=not on,
                                help="Candidates drawn per output (best-of-N) or particles per output (SMC); "
                                     "the work grows in proportion."))
        lam = float(m3.number_input("Strength λ", 0.0, 1000.0, step=0.5, key=kept(f"steer_lam_{domain}", 1.0),
                                    disabled=not on,
                                    help="SMC targets p(x)·e^{λ r(x)}: larger λ, stronger steering (less "
                                         "diversity). Best-of-N keeps the best of N whatever λ is."))
        keys += [f"steer_n_{domain}", f"steer_lam_{domain}"]
        remember(*keys)
        if not on:
            return None, None
        st.caption(f"ℹ️ Steering multiplies the sampling work by {n} and also generates an unguided baseline of "
                   f"the same number of candidates (same template, sampler, steps) to compare against.")
        s = {"reward": name, "arg": arg, "use_range": use_range, "lo": lo, "hi": hi, "lam": lam, "method": method,
             "n": n}
        spec, err = check_steering(domain, s)
        if err is not None:
            st.error(err)
            return None, err
        st.caption(f"Command-line equivalent: `--reward '{spec}' "
                   f"{'--best-of' if method == METHODS[0] else '--particles'} {n}`")
        return dict(s, spec=spec), None


def _range_inputs(st, name: str, on: bool, kept: Callable, lkey: str, hkey: str, lo0: float, hi0: float
                  ) -> tuple[float, float]:
    """Two number inputs (from, to), clamped to the property's natural bounds where it has them."""
    bounds = NATURAL_BOUNDS.get(name)
    r1, r2 = st.columns(2)
    step = 0.01 if bounds else 0.1
    lim = dict(min_value=bounds[0], max_value=bounds[1]) if bounds else {}
    note = f" (between {bounds[0]:g} and {bounds[1]:g})" if bounds else ""
    lo = float(r1.number_input(f"From{note}", step=step, key=kept(lkey, float(lo0)), disabled=not on, **lim))
    hi = float(r2.number_input(f"To{note}", step=step, key=kept(hkey, float(hi0)), disabled=not on, **lim))
    return lo, hi


def _classifier_controls(st, domain: str, on: bool, kept: Callable, remember: Callable, keys: list[str], model,
                         sampler) -> tuple[dict | None, str | None]:
    """Classifier guidance: the shipped predictor of the domain, a target range, strength γ."""
    names = predictor_names(domain)
    pkey = f"steer_pred_{domain}"
    if st.session_state.get(pkey, st.session_state["kept"].get(pkey)) not in names:
        st.session_state.pop(pkey, None)
        st.session_state["kept"].pop(pkey, None)
    pred = st.selectbox("Property (shipped predictor)", names, key=kept(pkey, names[0]), disabled=not on,
                        format_func=lambda k: f"{k}: {PREDICTORS[domain, k][0]}, predicted from noisy sequences",
                        help="A small network trained on noisy sequences of the shipped model's noise process "
                             "to predict the property; its gradient steers each step (first order).")
    lkey, hkey, gkey = f"steer_cg_lo_{domain}_{pred}", f"steer_cg_hi_{domain}_{pred}", f"steer_gamma_{domain}"
    st.caption("Target range of the property")
    lo, hi = _range_inputs(st, pred, on, kept, lkey, hkey, *CG_RANGES.get(pred, (0.0, 1.0)))
    gamma = float(st.number_input("Strength γ", 0.0, 100.0, step=0.5, key=kept(gkey, 2.0), disabled=not on,
                                  help="Each step samples from p(x)·p(target | x)^γ: 1 = the conditional model "
                                       "the predictor implies, larger = stronger (further from the data)."))
    keys += [pkey, lkey, hkey, gkey]
    remember(*keys)
    if not on:
        return None, None
    st.caption("ℹ️ Classifier guidance adds one predictor gradient per sampler step (no extra candidates) and "
               "also generates an unguided baseline of the same number of candidates to compare against.")
    s = {"method": CG, "predictor": pred, "lo": lo, "hi": hi, "gamma": gamma}
    target, err = check_classifier_guidance(domain, s, model, sampler)
    if err is not None:
        st.error(err)
        return None, err
    spec = f"--classifier {pred} --target {target} --guidance {gamma:g} --classifier-method first_order"
    st.caption(f"Command-line equivalent: `{spec}`")
    return dict(s, target=target, spec=spec), None


def property_values(spec: str, domain: str, seqs: list[str]) -> list[float]:
    """The property itself (no range transform) of each sequence."""
    return [float(v) for v in parse_reward(spec, domain).raw(seqs)]


def measured_values(steer: dict[str, Any], domain: str, seqs: list[str]) -> list[float | None]:
    """The property a run was steered towards, measured on each output: the reward's raw value, or for
    classifier guidance the property the predictor estimates (GC content; RDKit QED), ``None`` for an
    invalid sequence (a SMILES RDKit cannot parse)."""
    if steer["method"] != CG:
        return property_values(steer["spec"], domain, seqs)
    reward = parse_reward(MEASURED[steer["predictor"]], domain)
    dom = get_domain(domain)  # a domain with a `valid` column (SMILES) scores its valid outputs only
    ok = ([bool(dom.sample_metrics(x)["valid"]) for x in seqs] if "valid" in dom.sample_columns
          else [True] * len(seqs))
    vals = iter(float(v) for v in reward.raw([x for x, k in zip(seqs, ok) if k]))
    return [next(vals) if k else None for k in ok]


def steering_results(st, res: dict[str, Any]) -> None:
    """Guided vs baseline: mean property of each, and an Altair box/strip plot of both distributions."""
    steer = res.get("steer")
    if not steer:
        return
    import altair as alt
    import pandas as pd

    name, g, b = steer["name"], steer["guided"], steer["baseline"]
    cg = steer["method"] == CG
    if cg:
        st.markdown(f"**Classifier guidance towards {name} in {steer['target']}** (shipped `{steer['predictor']}` "
                    f"predictor, γ = {steer['gamma']:g}) · {name} measured on the candidates"
                    f"{' (valid molecules, RDKit)' if 'valid_guided' in steer else ''} against an unguided "
                    f"baseline of the same size")
    else:
        st.markdown(f"**Steering towards `{steer['spec']}`** ({steer['method']}, {steer['n']}) · property "
                    f"distribution of the candidates against an unguided baseline of the same size")
    mg, mb = (sum(g) / len(g) if g else float("nan")), (sum(b) / len(b) if b else float("nan"))
    c = st.columns(4 if "valid_guided" in steer else 3)
    if "valid_guided" in steer:
        c[3].metric("Valid, guided vs baseline", f"{steer['valid_guided']:.0%} vs {steer['valid_baseline']:.0%}")
    c[0].metric(f"Mean {name}, guided", f"{mg:.3f}")
    c[1].metric(f"Mean {name}, baseline", f"{mb:.3f}")
    lo, hi = steer.get("lo"), steer.get("hi")
    if lo is not None or hi is not None:
        def inside(v):
            return (lo is None or v >= lo) and (hi is None or v <= hi)
        fg = sum(map(inside, g)) / max(len(g), 1)
        fb = sum(map(inside, b)) / max(len(b), 1)
        c[2].metric("In the target range, guided vs baseline", f"{fg:.0%} vs {fb:.0%}")
    df = pd.DataFrame({"run": ["guided"] * len(g) + ["baseline"] * len(b), name: list(g) + list(b)})
    base = alt.Chart(df)
    box = base.mark_boxplot(extent="min-max", opacity=0.5).encode(
        y=alt.Y("run:N", title=None, sort=["guided", "baseline"]), x=alt.X(f"{name}:Q", scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", legend=None))
    pts = base.mark_tick(opacity=0.6, thickness=1).encode(
        y=alt.Y("run:N", sort=["guided", "baseline"]), x=f"{name}:Q", color=alt.Color("run:N", legend=None))
    means = pd.DataFrame({"run": ["guided", "baseline"], "mean": [mg, mb]})
    rule = alt.Chart(means).mark_point(shape="diamond", size=120, filled=True, color="black").encode(
        y=alt.Y("run:N", sort=["guided", "baseline"]), x="mean:Q", tooltip=["run", alt.Tooltip("mean:Q", format=".3f")])
    st.altair_chart((box + pts + rule).properties(height=160), width="stretch")
    if cg:
        st.caption("Boxes: min, quartiles, max; ticks: each candidate; diamonds: the means. The candidates table has "
                   f"a `{name}` column (the property, measured" + (", valid molecules only)." if "valid_guided" in steer
                                                                  else ")."))
    else:
        st.caption("Boxes: min, quartiles, max; ticks: each candidate; diamonds: the means. The candidates table has "
                   f"a `{name}` column (the property) and a `reward` column (what steering maximised).")
