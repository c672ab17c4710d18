"""The training hot path: compiled step without graph breaks, foreach EMA, prepared token rows,
the complex-multiply rotary embedding, fused/foreach AdamW."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from seqdiff.data.datasets import PackedDataset, PaddedDataset, WindowDataset, _unit
from seqdiff.model import SeqDiffModel
from seqdiff.models import RotaryEmbedding, apply_rotary, apply_rotary_reference
from seqdiff.models.rotary import apply_rotary_complex, rotary_phases
from seqdiff.tokenizers import DNATokenizer
from seqdiff.training.config import load_config
from seqdiff.training.data import (PositionBatchSampler, ResumableBatchSampler, TokenRows, _rc_draw,
                                   build_datasets, build_tokenizer_for)
from seqdiff.training.module import EMA, SeqDiffLightning, TrainStep, build_optimizer, step_generator

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny"


# --------------------------------------------------------------------------- rotary
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_complex_rotary_matches_the_real_arithmetic_reference(dtype):
    rot = RotaryEmbedding(16)
    cos, sin = rot(40, "cpu")
    x = torch.randn(3, 40, 4, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
    ref = apply_rotary_reference(x, cos, sin)
    out = apply_rotary(x, cos, sin)
    assert out.dtype == dtype and out.shape == x.shape
    tol = {torch.float32: 1e-6, torch.float64: 1e-6, torch.bfloat16: 0.0}[dtype]
    if dtype == torch.bfloat16:  # both round the same float32 result to bf16
        assert torch.equal(out, ref)
    else:
        assert (out - ref).abs().max().item() <= tol * max(1.0, x.abs().max().item())
    # queries and keys stacked on a leading axis rotate in one multiply, identically
    both = apply_rotary_complex(torch.stack([x, 2 * x]), rotary_phases(cos, sin))
    torch.testing.assert_close(both[0], out, atol=0, rtol=0)
    torch.testing.assert_close(both[1], apply_rotary(2 * x, cos, sin), atol=0, rtol=0)
    # the real-arithmetic form used while torch.compile traces (Inductor has no complex codegen)
    real_form = apply_rotary_complex(x, (cos, sin))
    if dtype == torch.bfloat16:
        assert torch.equal(real_form, out)
    else:
        assert (real_form - out).abs().max().item() <= 1e-6 * max(1.0, x.abs().max().item())


def test_rotary_of_a_pair_is_the_rotation_by_its_angle():
    # head dim 2: one pair rotated by pos * base^0 = pos radians
    rot = RotaryEmbedding(2)
    cos, sin = rot(4, "cpu")
    x = torch.tensor([1.0, 0.0]).expand(1, 4, 1, 2)
    out = apply_rotary(x, cos, sin)[0, :, 0]
    for pos in range(4):
        torch.testing.assert_close(out[pos], torch.tensor([math.cos(pos), math.sin(pos)]), atol=1e-7, rtol=0)


# --------------------------------------------------------------------------- EMA
def test_foreach_ema_equals_the_per_parameter_reference():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 3))
    net[0].bias.requires_grad_(False)  # frozen parameters are not averaged
    ema = EMA(net, 0.99)
    # the reference: one lerp_ per parameter (the implementation before the foreach update), and
    # the textbook formula in float64
    ref = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
    exact = {n: p.detach().double() for n, p in ref.items()}
    for step in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        decay = min(0.99, (1 + step) / (10 + step))
        assert ema.current_decay() == decay
        for n, p in net.named_parameters():
            if n in ref:
                ref[n].lerp_(p.detach(), 1.0 - decay)
                exact[n] = decay * exact[n] + (1 - decay) * p.detach().double()
        ema.update(net)
    assert set(ema.shadow) == set(ref) and "0.bias" not in ema.shadow
    for n in ref:
        assert (ema.shadow[n] - ref[n]).abs().max().item() <= 1e-7, n
        assert (ema.shadow[n].double() - exact[n]).abs().max().item() <= 1e-6, n
    # a reload keeps averaging the same way
    again = EMA(net, 0.5)
    again.load_state_dict(ema.state_dict())
    ema.update(net)
    again.update(net)
    for n in ref:
        assert torch.equal(ema.shadow[n], again.shadow[n])


# --------------------------------------------------------------------------- data
def _rows_equal_items(ds, pad_id, idx, epochs):
    rows = TokenRows(ds, pad_id)
    batch = rows[(np.asarray(idx), np.asarray(epochs))]
    items = []
    for i, e in zip(idx, epochs):
        ds.set_epoch(int(e))
        items.append(ds[int(i)])
    ref = torch.stack(items)
    assert torch.equal(batch.x, ref)
    assert torch.equal(batch.pad_mask, ref != pad_id)
    assert batch.num_real == int((ref != pad_id).sum())
    assert batch.padded == bool((ref == pad_id).any())
    return rows, batch


def test_token_rows_reproduce_dataset_items_with_reverse_complement():
    tok = DNATokenizer(use_bos_eos=True)
    g = np.random.default_rng(0)
    seqs = [g.integers(0, 4, size=int(n)) for n in g.integers(3, 40, size=60)]
    idx, epochs = list(range(0, 40, 3)) * 3, [0] * 14 + [1] * 14 + [7] * 14
    win = WindowDataset(seqs, 16, separator_id=tok.eos_id, rc_augment=True, seed=3, pad_id=tok.pad_id,
                        complement=tok.complement_table())
    rows, batch = _rows_equal_items(win, tok.pad_id, idx, epochs)
    assert rows.rows.dtype == torch.uint8  # small integers, prepared once
    assert not batch.padded
    # the augmentation changes with the epoch (each row gets both orientations over epochs)
    flips = [_rc_draw(3, np.full(40, e), np.arange(40)) < 0.5 for e in range(6)]
    assert any((a != b).any() for a, b in zip(flips, flips[1:]))
    pad = PaddedDataset(seqs, 24, tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id, rc_augment=True, seed=5,
                        complement=tok.complement_table())
    _, batch = _rows_equal_items(pad, tok.pad_id, idx, epochs)
    assert batch.padded
    packed = PackedDataset(seqs, 32, tok.eos_id, allow_split=False, pad_id=tok.pad_id)
    _rows_equal_items(packed, tok.pad_id, list(range(len(packed))), [0] * len(packed))
    tail = WindowDataset(seqs, 16, drop_last=False, pad_id=tok.pad_id)
    _rows_equal_items(tail, tok.pad_id, [len(tail) - 1, 0], [0, 0])


def test_vectorised_draws_and_sampler_match_the_scalar_ones():
    keys, epochs = np.arange(50), np.repeat([0, 1, 2, 9, 10], 10)
    assert np.array_equal(_rc_draw(11, epochs, keys), [_unit(11, int(e), int(k), 0xC0) for e, k in zip(epochs, keys)])
    s = ResumableBatchSampler(13, 5, seed=4, rank=1, world=2)
    for k in range(12):  # batches straddle epochs
        per = []
        for j in range(k * 10 + 5, k * 10 + 10):
            e, pos = divmod(j, 13)
            per.append(int(np.random.default_rng([4, e]).permutation(13)[pos]))
        assert s.batch(k) == per
        idx, ep = s.positions(k)
        assert idx.tolist() == per and ep.tolist() == [j // 13 for j in range(k * 10 + 5, k * 10 + 10)]
    it = iter(PositionBatchSampler(13, 5, seed=4, start=3, rank=1, world=2))
    (first,) = next(it)
    assert first[0].tolist() == s.batch(3)


def test_the_training_loader_serves_prepared_batches_of_the_recipe(tmp_path):
    from seqdiff.training.data import SeqDataModule
    cfg = load_config(TINY / "dna.yaml", [f"out_dir={tmp_path}"])
    tok = build_tokenizer_for(cfg)
    dm = SeqDataModule(cfg, tok)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    ds = dm.datasets["train"]
    s = ResumableBatchSampler(len(ds), cfg.data.batch_size, cfg.seed)
    ref = torch.stack([ds[i] for i in s.batch(0)])
    assert torch.equal(batch.x, ref) and batch.x.dtype == torch.long


# --------------------------------------------------------------------------- compiled step
def _tiny_model(domain="text", overrides=()):
    cfg = load_config(TINY / f"{domain}.yaml", list(overrides))
    tok = build_tokenizer_for(cfg)
    ds = build_datasets(cfg, tok)["train"]
    model = SeqDiffModel(cfg, tok).train()
    x = torch.stack([ds[i] for i in range(8)])
    return cfg, model, x, x != tok.pad_id


@pytest.mark.parametrize("domain,overrides", [
    ("text", ()), ("protein", ()),
    ("text", ("diffusion.loss=score_entropy", "diffusion.schedule.name=loglinear", "diffusion.parameterization=score")),
    ("text", ("diffusion.process=uniform", "diffusion.loss=score_entropy", "diffusion.schedule.name=geometric")),
], ids=["masked-text", "masked-protein-padded", "sedd-score", "sedd-uniform"])
def test_split_step_has_no_graph_breaks_and_matches_the_objective(domain, overrides):
    cfg, model, x, pad_mask = _tiny_model(domain, overrides)
    step = TrainStep(model)
    assert step.split
    obj, nats = step(x, pad_mask, step_generator(0, 5))
    ref_obj, ref_nats = model.objective(x, pad_mask, step_generator(0, 5))
    torch.testing.assert_close(obj, ref_obj, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(nats, ref_nats, rtol=1e-6, atol=1e-5)
    # the network + loss (what torch.compile captures) is one graph
    scored = model.scored(x, pad_mask)
    t = model.loss.sample_t(x.shape[0], step_generator(0, 6), x.device)
    x_t = model.loss.corrupt(x, t, step_generator(0, 7), scored)
    attn = pad_mask if not bool(pad_mask.all()) else None
    assert (attn is not None) == (domain == "protein")
    torch._dynamo.reset()
    ex = torch._dynamo.explain(step._core)(x, x_t, t, scored, attn)
    assert ex.graph_break_count == 0, [str(b.reason) for b in ex.break_reasons]
    assert ex.graph_count == 1
    # ... with no complex tensors in it (Inductor would fall back to eager kernels for them)
    values = [n.meta.get("example_value") for g in ex.graphs for n in g.graph.nodes]
    assert not any(isinstance(v, torch.Tensor) and v.is_complex() for v in values)


@pytest.mark.parametrize("overrides", [
    ("diffusion.process=uniform", "diffusion.loss=multinomial", "diffusion.schedule={name: discrete, num_steps: 50}"),
    ("diffusion.loss=genmd4", "diffusion.schedule.name=genmd4"), ("model.arch=ar",)], ids=["multinomial", "genmd4", "ar"])
def test_other_objectives_run_the_objective_itself(overrides):
    cfg, model, x, pad_mask = _tiny_model("text", overrides)
    step = TrainStep(model)
    assert not step.split
    obj, nats = step(x, pad_mask, step_generator(0, 5))
    ref_obj, ref_nats = model.objective(x, pad_mask, step_generator(0, 5))
    assert torch.equal(obj, ref_obj) and torch.equal(nats, ref_nats)


def test_recipe_compile_flag_compiles_the_training_step_and_trains():
    """`model.compile: true` really compiles (the issue: it changed nothing), with no graph break."""
    from torch._dynamo.utils import counters
    cfg, model, x, pad_mask = _tiny_model("text", ["model.compile=true"])
    module = SeqDiffLightning(cfg.to_dict(), model.tokenizer.to_dict())
    assert module.step.compiled and getattr(module.step._fn, "_torchdynamo_orig_callable", None) is not None
    plain = SeqDiffLightning(load_config(TINY / "text.yaml").to_dict(), model.tokenizer.to_dict())
    assert not plain.step.compiled
    plain.model.load_state_dict(module.model.state_dict())
    torch._dynamo.reset()
    counters.clear()
    # eager backend: traces and checks the graph without C++ code generation (fast on CPU)
    step = TrainStep(module.model, compile=True, backend="aot_eager")
    obj, _ = step(x, pad_mask, step_generator(0, 1), padded=False)
    obj.sum().backward()
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    ref, _ = plain.step(x, pad_mask, step_generator(0, 1), padded=False)
    torch.testing.assert_close(obj, ref, rtol=1e-5, atol=1e-4)
    assert all(p.grad is not None for p in module.model.parameters() if p.requires_grad)


def test_optimizer_is_multi_tensor_on_cpu():
    cfg, model, _, _ = _tiny_model()
    opt = build_optimizer(model, cfg.optim)
    assert opt.defaults["foreach"] is True and not opt.defaults.get("fused")
    names = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    emb = model.network.embed.weight
    assert id(emb) in names  # no decay on embeddings, norms, biases


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_optimizer_is_fused_on_cuda():
    cfg, model, _, _ = _tiny_model()
    opt = build_optimizer(model.cuda(), cfg.optim)
    assert opt.defaults["fused"] is True
