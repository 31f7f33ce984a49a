"""``FinetuneConfig``: the ``train.*`` and ``data.*`` keys of ``leanbert finetune``, and their defaults.

The defaults of the keys a task may change are written once, in ``leanbert.tasks.recipe`` (ELECTRA's GLUE
recipe: ``Recipe``, and the ``data.*`` keys: ``FinetuneDataConfig``); a task's ``Recipe`` changes some of them
(tasks/glue.py: more epochs on small sets); the user's ``key=value`` overrides come last::

    train.lr=1e-4 train.epochs=3 train.batch_size=32 train.warmup_ratio=0.1 train.weight_decay=0.01
    train.layer_decay=0.8 train.seeds=[1,2,3] train.precision=bf16 data.max_seq_len=128

``to_train_config`` turns them into the shared trainer's ``TrainConfig`` once the training-set size is known
(epochs -> optimizer steps, warm-up ratio -> warm-up steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from leanbert.config import (
    ConfigError,
    apply_overrides,
    check_choice,
    check_integer,
    check_number,
    check_seed,
    from_dict,
    to_dict,
)
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from leanbert.train.config import DEVICES, OPTIMIZERS, PRECISIONS, TrainConfig


@dataclass
class FinetuneTrainConfig:
    """lr:              peak learning rate (linear warm-up, then linear decay to 0).
    epochs:          passes over the training set (fractions allowed: 0.5 = half an epoch).
    batch_size:      examples per optimizer step.
    warmup_ratio:    fraction of the steps spent warming up.
    weight_decay:    AdamW decoupled weight decay (not on biases and LayerNorm weights).
    layer_decay:     layer-wise LR decay (ELECTRA: 0.8 small/base, 0.9 large); 1 = off. See layer_decay.py.
    seeds:           one run per seed; several give <metric>_mean / <metric>_std.
    precision:       fp32 or bf16 (autocast; weights stay fp32).
    device:          auto | cpu | cuda.
    clip_norm:       gradient-norm clipping; 0 = off.
    max_steps:       stop after this many optimizer steps (0 = from epochs); the schedule follows it.
    eval_every:      also score the dev set every N steps for the learning curve (0 = once per epoch).
    eval_at_start:   also score it before the first step (the curve's origin); false saves that pass.
    eval_batch_size: examples per forward pass when scoring.
    log_every:       steps per metrics.jsonl line.
    optimizer:       adamw or lamb.
    dropout:         hidden and attention dropout while fine-tuning, 0 to 0.9 (default: the model's own).
    unpad:           projections and FFN on real tokens only (speed only; false: no data-dependent shapes).
    """

    lr: float = Recipe.lr
    epochs: float = Recipe.epochs
    batch_size: int = Recipe.batch_size
    warmup_ratio: float = Recipe.warmup_ratio
    weight_decay: float = Recipe.weight_decay
    layer_decay: float = Recipe.layer_decay
    seeds: list[int] = field(default_factory=lambda: [0])
    precision: str = "fp32"
    device: str = "auto"
    clip_norm: float = 1.0
    max_steps: int = 0
    eval_every: int = 0
    eval_at_start: bool = True
    eval_batch_size: int = 128
    log_every: int = 10
    optimizer: str = "adamw"
    dropout: float | None = None
    unpad: bool = True

    def __post_init__(self) -> None:
        check_number("train.lr", self.lr, 0.0, low_open=True)
        check_number("train.epochs", self.epochs, 0.0, low_open=True)
        check_integer("train.batch_size", self.batch_size, 1)
        check_number("train.warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_number("train.weight_decay", self.weight_decay, 0.0)
        check_number("train.layer_decay", self.layer_decay, 0.0, 1.0, low_open=True)
        if not self.seeds:
            raise ConfigError("train.seeds=[] must list at least one seed, e.g. train.seeds=[0,1,2]")
        for seed in self.seeds:
            check_seed("train.seeds entry", seed)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"train.seeds={self.seeds} repeats a seed")
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.device", self.device, DEVICES)
        check_number("train.clip_norm", self.clip_norm, 0.0)
        for name in ("max_steps", "eval_every"):
            check_integer(f"train.{name}", getattr(self, name), 0)
        check_integer("train.eval_batch_size", self.eval_batch_size, 1)
        check_integer("train.log_every", self.log_every, 1)
        check_choice("train.optimizer", self.optimizer, OPTIMIZERS)
        if self.dropout is not None:
            check_number("train.dropout", self.dropout, 0.0, 0.9)
        for name in ("unpad", "eval_at_start"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"train.{name}={getattr(self, name)!r} must be true or false")

    def steps(self, num_train: int) -> tuple[int, int]:
        """(optimizer steps, steps per epoch) for ``num_train`` examples."""
        per_epoch = math.ceil(num_train / self.batch_size)
        total = self.max_steps or max(1, round(self.epochs * per_epoch))
        return total, per_epoch


@dataclass
class FinetuneConfig:
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def _seeds_value(raw: dict[str, Any]) -> None:
    """``train.seeds=3`` is ambiguous (seed 3, or three seeds?): ask for a list."""
    seeds = raw.get("train", {}).get("seeds")
    if seeds is not None and not isinstance(seeds, list):
        raise ConfigError(f"train.seeds={seeds!r} must be a list, e.g. train.seeds=[0] or train.seeds=[0,1,2]")


def finetune_config(recipe: Recipe, overrides: list[str] | None = None,
                    data_config: type[FinetuneDataConfig] = FinetuneDataConfig) -> FinetuneConfig:
    """The task's recipe with ``key=value`` overrides applied and validated (ConfigError names the key).
    ``data_config``: the task type's ``data.*`` class (a FinetuneDataConfig subclass may add keys)."""
    raw: dict[str, Any] = {}
    for key, value in recipe.overrides().items():
        group, name = key.split(".")
        raw.setdefault(group, {})[name] = value
    apply_overrides(raw, list(overrides or []), allowed_roots=("train", "data"))
    _seeds_value(raw)
    return build_finetune_config(raw, data_config)


def build_finetune_config(raw: dict[str, Any], data_config: type[FinetuneDataConfig] = FinetuneDataConfig
                          ) -> FinetuneConfig:
    """``{"train": {...}, "data": {...}}`` -> a validated FinetuneConfig with ``data_config`` as its data."""
    unknown = [k for k in raw if k not in ("train", "data")]
    if unknown:
        raise ConfigError(f"unknown group {unknown[0]!r}; allowed groups: train, data")
    for group in ("train", "data"):
        if not isinstance(raw.get(group, {}), dict):
            raise ConfigError(f"{group} must be a mapping of {group}.* keys")
    return FinetuneConfig(train=from_dict(FinetuneTrainConfig, raw.get("train", {}), prefix="train."),
                          data=from_dict(data_config, raw.get("data", {}), prefix="data."))


def to_train_config(config: FinetuneConfig, num_train: int, seed: int) -> TrainConfig:
    """The shared loop's TrainConfig for one seed: epochs -> max_steps, warmup_ratio -> warmup_steps.
    Checkpoints only at the end (fine-tuning runs are short), evaluation as ``eval_every`` / per epoch."""
    t = config.train
    total, per_epoch = t.steps(num_train)
    return TrainConfig(
        batch_size=t.batch_size, max_steps=total, lr=t.lr, warmup_steps=round(t.warmup_ratio * total),
        schedule="linear", optimizer=t.optimizer, weight_decay=t.weight_decay, clip_norm=t.clip_norm,
        precision=t.precision, device=t.device, unpad=t.unpad, seed=seed,
        log_every=min(t.log_every, total),
        eval_every=t.eval_every or per_epoch, eval_at_start=t.eval_at_start, checkpoint_every=0,
        keep_checkpoints=1)
