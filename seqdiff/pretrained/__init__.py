"""Shipped default models: one small masked-diffusion model per domain (the domain's
:attr:`~seqdiff.domains.Domain.shipped_model`), and two uniform-noise (multinomial diffusion) models
for ``seqdiff correct``.

``resolve_model("dna")`` gives the path of the shipped DNA model; any existing path is returned as
it is. The masked models are trained by their domain's recipe (``configs/pretrained/<domain>.yaml``),
the uniform ones (``text-uniform``, ``dna-uniform``) by ``configs/correct/<domain>.yaml`` (see README,
"Shipped models").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PRETRAINED_DIR", "available", "resolve_model", "shipped_names"]

PRETRAINED_DIR = Path(__file__).resolve().parent
UNIFORM = ("text-uniform", "dna-uniform")


def _masked() -> dict[str, str]:
    """shipped model name -> the recipe that trains it, from the domain registry."""
    from ..domains import domains

    return {d.shipped_model: d.recipe or f"configs/pretrained/{d.name}.yaml"
            for d in domains().values() if d.shipped_model}


def shipped_names() -> tuple[str, ...]:
    """Every name :func:`resolve_model` accepts for a shipped model."""
    return tuple(_masked()) + UNIFORM


def __getattr__(name: str) -> Any:
    if name == "DOMAINS":  # the domains with a shipped masked model
        return tuple(_masked())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available() -> dict[str, Path]:
    """The shipped models present in this installation."""
    return {d: PRETRAINED_DIR / f"{d}.pt" for d in _masked() if (PRETRAINED_DIR / f"{d}.pt").is_file()}


def resolve_model(name_or_path: str | Path) -> Path:
    """A model path: an existing file, or the shipped model of a domain name."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    key = str(name_or_path).lower()
    masked = _masked()
    if key in masked or key in UNIFORM:
        path = PRETRAINED_DIR / f"{key}.pt"
        if path.is_file():
            return path
        recipe = f"configs/correct/{key.split('-')[0]}.yaml" if key in UNIFORM else masked[key]
        raise FileNotFoundError(f"the shipped {key} model is missing from this installation ({path}); "
                                f"train it with: seqdiff train -c {recipe} and copy its model.pt there")
    raise FileNotFoundError(f"{name_or_path}: no such model file (or shipped model: "
                            f"{', '.join(shipped_names())})")
