"""Networks: the bidirectional DiT denoiser and a causal AR baseline.

Both produce raw float32 logits; see :mod:`seqdiff.models.dit` and :mod:`seqdiff.models.ar`.
The attention function itself lives in :mod:`seqdiff.models.attention` (it is not
re-exported here so that the name keeps referring to the submodule).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .ar import ARConfig, ARTransformer
from .attention import AttentionBackendError, attention_backends_available
from .dit import DiT, DiTConfig, maybe_compile
from .rotary import RotaryEmbedding, apply_rotary, apply_rotary_complex, apply_rotary_reference

__all__ = [
    "ARConfig",
    "ARTransformer",
    "AttentionBackendError",
    "DiT",
    "DiTConfig",
    "RotaryEmbedding",
    "apply_rotary",
    "apply_rotary_complex",
    "apply_rotary_reference",
    "attention_backends_available",
    "build_model",
    "ARCHS",
    "config_from_dict",
    "maybe_compile",
]

ARCHS: dict[str, tuple[type, type]] = {
    DiTConfig.arch: (DiTConfig, DiT),
    ARConfig.arch: (ARConfig, ARTransformer),
}


def config_from_dict(config_dict: dict[str, Any]) -> DiTConfig | ARConfig:
    """Config dataclass from a dict; ``config_dict["arch"]`` picks ``"dit"`` (default) or ``"ar"``."""
    arch = config_dict.get("arch", DiTConfig.arch)
    if arch not in ARCHS:
        raise ValueError(f"unknown model arch {arch!r}; choose one of {sorted(ARCHS)}")
    return ARCHS[arch][0].from_dict(config_dict)


def build_model(config_dict: dict[str, Any]) -> nn.Module:
    """Build a model from ``config.to_dict()``-style data.

    ``"arch"``: ``"dit"`` (default) -> :class:`DiT`, ``"ar"`` -> :class:`ARTransformer`.
    The remaining keys are the config fields. When ``compile`` is true the model is
    compiled in place by :func:`maybe_compile`.
    """
    config = config_from_dict(config_dict)
    model_cls = ARCHS[config.arch][1]
    return maybe_compile(model_cls(config))
