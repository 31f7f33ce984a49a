"""Model FLOPs: what a training step needs per real token (what MFU counts, and what FLOPs budgets spend).

Counted: 2 FLOPs per multiply-add of every matmul with weights (Q/K/V/output projections, FFN, the E -> H
embedding projection when E != H, heads), plus attention's sequence-length-dependent QK^T and attention x V
(4 T H per token per layer), each head on the fraction of tokens it runs on (MLM on the masked tokens, the
pooler and NSP/SOP on one token per sequence). Embedding lookups, biases and element-wise work are not counted.
Training = 3 x forward (the backward pass costs two forwards: gradients of the inputs and of the weights).

Only per-component helpers live here. Each objective (and add-on) declares its own count in its registry entry
(ELECTRA: generator + discriminator); ``leanbert.objectives.registry.training_flops_per_token`` adds them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leanbert.model.config import ModelConfig

if TYPE_CHECKING:
    from leanbert.data.config import DataConfig

TRAIN_FACTOR = 3  # forward + backward


def encoder_forward_flops(config: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token of the encoder (layers, E -> H projection, pooler) over ``seq_len`` keys.
    Shared layers (ALBERT) still compute once per layer, so sharing does not change the count."""
    h, ffn = config.hidden_size, config.intermediate_size
    project = 2 * config.embedding_size * h if config.embedding_size != h else 0
    per_layer = 2 * (4 * h * h + 2 * h * ffn) + 4 * seq_len * h  # projections + FFN; QK^T and attention x V
    pooler = 2 * h * h / seq_len if config.has_pooler else 0.0  # [CLS] only: one token per sequence
    return project + config.num_layers * per_layer + pooler


def mlm_head_forward_flops(config: ModelConfig, fraction: float) -> float:
    """MLM head per token on ``fraction`` of the tokens (sparse prediction): dense H -> E, tied E -> V."""
    e = config.embedding_size
    return fraction * 2 * (config.hidden_size * e + e * config.vocab_size)


def pair_head_forward_flops(config: ModelConfig, seq_len: int) -> float:
    """NSP/SOP head per token: 2-way classifier on the pooled [CLS] vector, one per sequence."""
    return 2 * config.hidden_size * 2 / seq_len


def rtd_head_forward_flops(config: ModelConfig) -> float:
    """ELECTRA's discriminator head per token: dense H -> H, then H -> 1, on every token."""
    h = config.hidden_size
    return 2 * (h * h + h)


def masked_fraction(data: DataConfig | Any) -> float:
    """Fraction of tokens with an MLM target: ``data.mask_prob``, capped by ``data.max_predictions``."""
    fraction = float(data.mask_prob)
    cap = getattr(data, "max_predictions", 0)
    return min(fraction, cap / data.seq_len) if cap else fraction

