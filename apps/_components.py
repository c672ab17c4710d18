"""The logic behind the design app (``apps/design.py``), free of Streamlit so it can be tested alone.

* model choices: the shipped defaults plus the ``SEQDIFF_APP_MODELS`` overrides;
* :class:`GenerationJob`: infilling in a background thread with progress and a cancel flag;
* :func:`generate_candidates`: the same candidates as :func:`seqdiff.jobs.generate.infill` (same seed,
  same output) but reporting progress after every sampler step, so a long run can be cancelled
  between two steps rather than between two batches;
* template helpers: the live preview, the "mark region" helper;
* tables, downloads (FASTA / SMILES / text / CSV), sequence logos and the mutational-scan heatmap.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from seqdiff.domains import domains as _registry
from seqdiff.domains import get_domain

#: The domain menu, its labels and example templates: from the domain registry (seqdiff.domains).
DOMAINS = tuple(sorted((d.name for d in _registry().values() if d.app is not None),
                       key=lambda n: _registry()[n].app.menu_position))
DOMAIN_LABELS = {n: _registry()[n].app.label for n in DOMAINS}

#: ``domain=path`` pairs (comma, semicolon or newline separated) or a JSON object; a path of
#: ``none`` (or empty) hides that domain's shipped model.
MODELS_ENV = "SEQDIFF_APP_MODELS"
#: ``auto`` (default: CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
DEVICE_ENV = "SEQDIFF_APP_DEVICE"


#: Example templates, one per domain, from the domain registry (``AppHints.template``), chosen for the
#: shipped models (what each was trained on: configs/pretrained/, datasets/README.md); window models get a
#: free span in front (DNA) or behind (text) that fills their training window (:func:`default_template`).
DEFAULT_TEMPLATES = {n: _registry()[n].app.template for n in DOMAINS}

def _hints(domain: str):
    """The domain's app hints (``AppHints``), or ``None`` for a domain without them."""
    reg = _registry()
    return reg[domain].app if domain in reg else None


def design_defaults(domain: str, model=None) -> dict:
    """The starting settings of a domain's design tab: count, steps, sampler and a small batch size
    (so that candidates stream in as each batch finishes and the first ones appear within seconds on
    2 CPU cores with the shipped models; benchmarks/bench_app.py measures it) from the domain registry
    (``AppHints``), 8 ELBO time points; steps never exceed the model's own."""
    hints = _hints(domain)
    out = {"num": hints.count if hints else 16, "steps": hints.steps if hints else 64,
           "sampler": hints.sampler if hints else None, "batch_size": hints.batch_size if hints else 4, "n_t": 8}
    own = getattr(getattr(getattr(model, "cfg", None), "sampling", None), "steps", None)
    if own:
        out["steps"] = min(out["steps"], int(own))
    return out


#: Example wild types for the variant tab, residues of single-mutant scans and of sequence logos
#: (``AppHints.wild_type``, ``letters`` and ``views``).
DEFAULT_WILD_TYPES = {n: _registry()[n].app.wild_type for n in DOMAINS if _registry()[n].app.wild_type}
SCAN_ALPHABETS = {n: _registry()[n].app.letters for n in DOMAINS if "scan" in _registry()[n].app.views}
LOGO_ALPHABETS = {n: _registry()[n].app.letters for n in DOMAINS if "logo" in _registry()[n].app.views}


def has_view(domain: str, view: str) -> bool:
    """Whether the domain's app hints offer a result view (``AppHints.views``)."""
    hints = _hints(domain)
    return hints is not None and view in hints.views


#: Longest position window of a "scan all single mutants" run.
MAX_SCAN_POSITIONS = 100


