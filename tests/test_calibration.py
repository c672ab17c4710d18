"""The conditional-calibration metric (seqdiff.jobs.calibration) against exact answers: an explicit
distribution over every sequence, its exact oracle as the 'model', and held-out data whose
empirical conditional is known exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from seqdiff.diffusion import Absorbing, ExactOracle, Linear
from seqdiff.jobs.calibration import (
    compare,
    empirical_conditional,
    group_shift,
    js_divergence,
    model_conditional,
    motif_windows,
)

V, L = 3, 4  # data tokens 0..2, mask 3
MOTIF_AT, MOTIF = 1, 2  # the motif: letter 2 at offset 1; free offsets 0, 2, 3


def _weights(seed: int) -> np.ndarray:
    """Integer weights over all V^L sequences (so a data set can hold p0 exactly)."""
    return np.random.default_rng(seed).integers(1, 9, size=V ** L)


def _oracle(w: np.ndarray) -> ExactOracle:
    p0 = torch.tensor(w / w.sum(), dtype=torch.float64)
    return ExactOracle(p0, L, Absorbing(V + 1), Linear())


def _exact(w: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    """p(k-mer at each free offset | x[MOTIF_AT] = MOTIF) by enumeration."""
    seqs = list(itertools.product(range(V), repeat=L))
    keep = [(s, wt) for s, wt in zip(seqs, w) if s[MOTIF_AT] == MOTIF]
    tot = sum(wt for _, wt in keep)
    offsets = [i for i in range(L - k + 1) if MOTIF_AT not in range(i, i + k)]
    out = np.zeros((len(offsets), V ** k))
    for r, i in enumerate(offsets):
        for s, wt in keep:
            idx = 0
            for j in range(k):
                idx = idx * V + s[i + j]
            out[r, idx] += wt / tot
    return offsets, out


def _dataset(w: np.ndarray) -> list[list[int]]:
    """Every sequence as many times as its weight: the empirical law IS p0."""
    out = []
    for s, wt in zip(itertools.product(range(V), repeat=L), w):
        out += [list(s)] * int(wt)
    return out


TEMPLATE = [3, MOTIF, 3, 3]  # mask (3) at the free offsets


@pytest.mark.parametrize("k", [1, 2])
def test_model_conditional_of_an_exact_oracle_is_the_exact_conditional(k):
    w = _weights(0)
    offsets, truth = _exact(w, k)
    got = model_conditional(_oracle(w), Absorbing(V + 1), TEMPLATE, k=k)
    assert got.offsets == offsets and got.k == k and got.vocab == V
    assert np.allclose(got.probs, truth, atol=1e-12)
    assert np.allclose(got.probs.sum(1), 1.0)


@pytest.mark.parametrize("k", [1, 2])
def test_empirical_conditional_of_data_holding_p0_is_the_exact_conditional(k):
    w = _weights(1)
    offsets, truth = _exact(w, k)
    data = _dataset(w)
    wins, src, starts = motif_windows(data, [MOTIF], MOTIF_AT, L - MOTIF_AT - 1)
    # only occurrences at offset 1 fit a full-length window
    assert (starts == MOTIF_AT).all() and len(wins) == sum(wt for s, wt in
                                                          zip(itertools.product(range(V), repeat=L), w)
                                                          if s[MOTIF_AT] == MOTIF)
    emp = empirical_conditional(wins, src, {MOTIF_AT}, V, k=k)
    assert emp.offsets == offsets and emp.n_windows == len(wins)
    assert np.allclose(emp.probs, truth, atol=1e-12)
    # a calibrated model: zero gap; a miscalibrated one: exactly the difference of the conditionals
    same = compare(model_conditional(_oracle(w), Absorbing(V + 1), TEMPLATE, k=k), emp, bootstrap=0)
    assert same["mean_tv"] == pytest.approx(0.0, abs=1e-12) and same["mean_js"] == pytest.approx(0.0, abs=1e-12)
    w2 = _weights(2)
    _, truth2 = _exact(w2, k)
    other = compare(model_conditional(_oracle(w2), Absorbing(V + 1), TEMPLATE, k=k), emp, bootstrap=0)
    tv = [0.5 * np.abs(truth2[r] - truth[r]).sum() for r in range(len(offsets))]
    assert [row["tv"] for row in other["per_offset"]] == pytest.approx(tv, abs=1e-12)
    assert [row["js"] for row in other["per_offset"]] == pytest.approx(
        [js_divergence(truth2[r], truth[r]) for r in range(len(offsets))], abs=1e-12)


def test_motif_windows_and_the_cluster_robust_standard_error():
    seqs = [[0, 1, 2, 1, 2, 0, 1, 2],  # occurrences of (1, 2) at 1, 3, 6; with left 1, right 1:
            [1, 2, 0, 0],              # at 0: no room on the left
            [2, 2, 1, 2, 0]]           # at 2
    wins, src, starts = motif_windows(seqs, [1, 2], 1, 1)
    assert starts.tolist() == [1, 3, 2] and src.tolist() == [0, 0, 2]  # 6 has no room on the right
    assert wins.tolist() == [[0, 1, 2, 1], [2, 1, 2, 0], [2, 1, 2, 0]]
    emp = empirical_conditional(wins, src, {1, 2}, V, k=1)
    assert emp.offsets == [0, 3] and emp.n_clusters == 2
    # offset 0: letters 0, 2, 2 -> p = (1/3, 0, 2/3); clusters {0: [0, 2]}, {2: [2]}
    p = np.array([1 / 3, 0, 2 / 3])
    y = np.array([[1, 0, 1], [0, 0, 1]], dtype=float)
    n_c = np.array([2, 1])
    var = 2 / 1 * ((y - n_c[:, None] * p) ** 2).sum(0) / 9
    assert np.allclose(emp.probs[0], p) and np.allclose(emp.stderr[0], np.sqrt(var))
    # one window per cluster: the binomial p(1-p)/(N-1)
    rng = np.random.default_rng(0)
    w = rng.integers(0, V, size=(50, 3))
    e = empirical_conditional(w, np.arange(50), {1}, V)
    q = e.probs[0]
    assert np.allclose(e.stderr[0], np.sqrt(q * (1 - q) / 49))


def test_group_shift_against_hand_computed_values():
    w = _weights(3)
    orc = _oracle(w)
    proc = Absorbing(V + 1)
    data = _dataset(w)
    wins, src, _ = motif_windows(data, [MOTIF], MOTIF_AT, L - MOTIF_AT - 1)
    emp = empirical_conditional(wins, src, {MOTIF_AT}, V)
    mod = model_conditional(orc, proc, TEMPLATE)
    bg = model_conditional(orc, proc, [3] * L)
    flat = np.concatenate(data)
    bg_data = np.bincount(flat, minlength=V) / len(flat)
    g = group_shift(mod, emp, [0, 2], model_background=bg, data_background=bg_data, windows=wins, clusters=src)
    _, truth = _exact(w, 1)
    p0 = w / w.sum()
    seqs = np.array(list(itertools.product(range(V), repeat=L)))
    uncond = np.array([[p0[seqs[:, i] == a].sum() for a in range(V)] for i in range(L)])
    assert g["model_conditional"] == pytest.approx(truth[:, [0, 2]].sum(1).mean(), abs=1e-12)
    assert g["data_conditional"] == pytest.approx(g["model_conditional"], abs=1e-12)
    assert g["model_unconditional"] == pytest.approx(uncond[[0, 2, 3]][:, [0, 2]].sum(1).mean(), abs=1e-12)
    assert g["data_unconditional"] == pytest.approx(bg_data[[0, 2]].sum(), abs=1e-12)
    assert g["shift_ratio"] == pytest.approx(g["model_shift"] / g["data_shift"])
    assert g["data_conditional_stderr"] > 0


def test_uniform_models_are_refused_clearly():
    from seqdiff.diffusion import Uniform

    with pytest.raises(ValueError, match="absorbing"):
        model_conditional(lambda x, t: x, Uniform(3), [0, 1, 2])


def test_motif_calibration_on_the_shipped_dna_model_reports_every_offset():
    """The report on the real model: windows around real TATAAAA occurrences, every free offset."""
    from seqdiff.jobs.calibration import motif_calibration
    from seqdiff.jobs.evaluate import read_sequences
    from seqdiff.model import load_model
    from seqdiff.pretrained import resolve_model
    from seqdiff.training.data import REPO_ROOT

    model = load_model(resolve_model("dna"))
    held = read_sequences(REPO_ROOT / "datasets/dm3_upstream/valid.fa.gz", "dna")
    rep = motif_calibration(model, held, "TATAAAA", 10, 10, k=2, groups={"GC": "GC"}, bootstrap=20)
    assert rep["windows"] >= 10 and len(rep["k1"]["per_offset"]) == 20 and len(rep["k2"]["per_offset"]) == 18
    gc = rep["groups"]["GC"]
    assert 0 < gc["model_conditional"] < 1 and 0 < gc["data_conditional"] < 1
    assert len(gc["model_conditional_by_offset"]) == 20
    for row in rep["k2"]["per_offset"]:
        assert 0 <= row["js"] <= 1 and row["js_noise"] > 0


def test_in_record_model_conditional_of_an_exact_oracle_matches_data_holding_p0():
    """Models of whole records: each occurrence is read in its own record (motif fixed, the rest
    masked). For the exact oracle and data holding p0 exactly, the average over occurrences equals
    the empirical composition: Σ_x p0(x) 1[x_j = m] p(x_{j+1} = a | x_j = m) = P(x_j = m, x_{j+1} = a).
    With nothing fixed it is the exact unconditional marginal at each occurrence's offsets."""
    from seqdiff.jobs.calibration import model_conditional_in_records

    w = _weights(4)
    orc = _oracle(w)
    data = _dataset(w)
    wins, src, starts = motif_windows(data, [MOTIF], 0, 1)  # the letter right after every MOTIF
    assert set(starts.tolist()) == {0, 1, 2}
    emp = empirical_conditional(wins, src, {0}, V)
    mod = model_conditional_in_records(orc, Absorbing(V + 1), data, src, starts, 1, 0, 1)
    assert mod.offsets == emp.offsets == [1] and mod.n_windows == len(wins)
    assert np.allclose(mod.probs, emp.probs, atol=1e-12)
    p0 = w / w.sum()
    seqs = np.array(list(itertools.product(range(V), repeat=L)))
    marg = np.array([[p0[seqs[:, i] == a].sum() for a in range(V)] for i in range(L)])
    bg = model_conditional_in_records(orc, Absorbing(V + 1), data, src, starts, 1, 0, 1, fix_motif=False)
    assert np.allclose(bg.probs[0], marg[starts + 1].mean(0), atol=1e-12)
    # a miscalibrated model (another p0) is not
    other = model_conditional_in_records(_oracle(_weights(5)), Absorbing(V + 1), data, src, starts, 1, 0, 1)
    assert not np.allclose(other.probs, emp.probs, atol=1e-3)
