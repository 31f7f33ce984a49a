"""Synthetic objectives and data streams for the trainer tests (tiny, deterministic, rank-aware)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from leanbert.batch import Batch
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output


def tiny_model_config(dropout: float = 0.0, **fields) -> ModelConfig:
    base = dict(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, max_positions=16,
                hidden_dropout=dropout, attention_dropout=dropout, heads=["classifier"], num_labels=2)
    base.update(fields)
    return ModelConfig(**base)


class ClassifyObjective(Objective):
    """Per-example mean cross-entropy on the classifier head (so DDP's gradient average equals the global mean
    when ranks hold equal shards)."""

    def __init__(self, config: ModelConfig, nan_after: int = 0):
        super().__init__()
        self.model = LeanBertModel(config)
        self.nan_after = nan_after  # >0: forward calls after this many return a NaN loss
        self.calls = 0

    def forward(self, batch: Batch) -> Output:
        out = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        loss = F.cross_entropy(out.logits, batch.class_labels)
        if self.training:
            self.calls += 1
            if self.nan_after and self.calls > self.nan_after:
                loss = loss * float("nan")
        acc = (out.logits.argmax(-1) == batch.class_labels).float().mean()
        return Output(loss, {"acc": acc.detach()})

    def models(self):
        return {"model": self.model}


def example(index: int, seed: int, seq_len: int = 12, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Example ``index``: random ids (a few pads at the end), label = whether the first token is even."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    ids = torch.randint(5, vocab, (seq_len,), generator=g)
    length = int(torch.randint(seq_len // 2, seq_len + 1, (1,), generator=g))
    mask = torch.zeros(seq_len, dtype=torch.long)
    mask[:length] = 1
    ids[length:] = 0
    return ids, mask, int(ids[1] % 2 == 0)


class SyntheticStream:
    """Endless micro-batches; micro-batch k of rank r holds examples k*W*B + r*B ... + B - 1, so one process
    with grad_accum=W and W processes with grad_accum=1 see the same examples per optimizer step."""

    def __init__(self, micro_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 fail_after: int = 0):
        self.micro_batch, self.seed, self.rank, self.world_size = micro_batch, seed, rank, world_size
        self.k = 0
        self.fail_after = fail_after  # >0: raise after yielding this many batches (a simulated crash)
        self.yielded = 0

    def state_dict(self) -> dict:
        return {"k": self.k}

    def load_state_dict(self, state: dict) -> None:
        self.k = state["k"]

    def __iter__(self):
        while True:
            if self.fail_after and self.yielded >= self.fail_after:
                raise KeyboardInterrupt("simulated crash")
            start = self.k * self.world_size * self.micro_batch + self.rank * self.micro_batch
            rows = [example(start + i, self.seed) for i in range(self.micro_batch)]
            self.k += 1
            self.yielded += 1
            ids, mask, labels = zip(*rows)
            ids = torch.stack(ids)  # (B, T)
            yield Batch(input_ids=ids, attention_mask=torch.stack(mask), token_type_ids=torch.zeros_like(ids),
                        class_labels=torch.tensor(labels))
