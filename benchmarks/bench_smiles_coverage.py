"""SMILES coverage: the share of RDKit-parsable molecules each tokenizer can encode.

Sets: RDKit's own NCI sample (``RDConfig.RDDataDir/NCI/first_5K.smi``), ChEMBL actives shipped in
RDKit's Contrib (``fraggle/data/ChEMBL_11265_actives.smi``, when present) and the committed MOSES
slices (test and scaffold test), each as written and as RDKit canonical SMILES. Tokenizers: the
``parts`` scheme (the default for new models) and the shipped SMILES model's corpus-built atom
vocabulary. Also counts ``decode(encode(s)) == s`` for the parts scheme.

    python benchmarks/bench_smiles_coverage.py     # a few seconds

Writes ``benchmarks/results/smiles_coverage.json`` (``benchmarks/readme_tables.py`` makes the
README table from it).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqdiff.model import load_model  # noqa: E402
from seqdiff.pretrained import resolve_model  # noqa: E402
from seqdiff.tokenizers import SmilesTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def molecule_sets() -> dict[str, list[str]]:
    from rdkit import RDConfig

    sets = {"RDKit NCI first_5K": [line.split()[0] for line in
                                   open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi"))
                                   if line.strip()]}
    chembl = Path(RDConfig.RDContribDir) / "fraggle" / "data" / "ChEMBL_11265_actives.smi"
    if chembl.exists():
        sets["ChEMBL 11265 actives (RDKit Contrib)"] = [
            line.split()[0] for line in chembl.read_text().splitlines() if line.strip() and not line.startswith("SMILES")]
    for name in ("test", "test_scaffolds"):
        with gzip.open(ROOT / "datasets" / "moses" / f"{name}.smi.gz", "rt") as fh:
            sets[f"MOSES {name} (committed slice)"] = [line.split()[0] for line in fh if line.strip()]
    return sets


def main() -> int:
    from rdkit import Chem, rdBase

    parts = SmilesTokenizer.parts()
    shipped = load_model(resolve_model("smiles")).tokenizer
    rows, unknown = [], Counter()
    for name, smis in molecule_sets().items():
        for form in ("as written", "RDKit canonical"):
            parsable = []
            with rdBase.BlockLogs():
                for s in smis:
                    mol = Chem.MolFromSmiles(s)
                    if mol is not None:
                        parsable.append(s if form == "as written" else Chem.MolToSmiles(mol))
            ok = [s for s in parsable if parts.can_encode(s)]
            for s in parsable:
                for e in shipped.validate(s, max_problems=None):
                    unknown[e.token] += 1
            rows.append({"set": name, "form": form, "molecules": len(smis), "parsable": len(parsable),
                         "parts_covered": len(ok), "parts_coverage": len(ok) / len(parsable),
                         "shipped_coverage": sum(shipped.can_encode(s) for s in parsable) / len(parsable),
                         "roundtrip": sum(parts.decode(parts.encode(s)) == s for s in ok),
                         "parts_tokens_per_molecule": sum(len(parts.encode(s)) for s in ok) / max(len(ok), 1)})
            print(f"{name}, {form}: {len(parsable)} parsable; parts {rows[-1]['parts_coverage']:.4f}, shipped "
                  f"{rows[-1]['shipped_coverage']:.4f}", flush=True)
    out = {"parts_vocabulary_size": parts.num_data_tokens, "shipped_vocabulary_size": shipped.num_data_tokens,
           "rows": rows, "shipped_unknown_tokens_top": unknown.most_common(15)}
    path = ROOT / "benchmarks" / "results" / "smiles_coverage.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
