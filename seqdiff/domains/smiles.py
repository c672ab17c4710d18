"""Molecule-generation metrics on SMILES (RDKit), after the MOSES benchmark.

With ``S`` the list of generated strings, ``V`` the valid ones (RDKit parses
and sanitises them; the empty string is invalid) and ``U`` the set of
canonical SMILES of ``V``:

* validity   = ``|V| / |S|``
* uniqueness = ``|U| / |V|``
* novelty    = ``|U minus T| / |U|`` with ``T`` the canonical training set
* FCD        = Fréchet ChemNet Distance (Preuer et al. 2018) between the
  ChemNet penultimate-layer activations of the valid samples and of a
  reference set.  It needs the optional package ``fcd_torch==1.0.7`` (it
  ships the ChemNet weights); :func:`fcd_available` says whether it is there.

Canonical SMILES are RDKit's isomeric canonical SMILES.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np

from ..tokenizers.smiles import canonicalize as _canonicalize
from .registry import AppHints, Domain, TemplateRules

__all__ = [
    "smiles_metrics",
    "smiles_sample_metrics",
    "DOMAIN",
    "FCDUnavailableError",
    "canonical",
    "canonical_set",
    "validity",
    "uniqueness",
    "novelty",
    "fcd_available",
    "chemnet_activations",
    "frechet_distance",
    "fcd",
    "smiles_report",
    "mol_grid_image",
]

FCD_REQUIREMENT = "fcd_torch==1.0.7"


class FCDUnavailableError(RuntimeError):
    """The Fréchet ChemNet Distance cannot be computed here (``fcd_torch`` missing)."""


def canonical(smi: str) -> str | None:
    """RDKit canonical (isomeric) SMILES, or ``None`` if ``smi`` is empty or
    does not parse."""
    if not isinstance(smi, str) or not smi.strip():
        return None
    try:
        return _canonicalize(smi.strip())
    except ValueError:
        return None


def canonical_set(smiles: Iterable[str]) -> set[str]:
    """Canonical SMILES of the valid entries (invalid ones dropped).  Pass
    the result as ``training`` to :func:`novelty` to canonicalise a large
    training set once."""
    out = set()
    for s in smiles:
        c = canonical(s)
        if c is not None:
            out.add(c)
    return out


def _canon_list(smiles: Iterable[str]) -> list[str | None]:
    return [canonical(s) for s in smiles]


def validity(smiles_list: Sequence[str]) -> float:
    """``|valid| / |samples|``: a sample is valid when it is non-empty and
    RDKit parses and sanitises it.

    Raises:
        ValueError: on an empty list.
    """
    smiles_list = list(smiles_list)
    if not smiles_list:
        raise ValueError("validity of an empty sample list is undefined")
    return sum(c is not None for c in _canon_list(smiles_list)) / len(smiles_list)


def uniqueness(smiles_list: Sequence[str]) -> float:
    """``|unique canonical SMILES among the valid| / |valid|`` (0.0 when none
    is valid)."""
    canon = [c for c in _canon_list(smiles_list) if c is not None]
    return len(set(canon)) / len(canon) if canon else 0.0


def novelty(samples: Sequence[str], training_smiles: Iterable[str], *, training_is_canonical: bool = False) -> float:
    """``|U minus T| / |U|``: the share of the unique valid canonical samples
    ``U`` that are not in the canonical training set ``T`` (0.0 when ``U``
    is empty).

    ``training_is_canonical=True`` (or passing a ``set``/``frozenset``, as
    :func:`canonical_set` returns) uses ``training_smiles`` as ``T`` as is.
    """
    uniq = {c for c in _canon_list(samples) if c is not None}
    if not uniq:
        return 0.0
    if training_is_canonical or isinstance(training_smiles, (set, frozenset)):
        train = training_smiles if isinstance(training_smiles, (set, frozenset)) else set(training_smiles)
    else:
        train = canonical_set(training_smiles)
    return len(uniq - train) / len(uniq)


# ================================================================ FCD
def fcd_available() -> bool:
    """Whether :func:`fcd` can run (``fcd_torch`` importable)."""
    try:
        import fcd_torch  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=2)
def _chemnet(model_path: str | None, device: str):
    try:
        from fcd_torch import FCD
    except ImportError as e:
        raise FCDUnavailableError(
            f"the Fréchet ChemNet Distance needs the package {FCD_REQUIREMENT!r}, which provides ChemNet and its "
            f"weights: pip install '{FCD_REQUIREMENT}' ({e})"
        ) from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FCD(device=device, n_jobs=1, batch_size=256, model_path=model_path, canonize=True)


def chemnet_activations(
    smiles: Sequence[str],
    *,
    device: str = "cpu",
    model_path: str | None = None,
) -> np.ndarray:
    """ChemNet penultimate-layer activations (``[n, 512]``) of valid SMILES
    (canonicalised first, as in the reference implementation)."""
    net = _chemnet(model_path, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices from the package's numpy/scipy calls
        act = net.get_predictions(list(smiles))
    return np.asarray(act, dtype=np.float64)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``:
    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    The matrix square root is ``scipy.linalg.sqrtm``; when it is not finite
    (near-singular product) ``1e-6 I`` is added to both covariances; a
    negligible imaginary part from round-off is dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError("means and covariances must have matching shapes")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            eps = np.eye(s1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has a large imaginary part ({np.abs(covmean.imag).max():.3g})")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fcd(
    samples: Sequence[str],
    reference: Sequence[str],
    *,
    device: str = "cpu",
    model_path: str | None = None,
) -> float:
    """Fréchet ChemNet Distance between ``samples`` and ``reference``.

    Invalid SMILES are dropped from both (as in MOSES); the activations'
    means and covariances (``np.cov``, ddof 1) go into
    :func:`frechet_distance`.  Lower is closer; identical sets give ~0.

    Raises:
        FCDUnavailableError: ``fcd_torch`` is not installed (the message
            says what to install).
        ValueError: fewer than 2 valid molecules in either set.
    """
    stats = []
    for label, smis in (("samples", samples), ("reference", reference)):
        valid = [s.strip() for s in smis if canonical(s) is not None]
        if len(valid) < 2:
            raise ValueError(f"FCD needs at least 2 valid molecules in {label}, got {len(valid)}")
        act = chemnet_activations(valid, device=device, model_path=model_path)
        stats.append((act.mean(axis=0), np.cov(act, rowvar=False)))
    (m1, s1), (m2, s2) = stats
    return frechet_distance(m1, s1, m2, s2)


# ================================================================ report / images
def smiles_report(
    samples: Sequence[str],
    training: Iterable[str] | None = None,
    reference: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All SMILES metrics in one dict.

    Keys: ``num_samples``, ``num_valid``, ``num_unique``, ``validity``,
    ``uniqueness``; with ``training``: ``novelty``; with ``reference``:
    ``fcd`` (``None`` plus ``fcd_error`` when FCD cannot be computed).
    """
    samples = list(samples)
    canon = _canon_list(samples)
    valid = [c for c in canon if c is not None]
    uniq = set(valid)
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "num_valid": len(valid),
        "num_unique": len(uniq),
        "validity": len(valid) / len(samples) if samples else 0.0,
        "uniqueness": len(uniq) / len(valid) if valid else 0.0,
    }
    if training is not None:
        train = training if isinstance(training, (set, frozenset)) else canonical_set(training)
        out["novelty"] = len(uniq - train) / len(uniq) if uniq else 0.0
    if reference is not None:
        try:
            out["fcd"] = fcd(samples, reference)
        except (FCDUnavailableError, ValueError) as e:
            out["fcd"] = None
            out["fcd_error"] = str(e)
    return out


