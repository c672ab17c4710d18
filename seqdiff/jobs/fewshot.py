"""Few-shot variant-effect prediction: ridge regression on one-hot features plus zero-shot scores.

The model (the "augmented" regression of Hsu et al. 2022, *Learning protein fitness models from
evolutionary and assay-labeled data*, extended with shared and pairwise blocks) predicts a measured
fitness ``y`` of a variant ``v`` as

    y(v) = b + Σ_{(p, a) ∈ v} (w[p, a] + s[p] + u[a]) + Σ_{pairs in v} (e[p, a, q, b] + f[p, q])
             + Σ_k c_k z_k(v) (+ d · [v has no zero-shot score], only when some have none)

* ``w[p, a]`` (block ``onehot``): one weight per substitution (position ``p`` to letter ``a``, stops
  included): a site-independent additive model (the wild type is all zeros);
* ``s[p]`` (``site``): one per mutated position, shared by every substitution there (how tolerant the
  site is), so that a substitution never measured inherits what was learnt about its position;
* ``u[a]`` (``aa``): one per substituted-to letter, shared by every position (which residues the
  assay favours, e.g. hydrophobic ones), so that an unmeasured substitution inherits its letter's;
* ``e[p, a, q, b]`` (``pairs``) and ``f[p, q]`` (``sitepairs``): epistasis of a pair of substitutions
  / of positions mutated together, with a column only for pairs that occur in the training variants
  (a pair never measured gets weight 0; at most ``max_pairs`` columns, the most frequent);
* ``z_k(v)``: zero-shot scores (e.g. the masked-marginal log-likelihood ratio of a protein model, a
  family model, BLOSUM62), standardised over every variant given (unsupervised, so no labels leak);
  a variant without one (a nonsense variant the model cannot score) gets 0 and the indicator.

Which blocks and scores are used is chosen per fit by leave-one-out error on the training labels
(:meth:`FewShotModel.fit`): one-hot plus every subset of ``site``/``aa``, crossed with no zero-shot
score or any subset of them; then the pair blocks are tried on top of that choice.

Fit: ridge with an unpenalised intercept and a per-feature penalty ``λ r_j`` (``r = 1`` for one-hot
weights, ``r = aug_ratio`` (default 1e-3) for zero-shot features, so that with few labels the
prediction falls back to the zero-shot ranking instead of to the mean), in closed form::

    w = (Xcᵀ Xc + λ R)⁻¹ Xcᵀ (y - ȳ),   b = ȳ - x̄ᵀ w        (Xc: columns centred on the training rows)

Zero-shot weights are kept non-negative by default (a feature fitted with a negative weight is
dropped and the rest refitted; see :meth:`FewShotModel.fit`).

``λ`` is picked from a grid by exact leave-one-out cross-validation: the fit is a linear smoother
``ŷ = H y`` with ``H = 11ᵀ/n + X̃ (X̃ᵀX̃ + λI)⁻¹ X̃ᵀ`` (``X̃ = Xc R^{-1/2}``), so the LOO residual of
row ``i`` is ``(y_i - ŷ_i) / (1 - H_ii)``, for every ``λ`` from one SVD of ``X̃``.

Uncertainty (Bayesian reading of ridge: prior ``w̃ ~ N(0, σ²/λ I)``, flat prior on ``b``, Gaussian
noise ``σ²``): the posterior variance of the predicted mean at a centred feature vector ``x̃*`` is
``σ² (1/n + x̃*ᵀ (X̃ᵀX̃ + λI)⁻¹ x̃*)``; ``σ²`` is estimated as ``RSS / (n - tr H)``. ``sd`` is its
square root; ``pred_sd`` adds the noise (``σ²`` more): the spread of a new measurement.

Multi-mutants: without the pair blocks the model is **additive** (a double mutant's prediction is the
sum of its two substitutions' terms); epistasis enters through ``pairs``/``sitepairs`` (for pairs seen
in training) and through the zero-shot features when those score the variant jointly (masked
marginal masks all mutated positions together).

Nothing here imports torch: the regression works on numpy arrays, so the app and the benchmark can
use it without loading a model.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .variants import VariantError, parse_mutant

__all__ = ["ALPHABET", "RidgeFit", "fit_ridge", "GPFit", "fit_gp", "loo_residuals", "one_hot_index", "FewShotModel",
           "FeatureSet", "INDICATOR_BLOCKS", "DEFAULT_RATIOS", "fit_fewshot", "spearman", "ndcg_top", "learning_curve",
           "read_labels", "LABEL_COLUMNS", "DEFAULT_LAMBDAS"]

#: Letters a substitution can go to (the 20 amino acids and the stop).
ALPHABET = "ACDEFGHIKLMNPQRSTVWY*"
#: The ridge strengths cross-validation chooses from.
DEFAULT_LAMBDAS = tuple(float(x) for x in np.logspace(-3, 4, 15))
#: Column names :func:`read_labels` recognises as the measurement (any case), in this order.
LABEL_COLUMNS = ("fitness", "score", "y", "label", "measurement", "value", "activity", "stability")


# ============================================================================ closed-form ridge
@dataclass
class RidgeFit:
    """A fitted ridge regression (see module docstring); ``predict`` gives mean and uncertainty."""

    coef: np.ndarray  # [p] weights on the original (uncentred) features
    intercept: float
    lam: float
    penalty: np.ndarray  # [p] the per-feature multipliers r_j
    x_mean: np.ndarray  # [p]
    n: int
    sigma2: float  # noise variance estimate RSS / (n - tr H)
    dof: float  # tr H (intercept included)
    loo_mse: dict = field(default_factory=dict)  # λ -> LOO mean squared error (when CV was run)
    log_evidence: dict = field(default_factory=dict)  # λ -> restricted log marginal likelihood
    _V: np.ndarray | None = None  # right singular vectors of X̃ (p x k)
    _s2: np.ndarray | None = None  # squared singular values (k)

    def predict(self, X: np.ndarray, *, with_sd: bool = False, chunk: int = 4096):
        """``mean`` ``[m]``, or ``(mean, sd, pred_sd)`` with ``with_sd``."""
        X = np.asarray(X, dtype=float)
        mean = X @ self.coef + self.intercept
        if not with_sd:
            return mean
        q = np.empty(len(X))
        scale = 1.0 / np.sqrt(self.penalty)
        for s in range(0, len(X), chunk):
            xt = (X[s:s + chunk] - self.x_mean) * scale  # x̃*
            proj = xt @ self._V  # [m, k]
            inside = (proj ** 2 / (self._s2 + self.lam)).sum(1)
            outside = np.maximum((xt ** 2).sum(1) - (proj ** 2).sum(1), 0.0) / self.lam
            q[s:s + chunk] = inside + outside
        var_mean = self.sigma2 * (1.0 / self.n + q)
        return mean, np.sqrt(var_mean), np.sqrt(var_mean + self.sigma2)


#: Above this many rows and columns the thin SVD is taken through the eigenvectors of the smaller Gram
#: matrix (several times faster; directions with s² below 1e-10 of the largest are dropped, which for the
#: 0/1 designs here are exact null directions).
GRAM_MIN = 300


def _svd(Xt: np.ndarray, *, gram: bool | None = None):
    """Thin SVD ``Xt = U diag(s) Vᵀ`` without the (numerically) zero singular values."""
    n, p = Xt.shape
    if gram is None:
        gram = min(n, p) >= GRAM_MIN
    if not gram or not Xt.size:
        U, s, Vt = np.linalg.svd(Xt, full_matrices=False)
        keep = s > s.max() * 1e-12 if s.size else np.zeros(0, dtype=bool)
        return U[:, keep], s[keep], Vt[keep].T
    if n <= p:
        s2, U = np.linalg.eigh(Xt @ Xt.T)
        keep = s2 > max(s2.max(), 0.0) * 1e-10
        U, s = U[:, keep], np.sqrt(s2[keep])
        return U, s, (Xt.T @ U) / s
    s2, V = np.linalg.eigh(Xt.T @ Xt)
    keep = s2 > max(s2.max(), 0.0) * 1e-10
    V, s = V[:, keep], np.sqrt(s2[keep])
    return (Xt @ V) / s, s, V


def loo_residuals(X: np.ndarray, y: np.ndarray, lam: float, penalty: np.ndarray | None = None) -> np.ndarray:
    """Exact leave-one-out residuals ``y_i - ŷ_{-i}`` of ridge with an unpenalised intercept."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    penalty = np.ones(X.shape[1]) if penalty is None else np.asarray(penalty, dtype=float)
    Xt = (X - X.mean(0)) / np.sqrt(penalty)
    U, s, _ = _svd(Xt)
    return _loo_from_svd(U, s ** 2, y, lam)


