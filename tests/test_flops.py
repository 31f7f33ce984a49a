"""The training-speed benchmark's model-FLOPs count (used for MFU) against the real model's matmul weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from torch import nn

from leanbert.config import ModelConfig
from leanbert.objectives import ObjectiveConfig, build_objective

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("train_speed", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _counted(network: nn.Module, seq: int, masked: float) -> float:
    """6 FLOPs per weight per token for every Linear of the encoder, 12 * T * H per layer for attention, the
    MLM head's Linear layers on the masked fraction only and the RTD head on every token."""
    total = 0.0
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear):
            total += 6 * module.weight.numel() * (masked if ".mlm." in f".{name}." else 1.0)
    heads = network.heads
    if "mlm" in heads:  # the tied vocabulary projection
        total += 6 * masked * network.encoder.embeddings.word_embeddings.weight.numel()
    cfg = network.config
    return total + 12 * seq * cfg.hidden_size * cfg.num_layers


@pytest.mark.parametrize("embedding_size", [0, 64])
@pytest.mark.parametrize("workload", ["mlm", "electra"])
def test_model_flops_per_token_matches_the_models_weights(workload, embedding_size):
    bench = _load_benchmark()
    cfg = ModelConfig(vocab_size=1000, hidden_size=128, num_layers=3, num_heads=2, intermediate_size=512,
                      embedding_size=embedding_size, family="electra")
    objective = build_objective(ObjectiveConfig(name=workload, generator_hidden_size=32), cfg)
    expected = sum(_counted(net, 128, 0.15) for net in objective.models().values())
    assert bench.model_flops_per_token(workload, cfg, 32, 128) == pytest.approx(expected, rel=1e-9)