# ================================================================ models
@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu."""

    label: str
    kind: str  # "shipped" | "configured" | "path" | "upload"
    path: Path | None = None


def configured_models(env: str | None = None) -> dict[str, Path | None]:
    """``SEQDIFF_APP_MODELS`` parsed: domain -> path (``None``: hide the shipped model).

    Raises ``ValueError`` for a malformed value or an unknown domain.
    """
    raw = os.environ.get(MODELS_ENV, "") if env is None else env
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            items = list(json.loads(raw).items())
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"{MODELS_ENV}: not a JSON object ({e})") from None
    else:
        items = []
        for part in re.split(r"[,;\n]", raw):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"{MODELS_ENV}: expected domain=path, got {part.strip()!r}")
            k, v = part.split("=", 1)
            items.append((k, v))
    out: dict[str, Path | None] = {}
    for k, v in items:
        dom = str(k).strip().lower()
        if dom not in DOMAINS:
            raise ValueError(f"{MODELS_ENV}: unknown domain {dom!r} (expected {', '.join(DOMAINS)})")
        v = "" if v is None else str(v).strip()
        out[dom] = None if v.lower() in ("", "none") else Path(v).expanduser()
    return out


def model_choices(domain: str, env: str | None = None) -> tuple[list[ModelChoice], str | None]:
    """The model menu of a domain and, when the shipped model is missing, a message saying so."""
    from seqdiff.pretrained import available

    conf = configured_models(env)
    choices: list[ModelChoice] = []
    missing = None
    shipped = available().get(domain)
    hidden = domain in conf and conf[domain] is None
    configured = conf.get(domain)
    if configured is not None:  # the administrator's choice comes first
        choices.append(ModelChoice(f"Configured: {configured}", "configured", configured))
    if shipped is not None and not hidden:
        choices.append(ModelChoice(f"Shipped {domain} model ({shipped.name})", "shipped", shipped))
    elif configured is not None:
        pass  # a configured model stands in for the missing shipped one
    elif not hidden:
        missing = (f"The shipped {domain} model is not in this installation (seqdiff/pretrained/{domain}.pt "
                   f"is missing). Train it with `seqdiff train -c configs/pretrained/{domain}.yaml` and copy "
                   f"`runs/pretrained-{domain}/model.pt` there, or pick a model file below.")
    else:
        missing = f"No shipped {domain} model here (hidden by {MODELS_ENV}): pick a model file below."
    choices.append(ModelChoice("A model file on this computer (path)", "path"))
    choices.append(ModelChoice("Upload a model file", "upload"))
    return choices, missing


def resolve_device(value: str | None = None) -> str:
    value = (value or os.environ.get(DEVICE_ENV, "auto")).strip() or "auto"
    if value == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return value


def is_window_model(model) -> bool:
    """Trained on fixed-length windows (no length distribution): every training example had max_len positions."""
    hist = getattr(model, "length_histogram", None)
    return not hist or sum(hist[1:]) == 0


def default_template(domain: str, model) -> str:
    """The example template of a domain, padded with a free span to fill a window model's length
    (before the promoter elements for DNA, after the text for text)."""
    from seqdiff.jobs.template import parse_template

    text = DEFAULT_TEMPLATES[domain]
    try:
        longest = parse_template(text, model.tokenizer, domain=domain).max_length
    except ValueError:
        return text
    hints = _hints(domain)
    if hints is None:
        return text
    short = hints.short_template
    if short is not None and model.max_len < longest:  # a short-window model: the template's short form
        fixed = parse_template(short.format(free=0), model.tokenizer, domain=domain).max_length
        if fixed < model.max_len:
            text, longest = short.format(free=model.max_len - fixed), model.max_len
    if not is_window_model(model) or hints.window_fill is None:
        return text
    extra = model.max_len - longest
    if extra <= 0:
        return text
    span = hints.span_format.format(n=extra)
    return span + text if hints.window_fill == "before" else text + span


def window_hint(model) -> str | None:
    """A note for models trained on fixed-length windows (no length distribution)."""
    if is_window_model(model):
        return (f"This model was trained on windows of exactly {model.max_len} positions: "
                f"templates that fill the whole window match its training best.")
    return None


# ================================================================ templates
TEMPLATE_CSS = """
<style>
.sd-seq {font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92rem;
         word-break: break-all; white-space: pre-wrap; line-height: 1.6; margin: 0.1rem 0;}
