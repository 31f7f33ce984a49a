"""``TrainConfig`` (the ``train.*`` keys) and ``PretrainConfig`` (model + objective + data + train).

A pretraining config is a YAML file with four groups, changed by dotted overrides on the command line::

    model:     {preset: electra-small, hidden_size: 128, ...}   # any ModelConfig field as model.<field>
    objective: {name: electra, ...}                              # ObjectiveConfig
    data:      {path: data/wiki, seq_len: 128, ...}              # DataConfig
    train:     {batch_size: 128, lr: 5e-4, ...}                  # TrainConfig

The objective implies some data settings (ALBERT's SOP needs sentence-order pairs, ELECTRA masks 85/15):
they are filled in when the user did not set them, and contradictions are refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanbert.config import (
    ConfigError,
    ModelConfig,
    apply_overrides,
    check_choice,
    check_integer,
    check_number,
    from_dict,
    load_config_file,
    to_dict,
)
from leanbert.data.config import DataConfig
from leanbert.presets import PRESETS, model_config

SCHEDULES = ("linear", "cosine", "constant")
OPTIMIZERS = ("adamw", "lamb")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """How the training loop runs.

    batch_size:       GLOBAL sequences per optimizer step (all ranks and micro-steps together), so a recipe
                      means the same thing on 1 CPU or 64 GPUs. Each rank's micro-batch is
                      batch_size / (grad_accum * world_size), which must be a whole number.
    grad_accum:       micro-steps per optimizer step.
    max_steps:        optimizer steps; also the length of the linear/cosine schedule.
    max_minutes:      wall-clock budget (training time summed over resumes); 0 = none. Stops early with a
                      checkpoint; the schedule still assumes max_steps.
    lr, warmup_steps, schedule: peak learning rate, linear warm-up from 0, then linear/cosine decay to 0 at
                      max_steps, or constant.
    optimizer:        adamw (torch) or lamb (You et al. 2020). No weight decay on biases and LayerNorm weights.
    weight_decay, adam_beta1, adam_beta2, adam_eps: optimizer settings (shared by AdamW and LAMB).
    clip_norm:        global gradient-norm clipping; 0 = off.
    precision:        fp32, or bf16 autocast (CPU and CUDA; weights and optimizer stay fp32).
    compile:          torch.compile the objective (speed only).
    device:           auto (cuda if available) | cpu | cuda.
    seed:             model initialisation, data order and masking, dropout.
    log_every:        optimizer steps per metrics.jsonl line (metrics are averaged over the interval).
    eval_every:       steps between validations; 0 = only at the end. eval_batches: batches per validation.
    checkpoint_every: steps between checkpoints; 0 = only at the end. keep_checkpoints: newest K kept.
    tensorboard:      also write TensorBoard events to RUN_DIR/tensorboard (needs the tensorboard package).
    """

    batch_size: int = 32
    grad_accum: int = 1
    max_steps: int = 1000
    max_minutes: float = 0.0
    lr: float = 1e-4
    warmup_steps: int = 0
    schedule: str = "linear"
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-6
    clip_norm: float = 1.0
    precision: str = "fp32"
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    log_every: int = 10
    eval_every: int = 500
    eval_batches: int = 20
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    tensorboard: bool = False

    def __post_init__(self) -> None:
        check_integer("train.batch_size", self.batch_size, 1)
        check_integer("train.grad_accum", self.grad_accum, 1)
        check_integer("train.max_steps", self.max_steps, 1)
        check_number("train.max_minutes", self.max_minutes, 0.0)
        check_number("train.lr", self.lr, 0.0, low_open=True)
        check_integer("train.warmup_steps", self.warmup_steps, 0)
        check_choice("train.schedule", self.schedule, SCHEDULES)
        check_choice("train.optimizer", self.optimizer, OPTIMIZERS)
        check_number("train.weight_decay", self.weight_decay, 0.0)
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ConfigError(f"train.{name}={value!r} must be in [0, 1)")
        check_number("train.adam_eps", self.adam_eps, 0.0, low_open=True)
        check_number("train.clip_norm", self.clip_norm, 0.0)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.device", self.device, DEVICES)
        for name in ("compile", "tensorboard"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"train.{name}={getattr(self, name)!r} must be true or false")
        check_integer("train.seed", self.seed, 0)
        check_integer("train.log_every", self.log_every, 1)
        check_integer("train.eval_every", self.eval_every, 0)
        check_integer("train.eval_batches", self.eval_batches, 1)
        check_integer("train.checkpoint_every", self.checkpoint_every, 0)
        check_integer("train.keep_checkpoints", self.keep_checkpoints, 1)
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"train.batch_size={self.batch_size} must be divisible by "
                              f"train.grad_accum={self.grad_accum}")
        if self.warmup_steps > self.max_steps:
            raise ConfigError(f"train.warmup_steps={self.warmup_steps} exceeds train.max_steps={self.max_steps}")

    def micro_batch_size(self, world_size: int = 1) -> int:
        """Sequences per rank per micro-step; raises ConfigError when the global batch does not split evenly."""
        parts = self.grad_accum * world_size
        if self.batch_size % parts:
            raise ConfigError(f"train.batch_size={self.batch_size} must be divisible by train.grad_accum "
                              f"({self.grad_accum}) x world size ({world_size}) = {parts}")
        return self.batch_size // parts


# ---------------------------------------------------------------------------------------------------------
# The whole pretraining config

GROUPS = ("model", "objective", "data", "train")

def _objective_config_class():
    from leanbert.objectives.config import ObjectiveConfig  # late: keeps `leanbert.train` importable alone

    return ObjectiveConfig


@dataclass
class PretrainConfig:
    """model: {"preset": name, <ModelConfig field>: value, ...}; the other groups are typed configs."""

    model: dict[str, Any] = field(default_factory=lambda: {"preset": "bert-mini"})
    objective: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def model_config(self, **fields: Any) -> ModelConfig:
        """The encoder config: preset, then the ``model.*`` fields, then ``fields`` (e.g. the tokenizer's
        vocab_size) for keys the user did not set."""
        user = {k: v for k, v in self.model.items() if k != "preset"}
        return model_config(self.model["preset"], **{**fields, **user})

    def to_dict(self) -> dict[str, Any]:
        return {"model": dict(self.model), "objective": to_dict(self.objective), "data": to_dict(self.data),
                "train": to_dict(self.train)}


def _check_model_section(model: Any) -> dict[str, Any]:
    if not isinstance(model, dict):
        raise ConfigError("model must be a mapping: preset plus any model field (model.hidden_size=...)")
    model = dict(model)
    allowed = ["preset"] + [f for f in ModelConfig.__dataclass_fields__]
    unknown = [k for k in model if k not in allowed]
    if unknown:
        raise ConfigError(f"unknown key model.{unknown[0]}; allowed keys: {', '.join(allowed)}")
    if "heads" in model:
        raise ConfigError("model.heads is chosen by the objective (objective.name); remove it")
    if "preset" not in model:
        raise ConfigError(f"model.preset is required; choose one of {', '.join(PRESETS)}")
    model_config(model["preset"], **{k: v for k, v in model.items() if k != "preset"})  # validate now
    return model


def pretrain_config_from_dict(raw: dict[str, Any]) -> PretrainConfig:
    """Validate a nested dict (YAML + overrides) into a PretrainConfig; errors name the key."""
    if not isinstance(raw, dict):
        raise ConfigError("a pretraining config must be a mapping with groups model, objective, data, train")
    unknown = [k for k in raw if k not in GROUPS]
    if unknown:
        raise ConfigError(f"unknown group {unknown[0]!r}; allowed groups: {', '.join(GROUPS)}")
    objective = from_dict(_objective_config_class(), raw.get("objective") or {}, prefix="objective.")
    data_raw = raw.get("data") or {}
    if not isinstance(data_raw, dict):
        raise ConfigError("data must be a mapping of data fields")
    # the objective implies data.pairs / data.masking: filled in where unset, contradictions refused
    objective.check_data(data_raw)
    data = from_dict(DataConfig, objective.apply_data_defaults(dict(data_raw)), prefix="data.")
    train = from_dict(TrainConfig, raw.get("train") or {}, prefix="train.")
    model = _check_model_section(raw.get("model") or {"preset": "bert-mini"})
    config = PretrainConfig(model=model, objective=objective, data=data, train=train)
    max_positions = config.model_config().max_positions
    if data.seq_len > max_positions:
        raise ConfigError(f"data.seq_len={data.seq_len} exceeds model.max_positions={max_positions}")
    return config


def load_pretrain_config(path: str | Path | None, overrides: list[str] | None = None,
                         base: dict[str, Any] | None = None) -> tuple[PretrainConfig, dict[str, Any]]:
    """YAML file (or ``base``) + ``key=value`` overrides -> (validated config, the raw nested dict)."""
    raw = copy.deepcopy(base) if base is not None else {}
    if path is not None:
        raw = load_config_file(path)
        for group in GROUPS:
            if raw.get(group) is None:
                raw.pop(group, None)
    apply_overrides(raw, list(overrides or []), allowed_roots=GROUPS)
    try:
        return pretrain_config_from_dict(raw), raw
    except ConfigError as err:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{err}") from None
