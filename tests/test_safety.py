"""Safe by default: model files that cannot run code (every entry point), checkpoints that survive a
full disk, streaming resumable scoring, SIGTERM like Ctrl-C, one-line errors for every bad argument."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqdiff.model import ModelLoadError, UnsafeModelError, load_model
from seqdiff.serialization import ALLOWED_GLOBALS, convert_model, safe_load, scan_file
from seqdiff.training.config import ConfigError, load_config
from seqdiff.training.train import train

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
PRETRAINED = ROOT / "seqdiff" / "pretrained"
GB1 = "MTYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"


def cli(*args):
    """`seqdiff ...` in this process (the console script's code path)."""
    from seqdiff.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def cli_process(*args, **kw):
    return subprocess.run([sys.executable, "-m", "seqdiff.cli", *map(str, args)], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, **kw)


def one_line_error(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*.tmp")], list(folder.rglob("*.tmp"))


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile(path: Path, marker: Path, *, like: str = "model") -> Path:
    """A file shaped like a seqdiff model (or a Lightning checkpoint) whose pickle would create ``marker``."""
    if like == "model":
        obj = {"format": "seqdiff-model", "version": 1, "config": {}, "tokenizer": {}, "state_dict": {},
               "x": _Payload(marker)}
    else:
        obj = {"global_step": 10, "hyper_parameters": {"config": {}, "tokenizer": {}}, "state_dict": {},
               "x": _Payload(marker)}
    if like == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    elif like == "pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path)
    return path


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("safety-text")
    cfg = load_config(ROOT / "configs" / "tiny" / "text.yaml",
                      [f"out_dir={run}", "sampling.log_samples=0", "trainer.max_steps=20"])
    return Path(train(cfg, quiet=True)["model"])


# ===================================================================== model files cannot run code
@pytest.mark.parametrize("like", ["model", "checkpoint", "legacy", "pickle"])
def test_hostile_files_are_refused_by_load_model(tmp_path, like):
    marker = tmp_path / "marker"
    path = hostile(tmp_path / "evil.pt", marker, like=like)
    error = UnsafeModelError if like in ("model", "checkpoint") else ModelLoadError
    with pytest.raises(error) as ei:
        load_model(path)
    assert not marker.exists()
    if like in ("model", "checkpoint"):
        assert "refused" in str(ei.value) and "posix.system" in str(ei.value) and "nothing in it ran" in str(ei.value)
    # the pickle itself is real: unpickled without restrictions it does run (so the test can fail)
    if like == "model":
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_hostile_model_through_every_cli_job(tmp_path):
    marker = tmp_path / "marker"
    evil = hostile(tmp_path / "evil.pt", marker)
    fa = tmp_path / "seqs.fa"
    fa.write_text(">a\nACGTACGT\n")
    txt = tmp_path / "lines.txt"
    txt.write_text("the cat sat\n")
    variants = tmp_path / "v.csv"
    variants.write_text("mutant\nT2A\n")
    runs = {
        "sample": ["sample", "-m", evil, "-n", 2, "-o", tmp_path / "s.txt"],
        "infill": ["infill", "-m", evil, "-t", "ab{3}", "-o", tmp_path / "i.txt"],
        "score variants": ["score", "-m", evil, "--wt", GB1, "--variants", variants, "-o", tmp_path / "v_out.csv"],
        "score fasta": ["score", "-m", evil, "--fasta", fa, "-o", tmp_path / "f_out.csv"],
        "eval": ["eval", "-m", evil, "--split", fa],
        "eval --ref-model": ["eval", "--samples", txt, "--domain", "text", "--ref-model", evil],
        "correct": ["correct", "-m", evil, "-i", txt, "-o", tmp_path / "c.txt"],
        "convert": ["convert", evil, "-o", tmp_path / "converted.pt"],
    }
    for name, args in runs.items():
        r = cli(*args)
        one_line_error(r, "refused", "posix.system", "nothing in it ran")
        assert not marker.exists(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt", "lines.txt", "seqs.fa", "v.csv"]
    # and the console entry point in a fresh interpreter
    r = cli_process("sample", "-m", evil, "-n", 2, "-o", tmp_path / "s.txt")
    one_line_error(r, "refused")
    assert not marker.exists()


def test_train_refuses_a_planted_checkpoint(tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    hostile(run / "checkpoints" / "last.ckpt", marker, like="checkpoint")
    r = cli("train", "-c", ROOT / "configs" / "tiny" / "text.yaml", "-q", f"out_dir={run}", "trainer.max_steps=2")
    one_line_error(r, "refused", "last.ckpt", "posix.system")
    assert not marker.exists() and not (run / "model.pt").exists()
    # an explicit resume path too
    cfg = load_config(ROOT / "configs" / "tiny" / "text.yaml", [f"out_dir={tmp_path / 'other'}"])
    with pytest.raises(UnsafeModelError):
        train(cfg, resume=str(run / "checkpoints" / "last.ckpt"), quiet=True)
    assert not marker.exists()


def test_shipped_models_are_plain_data(tmp_path):
    for path in sorted(PRETRAINED.glob("*.pt")):
        scan_file(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
        assert obj["format"] == "seqdiff-model" and isinstance(obj["config"], dict)
        load_model(path)
    assert "posix.system" not in ALLOWED_GLOBALS and "builtins.eval" not in ALLOWED_GLOBALS


def test_convert_rewrites_old_files_and_checkpoints(tiny_text, tmp_path):
    # an older file: numpy numbers and arrays, and a path, in the plain data
    obj = torch.load(tiny_text, weights_only=True)
    old = dict(obj, length_histogram=np.arange(33, dtype=np.int64), source=Path("/x/y"))
    old["config"] = dict(obj["config"], seed=np.int64(obj["config"]["seed"]))
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(UnsafeModelError, match="numpy"):
        load_model(tmp_path / "old.pt")  # the safe loader does not take numpy objects ...
    out = convert_model(tmp_path / "old.pt", tmp_path / "new.pt")  # ... the converter turns them into plain data
    new = safe_load(out)
    assert new["length_histogram"] == list(range(33)) and new["config"]["seed"] == obj["config"]["seed"]
    assert type(new["config"]["seed"]) is int and "source" not in new  # only what a model file holds
    a, b = load_model(tiny_text).state_dict(), load_model(out).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a training checkpoint becomes an exported model with the EMA weights, like load_model reads it
    ckpt = tiny_text.parent / "checkpoints" / "last.ckpt"
    r = cli("convert", ckpt, "-o", tmp_path / "from_ckpt.pt")
    assert r.returncode == 0, r.stderr
    a, b = load_model(ckpt).state_dict(), load_model(tmp_path / "from_ckpt.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert safe_load(tmp_path / "from_ckpt.pt")["format"] == "seqdiff-model"
    # a bf16 export stays bf16
    load_model(tiny_text).save(tmp_path / "half.pt", dtype=torch.bfloat16)
    convert_model(tmp_path / "half.pt", tmp_path / "half2.pt")
    assert {v.dtype for v in safe_load(tmp_path / "half2.pt")["state_dict"].values() if v.is_floating_point()} \
        == {torch.bfloat16}
    # in place, and refusing to overwrite another output without --overwrite
    assert cli("convert", tmp_path / "old.pt").returncode == 0
    assert safe_load(tmp_path / "old.pt")["config"]["seed"] == obj["config"]["seed"]
    one_line_error(cli("convert", tmp_path / "old.pt", "-o", tmp_path / "new.pt"), "already exists", "--overwrite")
    no_temporaries(tmp_path)


def test_model_file_problems_have_clear_messages(tiny_text, tmp_path):
    obj = torch.load(tiny_text, weights_only=True)
    torch.save({k: v for k, v in obj.items() if k != "config"}, tmp_path / "noconfig.pt")
    with pytest.raises(ModelLoadError, match="without its `config`"):
        load_model(tmp_path / "noconfig.pt")
    bad = dict(obj, state_dict={k: v[..., :1] for k, v in obj["state_dict"].items()})
    torch.save(bad, tmp_path / "shapes.pt")
    with pytest.raises(ModelLoadError, match="weights do not match the recipe"):
        load_model(tmp_path / "shapes.pt")
    data = tiny_text.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="not a seqdiff model"):
        load_model(tmp_path / "cut.pt")
    import zipfile
    with zipfile.ZipFile(tiny_text) as src, zipfile.ZipFile(tmp_path / "deflated.pt", "w", zipfile.ZIP_DEFLATED) as z:
        for n in src.namelist():  # a compressed pickle is not torch's (and could be a zip bomb)
            z.writestr(n, src.read(n))
    with pytest.raises(ModelLoadError, match="compressed"):
        load_model(tmp_path / "deflated.pt")
    one_line_error(cli("sample", "-m", tmp_path / "noconfig.pt", "-o", tmp_path / "s.txt"), "without its `config`")
    if not torch.cuda.is_available():
        r = cli("sample", "-m", "text", "--device", "cuda", "-o", tmp_path / "s.txt", "-q")
        one_line_error(r, "CUDA is not available")
        assert "not a seqdiff model" not in r.stderr
    one_line_error(cli("sample", "-m", "text", "--device", "gpu", "-o", tmp_path / "s.txt", "-q"), "not a device")


# ===================================================================== checkpoints and a full disk
class _FullDisk:
    """A file that takes ``room`` bytes and then fails like a full disk (ENOSPC)."""

    def __init__(self, path, room: int):
        self.f = open(path, "wb")
        self.room = room

    def write(self, b):
        if len(b) > self.room:
            self.f.write(bytes(b[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_full_disk_keeps_the_previous_checkpoint_and_a_rerun_resumes(tmp_path, monkeypatch):
    import seqdiff.serialization as ser
    real_open = ser._open_for_write
    saves = []

    def open_for_write(path):
        saves.append(path)
        if len(saves) == 2:  # the second checkpoint (step 20): the disk fills up half way
            return _FullDisk(path, room=200_000)
        return real_open(path)

    monkeypatch.setattr(ser, "_open_for_write", open_for_write)
    run = tmp_path / "run"
    over = [f"out_dir={run}", "sampling.log_samples=0", "trainer.max_steps=30", "trainer.val_every=100"]
    r = cli("train", "-c", ROOT / "configs" / "tiny" / "text.yaml", "-q", *over)
    assert r.returncode == 2 and "the disk is full" in r.stderr and "Traceback" not in r.stderr, r.stderr
    ck = run / "checkpoints"
    assert safe_load(ck / "last.ckpt")["global_step"] == 10  # the previous one, intact
    no_temporaries(run)
    assert not (run / "model.pt").exists()
    monkeypatch.setattr(ser, "_open_for_write", real_open)
    r = cli("train", "-c", ROOT / "configs" / "tiny" / "text.yaml", "-q", *over)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30
    assert safe_load(ck / "last.ckpt")["global_step"] == 30 and safe_load(ck / "last.prev.ckpt")["global_step"] == 20


def test_a_damaged_last_checkpoint_falls_back_to_the_previous(tmp_path):
    run = tmp_path / "run"
    over = [f"out_dir={run}", "sampling.log_samples=0", "trainer.val_every=100"]
    cfg = load_config(ROOT / "configs" / "tiny" / "text.yaml", over + ["trainer.max_steps=20"])
    train(cfg, quiet=True)
    ck = run / "checkpoints"
    assert safe_load(ck / "last.prev.ckpt")["global_step"] == 10 and safe_load(ck / "last.ckpt")["global_step"] == 20
    data = (ck / "last.ckpt").read_bytes()
    (ck / "last.ckpt").write_bytes(data[: len(data) // 3])  # truncated, as by a crash of an old version
    (ck / ".last.ckpt.abc123.tmp").write_bytes(b"half a checkpoint")  # a save that was killed
    r = cli("train", "-c", ROOT / "configs" / "tiny" / "text.yaml", "-q", *over, "trainer.max_steps=30")
    assert r.returncode == 0, r.stderr
    assert "last.ckpt is damaged" in r.stdout and "resuming" in r.stdout and "last.prev.ckpt" in r.stdout
    assert (ck / "last.ckpt.damaged").exists()
    assert safe_load(ck / "last.ckpt")["global_step"] == 30
    no_temporaries(run)
    # nothing intact at all: a clear error, not a fresh run over the old one
    for p in ck.glob("last*.ckpt"):
        p.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="no intact checkpoint"):
        train(load_config(ROOT / "configs" / "tiny" / "text.yaml", over + ["trainer.max_steps=40"]), quiet=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tiny RAM file system at ``path`` (skips where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()[:80]})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_in_sample_and_score(tmp_path):
    with tmpfs(tmp_path / "small", "64k") as disk:
        old = disk / "out.txt"
        old.write_text("earlier output\n")
        r = cli_process("sample", "-m", "text", "-n", 400, "--steps", 1, "--batch-size", 100, "-o", old,
                        "--overwrite", "-q")
        one_line_error(r, "the disk is full")
        assert old.read_text() == "earlier output\n" and not (disk / "out.csv").exists()
        assert sorted(p.name for p in disk.iterdir()) == ["out.txt"]
        # score streams into OUT.partial: a full disk keeps the rows written so far, --resume continues
        fa = tmp_path / "many.fa"
        fa.write_text("".join(f">r{i}\n{'ACGT' * 8}\n" for i in range(300)))
        filler = disk / "filler"
        filler.write_bytes(b"x" * 36_000)  # room for the first 128 rows, not for all 300
        args = ["score", "-m", "dna", "--fasta", fa, "--batch-size", 8, "--n-t", 2, "-o", disk / "scores.csv", "-q"]
        r = cli_process(*args)
        one_line_error(r, "the disk is full", "scores.csv.partial", "--resume")
        assert not (disk / "scores.csv").exists()
        kept = json.loads((disk / "scores.csv.partial.json").read_text())["rows"]
        assert 0 < kept < 300 and kept % 128 == 0  # the pieces written before the disk filled are kept
        no_temporaries(disk)
        filler.unlink()
        r = cli_process(*args, "--resume")
        assert r.returncode == 0, r.stderr
        assert "resuming" in r.stderr
        got = (disk / "scores.csv").read_bytes()
    r = cli_process(*args[:-3], "-o", tmp_path / "straight.csv", "-q")
    assert r.returncode == 0, r.stderr
    assert got == (tmp_path / "straight.csv").read_bytes()


# ===================================================================== streaming, resumable scoring
def test_score_streams_rows_and_resumes_exactly(tmp_path, monkeypatch):
    from seqdiff.jobs import scoring
    variants = tmp_path / "v.csv"
    muts = [f"{w}{i + 1}{a}" for i, w in enumerate(GB1[:20]) for a in "ACDE" if a != w]
    pd.DataFrame({"mutant": muts, "fitness": np.arange(len(muts))}).to_csv(variants, index=False)
    base = ["score", "-m", "protein", "--wt", GB1, "--variants", variants, "--batch-size", 2, "-q"]
    assert cli(*base, "-o", tmp_path / "straight.csv").returncode == 0
    # interrupted after two pieces of 32 rows: they are on disk, the output is not there yet
    real = scoring.score_variants
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(scoring, "score_variants", flaky)
    out = tmp_path / "scores.csv"
    r = cli(*base, "-o", out)
    assert r.returncode == 130 and "--resume" in r.stderr
    assert not out.exists()
    part = pd.read_csv(tmp_path / "scores.csv.partial")
    assert len(part) == 64 and list(part["mutant"]) == muts[:64]
    monkeypatch.setattr(scoring, "score_variants", real)
    # without --resume the partial run is not silently thrown away
    one_line_error(cli(*base, "-o", out), "--resume")
    # other arguments cannot continue it
    one_line_error(cli(*base, "-o", out, "--resume", "--seed", 5), "another input, model or options")
    r = cli(*base, "-o", out, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "row 65" in r.stderr
    assert out.read_bytes() == (tmp_path / "straight.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "straight.csv", "v.csv"]


def _wait_for(pred, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_during_sample_and_score(tmp_path):
    old = tmp_path / "out.txt"
    old.write_text("earlier output\n")
    p = subprocess.Popen([sys.executable, "-m", "seqdiff.cli", "sample", "-m", "text", "-n", "100000", "--steps", "4",
                          "--batch-size", "32", "-o", str(old), "--overwrite", "-q"], env=ENV, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: any(f.stat().st_size > 0 for f in tmp_path.glob(".out.txt.*.tmp")))
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err, err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.txt"]  # no hidden .tmp, the old output intact
    assert old.read_text() == "earlier output\n"
    # score: the rows written so far stay in OUT.partial for --resume
    fa = tmp_path / "many.fa"
    fa.write_text("".join(f">r{i}\n{'ACGT' * 16}\n" for i in range(20000)))
    args = ["score", "-m", "dna", "--fasta", fa, "--batch-size", 2, "--n-t", 2, "-o", tmp_path / "s.csv", "-q"]
    p = subprocess.Popen([sys.executable, "-m", "seqdiff.cli", *map(str, args)], env=ENV, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "s.csv.partial.json"
    assert _wait_for(lambda: state.exists() and json.loads(state.read_text() or "{}").get("rows", 0) > 0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "--resume" in err and "Traceback" not in err, err
    rows = json.loads(state.read_text())["rows"]
    assert len(pd.read_csv(tmp_path / "s.csv.partial")) >= rows > 0
    no_temporaries(tmp_path)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


# ===================================================================== one-line errors for bad arguments
def test_every_bad_argument_gets_one_line(tiny_text, tmp_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    fa = tmp_path / "ok.fa"
    fa.write_text(">a\nACGT\n")
    existing = tmp_path / "there.txt"
    existing.write_text("keep me\n")
    short = tmp_path / "short.txt"  # the tiny text model reads windows of 32 characters
    short.write_text("a few words\n")
    cases = [
        (["sample", "-m", tiny_text, "-o", folder, "-q"], "is a folder"),
        (["sample", "-m", tiny_text, "-n", 2, "--batch-size", 0, "-o", tmp_path / "s.txt", "-q"],
         "--batch-size must be ≥ 1, got 0"),
        (["sample", "-m", tiny_text, "-n", 2, "--steps", 0, "-o", tmp_path / "s.txt", "-q"], "--steps must be ≥ 1"),
        (["sample", "-m", tiny_text, "-n", 0, "-o", tmp_path / "s.txt", "-q"], "--num must be ≥ 1"),
        (["sample", "-m", tiny_text, "-n", 2, "-o", existing, "-q"], "already exists; pass --overwrite"),
        (["infill", "-m", tiny_text, "-t", "ab{3}", "--steps", 0, "-o", tmp_path / "i.txt", "-q"], "--steps"),
        (["infill", "-m", tiny_text, "-t", "ab{3-300}", "-o", tmp_path / "i.txt", "-q"],
         "span {3-300} can never reach 300"),
        (["score", "-m", tiny_text, "--fasta", fa, "--batch-size", 0, "-o", tmp_path / "x.csv", "-q"],
         "--batch-size must be ≥ 1"),
        (["score", "-m", tiny_text, "--fasta", fa, "-o", folder, "-q"], "is a folder"),
        (["eval", "-m", tiny_text, "--split", short, "-q"], "no record gives a row"),
        (["eval", "-m", tiny_text, "--split", fa, "-q"], "ok.fa"),
        (["eval", "-m", tiny_text, "--batch-size", 0, "-q"], "--batch-size must be ≥ 1"),
        (["correct", "-m", tiny_text, "-i", fa, "-o", existing, "-q"], "already exists"),
        (["correct", "-m", tiny_text, "-i", fa, "-o", tmp_path / "c.fa", "--keep", "0-2", "-q"],
         "positions count from 1"),
    ]
    for args, message in cases:
        one_line_error(cli(*args), message)
    assert existing.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder", "ok.fa", "short.txt", "there.txt"]
    # with --overwrite the existing output is replaced
    r = cli("sample", "-m", tiny_text, "-n", 2, "--steps", 2, "-o", existing, "--overwrite", "-q")
    assert r.returncode == 0 and len(existing.read_text().splitlines()) == 2


def test_keep_positions_are_one_based(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("abcdefgh\n")
    base = ["correct", "-m", "text-uniform", "-i", inp, "-r", "0.9", "--seed", 1, "-q"]
    for keep, extra, kept in ((["--keep", "1-3"], [], [0, 1, 2]), (["--keep", "1-3"], ["--zero-based"], [1, 2, 3])):
        out = tmp_path / f"out{len(extra)}.txt"
        r = cli(*base, *keep, *extra, "-o", out)
        assert r.returncode == 0, r.stderr
        table = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False, dtype=str)
        changed = [int(p) - 1 for p in table["positions"][0].split(";") if p]  # 1-based in the CSV
        assert changed and not set(changed) & set(kept)


def test_variant_table_problems(tmp_path):
    from seqdiff.jobs.variants import VariantError, read_variants, variant_warnings
    table = read_variants(pd.DataFrame({"mutant": ["T2A", "K4R", "T2A", "WT", "WT"]}), GB1)
    warn = variant_warnings(table, "protein", source="v.csv")
    assert warn == ["v.csv: 2 duplicate variant row(s): row 3 repeats row 1 (T2A), row 5 repeats row 4 (WT); "
                    "each is scored"]
    assert variant_warnings(read_variants(pd.DataFrame({"mutant": ["T2A", "K4R"]}), GB1), "protein") == []
    with pytest.raises(VariantError, match=r"row 2 \('Y3Z'\): 'Z' at position 3 is an ambiguity code"):
        variant_warnings(read_variants(pd.DataFrame({"mutant": ["T2A", "Y3Z"]}), GB1), "protein")
    v = tmp_path / "v.csv"
    v.write_text("mutant\nT2A\nT2A\n")
    r = cli("score", "-m", "protein", "--wt", GB1, "--variants", v, "-o", tmp_path / "o.csv", "-q")
    assert r.returncode == 0 and "warning: " in r.stderr and "row 2 repeats row 1" in r.stderr
    v.write_text("mutant\nT2A\n\n")
    v.write_text("mutant,y\nT2A,1\n,2\n")
    one_line_error(cli("score", "-m", "protein", "--wt", GB1, "--variants", v, "-o", tmp_path / "p.csv", "-q"),
                   "row 2: empty mutant cell")
    v.write_text("mutant\nY3Z\n")
    one_line_error(cli("score", "-m", "protein", "--wt", GB1, "--variants", v, "-o", tmp_path / "p.csv", "-q"),
                   "ambiguity code")
