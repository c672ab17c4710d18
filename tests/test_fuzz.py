"""Fuzzing every reader of user files: random bytes and random mutations of valid files (FASTA, FASTQ,
SMILES, variant CSV, YAML recipe, template strings, model files) give a valid result or one of the
project's clear errors (a ValueError naming what is wrong), never a raw exception. Seeded and fast."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
import torch

from seqdiff.data import read_fastq_qualities, read_records
from seqdiff.domains import read_smi_samples
from seqdiff.jobs.correct_cli import read_inputs
from seqdiff.jobs.template import parse_template
from seqdiff.jobs.variants import read_variants
from seqdiff.model import load_model
from seqdiff.tokenizers import DNATokenizer
from seqdiff.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
WT = "MTYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"

VALID = {
    "x.fa": b">a first\nACGTACGT\nACGT\n>b\nTTGACA\n",
    "x.fastq": b"@r1\nACGTAC\n+\nIIIIII\n@r2 d\nTTGA\n+\n!!!#\n",
    "x.smi": b"CCO\tethanol\nc1ccccc1 benzene\n# comment\nCC(=O)O\n",
    "x.csv": b"mutant,fitness\nT2A,0.1\nK4R:L5I,0.2\nWT,0.0\n",
    "x.yaml": (ROOT / "configs" / "tiny" / "dna.yaml").read_bytes(),
    "x.txt": b"the cat sat on the mat\nanother line\n",
}
TEMPLATES = ["TTGACA[N:17]TATAAT[N:5-8]", "AC{3}GT?", "ACGT{2-5}AC\\?", "{1-4}A{2}"]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a byte
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:  # insert random bytes
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and b:  # delete a run
            del b[i:i + rng.randint(1, 16)]
        elif op == 3:  # truncate
            del b[i:]
        elif op == 4 and b:  # duplicate a run
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 32)]
        else:  # insert a structural character
            b[i:i] = rng.choice([b">", b"@", b"+", b"\n", b",", b"\t", b":", b"{", b"}", b"[", b"\x00", b"\xff",
                                 b'"', b"-", b"#", b" "])
    return bytes(b)


def _readers(path: Path):
    name = path.name
    if name.endswith(".fa"):
        return [lambda: list(read_records(path)), lambda: read_inputs(path)]
    if name.endswith(".fastq"):
        return [lambda: list(read_records(path)), lambda: read_fastq_qualities(path), lambda: read_inputs(path)]
    if name.endswith(".smi"):
        return [lambda: list(read_records(path)), lambda: read_smi_samples(path), lambda: read_inputs(path)]
    if name.endswith(".csv"):
        return [lambda: read_variants(path, WT)]
    if name.endswith(".yaml"):
        return [lambda: load_config(path)]
    return [lambda: list(read_records(path, "text", mode="lines")), lambda: read_inputs(path)]


def _clear(e: BaseException, path: Path | None) -> bool:
    """One of the project's errors: a ValueError (not a stray decoding error) that names the file."""
    if not isinstance(e, ValueError) or isinstance(e, UnicodeError):
        return False
    return path is None or path.name in str(e)


def test_random_files_to_every_reader(tmp_path):
    rng = random.Random(20261129)
    cases = failures = 0
    problems = []
    for round_ in range(40):
        for name, data in VALID.items():
            blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))) if round_ % 4 == 0 else \
                _mutate(data, rng)
            path = tmp_path / f"r{round_}_{name}"
            path.write_bytes(blob)
            for read in _readers(path):
                cases += 1
                try:
                    read()
                except Exception as e:  # noqa: BLE001 - what is being tested
                    failures += 1
                    if not _clear(e, path):
                        problems.append(f"{path.name}: {type(e).__name__}: {str(e)[:120]}")
    assert cases >= 400 and failures > 0  # mutations do reach the error paths
    assert not problems, "\n".join(problems[:20])


def test_random_templates():
    rng = random.Random(7)
    dna = DNATokenizer()
    problems = []
    alphabet = "ACGTN?{}[]-:0123456789\\ xZ"
    for i in range(300):
        base = rng.choice(TEMPLATES)
        text = base if i % 10 == 0 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) \
            if i % 3 == 0 else _mutate(base.encode(), rng).decode("latin-1")
        try:
            tpl = parse_template(text, dna, domain="dna", max_len=rng.choice([None, 8, 64]))
            x, fixed, spans = tpl.instantiate(rng.randrange(1000))
            assert len(x) == len(fixed) and (tpl.max_len is None or len(x) <= tpl.max_len)
        except ValueError as e:
            if isinstance(e, UnicodeError) or "character" not in str(e) and "template" not in str(e):
                problems.append(f"{text!r}: {e}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{text!r}: {type(e).__name__}: {e}")
    assert not problems, "\n".join(problems[:20])


def test_damaged_model_files(tmp_path):
    src = ROOT / "seqdiff" / "pretrained" / "dna.pt"
    data = src.read_bytes()
    with zipfile.ZipFile(src) as z:
        pkl_name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        pkl = z.read(pkl_name)
        members = {n: z.read(n) for n in z.namelist()}
    rng = random.Random(3)
    problems = []
    for i in range(60):
        path = tmp_path / f"m{i}.pt"
        if i % 3 == 0:  # random damage anywhere (mostly the weights: still a valid archive, or a broken one)
            path.write_bytes(_mutate(data, rng) if i % 2 else data[: rng.randrange(len(data))])
        else:  # a well-formed archive whose pickle is damaged
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
                for n, b in members.items():
                    z.writestr(n, _mutate(pkl, rng) if n == pkl_name else b)
        try:
            load_model(path)
        except Exception as e:  # noqa: BLE001
            if not _clear(e, path):
                problems.append(f"{path.name}: {type(e).__name__}: {str(e)[:160]}")
    assert not problems, "\n".join(problems[:20])
    torch.manual_seed(0)
