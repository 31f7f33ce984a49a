"""What a task type brings to fine-tuning's settings: the ``data.*`` keys (``FinetuneDataConfig``; a type may
subclass it with keys of its own) and a task's default hyperparameters (``Recipe``).

The defaults (written once, here) follow ELECTRA's GLUE recipe (Clark et al., 2020, appendix A: batch 32,
warm-up 10 %, max length 128, 3 epochs) with lr 1e-4, ELECTRA-Base's rate, which suits the compact encoders
this project trains. A task's ``Recipe`` changes some of them (glue.py: more epochs on small sets); the
``train.*`` keys and their checks live in ``leanbert.finetune.config``, which starts from these values.
They sit under ``tasks/`` so a task type names its defaults without importing the fine-tuning workflow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from leanbert.config import check_integer


@dataclass
class FinetuneDataConfig:
    """max_seq_len:        tokens per example, [CLS]/[SEP] included (longer texts are truncated).
    max_train_examples: use only the first N training examples (0 = all); quick experiments."""

    max_seq_len: int = 128
    max_train_examples: int = 0

    def __post_init__(self) -> None:
        check_integer("data.max_seq_len", self.max_seq_len, 4)
        check_integer("data.max_train_examples", self.max_train_examples, 0)


@dataclass(frozen=True)
class Recipe:
    """A task's default hyperparameters; a task changes some, the others are the fine-tuning defaults.
    ``overrides()`` gives them as dotted config keys."""

    lr: float = 1e-4
    epochs: float = 3.0
    batch_size: int = 32
    max_seq_len: int = FinetuneDataConfig.max_seq_len
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    layer_decay: float = 1.0  # 1.0 = off; ELECTRA uses 0.8 for Small/Base

    def overrides(self) -> dict[str, Any]:
        keys = {"max_seq_len": "data.max_seq_len"}
        return {keys.get(f.name, f"train.{f.name}"): getattr(self, f.name) for f in dataclasses.fields(self)}