def mol_grid_image(
    smiles: Sequence[str],
    n_per_row: int = 4,
    size: int | tuple[int, int] = 200,
    *,
    legends: Sequence[str] | None = None,
    max_mols: int = 48,
):
    """A PIL image of the valid molecules on a grid (``rdkit.Chem.Draw.MolsToGridImage``).

    Invalid SMILES are skipped (with their legends).  ``size`` is the size of
    one cell (int for square).  At most ``max_mols`` molecules are drawn.  With
    no valid molecule the result is one blank white cell.
    """
    from PIL import Image
    from rdkit import Chem, rdBase
    from rdkit.Chem import Draw

    cell = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if legends is not None and len(legends) != len(smiles):
        raise ValueError(f"{len(legends)} legends for {len(smiles)} SMILES")
    mols, labels = [], []
    with rdBase.BlockLogs():
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s) if isinstance(s, str) and s.strip() else None
            if mol is None:
                continue
            mols.append(mol)
            labels.append(legends[i] if legends is not None else s)
            if len(mols) >= max_mols:
                break
    if not mols:
        return Image.new("RGB", cell, "white")
    img = Draw.MolsToGridImage(mols, molsPerRow=max(1, int(n_per_row)), subImgSize=cell, legends=labels,
                               returnPNG=False)
    if not isinstance(img, Image.Image):  # some notebook front-ends wrap it
        import io

        data = getattr(img, "data", None)
        if data is None:
            raise TypeError(f"MolsToGridImage returned {type(img).__name__}, not a PIL image")
        img = Image.open(io.BytesIO(data))
    return img


def smiles_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                   training: Iterable[str] | None = None) -> dict[str, Any]:
    """:func:`smiles_report`: validity, uniqueness, novelty (with ``training``) and FCD (with
    ``reference``; ``None`` and ``fcd_error`` when ``fcd_torch`` is missing)."""
    return smiles_report(list(samples), training=training, reference=reference)


def smiles_sample_metrics(seq: str) -> dict[str, Any]:
    """``valid`` (RDKit parses it) and its ``canonical`` SMILES (empty when invalid)."""
    from ..tokenizers.smiles import is_valid_smiles

    valid = bool(seq) and is_valid_smiles(seq)
    return {"valid": valid, "canonical": (_canonicalize(seq) or "") if valid else ""}


