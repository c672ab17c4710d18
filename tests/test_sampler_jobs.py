"""The samplers as users reach them: CLI flags built from the samplers' declarations, recorded
defaults in model files, infill with every masked sampler keeping the template's letters, and the
shipped SMILES model's own settings."""

import math

import pandas as pd
import pytest
import torch

from seqdiff.diffusion import SAMPLERS
from seqdiff.domains import read_samples
from seqdiff.jobs.evaluate import read_sequences
from seqdiff.jobs.generate import infill, sample_job
from seqdiff.model import load_model
from seqdiff.pretrained import resolve_model
from seqdiff.training.config import ConfigError, load_config
from test_jobs import ROOT, cli, models  # noqa: F401  (the session's tiny models)


def test_every_sampler_option_is_a_documented_flag():
    import contextlib
    import io

    from seqdiff.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = buf.getvalue()
    for cls in SAMPLERS.values():
        for key in cls.options():
            if key == "cache":
                continue
            flag = "--token-top-k" if key == "top_k" else "--" + key.replace("_", "-")
            assert flag in text, flag
    assert "confidence" in text and "remdm" in text


def test_cli_sampler_options_run_and_bad_ones_are_clear_errors(models, tmp_path):  # noqa: F811
    out = tmp_path / "c.fa"
    r = cli("sample", "-m", models["dna"], "-n", 6, "--steps", 8, "--sampler", "confidence", "--confidence",
            "margin", "--temperature", "0.7", "--token-top-k", "3", "-o", out, "-q")
    assert "confidence" in r.stdout
    ids, seqs = read_samples(out, domain="dna")
    assert len(seqs) == 6 and all(set(s) <= set("ACGTN") for s in seqs)
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["sampler"]) == {"confidence"}
    # an option the sampler does not take: one line naming what it does take, nothing written
    bad = tmp_path / "bad.fa"
    r = cli("sample", "-m", models["dna"], "-n", 2, "--sampler", "tweedie", "--confidence", "max", "-o", bad,
            check=False)
    assert r.returncode == 2 and "does not take option 'confidence'" in r.stderr and "temperature" in r.stderr
    assert not bad.exists()
    r = cli("infill", "-m", models["dna"], "-t", "ACGT{8}", "--top-p", "1.5", "-o", bad, check=False)
    assert r.returncode == 2 and "top_p" in r.stderr and not bad.exists()


@pytest.mark.parametrize("name,options", [("confidence", {"confidence": "prob", "threshold": 0.5}),
                                          ("remdm", {"remask": "loop", "eta": 0.3}),
                                          ("ancestral", {"temperature": 0.5, "top_p": 0.8})])
def test_infill_keeps_every_fixed_letter(models, name, options):  # noqa: F811
    model = load_model(models["protein"])
    cands = infill(model, "MK{3-6}W?GG{4}", 12, sampler=name, steps=6, sampler_options=options, seed=1)
    for c in cands:
        s = c.sequence
        # MK, 3-6 free, W, 1 free, GG, 4 free
        assert s[:2] == "MK" and s[-6:-4] == "GG" and s[-8] == "W" and 13 <= len(s) <= 16, s
        fixed = [tok for tok, f in zip(c.ids, c.fixed) if f and tok != model.tokenizer.pad_id]
        assert model.tokenizer.decode(fixed) == "MKWGG"
    again = infill(model, "MK{3-6}W?GG{4}", 12, sampler=name, steps=6, sampler_options=options, seed=1)
    assert [c.sequence for c in again] == [c.sequence for c in cands]


def test_recipes_record_checked_sampler_defaults(models, tmp_path):  # noqa: F811
    cfg = load_config(ROOT / "configs" / "tiny" / "dna.yaml",
                      ["sampling.sampler=confidence", "sampling.options={confidence: max, temperature: 0.9}"])
    assert cfg.sampling.options == {"confidence": "max", "temperature": 0.9}
    with pytest.raises(ConfigError, match="does not take option 'grid'"):
        load_config(ROOT / "configs" / "tiny" / "dna.yaml",
                    ["sampling.sampler=confidence", "sampling.options={grid: cosine}"])
    with pytest.raises(ConfigError, match="named"):
        load_config(ROOT / "configs" / "tiny" / "dna.yaml", ["sampling.options={temperature: 0.9}"])
    # a model records them and uses them by default; options given at call time win
    model = load_model(models["dna"])
    model.cfg.sampling.sampler, model.cfg.sampling.options = "confidence", {"confidence": "max"}
    s = model.build_sampler()
    assert s.name == "confidence" and s.confidence == "max"
    assert model.build_sampler(confidence="margin").confidence == "margin"
    assert model.build_sampler("ancestral").name == "ancestral"  # another sampler: its own defaults
    path = tmp_path / "m.pt"
    model.save(path, dtype=torch.bfloat16)
    again = load_model(path)
    assert again.default_sampler == "confidence" and again.default_sampler_options == {"confidence": "max"}
    summary = sample_job(again, 3, tmp_path / "x.fa", steps=4, progress=False)
    assert summary["sampler"] == "confidence" and summary["sampler_options"] == {"confidence": "max"}


def test_shipped_smiles_model_records_confidence_decoding():
    model = load_model(resolve_model("smiles"))
    assert model.num_parameters() > 5_000_000
    assert model.default_sampler == "confidence"
    assert model.default_sampler_options.get("confidence") == "prob"
    ids = model.generate(4, 12, steps=12, generator=torch.Generator().manual_seed(0))
    assert ids.shape == (4, 12) and not (ids == model.process.mask_id).any()


