"""Shipped default models: one small masked-diffusion model per domain (the domain's
:attr:`~seqdiff.domains.Domain.shipped_model`), and two uniform-noise (multinomial diffusion) models
for ``seqdiff correct``.

``resolve_model("dna")`` gives the path of the shipped DNA model; any existing path is returned as
it is. The masked models are trained by their domain's recipe (``configs/pretrained/<domain>.yaml``),
the uniform ones (``text-uniform``, ``dna-uniform``) by ``configs/correct/<domain>.yaml`` (see README,
"Shipped models").

Shipped property predictors for classifier guidance live in ``predictors/`` (``<domain>-<name>.pt``):
``resolve_predictor("gc", "dna")`` gives the GC-content predictor of the shipped DNA model; their
recipes and validation figures are in ``predictors/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PRETRAINED_DIR", "PREDICTORS", "available", "resolve_model", "shipped_names", "predictor_names",
           "resolve_predictor"]

PRETRAINED_DIR = Path(__file__).resolve().parent
UNIFORM = ("text-uniform", "dna-uniform")
#: shipped property predictors (classifier guidance): (domain, name) -> (what it predicts, its recipe);
#: the file is ``predictors/<domain>-<name>.pt``, trained for the domain's shipped model
PREDICTORS: dict[tuple[str, str], tuple[str, str]] = {
    ("dna", "gc"): ("GC content", "configs/guidance/dna-gc-predictor.yaml"),
    ("smiles", "qed"): ("RDKit QED (drug-likeness)", "configs/guidance/smiles-qed-predictor.yaml"),
}


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


def predictor_names(domain: str | None = None) -> list[str]:
    """Names of the shipped predictors (of one domain, or ``name (domain)`` of all)."""
    if domain is not None:
        return sorted(n for d, n in PREDICTORS if d == domain)
    return sorted(f"{n} ({d})" for d, n in PREDICTORS)


def resolve_predictor(name_or_path: str | Path, domain: str) -> Path:
    """A predictor path: an existing file, or the shipped predictor ``name`` for ``domain``'s model
    (``gc`` for dna, ``qed`` for smiles; ``dna-gc`` also works). One-line errors: ``FileNotFoundError``
    for a missing file, ``ValueError`` for a name that is not shipped for this domain."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    text = str(name_or_path)
    key = text.lower()
    if "/" in text or "\\" in text or key.endswith((".pt", ".ckpt")):
        raise FileNotFoundError(f"--classifier {text}: no such predictor file")
    dom, _, short = key.partition("-") if "-" in key else (domain, "", key)
    if (dom, short) in PREDICTORS and dom == domain:
        path = PRETRAINED_DIR / "predictors" / f"{dom}-{short}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"the shipped {short} predictor of the {dom} model is missing from this "
                                    f"installation ({path}); train it with: seqdiff train -c "
                                    f"{PREDICTORS[dom, short][1]}")
        return path
    shipped_for = sorted(d for d, n in PREDICTORS if n == short)
    where = (f"{short!r} is for {', '.join(shipped_for)} models; "
             if shipped_for and domain not in shipped_for else "")
    raise ValueError(f"--classifier {text}: not a file, nor a shipped predictor for {domain} models ({where}"
                     f"shipped: {', '.join(predictor_names())})")
