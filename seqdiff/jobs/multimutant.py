"""Additive scoring of multi-mutants: the sum of the scores of their single substitutions.

``seqdiff score --multi joint`` (the default) scores a multi-mutant as a whole: masked marginal masks
all of its positions at once (each substitution is read out in the context of the others masked), the
ELBO difference and the AR log-likelihood ratio score the full variant sequence, so they can carry
epistasis. ``--multi additive`` scores each single substitution against the wild type and sums:
``s(A23G:K45R) = s(A23G) + s(K45R)`` (ELBO standard errors add in quadrature), the independent-sites
model; for a single mutant both are the same. BLOSUM62 and the one-hot part of the few-shot
regression are always additive.
"""

from __future__ import annotations

import numpy as np

from .variants import format_mutant, parse_mutant, score_status

__all__ = ["additive_scores", "MULTI_HELP"]

MULTI_HELP = ("how multi-mutants are scored: joint (default: masked marginal masks all mutated positions at "
              "once, ELBO and ar score the whole variant) or additive (the sum of each substitution's own "
              "score: the independent-sites model); BLOSUM62 and one-hot ridge are always additive")


def additive_scores(score_fn, wt: str, table):
    """``table`` with the score columns of ``score_fn(wt, singles_table)`` summed over each row's
    substitutions (``score_fn`` is e.g. ``lambda wt, t: score_variants(model, wt, t, methods=...)``)."""
    import pandas as pd

    from .variants import read_variants
    singles: dict[str, None] = {}
    parts = []
    for m in table["mutant"]:
        subs = [format_mutant([s]) for s in parse_mutant(m) if s[0] != s[2]]
        parts.append(subs)
        if score_status(m) == "scored":
            singles.update(dict.fromkeys(subs))
    single_list = list(singles)
    scored = score_fn(wt, read_variants(pd.DataFrame({"mutant": single_list}), wt)) if single_list else None
    out = table.copy()
    cols = [] if scored is None else [c for c in scored.columns if c.startswith("score_") and c != "score_status"]
    if scored is None:  # only wild types / nonsense: let the scorer name the columns
        probe = score_fn(wt, table.iloc[:0])
        cols = [c for c in probe.columns if c.startswith("score_") and c != "score_status"]
    look = {c: dict(zip(single_list, scored[c].to_numpy(dtype=float))) if scored is not None else {} for c in cols}
    status = [score_status(m) for m in table["mutant"]]
    for c in cols:
        vals = []
        for subs, st in zip(parts, status):
            if st != "scored":
                vals.append(np.nan)
            elif c.endswith("_se"):
                vals.append(float(np.sqrt(sum(look[c][s] ** 2 for s in subs))))
            else:
                vals.append(float(sum(look[c][s] for s in subs)))
        out[c] = vals
    out["score_status"] = status
    return out
