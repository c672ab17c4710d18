"""Sample quality of every sampler × step count, per domain, on held-out data.

For each domain's model (the shipped default unless ``--model DOMAIN=PATH``) and each sampler
setting below, at each step count: network evaluations (``nfe``: denoiser calls; ``rows``:
sequences through the network), sequences per second, and the domain's metrics:

* SMILES — RDKit validity, uniqueness (of the valid), novelty against the training set, and FCD
  against the MOSES test set (fcd_torch's ChemNet; FCD from few samples is biased upwards, so
  compare rows at equal ``num``);
* text — generative perplexity under an AR baseline (``--ref-model``, exact likelihood), with the
  samples' character entropy beside it (a low perplexity bought with repetition shows as low
  entropy) and the held-out data's own perplexity and entropy as the target;
* DNA — 3-mer spectrum JS distance to held-out promoter regions (and to their shuffles' level),
  GC content, and JASPAR TATA-box density per kb against the held-out sequences;
* protein — amino-acid composition JS distance and 3-mer JS distance to held-out UniProt.

Every finished row is appended to ``--out`` (JSON lines) at once, so an interrupted run keeps what
it measured and ``--resume`` skips those rows. ``--table`` prints the markdown tables from a file.

    python benchmarks/bench_samplers.py --domains smiles --num 300 --threads 2
    python benchmarks/bench_samplers.py --domains text     # scored by benchmarks/models/text-ar.pt
    python benchmarks/bench_samplers.py --table benchmarks/results/samplers.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from seqdiff.domains import get_domain  # noqa: E402
from seqdiff.jobs.evaluate import evaluate_samples, generative_perplexity, read_sequences  # noqa: E402
from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402
from readme_tables import SAMPLER_KEYS  # noqa: E402

#: (label, sampler, options) — the settings compared in every domain
SETTINGS = [
    ("ancestral", "ancestral", {}),
    ("ancestral top-p 0.9", "ancestral", {"top_p": 0.9}),
    ("remdm cap η=0.05", "remdm", {"eta": 0.05, "remask": "cap"}),
    ("confidence prob", "confidence", {"confidence": "prob"}),
    ("confidence max", "confidence", {"confidence": "max"}),
    ("confidence margin", "confidence", {"confidence": "margin"}),
    ("confidence prob thr 0.9", "confidence", {"confidence": "prob", "threshold": 0.9}),
    ("confidence prob block 32", "confidence", {"confidence": "prob", "block": 32}),
    ("confidence prob polish 0.25", "confidence", {"confidence": "prob", "polish": 0.25}),
    ("confidence prob block 32 polish 0.25", "confidence", {"confidence": "prob", "block": 32, "polish": 0.25}),
    ("confidence prob noise 0.1 polish 0.4", "confidence", {"confidence": "prob", "noise": 0.1, "polish": 0.4}),
    ("confidence prob polish 0.25 T_polish 0.5", "confidence", {"confidence": "prob", "polish": 0.25,
                                                                "polish_temperature": 0.5}),
    ("confidence prob polish 0.25 repair", "confidence", {"confidence": "prob", "polish": 0.25, "repair": True}),
    ("confidence prob polish 0.4 repair", "confidence", {"confidence": "prob", "polish": 0.4, "repair": True}),
    ("confidence prob noise 0.1 polish 0.25 repair", "confidence", {"confidence": "prob", "noise": 0.1, "polish": 0.25,
                                                                    "repair": True}),
    ("confidence prob noise 0.2 polish 0.25 repair", "confidence", {"confidence": "prob", "noise": 0.2, "polish": 0.25,
                                                                    "repair": True}),
]
STEPS = (16, 32, 64, 128, 256)
#: the AR baseline that scores text samples (the text recipe with `model.arch=ar`, 500 steps;
#: benchmarks/models/README.md)
REF_MODEL = ROOT / "benchmarks" / "models" / "text-ar.pt"
#: (reference = test split, training set for novelty, a second held-out split for the data's own row)
HELD_OUT = {"smiles": ("moses/test.smi.gz", "moses/train.smi.gz", "moses/valid.smi.gz"),
            "text": ("text8_wiki/test.txt", None, "text8_wiki/valid.txt"),
            "dna": ("dm3_upstream/test.fa.gz", None, "dm3_upstream/valid.fa.gz"),
            "protein": ("uniprot/test.fa.gz", None, "uniprot/valid.fa.gz")}
KEYS = SAMPLER_KEYS


def held_out(domain: str, limit: int):
    ref, train, _ = HELD_OUT[domain]
    data = ROOT / "datasets"
    if domain == "text":
        return [(data / ref).read_text()], None
    reference = read_sequences(data / ref, domain, limit)
    training = None
    if train:
        from seqdiff.domains.smiles import canonical_set
        training = canonical_set(read_sequences(data / train, domain, 200_000))  # once, not per row
    return reference, training


def row_options(sampler: str, options: dict) -> dict:
    """Every option of ``sampler`` at its own default under the row's ``options``: a row measures
    exactly its setting, whatever defaults the model records for its own sampler (a model's recorded
    options apply to its own sampler when an option is not given)."""
    from seqdiff.diffusion import SAMPLERS

    full = {k: o.default for k, o in SAMPLERS[sampler].options().items() if o.default is not None}
    return {**full, **options}


def run_row(model, domain, label, sampler, options, steps, num, batch_size, seed, reference, training, ref_model):
    texts, stats = [], {}
    given = row_options(sampler, options)
    t0 = time.perf_counter()
    for b, start in enumerate(range(0, num, batch_size)):
        n = min(batch_size, num - start)
        g = torch.Generator().manual_seed(seed * 1000 + b)
        length = model.max_len if domain in ("text", "dna") else None
        ids = model.generate(n, length, sampler=sampler, steps=steps, generator=g, stats=stats, **given)
        texts += model.decode(ids)
    seconds = time.perf_counter() - t0
    if domain == "text":
        m = {"entropy_bits_per_char": evaluate_samples("text", texts)["entropy_bits_per_char"]}
        if ref_model is not None:
            m["generative_perplexity"] = generative_perplexity(ref_model, texts)
    else:
        m = dict(get_domain(domain).metrics(texts, reference=reference, training=training))
    batches = math.ceil(num / batch_size)
    row = {"domain": domain, "setting": label, "sampler": sampler, "options": options, "steps": steps,
           "num": num, "batch_size": batch_size,
           # per batch of sequences: network calls, and sequences through the network per sample
           "nfe": round(stats.get("nfe", 0) / batches, 1), "rows_per_sample": round(stats.get("rows", 0) / num, 1),
           "seconds": round(seconds, 2), "seq_per_s": round(num / seconds, 2),
           "examples": texts[:3]}
    row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if k in KEYS[domain]})
    return row


def reference_row(domain, reference, training, ref_model, num, length):
    """Held-out data (a second split) scored like ``num`` samples: what a perfect model gets at
    this sample size — the target of every metric."""
    other = ROOT / "datasets" / HELD_OUT[domain][2]
    if domain == "text":
        stream = other.read_text()
        chunks = [stream[i:i + length] for i in range(0, length * num, length)]
        row = {"entropy_bits_per_char": evaluate_samples("text", chunks)["entropy_bits_per_char"]}
        if ref_model is not None:
            row["generative_perplexity"] = generative_perplexity(ref_model, chunks)
        return row
    seqs = read_sequences(other, domain, num)
    if domain == "dna":
        seqs = [s[:length] for s in seqs]
    m = get_domain(domain).metrics(seqs, reference=reference, training=training)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if k in KEYS[domain]}


def print_tables(rows: list[dict]) -> None:
    from readme_tables import sampler_table
    for domain in SAMPLER_KEYS:
        if any(r["domain"] == domain for r in rows):
            print(f"\n#### {domain}\n")
            print(sampler_table(rows, domain))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domains", nargs="+", default=["smiles", "text", "dna", "protein"])
    p.add_argument("--model", action="append", default=[], help="DOMAIN=PATH (default: the shipped model)")
    p.add_argument("--settings", nargs="+", default=None, help="labels of SETTINGS to run (default: all)")
    p.add_argument("--steps", nargs="+", type=int, default=list(STEPS))
    p.add_argument("--num", type=int, default=200, help="samples per row")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ref-model", default=str(REF_MODEL),
                   help="AR baseline for text generative perplexity (default: the shipped one, "
                        "benchmarks/models/text-ar.pt; 'none' to skip)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "samplers.jsonl"))
    p.add_argument("--resume", action="store_true", help="skip rows already in --out")
    p.add_argument("--table", default=None, help="print the markdown tables of this results file and exit")
    args = p.parse_args(argv)
    if args.table:
        print_tables([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()])
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    models = dict(m.split("=", 1) for m in args.model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.resume and out.is_file():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["domain"], r["setting"], r["steps"], r["num"]))
    settings = [s for s in SETTINGS if args.settings is None or s[0] in args.settings]
    use_ref = "text" in args.domains and args.ref_model and args.ref_model.lower() != "none"
    ref_model = load_model(args.ref_model) if use_ref else None
    for domain in args.domains:
        path = models.get(domain) or str(resolve_model(domain))
        model = load_model(path)
        reference, training = held_out(domain, 2000)
        print(f"== {domain}: {model.describe()}", flush=True)
        if (domain, "held-out data", 0, args.num) not in done:
            ref = reference_row(domain, reference, training, ref_model, args.num, model.max_len)
            _append(out, {"domain": domain, "setting": "held-out data", "steps": 0, "num": args.num, **ref})
        for label, sampler, options in settings:
            if options.get("repair") and get_domain(domain).syntax_suspects is None:
                continue  # repair needs a syntax check (SMILES has one)
            for steps in args.steps:
                if (domain, label, steps, args.num) in done:
                    continue
                row = run_row(model, domain, label, sampler, options, steps, args.num, args.batch_size, args.seed,
                              reference, training, ref_model)
                row["model"] = Path(path).name
                _append(out, row)
                shown = {k: row.get(k) for k in KEYS[domain] if k in row}
                print(f"{label:26s} {steps:4d} steps  nfe {row['nfe']:6.1f}  {row['seq_per_s']:7.1f} seq/s  {shown}",
                      flush=True)
    return 0


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


if __name__ == "__main__":
    sys.exit(main())