.sd-seq .fixed {background: #ffd54f; color: #3e2723; font-weight: 700; border-radius: 2px;}
.sd-seq .generated {color: #1a237e;}
.sd-seq .free {background: #e3f2fd; color: #0d47a1; border: 1px dashed #64b5f6; border-radius: 3px;
               padding: 0 0.25em; font-style: italic;}
.sd-seq .sd-id {color: #757575; display: inline-block; min-width: 6.5em; user-select: none;}
.sd-seq .sd-score {color: #757575; font-size: 0.8rem; padding-left: 0.6em; user-select: none;}
.sd-legend span {padding: 0 0.35em; margin-right: 0.6em; border-radius: 2px;}
</style>
"""


def template_preview_html(tmpl) -> str:
    """Fixed letters highlighted, free spans shown as ``[k]`` / ``[a–b]`` boxes."""
    from seqdiff.jobs.template import Fixed

    parts = []
    for s in tmpl.segments:
        if isinstance(s, Fixed):
            parts.append(f'<span class="fixed">{html.escape(tmpl.tokenizer.decode(s.ids))}</span>')
        else:
            n = f"{s.min_len}" if s.min_len == s.max_len else f"{s.min_len}–{s.max_len}"
            parts.append(f'<span class="free" title="free positions">{n} free</span>')
    return f'<div class="sd-seq" id="sd-template-preview">{"".join(parts)}</div>'


def template_summary(tmpl, model_max_len: int) -> str:
    """One sentence: lengths, fixed positions (1-based) when the layout is fixed."""
    free = tmpl.free_segments
    lo, hi = tmpl.min_length, tmpl.max_length
    length = f"{lo}" if lo == hi else f"{lo}–{hi}"
    out = (f"Output length {length} (the model allows up to {model_max_len}); "
           f"{tmpl.num_fixed} fixed positions, {len(free)} free span{'s' if len(free) != 1 else ''}")
    if all(s.min_len == s.max_len for s in free):
        spans = tmpl.fixed_spans_for([s.min_len for s in free])
        where = ", ".join(f"{a + 1}" if b - a == 1 else f"{a + 1}–{b}" for a, b in spans)
        if where:
            out += f"; fixed at positions {where}"
    return out + "."


def template_error_text(err) -> tuple[str, str | None]:
    """(message, caret context) of a TemplateError or another ValueError."""
    ctx = err.context() if hasattr(err, "context") and getattr(err, "position", None) else None
    return str(err), ctx


def _escape_fixed(text: str, domain: str) -> str:
    if not _registry()[domain].template.bracket_spans:  # SMILES: [...] is an atom, \\ a bond
        return text
    return "".join("\\" + c if c in "?{[\\" else c for c in text)


def clean_pasted(seq: str, domain: str) -> str:
    """A pasted sequence: FASTA header lines dropped; whitespace removed for DNA/protein/SMILES."""
    lines = [ln for ln in seq.replace("\r", "").split("\n") if not ln.startswith(">")]
    if _registry()[domain].join_lines:  # text: lines are one stream
        return " ".join(ln.strip() for ln in lines if ln.strip())
    return "".join("".join(lines).split())


def region_units(seq: str, domain: str, tokenizer) -> list[str]:
    """The units positions count: letters (DNA, protein, text) or SMILES tokens.

    Raises ``ValueError`` (a tokenizer error naming the position) for letters the model lacks.
    """
    ids = tokenizer.encode(seq)
    hints = _hints(domain)
    if hints is not None and hints.units == "tokens":
        return [tokenizer.id_to_token(i) for i in ids]
    if len(ids) != len(seq):
        raise ValueError(f"the sequence has {len(seq)} letters but encodes to {len(ids)} tokens")
    return list(seq)


def _span(k_lo: int, k_hi: int, domain: str) -> str:
    if k_hi <= 0:
        return ""
    n = f"{k_lo}" if k_lo == k_hi else f"{k_lo}-{k_hi}"
    hints = _hints(domain)
    return (hints.span_format if hints is not None else "{{{n}}}").format(n=n)


def mark_region_template(seq: str, start: int, end: int, domain: str, tokenizer, slack: int = 0) -> str:
    """The template keeping units ``start..end`` (1-based, inclusive) of ``seq`` fixed and the rest free.

    ``slack`` lets each free flank vary by that many positions either way (a region that starts or ends
    the sequence gets no flank on that side).
    """
    units = region_units(seq, domain, tokenizer)
    n = len(units)
    if n == 0:
        raise ValueError("paste a sequence first")
    if not 1 <= start <= end <= n:
        raise ValueError(f"the region must satisfy 1 ≤ start ≤ end ≤ {n} (the sequence length), "
                         f"got {start}–{end}")
    slack = max(int(slack), 0)
    left, right = start - 1, n - end
    motif = _escape_fixed("".join(units[start - 1:end]), domain)
    flank = lambda k: _span(max(k - slack, 0), k + slack, domain) if k > 0 else ""  # noqa: E731
    return flank(left) + motif + flank(right)


# ================================================================ generation
class JobCancelled(Exception):
    """Raised from a progress callback when the user pressed cancel."""


@dataclass
class GenerationJob:
    """A generation running in a background thread.

    ``state``: ``running`` → ``done`` | ``cancelled`` | ``error``. The worker reports progress through
    :meth:`report`, which raises :class:`JobCancelled` once :meth:`cancel` was called.
    """

    domain: str
    settings: dict[str, Any]
    state: str = "running"
    fraction: float = 0.0
    message: str = "starting"
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    collected: bool = False
    #: ``alive()`` is False once the browser session that started the job has ended; the job is then
    #: cancelled at its next progress report, after ``grace`` seconds (a reconnect within them keeps it)
    alive: Callable[[], bool] | None = field(default=None, repr=False)
    grace: float = 3.0
    cancel_reason: str | None = None
    _gone_since: float | None = field(default=None, repr=False)
    #: candidates of the batches finished so far, in generation order (their ELBO is filled in when
    #: their batch has been scored: ``scored`` counts those)
    partial: list = field(default_factory=list)
    scored: int = 0
    #: when the first candidates arrived (seconds after ``started``)
    first_after: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_batch(self, cands: list, scored: bool) -> None:
        """``on_batch`` of :func:`generate_candidates`: a batch sampled (``scored`` False) or scored."""
        with self._lock:
            if scored:
                self.scored += len(cands)
            else:
                if self.first_after is None:
                    self.first_after = time.time() - self.started
                self.partial = self.partial + list(cands)

    def snapshot(self) -> tuple[list, int]:
        with self._lock:
            return list(self.partial), self.scored

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the progress so far (None until there is enough of it)."""
        f = self.fraction
        if not self.running or f < 0.02:
            return None
        return self.elapsed * (1.0 - f) / f

    def start(self, work: Callable[["GenerationJob"], Any]) -> "GenerationJob":
        def run() -> None:
            try:
                self.result = work(self)
                self.state = "done"
                self.fraction = 1.0
                self.message = "done"
            except JobCancelled:
                self.state = "cancelled"
            except Exception as e:  # noqa: BLE001 - shown in the app, never raised into it
                self.error = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
                self.state = "error"
            finally:
                self.finished = time.time()

        self._thread = threading.Thread(target=run, name=f"seqdiff-app-{self.domain}", daemon=True)
        self._thread.start()
        return self

    def report(self, fraction: float, message: str) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self.message = message
        if self.alive is not None and not self._cancel.is_set():
            if self.alive():
                self._gone_since = None
            elif self._gone_since is None:
                self._gone_since = time.time()
            elif time.time() - self._gone_since >= self.grace:
                self.cancel_reason = "the browser session ended"
                self._cancel.set()
                print(f"seqdiff app: {self.domain} generation cancelled: {self.cancel_reason}", file=sys.stderr,
                      flush=True)
        if self._cancel.is_set():
            raise JobCancelled()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self.state == "running"

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started


def session_alive_check() -> Callable[[], bool] | None:
    """``alive()`` for the browser session running this script: False once its tab is closed (its
    connection gone). ``None`` outside a served app (e.g. under AppTest)."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:
        return None
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def generate_candidates(model, template, num: int, *, sampler: str | None = None, steps: int | None = None,
                        seed: int = 0, n_t: int = 8, batch_size: int = 64,
                        sampler_options: dict | None = None,
                        report: Callable[[float, str], None] | None = None,
                        on_batch: Callable[[list, bool], None] | None = None, guidance=None):
    """Infill ``num`` candidates, scored by the ELBO bound, in generation order.

    :func:`seqdiff.jobs.generate.infill` with ELBO scores (not sorted: the table sorts), reporting
    ``report(fraction, message)`` after every sampler step and handing each batch to
    ``on_batch(candidates, scored)`` as soon as it is sampled and again once it is scored.
    ``guidance``: :class:`seqdiff.guidance.run.GuidanceSettings` steering the run (``None``: plain).
    """
    from seqdiff.jobs.generate import infill

    def on_step(b: int, n_batches: int, i: int, n: int) -> None:
        if report is not None:
            report((b + 0.9 * i / max(n, 1)) / n_batches, f"batch {b + 1}/{n_batches}: sampler step {i}/{n}")

    if report is not None:
        report(0.0, "starting")
    cands = infill(model, template, num, sampler=sampler, steps=steps, seed=seed, n_t=n_t, batch_size=batch_size,
                   sampler_options=sampler_options, score=True, step_progress=on_step, on_batch=on_batch,
                   guidance=guidance)
    if report is not None:
        report(1.0, "done")
    return cands


def format_seconds(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def progress_text(job: "GenerationJob") -> str:
    """The line beside the progress bar: what runs, time so far and the estimate of what is left."""
    n_now, _ = len(job.partial), job.scored
    eta = job.eta()
    left = "estimating the time left…" if eta is None else f"about {format_seconds(eta)} left"
    got = f" · {n_now} of {job.settings['num']} candidates so far" if n_now else ""
    return (f"Generating {job.settings['num']} {job.domain} candidates · {job.message}{got} · "
            f"{format_seconds(job.elapsed)} elapsed, {left}")


def usable_samplers(model) -> list[str]:
    """The samplers that can run this model (masked-only ones need the absorbing process)."""
    from seqdiff.diffusion import SAMPLERS, Absorbing
    from seqdiff.diffusion.samplers import MASKED_ONLY
    masked = isinstance(model.process, Absorbing)
    names = []
    for name in SAMPLERS:
        if name == "multinomial" and model.cfg.diffusion.loss != "multinomial":
            continue
        if name != "multinomial" and model.cfg.diffusion.loss == "multinomial":
            continue
        if name in MASKED_ONLY and not masked:
            continue
        names.append(name)
    return names


def sampler_option_widgets(container, sampler: str, model, key: str, *, kept=None, remember=None) -> dict:
    """One widget per option of ``sampler`` (from its declaration), preset to the model's recorded
    settings when it is the model's own sampler; options left at "off" are not returned.

    ``kept(widget_key, default)`` / ``remember(widget_key)`` (the app's) keep the values while the
    widgets are off the page; without them the widgets start from the preset every time they appear.
    """
    from seqdiff.diffusion import SAMPLERS
    preset = model.sampler_options(sampler)
    values = {}
    # left to the CLI and recipes: cache/final (no effect on what a designer gets), the polish
    # temperature (its 0 is a value, not "off"); repair only where the domain has a validity check
    hidden = {"cache", "final", "polish_temperature"}
    if get_domain(model.domain).syntax_suspects is None:
        hidden.add("repair")
    opts = {k: o for k, o in SAMPLERS[sampler].options().items() if k not in hidden}
    cols = container.columns(max(len(opts), 1))
    for col, (name, opt) in zip(cols, opts.items()):
        label = name.replace("_", " ").capitalize()
        value = preset.get(name, opt.default)
        wkey = f"opt_{name}_{sampler}_{key}"
        if opt.choices:
            start = value
        elif opt.type is float:
            start = float(value or 0.0)
        elif opt.type is int:
            start = int(value or 0)
        elif opt.type is bool:
            start = bool(value)
        else:
            continue
        if kept is not None:
            kw = {"key": kept(wkey, start)}
        elif opt.choices:
            kw = {"key": wkey, "index": list(opt.choices).index(start)}
        else:
            kw = {"key": wkey, "value": start}
        if opt.choices:
            values[name] = col.selectbox(label, list(opt.choices), help=opt.help, **kw)
        elif opt.type is float:
            off = opt.default is None
            v = col.number_input(label, min_value=0.0, step=0.05, help=opt.help + (" (0 = off)" if off else ""), **kw)
            values[name] = None if off and v == 0 else float(v)
        elif opt.type is int:
            v = col.number_input(label, min_value=0, step=1, help=opt.help + " (0 = off)", **kw)
            values[name] = None if v == 0 else int(v)
        else:
            values[name] = col.checkbox(label, help=opt.help, **kw)
        if remember is not None:
            remember(wkey)
    return {k: v for k, v in values.items() if v is not None}


# ================================================================ results
def candidates_frame(cands, domain: str):
    """One row per candidate (generation order)."""
    import pandas as pd

    rows = []
    for c in cands:
        r = {"id": c.id, "sequence": c.sequence, "length": len(c.ids),
             "bits_per_token": None if c.bits_per_token is None else round(c.bits_per_token, 4),
             "nll_nats": None if c.nll_nats is None else round(c.nll_nats, 3),
             "nll_stderr": None if c.nll_stderr is None else round(c.nll_stderr, 3),
             "fixed": sum(map(bool, c.fixed)),
             "span_lengths": ",".join(map(str, c.span_lengths))}
        for k, v in c.metrics.items():  # the domain's own per-sequence columns (SMILES validity, GC, ...)
            r[k] = bool(v) if k == "valid" else v
        rows.append(r)
    return pd.DataFrame(rows)


SORT_KEYS = {
    "bits per token (best first)": ("bits_per_token", True),
    "NLL bound, nats (best first)": ("nll_nats", True),
    "length": ("length", True),
    "GC content": ("gc", True),
    "generation order": ("order", True),
}


def filter_sort(df, *, valid_only: bool = False, max_bits: float | None = None, pattern: str | None = None,
                sort_by: str = "bits per token (best first)", descending: bool = False):
    """The shown rows. Raises ``ValueError`` for a bad regular expression."""
    out = df.copy()
    out["order"] = range(1, len(out) + 1)
    if valid_only and "valid" in out:
        out = out[out["valid"]]
    if max_bits is not None:
        out = out[out["bits_per_token"] <= max_bits]
    if pattern:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {pattern!r} ({e})") from None
        out = out[[bool(rx.search(s)) for s in out["sequence"]]]
    col, asc = SORT_KEYS.get(sort_by, ("bits_per_token", True))
    if col not in out:
        col = "bits_per_token"
    out = out.sort_values(col, ascending=asc != descending, kind="stable", na_position="last")
    return out.drop(columns=["order"]).reset_index(drop=True)


def candidate_html(c, tokenizer, *, score: float | None = None) -> str:
    from seqdiff.jobs.template import render

    body = render(c.ids, c.fixed, tokenizer, style="html")
    sc = f'<span class="sd-score">{score:.3f} bits/token</span>' if score is not None else ""
    return f'<div class="sd-seq"><span class="sd-id">{html.escape(c.id)}</span>{body}{sc}</div>'


def sequence_file(df, domain: str) -> tuple[bytes, str, str]:
    """``(data, file extension, mime)`` of the shown candidates in the domain's format."""
    from seqdiff.jobs.generate import format_record, sequence_format

    fmt = sequence_format(domain)
    out = []
    for _, r in df.iterrows():
        seq = str(r["sequence"])
        desc = f"bits_per_token={r['bits_per_token']}" if r.get("bits_per_token") is not None else ""
        out.append(format_record(fmt, r["id"], seq.replace("\n", " ") if fmt == "txt" else seq,
                                 desc if fmt == "fasta" else ""))
    ext, mime = {"fasta": (".fa", "text/x-fasta"), "smi": (".smi", "chemical/x-daylight-smiles"),
                 "txt": (".txt", "text/plain")}[fmt]
    return "".join(out).encode(), ext, mime


def csv_bytes(df) -> bytes:
    return df.to_csv(index=False).encode()


def _normalised_counts(rows: Sequence[Sequence[str | None]], alphabet: str, n: int):
    import pandas as pd

    letters = list(alphabet)
    L = max((len(r) for r in rows), default=0)
    table = pd.DataFrame(0.0, index=range(1, L + 1), columns=letters)
    for r in rows:
        for i, ch in enumerate(r):
            if ch is not None and ch in table.columns:
                table.iat[i, letters.index(ch)] += 1
    return table / max(n, 1)


def length_group_logos(seqs: Sequence[str], alphabet: str) -> list[tuple[int, Any, str]]:
    """Per length group (most candidates first): ``(length, frequency table, note)``; every candidate
    is in exactly one group, nothing is aligned across lengths."""
    seqs = [s.upper() for s in seqs if s]
    if not seqs:
        raise ValueError("no sequences to draw")
    groups = Counter(len(s) for s in seqs)
    out = []
    for L, n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        use = [s for s in seqs if len(s) == L]
        out.append((L, _normalised_counts(use, alphabet, n), f"the {n} candidate{'s' if n != 1 else ''} of length {L}"))
    return out


def template_logo_counts(cands: Sequence[Any], tmpl, alphabet: str) -> tuple[Any, list[tuple[int, int]], str]:
    """A logo table over all ``cands``, aligned by template position, with the fixed columns.

    Every template segment gets its own block of columns: a fixed segment its letters, a free span as
    many columns as its longest drawn length among ``cands``. A span is left-aligned in its block
    (the first letter after the preceding fixed letters), except a free span that starts the template,
    which is right-aligned against the letters after it. A column's height is the fraction of the
    candidates with a letter there (lower where shorter spans leave it empty).
    Returns ``(table, fixed_ranges (1-based, inclusive), note)``; raises ``ValueError`` when the
    candidates do not match the template.
    """
    from seqdiff.jobs.template import Fixed

    cands = list(cands)
    if not cands:
        raise ValueError("no sequences to draw")
    segs = list(tmpl.segments)
    n_free = sum(not isinstance(sg, Fixed) for sg in segs)
    for c in cands:
        if (len(c.span_lengths) != n_free or len(c.sequence) != len(c.ids)
                or tmpl.num_fixed + sum(c.span_lengths) != len(c.ids)):
            raise ValueError("the candidates do not follow the template letter by letter")
    widths, j = [], 0
    for sg in segs:
        if isinstance(sg, Fixed):
            widths.append(len(sg.ids))
        else:
            widths.append(max(c.span_lengths[j] for c in cands))
            j += 1
    total = sum(widths)
    rows, variable = [], False
    for c in cands:
        row: list[str | None] = [None] * total
        pos = col = j = 0
        seq = c.sequence.upper()
        for si, sg in enumerate(segs):
            if isinstance(sg, Fixed):
                k, off = widths[si], 0
            else:
                k = c.span_lengths[j]
                j += 1
                off = widths[si] - k if (si == 0 and len(segs) > 1) else 0
                variable = variable or k != widths[si]
            for t in range(k):
                row[col + off + t] = seq[pos + t]
            pos += k
            col += widths[si]
        rows.append(row)
    table = _normalised_counts(rows, alphabet, len(cands))
    fixed, col = [], 0
    for sg, w in zip(segs, widths):
        if isinstance(sg, Fixed) and w:
            fixed.append((col + 1, col + w))
        col += w
    n = len(cands)
    if variable:
        note = (f"All {n} shown candidates, aligned by template position: each fixed part in its own columns, "
                f"each variable-length free span left-aligned after the letters before it (one that starts the "
                f"template right-aligned against the letters after it); a column's height is the fraction of "
                f"candidates with a letter there.")
    else:
        note = f"All {n} shown candidates, aligned by template position ({total} positions)."
    return table, fixed, note


def logo_figure(table, domain: str, fixed_ranges: Sequence[tuple[int, int]] = ()):
    """A logomaker probability logo (matplotlib figure); ``fixed_ranges`` are 1-based, inclusive."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = len(table)
    fig, ax = plt.subplots(figsize=(min(max(4.0, 0.16 * L + 1.0), 24.0), 2.2), dpi=100)
    logomaker.Logo(table, ax=ax, color_scheme=_hints(domain).logo_colors if _hints(domain) else "chemistry",
                   font_name="DejaVu Sans", vpad=0.03)
    for a, b in fixed_ranges:
        ax.axvspan(a - 0.5, b + 0.5, color="#ffc107", alpha=0.3, zorder=-1, lw=0)
    ax.set_ylabel("frequency")
    ax.set_xlabel("position (shaded: fixed by the template)" if fixed_ranges else "position")
    step = max(1, round(L / 20))
    ax.set_xticks(list(range(1, L + 1, step)))
    ax.set_xlim(0.5, L + 0.5)
    ax.set_ylim(0, 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


# ================================================================ variants
def mutation_lines(text: str) -> list[str]:
    """Mutants from a text area: one per line; blank lines and ``#`` comments skipped."""
    out = []
    for line in text.replace("\r", "").split("\n"):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def clean_wild_type(text: str) -> str:
    lines = [ln for ln in text.replace("\r", "").split("\n") if not ln.startswith(">")]
    return "".join("".join(lines).split()).upper()


def scan_window(wt_len: int, start: int, end: int) -> tuple[int, int, str | None]:
    """Clip a 1-based inclusive window to the wild type and to :data:`MAX_SCAN_POSITIONS`."""
    start = max(1, int(start))
    end = min(wt_len, int(end))
    if start > end:
        raise ValueError(f"the scan window must satisfy 1 ≤ start ≤ end ≤ {wt_len}, got {start}–{end}")
    note = None
    if end - start + 1 > MAX_SCAN_POSITIONS:
        end = start + MAX_SCAN_POSITIONS - 1
        note = (f"A scan covers at most {MAX_SCAN_POSITIONS} positions: scanning {start}–{end}; "
                f"move the window to scan further.")
    return start, end, note


def score_column(df) -> str:
    for c in ("score_masked_marginal", "score_elbo", "score_ar"):
        if c in df.columns:
            return c
    raise KeyError("no score column")


def single_mutant_matrix(df, score_col: str, wt: str, alphabet: str):
    """Long table ``position, wt, mt, mutant, score`` of the single mutants in ``df``."""
    import pandas as pd

    from seqdiff.jobs.variants import parse_mutant

    rows = []
    for m, s, k in zip(df["mutant"], df[score_col], df["num_mutations"]):
        if k != 1:
            continue
        muts = [x for x in parse_mutant(m) if x[0] != x[2]]
        if len(muts) != 1:
            continue
        w, p, t = muts[0]
        if t in alphabet:
            rows.append({"position": p, "wt": w, "mt": t, "mutant": m, "score": float(s)})
    return pd.DataFrame(rows, columns=["position", "wt", "mt", "mutant", "score"])


#: Positions per row of the single-mutant heatmap (longer scans wrap onto further rows).
HEATMAP_WRAP = 50


def heatmap_blocks(positions: Sequence[int], wrap: int = HEATMAP_WRAP) -> list[list[int]]:
    """The scanned positions cut into rows of at most ``wrap`` (in order)."""
    positions = sorted(set(int(p) for p in positions))
    return [positions[i:i + wrap] for i in range(0, len(positions), wrap)]


def heatmap_chart(long_df, alphabet: str, wt: str, wrap: int = HEATMAP_WRAP):
    """An Altair position × residue heatmap of single-mutant scores (wild type marked), wrapped into
    rows of at most ``wrap`` positions so that any length fits the page, with one colour legend
    (symmetric around 0) and the values on hover."""
    import altair as alt
    import pandas as pd

    lim = float(max(abs(long_df["score"]).max(), 1e-6))
    color = alt.Color("score:Q", scale=alt.Scale(scheme="redblue", domain=[-lim, lim]),
                      title="score (nats)", legend=alt.Legend(orient="right", gradientLength=160))
    cell = 14
    rows = []
    for block in heatmap_blocks(long_df["position"], wrap):
        sub = long_df[long_df["position"].isin(block)]
        wt_rows = pd.DataFrame({"position": block, "mt": [wt[p - 1] for p in block],
                                "mutant": [f"{wt[p - 1]}{p} (wild type)" for p in block]})
        x = alt.X("position:O", title=f"position {block[0]}–{block[-1]}", sort=block,
                  axis=alt.Axis(labelAngle=0, labelOverlap=True))
        y = alt.Y("mt:N", sort=list(alphabet), scale=alt.Scale(domain=list(alphabet)), title="substituted residue",
                  axis=alt.Axis(labelOverlap=False))
        base = alt.Chart(sub).mark_rect().encode(
            x=x, y=y, color=color,
            tooltip=[alt.Tooltip("mutant:N"), alt.Tooltip("position:O"), alt.Tooltip("wt:N", title="wild type"),
                     alt.Tooltip("mt:N", title="substituted"), alt.Tooltip("score:Q", format=".3f")])
        dots = alt.Chart(wt_rows).mark_text(text="●", color="#424242", size=8).encode(
            x=x, y=y, tooltip=[alt.Tooltip("mutant:N")])
        rows.append(alt.layer(base, dots).properties(width=cell * len(block), height=max(60, cell * len(alphabet))))
    chart = alt.vconcat(*rows, spacing=12).resolve_scale(color="shared")
    return chart.properties(title="Single-mutant scores (● = wild type; red = less likely than the wild type)")


def heatmap_figure(long_df, alphabet: str, wt: str, wrap: int = HEATMAP_WRAP):
    """The same heatmap as :func:`heatmap_chart` as a matplotlib figure (for the PNG / SVG downloads)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = heatmap_blocks(long_df["position"], wrap)
    lim = float(max(abs(long_df["score"]).max(), 1e-6))
    letters = list(alphabet)
    width = max(len(b) for b in blocks)
    fig, axes = plt.subplots(len(blocks), 1, figsize=(2.0 + 0.16 * width, 0.6 + (0.12 * len(letters) + 0.45) * len(blocks)),
                             dpi=100, squeeze=False, layout="constrained")
    score = {(int(p), m): float(v) for p, m, v in zip(long_df["position"], long_df["mt"], long_df["score"])}
    im = None
    for ax, block in zip(axes[:, 0], blocks):
        grid = np.full((len(letters), len(block)), np.nan)
        for j, pos in enumerate(block):
            for i, m in enumerate(letters):
                grid[i, j] = score.get((pos, m), np.nan)
        im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        for j, pos in enumerate(block):
            if wt[pos - 1] in letters:
                ax.text(j, letters.index(wt[pos - 1]), "●", ha="center", va="center", fontsize=5, color="#424242")
        step = max(1, len(block) // 10)
        ax.set_xticks(range(0, len(block), step), [str(block[j]) for j in range(0, len(block), step)], fontsize=7)
        ax.set_yticks(range(len(letters)), letters, fontsize=6)
        ax.set_xlim(-0.5, width - 0.5)
    axes[-1, 0].set_xlabel("position")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="score (nats)", shrink=min(1.0, 3.0 / len(blocks)), aspect=15)
    fig.suptitle("Single-mutant scores (● = wild type; red = less likely than the wild type)", fontsize=9)
    return fig


def figure_bytes(fig, fmt: str) -> bytes:
    """A matplotlib figure as PNG or SVG bytes (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120 if fmt == "png" else None, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