def _loo_from_svd(U, s2, y, lam):
    n = len(y)
    yc = y - y.mean()
    shrink = s2 / (s2 + lam)
    fit = U @ (shrink * (U.T @ yc))
    h = 1.0 / n + (U ** 2) @ shrink
    return (yc - fit) / np.maximum(1.0 - h, 1e-12)


def _log_evidence(U, s2, y, lam) -> float:
    """Restricted log marginal likelihood of ``y`` (intercept integrated out under a flat prior: the
    density of ``y``'s projection orthogonal to the ones vector), prior ``w̃ ~ N(0, σ²/λ I)``, noise
    ``σ²`` at its maximum: ``-½ [(n-1)(log 2πσ̂² + 1) + Σ_k log(1 + s_k²/λ)]`` with
    ``σ̂² = (|yc|² - Σ_k c_k² s_k²/(s_k² + λ)) / (n-1)``, ``c = Uᵀ yc``."""
    n = len(y)
    yc = y - y.mean()
    c2 = (U.T @ yc) ** 2
    quad = float(yc @ yc - (c2 * s2 / (s2 + lam)).sum())
    m = n - 1
    sig2 = max(quad / m, 1e-300)
    return float(-0.5 * (m * (np.log(2 * np.pi * sig2) + 1.0) + np.log1p(s2 / lam).sum()))


