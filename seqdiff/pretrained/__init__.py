"""Shipped default models: one small masked-diffusion model per domain.

``resolve_model("dna")`` gives the path of the shipped DNA model; any existing path is returned as
it is. The models are trained by ``configs/pretrained/<domain>.yaml`` (see README, "Shipped models").
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRETRAINED_DIR", "available", "resolve_model"]

PRETRAINED_DIR = Path(__file__).resolve().parent
DOMAINS = ("text", "dna", "protein", "smiles")


def available() -> dict[str, Path]:
    """The shipped models present in this installation."""
    return {d: PRETRAINED_DIR / f"{d}.pt" for d in DOMAINS if (PRETRAINED_DIR / f"{d}.pt").is_file()}


def resolve_model(name_or_path: str | Path) -> Path:
    """A model path: an existing file, or the shipped model of a domain name."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    key = str(name_or_path).lower()
    if key in DOMAINS:
        path = PRETRAINED_DIR / f"{key}.pt"
        if path.is_file():
            return path
        raise FileNotFoundError(f"the shipped {key} model is missing from this installation ({path}); "
                                f"train it with: seqdiff train -c configs/pretrained/{key}.yaml")
    raise FileNotFoundError(f"{name_or_path}: no such model file (or shipped model: {', '.join(DOMAINS)})")
