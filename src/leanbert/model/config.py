"""``ModelConfig``: the shape of one encoder, validated against the model package's registries.

It lives in the model package, not in ``leanbert.config`` (the generic schema machinery), because its
validation asks the registries which position schemes and heads exist: ``leanbert.config`` then imports
nothing of the model package, and this module imports only the schema and the leaf ``registries.py``, never a
component or the package face, so no import circle forms. ``import leanbert.model.config`` runs the face
first, which imports the built-in components: validation sees every registered scheme and head.

Old saved model directories, ONNX folders and YAML recipes wrote a position scheme's options as flat keys
(``model.relative_buckets``, ...); ``ModelConfig.upgrade_legacy`` (called by ``from_dict``) moves them into
``position_options``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from leanbert.config import ConfigError, check_choice, check_number, check_probability, from_dict, to_dict
from leanbert.model.registries import HEADS, POSITION_SCHEMES

ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu")
SHARING_MODES = ("none", "all", "attention", "ffn")
FAMILIES = ("bert", "albert", "electra")


@dataclass
class ModelConfig:
    """One encoder, many shapes. Field names follow the issue tracker's contract (CLI and YAML use them).

    ``family`` names the Hugging Face architecture this shape corresponds to. It decides whether there is a
    pooler (BERT/ALBERT yes, ELECTRA no) and what ``leanbert export`` writes; it never changes the math of
    the layers themselves.
    """

    vocab_size: int = 30522
    embedding_size: int = 0  # 0 means "same as hidden_size" (no factorization)
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    sharing: str = "none"
    num_groups: int = 1
    position: str = "absolute"
    position_options: dict[str, Any] = field(default_factory=dict)  # the scheme's own keys (its options class)
    family: str = "bert"
    pad_token_id: int = 0
    heads: list[str] = field(default_factory=list)
    num_labels: int = 2  # classifier head: 1 means regression

    def __post_init__(self) -> None:
        if self.embedding_size == 0:
            self.embedding_size = self.hidden_size
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_positions", "num_groups", "num_labels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model.{name}={value!r} must be a positive integer")
        if self.type_vocab_size < 0:
            raise ConfigError(f"model.type_vocab_size={self.type_vocab_size!r} must be >= 0")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"model.hidden_size={self.hidden_size} must be divisible by "
                              f"model.num_heads={self.num_heads}")
        check_choice("model.hidden_act", self.hidden_act, ACTIVATIONS)
        check_choice("model.sharing", self.sharing, SHARING_MODES)
        check_choice("model.position", self.position, tuple(POSITION_SCHEMES))
        if not isinstance(self.position_options, dict):
            raise ConfigError(f"model.position_options={self.position_options!r} must be a mapping of the "
                              f"{self.position} scheme's keys")
        # every option spelled out, so saved configs say what ran and equal configs compare equal
        self.position_options = to_dict(self.scheme_options)
        check_choice("model.family", self.family, FAMILIES)
        check_probability("model.hidden_dropout", self.hidden_dropout)
        check_probability("model.attention_dropout", self.attention_dropout)
        check_number("model.layer_norm_eps", self.layer_norm_eps, 0, low_open=True)
        check_number("model.initializer_range", self.initializer_range, 0, low_open=True)
        if self.num_groups > 1 and self.sharing == "none":
            raise ConfigError("model.num_groups > 1 only makes sense with model.sharing=all|attention|ffn")
        if self.num_layers % self.num_groups:
            raise ConfigError(f"model.num_layers={self.num_layers} must be divisible by "
                              f"model.num_groups={self.num_groups}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"model.pad_token_id={self.pad_token_id} must be in [0, vocab_size)")
        self.heads = list(self.heads)
        for head in self.heads:
            check_choice("model.heads entry", head, tuple(HEADS))
        if "nsp" in self.heads and "sop" in self.heads:
            raise ConfigError("model.heads may hold nsp or sop, not both")

    @property
    def scheme_options(self) -> Any:
        """``position_options`` as the position scheme's options dataclass (validated by it)."""
        return from_dict(POSITION_SCHEMES[self.position].options, self.position_options, prefix="model.position_options.")

    @classmethod
    def upgrade_legacy(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Old flat keys of a position scheme's options (model.relative_buckets, ... in YAML recipes, saved
        model and ONNX folders) -> ``position_options``. Old keys the chosen scheme does not take had no effect
        and are dropped; an old key that contradicts the same key in position_options is refused."""
        option_keys = {f.name for spec in POSITION_SCHEMES.values() for f in dataclasses.fields(spec.options)}
        own = {f.name for f in dataclasses.fields(cls)}
        flat = {k: v for k, v in data.items() if k in option_keys and k not in own}
        if not flat:
            return data
        options = data.get("position_options") or {}
        options = dict(options) if isinstance(options, dict) else options
        spec = POSITION_SCHEMES.get(data.get("position", cls.position))
        takes = {f.name for f in dataclasses.fields(spec.options)} if spec is not None else set(flat)
        for key, value in flat.items():
            if isinstance(options, dict) and key in options and options[key] != value:
                raise ConfigError(f"model.{key}={value!r} (an old key) contradicts "
                                  f"model.position_options.{key}={options[key]!r}; keep only the second")
            if key in takes and isinstance(options, dict):
                options.setdefault(key, value)
        return {**{k: v for k, v in data.items() if k not in flat}, "position_options": options}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def has_pooler(self) -> bool:
        return self.family != "electra"
