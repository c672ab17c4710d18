"""The demo's DNA comparison: flanks generated around a fixed TATA box are compared with held-out
windows around real occurrences of the same motif at the same offsets."""

from __future__ import annotations

import re

import pytest

from seqdiff.domains.sequence import gc_content
from seqdiff.jobs.demo import DNA_HELDOUT, _fasta_seqs, dna_section, matched_flanks
from seqdiff.training.data import REPO_ROOT

TATA = "TATAAAA"


def _occurrences(seqs, motif, left, right):
    """(sequence, start) of every occurrence with room for the window, by regex (overlaps too)."""
    return [(i, m.start()) for i, s in enumerate(seqs) for m in re.finditer(f"(?={motif})", s)
            if m.start() >= left and m.start() + len(motif) + right <= len(s)]


def test_matched_flanks_by_hand():
    seqs = ["GGTATAAAACCA", "TATAAAA", "CCCTATAAAATATAAAAGG"]
    flanks, n, k = matched_flanks(seqs, TATA, 2, [1, 2])
    # seq 0: at 2 (room: 2 before, 3 after); seq 1: at 0, no room; seq 2: at 3 and 10 (10 has 2 after)
    assert (n, k) == (3, 2)
    assert flanks == ["GG" + "C", "CC" + "TA", "AA" + "G"]


def test_the_demo_reference_is_built_from_motif_matched_windows(tmp_path):
    held = [s for f in DNA_HELDOUT for s in _fasta_seqs(REPO_ROOT / f)]
    rights = [25, 30, 35]
    flanks, n, k = matched_flanks(held, TATA, 60, rights)
    occ = _occurrences(held, TATA, 60, 35)
    assert n == len(occ) > 100 and k == len({i for i, _ in occ})
    for f, (i, j) in zip(flanks, occ):  # each is the real sequence around a real occurrence
        r = len(f) - 60
        assert r in rights and held[i][j - 60:j + len(TATA) + r] == f[:60] + TATA + f[60:]
    # the matched reference is AT-rich like the data around TATA boxes, unlike arbitrary
    # upstream sequence (the comparison the demo made before)
    first90 = [s[:90] for s in held[:200]]
    assert gc_content(flanks) < gc_content(first90) - 0.08

    rep = dna_section(tmp_path, num=4, steps=4, seed=0)
    assert rep["motif_present"] == 1.0
    assert rep["reference"]["occurrences"] == len(occ) and rep["reference"]["files"] == list(DNA_HELDOUT)
    assert "motif-matched" in rep["reference"]["kind"]
    cands = (tmp_path / "dna_tata.fa").read_text().split(">")[1:]
    lengths = [len("".join(c.splitlines()[1:])) - 60 - len(TATA) for c in cands]
    ref, _, _ = matched_flanks(held, TATA, 60, lengths)
    assert rep["gc_reference"] == pytest.approx(gc_content(ref), abs=1e-4)
