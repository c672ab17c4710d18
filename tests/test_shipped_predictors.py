"""The shipped property predictors (seqdiff/pretrained/predictors/): small, safe files with their provenance,
found by name for their model's domain, accurate on held-out real data, in a built wheel, and usable from
`seqdiff sample --classifier NAME`."""

from __future__ import annotations

import csv
import gzip
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from seqdiff.guidance.predictor import load_predictor
from seqdiff.pretrained import PREDICTORS, PRETRAINED_DIR, predictor_names, resolve_predictor
from seqdiff.serialization import safe_load, scan_file

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {("dna", "gc"): "dna.pt", ("smiles", "qed"): "smiles.pt"}


def cli(*args):
    import contextlib
    import io
    import types

    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.mark.parametrize("key", sorted(PREDICTORS))
def test_shipped_predictor_file(key):
    """Small (bf16), a safe archive, with its provenance and validation figures; fits its domain's shipped model."""
    from seqdiff.model import load_model
    domain, name = key
    path = resolve_predictor(name, domain)
    assert path == PRETRAINED_DIR / "predictors" / f"{domain}-{name}.pt"
    assert path.stat().st_size < 2_000_000
    scan_file(path)  # names nothing but tensor rebuilding: no code
    raw = safe_load(path)
    floats = [v for v in raw["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.bfloat16 for v in floats)
    pred = load_predictor(path)
    assert all(p.dtype == torch.float32 for p in pred.net.parameters())  # cast back on loading
    assert all(torch.equal(p.detach(), raw["state_dict"][k].float()) for k, p in pred.net.state_dict().items())
    prov = pred.spec["provenance"]
    assert prov["recipe"] == PREDICTORS[key][1] and (ROOT / prov["recipe"]).is_file()
    assert prov["command"] == f"seqdiff train -c {prov['recipe']}" and prov["steps"] > 0
    assert prov["validation"]["rows"] >= 1000 and prov["validation"]["pearson"] > 0.5
    assert pred.kind == "gaussian" and pred.spec["column"] == name
    pred.check_compatible(load_model(PRETRAINED_DIR / SHIPPED[key]))  # the vocabulary and process of the model
    readme = (PRETRAINED_DIR / "predictors" / "README.md").read_text()
    assert f"{domain}-{name}.pt" in readme and prov["recipe"] in readme


def test_resolve_predictor_names_and_errors(tmp_path):
    assert predictor_names("dna") == ["gc"] and predictor_names("smiles") == ["qed"]
    assert predictor_names("protein") == [] and predictor_names() == ["gc (dna)", "qed (smiles)"]
    assert resolve_predictor("GC", "dna") == resolve_predictor("dna-gc", "dna") == PRETRAINED_DIR / "predictors/dna-gc.pt"
    f = tmp_path / "gc"  # an existing file wins over a shipped name
    f.write_bytes(b"x")
    assert resolve_predictor(f, "dna") == f
    with pytest.raises(ValueError) as e:
        resolve_predictor("qed", "dna")
    assert str(e.value) == ("--classifier qed: not a file, nor a shipped predictor for dna models ('qed' is for "
                            "smiles models; shipped: gc (dna), qed (smiles))")
    with pytest.raises(ValueError, match=r"nope: not a file, nor a shipped predictor for protein models \(shipped"):
        resolve_predictor("nope", "protein")
    with pytest.raises(ValueError, match="'gc' is for dna models"):
        resolve_predictor("dna-gc", "smiles")
    with pytest.raises(FileNotFoundError, match="no such predictor file"):
        resolve_predictor(tmp_path / "missing.pt", "dna")


def test_gc_predictor_reads_gc_of_held_out_promoters():
    """On clean held-out DNA (test split, never seen in training) the predicted mean is the GC content."""
    from Bio import SeqIO
    pred = load_predictor(resolve_predictor("gc", "dna"))
    with gzip.open(ROOT / "datasets" / "dm3_upstream" / "test.fa.gz", "rt") as fh:
        seqs = [str(r.seq).upper()[:100] for r in SeqIO.parse(fh, "fasta")]
    seqs = [s for s in seqs if len(s) == 100 and "N" not in s][:300]
    x = torch.stack([torch.as_tensor(pred.tokenizer.encode(s)) for s in seqs])
    with torch.no_grad():
        mu, sd = pred.mean_sd(x, torch.zeros(len(seqs)))
    gc = torch.tensor([(s.count("G") + s.count("C")) / 100 for s in seqs])
    assert float((mu - gc).abs().mean()) < 0.01 and float(torch.corrcoef(torch.stack([mu, gc]))[0, 1]) > 0.99
    # fully masked: nothing is known, the prediction falls back towards the training mean with a wide sd
    masked = torch.full_like(x, pred.process.mask_id)
    with torch.no_grad():
        m0, s0 = pred.mean_sd(masked, torch.ones(len(seqs)))
    assert float(m0.std()) < 1e-4 and abs(float(m0[0]) - pred.spec["mean"]) < 0.03 and float(s0[0]) > 0.05


def test_qed_predictor_tracks_rdkit_qed_of_held_out_molecules():
    """On clean MOSES test molecules (not in its training or validation files) the predicted mean follows RDKit QED."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import QED
    pred = load_predictor(resolve_predictor("qed", "smiles"))
    with gzip.open(ROOT / "datasets" / "moses" / "test.smi.gz", "rt") as fh:
        raw = [line.split()[0] for _, line in zip(range(600), fh)]
    seqs, qed = [], []
    with rdBase.BlockLogs():
        for s in raw:
            m = Chem.MolFromSmiles(s)
            if m is None:
                continue
            c = Chem.MolToSmiles(m)
            try:
                ids = pred.tokenizer.encode(c)
            except ValueError:
                continue
            if len(ids) <= pred.spec["max_len"]:
                seqs.append(torch.as_tensor(ids))
                qed.append(QED.qed(m))
    assert len(seqs) >= 400
    x = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pred.tokenizer.pad_id)
    with torch.no_grad():
        mu, _ = pred.mean_sd(x, torch.zeros(len(seqs)))
    r = float(torch.corrcoef(torch.stack([mu.double(), torch.tensor(qed, dtype=torch.float64)]))[0, 1])
    assert r > 0.6, r


def test_wheel_contains_the_shipped_predictors(tmp_path):
    """A built wheel (what `pip install seqdiff` installs) carries the predictor files and their README."""
    pytest.importorskip("setuptools", reason="building a wheel offline needs setuptools in this environment")
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "seqdiff", src / "seqdiff", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "wheel"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (whl,) = (tmp_path / "wheel").glob("seqdiff-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for domain, name in PREDICTORS:
        assert f"seqdiff/pretrained/predictors/{domain}-{name}.pt" in names
    assert "seqdiff/pretrained/predictors/README.md" in names and "seqdiff/pretrained/dna.pt" in names


def _gc(path: Path) -> float:
    seqs = [row["sequence"] for row in csv.DictReader(open(path))]
    return sum((s.count("G") + s.count("C")) / len(s) for s in seqs) / len(seqs)


def test_cli_classifier_by_name(tmp_path):
    """`--classifier gc` steers the shipped DNA model; names of another domain or unknown ones are one-line
    errors (exit 2) listing the shipped names, with nothing written."""
    base = ["sample", "-m", "dna", "-n", 32, "--length", 40, "--steps", 10, "--seed", 2, "-q"]
    r = cli(*base, "-o", tmp_path / "plain.fa")
    assert r.returncode == 0, r.stderr
    r = cli(*base, "-o", tmp_path / "cg.fa", "--classifier", "gc", "--target", "0.65..", "--guidance", "3")
    assert r.returncode == 0, r.stderr
    plain, guided = _gc(tmp_path / "plain.csv"), _gc(tmp_path / "cg.csv")
    assert guided > plain + 0.1, (plain, guided)
    for args, msg in [(["-m", "dna", "--classifier", "qed"], "'qed' is for smiles models; shipped: gc (dna), qed (smiles)"),
                      (["-m", "dna", "--classifier", "nope"], "shipped: gc (dna), qed (smiles)"),
                      (["-m", "smiles", "--classifier", "gc"], "'gc' is for dna models"),
                      (["-m", "dna", "--classifier", tmp_path / "no.pt"], "no such predictor file")]:
        bad = tmp_path / "bad.fa"
        r = cli("sample", "-n", 2, "--steps", 8, "-q", "-o", bad, *args, "--target", "0.5..")
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, (msg, r.stderr)
        assert "Traceback" not in r.stderr and not bad.exists() and not bad.with_suffix(".csv").exists()
