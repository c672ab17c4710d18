"""`seqdiff gpu-train` in miniature on CPU: tiny recipes, a budget of seconds. Every domain's model
is written, loads and beats the uniform predictor; a killed run keeps what it finished; SIGTERM
writes the domain in training; a rerun skips the finished domains."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from seqdiff.model import load_model

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
SMALL = ["--recipes", str(ROOT / "configs" / "tiny"), "--eval-rows", "32", "--eval-nt", "2", "--samples", "2",
         "--sample-steps", "8", "--throughput-steps", "3", "--warmup-steps", "1"]


def _cmd(out: Path, budget: float, *extra: str) -> list[str]:
    return [sys.executable, "-m", "seqdiff.cli", "gpu-train", "--budget", str(budget), "--out", str(out),
            *SMALL, *extra]


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _check_model(out: Path, domain: str, summary: dict) -> None:
    entry = summary["models"][domain]
    model = load_model(out / entry["model"])
    assert model.domain == domain
    raw = torch.load(out / entry["model"], weights_only=False)["state_dict"]
    assert all(v.dtype == torch.bfloat16 for v in raw.values() if v.is_floating_point())  # bf16 storage
    metrics = json.loads((out / entry["metrics"]).read_text())
    assert metrics["heldout_bits_per_token"] == entry["heldout_bits_per_token"]
    # trained: clearly better than the uniform prediction over the data tokens
    assert metrics["heldout_bits_per_token"] < math.log2(model.tokenizer.num_data_tokens) - 0.1, metrics
    assert (out / entry["samples"]).read_text().strip()
    assert (out / entry["recipe"]).is_file()


def test_gpu_train_in_miniature_writes_every_domain(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(_cmd(out, 24), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = _summary(out)
    assert s["status"] == "done" and s["pending"] == []
    assert set(s["models"]) == {"text", "dna", "protein", "smiles"}
    for dom in s["models"]:
        _check_model(out, dom, s)
    rows = {row["domain"]: row for row in s["throughput"]}
    assert set(rows) == set(s["models"]) and all(row["tokens_per_s"] > 0 for row in rows.values())
    assert json.loads((out / "throughput.json").read_text()) == s["throughput"]
    assert not list(out.rglob("*.tmp"))
    # a rerun finds everything finished and trains nothing
    r = subprocess.run(_cmd(out, 10), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "(all done)" in r.stdout
    again = _summary(out)
    assert again["models"] == s["models"] and again["throughput"] == s["throughput"]
    assert json.loads((out / "throughput.json").read_text()) == s["throughput"]


def test_killed_run_keeps_the_finished_models_and_a_rerun_completes(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(out, 20, "--domains", "text", "dna"), env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if "text" in _summary(out).get("models", {}):
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # like the hard time limit of a GPU machine
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = _summary(out)
    assert set(s["models"]) == {"text"} and s["status"] == "running" and s["pending"] == ["dna"]
    _check_model(out, "text", s)
    assert not (out / "dna" / "model.pt").exists()
    before = (out / "text" / "model.pt").read_bytes()
    r = subprocess.run(_cmd(out, 12, "--domains", "text", "dna"), env=ENV, cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    s = _summary(out)
    assert s["status"] == "done" and set(s["models"]) == {"text", "dna"}
    _check_model(out, "dna", s)
    assert (out / "text" / "model.pt").read_bytes() == before  # finished work is never redone or touched


def test_sigterm_writes_the_domain_in_training_and_stops(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(out, 200, "--domains", "text", "dna"), env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "throughput.json").exists():
            time.sleep(0.1)
        time.sleep(3.0)  # into the text model's training slice (~85 s long)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stdout
    s = _summary(out)
    assert s["status"] == "interrupted" and set(s["models"]) == {"text"} and s["pending"] == ["dna"]
    assert json.loads((out / "text" / "metrics.json").read_text())["interrupted"] is True
    load_model(out / "text" / "model.pt")