def fit_ridge(X: np.ndarray, y: np.ndarray, *, lambdas: Sequence[float] | float = DEFAULT_LAMBDAS,
              penalty: np.ndarray | None = None, criterion: str = "loo", criterion_all: bool = False) -> RidgeFit:
    """Ridge regression in closed form; with several ``lambdas`` the one of least LOO error
    (``criterion="loo"``) or of greatest restricted marginal likelihood (``"evidence"``, see
    :func:`_log_evidence`). Both criteria are recorded for every λ (``loo_mse``, ``log_evidence``) when
    there are several, or with ``criterion_all``.

    Args:
        X: ``[n, p]`` features of the labelled rows; ``y``: ``[n]`` measurements (``n >= 2``).
        penalty: ``[p]`` positive multipliers ``r_j`` of ``λ`` (default all 1).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if n < 2:
        raise ValueError(f"few-shot fitting needs at least 2 labelled variants, got {n}")
    if not np.isfinite(y).all():
        raise ValueError("the measurements contain missing or infinite values")
    penalty = np.ones(p) if penalty is None else np.asarray(penalty, dtype=float)
    if penalty.shape != (p,) or (penalty <= 0).any():
        raise ValueError("penalty must have one positive entry per feature")
    lams = [float(lambdas)] if np.isscalar(lambdas) else [float(v) for v in lambdas]
    if criterion not in ("loo", "evidence"):
        raise ValueError(f"unknown criterion {criterion!r} (loo | evidence)")
    if not lams or min(lams) <= 0:
        raise ValueError("ridge strengths must be positive")
    x_mean = X.mean(0)
    scale = 1.0 / np.sqrt(penalty)
    Xt = (X - x_mean) * scale
    # a feature constant over the training rows (a substitution never seen) is exactly
    # unidentifiable: its ridge weight is exactly 0 (not SVD round-off), and it is left out of the SVD
    live = np.flatnonzero(np.ptp(X, axis=0) > 0)
    U, s, V_live = _svd(Xt[:, live])
    V = np.zeros((p, len(s)))
    V[live] = V_live
    s2 = s ** 2
    loo, ev = {}, {}
    if len(lams) > 1 or criterion_all:
        for lam in lams:
            loo[lam] = float(np.mean(_loo_from_svd(U, s2, y, lam) ** 2))
            ev[lam] = _log_evidence(U, s2, y, lam)
    if len(lams) > 1:
        if criterion == "loo":
            lam = min(lams, key=lambda v: (loo[v], -v))  # ties: the stronger penalty
        else:
            lam = max(lams, key=lambda v: (ev[v], v))
    else:
        lam = lams[0]
    yc = y - y.mean()
    wt = V @ ((s / (s2 + lam)) * (U.T @ yc))  # w̃
    coef = wt * scale
    intercept = float(y.mean() - x_mean @ coef)
    dof = 1.0 + float((s2 / (s2 + lam)).sum())
    rss = float(((yc - Xt @ wt) ** 2).sum())
    sigma2 = rss / max(n - dof, 1.0)
    return RidgeFit(coef=coef, intercept=intercept, lam=lam, penalty=penalty, x_mean=x_mean, n=n,
                    sigma2=sigma2, dof=dof, loo_mse=loo, log_evidence=ev, _V=V, _s2=s2)


# ============================================================================ Gaussian process
@dataclass
class GPFit:
    """A Gaussian-process regression on the feature vectors (see :func:`fit_gp`)."""

    X: np.ndarray  # [n, p] training features
    alpha: np.ndarray  # (K + σn² I)⁻¹ (y - m)
    L: np.ndarray  # Cholesky factor of K + σn² I
    mean: float
    signal: float  # σf²
    noise: float  # σn²
    length2: float  # ℓ²
    log_ml: dict = field(default_factory=dict)  # (σf², σn²) -> log marginal likelihood
    _Linv: np.ndarray | None = None

    def kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return _rbf(A, B, self.signal, self.length2)

    def predict(self, X: np.ndarray, *, with_sd: bool = False, chunk: int = 4096):
        """``mean`` or ``(mean, sd, pred_sd)``: ``sd²`` = posterior variance of f, ``pred_sd²`` adds σn²."""
        X = np.asarray(X, dtype=float)
        Ks = self.kernel(X, self.X)
        mean = self.mean + Ks @ self.alpha
        if not with_sd:
            return mean
        if self._Linv is None:
            self._Linv = np.linalg.inv(self.L)
        v = self._Linv @ Ks.T
        var = np.maximum(self.signal - (v ** 2).sum(0), 0.0)
        return mean, np.sqrt(var), np.sqrt(var + self.noise)


def _sqdist(A, B):
    return np.maximum((A ** 2).sum(1)[:, None] + (B ** 2).sum(1)[None, :] - 2.0 * A @ B.T, 0.0)


def _rbf(A, B, signal, length2):
    return signal * np.exp(-_sqdist(A, B) / (2.0 * length2))


def fit_gp(X: np.ndarray, y: np.ndarray, *, signals: Sequence[float] = (0.25, 1.0, 4.0),
           noises: Sequence[float] = (1e-3, 1e-2, 0.1, 0.3, 1.0), length2: float | None = None) -> GPFit:
    """GP regression with a constant mean ``ȳ`` and the kernel ``σf² exp(-|x - x'|² / 2ℓ²)``.

    ``ℓ²`` is the median squared distance between training rows (unless given); ``σf²`` and ``σn²``
    (both as fractions of the labels' variance) are the pair of greatest log marginal likelihood
    ``-½ rᵀ(K + σn²I)⁻¹r - ½ log|K + σn²I| - n/2 log 2π`` over the grid. With ``noises=(0,)`` (plus a
    1e-10 jitter) it interpolates: zero variance at every training point.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 2:
        raise ValueError(f"few-shot fitting needs at least 2 labelled variants, got {n}")
    if length2 is None:
        d2 = _sqdist(X, X)[np.triu_indices(n, 1)]
        length2 = float(np.median(d2)) if len(d2) and np.median(d2) > 0 else 1.0
    m = float(y.mean())
    r = y - m
    scale = float(r.var()) if r.var() > 0 else 1.0
    best, log_ml = None, {}
    for sf in signals:
        K0 = _rbf(X, X, sf * scale, length2)
        for sn in noises:
            K = K0 + (sn * scale + 1e-10) * np.eye(n)
            try:
                Lc = np.linalg.cholesky(K)
            except np.linalg.LinAlgError:
                continue
            alpha = np.linalg.solve(Lc.T, np.linalg.solve(Lc, r))
            ll = float(-0.5 * r @ alpha - np.log(np.diag(Lc)).sum() - 0.5 * n * np.log(2 * np.pi))
            log_ml[(sf, sn)] = ll
            if best is None or ll > best[0]:
                best = (ll, sf, sn, Lc, alpha)
    if best is None:
        raise ValueError("the GP kernel matrix is not positive definite for any setting")
    _, sf, sn, Lc, alpha = best
    return GPFit(X=X, alpha=alpha, L=Lc, mean=m, signal=sf * scale, noise=sn * scale + 1e-10, length2=length2,
                 log_ml=log_ml)


# ============================================================================ features
def one_hot_index(wt: str, mutants: Sequence[str], *, offset: int = 0, alphabet: str = ALPHABET
                  ) -> list[list[int]]:
    """For each mutant the one-hot feature indices ``i * len(alphabet) + alphabet.index(a)`` of its
    non-synonymous substitutions (``i`` the 0-based position in ``wt``)."""
    A = {a: k for k, a in enumerate(alphabet)}
    out = []
    for r, m in enumerate(mutants, start=1):
        idx = []
        for w, p, t in parse_mutant(m, row=r):
            i = p - 1 - offset
            if not 0 <= i < len(wt) or wt[i] != w:
                raise VariantError(f"does not match the wild type at position {p}", mutant=m, row=r, position=p)
            if t == w:
                continue
            if t not in A:
                raise VariantError(f"letter {t!r} at position {p} is not one of {alphabet}", mutant=m, row=r,
                                   position=p)
            idx.append(i * len(alphabet) + A[t])
        out.append(idx)
    return out


#: Indicator feature blocks a :class:`FewShotModel` can use (see :class:`FeatureSet`).
INDICATOR_BLOCKS = ("onehot", "site", "aa", "pairs", "sitepairs")
#: Penalty ratios of the zero-shot columns that selection tries (relative to the indicator blocks).
DEFAULT_RATIOS = (1e-3,)


@dataclass(frozen=True)
class FeatureSet:
    """One regression design: which indicator blocks, which zero-shot columns, at what penalty ratio.

    Blocks (each a set of 0/1 columns; a variant's row has a 1 for each of its substitutions'):

    * ``onehot``: one column per substitution (position ``p`` to letter ``a``);
    * ``site``: one per mutated position (shared by every letter there);
    * ``aa``: one per substituted-to letter (shared by every position: a learnt "which residues are
      tolerated" profile, e.g. hydrophobicity);
    * ``pairs``: one per pair of substitutions ``(p, a, q, b)`` that occur together in a training
      variant (epistasis of that exact pair); pairs never seen in training get no column (weight 0);
    * ``sitepairs``: one per pair of positions ``(p, q)`` mutated together in a training variant.

    ``zero_shot``: indices of the zero-shot score columns used (their missing-score indicator comes with
    them); ``ratio``: their penalty multiplier (the indicator blocks have 1).
    """

    blocks: tuple[str, ...]
    zero_shot: tuple[int, ...] = ()
    ratio: float = 1.0

    def label(self, zs_names: Sequence[str] | None = None) -> str:
        parts = list(self.blocks)
        for k in self.zero_shot:
            parts.append(zs_names[k] if zs_names is not None else f"zero_shot_{k + 1}")
        s = " + ".join(parts) if parts else "(intercept only)"
        return s + (f" (zero-shot penalty ×{self.ratio:g})" if self.zero_shot else "")


def _subsets(items: Sequence, *, nonempty: bool = False) -> list[tuple]:
    out = [()] if not nonempty else []
    for k in range(1, len(items) + 1):
        out += [tuple(c) for c in itertools.combinations(items, k)]
    return out


class FewShotModel:
    """Features of a set of variants of one wild type, and a regression fitted on some of them.

    Build with :func:`fit_fewshot` (or construct and :meth:`fit`); :meth:`predict` takes row indices into
    the same variant set (every row's features are known up front: the zero-shot scores are standardised
    over all of them). The constructor's flags say which indicator blocks are *available*; :meth:`fit`
    either uses all of them (``select=False``) or chooses among :meth:`candidates` by leave-one-out CV on
    the training rows (``select=True``, the default).
    """

    def __init__(self, wt: str, mutants: Sequence[str], zero_shot: np.ndarray | None = None, *,
                 one_hot: bool = True, site: bool = False, aa: bool = False, pairs: bool = False,
                 sitepairs: bool = False, max_pairs: int = 20000, offset: int = 0, alphabet: str = ALPHABET) -> None:
        self.wt, self.alphabet = wt, alphabet
        self.mutants = list(mutants)
        n = len(self.mutants)
        flags = {"onehot": one_hot, "site": site, "aa": aa, "pairs": pairs, "sitepairs": sitepairs}
        self.blocks = tuple(b for b in INDICATOR_BLOCKS if flags[b])
        self.subs = (one_hot_index(wt, self.mutants, offset=offset, alphabet=alphabet) if self.blocks
                     else [[] for _ in range(n)])
        self.max_pairs = int(max_pairs)
        Z = np.zeros((n, 0)) if zero_shot is None else np.asarray(zero_shot, dtype=float).reshape(n, -1)
        cols, names = [], []
        missing = ~np.isfinite(Z).all(1) if Z.shape[1] else np.zeros(n, dtype=bool)
        for k in range(Z.shape[1]):
            z = Z[:, k]
            ok = np.isfinite(z)
            if not ok.any():
                raise ValueError(f"zero-shot feature {k + 1} has no finite value")
            mu, sd = z[ok].mean(), z[ok].std()
            cols.append(np.where(ok, (z - mu) / (sd if sd > 0 else 1.0), 0.0))
            names.append(f"zero_shot_{k + 1}")
        self.n_zero_shot = len(cols)
        if missing.any():
            cols.append(missing.astype(float))
            names.append("no_zero_shot_score")
        self.dense = np.stack(cols, 1) if cols else np.zeros((n, 0))
        self.dense_names = names
        self.fit_: RidgeFit | GPFit | None = None
        self.choice_: FeatureSet | None = None
        self.vocab_: dict = {}
        self.cv_: list[tuple[FeatureSet, float, float]] = []

    # ------------------------------------------------------------------ design matrices
    def _pair_keys(self, i: int, kind: str) -> list[tuple[int, int]]:
        s = sorted(self.subs[i])
        if kind == "sitepairs":
            s = sorted({v // len(self.alphabet) for v in s})
        return list(itertools.combinations(s, 2))

    def pair_vocab(self, rows: Sequence[int]) -> dict:
        """``{"pairs": {key: column}, "sitepairs": {...}}`` of the pairs occurring in ``rows`` (the
        training rows): at most ``max_pairs`` of each, the most frequent first (ties: first seen)."""
        vocab = {}
        for kind in ("pairs", "sitepairs"):
            if kind not in self.blocks:
                continue
            counts: dict = {}
            for i in np.asarray(rows, dtype=int):
                for key in self._pair_keys(int(i), kind):
                    counts[key] = counts.get(key, 0) + 1
            order = sorted(counts, key=lambda k: -counts[k])[:self.max_pairs]  # stable: first seen on ties
            vocab[kind] = {k: c for c, k in enumerate(order)}
        return vocab

    def _widths(self, fs: FeatureSet, vocab: dict) -> dict:
        L, A = len(self.wt), len(self.alphabet)
        size = {"onehot": L * A, "site": L, "aa": A}
        return {b: size[b] if b in size else len(vocab.get(b, {})) for b in fs.blocks}

    def design(self, rows: Sequence[int] | np.ndarray, fs: FeatureSet | None = None, vocab: dict | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(X, penalty)`` of ``rows`` under ``fs`` (default: the fitted choice) with the pair ``vocab``
        (default: the fitted one). Columns: the blocks in ``fs.blocks`` order, then the zero-shot columns
        and, when some variant lacks a score, the missing-score indicator."""
        fs = self.choice_ if fs is None else fs
        vocab = self.vocab_ if vocab is None else vocab
        if fs is None:
            raise RuntimeError("fit first")
        rows = np.asarray(rows, dtype=int)
        A = len(self.alphabet)
        widths = self._widths(fs, vocab)
        zcols = list(fs.zero_shot) + ([self.n_zero_shot] if fs.zero_shot and self.dense.shape[1] > self.n_zero_shot
                                      else [])
        p_ind = sum(widths.values())
        X = np.zeros((len(rows), p_ind + len(zcols)))
        start = 0
        for b in fs.blocks:
            for r, i in enumerate(rows):
                s = self.subs[i]
                if b == "onehot":
                    X[r, [start + v for v in s]] = 1.0
                elif b == "site":
                    X[r, [start + v // A for v in s]] = 1.0
                elif b == "aa":
                    for v in s:  # a letter twice in a multi-mutant counts twice
                        X[r, start + v % A] += 1.0
                else:
                    look = vocab.get(b, {})
                    cols = [look[k] for k in self._pair_keys(int(i), b) if k in look]
                    X[r, [start + c for c in cols]] = 1.0
            start += widths[b]
        if zcols:
            X[:, p_ind:] = self.dense[np.ix_(rows, zcols)]
        pen = np.ones(X.shape[1])
        pen[p_ind:] = fs.ratio
        return X, pen

    def features(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Every available block and zero-shot column of ``rows`` (pair vocabulary from ``rows``)."""
        fs = FeatureSet(self.blocks, tuple(range(self.n_zero_shot)), 1.0)
        return self.design(rows, fs, self.pair_vocab(rows))[0]

    # ------------------------------------------------------------------ fitting
    def candidates(self, ratios: Sequence[float] = DEFAULT_RATIOS) -> list[FeatureSet]:
        """The designs the first stage of selection chooses from, simplest first: one-hot (when available)
        plus every subset of the other available additive blocks (``site``, ``aa``), crossed with no
        zero-shot score or any non-empty subset of them (all of them only, beyond 3) at each penalty
        ratio. (The pair blocks are a second stage, see :meth:`fit`.)"""
        base = ("onehot",) if "onehot" in self.blocks else ()
        rest = [b for b in self.blocks if b not in ("onehot", "pairs", "sitepairs")]
        k = self.n_zero_shot
        zsets = _subsets(range(k), nonempty=True) if k <= 3 else [tuple(range(k))]
        out = []
        for extra in _subsets(rest):
            ind = base + extra
            if ind:
                out.append(FeatureSet(ind))
            for zs in zsets:
                for r in ratios:
                    out.append(FeatureSet(ind, zs, float(r)))
        return out

    def _fit_design(self, rows, y, fs: FeatureSet, vocab, lambdas, nonneg: bool, criterion: str = "loo"):
        """Ridge on ``fs`` (λ by LOO); with ``nonneg`` a zero-shot column fitted negative is dropped and the
        rest refitted (so the design may shrink). Returns ``(design, fit)``."""
        while True:
            X, pen = self.design(rows, fs, vocab)
            fit = fit_ridge(X, y, lambdas=lambdas, penalty=pen, criterion=criterion)
            p_ind = X.shape[1] - len(fs.zero_shot) - (1 if fs.zero_shot and self.dense.shape[1] > self.n_zero_shot
                                                        else 0)
            neg = [k for j, k in enumerate(fs.zero_shot) if fit.coef[p_ind + j] < 0] if nonneg else []
            if not neg:
                return fs, fit
            fs = FeatureSet(fs.blocks, tuple(k for k in fs.zero_shot if k not in neg),
                            fs.ratio if len(neg) < len(fs.zero_shot) else 1.0)

    def fit(self, rows: Sequence[int], y: np.ndarray, *, lambdas: Sequence[float] = DEFAULT_LAMBDAS,
            aug_ratio: float = 1e-3, ratios: Sequence[float] | None = None, select: bool = True,
            candidates: Sequence[FeatureSet] | None = None, nonneg: bool = True,
            regressor: str = "ridge", criterion: str = "loo") -> "FewShotModel":
        """Fit on ``rows`` (labels ``y``).

        ``select=True``: every design in ``candidates`` (default :meth:`candidates` with ``ratios``,
        default ``(aug_ratio, 0.1)``) is fitted with its λ chosen by exact leave-one-out CV on the training
        rows, and the (design, λ) of least LOO mean squared error is kept (ties: the simpler design, the
        stronger λ). ``select=False``: all available blocks and zero-shot columns, ratio ``aug_ratio``.
        ``nonneg``: a zero-shot column whose fitted weight is negative is dropped from that design and
        the rest refitted: the scores are oriented so that higher means fitter, and with a handful of
        noisy labels a negative weight is far more often noise than an anti-correlated predictor
        (``nonneg=False`` is Hsu et al.'s unconstrained regression). ``regressor="gp"``: :func:`fit_gp`
        on the chosen design's features instead of the ridge."""
        rows = np.asarray(rows, dtype=int)
        y = np.asarray(y, dtype=float)
        if regressor not in ("ridge", "gp"):
            raise ValueError(f"unknown regressor {regressor!r} (ridge | gp)")
        vocab = self.pair_vocab(rows)
        if not select:
            cands = [FeatureSet(self.blocks, tuple(range(self.n_zero_shot)), float(aug_ratio))]
        elif candidates is not None:
            cands = list(candidates)
        else:
            cands = self.candidates(ratios if ratios is not None else
                                    tuple(dict.fromkeys((float(aug_ratio),) + DEFAULT_RATIOS[1:])))
        if not cands:
            raise ValueError("no features: enable an indicator block or give zero-shot scores")
        best, seen, self.cv_ = None, set(), []

        def consider(fs):
            nonlocal best
            fs, fit = self._fit_design(rows, y, fs, vocab, lambdas, nonneg, criterion)
            if fs in seen:
                return
            seen.add(fs)
            if not fit.loo_mse:
                err = float("nan")
            else:  # smaller is better
                err = fit.loo_mse[fit.lam] if criterion == "loo" else -fit.log_evidence[fit.lam]
            self.cv_.append((fs, fit.lam, err))
            if best is None or err < best[2]:
                best = (fs, fit, err)

        for fs in cands:
            consider(fs)
        pair_blocks = [b for b in ("pairs", "sitepairs") if b in self.blocks]
        if select and candidates is None and pair_blocks:
            # second stage: the pair blocks on top of the first stage's choice (each subset), kept only when
            # they lower the criterion too (the pair designs are the large ones: this keeps the count small)
            first = best[0]
            for extra in _subsets(pair_blocks, nonempty=True):
                consider(FeatureSet(tuple(b for b in self.blocks if b in first.blocks or b in extra),
                                    first.zero_shot, first.ratio))
        self.choice_, self.vocab_ = best[0], vocab
        self.fit_ = best[1]
        self.dropped_ = [self.dense_names[k] for k in range(self.n_zero_shot) if k not in best[0].zero_shot]
        if regressor == "gp":
            self.fit_ = fit_gp(self.design(rows)[0], y)
        return self

    def predict(self, rows: Sequence[int] | None = None, *, with_sd: bool = True, chunk: int = 2048):
        """Predictions for ``rows`` (default all): ``mean`` or ``(mean, sd, pred_sd)``."""
        if self.fit_ is None:
            raise RuntimeError("fit first")
        rows = np.arange(len(self.mutants)) if rows is None else np.asarray(rows, dtype=int)
        outs = [self.fit_.predict(self.design(rows[s:s + chunk])[0], with_sd=with_sd)
                for s in range(0, len(rows), chunk)]
        if not outs:
            return (np.zeros(0),) * 3 if with_sd else np.zeros(0)
        if not with_sd:
            return np.concatenate(outs)
        return tuple(np.concatenate([o[k] for o in outs]) for k in range(3))


def fit_fewshot(wt: str, mutants: Sequence[str], train_rows: Sequence[int], y_train: np.ndarray,
                zero_shot: np.ndarray | None = None, *, one_hot: bool = True, site: bool = False, aa: bool = False,
                pairs: bool = False, sitepairs: bool = False, offset: int = 0,
                lambdas: Sequence[float] = DEFAULT_LAMBDAS, aug_ratio: float = 1e-3, select: bool = True,
                nonneg: bool = True, regressor: str = "ridge") -> FewShotModel:
    """Fit the augmented regression on ``train_rows`` of ``mutants`` (labels ``y_train``)."""
    return FewShotModel(wt, mutants, zero_shot, one_hot=one_hot, site=site, aa=aa, pairs=pairs,
                        sitepairs=sitepairs, offset=offset).fit(
        train_rows, y_train, lambdas=lambdas, aug_ratio=aug_ratio, select=select, nonneg=nonneg,
        regressor=regressor)


# ============================================================================ metrics
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant (a constant
    prediction ranks nothing)."""
    import pandas as pd  # average ranks for ties (pandas is a core dependency, scipy is not)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ra = pd.Series(a).rank(method="average").to_numpy()
    rb = pd.Series(b).rank(method="average").to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def ndcg_top(y_true: np.ndarray, y_pred: np.ndarray, frac: float = 0.1) -> float:
    """NDCG of the top ``k = ceil(frac · n)`` predictions, relevance ``y - min(y)`` (non-negative):
    ``Σ_{i<k} rel(π_i) / log2(i + 2)`` over the predicted order ``π`` (ties broken by position),
    divided by the same sum over the true order. 1 = the top ``k`` are ranked perfectly."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(frac * n))
    rel = y_true - y_true.min()
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    order = np.argsort(-y_pred, kind="stable")[:k]
    ideal = np.sort(rel)[::-1][:k]
    idcg = float(ideal @ disc)
    return float(rel[order] @ disc / idcg) if idcg > 0 else float("nan")


def learning_curve(wt: str, mutants: Sequence[str], y: np.ndarray, zero_shot: np.ndarray | None = None, *,
                   sizes: Sequence[int] = (8, 32, 128, 512, 2048), splits: int = 5, seed: int = 0,
                   one_hot: bool = True, site: bool = False, aa: bool = False, lambdas: Sequence[float] = DEFAULT_LAMBDAS,
                   aug_ratio: float = 1e-3, select: bool = True, nonneg: bool = True, max_test: int | None = None
                   ) -> list[dict]:
    """Train on ``size`` random labelled variants, evaluate on the rest (or ``max_test`` of them),
    ``splits`` times per size; rows ``{size, split, spearman, ndcg10, lam, seconds}``. Sizes that leave
    fewer than 20 % of the variants to test on are skipped."""
    import time
    y = np.asarray(y, dtype=float)
    model = FewShotModel(wt, mutants, zero_shot, one_hot=one_hot, site=site, aa=aa)
    n = len(y)
    rng = np.random.default_rng(seed)
    out = []
    for size in sizes:
        if size > 0.8 * n:
            continue
        for s in range(splits):
            perm = rng.permutation(n)
            tr, te = perm[:size], perm[size:]
            if max_test is not None and len(te) > max_test:
                te = te[:max_test]
            t0 = time.perf_counter()
            model.fit(tr, y[tr], lambdas=lambdas, aug_ratio=aug_ratio, select=select, nonneg=nonneg)
            pred = model.predict(te, with_sd=False)
            dt = time.perf_counter() - t0
            out.append({"size": int(size), "split": s, "spearman": spearman(pred, y[te]),
                        "ndcg10": ndcg_top(y[te], pred), "lam": model.fit_.lam, "seconds": dt,
                        "n_test": int(len(te))})
    return out


# ============================================================================ labelled tables
def read_labels(path, wt: str, *, label_column: str | None = None, column: str | None = None, offset: int = 0,
                source: str | None = None):
    """A validated table of measured variants: ``mutant`` (canonical) and ``y`` (the measurement).

    The measurement column is ``label_column``, or the first of :data:`LABEL_COLUMNS` present (any
    case), or the only numeric column. Errors name the file, the 1-based data row and the position:
    a variant that does not match the wild type, an empty or non-numeric measurement.
    """
    import pandas as pd

    from .variants import _find_column, read_variants
    if isinstance(path, pd.DataFrame):  # e.g. an upload: ``source`` names it in errors
        try:
            table = read_variants(path, wt, column=column, offset=offset)
        except VariantError as e:
            raise VariantError(e.reason, mutant=e.mutant, row=e.row, position=e.position, source=source) from None
        source = source or "the table"
    else:
        table = read_variants(path, wt, column=column, offset=offset)
        source = str(path)
    cols = [c for c in table.columns if c not in ("mutant", "sequence", "num_mutations", "positions")]
    if label_column is not None:
        if label_column not in table.columns:
            raise ValueError(f"{source}: no label column {label_column!r}; columns are {cols}")
        lcol = label_column
    else:
        lcol = _find_column(cols, LABEL_COLUMNS)
        if lcol is None:
            numeric = [c for c in cols if pd.api.types.is_numeric_dtype(table[c])]
            if len(numeric) != 1:
                raise ValueError(f"{source}: cannot tell which column is the measurement (columns {cols}); "
                                 f"pass --label-column")
            lcol = numeric[0]
    vals = pd.to_numeric(table[lcol], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(vals))
    if len(bad):
        r = int(bad[0]) + 1
        raise VariantError(f"measurement {lcol!r} is empty or not a number ({table[lcol].iloc[r - 1]!r})",
                           mutant=str(table["mutant"].iloc[r - 1]), row=r, source=source)
    out = table[["mutant"]].copy()
    out["y"] = vals
    out.attrs["label_column"] = lcol
    return out
