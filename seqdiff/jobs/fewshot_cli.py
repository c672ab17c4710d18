"""`seqdiff score --train-labels FILE`: few-shot prediction (see :mod:`seqdiff.jobs.fewshot`).

Reads the measured variants and the variants to predict (``--variants``, or every single mutant of
the wild type when none are given), validates every row against the wild type before any work,
scores all of them zero-shot with the model (``--method``; ``--method none`` for one-hot ridge only),
fits the augmented ridge regression with leave-one-out choice of its strength, and writes the
variants with ``fewshot_pred``, ``fewshot_sd`` (uncertainty of the prediction), ``fewshot_pred_sd``
(of a new measurement), ``measured`` and ``in_training`` columns, atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["add_fewshot_args", "score_fewshot", "family_for"]


def add_fewshot_args(p) -> None:
    from .multimutant import MULTI_HELP
    p.add_argument("--multi", choices=["joint", "additive"], default="joint", help=MULTI_HELP)
    g = p.add_argument_group("few-shot scoring (with measured variants)")
    g.add_argument("--train-labels", metavar="CSV", default=None,
                   help="measured variants (a mutant column and a measurement column): fit a ridge regression "
                        "on one-hot substitutions (and the other --fewshot-features) plus the model's zero-shot "
                        "score(s) (Hsu et al. 2022), which features and the strength chosen by leave-one-out CV "
                        "on the measured variants, and predict --variants (default: every single mutant) with an "
                        "uncertainty. One-hot effects are additive over the substitutions of a multi-mutant; "
                        "epistasis enters through the pairs/sitepairs features and the zero-shot score's joint "
                        "effect (--multi). --method none: no model score")
    g.add_argument("--label-column", default=None,
                   help="the measurement column of --train-labels (default: fitness, score, y, label, "
                        "measurement, value, activity or stability, else the only numeric column)")
    g.add_argument("--fewshot-features", default="onehot,site,aa,blosum62",
                   help="comma-separated regression features besides the model's zero-shot score(s): onehot "
                        "(one weight per substitution), site (one per mutated position), aa (one per substituted-to "
                        "letter), pairs (one per pair of substitutions seen together in a measured multi-mutant: "
                        "epistasis), sitepairs (one per pair of positions mutated together in a measured variant), "
                        "blosum62 (the substitution-matrix score, as a second zero-shot feature). With "
                        "--fewshot-selection cv (default) these are what cross-validation may use")
    g.add_argument("--fewshot-selection", choices=["cv", "none"], default="cv",
                   help="cv: choose which features to use (one-hot plus any of site/aa, any of the zero-shot "
                        "scores, then pairs/sitepairs on top) by leave-one-out error on the measured variants; "
                        "none: use all of --fewshot-features")
    g.add_argument("--regressor", choices=["ridge", "gp"], default="ridge",
                   help="ridge (closed form, strength by leave-one-out CV; the benchmarked default) or gp (a "
                        "Gaussian process with an RBF kernel on the same features, noise and signal by marginal "
                        "likelihood; O(n³): for up to a few thousand labels)")
    g.add_argument("--aug-ratio", type=float, default=1e-3,
                   help="penalty of the zero-shot features relative to the one-hot weights (small: with few "
                        "labels the prediction follows the zero-shot ranking)")
    _add_family_args(p)


def _add_family_args(p) -> None:
    g = p.add_argument_group("family-aware scoring (with homologs)")
    g.add_argument("--homologs", metavar="FILE", default=None,
                   help="the wild type's homologs (Stockholm, A2M/A3M, aligned or unaligned FASTA): fine-tune "
                        "the model on them (EVmutation 80 %% identity weights) and score with the result; the "
                        "family model is cached by the file's SHA-256 and reused")
    g.add_argument("--family-steps", type=int, default=300, help="fine-tuning steps (batches of 16)")
    g.add_argument("--family-lr", type=float, default=1e-4, help="fine-tuning learning rate")
    g.add_argument("--family-cache", default=None,
                   help="folder of cached family models (default $SEQDIFF_CACHE/family or ~/.cache/seqdiff/family)")


def family_for(args, model, wt: str):
    """The model to score with: ``model`` itself, or its family fine-tune when ``--homologs`` is given."""
    if not getattr(args, "homologs", None):
        return model
    from ..pretrained import resolve_model
    from .family import family_model
    fam, _ = family_model(model, resolve_model(args.model), args.homologs, wt, steps=args.family_steps,
                          lr=args.family_lr, seed=args.seed, cache_dir=args.family_cache,
                          log=(lambda m: None) if args.quiet else None)
    return fam


def score_fewshot(args) -> int:
    import pandas as pd

    from ..data import read_fasta
    from ..atomic import write_atomic
    from ..cli.jobs import _load, check_outputs
    from .fewshot import FewShotModel, read_labels
    from .variants import read_variants, single_mutant_scan

    if args.fasta:
        raise ValueError("--train-labels predicts variants of a wild type; it does not take --fasta")
    if not args.aug_ratio > 0:
        raise ValueError(f"--aug-ratio must be > 0, got {args.aug_ratio}")
    if args.resume:
        raise ValueError("--resume is for streamed zero-shot scoring; a few-shot run writes its output at the end")
    if args.wt_fasta:
        wt = next(iter(read_fasta(args.wt_fasta))).seq
    elif args.wt:
        wt = args.wt.strip().upper()
    else:
        raise ValueError("--train-labels needs the wild type: --wt SEQUENCE or --wt-fasta FILE")
    out = Path(args.out)
    check_outputs([out], args.overwrite)
    labels = read_labels(args.train_labels, wt, label_column=args.label_column, column=args.column)
    if args.variants:
        targets = read_variants(args.variants, wt, column=args.column)
    else:
        targets = single_mutant_scan(wt)[["mutant"]]
    methods = [m for m in (args.method or ["auto"])]
    use_model = methods != ["none"]
    if args.homologs and not use_model:
        raise ValueError("--homologs needs a model to fine-tune; drop --method none")
    if "none" in methods and use_model:
        raise ValueError("--method none cannot be combined with other methods")
    feats = {f.strip() for f in args.fewshot_features.split(",") if f.strip()}
    known = ("onehot", "site", "aa", "pairs", "sitepairs", "blosum62")
    unknown = feats - set(known)
    if unknown:
        raise ValueError(f"--fewshot-features: unknown {', '.join(sorted(unknown))} ({', '.join(known)})")
    union = list(dict.fromkeys(list(labels["mutant"]) + list(targets["mutant"])))
    index = {m: i for i, m in enumerate(union)}
    Z = None
    zcols: list[str] = []
    if use_model:
        from .scoring import check_variants, score_variants
        model = family_for(args, _load(args), wt)
        table = read_variants(pd.DataFrame({"mutant": union}), wt)
        check_variants(model, wt, table)
        def score(w, t):
            return score_variants(model, w, t, methods=methods, n_t=args.n_t, seed=args.seed,
                                  batch_size=args.batch_size)
        if args.multi == "additive":
            from .multimutant import additive_scores
            scored = additive_scores(score, wt, table)
        else:
            scored = score(wt, table)
        zcols = [c for c in scored.columns if c.startswith("score_") and c not in ("score_status",)
                 and not c.endswith("_se")]
        Z = scored[zcols].to_numpy(dtype=float)
    if "blosum62" in feats:
        from .variants import blosum62_scores
        b = np.asarray(blosum62_scores(wt, union), dtype=float)[:, None]
        Z = b if Z is None else np.hstack([Z, b])
        zcols = zcols + ["blosum62"]
    if not feats - {"blosum62"} and Z is None:
        raise ValueError("no features: give --fewshot-features onehot/site/aa/blosum62 or a model --method")
    fs = FewShotModel(wt, union, Z, one_hot="onehot" in feats, site="site" in feats, aa="aa" in feats,
                      pairs="pairs" in feats, sitepairs="sitepairs" in feats)
    train_rows = np.array([index[m] for m in labels["mutant"]], dtype=int)
    y = labels["y"].to_numpy(dtype=float)
    if len(y) < 2:
        raise ValueError(f"{args.train_labels}: few-shot fitting needs at least 2 measured variants, got {len(y)}")
    fs.fit(train_rows, y, aug_ratio=args.aug_ratio, regressor=args.regressor,
           select=args.fewshot_selection == "cv")
    rows = np.array([index[m] for m in targets["mutant"]], dtype=int)
    mean, sd, pred_sd = fs.predict(rows)
    res = targets.copy()
    if Z is not None:
        for k, c in enumerate(zcols):
            res[c] = Z[rows, k]
    res["fewshot_pred"] = mean
    res["fewshot_sd"] = sd
    res["fewshot_pred_sd"] = pred_sd
    measured = labels.groupby("mutant")["y"].mean()
    res["in_training"] = [m in measured.index for m in targets["mutant"]]
    res["measured"] = [measured.get(m, np.nan) for m in targets["mutant"]]
    for c in ("positions",):
        if c in res:
            res = res.drop(columns=c)
    write_atomic(out, res.to_csv(index=False, lineterminator="\n"))
    design = fs.choice_.label(zcols)
    how = "chosen by leave-one-out CV" if args.fewshot_selection == "cv" else "as given"
    if fs.dropped_ and args.fewshot_selection == "none":
        names = {f"zero_shot_{k + 1}": c for k, c in enumerate(zcols)}
        design += f"; dropped for a negative weight: {', '.join(names[d] for d in fs.dropped_)}"
    ridge = fs.cv_[[c[0] for c in fs.cv_].index(fs.choice_)]
    lam, loo = ridge[1], ridge[2]
    if args.regressor == "ridge":
        print(f"fitted ridge on {len(y)} measured variants: features {design} ({how}), lambda {lam:.3g} by "
              f"leave-one-out CV, LOO RMSE {np.sqrt(loo):.3g} (labels sd {y.std():.3g}), noise sd "
              f"{np.sqrt(fs.fit_.sigma2):.3g}", file=sys.stderr)
    else:
        print(f"fitted a GP on {len(y)} measured variants: features {design} ({how}, by ridge LOO), signal sd "
              f"{np.sqrt(fs.fit_.signal):.3g}, noise sd {np.sqrt(fs.fit_.noise):.3g} by marginal likelihood "
              f"(labels sd {y.std():.3g})", file=sys.stderr)
    print(f"wrote {len(res)} rows to {out} (columns: {', '.join(zcols + ['fewshot_pred', 'fewshot_sd', 'fewshot_pred_sd'])})")
    return 0
