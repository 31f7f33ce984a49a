"""Learning-rate schedules: linear warm-up from 0, then linear or cosine decay to 0 at ``total_steps``, or constant.

Step ``s`` (0-based, the s-th optimizer step) uses ``lr * lr_scale * factor(s)`` with
``factor(s) = (s + 1) / warmup`` during warm-up (so the first step does not waste its batch at lr 0) and
``progress = (s - warmup) / (total - warmup)`` afterwards: linear ``1 - progress``, cosine
``0.5 * (1 + cos(pi * progress))``. Each param group's ``lr_scale`` (default 1) multiplies in, which is how
layer-wise LR decay (ELECTRA fine-tuning) rides on the same schedule.
"""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, kind: str, warmup_steps: int, total_steps: int) -> float:
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if kind == "linear":
        return 1.0 - progress
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {kind!r}")


class Schedule:
    """Sets every group's ``lr`` before each optimizer step; ``state_dict`` holds just the step counter."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, kind: str, warmup_steps: int,
                 total_steps: int):
        self.optimizer, self.base_lr, self.kind = optimizer, base_lr, kind
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.step_count = 0
        self.apply()

    def lr(self, step: int | None = None) -> float:
        """The unscaled learning rate of ``step`` (default: the next step)."""
        s = self.step_count if step is None else step
        return self.base_lr * lr_factor(s, self.kind, self.warmup_steps, self.total_steps)

    def apply(self) -> float:
        lr = self.lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def step(self) -> None:
        """Call after ``optimizer.step()``: moves to the next step and sets its learning rate."""
        self.step_count += 1
        self.apply()

    def state_dict(self) -> dict:
        return {"step": self.step_count, "kind": self.kind, "base_lr": self.base_lr,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        # The shape of the schedule comes from the (possibly changed) config; only the position is restored.
        self.step_count = int(state["step"])
        self.apply()
