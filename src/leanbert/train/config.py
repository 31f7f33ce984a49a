"""``TrainConfig``: the ``train.*`` keys of the one training loop.

Every field is tagged with what it changes (dataclass field metadata ``kind``), after cramming's ``impl``
group: ``experiment`` settings change the results (lr, batch, seed), ``budget`` settings how long the run goes,
``logging`` what is recorded, and ``impl`` only how fast it runs (compile, device, unpadding). The key names
stay flat (``train.precision``, ``train.compile``) so recipes read as before. A resumed run may change its
budget, logging and impl settings, not the experiment (``resumable_keys``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from leanbert.config import ConfigError, check_choice, check_integer, check_number, check_seed

SCHEDULES = ("linear", "cosine", "constant")
OPTIMIZERS = ("adamw", "lamb")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")

EXPERIMENT, BUDGET, LOGGING, IMPL = "experiment", "budget", "logging", "impl"
KINDS = (EXPERIMENT, BUDGET, LOGGING, IMPL)


def setting(default: Any, kind: str, *, resumable: bool | None = None) -> Any:
    """A TrainConfig field tagged with its kind. ``resumable`` overrides the kind's resume rule (everything but
    ``experiment`` may change on resume)."""
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    return field(default=default, metadata={"kind": kind,
                                            "resumable": kind != EXPERIMENT if resumable is None else resumable})


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
    precision:        fp32, or bf16 autocast (CPU and CUDA; weights and optimizer stay fp32). An impl setting,
                      but not resumable: bf16 changes every loss value, so a resumed run would no longer
                      reproduce the interrupted one.
    compile:          torch.compile the objective (speed only).
    device:           auto (cuda if available) | cpu | cuda.
    unpad:            run projections and FFN on real tokens only (model/padding.py); false keeps the
                      encoder free of data-dependent shapes (export, tracing, GPUs where it does not pay).
    seed:             model initialisation, data order and masking, dropout.
    log_every:        optimizer steps per metrics.jsonl line (metrics are averaged over the interval).
    eval_every:       steps between validations; 0 = only at the end. eval_batches: batches per validation.
    eval_at_start:    also validate before the first step (the curves' origin); false saves one validation.
    checkpoint_every: steps between checkpoints; 0 = only at the end. keep_checkpoints: newest K kept.
    tensorboard:      also write TensorBoard events to RUN_DIR/tensorboard (needs the tensorboard package).
    """

    batch_size: int = setting(32, EXPERIMENT)
    grad_accum: int = setting(1, EXPERIMENT)
    max_steps: int = setting(1000, BUDGET)
    max_minutes: float = setting(0.0, BUDGET)
    lr: float = setting(1e-4, EXPERIMENT)
    warmup_steps: int = setting(0, EXPERIMENT)
    schedule: str = setting("linear", EXPERIMENT)
    optimizer: str = setting("adamw", EXPERIMENT)
    weight_decay: float = setting(0.01, EXPERIMENT)
    adam_beta1: float = setting(0.9, EXPERIMENT)
    adam_beta2: float = setting(0.999, EXPERIMENT)
    adam_eps: float = setting(1e-6, EXPERIMENT)
    clip_norm: float = setting(1.0, EXPERIMENT)
    precision: str = setting("fp32", IMPL, resumable=False)
    compile: bool = setting(False, IMPL)
    device: str = setting("auto", IMPL)
    unpad: bool = setting(True, IMPL)
    seed: int = setting(0, EXPERIMENT)
    log_every: int = setting(10, LOGGING)
    eval_every: int = setting(500, LOGGING)
    eval_batches: int = setting(20, LOGGING)
    eval_at_start: bool = setting(True, LOGGING)
    checkpoint_every: int = setting(1000, LOGGING)
    keep_checkpoints: int = setting(2, LOGGING)
    tensorboard: bool = setting(False, LOGGING)

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
        for name in ("compile", "tensorboard", "unpad", "eval_at_start"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"train.{name}={getattr(self, name)!r} must be true or false")
        check_seed("train.seed", self.seed)
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


def setting_kind(name: str) -> str:
    """The kind of ``train.<name>``: experiment, budget, logging or impl."""
    return {f.name: f.metadata["kind"] for f in dataclasses.fields(TrainConfig)}[name]


def resumable_keys() -> tuple[str, ...]:
    """The ``train.*`` keys a resumed run may change (budgets, logging, speed), in field order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"])
