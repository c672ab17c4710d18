"""Shipped default models: one small masked-diffusion model per domain, and two uniform-noise
(multinomial diffusion) models for ``seqdiff correct``.

``resolve_model("dna")`` gives the path of the shipped DNA model; any existing path is returned as
it is. The masked models are trained by ``configs/pretrained/<domain>.yaml``, the uniform ones
(``text-uniform``, ``dna-uniform``) by ``configs/correct/<domain>.yaml`` (see README, "Shipped models").
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRETRAINED_DIR", "available", "resolve_model"]

PRETRAINED_DIR = Path(__file__).resolve().parent
DOMAINS = ("text", "dna", "protein", "smiles")
UNIFORM = ("text-uniform", "dna-uniform")


def available() -> dict[str, Path]:
    """The shipped models present in this installation."""
    return {d: PRETRAINED_DIR / f"{d}.pt" for d in DOMAINS if (PRETRAINED_DIR / f"{d}.pt").is_file()}


def resolve_model(name_or_path: str | Path) -> Path:
    """A model path: an existing file, or the shipped model of a domain name."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    key = str(name_or_path).lower()
    if key in DOMAINS + UNIFORM:
        path = PRETRAINED_DIR / f"{key}.pt"
        if path.is_file():
            return path
        recipe = f"configs/correct/{key.split('-')[0]}.yaml" if key in UNIFORM else f"configs/pretrained/{key}.yaml"
        raise FileNotFoundError(f"the shipped {key} model is missing from this installation ({path}); "
                                f"train it with: seqdiff train -c {recipe} and copy its model.pt there")
    raise FileNotFoundError(f"{name_or_path}: no such model file (or shipped model: "
                            f"{', '.join(DOMAINS + UNIFORM)})")
