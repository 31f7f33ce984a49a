"""Small shared builders for tests: tiny configs and random inputs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from leanbert.model.config import ModelConfig


def tiny_config(**fields) -> ModelConfig:
    base = dict(vocab_size=101, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48, max_positions=40,
                hidden_dropout=0.0, attention_dropout=0.0)
    base.update(fields)
    return ModelConfig(**base)


def random_inputs(batch: int = 3, length: int = 17, vocab: int = 101, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, length // 3:] = 1
    return ids, mask, types


def randomize_(model: torch.nn.Module, std: float = 0.2, seed: int = 0) -> None:
    """Give every parameter (biases and LayerNorms included) random values so parity tests see them all."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def shared_data_dir() -> Path | None:
    """../shared/data next to the checkout, else LEANBERT_SHARED_DATA, else /work/shared/data (the dev box)."""
    candidates = [os.environ.get("LEANBERT_SHARED_DATA", ""), Path(__file__).resolve().parents[2] / "shared" / "data",
                  "/work/shared/data"]
    for path in candidates:
        if path and Path(path).is_dir():
            return Path(path).resolve()
    return None
