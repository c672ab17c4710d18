"""Recipes: typed, documented, validated YAML configuration of a model and its training.

This module sits below :mod:`seqdiff.model` and :mod:`seqdiff.training` (both read it; it reads only
the registries of domains, processes, losses, schedules, samplers and network architectures, whose
names are its choices).

A recipe (``configs/*.yaml``) has the sections below; every field has a default and a doc string
(``seqdiff train --help-config`` prints them all, and ``configs/README.md`` is generated from them).
Unknown keys and values of the wrong type are errors that name the file and the key path, with a
suggestion for near-misses. Command-line overrides use dotted paths: ``optim.lr=1e-3``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .diffusion.losses import LOSSES
from .diffusion.processes import PROCESSES
from .diffusion.samplers import SAMPLERS, build_sampler_options
from .diffusion.schedules import SCHEDULES
from .domains import domains as _domains
from .models import ARCHS

#: the registered domains, and the tokenizers a recipe can name (the general ones, then each domain's)
_DOMAIN_NAMES = tuple(_domains())
_TOKENIZER_KINDS = tuple(dict.fromkeys(("char", "byte", "bpe", *(d.tokenizer_kind for d in _domains().values()))))

__all__ = [
    "ConfigError", "DataConfig", "TokenizerConfig", "ModelConfig", "DiffusionConfig", "OptimConfig",
    "TrainerConfig", "SamplingConfig", "ConditionConfig", "PredictorConfig", "TrainConfig", "load_config", "apply_overrides",
    "config_docs",
]


class ConfigError(ValueError):
    """A bad recipe: names the file and key path."""


def doc(default: Any = MISSING, text: str = "", *, factory: Any = MISSING, choices: tuple | None = None):
    """A dataclass field with documentation (and optional allowed values)."""
    meta = {"doc": text, "choices": choices}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    kind: str = doc("text", "Domain of the corpus: decides the reader and the output format.",
                    choices=_DOMAIN_NAMES)
    train: str = doc("", "Training file (text .txt, FASTA .fa/.fasta, GenBank .gb, SMILES .smi/.csv; .gz ok).")
    valid: str = doc("", "Validation file; empty = carve `valid_fraction` of the training records by seed.")
    test: str = doc("", "Test file for the final held-out evaluation (optional).")
    valid_fraction: float = doc(0.05, "Fraction of training records used for validation when `valid` is empty.")
    layout: str = doc("auto", "How records become rows: `window` (chunks of one long stream), `pad` (one record "
                      "per row, right-padded), `pack` (records packed with a separator); `auto` = the domain's own: "
                      + ", ".join(f"{d.layout} for {d.name}" for d in _domains().values()) + ".",
                      choices=("auto", "window", "pad", "pack"))
    seq_len: int = doc(256, "Row length in tokens (window length, or maximum record length for `pad`).")
    too_long: str = doc("truncate", "`pad` layout: what to do with longer records.",
                        choices=("truncate", "reject", "error"))
    max_records: int = doc(0, "Read at most this many records per file (0 = all).")
    skip_invalid: bool = doc(False, "Skip records the tokenizer rejects (counted and reported) instead of failing.")
    rc_augment: bool = doc(False, "DNA: reverse-complement each training row with probability 1/2.")
    randomize_smiles: bool = doc(False, "SMILES: train on randomised (non-canonical) SMILES of each molecule.")
    canonicalize_smiles: bool = doc(False, "SMILES: canonicalise with RDKit before tokenising.")
    check_smiles: bool = doc(False, "SMILES: reject records RDKit cannot parse (or skip with `skip_invalid`).")
    streaming: bool = doc(False, "Read the training file lazily (corpora larger than memory; window layout only).")
    batch_size: int = doc(32, "Sequences per training batch (per device).")
    eval_batch_size: int = doc(64, "Sequences per validation batch.")
    num_workers: int = doc(0, "DataLoader worker processes.")
    max_valid_batches: int = doc(0, "Cap on validation batches per evaluation (0 = the whole split).")


@dataclass
class TokenizerConfig:
    kind: str = doc("auto", "Tokenizer: char (text8 a-z + space), byte, bpe, dna, protein, smiles; `auto` picks "
                    "by data kind (" + ", ".join(f"{d.name}→{d.tokenizer_kind}" for d in _domains().values()) + ").",
                    choices=("auto", *_TOKENIZER_KINDS))
    options: dict = doc(None, "Keyword options for the tokenizer (e.g. dna: {ambiguity: N}; bpe: {vocab_size: 4096}; "
                        "char: {alphabet: ..., lowercase: true}; protein: {allow_gaps: true}; smiles: {scheme: atoms} for the "
                        "corpus-built atom vocabulary instead of the default `parts`, which covers every "
                        "RDKit-parsable SMILES).", factory=dict)


@dataclass
class ModelConfig:
    arch: str = doc("dit", "Network: `dit` (bidirectional diffusion transformer) or `ar` (causal baseline).",
                    choices=tuple(ARCHS))
    d_model: int = doc(256, "Hidden width.")
    n_layers: int = doc(6, "Transformer blocks.")
    n_heads: int = doc(4, "Attention heads (d_model must be divisible by it).")
    cond_dim: int = doc(128, "Width of the time-conditioning vector (DiT).")
    mlp_ratio: float = doc(4.0, "MLP hidden width / d_model.")
    dropout: float = doc(0.0, "Dropout on attention and MLP outputs.")
    attn_backend: str = doc("auto", "Attention: auto (flash-attn on CUDA when installed, else SDPA), sdpa, flash, "
                            "reference.", choices=("auto", "sdpa", "flash", "reference"))
    time_conditioning: bool = doc(True, "adaLN-zero time conditioning; off for time-independent masked models "
                                  "(enables output caching in the ancestral sampler).")
    compile: bool = doc(False, "torch.compile the training step (network and loss; see `trainer.compile_mode`).")


@dataclass
class DiffusionConfig:
    process: str = doc("absorbing", "Forward CTMC.", choices=tuple(PROCESSES))
    schedule: dict = doc(None, "Noise schedule, `{name: ..., **kwargs}`: loglinear {eps}, geometric {sigma_min, "
                         "sigma_max}, linear, cosine, polynomial {exponent}, genmd4 {init_exponent}, discrete "
                         "{num_steps, kind} (multinomial).", factory=lambda: {"name": "linear"})
    loss: str = doc("masked", "Objective: masked (MD4/MDLM), score_entropy (SEDD), genmd4, multinomial.",
                    choices=tuple(LOSSES))
    parameterization: str = doc("x0", "Denoiser output: x0 (mean) or score (SEDD concrete score).",
                                choices=("x0", "score"))
    genmd4_samples: int = doc(2, "GenMD4: x_t draws per sequence for the RLOO gradient estimator.")


@dataclass
class OptimConfig:
    lr: float = doc(3e-4, "Peak AdamW learning rate.")
    weight_decay: float = doc(0.0, "AdamW weight decay (not applied to norms, biases, embeddings).")
    betas: list = doc(None, "AdamW betas.", factory=lambda: [0.9, 0.999])
    eps: float = doc(1e-8, "AdamW epsilon.")
    warmup_steps: int = doc(100, "Linear warm-up steps.")
    lr_schedule: str = doc("cosine", "After warm-up: cosine decay to `min_lr_ratio`·lr at max_steps, or constant.",
                           choices=("cosine", "constant"))
    min_lr_ratio: float = doc(0.1, "Final LR as a fraction of the peak (cosine).")
    grad_clip: float = doc(1.0, "Gradient-norm clipping (0 = off).")
    ema: float = doc(0.999, "EMA decay of the weights used for evaluation and sampling (0 = no EMA).")


@dataclass
class TrainerConfig:
    max_steps: int = doc(1000, "Optimizer steps.")
    val_every: int = doc(200, "Validate (EMA weights, bits per token) every this many steps.")
    ckpt_every: int = doc(200, "Write `last.ckpt` every this many steps (resume point).")
    log_every: int = doc(10, "Log training metrics every this many steps.")
    precision: str = doc("32-true", "Lightning precision: 32-true, bf16-mixed (GPU), 16-mixed.")
    accelerator: str = doc("auto", "cpu, gpu, auto.")
    devices: Any = doc("auto", "Devices per node (an int, a list, or auto).")
    num_nodes: int = doc(1, "Nodes (multi-node runs launch one process per device, e.g. with torchrun or SLURM).")
    strategy: str = doc("auto", "Lightning strategy: auto, ddp, fsdp, ...")
    accumulate_grad_batches: int = doc(1, "Gradient accumulation.")
    compile_mode: str = doc("default", "torch.compile mode when `model.compile` is true: `reduce-overhead` "
                            "replays CUDA graphs (small models on GPU, where Python launch overhead dominates).",
                            choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"))
    deterministic: bool = doc(True, "Ask torch for deterministic kernels (exact resume).")
    progress_bar: bool = doc(True, "Show a progress bar.")


@dataclass
class SamplingConfig:
    sampler: str = doc("auto", "Default sampler: auto picks ancestral (masked), tweedie (SEDD), multinomial.",
                       choices=("auto", *SAMPLERS))
    steps: int = doc(128, "Default number of sampling steps.")
    options: dict = doc(None, "Default options of that sampler, e.g. `{confidence: prob, k_schedule: cosine, "
                        "temperature: 1.0}` (see `seqdiff sample --help`); checked against the sampler.")
    log_samples: int = doc(4, "Sequences generated and written at each validation (0 = none).")


@dataclass
class ConditionConfig:
    column: str = doc("", "Conditioning column (classifier-free guidance): a column of a CSV/TSV training file, or "
                      "a `key=value` field of FASTA headers; empty = an unconditional model.")
    sequence_column: str = doc("", "CSV/TSV: the column holding the sequences (default: sequence, smiles, seq, or "
                               "the first column).")
    bins: list = doc(None, "Numeric conditions: bin edges, e.g. [0.5, 0.7, 0.85] (values below the first edge are "
                     "class 0); unset = the column's values are class labels.")
    quantiles: int = doc(0, "Numeric conditions: this many equal-count bins from the training values (instead of `bins`).")
    classes: list = doc(None, "Class names, in class-index order (recorded by training; for binned conditions the "
                        "bin ranges).")
    dropout: float = doc(0.1, "Probability that a training row's condition is replaced by the null class.")
    init_from: str = doc("", "Start from the weights of this model file (e.g. a shipped default, by name), adding "
                         "the class embedding; its tokenizer, network and diffusion sections replace the recipe's.")
    freeze_base: bool = doc(False, "With `init_from`: train only the condition path (the class embedding and the "
                            "maps from it into the adaLN modulations); the base weights stay as they are.")


@dataclass
class PredictorConfig:
    column: str = doc("", "Property predictor for classifier guidance: the label column (CSV/TSV) or `key=value` "
                      "FASTA header field to predict from noisy sequences; set = `seqdiff train` trains a predictor "
                      "(not a diffusion model) and writes `out_dir/predictor.pt`.")
    model: str = doc("", "The diffusion model (a file, or a shipped model by name) the predictor will guide: its "
                     "tokenizer, noise process and schedule are used (the recipe's `tokenizer`, `model`, "
                     "`diffusion` and `data.kind` are ignored).")
    sequence_column: str = doc("", "CSV/TSV: the column holding the sequences (default: sequence, smiles, seq, or "
                               "the first column).")
    kind: str = doc("auto", "`classes`: predict a class (names, or numbers cut by `bins`/`quantiles`); `gaussian`: "
                    "a mean and variance of a numeric property (targets are values or ranges); `auto`: gaussian "
                    "when every value is a number and no bins are given, else classes.",
                    choices=("auto", "classes", "gaussian"))
    bins: list = doc(None, "Classes from numbers: bin edges, e.g. [0.7, 0.8, 0.9].")
    quantiles: int = doc(0, "Classes from numbers: this many equal-count bins of the training values.")
    classes: list = doc(None, "Class names in index order (recorded by training).")
    d_model: int = doc(128, "Predictor width.")
    n_layers: int = doc(2, "Predictor transformer blocks (DiT blocks, mean-pooled).")
    n_heads: int = doc(4, "Predictor attention heads.")
    cond_dim: int = doc(64, "Predictor time-conditioning width (uniform process only; a masked-process predictor "
                        "needs no time: p(c | x_t) does not depend on t there).")
    mlp_ratio: float = doc(2.0, "Predictor MLP width / d_model.")


@dataclass
class TrainConfig:
    name: str = doc("run", "Run name.")
    seed: int = doc(0, "Seed for splits, initialisation, noise and sampling.")
    out_dir: str = doc("runs/run", "Where checkpoints, logs, samples and the summary go.")
    data: DataConfig = doc(None, "Data.", factory=DataConfig)
    tokenizer: TokenizerConfig = doc(None, "Tokenizer.", factory=TokenizerConfig)
    model: ModelConfig = doc(None, "Network.", factory=ModelConfig)
    diffusion: DiffusionConfig = doc(None, "Diffusion process, schedule and loss.", factory=DiffusionConfig)
    optim: OptimConfig = doc(None, "Optimisation.", factory=OptimConfig)
    trainer: TrainerConfig = doc(None, "Lightning trainer.", factory=TrainerConfig)
    sampling: SamplingConfig = doc(None, "Sampling defaults saved with the model.", factory=SamplingConfig)
    condition: ConditionConfig = doc(None, "Conditioning for classifier-free guidance.", factory=ConditionConfig)
    predictor: PredictorConfig = doc(None, "A noisy-sequence property predictor for classifier guidance.",
                                     factory=PredictorConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<config>") -> "TrainConfig":
        cfg = _build(cls, data or {}, source, "")
        _validate(cfg, source)
        return cfg


_SECTIONS = {f.name: f.type for f in fields(TrainConfig)}


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check_bins(source: str, section: str, bins, quantiles) -> None:
    """A labelled section's binning: ``bins`` increasing numbers, or ``quantiles`` ≥ 0, not both."""
    if bins is not None and (not bins or any(not _type_ok(b, float) for b in bins) or list(bins) != sorted(set(bins))):
        raise ConfigError(f"{source}: `{section}.bins` must be increasing numbers, got {bins!r}")
    if quantiles < 0 or (quantiles and bins):
        raise ConfigError(f"{source}: `{section}.quantiles` must be ≥ 0 and not given with `{section}.bins`")


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is Any or tp == "Any":
        return True
    tp = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list}.get(tp, tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _build(cls, data: dict, source: str, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: `{prefix.rstrip('.') or '<root>'}` must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = prefix + str(key)
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean `{prefix}{close[0]}`?)" if close else f"; known: {', '.join(known)}"
            raise ConfigError(f"{source}: unknown key `{path}`{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, source, path + ".")
            continue
        if value is None and known[key].default is None:  # an optional field left unset
            kwargs[key] = None
            continue
        if (tp is float or tp == "float") and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads `2e-3` (no dot) as a string
        if not _type_ok(value, tp):
            want = getattr(tp, "__name__", str(tp))
            raise ConfigError(f"{source}: `{path}` must be {want}, got {value!r}")
        if tp is float or tp == "float":
            value = float(value)
        choices = known[key].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{source}: `{path}` must be one of {', '.join(map(str, choices))}; got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


_LOSS_PROCESS = {"masked": "absorbing", "genmd4": "absorbing", "multinomial": "uniform"}


def _validate(cfg: TrainConfig, source: str) -> None:
    d, m = cfg.diffusion, cfg.model
    if d.loss in _LOSS_PROCESS and d.process != _LOSS_PROCESS[d.loss]:
        raise ConfigError(f"{source}: `diffusion.loss: {d.loss}` needs `diffusion.process: {_LOSS_PROCESS[d.loss]}`")
    sname = (d.schedule or {}).get("name")
    if sname not in SCHEDULES:
        raise ConfigError(f"{source}: `diffusion.schedule.name` must be one of {', '.join(SCHEDULES)}; got {sname!r}")
    if d.loss == "multinomial" and sname != "discrete":
        raise ConfigError(f"{source}: multinomial diffusion needs `diffusion.schedule.name: discrete`")
    if d.loss == "genmd4" and sname != "genmd4":
        raise ConfigError(f"{source}: the genmd4 loss needs `diffusion.schedule.name: genmd4`")
    if d.loss != "multinomial" and sname == "discrete":
        raise ConfigError(f"{source}: a discrete schedule is only for `diffusion.loss: multinomial`")
    if d.parameterization == "score" and d.loss != "score_entropy":
        raise ConfigError(f"{source}: `diffusion.parameterization: score` is trained with `loss: score_entropy`")
    if cfg.data.layout == "pack" and m.arch == "ar":
        raise ConfigError(f"{source}: the AR baseline trains on padded or windowed rows, not `data.layout: pack`")
    if m.d_model % m.n_heads:
        raise ConfigError(f"{source}: `model.d_model` ({m.d_model}) must be divisible by `model.n_heads` ({m.n_heads})")
    for path, value in [("data.seq_len", cfg.data.seq_len), ("data.batch_size", cfg.data.batch_size),
                        ("trainer.max_steps", cfg.trainer.max_steps), ("trainer.val_every", cfg.trainer.val_every),
                        ("trainer.ckpt_every", cfg.trainer.ckpt_every), ("sampling.steps", cfg.sampling.steps)]:
        if value < 1:
            raise ConfigError(f"{source}: `{path}` must be ≥ 1, got {value}")
    if not cfg.data.train:
        raise ConfigError(f"{source}: `data.train` is required")
    if cfg.sampling.options:
        if cfg.sampling.sampler == "auto":
            raise ConfigError(f"{source}: `sampling.options` needs a named `sampling.sampler`, not auto")
        try:
            build_sampler_options(cfg.sampling.sampler, cfg.sampling.options)
        except ValueError as e:
            raise ConfigError(f"{source}: `sampling.options`: {e}") from None
    if not 0 <= cfg.optim.ema < 1:
        raise ConfigError(f"{source}: `optim.ema` must be in [0, 1)")
    c = cfg.condition
    if not 0 <= c.dropout < 1:
        raise ConfigError(f"{source}: `condition.dropout` must be in [0, 1)")
    _check_bins(source, "condition", c.bins, c.quantiles)
    if c.classes is not None and (len(c.classes) < 1 or len(set(map(str, c.classes))) != len(c.classes)):
        raise ConfigError(f"{source}: `condition.classes` must be distinct names")
    if c.classes and cfg.model.arch == "ar":
        raise ConfigError(f"{source}: conditioning is for diffusion models (`model.arch: dit`)")
    pr = cfg.predictor
    if pr.column:
        if c.column:
            raise ConfigError(f"{source}: give `predictor.column` or `condition.column`, not both")
        if not pr.model:
            raise ConfigError(f"{source}: `predictor.model` is required: the diffusion model the predictor will guide")
    _check_bins(source, "predictor", pr.bins, pr.quantiles)
    if pr.kind == "gaussian" and (pr.bins or pr.quantiles):
        raise ConfigError(f"{source}: `predictor.kind: gaussian` takes no bins (bins make classes)")
    if pr.d_model % pr.n_heads or (pr.d_model // pr.n_heads) % 2:
        raise ConfigError(f"{source}: `predictor.d_model` ({pr.d_model}) / `predictor.n_heads` ({pr.n_heads}) must "
                          f"be a whole, even head width")
    for path, value in [("predictor.d_model", pr.d_model), ("predictor.n_layers", pr.n_layers),
                        ("predictor.cond_dim", pr.cond_dim)]:
        if value < 1:
            raise ConfigError(f"{source}: `{path}` must be ≥ 1, got {value}")


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(data: dict, overrides: list[str], source: str = "<command line>") -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a raw config dict."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: override `{item}` must look like key.path=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"{source}: `{key}`: `{p}` is not a section")
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node[parts[-1]] = _parse_scalar(value)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict | None = None) -> TrainConfig:
    """Read a YAML recipe (or a dict), apply overrides, validate."""
    source = str(path) if path is not None else "<config>"
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{source}: not UTF-8 text (byte {e.start + 1}: {e.reason})") from None
        except IsADirectoryError:
            raise ConfigError(f"{source}: is a folder, not a config file") from None
    if data:
        raw = {**raw, **data}
    if overrides:
        raw = apply_overrides(raw, overrides)
    return TrainConfig.from_dict(raw, source)


def config_docs() -> str:
    """Markdown reference of every config field (used for configs/README.md and --help-config)."""
    lines = []
    for sec in fields(TrainConfig):
        tp = typing.get_type_hints(TrainConfig)[sec.name]
        if not dataclasses.is_dataclass(tp):
            lines.append(f"- `{sec.name}` (default `{sec.default}`): {sec.metadata['doc']}")
    for sec in fields(TrainConfig):
        tp = typing.get_type_hints(TrainConfig)[sec.name]
        if not dataclasses.is_dataclass(tp):
            continue
        lines.append(f"\n### `{sec.name}` — {sec.metadata['doc']}\n")
        lines.append("| key | default | meaning |\n|---|---|---|")
        default = tp()
        for f in fields(tp):
            choices = f.metadata.get("choices")
            extra = f" One of: {', '.join(f'`{c}`' for c in choices)}." if choices else ""
            lines.append(f"| `{sec.name}.{f.name}` | `{getattr(default, f.name)!r}` | {f.metadata['doc']}{extra} |")
    return "\n".join(lines) + "\n"