_RING_LABEL = frozenset("123456789")


def syntax_suspects(tokens: Sequence[str]) -> list[int]:
    """Positions of the SMILES tokens that break its grammar, found without RDKit: a ``)`` that closes
    no branch, a ``(`` still open at the end, both tokens of an empty branch ``()``, and the last
    occurrence of a ring-closure label (``1``–``9``, ``%nn``) that occurs an odd number of times (ring
    labels pair in order, so the last one is the ring never closed). Empty when the string is
    well-formed in these respects; other tokens (pad, mask) are ignored. Valence and aromaticity are
    left to RDKit (:func:`validity`)."""
    out: set[int] = set()
    open_at: list[int] = []
    last = None  # the previous grammar token (pads and masks skipped)
    for i, t in enumerate(tokens):
        if t == "(":
            open_at.append(i)
        elif t == ")":
            if last is not None and tokens[last] == "(":
                out.update((last, i))
            if open_at:
                open_at.pop()
            else:
                out.add(i)
        if t and not t.startswith("<"):
            last = i
    out.update(open_at)
    rings: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        if t in _RING_LABEL or (len(t) == 3 and t[0] == "%" and t[1:].isdigit()):
            rings.setdefault(t, []).append(i)
    for where in rings.values():
        if len(where) % 2:
            out.add(where[-1])
    return sorted(out)


_AROMATIC_HETERO = frozenset("nopsb")


def _atom_tokens(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The SMILES string the tokens spell (special ``<...>`` tokens and empty names skipped) and,
    for each atom in order of appearance (= RDKit's atom index), the position of its token — for a
    bracket atom split into parts, the part holding the element symbol."""
    from ..tokenizers.smiles import _scan_smiles

    text, starts = [], []  # starts[c]: the token position of character c
    for i, t in enumerate(tokens):
        if not t or t.startswith("<"):
            continue
        text.append(t)
        starts.extend([i] * len(t))
    smi = "".join(text)
    atoms: list[int] = []
    for pos, tok in _scan_smiles(smi)[0]:  # (1-based position, token); stray characters are skipped
        if tok[0] == "[" or tok[0].isalpha() or tok == "*":
            where = range(pos - 1, pos - 1 + len(tok))
            alpha = [c for c in where if smi[c].isalpha() or smi[c] == "*"]
            atoms.append(starts[alpha[0] if alpha else pos - 1])
    return smi, atoms


def smiles_suspects(tokens: Sequence[str]) -> list[int | tuple[int, ...]]:
    """The SMILES domain's check for the confidence sampler's ``repair``: the grammar errors of
    :func:`syntax_suspects` when there are any; otherwise the chemistry RDKit finds in the parsed
    (unsanitised) molecule, each as the token(s) one of which must change —

    * an atom over its allowed valence: that atom's token;
    * an aromatic atom outside any ring: that atom's token;
    * an aromatic system that cannot be kekulised: its aromatic heteroatoms if it has any (an ``n``
      that should be ``[nH]`` or the reverse is the usual fault), else all its atoms — returned as one
      group (a tuple): the sampler re-draws only the least confident token of a group.

    Empty when RDKit accepts the molecule or when the string does not parse for a reason the grammar
    check does not see (nothing to point at)."""
    bad = syntax_suspects(tokens)
    if bad:
        return list(bad)
    from rdkit import Chem, rdBase

    smi, atoms = _atom_tokens(tokens)
    if not smi:
        return []
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smi, sanitize=False)
        problems = Chem.DetectChemistryProblems(mol) if mol is not None and mol.GetNumAtoms() == len(atoms) else ()
    out: list[int | tuple[int, ...]] = []
    for problem in problems:
        kind = problem.GetType()
        if kind in ("AtomValenceException", "AtomKekulizeException"):
            out.append(atoms[problem.GetAtomIdx()])
        elif kind == "KekulizeException":
            idx = list(problem.GetAtomIndices())
            hetero = [a for a in idx if mol.GetAtomWithIdx(a).GetSymbol().lower() in _AROMATIC_HETERO]
            group = tuple(sorted({atoms[a] for a in (hetero or idx)}))
            out.append(group[0] if len(group) == 1 else group)
    return out


DOMAIN = Domain(
    name="smiles", letter="SMILES token", tokenizer_kind="smiles", file_format="smi", metrics=smiles_metrics,
    sample_metrics=smiles_sample_metrics, sample_columns=("valid", "canonical"), syntax_suspects=smiles_suspects,
    layout="pad",
    record_options=("randomize_smiles", "canonicalize_smiles", "check_smiles"),
    template=TemplateRules(bracket_spans=False, example="c1ccccc1{3}C(=O)O"),
    shipped_model="smiles", recipe="configs/pretrained/smiles.yaml", corpus="moses",
    app=AppHints(label="Molecules (SMILES)", template="c1ccccc1{3}C(=O)O", menu_position=3, batch_size=8,
                 views=("molecules",), units="tokens"),
    demo="seqdiff.jobs.demo:smiles_section", order=3,
)
