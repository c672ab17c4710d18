"""Conditional calibration of infilling: does the model react to fixed letters as the data do?

Infilling asks a model for ``p(free positions | fixed letters)``. For a motif that occurs in
held-out data, the data give that conditional directly: the windows of real sequences around real
occurrences of the motif, at the same offsets. This module compares the two, offset by offset:

* **empirical conditional** (:func:`motif_windows`, :func:`empirical_conditional`): at each free
  offset of the window, the letter composition (``k = 1``) or the spectrum of ``k``-mers starting
  there, with cluster-robust standard errors (windows from the same source sequence are one
  cluster, so overlapping or nearby occurrences do not count as independent evidence);
* **model conditional** (:func:`model_conditional`): for a masked (absorbing) model, the clean-token
  distribution its denoiser predicts at each free offset of the template ``{left} motif {right}``
  with every free position masked; ``k``-mers by the chain rule
  ``p(a_1..a_k) = Π_j p(a_j | motif, a_1..a_{j-1})`` (one pass per offset and prefix). For an exact
  denoiser these are exactly the conditionals of its distribution (tested against enumeration);
* **comparison** (:func:`compare`, :func:`group_shift`): per offset, total variation, z-scores of
  the model's probabilities against the empirical ones, Jensen–Shannon divergence of the k-mer
  spectra next to the divergence that sampling noise alone produces at the same number of windows
  (a parametric bootstrap from the model), and for a group of letters (GC for DNA) the shift the
  motif causes relative to the unconditional composition, in the model and in the data.

Nothing here knows about a domain: sequences are lists of token ids, letters are ids, and the
benchmarks (``benchmarks/bench_calibration.py``) map strings to ids with the model's tokenizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

__all__ = ["motif_windows", "Conditional", "empirical_conditional", "model_conditional",
           "model_conditional_in_records", "compare", "group_share",
           "group_shift", "js_divergence", "motif_calibration"]


# ------------------------------------------------------------------------------ data side
def motif_windows(seqs: Sequence[Sequence[int]], motif: Sequence[int], left: int, right: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``seq[j-left : j+len(motif)+right]`` around every occurrence ``j`` of ``motif``.

    Occurrences whose window does not fit inside its sequence are skipped; overlapping
    occurrences each give a window. Returns ``(windows [N, left+m+right], source sequence index
    [N], occurrence start [N])``.
    """
    motif = list(motif)
    m = len(motif)
    if m == 0 or left < 0 or right < 0:
        raise ValueError("need a non-empty motif and non-negative flanks")
    width = left + m + right
    wins, src, starts = [], [], []
    mot = np.asarray(motif)
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if len(a) < width:
            continue
        # every start j with a[j:j+m] == motif
        hits = np.ones(len(a) - m + 1, dtype=bool)
        for k in range(m):
            hits &= a[k:len(a) - m + 1 + k] == mot[k]
        for j in np.flatnonzero(hits):
            if j - left >= 0 and j + m + right <= len(a):
                wins.append(a[j - left:j + m + right])
                src.append(i)
                starts.append(int(j))
    if not wins:
        return np.zeros((0, width), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.stack(wins).astype(np.int64), np.asarray(src, dtype=np.int64), np.asarray(starts, dtype=np.int64)


@dataclass
class Conditional:
    """Per-offset distributions over ``V^k`` k-mers (index = base-``V`` number of the k-mer)."""

    offsets: list[int]            # window offsets where each k-mer starts
    probs: np.ndarray             # [F, V^k]
    stderr: np.ndarray | None     # [F, V^k] (empirical only)
    vocab: int
    k: int
    n_windows: int = 0
    n_clusters: int = 0
    extra: dict = field(default_factory=dict)


def _kmer_offsets(width: int, fixed: set[int], k: int) -> list[int]:
    return [i for i in range(width - k + 1) if not any(j in fixed for j in range(i, i + k))]


def _kmer_index(windows: np.ndarray, i: int, k: int, vocab: int) -> np.ndarray:
    idx = np.zeros(len(windows), dtype=np.int64)
    for j in range(k):
        idx = idx * vocab + windows[:, i + j]
    return idx


def empirical_conditional(windows: np.ndarray, clusters: np.ndarray, fixed: Iterable[int], vocab: int,
                          k: int = 1) -> Conditional:
    """Per free offset, the empirical k-mer distribution of the windows and its standard error.

    The standard error of each probability is the cluster-robust one of a ratio estimator:
    ``p̂ = Σ_c y_c / N`` over clusters ``c`` (``y_c`` = the cluster's windows with that k-mer,
    ``n_c`` its windows, ``N = Σ n_c``), ``Var p̂ = C/(C-1) Σ_c (y_c - p̂ n_c)² / N²``; with one
    window per cluster this is ``p̂(1-p̂)/(N-1)``. ``nan`` with fewer than two clusters.
    """
    windows = np.asarray(windows, dtype=np.int64)
    clusters = np.asarray(clusters)
    if len(windows) != len(clusters):
        raise ValueError("one cluster id per window")
    fixed = set(int(f) for f in fixed)
    width = windows.shape[1] if windows.ndim == 2 else 0
    offsets = _kmer_offsets(width, fixed, k)
    K = vocab ** k
    N = len(windows)
    probs = np.zeros((len(offsets), K))
    se = np.full((len(offsets), K), np.nan)
    uniq, cid = np.unique(clusters, return_inverse=True) if N else (np.zeros(0), np.zeros(0, dtype=np.int64))
    C = len(uniq)
    n_c = np.bincount(cid, minlength=C).astype(float) if N else np.zeros(0)
    for r, i in enumerate(offsets):
        if not N:
            break
        idx = _kmer_index(windows, i, k, vocab)
        y = np.zeros((C, K))
        np.add.at(y, (cid, idx), 1.0)
        p = y.sum(0) / N
        probs[r] = p
        if C >= 2:
            resid = y - n_c[:, None] * p[None, :]
            se[r] = np.sqrt(C / (C - 1) * (resid ** 2).sum(0)) / N
    return Conditional(offsets, probs, se, vocab, k, N, C)


# ------------------------------------------------------------------------------ model side
def _data_ids(process) -> list[int]:
    return [i for i in range(process.vocab_size) if i != process.mask_id]


@torch.no_grad()
def _clean_probs(denoiser, process, x: torch.Tensor, schedule=None) -> torch.Tensor:
    """``p(x_0^i = a | x)`` over data tokens ``[B, L, V]`` (float64), the masked fraction as time."""
    from ..diffusion.processes import NoiseLevel

    n_masked = (x == process.mask_id).sum(-1).clamp_min(1)
    t = (n_masked.float() / x.shape[1]).to(x.device)
    out = denoiser(x, t)
    if getattr(denoiser, "parameterization", "x0") == "x0":
        logp = process.clean_log_x0(out.double(), x)
    else:
        if schedule is None:
            raise ValueError("a score-parameterised model needs its schedule")
        logp = process.log_score_to_x0(out.double(), x, NoiseLevel.at(schedule, t))
    p = logp.exp()[..., _data_ids(process)]
    return (p / p.sum(-1, keepdim=True)).cpu()


@torch.no_grad()
def model_conditional(denoiser, process, template: Sequence[int], k: int = 1, *, schedule=None,
                      batch_size: int = 256) -> Conditional:
    """The model's k-mer distribution at each free offset of ``template`` (mask id = free).

    Composition (``k = 1``): one pass with every free position masked. ``k > 1``: the chain rule
    over the k positions, each factor from a pass with the earlier letters of the k-mer filled in.
    Needs an absorbing (masked) model; for others compare generated windows with
    :func:`empirical_conditional` instead.
    """
    from ..diffusion import Absorbing

    if not isinstance(process, Absorbing):
        raise ValueError("model_conditional needs an absorbing (masked) model; for uniform-noise models "
                         "compare generated windows with empirical_conditional")
    ids = _data_ids(process)
    V = len(ids)
    tpl = torch.as_tensor(list(template), dtype=torch.long)
    fixed = {i for i, v in enumerate(tpl.tolist()) if v != process.mask_id}
    offsets = _kmer_offsets(len(tpl), fixed, k)
    device = next(denoiser.parameters()).device if isinstance(denoiser, torch.nn.Module) else torch.device("cpu")
    probs = np.zeros((len(offsets), V ** k))
    # rows: (offset r, prefix length j, prefix index) -> p(letter at i+j | prefix)
    rows, keys = [], []
    for r, i in enumerate(offsets):
        for j in range(k):
            for pre in range(V ** j):
                x = tpl.clone()
                digits = [(pre // V ** (j - 1 - q)) % V for q in range(j)]
                for q, d in enumerate(digits):
                    x[i + q] = ids[d]
                rows.append(x)
                keys.append((r, i, j, pre))
    cond: dict[tuple[int, int, int], np.ndarray] = {}
    for s in range(0, len(rows), batch_size):
        x = torch.stack(rows[s:s + batch_size]).to(device)
        p = _clean_probs(denoiser, process, x, schedule).numpy()
        for b, (r, i, j, pre) in enumerate(keys[s:s + batch_size]):
            cond[(r, j, pre)] = p[b, i + j]
    for r in range(len(offsets)):
        joint = cond[(r, 0, 0)].copy()  # [V]
        for j in range(1, k):
            nxt = np.stack([cond[(r, j, pre)] for pre in range(V ** j)])  # [V^j, V]
            joint = (joint[:, None] * nxt).reshape(-1)
        probs[r] = joint
    return Conditional(offsets, probs, None, V, k)


@torch.no_grad()
def model_conditional_in_records(denoiser, process, records: Sequence[Sequence[int]], src: np.ndarray,
                                 starts: np.ndarray, motif_len: int, left: int, right: int, *,
                                 fix_motif: bool = True, schedule=None, batch_size: int = 64) -> Conditional:
    """The model's composition at each free offset, in the records the occurrences come from.

    For models trained on whole records (proteins, molecules: the padded layout) a window is not
    a sequence of its own: its letters depend on where the record starts and ends. Here each
    occurrence ``(record src[n], start starts[n])`` gets the record's own length, every position
    masked except the motif (``fix_motif=False``: nothing fixed, the unconditional counterpart),
    and the model's clean-token distribution at ``start-left … start+motif_len+right`` is read;
    the result is the average over occurrences, matched one to one with the data's windows.
    """
    from ..diffusion import Absorbing

    if not isinstance(process, Absorbing):
        raise ValueError("model_conditional_in_records needs an absorbing (masked) model")
    ids = _data_ids(process)
    V = len(ids)
    width = left + motif_len + right
    fixed = set(range(left, left + motif_len))
    offsets = _kmer_offsets(width, fixed, 1)
    device = next(denoiser.parameters()).device if isinstance(denoiser, torch.nn.Module) else torch.device("cpu")
    total = np.zeros((len(offsets), V))
    order = np.argsort([len(records[i]) for i in src], kind="stable")  # batch records of equal length
    n = 0
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        by_len: dict[int, list[int]] = {}
        for c in chunk:
            by_len.setdefault(len(records[src[c]]), []).append(int(c))
        for length, cs in by_len.items():
            x = torch.full((len(cs), length), process.mask_id, dtype=torch.long)
            for r, c in enumerate(cs):
                if fix_motif:
                    j = int(starts[c])
                    x[r, j:j + motif_len] = torch.as_tensor(list(records[src[c]][j:j + motif_len]))
            p = _clean_probs(denoiser, process, x.to(device), schedule).numpy()
            for r, c in enumerate(cs):
                j0 = int(starts[c]) - left
                total += p[r, [j0 + o for o in offsets]]
                n += 1
    return Conditional(offsets, total / max(n, 1), None, V, 1, n_windows=n)


# ------------------------------------------------------------------------------ comparison
def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0 … 1)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def compare(model: Conditional, data: Conditional, *, bootstrap: int = 200, seed: int = 0,
            z_floor: float | None = None) -> dict[str, Any]:
    """Offset-by-offset comparison of a model conditional with an empirical one (same offsets).

    Per offset: total variation, JS divergence, and the TV and JS that sampling alone gives: their
    mean between the model's distribution and ``n_windows`` draws from it (``bootstrap``
    replicates) — a calibrated model sits at that floor, not at 0.
    z-scores ``(model - data) / stderr`` use the empirical standard errors, floored at
    ``z_floor`` (default ``1/N``, one window's worth) so unseen letters do not divide by zero.
    """
    if model.offsets != data.offsets or model.probs.shape != data.probs.shape:
        raise ValueError("model and data conditionals must have the same offsets and k")
    N = data.n_windows
    rng = np.random.default_rng(seed)
    floor = z_floor if z_floor is not None else (1.0 / max(N, 1))
    rows = []
    for r, i in enumerate(data.offsets):
        pm, pd_ = model.probs[r], data.probs[r]
        se = np.maximum(np.nan_to_num(data.stderr[r], nan=np.inf) if data.stderr is not None else np.inf, floor)
        z = (pm - pd_) / se
        row = {"offset": i, "tv": 0.5 * float(np.abs(pm - pd_).sum()), "js": js_divergence(pm, pd_),
               "max_abs_z": float(np.abs(z).max())}
        if bootstrap and N:
            draws = rng.multinomial(N, pm / pm.sum(), size=bootstrap) / N
            row["js_noise"] = float(np.mean([js_divergence(pm, d) for d in draws]))
            row["tv_noise"] = float(np.mean(0.5 * np.abs(draws - pm).sum(1)))
        rows.append(row)
    out = {"k": data.k, "windows": N, "clusters": data.n_clusters, "per_offset": rows}
    for key in ("tv", "tv_noise", "js", "js_noise", "max_abs_z"):
        vals = [row[key] for row in rows if key in row]
        if vals:
            out[f"mean_{key}"] = float(np.mean(vals))
    if rows:
        out["share_offsets_abs_z_over_3"] = float(np.mean([row["max_abs_z"] > 3 for row in rows]))
    return out


def group_shift(model: Conditional, data: Conditional, group: Sequence[int], *, model_background: Conditional,
                data_background: np.ndarray, windows: np.ndarray | None = None,
                clusters: np.ndarray | None = None) -> dict[str, Any]:
    """How much the motif moves the probability of a letter group (e.g. G or C) at the free offsets.

    ``model_background``: the model's composition with nothing fixed (same template length);
    ``data_background``: the letter frequencies of the held-out data ``[V]``. Reports the mean over
    free offsets of the group's probability: conditional and unconditional, model and data, the
    shifts (conditional − unconditional) and their ratio (1 = the model reacts to the motif as much
    as the data do; 2 = twice as much). With ``windows``/``clusters`` the data's mean conditional
    gets its cluster-robust standard error.
    """
    if model.k != 1 or data.k != 1:
        raise ValueError("group_shift compares compositions (k = 1)")
    g = list(group)
    m_c = float(model.probs[:, g].sum(1).mean())
    d_c = float(data.probs[:, g].sum(1).mean())
    bg_rows = [model_background.offsets.index(i) for i in model.offsets]
    m_u = float(model_background.probs[bg_rows][:, g].sum(1).mean())
    d_u = float(np.asarray(data_background)[g].sum())
    out = {"model_conditional": m_c, "data_conditional": d_c, "model_unconditional": m_u,
           "data_unconditional": d_u, "model_shift": m_c - m_u, "data_shift": d_c - d_u,
           "shift_ratio": (m_c - m_u) / (d_c - d_u) if d_c != d_u else float("nan")}
    if windows is not None and clusters is not None:
        _, se = group_share(windows, clusters, data.offsets, g)
        if se == se:
            out["data_conditional_stderr"] = se
            # is the data's shift itself resolved? (the background's error is negligible beside it)
            out["data_shift_z"] = (d_c - d_u) / se if se > 0 else float("nan")
    return out


def group_share(windows: np.ndarray, clusters: np.ndarray, offsets: Sequence[int], group: Sequence[int]
                ) -> tuple[float, float]:
    """The windows' mean share of ``group`` letters over ``offsets`` and its cluster-robust standard
    error (``nan`` with fewer than two clusters)."""
    windows = np.asarray(windows)
    if len(windows) == 0:
        return float("nan"), float("nan")
    y_w = np.isin(windows[:, np.asarray(offsets)], list(group)).mean(1)  # each window's share
    N = len(windows)
    mean = float(y_w.mean())
    uniq, cid = np.unique(clusters, return_inverse=True)
    C = len(uniq)
    if C < 2:
        return mean, float("nan")
    y = np.bincount(cid, weights=y_w, minlength=C)
    n_c = np.bincount(cid, minlength=C)
    return mean, float(math.sqrt(C / (C - 1) * ((y - n_c * mean) ** 2).sum()) / N)


def motif_calibration(model, heldout: Sequence[str], motif: str, left: int, right: int, *, k: int = 1,
                      groups: dict[str, str] | None = None, background_limit: int = 200_000,
                      bootstrap: int = 200, seed: int = 0, context: str = "template") -> dict[str, Any]:
    """The calibration report of a :class:`~seqdiff.model.SeqDiffModel` for one motif.

    ``heldout``: held-out sequences (strings of the model's domain); ``groups``: named letter groups
    (e.g. ``{"GC": "GC"}``) whose shift is reported. Composition (and, with ``k > 1``, the k-mer
    spectrum) at every free offset around the motif. ``context="template"`` (models trained on
    windows: DNA, text): the model sees the template ``{left} motif {right}`` alone;
    ``context="record"`` (models trained on whole records: proteins, molecules): each occurrence's
    own record, masked except the motif (:func:`model_conditional_in_records`; ``k = 1`` only).
    """
    if context not in ("template", "record"):
        raise ValueError(f"context must be 'template' or 'record', got {context!r}")
    tok = model.tokenizer
    mask = model.process.mask_id
    enc = [tok.encode(s) for s in heldout]
    if context == "record":
        enc = [e for e in enc if len(e) <= model.max_len]
        k = 1
    mot = tok.encode(motif)
    wins, src, starts = motif_windows(enc, mot, left, right)
    fixed = set(range(left, left + len(mot)))
    V = tok.num_data_tokens
    template = [mask] * left + mot + [mask] * right
    report: dict[str, Any] = {"motif": motif, "left": left, "right": right, "context": context,
                              "windows": int(len(wins)), "sequences": int(len(set(src.tolist())))}
    if len(wins) < 2:
        report["note"] = "fewer than two motif-matched windows in the held-out data"
        return report
    den, proc, sch = model.denoiser, model.process, model.schedule
    for kk in sorted({1, k}):
        emp = empirical_conditional(wins, src, fixed, V, k=kk)
        if context == "record":
            mod = model_conditional_in_records(den, proc, enc, src, starts, len(mot), left, right, schedule=sch)
        else:
            mod = model_conditional(den, proc, template, k=kk, schedule=sch)
        report[f"k{kk}"] = compare(mod, emp, bootstrap=bootstrap, seed=seed)
        if kk == 1:
            m1, e1 = mod, emp
    if groups:
        bg_model = model_conditional_in_records(den, proc, enc, src, starts, len(mot), left, right,
                                                fix_motif=False, schedule=sch) if context == "record" else \
            model_conditional(den, proc, [mask] * len(template), k=1, schedule=sch)
        flat = np.concatenate([np.asarray(e) for e in enc])[:background_limit]
        bg_data = np.bincount(flat, minlength=V)[:V] / len(flat)
        report["groups"] = {}
        for name, letters in groups.items():
            ids = sorted({tok.encode(ch)[0] for ch in letters})
            gs = group_shift(m1, e1, ids, model_background=bg_model, data_background=bg_data, windows=wins,
                             clusters=src)
            gs["model_conditional_by_offset"] = [float(v) for v in m1.probs[:, ids].sum(1)]
            gs["data_conditional_by_offset"] = [float(v) for v in e1.probs[:, ids].sum(1)]
            report["groups"][name] = gs
    return report
