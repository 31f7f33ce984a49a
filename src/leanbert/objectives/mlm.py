"""Masked language modelling (Devlin et al. 2019, sec. 3.1 "Task #1"), with sparse prediction.

The batch already holds the corrupted input (the data pipeline masks); ``labels`` holds the original token at
the chosen positions and IGNORE_INDEX elsewhere. Only the chosen positions go through the MLM head: the
V-sized projection never runs on the ~85% of tokens without a target, and the loss is the mean
cross-entropy over those N positions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.flops import TRAIN_FACTOR, encoder_forward_flops, masked_fraction, mlm_head_forward_flops
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.objectives.config import ObjectiveConfig, check_weights
from leanbert.objectives.metrics import mean_over
from leanbert.objectives.registry import NEEDS_MLM_TARGETS, DataNeeds, ObjectiveSpec, register_objective
from leanbert.objectives.vocab_softmax import vocab_softmax

# BERT's 80/10/10 masking on single segments (pairs would waste half-length segments on no sentence task)
MLM_DATA = DataNeeds(implied={"pairs": "none", "masking": "bert"}, required=frozenset({"pairs"}),
                     refused=NEEDS_MLM_TARGETS)


@dataclass
class MaskedLMConfig(ObjectiveConfig):
    """mlm_weight: weight of the MLM loss."""

    name: str = "mlm"
    mlm_weight: float = 1.0

    def __post_init__(self) -> None:
        check_weights(self, "mlm_weight")


def masked_positions(batch: Batch) -> torch.Tensor:
    """(B, T) bool: where the batch carries an MLM target."""
    if batch.labels is None:
        raise ValueError("this objective needs MLM labels (batch.labels), but the batch has none")
    return batch.labels != IGNORE_INDEX


def flat_positions(positions: torch.Tensor, n: int) -> torch.Tensor:
    """(N,) flat row-major indices of the True entries of (B, T) ``positions``, the order in which the MLM head
    selected them. ``n`` (known on the host from the head's output shape) makes this sync-free on a GPU,
    unlike ``labels[positions]``."""
    return torch.nonzero_static(positions.reshape(-1), size=n).squeeze(1)  # (N,)


def mlm_loss(logits: torch.Tensor, targets: torch.Tensor, uniforms: torch.Tensor | None = None,
             temperature: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
    """Mean cross-entropy of (N, V) ``logits`` against (N,) ``targets``, detached metrics ``mlm_loss``,
    ``mlm_accuracy``, ``mlm_count`` (= N), and, when (N,) ``uniforms`` are given, one sample per row from
    softmax(logits / temperature) (ELECTRA's replacements). N = 0 gives a zero loss, not NaN. One blocked pass
    over the logits (``vocab_softmax``)."""
    n = targets.shape[0]  # known on the host from the shape: no sync
    loss, predicted, sampled = vocab_softmax(logits, targets, uniforms, temperature)
    metrics = {
        "mlm_loss": loss.detach(),
        "mlm_accuracy": mean_over((predicted == targets).float(), n),
        "mlm_count": logits.new_full((), float(n), dtype=torch.float32),  # a fill, no host copy
    }
    return loss, metrics, sampled


class MaskedLM(Objective):
    """``mlm``: one network with an MLM head; loss = mlm_weight * mean CE over masked positions.

    Metrics: mlm_loss, mlm_accuracy, mlm_count.
    """

    heads: tuple[str, ...] = ("mlm",)

    def __init__(self, model_config: ModelConfig, objective_config: MaskedLMConfig | None = None):
        super().__init__()
        self.objective_config = objective_config or MaskedLMConfig()
        self.model = LeanBertModel(dataclasses.replace(model_config, heads=list(self.heads)))

    def run_model(self, batch: Batch):
        """Forward the network with sparse MLM prediction; returns (model output, (N,) MLM targets)."""
        positions = masked_positions(batch)  # (B, T)
        out = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids, mlm_positions=positions)
        index = flat_positions(positions, out.mlm_logits.shape[0])  # (N,)
        return out, batch.labels.reshape(-1)[index]  # targets (N,) in the head's row-major order

    def forward(self, batch: Batch) -> Output:
        out, targets = self.run_model(batch)
        loss, metrics, _ = mlm_loss(out.mlm_logits, targets)
        return Output(loss=self.objective_config.mlm_weight * loss, metrics=metrics)

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model}


def mlm_flops_per_token(model_config: ModelConfig, objective_config: ObjectiveConfig, data) -> float:
    """One encoder plus the MLM head on the masked fraction of the tokens (training, per token)."""
    head = mlm_head_forward_flops(model_config, masked_fraction(data))
    forward = encoder_forward_flops(model_config, data.seq_len) + head
    return TRAIN_FACTOR * forward


register_objective(ObjectiveSpec(name="mlm", objective_class=MaskedLM, config_class=MaskedLMConfig,
                                 data=MLM_DATA, flops_per_token=mlm_flops_per_token))