def test_smiles_syntax_check_flags_only_broken_strings_and_repair_uses_it(models):
    """The SMILES syntax check (no RDKit) flags the unmatched parenthesis, an empty branch and the
    unpaired ring label; a string it flags never parses in RDKit, a well-formed one is never flagged. A model's
    `repair` sampler gets the check from its domain; a domain without one is a clear error."""
    from rdkit import Chem, RDLogger

    from seqdiff.domains.smiles import syntax_suspects
    from seqdiff.tokenizers.smiles import SmilesTokenizer

    RDLogger.DisableLog("rdApp.*")
    tok = SmilesTokenizer.build(["CCO"])
    cases = {"CC(=O)Oc1ccccc1C(=O)O": [], "CC(C": [2], "C1CC": [1], "CC)C": [2], "C()C": [1, 2],
             "c1ccc2ccccc2c1": [], "C%12CC%12": [], "C%12CC": [1], "CC(C)(C": [5], "Cl[nH]1": [2],
             "C1CC1C1": [6], "C(C(C)C": [1]}
    for smi, expect in cases.items():
        tokens = tok.tokenize(smi)
        got = syntax_suspects(tokens)
        assert [tokens[i] for i in got] == [tokens[i] for i in expect], (smi, tokens, got)
        if got:
            assert Chem.MolFromSmiles(smi) is None, smi
    shipped = load_model(resolve_model("smiles"))
    s = shipped.build_sampler("confidence", 16, polish=0.25, repair=True)
    assert s.suspects is not None
    ids = torch.tensor([shipped.tokenizer.encode("CC(C") + [shipped.tokenizer.pad_id] * 2])
    assert (s.suspects(ids) >= 0).nonzero()[:, 1].tolist() == [2]
    out = shipped.generate(4, 16, steps=16, polish=0.25, repair=True, generator=torch.Generator().manual_seed(0))
    assert not (out == shipped.process.mask_id).any()
    with pytest.raises(ValueError, match="no syntax check|has none"):
        load_model(models["dna"]).build_sampler("confidence", 8, polish=0.25, repair=True)


def test_smiles_chemistry_check_points_at_the_atom_rdkit_rejects():
    """Past the grammar, the SMILES check reports what RDKit's chemistry check finds in the parsed
    molecule, at the token of the atom: an atom over its valence, an aromatic atom outside a ring, and
    an aromatic system that cannot be kekulised — its aromatic heteroatoms if any, else all its atoms,
    as one group (one of them must change). Every flagged string fails RDKit; held-out MOSES molecules
    are never flagged; grammar errors come first. The model's check turns groups into group numbers."""
    from rdkit import Chem, RDLogger

    from seqdiff.domains.smiles import smiles_suspects
    from seqdiff.tokenizers.smiles import tokenize_smiles

    RDLogger.DisableLog("rdApp.*")
    cases = {"CC(C)(C)(C)C": [1],                 # a carbon with five bonds
             "C[N+](C)(C)(C)C": [1],              # a bracket atom over its valence
             "CCc": [2],                          # aromatic, in no ring
             "c1ccnc1": [4],                      # pyrrole written without its H: the n
             "c1ccc2n[nH]cnc2c1": [(6, 9)],       # a fused system: its two plain n, one group
             "c1cccc1": [(0, 2, 3, 4, 5)],        # five aromatic carbons: any one of them
             "CC(C": [2],                         # grammar first (no RDKit needed)
             "O=C(Nc1ccccc1)c1ccc(Cl)cc1": [], "c1cc[nH]c1": [], "C[NH3+]": []}
    for smi, expect in cases.items():
        got = smiles_suspects(tokenize_smiles(smi))
        assert got == expect, (smi, got)
        assert (Chem.MolFromSmiles(smi) is None) == bool(got), smi
    held = read_sequences(ROOT / "datasets" / "moses" / "test.smi.gz", "smiles", 300)
    assert len(held) == 300 and not any(smiles_suspects(tokenize_smiles(m)) for m in held)
    shipped = load_model(resolve_model("smiles"))
    check = shipped.syntax_check()
    tok = shipped.tokenizer
    rows = [tok.encode(m) for m in ("c1cccc1", "CC(C)(C)(C)C", "CCO")]
    width = max(map(len, rows))
    groups = check(torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows]))
    assert groups[0].tolist()[:7] == [0, -1, 0, 0, 0, 0, -1] and groups[1].tolist()[:2] == [-1, 0]
    assert (groups[1, 2:] == -1).all() and (groups[2] == -1).all()


def test_shipped_text_reference_scores_the_shipped_text_models_alphabet():
    """The AR baseline behind the text rows of the sampler benchmark is a causal model over the same
    characters as the shipped text model, and it is better than chance on held-out text."""
    ref = load_model(ROOT / "benchmarks" / "models" / "text-ar.pt")
    text = load_model(resolve_model("text"))
    assert ref.is_ar and ref.tokenizer.to_dict() == text.tokenizer.to_dict()
    sample = (ROOT / "datasets" / "text8_wiki" / "test.txt").read_text()[:128]
    ids = torch.tensor([ref.tokenizer.encode(sample)])
    bits = float(ref.nll(ids).nats.sum()) / math.log(2) / ids.shape[1]
    assert bits < 0.7 * math.log2(27)
