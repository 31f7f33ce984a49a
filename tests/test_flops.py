"""Model FLOPs (leanbert.flops, used by the speed benchmark's MFU and by FLOPs budgets) against the real modules:
their matmul weights, and the matmuls torch's FlopCounterMode sees in a forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.data.config import DataConfig
from leanbert.flops import TRAIN_FACTOR
from leanbert.model.config import ModelConfig
from leanbert.objectives import build_objective, objective_config
from leanbert.objectives.registry import training_flops_per_token


def _objective_config(name: str, gen_hidden: int):
    return objective_config(name, **({"generator_hidden_size": gen_hidden} if name == "electra" else {}))


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
def test_training_flops_per_token_matches_the_models_weights(workload, embedding_size):
    cfg = ModelConfig(vocab_size=1000, hidden_size=128, num_layers=3, num_heads=2, intermediate_size=512,
                      embedding_size=embedding_size, family="electra")
    objective_cfg = _objective_config(workload, 32)
    objective = build_objective(objective_cfg, cfg)
    expected = sum(_counted(net, 128, 0.15) for net in objective.models().values())
    got = training_flops_per_token(cfg, objective_cfg, DataConfig(seq_len=128, mask_prob=0.15))
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name, family, embedding_size, sharing", [
    ("mlm", "electra", 0, "none"),
    ("mlm", "bert", 24, "all"),  # pooler on [CLS]; shared layers still compute once per layer
    ("mlm+sop", "albert", 24, "all"),  # pooler + SOP classifier on one token per sequence
    ("mlm+nsp", "bert", 0, "none"),
    ("electra", "electra", 24, "none"),  # generator + discriminator, each with its E -> H projection
    ("electra", "bert", 0, "attention"),
])
def test_forward_flops_match_torch_flop_counter(name, family, embedding_size, sharing):
    """One forward pass with exactly 12 of 64 tokens masked: the matmuls FlopCounterMode counts, plus attention's
    QK^T and attention x V (4 T H per token and layer, which the counter does not see in CPU SDPA), equal a
    third of the training count."""
    batch_size, seq = 4, 16
    cfg = ModelConfig(vocab_size=101, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48,
                      max_positions=40, embedding_size=embedding_size, family=family, sharing=sharing,
                      hidden_dropout=0.0, attention_dropout=0.0)
    objective_cfg = _objective_config(name, 16)
    objective = build_objective(objective_cfg, cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (batch_size, seq), generator=g)  # (B, T), no padding
    chosen = torch.zeros(batch_size, seq, dtype=torch.bool)
    chosen[:, 1:4] = True  # (B, T): 12 targets
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    batch = Batch(ids.masked_fill(chosen, 4), torch.ones_like(ids), torch.zeros_like(ids), labels,
                  sentence_labels=torch.zeros(batch_size, dtype=torch.long))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        objective(batch)
    networks = [net.config for net in objective.models().values()]
    attention = sum(4 * seq * net.hidden_size * net.num_layers for net in networks)  # per token
    counted = counter.get_total_flops() / (batch_size * seq) + attention
    data = DataConfig(seq_len=seq, mask_prob=chosen.float().mean().item())
    assert TRAIN_FACTOR * counted == pytest.approx(training_flops_per_token(cfg, objective_cfg, data), rel=1e-9)


def test_max_predictions_caps_the_masked_fraction():
    cfg = ModelConfig(vocab_size=1000, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=256)
    capped = training_flops_per_token(cfg, objective_config("mlm"), DataConfig(seq_len=128, max_predictions=4))
    plain = training_flops_per_token(cfg, objective_config("mlm"), DataConfig(seq_len=128, mask_prob=4 / 128))
    assert capped == pytest.approx(plain, rel=1e-12)
