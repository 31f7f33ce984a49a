"""MLM plus a sentence-pair task on the pooled [CLS] vector.

- ``mlm+nsp``: BERT's next-sentence prediction (Devlin et al. 2019, sec. 3.1 "Task #2").
- ``mlm+sop``: ALBERT's sentence-order prediction (Lan et al. 2020, sec. 3.1).

Both are a 2-way cross-entropy on ``batch.sentence_labels`` (Hugging Face's convention: 0 = in order / real
next, 1 = swapped / random); loss = mlm_weight * MLM + sentence_weight * CE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from leanbert.batch import Batch
from leanbert.config import ConfigError
from leanbert.flops import TRAIN_FACTOR, pair_head_forward_flops
from leanbert.model.config import ModelConfig
from leanbert.objectives.base import Output
from leanbert.objectives.config import check_weights
from leanbert.objectives.metrics import mean_over
from leanbert.objectives.mlm import MaskedLM, MaskedLMConfig, mlm_flops_per_token, mlm_loss
from leanbert.objectives.registry import NEEDS_MLM_TARGETS, DataNeeds, ObjectiveSpec, register_objective
from leanbert.train.precision import full_precision

TASKS = {"mlm+nsp": "nsp", "mlm+sop": "sop"}  # objective.name -> the sentence task (and data.pairs)


@dataclass
class PairsConfig(MaskedLMConfig):
    """name: mlm+nsp | mlm+sop. sentence_weight: weight of the NSP/SOP cross-entropy."""

    name: str = "mlm+sop"
    sentence_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name not in TASKS:
            raise ConfigError(f"objective.name={self.name!r}: PairsConfig is for {', '.join(TASKS)}")
        check_weights(self, "sentence_weight")


def sentence_loss(logits: torch.Tensor, labels: torch.Tensor, prefix: str
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean CE of (B, 2) ``logits`` against (B,) labels; metrics <prefix>_loss, _accuracy, _count."""
    loss = F.cross_entropy(full_precision(logits), labels)
    with torch.no_grad():
        correct = (logits.argmax(dim=-1) == labels).float()  # (B,)
        metrics = {
            f"{prefix}_loss": loss.detach(),
            f"{prefix}_accuracy": mean_over(correct, labels.shape[0]),
            f"{prefix}_count": logits.new_full((), float(labels.shape[0]), dtype=torch.float32),
        }
    return loss, metrics


class MaskedLMWithPairs(MaskedLM):
    """``mlm+nsp`` / ``mlm+sop``. Metrics: mlm_loss, mlm_accuracy, mlm_count and <nsp|sop>_loss,
    <nsp|sop>_accuracy, <nsp|sop>_count."""

    def __init__(self, model_config: ModelConfig, objective_config: PairsConfig):
        self.task = TASKS[objective_config.name]
        self.heads = ("mlm", self.task)
        if not model_config.has_pooler:
            raise ConfigError(f"objective.name={objective_config.name!r} classifies the pooled [CLS] vector, but "
                              f"model.family={model_config.family!r} has no pooler; use model.family=bert or albert")
        super().__init__(model_config, objective_config)

    def forward(self, batch: Batch) -> Output:
        if batch.sentence_labels is None:
            raise ValueError(f"objective {self.objective_config.name!r} needs batch.sentence_labels: build the data "
                             f"with data.pairs={self.task}")
        out, targets = self.run_model(batch)
        loss_mlm, metrics, _ = mlm_loss(out.mlm_logits, targets)
        logits = out.seq_relationship_logits if self.task == "nsp" else out.sop_logits  # (B, 2)
        loss_pair, pair_metrics = sentence_loss(logits, batch.sentence_labels, self.task)
        metrics.update(pair_metrics)
        cfg = self.objective_config
        return Output(loss=cfg.mlm_weight * loss_mlm + cfg.sentence_weight * loss_pair, metrics=metrics)


def pairs_flops_per_token(model_config: ModelConfig, objective_config: PairsConfig, data) -> float:
    """MLM plus the 2-way sentence classifier on one pooled vector per sequence (training, per token)."""
    pair_head = pair_head_forward_flops(model_config, data.seq_len)
    return mlm_flops_per_token(model_config, objective_config, data) + TRAIN_FACTOR * pair_head


def _pairs_spec(name: str) -> ObjectiveSpec:
    data = DataNeeds(implied={"pairs": TASKS[name], "masking": "bert"}, required=frozenset({"pairs"}),
                     refused=NEEDS_MLM_TARGETS)
    return ObjectiveSpec(name=name, objective_class=MaskedLMWithPairs, config_class=PairsConfig, data=data,
                         flops_per_token=pairs_flops_per_token)


register_objective(_pairs_spec("mlm+nsp"))
register_objective(_pairs_spec("mlm+sop"))
