"""Named model shapes. Each preset is a dict of ModelConfig fields; ``model_config(name, **overrides)`` builds
a validated config.

Sources: Turc et al. 2019 (compact BERTs: tiny/mini/small/medium), Devlin et al. 2019 (base/large),
Lan et al. 2020 Table 1 (ALBERT, v2 settings: dropout 0, gelu_new), Clark et al. 2020 Table 6 (ELECTRA
discriminators), Jiao et al. 2020 (TinyBERT).
"""

from __future__ import annotations

from typing import Any

from leanbert.config import ConfigError, from_dict
from leanbert.model.config import ModelConfig


def _bert(layers: int, hidden: int, heads: int, **extra: Any) -> dict[str, Any]:
    return {"vocab_size": 30522, "hidden_size": hidden, "num_layers": layers, "num_heads": heads,
            "intermediate_size": 4 * hidden, "family": "bert", **extra}


def _albert(layers: int, hidden: int, heads: int) -> dict[str, Any]:
    return {"vocab_size": 30000, "embedding_size": 128, "hidden_size": hidden, "num_layers": layers,
            "num_heads": heads, "intermediate_size": 4 * hidden, "hidden_act": "gelu_new",
            "hidden_dropout": 0.0, "attention_dropout": 0.0, "sharing": "all", "family": "albert"}


def _electra(layers: int, hidden: int, heads: int, embedding: int = 0) -> dict[str, Any]:
    # embedding 0 = same as hidden, so a hidden_size override keeps the shape unfactorized
    return {"vocab_size": 30522, "embedding_size": embedding, "hidden_size": hidden, "num_layers": layers,
            "num_heads": heads, "intermediate_size": 4 * hidden, "family": "electra"}


PRESETS: dict[str, dict[str, Any]] = {
    "bert-tiny": _bert(2, 128, 2),
    "bert-mini": _bert(4, 256, 4),
    "bert-small": _bert(4, 512, 8),
    "bert-medium": _bert(8, 512, 8),
    "bert-base": _bert(12, 768, 12),
    "bert-large": _bert(24, 1024, 16),
    "albert-base": _albert(12, 768, 12),
    "albert-large": _albert(24, 1024, 16),
    "albert-xlarge": _albert(24, 2048, 16),
    "albert-xxlarge": _albert(12, 4096, 64),
    "electra-small": _electra(12, 256, 4, 128),
    "electra-base": _electra(12, 768, 12),
    "electra-large": _electra(24, 1024, 16),
    "tinybert-4l-312d": _bert(4, 312, 12, intermediate_size=1200),
    "tinybert-6l-768d": _bert(6, 768, 12),
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The preset ``name`` with ``overrides`` (ModelConfig field -> value) applied and validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    fields = {**PRESETS[name], **overrides}
    return from_dict(ModelConfig, fields, prefix="model.")
