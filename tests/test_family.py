"""Family-aware scoring (seqdiff.jobs.family): fine-tuning on homologs moves the scores, and is cached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqdiff.jobs.family import family_model
from seqdiff.jobs.scoring import score_variants
from seqdiff.jobs.variants import read_variants
from seqdiff.model import load_model
from seqdiff.pretrained import resolve_model

WT = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


@pytest.fixture(scope="module")
def base():
    return load_model(resolve_model("protein"))


def _family(tmp_path, n=24, seed=0):
    """Homologs that all carry W at position 10 (wild type R) and are otherwise varied."""
    rng = np.random.default_rng(seed)
    recs = [f">wt\n{WT}\n"]
    for k in range(n):
        s = list(WT)
        s[9] = "W"
        for i in rng.choice(len(WT), 6, replace=False):
            if i != 9:
                s[i] = "ACDEFGHIKLMNPQRSTVY"[rng.integers(19)]
        recs.append(f">h{k}\n{''.join(s)}\n")
    path = tmp_path / "fam.fa"
    path.write_text("".join(recs))
    return path


def test_fine_tuning_learns_the_family_and_is_cached(tmp_path, base):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    hom = _family(tmp_path)
    cache = tmp_path / "cache"
    table = read_variants(pd.DataFrame({"mutant": ["R10W", "R10A"]}), WT)
    before = score_variants(base, WT, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy()
    fam, info = family_model(base, resolve_model("protein"), hom, WT, steps=60, lr=3e-3, cache_dir=cache,
                             log=lambda m: None)
    assert info["n_homologs"] == 25 and not info["cached"] and 1 < info["n_eff"] <= 25
    after = score_variants(fam, WT, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy()
    # every homolog has W where the wild type has R: R10W gains on R10A
    assert before[0] < before[1] and after[0] > after[1]
    assert after[0] - after[1] > before[0] - before[1] + 1.0
    assert info["loss_end"] < info["loss_start"]
    # the base model is not modified in place
    again = score_variants(base, WT, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy()
    np.testing.assert_allclose(again, before)
    # a second call loads the cached model (same scores, no training)
    fam2, info2 = family_model(base, resolve_model("protein"), hom, WT, steps=60, lr=3e-3, cache_dir=cache,
                               log=lambda m: None)
    assert info2["cached"] and info2["key"] == info["key"]
    cached = score_variants(fam2, WT, table, methods=["masked_marginal"])["score_masked_marginal"].to_numpy()
    np.testing.assert_allclose(cached, after, rtol=1e-5, atol=1e-5)
    # another homolog file is another key
    hom.write_text(hom.read_text() + ">extra\n" + WT.replace("K", "R") + "\n")
    _, info3 = family_model(base, resolve_model("protein"), hom, WT, steps=2, cache_dir=cache, log=lambda m: None)
    assert info3["key"] != info["key"] and not info3["cached"]


def test_cli_homologs_errors_are_one_line(tmp_path, capsys):
    from seqdiff.cli import main
    bad = tmp_path / "bad.sto"
    bad.write_text("# STOCKHOLM 1.0\nq MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVE\nh MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVD\n//\n")
    var = tmp_path / "v.csv"
    var.write_text("mutant\nR10W\n")
    out = tmp_path / "o.csv"
    rc = main(["score", "-m", "protein", "--wt", WT, "--variants", str(var), "--homologs", str(bad),
               "--family-cache", str(tmp_path / "c"), "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "bad.sto" in err and "does not contain the wild type" in err and "position 33" in err
    assert not out.exists()
