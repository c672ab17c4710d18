"""The text domain: model-free text statistics and its :class:`~seqdiff.domains.Domain` record.

(Generative perplexity needs a scoring language model and lives with the
models, not here.)
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Sequence

from .registry import AppHints, Domain, TemplateRules
from .sequence import maybe, mean_length

__all__ = ["char_entropy", "word_stats", "text_metrics", "DOMAIN"]


def _as_list(texts: str | Iterable[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else [str(t) for t in texts]


def char_entropy(texts: str | Iterable[str]) -> float:
    """Unigram character entropy in bits, pooled over the texts:
    ``H = -sum_c p(c) log2 p(c)`` with ``p(c) = n_c / sum_d n_d``.

    Degenerate, repetitive samples have low entropy; English text8 has
    about 4.1 bits.  Raises ``ValueError`` when there are no characters.
    """
    counts: Counter[str] = Counter()
    for t in _as_list(texts):
        counts.update(t)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no characters to compute an entropy from")
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def word_stats(texts: str | Iterable[str], reference: Iterable[str] | None = None) -> dict[str, Any]:
    """Word-level summary (words are whitespace-separated).

    Keys: ``num_texts``, ``num_words``, ``mean_words_per_text``,
    ``mean_word_length`` (characters), ``distinct_words``,
    ``type_token_ratio`` = ``distinct_words / num_words``; with a reference
    corpus (texts) also ``oov_rate`` = share of sample words never seen in
    the reference (misspelt or invented words).
    """
    texts = _as_list(texts)
    words = [w for t in texts for w in t.split()]
    n = len(words)
    out: dict[str, Any] = {
        "num_texts": len(texts),
        "num_words": n,
        "mean_words_per_text": n / len(texts) if texts else 0.0,
        "mean_word_length": sum(len(w) for w in words) / n if n else 0.0,
        "distinct_words": len(set(words)),
        "type_token_ratio": len(set(words)) / n if n else 0.0,
    }
    if reference is not None:
        vocab = {w for t in _as_list(reference) for w in t.split()}
        out["oov_rate"] = sum(w not in vocab for w in words) / n if n else 0.0
    return out


def text_metrics(samples: Sequence[str], reference: Sequence[str] | None = None,
                 training: Sequence[str] | None = None) -> dict[str, Any]:
    """``num_samples``, ``mean_length`` (characters), ``char_entropy`` (bits),
    word statistics (:func:`word_stats`, with ``oov_rate`` against ``training`` or else
    ``reference``) and, with a reference, ``char_entropy_reference``."""
    samples = [str(s) for s in samples]
    out: dict[str, Any] = {
        "num_samples": len(samples),
        "mean_length": mean_length(samples),
        "char_entropy": maybe(lambda: char_entropy(samples)),
    }
    vocab_source = training if training is not None else reference
    ws = word_stats(samples, vocab_source)
    out.update({k: ws[k] for k in ("num_words", "mean_word_length", "type_token_ratio")})
    if "oov_rate" in ws:
        out["oov_rate"] = ws["oov_rate"]
    if reference is not None:
        out["char_entropy_reference"] = maybe(lambda: char_entropy(reference))
    return out


DOMAIN = Domain(
    name="text", letter="character", tokenizer_kind="char", file_format="txt", metrics=text_metrics,
    reader_options={"mode": "lines"}, layout="window", join_lines=True,
    template=TemplateRules(example="the {4} sat"),
    shipped_model="text", recipe="configs/pretrained/text.yaml", corpus="wikitext8",
    app=AppHints(label="Text", template="the {3-6} of {8}", menu_position=4, window_fill="after"),
    demo="seqdiff.jobs.demo:text_section", order=0,
)
