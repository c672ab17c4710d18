"""Sequence statistics for DNA and proteins: k-mer spectra and their distances.

All functions compare letters case-insensitively (sequences and alphabets
are upper-cased) and skip k-mers that contain a letter outside the alphabet
(``N`` in DNA, ``X`` in proteins with the canonical alphabet).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "DNA_ALPHABET",
    "PROTEIN_ALPHABET",
    "kmer_counts",
    "kmer_spectrum",
    "kmer_names",
    "js_distance",
    "kmer_js",
    "composition",
    "composition_js",
    "shuffled_baseline",
    "gc_content",
    "maybe",
    "mean_length",
    "kmer_block",
]

#: Unambiguous nucleotides.
DNA_ALPHABET = "ACGT"
#: The 20 canonical amino acids.
PROTEIN_ALPHABET = "ACDEFGHIKLMNPQRSTVWY"


def _as_list(seqs: str | Iterable[str]) -> list[str]:
    return [seqs] if isinstance(seqs, str) else [str(s) for s in seqs]


def _lut(alphabet: str) -> np.ndarray:
    letters = alphabet.upper()
    if len(set(letters)) != len(letters):
        raise ValueError(f"alphabet {alphabet!r} has repeated letters")
    lut = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(letters):
        if ord(ch) > 255:
            raise ValueError(f"alphabet letter {ch!r} is not a single-byte character")
        lut[ord(ch)] = i
    return lut


def kmer_counts(seqs: str | Iterable[str], k: int, alphabet: str = DNA_ALPHABET) -> np.ndarray:
    """Raw k-mer counts, pooled over sequences.

    Index of a k-mer ``a_1..a_k`` is ``sum_j idx(a_j) * |A|**(k-j)`` with
    ``idx`` the position in ``alphabet`` (lexicographic order, see
    :func:`kmer_names`).  Windows with a letter outside ``alphabet`` are skipped.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    lut = _lut(alphabet)
    a = len(alphabet)
    counts = np.zeros(a**k, dtype=np.int64)
    weights = a ** np.arange(k - 1, -1, -1, dtype=np.int64)
    for s in _as_list(seqs):
        if len(s) < k:
            continue
        raw = np.frombuffer(s.upper().encode("latin-1", errors="replace"), dtype=np.uint8)
        idx = lut[raw]
        win = np.lib.stride_tricks.sliding_window_view(idx, k)
        ok = (win >= 0).all(axis=1)
        codes = win[ok] @ weights
        counts += np.bincount(codes, minlength=a**k)
    return counts


def kmer_spectrum(seqs: str | Iterable[str], k: int, alphabet: str = DNA_ALPHABET) -> np.ndarray:
    """Normalised k-mer spectrum: ``p[i] = count[i] / sum(count)`` over all
    ``|alphabet|**k`` k-mers (see :func:`kmer_counts` for the order).

    Raises:
        ValueError: when the sequences contain no valid k-mer.
    """
    counts = kmer_counts(seqs, k, alphabet)
    total = counts.sum()
    if total == 0:
        raise ValueError(f"no {k}-mer over the alphabet {alphabet!r} in the sequences")
    return counts / total


def kmer_names(k: int, alphabet: str = DNA_ALPHABET) -> list[str]:
    """The k-mers in the order of :func:`kmer_spectrum`."""
    names = [""]
    for _ in range(k):
        names = [n + ch for n in names for ch in alphabet.upper()]
    return names


def js_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance in base 2, in ``[0, 1]``.

    With ``p`` and ``q`` normalised to sum 1 and ``m = (p + q) / 2``:
    ``JSD = KL(p || m) / 2 + KL(q || m) / 2`` (``KL`` in bits, ``0 log 0 = 0``)
    and the distance is ``sqrt(JSD)``.  Symmetric, 0 iff ``p == q``, 1 for
    disjoint supports.  Counts are accepted (they are normalised).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q differ in shape: {p.shape} vs {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("p and q must be non-negative")
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        raise ValueError("p and q must have positive mass")
    p, q = p / sp, q / sq
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    jsd = 0.5 * kl(p) + 0.5 * kl(q)
    return float(np.sqrt(min(max(jsd, 0.0), 1.0)))


def kmer_js(
    samples: str | Iterable[str],
    reference: str | Iterable[str],
    k: int = 3,
    alphabet: str = DNA_ALPHABET,
) -> float:
    """Jensen-Shannon distance between the pooled k-mer spectra of
    ``samples`` and ``reference``: ``js_distance(spectrum(samples), spectrum(reference))``."""
    return js_distance(kmer_counts(samples, k, alphabet), kmer_counts(reference, k, alphabet))


def composition(seqs: str | Iterable[str], alphabet: str = DNA_ALPHABET) -> dict[str, float]:
    """Letter frequencies pooled over sequences: ``f[a] = n_a / sum_b n_b``
    over the letters of ``alphabet`` (other letters ignored)."""
    p = kmer_spectrum(seqs, 1, alphabet)
    return {ch: float(v) for ch, v in zip(alphabet.upper(), p)}


def composition_js(samples: str | Iterable[str], reference: str | Iterable[str], alphabet: str = DNA_ALPHABET) -> float:
    """Jensen-Shannon distance between letter compositions (``kmer_js`` with ``k = 1``)."""
    return kmer_js(samples, reference, 1, alphabet)


def shuffled_baseline(
    seqs: str | Iterable[str],
    rng: np.random.Generator | int | None = None,
) -> list[str]:
    """Each sequence with its letters randomly permuted.

    The shuffle keeps every sequence's length and composition and destroys
    all order, so the k-mer distance of the shuffled data to a reference is
    what composition alone achieves: the baseline a model must beat.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = []
    for s in _as_list(seqs):
        arr = np.array(list(s))
        gen.shuffle(arr)
        out.append("".join(arr.tolist()))
    return out


def gc_content(seqs: str | Iterable[str]) -> float:
    """GC fraction pooled over sequences: ``(n_G + n_C) / (n_A + n_C + n_G + n_T)``
    (case-insensitive; ``N`` and other letters are ignored).

    Raises:
        ValueError: when there is no A, C, G or T at all.
    """
    counts = kmer_counts(seqs, 1, DNA_ALPHABET)
    total = counts.sum()
    if total == 0:
        raise ValueError("no A, C, G or T in the sequences")
    return float((counts[1] + counts[2]) / total)


# ------------------------------------------------------------------ helpers of the domains' metrics
def maybe(fn: Callable[[], Any]) -> Any:
    """The value, or ``None`` when the statistic is undefined (no k-mers, ...)."""
    try:
        return fn()
    except ValueError:
        return None


def mean_length(samples: Sequence[str]) -> float:
    return float(np.mean([len(s) for s in samples])) if samples else 0.0


def kmer_block(samples: list[str], reference: Sequence[str] | None, alphabet: str, k: int) -> dict[str, Any]:
    """``kmer{k}_js`` (samples vs reference) and ``kmer{k}_js_shuffled`` (each sample's letters
    shuffled, seed 0: what composition alone gives); empty without a reference."""
    out: dict[str, Any] = {}
    if reference is None:
        return out
    reference = [str(s) for s in reference]
    shuffled = shuffled_baseline(samples, np.random.default_rng(0))
    out[f"kmer{k}_js"] = maybe(lambda: kmer_js(samples, reference, k, alphabet))
    out[f"kmer{k}_js_shuffled"] = maybe(lambda: kmer_js(shuffled, reference, k, alphabet))
    return out
