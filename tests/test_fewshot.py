"""Few-shot regression (seqdiff.jobs.fewshot) against independent computations on small problems."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from seqdiff.jobs.fewshot import (ALPHABET, FeatureSet, FewShotModel, fit_ridge, learning_curve, loo_residuals, ndcg_top,
                                  one_hot_index, read_labels, spearman)
from seqdiff.jobs.variants import VariantError


def _problem(n=12, p=5, noise=0.3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = scale * rng.normal(size=p)
    y = 1.5 + X @ w + noise * rng.normal(size=n)
    return X, y


def _lstsq_ridge(X, y, lam, penalty):
    """Ridge with an unpenalised intercept as ordinary least squares on the augmented system
    [1 X; 0 sqrt(λR)] β = [y; 0] (no centring, no SVD)."""
    n, p = X.shape
    A = np.vstack([np.hstack([np.ones((n, 1)), X]), np.hstack([np.zeros((p, 1)), np.diag(np.sqrt(lam * penalty))])])
    b = np.concatenate([y, np.zeros(p)])
    beta = np.linalg.lstsq(A, b, rcond=None)[0]
    return beta[0], beta[1:]


@pytest.mark.parametrize("n,p", [(12, 5), (6, 9)])  # over- and under-determined
def test_ridge_closed_form_matches_augmented_least_squares(n, p):
    X, y = _problem(n, p)
    pen = np.linspace(0.01, 2.0, p)
    fit = fit_ridge(X, y, lambdas=0.7, penalty=pen)
    b, w = _lstsq_ridge(X, y, 0.7, pen)
    np.testing.assert_allclose(fit.coef, w, rtol=1e-9, atol=1e-11)
    assert fit.intercept == pytest.approx(b, rel=1e-9)
    np.testing.assert_allclose(fit.predict(X), b + X @ w, rtol=1e-9)


def test_loo_closed_form_matches_refitting():
    X, y = _problem(10, 4, seed=3)
    pen = np.array([1.0, 1.0, 0.1, 3.0])
    for lam in (0.01, 1.0, 30.0):
        brute = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            b, w = _lstsq_ridge(X[keep], y[keep], lam, pen)
            brute.append(y[i] - (b + X[i] @ w))
        np.testing.assert_allclose(loo_residuals(X, y, lam, pen), brute, rtol=1e-8, atol=1e-10)


def test_cv_picks_the_strength_of_least_loo_error():
    lams = [1e-4, 1e-2, 1.0, 100.0, 1e4]
    # noiseless linear data: the weakest penalty fits best
    X, y = _problem(20, 4, noise=0.0, seed=1)
    assert fit_ridge(X, y, lambdas=lams).lam == 1e-4
    # labels unrelated to the features: the strongest penalty (predict the mean) wins
    rng = np.random.default_rng(2)
    assert fit_ridge(rng.normal(size=(30, 8)), rng.normal(size=30), lambdas=lams).lam == 1e4
    # in between: the choice is the argmin of brute-force leave-one-out error
    # (weak true weights against unit noise: shrinkage helps, but not all the way to the mean)
    X, y = _problem(20, 10, noise=1.0, seed=1, scale=0.4)
    grid = list(np.logspace(-2, 3, 11))
    fit = fit_ridge(X, y, lambdas=grid)
    brute = {}
    for lam in grid:
        errs = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            b, w = _lstsq_ridge(X[keep], y[keep], lam, np.ones(10))
            errs.append((y[i] - b - X[i] @ w) ** 2)
        brute[lam] = np.mean(errs)
    assert fit.lam == min(grid, key=brute.get)
    assert 1e-2 < fit.lam < 1e3  # an interior choice, so the test is not one of the extremes again
    for lam in grid:
        assert fit.loo_mse[lam] == pytest.approx(brute[lam], rel=1e-8)


@pytest.mark.parametrize("n,p", [(12, 5), (6, 9)])
def test_uncertainty_is_the_bayesian_posterior(n, p):
    """sd² = posterior variance of b + xᵀw under w ~ N(0, σ²/(λ r_j)), flat b, noise σ²: computed from
    the full (uncentred) posterior precision of (b, w) by explicit inversion."""
    X, y = _problem(n, p, seed=5)
    pen = np.linspace(0.5, 2.0, p)
    lam = 0.3
    fit = fit_ridge(X, y, lambdas=lam, penalty=pen)
    # σ² = RSS / (n - tr H), tr H from the explicit hat matrix
    A = np.hstack([np.ones((n, 1)), X])
    P = np.diag(np.concatenate([[0.0], lam * pen]))
    H = A @ np.linalg.inv(A.T @ A + P) @ A.T
    rss = float(((y - H @ y) ** 2).sum())
    sigma2 = rss / max(n - np.trace(H), 1.0)
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-8)
    cov = sigma2 * np.linalg.inv(A.T @ A + P)
    Xnew = np.random.default_rng(9).normal(size=(4, p))
    Anew = np.hstack([np.ones((4, 1)), Xnew])
    var = np.einsum("ij,jk,ik->i", Anew, cov, Anew)
    mean, sd, pred_sd = fit.predict(Xnew, with_sd=True)
    np.testing.assert_allclose(sd ** 2, var, rtol=1e-8)
    np.testing.assert_allclose(pred_sd ** 2, var + sigma2, rtol=1e-8)
    np.testing.assert_allclose(mean, Anew @ np.linalg.solve(A.T @ A + P, A.T @ y), rtol=1e-8)


def test_uncertainty_vanishes_for_noiseless_determined_fit_and_grows_away_from_data():
    X, y = _problem(30, 3, noise=0.0, seed=6)
    fit = fit_ridge(X, y, lambdas=1e-8)
    _, sd, pred_sd = fit.predict(X, with_sd=True)
    assert sd.max() < 1e-6 and pred_sd.max() < 1e-6
    X2, y2 = _problem(30, 3, noise=0.5, seed=6)
    fit2 = fit_ridge(X2, y2, lambdas=1.0)
    _, sd_near, _ = fit2.predict(X2.mean(0, keepdims=True), with_sd=True)
    _, sd_far, _ = fit2.predict(X2.mean(0, keepdims=True) + 10.0, with_sd=True)
    assert sd_far[0] > 5 * sd_near[0]


def test_one_hot_is_additive_over_substitutions():
    wt = "MKV"
    idx = one_hot_index(wt, ["M1A", "K2*", "M1A:K2*", "V3V", "WT"])
    A = len(ALPHABET)
    assert idx == [[ALPHABET.index("A")], [A + ALPHABET.index("*")], [ALPHABET.index("A"), A + ALPHABET.index("*")],
                   [], []]
    muts = ["M1A", "K2R", "V3L", "M1A:K2R", "K2R:V3L", "WT", "M1C", "V3I"]
    y = np.array([1.0, -2.0, 0.5, -1.0, -1.5, 0.0, 0.3, 0.2])
    m = FewShotModel(wt, muts).fit([0, 1, 2, 5, 6, 7], y[[0, 1, 2, 5, 6, 7]], lambdas=0.1, select=False)
    pred = m.predict(with_sd=False)
    b = m.fit_.intercept
    assert pred[3] == pytest.approx(pred[0] + pred[1] - b)  # a double = the sum of its singles' effects
    assert pred[4] == pytest.approx(pred[1] + pred[2] - b)
    assert pred[5] == pytest.approx(b)  # the wild type is the intercept
    with pytest.raises(VariantError, match="position 2"):
        one_hot_index(wt, ["M1A", "V2A"])
    # site features: one shared column per mutated position after the one-hot block
    fm = FewShotModel(wt, ["M1A", "K2R:V3L", "WT"], site=True)
    X = fm.features([0, 1, 2])
    assert X.shape == (3, 3 * A + 3)
    assert set(np.flatnonzero(X[0])) == {ALPHABET.index("A"), 3 * A}
    assert set(np.flatnonzero(X[1])) == {A + ALPHABET.index("R"), 2 * A + ALPHABET.index("L"), 3 * A + 1, 3 * A + 2}
    assert not X[2].any()
    only_site = FewShotModel(wt, ["M1A", "V3L"], one_hot=False, site=True).features([0, 1])
    np.testing.assert_array_equal(only_site, [[1, 0, 0], [0, 0, 1]])


def test_zero_shot_feature_is_used_when_it_explains_the_labels():
    """With labels that are a monotone function of the zero-shot score, 8 labels suffice to rank the
    rest nearly perfectly, while one-hot alone cannot rank unseen substitutions at all."""
    rng = np.random.default_rng(0)
    wt = "ACDEFGHIKL"
    muts = sorted({f"{wt[i]}{i + 1}{a}" for i in range(10) for a in "MNPQRSTVWY"})
    z = rng.normal(size=len(muts))
    y = 2.0 * z + 0.05 * rng.normal(size=len(muts))
    tr = rng.choice(len(muts), 8, replace=False)
    te = np.setdiff1d(np.arange(len(muts)), tr)
    aug = FewShotModel(wt, muts, z).fit(tr, y[tr], select=False).predict(te, with_sd=False)
    plain = FewShotModel(wt, muts).fit(tr, y[tr], select=False).predict(te, with_sd=False)
    assert spearman(aug, y[te]) > 0.95
    # one-hot alone has no weight for a substitution it has not seen: every held-out single (all unseen)
    # is predicted at the training mean
    assert (plain == plain[0]).all() and plain[0] == pytest.approx(y[tr].mean())  # exactly tied
    assert spearman(plain, y[te]) == 0.0
    # missing zero-shot scores (nonsense variants) get 0 and an indicator column
    z2 = z.copy()
    z2[:3] = np.nan
    m = FewShotModel(wt, muts, z2)
    assert m.dense_names == ["zero_shot_1", "no_zero_shot_score"]
    assert (m.dense[:3, 0] == 0).all() and (m.dense[:, 1] == np.r_[np.ones(3), np.zeros(len(muts) - 3)]).all()


def test_metrics_on_explicit_cases():
    y = np.array([3.0, 1.0, 2.0, 0.0, 5.0, 4.0, 1.0, 2.0, 0.0, 0.0])
    assert ndcg_top(y, y) == pytest.approx(1.0)
    # k = 1: the best predicted variant is the one with y = 3 (rel 3 of an ideal 5)
    pred = np.array([9.0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    assert ndcg_top(y, pred, frac=0.1) == pytest.approx(3 / 5)
    # k = 2: order (y=4, y=3) vs ideal (5, 4)
    pred2 = np.array([8.0, 0, 0, 0, 0, 9, 0, 0, 0, 0])
    assert ndcg_top(y, pred2, frac=0.2) == pytest.approx((4 + 3 / math.log2(3)) / (5 + 4 / math.log2(3)))
    a, b = np.random.default_rng(1).normal(size=(2, 50))
    assert spearman(a, b) == pytest.approx(spearmanr(a, b)[0])


def test_learning_curve_skips_sizes_without_a_test_set():
    wt = "ACDEFGHIKL"
    muts = [f"{wt[i]}{i + 1}{a}" for i in range(10) for a in "MNPQRSTVWY"]
    y = np.random.default_rng(0).normal(size=100)
    rows = learning_curve(wt, muts, y, sizes=(8, 32, 128), splits=2)
    assert sorted({r["size"] for r in rows}) == [8, 32] and len(rows) == 4
    assert all(r["n_test"] == 100 - r["size"] for r in rows)


def test_read_labels_names_file_row_and_position(tmp_path):
    wt = "MKVLA"
    good = tmp_path / "measured.csv"
    good.write_text("mutant,fitness,replicates\nM1A,0.5,2\nK2R:V3L,-1.0,3\nWT,0,1\n")
    t = read_labels(good, wt)
    assert list(t["mutant"]) == ["M1A", "K2R:V3L", "WT"] and list(t["y"]) == [0.5, -1.0, 0.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("mutant,fitness\nM1A,0.5\nK2R:A3L,-1.0\n")
    with pytest.raises(VariantError) as e:
        read_labels(bad, wt)
    msg = str(e.value)
    assert "bad.csv" in msg and "row 2" in msg and "position 3" in msg
    nan = tmp_path / "nan.csv"
    nan.write_text("mutant,fitness\nM1A,0.5\nK2R,\n")
    with pytest.raises(VariantError, match=r"nan.csv: row 2 .*empty or not a number"):
        read_labels(nan, wt)
    two = tmp_path / "two.csv"
    two.write_text("mutant,a,b\nM1A,0.5,1\n")
    with pytest.raises(ValueError, match="label-column"):
        read_labels(two, wt)
    assert list(read_labels(two, wt, label_column="b")["y"]) == [1.0]


# ------------------------------------------------------------------------------------------- CLI
GB1_WT = "TYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"


def test_cli_train_labels_predicts_with_uncertainty(tmp_path, capsys):
    import pandas as pd

    from seqdiff.cli import main
    lab = tmp_path / "measured.csv"
    lab.write_text("mutant,fitness\nT1A,0.5\nY2A,-1.0\nK3A,-0.2\nL4A,-2.0\nT1D,0.4\nY2F,0.1\n")
    var = tmp_path / "variants.csv"
    var.write_text("mutant\nT1A\nT1C\nY2A:K3A\nL4V\n")
    out = tmp_path / "pred.csv"
    assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(lab), "--variants", str(var),
                 "-o", str(out), "-q"]) == 0
    d = pd.read_csv(out)
    assert list(d["mutant"]) == ["T1A", "T1C", "Y2A:K3A", "L4V"]
    assert {"score_masked_marginal", "blosum62", "fewshot_pred", "fewshot_sd", "fewshot_pred_sd"} <= set(d.columns)
    assert list(d["in_training"]) == [True, False, False, False]
    assert d["measured"].iloc[0] == 0.5 and d["measured"].iloc[1:].isna().all()
    assert (d["fewshot_pred_sd"] > d["fewshot_sd"]).all() and (d["fewshot_sd"] > 0).all()
    # --method none: no model, and without the site/blosum features an unseen substitution is the mean
    out2 = tmp_path / "pred2.csv"
    assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(lab), "--method", "none",
                 "--fewshot-features", "onehot", "-o", str(out2), "-q"]) == 0
    d2 = pd.read_csv(out2)
    assert len(d2) == 19 * len(GB1_WT) and "score_masked_marginal" not in d2
    out3 = tmp_path / "pred3.csv"
    assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(lab), "--method", "none",
                 "--regressor", "gp", "-o", str(out3), "-q"]) == 0
    d3 = pd.read_csv(out3)
    assert len(d3) == 19 * len(GB1_WT) and (d3["fewshot_pred_sd"] >= d3["fewshot_sd"]).all()
    unseen = d2[~d2["in_training"]]["fewshot_pred"]
    assert unseen.max() - unseen.min() < 1e-9


def test_cli_train_labels_errors_are_one_line(tmp_path, capsys):
    from seqdiff.cli import main
    bad = tmp_path / "measured.csv"
    bad.write_text("mutant,fitness\nT1A,0.5\nK3A,1\nY3A,2\n")
    out = tmp_path / "pred.csv"
    assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(bad), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "measured.csv: row 3 ('Y3A')" in err and "position 3" in err
    assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))
    ok = tmp_path / "ok.csv"
    ok.write_text("mutant,fitness\nT1A,0.5\nK3A,1\n")
    assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(ok), "--fewshot-features",
                 "onehot,bogus", "-o", str(out), "-q"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_negative_zero_shot_weights_are_dropped_and_refitted():
    """A zero-shot score anti-correlated with the labels: unconstrained ridge gives it a negative weight;
    by default it is dropped, and the fit equals the fit without that feature."""
    rng = np.random.default_rng(3)
    wt = "ACDEFGHIKL"
    muts = [f"{wt[i]}{i + 1}{a}" for i in range(10) for a in "MNPQRSTVWY"]
    good = rng.normal(size=100)
    y = good + 0.1 * rng.normal(size=100)
    bad = -y + 0.3 * rng.normal(size=100)
    tr = rng.choice(100, 30, replace=False)
    free = FewShotModel(wt, muts, np.stack([good, bad], 1)).fit(tr, y[tr], nonneg=False, select=False)
    assert free.fit_.coef[-1] < 0 and free.dropped_ == []
    con = FewShotModel(wt, muts, np.stack([good, bad], 1)).fit(tr, y[tr], select=False)
    assert con.dropped_ == ["zero_shot_2"]
    only = FewShotModel(wt, muts, good[:, None]).fit(tr, y[tr], nonneg=False, select=False)
    np.testing.assert_allclose(con.predict(with_sd=False), only.predict(with_sd=False), rtol=1e-10)
    np.testing.assert_allclose(con.predict()[1], only.predict()[1], rtol=1e-10)  # and the same sd


def test_cli_multi_additive_is_the_sum_of_single_scores(tmp_path):
    import pandas as pd

    from seqdiff.cli import main
    var = tmp_path / "v.csv"
    var.write_text("mutant\nT1A\nY2F\nT1A:Y2F\nK3*:T1A\nWT\n")
    outs = {}
    for multi in ("joint", "additive"):
        out = tmp_path / f"{multi}.csv"
        assert main(["score", "-m", "protein", "--wt", GB1_WT, "--variants", str(var), "--multi", multi,
                     "--method", "masked_marginal", "--method", "elbo", "--n-t", "4", "-o", str(out), "-q"]) == 0
        outs[multi] = pd.read_csv(out)
    j, a = outs["joint"], outs["additive"]
    for c in ("score_masked_marginal", "score_elbo"):
        assert a[c].iloc[2] == pytest.approx(a[c].iloc[0] + a[c].iloc[1])
        assert a[c].iloc[4] == 0.0 and np.isnan(a[c].iloc[3])  # wild type 0; nonsense unscored
    # singles are the same either way (masked marginal is deterministic; the ELBO's Monte Carlo noise
    # depends on a variant's place in its batch, so it is compared only through the sum above)
    np.testing.assert_allclose(a["score_masked_marginal"].iloc[:2], j["score_masked_marginal"].iloc[:2], rtol=1e-6)
    assert a["score_elbo_se"].iloc[2] == pytest.approx(np.hypot(a["score_elbo_se"].iloc[0], a["score_elbo_se"].iloc[1]))
    # joint masked marginal reads each substitution with the other position masked too: not the sum
    assert j["score_masked_marginal"].iloc[2] != pytest.approx(a["score_masked_marginal"].iloc[2], abs=1e-6)
    assert list(a["score_status"])[3].startswith("not scored")


def test_gp_interpolates_noiseless_points_and_matches_the_explicit_posterior():
    from seqdiff.jobs.fewshot import fit_gp
    X, y = _problem(10, 3, noise=0.0, seed=7)
    gp = fit_gp(X, y, signals=(1.0,), noises=(0.0,))
    mean, sd, _ = gp.predict(X, with_sd=True)
    np.testing.assert_allclose(mean, y, atol=1e-4)
    assert sd.max() < 1e-3  # zero variance at a noiseless fitted point
    # the posterior at new points, by explicit inversion (independent of the Cholesky route)
    X2, y2 = _problem(12, 3, noise=0.5, seed=8)
    gp = fit_gp(X2, y2, signals=(1.0,), noises=(0.3,), length2=2.0)
    v = y2.var()
    K = v * np.exp(-((X2[:, None] - X2[None]) ** 2).sum(-1) / 4.0) + (0.3 * v + 1e-10) * np.eye(12)
    Xs = np.random.default_rng(1).normal(size=(5, 3))
    Ks = v * np.exp(-((Xs[:, None] - X2[None]) ** 2).sum(-1) / 4.0)
    Kinv = np.linalg.inv(K)
    mean, sd, pred_sd = gp.predict(Xs, with_sd=True)
    np.testing.assert_allclose(mean, y2.mean() + Ks @ Kinv @ (y2 - y2.mean()), rtol=1e-8)
    np.testing.assert_allclose(sd ** 2, v - np.einsum("ij,jk,ik->i", Ks, Kinv, Ks), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(pred_sd ** 2, sd ** 2 + 0.3 * v + 1e-10, rtol=1e-8)
    # marginal likelihood: little noise for noiseless data, much for labels unrelated to the features
    ml0 = fit_gp(X, y).log_ml
    assert max(ml0, key=ml0.get)[1] == 1e-3
    rng = np.random.default_rng(5)
    Xr, yr = rng.normal(size=(40, 3)), rng.normal(size=40)
    ml = fit_gp(Xr, yr).log_ml
    assert max(ml, key=ml.get)[1] == 1.0
    # through FewShotModel
    wt = "ACDEFGHIKL"
    muts = [f"{wt[i]}{i + 1}{a}" for i in range(10) for a in "MNPQRSTVWY"]
    z = rng.normal(size=100)
    fm = FewShotModel(wt, muts, z[:, None]).fit(np.arange(40), 2 * z[:40], regressor="gp")
    assert spearman(fm.predict(np.arange(40, 100), with_sd=False), z[40:]) > 0.9


# ------------------------------------------------------------------------------ feature selection
def _brute_loo(X, y, lam, pen):
    live = X.any(0)  # all-zero columns (substitutions not in these rows) have weight 0 either way
    X, pen = X[:, live], pen[live]
    errs = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        b, w = _lstsq_ridge(X[keep], y[keep], lam, pen)
        errs.append((y[i] - b - X[i] @ w) ** 2)
    return float(np.mean(errs))


def _scan(wt, letters):
    return [f"{wt[i]}{i + 1}{a}" for i in range(len(wt)) for a in letters if a != wt[i]]


def test_selection_is_the_design_and_strength_of_least_brute_force_loo_error():
    """Every (design, λ) scored by explicit leave-one-out refits (least squares on the augmented system):
    the fit keeps the argmin, and its weights are the least-squares ridge on that design."""
    rng = np.random.default_rng(11)
    wt = "ACDEFG"
    muts = _scan(wt, "ACDEFGKLW")
    z = rng.normal(size=len(muts))
    y = 0.7 * z + np.array([0.5 * (m[-1] in "KLW") for m in muts]) + 0.3 * rng.normal(size=len(muts))
    m = FewShotModel(wt, muts, z, site=True, aa=True)
    tr = rng.choice(len(muts), 14, replace=False)
    lams = [0.01, 0.3, 10.0]
    m.fit(tr, y[tr], lambdas=lams, nonneg=False)
    cands = m.candidates()
    assert len(cands) == 4 * 2 and {c.blocks for c in cands} == {("onehot",), ("onehot", "site"), ("onehot", "aa"),
                                                                ("onehot", "site", "aa")}
    brute = {}
    for fs in cands:
        X, pen = m.design(tr, fs, {})
        for lam in lams:
            brute[(fs, lam)] = _brute_loo(X, y[tr], lam, pen)
    best = min(brute, key=brute.get)
    assert (m.choice_, m.fit_.lam) == best
    for fs, lam, err in m.cv_:
        assert err == pytest.approx(brute[(fs, lam)], rel=1e-8)
    X, pen = m.design(tr, best[0], {})
    live = X.any(0)
    b, w = _lstsq_ridge(X[:, live], y[tr], best[1], pen[live])
    np.testing.assert_allclose(m.fit_.coef[live], w, rtol=1e-8, atol=1e-10)
    assert (m.fit_.coef[~live] == 0).all() and m.fit_.intercept == pytest.approx(b, rel=1e-8)


def test_selection_finds_the_features_the_labels_depend_on():
    rng = np.random.default_rng(4)
    wt = "ACDEFGHIKL"
    muts = _scan(wt, "ACDEFGHIKLMNPQRSTVWY")
    n = len(muts)
    tr = rng.choice(n, 60, replace=False)
    te = np.setdiff1d(np.arange(n), tr)
    z_good, z_noise = rng.normal(size=n), rng.normal(size=n)
    Z = np.stack([z_noise, z_good], 1)
    pos = np.array([int(m[1:-1]) for m in muts])
    letter = np.array([m[-1] for m in muts])
    noise = 0.05 * rng.normal(size=n)
    # (1) y = the second zero-shot score: it alone is chosen, and the 60 labels rank the rest
    y = 2.0 * z_good + noise
    m = FewShotModel(wt, muts, Z, site=True, aa=True).fit(tr, y[tr])
    assert m.choice_.zero_shot == (1,)  # the score the labels follow, not the other one
    coef = m.fit_.coef
    assert np.abs(coef[:-1]).max() < 0.05 * coef[-1]  # the indicator blocks shrunk to (almost) nothing
    assert spearman(m.predict(te, with_sd=False), y[te]) > 0.95
    # (2) y = a per-position effect: the site block, no zero-shot score
    y = rng.normal(size=10)[pos - 1] + noise
    m = FewShotModel(wt, muts, Z, site=True, aa=True).fit(tr, y[tr])
    assert "site" in m.choice_.blocks and "aa" not in m.choice_.blocks and m.choice_.zero_shot == ()
    # (3) y = a per-letter effect (e.g. hydrophobicity): the aa block
    eff = dict(zip("ACDEFGHIKLMNPQRSTVWY", rng.normal(size=20)))
    y = np.array([eff[a] for a in letter]) + noise
    m = FewShotModel(wt, muts, Z, site=True, aa=True).fit(tr, y[tr])
    assert "aa" in m.choice_.blocks and "site" not in m.choice_.blocks and m.choice_.zero_shot == ()
    assert spearman(m.predict(te, with_sd=False), y[te]) > 0.95  # unseen substitutions get their letter's effect


def test_zero_shot_penalty_ratio_is_applied_to_the_score_columns_only():
    wt = "ACDE"
    muts = _scan(wt, "ACDEW")
    z = np.arange(len(muts), dtype=float)
    m = FewShotModel(wt, muts, z, site=True)
    X, pen = m.design([0, 1, 2], FeatureSet(("onehot", "site"), (0,), 1e-3), {})
    assert X.shape == (3, 4 * len(ALPHABET) + 4 + 1)
    assert (pen[:-1] == 1.0).all() and pen[-1] == 1e-3
    np.testing.assert_allclose(X[:, -1], (z[:3] - z.mean()) / z.std())


def test_pair_features_exact_on_a_tiny_case():
    """Pairs seen in training get a column (the others none); with a vanishing penalty the fit reproduces
    the training labels, and a triple mutant is predicted as intercept + its three singles + its three
    pair terms, each learnt from the data."""
    wt = "MKV"
    b0, wA, wB, wC, eAB, eAC, eBC = 1.0, 0.5, -1.0, 0.25, 2.0, -0.5, 0.75
    muts = ["WT", "M1A", "K2R", "V3L", "M1A:K2R", "M1A:V3L", "K2R:V3L", "M1A:K2R:V3L", "M1C:K2R"]
    y = np.array([b0, b0 + wA, b0 + wB, b0 + wC, b0 + wA + wB + eAB, b0 + wA + wC + eAC, b0 + wB + wC + eBC])
    tr = np.arange(7)
    m = FewShotModel(wt, muts, pairs=True)
    vocab = m.pair_vocab(tr)
    A = len(ALPHABET)
    a, r, l_ = 0 * A + ALPHABET.index("A"), 1 * A + ALPHABET.index("R"), 2 * A + ALPHABET.index("L")
    assert vocab["pairs"] == {(a, r): 0, (a, l_): 1, (r, l_): 2}
    m.fit(tr, y, lambdas=1e-9, select=False)
    X = m.design(np.arange(9))[0]
    assert X.shape == (9, 3 * A + 3)
    np.testing.assert_array_equal(X[7, 3 * A:], [1, 1, 1])  # the triple has all three pairs
    np.testing.assert_array_equal(X[8, 3 * A:], [0, 0, 0])  # M1C:K2R: a pair never seen, no column
    pred = m.predict(with_sd=False)
    np.testing.assert_allclose(pred[:7], y, atol=1e-6)
    assert pred[7] == pytest.approx(b0 + wA + wB + wC + eAB + eAC + eBC, abs=1e-6)
    # without pairs the best additive fit cannot reproduce the doubles
    add = FewShotModel(wt, muts).fit(tr, y, lambdas=1e-9, select=False).predict(tr, with_sd=False)
    assert np.abs(add - y).max() > 0.1
    # site pairs: one column per pair of positions; max_pairs keeps the most frequent pairs
    sp = FewShotModel(wt, muts, sitepairs=True, max_pairs=1)
    assert sp.pair_vocab([5, 4, 8])["sitepairs"] == {(0, 1): 0}  # (1, 2) twice, (1, 3) once
    assert FewShotModel(wt, muts, sitepairs=True).pair_vocab([5, 4, 8])["sitepairs"] == {(0, 1): 0, (0, 2): 1}


def test_log_evidence_is_the_restricted_gaussian_likelihood():
    from seqdiff.jobs.fewshot import _log_evidence, _svd
    X, y = _problem(9, 4, seed=12)
    pen = np.array([1.0, 0.5, 2.0, 1.0])
    lam = 0.8
    Xt = (X - X.mean(0)) / np.sqrt(pen)
    U, s, _ = _svd(Xt)
    n = len(y)
    Q = np.linalg.qr(np.hstack([np.ones((n, 1)), np.eye(n)[:, :n - 1]]))[0][:, 1:]  # orthogonal to 1
    C0 = Q.T @ (np.eye(n) + Xt @ Xt.T / lam) @ Q
    r = Q.T @ y
    sig2 = r @ np.linalg.solve(C0, r) / (n - 1)  # σ² at its maximum
    C = sig2 * C0
    explicit = -0.5 * ((n - 1) * np.log(2 * np.pi) + np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r))
    assert _log_evidence(U, s ** 2, y, lam) == pytest.approx(explicit, rel=1e-10)
    fit = fit_ridge(X, y, lambdas=[0.01, 0.8, 100.0], penalty=pen, criterion="evidence")
    assert fit.lam == max(fit.log_evidence, key=fit.log_evidence.get)
    assert fit.log_evidence[0.8] == pytest.approx(explicit, rel=1e-10)


def test_gram_route_equals_the_svd_route():
    from seqdiff.jobs.fewshot import _loo_from_svd, _svd
    rng = np.random.default_rng(0)
    for shape in ((40, 30), (30, 45)):
        Xt = rng.normal(size=shape)
        y = rng.normal(size=shape[0])
        Ua, sa, Va = _svd(Xt, gram=False)
        Ub, sb, Vb = _svd(Xt, gram=True)
        np.testing.assert_allclose(np.sort(sb), np.sort(sa), rtol=1e-8)
        np.testing.assert_allclose(Ub @ np.diag(sb) @ Vb.T, Xt, atol=1e-8)
        for lam in (0.1, 10.0):  # the same smoother, hence the same LOO residuals
            np.testing.assert_allclose(_loo_from_svd(Ub, sb ** 2, y, lam), _loo_from_svd(Ua, sa ** 2, y, lam),
                                       rtol=1e-6, atol=1e-8)


def test_cli_pair_features_and_fixed_design(tmp_path, capsys):
    """--fewshot-features onehot,pairs with --fewshot-selection none: the measured doubles' epistasis is
    learnt (a measured double is fitted much closer than by the additive model) and the design is reported."""
    import pandas as pd

    from seqdiff.cli import main
    lab = tmp_path / "measured.csv"
    rows = ["T1A,1.0", "Y2A,-1.0", "K3A,0.5", "T1A:Y2A,2.0", "T1A:K3A,1.5", "Y2A:K3A,-2.0", "L4A,0.0", "L4A:T1A,1.0"]
    lab.write_text("mutant,fitness\n" + "\n".join(rows) + "\n")
    var = tmp_path / "v.csv"
    var.write_text("mutant\nT1A:Y2A\nY2A:K3A\nT1A:Y2A:K3A\n")
    preds = {}
    for feats in ("onehot", "onehot,pairs"):
        out = tmp_path / f"{feats}.csv"
        assert main(["score", "-m", "protein", "--wt", GB1_WT, "--train-labels", str(lab), "--variants", str(var),
                     "--method", "none", "--fewshot-features", feats, "--fewshot-selection", "none",
                     "-o", str(out), "-q"]) == 0
        preds[feats] = pd.read_csv(out)
        err = capsys.readouterr().err
        assert ("features onehot + pairs (as given)" in err) == (feats == "onehot,pairs")
    meas = np.array([2.0, -2.0])
    err_add = np.abs(preds["onehot"]["fewshot_pred"].iloc[:2].to_numpy() - meas).max()
    err_pair = np.abs(preds["onehot,pairs"]["fewshot_pred"].iloc[:2].to_numpy() - meas).max()
    assert err_pair < 0.5 * err_add
    # the triple carries all three measured pairs: it differs from the additive prediction
    assert abs(preds["onehot,pairs"]["fewshot_pred"].iloc[2] - preds["onehot"]["fewshot_pred"].iloc[2]) > 0.1
